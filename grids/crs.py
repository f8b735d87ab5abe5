"""Coordinates: GCJ-02 ⇄ WGS84, CGCS2000 Gauss-Krüger zones, projection helpers.

Storage is EPSG:4490 (CGCS2000 geographic, equal to WGS84 at the precision we need). Areas and distances are
computed in the CGCS2000 3-degree Gauss-Krüger zone of the data (EPSG:4534 … EPSG:4554), never in degrees.
GCJ-02 is the obfuscated datum of Chinese web maps (Amap/Gaode): shifted 100–700 m from WGS84.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, overload

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.errors import ValidationError

if TYPE_CHECKING:
    from geopandas.array import GeometryArray

_A = 6378245.0
_EE = 0.00669342162296594323

ArrayLike = TypeVar("ArrayLike", float, np.ndarray)

Coords = np.ndarray | pd.Series
"""Vectors of longitudes or latitudes (scalars are ``float``)."""

_LonLat = tuple[float, float] | tuple[np.ndarray, np.ndarray]

_GeoT = TypeVar("_GeoT", gpd.GeoDataFrame, gpd.GeoSeries)


def _out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * pi)
    return dlon, dlat


def _as_arrays(lon: float | Coords, lat: float | Coords) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), scalar


def _ret(lon: np.ndarray, lat: np.ndarray, scalar: bool) -> _LonLat:
    if scalar:
        return float(lon), float(lat)
    return lon, lat


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: Coords, lat: Coords) -> tuple[np.ndarray, np.ndarray]: ...
def wgs84_to_gcj02(lon: float | Coords, lat: float | Coords) -> _LonLat:
    """Shift WGS84 (or CGCS2000) coordinates to GCJ-02, the datum of Amap tiles.

    Vectorised over numpy arrays; scalars give a ``(lon, lat)`` tuple of floats. Points outside China are
    returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.397, 39.908)
    >>> round(lon - 116.397, 4), round(lat - 39.908, 4)
    (0.0062, 0.0014)
    """
    x, y, scalar = _as_arrays(lon, lat)
    dlon, dlat = _delta(x, y)
    out = _out_of_china(x, y)
    return _ret(np.where(out, x, x + dlon), np.where(out, y, y + dlat), scalar)


@overload
def gcj02_to_wgs84(lon: float, lat: float, *, tol: float = ...,
                   max_iter: int = ...) -> tuple[float, float]: ...
@overload
def gcj02_to_wgs84(lon: Coords, lat: Coords, *, tol: float = ...,
                   max_iter: int = ...) -> tuple[np.ndarray, np.ndarray]: ...
def gcj02_to_wgs84(lon: float | Coords, lat: float | Coords, *, tol: float = 1e-10,
                   max_iter: int = 30) -> _LonLat:
    """Invert :func:`wgs84_to_gcj02` by fixed-point iteration (round trip well under 1 cm).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(119.39, 43.98))
    >>> abs(lon - 119.39) < 1e-9 and abs(lat - 43.98) < 1e-9
    True
    """
    glon, glat, scalar = _as_arrays(lon, lat)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        dlon, dlat = _delta(wlon, wlat)
        elon = glon - (wlon + dlon)
        elat = glat - (wlat + dlat)
        wlon = wlon + elon
        wlat = wlat + elat
        if np.nanmax(np.abs(np.concatenate([np.ravel(elon), np.ravel(elat), [0.0]]))) < tol:
            break
    out = _out_of_china(glon, glat)
    return _ret(np.where(out, glon, wlon), np.where(out, glat, wlat), scalar)


def _shift_geometries(geoms: np.ndarray | GeometryArray,
                      func: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    def tf(coords: np.ndarray) -> np.ndarray:
        x, y = func(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, tf)


def gdf_gcj02_to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return a copy of a GCJ-02 GeoDataFrame (lon/lat degrees) converted to CGCS2000/EPSG:4490."""
    out = gdf.copy()
    out.geometry = gpd.GeoSeries(
        _shift_geometries(gdf.geometry.values, gcj02_to_wgs84), index=gdf.index, crs="EPSG:4490"
    )
    return out.set_crs("EPSG:4490", allow_override=True)


