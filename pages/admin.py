"""账号与审计 — admins manage accounts (list, create, disable, unlock, reset password, change role) and the
branches' product rules (approval authority, narrowed bands, base rates); admins and leadership filter the audit
trail by actor, action and date and export it as CSV. Every account and rule change is decided by the library
(:class:`grids.auth.AccountAdmin`, :func:`grids.credit_rules.set_branch_rule`): a forged widget value is
refused there."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from grids import audit, credit_rules, products
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
tabs = st.tabs(["账号", "产品规则", "审计记录"] if manage else ["审计记录"])


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
                     "staff_id": "员工", "active": "启用", "locked": "锁定", "failed_logins": "连续密码错误",
                     "locked_until": "锁定至", "created_at": "创建时间"}),
            hide_index=True, height=300, width="stretch", placeholder="—")
        adm = gauth.AccountAdmin(ws, account)
        st.subheader("新建账号")
        branches = data.layer(target, rev, "branches", ("branch_id", "name"))
        staff = data.layer(target, rev, "staff", ("staff_id", "name", "branch_id", "role"))
        bnames = dict(zip(branches["branch_id"], branches["name"], strict=True))
        snames = dict(zip(staff["staff_id"], staff["name"], strict=True))

        def staff_branch(person: str | None) -> str | None:
            hit = staff.loc[staff["staff_id"] == person, "branch_id"]
            return str(hit.iloc[0]) if person and len(hit) else None

        def binding(role: str, branch: str | None, person: str | None) -> dict[str, str | None]:
            """The branch/staff fields the role uses (the library checks they exist)."""
            return {"branch_id": branch if role == "branch_manager" else (
                        staff_branch(person) if role == "customer_manager" else None),
                    "staff_id": person if role == "customer_manager" else None}

        with st.form("admin.create_form", clear_on_submit=True):
            a, b = st.columns(2)
            username = a.text_input("用户名", key="admin.new_username")
            display = b.text_input("姓名", key="admin.new_display")
            role = a.selectbox("角色", list(ROLE_NAMES), format_func=ROLE_NAMES.__getitem__, key="admin.new_role",
                               index=None, placeholder="请选择角色")
            password = b.text_input("初始密码", type="password", help=f"至少 {gauth.MIN_PASSWORD_LENGTH} 位",
                                    key="admin.new_password_initial")
            branch = a.selectbox("网点（网点主任）", [None, *bnames], format_func=lambda k: bnames.get(k, "—"),
                                 key="admin.new_branch")
            person = b.selectbox("员工（客户经理）", [None, *snames],
                                 format_func=lambda k: f"{snames[k]}（{k}）" if k else "—", key="admin.new_staff")
            create = st.form_submit_button("新建", type="primary")
        if create:
            run(lambda: adm.create(username=username.strip(), password=password, role=role or "",  # none: refused
                                   display_name=display.strip(), **binding(role or "", branch, person)),
                f"已新建账号 {username}")
        st.subheader("停用、启用、解锁与重置密码")
        users = accounts["username"].tolist()
        c, d = st.columns(2)
        who = c.selectbox("账号", users, key="admin.user", index=None, placeholder="请选择账号")
        row = accounts[accounts["username"] == who]
        active = bool(row["active"].fillna(False).iloc[0]) if len(row) else False
        locked = bool(row["locked"].iloc[0]) if len(row) else False
        if who == account.username:
            c.caption("不能停用自己的账号。")
        # drawn the same for every account: the library decides (and refuses disabling oneself)
        if c.button("停用账号" if active else "启用账号", key="admin.toggle", disabled=not who) and who:
            run(lambda: adm.set_active(who, not active), f"已{'停用' if active else '启用'} {who}")
        if locked:
            until = pd.Timestamp(row["locked_until"].iloc[0]).tz_convert("Asia/Shanghai")
            c.warning(f"{who} 因连续密码错误已锁定至 {until:%H:%M}（北京时间）。")
        if c.button("解锁", key="admin.unlock", disabled=not locked, help="清除连续密码错误次数并解除锁定") and who:
            run(lambda: adm.unlock(who), f"已解锁 {who}")
        new_pw = d.text_input("新密码", type="password", key="admin.new_password")
        if d.button("重置密码", key="admin.reset") and who:
            run(lambda: adm.set_password(who, new_pw), f"已重置 {who} 的密码")
        st.subheader("修改角色与绑定")
        with st.form("admin.role_form"):
            e, f = st.columns(2)
            new_role = e.selectbox("新角色", list(ROLE_NAMES), format_func=ROLE_NAMES.__getitem__, key="admin.set_role",
                                   index=None, placeholder="请选择角色")
            new_branch = f.selectbox("网点（网点主任）", [None, *bnames], format_func=lambda k: bnames.get(k, "—"),
                                     key="admin.set_branch")
            new_person = f.selectbox("员工（客户经理）", [None, *snames],
                                     format_func=lambda k: f"{snames[k]}（{k}）" if k else "—",
                                     key="admin.set_staff")
            change = st.form_submit_button(f"修改 {who} 的角色" if who else "修改角色")
        if change and who:
            run(lambda: adm.set_role(who, role=new_role or "", **binding(new_role or "", new_branch, new_person)),
                f"已修改 {who} 的角色")

if manage:
    with tabs[1]:
        from grids.scope import ScopedWorkspace

        rb = data.layer(target, rev, "branches", ("branch_id", "name"))
        rnames = dict(zip(rb["branch_id"], rb["name"], strict=True))
        branch = st.selectbox("网点", list(rnames), format_func=lambda k: f"{rnames[k]}（{k}）", key="admin.rule_branch")
        st.caption("联社的默认规则见 `grids/data/products.json`；网点可另设审批权限（超过的授信报联社贷审会），"
                   "可收紧额度范围、另设基准利率，不能放宽联社的规则。改动记入审计。")
        st.dataframe(credit_rules.rules_summary(credit_rules.effective_rules(ws, branch)).rename(
            columns=credit_rules.RULES_HEADERS), hide_index=True, width="stretch")
        with st.form("admin.rule_form"):
            g, h, i = st.columns(3)
            r_product = g.selectbox("产品（不选 = 全部产品的审批权限）", [None, *products.load_catalogue()],
                                    format_func=lambda k: k or "全部产品", key="admin.rule_product")
            r_grade = h.text_input("等级（设额度范围时填写）", key="admin.rule_grade")
            r_limit = i.number_input("审批权限（元）", min_value=0, value=None, step=10000, key="admin.rule_limit")
            r_min = g.number_input("最低额度（元）", min_value=0, value=None, step=1000, key="admin.rule_min")
            r_max = h.number_input("最高额度（元）", min_value=0, value=None, step=1000, key="admin.rule_max")
            r_rate = i.number_input("基准利率（%）", min_value=0.0, value=None, step=0.05, key="admin.rule_rate")
            save = st.form_submit_button("保存（各项都留空 = 恢复联社默认）")
        if save and branch:
            run(lambda: ScopedWorkspace(ws, account, require_plan=False).set_credit_rule(
                branch_id=branch, product=r_product or "", grade=r_grade, approval_limit=r_limit,
                min_amount=r_min, max_amount=r_max, base_rate=r_rate), f"已修改网点 {branch} 的产品规则")

with tabs[-1]:
    full = audit.audit_trail(ws, account)
    a, b, c = st.columns(3)
    actors = a.multiselect("操作人", sorted(full["actor"].dropna().unique()), key=ADMIN_AUDIT_ACTOR,
                           placeholder="全部")
    actions = b.multiselect("操作", sorted(full["action"].dropna().unique()), key=ADMIN_AUDIT_ACTION,
                            placeholder="全部")
    today = pd.Timestamp.now(tz="Asia/Shanghai").date()  # audit times are shown by the China calendar
    days = c.date_input("日期", value=(today - dt.timedelta(days=30), today), key="admin.audit_days")
    start, end = (*days, None)[:2] if isinstance(days, tuple) else (days, None)
    log = audit.filter_audit(full, actors=actors, actions=actions, start=start, end=end)
    shown = log.rename(columns={"at": "时间（北京时间）", "actor": "操作人", "action": "操作", "layer": "图层",
                                "revision": "版本", "detail": "详情", "detail_json": "详情（原文）",
                                "prev_hash": "上一条哈希", "hash": "本条哈希"})
    st.caption(f"{len(log):,} 条（共 {len(full):,} 条）　审计链头：{audit.chain_head(ws)}"
               "（与另存的链头比对：记录被改写或删除时链头不同；`python -m grids audit verify` 逐条核验）")
    st.dataframe(shown.drop(columns=["详情（原文）"]), hide_index=True, height=420, width="stretch")
    st.download_button("导出审计记录（CSV）", data.table_csv(pd.DataFrame(shown)),
                       f"审计记录_{today:%Y%m%d}.csv", "text/csv", key="admin.audit_csv")
