"""覆盖总览 — the coverage map: grids by coverage rate, uncovered households, funnel.

Leadership, planners and admins see the county; a branch manager sees their branch only (ui.data.overview_for
reads through the account's scoped workspace).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from grids import coverage
from grids import display as fmt
from grids.text import markdown
from ui import auth, data
from ui.maps import clicked_area, show_cached_map
from ui.state import BASEMAP, OVERVIEW_SELECTED

target, rev = data.current()
account = auth.current_account()
ov = data.overview_for(target, rev, account)
labels = coverage.FUNNEL_LABELS
basemap = st.session_state.get(BASEMAP) or "offline"

if account.can("read_all"):
    st.title("覆盖总览")
else:
    branch = ov.branches[ov.branches["branch_id"] == account.branch_id]
    st.title("覆盖总览 · " + (markdown(branch["name"].iloc[0]) if len(branch) else "我的网格"))
st.caption(("网格方案：" + markdown(ov.plan_name)) if ov.plan_name else "尚无网格方案")
for note in ov.notes:
    st.info(markdown(note))

s = ov.summary
cards = st.columns(6)
rates = {"archived": "coverage_rate", "granted": "granted_rate", "signed": "signed_rate", "using": "using_rate"}
for col, (key, label) in zip(cards, fmt.FUNNEL_STAGES, strict=True):
    rate = rates.get(key)
    col.metric(label, fmt.count(s.get(key)), delta=(fmt.pct(s.get(rate)) if rate in s else None),
               delta_color="off", delta_arrow="off", border=True)
if "granted_amount" in s:
    st.caption(f"授信总额 {fmt.yi(s['granted_amount'])}　签约可用信 {fmt.yi(s['available_amount'])}　"
               f"用信余额 {fmt.yi(s['balance'])}")


def area_panel(area_id: str | None) -> None:
    """Figures of the clicked area and its uncovered households."""
    if not area_id or area_id not in set(ov.areas[ov.id_column]):
        st.info(f"点击地图上的{ov.area_label}，查看它的数字和未覆盖农户。")
        return
    area = ov.areas.set_index(ov.id_column).loc[area_id]
    st.subheader(markdown(area["name"]))
    staff = area.get("staff_id")
    if isinstance(staff, str) and staff not in ("", "—"):
        st.caption(f"客户经理：{markdown(ov.staff_names.get(staff, staff))}")
    elif ov.id_column == "grid_id":
        st.error("该网格无人负责")
    row = ov.by_area.loc[area_id] if area_id in ov.by_area.index else pd.Series(dtype=object)
    a, b = st.columns(2)
    a.metric("户数", fmt.count(row.get("registered", area.get("households"))))
    b.metric("建档率", fmt.pct(row.get("coverage_rate", area.get("coverage_rate"))))
    if "granted" in row:
        a.metric("授信户数", fmt.count(row["granted"]))
        b.metric("用信户数", fmt.count(row["using"]))
    key = "grid_id" if ov.id_column == "grid_id" else "village_code"
    left = ov.uncovered[ov.uncovered[key] == area_id] if key in ov.uncovered.columns else ov.uncovered.iloc[:0]
    st.markdown(f"**未覆盖农户：{len(left):,} 户**")
    if len(left):
        cols = [c for c in ("hh_id", "reason") if c in left.columns]
        st.dataframe(pd.DataFrame(left[cols]).rename(columns={"hh_id": "户号", "reason": "原因"}),
                     hide_index=True, height=240)


@st.fragment
def map_and_panel() -> None:
    """The map and the side panel; a click reruns only this fragment."""
    left, right = st.columns([3, 1.25])
    with left:
        out = show_cached_map(lambda: data.account_overview_map(target, rev, basemap, account),
                              cache_key=(target, rev, basemap, data.scope_key(account)), key="overview.map_widget")
    picked = clicked_area(out, ov.areas, basemap=basemap, id_column=ov.id_column)
    if picked:
        st.session_state[OVERVIEW_SELECTED] = picked
    with right:
        area_panel(st.session_state[OVERVIEW_SELECTED])


map_and_panel()

@st.fragment
def tables() -> None:
    """Funnel chart, table by town, weekly visits: only the open tab runs and is sent (the map paints first)."""
    funnel_tab, town_tab, week_tab, staff_tab, report_tab = st.tabs(
        ["授信漏斗", "分镇统计", "每周走访", "客户经理进度", "月度报告"], key="overview.tab", on_change="rerun")
    if funnel_tab.open:
        with funnel_tab:
            stages = pd.DataFrame({"阶段": [label for _, label in fmt.FUNNEL_STAGES],
                                   "户数": [s.get(k, 0) for k, _ in fmt.FUNNEL_STAGES]})
            st.bar_chart(stages, x="阶段", y="户数", horizontal=True, sort=False, height=260)
    if town_tab.open:
        with town_tab:
            if len(ov.by_town):
                table = fmt.funnel_display(ov.by_town, labels)
                st.dataframe(table, height=360)
                st.download_button("下载分镇统计（CSV）", data.table_csv(table, index=True), "分镇统计.csv",
                                   "text/csv")
            else:
                st.info("还没有分镇统计：工作区里没有农户。")
    if week_tab.open:
        with week_tab:
            if ov.weekly is not None and len(ov.weekly):
                weekly = ov.weekly.groupby("week")["visits"].sum().rename("走访户次")
                st.line_chart(weekly, height=260)
            else:
                st.info("工作区还没有走访记录。")


    if staff_tab.open:
        with staff_tab:
            staff_progress()
            weekly_trend()
    if report_tab.open:
        with report_tab:
            monthly_reports()


def staff_progress() -> None:
    """Each customer manager's visits in the 7 or 30 days to the as-of date against their quota."""
    days = st.segmented_control("统计期", [7, 30], default=7, format_func=lambda d: f"近 {d} 天",
                                key="overview.progress_days") or 7
    table = data.progress_table(target, rev, account, days=days)
    if table.empty:
        st.info("没有客户经理或还没有网格方案。")
        return
    behind = int((table["status"] == "落后").sum())
    end = table["end"].iloc[0]
    st.caption(f"{table['start'].iloc[0]:%Y-%m-%d} 至 {end:%Y-%m-%d}：达标 {len(table) - behind} 人，落后 {behind} 人"
               "（目标 = 每个走访日定额 × 每 7 天 5 个走访日）")
    shown = table.assign(rate=(table["rate"] * 100).round(0), branch=table["branch_id"].map(
        dict(zip(ov.branches["branch_id"], ov.branches["name"], strict=False))).fillna(table["branch_id"]))
    st.dataframe(shown[["name", "staff_id", "branch", "visits", "visit_days", "quota_per_day", "target", "rate",
                        "status"]].rename(columns={
        "name": "客户经理", "staff_id": "编号", "branch": "网点", "visits": "走访户次", "visit_days": "走访天数",
        "quota_per_day": "每日定额", "target": "目标", "rate": "完成率（%）", "status": "状态"}),
        hide_index=True, height=360)


