"""Product rules: the one checker of a grant, and the per-branch rules kept in the workspace.

:func:`check_grant` takes one household's entity type (客户类型), product, grade, amount, guarantee and 职务级别 and
returns the rules it breaks, each naming the rule (the entity type, the band, the guarantee) in Chinese with its
fix. It is the only place these rules are decided: the rating save (:func:`grids.credit.save_ratings`), the
household import (:mod:`grids.ingest`; ``legacy`` imports keep a breaking historical grant and flag it) and
``python -m grids check PATH --credit`` (:func:`check_households`) all call it.

The defaults are the 联社's (``grids/data/products.json``, :mod:`grids.products`). A branch may have its own
approval authority (审批权限: larger grants go to the 联社's credit committee), and may *narrow* a band or set its
own base rate — never widen the 联社's rules. These overrides are the workspace table ``credit_rules``: one row
per (branch, product, grade), where an empty product is the branch's authority for every product and an empty
grade holds the product's authority and base rate. :func:`effective_rules` reads a branch's rules, and
:func:`set_branch_rule` (administrators only, audited) changes them.

Examples
--------
>>> [v.rule for v in check_grant(entity_type="普通农牧户", product="福农卡", grade="一般", amount=20000)]
['band']
>>> print(check_grant(entity_type="普通农牧户", product="福农卡", grade="钻石客户", amount=800000)[0].problem)
福农卡“钻石客户”只面向家庭农牧场、农牧业专业合作社，客户类型 普通农牧户 不能评为钻石客户
>>> v = check_grant(entity_type="公职人员", product="福薪卡", grade="标准", amount=300000, job_level="科级")
>>> v[0].rule, v[0].column
('guarantee', 'guarantee')
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from grids import products
from grids.errors import PermissionDeniedError, ValidationError

__all__ = ["RULES_HEADERS", "RULES_LAYER", "RULE_NAMES", "Rules", "Violation", "check_grant", "check_households",
           "check_workspace", "effective_rules", "rules_summary", "rules_table", "set_branch_rule"]

RULES_LAYER = "credit_rules"
RULE_NAMES: dict[str, str] = {
    "product": "产品", "entity_type": "客户类型", "grade": "等级", "band": "额度范围", "job_level": "职务级别",
    "guarantee": "担保",
}
"""Kinds of rule a :class:`Violation` names, in Chinese."""
MAX_RATE = 24.0
"""Highest base rate (% a year) a branch may set."""


@dataclass(frozen=True)
class Violation:
    """One rule a grant breaks: ``rule`` (a key of :data:`RULE_NAMES`), the ``column`` to correct, the
    ``problem`` and its ``fix`` in Chinese."""

    rule: str
    column: str
    problem: str
    fix: str


@dataclass(frozen=True)
class Rules:
    """The product rules in force for one branch: the 联社's defaults with the branch's overrides.

    Parameters
    ----------
    branch_id : str or None
        ``None``: the 联社's defaults (no branch).
    bands : mapping
        ``(product, grade)`` → ``(min, max)`` where the branch narrowed the default band.
    approval : mapping
        ``product`` (``""`` = every product) → the branch's approval authority in yuan.
    base_rates : mapping
        ``product`` → the branch's base rate (% a year).
    """

    branch_id: str | None = None
    bands: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    approval: Mapping[str, float] = field(default_factory=dict)
    base_rates: Mapping[str, float] = field(default_factory=dict)

    def band(self, product: str, grade: str) -> tuple[float, float]:
        """``(min, max)`` of ``product`` at ``grade`` for this branch."""
        return self.bands.get((product, products.grade_name(grade))) or products.band(product, grade)

    def approval_limit(self, product: str) -> float:
        """The largest grant of ``product`` this branch approves itself; above it the 联社 decides."""
        return float(self.approval.get(product, self.approval.get("", products.approval_authority())))

    def rate(self, product: str, *, payroll: bool = False, deposit_tier: str = "无", e_banking: bool = False) -> float:
        """The annual rate (%) of ``product`` at this branch (:func:`grids.products.rate`)."""
        return products.rate(product, payroll=payroll, deposit_tier=deposit_tier, e_banking=e_banking,
                             base=self.base_rates.get(product))


DEFAULT_RULES = Rules()
"""The 联社's rules, without branch overrides."""


