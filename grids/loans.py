"""Loan totals: the 联社's loan balance (贷款余额) by month, branch and product.

A monthly series, separate from the card balances of the credit funnel: ``python -m grids import PATH
loan_totals FILE`` reads a CSV/xlsx with the headers 月份, 网点, 产品, 贷款余额 (网点 as branch id or name;
贷款余额 in 元, or in 万元/亿元 when the header says so — ``贷款余额（万元）`` — or the cell does — ``2.5万``).
Each row is keyed by month, branch and product (``loan_id`` ``2019-09|B01|福农卡``): importing the same
month, branch and product again replaces the balance (one audited transaction, :func:`write_rows`).

:func:`demo_series` makes the demo's series: 24.01亿 in January 2017 growing to 42.94亿 in September 2019
(the 联社's account), exactly at both ends. :func:`totals` and :func:`growth` read it back for the monthly report.

Examples
--------
>>> parse_month("2019年9月"), parse_month("201909"), parse_month("2019/9/30")
('2019-09', '2019-09', '2019-09')
>>> parse_amount("2.5万"), parse_amount("1,200"), parse_amount("3", unit=1e8)
(25000.0, 1200.0, 300000000.0)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from grids.errors import ValidationError
from grids.text import normalize_id, plain

LAYER = "loan_totals"
FIRST_TOTAL = 2_401_000_000
"""The demo's county loan balance in January 2017 (24.01亿元, the 联社's account)."""
LAST_TOTAL = 4_294_000_000
"""The demo's county loan balance in September 2019 (42.94亿元)."""
DEMO_START, DEMO_END = "2017-01", "2019-09"
DEMO_PRODUCTS: tuple[str, ...] = ("福农卡", "福商卡", "福薪卡", "福民卡", "其他贷款")
"""Products of the demo's series: the four cards and the rest of the loan book."""
ALIASES: dict[str, tuple[str, ...]] = {
    "month": ("月份", "月", "统计月份", "年月", "日期", "报表月份"),
    "branch_id": ("网点", "网点编号", "网点名称", "机构", "机构号", "机构名称", "所属网点"),
    "product": ("产品", "贷款产品", "产品名称", "品种", "贷款品种"),
    "balance": ("贷款余额", "余额", "贷款余额合计"),
}
"""Header aliases of an import file (see :func:`grids.ingest.recognise_columns`)."""
REQUIRED: tuple[str, ...] = ("month", "branch_id", "product", "balance")
LABELS: dict[str, str] = {"month": "月份", "loan_id": "月份/网点/产品"}

_MONTH = re.compile(r"^\s*(\d{4})\s*(?:[-/.年]\s*(\d{1,2})|(\d{2}))\s*(?:月)?(?:[-/.]\s*\d{1,2}\s*日?)?"
                    r"(?:\s+00:00(?::00)?)?\s*$")
_UNITS = {"亿": 1e8, "万": 1e4, "元": 1.0}


def parse_month(value: Any) -> str | None:
    """``value`` as ``YYYY-MM`` (from ``2019-09``, ``2019/9``, ``2019年9月``, ``201909``, a date), else None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "month"):
        ts = pd.Timestamp(value)
        return f"{ts.year:04d}-{ts.month:02d}"
    m = _MONTH.match(str(value).strip())
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2) or m.group(3))
    if not 1 <= month <= 12 or not 1990 <= year <= 2100:
        return None
    return f"{year:04d}-{month:02d}"


def parse_amount(value: Any, *, unit: float = 1.0) -> float | None:
    """An amount in yuan from a cell (``1,200``, ``2.5万``, ``3.1亿元``), the plain number times ``unit``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if not isinstance(value, str):
        return float(value) * unit
    text = value.strip().replace(",", "").replace("，", "").replace(" ", "")
    scale = unit
    for suffix in ("亿元", "万元", "亿", "万", "元"):
        if text.endswith(suffix):
            scale, text = _UNITS[suffix[0]], text[: -len(suffix)]
            break
    try:
        number = float(text)
    except ValueError:
        return None
    return number * scale if np.isfinite(number) else None


def header_unit(header: str | None) -> float:
    """Yuan per unit of a 贷款余额 header: ``贷款余额（万元）`` → 10,000; ``（亿元）`` → 1e8; else 1."""
    text = str(header or "")
    if "亿" in text:
        return 1e8
    if "万" in text:
        return 1e4
    return 1.0


def loan_key(month: str, branch_id: str, product: str) -> str:
    """The row key: ``2019-09|B01|福农卡``."""
    return f"{month}|{branch_id}|{product}"


