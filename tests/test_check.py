"""Coverage checks: each problem kind detected on a small broken plan; a clean plan has no problem; CLI."""

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.__main__ import main
from grids.build import build_grids
from grids.check import check_plan
from grids.plans import publish_plan, read_grids, resolve_plan, save_draft, update_grids

from .test_build import T1, T2, X0, Y0, V, admin, box, households

STAFF = pd.DataFrame({"staff_id": ["S1", "S2"], "branch_id": ["B01", "B02"]})


def clean_plan():
    """Six village grids tiling the county, each with households, a branch and its staff."""
    hh = households({1: 150, 2: 150, 3: 150, 4: 150, 5: 150, 6: 150})
    grids = build_grids(admin(groups_in_v1=False), households=hh)
    grids["branch_id"] = "B01"
    grids["staff_id"] = "S1"
    return grids, hh


def grids_gk(grids):
    return grids.to_crs(4549)


def kinds(problems):
    return sorted(problems["kind"])


def test_clean_plan_has_no_problem():
    grids, hh = clean_plan()
    problems = check_plan(grids, admin_units=admin(), households=hh, staff=STAFF)
    assert len(problems) == 0
    assert list(problems.columns) == ["kind", "severity", "grid_ids", "message", "fix", "geometry"]


def test_gap_detected_with_area_and_neighbours():
    grids, _hh = clean_plan()
    g = grids_gk(grids)
    hole = box(100, 100, 200, 200)  # 10,000 m² cut out of 一村
    g.loc[0, "geometry"] = g.geometry.iloc[0].difference(hole)
    problems = check_plan(g, admin_units=admin(), staff=STAFF)
    assert kinds(problems) == ["gap"]
    assert problems["grid_ids"].iloc[0] == [V[1] + "001"]
    assert "10,000" in problems["message"].iloc[0]
    assert problems.crs.to_epsg() == 4490


def test_overlap_and_household_in_two_grids():
    grids, hh = clean_plan()
    g = grids_gk(grids)
    g.loc[1, "geometry"] = g.geometry.iloc[1].union(box(800, 0, 1000, 1000))  # 二村 takes 200 m of 一村
    problems = check_plan(g, admin_units=admin(), households=hh, staff=STAFF)
    over = problems[problems["kind"] == "overlap"]
    assert over["grid_ids"].tolist() == [[V[1] + "001", V[2] + "001"]]
    assert "200,000" in over["message"].iloc[0]
    dup = problems[problems["kind"] == "household_duplicate"]
    in_strip = ((hh.geometry.x > X0 + 800) & (hh.geometry.x < X0 + 1000) & (hh.geometry.y < Y0 + 1000)).sum()
    assert len(dup) == in_strip > 0
    assert set(kinds(problems)) == {"overlap", "household_duplicate"}


def test_orphan_household_and_empty_grid():
    grids, hh = clean_plan()
    extra = gpd.GeoDataFrame({"hh_id": ["OUT"], "village_code": [None]},
                             geometry=[shapely.Point(X0 + 9000, Y0 + 9000)], crs=4549)
    no_loc = gpd.GeoDataFrame({"hh_id": ["NOWHERE"], "village_code": ["999"]}, geometry=[None], crs=4549)
    hh = gpd.GeoDataFrame(pd.concat([hh[hh["village_code"] != V[6]], extra, no_loc], ignore_index=True),
                          crs=4549)
    problems = check_plan(grids, admin_units=admin(), households=hh, staff=STAFF)
    assert kinds(problems) == ["empty_grid", "household_orphan", "household_orphan"]
    assert problems.loc[problems["kind"] == "empty_grid", "grid_ids"].tolist() == [[V[6] + "001"]]
    msgs = " ".join(problems.loc[problems["kind"] == "household_orphan", "message"])
    assert "OUT" in msgs and "NOWHERE" in msgs


def test_invalid_geometry_detected():
    grids, _ = clean_plan()
    g = grids_gk(grids)
    x, y = X0 + 3000, Y0
    bowtie = shapely.Polygon([(x, y), (x + 1000, y + 2000), (x + 1000, y), (x, y + 2000)])
    g.loc[5, "geometry"] = bowtie
    problems = check_plan(g, admin_units=admin(), staff=STAFF)
    inv = problems[problems["kind"] == "invalid_geometry"]
    assert inv["grid_ids"].tolist() == [[V[6] + "001"]]
    assert "Self-intersection" in inv["message"].iloc[0]


