"""Exports staff take into the field: 入户清单 (xlsx), GeoPackage, KML, printable maps (PNG/PDF), offline HTML.

Personal data is masked by default (``150422********1234``, ``138****5678``); ``unmask=True`` shows it in full
and :func:`export_plan` records such an export in the audit trail.

Text from data (names, addresses, notes) is made safe at one boundary, :mod:`grids.text`: spreadsheet cells that
would run as a formula (a line starting with ``=``, ``+``, ``-``, ``@``, tab, CR or ``|``) are stored as text
(:func:`xlsx_cell`), KML names and descriptions are HTML-escaped (Google Earth renders descriptions as HTML),
and printable maps show ``$`` literally (no mathtext).

Examples
--------
>>> mask_id_no("150422198001011234"), mask_phone("13812345678")
('150422********1234', '138****5678')
"""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids import privacy, text
from grids.coverage import funnel, locate_households
from grids.crs import gk_crs_for
from grids.errors import ValidationError
from grids.household_status import NOT_ARCHIVED, STATUS_COLORS, STATUS_ORDER, flag_column, household_status
from grids.model import STORAGE_EPSG

__all__ = [
    "FORMATS",
    "boundary_labels",
    "export_plan",
    "frame_csv",
    "frame_xlsx",
    "mask_id_no",
    "mask_phone",
    "select_grids",
    "walking_order",
    "write_gpkg",
    "write_html",
    "write_kml",
    "write_xlsx",
    "xlsx_cell",
]

FORMATS: tuple[str, ...] = ("xlsx", "gpkg", "kml", "png", "pdf", "html")
DERIVED_LABEL = "推算村界"
"""How exports name a boundary derived from village seats (``admin_units.derived``; :mod:`grids.villages`)."""


def boundary_labels(grids: pd.DataFrame, admin_units: pd.DataFrame) -> pd.Series:
    """:data:`DERIVED_LABEL` for each grid made of derived units (推算村界), else ``""``; aligned to ``grids``.

    A grid is derived when any unit in its ``source_codes`` (a village, a group, or the zone of a street block
    ``<code>B<nnn>``) — or the village a group belongs to — has ``derived`` true.

    Examples
    --------
    >>> admin = pd.DataFrame({"code": ["150422100201", "150422100202"], "derived": [True, None]})
    >>> grids = pd.DataFrame({"source_codes": ["150422100201001,150422100201002", "150422100202", None]})
    >>> boundary_labels(grids, admin).tolist()
    ['推算村界', '', '']
    """
    if "derived" not in admin_units.columns or "source_codes" not in grids.columns:
        return pd.Series("", index=grids.index, dtype=object)
    flags = [not pd.isna(v) and bool(v) for v in admin_units["derived"]]
    derived = set(admin_units["code"].astype(str)[flags])

    def label(codes: Any) -> str:
        if not isinstance(codes, str) or not derived:
            return ""
        for c in codes.split(","):
            c = c.strip().split("B")[0]
            if c in derived or c[:12] in derived:
                return DERIVED_LABEL
        return ""

    return pd.Series([label(v) for v in grids["source_codes"]], index=grids.index, dtype=object)

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
"""Characters XML 1.0 forbids (xlsx and KML are XML): dropped from text rather than failing the export."""

# --------------------------------------------------------------------------------------------------------
# personal data and spreadsheet safety
# --------------------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or str(value).strip() == ""


def mask_id_no(value: Any) -> str:
    """Mask an ID number like :func:`grids.privacy.mask_id_no` (``150422********1234``); ``""`` when empty."""
    return "" if _blank(value) else str(privacy.mask_id_no(str(value).strip()))


def mask_phone(value: Any) -> str:
    """Mask a phone number like :func:`grids.privacy.mask_phone` (``138****5678``); ``""`` when empty."""
    return "" if _blank(value) else str(privacy.mask_phone(str(value).strip()))


def frame_csv(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """CSV (UTF-8 with BOM, for Excel) whose cells cannot run as formulas (:func:`grids.text.spreadsheet_cell`).

    Headers and, with ``index=True``, the index (e.g. town names) are neutralised too.

    >>> frame_csv(pd.DataFrame({"a": ["=1+1", "张三", "@SUM(1)"]})).decode("utf-8-sig").split()
    ['a', "'=1+1", '张三', "'@SUM(1)"]
    """
    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_datetime64_any_dtype(out[col])):
            out[col] = out[col].astype(object).map(text.spreadsheet_cell)
    out.columns = [text.spreadsheet_cell(str(c)) for c in out.columns]
    if index:
        out.index = pd.Index([text.spreadsheet_cell(v) for v in out.index], name=text.spreadsheet_cell(out.index.name))
    return out.to_csv(index=index).encode("utf-8-sig")


