"""网格规划 — planners build grids, redraw them (split, merge, reshape, move households), check, save, compare and
publish plan versions, and try a branch what-if."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from grids import assign, edit, planmaps, plans, planview
from grids.auth import Account
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS
from grids.check import errors
from grids.errors import GridsError, StaleEditError
from grids.landmass import county_outline
from grids.maps import drawing_to_geometry
from grids.text import markdown
from grids.workspace import Workspace
from ui import data
from ui import planning as ui
from ui import state as keys
from ui.maps import clicked_area, show_cached_map
from ui.state import RerunGuard


def build_section(ws: Workspace, acct: Account) -> None:
    """生成网格: parameters, a progress bar, optional assignment; loads the new draft for editing."""
    ss = st.session_state
    with st.form("planning.build_form"):
        a, b, c = st.columns(3)
        name = a.text_input("方案名称", value="草稿-" + pd.Timestamp.now().strftime("%m%d%H%M"))
        lo = b.number_input("每个网格最少户数", 0, 5000, DEFAULT_MIN_HOUSEHOLDS, step=10)
        hi = c.number_input("每个网格最多户数", 1, 20000, DEFAULT_MAX_HOUSEHOLDS, step=10)
        do_assign = st.checkbox("生成后分配网点和客户经理", value=True)
        go = st.form_submit_button("生成网格方案", type="primary")
    if go:
        bar = st.progress(0.0, text="开始…")
        steps = [0]

        def say(msg: str) -> None:
            steps[0] += 1
            bar.progress(min(0.95, steps[0] / 10), text=msg)

        try:
            pid = ui.scoped_any(ws, acct).build_plan(name=name, min_households=int(lo),
                                                             max_households=int(hi), assign=do_assign, progress=say)
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            bar.progress(1.0, text="完成")
            target, rev = data.current()
            ui.load_plan(target, rev, pid)
            ss[keys.NOTICE] = ("success", f"已生成草稿方案 “{name}”，可在“编辑”中修改")
            st.rerun()


def versions_section(ws: Workspace, acct: Account, *, ctx: ui.Context, target: str, rev: int,
                     plan_list: pd.DataFrame, labels: dict[str, str], basemap: str) -> None:
    """方案版本: the list, a new draft from the published plan, and the comparison of two plans."""
    ss = st.session_state
    st.dataframe(planview.versions_table(plan_list), hide_index=True)
    published = plan_list[plan_list["status"] == "published"]
    with st.form("planning.new_draft"):
        new_name = st.text_input("新草稿名称", value="调整-" + pd.Timestamp.now().strftime("%m%d%H%M"))
        if st.form_submit_button("从已发布方案新建草稿", disabled=published.empty):
            try:
                pid = ui.scoped(ws, acct).new_draft(str(published["plan_id"].iloc[0]), name=new_name)
            except GridsError as exc:
                st.error(markdown(str(exc)))
            else:
                target, rev = data.current()
                ui.load_plan(target, rev, pid)
                ss[keys.NOTICE] = ("success", f"已从已发布方案新建草稿 “{new_name}”")
                st.rerun()
    st.subheader("对比两个方案")
    a, b = st.columns(2)
    ids = list(labels)
    pa = a.selectbox("方案 A（原）", ids, format_func=labels.__getitem__,
                     index=ids.index(str(published["plan_id"].iloc[0])) if len(published) else 0)
    pb = b.selectbox("方案 B（新）", ids, format_func=labels.__getitem__,
                     index=0 if ids[0] != pa else min(1, len(ids) - 1))
    if st.button("对比", disabled=pa == pb) and pa is not None and pb is not None:
        with st.spinner("正在对比…"):
            ss[keys.COMPARE] = (pa, pb, edit.compare_plans(ui.stored_grids(target, rev, pa),
                                                         ui.stored_grids(target, rev, pb),
                                                         households=ctx.households, admin_units=ctx.admin))
    if ss[keys.COMPARE] is not None and ss[keys.COMPARE][:2] == (pa, pb):
        cmp = ss[keys.COMPARE][2]
        for col, (label, value) in zip(st.columns(4), planview.compare_metrics(cmp.summary), strict=True):
            col.metric(label, value)
        left, right = st.columns([3, 2])
        with left:
            grids_b = ui.stored_grids(target, rev, pb)
            show_cached_map(lambda: planmaps.plan_map(grids_b, admin=ctx.admin, branches=ctx.branches,
                                                      basemap=basemap, found=None, focus=None,
                                                      min_households=DEFAULT_MIN_HOUSEHOLDS,
                                                      max_households=DEFAULT_MAX_HOUSEHOLDS, highlight=cmp.grids,
                                                      draw=False, **data.tiles()),
                            cache_key=("compare", target, rev, pa, pb, basemap), key="planning.compare_map",
                            returned=())
        with right:
            st.dataframe(planview.compare_grid_table(cmp.grids), hide_index=True, height=260)
            st.markdown("**客户经理工作量变化（户）**")
            st.dataframe(cmp.workload.rename(columns=planview.COMPARE_COLUMNS), hide_index=True, height=200)
        st.markdown(f"**换网格或换人的住户：{len(cmp.households):,} 户**")
        st.dataframe(cmp.households.head(2000).rename(columns=planview.COMPARE_COLUMNS), hide_index=True, height=240)


def whatif_section(ws: Workspace, *, ctx: ui.Context, target: str, rev: int, labels: dict[str, str], basemap: str) -> None:
    """假设分析: add a branch (click on the map) or close one; loads, distances and the grids that move."""
    ss = st.session_state
    guard = RerunGuard("planning.whatif")  # a map click reruns once, never in a loop
    pid_published = plans.resolve_plan(ws)
    base = ui.stored_grids(target, rev, pid_published)
    st.caption(f"基于方案 {markdown(labels.get(pid_published, pid_published))}：在地图上点击放置新网点，或选择要关闭的网点。")
    a, b = st.columns([2, 1])
    branch_ids = ctx.branches["branch_id"].astype(str).tolist()
    names = dict(zip(branch_ids, ctx.branches["name"].astype(str), strict=True))
    close = b.selectbox("关闭网点", [None, *branch_ids], format_func=lambda x: "（不关闭）" if x is None
                        else f"{x} {names[x]}")
    point = ss[keys.WHATIF_POINT]
    b.write(f"新网点位置：{point[0]:.5f}, {point[1]:.5f}" if point else "新网点：（在地图上点击）")
    team = assign.assignable_staff(ctx.staff).groupby("branch_id").size()
    n_new = b.number_input("新网点客户经理人数", 1, 100, max(1, round(team.median())) if len(team) else 1,
                           disabled=point is None, key="planning.whatif_staff")
    if point and b.button("清除新网点"):
        ss[keys.WHATIF_POINT] = None
        st.rerun()
    result = ss[keys.WHATIF]
    with a:
        moves = result.moves["grid_id"].tolist() if result is not None else None
        out = show_cached_map(lambda: planmaps.whatif_map(base, admin=ctx.admin, branches=ctx.branches,
                                                          basemap=basemap, point=point, moves=moves, **data.tiles()),
                              cache_key=("whatif", target, rev, basemap, point, tuple(moves or ())),
                              key="planning.whatif_map", returned=("last_clicked",))
    click = out.get("last_clicked")
    if click and click.get("lat") is not None:
        from grids.maps import point_from_display

        p = point_from_display(click["lng"], click["lat"], basemap=basemap)
        if guard.may_rerun and (ss[keys.WHATIF_POINT] is None or max(abs(p[0] - ss[keys.WHATIF_POINT][0]),
                                                                   abs(p[1] - ss[keys.WHATIF_POINT][1])) > 1e-9):
            ss[keys.WHATIF_POINT] = p
            guard.rerun()
    if b.button("计算", type="primary", disabled=point is None and close is None):
        with st.spinner("正在计算…"):
            try:
                by = assign.default_by(ws.meta)  # the distance the assignment uses
                streets = ws.read("streets") if by == "road" else ctx.ferries  # ferries join islands
                ss[keys.WHATIF] = assign.what_if(base, ctx.branches, ctx.staff, add_branch=point, close_branch=close,
                                               new_branch_staff=int(n_new), by=by, outline=county_outline(ws),
                                               streets=streets if streets is not None and len(streets) else None)
            except GridsError as exc:
                st.error(markdown(str(exc)))
        st.rerun()
    if result is not None:
        for line in result.summary["scenario"]:
            st.write("· " + markdown(line))
        for col, (label, value, delta, color) in zip(st.columns(4), planview.whatif_metrics(result.summary),
                                                     strict=True):
            col.metric(label, value, delta, delta_color=color)
        st.caption(planview.whatif_caption(result.summary))
        st.dataframe(result.branches.rename(columns={**planview.WHATIF_COLUMNS, "staff_before": "客户经理人数（前）",
                                                     "staff_after": "客户经理人数（后）"}), hide_index=True)
        if len(result.staff_moves):
            st.dataframe(result.staff_moves.rename(columns=planview.WHATIF_COLUMNS), hide_index=True)
        st.dataframe(result.moves.rename(columns=planview.WHATIF_COLUMNS), hide_index=True)


acct, target, rev, ws, ctx, basemap = ui.page_setup()
ss = st.session_state

st.title("网格规划")
if not acct.can("edit_plans"):
    st.error("只有规划人员和管理员可以编辑网格方案")
    st.stop()
ui.notice()
section = st.segmented_control("功能", ["编辑", "生成网格", "方案版本", "假设分析"], key=keys.SECTION,
                               label_visibility="collapsed") or "编辑"

# --- 生成网格 ------------------------------------------------------------------------------------------
if section == "生成网格":
    build_section(ws, acct)
    st.stop()

plan_list = ui.context(target, rev).plans
if not len(plan_list):
    st.info("工作区还没有网格方案：先在“生成网格”中生成一个。")
    st.stop()
labels = planview.plan_labels(plan_list)

# --- 方案版本 ------------------------------------------------------------------------------------------
if section == "方案版本":
    versions_section(ws, acct, ctx=ctx, target=target, rev=rev, plan_list=plan_list, labels=labels, basemap=basemap)
    st.stop()

# --- 假设分析 ------------------------------------------------------------------------------------------
if section == "假设分析":
    whatif_section(ws, ctx=ctx, target=target, rev=rev, labels=labels, basemap=basemap)
    st.stop()

# --- 编辑 ----------------------------------------------------------------------------------------------
drafts = [p for p in labels if plan_list.set_index("plan_id").loc[p, "status"] != "archived"]
if ss[keys.PLAN] not in labels:
    first_draft = plan_list[plan_list["status"] == "draft"]
    ui.load_plan(target, rev, str(first_draft["plan_id"].iloc[0]) if len(first_draft) else plans.resolve_plan(ws))
chosen = st.selectbox("编辑的方案", drafts, index=drafts.index(ss[keys.PLAN]) if ss[keys.PLAN] in drafts else 0,
                      format_func=labels.__getitem__)
if chosen is not None and chosen != ss[keys.PLAN]:
    ui.load_plan(target, rev, chosen)
    st.rerun()
info = plans.plan_info(ws, ss[keys.PLAN])
is_draft = info["status"] == "draft"
history: edit.History = ss[keys.HISTORY]
grids = history.current
params = info.get("params") or {}
lo = int(params.get("min_households", DEFAULT_MIN_HOUSEHOLDS))
hi = int(params.get("max_households", DEFAULT_MAX_HOUSEHOLDS))
found = ui.problems(grids, ctx, min_households=lo, max_households=hi)
n_errors = len(errors(found))

totals = edit.grid_totals(grids)
cols = st.columns(7)
cols[0].metric("网格", f"{totals['grids']:,}")
cols[1].metric("住户", f"{totals['households']:,}")
cols[2].metric("每格最少", totals["min"])
cols[3].metric("中位数", f"{totals['median']:.0f}")
cols[4].metric("最多", totals["max"])
cols[5].metric("检查错误", n_errors, delta="可发布" if not n_errors else "需修正", delta_color="off",
               delta_arrow="off")
cols[6].metric("检查警告", len(found) - n_errors, delta="不影响发布", delta_color="off", delta_arrow="off")

u1, u2, u3, u4, u5 = st.columns([1, 1, 1.4, 1.4, 3])
if u1.button("撤销", disabled=not history.can_undo, icon=":material/undo:"):
    history.undo()
    ui.bump()
    st.rerun()
if u2.button("重做", disabled=not history.can_redo, icon=":material/redo:"):
    history.redo()
    ui.bump()
    st.rerun()
dirty = history.position > 0
if u3.button("保存草稿", type="primary", disabled=not (is_draft and dirty), key="planning.save"):
    try:
        new_rev = ui.scoped(ws, acct).save_plan_edits(ss[keys.PLAN], grids, base=ss[keys.BASE], action="编辑网格方案："
                                     + "；".join(history.labels[1:history.position + 1])[:200])
    except StaleEditError as exc:
        ss[keys.STALE] = plans.plan_info(ws, ss[keys.PLAN])["revision"]
        st.error(markdown(str(exc)))
    except GridsError as exc:
        st.error(markdown(str(exc)))
    else:
        target, rev = data.current()
        ui.load_plan(target, rev, ss[keys.PLAN])
        ss[keys.NOTICE] = ("success", f"已保存为第 {new_rev} 版")
        st.rerun()
if u4.button("发布方案", disabled=not (is_draft and not dirty and not n_errors),
             help="只有保存后且检查没有错误的草稿才能发布（警告不影响发布）；期间网点主任在已发布方案上的改派会并入"):
    ui.publish(ws, acct, accept_conflicts=False)
    st.rerun()
if ss[keys.CONFLICTS]:
    st.warning("草稿建立后，已发布方案上有改派与草稿的修改落在同一网格（未发布）：  \n"
               + "  \n".join("· " + markdown(c["message"]) for c in ss[keys.CONFLICTS][:20]))
    st.button("以草稿为准发布（被覆盖的改派记入审计）", on_click=ui.publish, args=(ws, acct), kwargs={"accept_conflicts": True})
u5.caption(f"当前：{markdown(history.label)}" + ("（有未保存的修改）" if dirty else "")
           + ("" if is_draft else "　已发布方案不能直接修改：请在“方案版本”中新建草稿"))
if ss[keys.STALE] is not None:
    st.warning(f"数据库里的方案已是第 {ss[keys.STALE]} 版（你编辑的是第 {ss[keys.REVISION]} 版）。"
               "载入最新版会丢弃你未保存的修改；也可以先对比两版再决定。")
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
picked = clicked_area(out, grids, basemap=basemap, id_column="grid_id")
if picked and picked != ss[keys.SELECTED]:
    ss[keys.SELECTED] = picked
feature = ui.new_drawing(out)
if feature is not None:
    if not is_draft:
        st.error("已发布方案不能直接修改：请在“方案版本”中从已发布方案新建草稿")
    else:
        try:
            new, label, focus = planview.apply_geometry(
                grids, drawing_to_geometry(feature, basemap=basemap), selected=ss[keys.SELECTED],
                households=ctx.households, admin_units=ctx.admin)
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            ui.push(new, label, focus=focus)
            ss[keys.NOTICE] = ("success", label)
            st.rerun()

names = planview.grid_label(grids)
with right:
    sel = ss[keys.SELECTED] if ss[keys.SELECTED] in names else None
    st.markdown(f"**选中的网格：** {markdown(names[sel]) if sel else '（在地图上点击）'}")
    merge = st.multiselect("合并网格（同镇、相邻）", list(names), default=[sel] if sel else [],
                           format_func=names.__getitem__, disabled=not is_draft, placeholder="选择要合并的网格")
    if st.button("合并所选网格", disabled=len(merge) < 2 or not is_draft):
        try:
            new = edit.merge_grids(grids, merge)
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            ui.push(new, f"合并网格 {'、'.join(merge)}",
                    focus=planview.bounds_of(grids[grids["grid_id"].isin(merge)].union_all()))
            st.rerun()
    if sel and is_draft:
        with st.expander("调整住户归属"):
            hh = planview.households_in(grids, sel, ctx.households)
            move = st.multiselect(f"本网格住户（{len(hh)} 户）", hh, key="planning.move_ids", placeholder="选择住户")
            to = st.selectbox("调入网格", [g for g in names if g != sel], format_func=names.__getitem__,
                              key="planning.move_to")
            if st.button("调整", disabled=not move or to is None) and to is not None:
                try:
                    new = edit.move_households_in_plan(grids, move, from_grid=sel, to_grid=to)
                except GridsError as exc:
                    st.error(markdown(str(exc)))
                else:
                    ui.push(new, f"{len(move)} 户从 {sel} 调到 {to}")
                    st.rerun()
    st.markdown(f"**检查（{n_errors} 个错误，{len(found) - n_errors} 个警告）**")
    if not n_errors:
        st.success("全覆盖、无重叠、每格有人负责" + ("；警告不影响发布" if len(found) else ""))
    if len(found):
        row = ui.problem_list(found)
        if row is not None and ui.focus_problem(found, row):
            st.rerun()
    with st.expander(f"编辑记录（{history.position} 步）"):
        for i, label in enumerate(history.labels):
            st.write(("▶ " if i == history.position else "　") + markdown(label))
