"""Edits made outside the library on a PostGIS workspace (QGIS, ogr2ogr, psql all reach it as plain SQL): the
statement-level triggers count them, the next look at the revision turns them into one chained “外部编辑” audit
row; the library's own writes (``SET LOCAL grids.library``) are not counted."""

import geopandas as gpd
import pandas as pd
import psycopg
import shapely

from grids.audit import verify
from grids.workspace import SCHEMA_VERSION
from grids.workspace.base import EXTERNAL_EDIT_ACTION
from grids.workspace.postgis import PgWorkspace

BRANCHES = gpd.GeoDataFrame({"branch_id": ["B01", "B02"], "name": ["林东营业部", "隆昌信用社"]},
                            geometry=[shapely.Point(119.39, 43.98), shapely.Point(119.60, 44.10)], crs=4490)


def _external(ws) -> pd.DataFrame:
    log = ws.read("audit")
    return log[log["action"] == EXTERNAL_EDIT_ACTION]


def test_external_sql_edit_is_one_chained_audit_row_and_library_writes_are_not(pg_ws, pg_url, pg_target):
    pg_ws.write("branches", BRANCHES, actor="t")
    pg_ws.write("staff", pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["赵六", "钱七"]}), actor="t")
    with pg_ws.transaction(actor="t", action="改名") as tx:
        tx.execute("UPDATE staff SET name = '孙八' WHERE staff_id = 'S1'")
    rev = pg_ws.revision
    assert rev == 3 and _external(pg_ws).empty and pg_ws.meta["schema"] == str(SCHEMA_VERSION)

    s = f'"{pg_ws.schema}"'
    with psycopg.connect(pg_url) as con:  # another program: psql, QGIS, ogr2ogr
        con.execute(f"UPDATE {s}.staff SET name = '周九'")  # one statement, two rows
        con.execute(f"DELETE FROM {s}.branches WHERE branch_id = 'B02'")
        con.execute(f"INSERT INTO {s}.branches (branch_id, name, geom) "
                    "VALUES ('B03', '新开网点', ST_SetSRID(ST_MakePoint(119.5, 44.0), 4490))")
    assert pg_ws.revision == rev + 1
    ext = _external(pg_ws)
    assert len(ext) == 1 and ext["revision"].iloc[0] == rev + 1 and ext["actor"].iloc[0] == "外部程序"
    detail = ext["detail"].iloc[0]
    assert '"layer": "staff"' in detail and '"update": 2' in detail
    assert '"layer": "branches"' in detail and '"delete": 1' in detail and '"insert": 1' in detail
    assert verify(pg_ws).ok
    assert set(pg_ws.read("staff")["name"]) == {"周九"} and "B03" in set(pg_ws.read("branches")["branch_id"])

    again = PgWorkspace(pg_target)  # a second process opening it
    assert again.revision == rev + 1 and len(_external(again)) == 1  # recorded once
    pg_ws.write("staff", pd.DataFrame({"staff_id": ["S3"], "name": ["吴十"]}), mode="append", actor="t")
    assert len(_external(pg_ws)) == 1 and verify(pg_ws).ok
