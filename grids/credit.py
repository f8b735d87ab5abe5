"""Credit rules and the rating session (集中授信).

The product catalogue (bands per grade, guarantee rules) is data in ``grids/data/products.json``, read through
:mod:`grids.products`. :func:`check_credit` lists granted records that break it; the rating session runs
:func:`rating_list` (the surveyed households of a village, for the panel) → :func:`record_ratings` (a batch of
grades and limits, checked) → :func:`whitelist` (the village's granted households), and :func:`save_ratings`
writes a checked batch into the workspace in one transaction.

Examples
--------
>>> import pandas as pd
>>> hh = pd.DataFrame({"hh_id": ["a", "b"], "segment": ["公职人员", "普通农牧户"], "product": ["福薪卡", "福农卡"],
...                    "grade": ["标准", "优秀"], "granted_amount": [300000.0, 120000.0], "guarantee": ["", ""],
...                    "job_level": ["科级", None]})
>>> check_credit(hh)["problem"].tolist()
['福薪卡 额度 300,000 元超过 20万，需要公职人员保证或商厅楼房抵押（未填写担保方式）', \
'额度 120,000 元不在 福农卡“优秀” 的范围 85,000–100,000 元内']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from grids import credit_rules, products
from grids.errors import StaleEditError, ValidationError

__all__ = ["RATING_FIELDS", "apply_ratings", "check_credit", "rating_list", "record_ratings", "save_ratings", "whitelist",
           "whitelist_bytes"]

_RATING_COLUMNS = ("hh_id", "grade", "granted_amount", "guarantee")


def _s(value: Any) -> str:
    """A value as a stripped string, ``""`` for missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value).strip()


def _check_one(product: str, grade: str, amount: float, guarantee: str, segment: str, job_level: str = "", *,
               rules: credit_rules.Rules | None = None) -> list[tuple[str, str, str]]:
    """Problems of one granted record: ``(column, problem, fix)`` triples (empty when it is fine); the rules are
    :func:`grids.credit_rules.check_grant`'s."""
    return [(v.column, v.problem, v.fix) for v in credit_rules.check_grant(
        entity_type=segment, product=product, grade=grade, amount=amount, guarantee=guarantee, job_level=job_level,
        rules=rules)]


def check_credit(households: pd.DataFrame, *, rules: credit_rules.Rules | None = None) -> pd.DataFrame:
    """Granted records (``granted_amount > 0``) that break the product rules (:mod:`grids.credit_rules`).

    Parameters
    ----------
    households : DataFrame
        ``hh_id``, ``segment``, ``product``, ``grade``, ``granted_amount``, ``guarantee`` (``job_level``,
        ``credit_legacy`` when present).
    rules : Rules, optional
        A branch's rules (default the 联社's).

    Returns
    -------
    DataFrame
        One row per problem: ``hh_id``, ``product``, ``grade``, ``granted_amount``, ``rule``, ``column``,
        ``problem``, ``fix`` (in Chinese), ``legacy`` (a flagged historical grant: a warning), indexed like the
        offending household rows. A product with one grade accepts an empty grade.
    """
    return credit_rules.check_households(households, rules=rules)


def _in_village(households: pd.DataFrame, village_code: str) -> pd.Series:
    code = str(village_code).strip()
    village = households["village_code"].astype("string") if "village_code" in households else None
    group = households["group_code"].astype("string") if "group_code" in households else None
    mask = pd.Series(False, index=households.index)
    if village is not None:
        mask |= (village == code).fillna(False)
    if group is not None:
        mask |= (group.str[:12] == code).fillna(False)
    if not mask.any():
        raise ValidationError(f"没有村代码为 {code} 的农户", column="village_code",
                              fix="检查村代码（12 位统计用区划代码）")
    return mask


def _sort_village(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("group_code", "hh_id") if c in frame.columns]
    return frame.sort_values(keys, kind="stable", na_position="last") if keys else frame


