"""The structured survey (农户信息采集): validation, versions, the to-do rule and the coverage denominator.

A survey is a visit with structured data: household members and labour, farmland and grassland (亩), livestock
by kind (头/只), machinery, housing, main and annual income, liabilities (and those at other banks), the credit
need (amount, purpose, product), the entity type (:data:`grids.model.ENTITY_TYPES`; for 公职人员 the 职务级别 and
whether the salary is paid through the 农信社, 代发), the guarantees the household can offer and its consent to
a credit-bureau inquiry. Every save is a new row of the ``surveys`` layer with the household's next ``version``;
the latest version wins (:func:`latest_surveys`). Income, liabilities and the consent are personal data, masked
like ID numbers (:func:`grids.privacy.mask_survey_frame`).

Outcomes (:data:`grids.model.SURVEY_OUTCOMES`) and what each requires:

============  ==============================================================================================
outcome       required
============  ==============================================================================================
已建档        entity type, members, labour, main income source, annual income, consent answered;
              for 公职人员 also 职务级别 and 代发; archives the household (like a visit 已建档)
补充资料      a note saying what is still missing
未遇, 拒绝    nothing more
已迁出        nothing more; the household leaves the to-do list
不符合条件    a reason; the household leaves the to-do list
============  ==============================================================================================

Whatever the outcome, every value given must be in range (:data:`FIELDS`), and a credit need with an amount
needs its purpose and product.

The to-do list and the coverage denominator
-------------------------------------------
A household whose **latest** survey says 已迁出 or 不符合条件 (:data:`grids.model.CLOSED_OUTCOMES`) is *closed*:
nobody owes it a visit, so it leaves the to-do list (:func:`to_do`, :func:`grids.coverage.uncovered_households`).
The coverage denominator (建档率 = 已建档 / 应建档户数) is

    应建档户数 = registered households − closed households that are not archived,

so a household that already has its file stays counted (in both numerator and denominator: the rate never
exceeds 100 %), and one that moved away or does not qualify before it got a file no longer lowers the rate.
A later survey with another outcome reopens the household. :func:`grids.coverage.funnel` reports the closed
count as ``closed`` when given the closed ids (:func:`closed_ids`); with no surveys nothing moves.

Examples
--------
>>> surveys = pd.DataFrame({"hh_id": ["a", "a", "b"], "version": [1, 2, 1],
...                         "outcome": ["未遇", "已迁出", "已建档"]})
>>> latest_surveys(surveys)[["hh_id", "version", "outcome"]].values.tolist()
[['a', 2, '已迁出'], ['b', 1, '已建档']]
>>> sorted(closed_ids(surveys))
['a']
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ValidationError
from grids.model import (
    CLOSED_OUTCOMES,
    ENTITY_TYPES,
    GUARANTEE_OPTIONS,
    HOUSING_KINDS,
    INCOME_SOURCES,
    LAYERS,
    POST_LEVELS,
    PRODUCTS,
    SURVEY_OUTCOMES,
)
from grids.privacy import MASKED
from grids.text import normalize_id, normalize_text, parse_flag, strip_controls

__all__ = [
    "FIELDS",
    "READ_ONLY",
    "SurveyProblem",
    "closed_ids",
    "empty_surveys",
    "export_frame",
    "import_frame",
    "latest_surveys",
    "may_record",
    "next_versions",
    "read_surveys",
    "survey_problems",
    "to_do",
    "validate_survey",
    "write_surveys",
]

LAYER = "surveys"
COLUMNS: dict[str, str] = LAYERS[LAYER].columns


@dataclass(frozen=True)
class Field:
    """One survey field: its Excel header, kind and allowed values or range."""

    label: str
    kind: str  # int, real, text, enum, multi, bool, date
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 200


FIELDS: dict[str, Field] = {
    "hh_id": Field("户号", "id"),
    "surveyed_at": Field("采集日期", "date"),
    "outcome": Field("结果", "enum", choices=SURVEY_OUTCOMES),
    "reason": Field("原因", "text"),
    "entity_type": Field("主体类型", "enum", choices=ENTITY_TYPES),
    "members": Field("家庭人口", "int", 1, 30),
    "labour": Field("劳动力", "int", 0, 30),
    "farmland_mu": Field("耕地（亩）", "real", 0, 100_000),
    "grassland_mu": Field("草场（亩）", "real", 0, 1_000_000),
    "cattle": Field("牛（头）", "int", 0, 100_000),
    "sheep": Field("羊（只）", "int", 0, 100_000),
    "pigs": Field("猪（头）", "int", 0, 100_000),
    "other_livestock": Field("其他牲畜（头/只）", "int", 0, 100_000),
    "machinery": Field("农机具", "text"),
    "machinery_value": Field("农机具价值（元）", "real", 0, 100_000_000),
    "housing": Field("住房", "enum", choices=HOUSING_KINDS),
    "housing_area": Field("住房面积（平方米）", "real", 0, 10_000),
    "income_source": Field("主要收入来源", "enum", choices=INCOME_SOURCES),
    "annual_income": Field("家庭年收入（元）", "real", 0, 100_000_000),
    "liabilities": Field("负债合计（元）", "real", 0, 1_000_000_000),
    "liabilities_other_banks": Field("其中他行负债（元）", "real", 0, 1_000_000_000),
    "need_amount": Field("用信需求金额（元）", "real", 0, 10_000_000),
    "need_purpose": Field("需求用途", "text"),
    "need_product": Field("意向产品", "enum", choices=PRODUCTS),
    "post_level": Field("职务级别", "enum", choices=POST_LEVELS),
    "salary_via_rcc": Field("工资由农信社代发", "bool"),
    "guarantee_options": Field("可提供担保", "multi", choices=GUARANTEE_OPTIONS),
    "credit_consent": Field("同意查询征信", "bool"),
    "note": Field("备注", "text", max_length=1000),
}
"""The fields a survey takes (what a form or a workbook row gives), keyed by column; ``label`` is the Excel
header. Ranges are inclusive; amounts are in yuan."""

READ_ONLY: tuple[str, ...] = ("survey_id", "version", "staff_id", "branch_id", "recorded_at", "recorded_by")
"""Columns the library fills in; a caller that sends them is refused (a form or file cannot choose them)."""

EXPORT_LABELS: dict[str, str] = {
    "survey_id": "采集编号", "version": "版本", "staff_id": "客户经理编号", "branch_id": "网点编号",
    "recorded_at": "录入时间", "recorded_by": "录入账号", **{k: f.label for k, f in FIELDS.items()},
}
"""Column → Chinese header of a surveys workbook (export and import use the same headers)."""

_REQUIRED: dict[str, tuple[str, ...]] = {
    "已建档": ("entity_type", "members", "labour", "income_source", "annual_income", "credit_consent"),
    "补充资料": ("note",),
    "不符合条件": ("reason",),
}
_FIX_REQUIRED: dict[str, str] = {
    "reason": "写明不符合条件的原因，例如：无劳动能力且无稳定收入、非本辖区户籍",
    "note": "在备注里写明还缺哪些资料，下次补齐",
}
_TRUE = {"是", "有", "同意", "√", "y", "yes", "true", "1", "代发"}
_FALSE = {"否", "无", "不同意", "×", "n", "no", "false", "0", "非代发"}
_EARLIEST = pd.Timestamp("2000-01-01")
_MULTI_SEP = ("、", ",", "，", ";", "；", "/", " ")


class SurveyProblem(ValidationError):
    """A survey that breaks a rule; ``problems`` lists every (column, reason, fix) found."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        col, reason, fix = problems[0]
        more = f"（另有 {len(problems) - 1} 处问题）" if len(problems) > 1 else ""
        super().__init__(reason + more, column=EXPORT_LABELS.get(col, col), fix=fix)
        self.problems = problems


