"""Reading a user file (:func:`read_table`) into an :class:`IngestResult`: the rows as text, points or
geometries in the storage CRS, and what reading found."""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from grids.errors import ValidationError
from grids.ingest.columns import recognise_columns, rename_map
from grids.ingest.datum import points_from_columns, to_storage_crs
from grids.ingest.schema import COORDS, ROW_INDEX, RowProblem
from grids.ingest.shapefile import check_shapefile, dbf_encoding
from grids.ingest.tabular import read_csv, stringify
from grids.ingest.xlsx import read_xlsx
from grids.model import STORAGE_EPSG
from grids.text import plain, unescape_spreadsheet_cell


@dataclass
class IngestResult:
    """A file as read by :func:`read_table`, with what reading found: the input of :func:`~grids.ingest.validation.validate`.

    Attributes
    ----------
    frame : GeoDataFrame
        Text attributes as typed (``None`` for blank cells), a ``geometry`` column (``None`` where a row has no
        location), EPSG:4490, index :data:`~grids.ingest.schema.ROW_INDEX` (the row number the user sees).
    source : str
        The file's name, for messages and the rejects file.
    warnings : list of str
        Things done on the user's behalf while reading (encoding detected, title rows skipped, CRS assumed …).
    row_problems : list of (row, column, reason, fix)
        Problems of single rows found while reading (ragged rows, coordinates that are not numbers …).
    tabular : bool
        CSV or XLSX (rejects then carry no WKT column: the row's own lon/lat cells are in it).
    coords : str
        The datum the coordinates were read in (a key of :data:`~grids.ingest.schema.COORDS`).
    coords_declared : bool
        Whether the user declared ``coords`` (else WGS84 was assumed, and GCJ-02 is tested for).
    geometry_label : str or None
        The file's column(s) the points came from (``经度/纬度``), for messages about the geometry.
    text : bool
        Every attribute cell is text already (no conversion needed).
    """

    frame: gpd.GeoDataFrame
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    row_problems: list[RowProblem] = field(default_factory=list)
    tabular: bool = False
    coords: str = "wgs84"
    coords_declared: bool = False
    geometry_label: str | None = None
    text: bool = False

    @classmethod
    def wrap(cls, table: IngestResult | pd.DataFrame, source: str) -> IngestResult:
        """``table`` itself, or a frame that did not come from :func:`read_table` with nothing found while reading
        (any geometry column kept; a plain DataFrame gets none)."""
        if isinstance(table, IngestResult):
            return table
        if isinstance(table, gpd.GeoDataFrame) and table.geometry.name in table.columns:
            return cls(frame=table, source=source)
        return cls(frame=gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(np.full(len(table), None, dtype=object), index=table.index)),
                   source=source)


_TABULAR = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}


_SPATIAL = {".gpkg": "gpkg", ".shp": "shp", ".geojson": "geojson", ".json": "geojson", ".kml": "kml",
            ".kmz": "kml"}


