"""Staff lifecycle: a newcomer joins, a leaver goes, someone moves to another branch — one transaction each.

Each change is first computed (:func:`preview_leave`, :func:`preview_add`, :func:`preview_move`: pure, on
frames) and then saved (:func:`leave`, :func:`add`, :func:`move`) as ONE transaction on the plan:

* grids change hands only inside the branches concerned (the leaver's, the newcomer's, the mover's old and new
  branch); grids of other branches never move, and no grid changes branch;
* a leaver's grids (their locks released and listed) go to the branch's remaining staff; the other staff's
  grids move only as far as needed to bring the branch's spread ``(max − min) / mean`` within
  ``max(10 %, the proven lower bound)`` (:func:`grids.assign.partition.balance_bounds`), with as few grids
  moved as the search finds (:func:`rebalance_branch`); a newcomer takes grids the same way;
* the staff row of a leaver is kept (visits keep the id) with ``status`` ``left`` and ``left_at``; it is no
  longer assignable (:func:`grids.assign.assignable_staff`); a mover's row changes branch;
* the accounts bound to a leaver's ``staff_id`` are disabled in the same transaction; a mover's accounts
  follow to the new branch (:mod:`grids.auth`);
* the grids the user saw must be unchanged (row versions, as :func:`grids.plans.edit_grid_rows`), the plan's
  revision moves, and the audit row carries each grid's before/after, the staff row's and the accounts'.

Who may do what (branch managers their own branch only) is decided by :class:`grids.scope.ScopedWorkspace`.
Workspaces made before ``staff.status`` existed get the two columns on their first lifecycle change.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse

from grids import assign, auth, plans
from grids.assign.graph import grid_adjacency
from grids.assign.metrics import BALANCE_TARGET, pieces_per_label
from grids.assign.partition import balance_bounds
from grids.errors import StaleEditError, ValidationError
from grids.model import STAFF_LEFT, STAFF_ROLES
from grids.text import normalize_text, plain
from grids.workspace import Workspace

if TYPE_CHECKING:
    from grids.assign.graph import SparseMatrix

__all__ = ["ACTION_NAMES", "StaffChange", "add", "branch_spread", "leave", "move", "preview", "preview_add",
           "preview_leave", "preview_move", "rebalance_branch"]

ACTION_NAMES = {"add": "新增", "leave": "离职", "move": "调动"}
BANDS = (1.0, 0.75, 0.5, 0.3)
"""Minimal-change bands tried, as multiples of half the spread goal (a band ±t keeps the spread within 2t)."""
_STAFF_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,31}$")
_EPS = 1e-9


# --------------------------------------------------------------------------------------------------------
# balance with fewest moves
# --------------------------------------------------------------------------------------------------------


def branch_spread(loads: np.ndarray) -> float:
    """``(max − min) / mean`` of the staff loads (0 when there is no load).

    Examples
    --------
    >>> branch_spread(np.array([90.0, 100.0, 110.0]))
    0.2
    >>> branch_spread(np.array([0.0, 0.0]))
    0.0
    """
    loads = np.asarray(loads, dtype=float)
    mean = loads.mean() if len(loads) else 0.0
    return float(np.ptp(loads) / mean) if mean > 0 else 0.0


def _pieces(adj: sparse.csr_matrix, labels: np.ndarray, keys: list[int]) -> int:
    return int(pieces_per_label(adj, labels, keys).sum())


def _sq(labels: np.ndarray, w: np.ndarray, k: int) -> float:
    loads = np.bincount(labels, weights=w, minlength=k)
    return float(((loads - loads.mean()) ** 2).sum())


def _single_move(adj: sparse.csr_matrix, labels: np.ndarray, w: np.ndarray, k: int, locked: np.ndarray,
                 orig: np.ndarray) -> bool:
    """Move one border grid to a neighbouring territory where that lowers the squared deviations without adding
    a piece (a grid going back to its first owner first, then the largest drop); False when none does."""
    loads = np.bincount(labels, weights=w, minlength=k)
    cands = []
    for node in np.flatnonzero(~locked & (w > 0)):
        a = labels[node]
        for b in set(labels[adj.indices[adj.indptr[node]:adj.indptr[node + 1]]].tolist()) - {a}:
            drop = 2 * w[node] * (w[node] + loads[b] - loads[a])  # change of the sum of squared deviations
            if drop < -_EPS:
                cands.append((0 if b == orig[node] else 1, drop, int(node), int(b)))
    for _, _, i, b in sorted(cands):
        a = labels[i]
        before = _pieces(adj, labels, [a, b])
        labels[i] = b
        if _pieces(adj, labels, [a, b]) <= before:
            return True
        labels[i] = a
    return False


def _path(adj: sparse.csr_matrix, labels: np.ndarray, k: int, start: int, end: int) -> list[int] | None:
    """Shortest chain of neighbouring territories from ``start`` to ``end``."""
    coo = sparse.triu(adj, 1).tocoo()
    la, lb = labels[coo.row], labels[coo.col]
    nb: list[set[int]] = [set() for _ in range(k)]
    for a, b in zip(la[la != lb].tolist(), lb[la != lb].tolist(), strict=True):
        nb[a].add(b)
        nb[b].add(a)
    prev = {start: -1}
    queue = [start]
    for t in queue:
        if t == end:
            out = [t]
            while prev[out[-1]] >= 0:
                out.append(prev[out[-1]])
            return out[::-1]
        for u in sorted(nb[t]):
            if u not in prev:
                prev[u] = t
                queue.append(u)
    return None


def _hop(adj: sparse.csr_matrix, trial: np.ndarray, w: np.ndarray, locked: np.ndarray, orig: np.ndarray,
         a: int, b: int, amount: float) -> float:
    """Move border grids of territory ``a`` into neighbouring ``b`` until about ``amount`` households went over
    (each move keeping both in one piece); returns the households moved (0 when none could)."""
    moved = 0.0
    for _ in range(4):
        left = amount - moved
        border = [i for i in np.flatnonzero((trial == a) & ~locked & (w > 0))
                  if (trial[adj.indices[adj.indptr[i]:adj.indptr[i + 1]]] == b).any()]
        border.sort(key=lambda i: (abs(w[i] - left), orig[i] != b))
        for i in border:
            if moved and w[i] > 1.5 * left:
                return moved
            before = _pieces(adj, trial, [a, b])
            trial[i] = b
            if _pieces(adj, trial, [a, b]) <= before:
                moved += float(w[i])
                break
            trial[i] = a
        else:
            return moved
        if moved >= 0.75 * amount:
            return moved
    return moved


def _chain_move(adj: sparse.csr_matrix, labels: np.ndarray, w: np.ndarray, k: int, locked: np.ndarray,
                orig: np.ndarray) -> bool:
    """Pass households along a chain of neighbouring territories from a heavy one to a light one (each hop
    passes on about what it received, every territory stays in one piece), when the chain lowers the squared
    deviations; the chain lowering them most is taken. False when none does."""
    loads = np.bincount(labels, weights=w, minlength=k)
    mean = loads.mean()
    sq = _sq(labels, w, k)
    best, best_sq = None, sq - _EPS
    order = np.argsort(loads)
    for sink in order[: max(3, k // 2)].tolist():
        for source in order[::-1][: max(3, k // 2)].tolist():
            if loads[source] <= loads[sink]:
                continue
            path = _path(adj, labels, k, source, sink)
            if not path or len(path) < 2:
                continue
            amount = min(loads[source] - mean, mean - loads[sink])
            trial = labels.copy()
            for a, b in itertools.pairwise(path):
                amount = _hop(adj, trial, w, locked, orig, a, b, amount)
                if amount <= 0:
                    break
            else:
                q = _sq(trial, w, k)
                if q < best_sq:
                    best, best_sq = trial, q
    if best is None:
        return False
    labels[:] = best
    return True


def _refine(adj: sparse.csr_matrix, labels: np.ndarray, w: np.ndarray, k: int, locked: np.ndarray,
            goal: float, orig: np.ndarray) -> np.ndarray:
    """Border moves, then chains of them, that lower the squared deviations without adding a piece, until the
    spread is within ``goal`` (each step lowers a bounded sum: it ends)."""
    labels = labels.copy()
    for _ in range(4 * len(labels)):
        if branch_spread(np.bincount(labels, weights=w, minlength=k)) <= goal + _EPS:
            break
        if not (_single_move(adj, labels, w, k, locked, orig) or _chain_move(adj, labels, w, k, locked, orig)):
            break
    return labels


def _give_back(adj: sparse.csr_matrix, labels: np.ndarray, w: np.ndarray, k: int, locked: np.ndarray,
               goal: float, orig: np.ndarray) -> np.ndarray:
    """Return moved grids to their first owner while the spread stays within ``goal`` (fewer moves)."""
    labels = labels.copy()
    if branch_spread(np.bincount(labels, weights=w, minlength=k)) > goal + _EPS:
        return labels
    changed = True
    while changed:
        changed = False
        for i in sorted(np.flatnonzero((labels != orig) & (orig >= 0) & ~locked), key=lambda j: w[j]):
            a, b = labels[i], orig[i]
            before = _pieces(adj, labels, [a, b])
            labels[i] = b
            if (branch_spread(np.bincount(labels, weights=w, minlength=k)) <= goal + _EPS
                    and _pieces(adj, labels, [a, b]) <= before):
                changed = True
            else:
                labels[i] = a
    return labels


def rebalance_branch(grids: gpd.GeoDataFrame, team: list[str], *, target: float = BALANCE_TARGET,
                     adjacency: SparseMatrix | None = None) -> tuple[pd.Series, dict[str, Any]]:
    """New ``staff_id`` of one branch's grids for ``team``, moving as few grids as found to reach the goal.

    The goal is ``max(target, proven lower bound)`` of the spread. Grids whose staff is not in ``team`` (a
    leaver's) must move; locked grids of ``team`` stay. Candidates: minimal-change balancing
    (:func:`grids.assign.assign_staff`) at several bands, each refined by border moves that lower the spread and
    then thinned by giving grids back; and a fresh partition matched to the current owners. The candidate
    within the goal moving fewest grids (then households) wins; when none reaches it, the lowest spread.

    Parameters
    ----------
    grids : GeoDataFrame
        The branch's grids (``grid_id``, ``households``, ``staff_id``, ``locked``, polygons).
    team : list of str
        The staff ids who take the grids afterwards (at least one).

    Returns
    -------
    (Series, dict)
        ``staff_id`` aligned to ``grids.index``; ``{"goal", "lower_bound", "spread", "reached"}``.

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"grid_id": list("abcd"), "households": [10] * 4, "staff_id": ["x", "x", "y", "z"],
    ...                       "locked": [False, False, True, False]}, crs=4549,
    ...                      geometry=[shapely.box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(4)])
    >>> new, info = rebalance_branch(g, ["x", "y"])  # z leaves: its grid goes to y, nothing else moves
    >>> new.tolist(), info["reached"]
    (['x', 'x', 'y', 'y'], True)
    """
    if not team:
        raise ValidationError("网点没有可以接手网格的员工", fix="先添加客户经理，再登记离职或调动")
    n = len(grids)
    ids = list(dict.fromkeys(str(s) for s in team))
    k = len(ids)
    index = {s: i for i, s in enumerate(ids)}
    w = pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy(dtype=float)
    owner = grids["staff_id"].astype(object) if "staff_id" in grids.columns else pd.Series(None, index=grids.index)
    orig = np.array([index.get(str(s), -1) if isinstance(s, str) else -1 for s in owner], dtype=np.int64)
    lock_col = grids["locked"] if "locked" in grids.columns else pd.Series(False, index=grids.index)
    locked = lock_col.astype("boolean").fillna(False).astype(bool).to_numpy() & (orig >= 0)
    bound = float(balance_bounds(w, k)["lower_bound"]) if n else 0.0
    goal = max(target, bound)
    if n == 0:
        return pd.Series([], index=grids.index, dtype=object), {"goal": goal, "lower_bound": bound, "spread": 0.0,
                                                                "reached": True}
    adj = sparse.csr_matrix(grid_adjacency(grids) if adjacency is None else adjacency)
    frame = grids.assign(staff_id=np.array([ids[i] if i >= 0 else None for i in orig], dtype=object), branch_id="_b")
    team_frame = pd.DataFrame({"staff_id": ids, "branch_id": "_b"})
    lock_s = pd.Series(locked, index=grids.index)
    results = []
    if k == 1:
        results.append(np.zeros(n, dtype=np.int64))
    else:
        starts = []
        for f in BANDS:
            staffed = assign.assign_staff(frame, team_frame, locked=lock_s, minimal_change=True,
                                          tolerance=goal / 2 * f, adjacency=adj)
            starts.append(np.array([index[s] for s in staffed], dtype=np.int64))
        fresh = assign.assign_staff(frame, team_frame, locked=lock_s, adjacency=adj)
        starts.append(np.array([index[s] for s in fresh], dtype=np.int64))
        seen: set[bytes] = set()
        for lab in starts:
            if lab.tobytes() in seen:
                continue
            seen.add(lab.tobytes())
            lab = _refine(adj, lab, w, k, locked, goal, orig)
            results.append(_give_back(adj, lab, w, k, locked, goal, orig))

    def score(lab: np.ndarray) -> tuple[bool, float, float, float]:
        spread = branch_spread(np.bincount(lab, weights=w, minlength=k))
        moved = lab != orig
        return (spread > goal + _EPS, int(moved.sum()) if spread <= goal + _EPS else spread,
                float(w[moved].sum()), spread)

    best = min(results, key=score)
    spread = branch_spread(np.bincount(best, weights=w, minlength=k))
    info = {"goal": goal, "lower_bound": bound, "spread": spread, "reached": spread <= goal + _EPS}
    return pd.Series(np.asarray(ids, dtype=object)[best], index=grids.index, dtype=object), info


# --------------------------------------------------------------------------------------------------------
# the change, computed
# --------------------------------------------------------------------------------------------------------


MOVE_COLUMNS = ["grid_id", "name", "households", "branch_id", "before", "after", "reason", "lock_released"]


@dataclass
class StaffChange:
    """One lifecycle change as computed (and, after saving, the plan revision it made).

    Attributes
    ----------
    action : str
        ``add``, ``leave`` or ``move``.
    staff : dict
        The staff row after the change (``staff_id``, ``name``, ``branch_id``, ``role``…).
    from_branch, to_branch : str or None
        The branch left (leave, move) and joined (add, move).
    moves : DataFrame
        One row per grid that changes hands: :data:`MOVE_COLUMNS`; ``reason`` is ``交接`` (a grid of a staff
        member no longer on the team) or ``均衡`` (moved to bring the spread within the goal).
    balance : DataFrame
        Per branch concerned: staff before/after, spread before/after, ``lower_bound``, ``goal``, ``reached``.
    versions : dict
        ``grid_id`` → version of every grid of the branches concerned as computed (judged when saving).
    plan_id : str
        The plan changed ("" when the workspace has none).
    """

    action: str
    staff: dict[str, Any]
    from_branch: str | None
    to_branch: str | None
    moves: pd.DataFrame
    balance: pd.DataFrame
    versions: dict[str, int] = field(default_factory=dict)
    plan_id: str = ""
    teams: dict[str, list[str]] = field(default_factory=dict)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    revision: int | None = None

    @property
    def staff_id(self) -> str:
        """The staff member concerned."""
        return str(self.staff["staff_id"])

    @property
    def handed_over(self) -> int:
        """Grids that changed hands because their holder left the team."""
        return int((self.moves["reason"] == "交接").sum())

    @property
    def rebalanced(self) -> int:
        """Grids of staff still on the team moved to reach the spread goal."""
        return int((self.moves["reason"] == "均衡").sum())

    @property
    def released_locks(self) -> list[str]:
        """Grids whose lock was released (they were locked to the leaver)."""
        return self.moves.loc[self.moves["lock_released"].astype(bool), "grid_id"].astype(str).tolist()

    @property
    def reached(self) -> bool:
        """True when every branch concerned is within its spread goal."""
        return bool(self.balance["reached"].all()) if len(self.balance) else True

    def title(self) -> str:
        """One Chinese line naming the change."""
        s = self.staff
        who = f"{plain(s.get('name') or '')}（{self.staff_id}）"
        if self.action == "leave":
            return f"{who} 离职（网点 {self.from_branch}）"
        if self.action == "add":
            return f"新增{plain(s.get('role') or '')} {who}（网点 {self.to_branch}）"
        return f"{who} 从网点 {self.from_branch} 调到 {self.to_branch}"

    def lines(self, *, limit: int = 50) -> list[str]:
        """What the change does, in Chinese lines (for the terminal)."""
        out = [self.title() + (f"，方案第 {self.revision} 版" if self.revision is not None else "（预览，未保存）")]
        out.append(f"移交 {self.handed_over} 个网格，为均衡另调 {self.rebalanced} 个网格，共 {len(self.moves)} 个")
        if self.released_locks:
            out.append(f"解除锁定：{'、'.join(self.released_locks)}")
        r: Any  # a row of the moves table (its fields are untyped)
        for r in self.moves.head(limit).itertuples():
            lock = "（解除锁定）" if r.lock_released else ""
            out.append(f"  {r.grid_id} {plain(r.name or '')}（{int(r.households)} 户）：{r.before or '（无）'} → "
                       f"{r.after}　{r.reason}{lock}")
        if len(self.moves) > limit:
            out.append(f"  … 另有 {len(self.moves) - limit} 个（--json 查看全部）")
        for b in self.balance.itertuples():
            state = "已达到" if b.reached else "未达到"
            out.append(f"网点 {b.branch_id}：客户经理 {b.staff_before} → {b.staff_after} 人，负荷差 "
                       f"{b.spread_before:.1%} → {b.spread_after:.1%}（目标 ≤ {b.goal:.1%}，"
                       f"可证明的下限 {b.lower_bound:.1%}，{state}）")
        for a in self.accounts:
            what = "停用" if a.get("active") is False else f"改绑网点 {a.get('branch_id')}"
            out.append(f"账号 {a['username']}：{what}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the change."""
        from grids.assign.core import _records

        return {"action": self.action, "staff": {k: plans._norm(v) for k, v in self.staff.items()},
                "from_branch": self.from_branch, "to_branch": self.to_branch, "plan_id": self.plan_id,
                "revision": self.revision, "handed_over": self.handed_over, "rebalanced": self.rebalanced,
                "moved": len(self.moves), "released_locks": self.released_locks, "reached": self.reached,
                "moves": _records(self.moves), "balance": _records(self.balance), "accounts": list(self.accounts)}


