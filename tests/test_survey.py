"""The structured survey (农户信息采集): validation, versions, the to-do and denominator rule, scope, masking,
the Excel import (rejects) and export (round trip)."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely

from grids import coverage, survey
from grids.__main__ import main
from grids.auth import Account
from grids.errors import PermissionDeniedError, StaleEditError, ValidationError
from grids.plans import save_draft
from grids.privacy import MASKED
from grids.scope import ScopedWorkspace
from tests.conftest import cli_user

# G1, G2 of branch B1 (staff S1, S2); G3, G4 of branch B2 (S3, S4); three households per grid (H10…H42).
GRIDS = [("G1", "B1", "S1"), ("G2", "B1", "S2"), ("G3", "B2", "S3"), ("G4", "B2", "S4")]
TODAY = pd.Timestamp.now().strftime("%Y-%m-%d")

FULL = {"surveyed_at": TODAY, "outcome": "已建档", "entity_type": "普通农牧户", "members": 5, "labour": 3,
        "farmland_mu": 60, "grassland_mu": 800, "cattle": 12, "sheep": 150, "machinery": "拖拉机1台",
        "machinery_value": 30000, "housing": "砖瓦房", "housing_area": 110, "income_source": "养殖",
        "annual_income": 120000, "liabilities": 50000, "liabilities_other_banks": 20000, "need_amount": 80000,
        "need_purpose": "购买基础母牛", "need_product": "福农卡", "guarantee_options": "信用、保证人",
        "credit_consent": True}


@pytest.fixture
def ws(empty_ws):
    return _populate(empty_ws)


@pytest.fixture
def both(any_ws):
    """The same workspace on either backend (GeoPackage, PostGIS)."""
    return _populate(any_ws)


def _populate(empty_ws):
    grids = gpd.GeoDataFrame(
        {"grid_id": [g for g, _, _ in GRIDS], "code": [f"15042210020{i}001" for i in range(1, 5)],
         "kind": "rural", "branch_id": [b for _, b, _ in GRIDS], "staff_id": [s for _, _, s in GRIDS],
         "source_codes": [f"15042210020{i}" for i in range(1, 5)]},
        geometry=[shapely.box(119 + 0.1 * i, 43, 119.1 + 0.1 * i, 43.1) for i in range(4)], crs=4490)
    hh = gpd.GeoDataFrame(
        {"hh_id": [f"H{i}{j}" for i in range(1, 5) for j in range(3)], "head_name": "某某",
         "id_no": "150422199001011234", "phone": "13812345678",
         "village_code": [f"15042210020{i}" for i in range(1, 5) for _ in range(3)],
         "archived": False, "eligible": False, "granted_amount": 0.0, "signed": False, "using": False},
        geometry=[shapely.Point(119.05 + 0.1 * (i - 1), 43.05 + 0.01 * j) for i in range(1, 5) for j in range(3)],
        crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2", "S3", "S4"], "name": ["甲", "乙", "丙", "丁"],
                          "branch_id": ["B1", "B1", "B2", "B2"], "role": "客户经理"})
    with empty_ws.transaction(actor="t", action="准备") as tx:
        tx.replace("households", hh)
        tx.replace("staff", staff)
    save_draft(empty_ws, grids, name="main")
    return empty_ws


def view(ws, username, role, **kw):
    return ScopedWorkspace(ws, Account(username=username, role=role, **kw))


def s1(ws):
    return view(ws, "s001", "customer_manager", branch_id="B1", staff_id="S1")


def s2(ws):
    return view(ws, "s002", "customer_manager", branch_id="B1", staff_id="S2")


def refusals(ws):
    log = ws.read("audit")
    return log[log["action"].str.startswith("拒绝：")]


# -- validation --------------------------------------------------------------------------------------------


def test_full_survey_is_typed():
    r = survey.validate_survey({"hh_id": "h10", **FULL, "members": "5人", "annual_income": "120,000",
                                "credit_consent": "是", "guarantee_options": "保证人，信用、保证人"})
    assert (r["hh_id"], r["members"], r["annual_income"], r["credit_consent"]) == ("H10", 5, 120000.0, True)
    assert r["guarantee_options"] == "保证人、信用"


@pytest.mark.parametrize(("change", "column", "says"), [
    ({"outcome": "不符合条件"}, "reason", "必须写明原因"),
    ({"outcome": "补充资料", "note": None}, "note", "必须填写备注"),
    ({"members": None}, "members", "必须填写家庭人口"),
    ({"credit_consent": None}, "credit_consent", "必须填写同意查询征信"),
    ({"labour": 7}, "labour", "多于家庭人口"),
    ({"members": 0}, "members", "超出合理范围"),
    ({"cattle": -1}, "cattle", "超出合理范围"),
    ({"sheep": 2.5}, "sheep", "不是整数"),
    ({"farmland_mu": "很多"}, "farmland_mu", "不是数字"),
    ({"liabilities_other_banks": 90000}, "liabilities_other_banks", "多于负债合计"),
    ({"entity_type": "农民"}, "entity_type", "不在可选范围内"),
    ({"need_product": "金卡"}, "need_product", "不在可选范围内"),
    ({"need_purpose": None}, "need_purpose", "缺少需求用途"),
    ({"guarantee_options": "信用、抵押车"}, "guarantee_options", "抵押车"),
    ({"surveyed_at": "2999-01-01"}, "surveyed_at", "在未来"),
    ({"surveyed_at": "昨天"}, "surveyed_at", "不是日期"),
    ({"post_level": "科级"}, "post_level", "只适用于公职人员"),
    ({"entity_type": "公职人员"}, "post_level", "公职人员建档必须填写职务级别"),
    ({"entity_type": "公职人员", "post_level": "科级"}, "salary_via_rcc", "必须填写工资由农信社代发"),
    ({"version": 9}, "version", "由系统填写"),
])
def test_each_rule_names_column_reason_and_fix(change, column, says):
    rec = {"hh_id": "H10", **FULL, **change}
    _, problems = survey.survey_problems({k: v for k, v in rec.items()})
    assert [p for p in problems if p[0] == column and says in p[1] and p[2]], problems
    with pytest.raises(ValidationError, match=says) as exc:
        survey.validate_survey(rec)
    assert "修正方法" in str(exc.value)


@pytest.mark.parametrize("outcome", ["未遇", "拒绝", "已迁出"])
def test_outcomes_without_a_conversation_need_no_structured_fields(outcome):
    r = survey.validate_survey({"hh_id": "H10", "surveyed_at": TODAY, "outcome": outcome})
    assert r["outcome"] == outcome and r["members"] is None


def test_a_civil_servant_with_level_and_payroll_is_valid():
    r = survey.validate_survey({"hh_id": "H10", **FULL, "entity_type": "公职人员", "post_level": "处级及以上",
                                "salary_via_rcc": "否", "need_product": "福薪卡"})
    assert (r["post_level"], r["salary_via_rcc"]) == ("处级及以上", False)


# -- versions --------------------------------------------------------------------------------------------


def test_every_save_is_a_new_version_and_the_latest_wins(both):
    sw = s1(both)
    first = sw.record_survey("H10", {"surveyed_at": TODAY, "outcome": "未遇"}, seen_version=0)
    second = sw.record_survey("H10", {**FULL, "members": 6}, seen_version=1)
    sw.record_survey("H11", {"surveyed_at": TODAY, "outcome": "拒绝"})
    rows = both.read("surveys")
    assert rows["survey_id"].tolist() == [first, second, "SV-H11-1"]
    assert rows["version"].tolist() == [1, 2, 1] and set(rows["staff_id"]) == {"S1"} and set(rows["branch_id"]) == {"B1"}
    latest = survey.latest_surveys(rows).set_index("hh_id")
    assert latest.loc["H10", "version"] == 2 and latest.loc["H10", "members"] == 6
    assert latest.loc["H10", "outcome"] == "已建档"
    assert bool(both.read("households", where="hh_id = 'H10'")["archived"].iloc[0])  # 已建档 archives
    assert sw.survey_versions()["H10"] == 2 and sw.survey_versions()["H12"] == 0


def test_a_survey_saved_meanwhile_refuses_the_stale_one(ws):
    s1(ws).record_survey("H10", {"surveyed_at": TODAY, "outcome": "未遇"})
    with pytest.raises(StaleEditError):
        s1(ws).record_survey("H10", {"surveyed_at": TODAY, "outcome": "拒绝"}, seen_version=0)
    assert ws.count("surveys") == 1


def test_an_old_workspace_without_the_layer_reads_empty_and_gets_it_on_first_save(ws):
    with ws.transaction(actor="t", action="模拟旧工作区") as tx:
        tx.execute("DROP TABLE surveys")
        tx.execute("DELETE FROM gpkg_contents WHERE table_name = 'surveys'")
    assert "surveys" not in ws.layers() and survey.read_surveys(ws).empty
    assert s1(ws).closed_ids() == set()
    s1(ws).record_survey("H10", {"surveyed_at": TODAY, "outcome": "未遇"})
    assert ws.count("surveys") == 1


# -- the to-do list and the coverage denominator -----------------------------------------------------------


def test_moved_and_ineligible_households_leave_the_to_do_list_and_the_denominator(both):
    sw = s1(both)
    before = sw.funnel().iloc[0]
    assert (before["registered"], before["closed"]) == (3, 0) and set(sw.to_do()["hh_id"]) == {"H10", "H11", "H12"}
    sw.record_survey("H10", {**FULL})
    sw.record_survey("H11", {"surveyed_at": TODAY, "outcome": "已迁出"})
    sw.record_survey("H12", {"surveyed_at": TODAY, "outcome": "不符合条件", "reason": "非本辖区户籍"})
    assert sw.closed_ids() == {"H11", "H12"} and sw.to_do().empty
    row = sw.funnel().iloc[0]
    assert (row["registered"], row["closed"], row["archived"]) == (3, 2, 1)
    assert row["coverage_rate"] == pytest.approx(1 / (3 - 2))
    hh, loc = sw._scoped_households(), sw.located()
    listed = coverage.uncovered_households(hh, loc, closed=sw.closed_ids())
    assert listed.empty and len(coverage.uncovered_households(hh, loc)) == 2  # without the rule they'd be listed
    sw.record_survey("H11", {"surveyed_at": TODAY, "outcome": "未遇"})  # back after all: reopened
    assert sw.closed_ids() == {"H12"} and set(sw.to_do()["hh_id"]) == {"H11"}
    assert sw.funnel().iloc[0]["coverage_rate"] == pytest.approx(1 / 2)


def test_an_archived_household_that_moves_stays_in_the_denominator(ws):
    sw = s1(ws)
    sw.record_survey("H10", {**FULL})
    sw.record_survey("H10", {"surveyed_at": TODAY, "outcome": "已迁出"})
    row = sw.funnel().iloc[0]
    assert sw.closed_ids() == {"H10"} and (row["closed"], row["archived"]) == (0, 1)
    assert row["coverage_rate"] == pytest.approx(1 / 3)
    assert "H10" not in set(sw.to_do()["hh_id"])


def test_demo_funnel_does_not_move(demo_path):
    """The demo has no surveys yet: with the rule applied every county figure is the 联社's, unchanged."""
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(demo_path)
    hh = ws.read("households", columns=["hh_id", "archived", "eligible", "granted_amount", "signed",
                                        "available_amount", "using", "balance"])
    closed = survey.closed_ids(survey.read_surveys(ws))
    with_rule, without = coverage.county_summary(hh, closed=closed), coverage.county_summary(hh)
    assert closed == set() and with_rule == without and with_rule["closed"] == 0
    assert (with_rule["archived"], with_rule["eligible"], with_rule["granted"], with_rule["signed"],
            with_rule["using"]) == (84_792, 53_054, 52_195, 26_029, 20_210)


