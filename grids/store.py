"""Former home of the GeoPackage workspace, kept as a thin re-export while callers move to :mod:`grids.workspace`.

``Workspace`` here is the GeoPackage backend (:class:`grids.workspace.gpkg.GpkgWorkspace`), as it always was;
code that should work on both backends types against :class:`grids.workspace.Workspace` and opens with
:func:`grids.workspace.open_workspace`.
"""

from grids.workspace import is_pg_url, open_workspace
from grids.workspace.base import (
    AUDIT_APPEND_ONLY,
    AUDIT_COLUMNS,
    EDITS_TABLE,
    EXTERNAL_ACTOR,
    EXTERNAL_EDIT_ACTION,
    GEOM_COLUMN,
    META_TABLE,
    SCHEMA_VERSION,
    Transaction,
    WorkspaceWrites,
    _check_revision,
    _layer_frame,
    _now,
    _q,
    _requested_columns,
    _schema_version,
    _to_sql_values,
    add_missing_columns,
    decode_geometries,
    encode_geometries,
    workspace_error,
)
from grids.workspace.gpkg import (
    APPLICATION_ID,
    GUARD_TABLE,
    RTREE_EXTENSION,
    USER_VERSION,
    GpkgTransaction,
    create_rtree,
    register_functions,
)
from grids.workspace.gpkg import GpkgWorkspace as Workspace

__all__ = ["APPLICATION_ID", "AUDIT_APPEND_ONLY", "AUDIT_COLUMNS", "EDITS_TABLE", "EXTERNAL_ACTOR",
           "EXTERNAL_EDIT_ACTION", "GEOM_COLUMN", "GUARD_TABLE", "META_TABLE", "RTREE_EXTENSION", "SCHEMA_VERSION",
           "USER_VERSION", "GpkgTransaction", "Transaction", "Workspace", "WorkspaceWrites", "_check_revision",
           "_layer_frame", "_now", "_q", "_requested_columns", "_schema_version", "_to_sql_values",
           "add_missing_columns", "create_rtree", "decode_geometries", "encode_geometries", "is_pg_url",
           "open_workspace", "register_functions", "workspace_error"]
