"""Benchmark of grid assignment (issue 4).

1. County: the synthetic county (40 × 40 grids, 30 branches, 150 staff, ~110k households) and the demo
   county (workspace/demo.gpkg's plan, else ``python -m grids demo`` into a temporary file; per branch the
   staff spread against its lower bound, and household → branch distances with and without the soft floor
   of :func:`grids.assign.assign_branches`) — time of the whole assignment (median of repeats) against a baseline
   measured in the same process (adjacency + plain nearest branch, the least any assignment must do), and
   the balance/contiguity metrics.
2. Territories side by side on one instance (1,600 lattice units, 20 territories, household weights): ours
   (:func:`grids.assign.partition.partition`) against spopt's Skater, AZP and RegionKMeansHeuristic — spread
   ``(max−min)/mean`` of households, territories in more than one piece, time. The spopt methods optimise
   attribute homogeneity, not balance: they are the general-purpose regionalisation a planner might reach
   for, not a like-for-like objective. Each runs in a child process with a time limit.
3. Small instances (≤ 60 units): our branch assignment (LP + rounding + contiguity/capacity repair) against
   the exact assignment MIP (PuLP/CBC) on the same cost with the same capacity (hard in the MIP, soft in
   ours); the MIP has no contiguity constraint, so its cost is a lower bound and
   the gap is an upper bound on our loss.
4. Road vs straight vs CBC (:func:`bench_vs_cbc`, issue 13): 200–1,340 grids × 30 branches, ours in both
   distance modes against CBC's exact capacitated assignment without contiguity (120 s limit) — our cost,
   CBC's best bound and best solution, our gap to the bound (%), the time ratio, the max load/capacity.

5. What-if on the demo county's plan (:func:`bench_what_if`, issue 16): closing B05 and adding a branch where the
   plan serves households farthest, with the least change (:func:`grids.assign.what_if`) against the previous
   behaviour (both plans assigned from scratch, the closed branch's staff all to its nearest branch) —
   households and grids moved, staff moved, distances before/after, seconds.

``python benchmarks/bench_assign.py [--quick]`` prints the result as JSON.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from geodata.synthetic import synthetic_county  # noqa: E402
from grids.assign import assign_branches, assign_plan, branch_capacity, branch_distances  # noqa: E402
from grids.assign.graph import components, grid_adjacency  # noqa: E402
from grids.assign.metrics import BALANCE_TARGET, balance_warnings  # noqa: E402
from grids.assign.partition import balance_bounds, partition  # noqa: E402
from grids.commands.bench import median_time  # noqa: E402
from grids.crs import to_gk  # noqa: E402

DEMO = ROOT / "workspace" / "demo.gpkg"


def _summary(result) -> dict:
    keys = ("grids", "households", "branches", "staff", "staff_spread_max", "staff_max_dev_max",
            "branches_balance_ok", "branches_with_staff", "staff_spread_county", "max_branch_pieces",
            "max_staff_pieces", "mean_distance_m", "max_distance_m", "capacity_use_max")
    out = {k: result.summary[k] for k in keys if k in result.summary}
    b = result.branches
    unmet = b[(b["staff"] > 0) & ~b["balance_ok"]]
    with_staff = b[b["staff"] > 0]
    out["branches_within_10pct"] = int((with_staff["staff_spread"] <= 0.10 + 1e-9).sum())
    out["branches_at_bound"] = int(((with_staff["staff_spread"] > 0.10 + 1e-9)
                                    & (with_staff["staff_spread"] <= with_staff["spread_lower_bound"] + 1e-9)).sum())
    worst = with_staff.loc[with_staff["staff_spread"].idxmax()] if len(with_staff) else None
    if worst is not None:
        out["worst_branch"] = {"branch_id": worst["branch_id"], "spread": round(float(worst["staff_spread"]), 3),
                               "lower_bound": round(float(worst["spread_lower_bound"]), 3)}
    out["per_branch"] = [
        {"branch_id": r.branch_id, "staff": int(r.staff), "grids": int(r.grids), "households": int(r.households),
         "spread": round(r.staff_spread, 3), "lower_bound": round(r.spread_lower_bound, 3),
         "balance_ok": bool(r.balance_ok), "capacity_use": round(getattr(r, "capacity_use", float("nan")), 3),
         "mean_distance_m": round(r.mean_distance_m, 0)}
        for r in with_staff.itertuples()
    ]
    warn = balance_warnings(result.grids, result.staff)
    out["split_warnings"] = {"branches": int(warn["branch_id"].nunique()), "grids": len(warn),
                             "proven": int(warn.loc[warn["lower_bound"] > BALANCE_TARGET, "branch_id"].nunique())}
    out["unbalanced_branches"] = [
        {"branch_id": r.branch_id, "grids": int(r.grids), "staff": int(r.staff), "spread": round(r.staff_spread, 3),
         "lower_bound": round(r.spread_lower_bound, 3), "lpt_no_contiguity": round(r.spread_lpt, 3)}
        for r in unmet.itertuples()
    ]
    return out


def bench_county(grids, branches, staff, *, streets=None, repeats: int = 3) -> dict:
    """Whole-county assignment time (ratio to the nearest-branch baseline) and metrics."""

    def baseline():
        adj = grid_adjacency(grids)
        d = branch_distances(grids, branches)
        return adj, d.to_numpy().argmin(axis=1)

    t_base, _ = median_time(baseline, repeats)
    t_ours, res = median_time(lambda: assign_plan(grids, branches, staff), repeats)
    out = {"seconds": round(t_ours, 3), "baseline_seconds": round(t_base, 3),
           "ratio_to_baseline": round(t_ours / t_base, 1), "steps_seconds": res.summary["seconds"],
           "metrics": _summary(res)}
    if streets is not None and len(streets):
        t_road, road = median_time(lambda: assign_plan(grids, branches, staff, by="road", streets=streets),
                                    max(1, repeats - 1))
        out["road"] = {"seconds": round(t_road, 3), "ratio_to_baseline": round(t_road / t_base, 1),
                       "metrics": _summary(road)}
    return out


def _spread_and_pieces(adj, w: np.ndarray, labels: np.ndarray) -> dict:
    labels = np.asarray(labels)
    ids = np.unique(labels)
    loads = np.array([w[labels == r].sum() for r in ids])
    comp = components(adj, labels)
    degree = np.diff(adj.indptr)
    pieces = [len(np.unique(comp[(labels == r) & (degree > 0)])) for r in ids]
    return {"territories": len(ids), "spread": round(float((loads.max() - loads.min()) / loads.mean()), 4),
            "max_dev": round(float(np.abs(loads - loads.mean()).max() / loads.mean()), 4),
            "split_territories": int(sum(p > 1 for p in pieces))}


def _spopt_worker(name: str, gdf, k: int, queue) -> None:
    warnings.simplefilter("ignore")
    from libpysal.weights import Rook
    from spopt.region import AZP, RegionKMeansHeuristic, Skater

    w = Rook.from_dataframe(gdf, use_index=False, silence_warnings=True)
    t = time.perf_counter()
    if name == "Skater":
        model = Skater(gdf, w, ["households"], n_clusters=k, floor=len(gdf) // (3 * k))
    elif name == "AZP":
        model = AZP(gdf, w, ["households"], n_clusters=k, random_state=0)
    else:
        model = RegionKMeansHeuristic(gdf[["households"]].to_numpy(dtype=float), k, w)
    model.solve()
    queue.put((np.asarray(model.labels_).tolist(), time.perf_counter() - t))


def _run_limited(name: str, gdf, k: int, limit: float):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_spopt_worker, args=(name, gdf, k, queue), daemon=True)
    proc.start()
    try:
        return queue.get(timeout=limit)
    except Exception:
        return None
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(5)


def bench_territories(*, quick: bool, k: int = 20, limits: dict | None = None) -> dict:
    """Ours against spopt on one 1,600-unit instance with household weights."""
    county = synthetic_county(rows=40, cols=40, n_branches=30, n_staff=150, seed=0)
    gdf = to_gk(county.grids)[["households", "geometry"]].reset_index(drop=True)
    adj = grid_adjacency(gdf)
    w = gdf["households"].to_numpy(dtype=float)
    xy = np.column_stack([gdf.centroid.x, gdf.centroid.y])
    t, lab = median_time(lambda: partition(adj, w, xy, k), 3)
    out = {"units": len(gdf), "territories": k,
           "bounds": {key: round(v, 4) for key, v in balance_bounds(w, k).items()},
           "ours": {"seconds": round(t, 3), **_spread_and_pieces(adj, w, lab)}}
    if quick:
        out["spopt"] = "skipped (quick)"
        return out
    limits = limits or {"Skater": 240.0, "AZP": 180.0, "RegionKMeansHeuristic": 120.0}
    for name, limit in limits.items():
        got = _run_limited(name, gdf, k, limit)
        if got is None:
            out[name] = {"seconds": f"> {limit:.0f} (stopped)"}
        else:
            labels, secs = got
            out[name] = {"seconds": round(secs, 2), **_spread_and_pieces(adj, w, np.asarray(labels))}
    return out


def cbc_assignment(cost: np.ndarray, load: np.ndarray, cap: np.ndarray, *, low: np.ndarray | None = None,
                   time_limit: float = 120.0) -> dict:
    """The exact capacitated assignment (no contiguity) by CBC through PuLP: each grid to one branch at least
    ``Σ cost``, ``low ≤ Σ load ≤ cap`` per branch (hard); a non-finite cost forbids that pair.

    Returns ``status`` (CBC's result line: optimal, stopped on time limit, infeasible …), ``objective`` (best
    solution found, None when none), ``bound`` (CBC's best lower bound — the objective when solved to
    optimality), ``seconds`` and ``loads`` (per branch, of the best solution). One thread (a shared machine).
    """
    import re
    import tempfile

    import pulp

    n, k = cost.shape
    ok = np.isfinite(cost)  # a grid with no finite distance to a branch (no road) cannot go there
    prob = pulp.LpProblem("branch_assignment", pulp.LpMinimize)
    x = [[pulp.LpVariable(f"x_{i}_{j}", cat="Binary") if ok[i, j] else None for j in range(k)] for i in range(n)]
    prob += pulp.lpSum(float(cost[i, j]) * x[i][j] for i in range(n) for j in range(k) if ok[i, j])
    for i in range(n):
        prob += pulp.lpSum(v for v in x[i] if v is not None) == 1
    for j in range(k):
        used = pulp.lpSum(float(load[i]) * x[i][j] for i in range(n) if load[i] and ok[i, j])
        prob += used <= float(cap[j])
        if low is not None and low[j] > 0:
            prob += used >= float(low[j])
    with tempfile.TemporaryDirectory(prefix="bench_cbc_") as tmp:
        log = Path(tmp) / "cbc.log"
        t = time.perf_counter()
        prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, threads=1, logPath=str(log)))
        seconds = time.perf_counter() - t
        text = log.read_text(errors="replace") if log.exists() else ""

    def field(name: str) -> float | None:
        m = re.search(rf"^{name}:\s*(-?[0-9.eE+-]+)", text, flags=re.M)
        return float(m.group(1)) if m else None

    result = re.search(r"^Result - (.+)$", text, flags=re.M)
    status = result.group(1).strip() if result else pulp.LpStatus[prob.status]
    objective = field("Objective value")
    has_solution = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if not has_solution:
        objective = None
    bound = field("Lower bound")
    if bound is None and status.lower().startswith("optimal"):
        bound = objective
    loads = None
    if has_solution:
        pick = np.array([[(x[i][j].value() or 0.0) if ok[i, j] else -1.0 for j in range(k)]
                         for i in range(n)]).argmax(axis=1)
        loads = np.bincount(pick, weights=load, minlength=k)
    return {"status": status, "objective": objective, "bound": bound, "seconds": seconds, "loads": loads}


def _mip_cost(cost: np.ndarray, load: np.ndarray, cap: np.ndarray, low: np.ndarray) -> float | None:
    got = cbc_assignment(cost, load, cap, low=low, time_limit=60)
    return got["objective"] if got["status"].lower().startswith("optimal") else None


def bench_small_mip(*, seeds: int = 5) -> dict:
    """Branch-assignment cost: ours against the exact MIP on small instances."""
    rows_out = []
    for size in ((5, 6), (6, 8), (6, 10)):
        for seed in range(seeds):
            c = synthetic_county(rows=size[0], cols=size[1], n_branches=4, n_staff=12,
                                 households=60 * size[0] * size[1], seed=seed)
            d = branch_distances(c.grids, c.branches)
            hh = c.grids["households"].to_numpy(dtype=float)
            cost = d.to_numpy() * (hh + 0.5)[:, None] / 1000.0
            cap = branch_capacity(c.branches, c.staff, hh.sum(), capacity_slack=0.15)
            low = np.zeros(len(cap))  # compared without the soft floor (floor_reach=0): same programme
            t = time.perf_counter()
            ours = assign_branches(c.grids, c.branches, c.staff, distances=d, floor_reach=0)
            t_ours = time.perf_counter() - t
            col = d.columns.get_indexer(ours)
            ours_cost = float(cost[np.arange(len(hh)), col].sum())
            used = np.bincount(col, weights=hh, minlength=len(cap))
            over = float((np.maximum(0, used - cap) + np.maximum(0, low - used)).sum())
            t = time.perf_counter()
            best = _mip_cost(cost, hh, cap, low)
            t_mip = time.perf_counter() - t
            rows_out.append({"units": len(hh), "seed": seed, "ours": round(ours_cost, 1),
                             "mip": None if best is None else round(best, 1),
                             "gap": None if not best else round(ours_cost / best - 1, 4),
                             "ours_outside_limits_households": round(over, 1),
                             "ours_seconds": round(t_ours, 3), "mip_seconds": round(t_mip, 3)})
    gaps = [r["gap"] for r in rows_out if r["gap"] is not None]
    return {"instances": rows_out, "mean_gap": round(float(np.mean(gaps)), 4) if gaps else None,
            "max_gap": round(float(np.max(gaps)), 4) if gaps else None}


def _demo_plan():
    """Grids, branches, staff of the demo county: workspace/demo.gpkg, else built into a temporary file."""
    import tempfile

    from grids.plans import read_grids, resolve_plan
    from grids.workspace import GpkgWorkspace

    if DEMO.exists():
        ws = GpkgWorkspace(DEMO)
        try:
            return "workspace/demo.gpkg", read_grids(ws, resolve_plan(ws)), ws
        except Exception:  # no plan yet: build one below
            pass
    from grids.__main__ import main

    path = Path(tempfile.mkdtemp(prefix="bench_assign_")) / "demo.gpkg"
    if main(["demo", str(path)]) != 0:
        raise RuntimeError("python -m grids demo failed")
    ws = GpkgWorkspace(path)
    return str(path), read_grids(ws, resolve_plan(ws)), ws


CBC_CAPACITY = 1.10  # the capacity every assignment keeps (issue 13): load ≤ 1.10 × branch capacity


def _cbc_figures(cbc: dict, cap: np.ndarray, time_limit: float) -> dict:
    bound, best = cbc["bound"], cbc["objective"]
    return {"status": cbc["status"], "best_bound": None if bound is None else round(bound, 1),
            "best_solution": None if best is None else round(best, 1), "seconds": round(cbc["seconds"], 2),
            "time_limit_s": time_limit,
            "max_load_per_capacity": None if cbc["loads"] is None else round(float((cbc["loads"] / cap).max()), 4)}


def _gap(ours: float, ref: float | None) -> float | None:
    return None if not ref or not np.isfinite(ours) else round((ours - ref) / ref * 100, 3) + 0.0  # no −0.0


def _vs_cbc_instance(grids, branches, staff, streets, *, time_limit: float, modes=("straight", "road")) -> dict:
    """Ours (both distance modes) against CBC on the same household × distance cost and capacity."""
    adj = grid_adjacency(grids)
    hh = grids["households"].to_numpy(dtype=float)
    cap = branch_capacity(branches, staff, hh.sum())
    out: dict = {"grids": len(grids), "branches": len(branches), "households": int(hh.sum()),
                 "capacity_limit": f"{CBC_CAPACITY} × branch_capacity (staff share + 15 %)"}
    rows = np.arange(len(hh))
    for by in modes:
        t = time.perf_counter()
        d = branch_distances(grids, branches, by=by, streets=streets if by == "road" else None)
        t_dist = time.perf_counter() - t
        cost = d.to_numpy(dtype=float) * hh[:, None] / 1000.0  # household-km
        t = time.perf_counter()
        ours = assign_branches(grids, branches, staff, by=by, distances=d, adjacency=adj)
        t_ours = time.perf_counter() - t
        col = d.columns.get_indexer(ours.astype(str))
        ours_cost = float(cost[rows, col].sum())
        ours_use = np.bincount(col, weights=hh, minlength=len(cap)) / cap
        plain = d.columns.get_indexer(assign_branches(grids, branches, staff, by=by, distances=d, adjacency=adj,
                                                      floor_reach=0).astype(str))
        plain_cost = float(cost[rows, plain].sum())
        cbc = cbc_assignment(cost, hh, CBC_CAPACITY * cap, time_limit=time_limit)
        own = max(1.0, float(ours_use.max()))  # the capacity ours actually keeps: a bound valid for ours
        same = cbc_assignment(cost, hh, own * cap, time_limit=time_limit)
        out[by] = {
            "distance_seconds": round(t_dist, 3),
            "road_fallback_grids": int(d.attrs.get("road_fallback", 0)),
            "nonfinite_distances": int((~np.isfinite(d.to_numpy(dtype=float))).sum()),
            "ours": {"cost_household_km": round(ours_cost, 1), "seconds": round(t_ours, 3),
                     "max_load_per_capacity": round(float(ours_use.max()), 4),
                     "branches_over_limit": int((ours_use > CBC_CAPACITY + 1e-9).sum()),
                     "cost_without_floor": round(plain_cost, 1),
                     "max_load_per_capacity_without_floor": round(float(
                         (np.bincount(plain, weights=hh, minlength=len(cap)) / cap).max()), 4)},
            "cbc": _cbc_figures(cbc, cap, time_limit),
            "cbc_at_ours_capacity": {"limit": f"{own:.4f} × branch_capacity", **_cbc_figures(same, cap, time_limit)},
            "gap_to_bound_pct": _gap(ours_cost, cbc["bound"]),
            "gap_to_best_pct": _gap(ours_cost, cbc["objective"]),
            "gap_to_bound_at_ours_capacity_pct": _gap(ours_cost, same["bound"]),
            "floor_cost_pct": _gap(ours_cost, plain_cost),
            "time_ratio_ours_to_cbc": round(t_ours / max(cbc["seconds"], 1e-9), 4),
        }
        print(f"[bench] vs CBC {len(grids)} grids, {by}: {json.dumps(out[by], ensure_ascii=False)}",
              file=sys.stderr, flush=True)
    return out


def bench_vs_cbc(*, quick: bool = False, time_limit: float | None = None) -> dict:
    """Road vs straight vs the exact capacitated assignment without contiguity (CBC), 200–1,340 grids × 30
    branches: synthetic counties of 200, 600 and 1,000 grids and the demo county (1,340 grids).

    CBC minimises the same total household × distance (household-km, grid centroid to branch, straight or
    over the streets) under every branch's load ≤ :data:`CBC_CAPACITY` × its capacity, without contiguity
    and without the soft floor: its best bound is a lower bound for any assignment that keeps the capacity,
    so our gap to it is ≥ 0 (when ours keeps it: ``branches_over_limit`` 0) and an upper bound on what
    contiguity, the floor and our heuristic cost. ``cbc_at_ours_capacity`` solves again with the capacity
    ours actually used (at least 1 ×): the like-for-like bound; ``floor_cost_pct`` is what the soft floor
    (``floor_reach``) adds to ours. Ours is :func:`grids.assign.assign_branches` with its defaults, timed
    without the distance matrix (reported apart). ``quick``: one 80-grid county with 6 branches and a 20 s
    limit. ``table`` sums up every instance and mode in one row.
    """
    if quick:
        c = synthetic_county(rows=8, cols=10, n_branches=6, n_staff=18, households=6000, seed=1)
        return _with_table([{"name": "synthetic 8×10", **_vs_cbc_instance(
            c.grids, c.branches, c.staff, c.streets, time_limit=time_limit or 20.0)}])
    limit = time_limit or 120.0
    instances = []
    for rows, cols in ((10, 20), (20, 30), (25, 40)):
        c = synthetic_county(rows=rows, cols=cols, n_branches=30, n_staff=150, households=69 * rows * cols, seed=0)
        instances.append({"name": f"synthetic {rows}×{cols}",
                          **_vs_cbc_instance(c.grids, c.branches, c.staff, c.streets, time_limit=limit)})
    source, grids, ws = _demo_plan()
    grids = grids.assign(branch_id=None, staff_id=None)
    streets = ws.read("streets") if "streets" in ws.layers() else None
    modes = ("straight", "road") if streets is not None and len(streets) else ("straight",)
    instances.append({"name": f"demo ({source})", **_vs_cbc_instance(grids, ws.read("branches"), ws.read("staff"),
                                                                      streets, time_limit=limit, modes=modes)})
    return _with_table(instances)


def _with_table(instances: list[dict]) -> dict:
    keys = ("gap_to_bound_pct", "gap_to_bound_at_ours_capacity_pct", "floor_cost_pct", "time_ratio_ours_to_cbc")
    table = [{"instance": inst["name"], "by": by, **{k: inst[by][k] for k in keys},
              "ours_max_load_per_capacity": inst[by]["ours"]["max_load_per_capacity"],
              "cbc_max_load_per_capacity": inst[by]["cbc"]["max_load_per_capacity"],
              "cbc_status": inst[by]["cbc"]["status"]}
             for inst in instances for by in ("straight", "road") if by in inst]
    return {"table": table, "instances": instances}


def bench_demo(*, repeats: int) -> dict | str:
    """The demo county: time and per-branch spread against its bound; distances with and without the floor."""
    source, grids, ws = _demo_plan()
    grids = grids.assign(branch_id=None, staff_id=None)
    branches, staff = ws.read("branches"), ws.read("staff")
    out = {"source": source}
    out.update(bench_county(grids, branches, staff, repeats=repeats))
    nearest = assign_plan(grids, branches, staff, floor_reach=0)
    out["without_floor"] = {k: nearest.summary[k] for k in ("mean_distance_m", "max_distance_m",
                                                            "branches_balance_ok", "staff_spread_max")}
    return out


def _whole_rerun_close(grids, branches, staff, close: str, **options) -> dict:
    """The what-if before issue 16: baseline and scenario both assigned from scratch, the closed branch's staff
    all sent to the branch nearest to it."""
    t0 = time.perf_counter()
    base = assign_plan(grids, branches, staff, **options)
    ids = branches["branch_id"].astype(str)
    rest = branches[ids != close].reset_index(drop=True)
    gone = to_gk(branches[ids == close]).geometry.iloc[0]
    dest = str(rest["branch_id"].iloc[int(np.argmin(to_gk(rest).geometry.distance(gone).to_numpy()))])
    moved_staff = staff.copy()
    moved_staff.loc[moved_staff["branch_id"].astype(str) == close, "branch_id"] = dest
    scen = assign_plan(grids, rest, moved_staff, **options)
    move = (base.grids["branch_id"].astype(str) != scen.grids["branch_id"].astype(str)).to_numpy()
    hh = grids["households"].fillna(0).to_numpy(dtype=float)
    return {"households_moved": int(hh[move].sum()), "grids_moved": int(move.sum()),
            "closed_branch_households_in_its_baseline": int(hh[(base.grids["branch_id"] == close).to_numpy()].sum()),
            "mean_distance_m_after": round(float(scen.summary["mean_distance_m"]), 1),
            "seconds": round(time.perf_counter() - t0, 2)}


def bench_what_if(*, repeats: int, previous: bool = True) -> dict:
    """What-if on the demo plan, by each distance the workspace has: close B05, add a branch; least change,
    and (``previous``) the whole re-run it replaced."""
    from grids.assign import what_if
    from grids.landmass import county_outline

    source, grids, ws = _demo_plan()
    branches, staff = ws.read("branches"), ws.read("staff")
    streets = ws.read("streets") if "streets" in ws.layers() else None
    outline = county_outline(ws)
    ids = branches["branch_id"].astype(str).tolist()
    close = "B05" if "B05" in ids else ids[len(ids) // 2]
    out: dict = {"source": source, "close_branch": close,
                 "close_branch_households": int(grids.loc[grids["branch_id"] == close, "households"].sum())}
    keys = ("households_moved", "grids_moved", "households_restaffed", "staff_moved", "staff_before", "staff_after",
            "mean_distance_m_before", "mean_distance_m_after", "max_distance_m_before", "max_distance_m_after")
    # a new branch where the plan serves households farthest (straight line): inside the farthest grid
    d = branch_distances(grids, branches)
    own = d.to_numpy()[np.arange(len(grids)), d.columns.get_indexer(grids["branch_id"].astype(str))]
    spot = grids.geometry.iloc[[int(np.nanargmax(own))]].representative_point().to_crs(4490).iloc[0]
    modes = ("straight", "road") if streets is not None and len(streets) else ("straight",)
    for by in modes:
        options = {"by": by, "streets": streets if streets is not None and len(streets) else None,
                   "outline": outline}
        secs, res = median_time(lambda o=options: what_if(grids, branches, staff, close_branch=close, **o), repeats)
        row = {"close": {**{k: round(res.summary[k], 1) for k in keys}, "seconds": round(secs, 2),
                         "staff_moves": res.staff_moves.to_dict("records")}}
        secs, res = median_time(lambda o=options: what_if(grids, branches, staff, add_branch=(spot.x, spot.y),
                                                          **o), repeats)
        row["add"] = {"at": [round(spot.x, 5), round(spot.y, 5)], **{k: round(res.summary[k], 1) for k in keys},
                      "seconds": round(secs, 2)}
        if previous:
            row["close_previous_whole_rerun"] = _whole_rerun_close(grids, branches, staff, close, **options)
        out[by] = row
    return out


def run(*, quick: bool = False) -> dict:
    """All assignment benchmarks; ``quick`` skips spopt and uses fewer repeats and instances."""
    repeats = 1 if quick else 3
    county = synthetic_county()
    return {
        "synthetic_county": bench_county(county.grids, county.branches, county.staff, streets=county.streets,
                                         repeats=repeats),
        "demo_county": bench_demo(repeats=repeats),
        "territories_vs_spopt": bench_territories(quick=quick),
        "branch_assignment_vs_mip": bench_small_mip(seeds=1 if quick else 5),
        "branch_assignment_vs_cbc": bench_vs_cbc(quick=quick),
        "what_if": bench_what_if(repeats=repeats, previous=not quick),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), ensure_ascii=False, indent=2))
