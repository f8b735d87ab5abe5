"""Tests of grids.assign*: hand-made cases with known answers, in metres (EPSG:4549, GK zone CM 120°E)."""

from __future__ import annotations

import itertools
import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import sparse

from geodata.synthetic import synthetic_county
from grids.assign import (
    assign_branches,
    assign_plan,
    assign_staff,
    assignable_staff,
    branch_distances,
    grid_workload,
    what_if,
)
from grids.assign.graph import components, grid_adjacency, road_distance_matrix
from grids.assign.metrics import assignment_metrics, pieces_per_label, polsby_popper
from grids.assign.partition import balance_bounds, partition
from grids.errors import ValidationError

GK = 4549
X0, Y0 = 500_000.0, 4_870_000.0  # inside zone 4549, near 120°E 44°N


def squares(cells: list[tuple[int, int]], households: list[int], *, size: float = 1000.0) -> gpd.GeoDataFrame:
    """Unit squares at (column, row) lattice positions, ``size`` metres wide."""
    geoms = [shapely.box(X0 + c * size, Y0 + r * size, X0 + (c + 1) * size, Y0 + (r + 1) * size) for c, r in cells]
    return gpd.GeoDataFrame({"grid_id": [f"g{i}" for i in range(len(cells))], "households": households},
                            geometry=geoms, crs=GK)


def line(households: list[int]) -> gpd.GeoDataFrame:
    return squares([(i, 0) for i in range(len(households))], households)


def points(xy: dict[str, tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"branch_id": list(xy)}, geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in xy.values()],
                            crs=GK)


def team(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{b}{i + 1}", b) for b, n in sizes.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["staff_id", "branch_id"])


# ------------------------------------------------------------------------------------------------ graphs


def test_adjacency_counts_shared_edges_not_corners():
    # 2×2 block: (0,0)-(1,0) share an edge, (0,0)-(1,1) only a corner
    g = squares([(0, 0), (1, 0), (0, 1), (1, 1)], [1, 1, 1, 1])
    a = grid_adjacency(g).toarray()
    assert a[0, 1] == a[0, 2] == 1
    assert a[0, 3] == 0 and a[1, 2] == 0
    assert a.sum() == 8  # 4 shared edges, both directions


def test_adjacency_bridges_a_gap_narrower_than_tolerance():
    g = gpd.GeoDataFrame({"households": [1, 1]}, crs=GK, geometry=[
        shapely.box(X0, Y0, X0 + 1000, Y0 + 1000), shapely.box(X0 + 1000.5, Y0, X0 + 2000, Y0 + 1000)])
    assert grid_adjacency(g, tolerance=1.0).toarray()[0, 1] == 1
    assert grid_adjacency(g, tolerance=0.1).toarray()[0, 1] == 0


def test_adjacency_is_computed_in_metres_from_degrees():
    g = line([1, 1, 1]).to_crs(4490)
    assert grid_adjacency(g).toarray().astype(int).tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]


def test_road_distance_on_a_tiny_graph_by_hand():
    # an L-shaped road A(0,0)–B(1000,0)–C(1000,1000) plus a road D(0,500)–(500,500)–B crossing nothing
    roads = gpd.GeoDataFrame(geometry=[
        shapely.LineString([(X0, Y0), (X0 + 1000, Y0), (X0 + 1000, Y0 + 1000)]),
        shapely.LineString([(X0, Y0 + 500), (X0 + 500, Y0 + 500), (X0 + 1000, Y0)]),
    ], crs=GK)
    origin = gpd.GeoSeries([shapely.Point(X0 + 200, Y0 - 30)], crs=GK)  # 30 m off A–B, 200 m from A
    targets = gpd.GeoSeries([
        shapely.Point(X0 + 1040, Y0 + 600),   # 40 m off B–C, 600 m up from B
        shapely.Point(X0 + 600, Y0 - 20),     # on the same segment as the origin
        shapely.Point(X0 + 100, Y0 + 520),    # 20 m off D–(500,500), 100 m from D
    ], crs=GK)
    d = road_distance_matrix(origin, targets, roads)[0]
    assert d[0] == pytest.approx(30 + 800 + 600 + 40)
    assert d[1] == pytest.approx(30 + 400 + 20)
    # to the third: via B and the diagonal (800 + 707.1 + 400) or via A? A is not linked to D: only via B
    assert d[2] == pytest.approx(30 + 800 + math.hypot(500, 500) + 400 + 20)


