"""Publishing keeps live work: the three-way merge of a draft with the published plan (grids.plans.publish_plan,
merge_live_changes), conflicts listed and refused, forced publication audited, the `publish` command."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids import plans
from grids.errors import PublishConflictError, StaleRevisionError, ValidationError
from grids.plans import (
    edit_grid_rows,
    merge_live_changes,
    plan_info,
    publish_plan,
    read_grids,
    save_draft,
    versions,
)

EXTENT = (119.0, 43.0, 119.04, 43.01)
STAFF = pd.DataFrame({"staff_id": ["S1", "S2", "S3"], "name": ["张三", "李四", "王五"], "branch_id": "B01",
                      "role": "客户经理"})


def _grids(codes=("A001", "A002", "A003", "A004")):
    w = (EXTENT[2] - EXTENT[0]) / len(codes)
    return gpd.GeoDataFrame(
        {"code": list(codes), "kind": "rural", "households": [10] * len(codes), "branch_id": "B01",
         "staff_id": ["S1", "S1", "S2", "S2"][:len(codes)]},
        geometry=[shapely.box(EXTENT[0] + i * w, EXTENT[1], EXTENT[0] + (i + 1) * w, EXTENT[3])
                  for i in range(len(codes))], crs=4490)


@pytest.fixture
def ws(any_ws):
    admin = gpd.GeoDataFrame({"code": ["150422", "150422100"], "name": ["巴林左旗", "林东镇"],
                              "level": ["county", "town"], "parent_code": [None, "150422"]},
                             geometry=[shapely.union_all(_grids().geometry.values)] * 2, crs=4490)
    branches = gpd.GeoDataFrame({"branch_id": ["B01"], "name": ["一社"]}, geometry=[shapely.Point(119.02, 43.005)],
                                crs=4490)
    with any_ws.transaction(actor="t", action="测试数据") as tx:
        tx.replace("admin_units", admin)
        tx.replace("staff", STAFF)
        tx.replace("branches", branches)
    live = save_draft(any_ws, _grids(), name="现行")
    publish_plan(any_ws, live, actor="planner")
    return any_ws


def live_id(ws):
    return plans.resolve_plan(ws)


def reassign(ws, plan_id, grid_id, staff_id, actor="b01"):
    """A branch manager's reassignment on a plan (the published one, as the 人员分配 page does)."""
    seen = versions(read_grids(ws, plan_id))
    return edit_grid_rows(ws, plan_id, {grid_id: {"staff_id": staff_id}}, seen=seen, actor=actor, action="改派")


def fork(ws, name="调整"):
    return save_draft(ws, read_grids(ws, live_id(ws)), name=name, params={"from_plan": live_id(ws)})


def staff_of(ws, plan_id):
    g = read_grids(ws, plan_id)
    return dict(zip(g["grid_id"], g["staff_id"], strict=True))


def last_note(ws):
    return json.loads(ws.audit_records()[-1][6])


def test_a_live_reassignment_made_after_the_fork_survives_publication(ws):
    old_live = live_id(ws)
    draft = fork(ws)
    reassign(ws, old_live, "A001", "S3")  # the branch manager, on the live plan, after the planner forked
    rev = plan_info(ws, draft)["revision"]
    new_rev = publish_plan(ws, draft, actor="planner")
    assert live_id(ws) == draft and plan_info(ws, old_live)["status"] == "archived"
    assert staff_of(ws, draft)["A001"] == "S3"
    assert {k: v for k, v in staff_of(ws, draft).items() if k != "A001"} == \
        {k: v for k, v in staff_of(ws, old_live).items() if k != "A001"}
    assert new_rev == rev + 1 == plan_info(ws, draft)["revision"]
    note = last_note(ws)
    assert note[0]["carried"] == 1 and note[0]["carried_grids"] == ["A001"]


def test_nothing_to_carry_publishes_the_draft_as_it_is(ws):
    draft = fork(ws)
    reassign(ws, draft, "A002", "S3")  # the planner's own change in the draft
    rev = plan_info(ws, draft)["revision"]
    assert publish_plan(ws, draft, actor="planner") == rev
    assert staff_of(ws, draft)["A002"] == "S3"


def test_a_grid_reassigned_on_both_sides_is_a_conflict_and_nothing_is_written(ws):
    old_live = live_id(ws)
    draft = fork(ws)
    reassign(ws, draft, "A003", "S1", actor="planner")
    reassign(ws, old_live, "A003", "S3")
    head = ws.audit_head()
    with pytest.raises(PublishConflictError, match="A003") as info:
        publish_plan(ws, draft, actor="planner")
    assert [c["grid_id"] for c in info.value.conflicts] == ["A003"]
    assert info.value.conflicts[0]["live"]["staff_id"] == "S3" and info.value.conflicts[0]["draft"]["staff_id"] == "S1"
    assert live_id(ws) == old_live and ws.audit_head() == head  # refused: nothing written
    # the planner accepts the draft's version: published, and the overridden live assignment is in the audit
    publish_plan(ws, draft, actor="planner", accept_conflicts=True)
    assert live_id(ws) == draft and staff_of(ws, draft)["A003"] == "S1"
    over = last_note(ws)[0]["conflicts_overridden"]
    assert over[0]["grid_id"] == "A003" and over[0]["live"]["staff_id"] == "S3"