def frame_xlsx(frame: pd.DataFrame, *, title: str) -> bytes:
    """An xlsx file of ``frame``: one sheet named ``title``, bold header, every cell through :func:`xlsx_cell`
    (text stays text, never a formula; control characters XML forbids are dropped).

    Examples
    --------
    >>> import io, openpyxl
    >>> data = frame_xlsx(pd.DataFrame({"户主": ["=1+1", "张\x0b三"]}), title="白名单")
    >>> [c.value for c in openpyxl.load_workbook(io.BytesIO(data)).active["A"]]
    ['户主', '=1+1', '张三']
    """
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has one worksheet
    sheet.title = "".join("_" if ch in '[]:*?/\\' else ch for ch in str(title))[:31] or "Sheet1"
    for j, name in enumerate(frame.columns, start=1):
        xlsx_cell(sheet, 1, j, str(name)).font = Font(bold=True)
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        for j, value in enumerate(row, start=1):
            xlsx_cell(sheet, i, j, value)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def xlsx_cell(sheet: Any, row: int, column: int, value: Any) -> Any:
    """Write one openpyxl cell so that no spreadsheet runs it: text is stored as text, never as a formula.

    Text goes through :func:`grids.text.spreadsheet_cell` (a bare CR becomes a line feed); text that a
    spreadsheet would read as a formula keeps its characters and is marked ``quotePrefix`` (Excel's leading
    ``'``), so it shows and edits as text. Control characters that XML forbids are dropped. ``None``/NaN leave
    the cell empty; numpy scalars become Python ones.

    Returns
    -------
    openpyxl.cell.Cell
        The cell written.

    Examples
    --------
    >>> from openpyxl import Workbook
    >>> cell = xlsx_cell(Workbook().active, 1, 1, "正常\\r=HYPERLINK(1)")
    >>> cell.value, cell.data_type, cell.quotePrefix
    ('正常\\n=HYPERLINK(1)', 's', True)
    """
    cell = sheet.cell(row=row, column=column)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return cell
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        if _XML_INVALID.search(value):
            value = _XML_INVALID.sub("", value)
        shown = value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value
        cell.value = shown
        cell.data_type = "s"
        if text.spreadsheet_cell(value) != shown:  # it added the leading ': a formula, shown as text
            cell.quotePrefix = True  # (set only when needed: each style change costs openpyxl a lookup)
    else:
        cell.value = value
    return cell


# --------------------------------------------------------------------------------------------------------
# households: status, walking order, scope
# --------------------------------------------------------------------------------------------------------


def walking_order(households: gpd.GeoDataFrame, *, start: shapely.Point | None = None,
                  max_exact: int = 4000) -> np.ndarray:
    """Positions of ``households`` in a walking order: a nearest-neighbour tour in the Gauss-Krüger zone.

    The tour starts at the household nearest to ``start`` (e.g. the branch, EPSG:4490) or at the
    south-western one; households without a point come last, by group code and id. Above ``max_exact``
    located households the order follows a Hilbert curve instead (same idea, linear time).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> hh = gpd.GeoDataFrame(geometry=[shapely.Point(119.03, 43), shapely.Point(119.01, 43), None,
    ...                                 shapely.Point(119.02, 43)], crs=4490)
    >>> walking_order(hh, start=shapely.Point(119.0, 43.0)).tolist()
    [1, 3, 0, 2]
    """
    n = len(households)
    geoms = np.asarray(households.geometry.values, dtype=object)
    located = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    missing = np.setdiff1d(np.arange(n), located)
    if len(missing):
        keys = [c for c in ("group_code", "hh_id") if c in households.columns]
        if keys:
            order = households.iloc[missing].reset_index(drop=True).sort_values(keys, kind="stable").index
            missing = missing[order.to_numpy()]
    if not len(located):
        return missing
    epsg = gk_crs_for(households.iloc[located])
    xy = shapely.get_coordinates(gpd.GeoSeries(geoms[located], crs=households.crs).to_crs(epsg).values)
    if len(located) > max_exact:
        hilbert = gpd.GeoSeries(shapely.points(xy)).hilbert_distance()
        return np.concatenate([located[np.argsort(hilbert.to_numpy(), kind="stable")], missing])
    if start is not None:
        sxy = shapely.get_coordinates(gpd.GeoSeries([start], crs=STORAGE_EPSG).to_crs(epsg).values)[0]
    else:
        sxy = np.array([xy[:, 0].min(), xy[:, 1].min()])
    remaining = np.ones(len(xy), dtype=bool)
    tour = np.empty(len(xy), dtype=np.int64)
    here = sxy
    for k in range(len(xy)):
        d = np.einsum("ij,ij->i", xy - here, xy - here)
        d[~remaining] = np.inf
        j = int(np.argmin(d))
        tour[k] = j
        remaining[j] = False
        here = xy[j]
    return np.concatenate([located[tour], missing])


