"""A household's stage — 未建档, 已建档, 已授信, 已用信 — its wording, its map colour, and how flags are read.

The one home of the stage every list, map, KML and PDF shows: :func:`household_status` derives it from the
``archived``/``granted_amount``/``using`` columns, :data:`STATUS_ORDER` orders it, :data:`STATUS_COLORS`
colours it, :data:`FUNNEL_STAGES` names the funnel counts. Flag columns (``archived``, ``using`` …) are read
by :func:`flag_column`, which accepts stored booleans and typed words alike (:func:`grids.text.parse_flag`).

Examples
--------
>>> hh = pd.DataFrame({"archived": [False, True, True, "是"], "granted_amount": [0, 0, 5e4, 0],
...                    "using": [None, False, False, "否"]})
>>> household_status(hh).tolist()
['未建档', '已建档', '已授信', '已建档']
>>> [STATUS_COLORS[s] for s in STATUS_ORDER][:1]
['#d62728']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grids.text import parse_flag

__all__ = ["FUNNEL_STAGES", "NOT_ARCHIVED", "STATUS_COLORS", "STATUS_ORDER", "flag_column", "household_status"]

STATUS_ORDER: tuple[str, ...] = ("未建档", "已建档", "已授信", "已用信")
"""Household map/list status, from least to most advanced (see :func:`household_status`)."""

NOT_ARCHIVED = STATUS_ORDER[0]
"""The status of a household not yet archived (未建档): the one the coverage work targets."""

STATUS_COLORS: dict[str, str] = {"未建档": "#d62728", "已建档": "#ff7f0e", "已授信": "#2ca02c", "已用信": "#1f77b4"}
"""Marker colour of each household status (web maps, PNG/PDF maps and KML)."""

FUNNEL_STAGES: tuple[tuple[str, str], ...] = (
    ("registered", "登记户数"), ("archived", "已建档"), ("eligible", "符合条件"),
    ("granted", "已授信"), ("signed", "已签约"), ("using", "已用信"),
)
"""Funnel count column → its Chinese stage label, in funnel order."""


def flag_column(frame: pd.DataFrame, col: str) -> np.ndarray:
    """``frame[col]`` as a boolean array: stored booleans as they are, words (是/否, 1/0, true …) through
    :func:`grids.text.parse_flag`; missing, blank or unrecognised → False, a missing column → all False.

    Examples
    --------
    >>> flag_column(pd.DataFrame({"a": ["是", "否", None, "yes"]}), "a").tolist()
    [True, False, False, True]
    >>> flag_column(pd.DataFrame({"a": [1, 2]}), "b").tolist()
    [False, False]
    """
    if col not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    s = frame[col]
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        truth = {v: parse_flag(v) is True for v in s.dropna().unique()}  # few distinct values, read once each
        return s.map(truth).eq(True).to_numpy(dtype=bool)
    return s.astype("boolean").fillna(False).to_numpy(dtype=bool)


def household_status(households: pd.DataFrame) -> pd.Series:
    """Each household's stage for lists and maps: 未建档, 已建档, 已授信 (granted) or 已用信 (using)."""
    granted = pd.to_numeric(households.get("granted_amount", pd.Series(0.0, index=households.index)),
                            errors="coerce").fillna(0).to_numpy() > 0
    status = np.where(flag_column(households, "using"), "已用信",
                      np.where(granted, "已授信", np.where(flag_column(households, "archived"), "已建档", "未建档")))
    return pd.Series(status, index=households.index, dtype=object)