def _yuan(v: float) -> str:
    return f"{v:,.0f}"


def _wan(v: float) -> str:
    return f"{v / 1e4:g}万"


def _s(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value).strip()


def check_grant(*, entity_type: str, product: str, grade: str, amount: float, guarantee: str = "",
                job_level: str = "", rules: Rules | None = None) -> list[Violation]:
    """The product rules a grant breaks (empty when it follows them all).

    Parameters
    ----------
    entity_type : str
        客户类型 (``""``: unknown, the entity-type rules are not checked); ``农牧户`` reads as ``普通农牧户``.
    product, grade : str
        An empty product is the entity type's (each has one). An empty grade (not rated yet) checks the amount
        against the range of the grades open to the entity type; 金卡/钻石卡 read as 黄金客户/钻石客户.
    amount : float
        The granted amount in yuan; 0 or less is no grant and breaks nothing.
    guarantee : str
        担保方式 (``""`` = 信用).
    job_level : str
        职务级别 (福薪卡: the band follows it; without it a 福薪卡 may not exceed the lowest level's band).
    rules : Rules, optional
        A branch's rules (:func:`effective_rules`); default the 联社's.

    Returns
    -------
    list of Violation
    """
    if not amount or amount <= 0:
        return []
    rules = rules or DEFAULT_RULES
    cat = products.load_catalogue()
    entity = products.entity_type(_s(entity_type))
    grade = products.grade_name(_s(grade))
    guarantee = _s(guarantee)
    if not product and entity:  # every entity type has one product
        with contextlib.suppress(ValidationError):
            product = products.product_for_segment(entity)
    if product not in cat:
        fix = f"可用产品：{'、'.join(cat)}"
        if entity:
            with contextlib.suppress(ValidationError):
                fix = f"客户类型 {entity} 应办理 {products.product_for_segment(entity)}"
        text = f"产品 “{product}” 不在产品目录中" if product else "已授信但没有产品"
        return [Violation("product", "product", text, fix)]
    out: list[Violation] = []
    entry = cat[product]
    if entity and entity not in entry["entity_types"]:
        try:
            other = f"客户类型 {entity} 应办理 {products.product_for_segment(entity)}"
        except ValidationError:
            other = f"客户类型应为：{'、'.join(products.ENTITY_TYPES)}"
        out.append(Violation("entity_type", "product",
                             f"{product} 面向{'、'.join(entry['entity_types'])}，客户类型 {entity} 不能办理",
                             f"{other}；如客户类型登记错了，先更正客户类型"))
    names = products.grades(product)
    if not grade and len(names) == 1:
        grade = names[0]
    if not grade:  # not rated yet (a register without grades): the range open to the entity type
        open_grades = products.grades(product, entity_type=entity or None) or names
        lo = min(rules.band(product, g)[0] for g in open_grades)
        hi = max(rules.band(product, g)[1] for g in open_grades)
    elif grade not in names:
        out.append(Violation("grade", "grade", f"{product} 没有等级 “{grade}”", f"可用等级：{'、'.join(names)}"))
        lo, hi = None, None
    else:
        lo, hi = rules.band(product, grade)
        reserved = products.grade_entity_types(product, grade)
        if reserved and entity and entity not in reserved:
            open_grades = products.grades(product, entity_type=entity)
            span = (f"（{_wan(rules.band(product, open_grades[0])[0])}–{_wan(rules.band(product, open_grades[-1])[1])}）"
                    if open_grades else "")
            out.append(Violation(
                "entity_type", "grade",
                f"{product}“{grade}”只面向{'、'.join(reserved)}，客户类型 {entity} 不能评为{grade}",
                f"{entity} 的{product}等级：{'、'.join(open_grades)}{span}；如确为{'或'.join(reserved)}，先更正客户类型"))
    if lo is not None and hi is not None and not lo <= amount <= hi:
        fitting = [g for g in products.grades(product, entity_type=entity or None)
                   if rules.band(product, g)[0] <= amount <= rules.band(product, g)[1]]
        where = f"{product}“{grade}”" if grade in names else (f"{entity}的{product}" if entity else product)
        fix = f"把额度调整到 {_yuan(lo)}–{_yuan(hi)} 元"
        fix += f"，或改评等级 {'、'.join(fitting)}" if fitting and grade in names and grade not in fitting else ""
        if rules.branch_id and (product, grade) in rules.bands:
            where += f"（网点 {rules.branch_id} 的范围）"
        out.append(Violation("band", "granted_amount",
                             f"额度 {_yuan(amount)} 元不在 {where} 的范围 {_yuan(lo)}–{_yuan(hi)} 元内", fix))
    levels = products.job_levels(product)
    level = _s(job_level)
    if levels:
        base_max = products.job_band(product, levels[0])[1]
        if not level:
            if amount > base_max:  # above the lowest level's band the 职务级别 must justify it
                out.append(Violation("job_level", "job_level",
                                     f"{product} 按职务级别核定额度：额度 {_yuan(amount)} 元超过{levels[0]}的上限 "
                                     f"{_wan(base_max)}，没有填写职务级别",
                                     f"填写职务级别（{'、'.join(levels)}），或把额度降到 {_yuan(base_max)} 元以内"))
        elif level not in levels:
            out.append(Violation("job_level", "job_level", f"{product} 没有职务级别 “{level}”",
                                 f"可用职务级别：{'、'.join(levels)}"))
        else:
            j0, j1 = products.job_band(product, level)
            if not j0 <= amount <= j1:
                out.append(Violation("band", "granted_amount",
                                     f"额度 {_yuan(amount)} 元不在 {product}“{level}”的范围 {_yuan(j0)}–{_yuan(j1)} 元内",
                                     f"{level}的{product}额度为 {_wan(j0)}–{_wan(j1)}：调整额度，或更正职务级别"))
    if guarantee and guarantee not in products.GUARANTEE_OPTIONS:
        out.append(Violation("guarantee", "guarantee", f"担保方式 “{guarantee}” 无效",
                             f"可用：信用（不填）、{'、'.join(products.GUARANTEE_OPTIONS[1:])}"))
    else:
        limit = products.guarantee_above(product)
        qualifying = products.qualifying_guarantees(product)
        if limit is not None and amount > limit and guarantee not in qualifying:
            now = f"现为“{guarantee}”，不能确认是{'或'.join(qualifying)}" if guarantee else "未填写担保方式"
            out.append(Violation(
                "guarantee", "guarantee",
                f"{product} 额度 {_yuan(amount)} 元超过 {_wan(limit)}，需要{'或'.join(qualifying)}（{now}）",
                f"担保方式填写{'或'.join(qualifying)}，或把额度降到 {_yuan(limit)} 元以内（{_wan(limit)}以内免担保）"))
    return out


