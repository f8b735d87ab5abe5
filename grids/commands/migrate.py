"""``python -m grids migrate SRC DST [--force]``: copy a workspace between backends, losslessly.

SRC and DST are each a GeoPackage path or a PostgreSQL URL (``postgresql://user@host:5432/db?schema=name``):
GeoPackage → PostGIS, PostGIS → GeoPackage, or GeoPackage → GeoPackage. Every layer (every row, every column
including those added by importers, geometry exactly), the audit trail and the metadata (county, demo flag,
revision) are copied in one transaction on the destination: it holds the whole copy or is left as it was. A
destination that already holds data is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from grids.errors import ValidationError, WorkspaceError
from grids.model import LAYERS
from grids.store import META_TABLE, Transaction, Workspace, _q, open_workspace
from grids.store_pg import PgWorkspace, pg_type, split_url

_PG_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_pg_url(target: str | os.PathLike) -> bool:
    """True when ``target`` is a PostgreSQL URL rather than a GeoPackage path.

    Examples
    --------
    >>> is_pg_url("postgresql://u@h/db?schema=ws"), is_pg_url("workspace/demo.gpkg")
    (True, False)
    """
    return str(target).startswith(_PG_PREFIXES)


def migrate(src: str | os.PathLike, dst: str | os.PathLike, *, force: bool = False) -> dict[str, int]:
    """Copy the workspace ``src`` to ``dst`` (GeoPackage path or PostgreSQL URL, either way round).

    Parameters
    ----------
    src : str or path-like
        An existing workspace.
    dst : str or path-like
        Where to write the copy: a GeoPackage path (written to a temporary file and moved into place) or a
        PostgreSQL URL (created in one transaction, in the schema named by ``?schema=``, default ``public``).
    force : bool
        Replace a destination that already holds a workspace with data (or any other file).

    Returns
    -------
    dict
        Rows copied per layer.

    Raises
    ------
    WorkspaceError
        The destination holds data and ``force`` is false, or a backend cannot be reached.
    """
    source = open_workspace(src)
    if _same_target(src, dst):
        raise ValidationError("源和目标是同一个工作区", fix="给出另一个目标路径或 PostgreSQL 模式（?schema=…）")
    if not force:
        _refuse_non_empty(dst)
    meta = source.meta
    layers = source.layers()
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        raise ValidationError(
            f"源工作区有未声明的图层：{', '.join(unknown)}，无法无损迁移",
            fix="先在 grids.model.LAYERS 中声明这些图层，或在 QGIS 中删除它们",
        )
    counts: dict[str, int] = {}
    with _destination(dst, meta=meta) as (tx, is_pg):
        for name in layers:
            frame = source.read(name)
            _add_extra_columns(tx, name, source.columns(name), is_pg=is_pg)
            counts[name] = tx._insert(name, frame)
    return counts


def _same_target(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    if is_pg_url(src) and is_pg_url(dst):
        return split_url(str(src)) == split_url(str(dst))
    if is_pg_url(src) or is_pg_url(dst):
        return False
    return Path(dst).exists() and Path(src).resolve() == Path(dst).resolve()


def _refuse_non_empty(dst: str | os.PathLike) -> None:
    how = "修正方法：换一个目标，或加 --force（函数参数 force=True）覆盖"
    if is_pg_url(dst):
        try:
            ws = PgWorkspace(str(dst))
        except WorkspaceError:
            return  # no workspace in that schema yet (connection problems surface when writing)
        if not _is_empty(ws):
            raise WorkspaceError(f"目标 {ws} 里已有工作区数据（第 {ws.revision} 版）。{how}")
        return
    path = Path(dst)
    if not path.exists():
        return
    try:
        ws = Workspace(path)
        empty = _is_empty(ws)
    except WorkspaceError:
        empty = False
    if not empty:
        raise WorkspaceError(f"目标文件 {path} 已存在且不是空工作区。{how}")


def _is_empty(ws: Workspace | PgWorkspace) -> bool:
    return ws.revision == 0 and all(ws.count(name) == 0 for name in ws.layers())


@contextlib.contextmanager
def _destination(dst: str | os.PathLike, *, meta: dict[str, str]) -> Iterator[tuple[Transaction, bool]]:
    """A fresh destination workspace and one open transaction on it; committed when the block ends.

    Writes go through ``Transaction._insert`` (no revision bump, no audit row): the source's metadata,
    revision included, and its audit trail are copied as they are.
    """
    if is_pg_url(dst):
        with PgWorkspace._build(str(dst), meta=meta, overwrite=True) as tx:
            yield tx, True
        return
    path = Path(dst)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".migrate", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        ws = Workspace.create(tmp, county_code=meta.get("county_code", ""), county_name=meta.get("county_name", ""))
        with ws.transaction(actor="migrate", action="迁移") as tx:
            tx.execute(f"DELETE FROM {META_TABLE}")
            for key, value in meta.items():
                tx.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)", (key, value))
            yield tx, False
            tx.changed = False  # a copy, not a change: keep the source's revision, add no audit row
            tx._notes.clear()
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _add_extra_columns(tx: Transaction, layer: str, types: dict[str, str], *, is_pg: bool) -> None:
    """Create the source's extra columns with their declared types (a DATE column stays DATE)."""
    declared = LAYERS[layer].columns
    existing = set(tx.read(layer).columns)
    for col, sql_type in types.items():
        if col not in declared and col not in existing:
            col_type = pg_type(sql_type) if is_pg else sql_type
            tx._con.execute(f"ALTER TABLE {_q(layer)} ADD COLUMN {_q(col)} {col_type}")


# --------------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "migrate",
        help="在 GeoPackage 与 PostGIS 之间无损复制工作区 / copy a workspace between backends",
        description="SRC、DST 可以是 .gpkg 路径或 postgresql://用户@主机:端口/数据库?schema=模式 地址",
    )
    p.add_argument("src", metavar="SRC", help="源工作区 / source workspace")
    p.add_argument("dst", metavar="DST", help="目标工作区 / destination")
    p.add_argument("--force", action="store_true", help="覆盖已有数据的目标 / replace a non-empty destination")


def run(args: argparse.Namespace) -> int:
    counts = migrate(args.src, args.dst, force=args.force)
    dst = open_workspace(args.dst)
    total = sum(counts.values())
    where = dst if is_pg_url(args.dst) else args.dst  # a PgWorkspace prints its URL without the password
    print(f"已迁移 {len(counts)} 个图层、共 {total} 行到 {where}（第 {dst.revision} 版）：")
    print(pd.Series(counts, name="行数").to_string())
    return 0