def weekly_trend() -> None:
    """Visits per week of each branch or customer manager, the last 12 weeks to the as-of date."""
    by = st.segmented_control("走访趋势", ["branch", "staff"], default="branch", key="overview.trend_by",
                              format_func={"branch": "按网点", "staff": "按客户经理"}.__getitem__) or "branch"
    trend = data.weekly_trend(target, rev, account, by=by)
    if trend.empty:
        st.info("没有走访记录或还没有网格方案。")
        return
    st.caption("近 12 周每周走访户次（按 ISO 周）")
    if by == "branch" or trend.shape[1] <= 12:
        st.line_chart(trend, height=300)
    st.dataframe(trend.T.rename_axis("网点" if by == "branch" else "客户经理"), height=300)


def monthly_reports() -> None:
    """The monthly report (PDF/xlsx) of a month, kept in the workspace, and the reports issued before."""
    if not (account.can("read_all") or account.can("read_branch")):
        st.info("月度报告只对联社领导、管理员、规划人员和网点主任开放。")
        return
    from grids import monthly, progress
    from grids.errors import GridsError

    ws = data.open_workspace(target)
    end = progress.as_of_date(ws.meta)
    months = [f"{p.year:04d}-{p.month:02d}" for p in pd.period_range(end=end, periods=24, freq="M")][::-1]
    month = st.selectbox("报告月份", months, key="overview.report_month")
    a, b = st.columns(2)
    fmt_ = "pdf" if a.button("生成月度报告（PDF）") else "xlsx" if b.button("生成月度报告（Excel）") else None
    if fmt_:
        try:
            with st.spinner("正在生成月度报告…"):
                st.session_state["overview.report"] = monthly.issue(ws, month=month, fmt=fmt_, account=account)
        except GridsError as exc:
            st.error(markdown(str(exc)))
    issued = st.session_state.get("overview.report")
    if issued is not None:
        st.download_button(f"下载月度报告（{issued.month}，{'PDF' if issued.filename.endswith('pdf') else 'Excel'}）",
                           issued.data, issued.filename, issued.mime, key="overview.report_download")
    kept = monthly.list_reports(ws, account)
    if not len(kept):
        st.caption("还没有生成过月度报告。")
        return
    when = pd.to_datetime(kept["created_at"], utc=True).dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M")
    st.dataframe(pd.DataFrame({"月份": kept["month"], "格式": kept["format"].str.upper(), "生成时间（北京时间）": when,
                               "生成人": kept["created_by"], "大小（KB）": (kept["size"] / 1024).round(0)}),
                 hide_index=True, height=220)
    labels = dict(zip(kept["report_id"], kept["month"] + " " + kept["format"].str.upper() + " " + when, strict=True))
    pick = st.selectbox("重新下载", list(labels), format_func=labels.__getitem__, key="overview.report_pick")
    if pick is not None:  # never None: the list is not empty
        again = monthly.report_file(ws, account, pick)
        st.download_button("下载所选报告", again.data, again.filename, again.mime, key="overview.report_again")


tables()