def _active(staff: pd.DataFrame) -> pd.Series:
    if "status" not in staff.columns:
        return pd.Series(True, index=staff.index)
    return ~staff["status"].astype(object).eq(STAFF_LEFT).fillna(False).astype(bool)


def _staff_row(staff: pd.DataFrame, staff_id: str) -> pd.Series:
    hit = staff[staff["staff_id"].astype(str) == str(staff_id)]
    if hit.empty:
        raise ValidationError(f"没有员工 {plain(staff_id)}", column="staff_id", fix="检查员工编号（人员分配页列出本网点员工）")
    if not bool(_active(hit).iloc[0]):
        raise ValidationError(f"员工 {plain(staff_id)} 已登记离职", column="staff_id", fix="离职的员工不能再离职或调动")
    return hit.iloc[0]


def _team(staff: pd.DataFrame, branch: str) -> list[str]:
    people = assign.assignable_staff(staff)
    return sorted(people.loc[people["branch_id"].astype(str) == str(branch), "staff_id"].astype(str))


def _compute(action: str, grids: gpd.GeoDataFrame, before: pd.DataFrame, after: pd.DataFrame, row: dict[str, Any],
             from_branch: str | None, to_branch: str | None, *, plan_id: str, target: float) -> StaffChange:
    moves, balance, vers, teams = [], [], {}, {}
    g_branch = grids["branch_id"].astype(object) if "branch_id" in grids.columns else pd.Series(dtype=object)
    for b in dict.fromkeys(x for x in (from_branch, to_branch) if x):
        sub = grids[(g_branch == b).to_numpy()].sort_values("grid_id", kind="stable")
        vers.update(plans.versions(sub))
        t_before, t_after = _team(before, b), _team(after, b)
        teams[b] = t_before
        w = pd.to_numeric(sub["households"], errors="coerce").fillna(0).to_numpy(dtype=float)
        owner: np.ndarray | list[Any] = sub["staff_id"].astype(object).where(sub["staff_id"].notna(), None).to_numpy() if len(sub) else []
        loads_before = np.array([w[owner == s].sum() for s in t_before]) if len(t_before) else np.zeros(0)
        if not len(sub):
            balance.append({"branch_id": b, "staff_before": len(t_before), "staff_after": len(t_after),
                            "spread_before": 0.0, "spread_after": 0.0, "lower_bound": 0.0,
                            "goal": target, "reached": True})
            continue
        if not t_after:
            raise ValidationError(
                f"网点 {b} 没有其他员工接手它的 {len(sub)} 个网格", column="staff_id",
                fix="先在该网点新增客户经理，再登记离职或调动")
        if t_after == t_before and set(owner[pd.notna(owner)].tolist()) <= set(t_after):
            # the team is unchanged (a 网点主任 who takes no grid): nothing to hand over, nothing rebalanced
            new = pd.Series(owner, index=sub.index, dtype=object)
            spread = branch_spread(loads_before)
            bound = float(balance_bounds(w, len(t_after))["lower_bound"])
            info = {"spread": spread, "lower_bound": bound, "goal": max(target, bound),
                    "reached": spread <= max(target, bound) + _EPS}
        else:
            new, info = rebalance_branch(sub, t_after, target=target)
        balance.append({"branch_id": b, "staff_before": len(t_before), "staff_after": len(t_after),
                        "spread_before": branch_spread(loads_before), "spread_after": info["spread"],
                        "lower_bound": info["lower_bound"], "goal": info["goal"], "reached": bool(info["reached"])})
        locked = sub["locked"].astype("boolean").fillna(False).astype(bool).to_numpy() \
            if "locked" in sub.columns else np.zeros(len(sub), dtype=bool)
        for i, (gid, old, nw) in enumerate(zip(sub["grid_id"].astype(str), owner, new, strict=True)):
            if old == nw:
                continue
            gone = old not in t_after
            moves.append({"grid_id": gid, "name": sub["name"].iloc[i] if "name" in sub.columns else None,
                          "households": int(w[i]), "branch_id": b, "before": old, "after": nw,
                          "reason": "交接" if gone else "均衡", "lock_released": bool(locked[i] and gone)})
    return StaffChange(action=action, staff=row, from_branch=from_branch, to_branch=to_branch,
                       moves=pd.DataFrame(moves, columns=MOVE_COLUMNS),
                       balance=pd.DataFrame(balance, columns=["branch_id", "staff_before", "staff_after",
                                                              "spread_before", "spread_after", "lower_bound",
                                                              "goal", "reached"]),
                       versions=vers, plan_id=plan_id, teams=teams)


