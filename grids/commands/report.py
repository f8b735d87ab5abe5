"""``python -m grids report PATH [--plan NAME] [--by …] [--json]``: the credit funnel, uncovered households, progress.

The county line always; with ``--by`` one row per town, village, grid, branch, staff, segment or product (rows
add up to the county). ``--json`` prints ``{"county": {...}, "by": ..., "breakdown": [...]}`` with counts as
integers, rates as fractions and amounts in yuan.

``--month YYYY-MM --format pdf|xlsx --out FILE --user NAME``: the monthly report (:mod:`grids.monthly`) within
the account's scope (leadership, administrators, planners: the county; a branch manager: their branch), written
to FILE and kept in the workspace (audited). Exit 0 written; 1 written, but the month has no loan totals; 2
refused (no permission, a bad month, usage).
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from typing import Any, cast

import geopandas as gpd
import pandas as pd

from grids import coverage
from grids.audit import chain_head
from grids.commands._identity import add_user_argument, sign_in
from grids.coverage import BY_CHOICES, FUNNEL_LABELS
from grids.errors import ValidationError
from grids.workspace import Workspace, open_workspace

_NEEDS_PLAN = ("grid", "branch", "staff")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="信贷漏斗与覆盖报告 / the credit funnel and coverage report")
    p.add_argument("path", help="工作区文件 (.gpkg)")
    p.add_argument("--plan", help="网格方案名称（默认：已发布方案，否则最新草稿）")
    p.add_argument("--by", choices=list(BY_CHOICES), help="分组：" + "、".join(f"{k}={v}" for k, v in BY_CHOICES.items()))
    p.add_argument("--json", action="store_true", help="输出 JSON（比率为小数，金额为元）")
    p.add_argument("--engine", choices=["memory", "dask"], default="memory",
                   help="计算引擎：memory（默认，单机内存）或 dask（分区并行，适合市/省级千万户）")
    p.add_argument("--scheduler", help="Dask 调度器地址（如 tcp://10.0.0.5:8786）；默认在本机启动 LocalCluster")
    p.add_argument("--workers", type=int, default=2, help="本机 LocalCluster 的工作进程数（默认 2）")
    p.add_argument("--uncovered", choices=["grid", "staff", "branch"],
                   help="同时列出未覆盖户数（未建档、网格无客户经理、未定位）按网格/客户经理/网点")
    p.add_argument("--progress", action="store_true", help="同时列出客户经理走访进度与落后名单")
    p.add_argument("--quota", type=float, default=12.0, help="每个走访日应走访户数（默认 12）")
    p.add_argument("--days-per-week", type=float, default=None, help="每周应有的走访日数（给出时按周期计算目标）")
    m = p.add_argument_group("月度报告", "给出 --month 时生成月度报告（PDF 或 Excel），保存到工作区并写出文件")
    m.add_argument("--month", metavar="YYYY-MM", help="报告月份，例如 2019-09")
    m.add_argument("--format", choices=["pdf", "xlsx"], default="pdf", help="报告格式（默认 pdf）")
    m.add_argument("--out", metavar="FILE", help="报告文件写到这里（必填）")
    add_user_argument(m, required=False)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * max(width - _width(text), 0)
    return fill + text if right else text + fill


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table whose columns line up with Chinese characters (double width)."""
    widths = [max(_width(str(r[j])) for r in [header, *rows]) for j in range(len(header))]
    lines = ["  ".join(_pad(h, w, right=j > 0) for j, (h, w) in enumerate(zip(header, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(_pad(str(v), w, right=j > 0) for j, (v, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def _pct(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v) * 100:.2f}%"


def _yi(v: float) -> str:
    return f"{v / 1e8:.2f} 亿元"


def county_text(name: str, c: dict[str, Any]) -> str:
    """The county funnel as lines of Chinese text."""
    return "\n".join([
        f"{name} 信贷漏斗（全县）",
        f"  {FUNNEL_LABELS['registered']}  {c['registered']:,}",
        f"  {FUNNEL_LABELS['archived']}    {c['archived']:,}（建档率 {_pct(c['coverage_rate'])}）",
        f"  {FUNNEL_LABELS['eligible']}  {c['eligible']:,}",
        f"  已授信    {c['granted']:,}（授信率 {_pct(c['granted_rate'])}）  授信总额 {_yi(c['granted_amount'])}",
        f"  已签约    {c['signed']:,}（签约率 {_pct(c['signed_rate'])}）  签约可用信金额 {_yi(c['available_amount'])}",
        f"  已用信    {c['using']:,}（用信率 {_pct(c['using_rate'])}）  用信余额 {_yi(c['balance'])}",
    ])


def breakdown_text(table: pd.DataFrame, by: str) -> str:
    """One row per key and a 合计 row; amounts in 万元."""
    header = [BY_CHOICES[by], "登记", "建档", "建档率", "符合条件", "授信", "授信率", "授信额(万元)", "签约", "签约率",
              "可用信(万元)", "用信", "用信率", "余额(万元)"]

    def line(label: str, r: pd.Series) -> list[str]:
        return [label, f"{int(r.registered):,}", f"{int(r.archived):,}", _pct(r.coverage_rate),
                f"{int(r.eligible):,}", f"{int(r.granted):,}", _pct(r.granted_rate), f"{r.granted_amount / 1e4:,.1f}",
                f"{int(r.signed):,}", _pct(r.signed_rate), f"{r.available_amount / 1e4:,.1f}", f"{int(r.using):,}",
                _pct(r.using_rate), f"{r.balance / 1e4:,.1f}"]

    rows = []
    for key, r in table.iterrows():
        label = str(key) if "name" not in table or r["name"] == key else f"{r['name']}（{key}）"
        rows.append(line(label, r))
    sums = table[["registered", "archived", "eligible", "granted", "granted_amount", "signed",
                  "available_amount", "using", "balance"]].sum()
    total = coverage.with_rates(sums.to_frame().T).iloc[0]
    rows.append(line("合计", total))
    return format_table(header, rows)


def _names(ws: Workspace, by: str, grids: pd.DataFrame | None) -> dict[str, str]:
    if by in ("town", "village"):
        admin = ws.read("admin_units", columns=["code", "name"])
        return dict(zip(admin["code"].astype(str), admin["name"].astype(str), strict=True))
    if by == "branch":
        b = ws.read("branches", columns=["branch_id", "name"])
        return dict(zip(b["branch_id"].astype(str), b["name"].astype(str), strict=True))
    if by == "staff":
        s = ws.read("staff", columns=["staff_id", "name"])
        return dict(zip(s["staff_id"].astype(str), s["name"].astype(str), strict=True))
    if by == "grid" and grids is not None and "name" in grids:
        return {str(k): str(v) for k, v in zip(grids["grid_id"], grids["name"], strict=True) if pd.notna(v)}
    return {}


def _run_dask(args: argparse.Namespace, ws: Workspace) -> int:
    """``--engine dask``: county line and breakdown from :mod:`grids.scale` (same figures as in memory)."""
    from grids import plans
    from grids.scale import funnel_dask, get_client, workspace_households

    if args.uncovered or args.progress:
        raise ValidationError("--engine dask 只计算漏斗汇总", fix="去掉 --uncovered/--progress，或改用默认引擎")
    client = get_client(args.scheduler, workers=args.workers)
    try:
        households = workspace_households(ws)
        try:
            grids = plans.read_grids(ws, plans.resolve_plan(ws, args.plan))
        except ValidationError:
            if args.by in _NEEDS_PLAN or args.plan:
                raise
            grids = gpd.GeoDataFrame({"grid_id": [], "source_codes": []}, geometry=[], crs=4490)
        # a spatial layer: a GeoDataFrame (its geometry is always read)
        admin = cast(gpd.GeoDataFrame, ws.read("admin_units", columns=["code", "level"]))
        county_table = funnel_dask(households, grids, client=client, admin_units=admin)
        table = funnel_dask(households, grids, by=args.by, client=client, admin_units=admin) if args.by else None
    finally:
        client.close()  # type: ignore[no-untyped-call]  # distributed leaves Client.close unannotated
    county = {k: v for k, v in coverage.funnel_records(county_table)[0].items() if k != "key"}
    result: dict[str, Any] = {"county_name": ws.meta.get("county_name", ""), "county": county, "engine": "dask"}
    if table is not None:
        names = _names(ws, args.by, grids)
        if names:
            table.insert(0, "name", [names.get(str(k), str(k)) for k in table.index])
        result["by"] = args.by
        result["breakdown"] = coverage.funnel_records(table)
    result["audit_head"] = chain_head(ws)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(county_text(result["county_name"], county))
    if table is not None:
        print()
        print(breakdown_text(table, args.by))
    print(f"\n审计链头：{result['audit_head']}")
    return 0


def _run_monthly(args: argparse.Namespace) -> int:
    """``--month``: render, keep and write the monthly report."""
    from pathlib import Path

    from grids import monthly

    if not args.out or not args.user:
        print("用法错误：月度报告需要 --out 文件 和 --user 账号（报告会保存到工作区并记入审计）", file=sys.stderr)
        return 2
    if args.by or args.json or args.uncovered or args.progress or args.engine != "memory":
        print("用法错误：--month 不能与 --by/--json/--uncovered/--progress/--engine 同用", file=sys.stderr)
        return 2
    ws = open_workspace(args.path)
    account = sign_in(ws, args.user)
    issued = monthly.issue(ws, month=args.month, fmt=args.format, account=account, plan=args.plan)
    out = Path(args.out)
    out.write_bytes(issued.data)
    print(f"月度报告已生成：{out}（{len(issued.data) / 1024:,.0f} KB，编号 {issued.report_id}，已保存到工作区）")
    if not issued.has_loans:
        print("注意：该月没有贷款余额数据，报告中贷款部分为空。导入：python -m grids import 工作区 loan_totals 文件")
        return 1
    return 0


def _one_decimal(x: float) -> str:
    """``x`` with one decimal, "—" when it is NaN."""
    return "—" if pd.isna(x) else f"{x:.1f}"


def run(args: argparse.Namespace) -> int:
    if args.month is not None:
        return _run_monthly(args)
    ws = open_workspace(args.path)
    if args.engine == "dask":
        return _run_dask(args, ws)
    if ws.meta.get("households_parquet") and not ws.count("households"):
        raise ValidationError("这是市级工作区，农户保存在 GeoParquet 分区中", fix="加 --engine dask 运行")
    households = ws.read("households")
    from grids.survey import closed_ids, read_surveys

    closed = closed_ids(read_surveys(ws))  # 已迁出/不符合条件: off the to-do list and the coverage denominator
    county = coverage.county_summary(households, closed=closed)
    result: dict[str, Any] = {"county_name": ws.meta.get("county_name", ""), "county": county}
    located = grids = None
    if args.by in _NEEDS_PLAN or args.uncovered or args.plan:
        from grids import plans

        plan_id = plans.resolve_plan(ws, args.plan)
        grids = plans.read_grids(ws, plan_id)
        located = coverage.locate_in_workspace(ws, grids, households=households)
        result["plan_id"] = plan_id
        result["unlocated"] = int(located["grid_id"].isna().sum())
    table = None
    if args.by:
        table = coverage.funnel(households, by=args.by, located=located, names=_names(ws, args.by, grids),
                                closed=closed)
        result["by"] = args.by
        result["breakdown"] = coverage.funnel_records(table)
    uncovered = None
    if args.uncovered:
        assert located is not None  # --uncovered reads a plan and locates the households above
        uncovered = coverage.uncovered_households(households, located, by=args.uncovered, closed=closed)
        result["uncovered"] = [{"key": str(k), **{c: int(v) for c, v in r.items()}} for k, r in uncovered.iterrows()]
    behind = None
    if args.progress:
        behind = coverage.behind_quota(ws.read("visits"), ws.read("staff"), quota_per_day=args.quota,
                                       days_per_week=args.days_per_week)
        result["progress"] = json.loads(behind.to_json(orient="records", force_ascii=False))
    result["audit_head"] = chain_head(ws)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(county_text(result["county_name"], county))
    if result.get("unlocated"):
        print(f"  注意：{result['unlocated']:,} 户无法定位到网格（按网格/网点/客户经理汇总时记在“{coverage.UNLOCATED}”）")
    if table is not None:
        print()
        print(f"按{BY_CHOICES[args.by]}：")
        print(breakdown_text(table, args.by))
    if uncovered is not None:
        print()
        print(f"未覆盖户（按{ {'grid': '网格', 'staff': '客户经理', 'branch': '网点'}[args.uncovered] }）：")
        rows = [[str(k), f"{r.uncovered:,}", f"{r.not_archived:,}", f"{r.no_staff:,}", f"{r.unlocated:,}"]
                for k, r in uncovered.iterrows()]
        print(format_table(["编号", "未覆盖", "未建档", "网格无客户经理", "未定位"], rows) if rows else "  无")
    if behind is not None:
        print()
        late = behind[behind["behind"]]
        print(f"走访进度（定额每个走访日 {args.quota:g} 户）：{len(late)} 人落后")
        rows = [[f"{r.name}（{r.staff_id}）", str(r.branch_id), f"{r.visit_days}", f"{r.visits:,}", f"{r.target:,.0f}",
                 _one_decimal(cast(float, r.per_day)), f"{r.shortfall:,.0f}", "落后" if r.behind else ""]
                for r in behind.itertuples()]
        print(format_table(["客户经理", "网点", "走访日", "走访户次", "目标", "日均", "差额", ""], rows))
    print(f"\n审计链头：{result['audit_head']}")
    return 0
