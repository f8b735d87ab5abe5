"""走访工作台 — a customer manager's grids, who is left to visit (nearest first; households known only by
village listed under their village), recording a visit or a survey (农户信息采集), progress.

Laid out for a phone: one column of short blocks (Streamlit stacks columns on narrow screens).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from grids import display as fmt
from grids import maps as gmaps
from grids import workbench
from grids.errors import GridsError
from grids.model import (
    ENTITY_TYPES,
    GUARANTEE_OPTIONS,
    HOUSING_KINDS,
    INCOME_SOURCES,
    POST_LEVELS,
    PRODUCTS,
    SURVEY_OUTCOMES,
    VISIT_OUTCOMES,
)
from grids.text import markdown
from ui import auth, data
from ui.maps import show_cached_map
from ui.state import (
    BASEMAP,
    WORKBENCH_LAST,
    WORKBENCH_SEEN,
    WORKBENCH_START,
    WORKBENCH_SURVEY_OPEN,
    WORKBENCH_SURVEY_SEEN,
    RerunGuard,
)

target, rev = data.current()
account = auth.current_account()
sw = data.scope_or_stop(target, rev, account)
basemap = st.session_state[BASEMAP]
guard = RerunGuard("workbench")  # a map click reruns the page once, never in a loop

st.title("走访工作台")
staff_id = account.staff_id
if staff_id is None:  # admins look at one customer manager's workbench
    people = sw.staff()
    people = people[people["role"] == "客户经理"] if "role" in people else people
    if people.empty:
        st.info("没有客户经理。")
        st.stop()
    names = dict(zip(people["staff_id"], people["name"], strict=True))
    staff_id = st.selectbox("客户经理", list(names), format_func=lambda s: f"{names[s]}（{s}）",
                            key="workbench.staff")

mode = st.radio("起点", ["网点", "地图上点选"], horizontal=True, key="workbench.start_mode",
                help="待走访农户按离起点的直线距离由近到远排列")
start = st.session_state[WORKBENCH_START] if mode == "地图上点选" else None
wb = data.cached_workbench(sw, target=target, rev=rev, staff_id=staff_id, start=start)
seen = st.session_state[WORKBENCH_SEEN]  # household versions as the last run showed them
st.session_state[WORKBENCH_SEEN] = workbench.versions_of(wb.todo)

if st.session_state[WORKBENCH_LAST]:
    st.success(markdown(st.session_state[WORKBENCH_LAST]))
    st.session_state[WORKBENCH_LAST] = None

s = wb.summary
with st.container(horizontal=True, gap="small"):  # stays one row on a phone (columns would stack)
    st.metric("我的农户", fmt.count(s.get("registered")), delta=f"{len(wb.grids)} 个网格", delta_color="off",
              delta_arrow="off", border=True, width="stretch")
    st.metric("建档率", fmt.pct(s.get("coverage_rate")), delta=f"已建档 {fmt.count(s.get('archived'))}",
              delta_color="off", delta_arrow="off", border=True, width="stretch")
    w = wb.week
    st.metric(f"近 7 天走访（截至 {w['end']:%m-%d}）", f"{w['visits']} / {w['target']:.0f}",
              delta=f"{'落后于定额' if w['behind'] else '已达定额'}；近 30 天 {w['month_visits']} / {w['month_target']:.0f}",
              delta_color=("inverse" if w["behind"] else "normal"), delta_arrow="off", border=True,
              width="stretch", help=f"定额：每个走访日 {w['quota']:.0f} 户（网点主任可调整），每 7 天 5 个走访日；"
                                    + ("统计到今天" if w["live"] else f"统计到工作区的报告日期 {w['end']:%Y-%m-%d}"))

if wb.grids.empty:
    st.info("你名下还没有网格。请联系网点主任分配。")
    st.stop()

admin = data.geo_layer(target, rev, "admin_units")
out = show_cached_map(lambda: data.workbench_map(wb, basemap=basemap, admin_units=admin[admin["level"] == "county"]),
                      cache_key=("workbench", target, rev, account.username, staff_id, wb.start, basemap,
                                 wb.week["visits"]), key="workbench.map", height=340, returned=("last_clicked",))
click = out.get("last_clicked")
if mode == "地图上点选":
    if click and click.get("lat") is not None:
        picked = gmaps.point_from_display(click["lng"], click["lat"], basemap=basemap)
        if picked != st.session_state[WORKBENCH_START] and guard.may_rerun:
            st.session_state[WORKBENCH_START] = picked
            guard.rerun()
    if st.session_state[WORKBENCH_START] is None:
        st.info("在地图上点一下，选择起点。")
st.caption(f"起点：{markdown(wb.start_label)}　黄点为起点，红点为待走访农户"
           + ("，紫框为只知道村的农户户数（标在村委会）" if wb.villages is not None and len(wb.villages) else ""))

st.subheader(f"待走访：{len(wb.todo):,} 户")
located, by_village = workbench.visit_lists(wb)  # the columns a phone shows first: who, how far, how to call
st.dataframe(located, hide_index=True, height=260, width="stretch")
if by_village:
    st.markdown(f"**只知道村、没有坐标的农户：{sum(len(t) for *_, t in by_village):,} 户**（按村列出，不按距离排序）")
    for _, label, rows in by_village:
        with st.expander(markdown(label)):
            st.dataframe(rows, hide_index=True, width="stretch")

st.subheader("记录走访")
if wb.todo.empty:
    st.success("你的农户都已建档。")
else:
    ids = wb.todo["hh_id"].astype(str).tolist()
    choices = dict(zip(ids, (f"{h} {n or ''} {'' if pd.isna(d) else f'{d:.1f} 公里'}" for h, n, d in
                           zip(ids, wb.todo.get("head_name", [""] * len(ids)), wb.todo["distance_km"], strict=True)),
                       strict=True))
    for village, _, rows in by_village:  # known only by village: named by their village, not by a distance
        choices.update({h: f"{h} {n or ''} {village}" for h, n in
                      zip(rows["户号"].astype(str), rows.get("户主", [""] * len(rows)), strict=True)})
    # households shown last run stay choosable: a form sent for one that changed meanwhile is judged (and
    # refused) by the library, never redirected to another household by a reset select box
    ids += [h for h in seen if h not in choices]
    with st.form("workbench.visit_form", clear_on_submit=True):
        hh_id = st.selectbox("农户（离起点最近的在前）", ids, format_func=lambda h: choices.get(h, f"{h}（已变化）"),
                             key="workbench.visit_hh")
        outcome = st.selectbox("走访结果", VISIT_OUTCOMES)
        day = st.date_input("走访日期", value=dt.date.today(), max_value=dt.date.today())
        note = st.text_input("备注", max_chars=200)
        submitted = st.form_submit_button("记录走访", type="primary", width="stretch")
    if submitted and hh_id is not None:  # never None: the list is not empty
        try:
            sw.record_visit(hh_id, visited_on=day, outcome=outcome, note=note, seen_version=seen.get(hh_id, -1))
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            st.session_state[WORKBENCH_LAST] = f"已记录：{hh_id} {outcome}（{day:%Y-%m-%d}）"
            st.rerun()

st.subheader("农户信息采集")
def survey_form() -> None:
    """The survey form; built only while its section is open (29 fields: a rerun of the page skips them)."""
    # one column of fields (a phone first); the library checks every value and says what to fix
    survey_seen = st.session_state[WORKBENCH_SURVEY_SEEN]  # survey versions as the last run showed them
    st.session_state[WORKBENCH_SURVEY_SEEN] = sw.survey_versions()
    mine = wb.households["hh_id"].astype(str).tolist()
    first = wb.todo["hh_id"].astype(str).tolist()
    choices = first + [h for h in mine if h not in set(first)]
    names = dict(zip(wb.households["hh_id"].astype(str), wb.households.get("head_name", [""] * len(mine)), strict=True))
    if not choices:
        st.caption("没有可采集的农户。")
    else:
        def num(label: str, *, step: float = 1.0, fmt_: str = "%d", key: str) -> float | None:
            return st.number_input(label, min_value=0.0 if fmt_ != "%d" else 0, step=step if fmt_ != "%d" else 1,
                                   value=None, format=fmt_, key=f"workbench.survey.{key}")

        with st.form("workbench.survey_form"):  # kept on a refusal, so the fix is one field, not the whole form
            hh = st.selectbox("采集农户（待走访的在前）", choices, key="workbench.survey_hh",
                              format_func=lambda h: f"{h} {names.get(h) or ''}")
            outcome = st.selectbox("采集结果", SURVEY_OUTCOMES, key="workbench.survey.outcome")
            day = st.date_input("采集日期", value=dt.date.today(), max_value=dt.date.today(),
                                key="workbench.survey.day")
            reason = st.text_input("不符合条件的原因", max_chars=200, key="workbench.survey.reason")
            st.markdown("**家庭与生产**")
            entity = st.selectbox("主体类型", ENTITY_TYPES, index=None, placeholder="请选择",
                                  key="workbench.survey.entity_type")
            fields = {
                "members": num("家庭人口", key="members"), "labour": num("劳动力", key="labour"),
                "farmland_mu": num("耕地（亩）", step=1.0, fmt_="%.1f", key="farmland"),
                "grassland_mu": num("草场（亩）", step=10.0, fmt_="%.1f", key="grassland"),
                "cattle": num("牛（头）", key="cattle"), "sheep": num("羊（只）", key="sheep"),
                "pigs": num("猪（头）", key="pigs"), "other_livestock": num("其他牲畜（头/只）", key="other"),
                "machinery": st.text_input("农机具", max_chars=200, key="workbench.survey.machinery"),
                "machinery_value": num("农机具价值（元）", step=1000.0, fmt_="%.0f", key="machinery_value"),
                "housing": st.selectbox("住房", HOUSING_KINDS, index=None, placeholder="请选择",
                                        key="workbench.survey.housing"),
                "housing_area": num("住房面积（平方米）", step=10.0, fmt_="%.0f", key="housing_area"),
            }
            st.markdown("**收入与负债**（个人信息，默认脱敏）")
            fields |= {
                "income_source": st.selectbox("主要收入来源", INCOME_SOURCES, index=None, placeholder="请选择",
                                              key="workbench.survey.income_source"),
                "annual_income": num("家庭年收入（元）", step=1000.0, fmt_="%.0f", key="income"),
                "liabilities": num("负债合计（元）", step=1000.0, fmt_="%.0f", key="liabilities"),
                "liabilities_other_banks": num("其中他行负债（元）", step=1000.0, fmt_="%.0f", key="other_banks"),
            }
            st.markdown("**用信需求与担保**")
            fields |= {
                "need_amount": num("用信需求金额（元）", step=10000.0, fmt_="%.0f", key="need_amount"),
                "need_purpose": st.text_input("需求用途", max_chars=200, key="workbench.survey.need_purpose"),
                "need_product": st.selectbox("意向产品", PRODUCTS, index=None, placeholder="请选择",
                                             key="workbench.survey.need_product"),
                "post_level": st.selectbox("职务级别（公职人员）", POST_LEVELS, index=None, placeholder="公职人员填写",
                                           key="workbench.survey.post_level"),
                "salary_via_rcc": st.selectbox("工资由农信社代发（公职人员）", ["是", "否"], index=None,
                                               placeholder="公职人员填写", key="workbench.survey.payroll"),
                "guarantee_options": "、".join(st.multiselect("可提供担保", GUARANTEE_OPTIONS,
                                                              key="workbench.survey.guarantee")),
                "credit_consent": st.selectbox("同意查询征信", ["是", "否"], index=None, placeholder="请选择",
                                               key="workbench.survey.consent"),
            }
            note = st.text_area("备注（补充资料时写明还缺什么）", max_chars=1000, key="workbench.survey.note")
            saved = st.form_submit_button("保存采集", type="primary", width="stretch")
        if saved:
            record = {**fields, "outcome": outcome, "surveyed_at": day, "reason": reason, "entity_type": entity,
                      "note": note}
            try:
                sid = sw.record_survey(hh, record, seen_version=survey_seen.get(hh, 0))
            except GridsError as exc:
                st.error(markdown(str(exc)))
            else:
                st.session_state[WORKBENCH_LAST] = f"已保存采集：{hh} {outcome}（{sid}）"
                for key in [k for k in st.session_state if str(k).startswith("workbench.survey.")]:
                    del st.session_state[key]  # an empty form for the next household
                st.rerun()


with st.expander("填写采集表", key=WORKBENCH_SURVEY_OPEN, on_change="rerun") as survey_box:
    if survey_box.open:
        survey_form()

st.subheader("每周走访")
if len(wb.weekly):
    st.bar_chart(wb.weekly.tail(12).set_index("week")["visits"].rename("走访户次"), height=220)
else:
    st.caption("还没有走访记录。")
