"""The GeoPackage workspace backend: one file holding a county's whole state.

The file is a plain OGC GeoPackage 1.2 (GDAL/QGIS open it; ``validate_gpkg.py`` passes) written with the
standard library's ``sqlite3``, so every change is one SQLite transaction: a failed write, or a process killed
in the middle of one, leaves the file exactly as it was. Each committed change bumps the workspace
``revision`` and adds a row to the ``audit`` table (who, when, what, before/after summary). The audit table is
append-only (triggers refuse ``UPDATE`` and ``DELETE``) and hash-chained (:mod:`grids.audit`). A workspace made by
an older version is upgraded when opened (:meth:`GpkgWorkspace._upgrade`). Storage failures (read-only file or
directory, disk full, a damaged page) are raised as one-line :class:`~grids.errors.WorkspaceError` with the fix.

Layers and their columns are declared in :mod:`grids.model`; importers may add columns, which are kept.

Examples
--------
>>> import tempfile, pathlib, geopandas as gpd, shapely
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg"
>>> ws = GpkgWorkspace.create(path, county_code="150422", county_name="巴林左旗")
>>> pts = gpd.GeoDataFrame({"branch_id": ["B01"], "name": ["林东营业部"]},
...                        geometry=[shapely.Point(119.39, 43.98)], crs=4490)
>>> with ws.transaction(actor="demo", action="导入网点") as tx:
...     n = tx.replace("branches", pts)
>>> ws.read("branches")[["branch_id", "name"]].values.tolist()
[['B01', '林东营业部']]
>>> ws.revision
1
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from grids.audit import GENESIS, chain_rows
from grids.errors import ValidationError, WorkspaceError
from grids.model import LAYERS, STORAGE_EPSG, Layer
from grids.workspace.base import (
    _ENVELOPE_LEN,
    AUDIT_APPEND_ONLY,
    AUDIT_COLUMNS,
    EDITS_TABLE,
    GEOM_COLUMN,
    META_TABLE,
    SCHEMA_VERSION,
    Transaction,
    Workspace,
    _check_revision,
    no_gc,
    _layer_frame,
    _now,
    _q,
    _record_external_edits,
    _requested_columns,
    _schema_version,
    add_missing_columns,
    decode_geometries,
    edit_logged_tables,
    encode_geometries,  # noqa: F401 (register_functions example)
    external_edit_notes,
    migrate_data,
    read_only_notice,
    workspace_error,
)

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10200  # GeoPackage 1.2.0
_BULK_ROWS = 2000  # inserts of at least this many rows index them in one statement


@contextlib.contextmanager
def _storage_errors(target: object) -> Iterator[None]:
    """Raise storage failures of SQLite as one-line :class:`WorkspaceError` (see :func:`workspace_error`)."""
    try:
        yield
    except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
        if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            raise
        err = workspace_error(exc, target)
        if err is None:
            raise
        raise err from exc


# --------------------------------------------------------------------------------------------------------
# SQL functions of the GeoPackage rtree triggers, and the rtree index itself
# --------------------------------------------------------------------------------------------------------

RTREE_EXTENSION = ("gpkg_rtree_index", "http://www.geopackage.org/spec120/#extension_rtree", "write-only")
"""The ``gpkg_extensions`` row (name, definition, scope) declaring a layer's spatial index (GeoPackage 1.2)."""
@functools.lru_cache(maxsize=16)
def _envelope(blob: bytes) -> tuple[float, float, float, float] | None:
    """``(minx, maxx, miny, maxy)`` of a GeoPackage geometry blob, or None when it is empty (or not a blob).

    Read from the header's envelope when it has one, from the WKB of a point, else by decoding the WKB. The
    rtree triggers ask four times for the same blob, hence the small cache.
    """
    if len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0b10000:
        return None
    order = "<" if flags & 1 else ">"
    env_len = _ENVELOPE_LEN.get((flags >> 1) & 0b111)
    if env_len is None:
        return None
    if env_len:
        env = struct.unpack_from(order + "4d", blob, 8)
        return None if any(v != v for v in env) else env
    wkb = blob[8:]
    if len(wkb) == 21:  # a 2D point: byte order, type, x, y
        o = "<" if wkb[0] == 1 else ">"
        x, y = struct.unpack_from(o + "2d", wkb, 5)
        return None if x != x or y != y else (x, x, y, y)
    geom = shapely.from_wkb(wkb)
    if geom is None or geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def _st(index: int | None) -> Any:
    def fn(blob: bytes | None) -> float | int | None:
        if blob is None:
            return None
        env = _envelope(bytes(blob))
        if index is None:  # ST_IsEmpty
            return int(env is None)
        return None if env is None else env[index]
    return fn


SQL_FUNCTIONS = {"ST_IsEmpty": _st(None), "ST_MinX": _st(0), "ST_MaxX": _st(1), "ST_MinY": _st(2),
                 "ST_MaxY": _st(3)}
"""The SQL functions the GeoPackage 1.2 rtree triggers call (GDAL and SpatiaLite register the same names)."""


def register_functions(con: sqlite3.Connection) -> sqlite3.Connection:
    """Register the ``ST_*`` functions the rtree triggers call on ``con``; returns ``con``.

    Every connection the library opens has them. A plain ``sqlite3`` connection (or the ``sqlite3`` shell)
    without them can read the workspace, delete rows and edit attribute tables, but an insert or update of a
    spatial layer fails with ``no such function: ST_IsEmpty``: register them first (GDAL/QGIS do).

    Examples
    --------
    >>> con = register_functions(sqlite3.connect(":memory:"))
    >>> blob = encode_geometries([shapely.box(1, 2, 3, 4)])[0]
    >>> con.execute("SELECT ST_MinX(?), ST_MaxY(?), ST_IsEmpty(?)", (blob, blob, blob)).fetchone()
    (1.0, 4.0, 0)
    """
    for name, fn in SQL_FUNCTIONS.items():
        con.create_function(name, 1, fn, deterministic=True)
    return con