def check_households(households: pd.DataFrame, *, rules: Rules | None = None) -> pd.DataFrame:
    """Every rule each granted household (``granted_amount > 0``) breaks.

    Parameters
    ----------
    households : DataFrame
        ``hh_id``, ``segment`` (客户类型), ``product``, ``grade``, ``granted_amount``, ``guarantee``,
        optionally ``job_level`` and ``credit_legacy`` (a historical grant imported with ``--legacy``).
    rules : Rules, optional
        Default the 联社's.

    Returns
    -------
    DataFrame
        One row per broken rule, indexed like the household rows: ``hh_id``, ``product``, ``grade``,
        ``granted_amount``, ``rule``, ``column``, ``problem``, ``fix``, ``legacy`` (flagged historical grant:
        a warning, not an error).

    Examples
    --------
    >>> hh = pd.DataFrame({"hh_id": ["a", "b"], "segment": ["农牧户", "公职人员"], "product": ["福农卡", "福薪卡"],
    ...                    "grade": ["一般", "标准"], "granted_amount": [45000.0, 150000.0],
    ...                    "job_level": [None, "一般工作人员"], "guarantee": ["", ""]})
    >>> len(check_households(hh))
    0
    """
    cols = ["hh_id", "product", "grade", "granted_amount", "rule", "column", "problem", "fix", "legacy"]
    if "granted_amount" not in households.columns:
        raise ValidationError("户表缺少 granted_amount 列", column="granted_amount", fix="导入含授信额度的户表")
    amount = pd.to_numeric(households["granted_amount"], errors="coerce").fillna(0)
    granted = households[amount > 0]
    rows = []
    for idx, rec in zip(granted.index, granted.to_dict("records"), strict=True):
        legacy = rec.get("credit_legacy")
        legacy = bool(legacy) if legacy is not None and not pd.isna(legacy) else False
        for v in check_grant(entity_type=_s(rec.get("segment")), product=_s(rec.get("product")),
                             grade=_s(rec.get("grade")), amount=float(rec["granted_amount"]),
                             guarantee=_s(rec.get("guarantee")), job_level=_s(rec.get("job_level")),
                             rules=rules):
            rows.append({"index": idx, "hh_id": rec.get("hh_id"), "product": _s(rec.get("product")),
                         "grade": _s(rec.get("grade")), "granted_amount": float(rec["granted_amount"]),
                         "rule": v.rule, "column": v.column, "problem": v.problem, "fix": v.fix, "legacy": legacy})
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=bool if c == "legacy" else object) for c in cols})
    return pd.DataFrame(rows).set_index("index").rename_axis(None)[cols]