def may_record(account: Any) -> bool:
    """True when ``account`` may record surveys: customer managers (their grids), branch managers (their
    branch) and administrators (the county); leadership and planners only read."""
    return bool(account.can("record_visit") or (account.can("read_branch") and account.can("rate")))


# --------------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating) and math.isnan(value):
        return True
    if value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, str) and not normalize_text(value)


def _number(value: Any, col: str, f: Field, problems: list[tuple[str, str, str]]) -> float | int | None:
    label = f.label
    if isinstance(value, bool | np.bool_):
        problems.append((col, f"{label}“{value}”不是数字", "填写数字"))
        return None
    if isinstance(value, str):
        text = normalize_text(value).replace(",", "").replace("，", "")
        for unit in ("万元", "元", "亩", "头", "只", "人", "平方米", "㎡"):
            text = text.removesuffix(unit)
        try:
            number = float(text)
        except ValueError:
            problems.append((col, f"{label}“{value}”不是数字", f"只填写数字{_unit_hint(label)}"))
            return None
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append((col, f"{label}“{value}”不是数字", f"只填写数字{_unit_hint(label)}"))
            return None
    if not math.isfinite(number):
        problems.append((col, f"{label}“{value}”不是有限的数字", "填写数字"))
        return None
    if f.kind == "int":
        if number != int(number):
            problems.append((col, f"{label} {value} 不是整数", "填写整数"))
            return None
        number = int(number)
    if (f.low is not None and number < f.low) or (f.high is not None and number > f.high):
        problems.append((col, f"{label} {_shown(number)} 超出合理范围 {_shown(f.low)}–{_shown(f.high)}",
                         f"核对后重新填写{_unit_hint(label)}"))
        return None
    return number


