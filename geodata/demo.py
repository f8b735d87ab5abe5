"""The demo county: a synthetic but realistic 巴林左旗 (or any county outline) as a complete workspace.

Every administrative level is built by *splitting its parent*: the county is cut into small Voronoi cells
(clipped to the outline), cells are grown into towns from the town seats (Dijkstra over the cell adjacency
graph with noisy edge lengths, so boundaries are irregular but every unit is connected), towns into villages
and villages into villager groups the same way; each polygon is the union of its cells, so the children tile
the parent exactly. The seat's urban area is cut out first and split the same way into 2 街道 and their 社区.

Households, credit records and visits follow the seed cooperative's funnel exactly (scaled when another
household count is asked for): see :data:`FUNNEL` and :data:`TOTALS`.

Examples
--------
>>> funnel_targets(110_000)["granted"], funnel_targets(110_000)["granted_amount"]
(52195, 7811000000)
>>> funnel_targets(11_000)["archived"]
8479
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import shapely.affinity
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import Delaunay, cKDTree

from geodata import demo_events
from geodata import names as nm
from grids import cardkey, loans
from grids.crs import gdf_gcj02_to_wgs84, gk_crs_for, match_datum, require_in_china
from grids.errors import ValidationError, WorkspaceError
from grids.landmass import FERRY_CLASS
from grids.model import STORAGE_EPSG
from grids.products import (
    band,
    grades,
    guarantee_above,
    job_band,
    job_levels,
    product_for_segment,
    qualifying_guarantees,
)

OUTLINES = Path(__file__).resolve().parent / "outlines"
DEFAULT_OUTLINE = OUTLINES / "chifeng_counties_gcj02.geojson"
DEFAULT_CODE = "150422"
DEFAULT_HOUSEHOLDS = 110_000
DEFAULT_SEED = 1504

FUNNEL: dict[str, int] = {
    "archived": 84_792, "eligible": 53_054, "granted": 52_195, "signed": 26_029, "using": 20_210,
}
"""The seed cooperative's household funnel at :data:`DEFAULT_HOUSEHOLDS` registered households."""
TOTALS: dict[str, int] = {
    "granted_amount": 7_811_000_000, "available_amount": 3_270_000_000, "balance": 2_153_000_000,
}
"""Amount totals (yuan) of the funnel: granted lines, available (signed) lines, balances in use."""

COORDS = ("wgs84", "gcj02", "cgcs2000")
LAYER_NAMES = ("admin_units", "urban_areas", "streets", "branches", "staff", "households", "visits", "loan_totals")

# real 巴林左旗 extent (WGS84): relative seat positions for other outlines come from here
_REAL_BOUNDS = (118.732, 43.6075, 119.808, 44.7825)
_REAL_AREA_KM2 = 6466.0
_N_RURAL_VILLAGES = 190
_N_COMMUNITIES = 12
_URBAN_SHARE = 0.31
_NO_POINT_SHARE = 0.03
_MIN_VILLAGE_CELLS = 12  # a village smaller than this (in cells) is grown again from another seed
_GROUP_CAP = 135  # most households in one rural villager group (组)
_BLOCK_CAP = 140  # most households in one urban street block
_VISIT_START, _VISIT_END = np.datetime64("2017-01-01"), np.datetime64("2019-09-30")


# --------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------


def funnel_targets(households: int = DEFAULT_HOUSEHOLDS) -> dict[str, int]:
    """Funnel counts and amount totals for ``households`` registered households.

    The seed figures (:data:`FUNNEL`, :data:`TOTALS`) hold exactly at 110,000; other sizes scale them
    proportionally, rounded to the nearest household and yuan.
    """
    f = households / DEFAULT_HOUSEHOLDS
    out = {k: round(v * f) for k, v in FUNNEL.items()}
    out.update({k: round(v * f) for k, v in TOTALS.items()})
    out["households"] = int(households)
    return out


def reference_outline(county: str) -> gpd.GeoDataFrame | None:
    """The shipped outline (:data:`DEFAULT_OUTLINE`, Chifeng) of a county, by code or name, converted from GCJ-02
    to EPSG:4490; None when no outline of that county is shipped.

    Examples
    --------
    >>> reference_outline("150423").loc[0, "name"], reference_outline("110101") is None
    ('巴林右旗', True)
    """
    shipped = _shipped()
    sel = (shipped["code"] == str(county)) | (shipped["name"] == str(county))
    if not sel.any():
        return None
    return gdf_gcj02_to_wgs84(shipped[sel].reset_index(drop=True)[["code", "name", "geometry"]])


@functools.lru_cache(maxsize=1)
def _shipped() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(DEFAULT_OUTLINE)
    gdf["code"] = gdf["code"].astype(str)
    return gdf


def load_outline(path: str | os.PathLike | None = None, *, county: str | None = None,
                 coords: str | None = None) -> gpd.GeoDataFrame:
    """Read a county outline as a one-row GeoDataFrame (``code``, ``name``, geometry) in EPSG:4490.

    The file's coordinates are checked before anything is built on them:

    - after reprojection from the file's CRS (``.prj``) they must lie in China (:func:`grids.crs.require_in_china`);
    - lon/lat outlines of a county with a shipped outline (:func:`reference_outline`: the 12 Chifeng counties)
      are compared with it (:func:`grids.crs.match_datum`): a GCJ-02 file (Amap and the maps copied from it,
      ≈ 500 m off) must be declared ``coords="gcj02"``, a WGS84/CGCS2000 one must not be declared GCJ-02;
      without ``coords`` the datum found is used;
    - a lon/lat outline of any other county needs ``coords`` (nothing to compare it with).

    Parameters
    ----------
    path : path, optional
        GeoJSON, GeoPackage or Shapefile. Default: the bundled Chifeng outlines (GCJ-02), county 150422.
    county : str, optional
        Pick the feature whose ``code`` or ``name`` equals this; otherwise a one-feature file is taken as is
        and several features are dissolved into one outline. Also names the county whose shipped outline the
        file is compared with (else the file's own ``code``/``name``).
    coords : {"wgs84", "gcj02", "cgcs2000"}, optional
        Coordinates of a lon/lat file (ignored for projected files, whose ``.prj`` says it); see above.

    Returns
    -------
    GeoDataFrame
        ``attrs["coords"]`` is the datum used, ``attrs["datum_check"]`` a sentence on how it was decided.

    Raises
    ------
    ValidationError
        Unreadable file, no polygons, no CRS, outside China, undeclared or wrongly declared GCJ-02, or no
        ``coords`` where nothing can tell.

    Examples
    --------
    >>> g = load_outline()
    >>> g.loc[0, "code"], g.loc[0, "name"], g.crs.to_epsg(), g.attrs["coords"]
    ('150422', '巴林左旗', 4490, 'gcj02')
    """
    bundled = path is None
    if bundled:
        path = DEFAULT_OUTLINE
        county = DEFAULT_CODE if county is None else county
    declared = (coords or ("gcj02" if bundled else "")).lower() or None
    if declared is not None and declared not in COORDS:
        raise ValidationError(f"坐标系 “{coords}” 无法识别", fix=f"可用：{'、'.join(COORDS)}")
    assert path is not None  # the bundled outline when none is given
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"找不到县界文件 {path}", fix="检查路径；支持 GeoJSON、GeoPackage、Shapefile")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise ValidationError(f"无法读取县界文件：{exc}", file=str(path),
                              fix="提供 GeoJSON、GeoPackage 或 Shapefile 格式的面图层") from exc
    if not isinstance(gdf, gpd.GeoDataFrame):  # pyogrio reads a table without geometry as a DataFrame
        raise ValidationError("县界文件没有几何图形（这是一个表格，不是面图层）", file=path.name,
                              fix="提供 GeoJSON、GeoPackage 或 Shapefile 格式的县界面图层")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    polygonal = gdf.geom_type.isin(["Polygon", "MultiPolygon"])
    if not len(gdf) or not polygonal.all():
        raise ValidationError("县界文件必须只包含面（Polygon/MultiPolygon）要素", file=str(path),
                              fix="导出县界的面图层，而不是线或点")
    if gdf.crs is None:
        raise ValidationError("县界文件没有坐标参考系", file=str(path), fix="用 QGIS 为文件设定坐标系（如 EPSG:4326）")
    if county is not None:
        ref = reference_outline(county)
        wanted = {str(county)} | (set(ref.loc[0, ["code", "name"]]) if ref is not None else set())
        sel = pd.Series(False, index=gdf.index)
        for col in ("code", "name"):
            if col in gdf.columns:
                sel |= gdf[col].astype(str).isin(wanted)
        if sel.any():
            gdf = gdf[sel]
        elif len(gdf) > 1:  # one feature is the county the caller names (compared with its outline below)
            choices = "、".join(gdf.get("name", gdf.get("code", pd.Series(dtype=str))).astype(str).head(20))
            raise ValidationError(f"县界文件中没有 “{county}”", file=str(path), fix=f"可选：{choices}")
    require_in_china(gdf, file=str(path), what="县界文件")
    assert gdf.crs is not None  # checked above
    projected = not gdf.crs.is_geographic
    gdf = gdf.to_crs(STORAGE_EPSG) if projected or not gdf.crs.equals("EPSG:4326") else gdf
    gdf = gdf.set_crs(STORAGE_EPSG, allow_override=True)
    code = str(gdf["code"].iloc[0]) if "code" in gdf.columns and len(gdf) == 1 else None
    name = str(gdf["name"].iloc[0]) if "name" in gdf.columns and len(gdf) == 1 else None
    geom = _polygonal(shapely.make_valid(shapely.union_all(gdf.geometry.values)))
    coords, how = _decide_coords(geom, declared=declared, projected=projected, file=str(path),
                                 county=next((c for c in (county, code, name) if c), None))
    if coords == "gcj02":
        geom = _polygonal(shapely.make_valid(gdf_gcj02_to_wgs84(
            gpd.GeoDataFrame(geometry=[geom], crs=STORAGE_EPSG)).geometry.iloc[0]))
    out = gpd.GeoDataFrame({"code": [code], "name": [name]}, geometry=[geom], crs=STORAGE_EPSG)
    out.attrs.update(coords=coords, datum_check=how)
    return out


