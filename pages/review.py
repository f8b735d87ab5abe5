"""贷审会审批 — the credit committee's queue: rating-session decisions above a branch's approval authority, with the
panel's minutes and votes; approve (the household is granted, product rules checked) or return with a reason.
Every check is grids/sessions.py's, on the decision id the server holds. The queue the user saw is kept until
刷新 (or their own decision): a decision someone else decided meanwhile stays listed with its new outcome, so a
click never lands on another row."""

from __future__ import annotations

import streamlit as st

from grids import sessions
from grids.errors import GridsError
from grids.text import markdown
from ui import auth, data
from ui.state import REVIEW_HELD

target, rev = data.current()
account = auth.current_account()
sw = data.scope_or_stop(target, rev, account)

st.title("贷审会审批")
try:
    queue = sw.review_queue(include=st.session_state[REVIEW_HELD])
except GridsError as exc:
    st.info(markdown(str(exc)))
    st.stop()
if not st.session_state[REVIEW_HELD] or st.button("刷新队列", key="review.refresh"):
    queue = queue[queue["outcome"] == sessions.PENDING].reset_index(drop=True)
    st.session_state[REVIEW_HELD] = queue["decision_id"].tolist()
queue = queue[queue["decision_id"].isin(st.session_state[REVIEW_HELD])].reset_index(drop=True)
admin = data.layer(target, rev, "admin_units", ("code", "name", "level"))
village = dict(zip(admin["code"], admin["name"], strict=True))
st.caption(f"待审批 {int((queue['outcome'] == sessions.PENDING).sum())} 户：评定小组表决通过、金额超过网点审批权限的授信。"
           "审批通过即授信（按产品规则再次校验）；退回需写明理由。")
if queue.empty:
    st.info("没有待审批的授信。")
    st.stop()
shown = queue.assign(village=queue["village_code"].map(village).fillna(queue["village_code"]))
st.dataframe(shown[["decision_id", "outcome", "branch_id", "village", "hh_id", "head_name", "product", "grade",
                    "amount", "approval_limit", "guarantee", "votes_for", "votes_against", "votes_abstain",
                    "held_on"]],
             hide_index=True, width="stretch", column_config={
                 "decision_id": "决定编号", "outcome": "状态", "branch_id": "网点", "village": "村/社区",
                 "hh_id": "户号", "head_name": "户主", "product": "产品", "grade": "等级",
                 "amount": st.column_config.NumberColumn("金额（元）", format="%d"),
                 "approval_limit": st.column_config.NumberColumn("网点审批权限（元）", format="%d"),
                 "guarantee": "担保方式", "votes_for": "同意", "votes_against": "反对", "votes_abstain": "弃权",
                 "held_on": st.column_config.DateColumn("评定会日期")})
labels = {d: f"{d}（{h}，{a:,.0f} 元，{o}）" for d, h, a, o in zip(queue["decision_id"], queue["hh_id"],
                                                                  queue["amount"], queue["outcome"], strict=True)}
picked = st.selectbox("审批的决定", list(labels), format_func=lambda d: labels.get(d, str(d)), key="review.pick")
rec = queue[queue["decision_id"] == picked].iloc[0]
st.markdown(f"**会议纪要**（{markdown(rec['place'])}）：{markdown(rec['minutes'])}")
st.dataframe(sessions.decided_votes(rec["votes"]), hide_index=True)
if not account.can("review_credit"):
    st.info("只有联社贷审会账号可以审批。")
    st.stop()
note = st.text_input("审批意见 / 退回理由", key="review.note", max_chars=200)
ok, back, _ = st.columns([1, 1, 3])
for button, act, key in ((ok, "approve", "review.approve"), (back, "return", "review.return")):
    if button.button("审批通过" if act == "approve" else "退回", type="primary" if act == "approve" else "secondary",
                     key=key, width="stretch"):
        try:
            entry = (sw.approve_decision(picked, note=note) if act == "approve"
                     else sw.return_decision(picked, note=note))
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            st.session_state[REVIEW_HELD] = [d for d in st.session_state[REVIEW_HELD] if d != picked]
            st.toast(markdown(f"{'已审批通过' if act == 'approve' else '已退回'}：{entry['hh_id']}"))
            st.rerun()
