"""Session state and navigation: every ``st.session_state`` key the app uses is declared here, once.

Keys are prefixed by their owner (``auth.``, ``app.``, ``map.``, ``overview.``, ``data.``…). Pages read them
as ``st.session_state[KEY]``; only :func:`init_state` sets defaults. Module-level values here are constants:
module state is shared by every user of the server.
"""

from __future__ import annotations

import copy
from pathlib import Path

import streamlit as st

# the pages per role live in grids.navigation; re-exported: app.py and tests read them here

ROOT = Path(__file__).resolve().parents[1]

AUTH_SESSION = "auth.session"  # grids.auth.Session of the signed-in account, or None
AUTH_NOTICE = "auth.notice"  # a message for the login form (e.g. the session expired)
ROLE = "app.role"  # mirror of the signed-in account's role (read-only; set by app.py)
UNMASK = "app.unmask"  # the “显示完整身份证号/电话” tick (roles with view_personal only)
SCOPED = "app.scoped"  # (key, ScopedWorkspace) of this session, see ui.data.scoped
UNMASKED = "app.unmasked"  # {(target, revision, purpose): frame}: one audited full view per revision
BASEMAP = "map.basemap"
OVERVIEW_SELECTED = "overview.selected"
OVERVIEW_LEVEL = "overview.level"
DATA_IMPORT_LAYER = "data.import_layer"
DATA_IMPORT_COORDS = "data.import_coords"
DATA_IMPORT_DONE = "data.import_done"  # (report, re-derivation result or error) shown after the rerun
WORKBENCH_START = "workbench.start"  # (lon, lat) storage coordinates clicked on the map, or None
WORKBENCH_LAST = "workbench.last"  # text of the last recorded visit (shown once after the rerun)
WORKBENCH_SEEN = "workbench.seen"  # {hh_id: version} of the households the last run showed
WORKBENCH_SURVEY_SEEN = "workbench.survey_seen"  # {hh_id: latest survey version} as the last run showed them
WORKBENCH_SURVEY_OPEN = "workbench.survey_open"  # the survey form's section (an expander: built only while open)
RATING_VILLAGE = "rating.village"
RATING_CHECK = "rating.check"  # problems of the last “校验”, or None
REVIEW_HELD = "review.held"  # the decision ids the committee's queue showed (kept until refreshed)
SESSION_RESULT = "session.result"  # the summary of the last rating session saved (评定会)
RATING_FILES = "rating.files"  # {(village, revision, fmt): bytes} of unmasked whitelists made on a click
EDITORS = "app.editors"  # {name: held table} of the data editors (see ui.data.editor_table)
TELLER_FOUND = "teller.found"  # the minimal view of the customer the last look-up found (grids.credit_events), or None
TELLER_LAST = "teller.last"  # text of the last recorded signing/drawdown/repayment (shown once after the rerun)
ADMIN_AUDIT_ACTOR = "admin.audit_actor"
ADMIN_AUDIT_ACTION = "admin.audit_action"

DEFAULTS: dict[str, object] = {
    AUTH_SESSION: None,
    AUTH_NOTICE: None,
    ROLE: None,
    UNMASK: False,
    SCOPED: None,
    UNMASKED: {},
    BASEMAP: "offline",
    OVERVIEW_SELECTED: None,
    OVERVIEW_LEVEL: "grid",
    DATA_IMPORT_LAYER: "households",
    DATA_IMPORT_COORDS: "wgs84",
    WORKBENCH_START: None,
    WORKBENCH_LAST: None,
    WORKBENCH_SEEN: {},
    WORKBENCH_SURVEY_SEEN: {},
    RATING_VILLAGE: None,
    RATING_CHECK: None,
    RATING_FILES: {},
    SESSION_RESULT: None,
    REVIEW_HELD: [],
    EDITORS: {},
    TELLER_FOUND: None,
    TELLER_LAST: None,
    ADMIN_AUDIT_ACTOR: [],
    ADMIN_AUDIT_ACTION: [],
}

SIGNED_IN_KEYS: tuple[str, ...] = (AUTH_SESSION, ROLE, UNMASK, SCOPED, UNMASKED, OVERVIEW_SELECTED,
                                   WORKBENCH_START, WORKBENCH_LAST, WORKBENCH_SEEN, WORKBENCH_SURVEY_SEEN, RATING_VILLAGE, RATING_CHECK,
                                   RATING_FILES, SESSION_RESULT, REVIEW_HELD, EDITORS, TELLER_FOUND, TELLER_LAST)
