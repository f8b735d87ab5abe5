"""Scorecard (评分卡): a transparent, configurable points table per product → suggested grade and limit.

The table is data (``grids/data/scorecard.json``): each factor is a fact of the household's latest survey
(:mod:`grids.survey`) — labour, farmland and grassland (亩), livestock (折合牛: cattle + sheep × 0.2 …), annual
income, liabilities over income (this bank's and other banks'), housing, machinery, entity type, 职务级别 and 代发
— scored by steps (``at_least``: the points of the highest step reached; ``at_most``: of the lowest bound not
exceeded) or a map (category → points). Each product lists the factors it uses and the points each grade needs.
The suggested grade is the highest one open to the household's entity type that its points reach; the amount lies
in that grade's band (the branch's :class:`grids.credit_rules.Rules`; 福薪卡: the 职务级别's band) by where the
points fall between this grade's threshold and the next, rounded down to 1,000 yuan, never above the household's
own credit need (but not below the band) and, for 福薪卡 without a qualifying guarantee on offer, not above 20万.
The reasons list every factor with its value and points, so the panel sees why; the panel decides.

Examples
--------
>>> s = suggest({"labour": 3, "farmland_mu": 80, "cattle": 20, "sheep": 50, "annual_income": 120000,
...              "liabilities": 20000, "housing": "砖瓦房", "entity_type": "普通农牧户"}, "福农卡")
>>> s.grade, s.amount, s.points
('优秀', 85000.0, 67.0)
>>> [r.text for r in s.reasons][:2]
['劳动力 3 人：+12', '耕地 80 亩：+12']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, cast

import numpy as np
import pandas as pd

from grids import credit_rules, products
from grids.errors import ValidationError

__all__ = ["MASKED_FACTORS", "Reason", "Suggestion", "load_scorecard", "points_table", "suggest", "suggest_frame",
           "village_suggestions"]


@cache
def load_scorecard() -> dict[str, Any]:
    """The scorecard table (``factors``, ``products`` with their factors and grade thresholds, …)."""
    card: dict[str, Any] = json.loads(resources.files("grids").joinpath("data/scorecard.json").read_text(
        encoding="utf-8"))
    return card


@dataclass(frozen=True)
class Reason:
    """One factor's contribution: its ``label``, the ``value`` shown, the ``points`` given."""

    label: str
    value: str
    points: float
    cap: bool = False

    @property
    def text(self) -> str:
        """``劳动力 3 人：+12`` (a cap: ``按本户申请金额 50,000 元``)."""
        return f"{self.label} {self.value}" if self.cap else f"{self.label} {self.value}：+{self.points:g}"


@dataclass(frozen=True)
class Suggestion:
    """A scorecard suggestion: ``grade``, ``amount`` (yuan), ``points`` and the ``reasons`` (every factor's
    points, then any cap applied, with 0 points)."""

    grade: str
    amount: float
    points: float
    reasons: tuple[Reason, ...]

    def reasons_text(self) -> str:
        """The reasons on one line, ``；``-separated."""
        return "；".join(r.text for r in self.reasons)


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)


def _facts(frame: pd.DataFrame) -> pd.DataFrame:
    """The survey columns the factors read, with the derived ones (折合牛, 负债收入比)."""
    card = load_scorecard()
    out = pd.DataFrame(index=frame.index)
    for col in ("labour", "farmland_mu", "grassland_mu", "annual_income", "machinery_value"):
        out[col] = _num(frame, col)
    units = np.zeros(len(frame))
    seen = np.zeros(len(frame), dtype=bool)
    for col, w in card["livestock_units"].items():
        v = _num(frame, col)
        seen |= ~np.isnan(v)
        units += np.nan_to_num(v) * float(w)
    out["livestock_units"] = np.where(seen, units, np.nan)
    debt = np.nan_to_num(_num(frame, "liabilities")) + np.nan_to_num(_num(frame, "liabilities_other_banks"))
    income = _num(frame, "annual_income")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["liability_ratio"] = np.where(income > 0, debt / income, np.nan)
    for col in ("housing", "entity_type", "post_level"):
        out[col] = frame[col].astype(object) if col in frame.columns else None
    if "entity_type" in out:
        out["entity_type"] = [products.entity_type(str(v)) if isinstance(v, str) else v for v in out["entity_type"]]
    pay = frame["salary_via_rcc"] if "salary_via_rcc" in frame.columns else pd.Series(None, index=frame.index)
    out["salary_via_rcc"] = ["true" if (v is not None and not pd.isna(v) and bool(v)) else None for v in pay]
    return out