def test_road_distance_is_infinite_between_unconnected_roads():
    roads = gpd.GeoSeries([shapely.LineString([(X0, Y0), (X0 + 100, Y0)]),
                           shapely.LineString([(X0 + 5000, Y0), (X0 + 5100, Y0)])], crs=GK)
    d = road_distance_matrix(gpd.GeoSeries([shapely.Point(X0, Y0)], crs=GK),
                             gpd.GeoSeries([shapely.Point(X0 + 5100, Y0)], crs=GK), roads)
    assert np.isinf(d[0, 0])


def test_components_split_by_label():
    a = grid_adjacency(line([1, 1, 1, 1]))
    comp = components(a, np.array([0, 0, 1, 0]))
    assert comp[0] == comp[1] and len({comp[1], comp[2], comp[3]}) == 3


# ------------------------------------------------------------------------------------------------ branches


def test_two_branches_and_a_line_of_grids_go_to_the_nearest():
    g = line([10] * 5)  # centroids at 500, 1500, 2500, 3500, 4500 m
    b = points({"W": (0, 500), "E": (4800, 500)})  # grid 2: 2500 m to W, 2300 m to E
    out = assign_branches(g, b, team({"W": 1, "E": 1}), capacity_slack=10.0)
    assert out.tolist() == ["W", "W", "E", "E", "E"]
    assert out.index.equals(g.index)


def test_branch_distances_straight_line_by_hand():
    g = line([1, 1])
    d = branch_distances(g, points({"A": (500, 3500)}))
    assert d["A"].tolist() == pytest.approx([3000.0, math.hypot(1000, 3000)])


def test_capacity_pushes_the_border_grid_to_the_next_nearest_branch():
    g = line([10, 10, 10, 10])
    b = points({"W": (500, 500), "E": (3500, 500)})
    # nearest gives W 20 households, but W has 1 of 4 staff: capacity 40 × 1/4 = 10
    out = assign_branches(g, b, team({"W": 1, "E": 3}), capacity_slack=0.0)
    assert out.tolist() == ["W", "E", "E", "E"]
    plain = assign_branches(g, b, team({"W": 1, "E": 3}), capacity_slack=1.0)  # W may take 20
    assert plain.tolist() == ["W", "W", "E", "E"]


def test_capacity_keeps_each_branch_territory_in_one_piece():
    # W at the west end with capacity for 1 grid; the cheapest LP answer may cut E's line: E must stay whole
    g = squares([(c, r) for r in range(3) for c in range(6)], [10] * 18)
    b = points({"W": (500, 1500), "M": (3000, 1500), "E": (5500, 1500)})
    out = assign_branches(g, b, team({"W": 1, "M": 4, "E": 4}), capacity_slack=0.0)
    assert pieces_per_label(grid_adjacency(g), out.to_numpy(dtype=object), ["W", "M", "E"]).tolist() == [1, 1, 1]


def _floor_case() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """24 grids of 5 households in a line; A, B, C one manager each (share 40, floor 0.85·40 = 34).

    Nearest branch gives A grids 0–5 (30 households, under its floor), B 6–14 and C 15–23 (45 each, within
    the capacity 46). Grid 6 (centre x = 6500) is 5000 m from A and 4000 m from B: 1000 m farther.
    """
    return line([5] * 24), points({"A": (1500, 500), "B": (10500, 500), "C": (19500, 500)}), \
        team({"A": 1, "B": 1, "C": 1})


def test_floor_nearest_only_leaves_a_branch_under_its_staff_share():
    g, b, s = _floor_case()
    out = assign_branches(g, b, s, floor_reach=0)
    assert out.value_counts().to_dict() == {"B": 9, "C": 9, "A": 6}


