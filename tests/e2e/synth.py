"""A synthetic county workspace at the brief's scale, for app tests while (or where) the demo is not built.

Not a substitute for ``python -m grids demo``: Voronoi cells stand in for towns, villages and grids, so the
app has realistic *sizes* (≈1.5k grids, 110k households, 30 branches) to draw and click on.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.crs import gdf_gcj02_to_wgs84
from grids.workspace import GpkgWorkspace

ROOT = Path(__file__).resolve().parents[2]
OUTLINES = ROOT / "geodata" / "outlines" / "chifeng_counties_gcj02.geojson"


def _cells(outline, n: int, rng: np.random.Generator) -> list:
    minx, miny, maxx, maxy = outline.bounds
    pts = []
    while len(pts) < n:
        xy = rng.uniform([minx, miny], [maxx, maxy], size=(n * 3, 2))
        inside = shapely.contains_xy(outline, xy[:, 0], xy[:, 1])
        pts.extend(xy[inside].tolist())
    mp = shapely.MultiPoint(pts[:n])
    cells = shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=outline.envelope.buffer(0.1)))
    cells = shapely.intersection(cells, outline)
    return [c for c in cells if not c.is_empty and c.area > 0]


def make_workspace(path: Path, *, grids: int = 1500, households: int = 110_000, villages: int = 190,
                   towns: int = 13, branches: int = 30, staff: int = 150, seed: int = 7) -> Path:
    """Write a synthetic 巴林左旗 workspace to ``path`` (overwritten) and return the path."""
    rng = np.random.default_rng(seed)
    outlines = gpd.read_file(OUTLINES)
    county = gdf_gcj02_to_wgs84(outlines[outlines["code"] == "150422"])
    outline = shapely.make_valid(county.geometry.iloc[0])
    ws = GpkgWorkspace.create(path, county_code="150422", county_name="巴林左旗", overwrite=True)
    town_cells = _cells(outline, towns, rng)
    village_cells = _cells(outline, villages, rng)
    grid_cells = _cells(outline, grids, rng)
    rows = [("150422", "巴林左旗", "county", None, outline)]
    for i, c in enumerate(town_cells):
        rows.append((f"150422{100 + i:03d}", f"第{i + 1}镇", "town", "150422", c))
    vcodes = []
    for i, c in enumerate(village_cells):
        t = int(np.argmax([shapely.area(shapely.intersection(c, tc)) for tc in town_cells]))
        code = f"150422{100 + t:03d}{200 + i:03d}"
        vcodes.append(code)
        rows.append((code, f"第{i + 1}村", "village", code[:9], c))
    admin = gpd.GeoDataFrame(pd.DataFrame(rows[:], columns=["code", "name", "level", "parent_code", "geometry"]),
                             geometry="geometry", crs=4490)
    # households clustered around village centres
    centres = np.array([[p.x, p.y] for p in shapely.point_on_surface(village_cells)])
    which = rng.integers(0, len(centres), households)
    xy = centres[which] + rng.normal(0, 0.012, size=(households, 2))
    inside = shapely.contains_xy(outline, xy[:, 0], xy[:, 1])
    xy[~inside] = centres[which[~inside]]
    archived = rng.random(households) < 0.77
    hh = gpd.GeoDataFrame({
        "hh_id": [f"H{i:06d}" for i in range(households)],
        "head_name": ["某某"] * households,
        "segment": "农牧户",
        "village_code": [vcodes[w] for w in which],
        "archived": archived,
        "eligible": archived & (rng.random(households) < 0.62),
        "granted_amount": 0.0,
        "signed": False,
        "available_amount": 0.0,
        "using": False,
        "balance": 0.0,
    }, geometry=shapely.points(xy), crs=4490)
    bxy = np.array([[p.x, p.y] for p in shapely.point_on_surface(town_cells)] +
                   [[c.x, c.y] for c in shapely.point_on_surface(village_cells[: branches - len(town_cells)])])
    br = gpd.GeoDataFrame({"branch_id": [f"B{i:02d}" for i in range(len(bxy))],
                           "name": [f"第{i + 1}信用社" for i in range(len(bxy))], "kind": "信用社"},
                          geometry=shapely.points(bxy), crs=4490)
    st = pd.DataFrame({"staff_id": [f"S{i:03d}" for i in range(staff)], "name": [f"员工{i}" for i in range(staff)],
                       "branch_id": [f"B{i % len(bxy):02d}" for i in range(staff)], "role": "客户经理"})
    g = gpd.GeoDataFrame({
        "grid_id": [f"G{i:04d}" for i in range(len(grid_cells))],
        "plan_id": "P1",
        "code": [f"W{i:04d}" for i in range(len(grid_cells))],
        "name": [f"网格{i + 1}" for i in range(len(grid_cells))],
        "kind": "rural",
        "source_codes": "",
        "branch_id": [f"B{i % len(bxy):02d}" for i in range(len(grid_cells))],
        "staff_id": [None if i % 37 == 0 else f"S{i % staff:03d}" for i in range(len(grid_cells))],
        "locked": False,
    }, geometry=grid_cells, crs=4490)
    plans = pd.DataFrame({"plan_id": ["P1"], "name": ["main"], "status": ["published"], "revision": [1],
                          "created_at": [pd.Timestamp("2024-01-01", tz="UTC")],
                          "updated_at": [pd.Timestamp("2024-01-01", tz="UTC")]})
    with ws.transaction(actor="test", action="合成测试工作区") as tx:
        tx.replace("admin_units", admin)
        tx.replace("households", hh)
        tx.replace("branches", br)
        tx.replace("staff", st)
        tx.replace("plans", plans)
        tx.replace("grids", g)
    return path
