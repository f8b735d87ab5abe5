"""网格规划 — planners build grids, redraw them (split, merge, reshape, move households), check, save, compare and
publish plan versions, and try a branch what-if."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from grids import assign, edit, plans
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS, build_workspace_plan
from grids.errors import GridsError, StaleRevisionError
from grids.model import PLAN_STATUS_NAMES
from grids.pipeline import assign_workspace_plan
from grids.store import open_workspace
from ui import data
from ui import planning as ui
from ui.maps import clicked_area, show_cached_map
from ui.state import BASEMAP

ui.init()
ss = st.session_state
target, rev = data.current()
ws = open_workspace(target)
ctx = ui.context(target, rev)
basemap = ss.get(BASEMAP) or "offline"  # the sidebar widget owns the key (absent when a test runs the page alone)
actor = ui.account().username

st.title("网格规划")
if not ui.account().can("edit_plans"):
    st.error("只有规划人员和管理员可以编辑网格方案")
    st.stop()
ui.notice()
section = st.segmented_control("功能", ["编辑", "生成网格", "方案版本", "假设分析"], key=ui.SECTION,
                               label_visibility="collapsed") or "编辑"

# --- 生成网格 ------------------------------------------------------------------------------------------
if section == "生成网格":
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
            pid = build_workspace_plan(ws, name=name, min_households=int(lo), max_households=int(hi),
                                       progress=say, actor=actor)
            if do_assign:
                say("分配网点与客户经理…")
                assign_workspace_plan(ws, pid, actor=actor)
        except GridsError as exc:
            st.error(str(exc))
        else:
            bar.progress(1.0, text="完成")
            target, rev = data.current()
            ui.load_plan(target, rev, pid)
            ss[ui.NOTICE] = ("success", f"已生成草稿方案 “{name}”，可在“编辑”中修改")
            st.rerun()
    st.stop()

plan_list = ui.context(target, rev).plans
if not len(plan_list):
    st.info("工作区还没有网格方案：先在“生成网格”中生成一个。")
    st.stop()
labels = {r.plan_id: f"{r.name}（{PLAN_STATUS_NAMES.get(r.status, r.status)}，第 {r.revision} 版）"
          for r in plan_list.itertuples()}

# --- 方案版本 ------------------------------------------------------------------------------------------
if section == "方案版本":
    st.dataframe(plan_list[["name", "status", "revision", "updated_at", "published_at"]].rename(columns={
        "name": "方案", "status": "状态", "revision": "版本", "updated_at": "更新时间", "published_at": "发布时间"}),
        hide_index=True)
    published = plan_list[plan_list["status"] == "published"]
    with st.form("planning.new_draft"):
        new_name = st.text_input("新草稿名称", value="调整-" + pd.Timestamp.now().strftime("%m%d%H%M"))
        if st.form_submit_button("从已发布方案新建草稿", disabled=published.empty):
            try:
                src = str(published["plan_id"].iloc[0])
                pid = plans.save_draft(ws, plans.read_grids(ws, src), name=new_name, actor=actor,
                                       params={"from_plan": src})
            except GridsError as exc:
                st.error(str(exc))
            else:
                target, rev = data.current()
                ui.load_plan(target, rev, pid)
                ss[ui.NOTICE] = ("success", f"已从已发布方案新建草稿 “{new_name}”")
                st.rerun()
    st.subheader("对比两个方案")
    a, b = st.columns(2)
    ids = list(labels)
    pa = a.selectbox("方案 A（原）", ids, format_func=labels.get,
                     index=ids.index(str(published["plan_id"].iloc[0])) if len(published) else 0)
    pb = b.selectbox("方案 B（新）", ids, format_func=labels.get, index=0 if ids[0] != pa else min(1, len(ids) - 1))
    if st.button("对比", disabled=pa == pb):
        with st.spinner("正在对比…"):
            ss[ui.COMPARE] = (pa, pb, edit.compare_plans(ui.stored_grids(target, rev, pa),
                                                         ui.stored_grids(target, rev, pb),
                                                         households=ctx.households, admin_units=ctx.admin))
    if ss[ui.COMPARE] is not None and ss[ui.COMPARE][:2] == (pa, pb):
        cmp = ss[ui.COMPARE][2]
        s = cmp.summary
        cols = st.columns(4)
        cols[0].metric("变化的网格", s["grids_changed"])
        cols[1].metric("新增 / 删除", f"{s['added']} / {s['removed']}")
        cols[2].metric("换网格或换人的住户", f"{s['households_moved']:,}")
        cols[3].metric("工作量变化的客户经理", s["staff_changed"])
        left, right = st.columns([3, 2])
        with left:
            grids_b = ui.stored_grids(target, rev, pb)
            show_cached_map(lambda: ui.plan_map(grids_b, ctx=ctx, basemap=basemap, found=None, focus=None,
                                                min_households=DEFAULT_MIN_HOUSEHOLDS,
                                                max_households=DEFAULT_MAX_HOUSEHOLDS, highlight=cmp.grids,
                                                draw=False),
                            cache_key=("compare", target, rev, pa, pb, basemap), key="planning.compare_map",
                            returned=())
        with right:
            table = cmp.grids.drop(columns="geometry").assign(
                change=[", ".join(edit.CHANGE_LABELS[k] for k in c.split(",")) for c in cmp.grids["change"]])
            st.dataframe(table, hide_index=True, height=260)
            st.markdown("**客户经理工作量变化（户）**")
            st.dataframe(cmp.workload, hide_index=True, height=200)
        st.markdown(f"**换网格或换人的住户：{len(cmp.households):,} 户**")
        st.dataframe(cmp.households.head(2000), hide_index=True, height=240)
    st.stop()

# --- 假设分析 ------------------------------------------------------------------------------------------
pid_published = plans.resolve_plan(ws)
if section == "假设分析":
    base = ui.stored_grids(target, rev, pid_published)
    st.caption(f"基于方案 {labels.get(pid_published, pid_published)}：在地图上点击放置新网点，或选择要关闭的网点。")
    a, b = st.columns([2, 1])
    branch_ids = ctx.branches["branch_id"].astype(str).tolist()
    names = dict(zip(branch_ids, ctx.branches["name"].astype(str), strict=True))
    close = b.selectbox("关闭网点", [None, *branch_ids], format_func=lambda x: "（不关闭）" if x is None
                        else f"{x} {names[x]}")
    point = ss[ui.WHATIF_POINT]
    b.write(f"新网点位置：{point[0]:.5f}, {point[1]:.5f}" if point else "新网点：（在地图上点击）")
    if point and b.button("清除新网点"):
        ss[ui.WHATIF_POINT] = None
        st.rerun()
    result = ss[ui.WHATIF]
    with a:
        moves = result.moves["grid_id"].tolist() if result is not None else None
        out = show_cached_map(lambda: ui.whatif_map(base, ctx=ctx, basemap=basemap, point=point, moves=moves),
                              cache_key=("whatif", target, rev, basemap, point, id(result)),
                              key="planning.whatif_map", returned=("last_clicked",))
    click = out.get("last_clicked")
    if click and click.get("lat") is not None:
        from grids.maps import point_from_display

        p = point_from_display(click["lng"], click["lat"], basemap=basemap)
        if ss[ui.WHATIF_POINT] is None or max(abs(p[0] - ss[ui.WHATIF_POINT][0]),
                                              abs(p[1] - ss[ui.WHATIF_POINT][1])) > 1e-9:
            ss[ui.WHATIF_POINT] = p
            st.rerun()
    if b.button("计算", type="primary", disabled=point is None and close is None):
        with st.spinner("正在重新分配（两次全县分配）…"):
            try:
                ss[ui.WHATIF] = assign.what_if(base, ctx.branches, ctx.staff, add_branch=point, close_branch=close)
            except GridsError as exc:
                st.error(str(exc))
        st.rerun()
    if result is not None:
        s = result.summary
        for line in s["scenario"]:
            st.write("· " + line)
        cols = st.columns(3)
        cols[0].metric("改变网点的网格", s["grids_moved"], f"{s['households_moved']:,} 户", delta_color="off")
        cols[1].metric("平均距离", f"{s['mean_distance_m_after'] / 1000:.2f} km",
                       f"{(s['mean_distance_m_after'] - s['mean_distance_m_before']) / 1000:+.2f} km",
                       delta_color="inverse")
        cols[2].metric("最远距离", f"{s['max_distance_m_after'] / 1000:.2f} km",
                       f"{(s['max_distance_m_after'] - s['max_distance_m_before']) / 1000:+.2f} km",
                       delta_color="inverse")
        st.dataframe(result.branches, hide_index=True)
        st.dataframe(result.moves, hide_index=True)
    st.stop()

# --- 编辑 ----------------------------------------------------------------------------------------------
drafts = [p for p in labels if plan_list.set_index("plan_id").loc[p, "status"] != "archived"]
if ss[ui.PLAN] not in labels:
    first_draft = plan_list[plan_list["status"] == "draft"]
    ui.load_plan(target, rev, str(first_draft["plan_id"].iloc[0]) if len(first_draft) else pid_published)
chosen = st.selectbox("编辑的方案", drafts, index=drafts.index(ss[ui.PLAN]) if ss[ui.PLAN] in drafts else 0,
                      format_func=labels.get)
if chosen != ss[ui.PLAN]:
    ui.load_plan(target, rev, chosen)
    st.rerun()
info = plans.plan_info(ws, ss[ui.PLAN])
is_draft = info["status"] == "draft"
history: edit.History = ss[ui.HISTORY]
grids = history.current
params = info.get("params") or {}
lo = int(params.get("min_households", DEFAULT_MIN_HOUSEHOLDS))
hi = int(params.get("max_households", DEFAULT_MAX_HOUSEHOLDS))
found = ui.problems(grids, ctx)

totals = edit.grid_totals(grids)
cols = st.columns(6)
cols[0].metric("网格", f"{totals['grids']:,}")
cols[1].metric("住户", f"{totals['households']:,}")
cols[2].metric("每格最少", totals["min"])
cols[3].metric("中位数", f"{totals['median']:.0f}")
cols[4].metric("最多", totals["max"])
cols[5].metric("检查问题", len(found), delta="可发布" if found.empty else "需修正", delta_color="off",
               delta_arrow="off")

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
if u3.button("保存草稿", type="primary", disabled=not (is_draft and dirty)):
    try:
        new_rev = plans.update_grids(ws, ss[ui.PLAN], grids, actor=actor, action="编辑网格方案："
                                     + "；".join(history.labels[1:history.position + 1])[:200],
                                     expected_revision=ss[ui.REVISION])
    except StaleRevisionError as exc:
        ss[ui.STALE] = exc.actual
        st.error(str(exc))
    except GridsError as exc:
        st.error(str(exc))
    else:
        target, rev = data.current()
        ui.load_plan(target, rev, ss[ui.PLAN])
        ss[ui.NOTICE] = ("success", f"已保存为第 {new_rev} 版")
        st.rerun()
if u4.button("发布方案", disabled=not (is_draft and not dirty and found.empty),
             help="只有保存后且检查没有问题的草稿才能发布"):
    try:
        plans.publish_plan(ws, ss[ui.PLAN], actor=actor, expected_revision=ss[ui.REVISION])
    except GridsError as exc:
        st.error(str(exc))
    else:
        ss[ui.NOTICE] = ("success", "方案已发布，原已发布方案已归档")
        st.rerun()
u5.caption(f"当前：{history.label}" + ("（有未保存的修改）" if dirty else "")
           + ("" if is_draft else "　已发布方案不能直接修改：请在“方案版本”中新建草稿"))
if ss[ui.STALE] is not None:
    st.warning(f"数据库里的方案已是第 {ss[ui.STALE]} 版（你编辑的是第 {ss[ui.REVISION]} 版）。"
               "载入最新版会丢弃你未保存的修改；也可以先对比两版再决定。")
    if st.button("载入最新版本"):
        ui.load_plan(target, rev, ss[ui.PLAN])
        st.rerun()

left, right = st.columns([3, 1.3])
with left:
    out = show_cached_map(
        lambda: ui.plan_map(grids, ctx=ctx, basemap=basemap, found=found, focus=ss[ui.FOCUS],
                            min_households=lo, max_households=hi),
        cache_key=("plan", ss[ui.TOKEN], ss[ui.VERSION], basemap, ss[ui.FOCUS]), key="planning.map",
        height=640, returned=("last_object_clicked", "last_active_drawing"))
    st.caption("点击网格选中它；用左侧工具画线拆分网格，画多边形把该区域并入选中的网格。")
picked = clicked_area(out, grids, basemap=basemap, id_column="grid_id")
if picked and picked != ss[ui.SELECTED]:
    ss[ui.SELECTED] = picked
feature = ui.new_drawing(out)
if feature is not None:
    if not is_draft:
        st.error("已发布方案不能直接修改：请在“方案版本”中从已发布方案新建草稿")
    else:
        try:
            new, label, focus = ui.apply_drawing(grids, feature, selected=ss[ui.SELECTED], basemap=basemap, ctx=ctx)
        except GridsError as exc:
            st.error(str(exc))
        else:
            ui.push(new, label, focus=focus)
            ss[ui.NOTICE] = ("success", label)
            st.rerun()

names = ui.grid_label(grids)
with right:
    sel = ss[ui.SELECTED] if ss[ui.SELECTED] in names else None
    st.markdown(f"**选中的网格：** {names[sel] if sel else '（在地图上点击）'}")
    merge = st.multiselect("合并网格（同镇、相邻）", list(names), default=[sel] if sel else [],
                           format_func=names.get, disabled=not is_draft)
    if st.button("合并所选网格", disabled=len(merge) < 2 or not is_draft):
        try:
            new = edit.merge_grids(grids, merge)
        except GridsError as exc:
            st.error(str(exc))
        else:
            ui.push(new, f"合并网格 {'、'.join(merge)}",
                    focus=ui.bounds_of(grids[grids["grid_id"].isin(merge)].union_all()))
            st.rerun()
    if sel and is_draft:
        with st.expander("调整住户归属"):
            hh = ui.households_in(grids, sel, ctx)
            move = st.multiselect(f"本网格住户（{len(hh)} 户）", hh, key="planning.move_ids")
            to = st.selectbox("调入网格", [g for g in names if g != sel], format_func=names.get,
                              key="planning.move_to")
            if st.button("调整", disabled=not move):
                try:
                    new = edit.move_households_in_plan(grids, move, from_grid=sel, to_grid=to)
                except GridsError as exc:
                    st.error(str(exc))
                else:
                    ui.push(new, f"{len(move)} 户从 {sel} 调到 {to}")
                    st.rerun()
    st.markdown(f"**检查（{len(found)} 个问题）**")
    if found.empty:
        st.success("全覆盖、无重叠、每格有人负责")
    else:
        pick = st.dataframe(ui.problems_table(found), hide_index=True, height=300, on_select="rerun",
                            selection_mode="single-row", key="planning.problem_table")
        rows = pick.selection.rows if pick is not None else []
        if rows:
            focus = ui.bounds_of(found.geometry.iloc[rows[0]])
            if focus is not None and focus != ss[ui.FOCUS]:
                ss[ui.FOCUS] = focus
                ids = found["grid_ids"].iloc[rows[0]]
                ss[ui.SELECTED] = ids[0] if ids else ss[ui.SELECTED]
                st.rerun()
    with st.expander(f"编辑记录（{history.position} 步）"):
        for i, label in enumerate(history.labels):
            st.write(("▶ " if i == history.position else "　") + label)
