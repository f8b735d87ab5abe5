"""The credit product catalogue (福农卡, 福商卡, 福薪卡, 福民卡), kept as data in ``grids/data/products.json``.

Examples
--------
>>> band("福薪卡", "标准")
(100000.0, 700000.0)
>>> product_for_segment("小微企业")
'福商卡'
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from grids.errors import ValidationError


@cache
def load_catalogue() -> dict[str, dict[str, Any]]:
    """Product name → its entry (``segments``, ``grades`` with ``min``/``max``, ``guarantee_above``…)."""
    text = resources.files("grids").joinpath("data/products.json").read_text(encoding="utf-8")
    return {p["name"]: p for p in json.loads(text)["products"]}


def grades(product: str) -> list[str]:
    """Grade names of ``product`` in ascending order of limit."""
    return [g["grade"] for g in _product(product)["grades"]]


def band(product: str, grade: str) -> tuple[float, float]:
    """``(min, max)`` credit limit in yuan for ``product`` at ``grade``."""
    for g in _product(product)["grades"]:
        if g["grade"] == grade:
            return float(g["min"]), float(g["max"])
    raise ValidationError(f"产品 {product} 没有等级 “{grade}”", fix=f"可用等级：{'、'.join(grades(product))}")


def guarantee_above(product: str) -> float | None:
    """Limit above which ``product`` needs a guarantee (保证人/房产抵押), or ``None``."""
    value = _product(product)["guarantee_above"]
    return None if value is None else float(value)


def product_for_segment(segment: str) -> str:
    """The product a customer segment is offered."""
    for name, p in load_catalogue().items():
        if segment in p["segments"]:
            return name
    raise ValidationError(f"未知的客户类型 “{segment}”", fix="客户类型应为：农牧户、个体工商户、小微企业、公职人员、社区居民")


def _product(product: str) -> dict[str, Any]:
    cat = load_catalogue()
    if product not in cat:
        raise ValidationError(f"未知的产品 “{product}”", fix=f"可用产品：{'、'.join(cat)}")
    return cat[product]