# -- scope and audit ---------------------------------------------------------------------------------------


def test_a_customer_manager_cannot_record_for_another_staffs_household(both):
    with pytest.raises(PermissionDeniedError, match="不在你的管辖范围内"):
        s2(both).record_survey("H10", {**FULL})
    assert both.count("surveys") == 0
    refused = refusals(both)
    assert refused["actor"].tolist() == ["s002"] and refused["action"].iloc[0] == "拒绝：农户信息采集"


@pytest.mark.parametrize(("fields", "kw", "error", "says"), [
    ({"surveyed_at": TODAY, "outcome": "未遇"}, {"staff_id": "S2"}, PermissionDeniedError, "只能以自己的名义"),
    ({"surveyed_at": TODAY, "outcome": "未遇", "staff_id": "S2"}, {}, ValidationError, "由系统填写"),
    ({"surveyed_at": TODAY, "outcome": "未遇", "version": 99}, {}, ValidationError, "由系统填写"),
    ({"surveyed_at": TODAY, "outcome": "未遇", "hh_id": "H30"}, {}, ValidationError, "户号与所选农户不一致"),
])
def test_forged_ids_are_refused(ws, fields, kw, error, says):
    with pytest.raises(error, match=says):
        s1(ws).record_survey("H10", fields, **kw)
    assert ws.count("surveys") == 0 and len(refusals(ws)) == 1


