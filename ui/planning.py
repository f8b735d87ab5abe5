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
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from grids import edit, planmaps, plans, planview
from grids.auth import Account
from grids.check import ERROR, PROBLEM_KINDS, SEVERITY_NAMES, check_plan, severity_of
from grids.errors import GridsError, PublishConflictError
from grids.landmass import FERRY_CLASS
from grids.text import markdown
from grids.workspace import open_workspace
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
    STAFF_CHANGE,
    STAFF_NOTICE,
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


def account() -> Account:
    """The signed-in account; a page opened without sign-in stops here (see ui.auth.current_account)."""
    from ui import auth

    return auth.current_account()


def page_setup() -> tuple[Account, str, int, Any, Any, str]:
    """Shared start of the planning and staffing pages: sign-in first (nothing is read before it), then the
    session defaults, the workspace, its plan context and the basemap.

    Returns ``(account, target, revision, workspace, context, basemap)``.
    """
    from grids.workspace import open_workspace
    from ui import data
    from ui.state import BASEMAP

    acct = account()
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
    return Context(admin=ws.read("admin_units"),
                   households=ws.read("households", columns=["hh_id", "village_code", "group_code"]),
                   staff=ws.read("staff"), branches=ws.read("branches"), urban=ws.read("urban_areas"),
                   plans=plans.list_plans(ws),
                   ferries=ws.read("streets", where='"class" = ?', params=(FERRY_CLASS,), columns=["class"]))


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
            icon = planmaps.SEVERITY_STYLE.get(severity[i], planmaps.SEVERITY_STYLE[ERROR])[2]
            fix = row["fix"] if "fix" in found.columns else ""
            st.markdown(f"{icon} **{SEVERITY_NAMES.get(severity[i], '错误')}·{PROBLEM_KINDS.get(row['kind'], '')}**"
                        f"　{markdown(row['message'])}" + (f"  \n修正方法：{markdown(fix)}" if fix else ""))
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


LIFECYCLE_MODES = ("新增客户经理", "登记离职", "调到其他网点")


def _keep_change(sw: Any, all_grids: pd.DataFrame, action: str, params: dict[str, Any]) -> None:
    """Compute a change (scope decided by the library) and keep it, with the grid versions it was shown at."""
    change = sw.staff_preview(action, **params)
    seen = plans.versions(all_grids[all_grids["branch_id"].astype(object).isin(list(change.teams))])
    st.session_state[STAFF_CHANGE] = {"action": action, "params": params, "change": change, "seen": seen,
                                      "token": uuid.uuid4().hex}


def lifecycle_section(sw: Any, *, branch: str, branch_names: dict[str, str], team: pd.DataFrame,
                      all_grids: pd.DataFrame) -> None:
    """新增 / 离职 / 调动 with a preview of the grids that change hands before anything is saved."""
    from grids.errors import GridsError
    from grids.model import STAFF_ROLES

    ss = st.session_state
    names = dict(zip(team["staff_id"].astype(str), team["name"].astype(str), strict=True))
    mode = st.radio("人员变动", LIFECYCLE_MODES, horizontal=True, key="staffing.lifecycle_mode")
    try:
        if mode == LIFECYCLE_MODES[0]:
            c1, c2, c3 = st.columns(3)
            sid = c1.text_input("员工编号", key="staffing.new_id", placeholder="例如 S200")
            name = c2.text_input("姓名", key="staffing.new_name")
            role = c3.selectbox("岗位", STAFF_ROLES, key="staffing.new_role")
            if st.button("预览新增", key="staffing.preview_add", disabled=not (sid and name)):
                _keep_change(sw, all_grids, "add", {"person": {"staff_id": sid, "name": name, "branch_id": branch,
                                                               "role": role}})
        elif mode == LIFECYCLE_MODES[1]:
            who = st.selectbox("离职的员工", list(names), format_func=lambda s: f"{names.get(s, s)}（{s}）",
                               key="staffing.leaver")
            if st.button("预览离职交接", key="staffing.preview_leave", disabled=not who):
                _keep_change(sw, all_grids, "leave", {"staff_id": who})
        else:
            c1, c2 = st.columns(2)
            who = c1.selectbox("调动的员工", list(names), format_func=lambda s: f"{names.get(s, s)}（{s}）",
                               key="staffing.mover")
            others = [b for b in branch_names if b != branch]
            to = c2.selectbox("调入网点", others, format_func=lambda b: f"{b} {branch_names[b]}", key="staffing.move_to")
            if st.button("预览调动", key="staffing.preview_move", disabled=not (who and to)):
                _keep_change(sw, all_grids, "move", {"staff_id": who, "to_branch": to})
    except GridsError as exc:
        st.error(markdown(str(exc)))
    held = ss[STAFF_CHANGE]
    if not held:
        return
    change = held["change"]
    st.markdown(f"**预览：{markdown(change.title())}**（地图上虚线框为将改派的网格，保存前不生效）")
    for line in change.lines()[1:]:
        if not line.startswith("  "):
            st.write(markdown(line))
    table = change.moves.assign(reason=lambda t: t["reason"].map({"交接": "离职/调出交接", "均衡": "均衡调整"}))
    st.dataframe(table[["grid_id", "name", "households", "branch_id", "before", "after", "reason"]].rename(columns={
        "grid_id": "编码", "name": "网格", "households": "户数", "branch_id": "网点", "before": "原客户经理",
        "after": "新客户经理", "reason": "原因"}), hide_index=True, key="staffing.change_moves")
    a, b = st.columns(2)
    if a.button("确认保存", type="primary", key="staffing.confirm_change"):
        p = held["params"]
        try:
            if held["action"] == "leave":
                done = sw.staff_leave(p["staff_id"], seen=held["seen"])
            elif held["action"] == "add":
                done = sw.staff_add(p["person"], seen=held["seen"])
            else:
                done = sw.staff_move(p["staff_id"], p["to_branch"], seen=held["seen"])
        except GridsError as exc:
            st.error(markdown(str(exc)))
            return
        ss[STAFF_CHANGE] = None
        ss[STAFF_NOTICE] = ("success", f"已保存：{done.title()}，改派 {len(done.moves)} 个网格"
                            + (f"（方案第 {done.revision} 版）" if done.revision is not None else ""))
        st.rerun()
    if b.button("放弃", key="staffing.drop_change"):
        ss[STAFF_CHANGE] = None
        st.rerun()