_READERS: OrderedDict[tuple[str, int, int], list[sqlite3.Connection]] = OrderedDict()
"""Idle read connections per workspace file (path, device, inode), most recently used last."""
_READERS_LOCK = threading.Lock()
_READERS_PER_FILE = 4
_READERS_FILES = 8


def _release_reader(key: tuple[str, int, int], con: sqlite3.Connection) -> sqlite3.Connection | None:
    """Put ``con`` back into the pool; returns it when the pool is full (the caller closes it)."""
    evicted: list[sqlite3.Connection] = []
    left: sqlite3.Connection | None = con
    with _READERS_LOCK:
        idle = _READERS.setdefault(key, [])
        _READERS.move_to_end(key)
        if len(idle) < _READERS_PER_FILE:
            idle.append(con)
            left = None
        while len(_READERS) > _READERS_FILES:
            evicted += _READERS.popitem(last=False)[1]
    for old in evicted:
        old.close()
    return left


def _rtree_name(table: str, column: str) -> str:
    return f"rtree_{table}_{column}"


def create_rtree(con: sqlite3.Connection, table: str, column: str = GEOM_COLUMN) -> None:
    """Give ``table`` the GeoPackage 1.2 spatial index (rtree extension): the virtual table, its
    ``gpkg_extensions`` row, the six standard triggers, and the index of the rows already there.

    ``con`` must have :func:`register_functions` (the triggers and the fill call ``ST_*``).
    """
    con.execute(
        """CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT,
           extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,
           CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"""
    )
    con.execute("INSERT OR IGNORE INTO gpkg_extensions VALUES (?, ?, ?, ?, ?)", (table, column, *RTREE_EXTENSION))
    rt = _q(_rtree_name(table, column))
    con.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {rt} USING rtree(id, minx, maxx, miny, maxy)")
    for name, body in _rtree_triggers(table, column).items():
        con.execute(f"CREATE TRIGGER IF NOT EXISTS {_q(name)} {body}")
    con.execute(f"DELETE FROM {rt}")
    _fill_rtree(con, table, column)


def _fill_rtree(con: sqlite3.Connection, table: str, column: str, *, after_fid: int = 0) -> None:
    """Index the rows of ``table`` with ``fid > after_fid`` at once (a bulk load: the envelopes computed with
    shapely in one go; the insert trigger does the same row by row, several times slower)."""
    rows = con.execute(f"SELECT fid, {_q(column)} FROM {_q(table)} WHERE fid > ? AND {_q(column)} NOT NULL",
                       (after_fid,)).fetchall()
    if not rows:
        return
    fids, blobs = zip(*rows, strict=True)
    geoms = decode_geometries(blobs)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    b = shapely.bounds(geoms[keep])
    con.executemany(f"INSERT OR REPLACE INTO {_q(_rtree_name(table, column))} VALUES (?, ?, ?, ?, ?)",
                    zip(np.asarray(fids)[keep].tolist(), b[:, 0].tolist(), b[:, 2].tolist(), b[:, 1].tolist(),
                        b[:, 3].tolist(), strict=True))


@contextlib.contextmanager
def _triggers_off(con: sqlite3.Connection, names: Sequence[str]) -> Iterator[set[str]]:
    """Drop the named triggers (those that exist) for a bulk write inside the library's transaction, and put them
    back exactly as they were; yields the names dropped. On an error the transaction's ROLLBACK restores them."""
    marks = ", ".join("?" for _ in names)
    found = con.execute(f"SELECT name, sql FROM sqlite_master WHERE type='trigger' AND name IN ({marks})",
                        tuple(names)).fetchall()
    for name, _ in found:
        con.execute(f"DROP TRIGGER {_q(name)}")
    yield {name for name, _ in found}
    for _, sql in found:
        con.execute(sql)


def _rtree_triggers(table: str, column: str) -> dict[str, str]:
    """Name → definition (after ``CREATE TRIGGER name``) of the six GeoPackage 1.2 rtree triggers."""
    rt, t, c, i = _q(_rtree_name(table, column)), _q(table), _q(column), '"fid"'
    values = f"(NEW.{i}, ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c}))"
    name = _rtree_name(table, column)
    triggers = {
        "insert": f"AFTER INSERT ON {t} WHEN (NEW.{c} NOT NULL AND NOT ST_IsEmpty(NEW.{c})) "
                  f"BEGIN INSERT OR REPLACE INTO {rt} VALUES {values}; END",
        "update1": f"AFTER UPDATE OF {c} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{c} NOTNULL AND NOT "
                   f"ST_IsEmpty(NEW.{c})) BEGIN INSERT OR REPLACE INTO {rt} VALUES {values}; END",
        "update2": f"AFTER UPDATE OF {c} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{c} ISNULL OR "
                   f"ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {rt} WHERE id = OLD.{i}; END",
        "update3": f"AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{c} NOTNULL AND NOT "
                   f"ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {rt} WHERE id = OLD.{i}; "
                   f"INSERT OR REPLACE INTO {rt} VALUES {values}; END",
        "update4": f"AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{c} ISNULL OR "
                   f"ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {rt} WHERE id IN (OLD.{i}, NEW.{i}); END",
        "delete": f"AFTER DELETE ON {t} WHEN OLD.{c} NOT NULL BEGIN DELETE FROM {rt} WHERE id = OLD.{i}; END",
    }
    return {f"{name}_{suffix}": body for suffix, body in triggers.items()}


# --------------------------------------------------------------------------------------------------------
# the edit triggers (SQLite)
# --------------------------------------------------------------------------------------------------------