def rating_list(households: pd.DataFrame, village_code: str, *, unmask: bool = False) -> pd.DataFrame:
    """The households a rating panel rates for one village: its surveyed (archived) households.

    Parameters
    ----------
    households : DataFrame
        The ``households`` layer.
    village_code : str
        12-digit village (嘎查/社区) code; households match by ``village_code`` or their group code's prefix.
    unmask : bool
        Show ID numbers and phones in full (default masked).

    Returns
    -------
    DataFrame
        ``hh_id``, ``head_name``, ``id_no``, ``phone``, ``segment`` (客户类型, current name), ``group_code``,
        ``address``, the ``product`` to rate (the record's, else the segment's), ``grades`` (those open to the
        household's entity type, 、-separated), the current ``grade`` (current name), ``granted_amount``,
        ``guarantee``, ``job_level``; sorted by group and household.

    Examples
    --------
    >>> import pandas as pd
    >>> hh = pd.DataFrame({"hh_id": ["a", "b"], "village_code": ["150422100201"] * 2,
    ...                    "segment": ["农牧户", "家庭农牧场"], "archived": [True, True]})
    >>> rating_list(hh, "150422100201")[["hh_id", "segment", "product", "grades"]].values.tolist()
    [['a', '普通农牧户', '福农卡', '一般、良好、较优、优秀'], ['b', '家庭农牧场', '福农卡', '一般、良好、较优、优秀、黄金客户、钻石客户']]
    """
    from grids.export import mask_id_no, mask_phone

    mask = _in_village(households, village_code)
    archived = households["archived"].astype("boolean").fillna(False) if "archived" in households else mask
    sel = _sort_village(households[mask & archived.to_numpy(dtype=bool)])
    out = pd.DataFrame(index=sel.index)
    for col in ("hh_id", "head_name", "id_no", "phone", "segment", "group_code", "address"):
        out[col] = sel.get(col, None)
    out["segment"] = [products.entity_type(_s(v)) or None for v in out["segment"]]
    if not unmask:
        out["id_no"] = [mask_id_no(v) for v in out["id_no"]]
        out["phone"] = [mask_phone(v) for v in out["phone"]]
    prods = []
    for rec_product, segment in zip(sel.get("product", [None] * len(sel)), out["segment"], strict=True):
        p = _s(rec_product)
        if not p and _s(segment):
            try:
                p = products.product_for_segment(_s(segment))
            except ValidationError:
                p = ""
        prods.append(p)
    out["product"] = prods
    cat = products.load_catalogue()
    out["grades"] = ["、".join(products.grades(p, entity_type=_s(e) or None)) if p in cat else ""
                     for p, e in zip(prods, out["segment"], strict=True)]
    for col in ("grade", "granted_amount", "guarantee", "job_level"):
        out[col] = sel.get(col, None)
    out["grade"] = [products.grade_name(_s(g)) or None for g in out["grade"]]
    return out


