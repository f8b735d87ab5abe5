"""What-if with least change (grids.assign.what_if): closing a branch moves its grids and staff only, a new
branch takes only the grids nearer to it. Hand-made lines of squares in metres (EPSG:4549), a synthetic
county, and the demo workspace read-only."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata.synthetic import synthetic_county
from grids.assign import assign_plan, assignable_staff, branch_distances, what_if
from grids.assign.core import _apportion
from grids.assign.graph import components, grid_adjacency
from grids.errors import ValidationError

GK = 4549
X0, Y0 = 500_000.0, 4_870_000.0


def row_of(columns: list[int], households: list[int], branch: list[str], staff: list[str]) -> gpd.GeoDataFrame:
    """1 km squares at the given columns of one row, already assigned."""
    geoms = [shapely.box(X0 + c * 1000, Y0, X0 + (c + 1) * 1000, Y0 + 1000) for c in columns]
    return gpd.GeoDataFrame({"grid_id": [f"g{c}" for c in columns], "households": households,
                             "branch_id": branch, "staff_id": staff}, geometry=geoms, crs=GK)


def points(xy: dict[str, float]) -> gpd.GeoDataFrame:
    """Branches on the row's centre line, ``x`` in metres from the row's start."""
    return gpd.GeoDataFrame({"branch_id": list(xy)}, geometry=[shapely.Point(X0 + x, Y0 + 500) for x in xy.values()],
                            crs=GK)


def people(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["staff_id", "branch_id", "role"])


def unchanged(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, keep: np.ndarray) -> bool:
    cols = ["branch_id", "staff_id"]
    return before.loc[keep, cols].astype(str).equals(after.loc[keep, cols].astype(str))


@pytest.fixture(scope="module")
def county():
    """A synthetic county of 12 × 12 grids, 5 branches and 20 managers, assigned from scratch."""
    c = synthetic_county(rows=12, cols=12, n_branches=5, n_staff=20, households=12_000, seed=2)
    return c, assign_plan(c.grids, c.branches, c.staff).grids


# ------------------------------------------------------------------------------------------------ closing


def test_closing_moves_the_closed_branchs_grids_and_no_others(county):
    c, plan = county
    res = what_if(plan, c.branches, c.staff, close_branch="B02")
    closed = (plan["branch_id"] == "B02").to_numpy()
    assert set(res.moves["grid_id"]) == set(plan.loc[closed, "grid_id"])
    assert res.summary["households_moved"] == int(plan.loc[closed, "households"].sum())
    assert unchanged(plan, res.scenario.grids, ~closed)  # branch and manager of every other grid
    assert res.summary["households_restaffed"] == 0 and res.summary["baseline"] == "current"


def test_closing_sends_each_grid_to_its_nearest_remaining_branch(county):
    c, plan = county
    res = what_if(plan, c.branches, c.staff, close_branch="B02")
    rest = c.branches[c.branches["branch_id"] != "B02"]
    nearest = branch_distances(plan, rest).idxmin(axis=1)
    moved = plan["branch_id"] == "B02"
    after = res.scenario.grids["branch_id"]
    # a grid cut off from its nearest receiver's territory may join a neighbouring receiver: the rest may not
    labels = pd.factorize(after)[0]
    assert (after[moved] == nearest[moved]).mean() >= 0.9
    assert res.scenario.summary["max_branch_pieces"] <= max(1, res.baseline.summary["max_branch_pieces"])
    assert len(np.unique(components(grid_adjacency(plan), labels))) == after.nunique()


def test_closing_moves_the_staff_in_proportion_to_the_households_received(county):
    c, plan = county
    res = what_if(plan, c.branches, c.staff, close_branch="B02")
    team = assignable_staff(c.staff)
    leaving = set(team.loc[team["branch_id"] == "B02", "staff_id"])
    t = res.branches.set_index("branch_id")
    assert res.summary["staff_before"] == res.summary["staff_after"] == len(team)  # capacity follows, none lost
    assert set(res.staff_moves["staff_id"]) >= leaving
    t = t.drop("B02")
    got = t["households_change"]
    seats = t["staff_after"] - t["staff_before"]
    assert seats.sum() == len(leaving) and (seats >= 0).all() and (got >= 0).all()
    quota = got / got.sum() * len(leaving)
    assert ((seats - quota).abs() < 1).all()  # whole people, largest remainder
    # the received grids are served by the managers who came with them
    for dest, took in res.moves.groupby("branch_after"):
        came = set(res.staff_moves.loc[res.staff_moves["branch_after"] == dest, "staff_id"]) & leaving
        if came:
            assert set(took["staff_after"]) <= came


def test_closing_never_crosses_water_while_a_branch_on_the_same_land_remains():
    # island A: columns 0-5 with branches E (west end) and W (closing); island B: columns 8-9 with X.
    # The east end of A is nearer to X in a straight line, across water.
    cols = [0, 1, 2, 3, 4, 5, 8, 9]
    g = row_of(cols, [10] * 8, ["E", "E", "E", "W", "W", "W", "X", "X"], ["e", "e", "e", "w", "w", "w", "x", "x"])
    b = points({"E": 500, "W": 4500, "X": 8500})
    s = people([("e", "E", "客户经理"), ("w", "W", "客户经理"), ("x", "X", "客户经理")])
    assert branch_distances(g, b).loc[5].idxmin() == "W" and branch_distances(g, b[b["branch_id"] != "W"]).loc[
        5].idxmin() == "X"  # in a straight line, across water, X is nearer to column 5 than E
    res = what_if(g, b, s, close_branch="W")
    assert res.moves["branch_after"].tolist() == ["E", "E", "E"]


def test_closing_gives_received_grids_to_the_receivers_own_staff_when_nobody_comes():
    # W has one manager and gives 10 households to E and 30 to X: the manager goes with the 30
    g = row_of([0, 1, 2, 3, 4, 5], [10, 10, 10, 15, 15, 10], ["E", "E", "W", "W", "W", "X"],
               ["e", "e", "w", "w", "w", "x"])
    b = points({"E": 500, "W": 3500, "X": 5500})
    s = people([("e", "E", "客户经理"), ("w", "W", "客户经理"), ("m", "W", "网点主任"), ("x", "X", "客户经理")])
    res = what_if(g, b, s, close_branch="W")
    after = res.scenario.grids.set_index("grid_id")
    assert after.loc[["g2", "g3", "g4"], "branch_id"].tolist() == ["E", "X", "X"]
    assert after.loc["g2", "staff_id"] == "e" and after.loc[["g3", "g4"], "staff_id"].tolist() == ["w", "w"]
    assert res.staff_moves.set_index("staff_id")["branch_after"].to_dict() == {"m": "X", "w": "X"}


def test_apportion_is_whole_people_summing_to_the_team():
    rng = np.random.default_rng(0)
    for _ in range(50):
        amounts = rng.integers(0, 5000, size=rng.integers(1, 6)).astype(float)
        seats = int(rng.integers(0, 12))
        out = _apportion(amounts, seats)
        if amounts.sum() > 0:
            assert out.sum() == seats
            assert (np.abs(out - amounts / amounts.sum() * seats) < 1).all()


# ------------------------------------------------------------------------------------------------ adding


def test_adding_takes_only_grids_nearer_to_it_and_keeps_territories_whole(county):
    c, plan = county
    gk = plan.to_crs(GK).geometry.centroid
    spot = gpd.GeoSeries([shapely.Point(gk.x.quantile(0.7), gk.y.quantile(0.3))], crs=GK).to_crs(4490).iloc[0]
    res = what_if(plan, c.branches, c.staff, add_branch=(spot.x, spot.y), new_branch_staff=3)
    assert len(res.moves) and (res.moves["branch_after"] == "NEW").all()
    with_new = pd.concat([c.branches, gpd.GeoDataFrame({"branch_id": ["NEW"]}, geometry=[spot], crs=4490)
                          .to_crs(c.branches.crs)], ignore_index=True)
    d = branch_distances(plan, with_new).set_index(plan["grid_id"])
    for m in res.moves.itertuples():
        assert d.loc[m.grid_id, "NEW"] < d.loc[m.grid_id, m.branch_before]
    moved = plan["grid_id"].isin(res.moves["grid_id"]).to_numpy()
    assert unchanged(plan, res.scenario.grids, ~moved)
    assert res.summary["staff_after"] == res.summary["staff_before"] + 3
    assert set(res.moves["staff_after"]) <= {"NEW-S1", "NEW-S2", "NEW-S3"}
    assert res.scenario.summary["max_branch_pieces"] <= max(1, res.baseline.summary["max_branch_pieces"])
    assert res.scenario.summary["max_staff_pieces"] <= max(1, res.baseline.summary["max_staff_pieces"])


def block(owner: dict[tuple[int, int], str]) -> gpd.GeoDataFrame:
    """1 km squares at (column, row), all of branch E, ``owner`` naming each square's manager."""
    cells = sorted(owner)
    geoms = [shapely.box(X0 + c * 1000, Y0 + r * 1000, X0 + (c + 1) * 1000, Y0 + (r + 1) * 1000) for c, r in cells]
    return gpd.GeoDataFrame({"grid_id": [f"g{c}{r}" for c, r in cells], "households": 10, "branch_id": "E",
                             "staff_id": [owner[x] for x in cells]}, geometry=geoms, crs=GK)


