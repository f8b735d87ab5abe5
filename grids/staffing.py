"""What the staffing page (人员分配) does: every change a branch manager makes there, as a value first and then
one library call — grids given to other customer managers (one grid, the editor's table, the balance preview),
staff who come and go (新增、离职、调动, previewed before they are saved), staff accounts and visit quotas.

Each action has a *request* (a dataclass: what would be sent, whether there is anything to send, what the
save button says) built from widget values by a plain function, and a *save* that sends it through a
:class:`grids.scope.ScopedWorkspace` (which decides scope and validity) and returns the notice the page shows
after its rerun. A refusal is a :class:`grids.errors.GridsError`, raised unchanged for the page to show. What
the page *shows* is in :mod:`grids.staffview`.

Examples
--------
>>> shown = pd.DataFrame({"grid_id": ["G1", "G2"], "staff_id": ["S1", "S1"], "locked": [False, False]})
>>> edits = table_assignment(shown, shown.assign(staff_id=["S1", "S2"]), {"G1": 3, "G2": 5}, branch="B1")
>>> edits.changes, edits.seen, edits.label
({'G2': {'staff_id': 'S2'}}, {'G2': 5}, '保存表格修改（1 处）')
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import geopandas as gpd
import pandas as pd

from grids import plans
from grids.assign import assign_staff
from grids.assign.metrics import assignment_metrics
from grids.lifecycle import StaffChange
from grids.planview import change_grids
from grids.ratings import table_intents
from grids.staffview import balance_table, quota_changes

if TYPE_CHECKING:
    from grids.scope import ScopedWorkspace

__all__ = ["LIFECYCLE_MODES", "AccountToggle", "Assignment", "BalancePreview", "HeldChange", "MapView",
           "QuotaRequest", "StaffRequest", "account_toggle", "balance_assignment", "balance_preview",
           "balance_preview_table", "export_file", "held_for", "map_view", "preview_change", "quota_request", "reassignment",
           "save_assignment", "save_change", "save_quotas", "staff_request", "table_assignment", "toggle_account"]

LIFECYCLE_MODES = {"新增客户经理": "add", "登记离职": "leave", "调到其他网点": "move"}
"""The staff changes the page offers (its radio's options) → the action of :mod:`grids.lifecycle`."""


# --------------------------------------------------------------------------------------------------------
# grids to other customer managers: one grid, the table, the balance preview
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """Grids given to other customer managers (or locked), as one intent of
    :meth:`grids.scope.ScopedWorkspace.assign_grids`.

    Attributes
    ----------
    changes : dict
        grid id → ``{field: value}``; empty: nothing to save (the save button is disabled).
    seen : dict
        grid id → the version the user saw, for the grids changed.
    action : str
        What the audit calls it.
    done : str or None
        The notice after saving (None: the action and the number of grids).
    label : str
        The save button's text.
    """

    changes: dict[str, dict[str, Any]]
    seen: dict[str, int]
    action: str
    done: str | None = None
    label: str = ""

    @property
    def empty(self) -> bool:
        """True when there is nothing to save."""
        return not self.changes


def reassignment(grid_id: str, to: str, *, current: str | None, versions: dict[str, int],
                 names: dict[str, str], shown: dict[str, int] | None = None) -> Assignment:
    """Give one grid (held by ``current``) to ``to``; nothing to save when ``to`` already holds it (or is
    empty: nobody chosen).

    The save is checked against the grid's version as the page last *showed* it (``shown``: grid id →
    version, kept across the click's rerun), so a reassignment someone made between that view and the click
    is refused as stale, not overwritten; without it (the grid was just selected) the version now
    (``versions``).

    >>> reassignment("G1", "S1", current="S1", versions={"G1": 2}, names={"S1": "甲"}).empty
    True
    >>> reassignment("G1", "S2", current="S1", versions={"G1": 2}, names={"S2": "乙"}).done
    '网格 G1 已改派给 乙'
    >>> reassignment("G1", "S2", current="S1", versions={"G1": 3}, names={}, shown={"G1": 2}).seen
    {'G1': 2}
    """
    seen = shown[grid_id] if shown and grid_id in shown else versions[grid_id]
    changes = {} if not to or to == current else {grid_id: {"staff_id": to}}
    return Assignment(changes, {grid_id: seen}, f"网格 {grid_id} 改派给 {to}",
                      f"网格 {grid_id} 已改派给 {names.get(to, to)}", label="改派")


def table_assignment(shown: pd.DataFrame, edited: pd.DataFrame, versions: dict[str, int], *,
                     branch: str) -> Assignment:
    """The edits of the grid list (``shown`` as this session rendered it, ``edited`` as the editor returned
    it; :func:`grids.ratings.table_intents`), with the versions of the rows shown (see the module example)."""
    intents = table_intents(shown, edited, id_column="grid_id")
    return Assignment(intents, {g: versions[g] for g in intents if g in versions}, f"网点 {branch} 调整网格分配",
                      label=f"保存表格修改（{len(intents)} 处）")


@dataclass(frozen=True)
class BalancePreview:
    """A computed balance of one branch, held until applied or dropped.

    Attributes
    ----------
    grids : GeoDataFrame
        The branch's grids as the proposal leaves them.
    changed : list of str
        The grids it gives to someone else.
    seen : dict
        grid id → version of every grid of the branch when it was computed.
    branch : str
        The branch it balances (an admin who switches to another branch does not see it there).
    token : str
        New for every preview (map cache key).
    """

    grids: gpd.GeoDataFrame
    changed: list[str]
    seen: dict[str, int]
    branch: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def summary(self) -> str:
        """The line above the preview's table."""
        return f"将改派 {len(self.changed)} 个网格（地图上虚线框）："


def balance_preview(grids: gpd.GeoDataFrame, team: pd.DataFrame, versions: dict[str, int], *,
                    branch: str) -> BalancePreview:
    """Balance ``branch``'s ``grids`` among ``team`` with the fewest moves (locked grids stay;
    :func:`grids.assign.assign_staff` with ``minimal_change``), nothing saved."""
    new_staff = assign_staff(grids, team, minimal_change=True)
    moved = grids.loc[(grids["staff_id"].astype(object) != new_staff).to_numpy(), "grid_id"].tolist()
    return BalancePreview(grids.assign(staff_id=new_staff.to_numpy()), moved, dict(versions), branch=branch)


def balance_preview_table(preview: BalancePreview, before: pd.DataFrame, *, offices: gpd.GeoDataFrame,
                          team: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Households per customer manager now (``before``: the staff metrics of the branch) and after the preview."""
    after = assignment_metrics(preview.grids, offices, staff=team)[1]
    return balance_table(before, after, names)


def balance_assignment(preview: BalancePreview, *, branch: str) -> Assignment:
    """Apply a balance preview: its moved grids, with the versions they had when it was computed (a grid
    unknown then: -1, refused as stale)."""
    proposal = preview.grids.set_index("grid_id")["staff_id"]
    return Assignment({g: {"staff_id": proposal[g]} for g in preview.changed},
                      {g: preview.seen.get(g, -1) for g in preview.changed}, f"网点 {preview.branch or branch} 自动均衡",
                      label="应用均衡方案")


def save_assignment(sw: ScopedWorkspace, assignment: Assignment) -> str:
    """Send ``assignment`` (:meth:`grids.scope.ScopedWorkspace.assign_grids`); returns the notice, which names
    the plan's new revision.

    Raises
    ------
    GridsError
        Refused (scope, a stale grid, an invalid value): nothing saved.
    """
    a = assignment
    new_rev = sw.assign_grids(a.changes, seen=a.seen, action=a.action)
    return f"{a.done or a.action + f'：已保存 {len(a.changes)} 个网格'}（方案第 {new_rev} 版）"


# --------------------------------------------------------------------------------------------------------
# staff who come and go: a request, its preview (held), the save
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffRequest:
    """A staff change to preview: the action (``add``, ``leave``, ``move``) and its arguments."""

    action: str
    params: dict[str, Any]


def staff_request(mode: str, *, branch: str, staff_id: str | None = None, name: str | None = None,
                  role: str | None = None, to_branch: str | None = None) -> StaffRequest | None:
    """The change the lifecycle form asks for (``mode``: a key of :data:`LIFECYCLE_MODES`), or None while a
    field it needs is empty (its preview button is then disabled). A newcomer joins ``branch``.

    >>> staff_request("新增客户经理", branch="B1", staff_id="S200", name="")
    >>> staff_request("调到其他网点", branch="B1", staff_id="S2", to_branch="B2")
    StaffRequest(action='move', params={'staff_id': 'S2', 'to_branch': 'B2'})
    >>> staff_request("<forged>", branch="B1", staff_id="S2") is None  # not an offered mode: nothing to preview
    True
    """
    action = LIFECYCLE_MODES.get(mode)
    if action == "add":
        if not (staff_id and name):
            return None
        return StaffRequest("add", {"person": {"staff_id": staff_id, "name": name, "branch_id": branch, "role": role}})
    if action == "leave":
        return StaffRequest("leave", {"staff_id": staff_id}) if staff_id else None
    if action == "move":
        return StaffRequest("move", {"staff_id": staff_id, "to_branch": to_branch}) if staff_id and to_branch else None
    return None


@dataclass(frozen=True)
class HeldChange:
    """A previewed staff change awaiting confirmation, with the grid versions it was shown at.

    Attributes
    ----------
    request : StaffRequest
        What was asked (sent again when saving).
    change : StaffChange
        What it would do (:func:`grids.lifecycle.preview`).
    seen : dict
        grid id → version of every grid of the branches concerned, as shown.
    branch : str
        The branch whose page previewed it (shown there only).
    token : str
        New for every preview (map cache key).
    """

    request: StaffRequest
    change: StaffChange
    seen: dict[str, int]
    branch: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def preview_change(sw: ScopedWorkspace, grids: pd.DataFrame, request: StaffRequest, *,
                   branch: str) -> HeldChange:
    """Compute a staff change (scope decided by the library; nothing written) and the versions of the grids
    of every branch it concerns (``grids``: the plan's grids as the page read them), previewed on ``branch``'s
    page.

    Raises
    ------
    GridsError
        The change is refused (scope, a taken id, nobody left to take the grids…).
    """
    change = sw.staff_preview(request.action, **request.params)
    seen = plans.versions(grids[grids["branch_id"].astype(object).isin(list(change.teams))])
    return HeldChange(request, change, seen, branch=branch)


Held = TypeVar("Held", BalancePreview, HeldChange)


def held_for(value: Held | None, branch: str) -> Held | None:
    """A held preview (balance or staff change) if it was made on ``branch``'s page, else None: an admin who
    previews on one branch and turns to another sees neither its map nor its table there (nor applies it
    under the other branch's name).

    >>> p = BalancePreview(pd.DataFrame(), [], {}, branch="B1")
    >>> held_for(p, "B1") is p, held_for(p, "B2"), held_for(None, "B1")
    (True, None, None)
    """
    return value if value is not None and value.branch in ("", branch) else None


def save_change(sw: ScopedWorkspace, held: HeldChange) -> str:
    """Save a previewed staff change, judged against the versions it was shown at; returns the notice.

    Raises
    ------
    GridsError
        Refused, or a grid of the branches concerned changed since the preview (nothing saved).
    """
    p, action = held.request.params, held.request.action
    if action == "leave":
        done = sw.staff_leave(p["staff_id"], seen=held.seen)
    elif action == "add":
        done = sw.staff_add(p["person"], seen=held.seen)
    else:
        done = sw.staff_move(p["staff_id"], p["to_branch"], seen=held.seen)
    return (f"已保存：{done.title()}，改派 {len(done.moves)} 个网格"
            + (f"（方案第 {done.revision} 版）" if done.revision is not None else ""))


class MapView(NamedTuple):
    """What the staff map draws: the grids, those drawn as changing (None: none), the staff of its legend and
    the preview's token (None: the stored state)."""

    grids: gpd.GeoDataFrame
    changed: list[str] | None
    team: pd.DataFrame
    token: str | None


def map_view(grids: gpd.GeoDataFrame, team: pd.DataFrame, staff: pd.DataFrame, *,
             preview: BalancePreview | None, held: HeldChange | None) -> MapView:
    """The branch's grids as stored, or as a held staff change would leave them (first: its grids are flagged
    until saved), or as a balance preview proposes (``staff``: every staff row, for a change's legend)."""
    if held is not None:
        shown, changed, people = change_grids(grids, held.change, staff)
        return MapView(shown, changed, people, held.token)
    if preview is not None:
        return MapView(preview.grids, preview.changed, team, preview.token)
    return MapView(grids, None, team, None)


# --------------------------------------------------------------------------------------------------------
# staff accounts, visit quotas, downloads
# --------------------------------------------------------------------------------------------------------


class AccountToggle(NamedTuple):
    """The account chosen, whether the button enables it (else disables it), and the button's text."""

    username: str | None
    activate: bool
    label: str


def account_toggle(accounts: pd.DataFrame, username: str | None) -> AccountToggle:
    """What the account button does for ``username`` (``accounts``: ``username``, ``active``).

    >>> account_toggle(pd.DataFrame({"username": ["s1"], "active": [True]}), "s1")
    AccountToggle(username='s1', activate=False, label='停用账号')
    """
    active = bool(accounts.set_index("username").loc[username, "active"]) if username else False
    return AccountToggle(username, not active, "停用账号" if active else "启用账号")


def toggle_account(sw: ScopedWorkspace, toggle: AccountToggle) -> str:
    """Enable or disable the account (:meth:`grids.scope.ScopedWorkspace.set_staff_account_active`); returns
    the notice.

    Raises
    ------
    GridsError
        Not the account of an in-scope staff member, or no permission.
    """
    sw.set_staff_account_active(toggle.username or "", toggle.activate)
    return f"账号 {toggle.username} 已{'启用' if toggle.activate else '停用'}"


@dataclass(frozen=True)
class QuotaRequest:
    """Visit quotas to save: staff id → quota (None: the branch default), and the branch default when the
    branch manager changed it (``set_default``; None there: the county default)."""

    quotas: dict[str, int | None]
    set_default: bool = False
    branch_default: int | None = None

    @property
    def empty(self) -> bool:
        """True when nothing changed (the page says so instead of saving)."""
        return not self.quotas and not self.set_default


def quota_request(table: pd.DataFrame, edited: pd.DataFrame, *, default: int | None, new_default: float | None,
                  own_branch: bool) -> QuotaRequest:
    """The quota form's changes: the edited rows of ``table`` (:func:`grids.staffview.staff_quotas`) and, for
    an account of a branch (``own_branch``), its default (``new_default``; 0: the county default) when it
    differs from ``default``.

    >>> t = pd.DataFrame({"staff_id": ["S1"], "name": ["甲"], "quota": [None]})
    >>> quota_request(t, t.assign(quota=[6]), default=5, new_default=0, own_branch=True)
    QuotaRequest(quotas={'S1': 6}, set_default=True, branch_default=None)
    """
    changes = quota_changes(dict(zip(table["staff_id"], table["quota"], strict=True)), edited)
    chosen = (int(new_default) if new_default else None) if own_branch else default
    return QuotaRequest(changes, chosen != default, chosen)


def save_quotas(sw: ScopedWorkspace, request: QuotaRequest) -> str:
    """Save the quotas (:meth:`grids.scope.ScopedWorkspace.set_quotas`); returns the notice.

    Raises
    ------
    GridsError
        A quota out of range, or staff outside the account's branch.
    """
    kw = {"branch_default": request.branch_default} if request.set_default else {}
    sw.set_quotas(request.quotas, **kw)
    return f"已保存定额（{len(request.quotas)} 人" + ("，网点默认" if request.set_default else "") + "）"


def export_file(sw: ScopedWorkspace, *, fmt: str, staff_id: str) -> bytes:
    """One customer manager's household list (``xlsx``) or map (``png``, ``pdf``) as bytes, made now
    (:meth:`grids.scope.ScopedWorkspace.export`, in scope and audited)."""
    with tempfile.TemporaryDirectory() as tmp:
        res = sw.export(fmt=fmt, out=Path(tmp) / f"out.{fmt}", staff_id=staff_id)
        return Path(res["path"]).read_bytes()