def test_floor_takes_a_neighbours_border_grid_within_reach():
    g, b, s = _floor_case()
    out = assign_branches(g, b, s, floor_reach=3000)
    assert out.iloc[6] == "A"  # 1000 m farther: within reach, and A reaches its floor (35 ≥ 34)
    assert out.value_counts().to_dict() == {"C": 9, "B": 8, "A": 7}
    assert (out.iloc[:7] == "A").all()  # still one piece


def test_floor_does_not_reach_farther_than_allowed():
    g, b, s = _floor_case()
    out = assign_branches(g, b, s, floor_reach=500)  # grid 6 is 1000 m farther: not worth it
    assert (out == assign_branches(g, b, s, floor_reach=0)).all()


def test_locked_grid_keeps_its_branch_and_manager():
    # grid 2 is nearer to E (1000 m) than to W (2000 m), but it is locked to W's manager W1
    g = line([10, 10, 10, 10]).assign(branch_id=[None, None, "W", None], staff_id=[None, None, "W1", None],
                                      locked=[False, False, True, False])
    b = points({"W": (500, 500), "E": (3500, 500)})
    res = assign_plan(g, b, team({"W": 2, "E": 1}), capacity_slack=1.0)
    assert res.grids["branch_id"].tolist() == ["W", "W", "W", "E"]
    assert res.grids["staff_id"].iloc[2] == "W1"
    unlocked = assign_plan(g.assign(locked=False), b, team({"W": 2, "E": 1}), capacity_slack=1.0)
    assert unlocked.grids["branch_id"].tolist() == ["W", "W", "E", "E"]


def test_an_island_grid_does_not_break_contiguity():
    cells = [(0, 0), (1, 0), (2, 0), (3, 0), (9, 0)]  # the last one shares no edge with anything
    g = squares(cells, [10, 10, 10, 10, 10])
    b = points({"W": (500, 500), "E": (3500, 500)})
    res = assign_plan(g, b, team({"W": 1, "E": 2}), capacity_slack=1.0)
    assert res.grids["branch_id"].iloc[4] == "E"  # nearest
    assert res.branches["pieces"].tolist() == [1, 1]
    assert res.staff["pieces"].max() == 1
    # pieces_per_label: an island alone is one piece, next to a territory it adds nothing
    a = grid_adjacency(g)
    assert pieces_per_label(a, np.array(["x", "x", "y", "y", "x"], dtype=object), ["x", "y"]).tolist() == [1, 1]
    assert pieces_per_label(a, np.array(["x", "y", "x", "y", "y"], dtype=object), ["x", "y"]).tolist() == [2, 2]


def test_road_mode_uses_the_network_not_the_crow_flight():
    # grid 1 (centroid 1500,500) is 2000 m from E as the crow flies (2236 m from W), but E's road is a
    # 9000 m detour while W's road reaches it in 2000 + 1000 m
    g = line([10, 10])
    b = points({"W": (500, 2500), "E": (3500, 500)})
    roads = gpd.GeoDataFrame(geometry=[
        shapely.LineString([(X0 + 500, Y0 + 2500), (X0 + 500, Y0 + 500), (X0 + 1500, Y0 + 500)]),
        shapely.LineString([(X0 + 3500, Y0 + 500), (X0 + 3500, Y0 - 3000), (X0 + 1500, Y0 - 3000),
                            (X0 + 1500, Y0 + 500)]),
    ], crs=GK)
    s = team({"W": 1, "E": 1})
    assert assign_branches(g, b, s, capacity_slack=10.0).tolist() == ["W", "E"]
    d = branch_distances(g, b, by="road", streets=roads, detour_cap=10.0)
    assert d.loc[1, "W"] == pytest.approx(3000.0)
    assert d.loc[1, "E"] == pytest.approx(9000.0)
    assert d.loc[0, "E"] == pytest.approx(10000.0)
    assert d.attrs["road_fallback"] == 0
    # by default no way counts longer than three straight lines (E is 2000 m and 3000 m away as the crow flies)
    capped = branch_distances(g, b, by="road", streets=roads)
    assert capped.loc[1, "E"] == pytest.approx(6000.0) and capped.loc[0, "E"] == pytest.approx(9000.0)
    assert capped.loc[1, "W"] == pytest.approx(3000.0)
    assert assign_branches(g, b, s, by="road", streets=roads, capacity_slack=10.0).tolist() == ["W", "W"]


