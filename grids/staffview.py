"""What the staffing page (人员分配) shows: one branch's grids and team, its workload metrics and warnings, the
selected grid, and as tables the workload per customer manager, the balance preview, a staff change's grid
moves, the branch's accounts, visit quotas and the grid list of its editor.

Every function takes its inputs as arguments and returns new data (Chinese headers where the page shows a
table as is; text from data already made safe for Markdown); the page only reads widgets, calls these and
renders. What the page *does* (previews, saves) is in :mod:`grids.staffing`.

Examples
--------
>>> quota_changes({"S1": 5, "S2": float("nan")}, pd.DataFrame({"staff_id": ["S1", "S2"], "quota": [5.0, 8.0]}))
{'S2': 8}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import geopandas as gpd
import pandas as pd

from grids.assign import assignable_staff
from grids.assign.metrics import balance_warnings
from grids.lifecycle import StaffChange
from grids.plans import versions
from grids.planview import grid_label, held_by_others, selected_title
from grids.progress import DEFAULT_QUOTA_PER_DAY
from grids.text import markdown

__all__ = ["DEFAULT_QUOTA_LABEL", "DOWNLOADS", "MOVE_REASONS", "BranchTeam", "Metric", "Selection",
           "accounts_table", "balance_table", "branch_labels", "branch_names", "branch_quota", "branch_team",
           "change_moves_table", "change_summary", "download_name", "grid_list", "orphan_warning", "plan_caption",
           "quota_changes", "selection", "split_warnings", "staff_labels", "staff_quotas", "stored_quota",
           "workload_metrics", "workload_table"]

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


DEFAULT_QUOTA_LABEL = f"本网点默认定额（户/走访日；0 = 联社默认 {DEFAULT_QUOTA_PER_DAY} 户）"
"""The label of a branch manager's own branch default quota (0 there: the county default)."""

