"""网格规划 — planners build grids, redraw them (split, merge, reshape, move households), check, save, compare and
publish plan versions, and try a branch what-if. What is enabled when and what an action does: grids.planflow."""

from __future__ import annotations

import streamlit as st

from grids import planflow as flow
from grids import planmaps, plans, planview
from grids.auth import Account
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS
from grids.errors import GridsError
from grids.text import markdown
from grids.workspace import Workspace
from ui import data
from ui import planning as ui
from ui import state as keys
from ui.maps import clicked_area, show_cached_map
from ui.state import RerunGuard


def build_section(ws: Workspace, acct: Account) -> None:
    """生成网格: parameters, a progress bar, optional assignment; loads the new draft for editing."""
    with st.form("planning.build_form"):
        a, b, c = st.columns(3)
        name = a.text_input("方案名称", value=flow.draft_name("草稿-"))
        lo = b.number_input("每个网格最少户数", 0, 5000, DEFAULT_MIN_HOUSEHOLDS, step=10)
        hi = c.number_input("每个网格最多户数", 1, 20000, DEFAULT_MAX_HOUSEHOLDS, step=10)
        do_assign = st.checkbox("生成后分配网点和客户经理", value=True)
        go = st.form_submit_button("生成网格方案", type="primary")
    if go:
        bar = st.progress(0.0, text="开始…")
        outcome = flow.build_draft(ui.scoped_any(ws, acct), name=name, min_households=int(lo), max_households=int(hi),
                                   assign=do_assign, progress=flow.StepProgress(lambda f, t: bar.progress(f, text=t)))
        if outcome.ok:
            bar.progress(1.0, text="完成")
        ui.finish(outcome)


def versions_section(ws: Workspace, acct: Account, ctx: ui.Context, *, target: str, rev: int, basemap: str) -> None:
    """方案版本: the list, a new draft from the published plan, and the comparison of two plans."""
    st.dataframe(planview.versions_table(ctx.plans), hide_index=True)
    published = flow.published_plan(ctx.plans)
    with st.form("planning.new_draft"):
        new_name = st.text_input("新草稿名称", value=flow.draft_name("调整-"))
        if st.form_submit_button("从已发布方案新建草稿", disabled=published is None):
            ui.finish(flow.new_draft(ui.scoped(ws, acct), ctx.plans, name=new_name))
    st.subheader("对比两个方案")
    a, b = st.columns(2)
    labels = planview.plan_labels(ctx.plans)
    ids = list(labels)
    pa = a.selectbox("方案 A（原）", ids, format_func=labels.__getitem__, index=flow.default_index(ids, prefer=published))
    pb = b.selectbox("方案 B（新）", ids, format_func=labels.__getitem__, index=flow.default_index(ids, avoid=pa))
    if st.button("对比", disabled=not flow.can_compare(pa, pb)) and pa is not None and pb is not None:
        with st.spinner("正在对比…"):
            st.session_state[keys.COMPARE] = flow.compare(pa, pb, lambda p: ui.stored_grids(target, rev, p),
                                                          households=ctx.households, admin_units=ctx.admin)
    if (cmp := flow.shown_comparison(st.session_state[keys.COMPARE], pa, pb)) is None or pb is None:
        return
    view = flow.comparison_view(cmp)
    for col, (label, value) in zip(st.columns(4), view.metrics, strict=True):
        col.metric(label, value)
    left, right = st.columns([3, 2])
    with left:
        grids_b = ui.stored_grids(target, rev, pb)
        show_cached_map(lambda: planmaps.compare_map(grids_b, cmp.grids, admin=ctx.admin, branches=ctx.branches,
                                                     basemap=basemap, **data.tiles()),
                        cache_key=("compare", target, rev, pa, pb, basemap), key="planning.compare_map", returned=())
    with right:
        st.dataframe(view.grids, hide_index=True, height=260)
        st.markdown("**客户经理工作量变化（户）**")
        st.dataframe(view.workload, hide_index=True, height=200)
    st.markdown(view.households_title)
    st.dataframe(view.households, hide_index=True, height=240)