def _decide_coords(geom, *, declared: str | None, projected: bool, file: str,
                   county: str | None) -> tuple[str, str]:
    """The datum of a county outline's lon/lat (see :func:`load_outline`) and a sentence saying why."""
    ref = reference_outline(county) if county else None
    if ref is None:
        if declared is not None:
            return declared, f"坐标按声明的 {declared} 处理（没有该旗县的参考县界可比对）"
        if projected:
            return "cgcs2000", "投影坐标，按文件的坐标系（.prj）换算"
        raise ValidationError(
            f"无法判断县界的经纬度是 WGS84/CGCS2000 还是 GCJ-02（高德等网络地图）：geodata/outlines 中没有旗县 "
            f"“{county or '（文件未写代码或名称）'}” 的参考县界可比对", file=file,
            fix="加 --coords 声明坐标系：从高德等网络地图取得的用 --coords gcj02，GPS/天地图/测绘成果用 --coords "
                "wgs84 或 --coords cgcs2000")
    m: dict[str, Any] = match_datum(geom, ref.geometry.iloc[0])
    if m["overlap"] < 0.5:
        raise ValidationError(
            f"这不是 {ref.loc[0, 'name']!s}（{ref.loc[0, 'code']!s}）的县界：与 geodata/outlines 中的县界只重叠 "
            f"{m['overlap']:.0%}", file=file, fix="检查 --county 的代码和县界文件是否对应同一个旗县")
    figures = (f"与 geodata/outlines 中 {ref.loc[0, 'name']!s}（{ref.loc[0, 'code']!s}）的县界相比，按 WGS84 读相差 "
               f"{m['off_wgs84_m']:.0f} 米，按 GCJ-02 转换后相差 {m['off_gcj02_m']:.0f} 米")
    if m["datum"] == "gcj02" and declared != "gcj02":
        said = f"声明为 {declared}" if declared else "未声明坐标系"
        raise ValidationError(f"县界文件的坐标是 GCJ-02（高德等网络地图的加偏坐标），但{said}：{figures}", file=file,
                              fix="加 --coords gcj02（转换为 CGCS2000 后再用）")
    if m["datum"] == "wgs84" and declared == "gcj02":
        raise ValidationError(f"县界文件的坐标是 WGS84/CGCS2000，不是 GCJ-02：{figures}", file=file,
                              fix="去掉 --coords gcj02（或改为 --coords wgs84）")
    if m["datum"] != "unknown":
        return m["datum"], f"坐标系 {m['datum']}：{figures}"
    if declared is not None:
        return declared, f"坐标按声明的 {declared} 处理（与参考县界差别太大，无法比对：重叠 {m['overlap']:.0%}）"
    if projected:
        return "cgcs2000", "投影坐标，按文件的坐标系（.prj）换算"
    raise ValidationError(
        f"县界与 geodata/outlines 中 {ref.loc[0, 'name']!s}（{ref.loc[0, 'code']!s}）的县界差别太大（重叠 "
        f"{m['overlap']:.0%}），无法判断坐标是 WGS84/CGCS2000 还是 GCJ-02", file=file,
        fix="检查是否选对了旗县（--county）；确认无误时加 --coords wgs84、cgcs2000 或 gcj02 声明坐标系")


def load_lines(path: str | os.PathLike, *, coords: str | None = None) -> gpd.GeoDataFrame:
    """Read a line layer (ferry routes) as a GeoDataFrame in EPSG:4490 (``coords`` as in :func:`load_outline`,
    default ``wgs84``)."""
    coords = (coords or "wgs84").lower()
    if coords not in COORDS:
        raise ValidationError(f"坐标系 “{coords}” 无法识别", fix=f"可用：{'、'.join(COORDS)}")
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"找不到航线文件 {path}", fix="检查路径；支持 GeoJSON、GeoPackage、Shapefile")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise ValidationError(f"无法读取航线文件：{exc}", file=str(path),
                              fix="提供 GeoJSON、GeoPackage 或 Shapefile 格式的线图层") from exc
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if not gdf.geom_type.isin(["LineString", "MultiLineString"]).all():
        raise ValidationError("航线文件必须只包含线（LineString）要素", file=str(path), fix="导出航线的线图层")
    if gdf.crs is None:
        raise ValidationError("航线文件没有坐标参考系", file=str(path), fix="用 QGIS 为文件设定坐标系（如 EPSG:4326）")
    if gdf.crs.is_projected:
        gdf = gdf.to_crs(STORAGE_EPSG)
    elif coords == "gcj02":
        gdf = gdf_gcj02_to_wgs84(gdf)
    return gdf.set_crs(STORAGE_EPSG, allow_override=True).reset_index(drop=True)


def generate(*, outline: gpd.GeoDataFrame | None = None, households: int = DEFAULT_HOUSEHOLDS,
             seed: int = DEFAULT_SEED, ferries: gpd.GeoDataFrame | None = None,
             ) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Generate a complete demo county.

    Parameters
    ----------
    outline : GeoDataFrame, optional
        The county outline (any CRS; several rows are dissolved; ``code``/``name`` columns are used when
        present). Default: 巴林左旗 from the bundled outlines (:func:`load_outline`).
    households : int
        Registered households (default 110,000, the seed cooperative's county).
    seed : int
        Random seed; the same seed gives the same county.
    ferries : GeoDataFrame, optional
        Ferry lines between parts of the outline (any CRS; ``name`` used when present), e.g.
        :func:`geodata.outlines_synth.synthetic_ferries`. They join the ``streets`` layer with
        ``class = 'ferry'``; a line is left out when it would join parts that share a town (a unit would then
        lie in pieces on one landmass, see :mod:`grids.landmass`) or when it crosses the urban area.

    Returns
    -------
    dict
        Layer name → frame, for the layers ``admin_units``, ``urban_areas``, ``streets``, ``branches``,
        ``staff``, ``households``, ``visits`` (geometries in EPSG:4490).
    """
    if households < 100:
        raise ValidationError(f"户数 {households} 太少", fix="演示旗县至少需要 100 户")
    if outline is None:
        outline = load_outline()
    if outline.crs is None:
        raise ValidationError("县界没有坐标参考系", fix="先 set_crs，例如 EPSG:4490")
    outline = outline.to_crs(STORAGE_EPSG)
    code = str(outline["code"].iloc[0]) if "code" in outline.columns else ""
    name = str(outline["name"].iloc[0]) if "name" in outline.columns else ""
    code = code if len(code) == 6 and code.isdigit() else "990100"
    name = name if name and name not in ("None", "nan") else "示范旗"
    if ferries is not None and len(ferries) and ferries.crs is None:
        raise ValidationError("渡口航线没有坐标参考系", fix="先 set_crs，例如 EPSG:4490")
    return _Builder(outline, code=code, name=name, households=int(households), seed=int(seed),
                    ferries=ferries).run()


def write_demo(path: str | os.PathLike, *, outline: gpd.GeoDataFrame | None = None,
               households: int = DEFAULT_HOUSEHOLDS, seed: int = DEFAULT_SEED,
               ferries: gpd.GeoDataFrame | None = None, overwrite: bool = False):
    """Generate the demo county and write it as a workspace at ``path``.

    ``ferries`` as in :func:`generate`. The workspace is built in a temporary file next to ``path`` (one transaction writing every layer) and
    moved into place only when complete, so ``path`` never holds a half-written county.

    Returns
    -------
    grids.workspace.GpkgWorkspace
    """
    from grids.progress import AS_OF_KEY
    from grids.workspace import GpkgWorkspace
    from grids.workspace.base import META_TABLE

    path = Path(path)
    if path.exists() and not overwrite:
        raise WorkspaceError(f"{path} 已存在。修正方法：换一个文件名，或加 --force 覆盖")
    layers = generate(outline=outline, households=households, seed=seed, ferries=ferries)
    county = layers["admin_units"].query("level == 'county'").iloc[0]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.building")
    known = cardkey.external_key(path)  # the card key: an environment key or the sidecar already there, else new
    key = known.hex if known is not None else cardkey.new_key()
    try:
        ws = GpkgWorkspace.create(tmp, county_code=county["code"], county_name=county["name"], demo=True,
                              overwrite=True)
        with ws.transaction(actor="demo", action="生成演示旗县") as tx:
            for layer in LAYER_NAMES:
                tx.replace(layer, layers[layer])
            demo_events.write_events(tx, layers["households"], layers["branches"], seed=seed, key=key)  # 签约/用信
            cardkey.record_check(tx, key, known=True)  # a wrong key is refused later, never silently used
            # the demo reads as of the last day of its data (the 联社's account, 2019-09-30): progress windows end there
            tx.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)", (AS_OF_KEY, str(_VISIT_END)))
        os.replace(tmp, path)
        if known is None:
            cardkey.write_key_file(path.with_name(path.name + cardkey.SIDECAR_SUFFIX), key, overwrite=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return GpkgWorkspace(path)


def visits_to_plan_staff(ws, plan_id: str, *, actor: str = "demo") -> int:
    """Credit the demo's historic visits to the customer managers of plan ``plan_id``'s grids.

    The generator gives each village's visits to a manager of the nearest branch; once a plan is assigned,
    the demo reads as if that plan had been in place all along: every visit of a household in a staffed
    grid goes to that grid's manager (visits of households in no grid, or in a grid without a manager, keep
    their visitor). One audited change; returns the number of visits whose visitor changed.
    """
    from grids import plans
    from grids.coverage import locate_in_workspace

    grids = plans.read_grids(ws, plan_id)
    located = locate_in_workspace(ws, grids, households=ws.read("households", columns=[
        "hh_id", "village_code", "group_code"]))
    staffed = located.dropna(subset=["staff_id"])
    staff_of = pd.Series(staffed["staff_id"].to_numpy(), index=staffed["hh_id"].to_numpy())
    visits = ws.read("visits")
    new = visits["hh_id"].map(staff_of)
    changed = new.notna() & (new != visits["staff_id"])
    if not changed.any():
        return 0
    visits["staff_id"] = new.where(new.notna(), visits["staff_id"])
    with ws.transaction(actor=actor, action="演示：历史走访记到方案的客户经理") as tx:
        tx.replace("visits", visits)
    return int(changed.sum())


# --------------------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------------------


def _polygonal(geom):
    """Only the polygonal parts of ``geom`` (a Polygon or MultiPolygon)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _sample_in(rng: np.random.Generator, geom, n: int) -> np.ndarray:
    """``n`` uniform random points (x, y) inside ``geom`` (rejection sampling in its bounds)."""
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    share = max(geom.area / ((maxx - minx) * (maxy - miny)), 0.02)
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        m = int((n - have) / share * 1.2) + 16
        xy = np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])
        xy = xy[shapely.contains_xy(geom, xy[:, 0], xy[:, 1])]
        out.append(xy)
        have += len(xy)
    return np.concatenate(out)[:n]