def preview_leave(grids: gpd.GeoDataFrame, staff: pd.DataFrame, staff_id: str, *, plan_id: str = "",
                  target: float = BALANCE_TARGET) -> StaffChange:
    """What a leave does (nothing written): the leaver's grids handed over, the branch rebalanced.

    Raises ValidationError for an unknown or already-left staff member, or a branch left with nobody.
    """
    row = _staff_row(staff, staff_id)
    after = staff.copy()
    after.loc[after["staff_id"].astype(str) == str(staff_id), "status"] = STAFF_LEFT
    data = {**{str(k): plans._norm(v) for k, v in row.items()}, "status": STAFF_LEFT}
    return _compute("leave", grids, staff, after, data, str(row["branch_id"]), None, plan_id=plan_id, target=target)


def _newcomer(staff: pd.DataFrame, branches: pd.DataFrame, person: Mapping[str, Any]) -> dict[str, Any]:
    sid = normalize_text(person.get("staff_id"))
    name = normalize_text(person.get("name"))
    branch = normalize_text(person.get("branch_id"))
    role = normalize_text(person.get("role") or "客户经理")
    if not _STAFF_ID.match(sid):
        raise ValidationError(f"员工编号 “{plain(sid)}” 无效", column="staff_id",
                              fix="用字母、数字开头，只含字母、数字和 . - _，最多 32 位，例如 S200")
    if sid.casefold() in {str(s).casefold() for s in staff["staff_id"]}:
        raise ValidationError(f"员工编号 {sid} 已存在（含已离职员工）", column="staff_id", fix="换一个未用过的编号")
    if not name or len(name) > 32 or name != plain(name, limit=32):
        raise ValidationError("员工姓名为空、过长或含控制字符", column="name", fix="填写 1–32 个字的姓名")
    if branch not in set(branches["branch_id"].astype(str)):
        raise ValidationError(f"没有网点 {plain(branch)}", column="branch_id", fix="从现有网点中选择，例如 B01")
    if role not in STAFF_ROLES:
        raise ValidationError(f"未知岗位 “{plain(role)}”", column="role", fix=f"岗位应为：{'、'.join(STAFF_ROLES)}")
    phone = normalize_text(person.get("phone") or "")
    return {"staff_id": sid, "name": name, "branch_id": branch, "role": role, "phone": phone or None,
            "status": "active", "left_at": None}


