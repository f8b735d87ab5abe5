"""Writes are intents keyed by ids, decided by the library for the signed-in account (issue #12, items 2, 3, 5
and the ratings part of 9): scope, read-only fields, staleness judged per touched row, refusals audited."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from grids import plans
from grids.auth import Account
from grids.errors import PermissionDeniedError, StaleEditError, ValidationError
from grids.scope import ScopedWorkspace
from grids.workspace import GpkgWorkspace, Workspace
from tests.forged import ADMIN, B1, PLANNER, forged_workspace, refusals, stored

B2 = Account("b2", "branch_manager", "隆昌主任", branch_id="B2")
S1 = Account("s1", "customer_manager", "张三", branch_id="B1", staff_id="S1")
S2 = Account("s2", "customer_manager", "李四", branch_id="B2", staff_id="S2")


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """G1, G2 of branch B1 (staff S1; S3 also at B1), G3 of B2 (S2); published plan P1."""
    return GpkgWorkspace(forged_workspace(tmp_path / "ws.gpkg"))


def seen(ws: Workspace) -> dict[str, int]:
    return plans.versions(plans.read_grids(ws, "P1"))


def staff_of(ws: Workspace) -> dict[str, str]:
    return plans.read_grids(ws, "P1").set_index("grid_id")["staff_id"].to_dict()


def last_refusal(ws: Workspace) -> dict:
    r = refusals(ws.path).iloc[-1]
    return {"actor": r["actor"], "action": r["action"], **json.loads(r["detail"])[0]}


# -- scope ----------------------------------------------------------------------------------------------


def test_branch_manager_cannot_touch_a_grid_of_another_branch(ws):
    before = stored(ws.path)
    with pytest.raises(PermissionDeniedError, match="G3 不在你的管辖范围内"):
        ScopedWorkspace(ws, B1).assign_grids({"G3": {"staff_id": "S1"}}, seen=seen(ws))
    assert stored(ws.path)["grids"].equals(before["grids"])
    r = last_refusal(ws)
    assert r["actor"] == "b1" and r["action"].startswith("拒绝：") and "G3" in r["reason"]
    assert r["changes"] == {"G3": {"staff_id": "S1"}}


def test_refusals_are_audited_but_cannot_flood_the_trail(ws):
    """Attack finding: 200 tampered requests wrote 200 audit rows (≈5 kB each). Every one is still refused; at most
    REFUSALS_AUDITED_PER_MINUTE of one account's refusals a minute are recorded."""
    from grids.scope import REFUSALS_AUDITED_PER_MINUTE

    sw = ScopedWorkspace(ws, B1)
    for _ in range(REFUSALS_AUDITED_PER_MINUTE + 15):
        with pytest.raises(PermissionDeniedError):
            sw.assign_grids({"G3": {"staff_id": "S1"}}, seen=seen(ws))
    audit = ws.read("audit")
    assert (audit["action"].str.startswith("拒绝：") & (audit["actor"] == "b1")).sum() == REFUSALS_AUDITED_PER_MINUTE


def test_branch_manager_cannot_give_a_grid_to_staff_of_another_branch(ws):
    with pytest.raises(PermissionDeniedError, match="网格只能分给它所属网点的客户经理"):
        ScopedWorkspace(ws, B1).assign_grids({"G1": {"staff_id": "S2"}}, seen=seen(ws))
    assert staff_of(ws)["G1"] == "S1"
    assert last_refusal(ws)["error"] == "PermissionDeniedError"


def test_admin_cannot_give_a_grid_to_staff_of_another_branch_either(ws):
    with pytest.raises(PermissionDeniedError):
        ScopedWorkspace(ws, ADMIN).assign_grids({"G3": {"staff_id": "S1"}}, seen=seen(ws))


def test_customer_managers_and_planners_cannot_assign(ws):
    for acct in (S1, PLANNER):
        with pytest.raises(PermissionDeniedError, match="assign"):
            ScopedWorkspace(ws, acct).assign_grids({"G1": {"staff_id": "S3"}}, seen=seen(ws))
    assert refusals(ws.path)["actor"].tolist()[-2:] == ["s1", "planner"]