def test_the_same_change_on_both_sides_is_no_conflict(ws):
    old_live = live_id(ws)
    draft = fork(ws)
    reassign(ws, draft, "A004", "S3", actor="planner")
    reassign(ws, old_live, "A004", "S3")
    publish_plan(ws, draft, actor="planner")
    assert staff_of(ws, draft)["A004"] == "S3"


def test_a_grid_reshaped_or_split_in_the_draft_and_reassigned_live_is_listed(ws):
    old_live = live_id(ws)
    draft = fork(ws)
    g = read_grids(ws, draft)
    # A001 loses a strip to A002 (reshaped); A004 is split in two (gone under its id)
    cut = EXTENT[0] + 0.005
    a1, a2 = g.geometry.iloc[0], g.geometry.iloc[1]
    g.loc[0, "geometry"] = a1.difference(shapely.box(cut, EXTENT[1], EXTENT[2], EXTENT[3]))
    g.loc[1, "geometry"] = a2.union(a1.intersection(shapely.box(cut, EXTENT[1], EXTENT[2], EXTENT[3])))
    last = g.iloc[3]
    mid = (last.geometry.bounds[0] + last.geometry.bounds[2]) / 2
    halves = [last.geometry.intersection(shapely.box(EXTENT[0], EXTENT[1], mid, EXTENT[3])),
              last.geometry.intersection(shapely.box(mid, EXTENT[1], EXTENT[2], EXTENT[3]))]
    pieces = gpd.GeoDataFrame([{**last.drop("geometry").to_dict(), "grid_id": f"A004-{i}", "code": f"A004{i}",
                                "geometry": h} for i, h in enumerate(halves)], crs=g.crs)
    g = pd.concat([g.iloc[:3], pieces], ignore_index=True)
    plans.update_grids(ws, draft, g, actor="planner", action="拆分")
    reassign(ws, old_live, "A001", "S3")
    reassign(ws, old_live, "A004", "S1")
    reassign(ws, old_live, "A003", "S3")  # untouched in the draft: carried
    merge = merge_live_changes(ws, draft)
    assert {c["grid_id"]: c["reason"] for c in merge.conflicts} == {"A001": "草稿中边界已调整",
                                                                     "A004": "草稿中已拆分或合并"}
    assert [c["grid_id"] for c in merge.carried] == ["A003"]
    with pytest.raises(PublishConflictError):
        publish_plan(ws, draft, actor="planner")


def test_a_draft_built_from_scratch_matches_grids_by_code_and_identical_shape(ws):
    old_live = live_id(ws)
    scratch = _grids()
    scratch["staff_id"] = ["S1", "S1", "S2", "S2"]
    scratch.loc[3, "geometry"] = scratch.geometry.iloc[3].buffer(-0.0005)  # A004 redrawn: not the same grid
    draft = save_draft(ws, scratch, name="重新生成")
    reassign(ws, old_live, "A002", "S3")
    reassign(ws, old_live, "A004", "S3")
    merge = merge_live_changes(ws, draft)
    assert [c["grid_id"] for c in merge.carried] == ["A002"]
    # A004 is redrawn in the draft: its live reassignment cannot be carried, and is not lost silently
    assert [(c["grid_id"], c["reason"]) for c in merge.conflicts] == [("A004", "草稿中没有这个网格（已重划）")]


def test_errors_refuse_publication_unless_forced_with_a_reason(ws):
    bad = _grids()
    bad["staff_id"] = ["S1", "S1", "S2", None]  # A004 without a manager: a check error
    draft = save_draft(ws, bad, name="缺人")
    head = ws.audit_head()
    with pytest.raises(ValidationError, match="检查错误"):
        publish_plan(ws, draft, actor="planner")
    with pytest.raises(ValidationError, match="检查错误"):
        publish_plan(ws, draft, actor="planner", force_reason="   ")
    assert ws.audit_head() == head
    publish_plan(ws, draft, actor="planner", force_reason="县里要求先发布，缺人网格下周补")
    note = last_note(ws)[0]
    assert note["forced"] == "县里要求先发布，缺人网格下周补" and note["errors"] >= 1


