"""The planning page's secondary sections (生成网格, 方案版本, 假设分析), Streamlit-only.

Each function renders one section of pages/planning.py; the page calls it and stops.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from grids import assign, edit, planmaps, plans, planview
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS
from grids.errors import GridsError
from grids.landmass import county_outline
from grids.text import markdown
from ui import data
from ui import planning as ui
from ui import state as keys
from ui.maps import show_cached_map
from ui.state import RerunGuard


def build_section(ws: Any, *, actor: str) -> None:
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
            pid = ui.scoped_any(ws, ui.account()).build_plan(name=name, min_households=int(lo),
                                                             max_households=int(hi), assign=do_assign, progress=say)
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            bar.progress(1.0, text="完成")
            target, rev = data.current()
            ui.load_plan(target, rev, pid)
            ss[keys.NOTICE] = ("success", f"已生成草稿方案 “{name}”，可在“编辑”中修改")
            st.rerun()


def versions_section(ws: Any, *, ctx: Any, target: str, rev: int, plan_list: pd.DataFrame,
                     labels: dict[str, str], actor: str, basemap: str) -> None:
    """方案版本: the list, a new draft from the published plan, and the comparison of two plans."""
    ss = st.session_state
    st.dataframe(plan_list[["name", "status", "revision", "updated_at", "published_at"]].rename(columns={
        "name": "方案", "status": "状态", "revision": "版本", "updated_at": "更新时间", "published_at": "发布时间"}),
        hide_index=True)
    published = plan_list[plan_list["status"] == "published"]
    with st.form("planning.new_draft"):
        new_name = st.text_input("新草稿名称", value="调整-" + pd.Timestamp.now().strftime("%m%d%H%M"))
        if st.form_submit_button("从已发布方案新建草稿", disabled=published.empty):
            try:
                pid = ui.scoped(ws, ui.account()).new_draft(str(published["plan_id"].iloc[0]), name=new_name)
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
    pa = a.selectbox("方案 A（原）", ids, format_func=labels.get,
                     index=ids.index(str(published["plan_id"].iloc[0])) if len(published) else 0)
    pb = b.selectbox("方案 B（新）", ids, format_func=labels.get, index=0 if ids[0] != pa else min(1, len(ids) - 1))
    if st.button("对比", disabled=pa == pb):
        with st.spinner("正在对比…"):
            ss[keys.COMPARE] = (pa, pb, edit.compare_plans(ui.stored_grids(target, rev, pa),
                                                         ui.stored_grids(target, rev, pb),
                                                         households=ctx.households, admin_units=ctx.admin))
    if ss[keys.COMPARE] is not None and ss[keys.COMPARE][:2] == (pa, pb):
        cmp = ss[keys.COMPARE][2]
        s = cmp.summary
        cols = st.columns(4)
        cols[0].metric("变化的网格", s["grids_changed"])
        cols[1].metric("新增 / 删除", f"{s['added']} / {s['removed']}")
        cols[2].metric("换网格或换人的住户", f"{s['households_moved']:,}")
        cols[3].metric("工作量变化的客户经理", s["staff_changed"])
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
            table = cmp.grids.drop(columns="geometry").assign(
                change=[", ".join(edit.CHANGE_LABELS[k] for k in c.split(",")) for c in cmp.grids["change"]])
            st.dataframe(table.rename(columns=planview.COMPARE_COLUMNS), hide_index=True, height=260)
            st.markdown("**客户经理工作量变化（户）**")
            st.dataframe(cmp.workload.rename(columns=planview.COMPARE_COLUMNS), hide_index=True, height=200)
        st.markdown(f"**换网格或换人的住户：{len(cmp.households):,} 户**")
        st.dataframe(cmp.households.head(2000).rename(columns=planview.COMPARE_COLUMNS), hide_index=True, height=240)


def whatif_section(ws: Any, *, ctx: Any, target: str, rev: int, labels: dict[str, str], basemap: str) -> None:
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
        s = result.summary
        for line in s["scenario"]:
            st.write("· " + markdown(line))
        cols = st.columns(4)
        cols[0].metric("移动户数", f"{s['households_moved']:,} 户", f"{s['grids_moved']} 个网格改变网点",
                       delta_color="off")
        cols[1].metric("调动员工", f"{s['staff_moved']} 名")
        cols[2].metric("平均距离", f"{s['mean_distance_m_after'] / 1000:.2f} km",
                       f"{(s['mean_distance_m_after'] - s['mean_distance_m_before']) / 1000:+.2f} km",
                       delta_color="inverse")
        cols[3].metric("最远距离", f"{s['max_distance_m_after'] / 1000:.2f} km",
                       f"{(s['max_distance_m_after'] - s['max_distance_m_before']) / 1000:+.2f} km",
                       delta_color="inverse")
        st.caption(f"员工 {s['staff_before']} → {s['staff_after']} 名；"
                   + ("其余网格的网点和客户经理都不变。" if not s.get("grids_restaffed") else
                      f"另有 {s['households_restaffed']:,} 户网点不变、换客户经理。"))
        st.dataframe(result.branches.rename(columns={**planview.WHATIF_COLUMNS, "staff_before": "客户经理人数（前）",
                                                     "staff_after": "客户经理人数（后）"}), hide_index=True)
        if len(result.staff_moves):
            st.dataframe(result.staff_moves.rename(columns=planview.WHATIF_COLUMNS), hide_index=True)
        st.dataframe(result.moves.rename(columns=planview.WHATIF_COLUMNS), hide_index=True)
