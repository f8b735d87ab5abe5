"""Former home of the PostGIS workspace, kept as a thin re-export while callers move to
:mod:`grids.workspace.postgis`."""

from grids.workspace.postgis import (
    LAYERS_TABLE,
    LIBRARY_SETTING,
    PG_TYPES,
    PgTransaction,
    PgWorkspace,
    _mask,
    pg_type,
    split_url,
    translate_sql,
)

__all__ = ["LAYERS_TABLE", "LIBRARY_SETTING", "PG_TYPES", "PgTransaction", "PgWorkspace", "_mask", "pg_type",
           "split_url", "translate_sql"]
