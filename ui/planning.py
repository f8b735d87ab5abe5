"""Streamlit helpers of the planning (网格规划) and staffing (人员分配) pages: session keys, cached context,
the edit map and the staff map, turning map output into edits.

Session keys are prefixed ``planning.`` / ``staffing.`` and get their defaults in :func:`init` (called at the
top of both pages). The plan being edited lives in ``planning.history`` (a :class:`grids.edit.History` of grid
GeoDataFrames); the revision it was read at in ``planning.revision`` (saves use it as ``expected_revision``).
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from grids import edit, planflow, plans, planview
from grids.auth import Account
from grids.check import check_plan, severity_of
from grids.errors import GridsError
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


Context = planflow.PlanContext
"""The layers the planning and staffing pages need besides the grids (:func:`context`)."""


@st.cache_resource(max_entries=2, show_spinner="正在读取工作区…")
def context(target: str, rev: int) -> Context:
    """:func:`grids.planflow.read_context` of the workspace at ``rev`` (shared, read-only)."""
    return planflow.read_context(open_workspace(target))


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
    """Ask the library to publish the edited draft (:func:`grids.planflow.publish_draft`; no rerun here: usable as
    a button callback). Conflicts are kept for the page to list; a refusal becomes the notice; a publication
    reloads the plan."""
    from ui import data

    ss = st.session_state
    out = planflow.publish_draft(scoped(ws, acct), ss[PLAN], expected_revision=ss[REVISION],
                                 accept_conflicts=accept_conflicts)
    ss[CONFLICTS] = out.conflicts
    if out.ok:
        load_plan(*data.current(), ss[PLAN])
    if out.ok or out.conflicts is None:
        ss[NOTICE] = ("success" if out.ok else "error", out.message)


def finish(outcome: planflow.Outcome) -> None:
    """Carry out a write's outcome: load the plan it names with its notice and rerun; else show its error here
    (a stale save also keeps the revision now stored, for the page's 载入最新版本)."""
    from ui import data

    if not outcome.ok:
        if outcome.stale is not None:
            st.session_state[STALE] = outcome.stale
        st.error(markdown(outcome.message))
        return
    assert outcome.plan_id is not None  # an ok outcome names its plan (planflow.Outcome)
    load_plan(*data.current(), outcome.plan_id)
    st.session_state[NOTICE] = ("success", outcome.message)
    st.rerun()


def bump() -> None:
    st.session_state[VERSION] += 1


def step(move: Callable[[], object]) -> None:
    """Undo or redo (``move``: the history's :meth:`~grids.edit.History.undo` or ``redo``) and rerun."""
    move()
    bump()
    st.rerun()


def apply(make: Callable[..., planflow.Edit], *args: Any, notice: bool = False, **kwargs: Any) -> None:
    """Record the edit ``make(*args, **kwargs)`` returns in the undo history, zoom to its focus (its label the
    notice when ``notice``) and rerun; show its refusal here."""
    try:
        change = make(*args, **kwargs)
    except GridsError as exc:
        st.error(markdown(str(exc)))
        return
    st.session_state[HISTORY].push(change.grids, change.label)
    if change.focus is not None:
        st.session_state[FOCUS] = tuple(float(v) for v in change.focus)
    if notice:
        st.session_state[NOTICE] = ("success", change.label)
    bump()
    st.rerun()


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
    """Zoom the edit map to problem ``row`` and select its grid (:func:`grids.planflow.problem_focus`); True when
    the view changes."""
    change = planflow.problem_focus(found, row, current=st.session_state[FOCUS])
    if change is not None:
        st.session_state[FOCUS], grid = change
        st.session_state[SELECTED] = grid or st.session_state[SELECTED]
    return change is not None


def new_drawing(out: dict[str, Any]) -> dict[str, Any] | None:
    """The drawing ``st_folium`` returned, when it has not been applied yet."""
    digest = planflow.drawing_key(out.get("last_active_drawing"))
    if digest is None or digest == st.session_state[DRAWN]:
        return None
    st.session_state[DRAWN] = digest
    return out["last_active_drawing"]


@st.cache_data(max_entries=64, show_spinner=False)
def branch_workload(target: str, rev: int, plan_id: str, branch: str, _grids: gpd.GeoDataFrame,
                    _branches: gpd.GeoDataFrame, _team: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Workload metrics of one branch's stored grids (:func:`grids.assign.metrics.assignment_metrics`),
    computed once per workspace revision, plan and branch (the ``_`` arguments follow from those)."""
    from grids.assign.metrics import assignment_metrics

    branch_m, staff_m, _ = assignment_metrics(_grids, _branches[_branches["branch_id"] == branch], staff=_team)
    return branch_m, staff_m
