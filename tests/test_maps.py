"""grids.maps: offline assets, basemaps and the GCJ-02 shift, the overview map, clicks, size budget."""

from __future__ import annotations

import json
import re

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids import maps
from grids.crs import wgs84_to_gcj02
from grids.errors import ValidationError

URL = re.compile(r"""(?:https?:)?//([A-Za-z0-9.{}-]+\.[A-Za-z]{2,})""")


def js(text: str) -> str:
    """``text`` as folium writes it into the page (JSON-escaped)."""
    return json.dumps(text)[1:-1]


def hosts(html: str) -> set[str]:
    """Every host named in a URL of ``html``."""
    return set(URL.findall(html))


@pytest.fixture
def areas():
    # two 0.1° × 0.1° grids side by side near 林东; G2 has no staff
    return gpd.GeoDataFrame(
        {"grid_id": ["G1", "G2"], "name": ["林东一网格", "林东二网格"], "coverage_rate": [0.9, 0.1],
         "staff_id": ["S1", None], "households": [10, 20]},
        geometry=[shapely.box(119.3, 43.9, 119.4, 44.0), shapely.box(119.4, 43.9, 119.5, 44.0)], crs=4490,
    )


@pytest.fixture
def admin():
    return gpd.GeoDataFrame(
        {"code": ["150422", "150422100"], "name": ["巴林左旗", "林东镇"], "level": ["county", "town"],
         "parent_code": [None, "150422"]},
        geometry=[shapely.box(119.2, 43.8, 119.6, 44.1), shapely.box(119.3, 43.9, 119.5, 44.0)], crs=4490,
    )


@pytest.fixture
def points():
    return gpd.GeoDataFrame(geometry=[shapely.Point(119.31234567, 43.91234567), shapely.Point(119.45, 43.95), None],
                            crs=4490)


def test_offline_overview_names_no_external_host(areas, admin, points):
    branches = gpd.GeoDataFrame({"name": ["林东营业部"]}, geometry=[shapely.Point(119.35, 43.95)], crs=4490)
    html = maps.overview_map(areas, admin_units=admin, uncovered=points, branches=branches).get_root().render()
    assert hosts(html) == set()
    for asset in ("leaflet/leaflet.js", "leaflet/leaflet.css"):
        assert f'"/app/static/vendor/{asset}"' in html
    # folium's bootstrap / awesome-markers / jquery are not loaded at all, nor the cluster plugin (the
    # households are counted by our own script)
    assert "bootstrap" not in html and "awesome" not in html and "jquery" not in html
    assert "markercluster" not in html.lower()


def test_overview_layers_legend_and_flags(areas, admin, points):
    html = maps.overview_map(areas, admin_units=admin, uncovered=points).get_root().render()
    assert js("林东一网格") in html and js("林东二网格") in html
    assert maps.rate_color(0.9) in html and maps.rate_color(0.1) in html  # fills by coverage
    assert "grids-legend" in html and js("无人负责（1 个）") in html  # G2 flagged in the legend
    assert js("未建档农户（2）") in html  # the empty geometry is skipped
    assert js("未建档农户 2 户（放大逐户显示）") in html  # and named in the legend
    assert "pointsZoom = 13" in html
    assert "L.control.scale({imperial: false})" in html and "L.control.scale()" not in html  # metres only


def test_households_are_sent_delta_encoded_and_decode_to_the_rounded_points(areas, points):
    html = maps.overview_map(areas, uncovered=points, precision=5).get_root().render()
    steps = json.loads(re.search(r"var steps = (\[[-0-9,]*\])", html).group(1))
    latlon = np.cumsum(np.array(steps).reshape(-1, 2), axis=0) / 1e5  # the running sum the browser does
    assert sorted(map(tuple, latlon.round(5).tolist())) == [(43.91235, 119.31235), (43.95, 119.45)]


def test_encoded_points_round_trip_in_any_number():
    rng = np.random.default_rng(1)
    lonlat = rng.uniform([118.8, 43.5], [119.8, 44.4], (5_000, 2))
    lonlat[10] = lonlat[11]  # duplicates survive
    steps = maps.encode_points(lonlat, precision=5)
    back = np.cumsum(steps.reshape(-1, 2), axis=0)[:, ::-1] / 1e5
    assert np.array_equal(np.sort(back.round(5), axis=0), np.sort(lonlat.round(5), axis=0))
    assert len(maps.encode_points(np.empty((0, 2)))) == 0
    # Hilbert order keeps the steps short: well under the ~21 bytes a point takes as a plain array
    assert len(",".join(map(str, steps.tolist()))) / len(lonlat) < 13


