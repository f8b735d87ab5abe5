"""Village territories derived from their seats (村委会 positions), for counties without village boundaries.

A 联社 rarely holds village polygons (村界 are not published); it holds where each 村委会/嘎查/社区居委会 sits.
:func:`derive_villages` turns those seats into a tiling of the county:

1. **Voronoi of the seats**, clipped by their town's polygon when the town has one, else by the part of the
   county outline that no town polygon covers (all polygon-less towns share it). Areas already covered by
   real (imported, not derived) village polygons are left out.
2. **One piece per landmass** (:mod:`grids.landmass`, the rule ``check`` applies to grids): a clipped cell
   that falls apart on one landmass keeps the piece holding its seat; the other pieces join the neighbour
   they share the longest edge with.
3. **Households already located** (a GPS point and a village code) that fall outside their village pull it
   over them: the area nearer to such a household than to any other seat or located household (their
   Voronoi cell) passes to the household's village, but never farther than ``max_shift_m`` from the village's
   seat-derived territory. A household farther out is listed, not absorbed; so is one whose absorption would
   split a village into several pieces on one landmass.
4. Villages without a statistical code get a **provisional code**: town code + ``9xx``
   (``provisional_code`` true). Towns without a polygon become the **union of their villages**.
5. **Groups (组)** get polygons where a village has at least two groups with at least
   :data:`MIN_GROUP_HOUSEHOLDS` located households each: Voronoi of those households by group, dissolved,
   clipped to the village, one piece per landmass (a village pinched into two lobes that meet at a point, where
   that cannot hold, gets no group polygons). Elsewhere a group has no polygon and its households are placed by
   village (:func:`grids.build.household_points`).

Every derived unit has ``derived`` true: maps draw it dashed and exports label it “推算村界”
(:data:`DERIVED_LABEL`). Importing real boundaries replaces it.

:func:`import_villages` is the ``python -m grids import PATH villages FILE`` entry point: it validates a file
of seats (GeoJSON/GPKG/SHP points, or CSV/XLSX with 经度/纬度), and writes the ``seats`` layer and the derived
admin units in one audited transaction.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from grids.crs import gk_crs_for
from grids.errors import ValidationError
from grids.landmass import landmass_of, landmasses
from grids.model import CODE_LENGTH, STORAGE_EPSG
from grids.workspace.base import META_TABLE

if TYPE_CHECKING:
    from grids.auth import Account
    from grids.ingest import ImportReport, IngestResult

__all__ = [
    "DEFAULT_MAX_SHIFT_M",
    "DERIVED_LABEL",
    "MIN_GROUP_HOUSEHOLDS",
    "VILLAGES_LAYER",
    "Derivation",
    "canonical_town_name",
    "canonical_village_name",
    "derive_villages",
    "import_villages",
    "rederive_villages",
    "validate_villages",
]

VILLAGES_LAYER = "villages"
"""The import target for village seats (points) — not a workspace table: it writes ``seats`` and ``admin_units``."""
DEFAULT_MAX_SHIFT_M = 2000.0
"""How far (metres) a derived village may be stretched to take in one of its located households."""
MIN_GROUP_HOUSEHOLDS = 10
"""Located households a group needs, in a village with at least two such groups, to get a derived polygon."""
DERIVED_LABEL = "推算村界"
"""How maps' legends and exports name a derived boundary."""
ISSUED_META_KEY = "provisional_codes_issued"
"""Workspace metadata: per town code, the highest provisional village suffix (901…999) ever issued (JSON)."""
SEAT_TOLERANCE_M = 200.0
"""A seat may lie this far (metres) outside its town polygon or the county (it is then moved onto the edge)."""
SAME_PLACE_M = 1.0
"""Two seats closer than this (metres) are one place: the later row is rejected."""
_AREA_TOL = 1.0  # m²: parts this small are floating-point noise (the tolerance ``check`` applies)
_SHARED_MIN_M = 1e-3

_VILLAGE_SUFFIXES = ("村民委员会", "居民委员会", "村委会", "居委会", "委员会")
_TOWN_SUFFIXES = ("人民政府", "街道办事处", "办事处", "街道", "苏木", "镇", "乡")


# --------------------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------------------


def _nfkc(text: Any) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text)))


def canonical_village_name(name: Any) -> str:
    """The name a village is stored under: full-width folded, 村委会/居委会 reduced to the unit's own name.

    Examples
    --------
    >>> [canonical_village_name(n) for n in ("三家村委会", " 三家村 ", "巴彦塔拉嘎查村委会", "林东社区居委会", "和平居委会")]
    ['三家村', '三家村', '巴彦塔拉嘎查', '林东社区', '和平社区']
    """
    text = _nfkc(name)
    for suffix in _VILLAGE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            stem = text[: -len(suffix)]
            if suffix in ("村民委员会", "村委会") and not stem.endswith(("村", "嘎查")):
                stem += "村"
            elif suffix in ("居民委员会", "居委会") and not stem.endswith("社区"):
                stem += "社区"
            return stem
    return text


def canonical_town_name(name: Any) -> str:
    """A town's name without its type (镇/乡/苏木/街道), for matching a file's 乡镇 column to the workspace.

    Examples
    --------
    >>> [canonical_town_name(n) for n in ("林东镇", "林东镇人民政府", "查干哈达苏木", "花加拉嘎乡")]
    ['林东', '林东', '查干哈达', '花加拉嘎']
    """
    text = _nfkc(name)
    for suffix in _TOWN_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
    return text


def _village_kind(name: str, given: Any = None) -> str:
    if isinstance(given, str) and given.strip() in ("村", "嘎查", "社区"):
        return given.strip()
    if name.endswith("社区"):
        return "社区"
    return "嘎查" if name.endswith("嘎查") else "村"


# --------------------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------------------


def _polys(geom: BaseGeometry | None) -> list[shapely.Polygon]:
    """Polygon parts of ``geom`` larger than the noise tolerance."""
    if geom is None or geom.is_empty:
        return []
    parts = shapely.get_parts(geom)
    if any(p.geom_type == "GeometryCollection" for p in parts):
        parts = shapely.get_parts(parts)
    return [p for p in parts if p.geom_type == "Polygon" and p.area > _AREA_TOL]


def _multi(geom: BaseGeometry | None) -> shapely.MultiPolygon | None:
    parts = _polys(geom)
    if not parts:
        return None
    return shapely.MultiPolygon(parts)


def _without_slivers(geom: BaseGeometry | None, width_m: float = 1.0) -> BaseGeometry:
    """``geom`` without the thin parts (narrower than ``2 * width_m``) that overlays of real boundaries leave."""
    parts = _polys(geom)
    keep = [p for p in parts if not shapely.buffer(p, -width_m).is_empty]
    return shapely.union_all(keep) if keep else shapely.Polygon()


def _voronoi(points: np.ndarray, domain: BaseGeometry, *, only: Iterable[int] | None = None) -> np.ndarray:
    """Voronoi cell of each (distinct) point, clipped to ``domain``; aligned with ``points``. With ``only``
    (positions), just those cells (the others are None)."""
    n = len(points)
    if n == 1:
        return np.array([domain], dtype=object)
    minx, miny, maxx, maxy = shapely.bounds(shapely.union_all([domain, *points]))
    pad = max(maxx - minx, maxy - miny) + 1000.0
    frame = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    cells = np.asarray(shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(list(points)),
                                                                  extend_to=frame)), dtype=object)
    tree = shapely.STRtree(cells)
    pi, ci = tree.query(points, predicate="intersects")
    out = np.full(n, None, dtype=object)
    order = np.argsort(pi, kind="stable")
    for p, c in zip(pi[order], ci[order], strict=True):
        if out[p] is None:
            out[p] = cells[c]
    missing = np.array([g is None for g in out])
    if missing.any():  # pragma: no cover - a generator always lies in its own cell
        out[missing] = shapely.Polygon()
    if only is not None:
        keep = np.zeros(n, dtype=bool)
        keep[np.asarray(list(only), dtype=int)] = True
        out[~keep] = None
    else:
        keep = np.ones(n, dtype=bool)
    shapely.prepare(domain)
    inner = np.zeros(n, dtype=bool)
    inner[keep] = shapely.contains(domain, out[keep])
    clip = keep & ~inner  # only cells crossing the domain's edge need the (costly) overlay
    out[clip] = shapely.intersection(out[clip], domain)
    return out