def record_ratings(households: pd.DataFrame, ratings: pd.DataFrame, *,
                   rules: credit_rules.Rules | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply a panel's batch of grades and limits, checking each against the product rules
    (:func:`grids.credit_rules.check_grant`: entity type, band, 职务级别, guarantee).

    Parameters
    ----------
    households : DataFrame
        The ``households`` layer (not changed).
    ratings : DataFrame
        ``hh_id``, ``grade``, ``granted_amount`` (yuan; 0 = rated but not granted), ``guarantee`` (optional),
        ``job_level`` (optional; default the household's), ``product`` (optional; default the household's
        product, else its segment's).
    rules : Rules, optional
        The rating branch's rules (:func:`grids.credit_rules.effective_rules`); default the 联社's.

    Returns
    -------
    (DataFrame, DataFrame)
        A copy of ``households`` with the valid ratings applied (``product``, ``grade``, ``granted_amount``,
        ``guarantee``, ``job_level``; ``eligible`` set true where a limit is granted; a flagged historical grant
        rated again loses its ``credit_legacy`` flag), and the problems: ``row`` (1-based row
        of ``ratings``), ``hh_id``, ``column``, ``problem``, ``fix``. A rating with a problem is not applied.

    Examples
    --------
    >>> import pandas as pd
    >>> hh = pd.DataFrame({"hh_id": ["a", "b"], "segment": ["农牧户"] * 2, "archived": [True, True],
    ...                    "eligible": [False, False], "granted_amount": [0.0, 0.0]})
    >>> r = pd.DataFrame({"hh_id": ["a", "b"], "grade": ["良好", "良好"], "granted_amount": [60000, 90000]})
    >>> new, problems = record_ratings(hh, r)
    >>> new["granted_amount"].tolist(), problems["hh_id"].tolist()
    ([60000.0, 0.0], ['b'])
    """
    missing = [c for c in ("hh_id", "grade", "granted_amount") if c not in ratings.columns]
    if missing:
        raise ValidationError(f"评级表缺少列：{'、'.join(missing)}", column=missing[0],
                              fix="评级表应有 hh_id（户号）、grade（等级）、granted_amount（授信额度，元）、guarantee（担保方式）")
    out = households.copy()
    for col, default in (("product", None), ("grade", None), ("granted_amount", 0.0), ("guarantee", None),
                         ("eligible", False), ("job_level", None), ("credit_legacy", None)):
        if col not in out.columns:
            out[col] = default
    out["granted_amount"] = pd.to_numeric(out["granted_amount"], errors="coerce").astype(float)
    for col in ("product", "grade", "guarantee", "job_level", "credit_legacy"):
        out[col] = out[col].astype(object)
    out["eligible"] = out["eligible"].astype("boolean").fillna(False).astype(bool)
    position = {str(h): i for i, h in enumerate(out["hh_id"].astype(str))}
    seen: dict[str, int] = {}
    problems: list[dict[str, Any]] = []
    updates: list[tuple[int, str, str, float, str, str]] = []
    for row_no, rec in enumerate(ratings.to_dict("records"), start=1):
        hh_id = _s(rec.get("hh_id"))

        def problem(column: str, text: str, fix: str, *, _row: int = row_no, _hh: str = hh_id) -> None:
            problems.append({"row": _row, "hh_id": _hh, "column": column, "problem": text, "fix": fix})

        if hh_id not in position:
            problem("hh_id", f"户号 “{hh_id}” 不存在", "检查户号，评级表只能包含本村已建档的农户")
            continue
        if hh_id in seen:
            problem("hh_id", f"户号 {hh_id} 重复（第 {seen[hh_id]} 行已评）", "每户只评一次，删除重复行")
            continue
        seen[hh_id] = row_no
        i = position[hh_id]
        hh = out.iloc[i]
        if "archived" in out.columns and not bool(pd.notna(hh["archived"]) and hh["archived"]):
            problem("hh_id", f"户 {hh_id} 尚未建档，不能评级", "先完成入户调查建档")
            continue
        product = _s(rec.get("product")) or _s(hh.get("product"))
        if not product and _s(hh.get("segment")):
            try:
                product = products.product_for_segment(_s(hh.get("segment")))
            except ValidationError as exc:
                problem("product", str(exc), "在户表中填写客户类型或产品")
                continue
        try:
            raw_amount: Any = rec.get("granted_amount")
            amount = float(raw_amount)
        except (TypeError, ValueError):
            amount = float("nan")
        if not np.isfinite(amount) or amount < 0:
            problem("granted_amount", f"授信额度 “{rec.get('granted_amount')}” 无效", "填写以元为单位的非负数字；0 表示不授信")
            continue
        grade, guarantee = products.grade_name(_s(rec.get("grade"))), _s(rec.get("guarantee"))
        job_level = _s(rec.get("job_level")) if "job_level" in rec else _s(hh.get("job_level"))
        if job_level and job_level not in products.JOB_LEVELS:
            problem("job_level", f"职务级别 “{job_level}” 无效", f"可选：{'、'.join(products.JOB_LEVELS)}（非公职人员留空）")
            continue
        if amount > 0:
            found = _check_one(product, grade, amount, guarantee, _s(hh.get("segment")), job_level, rules=rules)
            if found:
                for column, text, fix in found:
                    problem(column, text, fix)
                continue
        updates.append((i, product, grade, amount, guarantee, job_level))
    at = {c: cast(int, out.columns.get_loc(c)) for c in  # the columns are unique: positions
          ("product", "grade", "granted_amount", "guarantee", "job_level", "credit_legacy", "eligible")}
    for i, product, grade, amount, guarantee, job_level in updates:
        out.iat[i, at["product"]] = product or None
        out.iat[i, at["grade"]] = grade or None
        out.iat[i, at["granted_amount"]] = amount
        out.iat[i, at["guarantee"]] = guarantee or None
        out.iat[i, at["job_level"]] = job_level or None
        out.iat[i, at["credit_legacy"]] = None
        if amount > 0:
            out.iat[i, at["eligible"]] = True
    cols = ["row", "hh_id", "column", "problem", "fix"]
    table = pd.DataFrame(problems, columns=cols) if problems else pd.DataFrame(
        {c: pd.Series(dtype=object) for c in cols})
    return out, table


def whitelist(households: pd.DataFrame, village_code: str, *, unmask: bool = False) -> pd.DataFrame:
    """The village's whitelist (白名单): its granted households with product, grade, limit and guarantee.

    Examples
    --------
    >>> import pandas as pd
    >>> hh = pd.DataFrame({"hh_id": ["a", "b"], "village_code": ["150422100201"] * 2,
    ...                    "granted_amount": [0.0, 60000.0], "product": [None, "福农卡"]})
    >>> whitelist(hh, "150422100201")["hh_id"].tolist()
    ['b']
    """
    from grids.export import mask_id_no, mask_phone

    mask = _in_village(households, village_code)
    amount = pd.to_numeric(households["granted_amount"], errors="coerce").fillna(0)
    sel = _sort_village(households[mask & (amount > 0)])
    cols = ["hh_id", "head_name", "id_no", "phone", "segment", "group_code", "product", "grade",
            "granted_amount", "guarantee", "signed"]
    out = pd.DataFrame({c: (sel.get(c, None)) for c in cols}, index=sel.index)
    out["segment"] = [products.entity_type(_s(v)) or None for v in out["segment"]]  # names of earlier versions
    out["grade"] = [products.grade_name(_s(v)) or None for v in out["grade"]]
    if not unmask:
        out["id_no"] = [mask_id_no(v) for v in out["id_no"]]
        out["phone"] = [mask_phone(v) for v in out["phone"]]
    return out


RATING_FIELDS: tuple[str, ...] = ("grade", "granted_amount", "guarantee", "job_level")
"""What a rating sets, besides the household (``hh_id``); the product comes from the record or the segment."""

_AUDITED = ("product", "grade", "granted_amount", "guarantee", "eligible")


def _plain_value(v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def save_ratings(ws: Any, ratings: pd.DataFrame, *, actor: str, expected_revision: int | None = None,
                 seen: Mapping[str, int] | None = None, branch_id: str | None = None,
                 within_authority: bool = False, only_lower: bool = False) -> int:
    """Check a batch of ratings against the workspace's households and write it in one transaction.

    Nothing is written when any rating has a problem (the error lists the first ones). Each household written
    gets its ``version`` bumped, and the audit detail lists per household the before/after of product, grade,
    granted amount, guarantee and eligibility.

    Parameters
    ----------
    ws : grids.workspace.Workspace
    ratings : DataFrame
        As for :func:`record_ratings`.
    actor : str
        Who records the ratings (audit trail).
    expected_revision : int, optional
        The workspace revision the caller read (stale → :class:`~grids.errors.StaleRevisionError`). Pages pass
        ``seen`` instead, so raters of different villages do not refuse each other.
    seen : mapping, optional
        ``hh_id`` → the household's version the caller read; a household that changed since refuses the batch
        (:class:`~grids.errors.StaleEditError`), other households do not matter.
    branch_id : str, optional
        The rating branch: its rules apply (:func:`grids.credit_rules.effective_rules`); default the 联社's.
    within_authority : bool
        Refuse grants above the branch's approval authority (a direct rating on the page: larger grants go
        through a rating session and the credit committee, :mod:`grids.sessions`).
    only_lower : bool
        Refuse a new grant or an increase (a branch manager's direct rating: it may only lower or cancel a
        grant, or change grade, guarantee or 职务级别; grants come from a rating session).

    Returns
    -------
    int
        The number of households updated.

    Raises
    ------
    ValidationError
        A rating breaks a rule; a household whose rating session's decision waits for the credit committee
        (待贷审会审批: the committee decides it first); with ``only_lower``, a new grant or an increase.

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely
    >>> from grids.workspace import GpkgWorkspace
    >>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422",
    ...                           county_name="巴林左旗")
    >>> with ws.transaction(actor="t", action="测试") as tx:
    ...     _ = tx.replace("households", gpd.GeoDataFrame({"hh_id": ["a"], "segment": ["农牧户"],
    ...                    "archived": [True]}, geometry=[shapely.Point(119, 43)], crs=4490))
    >>> save_ratings(ws, pd.DataFrame({"hh_id": ["a"], "grade": ["良好"], "granted_amount": [60000]}),
    ...              actor="主任", seen={"a": 0})
    1
    >>> import json; json.loads(ws.read("audit")["detail"].iloc[-1])[0]["changed"][0]["after"]["grade"]
    '良好'
    """
    rules = credit_rules.effective_rules(ws, branch_id)
    ids = [_s(h) for h in ratings["hh_id"]] if "hh_id" in ratings.columns else []
    with ws.transaction(actor=actor, action="集中授信评级", expected_revision=expected_revision) as tx:
        if ids and "rating_decisions" in ws.layers():
            waiting = tx.read("rating_decisions", where=f"outcome = ? AND hh_id IN ({','.join('?' * len(ids))})",
                              params=["待贷审会审批", *ids])
            if len(waiting):
                raise ValidationError(
                    f"农户 {'、'.join(waiting['hh_id'].astype(str).head(5))} 的评定会决定正等待联社贷审会审批，"
                    "不能直接改评级", column="hh_id", fix="等贷审会审批或退回后再改；或请贷审会退回该决定")
        changed, granted = apply_ratings(tx, ws.columns("households"), ratings, rules=rules, seen=seen,
                                         within_authority=within_authority, only_lower=only_lower)
        tx.note("households", {"op": "ratings", "rows": len(changed), "granted": granted, "changed": changed})
    return len(changed)


def apply_ratings(tx: Any, present: Mapping[str, str] | Any, ratings: pd.DataFrame, *, rules: credit_rules.Rules,
                  seen: Mapping[str, int] | None = None, within_authority: bool = False,
                  only_lower: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Check a rating batch and write it inside an open transaction (the body of :func:`save_ratings`, also used
    by a rating session's grants, :mod:`grids.sessions`).

    Parameters
    ----------
    tx : grids.workspace.base.Transaction
    present : collection of str
        The ``households`` layer's columns.
    ratings : DataFrame
        As for :func:`record_ratings`.
    rules : Rules
        The rules that apply (product rules: entity type, band, 职务级别, guarantee).
    seen : mapping, optional
        ``hh_id`` → the version the caller read (:class:`~grids.errors.StaleEditError` when one changed).
    within_authority : bool
        Refuse any grant above ``rules``' approval authority for its product.
    only_lower : bool
        Refuse any granted amount above the household's current one (a new grant or an increase).

    Returns
    -------
    (list of dict, int)
        Per household written: ``hh_id``, ``before`` and ``after`` (product, grade, granted amount, guarantee,
        eligibility; ``job_level`` when it changed); and how many of them carry a grant.

    Raises
    ------
    ValidationError
        Any rating breaks a rule: nothing is written (the transaction is the caller's to roll back).
    """
    cols = [c for c in ("hh_id", "segment", "archived", "eligible", "product", "grade", "granted_amount",
                        "guarantee", "job_level", "credit_legacy", "version") if c in present]
    ids = [_s(h) for h in ratings["hh_id"]] if "hh_id" in ratings.columns else []
    placeholders = ",".join("?" for _ in ids) or "NULL"
    current = tx.read("households", where=f"hh_id IN ({placeholders})", params=ids)[cols]
    if seen is not None:
        now = dict(zip(current["hh_id"].astype(str),
                       pd.to_numeric(current.get("version", pd.Series(0, index=current.index)),
                                     errors="coerce").fillna(0).astype(int), strict=True))
        stale = [h for h in dict.fromkeys(ids) if h in now and (h not in seen or int(seen[h]) != now[h])]
        if stale:
            raise StaleEditError(ids=stale)
    new, problems = record_ratings(current.drop(columns=["version"], errors="ignore"), ratings, rules=rules)
    if len(problems):
        first = "；".join(f"第 {r.row} 行（{r.hh_id}）{r.problem}" for r in problems.head(5).itertuples())
        raise ValidationError(f"评级表有 {len(problems)} 处问题，未保存任何内容：{first}",
                              fix="按提示修正评级表后重新提交")
    if within_authority:
        amounts = pd.to_numeric(new["granted_amount"], errors="coerce").fillna(0.0)
        over = [(h, p, a) for h, p, a in zip(new["hh_id"], new["product"], amounts, strict=True)
                if a > 0 and _s(p) and a > rules.approval_limit(_s(p))]
        if over:
            h, p, a = over[0]
            limit = rules.approval_limit(_s(p))
            raise ValidationError(
                f"{len(over)} 户的额度超过网点审批权限（如 {h}：{p} {a:,.0f} 元，权限 {limit:,.0f} 元），未保存任何内容",
                column="granted_amount",
                fix="超过审批权限的授信须在评定会上由评定小组表决，再上报联社贷审会审批（本页“评定会”部分）")
    if only_lower:
        was_amounts = pd.to_numeric(current["granted_amount"] if "granted_amount" in current else pd.Series(
            0.0, index=current.index), errors="coerce").fillna(0.0)
        was = dict(zip(current["hh_id"].astype(str), was_amounts, strict=True))
        amounts = pd.to_numeric(new["granted_amount"], errors="coerce").fillna(0.0)
        up = [(h, was.get(str(h), 0.0), a) for h, a in zip(new["hh_id"], amounts, strict=True)
              if a > was.get(str(h), 0.0) + 1e-6]
        if up:
            h, old_amount, a = up[0]
            raise ValidationError(
                f"{len(up)} 户是新增授信或调高额度（如 {h}：{old_amount:,.0f} → {a:,.0f} 元），直接评级只能调低或取消授信，"
                "未保存任何内容", column="granted_amount",
                fix="新增或调高授信须在评定会上由评定小组表决（本页“评定会”部分）；直接评级只用于调低、取消授信或修改等级、担保方式")
    version_sql = ", version = COALESCE(version, 0) + 1" if "version" in present else ""
    version_sql += ", job_level = ?" if "job_level" in present else ""
    version_sql += ", credit_legacy = NULL, credit_note = NULL" if "credit_legacy" in present else ""
    changed = []
    old = current.set_index(current["hh_id"].astype(str))
    for rec in new.to_dict("records"):
        tx.execute(
            "UPDATE households SET product = ?, grade = ?, granted_amount = ?, guarantee = ?, eligible = ?"
            f"{version_sql} WHERE hh_id = ?",
            (rec["product"], rec["grade"], float(rec["granted_amount"]), rec["guarantee"],
             1 if rec["eligible"] else 0, *([rec["job_level"]] if "job_level" in present else []),
             rec["hh_id"]),
        )
        was = old.loc[str(rec["hh_id"])]
        entry = {"hh_id": str(rec["hh_id"]), "before": {c: _plain_value(was.get(c)) for c in _AUDITED},
                 "after": {c: _plain_value(rec.get(c)) for c in _AUDITED}}
        if _plain_value(was.get("job_level")) != _plain_value(rec.get("job_level")):
            entry["job_level"] = {"before": _plain_value(was.get("job_level")),
                                  "after": _plain_value(rec.get("job_level"))}
        changed.append(entry)
    return changed, int((new["granted_amount"] > 0).sum())


