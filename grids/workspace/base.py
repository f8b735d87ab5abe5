"""What every workspace backend shares: the :class:`Workspace` base the rest of the code types against, the
:class:`Transaction` base, value and geometry conversion, the audit row of a change, and the constants.

Two backends implement it side by side: :mod:`grids.workspace.gpkg` (one GeoPackage file, the embedded default)
and :mod:`grids.workspace.postgis` (one PostgreSQL schema). Neither imports the other;
:func:`grids.workspace.open_workspace` picks one from the target.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import gc
import json
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.audit import GENESIS, chain_rows
from grids.errors import StaleRevisionError, ValidationError, WorkspaceError
from grids.model import LAYERS, STORAGE_EPSG

GEOM_COLUMN = "geom"
META_TABLE = "ws_meta"
_ENVELOPE_LEN = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_PROMOTE: dict[str, Callable[[list[Any]], shapely.Geometry]] = {
    "MULTIPOLYGON": shapely.MultiPolygon, "MULTILINESTRING": shapely.MultiLineString}
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
SCHEMA_VERSION = 7
"""The workspace schema this code writes (``schema`` in ``ws_meta``); older workspaces are upgraded on open.

1: the layers of the first releases. 2: per-row ``version`` of grids and households, sign-in lockout columns of
accounts, the append-only, hash-chained audit (:mod:`grids.audit`). 3: ``login_failures``. 4: ``seats``,
``name_aliases``, derived admin units. 5: a GeoPackage rtree spatial index on every spatial layer, and the
triggers recording edits made outside the library (:data:`EDITS_TABLE`). 6: ``plan_forks`` (the published
plan's assignments when a draft was made, for the three-way merge at publication), ``quota_per_day`` of staff and
branches, ``surveys`` (农户信息采集), ``credit_rules`` (per-branch approval authority and product-rule overrides)
and the households' ``job_level``, ``payroll``, ``credit_legacy``, ``credit_note``. 7: ``loan_totals`` (loan
balances by month, branch and product), ``reports`` (the monthly reports issued) and ``credit_events`` (签约/用信
events), the households' signed / available / balance values turned into opening events once
(:func:`migrate_data`)."""
AUDIT_APPEND_ONLY = "审计记录只能追加，不能修改或删除"
AUDIT_COLUMNS = ("at", "actor", "action", "layer", "revision", "detail")
"""The audit columns covered by a row's hash (with ``prev_hash``)."""


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small tuples or lists (it would rescan
    them over and over: reads are about 3x faster)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime(_TS_FORMAT)[:-4] + "Z"


def _q(name: str) -> str:
    """Quote an SQL identifier (column names such as ``using`` are SQL keywords)."""
    return '"' + name.replace('"', '""') + '"'
def workspace_error(exc: BaseException, target: object) -> WorkspaceError | None:
    """The one-line :class:`WorkspaceError` for a storage failure (read-only, disk full, damaged, busy), else None.

    Errors of the statement itself (a duplicate key, an unknown column) are not storage failures and give None:
    they are raised as they are.

    Examples
    --------
    >>> import sqlite3
    >>> print(workspace_error(sqlite3.OperationalError("database or disk is full"), "ws.gpkg"))
    磁盘已满：工作区 ws.gpkg 这次没有写入任何内容。修正方法：清理工作区所在磁盘的空间后重做
    >>> workspace_error(sqlite3.IntegrityError("UNIQUE constraint failed"), "ws.gpkg") is None
    True
    """
    text = " ".join(str(exc).split())
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        msg = (f"工作区是只读的：{target}（{text}），这次没有写入任何内容。修正方法：让运行网格通的账号对该文件及其所在目录"
               "有写权限（只读挂载的盘改为可写），或把工作区复制到可写的位置后打开")
    elif "disk is full" in low or "no space" in low:
        msg = f"磁盘已满：工作区 {target} 这次没有写入任何内容。修正方法：清理工作区所在磁盘的空间后重做"
    elif "malformed" in low or "not a database" in low or "corrupt" in low:
        msg = (f"工作区文件已损坏：{target}（{text}）。修正方法：从备份恢复该文件（恢复后可用 "
               "`python -m grids audit verify 文件` 检查），或重新导入数据生成新的工作区")
    elif "unable to open" in low:
        msg = (f"无法打开工作区文件：{target}（{text}）。修正方法：确认文件存在，且文件和所在目录都可读写"
               "（目录不可写时无法建立写入日志）")
    elif "database is locked" in low or "busy" in low:
        msg = f"工作区 {target} 正被另一个程序长时间占用（{text}）。修正方法：稍后重试，或关闭正在写该文件的程序"
    elif "disk i/o error" in low:
        msg = f"读写工作区 {target} 时磁盘出错（{text}）。修正方法：检查磁盘空间和磁盘状态后重试，必要时从备份恢复"
    else:
        return None
    return WorkspaceError(msg)


