"""Road distances over islands, ferries and broken road networks (grids.assign.graph), by hand in metres."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from grids.assign.graph import road_distance_matrix
from grids.errors import ValidationError

GK = 4549
X0, Y0 = 500_000.0, 4_870_000.0


def pts(*xy: tuple[float, float]) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y) for x, y in xy], crs=GK)


def roads(*lines: list[tuple[float, float]], kinds: list[str] | None = None) -> gpd.GeoDataFrame:
    geoms = [shapely.LineString([(X0 + x, Y0 + y) for x, y in line]) for line in lines]
    return gpd.GeoDataFrame({"class": kinds or ["乡村道路"] * len(geoms)}, geometry=geoms, crs=GK)


def land(*boxes: tuple[float, float, float, float]) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes], crs=GK)


# two islands 2 km apart, a road along each, a ferry between the road ends; a third island with no road
ISLANDS = land((0, 0, 3000, 1000), (5000, 0, 8000, 1000), (0, 3000, 1000, 4000))
NET = roads([(0, 500), (3000, 500)], [(5000, 500), (8000, 500)], [(3000, 500), (5000, 500)],
            kinds=["乡村道路", "乡村道路", "ferry"])


def test_a_ferry_metre_counts_ferry_factor_road_metres():
    origin, target = pts((1000, 520)), pts((7000, 470))  # 20 m and 30 m off their roads
    d2 = road_distance_matrix(origin, target, NET, land=ISLANDS, ferry_factor=2.0)[0, 0]
    assert d2 == pytest.approx(20 + 2000 + 2 * 2000 + 2000 + 30)
    d1 = road_distance_matrix(origin, target, NET, land=ISLANDS, ferry_factor=1.0)[0, 0]
    assert d1 == pytest.approx(20 + 2000 + 2000 + 2000 + 30)
    with pytest.raises(ValidationError, match="渡轮"):
        road_distance_matrix(origin, target, NET, ferry_factor=0)


def test_an_island_without_roads_is_not_reached_across_water():
    origin, target = pts((1000, 520)), pts((500, 3500))  # the third island has no road
    assert np.isinf(road_distance_matrix(origin, target, NET, land=ISLANDS)[0, 0])
    # without the islands the place would walk 3 km over the sea to road A
    assert np.isfinite(road_distance_matrix(origin, target, NET)[0, 0])


def test_a_place_is_never_attached_to_a_road_on_another_island():
    # the target sits on island B right at the strait, 200 m from the end of road A's pier across the water
    net = roads([(0, 500), (3000, 500), (4800, 500)], [(5200, 500), (8000, 500)])
    isl = land((0, 0, 4800, 1000), (5000, 0, 8000, 1000))
    d = road_distance_matrix(pts((100, 500)), pts((5000, 500)), net, land=isl)[0, 0]
    assert np.isinf(d)  # no ferry: the islands do not meet by road
    assert np.isfinite(road_distance_matrix(pts((100, 500)), pts((5000, 500)), net)[0, 0])


def test_road_pieces_of_one_island_are_joined_off_road_where_they_come_closest():
    net = roads([(0, 500), (2000, 500)], [(2300, 500), (5000, 500)], [(2000, 900), (2000, 1000)])
    isl = land((0, 0, 5000, 1000))
    origin, target = pts((100, 510)), pts((4900, 490))
    assert np.isinf(road_distance_matrix(origin, target, net)[0, 0])
    d = road_distance_matrix(origin, target, net, land=isl)[0, 0]
    assert d == pytest.approx(10 + 1900 + 300 + 2600 + 10)


def test_a_place_may_leave_by_a_road_a_little_farther_than_its_nearest():
    # P is 200 m from a dead-end road and 300 m from the road that leads to T: it takes the latter
    net = roads([(0, 0), (1000, 0)], [(0, 500), (5000, 500)])
    d = road_distance_matrix(pts((500, 200)), pts((4900, 510)), net)[0, 0]
    assert d == pytest.approx(300 + 4400 + 10)


def test_no_way_passes_through_another_place():
    # T2 sits between the dead-end road and the long one: its access legs must not become a shortcut for T1
    net = roads([(0, 0), (1000, 0)], [(0, 500), (5000, 500)])
    origin = pts((900, -20))
    alone = road_distance_matrix(origin, pts((4900, 510)), net)[0, 0]
    together = road_distance_matrix(origin, pts((4900, 510), (600, 250)), net)[0]
    assert np.isinf(alone) and np.isinf(together[0]) and np.isfinite(together[1])
