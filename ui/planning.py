"""Streamlit helpers of the planning (网格规划) and staffing (人员分配) pages: session keys, cached context,
the edit map and the staff map, turning map output into edits.

Session keys are prefixed ``planning.`` / ``staffing.`` and get their defaults in :func:`init` (called at the
top of both pages). The plan being edited lives in ``planning.history`` (a :class:`grids.edit.History` of grid
GeoDataFrames); the revision it was read at in ``planning.revision`` (saves use it as ``expected_revision``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, cast

import geopandas as gpd
import pandas as pd
import streamlit as st

from grids import edit, plans, planview
from grids.auth import Account
from grids.check import check_plan, severity_of
from grids.errors import GridsError, PublishConflictError
from grids.landmass import FERRY_CLASS
from grids.text import markdown
from grids.workspace import Workspace, open_workspace
from ui.state import (
    BASE,
    COMPARE,
    CONFLICTS,
    DRAWN,
    FOCUS,
    HISTORY,
    NOTICE,
    PLAN,
    PLANNING_DEFAULTS,
    PROBLEM_PAGE,
    PROBLEMS,
    REVISION,
    SELECTED,
    STALE,
    TOKEN,
    VERSION,
)

PROBLEMS_PER_PAGE = 20
"""Rows of the check list shown at once (each has its own zoom button)."""


def init() -> None:
    """Defaults of the planning/staffing keys (once per session)."""
    for key, value in PLANNING_DEFAULTS.items():
        st.session_state.setdefault(key, copy.deepcopy(value))
    if st.session_state[TOKEN] is None:
        st.session_state[TOKEN] = uuid.uuid4().hex


def page_setup() -> tuple[Account, str, int, Workspace, Context, str]:
    """Shared start of the planning and staffing pages: sign-in first (nothing is read before it), then the
    session defaults, the workspace, its plan context and the basemap.

    Returns ``(account, target, revision, workspace, context, basemap)``.
    """
    from ui import auth, data
    from ui.state import BASEMAP

    acct = auth.current_account()  # a page opened without sign-in stops here
    init()
    target, rev = data.current()
    # the sidebar widget owns the basemap key (absent when a test runs the page alone)
    basemap = st.session_state.get(BASEMAP) or "offline"
    return acct, target, rev, open_workspace(target), context(target, rev), basemap


def scoped(ws: Any, acct: Account) -> Any:
    """The account's :class:`grids.scope.ScopedWorkspace` for a write (plans exist when the page writes)."""
    from grids.scope import ScopedWorkspace

    return ScopedWorkspace(ws, acct, plan=st.session_state[PLAN])


def scoped_any(ws: Any, acct: Account) -> Any:
    """The account's :class:`grids.scope.ScopedWorkspace`, also in a workspace without any plan yet."""
    from grids.scope import ScopedWorkspace

    return ScopedWorkspace(ws, acct, require_plan=False)


def notice(key: str = NOTICE) -> None:
    """Show (once) the message an action left before its rerun."""
    msg = st.session_state.get(key)
    if msg:
        getattr(st, msg[0])(markdown(msg[1]))
        st.session_state[key] = None


# --------------------------------------------------------------------------------------------------------
# workspace context (read once per revision, shared)
# --------------------------------------------------------------------------------------------------------


@dataclass
class Context:
    """The layers the planning page needs besides the grids."""

    admin: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    staff: pd.DataFrame
    branches: gpd.GeoDataFrame
    urban: gpd.GeoDataFrame
    plans: pd.DataFrame
    ferries: gpd.GeoDataFrame | None = None


@st.cache_resource(max_entries=2, show_spinner="正在读取工作区…")
def context(target: str, rev: int) -> Context:
    """Admin units, household locations, staff, branches, urban area, ferry links and the plan list at ``rev``."""
    ws = open_workspace(target)
    def geo(layer: str, **kw: Any) -> gpd.GeoDataFrame:  # layers with geometry (ws.read is typed as a DataFrame)
        return cast(gpd.GeoDataFrame, ws.read(layer, **kw))

    return Context(admin=geo("admin_units"), households=geo("households", columns=["hh_id", "village_code", "group_code"]),
                   staff=ws.read("staff"), branches=geo("branches"), urban=geo("urban_areas"), plans=plans.list_plans(ws),
                   ferries=geo("streets", where='"class" = ?', params=(FERRY_CLASS,), columns=["class"]))


@st.cache_resource(max_entries=4, show_spinner="正在读取方案…")
def stored_grids(target: str, rev: int, plan_id: str) -> gpd.GeoDataFrame:
    """A stored plan's grids at workspace revision ``rev`` (shared, read-only)."""
    return plans.read_grids(open_workspace(target), plan_id)


def load_plan(target: str, rev: int, plan_id: str) -> None:
    """Start editing ``plan_id``: history reset to its stored grids, revision remembered."""
    info = plans.plan_info(open_workspace(target), plan_id)
    history = edit.History()
    base = stored_grids(target, rev, plan_id)
    history.reset(base, f"载入第 {info['revision']} 版")
    st.session_state.update({PLAN: plan_id, HISTORY: history, BASE: base, REVISION: info["revision"], SELECTED: None,
                             FOCUS: None, STALE: None, COMPARE: None, CONFLICTS: None})
    bump()