def test_multipart_grid_flagged_but_island_village_allowed():
    grids, _ = clean_plan()
    g = grids_gk(grids)
    # 一村 + 四村 as one grid (they only touch at a corner: two pieces), 四村 removed
    g.loc[0, "geometry"] = shapely.union_all([g.geometry.iloc[0], g.geometry.iloc[3]])
    g = g.drop(index=3)
    problems = check_plan(g, admin_units=admin(), staff=STAFF)
    assert kinds(problems) == ["multipart"]
    assert problems["grid_ids"].iloc[0] == [V[1] + "001"]
    # a village that itself has an island: its grid in two pieces is fine
    adm = admin(groups_in_v1=False)
    island = box(4100, 0, 4200, 100)
    adm.loc[adm["code"] == V[6], "geometry"] = shapely.union_all([box(3000, 0, 4000, 2000), island])
    adm.loc[adm["code"] == T2, "geometry"] = shapely.union_all([box(2000, 0, 4000, 2000), island])
    g2 = grids_gk(grids)
    g2.loc[5, "geometry"] = shapely.union_all([g2.geometry.iloc[5], island])
    assert len(check_plan(g2, admin_units=adm, staff=STAFF)) == 0


def test_grid_crossing_town_boundary():
    grids, _ = clean_plan()
    g = grids_gk(grids)
    g.loc[1, "geometry"] = shapely.union_all([g.geometry.iloc[1], g.geometry.iloc[4]])  # 二村 + 五村
    g = g.drop(index=4)
    problems = check_plan(g, admin_units=admin(), staff=STAFF)
    assert kinds(problems) == ["crosses_town"]
    assert T1 in problems["message"].iloc[0] and T2 in problems["message"].iloc[0]


def test_assignment_problems():
    grids, _ = clean_plan()
    grids.loc[0, "branch_id"] = None
    grids.loc[1, "staff_id"] = None
    grids.loc[2, "staff_id"] = "S2"  # S2 works at B02, grid is B01's
    grids.loc[3, "staff_id"] = "S9"  # unknown
    problems = check_plan(grids, admin_units=admin(), staff=STAFF)
    got = sorted(zip(problems["kind"], [x[0] for x in problems["grid_ids"]], strict=True))
    assert got == [("no_branch", V[1] + "001"), ("no_staff", V[2] + "001"),
                   ("staff_branch_mismatch", V[3] + "001"), ("staff_branch_mismatch", V[4] + "001")]


def test_grid_outside_county():
    grids, _ = clean_plan()
    g = grids_gk(grids)
    g.loc[5, "geometry"] = shapely.union_all([g.geometry.iloc[5], box(4000, 0, 4100, 2000)])
    problems = check_plan(g, admin_units=admin(), staff=STAFF)
    assert kinds(problems) == ["outside"]


# -- workspace and CLI ------------------------------------------------------------------------------------


@pytest.fixture
def small_ws(empty_ws):
    adm = admin()
    hh = households({1: 150, 2: 150, 3: 150, 4: 150, 5: 150, 6: 150})
    hh["hh_id"] = [f"H{i:04d}" for i in range(len(hh))]
    urban = gpd.GeoDataFrame({"name": ["城区"]}, geometry=[box(2200, 500, 2800, 1500)], crs=4549)
    streets = gpd.GeoDataFrame({"name": ["大街"]}, geometry=[
        shapely.LineString([(X0 + 2500, Y0 + 400), (X0 + 2500, Y0 + 1600)])], crs=4549)
    with empty_ws.transaction(actor="t", action="导入") as tx:
        tx.replace("admin_units", adm.to_crs(4490))
        tx.replace("households", hh.to_crs(4490))
        tx.replace("urban_areas", urban.to_crs(4490))
        tx.replace("streets", streets.to_crs(4490))
        tx.replace("staff", STAFF)
    return empty_ws