def check_workspace(ws: Any) -> pd.DataFrame:
    """:func:`check_households` of a workspace's households, each against its branch's rules.

    A household's branch is its grid's in the plan in use (published, else the latest draft), found only when some
    branch has rules of its own; a household in no grid (or a workspace without a plan) is checked against the
    联社's defaults. Adds a ``branch_id`` column (``None``: the defaults applied).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from grids.workspace import GpkgWorkspace
    >>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422",
    ...                           county_name="巴林左旗")
    >>> len(check_workspace(ws))
    0
    """
    present = set(ws.columns("households"))
    cols = [c for c in ("hh_id", "segment", "product", "grade", "granted_amount", "guarantee", "job_level",
                        "credit_legacy") if c in present]
    overrides = rules_table(ws)
    hh = pd.DataFrame(ws.read("households", columns=None if len(overrides) else cols))
    branch = pd.Series(None, index=hh.index, dtype=object)
    if len(overrides) and len(hh):
        from grids import plans
        from grids.coverage import locate_in_workspace

        with contextlib.suppress(ValidationError):  # no plan: the defaults
            grids = plans.read_grids(ws, plans.resolve_plan(ws, None))
            located = locate_in_workspace(ws, grids)
            branch = pd.Series(located["branch_id"].to_numpy(dtype=object), index=hh.index, dtype=object)
    hh = hh[cols]
    parts = []
    with_rules = set(overrides["branch_id"].astype(str))
    key = branch.map(lambda b: b if isinstance(b, str) and b in with_rules else None)
    for b in dict.fromkeys(key):
        mask = key.isna() if b is None else key == b
        found = check_households(hh[mask.to_numpy()], rules=effective_rules(ws, b))
        parts.append(found.assign(branch_id=b))
    if not parts:
        return check_households(hh).assign(branch_id=None)
    return pd.concat(parts).sort_index(kind="stable")


def rules_summary(rules: Rules | None = None) -> pd.DataFrame:
    """The product rules in force as a table, one row per product grade (and per 福薪卡 职务级别).

    Columns: ``product``, ``grade``, ``entity_types`` (、-separated), ``min_amount``, ``max_amount`` (yuan, the
    branch's when it narrowed them), ``guarantee`` (the guarantee rule, in Chinese, or ``""``), ``base_rate``
    (% a year) and ``approval_limit`` (yuan: larger grants go to the 联社).

    Examples
    --------
    >>> t = rules_summary()
    >>> t.loc[t["grade"] == "钻石客户", ["entity_types", "min_amount", "max_amount"]].values.tolist()
    [['家庭农牧场、农牧业专业合作社', 500000.0, 1000000.0]]
    """
    rules = rules or DEFAULT_RULES
    rows = []
    for name, entry in products.load_catalogue().items():
        limit = products.guarantee_above(name)
        rule = (f"{_wan(limit)}以上需{'或'.join(products.qualifying_guarantees(name))}" if limit is not None else "")
        common = {"product": name, "guarantee": rule, "base_rate": rules.rate(name),
                  "approval_limit": rules.approval_limit(name)}
        levels = products.job_levels(name)
        for g in entry["grades"]:
            lo, hi = rules.band(name, g["grade"])
            rows.append({**common, "grade": g["grade"],
                         "entity_types": "、".join(g.get("entity_types") or entry["entity_types"]),
                         "min_amount": lo, "max_amount": hi})
        for level in levels:
            lo, hi = products.job_band(name, level)
            rows.append({**common, "grade": f"职务级别：{level}", "entity_types": "、".join(entry["entity_types"]),
                         "min_amount": lo, "max_amount": hi})
    cols = ["product", "grade", "entity_types", "min_amount", "max_amount", "guarantee", "base_rate",
            "approval_limit"]
    return pd.DataFrame(rows, columns=cols)