def whatif_section(ws: Workspace, ctx: ui.Context, *, target: str, rev: int, basemap: str) -> None:
    """假设分析: add a branch (click on the map) or close one; loads, distances and the grids that move."""
    ss = st.session_state
    guard = RerunGuard("planning.whatif")  # a map click reruns once, never in a loop
    pid_published = plans.resolve_plan(ws)
    base = ui.stored_grids(target, rev, pid_published)
    point, result = ss[keys.WHATIF_POINT], ss[keys.WHATIF]
    form = flow.whatif_form(ctx.branches, ctx.staff, point=point, base_plan=pid_published,
                            labels=planview.plan_labels(ctx.plans))
    st.caption(form.intro)
    a, b = st.columns([2, 1])
    close = b.selectbox("关闭网点", list(form.close_options), format_func=form.close_options.__getitem__)
    b.write(form.point_text)
    n_new = b.number_input("新网点客户经理人数", 1, 100, form.team_size, key="planning.whatif_staff",
                           disabled=not form.has_point)
    if form.has_point and b.button("清除新网点"):
        ss[keys.WHATIF_POINT] = None
        st.rerun()
    with a:
        moves = flow.whatif_moves(result)
        out = show_cached_map(lambda: planmaps.whatif_map(base, admin=ctx.admin, branches=ctx.branches,
                                                          basemap=basemap, point=point, moves=moves, **data.tiles()),
                              cache_key=("whatif", target, rev, basemap, point, tuple(moves or ())),
                              key="planning.whatif_map", returned=("last_clicked",))
    clicked = flow.clicked_point(out.get("last_clicked"), point, basemap=basemap)
    if clicked is not None and guard.may_rerun:
        ss[keys.WHATIF_POINT] = clicked
        guard.rerun()
    if b.button("计算", type="primary", disabled=not flow.whatif_ready(point, close)):
        with st.spinner("正在计算…"):
            try:
                ss[keys.WHATIF] = flow.run_whatif(ws, base, branches=ctx.branches, staff=ctx.staff, ferries=ctx.ferries,
                                                  point=point, close=close, new_branch_staff=int(n_new))
            except GridsError as exc:
                st.error(markdown(str(exc)))
        st.rerun()
    if result is not None:
        view = flow.whatif_view(result)
        for line in view.lines:
            st.write(line)
        for col, (label, value, delta, color) in zip(st.columns(4), view.metrics, strict=True):
            col.metric(label, value, delta, delta_color=color)
        st.caption(view.caption)
        for table in view.tables:
            st.dataframe(table, hide_index=True)


acct, target, rev, ws, ctx, basemap = ui.page_setup()
ss = st.session_state

st.title("网格规划")
if not acct.can("edit_plans"):
    st.error("只有规划人员和管理员可以编辑网格方案")
    st.stop()
ui.notice()
section = st.segmented_control("功能", ["编辑", "生成网格", "方案版本", "假设分析"], key=keys.SECTION,
                               label_visibility="collapsed") or "编辑"
if section == "生成网格":
    build_section(ws, acct)
    st.stop()
if not len(ctx.plans):
    st.info("工作区还没有网格方案：先在“生成网格”中生成一个。")
    st.stop()
if section == "方案版本":
    versions_section(ws, acct, ctx, target=target, rev=rev, basemap=basemap)
    st.stop()
if section == "假设分析":
    whatif_section(ws, ctx, target=target, rev=rev, basemap=basemap)
    st.stop()

# --- 编辑: the plan picker, figures, undo/redo/save/publish, the edit map, the selection and check panel --------
if (first := flow.plan_to_open(ws, ctx.plans, ss[keys.PLAN])) is not None:
    ui.load_plan(target, rev, first)
drafts, at = flow.plan_picker(ctx.plans, ss[keys.PLAN])
chosen = st.selectbox("编辑的方案", drafts, index=at, format_func=planview.plan_labels(ctx.plans).__getitem__)
if chosen is not None and chosen != ss[keys.PLAN]:
    ui.load_plan(target, rev, chosen)
    st.rerun()
