"""人员分配 — a branch manager gives the branch's grids to its customer managers: map by staff, workload and
balance, auto-balance with a preview, reassign and lock grids, staff who come and go (新增、离职、调动 with a
preview; a leaver's grids flagged until handed over) and their accounts, each manager's 入户清单 and printable map."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pandas as pd
import streamlit as st

from grids import assign, planmaps, plans, planview
from grids.assign.metrics import assignment_metrics, balance_warnings
from grids.errors import GridsError
from grids.scope import ScopedWorkspace
from grids.text import markdown
from ui import data
from ui import planning as ui
from ui import state as keys
from ui.maps import clicked_area, show_cached_map

acct, target, rev, ws, ctx, basemap = ui.page_setup()
ss = st.session_state

st.title("人员分配")
ui.notice(keys.STAFF_NOTICE)
try:
    sw = ScopedWorkspace(ws, acct)
except GridsError as exc:
    st.warning(f"还没有网格方案：{markdown(exc)}")
    st.stop()
info = plans.plan_info(ws, sw.plan_id)
branch_names = dict(zip(ctx.branches["branch_id"].astype(str), ctx.branches["name"].astype(str), strict=True))
if acct.branch_id:
    branch = acct.branch_id
else:
    ids = sorted(branch_names)
    branch = st.selectbox("网点", ids, format_func=lambda b: f"{b} {branch_names[b]}", key=keys.STAFF_BRANCH)
st.caption(f"{markdown(branch_names.get(branch, branch))}　方案：{markdown(info['name'])}（第 {info['revision']} 版）")

all_grids = ui.stored_grids(target, rev, sw.plan_id)
grids = all_grids[all_grids["branch_id"].astype(object) == branch].sort_values("grid_id", kind="stable")
shown_versions = plans.versions(grids)
team = assign.assignable_staff(ctx.staff)
team = team[team["branch_id"] == branch].reset_index(drop=True)
if grids.empty or team.empty:
    st.info("该网点没有网格或没有客户经理。")
    if acct.can("manage_staff"):
        ui.lifecycle_section(sw, branch=branch, branch_names=branch_names, team=team, all_grids=all_grids)
    st.stop()
staff_names = dict(zip(team["staff_id"].astype(str), team["name"].astype(str), strict=True))


def send(changes: dict, seen: dict, action: str, done: str | None = None) -> None:
    """Send an intent (grid ids → fields, with the versions the user saw) to the library; rerun when saved."""
    try:
        new_rev = sw.assign_grids(changes, seen=seen, action=action)
    except GridsError as exc:
        st.error(markdown(str(exc)))
        return
    ss[keys.STAFF_PREVIEW] = None
    data.drop_editor_table("staffing")
    ss[keys.STAFF_NOTICE] = ("success", f"{done or action + f'：已保存 {len(changes)} 个网格'}（方案第 {new_rev} 版）")
    st.rerun()


# workload and balance
branch_m, staff_m = ui.branch_workload(target, rev, sw.plan_id, branch, grids, ctx.branches, team)
b = branch_m.iloc[0]
cols = st.columns(4)
cols[0].metric("网格", len(grids))
cols[1].metric("住户", f"{int(grids['households'].sum()):,}")
cols[2].metric("客户经理负荷差", f"{b['staff_spread'] * 100:.0f}%", help="（最多 − 最少）/ 平均，按户数")
orphans = planview.held_by_others(grids, team)  # a leaver's grids not yet handed over: never “已均衡”
cols[3].metric("可达到的下限", f"{b['spread_lower_bound'] * 100:.0f}%",
               delta=f"{len(orphans)} 个网格待交接" if orphans else "已均衡" if b["balance_ok"] else "可再均衡",
               delta_color="off",
               help="网格整块分配时负荷差不可能低于此值（可证明的下限，不计连片）")
for w in balance_warnings(grids, team).itertuples():  # whole grids cannot reach 10 %: which grids to split
    st.warning(f"{markdown(w.message)}。  \n**建议：**{markdown(w.fix)}", icon="✂️")

if orphans:
    st.warning(f"{len(orphans)} 个网格的客户经理已离职或不在本网点：{markdown('、'.join(orphans[:10]))}。"
               "修正方法：在下方“人员变动”登记离职交接，或自动均衡")
preview, held = ss[keys.STAFF_PREVIEW], ss[keys.STAFF_CHANGE]
left, right = st.columns([3, 2])
with left:
    changed = preview["changed"] if preview else None
    shown, map_team = (preview["grids"] if preview else grids), team
    if held:  # a staff change awaiting confirmation: its grids flagged until saved
        shown, changed, map_team = planview.change_grids(grids, held["change"], ctx.staff)
    token = held["token"] if held else preview["token"] if preview else None
    out = show_cached_map(
        lambda: planmaps.staff_map(shown, staff=map_team, branches=ctx.branches[ctx.branches["branch_id"] == branch],
                                   basemap=basemap, admin=ctx.admin, changed=changed, **data.tiles()),
        cache_key=("staffing", target, rev, branch, basemap, token), key="staffing.map", height=560)
picked = clicked_area(out, grids, basemap=basemap, id_column="grid_id")
if picked:
    ss[keys.STAFF_SELECTED] = picked

with right:
    table = staff_m[["staff_id", "grids", "households", "load_vs_mean", "pieces"]].assign(
        name=lambda t: t["staff_id"].map(staff_names), load_vs_mean=lambda t: (t["load_vs_mean"] * 100).round(0))
    st.markdown("**工作量**")
    st.dataframe(table[["staff_id", "name", "grids", "households", "load_vs_mean", "pieces"]].rename(columns={
        "staff_id": "编号", "name": "客户经理", "grids": "网格数", "households": "户数",
        "load_vs_mean": "相对平均（%）", "pieces": "片数"}), hide_index=True, key="staffing.workload")
    sel = ss[keys.STAFF_SELECTED] if ss[keys.STAFF_SELECTED] in set(grids["grid_id"]) else None
    labels = planview.grid_label(grids)
    st.markdown(f"**选中的网格：** {markdown(labels[sel]) if sel else '（在地图上点击）'}")
    if sel:
        cur = grids.set_index("grid_id").loc[sel, "staff_id"]
        ids = list(staff_names)
        to = st.selectbox("改派给", ids, index=ids.index(cur) if cur in ids else 0,
                          format_func=lambda s: f"{staff_names.get(s, s)}（{s}）", key="staffing.reassign_to")
        if st.button("改派", disabled=to == cur, type="primary", key="staffing.reassign"):
            send({sel: {"staff_id": to}}, {sel: shown_versions[sel]}, f"网格 {sel} 改派给 {to}",
                 f"网格 {sel} 已改派给 {staff_names.get(to, to)}")

st.subheader("自动均衡（最少调整）")
if st.button("计算均衡方案", help="锁定的网格不动；只在负荷超出平均 ±5% 时移动最少的户数"):
    new_staff = assign.assign_staff(grids, team, minimal_change=True)
    proposal = grids.assign(staff_id=new_staff.to_numpy())
    moved = grids.loc[(grids["staff_id"].astype(object) != new_staff).to_numpy(), "grid_id"].tolist()
    ss[keys.STAFF_PREVIEW] = {"grids": proposal, "changed": moved, "seen": dict(shown_versions), "token": uuid.uuid4().hex}
    st.rerun()
if preview:
    _, after, _ = assignment_metrics(preview["grids"], ctx.branches[ctx.branches["branch_id"] == branch], staff=team)
    cmp = pd.DataFrame({"客户经理": staff_m["staff_id"].map(staff_names), "现在（户）": staff_m["households"],
                        "均衡后（户）": after["households"]})
    st.write(f"将改派 {len(preview['changed'])} 个网格（地图上虚线框）：")
    st.dataframe(cmp, hide_index=True)
    a, b2 = st.columns(2)
    if a.button("应用均衡方案", type="primary", disabled=not preview["changed"], key="staffing.apply_preview"):
        proposal = preview["grids"].set_index("grid_id")["staff_id"]
        send({g: {"staff_id": proposal[g]} for g in preview["changed"]},
             {g: preview["seen"].get(g, -1) for g in preview["changed"]}, f"网点 {branch} 自动均衡")
    if b2.button("放弃"):
        ss[keys.STAFF_PREVIEW] = None
        st.rerun()

if acct.can("manage_staff"):
    st.subheader("人员变动（新增、离职、调动）")
    ui.lifecycle_section(sw, branch=branch, branch_names=branch_names, team=team, all_grids=all_grids)
    # these run only while open (a rerun of the page does not read the accounts)
    with st.expander("本网点员工账号（启用、停用）", key="staffing.accounts_open", on_change="rerun") as box:
        if box.open:
            ui.staff_accounts_section(sw)
if acct.can("assign"):
    with st.expander("走访定额（每个走访日的户数）", key="staffing.quotas_open", on_change="rerun") as box:
        if box.open:
            ui.quota_section(sw, team=team, branches=ctx.branches, branch=branch)

st.subheader("网格列表（可改派、锁定）")
shown, seen, editor_key = data.editor_table(
    "staffing", (sw.plan_id, branch), lambda: pd.DataFrame(grids[["grid_id", "name", "households", "staff_id",
                                                                  "locked"]]).assign(
        locked=lambda t: t["locked"].astype("boolean").fillna(False).astype(bool),
        version=lambda t: t["grid_id"].map(shown_versions)), rev=rev)
edited = st.data_editor(
    shown, hide_index=True, key=editor_key, disabled=["grid_id", "name", "households"],
    column_config={"grid_id": "编码", "name": "网格", "households": "户数",
                   "staff_id": st.column_config.SelectboxColumn("客户经理", options=list(staff_names), required=True),
                   "locked": st.column_config.CheckboxColumn("锁定", help="自动均衡时不移动")})
intents = data.table_intents(shown, edited, id_column="grid_id")
if st.button(f"保存表格修改（{len(intents)} 处）", disabled=not intents, key="staffing.save_table"):
    send(intents, {g: seen[g] for g in intents if g in seen}, f"网点 {branch} 调整网格分配")
if rev != data.editor_rev("staffing") and st.button("刷新表格（放弃未保存的修改）", key="staffing.refresh"):
    data.drop_editor_table("staffing")
    st.rerun()

st.subheader("下载入户清单和客户分布地图")
a, b3, c, d = st.columns([2, 1, 1, 1])
who = a.selectbox("客户经理", list(staff_names), format_func=lambda s: f"{staff_names[s]}（{s}）",
                  key="staffing.download_staff")
files = ss[keys.STAFF_FILES]
for col, fmt, label, mime in ((b3, "xlsx", "入户清单", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                              (c, "png", "地图 PNG", "image/png"), (d, "pdf", "地图 PDF", "application/pdf")):
    key = (target, rev, who, fmt)
    if key in files:
        col.download_button(f"下载{label}", files[key], f"{staff_names[who]}_{label}.{fmt}", mime,
                            key=f"staffing.dl_{fmt}")
    elif col.button(f"生成{label}", key=f"staffing.make_{fmt}"):
        with st.spinner("正在生成…"), tempfile.TemporaryDirectory() as tmp:
            try:
                res = sw.export(fmt=fmt, out=Path(tmp) / f"out.{fmt}", staff_id=who)
            except GridsError as exc:
                st.error(markdown(str(exc)))
            else:
                files[key] = Path(res["path"]).read_bytes()
                st.rerun()