def _unit_hint(label: str) -> str:
    return f"（单位见列名：{label}）" if "（" in label else ""


def _shown(x: float | None) -> str:
    if x is None:
        return ""
    return f"{int(x):,}" if float(x) == int(x) else f"{x:,.2f}"


def _boolean(value: Any, col: str, f: Field, problems: list[tuple[str, str, str]]) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and int(value) in (0, 1):
        return bool(value)
    flag = parse_flag(value, true=_TRUE, false=_FALSE)
    if flag is not None:
        return flag
    problems.append((col, f"{f.label}“{value}”无法识别", "填写 是 或 否"))
    return None


def _date(value: Any, col: str, f: Field, problems: list[tuple[str, str, str]], today: pd.Timestamp
          ) -> pd.Timestamp | None:
    try:
        day = pd.Timestamp(normalize_text(value) if isinstance(value, str) else value)
    except (TypeError, ValueError):
        problems.append((col, f"{f.label}“{value}”不是日期", "写成 2026-03-05 这样的日期"))
        return None
    if pd.isna(day):
        problems.append((col, f"{f.label}“{value}”不是日期", "写成 2026-03-05 这样的日期"))
        return None
    if day.tzinfo is not None:
        day = day.tz_convert(None)
    if day.normalize() > today:
        problems.append((col, f"{f.label} {day:%Y-%m-%d} 在未来", "填写实际采集的日期"))
        return None
    if day < _EARLIEST:
        problems.append((col, f"{f.label} {day:%Y-%m-%d} 早于 2000 年", "填写实际采集的日期"))
        return None
    return day