def test_adding_leaves_a_grid_whose_leaving_would_cut_a_territory():
    # 3 × 3 block of branch E (west middle); e2 holds a C around e1's middle square, closed by column 2.
    # NEW east of column 2 is nearer to all of column 2, but taking it would cut e2 in two.
    e1, e2 = "e1", "e2"
    g = block({(0, 0): e1, (0, 1): e1, (0, 2): e1, (1, 1): e1,
               (1, 0): e2, (2, 0): e2, (2, 1): e2, (2, 2): e2, (1, 2): e2})
    b = gpd.GeoDataFrame({"branch_id": ["E"]}, geometry=[shapely.Point(X0 + 500, Y0 + 1500)], crs=GK)
    s = people([("e1", "E", "客户经理"), ("e2", "E", "客户经理")])
    spot = gpd.GeoSeries([shapely.Point(X0 + 3200, Y0 + 1500)], crs=GK).to_crs(4490).iloc[0]
    res = what_if(g, b, s, add_branch=(spot.x, spot.y), new_branch_staff=1)
    nearer = {"g20", "g21", "g22"}
    assert set(res.moves["grid_id"]) < nearer
    assert res.scenario.summary["max_staff_pieces"] == res.scenario.summary["max_branch_pieces"] == 1
    assert "留在原网点" in res.summary["scenario"][-1]