def read_spatial(path: Path, kind: str, layer: str | None, encoding: str | None
                 ) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The features of a GeoPackage, Shapefile, GeoJSON or KML (every KML folder when ``layer`` is not given),
    with notes on what was detected."""
    notes: list[str] = []
    if kind == "shp":
        check_shapefile(path)
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:
        raise ValidationError(f"无法读取：{exc}", file=path.name,
                              fix="文件可能已损坏、被截断或不是所说的格式；重新导出或从备份取得完整文件") from exc
    if not names:
        raise ValidationError("文件里没有任何图层", file=path.name, fix="检查是否选错了文件")
    if layer is not None and layer not in names:
        raise ValidationError(f"文件里没有图层 “{layer}”", file=path.name, fix=f"可用的图层：{'、'.join(names)}")
    if layer is None and len(names) > 1 and kind != "kml":
        raise ValidationError(f"文件里有 {len(names)} 个图层，不知道导入哪一个", file=path.name,
                              fix=f"用 --layer-name 指定其中之一：{'、'.join(names)}")
    kwargs: dict[str, Any] = {}
    if kind == "shp":
        cpg = next((p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.exists()), None)
        if encoding:
            kwargs["encoding"] = encoding
        elif cpg is None:
            detected = dbf_encoding(path)
            if detected:
                kwargs["encoding"] = detected
                notes.append(f"Shapefile 没有 .cpg 文件，属性文字不是 UTF-8，已按 {detected} 读取"
                             "（如仍有乱码，请用 --encoding 指定编码）")
    targets = [layer] if layer is not None else names
    frames = []
    for name in targets:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gdf = pyogrio.read_dataframe(path, layer=name, **kwargs)
        except Exception as exc:
            raise ValidationError(f"无法读取图层 {name}：{exc}", file=path.name,
                                  fix="文件可能已损坏或被截断；重新导出或从备份取得完整文件") from exc
        notes += [f"读取时 GDAL 提示：{w.message}" for w in caught]
        frames.append(gdf)
    if len(frames) > 1:
        crs = next((f.crs for f in frames if f.crs is not None), None)
        frames = [f.set_crs(crs, allow_override=True) if crs is not None else f for f in frames]
        gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)
        notes.append(f"合并读取了文件中的 {len(frames)} 个图层（文件夹）：{'、'.join(targets)}")
    else:
        gdf = frames[0]
    return gdf, notes


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _TABULAR:
        return _TABULAR[suffix]
    if suffix in _SPATIAL:
        return _SPATIAL[suffix]
    if suffix == ".xls":
        raise ValidationError("不支持旧版 Excel（.xls）", file=path.name, fix="用 Excel 另存为 .xlsx 后再导入")
    if suffix in (".dbf", ".shx", ".prj", ".cpg"):
        raise ValidationError("这是 Shapefile 的附属文件", file=path.name, fix="选择同名的 .shp 文件")
    if suffix == ".zip":
        raise ValidationError("不直接读取压缩包", file=path.name, fix="先解压，再导入其中的 .shp/.gpkg/.csv 文件")
    raise ValidationError(f"不认识的文件类型 “{suffix or '无扩展名'}”", file=path.name,
                          fix="支持 .gpkg .shp .geojson .json .kml .kmz .csv .txt .xlsx")


def read_table(file: str | os.PathLike[str], *, layer: str | None = None, encoding: str | None = None,
               coords: str | None = None, mapping: Mapping[str, str] | None = None) -> IngestResult:
    """Read a user file as a GeoDataFrame in EPSG:4490 with text attributes and row numbers as index.

    Parameters
    ----------
    file : path
        GeoPackage, Shapefile, GeoJSON, KML/KMZ, CSV/TXT or XLSX.
    layer : str, optional
        Layer (GeoPackage), worksheet (XLSX) to read; KML folders are all read when not given.
    encoding : str, optional
        Text encoding of a CSV or of a Shapefile without ``.cpg`` (``gbk``). Detected when not given:
        UTF-8 first, then GBK (and said so in the warnings).
    coords : {'wgs84', 'cgcs2000', 'gcj02'}, optional
        Datum of the input coordinates. ``gcj02`` (Amap/Tencent) is converted; a file's own CRS is honoured
        (reprojected to EPSG:4490) and a file without one is assumed to be in ``coords``. ``None`` (the
        default) means *not declared*: read as WGS84, and :func:`validate` checks against the workspace
        whether the points look like undeclared GCJ-02 (:func:`detect_gcj02`).
    mapping : mapping, optional
        ``{file header: new header}`` renames applied first (e.g. ``{"东经": "lon", "户号": "hh_id"}``).

    Returns
    -------
    IngestResult
        ``frame``: text attributes as typed (``None`` for blank cells), a ``geometry`` column (``None`` where a
        row has no location), index ``row``; with the ``warnings`` and ``row_problems`` (row, column, reason,
        fix) found while reading, for :func:`validate`.

    Raises
    ------
    ValidationError
        The file is missing, empty, unreadable/truncated, of an unknown type or CRS.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "hh.csv"
    >>> _ = p.write_text("户号,经度,纬度\\nH1,119.39,43.98\\n", encoding="utf-8")
    >>> t = read_table(p)
    >>> t.frame.index.tolist(), t.frame.geometry.iloc[0].x, t.frame.crs.to_epsg()
    ([2], 119.39, 4490)
    """
    path = Path(file)
    declared = coords is not None
    coords = coords or "wgs84"
    if coords not in COORDS:
        raise ValidationError(f"不认识的坐标系声明 “{coords}”", fix=f"可选：{'、'.join(COORDS)}")
    if not path.exists():
        raise ValidationError("文件不存在", file=str(path), fix="检查路径和文件名")
    kind = _format_of(path)
    if path.stat().st_size == 0:
        raise ValidationError("文件是空的（0 字节）", file=path.name, fix="检查是否选错了文件，或重新导出")
    problems: list[tuple[int, str, str, str]] = []
    if kind in ("csv", "xlsx"):
        table, notes, problems = read_csv(path, encoding) if kind == "csv" else read_xlsx(path, layer)
        if mapping:
            table = table.rename(columns=rename_map(table.columns, mapping))
        coord_cols = {v: k for k, v in recognise_columns(table.columns, "households").items() if v in ("lon", "lat")}
        if len(coord_cols) == 1:
            only = next(iter(coord_cols.values()))
            raise ValidationError(f"只有“{only}”一列坐标", file=path.name,
                                  fix="同时提供经度和纬度两列，或删掉这一列只用村/组代码定位")
        if coord_cols:
            coord_label = f"{coord_cols['lon']}/{coord_cols['lat']}"
            geoms, more, coord_problems = points_from_columns(table, coord_cols["lon"], coord_cols["lat"],
                                                              coords, path.name)
            notes += more
            problems += coord_problems
        else:
            coord_label = None
            geoms = np.full(len(table), None, dtype=object)
        gdf = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, index=table.index), crs=STORAGE_EPSG)
    else:
        coord_label = None
        raw, notes = read_spatial(path, kind, layer, encoding)
        if not len(raw):
            raise ValidationError("文件里没有任何要素", file=path.name, fix="检查是否选错了文件或图层")
        geo = gpd.GeoSeries(shapely.force_2d(raw.geometry.values), crs=raw.crs) if raw.geometry.name in raw \
            else gpd.GeoSeries(np.full(len(raw), None, dtype=object), crs=raw.crs)
        geo = to_storage_crs(geo, coords, path.name, notes)
        table = stringify(raw)
        if mapping:
            table = table.rename(columns=rename_map(table.columns, mapping))
        index = pd.RangeIndex(1, len(raw) + 1, name=ROW_INDEX)
        table.index = index
        gdf = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geo.values, index=index), crs=STORAGE_EPSG)
    if kind in ("csv", "xlsx"):  # a rejects file or names template written by the app, read back: as typed
        undone = 0
        for col in [c for c in gdf.columns if c != gdf.geometry.name and gdf[c].dtype == object]:
            back = gdf[col].map(unescape_spreadsheet_cell)
            n = int((back.astype(object) != gdf[col].astype(object)).sum())
            if n:
                gdf[col] = back
                undone += n
        if undone:
            notes.append(f"{undone} 个单元格以导出时为防止公式执行而加的 ' 开头，已按原文读取（例如再次导入被拒绝的行）")
    return IngestResult(frame=gdf, source=path.name, warnings=notes, row_problems=problems,
                        tabular=kind in ("csv", "xlsx"), coords=coords, coords_declared=declared,
                        geometry_label=coord_label, text=True)


_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def source_digests(file: str | os.PathLike[str]) -> dict[str, str]:
    """SHA-256 (hex) of the file read by an import, and of a Shapefile's sidecar files: name → digest.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_bytes(b"")
    >>> source_digests(p)
    {'a.csv': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'}
    """
    path = Path(file)
    files = [path]
    if path.suffix.lower() == ".shp":
        files += [p for p in sorted(path.parent.glob(path.stem + ".*"))
                  if p != path and p.suffix.lower() in _SHAPEFILE_PARTS and p.is_file()]
    out = {}
    for f in files:
        digest = hashlib.sha256()
        with f.open("rb") as fh:
            for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
                digest.update(chunk)
        out[f.name] = digest.hexdigest()
    return out


def read_source(path: Path, *, layer: str | None = None, encoding: str | None = None, coords: str | None = None,
                mapping: Mapping[str, str] | None = None) -> tuple[IngestResult, dict[str, str]]:
    """:func:`read_table` of ``path`` and :func:`source_digests` of what was read: the first step of every import.

    Raises
    ------
    ValidationError
        The file cannot be read (missing, no permission, still being written), naming the file and the fix.
    """
    try:
        return (read_table(path, layer=layer, encoding=encoding, coords=coords, mapping=mapping),
                source_digests(path))
    except OSError as exc:
        raise ValidationError(f"无法读取文件：{plain(exc.strerror or exc, limit=120)}", file=path.name,
                              fix="检查文件是否存在、是否有读取权限、是否仍在被其他程序写入") from exc
