"""One severity model: enclaves and islands judged by landmass, household-bound warnings, `check` exit codes,
the publish gate of the library and of the pipeline."""

import json
import re

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.__main__ import main
from grids.check import SEVERITY, check_plan, errors, warnings
from grids.errors import ValidationError
from grids.plans import plan_info, publish_plan, read_grids, resolve_plan, save_draft

from .test_build import T2, X0, Y0, V, admin, box, households
from .test_check import STAFF, clean_plan

I1, I2 = box(4500, 0, 4700, 200), box(4500, 600, 4700, 800)  # two islands east of 六村, 400 m apart by water
V7 = f"{T2}207"


def island_county():
    """The test county plus a village 七村 of two islands (town 乙镇), and the plan with 七村's grid on both."""
    adm = admin(groups_in_v1=False)
    islands = shapely.union_all([I1, I2])
    adm.loc[adm["code"] == T2, "geometry"] = shapely.union_all([adm.loc[adm["code"] == T2].geometry.iloc[0], islands])
    adm = gpd.GeoDataFrame(pd.concat([adm, gpd.GeoDataFrame(
        {"code": [V7], "name": ["七村"], "level": ["village"], "parent_code": [T2]}, geometry=[islands], crs=4549)],
        ignore_index=True), crs=4549)
    grids, _ = clean_plan()
    g = grids.to_crs(4549)
    row = gpd.GeoDataFrame({"grid_id": [V7 + "001"], "code": [V7 + "001"], "kind": ["rural"], "town_code": [T2],
                            "branch_id": ["B01"], "staff_id": ["S1"]}, geometry=[islands], crs=4549)
    return adm, gpd.GeoDataFrame(pd.concat([g, row], ignore_index=True), crs=4549)


def branches(*where):
    return gpd.GeoDataFrame({"branch_id": [f"B{i + 1:02d}" for i in range(len(where))]},
                            geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in where], crs=4549)


MAINLAND = (500, 500)


def test_every_kind_has_a_severity_and_errors_come_first():
    grids, hh = clean_plan()
    grids.loc[0, "staff_id"] = None  # an error
    problems = check_plan(grids, admin_units=admin(), households=hh, staff=STAFF, max_households=100)
    assert set(problems["severity"]) == {"error", "warning"}
    sev = problems["severity"].tolist()
    assert sev == sorted(sev)  # 'error' < 'warning': all errors before any warning
    assert problems["severity"].tolist() == problems["kind"].map(SEVERITY).tolist()
    assert errors(problems)["kind"].tolist() == ["no_staff"]
    assert len(warnings(problems)) == len(problems) - 1
    assert (problems["fix"].str.len() > 0).all()


def test_enclave_100_m_away_on_the_same_landmass_is_an_error_with_distance_and_area():
    grids, _ = clean_plan()
    g = grids.to_crs(4549)
    stray = box(1100, 100, 1300, 300)  # inside 二村, 100 m east of 一村
    g.loc[1, "geometry"] = g.geometry.iloc[1].difference(stray)
    g.loc[0, "geometry"] = shapely.union_all([g.geometry.iloc[0], stray])
    problems = check_plan(g, admin_units=admin(), staff=STAFF, branches=branches(MAINLAND))
    bad = errors(problems)
    assert bad["kind"].tolist() == ["multipart"]
    assert bad["grid_ids"].iloc[0] == [V[1] + "001"]
    msg = bad["message"].iloc[0]
    distance = float(re.search(r"距网格主体 ([\d,.]+) 米", msg).group(1).replace(",", ""))
    assert abs(distance - 100) <= 1
    assert f"{stray.area:,.0f} 平方米" in msg
    assert "并入" in bad["fix"].iloc[0]
    where = gpd.GeoSeries([bad.geometry.iloc[0]], crs=4490).to_crs(4549).iloc[0]
    assert abs(where.area - stray.area) < 1 and where.intersection(stray).area > 0.99 * stray.area


def test_a_grid_on_two_islands_without_branches_is_not_an_error():
    adm, g = island_county()
    problems = check_plan(g, admin_units=adm, staff=STAFF, branches=branches(MAINLAND))
    assert errors(problems).empty, errors(problems)[["kind", "message"]]


