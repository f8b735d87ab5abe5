"""Street blocks: the faces that streets cut out of an urban area ("纵向到底、横向到边").

:func:`street_blocks` nodes the street lines together with the boundary of the limit (the urban area, or its
communities), polygonizes them and keeps the faces inside the limit. It is made for messy real data:

- crossings without a shared vertex are noded (``shapely.union_all``); duplicated lines dissolve;
- dead ends are dangles of the polygonizer and split nothing;
- a street end that stops short of another street (or of the limit) by less than ``snap_tolerance`` is joined
  to it by a short connector (a near-miss of digitising);
- streets running past the limit are cut at it (faces outside the limit are dropped);
- faces thinner than ``sliver_width`` or smaller than ``sliver_area`` are absorbed into the neighbour (inside
  the same limit polygon) with which they share the longest edge;
- every piece of the limit that streets do not enclose is still a face, bounded by the limit itself, so the
  blocks of one limit polygon always tile it.

All lengths and areas are in metres, computed in the Gauss-Krüger zone of the data when it is geographic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from grids.crs import gk_crs_for
from grids.errors import ValidationError

if TYPE_CHECKING:
    from geopandas.array import GeometryArray
    from pyproj import CRS

__all__ = ["street_blocks"]

_CONNECTOR_OVERSHOOT = 0.01  # metres a snap connector runs past its target, so that noding always splits it


def _as_series(limit: gpd.GeoDataFrame | gpd.GeoSeries | BaseGeometry, crs: CRS | None) -> gpd.GeoSeries:
    if isinstance(limit, gpd.GeoDataFrame):
        series = limit.geometry
    elif isinstance(limit, gpd.GeoSeries):
        series = limit
    elif isinstance(limit, BaseGeometry):
        series = gpd.GeoSeries([limit], crs=crs)
    else:
        raise ValidationError("城区范围 limit 必须是 GeoDataFrame、GeoSeries 或 shapely 多边形",
                              fix="传入城区范围图层（urban_areas）")
    if series.crs is None:
        raise ValidationError("城区范围没有坐标参考系（CRS）", fix="先 set_crs，例如 EPSG:4490")
    types = set(series.geom_type.dropna())
    if not types <= {"Polygon", "MultiPolygon"}:
        raise ValidationError(f"城区范围必须是多边形，而不是 {', '.join(sorted(types))}",
                              fix="传入面图层（城区范围或社区边界）")
    return series.to_crs(crs) if crs is not None and not series.crs.equals(crs) else series


def _line_parts(geoms: np.ndarray) -> np.ndarray:
    parts = shapely.get_parts(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
    types = shapely.get_type_id(parts)
    lines = parts[(types == 1) | (types == 2)]
    rings = shapely.get_type_id(lines) == 2
    if rings.any():
        lines = lines.copy()
        lines[rings] = [shapely.LineString(r.coords) for r in lines[rings]]
    kept: np.ndarray = lines[~shapely.is_empty(lines)]
    return kept


def _connectors(lines: np.ndarray, targets: np.ndarray, tol: float) -> np.ndarray:
    """Short lines joining each street end that nearly touches another line (or the limit) to it."""
    if tol <= 0 or not len(lines):
        return np.empty(0, dtype=object)
    n = len(lines)
    ends = np.concatenate([shapely.get_point(lines, 0), shapely.get_point(lines, -1)])
    own = np.concatenate([np.arange(n), np.arange(n)])
    tree = shapely.STRtree(targets)
    e, t = tree.query(ends, predicate="dwithin", distance=tol)
    keep = t != own[e]  # targets[:n] are the lines themselves
    e, t = e[keep], t[keep]
    if not len(e):
        return np.empty(0, dtype=object)
    d = shapely.distance(ends[e], targets[t])
    frame = pd.DataFrame({"e": e, "t": t, "d": d})
    touching = frame.loc[frame["d"] <= 0, "e"].unique()
    frame = frame[~frame["e"].isin(touching)].sort_values(["e", "d"], kind="stable").drop_duplicates("e")
    if not len(frame):
        return np.empty(0, dtype=object)
    e, t, d = frame["e"].to_numpy(), frame["t"].to_numpy(), frame["d"].to_numpy()
    nearest = shapely.get_point(shapely.shortest_line(ends[e], targets[t]), 1)
    p = shapely.get_coordinates(ends[e])
    q = shapely.get_coordinates(nearest)
    q = q + (q - p) / d[:, None] * _CONNECTOR_OVERSHOOT
    return cast(np.ndarray, shapely.linestrings(np.stack([p, q], axis=1)))  # 3-D coords: an array of lines


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = int(parent[i])
    return i


def _absorb_slivers(faces: np.ndarray, owner: np.ndarray, *, sliver_area: float,
                    sliver_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge each sliver into the neighbour of the same owner sharing its longest edge."""
    for _ in range(10):
        area = shapely.area(faces)
        width = 2.0 * area / np.maximum(shapely.length(faces), 1e-12)
        sliver = (area < sliver_area) | (width < sliver_width)
        if not sliver.any() or len(faces) < 2:
            break
        idx = np.flatnonzero(sliver)
        tree = shapely.STRtree(faces)
        a, b = tree.query(faces[idx], predicate="intersects")
        a = idx[a]
        ok = (a != b) & (owner[a] == owner[b])
        a, b = a[ok], b[ok]
        if not len(a):
            break
        shared = shapely.length(shapely.intersection(shapely.boundary(faces[a]), shapely.boundary(faces[b])))
        pairs = pd.DataFrame({"a": a, "b": b, "shared": shared, "b_sliver": sliver[b], "b_area": area[b]})
        pairs = pairs[pairs["shared"] > 0]
        if not len(pairs):
            break
        # prefer a real block over another sliver, then the longest shared edge
        pairs = pairs.sort_values(["a", "b_sliver", "shared", "b_area"], ascending=[True, True, False, False],
                                  kind="stable").drop_duplicates("a")
        parent = np.arange(len(faces))
        for i, j in zip(pairs["a"].to_numpy(), pairs["b"].to_numpy(), strict=True):
            ri, rj = _find(parent, int(i)), _find(parent, int(j))
            if ri != rj:
                parent[ri] = rj
        roots = np.array([_find(parent, i) for i in range(len(faces))])
        uniq, inverse = np.unique(roots, return_inverse=True)
        merged = np.empty(len(uniq), dtype=object)
        new_owner = np.empty(len(uniq), dtype=owner.dtype)
        for k in range(len(uniq)):
            members = np.flatnonzero(inverse == k)
            merged[k] = faces[members[0]] if len(members) == 1 else shapely.union_all(faces[members])
            new_owner[k] = owner[members[0]]
        if len(merged) == len(faces):
            break
        faces, owner = merged, new_owner
    return faces, owner