def select_grids(grids: gpd.GeoDataFrame, *, branch_id: str | None = None, staff_id: str | None = None,
                 grid_code: str | None = None) -> gpd.GeoDataFrame:
    """The grids of one branch, one staff member or one grid (by ``code`` or ``grid_id``).

    Raises
    ------
    ValidationError
        Nothing matches; the message lists some valid values.
    """
    sel = grids
    for col, value, label in (("branch_id", branch_id, "网点"), ("staff_id", staff_id, "客户经理")):
        if value is not None:
            hit = sel[sel[col].astype("string") == str(value)] if col in sel else sel.iloc[:0]
            if not len(hit):
                known = sorted(grids[col].dropna().astype(str).unique())[:10] if col in grids else []
                raise ValidationError(f"方案中没有{label} {value} 负责的网格",
                                      fix=f"可用的{label}编号：{'、'.join(known) or '（方案尚未分配）'}")
            sel = hit
    if grid_code is not None:
        hit = sel[(sel["code"].astype("string") == str(grid_code)) | (sel["grid_id"].astype("string") == str(grid_code))]
        if not len(hit):
            known = sel["code"].astype(str).head(10).tolist()
            raise ValidationError(f"找不到网格 {grid_code}", fix=f"网格编码例如：{'、'.join(known)}")
        sel = hit
    return sel


def _last_visits(visits: pd.DataFrame | None, hh_ids: pd.Series) -> pd.DataFrame:
    if visits is None or not len(visits):
        return pd.DataFrame({"last_visit": pd.Series([None] * len(hh_ids), dtype=object),
                             "outcome": pd.Series([None] * len(hh_ids), dtype=object)}, index=hh_ids.index)
    v = visits[visits["hh_id"].isin(hh_ids)].copy()
    v["visited_on"] = pd.to_datetime(v["visited_on"], errors="coerce")
    v = v.sort_values("visited_on", kind="stable").drop_duplicates("hh_id", keep="last").set_index("hh_id")
    dates = hh_ids.map(v["visited_on"])
    return pd.DataFrame({
        "last_visit": [d.strftime("%Y-%m-%d") if pd.notna(d) else None for d in dates],
        "outcome": hh_ids.map(v["outcome"]).astype(object).where(dates.notna(), None),
    }, index=hh_ids.index)


# --------------------------------------------------------------------------------------------------------
# xlsx: 入户清单
# --------------------------------------------------------------------------------------------------------

XLSX_COLUMNS: dict[str, str] = {
    "seq": "序号", "hh_id": "户号", "head_name": "户主姓名", "id_no": "身份证号", "phone": "联系电话",
    "segment": "客户类型", "village": "所在村", "group_code": "组代码", "address": "地址", "status": "状态",
    "last_visit": "最近走访", "outcome": "走访结果", "product": "授信产品", "granted_amount": "授信额度（元）",
    "signed": "已签约", "lon": "经度", "lat": "纬度",
}
"""Columns of the 入户清单 and their Chinese headers."""


def _sheet_title(label: str, used: set[str]) -> str:
    title = "".join("_" if ch in '[]:*?/\\' else ch for ch in _XML_INVALID.sub("", str(label)))[:31] or "网格"
    base, k = title, 2
    while title in used:
        suffix = f"_{k}"
        title, k = base[: 31 - len(suffix)] + suffix, k + 1
    used.add(title)
    return title