RULES_HEADERS = {"product": "产品", "grade": "等级", "entity_types": "客户类型", "min_amount": "最低额度（元）",
                 "max_amount": "最高额度（元）", "guarantee": "担保", "base_rate": "基准利率（%）",
                 "approval_limit": "网点审批权限（元）"}
"""Chinese headings of :func:`rules_summary`."""


# --------------------------------------------------------------------------------------------------------
# per-branch rules in the workspace
# --------------------------------------------------------------------------------------------------------

_FIELDS = ("approval_limit", "min_amount", "max_amount", "base_rate")


def rules_table(ws: Any) -> pd.DataFrame:
    """The workspace's ``credit_rules`` rows (empty when it has none, or predates the table)."""
    cols = ["rule_id", "branch_id", "product", "grade", *_FIELDS, "updated_at", "actor"]
    if RULES_LAYER not in ws.layers():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    frame = pd.DataFrame(ws.read(RULES_LAYER))
    return frame[[c for c in cols if c in frame.columns]]


def effective_rules(ws: Any, branch_id: str | None) -> Rules:
    """The rules in force at ``branch_id``: the 联社's defaults with that branch's overrides (``None``: defaults).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from grids.workspace import GpkgWorkspace
    >>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422",
    ...                           county_name="巴林左旗")
    >>> effective_rules(ws, "B01").approval_limit("福农卡")
    300000.0
    """
    if not branch_id:
        return DEFAULT_RULES
    t = rules_table(ws)
    t = t[t["branch_id"].astype(str) == str(branch_id)]
    bands: dict[tuple[str, str], tuple[float, float]] = {}
    approval: dict[str, float] = {}
    rates: dict[str, float] = {}
    for rec in t.to_dict("records"):
        product, grade = _s(rec.get("product")), _s(rec.get("grade"))
        if pd.notna(rec.get("approval_limit")):
            approval[product] = float(rec["approval_limit"])
        if product and pd.notna(rec.get("base_rate")):
            rates[product] = float(rec["base_rate"])
        if product and grade and (pd.notna(rec.get("min_amount")) or pd.notna(rec.get("max_amount"))):
            lo, hi = products.band(product, grade)
            bands[(product, grade)] = (float(rec["min_amount"]) if pd.notna(rec.get("min_amount")) else lo,
                                       float(rec["max_amount"]) if pd.notna(rec.get("max_amount")) else hi)
    return Rules(branch_id=str(branch_id), bands=bands, approval=approval, base_rates=rates)


def _number(name: str, value: Any) -> float | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} “{value}” 不是数字", fix="填写数字（金额以元为单位，利率为年利率 %）") from None
    if not pd.notna(out) or out < 0:
        raise ValidationError(f"{name} {value} 无效", fix="填写不小于 0 的数字")
    return out


