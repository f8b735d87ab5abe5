"""The staffing page's decisions (人员分配), moved out of pages/staffing.py: what it shows (grids.staffview) and what
it sends and says after a save (grids.staffing). Small frames for the pure rules; the saves on the county of
tests/test_lifecycle.py (B1: nine grids of 100 households in three columns held by S1, S2, S3; G11 locked to
S2; B2: two grids held by S9), through a real ScopedWorkspace."""

from __future__ import annotations

import pandas as pd
import pytest

from grids import plans, staffing, staffview
from grids.errors import PermissionDeniedError, StaleEditError
from grids.lifecycle import StaffChange
from grids.scope import ScopedWorkspace
from grids.workspace import Workspace
from tests.test_lifecycle import ADMIN, B1, county_ws

# ---------------------------------------------------------------------------------------------------------
# grids.staffview: the branch, its metrics and warnings, the selected grid, a change's preview
# ---------------------------------------------------------------------------------------------------------


def _grids() -> pd.DataFrame:
    return pd.DataFrame({"grid_id": ["G3", "G1", "G2", "G9"], "name": ["三", "一", None, "九"],
                         "households": [30, 10, 20, 90], "branch_id": ["B1", "B1", "B1", "B2"],
                         "staff_id": ["S1", "S2", "S3", "S9"], "locked": [False, True, False, False],
                         "version": [3, 1, None, 7]})


def _staff() -> pd.DataFrame:
    return pd.DataFrame({"staff_id": ["M1", "S1", "S2", "S3", "S9"], "name": ["主任", "甲", "乙", "丙", "己"],
                         "branch_id": ["B1", "B1", "B1", "B1", "B2"],
                         "role": ["网点主任", "客户经理", "客户经理", "客户经理", "客户经理"],
                         "status": [None, None, None, "left", None]})


def test_branch_team_is_the_branchs_grids_by_id_its_customer_managers_in_post_and_the_leavers_grids() -> None:
    branches = pd.DataFrame({"branch_id": ["B1", "B2"], "name": ["一社", "二社"]})
    view = staffview.branch_team(_grids(), _staff(), branches, "B1")
    assert view.grids["grid_id"].tolist() == ["G1", "G2", "G3"]  # sorted, B2's G9 left out
    assert view.names == {"S1": "甲", "S2": "乙"}  # not the 网点主任, not S3 who left
    assert view.versions == {"G1": 1, "G2": 0, "G3": 3}
    assert view.orphans == ["G2"] and view.offices["branch_id"].tolist() == ["B1"] and not view.empty
    assert staffview.branch_team(_grids(), _staff(), branches, "B7").empty


def test_labels_of_the_select_boxes() -> None:
    assert staffview.staff_labels(_staff().iloc[1:3]) == {"S1": "甲（S1）", "S2": "乙（S2）"}
    names = staffview.branch_names(pd.DataFrame({"branch_id": ["B2", "B1", "B3"], "name": ["二社", "一社", "三社"]}))
    assert list(staffview.branch_labels(names, sort=True).items()) == [("B1", "B1 一社"), ("B2", "B2 二社"),
                                                                       ("B3", "B3 三社")]
    assert list(staffview.branch_labels(names)) == ["B2", "B1", "B3"]  # the layer's order unless sorted
    assert staffview.branch_labels(names, without="B2") == {"B1": "B1 一社", "B3": "B3 三社"}


@pytest.mark.parametrize(("orphans", "balance_ok", "note"), [(["G2"], True, "1 个网格待交接"), ([], True, "已均衡"),
                                                             ([], False, "可再均衡")])
def test_workload_metrics_never_call_a_branch_with_grids_to_hand_over_balanced(orphans, balance_ok, note) -> None:
    branch_m = pd.DataFrame({"staff_spread": [0.123], "spread_lower_bound": [0.05], "balance_ok": [balance_ok]})
    grids = pd.DataFrame({"households": [1200, 34]})
    metrics = staffview.workload_metrics(branch_m, grids, orphans)
    assert [(m.label, m.value, m.delta) for m in metrics] == [
        ("网格", 2, None), ("住户", "1,234", None), ("客户经理负荷差", "12%", None), ("可达到的下限", "5%", note)]
    assert all(m.help for m in metrics[2:])


