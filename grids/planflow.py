"""What the planning page (网格规划) decides: which plan the editor opens, what each button may do now, which
grid a click selects and what a drawing or a merge does, the texts that depend on the data, and the sequence of
library calls behind 生成网格, 新建草稿, 保存草稿, 发布, 对比 and 假设分析.

Every function takes its inputs as arguments (the plan list, the undo history, a scoped workspace, a widget's
value) and returns data: the page reads its widgets, calls one of these, and renders or stores the answer.
Tables and figures come from :mod:`grids.planview`, maps from :mod:`grids.planmaps`.

Examples
--------
>>> plan_list = pd.DataFrame({"plan_id": ["p1", "p2", "p3"], "status": ["published", "draft", "archived"]})
>>> plan_picker(plan_list, current="p2")
(['p1', 'p2'], 1)
>>> published_plan(plan_list), default_index(["p1", "p2"], prefer="p1"), default_index(["p1", "p2"], avoid="p1")
('p1', 0, 1)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import pandas as pd

from grids import assign, edit, plans, planview
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS
from grids.check import errors
from grids.errors import GridsError, PublishConflictError, StaleEditError, ValidationError
from grids.landmass import FERRY_CLASS, county_outline
from grids.maps import drawing_to_geometry, point_from_display
from grids.scope import ScopedWorkspace
from grids.text import markdown
from grids.workspace import Workspace

__all__ = ["NOT_A_DRAFT", "ComparisonView", "Edit", "EditView", "Outcome", "PlanContext", "SelectionPanel",
           "StepProgress", "WhatIfForm", "WhatIfView", "build_draft", "can_compare", "can_merge", "clicked_grid",
           "clicked_point", "compare", "comparison_view", "conflicts_text", "default_index", "draft_name",
           "draw_edit", "drawing_key", "edit_view", "merge_edit", "move_edit", "new_draft", "plan_bounds",
           "plan_picker", "plan_to_open", "problem_focus", "publish_draft", "published_plan", "read_context",
           "run_whatif", "save_action", "save_edited_draft", "selection_panel", "shown_comparison", "stale_text",
           "whatif_form", "whatif_moves", "whatif_ready", "whatif_view"]

Point = tuple[float, float]
"""A storage lon/lat position (EPSG:4490)."""

NOT_A_DRAFT = plans.NOT_A_DRAFT
"""Why a drawing on a published plan changes nothing (the library refuses its save too)."""


@dataclass(frozen=True)
class Outcome:
    """What a write of the planning page came to.

    Attributes
    ----------
    ok : bool
        The write happened.
    message : str
        The notice to show after reloading (``ok``), else the error (data text not yet escaped).
    plan_id : str or None
        The plan to load into the editor next (``ok`` only).
    stale : int or None
        After a save refused as stale: the revision now stored (the page offers to load it).
    conflicts : list of dict or None
        After a publication refused for conflicts with live reassignments: what they are.
    """

    ok: bool
    message: str
    plan_id: str | None = None
    stale: int | None = None
    conflicts: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.ok and not self.plan_id:
            raise ValueError("a write that happened names the plan to load")


@dataclass(frozen=True)
class Edit:
    """A new state of the edited plan: its grids, the undo label and the area to zoom to (None: keep the view)."""

    grids: gpd.GeoDataFrame
    label: str
    focus: tuple[float, float, float, float] | None = None


@dataclass
class PlanContext:
    """The layers the planning and staffing pages need besides the grids (:func:`read_context`)."""

    admin: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    staff: pd.DataFrame
    branches: gpd.GeoDataFrame
    urban: gpd.GeoDataFrame
    plans: pd.DataFrame
    ferries: gpd.GeoDataFrame | None = None


def read_context(ws: Workspace) -> PlanContext:
    """Admin units, household locations (``hh_id`` and village/group codes: no personal data), staff, branches,
    urban areas, ferry links (they join islands in the checks and the what-if) and the plan list of ``ws``."""
    def geo(layer: str, **kw: Any) -> gpd.GeoDataFrame:  # layers with geometry (ws.read is typed as a DataFrame)
        return cast(gpd.GeoDataFrame, ws.read(layer, **kw))

    return PlanContext(admin=geo("admin_units"), households=geo("households", columns=["hh_id", "village_code",
                                                                                       "group_code"]),
                       staff=ws.read("staff"), branches=geo("branches"), urban=geo("urban_areas"),
                       plans=plans.list_plans(ws),
                       ferries=geo("streets", where='"class" = ?', params=(FERRY_CLASS,), columns=["class"]))


# --------------------------------------------------------------------------------------------------------
# 生成网格 and 方案版本
# --------------------------------------------------------------------------------------------------------


def draft_name(prefix: str, now: pd.Timestamp | None = None) -> str:
    """The name a new plan starts with: ``prefix`` and the month, day, hour and minute (now by default).

    Examples
    --------
    >>> draft_name("草稿-", pd.Timestamp("2024-05-06 07:08"))
    '草稿-05060708'
    """
    return prefix + (pd.Timestamp.now() if now is None else now).strftime("%m%d%H%M")


class StepProgress:
    """The build's ``progress`` callback for a progress bar: each message is one more of about ``steps``
    steps; the bar stops at ``cap`` until the build returns.

    Examples
    --------
    >>> shown = []
    >>> say = StepProgress(lambda done, text: shown.append((done, text)), steps=4, cap=0.6)
    >>> for text in "abc":
    ...     say(text)
    >>> shown
    [(0.25, 'a'), (0.5, 'b'), (0.6, 'c')]
    """

    def __init__(self, show: Callable[[float, str], object], *, steps: int = 10, cap: float = 0.95) -> None:
        self.show, self.steps, self.cap, self.done = show, steps, cap, 0

    def __call__(self, text: str) -> None:
        self.done += 1
        self.show(min(self.cap, self.done / self.steps), text)


def build_draft(scoped: ScopedWorkspace, *, name: str, min_households: int, max_households: int, assign: bool,
                progress: Callable[[str], None] | None = None) -> Outcome:
    """生成网格: build a draft (and assign it) for the signed-in account; the outcome names the draft to edit."""
    try:
        pid = scoped.build_plan(name=name, min_households=int(min_households), max_households=int(max_households),
                                assign=assign, progress=progress)
    except GridsError as exc:
        return Outcome(False, str(exc))
    return Outcome(True, f"已生成草稿方案 “{name}”，可在“编辑”中修改", plan_id=pid)


def published_plan(plan_list: pd.DataFrame) -> str | None:
    """The published plan of a plan list (:func:`grids.plans.list_plans`), or None."""
    published = plan_list.loc[plan_list["status"] == "published", "plan_id"]
    return str(published.iloc[0]) if len(published) else None


def new_draft(scoped: ScopedWorkspace, plan_list: pd.DataFrame, *, name: str) -> Outcome:
    """从已发布方案新建草稿: a draft copied from the published plan; the outcome names it."""
    source = published_plan(plan_list)
    if source is None:
        return Outcome(False, "还没有已发布方案：先发布一个方案，再从它新建草稿")
    try:
        pid = scoped.new_draft(source, name=name)
    except GridsError as exc:
        return Outcome(False, str(exc))
    return Outcome(True, f"已从已发布方案新建草稿 “{name}”", plan_id=pid)


def default_index(ids: Sequence[str], *, prefer: str | None = None, avoid: str | None = None) -> int:
    """Where a plan picker starts: at ``prefer`` when listed; else at the first plan, or at the second when the
    first is ``avoid`` (the plan picked beside it).

    Examples
    --------
    >>> default_index(["a", "b"], prefer="b"), default_index(["a", "b"], avoid="a"), default_index(["a"], avoid="a")
    (1, 1, 0)
    """
    if prefer is not None and prefer in ids:
        return list(ids).index(prefer)
    return min(1, len(ids) - 1) if len(ids) and ids[0] == avoid else 0


def can_compare(plan_a: str | None, plan_b: str | None) -> bool:
    """Two different plans are picked.

    >>> can_compare("a", "b"), can_compare("a", "a"), can_compare(None, "b")
    (True, False, False)
    """
    return plan_a is not None and plan_b is not None and plan_a != plan_b


def compare(plan_a: str, plan_b: str, grids_of: Callable[[str], gpd.GeoDataFrame], *,
            households: gpd.GeoDataFrame | None,
            admin_units: gpd.GeoDataFrame | None) -> tuple[str, str, edit.PlanComparison]:
    """对比: :func:`grids.edit.compare_plans` of two stored plans (``grids_of(plan_id)`` reads one), held with
    the two ids it compares."""
    return plan_a, plan_b, edit.compare_plans(grids_of(plan_a), grids_of(plan_b), households=households,
                                              admin_units=admin_units)


def shown_comparison(held: Sequence[Any] | None, plan_a: str | None,
                     plan_b: str | None) -> edit.PlanComparison | None:
    """The held comparison (:func:`compare`) when it is of the two plans picked now, else None.

    >>> shown_comparison(("a", "b", "cmp"), "a", "b"), shown_comparison(("a", "b", "cmp"), "a", "c")
    ('cmp', None)
    """
    if held is None or tuple(held[:2]) != (plan_a, plan_b):
        return None
    result: edit.PlanComparison = held[2]
    return result


@dataclass(frozen=True)
class ComparisonView:
    """The comparison as the page shows it: headline figures, changed grids, workload changes, households."""

    metrics: list[tuple[str, str]]
    grids: pd.DataFrame
    workload: pd.DataFrame
    households_title: str
    households: pd.DataFrame


def comparison_view(cmp: edit.PlanComparison, *, rows: int = 2000) -> ComparisonView:
    """The tables and figures of a plan comparison with Chinese headers; at most ``rows`` households listed."""
    return ComparisonView(
        metrics=planview.compare_metrics(cmp.summary), grids=planview.compare_grid_table(cmp.grids),
        workload=cmp.workload.rename(columns=planview.COMPARE_COLUMNS),
        households_title=f"**换网格或换人的住户：{len(cmp.households):,} 户**",
        households=cmp.households.head(rows).rename(columns=planview.COMPARE_COLUMNS))


# --------------------------------------------------------------------------------------------------------
# 假设分析
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatIfForm:
    """The what-if controls: the line above them, the branches one may close (None: none), where the new
    branch stands, how many customer managers it starts with by default (a branch's median team), and whether
    it stands anywhere yet (its head count and 清除新网点 need it)."""

    intro: str
    close_options: dict[str | None, str]
    point_text: str
    team_size: int
    has_point: bool


def whatif_form(branches: pd.DataFrame, staff: pd.DataFrame, *, point: Point | None, base_plan: str,
                labels: Mapping[str, str]) -> WhatIfForm:
    """The what-if controls for the published plan ``base_plan`` (``labels``: :func:`grids.planview.plan_labels`).

    Examples
    --------
    >>> f = whatif_form(pd.DataFrame({"branch_id": ["B1"], "name": ["林东"]}),
    ...                 pd.DataFrame({"staff_id": ["s1", "s2"], "branch_id": ["B1", "B1"], "role": "客户经理"}),
    ...                 point=(119.5, 43.25), base_plan="p1", labels={"p1": "主方案"})
    >>> f.close_options, f.point_text, f.team_size
    ({None: '（不关闭）', 'B1': 'B1 林东'}, '新网点位置：119.50000, 43.25000', 2)
    """
    ids = branches["branch_id"].astype(str).tolist()
    close: dict[str | None, str] = {None: "（不关闭）"}
    close.update((b, f"{b} {n}") for b, n in zip(ids, branches["name"].astype(str), strict=True))
    return WhatIfForm(
        intro=f"基于方案 {markdown(labels.get(base_plan, base_plan))}：在地图上点击放置新网点，或选择要关闭的网点。",
        close_options=close,
        point_text=f"新网点位置：{point[0]:.5f}, {point[1]:.5f}" if point else "新网点：（在地图上点击）",
        team_size=assign.default_new_branch_staff(staff), has_point=point is not None)


def clicked_point(click: Mapping[str, Any] | None, current: Point | None, *, basemap: str) -> Point | None:
    """The new branch's position from a map click (``st_folium``'s ``last_clicked``, display coordinates),
    or None when there is no click or it is where the new branch already stands.

    Examples
    --------
    >>> clicked_point({"lng": 119.5, "lat": 43.2}, None, basemap="offline")
    (119.5, 43.2)
    >>> clicked_point({"lng": 119.5, "lat": 43.2}, (119.5, 43.2), basemap="offline") is None
    True
    """
    if not click or click.get("lat") is None:
        return None
    p = point_from_display(click["lng"], click["lat"], basemap=basemap)
    if current is not None and max(abs(p[0] - current[0]), abs(p[1] - current[1])) <= 1e-9:
        return None
    return p


def whatif_moves(result: assign.WhatIfResult | None) -> list[str] | None:
    """The grids a computed what-if moves to another branch (outlined on the map); None before any result."""
    return None if result is None else result.moves["grid_id"].tolist()


def whatif_ready(point: Point | None, close: str | None) -> bool:
    """计算 needs a new branch or a branch to close.

    >>> whatif_ready(None, None), whatif_ready(None, "B1"), whatif_ready((119.0, 43.0), None)
    (False, True, True)
    """
    return point is not None or close is not None


def run_whatif(ws: Workspace, base: gpd.GeoDataFrame, *, branches: gpd.GeoDataFrame, staff: pd.DataFrame,
               ferries: gpd.GeoDataFrame | None, point: Point | None, close: str | None,
               new_branch_staff: int) -> assign.WhatIfResult:
    """计算: :func:`grids.assign.what_if` of the plan ``base`` with the distance the workspace's assignment uses
    (roads: its streets; straight: ferries join islands) inside the county outline.

    Raises
    ------
    GridsError
        The scenario cannot be computed (the message says why).
    """
    by = assign.default_by(ws.meta)
    streets = ws.read("streets") if by == "road" else ferries
    return assign.what_if(base, branches, staff, add_branch=point, close_branch=close,
                          new_branch_staff=int(new_branch_staff), by=by, outline=county_outline(ws),
                          streets=streets if streets is not None and len(streets) else None)


@dataclass(frozen=True)
class WhatIfView:
    """A what-if result as the page shows it: the scenario in words, four figures, the caption, the tables."""

    lines: list[str]
    metrics: list[tuple[str, str, str | None, planview.DeltaColor]]
    caption: str
    tables: list[pd.DataFrame] = field(default_factory=list)


def whatif_view(result: assign.WhatIfResult) -> WhatIfView:
    """Branches before/after, the people who change branch (when any) and the grids that move, headed in Chinese."""
    branch_heads = {**planview.WHATIF_COLUMNS, "staff_before": "客户经理人数（前）", "staff_after": "客户经理人数（后）"}
    tables = [result.branches.rename(columns=branch_heads)]
    if len(result.staff_moves):
        tables.append(result.staff_moves.rename(columns=planview.WHATIF_COLUMNS))
    tables.append(result.moves.rename(columns=planview.WHATIF_COLUMNS))
    return WhatIfView(lines=["· " + markdown(line) for line in result.summary["scenario"]],
                      metrics=planview.whatif_metrics(result.summary), caption=planview.whatif_caption(result.summary),
                      tables=tables)


# --------------------------------------------------------------------------------------------------------
# 编辑
# --------------------------------------------------------------------------------------------------------


def plan_picker(plan_list: pd.DataFrame, current: str | None) -> tuple[list[str], int]:
    """The plans the editor offers (all but archived ones, in list order) and where ``current`` is among them
    (0 when it is not)."""
    ids = plan_list.loc[plan_list["status"] != "archived", "plan_id"].astype(str).tolist()
    return ids, ids.index(current) if current in ids else 0


def plan_to_open(ws: Workspace, plan_list: pd.DataFrame, current: str | None) -> str | None:
    """The plan the editor loads when it holds none of the listed plans (a first visit, a plan gone): the first
    draft, else the workspace's current plan (:func:`grids.plans.resolve_plan`). None when ``current`` is listed.

    Raises
    ------
    ValidationError
        No draft and no published plan (only archived ones).
    """
    if current in set(plan_list["plan_id"].astype(str)):
        return None
    drafts = plan_list.loc[plan_list["status"] == "draft", "plan_id"]
    return str(drafts.iloc[0]) if len(drafts) else plans.resolve_plan(ws)


def plan_bounds(info: Mapping[str, Any]) -> tuple[int, int]:
    """The households per grid a plan was built for (its ``params``; the defaults when it has none).

    >>> plan_bounds({"params": {"min_households": 80, "max_households": "300"}})
    (80, 300)
    """
    params = info.get("params") or {}
    return (int(params.get("min_households", DEFAULT_MIN_HOUSEHOLDS)),
            int(params.get("max_households", DEFAULT_MAX_HOUSEHOLDS)))


@dataclass(frozen=True)
class EditView:
    """The edit area's state: figures, which buttons work, the status line, the check header, the history.

    ``metrics`` are (label, value, delta); ``check_ok`` is the all-clear line, None while errors remain.
    """

    is_draft: bool
    dirty: bool
    n_errors: int
    metrics: list[tuple[str, int | str, str | None]]
    can_undo: bool
    can_redo: bool
    can_save: bool
    can_publish: bool
    status: str
    check_title: str
    check_ok: str | None
    history_title: str
    history_lines: list[str]


def edit_view(info: Mapping[str, Any], history: edit.History, found: pd.DataFrame) -> EditView:
    """What the edit area shows for plan ``info`` (:func:`grids.plans.plan_info`), its undo ``history`` and the
    problems :func:`grids.check.check_plan` found in the current state.

    Only a draft is saved (when it has unsaved edits) or published (when saved and without errors; warnings do
    not block).
    """
    is_draft = info["status"] == "draft"
    dirty = history.position > 0
    n_errors = len(errors(found))
    n_warnings = len(found) - n_errors
    totals = edit.grid_totals(history.current)
    return EditView(
        is_draft=is_draft, dirty=dirty, n_errors=n_errors,
        metrics=[("网格", f"{totals['grids']:,}", None), ("住户", f"{totals['households']:,}", None),
                 ("每格最少", totals["min"], None), ("中位数", f"{totals['median']:.0f}", None),
                 ("最多", totals["max"], None), ("检查错误", n_errors, "可发布" if not n_errors else "需修正"),
                 ("检查警告", n_warnings, "不影响发布")],
        can_undo=history.can_undo, can_redo=history.can_redo, can_save=is_draft and dirty,
        can_publish=is_draft and not dirty and not n_errors,
        status=(f"当前：{markdown(history.label)}" + ("（有未保存的修改）" if dirty else "")
                + ("" if is_draft else "　已发布方案不能直接修改：请在“方案版本”中新建草稿")),
        check_title=f"**检查（{n_errors} 个错误，{n_warnings} 个警告）**",
        check_ok=None if n_errors else "全覆盖、无重叠、每格有人负责" + ("；警告不影响发布" if len(found) else ""),
        history_title=f"编辑记录（{history.position} 步）",
        history_lines=[("▶ " if i == history.position else "　") + markdown(label)
                       for i, label in enumerate(history.labels)])


def save_action(history: edit.History) -> str:
    """The audit action of a save: the edits up to the current state (at most 200 characters of them).

    >>> h = edit.History()
    >>> for label in ("载入第 1 版", "合并网格 a、b", "拆分网格 c"):
    ...     h.push(None, label)
    >>> save_action(h)
    '编辑网格方案：合并网格 a、b；拆分网格 c'
    """
    return "编辑网格方案：" + "；".join(history.labels[1:history.position + 1])[:200]


def save_edited_draft(scoped: ScopedWorkspace, plan_id: str, history: edit.History, *,
               base: gpd.GeoDataFrame) -> Outcome:
    """保存草稿: the current state of ``history``, judged against ``base`` (the grids as loaded). A save refused
    because grids changed meanwhile names the revision now stored."""
    try:
        new_rev = scoped.save_plan_edits(plan_id, history.current, base=base, action=save_action(history))
    except StaleEditError as exc:
        return Outcome(False, str(exc), stale=int(plans.plan_info(scoped.ws, plan_id)["revision"]))
    except GridsError as exc:
        return Outcome(False, str(exc))
    return Outcome(True, f"已保存为第 {new_rev} 版", plan_id=plan_id)


def publish_draft(scoped: ScopedWorkspace, plan_id: str, *, expected_revision: int | None,
                  accept_conflicts: bool) -> Outcome:
    """发布: publish the draft as seen at ``expected_revision``. Conflicts with live reassignments come back to
    be listed (publishing again with ``accept_conflicts`` overrides them); a publication that carried live
    reassignments in (its revision moved on) says so."""
    try:
        new_rev = scoped.publish_plan(plan_id, expected_revision=expected_revision,
                                      accept_conflicts=accept_conflicts)
    except PublishConflictError as exc:
        return Outcome(False, str(exc), conflicts=list(exc.conflicts))
    except GridsError as exc:
        return Outcome(False, str(exc))
    carried = new_rev > (expected_revision or 0)
    return Outcome(True, "方案已发布，原已发布方案已归档"
                   + ("；草稿建立后网点主任在已发布方案上的改派已并入（明细见审计）" if carried else ""), plan_id=plan_id)


def conflicts_text(conflicts: Sequence[Mapping[str, Any]], *, limit: int = 20) -> str:
    """The warning listing (at most ``limit``) conflicts of a refused publication, data text escaped.

    >>> conflicts_text([{"message": "网格 *G1*"}])
    '草稿建立后，已发布方案上有改派与草稿的修改落在同一网格（未发布）：  \\n· 网格 \\\\*G1\\\\*'
    """
    return ("草稿建立后，已发布方案上有改派与草稿的修改落在同一网格（未发布）：  \n"
            + "  \n".join("· " + markdown(c["message"]) for c in conflicts[:limit]))


def stale_text(stored: int, editing: int | None) -> str:
    """The warning after a stale save: the revision stored now and the one being edited.

    >>> stale_text(5, 3).split("。")[0]
    '数据库里的方案已是第 5 版（你编辑的是第 3 版）'
    """
    return (f"数据库里的方案已是第 {stored} 版（你编辑的是第 {editing} 版）。"
            "载入最新版会丢弃你未保存的修改；也可以先对比两版再决定。")


def problem_focus(found: gpd.GeoDataFrame, row: int, *,
                  current: Sequence[float] | None) -> tuple[tuple[float, float, float, float], str | None] | None:
    """Where 定位 on problem ``row`` (of :func:`grids.check.check_plan`'s ``found``) takes the edit map: the
    problem's padded bounds and its first grid (to select; None when it names none). None when the problem has no
    place or the map is there already.

    Examples
    --------
    >>> import shapely
    >>> found = gpd.GeoDataFrame({"grid_ids": [["G1", "G2"]]}, geometry=[shapely.box(119, 43, 119.1, 43.1)], crs=4490)
    >>> problem_focus(found, 0, current=None)[1]
    'G1'
    >>> problem_focus(found, 0, current=problem_focus(found, 0, current=None)[0]) is None
    True
    """
    box = planview.bounds_of(found.geometry.iloc[row])
    if box is None:
        return None
    focus = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    if current is not None and focus == tuple(current):
        return None
    ids = found["grid_ids"].iloc[row]
    return focus, (str(ids[0]) if ids else None)


def clicked_grid(picked: str | None, selected: str | None) -> str | None:
    """The selected grid after a map click: the grid clicked, else (a click beside every grid, no click) the
    one selected before.

    >>> clicked_grid("G2", "G1"), clicked_grid(None, "G1")
    ('G2', 'G1')
    """
    return picked or selected


def drawing_key(feature: Mapping[str, Any] | None) -> str | None:
    """A fingerprint of a drawn shape's geometry (a drawing is applied once), or None for no drawing.

    >>> drawing_key(None), drawing_key({"geometry": {"type": "Point", "coordinates": [1, 2]}})[:8]
    (None, '1f144f19')
    """
    if not feature:
        return None
    return hashlib.sha1(json.dumps(feature.get("geometry"), sort_keys=True).encode()).hexdigest()


def draw_edit(grids: gpd.GeoDataFrame, feature: Mapping[str, Any], *, basemap: str, is_draft: bool,
              selected: str | None, households: gpd.GeoDataFrame, admin_units: gpd.GeoDataFrame) -> Edit:
    """A shape drawn on the edit map (GeoJSON in display coordinates) as an edit of a draft: a line splits the
    grid it crosses, a polygon reshapes the selected grid (:func:`grids.planview.apply_geometry`).

    Raises
    ------
    ValidationError
        The plan is not a draft (:data:`NOT_A_DRAFT`), or the drawing cannot be applied.
    """
    if not is_draft:
        raise ValidationError(NOT_A_DRAFT)
    new, label, focus = planview.apply_geometry(grids, drawing_to_geometry(feature, basemap=basemap),
                                                selected=selected, households=households, admin_units=admin_units)
    return Edit(new, label, focus)


@dataclass(frozen=True)
class SelectionPanel:
    """The panel beside the edit map: the selected grid (when it exists), its heading, the grids the merge
    picker starts with, whether its households can be moved (a draft only) and the grids they can move to."""

    selected: str | None
    title: str
    merge_default: list[str]
    can_move: bool
    move_targets: list[str]


def selection_panel(names: Mapping[str, str], selected: str | None, *, is_draft: bool) -> SelectionPanel:
    """The selection panel for the grids ``names`` (:func:`grids.planview.grid_label`).

    >>> p = selection_panel({"a": "甲", "b": "乙"}, "a", is_draft=True)
    >>> p.title, p.merge_default, p.can_move, p.move_targets
    ('**选中的网格：** 甲', ['a'], True, ['b'])
    >>> selection_panel({"a": "甲"}, "gone", is_draft=True).title
    '**选中的网格：** （在地图上点击）'
    """
    sel = selected if selected in names else None
    return SelectionPanel(selected=sel,
                          title=planview.selected_title(dict(names), sel),
                          merge_default=[sel] if sel else [], can_move=bool(sel) and is_draft,
                          move_targets=[g for g in names if g != sel])


def can_merge(ids: Sequence[str], *, is_draft: bool) -> bool:
    """合并所选网格 needs a draft and at least two grids picked.

    >>> can_merge(["a", "b"], is_draft=True), can_merge(["a"], is_draft=True), can_merge(["a", "b"], is_draft=False)
    (True, False, False)
    """
    return len(ids) >= 2 and is_draft


def merge_edit(grids: gpd.GeoDataFrame, ids: Sequence[str]) -> Edit:
    """合并所选网格: the merged plan, zoomed to the grids merged.

    Raises
    ------
    ValidationError
        :func:`grids.edit.merge_grids` refuses (fewer than two grids, not adjacent, other towns…).
    """
    new = edit.merge_grids(grids, list(ids))
    return Edit(new, f"合并网格 {'、'.join(ids)}", planview.bounds_of(grids[grids["grid_id"].isin(ids)].union_all()))


def move_edit(grids: gpd.GeoDataFrame, hh_ids: Sequence[str], *, from_grid: str, to_grid: str) -> Edit:
    """调整住户归属: households moved by hand from one grid to another (the view stays).

    Raises
    ------
    ValidationError
        :func:`grids.edit.move_households_in_plan` refuses.
    """
    new = edit.move_households_in_plan(grids, list(hh_ids), from_grid=from_grid, to_grid=to_grid)
    return Edit(new, f"{len(hh_ids)} 户从 {from_grid} 调到 {to_grid}")