def set_branch_rule(ws: Any, *, account: Any, branch_id: str, product: str = "", grade: str = "",
                    approval_limit: float | None = None, min_amount: float | None = None,
                    max_amount: float | None = None, base_rate: float | None = None) -> dict[str, Any]:
    """Set (or, with every value ``None``, remove) one branch override; administrators only, audited.

    Parameters
    ----------
    ws : grids.workspace.Workspace
    account : grids.auth.Account
        Who changes it; only ``admin``.
    branch_id : str
        A branch of the workspace.
    product, grade : str
        ``product=""``: the branch's approval authority for every product (only ``approval_limit``);
        ``grade=""``: the product's approval authority and base rate; both: the band of that grade
        (``min_amount``/``max_amount``, within the 联社's band: a branch may narrow it, never widen it).
    approval_limit, min_amount, max_amount : float, optional
        Yuan.
    base_rate : float, optional
        % a year, at most :data:`MAX_RATE`.

    Returns
    -------
    dict
        The row written (``removed`` true when the override was removed).

    Raises
    ------
    PermissionDeniedError
        Not an administrator.
    ValidationError
        Unknown branch, product or grade; a value of the wrong level; a band wider than the 联社's.
    """
    if getattr(account, "role", None) != "admin":
        raise PermissionDeniedError("只有系统管理员可以修改产品规则（网点审批权限与额度范围）")
    branch_id, product, grade = _s(branch_id), _s(product), products.grade_name(_s(grade))
    known = set(ws.read("branches", columns=["branch_id"])["branch_id"].astype(str)) if ws.count("branches") else set()
    if branch_id not in known:
        raise ValidationError(f"没有网点 “{branch_id}”", column="branch_id", fix="从网点列表中选择网点编号")
    values = {"approval_limit": _number("审批权限", approval_limit), "min_amount": _number("最低额度", min_amount),
              "max_amount": _number("最高额度", max_amount), "base_rate": _number("基准利率", base_rate)}
    if product and product not in products.load_catalogue():
        raise ValidationError(f"未知的产品 “{product}”", column="product",
                              fix=f"可用产品：{'、'.join(products.load_catalogue())}")
    if grade and not product:
        raise ValidationError("填写了等级却没有产品", column="product", fix="先选产品，再选等级")
    if not product and any(values[k] is not None for k in ("min_amount", "max_amount", "base_rate")):
        raise ValidationError("不分产品的规则只能设审批权限", column="product",
                              fix="额度范围和基准利率按产品（额度范围按产品和等级）设定")
    if grade:
        if values["approval_limit"] is not None or values["base_rate"] is not None:
            raise ValidationError("审批权限和基准利率按产品设定，不按等级", column="grade", fix="等级留空后再设")
        lo, hi = products.band(product, grade)
        new_lo = lo if values["min_amount"] is None else values["min_amount"]
        new_hi = hi if values["max_amount"] is None else values["max_amount"]
        if new_lo < lo or new_hi > hi:
            raise ValidationError(
                f"网点只能收紧联社的额度范围：{product}“{grade}”为 {_yuan(lo)}–{_yuan(hi)} 元，"
                f"不能设为 {_yuan(new_lo)}–{_yuan(new_hi)} 元", column="min_amount" if new_lo < lo else "max_amount",
                fix=f"在 {_yuan(lo)}–{_yuan(hi)} 元之内设定")
        if new_lo >= new_hi:
            raise ValidationError(f"最低额度 {_yuan(new_lo)} 元不小于最高额度 {_yuan(new_hi)} 元", column="min_amount",
                                  fix="最低额度应小于最高额度")
    elif values["min_amount"] is not None or values["max_amount"] is not None:
        raise ValidationError("额度范围按等级设定", column="grade", fix=f"选择等级：{'、'.join(products.grades(product))}")
    if values["approval_limit"] is not None and values["approval_limit"] <= 0:
        raise ValidationError("审批权限必须大于 0", column="approval_limit", fix="填写网点能自行审批的最高额度（元）")
    if values["base_rate"] is not None and not 0 < values["base_rate"] <= MAX_RATE:
        raise ValidationError(f"基准利率 {values['base_rate']}% 无效", column="base_rate",
                              fix=f"填写 0–{MAX_RATE:g} 之间的年利率（%）")
    rule_id = f"{branch_id}|{product}|{grade}"
    removed = all(v is None for v in values.values())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = {"rule_id": rule_id, "branch_id": branch_id, "product": product, "grade": grade, **values,
           "updated_at": now, "actor": account.username}
    with ws.transaction(actor=account.username, action="修改产品规则") as tx:
        before = tx.read(RULES_LAYER, where="rule_id = ?", params=[rule_id])
        tx.execute(f"DELETE FROM {RULES_LAYER} WHERE rule_id = ?", (rule_id,))
        if not removed:
            tx.append(RULES_LAYER, pd.DataFrame([row]))
        old = before.iloc[0] if len(before) else None
        tx.note(RULES_LAYER, {"rule_id": rule_id, "removed": removed,
                              "before": None if old is None else {k: _plain(old.get(k)) for k in _FIELDS},
                              "after": None if removed else {k: values[k] for k in _FIELDS}})
    return {**row, "removed": removed}


def _plain(v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v
