"""Progress that means something: an as-of date, per-staff quotas, the 7 and 30 days ending on that date.

A workspace may carry a reporting date (``as_of`` in its metadata: the demo's is 2019-09-30, the date of the
联社's account); without one it is live (today, Beijing time). Progress windows are the 7 and 30 days ending on
that date. Each customer manager's quota (households per visit day) is their own when set (``staff.quota_per_day``,
which the branch manager edits), else their branch's default (``branches.quota_per_day``), else
:data:`DEFAULT_QUOTA_PER_DAY`. A window's target is ``quota × visit days`` with :data:`VISIT_DAYS_PER_WEEK` visit
days in every 7 days; a manager at or above it is 达标, below it 落后.

Examples
--------
>>> import pandas as pd
>>> v = pd.DataFrame({"hh_id": list("abcdefg"), "staff_id": ["S1"] * 5 + ["S2"] * 2,
...                   "visited_on": pd.to_datetime(["2019-09-27"] * 5 + ["2019-09-30"] * 2)})
>>> s = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["甲", "乙"], "branch_id": "B1", "role": "客户经理",
...                   "quota_per_day": [1, None]})
>>> p = staff_progress(v, s, as_of=pd.Timestamp("2019-09-30"), days=7)
>>> p[["staff_id", "visits", "quota_per_day", "target", "status"]].values.tolist()
[['S2', 2, 12.0, 60.0, '落后'], ['S1', 5, 1.0, 5.0, '达标']]
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ValidationError

DEFAULT_QUOTA_PER_DAY = 12
"""Households a customer manager visits per visit day when neither they nor their branch set a quota."""
VISIT_DAYS_PER_WEEK = 5
"""Visit days expected in every 7 days."""
WINDOWS: tuple[int, ...] = (7, 30)
"""The progress windows (days ending on the as-of date)."""
AS_OF_KEY = "as_of"
"""Workspace metadata key of the reporting date (``YYYY-MM-DD``; absent or empty: live)."""
MAX_QUOTA = 60


def today() -> pd.Timestamp:
    """Today in Beijing time (naive, midnight)."""
    return pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None).normalize()


def as_of_date(meta: dict[str, str]) -> pd.Timestamp:
    """The workspace's reporting date (from its ``meta``), else today (Beijing time).

    >>> as_of_date({"as_of": "2019-09-30"}).date()
    datetime.date(2019, 9, 30)
    >>> as_of_date({}) == today()
    True
    """
    value = (meta or {}).get(AS_OF_KEY) or ""
    return pd.Timestamp(value).normalize() if value else today()


def is_live(meta: dict[str, str]) -> bool:
    """True when the workspace has no reporting date (progress runs to today)."""
    return not (meta or {}).get(AS_OF_KEY)


def set_as_of(ws: Any, value: str | dt.date | None, *, actor: str) -> None:
    """Set (or clear, with None/"") the workspace's reporting date; audited.

    Raises
    ------
    ValidationError
        Not a date, or a date in the future.
    """
    text = ""
    if value is not None and value != "":
        try:
            day = pd.Timestamp(value).normalize()
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"“{value}” 不是日期", fix="按 YYYY-MM-DD 填写，例如 2019-09-30") from exc
        if day > today():
            raise ValidationError(f"报告日期 {day:%Y-%m-%d} 在未来", fix="填写今天或以前的日期；留空表示按今天实时统计")
        text = f"{day:%Y-%m-%d}"
    ws.set_meta(AS_OF_KEY, text, actor=actor)


def check_quota(value: Any) -> int | None:
    """A quota as stored: a whole number of households per visit day (1–60), or None (use the default).

    >>> check_quota("14"), check_quota(None)
    (14, None)
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)) or str(value).strip() == "":
        return None
    try:
        q = int(str(value).strip())
    except ValueError as exc:
        raise ValidationError(f"定额 “{value}” 不是整数", fix=f"填写每个走访日的户数，1–{MAX_QUOTA}") from exc
    if not 1 <= q <= MAX_QUOTA:
        raise ValidationError(f"定额 {q} 超出范围", fix=f"填写每个走访日的户数，1–{MAX_QUOTA}；留空用网点的默认定额")
    return q


