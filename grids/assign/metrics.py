"""Metrics of an assignment, per branch and per customer manager.

* load — households (or the workload used for balancing) of a territory;
* spread — ``(max − min) / mean`` of the managers' loads within a branch; max deviation —
  ``max |load − mean| / mean``; both next to the best spread the grid sizes allow
  (:func:`grids.assign.partition.balance_bounds`);
* pieces — connected pieces of a territory over shared grid edges (islands, grids without any neighbour, do
  not count), which must be 1;
* Polsby–Popper compactness ``4πA / P²`` of the territory's outline (1 for a disc, ~0.785 for a square);
* mean and max household → branch distance, from household points when given, else from grid centroids
  weighted by households;
* :func:`balance_warnings` — where whole grids cannot bring a branch's managers within
  :data:`BALANCE_TARGET`: the proven lower bound and which grids to split into how many parts (warnings,
  one row per grid, with the reason and the fix).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from grids.assign.graph import components, grid_adjacency, to_metres
from grids.assign.partition import balance_bounds, split_suggestions

if TYPE_CHECKING:
    from grids.assign.graph import SparseMatrix

__all__ = ["assignment_metrics", "balance_warnings", "grid_distance_stats", "pieces_per_label", "polsby_popper",
           "warning_lines"]

BALANCE_TARGET = 0.10  # the spread a branch's managers should stay within (issue 4)


def polsby_popper(geoms: np.ndarray, labels: np.ndarray, keys: Sequence[Hashable]) -> np.ndarray:
    """Polsby–Popper ``4πA/P²`` of the union of the geometries (metres) carrying each key.

    Examples
    --------
    >>> sq = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> polsby_popper(sq, np.array(["a", "b"]), ["a", "b"]).round(3).tolist()
    [0.785, 0.785]
    >>> polsby_popper(sq, np.array(["a", "a"]), ["a"]).round(3).tolist()
    [0.698]
    """
    out = np.full(len(keys), np.nan)
    order = pd.Series(np.arange(len(labels))).groupby(pd.Series(labels, dtype=object)).indices
    for i, k in enumerate(keys):
        idx = order.get(k)
        if idx is None or not len(idx):
            continue
        shape = shapely.union_all(geoms[idx]) if len(idx) > 1 else geoms[idx[0]]
        p = shape.length
        out[i] = 4 * np.pi * shape.area / p**2 if p > 0 else np.nan
    return out


def pieces_per_label(adjacency: SparseMatrix, labels: np.ndarray, keys: Sequence[Hashable]) -> np.ndarray:
    """Number of pieces of each key's territory; islands (grids with no neighbour) are not counted.

    Examples
    --------
    >>> a = sparse.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]))
    >>> pieces_per_label(a, np.array(["x", "y", "x", "x"]), ["x", "y", "z"]).tolist()
    [2, 1, 0]
    """
    lab = pd.Series(labels, dtype=object)
    codes, uniques = pd.factorize(lab, use_na_sentinel=True)
    comp = components(adjacency, np.where(codes >= 0, codes, -1 - np.arange(len(codes))))
    degree = np.diff(sparse.csr_matrix(adjacency).indptr)
    out = np.zeros(len(keys), dtype=np.int64)
    pos = {k: i for i, k in enumerate(uniques)}
    for i, k in enumerate(keys):
        if k not in pos:
            continue
        members = codes == pos[k]
        linked = members & (degree > 0)
        out[i] = len(np.unique(comp[linked])) if linked.any() else int(members.any())
    return out


def grid_distance_stats(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, *,
                        distances: pd.DataFrame | None = None,
                        households: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """Per grid: households counted ``n``, sum ``sum_m`` and max ``max_m`` of household → branch distance.

    With ``households`` points, each household is measured from its own position (straight line) to the
    branch of the grid it lies in; otherwise the grid centroid stands for its ``households`` (using
    ``distances``, e.g. road distances, when given).
    """
    gk = to_metres(grids)
    assert gk.crs is not None  # to_metres raises on data without a CRS
    epsg = gk.crs.to_epsg()
    ids = branches["branch_id"].astype(str).to_numpy()
    col = pd.Index(ids).get_indexer(pd.Index(grids["branch_id"].astype(object)
                                             .where(grids["branch_id"].notna(), "").astype(str)))
    bpts = shapely.centroid(np.asarray(to_metres(branches, epsg=epsg).values, dtype=object))
    n = len(grids)
    if households is not None and len(households):
        pts = np.asarray(to_metres(households, epsg=epsg).values, dtype=object)
        hi, gi = shapely.STRtree(np.asarray(gk.values, dtype=object)).query(pts, predicate="within")
        hi, first = np.unique(hi, return_index=True)
        gi = gi[first]
        ok = col[gi] >= 0
        hi, gi = hi[ok], gi[ok]
        d = shapely.distance(pts[hi], bpts[col[gi]])
        cnt = np.bincount(gi, minlength=n).astype(float)
        total = np.bincount(gi, weights=d, minlength=n)
        mx = np.full(n, np.nan)
        if len(gi):
            s = pd.Series(d).groupby(gi).max()
            mx[s.index.to_numpy()] = s.to_numpy()
        return pd.DataFrame({"n": cnt, "sum_m": total, "max_m": mx}, index=grids.index)
    if distances is not None:
        dm = distances.reindex(columns=ids).to_numpy(dtype=float)
    else:
        c = gk.centroid
        dm = np.hypot(c.x.to_numpy()[:, None] - shapely.get_x(bpts)[None, :],
                      c.y.to_numpy()[:, None] - shapely.get_y(bpts)[None, :])
    d = np.where(col >= 0, dm[np.arange(n), np.maximum(col, 0)], np.nan)
    hh = pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy(dtype=float)
    return pd.DataFrame({"n": hh, "sum_m": np.nan_to_num(hh * d), "max_m": np.where(hh > 0, d, np.nan)},
                        index=grids.index)


def _distance_by(stats: pd.DataFrame, labels: np.ndarray, keys: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    g = stats.assign(_k=pd.Series(labels, index=stats.index, dtype=object)).groupby("_k")
    agg = g.agg(n=("n", "sum"), s=("sum_m", "sum"), m=("max_m", "max")).reindex(list(keys))
    mean = np.where(agg["n"].to_numpy(dtype=float) > 0, agg["s"] / agg["n"].where(agg["n"] > 0, 1), np.nan)
    return mean.astype(float), agg["m"].to_numpy(dtype=float)


def assignment_metrics(grids: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, *,
                       staff: pd.DataFrame | None = None, adjacency: SparseMatrix | None = None,
                       distance_stats: pd.DataFrame | None = None, weights: pd.Series | None = None,
                       capacity: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Metrics per branch, per customer manager and for the whole county.

    Parameters
    ----------
    grids : GeoDataFrame
        With ``households``, ``branch_id`` and ``staff_id``.
    branches : GeoDataFrame
        ``branch_id`` (and ``name``).
    staff : DataFrame, optional
        The managers who take grids (all of them are listed, with load 0 when they have none); by default
        the distinct ``staff_id`` values of ``grids``.
    distance_stats : DataFrame, optional
        :func:`grid_distance_stats` (computed from centroids, straight line, when missing).
    weights : Series, optional
        The workload balanced instead of households.
    capacity : Series, optional
        Household capacity per ``branch_id``.

    Returns
    -------
    (branch metrics, staff metrics, summary dict)
    """
    adj = grid_adjacency(grids) if adjacency is None else adjacency
    hh = pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy(dtype=float)
    load = hh if weights is None else pd.Series(weights, index=grids.index).fillna(0).to_numpy(dtype=float)
    geoms = np.asarray(to_metres(grids).values, dtype=object)
    blab = grids["branch_id"].astype(object).where(grids["branch_id"].notna(), None).to_numpy()
    slab = grids["staff_id"].astype(object).where(grids["staff_id"].notna(), None).to_numpy()
    stats = grid_distance_stats(grids, branches) if distance_stats is None else distance_stats
    if staff is None:
        staff = pd.DataFrame({"staff_id": pd.unique(slab[slab != None])})  # noqa: E711
        staff["branch_id"] = [blab[slab == s][0] for s in staff["staff_id"]]
    sk = staff["staff_id"].astype(str).tolist()
    bk = branches["branch_id"].astype(str).tolist()

    # per staff
    s_mean, s_max = _distance_by(stats, slab, sk)
    sframe = pd.DataFrame({
        "staff_id": sk,
        "branch_id": staff["branch_id"].astype(str).to_numpy(),
        "grids": pd.Series(slab).value_counts().reindex(sk).fillna(0).astype("int64").to_numpy(),
        "households": pd.Series(hh).groupby(slab).sum().reindex(sk).fillna(0).astype("int64").to_numpy(),
        "load": pd.Series(load).groupby(slab).sum().reindex(sk).fillna(0).to_numpy(dtype=float),
        "pieces": pieces_per_label(adj, slab, sk),
        "polsby_popper": polsby_popper(geoms, slab, sk),
        "mean_distance_m": s_mean,
        "max_distance_m": s_max,
    })
    team_mean = sframe.groupby("branch_id")["load"].transform("mean")
    sframe["load_vs_mean"] = np.where(team_mean > 0, sframe["load"] / team_mean.where(team_mean > 0, 1), np.nan)

    # per branch
    b_mean, b_max = _distance_by(stats, blab, bk)
    rows = []
    for b in bk:
        team = sframe[sframe["branch_id"] == b]
        members = blab == b
        k = len(team)
        loads = team["load"].to_numpy()
        mean = loads.mean() if k else np.nan
        bounds = balance_bounds(load[members], k) if k else {"lower_bound": np.nan, "lpt": np.nan}
        spread = (loads.max() - loads.min()) / mean if k and mean > 0 else (0.0 if k else np.nan)
        maxdev = np.abs(loads - mean).max() / mean if k and mean > 0 else (0.0 if k else np.nan)
        rows.append({
            "branch_id": b,
            "staff": k,
            "grids": int(members.sum()),
            "households": int(hh[members].sum()),
            "load_per_staff": mean,
            "staff_spread": spread,
            "staff_max_dev": maxdev,
            "spread_lower_bound": bounds["lower_bound"],
            "spread_lpt": bounds["lpt"],
            "balance_ok": bool(k == 0 or spread <= max(BALANCE_TARGET, bounds["lower_bound"]) + 1e-9),
            "max_staff_pieces": int(team["pieces"].max()) if k else 0,
        })
    bframe = pd.DataFrame(rows)
    if "name" in branches.columns:
        bframe.insert(1, "name", branches["name"].astype(object).to_numpy())
    if capacity is not None:
        cap = pd.Series(capacity).reindex(bk).to_numpy(dtype=float)
        bframe["capacity"] = cap
        bframe["capacity_use"] = np.where(cap > 0, bframe["households"] / np.where(cap > 0, cap, 1), np.nan)
    bframe["pieces"] = pieces_per_label(adj, blab, bk)
    bframe["polsby_popper"] = polsby_popper(geoms, blab, bk)
    bframe["mean_distance_m"] = b_mean
    bframe["max_distance_m"] = b_max

    staff_branch = dict(zip(sk, sframe["branch_id"], strict=True))
    wrong = np.array([s is not None and staff_branch.get(str(s)) != b for s, b in zip(slab, blab, strict=True)])
    all_loads = sframe["load"].to_numpy()
    n_total = stats["n"].sum()
    with_staff = bframe[bframe["staff"] > 0]
    summary: dict[str, Any] = {
        "grids": len(grids),
        "households": int(hh.sum()),
        "branches": len(bk),
        "staff": len(sk),
        "unassigned_branch": int(sum(b is None for b in blab)),
        "unassigned_staff": int(sum(s is None for s in slab)),
        "staff_not_at_branch": int(wrong.sum()),
        "max_branch_pieces": int(bframe["pieces"].max()) if len(bframe) else 0,
        "max_staff_pieces": int(sframe["pieces"].max()) if len(sframe) else 0,
        "staff_spread_max": float(with_staff["staff_spread"].max()) if len(with_staff) else 0.0,
        "staff_max_dev_max": float(with_staff["staff_max_dev"].max()) if len(with_staff) else 0.0,
        "branches_balance_ok": int(with_staff["balance_ok"].sum()),
        "branches_with_staff": len(with_staff),
        "staff_spread_county": float((all_loads.max() - all_loads.min()) / all_loads.mean())
        if len(all_loads) and all_loads.mean() > 0 else 0.0,
        "mean_distance_m": float(stats["sum_m"].sum() / n_total) if n_total > 0 else float("nan"),
        "max_distance_m": float(np.nanmax(stats["max_m"])) if stats["max_m"].notna().any() else float("nan"),
    }
    if capacity is not None:
        summary["capacity_use_max"] = float(np.nanmax(bframe["capacity_use"])) if len(bframe) else 0.0
    return bframe, sframe, summary