def test_road_pieces_that_do_not_meet_are_joined_and_no_distance_is_infinite():
    # a 400 m gap between the west road and the east road: the east grids used to be unreachable from W
    # (inf, then NaN in the repairs); now the gap is walked in a straight line
    g = line([10, 10, 10, 10])
    b = points({"W": (0, 500), "E": (4000, 500)})
    roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(X0, Y0 + 500), (X0 + 1800, Y0 + 500)]),
                                       shapely.LineString([(X0 + 2200, Y0 + 500), (X0 + 4000, Y0 + 500)])], crs=GK)
    d = branch_distances(g, b, by="road", streets=roads)
    assert np.isfinite(d.to_numpy()).all()
    assert d.loc[3, "W"] == pytest.approx(1800 + 400 + 1300)
    res = assign_plan(g, b, team({"W": 1, "E": 1}), by="road", streets=roads, capacity_slack=0.0)
    assert res.grids["branch_id"].tolist() == ["W", "W", "E", "E"]


def test_capacity_limit_moves_border_grids_and_never_overloads_the_receiver():
    from grids.assign.core import _enforce_limit

    adj = grid_adjacency(line([1] * 6))
    load = np.full(6, 100.0)
    cost = np.column_stack([np.arange(6), 5 - np.arange(6)]) * load[:, None]
    start = np.array([0, 0, 0, 0, 0, 1])
    dry = np.zeros((6, 2), dtype=bool)
    out = _enforce_limit(adj, start, cost, load, np.array([300.0, 300.0]), np.full(6, -1), dry)
    assert out.tolist() == [0, 0, 0, 1, 1, 1]  # 500 → 300 ≤ 330, from the border inwards
    # the receiver holds 165 at most: it cannot take a 100-household grid on top of its 100
    out = _enforce_limit(adj, start, cost, load, np.array([300.0, 150.0]), np.full(6, -1), dry)
    assert out.tolist() == start.tolist()


# ------------------------------------------------------------------------------------------------ staff


def test_staff_split_a_line_in_two_equal_halves():
    g = line([10] * 6).assign(branch_id="B")
    out = assign_staff(g, team({"B": 2}))
    assert out.iloc[0] == out.iloc[1] == out.iloc[2] != out.iloc[3] == out.iloc[4] == out.iloc[5]


def test_staff_territories_balanced_and_contiguous_on_a_lattice():
    cells = [(c, r) for r in range(4) for c in range(4)]
    g = squares(cells, [10] * 16).assign(branch_id="B")
    out = assign_staff(g, team({"B": 4}))
    loads = g.groupby(out)["households"].sum()
    assert loads.tolist() == [40, 40, 40, 40]
    assert pieces_per_label(grid_adjacency(g), out.to_numpy(dtype=object), loads.index.tolist()).max() == 1


def test_staff_only_from_their_own_branch_and_customer_managers_first():
    g = line([10] * 4).assign(branch_id=["A", "A", "B", "B"])
    s = pd.DataFrame({"staff_id": ["a0", "a1", "b1"], "branch_id": ["A", "A", "B"],
                      "role": ["网点主任", "客户经理", "网点主任"]})
    out = assign_staff(g, s)
    assert out.tolist() == ["a1", "a1", "b1", "b1"]
    assert assignable_staff(s)["staff_id"].tolist() == ["a1", "b1"]


def test_locked_grid_keeps_its_manager_even_when_balance_suffers():
    g = line([10] * 4).assign(branch_id="B", staff_id=["B1", None, None, None], locked=[True, False, False, False])
    out = assign_staff(g, team({"B": 2}))
    assert out.iloc[0] == "B1"
    g2 = g.assign(staff_id=["B2", None, None, None])
    assert assign_staff(g2, team({"B": 2})).iloc[0] == "B2"


