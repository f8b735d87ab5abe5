"""The overview map's household layer in a real browser (the session's headless chromium)."""

import geopandas as gpd
import pytest
import shapely

from grids import maps


@pytest.mark.e2e
def test_point_aggregate_counts_in_bubbles_and_shows_points_zoomed_in(browser, tmp_path):
    # in a real browser: 3 households close together and 1 far away → bubbles "3" and "1" at county
    # zoom; a click on a bubble zooms in on it; zoomed in on the three, three points and no bubble
    if not (maps.STATIC_DIR / "vendor" / "leaflet" / "leaflet.js").is_file():
        pytest.skip("static/vendor not fetched: run scripts/fetch_assets.sh")
    areas = gpd.GeoDataFrame(
        {"grid_id": ["G1", "G2"], "name": ["林东一网格", "林东二网格"], "coverage_rate": [0.9, 0.1],
         "staff_id": ["S1", None], "households": [10, 20]},
        geometry=[shapely.box(119.3, 43.9, 119.4, 44.0), shapely.box(119.4, 43.9, 119.5, 44.0)], crs=4490)
    pts = gpd.GeoDataFrame(geometry=shapely.points([(119.35, 43.95), (119.3501, 43.9501), (119.3502, 43.9499),
                                                    (119.47, 43.92)]), crs=4490)
    m = maps.overview_map(areas, uncovered=pts, points_zoom=14)
    layer = next(c for c in m._children.values() if isinstance(c, maps.PointAggregate))
    path = tmp_path / "map.html"
    path.write_text(maps.standalone_html(m), encoding="utf-8")
    page = browser.new_page(viewport={"width": 800, "height": 600})
    try:
        page.goto(path.as_uri())
        page.locator(".grids-hh-cluster").first.wait_for(timeout=10_000)
        labels = sorted(page.locator(".marker-cluster").all_inner_texts())
        assert labels == ["1", "3"]
        assert page.locator(".leaflet-marker-icon.leaflet-interactive").count() == 2  # the bubbles take clicks
        zoom = page.evaluate(f"{m.get_name()}.getZoom()")
        page.locator(".marker-cluster", has_text="3").click()
        page.wait_for_function(f"{m.get_name()}.getZoom() === {min(zoom + 2, 14)}", timeout=10_000)
        page.evaluate(f"{m.get_name()}.setView([43.95, 119.3501], 16, {{animate: false}})")
        page.wait_for_function(f"{layer.get_name()}.getLayers().length === 3", timeout=10_000)
        assert page.locator(".marker-cluster").count() == 0
    finally:
        page.close()
