"""Benchmark: generating and writing the demo county (巴林左旗, 110,000 households by default).

Baseline (same process): sampling as many uniform random points inside the county outline with
``shapely.contains_xy`` (the bare minimum any generator has to do); timings are medians, reported also as
ratios to that baseline.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import shapely

from geodata import demo
from grids.commands.bench import median_time
from grids.crs import to_gk


def run(*, quick: bool = False) -> dict:
    """Time :func:`geodata.demo.generate` and :func:`geodata.demo.write_demo`; ``quick`` uses 20,000 households."""
    households = 20_000 if quick else demo.DEFAULT_HOUSEHOLDS
    repeats = 1 if quick else 3
    outline = demo.load_outline()
    county = to_gk(outline).geometry.iloc[0]
    shapely.prepare(county)
    minx, miny, maxx, maxy = county.bounds
    rng = np.random.default_rng(0)

    def baseline() -> int:
        n = int(households / (county.area / ((maxx - minx) * (maxy - miny))) * 1.05)
        x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
        return int(shapely.contains_xy(county, x, y).sum())

    t_base, _ = median_time(baseline, 5)
    t_gen, layers = median_time(lambda: demo.generate(outline=outline, households=households), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        t_write, _ = median_time(
            lambda: demo.write_demo(Path(tmp) / "demo.gpkg", outline=outline, households=households, overwrite=True),
            1,
        )
    counts = {name: len(frame) for name, frame in layers.items()}
    counts.update({f"admin_{lvl}": int(n) for lvl, n in layers["admin_units"].level.value_counts().items()})
    return {
        "households": households,
        "repeats": repeats,
        "baseline_sample_points_s": round(t_base, 4),
        "generate_s": round(t_gen, 2),
        "generate_and_write_s": round(t_write, 2),
        "generate_vs_baseline": round(t_gen / t_base, 1),
        "within_60s_budget": t_write <= 60.0,
        "counts": counts,
    }


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=2))
