"""集中授信评定会 (issue 15): a panel of 5–7 votes per household; grants within the branch's authority at once,
larger ones wait for the credit committee (cc01); audit per household; the workbook and the CLI."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest

from grids import credit, credit_rules, sessions
from grids.__main__ import main
from grids.auth import Account
from grids.errors import PermissionDeniedError, StaleEditError, ValidationError
from grids.scope import ScopedWorkspace
from grids.session_workbook import read_session_workbook, session_template_bytes
from grids.workspace import GpkgWorkspace, Workspace
from tests.conftest import cli_user
from tests.forged import ADMIN, B1, forged_workspace, refusals

CC = Account("cc01", "credit_committee", "联社贷审会")
B2 = Account("b2", "branch_manager", "隆昌主任", branch_id="B2")
JIA, BING = "150422100201", "150422100203"  # 甲村 (B1: H0–H2), 丙村 (B2: H6–H8)
PANEL6 = [{"name": n, "role": r} for n, r in (("王村长", "村组干部"), ("李代表", "村民代表"), ("赵主任", "信用社主任"),
                                               ("孙经理", "客户经理"), ("周代表", "村民代表"), ("吴组长", "村组干部"))]
NAMES = [m["name"] for m in PANEL6]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """The forged-state workspace; H1 (甲村, B1) is a 家庭农牧场 (黄金客户 open to it)."""
    path = forged_workspace(tmp_path / "ws.gpkg")
    w = GpkgWorkspace(path)
    with w.transaction(actor="test", action="测试数据") as tx:
        tx.execute("UPDATE households SET segment = '家庭农牧场' WHERE hh_id = 'H1'")
    return w


def votes(*choices: str, names: list[str] = NAMES) -> dict[str, str]:
    return dict(zip(names, choices, strict=True))


ALL_YES = votes(*["同意"] * 6)


def rows(*recs: tuple) -> pd.DataFrame:
    """(hh_id, grade, amount, votes[, guarantee]) → a decisions frame."""
    return pd.DataFrame([{"hh_id": r[0], "grade": r[1], "amount": r[2], "votes": r[3],
                          "guarantee": r[4] if len(r) > 4 else ""} for r in recs])


def session(ws: Workspace, account: Account = B1, *, panel=PANEL6, village: str = JIA, decisions=None, **kw):
    decisions = rows(("H0", "良好", 60000, ALL_YES)) if decisions is None else decisions
    return ScopedWorkspace(ws, account).record_rating_session(
        village_code=village, held_on="2026-03-01", place="甲村村委会", panel=panel, decisions=decisions, **kw)


def hh(ws: Workspace, hh_id: str) -> pd.Series:
    frame = ws.read("households", columns=["hh_id", "product", "grade", "granted_amount", "guarantee", "version"])
    return frame.set_index("hh_id").loc[hh_id]


def count(ws: Workspace, layer: str) -> int:
    return ws.count(layer) if layer in ws.layers() else 0


# -- the panel -------------------------------------------------------------------------------------------


def test_panel_of_four_is_refused_and_nothing_is_written(ws):
    before = ws.read("households", columns=["hh_id", "granted_amount", "grade"])
    with pytest.raises(ValidationError, match="5–7 名成员，现有 4 名"):
        session(ws, panel=PANEL6[:4])
    assert count(ws, sessions.DECISIONS_LAYER) == count(ws, sessions.SESSIONS_LAYER) == 0
    pd.testing.assert_frame_equal(ws.read("households", columns=["hh_id", "granted_amount", "grade"]), before)
    assert refusals(ws.path)["action"].iloc[-1] == "拒绝：集中授信评定会"


def test_panel_of_eight_and_missing_roles_are_refused_naming_what_is_missing(ws):
    with pytest.raises(ValidationError, match="现有 8 名"):
        session(ws, panel=[*PANEL6, {"name": "甲", "role": "村民代表"}, {"name": "乙", "role": "村民代表"}])
    no_villager = [m if m["role"] != "村民代表" else {**m, "role": "村组干部"} for m in PANEL6]
    with pytest.raises(ValidationError, match="缺少村民代表"):
        session(ws, panel=no_villager)
    no_staff = [m if m["role"] not in ("信用社主任", "客户经理") else {**m, "role": "村组干部"} for m in PANEL6]
    with pytest.raises(ValidationError, match="缺少信用社主任、客户经理"):
        session(ws, panel=no_staff)


def test_panel_of_six_saves_the_grant_through_the_rating_path(ws):
    v0 = 0 if pd.isna(hh(ws, "H0")["version"]) else int(hh(ws, "H0")["version"])
    result = session(ws)
    assert result.count(sessions.GRANTED) == 1
    h0 = hh(ws, "H0")
    assert (h0["product"], h0["grade"], h0["granted_amount"]) == ("福农卡", "良好", 60000.0)
    assert int(h0["version"]) == v0 + 1
    s = ws.read(sessions.SESSIONS_LAYER).iloc[0]
    assert (s["branch_id"], s["village_code"], s["place"]) == ("B1", JIA, "甲村村委会")
    assert "实到 6 人" in s["minutes"] and "当场授信 1 户" in s["minutes"]
    panel = ws.read(sessions.PANEL_LAYER)
    assert panel["name"].tolist() == NAMES and panel["present"].astype(bool).all()


# -- votes -----------------------------------------------------------------------------------------------


def test_a_three_three_tie_is_not_granted(ws):
    tie = votes("同意", "同意", "同意", "反对", "反对", "反对")
    result = session(ws, decisions=rows(("H2", "良好", 60000, tie)))
    d = result.decisions.iloc[0]
    assert d["outcome"] == sessions.RETURNED == "退回重评"
    assert (d["votes_for"], d["votes_against"], d["votes_abstain"]) == (3, 3, 0)
    assert hh(ws, "H2")["granted_amount"] == 0
    assert "H2" not in set(credit.whitelist(ws.read("households"), JIA)["hh_id"])


def test_majority_is_of_the_members_present(ws):
    panel = [*PANEL6[:5], {**PANEL6[5], "present": False}]
    five = NAMES[:5]
    carried = session(ws, panel=panel, decisions=rows(("H0", "良好", 60000, votes("同意", "同意", "同意", "反对", "弃权",
                                                                                 names=five))))
    assert carried.decisions["outcome"].iloc[0] == sessions.GRANTED  # 3 of 5 present, though 3 of 6 would tie
    abstained = session(ws, panel=panel, decisions=rows(("H2", "良好", 60000, votes("同意", "同意", "弃权", "弃权", "反对",
                                                                                   names=five))))
    assert abstained.decisions["outcome"].iloc[0] == sessions.RETURNED  # abstentions count against a majority


def test_absent_members_cannot_vote_and_present_ones_must(ws):
    panel = [*PANEL6[:5], {**PANEL6[5], "present": False}]
    with pytest.raises(ValidationError, match="吴组长 缺席，不能表决"):
        session(ws, panel=panel, decisions=rows(("H0", "良好", 60000, ALL_YES)))
    with pytest.raises(ValidationError, match="缺少 吴组长 的表决"):
        session(ws, decisions=rows(("H0", "良好", 60000, votes(*["同意"] * 5, names=NAMES[:5]))))
    with pytest.raises(ValidationError, match="表决 “赞成” 无效"):
        session(ws, decisions=rows(("H0", "良好", 60000, votes("赞成", *["同意"] * 5))))
    assert count(ws, sessions.DECISIONS_LAYER) == 0


# -- authority and the credit committee ------------------------------------------------------------------


def test_amount_above_the_branch_authority_waits_for_cc01(ws):
    limit = credit_rules.effective_rules(ws, "B1").approval_limit("福农卡")
    assert limit < 400000
    result = session(ws, decisions=rows(("H1", "黄金客户", 400000, ALL_YES), ("H0", "良好", 60000, ALL_YES)))
    pending = result.decisions.set_index("hh_id").loc["H1"]
    assert pending["outcome"] == "待贷审会审批" and pending["approval_limit"] == limit
    assert hh(ws, "H1")["granted_amount"] == 0  # unchanged until approved
    white = credit.whitelist(ws.read("households"), JIA)
    assert "H1" not in set(white["hh_id"]) and "H0" in set(white["hh_id"])
    queue = ScopedWorkspace(ws, CC, require_plan=False).review_queue()
    assert queue["decision_id"].tolist() == [pending["decision_id"]]
    assert "甲村村委会" in queue["minutes"].iloc[0] and json.loads(queue["votes"].iloc[0]) == ALL_YES
    assert ScopedWorkspace(ws, B1).review_queue()["decision_id"].tolist() == [pending["decision_id"]]
    assert ScopedWorkspace(ws, B2).review_queue().empty

    with pytest.raises(PermissionDeniedError, match="review_credit"):
        ScopedWorkspace(ws, B1).approve_decision(pending["decision_id"])
    with pytest.raises(PermissionDeniedError):
        ScopedWorkspace(ws, ADMIN).approve_decision(pending["decision_id"])
    assert hh(ws, "H1")["granted_amount"] == 0

    entry = ScopedWorkspace(ws, CC, require_plan=False).approve_decision(pending["decision_id"], note="同意")
    assert entry["after"]["granted_amount"] == 400000.0 and entry["before"]["granted_amount"] == 0.0
    h1 = hh(ws, "H1")
    assert (h1["grade"], h1["granted_amount"]) == ("黄金客户", 400000.0)
    d = sessions.read_decisions(ws).set_index("decision_id").loc[pending["decision_id"]]
    assert (d["outcome"], d["reviewed_by"]) == ("已授信", "cc01")
    assert "H1" in set(credit.whitelist(ws.read("households"), JIA)["hh_id"])
    with pytest.raises(StaleEditError, match="已处理（已授信，cc01"):
        ScopedWorkspace(ws, CC, require_plan=False).approve_decision(pending["decision_id"])
    assert ScopedWorkspace(ws, CC, require_plan=False).review_queue().empty


def test_committee_returns_with_a_reason_and_the_household_stays(ws):
    result = session(ws, decisions=rows(("H1", "黄金客户", 400000, ALL_YES)))
    did = result.decisions["decision_id"].iloc[0]
    cc = ScopedWorkspace(ws, CC, require_plan=False)
    with pytest.raises(ValidationError, match="退回需要写明理由"):
        cc.return_decision(did, note=" ")
    cc.return_decision(did, note="经营流水不足")
    d = sessions.read_decisions(ws).iloc[0]
    assert (d["outcome"], d["review_note"]) == ("贷审会退回", "经营流水不足")
    assert hh(ws, "H1")["granted_amount"] == 0
    with pytest.raises(StaleEditError):
        cc.approve_decision(did)
    again = session(ws, decisions=rows(("H1", "黄金客户", 300000, ALL_YES)))  # re-rated within the authority
    assert again.decisions["outcome"].iloc[0] == sessions.GRANTED


def test_a_household_waiting_for_the_committee_cannot_be_rated_again(ws):
    session(ws, decisions=rows(("H1", "黄金客户", 400000, ALL_YES)))
    with pytest.raises(ValidationError, match="正等待联社贷审会审批"):
        session(ws, decisions=rows(("H1", "黄金客户", 300000, ALL_YES)))


def test_approval_checks_the_product_rules_again(ws):
    result = session(ws, decisions=rows(("H1", "黄金客户", 400000, ALL_YES)))
    with ws.transaction(actor="test", action="测试数据") as tx:  # the household is no longer a 家庭农牧场
        tx.execute("UPDATE households SET segment = '普通农牧户' WHERE hh_id = 'H1'")
    with pytest.raises(ValidationError, match="家庭农牧场"):
        ScopedWorkspace(ws, CC, require_plan=False).approve_decision(result.decisions["decision_id"].iloc[0])
    assert hh(ws, "H1")["granted_amount"] == 0
    assert sessions.read_decisions(ws)["outcome"].iloc[0] == sessions.PENDING


# -- rules, scope, staleness -----------------------------------------------------------------------------


def test_a_carried_grant_that_breaks_the_product_rules_refuses_the_session(ws):
    with pytest.raises(ValidationError, match=r"第 2 行（户号 H2）.*不在 福农卡“一般” 的范围"):
        session(ws, decisions=rows(("H0", "良好", 60000, ALL_YES), ("H2", "一般", 20000, ALL_YES)))
    with pytest.raises(ValidationError, match="只面向家庭农牧场"):
        session(ws, decisions=rows(("H0", "钻石客户", 800000, ALL_YES)))  # escalations are checked too
    assert count(ws, sessions.DECISIONS_LAYER) == 0 and pd.isna(hh(ws, "H0")["grade"])


def test_b1_cannot_rate_a_b02_village_nor_its_households(ws):
    with pytest.raises(PermissionDeniedError, match=f"村 {BING} 不在你的管辖范围内"):
        session(ws, village=BING, decisions=rows(("H8", "良好", 60000, ALL_YES)))
    with pytest.raises(PermissionDeniedError, match="H6 不在你的管辖范围内"):
        session(ws, decisions=rows(("H0", "良好", 60000, ALL_YES), ("H6", "良好", 60000, ALL_YES)))
    assert count(ws, sessions.DECISIONS_LAYER) == 0
    assert hh(ws, "H8")["granted_amount"] == 0
    assert (refusals(ws.path)["action"] == "拒绝：集中授信评定会").sum() == 2
    # the administrator rates any village, under the branch whose grids hold it
    result = session(ws, ADMIN, village=BING, decisions=rows(("H8", "良好", 60000, ALL_YES)))
    assert result.decisions["branch_id"].iloc[0] == "B2"


def test_roles_without_rate_cannot_hold_a_session(ws):
    for account in (CC, Account("s1", "customer_manager", "张三", branch_id="B1", staff_id="S1")):
        with pytest.raises(PermissionDeniedError, match="rate"):
            session(ws, account)


def test_a_household_changed_since_it_was_read_refuses_the_session(ws):
    seen = ScopedWorkspace(ws, B1).household_versions()
    credit.save_ratings(ws, pd.DataFrame({"hh_id": ["H0"], "grade": ["一般"], "granted_amount": [45000]}),
                        actor="other", seen={"H0": seen["H0"]})
    with pytest.raises(StaleEditError, match="H0"):
        session(ws, seen=seen)
    assert hh(ws, "H0")["grade"] == "一般"


# -- audit -----------------------------------------------------------------------------------------------


def test_every_decision_has_its_audit_row_per_household(ws):
    tie = votes("同意", "同意", "同意", "反对", "反对", "反对")
    result = session(ws, decisions=rows(("H0", "良好", 60000, ALL_YES), ("H1", "黄金客户", 400000, ALL_YES),
                                        ("H2", "较优", 75000, tie)))
    audit = ws.read("audit")
    row = audit[audit["action"] == "集中授信评定会"].iloc[-1]
    note = next(n for n in json.loads(row["detail"]) if n.get("op") == "rating_session")
    by = {e["hh_id"]: e for e in note["households"]}
    assert set(by) == {"H0", "H1", "H2"}
    assert all(e["session_id"] == result.session_id for e in by.values())
    assert by["H0"]["before"] == {"grade": None, "granted_amount": 50000.0, "guarantee": None}
    assert by["H0"]["after"] == {"grade": "良好", "granted_amount": 60000.0, "guarantee": None}
    assert by["H1"]["outcome"] == "待贷审会审批" and by["H1"]["after"] == by["H1"]["before"]
    assert by["H2"]["votes"] == {"同意": 3, "反对": 3, "弃权": 0, "members": tie}
    assert [p["name"] for p in note["panel"]] == NAMES
    ScopedWorkspace(ws, CC, require_plan=False).approve_decision(by["H1"]["decision_id"])
    approved = ws.read("audit")
    approved = approved[approved["action"] == "贷审会审批通过"].iloc[-1]
    entry = json.loads(approved["detail"])[-1]["households"][0]
    assert approved["actor"] == "cc01" and entry["session_id"] == result.session_id
    assert entry["after"]["granted_amount"] == 400000.0 and entry["votes"]["同意"] == 6


# -- the workbook ----------------------------------------------------------------------------------------


def filled_workbook(ws: Workspace, *, panel=PANEL6, votes_by_row: dict[str, list[str]] | None = None,
                    amounts: dict[str, float] | None = None) -> bytes:
    table = credit.rating_list(ws.read("households"), JIA)
    data = session_template_bytes(table, village_code=JIA, village_name="甲村", panel=panel, held_on="2026-03-01",
                                  place="甲村村委会")
    book = openpyxl.load_workbook(io.BytesIO(data))
    res = book["评定结果"]
    heads = [c.value for c in res[1]]
    for r in range(2, res.max_row + 1):
        hh_id = res.cell(r, 1).value
        if amounts and hh_id in amounts:
            res.cell(r, heads.index("等级") + 1, "良好" if amounts[hh_id] < 100000 else "黄金客户")
            res.cell(r, heads.index("金额（元）") + 1, amounts[hh_id])
            for name, vote in zip([m["name"] for m in panel], (votes_by_row or {}).get(hh_id, ["同意"] * len(panel)),
                                  strict=True):
                res.cell(r, heads.index(name) + 1, vote)
        else:
            res.cell(r, heads.index("金额（元）") + 1, None)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_workbook_round_trip_records_the_same_session(ws):
    data = filled_workbook(ws, amounts={"H0": 60000, "H1": 400000},
                           votes_by_row={"H0": ["同意"] * 4 + ["反对", "弃权"]})
    book = read_session_workbook(data)
    assert (book.village_code, f"{book.held_on:%Y-%m-%d}", book.place) == (JIA, "2026-03-01", "甲村村委会")
    assert book.panel["name"].tolist() == NAMES and book.decisions["hh_id"].tolist() == ["H0", "H1"]
    assert book.decisions["row"].tolist() == [2, 3]
    result = ScopedWorkspace(ws, B1).record_rating_session(
        village_code=book.village_code, held_on=book.held_on, place=book.place, panel=book.panel,
        decisions=book.decisions)
    assert result.decisions.set_index("hh_id")["outcome"].to_dict() == {"H0": "已授信", "H1": "待贷审会审批"}
    assert json.loads(result.decisions["votes"].iloc[0]) == dict(zip(NAMES, ["同意"] * 4 + ["反对", "弃权"],
                                                                      strict=True))


def test_template_without_a_panel_reads_members_by_slot(ws):
    table = credit.rating_list(ws.read("households"), JIA).head(1).assign(granted_amount=60000.0)
    book = openpyxl.load_workbook(io.BytesIO(session_template_bytes(table, village_code=JIA)))
    info, res = book["评定小组"], book["评定结果"]
    for k, m in enumerate(PANEL6):
        info.cell(7 + k, 2, m["name"])
        info.cell(7 + k, 3, m["role"])
    heads = [c.value for c in res[1]]
    for k in range(6):
        res.cell(2, heads.index(f"成员{k + 1}") + 1, "同意")
    buf = io.BytesIO()
    book.save(buf)
    parsed = read_session_workbook(buf.getvalue())
    assert parsed.decisions[NAMES].iloc[0].tolist() == ["同意"] * 6


def _edit(data: bytes, sheet: str, cell: str, value) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(data))
    book[sheet][cell] = value
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_bad_workbooks_name_the_sheet_row_and_column(ws, tmp_path):
    good = filled_workbook(ws, amounts={"H0": 60000})
    vote_col = openpyxl.utils.get_column_letter(11)  # the first member's column
    with pytest.raises(ValidationError) as e:
        read_session_workbook(_edit(good, "评定结果", f"{vote_col}2", "赞成"))
    assert (e.value.row, e.value.column) == (2, "王村长") and "表决“赞成”无效" in str(e.value)
    with pytest.raises(ValidationError) as e:
        read_session_workbook(_edit(good, "评定结果", "F2", "六万"))
    assert (e.value.row, e.value.column) == (2, "金额（元）")
    with pytest.raises(ValidationError) as e:
        read_session_workbook(_edit(good, "评定结果", f"{vote_col}1", "陌生人"))
    assert (e.value.row, e.value.column) == (1, "陌生人") and "不是评定小组的成员" in str(e.value)
    with pytest.raises(ValidationError) as e:
        read_session_workbook(_edit(good, "评定小组", "C8", "镇长"))
    assert (e.value.row, e.value.column) == (8, "身份")
    book = openpyxl.load_workbook(io.BytesIO(good))
    del book["评定小组"]
    buf = io.BytesIO()
    book.save(buf)
    with pytest.raises(ValidationError, match="缺少工作表“评定小组”"):
        read_session_workbook(buf.getvalue())
    bad = tmp_path / "x.xlsx"
    bad.write_text("not a workbook")
    with pytest.raises(ValidationError, match="不是 Excel 工作簿"):
        read_session_workbook(bad)


def test_template_cells_cannot_run_as_formulas(ws):
    table = credit.rating_list(ws.read("households"), JIA).assign(head_name="=HYPERLINK(\"x\")")
    book = openpyxl.load_workbook(io.BytesIO(session_template_bytes(table, village_code=JIA)))
    cell = book["评定结果"]["B2"]
    assert cell.data_type == "s" and cell.quotePrefix


# -- the command line ------------------------------------------------------------------------------------


def test_cli_rate_approve_return_queue_exit_codes(ws, tmp_path, monkeypatch, capsys):
    path = str(ws.path)
    cli_user(ws, monkeypatch, username="b01", role="branch_manager", branch_id="B1")
    cli_user(ws, monkeypatch, username="cc01", role="credit_committee")
    good = tmp_path / "good.xlsx"
    good.write_bytes(filled_workbook(ws, amounts={"H0": 60000, "H1": 400000}))
    four = tmp_path / "four.xlsx"
    four.write_bytes(filled_workbook(ws, panel=PANEL6[:4], amounts={"H0": 60000}))

    assert main(["credit", path, "rate", "--session", str(four), "--user", "b01"]) == 1
    assert "5–7 名成员" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["credit", path, "rate", "--session", str(good)])  # no --user
    assert e.value.code == 2
    assert main(["credit", path, "rate", "--session", str(good), "--user", "cc01"]) == 2  # no rate permission
    capsys.readouterr()
    assert main(["credit", path, "rate", "--session", str(good), "--user", "b01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    outcome = {d["hh_id"]: d["outcome"] for d in out["decisions"]}
    assert outcome == {"H0": "已授信", "H1": "待贷审会审批"}
    assert main(["credit", path, "queue", "--user", "cc01", "--json"]) == 0
    queue = json.loads(capsys.readouterr().out)["queue"]
    did = queue[0]["decision_id"]
    assert [q["hh_id"] for q in queue] == ["H1"] and queue[0]["votes_for"] == 6
    assert main(["credit", path, "approve", did, "--user", "b01"]) == 2  # not the committee
    with pytest.raises(SystemExit) as e:
        main(["credit", path, "return", did, "--user", "cc01"])  # no --reason
    assert e.value.code == 2
    assert main(["credit", path, "approve", did, "--user", "cc01"]) == 0
    assert "已审批通过" in capsys.readouterr().out
    assert main(["credit", path, "approve", did, "--user", "cc01"]) == 1  # already decided
    assert "已处理" in capsys.readouterr().err
    assert main(["credit", path, "return", did, "--reason", "材料不全", "--user", "cc01"]) == 1
    assert main(["credit", path, "queue", "--user", "cc01"]) == 0
    assert "待贷审会审批 0 户" in capsys.readouterr().out
    assert hh(GpkgWorkspace(ws.path), "H1")["granted_amount"] == 400000.0


# -- the pages -------------------------------------------------------------------------------------------


@pytest.fixture
def page_ws(ws, monkeypatch):
    monkeypatch.setenv("GRIDS_WORKSPACE", str(ws.path))
    return ws


def test_b1_records_a_session_on_the_rating_page_and_cc01_approves_on_the_review_page(page_ws):
    from tests import forged

    at = forged._session_panel(forged.open_page("pages/rating.py", B1))
    assert not at.exception, at.exception
    table = next(e for e in at.data_editor if e.key.startswith("session.editor")).value
    assert table.columns.tolist()[-5:] == forged.SESSION_PANEL and table["hh_id"].tolist() == ["H0", "H1", "H2"]
    yes = dict.fromkeys(forged.SESSION_PANEL, "同意")
    forged.forge_editor(at, "session.editor", edited_rows={0: {"grade": "良好", "amount": 60000, **yes},
                                                           1: {"grade": "黄金客户", "amount": 400000, **yes}})
    at = at.button(key="session.save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "当场授信 1 户，上报贷审会 1 户" in at.success[0].value
    assert hh(page_ws, "H0")["granted_amount"] == 60000.0 and hh(page_ws, "H1")["granted_amount"] == 0

    review = forged.open_page("pages/review.py", CC)
    assert not review.exception, review.exception
    assert review.selectbox(key="review.pick").value.endswith("-002")
    assert any("甲村村委会" in m.value for m in review.markdown)
    review = review.button(key="review.approve").click().run()
    assert not review.error, [e.value for e in review.error]
    assert hh(page_ws, "H1")["granted_amount"] == 400000.0
    assert sessions.read_decisions(page_ws)["reviewed_by"].tolist()[-1] == "cc01"


def test_review_page_is_for_the_committee_and_admin_only(page_ws):
    from grids.navigation import pages_for

    assert "pages/review.py" in {p.path for p in pages_for("credit_committee")}
    assert "pages/review.py" in {p.path for p in pages_for("admin")}
    assert "pages/review.py" not in {p.path for p in pages_for("branch_manager")}
    from tests import forged

    forged.pending_decisions(page_ws.path, n=1)
    at = forged.open_page("pages/review.py", ADMIN)  # sees the queue, cannot decide
    assert not at.exception and any("只有联社贷审会账号可以审批" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "review.approve"]


def test_session_template_downloads_from_the_rating_page(page_ws):
    from tests import forged

    at = forged._session_panel(forged.open_page("pages/rating.py", B1))
    button = next(b for b in at.get("download_button") if b.proto.id and "session.template" in b.proto.id)
    assert button.proto.label == "下载评定表模板（Excel）"


# -- the scorecard ---------------------------------------------------------------------------------------


def test_scorecard_reasons_show_every_factor_and_add_up():
    from grids import scorecard

    rec = {"labour": 2, "farmland_mu": 40, "grassland_mu": 700, "cattle": 10, "sheep": 25, "annual_income": 70000,
           "liabilities": 50000, "liabilities_other_banks": 10000, "housing": "楼房", "entity_type": "普通农牧户"}
    s = scorecard.suggest(rec, "福农卡")
    card = scorecard.load_scorecard()
    assert [r.label for r in s.reasons] == [card["factors"][f]["label"] for f in card["products"]["福农卡"]["factors"]]
    assert s.points == sum(r.points for r in s.reasons)
    by = {r.label: r for r in s.reasons}
    assert by["牲畜（折合牛）"].value == "15 头" and by["牲畜（折合牛）"].points == 8  # 10 + 25 × 0.2
    assert by["负债与年收入之比"].value == "86%" and by["负债与年收入之比"].points == 3
    lo, hi = products_band = credit_rules.DEFAULT_RULES.band("福农卡", s.grade)
    assert lo <= s.amount <= hi and s.amount % 1000 == 0
    richer = scorecard.suggest({**rec, "annual_income": 300000, "liabilities": 0, "liabilities_other_banks": 0},
                               "福农卡")
    assert richer.points > s.points and richer.amount > s.amount
    del products_band


def test_scorecard_keeps_grades_to_the_entity_type_and_caps_by_guarantee_and_need():
    from grids import scorecard

    big = {"labour": 3, "farmland_mu": 300, "grassland_mu": 2000, "cattle": 100, "annual_income": 800000,
           "housing": "楼房", "machinery_value": 500000}
    assert scorecard.suggest({**big, "entity_type": "普通农牧户"}, "福农卡").grade == "优秀"
    assert scorecard.suggest({**big, "entity_type": "家庭农牧场"}, "福农卡").grade == "钻石客户"
    officer = {"annual_income": 200000, "post_level": "处级及以上", "salary_via_rcc": True, "housing": "楼房",
               "entity_type": "公职人员"}
    s = scorecard.suggest(officer, "福薪卡")
    assert s.amount == 400000.0 or s.amount <= 200000.0  # the 处级 band starts at 40万: the band wins over the cap
    guaranteed = scorecard.suggest({**officer, "guarantee_options": "公职人员保证"}, "福薪卡")
    assert guaranteed.amount >= s.amount and 400000 <= guaranteed.amount <= 700000
    section = scorecard.suggest({**officer, "post_level": "科级"}, "福薪卡")
    assert section.amount == 200000.0 and "20万为限" in section.reasons_text()
    need = scorecard.suggest({**big, "entity_type": "普通农牧户", "need_amount": 50000}, "福农卡")
    assert need.amount == 85000.0 and "按本户申请金额" in need.reasons_text()  # not below the grade's band
    frame = scorecard.suggest_frame(pd.DataFrame([{**big, "entity_type": "家庭农牧场"},
                                                  {"entity_type": "公职人员", **officer}]))
    assert frame["product"].tolist() == ["福农卡", "福薪卡"]
    with pytest.raises(ValidationError, match="评分卡没有产品"):
        scorecard.suggest(big, "福卡")


def test_suggestions_mask_income_unless_unmasked(ws):
    from grids import scorecard, survey

    record = survey.validate_survey({"hh_id": "H0", "surveyed_at": "2026-03-05", "outcome": "补充资料", "labour": 2,
                                     "members": 4, "note": "缺收入证明",
                                     "annual_income": 88000, "entity_type": "普通农牧户"})
    survey.write_surveys(ws, [{**record, "staff_id": "S1", "branch_id": "B1"}], actor="s1", action="测试")
    masked = scorecard.village_suggestions(ws, ["H0"], {"H0": "福农卡"})
    assert "***" in masked["reasons"].iloc[0] and "88,000" not in masked["reasons"].iloc[0]
    full = scorecard.village_suggestions(ws, ["H0"], {"H0": "福农卡"}, unmask=True)
    assert "88,000" in full["reasons"].iloc[0]


# -- the demo --------------------------------------------------------------------------------------------


def test_demo_sessions_match_the_grants_and_leave_the_funnel_exact(demo_copy):
    from geodata.demo import FUNNEL
    from geodata.demo_sessions import add_sessions
    from grids import plans

    w = GpkgWorkspace(demo_copy)
    before = w.read("households", columns=["hh_id", "eligible", "granted_amount", "signed", "using"])
    out = add_sessions(w, plans.resolve_plan(w))
    hh_now = w.read("households", columns=["hh_id", "product", "grade", "granted_amount", "guarantee", "eligible"])
    pd.testing.assert_series_equal(hh_now["granted_amount"], before["granted_amount"])
    assert int((hh_now["granted_amount"] > 0).sum()) == FUNNEL["granted"]
    d = sessions.read_decisions(w)
    granted = d[d["outcome"] == sessions.GRANTED].merge(hh_now, on="hh_id", suffixes=("", "_hh"))
    assert len(granted) == FUNNEL["granted"] == out["decisions"] - out["pending"]
    assert (granted["amount"] == granted["granted_amount"]).all()
    assert (granted["grade"].fillna("") == granted["grade_hh"].fillna("")).all()
    assert (granted["votes_for"] * 2 > granted[["votes_for", "votes_against", "votes_abstain"]].sum(axis=1)).all()
    over = granted["amount"] > granted["approval_limit"]
    assert over.any() and (granted.loc[over, "reviewed_by"] == "cc01").all()
    pending = d[d["outcome"] == sessions.PENDING].merge(hh_now, on="hh_id", suffixes=("", "_hh"))
    assert 10 <= len(pending) <= 20 and (pending["granted_amount"] == 0).all() and pending["eligible"].all()
    assert (pending["amount"] > pending["approval_limit"]).all()
    panel = w.read(sessions.PANEL_LAYER)
    for _, members in panel.groupby("session_id"):
        sessions.check_panel(members)  # 5–7, every role


def test_a_direct_rating_above_the_authority_is_refused_one_manager_alone_cannot_grant_it(ws):
    big = pd.DataFrame({"hh_id": ["H1"], "grade": ["钻石客户"], "granted_amount": [1_000_000.0]})
    with pytest.raises(ValidationError, match="超过网点审批权限"):
        ScopedWorkspace(ws, B1).save_ratings(big, seen={"H1": 0})
    with pytest.raises(ValidationError, match="超过网点审批权限"):
        ScopedWorkspace(ws, ADMIN).save_ratings(big, seen={"H1": 0})
    assert hh(ws, "H1")["granted_amount"] == 0
    assert ScopedWorkspace(ws, ADMIN).save_ratings(big.assign(grade="黄金客户", granted_amount=300000.0),
                                                   seen={"H1": 0}) == 1


# -- attack findings S1–S6 ------------------------------------------------------------------------------


def test_a_session_needs_a_quorum_and_the_director_and_a_village_member_present(ws):
    """S1: the customer manager alone (4 of 5 away) cannot grant; nor a panel without the 信用社主任 or without
    any 村组干部/村民代表 present."""
    five = PANEL6[:5]
    alone = [{**m, "present": m["role"] == "客户经理"} for m in five]
    with pytest.raises(ValidationError, match="应到 5 人，实到 1 人，未过半数"):
        session(ws, panel=alone, decisions=rows(("H0", "良好", 60000, {"孙经理": "同意"})))
    half = [{**m, "present": i >= 3} for i, m in enumerate(PANEL6)]  # 3 of 6: not more than half
    with pytest.raises(ValidationError, match="未过半数"):
        session(ws, panel=half, decisions=rows(("H0", "良好", 60000, votes("同意", "同意", "同意",
                                                                             names=NAMES[3:]))))
    no_director = [{**m, "present": m["role"] != "信用社主任"} for m in PANEL6]
    with pytest.raises(ValidationError, match="信用社主任未到会"):
        session(ws, panel=no_director, decisions=rows(("H0", "良好", 60000, {n: "同意" for n in NAMES if n != "赵主任"})))
    managers = [{"name": n, "role": "客户经理"} for n in ("钱经理", "郑经理", "冯经理")]
    no_village = [{**PANEL6[0], "present": False}, {**PANEL6[1], "present": False}, PANEL6[2], PANEL6[3], *managers]
    here = ["赵主任", "孙经理", "钱经理", "郑经理", "冯经理"]
    with pytest.raises(ValidationError, match="村组干部和村民代表都未到会"):
        session(ws, panel=no_village, decisions=rows(("H0", "良好", 60000, {n: "同意" for n in here})))
    assert count(ws, sessions.DECISIONS_LAYER) == 0 and pd.isna(hh(ws, "H0")["grade"])
    assert (refusals(ws.path)["action"] == "拒绝：集中授信评定会").sum() == 4


def test_the_committee_cannot_approve_a_household_changed_since_the_session(ws):
    """S2: a household re-rated after escalation is not silently re-granted; the direct path refuses a household
    whose decision waits for the committee."""
    did = session(ws, decisions=rows(("H1", "黄金客户", 400000, ALL_YES))).decisions["decision_id"].iloc[0]
    version = hh(ws, "H1")["version"]
    assert sessions.read_decisions(ws)["hh_version"].iloc[0] == (0 if pd.isna(version) else version)
    cut = pd.DataFrame({"hh_id": ["H1"], "grade": [None], "granted_amount": [0.0]})
    for account in (B1, ADMIN):
        with pytest.raises(ValidationError, match="正等待联社贷审会审批"):
            ScopedWorkspace(ws, account).save_ratings(cut, seen=ScopedWorkspace(ws, B1).household_versions())
    with ws.transaction(actor="test", action="测试数据") as tx:  # changed anyway (e.g. another tool)
        tx.execute("UPDATE households SET grade = '一般', version = COALESCE(version, 0) + 1 WHERE hh_id = 'H1'")
    cc = ScopedWorkspace(ws, CC, require_plan=False)
    with pytest.raises(StaleEditError, match="评定会后已被改动"):
        cc.approve_decision(did)
    assert hh(ws, "H1")["granted_amount"] == 0 and hh(ws, "H1")["grade"] == "一般"
    assert sessions.read_decisions(ws)["outcome"].iloc[0] == sessions.PENDING
    cc.return_decision(did, note="农户信息已变化，请重评")  # the way out: returned, then re-rated
    assert sessions.read_decisions(ws)["outcome"].iloc[0] == sessions.REVIEW_RETURNED


def test_a_branch_manager_may_only_lower_or_cancel_a_grant_directly(ws):
    """S3: new grants and increases come from a rating session; the direct table lowers, cancels or corrects
    grade/guarantee; the administrator keeps it for corrections (audited)."""
    b1 = ScopedWorkspace(ws, B1)
    new = pd.DataFrame({"hh_id": ["H2"], "grade": ["良好"], "granted_amount": [60000.0]})
    with pytest.raises(ValidationError, match="直接评级只能调低或取消授信"):
        b1.save_ratings(new, seen=b1.household_versions())
    up = pd.DataFrame({"hh_id": ["H0"], "grade": ["优秀"], "granted_amount": [90000.0]})  # 50,000 → 90,000
    with pytest.raises(ValidationError, match="50,000 → 90,000"):
        b1.save_ratings(up, seen=b1.household_versions())
    assert hh(ws, "H2")["granted_amount"] == 0 and hh(ws, "H0")["granted_amount"] == 50000.0
    lower = pd.DataFrame({"hh_id": ["H0"], "grade": ["一般"], "granted_amount": [45000.0], "guarantee": ["保证人"]})
    assert b1.save_ratings(lower, seen=b1.household_versions()) == 1
    assert (hh(ws, "H0")["granted_amount"], hh(ws, "H0")["guarantee"]) == (45000.0, "保证人")
    cancel = pd.DataFrame({"hh_id": ["H0"], "grade": [None], "granted_amount": [0.0]})
    assert b1.save_ratings(cancel, seen=b1.household_versions()) == 1 and hh(ws, "H0")["granted_amount"] == 0
    admin = ScopedWorkspace(ws, ADMIN)
    assert admin.save_ratings(new, seen=admin.household_versions()) == 1
    row = ws.read("audit").iloc[-1]
    assert (row["actor"], row["action"]) == ("admin", "集中授信评级") and hh(ws, "H2")["granted_amount"] == 60000.0


@pytest.mark.parametrize("name", ["row", "hh_id", "amount", "product", "grade", "votes", "户号", "成员3"])
def test_member_names_that_are_columns_are_refused(ws, name):
    """S4: a member named like a column would be read as that column (int('同意'), a changed amount)."""
    panel = [*PANEL6[:5], {"name": name, "role": "村民代表"}]
    names = [*NAMES[:5], name]
    with pytest.raises(ValidationError, match="与评定表的列名相同"):
        session(ws, panel=panel, decisions=rows(("H0", "良好", 60000, votes(*["同意"] * 6, names=names))))
    assert count(ws, sessions.DECISIONS_LAYER) == 0


def test_a_huge_workbook_is_refused_without_reading_it_whole(ws):
    """S5: at most 50 panel rows, 5,000 households, 40 columns; an oversized sheet is refused unread."""
    import time
    import zipfile

    from grids import session_workbook

    template = session_template_bytes(
        pd.DataFrame({"hh_id": ["H0"], "head_name": ["甲"], "segment": ["普通农牧户"], "product": ["福农卡"]}),
        village_code=JIA, panel=PANEL6, held_on="2026-03-01", place="村委会")
    book = openpyxl.load_workbook(io.BytesIO(template))
    res = book[session_workbook.RESULT_SHEET]
    for i in range(2, session_workbook.MAX_RESULT_ROWS + 3):
        res.cell(row=i, column=1, value=f"H{i}")
    buf = io.BytesIO()
    book.save(buf)
    with pytest.raises(ValidationError, match="超过 5000 行"):
        read_session_workbook(buf.getvalue())
    book = openpyxl.load_workbook(io.BytesIO(template))
    book[session_workbook.PANEL_SHEET].cell(row=51, column=1, value="x")
    buf = io.BytesIO()
    book.save(buf)
    with pytest.raises(ValidationError, match="“评定小组”表超过 50 行"):
        read_session_workbook(buf.getvalue())
    # a sheet of 40 MB of XML (a few MB zipped): refused before openpyxl scans it
    row = "".join(f'<c r="{chr(65 + j)}{{r}}"><v>1</v></c>' for j in range(16))
    body = "".join(f'<row r="{r}">' + row.replace("{r}", str(r)) + "</row>" for r in range(1, 90_000))
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                        b'spreadsheetml/2006/main"><sheetData>' + body.encode() + b"</sheetData></worksheet>")
            z.writestr(item, data)
    start = time.perf_counter()
    with pytest.raises(ValidationError, match="过大"):
        read_session_workbook(out.getvalue())
    assert time.perf_counter() - start < 1.0


def test_names_dates_lengths_and_stray_vote_columns_are_checked(ws):
    """S6: a name repeated but for a zero-width character; a session dated 1900; a place or minutes over the
    page's caps; a vote column of someone not on the panel."""
    twin = [*PANEL6[:5], {"name": "王村\u200b长", "role": "村组干部"}]
    with pytest.raises(ValidationError, match="重复"):
        session(ws, panel=twin)
    sw = ScopedWorkspace(ws, B1)
    base = {"village_code": JIA, "place": "村委会", "panel": PANEL6, "decisions": rows(("H0", "良好", 60000, ALL_YES))}
    with pytest.raises(ValidationError, match="早于 2000-01-01"):
        sw.record_rating_session(held_on="1900-01-01", **base)
    with pytest.raises(ValidationError, match="超过 60 个字"):
        sw.record_rating_session(held_on="2026-03-01", **{**base, "place": "村" * 61})
    with pytest.raises(ValidationError, match="超过 2000 个字"):
        sw.record_rating_session(held_on="2026-03-01", minutes="纪" * 2001, **base)
    columns = pd.DataFrame([{"hh_id": "H0", "grade": "良好", "amount": 60000, **ALL_YES, "钱外人": "同意"}])
    with pytest.raises(ValidationError, match="钱外人 不是评定小组成员"):
        sw.record_rating_session(held_on="2026-03-01", **{**base, "decisions": columns})
    assert count(ws, sessions.DECISIONS_LAYER) == 0
    ok = sw.record_rating_session(held_on="2026-03-01", **{**base, "decisions": columns.drop(columns=["钱外人"])})
    assert ok.count(sessions.GRANTED) == 1