def test_orphan_warning_counts_all_names_ten_and_escapes_markdown() -> None:
    assert staffview.orphan_warning([]) is None
    text = staffview.orphan_warning(["G_1", *(f"G{i}" for i in range(2, 13))])
    assert text is not None and text.startswith("12 个网格的客户经理已离职或不在本网点：G\\_1、G2、")
    assert "G10" in text and "G11" not in text and "登记离职交接" in text


def test_split_warnings_name_the_fix_in_markdown(monkeypatch) -> None:
    found = pd.DataFrame({"message": ["网点 B1 负荷差 *30%*"], "fix": ["拆分网格 G_1"]})
    monkeypatch.setattr(staffview, "balance_warnings", lambda grids, team: found)
    assert staffview.split_warnings(pd.DataFrame(), pd.DataFrame()) == [
        "网点 B1 负荷差 \\*30%\\*。  \n**建议：**拆分网格 G\\_1"]


def test_selection_of_a_grid_of_another_branch_or_without_a_holder_on_the_team() -> None:
    grids = _grids()
    names = {"S1": "甲", "S2": "乙"}
    assert staffview.selection(grids, names, None).grid_id is None
    other = staffview.selection(grids, names, "G404")
    assert other.grid_id is None and other.text.endswith("（在地图上点击）")
    held = staffview.selection(grids, names, "G1")
    assert (held.grid_id, held.current, held.position) == ("G1", "S2", 1)
    leaver = staffview.selection(grids, names, "G2")  # S3 left: the box starts at the first of the team
    assert (leaver.current, leaver.position, leaver.text) == ("S3", 0, "**选中的网格：** G2（G2，20 户）")
    nobody = staffview.selection(grids.assign(staff_id=[None, None, None, None]), names, "G3")
    assert (nobody.current, nobody.position) == (None, 0)


def _change(**kw) -> StaffChange:
    moves = pd.DataFrame({"grid_id": ["G1"], "name": ["一"], "households": [10], "branch_id": ["B1"],
                          "before": ["S3"], "after": ["S1"], "reason": ["交接"], "lock_released": [False]})
    balance = pd.DataFrame({"branch_id": ["B1"], "staff_before": [3], "staff_after": [2], "spread_before": [0.1],
                            "spread_after": [0.05], "goal": [0.1], "lower_bound": [0.0], "reached": [True]})
    return StaffChange(**{"action": "leave", "staff": {"staff_id": "S3", "name": "丙_*"}, "from_branch": "B1",
                          "to_branch": None, "moves": moves, "balance": balance, **kw})


def test_change_summary_is_a_heading_and_the_summary_without_the_per_grid_lines() -> None:
    lines = staffview.change_summary(_change())
    assert lines[0] == "**预览：丙\\_\\*（S3） 离职（网点 B1）**（地图上虚线框为将改派的网格，保存前不生效）"
    assert lines[1].startswith("移交 1 个网格") and lines[2].startswith("网点 B1：客户经理 3 → 2 人")
    assert len(lines) == 3 and not any("G1" in line for line in lines)  # the grid is in the moves table


# ---------------------------------------------------------------------------------------------------------
# grids.staffing: requests built from widget values
# ---------------------------------------------------------------------------------------------------------


def test_staff_requests_wait_for_every_field_they_need() -> None:
    assert staffing.staff_request("新增客户经理", branch="B1", staff_id="S200", name="") is None
    assert staffing.staff_request("新增客户经理", branch="B1", staff_id="", name="新人") is None
    add = staffing.staff_request("新增客户经理", branch="B1", staff_id="S200", name="新人", role="客户经理")
    assert add == staffing.StaffRequest("add", {"person": {"staff_id": "S200", "name": "新人", "branch_id": "B1",
                                                           "role": "客户经理"}})
    assert staffing.staff_request("登记离职", branch="B1", staff_id="") is None
    assert staffing.staff_request("登记离职", branch="B1", staff_id="S2") == staffing.StaffRequest(
        "leave", {"staff_id": "S2"})
    assert staffing.staff_request("调到其他网点", branch="B1", staff_id="S2", to_branch="") is None
    assert staffing.staff_request("调到其他网点", branch="B1", staff_id="", to_branch="B2") is None


