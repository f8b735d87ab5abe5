"""What the planning and staffing pages compute from their inputs, apart from maps (:mod:`grids.planmaps`):
which grid a drawing edits, the households of a grid, grid and plan labels, the grids a staff change hands over,
the lines of the check list, and the tables and figures of the comparison and what-if sections.

Every function takes its inputs as arguments (grids, households, a staff change) and returns new objects; the
pages only read widgets, call these and render.

Examples
--------
>>> import geopandas as gpd, shapely
>>> g = gpd.GeoDataFrame({"grid_id": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
...                      crs=4490)
>>> split_target(g, shapely.LineString([(0.9, 0.5), (1.8, 0.5)]), selected=None)
'b'
>>> split_target(g, shapely.LineString([(0.9, 0.5), (1.8, 0.5)]), selected="a")
'a'
"""

from __future__ import annotations

from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids import edit
from grids.errors import ValidationError
from grids.lifecycle import StaffChange
from grids.text import markdown

__all__ = ["COMPARE_COLUMNS", "WHATIF_COLUMNS", "apply_geometry", "bounds_of", "change_grids", "compare_grid_table",
           "compare_metrics", "grid_label", "held_by_others", "households_in", "plan_labels", "problem_text",
           "split_target", "versions_table", "whatif_caption", "whatif_metrics"]


def bounds_of(geom: Any, *, pad: float = 0.004) -> tuple[float, float, float, float] | None:
    """Padded lon/lat bounds of a geometry (a problem location, an edited grid)."""
    if geom is None or shapely.is_empty(geom):
        return None
    minx, miny, maxx, maxy = shapely.bounds(geom)
    return minx - pad, miny - pad, maxx + pad, maxy + pad


def split_target(grids: gpd.GeoDataFrame, line: Any, *, selected: str | None) -> str:
    """The grid a drawn line splits: the selected grid when the line crosses it, else the grid the line runs
    through longest.

    Raises
    ------
    ValidationError
        The line crosses no grid.
    """
    hits = grids.sindex.query(line, predicate="intersects")
    if not len(hits):
        raise ValidationError("画的线没有经过任何网格", fix="在要拆分的网格上画线")
    ids = grids["grid_id"].astype(str).to_numpy()[hits]
    if selected in set(ids):
        return str(selected)
    inside = shapely.length(shapely.intersection(grids.geometry.to_numpy()[hits], line))
    return str(ids[int(np.argmax(inside))])


def apply_geometry(grids: gpd.GeoDataFrame, geom: Any, *, selected: str | None, households: gpd.GeoDataFrame,
                   admin_units: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, str, Any]:
    """A drawn shape (storage coordinates) as an edit: a line splits the grid it crosses (:func:`split_target`,
    :func:`grids.edit.split_grid`); a polygon reshapes the selected grid (:func:`grids.edit.reshape_grid`).

    Returns the new grids, an undo label and the area to zoom to.

    Raises
    ------
    ValidationError
        Nothing to apply the drawing to, or the edit itself refuses.
    """
    if geom.geom_type in ("LineString", "MultiLineString"):
        target = split_target(grids, geom, selected=selected)
        out = edit.split_grid(grids, target, geom, households=households, admin_units=admin_units)
        return out, f"拆分网格 {target}", bounds_of(grids.geometry[grids["grid_id"] == target].iloc[0])
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        if not selected:
            raise ValidationError("没有选中网格", fix="先点击要扩大的网格，再画多边形")
        out = edit.reshape_grid(grids, selected, geom, households=households, admin_units=admin_units)
        return out, f"调整网格 {selected} 的边界", bounds_of(geom)
    raise ValidationError(f"不支持的图形 {geom.geom_type}", fix="画线（拆分）或多边形（调整边界）")


def grid_label(grids: pd.DataFrame) -> dict[str, str]:
    """grid_id → “name（id，n 户）” for selectboxes."""
    name = grids["name"].astype(object).where(grids["name"].notna(), grids["grid_id"])
    return {g: f"{n}（{g}，{int(h)} 户）" for g, n, h in
            zip(grids["grid_id"].astype(str), name, pd.to_numeric(grids["households"], errors="coerce").fillna(0),
                strict=True)}


