"""Coverage checks of a plan: "全辖无死角、全覆盖" — every place and every household has one responsible person.

One severity model for every check: :func:`check_plan` returns one row per problem with ``kind`` (see
:data:`PROBLEM_KINDS`), ``severity`` (``'error'`` or ``'warning'``, see :data:`SEVERITY`), ``grid_ids`` (the grids
involved), ``message`` (Chinese: what is wrong and why it matters), ``fix`` (Chinese: how to fix it) and a location
``geometry`` (EPSG:4490). **Errors** block publishing (:func:`grids.plans.publish_plan` refuses, ``python -m grids
check`` exits 1); **warnings** are reported with their reason and fix and never block. :func:`errors` and
:func:`warnings` pick the rows of one severity.

Areas are measured in the Gauss-Krüger zone of the data; pieces smaller than ``overlap_tolerance_m2`` are
floating-point noise, not gaps, overlaps or enclaves.

Errors: ``gap`` (part of the county in no grid), ``overlap`` (two grids share area), ``invalid_geometry``,
``outside`` (grid area outside the county), ``multipart`` (an enclave: a grid's pieces on the same landmass — a grid
is one piece unless its pieces lie on different landmasses, see :mod:`grids.landmass`), ``spans_islands`` (a grid
on several landmasses that serves land with its own branch across water: two of its landmasses have branches, or
one has and the grid's branch is not there; a branchless islet served from its neighbour's land is fine),
``crosses_town`` (a grid in two towns),
``household_orphan`` (household in no grid), ``household_duplicate`` (household in two grids), ``no_branch``,
``no_staff``, ``staff_branch_mismatch`` (staff of another branch, or unknown); ``credit_events`` (a household
whose signed / available / balance values differ from its 签约/用信 events, :func:`check_credit_events` — reported
by ``python -m grids check``, not part of a plan's check, so it never blocks publishing a plan).

Warnings: ``empty_grid`` (no household), ``over_max`` / ``under_min`` (households outside the plan's bounds; an
oversize grid's warning says why it cannot be split — a single 组 or street block, the builder's smallest units —
or along which groups/blocks it can be).
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

from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS, containing_polygon, household_points
from grids.crs import gk_crs_for
from grids.errors import ValidationError
from grids.landmass import FERRY_CLASS, landmass_of, landmasses
from grids.model import STORAGE_EPSG

if TYPE_CHECKING:
    from pandas._typing import ScalarOrNA

    from grids.workspace import Workspace

#: ``add(kind, grid_ids, message, fix, where)``: record one problem (``where`` its location, or None).
AddProblem = Callable[[str, list[str], str, str, BaseGeometry | None], None]

__all__ = [
    "COLUMNS",
    "COVERAGE_KINDS",
    "ERROR",
    "PROBLEM_KINDS",
    "SEVERITY",
    "SEVERITY_NAMES",
    "WARNING",
    "check_credit_events",
    "check_plan",
    "check_workspace_plan",
    "errors",
    "severity_of",
    "warnings",
]

ERROR = "error"
WARNING = "warning"
SEVERITY_NAMES: dict[str, str] = {ERROR: "错误", WARNING: "警告"}

PROBLEM_KINDS: dict[str, str] = {
    "gap": "空白区（不属于任何网格）",
    "overlap": "网格重叠",
    "invalid_geometry": "几何无效",
    "outside": "网格超出辖区",
    "multipart": "网格有飞地",
    "spans_islands": "网格跨越有网点的岛屿",
    "crosses_town": "网格跨镇",
    "household_orphan": "住户不在任何网格",
    "household_duplicate": "住户同时在两个网格",
    "no_branch": "网格未分配网点",
    "no_staff": "网格未分配客户经理",
    "staff_branch_mismatch": "客户经理不属于该网点",
    "credit_events": "签约/用信数据与流水不一致",
    "empty_grid": "网格内无住户",
    "over_max": "网格户数超过上限",
    "under_min": "网格户数低于下限",
    "no_streets": "社区没有街道图层（网格按社区范围划分）",
}
"""Problem kind → its Chinese name, errors first (the order reports list them in)."""

SEVERITY: dict[str, str] = {
    **{k: ERROR for k in ("gap", "overlap", "invalid_geometry", "outside", "multipart", "spans_islands",
                          "crosses_town", "household_orphan", "household_duplicate", "no_branch", "no_staff",
                          "staff_branch_mismatch", "credit_events")},
    **{k: WARNING for k in ("empty_grid", "over_max", "under_min", "no_streets")},
}
"""Problem kind → ``'error'`` (blocks publishing) or ``'warning'`` (reported, never blocks)."""

COVERAGE_KINDS = ("gap", "overlap", "invalid_geometry", "outside", "multipart", "spans_islands", "crosses_town",
                  "empty_grid", "household_orphan", "household_duplicate")
"""Kinds about the geometry and households of a plan (the rest are about its assignment and size)."""

COLUMNS = ["kind", "severity", "grid_ids", "message", "fix", "geometry"]
"""Columns of a problem frame, in order."""


def severity_of(problems: pd.DataFrame) -> pd.Series:
    """Severity of each problem row: its ``severity`` column, else :data:`SEVERITY` of its kind (unknown: error).

    Examples
    --------
    >>> severity_of(pd.DataFrame({"kind": ["gap", "over_max", "new_kind"]})).tolist()
    ['error', 'warning', 'error']
    """
    if "severity" in problems.columns:
        return problems["severity"].astype(object).where(problems["severity"].notna(), ERROR)
    return problems["kind"].map(SEVERITY).fillna(ERROR).astype(object)


def errors(problems: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``problems`` that block publishing.

    Examples
    --------
    >>> found = pd.DataFrame({"kind": ["gap", "over_max"], "severity": ["error", "warning"]})
    >>> errors(found)["kind"].tolist(), warnings(found)["kind"].tolist()
    (['gap'], ['over_max'])
    """
    return problems[(severity_of(problems) == ERROR).to_numpy()]