def _contiguous(adj: sparse.csr_matrix, labels: np.ndarray, k: int) -> bool:
    comp = components(adj, labels)
    return all(len(np.unique(comp[labels == r])) == 1 for r in range(k))


def _brute_force_min_moved(adj, w, current, k, tol):
    """Fewest households moved over every contiguous labelling with all loads within mean·(1±tol)."""
    target = w.sum() / k
    best = None
    for lab in itertools.product(range(k), repeat=len(w)):
        lab = np.array(lab)
        if len(np.unique(lab)) < k:
            continue
        loads = np.bincount(lab, weights=w, minlength=k)
        if np.abs(loads - target).max() > tol * target + 1e-9 or not _contiguous(adj, lab, k):
            continue
        moved = w[lab != current].sum()
        best = moved if best is None else min(best, moved)
    return best


@pytest.mark.parametrize("current", [
    [0, 0, 1, 2, 0, 1, 1, 2],  # manager 0 has 50, 1 has 40, 2 has 30: two hops from 0 to 2
    [0, 0, 0, 2, 0, 1, 1, 2],  # 0 has 60, 1 has 30, 2 has 30
    [0, 0, 1, 1, 0, 0, 1, 2],  # 0 has 70, 1 has 40, 2 has 10
])
def test_minimal_change_moves_the_fewest_households_like_brute_force(current):
    # 2 × 4 lattice, row 0 then row 1; loads 120 in total, 3 managers → 40 each
    cells = [(c, r) for r in range(2) for c in range(4)]
    w = np.array([30, 10, 10, 20, 10, 20, 10, 10], dtype=float)
    g = squares(cells, w.astype(int).tolist())
    adj = grid_adjacency(g)
    current = np.array(current)
    assert _contiguous(adj, current, 3)
    xy = np.column_stack([g.centroid.x, g.centroid.y])
    lab = partition(adj, w, xy, 3, current=current, minimal_change=True, tolerance=0.05)
    loads = np.bincount(lab, weights=w, minlength=3)
    assert np.abs(loads - 40).max() <= 2
    assert _contiguous(adj, lab, 3)
    assert w[lab != current].sum() == _brute_force_min_moved(adj, w, current, 3, 0.05)


def test_minimal_change_moves_nothing_when_already_balanced():
    g = line([10] * 6).assign(branch_id="B", staff_id=["B1", "B1", "B1", "B2", "B2", "B2"])
    b = points({"B": (500, 500)})
    res = assign_plan(g, b, team({"B": 2}), minimal_change=True)
    assert res.moved_households == 0 and res.moved_grids == 0
    assert res.grids["staff_id"].tolist() == ["B1", "B1", "B1", "B2", "B2", "B2"]


def test_minimal_change_reports_households_moved():
    g = line([10] * 6).assign(branch_id="B", staff_id=["B1"] * 5 + ["B2"])
    res = assign_plan(g, points({"B": (500, 500)}), team({"B": 2}), minimal_change=True)
    assert res.grids["staff_id"].tolist() == ["B1"] * 3 + ["B2"] * 3
    assert res.moved_households == 20 and res.moved_grids == 2
    assert res.summary["moved_households"] == 20


# ------------------------------------------------------------------------------------------------ bounds, metrics


def test_balance_bounds_by_hand():
    # 60 / 20 / 20 among 2: best is 60 | 40, spread 20/50 = 0.4, and the bound proves it
    b = balance_bounds(np.array([60.0, 20, 20]), 2)
    assert b["lower_bound"] == pytest.approx(0.4)
    assert b["lpt"] == pytest.approx(0.4)
    # four grids among 3 staff: the two smallest must share, 30+30 = 60 vs mean 50, and the lightest carries
    # at most (150 − 60) / 2 = 45, a sum of whole grids: 40 (the best, 50 | 40 | 60, is exactly that)
    b = balance_bounds(np.array([50.0, 40, 30, 30]), 3)
    assert b["lower_bound"] == pytest.approx((60 - 40) / 50)
    assert balance_bounds(np.array([10.0]), 3)["lower_bound"] == pytest.approx(3.0)  # two staff get nothing


