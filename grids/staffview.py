"""What the staffing page (人员分配) shows, as tables: workload per customer manager, the balance preview, a
staff change's grid moves, the branch's accounts, visit quotas and the grid list of its editor.

Every function takes its inputs as arguments and returns a new frame (Chinese headers where the page shows it
as is); the page only reads widgets, calls these and renders.

Examples
--------
>>> quota_changes({"S1": 5, "S2": float("nan")}, pd.DataFrame({"staff_id": ["S1", "S2"], "quota": [5.0, 8.0]}))
{'S2': 8}
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from grids.lifecycle import StaffChange

__all__ = ["MOVE_REASONS", "accounts_table", "balance_table", "branch_quota", "change_moves_table", "grid_list",
           "quota_changes", "staff_quotas", "stored_quota", "workload_table"]

MOVE_REASONS = {"交接": "离职/调出交接", "均衡": "均衡调整"}
"""Why a staff change moves a grid, as the preview names it."""


def workload_table(staff_metrics: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Each customer manager's grids, households, load against the branch mean (%) and pieces, with Chinese
    headers (``staff_metrics``: :func:`grids.assign.metrics.assignment_metrics`'s staff table)."""
    table = staff_metrics[["staff_id", "grids", "households", "load_vs_mean", "pieces"]].assign(
        name=staff_metrics["staff_id"].map(names), load_vs_mean=(staff_metrics["load_vs_mean"] * 100).round(0))
    return table[["staff_id", "name", "grids", "households", "load_vs_mean", "pieces"]].rename(columns={
        "staff_id": "编号", "name": "客户经理", "grids": "网格数", "households": "户数",
        "load_vs_mean": "相对平均（%）", "pieces": "片数"})


def balance_table(before: pd.DataFrame, after: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Households per customer manager now and after a balancing proposal (staff metric tables, same order)."""
    return pd.DataFrame({"客户经理": before["staff_id"].map(names), "现在（户）": before["households"],
                         "均衡后（户）": after["households"]})


def change_moves_table(change: StaffChange) -> pd.DataFrame:
    """The grids a staff change hands over (who had it, who gets it, why), with Chinese headers."""
    table = change.moves.assign(reason=change.moves["reason"].map(MOVE_REASONS))
    return table[["grid_id", "name", "households", "branch_id", "before", "after", "reason"]].rename(columns={
        "grid_id": "编码", "name": "网格", "households": "户数", "branch_id": "网点", "before": "原客户经理",
        "after": "新客户经理", "reason": "原因"})


def accounts_table(accounts: pd.DataFrame) -> pd.DataFrame:
    """The branch's staff accounts (username, name, staff id, 启用/已停用), with Chinese headers."""
    state = accounts["active"].astype("boolean").fillna(False).map({True: "启用", False: "已停用"})
    return accounts.assign(state=state)[["username", "display_name", "staff_id", "state"]].rename(columns={
        "username": "用户名", "display_name": "姓名", "staff_id": "员工编号", "state": "状态"})


def stored_quota(value: Any) -> int | None:
    """A quota as stored: a whole number of households per visit day, or None (blank: the default).

    >>> stored_quota(6.0), stored_quota(None), stored_quota(float("nan"))
    (6, None, None)
    """
    return None if value is None or pd.isna(value) else int(value)


def branch_quota(branches: pd.DataFrame, branch: str) -> int | None:
    """The branch's own default quota (None: the county default applies)."""
    row = branches[branches["branch_id"].astype(str) == branch]
    return stored_quota(row["quota_per_day"].iloc[0]) if "quota_per_day" in row and len(row) else None


def staff_quotas(team: pd.DataFrame) -> pd.DataFrame:
    """The customer managers of ``team`` with their own quota (``staff_id``, ``name``, ``quota``; None: the
    branch default), the quota editor's table."""
    people = team[team["role"] == "客户经理"] if "role" in team else team
    quota = people["quota_per_day"] if "quota_per_day" in people else pd.Series([None] * len(people))
    return pd.DataFrame({"staff_id": people["staff_id"].astype(str).tolist(), "name": people["name"].astype(str).tolist(),
                         "quota": [stored_quota(q) for q in quota]})


def quota_changes(stored: dict[str, Any], edited: pd.DataFrame) -> dict[str, int | None]:
    """The quotas of the edited table (``staff_id``, ``quota``) that differ from ``stored`` (staff id → quota;
    None or NaN: no quota of one's own)."""
    return {str(s): stored_quota(q) for s, q in zip(edited["staff_id"], edited["quota"], strict=True)
            if stored_quota(q) != stored_quota(stored.get(str(s)))}


def grid_list(grids: pd.DataFrame, versions: dict[str, int]) -> pd.DataFrame:
    """The grid list of the staffing editor: id, name, households, customer manager, locked (a plain bool) and
    the ``version`` each grid was shown at."""
    table = pd.DataFrame(grids[["grid_id", "name", "households", "staff_id", "locked"]])
    return table.assign(locked=table["locked"].astype("boolean").fillna(False).astype(bool),
                        version=table["grid_id"].map(versions))
