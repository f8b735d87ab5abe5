"""Assignment: grids → branches (nearest, capacity-aware, contiguous) and grids → staff (balanced, contiguous).

"按区域就近分配 … 责任到岗、到人": every grid gets one branch (营业网点) and one customer manager (客户经理).

* :func:`branch_distances` — grid → branch distance in metres, straight line in the Gauss-Krüger zone or
  over the street network and its ferries (:func:`grids.assign.graph.road_distance_matrix`).
* :func:`assign_branches` — the transportation view: each grid goes to a branch at least total
  household-distance, subject to each branch's capacity (its share of the staff plus ``capacity_slack``),
  solved as a linear programme (HiGHS) and rounded; then every territory is repaired to one piece, and no
  branch ends above ``CAPACITY_LIMIT`` (1.10) times its capacity.
* :func:`assign_staff` — inside each branch, contiguous territories of balanced workload
  (:func:`grids.assign.partition.partition`).
* :func:`assign_plan` — both steps and the metrics (:mod:`grids.assign.metrics`).
* :func:`what_if` — a branch added or closed with the least change to the plan (only the closed branch's
  grids move, its staff with them; a new branch takes only the grids nearer to it), before and after.

Locked grids (``locked`` column) keep their branch and manager. Islands — grids that share no edge with any
other grid — may stand alone in any territory without counting as an extra piece.

Water: the county's landmasses (:func:`grids.landmass.land_parts`: the outline's islands, joined where a ferry
links them) come first. A grid goes to a branch on its own landmass whenever one there has room; it crosses
water only when its landmass has no branch or no room left. By road, islands meet only by ferry; where no ferry
links two islands the distance is the straight line plus ``crossing_penalty`` metres.

Examples
--------
>>> from geodata.synthetic import synthetic_county
>>> county = synthetic_county(rows=8, cols=8, n_branches=3, n_staff=9, households=3000)
>>> result = assign_plan(county.grids, county.branches, county.staff)
>>> result.grids["staff_id"].notna().all(), int(result.staff["pieces"].max())
(np.True_, 1)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.optimize import linear_sum_assignment, linprog

from grids.assign.graph import components, grid_adjacency, road_distance_matrix, to_metres
from grids.assign.metrics import assignment_metrics, grid_distance_stats
from grids.assign.partition import _Graph, partition
from grids.errors import ValidationError
from grids.landmass import land_parts, landmass_of

if TYPE_CHECKING:
    from grids.assign.graph import SparseMatrix

__all__ = [
    "ASSIGN_BY_KEY",
    "BY",
    "CAPACITY_LIMIT",
    "CROSSING_PENALTY_M",
    "DETOUR_CAP",
    "AssignmentResult",
    "WhatIfResult",
    "assign_branches",
    "assign_plan",
    "assign_staff",
    "assignable_staff",
    "branch_capacity",
    "branch_distances",
    "default_by",
    "grid_workload",
    "landmass_numbers",
    "what_if",
]

BY = ("straight", "road")

ASSIGN_BY_KEY = "assign_by"
"""Workspace setting (``ws.meta``) naming the distance measure ``assign`` uses when none is given."""

CAPACITY_LIMIT = 1.10
"""No branch ends above this multiple of its capacity (:func:`branch_capacity`)."""

ROAD_TIE_BREAK = 0.05
"""Share of the straight line added to road distances when choosing branches: it only breaks ties."""

DETOUR_CAP = 3.0
"""By road, no way on one island counts longer than this many straight lines (see :func:`branch_distances`)."""

CROSSING_PENALTY_M = 10_000.0
"""Metres added to the straight line across water between islands no ferry links (road distances)."""


def default_by(meta: dict[str, str]) -> str:
    """The distance measure a workspace asks for (its ``assign_by`` setting), ``"straight"`` when unset.

    Examples
    --------
    >>> default_by({}), default_by({"assign_by": "road"})
    ('straight', 'road')
    """
    by = str(meta.get(ASSIGN_BY_KEY) or "straight").strip()
    if by not in BY:
        raise ValidationError(f"工作区设置 {ASSIGN_BY_KEY} 的值 “{by}” 无效",
                              fix="运行 `python -m grids assign 工作区 --set-default straight`（或 road）重新设置")
    return by


# --------------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: tuple[str, ...], layer: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{layer} 缺少列：{', '.join(missing)}",
            column=missing[0],
            fix=f"{layer} 需要这些列：{', '.join(columns)}",
        )


def _check_inputs(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, staff: pd.DataFrame | None) -> None:
    _require(grids, ("households",), "网格（grids）")
    _require(branches, ("branch_id",), "网点（branches）")
    if staff is not None:
        _require(staff, ("staff_id", "branch_id"), "员工（staff）")
    if not len(branches):
        raise ValidationError("没有任何营业网点，无法分配网格", fix="先导入 branches 图层（网点位置）")
    if branches["branch_id"].duplicated().any():
        dup = branches.loc[branches["branch_id"].duplicated(), "branch_id"].iloc[0]
        raise ValidationError(f"网点编号重复：{dup}", column="branch_id", fix="每个网点的 branch_id 必须唯一")
    if grids.geometry.isna().any() or grids.geometry.is_empty.any():
        row = int(np.flatnonzero((grids.geometry.isna() | grids.geometry.is_empty).to_numpy())[0])
        raise ValidationError("网格缺少几何图形", row=row, fix="删除该网格或补画其边界")
    hh = pd.to_numeric(grids["households"], errors="coerce")
    if (hh < 0).any():
        row = int(np.flatnonzero((hh < 0).to_numpy())[0])
        raise ValidationError("户数为负数", row=row, column="households", fix="户数应为 0 或正整数")


def _households(grids: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy(dtype=float)


def _text_column(grids: pd.DataFrame, name: str) -> pd.Series:
    if name not in grids.columns:
        return pd.Series([None] * len(grids), index=grids.index, dtype=object)
    s = grids[name].astype(object)
    return s.where(s.notna() & (s.astype(str).str.strip() != ""), None)


def _locked(grids: pd.DataFrame, locked: pd.Series | None) -> np.ndarray:
    if locked is None:
        locked = grids["locked"] if "locked" in grids.columns else None
    if locked is None:
        return np.zeros(len(grids), dtype=bool)
    return pd.Series(locked, index=grids.index).fillna(False).astype(bool).to_numpy()


def assignable_staff(staff: pd.DataFrame) -> pd.DataFrame:
    """The staff who take grids: customer managers (客户经理); at a branch without one, whoever works there.
    Leavers (``status`` ``left``) never do.

    Examples
    --------
    >>> s = pd.DataFrame({"staff_id": ["a", "b", "c"], "branch_id": ["B1", "B1", "B2"],
    ...                   "role": ["网点主任", "客户经理", "网点主任"]})
    >>> assignable_staff(s)["staff_id"].tolist()
    ['b', 'c']
    """
    s = staff.dropna(subset=["staff_id", "branch_id"])
    if "status" in s.columns:  # leavers keep their row (history) but take no grid
        s = s[~s["status"].astype(object).eq("left").fillna(False).astype(bool).to_numpy()]
    if "role" not in s.columns:
        return s.reset_index(drop=True)
    is_cm = s["role"].astype(object).eq("客户经理").fillna(False).astype(bool)
    has_cm = is_cm.groupby(s["branch_id"]).transform("any").astype(bool)
    return s[is_cm | ~has_cm].reset_index(drop=True)


def default_new_branch_staff(staff: pd.DataFrame) -> int:
    """How many customer managers a new branch of a what-if gets unless told: the median team of the
    existing branches (:func:`assignable_staff`), at least 1.

    Examples
    --------
    >>> s = pd.DataFrame({"staff_id": list("abcdef"), "branch_id": ["B1", "B1", "B1", "B2", "B2", "B3"],
    ...                   "role": "客户经理"})
    >>> default_new_branch_staff(s), default_new_branch_staff(s.iloc[:0])
    (2, 1)
    """
    team = assignable_staff(staff).groupby("branch_id").size()
    return max(1, round(float(team.median()))) if len(team) else 1


def branch_capacity(branches: pd.DataFrame, staff: pd.DataFrame, total: float, *,
                    capacity_slack: float = 0.15) -> np.ndarray:
    """Household capacity of each branch: its share of the staff times the total, plus the slack.

    Examples
    --------
    >>> b = pd.DataFrame({"branch_id": ["B1", "B2"]})
    >>> s = pd.DataFrame({"staff_id": ["x", "y", "z"], "branch_id": ["B1", "B1", "B2"]})
    >>> branch_capacity(b, s, 300, capacity_slack=0.1).round(1).tolist()
    [220.0, 110.0]
    """
    counts = assignable_staff(staff).groupby("branch_id").size()
    n = counts.reindex(branches["branch_id"]).fillna(0).to_numpy(dtype=float)
    if n.sum() == 0:  # no staff recorded anywhere: plain nearest-branch
        return np.full(len(n), np.inf)
    capacity: np.ndarray = n / n.sum() * total * (1.0 + capacity_slack)
    return capacity


# --------------------------------------------------------------------------------------------------------
# land and water
# --------------------------------------------------------------------------------------------------------


def _epsg(data: gpd.GeoDataFrame | gpd.GeoSeries) -> int | None:
    """EPSG code of data that has a CRS (data in metres from :func:`to_metres`, which refuses data without)."""
    assert data.crs is not None
    return data.crs.to_epsg()


def _land(grids: gpd.GeoDataFrame, outline: gpd.GeoDataFrame | gpd.GeoSeries | None,
          streets: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Islands of the county with their landmass (:func:`grids.landmass.land_parts`), in metres.

    Without ``outline`` the grids stand for the county (they tile it): their union, closed over gaps under a
    metre.
    """
    gk = to_metres(grids)
    if outline is None or not len(outline):
        geoms = np.asarray(gk.values, dtype=object)
        base = gpd.GeoSeries([shapely.buffer(shapely.union_all(shapely.buffer(geoms, 0.5, quad_segs=1)), -0.5,
                                             quad_segs=1)], crs=gk.crs)
    else:
        base = to_metres(outline, epsg=_epsg(gk))
    parts = land_parts(base, streets=streets)
    return parts if len(parts) else land_parts(gpd.GeoSeries([shapely.union_all(np.asarray(gk.values))],
                                                             crs=gk.crs))