info, history = plans.plan_info(ws, ss[keys.PLAN]), ss[keys.HISTORY]
grids = history.current
lo, hi = flow.plan_bounds(info)
found = ui.problems(grids, ctx, min_households=lo, max_households=hi)
view = flow.edit_view(info, history, found)
for col, (label, value, delta) in zip(st.columns(7), view.metrics, strict=True):
    col.metric(label, value, delta, delta_color="off", delta_arrow="off")

u1, u2, u3, u4, u5 = st.columns([1, 1, 1.4, 1.4, 3])
if u1.button("撤销", disabled=not view.can_undo, icon=":material/undo:"):
    ui.step(history.undo)
if u2.button("重做", disabled=not view.can_redo, icon=":material/redo:"):
    ui.step(history.redo)
if u3.button("保存草稿", type="primary", disabled=not view.can_save, key="planning.save"):
    ui.finish(flow.save_edited_draft(ui.scoped(ws, acct), ss[keys.PLAN], history, base=ss[keys.BASE]))
if u4.button("发布方案", disabled=not view.can_publish,
             help="只有保存后且检查没有错误的草稿才能发布（警告不影响发布）；期间网点主任在已发布方案上的改派会并入"):
    ui.publish(ws, acct, accept_conflicts=False)
    st.rerun()
if ss[keys.CONFLICTS]:
    st.warning(flow.conflicts_text(ss[keys.CONFLICTS]))
    st.button("以草稿为准发布（被覆盖的改派记入审计）", on_click=ui.publish, args=(ws, acct), kwargs={"accept_conflicts": True})
u5.caption(view.status)
if ss[keys.STALE] is not None:
    st.warning(flow.stale_text(ss[keys.STALE], ss[keys.REVISION]))
    if st.button("载入最新版本"):
        ui.load_plan(target, rev, ss[keys.PLAN])
        st.rerun()

left, right = st.columns([3, 1.3])
with left:
    out = show_cached_map(
        lambda: planmaps.plan_map(grids, admin=ctx.admin, branches=ctx.branches, basemap=basemap, found=found,
                                  focus=ss[keys.FOCUS], min_households=lo, max_households=hi, **data.tiles()),
        cache_key=("plan", ss[keys.TOKEN], ss[keys.VERSION], basemap, ss[keys.FOCUS]), key="planning.map",
        height=640, returned=("last_object_clicked", "last_active_drawing"))
    st.caption("点击网格选中它；用左侧工具画线拆分网格，画多边形把该区域并入选中的网格。")
ss[keys.SELECTED] = flow.clicked_grid(clicked_area(out, grids, basemap=basemap, id_column="grid_id"), ss[keys.SELECTED])
if (feature := ui.new_drawing(out)) is not None:
    ui.apply(flow.draw_edit, grids, feature, basemap=basemap, is_draft=view.is_draft, selected=ss[keys.SELECTED],
             households=ctx.households, admin_units=ctx.admin, notice=True)

names = planview.grid_label(grids)
panel = flow.selection_panel(names, ss[keys.SELECTED], is_draft=view.is_draft)
with right:
    st.markdown(panel.title)
    merge = st.multiselect("合并网格（同镇、相邻）", list(names), default=panel.merge_default,
                           format_func=names.__getitem__, disabled=not view.is_draft, placeholder="选择要合并的网格")
    if st.button("合并所选网格", disabled=not flow.can_merge(merge, is_draft=view.is_draft)):
        ui.apply(flow.merge_edit, grids, merge)
    if panel.can_move and (sel := panel.selected) is not None:
        with st.expander("调整住户归属"):
            hh = planview.households_in(grids, sel, ctx.households)
            move = st.multiselect(f"本网格住户（{len(hh)} 户）", hh, key="planning.move_ids", placeholder="选择住户")
            to = st.selectbox("调入网格", panel.move_targets, format_func=names.__getitem__, key="planning.move_to")
            if st.button("调整", disabled=not move or to is None) and to is not None:
                ui.apply(flow.move_edit, grids, move, from_grid=sel, to_grid=to)
    st.markdown(view.check_title)
    if view.check_ok is not None:
        st.success(view.check_ok)
    if len(found) and (row := ui.problem_list(found)) is not None and ui.focus_problem(found, row):
        st.rerun()
    with st.expander(view.history_title):
        for line in view.history_lines:
            st.write(line)
