"""End-to-end: the app in headless chromium against the county workspace. Run: pytest -m e2e tests/e2e"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.e2e.conftest import open_page, screenshot, sign_in

pytestmark = pytest.mark.e2e

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'

# painted pixels of the Leaflet canvas(es) in the overlay pane (polygons are drawn on a canvas)
PAINTED = """() => {
  let n = 0;
  for (const c of document.querySelectorAll('.leaflet-overlay-pane canvas')) {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 16) { if (d[i] > 0) n++; }
  }
  return n;
}"""


def open_overview(page, username: str = "leader"):
    sign_in(page, username)
    page.get_by_role("heading", name="覆盖总览").wait_for(timeout=60_000)
    frame = page.frame_locator(MAP_FRAME)
    frame.locator(".leaflet-overlay-pane canvas").first.wait_for(state="attached", timeout=60_000)
    return frame


def map_frame(page):
    return next(f for f in page.frames if "streamlit_folium" in f.url)


def test_overview_map_paints_with_no_foreign_requests(page, e2e_workspace):
    open_overview(page)
    f = map_frame(page)
    deadline = time.monotonic() + 30
    while f.evaluate(PAINTED) < 1000 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f.evaluate(PAINTED) >= 1000, "the grid layer drew (almost) nothing on the canvas"
    assert f.locator(".grids-legend").count() == 1
    assert f.locator(".grids-legend details").evaluate("d => d.open") is True  # open on a wide map
    assert f.locator(".leaflet-marker-icon.marker-cluster").count() > 0, "uncovered households not clustered"
    # the browser decoded the delta-encoded household points to exactly the uncovered households' positions
    decoded = f.evaluate("""() => Object.values(window.map._layers).find(l => l.gridsPoints).gridsPoints""")
    got = np.sort(np.round(np.array(decoded).reshape(-1, 2), 5), axis=0)
    assert np.array_equal(got, np.sort(uncovered_points(e2e_workspace), axis=0))
    page.wait_for_timeout(500)
    screenshot(page, "overview")
    assert page.request_log.foreign() == []
    assert any("/app/static/vendor/leaflet/leaflet.js" in u for u in page.request_log.urls)


def largest_area(workspace):
    """(name, lon, lat) of the largest grid of the current plan (or village when there is no plan)."""
    from grids.crs import to_gk
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(workspace)
    areas = ws.read("grids") if ws.count("grids") else ws.read("admin_units", where="level = 'village'")
    big = areas.iloc[int(to_gk(areas).area.to_numpy().argmax())]
    p = big.geometry.representative_point()
    return str(big["name"]), p.x, p.y


def uncovered_points(workspace) -> np.ndarray:
    """(lat, lon) rounded to 5 decimals of the households not yet archived (every demo grid has staff)."""
    import shapely

    from grids.workspace import GpkgWorkspace

    hh = GpkgWorkspace(workspace).read("households", columns=["archived"])
    pts = hh[~hh["archived"].fillna(False).astype(bool) & hh.geometry.notna() & ~hh.geometry.is_empty]
    return np.round(shapely.get_coordinates(pts.geometry.values)[:, ::-1], 5)


def click_lonlat(page, lon, lat):
    """Click the map where (lon, lat) is drawn, after hiding the household clusters (a click on a cluster
    zooms in instead of selecting)."""
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # let the scroll settle before measuring
    f = map_frame(page)
    x, y = f.evaluate("""([lon, lat]) => {
        const map = window.map;
        const hide = document.createElement('style');
        hide.textContent = '.grids-hh-cluster { display: none !important; }';
        document.head.appendChild(hide);
        const p = map.latLngToContainerPoint([lat, lon]);
        const r = map.getContainer().getBoundingClientRect();  // the frame's own scroll included
        return [r.left + p.x, r.top + p.y];
    }""", [lon, lat])
    # positioned on the iframe element at click time (Streamlit's layout may still shift and scroll)
    page.locator(MAP_FRAME).click(position={"x": x, "y": y})


def test_clicking_a_household_bubble_zooms_in_and_selects_nothing(page):
    open_overview(page)
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    f = map_frame(page)
    zoom = f.evaluate("() => window.map.getZoom()")
    # the bubble nearest the map's centre (not under a control)
    box = f.evaluate("""() => { const r = window.map.getContainer().getBoundingClientRect();
        const c = [r.left + r.width / 2, r.top + r.height / 2];
        const all = [...document.querySelectorAll('.grids-hh-cluster')].map(e => e.getBoundingClientRect());
        all.sort((a, b) => Math.hypot(a.x - c[0], a.y - c[1]) - Math.hypot(b.x - c[0], b.y - c[1]));
        const b = all[0]; return [b.x + b.width / 2, b.y + b.height / 2]; }""")
    page.locator(MAP_FRAME).click(position={"x": box[0], "y": box[1]})
    deadline = time.monotonic() + 10
    while f.evaluate("() => window.map.getZoom()") == zoom and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert f.evaluate("() => window.map.getZoom()") == min(zoom + 2, 13)
    page.wait_for_timeout(1500)
    assert page.get_by_text("点击地图上的").count() == 1  # no grid was selected


def test_clicking_a_grid_shows_its_figures(page, e2e_workspace):
    name, lon, lat = largest_area(e2e_workspace)
    open_overview(page)
    hint = page.get_by_text("点击地图上的")
    hint.wait_for(timeout=30_000)
    click_lonlat(page, lon, lat)
    page.get_by_role("heading", name=name).wait_for(timeout=15_000)
    page.get_by_text("未覆盖农户：").wait_for(timeout=5_000)
    assert hint.count() == 0
    screenshot(page, "overview_clicked")
    assert page.request_log.foreign() == []


def test_login_page(page):
    page.goto(page.app_url + "/", wait_until="domcontentloaded")
    page.get_by_label("用户名").wait_for(timeout=60_000)
    page.get_by_text("wgt-demo-2026").wait_for(timeout=10_000)  # the demo hint, on the demo workspace
    screenshot(page, "login")
    page.get_by_label("用户名").fill("leader")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    page.get_by_text("用户名或密码错误").wait_for(timeout=15_000)
    screenshot(page, "login_failed")
    assert page.get_by_role("button", name="退出登录").count() == 0
    assert page.request_log.foreign() == []


def test_sign_out_returns_to_the_form(page):
    sign_in(page, "planner")
    page.get_by_role("link", name="网格规划").wait_for(state="attached", timeout=30_000)
    assert page.get_by_role("link", name="账号与审计").count() == 0  # not a planner's page
    page.get_by_role("button", name="退出登录").click()
    page.get_by_text("已退出登录").wait_for(timeout=30_000)
    assert page.get_by_label("用户名").count() == 1


def test_admin_page(page):
    open_page(page, "admin", "账号与审计")
    page.get_by_role("heading", name="新建账号").wait_for(timeout=15_000)
    page.get_by_text("b02", exact=True).first.wait_for(state="attached", timeout=15_000)
    screenshot(page, "admin_accounts")
    page.get_by_role("tab", name="审计记录").click()
    page.get_by_role("button", name="导出审计记录（CSV）").wait_for(timeout=15_000)
    screenshot(page, "admin_audit")
    assert page.request_log.foreign() == []


def test_data_page_lists_layers(page):
    open_page(page, "admin", "数据管理")
    page.get_by_role("heading", name="图层").wait_for(timeout=15_000)
    # st.dataframe draws on a canvas; its cells exist as hidden accessibility nodes
    page.get_by_text("households").first.wait_for(state="attached", timeout=15_000)
    screenshot(page, "data")
    # the uploader's fixed English texts are replaced by Chinese ones
    zones = page.locator('[data-testid="stFileUploaderDropzone"]')  # the file, and the optional names mapping
    zones.first.wait_for(state="attached", timeout=15_000)
    for i in range(zones.count()):
        zone = zones.nth(i)
        zone.scroll_into_view_if_needed()
        shown = zone.evaluate("""z => [getComputedStyle(z.querySelector('button p'), '::after').content,
            getComputedStyle(z.querySelector('[data-testid="stFileUploaderDropzoneInstructions"] span'), '::after').content]""")
        assert shown == ['"选择文件"', '"每个文件不超过 200 MB"']
    screenshot(page, "data_import")
    assert page.request_log.foreign() == []
