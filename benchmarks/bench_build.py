"""Grid build benchmark: the demo county's build, and street_blocks against momepy.enclosures.

Figures are medians of repeats. Baselines measured in the same process:
- build: a bare ``shapely.STRtree`` point-in-polygon query of every household into the village polygons (the
  least any build must do); reported as ``build_vs_locate``;
- blocks: ``momepy.enclosures`` on the same streets and limit; reported as ``street_blocks_vs_momepy``, with
  the block counts of both. momepy also returns enclosures outside the limit (between streets that run past
  it) and does not absorb slivers, so the comparable figures are ``blocks_momepy_inside_limit`` and
  ``blocks_ours_without_sliver_absorption`` (equal on the demo county).

Run: ``python -m grids bench --only build`` (or ``PYTHONPATH=. python benchmarks/bench_build.py``).

Uses ``workspace/demo.gpkg`` (or the path in ``GRIDS_DEMO``) when it exists; otherwise a synthetic jittered
street lattice for the block comparison only.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from grids.blocks import street_blocks
from grids.build import build_grids
from grids.commands.bench import median_time

ROOT = Path(__file__).resolve().parents[1]


def _synthetic_streets(n: int = 12, seed: int = 7) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    x0, y0, step = 500_000.0, 4_870_000.0, 200.0
    lines = []
    for k in range(1, n):
        xs = x0 + k * step + rng.normal(0, 15, n + 3)
        lines.append(shapely.LineString(np.column_stack([xs, y0 + np.linspace(-100, n * step + 100, n + 3)])))
        ys = y0 + k * step + rng.normal(0, 15, n + 3)
        lines.append(shapely.LineString(np.column_stack([x0 + np.linspace(-100, n * step + 100, n + 3), ys])))
    limit = shapely.box(x0, y0, x0 + n * step, y0 + n * step)
    return (gpd.GeoDataFrame(geometry=lines, crs=4549), gpd.GeoDataFrame(geometry=[limit], crs=4549))


def _compare_blocks(streets: gpd.GeoDataFrame, limit: gpd.GeoDataFrame, repeats: int) -> dict:
    import momepy

    t_ours, ours = median_time(lambda: street_blocks(streets, limit), repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_momepy, theirs = median_time(lambda: momepy.enclosures(streets, limit=limit), repeats)
    raw = street_blocks(streets, limit, sliver_area=0.0, sliver_width=0.0)
    lim = shapely.union_all(limit.geometry.values)
    inside = theirs[shapely.within(shapely.point_on_surface(theirs.geometry.values), lim)]
    return {
        "street_blocks_s": round(t_ours, 4),
        "momepy_enclosures_s": round(t_momepy, 4),
        "street_blocks_vs_momepy": round(t_ours / t_momepy, 2),
        "blocks_ours": len(ours),
        "blocks_ours_without_sliver_absorption": len(raw),
        "blocks_momepy": len(theirs),
        "blocks_momepy_inside_limit": len(inside),
        "area_ours_vs_limit": round(float(ours.area.sum() / lim.area), 9),
        "area_momepy_inside_vs_limit": round(float(inside.area.sum() / lim.area), 9),
    }


def run(*, quick: bool = False) -> dict:
    repeats = 1 if quick else 3
    demo = Path(os.environ.get("GRIDS_DEMO", ROOT / "workspace" / "demo.gpkg"))
    out: dict[str, object] = {}
    if not demo.exists():
        streets, limit = _synthetic_streets(8 if quick else 12)
        out["demo"] = f"missing ({demo}); synthetic lattice only"
        out["blocks"] = _compare_blocks(streets, limit, repeats)
        return out

    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(demo)
    admin = ws.read("admin_units")
    households = ws.read("households", columns=["hh_id", "village_code", "group_code"])
    streets = ws.read("streets")
    urban = ws.read("urban_areas")

    t_build, grids = median_time(lambda: build_grids(admin, households=households, streets=streets,
                                                      urban_areas=urban), repeats)

    def locate():
        villages = admin[admin["level"] == "village"].to_crs(4549).geometry.values
        pts = households.geometry.to_crs(4549).values
        return shapely.STRtree(villages).query(pts, predicate="intersects")

    t_locate, _ = median_time(locate, repeats)
    hh = grids["households"]
    out["build"] = {
        "seconds": round(t_build, 3),
        "locate_baseline_s": round(t_locate, 3),
        "build_vs_locate": round(t_build / t_locate, 1),
        "grids": len(grids),
        "by_kind": {str(k): int(v) for k, v in grids["kind"].value_counts().sort_index().items()},
        "households": int(hh.sum()),
        "households_per_grid": {"min": int(hh.min()), "median": float(hh.median()), "max": int(hh.max())},
        "villages": int((admin["level"] == "village").sum()),
        "groups": int((admin["level"] == "group").sum()),
    }
    out["blocks"] = _compare_blocks(streets.to_crs(4549), urban.to_crs(4549), repeats)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=2))