def blocks_array(lines: np.ndarray | GeometryArray, limits: np.ndarray | GeometryArray, *,
                 snap_tolerance: float = 1.0, sliver_area: float = 100.0,
                 sliver_width: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Array core of :func:`street_blocks` in a metric CRS: ``(faces, index of the limit of each face)``."""
    limits = np.asarray(limits, dtype=object)
    lines = _line_parts(np.asarray(lines, dtype=object))
    boundaries = _line_parts(shapely.boundary(limits))
    if len(lines):
        env = shapely.buffer(shapely.envelope(shapely.union_all(limits)), max(snap_tolerance, 0.0) + 1.0)
        lines = lines[shapely.intersects(lines, env)]
    targets = np.concatenate([lines, boundaries])
    connectors = _connectors(lines, targets, snap_tolerance)
    noded = shapely.union_all(np.concatenate([lines, connectors, boundaries]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    if not len(faces):
        return faces, np.empty(0, dtype=int)
    probes = shapely.point_on_surface(faces)
    f, lim = shapely.STRtree(limits).query(probes, predicate="within")
    first = pd.DataFrame({"f": f, "lim": lim}).drop_duplicates("f")
    faces = faces[first["f"].to_numpy()]
    owner = first["lim"].to_numpy()
    faces, owner = _absorb_slivers(faces, owner, sliver_area=sliver_area, sliver_width=sliver_width)
    # deterministic order: by limit, then north to south, west to east (1 m rows)
    coords = shapely.get_coordinates(shapely.point_on_surface(faces))
    order = np.lexsort((np.round(coords[:, 0]), -np.round(coords[:, 1]), owner))
    return faces[order], owner[order]


def street_blocks(streets: gpd.GeoDataFrame | gpd.GeoSeries,
                  limit: gpd.GeoDataFrame | gpd.GeoSeries | BaseGeometry, *, snap_tolerance: float = 1.0,
                  sliver_area: float = 100.0, sliver_width: float = 2.0) -> gpd.GeoDataFrame:
    """Cut the limit polygon(s) into street blocks.

    Parameters
    ----------
    streets : GeoDataFrame or GeoSeries
        Street centre lines (LineString/MultiLineString), any CRS.
    limit : GeoDataFrame, GeoSeries or shapely Polygon/MultiPolygon
        The urban area, or several polygons (e.g. its communities); blocks never cross a limit boundary.
        A bare shapely geometry is taken to be in ``streets``' CRS.
    snap_tolerance : float
        Street ends closer than this (metres) to another street or to the limit are joined to it.
    sliver_area, sliver_width : float
        Faces smaller than ``sliver_area`` m², or thinner than ``sliver_width`` m (2·area/perimeter), merge
        into a neighbour in the same limit polygon.

    Returns
    -------
    GeoDataFrame
        ``block_id`` (0…n-1, ordered by limit then north-west first), ``limit_index`` (index label of the limit
        row holding the block), ``area_m2`` and the block polygon, in ``streets``' CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> streets = gpd.GeoSeries([shapely.LineString([(50, -10), (50, 110)]),
    ...                          shapely.LineString([(-10, 50), (110, 50)])], crs=4549)
    >>> blocks = street_blocks(streets, shapely.box(0, 0, 100, 100))
    >>> len(blocks), blocks["area_m2"].round().tolist()
    (4, [2500.0, 2500.0, 2500.0, 2500.0])
    """
    if streets.crs is None:
        raise ValidationError("街道数据没有坐标参考系（CRS）", fix="先 set_crs，例如 EPSG:4490")
    crs = streets.crs
    lim = _as_series(limit, crs)
    work = crs if crs.is_projected else gk_crs_for(lim)
    lines = gpd.GeoSeries(streets.geometry if isinstance(streets, gpd.GeoDataFrame) else streets).to_crs(work)
    lim_work = lim.to_crs(work)
    faces, owner = blocks_array(lines.values, lim_work.values, snap_tolerance=snap_tolerance,
                                sliver_area=sliver_area, sliver_width=sliver_width)
    out = gpd.GeoDataFrame(
        {"block_id": np.arange(len(faces)), "limit_index": lim.index.to_numpy()[owner],
         "area_m2": shapely.area(faces)},
        geometry=gpd.GeoSeries(faces, crs=work),
    )
    assert out.crs is not None  # set from the geometry column
    return out.to_crs(crs) if not out.crs.equals(crs) else out