def selected_title(labels: dict[str, str], grid_id: str | None) -> str:
    """The heading over a page's selected grid (Markdown; the label of :func:`grid_label`, made safe), or the
    hint to click one.

    >>> selected_title({"G1": "一（G1，5 户）"}, "G1"), selected_title({}, None)
    ('**选中的网格：** 一（G1，5 户）', '**选中的网格：** （在地图上点击）')
    """
    return f"**选中的网格：** {markdown(labels[grid_id]) if grid_id in labels else '（在地图上点击）'}"


def households_in(grids: gpd.GeoDataFrame, grid_id: str, households: gpd.GeoDataFrame) -> list[str]:
    """Household ids of one grid (points inside it, hand-moved ones included; moved-out ones excluded)."""
    row = grids[grids["grid_id"] == grid_id]
    if row.empty:
        return []
    hh = households
    pts = hh.geometry
    inside = hh[pts.notna().to_numpy() & pts.within(row.geometry.iloc[0]).to_numpy()]["hh_id"].astype(str).tolist()
    overrides = edit.household_overrides(grids)
    moved_out = set(overrides.loc[overrides["grid_id"] != grid_id, "hh_id"])
    moved_in = overrides.loc[overrides["grid_id"] == grid_id, "hh_id"].tolist()
    return [h for h in inside if h not in moved_out] + moved_in


def held_by_others(grids: pd.DataFrame, team: pd.DataFrame) -> list[str]:
    """Grids of a branch whose staff is not on its team (a leaver's, or unknown): flagged until handed over.

    Examples
    --------
    >>> held_by_others(pd.DataFrame({"grid_id": ["a", "b"], "staff_id": ["S1", "S9"]}), pd.DataFrame({"staff_id": ["S1"]}))
    ['b']
    """
    sid = grids["staff_id"].astype(object)
    return grids.loc[sid.notna().to_numpy() & ~sid.isin(set(team["staff_id"].astype(str))).to_numpy(),
                     "grid_id"].astype(str).tolist()


def change_grids(grids: gpd.GeoDataFrame, change: StaffChange,
                 staff: pd.DataFrame) -> tuple[gpd.GeoDataFrame, list[str], pd.DataFrame]:
    """``grids`` as a previewed staff change would leave them, the ids of the grids it moves, and the staff
    (``staff_id``, ``name``; a newcomer included) who hold them for the map legend."""
    moves = change.moves[change.moves["grid_id"].isin(set(grids["grid_id"].astype(str)))]
    after = dict(zip(moves["grid_id"], moves["after"], strict=True))
    out = grids.assign(staff_id=[after.get(str(g), s) for g, s in zip(grids["grid_id"], grids["staff_id"],
                                                                       strict=True)])
    people = pd.concat([staff[["staff_id", "name"]], pd.DataFrame([{k: change.staff.get(k) for k in
                                                                    ("staff_id", "name")}])], ignore_index=True)
    held = set(out["staff_id"].dropna().astype(str))
    return out, moves["grid_id"].tolist(), people[people["staff_id"].astype(str).isin(held)].drop_duplicates(
        "staff_id", keep="last").reset_index(drop=True)


COMPARE_COLUMNS = {
    "grid_id": "网格编号", "name": "网格名称", "change": "变化", "staff_id": "客户经理", "hh_id": "户号",
    "staff_before": "客户经理（A）", "staff_after": "客户经理（B）", "branch_before": "网点（A）",
    "branch_after": "网点（B）", "households_before": "户数（A）", "households_after": "户数（B）",
    "grid_before": "网格（A）", "grid_after": "网格（B）",
}
"""Column headers of the plan comparison tables (A = the original plan, B = the new one)."""

WHATIF_COLUMNS = {
    "branch_id": "网点", "staff_id": "员工", "grid_id": "网格编号", "code": "网格代码", "name": "网格名称",
    "households": "户数", "staff_before": "客户经理（前）", "staff_after": "客户经理（后）",
    "households_before": "户数（前）", "households_after": "户数（后）", "households_change": "户数变化",
    "mean_distance_m_before": "平均距离米（前）", "mean_distance_m_after": "平均距离米（后）",
    "max_distance_m_before": "最远距离米（前）", "max_distance_m_after": "最远距离米（后）",
    "branch_before": "网点（前）", "branch_after": "网点（后）",
}
"""Chinese headers of the what-if tables (in the branch table ``staff_before``/``staff_after`` are head counts)."""