def test_geojson_is_sent_compact(areas):
    html = maps.overview_map(areas).get_root().render()
    assert '"type":"FeatureCollection"' in html and '"type": "FeatureCollection"' not in html


def test_custom_asset_base(areas):
    html = maps.overview_map(areas, asset_base="/static/maps").get_root().render()
    assert '"/static/maps/leaflet/leaflet.js"' in html and "/app/static" not in html


def test_plugins_are_localized_and_unknown_assets_refused():
    m = maps.OfflineMap()
    folium.plugins.Draw().add_to(m)
    folium.plugins.Fullscreen().add_to(m)
    html = m.get_root().render()
    assert hosts(html) == set()
    assert "/app/static/vendor/leaflet-draw/leaflet.draw.js" in html
    assert "/app/static/vendor/leaflet.fullscreen/Control.FullScreen.js" in html
    m2 = maps.OfflineMap()
    folium.plugins.HeatMap([[43.9, 119.3]]).add_to(m2)
    with pytest.raises(ValidationError, match=r"HeatMap.*fetch_assets\.sh"):
        m2.get_root().render()


def test_popup_brings_local_jquery_and_icons_are_refused():
    m = maps.OfflineMap()
    folium.Marker([43.9, 119.3], popup=maps.Popup("林东")).add_to(m)
    html = m.get_root().render()
    assert "/app/static/vendor/jquery/jquery.min.js" in html and hosts(html) == set()
    m2 = maps.OfflineMap()
    folium.Marker([43.9, 119.3], icon=folium.Icon(color="red")).add_to(m2)
    with pytest.raises(ValidationError, match="CircleMarker"):
        m2.get_root().render()


def test_amap_shifts_display_to_gcj02(areas):
    m = maps.overview_map(areas, basemap="amap", simplify_m=0)
    html = m.get_root().render()
    assert "autonavi.com" in " ".join(hosts(html))
    # the corner (119.3, 43.9) of G1 is drawn at its GCJ-02 position, rounded to 5 decimals
    gx, gy = wgs84_to_gcj02(119.3, 43.9)
    assert f"[{round(gx, 5)},{round(gy, 5)}]" in html
    assert "[119.3,43.9]" not in html
    # and a click there maps back to G1, and drawn shapes come back in storage coordinates
    assert maps.pick_feature(areas, lon=gx + 0.0001, lat=gy + 0.0001, basemap="amap") == "G1"
    line = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[gx, gy], [gx + 0.01, gy]]}}
    x0, y0 = maps.drawing_to_geometry(line, basemap="amap").coords[0]
    assert abs(x0 - 119.3) < 1e-8 and abs(y0 - 43.9) < 1e-8


def test_offline_and_osm_do_not_shift(areas):
    html = maps.overview_map(areas, basemap="osm", simplify_m=0).get_root().render()
    assert hosts(html) == {"tile.openstreetmap.org"}
    assert "[119.3,43.9]" in html
    assert "tileerror" in html  # an unreachable tile server shows a notice, nothing else breaks


def test_tianditu_needs_a_key_and_custom_a_url(areas):
    with pytest.raises(ValidationError, match="tianditu_key"):
        maps.overview_map(areas, basemap="tianditu")
    html = maps.overview_map(areas, basemap="tianditu", tianditu_key="abc123").get_root().render()
    assert "tk=abc123" in html and hosts(html) == {"t{s}.tianditu.gov.cn"}
    with pytest.raises(ValidationError, match="GRIDS_TILE_URL"):
        maps.tile_layers("custom")
    with pytest.raises(ValidationError, match="可选"):
        maps.tile_layers("google")


def test_pick_feature(areas):
    assert maps.pick_feature(areas, lon=119.35, lat=43.95) == "G1"
    assert maps.pick_feature(areas, lon=119.45, lat=43.95) == "G2"
    assert maps.pick_feature(areas, lon=120.0, lat=43.95) is None


def test_display_frame_keeps_shared_edges_and_input(areas):
    before = areas.geometry.copy()
    wiggly = areas.copy()
    # add 200 collinear-ish vertices along the shared edge x = 119.4
    ys = np.linspace(43.9, 44.0, 202)[1:-1]
    edge = [(119.4 + (1e-6 if i % 2 else 0), y) for i, y in enumerate(ys)]
    left = shapely.Polygon([(119.3, 43.9), (119.4, 43.9), *edge, (119.4, 44.0), (119.3, 44.0)])
    right = shapely.Polygon([(119.4, 43.9), (119.5, 43.9), (119.5, 44.0), (119.4, 44.0), *edge[::-1]])
    wiggly.geometry = [left, right]
    out = maps.display_frame(wiggly, simplify_m=5)
    assert shapely.get_num_coordinates(out.geometry.iloc[0]) < 10
    # the two simplified grids still meet without gap or overlap
    assert out.geometry.iloc[0].intersection(out.geometry.iloc[1]).area < 1e-12
    assert out.geometry.union_all().area == pytest.approx(wiggly.geometry.union_all().area, rel=1e-6)
    assert areas.geometry.equals(before)