def test_cli_build_then_check(small_ws, capsys, monkeypatch):
    from .conftest import cli_user

    path = str(small_ws.path)
    user = ["--user", cli_user(small_ws, monkeypatch)]
    # 五村 keeps 87 of its 150 households outside the urban area (63 fall inside it): ≥ 50, no merge;
    # the one street cuts the urban area into 2 blocks, 63 households → 1 urban grid
    assert main(["build", path, "--min-households", "50", "--max-households", "500", *user]) == 0
    out = capsys.readouterr()
    assert "共 7 个网格（农牧区 6 个，城区 1 个），900 户" in out.out
    assert "最少 63，中位数 150，最多 150" in out.out
    assert "读取工作区" in out.err
    assert main(["build", path, "--min-households", "50", "--max-households", "500", *user]) == 0  # replaces the draft
    capsys.readouterr()
    pid = resolve_plan(small_ws, "main")
    assert main(["check", path, "--json"]) == 1  # nothing assigned yet
    report = json.loads(capsys.readouterr().out)
    assert report["plan_id"] == pid and report["revision"] == 2
    assert report["counts"] == {"no_branch": 7, "no_staff": 7}
    g = read_grids(small_ws, pid)
    g["branch_id"], g["staff_id"] = "B01", "S1"
    update_grids(small_ws, pid, g, actor="t", action="分配")
    assert main(["check", path]) == 0
    assert "没有发现问题" in capsys.readouterr().out


def test_cli_build_refuses_published(small_ws, capsys, monkeypatch):
    from .conftest import cli_user

    path = str(small_ws.path)
    user = ["--user", cli_user(small_ws, monkeypatch)]
    assert main(["build", path, *user]) == 0
    pid = resolve_plan(small_ws, "main")
    g = read_grids(small_ws, pid)
    g["branch_id"], g["staff_id"] = "B01", "S1"  # only a plan without check errors is published
    update_grids(small_ws, pid, g, actor="t", action="分配")
    publish_plan(small_ws, pid, actor="t")
    assert main(["build", path, *user]) == 2
    assert "已发布" in capsys.readouterr().err


def test_cli_check_warnings_only_exit_zero(small_ws, capsys):
    grids, hh = clean_plan()  # 150 households per grid, over the default bound of 100: warnings, no error
    pid = save_draft(small_ws, grids, name="clean")
    small_ws.write("urban_areas", gpd.GeoDataFrame({"name": []}, geometry=[], crs=4490), actor="t")
    small_ws.write("households", hh.assign(hh_id=[f"H{i}" for i in range(len(hh))]).to_crs(4490), actor="t")
    assert main(["check", str(small_ws.path), "--plan", "clean"]) == 0
    out = capsys.readouterr().out
    assert "没有错误" in out and "警告（6 个，不阻止发布）" in out and "网格户数超过上限：6 处" in out
    assert "可沿组界分为 2 格" in out and "修正方法" in out
    assert main(["check", str(small_ws.path), "--plan", "clean", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and (report["errors"], report["warnings"]) == (0, 6)
    assert {p["severity"] for p in report["problems"]} == {"warning"} and all(p["fix"] for p in report["problems"])
    assert pid == resolve_plan(small_ws, "clean")


def test_cli_check_prints_errors_before_warnings_and_exits_1(small_ws, capsys):
    grids, hh = clean_plan()
    grids.loc[0, "staff_id"] = None
    save_draft(small_ws, grids, name="broken")
    small_ws.write("households", hh.assign(hh_id=[f"H{i}" for i in range(len(hh))]).to_crs(4490), actor="t")
    assert main(["check", str(small_ws.path), "--plan", "broken"]) == 1
    out = capsys.readouterr().out
    assert "错误（1 个，阻止发布）" in out and out.index("错误（1 个") < out.index("警告（")
    assert f"网格 {V[1]}001 没有客户经理。修正方法：" in out


@pytest.mark.slow
def test_demo_county_build_then_check_has_no_coverage_problem(demo_copy):
    """On the demo county: the published plan has no check error; a fresh build leaves only assignment errors."""
    from grids.build import build_workspace_plan
    from grids.check import COVERAGE_KINDS, check_workspace_plan, errors
    from grids.plans import resolve_plan
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(demo_copy)
    assert errors(check_workspace_plan(ws, resolve_plan(ws))).empty  # the demo's published, assigned plan
    pid = build_workspace_plan(ws, name="rebuild")
    problems = errors(check_workspace_plan(ws, pid))
    assert not problems["kind"].isin(COVERAGE_KINDS).any(), problems[problems["kind"].isin(COVERAGE_KINDS)]
    grids = read_grids(ws, pid).to_crs(4549)
    county = ws.read("admin_units").query("level == 'town'").to_crs(4549).area.sum()
    assert abs(grids.area.sum() - county) <= 1e-6 * county
    assert grids["households"].sum() == ws.count("households")