def quotas(staff: pd.DataFrame, branches: pd.DataFrame | None = None) -> pd.Series:
    """``staff_id`` → households per visit day: the person's own quota, else the branch's, else the default."""
    own = pd.to_numeric(staff["quota_per_day"], errors="coerce") if "quota_per_day" in staff else \
        pd.Series(np.nan, index=staff.index)
    branch_q = pd.Series(np.nan, index=staff.index)
    if branches is not None and "quota_per_day" in branches and "branch_id" in staff:
        by_branch = pd.to_numeric(branches.set_index("branch_id")["quota_per_day"], errors="coerce")
        branch_q = staff["branch_id"].map(by_branch)
    q = own.where(own.notna(), branch_q).fillna(DEFAULT_QUOTA_PER_DAY).astype(float)
    return pd.Series(q.to_numpy(), index=staff["staff_id"].astype(str).to_numpy())


def window(as_of: pd.Timestamp, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The ``days`` days ending on ``as_of`` (both ends included).

    >>> [d.date().isoformat() for d in window(pd.Timestamp("2019-09-30"), 7)]
    ['2019-09-24', '2019-09-30']
    """
    end = pd.Timestamp(as_of).normalize()
    return end - pd.Timedelta(days=days - 1), end


def staff_progress(visits: pd.DataFrame, staff: pd.DataFrame, *, as_of: pd.Timestamp, days: int = 7,
                   branches: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each customer manager's visits in the ``days`` days ending on ``as_of`` against their quota.

    Returns
    -------
    DataFrame
        ``staff_id``, ``name``, ``branch_id``, ``visits`` (distinct household and day), ``visit_days``,
        ``quota_per_day``, ``target`` (quota × :data:`VISIT_DAYS_PER_WEEK` × days / 7), ``rate`` (visits /
        target), ``status`` (达标 / 落后), ``start``, ``end``; the furthest behind first.
    """
    if days < 1:
        raise ValidationError(f"统计天数 {days} 无效", fix="按 7 天或 30 天统计")
    people = staff[staff["role"].isna() | (staff["role"] == "客户经理")] if "role" in staff.columns else staff
    start, end = window(as_of, days)
    v = visits
    if len(v):
        on = pd.to_datetime(v["visited_on"], errors="coerce").dt.normalize()
        v = v.assign(visited_on=on)[(on >= start) & (on <= end)].drop_duplicates(["hh_id", "staff_id", "visited_on"])
    per = v.groupby("staff_id").agg(visits=("hh_id", "size"), visit_days=("visited_on", "nunique")) if len(v) else \
        pd.DataFrame({"visits": [], "visit_days": []})
    ids = people["staff_id"].astype(str)
    out = pd.DataFrame({"staff_id": ids.to_numpy(),
                        "name": people["name"].to_numpy() if "name" in people else None,
                        "branch_id": people["branch_id"].to_numpy() if "branch_id" in people else None})
    out["visits"] = out["staff_id"].map(per["visits"]).fillna(0).astype(np.int64)
    out["visit_days"] = out["staff_id"].map(per["visit_days"]).fillna(0).astype(np.int64)
    out["quota_per_day"] = out["staff_id"].map(quotas(people, branches)).astype(float)
    out["target"] = (out["quota_per_day"] * VISIT_DAYS_PER_WEEK * days / 7).round(1)
    out["rate"] = (out["visits"] / out["target"].where(out["target"] > 0)).astype(float)
    out["status"] = np.where(out["visits"] >= out["target"], "达标", "落后")
    out["start"], out["end"] = start, end
    return out.sort_values(["rate", "staff_id"], kind="stable").reset_index(drop=True)
