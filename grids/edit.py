"""Plan edits: split, merge, reshape grids, move households, undo/redo, compare two plans.

Every edit is a pure function: a plan's grids (GeoDataFrame) in, a new GeoDataFrame out; the input is never
changed. Shapes are cut and joined in the grids' own CRS (storage EPSG:4490), so the grids an edit does not
touch keep their exact coordinates and shared edges stay shared; areas and lengths (adjacency, slivers, what
counts as a changed geometry) are measured in the Gauss-Krüger zone (:func:`grids.crs.to_gk`).

New grids get codes in the scheme of :mod:`grids.build`: the code of the grid they come from without its last
three digits, plus the next free 3-digit sequence (``150422100201001`` split → ``…002``, ``…003``); grids of
several villages merged inside a town get the town code plus ``901``, ``902``… ``grid_id`` equals ``code``.

Run :func:`grids.check.check_plan` after an edit to see what it left to fix (the planning page does).

Examples
--------
>>> import geopandas as gpd, shapely
>>> g = gpd.GeoDataFrame({"grid_id": ["150422100201001"], "code": ["150422100201001"], "name": ["甲村"],
...                       "town_code": ["150422100"], "households": [100]},
...                      geometry=[shapely.box(119.0, 43.0, 119.02, 43.01)], crs=4490)
>>> cut = split_grid(g, "150422100201001", shapely.LineString([(119.01, 42.99), (119.01, 43.02)]))
>>> cut["grid_id"].tolist(), cut["households"].tolist()
(['150422100201002', '150422100201003'], [50, 50])
>>> merge_grids(cut, ["150422100201002", "150422100201003"])["grid_id"].tolist()
['150422100201004']
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as _split

from grids.build import containing_polygon, household_points
from grids.crs import gk_crs_for
from grids.errors import ValidationError
from grids.model import STORAGE_EPSG

__all__ = [
    "CHANGE_LABELS",
    "History",
    "PlanComparison",
    "compare_plans",
    "count_households",
    "grid_totals",
    "household_overrides",
    "merge_grids",
    "move_households",
    "move_households_in_plan",
    "reshape_grid",
    "split_grid",
]

SLIVER_M2 = 1.0
"""Pieces smaller than this (m²) are floating-point dust of a cut, not grids."""
_SHARED_MIN_M = 1e-3  # two grids are adjacent when they share an edge at least this long (m)

CHANGE_LABELS: dict[str, str] = {
    "added": "新增",
    "removed": "删除",
    "geometry": "边界变化",
    "staff": "客户经理变化",
    "branch": "网点变化",
}
"""Kinds of change :func:`compare_plans` reports → Chinese labels."""


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------


def _check_grids(grids: gpd.GeoDataFrame) -> None:
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValidationError("网格必须是 GeoDataFrame", fix="传入方案的网格（grids.plans.read_grids）")
    if grids.crs is None:
        raise ValidationError("网格没有坐标参考系（CRS）", fix="先 set_crs(4490)")
    if "grid_id" not in grids.columns:
        raise ValidationError("网格缺少 grid_id 列", column="grid_id", fix="传入方案的网格（grids.plans.read_grids）")


def _position(grids: gpd.GeoDataFrame, grid_id: str) -> int:
    hits = np.flatnonzero((grids["grid_id"].astype(str) == str(grid_id)).to_numpy())
    if not len(hits):
        sample = "、".join(grids["grid_id"].astype(str).head(5))
        raise ValidationError(f"方案里没有网格 {grid_id}", column="grid_id",
                              fix=f"从地图或列表中选择一个现有网格（例如 {sample}）")
    return int(hits[0])


def _shape_in(geom: shapely.Geometry, crs: Any, target_crs: Any) -> BaseGeometry:
    """A drawn geometry (in ``crs``) in the grids' CRS."""
    if geom is None or shapely.is_empty(geom):
        raise ValidationError("绘制的图形是空的", fix="在地图上重新绘制")
    assert isinstance(geom, BaseGeometry)  # every shapely geometry is one (shapely.Geometry is its C base)
    s = gpd.GeoSeries([geom], crs=crs)
    if s.crs is not None and s.crs.equals(target_crs):
        return geom
    moved: BaseGeometry = s.to_crs(target_crs).iloc[0]
    return moved


def _polygons(geom: BaseGeometry | None) -> list[shapely.Polygon]:
    """Polygon parts of ``geom`` (in the GK zone) bigger than :data:`SLIVER_M2`."""
    if geom is None or geom.is_empty:
        return []
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return [p for p in shapely.get_parts(shapely.get_parts(geom)) if p.geom_type == "Polygon" and p.area > SLIVER_M2]


def _to(geoms: Sequence[BaseGeometry | None] | np.ndarray, crs: Any, target: Any) -> list[Any]:
    """Geometries from ``crs`` to ``target`` (a list; ``None`` stays ``None``)."""
    s = gpd.GeoSeries(list(geoms), crs=crs)
    return list(s.values) if s.crs is not None and s.crs.equals(target) else list(s.to_crs(target).values)


