"""柜员用信 — a teller finds one signed customer by card or ID number (a minimal, masked view) and records a
drawdown or repayment at its own branch (授用分离: any customer of the county); 签约发卡 for those who may sign.
Every rule is grids.credit_events'."""

from __future__ import annotations

import streamlit as st

from grids import credit_events
from grids.errors import GridsError, ValidationError
from grids.text import markdown
from ui import auth, data
from ui.state import TELLER_FOUND, TELLER_LAST

target, rev = data.current()
account = auth.current_account()
sw = data.scope_or_stop(target, rev, account)

st.title("柜员用信")
if st.session_state[TELLER_LAST]:
    st.success(markdown(st.session_state[TELLER_LAST]))
    st.session_state[TELLER_LAST] = None


def _done(text: str) -> None:
    st.session_state[TELLER_LAST] = text
    st.rerun()


names = data.layer(target, rev, "branches", ("branch_id", "name")).set_index("branch_id")["name"]
own = f"{markdown(names.get(account.branch_id, ''))}（{markdown(account.branch_id or '')}）"
if account.can("serve_credit"):
    where = f"本网点 {own}" if account.role == "teller" else "指定网点"
    st.caption(f"在{where}为全县任一签约客户"
               "办理用信、还款；只能按卡号或身份证号查询，只显示办理所需的信息。")
    with st.form("teller.lookup"):
        by = st.radio("查询方式", ["卡号", "身份证号"], horizontal=True, key="teller.by")
        number = st.text_input("卡号或身份证号", type="password", key="teller.number")
        if st.form_submit_button("查询", key="teller.find"):
            try:
                kw = {"card_no": number} if by == "卡号" else {"id_number": number}
                st.session_state[TELLER_FOUND] = sw.find_customer(**kw)
                if st.session_state[TELLER_FOUND] is None:
                    st.warning("没有找到签约客户：请核对号码；未签约的户须先由网点主任签约发卡。")
            except GridsError as exc:
                st.error(markdown(exc))
    view = st.session_state[TELLER_FOUND]
    if view:
        st.dataframe({credit_events.VIEW_COLUMNS[k]: [v if isinstance(v, str) or v is None else f"{v:,.2f}"]
                      for k, v in view.items()}, hide_index=True)
        with st.form("teller.move"):
            kind = st.radio("业务", [credit_events.DRAW, credit_events.REPAY], horizontal=True, key="teller.kind")
            amount = st.number_input("金额（元）", min_value=0.0, step=100.0, format="%.2f", key="teller.amount")
            branch = account.branch_id
            if account.role != "teller":
                branch = st.selectbox("办理网点", [str(b) for b in names.index], key="teller.branch",
                                      format_func=lambda b: f"{b} {names.get(b, '')}")
            sure = st.checkbox("已核对客户身份和金额", key="teller.sure")
            if st.form_submit_button("确认办理", type="primary", key="teller.submit"):
                try:
                    if not sure:
                        raise ValidationError("还没有确认", fix="核对客户身份和金额后勾选“已核对客户身份和金额”")
                    r = sw.serve_credit(kind, view["hh_id"], amount=amount, branch_id=branch)
                    st.session_state[TELLER_FOUND] = {**view, "balance": r["balance"], "available": r["available"]}
                    _done(f"已{r['kind']} {r['amount']:,.2f} 元（户 {r['hh_id']}，网点 {r['branch_id']}）："
                          f"用信余额 {r['balance']:,.2f} 元，可用余额 {r['available']:,.2f} 元")
                except GridsError as exc:
                    st.error(markdown(exc))

if account.can("sign_card"):
    st.subheader("签约发卡")
    st.caption("为" + (f"本网点 {own} 网格内" if account.role != "admin" else "") + "已授信的户签约：签约额度不超过授信额度；"
               "卡号只保存密钥哈希和后四位。")
    with st.form("teller.sign"):
        hh_id = st.text_input("户号", key="teller.sign_hh")
        amount = st.number_input("签约额度（元）", min_value=0.0, step=1000.0, format="%.2f", key="teller.sign_amount")
        card = st.text_input("卡号", type="password", key="teller.sign_card")
        on = st.date_input("签约日期", value=None, key="teller.sign_on")
        if st.form_submit_button("签约", type="primary", key="teller.sign_submit"):
            try:
                r = sw.sign_card(hh_id, amount=amount, card_no=card, on=on)
                _done(f"已签约：户 {r['hh_id']}，签约额度 {r['amount']:,.2f} 元，卡号尾号 {r['card_last4']}")
            except GridsError as exc:
                st.error(markdown(exc))