def _placement(geoms: gpd.GeoDataFrame | gpd.GeoSeries, land: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Island (part) and landmass of each geometry."""
    part = landmass_of(geoms, land, column="part")
    mass = land.set_index("part")["landmass"].reindex(part).to_numpy(dtype=int)
    return part, mass


def landmass_numbers(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, *,
                     outline: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
                     streets: gpd.GeoDataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Landmass number of each grid and of each branch (:func:`grids.landmass.land_parts`).

    Parameters
    ----------
    outline : GeoDataFrame or GeoSeries, optional
        The county outline (or its islands); by default the union of the grids.
    streets : GeoDataFrame, optional
        Roads; its ferry lanes (``class == 'ferry'``) join islands into one landmass.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Grids (by representative point) and branches; water lies between a grid and a branch whose numbers
        differ.

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"households": [1, 1]}, crs=4549,
    ...                      geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(3000, 0, 4000, 1000)])
    >>> b = gpd.GeoDataFrame({"branch_id": ["B1"]}, geometry=[shapely.Point(500, 500)], crs=4549)
    >>> grid_mass, branch_mass = landmass_numbers(g, b)
    >>> (grid_mass[:, None] != branch_mass[None, :]).ravel().tolist()
    [False, True]
    """
    return _masses(grids, branches, _land(grids, outline, streets))


def _masses(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame,
            land: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    _, gm = _placement(to_metres(grids), land)
    _, bm = _placement(to_metres(branches, epsg=_epsg(land)), land)
    return gm, bm


# --------------------------------------------------------------------------------------------------------
# distances and workload
# --------------------------------------------------------------------------------------------------------


def branch_distances(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, *, by: str = "straight",
                     streets: gpd.GeoDataFrame | None = None,
                     outline: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
                     crossing_penalty: float = CROSSING_PENALTY_M,
                     detour_cap: float = DETOUR_CAP) -> pd.DataFrame:
    """Distance in metres from each grid's centroid to each branch.

    Parameters
    ----------
    by : {"straight", "road"}
        Straight line in the Gauss-Krüger zone, or shortest path over ``streets`` and its ferry lanes, never
        across water otherwise (see :func:`grids.assign.graph.road_distance_matrix`; road pieces of one island
        that do not meet are joined off-road). Where the network links no road to a grid or a branch, the
        straight line stands in on the same island, and the straight line plus ``crossing_penalty`` across
        water; grids the network connects to no branch at all are counted in ``attrs["road_fallback"]``.
    streets : GeoDataFrame, optional
        Needed by road.
    outline : GeoDataFrame or GeoSeries, optional
        The county outline, for its islands (road only); by default the union of the grids.
    crossing_penalty : float
        Metres (road only), see above.
    detour_cap : float
        Road only: on one island a way counts at most this many times the straight line (a branch far from
        any road is still reached across country by the places around it, instead of over a long detour).

    Returns
    -------
    DataFrame
        Index ``grids.index``, one column per ``branch_id``.

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"households": [1]}, geometry=[shapely.box(0, 0, 1000, 1000)], crs=4549)
    >>> b = gpd.GeoDataFrame({"branch_id": ["B1"]}, geometry=[shapely.Point(3500, 500)], crs=4549)
    >>> branch_distances(g, b)["B1"].tolist()
    [3000.0]
    """
    if by not in BY:
        raise ValidationError(f"未知的距离方式 “{by}”", fix="用 straight（直线）或 road（道路）")
    if not detour_cap >= 1:
        raise ValidationError(f"绕行上限必须不小于 1：{detour_cap}", fix="取 1（即直线）或更大，例如 3")
    if not crossing_penalty >= 0:
        raise ValidationError(f"跨水惩罚不能为负：{crossing_penalty}", fix="取 0 或正的米数，例如 10000")
    gk = to_metres(grids)
    centroids = gk.centroid
    bpts = shapely.centroid(np.asarray(to_metres(branches, epsg=_epsg(gk)).values, dtype=object))
    cx, cy = centroids.x.to_numpy(), centroids.y.to_numpy()
    straight = np.hypot(cx[:, None] - shapely.get_x(bpts)[None, :], cy[:, None] - shapely.get_y(bpts)[None, :])
    fallback = 0
    if by == "road":
        if streets is None or not len(streets):
            raise ValidationError("按道路距离分配需要街道/道路图层", fix="导入 streets 图层，或改用 --by straight")
        land = _land(grids, outline, streets)
        d = road_distance_matrix(gpd.GeoSeries(bpts, crs=gk.crs), centroids, streets, land=land).T
        lost = ~np.isfinite(d)
        fallback = int(lost.all(axis=1).sum())
        gp, _ = _placement(gk, land)
        bp, _ = _placement(gpd.GeoSeries(bpts, crs=gk.crs), land)
        across = gp[:, None] != bp[None, :]
        d = np.where(lost, straight + np.where(across, crossing_penalty, 0.0), d)
        # on one island no way counts longer than detour_cap straight lines: across country instead
        d = np.where(across, d, np.minimum(d, detour_cap * straight))
    else:
        d = straight
    out = pd.DataFrame(d, index=grids.index, columns=pd.Index(branches["branch_id"].astype(str).tolist()))
    out.attrs["road_fallback"] = fallback
    out.attrs["by"] = by
    return out


def grid_workload(grids: gpd.GeoDataFrame, *, households: gpd.GeoDataFrame | None = None,
                  segment_weights: dict[str, float] | None = None, distance: pd.Series | None = None,
                  distance_weight: float = 0.0) -> pd.Series:
    """Workload of each grid: households, optionally weighted by segment and by distance from the branch.

    Parameters
    ----------
    households : GeoDataFrame of points, optional
        With a ``segment`` column; needed for ``segment_weights`` (households are located in grids by
        position).
    segment_weights : dict, optional
        Segment → weight (e.g. ``{"小微企业": 2.0}``); unlisted segments weigh 1.
    distance : Series, optional
        Metres from each grid to its branch; the workload is multiplied by ``1 + distance_weight · km``.

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"households": [10, 20]}, crs=4549,
    ...                      geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> grid_workload(g, distance=pd.Series([0.0, 5000.0]), distance_weight=0.1).tolist()
    [10.0, 30.0]
    """
    load = pd.Series(_households(grids), index=grids.index, name="workload")
    if segment_weights:
        if households is None or "segment" not in households.columns:
            raise ValidationError("按客群加权需要带 segment 列的农户点位", fix="传入 households 图层")
        geoms = np.asarray(to_metres(grids).values, dtype=object)
        pts = to_metres(households, epsg=_epsg(to_metres(grids)))
        hi, gi = shapely.STRtree(geoms).query(np.asarray(pts.values, dtype=object), predicate="within")
        hi, first = np.unique(hi, return_index=True)
        gi = gi[first]
        hw = households["segment"].astype(object).map(segment_weights).fillna(1.0).to_numpy(dtype=float)
        weighted = np.bincount(gi, weights=hw[hi], minlength=len(grids))
        counted = np.bincount(gi, minlength=len(grids))
        # grids whose households are not located by point keep their count
        load = pd.Series(np.where(counted > 0, weighted, load.to_numpy()), index=grids.index, name="workload")
    if distance is not None and distance_weight:
        km = pd.Series(distance, index=grids.index).fillna(0).to_numpy(dtype=float) / 1000.0
        load = load * (1.0 + distance_weight * km)
    return load


# --------------------------------------------------------------------------------------------------------
# grids → branches
# --------------------------------------------------------------------------------------------------------


def _solve_transport(cost: np.ndarray, load: np.ndarray, cap: np.ndarray, fixed: np.ndarray,
                     low: np.ndarray | None = None, *, reach: float = 0.0, candidates: int = 8) -> np.ndarray:
    """Grid → branch at least ``Σ cost`` with ``low ≤ Σ load ≤ cap`` per branch (LP relaxation, rounded).

    Both limits are soft (penalised overflow/underflow columns), so the programme is always feasible. The
    capacity is all but hard (10 times the largest cost per household); a household short of ``low`` costs
    ``reach`` (the cost unit, metres, per household), so a branch below its floor takes a neighbour's grid
    only when the grid is at most ``reach`` farther from it. Each grid may go to its ``candidates`` nearest
    branches.
    """
    n, k = cost.shape
    usable = cap > 0
    label = np.full(n, -1, dtype=np.int64)
    label[fixed >= 0] = fixed[fixed >= 0]
    free = np.flatnonzero(fixed < 0)
    if not len(free):
        return label
    c = np.where(usable[None, :], cost, np.inf)
    if not usable.any():
        c = cost.copy()
    m = min(k, candidates)
    cand = np.argsort(c[free], axis=1)[:, :m]
    rows = np.repeat(free, cand.shape[1])
    cols = cand.ravel()
    good = np.isfinite(c[rows, cols])
    rows, cols = rows[good], cols[good]
    if np.isinf(cap).all() or len(np.unique(cols)) == 1:
        label[free] = np.argmin(c[free], axis=1)
        return label
    fixed_load = np.bincount(label[fixed >= 0], weights=load[fixed >= 0], minlength=k)
    remaining = np.where(np.isinf(cap), load.sum() + 1, cap) - fixed_load
    floor = np.zeros(k) if low is None or reach <= 0 else np.maximum(0.0, low - fixed_load)
    nv = len(rows)
    scale = max(float(np.max(c[rows, cols])), 1.0)
    penalty = 10.0 * scale / max(float(load.mean()), 1.0)  # per household over capacity
    obj = np.concatenate([c[rows, cols], np.full(k, penalty), np.full(k, reach)]) / scale
    pos = np.searchsorted(free, rows)
    a_eq = sparse.csr_matrix((np.ones(nv), (pos, np.arange(nv))), shape=(len(free), nv + 2 * k))
    a_ub = sparse.csr_matrix(
        (np.concatenate([load[rows], -np.ones(k), -load[rows], -np.ones(k)]),
         (np.concatenate([cols, np.arange(k), k + cols, k + np.arange(k)]),
          np.concatenate([np.arange(nv), nv + np.arange(k), np.arange(nv), nv + k + np.arange(k)]))),
        shape=(2 * k, nv + 2 * k),
    )
    # scipy-stubs: A_ub/A_eq admit no sparse matrix, though HiGHS takes them (and needs them at this size)
    res = linprog(obj, A_ub=a_ub, b_ub=np.concatenate([remaining, -floor]), A_eq=a_eq,  # type: ignore[call-overload]
                  b_eq=np.ones(len(free)), bounds=(0, None), method="highs")
    if res.status != 0:  # cannot happen with the slack columns; plain nearest as a safeguard
        label[free] = np.argmin(c[free], axis=1)
        return label
    x = res.x[:nv]
    choice = np.full(len(free), -1, dtype=np.int64)
    order = np.argsort(x, kind="stable")  # ascending: the largest share wins when written last
    choice[pos[order]] = cols[order]
    label[free] = choice
    return label


def _repair_contiguity(adj: sparse.csr_matrix, label: np.ndarray, cost: np.ndarray, load: np.ndarray,
                       cap: np.ndarray, fixed: np.ndarray, mass: np.ndarray | None = None) -> np.ndarray:
    """Give every piece cut off from its branch's home piece to the neighbouring branches, within capacity.

    The home piece of a branch is the one holding its nearest grid — on each landmass (``mass``, one number
    per grid), since water between two pieces is no cut. Islands (no neighbour at all) are left
    where they are. A cut-off piece is taken from its edge inwards: each round, every grid of it next to another
    branch's home piece joins the cheapest such branch that still has room (so no move cuts a home piece, and
    a large piece can be shared among several neighbours). When no grid fits anywhere, the piece goes whole to
    the neighbour it overloads least (the capacity repairs after this take it from there).
    """
    label = label.copy()
    n, k = cost.shape
    degree = np.diff(adj.indptr)
    coo = adj.tocoo()
    mass = np.zeros(n, dtype=np.int64) if mass is None else np.asarray(mass)
    for _ in range(n):
        comp = components(adj, label)
        is_home = np.zeros(comp.max() + 1, dtype=bool)
        for b in range(k):
            mine = (label == b) & (degree > 0)
            for m in np.unique(mass[mine]):
                members = np.flatnonzero(mine & (mass == m))
                is_home[comp[members[np.argmin(cost[members, b])]]] = True
        orphan = ~is_home[comp] & (degree > 0) & (label >= 0)
        if not orphan.any():
            break
        used = np.bincount(label[label >= 0], weights=load[label >= 0], minlength=k)
        # edges from an orphan grid into another branch's home piece
        e = orphan[coo.row] & is_home[comp[coo.col]] & (label[coo.row] != label[coo.col])
        r, b = coo.row[e], label[coo.col[e]]
        movable = fixed[r] < 0
        r, b = r[movable], b[movable]
        moved = False
        for o in np.argsort(cost[r, b] - cost[r, label[r]], kind="stable"):
            g, dest = int(r[o]), int(b[o])
            if label[g] == dest or not orphan[g] or used[dest] + load[g] > cap[dest] + 1e-9:
                continue
            used[label[g]] -= load[g]
            used[dest] += load[g]
            label[g] = dest
            orphan[g] = False  # moved this round
            moved = True
        if moved:
            continue
        # nothing fits: whole pieces to the neighbour they overload least
        for c in np.unique(comp[orphan]):
            piece = np.flatnonzero(comp == c)
            if (fixed[piece] >= 0).any():
                continue
            nb = np.unique(label[coo.col[e & (comp[coo.row] == c)]])
            if not len(nb):
                continue
            pl = load[piece].sum()
            over = np.maximum(0, used[nb] + pl - cap[nb]) - np.maximum(0, used[nb] - cap[nb])
            extra = cost[piece][:, nb].sum(axis=0) + 10.0 * cost.max() * over / max(pl, 1.0) * len(piece)
            dest = int(nb[np.argmin(extra)])
            used[label[piece[0]]] -= pl
            used[dest] += pl
            label[piece] = dest
            moved = True
        if not moved:
            break
    return label


def _repair_capacity(adj: sparse.csr_matrix, label: np.ndarray, cost: np.ndarray, load: np.ndarray,
                     cap: np.ndarray, fixed: np.ndarray, low: np.ndarray | None = None, *,
                     reach: float = 0.0) -> np.ndarray:
    """Move border grids so that branches come within their capacity (and towards their floor).

    The objective is the transportation programme's: ``Σ cost`` plus, per household, 10 times the largest
    grid → branch distance over capacity and ``reach`` under the floor ``low``. A move must lower the
    penalties and the objective; the move with the largest gain goes first. It never cuts the donor territory
    (the grid's neighbours in it stay connected) and always lands next to the receiver, so territories stay in
    one piece. Stops when no such move is left.
    """
    label = label.copy()
    graph = _Graph(adj)
    k = cost.shape[1]
    low = np.zeros(k) if low is None or reach <= 0 else low
    per_hh = cost / np.maximum(load, 0.5)[:, None]
    big = 10.0 * float(np.max(per_hh[np.isfinite(per_hh)], initial=1.0))
    src, dst = graph.src, graph.dst
    movable = (fixed[src] < 0) & (load[src] > 0)

    unit = max(float(load[load > 0].mean()) if (load > 0).any() else 1.0, 1.0)

    def penalty(v: np.ndarray, j: np.ndarray) -> np.ndarray:
        over = np.maximum(0, v - cap[j])
        # convex in the overflow: handing part of an overload to a full neighbour pays, so an overload flows on
        # from territory to territory until one has room
        cost_of: np.ndarray = big * (over + over * over / unit) + reach * np.maximum(0, low[j] - v)
        return cost_of

    for _ in range(len(label)):
        used = np.bincount(label, weights=load, minlength=k)
        if not ((used > cap + 1e-9) | (used < low - 1e-9)).any():
            break
        a, b = label[src], label[dst]
        ok = (a != b) & movable
        i, a, b = src[ok], a[ok], b[ok]
        x = load[i]
        fix = (penalty(used[a], a) + penalty(used[b], b) - penalty(used[a] - x, a) - penalty(used[b] + x, b))
        gain = fix - (cost[i, b] - cost[i, a])
        keep = (fix > 1e-9) & (gain > 1e-9)
        if not keep.any():
            break
        i, b, gain = i[keep], b[keep], gain[keep]
        for o in np.lexsort((i, -gain)):
            if graph.still_connected_without(int(i[o]), label):
                label[i[o]] = b[o]
                break
        else:
            break
    return label


def _enforce_limit(adj: sparse.csr_matrix, label: np.ndarray, cost: np.ndarray, load: np.ndarray,
                   cap: np.ndarray, fixed: np.ndarray, water: np.ndarray, *,
                   limit: float = CAPACITY_LIMIT) -> np.ndarray:
    """Bring every branch down to ``limit × cap`` by moving grids to branches with room (a hard bound).

    The repairs above treat capacity as a (heavy) penalty; this last pass makes it a number. From the most
    overloaded branch it moves one grid at a time, preferring in turn: a move that does not cross water, a
    grid next to the receiving territory whose leaving does not cut its own, one next to it, any other; then
    the least added distance per household. A receiver never goes above its own ``limit × cap``. Stops when
    no branch is over, or when an over branch has nothing it can give (locked grids).
    """
    label = label.copy()
    k = cost.shape[1]
    top = np.where(np.isfinite(cap), cap * limit, np.inf)
    graph = _Graph(adj)
    stuck: set[int] = set()
    for _ in range(2 * len(label)):
        used = np.bincount(label, weights=load, minlength=k)
        over = [int(b) for b in np.flatnonzero(used > top + 1e-9) if int(b) not in stuck]
        if not over:
            break
        a = max(over, key=lambda b: (used[b] - top[b]) / max(float(cap[b]), 1e-9))
        members = np.flatnonzero((label == a) & (fixed < 0) & (load > 0))
        fits = (used[None, :] + load[members, None] <= top[None, :] + 1e-9) & (cap[None, :] > 0)
        fits[:, a] = False
        gi, bj = np.nonzero(fits)
        if not len(gi):
            stuck.add(a)
            continue
        i = members[gi]
        nb = np.zeros((len(members), k), dtype=bool)
        rows = adj[members].tocoo()
        nb[rows.row, label[rows.col]] = True
        beside = nb[gi, bj]
        wet = water[i, bj] & ~water[i, a]
        extra = (cost[i, bj] - cost[i, a]) / np.maximum(load[i], 0.5)
        order = np.lexsort((extra, ~beside, wet))
        best = None
        for o in order:
            if wet[o] != wet[order[0]] or not beside[o]:
                break
            if graph.still_connected_without(int(i[o]), label):
                best = o
                break
        if best is None:
            best = order[0]
        label[i[best]] = bj[best]
    return label


def assign_branches(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, staff: pd.DataFrame, *,
                    by: str = "straight", streets: gpd.GeoDataFrame | None = None,
                    capacity_slack: float = 0.15, floor_reach: float = 3000.0, keep: pd.Series | None = None,
                    distances: pd.DataFrame | None = None,
                    adjacency: SparseMatrix | None = None,
                    outline: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
                    crossing_penalty: float = CROSSING_PENALTY_M,
                    masses: tuple[np.ndarray, np.ndarray] | None = None) -> pd.Series:
    """Branch of every grid: nearest on its own land, within each branch's capacity, each territory in one piece.

    A grid goes to a branch on another landmass (across water no ferry links) only when no branch on its own
    landmass has room for it. Every branch ends at most ``CAPACITY_LIMIT`` (1.10) times its capacity; when
    the households cannot fit that way at all (total capacity too small), a :class:`ValidationError` says so.

    Parameters
    ----------
    grids : GeoDataFrame
        Polygons with ``households`` (and ``branch_id``, ``locked`` when present).
    branches : GeoDataFrame
        Points with ``branch_id``.
    staff : DataFrame
        ``staff_id``, ``branch_id`` (and ``role``): a branch's capacity is proportional to its staff.
    by : {"straight", "road"}
        Distance measure (see :func:`branch_distances`).
    capacity_slack : float
        A branch may take ``(1 + capacity_slack)`` times its staff share of the households.
    floor_reach : float
        Metres. A branch should also take at least ``(1 − capacity_slack)`` times its staff share, so that
        managers of neighbouring branches carry similar loads: a branch short of that takes a neighbour's
        grid when the grid's households are at most ``floor_reach`` farther from it (a soft lower bound, so
        it acts between nearby branches — in town, or along a rural border — and never sends managers far
        out to fill a quota). ``0`` turns the floor off (nearest within capacity only).
    keep : boolean Series, optional
        Grids that keep their current ``branch_id`` (locked grids always do).
    distances, adjacency : optional
        Precomputed :func:`branch_distances` and :func:`grids.assign.graph.grid_adjacency`.
    outline, crossing_penalty
        The county outline and the metres added across unlinked water (see :func:`branch_distances`).
    masses : (array, array), optional
        Precomputed :func:`landmass_numbers`.

    Returns
    -------
    Series
        ``branch_id`` aligned to ``grids.index``.

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"households": [10] * 4}, crs=4549,
    ...                      geometry=[shapely.box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(4)])
    >>> b = gpd.GeoDataFrame({"branch_id": ["W", "E"]}, crs=4549,
    ...                      geometry=[shapely.Point(0, 500), shapely.Point(4000, 500)])
    >>> s = pd.DataFrame({"staff_id": ["w1", "e1"], "branch_id": ["W", "E"]})
    >>> assign_branches(g, b, s).tolist()
    ['W', 'W', 'E', 'E']
    """
    _check_inputs(grids, branches, staff)
    if masses is None:
        land = _land(grids, outline, streets)
        masses = _masses(grids, branches, land)
        outline = land
    gmass, bmass = (np.asarray(m) for m in masses)
    d = (branch_distances(grids, branches, by=by, streets=streets, outline=outline,
                          crossing_penalty=crossing_penalty) if distances is None else distances)
    ids = np.asarray(d.columns.astype(str))
    adj = sparse.csr_matrix(grid_adjacency(grids) if adjacency is None else adjacency)
    hh = _households(grids)
    cap = branch_capacity(branches, staff, hh.sum(), capacity_slack=capacity_slack)
    if np.isfinite(cap).all() and hh.sum() > CAPACITY_LIMIT * cap.sum() + 1e-9:
        raise ValidationError(
            f"网点容量合计 {cap.sum():.0f} 户，即使放宽到 {CAPACITY_LIMIT:.2f} 倍也容纳不下全部 {hh.sum():.0f} 户",
            fix="调大容量余量 capacity_slack（命令行 --capacity-slack，例如 0.15），或为网点补充客户经理")
    current = _text_column(grids, "branch_id")
    pos = {b: i for i, b in enumerate(ids)}
    cur = current.map(lambda b: pos.get(str(b), -1) if b is not None else -1).to_numpy(dtype=np.int64)
    hold = _locked(grids, None) if keep is None else (pd.Series(keep, index=grids.index).fillna(False)
                                                      .astype(bool).to_numpy() | _locked(grids, None))
    fixed = np.where(hold & (cur >= 0), cur, -1)
    if floor_reach < 0:
        raise ValidationError(f"floor_reach 不能为负：{floor_reach}", fix="取 0（不设下限）或正的米数，例如 3000")
    low = cap / (1.0 + capacity_slack) * max(0.0, 1.0 - capacity_slack) if floor_reach > 0 else None
    if low is not None and not np.isfinite(low).all():
        low = None
    dist = d.to_numpy(dtype=float)
    finite = np.isfinite(dist)
    reach_max = float(dist[finite].max(initial=0.0))
    dist = np.where(finite, dist, 10.0 * reach_max + 1.0)
    if d.attrs.get("by") == "road":
        # many grids reach two branches through the same junction, at the same difference in distance: the
        # straight line decides such ties, so that territories split along a line instead of at random
        dist = dist + ROAD_TIE_BREAK * branch_distances(grids, branches).to_numpy()
    # water first: any branch on the grid's own landmass is nearer than every branch across water
    wet = gmass[:, None] != bmass[None, :]
    far = 2.0 * float(dist.max(initial=0.0)) + 1.0 if wet.any() else 0.0
    cost = (dist + far * wet) * (hh + 0.5)[:, None]  # empty grids still go to the nearest branch
    label = _solve_transport(cost, hh, cap, fixed, low, reach=floor_reach)
    label = _repair_contiguity(adj, label, cost, hh, cap, fixed, gmass)
    label = _repair_capacity(adj, label, cost, hh, cap, fixed, low, reach=floor_reach)
    label = _enforce_limit(adj, label, cost, hh, cap, fixed, wet)
    return pd.Series(ids[label], index=grids.index, name="branch_id", dtype=object)


# --------------------------------------------------------------------------------------------------------
# grids → staff
# --------------------------------------------------------------------------------------------------------


def assign_staff(grids: gpd.GeoDataFrame, staff: pd.DataFrame, *, weights: pd.Series | None = None,
                 locked: pd.Series | None = None, current: pd.Series | None = None,
                 minimal_change: bool = False, tolerance: float = 0.05,
                 adjacency: SparseMatrix | None = None) -> pd.Series:
    """Customer manager of every grid, branch by branch: balanced workload, one compact piece each.

    Parameters
    ----------
    grids : GeoDataFrame
        Polygons with ``branch_id`` (see :func:`assign_branches`) and ``households``.
    staff : DataFrame
        ``staff_id``, ``branch_id`` (and ``role``; see :func:`assignable_staff`).
    weights : Series, optional
        Workload per grid (:func:`grid_workload`); households by default.
    locked : boolean Series, optional
        Grids that keep their current manager (default: the ``locked`` column).
    current : Series, optional
        Current ``staff_id`` per grid (default: the ``staff_id`` column).
    minimal_change : bool
        Start from ``current`` and move as few households as needed to bring every manager within
        ``mean·(1 ± tolerance)`` of the branch mean.

    Returns
    -------
    Series
        ``staff_id`` aligned to ``grids.index`` (``None`` for grids of a branch without staff).

    Examples
    --------
    >>> import shapely
    >>> g = gpd.GeoDataFrame({"households": [10] * 4, "branch_id": ["B"] * 4}, crs=4549,
    ...                      geometry=[shapely.box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(4)])
    >>> s = pd.DataFrame({"staff_id": ["s1", "s2"], "branch_id": ["B", "B"]})
    >>> out = assign_staff(g, s)
    >>> out.iloc[0] == out.iloc[1] != out.iloc[2] == out.iloc[3]
    True
    """
    _require(grids, ("branch_id",), "网格（grids）")
    _require(staff, ("staff_id", "branch_id"), "员工（staff）")
    adj = sparse.csr_matrix(grid_adjacency(grids) if adjacency is None else adjacency)
    w = (pd.Series(weights, index=grids.index).fillna(0).to_numpy(dtype=float) if weights is not None
         else _households(grids))
    lock = _locked(grids, locked)
    cur = (pd.Series(current, index=grids.index).astype(object) if current is not None
           else _text_column(grids, "staff_id"))
    cur = cur.where(cur.notna(), None)
    gk = to_metres(grids).centroid
    xy = np.column_stack([gk.x.to_numpy(), gk.y.to_numpy()])
    branch = _text_column(grids, "branch_id").to_numpy(dtype=object)
    people = assignable_staff(staff)
    out = np.full(len(grids), None, dtype=object)
    for b, team in people.groupby("branch_id", sort=True):
        members = np.flatnonzero(branch == b)
        if not len(members):
            continue
        ids = sorted(team["staff_id"].astype(str).unique())
        index = {s: i for i, s in enumerate(ids)}
        c = np.array([index.get(str(s), -1) if s is not None else -1 for s in cur.to_numpy()[members]])
        fixed = np.where(lock[members], c, -1)
        sub = adj[members][:, members]
        lab = partition(sub, w[members], xy[members], len(ids), fixed=fixed, current=c,
                        minimal_change=minimal_change, tolerance=tolerance)
        if not minimal_change:
            lab = _match_to_current(lab, c, w[members], fixed, len(ids))
        out[members] = np.asarray(ids, dtype=object)[lab]
    return pd.Series(out, index=grids.index, name="staff_id", dtype=object)


def _match_to_current(lab: np.ndarray, cur: np.ndarray, w: np.ndarray, fixed: np.ndarray, k: int) -> np.ndarray:
    """Renumber territories so that each manager keeps as much of their current workload as possible."""
    pinned = set(fixed[fixed >= 0].tolist())
    free = [r for r in range(k) if r not in pinned]
    if len(free) <= 1 or not (cur >= 0).any():
        return lab
    overlap = np.zeros((len(free), len(free)))
    for i, r in enumerate(free):
        for j, s in enumerate(free):
            overlap[i, j] = w[(lab == r) & (cur == s)].sum() + 1e-9 * ((lab == r) & (cur == s)).sum()
    rows, cols = linear_sum_assignment(-overlap)
    mapping = np.arange(k)
    for row, col in zip(rows, cols, strict=True):
        mapping[free[row]] = free[col]
    relabelled: np.ndarray = mapping[lab]
    return relabelled


# --------------------------------------------------------------------------------------------------------
# the whole plan
# --------------------------------------------------------------------------------------------------------


@dataclass
class AssignmentResult:
    """What :func:`assign_plan` returns.

    Attributes
    ----------
    grids : GeoDataFrame
        The input grids with ``branch_id`` and ``staff_id`` filled.
    branches, staff : DataFrame
        Metrics per branch and per customer manager (see :func:`grids.assign.metrics.assignment_metrics`).
    summary : dict
        County-wide figures, timings and the options used.
    moved_households, moved_grids : int
        Households/grids whose branch or manager changed from a previous assignment.
    """

    grids: gpd.GeoDataFrame
    branches: pd.DataFrame
    staff: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    moved_households: int = 0
    moved_grids: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: summary, per-branch and per-staff metrics."""
        return {
            "summary": _jsonable(self.summary),
            "moved_households": int(self.moved_households),
            "moved_grids": int(self.moved_grids),
            "branches": _records(self.branches),
            "staff": _records(self.staff),
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating | float):
        return None if not np.isfinite(v) else round(float(v), 4)
    if isinstance(v, np.bool_):
        return bool(v)
    if v is pd.NA or v is None:
        return None
    return v


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]


def assign_plan(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, staff: pd.DataFrame, *,
                by: str = "straight", streets: gpd.GeoDataFrame | None = None,
                households: gpd.GeoDataFrame | None = None, capacity_slack: float = 0.15,
                floor_reach: float = 3000.0, segment_weights: dict[str, float] | None = None, distance_weight: float = 0.0,
                minimal_change: bool = False, tolerance: float = 0.05,
                adjacency: SparseMatrix | None = None,
                outline: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
                crossing_penalty: float = CROSSING_PENALTY_M) -> AssignmentResult:
    """Assign every grid to a branch and a customer manager, and measure the result.

    Parameters
    ----------
    grids, branches, staff
        The plan's grids, the ``branches`` points and the ``staff`` table.
    by, streets, capacity_slack, floor_reach, outline, crossing_penalty
        See :func:`assign_branches`. ``streets`` also supplies the ferry lanes that join islands in straight
        mode.
    households : GeoDataFrame of points, optional
        Household locations: distances are then measured per household (else from grid centroids weighted
        by households), and ``segment_weights`` can apply.
    segment_weights, distance_weight
        Workload options (:func:`grid_workload`).
    minimal_change : bool
        Keep every valid current branch and rebalance managers from the current assignment, moving as few
        households as possible (see :func:`assign_staff`).
    tolerance : float
        Balance band of ``minimal_change`` mode (a manager within ``mean·(1 ± tolerance)`` is left alone).

    Returns
    -------
    AssignmentResult
        ``summary`` also holds ``capacity_limit``, ``over_capacity`` (branches still above it: only locked
        grids can cause that), ``cross_water_grids``/``cross_water_households`` (served across water) and
        ``landmasses``.
    """
    t0 = time.perf_counter()
    _check_inputs(grids, branches, staff)
    adj = sparse.csr_matrix(grid_adjacency(grids) if adjacency is None else adjacency)
    t_adj = time.perf_counter()
    land = _land(grids, outline, streets)
    gmass, bmass = _masses(grids, branches, land)
    dist = branch_distances(grids, branches, by=by, streets=streets, outline=land, crossing_penalty=crossing_penalty)
    t_dist = time.perf_counter()
    cur_branch = _text_column(grids, "branch_id")
    cur_staff = _text_column(grids, "staff_id")
    staff_branch = dict(zip(staff["staff_id"].astype(str), staff["branch_id"].astype(str), strict=False))
    lock = _locked(grids, None)
    # a locked grid follows its manager's branch
    work = grids.copy()
    lock_branch = cur_staff.map(lambda s: staff_branch.get(str(s)) if s is not None else None)
    work["branch_id"] = cur_branch.where(~(lock & lock_branch.notna().to_numpy()), lock_branch)
    valid = set(branches["branch_id"].astype(str))
    keep = _text_column(work, "branch_id").map(lambda b: b in valid if b is not None else False).astype(bool)
    keep = keep if minimal_change else keep & lock
    branch = assign_branches(work, branches, staff, capacity_slack=capacity_slack, keep=keep,
                             floor_reach=floor_reach, distances=dist, adjacency=adj,
                             masses=(gmass, bmass))
    t_branch = time.perf_counter()
    work["branch_id"] = branch
    d_own = pd.Series(dist.to_numpy()[np.arange(len(grids)), dist.columns.get_indexer(pd.Index(branch))], index=grids.index)
    weights = None
    if segment_weights or distance_weight:
        weights = grid_workload(work, households=households, segment_weights=segment_weights,
                                distance=d_own, distance_weight=distance_weight)
    staff_ids = assign_staff(work, staff, weights=weights, locked=pd.Series(lock, index=grids.index),
                             current=cur_staff, minimal_change=minimal_change, tolerance=tolerance,
                             adjacency=adj)
    t_staff = time.perf_counter()
    out = grids.copy()
    out["branch_id"] = branch.astype("str")
    out["staff_id"] = staff_ids.astype("str").where(staff_ids.notna(), None)
    stats = grid_distance_stats(out, branches, distances=dist, households=households)
    branch_m, staff_m, summary = assignment_metrics(
        out, branches, staff=assignable_staff(staff), adjacency=adj, distance_stats=stats, weights=weights,
        capacity=pd.Series(branch_capacity(branches, staff, _households(grids).sum(),
                                           capacity_slack=capacity_slack),
                           index=branches["branch_id"].astype(str).to_numpy()),
    )
    hh = _households(grids)
    bidx = dist.columns.get_indexer(pd.Index(out["branch_id"]))
    wet = gmass != bmass[bidx]
    use = branch_m["capacity_use"] if "capacity_use" in branch_m.columns else pd.Series(dtype=float)
    over = branch_m.loc[use.fillna(0) > CAPACITY_LIMIT + 1e-9, "branch_id"].astype(str).tolist()
    changed = ((cur_staff.notna() & (cur_staff.astype(str) != out["staff_id"].astype(str)))
               | (cur_branch.notna() & (cur_branch.astype(str) != out["branch_id"].astype(str)))).to_numpy()
    newly = (cur_staff.isna() & out["staff_id"].notna()).to_numpy()
    t_end = time.perf_counter()
    summary.update({
        "by": by,
        "minimal_change": minimal_change,
        "capacity_slack": capacity_slack,
        "floor_reach_m": floor_reach,
        "road_fallback": int(dist.attrs.get("road_fallback", 0)),
        "crossing_penalty_m": crossing_penalty,
        "capacity_limit": CAPACITY_LIMIT,
        "over_capacity": over,
        "landmasses": int(land["landmass"].nunique()),
        "cross_water_grids": int(wet.sum()),
        "cross_water_households": int(hh[wet].sum()),
        "moved_households": int(hh[changed].sum()),
        "moved_grids": int(changed.sum()),
        "newly_assigned_grids": int(newly.sum()),
        "seconds": {"adjacency": t_adj - t0, "distances": t_dist - t_adj, "branches": t_branch - t_dist,
                    "staff": t_staff - t_branch, "metrics": t_end - t_staff, "total": t_end - t0},
    })
    return AssignmentResult(out, branch_m, staff_m, summary, int(hh[changed].sum()), int(changed.sum()))


# --------------------------------------------------------------------------------------------------------
# what-if
# --------------------------------------------------------------------------------------------------------


@dataclass
class WhatIfResult:
    """A scenario against the baseline: the plan's assignment, changed only where the scenario needs it.

    Attributes
    ----------
    baseline, scenario : AssignmentResult
        Metrics before and after (``scenario.grids`` holds the new ``branch_id`` and ``staff_id``).
    branches : DataFrame
        Per branch: households, staff and mean/max distance before and after.
    moves : DataFrame
        Every grid whose branch changes, with its households, branch and manager before and after.
    summary : dict
        The scenario in words (``scenario``), grids and households moved, distances before and after.
    staff_moves : DataFrame
        Every person who changes branch (``staff_id``, ``branch_before``, ``branch_after``).
    """

    baseline: AssignmentResult
    scenario: AssignmentResult
    branches: pd.DataFrame
    moves: pd.DataFrame
    summary: dict[str, Any]
    staff_moves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["staff_id", "branch_before", "branch_after"]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: summary, branch changes, the grids and the people that move."""
        return {"summary": _jsonable(self.summary), "branches": _records(self.branches),
                "moves": _records(self.moves), "staff_moves": _records(self.staff_moves)}


NEW_BRANCH_ID = "NEW"
"""``branch_id`` of the branch :func:`what_if` adds."""


def _measure(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, staff: pd.DataFrame, *,
             distances: pd.DataFrame, adjacency: sparse.csr_matrix, households: gpd.GeoDataFrame | None,
             capacity_slack: float) -> AssignmentResult:
    """Metrics of an assignment as it stands (``grids`` with ``branch_id`` and ``staff_id``), nothing assigned."""
    stats = grid_distance_stats(grids, branches, distances=distances, households=households)
    cap = pd.Series(branch_capacity(branches, staff, _households(grids).sum(), capacity_slack=capacity_slack),
                    index=branches["branch_id"].astype(str).to_numpy())
    branch_m, staff_m, summary = assignment_metrics(grids, branches, staff=assignable_staff(staff),
                                                    adjacency=adjacency, distance_stats=stats, capacity=cap)
    return AssignmentResult(grids, branch_m, staff_m, summary)


def _nearness(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, dist: pd.DataFrame, gmass: np.ndarray,
              bmass: np.ndarray, *, by: str) -> np.ndarray:
    """Grid × branch ranking of :func:`assign_branches`, per grid: any branch on the grid's own landmass
    before every branch across water, then the distance (by road, ties broken by the straight line)."""
    d = dist.to_numpy(dtype=float)
    finite = np.isfinite(d)
    d = np.where(finite, d, 10.0 * float(d[finite].max(initial=0.0)) + 1.0)
    if by == "road":
        d = d + ROAD_TIE_BREAK * branch_distances(grids, branches).to_numpy()
    wet = gmass[:, None] != bmass[None, :]
    ranking: np.ndarray = d + (2.0 * float(d.max(initial=0.0)) + 1.0) * wet
    return ranking


def _apportion(amounts: np.ndarray, seats: int) -> np.ndarray:
    """Whole seats in proportion to ``amounts``, largest remainder first (Hamilton); ties to the lower index.

    Examples
    --------
    >>> _apportion(np.array([2600.0, 1000.0, 400.0]), 5).tolist()
    [3, 1, 1]
    """
    out = np.zeros(len(amounts), dtype=np.int64)
    total = float(amounts.sum())
    if seats <= 0 or total <= 0:
        return out
    quota = amounts / total * seats
    out = np.floor(quota + 1e-9).astype(np.int64)
    rest = seats - int(out.sum())
    order = np.lexsort((np.arange(len(amounts)), -(quota - out)))
    out[order[:rest]] += 1
    return out


def _share_out(adj: sparse.csr_matrix, hh: np.ndarray, xy: np.ndarray, members: np.ndarray,
               current: np.ndarray, ids: list[str], *, pinned: np.ndarray | None = None) -> np.ndarray:
    """Managers ``ids`` for grids ``members``, moving as few households as possible from ``current``.

    ``current`` holds each member's manager (``None`` when it has none among ``ids``); ``pinned`` members keep
    theirs.
    """
    index = {s: i for i, s in enumerate(ids)}
    cur = np.array([index.get(str(s), -1) if s is not None else -1 for s in current], dtype=np.int64)
    fixed = np.where(pinned, cur, -1) if pinned is not None else np.full(len(members), -1)
    sub = adj[members][:, members]
    lab = partition(sub, hh[members], xy[members], len(ids), fixed=fixed, current=cur, minimal_change=True)
    shared: np.ndarray = np.asarray(ids, dtype=object)[lab]
    return shared


def _close(closing: str, *, label: np.ndarray, staff_of: np.ndarray, staff: pd.DataFrame, rest: list[str],
           cost: np.ndarray, adj: sparse.csr_matrix, hh: np.ndarray, xy: np.ndarray,
           gmass: np.ndarray, nearest: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, list[tuple[str, str, str]], str]:
    """Close ``closing``: its grids to their nearest remaining branch, its staff after them; nothing else moves.

    ``label``/``staff_of``: branch and manager of each grid; ``cost``: :func:`_nearness` to the ``rest``;
    ``nearest``: the remaining branch nearest to the closed one (where its staff go when it has no grid).
    Returns the new branch and manager of each grid, the new staff table, the people moved and a note.
    """
    mine = label == closing
    pos = {b: i for i, b in enumerate(rest)}
    lab = np.array([pos.get(str(b), -1) for b in label], dtype=np.int64)
    lab[mine] = np.argmin(cost[mine], axis=1)
    # a received grid cut off from its receiver's territory joins a neighbouring one instead
    fixed = np.where(mine, -1, lab)
    lab = _repair_contiguity(adj, lab, cost * (hh + 0.5)[:, None], hh, np.full(len(rest), np.inf), fixed, gmass)
    got = np.bincount(lab[mine], weights=hh[mine], minlength=len(rest))
    new_label = label.copy()
    new_label[mine] = np.asarray(rest, dtype=object)[lab[mine]]
    new_staff_of = staff_of.copy()
    new_s = staff.copy()
    people = assignable_staff(staff)
    team = sorted(people.loc[people["branch_id"].astype(str) == closing, "staff_id"].astype(str))
    seats = _apportion(got, len(team))
    goes: dict[str, int] = {}
    if team:
        # who goes where: each receiver's seats to the managers who held most of the households it receives
        cols = np.repeat(np.arange(len(rest)), seats)
        held = np.array([[hh[mine & (lab == r) & (staff_of.astype(str) == p)].sum() for r in cols] for p in team])
        rows, picked = linear_sum_assignment(-held)
        goes = {team[i]: int(cols[j]) for i, j in zip(rows, picked, strict=True)}
    others = staff.loc[staff["branch_id"].astype(str) == closing, "staff_id"].astype(str)
    largest = int(np.argmax(got)) if got.sum() > 0 else nearest
    for p in others:  # 网点主任 and other staff who take no grids: to the receiver taking the most households
        goes.setdefault(p, largest)
    moved = [(p, closing, rest[r]) for p, r in sorted(goes.items())]
    for p, _, dest in moved:
        new_s.loc[new_s["staff_id"].astype(str) == p, "branch_id"] = dest
    for r in np.flatnonzero(got > 0):
        received = np.flatnonzero(mine & (lab == r))
        ids = sorted(p for p in team if goes.get(p) == r)
        if ids:  # the received grids go to the managers who came with them
            new_staff_of[received] = _share_out(adj, hh, xy, received, staff_of[received], ids)
            continue
        own_staff = assignable_staff(new_s)
        own = sorted(own_staff.loc[own_staff["branch_id"].astype(str) == rest[r], "staff_id"].astype(str))
        if not own:
            new_staff_of[received] = None
            continue
        # no one came with them: the receiver's own managers take them on, keeping every grid they have
        territory = np.flatnonzero(new_label == rest[r])
        kept = ~mine[territory]
        new_staff_of[territory] = _share_out(adj, hh, xy, territory,
                                             np.where(kept, staff_of[territory], np.array(None)), own, pinned=kept)
    parts = [f"{rest[r]} {int(got[r])} 户、{int(seats[r])} 名客户经理" for r in np.flatnonzero(got > 0)]
    note = (f"关闭网点 {closing}：{int(mine.sum())} 个网格（{int(hh[mine].sum())} 户）各归最近的网点，"
            f"员工随户调动（客户经理按接收户数比例分配，最大余数法取整）：{'；'.join(parts) or '无网格'}")
    return new_label, new_staff_of, new_s, moved, note


def _at_home(adj: sparse.csr_matrix, label: np.ndarray, cost: np.ndarray, gmass: np.ndarray) -> np.ndarray:
    """Whether each grid lies in its branch's home piece on its landmass: the piece holding the branch's nearest
    grid there (``cost``: each grid to its own branch). Islands (no neighbour) are always at home."""
    degree = np.diff(adj.indptr)
    codes = pd.factorize(pd.Series(label, dtype=object))[0]
    comp = components(adj, codes)
    linked = np.flatnonzero(degree > 0)
    nearest = (pd.DataFrame({"b": codes[linked], "m": gmass[linked], "d": cost[linked], "i": linked})
               .sort_values(["d", "i"]).drop_duplicates(["b", "m"])["i"].to_numpy())
    home: np.ndarray = (degree == 0) | np.isin(comp, comp[nearest])
    return home


def _add(*, label: np.ndarray, staff_of: np.ndarray, cost_new: np.ndarray, cost_now: np.ndarray,
         locked: np.ndarray, n_new: int, adj: sparse.csr_matrix, hh: np.ndarray, xy: np.ndarray,
         gmass: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Add the branch ``NEW``: it takes the unlocked grids nearer to it than to their branch, shared among
    ``n_new`` new managers.

    Territories stay whole: a piece of the new territory away from its home piece stays where it is, and where
    the taking would cut a piece off another branch's (or manager's) territory, the taken grid next to that
    piece that gains least by moving goes back, one at a time, until no territory is cut that was whole.
    """
    take = (cost_new < cost_now) & ~locked
    nearer = int(take.sum())
    coo = adj.tocoo()
    manager = np.array([f"{b}/{s}" if s is not None else f"{b}/" for b, s in zip(label, staff_of, strict=True)],
                       dtype=object)
    was = _at_home(adj, label, cost_now, gmass)
    was_m = _at_home(adj, manager, cost_now, gmass)
    gain = cost_now - cost_new
    for _ in range(len(label)):
        home = _at_home(adj, np.where(take, NEW_BRANCH_ID, label), np.where(take, cost_new, cost_now), gmass)
        if (take & ~home).any():  # stray pieces of the new territory stay where they are
            take &= home
            continue
        home_m = _at_home(adj, np.where(take, NEW_BRANCH_ID, manager), np.where(take, cost_new, cost_now), gmass)
        cut = (was & ~take & ~home) | (was_m & ~take & ~home_m)
        e = cut[coo.row] & take[coo.col] & (label[coo.row] == label[coo.col])
        if not e.any():
            break
        back = coo.col[e]
        take[back[np.lexsort((back, gain[back]))[0]]] = False
    new_label, new_staff_of = label.copy(), staff_of.copy()
    new_label[take] = NEW_BRANCH_ID
    ids = [f"{NEW_BRANCH_ID}-S{i + 1}" for i in range(n_new)]
    members = np.flatnonzero(take)
    if len(members):
        new_staff_of[members] = _share_out(adj, hh, xy, members, np.full(len(members), None), ids)
    return new_label, new_staff_of, take, nearer


def what_if(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, staff: pd.DataFrame, *,
            add_branch: tuple[float, float] | None = None, close_branch: str | None = None,
            new_branch_staff: int | None = None, **options: Any) -> WhatIfResult:
    """A branch added and/or closed, with the least change to the plan; report what changes.

    The baseline is the plan as assigned (``branch_id`` of every grid names a branch); a plan not fully
    assigned is first assigned with :func:`assign_plan` and ``options``. Then only what the scenario needs
    moves, ranked by the distance the assignment uses (``by``; a branch on the grid's own landmass — islands
    joined by ferries — before any across water):

    * closing a branch gives each of its grids to the nearest remaining branch (a grid cut off from its
      receiver's territory joins a neighbouring receiver); its customer managers go with the households, to
      each receiving branch in proportion to the households it receives, in whole people by largest
      remainder, each to the receiver of most of the households they held, and they take the grids received
      there (so its capacity follows). A receiver that gets no one shares the grids among its own managers,
      who keep all their own grids. Its other staff (网点主任 …) go to the receiver of most households.
      No grid of another branch changes branch or manager.
    * adding a branch (``NEW``) gives it the unlocked grids nearer to it than to their own branch, in one
      piece, shared among ``new_branch_staff`` new managers (default: the median team size). No other grid
      moves; the branches that lose grids keep their staff.

    Parameters
    ----------
    add_branch : (lon, lat), optional
        A new branch at this place (EPSG:4490 degrees).
    close_branch : str, optional
        ``branch_id`` of a branch to close (before adding, when both are given).
    new_branch_staff : int, optional
        Customer managers of the new branch, at least 1.
    **options
        ``by``, ``streets``, ``outline``, ``crossing_penalty``, ``households``, ``capacity_slack`` (the
        distances and capacities, see :func:`assign_plan`) and, for a baseline still to assign, any other
        option of :func:`assign_plan` (``minimal_change`` is ignored).

    Returns
    -------
    WhatIfResult
        ``branches``: households, staff and mean/max distance before and after per branch; ``moves``: every
        grid whose branch changes; ``staff_moves``: every person who changes branch; ``summary`` with
        ``households_moved`` (households whose branch changes) and ``households_restaffed`` (households of
        grids that keep their branch but change manager: 0 on closing or adding).

    Examples
    --------
    >>> from geodata.synthetic import synthetic_county
    >>> c = synthetic_county(rows=8, cols=8, n_branches=3, n_staff=9, households=3000)
    >>> before = assign_plan(c.grids, c.branches, c.staff).grids
    >>> res = what_if(before, c.branches, c.staff, close_branch="B01")
    >>> int(before.loc[before["branch_id"] == "B01", "households"].sum()) == res.summary["households_moved"]
    True
    """
    _check_inputs(grids, branches, staff)
    options = {k: v for k, v in options.items() if k != "minimal_change"}
    ids = branches["branch_id"].astype(str).tolist()
    if close_branch is not None:
        close_branch = str(close_branch)
        if close_branch not in ids:
            raise ValidationError(f"没有编号为 {close_branch} 的网点", fix=f"可用的网点：{', '.join(ids)}")
        if len(ids) == 1:
            raise ValidationError("不能关闭唯一的网点", fix="至少保留一个网点")
    n_new = 0
    row = None
    if add_branch is not None:
        lon, lat = add_branch
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValidationError(f"新网点坐标无效：{lon},{lat}", fix="按“经度,纬度”填写，例如 119.39,43.98")
        if NEW_BRANCH_ID in ids:
            raise ValidationError(f"已有编号为 {NEW_BRANCH_ID} 的网点", fix="先给该网点换一个编号，再做新增网点的假设分析")
        n_new = int(new_branch_staff if new_branch_staff is not None else default_new_branch_staff(staff))
        if n_new < 1:
            raise ValidationError(f"新网点的客户经理人数必须至少为 1：{new_branch_staff}", fix="填 1 或更多")
        if branches.crs is None:
            raise ValidationError("网点数据没有坐标参考系（CRS），无法加入新网点",
                                  fix="先用 set_crs 声明坐标系，例如 EPSG:4490")
        row = gpd.GeoDataFrame({"branch_id": [NEW_BRANCH_ID], "name": ["新网点"]},
                               geometry=[shapely.Point(lon, lat)], crs=4490).to_crs(branches.crs)
    by = options.get("by", "straight")
    streets, households = options.get("streets"), options.get("households")
    slack = options.get("capacity_slack", 0.15)
    land = _land(grids, options.get("outline"), streets)
    options["outline"] = land
    adj = options.pop("adjacency", None)
    adj = sparse.csr_matrix(grid_adjacency(grids) if adj is None else adj)
    all_b = branches if row is None else pd.concat([branches, row], ignore_index=True)
    dist = branch_distances(grids, all_b, by=by, streets=streets, outline=land,
                            crossing_penalty=options.get("crossing_penalty", CROSSING_PENALTY_M))
    gmass, bmass = _masses(grids, all_b, land)
    cost = _nearness(grids, all_b, dist, gmass, bmass, by=by)
    col = {b: i for i, b in enumerate(dist.columns)}
    hh = _households(grids)
    gk = to_metres(grids).centroid
    xy = np.column_stack([gk.x.to_numpy(), gk.y.to_numpy()])

    notes: list[str] = []
    current = _text_column(grids, "branch_id")
    if current.map(lambda b: b is not None and str(b) in col and str(b) != NEW_BRANCH_ID).all():
        base_grids = grids.copy()
        base_grids["branch_id"] = current.astype(str)
        base_grids["staff_id"] = _text_column(grids, "staff_id")
        baseline = _measure(base_grids, branches, staff, distances=dist[ids], adjacency=adj,
                            households=households, capacity_slack=slack)
        basis = "current"
    else:
        baseline = assign_plan(grids, branches, staff, adjacency=adj, **options)
        base_grids = baseline.grids
        basis = "assigned"
        notes.append("方案尚未全部分配网点：先按相同设置分配一次，以此为基准")
    label = base_grids["branch_id"].astype(str).to_numpy(dtype=object)
    staff_of = _text_column(base_grids, "staff_id").to_numpy(dtype=object)
    new_b, new_s = branches, staff.copy()
    moved_people: list[tuple[str, str, str]] = []
    if close_branch is not None:
        rest = [b for b in ids if b != close_branch]
        bpts = to_metres(branches).reset_index(drop=True)
        is_closed = (branches["branch_id"].astype(str) == close_branch).astype(int).to_numpy()
        label, staff_of, new_s, moved_people, note = _close(
            close_branch, label=label, staff_of=staff_of, staff=new_s, rest=rest,
            cost=cost[:, [col[b] for b in rest]], adj=adj, hh=hh, xy=xy, gmass=gmass,
            nearest=int(np.argmin(bpts[is_closed == 0].distance(bpts[is_closed == 1].iloc[0]).to_numpy())))
        new_b = branches[branches["branch_id"].astype(str) != close_branch].reset_index(drop=True)
        notes.append(note)
    if row is not None:
        assert add_branch is not None  # row is the new branch
        cost_now = cost[np.arange(len(grids)), [col[str(b)] for b in label]]
        label, staff_of, took, nearer = _add(label=label, staff_of=staff_of, cost_new=cost[:, col[NEW_BRANCH_ID]],
                                     cost_now=cost_now, locked=_locked(grids, None), n_new=n_new, adj=adj, hh=hh,
                                     xy=xy, gmass=gmass)
        new_b = pd.concat([new_b, row], ignore_index=True)
        new_s = pd.concat([new_s, pd.DataFrame({"staff_id": [f"{NEW_BRANCH_ID}-S{i + 1}" for i in range(n_new)],
                                                "branch_id": NEW_BRANCH_ID, "role": "客户经理"})],
                          ignore_index=True)
        notes.append(f"新增网点 {NEW_BRANCH_ID}（{add_branch[0]:.5f},{add_branch[1]:.5f}），配 {n_new} 名新客户经理，"
                     f"接收离它比离原网点更近的 {int(took.sum())} 个网格（{int(hh[took].sum())} 户）"
                     + (f"；另有 {nearer - int(took.sum())} 个更近的网格留在原网点（移走会把辖区割成几片）"
                        if nearer > took.sum() else ""))
    scen_grids = grids.copy()
    scen_grids["branch_id"] = label
    scen_grids["staff_id"] = pd.Series(staff_of, index=grids.index, dtype=object)
    scenario = _measure(scen_grids, new_b, new_s, distances=dist[new_b["branch_id"].astype(str).tolist()],
                        adjacency=adj, households=households, capacity_slack=slack)

    cols = ["branch_id", "staff", "households", "mean_distance_m", "max_distance_m"]
    before = baseline.branches[cols].set_index("branch_id")
    after = scenario.branches[cols].set_index("branch_id")
    table = before.merge(after, how="outer", left_index=True, right_index=True,
                         suffixes=("_before", "_after")).reset_index()
    for c in ("staff", "households"):
        table[f"{c}_before"] = table[f"{c}_before"].fillna(0).astype("int64")
        table[f"{c}_after"] = table[f"{c}_after"].fillna(0).astype("int64")
    table["households_change"] = table["households_after"] - table["households_before"]
    bb = base_grids["branch_id"].astype(str).to_numpy()
    sb = _text_column(base_grids, "staff_id").astype(str).to_numpy()
    move = bb != label.astype(str)
    restaffed = ~move & (sb != pd.Series(staff_of, dtype=object).astype(str).to_numpy())
    keep_cols = [c for c in ("grid_id", "code", "name") if c in grids.columns]
    moves = pd.DataFrame(grids.loc[move, keep_cols]).reset_index(drop=True)
    moves["households"] = hh[move].astype("int64")
    moves["branch_before"] = bb[move]
    moves["branch_after"] = label[move].astype(str)
    moves["staff_before"] = _text_column(base_grids, "staff_id").to_numpy(dtype=object)[move]
    moves["staff_after"] = staff_of[move]
    staff_moves = pd.DataFrame(moved_people, columns=["staff_id", "branch_before", "branch_after"])
    scenario.moved_households, scenario.moved_grids = int(hh[move | restaffed].sum()), int((move | restaffed).sum())
    summary = {
        "scenario": notes,
        "baseline": basis,
        "by": by,
        "grids_moved": int(move.sum()),
        "households_moved": int(hh[move].sum()),
        "grids_restaffed": int(restaffed.sum()),
        "households_restaffed": int(hh[restaffed].sum()),
        "staff_moved": len(staff_moves),
        "staff_before": int(table["staff_before"].sum()),
        "staff_after": int(table["staff_after"].sum()),
        "mean_distance_m_before": baseline.summary["mean_distance_m"],
        "mean_distance_m_after": scenario.summary["mean_distance_m"],
        "max_distance_m_before": baseline.summary["max_distance_m"],
        "max_distance_m_after": scenario.summary["max_distance_m"],
    }
    return WhatIfResult(baseline, scenario, table, moves, summary, staff_moves)
