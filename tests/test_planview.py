"""grids.planview: which grid a drawing edits, the households of a grid, a staff change's hand-over — by hand,
in lon/lat degrees (EPSG:4490) on two unit-ish squares."""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.errors import ValidationError
from grids.planview import (
    apply_geometry,
    bounds_of,
    change_grids,
    grid_label,
    held_by_others,
    households_in,
    split_target,
)


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"grid_id": ["150422100201001", "150422100201002"],
                             "code": ["150422100201001", "150422100201002"], "name": ["甲", None],
                             "town_code": ["150422100", "150422100"], "households": [3, 1],
                             "staff_id": ["S1", "S2"], "branch_id": ["B1", "B1"]},
                            geometry=[shapely.box(119.0, 43.0, 119.01, 43.01), shapely.box(119.01, 43.0, 119.02, 43.01)],
                            crs=4490)


@pytest.fixture
def households() -> gpd.GeoDataFrame:
    pts = [(119.002, 43.005), (119.004, 43.005), (119.006, 43.005), (119.015, 43.005)]
    return gpd.GeoDataFrame({"hh_id": ["h1", "h2", "h3", "h4"]}, geometry=[shapely.Point(p) for p in pts], crs=4490)


def test_split_target_prefers_the_selected_grid_else_the_longest_crossing(grids):
    line = shapely.LineString([(119.008, 43.005), (119.019, 43.005)])  # 2 in the first grid, 9 in the second
    assert split_target(grids, line, selected=None) == "150422100201002"
    assert split_target(grids, line, selected="150422100201001") == "150422100201001"
    assert split_target(grids, line, selected="nowhere") == "150422100201002"
    with pytest.raises(ValidationError, match="没有经过任何网格"):
        split_target(grids, shapely.LineString([(120, 44), (120.1, 44)]), selected=None)


def test_apply_geometry_splits_with_a_line_and_refuses_a_polygon_without_selection_or_a_point(grids, households):
    line = shapely.LineString([(119.005, 42.99), (119.005, 43.02)])
    out, label, focus = apply_geometry(grids, line, selected=None, households=households, admin_units=None)
    assert label == "拆分网格 150422100201001"
    assert len(out) == 3 and "150422100201001" not in set(out["grid_id"])
    assert sorted(out["households"].tolist()) == [1, 1, 2]  # h1, h2 west of the cut; h3 east; h4 untouched
    assert focus == bounds_of(grids.geometry.iloc[0])
    with pytest.raises(ValidationError, match="没有选中网格"):
        apply_geometry(grids, shapely.box(119.0, 43.0, 119.005, 43.01), selected=None, households=households,
                       admin_units=None)
    with pytest.raises(ValidationError, match="不支持的图形"):
        apply_geometry(grids, shapely.Point(119.0, 43.0), selected="150422100201001", households=households,
                       admin_units=None)


def test_households_in_counts_points_and_hand_moves(grids, households):
    assert households_in(grids, "150422100201001", households) == ["h1", "h2", "h3"]
    moved = grids.assign(hh_overrides=[None, "h1"])  # h1 moved by hand into the second grid
    assert households_in(moved, "150422100201001", households) == ["h2", "h3"]
    assert households_in(moved, "150422100201002", households) == ["h4", "h1"]
    assert households_in(grids, "missing", households) == []


def test_grid_label_and_held_by_others(grids):
    assert grid_label(grids) == {"150422100201001": "甲（150422100201001，3 户）",
                                 "150422100201002": "150422100201002（150422100201002，1 户）"}
    assert held_by_others(grids, pd.DataFrame({"staff_id": ["S1"]})) == ["150422100201002"]


def test_change_grids_shows_the_grids_a_newcomer_takes_over(grids):
    change = SimpleNamespace(moves=pd.DataFrame({"grid_id": ["150422100201002", "elsewhere"], "after": ["S9", "S9"]}),
                             staff={"staff_id": "S9", "name": "新人"})
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["张", "李"]})
    out, moved, people = change_grids(grids, change, staff)
    assert out["staff_id"].tolist() == ["S1", "S9"] and grids["staff_id"].tolist() == ["S1", "S2"]
    assert moved == ["150422100201002"]
    assert people.to_dict("records") == [{"staff_id": "S1", "name": "张"}, {"staff_id": "S9", "name": "新人"}]
