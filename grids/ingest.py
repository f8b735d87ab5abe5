"""Reading user files into a workspace layer, with a per-row validation report and a rejects file.

Three steps, each usable on its own (the app's data page previews with the first two):

1. :func:`read_table` reads a GeoPackage, Shapefile (``.cpg`` honoured, GBK detected), GeoJSON, KML, CSV or
   XLSX into a GeoDataFrame in EPSG:4490. Every attribute is kept as text exactly as the user typed it; the
   index (named ``row``) is the row number the user sees (header = row 1 in CSV/XLSX, feature number in
   spatial files). Coordinates are converted from the declared datum (``coords``); problems that concern the
   whole file raise :class:`~grids.errors.ValidationError` naming the file and the fix.
2. :func:`validate` recognises the columns for a workspace layer (Chinese register headers such as 户号,
   身份证号, 村代码 …), checks every row and returns an :class:`ImportReport`: the accepted rows typed to the
   layer's schema, the rejected ones with file, row, column, reason and fix, and warnings.
3. :func:`import_file` does both and writes the accepted rows in ONE workspace transaction (audit action
   ``导入``), so a failure leaves the workspace as it was. ``strict=True`` writes nothing when any row is
   rejected.

Modes: ``households`` and ``visits`` are appended by default (village registers arrive village by village;
an id already in the workspace is rejected); every other layer is replaced by default (reference data comes
as a whole). Either can be forced with ``mode=``; ``mode='update'`` changes existing households by 户号
(only the cells the file fills; audited before/after, versions bumped).

Registers keyed by names: households and visits may name the village (村/嘎查/社区) and group (组) instead
of giving codes (:data:`NAME_COLUMNS`); :mod:`grids.names` matches them within the town of a 乡镇 column (or
``town=``). Unknown and ambiguous names are rejected with the closest candidates; names confirmed once
(``names=`` mapping file, layer ``name_aliases``) are used by every later import, and a rejects file can be
imported again as it is.

Examples
--------
>>> recognise_columns(["户号", "户主姓名", "身份证号码", "备注"], "households")
{'户号': 'hh_id', '户主姓名': 'head_name', '身份证号码': 'id_no'}
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import hashlib
import html
import io
import os
import re
import sqlite3
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from grids import _validate as V
from grids import credit_events, loans
from grids import names as N
from grids.crs import gcj02_to_wgs84, gdf_gcj02_to_wgs84, gk_crs_for, wgs84_to_gcj02
from grids.errors import ValidationError, WorkspaceError
from grids.model import (
    BRANCH_KINDS,
    CODE_LENGTH,
    GUARANTEES,
    JOB_LEVELS,
    LAYERS,
    PRODUCTS,
    SEGMENTS,
    STAFF_ROLES,
    STORAGE_EPSG,
    VISIT_OUTCOMES,
)
from grids.text import normalize_id, plain, spreadsheet_cell, strip_controls, unescape_spreadsheet_cell
from grids.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from grids.auth import Account

ROW_INDEX = "row"
"""Name of the index :func:`read_table` gives its result: the row number as the user sees it."""

COORDS: dict[str, str] = {"wgs84": "WGS84", "cgcs2000": "CGCS2000", "gcj02": "GCJ-02（高德/腾讯）"}
IMPORTABLE_LAYERS: tuple[str, ...] = (
    "admin_units", "urban_areas", "streets", "branches", "staff", "households", "visits", "villages", "loan_totals",
)
"""Import targets: workspace layers, and ``villages`` (村委会 points → ``seats`` and derived village territories,
:mod:`grids.villages`)."""
DEFAULT_MODE: dict[str, str] = {"households": "append", "visits": "append", "loan_totals": "append"}
KEYED_APPEND: tuple[str, ...] = ("loan_totals",)
"""Layers whose append replaces the stored rows of the same key (loan totals: the same month, branch and
product, :func:`grids.loans.write_rows`) instead of refusing them."""
MODES: dict[str, str] = {"append": "追加", "replace": "替换", "update": "更新"}
"""Write modes: ``update`` changes existing households by 户号 (only the cells the file fills)."""
UPDATE_LAYERS: tuple[str, ...] = ("households",)
"""Layers that ``mode='update'`` applies to."""
OUTSIDE_TOLERANCE_M = 200.0
"""How far (metres) a point may lie outside the county outline before it is rejected."""
REPAIR_MAX_AREA_CHANGE = 0.01
"""An invalid polygon is repaired only when ``make_valid`` changes its area by less than this fraction."""
GCJ02_MIN_POINTS = 5
"""Undeclared GCJ-02 is suspected only when at least this many points fit better after the shift …"""
GCJ02_MIN_RATIO = 4.0
"""… and at least this many times more points fit better than fit worse."""
GCJ02_SAMPLE = 20_000
"""At most this many points are compared (a seeded sample of bigger files)."""
XLSX_MAX_UNCOMPRESSED = 200 * 2**20
"""An .xlsx whose members unpack to more than this many bytes (200 MB) is refused before it is parsed."""
XLSX_MAX_ROWS = 200_000
"""An .xlsx worksheet with more rows than this is refused (bigger registers go through CSV, which has no cap)."""
XLSX_MAX_MEMBERS = 10_000
"""An .xlsx (a zip) with more members than this is refused."""
VERTICES_SIMPLIFY = 200_000
"""A polygon or line with more vertices than this is simplified (and said so in the warnings) …"""
VERTICES_MAX = 1_000_000
"""… and one with more than this is rejected: it would make every later step slow."""
ID_COLUMNS: tuple[str, ...] = ("hh_id", "branch_id", "staff_id", "code", "parent_code", "village_code",
                               "group_code", "town_code", "id_no", "phone")
"""Identifiers, codes and numbers: stored normalised (:func:`grids.text.normalize_id`), and refused when a
spreadsheet kept them as a number that lost digits (:func:`grids._validate.number_as_id`)."""

_TABULAR = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}
_SPATIAL = {".gpkg": "gpkg", ".shp": "shp", ".geojson": "geojson", ".json": "geojson", ".kml": "kml",
            ".kmz": "kml"}
_FAMILY = {"POINT": "point", "MULTIPOLYGON": "polygon", "MULTILINESTRING": "line"}
_FAMILY_NAMES = {"point": "点", "polygon": "面", "line": "线"}
_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}
_FAMILY_TYPES = {"point": ("Point",), "polygon": ("Polygon", "MultiPolygon"),
                 "line": ("LineString", "MultiLineString")}

LON_ALIASES = ("经度", "东经", "lon", "lng", "long", "longitude", "x", "x坐标")
LAT_ALIASES = ("纬度", "北纬", "lat", "latitude", "y", "y坐标")

NAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "town_name": ("乡镇", "乡镇名称", "苏木乡镇", "乡镇苏木", "所属乡镇", "镇", "乡", "苏木", "街道", "镇名", "乡镇代码"),
    "village_name": ("村", "村名", "村名称", "行政村", "行政村名称", "嘎查", "嘎查村", "嘎查名称", "嘎查村名称", "社区",
                     "社区名称", "村委会", "所属村", "村嘎查", "村/嘎查", "村/嘎查/社区", "村（嘎查）"),
    "group_name": ("组", "组名", "组别", "村民小组", "小组", "社", "所属组", "村民组", "组名称"),
}
"""Headers of registers keyed by names (households, visits): 乡镇, 村/嘎查/社区 and 组, matched through
:mod:`grids.names` to village and group codes."""

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "households": {
        "hh_id": ("户号", "户编号", "农户编号", "客户编号", "户代码", "household_id"),
        "head_name": ("户主姓名", "户主", "姓名", "客户姓名", "户主名称", "name"),
        "id_no": ("身份证号", "身份证号码", "户主身份证号", "户主身份证号码", "证件号码", "身份证"),
        "phone": ("联系电话", "电话", "手机号", "手机号码", "手机", "联系方式", "mobile"),
        "segment": ("客户类型", "客户分类", "客户类别", "户类型"),
        "village_code": ("村代码", "村编码", "村级代码", "行政村代码", "嘎查村代码", "村（嘎查）代码"),
        "group_code": ("组代码", "组编码", "村民小组代码", "小组代码"),
        "town_name": NAME_COLUMNS["town_name"],
        "village_name": NAME_COLUMNS["village_name"],
        "group_name": NAME_COLUMNS["group_name"],
        "address": ("地址", "住址", "家庭住址", "家庭地址", "详细地址"),
        "archived": ("是否建档", "已建档", "建档"),
        "eligible": ("是否符合条件", "符合授信条件", "是否合格"),
        "product": ("产品", "卡种", "产品名称"),
        "grade": ("等级", "信用等级", "评级", "授信等级"),
        "granted_amount": ("授信金额", "授信额度"),
        "signed": ("是否签约", "已签约", "签约"),
        "available_amount": ("可用额度", "可用金额"),
        "using": ("是否用信", "已用信", "用信"),
        "balance": ("贷款余额", "余额", "用信余额"),
        "guarantee": ("担保方式", "担保"),
        "job_level": ("职务级别", "职级", "行政职务", "职务"),
        "payroll": ("工资代发", "是否代发", "代发工资", "代发"),
    },
    "admin_units": {
        "code": ("代码", "编码", "区划代码", "统计用区划代码", "行政区划代码"),
        "name": ("名称", "区划名称", "名字"),
        "level": ("级别", "层级"),
        "parent_code": ("上级代码", "上级编码", "父级代码"),
    },
    "urban_areas": {"name": ("名称", "城区名称"), "code": ("代码", "编码")},
    "streets": {"name": ("名称", "街道名称", "道路名称", "路名"), "class": ("等级", "道路等级", "类别")},
    "branches": {
        "branch_id": ("网点编号", "网点代码", "机构号", "机构代码"),
        "name": ("网点名称", "名称", "机构名称"),
        "kind": ("类型", "网点类型"),
        "town_code": ("乡镇代码", "镇代码"),
        "address": ("地址",),
    },
    "staff": {
        "staff_id": ("工号", "员工编号", "员工号"),
        "name": ("姓名", "员工姓名"),
        "branch_id": ("网点编号", "所属网点", "机构号", "所属网点编号"),
        "role": ("岗位", "角色", "职务"),
        "phone": ("电话", "手机号", "联系电话", "手机"),
    },
    "loan_totals": loans.ALIASES,
    "visits": {
        "hh_id": ("户号",),
        "staff_id": ("工号", "客户经理工号", "员工编号"),
        "visited_on": ("走访日期", "日期", "走访时间"),
        "outcome": ("结果", "走访结果"),
        "note": ("备注",),
        "town_name": NAME_COLUMNS["town_name"],
        "village_name": NAME_COLUMNS["village_name"],
        "group_name": NAME_COLUMNS["group_name"],
    },
}

LABELS: dict[str, str] = {
    "hh_id": "户号", "head_name": "户主姓名", "id_no": "身份证号", "phone": "联系电话", "segment": "客户类型",
    "village_code": "村代码", "group_code": "组代码", "address": "地址", "archived": "是否建档",
    "eligible": "是否符合条件", "product": "产品", "grade": "等级", "granted_amount": "授信金额",
    "signed": "是否签约", "available_amount": "可用额度", "using": "是否用信", "balance": "贷款余额",
    "guarantee": "担保方式", "code": "代码", "name": "名称", "level": "级别", "parent_code": "上级代码",
    "class": "等级", "branch_id": "网点编号", "kind": "类型", "town_code": "乡镇代码", "staff_id": "工号",
    "role": "岗位", "visited_on": "走访日期", "outcome": "结果", "note": "备注", "lon": "经度", "lat": "纬度",
    "geometry": "几何", "town_name": "乡镇", "village_name": "村", "group_name": "组", "placed_by": "定位方式",
    "job_level": "职务级别", "payroll": "工资代发", "credit_legacy": "历史授信（不符合现行规则）",
    "credit_note": "历史授信违反的规则", **loans.LABELS,
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "households": ("hh_id", "segment"),
    "admin_units": ("code",),
    "branches": ("branch_id", "name"),
    "staff": ("staff_id", "name", "branch_id"),
    "visits": ("hh_id", "visited_on"),
    "loan_totals": loans.REQUIRED,
}

SEGMENT_ALIASES = {
    "农牧户": "普通农牧户", "农户": "普通农牧户", "牧户": "普通农牧户", "农牧民": "普通农牧户", "农民": "普通农牧户",
    "牧民": "普通农牧户", "普通农户": "普通农牧户", "普通牧户": "普通农牧户", "家庭农场": "家庭农牧场", "家庭牧场": "家庭农牧场",
    "合作社": "农牧业专业合作社", "专业合作社": "农牧业专业合作社", "农民专业合作社": "农牧业专业合作社",
    "农牧民专业合作社": "农牧业专业合作社",
    "个体户": "个体工商户", "商户": "个体工商户", "个体": "个体工商户", "企业": "小微企业", "小微": "小微企业",
    "公务员": "公职人员", "事业单位": "公职人员", "公职": "公职人员", "居民": "社区居民", "城镇居民": "社区居民",
}
LEVEL_ALIASES = {
    "county": "county", "旗": "county", "县": "county", "旗县": "county", "区县": "county",
    "town": "town", "镇": "town", "乡": "town", "苏木": "town", "街道": "town", "乡镇": "town",
    "village": "village", "村": "village", "嘎查": "village", "社区": "village", "行政村": "village",
    "group": "group", "组": "group", "村民小组": "group", "小组": "group",
}
_BOOL_COLUMNS = ("archived", "eligible", "signed", "using", "payroll")
GRADE_ALIASES = {"金卡": "黄金客户", "钻石卡": "钻石客户"}
"""Grade names of earlier versions, taken as today's (the rules are :func:`grids.credit_rules.check_grant`'s)."""
_AMOUNT_COLUMNS = ("granted_amount", "available_amount", "balance")


# --------------------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------------------


REJECT_COLUMNS: tuple[str, ...] = ("文件", "行", "列", "原因", "修正方法")


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
    admin = workspace.read("admin_units", columns=["code", "level"]) if workspace.count("admin_units") else None
    geo = points.to_crs(STORAGE_EPSG) if points.crs is not None and points.crs.to_epsg() != STORAGE_EPSG else points
    n = len(geo)
    village = pd.Series(list(village_codes) if village_codes is not None else [None] * n, dtype=object)
    group = pd.Series(list(group_codes) if group_codes is not None else [None] * n, dtype=object)
    return _detect_gcj02(np.asarray(geo.values, dtype=object), admin, village, group, declared, max_points)


def _detect_gcj02(geoms: np.ndarray, admin: gpd.GeoDataFrame | None, village: pd.Series, group: pd.Series,
                  declared: str | None, max_points: int = GCJ02_SAMPLE) -> DatumCheck | None:
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


@dataclass
class ImportReport:
    """Outcome of validating (and maybe importing) one file.

    Attributes
    ----------
    accepted : GeoDataFrame or DataFrame
        Rows that pass, typed to the layer's schema (EPSG:4490), index = row number in the file.
    rejects : DataFrame
        One line per problem: :data:`REJECT_COLUMNS` followed by the row's original values.
    warnings : list of str
        Things done on the user's behalf (encoding detected, CRS assumed, geometry repaired, columns ignored).
    name_issues : list of dict
        Village/group names that matched no unit (乡镇, 村, 登记名称, 候选), one per rejected row; see
        :meth:`names_template_csv`.
    unchanged : int
        Update mode: rows taken (counted in ``imported``) that changed nothing.
    """

    accepted: gpd.GeoDataFrame | pd.DataFrame
    rejects: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    layer: str = ""
    mode: str = "append"
    read: int = 0
    repaired: int = 0
    imported: int = 0
    written: bool = False
    strict: bool = False
    rejects_path: Path | None = None
    datum: DatumCheck | None = None
    coords_declared: bool = True
    name_issues: list[dict[str, str]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def rejected(self) -> int:
        """Number of distinct rows rejected."""
        return int(self.rejects["行"].nunique()) if len(self.rejects) else 0

    def reasons(self) -> dict[str, int]:
        """Reason → number of rows rejected for it (a row with two problems counts under both)."""
        if not len(self.rejects):
            return {}
        counts = self.rejects.drop_duplicates(["行", "原因"])["原因"].value_counts(sort=True)
        return {str(k): int(v) for k, v in counts.items()}

    def summary(self) -> str:
        """One line in Chinese: how many rows were read, imported, repaired and rejected (by reason)."""
        head = f"{self.source} → {self.layer}（{MODES.get(self.mode, self.mode)}）：读取 {self.read} 行，"
        if self.written or not len(self.accepted):
            head += f"导入 {self.imported} 行"
            if self.unchanged:
                head += f"（其中 {self.unchanged} 行与工作区相同，未改动）"
        elif self.strict and self.rejected:
            head += "严格模式下有被拒绝的行，未导入任何数据"
        else:
            head += f"可导入 {len(self.accepted)} 行（未写入）"
        head += f"，修复 {self.repaired} 行，拒绝 {self.rejected} 行"
        reasons = self.reasons()
        if reasons:
            head += "（" + "；".join(f"{k} {v} 行" for k, v in reasons.items()) + "）"
        return head

    def rejects_csv(self) -> bytes:
        """:attr:`rejects` as CSV bytes, UTF-8 with BOM so that Excel opens it; every cell and header passes
        :func:`grids.text.spreadsheet_cell` (text starting like a formula, ``= + - @`` or after a line break,
        gets a leading ``'``; a bare CR becomes a line feed), so Excel/WPS evaluate nothing.

        The app's download button hands out exactly these bytes.
        """
        safe = self.rejects.astype(object).map(spreadsheet_cell)
        safe.columns = [spreadsheet_cell(str(c)) for c in safe.columns]
        return safe.to_csv(index=False).encode("utf-8-sig")

    def names_template_csv(self) -> bytes:
        """A name mapping to fill in (CSV, UTF-8 with BOM): one line per distinct unknown or ambiguous name with
        its candidates; the user writes the right 行政区划代码 and imports it with ``--names`` (lines left
        without a code are ignored). Empty bytes when every name matched."""
        if not self.name_issues:
            return b""
        frame = pd.DataFrame(self.name_issues).drop_duplicates(["乡镇", "村", "登记名称"])
        frame.insert(3, "行政区划代码", "")
        if not frame["村"].astype(bool).any():
            frame = frame.drop(columns="村")
        safe = frame.astype(object).map(spreadsheet_cell)
        return safe.to_csv(index=False).encode("utf-8-sig")

    def write_rejects(self, path: str | os.PathLike) -> Path:
        """Write :meth:`rejects_csv` to ``path`` and remember it in :attr:`rejects_path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.rejects_csv())
        self.rejects_path = path
        return path


# --------------------------------------------------------------------------------------------------------
# column recognition
# --------------------------------------------------------------------------------------------------------


def _norm_header(header: Any) -> str:
    text = str(header).replace("\ufeff", "").strip()
    text = re.sub(r"\s*[（(][^（）()]*[）)]\s*$", "", text)  # a trailing unit such as （元）
    text = text.strip().lstrip("*＊").strip()
    return re.sub(r"\s+", "", text).lower()


def recognise_columns(columns: Iterable[str], target_layer: str, *,
                      mapping: Mapping[str, str] | None = None) -> dict[str, str]:
    """Which file columns become which columns of ``target_layer``.

    Parameters
    ----------
    columns : iterable of str
        The file's headers.
    target_layer : str
        A workspace layer (``households``, ``admin_units`` …).
    mapping : mapping, optional
        Explicit ``{file header: layer column}`` pairs; they win over the recognised aliases.

    Returns
    -------
    dict
        File header → layer column (or ``lon``/``lat``), for the recognised headers only. When several
        headers could fill one column, the most specific alias wins (户主姓名 before 姓名).

    Examples
    --------
    >>> recognise_columns(["姓名", "户主", "经度"], "households")
    {'户主': 'head_name', '经度': 'lon'}
    >>> recognise_columns(["姓名"], "staff")
    {'姓名': 'name'}
    """
    _layer_schema(target_layer)
    columns = list(columns)
    explicit = {_norm_header(k): v for k, v in (mapping or {}).items()}
    lookup: dict[str, tuple[str, int]] = {}
    table = dict(ALIASES.get(target_layer, {}))
    table["lon"] = LON_ALIASES
    table["lat"] = LAT_ALIASES
    for canonical, aliases in table.items():
        lookup.setdefault(canonical.lower(), (canonical, -1))
        for rank, alias in enumerate(aliases):
            lookup.setdefault(_norm_header(alias), (canonical, rank))
    for col in LAYERS[target_layer].columns:
        lookup.setdefault(col.lower(), (col, -1))
    best: dict[str, tuple[int, str]] = {}
    for col in columns:
        norm = _norm_header(col)
        if norm in explicit:
            canonical, rank = explicit[norm], -2
        elif norm in lookup:
            canonical, rank = lookup[norm]
        elif len(norm) == 10 and len(cut := [c for c in LAYERS[target_layer].columns if c.startswith(norm)]) == 1:
            canonical, rank = cut[0], 0  # a Shapefile truncates field names to 10 characters
        else:
            continue
        if canonical not in best or rank < best[canonical][0]:
            best[canonical] = (rank, col)
    chosen = {col: canonical for canonical, (_, col) in best.items()}
    return {col: chosen[col] for col in columns if col in chosen}


# --------------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic garbage collector while building millions of small lists (3x faster reads)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _cell_text(value: Any) -> str | None:
    """One cell as the text the user typed (integers without ``.0``; ``None`` for a blank cell)."""
    if type(value) is str:
        return value.strip() or None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "是" if value else "否"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return None
        if float(value).is_integer():
            if abs(value) < V.EXACT_LIMIT:
                return str(int(value))
            # beyond 2**53 a float (what Excel stores) may have lost digits: keep the scientific form,
            # which validation refuses in id columns (never a silently rounded id)
            return np.format_float_scientific(float(value), unique=True, trim="-")
        return repr(float(value))
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.strftime("%Y-%m-%d") if (value.hour, value.minute, value.second) == (0, 0, 0) \
            else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _stringify(frame: pd.DataFrame, *, is_text: bool = False) -> pd.DataFrame:
    """Every attribute column as text cells (object dtype, ``None`` for blanks), same index.

    ``is_text`` says the cells already are (what :func:`read_table` returns), which skips the conversion.
    """
    cols = [c for c in frame.columns if not (isinstance(frame, gpd.GeoDataFrame) and c == frame.geometry.name)]
    if is_text:
        return pd.DataFrame({c: frame[c].astype(object) for c in cols}, index=frame.index)
    with _no_gc():
        return pd.DataFrame(
            {c: pd.Series([_cell_text(v) for v in frame[c].tolist()], index=frame.index, dtype=object)
             for c in cols},
            index=frame.index,
        )


def _unique_headers(headers: list[Any]) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, h in enumerate(headers, start=1):
        name = _cell_text(h) or f"列{i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def _table_from_records(records: list[tuple[int, list[Any]]], source: str, *, text: bool = False
                        ) -> tuple[pd.DataFrame, list[str], list[tuple[int, str, str, str]]]:
    """Header detection, blank rows, ragged rows → a text frame indexed by row number.

    ``text`` says every cell is a ``str`` already (CSV), which takes a faster path.
    """
    notes: list[str] = []
    problems: list[tuple[int, str, str, str]] = []
    if text:
        records = [(n, [v.strip() or None for v in rec]) for n, rec in records]
    else:
        records = [(n, [_cell_text(v) for v in rec]) for n, rec in records]
    filled = [(n, rec, len(rec) - rec.count(None)) for n, rec in records]
    nonblank = [(n, rec, k) for n, rec, k in filled if k]
    if not nonblank:
        raise ValidationError("文件是空的，没有任何数据", file=source, fix="检查是否选错了文件或工作表")
    known = _known_headers()
    scores = [sum(1 for v in rec if v is not None and _norm_header(v) in known) for _, rec, _ in nonblank[:20]]
    if max(scores) >= 2:  # the row with most recognised headers, above it titles and 填报单位/日期 lines
        header_at = scores.index(max(scores))
    else:
        header_at = next((i for i, (_, _, k) in enumerate(nonblank[:20]) if k >= 2), 0)
    header_row, header, _ = nonblank[header_at]
    if header_at:
        notes.append(f"第 {header_row} 行被当作表头，跳过了它上面的 {header_at} 行标题")
    while header and _cell_text(header[-1]) is None:
        header = header[:-1]
    names = _unique_headers(list(header))
    rows, index, blank = [], [], 0
    for n, rec, k in filled:
        if n <= header_row:
            continue
        if not k:
            blank += 1
            continue
        cells = rec
        extra = [c for c in cells[len(names):] if c is not None]
        if extra:
            problems.append((n, "（整行）", "字段数多于表头",
                             f"这一行有 {len(names) + len(extra)} 个以上的值，表头只有 {len(names)} 列；"
                             "检查是否有多余的分隔符（逗号）或未加引号的文字"))
        cells = (cells + [None] * len(names))[: len(names)]
        rows.append(cells)
        index.append(n)
    if blank:
        notes.append(f"跳过了 {blank} 个空行")
    if not rows:
        raise ValidationError("文件只有表头，没有数据行", file=source, fix="在表头下面填写数据后再导入")
    frame = pd.DataFrame(rows, columns=names, index=pd.Index(index, name=ROW_INDEX), dtype=object)
    return frame, notes, problems


def _read_csv(path: Path, encoding: str | None) -> tuple[pd.DataFrame, list[str], list]:
    raw = path.read_bytes()
    notes = []
    if encoding:
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ValidationError(f"无法按 {encoding} 解码：{exc}", file=path.name,
                                  fix="换一个编码（常见的是 utf-8 或 gbk），或用 Excel 另存为 UTF-8 CSV") from exc
        text = text.removeprefix("\ufeff")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise ValidationError("文件既不是 UTF-8 也不是 GBK 编码", file=path.name,
                                      fix="用 --encoding 指定编码，或用 Excel 另存为 “CSV UTF-8”") from exc
            notes.append("文件不是 UTF-8 编码，已按 GBK 读取（如仍有乱码，请用 --encoding 指定编码）")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = max([",", "\t", ";", "|", "，"], key=first.count) if first else ","
    if first and not first.count(delimiter):
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    with _no_gc():
        try:
            records = [(n, rec) for n, rec in enumerate(reader, start=1)]
        except csv.Error as exc:
            raise ValidationError(f"CSV 格式错误：{exc}", file=path.name, fix="检查引号是否成对") from exc
        frame, more, problems = _table_from_records(records, path.name, text=True)
    return frame, notes + more, problems


_XML_ATTR = re.compile(rb'([\w:]+)\s*=\s*"([^"]*)"')
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s[^>]*ref\s*=\s*\"(?:[A-Z]+[0-9]+:)?[A-Z]+([0-9]+)\"")


def _xlsx_sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet name → zip member, from ``xl/workbook.xml`` and its relationships (read as bytes, no parser)."""
    names = set(zf.namelist())
    parts: dict[str, str] = {}
    for member in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels"):
        if member not in names or zf.getinfo(member).file_size > 16 * 2**20:
            return {}
    book = zf.read("xl/workbook.xml")
    rels = zf.read("xl/_rels/workbook.xml.rels")
    targets = {}
    for tag in re.findall(rb"<(?:\w+:)?Relationship\s[^>]*>", rels):
        attrs = dict(_XML_ATTR.findall(tag))
        if b"Id" in attrs and b"Target" in attrs:
            target = attrs[b"Target"].decode("utf-8", "replace")
            targets[attrs[b"Id"]] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    for tag in re.findall(rb"<(?:\w+:)?sheet\s[^>]*>", book):
        attrs = {k.split(b":")[-1]: v for k, v in _XML_ATTR.findall(tag)}
        rid = attrs.get(b"id")
        if b"name" in attrs and rid in targets:
            parts[html.unescape(attrs[b"name"].decode("utf-8", "replace"))] = targets[rid]
    return parts


def _check_xlsx_size(path: Path, sheet: str | None) -> None:
    """Refuse an .xlsx that would take too much memory or time, before anything parses it.

    The sum of the members' uncompressed sizes must stay under :data:`XLSX_MAX_UNCOMPRESSED` (a zip bomb of
    2 MB that unpacks to 600 MB is refused in milliseconds), and the worksheet's declared dimension under
    :data:`XLSX_MAX_ROWS`. The declared sizes can be trusted as a bound: :mod:`zipfile`, which openpyxl reads
    through, never returns more bytes than a member declares.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > XLSX_MAX_MEMBERS:
                raise ValidationError(f"Excel 文件内部有 {len(infos):,} 个部件，超过上限 {XLSX_MAX_MEMBERS:,}，"
                                      "不像正常的工作簿", file=path.name,
                                      fix="用 Excel 打开后另存为 .xlsx 或 CSV UTF-8 再导入")
            total = sum(i.file_size for i in infos)
            if total > XLSX_MAX_UNCOMPRESSED:
                raise ValidationError(
                    f"Excel 文件解压后有 {total / 2**20:,.0f} MB（压缩包 {path.stat().st_size / 2**20:,.1f} MB），"
                    f"超过上限 {XLSX_MAX_UNCOMPRESSED / 2**20:,.0f} MB，未读取", file=path.name,
                    fix=f"大表请另存为 CSV UTF-8 再导入（CSV 没有这个上限），或拆成每个不超过 {XLSX_MAX_ROWS:,} 行的文件")
            parts = _xlsx_sheet_parts(zf)
            if sheet is not None and sheet in parts:
                members = [parts[sheet]]
            elif sheet is None and parts:
                members = [next(iter(parts.values()))]
            else:
                members = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            for member in members:
                if member not in zf.NameToInfo:
                    continue
                with zf.open(member) as fh:
                    head = fh.read(4096)
                m = _DIMENSION.search(head)
                rows = int(m.group(1)) if m else 0
                if rows > XLSX_MAX_ROWS:
                    name = next((k for k, v in parts.items() if v == member), member)
                    raise ValidationError(
                        f"工作表 “{name}” 有 {rows:,} 行，超过上限 {XLSX_MAX_ROWS:,} 行，未读取", file=path.name,
                        fix=f"大表请另存为 CSV UTF-8 再导入（CSV 没有这个上限），或拆成每个不超过 {XLSX_MAX_ROWS:,} 行的文件")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise ValidationError(f"无法读取 Excel 文件：{exc}", file=path.name,
                              fix="确认文件是 .xlsx 且未损坏（用 Excel 打开后另存一次）") from exc


def _too_many_rows(path: Path, title: str) -> ValidationError:
    return ValidationError(f"工作表 “{title}” 超过 {XLSX_MAX_ROWS:,} 行，未读取", file=path.name,
                           fix=f"大表请另存为 CSV UTF-8 再导入（CSV 没有这个上限），或拆成每个不超过 {XLSX_MAX_ROWS:,} 行的文件")


def _read_xlsx(path: Path, sheet: str | None) -> tuple[pd.DataFrame, list[str], list]:
    import openpyxl

    with path.open("rb") as fh:
        head = fh.read(2048)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValidationError("这是旧版 Excel（.xls）文件，只是扩展名写成了 .xlsx", file=path.name,
                              fix="用 Excel 打开后“另存为” Excel 工作簿（.xlsx），或另存为 CSV UTF-8")
    if re.search(rb"<(!doctype\s+html|html|table|meta|\?xml)", head.lstrip(b"\xef\xbb\xbf \t\r\n")[:200],
                 re.IGNORECASE):
        raise ValidationError("这个文件其实是网页（HTML/XML 表格），只是扩展名写成了 .xlsx（有些业务系统这样“导出 Excel”）",
                              file=path.name, fix="用 Excel 打开后“另存为” Excel 工作簿（.xlsx）或 CSV UTF-8，再导入")
    _check_xlsx_size(path, sheet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationError(f"无法读取 Excel 文件：{exc}", file=path.name,
                              fix="确认文件是 .xlsx 且未损坏（用 Excel 打开后另存一次）") from exc
    try:
        if sheet is None:
            ws = wb.worksheets[0]
        elif sheet in wb.sheetnames:
            ws = wb[sheet]
        else:
            raise ValidationError(f"没有工作表 “{sheet}”", file=path.name,
                                  fix=f"可用的工作表：{'、'.join(wb.sheetnames)}")
        # openpyxl (read-only) stops at the declared dimension, which may be wrong: rows below it would be
        # silently lost. Read every row instead, and stop past the cap (a few title rows allowed).
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()
        limit = XLSX_MAX_ROWS + 100
        with warnings.catch_warnings(), _no_gc():
            warnings.simplefilter("ignore")
            records = []
            for n, rec in enumerate(ws.iter_rows(values_only=True), start=1):
                if n > limit:
                    raise _too_many_rows(path, ws.title)
                records.append((n, list(rec)))
        notes = [f"读取了工作表 “{ws.title}”"] if len(wb.sheetnames) > 1 else []
    finally:
        wb.close()
    notes += _formula_text(path, records, ws.title)
    with _no_gc():
        frame, more, problems = _table_from_records(records, path.name)
    return frame, notes + more, problems


def _formula_text(path: Path, records: list[tuple[int, list[Any]]], title: str) -> list[str]:
    """Fill cells whose formula has no stored result (files not saved by Excel) with the formula's text.

    ``data_only`` reading gives the result Excel stored with a formula; a file written by another program
    has none, and the cell would silently come out blank. The text (``=A1*2``) is kept as data instead.
    """
    import openpyxl

    with zipfile.ZipFile(path) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        if not any(re.search(rb"<f[ >]", zf.read(n)) for n in sheets):
            return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
        try:
            filled = 0
            sheet = wb[title]
            if hasattr(sheet, "reset_dimensions"):
                sheet.reset_dimensions()
            rows = sheet.iter_rows(values_only=True)
            for (_, rec), frec in zip(records, rows, strict=False):
                for j, v in enumerate(frec[: len(rec)]):
                    if rec[j] is None and isinstance(v, str) and v.startswith("="):
                        rec[j] = v
                        filled += 1
        finally:
            wb.close()
    if not filled:
        return []
    return [f"{filled} 个单元格是没有计算结果的公式（文件不是用 Excel 保存的），已按公式文本原样读取；"
            "如需计算结果，请用 Excel 打开并保存一次再导入"]


_KNOWN: set[str] = set()


def _known_headers() -> set[str]:
    """Every recognised header (all layers' aliases and column names), normalised."""
    if not _KNOWN:
        for table in ALIASES.values():
            for canonical, aliases in table.items():
                _KNOWN.update(_norm_header(a) for a in (canonical, *aliases))
        for name in (n for n in IMPORTABLE_LAYERS if n in LAYERS):
            _KNOWN.update(c.lower() for c in LAYERS[name].columns)
        from grids.villages import SEAT_ALIASES

        _KNOWN.update(_norm_header(a) for aliases in SEAT_ALIASES.values() for a in aliases)
        _KNOWN.update(_norm_header(a) for a in (*LON_ALIASES, *LAT_ALIASES))
    return _KNOWN


_LONG_DIGITS = re.compile(r"\d{7,}[\dXx]?")


def _safe_names(columns: Iterable[Any]) -> str:
    """Column names for a message, with long digit runs (ID numbers, phones) hidden."""
    return "、".join(_LONG_DIGITS.sub(lambda m: "*" * len(m.group(0)), str(c)) for c in columns)


def _dbf_encoding(shp: Path) -> str | None:
    """``GBK`` when the ``.dbf`` next to ``shp`` holds text that is not UTF-8 but is GBK, else ``None``."""
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    with dbf.open("rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return None
        header_len = int.from_bytes(head[8:10], "little")
        record_len = max(int.from_bytes(head[10:12], "little"), 1)
        fields = fh.read(max(header_len - 32, 0))
        body = fh.read(record_len * 20_000)
    chunks = [fields[i:i + 11].split(b"\x00")[0] for i in range(0, len(fields) - 1, 32)]
    chunks += [body[i:i + record_len] for i in range(0, len(body), record_len)]
    chunks = [c for c in chunks if any(b > 0x7F for b in c)]
    if not chunks:
        return None

    def decodes(enc: str) -> bool:
        try:
            for c in chunks:
                c.decode(enc)
        except UnicodeDecodeError:
            return False
        return True

    if decodes("utf-8"):
        return None
    for enc in ("GBK", "GB18030"):
        if decodes(enc.lower()):
            return enc
    return None


def _sidecar(shp: Path, suffix: str) -> Path | None:
    """The file next to ``shp`` with ``suffix`` in either case, or ``None``."""
    return next((p for p in (shp.with_suffix(suffix.lower()), shp.with_suffix(suffix.upper())) if p.exists()), None)


def shapefile_counts(shp: str | os.PathLike) -> tuple[int, int | None]:
    """Records in a Shapefile's ``.shp`` (geometries) and ``.dbf`` (attribute rows; ``None`` without one).

    The ``.shp`` is walked record by record (its own headers, not the ``.shx`` index), and only complete
    records count; the ``.dbf`` count is the smaller of the header's count and the records the file holds.

    Raises
    ------
    ValidationError
        The ``.shp`` is not a Shapefile (bad header).
    """
    shp = Path(shp)
    size = shp.stat().st_size
    with shp.open("rb") as fh:
        head = fh.read(100)
        if len(head) < 100 or int.from_bytes(head[0:4], "big") != 9994:
            raise ValidationError("不是有效的 Shapefile（.shp 文件头不对）", file=shp.name,
                                  fix="文件可能已损坏或被截断；重新导出完整的 Shapefile，或改用 GeoPackage")
        n = _shx_count(shp, size)
        if n is None:  # no usable index: walk the records
            n, pos = 0, 100
            while pos + 8 <= size:
                fh.seek(pos)
                length = int.from_bytes(fh.read(8)[4:8], "big", signed=True) * 2
                if length < 0 or pos + 8 + length > size:
                    break
                n += 1
                pos += 8 + length
    dbf = _sidecar(shp, ".dbf")
    if dbf is None:
        return n, None
    with dbf.open("rb") as fh:
        head = fh.read(12)
    if len(head) < 12:
        return n, 0
    declared = int.from_bytes(head[4:8], "little")
    header_len, record_len = int.from_bytes(head[8:10], "little"), int.from_bytes(head[10:12], "little")
    held = (dbf.stat().st_size - header_len) // record_len if record_len else 0
    return n, max(0, min(declared, held))


def _shx_count(shp: Path, size: int) -> int | None:
    """Records of ``shp`` per its ``.shx`` index when the index chains the ``.shp`` exactly, else ``None``."""
    shx = _sidecar(shp, ".shx")
    if shx is None or (shx.stat().st_size - 100) % 8:
        return None
    entries = np.fromfile(shx, dtype=">i4", offset=100).reshape(-1, 2).astype(np.int64) * 2
    if not len(entries):
        return 0 if size <= 100 else None
    ends = entries[:, 0] + 8 + entries[:, 1]
    chained = entries[0, 0] == 100 and bool(np.all(entries[1:, 0] == ends[:-1])) and (entries[:, 1] >= 0).all()
    return len(entries) if chained and ends[-1] == size else None


def _check_shapefile(shp: Path) -> None:
    """Refuse a Shapefile whose geometries and attribute rows do not pair up (rows would be lost or mismatched)."""
    n_shp, n_dbf = shapefile_counts(shp)
    if n_dbf is not None and n_shp != n_dbf:
        raise ValidationError(
            f"Shapefile 的几何文件（.shp）有 {n_shp} 条记录，属性表（.dbf）有 {n_dbf} 条，两者不一致；"
            "照此导入会丢失或错配数据，未导入", file=shp.name,
            fix="这几个文件可能不是同一次导出的，或其中一个被截断；在 GIS 软件中重新导出完整的 Shapefile"
                "（.shp、.shx、.dbf、.prj 一起上传），或改用 GeoPackage")


def _read_spatial(path: Path, kind: str, layer: str | None, encoding: str | None
                  ) -> tuple[gpd.GeoDataFrame, list[str]]:
    notes: list[str] = []
    if kind == "shp":
        _check_shapefile(path)
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
            detected = _dbf_encoding(path)
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


def _looks_lonlat(bounds: np.ndarray) -> bool:
    minx, miny, maxx, maxy = bounds
    return bool(np.all(np.isfinite(bounds)) and -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90)


def _points_from_columns(frame: pd.DataFrame, lon_col: str, lat_col: str, coords: str, source: str
                         ) -> tuple[np.ndarray, list[str], list[tuple[int, str, str, str]]]:
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


def read_table(file: str | os.PathLike, *, layer: str | None = None, encoding: str | None = None,
               coords: str | None = None, mapping: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
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
    GeoDataFrame
        Text attributes as typed (``None`` for blank cells), a ``geometry`` column (``None`` where a row has
        no location), index ``row``. ``attrs["ingest"]`` carries ``source``, ``warnings``, ``row_problems``
        (row, column, reason, fix) found while reading, ``source_columns`` and ``tabular`` for
        :func:`validate`.

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
    >>> t.index.tolist(), t.geometry.iloc[0].x, t.crs.to_epsg()
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
        table, notes, problems = _read_csv(path, encoding) if kind == "csv" else _read_xlsx(path, layer)
        if mapping:
            table = table.rename(columns=_rename_map(table.columns, mapping))
        coord_cols = {v: k for k, v in recognise_columns(table.columns, "households").items() if v in ("lon", "lat")}
        if len(coord_cols) == 1:
            only = next(iter(coord_cols.values()))
            raise ValidationError(f"只有“{only}”一列坐标", file=path.name,
                                  fix="同时提供经度和纬度两列，或删掉这一列只用村/组代码定位")
        if coord_cols:
            coord_label = f"{coord_cols['lon']}/{coord_cols['lat']}"
            geoms, more, coord_problems = _points_from_columns(table, coord_cols["lon"], coord_cols["lat"],
                                                               coords, path.name)
            notes += more
            problems += coord_problems
        else:
            coord_label = None
            geoms = np.full(len(table), None, dtype=object)
        gdf = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, index=table.index), crs=STORAGE_EPSG)
    else:
        coord_label = None
        raw, notes = _read_spatial(path, kind, layer, encoding)
        if not len(raw):
            raise ValidationError("文件里没有任何要素", file=path.name, fix="检查是否选错了文件或图层")
        geo = gpd.GeoSeries(shapely.force_2d(raw.geometry.values), crs=raw.crs) if raw.geometry.name in raw \
            else gpd.GeoSeries([None] * len(raw), crs=raw.crs)
        geo = _to_storage_crs(geo, coords, path.name, notes)
        table = _stringify(raw)
        if mapping:
            table = table.rename(columns=_rename_map(table.columns, mapping))
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
    gdf.attrs["ingest"] = {
        "source": path.name,
        "warnings": notes,
        "row_problems": problems,
        "tabular": kind in ("csv", "xlsx"),
        "coords": coords,
        "coords_declared": declared,
        "geometry_label": coord_label,
        "text": True,
    }
    return gdf


def _rename_map(columns: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    explicit = {_norm_header(k): v for k, v in mapping.items()}
    return {c: explicit[_norm_header(c)] for c in columns if _norm_header(c) in explicit}


def _to_storage_crs(geo: gpd.GeoSeries, coords: str, source: str, notes: list[str]) -> gpd.GeoSeries:
    present = geo[~(geo.isna() | geo.is_empty)]
    if geo.crs is None:
        if len(present) and not _looks_lonlat(present.total_bounds):
            raise ValidationError(
                "文件没有坐标系（缺少 .prj 或 CRS），坐标也不像经纬度，无法确定位置", file=source,
                fix="在 GIS 软件中为数据定义正确的坐标系后导出（Shapefile 需附带 .prj），或换成经纬度")
        if len(present):
            notes.append(f"文件没有坐标系信息，坐标按 {COORDS[coords]} 经纬度处理")
        geo = geo.set_crs(STORAGE_EPSG)
    elif geo.crs.to_epsg() != STORAGE_EPSG:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                geo = geo.to_crs(STORAGE_EPSG)
        except Exception as exc:
            raise ValidationError(f"无法把坐标系 {geo.crs.name} 转换到 CGCS2000：{exc}", file=source,
                                  fix="在 GIS 软件中把数据转换到 EPSG:4490 或 EPSG:4326 后再导入") from exc
        after = geo[~(geo.isna() | geo.is_empty)]
        if len(after) and not _looks_lonlat(after.total_bounds):
            raise ValidationError("坐标转换后不在经纬度范围内，文件的坐标系声明可能不对", file=source,
                                  fix="检查 .prj/CRS 是否与坐标数值一致")
    if coords == "gcj02" and len(present):
        geo = gdf_gcj02_to_wgs84(gpd.GeoDataFrame(geometry=geo)).geometry
        notes.append("坐标按 GCJ-02（高德/腾讯）读取，已转换为 CGCS2000")
    return geo.set_crs(STORAGE_EPSG, allow_override=True)


# --------------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------------


def _layer_schema(target_layer: str):
    if target_layer not in IMPORTABLE_LAYERS:
        raise ValidationError(f"不能导入到图层 “{target_layer}”", fix=f"可导入的图层：{'、'.join(IMPORTABLE_LAYERS)}")
    return LAYERS[target_layer]


class _Problems:
    """Collects (position, column, reason, fix) for rows of one file."""

    def __init__(self, rows: np.ndarray, labels: Mapping[str, str]) -> None:
        self.n = len(rows)
        self.rows = rows
        self.labels = labels
        self.items: list[tuple[int, str, str, str]] = []

    def add(self, mask: pd.Series | np.ndarray, column: str, reason: str, fix: str) -> None:
        label = self.labels.get(column, LABELS.get(column, column))
        for pos in np.flatnonzero(np.asarray(mask, dtype=bool)):
            self.items.append((int(pos), label, reason, fix))

    def add_one(self, pos: int, column_label: str, reason: str, fix: str) -> None:
        self.items.append((pos, column_label, reason, fix))

    def add_at(self, pos: int, column: str, reason: str, fix: str) -> None:
        self.items.append((pos, self.labels.get(column, LABELS.get(column, column)), reason, fix))

    def rejected(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for pos, *_ in self.items:
            out[pos] = True
        return out


@dataclass
class _Context:
    workspace: Workspace | None
    mode: str
    warnings: list[str]
    lost: dict[str, pd.Series] = field(default_factory=dict)
    town: str | None = None
    legacy: bool = False
    extra_aliases: pd.DataFrame | None = None
    name_issues: list[dict[str, str]] = field(default_factory=list)
    _admin: gpd.GeoDataFrame | None = None
    _units: pd.DataFrame | None = None
    _aliases: pd.DataFrame | None = None

    def lost_in(self, col: str, index: pd.Index) -> pd.Series:
        """Rows whose ``col`` was refused as a spreadsheet number that lost digits (checked no further)."""
        mask = self.lost.get(col)
        return pd.Series(False, index=index) if mask is None else mask

    def admin(self) -> gpd.GeoDataFrame | None:
        if self._admin is None and self.workspace is not None and self.workspace.count("admin_units"):
            self._admin = self.workspace.read("admin_units", columns=["code", "level", "parent_code"])
        return self._admin

    def units(self) -> pd.DataFrame | None:
        """Admin units with names (``code``, ``name``, ``level``, ``parent_code``) for matching names."""
        if self._units is None and self.workspace is not None and self.workspace.count("admin_units"):
            units = self.workspace.read("admin_units", columns=["code", "name", "level", "parent_code", "derived"])
            self._units = pd.DataFrame(units.drop(columns=units.geometry.name)
                                       if isinstance(units, gpd.GeoDataFrame) else units)
        return self._units

    def aliases(self) -> pd.DataFrame | None:
        """Confirmed names: the workspace's ``name_aliases`` and those passed in (``import --names``), which win."""
        if self._aliases is None:
            stored = N.read_aliases(self.workspace) if self.workspace is not None else None
            frames = [f for f in (stored, self.extra_aliases) if f is not None and len(f)]
            self._aliases = (pd.concat([f[["level", "parent_code", "alias", "code"]] for f in frames],
                                       ignore_index=True).drop_duplicates(["level", "parent_code", "alias"], keep="last")
                             if frames else pd.DataFrame(columns=["level", "parent_code", "alias", "code"]))
        return self._aliases

    def codes(self, level: str) -> pd.DataFrame:
        admin = self.admin()
        if admin is None:
            return pd.DataFrame({"code": [], "parent_code": []})
        sel = admin[admin["level"] == level]
        return pd.DataFrame({"code": sel["code"].astype(str).to_numpy(),
                             "parent_code": sel["parent_code"].astype(object).to_numpy()})

    def keys(self, layer: str, column: str) -> set[str]:
        if self.workspace is None or not self.workspace.count(layer):
            return set()
        values = self.workspace.read(layer, columns=[column])[column]
        return {normalize_id(v) for v in values if not pd.isna(v)}


def validate(frame: gpd.GeoDataFrame | pd.DataFrame, *, target_layer: str, workspace: Workspace | None,
             source_name: str, mode: str | None = None, town: str | None = None,
             aliases: pd.DataFrame | None = None, legacy: bool = False) -> ImportReport:
    """Check every row of ``frame`` for ``target_layer`` and split it into accepted and rejected rows.

    Parameters
    ----------
    frame : GeoDataFrame or DataFrame
        Usually the result of :func:`read_table`. Row numbers come from the index when it is named ``row``
        (otherwise rows are numbered from 1); geometry in any CRS (converted to EPSG:4490).
    target_layer : str
        One of :data:`IMPORTABLE_LAYERS`.
    workspace : Workspace or None
        Supplies the hierarchy (village/group codes, county outline), existing ids (append mode), branches,
        staff and households that rows refer to. ``None`` skips those checks (and says so).
    source_name : str
        File name used in the rejects and messages.
    mode : {'append', 'replace', 'update'}, optional
        How the rows will be written; in append mode an id already in the workspace is rejected, in update
        mode (households only) an id *not* in the workspace is. Defaults to :data:`DEFAULT_MODE` (append for
        households and visits, replace otherwise).
    town : str, optional
        Households and visits keyed by village/group NAME (columns 村/嘎查/社区 and 组): the town (name or
        code) of rows without a 乡镇 cell (``import --town``). See :func:`grids.names.match_names`.
    aliases : DataFrame, optional
        Confirmed names to use besides the workspace's ``name_aliases`` (``level``, ``parent_code``,
        ``alias``, ``code``; see :func:`grids.names.read_name_mapping`).
    legacy : bool
        Households: a granted row that breaks the product rules (:func:`grids.credit_rules.check_grant`) is a
        historical grant, kept and flagged (``credit_legacy``, the rules in ``credit_note``) instead of rejected.

    Returns
    -------
    ImportReport

    Notes
    -----
    A file that is a rejects file written by an earlier import (columns 文件, 行, 列, 原因, 修正方法 first)
    is read as the original rows: one row per rejected row, the problem columns ignored.

    Raises
    ------
    ValidationError
        A problem of the whole file: no recognisable column, a required column missing.
    """
    if target_layer == "villages":
        from grids.villages import validate_villages

        return validate_villages(frame, workspace=workspace, source_name=source_name)
    schema = _layer_schema(target_layer)
    mode = mode or DEFAULT_MODE.get(target_layer, "replace")
    if mode not in MODES:
        raise ValidationError(f"不认识的写入方式 “{mode}”", fix="可选 append（追加）、replace（替换）或 update（更新已有的户）")
    if mode == "update" and target_layer not in UPDATE_LAYERS:
        raise ValidationError(f"图层 {target_layer} 不能按更新方式导入", fix="更新方式只用于农户（households）；"
                              "其他图层用 append 或 replace")
    meta = dict(frame.attrs.get("ingest", {}))
    notes = list(meta.get("warnings", []))
    frame = _unwrap_rejects(frame, notes)
    n = len(frame)
    rows = (np.asarray(frame.index, dtype=np.int64) if frame.index.name == ROW_INDEX
            else np.arange(1, n + 1, dtype=np.int64))
    row_pos = {int(r): i for i, r in enumerate(rows)}
    is_geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
    raw = _stringify(frame, is_text=bool(meta.get("text"))).reset_index(drop=True)
    if is_geo:
        geo = frame.geometry if frame.crs is None or frame.crs.to_epsg() == STORAGE_EPSG else frame.to_crs(
            STORAGE_EPSG).geometry
        geoms = np.asarray(geo.values, dtype=object)
    else:
        geoms = np.full(n, None, dtype=object)
    if n == 0:
        raise ValidationError("文件里没有数据行", file=source_name, fix="检查是否选错了文件")

    colmap = recognise_columns(raw.columns, target_layer)
    data = pd.DataFrame({canonical: raw[col] for col, canonical in colmap.items() if canonical not in ("lon", "lat")})
    labels = {canonical: col for col, canonical in colmap.items()}
    if meta.get("geometry_label"):
        labels["geometry"] = meta["geometry_label"]
    ignored = [c for c in raw.columns if c not in colmap and V.present(raw[c]).any()]
    if not colmap and not any(g is not None for g in geoms):
        if any(_LONG_DIGITS.search(str(c)) for c in raw.columns):
            seen = "第一行看起来是数据而不是表头（含长串数字），文件可能没有表头"
        else:
            seen = f"文件的列：{_safe_names(raw.columns)}"
        raise ValidationError(
            f"没有一列能对应到图层 {target_layer} 的字段（{seen}）",
            file=source_name,
            fix=f"改表头为 {'、'.join(LABELS.get(c, c) for c in schema.columns)} 等，或用 --map 源列=目标列 指定")
    required = REQUIRED.get(target_layer, ())
    if mode == "update":
        required = (schema.key,)
    missing = [c for c in required if c not in data.columns]
    if missing:
        names = "、".join(f"{LABELS.get(c, c)}（{c}）" for c in missing)
        raise ValidationError(
            f"缺少必需的列 {names}", file=source_name,
            fix=f"在文件里加上这些列，或用 --map 指定哪一列是它，例如 --map 原列名={missing[0]}")
    if ignored:
        notes.append(f"这些列不属于图层 {target_layer}，未导入：{_safe_names(ignored)}（如需导入请用 --map 指定）")

    problems = _Problems(rows, labels)
    for row, col, reason, fix in meta.get("row_problems", []):
        if int(row) in row_pos:
            problems.add_one(row_pos[int(row)], col, reason, fix)
    ctx = _Context(workspace=workspace, mode=mode, warnings=notes, lost=_normalise_ids(data, problems), town=town,
                   extra_aliases=aliases, legacy=legacy)
    if workspace is None:
        notes.append("没有提供工作区，未检查代码层级、重复和县界")
    if town and ctx.units() is not None:
        tm = N.match_towns([town], candidates=ctx.units())[0]
        if tm is not None and tm.code is None:
            raise ValidationError(f"工作区里没有乡镇“{plain(town)}”（--town）", file=source_name,
                                  fix=f"{N.suggestion(tm.candidates)}写工作区里的乡镇名称或 9 位乡镇代码")

    family = _FAMILY.get(schema.geometry or "")
    repaired = np.zeros(n, dtype=bool)
    if family:
        geoms, repaired = _check_geometries(geoms, family, target_layer, data, problems, notes)
    elif any(g is not None for g in geoms):
        notes.append(f"图层 {target_layer} 不带几何，文件中的几何已忽略")

    declared = meta.get("coords") if meta.get("coords_declared") else None
    datum = None
    if family == "point" and workspace is not None:
        none = pd.Series([None] * n, dtype=object)
        datum = _detect_gcj02(geoms, ctx.admin(), data.get("village_code", none).reset_index(drop=True),
                              data.get("group_code", none).reset_index(drop=True), declared)
        if datum is not None and datum.suspect:
            notes.append(datum.message())

    typed = _CHECKS[target_layer](data, geoms, problems, ctx)
    if schema.key and schema.key in typed.columns:
        _check_key(typed[schema.key], schema.key, target_layer, problems, ctx)

    rejected = problems.rejected()
    keep = ~rejected
    out_cols = [c for c in schema.columns if c in typed.columns]
    accepted_attrs = typed.loc[keep, out_cols].set_axis(pd.Index(rows[keep], name=ROW_INDEX))
    if family:
        accepted: gpd.GeoDataFrame | pd.DataFrame = gpd.GeoDataFrame(
            accepted_attrs, geometry=gpd.GeoSeries(geoms[keep], index=accepted_attrs.index, crs=STORAGE_EPSG),
            crs=STORAGE_EPSG)
    else:
        accepted = accepted_attrs
    if repaired[keep].any():
        notes.append(f"修复了 {int(repaired[keep].sum())} 个无效面（make_valid，面积变化小于 1%）："
                     f"第 {'、'.join(map(str, rows[keep & repaired][:20]))} 行")
    rejects = _rejects_frame(problems.items, rows, raw, geoms if is_geo and not meta.get("tabular") else None,
                             source_name)
    return ImportReport(accepted=accepted, rejects=rejects, warnings=notes, source=source_name,
                        layer=target_layer, mode=mode, read=n, repaired=int(repaired[keep].sum()), datum=datum,
                        coords_declared=bool(meta.get("coords_declared", False)), name_issues=ctx.name_issues)


def _unwrap_rejects(frame: gpd.GeoDataFrame | pd.DataFrame, notes: list[str]) -> gpd.GeoDataFrame | pd.DataFrame:
    """A rejects file (:data:`REJECT_COLUMNS` then the original columns) as its original rows: one row per
    rejected row (a row with two problems has two lines), without the problem columns."""
    if not all(c in frame.columns for c in REJECT_COLUMNS):
        return frame
    first = ~frame.duplicated(["文件", "行"], keep="first")
    out = frame.loc[first.to_numpy()].drop(columns=list(REJECT_COLUMNS))
    out = out.rename(columns={f"{c}（原）": c for c in REJECT_COLUMNS})  # the original file's own 行/列… columns
    out.attrs = frame.attrs
    notes.append(f"这是一个拒收文件：按其中 {int(first.sum())} 个原始行重新校验（忽略“原因”等列）")
    return out


def _rejects_frame(items: list[tuple[int, str, str, str]], rows: np.ndarray, raw: pd.DataFrame,
                   geoms: np.ndarray | None, source: str) -> pd.DataFrame:
    originals = [c if c not in REJECT_COLUMNS else f"{c}（原）" for c in raw.columns]
    cols = [*REJECT_COLUMNS, *originals] + (["几何（WKT）"] if geoms is not None else [])
    if not items:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    items = sorted(items, key=lambda t: t[0])
    pos = np.array([t[0] for t in items])
    out = pd.DataFrame({
        "文件": source,
        "行": rows[pos],
        "列": [t[1] for t in items],
        "原因": [t[2] for t in items],
        "修正方法": [t[3] for t in items],
    })
    values = raw.iloc[pos].reset_index(drop=True)
    values.columns = originals
    out = pd.concat([out, values], axis=1)
    if geoms is not None:
        out["几何（WKT）"] = [None if geoms[p] is None else shapely.to_wkt(geoms[p], rounding_precision=7)[:32000]
                          for p in pos]
    return out


# -- geometry ---------------------------------------------------------------------------------------------


def _check_geometries(geoms: np.ndarray, family: str, layer: str, data: pd.DataFrame, problems: _Problems,
                      notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    geoms = geoms.copy()
    n = len(geoms)
    repaired = np.zeros(n, dtype=bool)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if layer != "households":  # households may be located by village/group code alone
        problems.add(missing, "geometry", f"缺少几何（{_FAMILY_NAMES[family]}）",
                     "在 GIS 软件中补画这个要素，或删除这一行")
    type_ids = shapely.get_type_id(geoms)
    single_multi = (type_ids == 4) & (shapely.get_num_geometries(geoms) == 1)
    if single_multi.any():
        geoms[single_multi] = shapely.get_geometry(geoms[single_multi], 0)
        type_ids = np.where(single_multi, 0, type_ids)
    allowed = [_TYPE_IDS[t] for t in _FAMILY_TYPES[family]]
    wrong = ~missing & ~np.isin(type_ids, allowed)
    for i in np.flatnonzero(wrong):
        problems.add_at(int(i), "geometry", "几何类型错误",
                         f"图层 {layer} 需要{_FAMILY_NAMES[family]}，这一行是 {geoms[i].geom_type}；"
                         "检查是否选错了文件或图层")
    ok = ~missing & ~wrong
    xy, owner = shapely.get_coordinates(np.where(ok, geoms, None), return_index=True)
    coords_ok = np.bincount(owner[~np.isfinite(xy).all(axis=1)], minlength=n) == 0
    problems.add(ok & ~coords_ok, "geometry", "坐标不是有限数值", "检查坐标中的空值或 NaN")
    ok &= coords_ok
    if family in ("polygon", "line"):
        ok &= _limit_vertices(geoms, ok, family, problems, notes)
    invalid = ok & ~shapely.is_valid(np.where(ok, geoms, None))
    for i in np.flatnonzero(invalid):
        fixed, why = _repair(geoms[i], family)
        if fixed is None:
            problems.add_at(int(i), "geometry", "几何无效且无法安全修复",
                             f"{why}；在 QGIS 中用“修复几何”或手工修正（自相交、重复点）后再导入")
        else:
            geoms[i] = fixed
            repaired[i] = True
    return geoms, repaired


def _limit_vertices(geoms: np.ndarray, ok: np.ndarray, family: str, problems: _Problems,
                    notes: list[str]) -> np.ndarray:
    """Simplify (in place) geometries above :data:`VERTICES_SIMPLIFY` vertices, reject those above
    :data:`VERTICES_MAX`; returns the mask of rows still usable."""
    counts = shapely.get_num_coordinates(np.where(ok, geoms, None))
    keep = np.ones(len(geoms), dtype=bool)
    what = _FAMILY_NAMES[family]
    done = []
    for i in np.flatnonzero(ok & (counts > VERTICES_SIMPLIFY)):
        simplified, tolerance = None, 0.0
        if counts[i] <= VERTICES_MAX:
            simplified, tolerance = _simplify_below(geoms[i], VERTICES_SIMPLIFY)
        if simplified is None:
            keep[i] = False
            problems.add_at(int(i), "geometry", "几何顶点过多",
                            f"这个{what}有 {int(counts[i]):,} 个顶点，超过上限 {VERTICES_MAX:,}（或无法简化到 "
                            f"{VERTICES_SIMPLIFY:,} 以内）；在 GIS 软件中简化（如 QGIS “简化”，容差 1–5 米）后再导入")
            continue
        geoms[i] = simplified
        done.append((int(problems.rows[i]), int(counts[i]), int(shapely.get_num_coordinates(simplified)),
                     tolerance * 111_000))
    if done:
        notes.append(f"{len(done)} 个{what}的顶点超过 {VERTICES_SIMPLIFY:,} 个，已简化（相邻单元的公共边可能不再完全重合）："
                     + "；".join(f"第 {r} 行 {a:,} → {b:,} 个顶点（容差约 {m:.1f} 米）" for r, a, b, m in done[:20]))
    return keep


def _simplify_below(geom: shapely.Geometry, cap: int) -> tuple[shapely.Geometry | None, float]:
    """``geom`` simplified (topology preserved) with the smallest doubling tolerance (degrees, from ~1 cm)
    that brings it to at most ``cap`` vertices; ``(None, 0)`` when even ~100 m does not."""
    tolerance = 1e-7
    while tolerance < 1e-3:
        out = shapely.simplify(geom, tolerance, preserve_topology=True)
        if shapely.get_num_coordinates(out) <= cap and not out.is_empty:
            return out, tolerance
        tolerance *= 2
    return None, 0.0


def _repair(geom: shapely.Geometry, family: str) -> tuple[shapely.Geometry | None, str]:
    reason = shapely.is_valid_reason(geom)
    if family != "polygon":
        return None, f"几何无效（{reason}）"
    fixed = shapely.make_valid(geom)
    if fixed.geom_type == "GeometryCollection":
        parts = [p for p in fixed.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
        fixed = shapely.union_all(parts) if parts else shapely.Polygon()
    if fixed.is_empty or fixed.geom_type not in ("Polygon", "MultiPolygon"):
        return None, f"几何无效（{reason}），修复后不再是面"
    series = gpd.GeoSeries([geom, fixed], crs=STORAGE_EPSG)
    try:
        before, after = series.to_crs(gk_crs_for(series)).area.tolist()
    except ValidationError:
        return None, f"几何无效（{reason}）"
    if before <= 0 or abs(after - before) / before >= REPAIR_MAX_AREA_CHANGE:
        return None, f"几何无效（{reason}），修复会使面积变化超过 1%"
    return fixed, ""


def _points_outside_county(geoms: np.ndarray, ctx: _Context) -> np.ndarray | None:
    admin = ctx.admin()
    if admin is None:
        return None
    county = admin[admin["level"] == "county"]
    if not len(county):
        return None
    has = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = np.zeros(len(geoms), dtype=bool)
    if not has.any():
        return out
    outline = gpd.GeoSeries([shapely.union_all(county.geometry.values)], crs=STORAGE_EPSG)
    epsg = gk_crs_for(outline)
    outline_gk = outline.to_crs(epsg).iloc[0]
    pts = np.asarray(gpd.GeoSeries(geoms[has], crs=STORAGE_EPSG).to_crs(epsg).values, dtype=object)
    shapely.prepare(outline_gk)
    # most points are inside: a vectorised point-in-polygon first, the distance only for the others
    inside = shapely.contains_xy(outline_gk, shapely.get_x(pts), shapely.get_y(pts))
    far = np.zeros(len(pts), dtype=bool)
    far[~inside] = ~shapely.dwithin(pts[~inside], outline_gk, OUTSIDE_TOLERANCE_M)
    out[has] = far
    return out


# -- values -----------------------------------------------------------------------------------------------


def _text(data: pd.DataFrame, col: str) -> pd.Series:
    if col not in data.columns:
        return pd.Series([None] * len(data), index=data.index, dtype=object)
    s = data[col].astype(object)
    has = V.present(s)
    return s.astype("str").str.strip().astype(object).where(has, None)


def _require(data: pd.DataFrame, col: str, problems: _Problems, fix: str, *, label: str | None = None) -> pd.Series:
    values = _text(data, col)
    problems.add(values.isna(), col, f"缺少{label or LABELS.get(col, col)}", fix)
    return values


def _enum(data: pd.DataFrame, col: str, allowed: Iterable[str], problems: _Problems, *,
          aliases: Mapping[str, str] | None = None, required: bool = False) -> pd.Series:
    allowed = tuple(allowed)
    values = _text(data, col)
    if aliases:
        values = values.map(lambda v: aliases.get(v, v) if isinstance(v, str) else v)
    if required:
        problems.add(values.isna(), col, f"缺少{LABELS.get(col, col)}", f"填写其中之一：{'、'.join(allowed)}")
    problems.add(values.notna() & ~values.isin(allowed), col, f"{LABELS.get(col, col)}不在可选值中",
                 f"只能填写：{'、'.join(allowed)}")
    return values


def _normalise_ids(data: pd.DataFrame, problems: _Problems) -> dict[str, pd.Series]:
    """Normalise the :data:`ID_COLUMNS` of ``data`` in place; reject cells a spreadsheet stored as a number
    that lost digits. Returns, per column, the mask of those cells."""
    lost = {}
    for col in ID_COLUMNS:
        if col not in data.columns:
            continue
        data[col], mask = V.ids_from_numbers(data[col].astype(object))
        label = LABELS.get(col, col)
        problems.add(mask, col, f"{label}被 Excel 存成了数字，位数已丢失",
                     "把该列设置为文本格式后重新导出（Excel：选中该列 → 设置单元格格式 → 文本，重新录入或从原系统"
                     f"重新导出）；科学计数法（如 1.5E+17）表示的{label}已无法还原")
        lost[col] = mask
    return lost


def _codes(values: pd.Series, col: str, length: int, problems: _Problems, lost: pd.Series) -> pd.Series:
    bad = V.digits_of_length(values, length) & ~lost
    problems.add(bad, col, f"{LABELS.get(col, col)}格式错误",
                 f"应为 {length} 位数字（国家统计用区划代码）；在 Excel 中把该列设为文本格式以保留前导零")
    return values.where(~bad & ~lost, None)


def _check_key(keys: pd.Series, col: str, layer: str, problems: _Problems, ctx: _Context) -> None:
    values = keys.astype(object)
    has = values.notna() & ~ctx.lost_in(col, values.index)
    dup = has & values.duplicated(keep=False)
    if dup.any():
        positions = pd.Series(np.arange(len(values)), index=values.index)[dup].groupby(values[dup]).apply(list)
        for key, plist in positions.items():
            others = "、".join(str(problems.rows[p]) for p in plist)
            for p in plist:
                problems.add_at(int(p), col,
                                 f"{LABELS.get(col, col)}在文件中重复",
                                 f"{LABELS.get(col, col)} {key} 出现在文件的第 {others} 行；每个编号只保留一行")
    if ctx.mode == "update" and ctx.workspace is not None:
        existing = ctx.keys(layer, col)
        problems.add(has & ~values.isin(list(existing)), col, f"{LABELS.get(col, col)}不在工作区中",
                     "更新方式只修改工作区里已有的记录；新记录请用默认的追加方式（--mode append）导入")
    if ctx.mode == "append" and ctx.workspace is not None and layer not in KEYED_APPEND:
        existing = ctx.keys(layer, col)
        problems.add(has & values.isin(list(existing)), col, f"{LABELS.get(col, col)}已存在于工作区",
                     "这条记录已导入过，从文件中删除这一行；如确要用本文件替换整个图层的全部数据，才用 --mode replace")


def _name_problem(what: str, match: N.NameMatch, written: str) -> tuple[str, str]:
    """(reason, fix) for a name that matched no unit, with the closest candidates (“是否指：…？”)."""
    confirm = ("确认后在名称对照表（乡镇,登记名称,行政区划代码）里写一行，用 --names 导入一次"
               "（数据管理页：名称对照表），再重新导入本拒收文件")
    hint = N.suggestion(match.candidates)
    if match.how == "town":
        return "乡镇无法识别", (f"工作区里没有乡镇“{plain(written)}”。{hint or ''}"
                              "改成工作区里的乡镇名称或 9 位乡镇代码后重新导入")
    if match.how == "ambiguous":
        return f"{what}有歧义", f"“{plain(written)}”可能是几个{what[0]}中的任何一个：{hint}{confirm}"
    if not hint:
        return f"{what}无法识别", (f"“{plain(written)}”所在的乡镇（村）在工作区里还没有{what[0]}；"
                                 "先导入村（villages 或 admin_units），或填写乡镇列/--town 指定乡镇")
    return f"{what}无法识别", f"工作区里没有“{plain(written)}”。{hint}{confirm}"


def _place_by_names(data: pd.DataFrame, village: pd.Series, group: pd.Series, problems: _Problems,
                    ctx: _Context) -> tuple[pd.Series, pd.Series, pd.Series, np.ndarray]:
    """Village and group codes from the 村/组 NAME columns where the row gives no code (:mod:`grids.names`).

    Returns the village and group codes, the group label (``'1组'``) of rows whose village has no group units
    (kept so that groups can be derived later) and the mask of rows whose village came from its name.
    Unknown and ambiguous names are problems with the closest candidates.
    """
    by_name = np.zeros(len(data), dtype=bool)
    names = _text(data, "village_name")
    gnames = _text(data, "group_name")
    if names.isna().all() and gnames.isna().all():
        return village, group, pd.Series(None, index=data.index, dtype=object), by_name
    v_out = village.to_numpy(dtype=object).copy()
    g_out = group.to_numpy(dtype=object).copy()
    label = np.full(len(data), None, dtype=object)
    units = ctx.units()
    code_cell = _text(data, "village_code").notna() | _text(data, "group_code").notna()
    need = (village.isna() & ~code_cell & names.notna()).to_numpy()
    if need.any():
        if units is None:
            problems.add(need, "village_name", "工作区还没有村",
                         "先导入村（python -m grids import 工作区 villages 村委会位置文件，或 admin_units），再按村名导入")
        else:
            towns = _text(data, "town_name")
            idx = np.flatnonzero(need)
            matches = N.match_names(names.iloc[idx], towns.iloc[idx], candidates=units, aliases=ctx.aliases(),
                                    town=ctx.town)
            for pos, m in zip(idx, matches, strict=True):
                if m.code is not None:
                    v_out[pos] = m.code
                    by_name[pos] = True
                    continue
                col = "town_name" if m.how == "town" and "town_name" in data else "village_name"
                written = towns.iloc[pos] if col == "town_name" else names.iloc[pos]
                if m.how == "town" and written is None:
                    written = ctx.town or ""
                problems.add_at(int(pos), col, *_name_problem("村名", m, written or ""))
                if m.how != "town":
                    ctx.name_issues.append({"乡镇": towns.iloc[pos] or ctx.town or "", "村": "",
                                            "登记名称": names.iloc[pos], "候选": N.suggestion(m.candidates)})
    if ctx.mode == "update" and ctx.workspace is not None:
        # a new group alone: within the household's current village (an update keeps what the file leaves blank)
        alone = np.flatnonzero(np.array([v is None for v in v_out], dtype=bool) & names.isna().to_numpy()
                               & ~code_cell.to_numpy() & gnames.notna().to_numpy())
        if len(alone):
            stored = ctx.workspace.read("households", columns=["hh_id", "village_code"])
            current = {normalize_id(h): v for h, v in zip(stored["hh_id"], stored["village_code"], strict=True)
                       if isinstance(v, str) and v}
            ids = _text(data, "hh_id")
            for pos in alone:
                v = current.get(normalize_id(ids.iloc[pos])) if isinstance(ids.iloc[pos], str) else None
                if v is not None:
                    v_out[pos] = v
                else:
                    problems.add_at(int(pos), "group_name", "改组需同时填写村",
                                    "这户在工作区里没有村代码：同一行填写乡镇和村（或村代码），再填组")
    has_village = np.array([v is not None for v in v_out], dtype=bool)
    gneed = (group.isna() & _text(data, "group_code").isna() & gnames.notna()).to_numpy() & has_village
    if gneed.any() and units is not None:
        idx = np.flatnonzero(gneed)
        matches = N.match_groups(gnames.iloc[idx], v_out[idx], candidates=units, aliases=ctx.aliases())
        labels: dict[str, str] = {}
        # groups derived from located households are only those with enough of them: another numbered group of
        # such a village is no unknown name, its households are placed by village until it gets a polygon too
        derived = units["derived"].fillna(False).astype(bool) if "derived" in units.columns else None
        partial = (set(units.loc[(units["level"] == "group") & derived, "parent_code"].astype(str))
                   if derived is not None else set())
        for pos, m in zip(idx, matches, strict=True):
            if m.code is not None:
                g_out[pos] = m.code
            elif m.how == "unclear":
                problems.add_at(int(pos), "group_name", "组名无法识别",
                                f"“{plain(gnames.iloc[pos])}”看不出是哪一个组：组名写成一个编号（如 3组、第三村民小组）"
                                "或组的名称，不要写范围、小数、负号或括号备注")
            elif m.how == "none" or (m.how == "unknown" and v_out[pos] in partial
                                     and N.group_key(gnames.iloc[pos]).isdigit()):
                written = gnames.iloc[pos]
                label[pos] = labels[written] if written in labels else labels.setdefault(written, N.group_label(written))
            else:
                problems.add_at(int(pos), "group_name", *_name_problem("组名", m, gnames.iloc[pos]))
                ctx.name_issues.append({"乡镇": v_out[pos][:9], "村": v_out[pos],
                                        "登记名称": gnames.iloc[pos], "候选": N.suggestion(m.candidates)})
        kept = [x for x in label if x is not None]
        if kept:
            ctx.warnings.append(f"{len(kept)} 户所在的村还没有组的范围：按村定位，组名（如“{kept[0]}”）"
                                "保存在 group_name 列，供以后推算组界")
    return (pd.Series(v_out, index=data.index, dtype=object), pd.Series(g_out, index=data.index, dtype=object),
            pd.Series(label, index=data.index, dtype=object), by_name)


def _check_households(data: pd.DataFrame, geoms: np.ndarray, problems: _Problems, ctx: _Context) -> pd.DataFrame:
    out = pd.DataFrame(index=data.index)
    out["hh_id"] = _require(data, "hh_id", problems, "每户必须有户号；补填后再导入")
    out["head_name"] = _text(data, "head_name")
    updating = ctx.mode == "update"
    out["segment"] = _enum(data, "segment", SEGMENTS, problems, aliases=SEGMENT_ALIASES, required=not updating)
    if "id_no" in data:
        out["id_no"], bad = V.check_id_no(_text(data, "id_no"))
        problems.add(bad & ~ctx.lost_in("id_no", data.index), "id_no", "身份证号无效",
                     "应为 18 位（最后一位可为 X），出生日期和校验位正确（GB 11643）；Excel 中请把该列设为文本，"
                     "否则长数字会变成科学计数法")
    if "phone" in data:
        out["phone"], bad = V.check_phone(_text(data, "phone"))
        problems.add(bad & ~ctx.lost_in("phone", data.index), "phone", "联系电话格式错误",
                     "应为 11 位数字（手机号，或带区号的固定电话如 04767654321）")
    if "address" in data:
        out["address"] = _text(data, "address")
    if "grade" in data:
        out["grade"] = _text(data, "grade").map(lambda v: GRADE_ALIASES.get(v, v) if isinstance(v, str) else v)
    if "guarantee" in data:
        out["guarantee"] = _enum(data, "guarantee", [g for g in GUARANTEES if g], problems,
                                 aliases={"信用": None, "无": None, "免担保": None})
    if "job_level" in data:
        out["job_level"] = _enum(data, "job_level", JOB_LEVELS, problems,
                                 aliases={"科员": "一般工作人员", "办事员": "一般工作人员", "处级": "处级及以上"})
    if "product" in data:
        out["product"] = _enum(data, "product", PRODUCTS, problems)
    for col in _BOOL_COLUMNS:
        if col in data:
            out[col], bad = V.parse_bool(_text(data, col))
            problems.add(bad, col, f"{LABELS[col]}无法识别", "填写 是/否（也可 Y/N、1/0）")
    for col in _AMOUNT_COLUMNS:
        if col in data:
            out[col], bad, neg, absurd = V.parse_amount(_text(data, col))
            problems.add(bad, col, f"{LABELS[col]}不是数字", "填写以元为单位的数字，例如 50000 或 5万")
            problems.add(neg, col, f"{LABELS[col]}为负数", "金额不能为负")
            problems.add(absurd, col, f"{LABELS[col]}过大",
                         f"单户金额不应超过 {V.MAX_AMOUNT:,.0f} 元；检查单位（元）和多余的零")

    village = _codes(_text(data, "village_code"), "village_code", CODE_LENGTH["village"], problems,
                     ctx.lost_in("village_code", data.index))
    group = _codes(_text(data, "group_code"), "group_code", CODE_LENGTH["group"], problems,
                   ctx.lost_in("group_code", data.index))
    inferred = village.isna() & group.notna()
    village = village.where(~inferred, group.str.slice(0, CODE_LENGTH["village"]))
    mismatch = village.notna() & group.notna() & (group.str.slice(0, CODE_LENGTH["village"]) != village)
    problems.add(mismatch, "group_code", "组代码不属于该村", "组代码的前 12 位应等于村代码；检查两列是否对应")
    if ctx.admin() is None:
        if (village.notna() | group.notna()).any():
            ctx.warnings.append("工作区还没有行政区划，未检查村/组代码是否存在（先导入 admin_units）")
    else:
        villages = set(ctx.codes("village")["code"])
        groups = set(ctx.codes("group")["code"])
        problems.add(village.notna() & ~village.isin(list(villages)) & ~inferred, "village_code", "村代码不在行政区划中",
                     "工作区的行政区划里没有这个村；检查代码，或先导入包含它的 admin_units")
        problems.add(group.notna() & ~group.isin(list(groups)), "group_code", "组代码不在行政区划中",
                     "工作区的行政区划里没有这个组；检查代码，或先导入包含它的 admin_units")
    by_code = village.notna().to_numpy()
    village, group, label, by_name = _place_by_names(data, village, group, problems, ctx)
    if by_name.any():
        ctx.warnings.append(f"{int(by_name.sum())} 户按村名（和组名）对应到村代码（定位方式 name）")
    out["village_code"], out["group_code"] = village, group
    if label.notna().any():
        out["group_name"] = label

    has_point = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    named = _text(data, "village_name").notna().to_numpy()
    if not updating:  # an update keeps the household's location when the file gives none
        problems.add(~has_point & village.isna().to_numpy() & _text(data, "village_code").isna().to_numpy() & ~named,
                     "village_code", "无法定位：既没有坐标也没有村/组代码",
                     "填写经纬度，或填写村代码/组代码，或乡镇、村名和组名")
    placed = np.full(len(data), None, dtype=object)
    placed[by_name] = "name"
    placed[by_code] = "code"
    placed[has_point] = "point"
    out["placed_by"] = pd.Series(placed, index=data.index, dtype=object)
    outside = _points_outside_county(geoms, ctx)
    if outside is None:
        if has_point.any() and ctx.workspace is not None:
            ctx.warnings.append("工作区没有县界（admin_units 中 level=county），未检查点是否在县内")
    else:
        problems.add(outside, "geometry", "位置在县界以外",
                     f"点距县界超过 {OUTSIDE_TOLERANCE_M:.0f} 米；检查经纬度是否填反、是否为高德坐标（--coords gcj02）")
    _check_credit_rules(out, problems, ctx)
    return out


_CREDIT_INPUTS = ("segment", "product", "grade", "granted_amount", "guarantee", "job_level")


def _check_credit_rules(out: pd.DataFrame, problems: _Problems, ctx: _Context) -> None:
    """Granted rows that break the product rules (:func:`grids.credit_rules.check_grant`): rejected naming the
    rule, or with ``ctx.legacy`` (``--legacy``: historical grants) kept and flagged ``credit_legacy`` with the
    rules broken in ``credit_note``. An update that fills any credit cell (客户类型, 产品, 等级, 授信金额, 担保方式,
    职务级别) is checked with the household's stored values filling the cells the file leaves blank; one that
    fills none (a new phone number) is not judged, so a flagged historical grant does not block it."""
    from grids.credit_rules import RULE_NAMES, check_grant

    if "granted_amount" not in out.columns and not (ctx.mode == "update" and any(c in out for c in _CREDIT_INPUTS)):
        return
    frame = out.reindex(columns=list(_CREDIT_INPUTS))
    touched = frame.notna().any(axis=1).to_numpy()  # an update that leaves the credit cells blank is not judged
    if ctx.mode == "update" and ctx.workspace is not None:
        present = set(ctx.workspace.columns("households"))
        stored = ctx.workspace.read("households", columns=[c for c in ("hh_id", *_CREDIT_INPUTS) if c in present])
        stored = pd.DataFrame(stored).drop_duplicates("hh_id")
        stored.index = [normalize_id(h) if isinstance(h, str) else h for h in stored["hh_id"]]
        keys = out["hh_id"].map(lambda v: normalize_id(v) if isinstance(v, str) else v)
        for col in _CREDIT_INPUTS:
            if col in stored.columns and len(stored):
                frame[col] = frame[col].where(frame[col].notna(), keys.map(stored[col].to_dict()))
    amount = pd.to_numeric(frame["granted_amount"], errors="coerce").fillna(0.0)
    legacy = np.zeros(len(out), dtype=bool)
    notes = np.full(len(out), None, dtype=object)
    rejected = problems.rejected()
    for pos in np.flatnonzero((amount.to_numpy() > 0) & touched):
        if rejected[pos]:
            continue  # already refused for its cells (a bad amount, an unknown product…)
        rec = frame.iloc[pos]

        def text(col: str, _rec: pd.Series = rec) -> str:
            v = _rec[col]
            return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

        found = check_grant(entity_type=text("segment"), product=text("product"), grade=text("grade"),
                            amount=float(amount.iloc[pos]), guarantee=text("guarantee"), job_level=text("job_level"))
        if not found:
            continue
        if ctx.legacy:
            legacy[pos] = True
            notes[pos] = "；".join(f"{RULE_NAMES[v.rule]}：{v.problem}" for v in found)
            continue
        for v in found:
            problems.add_at(int(pos), v.column,
                            f"不符合产品规则（{RULE_NAMES[v.rule]}）：{v.problem}",
                            f"{v.fix}；确是规则实行前的历史授信，用 --legacy 导入（标记为历史授信）")
    if ctx.legacy:
        out["credit_legacy"] = pd.Series(np.where(legacy, True, None), index=out.index, dtype=object)
        out["credit_note"] = pd.Series(notes, index=out.index, dtype=object)
        if legacy.any():
            ctx.warnings.append(f"{int(legacy.sum())} 户的历史授信不符合现行产品规则，已按 --legacy 导入并标记"
                                "（credit_legacy；python -m grids check 工作区 --credit 列为警告）")


def _check_admin_units(data, geoms, problems, ctx) -> pd.DataFrame:
    out = pd.DataFrame(index=data.index)
    code = _require(data, "code", problems, "每个区划单元必须有统计用区划代码")
    lengths = tuple(CODE_LENGTH.values())
    lost = ctx.lost_in("code", data.index)
    bad = V.digits_of_length(code, lengths) & ~lost
    problems.add(bad, "code", "代码格式错误", "应为 6（旗县）、9（镇）、12（村）或 15（组）位数字")
    code = code.where(~bad & ~lost, None)
    by_len = {v: k for k, v in CODE_LENGTH.items()}
    level = _text(data, "level").map(lambda v: LEVEL_ALIASES.get(v.lower(), v) if isinstance(v, str) else v)
    problems.add(level.notna() & ~level.isin(CODE_LENGTH), "level", "级别无法识别",
                 "填写 county/town/village/group（或 旗县/镇/村/组）")
    implied = code.map(lambda c: by_len.get(len(c)) if isinstance(c, str) else None)
    clash = level.notna() & level.isin(CODE_LENGTH) & implied.notna() & (level != implied)
    problems.add(clash, "level", "级别与代码位数不符", "旗县 6 位、镇 9 位、村 12 位、组 15 位")
    out["code"], out["level"] = code, level.where(level.notna(), implied)
    out["name"] = _text(data, "name")
    parent_len = {"town": 6, "village": 9, "group": 12}
    expected_parent = pd.Series([c[: parent_len[lv]] if isinstance(c, str) and lv in parent_len else None
                                 for c, lv in zip(code, out["level"], strict=True)], index=data.index, dtype=object)
    parent = _text(data, "parent_code").where(~ctx.lost_in("parent_code", data.index), None)
    problems.add(parent.notna() & expected_parent.notna() & (parent != expected_parent), "parent_code",
                 "上级代码与代码不符", "上级代码应是代码的前 6/9/12 位")
    out["parent_code"] = parent.where(parent.notna(), expected_parent)
    known = set(code.dropna())
    orphan = out["parent_code"].notna() & ~out["parent_code"].isin(list(known)) & out["level"].isin(parent_len)
    problems.add(orphan, "parent_code", "上级单元不在文件中", "同一文件里要包含上级单元（旗县、镇、村）")
    return out


def _check_branches(data, geoms, problems, ctx) -> pd.DataFrame:
    out = pd.DataFrame(index=data.index)
    out["branch_id"] = _require(data, "branch_id", problems, "每个网点必须有编号")
    out["name"] = _require(data, "name", problems, "每个网点必须有名称")
    if "kind" in data:
        out["kind"] = _enum(data, "kind", BRANCH_KINDS, problems)
    for col in ("town_code", "address"):
        if col in data:
            out[col] = _text(data, col)
    outside = _points_outside_county(geoms, ctx)
    if outside is not None:
        problems.add(outside, "geometry", "位置在县界以外",
                     f"网点距县界超过 {OUTSIDE_TOLERANCE_M:.0f} 米；检查坐标（高德坐标请加 --coords gcj02）")
    return out


def _check_reference(out: pd.DataFrame, layer: str, key: str, problems: _Problems, ctx: _Context, *,
                     message: str, fix: str, unchecked: str | None = None) -> None:
    """Rows whose ``out[key]`` names no ``key`` of the workspace's ``layer`` are problems; when that layer is
    still empty nothing can be checked and ``unchecked`` (if given) becomes a warning."""
    known = ctx.keys(layer, key)
    if known:
        problems.add(out[key].notna() & ~ctx.lost_in(key, out.index) & ~out[key].isin(list(known)), key, message, fix)
    elif unchecked and ctx.workspace is not None:
        ctx.warnings.append(unchecked)


def _check_staff(data, geoms, problems, ctx) -> pd.DataFrame:
    out = pd.DataFrame(index=data.index)
    out["staff_id"] = _require(data, "staff_id", problems, "每名员工必须有工号")
    out["name"] = _require(data, "name", problems, "每名员工必须有姓名", label="姓名")
    out["branch_id"] = _require(data, "branch_id", problems, "每名员工必须属于一个网点")
    if "role" in data:
        out["role"] = _enum(data, "role", STAFF_ROLES, problems)
    if "phone" in data:
        out["phone"], bad = V.check_phone(_text(data, "phone"))
        problems.add(bad & ~ctx.lost_in("phone", data.index), "phone", "联系电话格式错误", "应为 11 位数字")
    _check_reference(out, "branches", "branch_id", problems, ctx, message="网点不存在",
                     fix="工作区里没有这个网点编号；检查编号，或先导入网点（branches）",
                     unchecked="工作区还没有网点，未检查员工所属网点是否存在（先导入 branches）")
    return out


def _check_visits(data, geoms, problems, ctx) -> pd.DataFrame:
    out = pd.DataFrame(index=data.index)
    out["hh_id"] = _require(data, "hh_id", problems, "每条走访记录必须有户号")
    visited, bad, future = V.parse_date(_require(data, "visited_on", problems, "填写走访日期，例如 2019-03-05"))
    problems.add(bad, "visited_on", "走访日期无法识别", "写成 2019-03-05 这样的日期")
    problems.add(future, "visited_on", "走访日期在未来", "检查年份和月份")
    out["visited_on"] = visited
    if "staff_id" in data:
        out["staff_id"] = _text(data, "staff_id")
        _check_reference(out, "staff", "staff_id", problems, ctx, message="员工不存在",
                         fix="工作区里没有这个工号；检查工号，或先导入员工（staff）")
    if "outcome" in data:
        out["outcome"] = _enum(data, "outcome", VISIT_OUTCOMES, problems)
    if "note" in data:
        out["note"] = _text(data, "note")
    _check_reference(out, "households", "hh_id", problems, ctx, message="户号不在工作区中",
                     fix="先导入这户的档案（households），或检查户号",
                     unchecked="工作区还没有农户，未检查走访记录的户号（先导入 households）")
    _check_visit_village(data, out, problems, ctx)
    return out


def _check_visit_village(data: pd.DataFrame, out: pd.DataFrame, problems: _Problems, ctx: _Context) -> None:
    """A visit register that names the village (and group) of each 户号: the names must be known, and name the
    household's own village — a mismatch is a wrong 户号 more often than a moved household."""
    if "village_name" not in data and "group_name" not in data:
        return
    none = pd.Series(None, index=data.index, dtype=object)
    village, group, _, by_name = _place_by_names(data, none, none, problems, ctx)
    if ctx.workspace is None or not ctx.workspace.count("households") or not by_name.any():
        return
    hh = ctx.workspace.read("households", columns=["hh_id", "village_code", "group_code"])
    own_village = dict(zip(hh["hh_id"].map(normalize_id), hh["village_code"], strict=True))
    own_group = dict(zip(hh["hh_id"].map(normalize_id), hh["group_code"], strict=True))
    for pos in np.flatnonzero(by_name):
        hid = out["hh_id"].iloc[pos]
        if hid is None or hid not in own_village:
            continue
        have, said = own_village[hid], village.iloc[pos]
        if isinstance(have, str) and have != said:
            problems.add_at(int(pos), "village_name", "户号与村名不符",
                            f"户号 {plain(hid, limit=30)} 在工作区里属于村 {have}，登记的村名对应 {said}；检查户号")
        elif isinstance(own_group[hid], str) and isinstance(group.iloc[pos], str) and own_group[hid] != group.iloc[pos]:
            problems.add_at(int(pos), "group_name", "户号与组名不符",
                            f"户号 {plain(hid, limit=30)} 在工作区里属于组 {own_group[hid]}，登记的组名对应 "
                            f"{group.iloc[pos]}；检查户号")


def _check_loans(data, geoms, problems, ctx) -> pd.DataFrame:
    return loans.check_rows(data, problems, ctx)


def _check_plain(data, geoms, problems, ctx) -> pd.DataFrame:
    return pd.DataFrame({c: _text(data, c) for c in data.columns}, index=data.index)


_CHECKS = {
    "households": _check_households,
    "admin_units": _check_admin_units,
    "branches": _check_branches,
    "staff": _check_staff,
    "visits": _check_visits,
    "streets": _check_plain,
    "urban_areas": _check_plain,
    "loan_totals": _check_loans,
}


# --------------------------------------------------------------------------------------------------------
# importing
# --------------------------------------------------------------------------------------------------------


_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def source_digests(file: str | os.PathLike) -> dict[str, str]:
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
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
        out[f.name] = digest.hexdigest()
    return out


def _workspace_failure(exc: BaseException, workspace: Any) -> WorkspaceError:
    """A one-line Chinese error for a workspace that cannot be read or written (nothing was changed)."""
    text = str(exc).lower()
    where = plain(getattr(workspace, "path", None) or workspace, limit=200)
    if "://" in where or "@" in where:  # a database URL may carry a password: never shown
        where = "工作区数据库"
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        why = f"工作区文件是只读的，无法写入（{where}）。修正方法：检查文件和所在文件夹的写权限，或把工作区复制到可写的位置"
    elif "full" in text or getattr(exc, "errno", None) == 28:
        why = f"磁盘已满，无法写入工作区（{where}）。修正方法：清理磁盘空间后重新导入；工作区未改动"
    elif "malformed" in text or "not a database" in text or "corrupt" in text:
        why = (f"工作区文件已损坏（{where}）。修正方法：用 python -m grids check 检查，"
               "从备份恢复工作区后重新导入")
    else:
        why = f"无法读写工作区（{where}）：{plain(exc, limit=200)}。修正方法：检查文件是否存在、可写，磁盘是否有空间"
    return WorkspaceError(why + "。未导入任何数据")


def _strip_control_characters(report: ImportReport) -> int:
    """Remove control characters (other than tab and line breaks) from the text cells of
    ``report.accepted`` in place; returns how many cells changed."""
    frame = report.accepted
    changed = 0
    for col in frame.columns:
        if col == getattr(frame, "_geometry_column_name", None) or frame[col].dtype != object:
            continue
        diff = sum(1 for v in frame[col] if isinstance(v, str) and strip_controls(v) != v)
        if diff:
            frame[col] = frame[col].map(strip_controls)
            changed += diff
    return changed


def import_file(workspace: Workspace | str | os.PathLike, layer: str, file: str | os.PathLike, *,
                coords: str | None = None, encoding: str | None = None,
                mapping: Mapping[str, str] | None = None, strict: bool = False,
                rejects_path: str | os.PathLike | None = None, actor: str = "cli",
                mode: str | None = None, layer_name: str | None = None,
                account: Account | None = None, names: str | os.PathLike | None = None,
                town: str | None = None, legacy: bool = False) -> ImportReport:
    """Read, validate and import ``file`` into ``layer`` of ``workspace`` in one transaction.

    Parameters
    ----------
    workspace : Workspace or path
        The workspace to write to.
    layer : str
        One of :data:`IMPORTABLE_LAYERS`.
    file : path
        See :func:`read_table` for formats.
    coords, encoding, mapping :
        As in :func:`read_table`. When ``coords`` is not declared and the points look like GCJ-02
        (:func:`detect_gcj02`), nothing is imported: a :class:`ValidationError` says so and how to re-import.
    strict : bool
        Import nothing when any row is rejected, or when the declared datum looks wrong.
    rejects_path : path, optional
        Where to write the rejected rows (CSV, UTF-8 with BOM); written only when there are rejects.
    actor : str
        Who imports, for the audit trail (action ``导入``); ignored when ``account`` is given.
    account : Account, optional
        The signed-in account importing: it must hold the ``import`` permission, and its user name is
        recorded in the audit.
    mode : {'append', 'replace', 'update'}, optional
        Default append for households and visits, replace otherwise. Replace is all-or-nothing: with any
        rejected row (or none acceptable) nothing is written, so a layer is never replaced by part of a file.
        ``update`` (households): changes the existing households named by 户号, only the cells the file fills
        (a blank cell keeps the stored value); each changed household's ``version`` goes up by one and the
        audit lists the changed columns before and after (ID numbers and phones only as “changed”).
    layer_name : str, optional
        Layer or worksheet inside ``file``; for a GeoPackage holding a layer named like ``layer``, that one.
    names : path, optional
        A name mapping file (乡镇, 登记名称, 行政区划代码 or 标准名称; :func:`grids.names.read_name_mapping`).
        Its names are confirmed first, in their own audited transaction (action ``确认名称``, layer
        ``name_aliases``), and used by this and every later import. A mapping with any unresolvable row is
        refused as a whole (:class:`ValidationError`), before anything is written.
    town : str, optional
        Town (name or 9-digit code) of rows keyed by village NAME that have no 乡镇 column or cell.
    legacy : bool
        Households: keep historical grants that break the product rules, flagged (see :func:`validate`).

    Returns
    -------
    ImportReport
        With ``written``/``imported`` set.

    The audit row (action ``导入``) records the file name, the SHA-256 of the file (and of a Shapefile's
    sidecars), layer, mode, the declared coordinates and rows read, imported, repaired and rejected.

    Raises
    ------
    ValidationError
        The whole file is unusable; nothing was changed.
    WorkspaceError
        The workspace cannot be opened, read or written (read-only, disk full, damaged); nothing was changed.
    PermissionDeniedError
        ``account`` may not import.
    """
    if account is not None:
        account.require("import")
        actor = account.username
    if layer != "villages":
        _layer_schema(layer)
    path = Path(file)
    try:
        ws = workspace if hasattr(workspace, "transaction") else open_workspace(workspace)
        if layer == "villages":
            from grids.villages import import_villages

            return import_villages(ws, path, coords=coords, encoding=encoding, mapping=mapping, strict=strict,
                                   rejects_path=rejects_path, actor=actor, mode=mode, layer_name=layer_name)
        aliases = None
        if names is not None:
            units = _Context(workspace=ws, mode="append", warnings=[]).units()
            if units is None:
                raise ValidationError("工作区还没有村，名称对照表无从对应", file=Path(names).name,
                                      fix="先导入村（villages 或 admin_units），再导入名称对照表")
            aliases = N.read_name_mapping(names, candidates=units)
            counts = N.save_aliases(ws, aliases, actor=actor, source=Path(names).name)
        report = _import(ws, layer, path, coords=coords, encoding=encoding, mapping=mapping, strict=strict,
                         rejects_path=rejects_path, actor=actor, mode=mode, layer_name=layer_name, town=town,
                         aliases=aliases, legacy=legacy)
        if names is not None:
            report.warnings.insert(0, f"名称对照表 {plain(Path(names).name, limit=120)}：{len(aliases)} 个名称已确认"
                                      f"（新增 {counts['added']}，更改 {counts['changed']}，原已确认 {counts['unchanged']}），"
                                      "以后的导入自动采用")
        return report
    except sqlite3.Error as exc:
        raise _workspace_failure(exc, workspace) from exc


def check_file(workspace: Workspace, layer: str, file: str | os.PathLike, *, coords: str | None = None,
               mode: str | None = None, names: str | os.PathLike | None = None,
               town: str | None = None, legacy: bool = False) -> ImportReport:
    """Validate ``file`` for ``layer`` as :func:`import_file` would, writing nothing (the app's “只校验”).

    A name mapping (``names``) is applied in memory only: nothing is confirmed until the import.

    Raises
    ------
    ValidationError
        The file (or the name mapping) is unusable as a whole.
    """
    path = Path(file)
    aliases = None
    if names is not None:
        units = _Context(workspace=workspace, mode="append", warnings=[]).units()
        if units is None:
            raise ValidationError("工作区还没有村，名称对照表无从对应", file=Path(names).name,
                                  fix="先导入村（villages 或 admin_units），再导入名称对照表")
        aliases = N.read_name_mapping(names, candidates=units)
    table = read_table(path, coords=coords)
    return validate(table, target_layer=layer, workspace=workspace, source_name=path.name, mode=mode, town=town,
                    aliases=aliases, legacy=legacy)


def _import(ws: Workspace, layer: str, path: Path, *, coords: str | None, encoding: str | None,
            mapping: Mapping[str, str] | None, strict: bool, rejects_path: str | os.PathLike | None, actor: str,
            mode: str | None, layer_name: str | None, town: str | None = None,
            aliases: pd.DataFrame | None = None, legacy: bool = False) -> ImportReport:
    if layer_name is None and path.suffix.lower() == ".gpkg" and path.exists():
        with contextlib.suppress(Exception):
            names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
            if len(names) > 1 and layer in names:
                layer_name = layer
    try:
        table = read_table(path, layer=layer_name, encoding=encoding, coords=coords, mapping=mapping)
        digests = source_digests(path)
    except OSError as exc:
        raise ValidationError(f"无法读取文件：{plain(exc.strerror or exc, limit=120)}", file=path.name,
                              fix="检查文件是否存在、是否有读取权限、是否仍在被其他程序写入") from exc
    report = validate(table, target_layer=layer, workspace=ws, source_name=path.name, mode=mode, town=town,
                      aliases=aliases, legacy=legacy)
    report.strict = strict
    if report.datum is not None and report.datum.suspect and (strict or not report.coords_declared):
        if report.datum.declared == "gcj02":
            fix = "确认坐标的来源：GPS 或天地图坐标用 --coords wgs84 重新导入；确是高德/腾讯坐标才用 --coords gcj02"
        else:
            fix = ("用 --coords gcj02 重新导入（坐标会纠偏到 CGCS2000）；如果确认是 GPS/天地图坐标，"
                   "用 --coords wgs84 明确声明后导入")
        raise ValidationError(f"{report.datum.message()}。未导入任何数据", file=path.name, fix=fix)
    if rejects_path is not None and len(report.rejects):
        try:
            report.write_rejects(rejects_path)
        except OSError as exc:
            raise ValidationError(f"无法写出拒绝行文件 {Path(rejects_path).name}：{plain(exc.strerror or exc)}",
                                  file=path.name, fix="换一个可写的位置（--rejects 路径），或清理磁盘空间") from exc
    if report.mode == "replace" and report.rejected and not strict:
        # replacing a layer with only the good rows would silently lose the rows it replaces
        report.strict = True
        report.warnings.append("替换模式下有被拒绝的行：为免丢失现有数据，未导入任何数据。"
                               "修正拒收文件中的行后重新导入（或用 --mode append 追加）")
    if report.strict and report.rejected:
        return report
    if not len(report.accepted):
        report.warnings.append("没有可导入的行，工作区未改动")
        return report
    cleaned = _strip_control_characters(report)
    if cleaned:
        report.warnings.append(f"{cleaned} 个单元格含控制字符（如 \\x0b、ESC），已删除这些字符后导入")
    if report.mode == "update":
        try:
            _update_households(ws, report, actor=actor, note={
                "file": plain(path.name, limit=255), "sha256": digests.get(path.name),
                "files": {plain(k, limit=255): v for k, v in digests.items()},
                "coords": coords if coords is not None else "未声明（按 WGS84 读取）", "strict": bool(strict),
                "read": report.read, "rejected": report.rejected})
        except OSError as exc:
            raise _workspace_failure(exc, ws) from exc
        report.written = True
        return report
    try:
        if layer == "households" and "balance" in report.accepted:  # 用信 is a balance above 0, as the events say
            owing = pd.to_numeric(report.accepted["balance"], errors="coerce").fillna(0) > 0.005
            report.accepted["using"] = owing.to_numpy()
        with ws.transaction(actor=actor, action="导入") as tx:
            replaced = None
            if report.mode == "replace":
                tx.replace(layer, report.accepted)
            elif layer in KEYED_APPEND:
                replaced = loans.write_rows(tx, report.accepted)
            else:
                tx.append(layer, report.accepted)
            opened = credit_events.append_opening_events(tx, report.accepted) if layer == "households" else 0
            tx.note(layer, {"file": plain(path.name, limit=255), "sha256": digests.get(path.name),
                            "files": {plain(k, limit=255): v for k, v in digests.items()},
                            "mode": report.mode,
                            "coords": coords if coords is not None else "未声明（按 WGS84 读取）",
                            "strict": bool(strict), "read": report.read, "imported": len(report.accepted),
                            "repaired": report.repaired, "rejected": report.rejected,
                            **({"replaced": replaced} if replaced is not None else {}),
                            **({"opening_events": opened} if opened else {})})
    except OSError as exc:
        raise _workspace_failure(exc, ws) from exc
    if replaced:
        report.warnings.append(f"其中 {replaced} 行替换了工作区里同月份、同网点、同产品的原有余额")
    report.imported = len(report.accepted)
    report.written = True
    return report


_PERSONAL = ("id_no", "phone", "head_name")
"""Columns whose values an update's audit does not copy (it says “已更改” instead)."""
AUDIT_CHANGED_MAX = 500
"""An update's audit lists at most this many households with their before/after values (and counts all)."""


def _audit_value(col: str, value: Any) -> Any:
    if value is None or (not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value)):
        return None
    if col in _PERSONAL:
        return "（已更改）"
    if isinstance(value, shapely.Geometry):
        return f"{value.x:.6f},{value.y:.6f}" if value.geom_type == "Point" else value.geom_type
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def _missing(v: Any) -> bool:
    return v is None or (not isinstance(v, shapely.Geometry) and bool(pd.isna(v)))


def _same(a: Any, b: Any) -> bool:
    a_na = a is None or (not isinstance(a, shapely.Geometry) and pd.isna(a))
    b_na = b is None or (not isinstance(b, shapely.Geometry) and pd.isna(b))
    if a_na or b_na:
        return a_na and b_na
    if isinstance(a, shapely.Geometry) or isinstance(b, shapely.Geometry):
        return isinstance(a, shapely.Geometry) and isinstance(b, shapely.Geometry) and a.equals_exact(b, 1e-9)
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return bool(a) == bool(b)
    if isinstance(a, (int, float, np.integer, np.floating)) and isinstance(b, (int, float, np.integer, np.floating)):
        return float(a) == float(b)
    return str(a) == str(b)


def _update_households(ws: Workspace, report: ImportReport, *, actor: str, note: Mapping[str, Any]) -> None:
    """Write an update-mode import: the accepted rows' filled cells over the stored households, one transaction.

    Blank cells keep the stored value; a new village without a group clears the stored group; ``placed_by``
    stays ``point`` while the household has a point. Only households that change are rewritten, each with
    ``version`` + 1; the audit (action ``导入``, op ``update``) counts the changes per column and lists up to
    :data:`AUDIT_CHANGED_MAX` households with the changed values before and after.

    Raises
    ------
    StaleEditError
        A household of the file changed between reading and writing (another user saved it): nothing is
        written; import the file again.
    """
    from grids.errors import StaleEditError

    new = report.accepted
    stored = ws.read("households")
    geom_col = stored.geometry.name
    stored = stored.set_index(stored["hh_id"].map(normalize_id), drop=False)
    ids = [normalize_id(h) for h in new["hh_id"]]
    n = len(ids)
    old = stored.loc[ids]
    cols = [c for c in new.columns if c not in ("hh_id", new.geometry.name, "placed_by")]
    values = {c: (old[c].tolist() if c in old.columns else [None] * n)
              for c in dict.fromkeys([*cols, "group_code", "group_name", "placed_by"])}
    changes: list[dict[str, tuple[Any, Any]]] = [{} for _ in range(n)]
    for c in cols:
        now, given = values[c], new[c].tolist()
        for i, v in enumerate(given):
            if _missing(v) or _same(now[i], v):
                continue
            changes[i][c] = (now[i], v)
            now[i] = v
    geoms = old.geometry.tolist()
    new_geoms = new.geometry.tolist()
    new_placed = new["placed_by"].tolist() if "placed_by" in new else [None] * n
    for i in range(n):
        change = changes[i]
        if "village_code" in change and "group_code" not in change:
            g = values["group_code"][i]
            if isinstance(g, str) and not g.startswith(str(change["village_code"][1])):
                change["group_code"] = (g, None)
                values["group_code"][i] = None
        if "village_code" in change and "group_name" not in change and not _missing(values["group_name"][i]):
            change["group_name"] = (values["group_name"][i], None)  # the old village's group label is stale
            values["group_name"][i] = None
        g_new = new_geoms[i]
        if g_new is not None and not g_new.is_empty and not _same(geoms[i], g_new):
            change["geometry"] = (geoms[i], g_new)
            geoms[i] = g_new
        has_point = geoms[i] is not None and not geoms[i].is_empty
        placed = "point" if has_point else (new_placed[i] if "village_code" in change else None)
        if placed is not None and not _same(values["placed_by"][i], placed):
            change["placed_by"] = (values["placed_by"][i], placed)
            values["placed_by"][i] = placed
    changed_rows = [i for i in range(n) if changes[i]]
    per_column: dict[str, int] = {}
    listed = []
    for i in changed_rows:
        for c in changes[i]:
            per_column[c] = per_column.get(c, 0) + 1
        if len(listed) < AUDIT_CHANGED_MAX:
            listed.append({"hh_id": ids[i], "before": {c: _audit_value(c, b) for c, (b, _) in changes[i].items()},
                           "after": {c: _audit_value(c, a) for c, (_, a) in changes[i].items()}})
    version = (pd.to_numeric(old["version"], errors="coerce").fillna(0).astype(int).to_numpy()
               if "version" in old else np.zeros(n, dtype=int))
    report.imported = n
    unchanged = report.unchanged = n - len(changed_rows)
    if not changed_rows:
        return
    rows = np.asarray(changed_rows)
    out = pd.DataFrame(old.drop(columns=geom_col).iloc[rows]).reset_index(drop=True)
    for c, vals in values.items():
        out[c] = pd.Series([vals[i] for i in rows], dtype=object)
    out["version"] = version[rows] + 1
    out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries([geoms[i] for i in rows], crs=STORAGE_EPSG), crs=STORAGE_EPSG)
    seen = {ids[i]: int(version[i]) for i in rows}
    with ws.transaction(actor=actor, action="导入") as tx:
        changed_ids = list(seen)
        for k in range(0, len(changed_ids), 500):
            chunk = changed_ids[k:k + 500]
            where = f"hh_id IN ({', '.join('?' for _ in chunk)})"
            now = tx.read("households", where=where, params=chunk)
            stale = [h for h, v in zip(now["hh_id"], pd.to_numeric(now["version"], errors="coerce").fillna(0)
                                       .astype(int), strict=True) if int(seen.get(normalize_id(h), -1)) != int(v)]
            if stale or len(now) != len(chunk):
                raise StaleEditError(ids=stale or chunk)
            tx.execute(f"DELETE FROM households WHERE {where}", chunk)
        tx.append("households", out)
        tx.note("households", {**note, "op": "update", "mode": "update", "imported": n, "changed_rows": len(changed_rows),
                               "unchanged": unchanged, "columns": per_column, "changed": listed,
                               "listed": len(listed)})