"""Keys that belong to one signed-in account: reset on sign-out so the next account starts clean."""

# the planning (网格规划) and staffing (人员分配) pages (their defaults: PLANNING_DEFAULTS, set by ui.planning.init)
PLAN = "planning.plan_id"
HISTORY = "planning.history"
BASE = "planning.base"  # the plan's grids as loaded (with their versions): what a save is judged against
REVISION = "planning.revision"
VERSION = "planning.version"  # bumped on every change of the edited state (map cache key)
TOKEN = "planning.token"  # this session's id in shared map caches
SELECTED = "planning.selected"
FOCUS = "planning.focus"  # (minx, miny, maxx, maxy) the map zooms to, or None
DRAWN = "planning.drawn"  # hash of the last drawing already applied
NOTICE = "planning.notice"  # (kind, text) shown once after a rerun
SECTION = "planning.section"
STALE = "planning.stale"  # the newer stored revision after a StaleRevisionError, or None
CONFLICTS = "planning.conflicts"  # what a refused publication listed (grids changed live and in the draft)
WHATIF_POINT = "planning.whatif_point"
WHATIF = "planning.whatif"
COMPARE = "planning.compare"
PROBLEM_PAGE = "planning.problem_page"  # the check list's page (a widget key)
PROBLEMS = "planning.problems"  # {grids, bounds, found}: the check of the edited state shown last
STAFF_BRANCH = "staffing.branch"
STAFF_SELECTED = "staffing.selected"
STAFF_SHOWN = "staffing.shown"  # the selected grid's version as the last run showed it: {grid_id: version}
STAFF_PREVIEW = "staffing.preview"
STAFF_FILES = "staffing.files"
STAFF_NOTICE = "staffing.notice"
STAFF_CHANGE = "staffing.change"  # a computed staff change (add/leave/move) awaiting confirmation, or None

PLANNING_DEFAULTS: dict[str, object] = {
    PLAN: None, HISTORY: None, BASE: None, REVISION: None, VERSION: 0, TOKEN: None, SELECTED: None, FOCUS: None,
    DRAWN: None, NOTICE: None, SECTION: "编辑", STALE: None, CONFLICTS: None, WHATIF_POINT: None, WHATIF: None, COMPARE: None,
    STAFF_BRANCH: None, STAFF_SELECTED: None, STAFF_SHOWN: None, STAFF_PREVIEW: None, STAFF_FILES: {}, STAFF_NOTICE: None,
    STAFF_CHANGE: None,
}
"""Defaults of the planning/staffing keys, set by ``ui.planning.init`` when either page opens."""


def init_state() -> None:
    """Set every default once per session (call at the top of ``app.py``)."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, copy.deepcopy(value))  # never share a mutable default between users


def reset_signed_in() -> None:
    """Forget everything of the signed-in account (sign-out, expiry)."""
    for key in SIGNED_IN_KEYS:
        st.session_state[key] = copy.deepcopy(DEFAULTS[key])


class RerunGuard:
    """At most one ``st.rerun()`` of a page per user action, for values a page takes from a widget (map clicks).

    A page that stores a clicked point and reruns to redraw with it would rerun for ever if the widget kept
    answering a different value each run: two maps (one per start point) each holding the other's old click,
    as a client that resends stale widget states does (measured: 6,243 reruns in 300 s of one session,
    ``benchmarks/bench_load.py``), or a forged client on purpose. Make one at the top of the page run; a run
    that a guard's :meth:`rerun` started cannot start another.

    Examples
    --------
    ``guard = RerunGuard("workbench")`` … ``if picked != start and guard.may_rerun: …; guard.rerun()``
    """

    def __init__(self, name: str) -> None:
        self.key = f"{name}.rerun_asked"
        self.is_rerun = bool(st.session_state.pop(self.key, False))

    @property
    def may_rerun(self) -> bool:
        """False in a run that this guard's :meth:`rerun` started."""
        return not self.is_rerun

    def rerun(self) -> None:
        """``st.rerun()``, unless this run is already the rerun (then nothing: the page goes on)."""
        if self.is_rerun:
            return
        st.session_state[self.key] = True
        st.rerun()