def test_errors_name_the_fix(county):
    c, plan = county
    with pytest.raises(ValidationError, match="至少为 1"):
        what_if(plan, c.branches, c.staff, add_branch=(119.4, 44.0), new_branch_staff=0)
    with pytest.raises(ValidationError, match="可用的网点"):
        what_if(plan, c.branches, c.staff, close_branch="B99")


def test_a_plan_not_yet_assigned_is_assigned_first_as_the_baseline(county):
    c, _ = county
    res = what_if(c.grids.drop(columns=["branch_id", "staff_id"]), c.branches, c.staff, close_branch="B01")
    base = res.baseline.grids
    assert res.summary["baseline"] == "assigned" and "先按相同设置分配" in res.summary["scenario"][0]
    assert res.summary["households_moved"] == int(base.loc[base["branch_id"] == "B01", "households"].sum())


# ------------------------------------------------------------------------------------------------ the demo


@pytest.fixture(scope="module")
def demo(demo_path):
    from grids.landmass import county_outline
    from grids.plans import read_grids, resolve_plan
    from grids.workspace import open_workspace

    ws = open_workspace(demo_path)
    streets = ws.read("streets")
    return (read_grids(ws, resolve_plan(ws)), ws.read("branches"), ws.read("staff"),
            {"streets": streets if len(streets) else None, "outline": county_outline(ws)})