def warnings(problems: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``problems`` that are reported but never block publishing (see :func:`errors`)."""
    return problems[(severity_of(problems) == WARNING).to_numpy()]


def _blank(value: ScalarOrNA) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value) or str(value) == ""


def _parts(geom: BaseGeometry | None, tol: float) -> list[shapely.Polygon]:
    if geom is None or geom.is_empty:
        return []
    return [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > tol]


def _area_text(m2: float) -> str:
    """An area for a message: m² below 0.1 km², else km² with the m² in brackets."""
    if m2 < 1e5:
        return f"{m2:,.0f} 平方米"
    return f"{m2 / 1e6:,.2f} 平方公里（{m2:,.0f} 平方米）"


def check_plan(grids: gpd.GeoDataFrame, *, admin_units: gpd.GeoDataFrame,
               households: gpd.GeoDataFrame | None = None, staff: pd.DataFrame | None = None,
               urban_areas: gpd.GeoDataFrame | None = None, streets: gpd.GeoDataFrame | None = None,
               branches: gpd.GeoDataFrame | None = None, min_households: int | None = None,
               max_households: int | None = None, overlap_tolerance_m2: float = 1.0) -> gpd.GeoDataFrame:
    """Every coverage, assignment and size problem of a plan, errors first.

    Parameters
    ----------
    grids : GeoDataFrame
        The plan's grids (``grid_id``, ``branch_id``, ``staff_id``, polygon; ``town_code``, ``source_codes``,
        ``households`` when known), any CRS.
    admin_units : GeoDataFrame
        Admin polygons (``code``, ``level``, ``name``); the county is its ``county`` row, else the union of the towns.
    households : GeoDataFrame, optional
        Household points (may be empty; then placed by ``group_code`` / ``village_code``). Without them the grids'
        ``households`` column gives the counts the size bounds are judged on.
    staff : DataFrame, optional
        ``staff_id`` and ``branch_id``; checks that a grid's staff works at the grid's branch.
    urban_areas : GeoDataFrame, optional
        Accepted for compatibility; pieces are judged by landmass, not by the urban area.
    streets : GeoDataFrame, optional
        The road layer; its ferry rows (``class == 'ferry'``) join the outline's parts into landmasses.
    branches : GeoDataFrame, optional
        Branch points (``branch_id``): a grid on several landmasses must not serve land that has its own branch
        from across the water.
    min_households, max_households : int, optional
        The plan's household bounds; grids outside them are warnings (not checked when None).
    overlap_tolerance_m2 : float
        Gaps, overlaps and pieces up to this area (m²) are floating-point noise.

    Returns
    -------
    GeoDataFrame
        :data:`COLUMNS`: ``kind``, ``severity``, ``grid_ids`` (list of str), ``message``, ``fix``, ``geometry``
        (location, EPSG:4490); errors before warnings; empty when clean.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = gpd.GeoDataFrame({"code": ["150422100"], "level": ["town"]},
    ...                          geometry=[shapely.box(0, 0, 100, 100)], crs=4549)
    >>> grids = gpd.GeoDataFrame({"grid_id": ["A", "B"], "branch_id": ["B01", "B01"], "staff_id": ["S1", "S1"],
    ...                           "households": [120, 80]},
    ...                          geometry=[shapely.box(0, 0, 50, 100), shapely.box(50, 0, 90, 100)], crs=4549)
    >>> check_plan(grids, admin_units=admin, max_households=100)[["kind", "severity", "grid_ids"]].values.tolist()
    [['gap', 'error', ['B']], ['over_max', 'warning', ['A']]]
    """
    if grids.crs is None or admin_units.crs is None:
        raise ValidationError("网格或行政区划没有坐标参考系（CRS）", fix="先 set_crs(4490)")
    if not len(admin_units):
        raise ValidationError("没有行政区划，无法检查方案是否覆盖全辖",
                              fix="先导入行政区划：`python -m grids import 工作区 admin_units 文件 --user 用户名`")
    epsg = gk_crs_for(admin_units)
    g = grids.to_crs(epsg).reset_index(drop=True)
    adm = admin_units.to_crs(epsg)
    ids = g["grid_id"].astype(str).tolist() if "grid_id" in g.columns else [str(i) for i in range(len(g))]
    geoms = np.asarray(g.geometry.values, dtype=object)
    tol = overlap_tolerance_m2
    problems: list[dict[str, Any]] = []

    def add(kind: str, grid_ids: list[str], message: str, fix: str, where: BaseGeometry | None) -> None:
        problems.append({"kind": kind, "severity": SEVERITY[kind], "grid_ids": list(grid_ids), "message": message,
                         "fix": fix, "geometry": where})

    # invalid / empty geometry
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    valid = ~missing & shapely.is_valid(geoms)
    for k in np.flatnonzero(~valid):
        if missing[k]:
            add("invalid_geometry", [ids[k]], f"网格 {ids[k]} 没有几何图形", "重新绘制或删除该网格", None)
            continue
        reason = shapely.is_valid_reason(geoms[k])
        add("invalid_geometry", [ids[k]], f"网格 {ids[k]} 的几何无效（{reason}）", "在编辑页修复边界（如自相交）",
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
    tree = shapely.STRtree(np.where(missing, shapely.Polygon(), usable))  # type: ignore[call-overload]  # numpy's stubs take no geometry scalar
    for part in _parts(shapely.difference(county, covered), tol):
        near = tree.query(part.buffer(0.5), predicate="intersects")
        add("gap", [ids[k] for k in sorted(near)], f"有 {part.area:,.0f} 平方米不属于任何网格",
            "把这块区域并入相邻网格", part)
    for k in np.flatnonzero(~missing):
        beyond = _parts(shapely.difference(usable[k], county), tol)
        if beyond:
            area = sum(p.area for p in beyond)
            add("outside", [ids[k]], f"网格 {ids[k]} 有 {area:,.0f} 平方米在辖区之外", "沿辖区边界裁剪",
                shapely.MultiPolygon(beyond) if len(beyond) > 1 else beyond[0])

    # overlaps
    if len(g) > 1:
        i, j = tree.query(usable, predicate="intersects")
        keep = (i < j) & ~missing[i] & ~missing[j]
        i, j = i[keep], j[keep]
        inter = shapely.intersection(usable[i], usable[j])
        area = shapely.area(inter)
        for a, b, geom, ar in zip(i, j, inter, area, strict=True):
            if ar > tol:
                add("overlap", [ids[a], ids[b]], f"网格 {ids[a]} 与 {ids[b]} 重叠 {ar:,.0f} 平方米",
                    "把重叠部分只留给其中一个网格", geom)

    # towns crossed
    if len(towns):
        tgeo = np.asarray(towns.geometry.values, dtype=object)
        tcode = towns["code"].astype(str).to_numpy()
        gi, ti = shapely.STRtree(tgeo).query(usable, predicate="intersects")
        ok = ~missing[gi]
        gi, ti = gi[ok], ti[ok]
        share = shapely.area(shapely.intersection(usable[gi], tgeo[ti]))
        frame = pd.DataFrame({"g": gi, "t": ti, "a": share})
        frame = frame[frame["a"] > tol]
        for key, sub in frame.groupby("g"):
            if len(sub) > 1:
                gk = cast(int, key)  # a grid's position (the "g" column)
                names = "、".join(tcode[t] for t in sub.sort_values("a", ascending=False)["t"])
                minor = sub.sort_values("a").iloc[0]
                add("crosses_town", [ids[gk]], f"网格 {ids[gk]} 跨越多个镇（{names}）", "沿镇界拆分该网格",
                    shapely.point_on_surface(shapely.intersection(usable[gk], tgeo[int(minor["t"])])))

    # pieces: one piece per landmass, and no spanning of islands that have their own branch
    grid_branch = g["branch_id"].tolist() if "branch_id" in g.columns else [None] * len(g)
    _check_pieces(usable, missing, ids, grid_branch, county=county, epsg=epsg, streets=streets, branches=branches,
                  tol=tol, add=add)

    # households
    counts = None
    hh_pts = None
    if households is not None:
        pts = household_points(households, adm)
        placed = pts.notna() & ~pts.is_empty if len(pts) else pts.notna()
        hh_ids = (households["hh_id"].astype(str) if "hh_id" in households.columns
                  else pd.Series(households.index.astype(str), index=households.index))
        for idx in pts.index[~placed.to_numpy()]:
            add("household_orphan", [], f"住户 {hh_ids.loc[idx]} 没有位置也没有有效的村/组代码", "补充坐标或村组代码",
                None)
        placed_pts = cast(gpd.GeoSeries, pts[placed])
        loc = containing_polygon(gpd.GeoSeries(usable, crs=epsg), placed_pts)
        wgs = placed_pts.to_crs(STORAGE_EPSG)
        for idx in loc.index[loc["grid"].to_numpy() < 0]:
            add("household_orphan", [], f"住户 {hh_ids.loc[idx]} 不在任何网格内", "扩大相邻网格覆盖该位置",
                wgs.loc[idx])
        dup = loc.index[loc["n_within"].to_numpy() > 1]
        if len(dup):
            pw, gw = tree.query(np.asarray(placed_pts.loc[dup].values, dtype=object), predicate="within")
            for p in np.unique(pw):
                idx = dup[p]
                gl = [ids[x] for x in sorted(gw[pw == p])]
                add("household_duplicate", gl, f"住户 {hh_ids.loc[idx]} 同时在网格 {'、'.join(gl)} 内", "消除网格重叠",
                    wgs.loc[idx])
        counts = np.bincount(loc["grid"].to_numpy()[loc["grid"].to_numpy() >= 0], minlength=len(g))
        hh_pts = (np.asarray(placed_pts.values, dtype=object), loc["grid"].to_numpy())
        for k in np.flatnonzero((counts == 0) & ~missing):
            add("empty_grid", [ids[k]], f"网格 {ids[k]} 内没有住户",
                "与相邻网格合并，或确认该区域确实无人居住（不影响发布）", shapely.point_on_surface(usable[k]))

    # assignment
    staff_branch = {}
    if staff is not None and len(staff):
        staff_branch = dict(zip(staff["staff_id"].astype(str), staff["branch_id"], strict=True))
    for row in range(len(g)):
        loc_pt = None if missing[row] else shapely.point_on_surface(usable[row])
        branch = g["branch_id"].iloc[row] if "branch_id" in g.columns else None
        person = g["staff_id"].iloc[row] if "staff_id" in g.columns else None
        if _blank(branch):
            add("no_branch", [ids[row]], f"网格 {ids[row]} 没有负责网点",
                "运行 `python -m grids assign` 或在分配页指定网点", loc_pt)
        if _blank(person):
            add("no_staff", [ids[row]], f"网格 {ids[row]} 没有客户经理", "由网点主任在分配页指定客户经理", loc_pt)
        elif staff is not None:
            sid = str(person)
            if sid not in staff_branch:
                add("staff_branch_mismatch", [ids[row]], f"网格 {ids[row]} 的客户经理 {sid} 不在员工名单中（或已离职）",
                    "重新指定客户经理（人员分配页改派或自动均衡）", loc_pt)
            elif not _blank(branch) and str(staff_branch[sid]) != str(branch):
                add("staff_branch_mismatch", [ids[row]],
                    f"网格 {ids[row]} 属于网点 {branch}，但客户经理 {sid} 属于网点 {staff_branch[sid]}",
                    "改派该网点的客户经理", loc_pt)

    # size bounds (warnings)
    if min_households is not None or max_households is not None:
        if counts is None:
            col = g["households"] if "households" in g.columns else pd.Series(np.nan, index=g.index)
            sizes = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        else:
            sizes = counts.astype(float)
        _check_sizes(g, usable, missing, ids, sizes, tree=tree, admin=adm, hh_pts=hh_pts,
                     min_households=min_households, max_households=max_households,
                     skip_empty=counts is not None, add=add)

    out = gpd.GeoDataFrame(problems, columns=COLUMNS, geometry="geometry", crs=epsg)
    if len(out):
        order = out["severity"].map({ERROR: 0, WARNING: 1}).to_numpy()
        out = out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
        # locations computed in the GK zone, except household points already converted
        hh_rows = out["kind"].isin(["household_orphan", "household_duplicate"]).to_numpy()
        geo = np.asarray(out.geometry.values, dtype=object)
        conv = gpd.GeoSeries(np.where(hh_rows, None, geo),  # type: ignore[call-overload]  # None as numpy scalar
                             crs=epsg).to_crs(STORAGE_EPSG).values
        merged = np.where(hh_rows, geo, np.asarray(conv, dtype=object))
        return gpd.GeoDataFrame(out.drop(columns="geometry"), geometry=gpd.GeoSeries(merged, crs=STORAGE_EPSG),
                                crs=STORAGE_EPSG)
    return out.to_crs(STORAGE_EPSG)


def _check_pieces(usable: np.ndarray, missing: np.ndarray, ids: list[str], grid_branch: list[Any], *,
                  county: BaseGeometry, epsg: int, streets: gpd.GeoDataFrame | None,
                  branches: gpd.GeoDataFrame | None, tol: float, add: AddProblem) -> None:
    """``multipart``: a grid's pieces on one landmass (each stray piece, with its distance to the largest piece
    there and its area); ``spans_islands``: pieces on several landmasses of which two have their own branch, or
    one has and its branches are not the grid's."""
    multi = [(k, pieces) for k in np.flatnonzero(~missing) if len(pieces := _parts(usable[k], tol)) > 1]
    if not multi:
        return
    masses = landmasses(gpd.GeoSeries([county], crs=epsg), streets=streets)
    served: dict[int, list[str]] = {}
    if branches is not None and len(branches):
        lab = landmass_of(branches.to_crs(epsg), masses)
        bid = (branches["branch_id"].astype(str).tolist() if "branch_id" in branches.columns
               else [str(i) for i in branches.index])
        for m, b in zip(lab, bid, strict=True):
            served.setdefault(int(m), []).append(b)
    for k, pieces in multi:
        parr = np.asarray(pieces, dtype=object)
        area = shapely.area(parr)
        lab = landmass_of(gpd.GeoSeries(parr, crs=epsg), masses)
        order = np.argsort(-area, kind="stable")
        for m in dict.fromkeys(lab[order].tolist()):
            on = [i for i in order if lab[i] == m]
            head = parr[on[0]]
            for s in on[1:]:
                d = float(shapely.distance(parr[s], head))
                add("multipart", [ids[k]],
                    f"网格 {ids[k]} 有一块 {_area_text(float(area[s]))} 的飞地，距网格主体 {d:,.0f} 米，"
                    "两者在同一块陆地上（同一块陆地上的网格应连成一片）",
                    "把这块飞地并入与它相邻的网格（编辑页：选中相邻网格，画多边形圈住飞地），"
                    "或把飞地与主体之间的区域划入本网格", parr[s])
        lands = list(dict.fromkeys(lab[order].tolist()))
        with_branch = [m for m in lands if m in served]
        mine = None if _blank(grid_branch[k]) else str(grid_branch[k])
        # served across water although its own land has a branch: two such lands, or one whose branches are not
        # the grid's (a branchless islet served from its neighbour's land is fine; an unassigned grid is no_branch)
        across = [m for m in with_branch if mine is not None and mine not in served[m]]
        if len(lands) > 1 and (len(with_branch) > 1 or across):
            names = "、".join(b for m in with_branch for b in served[m])
            bad = np.isin(lab, across) if across and len(with_branch) == 1 else lab != lab[order[0]]
            others = parr[bad]
            add("spans_islands", [ids[k]],
                f"网格 {ids[k]} 分布在 {len(lands)} 块被水隔开的陆地上，其中 {len(with_branch)} 块有自己的网点"
                f"（{names}），网格却由{'网点 ' + mine if mine else '一个网点'}跨水服务：岛上的住户应由岛上的网点服务",
                "按陆地拆分该网格：有网点的岛上的部分并入该岛的网格（或单独成格），由岛上网点负责",
                others[0] if len(others) == 1 else shapely.union_all(others))