def test_a_reassignment_to_the_holder_or_to_nobody_saves_nothing() -> None:
    versions = {"G1": 4}
    assert staffing.reassignment("G1", "S1", current="S1", versions=versions, names={}).empty
    assert staffing.reassignment("G1", "", current="S1", versions=versions, names={}).empty
    one = staffing.reassignment("G1", "S2", current=None, versions=versions, names={"S2": "乙"})
    assert (one.changes, one.seen, one.action, one.done) == (
        {"G1": {"staff_id": "S2"}}, {"G1": 4}, "网格 G1 改派给 S2", "网格 G1 已改派给 乙")


def test_table_edits_are_keyed_by_the_rows_shown_with_their_versions() -> None:
    shown = pd.DataFrame({"grid_id": ["G1", "G2", "G3"], "staff_id": ["S1", "S1", "S2"],
                          "locked": [False, False, True]})
    versions = {"G1": 1, "G2": 2, "G3": 3}
    assert staffing.table_assignment(shown, shown, versions, branch="B1").empty
    assert staffing.table_assignment(shown, shown, versions, branch="B1").label == "保存表格修改（0 处）"
    edited = shown.assign(staff_id=["S1", "S2", "S2"], locked=[False, False, False], grid_id=["G1", "G2", "G9"])
    edits = staffing.table_assignment(shown, edited, versions, branch="B1")
    assert edits.changes == {"G2": {"staff_id": "S2"}, "G3": {"grid_id": "G9", "locked": False}}
    assert edits.seen == {"G2": 2, "G3": 3} and edits.action == "网点 B1 调整网格分配"
    assert edits.label == "保存表格修改（2 处）"
    added = pd.concat([shown, pd.DataFrame([{"grid_id": "G7", "staff_id": "S1", "locked": False}])],
                      ignore_index=True)
    forged = staffing.table_assignment(shown, added, versions, branch="B1")
    assert list(forged.changes) == ["（新增行 1）"] and forged.seen == {}  # the library refuses the unknown id


def test_quota_requests() -> None:
    table = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["甲", "乙"], "quota": [6, None]})
    same = staffing.quota_request(table, table, default=5, new_default=5, own_branch=True)
    assert same.empty
    county = staffing.quota_request(table, table, default=5, new_default=0, own_branch=True)
    assert (county.set_default, county.branch_default, county.quotas) == (True, None, {})
    admin = staffing.quota_request(table, table.assign(quota=[None, 9]), default=5, new_default=9,
                                   own_branch=False)  # an admin has no branch default to set
    assert (admin.quotas, admin.set_default, admin.branch_default) == ({"S1": None, "S2": 9}, False, 5)
    assert not admin.empty


def test_account_toggle_does_the_opposite_of_the_state() -> None:
    acc = pd.DataFrame({"username": ["s1", "s2"], "active": [True, False]})
    assert staffing.account_toggle(acc, "s1") == ("s1", False, "停用账号")
    assert staffing.account_toggle(acc, "s2") == ("s2", True, "启用账号")


def test_the_map_shows_a_held_staff_change_before_a_balance_preview() -> None:
    grids = _grids().iloc[:3]
    team = _staff().iloc[1:3]
    plain = staffing.map_view(grids, team, _staff(), preview=None, held=None)
    assert plain.grids is grids and plain.changed is None and plain.token is None
    preview = staffing.BalancePreview(grids.assign(staff_id=["S1", "S1", "S2"]), ["G1"], {"G1": 1})
    proposed = staffing.map_view(grids, team, _staff(), preview=preview, held=None)
    assert proposed.grids is preview.grids and proposed.changed == ["G1"] and proposed.token == preview.token
    held = staffing.HeldChange(staffing.StaffRequest("leave", {"staff_id": "S3"}), _change(), {})
    shown = staffing.map_view(grids, team, _staff(), preview=preview, held=held)
    assert shown.token == held.token != preview.token and shown.changed == ["G1"]
    assert shown.grids.set_index("grid_id").loc["G1", "staff_id"] == "S1"  # as the change leaves it


