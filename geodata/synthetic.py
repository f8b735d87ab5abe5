"""A synthetic county for testing and benchmarking assignment without the demo workspace.

A jittered lattice of quadrilateral grids (they tile the county exactly: neighbours share their edges),
households concentrated around a few towns, branches in the busiest places and staff in proportion to the
households near each branch, plus the lattice lines as a street network.

Examples
--------
>>> county = synthetic_county(rows=6, cols=6, n_branches=3, n_staff=9)
>>> len(county.grids), len(county.branches), len(county.staff)
(36, 3, 9)
>>> county.grids.crs.to_epsg(), int(county.grids["households"].sum()) > 0
(4490, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["SyntheticCounty", "synthetic_county"]

_GK_EPSG = 4549  # CGCS2000 / 3-degree GK CM 120E (巴林左旗 sits around 119.4°E)


@dataclass
class SyntheticCounty:
    """Layers of a synthetic county, all in EPSG:4490 like a workspace."""

    grids: gpd.GeoDataFrame
    branches: gpd.GeoDataFrame
    staff: pd.DataFrame
    streets: gpd.GeoDataFrame


def synthetic_county(*, rows: int = 40, cols: int = 40, n_branches: int = 30, n_staff: int = 150,
                     cell: float = 1500.0, households: int = 110_000, seed: int = 0) -> SyntheticCounty:
    """Build a synthetic county of ``rows × cols`` grids.

    Parameters
    ----------
    rows, cols : int
        Lattice size; grids are about ``cell`` metres wide.
    n_branches, n_staff : int
        Number of branches and of customer managers (every branch gets at least one).
    households : int
        Approximate total number of households.
    seed : int
        Random seed; the same seed gives the same county.
    """
    rng = np.random.default_rng(seed)
    x0, y0 = 470_000.0, 4_850_000.0
    gx, gy = np.meshgrid(np.arange(cols + 1) * cell + x0, np.arange(rows + 1) * cell + y0)
    jitter = rng.uniform(-0.25, 0.25, size=(2, rows + 1, cols + 1)) * cell
    jitter[:, [0, -1], :] = 0.0
    jitter[:, :, [0, -1]] = 0.0
    vx, vy = gx + jitter[0], gy + jitter[1]
    polys: list[shapely.Polygon] = []
    centre_rows: list[np.ndarray] = []
    for r in range(rows):
        for c in range(cols):
            ring = [(vx[r, c], vy[r, c]), (vx[r, c + 1], vy[r, c + 1]),
                    (vx[r + 1, c + 1], vy[r + 1, c + 1]), (vx[r + 1, c], vy[r + 1, c])]
            polys.append(shapely.Polygon(ring))
            centre_rows.append(np.mean(ring, axis=0))
    centres = np.asarray(centre_rows)

    n_towns = max(2, n_branches // 3)
    towns = centres[rng.choice(len(centres), size=n_towns, replace=False)]
    d = np.sqrt(((centres[:, None, :] - towns[None, :, :]) ** 2).sum(-1))
    density = 0.5 + (np.exp(-((d / (4.0 * cell)) ** 2)) * rng.uniform(1, 3, n_towns)).sum(1)
    density *= rng.lognormal(0.0, 0.4, len(centres))
    hh = rng.poisson(density / density.sum() * households)

    # branches: the busiest grids, kept apart from each other
    order = np.argsort(-hh * rng.uniform(0.5, 1.0, len(hh)))
    chosen: list[int] = []
    min_gap = cell * max(rows, cols) / np.sqrt(n_branches) * 0.55
    for i in order:
        if all(np.hypot(*(centres[i] - centres[j])) >= min_gap for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n_branches:
            break
    for i in order:  # lattice too small for the gap: fill up with the next busiest
        if len(chosen) == n_branches:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    bpts = centres[chosen] + rng.uniform(-0.2, 0.2, (len(chosen), 2)) * cell

    nearest = np.argmin(np.hypot(centres[:, None, 0] - bpts[None, :, 0], centres[:, None, 1] - bpts[None, :, 1]), 1)
    share = np.bincount(nearest, weights=hh, minlength=len(chosen))
    counts = np.ones(len(chosen), dtype=int)
    extra = n_staff - len(chosen)
    if extra > 0:  # largest-remainder apportionment of the rest
        quota = share / share.sum() * extra
        counts += np.floor(quota).astype(int)
        rest = n_staff - counts.sum()
        counts[np.argsort(-(quota - np.floor(quota)))[:rest]] += 1

    def geo(geoms, frame) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=_GK_EPSG)).to_crs(4490)

    grids = geo(polys, {
        "grid_id": [f"G{i:05d}" for i in range(len(polys))],
        "code": [f"150422{r:03d}{c:03d}" for r in range(rows) for c in range(cols)],
        "kind": "rural",
        "households": hh.astype("int64"),
        "branch_id": pd.Series([None] * len(polys), dtype="str"),
        "staff_id": pd.Series([None] * len(polys), dtype="str"),
        "locked": False,
    })
    branch_ids = [f"B{j + 1:02d}" for j in range(len(chosen))]
    branches = geo(shapely.points(bpts), {"branch_id": branch_ids, "name": [f"网点{j + 1}" for j in range(len(chosen))]})
    staff_rows = [(f"{b}-S{k + 1}", b) for b, n in zip(branch_ids, counts, strict=True) for k in range(n)]
    staff = pd.DataFrame(staff_rows, columns=["staff_id", "branch_id"])
    staff["role"] = "客户经理"
    lines = [shapely.LineString(np.column_stack([vx[r], vy[r]])) for r in range(rows + 1)]
    lines += [shapely.LineString(np.column_stack([vx[:, c], vy[:, c]])) for c in range(cols + 1)]
    streets = geo(lines, {"name": [f"路{i}" for i in range(len(lines))]})
    return SyntheticCounty(grids=grids, branches=branches, staff=staff, streets=streets)