# --------------------------------------------------------------------------------------------------------
# geometry blobs (GeoPackage binary, also what PostGIS is fed)
# --------------------------------------------------------------------------------------------------------

def encode_geometries(geoms: Sequence[Any] | np.ndarray, *, srs_id: int = STORAGE_EPSG,
                      promote: str | None = None) -> list[bytes | None]:
    """Encode shapely geometries as GeoPackage binary blobs (``GP`` header, envelope, WKB).

    ``None`` and empty geometries become SQL NULL. ``promote`` (``MULTIPOLYGON``/``MULTILINESTRING``) wraps
    single parts so that each blob matches the layer's declared type.
    """
    arr = np.asarray(geoms, dtype=object)
    if arr.size == 0:
        return []
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    if promote in _PROMOTE:
        multi = _PROMOTE[promote]
        single_type = {"MULTIPOLYGON": 3, "MULTILINESTRING": 1}[promote]
        types = shapely.get_type_id(arr)
        arr = arr.copy()
        for j in np.flatnonzero((types == single_type) & ~missing):
            arr[j] = multi([arr[j]])
    wkb = shapely.to_wkb(arr, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(arr)
    types = shapely.get_type_id(arr)
    out: list[bytes | None] = []
    for i in range(arr.size):
        if missing[i]:
            out.append(None)
        elif types[i] == 0:  # points carry no envelope
            out.append(b"GP\x00\x01" + struct.pack("<i", srs_id) + wkb[i])
        else:
            minx, miny, maxx, maxy = bounds[i]
            out.append(b"GP\x00\x03" + struct.pack("<i4d", srs_id, minx, maxx, miny, maxy) + wkb[i])
    return out


def decode_geometries(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Decode GeoPackage binary blobs into a numpy array of shapely geometries (``None`` for NULL)."""
    wkbs: list[bytes | None] = []
    for b in blobs:
        if b is None:
            wkbs.append(None)
            continue
        if b[:2] != b"GP":
            raise WorkspaceError("几何数据不是 GeoPackage 格式的二进制（缺少 GP 头）；文件可能已损坏")
        flags = b[3]
        if flags & 0b10000:  # empty flag
            wkbs.append(None)
            continue
        wkbs.append(bytes(b[8 + _ENVELOPE_LEN[(flags >> 1) & 0b111]:]))
    return shapely.from_wkb(np.asarray(wkbs, dtype=object))


def _demote_single_parts(geoms: np.ndarray) -> np.ndarray:
    """Multi-geometries with exactly one part are returned as that part (what the library works with)."""
    if geoms.size == 0:
        return geoms
    types = shapely.get_type_id(geoms)
    single = ((types == 5) | (types == 6)) & (shapely.get_num_geometries(geoms) == 1)
    if single.any():
        geoms = geoms.copy()
        geoms[single] = shapely.get_geometry(geoms[single], 0)
    return geoms


# --------------------------------------------------------------------------------------------------------
# edits made outside the library (QGIS/GDAL, ogr2ogr, sqlite3, psql): shared parts
# --------------------------------------------------------------------------------------------------------

EDITS_TABLE = "ws_external_edits"
"""Side table the edit triggers count into: one row per (layer, op) with the number of rows changed."""
EXTERNAL_EDIT_ACTION = "外部编辑"
"""The audit action of the row that records edits made outside the library."""
EXTERNAL_ACTOR = "外部程序"
"""The audit actor of that row (the triggers cannot know who edited the file)."""
def edit_logged_tables(tables: Sequence[str]) -> list[str]:
    """The tables whose changes the edit triggers count: every data layer and the metadata, not the audit
    (append-only already) nor the rtree indexes."""
    return [t for t in tables if t != "audit" and not t.startswith("rtree_")]


def external_edit_notes(rows: Sequence[tuple[str, str, int]]) -> list[tuple[str, dict[str, Any]]]:
    """Audit notes (layer, detail) of pending ``(layer, op, n)`` rows: one per layer, rows counted per op.

    Examples
    --------
    >>> external_edit_notes([("staff", "update", 2), ("staff", "insert", 1), ("branches", "delete", 1)])
    [('branches', {'op': 'external', 'delete': 1}), ('staff', {'op': 'external', 'insert': 1, 'update': 2})]
    """
    per: dict[str, dict[str, Any]] = {}
    for layer, op, n in sorted(rows):
        per.setdefault(layer, {"op": "external"})[op] = int(n)
    return list(per.items())


def read_only_notice(target: object, notes: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The message shown when external edits are pending but the workspace cannot be written."""
    what = "、".join(f"{layer}（{sum(v for k, v in d.items() if k != 'op')} 行）" for layer, d in notes)
    return (f"工作区 {target} 有在网格通之外（QGIS、ogr2ogr、sqlite3 等）所做的修改尚未记入审计：{what}。"
            "工作区是只读的，无法记录，版本号没有变化，页面可能仍显示修改前的数据。"
            "修正方法：让运行网格通的账号对工作区可写后重新打开，修改会记为一条“外部编辑”审计记录")


def _record_external_edits(con: Any, rev: int, *, transaction: Callable[..., Transaction] | None = None) -> int:
    """Inside a write transaction at revision ``rev``: one “外部编辑” audit row for the pending side-table rows
    (both backends: ``transaction`` is the backend's :class:`Transaction` class); returns the new revision
    (``rev`` when none was pending)."""
    rows = con.execute(f"DELETE FROM {EDITS_TABLE} RETURNING layer, op, n").fetchall()
    if not rows:
        return rev
    tx = (transaction or Transaction)(con, actor=EXTERNAL_ACTOR, action=EXTERNAL_EDIT_ACTION, revision=rev + 1)
    for layer, detail in external_edit_notes(rows):
        tx.note(layer, detail)
    tx.changed = True
    tx._finish(rev, release=False)  # the caller's transaction goes on: its writes stay its own
    return rev + 1


# --------------------------------------------------------------------------------------------------------
# value conversion
# --------------------------------------------------------------------------------------------------------

def _to_sql_values(series: pd.Series, sql_type: str) -> list[Any]:
    """Column values as Python objects SQLite stores in the GeoPackage type ``sql_type`` (NULL for missing)."""
    isna = pd.isna(series).to_numpy()
    values: list[Any]
    if sql_type == "BOOLEAN":
        values = np.where(isna, 0, series.fillna(False).astype(bool).to_numpy()).astype(int).tolist()
    elif sql_type == "INTEGER":
        values = series.astype("Float64").fillna(0).astype("int64").tolist()
    elif sql_type == "REAL":
        values = series.astype(float).tolist()
    elif sql_type == "DATE":
        values = pd.to_datetime(series, errors="coerce").dt.strftime("%Y-%m-%d").tolist()
    elif sql_type == "DATETIME":
        ts = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        values = ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23).add("Z").tolist()
    else:
        values = series.astype(object).where(~isna, None).map(lambda v: v if v is None else str(v)).tolist()
    if isna.any():
        nullable: list[Any] = values  # whichever branch made it: its missing entries become None
        for i in np.flatnonzero(isna):
            nullable[i] = None
    return values


def _from_sql_values(values: list[Any], sql_type: str) -> pd.Series:
    s = pd.Series(values, dtype=object)
    has_null = s.isna().any()
    if sql_type == "BOOLEAN":
        return s.astype("boolean") if has_null else s.astype(bool)
    if sql_type == "INTEGER":
        return s.astype("Int64") if has_null else s.astype("int64")
    if sql_type == "REAL":
        return s.astype(float)
    if sql_type == "DATE":
        return pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    if sql_type == "DATETIME":
        return pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
    return s.astype("str").where(~s.isna(), None) if len(s) else s.astype("str")


def _infer_sql_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series):
        return "INTEGER"
    if pd.api.types.is_float_dtype(series):
        return "REAL"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "DATETIME"
    return "TEXT"