def preview_add(grids: gpd.GeoDataFrame, staff: pd.DataFrame, branches: pd.DataFrame, person: Mapping[str, Any], *,
                plan_id: str = "", target: float = BALANCE_TARGET) -> StaffChange:
    """What adding ``person`` (``staff_id``, ``name``, ``branch_id``, ``role``, ``phone``) does (nothing written)."""
    row = _newcomer(staff, branches, person)
    after = pd.concat([staff, pd.DataFrame([row])], ignore_index=True)
    return _compute("add", grids, staff, after, row, None, row["branch_id"], plan_id=plan_id, target=target)


def preview_move(grids: gpd.GeoDataFrame, staff: pd.DataFrame, branches: pd.DataFrame, staff_id: str,
                 to_branch: str, *, plan_id: str = "", target: float = BALANCE_TARGET) -> StaffChange:
    """What moving ``staff_id`` to ``to_branch`` does: both branches rebalanced (nothing written)."""
    row = _staff_row(staff, staff_id)
    to_branch = normalize_text(to_branch)
    if to_branch not in set(branches["branch_id"].astype(str)):
        raise ValidationError(f"没有网点 {plain(to_branch)}", column="branch_id", fix="从现有网点中选择，例如 B02")
    if to_branch == str(row["branch_id"]):
        raise ValidationError(f"员工 {staff_id} 已在网点 {to_branch}", column="branch_id", fix="选择另一个网点")
    after = staff.copy()
    after.loc[after["staff_id"].astype(str) == str(staff_id), "branch_id"] = to_branch
    data = {**{str(k): plans._norm(v) for k, v in row.items()}, "branch_id": to_branch}
    return _compute("move", grids, staff, after, data, str(row["branch_id"]), to_branch, plan_id=plan_id,
                    target=target)