@pytest.mark.parametrize("field", ["grid_id", "name", "households", "branch_id"])
def test_read_only_fields_are_refused(ws, field):
    before = stored(ws.path)
    with pytest.raises(ValidationError, match="只读"):
        ScopedWorkspace(ws, B1).assign_grids({"G1": {"staff_id": "S3", field: "X"}}, seen=seen(ws))
    assert stored(ws.path)["grids"].equals(before["grids"])
    assert field in last_refusal(ws)["reason"]


def test_a_lock_must_be_true_or_false(ws):
    with pytest.raises(ValidationError, match="锁定状态"):
        ScopedWorkspace(ws, B1).assign_grids({"G1": {"locked": "yes"}}, seen=seen(ws))


# -- staleness on the touched rows only ----------------------------------------------------------------


def test_two_accounts_editing_different_rows_from_one_old_read_both_succeed(ws):
    old = seen(ws)  # both read now
    ScopedWorkspace(ws, B1).assign_grids({"G1": {"staff_id": "S3"}}, seen=old)
    ScopedWorkspace(ws, B2).assign_grids({"G3": {"locked": True}}, seen=old)
    assert staff_of(ws) == {"G1": "S3", "G2": "S1", "G3": "S2"}
    assert seen(ws) == {"G1": old["G1"] + 1, "G2": old["G2"], "G3": old["G3"] + 1}


def test_the_same_row_edited_twice_from_one_old_read_refuses_the_second(ws):
    old = seen(ws)
    ScopedWorkspace(ws, ADMIN).assign_grids({"G1": {"locked": True}}, seen=old)
    before = stored(ws.path)
    with pytest.raises(StaleEditError, match="数据已被他人修改，请刷新后重做") as err:
        ScopedWorkspace(ws, B1).assign_grids({"G1": {"staff_id": "S3"}, "G2": {"staff_id": "S3"}}, seen=old)
    assert err.value.ids == ["G1"]
    assert stored(ws.path)["grids"].equals(before["grids"])  # G2 not written either
    assert last_refusal(ws)["error"] == "StaleEditError"


def test_many_customer_managers_recording_visits_do_not_refuse_each_other(ws):
    seen_hh = ScopedWorkspace(ws, ADMIN).household_versions()
    ScopedWorkspace(ws, S1).record_visit("H4", visited_on="2024-03-06", outcome="已建档",
                                         seen_version=seen_hh["H4"])
    ScopedWorkspace(ws, S2).record_visit("H7", visited_on="2024-03-06", outcome="已建档",
                                         seen_version=seen_hh["H7"])
    assert ws.read("visits")["hh_id"].tolist()[-2:] == ["H4", "H7"]
    with pytest.raises(StaleEditError):  # H4 changed (archived) since that read
        ScopedWorkspace(ws, S1).record_visit("H4", visited_on="2024-03-06", outcome="补充资料",
                                             seen_version=seen_hh["H4"])
    assert len(ws.read("visits")) == 5


def test_a_visit_outside_the_scope_is_refused_and_audited(ws):
    with pytest.raises(PermissionDeniedError, match="H6"):
        ScopedWorkspace(ws, S1).record_visit("H6", visited_on="2024-03-06", outcome="已建档", seen_version=0)
    assert "H6" not in set(ws.read("visits").query("staff_id == 'S1'")["hh_id"])
    assert last_refusal(ws)["hh_id"] == "H6"


def test_ratings_of_different_households_from_one_old_read_both_succeed(ws):
    old = ScopedWorkspace(ws, B1).household_versions()
    a = pd.DataFrame({"hh_id": ["H0"], "grade": ["一般"], "granted_amount": [45000.0]})  # b1 lowers H0's grant
    b = pd.DataFrame({"hh_id": ["H2"], "grade": ["一般"], "granted_amount": [45000.0]})
    assert ScopedWorkspace(ws, B1).save_ratings(a, seen=old) == 1
    assert ScopedWorkspace(ws, ADMIN).save_ratings(b, seen=old) == 1
    with pytest.raises(StaleEditError):
        ScopedWorkspace(ws, ADMIN).save_ratings(a.assign(granted_amount=40000.0), seen=old)
    hh = ws.read("households").set_index("hh_id")
    assert hh.loc["H0", "granted_amount"] == 45000.0 and hh.loc["H0", "version"] == 1