def gdf_wgs84_to_gcj02(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return a copy of a geographic GeoDataFrame shifted to GCJ-02 for display on Amap tiles.

    The result is labelled EPSG:4326 because no EPSG code exists for GCJ-02; do not store it.
    """
    src = gdf.to_crs(4490) if gdf.crs is not None and not gdf.crs.equals("EPSG:4490") else gdf
    out = src.copy()
    out.geometry = gpd.GeoSeries(
        _shift_geometries(src.geometry.values, wgs84_to_gcj02), index=src.index, crs="EPSG:4326"
    )
    return out.set_crs("EPSG:4326", allow_override=True)


def gk_zone_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone (CM 75°E … 135°E) nearest to ``lon``.

    Examples
    --------
    >>> gk_zone_epsg(119.39)
    4549
    >>> gk_zone_epsg(75.0), gk_zone_epsg(135.0)
    (4534, 4554)
    """
    if not np.isfinite(lon) or not -180.0 <= lon <= 180.0:
        raise ValidationError(f"经度 {lon} 无效", fix="经度应在 -180 到 180 度之间（检查是否经纬度颠倒）")
    if not CHINA_EXTENT[0] <= lon <= CHINA_EXTENT[2]:
        raise ValidationError(
            f"经度 {lon:.2f} 不在中国境内（CGCS2000 高斯-克吕格三度带只覆盖东经 73.5°–136.5°）",
            fix="检查数据的坐标系（.prj）和经纬度顺序；中国境外的数据不能用本系统")
    cm = int(np.clip(np.round(lon / 3.0) * 3, 75, 135))
    return 4534 + (cm - 75) // 3


def gk_crs_for(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> int:
    """EPSG code of the Gauss-Krüger zone of the centre of ``gdf``'s extent (geographic or projected)."""
    if gdf.crs is None:
        raise ValidationError(
            "数据没有坐标参考系（CRS）", fix="先用 set_crs 声明坐标系，例如 EPSG:4490 或 EPSG:4326"
        )
    geo = gdf if gdf.crs.is_geographic else gdf.to_crs(4490)
    minx, _, maxx, _ = geo.total_bounds
    if not np.all(np.isfinite([minx, maxx])):
        raise ValidationError("数据没有任何几何图形，无法选择投影带", fix="检查输入是否为空")
    centre = float((minx + maxx) / 2.0)
    if not CHINA_EXTENT[0] <= centre <= CHINA_EXTENT[2]:
        # a few stray rows (a point at 0°E) pull the extent's centre out of China: the typical geometry decides,
        # the strays are refused row by row by whoever checks them; data that is all abroad is refused here
        b = geo.bounds
        centre = float(np.nanmedian(((b["minx"] + b["maxx"]) / 2.0).to_numpy()))
    return gk_zone_epsg(centre)


def to_gk(gdf: _GeoT, *, epsg: int | None = None) -> _GeoT:
    """Project ``gdf`` to its CGCS2000 Gauss-Krüger zone (or to ``epsg`` when given), returning a copy.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> s = gpd.GeoSeries([shapely.box(119.0, 43.0, 119.01, 43.01)], crs=4490)
    >>> to_gk(s).crs.to_epsg()
    4549
    """
    return gdf.to_crs(epsg or gk_crs_for(gdf))


# -- where data lies: inside China, and in which datum ---------------------------------------------------------

CHINA_EXTENT = (72.0, 0.8, 137.9, 55.9)
"""Lon/lat box around China (incl. the South China Sea islands): data outside it is not a county of ours."""

COORDS = ("wgs84", "gcj02", "cgcs2000")
"""Declarable coordinate systems of lon/lat input (``--coords``): WGS84 and CGCS2000 are one at our precision."""


def outside_china(bounds: tuple[float, float, float, float]) -> str | None:
    """Why lon/lat ``bounds`` (minx, miny, maxx, maxy) are not in China, or None when they are.

    Examples
    --------
    >>> outside_china((118.7, 43.6, 119.8, 44.8)) is None
    True
    >>> outside_china((43.6, 118.7, 44.8, 119.8))
    '坐标在中国境外（经度 43.60–44.80，纬度 118.70–119.80），看起来经纬度颠倒了'
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return "没有任何有效坐标"
    x0, y0, x1, y1 = CHINA_EXTENT
    if x0 <= minx and maxx <= x1 and y0 <= miny and maxy <= y1:
        return None
    where = f"坐标在中国境外（经度 {minx:.2f}–{maxx:.2f}，纬度 {miny:.2f}–{maxy:.2f}）"
    if x0 <= miny and maxy <= x1 and y0 <= minx and maxx <= y1:
        where += "，看起来经纬度颠倒了"
    return where


def require_in_china(gdf: gpd.GeoDataFrame | gpd.GeoSeries, *, file: str | None = None,
                     what: str = "数据") -> None:
    """Refuse data whose extent (in lon/lat, after reprojection from its CRS) is not in China.

    A county's data outside China means a wrong ``.prj``, swapped coordinates or a projected file read as
    degrees; used as it is, it would get a Gauss-Krüger zone far away and wrong areas.

    Raises
    ------
    ValidationError
        With the extent found and how to fix the file.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> require_in_china(gpd.GeoSeries([shapely.box(119.0, 43.0, 119.1, 43.1)], crs=4490))
    >>> try:
    ...     require_in_china(gpd.GeoSeries([shapely.box(59.0, 43.0, 59.1, 43.1)], crs=4490), what="县界")
    ... except ValidationError as exc:
    ...     print(str(exc).split("。")[0])
    县界的坐标在中国境外（经度 59.00–59.10，纬度 43.00–43.10）（文件坐标系 EPSG:4490）
    """
    if gdf.crs is None:
        raise ValidationError(f"{what}没有坐标参考系（CRS）", file=file,
                              fix="为文件设定坐标系（.prj），例如 EPSG:4490 或 EPSG:4326")
    geo = gdf if gdf.crs.is_geographic else gdf.to_crs(4490)
    minx, miny, maxx, maxy = (float(v) for v in geo.total_bounds)
    why = outside_china((minx, miny, maxx, maxy))
    if why is None:
        return
    crs = gdf.crs.to_string()
    raise ValidationError(
        f"{what}的{why}（文件坐标系 {crs}）", file=file,
        fix="检查文件的坐标系（.prj）是否与坐标相符：投影坐标（米）要配投影坐标系（如 CGCS2000 高斯-克吕格 "
            "EPSG:4534–4554），经纬度要配 EPSG:4490/4326；经纬度颠倒时交换 X、Y 列")


def _metres(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    kx = 111_320.0 * np.cos(np.radians((lat0 + lat1) / 2))
    return float(np.hypot((lon1 - lon0) * kx, (lat1 - lat0) * 110_574.0))


def match_datum(geom: shapely.Geometry, reference: shapely.Geometry) -> dict[str, float | str]:
    """Tell whether lon/lat ``geom`` is in WGS84/CGCS2000 or in GCJ-02, by comparing it with ``reference``, the
    same place (a county outline) in WGS84/CGCS2000.

    Compares the centroid of ``geom`` read as WGS84 and read as GCJ-02 (converted) with the reference's: the
    reading that lands within 30 % of the local GCJ-02 shift (≈ 300–700 m) while the other is off by at least
    70 % of it wins, provided the shapes overlap (intersection over union ≥ 0.9 for that reading); otherwise
    the datum is ``unknown`` (another outline, or too different a drawing to tell).

    Returns
    -------
    dict
        ``datum`` (``wgs84``, ``gcj02`` or ``unknown``), ``off_wgs84_m`` and ``off_gcj02_m`` (centroid distances
        to the reference for each reading), ``shift_m`` (the GCJ-02 shift there) and ``overlap`` (intersection
        over union with the reference: of the reading found, else of the better one).

    Examples
    --------
    >>> import shapely
    >>> ref = shapely.box(119.0, 43.8, 119.6, 44.4)
    >>> match_datum(ref, ref)["datum"]
    'wgs84'
    >>> gcj = shapely.transform(ref, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    >>> match_datum(gcj, ref)["datum"]
    'gcj02'
    >>> match_datum(shapely.box(118.0, 43.8, 118.6, 44.4), ref)["datum"]
    'unknown'
    """
    as_gcj = _shift_geometries(np.asarray([geom], dtype=object), gcj02_to_wgs84)[0]
    c, cg, cr = shapely.centroid(geom), shapely.centroid(as_gcj), shapely.centroid(reference)
    shift = _metres(c.x, c.y, cg.x, cg.y)
    off_w = _metres(c.x, c.y, cr.x, cr.y)
    off_g = _metres(cg.x, cg.y, cr.x, cr.y)

    def iou(a: shapely.Geometry) -> float:
        union = shapely.union(a, reference).area
        return float(shapely.intersection(a, reference).area / union) if union > 0 else 0.0

    datum = "unknown"
    if off_g <= 0.3 * shift and off_w >= 0.7 * shift:
        datum = "gcj02"
    elif off_w <= 0.3 * shift and off_g >= 0.7 * shift:
        datum = "wgs84"
    overlap = {"gcj02": iou(as_gcj), "wgs84": iou(geom)}.get(datum) or max(iou(as_gcj), iou(geom))
    if overlap < 0.9:
        datum = "unknown"
    return {"datum": datum, "off_wgs84_m": off_w, "off_gcj02_m": off_g, "shift_m": shift, "overlap": overlap}