def plan_labels(plan_list: pd.DataFrame) -> dict[str, str]:
    """Plan id → “name（status，第 n 版）” for the plan pickers (``plan_list``: :func:`grids.plans.list_plans`).

    >>> plan_labels(pd.DataFrame({"plan_id": ["p1"], "name": ["方案一"], "status": ["draft"], "revision": [3]}))
    {'p1': '方案一（草稿，第 3 版）'}
    """
    from grids.model import PLAN_STATUS_NAMES

    return {str(r.plan_id): f"{r.name}（{PLAN_STATUS_NAMES.get(str(r.status), r.status)}，第 {r.revision} 版）"
            for r in plan_list.itertuples()}


def versions_table(plan_list: pd.DataFrame) -> pd.DataFrame:
    """The plan list as the 方案版本 section shows it (name, status, revision, times) with Chinese headers."""
    return plan_list[["name", "status", "revision", "updated_at", "published_at"]].rename(columns={
        "name": "方案", "status": "状态", "revision": "版本", "updated_at": "更新时间", "published_at": "发布时间"})


def compare_grid_table(changed: pd.DataFrame) -> pd.DataFrame:
    """The changed grids of a plan comparison (:func:`grids.edit.compare_plans`) without geometry, each change
    named in Chinese (``edit.CHANGE_LABELS``), with :data:`COMPARE_COLUMNS` headers."""
    table = pd.DataFrame(changed.drop(columns="geometry"))
    table["change"] = [", ".join(edit.CHANGE_LABELS[k] for k in str(c).split(",")) for c in table["change"]]
    return table.rename(columns=COMPARE_COLUMNS)


def compare_metrics(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The four headline figures of a plan comparison: (label, value)."""
    return [("变化的网格", str(summary["grids_changed"])), ("新增 / 删除", f"{summary['added']} / {summary['removed']}"),
            ("换网格或换人的住户", f"{summary['households_moved']:,}"), ("工作量变化的客户经理", str(summary["staff_changed"]))]


DeltaColor = Literal["normal", "inverse", "off"]
"""How ``st.metric`` colours a delta (``inverse``: a rise is bad)."""


def whatif_metrics(summary: dict[str, Any]) -> list[tuple[str, str, str | None, DeltaColor]]:
    """The four headline figures of a what-if (:func:`grids.assign.what_if`'s summary): (label, value, delta,
    delta colour as ``st.metric`` takes it; distances in km, a longer distance shown as worse)."""
    def km(m: float) -> str:
        return f"{m / 1000:.2f} km"

    s = summary
    return [("移动户数", f"{s['households_moved']:,} 户", f"{s['grids_moved']} 个网格改变网点", "off"),
            ("调动员工", f"{s['staff_moved']} 名", None, "normal"),
            ("平均距离", km(s["mean_distance_m_after"]),
             f"{(s['mean_distance_m_after'] - s['mean_distance_m_before']) / 1000:+.2f} km", "inverse"),
            ("最远距离", km(s["max_distance_m_after"]),
             f"{(s['max_distance_m_after'] - s['max_distance_m_before']) / 1000:+.2f} km", "inverse")]


def whatif_caption(summary: dict[str, Any]) -> str:
    """The staff count before → after and who else changes hands, under the what-if figures."""
    s = summary
    return (f"员工 {s['staff_before']} → {s['staff_after']} 名；"
            + ("其余网格的网点和客户经理都不变。" if not s.get("grids_restaffed") else
               f"另有 {s['households_restaffed']:,} 户网点不变、换客户经理。"))


def problem_text(problem: pd.Series, severity: str) -> str:
    """One line of the check list: icon, severity and kind, the message and its fix (data text escaped)."""
    from grids.check import ERROR, PROBLEM_KINDS, SEVERITY_NAMES
    from grids.planmaps import SEVERITY_STYLE

    icon = SEVERITY_STYLE.get(severity, SEVERITY_STYLE[ERROR])[2]
    fix = problem.get("fix") or ""
    return (f"{icon} **{SEVERITY_NAMES.get(severity, '错误')}·{PROBLEM_KINDS.get(str(problem['kind']), '')}**"
            f"　{markdown(problem['message'])}" + (f"  \n修正方法：{markdown(fix)}" if fix else ""))
