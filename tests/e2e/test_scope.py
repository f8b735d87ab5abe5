"""Scope in the browser: a branch manager (b02) finds no household of another branch anywhere — not in the map
data, the tables, the page text nor the downloads. Run: pytest -m e2e tests/e2e/test_scope.py"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import shapely

from tests.e2e.conftest import screenshot, sign_in

pytestmark = pytest.mark.e2e

USER, BRANCH = "b02", "B02"
NAV_LINK = '[data-testid="stSidebarNavLink"]'
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
# a household id is a 19-digit code starting with the county code; in Arrow buffers ids are concatenated
# without separators, so every 19-digit window after "150422" is a candidate (overlapping matches)
LAT_LON = re.compile(r"(4\d\.\d{1,5}),\s*(1[12]\d\.\d{1,5})")
# the overview's household layer sends its points delta-encoded (grids.maps.encode_points)
STEPS = re.compile(r"var steps = \[([-0-9,]*)\], scale = (\d+)")


def _positions(blob: str) -> set[tuple[float, float]]:
    """Every (lat, lon) in ``blob``: plain numbers, and the decoded point layers."""
    found = {(float(a), float(b)) for a, b in LAT_LON.findall(blob)}
    for steps, scale in STEPS.findall(blob):
        if steps:
            latlon = np.cumsum(np.array(steps.split(","), dtype=np.int64).reshape(-1, 2), axis=0) / int(scale)
            found |= set(map(tuple, np.round(latlon, 5).tolist()))
    return found


@pytest.fixture(scope="module")
def truth(e2e_workspace):
    """hh_ids and display coordinates (lat, lon at 5 decimals) of B02's households and of everyone else's."""
    from grids.auth import Account
    from grids.scope import ScopedWorkspace
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(e2e_workspace)
    county = ScopedWorkspace(ws, Account("e2e", "leadership"))
    hh = county.households()
    loc = county.located()
    mine = loc["branch_id"].astype(object).eq(BRANCH).fillna(False).to_numpy(dtype=bool)
    geoms = np.asarray(hh.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    lat = np.round(shapely.get_y(geoms[ok]), 5)
    lon = np.round(shapely.get_x(geoms[ok]), 5)
    coords = np.array(list(zip(lat.tolist(), lon.tolist(), strict=True)), dtype=object)
    mine_coords = set(map(tuple, coords[mine[ok]]))
    ids = hh["hh_id"].astype(str).to_numpy()
    county_code = ws.meta["county_code"]
    return {
        "mine": set(ids[mine]), "other": set(ids[~mine]),
        "mine_coords": mine_coords, "other_coords": set(map(tuple, coords[~mine[ok]])) - mine_coords,
        "id_pattern": re.compile(rf"(?=({county_code}\d{{{19 - len(county_code)}}}))"),
    }


def _xlsx_text(path: Path) -> str:
    from openpyxl import load_workbook

    with path.open("rb") as f:  # the download's temporary path has no .xlsx suffix
        book = load_workbook(f, read_only=True)
        return "\n".join(str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                         for v in row if v is not None)


def _download(page, button: str) -> str:
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name=button).click()
    path = Path(info.value.path())
    return _xlsx_text(path) if info.value.suggested_filename.endswith(".xlsx") else path.read_text("utf-8-sig")


def _page_text(page) -> str:
    return "\n".join(f.content() for f in page.frames)


def test_branch_manager_sees_no_household_of_another_branch(page, truth):
    sign_in(page, USER)
    page.get_by_role("heading", name=re.compile("^覆盖总览")).wait_for(timeout=60_000)
    page.frame_locator(MAP_FRAME).locator(".leaflet-overlay-pane canvas").first.wait_for(
        state="attached", timeout=60_000)
    page.wait_for_timeout(1500)
    texts = [_page_text(page)]
    screenshot(page, "scope_b02_overview")
    page.get_by_role("tab", name="分镇统计").click()
    texts.append(_download(page, "下载分镇统计（CSV）"))

    titles = [t.strip().split("\n")[-1] for t in page.locator(NAV_LINK).all_inner_texts()]  # after the icon
    assert "集中授信" in titles and "数据管理" not in titles and "账号与审计" not in titles
    for title in titles[1:]:
        page.locator(NAV_LINK, has_text=title).click()
        page.get_by_role("heading", name=re.compile("^" + title)).wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        if title == "集中授信":
            page.get_by_role("button", name="校验").wait_for(timeout=30_000)
            texts.append(_download(page, "下载白名单（CSV）"))
            texts.append(_download(page, "下载白名单（Excel）"))
        texts.append(_page_text(page))
        screenshot(page, f"scope_b02_{title}")

    received = page.request_log.received().decode("utf-8", errors="replace")
    assert len(received) > 100_000, "recorded almost no websocket data: the check would prove nothing"
    blob = received + "\n".join(texts)
    ids = set(truth["id_pattern"].findall(blob))
    leaked = ids & truth["other"]
    assert not leaked, f"{len(leaked)} households of other branches reached the browser, e.g. {sorted(leaked)[:5]}"
    assert ids & truth["mine"], "no household id of the branch itself was seen: the search is broken"
    coords = _positions(blob)
    leaked_xy = coords & truth["other_coords"]
    assert not leaked_xy, f"{len(leaked_xy)} household positions of other branches sent, e.g. {sorted(leaked_xy)[:3]}"
    assert coords & truth["mine_coords"], "no household position of the branch was seen: the search is broken"
    assert page.request_log.foreign() == []


# Streamlit runs a script of pages/ directly, without app.py, while a fresh server process is in its legacy
# “pages directory” mode (until the first st.navigation call): the pages themselves must refuse to run.


@pytest.fixture(scope="module")
def fresh_server(e2e_workspace):
    from tests.e2e.conftest import AppServer

    server = AppServer(e2e_workspace)
    yield server
    server.stop()


@pytest.mark.parametrize("slug", ["overview", "rating", "workbench", "admin", "data", "staffing", "planning"])
def test_a_page_url_on_a_fresh_server_needs_sign_in(browser, fresh_server, slug):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        pg = context.new_page()
        pg.goto(f"{fresh_server.url}/{slug}", wait_until="domcontentloaded")
        pg.locator('[data-testid="stMain"] h1, [data-testid="stAlert"]').first.wait_for(timeout=60_000)
        pg.wait_for_timeout(1500)
        if slug == "overview":
            screenshot(pg, "fresh_server_page_url")
        assert pg.get_by_text("请先登录").count() == 1
        assert pg.locator('[data-testid="stMetric"], [data-testid="stDataFrame"], iframe').count() == 0
    finally:
        context.close()