def check_rows(data: pd.DataFrame, problems: Any, ctx: Any) -> pd.DataFrame:
    """Validate the rows of a loan-totals file (called by :func:`grids.ingest.validation.validate`).

    Parameters
    ----------
    data : DataFrame
        The file's recognised columns (``month``, ``branch_id``, ``product``, ``balance``) as text.
    problems : grids.ingest.context.Problems
        Where each bad cell is recorded (row, column, reason, fix).
    ctx : grids.ingest.context.Context
        The workspace (its branches: 网点 may be written as id or name).

    Returns
    -------
    DataFrame
        ``loan_id``, ``month``, ``branch_id``, ``product``, ``balance`` (yuan), one row per input row.
    """
    from grids.ingest.values import require_column as _require

    out = pd.DataFrame(index=data.index)
    raw_month = _require(data, "month", problems, "填写月份，例如 2019-09", label="月份")
    month = raw_month.map(parse_month)
    problems.add(raw_month.notna() & month.isna(), "month", "月份无法识别", "写成 2019-09 或 2019年9月")
    now = pd.Timestamp.now(tz="Asia/Shanghai")
    future = month.notna() & (month > f"{now.year:04d}-{now.month:02d}")
    problems.add(future, "month", "月份在未来", "检查年份和月份")
    out["month"] = month.where(~future, None)

    branch = _require(data, "branch_id", problems, "填写网点编号或网点名称，例如 B01", label="网点")
    branches = ctx.workspace.read("branches", columns=["branch_id", "name"]) \
        if ctx.workspace is not None and ctx.workspace.count("branches") else None
    if branches is None:
        out["branch_id"] = branch.map(lambda v: v if v is None else normalize_id(v))
        if ctx.workspace is not None:
            ctx.warnings.append("工作区还没有网点，未检查贷款余额的网点是否存在（先导入 branches）")
    else:
        ids = {normalize_id(b): str(b) for b in branches["branch_id"]}
        by_name = {normalize_id(n): str(b) for b, n in zip(branches["branch_id"], branches["name"], strict=True)}
        names = dict(zip(branches["branch_id"].astype(str), branches["name"].astype(str), strict=True))
        resolved = branch.map(lambda v: None if v is None else ids.get(normalize_id(v)) or by_name.get(normalize_id(v)))
        examples = "、".join(f"{plain(b, limit=12)} 或 {plain(n, limit=20)}" for b, n in list(names.items())[:3])
        problems.add(branch.notna() & resolved.isna(), "branch_id", "网点不存在",
                     f"写工作区里的网点编号或名称，例如 {examples}")
        out["branch_id"] = resolved

    product = _require(data, "product", problems, "填写贷款产品，例如 福农卡", label="产品")
    long = product.notna() & (product.str.len() > 40)
    problems.add(long, "product", "产品名称太长", "产品名称不超过 40 个字")
    out["product"] = product.where(~long, None)

    unit = header_unit(problems.labels.get("balance"))
    raw_balance = _require(data, "balance", problems, "填写贷款余额（元；表头写“贷款余额（万元）”时按万元）",
                           label="贷款余额")
    balance = raw_balance.map(lambda v: parse_amount(v, unit=unit))
    problems.add(raw_balance.notna() & balance.isna(), "balance", "贷款余额不是数字",
                 "只写数字，例如 1250000 或 125万；不要写文字说明")
    negative = balance.notna() & (balance < 0)
    problems.add(negative, "balance", "贷款余额为负数", "余额应为 0 或正数")
    out["balance"] = balance.where(~negative, None).astype(float).round(2)
    ok = out[["month", "branch_id", "product"]].notna().all(axis=1)
    out["loan_id"] = None
    out.loc[ok, "loan_id"] = [loan_key(m, b, p) for m, b, p in out.loc[ok, ["month", "branch_id", "product"]]
                              .itertuples(index=False)]
    return out[["loan_id", "month", "branch_id", "product", "balance"]]


def write_rows(tx: Any, rows: pd.DataFrame, *, chunk: int = 500) -> int:
    """Inside a workspace transaction: replace the rows of the same month, branch and product, then add
    ``rows``; returns how many stored rows were replaced."""
    keys = [str(k) for k in rows["loan_id"]]
    replaced = 0
    for i in range(0, len(keys), chunk):
        part = keys[i:i + chunk]
        replaced += int(tx.delete(LAYER, where=f"loan_id IN ({', '.join('?' * len(part))})", params=part) or 0)
    tx.append(LAYER, rows.reset_index(drop=True))
    return replaced


# --------------------------------------------------------------------------------------------------------
# the demo's series
# --------------------------------------------------------------------------------------------------------