# --------------------------------------------------------------------------------------------------------
# on a workspace
# --------------------------------------------------------------------------------------------------------


def _plan_and_grids(ws: Workspace, plan_id: str | None) -> tuple[str, gpd.GeoDataFrame]:
    """The plan a change applies to (default: the published one) and its grids; ``""`` and no grids when the
    workspace has no published plan (drafts are the planners': ``check`` flags a leaver's grids there)."""
    if plan_id is None:
        listed = plans.list_plans(ws)
        published = listed[listed["status"] == "published"] if len(listed) else listed
        if not len(published):
            return "", gpd.GeoDataFrame({"grid_id": [], "branch_id": [], "staff_id": [], "households": []},
                                        geometry=gpd.GeoSeries([], crs=4490))
        plan_id = str(published["plan_id"].iloc[0])
    return plan_id, plans.read_grids(ws, plan_id)


def preview(ws: Workspace, action: str, *, staff_id: str | None = None, person: Mapping[str, Any] | None = None,
            to_branch: str | None = None, plan_id: str | None = None,
            target: float = BALANCE_TARGET) -> StaffChange:
    """Compute ``action`` (``add``/``leave``/``move``) on a plan (default: the published one; none: the staff
    row and accounts only)."""
    pid, grids = _plan_and_grids(ws, plan_id)
    staff = ws.read("staff")
    if action == "leave":
        return preview_leave(grids, staff, str(staff_id), plan_id=pid, target=target)
    branches = ws.read("branches", columns=["branch_id"])
    if action == "add":
        return preview_add(grids, staff, branches, person or {}, plan_id=pid, target=target)
    if action == "move":
        return preview_move(grids, staff, branches, str(staff_id), str(to_branch), plan_id=pid, target=target)
    raise ValidationError(f"未知的人员变动 “{plain(action)}”", fix="add、leave 或 move")


