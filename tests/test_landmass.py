"""Tests of grids.landmass: islands of a county outline, joined by ferry lanes (metres, EPSG:4549)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from grids.landmass import land_parts, landmass_of, landmasses

GK = 4549
X0, Y0 = 500_000.0, 4_870_000.0


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def ferry(*xy: tuple[float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"class": ["ferry"]}, geometry=[shapely.LineString([(X0 + x, Y0 + y) for x, y in xy])],
                            crs=GK)


@pytest.fixture
def three_islands() -> gpd.GeoSeries:
    # big (25 km²), middle (4 km²) 2 km east of it, small (1 km²) 3 km north of the big one
    return gpd.GeoSeries([shapely.MultiPolygon([box(0, 0, 5000, 5000), box(7000, 0, 9000, 2000),
                                                box(0, 8000, 1000, 9000)])], crs=GK)


def test_parts_are_numbered_largest_first_and_each_is_its_own_landmass(three_islands):
    parts = land_parts(three_islands)
    assert shapely.area(np.asarray(parts.geometry.values)).round().tolist() == [25e6, 4e6, 1e6]
    assert parts["landmass"].tolist() == [0, 1, 2]


def test_a_ferry_joins_the_islands_it_lands_on(three_islands):
    parts = land_parts(three_islands, streets=ferry((5000, 1000), (7000, 1000)))
    assert parts["landmass"].tolist() == [0, 0, 1]
    masses = landmasses(three_islands, streets=ferry((5000, 1000), (7000, 1000)))
    assert masses["parts"].tolist() == [2, 1] and masses["area_km2"].round(3).tolist() == [29.0, 1.0]


def test_a_ferry_landing_farther_than_the_tolerance_from_the_shore_joins_nothing(three_islands):
    short = ferry((5000, 1000), (6850, 1000))  # stops 150 m short of the middle island
    assert land_parts(three_islands, streets=short)["landmass"].nunique() == 3
    assert land_parts(three_islands, streets=short, tolerance_m=200)["landmass"].nunique() == 2


def test_roads_other_than_ferries_join_nothing(three_islands):
    road = ferry((5000, 1000), (7000, 1000)).assign(**{"class": "主干道"})
    assert land_parts(three_islands, streets=road)["landmass"].nunique() == 3


def test_part_and_landmass_of_points_on_and_off_the_islands(three_islands):
    parts = land_parts(three_islands, streets=ferry((5000, 1000), (7000, 1000)))
    pts = gpd.GeoSeries([shapely.Point(X0 + 8000, Y0 + 1000), shapely.Point(X0 + 500, Y0 + 7900),
                         shapely.Point(X0 + 6800, Y0 + 1000)], crs=GK)  # middle island, off the small one, sea
    assert landmass_of(pts, parts, column="part").tolist() == [1, 2, 1]
    assert landmass_of(pts, parts).tolist() == [0, 1, 0]


def test_results_come_back_in_the_input_crs(three_islands):
    geo = three_islands.to_crs(4490)
    parts = land_parts(geo)
    assert parts.crs.equals(geo.crs)
    assert parts.to_crs(GK).area.round(-3).tolist() == [25e6, 4e6, 1e6]