def _one_piece_per_landmass(geoms: Sequence[BaseGeometry | None], anchors: Sequence[BaseGeometry],
                            masses: gpd.GeoDataFrame) -> tuple[list[BaseGeometry | None], int]:
    """Re-tile ``geoms`` so that each has at most one piece per landmass.

    The piece holding an owner's anchor (else its largest piece) on each landmass stays; every other piece
    joins the owner it shares the longest edge with (growing only from kept pieces, so the result is
    connected). Returns the new geometries and how many pieces moved.
    """
    atoms, owner = [], []
    for i, g in enumerate(geoms):
        for p in _polys(g):
            atoms.append(p)
            owner.append(i)
    if not atoms:
        return list(geoms), 0
    atoms_arr = np.asarray(atoms, dtype=object)
    owner_arr = np.asarray(owner)
    lab = _landmass(atoms_arr, masses)
    area = shapely.area(atoms_arr)
    keep = np.zeros(len(atoms), dtype=bool)
    for i in np.unique(owner_arr):
        mine = np.flatnonzero(owner_arr == i)
        anchor = anchors[i] if i < len(anchors) else None
        for m in np.unique(lab[mine]):
            on = mine[lab[mine] == m]
            hit = [a for a in on if anchor is not None and atoms_arr[a].intersects(anchor)]
            keep[hit[0] if hit else on[np.argmax(area[on])]] = True
    if keep.all():
        return list(geoms), 0
    tree = shapely.STRtree(atoms_arr)
    ai, bi = tree.query(atoms_arr, predicate="intersects")
    sel = ai != bi
    ai, bi = ai[sel], bi[sel]
    shared = shapely.length(shapely.intersection(shapely.boundary(atoms_arr[ai]), shapely.boundary(atoms_arr[bi])))
    ok = shared >= _SHARED_MIN_M
    nb: dict[int, list[tuple[int, float]]] = {}
    for a, b, s in zip(ai[ok], bi[ok], shared[ok], strict=True):
        nb.setdefault(int(a), []).append((int(b), float(s)))
    new_owner = np.where(keep, owner_arr, -1)
    pending = [int(a) for a in np.argsort(-area) if not keep[a]]
    while pending:
        progress = False
        for a in list(pending):
            votes: dict[int, float] = {}
            for b, s in nb.get(a, []):
                if new_owner[b] >= 0 and lab[b] == lab[a]:
                    votes[int(new_owner[b])] = votes.get(int(new_owner[b]), 0.0) + s
            if votes:
                new_owner[a] = max(votes.items(), key=lambda kv: (kv[1], -kv[0]))[0]
                pending.remove(a)
                progress = True
        if not progress:
            for a in pending:  # not touching any kept piece (a detached part of the domain): nearest one
                same = np.flatnonzero((new_owner >= 0) & (lab == lab[a]))
                if not len(same):
                    new_owner[a] = owner_arr[a]
                    continue
                d = shapely.distance(atoms_arr[a], atoms_arr[same])
                new_owner[a] = new_owner[same[int(np.argmin(d))]]
            break
    moved = int((new_owner != owner_arr).sum())
    out: list[BaseGeometry | None] = []
    for i in range(len(geoms)):
        mine = atoms_arr[new_owner == i]
        out.append(shapely.union_all(mine) if len(mine) else shapely.Polygon())
    return out, moved


def _landmass(geoms: np.ndarray, masses: gpd.GeoDataFrame) -> np.ndarray:
    """:func:`grids.landmass.landmass_of` for an array of geometries in ``masses``' CRS (one landmass: all 0)."""
    if len(masses) == 1:
        return np.zeros(len(geoms), dtype=int)
    return landmass_of(gpd.GeoSeries(geoms, crs=masses.crs), masses)


def _pieces_per_landmass(geom: BaseGeometry | None, masses: gpd.GeoDataFrame) -> dict[int, list[shapely.Polygon]]:
    parts = _polys(geom)
    if not parts:
        return {}
    lab = _landmass(np.asarray(parts, dtype=object), masses)
    out: dict[int, list[shapely.Polygon]] = {}
    for p, m in zip(parts, lab, strict=True):
        out.setdefault(int(m), []).append(p)
    return out


# --------------------------------------------------------------------------------------------------------
# derivation
# --------------------------------------------------------------------------------------------------------


@dataclass
class Derivation:
    """What :func:`derive_villages` made.

    Attributes
    ----------
    units : GeoDataFrame
        Derived admin units (EPSG:4490), ``admin_units`` columns: villages, the towns that had no polygon,
        and groups; ``derived`` true, ``provisional_code`` true where the code is town code + ``9xx``.
    seats : GeoDataFrame
        The seats with their (possibly provisional) ``code``, in EPSG:4490.
    beyond : DataFrame
        Located households left outside their village: ``hh_id``, ``village_code``, ``distance_m`` (from the
        village as derived), ``reason``.
    warnings : list of str
        Things the user should know (towns without seats, pieces moved).
    """

    units: gpd.GeoDataFrame
    seats: gpd.GeoDataFrame
    beyond: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)

    @property
    def villages(self) -> gpd.GeoDataFrame:
        """The village rows of :attr:`units`."""
        return self.units[self.units["level"] == "village"]


def _provisional(seats: pd.DataFrame, taken: set[str],
                 issued: Mapping[str, int] | None = None) -> tuple[pd.Series, pd.Series]:
    code = seats["code"].astype(object).where(seats["code"].notna(), None)
    provisional = pd.Series(False, index=seats.index)
    used = set(taken) | {c for c in code if isinstance(c, str)}
    for idx in seats.index[code.isna()]:
        town = str(seats.at[idx, "town_code"])
        for k in range(max(901, (issued or {}).get(town, 0) + 1), 1000):
            candidate = f"{town}{k:03d}"
            if candidate not in used:
                break
        else:
            raise ValidationError(f"乡镇 {town} 没有代码的村超过 99 个，无法编临时代码",
                                  fix="在文件的“代码”列填写这些村的统计用区划代码")
        used.add(candidate)
        code.at[idx] = candidate
        provisional.at[idx] = True
    return code, provisional


