"""The monthly report (月度报告) for the 党委/理事会 meeting: PDF and xlsx, kept in the workspace.

:func:`monthly_report` gathers the figures of one month through the account's
:class:`~grids.scope.ScopedWorkspace` (leadership, administrators and planners: the county; a branch manager:
their branch; customer managers: refused):

- the credit funnel at the month's end and its change from the previous month's end. Only 建档 carries dates
  (the first 已建档 visit or survey of a household); 授信/签约/用信 are the register's current state;
- tables by branch, customer manager, segment and product (:func:`grids.coverage.funnel`);
- weekly visits and the 建档率 at the end of each of the last :data:`TREND_WEEKS` weeks;
- lagging customer managers (:func:`grids.progress.staff_progress`, the 30 days to the month's end) and
  grids (建档率 below the scope's);
- loan totals (:mod:`grids.loans`): the month's balance, against the previous month, the same month a year
  before and the start of the series; by branch and by product;
- the coverage map: grids shaded by 建档率.

:func:`to_pdf` draws it on A4 pages (CJK font embedded, 第 n 页 / 共 m 页); :func:`to_xlsx` writes the same
tables, one sheet each, every cell through :func:`grids.export.xlsx_cell` (formula-safe). :func:`issue` renders
and keeps a report (table ``reports``, the file base64-encoded so that both backends store it in the same
audited transaction); :func:`list_reports` and :func:`report_file` read them back within the account's scope.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from grids import coverage, loans, progress, text
from grids.errors import PermissionDeniedError, ValidationError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

FORMATS: dict[str, str] = {"pdf": "application/pdf",
                           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
"""Report formats and their MIME types."""
TREND_WEEKS = 12
"""Weeks of the visit and 建档率 trend."""
LAGGING_DAYS = 30
"""Days (to the month's end) over which customer managers' visits are set against their quota."""
REPORTS = "reports"
_ROWS_PER_PAGE = 40
_PDF_FIRST_ROWS = ("落后客户经理", "落后网格")
"""Lists the PDF cuts to their first page (the furthest behind); the xlsx has them in full."""
_A4 = (8.27, 11.69)
_FUNNEL_ROWS = (("registered", "登记户数", "户"), ("archived", "已建档", "户"), ("coverage_rate", "建档率", "%"),
                ("eligible", "符合条件", "户"), ("granted", "授信户数", "户"), ("granted_amount", "授信总额", "万元"),
                ("signed", "签约户数", "户"), ("using", "用信户数", "户"), ("balance", "用信余额", "万元"))
_TABLE_COLUMNS = {"registered": "登记户数", "archived": "已建档", "coverage_rate": "建档率（%）", "granted": "授信户数",
                  "granted_amount": "授信总额（万元）", "signed": "签约户数", "using": "用信户数",
                  "balance": "用信余额（万元）"}


@dataclass
class Report:
    """The figures of one monthly report (see the module docstring); rendered by :func:`to_pdf`/:func:`to_xlsx`.

    Attributes
    ----------
    month : str
        ``YYYY-MM``.
    scope : str
        ``""`` for the county, else the branch id.
    tables : dict
        Sheet/section title → table (Chinese headers), in report order; the xlsx has exactly these sheets.
    """

    month: str
    county_name: str
    scope: str
    scope_label: str
    month_end: pd.Timestamp
    tables: dict[str, pd.DataFrame]
    weekly: pd.DataFrame
    loan_series: pd.Series
    loan_lines: list[str]
    grid_map: gpd.GeoDataFrame
    branches: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)
    created_by: str = ""

    @property
    def title(self) -> str:
        """``巴林左旗 · 全县 2019年9月 网格化金融服务月度报告``."""
        y, m = self.month.split("-")
        return f"{self.county_name} · {self.scope_label} {int(y)}年{int(m)}月 网格化金融服务月度报告"

    def filename(self, fmt: str) -> str:
        """A file name such as ``月度报告_2019-09_全县.pdf``."""
        label = "".join(ch for ch in self.scope_label if ch not in '\\/:*?"<>|')[:30]
        return f"月度报告_{self.month}_{label}.{fmt}"


def _check_account(account: Any) -> None:
    if not (account.can("read_all") or account.can("read_branch")):
        raise PermissionDeniedError(f"{account.role_name}（{account.username}）不能生成月度报告："
                                    "月度报告只对联社领导、管理员、规划人员和网点主任开放")


def check_month(month: Any, *, as_of: pd.Timestamp) -> tuple[str, pd.Timestamp]:
    """``month`` as ``YYYY-MM`` and its last day (not after ``as_of``).

    Raises
    ------
    ValidationError
        Not a month, or a month after the as-of date.

    Examples
    --------
    >>> check_month("2019-09", as_of=pd.Timestamp("2019-09-30"))
    ('2019-09', Timestamp('2019-09-30 00:00:00'))
    """
    text_month = str(month or "").strip()
    parsed = loans.parse_month(text_month) if len(text_month) <= 16 else None
    if parsed is None:
        raise ValidationError(f"月份 “{text.plain(text_month, limit=20)}” 无法识别", fix="写成 YYYY-MM，例如 2019-09")
    start = pd.Timestamp(f"{parsed}-01")
    if start > as_of:
        raise ValidationError(f"月份 {parsed} 在报告日期 {as_of:%Y-%m-%d} 之后",
                              fix=f"选择 {as_of:%Y-%m} 或以前的月份")
    end = min(start + pd.offsets.MonthEnd(0), as_of)
    return parsed, end


def archive_dates(visits: pd.DataFrame, surveys: pd.DataFrame | None = None) -> pd.Series:
    """``hh_id`` → date of the household's first 已建档 record (visit or survey)."""
    parts = []
    if len(visits) and "outcome" in visits:
        v = visits[visits["outcome"] == "已建档"]
        parts.append(pd.DataFrame({"hh_id": v["hh_id"].astype(str),
                                   "on": pd.to_datetime(v["visited_on"], errors="coerce")}))
    if surveys is not None and len(surveys) and "outcome" in surveys:
        s = surveys[surveys["outcome"] == "已建档"]
        on = pd.to_datetime(s["surveyed_at"], errors="coerce", utc=True).dt.tz_convert("Asia/Shanghai")
        parts.append(pd.DataFrame({"hh_id": s["hh_id"].astype(str), "on": on.dt.tz_localize(None).dt.normalize()}))
    if not parts:
        return pd.Series(dtype="datetime64[ns]")
    both = pd.concat(parts, ignore_index=True).dropna()
    return both.groupby("hh_id")["on"].min()


def archived_at(households: pd.DataFrame, first: pd.Series, end: pd.Timestamp) -> pd.Series:
    """Which households were archived at the end of ``end``: archived now, and their first 已建档 record is
    on or before ``end`` (a household archived without a dated record counts as archived before)."""
    on = households["hh_id"].astype(str).map(first)
    now = households["archived"].fillna(False).astype(bool)
    return now & (on.isna() | (on <= end))


def _funnel_at(hh: pd.DataFrame, first: pd.Series, end: pd.Timestamp, *, by: str | None = None,
               located: pd.DataFrame | None = None, names: dict[str, str] | None = None,
               closed: set[str] | None = None) -> pd.DataFrame:
    return coverage.funnel(hh.assign(archived=archived_at(hh, first, end)), by=by, located=located, names=names,
                           closed=closed)


def _display(table: pd.DataFrame, key_label: str) -> pd.DataFrame:
    """A funnel table with Chinese headers: rates in %, amounts in 万元, a 合计 row."""
    sums = table[[c for c in coverage.COUNT_COLUMNS + coverage.AMOUNT_COLUMNS if c in table]].sum()
    total = coverage.with_rates(sums.to_frame().T)
    total.index = ["合计"]
    if "name" in table:
        total.insert(0, "name", "")
    both = pd.concat([table, total])
    out = pd.DataFrame({key_label: [str(k) for k in both.index]})
    if "name" in both:
        out["名称"] = [str(n) if isinstance(n, str) else "" for n in both["name"]]
    for col, label in _TABLE_COLUMNS.items():
        values = both[col].to_numpy(dtype=float)
        if col.endswith("_rate"):
            out[label] = np.round(values * 100, 2)
        elif col in coverage.AMOUNT_COLUMNS:
            out[label] = np.round(values / 1e4, 1)
        else:
            out[label] = values.astype(np.int64)
    return out


def _yi(v: float) -> str:
    return "—" if v is None or pd.isna(v) else f"{v / 1e8:,.2f} 亿元"


def _pct(v: float) -> str:
    return "—" if v is None or pd.isna(v) else f"{v * 100:+.2f}%"


def _loan_tables(loan_rows: pd.DataFrame, month: str, names: dict[str, str]) -> tuple[dict[str, pd.DataFrame],
                                                                                        list[str], pd.Series]:
    if not len(loan_rows):
        return {}, ["工作区没有贷款余额数据（导入：python -m grids import 工作区 loan_totals 文件）"], pd.Series(dtype=float)
    series = loans.totals(loan_rows)["合计"]
    series = series[series.index <= month]
    g = loans.growth(loan_rows, month).iloc[0]
    lines = [
        f"{month} 贷款余额 {_yi(g['balance'])}",
        f"较上月 {_yi(g['mom'])}（{_pct(g['mom_rate'])}）；较去年同月 {_yi(g['yoy'])}（{_pct(g['yoy_rate'])}）",
        f"较序列起点 {g['first_month']}（{_yi(g['first'])}）增长 {_yi(g['since_first'])}（{_pct(g['since_first_rate'])}）",
    ]
    if pd.isna(g["balance"]):
        lines = [f"{month} 没有贷款余额数据（已有 {series.index.min() if len(series) else '—'} 至 "
                 f"{series.index.max() if len(series) else '—'}）"]
    tables = {}
    for by, label in (("branch_id", "网点"), ("product", "产品")):
        gr = loans.growth(loan_rows, month, by=by)
        gr = gr[gr["balance"].notna() | gr["prev"].notna()]
        frame = pd.DataFrame({label: [str(k) for k in gr.index]})
        if by == "branch_id":
            frame["名称"] = [names.get(str(k), "") for k in gr.index]
        frame["本月余额（万元）"] = np.round(gr["balance"].to_numpy(dtype=float) / 1e4, 1)
        frame["上月余额（万元）"] = np.round(gr["prev"].to_numpy(dtype=float) / 1e4, 1)
        frame["环比（%）"] = np.round(gr["mom_rate"].to_numpy(dtype=float) * 100, 2)
        frame["去年同月（万元）"] = np.round(gr["last_year"].to_numpy(dtype=float) / 1e4, 1)
        frame["同比（%）"] = np.round(gr["yoy_rate"].to_numpy(dtype=float) * 100, 2)
        frame["较起点（%）"] = np.round(gr["since_first_rate"].to_numpy(dtype=float) * 100, 2)
        tables[f"贷款余额（按{label}）"] = frame
    tables["贷款余额（逐月）"] = pd.DataFrame({"月份": series.index.astype(str),
                                         "贷款余额（万元）": np.round(series.to_numpy(dtype=float) / 1e4, 1)})
    return tables, lines, series


def _weekly(visits: pd.DataFrame, hh: pd.DataFrame, first: pd.Series, end: pd.Timestamp,
            closed: set[str]) -> pd.DataFrame:
    """Visits per week (the :data:`TREND_WEEKS` weeks ending on ``end``) and the 建档率 at each week's end."""
    ends = [end - pd.Timedelta(days=7 * k) for k in range(TREND_WEEKS - 1, -1, -1)]
    on = pd.to_datetime(visits["visited_on"], errors="coerce").dt.normalize() if len(visits) else pd.Series(
        dtype="datetime64[ns]")
    v = visits.assign(visited_on=on).drop_duplicates(["hh_id", "staff_id", "visited_on"]) if len(visits) else visits
    closed_mask = hh["hh_id"].astype(str).isin(closed).to_numpy()
    rows = []
    for week_end in ends:
        start = week_end - pd.Timedelta(days=6)
        n = int(((v["visited_on"] >= start) & (v["visited_on"] <= week_end)).sum()) if len(v) else 0
        arch = archived_at(hh, first, week_end).to_numpy()
        denominator = int((~closed_mask | arch).sum())
        rows.append({"周": f"{start:%m-%d}至{week_end:%m-%d}", "走访户次": n,
                     "新建档": int(((first > start - pd.Timedelta(days=1)) & (first <= week_end)
                                   & first.index.isin(hh["hh_id"].astype(str))).sum()),
                     "累计建档": int(arch.sum()),
                     "建档率（%）": round(100 * arch.sum() / denominator, 2) if denominator else float("nan")})
    return pd.DataFrame(rows)


def monthly_report(ws: Any, *, month: str, account: Any, plan: str | None = None) -> Report:
    """The figures of ``month`` within ``account``'s scope.

    Parameters
    ----------
    ws : Workspace
    month : str
        ``YYYY-MM`` (not after the workspace's as-of date, :func:`grids.progress.as_of_date`).
    account : grids.auth.Account
        Leadership, administrators and planners get the county; a branch manager their branch.
    plan : str, optional
        Plan name or id (default: the published plan).

    Raises
    ------
    PermissionDeniedError
        A customer manager (or any role without ``read_all``/``read_branch``).
    ValidationError
        A bad month, or a workspace without a plan.
    """
    from grids.scope import ScopedWorkspace

    _check_account(account)
    as_of = progress.as_of_date(ws.meta)
    month, end = check_month(month, as_of=as_of)
    sw = ScopedWorkspace(ws, account, plan=plan)
    prev_end = pd.Timestamp(f"{loans.previous_month(month)}-01") + pd.offsets.MonthEnd(0)
    cols = ["hh_id", "segment", "product", "village_code", "group_code", "archived", "eligible", "granted_amount",
            "signed", "available_amount", "using", "balance"]
    hh = pd.DataFrame(sw.households(columns=cols).drop(columns="geometry", errors="ignore"))
    located = sw.located()
    closed = sw.closed_ids()
    visits = sw.visits()
    staff = sw.staff()
    branches = sw.branches()
    grids = sw.grids()
    first = archive_dates(visits, sw.surveys())
    branch_names = dict(zip(branches["branch_id"].astype(str), branches["name"].astype(str), strict=True))
    staff_names = dict(zip(staff["staff_id"].astype(str), staff["name"].astype(str), strict=True))
    scope = "" if account.can("read_all") else str(account.branch_id or "")
    scope_label = "全县" if not scope else branch_names.get(scope, scope)
    notes = []
    if end < pd.Timestamp(f"{month}-01") + pd.offsets.MonthEnd(0):
        notes.append(f"本月尚未结束：数据截至 {end:%Y-%m-%d}")
    notes.append("建档按每户第一次“已建档”走访或采集的日期计；授信、签约、用信为登记表的当前状态（登记表不含日期）")

    now = _funnel_at(hh, first, end, closed=closed).iloc[0]
    before = _funnel_at(hh, first, prev_end, closed=closed).iloc[0]
    funnel = pd.DataFrame({
        "指标": [label for _, label, _ in _FUNNEL_ROWS],
        "单位": [unit for *_, unit in _FUNNEL_ROWS],
        "本月末": [_unit(now[k], unit) for k, _, unit in _FUNNEL_ROWS],
        "上月末": [_unit(before[k], unit) for k, _, unit in _FUNNEL_ROWS],
    })
    funnel["环比变化"] = np.round(funnel["本月末"].astype(float) - funnel["上月末"].astype(float), 2)
    tables: dict[str, pd.DataFrame] = {"信贷漏斗": funnel}
    for by, label, names in (("branch", "网点", branch_names), ("staff", "客户经理", staff_names),
                             ("segment", "客户类型", None), ("product", "产品", None)):
        table = _funnel_at(hh, first, end, by=by, located=located, names=names, closed=closed)
        tables[f"按{label}"] = _display(table, label)
    weekly = _weekly(visits, hh, first, end, closed)
    tables["每周走访与建档率"] = weekly

    lag = progress.staff_progress(visits, staff, as_of=end, days=LAGGING_DAYS, branches=branches)
    lag = lag[lag["status"] == "落后"]
    tables["落后客户经理"] = pd.DataFrame({
        "客户经理": lag["name"].astype(str).to_numpy(), "编号": lag["staff_id"].astype(str).to_numpy(),
        "网点": lag["branch_id"].astype(str).map(branch_names).fillna(lag["branch_id"].astype(str)).to_numpy(),
        f"近{LAGGING_DAYS}天走访户次": lag["visits"].to_numpy(), "目标": lag["target"].to_numpy(),
        "完成率（%）": np.round(lag["rate"].to_numpy(dtype=float) * 100, 1)})

    by_grid = _funnel_at(hh, first, end, by="grid", located=located, closed=closed)
    gmap = grids[["grid_id", "code", "name", "branch_id", "staff_id", "geometry"]].copy()
    gmap["coverage_rate"] = gmap["grid_id"].map(by_grid["coverage_rate"]).astype(float)
    gmap["registered"] = gmap["grid_id"].map(by_grid["registered"]).fillna(0).astype(np.int64)
    gmap["archived"] = gmap["grid_id"].map(by_grid["archived"]).fillna(0).astype(np.int64)
    recent = visits[pd.to_datetime(visits["visited_on"], errors="coerce").between(
        end - pd.Timedelta(days=LAGGING_DAYS - 1), end)] if len(visits) else visits
    grid_of = located["grid_id"].reindex(hh.index)
    hh_grid = dict(zip(hh["hh_id"].astype(str), grid_of.astype(object), strict=True))
    gmap["recent_visits"] = gmap["grid_id"].map(recent["hh_id"].astype(str).map(hh_grid).value_counts()
                                                if len(recent) else {}).fillna(0).astype(np.int64)
    lagging = gmap[(gmap["coverage_rate"] < now["coverage_rate"]) & (gmap["registered"] > 0)]
    lagging = lagging.sort_values(["coverage_rate", "grid_id"])
    tables["落后网格"] = pd.DataFrame({
        "网格": lagging["code"].astype(str).to_numpy(), "名称": lagging["name"].fillna("").astype(str).to_numpy(),
        "网点": lagging["branch_id"].astype(str).map(branch_names).fillna("").to_numpy(),
        "客户经理": lagging["staff_id"].astype(object).map(staff_names).fillna("（无人负责）").to_numpy(),
        "登记户数": lagging["registered"].to_numpy(), "已建档": lagging["archived"].to_numpy(),
        "建档率（%）": np.round(lagging["coverage_rate"].to_numpy(dtype=float) * 100, 2),
        f"近{LAGGING_DAYS}天走访户次": lagging["recent_visits"].to_numpy()})

    loan_rows = ws.read(loans.LAYER) if loans.LAYER in ws.layers() else pd.DataFrame()
    if scope and len(loan_rows):
        loan_rows = loan_rows[loan_rows["branch_id"].astype(str) == scope]
    loan_tables, loan_lines, series = _loan_tables(loan_rows, month, branch_names)
    tables.update(loan_tables)
    return Report(month=month, county_name=str(ws.meta.get("county_name", "")), scope=scope, scope_label=scope_label,
                  month_end=end, tables=tables, weekly=weekly, loan_series=series, loan_lines=loan_lines,
                  grid_map=gmap, branches=branches if not scope else branches[branches["branch_id"] == scope],
                  notes=notes, created_by=account.username)


def _unit(value: Any, unit: str) -> float:
    v = float(value)
    return round(v * 100, 2) if unit == "%" else round(v / 1e4, 1) if unit == "万元" else v


# --------------------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if isinstance(value, float | np.floating):
        return f"{value:,.0f}" if float(value).is_integer() and abs(float(value)) >= 1000 else f"{value:,.2f}".rstrip(
            "0").rstrip(".")
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return text.mathtext(str(value))[:40]


def _page(title: str, report: Report) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=_A4)
    fig.text(0.5, 0.965, text.mathtext(report.title), ha="center", fontsize=9, color="#555555")
    fig.text(0.07, 0.93, text.mathtext(title), ha="left", fontsize=15, weight="bold")
    return fig


