"""人员分配 — a branch manager gives the branch's grids to its customer managers: map by staff, workload and
balance, auto-balance with a preview, reassign and lock grids, staff who come and go (新增、离职、调动 with a
preview; a leaver's grids flagged until handed over) and their accounts, each manager's 入户清单 and printable map.
What is shown is decided by grids.staffview, what is sent and said after a save by grids.staffing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from grids import planmaps, plans, staffing, staffview
from grids.errors import GridsError
from grids.model import STAFF_ROLES
from grids.scope import ScopedWorkspace
from grids.text import markdown
from ui import data
from ui import planning as ui
from ui import state as keys
from ui.maps import clicked_area, show_cached_map


def pick(box: Any, label: str, labels: dict[str, str], key: str, **kw: Any) -> str:
    """A select box over ``labels`` (id → text) in ``box``; the id chosen ("" when there is none)."""
    return box.selectbox(label, list(labels), format_func=labels.__getitem__, key=key, **kw) or ""


def run(save: Callable[[], str], *, forget: str | None = None, editor: bool = False) -> bool:
    """Save through the library: on success forget the held preview (and the editor's table), leave the
    notice and rerun; a refusal is shown and False returned."""
    try:
        notice = save()
    except GridsError as exc:
        st.error(markdown(str(exc)))
        return False
    if forget:
        st.session_state[forget] = None
    if editor:
        data.drop_editor_table("staffing")
    st.session_state[keys.STAFF_NOTICE] = ("success", notice)
    st.rerun()


def lifecycle_section(sw: ScopedWorkspace, *, branch: str, branch_names: dict[str, str], people: dict[str, str],
                      all_grids: pd.DataFrame) -> None:
    """新增 / 离职 / 调动 with a preview of the grids that change hands before anything is saved."""
    mode = st.radio("人员变动", list(staffing.LIFECYCLE_MODES), horizontal=True, key="staffing.lifecycle_mode")
    action = staffing.LIFECYCLE_MODES.get(mode)
    if action == "add":
        c1, c2, c3 = st.columns(3)
        sid = c1.text_input("员工编号", key="staffing.new_id", placeholder="例如 S200")
        name = c2.text_input("姓名", key="staffing.new_name")
        role = c3.selectbox("岗位", STAFF_ROLES, key="staffing.new_role")
        request = staffing.staff_request(mode, branch=branch, staff_id=sid, name=name, role=role)
        label, key = "预览新增", "staffing.preview_add"
    elif action == "leave":
        who = pick(st, "离职的员工", people, "staffing.leaver")
        request = staffing.staff_request(mode, branch=branch, staff_id=who)
        label, key = "预览离职交接", "staffing.preview_leave"
    else:
        c1, c2 = st.columns(2)
        who = pick(c1, "调动的员工", people, "staffing.mover")
        to = pick(c2, "调入网点", staffview.branch_labels(branch_names, without=branch), "staffing.move_to")
        request = staffing.staff_request(mode, branch=branch, staff_id=who, to_branch=to)
        label, key = "预览调动", "staffing.preview_move"
    if st.button(label, key=key, disabled=request is None) and request is not None:
        try:
            ss[keys.STAFF_CHANGE] = staffing.preview_change(sw, all_grids, request, branch=branch)
        except GridsError as exc:
            st.error(markdown(str(exc)))
    held = staffing.held_for(ss[keys.STAFF_CHANGE], branch)
    if not held:
        return
    for line in staffview.change_summary(held.change):
        st.write(line)
    st.dataframe(staffview.change_moves_table(held.change), hide_index=True, key="staffing.change_moves")
    a, b = st.columns(2)
    if a.button("确认保存", type="primary", key="staffing.confirm_change") and not run(
            lambda: staffing.save_change(sw, held), forget=keys.STAFF_CHANGE):
        return
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
    toggle = staffing.account_toggle(acc, c1.selectbox("账号", acc["username"].astype(str).tolist(),
                                                        key="staffing.account"))
    if c2.button(toggle.label, key="staffing.toggle_account"):
        run(lambda: staffing.toggle_account(sw, toggle))


def quota_section(sw: ScopedWorkspace, *, team: pd.DataFrame, branches: pd.DataFrame, branch: str) -> None:
    """Visit quotas of the branch's customer managers (households per visit day; empty: the branch default),
    and the branch default (branch managers); the library checks scope and values (:meth:`set_quotas`)."""
    default, table = staffview.branch_quota(branches, branch), staffview.staff_quotas(team)
    own = bool(sw.account.branch_id)  # a branch manager also sets the branch default
    with st.form("staffing.quotas"):
        new_default = st.number_input(staffview.DEFAULT_QUOTA_LABEL, 0, 60, value=default or 0, step=1) if own else None
        quota = st.column_config.NumberColumn("本人定额（户/走访日；空 = 网点默认）", min_value=1, max_value=60, step=1)
        edited = st.data_editor(table, hide_index=True, disabled=["staff_id", "name"], key="staffing.quota_editor",
                                column_config={"staff_id": "编号", "name": "客户经理", "quota": quota})
        if st.form_submit_button("保存定额"):
            request = staffing.quota_request(table, edited, default=default, new_default=new_default, own_branch=own)
            if request.empty:
                st.info("定额没有变化。")
            else:
                run(lambda: staffing.save_quotas(sw, request))


acct, target, rev, ws, ctx, basemap = ui.page_setup()
ss = st.session_state

st.title("人员分配")
ui.notice(keys.STAFF_NOTICE)
try:
    sw = ScopedWorkspace(ws, acct)
except GridsError as exc:
    st.warning(f"还没有网格方案：{markdown(exc)}")
    st.stop()
branch_names = staffview.branch_names(ctx.branches)
choices = staffview.branch_labels(branch_names, sort=True)
branch = acct.branch_id or pick(st, "网点", choices, keys.STAFF_BRANCH)
st.caption(staffview.plan_caption(branch_names.get(branch, branch), plans.plan_info(ws, sw.plan_id)))

all_grids = ui.stored_grids(target, rev, sw.plan_id)
view = staffview.branch_team(all_grids, ctx.staff, ctx.branches, branch)
grids, team, names, people = view.grids, view.team, view.names, staffview.staff_labels(view.team)
if view.empty:
    st.info("该网点没有网格或没有客户经理。")
    if acct.can("manage_staff"):
        lifecycle_section(sw, branch=branch, branch_names=branch_names, people=people, all_grids=all_grids)
    st.stop()


def send(assignment: staffing.Assignment) -> None:
    """Send grids to other customer managers (library call); forget the balance preview and table when saved."""
    run(lambda: staffing.save_assignment(sw, assignment), forget=keys.STAFF_PREVIEW, editor=True)


# workload and balance
branch_m, staff_m = ui.branch_workload(target, rev, sw.plan_id, branch, grids, ctx.branches, team)
for col, m in zip(st.columns(4), staffview.workload_metrics(branch_m, grids, view.orphans), strict=True):
    col.metric(m.label, m.value, delta=m.delta, delta_color="off", delta_arrow="off", help=m.help)
for text in staffview.split_warnings(grids, team):  # whole grids cannot reach 10 %: which grids to split
    st.warning(text, icon="✂️")
if handover := staffview.orphan_warning(view.orphans):
    st.warning(handover)
preview, held = staffing.held_for(ss[keys.STAFF_PREVIEW], branch), staffing.held_for(ss[keys.STAFF_CHANGE], branch)
left, right = st.columns([3, 2])
with left:
    shown = staffing.map_view(grids, team, ctx.staff, preview=preview, held=held)
    out = show_cached_map(
        lambda: planmaps.staff_map(shown.grids, staff=shown.team, branches=view.offices, basemap=basemap,
                                   admin=ctx.admin, changed=shown.changed, **data.tiles()),
        cache_key=("staffing", target, rev, branch, basemap, shown.token), key="staffing.map", height=560)
if picked := clicked_area(out, grids, basemap=basemap, id_column="grid_id"):
    ss[keys.STAFF_SELECTED] = picked

with right:
    st.markdown("**工作量**")
    st.dataframe(staffview.workload_table(staff_m, names), hide_index=True, key="staffing.workload")
    sel = staffview.selection(grids, names, ss[keys.STAFF_SELECTED])
    st.markdown(sel.text)
    if sel.grid_id:
        to = pick(st, "改派给", people, "staffing.reassign_to", index=sel.position)
        one = staffing.reassignment(sel.grid_id, to, current=sel.current, versions=view.versions, names=names,
                                    shown=ss[keys.STAFF_SHOWN])
        if st.button(one.label, disabled=one.empty, type="primary", key="staffing.reassign"):
            send(one)
        ss[keys.STAFF_SHOWN] = {sel.grid_id: view.versions[sel.grid_id]}

st.subheader("自动均衡（最少调整）")
if st.button("计算均衡方案", help="锁定的网格不动；只在负荷超出平均 ±5% 时移动最少的户数"):
    ss[keys.STAFF_PREVIEW] = staffing.balance_preview(grids, team, view.versions, branch=branch)
    st.rerun()
if preview:
    st.write(preview.summary)
    st.dataframe(staffing.balance_preview_table(preview, staff_m, offices=view.offices, team=team, names=names),
                 hide_index=True)
    apply, drop = st.columns(2)
    balance = staffing.balance_assignment(preview, branch=branch)
    if apply.button(balance.label, type="primary", disabled=balance.empty, key="staffing.apply_preview"):
        send(balance)
    if drop.button("放弃"):
        ss[keys.STAFF_PREVIEW] = None
        st.rerun()

if acct.can("manage_staff"):
    st.subheader("人员变动（新增、离职、调动）")
    lifecycle_section(sw, branch=branch, branch_names=branch_names, people=people, all_grids=all_grids)
    # these run only while open (a rerun of the page does not read the accounts)
    with st.expander("本网点员工账号（启用、停用）", key="staffing.accounts_open", on_change="rerun") as box:
        if box.open:
            staff_accounts_section(sw)
if acct.can("assign"):
    with st.expander("走访定额（每个走访日的户数）", key="staffing.quotas_open", on_change="rerun") as box:
        if box.open:
            quota_section(sw, team=team, branches=ctx.branches, branch=branch)

st.subheader("网格列表（可改派、锁定）")
table, seen, editor_key = data.editor_table(
    "staffing", (sw.plan_id, branch), lambda: staffview.grid_list(grids, view.versions), rev=rev)
edited = st.data_editor(
    table, hide_index=True, key=editor_key, disabled=["grid_id", "name", "households"],
    column_config={"grid_id": "编码", "name": "网格", "households": "户数",
                   "staff_id": st.column_config.SelectboxColumn("客户经理", options=list(names), required=True),
                   "locked": st.column_config.CheckboxColumn("锁定", help="自动均衡时不移动")})
edits = staffing.table_assignment(table, edited, seen, branch=branch)
if st.button(edits.label, disabled=edits.empty, key="staffing.save_table"):
    send(edits)
if rev != data.editor_rev("staffing") and st.button("刷新表格（放弃未保存的修改）", key="staffing.refresh"):
    data.drop_editor_table("staffing")
    st.rerun()

st.subheader("下载入户清单和客户分布地图")
a, *cols = st.columns([2, 1, 1, 1])
who = pick(a, "客户经理", people, "staffing.download_staff")
files = ss[keys.STAFF_FILES]
for col, (fmt, label, mime) in zip(cols, staffview.DOWNLOADS, strict=True):
    key = (target, rev, who, fmt)
    if key in files:
        col.download_button(f"下载{label}", files[key], staffview.download_name(names[who], label, fmt), mime,
                            key=f"staffing.dl_{fmt}")
    elif col.button(f"生成{label}", key=f"staffing.make_{fmt}"):
        with st.spinner("正在生成…"):
            try:
                files[key] = staffing.export_file(sw, fmt=fmt, staff_id=who)
            except GridsError as exc:
                st.error(markdown(str(exc)))
            else:
                st.rerun()
