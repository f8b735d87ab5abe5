"""账号与审计 — admins manage accounts (list, create, disable, reset password); admins and leadership filter
the audit trail by actor, action and date and export it as CSV."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from grids import auth as gauth
from grids.errors import GridsError
from grids.model import ROLE_NAMES
from grids.text import markdown
from ui import auth, data
from ui.state import ADMIN_AUDIT_ACTION, ADMIN_AUDIT_ACTOR

target, rev = data.current()
account = auth.current_account()
ws = data.open_workspace(target)

st.title("账号与审计")
manage = account.can("manage_accounts")
tabs = st.tabs(["账号", "审计记录"] if manage else ["审计记录"])


def run(action, message: str) -> None:
    """Run an account change; show the library's error, or the message and reload."""
    try:
        action()
    except GridsError as exc:
        st.error(markdown(str(exc)))
    else:
        st.toast(markdown(message))
        st.rerun()


if manage:
    with tabs[0]:
        accounts = gauth.list_accounts(ws)
        st.dataframe(accounts.assign(role=accounts["role"].map(ROLE_NAMES).fillna(accounts["role"])).rename(
            columns={"username": "用户名", "display_name": "姓名", "role": "角色", "branch_id": "网点",
                     "staff_id": "员工", "active": "启用", "created_at": "创建时间"}),
            hide_index=True, height=300, width="stretch", placeholder="—")
        adm = gauth.AccountAdmin(ws, account)
        st.subheader("新建账号")
        branches = data.layer(target, rev, "branches", ("branch_id", "name"))
        staff = data.layer(target, rev, "staff", ("staff_id", "name", "branch_id", "role"))
        bnames = dict(zip(branches["branch_id"], branches["name"], strict=True))
        snames = dict(zip(staff["staff_id"], staff["name"], strict=True))
        with st.form("admin.create_form", clear_on_submit=True):
            a, b = st.columns(2)
            username = a.text_input("用户名")
            display = b.text_input("姓名")
            role = a.selectbox("角色", list(ROLE_NAMES), format_func=ROLE_NAMES.get)
            password = b.text_input("初始密码", type="password", help=f"至少 {gauth.MIN_PASSWORD_LENGTH} 位")
            branch = a.selectbox("网点（网点主任）", [None, *bnames], format_func=lambda k: bnames.get(k, "—"))
            person = b.selectbox("员工（客户经理）", [None, *snames],
                                 format_func=lambda k: f"{snames[k]}（{k}）" if k else "—")
            create = st.form_submit_button("新建", type="primary")
        if create:
            staff_branch = staff.loc[staff["staff_id"] == person, "branch_id"]
            run(lambda: adm.create(
                username=username.strip(), password=password, role=role, display_name=display.strip(),
                branch_id=branch if role == "branch_manager" else (
                    str(staff_branch.iloc[0]) if role == "customer_manager" and len(staff_branch) else None),
                staff_id=person if role == "customer_manager" else None), f"已新建账号 {username}")
        st.subheader("停用、启用与重置密码")
        users = accounts["username"].tolist()
        c, d = st.columns(2)
        who = c.selectbox("账号", users, key="admin.user")
        active = bool(accounts.loc[accounts["username"] == who, "active"].fillna(False).iloc[0]) if who else False
        if who == account.username:
            c.caption("不能停用自己的账号。")
        elif c.button("停用账号" if active else "启用账号", key="admin.toggle"):
            run(lambda: adm.set_active(who, not active),
                f"已{'停用' if active else '启用'} {who}")
        new_pw = d.text_input("新密码", type="password", key="admin.new_password")
        if d.button("重置密码", key="admin.reset") and who:
            run(lambda: adm.set_password(who, new_pw), f"已重置 {who} 的密码")

with tabs[-1]:
    full = data.audit_trail(ws, account)
    a, b, c = st.columns(3)
    actors = a.multiselect("操作人", sorted(full["actor"].dropna().unique()), key=ADMIN_AUDIT_ACTOR,
                           placeholder="全部")
    actions = b.multiselect("操作", sorted(full["action"].dropna().unique()), key=ADMIN_AUDIT_ACTION,
                            placeholder="全部")
    today = pd.Timestamp.now(tz="Asia/Shanghai").date()  # audit times are shown by the China calendar
    days = c.date_input("日期", value=(today - dt.timedelta(days=30), today), key="admin.audit_days")
    start, end = (*days, None)[:2] if isinstance(days, tuple) else (days, None)
    log = data.filter_audit(full, actors=actors, actions=actions, start=start, end=end)
    shown = log.rename(columns={"at": "时间（北京时间）", "actor": "操作人", "action": "操作", "layer": "图层",
                                "revision": "版本", "detail": "详情"})
    st.caption(f"{len(log):,} 条（共 {len(full):,} 条）")
    st.dataframe(shown, hide_index=True, height=420, width="stretch")
    st.download_button("导出审计记录（CSV）", data.table_csv(pd.DataFrame(shown)),
                       f"审计记录_{today:%Y%m%d}.csv", "text/csv", key="admin.audit_csv")