def _as_polygonal(parts: list[shapely.Polygon]) -> BaseGeometry | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _codes(grids: pd.DataFrame) -> pd.Series:
    col = "code" if "code" in grids.columns else "grid_id"
    return grids[col].astype(object).where(grids[col].notna(), grids["grid_id"]).astype(str)


def _prefix(code: str) -> str:
    """The part of a code before its 3-digit sequence (``…201001`` → ``…201``); codes out of the scheme get
    ``-`` and a sequence appended."""
    return code[:-3] if re.fullmatch(r"\d{12,}", code) else f"{code}-"


def _next_codes(used: Iterable[str], prefix: str, n: int, *, floor: int = 0) -> list[str]:
    """``n`` new codes ``prefix + nnn`` after the highest sequence in use (and above ``floor``)."""
    taken = set()
    for c in used:
        rest = c[len(prefix):]
        if c.startswith(prefix) and rest.isdigit() and len(rest) == 3:
            taken.add(int(rest))
    out: list[str] = []
    seq = max([floor, *[t for t in taken if t > floor]]) if taken else floor
    while len(out) < n:
        seq += 1
        if seq > 999:  # wrapped: the smallest free numbers above the floor
            free = [k for k in range(floor + 1, 1000) if k not in taken and f"{prefix}{k:03d}" not in out]
            if len(free) < n - len(out):
                raise ValidationError(f"编码 {prefix}… 的序号已用完", fix="先合并或删除该村/镇的部分网格")
            out += [f"{prefix}{k:03d}" for k in free[: n - len(out)]]
            break
        if seq not in taken:
            out.append(f"{prefix}{seq:03d}")
    return out


def _town(row: pd.Series) -> str | None:
    t = row.get("town_code")
    if t is not None and not pd.isna(t) and str(t):
        return str(t)
    code = str(row.get("code") if row.get("code") is not None and not pd.isna(row.get("code")) else row["grid_id"])
    return code[:9] if re.fullmatch(r"\d{12,}", code) else None


def _blank(v: Any) -> bool:
    return v is None or (not isinstance(v, list | tuple | np.ndarray) and pd.isna(v)) or str(v) == ""


