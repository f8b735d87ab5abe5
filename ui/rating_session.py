"""The 评定会 section of the 集中授信 page: date, place, panel, per-household votes, save; the workbook.

Every rule is :mod:`grids.sessions`'s; this only draws widgets and passes what they hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import streamlit as st

from grids import credit_rules, scorecard, sessions
from grids.errors import GridsError
from grids.model import GUARANTEES, PANEL_ROLES, VOTE_CHOICES
from grids.scope import ScopedWorkspace
from grids.session_workbook import read_session_workbook, session_template_bytes
from grids.text import markdown
from ui import data
from ui.state import SESSION_RESULT

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _suggestions(sw: ScopedWorkspace, table: pd.DataFrame) -> pd.DataFrame:
    rules = credit_rules.effective_rules(sw.ws, sw.account.branch_id)
    products = dict(zip(table["hh_id"].astype(str), table["product"], strict=True))
    return scorecard.village_suggestions(sw.ws, list(products), products, rules=rules, unmask=data.unmasked())


def _record(save: Callable[..., sessions.SessionResult], **kw: object) -> None:
    try:
        result = save(**kw)
    except GridsError as exc:
        st.error(markdown(str(exc)))
    else:
        st.session_state[SESSION_RESULT] = result.summary()
        data.drop_editor_table("session")
        data.drop_editor_table("rating")
        st.rerun()


def render(sw: ScopedWorkspace, households: pd.DataFrame, village: str, village_name: str, rev: int) -> None:
    """Draw the session section for ``village`` (its rating list from ``households``)."""
    st.subheader("评定会（资信等级评定小组集体表决）")
    st.caption("评定小组 5–7 人：至少一名村组干部、一名村民代表，以及信用社主任和客户经理。到会成员对每户表决"
               "同意/反对/弃权，同意超过到会人数一半才通过（持平不通过，退回重评）。网点审批权限以内的当场授信，"
               "超过的连同会议纪要上报联社贷审会。“建议”列来自评分卡（最近一次农户信息采集），由评定小组决定。")
    held = st.session_state.get(SESSION_RESULT)
    if held:
        st.success(markdown(held))
    a, b = st.columns([1, 2])
    held_on = a.date_input("评定会日期", value=dt.date.today(), max_value=dt.date.today(), key="session.held_on")
    place = b.text_input("地点", value=f"{village_name}村委会", key="session.place", max_chars=60)
    panel = st.data_editor(
        sessions.empty_panel(), key=f"session.panel.{village}", num_rows="dynamic", hide_index=True,
        width="stretch", column_config={
            "name": st.column_config.TextColumn("姓名", max_chars=20),
            "role": st.column_config.SelectboxColumn("身份", options=list(PANEL_ROLES)),
            "present": st.column_config.CheckboxColumn("到会")})
    members = sessions.present_members(panel)
    table, seen, key = data.editor_table(
        "session", (village, tuple(members), data.unmasked()),
        lambda: _build(sw, households, village, members), rev=rev)
    edited = st.data_editor(
        table, key=key, hide_index=True, height=360, width="stretch", placeholder="—",
        disabled=[c for c in table.columns if c not in ("grade", "amount", "guarantee", *members)],
        column_config={
            "hh_id": "户号", "head_name": "户主", "segment": "客户类型", "product": "产品",
            "suggested_grade": "建议等级",
            "suggested_amount": st.column_config.NumberColumn("建议金额（元）", format="%d"),
            "points": st.column_config.NumberColumn("评分", format="%d"), "reasons": "评分依据",
            "grade": st.column_config.TextColumn("等级"),
            "amount": st.column_config.NumberColumn("金额（元）", min_value=0, step=1000, format="%d"),
            "guarantee": st.column_config.SelectboxColumn("担保方式", options=list(GUARANTEES)),
            **{m: st.column_config.SelectboxColumn(m, options=list(VOTE_CHOICES)) for m in members}})
    c1, c2, c3 = st.columns([1, 1, 1])
    if c1.button("保存评定会", type="primary", key="session.save", width="stretch"):
        _record(sw.record_session_from_table, village_code=village, held_on=held_on, place=place, panel=panel,
                shown=table, edited=edited, members=members, seen=seen)
    c2.download_button("下载评定表模板（Excel）", session_template_bytes(
        table, village_code=village, village_name=village_name,
        panel=panel[panel["name"].astype(str).str.strip() != ""] if len(panel) else None, held_on=held_on,
        place=place), f"评定表_{village_name}.xlsx", XLSX, key="session.template", width="stretch")
    upload = c3.file_uploader("上传填好的评定表", type=["xlsx"], key="session.upload", label_visibility="collapsed")
    if upload is not None and st.button("按上传的评定表记录评定会", key="session.upload_save"):
        try:
            book = read_session_workbook(upload.getvalue())
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            _record(sw.record_rating_session, village_code=book.village_code, held_on=book.held_on, place=book.place, panel=book.panel,
                    decisions=book.decisions, minutes=book.minutes)


def _build(sw: ScopedWorkspace, households: pd.DataFrame, village: str, members: list[str]) -> pd.DataFrame:
    """The vote table with each household's version (what the panel saw)."""
    listed = data.rating_table(sw, households, village, unmask=False)
    table = sessions.vote_table(listed, members, _suggestions(sw, listed))
    versions = dict(zip(listed["hh_id"].astype(str), listed["version"], strict=True))
    return table.assign(version=[versions.get(str(h), 0) for h in table["hh_id"]])