def survey_problems(record: Mapping[str, Any], *, today: Any = None) -> tuple[dict[str, Any],
                                                                             list[tuple[str, str, str]]]:
    """Check one survey and type its values; the cleaned record and every problem found.

    Parameters
    ----------
    record : mapping
        Column → value (:data:`FIELDS`); text as typed, numbers as numbers or text (``"1,200"``, ``"35 亩"``),
        flags as ``是/否`` or booleans, the date as a date or ``2026-03-05``.
    today : date-like, optional
        The day a survey may not be after (default: today).

    Returns
    -------
    (dict, list)
        The record with typed values (blank values ``None``, every column of :data:`FIELDS`), and the
        problems as (column, reason, fix) tuples in Chinese; no problems means the survey may be saved.

    Examples
    --------
    >>> clean, problems = survey_problems({"hh_id": "H1", "surveyed_at": "2026-03-05", "outcome": "不符合条件"},
    ...                                   today="2026-03-06")
    >>> problems
    [('reason', '结果为“不符合条件”时必须写明原因', '写明不符合条件的原因，例如：无劳动能力且无稳定收入、非本辖区户籍')]
    """
    today_ts = pd.Timestamp(today).normalize() if today is not None else pd.Timestamp.now().normalize()
    problems: list[tuple[str, str, str]] = []
    unknown = [k for k in record if k not in FIELDS]
    for k in unknown:
        if k in READ_ONLY:
            problems.append((k, f"{EXPORT_LABELS.get(k, k)}由系统填写，不能在采集表里修改", "删掉这一项后重新提交"))
        else:
            problems.append((str(k), f"采集表没有“{k}”这一项", f"可填写的项：{'、'.join(f.label for f in FIELDS.values())}"))
    out: dict[str, Any] = {}
    for col, f in FIELDS.items():
        value = record.get(col)
        if isinstance(value, str):
            value = strip_controls(value)
        if _blank(value):
            out[col] = None
            continue
        if isinstance(value, str) and value.strip() == MASKED:
            problems.append((col, f"{f.label}是脱敏后的“{MASKED}”，不是原值",
                             "清空这一格（不修改），或用 --unmask 导出原值后再修改导入"))
            out[col] = None
            continue
        if f.kind == "id":
            out[col] = normalize_id(value)
        elif f.kind in ("int", "real"):
            out[col] = _number(value, col, f, problems)
        elif f.kind == "bool":
            out[col] = _boolean(value, col, f, problems)
        elif f.kind == "date":
            out[col] = _date(value, col, f, problems, today_ts)
        elif f.kind == "enum":
            text = normalize_text(value)
            if text not in f.choices:
                problems.append((col, f"{f.label}“{text}”不在可选范围内", f"可选：{'、'.join(f.choices)}"))
                out[col] = None
            else:
                out[col] = text
        elif f.kind == "multi":
            parts = _split(normalize_text(value))
            bad = [p for p in parts if p not in f.choices]
            if bad:
                problems.append((col, f"{f.label}“{'、'.join(bad)}”不在可选范围内",
                                 f"可选（可多选，用、分隔）：{'、'.join(f.choices)}"))
                out[col] = None
            else:
                out[col] = "、".join(dict.fromkeys(parts))
        else:
            text = normalize_text(value)
            if len(text) > f.max_length:
                problems.append((col, f"{f.label}超过 {f.max_length} 个字", f"缩短到 {f.max_length} 个字以内"))
            out[col] = text[: f.max_length]
    for col in ("hh_id", "surveyed_at", "outcome"):
        if out[col] is None and not any(p[0] == col for p in problems):
            problems.append((col, f"缺少{FIELDS[col].label}", _FIX_REQUIRED.get(col, f"填写{FIELDS[col].label}")))
    outcome = out["outcome"]
    for col in _REQUIRED.get(outcome or "", ()):
        if out[col] is None and not any(p[0] == col for p in problems):
            label = FIELDS[col].label
            reason = (f"结果为“不符合条件”时必须写明{label}" if outcome == "不符合条件"
                      else f"结果为“{outcome}”时必须填写{label}")
            problems.append((col, reason, _FIX_REQUIRED.get(col, f"填写{label}")))
    _cross_checks(out, outcome, problems)
    return out, problems


def _split(text: str) -> list[str]:
    for sep in _MULTI_SEP[1:]:
        text = text.replace(sep, _MULTI_SEP[0])
    return [p for p in text.split(_MULTI_SEP[0]) if p]


def _cross_checks(out: dict[str, Any], outcome: str | None, problems: list[tuple[str, str, str]]) -> None:
    """Rules between fields: labour within members, other banks within liabilities, 公职人员 fields."""
    if out["members"] is not None and out["labour"] is not None and out["labour"] > out["members"]:
        problems.append(("labour", f"劳动力 {out['labour']} 人多于家庭人口 {out['members']} 人",
                         "劳动力不能超过家庭人口，核对后重新填写"))
    if out["liabilities_other_banks"] is not None and (
            out["liabilities"] is None or out["liabilities_other_banks"] > out["liabilities"]):
        problems.append(("liabilities_other_banks", "其中他行负债多于负债合计",
                         "负债合计应包含他行负债：填写负债合计，且不小于他行负债"))
    civil = out["entity_type"] == "公职人员"
    if not civil:
        for col in ("post_level", "salary_via_rcc"):
            if out[col] is not None:
                problems.append((col, f"{FIELDS[col].label}只适用于公职人员（本户主体类型："
                                      f"{out['entity_type'] or '未填'}）",
                                 f"主体类型改为公职人员，或清空{FIELDS[col].label}"))
    elif outcome == "已建档":
        for col in ("post_level", "salary_via_rcc"):
            if out[col] is None and not any(p[0] == col for p in problems):
                problems.append((col, f"公职人员建档必须填写{FIELDS[col].label}",
                                 f"填写{FIELDS[col].label}（福薪卡额度和利率依此确定）"))
    if out["need_amount"] and outcome in ("已建档", "补充资料"):
        for col in ("need_purpose", "need_product"):
            if out[col] is None and not any(p[0] == col for p in problems):
                problems.append((col, f"填写了用信需求金额，缺少{FIELDS[col].label}", f"填写{FIELDS[col].label}"))


