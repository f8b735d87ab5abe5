"""What each role sees: the app's pages (script, title, icon, roles) in menu order, the role names the menu
shows, and the hint the login form gives on a demo workspace."""

from __future__ import annotations

import re
from dataclasses import dataclass

from grids import auth as gauth
from grids.workspace import Workspace

# Role keys follow grids.model.ROLES.
ROLE_LABELS: dict[str, str] = {
    "leadership": "领导",
    "planner": "规划",
    "branch_manager": "网点主任",
    "customer_manager": "客户经理",
    "admin": "管理员",
    "teller": "柜员",
    "credit_committee": "贷审会",
}


@dataclass(frozen=True)
class PageSpec:
    """One page of the app: its script, title, icon and the roles that may open it."""

    path: str
    title: str
    icon: str
    roles: frozenset[str]


_ALL = frozenset(ROLE_LABELS)
PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/overview.py", "覆盖总览", ":material/map:", frozenset({"leadership", "planner",
                                                                         "branch_manager", "admin",
                                                                         "credit_committee"})),
    PageSpec("pages/planning.py", "网格规划", ":material/grid_on:", frozenset({"planner", "admin"})),
    PageSpec("pages/staffing.py", "人员分配", ":material/group:", frozenset({"branch_manager", "admin"})),
    PageSpec("pages/workbench.py", "走访工作台", ":material/directions_walk:",
             frozenset({"customer_manager", "admin"})),
    PageSpec("pages/rating.py", "集中授信", ":material/how_to_vote:", frozenset({"branch_manager", "admin"})),
    PageSpec("pages/teller.py", "柜员用信", ":material/credit_card:",
             frozenset({"teller", "branch_manager", "admin"})),
    PageSpec("pages/review.py", "贷审会审批", ":material/gavel:", frozenset({"credit_committee", "admin"})),
    PageSpec("pages/data.py", "数据管理", ":material/database:", frozenset({"planner", "admin"})),
    PageSpec("pages/admin.py", "账号与审计", ":material/admin_panel_settings:", frozenset({"admin", "leadership"})),
)


def pages_for(role: str) -> list[PageSpec]:
    """The pages ``role`` may open, in menu order.

    >>> [p.title for p in pages_for("leadership")][:1]
    ['覆盖总览']
    """
    return [p for p in PAGES if role in p.roles]


def demo_hint(ws: Workspace) -> str | None:
    """The demo accounts and their password (demo workspaces only), for the login form."""
    if not ws.is_demo:
        return None
    names = ws.read("accounts", columns=["username"])["username"].astype(str).tolist()  # names only: cheap

    def span(prefix: str) -> str:
        hits = sorted(n for n in names if re.fullmatch(prefix + r"\d+", n))
        return f"{hits[0]}…{hits[-1]}" if len(hits) > 1 else (hits[0] if hits else "")

    fixed = "、".join(n for n in ("admin", "leader", "planner") if n in names)
    parts = [fixed] if fixed else []
    if span("b"):
        parts.append(f"网点主任 {span('b')}")
    if span("s"):
        parts.append(f"客户经理 {span('s')}")
    if span("t"):
        parts.append(f"柜员 {span('t')}")
    if "cc01" in names:
        parts.append("贷审会 cc01")
    if not parts:
        return None
    return f"演示工作区：账号 {'，'.join(parts)}；密码均为 `{gauth.DEMO_PASSWORD}`。"