def _household_rows(households: pd.DataFrame, *, unmask: bool, visits: pd.DataFrame | None,
                    village_names: Mapping[str, str] | None) -> pd.DataFrame:
    hh = households
    rows = pd.DataFrame(index=hh.index)
    for col in ("hh_id", "head_name", "id_no", "phone", "segment", "group_code", "address", "product"):
        rows[col] = hh[col].astype(object).where(hh[col].notna(), None) if col in hh else None
    if not unmask:
        rows["id_no"] = [mask_id_no(v) for v in rows["id_no"]]
        rows["phone"] = [mask_phone(v) for v in rows["phone"]]
    village = hh["village_code"].astype(object) if "village_code" in hh else pd.Series(None, index=hh.index)
    rows["village"] = [village_names.get(v, v) if village_names and v else v for v in village]
    rows["status"] = household_status(hh)
    last = _last_visits(visits, hh["hh_id"]) if "hh_id" in hh else _last_visits(None, pd.Series(index=hh.index))
    rows["last_visit"], rows["outcome"] = last["last_visit"].to_numpy(), last["outcome"].to_numpy()
    amount = pd.to_numeric(hh.get("granted_amount", pd.Series(0.0, index=hh.index)), errors="coerce")
    rows["granted_amount"] = amount.where(amount > 0)
    rows["signed"] = np.where(flag_column(hh, "signed"), "是", "")
    if isinstance(hh, gpd.GeoDataFrame):
        geoms = np.asarray(hh.to_crs(STORAGE_EPSG).geometry.values, dtype=object)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        lon = np.full(len(hh), np.nan)
        lat = np.full(len(hh), np.nan)
        lon[ok], lat[ok] = shapely.get_x(geoms[ok]), shapely.get_y(geoms[ok])
        rows["lon"], rows["lat"] = np.round(lon, 6), np.round(lat, 6)
    else:
        rows["lon"] = rows["lat"] = np.nan
    return rows


def write_xlsx(households: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, located: pd.DataFrame, out: str | Path, *,
               title: str = "入户清单", unmask: bool = False, visits: pd.DataFrame | None = None,
               start: shapely.Point | None = None, village_names: Mapping[str, str] | None = None) -> Path:
    """Write the 入户清单: a summary sheet, then one sheet per grid with its households in walking order.

    Parameters
    ----------
    households : GeoDataFrame
        The households to list (those of ``grids``).
    grids : GeoDataFrame
        The grids, one sheet each (titled by ``code``), in their order.
    located : DataFrame
        :func:`grids.coverage.locate_households` of ``households`` on ``grids`` (``grid_id`` per household).
    out : path
        The ``.xlsx`` file to write.
    title : str
        Heading of the summary sheet (e.g. ``张三 入户清单``).
    unmask : bool
        Write ID numbers and phones in full.
    visits : DataFrame, optional
        The ``visits`` layer, for each household's latest visit and outcome.
    start : Point, optional
        Where the walk starts (the branch), EPSG:4490.
    village_names : mapping, optional
        Village code → name.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    rows = _household_rows(households, unmask=unmask, visits=visits, village_names=village_names)
    grid_of = located.reindex(households.index)["grid_id"]
    wb = Workbook()
    summary = wb.active
    assert summary is not None  # a new workbook has one worksheet
    summary.title = "汇总"
    used = {"汇总"}
    bold = Font(bold=True)
    xlsx_cell(summary, 1, 1, title)
    summary.cell(1, 1).font = Font(bold=True, size=14)
    xlsx_cell(summary, 2, 1, f"生成日期：{dt.date.today():%Y-%m-%d}；身份证号与电话{'未' if unmask else '已'}脱敏")
    headers = ["网格编码", "网格名称", "户数", *STATUS_ORDER, "工作表"]
    for j, h in enumerate(headers, start=1):
        xlsx_cell(summary, 4, j, h)
        summary.cell(4, j).font = bold
    fill = PatternFill("solid", fgColor="DDEBF7")
    keys = list(XLSX_COLUMNS)
    for gi, grid in enumerate(grids.itertuples(index=False), start=5):
        code = str(getattr(grid, "code", None) or grid.grid_id)
        sheet = wb.create_sheet(_sheet_title(code, used))
        members = households.index[(grid_of == grid.grid_id).to_numpy()]
        sub = households.loc[members]
        order = walking_order(sub, start=start) if isinstance(sub, gpd.GeoDataFrame) else np.arange(len(sub))
        table = rows.loc[members].iloc[order]
        name = getattr(grid, "name", None)
        xlsx_cell(sheet, 1, 1, f"网格 {code} {name or ''}".strip() + f"（{len(table)} 户，按走访顺序）")
        sheet.cell(1, 1).font = Font(bold=True, size=12)
        for j, k in enumerate(keys, start=1):
            xlsx_cell(sheet, 2, j, XLSX_COLUMNS[k])
            c = sheet.cell(2, j)
            c.font, c.fill, c.alignment = bold, fill, Alignment(horizontal="center")
        records = table.to_dict("records")
        for i, rec in enumerate(records, start=1):
            rec["seq"] = i
            for j, k in enumerate(keys, start=1):
                xlsx_cell(sheet, i + 2, j, rec.get(k))
        for j, k in enumerate(keys, start=1):
            width = {"id_no": 21, "address": 24, "hh_id": 16, "group_code": 17, "phone": 13}.get(k, 10)
            sheet.column_dimensions[sheet.cell(2, j).column_letter].width = width
        sheet.freeze_panes = "A3"
        counts = table["status"].value_counts()
        values = [code, name, len(table), *[int(counts.get(s, 0)) for s in STATUS_ORDER], sheet.title]
        for j, v in enumerate(values, start=1):
            xlsx_cell(summary, gi, j, v)
    summary.column_dimensions["A"].width = 18
    summary.column_dimensions["B"].width = 18
    out = Path(out)
    wb.save(out)
    return out


# --------------------------------------------------------------------------------------------------------
# GeoPackage
# --------------------------------------------------------------------------------------------------------


def _for_gpkg(frame: pd.DataFrame) -> pd.DataFrame:
    """Column types GDAL writes cleanly (pandas string / nullable dtypes → object / float)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out, gpd.GeoDataFrame) and col == out.geometry.name:
            continue
        s = out[col]
        if pd.api.types.is_string_dtype(s) or s.dtype == object or isinstance(s.dtype, pd.BooleanDtype):
            out[col] = s.astype(object).where(s.notna(), None)
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object).where(s.notna(), None)
    return out


