"""End-to-end on PostGIS: the app served from a PostGIS workspace (the demo migrated into the throwaway test
cluster) paints the overview and takes a households file through 数据管理 in a real browser.

Run: pytest -m e2e tests/e2e/test_postgis_app.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, AppServer, app_page, screenshot, settle, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_app(e2e_workspace, pg_url):
    """The e2e demo copy migrated into a fresh PostGIS schema, and the app serving it."""
    from grids.auth import DEMO_PASSWORD
    from tests.pg import fresh_schema, with_schema

    with fresh_schema(pg_url) as schema:
        target = with_schema(pg_url, schema)
        res = subprocess.run(
            [sys.executable, "-m", "grids", "migrate", str(e2e_workspace), target, "--user", "admin",
             "--keep-demo-accounts"],
            cwd=ROOT, env={**os.environ, "GRIDS_PASSWORD": DEMO_PASSWORD}, capture_output=True, text=True,
            timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
        server = AppServer(target)
        try:
            yield target, server
        finally:
            server.stop()


def test_the_app_on_postgis_paints_the_overview_and_imports_through_the_data_page(browser, pg_app, tmp_path):
    from grids.workspace import open_workspace

    target, server = pg_app
    ws = open_workspace(target)
    sample = ws.read("households", columns=["village_code", "group_code", "segment"]).head(2)
    before = ws.count("households")
    rev = ws.revision
    upload = tmp_path / "新增农户.csv"
    pd.DataFrame({"户号": ["PGE2E001", "PGE2E002"], "户主姓名": ["测试甲", "测试乙"],
                  "村代码": sample["village_code"].tolist(), "组代码": sample["group_code"].tolist(),
                  "客户类型": sample["segment"].tolist()}).to_csv(upload, index=False)

    context, page = app_page(browser, server.url)
    try:
        # leadership's landing page: the county map from PostGIS
        sign_in(page, "admin")
        page.frame_locator('iframe[title="streamlit_folium.st_folium"]').first \
            .locator(".leaflet-overlay-pane canvas, .leaflet-overlay-pane svg").first \
            .wait_for(state="attached", timeout=120_000)
        page.get_by_role("link", name="数据管理").click()
        page.get_by_role("heading", name="数据管理").wait_for(timeout=60_000)
        settle(page)
        box = page.locator('[data-testid="stSelectbox"]', has_text="导入到图层").locator("input")
        if not box.input_value().startswith("农户与客户"):  # the page remembers the last layer chosen
            page.locator('[data-testid="stSelectbox"]', has_text="导入到图层").get_by_role("button", name="Open").click()
            page.get_by_role("option", name=re.compile("^农户与客户")).click()
        assert box.input_value().startswith("农户与客户")
        page.locator('[data-testid="stFileUploader"]').first.locator('input[type="file"]').set_input_files(str(upload))
        page.get_by_text("新增农户.csv").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="校验并导入").click()
        page.get_by_text("读取 2 行").first.wait_for(timeout=120_000)
        settle(page)
        # the page reran after the import: its version figure (and audit list) include it
        shown_rev = page.locator('[data-testid="stMetric"]', has_text="工作区版本") \
            .locator('[data-testid="stMetricValue"]').inner_text()
        screenshot(page, "postgis_data_import")
        assert "Traceback" not in server.log()
    finally:
        context.close()

    after = open_workspace(target)
    assert after.count("households") == before + 2
    assert after.revision > rev and int(shown_rev) == after.revision
    got = after.read("households", where="hh_id IN (?, ?)", params=["PGE2E001", "PGE2E002"])
    assert set(got["head_name"]) == {"测试甲", "测试乙"}
    _fid, _at, actor, _action, layer, revision, *_ = after.audit_records()[-1]
    assert (actor, layer, revision) == ("admin", "households", after.revision)