def _ensure_status_columns(tx: Any) -> None:
    """Add ``staff.status`` / ``left_at`` to a workspace made before they were declared."""
    types, _, _ = tx._layer_schema("staff")
    for col, sql in (("status", "TEXT"), ("left_at", "DATETIME")):
        if col not in types:
            tx._add_column("staff", col, sql)


def save(ws: Workspace, change: StaffChange, *, actor: str, seen: Mapping[str, int] | None = None) -> StaffChange:
    """Write a computed change in one transaction; returns it with ``revision`` (and ``accounts``) filled.

    Parameters
    ----------
    seen : mapping, optional
        ``grid_id`` → version the user saw, for every grid of the branches concerned; any that differs from
        now (or a grid added since) refuses the change. None: judged against what the change was computed on.

    Raises
    ------
    StaleEditError
        A grid of the branches concerned, or their staff, changed since it was read.
    ValidationError
        The staff row is not as computed (already left, moved, or the id is taken meanwhile); an archived plan.
    """
    sid = change.staff_id
    with ws.transaction(actor=actor, action=f"人员{ACTION_NAMES[change.action]}：{sid}") as tx:
        _ensure_status_columns(tx)
        staff = tx.read("staff")
        if change.action == "add":
            _newcomer(staff, pd.DataFrame({"branch_id": [change.to_branch]}), change.staff)
        else:
            row = _staff_row(staff, sid)
            if str(row["branch_id"]) != change.from_branch:
                raise StaleEditError(f"员工 {sid} 的网点已变为 {row['branch_id']}，请刷新后重做", ids=[sid])
        for b, team in change.teams.items():
            if _team(staff, b) != team:
                raise StaleEditError(f"网点 {b} 的员工名单已被他人修改，请刷新后重做", ids=[b])
        if change.plan_id:
            _, current = plans._editable_plan(tx, change.plan_id, None, doing="调整人员", unsaved="未保存任何内容")
            names = list(change.teams)
            marks = ",".join("?" for _ in names)
            rows = tx.read("grids", where=f"plan_id = ? AND branch_id IN ({marks})", params=[change.plan_id, *names])
            now = plans.versions(rows)
            stale = {g for g in set(now) | set(change.versions) if now.get(g) != change.versions.get(g)}
            if seen is not None:
                stale |= {g for g in now if seen.get(g) != now[g]}
            if stale:
                raise StaleEditError(ids=sorted(stale))
            detail = []
            for r in change.moves.itertuples():
                fields: dict[str, Any] = {"staff_id": r.after}
                detail.append({"grid_id": r.grid_id, "field": "staff_id", "before": r.before, "after": r.after,
                               "reason": r.reason})
                if r.lock_released:
                    fields["locked"] = False
                    detail.append({"grid_id": r.grid_id, "field": "locked", "before": True, "after": False})
                sets = ", ".join(f'"{f}" = ?' for f in fields)
                tx.execute(f"UPDATE grids SET {sets}, version = COALESCE(version, 0) + 1 "
                           "WHERE plan_id = ? AND grid_id = ?", (*fields.values(), change.plan_id, r.grid_id))
            tx.execute("UPDATE plans SET revision = ?, updated_at = ? WHERE plan_id = ?",
                       (current + 1, plans._now(), change.plan_id))
            tx.note("grids", {"plan_id": change.plan_id, "revision": current + 1, "changed": detail,
                              "handed_over": change.handed_over, "rebalanced": change.rebalanced,
                              "balance": change.to_dict()["balance"]})
            change.revision = current + 1
        if change.action == "add":
            tx.append("staff", pd.DataFrame([change.staff]))
            tx.note("staff", {"op": "add", "staff_id": sid, "before": None, "after": change.to_dict()["staff"]})
        elif change.action == "leave":
            when = plans._now()
            tx.execute("UPDATE staff SET status = ?, left_at = ? WHERE staff_id = ?", (STAFF_LEFT, when, sid))
            tx.note("staff", {"op": "leave", "staff_id": sid, "before": {"status": "active"},
                              "after": {"status": STAFF_LEFT, "left_at": when}})
            change.accounts = auth.disable_staff_accounts(tx, sid)
        else:
            tx.execute("UPDATE staff SET branch_id = ? WHERE staff_id = ?", (change.to_branch, sid))
            tx.note("staff", {"op": "move", "staff_id": sid, "before": {"branch_id": change.from_branch},
                              "after": {"branch_id": change.to_branch}})
            change.accounts = auth.rebind_staff_accounts(tx, sid, str(change.to_branch))
    return change