GUARD_TABLE = "ws_edit_guard"
"""One row, ``library`` = 1 only inside the library's own write transactions (never committed as 1): the edit
triggers skip those writes. Other connections never see the uncommitted 1, and cannot write meanwhile."""
_EDIT_OPS = ("INSERT", "UPDATE", "DELETE")


def _create_edit_log(con: sqlite3.Connection) -> None:
    """The side table and the guard (set: the caller is inside one of the library's write transactions).

    The side table refuses to lose rows outside the library (a ``DELETE``/``UPDATE`` that would hide an edit
    aborts); dropping that trigger is itself DDL, which the schema cookie records.
    """
    con.execute(f"CREATE TABLE IF NOT EXISTS {EDITS_TABLE} (layer TEXT NOT NULL, op TEXT NOT NULL, "
                "n INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (layer, op))")
    if not _has_table(con, GUARD_TABLE):
        con.execute(f"CREATE TABLE {GUARD_TABLE} (library INTEGER NOT NULL)")
        con.execute(f"INSERT INTO {GUARD_TABLE} VALUES (1)")
    outside = f"coalesce((SELECT library FROM {GUARD_TABLE}), 0) = 0"
    lose = {"delete": outside,  # counting up (the edit triggers' upsert) is the only change allowed outside
            "update": f"{outside} AND (NEW.n < OLD.n OR NEW.layer IS NOT OLD.layer OR NEW.op IS NOT OLD.op)"}
    for op, when in lose.items():
        con.execute(
            f"CREATE TRIGGER IF NOT EXISTS {_q(f'ws_edits_keep_{op}')} BEFORE {op.upper()} ON {EDITS_TABLE} "
            f"WHEN {when} BEGIN SELECT RAISE(ABORT, '外部编辑记录只能由网格通处理，不能删除或改小'); END"
        )


def _guard_stuck(con: sqlite3.Connection) -> bool:
    """True when the guard is committed as set: the library never commits it so (its transactions clear it
    before ``COMMIT``), so someone switched the recording of outside edits off."""
    if not _has_table(con, GUARD_TABLE) or con.in_transaction:
        return False
    row = con.execute(f"SELECT library FROM {GUARD_TABLE}").fetchone()
    return bool(row and row[0])


def _begin(con: sqlite3.Connection) -> None:
    """Start one of the library's write transactions: take the writer's lock, and set the guard so that the
    edit triggers do not count this transaction's writes (:meth:`Transaction._finish` clears it)."""
    con.execute("BEGIN IMMEDIATE")
    if _has_table(con, GUARD_TABLE):
        con.execute(f"UPDATE {GUARD_TABLE} SET library = 1")


def _create_edit_triggers(con: sqlite3.Connection, table: str) -> None:
    """Triggers counting every row ``table`` gains, changes or loses into :data:`EDITS_TABLE`.

    They call no function, so they run on any connection (GDAL, QGIS, the ``sqlite3`` shell). The library's own
    transactions set :data:`GUARD_TABLE` while they write, so what the side table holds was changed behind
    the library's back.
    """
    _create_edit_log(con)
    lit = table.replace("'", "''")
    for op in _EDIT_OPS:
        con.execute(
            f"CREATE TRIGGER IF NOT EXISTS {_q(f'ws_edit_{table}_{op.lower()}')} AFTER {op} ON {_q(table)} "
            f"WHEN coalesce((SELECT library FROM {GUARD_TABLE}), 0) = 0 BEGIN INSERT INTO {EDITS_TABLE} (layer, op, n) VALUES ('{lit}', '{op.lower()}', 1) "
            "ON CONFLICT (layer, op) DO UPDATE SET n = n + 1; END"
        )


# --------------------------------------------------------------------------------------------------------
# DDL behind the library's back: the schema cookie
# --------------------------------------------------------------------------------------------------------

SCHEMA_COOKIE_KEY = "schema_cookie"
"""``ws_meta`` key: SQLite's schema cookie (``PRAGMA schema_version``, bumped by every ``CREATE``/``ALTER``/``DROP``)
as the library's last write transaction left it. A different cookie at the next look means DDL made outside the
library (QGIS, ogr2ogr, the sqlite3 shell)."""
SCHEMA_OBJECTS_KEY = "schema_objects"
"""``ws_meta`` key: a digest of ``sqlite_master`` at that moment (object → table, hash of its SQL), to tell which
tables the outside DDL touched."""
SCHEMA_OP = "schema"
"""The op under which outside DDL is counted in :data:`EDITS_TABLE` (and so in the “外部编辑” audit row)."""


def _schema_objects(con: sqlite3.Connection) -> dict[str, list[str]]:
    """``type:name`` → ``[table, hash of its SQL]`` for every object of the schema (SQLite's own excluded)."""
    rows = con.execute("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master "
                       "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
    return {f"{kind}:{name}": [table, hashlib.sha1(sql.encode()).hexdigest()[:12]] for kind, name, table, sql in rows}


def _set_meta(con: sqlite3.Connection, key: str, value: str) -> None:
    if not con.execute(f"UPDATE {META_TABLE} SET value = ? WHERE key = ?", (value, key)).rowcount:
        con.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)", (key, value))


def _seal_schema(con: sqlite3.Connection) -> None:
    """Inside a library write transaction, last: remember the schema cookie (and what the schema holds) the
    library leaves, so that only DDL made by others changes it. Computes the digest only when the cookie moved."""
    cookie, stored = con.execute(
        f"SELECT (SELECT schema_version FROM pragma_schema_version()), "
        f"(SELECT value FROM {META_TABLE} WHERE key = '{SCHEMA_COOKIE_KEY}')").fetchone()
    if stored != str(cookie):
        _set_meta(con, SCHEMA_OBJECTS_KEY, json.dumps(_schema_objects(con), sort_keys=True))
        _set_meta(con, SCHEMA_COOKIE_KEY, str(cookie))