def validate_survey(record: Mapping[str, Any], *, today: Any = None) -> dict[str, Any]:
    """The typed record of one valid survey, or :class:`SurveyProblem` (a ValidationError) naming every problem.

    Examples
    --------
    >>> r = validate_survey({"hh_id": "h1", "surveyed_at": "2026-03-05", "outcome": "已建档",
    ...                      "entity_type": "普通农牧户", "members": "4", "labour": 2, "income_source": "养殖",
    ...                      "annual_income": "80,000", "credit_consent": "是", "cattle": "12头"},
    ...                     today="2026-03-06")
    >>> r["hh_id"], r["members"], r["annual_income"], r["credit_consent"], r["cattle"]
    ('H1', 4, 80000.0, True, 12)
    >>> validate_survey({"hh_id": "H1", "surveyed_at": "2026-03-05", "outcome": "未遇", "labour": 40},
    ...                 today="2026-03-06")
    Traceback (most recent call last):
    ...
    grids.survey.SurveyProblem: 列 “劳动力”：劳动力 40 超出合理范围 0–30。修正方法：核对后重新填写
    """
    out, problems = survey_problems(record, today=today)
    if problems:
        raise SurveyProblem(problems)
    return out


# --------------------------------------------------------------------------------------------------------
# reading: versions, latest, closed households, the to-do rule
# --------------------------------------------------------------------------------------------------------