def test_ratings_refuse_read_only_columns_and_other_branches(ws):
    sw = ScopedWorkspace(ws, B1)
    with pytest.raises(ValidationError, match="product"):
        sw.save_ratings(pd.DataFrame({"hh_id": ["H1"], "grade": ["良好"], "granted_amount": [5e4],
                                      "product": ["福商卡"]}), seen={"H1": 0})
    with pytest.raises(PermissionDeniedError, match="H6"):
        sw.save_ratings(pd.DataFrame({"hh_id": ["H6"], "grade": ["良好"], "granted_amount": [5e4]}), seen={"H6": 0})
    with pytest.raises(ValidationError, match="不在 福农卡"):
        sw.save_ratings(pd.DataFrame({"hh_id": ["H1"], "grade": ["优秀"], "granted_amount": [9e5]}), seen={"H1": 0})
    assert refusals(ws.path)["action"].tolist()[-3:] == ["拒绝：集中授信评级"] * 3


def test_ratings_audit_each_household_before_and_after(ws):
    ratings = pd.DataFrame({"hh_id": ["H1", "H0"], "grade": ["良好", "优秀"], "granted_amount": [60000.0, 90000.0],
                            "guarantee": ["", "保证人"]})
    ScopedWorkspace(ws, ADMIN).save_ratings(ratings, seen={"H0": 0, "H1": 0})  # grants: the admin's correction
    row = ws.read("audit").iloc[-1]
    assert row["action"] == "集中授信评级" and row["actor"] == "admin"
    changed = {c["hh_id"]: c for c in json.loads(row["detail"])[0]["changed"]}
    assert changed["H0"]["before"]["granted_amount"] == 50000.0
    assert changed["H0"]["after"] == {"product": "福农卡", "grade": "优秀", "granted_amount": 90000.0,
                                      "guarantee": "保证人", "eligible": True}
    assert changed["H1"]["before"]["grade"] is None and changed["H1"]["after"]["grade"] == "良好"


# -- planner's drafts -----------------------------------------------------------------------------------


def _draft(ws: Workspace) -> str:
    return ScopedWorkspace(ws, PLANNER).new_draft("P1", name="调整")


def test_a_planner_save_keeps_a_concurrent_change_of_an_untouched_grid(ws):
    pid = _draft(ws)
    base = plans.read_grids(ws, pid)
    edited = base.assign(name=["甲（改）", "乙网格", "丙网格"])  # the planner renames G1
    ScopedWorkspace(ws, ADMIN, plan=pid).assign_grids({"G2": {"staff_id": "S3"}}, seen=plans.versions(base))
    ScopedWorkspace(ws, PLANNER).save_plan_edits(pid, edited, base=base)
    after = plans.read_grids(ws, pid).set_index("grid_id")
    assert after.loc["G1", "name"] == "甲（改）" and after.loc["G2", "staff_id"] == "S3"


def test_a_planner_save_touching_a_changed_grid_is_refused(ws):
    pid = _draft(ws)
    base = plans.read_grids(ws, pid)
    ScopedWorkspace(ws, ADMIN, plan=pid).assign_grids({"G1": {"staff_id": "S3"}}, seen=plans.versions(base))
    with pytest.raises(StaleEditError, match="G1"):
        ScopedWorkspace(ws, PLANNER).save_plan_edits(pid, base.iloc[1:], base=base)  # removes G1
    assert len(plans.read_grids(ws, pid)) == 3


