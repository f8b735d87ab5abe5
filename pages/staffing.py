"""人员分配 — a branch manager gives the branch's grids to its customer managers: map by staff, workload and
balance, auto-balance with a preview, reassign and lock grids, staff who come and go (新增、离职、调动 with a
preview; a leaver's grids flagged until handed over) and their accounts, each manager's 入户清单 and printable map."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from grids import assign, planmaps, plans, planview, staffview
from grids.assign.metrics import assignment_metrics, balance_warnings
from grids.errors import GridsError
from grids.model import STAFF_ROLES
from grids.progress import DEFAULT_QUOTA_PER_DAY
from grids.ratings import table_intents
from grids.scope import ScopedWorkspace
from grids.text import markdown
from ui import data
from ui import planning as ui
from ui import state as keys
from ui.maps import clicked_area, show_cached_map

LIFECYCLE_MODES = ("新增客户经理", "登记离职", "调到其他网点")


def keep_change(sw: ScopedWorkspace, all_grids: pd.DataFrame, action: str, params: dict[str, Any]) -> None:
    """Compute a change (scope decided by the library) and keep it, with the grid versions it was shown at."""
    change = sw.staff_preview(action, **params)
    seen = plans.versions(all_grids[all_grids["branch_id"].astype(object).isin(list(change.teams))])
    st.session_state[keys.STAFF_CHANGE] = {"action": action, "params": params, "change": change, "seen": seen,
                                           "token": uuid.uuid4().hex}


def lifecycle_section(sw: ScopedWorkspace, *, branch: str, branch_names: dict[str, str], team: pd.DataFrame,
                      all_grids: pd.DataFrame) -> None:
    """新增 / 离职 / 调动 with a preview of the grids that change hands before anything is saved."""
    ss = st.session_state
    names = dict(zip(team["staff_id"].astype(str), team["name"].astype(str), strict=True))
    mode = st.radio("人员变动", LIFECYCLE_MODES, horizontal=True, key="staffing.lifecycle_mode")
    try:
        if mode == LIFECYCLE_MODES[0]:
            c1, c2, c3 = st.columns(3)
            sid = c1.text_input("员工编号", key="staffing.new_id", placeholder="例如 S200")
            name = c2.text_input("姓名", key="staffing.new_name")
            role = c3.selectbox("岗位", STAFF_ROLES, key="staffing.new_role")
            if st.button("预览新增", key="staffing.preview_add", disabled=not (sid and name)):
                keep_change(sw, all_grids, "add", {"person": {"staff_id": sid, "name": name, "branch_id": branch,
                                                               "role": role}})
        elif mode == LIFECYCLE_MODES[1]:
            who = st.selectbox("离职的员工", list(names), format_func=lambda s: f"{names.get(s, s)}（{s}）",
                               key="staffing.leaver")
            if st.button("预览离职交接", key="staffing.preview_leave", disabled=not who):
                keep_change(sw, all_grids, "leave", {"staff_id": who})
        else:
            c1, c2 = st.columns(2)
            who = c1.selectbox("调动的员工", list(names), format_func=lambda s: f"{names.get(s, s)}（{s}）",
                               key="staffing.mover")
            others = [b for b in branch_names if b != branch]
            to = c2.selectbox("调入网点", others, format_func=lambda b: f"{b} {branch_names[b]}", key="staffing.move_to")
            if st.button("预览调动", key="staffing.preview_move", disabled=not (who and to)):
                keep_change(sw, all_grids, "move", {"staff_id": who, "to_branch": to})
    except GridsError as exc:
        st.error(markdown(str(exc)))
    held = ss[keys.STAFF_CHANGE]
    if not held:
        return
    change = held["change"]
    st.markdown(f"**预览：{markdown(change.title())}**（地图上虚线框为将改派的网格，保存前不生效）")
    for line in change.lines()[1:]:
        if not line.startswith("  "):
            st.write(markdown(line))
    st.dataframe(staffview.change_moves_table(change), hide_index=True, key="staffing.change_moves")
    a, b = st.columns(2)
    if a.button("确认保存", type="primary", key="staffing.confirm_change"):
        p = held["params"]
        try:
            if held["action"] == "leave":
                done = sw.staff_leave(p["staff_id"], seen=held["seen"])
            elif held["action"] == "add":
                done = sw.staff_add(p["person"], seen=held["seen"])
            else:
                done = sw.staff_move(p["staff_id"], p["to_branch"], seen=held["seen"])
        except GridsError as exc:
            st.error(markdown(str(exc)))
            return
        ss[keys.STAFF_CHANGE] = None
        ss[keys.STAFF_NOTICE] = ("success", f"已保存：{done.title()}，改派 {len(done.moves)} 个网格"
                                 + (f"（方案第 {done.revision} 版）" if done.revision is not None else ""))
        st.rerun()
    if b.button("放弃", key="staffing.drop_change"):
        ss[keys.STAFF_CHANGE] = None
        st.rerun()


def staff_accounts_section(sw: ScopedWorkspace) -> None:
    """The accounts of the branch's staff, each enabled or disabled by the branch manager (library decides)."""
    acc = sw.staff_accounts()
    if acc.empty:
        st.caption("本网点员工还没有账号。")
        return
    st.dataframe(staffview.accounts_table(acc), hide_index=True, key="staffing.accounts")
    c1, c2 = st.columns([3, 1])
    user = c1.selectbox("账号", acc["username"].astype(str).tolist(), key="staffing.account")
    active = bool(acc.set_index("username").loc[user, "active"]) if user else False
    if c2.button("停用账号" if active else "启用账号", key="staffing.toggle_account"):
        try:
            sw.set_staff_account_active(user, not active)
        except GridsError as exc:
            st.error(markdown(str(exc)))
            return
        st.session_state[keys.STAFF_NOTICE] = ("success", f"账号 {user} 已{'停用' if active else '启用'}")
        st.rerun()