# --------------------------------------------------------------------------------------------------------
# frames, revisions, upgrades
# --------------------------------------------------------------------------------------------------------

def _requested_columns(layer: str, types: Mapping[str, str], columns: Sequence[str] | None) -> list[str]:
    """The attribute columns a read returns: all of ``types``, or ``columns`` (all of which must exist)."""
    if columns is None:
        return list(types)
    unknown = [c for c in columns if c not in types]
    if unknown:
        raise ValidationError(f"图层 {layer} 没有这些列：{', '.join(unknown)}", fix=f"可用的列：{', '.join(types)}")
    return list(columns)


def _layer_frame(cols: list[str], types: Mapping[str, str], data: Sequence[Sequence[Any]],
                 geoms: np.ndarray | None) -> gpd.GeoDataFrame | pd.DataFrame:
    """A read's result from its column-wise SQL values (``data``) and decoded geometries (None: no geometry)."""
    frame = pd.DataFrame({c: _from_sql_values(list(data[i]), types[c]) for i, c in enumerate(cols)})
    if geoms is None:
        return frame
    geoms = _demote_single_parts(geoms)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=STORAGE_EPSG), crs=STORAGE_EPSG)


def _check_revision(stored: int, expected: int | None) -> None:
    """Raise :class:`StaleRevisionError` when a writer read revision ``expected`` but ``stored`` is current."""
    if expected is not None and stored != expected:
        raise StaleRevisionError(
            f"工作区已被他人修改（你读取的是第 {expected} 版，现在是第 {stored} 版），未保存任何内容。"
            "修正方法：重新载入最新数据后再修改",
            expected=expected,
            actual=stored,
        )


