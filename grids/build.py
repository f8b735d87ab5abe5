"""Build a plan of grids: rural grids from 镇-村-组, urban grids from street blocks.

How the county is cut
---------------------
1. The urban area ``U`` (union of ``urban_areas``) is subtracted from every village-level unit (村/嘎查/社区; a
   town without villages counts as one unit). What is left is the unit's *rural part*; ``unit ∩ U`` is its
   *urban zone*. Admin units tile the county, so rural parts and urban zones tile it too.
2. **Rural grids** — one per village by default. Villages with fewer than ``min_households`` merge with an
   adjacent village of the same town (the smallest neighbour first), never across a town boundary. Villages (or
   merged units) with more than ``max_households`` split along their groups (组): the group polygons where they
   tile the village, else areas derived from the households' locations (Voronoi cells of the group's points,
   clipped to the village). Groups are packed into contiguous grids, each as close as possible to
   ``total / ceil(total / max_households)`` households and never above ``max_households`` unless one group alone
   is bigger.
3. **Urban grids** — each urban zone (a 社区, or the urban part of a village) is cut into street blocks by
   :func:`grids.blocks.street_blocks`; blocks are packed the same way into contiguous grids inside their zone.
   Every grid is a union of whole blocks, so its edges run along streets or admin boundaries. A 社区 (``kind``
   ``社区``) is urban as a whole, inside the urban area or not (a real county often has no urban-area layer).
4. **Towns without streets** — an urban zone that no street crosses (a real county after ``init`` and the
   villages import has no street layer at all) is split like a rural village: along its groups (group polygons,
   else the Voronoi cells of its households' points by group, clipped to the zone), packed by household count,
   else kept whole. Each such zone gives one build warning (:data:`NO_STREETS`, see :func:`build_warnings`):
   street-based grids need a street layer (``python -m grids import PATH streets FILE``, any GIS file).

Default bounds
--------------
``min_households = 30`` and ``max_households = 100``. The seed cooperative's ~120 customer managers serve
~110,000 households, about 900 each. A branch balances its managers with *whole* grids, so a grid must be a small
fraction of one manager's load. Measured on the demo county (staff spread = (max − min) / mean load within a
branch): village-sized grids (≤ 500 households, 1–3 per manager) leave spreads of 50–90%; ≤ 150 gives 1,006 grids
and a worst branch of 24%; ≤ 120, 1,195 grids and 9.2%; ≤ 100, 1,340 grids and 7.5% — every branch within 10%.
100 households is also about a week of visits (整村推进, ~25 a day), the unit a manager plans in, and gives the
brief's county scale of ~1,300–1,500 grids. A village above the bound splits along its villager groups (组), the
unit village cadres already run (a group larger than the bound stays whole); below 30 households a village does
not justify its own responsibility line and is served together with a neighbour of its town.

Grid codes (stable: the same inputs always give the same codes)
----------------------------------------------------------------
The statistical code of the unit a grid lies in, plus a 3-digit sequence:

- rural grid of one village: 12-digit village code + ``001`` (split villages: ``001``, ``002``… in the order of
  their lowest group code);
- rural grid of merged villages: 9-digit town code + ``901``, ``902``… (units ordered by their lowest village code);
- urban grid: 12-digit 社区 (or village) code + ``001``… in block order (north-west first); ``501``… when the same
  village also has rural grids.

``grid_id`` equals ``code``. ``source_codes`` lists what a grid is made of: village codes (whole villages), group
codes (split villages) or block ids ``<zone code>B<nnn>`` (urban grids).

Households per grid: a household with a point counts in the grid containing it; a household without a point is
placed at a point inside its group polygon (by ``group_code``), else inside its village (``village_code``) —
see :func:`household_points`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from grids.blocks import blocks_array
from grids.crs import gk_crs_for
from grids.errors import ValidationError
from grids.model import STORAGE_EPSG

if TYPE_CHECKING:
    from grids.workspace import Workspace

__all__ = [
    "DEFAULT_MAX_HOUSEHOLDS",
    "DEFAULT_MIN_HOUSEHOLDS",
    "NO_STREETS",
    "build_grids",
    "build_warnings",
    "containing_polygon",
    "household_points",
    "valid_after_reprojection",
]

DEFAULT_MIN_HOUSEHOLDS = 30
DEFAULT_MAX_HOUSEHOLDS = 100
DUST_M2 = 0.01  # polygon parts smaller than this (m²) are floating-point dust of overlays and are dropped
MIN_PIECE_M2 = 1.0  # a rural part or urban zone smaller than this (m²) does not exist
_SHARED_MIN_M = 1e-3  # two areas are neighbours when they share an edge at least this long (m)
NO_STREETS = "no_streets"
"""``kind`` of the build warning for an urban zone (a 社区, or a village's urban part) that no street crosses."""
COMMUNITY_KIND = "社区"
"""``admin_units.kind`` of a village-level unit that is urban as a whole (a 社区居委会), urban area or not."""


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------


def _clean(geom: BaseGeometry | None) -> shapely.Polygon | shapely.MultiPolygon | None:
    """Polygonal part of ``geom`` without dust, as Polygon/MultiPolygon (None when nothing is left)."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = shapely.get_parts(geom)
    if len(parts) and any(p.geom_type == "GeometryCollection" for p in parts):
        parts = shapely.get_parts(parts)
    polys: list[shapely.Polygon] = [p for p in parts if p.geom_type == "Polygon" and p.area > DUST_M2]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _adjacency(geoms: np.ndarray) -> pd.DataFrame:
    """Pairs ``i < j`` of polygons sharing an edge, with the shared length (m)."""
    if len(geoms) < 2:
        return pd.DataFrame({"i": np.empty(0, int), "j": np.empty(0, int), "shared": np.empty(0)})
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j])))
    ok = shared >= _SHARED_MIN_M
    return pd.DataFrame({"i": i[ok], "j": j[ok], "shared": shared[ok]})


def _neighbours(n: int, adj: pd.DataFrame) -> list[dict[int, float]]:
    nb: list[dict[int, float]] = [{} for _ in range(n)]
    for i, j, s in zip(adj["i"].to_numpy(), adj["j"].to_numpy(), adj["shared"].to_numpy(), strict=True):
        nb[i][j] = nb[i].get(j, 0.0) + s
        nb[j][i] = nb[j].get(i, 0.0) + s
    return nb


def _pack(counts: np.ndarray, nb: list[dict[int, float]], *, max_households: int,
          min_households: int) -> np.ndarray:
    """Label atoms (in their given order) with contiguous chunks of at most ``max_households``.

    Chunks grow from the first unassigned atom, adding the unassigned neighbour sharing the longest edge with
    the chunk while the total stays within ``max_households``, until the chunk reaches the balanced target
    ``total / ceil(total / max_households)``. Chunks left under ``min_households`` then join an adjacent chunk
    when the sum stays within ``max_households``.
    """
    n = len(counts)
    labels = np.full(n, -1)
    total = int(counts.sum())
    if total <= max_households:
        labels[:] = 0
        return labels
    target = total / math.ceil(total / max_households)
    sums: list[int] = []
    for seed in range(n):
        if labels[seed] >= 0:
            continue
        lab = len(sums)
        labels[seed] = lab
        s = int(counts[seed])
        frontier: dict[int, float] = {k: v for k, v in nb[seed].items() if labels[k] < 0}
        while s < target and frontier:
            fits = [(-w, k) for k, w in frontier.items() if s + counts[k] <= max_households]
            if not fits:
                break
            _, k = min(fits)
            labels[k] = lab
            s += int(counts[k])
            del frontier[k]
            for m, w in nb[k].items():
                if labels[m] < 0:
                    frontier[m] = frontier.get(m, 0.0) + w
        sums.append(s)
    # small chunks join an adjacent chunk (the smallest that keeps the sum within bounds)
    changed = True
    while changed:
        changed = False
        for lab in sorted(range(len(sums)), key=lambda x: sums[x]):
            if sums[lab] >= min_households or sums[lab] < 0:
                continue
            members = np.flatnonzero(labels == lab)
            adj = {int(labels[m]) for a in members for m in nb[a]} - {lab}
            fits = sorted((sums[o], o) for o in adj if sums[o] + sums[lab] <= max_households or sums[lab] == 0)
            if fits:
                other = fits[0][1]
                labels[members] = other
                sums[other] += sums[lab]
                sums[lab] = -1
                changed = True
                break
    _, first = np.unique(labels, return_index=True)
    rank = {int(labels[f]): r for r, f in enumerate(sorted(first))}
    return np.array([rank[int(x)] for x in labels])


def _check_inputs(admin_units: gpd.GeoDataFrame) -> None:
    if not isinstance(admin_units, gpd.GeoDataFrame):
        raise ValidationError("行政区划必须是 GeoDataFrame", fix="用 Workspace.read('admin_units') 读取")
    if admin_units.crs is None:
        raise ValidationError("行政区划没有坐标参考系（CRS）", fix="先 set_crs(4490)")
    missing = [c for c in ("code", "level", "parent_code") if c not in admin_units.columns]
    if missing:
        raise ValidationError(f"行政区划缺少列：{', '.join(missing)}", column=missing[0],
                              fix="admin_units 需要 code、level、parent_code 列（见 grids.model）")
    if not (admin_units["level"] == "village").any() and not (admin_units["level"] == "town").any():
        raise ValidationError("行政区划里没有镇级或村级单元", column="level",
                              fix="导入 level 为 town / village 的镇、村边界")


def _leaf_units(admin: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Village-level units, plus towns that have no village (they act as one unit)."""
    villages = admin[admin["level"] == "village"]
    towns = admin[admin["level"] == "town"]
    bare = towns[~towns["code"].isin(villages["parent_code"])]
    bare = bare.assign(parent_code=bare["code"])
    units = pd.concat([villages, bare], ignore_index=True)
    units = units.sort_values("code", kind="stable").reset_index(drop=True)
    if "name" not in units.columns:
        units["name"] = units["code"]
    units["name"] = units["name"].fillna(units["code"])
    return gpd.GeoDataFrame(units, geometry=units.geometry.name, crs=admin.crs)


def household_points(households: gpd.GeoDataFrame, admin_units: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Where each household is: its point, else a point inside its group, else inside its village.

    Parameters
    ----------
    households : GeoDataFrame
        Points (may be empty), with ``group_code`` / ``village_code`` columns where known.
    admin_units : GeoDataFrame
        The admin polygons (``code``, ``level``).

    Returns
    -------
    GeoSeries
        Aligned to ``households``' index, in ``admin_units``' CRS; None when a household can be placed nowhere.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame({"code": ["150422100201"], "level": ["village"]},
    ...                          geometry=[shapely.box(0, 0, 10, 10)], crs=4549)
    >>> hh = gpd.GeoDataFrame({"village_code": ["150422100201", "150422100201"]},
    ...                       geometry=[shapely.Point(1, 1), None], crs=4549)
    >>> household_points(hh, admin).to_wkt().tolist()
    ['POINT (1 1)', 'POINT (5 5)']
    """
    geo = households.geometry
    if geo.crs is not None and admin_units.crs is not None and not geo.crs.equals(admin_units.crs):
        geo = geo.to_crs(admin_units.crs)
    pts = np.array(geo.values, dtype=object)
    missing = shapely.is_missing(pts) | shapely.is_empty(pts)
    if missing.any():
        reps = pd.Series(shapely.point_on_surface(admin_units.geometry.values),
                         index=admin_units["code"].astype(str).to_numpy())
        reps = reps[~reps.index.duplicated()]
        filled = pd.Series([None] * len(households), index=households.index, dtype=object)
        for col in ("village_code", "group_code"):  # group wins: applied last
            if col in households.columns:
                found = households[col].map(reps)
                found = found[found.notna()]
                filled.loc[found.index] = found
        pts[missing] = filled.to_numpy()[missing]
    return gpd.GeoSeries(pts, index=households.index, crs=admin_units.crs)


def containing_polygon(grids: gpd.GeoDataFrame | gpd.GeoSeries, points: gpd.GeoSeries) -> pd.DataFrame:
    """Which polygon (grid, block, piece) holds each household point — plain geometry, no placement rules
    (for households with codes and the shared placement rule see :func:`grids.coverage.locate_households`).

    Returns
    -------
    DataFrame
        Aligned to ``points``' index: ``grid`` (position in ``grids`` of the first grid whose polygon holds the
        point, boundary included; -1 when none), ``n_within`` (how many grids hold it strictly inside).
    """
    g = grids.geometry if isinstance(grids, gpd.GeoDataFrame) else grids
    if points.crs is not None and g.crs is not None and not points.crs.equals(g.crs):
        points = points.to_crs(g.crs)
    pts = np.asarray(points.values, dtype=object)
    tree = shapely.STRtree(np.asarray(g.values, dtype=object))
    p, k = tree.query(pts, predicate="intersects")
    first = np.full(len(pts), -1)
    if len(p):
        order = np.lexsort((k, p))
        p, k = p[order], k[order]
        starts = np.r_[True, p[1:] != p[:-1]]
        first[p[starts]] = k[starts]
    pw, _ = tree.query(pts, predicate="within")
    n_within = np.bincount(pw, minlength=len(pts)) if len(pts) else np.empty(0, int)
    return pd.DataFrame({"grid": first, "n_within": n_within}, index=points.index)


# --------------------------------------------------------------------------------------------------------
# rural: atoms of a unit
# --------------------------------------------------------------------------------------------------------


def _voronoi_groups(rural: BaseGeometry, pts: np.ndarray,
                    group_codes: np.ndarray) -> tuple[list[BaseGeometry], list[str]]:
    """Group areas from household points: Voronoi cells dissolved by group, clipped to the village."""
    coords = shapely.get_coordinates(pts)
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "g": group_codes})
    frame = frame.drop_duplicates(["x", "y"]).reset_index(drop=True)
    if frame["g"].nunique() < 2:
        return [], []
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(frame[["x", "y"]].to_numpy()), extend_to=shapely.envelope(rural).buffer(10),
        ordered=True))
    geoms: list[BaseGeometry] = []
    codes: list[str] = []
    for code, idx in frame.groupby("g", sort=True).groups.items():
        part = _clean(shapely.intersection(shapely.union_all(cells[np.asarray(idx)]), rural))
        if part is not None:
            geoms.append(part)
            codes.append(str(code))
    return geoms, codes


def _unit_atoms(members: list[int], ctx: dict[str, Any]) -> tuple[list[BaseGeometry], list[str]]:
    """Atoms (geometry, code) a unit can be split into: groups of its villages, or whole villages."""
    geoms: list[BaseGeometry] = []
    codes: list[str] = []
    for v in members:
        vcode = ctx["codes"][v]
        rural = ctx["rural"][v]
        gs = ctx["groups_by_village"].get(vcode)
        done = False
        if gs is not None and len(gs) > 1:
            g_area = float(shapely.area(gs.geometry.values).sum())
            v_area = float(shapely.area(ctx["full"][v]))
            if abs(g_area - v_area) <= 1e-3 * v_area:
                parts = gs.geometry.values
                if ctx["urban"] is not None:
                    hit = shapely.intersects(parts, ctx["urban"])
                    parts = parts.copy()
                    parts[hit] = shapely.difference(parts[hit], ctx["urban"])
                for geom, code in zip(parts, gs["code"].astype(str), strict=True):
                    c = _clean(geom)
                    if c is not None and c.area >= MIN_PIECE_M2:
                        geoms.append(c)
                        codes.append(code)
                done = True
        if not done:
            sel = ctx["hh_village"] == v
            if "group_code" in ctx and sel.any():
                vg, vc = _voronoi_groups(rural, ctx["hh_pts"][sel], ctx["group_code"][sel])
                if vg:
                    geoms += vg
                    codes += vc
                    done = True
        if not done:
            geoms.append(rural)
            codes.append(vcode)
    return geoms, codes


def _zone_atoms(v: int, zone: BaseGeometry, sel: np.ndarray,
                ctx: dict[str, Any]) -> tuple[list[BaseGeometry], list[str]]:
    """Atoms (geometry, code) of the urban zone ``zone`` of unit ``v`` that no street cuts: the unit's group
    polygons clipped to the zone (where they tile the unit), else the Voronoi areas of the zone's households
    (``sel``) by group, else the whole zone."""
    vcode = ctx["codes"][v]
    gs = ctx["groups_by_village"].get(vcode)
    if gs is not None and len(gs) > 1:
        g_area = float(shapely.area(gs.geometry.values).sum())
        v_area = float(shapely.area(ctx["full"][v]))
        if abs(g_area - v_area) <= 1e-3 * v_area:
            geoms: list[BaseGeometry] = []
            codes: list[str] = []
            for geom, code in zip(shapely.intersection(gs.geometry.values, zone), gs["code"].astype(str),
                                  strict=True):
                c = _clean(geom)
                if c is not None and c.area >= MIN_PIECE_M2:
                    geoms.append(c)
                    codes.append(code)
            if geoms:
                return geoms, codes
    if "group_code" in ctx and sel.any():
        geoms, codes = _voronoi_groups(zone, ctx["hh_pts"][sel], ctx["group_code"][sel])
        if geoms:
            return geoms, codes
    return [zone], [vcode]


def _no_streets_warning(code: str, name: str, *, community: bool, derived: bool,
                        grid_ids: list[str]) -> dict[str, Any]:
    """The build warning of one urban zone without streets (a row like :func:`grids.check.check_plan`'s)."""
    from grids.text import plain

    if community:
        what = f"社区 {plain(name)}（{code}）"
        message = f"{what}：该社区没有街道图层，网格按{'推算' if derived else ''}社区范围划分"
    else:
        what = f"{plain(name)}（{code}）的城区部分"
        message = f"{what}没有街道图层，网格按{'推算' if derived else ''}村（组）范围划分"
    return {"kind": NO_STREETS, "severity": "warning", "unit_code": code, "grid_ids": list(grid_ids),
            "message": message,
            "fix": "导入街道图层（任意 GIS 文件：python -m grids import PATH streets FILE --user 账号）后可按街道重划"}


def build_warnings(grids: pd.DataFrame) -> pd.DataFrame:
    """The warnings :func:`build_grids` attached to its result (``attrs["warnings"]``), one row each.

    Returns
    -------
    DataFrame
        ``kind`` (:data:`NO_STREETS`), ``severity`` (``'warning'``), ``unit_code``, ``grid_ids``, ``message`` and
        ``fix`` (Chinese); empty when the build had nothing to warn about.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame(
    ...     {"code": ["150422001", "150422001001"], "name": ["街道", "新城社区"], "level": ["town", "village"],
    ...      "kind": ["街道", "社区"], "parent_code": ["150422", "150422001"]},
    ...     geometry=[shapely.box(0, 0, 1000, 1000)] * 2, crs=4549)
    >>> grids = build_grids(admin, min_households=0)
    >>> grids["kind"].tolist(), build_warnings(grids)["message"].tolist()
    (['urban'], ['社区 新城社区（150422001001）：该社区没有街道图层，网格按社区范围划分'])
    """
    rows = grids.attrs.get("warnings") or []
    return pd.DataFrame(rows, columns=["kind", "severity", "unit_code", "grid_ids", "message", "fix"])


# --------------------------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------------------------


def build_grids(admin_units: gpd.GeoDataFrame, *, households: gpd.GeoDataFrame | None = None,
                streets: gpd.GeoDataFrame | None = None, urban_areas: gpd.GeoDataFrame | None = None,
                min_households: int = DEFAULT_MIN_HOUSEHOLDS, max_households: int = DEFAULT_MAX_HOUSEHOLDS,
                snap_tolerance: float = 1.0, progress: Callable[[str], None] | None = None) -> gpd.GeoDataFrame:
    """Grids tiling the county: rural grids from villages and groups, urban grids from street blocks.

    Parameters
    ----------
    admin_units : GeoDataFrame
        Polygons with ``code``, ``name``, ``level`` (town / village / group) and ``parent_code``.
    households : GeoDataFrame, optional
        Household points (may be empty) with ``village_code`` / ``group_code``.
    streets : GeoDataFrame, optional
        Street lines; needed to cut the urban area into blocks.
    urban_areas : GeoDataFrame, optional
        The urban area polygon(s); without it every grid is rural.
    min_households, max_households : int
        Merge villages below / split units above these household counts (see the module docstring).
    snap_tolerance : float
        Street ends within this distance (m) of another street are joined (see :func:`street_blocks`).
    progress : callable, optional
        Called with a short Chinese progress line per step.

    Returns
    -------
    GeoDataFrame
        In EPSG:4490: ``grid_id``, ``code``, ``name``, ``kind``, ``town_code``, ``source_codes``,
        ``households``, ``branch_id``, ``staff_id``, ``locked``, polygon; sorted by code.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame(
    ...     {"code": ["150422100", "150422100201", "150422100202"], "name": ["镇", "甲村", "乙村"],
    ...      "level": ["town", "village", "village"], "parent_code": ["150422", "150422100", "150422100"]},
    ...     geometry=[shapely.box(0, 0, 2000, 1000), shapely.box(0, 0, 1000, 1000),
    ...               shapely.box(1000, 0, 2000, 1000)], crs=4549)
    >>> build_grids(admin, min_households=0)[["code", "kind", "source_codes"]].values.tolist()
    [['150422100201001', 'rural', '150422100201'], ['150422100202001', 'rural', '150422100202']]
    """
    say = progress or (lambda _msg: None)
    _check_inputs(admin_units)
    if min_households < 0 or max_households < 1 or min_households > max_households:
        raise ValidationError(f"户数下限 {min_households} / 上限 {max_households} 无效",
                              fix="取 0 ≤ 下限 ≤ 上限，例如 --min-households 100 --max-households 500")
    epsg = gk_crs_for(admin_units)
    assert admin_units.crs is not None  # _check_inputs refuses admin units without a CRS
    admin = admin_units.to_crs(epsg) if not admin_units.crs.equals(epsg) else admin_units
    admin = admin.assign(code=admin["code"].astype(str), parent_code=admin["parent_code"].astype(str))
    units = _leaf_units(admin)
    n_units = len(units)
    say(f"行政区划：{n_units} 个村级单元，{int((admin['level'] == 'group').sum())} 个组")

    # urban area
    urban = None
    if urban_areas is not None and len(urban_areas):
        ua = urban_areas.to_crs(epsg).geometry.values
        # no clipping to the county needed: only ``unit ∩ U`` is used, so urban area outside every unit is
        # simply in no grid
        urban = _clean(shapely.union_all(ua[~(shapely.is_missing(ua) | shapely.is_empty(ua))]))
        if urban is not None:
            shapely.prepare(urban)

    full = units.geometry.values
    if urban is not None:
        hit = shapely.intersects(full, urban)
        outside = full.copy()
        outside[hit] = shapely.difference(full[hit], urban)
        zone = np.full(n_units, None, dtype=object)
        zone[hit] = shapely.intersection(full[hit], urban)
    else:
        hit = np.zeros(n_units, bool)
        outside = full.copy()
        zone = np.full(n_units, None, dtype=object)
    rural = np.array([_clean(g) if h else g for g, h in zip(outside, hit, strict=True)], dtype=object)
    zone = np.array([_clean(g) for g in zone], dtype=object)
    # a 社区 is urban as a whole (a real county may have 社区 territories and no urban-area layer)
    community = (units["level"] == "village").to_numpy() & (
        units["kind"].astype(object).to_numpy() == COMMUNITY_KIND if "kind" in units.columns
        else np.zeros(n_units, bool))
    if community.any():
        rural[community] = None
        zone[community] = [_clean(g) for g in full[community]]
    has_rural = np.array([g is not None and g.area >= MIN_PIECE_M2 for g in rural])
    has_zone = np.array([g is not None and g.area >= MIN_PIECE_M2 for g in zone])

    # households → points, counted per rural part and per block
    if households is not None and len(households):
        pts_all = np.asarray(household_points(households.to_crs(epsg) if households.crs is not None else households,
                                              admin).values, dtype=object)
        ok = ~(shapely.is_missing(pts_all) | shapely.is_empty(pts_all))
        hh_pts = pts_all[ok]
        group_code = (households["group_code"].astype(object).to_numpy()[ok]
                      if "group_code" in households.columns else None)
    else:
        hh_pts = np.empty(0, dtype=object)
        group_code = None
    say(f"住户：{len(hh_pts)} 户可定位")

    rural_idx = np.flatnonzero(has_rural)
    hh_village = np.full(len(hh_pts), -1)
    if len(hh_pts) and len(rural_idx):
        loc = containing_polygon(gpd.GeoSeries(rural[rural_idx], crs=epsg), gpd.GeoSeries(hh_pts, crs=epsg))
        g = loc["grid"].to_numpy()
        hh_village[g >= 0] = rural_idx[g[g >= 0]]
    v_count = np.bincount(hh_village[hh_village >= 0], minlength=n_units) if len(hh_pts) else np.zeros(n_units, int)

    # merge small villages inside their town
    codes = units["code"].to_numpy(dtype=object)
    names = units["name"].astype(str).to_numpy(dtype=object)
    towns = units["parent_code"].to_numpy(dtype=object)
    adj = _adjacency(rural[rural_idx])
    adj = adj.assign(i=rural_idx[adj["i"].to_numpy()], j=rural_idx[adj["j"].to_numpy()])
    adj = adj[towns[adj["i"].to_numpy()] == towns[adj["j"].to_numpy()]]
    nb = _neighbours(n_units, adj)
    unit_of = np.arange(n_units)
    members: dict[int, list[int]] = {int(v): [int(v)] for v in rural_idx}
    total = {int(v): int(v_count[v]) for v in rural_idx}
    stuck: set[int] = set()
    while True:
        small = [u for u in members if total[u] < min_households and u not in stuck]
        if not small:
            break
        u = min(small, key=lambda x: (total[x], codes[x]))
        near = {int(unit_of[m]) for v in members[u] for m in nb[v]} - {u}
        if not near:
            stuck.add(u)
            continue
        other = min(near, key=lambda x: (total[x], codes[x]))
        keep, gone = (u, other) if codes[u] < codes[other] else (other, u)
        members[keep] = sorted(members[keep] + members[gone], key=lambda x: codes[x])
        total[keep] += total[gone]
        unit_of[members[keep]] = keep
        del members[gone], total[gone]
        stuck.discard(gone)
        stuck.discard(keep)
    say(f"农牧区：{len(rural_idx)} 个村合并为 {len(members)} 个单元（下限 {min_households} 户）")

    ctx: dict[str, Any] = {"codes": codes, "rural": rural, "full": full, "urban": urban, "hh_pts": hh_pts,
           "hh_village": hh_village,
           "groups_by_village": {k: v for k, v in admin[admin["level"] == "group"].groupby("parent_code")}}
    if group_code is not None:
        ctx["group_code"] = group_code

    rows: list[dict[str, Any]] = []
    merged_seq: dict[str, int] = {}
    rural_codes_used: set[str] = set()
    for u in sorted(members, key=lambda x: codes[x]):
        mem = members[u]
        town = towns[u]
        if total[u] > max_households:
            geoms, acodes = _unit_atoms(mem, ctx)
        else:
            geoms, acodes = [rural[v] for v in mem], [codes[v] for v in mem]
        if len(geoms) > 1 and total[u] > max_households:
            order = np.argsort(np.asarray(acodes), kind="stable")
            geoms = [geoms[k] for k in order]
            acodes = [acodes[k] for k in order]
            garr = np.asarray(geoms, dtype=object)
            cnt = np.zeros(len(garr), int)
            if len(hh_pts):
                in_unit = np.isin(hh_village, mem)
                loc = containing_polygon(gpd.GeoSeries(garr, crs=epsg), gpd.GeoSeries(hh_pts[in_unit], crs=epsg))
                gg = loc["grid"].to_numpy()
                cnt = np.bincount(gg[gg >= 0], minlength=len(garr))
            labels = _pack(cnt, _neighbours(len(garr), _adjacency(garr)), max_households=max_households,
                           min_households=min_households)
        else:
            garr = np.asarray(geoms, dtype=object)
            labels = np.zeros(len(garr), int)
        n_chunks = int(labels.max()) + 1
        for lab in range(n_chunks):
            sel = np.flatnonzero(labels == lab)
            if len(mem) == 1:
                code = f"{codes[u]}{lab + 1:03d}"
                name = names[u] if n_chunks == 1 else f"{names[u]}第{lab + 1}网格"
            else:
                merged_seq[town] = merged_seq.get(town, 900) + 1
                if merged_seq[town] > 999:
                    raise ValidationError(f"镇 {town} 的合并网格超过 99 个", fix="调低 --min-households")
                code = f"{town}{merged_seq[town]:03d}"
                name = "、".join(names[v] for v in mem) if n_chunks == 1 else \
                    f"{'、'.join(names[v] for v in mem)}第{lab + 1}网格"
            geom = garr[sel[0]] if len(sel) == 1 else shapely.union_all(garr[sel])
            rows.append({"code": code, "name": name, "kind": "rural", "town_code": town,
                         "source_codes": ",".join(acodes[k] for k in sel), "geometry": _clean(geom)})
            rural_codes_used.add(codes[u])
    say(f"农牧区网格：{len(rows)} 个（上限 {max_households} 户）")

    # urban grids: street blocks where streets cross the zone, else the zone split like a village
    zone_idx = np.flatnonzero(has_zone)
    warnings: list[dict[str, Any]] = []
    if len(zone_idx):
        lines = np.empty(0, dtype=object)
        if streets is not None and len(streets):
            lines = np.asarray(streets.to_crs(epsg).geometry.values, dtype=object)
            lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
        zgeo = zone[zone_idx]
        streeted = np.zeros(len(zone_idx), bool)
        if len(lines):
            # a street counts when it enters the zone farther than the snap tolerance: one along the zone's edge
            # (a 社区 is often bounded by streets, digitised a little off its boundary) cuts nothing
            core = shapely.buffer(zgeo, -max(snap_tolerance, 0.5))
            zi, _ = shapely.STRtree(lines).query(core, predicate="intersects")
            streeted[np.unique(zi)] = True
        faces, owner = blocks_array(lines, zgeo[streeted], snap_tolerance=snap_tolerance)
        say(f"城区：{len(zone_idx)} 个社区/村，{len(faces)} 个街区"
            + (f"；{int((~streeted).sum())} 个没有街道，按社区/村（组）范围划分" if (~streeted).any() else ""))
        cnt = np.zeros(len(faces), int)
        if len(hh_pts) and len(faces):
            gg = containing_polygon(gpd.GeoSeries(faces, crs=epsg),
                                    gpd.GeoSeries(hh_pts, crs=epsg))["grid"].to_numpy()
            cnt = np.bincount(gg[gg >= 0], minlength=len(faces))
        hh_zone = np.full(len(hh_pts), -1)
        if len(hh_pts) and (~streeted).any():
            bare = np.flatnonzero(~streeted)
            gg = containing_polygon(gpd.GeoSeries(zgeo[bare], crs=epsg),
                                    gpd.GeoSeries(hh_pts, crs=epsg))["grid"].to_numpy()
            hh_zone[gg >= 0] = bare[gg[gg >= 0]]
        derived = (units["derived"].fillna(False).astype(bool).to_numpy() if "derived" in units.columns
                   else np.zeros(n_units, bool))
        street_pos = np.cumsum(streeted) - 1
        n_urban = 0
        for zpos, z in enumerate(zone_idx):
            if streeted[zpos]:
                sel = np.flatnonzero(owner == street_pos[zpos])
                if not len(sel):
                    continue
                zf = faces[sel]
                atom_ids = [f"{codes[z]}B{k + 1:03d}" for k in range(len(sel))]
                zcnt = cnt[sel]
            else:
                inside_zone = hh_zone == zpos
                atoms, atom_ids = _zone_atoms(int(z), zgeo[zpos], inside_zone, ctx)
                order = np.argsort(np.asarray(atom_ids), kind="stable")
                zf = np.asarray([atoms[k] for k in order], dtype=object)
                atom_ids = [atom_ids[k] for k in order]
                zcnt = np.zeros(len(zf), int)
                if inside_zone.any():
                    gg = containing_polygon(gpd.GeoSeries(zf, crs=epsg),
                                            gpd.GeoSeries(hh_pts[inside_zone], crs=epsg))["grid"].to_numpy()
                    zcnt = np.bincount(gg[gg >= 0], minlength=len(zf))
            labels = _pack(zcnt, _neighbours(len(zf), _adjacency(zf)), max_households=max_households,
                           min_households=min_households)
            start = 500 if codes[z] in rural_codes_used else 0
            made = []
            for lab in range(int(labels.max()) + 1):
                s = np.flatnonzero(labels == lab)
                geom = zf[s[0]] if len(s) == 1 else shapely.union_all(zf[s])
                made.append(f"{codes[z]}{start + lab + 1:03d}")
                rows.append({"code": made[-1],
                             "name": f"{names[z]}第{lab + 1}网格", "kind": "urban", "town_code": towns[z],
                             "source_codes": ",".join(atom_ids[k] for k in s), "geometry": _clean(geom)})
                n_urban += 1
            if not streeted[zpos]:
                warnings.append(_no_streets_warning(str(codes[z]), str(names[z]), community=bool(community[z]),
                                                    derived=bool(derived[z]), grid_ids=made))
        say(f"城区网格：{n_urban} 个")
        for w in warnings:
            say(f"警告：{w['message']}。{w['fix']}")

    grids = gpd.GeoDataFrame(rows, columns=["code", "name", "kind", "town_code", "source_codes", "geometry"],
                             geometry="geometry", crs=epsg)
    grids = grids[grids.geometry.notna()].sort_values("code", kind="stable").reset_index(drop=True)
    hh = np.zeros(len(grids), int)
    if len(hh_pts) and len(grids):
        gg = containing_polygon(grids, gpd.GeoSeries(hh_pts, crs=epsg))["grid"].to_numpy()
        hh = np.bincount(gg[gg >= 0], minlength=len(grids))
    over = (hh > max_households) & ~grids["source_codes"].str.contains(",").to_numpy()
    if over.any():
        say(f"注意：{int(over.sum())} 个网格超过上限 {max_households} 户，因为单个组或街区的户数已超过上限"
            "（需要更细的组界或街道才能再拆分）")
    grids.insert(0, "grid_id", grids["code"])
    grids["households"] = hh.astype("int64")
    grids["branch_id"] = pd.Series([None] * len(grids), dtype=object)
    grids["staff_id"] = pd.Series([None] * len(grids), dtype=object)
    grids["locked"] = False
    cols = ["grid_id", "code", "name", "kind", "town_code", "source_codes", "households", "branch_id",
            "staff_id", "locked", "geometry"]
    out = valid_after_reprojection(grids[cols].to_crs(STORAGE_EPSG))
    out.attrs["warnings"] = warnings
    return out


def valid_after_reprojection(frame: gpd.GeoDataFrame, *, sliver_m2: float = MIN_PIECE_M2) -> gpd.GeoDataFrame:
    """``frame`` (EPSG:4490) without the collapsed slivers that made a geometry invalid in degrees.

    A hair-thin part valid in metres can collapse when reprojected to degrees (“Too few points in geometry
    component”, often a hole); ``check`` would then report a grid with an invalid geometry. Of a geometry left
    invalid, the parts and holes that are invalid on their own and smaller than ``sliver_m2`` are dropped, and only
    when what is left is valid; anything else is kept as it is (for ``check`` to report).

    Examples
    --------
    >>> box = shapely.box(119.0, 44.0, 119.01, 44.01)
    >>> dust = shapely.Polygon([(119.02, 44.0), (119.02, 44.0), (119.02 + 1e-12, 44.0), (119.02, 44.0)])
    >>> holed = shapely.Polygon(box.exterior, [dust.exterior.coords])
    >>> frame = gpd.GeoDataFrame(geometry=[shapely.MultiPolygon([box, dust]), holed], crs=4490)
    >>> frame.is_valid.tolist(), valid_after_reprojection(frame).is_valid.tolist()
    ([False, False], [True, True])
    """
    geoms = np.asarray(frame.geometry.values, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bad = np.flatnonzero(present & ~shapely.is_valid(geoms))
    if not len(bad):
        return frame
    fixed = geoms.copy()
    for k in bad:
        scale = 111_320.0 ** 2 * math.cos(math.radians(shapely.get_coordinates(geoms[k])[:, 1].mean()))

        def sliver(ring_or_part: shapely.LinearRing | shapely.Polygon, scale: float = scale) -> bool:
            poly = shapely.Polygon(ring_or_part) if ring_or_part.geom_type == "LinearRing" else ring_or_part
            return not poly.is_valid and poly.area * scale < sliver_m2

        keep = []
        for part in shapely.get_parts(geoms[k]):
            if sliver(part.exterior):
                continue
            holes = [r for r in part.interiors if not sliver(r)]
            keep.append(shapely.Polygon(part.exterior, holes) if len(holes) < len(part.interiors) else part)
        if keep:
            geom = keep[0] if len(keep) == 1 else shapely.MultiPolygon(keep)
            if geom.is_valid:
                fixed[k] = geom
    return frame.set_geometry(gpd.GeoSeries(fixed, index=frame.index, crs=frame.crs))


def summarize(grids: pd.DataFrame) -> dict[str, Any]:
    """Grids by kind and households per grid (min / median / max), as the build command prints them.

    Examples
    --------
    >>> import pandas as pd
    >>> summarize(pd.DataFrame({"kind": ["rural", "rural", "urban"], "households": [100, 300, 200]}))
    {'grids': 3, 'by_kind': {'rural': 2, 'urban': 1}, 'households': 600, 'min': 100, 'median': 200.0, 'max': 300}
    """
    hh = grids["households"].astype("int64") if len(grids) else pd.Series(np.empty(0, dtype="int64"))
    return {
        "grids": len(grids),
        "by_kind": {str(k): int(v) for k, v in grids["kind"].value_counts().sort_index().items()},
        "households": int(hh.sum()),
        "min": int(hh.min()) if len(hh) else 0,
        "median": float(hh.median()) if len(hh) else 0.0,
        "max": int(hh.max()) if len(hh) else 0,
    }


def build_workspace_plan(ws: Workspace, *, name: str = "main", min_households: int = DEFAULT_MIN_HOUSEHOLDS,
                         max_households: int = DEFAULT_MAX_HOUSEHOLDS, snap_tolerance: float = 1.0,
                         progress: Callable[[str], None] | None = None, actor: str = "cli") -> str:
    """Build the grids of a workspace and save them as the draft plan ``name``; returns its ``plan_id``.

    Reads ``admin_units``, ``households``, ``streets`` and ``urban_areas``; a published plan of that name is
    never replaced (:func:`grids.plans.save_draft` refuses). The build's warnings (:func:`build_warnings`) are
    passed to ``progress`` and kept in the plan's ``params["warnings"]``.
    """
    from grids.plans import save_draft

    say = progress or (lambda _msg: None)
    say("读取工作区…")
    # spatial layers: always GeoDataFrames (their geometry is always read)
    admin = cast(gpd.GeoDataFrame, ws.read("admin_units"))
    households = cast(gpd.GeoDataFrame, ws.read("households", columns=["hh_id", "village_code", "group_code"]))
    streets = cast(gpd.GeoDataFrame, ws.read("streets"))
    urban = cast(gpd.GeoDataFrame, ws.read("urban_areas"))
    grids = build_grids(admin, households=households, streets=streets, urban_areas=urban,
                        min_households=min_households, max_households=max_households,
                        snap_tolerance=snap_tolerance, progress=say)
    say("保存方案…")
    params: dict[str, Any] = {"min_households": min_households, "max_households": max_households,
              "snap_tolerance": snap_tolerance}
    found = build_warnings(grids)
    if len(found):  # kept with the plan: the planning page and ``status`` can show why grids ignore streets
        params["warnings"] = found[["kind", "unit_code", "message", "fix"]].to_dict("records")
    return save_draft(ws, grids, name=name, params=params, actor=actor)
