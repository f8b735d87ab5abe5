"""Coordinate datums: points from lon/lat columns, a file's CRS to the storage CRS, and the test for undeclared
GCJ-02 (Amap/Tencent) coordinates (:func:`detect_gcj02`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids import _validate as V
from grids.crs import gcj02_to_wgs84, gdf_gcj02_to_wgs84, gk_crs_for, wgs84_to_gcj02
from grids.errors import ValidationError
from grids.ingest.schema import COORDS
from grids.model import STORAGE_EPSG
from grids.workspace import Workspace

GCJ02_MIN_POINTS = 5
"""Undeclared GCJ-02 is suspected only when at least this many points fit better after the shift …"""


GCJ02_MIN_RATIO = 4.0
"""… and at least this many times more points fit better than fit worse."""


GCJ02_SAMPLE = 20_000
"""At most this many points are compared (a seeded sample of bigger files)."""


@dataclass(frozen=True)
class DatumCheck:
    """How well points fit the workspace as read, and after the GCJ-02 shift (see :func:`detect_gcj02`).

    Attributes
    ----------
    checked : int
        Points compared (a sample of at most :data:`GCJ02_SAMPLE`).
    misfit : int
        Of those, points as read that lie outside their declared group/village polygon (or, without a known
        code, outside the county).
    misfit_shifted : int
        The same after the alternative reading of the coordinates.
    improved, worsened : int
        Points that fit only after / only before the alternative reading.
    offset_m : float
        Median distance (metres, Gauss-Krüger) between the two readings.
    by_code : bool
        Whether village/group codes were used (else the county outline only).
    declared : str or None
        The declared datum (``None``: not declared). With ``gcj02`` the alternative is *not* converting.
    """

    checked: int
    misfit: int
    misfit_shifted: int
    improved: int
    worsened: int
    offset_m: float
    by_code: bool
    declared: str | None = None

    @property
    def suspect(self) -> bool:
        """True when the alternative reading fits clearly better (the declared/assumed datum is wrong)."""
        return self.improved >= GCJ02_MIN_POINTS and self.improved >= GCJ02_MIN_RATIO * self.worsened

    def message(self) -> str:
        """The warning in Chinese: what was found, by how much, and which option fixes it."""
        basis = "所填的村/组范围（无代码的按县界）" if self.by_code else "县界"
        offset = f"约 {max(10, round(self.offset_m, -1)):.0f} 米"
        if self.declared == "gcj02":
            return (f"声明为 GCJ-02，但这些坐标像是 GPS（WGS84/CGCS2000）坐标：按 GCJ-02 纠偏后有 {self.misfit} 个点"
                    f"不在{basis}内，不纠偏只有 {self.misfit_shifted} 个（抽查 {self.checked} 个点，纠偏移动{offset}）；"
                    "如果坐标不是从高德/腾讯地图取得，请用 --coords wgs84 重新导入")
        return (f"这些坐标像是 GCJ-02（高德）坐标，与本县边界相差{offset}：按原样有 {self.misfit} 个点不在{basis}内，"
                f"按 GCJ-02 纠偏后只有 {self.misfit_shifted} 个（抽查 {self.checked} 个点）；请用 --coords gcj02 重新导入")


def detect_gcj02(points: gpd.GeoSeries, workspace: Workspace, *, village_codes: Iterable[Any] | None = None,
                 group_codes: Iterable[Any] | None = None, declared: str | None = None,
                 max_points: int = GCJ02_SAMPLE) -> DatumCheck | None:
    """Compare points with the workspace's admin polygons as read and after the GCJ-02 shift.

    Amap/Tencent coordinates (GCJ-02) read as WGS84 land 100–700 m off: near a boundary, a household falls
    outside its declared group or village, or outside the county. Shifting them with
    :func:`~grids.crs.gcj02_to_wgs84` puts them back. Each point is tested against its group polygon (else its
    village, else the county outline) both ways; the undeclared datum is suspected when clearly more points
    fit after the shift than before (:attr:`DatumCheck.suspect`).

    Parameters
    ----------
    points : GeoSeries
        Points (EPSG:4490 or any CRS); missing, empty and non-point geometries are ignored.
    workspace : Workspace
        Supplies ``admin_units`` (county, village and group polygons).
    village_codes, group_codes : iterable, optional
        Declared codes, aligned with ``points``.
    declared : {'wgs84', 'cgcs2000', 'gcj02'}, optional
        What the user declared. With ``gcj02`` the points were converted already, and the alternative tested
        is *not* converting them (GPS coordinates wrongly declared as GCJ-02).
    max_points : int
        Compare at most this many points (a seeded random sample).

    Returns
    -------
    DatumCheck or None
        ``None`` when there is nothing to compare (no admin polygons, no point).
    """
    admin = (cast(gpd.GeoDataFrame, workspace.read("admin_units", columns=["code", "level"]))  # a layer with geometry
             if workspace.count("admin_units") else None)
    geo = points.to_crs(STORAGE_EPSG) if points.crs is not None and points.crs.to_epsg() != STORAGE_EPSG else points
    n = len(geo)
    village = pd.Series(list(village_codes) if village_codes is not None else [None] * n, dtype=object)
    group = pd.Series(list(group_codes) if group_codes is not None else [None] * n, dtype=object)
    return detect_gcj02_geoms(np.asarray(geo.values, dtype=object), admin, village, group, declared, max_points)


def detect_gcj02_geoms(geoms: np.ndarray, admin: gpd.GeoDataFrame | None, village: pd.Series, group: pd.Series,
                       declared: str | None, max_points: int = GCJ02_SAMPLE) -> DatumCheck | None:
    """The comparison of :func:`detect_gcj02` on an array of geometries (EPSG:4490) and the admin units."""
    if admin is None or not len(admin):
        return None
    is_point = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
    idx = np.flatnonzero(is_point)
    if not len(idx):
        return None
    x, y = shapely.get_x(geoms[idx]), shapely.get_y(geoms[idx])
    finite = np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 180) & (np.abs(y) <= 90)
    idx, x, y = idx[finite], x[finite], y[finite]
    if len(idx) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(idx), max_points, replace=False))
        idx, x, y = idx[keep], x[keep], y[keep]
    if not len(idx):
        return None
    levels = admin["level"].astype(object)
    county_rows = admin[levels == "county"]
    if not len(county_rows):
        county_rows = admin[levels == "town"]
    county = shapely.union_all(county_rows.geometry.values) if len(county_rows) else None
    polys = {}
    for level in ("village", "group"):
        sel = admin[levels == level]
        polys[level] = dict(zip(sel["code"].astype(str), sel.geometry.values, strict=True))
    target = np.full(len(idx), county, dtype=object)
    by_code = False
    for level, codes in (("village", village), ("group", group)):  # group wins over village
        found = codes.iloc[idx].map(lambda c, d=polys[level]: d.get(str(c).strip()) if c is not None else None)
        has = found.notna().to_numpy()
        if has.any():
            by_code = True
            target[has] = found.to_numpy()[has]
    has_target = np.array([t is not None and not t.is_empty for t in target], dtype=bool)
    if not has_target.any():
        return None
    idx, x, y, target = idx[has_target], x[has_target], y[has_target], target[has_target]
    shapely.prepare(list({id(t): t for t in target}.values()))
    if declared == "gcj02":
        ax, ay = wgs84_to_gcj02(x, y)
    else:
        ax, ay = gcj02_to_wgs84(x, y)
    fit = shapely.covers(target, shapely.points(x, y))
    fit_alt = shapely.covers(target, shapely.points(ax, ay))
    pair = gpd.GeoSeries(np.concatenate([shapely.points(x, y), shapely.points(ax, ay)]), crs=STORAGE_EPSG)
    gk = np.asarray(pair.to_crs(gk_crs_for(pair)).values, dtype=object)
    offset = float(np.median(shapely.distance(gk[: len(x)], gk[len(x):])))
    return DatumCheck(checked=len(idx), misfit=int((~fit).sum()), misfit_shifted=int((~fit_alt).sum()),
                      improved=int((fit_alt & ~fit).sum()), worsened=int((fit & ~fit_alt).sum()),
                      offset_m=offset, by_code=by_code, declared=declared)


def looks_lonlat(bounds: np.ndarray) -> bool:
    """Whether ``(minx, miny, maxx, maxy)`` are finite and within longitude/latitude ranges."""
    minx, miny, maxx, maxy = bounds
    return bool(np.all(np.isfinite(bounds)) and -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90)


def points_from_columns(frame: pd.DataFrame, lon_col: str, lat_col: str, coords: str, source: str
                        ) -> tuple[np.ndarray, list[str], list[tuple[int, str, str, str]]]:
    """Points (EPSG:4490) from a lon and a lat column, converted from ``coords``; swapped columns are swapped
    back. Returns the points (``None`` where a row has none), notes and row problems."""
    notes: list[str] = []
    problems: list[tuple[int, str, str, str]] = []

    def num(col: str) -> pd.Series:
        text = frame[col].astype("str").str.strip().str.replace(r"[°\s]", "", regex=True)
        return pd.to_numeric(text.where(V.present(frame[col])), errors="coerce").astype(float)

    lon, lat = num(lon_col), num(lat_col)
    has_lon, has_lat = V.present(frame[lon_col]), V.present(frame[lat_col])
    both = (lon.notna() & lat.notna()).to_numpy()
    if both.any():
        mlon, mlat = float(np.median(lon[both])), float(np.median(lat[both]))
        if -90 <= mlon <= 60 and 70 <= mlat <= 180:
            lon, lat = lat, lon
            notes.append(f"“{lon_col}”与“{lat_col}”两列似乎填反了（经度应在 73–135 之间），已对调")
        inrange = both & (lon.abs() <= 180).to_numpy() & (lat.abs() <= 90).to_numpy()
        if not inrange.any():
            raise ValidationError(
                f"“{lon_col}/{lat_col}”的数值不像经纬度（例如 {lon[both].iloc[0]:g}, {lat[both].iloc[0]:g}），"
                "坐标系未知", file=source,
                fix="把坐标换成经纬度（度，例如 119.39, 43.98）后再导入，或导出带坐标系的 Shapefile/GeoPackage")
    for n in frame.index[(has_lon & lon.isna()) | (has_lat & lat.isna())]:
        col = lon_col if has_lon[n] and pd.isna(lon[n]) else lat_col
        problems.append((n, col, "坐标不是数字", "填写十进制度数，例如 119.3921；或清空两列只用村/组代码定位"))
    for n in frame.index[(has_lon ^ has_lat) & lon.notna() | (has_lon ^ has_lat) & lat.notna()]:
        col = lat_col if has_lon[n] else lon_col
        problems.append((n, col, "经纬度只填了一个", "经度、纬度要么都填，要么都空（只用村/组代码定位）"))
    bad_range = lon.notna() & lat.notna() & ((lon.abs() > 180) | (lat.abs() > 90))
    for n in frame.index[bad_range]:
        problems.append((n, lon_col if abs(lon[n]) > 180 else lat_col, "坐标超出经纬度范围",
                         "经度应在 -180–180、纬度在 -90–90 之间；检查小数点和是否填反"))
    ok = (lon.notna() & lat.notna() & ~bad_range).to_numpy()
    x = np.array(lon.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    y = np.array(lat.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if ok.any():
        if coords == "gcj02":
            x[ok], y[ok] = gcj02_to_wgs84(x[ok], y[ok])
            notes.append("坐标按 GCJ-02（高德/腾讯）读取，已转换为 CGCS2000")
        else:
            notes.append(f"CSV/Excel 没有坐标系信息，坐标按 {COORDS[coords]} 经纬度处理"
                         "（如果坐标来自高德或腾讯地图，请加 --coords gcj02）")
    geoms = np.full(len(frame), None, dtype=object)
    geoms[ok] = shapely.points(x[ok], y[ok])
    return geoms, notes, problems


def to_storage_crs(geo: gpd.GeoSeries, coords: str, source: str, notes: list[str]) -> gpd.GeoSeries:
    """``geo`` in EPSG:4490: a file's CRS honoured, none taken as ``coords`` lon/lat, GCJ-02 converted; notes
    appended to ``notes``."""
    present = geo[~(geo.isna() | geo.is_empty)]
    if geo.crs is None:
        if len(present) and not looks_lonlat(np.asarray(present.total_bounds, dtype=float)):
            raise ValidationError(
                "文件没有坐标系（缺少 .prj 或 CRS），坐标也不像经纬度，无法确定位置", file=source,
                fix="在 GIS 软件中为数据定义正确的坐标系后导出（Shapefile 需附带 .prj），或换成经纬度")
        if len(present):
            notes.append(f"文件没有坐标系信息，坐标按 {COORDS[coords]} 经纬度处理")
        geo = geo.set_crs(STORAGE_EPSG)
    elif geo.crs.to_epsg() != STORAGE_EPSG:
        crs_name = geo.crs.name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                geo = geo.to_crs(STORAGE_EPSG)
        except Exception as exc:
            raise ValidationError(f"无法把坐标系 {crs_name} 转换到 CGCS2000：{exc}", file=source,
                                  fix="在 GIS 软件中把数据转换到 EPSG:4490 或 EPSG:4326 后再导入") from exc
        after = geo[~(geo.isna() | geo.is_empty)]
        if len(after) and not looks_lonlat(np.asarray(after.total_bounds, dtype=float)):
            raise ValidationError("坐标转换后不在经纬度范围内，文件的坐标系声明可能不对", file=source,
                                  fix="检查 .prj/CRS 是否与坐标数值一致")
    if coords == "gcj02" and len(present):
        geo = gdf_gcj02_to_wgs84(gpd.GeoDataFrame(geometry=geo)).geometry
        notes.append("坐标按 GCJ-02（高德/腾讯）读取，已转换为 CGCS2000")
    return geo.set_crs(STORAGE_EPSG, allow_override=True)