@pytest.mark.parametrize("by", ["straight", "road"])
def test_closing_b05_on_the_demo_moves_b05s_households_and_no_others(demo, by):
    grids, branches, staff, options = demo
    res = what_if(grids, branches, staff, close_branch="B05", by=by, **options)
    b05 = (grids["branch_id"] == "B05").to_numpy()
    assert b05.any()
    assert res.summary["households_moved"] == int(grids.loc[b05, "households"].sum())
    assert set(res.moves["grid_id"]) == set(grids.loc[b05, "grid_id"])
    assert unchanged(grids, res.scenario.grids, ~b05)
    assert res.summary["staff_after"] == res.summary["staff_before"]
    assert set(res.staff_moves["staff_id"]) == set(staff.loc[staff["branch_id"] == "B05", "staff_id"])


def test_cli_what_if_on_the_demo_prints_the_households_moved(demo_path, capsys):
    from grids.__main__ import main

    assert main(["assign", str(demo_path), "--close-branch", "B05", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    moved = out["summary"]["households_moved"]
    assert moved == sum(m["households"] for m in out["moves"]) and out["staff_moves"]
    assert main(["assign", str(demo_path), "--close-branch", "B05"]) == 0
    text = capsys.readouterr().out
    assert f"移动 {moved} 户" in text and "其余网格的网点和客户经理都不变" in text and "调动的员工" in text
    assert main(["assign", str(demo_path), "--new-branch-staff", "2"]) == 2
    assert "--add-branch" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ the page


def test_planning_whatif_section_shows_the_households_moved(tmp_path, monkeypatch):
    from grids.auth import Account

    from .test_app_planning import run, small_workspace

    ws = small_workspace(tmp_path / "ws.gpkg")
    branches = gpd.GeoDataFrame({"branch_id": ["B1", "B2"], "name": ["林东信用社", "东城信用社"]},
                                geometry=[shapely.Point(119.4, 43.95), shapely.Point(119.48, 43.95)], crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2", "S3"], "name": ["张三", "李四", "王五"],
                          "branch_id": ["B1", "B1", "B2"], "role": "客户经理"})
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.replace("branches", branches)
        tx.replace("staff", staff)
    monkeypatch.setenv("GRIDS_WORKSPACE", str(ws.path))
    at = run("pages/planning.py", Account("planner", "planner", "规划员"))
    at.session_state["planning.section"] = "假设分析"
    at.run()
    at.selectbox[0].set_value("B1").run()
    next(b for b in at.button if b.label == "计算").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["移动户数"] == "6 户" and metrics["调动员工"] == "2 名"
    assert "户数（前）" in at.dataframe[0].value.columns
    # a new branch (as a map click would place it) beside 乙村 takes 乙村 only, with the managers asked for
    at.session_state["planning.whatif_point"] = (119.46, 43.95)
    at.selectbox[0].set_value(None).run()
    at.number_input(key="planning.whatif_staff").set_value(2).run()
    next(b for b in at.button if b.label == "计算").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["移动户数"] == "3 户" and metrics["调动员工"] == "0 名"
    assert any("配 2 名新客户经理" in m.value for m in at.markdown)


def test_adding_a_branch_next_to_branches_without_a_crs_names_the_fix():
    g = row_of([0, 1], [10, 10], ["A", "A"], ["a", "a"])
    b = gpd.GeoDataFrame({"branch_id": ["A"]}, geometry=[shapely.Point(X0 + 500, Y0 + 500)])  # no CRS
    with pytest.raises(ValidationError, match="坐标参考系"):
        what_if(g, b, people([("a", "A", "客户经理")]), add_branch=(119.4, 44.0))
