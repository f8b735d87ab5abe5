"""grids.edit: split, merge, reshape, move households, undo/redo, compare — on a hand-made county.

Town 150422100 has three villages in a row (V1, V2, V4, each 0.02° × 0.02°); town 150422200 has one village
(V3) north of V2. One grid per village; households are points placed by hand.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.check import check_plan
from grids.crs import to_gk
from grids.edit import (
    History,
    compare_plans,
    count_households,
    grid_totals,
    merge_grids,
    move_households,
    reshape_grid,
    split_grid,
)
from grids.errors import ValidationError

T1, T2 = "150422100", "150422200"
V1, V2, V4, V3 = (shapely.box(119.00, 43.00, 119.02, 43.02), shapely.box(119.02, 43.00, 119.04, 43.02),
                  shapely.box(119.04, 43.00, 119.06, 43.02), shapely.box(119.02, 43.02, 119.04, 43.04))
G1, G2, G4, G3 = "150422100201001", "150422100202001", "150422100204001", "150422200201001"


@pytest.fixture
def admin():
    return gpd.GeoDataFrame(
        {"code": [T1, T2, T1 + "201", T1 + "202", T1 + "204", T2 + "201"],
         "level": ["town", "town", "village", "village", "village", "village"],
         "parent_code": ["150422", "150422", T1, T1, T1, T2]},
        geometry=[shapely.union_all([V1, V2, V4]), V3, V1, V2, V4, V3], crs=4490)


@pytest.fixture
def grids():
    return gpd.GeoDataFrame(
        {"grid_id": [G1, G2, G4, G3], "code": [G1, G2, G4, G3], "name": ["甲村", "乙村", "丁村", "丙村"],
         "kind": "rural", "town_code": [T1, T1, T1, T2],
         "source_codes": [T1 + "201", T1 + "202", T1 + "204", T2 + "201"], "households": [5, 3, 1, 1],
         "branch_id": "B1", "staff_id": ["S1", "S1", "S2", "S2"], "locked": False},
        geometry=[V1, V2, V4, V3], crs=4490)


@pytest.fixture
def households():
    pts = ([(119.005, 43.01)] * 3 + [(119.015, 43.01)] * 2      # V1: 3 west of 119.012, 2 east
           + [(119.022, 43.01), (119.035, 43.01), (119.035, 43.005)]  # V2: one near its west edge
           + [(119.05, 43.01)] + [(119.03, 43.03)])          # V4, V3
    return gpd.GeoDataFrame({"hh_id": [f"H{i}" for i in range(len(pts))]},
                            geometry=[shapely.Point(p) for p in pts], crs=4490)


@pytest.fixture
def staff():
    return pd.DataFrame({"staff_id": ["S1", "S2"], "branch_id": ["B1", "B1"]})


def gk_area(frame) -> float:
    return float(to_gk(frame).area.sum())


def problems(grids, admin, households, staff) -> list[str]:
    return check_plan(grids, admin_units=admin, households=households, staff=staff)["kind"].tolist()


def test_fixture_plan_is_clean(grids, admin, households, staff):
    assert problems(grids, admin, households, staff) == []
    assert count_households(grids, households).tolist() == [5, 3, 1, 1]


# --- split ------------------------------------------------------------------------------------------


def test_split_by_line_gives_two_grids_whose_areas_add_up(grids, admin, households, staff):
    line = shapely.LineString([(119.012, 42.99), (119.012, 43.03)])
    out = split_grid(grids, G1, line, households=households)
    assert len(out) == 5
    assert G1 not in set(out["grid_id"])
    new = out[out["grid_id"].str.startswith("150422100201")]
    # the larger (west) piece first, codes continuing the village's sequence
    assert new["grid_id"].tolist() == ["150422100201002", "150422100201003"]
    assert new["households"].tolist() == [3, 2]
    assert new["staff_id"].tolist() == ["S1", "S1"] and new["town_code"].tolist() == [T1, T1]
    assert gk_area(new) == pytest.approx(gk_area(grids[grids["grid_id"] == G1]), abs=1.0)
    assert new.geometry.iloc[0].bounds == pytest.approx((119.0, 43.0, 119.012, 43.02))
    assert problems(out, admin, households, staff) == []
    assert grids["grid_id"].tolist() == [G1, G2, G4, G3], "input changed"


def test_split_without_households_shares_the_count_by_area(grids):
    out = split_grid(grids, G1, shapely.LineString([(119.015, 42.99), (119.015, 43.03)]))
    new = out[out["grid_id"].str.startswith("150422100201")]
    # 3/4 and 1/4 of the area (to within the GK projection's tiny distortion): 5 → 4 + 1
    assert new["households"].tolist() == [4, 1]


def test_split_refuses_a_line_that_does_not_cross(grids):
    with pytest.raises(ValidationError, match=r"没有把网格 .* 分开"):
        split_grid(grids, G1, shapely.LineString([(119.005, 42.99), (119.005, 43.01)]))  # ends inside
    with pytest.raises(ValidationError, match="没有经过网格"):
        split_grid(grids, G1, shapely.LineString([(119.1, 42.99), (119.1, 43.03)]))
    with pytest.raises(ValidationError, match="没有网格 X"):
        split_grid(grids, "X", shapely.LineString([(119.01, 42.99), (119.01, 43.03)]))


# --- merge ------------------------------------------------------------------------------------------


def test_merge_two_adjacent_grids_of_a_town(grids, admin, households, staff):
    out = merge_grids(grids, [G1, G2])
    assert len(out) == 3
    merged = out[out["grid_id"] == T1 + "901"].iloc[0]  # villages merged: the town's 9nn sequence
    assert merged["households"] == 8 and merged["staff_id"] == "S1"
    assert merged["source_codes"] == f"{T1}201,{T1}202"
    assert merged.geometry.equals(shapely.box(119.0, 43.0, 119.04, 43.02).normalize()) or \
        merged.geometry.symmetric_difference(shapely.box(119.0, 43.0, 119.04, 43.02)).area < 1e-12
    assert problems(out, admin, households, staff) == []


def test_merge_refuses_other_towns_and_non_adjacent_grids(grids):
    with pytest.raises(ValidationError, match="不同的镇"):
        merge_grids(grids, [G2, G3])
    with pytest.raises(ValidationError, match="不相邻"):
        merge_grids(grids, [G1, G4])
    with pytest.raises(ValidationError, match="至少需要两个"):
        merge_grids(grids, [G1])


def test_split_then_merge_continues_the_sequence(grids):
    cut = split_grid(grids, G1, shapely.LineString([(119.012, 42.99), (119.012, 43.03)]))
    back = merge_grids(cut, ["150422100201002", "150422100201003"])
    assert "150422100201004" in set(back["grid_id"])
    assert gk_area(back) == pytest.approx(gk_area(grids), abs=1.0)


# --- reshape ----------------------------------------------------------------------------------------


def test_reshape_takes_area_from_the_same_town_only_and_keeps_the_tiling(grids, admin, households, staff):
    drawn = shapely.box(119.015, 42.99, 119.025, 43.03)  # into G2 (same town), G3 (other town), outside
    out = reshape_grid(grids, G1, drawn, households=households)
    by = out.set_index("grid_id")
    assert by.geometry[G1].bounds == pytest.approx((119.0, 43.0, 119.025, 43.02))
    assert by.geometry[G2].bounds == pytest.approx((119.025, 43.0, 119.04, 43.02))
    assert by.geometry[G3].equals(V3), "another town's grid must not change"
    assert by.loc[[G1, G2], "households"].tolist() == [6, 2]  # H5 at 119.022 changes grid
    assert gk_area(out) == pytest.approx(gk_area(grids), abs=1.0)
    assert problems(out, admin, households, staff) == []


def test_reshape_refuses_a_polygon_taking_nothing(grids):
    with pytest.raises(ValidationError, match="没有覆盖"):
        reshape_grid(grids, G1, shapely.box(119.005, 43.005, 119.01, 43.01))  # inside G1 only
    with pytest.raises(ValidationError, match="不相接"):
        reshape_grid(grids, G1, shapely.box(119.045, 43.005, 119.05, 43.01))  # inside G4, away from G1


# --- households, totals ------------------------------------------------------------------------------


def test_move_households_overrides_their_grid(grids):
    table = pd.DataFrame({"hh_id": ["H0", "H1", "H5"], "grid_id": [G1, G1, G2], "staff_id": ["S1", "S1", "S1"]})
    out = move_households(table, ["H1"], G4, grids=grids)
    assert out["grid_id"].tolist() == [G1, G4, G2]
    assert out["staff_id"].tolist() == ["S1", "S2", "S1"]
    assert out["override"].tolist() == [False, True, False]
    assert table["grid_id"].tolist() == [G1, G1, G2], "input changed"
    with pytest.raises(ValidationError, match="没有这些户：H9"):
        move_households(table, ["H9"], G4)
    with pytest.raises(ValidationError, match="没有网格 X"):
        move_households(table, ["H1"], "X", grids=grids)


def test_grid_totals(grids):
    assert grid_totals(grids) == {"grids": 4, "households": 10, "min": 1, "median": 2.0, "max": 5}


# --- undo / redo ------------------------------------------------------------------------------------


def test_history_undo_redo_and_a_new_edit_drops_the_redo_branch(grids):
    h = History()
    h.reset(grids, "载入")
    cut = split_grid(grids, G1, shapely.LineString([(119.012, 42.99), (119.012, 43.03)]))
    h.push(cut, "拆分")
    assert len(h.undo()) == 4 and h.can_redo and not h.can_undo
    assert len(h.redo()) == 5 and h.label == "拆分"
    h.undo()
    h.push(merge_grids(grids, [G1, G2]), "合并")
    assert not h.can_redo and h.labels == ["载入", "合并"] and len(h.current) == 3
    with pytest.raises(ValidationError, match="没有可重做"):
        h.redo()


def test_history_keeps_at_most_limit_states():
    h = History(limit=3)
    for s in range(5):
        h.push(s)
    assert h.labels == ["", "", ""] and h.current == 4
    assert h.undo() == 3 and h.undo() == 2 and not h.can_undo


# --- compare ----------------------------------------------------------------------------------------


def test_compare_plans_reports_grids_households_and_workload(grids, households):
    b = split_grid(grids, G1, shapely.LineString([(119.012, 42.99), (119.012, 43.03)]), households=households)
    b.loc[b["grid_id"] == G2, "staff_id"] = "S2"
    c = compare_plans(grids, b, households=households)
    kinds = dict(zip(c.grids["grid_id"], c.grids["change"], strict=True))
    assert kinds == {G2: "staff", "150422100201002": "added", "150422100201003": "added", G1: "removed"}
    # G1's five households change grid (same manager), G2's three change manager
    assert len(c.households) == 8
    assert set(c.households["hh_id"]) == {"H0", "H1", "H2", "H3", "H4", "H5", "H6", "H7"}
    assert c.workload.set_index("staff_id")["change"].to_dict() == {"S1": -3, "S2": 3}
    assert c.summary["added"] == 2 and c.summary["removed"] == 1


def test_compare_detects_a_reshaped_boundary(grids, households):
    b = reshape_grid(grids, G1, shapely.box(119.015, 42.99, 119.025, 43.015), households=households)
    c = compare_plans(grids, b, households=households)
    assert sorted(c.grids["grid_id"]) == [G1, G2] and set(c.grids["change"]) == {"geometry"}
    assert c.households[["hh_id", "grid_before", "grid_after"]].values.tolist() == [["H5", G2, G1]]
    assert c.workload.empty  # both grids belong to S1