_GPKG_VERSION = {"VERSION": "1.2"}
"""GDAL's GPKG creation option: 1.2 (GDAL's default, 1.4, has rtree triggers older validators reject)."""


def write_gpkg(out: str | Path, layers: Mapping[str, pd.DataFrame]) -> Path:
    """Write layers (GeoDataFrames, or DataFrames as attribute tables) into a new GeoPackage with GDAL.

    The file is written next to ``out`` and moved into place when complete. Polygons are written as
    MULTIPOLYGON, all in EPSG:4490. The file is GeoPackage 1.2 (what the workspace is, and what QGIS and
    GDAL's ``validate_gpkg.py`` of every Debian release accept), with an rtree spatial index on every spatial
    layer (the 1.2 triggers, declared in ``gpkg_extensions``).
    """
    import pyogrio

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    try:
        for name, frame in layers.items():
            data = _for_gpkg(frame)
            if isinstance(data, gpd.GeoDataFrame):
                data = data.to_crs(STORAGE_EPSG) if data.crs is not None else data.set_crs(STORAGE_EPSG)
                gtype = {"Point": "Point"}.get(str(data.geom_type.dropna().iloc[0]) if data.geometry.notna().any()
                                               else "Point", "MultiPolygon")
                if gtype == "MultiPolygon":
                    data = data.set_geometry(
                        [shapely.MultiPolygon([g]) if isinstance(g, shapely.Polygon) else g for g in data.geometry],
                        crs=STORAGE_EPSG)
                pyogrio.write_dataframe(data, tmp, layer=name, driver="GPKG", geometry_type=gtype,
                                        append=tmp.exists(), dataset_options=_GPKG_VERSION,
                                        layer_options={"SPATIAL_INDEX": "YES"})
            else:
                pyogrio.write_dataframe(pd.DataFrame(data), tmp, layer=name, driver="GPKG", append=tmp.exists(),
                                        dataset_options=_GPKG_VERSION)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


# --------------------------------------------------------------------------------------------------------
# KML 2.2
# --------------------------------------------------------------------------------------------------------

KML_NS = "http://www.opengis.net/kml/2.2"


def _kml_color(hex_rgb: str, alpha: int = 255) -> str:
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"{alpha:02x}{b}{g}{r}"


def _sub(parent: ET.Element, tag: str, value: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{KML_NS}}}{tag}", attrs)
    if value is not None:
        el.text = value
    return el


def _shown(value: Any) -> str:
    """Text for a KML ``<name>``/``<description>``: Google Earth renders them as HTML (balloons, ``$[…]``
    entity replacement), so text from data is HTML-escaped first; ElementTree then escapes it for XML.
    Control characters that XML 1.0 forbids are dropped (they would make the file unreadable)."""
    return _XML_INVALID.sub("", text.html(value))


def _coords(ring: Any) -> str:
    return " ".join(f"{x:.7f},{y:.7f},0" for x, y in np.asarray(ring.coords)[:, :2])


def _kml_polygon(parent: ET.Element, poly: shapely.Polygon) -> None:
    p = _sub(parent, "Polygon")
    _sub(_sub(_sub(p, "outerBoundaryIs"), "LinearRing"), "coordinates", _coords(poly.exterior))
    for hole in poly.interiors:
        _sub(_sub(_sub(p, "innerBoundaryIs"), "LinearRing"), "coordinates", _coords(hole))