# ---------------------------------------------------------------------------------------------------------
# grids.staffing: the saves, through a real ScopedWorkspace
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return county_ws(tmp_path / "ws.gpkg")


def _stored(ws: Workspace) -> pd.DataFrame:
    return plans.read_grids(ws, plans.resolve_plan(ws)).set_index("grid_id").sort_index()


def _branch(ws: Workspace, branch: str = "B1") -> staffview.BranchTeam:
    grids = plans.read_grids(ws, plans.resolve_plan(ws))
    return staffview.branch_team(grids, ws.read("staff"), ws.read("branches"), branch)


def test_a_balance_preview_moves_unlocked_grids_only_and_saves_as_previewed(ws) -> None:
    ScopedWorkspace(ws, ADMIN).assign_grids({"G00": {"staff_id": "S2"}}, seen={"G00": 0})  # S2: 400, S1: 200
    view = _branch(ws)
    preview = staffing.balance_preview(view.grids, view.team, view.versions, branch="B1")
    before = view.grids.set_index("grid_id")["staff_id"]
    after = preview.grids.set_index("grid_id")["staff_id"]
    assert preview.changed == before.index[before != after].tolist() and preview.changed
    assert "G11" not in preview.changed and preview.seen == view.versions
    assert preview.summary == f"将改派 {len(preview.changed)} 个网格（地图上虚线框）："
    assert staffing.balance_preview(view.grids, view.team, view.versions, branch="B1").token != preview.token
    balance = staffing.balance_assignment(preview, branch="B1")
    assert balance.seen == {g: view.versions[g] for g in preview.changed} and balance.label == "应用均衡方案"
    sw = ScopedWorkspace(ws, B1)
    notice = staffing.save_assignment(sw, balance)
    assert notice == f"网点 B1 自动均衡：已保存 {len(preview.changed)} 个网格（方案第 {ws.read('plans').iloc[0]['revision']} 版）"
    assert _stored(ws).loc[after.index, "staff_id"].tolist() == after.tolist()
    with pytest.raises(StaleEditError):  # the same preview again: its grids changed since
        staffing.save_assignment(sw, balance)
    again = _branch(ws)  # balanced now: a new preview moves nothing, and there is nothing to apply
    settled = staffing.balance_preview(again.grids, again.team, again.versions, branch="B1")
    assert settled.changed == [] and staffing.balance_assignment(settled, branch="B1").empty


def test_a_reassignment_notice_names_the_new_holder_and_revision(ws) -> None:
    view = _branch(ws)
    one = staffing.reassignment("G00", "S3", current="S1", versions=view.versions, names=view.names)
    notice = staffing.save_assignment(ScopedWorkspace(ws, B1), one)
    assert notice.startswith("网格 G00 已改派给 丙（方案第 ") and _stored(ws).loc["G00", "staff_id"] == "S3"



def test_a_reassignment_made_meanwhile_is_refused_not_overwritten(ws) -> None:
    """The page shows G00 held by S1; before the click another session gives it to S2. The click's rerun reads
    the newer version, but the save is checked against the version shown, so S2's change stands."""
    shown = _branch(ws).versions
    staffing.save_assignment(ScopedWorkspace(ws, B1), staffing.reassignment(
        "G00", "S2", current="S1", versions=shown, names={}))
    now = _branch(ws)
    one = staffing.reassignment("G00", "S3", current="S1", versions=now.versions, names=now.names,
                                shown={"G00": shown["G00"]})
    with pytest.raises(StaleEditError):
        staffing.save_assignment(ScopedWorkspace(ws, B1), one)
    assert _stored(ws).loc["G00", "staff_id"] == "S2"

