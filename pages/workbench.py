"""走访工作台 — a customer manager's grids, who is left to visit (nearest first; households known only by
village listed under their village), recording a visit, progress.

Laid out for a phone: one column of short blocks (Streamlit stacks columns on narrow screens).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from grids import maps as gmaps
from grids.errors import GridsError
from grids.model import VISIT_OUTCOMES
from grids.text import markdown
from ui import auth, data, fmt
from ui.maps import show_cached_map
from ui.state import BASEMAP, WORKBENCH_LAST, WORKBENCH_SEEN, WORKBENCH_START, RerunGuard

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
st.session_state[WORKBENCH_SEEN] = data.versions_of(wb.todo)

if st.session_state[WORKBENCH_LAST]:
    st.success(markdown(st.session_state[WORKBENCH_LAST]))
    st.session_state[WORKBENCH_LAST] = None

s = wb.summary
with st.container(horizontal=True, gap="small"):  # stays one row on a phone (columns would stack)
    st.metric("我的农户", fmt.count(s.get("registered")), delta=f"{len(wb.grids)} 个网格", delta_color="off",
              delta_arrow="off", border=True, width="stretch")
    st.metric("建档率", fmt.pct(s.get("coverage_rate")), delta=f"已建档 {fmt.count(s.get('archived'))}",
              delta_color="off", delta_arrow="off", border=True, width="stretch")
    st.metric("本周走访", f"{wb.week['visits']} / {wb.week['target']:.0f}",
              delta=("落后于定额" if wb.week["behind"] else "已达定额"),
              delta_color=("inverse" if wb.week["behind"] else "normal"), delta_arrow="off", border=True,
              width="stretch", help=f"定额：每个走访日 {data.QUOTA_PER_DAY} 户，每周 {data.DAYS_PER_WEEK} 天")

if wb.grids.empty:
    st.info("你名下还没有网格。请联系网点主任分配。")
    st.stop()

admin = data.layer(target, rev, "admin_units")
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
located, by_village = data.visit_lists(wb)  # the columns a phone shows first: who, how far, how to call
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
    label = dict(zip(ids, (f"{h} {n or ''} {'' if pd.isna(d) else f'{d:.1f} 公里'}" for h, n, d in
                           zip(ids, wb.todo.get("head_name", [""] * len(ids)), wb.todo["distance_km"], strict=True)),
                     strict=True))
    for village, _, rows in by_village:  # known only by village: named by their village, not by a distance
        label.update({h: f"{h} {n or ''} {village}" for h, n in
                      zip(rows["户号"].astype(str), rows.get("户主", [""] * len(rows)), strict=True)})
    # households shown last run stay choosable: a form sent for one that changed meanwhile is judged (and
    # refused) by the library, never redirected to another household by a reset select box
    ids += [h for h in seen if h not in label]
    with st.form("workbench.visit_form", clear_on_submit=True):
        hh_id = st.selectbox("农户（离起点最近的在前）", ids, format_func=lambda h: label.get(h, f"{h}（已变化）"),
                             key="workbench.visit_hh")
        outcome = st.selectbox("走访结果", VISIT_OUTCOMES)
        day = st.date_input("走访日期", value=dt.date.today(), max_value=dt.date.today())
        note = st.text_input("备注", max_chars=200)
        submitted = st.form_submit_button("记录走访", type="primary", width="stretch")
    if submitted:
        try:
            sw.record_visit(hh_id, visited_on=day, outcome=outcome, note=note, seen_version=seen.get(hh_id, -1))
        except GridsError as exc:
            st.error(markdown(str(exc)))
        else:
            st.session_state[WORKBENCH_LAST] = f"已记录：{hh_id} {outcome}（{day:%Y-%m-%d}）"
            st.rerun()

st.subheader("每周走访")
if len(wb.weekly):
    st.bar_chart(wb.weekly.tail(12).set_index("week")["visits"].rename("走访户次"), height=220)
else:
    st.caption("还没有走访记录。")
