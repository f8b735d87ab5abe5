"""The PostGIS workspace backend: the same API as the GeoPackage one (:class:`grids.workspace.Workspace`),
for many users.

A GeoPackage file stays the embedded default; a bank that runs the app for many planners and managers at once
points it at a PostgreSQL database instead (``postgresql://user@host:5432/db``, optionally ``?schema=name``):
:func:`grids.workspace.open_workspace` dispatches such URLs here. One workspace lives in one PostgreSQL schema
(``public`` unless ``schema=`` or ``?schema=`` says otherwise), with

- one table per layer of :data:`grids.model.LAYERS` with the same columns (``BOOLEAN`` → ``boolean``,
  ``INTEGER`` → ``bigint``, ``REAL`` → ``double precision``, ``DATE`` → ``date``, ``DATETIME`` →
  ``timestamptz``, ``TEXT`` → ``text``), an ``fid bigserial`` primary key and a
  ``geom geometry(MULTIPOLYGON|MULTILINESTRING|POINT, 4490)`` column with a GiST index;
- ``ws_meta`` (key/value: county, demo flag, revision) and ``ws_layers`` (the layer registry, the analogue of
  ``gpkg_contents``).

Reads return exactly what the GeoPackage backend returns (same dtypes, single-part multis demoted, empty
geometries as ``None``). Callers write SQL conditions SQLite-style, with ``?`` placeholders and double-quoted
identifiers; they are translated to psycopg's ``%s``. Every write transaction first locks the ``revision`` row
of ``ws_meta`` (``SELECT … FOR UPDATE``), so writers are serialised like SQLite's ``BEGIN IMMEDIATE`` while
readers are never blocked; each committed change bumps the revision and adds audit rows exactly like the
GeoPackage backend. The audit table is append-only here too (a trigger function refuses ``UPDATE``, ``DELETE``
and ``TRUNCATE``) and hash-chained (:mod:`grids.audit`); an audit row is written under
``LOCK TABLE audit IN EXCLUSIVE MODE``, so its ``prev_hash`` is the hash of the row committed last. A workspace
made by an older version is upgraded when opened, like a GeoPackage (:meth:`PgWorkspace._upgrade`).
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg.adapt import Dumper

from grids.audit import GENESIS, chain_rows
from grids.errors import ValidationError, WorkspaceError
from grids.model import LAYERS, STORAGE_EPSG, Layer
from grids.workspace.base import (
    AUDIT_APPEND_ONLY,
    AUDIT_COLUMNS,
    EDITS_TABLE,
    GEOM_COLUMN,
    META_TABLE,
    SCHEMA_VERSION,
    Transaction,
    Workspace,
    _check_revision,
    _layer_frame,
    _now,
    _q,
    _record_external_edits,
    _requested_columns,
    _schema_version,
    _to_sql_values,
    add_missing_columns,
    decode_geometries,
    edit_logged_tables,
    encode_geometries,
    external_edit_notes,
    migrate_data,
    read_only_notice,
    workspace_error,
)

LAYERS_TABLE = "ws_layers"
PG_TYPES = {
    "TEXT": "text",
    "INTEGER": "bigint",
    "REAL": "double precision",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "DATETIME": "timestamptz",
}
"""GeoPackage column type (as in :data:`grids.model.LAYERS`) → PostgreSQL column type."""
_FROM_PG = {
    "text": "TEXT",
    "character varying": "TEXT",
    "character": "TEXT",
    "bigint": "INTEGER",
    "integer": "INTEGER",
    "smallint": "INTEGER",
    "double precision": "REAL",
    "real": "REAL",
    "numeric": "REAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp with time zone": "DATETIME",
    "timestamp without time zone": "DATETIME",
}
_PG_GEOMETRY = {"POINT": "Point", "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon"}
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_STORAGE_ERRORS = (psycopg.errors.DiskFull, psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.DataCorrupted,
                   psycopg.errors.IndexCorrupted)
"""Server-side storage failures a write transaction reports as one-line :class:`WorkspaceError`."""


def pg_type(sql_type: str) -> str:
    """The PostgreSQL column type for a GeoPackage column type (unknown types are stored as ``text``).

    Examples
    --------
    >>> pg_type("DATETIME"), pg_type("INTEGER"), pg_type("VARCHAR(8)")
    ('timestamptz', 'bigint', 'text')
    """
    return PG_TYPES.get(sql_type.upper(), "text")


def translate_sql(sql: str) -> str:
    """Rewrite an SQLite-style statement for psycopg: ``?`` → ``%s`` outside quotes, ``%`` → ``%%``.

    Quoted strings (``'…'``) and identifiers (``"…"``) keep their question marks.

    Examples
    --------
    >>> translate_sql('"plan_id" = ? AND name LIKE \\'%?\\'')
    '"plan_id" = %s AND name LIKE \\'%%?\\''
    """
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if ch == "%":
            out.append("%%")
            continue
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append(ch)
    return "".join(out)


def split_url(url: str, schema: str | None = None) -> tuple[str, str]:
    """Split a workspace URL into a libpq connection URL and the schema (``?schema=`` or ``schema``).

    Examples
    --------
    >>> split_url("postgresql+psycopg://u@h:5432/db?schema=ws_1&sslmode=disable")
    ('postgresql://u@h:5432/db?sslmode=disable', 'ws_1')
    >>> split_url("postgres://u@h/db", "public")
    ('postgresql://u@h/db', 'public')
    """
    text = str(url)
    if not text.startswith(_URL_SCHEMES):
        raise ValidationError(
            f"不是 PostgreSQL 地址：{text}", fix="写成 postgresql://用户@主机:端口/数据库（可加 ?schema=模式名）"
        )
    parts = urllib.parse.urlsplit(text)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    from_url = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    chosen = schema or (from_url[-1] if from_url else "public")
    if not _SCHEMA_RE.match(chosen):
        raise ValidationError(
            f"PostgreSQL 模式名 “{chosen}” 不可用", fix="只用小写字母、数字和下划线，且不以数字开头（例如 ws_150422）"
        )
    conninfo = urllib.parse.urlunsplit(("postgresql", parts.netloc, parts.path, urllib.parse.urlencode(rest), ""))
    return conninfo, chosen


def _mask(conninfo: str) -> str:
    """The URL without its password (for messages): :func:`grids.text.mask_url`."""
    from grids.text import mask_url

    return mask_url(conninfo)


def _driver_message(exc: Exception, conninfo: str) -> str:
    """The driver's error without any part of the URL's password.

    libpq splits ``user:pa@ss@host`` at the first ``@``: its message then names the rest of the password as
    the host. Such a URL gets no driver text, only the fix (write ``@`` as ``%40``)."""
    text = " ".join(str(exc).split())
    _head, sep, rest = conninfo.partition("://")
    userinfo = rest.rpartition("@")[0] if sep else ""
    password = userinfo.partition(":")[2]
    if "@" in password:
        return "地址里的密码含有未转义的 @，无法分清密码和主机（密码中的 @ 请写成 %40）"
    return text.replace(password, "***") if password else text


class _UntypedIntDumper(Dumper):
    """Send Python/numpy integers as untyped literals, so PostgreSQL types them from context.

    SQLite has no boolean type: callers write ``SET archived = ?`` with ``1``/``0``. With the integer untyped,
    PostgreSQL reads it as the column's type (``boolean`` here, ``bigint`` or ``double precision`` elsewhere)
    instead of refusing an ``integer`` for a ``boolean`` column.
    """

    oid = 0

    def dump(self, obj: Any) -> bytes:
        return str(int(obj)).encode()


def _connect(conninfo: str, search_path: str) -> psycopg.Connection:
    try:
        con = psycopg.connect(conninfo, autocommit=True, options=f"-c search_path={search_path}",
                              connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise WorkspaceError(
            f"无法连接 PostgreSQL {_mask(conninfo)}：{_driver_message(exc, conninfo)}。修正方法：检查地址、用户和密码，"
            "确认数据库服务在运行（测试用集群：scripts/postgres.sh）"
        ) from None
    for int_type in (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        con.adapters.register_dumper(int_type, _UntypedIntDumper)
    return con


def _postgis_schema(con: psycopg.Connection) -> str | None:
    row = con.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'postgis'").fetchone()
    return row[0] if row else None


def _search_path(schema: str, postgis_schema: str | None) -> str:
    extra = [postgis_schema] if postgis_schema and postgis_schema != schema else []
    return ",".join([schema, *extra])


# --------------------------------------------------------------------------------------------------------
# the workspace
# --------------------------------------------------------------------------------------------------------


def _one(cur: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (an aggregate, a function call, the revision row)."""
    row = cur.fetchone()
    assert row is not None, "query returned no row"
    return row