def _table_figs(title: str, frame: pd.DataFrame, report: Report) -> list[Any]:
    figs = []
    if not len(frame):
        fig = _page(title, report)
        fig.text(0.07, 0.88, "无", fontsize=11)
        return [fig]
    chunks = [frame.iloc[i:i + _ROWS_PER_PAGE] for i in range(0, len(frame), _ROWS_PER_PAGE)]
    for n, chunk in enumerate(chunks):
        fig = _page(title + (f"（续 {n + 1}/{len(chunks)}）" if len(chunks) > 1 else ""), report)
        ax = fig.add_axes((0.05, 0.06, 0.9, 0.85))
        ax.set_axis_off()
        cells = [[_cell(v) for v in row] for row in chunk.itertuples(index=False)]
        tab = ax.table(cellText=cells, colLabels=[text.mathtext(c) for c in chunk.columns], loc="upper center",
                       cellLoc="right", colLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(6.5 if len(chunk.columns) > 8 else 7.5)
        tab.scale(1, 1.25)
        for (r, _c), cell in tab.get_celld().items():
            cell.set_linewidth(0.3)
            if r == 0:
                cell.set_facecolor("#e8ecf6")
                cell.set_text_props(weight="bold")
        figs.append(fig)
    return figs


def _summary_fig(report: Report) -> Any:
    fig = _page("概要", report)
    fig.text(0.07, 0.895, f"报告月份：{report.month}　数据截至：{report.month_end:%Y-%m-%d}　范围："
             f"{text.mathtext(report.scope_label)}", fontsize=10)
    y = 0.86
    fig.text(0.07, y, "贷款余额", fontsize=12, weight="bold")
    for line in report.loan_lines:
        y -= 0.025
        fig.text(0.09, y, text.mathtext(line), fontsize=9.5)
    y -= 0.04
    fig.text(0.07, y, "信贷漏斗（月末与环比）", fontsize=12, weight="bold")
    funnel = report.tables["信贷漏斗"]
    ax = fig.add_axes((0.07, y - 0.33, 0.86, 0.31))
    ax.set_axis_off()
    tab = ax.table(cellText=[[_cell(v) for v in r] for r in funnel.itertuples(index=False)],
                   colLabels=list(funnel.columns), loc="upper center", cellLoc="right", colLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    tab.scale(1, 1.4)
    y -= 0.37
    fig.text(0.07, y, "说明", fontsize=12, weight="bold")
    for note in report.notes:
        y -= 0.025
        fig.text(0.09, y, text.mathtext(note), fontsize=8.5, wrap=True)
    return fig


def _map_fig(report: Report) -> Any:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from grids.crs import gk_crs_for

    fig = _page("网格覆盖图（建档率）", report)
    ax = fig.add_axes((0.05, 0.1, 0.8, 0.78))
    ax.set_axis_off()
    ax.set_aspect("equal")
    g = report.grid_map
    if not len(g):
        fig.text(0.07, 0.85, "没有网格", fontsize=11)
        return fig
    g = g.to_crs(gk_crs_for(g))
    assert g.crs is not None  # just set
    cmap, norm = colormaps["RdYlGn"], Normalize(0, 1)
    colors = [cmap(norm(v)) if not pd.isna(v) else (0.85, 0.85, 0.85, 1) for v in g["coverage_rate"]]
    g.plot(ax=ax, color=colors, edgecolor="#555555", linewidth=0.15)
    if len(report.branches):
        b = report.branches.to_crs(g.crs)
        ax.scatter(b.geometry.x, b.geometry.y, marker="s", s=10, c="#000000", zorder=4)
    cax = fig.add_axes((0.87, 0.3, 0.025, 0.4))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_label("建档率")
    bar.set_ticks([0, 0.25, 0.5, 0.75, 1], labels=["0%", "25%", "50%", "75%", "100%"])
    fig.text(0.07, 0.06, f"网格 {len(g)} 个；灰色：无登记户；黑色方块：营业网点", fontsize=8, color="#333333")
    return fig


def _trend_fig(report: Report) -> Any:
    fig = _page("走访与建档趋势、贷款余额", report)
    w = report.weekly
    ax = fig.add_axes((0.1, 0.55, 0.78, 0.33))
    x = np.arange(len(w))
    ax.bar(x, w["走访户次"], color="#6a8fd8", label="走访户次")
    ax.set_ylabel("走访户次（每周）")
    ax.set_xticks(x, [str(s).split("至")[1] for s in w["周"]], rotation=45, fontsize=7)
    ax2 = ax.twinx()
    ax2.plot(x, w["建档率（%）"], color="#d62728", marker="o", label="建档率")
    ax2.set_ylabel("建档率（%）")
    ax.set_title(f"近 {len(w)} 周（每周截止日）", fontsize=10)
    ax3 = fig.add_axes((0.1, 0.1, 0.78, 0.33))
    s = report.loan_series
    if len(s):
        ax3.plot(pd.PeriodIndex(s.index, freq="M").to_timestamp(), s.to_numpy() / 1e8, color="#1f77b4")
        ax3.set_ylabel("贷款余额（亿元）")
        ax3.set_title(f"贷款余额 {s.index.min()} 至 {s.index.max()}", fontsize=10)
    else:
        ax3.set_axis_off()
        ax3.text(0.5, 0.5, "没有贷款余额数据", ha="center")
    return fig


def to_pdf(report: Report) -> bytes:
    """The report as a multi-page A4 PDF (Chinese font embedded; ``第 n 页 / 共 m 页`` on each page).

    Raises
    ------
    grids.render.FontMissingError
        No CJK font is installed.
    """
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    from grids.render import cjk_font

    family = cjk_font()
    rc: dict[RcKeyType, Any] = {"font.family": "sans-serif", "font.sans-serif": [family, "DejaVu Sans"], "axes.unicode_minus": False,
          "pdf.fonttype": 42}
    with matplotlib.rc_context(rc):
        figs = [_summary_fig(report), _map_fig(report), _trend_fig(report)]
        for title, frame in report.tables.items():
            if title in ("信贷漏斗", "每周走访与建档率", "贷款余额（逐月）"):
                continue
            if title in _PDF_FIRST_ROWS and len(frame) > _ROWS_PER_PAGE:
                title = f"{title}（前 {_ROWS_PER_PAGE} 个，共 {len(frame)} 个，完整名单见 xlsx）"
                frame = frame.iloc[:_ROWS_PER_PAGE]
            figs += _table_figs(title, frame, report)
        buf = io.BytesIO()
        with PdfPages(buf, metadata={"Title": report.title, "Creator": "网格通"}) as pdf:
            for n, fig in enumerate(figs, start=1):
                fig.text(0.5, 0.02, f"第 {n} 页 / 共 {len(figs)} 页", ha="center", fontsize=8)
                pdf.savefig(fig)
    return buf.getvalue()


def to_xlsx(report: Report) -> bytes:
    """The report's tables as an xlsx workbook, one sheet each (named like :attr:`Report.tables`); every cell
    through :func:`grids.export.xlsx_cell`, so no text runs as a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from grids.export import xlsx_cell

    book = Workbook()
    first = book.active
    assert first is not None  # a new workbook has its one sheet
    book.remove(first)
    for title, frame in report.tables.items():
        sheet = book.create_sheet("".join("_" if ch in '[]:*?/\\' else ch for ch in title)[:31])
        for j, name in enumerate(frame.columns, start=1):
            xlsx_cell(sheet, 1, j, str(name)).font = Font(bold=True)
        for i, row in enumerate(frame.itertuples(index=False), start=2):
            for j, value in enumerate(row, start=1):
                xlsx_cell(sheet, i, j, value)
    info = book.create_sheet("说明")
    for i, line in enumerate([report.title, f"数据截至 {report.month_end:%Y-%m-%d}", *report.loan_lines,
                              *report.notes], start=1):
        xlsx_cell(info, i, 1, line)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------
# issued reports
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A report kept in the workspace."""

    report_id: str
    filename: str
    data: bytes
    mime: str
    month: str = ""
    has_loans: bool = True
    """False when the month has no loan totals in the report's scope."""


def issue(ws: Any, *, month: str, fmt: str, account: Any, plan: str | None = None) -> Issued:
    """Render the report of ``month`` in ``fmt`` for ``account`` and keep it (table ``reports``, audited).

    Raises
    ------
    ValidationError
        Unknown format or bad month.
    PermissionDeniedError
        See :func:`monthly_report`.
    """
    if fmt not in FORMATS:
        raise ValidationError(f"不支持的报告格式 “{text.plain(fmt, limit=10)}”", fix="可选：pdf、xlsx")
    report = monthly_report(ws, month=month, account=account, plan=plan)
    data = to_pdf(report) if fmt == "pdf" else to_xlsx(report)
    digest = hashlib.sha256(data).hexdigest()
    now = dt.datetime.now(dt.UTC)
    report_id = f"R{now:%Y%m%d%H%M%S%f}-{digest[:8]}"
    row = pd.DataFrame([{"report_id": report_id, "month": report.month, "format": fmt, "scope": report.scope,
                         "created_at": pd.Timestamp(now), "created_by": account.username, "sha256": digest,
                         "size": len(data), "content": base64.b64encode(data).decode("ascii")}])
    with ws.transaction(actor=account.username, action="生成月度报告") as tx:
        tx.append(REPORTS, row)
        tx.note(REPORTS, {"report_id": report_id, "month": report.month, "format": fmt,
                          "scope": report.scope or "全县", "sha256": digest, "size": len(data)})
    has_loans = "贷款余额（按网点）" in report.tables and bool(
        report.tables["贷款余额（按网点）"]["本月余额（万元）"].notna().any())
    return Issued(report_id=report_id, filename=report.filename(fmt), data=data, mime=FORMATS[fmt],
                  month=report.month, has_loans=has_loans)


def list_reports(ws: Any, account: Any) -> pd.DataFrame:
    """The reports issued within ``account``'s scope, newest first (without the files): ``report_id``,
    ``month``, ``format``, ``scope``, ``created_at`` (UTC), ``created_by``, ``size``, ``sha256``."""
    _check_account(account)
    cols = ["report_id", "month", "format", "scope", "created_at", "created_by", "size", "sha256"]
    if REPORTS not in ws.layers() or not ws.count(REPORTS):
        return pd.DataFrame(columns=cols)
    rows = ws.read(REPORTS, columns=cols)
    if not account.can("read_all"):
        rows = rows[rows["scope"].astype(str) == str(account.branch_id)]
    return pd.DataFrame(rows[cols]).sort_values("created_at", ascending=False).reset_index(drop=True)


def report_file(ws: Any, account: Any, report_id: str) -> Issued:
    """A kept report's file, if ``account`` may see it (its scope); checked against its SHA-256.

    Raises
    ------
    PermissionDeniedError
        Unknown id or outside the account's scope (the same message: ids are not probed).
    ValidationError
        The stored file does not match its SHA-256.
    """
    _check_account(account)
    rows = ws.read(REPORTS, where="report_id = ?", params=[str(report_id)]) if REPORTS in ws.layers() else None
    if rows is None or not len(rows) or (not account.can("read_all")
                                         and str(rows["scope"].iloc[0]) != str(account.branch_id)):
        raise PermissionDeniedError(f"没有这份报告或无权查看：{text.plain(report_id, limit=40)}")
    r = rows.iloc[0]
    data = base64.b64decode(str(r["content"]))
    if hashlib.sha256(data).hexdigest() != r["sha256"]:
        raise ValidationError(f"报告 {r['report_id']} 的内容与其 SHA-256 不符", fix="重新生成该月的报告")
    scope = "全县" if not r["scope"] or pd.isna(r["scope"]) else str(r["scope"])
    return Issued(report_id=str(r["report_id"]), filename=f"月度报告_{r['month']}_{scope}.{r['format']}", data=data,
                  mime=FORMATS.get(str(r["format"]), "application/octet-stream"), month=str(r["month"]))


def weekly_progress(sw: Any, *, by: str = "branch", weeks: int = TREND_WEEKS) -> pd.DataFrame:
    """Visits per week (ISO weeks, the last ``weeks`` to the as-of date) and branch or customer manager in
    ``sw``'s scope: a week × name table for a line chart (:func:`grids.coverage.weekly_visits`)."""
    end = progress.as_of_date(sw.ws.meta)
    start = end - pd.Timedelta(days=7 * weeks - 1)
    staff = sw.staff()
    visits = sw.visits()
    if not len(visits):
        return pd.DataFrame()
    table = coverage.weekly_visits(visits, by=by, staff=staff if by == "branch" else None, start=start, end=end)
    key = "branch_id" if by == "branch" else "staff_id"
    if by == "branch":
        b = sw.branches()
        names = dict(zip(b["branch_id"].astype(str), b["name"].astype(str), strict=True))
        if not sw.is_county_wide:
            table = table[table[key] == sw.account.branch_id]
    else:
        names = dict(zip(staff["staff_id"].astype(str), staff["name"].astype(str), strict=True))
        table = table[table[key].astype(str).isin(set(names))]
    table = table.assign(who=[f"{names.get(str(k), str(k))}（{k}）" for k in table[key]])
    return table.pivot_table(index="week", columns="who", values="visits", aggfunc="sum", fill_value=0)
