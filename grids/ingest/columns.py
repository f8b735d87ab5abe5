"""Recognising a file's columns: header aliases per layer, labels for messages, required columns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from grids import loans
from grids.ingest.schema import IMPORTABLE_LAYERS, layer_schema
from grids.model import LAYERS

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


def norm_header(header: Any) -> str:
    """A header as compared with the aliases: BOM, spaces, a trailing unit such as （元） and a leading * dropped, lower case."""
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
    layer_schema(target_layer)
    columns = list(columns)
    explicit = {norm_header(k): v for k, v in (mapping or {}).items()}
    lookup: dict[str, tuple[str, int]] = {}
    table = dict(ALIASES.get(target_layer, {}))
    table["lon"] = LON_ALIASES
    table["lat"] = LAT_ALIASES
    for canonical, aliases in table.items():
        lookup.setdefault(canonical.lower(), (canonical, -1))
        for rank, alias in enumerate(aliases):
            lookup.setdefault(norm_header(alias), (canonical, rank))
    for col in LAYERS[target_layer].columns:
        lookup.setdefault(col.lower(), (col, -1))
    best: dict[str, tuple[int, str]] = {}
    for col in columns:
        norm = norm_header(col)
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


def rename_map(columns: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """``{file column: new name}`` for the columns of ``columns`` that ``mapping`` names (headers compared normalised)."""
    explicit = {norm_header(k): v for k, v in mapping.items()}
    return {c: explicit[norm_header(c)] for c in columns if norm_header(c) in explicit}


_KNOWN: set[str] = set()


def known_headers() -> set[str]:
    """Every recognised header (all layers' aliases and column names), normalised."""
    if not _KNOWN:
        for table in ALIASES.values():
            for canonical, aliases in table.items():
                _KNOWN.update(norm_header(a) for a in (canonical, *aliases))
        for name in (n for n in IMPORTABLE_LAYERS if n in LAYERS):
            _KNOWN.update(c.lower() for c in LAYERS[name].columns)
        from grids.villages import SEAT_ALIASES

        _KNOWN.update(norm_header(a) for aliases in SEAT_ALIASES.values() for a in aliases)
        _KNOWN.update(norm_header(a) for a in (*LON_ALIASES, *LAT_ALIASES))
    return _KNOWN


LONG_DIGITS = re.compile(r"\d{7,}[\dXx]?")


def safe_names(columns: Iterable[Any]) -> str:
    """Column names for a message, with long digit runs (ID numbers, phones) hidden."""
    return "、".join(LONG_DIGITS.sub(lambda m: "*" * len(m.group(0)), str(c)) for c in columns)
