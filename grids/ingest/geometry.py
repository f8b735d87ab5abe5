"""Geometry checks: missing, wrong type, non-finite, too many vertices (simplified or rejected), invalid
polygons repaired when that keeps their area, points outside the county."""

from __future__ import annotations

from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.crs import gk_crs_for
from grids.errors import ValidationError
from grids.ingest.context import Context, Problems
from grids.ingest.schema import BoolArray, ObjectArray
from grids.model import STORAGE_EPSG

OUTSIDE_TOLERANCE_M = 200.0
"""How far (metres) a point may lie outside the county outline before it is rejected."""


REPAIR_MAX_AREA_CHANGE = 0.01
"""An invalid polygon is repaired only when ``make_valid`` changes its area by less than this fraction."""


VERTICES_SIMPLIFY = 200_000
"""A polygon or line with more vertices than this is simplified (and said so in the warnings) …"""


VERTICES_MAX = 1_000_000
"""… and one with more than this is rejected: it would make every later step slow."""


FAMILY = {"POINT": "point", "MULTIPOLYGON": "polygon", "MULTILINESTRING": "line"}


FAMILY_NAMES = {"point": "点", "polygon": "面", "line": "线"}


_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}


_FAMILY_TYPES = {"point": ("Point",), "polygon": ("Polygon", "MultiPolygon"),
                 "line": ("LineString", "MultiLineString")}