def test_tree_partition_cuts_a_line_into_equal_connected_parts():
    from grids.assign.partition import _tree_partition

    adj = sparse.diags([np.ones(5), np.ones(5)], [-1, 1], shape=(6, 6)).tocsr()
    xy = np.column_stack([np.arange(6) * 1000.0, np.zeros(6)])
    lab = _tree_partition(adj, np.full(6, 10.0), xy, 3, 20.0, np.random.default_rng(0))
    assert np.bincount(lab).tolist() == [2, 2, 2]
    assert (np.diff(lab) != 0).sum() == 2  # three runs along the line: each part in one piece


def test_recombination_balances_a_chain_that_border_moves_cannot():
    # a path cut into 3 territories of 90 | 10 | 50 (mean 50): recombining neighbours evens them out
    from grids.assign.partition import _Graph, _recombine

    w = np.array([40.0, 40, 10, 10, 10, 10, 10, 10, 10])
    adj = sparse.diags([np.ones(8), np.ones(8)], [-1, 1], shape=(9, 9)).tocsr()
    xy = np.column_stack([np.arange(9) * 1000.0, np.zeros(9)])
    start = np.array([0, 0, 0, 1, 2, 2, 2, 2, 2])  # loads 90, 10, 50
    lab = _recombine(_Graph(adj), start, w, xy, 3, np.zeros(9, bool), stop=0.0)
    loads = np.bincount(lab, weights=w, minlength=3)
    assert sorted(loads.tolist()) == [40.0, 50.0, 60.0]  # the best contiguous split: 40 | 40+10 | 6 × 10
    assert all(len(np.unique(np.flatnonzero(lab == r) - np.arange((lab == r).sum()))) == 1 for r in range(3))


def test_balance_bound_pigeonhole_over_more_grids_than_staff():
    # seven equal grids among 3 staff: someone holds 3 (30), so someone else at most (70 − 30) / 2 = 20;
    # the best is 3 + 2 + 2 grids, spread (30 − 20) / (70 / 3) — the old bound (k-th + (k+1)-th) said 0
    b = balance_bounds(np.full(7, 10.0), 3)
    assert b["lower_bound"] == pytest.approx(10 / (70 / 3))
    assert b["lpt"] == pytest.approx(b["lower_bound"])  # and LPT reaches it: the bound is exact here
    # a bound never exceeds what is achievable (brute force over all assignments of 6 grids to 3 staff)
    rng = np.random.default_rng(7)
    for _ in range(20):
        w = rng.integers(1, 60, 6).astype(float)
        best = min(np.ptp(np.bincount(np.array(a), weights=w, minlength=3))
                   for a in itertools.product(range(3), repeat=6))
        assert balance_bounds(w, 3)["lower_bound"] <= best / (w.sum() / 3) + 1e-9


def test_metrics_balance_ok_at_the_bound_but_not_above():
    # 60 / 20 / 20 among 2 staff: 60 | 40 is the best (spread 0.4 = bound) → balance_ok despite > 10 %
    g = line([60, 20, 20]).assign(branch_id="B", staff_id=["s1", "s2", "s2"])
    b = points({"B": (0, 500)})
    bm, _, _ = assignment_metrics(g, b, staff=team({"B": 2}).replace({"B1": "s1", "B2": "s2"}))
    assert bm["staff_spread"].iloc[0] == pytest.approx(0.4)
    assert bm["spread_lower_bound"].iloc[0] == pytest.approx(0.4) and bm["balance_ok"].iloc[0]
    # 60+20 | 20 is worse than the bound allows → not ok
    g2 = g.assign(staff_id=["s1", "s1", "s2"])
    bm2, _, _ = assignment_metrics(g2, b, staff=team({"B": 2}).replace({"B1": "s1", "B2": "s2"}))
    assert bm2["staff_spread"].iloc[0] == pytest.approx(1.2) and not bm2["balance_ok"].iloc[0]


def test_polsby_popper_by_hand():
    geoms = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(0, 1, 1, 2)])
    pp = polsby_popper(geoms, np.array(["a", "b", "b"], dtype=object), ["a", "b"])
    assert pp[0] == pytest.approx(4 * math.pi / 16)
    assert pp[1] == pytest.approx(4 * math.pi * 2 / 64)  # two squares touching at a corner: area 2, perimeter 8


