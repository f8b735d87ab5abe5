"""The credit product catalogue (福农卡, 福商卡, 福薪卡, 福民卡), kept as data in ``grids/data/products.json``.

The catalogue holds the 联社's defaults: the entity types (客户类型) each product serves, the grades with their
bands (yuan), the grades open only to some entity types (黄金客户 and 钻石客户: 家庭农牧场 and 农牧业专业合作社), the
福薪卡 bands by 职务级别 and its guarantee rule, the rates (a base per product plus adjustments) and the default
approval authority of a branch. Branch overrides live in the workspace (:mod:`grids.credit_rules`); the checks
are in :func:`grids.credit_rules.check_grant`.

Names of earlier versions are mapped on read (:func:`entity_type`, :func:`grade_name`): 农牧户 → 普通农牧户,
金卡 → 黄金客户, 钻石卡 → 钻石客户. The generic guarantees of earlier versions (保证人, 房产抵押) are not mapped: they
do not say whether the guarantor is a 公职人员 or the property a 商厅楼房, so a 福薪卡 above 20万 with one of them is
listed by ``check --credit`` until the guarantee is confirmed (or the grant flagged as historical).

Examples
--------
>>> band("福薪卡", "标准")
(100000.0, 700000.0)
>>> product_for_segment("小微企业"), product_for_segment("农牧户")
('福商卡', '福农卡')
>>> grades("福农卡", entity_type="普通农牧户")
['一般', '良好', '较优', '优秀']
>>> job_band("福薪卡", "科级")
(200000.0, 400000.0)
>>> rate("福薪卡", payroll=True)
5.0
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from grids.errors import ValidationError

__all__ = [
    "DEPOSIT_TIERS",
    "ENTITY_TYPES",
    "GUARANTEE_OPTIONS",
    "JOB_LEVELS",
    "approval_authority",
    "band",
    "entity_type",
    "grade_entity_types",
    "grade_name",
    "grades",
    "guarantee_above",
    "job_band",
    "job_levels",
    "load_catalogue",
    "product_for_segment",
    "qualifying_guarantees",
    "rate",
]


@cache
def _data() -> dict[str, Any]:
    text = resources.files("grids").joinpath("data/products.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def load_catalogue() -> dict[str, dict[str, Any]]:
    """Product name → its entry (``entity_types``, ``grades`` with ``min``/``max``, ``job_levels``,
    ``guarantee_above``, ``guarantees``, ``rate``)."""
    return {p["name"]: p for p in _data()["products"]}


ENTITY_TYPES: tuple[str, ...] = tuple(_data()["entity_types"])
"""The entity types (客户类型) in the catalogue's order."""
JOB_LEVELS: tuple[str, ...] = tuple(_data()["job_levels"])
"""职务级别 of 公职人员 (福薪卡 bands follow them)."""
DEPOSIT_TIERS: tuple[str, ...] = tuple(_data()["deposit_tiers"])
"""存款贡献档次 (rate adjustments)."""
GUARANTEE_OPTIONS: tuple[str, ...] = ("", *_data()["guarantees"])
"""Guarantee values a record may carry (``""`` = 信用，无担保)."""


def entity_type(value: str) -> str:
    """The entity type under its current name (``农牧户`` of earlier versions → ``普通农牧户``); others unchanged."""
    name: str = _data()["aliases"]["entity_types"].get(value, value)
    return name


def grade_name(value: str) -> str:
    """The grade under its current name (``金卡`` → ``黄金客户``, ``钻石卡`` → ``钻石客户``); others unchanged."""
    name: str = _data()["aliases"]["grades"].get(value, value)
    return name


def grades(product: str, *, entity_type: str | None = None) -> list[str]:
    """Grade names of ``product`` in ascending order of limit (only those open to ``entity_type`` when given)."""
    out = []
    for g in _product(product)["grades"]:
        if entity_type is None or not g.get("entity_types") or _canon(entity_type) in g["entity_types"]:
            out.append(g["grade"])
    return out


