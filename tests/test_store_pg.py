"""The PostGIS workspace backend: same behaviour as the GeoPackage one, migration both ways, concurrency.

Behaviour tests run against both backends through the ``any_ws`` fixture. PostgreSQL comes from
``GRIDS_TEST_PG_URL`` or ``scripts/postgres.sh``; see tests/pg.py for when the PostGIS tests skip or fail.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import threading
import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from grids.__main__ import main as cli
from grids.audit import GENESIS, verify
from grids.commands.migrate import migrate
from grids.errors import StaleRevisionError, ValidationError, WorkspaceError
from grids.model import LAYERS
from grids.workspace import SCHEMA_VERSION, GpkgWorkspace, open_workspace
from grids.workspace.base import AUDIT_APPEND_ONLY
from grids.workspace.postgis import PgWorkspace, split_url, translate_sql

from .conftest import DEMO, three_households
from .pg import bump_counter, fresh_schema

COUNTY = {"county_code": "150422", "county_name": "巴林左旗"}


# --------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------


def _filled(ws) -> None:
    """Put a few rows into every layer, with extra columns of each type, in two transactions."""
    town = shapely.box(119.0, 43.0, 119.5, 43.5)
    two_parts = shapely.MultiPolygon([shapely.box(119.6, 43.0, 119.7, 43.1), shapely.box(119.8, 43.0, 119.9, 43.1)])
    holed = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)], [[(0.2, 0.2), (0.4, 0.2), (0.4, 0.4)]])
    crs = 4490
    with ws.transaction(actor="alice", action="导入") as tx:
        tx.replace("admin_units", gpd.GeoDataFrame(
            {"code": ["150422", "150422100"], "name": ["巴林左旗", "林东镇"], "level": ["county", "town"],
             "parent_code": [None, "150422"], "area_km2": [6644.5, None]},
            geometry=[two_parts, town], crs=crs))
        tx.replace("urban_areas", gpd.GeoDataFrame({"name": ["林东镇区"], "code": ["U1"]}, geometry=[holed], crs=crs))
        tx.replace("streets", gpd.GeoDataFrame(
            {"name": ["契丹大街", "无名路"], "class": ["primary", None]},
            geometry=[shapely.LineString([(119.1, 43.1), (119.2, 43.2), (119.3, 43.2)]),
                      shapely.MultiLineString([[(119.0, 43.0), (119.1, 43.0)], [(119.2, 43.0), (119.3, 43.1)]])],
            crs=crs))
        tx.replace("branches", gpd.GeoDataFrame(
            {"branch_id": ["B01"], "name": ["林东营业部"], "kind": ["营业部"], "town_code": ["150422100"],
             "address": ["林东镇契丹大街 1 号"]},
            geometry=[shapely.Point(119.3912345678901, 43.9812345678901)], crs=crs))
        tx.replace("staff", pd.DataFrame(
            {"staff_id": ["S1", "S2"], "name": ["赵六", "钱七"], "branch_id": ["B01", "B01"],
             "role": ["客户经理", "网点主任"], "phone": ["13800000000", None],
             "hired_on": pd.to_datetime(["2015-03-01", None]), "quota": pd.array([120, None], dtype="Int64"),
             "full_time": [True, False]}))
        tx.replace("households", three_households())
    with ws.transaction(actor="bob", action="规划") as tx:
        tx.append("visits", pd.DataFrame(
            {"hh_id": ["H1", "H3"], "staff_id": ["S1", "S1"], "visited_on": pd.to_datetime(["2024-05-01", "2024-05-02"]),
             "outcome": ["已建档", "未遇"], "note": ["", "100% 完成?"]}))
        tx.append("plans", pd.DataFrame(
            {"plan_id": ["P1"], "name": ["2024 方案"], "status": ["draft"], "revision": [3],
             "created_at": [pd.Timestamp("2024-05-01 08:30:15.250", tz="Asia/Shanghai")]}))
        tx.append("grids", gpd.GeoDataFrame(
            {"grid_id": ["G1"], "plan_id": ["P1"], "code": ["150422100-01"], "kind": ["rural"],
             "households": [2], "branch_id": ["B01"], "staff_id": ["S1"], "locked": [False]},
            geometry=[town], crs=crs))
        tx.append("accounts", pd.DataFrame(
            {"username": ["zhao"], "display_name": ["赵六"], "role": ["customer_manager"], "active": [True],
             "created_at": [pd.Timestamp("2024-01-02T03:04:05.678Z")]}))


def _assert_same_workspace(a, b, *, check_column_order: bool = True) -> None:
    """Every layer of ``a`` and ``b`` equal: values, dtypes, column types, geometry bytes; same metadata."""
    assert a.meta == b.meta
    assert a.layers() == b.layers()
    for name in a.layers():
        assert a.columns(name) == b.columns(name), name
        fa, fb = a.read(name), b.read(name)
        if isinstance(fa, gpd.GeoDataFrame):
            assert isinstance(fb, gpd.GeoDataFrame) and fb.crs == fa.crs, name
            ga, gb = fa.geometry.values, fb.geometry.values
            missing = shapely.is_missing(ga)
            assert (missing == shapely.is_missing(gb)).all(), name
            assert (shapely.to_wkb(ga[~missing]) == shapely.to_wkb(gb[~missing])).all(), name
            fa, fb = pd.DataFrame(fa.drop(columns="geometry")), pd.DataFrame(fb.drop(columns="geometry"))
        pd.testing.assert_frame_equal(fa, fb, check_like=not check_column_order, obj=name)


# --------------------------------------------------------------------------------------------------------
# pure helpers (no database)
# --------------------------------------------------------------------------------------------------------


def test_translate_sql_placeholders_outside_quotes_only():
    assert translate_sql("a = ? AND b = ?") == "a = %s AND b = %s"
    assert translate_sql("""note = '谁?' AND "odd?col" = ?""") == """note = '谁?' AND "odd?col" = %s"""
    assert translate_sql("name LIKE '10%' OR x = ?") == "name LIKE '10%%' OR x = %s"


def test_split_url_schema_from_query_or_argument():
    assert split_url("postgresql://u@h:1/db") == ("postgresql://u@h:1/db", "public")
    assert split_url("postgresql://u@h:1/db?schema=ws_1&sslmode=disable") == (
        "postgresql://u@h:1/db?sslmode=disable", "ws_1")
    assert split_url("postgresql://u@h:1/db?schema=ws_1", "ws_2")[1] == "ws_2"
    with pytest.raises(ValidationError, match="小写字母"):
        split_url("postgresql://u@h:1/db?schema=Bad-Name")


def test_unreachable_server_says_how_to_fix():
    with pytest.raises(WorkspaceError, match=r"无法连接 PostgreSQL.*scripts/postgres\.sh") as err:
        PgWorkspace("postgresql://nobody:secret@127.0.0.1:1/db")
    assert "secret" not in str(err.value) and "nobody:***@" in str(err.value)


def test_unescaped_at_in_the_password_leaks_no_part_of_it():
    with pytest.raises(WorkspaceError, match="%40") as err:  # libpq reads host 'ret@127.0.0.1'
        PgWorkspace("postgresql://grids:S3c@ret@127.0.0.1:1/db")
    assert "S3c" not in str(err.value) and "ret" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


# --------------------------------------------------------------------------------------------------------
# the same behaviour on both backends
# --------------------------------------------------------------------------------------------------------


def test_create_has_every_layer(any_ws):
    assert set(LAYERS) <= set(any_ws.layers())
    assert any_ws.revision == 0 and not any_ws.is_demo
    assert any_ws.meta["county_code"] == "150422" and any_ws.meta["county_name"] == "巴林左旗"
    assert any_ws.integrity_check() == "ok"
    assert any_ws.columns("staff") == LAYERS["staff"].columns


def test_round_trip_keeps_values_types_and_empty_points(any_ws):
    with any_ws.transaction(actor="t", action="导入") as tx:
        tx.replace("households", three_households())
    back = any_ws.read("households")
    assert back["hh_id"].tolist() == ["H1", "H2", "H3"]
    assert back["head_name"].tolist() == ["张三", "李四", "王五"]
    assert back["archived"].dtype == bool and back["archived"].tolist() == [True, False, True]
    assert back["eligible"].dtype == "boolean" and pd.isna(back["eligible"].iloc[1])
    assert back["using"].tolist() == [True, False, False]
    assert back["granted_amount"].iloc[0] == 50_000.0 and pd.isna(back["granted_amount"].iloc[2])
    assert back.geometry.iloc[1] is None
    assert back.geometry.iloc[0].equals(shapely.Point(119.39, 43.98))
    assert back.crs.to_epsg() == 4490


def test_postgis_reads_the_same_frames_as_geopackage(tmp_path, pg_ws):
    gpkg = GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
    for ws in (gpkg, pg_ws):
        _filled(ws)
    for name in ("households", "staff", "plans", "visits", "accounts", "streets"):
        a, b = gpkg.read(name), pg_ws.read(name)
        assert a.dtypes.astype(str).tolist() == b.dtypes.astype(str).tolist(), name
    audit_a, audit_b = gpkg.read("audit"), pg_ws.read("audit")
    chain = ["at", "prev_hash", "hash"]  # the hashes cover the time, which differs
    pd.testing.assert_frame_equal(audit_a.drop(columns=chain), audit_b.drop(columns=chain))
    assert verify(gpkg).ok and verify(pg_ws).ok
    _assert_same_workspace_data(gpkg, pg_ws)


def _assert_same_workspace_data(a, b):
    for name in LAYERS:
        if name == "audit":
            continue
        fa, fb = a.read(name), b.read(name)
        pd.testing.assert_frame_equal(pd.DataFrame(fa), pd.DataFrame(fb), obj=name)


def test_polygons_are_stored_multi_and_read_back_single(any_ws):
    poly = shapely.box(119, 43, 119.1, 43.1)
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])
    admin = gpd.GeoDataFrame({"code": ["150422", "150422100"], "level": ["county", "town"]},
                             geometry=[poly, multi], crs=4490)
    any_ws.write("admin_units", admin, actor="t")
    back = any_ws.read("admin_units")
    assert back.geometry.iloc[0].geom_type == "Polygon" and back.geometry.iloc[0].equals(poly)
    assert back.geometry.iloc[1].geom_type == "MultiPolygon" and back.geometry.iloc[1].equals(multi)


def test_other_crs_is_converted_to_storage_crs(any_ws):
    pts = gpd.GeoDataFrame({"branch_id": ["B01"]}, geometry=[shapely.Point(119.39, 43.98)], crs=4490)
    any_ws.write("branches", pts.to_crs(4549), actor="t")  # Gauss-Krüger zone 40 (120°E)
    back = any_ws.read("branches").geometry.iloc[0]
    assert back.x == pytest.approx(119.39, abs=1e-9) and back.y == pytest.approx(43.98, abs=1e-9)
    with pytest.raises(ValidationError, match="没有坐标系"):
        any_ws.write("branches", pts.set_crs(None, allow_override=True), actor="t")


def test_failed_transaction_leaves_workspace_unchanged(any_ws):
    any_ws.write("households", three_households(), actor="t")
    audit_before = any_ws.read("audit")
    with pytest.raises(RuntimeError), any_ws.transaction(actor="t", action="坏的导入") as tx:
        tx.replace("households", three_households().iloc[:1])
        tx.append("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]}))
        assert len(tx.read("households")) == 1  # the transaction sees its own change
        raise RuntimeError("boom in the middle")
    assert any_ws.revision == 1
    assert len(any_ws.read("households")) == 3
    assert len(any_ws.read("staff")) == 0
    pd.testing.assert_frame_equal(any_ws.read("audit"), audit_before)


def test_duplicate_key_rolls_back_whole_transaction(any_ws):
    dup = three_households()
    dup.loc[2, "hh_id"] = "H1"
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        any_ws.write("households", dup, actor="t")
    assert any_ws.revision == 0 and any_ws.count("households") == 0


def test_revision_and_audit(any_ws):
    any_ws.write("households", three_households(), actor="alice", action="导入农户")
    assert any_ws.revision == 1
    audit = any_ws.read("audit")
    assert audit["actor"].tolist() == ["alice"] and audit["action"].tolist() == ["导入农户"]
    assert audit["revision"].tolist() == [1]
    assert '"rows_after": 3' in audit["detail"].iloc[0]
    assert abs(audit["at"].iloc[0] - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)
    with any_ws.transaction(actor="bob", action="删除", expected_revision=1) as tx:
        assert tx.delete("households", where="hh_id = ?", params=["H2"]) == 1
    assert any_ws.revision == 2 and any_ws.count("households") == 2
    assert any_ws.read("audit")["revision"].tolist() == [1, 2]


def test_stale_revision_writes_nothing(any_ws):
    any_ws.write("households", three_households(), actor="alice")
    with (pytest.raises(StaleRevisionError, match="第 0 版") as err,
          any_ws.transaction(actor="bob", action="改", expected_revision=0) as tx):
        tx.append("staff", pd.DataFrame({"staff_id": ["S1"]}))
    assert (err.value.expected, err.value.actual) == (0, 1)
    assert any_ws.count("staff") == 0 and any_ws.revision == 1 and len(any_ws.read("audit")) == 1


def test_transaction_without_changes_keeps_revision(any_ws):
    with any_ws.transaction(actor="t", action="只读") as tx:
        tx.read("households")
    assert any_ws.revision == 0 and len(any_ws.read("audit")) == 0


def test_audit_only_record_keeps_revision(any_ws):
    any_ws.write("households", three_households(), actor="t")
    with any_ws.transaction(actor="leader", action="查看明文个人信息") as tx:
        tx.note("households", {"rows": 3})
    assert any_ws.revision == 1
    audit = any_ws.read("audit")
    assert audit["action"].tolist()[-1] == "查看明文个人信息" and audit["revision"].tolist() == [1, 1]


def test_extra_columns_are_kept_with_their_types(any_ws):
    df = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["赵六", "钱七"], "hired_year": [2015, 2019],
                       "score": [1.5, None], "trained": [True, False],
                       "since": pd.to_datetime(["2015-03-01 08:00", None]).tz_localize("UTC")})
    any_ws.write("staff", df, actor="t")
    back = any_ws.read("staff")
    assert back["hired_year"].tolist() == [2015, 2019] and back["hired_year"].dtype == "int64"
    assert back["score"].iloc[0] == 1.5 and pd.isna(back["score"].iloc[1])
    assert back["trained"].tolist() == [True, False]
    assert back["since"].iloc[0] == pd.Timestamp("2015-03-01 08:00", tz="UTC") and pd.isna(back["since"].iloc[1])
    assert any_ws.columns("staff")["hired_year"] == "INTEGER"
    assert any_ws.columns("staff")["trained"] == "BOOLEAN"
    assert any_ws.columns("staff")["since"] == "DATETIME"


def test_read_where_columns_and_unknown_layer(any_ws):
    any_ws.write("households", three_households(), actor="t")
    assert any_ws.read("households", where="segment = ?", params=["农牧户"])["hh_id"].tolist() == ["H1"]
    assert any_ws.read("households", where='"using" = ? OR hh_id = ?', params=[True, "H3"])["hh_id"].tolist() == [
        "H1", "H3"]
    some = any_ws.read("households", columns=["hh_id", "segment"])
    assert list(some.columns) == ["hh_id", "segment", "geometry"]
    assert any_ws.count("households", where="head_name LIKE ?", params=["张%"]) == 1
    with pytest.raises(ValidationError, match="没有这些列"):
        any_ws.read("households", columns=["nope"])
    with pytest.raises(ValidationError, match="可用的图层"):
        any_ws.read("nope")
    with pytest.raises(ValidationError, match="可用的图层"):
        any_ws.read("ws_meta")


def test_execute_with_placeholders_and_question_marks_in_strings(any_ws):
    any_ws.write("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]}), actor="t")
    with any_ws.transaction(actor="t", action="改名") as tx:
        tx.execute("UPDATE staff SET name = ? || '?%' WHERE staff_id = ?", ("钱七", "S1"))
    assert any_ws.read("staff")["name"].tolist() == ["钱七?%"]
    assert any_ws.revision == 2


def test_sqlite_style_integers_for_booleans(any_ws):
    any_ws.write("households", three_households(), actor="t")
    with any_ws.transaction(actor="t", action="建档") as tx:
        tx.execute("UPDATE households SET archived = ?, eligible = ? WHERE hh_id = ?", (0, 1, "H1"))
        tx.execute("UPDATE households SET granted_amount = granted_amount + ? WHERE hh_id = ?", (5, "H1"))
    back = any_ws.read("households", where="archived = ? AND eligible = ?", params=[0, 1])
    assert back["hh_id"].tolist() == ["H1"] and back["granted_amount"].tolist() == [50_005.0]
    assert any_ws.read("households")["archived"].tolist() == [False, False, True]


def test_set_meta_and_write_modes(any_ws):
    any_ws.set_meta("demo", "1", actor="t")
    assert any_ws.is_demo and any_ws.revision == 1
    with pytest.raises(ValueError, match="revision"):
        any_ws.set_meta("revision", "7")
    staff = pd.DataFrame({"staff_id": ["S1"]})
    assert any_ws.write("staff", staff, mode="append") == 2
    assert any_ws.write("staff", staff.assign(staff_id="S2"), mode="append") == 3
    assert any_ws.read("staff")["staff_id"].tolist() == ["S1", "S2"]
    with pytest.raises(ValueError, match="mode"):
        any_ws.write("staff", staff, mode="upsert")


# --------------------------------------------------------------------------------------------------------
# PostGIS specifics
# --------------------------------------------------------------------------------------------------------


def test_postgis_tables_have_typed_geometry_and_gist_indexes(pg_ws, pg_url):
    pg_ws.write("admin_units", gpd.GeoDataFrame({"code": ["150422"]}, geometry=[shapely.box(0, 0, 1, 1)],
                                                crs=4490), actor="t")
    with psycopg.connect(pg_url) as con:
        geo = dict(con.execute(
            "SELECT f_table_name, type || ',' || srid FROM geometry_columns WHERE f_table_schema = %s",
            (pg_ws.schema,)).fetchall())
        gist = {r[0] for r in con.execute(
            "SELECT tablename FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE '%%USING gist%%'",
            (pg_ws.schema,)).fetchall()}
        stored = con.execute(f'SELECT GeometryType(geom) FROM "{pg_ws.schema}".admin_units').fetchone()[0]
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'households'", (pg_ws.schema,)).fetchall())
    expected = {name: f"{layer.geometry},4490" for name, layer in LAYERS.items() if layer.geometry}
    assert geo == expected
    assert gist == set(expected)
    assert stored == "MULTIPOLYGON"
    assert types["archived"] == "boolean" and types["granted_amount"] == "double precision"
    assert types["fid"] == "bigint"


def test_open_workspace_dispatches_urls_and_schemas(pg_ws, pg_target):
    ws = open_workspace(pg_target)
    assert isinstance(ws, PgWorkspace) and ws.schema == pg_ws.schema
    assert ws.url == pg_target


def test_create_refuses_existing_workspace_and_open_refuses_empty_schema(pg_ws, pg_target, pg_url):
    pg_ws.write("staff", pd.DataFrame({"staff_id": ["S1"]}), actor="t")
    with pytest.raises(WorkspaceError, match="已有工作区"):
        PgWorkspace.create(pg_target, **COUNTY)
    again = PgWorkspace.create(pg_target, county_code="150423", county_name="巴林右旗", overwrite=True)
    assert again.count("staff") == 0 and again.meta["county_code"] == "150423"
    with fresh_schema(pg_url) as other, pytest.raises(WorkspaceError, match="不是网格通工作区"):
        PgWorkspace(pg_url, schema=other)


def test_public_schema_in_a_database_without_postgis(pg_url):
    """The default schema, the extension created on demand, and ``overwrite`` dropping only our tables."""
    name = "grids_t_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE TABLE public.keep_me (x int)")
        ws = PgWorkspace.create(url, **COUNTY)
        assert ws.schema == "public" and set(ws.layers()) == set(LAYERS)  # no spatial_ref_sys, no keep_me
        ws.write("staff", pd.DataFrame({"staff_id": ["S1"], "bonus": [1.5]}), actor="t")
        again = PgWorkspace.create(url, county_code="150423", county_name="巴林右旗", overwrite=True)
        assert again.count("staff") == 0 and "bonus" not in again.columns("staff") and again.revision == 0
        with psycopg.connect(url) as con:
            assert con.execute("SELECT to_regclass('public.keep_me')").fetchone()[0] == "keep_me"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------------------------------------
# migrate
# --------------------------------------------------------------------------------------------------------


def test_migrate_gpkg_to_postgis_to_gpkg_is_lossless(tmp_path, pg_target):
    src = GpkgWorkspace.create(tmp_path / "src.gpkg", **COUNTY, demo=True)
    _filled(src)
    src.set_meta("note", "迁移测试")
    counts = migrate(src.path, pg_target, keep_demo_accounts=True)  # a demo source copied as it is
    assert counts["households"] == 3 and counts["audit"] == 3 and counts["staff"] == 2
    assert set(counts) == set(src.layers())
    pg = PgWorkspace(pg_target)
    assert pg.revision == src.revision == 3 and pg.is_demo
    _assert_same_workspace(src, pg)
    assert verify(pg).ok and verify(pg).head == verify(src).head  # the chain survives the copy
    migrate(pg_target, tmp_path / "back.gpkg", keep_demo_accounts=True)
    back = GpkgWorkspace(tmp_path / "back.gpkg")
    _assert_same_workspace(src, back)
    assert back.integrity_check() == "ok"


def test_migrate_gpkg_to_gpkg_and_refusal_without_force(tmp_path, pg_target):
    src = GpkgWorkspace.create(tmp_path / "src.gpkg", **COUNTY)
    _filled(src)
    dst = tmp_path / "copy.gpkg"
    GpkgWorkspace.create(dst, county_code="150423", county_name="巴林右旗")  # empty: may be replaced
    assert migrate(src.path, dst)["grids"] == 1
    _assert_same_workspace(src, GpkgWorkspace(dst))
    with pytest.raises(WorkspaceError, match="--force"):
        migrate(src.path, dst)
    migrate(src.path, pg_target)
    other = GpkgWorkspace.create(tmp_path / "other.gpkg", county_code="150423", county_name="巴林右旗")
    other.write("staff", pd.DataFrame({"staff_id": ["X"]}), actor="t")
    with pytest.raises(WorkspaceError, match="已有工作区数据"):
        migrate(other.path, pg_target)
    assert PgWorkspace(pg_target).meta["county_code"] == "150422"  # refused: nothing changed
    migrate(other.path, pg_target, force=True)
    assert PgWorkspace(pg_target).read("staff")["staff_id"].tolist() == ["X"]
    with pytest.raises(ValidationError, match="同一个"):
        migrate(src.path, src.path, force=True)


def test_migrate_failure_leaves_destination_as_it_was(tmp_path, pg_target, monkeypatch):
    src = GpkgWorkspace.create(tmp_path / "src.gpkg", **COUNTY)
    _filled(src)
    first = GpkgWorkspace.create(tmp_path / "first.gpkg", county_code="150423", county_name="巴林右旗")
    first.write("staff", pd.DataFrame({"staff_id": ["X"]}), actor="t")
    migrate(first.path, pg_target)
    real_read = GpkgWorkspace.read

    def failing_read(self, layer, **kw):
        if layer == "visits":
            raise RuntimeError("source broke halfway")
        return real_read(self, layer, **kw)

    monkeypatch.setattr(GpkgWorkspace, "read", failing_read)
    with pytest.raises(RuntimeError, match="halfway"):
        migrate(src.path, pg_target, force=True)
    with pytest.raises(RuntimeError, match="halfway"):
        migrate(src.path, tmp_path / "never.gpkg")
    monkeypatch.undo()
    kept = PgWorkspace(pg_target)
    assert kept.meta["county_code"] == "150423" and kept.read("staff")["staff_id"].tolist() == ["X"]
    assert not (tmp_path / "never.gpkg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.gpkg", "src.gpkg"]


def test_migrate_command_line(tmp_path, pg_target, capsys, monkeypatch):
    from .conftest import cli_user

    src = GpkgWorkspace.create(tmp_path / "src.gpkg", **COUNTY)
    _filled(src)
    user = ["--user", cli_user(src, monkeypatch)]  # the source's administrator: one more revision
    assert cli(["migrate", str(src.path), pg_target, *user]) == 0
    out = capsys.readouterr().out
    assert f"已迁移 {len(LAYERS)} 个图层" in out and "第 3 版" in out
    assert cli(["migrate", str(src.path), pg_target, *user]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli(["migrate", str(src.path), pg_target, "--force", *user]) == 0
    assert PgWorkspace(pg_target).read("audit")["actor"].iloc[-1] == "admin"


@pytest.mark.slow
@pytest.mark.skipif(not DEMO.exists(), reason="workspace/demo.gpkg not built (python -m grids demo)")
def test_migrate_demo_workspace_both_ways(tmp_path, pg_target):
    src = tmp_path / "demo.gpkg"
    shutil.copy(DEMO, src)
    migrate(src, pg_target, keep_demo_accounts=True)
    migrate(pg_target, tmp_path / "back.gpkg", keep_demo_accounts=True)
    # column order follows grids.model: a column the demo file has as an importer's extra may move
    _assert_same_workspace(GpkgWorkspace(src), PgWorkspace(pg_target), check_column_order=False)
    _assert_same_workspace(GpkgWorkspace(src), GpkgWorkspace(tmp_path / "back.gpkg"), check_column_order=False)


# --------------------------------------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_two_processes_lose_no_update(backend, tmp_path, request):
    if backend == "gpkg":
        ws = GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
        target = str(ws.path)
    else:
        target = request.getfixturevalue("pg_target")
        ws = PgWorkspace.create(target, **COUNTY)
    ws.write("plans", pd.DataFrame({"plan_id": ["P1"], "revision": [0]}), actor="t")
    n = 100
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=bump_counter, args=(target, n, barrier, f"w{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0, 0]
    assert ws.read("plans")["revision"].tolist() == [2 * n]
    assert ws.revision == 1 + 2 * n
    audit = ws.read("audit")
    assert sorted(audit["actor"].value_counts().items()) == [("t", 1), ("w0", n), ("w1", n)]
    assert np.array_equal(np.sort(audit["revision"].to_numpy()), np.arange(1, 2 * n + 2))
    result = verify(ws)  # concurrent writers each chained to the row committed before theirs
    assert result.ok and result.rows == 2 * n + 1


# --------------------------------------------------------------------------------------------------------
# audit: append-only, hash chain, upgrade of older workspaces
# --------------------------------------------------------------------------------------------------------


def _raw(ws):
    """A raw connection to the workspace's database (sqlite3 or psycopg), statements with ``?`` → ``%s``."""
    if isinstance(ws, PgWorkspace):
        return ws._connect(), "%s"
    return sqlite3.connect(ws.path, isolation_level=None), "?"