class PgWorkspace(Workspace):
    """A county workspace stored in one schema of a PostgreSQL + PostGIS database.

    Same API as :class:`grids.workspace.gpkg.GpkgWorkspace`; see the module docstring for the table layout.

    Parameters
    ----------
    url : str
        ``postgresql://user[:password]@host[:port]/database``, optionally with ``?schema=name``.
    schema : str, optional
        The schema holding the workspace (overrides ``?schema=``; default ``public``).

    Raises
    ------
    WorkspaceError
        The database cannot be reached, or the schema holds no 网格通 workspace.
    """

    path = None
    """No file: a PostGIS workspace is addressed by :attr:`url` and :attr:`schema`."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self._conninfo, self.schema = split_url(url, schema)
        with contextlib.closing(_connect(self._conninfo, "public")) as con:
            self._postgis = _postgis_schema(con)
            found = _one(con.execute(
                "SELECT to_regclass(%s), to_regclass(%s), to_regproc(%s) IS NOT NULL",
                (f"{_q(self.schema)}.{META_TABLE}", f"{_q(self.schema)}.{LAYERS_TABLE}",
                 f"{_q(self.schema)}.ws_edit_truncate"),
            ))
            truncates = bool(found[2])
            found = found[:2]
            schema_row = con.execute(
                f"SELECT value FROM {_q(self.schema)}.{META_TABLE} WHERE key = 'schema'"
            ).fetchone() if found and None not in found else None
        if self._postgis is None or found is None or None in found:
            raise WorkspaceError(
                f"{self} 不是网格通工作区（缺少 PostGIS 扩展或模式 {self.schema} 中的 {META_TABLE} 表）。"
                "修正方法：用 `python -m grids migrate 工作区.gpkg URL` 把工作区迁移到 PostgreSQL，"
                "或用 PgWorkspace.create 新建"
            )
        self._path = _search_path(self.schema, self._postgis)
        self.notice: str | None = None
        """Set when edits made outside the library could not be recorded (read-only role); else None."""
        if _schema_version(schema_row) < SCHEMA_VERSION:
            self._upgrade()
            migrate_data(self, _schema_version(schema_row))
        elif not truncates:
            self._install_truncate_triggers()
        self._absorb_external_edits()

    def _install_truncate_triggers(self) -> None:
        """Add the ``TRUNCATE`` edit triggers to a workspace made before they existed (same schema version: the
        row triggers are there already). A role that may not change the schema leaves it as it is."""
        con = self._connect()
        try:
            con.execute("BEGIN")
            _enter_library(con)
            con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'revision' FOR UPDATE")  # one opener at a time
            missing = _one(con.execute("SELECT to_regproc(%s) IS NULL", (f"{_q(self.schema)}.ws_edit_truncate",)
                                       ))[0]
            if missing and _has_edit_log(con):
                tables = [r[0] for r in con.execute(f"SELECT table_name FROM {LAYERS_TABLE}").fetchall()]
                _create_truncate_log(con, self.schema, edit_logged_tables([*tables, META_TABLE]))
            con.execute("COMMIT")
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
            con.execute("ROLLBACK")
        except BaseException:
            if not con.closed and con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    @property
    def url(self) -> str:
        """The workspace URL (``?schema=`` included, password masked)."""
        sep = "&" if "?" in self._conninfo else "?"
        return _mask(self._conninfo) + f"{sep}schema={self.schema}"

    @property
    def target(self) -> str:
        """What to pass to :func:`grids.workspace.open_workspace` to open this workspace again (password masked)."""
        return self.url

    def __repr__(self) -> str:
        return f"PgWorkspace({self.url!r})"

    def __str__(self) -> str:
        return self.url

    # -- creation -----------------------------------------------------------------------------------------

    @classmethod
    def create(cls, url: str, *, county_code: str, county_name: str, demo: bool = False,
               overwrite: bool = False, schema: str | None = None) -> PgWorkspace:
        """Create an empty workspace with every layer of :data:`grids.model.LAYERS` in one schema.

        The schema (created when missing) gets every table in one transaction: an error leaves it as it was.
        An existing workspace in that schema is replaced only with ``overwrite=True``.
        """
        meta = {
            "county_code": county_code,
            "county_name": county_name,
            "revision": "0",
            "demo": "1" if demo else "0",
            "created_at": _now(),
            "schema": str(SCHEMA_VERSION),
        }
        with cls._build(url, meta=meta, overwrite=overwrite, schema=schema):
            pass
        return cls(url, schema=schema)

    @classmethod
    @contextlib.contextmanager
    def _build(cls, url: str, *, meta: Mapping[str, str], overwrite: bool,
               schema: str | None = None) -> Iterator[PgTransaction]:
        """Create the workspace tables and yield a transaction on them; all is committed together at the end.

        Used by :meth:`create` and by :func:`grids.commands.migrate.migrate` (which fills the layers in the same
        transaction). Writes through the yielded transaction bump no revision and add no audit row: ``meta``
        (``revision`` included) is stored as given.
        """
        conninfo, schema = split_url(url, schema)
        con = _connect(conninfo, "public")
        try:
            con.execute("BEGIN")
            _enter_library(con)
            postgis = _postgis_schema(con)
            if postgis is None:
                try:
                    with con.transaction():  # a savepoint: a refusal leaves the outer transaction usable
                        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                except psycopg.Error as exc:
                    raise WorkspaceError(
                        f"数据库 {_mask(conninfo)} 没有 PostGIS 扩展，也无权创建：{str(exc).strip()}。"
                        "修正方法：请数据库管理员执行 CREATE EXTENSION postgis"
                    ) from exc
                postgis = _postgis_schema(con)
            exists = _one(con.execute("SELECT to_regclass(%s)", (f"{_q(schema)}.{META_TABLE}",)))[0]
            if exists and not overwrite:
                raise WorkspaceError(
                    f"{_mask(conninfo)} 的模式 {schema} 里已有工作区。修正方法：换一个模式（?schema=…），"
                    "或传 overwrite=True（命令行 --force）覆盖"
                )
            if exists:
                _drop_workspace(con, schema)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
            con.execute(f"SET LOCAL search_path TO {_search_path(schema, postgis)}")
            con.execute(
                f"CREATE TABLE {LAYERS_TABLE} (table_name text PRIMARY KEY, data_type text NOT NULL, "
                "geometry_type text, description text DEFAULT '', last_change timestamptz)"
            )
            for name, layer in LAYERS.items():
                _create_layer(con, name, layer)
            _create_audit_guard(con, schema)
            con.execute(f"CREATE TABLE {META_TABLE} (fid bigserial PRIMARY KEY, key text UNIQUE, value text)")
            _create_edit_log(con, schema)
            with con.cursor() as cur:
                cur.executemany(f"INSERT INTO {META_TABLE} (key, value) VALUES (%s, %s)", list(meta.items()))
            tx = PgTransaction(con, actor="system", action="创建工作区", revision=int(meta.get("revision", 0)))
            yield tx
            con.execute("COMMIT")
        except BaseException:
            if con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    # -- reading ------------------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        return _connect(self._conninfo, self._path)

    @property
    def meta(self) -> dict[str, str]:
        """Workspace metadata: ``county_code``, ``county_name``, ``revision``, ``demo``, ``created_at``."""
        with contextlib.closing(self._connect()) as con:
            return dict(con.execute(f"SELECT key, value FROM {META_TABLE} ORDER BY fid").fetchall())

    @property
    def revision(self) -> int:
        """Number of committed changes; caches key on it.

        Edits made outside the library since the last look are recorded first (one “外部编辑” audit row).
        """
        with contextlib.closing(self._connect()) as con:
            pending = f"EXISTS (SELECT 1 FROM {EDITS_TABLE})" if _has_edit_log(con) else "false"
            row = _one(con.execute(
                f"SELECT (SELECT value FROM {META_TABLE} WHERE key = 'revision'), {pending}"))
        if row[1] and self.notice is None and self._absorb_external_edits() and self.notice is None:
            return int(self.meta.get("revision", "0"))
        return int(row[0]) if row[0] else 0

    def _absorb_external_edits(self) -> bool:
        """Turn edits made outside the library (QGIS, ogr2ogr, psql) into one chained “外部编辑” audit row and
        a new revision; True when there were any. A role that may not write leaves :attr:`notice` instead."""
        con = self._connect()
        try:
            if not _has_edit_log(con) or not con.execute(f"SELECT 1 FROM {EDITS_TABLE} LIMIT 1").fetchone():
                return False
            try:
                con.execute("BEGIN")
                _enter_library(con)
                rev = int(_one(con.execute(
                    f"SELECT value FROM {META_TABLE} WHERE key = 'revision' FOR UPDATE"))[0])
                _record_external_edits(_SqliteStyle(con), rev, transaction=_recorder(con))
                con.execute("COMMIT")
                self.notice = None
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
                con.execute("ROLLBACK")
                rows = con.execute(f"SELECT layer, op, n FROM {EDITS_TABLE}").fetchall()
                self.notice = read_only_notice(self, external_edit_notes(rows))
            return True
        finally:
            con.close()

    @property
    def is_demo(self) -> bool:
        """True for a workspace made by the demo generator."""
        return self.meta.get("demo") == "1"

    def layers(self) -> list[str]:
        """Names of the data tables of the workspace (the layer registry, without our metadata)."""
        with contextlib.closing(self._connect()) as con:
            rows = con.execute(f'SELECT table_name FROM {LAYERS_TABLE} ORDER BY table_name COLLATE "C"').fetchall()
        return [r[0] for r in rows if r[0] != META_TABLE]

    def columns(self, layer: str) -> dict[str, str]:
        """Column name → GeoPackage column type of ``layer`` (geometry and ``fid`` excluded)."""
        with contextlib.closing(self._connect()) as con:
            self._check_layer(con, layer)
            return _table_columns(con, layer)

    def read(self, layer: str, *, where: str | None = None, params: Sequence[Any] = (),
             columns: Sequence[str] | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a layer as a GeoDataFrame (EPSG:4490) or, for attribute tables, a DataFrame.

        Same parameters and result as :meth:`grids.workspace.gpkg.GpkgWorkspace.read`; ``where`` uses ``?`` placeholders.
        """
        with contextlib.closing(self._connect()) as con:
            self._check_layer(con, layer)
            types = _table_columns(con, layer)
            geom_col = _geometry_column(con, layer)
            cols = _requested_columns(layer, types, columns)
            rows = _select(con, layer, cols, types, geom_col, where, params)
        data: list[Sequence[Any]] = (list(zip(*rows, strict=True)) if rows
                                     else [[] for _ in range(len(cols) + bool(geom_col))])
        geoms = shapely.from_wkb(np.asarray(list(data[len(cols)]), dtype=object)) if geom_col else None
        return _layer_frame(cols, types, data, geoms)

    def count(self, layer: str, *, where: str | None = None, params: Sequence[Any] = ()) -> int:
        """Number of rows of ``layer`` (matching ``where``)."""
        sql = f"SELECT count(*) FROM {_q(layer)}" + (f" WHERE {where}" if where else "")
        with contextlib.closing(self._connect()) as con:
            self._check_layer(con, layer)
            return int(_one(con.execute(translate_sql(sql), tuple(params)))[0])

    def integrity_check(self) -> str:
        """``"ok"`` when the metadata and every registered layer table can be read, else what is wrong."""
        problems = []
        try:
            with contextlib.closing(self._connect()) as con:
                rev = con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'revision'").fetchone()
                if rev is None or not str(rev[0]).isdigit():
                    problems.append(f"{META_TABLE} 缺少有效的 revision")
                for (name,) in con.execute(f"SELECT table_name FROM {LAYERS_TABLE}").fetchall():
                    if _one(con.execute("SELECT to_regclass(%s)", (f"{_q(self.schema)}.{_q(name)}",)))[0] is None:
                        problems.append(f"图层表 {name} 不存在")
        except psycopg.Error as exc:
            problems.append(str(exc).strip())
        return "ok" if not problems else "；".join(problems)

    def _check_layer(self, con: psycopg.Connection, layer: str) -> None:
        ok = con.execute(f"SELECT 1 FROM {LAYERS_TABLE} WHERE table_name = %s", (layer,)).fetchone()
        if not ok or layer == META_TABLE:
            raise ValidationError(f"工作区里没有图层 “{layer}”", fix=f"可用的图层：{', '.join(self.layers())}")

    def audit_records(self) -> list[tuple[Any, ...]]:
        """Every audit row as ``(fid, at, actor, action, layer, revision, detail, prev_hash, hash)`` in fid order.

        ``at`` in the GeoPackage backend's text form (what the hash covers). For :func:`grids.audit.verify`.
        """
        with contextlib.closing(self._connect()) as con:
            chained = {"prev_hash", "hash"} <= set(_table_columns(con, "audit"))
            cols = [_select_expr(c, LAYERS["audit"].columns[c]) for c in AUDIT_COLUMNS]
            hashes = "prev_hash, hash" if chained else "NULL, NULL"
            return con.execute(f"SELECT fid, {', '.join(cols)}, {hashes} FROM audit ORDER BY fid").fetchall()

    def audit_head(self) -> tuple[str | None, int]:
        """The last audit row's hash and the number of audit rows (:func:`grids.audit.chain_head`)."""
        with contextlib.closing(self._connect()) as con:
            chained = "hash" in _table_columns(con, "audit")
            last = "(SELECT hash FROM audit ORDER BY fid DESC LIMIT 1)" if chained else "NULL"
            row = _one(con.execute(f"SELECT {last}, (SELECT count(*) FROM audit)"))
        return row[0], int(row[1])

    # -- upgrade ------------------------------------------------------------------------------------------

    def _upgrade(self) -> None:
        """Bring a workspace made by an older version up to :data:`grids.workspace.base.SCHEMA_VERSION`, in one transaction.

        The same steps as :meth:`grids.workspace.gpkg.GpkgWorkspace._upgrade` (missing columns, the audit rows already there
        chained once from :data:`grids.audit.GENESIS`, the append-only trigger, ``schema``, an audit row). The
        ``revision`` row is locked first and ``schema`` read again, so concurrent openers upgrade it once. A role
        that may not change the schema leaves it as it is (it can still read).
        """
        con = self._connect()
        try:
            con.execute("BEGIN")
            _enter_library(con)
            rev = int(_one(con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'revision' FOR UPDATE"))[0])
            found = _schema_version(con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'schema'").fetchone())
            if found >= SCHEMA_VERSION:
                con.execute("ROLLBACK")
                return
            tables = {r[0] for r in con.execute(f"SELECT table_name FROM {LAYERS_TABLE}")}
            added = add_missing_columns(con, tables, table_columns=_table_columns, sql_type=pg_type)
            for name, layer in LAYERS.items():  # layers declared since (audit, login_failures)
                if name not in tables:
                    _create_layer(con, name, layer)
                    added.append(name)
            for trigger in ("audit_append_only", "audit_no_truncate"):
                con.execute(f"DROP TRIGGER IF EXISTS {trigger} ON audit")
            cols = [_select_expr(c, LAYERS["audit"].columns[c]) for c in AUDIT_COLUMNS]
            old = con.execute(f"SELECT fid, {', '.join(cols)} FROM audit ORDER BY fid").fetchall()
            # only a never-chained trail is chained (re-hashing would launder an edited one)
            chained = _one(con.execute("SELECT count(*) FROM audit WHERE hash IS NOT NULL"))[0]
            if chained == 0:
                with con.cursor() as cur:
                    cur.executemany("UPDATE audit SET prev_hash = %s, hash = %s WHERE fid = %s", chain_rows(old))
            _create_audit_guard(con, self.schema)
            _create_edit_log(con, self.schema)
            con.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES ('schema', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (str(SCHEMA_VERSION),))
            tx = PgTransaction(con, actor="system", action="升级工作区", revision=rev + 1)
            tx.changed = True
            tx.note("audit", {"op": "upgrade", "schema_from": found, "schema_to": SCHEMA_VERSION,
                              "columns_added": added, "rows_chained": 0 if chained else len(old),
                              "genesis": GENESIS[:16]})
            tx._finish(rev)
            con.execute("COMMIT")
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
            con.execute("ROLLBACK")
        except BaseException:
            if not con.closed and con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    # -- writing ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, actor: str, action: str,
                    expected_revision: int | None = None) -> Iterator[PgTransaction]:
        """Open a write transaction: all of its changes land together, or none does.

        Same semantics as :meth:`grids.workspace.gpkg.GpkgWorkspace.transaction`. The ``revision`` row of ``ws_meta`` is
        locked first, so concurrent writers wait for each other (readers never wait).
        """
        con = self._connect()
        try:
            con.execute("BEGIN")
            _enter_library(con)
            row = _one(con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'revision' FOR UPDATE"))
            rev = int(row[0])
            if _has_edit_log(con):
                rev = _record_external_edits(_SqliteStyle(con), rev, transaction=_recorder(con))
            _check_revision(rev, expected_revision)
            tx = PgTransaction(con, actor=actor, action=action, revision=rev + 1)
            yield tx
            tx._finish(rev)
            con.execute("COMMIT")
        except BaseException as exc:
            if not con.closed and con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error):
                    con.execute("ROLLBACK")
            if isinstance(exc, _STORAGE_ERRORS):
                raise (workspace_error(exc, self) or WorkspaceError(
                    f"数据库 {self} 无法写入：{' '.join(str(exc).split())}。修正方法：请数据库管理员检查服务器状态"
                )) from exc
            raise
        finally:
            con.close()


class _SqliteStyle:
    """A psycopg connection seen through ``sqlite3``'s ``execute(sql, params)`` with ``?`` placeholders.

    It lets :class:`PgTransaction` inherit the backend-neutral methods of :class:`grids.workspace.base.Transaction`.
    """

    def __init__(self, con: psycopg.Connection) -> None:
        self.raw = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.raw.execute(translate_sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Any) -> psycopg.Cursor:
        cur = self.raw.cursor()
        cur.executemany(translate_sql(sql), list(rows))
        return cur


class PgTransaction(Transaction):
    """The changes of one :meth:`PgWorkspace.transaction`; same methods as :class:`grids.workspace.base.Transaction`.

    ``note``, ``execute``, ``replace``, ``append``, ``delete`` and the audit record are the GeoPackage
    backend's own methods (statements pass through :func:`translate_sql`); reading and inserting use PostGIS.
    """

    def __init__(self, con: psycopg.Connection, *, actor: str, action: str, revision: int) -> None:
        super().__init__(_SqliteStyle(con), actor=actor, action=action, revision=revision)
        self._pg = con

    def read(self, layer: str, *, where: str | None = None, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Read attribute columns inside the transaction (sees its own uncommitted changes; no geometry)."""
        types = _table_columns(self._pg, layer)
        rows = _select(self._pg, layer, list(types), types, None, where, params)
        data: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in types]
        return _layer_frame(list(types), types, data, None)

    # -- backend hooks of Transaction._insert (PostGIS) ----------------------------------------------------

    def _layer_schema(self, layer: str) -> tuple[dict[str, str], str | None, str | None]:
        con = self._pg
        if not con.execute(f"SELECT 1 FROM {LAYERS_TABLE} WHERE table_name = %s", (layer,)).fetchone():
            if layer not in LAYERS:
                raise ValidationError(f"工作区里没有图层 “{layer}”", fix="先在 grids.model.LAYERS 中声明该图层")
            _create_layer(con, layer, LAYERS[layer])
        geom_col = _geometry_column(con, layer)
        gtype = _one(con.execute(f"SELECT geometry_type FROM {LAYERS_TABLE} WHERE table_name = %s",
                                 (layer,)))[0] if geom_col else None
        return _table_columns(con, layer), geom_col, gtype

    def _add_column(self, layer: str, column: str, sql_type: str) -> None:
        self._pg.execute(f"ALTER TABLE {_q(layer)} ADD COLUMN {_q(column)} {pg_type(sql_type)}")

    def _forget_own_edits(self) -> None:
        """Nothing to clear: :func:`_enter_library` is ``SET LOCAL`` and ends with the transaction."""

    def _lock_audit(self) -> None:
        """Serialise audit writers, so each row's ``prev_hash`` is the hash of the row committed before it."""
        self._pg.execute("LOCK TABLE audit IN EXCLUSIVE MODE")

    def _values(self, series: pd.Series, sql_type: str) -> list[Any]:
        return _pg_values(series, sql_type)

    def _geometries(self, geoms: np.ndarray, gtype: str | None) -> list[Any]:
        return _ewkb_hex(geoms, promote=gtype)

    def _write_rows(self, layer: str, cols: list[str], series: list[list[Any]], geom_col: str | None) -> None:
        con = self._pg
        with con.cursor() as cur, cur.copy(f"COPY {_q(layer)} ({', '.join(_q(c) for c in cols)}) FROM STDIN") as copy:
            for row in zip(*series, strict=True):
                copy.write_row(row)
        con.execute(f"UPDATE {LAYERS_TABLE} SET last_change = now() WHERE table_name = %s", (layer,))


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------


def _pg_values(series: pd.Series, sql_type: str) -> list[Any]:
    """Column values for COPY: the GeoPackage backend's values, with booleans as booleans."""
    values = _to_sql_values(series, sql_type)
    if sql_type == "BOOLEAN":
        return [None if v is None else bool(v) for v in values]
    return values


def _ewkb_hex(geoms: np.ndarray, *, promote: str | None) -> list[str | None]:
    """Hex EWKB (SRID 4490) of each geometry, promoted to the layer's type the way the GeoPackage store does."""
    blobs = encode_geometries(geoms, promote=promote)  # the store's promotion, NULL for missing/empty
    arr = shapely.set_srid(decode_geometries(blobs), STORAGE_EPSG)
    hexes: list[str | None] = shapely.to_wkb(arr, hex=True, include_srid=True, output_dimension=2).tolist()
    return hexes


def _select_expr(col: str, sql_type: str) -> str:
    """Column expression giving the value in the GeoPackage backend's text form for dates and timestamps."""
    if sql_type == "DATE":
        return f"to_char({_q(col)}, 'YYYY-MM-DD')"
    if sql_type == "DATETIME":
        return f"""to_char({_q(col)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
    return _q(col)


def _select(con: psycopg.Connection, layer: str, cols: list[str], types: Mapping[str, str],
            geom_col: str | None, where: str | None, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    select = [_select_expr(c, types[c]) for c in cols] + ([f"ST_AsBinary({_q(geom_col)})"] if geom_col else [])
    sql = f"SELECT {', '.join(select) or 'NULL'} FROM {_q(layer)}"
    if where:
        sql += f" WHERE {where}"
    sql += " ORDER BY fid"
    with con.cursor(binary=True) as cur:
        rows = cur.execute(translate_sql(sql), tuple(params)).fetchall()
    if not select:
        return []
    return rows


def _create_layer(con: psycopg.Connection, name: str, layer: Layer) -> None:
    cols = ["fid bigserial PRIMARY KEY"]
    if layer.geometry:
        cols.append(f"{GEOM_COLUMN} geometry({_PG_GEOMETRY[layer.geometry]}, {STORAGE_EPSG})")
    cols += [f"{_q(c)} {pg_type(t)}" for c, t in layer.columns.items()]
    con.execute(f"CREATE TABLE {_q(name)} ({', '.join(cols)})")
    con.execute(
        f"INSERT INTO {LAYERS_TABLE} (table_name, data_type, geometry_type, description, last_change) "
        "VALUES (%s, %s, %s, %s, now())",
        (name, "features" if layer.geometry else "attributes", layer.geometry, layer.description),
    )
    if layer.geometry:
        con.execute(f"CREATE INDEX {_q(f'idx_{name}_{GEOM_COLUMN}')} ON {_q(name)} USING GIST ({GEOM_COLUMN})")
    for col in (layer.key, *layer.indexes):
        if col:
            unique = "UNIQUE " if col == layer.key and name != "grids" else ""
            con.execute(f"CREATE {unique}INDEX {_q(f'idx_{name}_{col}')} ON {_q(name)} ({_q(col)})")
    if name != "audit" and _has_edit_log(con):  # a layer declared later, created on first write
        _create_edit_triggers(con, _one(con.execute("SELECT current_schema()"))[0], name)


def _create_audit_guard(con: psycopg.Connection, schema: str) -> None:
    """A trigger function that refuses ``UPDATE``, ``DELETE`` and ``TRUNCATE`` on the audit table of ``schema``."""
    fn = f"{_q(schema)}.audit_append_only"
    con.execute(
        f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{AUDIT_APPEND_ONLY}'; END $$"
    )
    con.execute(f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {_q(schema)}.audit "
                f"FOR EACH ROW EXECUTE FUNCTION {fn}()")
    con.execute(f"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {_q(schema)}.audit "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()")


LIBRARY_SETTING = "grids.library"
"""Transaction-local setting (``SET LOCAL``) the library's own transactions turn on; the edit triggers skip
statements run while it is on, so they count only what other programs (QGIS, ogr2ogr, psql) change."""


def _enter_library(con: psycopg.Connection) -> None:
    con.execute("SELECT set_config(%s, 'on', true)", (LIBRARY_SETTING,))


def _has_edit_log(con: psycopg.Connection) -> bool:
    return _one(con.execute("SELECT to_regclass(%s)", (EDITS_TABLE,)))[0] is not None


def _create_edit_log(con: psycopg.Connection, schema: str) -> None:
    """The side table and statement-level triggers on every data table counting the rows each statement of
    another program inserts, updates or deletes (transition tables; one upsert per statement), or empties with
    ``TRUNCATE`` (which fires no row or ``DELETE`` trigger: a ``BEFORE TRUNCATE`` statement trigger counts the rows
    about to go, as op ``truncate``).

    Not recorded: DDL (``ALTER``/``DROP TABLE``) made behind the library's back — that needs an event trigger,
    which only a superuser may create (see README, “在 QGIS 里编辑”)."""
    s = _q(schema)
    con.execute(f"CREATE TABLE IF NOT EXISTS {s}.{EDITS_TABLE} (layer text NOT NULL, op text NOT NULL, "
                "n bigint NOT NULL DEFAULT 0, PRIMARY KEY (layer, op))")
    for op, rows in (("insert", "new_rows"), ("update", "new_rows"), ("delete", "old_rows")):
        con.execute(
            f"CREATE OR REPLACE FUNCTION {s}.ws_edit_{op}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "DECLARE k bigint; BEGIN "
            f"IF coalesce(current_setting('{LIBRARY_SETTING}', true), '') = 'on' THEN RETURN NULL; END IF; "
            f"SELECT count(*) INTO k FROM {rows}; "
            f"IF k > 0 THEN INSERT INTO {s}.{EDITS_TABLE} (layer, op, n) VALUES (TG_TABLE_NAME, '{op}', k) "
            f"ON CONFLICT (layer, op) DO UPDATE SET n = {s}.{EDITS_TABLE}.n + EXCLUDED.n; END IF; "
            "RETURN NULL; END $$"
        )
    tables = [r[0] for r in con.execute(f"SELECT table_name FROM {s}.{LAYERS_TABLE}").fetchall()]
    _create_truncate_log(con, schema, ())  # the function; the loop adds its triggers
    for table in edit_logged_tables([*tables, META_TABLE]):
        _create_edit_triggers(con, schema, table)


def _create_truncate_log(con: psycopg.Connection, schema: str, tables: Sequence[str]) -> None:
    """The ``TRUNCATE`` edit function and, on each of ``tables`` lacking it, its ``BEFORE TRUNCATE`` statement
    trigger (it counts the rows about to go; op ``truncate``). Drops nothing, so it takes no ACCESS EXCLUSIVE lock."""
    s = _q(schema)
    con.execute(
        f"CREATE OR REPLACE FUNCTION {s}.ws_edit_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE k bigint; BEGIN "
        f"IF coalesce(current_setting('{LIBRARY_SETTING}', true), '') = 'on' THEN RETURN NULL; END IF; "
        "EXECUTE format('SELECT count(*) FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO k; "
        f"IF k > 0 THEN INSERT INTO {s}.{EDITS_TABLE} (layer, op, n) VALUES (TG_TABLE_NAME, 'truncate', k) "
        f"ON CONFLICT (layer, op) DO UPDATE SET n = {s}.{EDITS_TABLE}.n + EXCLUDED.n; END IF; "
        "RETURN NULL; END $$"
    )
    for table in tables:
        _create_truncate_trigger(con, schema, table)


def _create_edit_triggers(con: psycopg.Connection, schema: str, table: str) -> None:
    s = _q(schema)
    for op, ref in (("insert", "NEW TABLE AS new_rows"), ("update", "NEW TABLE AS new_rows"),
                    ("delete", "OLD TABLE AS old_rows")):
        con.execute(f"DROP TRIGGER IF EXISTS {_q(f'ws_edit_{op}')} ON {s}.{_q(table)}")
        con.execute(f"CREATE TRIGGER {_q(f'ws_edit_{op}')} AFTER {op.upper()} ON {s}.{_q(table)} "
                    f"REFERENCING {ref} FOR EACH STATEMENT EXECUTE FUNCTION {s}.ws_edit_{op}()")
    _create_truncate_trigger(con, schema, table)


def _create_truncate_trigger(con: psycopg.Connection, schema: str, table: str) -> None:
    # created only where missing: DROP TRIGGER takes an ACCESS EXCLUSIVE lock, which would deadlock with the
    # concurrent openers of an old workspace waiting on the revision row (they hold ROW SHARE on ws_meta)
    s = _q(schema)
    if not con.execute("SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = 'ws_edit_truncate'",
                       (f"{s}.{_q(table)}",)).fetchone():
        con.execute(f"CREATE TRIGGER ws_edit_truncate BEFORE TRUNCATE ON {s}.{_q(table)} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.ws_edit_truncate()")


def _recorder(con: psycopg.Connection) -> Any:
    """The transaction class :func:`grids.workspace.base._record_external_edits` builds its audit row with (PostGIS)."""
    return lambda _wrapped, **kw: PgTransaction(con, **kw)


def _drop_workspace(con: psycopg.Connection, schema: str) -> None:
    """Drop a workspace's tables (the whole schema unless it is ``public``)."""
    if schema != "public":
        con.execute(f"DROP SCHEMA {_q(schema)} CASCADE")
        return
    names = [r[0] for r in con.execute(f"SELECT table_name FROM public.{LAYERS_TABLE}").fetchall()]
    for name in [*names, LAYERS_TABLE, META_TABLE, EDITS_TABLE]:
        con.execute(f"DROP TABLE IF EXISTS public.{_q(name)} CASCADE")


def _table_columns(con: psycopg.Connection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (_q(table),),
    ).fetchall()
    return {name: _FROM_PG.get(typ, "TEXT") for name, typ in rows if name != "fid" and not typ.endswith("geometry")}


def _geometry_column(con: psycopg.Connection, table: str) -> str | None:
    row = con.execute(f"SELECT geometry_type FROM {LAYERS_TABLE} WHERE table_name = %s", (table,)).fetchone()
    return GEOM_COLUMN if row and row[0] else None