def derive_villages(seats: gpd.GeoDataFrame, *, towns: gpd.GeoDataFrame | None = None,
                    outline: gpd.GeoDataFrame | gpd.GeoSeries, households: gpd.GeoDataFrame | None = None,
                    max_shift_m: float = DEFAULT_MAX_SHIFT_M, streets: gpd.GeoDataFrame | None = None,
                    real_villages: gpd.GeoDataFrame | None = None, taken_codes: set[str] | None = None,
                    issued: Mapping[str, int] | None = None,
                    min_group_households: int = MIN_GROUP_HOUSEHOLDS) -> Derivation:
    """Village (and town, group) polygons from the villages' seats.

    Parameters
    ----------
    seats : GeoDataFrame
        One point per village: ``town_code`` (9 digits), ``name``; ``code`` (12 digits) where known, else a
        provisional code is given; optional ``kind`` (村/嘎查/社区).
    towns : GeoDataFrame, optional
        Town units: ``code``, ``name`` and a polygon where known (missing/empty geometry: the town becomes the
        union of its villages).
    outline : GeoDataFrame or GeoSeries
        The county outline.
    households : GeoDataFrame, optional
        ``hh_id``, ``village_code``, ``group_code`` and points (rows without a point are ignored).
    max_shift_m : float
        How far a village may be stretched to take in one of its located households.
    streets : GeoDataFrame, optional
        Ferry lines (``class == 'ferry'``) join landmasses, as in :func:`grids.landmass.landmasses`.
    real_villages : GeoDataFrame, optional
        Village polygons that are real (imported): left as they are, their area is not shared out.
    taken_codes : set of str, optional
        Codes already used in the workspace, avoided by provisional codes.
    issued : mapping of str to int, optional
        Per town code, the highest provisional suffix (901…999) ever issued: new provisional codes start above
        it, so a code once given (and perhaps still in an export or a household list) is never reused.
    min_group_households : int
        See :data:`MIN_GROUP_HOUSEHOLDS`.

    Returns
    -------
    Derivation

    Examples
    --------
    >>> import shapely
    >>> county = gpd.GeoSeries([shapely.box(0, 0, 4000, 2000)], crs=4549)
    >>> seats = gpd.GeoDataFrame({"code": ["150422100201", None], "name": ["东村", "西村"],
    ...                           "town_code": ["150422100"] * 2},
    ...                          geometry=[shapely.Point(3000, 1000), shapely.Point(1000, 1000)], crs=4549)
    >>> d = derive_villages(seats, outline=county)
    >>> d.villages[["code", "provisional_code"]].values.tolist()
    [['150422100201', False], ['150422100901', True]]
    >>> [round(a / 1e6, 1) for a in d.villages.to_crs(4549).area]
    [4.0, 4.0]
    """
    if seats.crs is None:
        raise ValidationError("村委会位置没有坐标参考系（CRS）", fix="先 set_crs(4490)")
    if not len(seats):
        raise ValidationError("没有村委会位置", fix="提供每个村（嘎查、社区）村委会的经纬度")
    for col in ("town_code", "name"):
        if col not in seats.columns:
            raise ValidationError(f"村委会位置缺少列 {col}", column=col, fix="需要 town_code 和 name 列")
    geo = outline.geometry if isinstance(outline, gpd.GeoDataFrame) else outline
    epsg = gk_crs_for(geo)
    county = shapely.make_valid(shapely.union_all(np.asarray(geo.to_crs(epsg).values, dtype=object)))
    masses = landmasses(gpd.GeoSeries([county], crs=epsg),
                        streets=streets.to_crs(epsg) if streets is not None and len(streets) else None)
    warnings: list[str] = []

    s = seats.to_crs(epsg).reset_index(drop=True).copy()
    if "code" not in s.columns:
        s["code"] = None
    given = (s["provisional_code"].fillna(False).astype(bool) if "provisional_code" in s.columns
             else pd.Series(False, index=s.index))
    s["code"], fresh = _provisional(s, taken_codes or set(), issued)
    s["provisional_code"] = given | fresh
    s["name"] = [canonical_village_name(v) if isinstance(v, str) and v.strip() else c
                 for v, c in zip(s["name"], s["code"], strict=True)]
    pts = np.asarray(s.geometry.values, dtype=object)

    town_poly: dict[str, Any] = {}
    town_names: dict[str, str] = {}
    if towns is not None and len(towns):
        t = towns.to_crs(epsg) if towns.crs is not None else towns.set_crs(epsg)
        for code, name, g in zip(t["code"].astype(str), t.get("name", t["code"]), t.geometry.values, strict=True):
            town_names[code] = name if isinstance(name, str) and name else code
            if g is not None and not g.is_empty:
                town_poly[code] = shapely.intersection(shapely.make_valid(g), county)
    real = None
    real_codes: set[str] = set()
    if real_villages is not None and len(real_villages):
        rv = real_villages.to_crs(epsg)
        real = shapely.union_all(np.asarray(rv.geometry.values, dtype=object))
        real_codes = set(rv["code"].astype(str))
    derive_mask = ~s["code"].astype(str).isin(real_codes).to_numpy()
    if (~derive_mask).any():
        warnings.append(f"{int((~derive_mask).sum())} 个村已有导入的真实村界，只记录了其村委会位置，未推算")

    # clipping domains: a town with a polygon is its own; polygon-less towns share the rest of the county
    rest_key = "*"
    keys = np.array([tc if tc in town_poly else rest_key for tc in s["town_code"].astype(str)], dtype=object)
    domains: dict[str, Any] = {}
    for key in dict.fromkeys(keys[derive_mask].tolist()):
        if key == rest_key:
            dom = shapely.difference(county, shapely.union_all(list(town_poly.values()))) if town_poly else county
        else:
            dom = town_poly[key]
        if real is not None:
            dom = shapely.difference(dom, real)
        domains[key] = _without_slivers(shapely.make_valid(dom))

    # 1-2. Voronoi of the seats, one piece per landmass
    orig = np.full(len(s), None, dtype=object)
    gen_pts = pts.copy()
    for key, dom in domains.items():
        idx = np.flatnonzero((keys == key) & derive_mask)
        inside = shapely.covers(dom, pts[idx])
        for i in idx[~inside]:  # a seat just outside its town (within tolerance): use the nearest point inside
            gen_pts[i] = nearest_points(dom, pts[i])[0] if not dom.is_empty else pts[i]
        _check_same_place(gen_pts[idx], s["name"].to_numpy()[idx])
        cells = _voronoi(gen_pts[idx], dom)
        fixed, moved = _one_piece_per_landmass(list(cells), list(gen_pts[idx]), masses)
        orig[idx] = fixed
        if moved:
            warnings.append(f"{moved} 块被边界切开的泰森多边形碎片并入了相邻的村（每个村在同一块陆地上只有一块）")

    # 3. located households pull their village over them (within max_shift_m, never into pieces)
    final = orig.copy()
    beyond_rows: list[dict[str, Any]] = []
    code_pos = {c: i for i, c in enumerate(s["code"].astype(str)) if derive_mask[i]}
    if households is not None and len(households) and "village_code" in households.columns:
        hh = households.to_crs(epsg)
        hgeo = np.asarray(hh.geometry.values, dtype=object)
        has = ~(shapely.is_missing(hgeo) | shapely.is_empty(hgeo))
        owner = np.array([code_pos.get(c, -1) if isinstance(c, str) else -1 for c in hh["village_code"]], dtype=int)
        use = has & (owner >= 0)
        hid = (hh["hh_id"].astype(str).to_numpy() if "hh_id" in hh.columns
               else np.asarray(hh.index.astype(str)))
        for dom in domains.values():
            shapely.prepare(dom)
        for key, dom in domains.items():
            members = np.flatnonzero((keys == key) & derive_mask)
            sel = np.flatnonzero(use & np.isin(owner, members))
            sel = sel[shapely.covers(dom, hgeo[sel])]
            if not len(sel):
                continue
            final[members], rows = _absorb(members, orig, gen_pts, dom, hgeo[sel], owner[sel], hid[sel],
                                           max_shift_m, masses)
            for r in rows:
                r["village_code"] = s.at[r.pop("owner"), "code"]
            beyond_rows += rows
        # households of a village located in another town's domain: listed
        other = np.flatnonzero(use)
        if len(other):
            dom_of = np.array([keys[o] for o in owner[other]], dtype=object)
            in_dom = np.zeros(len(other), dtype=bool)
            for k in np.unique(dom_of):
                at = dom_of == k
                in_dom[at] = shapely.covers(domains[k], hgeo[other][at])
            for j in other[~in_dom]:
                d = float(shapely.distance(hgeo[j], final[owner[j]])) if final[owner[j]] is not None else np.nan
                elsewhere = shapely.covers(county, hgeo[j])
                beyond_rows.append({"hh_id": hid[j], "village_code": s.at[owner[j], "code"], "distance_m": d,
                                    "reason": "位置在另一个乡镇的范围内，未并入本村" if elsewhere
                                    else "位置在县界以外，未并入本村（检查坐标）"})
        if beyond_rows:
            warnings.append(f"{len(beyond_rows)} 户已定位的住户在本村推算范围以外且未并入（距离超过 "
                            f"{max_shift_m:,.0f} 米、在另一乡镇内，或并入会把村分成几块），已列出")

    villages = s[derive_mask].copy()
    villages["geometry"] = np.asarray([_multi(g) for g in final[derive_mask]], dtype=object)
    empty = villages.geometry.isna()
    if empty.any():
        warnings.append("这些村推算后没有范围（被真实村界或其他村覆盖）：" + "、".join(villages.loc[empty, "name"]))
        villages = villages[~empty]
    kinds = villages["kind"] if "kind" in villages.columns else pd.Series(None, index=villages.index)
    units = [gpd.GeoDataFrame({
        "code": villages["code"].astype(str), "name": villages["name"].astype(str), "level": "village",
        "kind": [_village_kind(n, k) for n, k in zip(villages["name"], kinds, strict=True)],
        "parent_code": villages["town_code"].astype(str), "derived": True,
        "provisional_code": villages["provisional_code"].astype(bool)},
        geometry=gpd.GeoSeries(villages.geometry.values, crs=epsg), crs=epsg)]

    # 4. towns without polygons: union of their villages
    for town in dict.fromkeys(s["town_code"].astype(str)):
        if town in town_poly:
            continue
        mine = units[0][units[0]["parent_code"] == town]
        if not len(mine):
            continue
        units.append(gpd.GeoDataFrame(
            {"code": [town], "name": [town_names.get(town, town)], "level": ["town"], "kind": [None],
             "parent_code": [town[: CODE_LENGTH["county"]]], "derived": [True], "provisional_code": [False]},
            geometry=np.asarray([_multi(shapely.union_all(np.asarray(mine.geometry.values, dtype=object)))],
                                dtype=object), crs=epsg))
    for town in town_names:
        if town not in set(s["town_code"].astype(str)) and town not in town_poly:
            warnings.append(f"乡镇 {town_names[town]}（{town}）既没有边界也没有村委会位置，无法推算其范围")

    # 5. groups from located households
    if households is not None and len(households) and "group_code" in households.columns:
        groups = _derive_groups(units[0], households.to_crs(epsg), masses, min_group_households)
        if len(groups):
            units.append(groups)
    out = pd.concat(units, ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=epsg).to_crs(STORAGE_EPSG)
    seats_out = gpd.GeoDataFrame(
        {"code": s["code"].astype(str), "name": s["name"].astype(str), "level": "village",
         "town_code": s["town_code"].astype(str)}, geometry=gpd.GeoSeries(pts, crs=epsg), crs=epsg
    ).to_crs(STORAGE_EPSG)
    beyond = pd.DataFrame(beyond_rows, columns=["hh_id", "village_code", "distance_m", "reason"])
    return Derivation(units=out, seats=seats_out, beyond=beyond, warnings=warnings)


def _check_same_place(points: np.ndarray, names: np.ndarray) -> None:
    if len(points) < 2:
        return
    tree = shapely.STRtree(points)
    a, b = tree.query(points, predicate="dwithin", distance=SAME_PLACE_M)
    dup = a < b
    if dup.any():
        i, j = int(a[dup][0]), int(b[dup][0])
        raise ValidationError(f"村 {names[i]} 与 {names[j]} 的村委会位置相同（相距不到 {SAME_PLACE_M:.0f} 米）",
                              fix="核对两个村的经纬度；每个村需要自己的村委会位置")