def test_unknown_household_is_refused(ws):
    with pytest.raises(PermissionDeniedError):
        s1(ws).record_survey("H99", {"surveyed_at": TODAY, "outcome": "未遇"})


def test_branch_manager_records_in_the_branch_only(ws):
    bm = view(ws, "b01", "branch_manager", branch_id="B1")
    sid = bm.record_survey("H20", {"surveyed_at": TODAY, "outcome": "未遇"}, staff_id="S2")
    row = ws.read("surveys").set_index("survey_id").loc[sid]
    assert (row["staff_id"], row["branch_id"], row["recorded_by"]) == ("S2", "B1", "b01")
    with pytest.raises(PermissionDeniedError):
        bm.record_survey("H30", {"surveyed_at": TODAY, "outcome": "未遇"})
    with pytest.raises(PermissionDeniedError, match="不属于你的网点"):
        bm.record_survey("H21", {"surveyed_at": TODAY, "outcome": "未遇"}, staff_id="S3")
    with pytest.raises(PermissionDeniedError, match="无权"):
        view(ws, "boss", "leadership").record_survey("H20", {"surveyed_at": TODAY, "outcome": "未遇"})
    assert ws.count("surveys") == 1


def test_admin_records_in_the_name_of_the_grids_staff(ws):
    sid = view(ws, "admin", "admin").record_survey("H30", {"surveyed_at": TODAY, "outcome": "未遇"})
    row = ws.read("surveys").set_index("survey_id").loc[sid]
    assert (row["staff_id"], row["branch_id"]) == ("S3", "B2")