def _atom_kind(code: str) -> str:
    if "B" in code:
        return "街区"
    return {15: "组", 12: "村"}.get(len(code), "单元")


def _check_sizes(g: gpd.GeoDataFrame, usable: np.ndarray, missing: np.ndarray, ids: list[str], sizes: np.ndarray, *,
                 tree: shapely.STRtree, admin: gpd.GeoDataFrame, hh_pts: tuple[np.ndarray, np.ndarray] | None,
                 min_households: int | None, max_households: int | None, skip_empty: bool,
                 add: AddProblem) -> None:
    """``over_max`` / ``under_min`` warnings: why a grid cannot be split or how to split it; whom to merge with."""
    names = dict(zip(admin["code"].astype(str), admin["name"].astype(str) if "name" in admin.columns
                     else admin["code"].astype(str), strict=True))
    parent = dict(zip(admin["code"].astype(str), admin["parent_code"].astype(str) if "parent_code" in admin.columns
                      else [""] * len(admin), strict=True))
    polys = dict(zip(admin["code"].astype(str), admin.geometry.values, strict=True))
    children: dict[str, list[str]] = {}
    if {"level", "parent_code"} <= set(admin.columns):
        groups = admin[admin["level"] == "group"]
        for code, up in zip(groups["code"].astype(str), groups["parent_code"].astype(str), strict=True):
            children.setdefault(up, []).append(code)
    town = g["town_code"].astype(str).tolist() if "town_code" in g.columns else [""] * len(g)
    source = g["source_codes"].tolist() if "source_codes" in g.columns else [None] * len(g)

    def label(code: str) -> str:
        kind = _atom_kind(code)
        if kind == "组":
            return names.get(parent.get(code, ""), "") + names.get(code, code)
        return names.get(code, code) if kind == "村" else code

    for k in np.flatnonzero(~missing & ~np.isnan(sizes)):
        n = int(sizes[k])
        if max_households is not None and n > max_households:
            atoms = [a for a in dict.fromkeys(str(source[k] or "").split(",")) if a]
            atoms = [x for a in atoms for x in (children.get(a) or [a])]  # a whole village: its groups
            inside = [a for a in atoms if a not in polys
                      or shapely.area(shapely.intersection(polys[a], usable[k])) > 0.01 * shapely.area(polys[a])]
            atoms = inside or atoms
            over = f"网格 {ids[k]} 有 {n} 户，超过上限 {max_households} 户"
            if len(atoms) <= 1:
                what = _atom_kind(atoms[0]) if atoms else "单元"
                why = {"组": "组是生成网格时最小的单元，按组界无法再拆分",
                       "街区": "街区四周都是街道，按街道无法再拆分",
                       "村": "这个村没有组界，无法按组拆分"}.get(what, "无法按组或街道再拆分")
                add("over_max", [ids[k]], f"{over}：它只含一个{what}（{label(atoms[0]) if atoms else ids[k]}），{why}",
                    "补充更细的组界或街道后重新生成网格，或在编辑页画线手工拆分；户数超限不影响发布",
                    shapely.point_on_surface(usable[k]))
                continue
            parts = math.ceil(n / max_households)
            add("over_max", [ids[k]], f"{over}：它由 {len(atoms)} 个{_atom_kind(atoms[0])}组成，"
                f"可沿{_atom_kind(atoms[0])}界分为 {parts} 格：{_split_text(atoms, parts, int(k), polys, hh_pts, label)}",
                f"在编辑页沿这些{_atom_kind(atoms[0])}的边界画线拆分该网格，或以更小的上限重新生成网格；户数超限不影响发布",
                shapely.point_on_surface(usable[k]))
        elif min_households is not None and n < min_households and not (skip_empty and n == 0):
            near = [j for j in tree.query(usable[k], predicate="intersects")
                    if j != k and not missing[j] and town[j] == town[k] and not np.isnan(sizes[j])]
            if near:
                j = min(near, key=lambda x: (sizes[x], ids[x]))
                fix = f"与同镇相邻的网格 {ids[j]}（{int(sizes[j])} 户）合并（编辑页“合并网格”）；户数偏少不影响发布"
            else:
                fix = "同镇没有与它相邻的网格（如孤岛），可保持不变；户数偏少不影响发布"
            add("under_min", [ids[k]], f"网格 {ids[k]} 只有 {n} 户，少于下限 {min_households} 户", fix,
                shapely.point_on_surface(usable[k]))


