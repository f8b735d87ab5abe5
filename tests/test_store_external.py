"""The QGIS round trip on the GeoPackage workspace: a GeoPackage 1.2 with an rtree on every spatial layer that
GDAL's validator passes, and edits made outside the library (GDAL as QGIS uses it, ogr2ogr, sqlite3) recorded as
one chained “外部编辑” audit row that moves the revision. The PostGIS side is in tests/test_store_pg_external.py."""

import contextlib
import os
import shutil
import sqlite3
import subprocess

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.audit import verify
from grids.export import write_gpkg
from grids.workspace import SCHEMA_VERSION, GpkgWorkspace, Workspace
from grids.workspace.base import EDITS_TABLE, EXTERNAL_EDIT_ACTION, encode_geometries
from grids.workspace.gpkg import register_functions

from .conftest import three_households, validate_gpkg

BRANCHES = gpd.GeoDataFrame({"branch_id": ["B01", "B02"], "name": ["林东营业部", "隆昌信用社"]},
                            geometry=[shapely.Point(119.39, 43.98), shapely.Point(119.60, 44.10)], crs=4490)


def _filled(ws: Workspace) -> Workspace:
    ws.write("households", three_households(), actor="t")
    ws.write("branches", BRANCHES, actor="t")
    ws.write("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"], "branch_id": ["B01"]}), actor="t")
    return ws