def test_a_live_change_after_the_merge_was_computed_refuses(ws, monkeypatch):
    old_live = live_id(ws)
    draft = fork(ws)
    real = plans.merge_live_changes

    def merge_then_reassign(w, pid):
        out = real(w, pid)
        reassign(w, old_live, "A002", "S3")  # lands between the check and the publication
        return out

    monkeypatch.setattr(plans, "merge_live_changes", merge_then_reassign)
    with pytest.raises(StaleRevisionError, match="已发布方案"):
        publish_plan(ws, draft, actor="planner")
    assert live_id(ws) == old_live
    monkeypatch.setattr(plans, "merge_live_changes", real)
    publish_plan(ws, draft, actor="planner")
    assert staff_of(ws, draft)["A002"] == "S3"


# -- the command ---------------------------------------------------------------------------------------------


def publish(ws, *args):
    from grids.__main__ import main

    return main(["publish", ws.target, *args])


def test_publish_command_carries_refuses_conflicts_and_needs_a_reason_to_force(ws, monkeypatch, capsys):
    from tests.conftest import cli_user

    old_live = live_id(ws)
    user = cli_user(ws, monkeypatch, username="planner", role="planner")
    draft = fork(ws)
    # no --user: cannot run (a usage error)
    with pytest.raises(SystemExit) as usage:
        publish(ws, "--plan", "调整")
    assert usage.value.code == 2
    reassign(ws, draft, "A003", "S1", actor="planner")
    reassign(ws, old_live, "A003", "S3")
    reassign(ws, old_live, "A001", "S3")
    capsys.readouterr()
    assert publish(ws, "--plan", "调整", "--user", user) == 1
    out = capsys.readouterr().out
    assert "未发布" in out and "A003" in out and live_id(ws) == old_live
    # the refusal is in the audit under the account
    assert ws.audit_records()[-1][2:4] == ("planner", "拒绝：发布网格方案")
    assert publish(ws, "--plan", "调整", "--user", user, "--accept-conflicts", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["published"] and result["carried"] == ["A001"] and result["conflicts_overridden"] == ["A003"]
    assert live_id(ws) == draft and staff_of(ws, draft)["A001"] == "S3"


def test_publish_command_exits_1_naming_check_errors_and_2_for_force_without_reason(ws, monkeypatch, capsys):
    from tests.conftest import cli_user

    user = cli_user(ws, monkeypatch, username="planner", role="planner")
    bad = _grids()
    bad["staff_id"] = ["S1", "S1", "S2", None]
    save_draft(ws, bad, name="缺人")
    capsys.readouterr()
    assert publish(ws, "--plan", "缺人", "--user", user) == 1
    assert "检查错误" in capsys.readouterr().out
    assert publish(ws, "--plan", "缺人", "--user", user, "--force") == 2
    assert "--reason" in capsys.readouterr().err
    assert publish(ws, "--plan", "缺人", "--user", user, "--force", "--reason", "先发布后补人") == 0
    assert plan_info(ws, live_id(ws))["name"] == "缺人"
    # a branch manager may not publish
    b = cli_user(ws, monkeypatch, username="b01", role="branch_manager", branch_id="B01")
    save_draft(ws, _grids(), name="再调")
    assert publish(ws, "--plan", "再调", "--user", b) == 2


def test_a_draft_not_made_from_the_plan_published_now_is_one_conflict_never_a_silent_replacement(ws):
    """Attack finding: two drafts forked from the same plan; the first is published and a branch manager
    reassigns on it; publishing the second carried nothing and dropped that reassignment silently."""
    old_live = live_id(ws)
    first, second = fork(ws, "甲"), fork(ws, "乙")
    reassign(ws, second, "A002", "S3", actor="planner")  # the second draft's own change
    publish_plan(ws, first, actor="planner")
    reassign(ws, first, "A001", "S3")  # live work on the plan published now
    head = ws.audit_head()
    with pytest.raises(PublishConflictError, match="不是现在的已发布方案") as info:
        publish_plan(ws, second, actor="planner")
    assert [c["reason"] for c in info.value.conflicts] == ["草稿基于的不是现行方案"]
    assert live_id(ws) == first and ws.audit_head() == head and plan_info(ws, old_live)["status"] == "archived"
    # a draft made before any plan was published is the same case
    scratch = save_draft(ws, _grids(), name="更早")
    with ws.transaction(actor="t", action="测试：无分叉记录") as tx:  # as a draft made before any publication
        tx.delete("plan_forks", where="plan_id = ?", params=(scratch,))
    with pytest.raises(PublishConflictError):
        publish_plan(ws, scratch, actor="planner")
    # the planner accepts replacing the published plan: done, and the audit says what was replaced
    publish_plan(ws, second, actor="planner", accept_conflicts=True)
    assert live_id(ws) == second and staff_of(ws, second)["A001"] == "S1"
    assert last_note(ws)[0]["conflicts_overridden"][0]["reason"] == "草稿基于的不是现行方案"