def publish(ws: Any, acct: Account, *, accept_conflicts: bool) -> None:
    """Ask the library to publish the edited draft (no rerun here: usable as a button callback).

    Conflicts with the live plan are kept for the page to list (with a button to accept the draft's version);
    another refusal becomes the page's notice; a publication reloads the plan (carried reassignments bump it).
    """
    from ui import data

    ss = st.session_state
    try:
        new_rev = scoped(ws, acct).publish_plan(ss[PLAN], expected_revision=ss[REVISION],
                                                accept_conflicts=accept_conflicts)
    except PublishConflictError as exc:
        ss[CONFLICTS] = exc.conflicts
        return
    except GridsError as exc:
        ss[CONFLICTS] = None
        ss[NOTICE] = ("error", str(exc))
        return
    carried = new_rev > (ss[REVISION] or 0)
    load_plan(*data.current(), ss[PLAN])
    ss[NOTICE] = ("success", "方案已发布，原已发布方案已归档"
                  + ("；草稿建立后网点主任在已发布方案上的改派已并入（明细见审计）" if carried else ""))


def bump() -> None:
    st.session_state[VERSION] += 1


def push(grids: gpd.GeoDataFrame, label: str, *, focus: tuple | None = None) -> None:
    """Record an edit (undo-able) and zoom the map to ``focus``."""
    st.session_state[HISTORY].push(grids, label)
    if focus is not None:
        st.session_state[FOCUS] = tuple(float(v) for v in focus)
    bump()


def problems(grids: gpd.GeoDataFrame, ctx: Context, *, min_households: int,
             max_households: int) -> gpd.GeoDataFrame:
    """:func:`grids.check.check_plan` of an edited state (errors, then warnings), computed once per state."""
    memo = st.session_state.setdefault(PROBLEMS, {})
    bounds = (min_households, max_households)
    # the memo holds the state it checked, so it cannot be mistaken for another
    if memo.get("grids") is not grids or memo.get("bounds") != bounds:
        memo.update(grids=grids, bounds=bounds,
                    found=check_plan(grids, admin_units=ctx.admin, households=ctx.households, staff=ctx.staff,
                                     urban_areas=ctx.urban, streets=ctx.ferries, branches=ctx.branches,
                                     min_households=min_households, max_households=max_households))
    return memo["found"]


def problem_list(found: gpd.GeoDataFrame) -> int | None:
    """The check list: errors, then warnings, each with its reason and fix (data text escaped) and a 定位 button.

    Shows :data:`PROBLEMS_PER_PAGE` rows at a time. Returns the position (in ``found``) of the row whose button
    was clicked in this run, else None.
    """
    n = len(found)
    pages = math.ceil(n / PROBLEMS_PER_PAGE)
    page = 1
    if pages > 1:
        if st.session_state.get(PROBLEM_PAGE, 1) > pages:  # the list got shorter since the page was chosen
            st.session_state[PROBLEM_PAGE] = pages
        page = int(st.number_input(f"页（共 {pages} 页，每页 {PROBLEMS_PER_PAGE} 个）", 1, pages, 1,
                                   key=PROBLEM_PAGE))
    severity = severity_of(found).to_numpy()
    clicked = None
    with st.container(height=420, border=False):
        for i in range(PROBLEMS_PER_PAGE * (page - 1), min(n, PROBLEMS_PER_PAGE * page)):
            row = found.iloc[i]
            st.markdown(planview.problem_text(row, severity[i]))
            where = row.geometry
            if st.button("定位", key=f"planning.zoom.{i}", icon=":material/my_location:",
                         disabled=where is None or where.is_empty, help="把地图缩放到这个问题"):
                clicked = i
    return clicked


def focus_problem(found: gpd.GeoDataFrame, row: int) -> bool:
    """Zoom the edit map to problem ``row`` and select its (first) grid; True when the view changes."""
    box = planview.bounds_of(found.geometry.iloc[row])
    focus = None if box is None else tuple(float(v) for v in box)
    if focus is None or focus == st.session_state[FOCUS]:
        return False
    st.session_state[FOCUS] = focus
    ids = found["grid_ids"].iloc[row]
    if ids:
        st.session_state[SELECTED] = ids[0]
    return True


def new_drawing(out: dict[str, Any]) -> dict[str, Any] | None:
    """The drawing ``st_folium`` returned, when it has not been applied yet."""
    feature = out.get("last_active_drawing")
    if not feature:
        return None
    digest = hashlib.sha1(json.dumps(feature.get("geometry"), sort_keys=True).encode()).hexdigest()
    if digest == st.session_state[DRAWN]:
        return None
    st.session_state[DRAWN] = digest
    return feature


@st.cache_data(max_entries=64, show_spinner=False)
def branch_workload(target: str, rev: int, plan_id: str, branch: str, _grids: gpd.GeoDataFrame,
                    _branches: gpd.GeoDataFrame, _team: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Workload metrics of one branch's stored grids (:func:`grids.assign.metrics.assignment_metrics`),
    computed once per workspace revision, plan and branch (the ``_`` arguments follow from those)."""
    from grids.assign.metrics import assignment_metrics

    branch_m, staff_m, _ = assignment_metrics(_grids, _branches[_branches["branch_id"] == branch], staff=_team)
    return branch_m, staff_m
