"""b01 records a 评定会 in the browser (issue 15): the session workbook is uploaded on the 集中授信 page; one
household carried and granted within the authority, one 3–3 tie returned for re-rating.

Run: pytest -m e2e tests/e2e/test_rating_session.py
"""

from __future__ import annotations

import io
import shutil

import openpyxl
import pytest

from tests.e2e.conftest import DEMO, AppServer, _complete, app_page, screenshot, settle, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PANEL = [("王村长", "村组干部"), ("李代表", "村民代表"), ("周代表", "村民代表"), ("赵主任", "信用社主任"), ("孙经理", "客户经理"),
         ("吴组长", "村组干部")]


def _workbook(village: str, hh_ids: list[str]) -> bytes:
    import pandas as pd

    from grids.session_workbook import session_template_bytes

    households = pd.DataFrame({"hh_id": hh_ids, "product": "福农卡"})
    data = session_template_bytes(households, village_code=village, panel=[{"name": n, "role": r} for n, r in PANEL],
                                  held_on="2019-09-20", place="村委会")
    book = openpyxl.load_workbook(io.BytesIO(data))
    res = book["评定结果"]
    heads = [c.value for c in res[1]]
    votes = [["同意"] * 6, ["同意"] * 3 + ["反对"] * 3]
    for r, row_votes in zip((2, 3), votes, strict=True):
        res.cell(r, heads.index("等级") + 1, "良好")
        res.cell(r, heads.index("金额（元）") + 1, 60000)
        for (name, _), vote in zip(PANEL, row_votes, strict=True):
            res.cell(r, heads.index(name) + 1, vote)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_b01_records_a_session_from_the_workbook_in_the_browser(browser, tmp_path):
    if not DEMO.exists():
        pytest.skip("needs workspace/demo.gpkg (scripts/setup.sh)")
    from grids.auth import Account
    from grids.scope import ScopedWorkspace
    from grids.workspace import GpkgWorkspace

    path = tmp_path / "county.gpkg"
    shutil.copy(DEMO, path)
    _complete(path)
    ws = GpkgWorkspace(path)
    hh = ScopedWorkspace(ws, Account("b01", "branch_manager", branch_id="B01")).households(
        columns=["hh_id", "village_code", "archived", "segment", "granted_amount"])
    ok = (hh["archived"].astype("boolean").fillna(False) & hh["segment"].isin(["普通农牧户", "农牧户"])
          & (hh["granted_amount"].fillna(0) == 0)).to_numpy(dtype=bool)
    village = hh[ok]["village_code"].value_counts().index[0]
    picked = hh[ok & (hh["village_code"] == village).to_numpy()]["hh_id"].head(2).tolist()
    file = tmp_path / "评定表.xlsx"
    file.write_bytes(_workbook(village, picked))

    server = AppServer(path)
    context, page = app_page(browser, server.url)
    try:
        sign_in(page, "b01", timeout=120_000)
        page.get_by_role("link", name="集中授信").click()
        page.get_by_role("heading", name="评定会（资信等级评定小组集体表决）").wait_for(timeout=120_000)
        settle(page)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(file))
        settle(page)
        page.get_by_role("button", name="按上传的评定表记录评定会").click()
        page.get_by_text("当场授信 1 户").wait_for(timeout=120_000)
        assert page.get_by_text("退回重评 1 户").count() >= 1
        screenshot(page, "rating_session_upload")
    finally:
        settle(page)
        context.close()
        server.stop()
    stored = GpkgWorkspace(path).read("households", columns=["hh_id", "grade", "granted_amount"]).set_index("hh_id")
    assert stored.loc[picked[0], "granted_amount"] == 60000.0 and stored.loc[picked[0], "grade"] == "良好"
    assert stored.loc[picked[1], "granted_amount"] == 0
    decisions = GpkgWorkspace(path).read("rating_decisions")  # the demo's own sessions are there too
    mine = decisions[decisions["hh_id"].isin(picked)].set_index("hh_id")
    assert [mine.loc[h, "outcome"] for h in picked] == ["已授信", "退回重评"]