def add_missing_columns(con: Any, tables: set[str], *, table_columns: Any,
                        sql_type: Any = lambda t: t) -> list[str]:
    """Add the columns :data:`grids.model.LAYERS` declares that the existing ``tables`` lack (the upgrade on
    open, both backends: ``table_columns(con, name)`` reads a table's columns, ``sql_type`` maps a declared
    type to the backend's); returns ``layer.column`` names added."""
    added = []
    for name, layer in LAYERS.items():
        if name not in tables:
            continue
        have = table_columns(con, name)
        for col, declared in layer.columns.items():
            if col not in have:
                con.execute(f"ALTER TABLE {_q(name)} ADD COLUMN {_q(col)} {sql_type(declared)}")
                added.append(f"{name}.{col}")
    return added


def _schema_version(row: Sequence[Any] | None) -> int:
    """The ``schema`` meta value as a number (1 for workspaces that predate it or hold no number)."""
    try:
        return int(row[0]) if row else 1
    except (TypeError, ValueError):
        return 1


# --------------------------------------------------------------------------------------------------------
# the workspace and transaction bases
# --------------------------------------------------------------------------------------------------------

def migrate_data(ws: Workspace, found: int) -> None:
    """Data migrations that need the library, run once right after a schema upgrade from version ``found``.

    Schema 7: the values households carry (signed, available_amount, balance) become opening credit events
    (:func:`grids.credit_events.write_opening_events`, idempotent; one audited transaction, none when there is
    nothing to turn). A workspace that cannot be written is left as it is (its households' values are their
    opening until someone signs or serves them).
    """
    if found < 7:
        from grids.credit_events import write_opening_events

        with contextlib.suppress(WorkspaceError):
            write_opening_events(ws, actor="system")