def test_branch_managers_cannot_save_plan_edits(ws):
    pid = _draft(ws)
    base = plans.read_grids(ws, pid)
    with pytest.raises(PermissionDeniedError):
        ScopedWorkspace(ws, B1).save_plan_edits(pid, base.iloc[1:], base=base)
    assert last_refusal(ws)["actor"] == "b1"


def test_update_grids_bumps_only_the_rows_it_changes(ws):
    old = seen(ws)
    g = plans.read_grids(ws, "P1")
    g.loc[g["grid_id"] == "G2", "staff_id"] = "S3"
    plans.update_grids(ws, "P1", g.iloc[::-1], actor="t", action="分配")  # reordered on the way in
    assert seen(ws) == {"G1": old["G1"], "G2": old["G2"] + 1, "G3": old["G3"]}


# -- rows are ids, not positions -------------------------------------------------------------------------


def test_table_edits_follow_the_rows_the_server_showed_not_positions(ws):
    from grids.ratings import table_intents

    shown = pd.DataFrame(plans.read_grids(ws, "P1")[["grid_id", "staff_id"]])
    edited = shown.copy()
    edited.loc[0, "staff_id"] = "S3"  # the user's edit of the first row shown (G1)
    # meanwhile the stored rows are reordered and a grid is inserted before G1: the edit still names G1
    g = plans.read_grids(ws, "P1")
    plans.update_grids(ws, "P1", g.iloc[::-1], actor="t", action="重排")
    intents = table_intents(shown, edited, id_column="grid_id")
    assert intents == {"G1": {"staff_id": "S3"}}
    ScopedWorkspace(ws, B1).assign_grids(intents, seen=plans.versions(shown.assign(version=1)))
    assert staff_of(ws) == {"G1": "S3", "G2": "S1", "G3": "S2"}


# -- the unmasked whitelist ------------------------------------------------------------------------------


def test_unmasked_whitelist_is_audited_before_the_bytes_exist(ws, monkeypatch):
    from grids import credit

    order = []
    real = credit.whitelist_bytes
    monkeypatch.setattr(credit, "whitelist_bytes", lambda *a, **k: (order.append(
        ws.read("audit")["action"].iloc[-1]), real(*a, **k))[1])
    data = ScopedWorkspace(ws, B1).whitelist_file("150422100201", fmt="csv", unmask=True)
    assert "150422198001010000" in data.decode("utf-8-sig")
    assert order == ["导出（含明文个人信息）"]
    detail = json.loads(ws.read("audit")["detail"].iloc[-1])[0]
    assert detail["what"] == "白名单 150422100201" and detail["rows"] == 1
    masked = ScopedWorkspace(ws, B1).whitelist_file("150422100201", fmt="csv")
    assert "150422198001010000" not in masked.decode("utf-8-sig")
    with pytest.raises(PermissionDeniedError):
        ScopedWorkspace(ws, PLANNER).whitelist_file("150422100201", unmask=True)


def test_only_planners_build_plans_even_in_a_workspace_without_one(tmp_path):
    from tests.test_app import tiny_workspace

    ws = GpkgWorkspace(tiny_workspace(tmp_path / "ws.gpkg", with_plan=False))
    with pytest.raises(PermissionDeniedError):
        ScopedWorkspace(ws, B1, require_plan=False).build_plan(name="甲", min_households=1, max_households=9)
    assert last_refusal(ws)["action"] == "拒绝：生成网格方案 甲"
    pid = ScopedWorkspace(ws, PLANNER, require_plan=False).build_plan(name="甲", min_households=1, max_households=9)
    assert plans.plan_info(ws, pid)["name"] == "甲" and len(plans.read_grids(ws, pid))


def test_branch_managers_cannot_open_a_draft_plan(ws):
    """Attack finding: ``ScopedWorkspace(ws, b1, plan=<draft>)`` let a branch manager edit a planner's draft."""
    pid = _draft(ws)
    with pytest.raises(PermissionDeniedError, match="只能查看和调整已发布的方案"):
        ScopedWorkspace(ws, B1, plan=pid)
    assert ScopedWorkspace(ws, B1, plan="P1").plan_id == "P1"  # the published plan, named, is fine
