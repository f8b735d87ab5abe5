"""集中授信 — one village's rating sitting: grades and limits for many households at once, checked against
the product rules (grids.credit_rules: entity type, band, 职务级别, guarantee; the branch's own rules where the
administrator set them), saved (audited); the 评定会 (panel of 5–7, votes, escalation above the branch's authority:
rules in grids/sessions.py), and the village's whitelist exported."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import streamlit as st

from grids import credit, credit_rules, products, ratings, sessions
from grids.errors import GridsError
from grids.model import GUARANTEES, JOB_LEVELS, PANEL_ROLES, VOTE_CHOICES
from grids.scope import ScopedWorkspace
from grids.session_workbook import read_session_workbook, session_template_bytes
from grids.text import markdown
from ui import auth, data
from ui.state import RATING_CHECK, RATING_FILES, RATING_VILLAGE, SESSION_RESULT

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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


def session_section(sw: ScopedWorkspace, households: pd.DataFrame, village: str, village_name: str, rev: int) -> None:
    """评定会 (rules: :mod:`grids.sessions`): date, place, panel, per-household votes, save; the workbook."""
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
        lambda: ratings.session_table(sw, households, village, members, unmask=data.unmasked()), rev=rev)
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



target, rev = data.current()
account = auth.current_account()
sw = data.scope_or_stop(target, rev, account)

st.title("集中授信")
if not account.can("rate"):
    st.info("你的角色不能评级。")
    st.stop()
hh = data.households(sw, purpose="集中授信")
admin = data.layer(target, rev, "admin_units", ("code", "name", "level"))
vill = ratings.villages(hh, admin)
vill = vill[vill["archived"] > 0]
if vill.empty:
    st.info("你的范围内还没有已建档的农户。")
    st.stop()
vname = dict(zip(vill["code"], vill["name"], strict=True))
names = {c: f"{vname[c]}（已建档 {n} 户）" for c, n in zip(vill["code"], vill["archived"], strict=True)}
if st.session_state[RATING_VILLAGE] not in names:
    st.session_state[RATING_VILLAGE] = vill["code"].iloc[0]
village = st.selectbox("村/嘎查/社区", list(names), format_func=names.__getitem__, key=RATING_VILLAGE)
if village is None:  # never: the list is not empty
    st.stop()

table, seen, editor_key = data.editor_table(
    "rating", (village, data.unmasked()), lambda: ratings.rating_table(sw, hh, village, unmask=data.unmasked()),
    rev=rev)
grades = list(dict.fromkeys(g for p in products.load_catalogue() for g in products.grades(p)))
st.caption(f"直接评级：{len(table)} 户已建档农户。" + ("管理员可在此更正等级与额度（记入审计）；" if account.role == "admin" else
           "这里只能调低或取消授信、修改等级和担保方式；新增或调高授信须经下方评定会表决。")
           + "额度 0 表示不授信；“可选等级”是该户客户类型能评的等级；福薪卡按职务级别核定。只有改动过的行会被保存。")
with st.expander("产品规则" + (f"（网点 {account.branch_id}）" if account.branch_id else "（联社默认）")):
    rules = credit_rules.rules_summary(credit_rules.effective_rules(sw.ws, account.branch_id))
    st.dataframe(rules.rename(columns=credit_rules.RULES_HEADERS), hide_index=True, width="stretch")
edited = st.data_editor(
    table, key=editor_key, hide_index=True, height=420, width="stretch",
    disabled=[c for c in table.columns if c not in ratings.RATING_EDITABLE],
    column_order=["hh_id", "head_name", "product", "grade", "granted_amount", "guarantee", "job_level", "grades",
                  "segment", "id_no", "phone"], placeholder="—",
    column_config={
        "hh_id": "户号", "head_name": "户主", "id_no": "身份证号", "phone": "电话", "segment": "客户类型",
        "product": "产品", "grades": "可选等级",
        "grade": st.column_config.SelectboxColumn("等级", options=grades),
        "granted_amount": st.column_config.NumberColumn("授信额度（元）", min_value=0, step=1000, format="%d"),
        "guarantee": st.column_config.SelectboxColumn("担保方式", options=list(GUARANTEES)),
        "job_level": st.column_config.SelectboxColumn("职务级别", options=list(JOB_LEVELS)),
    },
)
changes = ratings.ratings_from_intents(ratings.table_intents(table, edited, id_column="hh_id",
                                                             blank_equal=("grade", "guarantee", "job_level")), table)
check_col, save_col, _ = st.columns([1, 1, 3])
if check_col.button("校验", width="stretch"):
    st.session_state[RATING_CHECK] = (village, len(changes), ratings.check_ratings(sw, changes))
if save_col.button("保存", type="primary", width="stretch", disabled=changes.empty, key="rating.save"):
    try:
        n = ratings.save_ratings(sw, changes, seen=seen)
    except GridsError as exc:
        st.error(markdown(str(exc)))
    else:
        data.drop_editor_table("rating")
        st.session_state[RATING_CHECK] = None
        st.toast(f"已保存 {n} 户的评级")
        st.rerun()
st.caption(f"已改动 {len(changes)} 户")
held = st.session_state[RATING_CHECK]
if held is not None and held[0] == village:
    _, n, problems = held
    if n == 0:
        st.info("还没有改动：在表格里填写等级、额度和担保方式后再校验。")
    elif len(problems):
        st.error(f"{len(problems)} 处问题（改动的 {n} 户中），保存前请修正：")
        st.dataframe(problems.rename(columns={"row": "行", "hh_id": "户号", "column": "列", "problem": "问题",
                                              "fix": "修正方法"}), hide_index=True, width="stretch")
    else:
        st.success(f"校验通过：改动的 {n} 户都符合产品规则。")

session_section(sw, hh, village, vname[village], rev)

st.subheader("白名单")
white = credit.whitelist(hh, village, unmask=data.unmasked())
st.caption(f"已授信 {len(white)} 户，授信总额 {white['granted_amount'].sum() / 1e4:,.1f} 万元")
st.dataframe(white.rename(columns=credit.WHITELIST_HEADERS), hide_index=True, height=260, width="stretch")
name = vname[village]
x, c, _ = st.columns([1, 1, 3])
x.download_button("下载白名单（Excel）", sw.whitelist_file(village, fmt="xlsx"), f"白名单_{name}.xlsx",
                  XLSX, key="rating.xlsx")
c.download_button("下载白名单（CSV）", sw.whitelist_file(village, fmt="csv"), f"白名单_{name}.csv", "text/csv",
                  key="rating.csv")
if data.unmasked():  # full ID numbers: a file exists only after this click, audited before it is made
    # a made file is offered on the next run only, then forgotten: Streamlit drops its /media copy a run later
    files = {k: v for k, v in st.session_state[RATING_FILES].items() if k[1] == rev}
    made = {fmt: files.pop((village, rev, fmt), None) for fmt in ("xlsx", "csv")}
    st.session_state[RATING_FILES] = files
    st.caption("上面的下载为脱敏版本。含明文身份证号和电话的白名单只在点击后生成并记入审计，"
               "生成后只提供这一次下载；再次需要时重新生成（再次记入审计）。")
    y, z, _ = st.columns([1, 1, 3])
    for col, fmt, label in ((y, "xlsx", "Excel"), (z, "csv", "CSV")):
        if made[fmt] is not None:
            col.download_button(f"下载明文白名单（{label}）", made[fmt], f"白名单_{name}_明文.{fmt}",
                                key=f"rating.unmasked_{fmt}", type="primary")
        elif col.button(f"生成含明文身份证号的白名单（{label}）", key=f"rating.make_unmasked_{fmt}"):
            try:
                files[(village, rev, fmt)] = data.whitelist_file(sw, village, fmt=fmt)
            except GridsError as exc:
                st.error(str(exc))
            else:
                st.rerun()