def quota_section(sw: ScopedWorkspace, *, team: pd.DataFrame, branches: pd.DataFrame, branch: str) -> None:
    """Visit quotas of the branch's customer managers (households per visit day; empty: the branch default),
    and the branch default (branch managers); the library checks scope and values (:meth:`set_quotas`)."""
    default = staffview.branch_quota(branches, branch)
    table = staffview.staff_quotas(team)
    mine = dict(zip(table["staff_id"], table["quota"], strict=True))
    with st.form("staffing.quotas"):
        new_default = default
        if sw.account.branch_id:
            new_default = st.number_input(f"本网点默认定额（户/走访日；0 = 联社默认 {DEFAULT_QUOTA_PER_DAY} 户）", 0, 60,
                                          value=default or 0, step=1) or None
        edited = st.data_editor(table, hide_index=True, disabled=["staff_id", "name"], key="staffing.quota_editor",
                                column_config={"staff_id": "编号", "name": "客户经理",
                                               "quota": st.column_config.NumberColumn(
                                                   "本人定额（户/走访日；空 = 网点默认）", min_value=1, max_value=60,
                                                   step=1)})
        if st.form_submit_button("保存定额"):
            changes = staffview.quota_changes(mine, edited)
            kw = {"branch_default": new_default} if sw.account.branch_id and new_default != default else {}
            if not changes and not kw:
                st.info("定额没有变化。")
                return
            try:
                sw.set_quotas(changes, **kw)
            except GridsError as exc:
                st.error(markdown(str(exc)))
            else:
                st.session_state[keys.STAFF_NOTICE] = ("success", f"已保存定额（{len(changes)} 人"
                                                       + ("，网点默认" if kw else "") + "）")
                st.rerun()


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
        lifecycle_section(sw, branch=branch, branch_names=branch_names, team=team, all_grids=all_grids)
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
    st.markdown("**工作量**")
    st.dataframe(staffview.workload_table(staff_m, staff_names), hide_index=True, key="staffing.workload")
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
    after = assignment_metrics(preview["grids"], ctx.branches[ctx.branches["branch_id"] == branch], staff=team)[1]
    st.write(f"将改派 {len(preview['changed'])} 个网格（地图上虚线框）：")
    st.dataframe(staffview.balance_table(staff_m, after, staff_names), hide_index=True)
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
    lifecycle_section(sw, branch=branch, branch_names=branch_names, team=team, all_grids=all_grids)
    # these run only while open (a rerun of the page does not read the accounts)
    with st.expander("本网点员工账号（启用、停用）", key="staffing.accounts_open", on_change="rerun") as box:
        if box.open:
            staff_accounts_section(sw)
if acct.can("assign"):
    with st.expander("走访定额（每个走访日的户数）", key="staffing.quotas_open", on_change="rerun") as box:
        if box.open:
            quota_section(sw, team=team, branches=ctx.branches, branch=branch)

st.subheader("网格列表（可改派、锁定）")
shown, seen, editor_key = data.editor_table(
    "staffing", (sw.plan_id, branch), lambda: staffview.grid_list(grids, shown_versions), rev=rev)
edited = st.data_editor(
    shown, hide_index=True, key=editor_key, disabled=["grid_id", "name", "households"],
    column_config={"grid_id": "编码", "name": "网格", "households": "户数",
                   "staff_id": st.column_config.SelectboxColumn("客户经理", options=list(staff_names), required=True),
                   "locked": st.column_config.CheckboxColumn("锁定", help="自动均衡时不移动")})
intents = table_intents(shown, edited, id_column="grid_id")
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