def test_unit_coverage_counts_by_code():
    units = gpd.GeoDataFrame(
        {"code": ["150422100", "150422100201", "150422100202"], "name": ["镇", "甲村", "乙村"],
         "level": ["town", "village", "village"], "parent_code": ["150422", "150422100", "150422100"]},
        geometry=[shapely.box(0, 0, 2, 1), shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4490)
    hh = gpd.GeoDataFrame({"village_code": ["150422100201", "150422100201", "150422100202"],
                           "archived": [True, False, True]}, geometry=[None] * 3, crs=4490)
    town = maps.unit_coverage(units, hh, level="town")
    assert town[["households", "covered"]].values.tolist() == [[3, 2]]
    assert town["coverage_rate"].iloc[0] == pytest.approx(2 / 3)
    with pytest.raises(ValidationError, match="level"):
        maps.unit_coverage(units, hh, level="county")


def test_standalone_html_inlines_everything(areas, points, tmp_path):
    if not (maps.STATIC_DIR / "vendor" / "leaflet" / "leaflet.js").is_file():
        pytest.skip("static/vendor not fetched: run scripts/fetch_assets.sh")
    html = maps.standalone_html(maps.overview_map(areas, uncovered=points))
    assert "/app/static" not in html
    assert re.search(r"<script src=|<link rel=\"stylesheet\" href=", html) is None
    assert "grids-hh-cluster" in html and "data:image/png;base64," in html
    # nothing is loaded from elsewhere (URLs left in library comments or attribution links are not loads)
    loads = (re.findall(r"""<(?:script|img|iframe)[^>]*\ssrc=["'](https?:[^"']+)""", html)
             + re.findall(r"""<link[^>]*\shref=["'](https?:[^"']+)""", html)
             + re.findall(r"url\((['\"]?)https?:", html))
    assert loads == []


def test_standalone_html_names_missing_assets(areas, tmp_path):
    with pytest.raises(ValidationError, match=r"fetch_assets\.sh"):
        maps.standalone_html(maps.overview_map(areas), static_dir=tmp_path)


def test_overview_size_budget_for_county_scale():
    # 1,500 grids of ~40 vertices and 25k uncovered households: the brief's county, well under 3 MB
    rng = np.random.default_rng(0)
    xs, ys = np.meshgrid(np.linspace(118.8, 119.8, 50), np.linspace(43.5, 44.4, 30))
    cells = [shapely.box(x, y, x + 0.02, y + 0.03).segmentize(0.002) for x, y in zip(xs.ravel(), ys.ravel(),
                                                                                       strict=True)]
    grid = gpd.GeoDataFrame({"grid_id": [f"G{i}" for i in range(len(cells))], "name": "网格",
                             "coverage_rate": rng.random(len(cells)), "staff_id": "S"}, geometry=cells, crs=4490)
    pts = gpd.GeoDataFrame(geometry=shapely.points(rng.uniform([118.8, 43.5], [119.8, 44.4], (25_000, 2))),
                           crs=4490)
    html = maps.overview_map(grid, uncovered=pts).get_root().render()
    size_mb = len(html.encode()) / 1e6
    naive = len(json.dumps(grid.to_geo_dict()).encode()) / 1e6 + 25_000 * 200 / 1e6  # GeoJSON + Marker each
    print(f"overview {size_mb:.2f} MB vs naive {naive:.2f} MB")
    assert size_mb < 3.0
    assert size_mb < naive / 2


def test_point_aggregate_sends_a_flat_array_without_the_cluster_plugin():
    m = maps.OfflineMap()
    layer = maps.PointAggregate(np.array([[119.312345678, 43.9], [119.4, 43.95]]), name="户", points_zoom=12,
                                cell_px=50)
    layer.add_to(m)
    html = m.get_root().render()
    assert "var steps = [4390000,11931235,5000,8765]" in html  # 119.312345678 rounded to 5 decimals
    assert "pointsZoom = 12, cell = 50" in html
    assert "markercluster" not in html.lower() and hosts(html) == set()


def test_point_cluster_still_loads_its_plugin_locally():
    m = maps.OfflineMap()
    maps.PointCluster(np.array([[119.3, 43.9]]), name="户").add_to(m)
    html = m.get_root().render()
    assert "L.markerClusterGroup" in html and hosts(html) == set()
    assert '"/app/static/vendor/leaflet.markercluster/leaflet.markercluster.js"' in html


def _outline_layers(m: folium.Map) -> dict[str, list]:
    """Name → coordinates of every outline layer (non-interactive GeoJson) of ``m``."""
    return {c.layer_name: [f["geometry"]["coordinates"] for f in c.data["features"]]
            for c in m._children.values() if isinstance(c, folium.GeoJson) and c.layer_name}


def test_outline_layers_are_reused_for_the_same_frames_and_redrawn_for_new_ones(admin):
    first = maps.base_map(admin_units=admin)
    again = maps.base_map(admin_units=admin)
    assert _outline_layers(first) == _outline_layers(again) and set(_outline_layers(first)) == {"旗县", "镇界"}
    # the same GeoJSON is handed out again, not recomputed
    shared = [c.data for c in again._children.values() if isinstance(c, folium.GeoJson)]
    assert [id(d) for d in shared] == [id(c.data) for c in first._children.values() if isinstance(c, folium.GeoJson)]
    # a changed layer (a new frame: the next workspace revision) is drawn anew
    moved = admin.copy()
    moved.geometry = moved.geometry.translate(0.5, 0)
    redrawn = _outline_layers(maps.base_map(admin_units=moved))
    assert redrawn != _outline_layers(first)
    assert redrawn["镇界"][0][0][0][0] == pytest.approx(_outline_layers(first)["镇界"][0][0][0][0] + 0.5)
    # a frame changed in place (another extent) is not mistaken for the one drawn before
    admin.geometry = admin.geometry.translate(0, 0.25)
    assert _outline_layers(maps.base_map(admin_units=admin)) != _outline_layers(first)
    # another basemap shifts the lines (GCJ-02), so it is another entry
    assert _outline_layers(maps.base_map(admin_units=admin, basemap="amap")) != \
        _outline_layers(maps.base_map(admin_units=admin))


# -- households known only by village (issue 14): a count at the village seat, never invented points ----------


@pytest.fixture
def village_only():
    """Two households with their own point, three known only by a village whose name carries markup (one of
    them with a stored point the importer did not take: ``placed_by`` ``name``)."""
    from grids import placement

    v = "150422100201"
    admin = gpd.GeoDataFrame({"code": [v], "name": ['三家子村<img src=x onerror="alert(1)">'], "level": ["village"]},
                             geometry=[shapely.box(119.3, 43.9, 119.4, 44.0)], crs=4490)
    seats = gpd.GeoDataFrame({"code": [v]}, geometry=[shapely.Point(119.37, 43.97)], crs=4490)
    hh = gpd.GeoDataFrame({"hh_id": list("abcde"), "village_code": v,
                           "placed_by": ["point", "point", "name", "code", "code"]},
                          geometry=[shapely.Point(119.31, 43.91), shapely.Point(119.32, 43.92),
                                    shapely.Point(119.35, 43.95), None, None], crs=4490)
    return hh.assign(placement=placement.placement(hh, admin)), placement.village_counts(hh, admin, seats=seats)


def test_village_only_households_are_a_count_at_the_seat_not_points(areas, village_only):
    hh, counts = village_only
    html = maps.overview_map(areas, uncovered=hh, unlocated=counts).get_root().render()
    steps = json.loads(re.search(r"var steps = (\[[^\]]*\])", html).group(1))
    assert len(steps) == 4  # two points: a and b; c's stored point (placed by name) is not drawn
    assert js("未建档农户（2）") in html
    data = json.loads(re.search(r"var d = (\[.*?\]), color", html).group(1))
    assert data[:3] == [43.97, 119.37, 3]  # one marker, at the seat, with the count
    name = data[3]  # the tooltip: the escaped name, then “：3 户未定位”
    assert name == maps.html_text('三家子村<img src=x onerror="alert(1)">')
    assert "<img" not in name and "&lt;img" in name
    assert "<img" not in html
    assert 'suffix = "' + js("：{n} 户未定位") + '"' in html and "bindTooltip(d[i + 3] + suffix" in html
    assert counts["label"].iloc[0] == '三家子村<img src=x onerror="alert(1)">：3 户未定位'  # the same words
    assert js("仅知村的农户 3 户（1 个村，标在村委会）") in html


def test_workbench_style_uncovered_frame_skips_invented_points_without_counts(areas, village_only):
    hh, _ = village_only
    html = maps.overview_map(areas, uncovered=hh.drop(columns=["placed_by"])).get_root().render()
    assert js("未建档农户（2）") in html  # placement alone decides
    assert "gridsVillages" not in html


def test_village_counts_keep_the_overview_small():
    # 1,500 grids, 20k households with points and 5k known only by village in 200 villages: the village layer
    # adds a few KB, where the same 5k as points would add ~10 bytes each
    from grids import placement

    rng = np.random.default_rng(1)
    xs, ys = np.meshgrid(np.linspace(118.8, 119.8, 50), np.linspace(43.5, 44.4, 30))
    cells = [shapely.box(x, y, x + 0.02, y + 0.03) for x, y in zip(xs.ravel(), ys.ravel(), strict=True)]
    grid = gpd.GeoDataFrame({"grid_id": [f"G{i}" for i in range(len(cells))], "name": "网格",
                             "coverage_rate": rng.random(len(cells)), "staff_id": "S"}, geometry=cells, crs=4490)
    vx, vy = np.meshgrid(np.linspace(118.8, 119.78, 20), np.linspace(43.5, 44.37, 10))
    codes = [f"150422100{k:03d}" for k in range(200)]
    admin = gpd.GeoDataFrame({"code": codes, "name": [f"第{k}村" for k in range(200)], "level": "village"},
                             geometry=[shapely.box(x, y, x + 0.05, y + 0.09) for x, y in
                                       zip(vx.ravel(), vy.ravel(), strict=True)], crs=4490)
    pts = gpd.GeoDataFrame({"village_code": rng.choice(codes, 20_000)},
                           geometry=shapely.points(rng.uniform([118.8, 43.5], [119.8, 44.4], (20_000, 2))), crs=4490)
    only = gpd.GeoDataFrame({"village_code": rng.choice(codes, 5_000)}, geometry=[None] * 5_000, crs=4490)
    hh = pd.concat([pts, only], ignore_index=True)
    base = len(maps.overview_map(grid, uncovered=pts).get_root().render().encode())
    counts = placement.village_counts(hh, admin)
    assert counts["households"].sum() == 5_000 and len(counts) == 200
    with_counts = len(maps.overview_map(grid, uncovered=hh, unlocated=counts).get_root().render().encode())
    print(f"overview {base / 1e6:.3f} MB, with 200 village counts {with_counts / 1e6:.3f} MB")
    assert with_counts - base < 200 * 50  # ~40 bytes a village
    assert with_counts - base < 5_000 * 5  # less than half of what 5k points would cost


def test_html_export_counts_village_only_households_at_the_seat(areas, village_only, tmp_path, monkeypatch):
    from grids import export

    hh, _ = village_only
    hh = hh.drop(columns=["placement"]).assign(archived=False)
    admin = gpd.GeoDataFrame({"code": ["150422100201"], "name": ["三家子村"], "level": ["village"]},
                             geometry=[shapely.box(119.3, 43.9, 119.4, 44.0)], crs=4490)
    located = pd.DataFrame({"grid_id": "G1"}, index=hh.index)
    captured = {}
    monkeypatch.setattr(maps, "standalone_html", lambda m: captured.setdefault("html", m.get_root().render()))
    export.write_html(hh, areas.assign(code=["W1", "W2"]), located, tmp_path / "m.html", admin_units=admin)
    html = captured["html"]
    assert len(json.loads(re.search(r"var steps = (\[[^\]]*\])", html).group(1))) == 4  # a and b only
    marker = json.loads(re.search(r"var d = (\[.*?\]), color", html).group(1))
    assert marker[2:] == [3, "三家子村"]


def test_village_count_labels_escape_the_hostile_corpus(areas):
    from grids import placement
    from tests.hostile import corpus
    from tests.test_hostile_maps import assert_safe

    names = corpus()
    codes = [f"150422100{k:03d}" for k in range(len(names))]
    admin = gpd.GeoDataFrame({"code": codes, "name": names, "level": "village"},
                             geometry=[shapely.box(119.3 + 0.001 * k, 43.9, 119.301 + 0.001 * k, 43.91)
                                       for k in range(len(names))], crs=4490)
    hh = pd.DataFrame({"village_code": codes, "placed_by": "name"})
    counts = placement.village_counts(hh, admin)
    assert len(counts) == len(names)
    assert_safe(maps.overview_map(areas, unlocated=counts).get_root().render())