def points_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Points of every factor (columns named like the factors) for each row of a survey frame (vectorised)."""
    card = load_scorecard()
    facts = _facts(frame)
    out = pd.DataFrame(index=frame.index)
    for name, f in card["factors"].items():
        if f["kind"] == "map":
            out[name] = [float(f["map"].get(str(v), 0)) if v is not None and not pd.isna(v) else 0.0
                         for v in facts[name]]
            continue
        v = facts[name].to_numpy(dtype=float)
        pts = np.zeros(len(v))
        steps = f["steps"]
        if f["kind"] == "at_least":
            for bound, p in steps:  # ascending: the highest step reached wins
                pts = np.where(v >= bound, float(p), pts)
        else:  # at_most: ascending bounds, the lowest one not exceeded wins
            for bound, p in reversed(steps):
                pts = np.where(v <= bound, float(p), pts)
            pts = np.where(np.isnan(v), float(f.get("missing", 0)), pts)
        out[name] = np.where(np.isnan(v), float(f.get("missing", 0)), pts)
    return out


def _shown(name: str, value: Any) -> str:
    f = load_scorecard()["factors"][name]
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "未填"
    if name == "liability_ratio":
        return f"{float(value):.0%}"
    if name == "salary_via_rcc":
        return "是"
    if isinstance(value, float | int | np.floating | np.integer):
        return f"{float(value):,.{0 if float(value).is_integer() else 1}f} {f.get('unit', '')}".strip()
    return str(value)


def suggest_frame(frame: pd.DataFrame, *, product: str | pd.Series | None = None,
                  rules: credit_rules.Rules | None = None) -> pd.DataFrame:
    """Suggestions for each row of a survey frame (latest surveys, one per household).

    Parameters
    ----------
    frame : DataFrame
        Survey columns (:data:`grids.model.SURVEY_LAYER`); missing columns score 0.
    product : str or Series, optional
        The product to rate (one for all rows, or one per row); default each row's ``need_product``, else its
        entity type's product.
    rules : Rules, optional
        The branch's rules (bands); default the 联社's.

    Returns
    -------
    DataFrame
        Indexed like ``frame``: ``product``, ``suggested_grade``, ``suggested_amount``, ``points``, ``reasons``
        (text), ``suggestion`` (the :class:`Suggestion`). A row without a known product gets ``None``.
    """
    rules = rules or credit_rules.DEFAULT_RULES
    card = load_scorecard()
    pts = points_table(frame)
    facts = _facts(frame)
    if isinstance(product, str):
        prods = pd.Series(product, index=frame.index)
    elif product is not None:
        prods = pd.Series(product.to_numpy(dtype=object), index=frame.index)
    else:
        need = frame["need_product"] if "need_product" in frame.columns else pd.Series(None, index=frame.index)
        prods = pd.Series([_default_product(n, e) for n, e in zip(need, facts["entity_type"], strict=True)],
                          index=frame.index)
    out: list[Suggestion | None] = []
    records = cast("list[dict[str, Any]]", frame.to_dict("records"))  # the columns are strings
    for i, (idx, prod) in enumerate(prods.items()):
        if not isinstance(prod, str) or prod not in card["products"]:
            out.append(None)
            continue
        row = pts.iloc[i]
        fact = facts.iloc[i]
        reasons = [Reason(card["factors"][n]["label"], _shown(n, fact[n]), float(row[n]))
                   for n in card["products"][prod]["factors"]]
        out.append(_grade_amount(prod, float(sum(r.points for r in reasons)), reasons, records[i], fact, rules))
        del idx
    return pd.DataFrame({
        "product": [s and prods.iloc[i] for i, s in enumerate(out)],
        "suggested_grade": [s.grade if s else None for s in out],
        "suggested_amount": [s.amount if s else np.nan for s in out],
        "points": [s.points if s else np.nan for s in out],
        "reasons": [s.reasons_text() if s else "" for s in out],
        "suggestion": out}, index=frame.index)


def _default_product(need: Any, entity: Any) -> str | None:
    if isinstance(need, str) and need in products.load_catalogue():
        return need
    if isinstance(entity, str) and entity:
        try:
            return products.product_for_segment(entity)
        except ValidationError:
            return None
    return None


def _grade_amount(product: str, points: float, reasons: list[Reason], rec: Mapping[str, Any], fact: pd.Series,
                  rules: credit_rules.Rules) -> Suggestion:
    card = load_scorecard()
    entity = fact.get("entity_type")
    thresholds = card["products"][product]["grades"]
    open_ = set(products.grades(product, entity_type=entity if isinstance(entity, str) and entity else None))
    reachable = [(g, float(t)) for g, t in thresholds if g in open_]
    grade, lo_pts = reachable[0]
    for g, t in reachable:
        if points >= t:
            grade, lo_pts = g, t
    later = [t for _, t in reachable if t > lo_pts]
    hi_pts = later[0] if later else float(card["max_points"][product])
    frac = float(np.clip((points - lo_pts) / (hi_pts - lo_pts), 0, 1)) if hi_pts > lo_pts else 1.0
    level = fact.get("post_level")
    if products.job_levels(product) and isinstance(level, str) and level in products.job_levels(product):
        lo, hi = products.job_band(product, level)
    else:
        lo, hi = rules.band(product, grade)
    step = float(card["round_to"])
    amount = float(np.clip(np.floor((lo + frac * (hi - lo)) / step) * step, lo, hi))
    caps = []
    limit = products.guarantee_above(product)
    offered = str(rec.get("guarantee_options") or "")
    if limit is not None and amount > limit and not any(g in offered for g in products.qualifying_guarantees(product)):
        amount = max(lo, limit)
        caps.append(Reason(f"未提供{'或'.join(products.qualifying_guarantees(product))}，额度以", f"{limit / 1e4:g}万为限",
                           0.0, cap=True))
    need = rec.get("need_amount")
    if need is not None and not pd.isna(need) and 0 < float(need) < amount:
        amount = max(lo, float(np.ceil(float(need) / step) * step))
        caps.append(Reason("按本户申请金额", f"{float(need):,.0f} 元", 0.0, cap=True))
    return Suggestion(grade, amount, points, tuple(reasons + caps))


def suggest(survey_row: Mapping[str, Any] | pd.Series, product: str,
            rules: credit_rules.Rules | None = None) -> Suggestion:
    """The scorecard's suggestion for one household's latest survey and ``product`` (see the module docstring).

    Raises
    ------
    ValidationError
        ``product`` has no scorecard table.
    """
    if product not in load_scorecard()["products"]:
        raise ValidationError(f"评分卡没有产品 “{product}”", column="product",
                              fix=f"可用产品：{'、'.join(load_scorecard()['products'])}")
    row = dict(survey_row)
    suggestion: Suggestion = suggest_frame(pd.DataFrame([row]), product=product, rules=rules)["suggestion"].iloc[0]
    return suggestion


MASKED_FACTORS: tuple[str, ...] = ("annual_income", "liability_ratio")
"""Factors whose value is sensitive (income, liabilities): shown as ``***`` in masked reasons."""


def village_suggestions(ws: Any, hh_ids: list[str], products_of: Mapping[str, str], *,
                        rules: credit_rules.Rules | None = None, unmask: bool = False) -> pd.DataFrame:
    """Suggestions for households by id from their latest surveys (``hh_id``, ``suggested_grade``,
    ``suggested_amount``, ``points``, ``reasons``); households without a survey are absent.

    The caller passes in-scope ids only. Unless ``unmask``, the reasons show income and the liabilities ratio as
    ``***`` (their points stay), as the survey's sensitive fields are masked elsewhere.
    """
    from grids import survey

    latest = survey.latest_surveys(survey.read_surveys(ws, hh_ids=hh_ids))
    cols = ["hh_id", "suggested_grade", "suggested_amount", "points", "reasons"]
    if not len(latest):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    prods = latest["hh_id"].astype(str).map(dict(products_of))
    got = suggest_frame(latest, product=prods.where(prods.notna(), None), rules=rules)
    if not unmask:
        hidden = {load_scorecard()["factors"][n]["label"] for n in MASKED_FACTORS}
        got["reasons"] = ["；".join((f"{r.label} ***：+{r.points:g}" if r.label in hidden else r.text)
                                   for r in s.reasons) if s else "" for s in got["suggestion"]]
    return pd.concat([latest[["hh_id"]], got], axis=1)[cols]
