"""The app shows the new data after an edit made outside the library (issue 14): a page is open, a layer is edited
behind the library's back (sqlite3 with the GeoPackage functions as SpatiaLite/QGIS's DB manager has them, GDAL as
QGIS edits, pyogrio, psql on PostGIS), the page reruns: the revision moved, the caches keyed on it reloaded, the
page shows the new value and the audit its “外部编辑” row."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess

import geopandas as gpd
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from grids.model import LAYERS
from grids.workspace import open_workspace
from grids.workspace.base import EXTERNAL_EDIT_ACTION
from grids.workspace.gpkg import register_functions
from ui.auth import session_for

from .test_app import ACCOUNTS, APP, metric_values, tiny_workspace


@pytest.fixture
def ws_path(tmp_path, monkeypatch):
    path = tiny_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    return path


def _open(role: str, *, page: str | None = None, selected: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(ACCOUNTS[role])
    if selected is not None:
        at.session_state["overview.selected"] = selected
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _branch_options(at: AppTest) -> list[str]:
    return next(s.options for s in at.selectbox if s.label == "网点")


def test_a_grid_renamed_with_sqlite3_shows_under_its_new_name_at_the_next_rerun(ws_path):
    at = _open("leadership", selected="G2")
    assert [h.value for h in at.subheader] == ["乙网格"] and "工作区第 2 版" in [c.value for c in at.caption]
    # a spatial table: its rtree triggers call ST_* functions, which SpatiaLite/GDAL/QGIS register (so do we)
    with contextlib.closing(register_functions(sqlite3.connect(ws_path))) as con, con:
        con.execute("UPDATE grids SET name = '乙网格（东片）' WHERE grid_id = 'G2'")
    at.run()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["乙网格（东片）"] and metric_values(at)["户数"] == "3"
    ws = open_workspace(ws_path)  # (AppTest reruns the page script only: the sidebar's revision is not redrawn)
    assert ws.revision == 3 and ws.read("audit")["action"].iloc[-1] == EXTERNAL_EDIT_ACTION


def test_a_branch_renamed_through_gdal_as_qgis_does_shows_in_the_staffing_page(ws_path):
    if not shutil.which("ogr2ogr"):
        pytest.skip("GDAL missing: scripts/setup.sh --test installs gdal-bin and python3-gdal")
    at = _open("admin", page="pages/staffing.py")
    assert _branch_options(at) == ["B1 林东信用社", "B2 隆昌信用社"]
    script = ("import sys\nfrom osgeo import ogr\nds = ogr.Open(sys.argv[1], 1)\n"
              "lyr = ds.GetLayerByName('branches')\nlyr.SetAttributeFilter(\"branch_id = 'B1'\")\n"
              "f = lyr.GetNextFeature()\nf.SetField('name', '林东支行')\nlyr.SetFeature(f)\nds = None\n")
    subprocess.run(["/usr/bin/python3", "-c", script, str(ws_path)], check=True, capture_output=True)
    at.run()
    assert not at.exception
    assert _branch_options(at) == ["B1 林东支行", "B2 隆昌信用社"]


def test_a_branch_appended_with_pyogrio_shows_in_the_data_page_with_its_audit_row(ws_path):
    import pyogrio

    at = _open("admin", page="pages/data.py")
    counts = at.dataframe[0].value.set_index("图层")["行数"]
    assert counts["branches"] == 2
    new = gpd.GeoDataFrame({"branch_id": ["B3"], "name": ["新开网点"]}, geometry=[shapely.Point(119.5, 43.96)],
                           crs=4490)
    pyogrio.write_dataframe(new, ws_path, layer="branches", append=True)
    at.run()
    assert not at.exception
    assert at.dataframe[0].value.set_index("图层")["行数"]["branches"] == 3
    audit = next(d.value for d in at.dataframe if "操作" in d.value.columns)
    row = audit[audit["操作"] == EXTERNAL_EDIT_ACTION]
    assert len(row) == 1 and LAYERS["branches"].description in row["图层"].iloc[0]  # the layer by its Chinese name


def test_postgis_workspace_edited_with_sql_shows_the_new_name(ws_path, pg_target, monkeypatch):
    import psycopg

    from grids.commands.migrate import migrate

    migrate(ws_path, pg_target)
    monkeypatch.setenv("GRIDS_WORKSPACE", pg_target)
    at = _open("admin", page="pages/staffing.py")
    assert _branch_options(at) == ["B1 林东信用社", "B2 隆昌信用社"]
    ws = open_workspace(pg_target)
    rev = ws.revision
    with psycopg.connect(pg_target.split("?")[0]) as con:  # psql, QGIS or ogr2ogr on the database
        con.execute(f'UPDATE "{ws.schema}".branches SET name = %s WHERE branch_id = %s', ("林东支行", "B1"))
    at.run()
    assert not at.exception
    assert _branch_options(at) == ["B1 林东支行", "B2 隆昌信用社"]
    assert ws.revision == rev + 1
    log = ws.read("audit")
    assert log["action"].iloc[-1] == EXTERNAL_EDIT_ACTION