def leave(ws: Workspace, staff_id: str, *, actor: str, plan_id: str | None = None,
          seen: Mapping[str, int] | None = None, target: float = BALANCE_TARGET) -> StaffChange:
    """Record ``staff_id`` as left: grids handed over, branch rebalanced, accounts disabled (one transaction)."""
    return save(ws, preview(ws, "leave", staff_id=staff_id, plan_id=plan_id, target=target), actor=actor, seen=seen)


def add(ws: Workspace, person: Mapping[str, Any], *, actor: str, plan_id: str | None = None,
        seen: Mapping[str, int] | None = None, target: float = BALANCE_TARGET) -> StaffChange:
    """Add a staff member (``staff_id``, ``name``, ``branch_id``, ``role``, ``phone``) who takes grids."""
    return save(ws, preview(ws, "add", person=person, plan_id=plan_id, target=target), actor=actor, seen=seen)


def move(ws: Workspace, staff_id: str, to_branch: str, *, actor: str, plan_id: str | None = None,
         seen: Mapping[str, int] | None = None, target: float = BALANCE_TARGET) -> StaffChange:
    """Move ``staff_id`` to ``to_branch``: both branches rebalanced, the accounts' branch follows."""
    change = preview(ws, "move", staff_id=staff_id, to_branch=to_branch, plan_id=plan_id, target=target)
    return save(ws, change, actor=actor, seen=seen)
