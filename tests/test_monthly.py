"""The monthly report (grids.monthly), the loan-totals series (grids.loans, ``import … loan_totals``) and
``report --month``: PDF pages, size and fonts (poppler-utils), the xlsx's sheets, scope, storage, exit codes."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import subprocess

import pandas as pd
import pytest

from grids import loans, monthly
from grids.__main__ import main
from grids.auth import DEMO_PASSWORD, Account
from grids.errors import PermissionDeniedError, ValidationError
from grids.workspace import GpkgWorkspace

HOSTILE_BRANCH = '=HYPERLINK("http://x","点")'
HOSTILE_STAFF = "$x^2$张"
LEADER = Account("leader", "leadership")
B01 = Account("b01", "branch_manager", branch_id="B01")
POPPLER = shutil.which("pdfinfo") and shutil.which("pdffonts") and shutil.which("pdftotext")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils missing: scripts/setup.sh --test installs it")


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """A small demo county (1,500 households, a published plan, demo accounts, the loan series) whose branch
    B01 and customer manager S002 carry hostile names."""
    path = tmp_path_factory.mktemp("monthly") / "demo.gpkg"
    assert main(["demo", str(path), "--households", "1500"]) == 0
    ws = GpkgWorkspace(path)
    with ws.transaction(actor="test", action="改名") as tx:
        tx.execute("UPDATE branches SET name = ? WHERE branch_id = 'B01'", (HOSTILE_BRANCH,))
        tx.execute("UPDATE staff SET name = ? WHERE staff_id = 'S002'", (HOSTILE_STAFF,))
    return path


@pytest.fixture
def ws_copy(small_demo, tmp_path):
    dst = tmp_path / "ws.gpkg"
    shutil.copy(small_demo, dst)
    return GpkgWorkspace(dst)


@pytest.fixture(scope="module")
def county(small_demo, tmp_path_factory):
    """The county report of 2019-09 issued as PDF and xlsx (on a copy), with the workspace."""
    dst = tmp_path_factory.mktemp("issued") / "ws.gpkg"
    shutil.copy(small_demo, dst)
    ws = GpkgWorkspace(dst)
    report = monthly.monthly_report(ws, month="2019-09", account=LEADER)
    pdf = monthly.issue(ws, month="2019-09", fmt="pdf", account=LEADER)
    xlsx = monthly.issue(ws, month="2019-09", fmt="xlsx", account=LEADER)
    path = dst.with_name("report.pdf")
    path.write_bytes(pdf.data)
    return {"ws": ws, "report": report, "pdf": pdf, "xlsx": xlsx, "pdf_path": path}


# -- the demo's loan series ------------------------------------------------------------------------------


def _county_total(frame: pd.DataFrame, month: str) -> float:
    return float(frame.loc[frame["month"] == month, "balance"].sum())


def test_demo_series_ends_exactly_at_the_accounts_figures(small_demo):
    stored = GpkgWorkspace(small_demo).read("loan_totals")
    assert _county_total(stored, "2017-01") == 2_401_000_000 and _county_total(stored, "2019-09") == 4_294_000_000
    months = sorted(stored["month"].unique())
    assert months[0] == "2017-01" and months[-1] == "2019-09" and len(months) == 33
    totals = stored.groupby("month")["balance"].sum()
    assert (totals.diff().dropna() > -0.03 * totals.shift().dropna()).all()  # smooth: no month falls > 3 %
    assert (stored["balance"] == stored["balance"].round()).all() and (stored["balance"] >= 0).all()
    assert set(stored["branch_id"]) == set(GpkgWorkspace(small_demo).read("branches")["branch_id"])
    for seed, n in ((1, 3), (9, 40)):  # any seed and number of branches: exact ends, whole yuan
        s = loans.demo_series([f"B{i:02d}" for i in range(n)], seed=seed)
        assert _county_total(s, "2017-01") == 2_401_000_000 and _county_total(s, "2019-09") == 4_294_000_000


# -- import … loan_totals --------------------------------------------------------------------------------


def _csv(tmp_path, text: str, name: str = "loans.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(ws) -> pd.DataFrame:
    return ws.read("loan_totals").set_index("loan_id")


def test_loan_import_good_file_replaces_the_same_month_branch_product(ws_copy, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    before = _rows(ws_copy)
    branch_name = ws_copy.read("branches").set_index("branch_id").loc["B02", "name"]
    good = _csv(tmp_path, "月份,网点,产品,贷款余额（万元）\n2019-09,B03,福农卡,1250.5\n"
                          f"2019年10月,{branch_name},新产品,30万\n")
    assert main(["import", str(ws_copy.target), "loan_totals", str(good), "--user", "admin"]) == 0
    out = capsys.readouterr().out
    after = _rows(ws_copy)
    assert after.loc["2019-09|B03|福农卡", "balance"] == 12_505_000  # 万元 from the header
    assert after.loc["2019-10|B02|新产品", "balance"] == 300_000  # 30万: the cell's own unit wins
    assert len(after) == len(before) + 1  # one replaced, one added
    assert "1 行替换了" in out
    unchanged = before.drop(index="2019-09|B03|福农卡")
    pd.testing.assert_frame_equal(after.loc[unchanged.index], unchanged)
    audit = ws_copy.audit_records()[-1]
    assert "导入" in audit and "admin" in audit


def test_loan_import_rejects_bad_rows_with_row_and_column(ws_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    bad = _csv(tmp_path, "月份,网点,产品,贷款余额\n2019-09,B04,福农卡,100\n2019-09,无此网点,福农卡,1\n"
                         "2019-13,B04,福商卡,1\n2019-08,B04,福商卡,-5\n2019-07,B04,,abc\n")
    rejects = tmp_path / "r.csv"
    assert main(["import", str(ws_copy.target), "loan_totals", str(bad), "--user", "admin",
                 "--rejects", str(rejects)]) == 1
    r = pd.read_csv(rejects, encoding="utf-8-sig")
    found = {(int(row["行"]), row["列"], row["原因"]) for _, row in r.iterrows()}
    assert {(3, "网点", "网点不存在"), (4, "月份", "月份无法识别"), (5, "贷款余额", "贷款余额为负数"),
            (6, "产品", "缺少产品"), (6, "贷款余额", "贷款余额不是数字")} <= found
    assert all(isinstance(f, str) and f for f in r["修正方法"])
    assert _rows(ws_copy).loc["2019-09|B04|福农卡", "balance"] == 100  # the good row went in


def test_failed_loan_import_leaves_the_workspace_unchanged(ws_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    rev, before, audit = ws_copy.revision, _rows(ws_copy), len(ws_copy.audit_records())
    bad = _csv(tmp_path, "月份,网点,产品,贷款余额\n2019-09,B04,福农卡,100\n2019-09,B04,福商卡,x\n")
    assert main(["import", str(ws_copy.target), "loan_totals", str(bad), "--user", "admin", "--strict"]) == 1
    assert main(["import", str(ws_copy.target), "loan_totals", str(_csv(tmp_path, "甲,乙\n1,2\n", "n.csv")),
                 "--user", "admin"]) == 2
    assert main(["import", str(ws_copy.target), "loan_totals", str(bad), "--user", "leader"]) == 2  # no permission
    assert ws_copy.revision == rev and len(ws_copy.audit_records()) == audit
    pd.testing.assert_frame_equal(_rows(ws_copy), before)


# -- the report ------------------------------------------------------------------------------------------


def _poppler(tool: str, path, *extra: str) -> str:
    return subprocess.run([tool, *extra, str(path), *(["-"] if tool == "pdftotext" else [])], capture_output=True,
                          text=True, check=True).stdout


@needs_poppler
def test_pdf_is_multipage_a4_with_an_embedded_cjk_font_and_chinese_headings(county):
    info = _poppler("pdfinfo", county["pdf_path"])
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages >= 5
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    assert abs(w - 595.3) < 1.5 and abs(h - 841.9) < 1.5  # A4 portrait
    fonts = _poppler("pdffonts", county["pdf_path"]).splitlines()[2:]
    cjk = [ln for ln in fonts if re.search(r"CJK|Hei|Ming|Song", ln)]
    assert cjk and all(ln.split()[-5] == "yes" for ln in cjk), fonts  # emb = yes
    body = _poppler("pdftotext", county["pdf_path"])
    for heading in ("概要", "信贷漏斗", "网格覆盖图", "走访与建档趋势", "按网点", "按客户经理", "按客户类型", "按产品",
                    "落后客户经理", "落后网格", "贷款余额（按网点）", "贷款余额（按产品）", "2019年9月", "2019-09"):
        assert heading in body, heading
    assert f"第 1 页 / 共 {pages} 页" in body and f"第 {pages} 页 / 共 {pages} 页" in body
    assert "42.94 亿元" in body and "24.01 亿元" in body  # the month's balance and the start of the series
    assert HOSTILE_STAFF in body  # drawn literally, not as mathtext


def test_xlsx_has_the_same_tables_and_hostile_names_are_inert(county):
    from openpyxl import load_workbook

    report = county["report"]
    book = load_workbook(io.BytesIO(county["xlsx"].data))
    assert book.sheetnames == [*report.tables, "说明"]
    for title, frame in report.tables.items():
        sheet = book[title]
        assert [c.value for c in sheet[1]] == list(frame.columns), title
        assert sheet.max_row == len(frame) + 1, title
    branches = book["按网点"]
    rows = {r[0].value: r for r in branches.iter_rows(min_row=2)}
    cell = rows["B01"][1]
    assert cell.value == HOSTILE_BRANCH and cell.data_type == "s" and cell.quotePrefix
    assert not any(c.data_type == "f" for s in book.worksheets for r in s.iter_rows() for c in r)
    table = report.tables["按网点"].set_index("网点")
    assert [c.value for c in rows["B02"][2:5]] == [int(table.loc["B02", "登记户数"]), int(table.loc["B02", "已建档"]),
                                                   float(table.loc["B02", "建档率（%）"])]
    assert table.loc["合计", "登记户数"] == 1500
    loans_by_branch = report.tables["贷款余额（按网点）"]
    assert loans_by_branch["本月余额（万元）"].sum() == pytest.approx(429_400, abs=1)


def test_funnel_month_on_month_counts_archives_by_their_first_date(county):
    ws = county["ws"]
    hh = ws.read("households", columns=["hh_id", "archived"])
    first = monthly.archive_dates(ws.read("visits"))
    funnel = county["report"].tables["信贷漏斗"].set_index("指标")
    at = {m: int(monthly.archived_at(hh, first, pd.Timestamp(m)).sum()) for m in ("2019-09-30", "2019-08-31")}
    assert funnel.loc["已建档", "本月末"] == at["2019-09-30"] == int(hh["archived"].sum())
    assert funnel.loc["已建档", "上月末"] == at["2019-08-31"]
    assert funnel.loc["已建档", "环比变化"] == at["2019-09-30"] - at["2019-08-31"]
    weekly = county["report"].weekly
    assert len(weekly) == monthly.TREND_WEEKS and weekly["累计建档"].is_monotonic_increasing
    v = ws.read("visits")
    last = v[pd.to_datetime(v["visited_on"]).between("2019-09-24", "2019-09-30")]
    assert weekly["走访户次"].iloc[-1] == len(last.drop_duplicates(["hh_id", "staff_id", "visited_on"]))


def test_issued_reports_are_kept_listed_and_scoped(county):
    ws = county["ws"]
    kept = monthly.list_reports(ws, LEADER)
    assert set(kept["report_id"]) >= {county["pdf"].report_id, county["xlsx"].report_id}
    stored = ws.read("reports", where="report_id = ?", params=[county["pdf"].report_id]).iloc[0]
    data = base64.b64decode(stored["content"])
    assert data == county["pdf"].data and stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["scope"] == "" and stored["created_by"] == "leader"
    assert monthly.report_file(ws, Account("admin", "admin"), county["pdf"].report_id).data == data
    assert any("生成月度报告" in str(r) for r in ws.audit_records())
    assert monthly.list_reports(ws, B01).empty  # a county report is not the branch's
    with pytest.raises(PermissionDeniedError):
        monthly.report_file(ws, B01, county["pdf"].report_id)


def test_branch_manager_gets_their_branch_only_and_customer_managers_none(ws_copy):
    report = monthly.monthly_report(ws_copy, month="2019-09", account=B01)
    assert report.scope == "B01" and report.scope_label == HOSTILE_BRANCH
    branches = set(report.tables["按网点"]["网点"]) - {"合计"}
    assert branches == {"B01"}
    assert set(report.tables["贷款余额（按网点）"]["网点"]) == {"B01"}
    loans_b01 = ws_copy.read("loan_totals", where="branch_id = 'B01' AND month = '2019-09'")
    assert report.tables["贷款余额（按网点）"]["本月余额（万元）"].iloc[0] == round(loans_b01["balance"].sum() / 1e4, 1)
    assert set(report.grid_map["branch_id"]) == {"B01"}
    issued = monthly.issue(ws_copy, month="2019-09", fmt="xlsx", account=B01)
    assert list(monthly.list_reports(ws_copy, B01)["report_id"]) == [issued.report_id]
    assert monthly.list_reports(ws_copy, Account("b02", "branch_manager", branch_id="B02")).empty
    with pytest.raises(PermissionDeniedError):
        monthly.monthly_report(ws_copy, month="2019-09", account=Account("s002", "customer_manager",
                                                                          staff_id="S002"))
    with pytest.raises(ValidationError, match="之后"):
        monthly.monthly_report(ws_copy, month="2019-10", account=LEADER)


def test_weekly_progress_per_branch_and_staff(ws_copy):
    from grids.scope import ScopedWorkspace

    by_branch = monthly.weekly_progress(ScopedWorkspace(ws_copy, LEADER), by="branch")
    assert 11 <= len(by_branch) <= 13 and by_branch.index[-1] == "2019-W40"
    v = ws_copy.read("visits")
    staff = ws_copy.read("staff").set_index("staff_id")["branch_id"]
    week = v[pd.to_datetime(v["visited_on"]).between("2019-09-30", "2019-09-30")]
    b02 = week[week["staff_id"].map(staff) == "B02"].drop_duplicates(["hh_id", "staff_id", "visited_on"])
    col = next(c for c in by_branch.columns if c.endswith("（B02）"))
    assert by_branch.loc["2019-W40", col] == len(b02)
    mine = monthly.weekly_progress(ScopedWorkspace(ws_copy, B01), by="staff")
    assert len(mine.columns) and all(
        staff[re.search(r"（(S\d+)）$", c).group(1)] == "B01" for c in mine.columns)


# -- the command line ------------------------------------------------------------------------------------


def test_report_month_cli_exit_codes(ws_copy, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    path = str(ws_copy.target)
    out = tmp_path / "m.xlsx"
    assert main(["report", path, "--month", "2019-09", "--format", "xlsx", "--out", str(out), "--user", "b01"]) == 0
    assert out.read_bytes()[:2] == b"PK" and "月度报告已生成" in capsys.readouterr().out
    assert main(["report", path, "--month", "2016-12", "--format", "xlsx", "--out", str(out),
                 "--user", "leader"]) == 1  # written, but the month has no loan totals
    assert "没有贷款余额" in capsys.readouterr().out
    n = len(monthly.list_reports(ws_copy, LEADER))
    assert main(["report", path, "--month", "2019-13", "--out", str(out), "--user", "leader"]) == 2
    assert "无法识别" in capsys.readouterr().err
    assert main(["report", path, "--month", "2019-09", "--out", str(out), "--user", "s002"]) == 2
    assert main(["report", path, "--month", "2019-09", "--out", str(out)]) == 2  # no --user
    with pytest.raises(SystemExit) as exc:
        main(["report", path, "--month", "2019-09", "--format", "docx", "--out", str(out), "--user", "leader"])
    assert exc.value.code == 2
    assert len(monthly.list_reports(ws_copy, LEADER)) == n  # refused: nothing kept


def test_cli_keeps_third_party_warnings_out_but_not_ours():
    import warnings

    from grids.__main__ import quiet_third_party_warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_third_party_warnings()
        for module in ("numpy.core", "pandas.core.nanops", "dask.array.reductions", "shapely.predicates"):
            warnings.warn_explicit("invalid value encountered in divide", RuntimeWarning, "x.py", 1, module=module)
        warnings.warn_explicit("ours", RuntimeWarning, "assign.py", 1, module="grids.assign")
        warnings.warn_explicit("demo", UserWarning, "demo.py", 1, module="geodata.demo")
    assert sorted(str(w.message) for w in seen) == ["demo", "ours"]


# -- the app: 覆盖总览's 月度报告 and trend -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["leadership", "branch_manager"])
def test_overview_issues_the_monthly_report_and_lists_it(tmp_path, monkeypatch, role):
    from streamlit.testing.v1 import AppTest

    from tests.test_app import ACCOUNTS, APP, tiny_workspace
    from tests.test_page_text import latin_words, texts
    from ui.auth import session_for

    path = tiny_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["auth.session"] = session_for(ACCOUNTS[role])
    at.run()
    at.session_state["overview.tab"] = "月度报告"
    at.run()
    assert not at.exception
    assert any("还没有生成过月度报告" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "生成月度报告（Excel）").click().run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.get("download_button")]
    assert labels[0].startswith("下载月度报告（") and "Excel" in labels[0] and "下载所选报告" in labels
    kept = monthly.list_reports(GpkgWorkspace(path), ACCOUNTS[role])
    assert len(kept) == 1 and kept["created_by"].iloc[0] == ACCOUNTS[role].username
    shown = at.dataframe[-1].value
    assert shown["生成人"].tolist() == [ACCOUNTS[role].username] and shown["格式"].tolist() == ["XLSX"]
    assert not latin_words(texts(at)) - {"XLSX"}
    at.session_state["overview.tab"] = "客户经理进度"
    at.run()
    assert not at.exception


def test_forged_report_pick_and_month_never_reach_another_scope(tmp_path, monkeypatch):
    """A branch manager's browser sends the id of a county report as 重新下载 and a month outside the options:
    Streamlit resets both to an option, only the branch's own report is handed out (and the library refuses a
    county report to a branch manager anyway: test_issued_reports_are_kept_listed_and_scoped)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from tests import forged

    placed: list[bytes] = []
    real = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes | bytearray):
            placed.append(bytes(path_or_data))
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    path = forged.forged_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    ws = GpkgWorkspace(path)
    county_report = monthly.issue(ws, month=f"{pd.Timestamp.now():%Y-%m}", fmt="xlsx", account=LEADER)
    own = monthly.issue(ws, month=f"{pd.Timestamp.now():%Y-%m}", fmt="xlsx", account=forged.B1)
    at = forged.open_page("pages/overview.py", forged.B1)
    at.session_state["overview.tab"] = "月度报告"
    at.run()
    assert not at.exception, at.exception
    forged.forge_select(at, "overview.report_pick", county_report.report_id)
    forged.forge_select(at, "overview.report_month", "2099-01")
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["overview.report_pick"] == own.report_id
    assert at.session_state["overview.report_month"] != "2099-01"
    assert "下载所选报告" in [b.label for b in at.get("download_button")]
    assert own.data in placed and county_report.data not in placed
    assert len(monthly.list_reports(ws, LEADER)) == 2  # the forged run issued nothing
