"""Display text for the Chinese UI: numbers as the pages show them (percentages, counts, 万/亿元) and funnel
tables with Chinese headers."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from grids import household_status

FUNNEL_STAGES = household_status.FUNNEL_STAGES  # the stage wording lives in grids.household_status
AMOUNT_COLUMNS = ("granted_amount", "available_amount", "balance")
"""Columns in yuan that display tables show in 万元."""


def pct(v: Any) -> str:
    """0.8279 → '82.8%'; missing → '—'."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v):
        return "—"
    return f"{float(v) * 100:.1f}%"


def count(v: Any) -> str:
    """12345 → '12,345'."""
    return "—" if v is None or pd.isna(v) else f"{int(v):,}"


def yi(v: Any) -> str:
    """Yuan → '7.811 亿元' (or 万元 below one 亿)."""
    if v is None or pd.isna(v):
        return "—"
    v = float(v)
    return f"{v / 1e8:.3f} 亿元" if abs(v) >= 1e8 else f"{v / 1e4:,.1f} 万元"


def funnel_display(table: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """A funnel table with Chinese headers, rates in percent and amounts in 万元, for st.dataframe."""
    out = table.copy()
    for col in out.columns:
        if col.endswith("_rate"):
            out[col] = (out[col].astype(float) * 100).round(1)
        elif col in AMOUNT_COLUMNS:
            out[col] = (out[col].astype(float) / 1e4).round(1)
    names = {c: labels.get(c, c) + ("（%）" if c.endswith("_rate") else "（万元）" if c in AMOUNT_COLUMNS else "")
             for c in out.columns}
    names["name"] = "名称"
    return out.rename(columns=names)