def test_one_audit_row_per_survey_without_its_values(ws):
    n = len(ws.read("audit"))
    s1(ws).record_survey("H10", {**FULL, "annual_income": 987654, "liabilities": 123457})
    log = ws.read("audit").iloc[n:]
    assert len(log) == 1 and log["action"].iloc[0] == "农户信息采集" and log["actor"].iloc[0] == "s001"
    detail = json.loads(log["detail"].iloc[0])
    entry = next(d for d in detail if d["layer"] == "surveys" and d["op"] == "survey")
    assert entry["surveys"] == [{"survey_id": "SV-H10-1", "hh_id": "H10", "version": 1, "outcome": "已建档",
                                 "staff_id": "S1"}]
    assert "987654" not in log["detail"].iloc[0] and "123457" not in log["detail"].iloc[0]


def test_reads_are_scoped_like_visits(ws):
    s1(ws).record_survey("H10", {"surveyed_at": TODAY, "outcome": "未遇"})
    s2(ws).record_survey("H20", {"surveyed_at": TODAY, "outcome": "未遇"})
    view(ws, "admin", "admin").record_survey("H30", {"surveyed_at": TODAY, "outcome": "未遇"})
    assert s1(ws).surveys()["hh_id"].tolist() == ["H10"]
    assert set(view(ws, "b01", "branch_manager", branch_id="B1").surveys()["hh_id"]) == {"H10", "H20"}
    assert set(view(ws, "boss", "leadership").surveys()["hh_id"]) == {"H10", "H20", "H30"}


# -- masking -----------------------------------------------------------------------------------------------


def test_income_liabilities_and_consent_are_masked_unless_asked_and_allowed(ws):
    s1(ws).record_survey("H10", {**FULL})
    shown = s1(ws).surveys(latest=True).iloc[0]
    assert [shown[c] for c in ("annual_income", "liabilities", "liabilities_other_banks", "credit_consent")] == \
        [MASKED] * 4
    assert shown["members"] == 5 and shown["cattle"] == 12
    with pytest.raises(PermissionDeniedError):
        s1(ws).surveys(unmask=True)
    n = len(ws.read("audit"))
    full = view(ws, "boss", "leadership").surveys(unmask=True, purpose="授信审查").iloc[0]
    assert full["annual_income"] == 120000.0 and bool(full["credit_consent"])
    log = ws.read("audit").iloc[n:]
    assert log["action"].tolist() == ["查看明文个人信息"] and "120000" not in log["detail"].iloc[0]


# -- Excel import and export -------------------------------------------------------------------------------


def _workbook(path, rows: list[dict]):
    frame = pd.DataFrame(rows)
    frame.columns = [survey.EXPORT_LABELS.get(c, c) for c in frame.columns]
    frame.to_excel(path, index=False)
    return path