def test_a_grid_spanning_an_island_with_its_own_branch_is_an_error():
    adm, g = island_county()  # 七村's grid (I1 + I2) is served by B01 on the mainland; B02 stands on I2
    problems = check_plan(g, admin_units=adm, staff=STAFF, branches=branches(MAINLAND, (4600, 700)))
    bad = errors(problems)
    assert bad["kind"].tolist() == ["spans_islands"]
    assert bad["grid_ids"].iloc[0] == [V7 + "001"] and "B02" in bad["message"].iloc[0]
    where = gpd.GeoSeries([bad.geometry.iloc[0]], crs=4490).to_crs(4549).iloc[0]
    assert where.intersection(I2).area > 0.99 * I2.area and where.intersection(I1).area < 1  # the island to hand over


def test_a_grid_on_the_mainland_and_an_island_with_a_branch_each_is_an_error_whoever_serves_it():
    adm, g = island_county()
    last = len(g) - 1
    g.loc[last, "geometry"] = I2  # 七村's grid is I2 alone; 六村's grid takes I1 … and, below, I2
    g.loc[5, "geometry"] = shapely.union_all([g.geometry.iloc[5], I1])
    two = branches(MAINLAND, (4600, 700))
    assert errors(check_plan(g, admin_units=adm, staff=STAFF, branches=two)).empty  # I1 has no branch: fine
    g.loc[5, "geometry"] = shapely.union_all([g.geometry.iloc[5], I2])
    g = g.drop(index=last)
    for serving in ("B01", "B02"):
        g.loc[5, ["branch_id", "staff_id"]] = [serving, {"B01": "S1", "B02": "S2"}[serving]]
        bad = errors(check_plan(g, admin_units=adm, staff=STAFF, branches=two))
        assert bad["kind"].tolist() == ["spans_islands"] and bad["grid_ids"].iloc[0] == [V[6] + "001"]


def test_a_branchless_island_served_by_the_branch_of_the_grids_other_island_is_not_an_error():
    adm, g = island_county()
    g.loc[len(g) - 1, ["branch_id", "staff_id"]] = ["B02", "S2"]  # B02 on I2 serves I1 too
    assert errors(check_plan(g, admin_units=adm, staff=STAFF, branches=branches(MAINLAND, (4600, 700)))).empty


def test_a_ferry_makes_two_islands_one_landmass_so_their_pieces_are_an_enclave():
    adm, g = island_county()
    ferry = gpd.GeoDataFrame({"class": ["ferry"]}, geometry=[
        shapely.LineString([(X0 + 4600, Y0 + 200), (X0 + 4600, Y0 + 600)])], crs=4549)
    problems = check_plan(g, admin_units=adm, staff=STAFF, branches=branches(MAINLAND), streets=ferry)
    bad = errors(problems)
    assert bad["kind"].tolist() == ["multipart"]
    assert "距网格主体 400 米" in bad["message"].iloc[0]


def test_oversize_grid_of_several_groups_says_how_to_split_it():
    grids, hh = clean_plan()  # 150 households per village; 一村 has four groups in admin()
    problems = check_plan(grids, admin_units=admin(), households=hh, staff=STAFF, max_households=100)
    over = problems[problems["kind"] == "over_max"].set_index(problems.loc[problems["kind"] == "over_max",
                                                                           "grid_ids"].str[0])
    assert (over["severity"] == "warning").all() and errors(problems).empty
    msg = over.loc[V[1] + "001", "message"]
    assert "可沿组界分为 2 格" in msg
    assert all(f"一村{k}组" in msg for k in range(1, 5))
    assert sum(int(n) for n in re.findall(r"（(\d+) 户）", msg)) == 150
    # 二村 has no groups: it cannot be split along them
    assert "没有组界" in over.loc[V[2] + "001", "message"]


def test_oversize_single_group_says_why_it_cannot_be_split():
    adm = admin()
    group = f"{V[1]}001"
    g = gpd.GeoDataFrame({"grid_id": ["G"], "source_codes": [group], "households": [180], "branch_id": ["B01"],
                          "staff_id": ["S1"]}, geometry=[box(0, 0, 500, 500)], crs=4549)
    over = check_plan(g, admin_units=adm[adm["code"].isin([V[1], group])].assign(level="town"),
                      max_households=100)
    over = over[over["kind"] == "over_max"]
    assert len(over) == 1 and "只含一个组（一村1组）" in over["message"].iloc[0]