def empty_surveys() -> pd.DataFrame:
    """An empty frame with the ``surveys`` layer's columns."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})


def read_surveys(ws: Any, *, hh_ids: Collection[str] | None = None) -> pd.DataFrame:
    """Every survey row of the workspace (an empty frame when the workspace has no ``surveys`` layer yet:
    the layer is made by its first save).

    ``hh_ids`` limits the rows to those households.
    """
    if LAYER not in ws.layers():
        return empty_surveys()
    frame: pd.DataFrame = ws.read(LAYER)
    if hh_ids is not None:
        frame = frame[frame["hh_id"].astype(str).isin(set(map(str, hh_ids)))]
    return frame


def latest_surveys(surveys: pd.DataFrame) -> pd.DataFrame:
    """One row per household: its survey with the highest ``version`` (latest wins), sorted by ``hh_id``."""
    if not len(surveys):
        return surveys.copy()
    v = pd.to_numeric(surveys["version"], errors="coerce").fillna(0)
    order = surveys.assign(_v=v.to_numpy(), _pos=np.arange(len(surveys)))
    order = order.sort_values(["hh_id", "_v", "_pos"], kind="stable")
    return order.drop_duplicates("hh_id", keep="last").drop(columns=["_v", "_pos"]).reset_index(drop=True)


def closed_ids(surveys: pd.DataFrame) -> set[str]:
    """The households whose latest survey says 已迁出 or 不符合条件 (:data:`grids.model.CLOSED_OUTCOMES`)."""
    latest = latest_surveys(surveys)
    if not len(latest):
        return set()
    return set(latest.loc[latest["outcome"].isin(CLOSED_OUTCOMES), "hh_id"].astype(str))


def to_do(households: pd.DataFrame, closed: Collection[str]) -> np.ndarray:
    """Which households are still to be visited: not archived (未建档) and not closed (see module docstring).

    Examples
    --------
    >>> hh = pd.DataFrame({"hh_id": ["a", "b", "c"], "archived": [False, False, True]})
    >>> to_do(hh, {"b"}).tolist()
    [True, False, False]
    """
    archived = households["archived"] if "archived" in households else pd.Series(False, index=households.index)
    arch = archived.astype("boolean").fillna(False).to_numpy(dtype=bool)
    shut = households["hh_id"].astype(str).isin(set(closed)).to_numpy() if len(closed) else np.zeros(
        len(households), dtype=bool)
    return ~arch & ~shut


def next_versions(existing: pd.DataFrame, hh_ids: Iterable[str]) -> dict[str, int]:
    """``hh_id`` → the version its next survey gets (1 + the highest stored; 1 for the first)."""
    wanted = list(dict.fromkeys(map(str, hh_ids)))
    if not len(existing):
        return {h: 1 for h in wanted}
    top = pd.to_numeric(existing["version"], errors="coerce").fillna(0).groupby(existing["hh_id"].astype(str)).max()
    return {h: int(top.get(h, 0)) + 1 for h in wanted}


# --------------------------------------------------------------------------------------------------------
# writing (callers decide scope: grids.scope.ScopedWorkspace.record_survey / import_surveys)
# --------------------------------------------------------------------------------------------------------


def write_surveys(ws: Any, records: list[dict[str, Any]], *, actor: str, action: str,
                  seen: Mapping[str, int] | None = None, extra_note: Mapping[str, Any] | None = None) -> list[str]:
    """Save validated surveys in one transaction (all or none); returns their ``survey_id``.

    Each record is a :func:`validate_survey` result plus ``staff_id`` and ``branch_id``. Versions continue
    each household's sequence; a survey 已建档 archives its household (its row version moves, as a visit's
    does). The audit row lists each survey (id, household, version, outcome, staff) and no survey values.

    Parameters
    ----------
    seen : mapping, optional
        ``hh_id`` → the survey version the user saw (0: none); a household surveyed since is refused
        (:class:`~grids.errors.StaleEditError`) and nothing is written.
    """
    from grids.errors import StaleEditError

    if not records:
        return []
    now = pd.Timestamp.now(tz="UTC").tz_convert(None)
    ids: list[str] = []
    with ws.transaction(actor=actor, action=action) as tx:
        hh_ids = [r["hh_id"] for r in records]
        existing = _tx_surveys(tx, hh_ids)
        versions = next_versions(existing, hh_ids)
        if seen is not None:
            stale = [h for h, v in seen.items() if versions.get(str(h), 1) - 1 != int(v)]
            if stale:
                raise StaleEditError(ids=stale)
        rows = []
        notes = []
        for r in records:
            h = r["hh_id"]
            version = versions[h]
            versions[h] += 1
            sid = f"SV-{h}-{version}"
            ids.append(sid)
            rows.append({**{c: None for c in COLUMNS}, **{k: r.get(k) for k in FIELDS},
                         "survey_id": sid, "version": version, "staff_id": r.get("staff_id") or "",
                         "branch_id": r.get("branch_id") or "", "recorded_at": now, "recorded_by": actor})
            notes.append({"survey_id": sid, "hh_id": h, "version": version, "outcome": r["outcome"],
                          "staff_id": r.get("staff_id") or ""})
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        tx.append(LAYER, _typed(frame))
        archive = sorted({r["hh_id"] for r in records if r["outcome"] == "已建档"})
        archived_now: list[str] = []
        for chunk in (archive[i:i + 500] for i in range(0, len(archive), 500)):
            marks = ", ".join("?" for _ in chunk)
            before = tx.read("households", where=f"hh_id IN ({marks})", params=chunk)
            done = before["archived"].astype("boolean").fillna(False).to_numpy(dtype=bool)
            todo = before.loc[~done, "hh_id"].astype(str).tolist()
            if todo:
                marks = ", ".join("?" for _ in todo)
                tx.execute(f"UPDATE households SET archived = ?, version = COALESCE(version, 0) + 1 "
                           f"WHERE hh_id IN ({marks})", (True, *todo))
                archived_now += todo
        tx.note(LAYER, {"op": "survey", "surveys": notes, **(dict(extra_note) if extra_note else {})})
        if archived_now:
            tx.note("households", {"op": "archive", "hh_ids": archived_now[:500], "rows": len(archived_now)})
    return ids


def _tx_surveys(tx: Any, hh_ids: list[str]) -> pd.DataFrame:
    """The stored survey rows of ``hh_ids`` inside ``tx`` (the layer is created when missing)."""
    tx._layer_schema(LAYER)  # creates the declared layer in a workspace made before surveys existed
    wanted = sorted(set(hh_ids))
    parts = []
    for chunk in (wanted[i:i + 500] for i in range(0, len(wanted), 500)):
        marks = ", ".join("?" for _ in chunk)
        parts.append(tx.read(LAYER, where=f"hh_id IN ({marks})", params=chunk))
    return pd.concat(parts, ignore_index=True) if parts else empty_surveys()


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each column in the layer's storage type (so SQLite stores numbers and flags as such)."""
    out = frame.copy()
    for col, sql in COLUMNS.items():
        if sql == "INTEGER":
            out[col] = pd.array([None if _blank(v) else int(v) for v in out[col]], dtype="Int64")
        elif sql == "REAL":
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
        elif sql == "BOOLEAN":
            out[col] = pd.array([None if _blank(v) else bool(v) for v in out[col]], dtype="boolean")
        elif sql == "DATETIME":
            out[col] = pd.to_datetime(out[col])
        else:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