def _absorb(members: np.ndarray, orig: np.ndarray, seat_pts: np.ndarray, domain: BaseGeometry, hpts: np.ndarray,
            howner: np.ndarray, hid: np.ndarray, max_shift_m: float, masses: gpd.GeoDataFrame
            ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Move territory to the villages of located households outside them (see module docstring, step 3)."""
    listed: list[dict[str, Any]] = []
    inside = np.zeros(len(hpts), dtype=bool)
    for o in np.unique(howner):
        mine = np.flatnonzero(howner == o)
        if orig[o] is not None:
            shapely.prepare(orig[o])
            inside[mine] = shapely.covers(orig[o], hpts[mine])
    dist = np.array([0.0 if ok else float(shapely.distance(p, orig[o]))
                     for ok, o, p in zip(inside, howner, hpts, strict=True)])
    far = ~inside & (dist > max_shift_m)
    for j in np.flatnonzero(far):
        listed.append({"hh_id": hid[j], "owner": int(howner[j]), "distance_m": dist[j],
                       "reason": f"距本村推算范围 {dist[j]:,.0f} 米，超过 {max_shift_m:,.0f} 米，未并入"})
    cand = np.flatnonzero(~inside & ~far & shapely.covers(domain, hpts))
    if not len(cand):
        return orig[members], listed
    # labelled Voronoi of seats and located households: a misplaced household's cell is its claim
    gens = np.concatenate([seat_pts[members], hpts])
    glab = np.concatenate([members, howner])
    xy = np.round(shapely.get_coordinates(gens), 2)
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "lab": glab, "pos": np.arange(len(gens))})
    lab_per_xy = frame.groupby(["x", "y"])["lab"].transform("nunique")
    first = ~frame.duplicated(["x", "y"])
    n_seat = len(members)
    seat_xy = frame.iloc[:n_seat][["x", "y"]].apply(tuple, axis=1)
    at_seat = frame[["x", "y"]].apply(tuple, axis=1).isin(set(seat_xy)) & (frame["pos"] >= n_seat)
    usable = first & ((lab_per_xy == 1) | (frame["pos"] < n_seat)) & ~at_seat
    upos = frame.loc[usable, "pos"].to_numpy()
    wanted = set((n_seat + cand).tolist())
    cells_u = _voronoi(gens[upos], domain, only=[k for k, pos in enumerate(upos) if pos in wanted])
    cell_of = dict(zip(upos.tolist(), cells_u, strict=True))
    claims: dict[int, Any] = {}
    reach: dict[int, Any] = {}
    for j in cand:
        cell = cell_of.get(n_seat + int(j))
        if cell is None:
            listed.append({"hh_id": hid[j], "owner": int(howner[j]), "distance_m": dist[j],
                           "reason": "与其他村的住户或村委会位置重合，未并入"})
            continue
        o = int(howner[j])
        if o not in reach:
            reach[o] = shapely.buffer(orig[o], max_shift_m)
        claims[int(j)] = shapely.intersection(cell, reach[o])
    seat_of = {int(m): seat_pts[m] for m in members}
    for _ in range(20):
        final = _apply_claims(members, orig, claims, howner)
        drop: set[int] = set()
        for m, geom in zip(members, final, strict=True):
            for pieces in _pieces_per_landmass(geom, masses).values():
                if len(pieces) < 2:
                    continue
                parr = np.asarray(pieces, dtype=object)
                holds = [k for k, p in enumerate(parr) if p.intersects(seat_of[int(m)])]
                main = holds[0] if holds else int(np.argmax(shapely.area(parr)))
                for k, piece in enumerate(parr):
                    if k == main:
                        continue
                    own = {j for j in claims if howner[j] == m and piece.intersects(hpts[j])}
                    if own:
                        drop |= own
                    else:  # a remnant cut off by others' claims: undo the claims that touch it
                        drop |= {j for j, c in claims.items() if howner[j] != m
                                 and shapely.dwithin(c, piece, 0.01) and c.intersects(orig[m])}
        if not drop:
            break
        for d in drop:
            listed.append({"hh_id": hid[d], "owner": int(howner[d]), "distance_m": dist[d],
                           "reason": "并入会使本村或邻村在同一块陆地上分成几块，未并入"})
            claims.pop(d, None)
    final = _apply_claims(members, orig, claims, howner)
    fixed, _ = _one_piece_per_landmass(list(final), [seat_pts[m] for m in members], masses)
    return np.asarray(fixed, dtype=object), listed


def _apply_claims(members: np.ndarray, orig: np.ndarray, claims: Mapping[int, Any],
                  howner: np.ndarray) -> list[BaseGeometry | None]:
    """Each member's territory: its own minus others' claims on it, plus its own claims."""
    if not claims:
        return list(orig[members])
    keys = list(claims)
    geoms = np.asarray([claims[j] for j in keys], dtype=object)
    owners = np.asarray([int(howner[j]) for j in keys])
    tree = shapely.STRtree(geoms)
    out = []
    for m in members:
        geom = orig[m]
        hits = tree.query(geom, predicate="intersects") if geom is not None else np.empty(0, dtype=int)
        others = geoms[hits[owners[hits] != m]]
        if len(others):
            geom = shapely.difference(geom, shapely.union_all(others))
        mine = geoms[owners == m]
        if len(mine):
            geom = shapely.union_all([geom, *mine])
        out.append(geom)
    return out


def _derive_groups(villages: gpd.GeoDataFrame, hh: gpd.GeoDataFrame, masses: gpd.GeoDataFrame,
                   min_households: int) -> gpd.GeoDataFrame:
    """Group polygons of villages with ≥ 2 groups of ≥ ``min_households`` located households (step 5)."""
    geoms = np.asarray(hh.geometry.values, dtype=object)
    has = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    gcode = np.array([c if isinstance(c, str) and len(c) == CODE_LENGTH["group"] else "" for c in hh["group_code"]],
                     dtype=object)
    ok = has & (gcode != "")
    if not ok.any():
        return gpd.GeoDataFrame()
    pts_all, codes_all = geoms[ok], gcode[ok]
    prefix = np.array([c[: CODE_LENGTH["village"]] for c in codes_all], dtype=object)
    rows = []
    for vcode, vgeom, provisional in zip(villages["code"], villages.geometry.values, villages["provisional_code"],
                                         strict=True):
        if vgeom is None:
            continue
        mine = prefix == vcode
        if not mine.any():
            continue
        mine[mine] = shapely.covers(vgeom, pts_all[mine])
        counts = pd.Series(codes_all[mine]).value_counts()
        good = sorted(counts.index[counts >= min_households])
        if len(good) < 2:
            continue
        sel = mine & np.isin(codes_all, good)
        p, c = pts_all[sel], codes_all[sel]
        xy = np.round(shapely.get_coordinates(p), 2)
        frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "c": c})
        clash = frame.groupby(["x", "y"])["c"].transform("nunique") > 1
        keep = (~frame.duplicated(["x", "y"]) & ~clash).to_numpy()
        cells = _voronoi(p[keep], vgeom)
        geoms_g: list[BaseGeometry | None] = [shapely.union_all(cells[c[keep] == g]) for g in good]
        anchors = []
        for g in good:  # the household nearest its group's centre
            gp = p[keep][c[keep] == g]
            centre = shapely.centroid(shapely.MultiPoint(list(gp)))
            anchors.append(gp[int(np.argmin(shapely.distance(gp, centre)))])
        geoms_g, _ = _one_piece_per_landmass(geoms_g, anchors, masses)
        if any(len(pieces) > 1 for geom in geoms_g for pieces in _pieces_per_landmass(geom, masses).values()):
            continue  # the village is pinched (two lobes meeting at a point): its households are placed by village
        for g, geom in zip(good, geoms_g, strict=True):
            rows.append({"code": g, "name": f"{int(g[-3:])}组", "level": "group", "kind": None,
                         "parent_code": vcode, "derived": True, "provisional_code": bool(provisional),
                         "geometry": _multi(geom)})
    if not rows:
        return gpd.GeoDataFrame()
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=villages.crs)


# --------------------------------------------------------------------------------------------------------
# importing seats: python -m grids import PATH villages FILE
# --------------------------------------------------------------------------------------------------------

SEAT_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("名称", "村名", "村名称", "村庄名称", "村委会", "村委会名称", "嘎查村", "嘎查村名称", "村（嘎查）名称",
             "村/嘎查", "村嘎查", "行政村", "行政村名称", "嘎查", "社区", "村（社区）", "单位名称", "name"),
    "code": ("代码", "编码", "村代码", "村编码", "区划代码", "统计用区划代码", "行政区划代码", "村（嘎查）代码",
             "嘎查村代码", "code"),
    "town_code": ("乡镇代码", "镇代码", "苏木乡镇代码", "乡镇苏木代码", "town_code"),
    "town": ("乡镇", "乡镇名称", "所属乡镇", "镇", "乡", "苏木", "乡镇苏木", "苏木乡镇", "镇/乡/苏木", "街道",
             "乡镇（苏木）", "town"),
    "kind": ("类型", "类别", "kind"),
}
SEAT_LABELS = {"name": "村名", "code": "代码", "town_code": "乡镇代码", "town": "乡镇", "kind": "类型",
               "geometry": "位置"}


def _clean_text(value: str) -> str:
    """A text cell without control, format (bidi override, zero-width) or other invisible characters."""
    from grids.text import normalize_text

    return "".join(ch for ch in normalize_text(value) if unicodedata.category(ch)[0] != "C")


def _each(values: pd.Series, fn: Callable[[str], object]) -> pd.Series:
    """``fn`` applied to the text cells (None elsewhere), as an object Series (pandas' ``map`` makes NaN)."""
    return pd.Series([fn(v) if isinstance(v, str) and v else None for v in values], dtype=object)


def _recognise_seat_columns(columns: Iterable[str]) -> dict[str, str]:
    from grids.ingest.columns import norm_header as _norm_header

    lookup = {_norm_header(a): canon for canon, aliases in SEAT_ALIASES.items() for a in aliases}
    out: dict[str, str] = {}
    for col in columns:
        canon = lookup.get(_norm_header(col))
        if canon and canon not in out.values():
            out[col] = canon
    return out


def _workspace_context(ws: Any) -> dict[str, Any]:
    from grids.landmass import county_outline

    admin = ws.read("admin_units") if ws.count("admin_units") else None
    outline = county_outline(ws)
    if outline is not None:
        outline = outline[~(outline.geometry.isna() | outline.geometry.is_empty)]
    if outline is None or not len(outline):
        raise ValidationError("工作区没有县界，无法推算村的范围",
                              fix="先用 `python -m grids init 工作区 --county 代码 --outline 县界文件` 建立工作区，"
                                  "或导入包含县界（level=county）的 admin_units")
    county_code = str(ws.meta.get("county_code") or "")
    towns = admin[admin["level"] == "town"] if admin is not None else None
    villages = admin[admin["level"] == "village"] if admin is not None else None
    return {"admin": admin, "outline": outline, "county_code": county_code, "towns": towns, "villages": villages}


def validate_villages(table: IngestResult | pd.DataFrame, *, workspace: Any, source_name: str,
                      replace: bool = False) -> ImportReport:
    """Check a file of village seats row by row (the ``villages`` import target).

    Each row is one village (村/嘎查/社区): a point (the 村委会), a name and/or a 12-digit code, and its town
    (乡镇 name or 9-digit code; a code alone implies its town). Rejected, with the fix: no position, a position
    outside the county or more than :data:`SEAT_TOLERANCE_M` outside its town's polygon, a town the workspace
    does not know (with the closest names or codes), a code of the wrong length or town, a code that belongs to
    another village of the workspace, a village twice in the file, two villages at one place (in the file, or
    a row and a stored village the file does not replace; ``replace`` true: the file replaces every seat).
    Control and bidi-override characters are removed from the text cells.

    Returns
    -------
    ImportReport
        ``accepted``: ``code`` (None where not given), ``name``, ``town_code``, ``kind``, point; index = row.
    """
    from grids.ingest import ROW_INDEX, ImportReport, IngestResult
    from grids.ingest.context import Problems as _Problems
    from grids.ingest.report import rejects_frame as _rejects_frame
    from grids.ingest.tabular import stringify as _stringify
    from grids.text import normalize_id

    read = IngestResult.wrap(table, source_name)
    frame, notes = read.frame, list(read.warnings)
    n = len(frame)
    if n == 0:
        raise ValidationError("文件里没有数据行", file=source_name, fix="检查是否选错了文件")
    rows = (np.asarray(frame.index, dtype=np.int64) if frame.index.name == ROW_INDEX
            else np.arange(1, n + 1, dtype=np.int64))
    raw = _stringify(frame, is_text=read.text).reset_index(drop=True)
    geo = frame.geometry.to_crs(STORAGE_EPSG) if frame.crs is not None else frame.geometry.set_crs(STORAGE_EPSG)
    geoms = np.asarray(geo.values, dtype=object)
    colmap = _recognise_seat_columns(raw.columns)
    data = {canon: raw[col].astype(object) for col, canon in colmap.items()}
    labels = {canon: col for col, canon in colmap.items()}
    labels.setdefault("geometry", read.geometry_label or "位置")
    if "name" not in data and "code" not in data:
        raise ValidationError("没有村名或代码列", file=source_name,
                              fix="加一列“村名”（或“名称”）和/或“代码”（12 位统计用区划代码）")
    kinds = shapely.get_type_id(geoms[~shapely.is_missing(geoms)])
    if len(kinds) and (kinds != 0).all():
        raise ValidationError("这个文件是面（边界），不是村委会位置（点）", file=source_name,
                              fix="真实村界请用 `python -m grids import 工作区 admin_units 文件` 导入（会替换推算村界）；"
                                  "本命令只接受村委会的点位或经纬度")
    problems = _Problems(rows, {**SEAT_LABELS, **labels})
    pos_of = {int(r): i for i, r in enumerate(rows)}
    for row, col, reason, fix in read.row_problems:
        if int(row) in pos_of:
            problems.add_one(pos_of[int(row)], col, reason, fix)
    ctx = _workspace_context(workspace)

    def text(col: str) -> pd.Series:
        v = data.get(col, pd.Series([None] * n))
        clean = [_clean_text(x) if isinstance(x, str) else "" for x in v]
        return pd.Series([x or None for x in clean], dtype=object)

    name = _each(text("name"), canonical_village_name)
    code = _each(text("code"), normalize_id)
    bad_code = pd.Series([isinstance(v, str) and not (v.isdigit() and len(v) == CODE_LENGTH["village"])
                          for v in code], dtype=bool)
    problems.add(bad_code, "code", "代码格式错误", "村代码应为 12 位数字（国家统计用区划代码）；不知道代码就留空，会编临时代码")
    code = code.where(~bad_code, None)
    problems.add(name.isna() & code.isna() & ~bad_code, "name", "缺少村名和代码", "至少填写村名或 12 位村代码")

    towns = ctx["towns"]
    town_by_code: dict[str, str] = {}
    town_by_key: dict[str, list[str]] = {}
    if towns is not None:
        for c, nm in zip(towns["code"].astype(str), towns["name"], strict=True):
            town_by_code[c] = nm if isinstance(nm, str) else c
            if isinstance(nm, str):
                town_by_key.setdefault(canonical_town_name(nm), []).append(c)
    t_code = _each(text("town_code"), normalize_id)
    t_text = text("town")
    town = pd.Series([None] * n, dtype=object)
    county = ctx["county_code"]
    town_list = bool(workspace.meta.get("towns_source")) and bool(town_by_code)
    for i in range(n):
        given = t_code[i] or t_text[i]
        col = "town_code" if t_code[i] else "town"
        if given is None:
            if code[i]:
                given, col = code[i][: CODE_LENGTH["town"]], "code"
            else:
                problems.add_at(i, "town", "缺少乡镇", "填写所属乡镇（名称或 9 位代码）")
                continue
        norm = normalize_id(given)
        if norm.isdigit():
            if len(norm) != CODE_LENGTH["town"]:
                problems.add_at(i, col, "乡镇代码格式错误", "乡镇代码应为 9 位数字")
            elif norm in town_by_code or (county and norm.startswith(county) and not town_list):
                town[i] = norm
            elif county and norm.startswith(county):  # init loaded the county's full town list
                near = difflib.get_close_matches(norm, sorted(town_by_code), n=3, cutoff=0.5)
                hint = "、".join(f"{c}（{town_by_code[c]}）" for c in near)
                problems.add_at(i, col, "本县没有这个乡镇代码",
                                (f"是否指：{hint}？" if hint else "核对乡镇代码") + "；也可以填乡镇名称")
            else:
                problems.add_at(i, col, "乡镇代码不属于本县", f"乡镇代码应以本县代码 {county} 开头")
            continue
        found = town_by_key.get(canonical_town_name(given), [])
        if len(found) == 1:
            town[i] = found[0]
        else:
            near = difflib.get_close_matches(canonical_town_name(given), list(town_by_key), n=3, cutoff=0.3)
            hint = "、".join(f"{town_by_code[town_by_key[k][0]]}（{town_by_key[k][0]}）" for k in near)
            problems.add_at(i, col, "乡镇名称不唯一" if found else "工作区里没有这个乡镇",
                            (f"是否指：{hint}？" if hint else "检查乡镇名称") + "；也可以填 9 位乡镇代码")
    mismatch = pd.Series([isinstance(c, str) and isinstance(t, str) and c[: CODE_LENGTH["town"]] != t
                          for c, t in zip(code, town, strict=True)], dtype=bool)
    problems.add(mismatch, "code", "村代码不属于所填乡镇", "村代码的前 9 位应等于乡镇代码；核对两列")
    holders = ctx["villages"]
    if holders is not None and len(holders):  # a code already held by another village of the workspace
        held = {c: (p, nm) for c, nm, p in zip(holders["code"].astype(str), holders["name"],
                                               holders["parent_code"].astype(str), strict=True)}
        for i in np.flatnonzero(code.notna().to_numpy() & ~mismatch.to_numpy()).tolist():
            holder = held.get(code[i])
            if holder is None or not isinstance(name[i], str) or not isinstance(holder[1], str):
                continue
            if canonical_village_name(holder[1]) != name[i] or (town[i] and town[i] != holder[0]):
                problems.add_at(i, "code", f"代码 {code[i]} 已属于 {holder[1]}",
                                f"核对代码：{holder[1]} 已用这个代码；不知道代码就留空，会编临时代码")
    new_towns = sorted({t for t in town.dropna() if t not in town_by_code})
    if new_towns:
        notes.append(f"工作区里还没有这些乡镇，按村的范围新建（名称暂用代码）：{'、'.join(new_towns)}")

    # position: a point inside the county, and near its town's polygon
    has = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    problems.add(~has, "geometry", "缺少村委会位置", "填写村委会的经度、纬度（或导入点图层）")
    outline = ctx["outline"]
    epsg = gk_crs_for(outline)
    county_gk = shapely.union_all(np.asarray(outline.to_crs(epsg).geometry.values, dtype=object))
    pts = np.full(n, None, dtype=object)
    pts[has] = np.asarray(gpd.GeoSeries(geoms[has], crs=STORAGE_EPSG).to_crs(epsg).values, dtype=object)
    far = np.zeros(n, dtype=bool)
    far[has] = ~shapely.dwithin(pts[has], county_gk, SEAT_TOLERANCE_M)
    problems.add(far, "geometry", "村委会位置在县界以外",
                 f"距县界超过 {SEAT_TOLERANCE_M:.0f} 米；检查经纬度是否填反、是否为高德坐标（--coords gcj02）")
    if towns is not None and len(towns):
        tg = towns.to_crs(epsg)
        tpoly = {c: g for c, g in zip(tg["code"].astype(str), tg.geometry.values, strict=True)
                 if g is not None and not g.is_empty}
        for i in np.flatnonzero(has & ~far & town.notna().to_numpy()).tolist():
            g = tpoly.get(town[i])
            if g is not None and not shapely.dwithin(pts[i], g, SEAT_TOLERANCE_M):
                problems.add_at(i, "geometry", "村委会位置不在所填乡镇内",
                                f"位置距乡镇 {town_by_code.get(town[i], town[i])} 的边界超过 {SEAT_TOLERANCE_M:.0f} 米；"
                                "核对乡镇和经纬度（高德坐标请加 --coords gcj02）")

    # duplicates within the file
    ok = ~problems.rejected()
    dup_code = code.notna() & code.duplicated(keep="first") & ok
    problems.add(dup_code, "code", "村代码在文件中重复", "每个村只保留一行")
    key = pd.Series([f"{t}|{nm}" if t and nm else None for t, nm in zip(town, name, strict=True)], dtype=object)
    dup_name = key.notna() & key.duplicated(keep="first") & ok & ~dup_code
    problems.add(dup_name, "name", "同一乡镇里村名重复", "同名的村请填写各自的 12 位代码，或删去重复的行")
    ok = ~problems.rejected()
    idx = np.flatnonzero(ok & has)
    stored = workspace.read("seats") if not replace and workspace.count("seats") else None
    if stored is not None and len(idx):  # a row at the place of a stored village it does not replace
        spts = np.asarray(stored.to_crs(epsg).geometry.values, dtype=object)
        skey = (stored["town_code"].astype(str) + "|" + stored["name"].astype(str)).to_numpy()
        scode = stored["code"].astype(str).to_numpy()
        a, b = shapely.STRtree(spts).query(pts[idx], predicate="dwithin", distance=SAME_PLACE_M)
        for r, j in zip(a, b, strict=True):
            i = int(idx[r])
            if scode[j] == code[i] or skey[j] == key[i]:
                continue
            problems.add_at(i, "geometry", f"与工作区里的村 {stored['name'].iloc[j]} 的村委会位置相同",
                            f"相距不到 {SAME_PLACE_M:.0f} 米；核对经纬度，每个村需要自己的村委会位置")
        ok = ~problems.rejected()
        idx = np.flatnonzero(ok & has)
    if len(idx) > 1:
        a, b = shapely.STRtree(pts[idx]).query(pts[idx], predicate="dwithin", distance=SAME_PLACE_M)
        later = {int(idx[max(i, j)]): int(idx[min(i, j)]) for i, j in zip(a, b, strict=True) if i != j}
        for i, j in sorted(later.items()):
            problems.add_at(i, "geometry", "与另一个村的村委会位置相同",
                            f"与第 {rows[j]} 行的村相距不到 {SAME_PLACE_M:.0f} 米；核对经纬度")
    keep = ~problems.rejected()
    kind = text("kind")
    accepted = gpd.GeoDataFrame(
        {"code": code[keep].to_numpy(), "name": name[keep].to_numpy(), "town_code": town[keep].to_numpy(),
         "kind": kind[keep].to_numpy()},
        geometry=gpd.GeoSeries(geoms[keep], crs=STORAGE_EPSG), crs=STORAGE_EPSG,
        index=pd.Index(rows[keep], name=ROW_INDEX))
    accepted = accepted.set_geometry(gpd.GeoSeries(geoms[keep], index=accepted.index, crs=STORAGE_EPSG))
    rejects = _rejects_frame(problems.items, rows, raw, None if read.tabular else geoms, source_name)
    return ImportReport(accepted=accepted, rejects=rejects, warnings=notes, source=source_name,
                        layer=VILLAGES_LAYER, mode="append", read=n,
                        coords_declared=read.coords_declared)


def _merge_seats(new: gpd.GeoDataFrame, existing: gpd.GeoDataFrame | None, villages: pd.DataFrame | None,
                 *, replace: bool) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """The seats after this import, and the provisional codes the file replaces by real ones (old → new).

    The file's rows win over stored seats of the same code (or town and name); codes of villages already in
    the workspace (by town and name) are kept, provisional ones too, unless the file gives the real code."""
    known: dict[str, tuple[str, bool]] = {}
    frames = [villages] if villages is not None and len(villages) else []
    for vf in frames:
        prov = vf["provisional_code"] if "provisional_code" in vf.columns else pd.Series(False, index=vf.index)
        for c, nm, parent, p in zip(vf["code"].astype(str), vf["name"], vf["parent_code"].astype(str), prov,
                                    strict=True):
            if isinstance(nm, str):
                known[f"{parent}|{canonical_village_name(nm)}"] = (c, not pd.isna(p) and bool(p))
    new = new.copy()
    new["provisional_code"] = False
    changes: dict[str, str] = {}
    for i in new.index:
        town_code, village_name = str(new.at[i, "town_code"]), str(new.at[i, "name"])
        k = f"{town_code}|{village_name}"
        if k not in known:
            continue
        old_code, was_provisional = known[k]
        new_code = new.at[i, "code"]
        if not isinstance(new_code, str):
            new.at[i, "code"], new.at[i, "provisional_code"] = old_code, was_provisional
        elif was_provisional and new_code != old_code:
            changes[old_code] = new_code
    if replace or existing is None or not len(existing):
        return new.reset_index(drop=True), changes
    old = existing.copy()
    prov_codes = {c for c, p in known.values() if p}
    old["provisional_code"] = old["code"].astype(str).isin(prov_codes)
    old_key = old["town_code"].astype(str) + "|" + old["name"].astype(str)
    new_key = new["town_code"].astype(str) + "|" + new["name"].astype(str)
    gone = old["code"].astype(str).isin(set(new["code"].dropna().astype(str))) | old_key.isin(set(new_key))
    old = old[~gone]
    cols = ["code", "name", "town_code", "kind", "provisional_code"]
    old = old.reindex(columns=[*cols, "geometry"])
    return gpd.GeoDataFrame(pd.concat([old, new[[*cols, "geometry"]]], ignore_index=True), geometry="geometry",
                            crs=STORAGE_EPSG), changes


def _refuse_orphans(ws: Any, ctx: dict[str, Any], seats: gpd.GeoDataFrame, changes: Mapping[str, str], *,
                    source: str) -> None:
    """Refuse an import after which households or name aliases would point at villages that no longer exist
    (a replace that leaves villages out, a known village given another real code)."""
    villages = ctx["villages"]
    if villages is None or not len(villages):
        return
    derived = villages["derived"].fillna(False).astype(bool) if "derived" in villages.columns else \
        pd.Series(False, index=villages.index)
    kept = set(villages.loc[~derived, "code"].astype(str)) | set(seats["code"].dropna().astype(str))
    gone = {c: nm for c, nm in zip(villages.loc[derived, "code"].astype(str), villages.loc[derived, "name"],
                                   strict=True) if c not in kept and c not in changes}
    if not gone:
        return
    users: dict[str, list[str]] = {}
    v = CODE_LENGTH["village"]
    if ws.count("households"):
        hh = ws.read("households", columns=["village_code"])["village_code"]
        for c, k in hh[hh.isin(set(gone))].value_counts().items():
            users.setdefault(str(c), []).append(f"{k} 户")
    if ws.count("name_aliases"):
        al = ws.read("name_aliases", columns=["code"])["code"].astype(str).str.slice(0, v)
        for c, k in al[al.isin(set(gone))].value_counts().items():
            users.setdefault(str(c), []).append(f"{k} 个别名")
    if not users:
        return
    listed = "、".join(f"{gone[c]}（{c}，{'、'.join(u)}）" for c, u in list(users.items())[:10])
    more = f" 等 {len(users)} 个村" if len(users) > 10 else ""
    raise ValidationError(f"导入后这些村将不再存在，但仍有住户或别名指向它们：{listed}{more}。未导入任何数据",
                          file=source,
                          fix="把这些村也写进文件（--mode replace 的文件应包含全县所有的村），核对村的代码；"
                              "确需撤销的村，先把它的住户改到别的村（import … households --mode update）")


def _recode(codes: pd.Series, changes: Mapping[str, str]) -> pd.Series:
    """Village (12-digit) or group (15-digit) codes with their village part replaced per ``changes``."""
    v = CODE_LENGTH["village"]
    return pd.Series([changes[c[:v]] + c[v:] if isinstance(c, str) and c[:v] in changes else c for c in codes],
                     index=codes.index, dtype=object)


def _apply_code_changes(tx: Any, changes: Mapping[str, str]) -> dict[str, int]:
    """Replace provisional village codes by real ones wherever they are used: households (village and group
    codes), grids that follow a village code (15-digit ``code``/``grid_id``, ``source_codes``) and name aliases.
    Returns rows changed per table."""
    counts = {"households": 0, "grids": 0, "name_aliases": 0}
    v = CODE_LENGTH["village"]
    for old, new in changes.items():
        counts["households"] += tx.execute(
            "UPDATE households SET village_code = ?, version = COALESCE(version, 0) + 1 WHERE village_code = ?",
            (new, old)).rowcount
        tx.execute(f"UPDATE households SET group_code = ? || substr(group_code, {v + 1}) "
                   f"WHERE substr(group_code, 1, {v}) = ?", (new, old))
        counts["grids"] += tx.execute(
            f"UPDATE grids SET code = ? || substr(code, {v + 1}), grid_id = ? || substr(grid_id, {v + 1}), "
            f"version = COALESCE(version, 0) + 1 WHERE length(code) = {CODE_LENGTH['group']} "
            f"AND substr(code, 1, {v}) = ?", (new, new, old)).rowcount
        tx.execute("UPDATE grids SET source_codes = replace(source_codes, ?, ?) WHERE source_codes LIKE ?",
                   (old, new, f"%{old}%"))
        counts["name_aliases"] += tx.execute(
            f"UPDATE name_aliases SET code = ? || substr(code, {v + 1}) WHERE substr(code, 1, {v}) = ?",
            (new, old)).rowcount
    return counts


def _read_and_validate(ws: Any, path: Path, *, coords: str | None, encoding: str | None,
                       mapping: Mapping[str, str] | None, strict: bool, rejects_path: str | os.PathLike[str] | None,
                       layer_name: str | None, replace: bool = False) -> tuple[ImportReport, dict[str, str]]:
    """Read the file, validate it, refuse undeclared GCJ-02, write the rejects: the steps of every import."""
    from grids.ingest.datum import detect_gcj02_geoms as _detect_gcj02
    from grids.ingest.read import read_source

    table, digests = read_source(path, layer=layer_name, encoding=encoding, coords=coords, mapping=mapping)
    report = validate_villages(table, workspace=ws, source_name=path.name, replace=replace)
    report.strict = strict
    report.coords_declared = table.coords_declared
    declared = table.coords if table.coords_declared else None
    admin = ws.read("admin_units", columns=["code", "level"]) if ws.count("admin_units") else None
    if admin is not None:
        admin = admin[~(admin.geometry.isna() | admin.geometry.is_empty)]
    geoms = np.asarray(report.accepted.geometry.values, dtype=object)
    none = pd.Series([None] * len(geoms), dtype=object)
    report.datum = _detect_gcj02(geoms, admin, none, none, declared)
    report.refuse_suspect_datum()
    if rejects_path is not None and len(report.rejects):
        report.write_rejects(rejects_path)
    return report, digests


def import_villages(workspace: Any, file: str | os.PathLike[str], *, coords: str | None = None,
                    encoding: str | None = None, mapping: Mapping[str, str] | None = None, strict: bool = False,
                    rejects_path: str | os.PathLike[str] | None = None, actor: str = "cli",
                    account: Account | None = None, mode: str | None = None, layer_name: str | None = None,
                    max_shift_m: float = DEFAULT_MAX_SHIFT_M) -> ImportReport:
    """Import village seats and derive the village (town, group) territories, in one audited transaction.

    Parameters
    ----------
    workspace : Workspace
        The workspace to write to (it needs the county outline; towns with or without polygons).
    file : path
        Points (GeoJSON/GPKG/SHP/KML) or a table with 经度/纬度 (CSV/XLSX): one row per village with its name
        and/or code and its town (see :func:`validate_villages`).
    coords, encoding, mapping, strict, rejects_path, actor, account, layer_name
        As in :func:`grids.ingest.import_file`.
    mode : {'append', 'replace'}, optional
        ``append`` (default): the file's villages replace stored seats of the same code or town and name, other
        stored seats stay (a town at a time, or a rejects file after fixing, can be imported). ``replace``: the
        file is every seat of the county.
    max_shift_m : float
        See :func:`derive_villages`.

    Returns
    -------
    ImportReport
        ``layer`` ``villages``; ``read`` = ``imported`` + ``rejected``. Households left outside their
        village are in the warnings.

    Every derived unit (``derived`` true) is re-derived from all seats and the located households; real
    (imported, not derived) village polygons are kept and their area is not shared out.
    """
    if account is not None:
        account.require("import")
        actor = account.username
    mode = mode or "append"
    if mode not in ("append", "replace"):
        raise ValidationError(f"不认识的写入方式 “{mode}”", fix="可选 append（追加）或 replace（替换）")
    report, digests = _read_and_validate(workspace, Path(file), coords=coords, encoding=encoding, mapping=mapping,
                                         strict=strict, rejects_path=rejects_path, layer_name=layer_name,
                                         replace=mode == "replace")
    report.mode = mode
    if report.stop_before_writing(loses="删除现有的村"):  # replacing seats with only the good rows
        return report
    ctx = _workspace_context(workspace)
    existing = workspace.read("seats") if workspace.count("seats") else None
    accepted = cast(gpd.GeoDataFrame, report.accepted)  # seats are points: the report holds a GeoDataFrame
    seats, changes = _merge_seats(accepted, existing, ctx["villages"], replace=mode == "replace")
    _refuse_orphans(workspace, ctx, seats, changes, source=Path(file).name)
    note = {"file": Path(file).name, "sha256": digests.get(Path(file).name), "mode": mode,
            "coords": coords if coords is not None else "未声明（按 WGS84 读取）",
            "read": report.read, "imported": len(report.accepted), "rejected": report.rejected}
    result = _derive_and_write(workspace, ctx, seats, changes, actor=actor, max_shift_m=max_shift_m,
                               source=Path(file).name, note=note)
    report.warnings += result.warnings
    report.imported = len(report.accepted)
    report.written = True
    return report


def _derive_and_write(workspace: Any, ctx: dict[str, Any], seats: gpd.GeoDataFrame, changes: dict[str, str], *,
                      actor: str, max_shift_m: float, source: str, note: dict[str, Any]) -> Derivation:
    """Derive every derived unit from ``seats`` and the located households; write seats, units and code
    changes in one transaction (audit action ``导入``). The returned warnings include the households listed."""
    admin = ctx["admin"]
    derived = (admin["derived"].fillna(False).astype(bool) if admin is not None and "derived" in admin.columns
               else pd.Series(False, index=admin.index if admin is not None else []))
    real = None
    taken: set[str] = set()
    if admin is not None:
        kept = admin[~derived]
        real = kept[(kept["level"] == "village") & ~(kept.geometry.isna() | kept.geometry.is_empty)]
        taken = set(kept["code"].astype(str))
    hh = None
    named: dict[str, tuple[str, str]] = {}
    if workspace.count("households"):
        hh = workspace.read("households", columns=["hh_id", "village_code", "group_code", "group_name"])
        if changes:
            hh["village_code"], hh["group_code"] = _recode(hh["village_code"], changes), _recode(
                hh["group_code"], changes)
        hh["group_code"], named = _codes_from_group_names(hh)
    taken -= set(changes)
    issued = _issued_provisional(workspace, admin, seats)
    towns = ctx["towns"]
    if towns is not None:
        # every town keeps the name and code `init` wrote; only a real (not derived) polygon is a domain
        towns = towns.copy()
        if len(towns):
            towns.loc[derived.loc[towns.index].to_numpy(), "geometry"] = None
    result = derive_villages(seats, towns=towns, outline=ctx["outline"], households=hh, max_shift_m=max_shift_m,
                             streets=workspace.read("streets") if workspace.count("streets") else None,
                             real_villages=real, taken_codes=taken, issued=issued)
    if len(result.beyond):
        listed = "、".join(f"{r.hh_id}（{r.reason}）" for r in result.beyond.head(10).itertuples())
        more = f" 等 {len(result.beyond)} 户" if len(result.beyond) > 10 else ""
        result.warnings.append(f"未并入推算村界的住户：{listed}{more}")
    seats_out = result.seats.assign(source=source)
    units = result.units
    if admin is not None and "kind" in admin.columns:  # a re-derived town keeps its kind (镇/乡/苏木…)
        kinds = dict(zip(admin["code"].astype(str), admin["kind"], strict=True))
        at = (units["level"] == "town") & units["kind"].isna()
        units.loc[at, "kind"] = [kinds.get(c) for c in units.loc[at, "code"].astype(str)]
    with workspace.transaction(actor=actor, action="导入") as tx:
        tx.replace("seats", seats_out)
        tx.delete("admin_units", where="derived")  # portable: SQLite 0/1 and PostgreSQL boolean
        codes = units["code"].astype(str).tolist()
        for k in range(0, len(codes), 500):
            chunk = codes[k:k + 500]
            tx.delete("admin_units", where=f"code IN ({','.join('?' * len(chunk))})", params=chunk)
        tx.append("admin_units", units)
        lost = _towns_left_without_territory(admin, derived, units)
        if len(lost):  # a derived town whose villages are all gone keeps its name and code, without territory
            tx.append("admin_units", lost)
        placed = _group_codes_from_names(tx, units, named)
        if placed:
            tx.note("households", {"group_code_from_group_name": placed})
        if changes:
            counts = _apply_code_changes(tx, changes)
            tx.note("admin_units", {"code_changes": dict(changes), "rows_recoded": counts})
            result.warnings.append(f"{len(changes)} 个村的临时代码换成了正式代码（住户、网格编码随之更新）："
                                   + "、".join(f"{o} → {n}" for o, n in list(changes.items())[:10]))
        high = dict(issued)
        for c in units.loc[units["provisional_code"].astype(bool) & (units["level"] == "village"), "code"]:
            high[c[: CODE_LENGTH["town"]]] = max(high.get(c[: CODE_LENGTH["town"]], 0), int(c[-3:]))
        if high != issued:
            tx.execute(f"DELETE FROM {META_TABLE} WHERE key = ?", (ISSUED_META_KEY,))
            tx.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)",
                       (ISSUED_META_KEY, json.dumps(dict(sorted(high.items())))))
        tx.note("seats", note)
        tx.note("admin_units", {
            "derived": DERIVED_LABEL, "villages": int((units["level"] == "village").sum()),
            "provisional_codes": int(units["provisional_code"].sum()),
            "towns": int((units["level"] == "town").sum()), "groups": int((units["level"] == "group").sum()),
            "households_not_absorbed": len(result.beyond), "max_shift_m": max_shift_m})
    return result