def test_undersize_grid_names_a_neighbour_to_merge_with():
    grids, _ = clean_plan()
    hh = households({1: 10, 2: 150, 3: 40, 4: 150, 5: 150, 6: 150})
    problems = check_plan(grids, admin_units=admin(), households=hh, staff=STAFF, min_households=30)
    under = problems[problems["kind"] == "under_min"]
    assert under["grid_ids"].tolist() == [[V[1] + "001"]]
    assert f"{V[3]}001（40 户）" in under["fix"].iloc[0]  # the smallest neighbour of its town


# -- the demo: oversize grids are warnings, `check` exits 0 ---------------------------------------------


def test_demo_check_lists_oversize_grids_as_warnings_and_exits_0(demo_copy, capsys):
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(demo_copy)
    pid = resolve_plan(ws)
    grids = read_grids(ws, pid)
    limit = int(plan_info(ws, pid)["params"].get("max_households", 100))
    assert main(["check", str(demo_copy), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["errors"] == 0
    over = [p for p in report["problems"] if p["kind"] == "over_max"]
    assert 0 < len(over) == int((grids["households"] > limit).sum())
    assert all(p["severity"] == "warning" and p["fix"] and ("无法" in p["message"] or "可沿" in p["message"])
               for p in over)
    assert main(["check", str(demo_copy)]) == 0
    out = capsys.readouterr().out
    assert "没有错误" in out and f"网格户数超过上限：{len(over)} 处" in out and "修正方法" in out


# -- the publish gate -------------------------------------------------------------------------------------


@pytest.fixture
def gate_ws(empty_ws):
    adm = admin()
    with empty_ws.transaction(actor="t", action="导入") as tx:
        tx.replace("admin_units", adm.to_crs(4490))
        tx.replace("households", households({1: 150, 2: 150, 3: 150, 4: 150, 5: 150, 6: 150}).assign(
            hh_id=lambda d: [f"H{i}" for i in range(len(d))]).to_crs(4490))
        tx.replace("staff", STAFF)
    return empty_ws


def test_publish_plan_refuses_a_plan_with_errors_and_names_them(gate_ws):
    grids, _ = clean_plan()
    grids.loc[2, "staff_id"] = None
    pid = save_draft(gate_ws, grids, name="main")
    before = gate_ws.revision
    with pytest.raises(ValidationError, match="1 个检查错误") as err:
        publish_plan(gate_ws, pid, actor="t")
    assert f"网格 {V[3]}001 没有客户经理" in str(err.value) and "修正方法" in str(err.value)
    assert plan_info(gate_ws, pid)["status"] == "draft" and gate_ws.revision == before


def test_publish_plan_publishes_with_warnings_only(gate_ws):
    from grids.check import check_workspace_plan

    grids, _ = clean_plan()  # 150 households per grid: over the default 100
    pid = save_draft(gate_ws, grids, name="main")
    found = check_workspace_plan(gate_ws, pid)
    assert errors(found).empty and len(warnings(found)) == 6
    publish_plan(gate_ws, pid, actor="t")
    assert plan_info(gate_ws, pid)["status"] == "published"


def test_the_planners_publish_intent_is_refused_by_the_same_gate_and_audited(gate_ws):
    from grids.auth import Account
    from grids.scope import ScopedWorkspace

    grids, _ = clean_plan()
    grids.loc[2, "branch_id"] = None
    pid = save_draft(gate_ws, grids, name="main")
    planner = ScopedWorkspace(gate_ws, Account("planner", "planner", "规划员"), plan=pid)
    with pytest.raises(ValidationError, match="检查错误"):
        planner.publish_plan(pid, expected_revision=plan_info(gate_ws, pid)["revision"])
    last = gate_ws.read("audit").iloc[-1]
    assert last["action"] == "拒绝：发布网格方案" and last["actor"] == "planner"
    assert plan_info(gate_ws, pid)["status"] == "draft"