# -- PostGIS ---------------------------------------------------------------------------------------------


def test_sessions_and_review_on_postgis(ws, pg_target):
    """The same session, escalation and approval on a PostGIS copy of the workspace (the tables are declared
    in grids.model.LAYERS, made by their first write)."""
    from grids.commands.migrate import migrate
    from grids.workspace.postgis import PgWorkspace

    migrate(ws.path, pg_target)
    pg = PgWorkspace(pg_target)
    result = session(pg, decisions=rows(("H0", "良好", 60000, ALL_YES), ("H1", "黄金客户", 400000, ALL_YES),
                                        ("H2", "良好", 60000, votes("同意", "同意", "同意", "反对", "反对", "反对"))))
    assert result.decisions["outcome"].tolist() == ["已授信", "待贷审会审批", "退回重评"]
    assert hh(pg, "H0")["granted_amount"] == 60000.0 and hh(pg, "H1")["granted_amount"] == 0
    cc = ScopedWorkspace(pg, CC, require_plan=False)
    did = cc.review_queue()["decision_id"].tolist()
    assert did == [result.decisions["decision_id"].iloc[1]]
    cc.approve_decision(did[0])
    assert hh(pg, "H1")["granted_amount"] == 400000.0
    with pytest.raises(StaleEditError):
        cc.return_decision(did[0], note="迟了")
    assert cc.review_queue().empty


def test_attendance_cells_are_read_by_the_one_flag_reader():
    """是否到会 uses grids.text.parse_flag with attendance words: full-width and case variants read alike."""
    from grids.sessions import _bool

    assert [_bool(v) for v in ("到会", "出席", "是", "ＹＥＳ", "√", 1)] == [True] * 6
    assert [_bool(v) for v in ("缺席", "未到", "否", "No", "×", 0)] == [False] * 6
    assert _bool(None) is True and _bool(" ") is True and _bool("", default=False) is False
    with pytest.raises(ValidationError, match="是否到会"):
        _bool("也许")