def test_import_rejects_name_file_row_column_and_fix(ws, tmp_path, monkeypatch):
    user = cli_user(ws, monkeypatch, username="s001", role="customer_manager", branch_id="B1", staff_id="S1")
    src = _workbook(tmp_path / "采集.xlsx", [
        {"hh_id": "H10", **FULL},
        {"hh_id": "H11", "surveyed_at": TODAY, "outcome": "不符合条件"},
        {"hh_id": "H20", "surveyed_at": TODAY, "outcome": "未遇"},
        {"hh_id": "H12", "surveyed_at": TODAY, "outcome": "未遇", "cattle": "一群"},
        {"hh_id": "H12", "surveyed_at": TODAY, "outcome": "已迁出", "note": "=HYPERLINK(\"http://x\")"},
    ])
    code = main(["import", str(ws.path), "surveys", str(src), "--user", user])
    assert code == 1
    rejects = pd.read_csv(tmp_path / "采集.rejects.csv", encoding="utf-8-sig")
    assert list(rejects.columns[:5]) == ["文件", "行", "列", "原因", "修正方法"]
    by_row = {int(r["行"]): r for _, r in rejects.iterrows()}
    assert set(by_row) == {3, 4, 5} and set(rejects["文件"]) == {"采集.xlsx"}
    assert by_row[3]["列"] == "原因" and "必须写明原因" in by_row[3]["原因"]
    assert by_row[4]["列"] == "户号" and "不在你的管辖范围内" in by_row[4]["原因"]
    assert by_row[5]["列"] == "牛（头）" and "不是数字" in by_row[5]["原因"]
    assert rejects["修正方法"].notna().all()
    stored = ws.read("surveys")
    assert stored["hh_id"].tolist() == ["H10", "H12"] and set(stored["staff_id"]) == {"S1"}
    assert stored.set_index("hh_id").loc["H12", "note"] == "=HYPERLINK(\"http://x\")"  # kept as text
    audit = ws.read("audit")
    assert audit["action"].iloc[-1] == "导入农户信息采集" and audit["actor"].iloc[-1] == "s001"


def test_strict_import_with_a_reject_changes_nothing(ws, tmp_path, monkeypatch):
    user = cli_user(ws, monkeypatch)
    src = _workbook(tmp_path / "s.xlsx", [{"hh_id": "H10", "surveyed_at": TODAY, "outcome": "未遇"},
                                          {"hh_id": "H11", "surveyed_at": TODAY, "outcome": "迁走了"}])
    rev = ws.revision
    assert main(["import", str(ws.path), "surveys", str(src), "--user", user, "--strict"]) == 1
    assert ws.count("surveys") == 0 and ws.revision == rev


def test_import_by_a_role_that_records_no_surveys_is_refused(ws, tmp_path, monkeypatch):
    user = cli_user(ws, monkeypatch, username="boss", role="leadership")
    src = _workbook(tmp_path / "s.xlsx", [{"hh_id": "H10", "surveyed_at": TODAY, "outcome": "未遇"}])
    assert main(["import", str(ws.path), "surveys", str(src), "--user", user]) == 2
    assert ws.count("surveys") == 0


def test_export_masks_neutralises_formulas_and_round_trips(ws, tmp_path, monkeypatch):
    s1(ws).record_survey("H10", {**FULL, "note": "=1+1 试试"})
    s1(ws).record_survey("H11", {"surveyed_at": TODAY, "outcome": "不符合条件", "reason": "@SUM(A1)"})
    masked = tmp_path / "masked.xlsx"
    assert main(["export", str(ws.path), "--layer", "surveys", "--format", "xlsx", "--out", str(masked)]) == 0
    sheet = openpyxl.load_workbook(masked).active
    header = [c.value for c in sheet[1]]
    cells = {header[j]: c for j, c in enumerate(sheet[2])}
    assert cells["家庭年收入（元）"].value == MASKED and cells["同意查询征信"].value == MASKED
    assert cells["备注"].value == "=1+1 试试" and cells["备注"].data_type == "s" and cells["备注"].quotePrefix
    admin = cli_user(ws, monkeypatch)
    full = tmp_path / "full.xlsx"
    assert main(["export", str(ws.path), "--layer", "surveys", "--format", "xlsx", "--out", str(full),
                 "--unmask", "--user", admin]) == 0
    assert ws.read("audit")["action"].iloc[-1] == "导出（含明文个人信息）"
    before = survey.latest_surveys(ws.read("surveys")).set_index("hh_id")
    assert main(["import", str(ws.path), "surveys", str(full), "--user", admin]) == 0
    after = survey.latest_surveys(ws.read("surveys")).set_index("hh_id")
    assert after["version"].tolist() == [2, 2]
    for col in survey.FIELDS:
        if col == "hh_id":
            continue
        for h in ("H10", "H11"):
            a, b = before.loc[h, col], after.loc[h, col]
            assert (pd.isna(a) and pd.isna(b)) or a == b, (h, col, a, b)
    assert after.loc["H10", "staff_id"] == "S1"