def test_metrics_formulas_on_a_tiny_case():
    # staff loads 30 / 10 / 20 in branch B; the branch sits at the west end
    g = line([10, 20, 10, 20]).assign(branch_id="B", staff_id=["S1", "S1", "S2", "S3"])
    b = points({"B": (500, 500)}).assign(name=["网点B"])
    s = team({"B": 3}).assign(staff_id=["S1", "S2", "S3"])
    bm, sm, summary = assignment_metrics(g, b, staff=s)
    row = bm.iloc[0]
    assert row["households"] == 60 and row["staff"] == 3 and row["load_per_staff"] == pytest.approx(20)
    assert row["staff_spread"] == pytest.approx((30 - 10) / 20)
    assert row["staff_max_dev"] == pytest.approx(10 / 20)
    assert row["pieces"] == 1
    assert row["polsby_popper"] == pytest.approx(4 * math.pi * 4e6 / 10_000**2)
    # distances from centroids: 0, 1000, 2000, 3000 m weighted by 10, 20, 10, 20
    assert row["mean_distance_m"] == pytest.approx((0 + 20_000 + 20_000 + 60_000) / 60)
    assert row["max_distance_m"] == pytest.approx(3000)
    assert sm.set_index("staff_id")["households"].to_dict() == {"S1": 30, "S2": 10, "S3": 20}
    assert sm.set_index("staff_id").loc["S1", "mean_distance_m"] == pytest.approx(20_000 / 30)
    assert summary["staff_spread_max"] == pytest.approx(1.0) and summary["max_staff_pieces"] == 1


def test_metrics_use_household_points_when_given():
    g = line([2, 0]).assign(branch_id="B", staff_id="S1")
    b = points({"B": (0, 0)})
    hh = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 300, Y0 + 400), shapely.Point(X0 + 600, Y0 + 800)], crs=GK)
    from grids.assign.metrics import grid_distance_stats

    stats = grid_distance_stats(g, b, households=hh)
    bm, _, _ = assignment_metrics(g, b, staff=team({"B": 1}).assign(staff_id=["S1"]), distance_stats=stats)
    assert bm["mean_distance_m"].iloc[0] == pytest.approx((500 + 1000) / 2)
    assert bm["max_distance_m"].iloc[0] == pytest.approx(1000)


def test_workload_weights_by_segment_and_distance():
    g = line([2, 1])
    hh = gpd.GeoDataFrame({"segment": ["小微企业", "农牧户", "农牧户"]}, crs=GK, geometry=[
        shapely.Point(X0 + 100, Y0 + 100), shapely.Point(X0 + 200, Y0 + 100), shapely.Point(X0 + 1500, Y0 + 500)])
    w = grid_workload(g, households=hh, segment_weights={"小微企业": 3.0})
    assert w.tolist() == [4.0, 1.0]
    w = grid_workload(g, distance=pd.Series([1000.0, 3000.0]), distance_weight=0.5)
    assert w.tolist() == [3.0, 2.5]


# ------------------------------------------------------------------------------------------------ plan, what-if


def test_assign_plan_does_not_mutate_inputs_and_fills_every_grid():
    county = synthetic_county(rows=10, cols=10, n_branches=4, n_staff=12, households=5000, seed=3)
    before = county.grids.copy()
    res = assign_plan(county.grids, county.branches, county.staff)
    pd.testing.assert_frame_equal(county.grids, before)
    assert res.grids["branch_id"].notna().all() and res.grids["staff_id"].notna().all()
    assert res.summary["max_branch_pieces"] == 1 and res.summary["max_staff_pieces"] == 1
    assert res.summary["staff_not_at_branch"] == 0
    staff_branch = county.staff.set_index("staff_id")["branch_id"]
    assert (res.grids["staff_id"].map(staff_branch) == res.grids["branch_id"]).all()
    assert res.grids.crs == county.grids.crs
    json.dumps(res.to_dict(), ensure_ascii=False)  # JSON-ready