def test_a_leave_previewed_then_saved_against_the_grids_it_was_shown_at(ws) -> None:
    sw = ScopedWorkspace(ws, B1)
    grids = plans.read_grids(ws, plans.resolve_plan(ws))
    held = staffing.preview_change(sw, grids, staffing.StaffRequest("leave", {"staff_id": "S2"}), branch="B1")
    assert set(held.seen) == set(grids.loc[grids["branch_id"] == "B1", "grid_id"])  # B1 only: B2 not concerned
    assert (_stored(ws)["staff_id"] == "S2").sum() == 3  # a preview writes nothing
    notice = staffing.save_change(sw, held)
    assert notice.startswith("已保存：乙（S2） 离职（网点 B1），改派 ") and "（方案第 " in notice
    assert not (_stored(ws)["staff_id"] == "S2").any()


def test_a_move_preview_covers_both_branches_and_a_stale_one_is_refused(ws) -> None:
    sw = ScopedWorkspace(ws, B1)
    grids = plans.read_grids(ws, plans.resolve_plan(ws))
    held = staffing.preview_change(sw, grids, staffing.StaffRequest("move", {"staff_id": "S3", "to_branch": "B2"}), branch="B1")
    assert set(held.seen) == set(grids["grid_id"])  # the grids of B1 and B2
    ScopedWorkspace(ws, ADMIN).assign_grids({"G30": {"locked": True}}, seen={"G30": held.seen["G30"]})
    with pytest.raises(StaleEditError):
        staffing.save_change(sw, held)
    assert ws.read("staff").set_index("staff_id").loc["S3", "branch_id"] == "B1"


def test_a_newcomer_is_added_to_the_branch(ws) -> None:
    sw = ScopedWorkspace(ws, B1)
    grids = plans.read_grids(ws, plans.resolve_plan(ws))
    request = staffing.staff_request("新增客户经理", branch="B1", staff_id="S4", name="丁", role="客户经理")
    assert request is not None
    notice = staffing.save_change(sw, staffing.preview_change(sw, grids, request, branch="B1"))
    assert notice.startswith("已保存：新增客户经理 丁（S4）（网点 B1），改派 ")
    assert ws.read("staff").set_index("staff_id").loc["S4", "branch_id"] == "B1"


def test_toggling_an_account_saves_and_says_so(ws) -> None:
    sw = ScopedWorkspace(ws, B1)
    toggle = staffing.account_toggle(sw.staff_accounts(), "s1")
    assert toggle.label == "停用账号"
    assert staffing.toggle_account(sw, toggle) == "账号 s1 已停用"
    assert not bool(ws.read("accounts").set_index("username").loc["s1", "active"])
    assert staffing.toggle_account(sw, staffing.account_toggle(sw.staff_accounts(), "s1")) == "账号 s1 已启用"
    with pytest.raises(PermissionDeniedError):  # another branch's staff
        staffing.toggle_account(sw, staffing.AccountToggle("s9", False, "停用账号"))


def test_saving_quotas_with_and_without_the_branch_default(ws) -> None:
    sw = ScopedWorkspace(ws, B1)
    table = staffview.staff_quotas(_branch(ws).team)
    request = staffing.quota_request(table, table.assign(quota=[6, None, None]), default=None, new_default=8,
                                     own_branch=True)
    assert staffing.save_quotas(sw, request) == "已保存定额（1 人，网点默认）"
    assert ws.read("staff").set_index("staff_id").loc["S1", "quota_per_day"] == 6
    assert staffview.branch_quota(ws.read("branches"), "B1") == 8
    table = staffview.staff_quotas(_branch(ws).team)  # as stored now: S1 6
    again = staffing.quota_request(table, table.assign(quota=[None, 7, None]), default=8, new_default=8,
                                   own_branch=True)
    assert staffing.save_quotas(sw, again) == "已保存定额（2 人）"


def test_export_file_is_the_staff_members_file_in_scope(ws) -> None:
    sw = ScopedWorkspace(ws, B1)
    assert staffing.export_file(sw, fmt="xlsx", staff_id="S1")[:2] == b"PK"  # an xlsx is a zip
    with pytest.raises(PermissionDeniedError):
        staffing.export_file(sw, fmt="xlsx", staff_id="S9")