def test_scoped_export_holds_only_the_accounts_households(ws, tmp_path, monkeypatch):
    s1(ws).record_survey("H10", {"surveyed_at": TODAY, "outcome": "未遇"})
    s2(ws).record_survey("H20", {"surveyed_at": TODAY, "outcome": "未遇"})
    user = cli_user(ws, monkeypatch, username="s002", role="customer_manager", branch_id="B1", staff_id="S2")
    out = tmp_path / "mine.xlsx"
    assert main(["export", str(ws.path), "--layer", "surveys", "--format", "xlsx", "--out", str(out),
                 "--user", user]) == 0
    got = pd.read_excel(io.BytesIO(out.read_bytes()), dtype=str)
    assert got["户号"].tolist() == ["H20"]


# -- the form on 走访工作台 (AppTest; the phone-width browser test is tests/e2e/test_survey_form.py) ----------


@pytest.fixture
def page_path(tmp_path, monkeypatch):
    from tests import forged

    p = forged.forged_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(p))
    return p


def _todo_heading(at) -> str:
    return next(h.value for h in at.subheader if h.value.startswith("待走访"))


def test_workbench_form_saves_a_survey_and_a_moved_household_leaves_the_to_do_list(page_path):
    from grids.workspace import GpkgWorkspace
    from tests import forged

    at = forged.open_page("pages/workbench.py", forged.S1)
    assert not at.exception and _todo_heading(at) == "待走访：2 户"
    assert not [b for b in at.button if b.label == "保存采集"]  # the form is built only while open
    at.session_state["workbench.survey_open"] = True
    at.run()
    at.selectbox(key="workbench.survey_hh").set_value("H4")
    at.selectbox(key="workbench.survey.outcome").set_value("不符合条件")
    next(b for b in at.button if b.label == "保存采集").click()
    at.run()
    assert any("必须写明原因" in e.value for e in at.error) and GpkgWorkspace(page_path).count("surveys") == 0
    at.selectbox(key="workbench.survey.outcome").set_value("已迁出")
    next(b for b in at.button if b.label == "保存采集").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    rows = GpkgWorkspace(page_path).read("surveys")
    assert rows[["hh_id", "outcome", "staff_id"]].values.tolist() == [["H4", "已迁出", "S1"]]
    assert _todo_heading(at) == "待走访：1 户" and any("已保存采集" in s.value for s in at.success)


def test_report_json_shows_the_closed_households(ws, capsys):
    assert main(["report", str(ws.path), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)["county"]
    s1(ws).record_survey("H11", {"surveyed_at": TODAY, "outcome": "已迁出"})
    assert main(["report", str(ws.path), "--json", "--uncovered", "staff"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert (before["closed"], after["county"]["closed"]) == (0, 1)
    assert after["county"]["registered"] == before["registered"] == 12
    s1_row = next(r for r in after["uncovered"] if r["key"] == "S1")
    assert s1_row["not_archived"] == 2  # H10, H12: H11 moved away


def test_a_masked_export_does_not_import_back_as_values(ws, tmp_path, monkeypatch):
    s1(ws).record_survey("H10", {**FULL})
    out = tmp_path / "masked.xlsx"
    assert main(["export", str(ws.path), "--layer", "surveys", "--format", "xlsx", "--out", str(out)]) == 0
    user = cli_user(ws, monkeypatch)
    assert main(["import", str(ws.path), "surveys", str(out), "--user", user]) == 1
    rejects = pd.read_csv(tmp_path / "masked.rejects.csv", encoding="utf-8-sig")
    assert set(rejects["列"]) == {"家庭年收入（元）", "负债合计（元）", "其中他行负债（元）", "同意查询征信"}
    assert rejects["原因"].str.contains("脱敏").all() and ws.count("surveys") == 1
