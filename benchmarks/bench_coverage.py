"""Benchmark: households → grids join and the funnel report, ours against a bare ``shapely.STRtree`` query.

Synthetic county: ~1,500 Voronoi grids over a 1.5° × 1° box near 119.4°E 43.9°N (a county's extent) and
1,000,000 households (98 % with a point, 2 % known only by their village code); plus the demo county when
``workspace/demo.gpkg`` exists. Timings are medians of several repeats; the baseline
``shapely.STRtree(grids).query(points, predicate="within")`` (tree build included) runs in the same process, and
ours is reported as a ratio to it. Budget: the 1,000,000-household join ≤ 3 s.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python benchmarks/bench_coverage.py
    sys.path.insert(0, str(ROOT))

from grids.commands.bench import median_time  # noqa: E402
from grids.coverage import county_summary, funnel, locate_households  # noqa: E402

DEMO = Path(os.environ.get("GRIDS_BENCH_DEMO", ROOT / "workspace" / "demo.gpkg"))
JOIN_BUDGET_S = 3.0


def synthetic(n_households: int, n_grids: int = 1500, *, seed: int = 0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Voronoi grids and random households (2 % without a point, placed by village code)."""
    rng = np.random.default_rng(seed)
    box = shapely.box(118.7, 43.4, 120.2, 44.4)
    seeds = shapely.multipoints(np.column_stack([rng.uniform(118.7, 120.2, n_grids), rng.uniform(43.4, 44.4, n_grids)]))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))
    cells = shapely.intersection(cells, box)
    codes = np.array([f"150422{100 + i // 100:03d}{i % 1000:03d}" for i in range(len(cells))])
    grids = gpd.GeoDataFrame({
        "grid_id": [f"G{i:04d}" for i in range(len(cells))], "code": codes, "source_codes": codes,
        "branch_id": [f"B{i % 30:02d}" for i in range(len(cells))],
        "staff_id": [f"S{i % 150:03d}" for i in range(len(cells))],
    }, geometry=cells, crs=4490)
    x, y = rng.uniform(118.7, 120.2, n_households), rng.uniform(43.4, 44.4, n_households)
    pts = shapely.points(x, y)
    no_point = rng.random(n_households) < 0.02
    village = np.full(n_households, None, dtype=object)
    tree = shapely.STRtree(cells)
    idx = tree.query(pts[no_point], predicate="within")
    village_codes = np.full(no_point.sum(), None, dtype=object)
    village_codes[idx[0]] = codes[idx[1]]
    village[no_point] = village_codes
    pts[no_point] = None
    granted = rng.random(n_households) < 0.45
    signed = granted & (rng.random(n_households) < 0.5)
    hh = gpd.GeoDataFrame({
        "hh_id": np.char.add("H", np.arange(n_households).astype(str)), "village_code": village,
        "segment": rng.choice(["农牧户", "个体工商户", "公职人员"], n_households), "archived": rng.random(n_households) < 0.77,
        "eligible": granted | (rng.random(n_households) < 0.02),
        "granted_amount": np.where(granted, rng.uniform(4e4, 1e5, n_households).round(-3), 0.0),
        "signed": signed, "available_amount": np.where(signed, 5e4, 0.0),
        "using": signed & (rng.random(n_households) < 0.8), "balance": np.where(signed, 3e4, 0.0),
    }, geometry=pts, crs=4490)
    return hh, grids


def _compare(hh: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, repeats: int,
             admin_units: gpd.GeoDataFrame | None = None) -> dict:
    pts = np.asarray(hh.geometry.values, dtype=object)
    polys = np.asarray(grids.geometry.values, dtype=object)

    def bare() -> None:
        shapely.STRtree(polys).query(pts, predicate="within")

    located = locate_households(hh, grids, admin_units=admin_units)
    bare_s, _ = median_time(bare, repeats)
    ours_s, _ = median_time(lambda: locate_households(hh, grids, admin_units=admin_units), repeats)
    report_s, _ = median_time(lambda: (county_summary(hh), funnel(hh, by="branch", located=located),
                                       funnel(hh, by="staff", located=located), funnel(hh, by="grid", located=located)),
                              repeats)
    return {
        "households": len(hh), "grids": len(grids), "repeats": repeats,
        "bare_strtree_within_s": round(bare_s, 3), "locate_households_s": round(ours_s, 3),
        "ratio_ours_to_bare": round(ours_s / bare_s, 2),
        "report_county_branch_staff_grid_s": round(report_s, 3),
        "placed": int(located["grid_id"].notna().sum()),
        "by_method": {str(k): int(v) for k, v in located["method"].value_counts().items()},
        "unplaced": int(located["grid_id"].isna().sum()),
    }


def run(*, quick: bool = False) -> dict:
    """Figures for the synthetic county (and the demo county when present)."""
    n = 200_000 if quick else 1_000_000
    repeats = 3 if quick else 5
    hh, grids = synthetic(n)
    out: dict = {"synthetic": _compare(hh, grids, repeats)}
    out["synthetic"]["join_budget_s"] = JOIN_BUDGET_S
    out["synthetic"]["join_within_budget"] = out["synthetic"]["locate_households_s"] <= JOIN_BUDGET_S * n / 1e6
    if DEMO.exists():
        try:
            from grids import plans
            from grids.workspace import GpkgWorkspace

            ws = GpkgWorkspace(DEMO)
            grids_demo = plans.read_grids(ws, plans.resolve_plan(ws))
            hh_demo = ws.read("households")
            demo = _compare(hh_demo, grids_demo, repeats, admin_units=ws.read("admin_units", columns=["code", "level"]))
            demo["county"] = county_summary(hh_demo)
            out["demo"] = demo
        except Exception as exc:  # the demo may be mid-regeneration; report, don't fail the synthetic figures
            out["demo"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    else:
        out["demo"] = {"skipped": f"{DEMO} not found (python -m grids demo {DEMO})"}
    return out


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=2))