def _note_outside_ddl(con: sqlite3.Connection) -> int:
    """Inside a library write transaction, first: when the schema cookie is not the one the library left, count
    the objects created, changed or dropped since into :data:`EDITS_TABLE` (op :data:`SCHEMA_OP`, per table);
    returns how many. A workspace that never stored a cookie (written before it existed) has nothing to compare.
    Changes to the audit table's own objects are not counted (see the comment below); its guard is restored."""
    cookie, stored, objects = con.execute(
        f"SELECT (SELECT schema_version FROM pragma_schema_version()), "
        f"(SELECT value FROM {META_TABLE} WHERE key = '{SCHEMA_COOKIE_KEY}'), "
        f"(SELECT value FROM {META_TABLE} WHERE key = '{SCHEMA_OBJECTS_KEY}')").fetchone()
    if stored is None or stored == str(cookie) or not _has_table(con, EDITS_TABLE):
        return 0
    try:
        before = json.loads(objects or "{}")
    except ValueError:
        before = {}
    now = _schema_objects(con)
    per: dict[str, int] = {}
    for key in set(before) | set(now):
        if before.get(key) != now.get(key):
            table = (now.get(key) or before[key])[0]
            per[table] = per.get(table, 0) + 1
    if per.pop("audit", 0):
        # the audit is not an edited layer: tampering with it is for `audit verify` to find (chain, last revision),
        # and a “外部编辑” row appended now would hide rows cut off its end. Its append-only guard is put back.
        _create_audit_guard(con)
    if not per:  # nothing else moved (or the schema reads the same as before)
        return 0
    con.executemany(f"INSERT INTO {EDITS_TABLE} (layer, op, n) VALUES (?, '{SCHEMA_OP}', ?) "
                    "ON CONFLICT (layer, op) DO UPDATE SET n = n + excluded.n", sorted(per.items()))
    return sum(per.values())


def _outside_ddl_pending(con: sqlite3.Connection) -> bool:
    """True when the schema cookie differs from the one the library's last write left (cheap: one query)."""
    cookie, stored = con.execute(
        f"SELECT (SELECT schema_version FROM pragma_schema_version()), "
        f"(SELECT value FROM {META_TABLE} WHERE key = '{SCHEMA_COOKIE_KEY}')").fetchone()
    return stored is not None and stored != str(cookie)


# --------------------------------------------------------------------------------------------------------
# the workspace
# --------------------------------------------------------------------------------------------------------