def write_kml(households: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, located: pd.DataFrame, out: str | Path, *,
              title: str = "网格与客户", unmask: bool = False) -> Path:
    """Write grids and their households as KML 2.2 (Google Earth, 奥维互动地图), one folder per grid.

    Coordinates are CGCS2000/WGS84 longitude, latitude (what KML expects; no GCJ-02 shift). Names and
    descriptions are HTML-escaped (:func:`grids.text.html`): a viewer shows ``<img …>`` in a name as text.
    """
    ET.register_namespace("", KML_NS)
    kml = ET.Element(f"{{{KML_NS}}}kml")
    doc = _sub(kml, "Document")
    _sub(doc, "name", _shown(title))
    _sub(doc, "description", f"生成日期 {dt.date.today():%Y-%m-%d}；身份证号与电话{'未' if unmask else '已'}脱敏")
    style = _sub(doc, "Style", id="grid")
    line = _sub(style, "LineStyle")
    _sub(line, "color", _kml_color("#3040c0"))
    _sub(line, "width", "2")
    _sub(_sub(style, "PolyStyle"), "color", _kml_color("#3040c0", 40))
    ids = {}
    for k, (label, color) in enumerate(STATUS_COLORS.items()):
        ids[label] = f"hh{k}"
        st = _sub(doc, "Style", id=ids[label])
        icon = _sub(st, "IconStyle")
        _sub(icon, "color", _kml_color(color))
        _sub(icon, "scale", "0.7")
        _sub(_sub(icon, "Icon"), "href", "http://maps.google.com/mapfiles/kml/shapes/placemark_circle.png")
        _sub(_sub(st, "LabelStyle"), "scale", "0.6")
    hh = households.to_crs(STORAGE_EPSG)
    status = household_status(hh)
    grid_of = located.reindex(hh.index)["grid_id"]
    g4490 = grids.to_crs(STORAGE_EPSG)
    geoms = np.asarray(hh.geometry.values, dtype=object)
    records = hh.drop(columns=hh.geometry.name).to_dict("records")
    for grid in g4490.itertuples(index=False):
        code = str(getattr(grid, "code", None) or grid.grid_id)
        name = getattr(grid, "name", None) or code
        folder = _sub(doc, "Folder")
        _sub(folder, "name", _shown(f"网格 {name}"))
        pm = _sub(folder, "Placemark")
        _sub(pm, "name", _shown(name))
        bound = "；边界：推算村界（由村委会位置推算，非正式村界）" if getattr(grid, "boundary", "") == DERIVED_LABEL else ""
        _sub(pm, "description", _shown(f"网格编码 {code}；网点 {getattr(grid, 'branch_id', '') or '—'}；"
                                       f"客户经理 {getattr(grid, 'staff_id', '') or '—'}{bound}"))
        _sub(pm, "styleUrl", "#grid")
        geom = grid.geometry
        parts = list(geom.geoms) if isinstance(geom, shapely.MultiPolygon) else [geom]
        target = _sub(pm, "MultiGeometry") if len(parts) > 1 else pm
        for part in parts:
            if isinstance(part, shapely.Polygon) and not part.is_empty:
                _kml_polygon(target, part)
        members = np.flatnonzero((grid_of == grid.grid_id).to_numpy())
        for i in members:
            point = geoms[i]
            if point is None or point.is_empty:
                continue
            rec = records[i]
            idx = hh.index[int(i)]
            p = _sub(folder, "Placemark")
            _sub(p, "name", _shown(rec.get("head_name") or rec.get("hh_id")))
            id_no = rec.get("id_no") if unmask else mask_id_no(rec.get("id_no"))
            phone = rec.get("phone") if unmask else mask_phone(rec.get("phone"))
            _sub(p, "description", _shown(f"户号 {rec.get('hh_id')}；{status.loc[idx]}；身份证 {id_no or '—'}；"
                                          f"电话 {phone or '—'}；地址 {rec.get('address') or '—'}"))
            _sub(p, "styleUrl", "#" + ids[status.loc[idx]])
            _sub(_sub(p, "Point"), "coordinates", f"{point.x:.7f},{point.y:.7f},0")
    tree = ET.ElementTree(kml)
    ET.indent(tree)
    out = Path(out)
    tree.write(out, encoding="UTF-8", xml_declaration=True)
    return out


