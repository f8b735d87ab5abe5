"""网格规划 — planners build grids, redraw them (split, merge, reshape, move households), check, save, compare and
publish plan versions, and try a branch what-if."""

from __future__ import annotations

import streamlit as st

from grids import edit, planmaps, plans, planview
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS
from grids.check import errors
from grids.errors import GridsError, StaleEditError
from grids.maps import drawing_to_geometry
from grids.model import PLAN_STATUS_NAMES
from grids.text import markdown
from ui import data
from ui import planning as ui
from ui import planning_sections as sections
from ui import state as keys
from ui.maps import clicked_area, show_cached_map

acct, target, rev, ws, ctx, basemap = ui.page_setup()
ss = st.session_state
actor = acct.username

st.title("网格规划")
if not acct.can("edit_plans"):
    st.error("只有规划人员和管理员可以编辑网格方案")
    st.stop()
ui.notice()
section = st.segmented_control("功能", ["编辑", "生成网格", "方案版本", "假设分析"], key=keys.SECTION,
                               label_visibility="collapsed") or "编辑"

# --- 生成网格 ------------------------------------------------------------------------------------------
if section == "生成网格":
    sections.build_section(ws, actor=actor)
    st.stop()

plan_list = ui.context(target, rev).plans
if not len(plan_list):
    st.info("工作区还没有网格方案：先在“生成网格”中生成一个。")
    st.stop()
labels = {r.plan_id: f"{r.name}（{PLAN_STATUS_NAMES.get(r.status, r.status)}，第 {r.revision} 版）"
          for r in plan_list.itertuples()}

# --- 方案版本 ------------------------------------------------------------------------------------------
if section == "方案版本":
    sections.versions_section(ws, ctx=ctx, target=target, rev=rev, plan_list=plan_list, labels=labels,
                              actor=actor, basemap=basemap)
    st.stop()

# --- 假设分析 ------------------------------------------------------------------------------------------
if section == "假设分析":
    sections.whatif_section(ws, ctx=ctx, target=target, rev=rev, labels=labels, basemap=basemap)
    st.stop()

# --- 编辑 ----------------------------------------------------------------------------------------------
drafts = [p for p in labels if plan_list.set_index("plan_id").loc[p, "status"] != "archived"]
if ss[keys.PLAN] not in labels:
    first_draft = plan_list[plan_list["status"] == "draft"]
    ui.load_plan(target, rev, str(first_draft["plan_id"].iloc[0]) if len(first_draft) else plans.resolve_plan(ws))
chosen = st.selectbox("编辑的方案", drafts, index=drafts.index(ss[keys.PLAN]) if ss[keys.PLAN] in drafts else 0,
                      format_func=labels.get)
if chosen != ss[keys.PLAN]:
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
                           format_func=names.get, disabled=not is_draft, placeholder="选择要合并的网格")
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
            to = st.selectbox("调入网格", [g for g in names if g != sel], format_func=names.get,
                              key="planning.move_to")
            if st.button("调整", disabled=not move):
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
