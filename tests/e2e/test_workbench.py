"""走访工作台 on a phone (390×844): a customer manager records a visit and sees the coverage figure change;
集中授信 as a branch manager. Run: pytest -m e2e tests/e2e/test_workbench.py"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import open_page, screenshot, sign_in

pytestmark = pytest.mark.e2e

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'


@pytest.fixture(scope="module")
def customer_manager(e2e_workspace) -> tuple[str, int, int]:
    """(username, households, archived) of a customer manager with households left to visit."""
    from grids.auth import Account
    from grids.coverage import county_summary
    from grids.scope import ScopedWorkspace
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(e2e_workspace)
    accounts = ws.read("accounts")
    for row in accounts[accounts["role"] == "customer_manager"].head(20).itertuples():
        sw = ScopedWorkspace(ws, Account(row.username, row.role, branch_id=row.branch_id, staff_id=row.staff_id))
        s = county_summary(sw.households())
        if 0 < s["archived"] < s["registered"]:
            return row.username, int(s["registered"]), int(s["archived"])
    pytest.skip("no customer manager with households left to visit")


def tall_screenshot(page, name: str, height: int = 3200) -> None:
    """The whole page at phone width (Streamlit scrolls an inner container, so full_page is one screen)."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(1200)
    screenshot(page, name)
    page.set_viewport_size(size)


def metric(page, label: str) -> str:
    """The value of the st.metric called ``label``."""
    box = page.locator('[data-testid="stMetric"]', has_text=label)
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_recording_a_visit_changes_coverage_on_a_phone(phone, customer_manager):
    username, registered, archived = customer_manager
    sign_in(phone, username)
    phone.get_by_role("heading", name="走访工作台").wait_for(timeout=60_000)
    phone.frame_locator(MAP_FRAME).locator(".leaflet-overlay-pane canvas").first.wait_for(
        state="attached", timeout=60_000)
    assert metric(phone, "我的农户") == f"{registered:,}"
    before = metric(phone, "建档率")
    assert before == f"{archived / registered * 100:.1f}%"
    phone.get_by_text(re.compile(r"^待走访：")).wait_for(timeout=15_000)
    phone.wait_for_timeout(800)
    # on a phone the legend is folded to its title (open it with a tap), so it does not cover the map
    legend = phone.frame_locator(MAP_FRAME).locator(".grids-legend details")
    assert legend.evaluate("d => d.open") is False
    screenshot(phone, "workbench_phone")
    tall_screenshot(phone, "workbench_phone_full")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px wide)"
    # a start point clicked on the map reorders the list
    phone.get_by_text("地图上点选").click()
    phone.get_by_text("在地图上点一下").wait_for(timeout=30_000)
    box = phone.locator(MAP_FRAME).bounding_box()
    phone.locator(MAP_FRAME).click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.6})
    phone.get_by_text(re.compile("起点：地图上选的位置")).wait_for(timeout=30_000)
    week_before = metric(phone, "近 7 天走访")
    # the form's first household is the nearest one; the default outcome is 已建档
    phone.get_by_role("button", name="记录走访").click()
    phone.get_by_text(re.compile("已记录：.*已建档")).wait_for(timeout=60_000)
    after = metric(phone, "建档率")
    assert after == f"{(archived + 1) / registered * 100:.1f}%" and after != before
    # the demo reads as of 2019-09-30: a visit recorded today is after its 7-day window (a live workspace, without
    # a reporting date, counts it: tests/test_app.py::test_recording_a_visit_updates_coverage)
    assert metric(phone, "近 7 天走访") == week_before
    tall_screenshot(phone, "workbench_phone_recorded")
    assert phone.request_log.foreign() == []


def test_rating_page(page):
    open_page(page, "b02", "集中授信")
    page.get_by_role("button", name="校验").click()
    page.get_by_text("还没有改动").wait_for(timeout=30_000)
    page.get_by_role("heading", name="白名单").wait_for(timeout=15_000)
    page.wait_for_timeout(800)
    screenshot(page, "rating")
    assert page.request_log.foreign() == []