def months(start: str, end: str) -> list[str]:
    """The months from ``start`` to ``end`` (``YYYY-MM``), both included.

    >>> months("2018-11", "2019-02")
    ['2018-11', '2018-12', '2019-01', '2019-02']
    """
    return [f"{p.year:04d}-{p.month:02d}" for p in pd.period_range(start, end, freq="M")]


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` yuan split in proportion to ``weights``, whole yuan, summing exactly (largest remainder)."""
    share = weights / weights.sum() * total
    base: np.ndarray = np.floor(share).astype(np.int64)
    left = int(total - base.sum())
    base[np.argsort(-(share - base), kind="stable")[:left]] += 1
    return base


def demo_series(branch_ids: Sequence[str], *, seed: int = 0, start: str = DEMO_START, end: str = DEMO_END,
                first: int = FIRST_TOTAL, last: int = LAST_TOTAL,
                products: Sequence[str] = DEMO_PRODUCTS) -> pd.DataFrame:
    """A monthly loan-balance series per branch and product whose county total is ``first`` in ``start`` and
    ``last`` in ``end``, exactly (whole yuan), growing smoothly with noise in between.

    Returns
    -------
    DataFrame
        The ``loan_totals`` layer's columns, one row per month, branch and product.

    Examples
    --------
    >>> s = demo_series(["B01", "B02"], seed=1)
    >>> int(s[s["month"] == "2017-01"]["balance"].sum()), int(s[s["month"] == "2019-09"]["balance"].sum())
    (2401000000, 4294000000)
    """
    if not len(branch_ids):
        raise ValidationError("没有网点，无法生成贷款余额序列", fix="先生成或导入网点")
    rng = np.random.default_rng(seed)
    ms = months(start, end)
    n = len(ms)
    t = np.arange(n) / max(n - 1, 1)
    noise = rng.normal(0, 0.006, n)
    noise[0] = noise[-1] = 0.0
    season = 0.004 * np.sin(2 * np.pi * np.arange(n) / 12)  # spring lending (春耕) lifts the first half
    season -= season[0] + (season[-1] - season[0]) * t  # zero at both ends
    totals = np.exp(np.log(first) + (np.log(last) - np.log(first)) * t + noise + season)
    totals = np.round(totals).astype(np.int64)
    totals[0], totals[-1] = first, last
    nb, npd = len(branch_ids), len(products)
    size = rng.lognormal(0, 0.45, nb)  # a branch's book; the 营业部 (first) is the largest
    size[0] = size.max() * 1.6
    mix = rng.dirichlet(np.full(npd, 4.0), nb) * np.linspace(1.4, 0.6, npd)
    drift = rng.normal(0, 0.25, (nb, npd))  # some books grow faster than others
    rows = []
    for i, (m, total) in enumerate(zip(ms, totals, strict=True)):
        w = (size[:, None] * mix * np.exp(drift * t[i] + rng.normal(0, 0.01, (nb, npd)))).ravel()
        amounts = _split(int(total), w)
        for k, amount in enumerate(amounts):
            b, p = branch_ids[k // npd], products[k % npd]
            rows.append((loan_key(m, b, p), m, b, p, float(amount)))
    return pd.DataFrame(rows, columns=["loan_id", "month", "branch_id", "product", "balance"])


# --------------------------------------------------------------------------------------------------------
# reading the series back
# --------------------------------------------------------------------------------------------------------


def previous_month(month: str, k: int = 1) -> str:
    """The month ``k`` months before ``month``.

    >>> previous_month("2019-01"), previous_month("2019-09", 12)
    ('2018-12', '2018-09')
    """
    p = pd.Period(month, freq="M") - k
    return f"{p.year:04d}-{p.month:02d}"


def totals(loans: pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
    """Balance per month (and ``by`` = ``branch_id`` or ``product``): a month × key table in yuan."""
    if not len(loans):
        return pd.DataFrame()
    if by is None:
        return loans.groupby("month")["balance"].sum().to_frame("合计")
    return loans.pivot_table(index="month", columns=by, values="balance", aggfunc="sum", fill_value=0.0)


def growth(loans: pd.DataFrame, month: str, *, by: str | None = None) -> pd.DataFrame:
    """The balance of ``month`` and its growth: vs the previous month, the same month a year before and the
    start of the series (the first month with data).

    Returns
    -------
    DataFrame
        One row per key (``合计`` without ``by``), columns ``balance``, ``prev`` (previous month), ``mom``
        (change, yuan), ``mom_rate``, ``last_year``, ``yoy``, ``yoy_rate``, ``first_month``, ``first``,
        ``since_first``, ``since_first_rate``; missing months give NaN.
    """
    table = totals(loans, by=by)
    cols = ["balance", "prev", "mom", "mom_rate", "last_year", "yoy", "yoy_rate", "first_month", "first",
            "since_first", "since_first_rate"]
    if table.empty:
        return pd.DataFrame(columns=cols)

    def at(m: str) -> pd.Series:
        return cast(pd.Series, table.loc[m]) if m in table.index else pd.Series(np.nan, index=table.columns)

    cur, prev, year = at(month), at(previous_month(month)), at(previous_month(month, 12))
    first_month = str(table.index.min())
    first = at(first_month)
    out = pd.DataFrame({"balance": cur, "prev": prev, "last_year": year, "first": first})
    out["mom"] = out["balance"] - out["prev"]
    out["yoy"] = out["balance"] - out["last_year"]
    out["since_first"] = out["balance"] - out["first"]
    for rate, base, diff in (("mom_rate", "prev", "mom"), ("yoy_rate", "last_year", "yoy"),
                             ("since_first_rate", "first", "since_first")):
        out[rate] = out[diff] / out[base].where(out[base] > 0)
    out["first_month"] = first_month
    return out[cols]