def _split_text(atoms: list[str], parts: int, k: int, polys: dict[str, BaseGeometry],
                hh_pts: tuple[np.ndarray, np.ndarray] | None, label: Callable[[str], str]) -> str:
    """The atoms of an oversize grid in ``parts`` consecutive runs of about equal households (counts when known)."""
    counts: list[int] | None = None
    if hh_pts is not None and all(a in polys for a in atoms):
        pts, grid_of = hh_pts
        mine = pts[grid_of == k]
        pi, ai = shapely.STRtree([polys[a] for a in atoms]).query(mine, predicate="intersects")
        first = pd.Series(ai).groupby(pi).min().to_numpy()  # a point on a shared border counts once
        counts = np.bincount(first, minlength=len(atoms)).tolist()
    if counts is None:
        size = math.ceil(len(atoms) / parts)
        chunks = [atoms[i:i + size] for i in range(0, len(atoms), size)]
        return " ｜ ".join("、".join(label(a) for a in chunk) for chunk in chunks)
    total = sum(counts)
    runs: list[list[tuple[str, int]]] = []
    run: list[tuple[str, int]] = []
    acc = 0
    for a, c in zip(atoms, counts, strict=True):
        if run and len(runs) < parts - 1 and acc + c / 2 > total * (len(runs) + 1) / parts:
            runs.append(run)
            run = []
        run.append((a, c))
        acc += c
    runs.append(run)
    return " ｜ ".join("、".join(label(a) for a, _ in r) + f"（{sum(c for _, c in r)} 户）" for r in runs)