# --------------------------------------------------------------------------------------------------------
# Excel: the workbook's rows ⇄ survey records
# --------------------------------------------------------------------------------------------------------


def import_frame(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A workbook's table with its Chinese headers (:data:`EXPORT_LABELS`, or the column names themselves)
    renamed to columns; the read-only columns of an export (采集编号, 版本…) dropped; and the notes (what was
    ignored) in Chinese."""
    by_label = {normalize_text(v): k for k, v in EXPORT_LABELS.items()} | {k: k for k in EXPORT_LABELS}
    rename, notes, ignored = {}, [], []
    for c in table.columns:
        key = by_label.get(normalize_text(c))
        if key is None:
            ignored.append(str(c))
        else:
            rename[c] = key
    out = table.rename(columns=rename)
    dropped = [EXPORT_LABELS[c] for c in READ_ONLY if c in out.columns and c != "staff_id"]
    out = out.drop(columns=[c for c in READ_ONLY if c in out.columns and c != "staff_id"])
    if dropped:
        notes.append(f"忽略系统填写的列：{'、'.join(dropped)}（导入的每一行都保存为该户的新版本）")
    if ignored:
        notes.append(f"忽略不认识的列：{'、'.join(ignored)}")
    return out[[c for c in out.columns if c in FIELDS or c == "staff_id"]], notes


def export_frame(surveys: pd.DataFrame, *, latest: bool = True) -> pd.DataFrame:
    """Survey rows for a workbook: Chinese headers (:data:`EXPORT_LABELS`), flags as 是/否, dates as text.

    Mask first (:func:`grids.privacy.mask_survey_frame`) unless the caller may and did ask for the full values.
    """
    rows = latest_surveys(surveys) if latest else surveys.reset_index(drop=True)
    cols = [c for c in EXPORT_LABELS if c in rows.columns]
    out = rows[cols].astype(object).copy()
    for col in cols:
        kind = COLUMNS.get(col)
        if kind == "BOOLEAN":
            out[col] = [v if isinstance(v, str) else (None if _blank(v) else ("是" if v else "否")) for v in out[col]]
        elif kind == "DATETIME":
            fmt = "%Y-%m-%d" if col == "surveyed_at" else "%Y-%m-%d %H:%M:%S"
            out[col] = [None if _blank(v) else pd.Timestamp(v).strftime(fmt) for v in out[col]]
    out.columns = [EXPORT_LABELS[c] for c in cols]
    return out


def rejects_path_for(source: Path) -> Path:
    """Where a surveys import writes its rejects by default: ``<name>.rejects.csv`` beside the file."""
    return source.with_name(source.stem + ".rejects.csv")


def today() -> dt.date:
    """Today's date (local), the latest day a survey may carry."""
    return dt.date.today()