class GpkgWorkspace(Workspace):
    """A county workspace stored in one GeoPackage file.

    Parameters
    ----------
    path : str or Path
        An existing workspace file (made by :meth:`create` or ``python -m grids demo``).

    Raises
    ------
    WorkspaceError
        The file is missing, not a GeoPackage, damaged, or not a 网格通 workspace. Storage failures of reads and
        writes (read-only file or directory, disk full, a damaged page) are WorkspaceError too, one line each.

    Notes
    -----
    A workspace made by an older version (``schema`` in ``ws_meta`` below :data:`SCHEMA_VERSION`) is upgraded
    when it is opened: see :meth:`_upgrade`. Opening an up-to-date workspace costs one query more than before.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise WorkspaceError(
                f"工作区文件不存在：{self.path}。修正方法：先运行 `python -m grids demo {self.path}` 生成演示工作区，"
                "或检查路径"
            )
        try:
            with self._reading() as con:
                app_id = con.execute("PRAGMA application_id").fetchone()[0]
                has_meta = con.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", (META_TABLE,)
                ).fetchone()[0]
                schema = con.execute(
                    f"SELECT value FROM {META_TABLE} WHERE key='schema'"
                ).fetchone() if has_meta else None
                edited = _has_table(con, EDITS_TABLE) and (con.execute(
                    f"SELECT 1 FROM {EDITS_TABLE} LIMIT 1").fetchone() is not None or _outside_ddl_pending(con))
        except sqlite3.DatabaseError as exc:
            raise (workspace_error(exc, self.path) or WorkspaceError(
                f"无法打开工作区 {self.path}：{exc}。文件可能已损坏或被截断；修正方法：从备份恢复，或重新生成"
            )) from exc
        if app_id != APPLICATION_ID or not has_meta:
            raise WorkspaceError(
                f"{self.path} 不是网格通工作区（缺少 GeoPackage 标识或 {META_TABLE} 表）。"
                "修正方法：用 `python -m grids import` 把数据导入一个工作区，而不是直接打开"
            )
        self.notice: str | None = None
        """Set when edits made outside the library could not be recorded (read-only workspace); else None."""
        if _schema_version(schema) < SCHEMA_VERSION:
            self._upgrade()
            migrate_data(self, _schema_version(schema))
        if edited:
            self._absorb_external_edits()

    # -- creation -----------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, county_code: str, county_name: str, demo: bool = False,
               overwrite: bool = False) -> GpkgWorkspace:
        """Create an empty workspace with every layer of :data:`grids.model.LAYERS`.

        The file is written next to ``path`` and moved into place only when complete.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise WorkspaceError(f"{path} 已存在。修正方法：换一个文件名，或传 overwrite=True（命令行 --force）覆盖")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
        try:
            con = register_functions(sqlite3.connect(tmp, isolation_level=None))
            try:
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {USER_VERSION}")
                con.execute("BEGIN")
                _create_core_tables(con)
                for name, layer in LAYERS.items():
                    _create_layer(con, name, layer)
                _create_table(con, META_TABLE, {"key": "TEXT", "value": "TEXT"}, "工作区元数据")
                _create_edit_triggers(con, META_TABLE)
                _create_audit_guard(con)
                meta = {
                    "county_code": county_code,
                    "county_name": county_name,
                    "revision": "0",
                    "demo": "1" if demo else "0",
                    "created_at": _now(),
                    "schema": str(SCHEMA_VERSION),
                }
                con.executemany(
                    f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)", list(meta.items())
                )
                _seal_schema(con)
                con.execute(f"UPDATE {GUARD_TABLE} SET library = 0")
                con.execute("COMMIT")
            finally:
                con.close()
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return cls(path)

    # -- reading ------------------------------------------------------------------------------------------

    def _connect(self, *, shared: bool = False) -> sqlite3.Connection:
        con = register_functions(sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                                 check_same_thread=not shared))
        con.execute("PRAGMA busy_timeout = 60000")
        return con

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads, reused from a small pool per file (see :data:`_READERS`).

        Opening a connection costs its first query a parse of the whole schema (1.2 ms on the demo, with the
        rtree and edit triggers); the app reads the revision, metadata and small layers several times a run.
        Pooled connections are autocommit, so every statement sees the latest commit; a file replaced at the
        same path has another inode and so another pool.
        """
        try:
            st = os.stat(self.path)
            key = (str(self.path), st.st_dev, st.st_ino)
        except OSError:
            key = None
        con = None
        if key is not None:
            with _READERS_LOCK:
                idle = _READERS.get(key)
                if idle:
                    con = idle.pop()
                    _READERS.move_to_end(key)
        if con is None:
            con = self._connect(shared=True)
        keep = False
        try:
            yield con
            keep = key is not None and not con.in_transaction
        finally:
            if keep and key is not None:
                con = _release_reader(key, con)
            if con is not None:
                con.close()

    def _absorb_external_edits(self) -> bool:
        """Turn edits made outside the library into one chained “外部编辑” audit row and a new revision.

        Returns True when there were any. On a read-only workspace nothing is written: :attr:`notice` says so.
        """
        with _storage_errors(self.path), contextlib.closing(self._connect()) as con:
            if not _has_table(con, EDITS_TABLE):
                return False
            ddl = _outside_ddl_pending(con)
            if not ddl and not _guard_stuck(con) and \
                    not con.execute(f"SELECT 1 FROM {EDITS_TABLE} LIMIT 1").fetchone():
                return False
            try:
                stuck = _guard_stuck(con)
                _begin(con)
                rev = int(con.execute(f"SELECT value FROM {META_TABLE} WHERE key='revision'").fetchone()[0])
                # a revision set back outside would hand out a number caches already hold: never below the trail
                rev = max(rev, int(con.execute("SELECT coalesce(max(revision), 0) FROM audit").fetchone()[0]))
                _note_outside_ddl(con)
                if stuck:  # the recording was switched off outside the library: say so in the trail
                    con.execute(f"INSERT INTO {EDITS_TABLE} (layer, op, n) VALUES ('{GUARD_TABLE}', 'guard', 1) "
                                "ON CONFLICT (layer, op) DO UPDATE SET n = n + 1")
                # triggers dropped outside (or lost with a layer rebuilt by GDAL) are put back: later edits count
                tables = [r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")]
                for table in [*edit_logged_tables(tables), META_TABLE]:
                    if _has_table(con, table):
                        _create_edit_triggers(con, table)
                _record_external_edits(con, rev, transaction=GpkgTransaction)
                _seal_schema(con)
                con.execute(f"UPDATE {GUARD_TABLE} SET library = 0")  # later outside edits count again
                con.execute("COMMIT")
                self.notice = None
            except sqlite3.OperationalError as exc:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                if "readonly" not in str(exc) and "read-only" not in str(exc):
                    raise
                rows = con.execute(f"SELECT layer, op, n FROM {EDITS_TABLE}").fetchall()
                if ddl:
                    rows.append(("数据库结构", SCHEMA_OP, 1))
                self.notice = read_only_notice(self.path, external_edit_notes(rows))
        return True

    @property
    def target(self) -> str:
        """Where the workspace lives (its path; PostGIS workspaces give their URL)."""
        return str(self.path)

    @property
    def meta(self) -> dict[str, str]:
        """Workspace metadata: ``county_code``, ``county_name``, ``revision``, ``demo``, ``created_at`` (not the
        backend's own bookkeeping: :data:`SCHEMA_COOKIE_KEY`, :data:`SCHEMA_OBJECTS_KEY`)."""
        with _storage_errors(self.path), self._reading() as con:
            return dict(con.execute(f"SELECT key, value FROM {META_TABLE} WHERE key NOT IN (?, ?)",
                                    (SCHEMA_COOKIE_KEY, SCHEMA_OBJECTS_KEY)).fetchall())

    @property
    def revision(self) -> int:
        """Number of committed changes; caches key on it.

        Edits made outside the library since the last look (QGIS, ogr2ogr, sqlite3) are recorded first (one
        “外部编辑” audit row), so the revision moves and caches keyed on it refresh.
        """
        with _storage_errors(self.path), self._reading() as con:
            logged = _has_table(con, EDITS_TABLE)
            pending = f"EXISTS (SELECT 1 FROM {EDITS_TABLE})" if logged else "0"
            guard = f"(SELECT library FROM {GUARD_TABLE})" if logged and _has_table(con, GUARD_TABLE) else "0"
            value, edited, cookie, stored, stuck = con.execute(
                f"SELECT (SELECT value FROM {META_TABLE} WHERE key='revision'), {pending}, "
                "(SELECT schema_version FROM pragma_schema_version()), "
                f"(SELECT value FROM {META_TABLE} WHERE key='{SCHEMA_COOKIE_KEY}'), {guard}").fetchone()
            edited = edited or bool(stuck) or (logged and stored is not None and stored != str(cookie))
        if edited and self.notice is None and self._absorb_external_edits() and self.notice is None:
            return int(self.meta.get("revision", "0"))
        return int(value or 0)

    @property
    def is_demo(self) -> bool:
        """True for a workspace made by the demo generator."""
        return self.meta.get("demo") == "1"

    def layers(self) -> list[str]:
        """Names of the data tables in the workspace (GeoPackage contents, without our metadata)."""
        with _storage_errors(self.path), self._reading() as con:
            rows = con.execute("SELECT table_name FROM gpkg_contents ORDER BY table_name").fetchall()
        return [r[0] for r in rows if r[0] != META_TABLE]

    def columns(self, layer: str) -> dict[str, str]:
        """Column name → SQL type of ``layer`` (geometry and ``fid`` excluded)."""
        self._check_layer(layer)
        with _storage_errors(self.path), self._reading() as con:
            return _table_columns(con, layer)

    def read(self, layer: str, *, where: str | None = None, params: Sequence[Any] = (),
             columns: Sequence[str] | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a layer as a GeoDataFrame (EPSG:4490) or, for attribute tables, a DataFrame.

        Parameters
        ----------
        layer : str
            A layer name from :data:`grids.model.LAYERS` (or one added by an importer).
        where : str, optional
            An SQL condition with ``?`` placeholders, e.g. ``"plan_id = ?"``.
        params : sequence
            Values for the placeholders.
        columns : sequence of str, optional
            Only these attribute columns (the geometry is always included for spatial layers).
        """
        self._check_layer(layer)
        with _storage_errors(self.path), self._reading() as con:
            types = _table_columns(con, layer)
            geom_col = _geometry_column(con, layer)
            cols = _requested_columns(layer, types, columns)
            select = [_q(c) for c in cols] + ([_q(geom_col)] if geom_col else [])
            sql = f"SELECT {', '.join(select) or '*'} FROM {_q(layer)}"
            if where:
                sql += f" WHERE {where}"
            sql += " ORDER BY fid"
            with no_gc():  # millions of small tuples: the cyclic GC would rescan them over and over
                rows = con.execute(sql, tuple(params)).fetchall()
                data: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in select]
                del rows
        geoms = decode_geometries(list(data[len(cols)])) if geom_col else None
        return _layer_frame(cols, types, data, geoms)

    def count(self, layer: str, *, where: str | None = None, params: Sequence[Any] = ()) -> int:
        """Number of rows of ``layer`` (matching ``where``)."""
        self._check_layer(layer)
        sql = f"SELECT count(*) FROM {_q(layer)}" + (f" WHERE {where}" if where else "")
        with _storage_errors(self.path), self._reading() as con:
            return int(con.execute(sql, tuple(params)).fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` when the file is sound)."""
        with contextlib.closing(self._connect()) as con:
            return str(con.execute("PRAGMA integrity_check").fetchone()[0])

    def _check_layer(self, layer: str) -> None:
        with _storage_errors(self.path), self._reading() as con:
            ok = con.execute("SELECT 1 FROM gpkg_contents WHERE table_name = ?", (layer,)).fetchone()
        if not ok or layer == META_TABLE:
            raise ValidationError(
                f"工作区里没有图层 “{layer}”", fix=f"可用的图层：{', '.join(self.layers())}"
            )

    def audit_records(self) -> list[tuple[Any, ...]]:
        """Every audit row as ``(fid, at, actor, action, layer, revision, detail, prev_hash, hash)`` in fid order.

        ``at`` is the stored text (what the hash covers). For :func:`grids.audit.verify`.
        """
        with _storage_errors(self.path), contextlib.closing(self._connect()) as con:
            chained = {"prev_hash", "hash"} <= set(_table_columns(con, "audit"))
            hashes = "prev_hash, hash" if chained else "NULL, NULL"
            return con.execute(
                f"SELECT fid, {', '.join(_q(c) for c in AUDIT_COLUMNS)}, {hashes} FROM audit ORDER BY fid"
            ).fetchall()

    def audit_head(self) -> tuple[str | None, int]:
        """The last audit row's hash and the number of audit rows (one query; :func:`grids.audit.chain_head`)."""
        with _storage_errors(self.path), self._reading() as con:
            chained = "hash" in _table_columns(con, "audit")
            last = "(SELECT hash FROM audit ORDER BY fid DESC LIMIT 1)" if chained else "NULL"
            row = con.execute(f"SELECT {last}, (SELECT count(*) FROM audit)").fetchone()
        return row[0], int(row[1])

    # -- upgrade ------------------------------------------------------------------------------------------

    def _upgrade(self) -> None:
        """Bring a workspace made by an older version up to :data:`SCHEMA_VERSION`, in one transaction.

        Adds the columns of :data:`grids.model.LAYERS` that its tables lack, computes the hash chain of the audit
        rows already there (once, from :data:`grids.audit.GENESIS`: the documented exception to "hashes are
        written with the row"), installs the append-only triggers, sets ``schema`` and records the upgrade in
        the audit. ``BEGIN IMMEDIATE`` and a second look at ``schema`` make two processes opening the file at once
        upgrade it once. A read-only file is left as it is (it can still be read).
        """
        con = self._connect()
        try:
            with _storage_errors(self.path):
                try:
                    _begin(con)
                    row = con.execute(f"SELECT value FROM {META_TABLE} WHERE key='schema'").fetchone()
                    found = _schema_version(row)
                    if found >= SCHEMA_VERSION:
                        con.execute("ROLLBACK")
                        return
                    rev = int(con.execute(f"SELECT value FROM {META_TABLE} WHERE key='revision'").fetchone()[0])
                    tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
                    added = add_missing_columns(con, tables, table_columns=_table_columns)
                    for name, layer in LAYERS.items():  # layers declared since (audit, login_failures)
                        if name not in tables:
                            _create_layer(con, name, layer)
                            added.append(name)
                    con.execute("DROP TRIGGER IF EXISTS audit_no_update")
                    con.execute("DROP TRIGGER IF EXISTS audit_no_delete")
                    old = con.execute(
                        f"SELECT fid, {', '.join(_q(c) for c in AUDIT_COLUMNS)} FROM audit ORDER BY fid"
                    ).fetchall()
                    # only a trail that was never chained is chained here: re-hashing rows that carry hashes
                    # would launder an edited trail (verify then names the rows that do not chain)
                    chained = con.execute("SELECT count(*) FROM audit WHERE hash IS NOT NULL").fetchone()[0]
                    if chained == 0:
                        con.executemany("UPDATE audit SET prev_hash=?, hash=? WHERE fid=?", chain_rows(old))
                    _create_audit_guard(con)
                    indexed = _install_v5(con)
                    con.execute(f"DELETE FROM {META_TABLE} WHERE key='schema'")
                    con.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                    tx = GpkgTransaction(con, actor="system", action="升级工作区", revision=rev + 1)
                    tx.changed = True
                    tx.note("audit", {"op": "upgrade", "schema_from": found, "schema_to": SCHEMA_VERSION,
                                      "columns_added": added, "rows_chained": 0 if chained else len(old),
                                      "rtree_added": indexed,
                                      "genesis": GENESIS[:16]})
                    tx._finish(rev)
                    con.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    if "readonly" not in str(exc):
                        raise
        finally:
            con.close()

    # -- writing ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, actor: str, action: str,
                    expected_revision: int | None = None) -> Iterator[GpkgTransaction]:
        """Open a write transaction: all of its changes land together, or none does.

        Parameters
        ----------
        actor : str
            Who makes the change (account name, ``cli``, ``demo``…); recorded in the audit trail.
        action : str
            What the change is (``导入``, ``生成网格``, ``分配``…); recorded in the audit trail.
        expected_revision : int, optional
            The workspace revision the caller last read. When the stored revision differs, nothing is written
            and :class:`~grids.errors.StaleRevisionError` is raised.

        Raises
        ------
        WorkspaceError
            The file cannot be written (read-only, disk full, damaged, busy); nothing was written.
        """
        con = self._connect()
        try:
            with _storage_errors(self.path):
                try:
                    _begin(con)
                    rev = int(con.execute(f"SELECT value FROM {META_TABLE} WHERE key='revision'").fetchone()[0])
                    if _has_table(con, EDITS_TABLE):
                        _note_outside_ddl(con)
                        rev = _record_external_edits(con, rev, transaction=GpkgTransaction)
                    _check_revision(rev, expected_revision)
                    tx = GpkgTransaction(con, actor=actor, action=action, revision=rev + 1)
                    yield tx
                    tx._finish(rev)
                    con.execute("COMMIT")
                except BaseException:
                    if con.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            con.execute("ROLLBACK")
                    raise
        finally:
            con.close()


class GpkgTransaction(Transaction):
    """The changes of one :meth:`GpkgWorkspace.transaction` (SQLite); see :class:`~grids.workspace.base.Transaction`."""

    def read(self, layer: str, *, where: str | None = None, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Read attribute columns inside the transaction (sees its own uncommitted changes; no geometry)."""
        types = _table_columns(self._con, layer)
        sql = f"SELECT {', '.join(_q(c) for c in types)} FROM {_q(layer)}" + (f" WHERE {where}" if where else "")
        rows = self._con.execute(sql + " ORDER BY fid", tuple(params)).fetchall()
        data: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in types]
        return _layer_frame(list(types), types, data, None)

    def _layer_schema(self, layer: str) -> tuple[dict[str, str], str | None, str | None]:
        """Column types, geometry column and geometry type of ``layer``, creating it when declared."""
        con = self._con
        if not con.execute("SELECT 1 FROM gpkg_contents WHERE table_name=?", (layer,)).fetchone():
            if layer not in LAYERS:
                raise ValidationError(f"工作区里没有图层 “{layer}”", fix="先在 grids.model.LAYERS 中声明该图层")
            _create_layer(con, layer, LAYERS[layer])
        geom_col = _geometry_column(con, layer)
        gtype = con.execute("SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name=?",
                            (layer,)).fetchone()[0] if geom_col else None
        return _table_columns(con, layer), geom_col, gtype

    def _delete_all(self, layer: str) -> None:
        """Delete every row of ``layer`` at once: the spatial index dropped and made anew (much faster than
        emptying it), the per-row delete triggers off meanwhile (they are back before COMMIT)."""
        con = self._con
        geom_col = _geometry_column(con, layer)
        rtree = _rtree_name(layer, geom_col) if geom_col else None
        with _triggers_off(con, [f"{rtree}_delete", f"ws_edit_{layer}_delete"] if rtree else [f"ws_edit_{layer}_delete"]):
            if rtree and _has_table(con, rtree):
                con.execute(f"DROP TABLE {_q(rtree)}")
                con.execute(f"CREATE VIRTUAL TABLE {_q(rtree)} USING rtree(id, minx, maxx, miny, maxy)")
            con.execute(f"DELETE FROM {_q(layer)}")

    def _add_column(self, layer: str, column: str, sql_type: str) -> None:
        self._con.execute(f"ALTER TABLE {_q(layer)} ADD COLUMN {_q(column)} {sql_type}")

    def _write_rows(self, layer: str, cols: list[str], series: list[list[Any]], geom_col: str | None) -> None:
        con = self._con
        placeholders = ", ".join("?" for _ in cols)
        insert = f"INSERT INTO {_q(layer)} ({', '.join(_q(c) for c in cols)}) VALUES ({placeholders})"
        if len(series[0]) >= _BULK_ROWS:  # per-row triggers off; the new rows indexed in one go after the insert
            last = con.execute(f"SELECT coalesce(max(fid), 0) FROM {_q(layer)}").fetchone()[0]
            rtree = _rtree_name(layer, geom_col) if geom_col else None
            with _triggers_off(con, [f"ws_edit_{layer}_insert", *([f"{rtree}_insert"] if rtree else [])]) as off:
                con.executemany(insert, zip(*series, strict=True))
                if rtree and geom_col and f"{rtree}_insert" in off:
                    _fill_rtree(con, layer, geom_col, after_fid=last)
        else:
            con.executemany(insert, zip(*series, strict=True))
        if geom_col:
            _update_extent(con, layer, geom_col)
        con.execute("UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (_now(), layer))

    def _forget_own_edits(self) -> None:
        """Clear the guard :func:`_begin` set: writes after this transaction are someone else's; remember the
        schema cookie the library leaves (:func:`_seal_schema`)."""
        if _has_table(self._con, GUARD_TABLE):
            _seal_schema(self._con)
            self._con.execute(f"UPDATE {GUARD_TABLE} SET library = 0")


# --------------------------------------------------------------------------------------------------------
# GeoPackage DDL
# --------------------------------------------------------------------------------------------------------

def _create_core_tables(con: sqlite3.Connection) -> None:
    con.execute(
        """CREATE TABLE gpkg_spatial_ref_sys (
            srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
            organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT)"""
    )
    con.execute(
        """CREATE TABLE gpkg_contents (
            table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
            description TEXT DEFAULT '',
            last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
            CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id))"""
    )
    con.execute(
        """CREATE TABLE gpkg_geometry_columns (
            table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
            srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
            CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
            CONSTRAINT uk_gc_table_name UNIQUE (table_name),
            CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
            CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))"""
    )
    srs = [
        ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
        ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
        ("WGS 84 geodetic", 4326, "EPSG", 4326, pyproj.CRS(4326).to_wkt("WKT1_GDAL"),
         "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"),
        ("China Geodetic Coordinate System 2000", STORAGE_EPSG, "EPSG", STORAGE_EPSG,
         pyproj.CRS(STORAGE_EPSG).to_wkt("WKT1_GDAL"), "CGCS2000 geographic 2D"),
    ]
    con.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", srs)


def _create_table(con: sqlite3.Connection, name: str, columns: Mapping[str, str], description: str,
                  geometry: str | None = None) -> None:
    cols = ["fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"]
    if geometry:
        cols.append(f"{GEOM_COLUMN} {geometry}")
    cols += [f"{_q(c)} {t}" for c, t in columns.items()]
    con.execute(f"CREATE TABLE {_q(name)} ({', '.join(cols)})")
    con.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, srs_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (name, "features" if geometry else "attributes", name, description, _now(),
         STORAGE_EPSG if geometry else None),
    )
    if geometry:
        con.execute(
            "INSERT INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, 0, 0)", (name, GEOM_COLUMN, geometry, STORAGE_EPSG)
        )


def _create_audit_guard(con: sqlite3.Connection) -> None:
    """Triggers that make the audit table append-only (an ``UPDATE`` or ``DELETE`` aborts its statement)."""
    for op in ("UPDATE", "DELETE"):
        con.execute(
            f"CREATE TRIGGER IF NOT EXISTS audit_no_{op.lower()} BEFORE {op} ON audit "
            f"BEGIN SELECT RAISE(ABORT, '{AUDIT_APPEND_ONLY}'); END"
        )


def _create_layer(con: sqlite3.Connection, name: str, layer: Layer) -> None:
    _create_table(con, name, layer.columns, layer.description, layer.geometry)
    if layer.geometry:
        create_rtree(con, name)
    if name != "audit":
        _create_edit_triggers(con, name)
    for col in (layer.key, *layer.indexes):
        if col:
            unique = "UNIQUE " if col == layer.key and name != "grids" else ""
            con.execute(f"CREATE {unique}INDEX {_q(f'idx_{name}_{col}')} ON {_q(name)} ({_q(col)})")


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def _install_v5(con: sqlite3.Connection) -> list[str]:
    """Schema 5 on an older workspace: an rtree on every spatial layer lacking one, and the edit triggers on
    every data table; returns the layers indexed."""
    indexed = []
    for table, column in con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall():
        if not _has_table(con, _rtree_name(table, column)):
            create_rtree(con, table, column)
            indexed.append(table)
    tables = [r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")]
    for table in edit_logged_tables(tables):
        _create_edit_triggers(con, table)
    return indexed


def _table_columns(con: sqlite3.Connection, table: str) -> dict[str, str]:
    geom = _geometry_column(con, table)
    rows = con.execute(f"PRAGMA table_info({_q(table)})").fetchall()
    return {r[1]: (r[2] or "TEXT").upper() for r in rows if r[1] not in ("fid", geom)}


def _geometry_column(con: sqlite3.Connection, table: str) -> str | None:
    row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?", (table,)).fetchone()
    return row[0] if row else None


def _update_extent(con: sqlite3.Connection, layer: str, geom_col: str) -> None:
    blobs = [r[0] for r in con.execute(f"SELECT {_q(geom_col)} FROM {_q(layer)} WHERE {_q(geom_col)} IS NOT NULL")]
    if not blobs:
        return
    b = shapely.bounds(decode_geometries(blobs))
    con.execute(
        "UPDATE gpkg_contents SET min_x=?, min_y=?, max_x=?, max_y=? WHERE table_name=?",
        (float(np.nanmin(b[:, 0])), float(np.nanmin(b[:, 1])), float(np.nanmax(b[:, 2])),
         float(np.nanmax(b[:, 3])), layer),
    )