class Workspace(abc.ABC):
    """A county workspace, whatever stores it: what the rest of the code types against.

    Backends: :class:`~grids.workspace.gpkg.GpkgWorkspace` (a GeoPackage file) and
    :class:`~grids.workspace.postgis.PgWorkspace` (a PostgreSQL schema); open one with
    :func:`grids.workspace.open_workspace`. The convenience writes below are shared; each is one
    :meth:`transaction`.

    Attributes
    ----------
    notice : str or None
        Set when edits made outside the library are pending but could not be recorded (read-only workspace).
    """

    notice: str | None = None

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """What to pass to :func:`grids.workspace.open_workspace` to open this workspace again."""

    @property
    @abc.abstractmethod
    def meta(self) -> dict[str, str]:
        """Workspace metadata: ``county_code``, ``county_name``, ``revision``, ``demo``, ``created_at``."""

    @property
    @abc.abstractmethod
    def revision(self) -> int:
        """Number of committed changes; caches key on it."""

    @property
    def is_demo(self) -> bool:
        """True for a workspace made by the demo generator."""
        return self.meta.get("demo") == "1"

    @abc.abstractmethod
    def layers(self) -> list[str]:
        """Names of the data tables of the workspace."""

    @abc.abstractmethod
    def columns(self, layer: str) -> dict[str, str]:
        """Column name → SQL type of ``layer`` (geometry and ``fid`` excluded)."""

    @abc.abstractmethod
    def read(self, layer: str, *, where: str | None = None, params: Sequence[Any] = (),
             columns: Sequence[str] | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a layer as a GeoDataFrame (EPSG:4490) or, for attribute tables, a DataFrame."""

    @abc.abstractmethod
    def count(self, layer: str, *, where: str | None = None, params: Sequence[Any] = ()) -> int:
        """Number of rows of ``layer`` (matching ``where``)."""

    @abc.abstractmethod
    def integrity_check(self) -> str:
        """The backend's own consistency check (``"ok"`` when sound)."""

    @abc.abstractmethod
    def audit_records(self) -> list[tuple[Any, ...]]:
        """Every audit row as ``(fid, at, actor, action, layer, revision, detail, prev_hash, hash)``."""

    @abc.abstractmethod
    def audit_head(self) -> tuple[str | None, int]:
        """The last audit row's hash and the number of audit rows."""

    @abc.abstractmethod
    def transaction(self, *, actor: str, action: str,
                    expected_revision: int | None = None) -> contextlib.AbstractContextManager[Transaction]:
        """A write transaction: all of its changes land together (one audit row, one revision), or none does."""

    def write(self, layer: str, frame: pd.DataFrame, *, mode: str = "replace", actor: str = "system",
              action: str | None = None) -> int:
        """Replace or append the rows of one layer in its own transaction; returns the new revision."""
        with self.transaction(actor=actor, action=action or f"写入 {layer}") as tx:
            if mode == "replace":
                tx.replace(layer, frame)
            elif mode == "append":
                tx.append(layer, frame)
            else:
                raise ValueError(f"mode must be 'replace' or 'append', not {mode!r}")
        return self.revision

    def set_meta(self, key: str, value: str, *, actor: str = "system") -> None:
        """Set one metadata value (not ``revision``) in its own transaction."""
        if key == "revision":
            raise ValueError("revision is managed by transactions")
        with self.transaction(actor=actor, action=f"设置 {key}") as tx:
            tx.execute(f"DELETE FROM {META_TABLE} WHERE key=?", (key,))
            tx.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)", (key, value))
            tx.note(META_TABLE, {key: value})


