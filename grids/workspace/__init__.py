"""The workspace: a county's whole state, in a GeoPackage file (embedded default) or a PostgreSQL schema.

:class:`Workspace` is what the rest of the code types against; :func:`open_workspace` opens one from a path or a
``postgresql://`` URL. The backends live side by side and do not import each other: :mod:`.base` (shared
parts), :mod:`.gpkg` (:class:`GpkgWorkspace`) and :mod:`.postgis` (:class:`PgWorkspace`, loaded only when a URL
asks for it, so the GeoPackage path does not need psycopg).

Examples
--------
>>> import tempfile, pathlib
>>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422",
...                           county_name="巴林左旗")
>>> again = open_workspace(ws.target)
>>> isinstance(again, Workspace), type(again).__name__, again.revision
(True, 'GpkgWorkspace', 0)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from grids.workspace.base import SCHEMA_VERSION, Transaction, Workspace
from grids.workspace.gpkg import GpkgTransaction, GpkgWorkspace

if TYPE_CHECKING:
    from grids.workspace.postgis import PgTransaction, PgWorkspace

__all__ = ["SCHEMA_VERSION", "GpkgTransaction", "GpkgWorkspace", "PgTransaction", "PgWorkspace", "Transaction",
           "Workspace", "is_pg_url", "open_workspace"]

PG_URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_pg_url(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` names a PostGIS workspace (a ``postgresql://`` URL) rather than a file.

    Examples
    --------
    >>> is_pg_url("postgresql://grids@db:5432/county?schema=c150422"), is_pg_url("workspace/demo.gpkg")
    (True, False)
    """
    return str(target).startswith(PG_URL_SCHEMES)


def open_workspace(target: str | os.PathLike[str]) -> Workspace:
    """Open a workspace by path (GeoPackage, the embedded default) or by URL (``postgresql://…``, PostGIS).

    Parameters
    ----------
    target : str or path-like
        A workspace file, or ``postgresql://user@host:port/db[?schema=name]``.

    Raises
    ------
    WorkspaceError
        The file or schema holds no workspace, or the database cannot be reached (one line, with the fix).
    """
    if is_pg_url(target):
        from grids.workspace.postgis import PgWorkspace

        return PgWorkspace(str(target))
    return GpkgWorkspace(target)


def __getattr__(name: str) -> Any:
    """The PostGIS names, imported on first use (psycopg is needed only for PostGIS workspaces)."""
    if name in ("PgWorkspace", "PgTransaction"):
        from grids.workspace import postgis

        return getattr(postgis, name)
    raise AttributeError(f"module 'grids.workspace' has no attribute {name!r}")