def test_what_if_close_branch_moves_its_grids_to_the_neighbour():
    g = line([10] * 4)
    b = points({"W": (500, 500), "E": (3500, 500)})
    res = what_if(g, b, team({"W": 1, "E": 1}), close_branch="W", capacity_slack=1.0)
    assert res.moves["branch_before"].tolist() == ["W", "W"]
    assert res.moves["branch_after"].tolist() == ["E", "E"]
    e = res.branches.set_index("branch_id").loc["E"]
    assert (e["households_before"], e["households_after"], e["staff_after"]) == (20, 40, 2)
    assert res.summary["mean_distance_m_before"] == pytest.approx(500.0)
    assert res.summary["mean_distance_m_after"] == pytest.approx((3000 + 2000 + 1000 + 0) / 4)


def test_what_if_add_branch_takes_the_grids_nearest_to_it():
    g = line([10] * 6).to_crs(4490)
    b = points({"W": (500, 500)}).to_crs(4490)
    east = gpd.GeoSeries([shapely.Point(X0 + 5500, Y0 + 500)], crs=GK).to_crs(4490).iloc[0]
    res = what_if(g, b, team({"W": 2}), add_branch=(east.x, east.y), capacity_slack=1.0)
    assert res.moves["branch_after"].unique().tolist() == ["NEW"]
    assert res.summary["households_moved"] == 30
    assert res.summary["mean_distance_m_after"] < res.summary["mean_distance_m_before"]


def test_errors_say_what_to_fix():
    g = line([10, 10])
    with pytest.raises(ValidationError, match="households"):
        assign_plan(g.drop(columns="households"), points({"A": (0, 0)}), team({"A": 1}))
    with pytest.raises(ValidationError, match="没有编号为 X 的网点"):
        what_if(g, points({"A": (0, 0), "B": (9, 9)}), team({"A": 1}), close_branch="X")
    with pytest.raises(ValidationError, match="straight"):
        branch_distances(g, points({"A": (0, 0)}), by="bus")
    with pytest.raises(ValidationError, match="街道"):
        branch_distances(g, points({"A": (0, 0)}), by="road")


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def small_ws(empty_ws):
    from grids.plans import save_draft

    county = synthetic_county(rows=8, cols=8, n_branches=3, n_staff=9, households=3000, seed=1)
    with empty_ws.transaction(actor="test", action="载入") as tx:
        tx.replace("branches", county.branches)
        tx.replace("staff", county.staff)
        tx.replace("streets", county.streets)
    save_draft(empty_ws, county.grids.drop(columns=["branch_id", "staff_id"]), name="main")
    return empty_ws


def test_cli_assign_fills_the_plan_and_prints_json(small_ws, capsys, monkeypatch):
    from grids.__main__ import main

    from .conftest import cli_user

    user = ["--user", cli_user(small_ws, monkeypatch)]
    from grids.plans import plan_info, read_grids, resolve_plan

    pid = resolve_plan(small_ws)
    rev = plan_info(small_ws, pid)["revision"]
    assert main(["assign", str(small_ws.path), "--json", *user]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["grids"] == 64 and out["summary"]["max_staff_pieces"] == 1
    grids = read_grids(small_ws, pid)
    assert grids["branch_id"].notna().all() and grids["staff_id"].notna().all()
    assert plan_info(small_ws, pid)["revision"] == rev + 1
    # again in minimal-change mode, by road: nothing needs to move from a balanced start on the same network
    assert main(["assign", str(small_ws.path), "--minimal-change", "--by", "road", *user]) == 0
    text = capsys.readouterr().out
    assert "最少调整" in text and "沿道路距离" in text


def test_cli_what_if_prints_and_does_not_write(small_ws, capsys):
    from grids.__main__ import main

    rev = small_ws.revision
    assert main(["assign", str(small_ws.path), "--close-branch", "B01"]) == 0
    text = capsys.readouterr().out
    assert "关闭网点 B01" in text and "改变网点的网格" in text
    assert small_ws.revision == rev
    assert main(["assign", str(small_ws.path), "--add-branch", "abc"]) == 2
    assert "经度,纬度" in capsys.readouterr().err