def _in_post(staff: pd.DataFrame) -> pd.DataFrame:
    """Staff who have not left (``status`` ``left``, see :mod:`grids.lifecycle`): a leaver's grid is flagged."""
    if "status" in staff.columns:
        staff = staff[~staff["status"].astype(object).eq("left").fillna(False).astype(bool).to_numpy()]
    return staff[["staff_id", "branch_id"]]


def _read_geo(ws: Workspace, layer: str, *, where: str | None = None, params: tuple[Any, ...] = (),
              columns: list[str] | None = None) -> gpd.GeoDataFrame:
    """``ws.read`` of a spatial layer, which is always a GeoDataFrame (its geometry is always read)."""
    return cast(gpd.GeoDataFrame, ws.read(layer, where=where, params=params, columns=columns))


def check_workspace_plan(ws: Workspace, plan_id: str, *, overlap_tolerance_m2: float = 1.0,
                         grids: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """:func:`check_plan` on a plan stored in a workspace.

    Reads its admin units, households, staff, branches, streets (ferry links) and urban area; the size bounds are
    the plan's build parameters (``min_households`` / ``max_households``), else the builder's defaults.
    ``grids``: check these instead of the stored ones (the plan as it would be published after a merge).
    """
    from grids.plans import plan_info, read_grids

    params = plan_info(ws, plan_id).get("params") or {}
    grids = read_grids(ws, plan_id) if grids is None else grids
    found = check_plan(
        grids,
        admin_units=_read_geo(ws, "admin_units"),
        households=_read_geo(ws, "households", columns=["hh_id", "village_code", "group_code"]),
        staff=_in_post(ws.read("staff")),
        urban_areas=_read_geo(ws, "urban_areas"),
        streets=_read_geo(ws, "streets", where='"class" = ?', params=(FERRY_CLASS,), columns=["class"]),
        branches=_read_geo(ws, "branches", columns=["branch_id"]),
        min_households=int(params.get("min_households", DEFAULT_MIN_HOUSEHOLDS)),
        max_households=int(params.get("max_households", DEFAULT_MAX_HOUSEHOLDS)),
        overlap_tolerance_m2=overlap_tolerance_m2,
    )
    return _with_build_warnings(found, params.get("warnings") or [], grids)


def _with_build_warnings(found: gpd.GeoDataFrame, saved: list[Any], grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``found`` plus the warnings the build saved with the plan (e.g. 社区 without streets), of grids the plan
    still has, each marked at its first grid."""
    where = dict(zip(grids["grid_id"].astype(str), grids.geometry.representative_point(), strict=True)) \
        if len(grids) else {}
    rows = []
    for w in saved:
        if not isinstance(w, dict) or w.get("kind") not in PROBLEM_KINDS:
            continue
        ids = [str(g) for g in (w.get("grid_ids") or []) if str(g) in where]
        unit = str(w.get("unit_code") or "")
        if not ids and unit:  # the grids built from that unit (codes and sources carry the unit's code)
            ids = [str(g) for g, c, src in zip(grids["grid_id"], grids.get("code", grids["grid_id"]),
                                               grids.get("source_codes", pd.Series(None, index=grids.index)),
                                               strict=True)
                   if str(c).startswith(unit) or unit in str(src or "").split(",")]
        if not ids:
            continue
        rows.append({"kind": w["kind"], "severity": SEVERITY.get(w["kind"], WARNING), "grid_ids": ids,
                     "message": str(w.get("message", "")), "fix": str(w.get("fix", "")), "geometry": where[ids[0]]})
    if not rows:
        return found
    extra = gpd.GeoDataFrame(rows, columns=COLUMNS, geometry="geometry", crs=found.crs or grids.crs)
    return gpd.GeoDataFrame(pd.concat([found, extra], ignore_index=True), geometry="geometry", crs=found.crs
                            or grids.crs)


def check_credit_events(ws: Workspace) -> gpd.GeoDataFrame:
    """Households whose ``signed`` / ``available_amount`` / ``balance`` / ``using`` differ from their credit
    events, or whose signed line exceeds their granted amount (:func:`grids.credit_events.check_projection`): one
    ``credit_events`` error naming them, or none.

    The events are the source of truth; the fix recomputes the households from them.
    """
    from grids.credit_events import check_projection

    diff = check_projection(ws)
    if not len(diff):
        return gpd.GeoDataFrame(columns=COLUMNS, geometry="geometry", crs=f"EPSG:{STORAGE_EPSG}")
    ids = list(dict.fromkeys(diff["hh_id"].astype(str)))
    def one(r: Any) -> str:  # an itertuples row of ``diff``
        if r.column == "granted_amount":
            return f"户 {r.hh_id} 签约额度 {r.events:,.2f} 元超过授信额度 {r.stored:,.2f} 元（授信已下调，应重新签约）"
        return f"户 {r.hh_id} 的 {r.column}：存为 {r.stored}，按流水应为 {r.events}"

    first = "；".join(one(r) for r in diff.head(5).itertuples())
    row: dict[str, Any] = {"kind": "credit_events", "severity": SEVERITY["credit_events"], "grid_ids": [],
           "message": f"{len(ids)} 户的签约/可用/余额与签约、用信流水不一致（{first}）",
           "fix": "流水是准：用 grids.credit_events.rebuild_projection 按流水重算这些户；"
                  "新导入的签约、余额数据请改为办理签约、用信登记；授信下调的户由网点主任按新授信额度重新签约",
           "geometry": None}
    return gpd.GeoDataFrame([row], columns=COLUMNS, geometry="geometry", crs=f"EPSG:{STORAGE_EPSG}")

