"""Landmasses: the pieces of the county that are reachable from each other by land (or by a ferry).

A county outline is one polygon on the mainland and many on an island county. Each part of the outline is a
landmass; parts that a ferry line (``streets.class == 'ferry'``) connects are one landmass. Checks use
landmasses to tell a legitimate multi-part grid (pieces on different islands) from an enclave (pieces on the
same land), and assignment uses them so that a household is not served across water while its own land has a
branch with room.

Everything is measured in the Gauss-Krüger zone of the data; results come back in the input's CRS.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from grids.crs import gk_crs_for

__all__ = ["FERRY_CLASS", "county_outline", "land_parts", "landmass_of", "landmasses"]

FERRY_CLASS = "ferry"
"""Value of ``streets.class`` that marks a ferry link between two landmasses."""


def _outline_parts(outline: gpd.GeoDataFrame | gpd.GeoSeries) -> list[shapely.Polygon]:
    geo = outline.geometry if isinstance(outline, gpd.GeoDataFrame) else outline
    merged = shapely.union_all(np.asarray(geo.values, dtype=object))
    return [p for p in shapely.get_parts(merged) if p.geom_type == "Polygon" and not p.is_empty]


def land_parts(outline: gpd.GeoDataFrame | gpd.GeoSeries, *, streets: gpd.GeoDataFrame | None = None,
               tolerance_m: float = 100.0) -> gpd.GeoDataFrame:
    """The parts of a county outline (one per island) and the landmass each belongs to.

    Parameters
    ----------
    outline, streets, tolerance_m
        As in :func:`landmasses`.

    Returns
    -------
    GeoDataFrame
        One row per outline part: ``part`` (0, 1, … largest first), ``landmass`` (numbered as in
        :func:`landmasses`) and the polygon, in the CRS of ``outline``.

    Examples
    --------
    >>> import shapely
    >>> county = gpd.GeoSeries([shapely.MultiPolygon([shapely.box(0, 0, 5000, 5000),
    ...                                               shapely.box(8000, 0, 9000, 1000),
    ...                                               shapely.box(0, 8000, 1500, 9500)])], crs=4549)
    >>> ferry = gpd.GeoDataFrame({"class": ["ferry"]}, geometry=[shapely.LineString([(5000, 500), (8000, 500)])],
    ...                          crs=4549)
    >>> land_parts(county, streets=ferry)[["part", "landmass"]].values.tolist()
    [[0, 0], [1, 1], [2, 0]]
    """
    geo = outline.geometry if isinstance(outline, gpd.GeoDataFrame) else outline
    crs = geo.crs
    epsg = gk_crs_for(geo) if crs is not None and not crs.is_projected else None
    metric = geo.to_crs(epsg) if epsg else geo
    parts = _outline_parts(metric)
    parts.sort(key=lambda p: -p.area)
    n = len(parts)
    rows, cols = [np.arange(n)], [np.arange(n)]
    if streets is not None and len(streets) and "class" in streets.columns and n > 1:
        ferries = streets[streets["class"].astype(str) == FERRY_CLASS]
        if len(ferries):
            fgeo = ferries.geometry.to_crs(metric.crs) if metric.crs is not None else ferries.geometry
            tree = shapely.STRtree(parts)
            for line in shapely.get_parts(np.asarray(fgeo.values, dtype=object)):
                if line is None or line.is_empty:
                    continue
                hit = tree.query(line, predicate="dwithin", distance=tolerance_m)
                hit = np.unique(hit)
                if len(hit) > 1:
                    rows.append(np.full(len(hit) - 1, hit[0]))
                    cols.append(hit[1:])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    _, label = connected_components(graph, directed=False) if n else (0, np.zeros(0, dtype=int))
    areas = np.array([p.area for p in parts])
    groups = [np.flatnonzero(label == k) for k in np.unique(label)]
    groups.sort(key=lambda g: -areas[g].sum())
    mass = np.zeros(n, dtype=int)
    for k, g in enumerate(groups):
        mass[g] = k
    out = gpd.GeoDataFrame({"part": np.arange(n, dtype=int), "landmass": mass}, geometry=parts, crs=metric.crs)
    return out.to_crs(crs) if epsg and crs is not None else out


def landmasses(outline: gpd.GeoDataFrame | gpd.GeoSeries, *, streets: gpd.GeoDataFrame | None = None,
               tolerance_m: float = 100.0) -> gpd.GeoDataFrame:
    """Landmasses of a county outline, joined where ferry links connect its parts.

    Parameters
    ----------
    outline : GeoDataFrame or GeoSeries
        The county (or all its towns; they are merged first). Any CRS with a definition.
    streets : GeoDataFrame, optional
        The road layer; rows with ``class == 'ferry'`` join every outline part they come within
        ``tolerance_m`` of. Other rows are ignored.
    tolerance_m : float
        How far a ferry line's ends may stop short of the shore, in metres.

    Returns
    -------
    GeoDataFrame
        One row per landmass: ``landmass`` (0, 1, … largest area first), ``parts`` (outline parts in it),
        ``area_km2`` and the (multi)polygon, in the CRS of ``outline``.

    Examples
    --------
    >>> import shapely
    >>> county = gpd.GeoSeries([shapely.MultiPolygon([shapely.box(0, 0, 5000, 5000),
    ...                                               shapely.box(8000, 0, 9000, 1000),
    ...                                               shapely.box(0, 8000, 1000, 9000)])], crs=4549)
    >>> landmasses(county)[["landmass", "parts"]].values.tolist()
    [[0, 1], [1, 1], [2, 1]]
    >>> ferry = gpd.GeoDataFrame({"class": ["ferry"]}, geometry=[shapely.LineString([(5000, 500), (8000, 500)])],
    ...                          crs=4549)
    >>> landmasses(county, streets=ferry)[["landmass", "parts"]].values.tolist()
    [[0, 2], [1, 1]]
    """
    geo = outline.geometry if isinstance(outline, gpd.GeoDataFrame) else outline
    crs = geo.crs
    epsg = gk_crs_for(geo) if crs is not None and not crs.is_projected else None
    parts = land_parts(geo.to_crs(epsg) if epsg else geo, streets=streets, tolerance_m=tolerance_m)
    polys = np.asarray(parts.geometry.values, dtype=object)
    mass = parts["landmass"].to_numpy()
    k = int(mass.max()) + 1 if len(mass) else 0
    out = gpd.GeoDataFrame(
        {
            "landmass": np.arange(k, dtype=int),
            "parts": np.bincount(mass, minlength=k).astype(int),
            "area_km2": np.bincount(mass, weights=shapely.area(polys), minlength=k) / 1e6,
        },
        geometry=[shapely.union_all(polys[mass == i]) for i in range(k)],
        crs=parts.crs,
    )
    return out.to_crs(crs) if epsg and crs is not None else out


def landmass_of(geoms: gpd.GeoDataFrame | gpd.GeoSeries, masses: gpd.GeoDataFrame, *,
                column: str = "landmass") -> np.ndarray:
    """Landmass number of each geometry (a point, or a polygon's representative point).

    A geometry on no landmass (in the sea, outside the county) gets the nearest one. With
    ``column="part"`` and the output of :func:`land_parts`, the outline part (island) instead.

    Examples
    --------
    >>> import shapely
    >>> county = gpd.GeoSeries([shapely.MultiPolygon([shapely.box(0, 0, 5000, 5000),
    ...                                               shapely.box(8000, 0, 9000, 1000)])], crs=4549)
    >>> pts = gpd.GeoSeries([shapely.Point(100, 100), shapely.Point(8500, 500), shapely.Point(7900, 500)],
    ...                     crs=4549)
    >>> landmass_of(pts, landmasses(county)).tolist()
    [0, 1, 1]
    """
    geo = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    if masses.crs is not None and geo.crs is not None and geo.crs != masses.crs:
        geo = geo.to_crs(masses.crs)
    pts = shapely.point_on_surface(np.asarray(geo.values, dtype=object))
    out = np.full(len(pts), -1, dtype=int)
    if not len(masses) or not len(pts):
        return out
    polys = np.asarray(masses.geometry.values, dtype=object)
    tree = shapely.STRtree(polys)
    valid = ~shapely.is_missing(pts) & ~shapely.is_empty(pts)
    idx = np.flatnonzero(valid)
    inp, tgt = tree.query(pts[idx], predicate="intersects")
    lab = masses[column].to_numpy()
    out[idx[inp]] = lab[tgt]
    rest = idx[out[idx] < 0]
    if len(rest):
        _, near = tree.query_nearest(pts[rest], return_distance=False, all_matches=False)
        out[rest] = lab[near]
    return out


def county_outline(ws: Any) -> gpd.GeoDataFrame | None:
    """The county outline of a workspace: its ``admin_units`` county row, else its towns; None when neither.

    What :func:`landmasses` and the assignment's water rules take as ``outline``.
    """
    for level in ("county", "town"):
        rows: gpd.GeoDataFrame = ws.read("admin_units", where="level = ?", params=[level])
        if len(rows):
            return rows
    return None
