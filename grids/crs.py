"""Coordinates: GCJ-02 ⇄ WGS84, CGCS2000 Gauss-Krüger zones, projection helpers.

Storage is EPSG:4490 (CGCS2000 geographic, equal to WGS84 at the precision we need). Areas and distances are
computed in the CGCS2000 3-degree Gauss-Krüger zone of the data (EPSG:4534 … EPSG:4554), never in degrees.
GCJ-02 is the obfuscated datum of Chinese web maps (Amap/Gaode): shifted 100–700 m from WGS84.
"""

from __future__ import annotations

from typing import TypeVar

import geopandas as gpd
import numpy as np
import shapely

from grids.errors import ValidationError

_A = 6378245.0
_EE = 0.00669342162296594323

ArrayLike = TypeVar("ArrayLike", float, np.ndarray)


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


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), scalar


def _ret(lon: np.ndarray, lat: np.ndarray, scalar: bool):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def wgs84_to_gcj02(lon, lat):
    """Shift WGS84 (or CGCS2000) coordinates to GCJ-02, the datum of Amap tiles.

    Vectorised over numpy arrays; scalars give a ``(lon, lat)`` tuple of floats. Points outside China are
    returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.397, 39.908)
    >>> round(lon - 116.397, 4), round(lat - 39.908, 4)
    (0.0062, 0.0014)
    """
    lon, lat, scalar = _as_arrays(lon, lat)
    dlon, dlat = _delta(lon, lat)
    out = _out_of_china(lon, lat)
    return _ret(np.where(out, lon, lon + dlon), np.where(out, lat, lat + dlat), scalar)


def gcj02_to_wgs84(lon, lat, *, tol: float = 1e-10, max_iter: int = 30):
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


def _shift_geometries(geoms: np.ndarray, func) -> np.ndarray:
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
    return gk_zone_epsg((minx + maxx) / 2.0)


def to_gk(gdf: gpd.GeoDataFrame | gpd.GeoSeries, *, epsg: int | None = None):
    """Project ``gdf`` to its CGCS2000 Gauss-Krüger zone (or to ``epsg`` when given), returning a copy.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> s = gpd.GeoSeries([shapely.box(119.0, 43.0, 119.01, 43.01)], crs=4490)
    >>> to_gk(s).crs.to_epsg()
    4549
    """
    return gdf.to_crs(epsg or gk_crs_for(gdf))
