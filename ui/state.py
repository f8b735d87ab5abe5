"""Session state and navigation: every ``st.session_state`` key the app uses is declared here, once.

Keys are prefixed by their owner (``app.``, ``map.``, ``overview.``, ``data.``…). Pages read them as
``st.session_state[KEY]``; only :func:`init_state` sets defaults. Module-level values here are constants:
module state is shared by every user of the server.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]

ROLE = "app.role"
BASEMAP = "map.basemap"
OVERVIEW_SELECTED = "overview.selected"
OVERVIEW_LEVEL = "overview.level"
DATA_IMPORT_LAYER = "data.import_layer"
DATA_IMPORT_COORDS = "data.import_coords"

DEFAULTS: dict[str, object] = {
    ROLE: "leadership",
    BASEMAP: "offline",
    OVERVIEW_SELECTED: None,
    OVERVIEW_LEVEL: "grid",
    DATA_IMPORT_LAYER: "households",
    DATA_IMPORT_COORDS: "wgs84",
}

# Role keys follow grids.model.ROLES; the labels are what the role switch shows.
ROLE_LABELS: dict[str, str] = {
    "leadership": "领导",
    "planner": "规划",
    "branch_manager": "网点主任",
    "customer_manager": "客户经理",
    "admin": "管理员",
}


@dataclass(frozen=True)
class PageSpec:
    """One page of the app: its script, title, icon and the roles that may open it."""

    path: str
    title: str
    icon: str
    roles: frozenset[str]

    @property
    def exists(self) -> bool:
        """True once the page's script has been written (pages land one by one)."""
        return (ROOT / self.path).is_file()


_ALL = frozenset(ROLE_LABELS)
PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/overview.py", "覆盖总览", ":material/map:", frozenset({"leadership", "planner",
                                                                         "branch_manager", "admin"})),
    PageSpec("pages/planning.py", "网格规划", ":material/grid_on:", frozenset({"planner", "admin"})),
    PageSpec("pages/staffing.py", "人员分配", ":material/group:", frozenset({"branch_manager", "admin"})),
    PageSpec("pages/workbench.py", "走访工作台", ":material/directions_walk:",
             frozenset({"customer_manager", "admin"})),
    PageSpec("pages/rating.py", "集中授信", ":material/how_to_vote:", frozenset({"branch_manager", "admin"})),
    PageSpec("pages/data.py", "数据管理", ":material/database:", frozenset({"planner", "admin"})),
)


def pages_for(role: str) -> list[PageSpec]:
    """The pages ``role`` may open, in menu order, whose scripts exist.

    >>> [p.title for p in pages_for("leadership")][:1]
    ['覆盖总览']
    """
    return [p for p in PAGES if role in p.roles and p.exists]


def init_state() -> None:
    """Set every default once per session (call at the top of ``app.py``)."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, copy.deepcopy(value))  # never share a mutable default between users