WARNING_COLUMNS = ["severity", "code", "branch_id", "grid_id", "name", "households", "parts", "staff",
                   "spread", "lower_bound", "message", "fix"]


def balance_warnings(grids: pd.DataFrame, staff: pd.DataFrame, *, weights: pd.Series | None = None,
                     target: float = BALANCE_TARGET) -> pd.DataFrame:
    """Warnings for branches whose managers cannot come within ``target`` with whole grids: what to split.

    For each branch with at least two managers whose current spread ``(max − min)/mean`` (by ``staff_id``;
    the best whole-grid balance when no grid has a manager yet) is above ``target``, and where no
    assignment of whole grids is known to reach ``target`` (:func:`grids.assign.partition.split_suggestions`
    finds splits), one row per grid to split: the proven lower bound of the spread with whole grids
    (:func:`grids.assign.partition.balance_bounds`), and into how many parts to cut the grid. Warnings
    never block anything.

    Parameters
    ----------
    grids : DataFrame
        ``grid_id``, ``households``, ``branch_id`` (and ``staff_id``, ``name``).
    staff : DataFrame
        The managers who take grids: ``staff_id``, ``branch_id`` (e.g. the staff metrics of
        :func:`assignment_metrics`, or :func:`grids.assign.assignable_staff`).
    weights : Series, optional
        Workload per grid (aligned to ``grids.index``) balanced instead of households.
    target : float
        The spread managers should stay within.

    Returns
    -------
    DataFrame
        Columns :data:`WARNING_COLUMNS`; ``severity`` is ``"warning"``, ``code`` ``"staff_balance_split"``;
        largest grid first within a branch. Empty when every branch can reach ``target``.

    Examples
    --------
    >>> g = pd.DataFrame({"grid_id": ["a", "b", "c"], "households": [300, 60, 40], "branch_id": "B",
    ...                   "staff_id": ["s1", "s2", "s3"]})
    >>> s = pd.DataFrame({"staff_id": ["s1", "s2", "s3", "s4"], "branch_id": "B"})
    >>> w = balance_warnings(g, s)
    >>> w[["grid_id", "parts"]].values.tolist(), float(w["lower_bound"].iloc[0])  # 300 vs a 4th with nothing
    ([['a', 3]], 3.0)
    """
    hh = pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy(dtype=float)
    load = hh if weights is None else pd.Series(weights, index=grids.index).fillna(0).to_numpy(dtype=float)
    branch = grids["branch_id"].astype(object).where(grids["branch_id"].notna(), None).to_numpy()
    owner = (grids["staff_id"].astype(object).where(grids["staff_id"].notna(), None).to_numpy()
             if "staff_id" in grids.columns else np.full(len(grids), None, dtype=object))
    ids = grids["grid_id"].astype(str).to_numpy() if "grid_id" in grids.columns else np.arange(len(grids)).astype(str)
    names = (grids["name"].astype(object).where(grids["name"].notna(), None).to_numpy() if "name" in grids.columns
             else np.full(len(grids), None, dtype=object))
    rows: list[dict[str, Any]] = []
    team_of = staff.dropna(subset=["staff_id", "branch_id"]).groupby(staff["branch_id"].astype(str))
    for b, team in team_of:
        k = int(team["staff_id"].nunique())
        members = np.flatnonzero(branch == b)
        if k < 2 or not len(members) or load[members].sum() <= 0:
            continue
        w = load[members]
        mean = w.sum() / k
        per = pd.Series(w).groupby(owner[members]).sum()
        staff_loads = per.reindex(team["staff_id"].astype(str).unique()).fillna(0).to_numpy(dtype=float)
        spread = float(np.ptp(staff_loads) / mean) if per.size else np.nan
        if per.size and spread <= target + 1e-9:
            continue
        splits = split_suggestions(w, k, target=target)
        if not splits:
            continue
        bound = balance_bounds(w, k)["lower_bound"]
        proven = bound > target + 1e-9
        why = (f"网点 {b} 的 {k} 名客户经理按整块网格分配，负荷差（最多 − 最少）/ 平均至少 {bound:.0%}"
               f"（可证明的下限），达不到 {target:.0%}" if proven else
               f"网点 {b} 的 {k} 名客户经理按整块网格分配，找不到负荷差在 {target:.0%} 以内的分法"
               f"（可证明的下限 {bound:.0%}）")
        others = len(splits) - 1
        for i, parts in splits.items():
            g = int(members[i])
            label = f"{names[g]}（{ids[g]}）" if names[g] else str(ids[g])
            rows.append({
                "severity": "warning", "code": "staff_balance_split", "branch_id": str(b), "grid_id": ids[g],
                "name": names[g], "households": int(hh[g]), "parts": int(parts), "staff": k,
                "spread": spread, "lower_bound": float(bound),
                "message": f"{why}：网格 {label} 有 {int(hh[g])} 户，是平均每人 {mean:.0f} 户的 "
                           f"{w[i] / mean:.1f} 倍",
                "fix": f"把网格 {label} 拆成 {parts} 块（每块约 {w[i] / parts:.0f} 户）"
                       + (f"，连同该网点另外 {others} 个建议拆分的网格" if others else "")
                       + f"，负荷差即可降到 {target:.0%} 以内（不计连片）；或调整该网点的客户经理人数",
            })
    return pd.DataFrame(rows, columns=WARNING_COLUMNS)


def warning_lines(warnings: pd.DataFrame) -> list[str]:
    """Lines for a terminal: ``警告：<message>。处理：<fix>`` per row of :func:`balance_warnings`.

    Examples
    --------
    >>> warning_lines(pd.DataFrame({"message": ["网格太大"], "fix": ["拆成 2 块"]}))
    ['警告：网格太大。处理：拆成 2 块']
    """
    return [f"警告：{m}。处理：{f}" for m, f in zip(warnings["message"], warnings["fix"], strict=True)]
