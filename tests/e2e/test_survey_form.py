"""农户信息采集 on a phone (390×844): every field of the survey form is reachable without sideways scrolling, and
saving a survey 已迁出 takes the household off the to-do list. Run: pytest -m e2e tests/e2e/test_survey_form.py"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot, sign_in

pytestmark = pytest.mark.e2e

LABELS = ("采集农户（待走访的在前）", "采集结果", "采集日期", "不符合条件的原因", "主体类型", "家庭人口", "劳动力",
          "耕地（亩）", "草场（亩）", "牛（头）", "羊（只）", "猪（头）", "其他牲畜（头/只）", "农机具", "农机具价值（元）",
          "住房", "住房面积（平方米）", "主要收入来源", "家庭年收入（元）", "负债合计（元）", "其中他行负债（元）",
          "用信需求金额（元）", "需求用途", "意向产品", "职务级别（公职人员）", "工资由农信社代发（公职人员）", "可提供担保",
          "同意查询征信", "备注（补充资料时写明还缺什么）")


@pytest.fixture(scope="module")
def surveyor(e2e_workspace) -> tuple[str, int]:
    """(username, households to visit) of a customer manager with several households left to visit (taken from
    the end of the list: tests/e2e/test_workbench.py takes its customer manager from the start)."""
    from grids.auth import Account
    from grids.scope import ScopedWorkspace
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(e2e_workspace)
    accounts = ws.read("accounts")
    for row in accounts[accounts["role"] == "customer_manager"].tail(20).iloc[::-1].itertuples():
        sw = ScopedWorkspace(ws, Account(row.username, row.role, branch_id=row.branch_id, staff_id=row.staff_id))
        left = len(sw.to_do())
        if left >= 2:
            return row.username, left
    pytest.skip("no customer manager with households left to visit")


def todo_count(page) -> int:
    text = page.get_by_text(re.compile(r"^待走访：")).inner_text()
    return int(re.sub(r"\D", "", text))


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box ``label`` (tapping it open, then the option)."""
    page.locator('[data-testid="stSelectbox"]', has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_survey_form_on_a_phone(phone, surveyor):
    username, left = surveyor
    sign_in(phone, username)
    phone.get_by_role("heading", name="走访工作台").wait_for(timeout=60_000)
    phone.get_by_role("heading", name="农户信息采集").wait_for(timeout=60_000)
    assert todo_count(phone) == left
    phone.get_by_text("填写采集表", exact=True).click()  # the form is built when its section opens
    phone.get_by_role("button", name="保存采集").wait_for(timeout=60_000)
    for label in LABELS:  # every field: there, visible once scrolled to, inside the phone's width
        field = phone.get_by_text(label, exact=True).first
        field.scroll_into_view_if_needed(timeout=15_000)
        assert field.is_visible(), label
        box = field.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, (label, box)
    save = phone.get_by_role("button", name="保存采集")
    save.scroll_into_view_if_needed()
    assert save.is_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px wide)"
    phone.get_by_role("heading", name="农户信息采集").scroll_into_view_if_needed()
    screenshot(phone, "survey_form_phone")
    choose(phone, "采集结果", "已迁出")
    save.click()
    phone.get_by_text(re.compile("已保存采集：.*已迁出")).wait_for(timeout=60_000)
    assert todo_count(phone) == left - 1
    screenshot(phone, "survey_form_phone_saved")