def write_html(households: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, located: pd.DataFrame, out: str | Path, *,
               branches: gpd.GeoDataFrame | None = None, unmask: bool = False,
               admin_units: gpd.GeoDataFrame | None = None, seats: gpd.GeoDataFrame | None = None) -> Path:
    """Write a standalone offline HTML map: grids coloured by coverage rate, households not yet archived.

    Built with :func:`grids.maps.overview_map` and inlined by :func:`grids.maps.standalone_html` (needs the
    vendored Leaflet assets, ``scripts/fetch_assets.sh``). No personal data is put on this map. With
    ``admin_units`` (and ``seats``) households known only by village are counted at their village seat
    (:func:`grids.placement.village_counts`).
    """
    from grids import maps
    from grids.placement import placement, village_counts

    del unmask  # the map carries no personal data
    table = funnel(households, by="grid", located=located)
    areas = grids.copy()
    areas["coverage_rate"] = areas["grid_id"].map(table["coverage_rate"]).astype(float)
    areas["households"] = areas["grid_id"].map(table["registered"]).fillna(0).astype(int)
    if "name" not in areas or areas["name"].isna().all():
        areas["name"] = areas["code"]
    areas["name"] = areas["name"].fillna(areas["code"])
    not_archived = household_status(households).to_numpy() == NOT_ARCHIVED
    uncovered = households.loc[not_archived]
    units = admin_units if admin_units is not None else pd.DataFrame({"code": [], "level": []})
    unlocated = village_counts(uncovered, admin_units, seats=seats) if admin_units is not None else None
    uncovered = uncovered[[uncovered.geometry.name]].assign(placement=placement(uncovered, units))
    used = set(grids["branch_id"].dropna()) if "branch_id" in grids else set()
    br = branches[branches["branch_id"].isin(used)] if branches is not None and len(branches) else None
    m = maps.overview_map(areas, branches=br, uncovered=uncovered, unlocated=unlocated)
    out = Path(out)
    out.write_text(maps.standalone_html(m), encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------------------
# from a workspace
# --------------------------------------------------------------------------------------------------------


def _read_plan_grids(ws: Any, plan: str | None) -> tuple[str, gpd.GeoDataFrame]:
    from grids import plans

    plan_id = plans.resolve_plan(ws, plan)
    return plan_id, plans.read_grids(ws, plan_id)


def export_plan(ws: Any, *, fmt: str, out: str | Path, plan: str | None = None, branch_id: str | None = None,
                staff_id: str | None = None, grid_code: str | None = None, unmask: bool = False,
                actor: str = "cli") -> dict[str, Any]:
    """Export a plan, or one branch's / staff member's / grid's part of it, from a workspace.

    Parameters
    ----------
    ws : grids.workspace.Workspace
    fmt : {'xlsx', 'gpkg', 'kml', 'png', 'pdf', 'html'}
        ``xlsx``, ``kml``, ``png`` and ``pdf`` need a scope (``branch_id``, ``staff_id`` or ``grid_code``).
    out : path
        File to write.
    plan : str, optional
        Plan name or id (default: the published plan, else the latest draft).
    unmask : bool
        Personal data in full; recorded in the audit trail.
    actor : str
        Who exports (audit trail).

    Returns
    -------
    dict
        ``path``, ``format``, ``plan_id``, ``grids``, ``households``, ``unlocated`` (households of the scope's
        codes that could not be placed are simply not in the scope), ``title``.
    """
    if fmt not in FORMATS:
        raise ValidationError(f"不支持的导出格式 “{fmt}”", fix=f"可选：{'、'.join(FORMATS)}")
    scoped = any(v is not None for v in (branch_id, staff_id, grid_code))
    if fmt in ("xlsx", "kml", "png", "pdf") and not scoped:
        raise ValidationError(f"导出 {fmt} 需要指定范围", fix="用 --staff 客户经理编号、--branch 网点编号 或 --grid 网格编码 选择范围")
    plan_id, all_grids = _read_plan_grids(ws, plan)
    grids = select_grids(all_grids, branch_id=branch_id, staff_id=staff_id, grid_code=grid_code)
    units = ws.read("admin_units", columns=["code", "derived"]) if "derived" in ws.columns("admin_units") else None
    grids = grids.assign(boundary=boundary_labels(grids, units) if units is not None else "")
    # locate every household against the whole plan, then keep the scope (a code may look unambiguous inside
    # the scope only); then read the scope's households in full
    keys = ws.read("households", columns=["hh_id", "village_code", "group_code"])
    located = locate_households(keys, all_grids, admin_units=ws.read("admin_units", columns=["code", "level"]))
    inside = located["grid_id"].isin(set(grids["grid_id"])).to_numpy()
    if inside.all():
        households = ws.read("households")
    else:
        households = _read_ids(ws, "households", keys["hh_id"][inside].tolist())
    located = located[inside].set_index("hh_id", drop=False).reindex(households["hh_id"])
    located.index = households.index
    branches = ws.read("branches")
    staff = ws.read("staff")
    county = ws.meta.get("county_name", "")
    title = _title(county, branches, staff, branch_id=branch_id, staff_id=staff_id, grid_code=grid_code)
    start = None
    branch_of_scope = branch_id or (grids["branch_id"].dropna().iloc[0] if grids["branch_id"].notna().any() else None)
    if branch_of_scope is not None and len(branches):
        hit = branches[branches["branch_id"] == branch_of_scope]
        if len(hit):
            start = hit.geometry.iloc[0]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        admin = ws.read("admin_units", columns=["code", "name"], where="level = 'village'")
        names = dict(zip(admin["code"], admin["name"], strict=True))
        for code in set(units["code"][[not pd.isna(v) and bool(v) for v in units["derived"]]]) if units is not None \
                else ():
            if code in names:
                names[code] = f"{names[code]}（{DERIVED_LABEL}）"
        write_xlsx(households, grids, located, out, title=f"{title} 入户清单", unmask=unmask,
                   visits=_read_ids(ws, "visits", households["hh_id"].tolist()), start=start, village_names=names)
    elif fmt == "gpkg":
        hh = households.copy()
        hh["grid_id"] = located["grid_id"].to_numpy()
        if not unmask:
            hh["id_no"] = [mask_id_no(v) for v in hh["id_no"]]
            hh["phone"] = [mask_phone(v) for v in hh["phone"]]
        used = set(grids["branch_id"].dropna())
        br = branches[branches["branch_id"].isin(used)] if scoped else branches
        st = staff[staff["branch_id"].isin(set(br["branch_id"]))]
        write_gpkg(out, {"grids": grids, "branches": br, "households": hh, "staff": st})
    elif fmt == "kml":
        write_kml(households, grids, located, out, title=title, unmask=unmask)
    elif fmt in ("png", "pdf"):
        from grids.render import render_map

        br = branches[branches["branch_id"].isin(set(grids["branch_id"].dropna()))]
        note = f"（{DERIVED_LABEL}）" if (grids["boundary"] == DERIVED_LABEL).any() else ""
        render_map(households, grids, located, out, fmt=fmt, title=f"{title} 客户分布地图{note}", branches=br,
                   staff_names=dict(zip(staff["staff_id"], staff["name"], strict=True)))
    else:
        write_html(households, grids, located, out, branches=branches, unmask=unmask,
                   admin_units=ws.read("admin_units", columns=["code", "name", "level"]), seats=ws.read("seats"))
    if unmask:
        with ws.transaction(actor=actor, action="导出（含明文个人信息）") as tx:
            tx.note("households", {"op": "export", "format": fmt, "plan_id": plan_id, "branch_id": branch_id,
                                   "staff_id": staff_id, "grid": grid_code, "rows": len(households),
                                   "file": out.name})
    return {"path": str(out), "format": fmt, "plan_id": plan_id, "grids": len(grids),
            "households": len(households), "title": title}


def _read_ids(ws: Any, layer: str, ids: list[str], *, chunk: int = 900) -> pd.DataFrame:
    """Rows of ``layer`` whose ``hh_id`` is in ``ids`` (queried in chunks under SQLite's variable limit)."""
    parts = [ws.read(layer, where=f"hh_id IN ({','.join('?' * len(ids[i:i + chunk]))})", params=ids[i:i + chunk])
             for i in range(0, len(ids), chunk)]
    if not parts:
        empty: pd.DataFrame = ws.read(layer, where="1 = 0")
        return empty
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return gpd.GeoDataFrame(out, geometry=out.geometry.name, crs=parts[0].crs) if isinstance(parts[0], gpd.GeoDataFrame) \
        else out


def _title(county: str, branches: pd.DataFrame, staff: pd.DataFrame, *, branch_id: str | None,
           staff_id: str | None, grid_code: str | None) -> str:
    parts = [county] if county else []
    if branch_id is not None:
        hit = branches[branches["branch_id"] == branch_id]
        parts.append(str(hit["name"].iloc[0]) if len(hit) else branch_id)
    if staff_id is not None:
        hit = staff[staff["staff_id"] == staff_id]
        parts.append(f"客户经理 {hit['name'].iloc[0]}" if len(hit) else staff_id)
    if grid_code is not None:
        parts.append(f"网格 {grid_code}")
    return " ".join(parts) or "网格"