def _drop_guard(con) -> None:
    if isinstance(con, sqlite3.Connection):
        con.execute("DROP TRIGGER audit_no_update")
        con.execute("DROP TRIGGER audit_no_delete")
    else:
        con.execute("DROP TRIGGER audit_append_only ON audit")
        con.execute("DROP TRIGGER audit_no_truncate ON audit")


def test_audit_rows_cannot_be_changed_and_changes_are_detected(any_ws):
    _filled(any_ws)
    with any_ws.transaction(actor="carol", action="查看明文个人信息") as tx:
        tx.note("households", {"rows": 3})
    assert verify(any_ws).ok and verify(any_ws).rows == 3 and any_ws.audit_records()[0][7] == GENESIS
    con, ph = _raw(any_ws)
    try:
        refused = (sqlite3.IntegrityError, psycopg.errors.RaiseException)
        for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit WHERE fid > 1"):
            with pytest.raises(refused, match=AUDIT_APPEND_ONLY):
                con.execute(sql)
        if ph == "%s":
            with pytest.raises(refused, match=AUDIT_APPEND_ONLY):
                con.execute("TRUNCATE audit")
        _drop_guard(con)
        fid = any_ws.audit_records()[1][0]
        con.execute(f"UPDATE audit SET detail = '[]' WHERE fid = {ph}", (fid,))
    finally:
        con.close()
    result = verify(any_ws)
    assert not result.ok and result.fid == fid and result.actor == "bob" and "被修改" in result.reason