def _assemble(grids: gpd.GeoDataFrame, drop: list[int], new_rows: list[dict[Hashable, Any]]) -> gpd.GeoDataFrame:
    """``grids`` without the rows at positions ``drop``, plus ``new_rows``, sorted by code."""
    keep = grids.drop(index=grids.index[drop])
    geom = grids.geometry.name
    if new_rows:
        add = gpd.GeoDataFrame(pd.DataFrame(new_rows), geometry=geom, crs=grids.crs)
        add = add.reindex(columns=grids.columns)
        for col in grids.columns:  # keep the input's column dtypes where the values allow it
            if col != geom and add[col].notna().all():
                with contextlib.suppress(TypeError, ValueError):
                    add[col] = add[col].astype(grids[col].dtype)
        keep = pd.concat([keep, add], ignore_index=True)
    out = gpd.GeoDataFrame(keep, geometry=geom, crs=grids.crs)
    order = np.argsort(_codes(out).to_numpy(dtype=str), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def count_households(grids: gpd.GeoDataFrame, households: gpd.GeoDataFrame, *,
                     admin_units: gpd.GeoDataFrame | None = None) -> pd.Series:
    """Households per grid: each household point counts in the first grid holding it.

    Households without a point are placed inside their group, else their village when ``admin_units`` is
    given (:func:`grids.build.household_points`), else not counted.

    Returns
    -------
    Series
        int64, aligned to ``grids.index``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame({"grid_id": ["A", "B"]}, crs=4490,
    ...                      geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> hh = gpd.GeoDataFrame(geometry=[shapely.Point(0.5, 0.5), shapely.Point(1.5, 0.5), None], crs=4490)
    >>> count_households(g, hh).tolist()
    [1, 1]
    """
    if admin_units is not None and len(admin_units):
        pts = household_points(households, admin_units)
    else:
        pts = households.geometry
    pts = cast(gpd.GeoSeries, pts[pts.notna() & ~pts.is_empty]) if len(pts) else pts  # stubs: a Series
    if not len(pts) or not len(grids):
        return pd.Series(np.zeros(len(grids), dtype="int64"), index=grids.index)
    # a cheap bounding-box filter first: edits recount a few grids out of a county's households
    minx, miny, maxx, maxy = grids.to_crs(pts.crs).total_bounds if pts.crs is not None else grids.total_bounds
    xy = shapely.get_coordinates(np.asarray(pts.values, dtype=object))
    near = (xy[:, 0] >= minx) & (xy[:, 0] <= maxx) & (xy[:, 1] >= miny) & (xy[:, 1] <= maxy)
    loc = containing_polygon(grids, cast(gpd.GeoSeries, pts[near]))["grid"].to_numpy()
    counts = np.bincount(loc[loc >= 0], minlength=len(grids))
    return pd.Series(counts.astype("int64"), index=grids.index)


def _share_by_area(total: int, areas: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``areas`` (largest remainders; sums to ``total``)."""
    if total <= 0 or areas.sum() <= 0:
        return np.zeros(len(areas), dtype="int64")
    raw = total * areas / areas.sum()
    out: np.ndarray = np.floor(raw).astype("int64")
    rest = total - int(out.sum())
    out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


def _recount(pieces: gpd.GeoDataFrame, total: int | None, households: gpd.GeoDataFrame | None,
             admin_units: gpd.GeoDataFrame | None, epsg: int) -> np.ndarray:
    if households is not None:
        return count_households(pieces, households, admin_units=admin_units).to_numpy()
    return _share_by_area(int(total or 0), pieces.to_crs(epsg).area.to_numpy())


def grid_totals(grids: pd.DataFrame) -> dict[str, Any]:
    """Live totals while editing: grid count, households, households per grid (min / median / max).

    Examples
    --------
    >>> grid_totals(pd.DataFrame({"households": [100, 40, 160]}))
    {'grids': 3, 'households': 300, 'min': 40, 'median': 100.0, 'max': 160}
    """
    hh: pd.Series[int] = (pd.to_numeric(grids["households"], errors="coerce").fillna(0).astype("int64")
                          if len(grids) else pd.Series(dtype="int64"))
    return {"grids": len(grids), "households": int(hh.sum()), "min": int(hh.min()) if len(hh) else 0,
            "median": float(hh.median()) if len(hh) else 0.0, "max": int(hh.max()) if len(hh) else 0}


# --------------------------------------------------------------------------------------------------------
# edits
# --------------------------------------------------------------------------------------------------------


def split_grid(grids: gpd.GeoDataFrame, grid_id: str, line: shapely.Geometry, *,
               households: gpd.GeoDataFrame | None = None, admin_units: gpd.GeoDataFrame | None = None,
               crs: Any = STORAGE_EPSG) -> gpd.GeoDataFrame:
    """Split one grid along a drawn line; each piece becomes a new grid.

    Parameters
    ----------
    grids : GeoDataFrame
        The plan's grids.
    grid_id : str
        The grid to split.
    line : LineString
        Drawn across the grid, in ``crs`` (lon/lat by default); it must cross the grid from edge to edge.
    households : GeoDataFrame, optional
        Household points (and ``village_code``/``group_code``): the pieces' ``households`` are recounted from
        them. Without them the grid's count is shared out in proportion to the pieces' areas.
    admin_units : GeoDataFrame, optional
        Places households without a point inside their group/village (see :func:`count_households`).
    crs : CRS-like
        CRS of ``line``.

    Returns
    -------
    GeoDataFrame
        The grids with the split grid replaced by its pieces (new codes, largest piece first; branch, staff,
        town, kind and ``source_codes`` inherited), sorted by code.

    Raises
    ------
    ValidationError
        Unknown grid, not a line, or a line that does not cut the grid in two.
    """
    _check_grids(grids)
    k = _position(grids, grid_id)
    line = _shape_in(line, crs, grids.crs)
    if line.geom_type not in ("LineString", "MultiLineString"):
        raise ValidationError(f"拆分需要一条线，收到的是 {line.geom_type}", fix="用绘图工具的“线”画一条穿过网格的线")
    row = grids.iloc[k]
    if not shapely.intersects(row.geometry, line):
        raise ValidationError(f"画的线没有经过网格 {grid_id}", fix="在要拆分的网格上画线，线的两端都要在网格之外")
    # cut in the GK zone, where the checks and areas are computed: new vertices lie on the projected edges
    epsg = gk_crs_for(grids)
    geom, line = _to([row.geometry, line], grids.crs, epsg)
    parts = _polygons(geom)
    cut_parts = [p for p in parts if shapely.intersects(p, line)]
    pieces: list[BaseGeometry] = []
    for p in cut_parts:
        pieces += _polygons(shapely.GeometryCollection(list(_split(p, line).geoms)))
    if len(pieces) < 2 or len(pieces) == len(cut_parts):
        raise ValidationError(f"画的线没有把网格 {grid_id} 分开",
                              fix="线要从网格的一侧边界外画到另一侧边界外，完整穿过网格")
    pieces.sort(key=lambda p: -p.area)
    rest = [p for p in parts if not shapely.intersects(p, line)]
    if rest:  # parts the line does not touch (islands) stay with the largest piece
        pieces[0] = shapely.union_all([pieces[0], *rest])
    pieces = _to(pieces, epsg, grids.crs)
    frame = gpd.GeoDataFrame(geometry=pieces, crs=grids.crs)
    hh = _recount(frame, row.get("households"), households, admin_units, epsg)
    code = _codes(grids).iloc[k]
    new_codes = _next_codes(_codes(grids), _prefix(code), len(pieces))
    name = row.get("name") if not _blank(row.get("name")) else code
    geom_col = grids.geometry.name
    new_rows = []
    for i, (piece, c) in enumerate(zip(pieces, new_codes, strict=True)):
        r = row.to_dict()
        r.update({"grid_id": c, "name": f"{name}（{i + 1}）", geom_col: piece, "households": int(hh[i])})
        if "code" in grids.columns:
            r["code"] = c
        new_rows.append(r)
    return _assemble(grids, [k], new_rows)


def _adjacent_groups(geoms: list[BaseGeometry], crs: Any, epsg: int) -> int:
    """Number of connected groups of ``geoms`` (sharing edges ≥ 1 mm, measured in the GK zone)."""
    gk = np.asarray(_to(geoms, crs, epsg), dtype=object)
    n = len(gk)
    parent = list(range(n))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i in range(n):
        for j in range(i + 1, n):
            if shapely.length(shapely.intersection(shapely.boundary(gk[i]), shapely.boundary(gk[j]))) >= _SHARED_MIN_M:
                parent[root(i)] = root(j)
    return len({root(i) for i in range(n)})


def merge_grids(grids: gpd.GeoDataFrame, grid_ids: list[str], *, name: str | None = None) -> gpd.GeoDataFrame:
    """Merge adjacent grids of one town into one new grid.

    The new grid's households are the sum of the merged grids'; its branch, staff and kind are those of the
    merged grid with the most households; it is locked when any merged grid was. Its code continues the
    village's sequence when all grids lie in one village, else the town's ``9nn`` sequence.

    Parameters
    ----------
    grids : GeoDataFrame
    grid_ids : list of str
        Two or more grids that together form one connected area.
    name : str, optional
        Name of the new grid (default: the merged names joined with “、”).

    Raises
    ------
    ValidationError
        Fewer than two grids, an unknown grid, grids of different towns, or grids that do not touch.
    """
    _check_grids(grids)
    ids = list(dict.fromkeys(str(g) for g in grid_ids))
    if len(ids) < 2:
        raise ValidationError("合并至少需要两个网格", fix="在列表中选择两个或更多相邻的网格")
    pos = [_position(grids, g) for g in ids]
    rows = grids.iloc[pos]
    towns = {_town(r) for _, r in rows.iterrows()}
    if len(towns) > 1:
        names = "、".join(sorted(str(t) for t in towns))
        raise ValidationError(f"所选网格属于不同的镇（{names}），网格不能跨镇合并",
                              fix="只选择同一个镇内的网格")
    epsg = gk_crs_for(grids)
    if _adjacent_groups(list(rows.geometry.values), grids.crs, epsg) > 1:
        raise ValidationError(f"所选网格（{'、'.join(ids)}）不相邻，合并后会成为飞地",
                              fix="只选择彼此有公共边界、连成一片的网格")
    hh = pd.to_numeric(rows["households"], errors="coerce").fillna(0) if "households" in rows else \
        pd.Series(0, index=rows.index)
    main = rows.iloc[int(np.argmax(hh.to_numpy()))] if len(hh) else rows.iloc[0]  # the first with the most
    codes = _codes(rows).tolist()
    prefixes = {_prefix(c) for c in codes}
    town = towns.pop()
    if len(prefixes) == 1 and not all(len(c) == 12 for c in codes):
        new_code = _next_codes(_codes(grids), prefixes.pop(), 1)[0]
    elif town is not None:
        new_code = _next_codes(_codes(grids), town, 1, floor=900)[0]
    else:
        new_code = _next_codes(_codes(grids), _prefix(codes[0]), 1)[0]
    geom_col = grids.geometry.name
    r = main.to_dict()
    src = []
    if "source_codes" in rows.columns:
        for s in rows["source_codes"]:
            if not _blank(s):
                src += [x for x in str(s).split(",") if x]
        r["source_codes"] = ",".join(dict.fromkeys(src)) or None
    merged_names = [str(n) for n in rows.get("name", pd.Series(dtype=object)) if not _blank(n)]
    r.update({"grid_id": new_code, geom_col: shapely.union_all(list(rows.geometry.values)),
              "name": name or "、".join(dict.fromkeys(merged_names)) or new_code})
    if "code" in grids.columns:
        r["code"] = new_code
    if "households" in grids.columns:
        r["households"] = int(hh.sum())
    if "locked" in grids.columns:
        r["locked"] = bool(rows["locked"].astype("boolean").fillna(False).any())
    if "town_code" in grids.columns and town is not None:
        r["town_code"] = town
    return _assemble(grids, pos, [r])


def reshape_grid(grids: gpd.GeoDataFrame, grid_id: str, polygon: shapely.Geometry, *,
                 households: gpd.GeoDataFrame | None = None, admin_units: gpd.GeoDataFrame | None = None,
                 crs: Any = STORAGE_EPSG) -> gpd.GeoDataFrame:
    """The grid takes the area of a drawn polygon from its neighbours in the same town.

    Neighbours of the same town lose what lies inside the polygon and the grid gains it, so the tiling is kept:
    no gap, no overlap. Parts of the polygon over other towns or outside every grid are ignored. A neighbour
    left with nothing disappears.

    Parameters
    ----------
    grids : GeoDataFrame
    grid_id : str
        The grid that grows.
    polygon : Polygon
        Drawn on the map in ``crs`` (lon/lat by default); it must overlap or touch the grid.
    households, admin_units : GeoDataFrame, optional
        To recount the changed grids (see :func:`split_grid`); without them counts move in proportion to area.
    crs : CRS-like
        CRS of ``polygon``.

    Raises
    ------
    ValidationError
        Unknown grid, not a polygon, or a polygon that takes nothing or does not reach the grid.
    """
    _check_grids(grids)
    k = _position(grids, grid_id)
    polygon = _shape_in(polygon, crs, grids.crs)
    if polygon.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValidationError(f"调整边界需要一个多边形，收到的是 {polygon.geom_type}",
                              fix="用绘图工具的“多边形”或“矩形”圈出要并入的区域")
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
    epsg = gk_crs_for(grids)
    town = _town(grids.iloc[k])
    cand = [int(j) for j in grids.sindex.query(polygon, predicate="intersects")
            if int(j) != k and _town(grids.iloc[int(j)]) == town]
    # cut in the GK zone (see split_grid)
    gk = _to([grids.geometry.iloc[j] for j in [k, *cand]], grids.crs, epsg)
    own, poly = gk[0], _to([polygon], grids.crs, epsg)[0]
    losers: dict[int, BaseGeometry | None] = {}
    taken = []
    for j, geom in zip(cand, gk[1:], strict=True):
        part = _polygons(shapely.intersection(geom, poly))
        if not part:
            continue
        taken += part
        losers[j] = _as_polygonal(_polygons(shapely.difference(geom, poly)))
    if not taken:
        raise ValidationError(f"所画的多边形没有覆盖网格 {grid_id} 同镇相邻网格的任何区域",
                              fix="画一个从该网格伸入相邻网格的多边形")
    gain = shapely.union_all(taken)
    if not shapely.intersects(own, gain.buffer(0.01)):
        raise ValidationError(f"所画的区域与网格 {grid_id} 不相接，并入后会成为飞地",
                              fix="多边形要从该网格的边界画起")
    changed = [k, *losers]
    new_gk = [shapely.union_all([own, gain]), *losers.values()]
    keep = [i for i, g in enumerate(new_gk) if g is not None]
    new_geoms: list[BaseGeometry | None] = [None] * len(new_gk)
    back = _to([new_gk[i] for i in keep], epsg, grids.crs)
    for i, g in zip(keep, back, strict=True):
        new_geoms[i] = g
    frame = gpd.GeoDataFrame(geometry=back, crs=grids.crs)
    if households is not None:
        counts = count_households(frame, households, admin_units=admin_units).to_numpy()
    else:  # households follow the area that moves
        hh = (pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy()
              if "households" in grids.columns else np.zeros(len(grids)))
        old = np.array([g.area for g in gk[1:]])[[cand.index(j) for j in changed[1:]]]
        new = np.array([g.area if g is not None else 0.0 for g in new_gk[1:]])
        kept = np.round(hh[changed[1:]] * np.divide(new, old, out=np.zeros(len(old)), where=old > 0))
        kept = kept.astype("int64")
        moved = int(hh[changed[1:]].sum() - kept.sum())
        counts = np.array([int(hh[k]) + moved, *kept])[keep]
    geom_col = grids.geometry.name
    new_rows = []
    for n, i in enumerate(keep):
        r = grids.iloc[changed[i]].to_dict()
        r[geom_col] = new_geoms[i]
        if "households" in grids.columns:
            r["households"] = int(counts[n])
        new_rows.append(r)
    return _assemble(grids, changed, new_rows)


def move_households(households_assignment: pd.DataFrame, hh_ids: Iterable[str], to_grid: str, *,
                    grids: pd.DataFrame | None = None) -> pd.DataFrame:
    """Override the grid of some households (the table of household → grid a plan keeps besides geometry).

    Parameters
    ----------
    households_assignment : DataFrame
        ``hh_id`` and ``grid_id`` (e.g. :func:`grids.coverage.locate_households`, or an earlier result of this
        function); an ``override`` column (bool) marks the rows set by hand.
    hh_ids : iterable of str
        Households to move.
    to_grid : str
        Their new grid.
    grids : DataFrame, optional
        The plan's grids, to check that ``to_grid`` exists (and to take its ``staff_id``/``branch_id`` when the
        assignment table has those columns).

    Returns
    -------
    DataFrame
        A copy of the table with the households' ``grid_id`` set to ``to_grid`` and ``override`` true.

    Examples
    --------
    >>> t = pd.DataFrame({"hh_id": ["h1", "h2"], "grid_id": ["A", "A"]})
    >>> move_households(t, ["h2"], "B")[["hh_id", "grid_id", "override"]].values.tolist()
    [['h1', 'A', False], ['h2', 'B', True]]
    """
    for col in ("hh_id", "grid_id"):
        if col not in households_assignment.columns:
            raise ValidationError(f"住户归属表缺少列 {col}", column=col, fix="传入 hh_id、grid_id 两列")
    wanted = list(dict.fromkeys(str(h) for h in hh_ids))
    if not wanted:
        raise ValidationError("没有选择要调整的住户", fix="至少选择一户")
    ids = households_assignment["hh_id"].astype(str)
    unknown = [h for h in wanted if h not in set(ids)]
    if unknown:
        raise ValidationError(f"住户归属表里没有这些户：{'、'.join(unknown[:5])}", column="hh_id",
                              fix="从列表中选择现有住户")
    if grids is not None and str(to_grid) not in set(grids["grid_id"].astype(str)):
        raise ValidationError(f"方案里没有网格 {to_grid}", column="grid_id", fix="选择一个现有网格")
    out = households_assignment.copy()
    if "override" not in out.columns:
        out["override"] = False
    out["override"] = out["override"].astype("boolean").fillna(False).astype(bool)
    sel = ids.isin(wanted).to_numpy()
    out["grid_id"] = out["grid_id"].astype(object)
    out.loc[sel, "grid_id"] = str(to_grid)
    out.loc[sel, "override"] = True
    if grids is not None:
        target = grids[grids["grid_id"].astype(str) == str(to_grid)].iloc[0]
        for col in ("staff_id", "branch_id", "code"):
            if col in out.columns and col in grids.columns:
                out[col] = out[col].astype(object)
                out.loc[sel, col] = target[col]
    return out


OVERRIDE_COLUMN = "hh_overrides"
"""Grid column listing (comma-separated) the households moved into the grid by hand; it travels with the plan
state, so undo/redo and saving include the moves."""


def household_overrides(grids: pd.DataFrame) -> pd.DataFrame:
    """The hand-made household → grid table kept in the grids' :data:`OVERRIDE_COLUMN`.

    Examples
    --------
    >>> g = pd.DataFrame({"grid_id": ["A", "B"], "hh_overrides": [None, "h1,h2"]})
    >>> household_overrides(g).values.tolist()
    [['h1', 'B'], ['h2', 'B']]
    """
    rows = []
    if OVERRIDE_COLUMN in grids.columns:
        for gid, ids in zip(grids["grid_id"].astype(str), grids[OVERRIDE_COLUMN], strict=True):
            if not _blank(ids):
                rows += [(h, gid) for h in str(ids).split(",") if h]
    return pd.DataFrame(rows, columns=["hh_id", "grid_id"])


def move_households_in_plan(grids: gpd.GeoDataFrame, hh_ids: Iterable[str], *, from_grid: str,
                            to_grid: str) -> gpd.GeoDataFrame:
    """Move households from one grid to another in a plan: records them in :data:`OVERRIDE_COLUMN` of
    ``to_grid`` (and out of any other grid's list) and moves their count.

    Raises
    ------
    ValidationError
        Unknown grid, the same grid twice, or no household.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame({"grid_id": ["A", "B"], "households": [5, 3]}, crs=4490,
    ...                      geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> out = move_households_in_plan(g, ["h1", "h2"], from_grid="A", to_grid="B")
    >>> out["households"].tolist(), out["hh_overrides"].tolist()
    ([3, 5], [None, 'h1,h2'])
    """
    _check_grids(grids)
    ids = list(dict.fromkeys(str(h) for h in hh_ids))
    if not ids:
        raise ValidationError("没有选择要调整的住户", fix="至少选择一户")
    if str(from_grid) == str(to_grid):
        raise ValidationError("调出和调入的是同一个网格", fix="选择另一个网格作为调入网格")
    src, dst = _position(grids, from_grid), _position(grids, to_grid)
    table = household_overrides(grids)
    table = pd.concat([table, pd.DataFrame({"hh_id": ids, "grid_id": str(from_grid)})], ignore_index=True)
    table = table.drop_duplicates("hh_id", keep="first")
    table = move_households(table, ids, str(to_grid), grids=grids)
    lists = table.groupby("grid_id")["hh_id"].agg(lambda s: ",".join(s))
    out = grids.copy()
    out[OVERRIDE_COLUMN] = pd.Series([lists.get(g) for g in out["grid_id"].astype(str)], index=out.index,
                                     dtype=object)
    if "households" in out.columns:
        hh = pd.to_numeric(out["households"], errors="coerce").fillna(0).astype("int64").to_numpy().copy()
        hh[src] = max(0, hh[src] - len(ids))
        hh[dst] += len(ids)
        out["households"] = hh
    return out


# --------------------------------------------------------------------------------------------------------
# undo / redo
# --------------------------------------------------------------------------------------------------------


@dataclass
class History:
    """Undo/redo of plan states: a stack of GeoDataFrames with a label each (what the edit was).

    States are kept as given (edits never mutate them); at most ``limit`` states are kept.

    Examples
    --------
    >>> h = History(limit=10)
    >>> h.push("a", "载入")
    >>> h.push("b", "拆分")
    >>> h.undo(), h.can_redo, h.redo(), h.can_redo
    ('a', True, 'b', False)
    """

    limit: int = 30
    _states: list[Any] = field(default_factory=list)
    _labels: list[str] = field(default_factory=list)
    _pos: int = -1

    def push(self, state: Any, label: str = "") -> None:
        """Add a state after the current one (dropping the redo branch)."""
        del self._states[self._pos + 1:], self._labels[self._pos + 1:]
        self._states.append(state)
        self._labels.append(label)
        if len(self._states) > self.limit:
            del self._states[0], self._labels[0]
        self._pos = len(self._states) - 1

    def reset(self, state: Any, label: str = "") -> None:
        """Forget everything and start from ``state``."""
        self._states, self._labels, self._pos = [], [], -1
        self.push(state, label)

    @property
    def current(self) -> Any:
        """The current state (``None`` when empty)."""
        return self._states[self._pos] if self._pos >= 0 else None

    @property
    def label(self) -> str:
        """The label of the current state."""
        return self._labels[self._pos] if self._pos >= 0 else ""

    @property
    def can_undo(self) -> bool:
        return self._pos > 0

    @property
    def can_redo(self) -> bool:
        return self._pos < len(self._states) - 1

    @property
    def labels(self) -> list[str]:
        """Labels of all states, oldest first."""
        return list(self._labels)

    @property
    def position(self) -> int:
        """Index of the current state in :attr:`labels`."""
        return self._pos

    def undo(self) -> Any:
        """Step back; returns the new current state.

        Raises
        ------
        ValidationError
            Nothing to undo.
        """
        if not self.can_undo:
            raise ValidationError("没有可撤销的操作", fix="先做一次编辑")
        self._pos -= 1
        return self.current

    def redo(self) -> Any:
        """Step forward again; returns the new current state.

        Raises
        ------
        ValidationError
            Nothing to redo.
        """
        if not self.can_redo:
            raise ValidationError("没有可重做的操作", fix="先撤销一次编辑")
        self._pos += 1
        return self.current


# --------------------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------------------


@dataclass
class PlanComparison:
    """What :func:`compare_plans` returns.

    Attributes
    ----------
    grids : GeoDataFrame
        One row per changed grid: ``grid_id``, ``name``, ``change`` (comma-separated keys of
        :data:`CHANGE_LABELS`), ``staff_before``/``staff_after``, ``branch_before``/``branch_after``,
        ``households_before``/``households_after``, geometry (plan b's; plan a's for removed grids).
    households : DataFrame
        Households whose grid or staff changes: ``hh_id``, ``grid_before``, ``grid_after``, ``staff_before``,
        ``staff_after``.
    workload : DataFrame
        Per ``staff_id``: ``households_before``, ``households_after``, ``change`` (sorted by |change|).
    summary : dict
        Counts of the above.
    """

    grids: gpd.GeoDataFrame
    households: pd.DataFrame
    workload: pd.DataFrame
    summary: dict[str, Any]


def _text(s: pd.Series) -> pd.Series:
    s = s.astype(object)
    return s.where(s.notna() & (s.astype(str) != ""), None)


def compare_plans(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, *, households: gpd.GeoDataFrame | None,
                  admin_units: gpd.GeoDataFrame | None = None, tolerance_m2: float = SLIVER_M2) -> PlanComparison:
    """What changes from plan ``a`` to plan ``b``: grids, households that move, workload per staff.

    Grids are matched by ``grid_id``. A geometry counts as changed when the symmetric difference exceeds
    ``tolerance_m2`` (measured in the GK zone).

    Parameters
    ----------
    a, b : GeoDataFrame
        The grids of the two plans (``grid_id``, ``staff_id``, ``branch_id``, ``households``).
    households : GeoDataFrame, optional
        Households (points and/or ``village_code``/``group_code``), located in both plans with
        :func:`grids.coverage.locate_households`; without them workload comes from the grids' ``households``.
    admin_units : GeoDataFrame, optional
        Passed to :func:`grids.coverage.locate_households` for households located by code only.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> a = gpd.GeoDataFrame({"grid_id": ["A", "B"], "staff_id": ["s1", "s1"], "households": [10, 10]},
    ...                      geometry=[shapely.box(119, 43, 119.01, 43.01), shapely.box(119.01, 43, 119.02, 43.01)],
    ...                      crs=4490)
    >>> b = a.assign(staff_id=["s1", "s2"])
    >>> c = compare_plans(a, b, households=None)
    >>> c.grids[["grid_id", "change"]].values.tolist(), c.workload["change"].tolist()
    ([['B', 'staff']], [-10, 10])
    """
    _check_grids(a)
    _check_grids(b)
    assert a.crs is not None and b.crs is not None  # _check_grids
    b = b.to_crs(a.crs) if not b.crs.equals(a.crs) else b
    epsg = gk_crs_for(a)
    ga, gb = a.set_index(a["grid_id"].astype(str)), b.set_index(b["grid_id"].astype(str))

    def col(frame: pd.DataFrame, name: str) -> pd.Series:
        return (_text(frame[name]) if name in frame.columns
                else pd.Series([None] * len(frame), index=frame.index, dtype=object))

    def hh(frame: pd.DataFrame) -> pd.Series:
        return (pd.to_numeric(frame["households"], errors="coerce").fillna(0).astype("int64")
                if "households" in frame.columns else pd.Series(0, index=frame.index, dtype="int64"))

    rows = []
    common = ga.index.intersection(gb.index)
    if len(common):
        pa = ga.loc[common].geometry.to_crs(epsg).values
        pb = gb.loc[common].geometry.to_crs(epsg).values
        moved = shapely.area(shapely.symmetric_difference(pa, pb)) > tolerance_m2
    else:
        moved = np.zeros(0, dtype=bool)
    sa, sb = col(ga, "staff_id"), col(gb, "staff_id")
    ba, bb = col(ga, "branch_id"), col(gb, "branch_id")
    for i, gid in enumerate(common):
        kinds = []
        if moved[i]:
            kinds.append("geometry")
        if sa[gid] != sb[gid]:
            kinds.append("staff")
        if ba[gid] != bb[gid]:
            kinds.append("branch")
        if kinds:
            rows.append((gid, ",".join(kinds), gb.geometry[gid]))
    for gid in gb.index.difference(ga.index):
        rows.append((gid, "added", gb.geometry[gid]))
    for gid in ga.index.difference(gb.index):
        rows.append((gid, "removed", ga.geometry[gid]))
    ids = [r[0] for r in rows]
    names = col(gb, "name").combine_first(col(ga, "name")) if ("name" in gb or "name" in ga) else None
    changed = gpd.GeoDataFrame({
        "grid_id": ids,
        "name": [names.get(g) if names is not None else None for g in ids],
        "change": [r[1] for r in rows],
        "staff_before": [sa.get(g) for g in ids], "staff_after": [sb.get(g) for g in ids],
        "branch_before": [ba.get(g) for g in ids], "branch_after": [bb.get(g) for g in ids],
        "households_before": [int(hh(ga).get(g, 0)) if g in ga.index else 0 for g in ids],
        "households_after": [int(hh(gb).get(g, 0)) if g in gb.index else 0 for g in ids],
    }, geometry=[r[2] for r in rows], crs=a.crs)

    if households is not None and len(households):
        from grids.coverage import locate_households as locate

        la = locate(households, a, admin_units=admin_units)
        lb = locate(households, b, admin_units=admin_units)
        moves = pd.DataFrame({"hh_id": la["hh_id"].astype(object), "grid_before": _text(la["grid_id"]),
                              "grid_after": _text(lb["grid_id"]), "staff_before": _text(la["staff_id"]),
                              "staff_after": _text(lb["staff_id"])})
        diff = ((moves["grid_before"].fillna("\0") != moves["grid_after"].fillna("\0"))
                | (moves["staff_before"].fillna("\0") != moves["staff_after"].fillna("\0")))
        moves = moves[diff.to_numpy()].reset_index(drop=True)
        before = _text(la["staff_id"]).value_counts()
        after = _text(lb["staff_id"]).value_counts()
    else:
        moves = pd.DataFrame(columns=["hh_id", "grid_before", "grid_after", "staff_before", "staff_after"])
        before = hh(ga).groupby(sa).sum()
        after = hh(gb).groupby(sb).sum()
    staff_ids = sorted(set(before.index.astype(str)) | set(after.index.astype(str)))
    work = pd.DataFrame({"staff_id": staff_ids,
                         "households_before": before.reindex(staff_ids).fillna(0).astype("int64").to_numpy(),
                         "households_after": after.reindex(staff_ids).fillna(0).astype("int64").to_numpy()})
    work["change"] = work["households_after"] - work["households_before"]
    work = work[work["change"] != 0].sort_values("change", key=np.abs, ascending=False, kind="stable")
    summary = {"grids_changed": len(changed),
               **{k: int(changed["change"].str.contains(k).sum()) for k in CHANGE_LABELS},
               "households_moved": len(moves), "staff_changed": len(work)}
    return PlanComparison(changed, moves, work.reset_index(drop=True), summary)
