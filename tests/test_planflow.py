"""grids.planflow: what the planning page decides — which plan it edits, what each button may do, what a save, a
publication, a build, a new draft, a comparison, a what-if, a drawing or a merge comes to. Plan lists and
histories by hand; writes against the tiny published workspace of the page tests (one town, two villages)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids import edit, planflow, planmaps, plans
from grids.auth import Account
from grids.crs import wgs84_to_gcj02
from grids.errors import ValidationError
from grids.scope import ScopedWorkspace

from .test_app_planning import E, W, small_workspace

PLANNER = Account("planner", "planner", "规划员")
G1, G2 = "150422100201001", "150422100202001"


@pytest.fixture
def ws(tmp_path):
    return small_workspace(tmp_path / "ws.gpkg")


def draft_of(ws, name: str = "调整") -> str:
    return ScopedWorkspace(ws, PLANNER).new_draft(plans.resolve_plan(ws), name=name)


def history_of(*states: tuple[object, str]) -> edit.History:
    h = edit.History()
    for state, label in states:
        h.push(state, label)
    return h


def found(*severities: str) -> pd.DataFrame:
    return pd.DataFrame({"kind": ["gap"] * len(severities), "severity": list(severities)})


# ------------------------------------------------------------------------------------- which plan is edited


def test_the_editor_offers_every_plan_but_archived_ones_and_opens_the_first_draft(ws):
    listed = pd.DataFrame({"plan_id": ["p1", "p2", "p3", "p4"], "status": ["archived", "published", "draft", "draft"]})
    assert planflow.plan_picker(listed, "p4") == (["p2", "p3", "p4"], 2)
    assert planflow.plan_picker(listed, "p1") == (["p2", "p3", "p4"], 0)  # an archived plan is not offered
    assert planflow.plan_to_open(ws, listed, "p1") is None  # a listed plan stays open
    assert planflow.plan_to_open(ws, listed, None) == "p3"
    assert planflow.plan_to_open(ws, listed, "gone") == "p3"
    # no draft: the workspace's published plan
    published = plans.resolve_plan(ws)
    assert planflow.plan_to_open(ws, plans.list_plans(ws), None) == published
    assert planflow.published_plan(plans.list_plans(ws)) == published
    assert planflow.published_plan(listed.assign(status="draft")) is None


def test_comparison_pickers_start_at_the_published_plan_and_another_plan():
    ids = ["d1", "p1", "d2"]
    assert planflow.default_index(ids, prefer="p1") == 1
    assert planflow.default_index(ids, prefer=None) == 0
    assert planflow.default_index(ids, avoid="d1") == 1 and planflow.default_index(ids, avoid="p1") == 0
    assert planflow.default_index(["d1"], avoid="d1") == 0
    assert planflow.can_compare("d1", "p1") and not planflow.can_compare("d1", "d1")
    held = ("d1", "p1", "result")
    assert planflow.shown_comparison(held, "d1", "p1") == "result"
    assert planflow.shown_comparison(held, "p1", "d1") is None  # swapped: not this comparison
    assert planflow.shown_comparison(None, "d1", "p1") is None


def test_a_plan_opens_with_the_household_bounds_it_was_built_for():
    assert planflow.plan_bounds({"params": {"min_households": 50, "max_households": 400}}) == (50, 400)
    from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS

    assert planflow.plan_bounds({"params": {}}) == (DEFAULT_MIN_HOUSEHOLDS, DEFAULT_MAX_HOUSEHOLDS)
    assert planflow.plan_bounds({}) == (DEFAULT_MIN_HOUSEHOLDS, DEFAULT_MAX_HOUSEHOLDS)


# ------------------------------------------------------------------------------------------ the edit area


def grids_of(n: int) -> pd.DataFrame:
    return pd.DataFrame({"households": [10 * (i + 1) for i in range(n)]})


def test_only_a_draft_with_unsaved_edits_can_be_saved_and_only_a_saved_clean_draft_published():
    loaded = history_of((grids_of(2), "载入第 3 版"))
    edited = history_of((grids_of(2), "载入第 3 版"), (grids_of(1), "合并网格 a、b"))
    draft, published = {"status": "draft"}, {"status": "published"}

    v = planflow.edit_view(draft, loaded, found())
    assert (v.can_save, v.can_publish, v.can_undo, v.can_redo, v.dirty) == (False, True, False, False, False)
    v = planflow.edit_view(draft, edited, found())
    assert (v.can_save, v.can_publish, v.can_undo, v.dirty) == (True, False, True, True)
    v = planflow.edit_view(draft, loaded, found("error", "warning"))
    assert not v.can_publish and v.n_errors == 1  # an error blocks publishing
    assert planflow.edit_view(draft, loaded, found("warning", "warning")).can_publish  # warnings do not
    v = planflow.edit_view(published, edited, found())
    assert not v.can_save and not v.can_publish and not v.is_draft
    edited.undo()
    v = planflow.edit_view(draft, edited, found())
    assert v.can_redo and not v.dirty and v.can_publish  # undone to the loaded state: nothing to save


def test_the_edit_area_texts_follow_the_state():
    edited = history_of((grids_of(3), "载入第 3 版"), (grids_of(2), "合并网格 *a*、b"))
    v = planflow.edit_view({"status": "draft"}, edited, found("error", "warning", "warning"))
    assert dict((label, (value, delta)) for label, value, delta in v.metrics) == {
        "网格": ("2", None), "住户": ("30", None), "每格最少": (10, None), "中位数": ("15", None), "最多": (20, None),
        "检查错误": (1, "需修正"), "检查警告": (2, "不影响发布")}
    assert v.status == "当前：合并网格 \\*a\\*、b（有未保存的修改）"  # data text escaped
    assert v.check_title == "**检查（1 个错误，2 个警告）**" and v.check_ok is None
    assert v.history_title == "编辑记录（1 步）"
    assert v.history_lines == ["　载入第 3 版", "▶ 合并网格 \\*a\\*、b"]

    v = planflow.edit_view({"status": "published"}, history_of((grids_of(3), "载入第 1 版")), found("warning"))
    assert v.status == "当前：载入第 1 版　已发布方案不能直接修改：请在“方案版本”中新建草稿"
    assert v.check_ok == "全覆盖、无重叠、每格有人负责；警告不影响发布"
    assert dict((m[0], m[2]) for m in v.metrics)["检查错误"] == "可发布"
    assert planflow.edit_view({"status": "draft"}, history_of((grids_of(1), "载入")), found()).check_ok == \
        "全覆盖、无重叠、每格有人负责"


def test_a_click_selects_the_grid_clicked_and_keeps_the_selection_elsewhere():
    assert planflow.clicked_grid("G2", "G1") == "G2"
    assert planflow.clicked_grid(None, "G1") == "G1"
    assert planflow.clicked_grid(None, None) is None


def test_the_selection_panel_offers_moves_only_in_a_draft_and_never_into_the_same_grid():
    names = {"a": "甲（a，3 户）", "b": "乙（b，1 户）", "c": "丙"}
    p = planflow.selection_panel(names, "b", is_draft=True)
    assert (p.selected, p.merge_default, p.can_move, p.move_targets) == ("b", ["b"], True, ["a", "c"])
    assert p.title == "**选中的网格：** 乙（b，1 户）"
    assert not planflow.selection_panel(names, "b", is_draft=False).can_move
    gone = planflow.selection_panel(names, "z", is_draft=True)  # a grid merged away is no longer selected
    assert (gone.selected, gone.merge_default, gone.can_move, gone.move_targets) == (None, [], False, ["a", "b", "c"])
    assert planflow.can_merge(["a", "b"], is_draft=True)
    assert not planflow.can_merge(["a"], is_draft=True) and not planflow.can_merge(["a", "b"], is_draft=False)


def stored_grids(ws):
    return plans.read_grids(ws, plans.resolve_plan(ws))


def test_a_line_drawn_on_the_amap_basemap_splits_the_grid_it_crosses_but_only_in_a_draft(ws):
    grids = stored_grids(ws)
    households = ws.read("households", columns=["hh_id", "village_code", "group_code"])
    line = [wgs84_to_gcj02(119.33, 43.89), wgs84_to_gcj02(119.33, 44.01)]  # through 甲村 (W), display coordinates
    feature = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [list(p) for p in line]}}
    with pytest.raises(ValidationError, match="已发布方案不能直接修改") as refused:
        planflow.draw_edit(grids, feature, basemap="amap", is_draft=False, selected=None, households=households,
                           admin_units=ws.read("admin_units"))
    assert str(refused.value) == planflow.NOT_A_DRAFT
    change = planflow.draw_edit(grids, feature, basemap="amap", is_draft=True, selected=None, households=households,
                                admin_units=ws.read("admin_units"))
    assert change.label == f"拆分网格 {G1}" and len(change.grids) == 3
    assert change.focus is not None and shapely.box(*change.focus).contains(W)
    # the line lies in storage coordinates at 119.33°E: the pieces meet there (the GCJ-02 shift was undone)
    west = change.grids.geometry[change.grids.geometry.bounds["maxx"] < 119.331]
    assert len(west) == 1 and west.bounds["maxx"].iloc[0] == pytest.approx(119.33, abs=1e-6)


def test_merging_zooms_to_the_grids_merged_and_moving_households_keeps_the_view(ws):
    grids = stored_grids(ws)
    merged = planflow.merge_edit(grids, [G1, G2])
    assert merged.label == f"合并网格 {G1}、{G2}" and len(merged.grids) == 1
    assert shapely.box(*merged.focus).contains(W.union(E))
    moved = planflow.move_edit(grids, ["H0", "H1"], from_grid=G1, to_grid=G2)
    assert moved.label == f"2 户从 {G1} 调到 {G2}" and moved.focus is None
    assert moved.grids.set_index("grid_id")["households"].to_dict() == {G1: 1, G2: 5}
    with pytest.raises(ValidationError):
        planflow.merge_edit(grids, [G1])


def test_a_drawing_is_known_by_its_geometry():
    a = {"geometry": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}, "properties": {"x": 1}}
    assert planflow.drawing_key(a) == planflow.drawing_key({**a, "properties": {}})  # same shape, same key
    assert planflow.drawing_key(a) != planflow.drawing_key({"geometry": {**a["geometry"], "coordinates": [[1, 2]]}})
    assert planflow.drawing_key(None) is None and planflow.drawing_key({}) is None


def test_locating_a_problem_zooms_to_it_and_selects_its_first_grid_once():
    located = gpd.GeoDataFrame({"grid_ids": [["G7", "G8"], [], ["G9"]]},
                               geometry=[shapely.box(119, 43, 119.1, 43.1), shapely.box(119, 43, 119.2, 43.2), None],
                               crs=4490)
    focus, grid = planflow.problem_focus(located, 0, current=None)
    assert grid == "G7" and focus == pytest.approx((118.996, 42.996, 119.104, 43.104))
    assert planflow.problem_focus(located, 0, current=list(focus)) is None  # already there
    assert planflow.problem_focus(located, 1, current=focus)[1] is None  # no grid named: selection kept
    assert planflow.problem_focus(located, 2, current=None) is None  # no place


# ----------------------------------------------------------------------------------- saves and publications


def test_saving_a_draft_names_the_new_revision_and_a_stale_save_the_stored_one(ws):
    pid = draft_of(ws)
    base = plans.read_grids(ws, pid)
    h = history_of((base, "载入第 1 版"), (edit.merge_grids(base, [G1, G2]), "合并网格"))
    assert planflow.save_action(h) == "编辑网格方案：合并网格"
    scoped = ScopedWorkspace(ws, PLANNER, plan=pid)
    saved = planflow.save_edited_draft(scoped, pid, h, base=base)
    revision = plans.plan_info(ws, pid)["revision"]
    assert saved == planflow.Outcome(True, f"已保存为第 {revision} 版", plan_id=pid)
    assert len(plans.read_grids(ws, pid)) == 1
    # the same edit saved again against the grids as first loaded: they changed meanwhile
    stale = planflow.save_edited_draft(scoped, pid, h, base=base)
    assert not stale.ok and stale.stale == revision and "数据已被他人修改" in stale.message
    assert stale.plan_id is None


def test_a_refused_save_is_an_error_not_a_stale_revision(ws):
    pid = plans.resolve_plan(ws)  # the published plan: a viewer cannot edit plans
    base = plans.read_grids(ws, pid)
    h = history_of((base, "载入"), (base, "改"))
    viewer = ScopedWorkspace(ws, Account("lead", "leader", "领导"), plan=pid)
    out = planflow.save_edited_draft(viewer, pid, h, base=base)
    assert not out.ok and out.stale is None and out.conflicts is None and out.message



def test_a_planners_edit_of_the_published_plan_is_refused_by_the_library(ws):
    """The disabled 保存草稿 button is not the rule: a forged save of a merge into the live plan writes
    nothing (edits go into a draft, whose check gates publication)."""
    pid = plans.resolve_plan(ws)
    assert plans.plan_info(ws, pid)["status"] == "published"
    base = plans.read_grids(ws, pid)
    revision, stored = plans.plan_info(ws, pid)["revision"], len(base)
    h = history_of((base, "载入"), (edit.merge_grids(base, [G1, G2]), "合并网格"))
    out = planflow.save_edited_draft(ScopedWorkspace(ws, PLANNER, plan=pid), pid, h, base=base)
    assert not out.ok and "不是草稿" in out.message and out.stale is None
    with pytest.raises(ValidationError, match="不是草稿"):
        plans.save_edits(ws, pid, edit.merge_grids(base, [G1, G2]), base=base, actor="p", action="编辑")
    assert plans.plan_info(ws, pid)["revision"] == revision and len(plans.read_grids(ws, pid)) == stored


def test_publishing_lists_conflicts_then_publishes_when_accepted_and_says_what_was_carried(ws):
    live = plans.resolve_plan(ws)
    pid = draft_of(ws)
    scoped = ScopedWorkspace(ws, PLANNER, plan=pid)
    base = plans.read_grids(ws, pid)
    planflow.save_edited_draft(scoped, pid, history_of((base, "载入"), (edit.merge_grids(base, [G1, G2]), "合并")), base=base)
    seen = plans.versions(plans.read_grids(ws, live))
    plans.edit_grid_rows(ws, live, {G1: {"staff_id": "S2"}}, seen=seen, actor="b1", action="改派")
    revision = plans.plan_info(ws, pid)["revision"]

    refused = planflow.publish_draft(scoped, pid, expected_revision=revision, accept_conflicts=False)
    assert not refused.ok and [c["grid_id"] for c in refused.conflicts] == [G1]
    assert plans.resolve_plan(ws) == live
    text = planflow.conflicts_text(refused.conflicts)
    assert text.startswith("草稿建立后，已发布方案上有改派与草稿的修改落在同一网格（未发布）：") and G1 in text

    done = planflow.publish_draft(scoped, pid, expected_revision=revision, accept_conflicts=True)
    assert done.ok and done.plan_id == pid and plans.resolve_plan(ws) == pid
    assert done.message.startswith("方案已发布，原已发布方案已归档")


def test_a_publication_that_carries_live_reassignments_says_so(ws):
    live = plans.resolve_plan(ws)
    pid = draft_of(ws)
    scoped = ScopedWorkspace(ws, PLANNER, plan=pid)
    revision = plans.plan_info(ws, pid)["revision"]
    plain = planflow.publish_draft(scoped, pid, expected_revision=revision, accept_conflicts=False)
    assert plain.ok and plain.message == "方案已发布，原已发布方案已归档"  # nothing changed live meanwhile
    # a second draft; meanwhile a branch manager reassigns a grid on the (new) published plan: carried in
    pid2 = draft_of(ws, "调整二")
    seen = plans.versions(plans.read_grids(ws, pid))
    plans.edit_grid_rows(ws, pid, {G1: {"staff_id": "S2"}}, seen=seen, actor="b1", action="改派")
    out = planflow.publish_draft(ScopedWorkspace(ws, PLANNER, plan=pid2), pid2,
                                 expected_revision=plans.plan_info(ws, pid2)["revision"], accept_conflicts=False)
    assert out.ok and out.message.endswith("；草稿建立后网点主任在已发布方案上的改派已并入（明细见审计）")
    assert plans.resolve_plan(ws) == pid2 != live
    carried = plans.read_grids(ws, pid2).set_index("grid_id")
    assert carried.loc[G1, "staff_id"] == "S2"


def test_a_refused_publication_is_an_error_without_conflicts(ws):
    pid = draft_of(ws)
    scoped = ScopedWorkspace(ws, PLANNER, plan=pid)
    out = planflow.publish_draft(scoped, pid, expected_revision=0, accept_conflicts=False)  # an old revision
    assert not out.ok and out.conflicts is None and out.plan_id is None and out.message


def test_conflict_and_stale_texts():
    many = [{"message": f"网格 G{i}"} for i in range(25)]
    text = planflow.conflicts_text(many)
    assert text.count("· ") == 20 and "G19" in text and "G20" not in text
    assert "\\[x\\]" in planflow.conflicts_text([{"message": "[x](y)"}])
    assert planflow.stale_text(7, 5).startswith("数据库里的方案已是第 7 版（你编辑的是第 5 版）。载入最新版会丢弃")


# ------------------------------------------------------------------------------------ builds and new drafts


def test_building_a_draft_reports_progress_and_names_the_new_plan(ws):
    shown: list[tuple[float, str]] = []
    out = planflow.build_draft(ScopedWorkspace(ws, PLANNER, require_plan=False), name="新方案", min_households=1,
                               max_households=100, assign=True,
                               progress=planflow.StepProgress(lambda done, text: shown.append((done, text))))
    assert out.ok and out.message == "已生成草稿方案 “新方案”，可在“编辑”中修改"
    assert plans.plan_info(ws, out.plan_id)["status"] == "draft"
    assert shown and shown[-1][1] == "分配网点与客户经理…"  # assigned after building
    assert [d for d, _ in shown] == sorted(d for d, _ in shown) and max(d for d, _ in shown) <= 0.95


def test_a_build_the_account_may_not_make_is_an_error(ws):
    viewer = ScopedWorkspace(ws, Account("lead", "leader", "领导"), require_plan=False)
    out = planflow.build_draft(viewer, name="x", min_households=1, max_households=100, assign=False)
    assert not out.ok and out.plan_id is None and out.message
    assert len(plans.list_plans(ws)) == 1


def test_a_new_draft_is_copied_from_the_published_plan(ws):
    scoped = ScopedWorkspace(ws, PLANNER)
    out = planflow.new_draft(scoped, plans.list_plans(ws), name="调整-1")
    assert out.ok and out.message == "已从已发布方案新建草稿 “调整-1”"
    info = plans.plan_info(ws, out.plan_id)
    assert info["status"] == "draft" and info["params"]["from_plan"] == plans.list_plans(ws).query(
        "status == 'published'")["plan_id"].iloc[0]
    none = planflow.new_draft(scoped, plans.list_plans(ws).assign(status="draft"), name="x")
    assert not none.ok and "已发布方案" in none.message


def test_draft_names_carry_the_time():
    assert planflow.draft_name("调整-", pd.Timestamp("2025-12-31 23:59")) == "调整-12312359"
    assert planflow.draft_name("草稿-").startswith("草稿-") and len(planflow.draft_name("草稿-")) == 11


# ------------------------------------------------------------------------------------------- comparison


def test_comparing_two_stored_plans_and_showing_it(ws):
    live = plans.resolve_plan(ws)
    pid = draft_of(ws)
    base = plans.read_grids(ws, pid)
    planflow.save_edited_draft(ScopedWorkspace(ws, PLANNER, plan=pid), pid,
                        history_of((base, "载入"), (edit.merge_grids(base, [G1, G2]), "合并")), base=base)
    read: list[str] = []

    def grids_of_plan(plan_id: str) -> gpd.GeoDataFrame:
        read.append(plan_id)
        return plans.read_grids(ws, plan_id)

    held = planflow.compare(live, pid, grids_of_plan, households=ws.read("households"), admin_units=None)
    assert held[:2] == (live, pid) and read == [live, pid]
    cmp = planflow.shown_comparison(held, live, pid)
    view = planflow.comparison_view(cmp, rows=2)
    assert dict(view.metrics)["新增 / 删除"] == "1 / 2"
    assert "变化" in view.grids.columns and "geometry" not in view.grids.columns
    assert view.households_title == f"**换网格或换人的住户：{len(cmp.households):,} 户**"
    assert len(view.households) == min(2, len(cmp.households)) and "户号" in view.households.columns

    def html(changed: gpd.GeoDataFrame) -> str:
        return planmaps.compare_map(plans.read_grids(ws, pid), changed, admin=ws.read("admin_units"),
                                    branches=ws.read("branches"), basemap="offline").get_root().render()

    shown, plain = html(cmp.grids), html(cmp.grids.iloc[:0])
    assert "L.Control.Draw" not in shown  # nothing to draw on
    assert shown.count("#d81b60") > plain.count("#d81b60")  # the changed grids outlined


# ---------------------------------------------------------------------------------------------- what-if


def test_the_whatif_form_follows_the_new_branch_and_the_teams():
    branches = pd.DataFrame({"branch_id": ["B1", "B2"], "name": ["林东", "<b>东城</b>"]})
    staff = pd.DataFrame({"staff_id": list("abcdef"), "branch_id": ["B1"] * 4 + ["B2"] * 2,
                          "role": ["客户经理"] * 3 + ["网点主任", "客户经理", "客户经理"]})
    f = planflow.whatif_form(branches, staff, point=None, base_plan="p1", labels={"p1": "主方案*"})
    assert f.intro == "基于方案 主方案\\*：在地图上点击放置新网点，或选择要关闭的网点。"
    assert f.close_options == {None: "（不关闭）", "B1": "B1 林东", "B2": "B2 <b>东城</b>"}
    assert f.point_text == "新网点：（在地图上点击）" and not f.has_point
    assert f.team_size == 2  # median of 3 and 2 customer managers, rounded (the head of B1 takes no grid)
    f = planflow.whatif_form(branches, staff.iloc[:0], point=(119.123456, 43.5), base_plan="p9", labels={})
    assert f.team_size == 1 and f.has_point and f.point_text == "新网点位置：119.12346, 43.50000"
    assert f.intro.startswith("基于方案 p9：")
    assert not planflow.whatif_ready(None, None)
    assert planflow.whatif_ready(None, "B1") and planflow.whatif_ready((1.0, 2.0), None)


def test_a_click_on_the_whatif_map_moves_the_new_branch_only_when_it_lands_elsewhere():
    lon, lat = wgs84_to_gcj02(119.4, 43.9)
    p = planflow.clicked_point({"lng": lon, "lat": lat}, None, basemap="amap")
    assert p == pytest.approx((119.4, 43.9), abs=1e-7)  # storage coordinates
    assert planflow.clicked_point({"lng": lon, "lat": lat}, p, basemap="amap") is None
    assert planflow.clicked_point({"lng": 119.5, "lat": 43.9}, (119.4, 43.9), basemap="offline") == (119.5, 43.9)
    assert planflow.clicked_point({"lng": None, "lat": None}, None, basemap="offline") is None
    assert planflow.clicked_point(None, None, basemap="offline") is None


def test_a_whatif_runs_on_the_plan_with_the_workspace_distance_and_is_shown(ws):
    base = stored_grids(ws)
    with pytest.raises(ValidationError):  # the only branch cannot close
        planflow.run_whatif(ws, base, branches=ws.read("branches"), staff=ws.read("staff"), ferries=None,
                            point=None, close="B1", new_branch_staff=1)
    result = planflow.run_whatif(ws, base, branches=ws.read("branches"), staff=ws.read("staff"), ferries=None,
                                 point=(119.46, 43.95), close=None, new_branch_staff=1)
    assert planflow.whatif_moves(result) == [G2] and planflow.whatif_moves(None) is None
    view = planflow.whatif_view(result)
    assert view.lines and all(line.startswith("· ") for line in view.lines)
    assert [m[0] for m in view.metrics] == ["移动户数", "调动员工", "平均距离", "最远距离"]
    assert view.metrics[0][1] == "3 户"
    assert "客户经理人数（前）" in view.tables[0].columns and "网格编号" in view.tables[-1].columns
    assert len(view.tables) == (3 if len(result.staff_moves) else 2)


# ------------------------------------------------------------------------------------------- the context


def test_the_page_context_reads_household_locations_without_personal_data(ws):
    ctx = planflow.read_context(ws)
    assert set(ctx.households.columns) <= {"hh_id", "village_code", "group_code", "geometry"}
    assert "head_name" in ws.read("households").columns  # … which the layer has
    assert len(ctx.admin) == 4 and list(ctx.staff["staff_id"]) == ["S1", "S2"]
    assert ctx.plans["status"].tolist() == ["published"]
    assert ctx.ferries is not None and len(ctx.ferries) == 0


def test_a_whatif_measures_as_the_workspace_assignment_does(ws, monkeypatch):
    asked: list[dict] = []
    monkeypatch.setattr(planflow.assign, "what_if", lambda *a, **kw: asked.append(kw) or "result")
    ferries = gpd.GeoDataFrame({"class": ["ferry"]}, geometry=[shapely.LineString([(119.3, 43.9), (119.5, 44.0)])],
                               crs=4490)
    base = stored_grids(ws)
    kw = {"branches": ws.read("branches"), "staff": ws.read("staff"), "point": (119.46, 43.95), "close": None}
    assert planflow.run_whatif(ws, base, ferries=ferries, new_branch_staff=2.0, **kw) == "result"
    straight = asked[-1]
    assert straight["by"] == "straight" and straight["streets"] is ferries  # ferries join islands
    assert straight["new_branch_staff"] == 2 and straight["add_branch"] == (119.46, 43.95)
    assert straight["outline"] is not None and len(straight["outline"]) == 1  # the county row
    planflow.run_whatif(ws, base, ferries=ferries.iloc[:0], new_branch_staff=1, **kw)
    assert asked[-1]["streets"] is None  # no links: none passed
    ws.set_meta("assign_by", "road")
    planflow.run_whatif(ws, base, ferries=ferries, new_branch_staff=1, **kw)
    assert asked[-1]["by"] == "road" and asked[-1]["streets"] is None  # the workspace's streets (none here)