def _make_old(ws) -> None:
    """Turn ``ws`` into what the base commit made: no version/lockout/hash columns, no trigger, ``schema`` 1."""
    con, _ = _raw(ws)
    try:
        _drop_guard(con)
        for table, cols in {"audit": ("prev_hash", "hash"), "households": ("version",), "grids": ("version",),
                            "accounts": ("failed_logins", "locked_until")}.items():
            for col in cols:
                con.execute(f'ALTER TABLE {table} DROP COLUMN "{col}"')
        _drop_edit_log(con, postgis=isinstance(ws, PgWorkspace))  # schema 5's edit log did not exist either
        con.execute("UPDATE ws_meta SET value = '1' WHERE key = 'schema'")
    finally:
        con.close()


def _drop_edit_log(con, *, postgis: bool) -> None:
    if postgis:
        for op in ("insert", "update", "delete"):
            con.execute(f"DROP FUNCTION ws_edit_{op}() CASCADE")
    else:
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'ws_edit_%'"
                                   ).fetchall():
            con.execute(f'DROP TRIGGER "{name}"')
        con.execute("DROP TABLE ws_edit_guard")
    con.execute("DROP TABLE ws_external_edits")


def test_old_workspace_is_upgraded_once_on_open(any_ws):
    _filled(any_ws)
    _make_old(any_ws)
    target = any_ws.target if isinstance(any_ws, GpkgWorkspace) else any_ws._conninfo + f"?schema={any_ws.schema}"
    assert "hash" not in any_ws.columns("audit")
    start, opened = threading.Barrier(3), []
    threads = [threading.Thread(target=lambda: (start.wait(), opened.append(open_workspace(target))))
               for _ in range(3)]  # three servers opening it at once upgrade it once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 3
    ws = opened[0]
    assert {"prev_hash", "hash"} <= set(ws.columns("audit")) and "version" in ws.columns("households")
    assert {"failed_logins", "locked_until"} <= set(ws.columns("accounts"))
    assert ws.meta["schema"] == str(SCHEMA_VERSION) and ws.revision == 3
    log = ws.read("audit")
    assert log["action"].tolist() == ["导入", "规划", "升级工作区"] and '"rows_chained": 2' in log["detail"].iloc[-1]
    assert verify(ws).ok
    con, _ = _raw(ws)
    try:
        with pytest.raises((sqlite3.IntegrityError, psycopg.errors.RaiseException), match=AUDIT_APPEND_ONLY):
            con.execute("DELETE FROM audit")
    finally:
        con.close()
    open_workspace(target)  # nothing left to do
    assert ws.revision == 3 and len(ws.read("audit")) == 3
    ws.write("staff", pd.DataFrame({"staff_id": ["S9"]}), mode="append", actor="t")
    assert verify(ws).ok and verify(ws).rows == 4


def test_data_page_shows_the_postgis_url_without_its_password(pg_target, monkeypatch):
    """Issue #12 item 7: 数据管理 names the workspace, never the password in its connection string."""
    import urllib.parse

    from streamlit.testing.v1 import AppTest

    from grids.auth import Account
    from ui.auth import session_for

    from .conftest import COUNTY, ROOT

    PgWorkspace.create(pg_target, **COUNTY)
    parts = urllib.parse.urlsplit(pg_target)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    with_password = urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:s3cret-Pw0rd@{host}"))
    monkeypatch.setenv("GRIDS_WORKSPACE", with_password)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["auth.session"] = session_for(Account("t-admin", "admin"))
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    shown = " ".join(str(e.value) for kind in ("caption", "markdown", "text", "info", "error", "warning")
                     for e in at.get(kind))
    assert "s3cret-Pw0rd" not in shown
    literal = shown.replace("\\", "").replace("\u2060", "")  # as the page shows it (Markdown escapes removed)
    assert f"{user}:***@" in literal
