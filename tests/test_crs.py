"""GCJ-02 against published reference points, the round-trip bound, zone choice."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from grids.crs import gcj02_to_wgs84, gk_crs_for, gk_zone_epsg, to_gk, wgs84_to_gcj02
from grids.errors import ValidationError

# (wgs84 lon, lat) -> (gcj02 lon, lat), values published by coordtransform (wandergis), the Python
# geoToolbox tests and the geotool CLI tests; the standard algorithm reproduces them to 1e-9 degrees.
# wandergis/coordtransform is the reference implementation: we match it to 1e-9 degrees. The other two use
# slightly different constants; they agree within 1e-6 degrees (about 0.1 m).
REFERENCE = [
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164), 1e-9),
    ((116.0, 40.0), (116.006141221789, 40.001213650174), 1e-6),
    ((121.0917077, 30.6107779), (121.09626935575027, 30.608604331756705), 1e-6),
]


@pytest.mark.parametrize(("wgs", "gcj", "tol"), REFERENCE)
def test_forward_matches_published_points(wgs, gcj, tol):
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=tol)
    assert lat == pytest.approx(gcj[1], abs=tol)


def test_inverse_matches_published_point():
    # coordtransform's one-step inverse of (116.404, 39.915) is within ~1e-5 degrees of the exact inverse;
    # gcoord iterates (to ~2e-7 degrees); ours converges to 1e-10 degrees, so forward(ours) == input.
    lon, lat = gcj02_to_wgs84(123.0, 45.0)
    assert lon == pytest.approx(122.99395597, abs=1e-6)
    assert lat == pytest.approx(44.99804071, abs=1e-6)
    lon, lat = gcj02_to_wgs84(116.404, 39.915)
    assert lon == pytest.approx(116.39775550083061, abs=2e-5)
    assert lat == pytest.approx(39.91359571849836, abs=2e-5)
    assert wgs84_to_gcj02(lon, lat) == pytest.approx((116.404, 39.915), abs=1e-10)


def test_round_trip_within_one_centimetre_across_china():
    rng = np.random.default_rng(0)
    lon = rng.uniform(73.5, 135.0, 200_000)
    lat = rng.uniform(3.9, 53.5, 200_000)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    # metres: 1 degree of latitude ~ 111 km; longitude scaled by cos(lat)
    err = np.hypot((back_lon - lon) * 111_320 * np.cos(np.radians(lat)), (back_lat - lat) * 110_574)
    assert err.max() < 0.01


def test_offset_is_hundreds_of_metres_in_chifeng():
    lon, lat = wgs84_to_gcj02(119.39, 43.98)
    metres = np.hypot((lon - 119.39) * 111_320 * np.cos(np.radians(43.98)), (lat - 43.98) * 110_574)
    assert 100 < metres < 700


def test_outside_china_unchanged_and_scalars_stay_scalars():
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(-74.0, 40.7) == (-74.0, 40.7)
    lon, _ = wgs84_to_gcj02(np.array([2.35, 119.0]), np.array([48.85, 43.0]))
    assert lon[0] == 2.35 and lon[1] != 119.0
    assert isinstance(wgs84_to_gcj02(119.0, 43.0)[0], float)


@pytest.mark.parametrize(
    ("lon", "epsg"),
    [(75.0, 4534), (76.4, 4534), (76.6, 4535), (119.39, 4549), (120.0, 4549), (121.6, 4550), (135.0, 4554),
     (73.0, 4534), (137.0, 4554)],
)
def test_gk_zone_is_nearest_central_meridian(lon, epsg):
    assert gk_zone_epsg(lon) == epsg


@pytest.mark.parametrize("lon", [70.0, 140.0, 59.0, -60.0])
def test_gk_zone_refuses_longitudes_outside_china(lon):
    """Issue 14: data 60° away used to get the nearest zone (4534/4554) silently, with areas far too large."""
    with pytest.raises(ValidationError, match="不在中国境内"):
        gk_zone_epsg(lon)


def test_gk_zone_rejects_impossible_longitude():
    with pytest.raises(ValidationError, match="经纬度颠倒"):
        gk_zone_epsg(435.0)


def test_to_gk_projects_to_zone_of_centre_and_measures_metres():
    box = gpd.GeoSeries([shapely.box(119.0, 43.0, 119.01, 43.01)], crs=4490)
    projected = to_gk(box)
    assert projected.crs.to_epsg() == 4549
    # 0.01 deg x 0.01 deg at 43N is about 813 m x 1112 m
    assert projected.area.iloc[0] == pytest.approx(813 * 1112, rel=0.01)


def test_gk_crs_requires_a_crs():
    with pytest.raises(ValidationError, match="set_crs"):
        gk_crs_for(gpd.GeoSeries([shapely.Point(119, 43)]))


def test_gk_crs_for_ignores_a_few_stray_points_but_refuses_data_abroad():
    import geopandas as gpd
    import shapely

    pts = [shapely.Point(119.3, 43.9), shapely.Point(119.4, 44.0), shapely.Point(-0.16, 43.9)]
    assert gk_crs_for(gpd.GeoSeries(pts, crs=4490)) == 4549  # the stray row at 0°E is the importer's to refuse
    with pytest.raises(ValidationError, match="不在中国境内"):
        gk_crs_for(gpd.GeoSeries([shapely.Point(59.3, 43.9), shapely.Point(59.4, 44.0)], crs=4490))
