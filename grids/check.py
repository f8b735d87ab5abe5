"""Coverage checks of a plan: "全辖无死角、全覆盖" — every place and every household has one responsible person.

:func:`check_plan` returns one row per problem: ``kind`` (see :data:`PROBLEM_KINDS`), ``grid_ids`` (list of the
grids involved), ``message`` (Chinese) and a location ``geometry`` (EPSG:4490). Areas are measured in the
Gauss-Krüger zone of the data; pieces smaller than ``overlap_tolerance_m2`` are floating-point noise, not gaps
or overlaps.

Kinds: ``gap`` (part of the county in no grid), ``overlap`` (two grids share area), ``invalid_geometry``,
``outside`` (grid area outside the county), ``multipart`` (a grid in several pieces while the towns it lies in are in one piece —
islands of the jurisdiction are allowed), ``crosses_town`` (a grid in two towns),
``empty_grid`` (no household), ``household_orphan`` (household in no grid), ``household_duplicate`` (household
in two grids), ``no_branch``, ``no_staff``, ``staff_branch_mismatch`` (staff of another branch, or unknown).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.build import containing_polygon, household_points
from grids.crs import gk_crs_for
from grids.errors import ValidationError
from grids.model import STORAGE_EPSG

__all__ = ["COVERAGE_KINDS", "PROBLEM_KINDS", "check_plan", "check_workspace_plan"]

PROBLEM_KINDS: dict[str, str] = {
    "gap": "空白区（不属于任何网格）",
    "overlap": "网格重叠",
    "invalid_geometry": "几何无效",
    "outside": "网格超出辖区",
    "multipart": "网格不连片",
    "crosses_town": "网格跨镇",
    "empty_grid": "网格内无住户",
    "household_orphan": "住户不在任何网格",
    "household_duplicate": "住户同时在两个网格",
    "no_branch": "网格未分配网点",
    "no_staff": "网格未分配客户经理",
    "staff_branch_mismatch": "客户经理不属于该网点",
}
COVERAGE_KINDS = ("gap", "overlap", "invalid_geometry", "outside", "multipart", "crosses_town", "empty_grid",
                  "household_orphan", "household_duplicate")
"""Kinds about the geometry and households of a plan (the rest are about its assignment)."""


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value) or str(value) == ""


def _parts(geom, tol: float) -> list:
    if geom is None or geom.is_empty:
        return []
    return [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > tol]


def check_plan(grids: gpd.GeoDataFrame, *, admin_units: gpd.GeoDataFrame,
               households: gpd.GeoDataFrame | None = None, staff: pd.DataFrame | None = None,
               urban_areas: gpd.GeoDataFrame | None = None, overlap_tolerance_m2: float = 1.0) -> gpd.GeoDataFrame:
    """Every coverage and assignment problem of a plan.

    Parameters
    ----------
    grids : GeoDataFrame
        The plan's grids (``grid_id``, ``branch_id``, ``staff_id``, polygon), any CRS.
    admin_units : GeoDataFrame
        Admin polygons (``code``, ``level``); the county is the union of the towns (or of the county row).
    households : GeoDataFrame, optional
        Household points (may be empty; then placed by ``group_code`` / ``village_code``).
    staff : DataFrame, optional
        ``staff_id`` and ``branch_id``; checks that a grid's staff works at the grid's branch.
    urban_areas : GeoDataFrame, optional
        Lets a grid be in several pieces where the urban area cuts its village in pieces.
    overlap_tolerance_m2 : float
        Gaps and overlaps up to this area (m²) are floating-point noise.

    Returns
    -------
    GeoDataFrame
        ``kind``, ``grid_ids`` (list of str), ``message``, ``geometry`` (location, EPSG:4490); empty when clean.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame({"code": ["150422100"], "level": ["town"]},
    ...                          geometry=[shapely.box(0, 0, 100, 100)], crs=4549)
    >>> grids = gpd.GeoDataFrame({"grid_id": ["A", "B"], "branch_id": ["B01", "B01"], "staff_id": ["S1", "S1"]},
    ...                          geometry=[shapely.box(0, 0, 50, 100), shapely.box(50, 0, 90, 100)], crs=4549)
    >>> check_plan(grids, admin_units=admin)[["kind", "grid_ids"]].values.tolist()
    [['gap', ['B']]]
    """
    if grids.crs is None or admin_units.crs is None:
        raise ValidationError("网格或行政区划没有坐标参考系（CRS）", fix="先 set_crs(4490)")
    epsg = gk_crs_for(admin_units)
    g = grids.to_crs(epsg).reset_index(drop=True)
    adm = admin_units.to_crs(epsg)
    ids = g["grid_id"].astype(str).tolist() if "grid_id" in g.columns else [str(i) for i in range(len(g))]
    geoms = np.asarray(g.geometry.values, dtype=object)
    tol = overlap_tolerance_m2
    problems: list[dict] = []

    def add(kind: str, grid_ids: list[str], message: str, where) -> None:
        problems.append({"kind": kind, "grid_ids": list(grid_ids), "message": message, "geometry": where})

    # invalid / empty geometry
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    valid = ~missing & shapely.is_valid(geoms)
    for k in np.flatnonzero(~valid):
        if missing[k]:
            add("invalid_geometry", [ids[k]], f"网格 {ids[k]} 没有几何图形。修正方法：重新绘制或删除该网格", None)
            continue
        reason = shapely.is_valid_reason(geoms[k])
        add("invalid_geometry", [ids[k]], f"网格 {ids[k]} 的几何无效（{reason}）。修正方法：在编辑页修复边界（如自相交）",
            shapely.point_on_surface(geoms[k]))
    usable = geoms.copy()
    broken = ~valid & ~missing
    usable[broken] = shapely.make_valid(geoms[broken])

    # county, gaps, outside
    towns = adm[adm["level"] == "town"]
    county_rows = adm[adm["level"] == "county"]
    base = county_rows if len(county_rows) else (towns if len(towns) else adm[adm["level"] == "village"])
    county = shapely.union_all(base.geometry.values)
    covered = shapely.union_all(usable[~missing]) if (~missing).any() else shapely.Polygon()
    tree = shapely.STRtree(np.where(missing, shapely.Polygon(), usable))
    for part in _parts(shapely.difference(county, covered), tol):
        near = tree.query(part.buffer(0.5), predicate="intersects")
        add("gap", [ids[k] for k in sorted(near)],
            f"有 {part.area:,.0f} 平方米不属于任何网格。修正方法：把这块区域并入相邻网格", part)
    for k in np.flatnonzero(~missing):
        out = _parts(shapely.difference(usable[k], county), tol)
        if out:
            area = sum(p.area for p in out)
            add("outside", [ids[k]], f"网格 {ids[k]} 有 {area:,.0f} 平方米在辖区之外。修正方法：沿辖区边界裁剪",
                shapely.MultiPolygon(out) if len(out) > 1 else out[0])

    # overlaps
    if len(g) > 1:
        i, j = tree.query(usable, predicate="intersects")
        keep = (i < j) & ~missing[i] & ~missing[j]
        i, j = i[keep], j[keep]
        inter = shapely.intersection(usable[i], usable[j])
        area = shapely.area(inter)
        for a, b, geom, ar in zip(i, j, inter, area, strict=True):
            if ar > tol:
                add("overlap", [ids[a], ids[b]],
                    f"网格 {ids[a]} 与 {ids[b]} 重叠 {ar:,.0f} 平方米。修正方法：把重叠部分只留给其中一个网格", geom)

    # towns crossed, multipart
    if len(towns):
        tgeo = np.asarray(towns.geometry.values, dtype=object)
        tcode = towns["code"].astype(str).to_numpy()
        gi, ti = shapely.STRtree(tgeo).query(usable, predicate="intersects")
        ok = ~missing[gi]
        gi, ti = gi[ok], ti[ok]
        share = shapely.area(shapely.intersection(usable[gi], tgeo[ti]))
        frame = pd.DataFrame({"g": gi, "t": ti, "a": share})
        frame = frame[frame["a"] > tol]
        for k, sub in frame.groupby("g"):
            if len(sub) > 1:
                names = "、".join(tcode[t] for t in sub.sort_values("a", ascending=False)["t"])
                minor = sub.sort_values("a").iloc[0]
                add("crosses_town", [ids[k]], f"网格 {ids[k]} 跨越多个镇（{names}）。修正方法：沿镇界拆分该网格",
                    shapely.point_on_surface(shapely.intersection(usable[k], tgeo[int(minor["t"])])))
    # a grid may be in several pieces only where its jurisdiction is: the towns it lies in (their rural part
    # for a rural grid, their urban part for an urban one) must have as many pieces
    urban = None
    if urban_areas is not None and len(urban_areas):
        urban = shapely.union_all(urban_areas.to_crs(epsg).geometry.values)
    juris_src = towns if len(towns) else base
    jgeo = np.asarray(juris_src.geometry.values, dtype=object)
    jtree = shapely.STRtree(jgeo)
    for k in np.flatnonzero(~missing):
        pieces = _parts(usable[k], tol)
        if len(pieces) < 2:
            continue
        near = jtree.query(usable[k], predicate="intersects")
        inter = shapely.area(shapely.intersection(jgeo[near], usable[k]))
        juris = shapely.union_all(jgeo[near[inter > tol]]) if (inter > tol).any() else usable[k]
        if urban is not None:
            in_urban = shapely.area(shapely.intersection(usable[k], urban)) > 0.5 * usable[k].area
            juris = shapely.intersection(juris, urban) if in_urban else shapely.difference(juris, urban)
        if len(pieces) > max(1, len(_parts(juris, tol))):
            add("multipart", [ids[k]], f"网格 {ids[k]} 由 {len(pieces)} 块不相连的区域组成。修正方法：把飞地并入相邻网格",
                shapely.point_on_surface(sorted(pieces, key=lambda p: p.area)[0]))

    # households
    if households is not None:
        pts = household_points(households, adm)
        placed = pts.notna() & ~pts.is_empty if len(pts) else pts.notna()
        hh_ids = (households["hh_id"].astype(str) if "hh_id" in households.columns
                  else pd.Series(households.index.astype(str), index=households.index))
        for idx in pts.index[~placed.to_numpy()]:
            add("household_orphan", [], f"住户 {hh_ids.loc[idx]} 没有位置也没有有效的村/组代码。修正方法：补充坐标或村组代码",
                None)
        loc = containing_polygon(gpd.GeoSeries(usable, crs=epsg), pts[placed])
        wgs = pts[placed].to_crs(STORAGE_EPSG)
        for idx in loc.index[loc["grid"].to_numpy() < 0]:
            add("household_orphan", [], f"住户 {hh_ids.loc[idx]} 不在任何网格内。修正方法：扩大相邻网格覆盖该位置",
                wgs.loc[idx])
        dup = loc.index[loc["n_within"].to_numpy() > 1]
        if len(dup):
            pw, gw = tree.query(np.asarray(pts[placed].loc[dup].values, dtype=object), predicate="within")
            for p in np.unique(pw):
                idx = dup[p]
                gl = [ids[x] for x in sorted(gw[pw == p])]
                add("household_duplicate", gl, f"住户 {hh_ids.loc[idx]} 同时在网格 {'、'.join(gl)} 内。修正方法：消除网格重叠",
                    wgs.loc[idx])
        counts = np.bincount(loc["grid"].to_numpy()[loc["grid"].to_numpy() >= 0], minlength=len(g))
        for k in np.flatnonzero((counts == 0) & ~missing):
            add("empty_grid", [ids[k]], f"网格 {ids[k]} 内没有住户。修正方法：与相邻网格合并，或确认该区域确实无人居住",
                shapely.point_on_surface(usable[k]))

    # assignment
    staff_branch = {}
    if staff is not None and len(staff):
        staff_branch = dict(zip(staff["staff_id"].astype(str), staff["branch_id"], strict=True))
    for k in range(len(g)):
        loc_pt = None if missing[k] else shapely.point_on_surface(usable[k])
        branch = g["branch_id"].iloc[k] if "branch_id" in g.columns else None
        person = g["staff_id"].iloc[k] if "staff_id" in g.columns else None
        if _blank(branch):
            add("no_branch", [ids[k]], f"网格 {ids[k]} 没有负责网点。修正方法：运行 `python -m grids assign` 或在分配页指定网点",
                loc_pt)
        if _blank(person):
            add("no_staff", [ids[k]], f"网格 {ids[k]} 没有客户经理。修正方法：由网点主任在分配页指定客户经理", loc_pt)
        elif staff is not None:
            sid = str(person)
            if sid not in staff_branch:
                add("staff_branch_mismatch", [ids[k]], f"网格 {ids[k]} 的客户经理 {sid} 不在员工名单中。修正方法：重新指定客户经理",
                    loc_pt)
            elif not _blank(branch) and str(staff_branch[sid]) != str(branch):
                add("staff_branch_mismatch", [ids[k]],
                    f"网格 {ids[k]} 属于网点 {branch}，但客户经理 {sid} 属于网点 {staff_branch[sid]}。"
                    "修正方法：改派该网点的客户经理", loc_pt)

    out = gpd.GeoDataFrame(problems, columns=["kind", "grid_ids", "message", "geometry"], geometry="geometry",
                           crs=epsg)
    # locations computed in the GK zone, except household points already converted
    if len(out):
        hh_rows = out["kind"].isin(["household_orphan", "household_duplicate"]).to_numpy()
        geo = np.asarray(out.geometry.values, dtype=object)
        conv = gpd.GeoSeries(np.where(hh_rows, None, geo), crs=epsg).to_crs(STORAGE_EPSG).values
        merged = np.where(hh_rows, geo, np.asarray(conv, dtype=object))
        return gpd.GeoDataFrame(out.drop(columns="geometry"), geometry=gpd.GeoSeries(merged, crs=STORAGE_EPSG),
                                crs=STORAGE_EPSG)
    return out.to_crs(STORAGE_EPSG)


def check_workspace_plan(ws, plan_id: str, *, overlap_tolerance_m2: float = 1.0) -> gpd.GeoDataFrame:
    """:func:`check_plan` on a plan stored in a workspace (reads its admin units, households, staff, urban area)."""
    from grids.plans import read_grids

    return check_plan(
        read_grids(ws, plan_id),
        admin_units=ws.read("admin_units"),
        households=ws.read("households", columns=["hh_id", "village_code", "group_code"]),
        staff=ws.read("staff", columns=["staff_id", "branch_id"]),
        urban_areas=ws.read("urban_areas"),
        overlap_tolerance_m2=overlap_tolerance_m2,
    )