def check_geometries(geoms: np.ndarray, family: str, layer: str, data: pd.DataFrame, problems: Problems,
                     notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Check the geometries of a file for a layer of ``family`` (point, polygon, line): missing, wrong type,
    non-finite, too many vertices, invalid (polygons repaired when that keeps their area). Returns the
    geometries (repaired, simplified) and the mask of repaired rows."""
    geoms = geoms.copy()
    n = len(geoms)
    repaired = np.zeros(n, dtype=bool)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if layer != "households":  # households may be located by village/group code alone
        problems.add(missing, "geometry", f"缺少几何（{FAMILY_NAMES[family]}）",
                     "在 GIS 软件中补画这个要素，或删除这一行")
    type_ids = shapely.get_type_id(geoms)
    single_multi = (type_ids == 4) & (shapely.get_num_geometries(geoms) == 1)
    if single_multi.any():
        geoms[single_multi] = shapely.get_geometry(geoms[single_multi], 0)
        type_ids = np.where(single_multi, 0, type_ids)
    allowed = [_TYPE_IDS[t] for t in _FAMILY_TYPES[family]]
    wrong = ~missing & ~np.isin(type_ids, allowed)
    for i in np.flatnonzero(wrong):
        problems.add_at(int(i), "geometry", "几何类型错误",
                         f"图层 {layer} 需要{FAMILY_NAMES[family]}，这一行是 {geoms[i].geom_type}；"
                         "检查是否选错了文件或图层")
    ok = ~missing & ~wrong
    xy, owner = shapely.get_coordinates(_only(geoms, ok), return_index=True)
    coords_ok = np.bincount(owner[~np.isfinite(xy).all(axis=1)], minlength=n) == 0
    problems.add(ok & ~coords_ok, "geometry", "坐标不是有限数值", "检查坐标中的空值或 NaN")
    ok &= coords_ok
    if family in ("polygon", "line"):
        ok &= _limit_vertices(geoms, ok, family, problems, notes)
    invalid = ok & ~shapely.is_valid(_only(geoms, ok))
    for i in np.flatnonzero(invalid):
        fixed, why = _repair(geoms[i], family)
        if fixed is None:
            problems.add_at(int(i), "geometry", "几何无效且无法安全修复",
                             f"{why}；在 QGIS 中用“修复几何”或手工修正（自相交、重复点）后再导入")
        else:
            geoms[i] = fixed
            repaired[i] = True
    return geoms, repaired



def _only(geoms: ObjectArray, mask: BoolArray) -> ObjectArray:
    """``geoms`` where ``mask`` holds, ``None`` elsewhere."""
    out = np.full(len(geoms), None, dtype=object)
    out[mask] = geoms[mask]
    return out


def _limit_vertices(geoms: np.ndarray, ok: np.ndarray, family: str, problems: Problems,
                    notes: list[str]) -> np.ndarray:
    """Simplify (in place) geometries above :data:`VERTICES_SIMPLIFY` vertices, reject those above
    :data:`VERTICES_MAX`; returns the mask of rows still usable."""
    counts = np.asarray(shapely.get_num_coordinates(_only(geoms, ok)), dtype=np.int64)
    keep = np.ones(len(geoms), dtype=bool)
    what = FAMILY_NAMES[family]
    done = []
    for i in np.flatnonzero(ok & (counts > VERTICES_SIMPLIFY)):
        simplified, tolerance = None, 0.0
        if counts[i] <= VERTICES_MAX:
            simplified, tolerance = _simplify_below(geoms[i], VERTICES_SIMPLIFY)
        if simplified is None:
            keep[i] = False
            problems.add_at(int(i), "geometry", "几何顶点过多",
                            f"这个{what}有 {int(counts[i]):,} 个顶点，超过上限 {VERTICES_MAX:,}（或无法简化到 "
                            f"{VERTICES_SIMPLIFY:,} 以内）；在 GIS 软件中简化（如 QGIS “简化”，容差 1–5 米）后再导入")
            continue
        geoms[i] = simplified
        done.append((int(problems.rows[i]), int(counts[i]), int(shapely.get_num_coordinates(simplified)),
                     tolerance * 111_000))
    if done:
        notes.append(f"{len(done)} 个{what}的顶点超过 {VERTICES_SIMPLIFY:,} 个，已简化（相邻单元的公共边可能不再完全重合）："
                     + "；".join(f"第 {r} 行 {a:,} → {b:,} 个顶点（容差约 {m:.1f} 米）" for r, a, b, m in done[:20]))
    return keep


def _simplify_below(geom: shapely.Geometry, cap: int) -> tuple[shapely.Geometry | None, float]:
    """``geom`` simplified (topology preserved) with the smallest doubling tolerance (degrees, from ~1 cm)
    that brings it to at most ``cap`` vertices; ``(None, 0)`` when even ~100 m does not."""
    tolerance = 1e-7
    while tolerance < 1e-3:
        out = shapely.simplify(geom, tolerance, preserve_topology=True)
        if shapely.get_num_coordinates(out) <= cap and not shapely.is_empty(out):
            return out, tolerance
        tolerance *= 2
    return None, 0.0


def _repair(geom: shapely.Geometry, family: str) -> tuple[shapely.Geometry | None, str]:
    reason = shapely.is_valid_reason(geom)
    if family != "polygon":
        return None, f"几何无效（{reason}）"
    fixed = shapely.make_valid(geom)
    if fixed.geom_type == "GeometryCollection":
        parts = [p for p in cast(shapely.GeometryCollection, fixed).geoms if p.geom_type in ("Polygon", "MultiPolygon")]
        fixed = shapely.union_all(parts) if parts else shapely.Polygon()
    if fixed.is_empty or fixed.geom_type not in ("Polygon", "MultiPolygon"):
        return None, f"几何无效（{reason}），修复后不再是面"
    series = gpd.GeoSeries([geom, fixed], crs=STORAGE_EPSG)
    try:
        before, after = series.to_crs(gk_crs_for(series)).area.tolist()
    except ValidationError:
        return None, f"几何无效（{reason}）"
    if before <= 0 or abs(after - before) / before >= REPAIR_MAX_AREA_CHANGE:
        return None, f"几何无效（{reason}），修复会使面积变化超过 1%"
    return fixed, ""


def points_outside_county(geoms: np.ndarray, ctx: Context) -> np.ndarray | None:
    """Mask of points farther than :data:`OUTSIDE_TOLERANCE_M` outside the county outline; ``None`` when the
    workspace has no county polygon."""
    admin = ctx.admin()
    if admin is None:
        return None
    county = admin[admin["level"] == "county"]
    if not len(county):
        return None
    has = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = np.zeros(len(geoms), dtype=bool)
    if not has.any():
        return out
    outline = gpd.GeoSeries([shapely.union_all(county.geometry.values)], crs=STORAGE_EPSG)
    epsg = gk_crs_for(outline)
    outline_gk = outline.to_crs(epsg).iloc[0]
    pts = np.asarray(gpd.GeoSeries(geoms[has], crs=STORAGE_EPSG).to_crs(epsg).values, dtype=object)
    shapely.prepare(outline_gk)
    # most points are inside: a vectorised point-in-polygon first, the distance only for the others
    inside = shapely.contains_xy(outline_gk, shapely.get_x(pts), shapely.get_y(pts))
    far = np.zeros(len(pts), dtype=bool)
    far[~inside] = ~shapely.dwithin(pts[~inside], outline_gk, OUTSIDE_TOLERANCE_M)
    out[has] = far
    return out