WHITELIST_HEADERS = {"hh_id": "户号", "head_name": "户主", "id_no": "身份证号", "phone": "电话", "segment": "客户类型",
                     "group_code": "组代码", "product": "产品", "grade": "等级", "granted_amount": "授信额度（元）",
                     "guarantee": "担保方式", "signed": "已签约"}
"""Column headings of the whitelist table and files."""


def whitelist_bytes(white: pd.DataFrame, *, fmt: str = "csv") -> bytes:
    """A :func:`whitelist` as file bytes (CSV in UTF-8 with BOM for Excel, or xlsx), Chinese headings; text
    cells are neutralised so a spreadsheet cannot run them as formulas.

    Examples
    --------
    >>> w = pd.DataFrame({"hh_id": ["a"], "head_name": ["=HYPERLINK(1)"], "granted_amount": [60000.0]})
    >>> whitelist_bytes(w).decode("utf-8-sig").splitlines()
    ['户号,户主,授信额度（元）', "a,'=HYPERLINK(1),60000.0"]
    """

    from grids.text import spreadsheet_cell

    out = white.rename(columns=WHITELIST_HEADERS).copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(spreadsheet_cell)
    if fmt == "csv":
        return out.to_csv(index=False).encode("utf-8-sig")
    if fmt != "xlsx":
        raise ValidationError(f"不支持的格式 {fmt}", fix="csv 或 xlsx")
    from grids.export import frame_xlsx

    return frame_xlsx(white.rename(columns=WHITELIST_HEADERS), title="白名单")