def _cells(rng: np.random.Generator, domain, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``domain`` into about ``n`` cells; returns (points, cells, graph edges i, j, length).

    Voronoi cells of random points, clipped to ``domain``. Where a jagged border or a hole cuts a cell in
    pieces, every piece is a cell of its own (its point on its surface), and two cells are neighbours only
    where they share a border of positive length, so a set of cells connected in the graph is one polygon.
    """
    pts = _sample_in(rng, domain, n)
    # every part of a multi-part domain (islands) gets cells of its own
    extra = []
    for part in shapely.get_parts(domain):
        if not shapely.contains_xy(part, pts[:, 0], pts[:, 1]).any():
            k = max(3, int(n * part.area / domain.area))
            extra.append(_sample_in(rng, part, k))
    if extra:
        pts = np.concatenate([pts, *extra])
    minx, miny, maxx, maxy = domain.bounds
    pad = max(maxx - minx, maxy - miny)
    vor = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=shapely.box(
        minx - pad, miny - pad, maxx + pad, maxy + pad), ordered=True)
    cells = shapely.get_parts(vor)
    shapely.prepare(domain)
    inside = shapely.contains_properly(domain, cells)
    clipped = cells.copy()
    clipped[~inside] = shapely.intersection(cells[~inside], domain)
    # pieces: an inside cell is one; a clipped cell has as many as the domain cuts it into (maybe none)
    parts, owner = shapely.get_parts(clipped, return_index=True)
    poly = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, owner = parts[poly], owner[poly]
    ppts = pts[owner]
    own = shapely.contains_xy(parts, ppts[:, 0], ppts[:, 1])
    if (~own).any():
        ppts[~own] = shapely.get_coordinates(shapely.point_on_surface(parts[~own]))
    count = np.bincount(owner, minlength=len(pts))
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    whole = inside & (count == 1)  # the cell as Voronoi made it: its neighbours are its Delaunay neighbours
    tri = Delaunay(pts)
    s = tri.simplices
    e = np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    both = whole[e[:, 0]] & whole[e[:, 1]]
    pairs = [np.column_stack([start[e[both, 0]], start[e[both, 1]]])]
    # elsewhere, pieces of Delaunay neighbours that share a border (pieces of one cell never do)
    cut = e[~both & (count[e[:, 0]] > 0) & (count[e[:, 1]] > 0)]
    if len(cut):
        na, nb = count[cut[:, 0]], count[cut[:, 1]]
        k = na * nb
        rep = np.repeat(np.arange(len(cut)), k)
        off = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
        a = start[cut[rep, 0]] + off // nb[rep]
        b = start[cut[rep, 1]] + off % nb[rep]
        touch = shapely.length(shapely.intersection(parts[a], parts[b])) > 1e-3
        pairs.append(np.column_stack([a[touch], b[touch]]))
    pe = np.concatenate(pairs)
    length = np.hypot(*(ppts[pe[:, 0]] - ppts[pe[:, 1]]).T)
    return ppts, parts, np.column_stack([pe, length])


def _field(rng: np.random.Generator, xy: np.ndarray, wavelength: float, *, waves: int = 10) -> np.ndarray:
    """A smooth random field at the points ``xy`` (unit variance, features about ``wavelength`` across)."""
    out = np.zeros(len(xy))
    for _ in range(waves):
        a = rng.uniform(0, np.pi)
        k = 2 * np.pi / (wavelength * rng.uniform(0.6, 1.6))
        out += np.cos(k * (xy[:, 0] * np.cos(a) + xy[:, 1] * np.sin(a)) + rng.uniform(0, 2 * np.pi))
    return out * np.sqrt(2.0 / waves)


def _grow(rng: np.random.Generator, pts: np.ndarray, edges: np.ndarray, members: np.ndarray,
          seeds: np.ndarray, *, noise: float = 0.35, wave: float | None = None,
          wave_amp: float = 0.6) -> np.ndarray:
    """Split the cells ``members`` into regions grown from ``seeds`` (cell indices, subset of members).

    Dijkstra over the cell graph restricted to ``members`` with noisy edge lengths (independent noise per edge,
    times a smooth field of features ``wave`` metres across that bends the borders); each region is connected.
    Cells not reachable (islands) join the region of the nearest reached cell. Returns the region number
    (index into ``seeds``) of each member.
    """
    local = np.full(len(pts), -1)
    local[members] = np.arange(len(members))
    i, j = local[edges[:, 0].astype(int)], local[edges[:, 1].astype(int)]
    ok = (i >= 0) & (j >= 0)
    w = edges[ok, 2] * np.exp(rng.normal(0.0, noise, ok.sum()))
    if wave:
        e = edges[ok, :2].astype(int)
        w = w * np.exp(wave_amp * _field(rng, (pts[e[:, 0]] + pts[e[:, 1]]) / 2, wave))
    m = len(members)
    graph = coo_matrix((w, (i[ok], j[ok])), shape=(m, m)).tocsr()
    seed_local = local[seeds]
    _, _, src = dijkstra(graph, directed=False, indices=seed_local, min_only=True, return_predecessors=True)
    region = np.full(m, -1)
    order = np.full(m, -1)
    order[seed_local] = np.arange(len(seeds))
    reached = src >= 0
    region[reached] = order[src[reached]]
    if (~reached).any():  # islands: each unreached component joins the region nearest to it, whole
        _, comp = connected_components(graph, directed=False)
        tree = cKDTree(pts[members][reached])
        dist, k = cast(tuple[np.ndarray, np.ndarray], tree.query(pts[members][~reached]))
        lost = np.flatnonzero(~reached)
        for c in np.unique(comp[lost]):
            sel = comp[lost] == c
            region[lost[sel]] = region[reached][k[sel][np.argmin(dist[sel])]]
    return region


def _spread_seeds(rng: np.random.Generator, xy: np.ndarray, k: int, *, first: int | None = None) -> np.ndarray:
    """``k`` distinct indices of well-spread points of ``xy`` (farthest-point start, then Lloyd steps)."""
    n = len(xy)
    k = min(k, n)
    chosen = [int(rng.integers(n)) if first is None else int(first)]
    d = np.hypot(*(xy - xy[chosen[0]]).T)
    for _ in range(k - 1):
        nxt = int(np.argmax(d * rng.uniform(0.8, 1.0, n)))
        chosen.append(nxt)
        d = np.minimum(d, np.hypot(*(xy - xy[nxt]).T))
    centres = xy[chosen].astype(float)
    for _ in range(4):
        lab = cKDTree(centres).query(xy)[1]
        for c in range(k):
            if first is not None and c == 0:
                continue
            sel = lab == c
            if sel.any():
                centres[c] = xy[sel].mean(axis=0)
    tree = cKDTree(xy)
    out: list[int] = []
    for c in centres:
        for cand in np.atleast_1d(tree.query(c, k=min(n, 8 + len(out)))[1]):
            if int(cand) not in out:
                out.append(int(cand))
                break
    if first is not None:
        out[0] = int(first)
        out = list(dict.fromkeys(out))
    while len(out) < k:
        cand = int(rng.integers(n))
        if cand not in out:
            out.append(cand)
    return np.asarray(out[:k])


def _dissolve(geoms: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Union of ``geoms`` per label ``0 … n-1``."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n + 1))
    out = np.empty(n, dtype=object)
    for k in range(n):
        part = geoms[order[bounds[k]:bounds[k + 1]]]
        out[k] = _polygonal(shapely.union_all(part)) if len(part) > 1 else part[0]
    return out


def _smooth_noise(rng: np.random.Generator, theta: np.ndarray, *, terms: int = 5) -> np.ndarray:
    """A smooth periodic random function of the angle ``theta``, roughly in [-1, 1]."""
    out = np.zeros_like(theta)
    for k in range(1, terms + 1):
        out += rng.normal(0, 1.0 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return out / 1.6


# --------------------------------------------------------------------------------------------------------
# amounts
# --------------------------------------------------------------------------------------------------------


def _capped_counts(weights: np.ndarray, total: int, *, cap: float) -> np.ndarray:
    """Integers summing to ``total`` in proportion to ``weights``, none above ``cap`` (water-filling).

    The cap is raised when ``total`` does not fit (to 1.25 times the mean of the weighted entries).

    Examples
    --------
    >>> _capped_counts(np.array([8.0, 1, 1]), 100, cap=50).tolist()
    [50, 25, 25]
    """
    w = np.asarray(weights, dtype=float)
    pos = w > 0
    if not pos.any() or total <= 0:
        return np.zeros(len(w), dtype=np.int64)
    cap = max(float(cap), 1.25 * total / pos.sum())
    e = np.zeros(len(w))
    capped = np.zeros(len(w), dtype=bool)
    for _ in range(len(w)):
        free = pos & ~capped
        e[free] = w[free] / w[free].sum() * (total - cap * capped.sum())
        over = free & (e > cap)
        if not over.any():
            break
        capped |= over
        e[capped] = cap
    out = np.floor(e).astype(np.int64)
    rest = int(total - out.sum())
    if rest > 0:  # largest remainders (never on a capped entry: its remainder is 0 or it is at cap)
        frac = np.where(pos & (out + 1 <= cap), e - out, -1.0)
        out[np.argsort(-frac, kind="stable")[:rest]] += 1
    return out


def _fit_total(rng: np.random.Generator, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: int,
               *, step: int = 100) -> np.ndarray:
    """Adjust ``x`` within ``[lo, hi]`` so that it sums exactly to ``target``; amounts multiples of ``step``
    (one amount takes the remainder when ``target`` is not a multiple of ``step``)."""
    lo_s = np.ceil(lo / step) * step
    hi_s = np.floor(hi / step) * step
    if lo_s.sum() > target or hi_s.sum() < target:
        raise ValueError(f"cannot reach {target} within the bands ({lo_s.sum():.0f} … {hi_s.sum():.0f})")
    x = np.clip(x.astype(float), lo_s, hi_s)
    for _ in range(60):
        s = x.sum()
        if abs(s - target) < step * 0.5:
            break
        free = x > lo_s if s > target else x < hi_s
        fs = x[free].sum()
        x[free] = np.clip(x[free] * (target - (s - fs)) / fs, lo_s[free], hi_s[free])
    x = np.clip(np.round(x / step) * step, lo_s, hi_s).astype(np.int64)
    lo_i, hi_i = lo_s.astype(np.int64), hi_s.astype(np.int64)
    r = int(target - x.sum())
    while abs(r) >= step:
        sign = 1 if r > 0 else -1
        cand = np.flatnonzero(x + step <= hi_i) if sign > 0 else np.flatnonzero(x - step >= lo_i)
        pick = rng.choice(cand, min(abs(r) // step, len(cand)), replace=False)
        x[pick] += sign * step
        r -= sign * step * len(pick)
    if r:
        cand = np.flatnonzero((x + r <= hi) & (x + r >= lo))
        x[cand[0]] += r
    return x


# --------------------------------------------------------------------------------------------------------
# the builder
# --------------------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, outline: gpd.GeoDataFrame, *, code: str, name: str, households: int, seed: int,
                 ferries: gpd.GeoDataFrame | None = None):
        self.code, self.name, self.n_hh, self.seed = code, name, households, seed
        self.real = code == DEFAULT_CODE
        self.outline_geo = _polygonal(shapely.make_valid(shapely.union_all(outline.geometry.values)))
        if self.outline_geo.is_empty:
            raise ValidationError("县界是空的", fix="检查县界文件是否包含面要素")
        self.epsg = gk_crs_for(outline)
        self.to_gk = pyproj.Transformer.from_crs(STORAGE_EPSG, self.epsg, always_xy=True)
        self.county = shapely.transform(self.outline_geo, lambda c: np.column_stack(
            self.to_gk.transform(c[:, 0], c[:, 1])))
        self.area_km2 = self.county.area / 1e6
        self.ferry_in = ferries if ferries is not None and len(ferries) else None
        streams = np.random.SeedSequence(seed).spawn(12)
        self.rng = {k: np.random.default_rng(s) for k, s in zip(
            ("seats", "urban", "cells", "towns", "villages", "streets", "branches", "hh", "funnel",
             "visits", "people", "misc"), streams, strict=True)}

    # -- orchestration ------------------------------------------------------------------------------------

    def run(self) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
        self._seats()
        self._urban_area()
        self._streets()
        self._admin()
        self._ferries()
        self._branches()
        self._households()
        self._funnel()
        self._visits()
        return self._frames()

    def _geo(self, geoms, data: dict) -> gpd.GeoDataFrame:
        gs = gpd.GeoSeries(np.asarray(geoms, dtype=object), crs=self.epsg).to_crs(STORAGE_EPSG)
        return gpd.GeoDataFrame(data, geometry=gs.values, crs=STORAGE_EPSG)

    # -- town seats ---------------------------------------------------------------------------------------

    def _seats(self) -> None:
        rng = self.rng["seats"]
        if self.real:
            code = _real_town_codes(self.code)
            towns: list[dict[str, Any]] = [dict(suffix=code[n], name=n, kind=k, lon=x, lat=y)
                                           for _, n, k, x, y in nm.REAL_TOWNS]
        else:
            real = _real_rural_towns(self.code)  # a known county: its real towns' names and codes, in code order
            n_towns = max(len(real), 3) if real else int(np.clip(round(11 * np.sqrt(self.area_km2 / _REAL_AREA_KM2)), 3, 20))
            minx, miny, maxx, maxy = self.outline_geo.bounds
            rx0, ry0, rx1, ry1 = _REAL_BOUNDS
            towns = []
            n_xiang = 0
            for i in range(n_towns):
                if i < len(nm.REAL_TOWNS):
                    _, _, _, lon, lat = nm.REAL_TOWNS[i]
                    u, v = (lon - rx0) / (rx1 - rx0), (lat - ry0) / (ry1 - ry0)
                else:
                    u, v = rng.uniform(0.1, 0.9, 2)
                tname = nm.GENERIC_TOWNS[i % len(nm.GENERIC_TOWNS)]
                kind = "苏木" if tname.endswith("苏木") else ("乡" if tname.endswith("乡") else "镇")
                towns.append(dict(name=tname, kind=kind, lon=minx + u * (maxx - minx), lat=miny + v * (maxy - miny)))
            n_zhen = 0
            for t in towns:
                if t["kind"] == "镇":
                    t["suffix"] = f"{100 + n_zhen:03d}"
                    n_zhen += 1
                else:
                    t["suffix"] = f"{200 + n_xiang:03d}"
                    n_xiang += 1
            generic_suffix = iter(f"{k:03d}" for k in range(399, 299, -1) if f"{k:03d}" not in real.values())
            for t, (rname, rsuffix) in zip(towns, [*real.items(), *((None, None),) * len(towns)], strict=False):
                if rname is not None:
                    t.update(name=rname, kind=_town_kind(rname), suffix=rsuffix)
                elif real:  # fewer real towns than the generator wants: generic names, codes clear of the real
                    t["suffix"] = next(generic_suffix)
        xy = np.column_stack(self.to_gk.transform([t["lon"] for t in towns], [t["lat"] for t in towns]))
        # move seats into the outline (relative positions may fall outside an irregular shape) and apart
        inner = self.county.buffer(-min(800.0, np.sqrt(self.county.area) / 40))
        if inner.is_empty:
            inner = self.county
        shapely.prepare(inner)
        spacing = 0.35 * np.sqrt(self.county.area / len(towns))
        candidates = _sample_in(rng, inner, 4000)
        placed: list[np.ndarray] = []
        for p in xy:
            if not shapely.contains_xy(inner, *p):
                near = shapely.shortest_line(inner, shapely.Point(p))
                p = np.asarray(shapely.get_coordinates(near)[0])
            if placed and np.min(np.hypot(*(np.asarray(placed) - p).T)) < spacing:
                d = np.min(np.hypot(*(candidates[:, None, :] - np.asarray(placed)[None]).transpose(2, 0, 1)),
                           axis=1)
                p = candidates[int(np.argmax(d))]
            placed.append(np.asarray(p, dtype=float))
        if not self.real:
            self._seats_on_islands(placed)
        for t, p in zip(towns, placed, strict=True):
            t["xy"] = p
            t["code"] = self.code + t["suffix"]
            t["short"] = _short(t["name"])
        self.towns = towns
        self.seat_xy = towns[0]["xy"]

    def _seats_on_islands(self, placed: list[np.ndarray]) -> None:
        """On a multi-part outline, move seats so that the larger islands (at least 1 % of the county, up to
        half the towns) have a town of their own; a seat moves only from a part that keeps another one."""
        parts = sorted(shapely.get_parts(self.county), key=lambda p: -p.area)
        if len(parts) < 2:
            return
        tree = shapely.STRtree(parts)

        def part_of(xy: np.ndarray) -> int:
            return int(tree.query_nearest(shapely.Point(xy))[0])

        big = [i for i, p in enumerate(parts) if i and p.area >= 0.01 * self.county.area][: len(placed) // 2]
        where = [part_of(p) for p in placed]
        for i in big:
            if i in where:
                continue
            # a donor part keeps one seat (the county seat counts)
            spare = np.bincount(where[1:], minlength=len(parts)) - (np.arange(len(parts)) != where[0])
            donor = int(np.argmax(spare))
            if spare[donor] < 1:
                break
            k = max(j for j in range(1, len(placed)) if where[j] == donor)
            inner = parts[i].buffer(-min(800.0, np.sqrt(parts[i].area) / 10))
            site = inner if not inner.is_empty else parts[i]
            placed[k] = np.asarray(shapely.get_coordinates(site.point_on_surface())[0], dtype=float)
            where[k] = i

    # -- urban area ---------------------------------------------------------------------------------------

    def _urban_area(self) -> None:
        rng = self.rng["urban"]
        scale = float(min(1.0, np.sqrt(self.area_km2 / 1000.0)))
        a, b = 2550.0 * scale, 2050.0 * scale
        theta = np.linspace(0, 2 * np.pi, 181)[:-1]
        r = 1.0 + 0.2 * _smooth_noise(rng, theta, terms=7)
        ring = np.column_stack([self.seat_xy[0] + a * r * np.cos(theta), self.seat_xy[1] + b * r * np.sin(theta)])
        shape = shapely.Polygon(ring)
        urban = _polygonal(shapely.intersection(shape, self.county.buffer(-50)))
        parts = [p for p in shapely.get_parts(urban)]
        urban = max(parts, key=lambda p: p.area) if parts else shape
        for p in parts:
            if p.contains(shapely.Point(self.seat_xy)):
                urban = p
        self.urban = shapely.Polygon(urban.exterior)  # no holes
        self.urban = _polygonal(shapely.intersection(self.urban, self.county))

    # -- administrative units -----------------------------------------------------------------------------

    def _admin(self) -> None:
        rng_c, rng_t, rng_v = self.rng["cells"], self.rng["towns"], self.rng["villages"]
        rural = _polygonal(shapely.difference(self.county, self.urban))
        n_villages = int(np.clip(round(_N_RURAL_VILLAGES * self.area_km2 / _REAL_AREA_KM2), 3 * len(self.towns), 400))
        pts, cells, edges = _cells(rng_c, rural, 70 * n_villages)
        cell_area = rural.area / len(pts)
        seeds = cast(np.ndarray, cKDTree(pts).query(np.asarray([t["xy"] for t in self.towns]))[1])
        if len(np.unique(seeds)) < len(self.towns):
            raise ValidationError("县界太小，无法放下所有镇", fix="换一个更大的县界")
        town_of = _grow(rng_t, pts, edges, np.arange(len(pts)), seeds, noise=0.3,
                        wave=np.sqrt(rural.area / len(seeds)), wave_amp=0.7)
        for t, s in zip(self.towns, seeds, strict=True):
            t["xy"] = pts[s]  # the seat is the seed cell's point: inside its own town
        # villages per town: by area, pastoral sumu sparser
        weight = np.array([np.sum(town_of == i) * (0.55 if t["kind"] == "苏木" else 1.0)
                           for i, t in enumerate(self.towns)])
        per_town = np.maximum(3, np.round(weight / weight.sum() * n_villages)).astype(int)
        self.villages: list[dict] = []
        self.groups: list[dict] = []
        # one county-wide pool of distinct names (popped from the end)
        self._han_pool = nm.village_names(rng_v, 2 * n_villages, mongolian=np.zeros(2 * n_villages, bool))[::-1]
        self._gacha_pool = nm.village_names(rng_v, 2 * n_villages, mongolian=np.ones(2 * n_villages, bool))[::-1]
        cell_group = np.full(len(pts), -1)
        for ti, t in enumerate(self.towns):
            members = np.flatnonzero(town_of == ti)
            k = int(min(per_town[ti], max(1, len(members) // 30)))
            seat_local = int(np.flatnonzero(members == seeds[ti])[0])
            vseeds = members[_spread_seeds(rng_v, pts[members], k, first=seat_local)]
            vreg = _grow(rng_v, pts, edges, members, vseeds, noise=0.3,
                         wave=np.sqrt(len(members) * cell_area / k), wave_amp=0.6)
            for _ in range(4):  # a seed hemmed in by its neighbours (a narrow strip, a cove): seed it again
                size = np.bincount(vreg, minlength=k)
                hemmed = [int(r) for r in np.flatnonzero(size < min(_MIN_VILLAGE_CELLS, len(members) // (2 * k)))
                          if r != 0]  # the seat village keeps its seed
                if not hemmed:
                    break
                for r in hemmed:  # into the largest village, at its cell farthest from that village's seed
                    big = int(np.argmax(np.bincount(vreg, minlength=k)))
                    cand = np.flatnonzero(vreg == big)
                    far = cand[int(np.argmax(np.hypot(*(pts[members[cand]] - pts[vseeds[big]]).T)))]
                    vseeds[r] = members[far]
                    vreg[far] = r
                vreg = _grow(rng_v, pts, edges, members, vseeds, noise=0.3,
                             wave=np.sqrt(len(members) * cell_area / k), wave_amp=0.6)
            mongolian = rng_v.random(k) < (0.85 if t["kind"] == "苏木" else 0.12)
            names = [self._gacha_pool.pop() if mn else self._han_pool.pop() for mn in mongolian]
            self._add_villages(rng_v, t, members, vreg, vseeds, names, pts, edges, cell_group, cell_area,
                               urban=False)
        # the urban area: 2 街道 and their 社区, made of street blocks (borders run along streets)
        ucells = self.blocks()
        if len(ucells) >= 40:
            upts = shapely.get_coordinates(shapely.point_on_surface(ucells))
            tree = shapely.STRtree(ucells)
            i, j = tree.query(ucells, predicate="intersects")
            i, j = i[i < j], j[i < j]
            shared = shapely.length(shapely.intersection(shapely.boundary(ucells[i]), shapely.boundary(ucells[j])))
            i, j = i[shared > 1.0], j[shared > 1.0]
            uedges = np.column_stack([i, j, np.hypot(*(upts[i] - upts[j]).T)])
        else:  # a very small urban area: cells instead of blocks
            upts, ucells, uedges = _cells(rng_c, self.urban, 300)
        self.ucells = ucells  # the urban households are spread over these blocks (see _households)
        ucell_area = self.urban.area / len(upts)
        half = 0.45 * np.sqrt(self.urban.area)
        sseeds = cast(np.ndarray, cKDTree(upts).query(self.seat_xy + np.array([[-half, 0], [half, 0]]))[1])
        if sseeds[0] == sseeds[1]:
            raise ValidationError("城区太小，无法分成两个街道", fix="换一个更大的县界")
        street_of = _grow(rng_t, upts, uedges, np.arange(len(upts)), sseeds, noise=0.2)
        ucell_group = np.full(len(upts), -1)
        offices = tuple((_real_town_codes(self.code)[n], n) for _, n in nm.REAL_STREET_OFFICES) if self.real else (
            _real_street_offices(self.code, 2) or tuple(
                (f"{i + 1:03d}", n) for i, n in enumerate(nm.GENERIC_STREET_OFFICES)))
        comm_names = [str(x) for x in rng_v.permutation(nm.COMMUNITY_NAMES)]
        self.offices = []
        n_rural_groups = len(self.groups)
        for si, s in enumerate(sseeds):
            suffix, oname = offices[si]
            o = dict(suffix=suffix, name=oname, kind="街道", code=self.code + suffix, xy=upts[s],
                     short=oname.removesuffix("街道"))
            self.offices.append(o)
            members = np.flatnonzero(street_of == si)
            k = int(min(_N_COMMUNITIES // 2, max(1, len(members) // 8)))
            cseeds = members[_spread_seeds(rng_v, upts[members], k)]
            creg = _grow(rng_v, upts, uedges, members, cseeds, noise=0.25)
            names = [comm_names.pop() for _ in range(k)]
            self._add_villages(rng_v, o, members, creg, cseeds, names, upts, uedges, ucell_group, ucell_area,
                               urban=True)
        self.ucell_group = ucell_group
        # polygons: groups are unions of cells, villages of groups, towns of villages
        rural_groups = _dissolve(cells, cell_group, n_rural_groups)
        urban_groups = _dissolve(ucells, ucell_group - n_rural_groups, len(self.groups) - n_rural_groups)
        ggeom = np.concatenate([rural_groups, urban_groups])
        for g, geom in zip(self.groups, ggeom, strict=True):
            g["geom"] = geom
        vlab = np.array([g["village"] for g in self.groups])
        vgeom = _dissolve(ggeom, vlab, len(self.villages))
        for v, geom in zip(self.villages, vgeom, strict=True):
            v["geom"] = geom
        all_towns = self.towns + self.offices
        tidx = {t["code"]: i for i, t in enumerate(all_towns)}
        tlab = np.array([tidx[v["parent"]] for v in self.villages])
        tgeom = _dissolve(vgeom, tlab, len(all_towns))
        for t, geom in zip(all_towns, tgeom, strict=True):
            t["geom"] = geom
        self.urban = _polygonal(shapely.union_all([o["geom"] for o in self.offices]))

    def _add_villages(self, rng: np.random.Generator, town: dict, members: np.ndarray, region: np.ndarray,
                      seeds: np.ndarray, names: list[str], pts: np.ndarray, edges: np.ndarray,
                      cell_group: np.ndarray, cell_area: float, *, urban: bool) -> None:
        """Register the villages grown in ``town`` and split each into its villager groups."""
        for vi, name in enumerate(names):
            vcode = town["code"] + f"{(101 if urban else 201) + vi:03d}"
            kind = "社区" if urban else ("嘎查" if name.endswith("嘎查") else "村")
            vmembers = members[region == vi]
            v = dict(code=vcode, name=name, kind=kind, parent=town["code"], town=town, centre=pts[seeds[vi]],
                     urban=urban)
            vindex = len(self.villages)
            self.villages.append(v)
            n_groups = int(rng.integers(4, 9) if urban else rng.integers(5, 11))
            n_groups = max(1, min(n_groups, len(vmembers) // 2))
            first = int(np.flatnonzero(vmembers == seeds[vi])[0])
            gseeds = _spread_seeds(rng, pts[vmembers], n_groups, first=first)
            greg = _grow(rng, pts, edges, vmembers, vmembers[gseeds], noise=0.3,
                         wave=np.sqrt(len(vmembers) * cell_area / n_groups), wave_amp=0.5)
            cell_group[vmembers] = len(self.groups) + greg
            for gi in range(n_groups):
                self.groups.append(dict(code=vcode + f"{gi + 1:03d}", name=nm.group_name(gi + 1), village=vindex,
                                        urban=urban))

    def _ferries(self) -> None:
        """Keep the ferry lines that join parts of the outline without putting one town on two of them."""
        self.ferries = dict(geom=np.empty(0, dtype=object), name=np.empty(0, dtype=object))
        if self.ferry_in is None:
            return
        f = self.ferry_in.to_crs(self.epsg)
        names = (f["name"].astype(str).to_numpy() if "name" in f.columns
                 else np.array([f"渡口航线{i + 1}" for i in range(len(f))], dtype=object))
        parts = shapely.get_parts(self.county)
        tree = shapely.STRtree(parts)
        towns: list[set[int]] = [set() for _ in parts]
        for ti, t in enumerate(self.towns + self.offices):
            pieces = shapely.get_parts(t["geom"])
            for k in np.unique(tree.query_nearest(shapely.point_on_surface(pieces))[1]):
                towns[int(k)].add(ti)
        root = list(range(len(parts)))

        def find(i: int) -> int:
            while root[i] != i:
                i = root[i]
            return i

        keep = []
        for i, line in enumerate(f.geometry.values):
            if line is None or line.is_empty or line.intersects(self.urban):
                continue
            comps = {find(int(k)) for k in tree.query(line, predicate="dwithin", distance=100.0)}
            if len(comps) < 2 or sum(len(towns[c]) for c in comps) != len(set().union(*(towns[c] for c in comps))):
                continue
            top = min(comps)
            for c in comps:
                root[c] = top
            towns[top] = set().union(*(towns[c] for c in comps))
            keep.append(i)
        self.ferries = dict(geom=np.asarray([_lineal(g) for g in f.geometry.values[keep]], dtype=object),
                            name=np.asarray(names[keep], dtype=object))

    # -- streets ------------------------------------------------------------------------------------------

    def _streets(self) -> None:
        rng = self.rng["streets"]
        ang = np.deg2rad(rng.uniform(-12, 12))
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        limit = self.urban.buffer(320)
        minx, miny, maxx, maxy = shapely.affinity.rotate(limit, -ang, tuple(self.seat_xy), use_radians=True).bounds
        sx, sy = 220.0, 190.0  # 支路 spacing: ~500 blocks of ~0.03 km² over the ~16 km² of 林东
        xs = np.arange(minx - self.seat_xy[0] - sx, maxx - self.seat_xy[0] + sx, sx)
        ys = np.arange(miny - self.seat_xy[1] - sy, maxy - self.seat_xy[1] + sy, sy)
        xs = xs - xs[np.argmin(np.abs(xs))]  # a line through the seat
        ys = ys - ys[np.argmin(np.abs(ys))]
        gx, gy = np.meshgrid(xs, ys)  # (rows j, cols i)
        gx = gx + rng.normal(0, 0.12 * sx, gx.shape)
        gy = gy + rng.normal(0, 0.12 * sy, gy.shape)
        # gentle bends: rows drift north/south along their length
        gy = gy + 90 * np.sin(gx / 1800.0 + rng.uniform(0, 6)) * rng.uniform(0.3, 1.0, (gx.shape[0], 1))

        def world(local: np.ndarray) -> np.ndarray:
            return local @ rot.T + self.seat_xy

        j0, i0 = int(np.argmin(np.abs(ys))), int(np.argmin(np.abs(xs)))
        main_rows = {j0, j0 + 7, j0 - 7}  # 主干道 ~1.3 km apart north-south, ~2 km east-west
        main_cols = {i0, i0 - 9, i0 + 9}
        mains = nm.street_names(rng, nm.MAIN_STREETS, "大街")
        seconds = nm.street_names(rng, nm.SECONDARY_STREETS, "路")
        minor = nm.street_names(rng, [s + "街" for s in nm.BRANCH_STREET_STEMS], "巷")
        lines, names, classes = [], [], []

        def street(points: np.ndarray, cls: str) -> None:
            nonlocal lines
            name = next(mains) if cls == "主干道" else (next(seconds) if cls == "次干道" else next(minor))
            # drop some segments of minor streets: breaks, dead ends
            keep = np.ones(len(points) - 1, bool)
            if cls == "支路":
                keep = rng.random(len(points) - 1) > 0.13
            run: list[np.ndarray] = []
            for k in range(len(points) - 1):
                if keep[k]:
                    run = run or [points[k]]
                    run.append(points[k + 1])
                if (not keep[k] or k == len(points) - 2) and len(run) >= 2:
                    lines.append(shapely.LineString(world(np.asarray(run))))
                    names.append(name)
                    classes.append(cls)
                    run = []

        for j in range(gx.shape[0]):
            cls = "主干道" if j in main_rows else ("次干道" if (j - j0) % 3 == 0 else "支路")
            pts = np.column_stack([gx[j], gy[j]])
            if cls == "主干道":  # main roads run on beyond the built-up area
                pts = np.vstack([pts[0] - [1500, 0], pts, pts[-1] + [1500, 0]])
            street(pts, cls)
        for i in range(gx.shape[1]):
            cls = "主干道" if i in main_cols else ("次干道" if (i - i0) % 4 == 0 else "支路")
            pts = np.column_stack([gx[:, i], gy[:, i]])
            if cls == "主干道":
                pts = np.vstack([pts[0] - [0, 1500], pts, pts[-1] + [0, 1500]])
            street(pts, cls)
        # diagonals and a curved riverside road
        r = max(xs.max(), ys.max())
        for sgn in (1, -1):
            t = np.linspace(-1, 1, 25)
            pts = np.column_stack([t * r * 0.8, sgn * t * r * 0.55 + 150 * np.sin(t * 3)])
            street(pts, "次干道")
        t = np.linspace(-1, 1, 60)
        river = np.column_stack([t * r, ys.min() * 0.6 + 260 * np.sin(t * 4 + 1)])
        street(river, "次干道")
        # cul-de-sacs
        nodes = np.column_stack([gx.ravel(), gy.ravel()])
        for p in nodes[rng.choice(len(nodes), size=max(8, len(nodes) // 12), replace=False)]:
            a = rng.uniform(0, 2 * np.pi)
            ln = rng.uniform(0.3, 0.45) * sx
            lines.append(shapely.LineString(world(np.array([p, p + ln * np.array([np.cos(a), np.sin(a)])]))))
            names.append(next(minor))
            classes.append("支路")
        geoms = shapely.intersection(np.asarray(lines, dtype=object), limit)
        keep = ~shapely.is_empty(geoms) & (shapely.length(geoms) > 40)
        geoms = np.asarray([_lineal(g) for g in geoms[keep]], dtype=object)
        self.streets = dict(geom=geoms, name=np.asarray(names, dtype=object)[keep],
                            cls=np.asarray(classes, dtype=object)[keep])
        # rural roads from the seat to every other town seat
        rlines, rnames = [], []
        outside = _polygonal(shapely.difference(self.county, self.urban))
        seat_short = self.towns[0]["short"]
        for town in self.towns[1:]:
            a, b = self.seat_xy, town["xy"]
            s = np.linspace(0, 1, 14)
            d = b - a
            normal = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1.0)
            wobble = np.sin(np.pi * s) * rng.uniform(-0.12, 0.12) * np.hypot(*d)
            wobble += np.concatenate([[0], rng.normal(0, 350, len(s) - 2), [0]])
            pts = a + s[:, None] * d + wobble[:, None] * normal
            g = _lineal(shapely.intersection(shapely.LineString(pts), outside))
            if not g.is_empty:
                rlines.append(g)
                rnames.append(f"{seat_short}至{town['short']}公路")
        self.rural_roads = dict(geom=np.asarray(rlines, dtype=object), name=np.asarray(rnames, dtype=object))

    def blocks(self) -> np.ndarray:
        """Polygons enclosed by the streets and the urban boundary, inside the urban area (a check)."""
        noded = shapely.union_all(np.concatenate([self.streets["geom"], [self.urban.boundary]]))
        polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
        rep = shapely.point_on_surface(polys)
        return polys[shapely.contains(self.urban, rep)]

    # -- branches and staff -------------------------------------------------------------------------------

    def _branches(self) -> None:
        rng = self.rng["branches"]
        street_tree = shapely.STRtree(self.streets["geom"])
        rows: list[dict[str, Any]] = []

        def add(kind: str, name: str, xy: np.ndarray, town: dict, address: str, n_staff: int) -> None:
            rows.append(dict(kind=kind, name=name, xy=np.asarray(xy, float), town=town, address=address,
                             n_staff=n_staff))

        def street_address(xy: np.ndarray, town: dict) -> str:
            k = street_tree.query_nearest(shapely.Point(xy))[0]
            return f"{self.name}{self.towns[0]['name']}{self.streets['name'][k]}{int(rng.integers(1, 300))}号"

        seat_office = self._office_at(self.seat_xy)
        add("营业部", f"{self.towns[0]['short']}营业部", self.seat_xy, seat_office,
            street_address(self.seat_xy, seat_office), 12)
        for ti, t in enumerate(self.towns):
            if ti == 0:  # the seat town's own 信用社 serves its rural villages: at its seat village
                v = next(v for v in self.villages if v["parent"] == t["code"])
                xy = self._group_centre(v)
                addr = f"{self.name}{t['name']}{v['name']}"
                add("信用社", f"{t['short']}信用社", xy, t, addr, 6)
            else:
                v = next(v for v in self.villages if v["parent"] == t["code"])
                add("信用社", f"{t['short']}信用社", t["xy"], t, f"{self.name}{t['name']}{v['name']}", 5)
        comms = [v for v in self.villages if v["urban"]]
        for v in comms[:: max(1, len(comms) // 8)][:8]:
            xy = self._group_centre(v)
            add("分社", f"{v['name'].removesuffix('社区')}分社", xy, v["town"], street_address(xy, v["town"]), 6)
        # 分社 in the bigger rural towns, at a village away from the town seat
        sizes = np.array([t["geom"].area for t in self.towns])
        order = [int(i) for i in np.argsort(-sizes) if i != 0]
        n_town_branches = int(np.clip(round(10 * np.sqrt(len(self.towns) / 11)), 1, 12))
        for ti in (order * 2)[:n_town_branches]:
            t = self.towns[ti]
            cands = [v for v in self.villages if v["parent"] == t["code"] and not v.get("has_branch")]
            if len(cands) < 2:
                continue
            d = [np.hypot(*(v["centre"] - t["xy"])) for v in cands]
            v = cands[int(np.argsort(d)[len(d) // 2])]
            v["has_branch"] = True
            add("分社", f"{_short(v['name'])}分社", self._group_centre(v), t, f"{self.name}{t['name']}{v['name']}",
                int(rng.integers(3, 5)))
        seen: dict[str, int] = {}
        for r in rows:  # distinct names
            if r["name"] in seen:
                seen[r["name"]] += 1
                r["name"] = r["name"].replace("分社", f"第{nm.GROUP_NUMERALS[seen[r['name']] - 1]}分社")
            seen.setdefault(r["name"], 1)
        for i, r in enumerate(rows):
            r["branch_id"] = f"B{i + 1:02d}"
        self.branches = rows
        # staff: one 网点主任 per branch, the others 客户经理
        srng = self.rng["people"]
        staff = []
        for r in rows:
            for k in range(r["n_staff"]):
                staff.append(dict(branch_id=r["branch_id"], role="网点主任" if k == 0 else "客户经理"))
        n = len(staff)
        staff_names = nm.person_names(srng, n, mongolian_share=0.2)
        phones = nm.phone_numbers(srng, n)
        self.staff = pd.DataFrame({
            "staff_id": [f"S{i + 1:03d}" for i in range(n)],
            "name": staff_names,
            "branch_id": [s["branch_id"] for s in staff],
            "role": [s["role"] for s in staff],
            "phone": phones,
        })

    def _office_at(self, xy: np.ndarray) -> dict:
        p = shapely.Point(xy)
        for o in self.offices:
            if o["geom"].covers(p):
                return o
        return self.offices[0]

    def _group_centre(self, v: dict) -> np.ndarray:
        return v["centre"]

    # -- households ---------------------------------------------------------------------------------------

    def _households(self) -> None:
        rng = self.rng["hh"]
        groups = self.groups
        G = len(groups)
        urban_g = np.array([g["urban"] for g in groups])
        gvillage = np.array([g["village"] for g in groups])
        area = shapely.area(np.asarray([g["geom"] for g in groups], dtype=object))
        n_urban = round(self.n_hh * _URBAN_SHARE)
        # village sizes vary; groups within a village too
        vweight = np.exp(rng.normal(0, 0.35, len(self.villages)))
        w = np.exp(rng.normal(0, 0.3, G)) * vweight[gvillage]
        w_r = np.where(urban_g, 0, w * np.sqrt(area))
        # a villager group rarely holds more than ~135 households (the build splits villages along groups)
        counts = _capped_counts(w_r, self.n_hh - n_urban, cap=_GROUP_CAP)
        # urban households by block: in proportion to the block's area (with some variation by block and
        # community), at most ~140 a block, so that urban grids made of whole blocks can be fine
        blocks = np.asarray(self.ucells, dtype=object)
        bgroup = np.asarray(self.ucell_group)
        bw = shapely.area(blocks) * np.exp(rng.normal(0, 0.35, len(blocks))) * w[bgroup]
        bcount = _capped_counts(bw, n_urban, cap=_BLOCK_CAP)
        counts = counts + np.bincount(bgroup, weights=bcount, minlength=G).astype(np.int64)
        gidx = np.repeat(np.arange(G), counts)
        # block of each urban household, in the same order as ``gidx`` (households sorted by group)
        border = np.argsort(bgroup, kind="stable")
        hh_block = np.full(len(gidx), -1)
        hh_block[urban_g[gidx]] = np.repeat(border, bcount[border])
        n = len(gidx)
        self.hh_group = gidx
        # points: rural clustered around a centre inside the group, urban anywhere in blocks off the street
        geoms = np.asarray([g["geom"] for g in groups], dtype=object)
        inner = shapely.buffer(geoms, -5.0)
        inner = np.where(shapely.is_empty(inner), geoms, inner)
        shapely.prepare(inner)
        centres = self._cluster_centres(geoms, inner)
        x = np.full(n, np.nan)
        y = np.full(n, np.nan)
        sigma = rng.uniform(140, 380, G)
        is_urban = urban_g[gidx]
        bounds = shapely.bounds(geoms)
        binner = shapely.buffer(blocks, -5.0)
        binner = np.where(shapely.is_empty(binner), blocks, binner)
        shapely.prepare(binner)
        bbounds = shapely.bounds(binner)
        street_tree = shapely.STRtree(self.streets["geom"])
        todo = np.arange(n)
        for attempt in range(60):
            if not todo.size:
                break
            g = gidx[todo]
            u = is_urban[todo]
            if attempt < 40:
                cx = centres[g, 0] + rng.normal(0, 1, todo.size) * sigma[g]
                cy = centres[g, 1] + rng.normal(0, 1, todo.size) * sigma[g]
                bk = hh_block[todo[u]]  # urban: anywhere in the household's block
                cx[u] = rng.uniform(bbounds[bk, 0], bbounds[bk, 2])
                cy[u] = rng.uniform(bbounds[bk, 1], bbounds[bk, 3])
            else:  # stubborn shapes: uniform in the group's bounds
                cx = rng.uniform(bounds[g, 0], bounds[g, 2])
                cy = rng.uniform(bounds[g, 1], bounds[g, 3])
            ok = shapely.contains_xy(inner[g], cx, cy)
            if attempt < 40 and u.any():
                ok[u] &= shapely.contains_xy(binner[hh_block[todo[u]]], cx[u], cy[u])
            uu = ok & is_urban[todo] & (attempt < 40)
            if uu.any():
                near = street_tree.query(shapely.points(cx[uu], cy[uu]), predicate="dwithin", distance=12.0)
                bad = np.zeros(uu.sum(), bool)
                bad[near[0]] = True
                ok[np.flatnonzero(uu)[bad]] = False
            x[todo[ok]], y[todo[ok]] = cx[ok], cy[ok]
            todo = todo[~ok]
        if todo.size:  # last resort: a point on the group's surface
            rep = shapely.point_on_surface(inner[gidx[todo]])
            x[todo], y[todo] = shapely.get_x(rep), shapely.get_y(rep)
        no_point = rng.random(n) < _NO_POINT_SHARE
        x[no_point] = y[no_point] = np.nan
        self.hh_xy = np.column_stack([x, y])
        self.hh_has_point = ~no_point
        # attributes
        vill = gvillage[gidx]
        town_kind = np.array([self.villages[v]["town"]["kind"] for v in range(len(self.villages))])[vill]
        seat_village = np.array([bool(np.hypot(*(v["centre"] - v["town"]["xy"])) < 1.0)
                                 for v in self.villages])[vill]
        seg_u = rng.choice(["社区居民", "公职人员", "个体工商户", "小微企业"], n, p=[0.54, 0.18, 0.21, 0.07])
        # rural: plain 农牧户, and the new-type entities (家庭农牧场, 农牧业专业合作社) that may hold 黄金/钻石客户 lines
        p_rural = np.where(seat_village[:, None], [[0.62, 0.07, 0.03, 0.15, 0.05, 0.08]],
                           [[0.83, 0.095, 0.025, 0.035, 0.005, 0.01]])
        cum = p_rural.cumsum(axis=1)
        seg_r = np.array(["普通农牧户", "家庭农牧场", "农牧业专业合作社", "个体工商户", "小微企业", "公职人员"])[
            np.minimum((rng.random(n)[:, None] > cum).sum(1), p_rural.shape[1] - 1)]
        self.hh_segment = np.where(is_urban, seg_u, seg_r).astype(object)
        # 公职人员: 职务级别 and whether the salary is paid through the 农信社 (代发)
        civil = self.hh_segment == "公职人员"
        self.hh_job_level = np.full(n, None, dtype=object)
        self.hh_job_level[civil] = np.array(job_levels("福薪卡"), dtype=object)[
            rng.choice(3, int(civil.sum()), p=[0.62, 0.30, 0.08])]
        self.hh_payroll = np.full(n, None, dtype=object)
        self.hh_payroll[civil] = rng.random(int(civil.sum())) < 0.7
        mn_share = np.where(town_kind == "苏木", 0.6, 0.13)
        mn_share = np.where(np.array([v["kind"] == "嘎查" for v in self.villages])[vill], 0.55, mn_share)
        prng = self.rng["people"]
        female = prng.random(n) < 0.22
        self.hh_name = nm.person_names(prng, n, mongolian_share=mn_share)
        self.hh_id_no = nm.id_numbers(prng, n, region=self.code, female=female)
        self.hh_phone = nm.phone_numbers(prng, n)
        # ids and addresses
        seq = np.arange(n) - np.searchsorted(gidx, gidx)  # running number within the group (gidx sorted)
        gcode = np.array([g["code"] for g in groups], dtype=object)[gidx]
        self.hh_id = np.char.add(gcode.astype(str), np.char.mod("%04d", seq + 1)).astype(object)
        vnames = np.array([v["name"] for v in self.villages], dtype=object)
        tnames = np.array([v["town"]["name"] for v in self.villages], dtype=object)
        gnames = np.array([g["name"] for g in groups], dtype=object)
        addr = self.name + tnames[vill] + vnames[vill] + gnames[gidx]
        pts_u = np.flatnonzero(is_urban & self.hh_has_point)
        if pts_u.size:
            k = street_tree.query_nearest(shapely.points(self.hh_xy[pts_u]), all_matches=False)[1]
            numbers = np.char.mod("%d号", rng.integers(1, 400, pts_u.size)).astype(object)
            addr[pts_u] = (self.name + tnames[vill[pts_u]] + self.streets["name"][k] + numbers)
        self.hh_address = addr
        self.hh_village = vill

    def _cluster_centres(self, geoms: np.ndarray, inner: np.ndarray) -> np.ndarray:
        """Where each group's houses cluster: between the group's middle and its village centre."""
        vc = np.asarray([self.villages[g["village"]]["centre"] for g in self.groups])
        gc = shapely.get_coordinates(shapely.centroid(geoms))
        target = vc + 0.55 * (gc - vc)
        core = shapely.buffer(inner, -150.0)
        core = np.where(shapely.is_empty(core), inner, core)
        tp = shapely.points(target)
        ok = shapely.contains(core, tp)
        out = target.copy()
        if (~ok).any():
            line = shapely.shortest_line(core[~ok], tp[~ok])
            out[~ok] = shapely.get_coordinates(shapely.get_point(line, 0))
        return out

    # -- the funnel ---------------------------------------------------------------------------------------

    def _funnel(self) -> None:
        rng = self.rng["funnel"]
        tg = funnel_targets(self.n_hh)
        n = len(self.hh_id)
        seg = self.hh_segment
        # survey progress differs by village: some finished, some barely started
        progress = rng.beta(3.0, 1.1, len(self.villages))
        p = progress[self.hh_village] + 1e-6
        archived = np.zeros(n, bool)
        archived[rng.choice(n, tg["archived"], replace=False, p=p / p.sum())] = True
        seg_w = {"普通农牧户": 1.0, "家庭农牧场": 2.4, "农牧业专业合作社": 2.6, "个体工商户": 1.25, "小微企业": 1.4,
                 "公职人员": 1.7, "社区居民": 0.75}
        w = np.array([seg_w[s] for s in seg])

        def subset(mask: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
            idx = np.flatnonzero(mask)
            ww = np.ones(idx.size) if weights is None else weights[idx]
            out = np.zeros(n, bool)
            out[rng.choice(idx, k, replace=False, p=ww / ww.sum())] = True
            return out

        eligible = subset(archived, tg["eligible"], w)
        granted = subset(eligible, tg["granted"])
        signed = subset(granted, tg["signed"], w)
        using = subset(signed, tg["using"])
        product = np.array([product_for_segment(s) for s in seg], dtype=object)
        grade = np.full(n, None, dtype=object)
        lo = np.zeros(n)
        hi = np.zeros(n)
        amount = np.zeros(n)
        gi = np.flatnonzero(granted)
        # 福农卡 grades: plain 农牧户 the four grades (4万–10万); 家庭农牧场 and 合作社 mostly 黄金/钻石客户
        farm = gi[product[gi] == "福农卡"]
        new_type = np.isin(seg[farm], ["家庭农牧场", "农牧业专业合作社"])
        all_grades = grades("福农卡")
        plain_grades = grades("福农卡", entity_type="普通农牧户")
        fg = np.empty(farm.size, dtype=np.int64)
        fg[~new_type] = rng.choice(len(plain_grades), int((~new_type).sum()), p=[0.16, 0.30, 0.30, 0.24])
        shares = np.array([0.04, 0.05, 0.05, 0.06, 0.62, 0.18])
        fg[new_type] = rng.choice(len(all_grades), int(new_type.sum()), p=shares / shares.sum())
        for k, gname in enumerate(all_grades):
            sel = farm[fg == k]
            b0, b1 = band("福农卡", gname)
            grade[sel] = gname
            lo[sel], hi[sel] = b0, b1
            skew = rng.beta(1.3, 2.0 if b1 > 100_000 else 1.2, sel.size)
            amount[sel] = np.round((b0 + skew * (b1 - b0)) / 5000) * 5000
        medians = {"福商卡": 260_000, "福民卡": 150_000}
        for prod, med in medians.items():
            sel = gi[product[gi] == prod]
            gname = grades(prod)[0]
            b0, b1 = band(prod, gname)
            grade[sel] = gname
            lo[sel], hi[sel] = max(b0, 10_000), b1
            amount[sel] = np.clip(np.round(med * np.exp(rng.normal(0, 0.55, sel.size)) / 10_000) * 10_000,
                                  lo[sel], b1)
        # 福薪卡: the band of the 职务级别
        sel = gi[product[gi] == "福薪卡"]
        grade[sel] = grades("福薪卡")[0]
        jb = np.array([job_band("福薪卡", j) for j in self.hh_job_level[sel]]).reshape(-1, 2)
        lo[sel], hi[sel] = jb[:, 0], jb[:, 1]
        amount[sel] = np.round((jb[:, 0] + rng.beta(1.6, 1.6, sel.size) * (jb[:, 1] - jb[:, 0])) / 10_000) * 10_000
        self.raw_granted_mean = float(amount[gi].mean())
        granted_amount = np.zeros(n, np.int64)
        granted_amount[gi] = _fit_total(rng, amount[gi], lo[gi], hi[gi], tg["granted_amount"])
        # signed lines: most sign for the whole line, some for part of it
        si = np.flatnonzero(signed)
        g_s = granted_amount[si].astype(float)
        ratio = np.where(rng.random(si.size) < 0.5, 1.0, rng.uniform(0.4, 1.0, si.size))
        available = np.zeros(n, np.int64)
        available[si] = _fit_total(rng, g_s * ratio, np.maximum(0.2 * g_s, 100), g_s, tg["available_amount"])
        ui = np.flatnonzero(using)
        a_u = available[ui].astype(float)
        balance = np.zeros(n, np.int64)
        balance[ui] = _fit_total(rng, a_u * rng.uniform(0.35, 1.0, ui.size), np.full(ui.size, 100.0), a_u,
                                 tg["balance"])
        guarantee = np.full(n, "", dtype=object)
        for prod in ("福农卡", "福商卡", "福薪卡", "福民卡"):
            limit = guarantee_above(prod)
            if limit is not None:
                need = granted & (product == prod) & (granted_amount > limit)
                options = qualifying_guarantees(prod)
                guarantee[need] = rng.choice(options, need.sum(), p=[0.7, 0.3][: len(options)])
        product[~archived] = None
        self.funnel = dict(archived=archived, eligible=eligible, granted=granted, signed=signed, using=using,
                           product=product, grade=grade, granted_amount=granted_amount,
                           available_amount=available, balance=balance, guarantee=guarantee)

    # -- visits -------------------------------------------------------------------------------------------

    def _visits(self) -> None:
        rng = self.rng["visits"]
        n = len(self.hh_id)
        bxy = np.asarray([b["xy"] for b in self.branches])
        gcentre = np.asarray([self.villages[g["village"]]["centre"] for g in self.groups])
        loc = np.where(self.hh_has_point[:, None], self.hh_xy, gcentre[self.hh_group])
        nearest = cKDTree(bxy).query(loc)[1]
        staff = self.staff
        by_branch = {b: staff.loc[(staff["branch_id"] == b) & (staff["role"] == "客户经理"), "staff_id"].to_numpy()
                     for b in staff["branch_id"].unique()}
        bid = np.array([b["branch_id"] for b in self.branches])
        # each group has one responsible manager at the household's branch (责任到人)
        pick = rng.integers(0, 1_000_000, len(self.groups))
        hh_staff = np.empty(n, dtype=object)
        for b_i, b in enumerate(bid):
            sel = np.flatnonzero(nearest == b_i)
            pool = by_branch[b]
            hh_staff[sel] = pool[pick[self.hh_group[sel]] % len(pool)]
        # whole-village campaigns (整村推进): each village has its survey date
        span = int((_VISIT_END - _VISIT_START).astype(int))
        campaign = rng.integers(0, span - 90, len(self.villages))
        day = campaign[self.hh_village] + np.abs(rng.normal(0, 25, n)).astype(int)
        day = np.clip(day, 0, span)
        archived = self.funnel["archived"]
        rows_h, rows_s, rows_d, rows_o = [], [], [], []
        a = np.flatnonzero(archived)
        rows_h.append(a)
        rows_s.append(hh_staff[a])
        rows_d.append(day[a])
        rows_o.append(np.full(a.size, "已建档", dtype=object))
        again = a[rng.random(a.size) < 0.33]  # follow-ups: more documents
        d2 = day[again] + rng.integers(20, 400, again.size)
        due = d2 <= span  # a follow-up after the data's last day has not happened yet
        again, d2 = again[due], d2[due]
        rows_h.append(again)
        rows_s.append(hh_staff[again])
        rows_d.append(d2)
        rows_o.append(rng.choice(["补充资料", "已建档"], again.size, p=[0.8, 0.2]).astype(object))
        na = np.flatnonzero(~archived)
        tried = na[rng.random(na.size) < 0.22]  # visited but no file yet
        rows_h.append(tried)
        rows_s.append(hh_staff[tried])
        rows_d.append(day[tried])
        rows_o.append(rng.choice(["未遇", "拒绝", "已迁出"], tried.size, p=[0.62, 0.23, 0.15]).astype(object))
        # the last eight weeks to the as-of date: an active 整村推进 campaign. Each manager goes out on most
        # weekdays and sees 8–14 households a visit day on average (a pace of their own: some ahead of the
        # quota of 12, some behind); archived households get 补充资料 visits, the others 未遇 / 拒绝.
        days = np.arange(span - 55, span + 1)
        weekday = ((_VISIT_START + days.astype("timedelta64[D]")).astype("datetime64[D]").astype(np.int64) + 3) % 7
        workdays = days[weekday < 5]  # 1970-01-01 was a Thursday: +3 makes Monday 0
        for m in sorted(set(hh_staff.tolist())):
            theirs = np.flatnonzero(hh_staff == m)
            theirs = theirs[np.lexsort((theirs, self.hh_group[theirs]))]  # 整村推进: group after group
            pace = rng.uniform(8, 14)
            out = workdays[rng.random(workdays.size) < 0.85]
            counts = np.minimum(rng.poisson(pace, out.size), theirs.size)
            at = int(rng.integers(0, theirs.size))
            for day_i, c in zip(out, counts, strict=True):
                seen = theirs[(at + np.arange(int(c))) % theirs.size]
                at = (at + int(c)) % theirs.size
                rows_h.append(seen)
                rows_s.append(np.full(seen.size, m, dtype=object))
                rows_d.append(np.full(seen.size, day_i))
                outcome = np.where(archived[seen], "补充资料",
                                   np.where(rng.random(seen.size) < 0.8, "未遇", "拒绝")).astype(object)
                rows_o.append(outcome)
        h = np.concatenate(rows_h)
        d = np.concatenate(rows_d)
        order = np.lexsort((h, d))
        self.visits = pd.DataFrame({
            "hh_id": self.hh_id[h][order],
            "staff_id": np.concatenate(rows_s)[order],
            "visited_on": (_VISIT_START + d[order].astype("timedelta64[D]")).astype("datetime64[s]"),
            "outcome": np.concatenate(rows_o)[order],
            "note": "",
        })
        self.visits["visited_on"] = pd.to_datetime(self.visits["visited_on"])

    # -- output -------------------------------------------------------------------------------------------

    def _frames(self) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
        towns = self.towns + self.offices
        rows = [dict(code=self.code, name=self.name, level="county", parent_code=None, kind="旗县", geom=self.county)]
        rows += [dict(code=t["code"], name=t["name"], level="town", parent_code=self.code, kind=t["kind"],
                      geom=t["geom"]) for t in towns]
        rows += [dict(code=v["code"], name=v["name"], level="village", parent_code=v["parent"], kind=v["kind"],
                      geom=v["geom"]) for v in self.villages]
        rows += [dict(code=g["code"], name=g["name"], level="group", parent_code=self.villages[g["village"]]["code"],
                      kind="组", geom=g["geom"]) for g in self.groups]
        adm = pd.DataFrame(rows)
        admin = self._geo(adm.pop("geom").to_numpy(), adm.to_dict("list"))
        urban = self._geo([self.urban], {"name": [f"{self.towns[0]['name']}城区"], "code": [self.towns[0]["code"]]})
        s, r, fe = self.streets, self.rural_roads, self.ferries
        streets = self._geo(np.concatenate([s["geom"], r["geom"], fe["geom"]]), {
            "name": np.concatenate([s["name"], r["name"], fe["name"]]),
            "class": np.concatenate([s["cls"], np.full(len(r["name"]), "乡村道路", dtype=object),
                                     np.full(len(fe["name"]), FERRY_CLASS, dtype=object)]),
        })
        b = self.branches
        branches = self._geo([shapely.Point(x["xy"]) for x in b], {
            "branch_id": [x["branch_id"] for x in b], "name": [x["name"] for x in b],
            "kind": [x["kind"] for x in b], "town_code": [x["town"]["code"] for x in b],
            "address": [x["address"] for x in b],
        })
        f = self.funnel
        gcodes = np.array([g["code"] for g in self.groups], dtype=object)
        vcodes = np.array([v["code"] for v in self.villages], dtype=object)
        pts = shapely.points(self.hh_xy)
        assert isinstance(pts, np.ndarray)  # one point per household
        pts[~self.hh_has_point] = None
        hh = self._geo(pts, {
            "hh_id": self.hh_id, "head_name": self.hh_name, "id_no": self.hh_id_no, "phone": self.hh_phone,
            "segment": self.hh_segment, "village_code": vcodes[self.hh_village], "group_code": gcodes[self.hh_group],
            "address": self.hh_address, "archived": f["archived"], "eligible": f["eligible"],
            "product": f["product"], "grade": f["grade"], "granted_amount": f["granted_amount"].astype(float),
            "signed": f["signed"], "available_amount": f["available_amount"].astype(float), "using": f["using"],
            "balance": f["balance"].astype(float), "guarantee": f["guarantee"],
            "job_level": self.hh_job_level, "payroll": self.hh_payroll,
        })
        # the 联社's loan book by month, branch and product: 24.01亿 (2017-01) → 42.94亿 (2019-09), exactly
        loan_totals = loans.demo_series([x["branch_id"] for x in b], seed=self.seed)
        return {"admin_units": admin, "urban_areas": urban, "streets": streets, "branches": branches,
                "staff": self.staff, "households": hh, "visits": self.visits, "loan_totals": loan_totals}


def _real_town_codes(county_code: str) -> dict[str, str]:
    """Town name → 3-digit code suffix of a real county, from the statistical codes (:func:`grids.towns.towns_of`)."""
    from grids.towns import towns_of

    return {name: code[6:] for code, name in zip(*towns_of(county_code)[["code", "name"]].T.values, strict=True)}


def _known_towns(county_code: str) -> pd.DataFrame:
    from grids.towns import towns_of

    try:
        return towns_of(county_code)
    except ValidationError:  # a made-up county code (990100): generic names
        return pd.DataFrame(columns=["code", "name", "kind"])


def _real_rural_towns(county_code: str) -> dict[str, str]:
    """Name → code suffix of a county's real 镇/乡/苏木 (empty for an unknown county), the seat town first."""
    towns = _known_towns(county_code)
    rural = towns[towns["kind"].isin(["镇", "乡", "苏木"])]
    return {name: code[6:] for code, name in zip(rural["code"], rural["name"], strict=True)}


def _real_street_offices(county_code: str, n: int) -> tuple[tuple[str, str], ...]:
    """The first ``n`` real 街道 of a county as (code suffix, name), or () when it has fewer."""
    towns = _known_towns(county_code)
    streets = towns[towns["kind"] == "街道"].head(n)
    return tuple((code[6:], name) for code, name in zip(streets["code"], streets["name"], strict=True)) \
        if len(streets) == n else ()


def _town_kind(name: str) -> str:
    return "苏木" if name.endswith("苏木") else ("乡" if name.endswith("乡") else "镇")


def _short(name: str) -> str:
    """``林东镇`` → ``林东``, ``乌兰达坝苏木`` → ``乌兰达坝``, ``兴隆村`` → ``兴隆``."""
    for suffix in ("街道", "苏木", "嘎查", "社区", "镇", "乡", "村"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def _lineal(geom):
    """Only the line parts of ``geom``."""
    if geom.geom_type in ("LineString", "MultiLineString"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "LineString"]
    return shapely.MultiLineString(parts) if parts else shapely.LineString()