def _spatial_layers(path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns ORDER BY 1").fetchall()


def _rtree_matches(path, table: str, column: str) -> bool:
    """The layer has an rtree, declared in gpkg_extensions, holding exactly its non-empty geometries' boxes."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        declared = con.execute("SELECT scope FROM gpkg_extensions WHERE table_name=? AND column_name=? AND "
                               "extension_name='gpkg_rtree_index'", (table, column)).fetchone()
        boxes = dict((r[0], r[1:]) for r in con.execute(f'SELECT id, minx, maxx, miny, maxy FROM "rtree_{table}_{column}"'))
        blobs = con.execute(f'SELECT fid, "{column}" FROM "{table}" WHERE "{column}" NOT NULL').fetchall()
    from grids.workspace.base import decode_geometries

    geoms = decode_geometries([b for _, b in blobs]) if blobs else []
    want = {fid: (g.bounds[0], g.bounds[2], g.bounds[1], g.bounds[3])
            for (fid, _), g in zip(blobs, geoms, strict=True) if g is not None and not g.is_empty}
    close = set(want) == set(boxes) and all(
        all(abs(a - b) < 1e-4 for a, b in zip(want[f], boxes[f], strict=True)) for f in want)  # rtree: float32
    return declared == ("write-only",) and close


def _external_rows(ws: Workspace) -> pd.DataFrame:
    log = ws.read("audit")
    return log[log["action"] == EXTERNAL_EDIT_ACTION]


# -- GeoPackage 1.2 with spatial indexes --------------------------------------------------------------------------


def test_every_spatial_layer_has_an_rtree_and_gdal_validates_without_filter(empty_ws):
    _filled(empty_ws)
    layers = _spatial_layers(empty_ws.path)
    assert {"households", "branches", "admin_units", "grids", "streets", "seats"} <= {t for t, _ in layers}
    for table, column in layers:
        assert _rtree_matches(empty_ws.path, table, column), table
    assert validate_gpkg(empty_ws.path) == []


def test_bulk_insert_and_replace_keep_the_index_exact(empty_ws):
    many = gpd.GeoDataFrame({"hh_id": [f"H{i}" for i in range(2500)]},
                            geometry=[shapely.Point(119 + i / 5000, 43.5) for i in range(2500)], crs=4490)
    empty_ws.write("households", many, actor="t")  # the bulk path: trigger dropped, index built at once
    more = many.iloc[:10].assign(hh_id=[f"X{i}" for i in range(10)])
    empty_ws.write("households", more, mode="append", actor="t")  # row-by-row trigger path
    assert _rtree_matches(empty_ws.path, "households", "geom")
    empty_ws.write("households", many.iloc[100:2300], actor="t")
    assert _rtree_matches(empty_ws.path, "households", "geom")
    assert _external_rows(empty_ws).empty and empty_ws.revision == 3  # triggers off and back: nothing counted
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert {f"rtree_households_geom_{s}" for s in ("insert", "update1", "update2", "update3", "update4",
                                                   "delete")} <= names


def test_st_functions_read_envelopes_points_and_empties():
    con = register_functions(sqlite3.connect(":memory:"))
    poly, point, empty = encode_geometries([shapely.box(1, 2, 3, 4), shapely.Point(5, 6), None])
    assert con.execute("SELECT ST_MinX(?), ST_MaxX(?), ST_MinY(?), ST_MaxY(?)", (poly,) * 4).fetchone() == (
        1.0, 3.0, 2.0, 4.0)
    assert con.execute("SELECT ST_MinX(?), ST_MaxY(?), ST_IsEmpty(?)", (point,) * 3).fetchone() == (5.0, 6.0, 0)
    assert con.execute("SELECT ST_IsEmpty(?), ST_MinX(?)", (empty, empty)).fetchone() == (None, None)
    empty_point = b"GP\x00\x11" + (4490).to_bytes(4, "little") + shapely.to_wkb(shapely.Point(), byte_order=1)
    assert con.execute("SELECT ST_IsEmpty(?)", (empty_point,)).fetchone() == (1,)


def test_demo_upgrades_to_indexed_and_valid(demo_copy):
    ws = GpkgWorkspace(demo_copy)
    assert ws.meta["schema"] == str(SCHEMA_VERSION)
    for table, column in _spatial_layers(demo_copy):
        assert _rtree_matches(demo_copy, table, column), table
    assert validate_gpkg(demo_copy) == [] and verify(ws).ok
    assert _external_rows(ws).empty


def test_gpkg_export_is_1_2_with_rtrees_and_validates(tmp_path):
    out = write_gpkg(tmp_path / "out.gpkg", {
        "grids": gpd.GeoDataFrame({"grid_code": ["G1"]}, geometry=[shapely.box(119, 43, 119.1, 43.1)], crs=4490),
        "branches": BRANCHES, "staff": pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]})})
    with contextlib.closing(sqlite3.connect(out)) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10200
    for table, column in _spatial_layers(out):
        assert _rtree_matches(out, table, column), table
    assert {t for t, _ in _spatial_layers(out)} == {"grids", "branches"}
    assert validate_gpkg(out) == []


# -- edits made outside the library ---------------------------------------------------------------------------


def test_library_writes_record_no_external_edit(empty_ws):
    _filled(empty_ws)
    with empty_ws.transaction(actor="t", action="改名") as tx:
        tx.execute("UPDATE staff SET name = '钱七' WHERE staff_id = 'S1'")
        tx.delete("branches", where="branch_id = ?", params=["B02"])
    assert GpkgWorkspace(empty_ws.path).revision == 4
    assert _external_rows(empty_ws).empty
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con:
        assert con.execute(f"SELECT count(*) FROM {EDITS_TABLE}").fetchone()[0] == 0
        assert con.execute("SELECT library FROM ws_edit_guard").fetchall() == [(0,)]


def test_gdal_append_through_pyogrio_is_recorded_once(empty_ws):
    import pyogrio

    _filled(empty_ws)
    rev = empty_ws.revision
    new = gpd.GeoDataFrame({"branch_id": ["B03"], "name": ["新开网点"]}, geometry=[shapely.Point(119.5, 44.0)],
                           crs=4490)
    pyogrio.write_dataframe(new, empty_ws.path, layer="branches", append=True)
    ws = GpkgWorkspace(empty_ws.path)
    assert ws.revision == rev + 1 and ws.notice is None
    ext = _external_rows(ws)
    assert len(ext) == 1 and ext["layer"].iloc[0] == "branches" and '"insert": 1' in ext["detail"].iloc[0]
    assert ext["revision"].iloc[0] == rev + 1
    assert verify(ws).ok
    assert "B03" in set(ws.read("branches")["branch_id"])
    assert _rtree_matches(ws.path, "branches", "geom")  # GDAL's own ST_* functions fed our index
    assert ws.revision == rev + 1 and len(_external_rows(ws)) == 1  # recorded once, not at every read


_QGIS_EDIT = """
import sys
from osgeo import ogr
ds = ogr.Open(sys.argv[1], 1)
lyr = ds.GetLayerByName("branches")
lyr.SetAttributeFilter("branch_id = 'B01'")
f = lyr.GetNextFeature()
f.SetField("name", "林东支行")
f.SetGeometry(ogr.CreateGeometryFromWkt("POINT (119.45 43.95)"))
lyr.SetFeature(f)
ds = None
"""
"""What QGIS does when a planner moves a point and renames it: OGR's feature API (SetFeature) on the file."""


def test_qgis_style_edit_through_ogr_and_ogr2ogr(empty_ws, tmp_path):
    from .conftest import gdal_validator

    if not shutil.which("ogr2ogr") or gdal_validator() is None:
        pytest.skip("GDAL missing: scripts/setup.sh --test installs gdal-bin and python3-gdal")
    _filled(empty_ws)
    rev = empty_ws.revision
    subprocess.run(["/usr/bin/python3", "-c", _QGIS_EDIT, str(empty_ws.path)], check=True, capture_output=True)
    extra = tmp_path / "extra.geojson"
    gpd.GeoDataFrame({"hh_id": ["H9"]}, geometry=[shapely.Point(119.41, 43.97)], crs=4490).to_file(extra)
    subprocess.run(["ogr2ogr", "-update", "-append", "-nln", "households", str(empty_ws.path), str(extra)],
                   check=True, capture_output=True)
    ws = GpkgWorkspace(empty_ws.path)
    assert ws.revision == rev + 1
    ext = _external_rows(ws)
    assert len(ext) == 1 and set(ext["layer"].iloc[0].split(",")) == {"branches", "households"}
    assert verify(ws).ok
    b01 = ws.read("branches", where="branch_id = 'B01'")
    assert b01["name"].iloc[0] == "林东支行" and b01.geometry.iloc[0].equals(shapely.Point(119.45, 43.95))
    assert "H9" in set(ws.read("households")["hh_id"])
    for table in ("branches", "households"):
        assert _rtree_matches(ws.path, table, "geom"), table
    assert validate_gpkg(ws.path) == []


def test_sqlite3_edit_behind_the_back_moves_the_revision_of_an_open_workspace(empty_ws):
    _filled(empty_ws)
    rev = empty_ws.revision  # the app holds this object; its caches key on the revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
        con.execute("UPDATE staff SET name = '孙八' WHERE staff_id = 'S1'")
        con.execute("DELETE FROM branches WHERE branch_id = 'B02'")  # a spatial delete needs no ST_* function
        con.execute("INSERT INTO staff (staff_id, name) VALUES ('S2', '周九')")
    assert empty_ws.revision == rev + 1
    ext = _external_rows(empty_ws)
    assert len(ext) == 1 and ext["actor"].iloc[0] == "外部程序"
    detail = ext["detail"].iloc[0]
    assert '"layer": "staff"' in detail and '"update": 1' in detail and '"insert": 1' in detail
    assert '"layer": "branches"' in detail and '"delete": 1' in detail
    assert verify(empty_ws).ok
    assert set(empty_ws.read("staff")["name"]) == {"孙八", "周九"}
    assert _rtree_matches(empty_ws.path, "branches", "geom")
    empty_ws.write("staff", pd.DataFrame({"staff_id": ["S3"], "name": ["吴十"]}), mode="append", actor="t")
    assert len(_external_rows(empty_ws)) == 1 and verify(empty_ws).ok


def test_a_library_write_after_an_external_edit_records_both(empty_ws):
    _filled(empty_ws)
    rev = empty_ws.revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
        con.execute("UPDATE staff SET name = '孙八'")
    # the writer read revision `rev` before the external edit: its write is refused as stale
    from grids.errors import StaleRevisionError

    with pytest.raises(StaleRevisionError), empty_ws.transaction(actor="t", action="x", expected_revision=rev) as tx:
        tx.execute("UPDATE staff SET name = '钱七'")
    empty_ws.write("staff", pd.DataFrame({"staff_id": ["S4"], "name": ["郑十一"]}), mode="append", actor="t")
    log = empty_ws.read("audit")
    assert log["action"].tolist()[-2:] == [EXTERNAL_EDIT_ACTION, "写入 staff"]
    assert log["revision"].tolist()[-2:] == [rev + 1, rev + 2] and verify(empty_ws).ok


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_workspace_says_so_instead_of_failing(empty_ws):
    _filled(empty_ws)
    rev = empty_ws.revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
        con.execute("UPDATE staff SET name = '孙八'")
    _read_only(empty_ws.path)
    try:
        ws = GpkgWorkspace(empty_ws.path)
        assert ws.revision == rev and "只读" in ws.notice and "staff" in ws.notice and "修正方法" in ws.notice
        assert ws.read("staff")["name"].iloc[0] == "孙八"
    finally:
        _writable(empty_ws.path)
    assert GpkgWorkspace(empty_ws.path).revision == rev + 1


def test_read_only_mount_says_so_instead_of_failing(empty_ws, monkeypatch):
    """The same as above where the test runs as root: SQLite opened read-only (``mode=ro``), as on a read-only
    mount."""
    _filled(empty_ws)
    rev = empty_ws.revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
        con.execute("UPDATE staff SET name = '孙八'")
    uri = f"file:{empty_ws.path}?mode=ro"
    monkeypatch.setattr(GpkgWorkspace, "_connect", lambda self: register_functions(
        sqlite3.connect(uri, uri=True, isolation_level=None)))
    ws = GpkgWorkspace(empty_ws.path)
    assert ws.revision == rev and ws.notice and "只读" in ws.notice and "staff（1 行）" in ws.notice
    monkeypatch.undo()
    assert GpkgWorkspace(empty_ws.path).revision == rev + 1


def _read_only(path) -> None:
    path.chmod(0o444)
    path.parent.chmod(0o555)


def _writable(path) -> None:
    path.parent.chmod(0o755)
    path.chmod(0o644)


# -- emptying a layer behind the library's back -------------------------------------------------------------------


def test_sqlite3_delete_without_where_is_recorded_row_by_row(empty_ws):
    """``DELETE FROM layer`` with no WHERE: SQLite's truncate optimisation is off when the table has triggers, so
    the edit triggers count every row it removes (spatial layer, rtree kept exact)."""
    _filled(empty_ws)
    rev = empty_ws.revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
        con.execute("DELETE FROM branches")
        con.execute("DELETE FROM staff")
    assert empty_ws.revision == rev + 1
    ext = _external_rows(empty_ws)
    assert len(ext) == 1 and verify(empty_ws).ok
    detail = ext["detail"].iloc[0]
    assert '"layer": "branches"' in detail and '"delete": 2' in detail
    assert '"layer": "staff"' in detail and '"delete": 1' in detail
    assert empty_ws.count("branches") == 0 and _rtree_matches(empty_ws.path, "branches", "geom")


def _pg_external(ws) -> pd.DataFrame:
    log = ws.read("audit")
    return log[log["action"] == EXTERNAL_EDIT_ACTION]


def test_postgis_truncate_behind_the_back_is_one_chained_audit_row(pg_ws, pg_url, pg_target):
    import psycopg

    from grids.workspace.postgis import PgWorkspace

    pg_ws.write("branches", BRANCHES, actor="t")
    pg_ws.write("staff", pd.DataFrame({"staff_id": ["S1", "S2", "S3"], "name": ["赵六", "钱七", "孙八"]}), actor="t")
    rev = pg_ws.revision
    s = f'"{pg_ws.schema}"'
    with psycopg.connect(pg_url) as con:  # psql / another program: TRUNCATE fires no row or DELETE trigger
        con.execute(f"TRUNCATE {s}.staff, {s}.branches")
        con.execute(f"TRUNCATE {s}.households")  # already empty: nothing changed, nothing recorded
    assert pg_ws.revision == rev + 1
    ext = _pg_external(pg_ws)
    assert len(ext) == 1 and ext["revision"].iloc[0] == rev + 1 and ext["actor"].iloc[0] == "外部程序"
    detail = ext["detail"].iloc[0]
    assert '"layer": "staff"' in detail and '"truncate": 3' in detail
    assert '"layer": "branches"' in detail and '"truncate": 2' in detail and "households" not in detail
    assert verify(pg_ws).ok and pg_ws.count("staff") == 0
    assert PgWorkspace(pg_target).revision == rev + 1  # recorded once
    pg_ws.write("staff", pd.DataFrame({"staff_id": ["S9"], "name": ["吴十"]}), actor="t")  # the library's own write
    assert len(_pg_external(pg_ws)) == 1 and verify(pg_ws).ok


def test_postgis_workspace_without_the_truncate_triggers_gets_them_at_open(pg_ws, pg_url, pg_target):
    import psycopg

    from grids.workspace.postgis import PgWorkspace

    pg_ws.write("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]}), actor="t")
    s = f'"{pg_ws.schema}"'
    with psycopg.connect(pg_url) as con:  # a workspace made before the TRUNCATE triggers existed
        con.execute(f"DROP FUNCTION {s}.ws_edit_truncate() CASCADE")
    rev = PgWorkspace(pg_target).revision  # opening installs them (no schema bump, no audit row)
    with psycopg.connect(pg_url) as con:
        n = con.execute("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace ns ON ns.oid = c.relnamespace "
                        "WHERE t.tgname = 'ws_edit_truncate' AND ns.nspname = %s AND c.relname = 'staff'",
                        (pg_ws.schema,)).fetchone()[0]
        con.execute(f"TRUNCATE {s}.staff")
    assert n == 1
    ws = PgWorkspace(pg_target)
    assert ws.revision == rev + 1 and '"truncate": 1' in _pg_external(ws)["detail"].iloc[0]


# -- DDL behind the library's back (GeoPackage: the schema cookie) ------------------------------------------------


def test_outside_ddl_is_recorded_per_table_and_once(empty_ws):
    _filled(empty_ws)
    rev = empty_ws.revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:  # a planner's sqlite3 shell / DB manager
        con.execute("ALTER TABLE staff ADD COLUMN note TEXT")
        con.execute("CREATE INDEX idx_households_phone ON households (phone)")
    assert empty_ws.revision == rev + 1
    ext = _external_rows(empty_ws)
    assert len(ext) == 1 and ext["actor"].iloc[0] == "外部程序" and verify(empty_ws).ok
    detail = ext["detail"].iloc[0]
    assert '"layer": "staff", "op": "external", "schema": 1' in detail
    assert '"layer": "households", "op": "external", "schema": 1' in detail
    assert GpkgWorkspace(empty_ws.path).revision == rev + 1 and len(_external_rows(empty_ws)) == 1  # recorded once
    empty_ws.write("staff", pd.DataFrame({"staff_id": ["S5"], "name": ["王五"]}), mode="append", actor="t")
    assert len(_external_rows(empty_ws)) == 1 and empty_ws.revision == rev + 2


def test_outside_ddl_and_row_edits_go_into_the_same_row_before_a_library_write(empty_ws):
    _filled(empty_ws)
    rev = empty_ws.revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
        con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        con.execute("UPDATE staff SET name = '孙八'")
    # no read in between: the library's next write records the outside change first
    empty_ws.write("staff", pd.DataFrame({"staff_id": ["S6"], "name": ["赵七"]}), mode="append", actor="t")
    log = empty_ws.read("audit")
    assert log["action"].tolist()[-2:] == [EXTERNAL_EDIT_ACTION, "写入 staff"]
    assert log["revision"].tolist()[-2:] == [rev + 1, rev + 2] and verify(empty_ws).ok
    detail = log["detail"].iloc[-2]
    assert '"layer": "notes", "op": "external", "schema": 1' in detail and '"update": 1' in detail


def test_the_library_s_own_ddl_is_not_an_outside_edit(empty_ws):
    """Bulk writes drop and re-create triggers, replaces rebuild the rtree, new layers are created: the library
    leaves its own schema cookie behind every write, so none of it counts."""
    _filled(empty_ws)
    many = pd.DataFrame({"staff_id": [f"S{i:05d}" for i in range(2500)], "name": "某"})
    empty_ws.write("staff", many, actor="t")  # ≥ 2000 rows: triggers off and on again
    empty_ws.write("branches", BRANCHES.iloc[:1], actor="t")  # replace: the rtree made anew
    ws = GpkgWorkspace(empty_ws.path)
    assert ws.revision == 5 and _external_rows(ws).empty
    with contextlib.closing(sqlite3.connect(ws.path)) as con:
        assert con.execute(f"SELECT count(*) FROM {EDITS_TABLE}").fetchone()[0] == 0


def test_outside_edits_after_an_absorbed_one_are_recorded_again(empty_ws):
    _filled(empty_ws)
    rev = empty_ws.revision
    for k, name in enumerate(("孙八", "周九"), start=1):
        with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
            con.execute("UPDATE staff SET name = ?", (name,))
        assert empty_ws.revision == rev + k  # the absorbing transaction leaves the guard off
    assert len(_external_rows(empty_ws)) == 2 and verify(empty_ws).ok


def test_dropping_the_audit_guard_is_not_absorbed_and_the_guard_comes_back(empty_ws):
    """Tampering with the audit is for ``audit verify`` to find: an absorbed “外部编辑” row appended after rows cut
    off the trail's end would hide the cut. The guard's triggers are restored at the next look."""
    _filled(empty_ws)
    rev = empty_ws.revision
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, con:
        con.execute("DROP TRIGGER audit_no_delete")
        con.execute("DELETE FROM audit WHERE fid = (SELECT max(fid) FROM audit)")
    assert empty_ws.revision == rev and _external_rows(empty_ws).empty
    assert not verify(empty_ws).ok
    with contextlib.closing(sqlite3.connect(empty_ws.path)) as con, pytest.raises(sqlite3.DatabaseError):
        con.execute("DELETE FROM audit")


# -- attack findings (issue 14 attacker pass) -------------------------------------------------------------


def _sql(path, *statements):
    with contextlib.closing(sqlite3.connect(path)) as con:
        for stmt in statements:
            con.execute(stmt)
        con.commit()


def test_a_dropped_edit_trigger_comes_back_so_later_edits_are_recorded(empty_ws):
    ws = _filled(empty_ws)
    _sql(ws.path, 'DROP TRIGGER "ws_edit_staff_update"', "UPDATE staff SET name = '改一' WHERE staff_id = 'S1'")
    first = ws.revision
    assert len(_external_rows(ws)) == 1  # the DDL (and the edit it hid) are one 外部编辑 row
    _sql(ws.path, "UPDATE staff SET name = '改二' WHERE staff_id = 'S1'")  # the trigger is back
    assert GpkgWorkspace(ws.path).revision == first + 1 and len(_external_rows(ws)) == 2
    # a layer rebuilt outside (as an overwrite through GDAL does) is recorded, and so is what follows
    _sql(ws.path, "CREATE TABLE staff2 AS SELECT * FROM staff", "DROP TABLE staff",
         "ALTER TABLE staff2 RENAME TO staff")
    rebuilt = GpkgWorkspace(ws.path).revision
    _sql(ws.path, "DELETE FROM staff")
    assert GpkgWorkspace(ws.path).revision == rebuilt + 1
    assert "staff" in str(_external_rows(ws).iloc[-1]["detail"])


def test_switching_the_recording_off_is_itself_recorded_and_undone(empty_ws):
    ws = _filled(empty_ws)
    rev = ws.revision
    _sql(ws.path, "UPDATE ws_edit_guard SET library = 1")  # a script that stopped halfway, or on purpose
    _sql(ws.path, "DELETE FROM branches WHERE branch_id = 'B02'")  # not counted while the guard is set
    assert GpkgWorkspace(ws.path).revision == rev + 1
    assert "guard" in str(_external_rows(ws).iloc[-1]["detail"])
    _sql(ws.path, "UPDATE staff SET name = '再改' WHERE staff_id = 'S1'")  # counted again
    assert GpkgWorkspace(ws.path).revision == rev + 2


def test_the_side_table_refuses_to_lose_an_edit_outside_the_library(empty_ws):
    ws = _filled(empty_ws)
    _sql(ws.path, "UPDATE staff SET name = '改' WHERE staff_id = 'S1'")
    for hide in (f"DELETE FROM {EDITS_TABLE}", f"UPDATE {EDITS_TABLE} SET n = 0"):
        with pytest.raises(sqlite3.DatabaseError, match="外部编辑记录"), \
                contextlib.closing(sqlite3.connect(ws.path)) as con:
            con.execute(hide)
    rev = ws.revision  # the edit is still there to record
    assert len(_external_rows(ws)) == 1 and rev > 0


def test_a_read_only_workspace_with_outside_edits_says_so_in_status_and_the_app(empty_ws, monkeypatch, capsys):
    """Attack finding: the notice was computed but nothing showed it."""
    from grids.__main__ import main
    from ui import data

    _filled(empty_ws)
    _sql(empty_ws.path, "UPDATE staff SET name = '孙八'")
    uri = f"file:{empty_ws.path}?mode=ro"
    monkeypatch.setattr(GpkgWorkspace, "_connect", lambda self: register_functions(
        sqlite3.connect(uri, uri=True, isolation_level=None)))
    assert main(["status", str(empty_ws.path)]) == 0
    assert "注意：" in capsys.readouterr().err
    data.revision(str(empty_ws.path))  # what the sidebar shows on every page
    assert "只读" in (data.workspace_notice(str(empty_ws.path)) or "")
    monkeypatch.undo()
    data.revision(str(empty_ws.path))
    assert data.workspace_notice(str(empty_ws.path)) is None


def test_a_revision_set_back_outside_still_moves_forward(empty_ws):
    ws = _filled(empty_ws)
    rev = ws.revision
    _sql(ws.path, f"UPDATE ws_meta SET value = '{rev - 2}' WHERE key = 'revision'",
         "UPDATE staff SET name = '改' WHERE staff_id = 'S1'")
    assert GpkgWorkspace(ws.path).revision == rev + 1  # not rev - 1: caches keyed on rev - 1 would be stale
    assert verify(ws).ok
