"""The build → assign → check → publish pipeline: one publish gate, errors block, warnings do not."""

import geopandas as gpd
import pandas as pd
import shapely

from grids.check import errors, warnings
from grids.pipeline import prepare_plan
from grids.plans import plan_info

from .test_build import X0, Y0, admin, households
from .test_check import STAFF


def _workspace(ws, *, stray_household=False):
    branches = gpd.GeoDataFrame({"branch_id": ["B01", "B02"], "name": ["甲信用社", "乙信用社"]},
                                geometry=[shapely.Point(X0 + 1000, Y0 + 1000), shapely.Point(X0 + 3000, Y0 + 1000)],
                                crs=4549)
    hh = households({1: 150, 2: 150, 3: 150, 4: 150, 5: 150, 6: 150})
    if stray_household:  # a household 5 km outside the county: in no grid
        hh = gpd.GeoDataFrame(pd.concat([hh, gpd.GeoDataFrame({"village_code": [None]}, crs=4549, geometry=[
            shapely.Point(X0 + 9000, Y0 + 1000)])], ignore_index=True), crs=4549)
    with ws.transaction(actor="t", action="导入") as tx:
        tx.replace("admin_units", admin(groups_in_v1=False).to_crs(4490))
        tx.replace("households", hh.assign(hh_id=[f"H{i}" for i in range(len(hh))]).to_crs(4490))
        tx.replace("branches", branches.to_crs(4490))
        tx.replace("staff", STAFF)
    return ws


def test_prepare_plan_publishes_a_plan_with_warnings_only(empty_ws):
    ws = _workspace(empty_ws)
    report = prepare_plan(ws, publish=True, actor="t")  # villages of 150 households, no groups: over the bound
    assert errors(report.problems).empty
    assert len(warnings(report.problems)) > 0 and set(warnings(report.problems)["kind"]) == {"over_max"}
    assert report.published and plan_info(ws, report.plan_id)["status"] == "published"


def test_prepare_plan_keeps_a_plan_with_errors_a_draft(empty_ws):
    ws = _workspace(empty_ws, stray_household=True)
    report = prepare_plan(ws, publish=True, actor="t")
    assert errors(report.problems)["kind"].tolist() == ["household_orphan"]
    assert not report.published and plan_info(ws, report.plan_id)["status"] == "draft"
