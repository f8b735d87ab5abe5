"""Leadership downloads the monthly report (PDF) on 覆盖总览: generated in the browser session, kept in the
workspace, listed for re-download. Run: pytest -m e2e tests/e2e/test_monthly_report.py"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import screenshot, settle, sign_in

pytestmark = pytest.mark.e2e


def test_leader_downloads_the_monthly_pdf(page, e2e_workspace, tmp_path):
    from grids import monthly
    from grids.auth import Account
    from grids.workspace import GpkgWorkspace

    before = len(monthly.list_reports(GpkgWorkspace(e2e_workspace), Account("e2e", "leadership")))
    sign_in(page, "leader")
    page.get_by_role("heading", name=re.compile("^覆盖总览")).wait_for(timeout=60_000)
    page.get_by_role("tab", name="月度报告").click()
    page.get_by_role("button", name="生成月度报告（PDF）").click(timeout=60_000)
    button = page.get_by_role("button", name="下载月度报告（2019-09，PDF）")
    button.wait_for(timeout=240_000)
    settle(page)
    with page.expect_download(timeout=60_000) as info:
        button.click()
    assert info.value.suggested_filename == "月度报告_2019-09_全县.pdf"
    pdf = tmp_path / "report.pdf"
    shutil.copy(Path(info.value.path()), pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    kept = monthly.list_reports(GpkgWorkspace(e2e_workspace), Account("e2e", "leadership"))
    assert len(kept) == before + 1 and kept["created_by"].iloc[0] == "leader" and kept["month"].iloc[0] == "2019-09"
    assert monthly.report_file(GpkgWorkspace(e2e_workspace), Account("e2e", "leadership"),
                               kept["report_id"].iloc[0]).data == pdf.read_bytes()
    page.get_by_role("button", name="下载所选报告").wait_for(timeout=60_000)
    screenshot(page, "monthly_report_leader")
    if shutil.which("pdftotext"):
        body = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "2019年9月" in body and "网格覆盖图" in body and "贷款余额" in body