class Transaction:
    """The changes of one :meth:`Workspace.transaction`; methods take DataFrames/GeoDataFrames."""

    def __init__(self, con: Any, *, actor: str, action: str, revision: int) -> None:
        self._con = con
        self.actor = actor
        self.action = action
        self.revision = revision
        self.changed = False
        self._notes: list[tuple[str, dict[str, Any]]] = []

    def note(self, layer: str, detail: Mapping[str, Any]) -> None:
        """Add an audit detail (before/after summary) for ``layer`` to this change.

        A transaction with notes but no data change writes its audit row without bumping the revision.
        """
        self._notes.append((layer, dict(detail)))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one SQL statement inside the transaction (for updates the helpers below do not cover)."""
        self.changed = True
        return self._con.execute(sql, tuple(params))

    def replace(self, layer: str, frame: pd.DataFrame) -> int:
        """Delete every row of ``layer`` and insert ``frame``'s rows; returns the number inserted."""
        before = self._con.execute(f"SELECT count(*) FROM {_q(layer)}").fetchone()[0]
        self._delete_all(layer)
        n = self._insert(layer, frame)
        self.changed = True
        self.note(layer, {"op": "replace", "rows_before": before, "rows_after": n})
        return n

    def append(self, layer: str, frame: pd.DataFrame) -> int:
        """Insert ``frame``'s rows into ``layer``; returns the number inserted."""
        n = self._insert(layer, frame)
        self.changed = True
        self.note(layer, {"op": "append", "rows": n})
        return n

    def delete(self, layer: str, *, where: str, params: Sequence[Any] = ()) -> int:
        """Delete the rows of ``layer`` matching ``where`` (``?`` placeholders); returns how many."""
        cur = self._con.execute(f"DELETE FROM {_q(layer)} WHERE {where}", tuple(params))
        self.changed = True
        self.note(layer, {"op": "delete", "where": where, "rows": cur.rowcount})
        return int(cur.rowcount)

    def _insert(self, layer: str, frame: pd.DataFrame) -> int:
        """Insert ``frame`` into ``layer`` (creating a declared layer, adding unknown columns); both backends.

        The backend-specific steps are the hooks below (:class:`~grids.workspace.gpkg.GpkgTransaction`,
        :class:`~grids.workspace.postgis.PgTransaction`).
        """
        types, geom_col, gtype = self._layer_schema(layer)
        is_geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
        attr_cols = [c for c in frame.columns if not (is_geo and c == frame.geometry.name)]
        for c in attr_cols:
            if c not in types and c != "fid":
                types[c] = _infer_sql_type(frame[c])
                self._add_column(layer, c, types[c])
        cols = [c for c in attr_cols if c in types]
        series = [self._values(frame[c], types[c]) for c in cols]
        if geom_col:
            if not is_geo or not isinstance(frame, gpd.GeoDataFrame):
                raise ValidationError(f"图层 {layer} 需要几何列", fix="传入 GeoDataFrame")
            if frame.crs is None:
                raise ValidationError(f"写入 {layer} 的数据没有坐标系", fix="先 set_crs(4490) 或转换到 EPSG:4490")
            geo = frame if frame.crs.to_epsg() == STORAGE_EPSG else frame.to_crs(STORAGE_EPSG)
            series.append(self._geometries(np.asarray(geo.geometry.values), gtype))
            cols = [*cols, geom_col]
        if not len(frame):
            return 0
        self._write_rows(layer, cols, series, geom_col)
        return len(frame)

    # -- backend hooks ------------------------------------------------------------------------------------

    def read(self, layer: str, *, where: str | None = None, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Read attribute columns inside the transaction (sees its own uncommitted changes; no geometry)."""
        raise NotImplementedError

    def _layer_schema(self, layer: str) -> tuple[dict[str, str], str | None, str | None]:
        """Column types, geometry column and geometry type of ``layer``, creating it when declared."""
        raise NotImplementedError

    def _delete_all(self, layer: str) -> None:
        """Delete every row of ``layer`` (the first half of :meth:`replace`)."""
        self._con.execute(f"DELETE FROM {_q(layer)}")

    def _add_column(self, layer: str, column: str, sql_type: str) -> None:
        raise NotImplementedError

    def _values(self, series: pd.Series, sql_type: str) -> list[Any]:
        return _to_sql_values(series, sql_type)

    def _geometries(self, geoms: np.ndarray, gtype: str | None) -> list[Any]:
        return encode_geometries(geoms, promote=gtype)

    def _write_rows(self, layer: str, cols: list[str], series: list[list[Any]], geom_col: str | None) -> None:
        raise NotImplementedError

    def _forget_own_edits(self) -> None:
        """After the audit row: stop treating this connection's writes as the library's (backend hook)."""

    def _finish(self, previous: int, *, release: bool = True) -> None:
        """Just before COMMIT: bump the revision when data changed, write the audit row, and (``release``)
        clear the guard against counting the library's own writes as external edits."""
        if self.changed:
            self._con.execute(f"UPDATE {META_TABLE} SET value=? WHERE key='revision'", (str(previous + 1),))
        else:
            self.revision = previous  # an audit-only record (e.g. a view of personal data) changes no data
        if self.changed or self._notes:
            self._write_audit()
        if release:
            self._forget_own_edits()

    def _write_audit(self) -> None:
        """One audit row per committed change: who, when, what, and the before/after notes of each layer.

        The row is chained to the last one (:mod:`grids.audit`): its ``prev_hash`` is read here, inside the write
        transaction, which holds the writer's lock (SQLite ``BEGIN IMMEDIATE``; PostGIS: :meth:`_lock_audit`).
        """
        layers = list(dict.fromkeys(layer for layer, _ in self._notes))
        detail = json.dumps([{"layer": layer, **d} for layer, d in self._notes], ensure_ascii=False, default=str)
        self._lock_audit()
        last = self._con.execute("SELECT hash FROM audit ORDER BY fid DESC LIMIT 1").fetchone()
        values = (_now(), self.actor, self.action, ",".join(layers), self.revision, detail)
        ((prev, digest, _),) = chain_rows([(0, *values)], prev=last[0] if last and last[0] else GENESIS)
        self._con.execute(
            'INSERT INTO audit ("at", actor, action, layer, revision, detail, prev_hash, hash) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, prev, digest),
        )

    def _lock_audit(self) -> None:
        """Hold the audit table for this transaction (SQLite: ``BEGIN IMMEDIATE`` already does)."""