def grade_entity_types(product: str, grade: str) -> list[str]:
    """The entity types a grade is reserved for (empty: open to all the product's entity types)."""
    return list(_grade(product, grade).get("entity_types") or [])


def band(product: str, grade: str) -> tuple[float, float]:
    """``(min, max)`` credit limit in yuan for ``product`` at ``grade`` (the 联社's default)."""
    g = _grade(product, grade)
    return float(g["min"]), float(g["max"])


def job_levels(product: str) -> list[str]:
    """The 职务级别 whose bands ``product`` follows (empty when it has none)."""
    return [j["level"] for j in _product(product).get("job_levels") or []]


def job_band(product: str, level: str) -> tuple[float, float]:
    """``(min, max)`` of ``product`` for a 职务级别 (福薪卡)."""
    for j in _product(product).get("job_levels") or []:
        if j["level"] == level:
            return float(j["min"]), float(j["max"])
    known = job_levels(product)
    raise ValidationError(f"{product} 没有职务级别 “{level}”",
                          fix=f"可用职务级别：{'、'.join(known)}" if known else f"{product} 的额度不按职务级别核定")


def guarantee_above(product: str) -> float | None:
    """Limit above which ``product`` needs a qualifying guarantee (:func:`qualifying_guarantees`), or ``None``."""
    value = _product(product)["guarantee_above"]
    return None if value is None else float(value)


def qualifying_guarantees(product: str) -> list[str]:
    """The guarantees that satisfy ``product``'s guarantee rule (福薪卡: 公职人员保证、商厅楼房抵押)."""
    return list(_product(product).get("guarantees") or [])


def approval_authority() -> float:
    """A branch's default approval authority (yuan): larger grants go to the 联社's credit committee."""
    return float(_data()["approval_authority"])


def rate(product: str, *, payroll: bool = False, deposit_tier: str = "无", e_banking: bool = False,
         base: float | None = None) -> float:
    """Annual rate (%) of ``product``: its base (or ``base``, a branch's) plus the adjustments that apply.

    Parameters
    ----------
    product : str
    payroll : bool
        Salary paid through the 农信社 (代发; 福薪卡).
    deposit_tier : str
        One of :data:`DEPOSIT_TIERS`.
    e_banking : bool
        Uses the 农信社's e-banking (手机银行等).
    base : float, optional
        The base rate to start from (default the catalogue's).

    Examples
    --------
    >>> rate("福商卡", deposit_tier="20万以上", e_banking=True)
    5.9
    """
    r = _product(product)["rate"]
    if deposit_tier not in r["deposit"]:
        raise ValidationError(f"未知的存款档次 “{deposit_tier}”", fix=f"可用：{'、'.join(r['deposit'])}")
    value: float = (float(r["base"]) if base is None else float(base)) + r["deposit"][deposit_tier]
    value += r["payroll"] if payroll else 0.0
    value += r["e_banking"] if e_banking else 0.0
    return round(value, 2)


def product_for_segment(segment: str) -> str:
    """The product an entity type (客户类型) is offered; names of earlier versions are accepted."""
    seg = _canon(segment)
    for name, p in load_catalogue().items():
        if seg in p["entity_types"]:
            return name
    raise ValidationError(f"未知的客户类型 “{segment}”", fix=f"客户类型应为：{'、'.join(ENTITY_TYPES)}")


def _canon(value: str) -> str:
    return entity_type(value)


def _grade(product: str, grade: str) -> dict[str, Any]:
    name = grade_name(grade)
    g: dict[str, Any]
    for g in _product(product)["grades"]:
        if g["grade"] == name:
            return g
    raise ValidationError(f"产品 {product} 没有等级 “{grade}”", fix=f"可用等级：{'、'.join(grades(product))}")


def _product(product: str) -> dict[str, Any]:
    cat = load_catalogue()
    if product not in cat:
        raise ValidationError(f"未知的产品 “{product}”", fix=f"可用产品：{'、'.join(cat)}")
    return cat[product]