def _issued_provisional(ws: Any, admin: gpd.GeoDataFrame | None, seats: gpd.GeoDataFrame) -> dict[str, int]:
    """Per town, the highest provisional suffix ever issued: the workspace's record (meta
    :data:`ISSUED_META_KEY`), the provisional codes in use now and the ``9xx`` village codes households and
    name aliases still point at (workspaces from before the record)."""
    try:
        high = {str(k): int(v) for k, v in json.loads(ws.meta.get(ISSUED_META_KEY) or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        high = {}
    codes: list[str] = []
    if admin is not None and "provisional_code" in admin.columns:
        codes += admin.loc[admin["provisional_code"].fillna(False).astype(bool), "code"].astype(str).tolist()
    if "provisional_code" in seats.columns:
        codes += seats.loc[seats["provisional_code"].fillna(False).astype(bool), "code"].astype(str).tolist()
    v = CODE_LENGTH["village"]
    for layer, col in (("households", "village_code"), ("name_aliases", "code")):
        if ws.count(layer):
            codes += [str(c)[:v] for c in ws.read(layer, columns=[col])[col].dropna().unique()]
    for c in codes:
        if len(c) == v and c.isdigit() and c[-3] == "9":
            high[c[: CODE_LENGTH["town"]]] = max(high.get(c[: CODE_LENGTH["town"]], 0), int(c[-3:]))
    return high


def _towns_left_without_territory(admin: gpd.GeoDataFrame | None, derived: pd.Series,
                                  units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The derived towns of ``admin`` that ``units`` no longer holds, as territory-less (NULL geometry,
    not derived) rows: names and codes are never lost to a derivation."""
    if admin is None or not len(admin):
        return gpd.GeoDataFrame(geometry=[], crs=STORAGE_EPSG)
    gone = admin[derived.to_numpy() & (admin["level"] == "town").to_numpy()
                 & ~admin["code"].astype(str).isin(set(units["code"].astype(str))).to_numpy()].copy()
    gone["derived"], gone["provisional_code"] = False, False
    return gpd.GeoDataFrame(gone.drop(columns="geometry"), geometry=np.full(len(gone), None, dtype=object),
                            crs=admin.crs)


def _codes_from_group_names(hh: pd.DataFrame) -> tuple[pd.Series, dict[str, tuple[str, str]]]:
    """Group codes for the derivation: the stored ``group_code``, else village code + the number of the register's
    group name (``'3组'`` → ``…003``; ``households.group_name``, kept by name imports while a village has no group
    units). Returns the codes and, per code made from a name, its (village code, group name)."""
    from grids.names import group_key

    codes = hh["group_code"].astype(object).where(hh["group_code"].notna(), None)
    named: dict[str, tuple[str, str]] = {}
    if "group_name" not in hh.columns:
        return codes, named
    out = codes.to_numpy(dtype=object).copy()
    for i, (v, g, gn) in enumerate(zip(hh["village_code"], codes, hh["group_name"], strict=True)):
        if g is not None or not isinstance(v, str) or len(v) != CODE_LENGTH["village"] or not isinstance(gn, str):
            continue
        key = group_key(gn)
        if key.isdigit() and 0 < int(key) < 1000:
            out[i] = f"{v}{int(key):03d}"
            named[out[i]] = (v, gn)
    return pd.Series(out, index=hh.index, dtype=object), named


def _group_codes_from_names(tx: Any, units: gpd.GeoDataFrame, named: Mapping[str, tuple[str, str]]) -> int:
    """Households known by group NAME whose group now has a derived polygon get its code (``group_code``)."""
    made = set(units.loc[units["level"] == "group", "code"].astype(str)) & set(named)
    n = 0
    for code in sorted(made):
        village, name = named[code]
        n += tx.execute("UPDATE households SET group_code = ?, version = COALESCE(version, 0) + 1 "
                        "WHERE village_code = ? AND group_name = ? AND group_code IS NULL",
                        (code, village, name)).rowcount
    return n


def rederive_villages(workspace: Any, *, account: Account | None = None, actor: str = "cli",
                      max_shift_m: float = DEFAULT_MAX_SHIFT_M) -> Derivation:
    """Derive the derived units again from the stored seats and the households located since.

    Run after a household register with GPS points arrives: villages take in their located households and
    groups with enough located households get polygons (the rule of :func:`derive_villages`). One audited
    transaction (action ``导入``, detail ``重新推算``); real boundaries are left as they are.

    Raises
    ------
    ValidationError
        The workspace has no seats (import them first with ``import PATH villages FILE``).
    """
    if account is not None:
        account.require("import")
        actor = account.username
    if not workspace.count("seats"):
        raise ValidationError("工作区没有村委会位置，无法推算村界",
                              fix="先导入村委会位置：`python -m grids import 工作区 villages 文件 --user 用户名`")
    ctx = _workspace_context(workspace)
    seats = workspace.read("seats")
    villages = ctx["villages"]
    prov: set[str] = set()
    if villages is not None and "provisional_code" in villages.columns:
        flags = [not pd.isna(v) and bool(v) for v in villages["provisional_code"]]
        prov = set(villages["code"].astype(str)[flags])
    seats = seats.assign(provisional_code=seats["code"].astype(str).isin(prov))
    source = str(seats["source"].dropna().iloc[0]) if "source" in seats.columns and seats["source"].notna().any() \
        else "seats"
    return _derive_and_write(workspace, ctx, seats, {}, actor=actor, max_shift_m=max_shift_m, source=source,
                             note={"op": "重新推算", "seats": len(seats)})