DOWNLOADS = (("xlsx", "入户清单", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
             ("png", "地图 PNG", "image/png"), ("pdf", "地图 PDF", "application/pdf"))
"""The files a customer manager's download row offers: (format, label, MIME type)."""


# --------------------------------------------------------------------------------------------------------
# the branch on the page: its grids and team
# --------------------------------------------------------------------------------------------------------


def branch_names(branches: pd.DataFrame) -> dict[str, str]:
    """branch id → name.

    >>> branch_names(pd.DataFrame({"branch_id": ["B1"], "name": ["一社"]}))
    {'B1': '一社'}
    """
    return dict(zip(branches["branch_id"].astype(str), branches["name"].astype(str), strict=True))


def branch_labels(names: dict[str, str], *, without: str | None = None, sort: bool = False) -> dict[str, str]:
    """branch id → “id name” for select boxes, in the order of ``names`` (by id with ``sort``), ``without``
    one branch (the one staff leave).

    >>> branch_labels({"B2": "二社", "B1": "一社", "B3": "三社"}, without="B3")
    {'B2': 'B2 二社', 'B1': 'B1 一社'}
    >>> list(branch_labels({"B2": "二社", "B1": "一社"}, sort=True))
    ['B1', 'B2']
    """
    return {b: f"{b} {names[b]}" for b in (sorted(names) if sort else names) if b != without}


def staff_labels(team: pd.DataFrame) -> dict[str, str]:
    """staff id → “name（id）” for select boxes, in the team's order.

    >>> staff_labels(pd.DataFrame({"staff_id": ["S1"], "name": ["甲"]}))
    {'S1': '甲（S1）'}
    """
    return {s: f"{n}（{s}）" for s, n in zip(team["staff_id"].astype(str), team["name"].astype(str), strict=True)}


def plan_caption(branch_name: str, plan: dict[str, Any]) -> str:
    """The line under the title: the branch, the plan and its revision (Markdown-safe).

    >>> print(plan_caption("一社", {"name": "*main*", "revision": 3}))
    一社　方案：\\*main\\*（第 3 版）
    """
    return f"{markdown(branch_name)}　方案：{markdown(plan['name'])}（第 {plan['revision']} 版）"


@dataclass(frozen=True)
class BranchTeam:
    """One branch as the staffing page works on it.

    Attributes
    ----------
    grids : GeoDataFrame
        The branch's grids of the plan, by ``grid_id``.
    team : DataFrame
        Its staff who take grids (:func:`grids.assign.assignable_staff`: customer managers in post).
    offices : GeoDataFrame
        The branch's row(s) of the branches layer (maps, metrics).
    names : dict
        staff id → name of the team.
    versions : dict
        grid id → row version as shown (sent with every intent).
    orphans : list of str
        Grids held by someone not on the team (a leaver's, not handed over yet).
    """

    grids: gpd.GeoDataFrame
    team: pd.DataFrame
    offices: gpd.GeoDataFrame
    names: dict[str, str]
    versions: dict[str, int]
    orphans: list[str]

    @property
    def empty(self) -> bool:
        """True when the branch has no grid or nobody to take one (nothing to assign)."""
        return bool(self.grids.empty or self.team.empty)


def branch_team(grids: gpd.GeoDataFrame, staff: pd.DataFrame, branches: gpd.GeoDataFrame,
                branch: str) -> BranchTeam:
    """The grids (of every branch: ``grids``), team and office of ``branch`` (see :class:`BranchTeam`)."""
    mine = grids[grids["branch_id"].astype(object) == branch].sort_values("grid_id", kind="stable")
    team = assignable_staff(staff)
    team = team[team["branch_id"] == branch].reset_index(drop=True)
    return BranchTeam(grids=mine, team=team, offices=branches[branches["branch_id"] == branch],
                      names=dict(zip(team["staff_id"].astype(str), team["name"].astype(str), strict=True)),
                      versions=versions(mine), orphans=held_by_others(mine, team))


# --------------------------------------------------------------------------------------------------------
# workload, warnings, the selected grid, a staff change's preview
# --------------------------------------------------------------------------------------------------------


class Metric(NamedTuple):
    """One of the workload metrics at the top of the page (``st.metric`` arguments)."""

    label: str
    value: int | str
    delta: str | None = None
    help: str | None = None


def workload_metrics(branch_metrics: pd.DataFrame, grids: pd.DataFrame, orphans: list[str]) -> list[Metric]:
    """Grids, households, the staff load spread and its lower bound, whose note says whether grids wait for
    a hand-over (never “已均衡” then), the branch is balanced, or could be balanced better.

    ``branch_metrics``: :func:`grids.assign.metrics.assignment_metrics`'s branch table (the branch's row first).
    """
    b = branch_metrics.iloc[0]
    note = f"{len(orphans)} 个网格待交接" if orphans else "已均衡" if b["balance_ok"] else "可再均衡"
    return [Metric("网格", len(grids)), Metric("住户", f"{int(grids['households'].sum()):,}"),
            Metric("客户经理负荷差", f"{b['staff_spread'] * 100:.0f}%", help="（最多 − 最少）/ 平均，按户数"),
            Metric("可达到的下限", f"{b['spread_lower_bound'] * 100:.0f}%", delta=note,
                   help="网格整块分配时负荷差不可能低于此值（可证明的下限，不计连片）")]


def split_warnings(grids: pd.DataFrame, team: pd.DataFrame) -> list[str]:
    """Why whole grids cannot reach the balance target, each with the grid to split (Markdown)."""
    return [f"{markdown(w.message)}。  \n**建议：**{markdown(w.fix)}" for w in balance_warnings(grids, team).itertuples()]


def orphan_warning(orphans: list[str], *, shown: int = 10) -> str | None:
    """The warning about grids whose customer manager left (the first ``shown`` named), or None.

    >>> orphan_warning(["G1", "G2"])
    '2 个网格的客户经理已离职或不在本网点：G1、G2。修正方法：在下方“人员变动”登记离职交接，或自动均衡'
    """
    if not orphans:
        return None
    return (f"{len(orphans)} 个网格的客户经理已离职或不在本网点：{markdown('、'.join(orphans[:shown]))}。"
            "修正方法：在下方“人员变动”登记离职交接，或自动均衡")


@dataclass(frozen=True)
class Selection:
    """The grid picked on the map: its id (None when not of this branch), the line naming it, who holds it
    and that person's position among the team (the 改派给 box starts there; 0 when not on the team)."""

    grid_id: str | None
    text: str
    current: str | None
    position: int


def selection(grids: pd.DataFrame, names: dict[str, str], grid_id: str | None) -> Selection:
    """What the page says about the clicked grid ``grid_id`` (kept across runs; may be of another branch).

    >>> g = pd.DataFrame({"grid_id": ["G1"], "name": ["一"], "households": [5], "staff_id": ["S2"]})
    >>> selection(g, {"S1": "甲", "S2": "乙"}, "G1")
    Selection(grid_id='G1', text='**选中的网格：** 一（G1，5 户）', current='S2', position=1)
    >>> selection(g, {"S1": "甲"}, "G9").grid_id is None
    True
    """
    if grid_id not in set(grids["grid_id"]):
        return Selection(None, selected_title({}, None), None, 0)
    gid = str(grid_id)
    held: Any = grids.set_index("grid_id").loc[gid, "staff_id"]
    current = None if pd.isna(held) else str(held)
    ids = list(names)
    return Selection(gid, selected_title(grid_label(grids), gid), current,
                     ids.index(current) if current in ids else 0)


def change_summary(change: StaffChange) -> list[str]:
    """A previewed staff change as the page states it (Markdown): a heading, then the summary lines of
    :meth:`grids.lifecycle.StaffChange.lines` (its per-grid lines are :func:`change_moves_table`'s rows)."""
    heading = f"**预览：{markdown(change.title())}**（地图上虚线框为将改派的网格，保存前不生效）"
    return [heading, *(markdown(line) for line in change.lines()[1:] if not line.startswith("  "))]


def download_name(name: str, label: str, fmt: str) -> str:
    """The file name of a customer manager's download.

    >>> download_name("甲", "入户清单", "xlsx")
    '甲_入户清单.xlsx'
    """
    return f"{name}_{label}.{fmt}"