def staff_accounts_section(sw: Any) -> None:
    """The accounts of the branch's staff, each enabled or disabled by the branch manager (library decides)."""
    from grids.errors import GridsError

    acc = sw.staff_accounts()
    if acc.empty:
        st.caption("本网点员工还没有账号。")
        return
    acc = acc.assign(state=acc["active"].astype("boolean").fillna(False).map({True: "启用", False: "已停用"}))
    st.dataframe(acc[["username", "display_name", "staff_id", "state"]].rename(columns={
        "username": "用户名", "display_name": "姓名", "staff_id": "员工编号", "state": "状态"}), hide_index=True,
        key="staffing.accounts")
    c1, c2 = st.columns([3, 1])
    user = c1.selectbox("账号", acc["username"].astype(str).tolist(), key="staffing.account")
    active = bool(acc.set_index("username").loc[user, "active"]) if user else False
    if c2.button("停用账号" if active else "启用账号", key="staffing.toggle_account"):
        try:
            sw.set_staff_account_active(user, not active)
        except GridsError as exc:
            st.error(markdown(str(exc)))
            return
        st.session_state[STAFF_NOTICE] = ("success", f"账号 {user} 已{'停用' if active else '启用'}")
        st.rerun()


def quota_section(sw: Any, *, team: pd.DataFrame, branches: pd.DataFrame, branch: str) -> None:
    """Visit quotas of the branch's customer managers (households per visit day; empty: the branch default),
    and the branch default (branch managers); the library checks scope and values (:meth:`set_quotas`)."""
    from grids.progress import DEFAULT_QUOTA_PER_DAY

    def stored(v: Any) -> int | None:
        return None if v is None or pd.isna(v) else int(v)

    row = branches[branches["branch_id"].astype(str) == branch]
    default = stored(row["quota_per_day"].iloc[0]) if "quota_per_day" in row and len(row) else None
    people = team[team["role"] == "客户经理"] if "role" in team else team
    mine = {str(s): stored(q) for s, q in zip(people["staff_id"], people.get("quota_per_day", [None] * len(people)),
                                             strict=True)}
    with st.form("staffing.quotas"):
        new_default = default
        if sw.account.branch_id:
            new_default = st.number_input(f"本网点默认定额（户/走访日；0 = 联社默认 {DEFAULT_QUOTA_PER_DAY} 户）", 0, 60,
                                          value=default or 0, step=1) or None
        table = pd.DataFrame({"staff_id": list(mine), "name": people["name"].astype(str).tolist(),
                              "quota": [q if q is not None else None for q in mine.values()]})
        edited = st.data_editor(table, hide_index=True, disabled=["staff_id", "name"], key="staffing.quota_editor",
                                column_config={"staff_id": "编号", "name": "客户经理",
                                               "quota": st.column_config.NumberColumn(
                                                   "本人定额（户/走访日；空 = 网点默认）", min_value=1, max_value=60,
                                                   step=1)})
        if st.form_submit_button("保存定额"):
            changes = {s: stored(q) for s, q in zip(edited["staff_id"], edited["quota"], strict=True)
                       if stored(q) != mine.get(s)}
            kw = {"branch_default": new_default} if sw.account.branch_id and new_default != default else {}
            if not changes and not kw:
                st.info("定额没有变化。")
                return
            try:
                sw.set_quotas(changes, **kw)
            except GridsError as exc:
                st.error(markdown(str(exc)))
            else:
                st.session_state[STAFF_NOTICE] = ("success", f"已保存定额（{len(changes)} 人"
                                                  + ("，网点默认" if kw else "") + "）")
                st.rerun()
