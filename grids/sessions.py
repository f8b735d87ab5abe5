"""集中授信评定会 (rating sessions): a panel of 5–7 rates a village's households collectively, by vote.

A branch forms a 资信等级评定小组 of 5–7 named members (:data:`grids.model.PANEL_ROLES`: at least one 村组干部 and
one 村民代表, the 信用社主任 and the customer manager). Each member present votes 同意/反对/弃权 on each household;
a majority of the members *present* carries (同意 > present / 2), a tie or less returns it for re-rating
(退回重评). A carried amount within the branch's approval authority (:meth:`grids.credit_rules.Rules.approval_limit`)
is granted at once, through the rating path (:func:`grids.credit.apply_ratings`: the product rules are checked);
above it the decision waits, with the panel's minutes, in the review queue (待贷审会审批) until a
``credit_committee`` account approves (:func:`approve`: granted, product rules checked again) or returns it
(:func:`return_`: 贷审会退回). Households change only when granted, so the whitelist
(:func:`grids.credit.whitelist`) lists only what was granted.

Every rule is decided here, on server-side ids: the village and every household must be in the account's scope
(:class:`grids.scope.ScopedWorkspace`); a session is one transaction whose audit row lists, per household, the
grade, amount and guarantee before and after, the votes and the session id.

The tables are ``rating_sessions``, ``rating_panel`` and ``rating_decisions`` (:data:`grids.model.LAYERS`).

Examples
--------
>>> panel = check_panel([{"name": "张", "role": "村组干部"}, {"name": "李", "role": "村民代表"},
...                      {"name": "王", "role": "信用社主任"}, {"name": "赵", "role": "客户经理"}])
Traceback (most recent call last):
...
grids.errors.ValidationError: 列 “name”：评定小组需要 5–7 名成员，现有 4 名。修正方法：评定小组由村组干部、村民代表、信用社主任和客户经理共 5–7 人组成
>>> tally({"张": "同意", "李": "同意", "王": "同意", "赵": "反对", "钱": "反对", "孙": "反对"})
(3, 3, 0, False)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from grids import credit, credit_rules, products
from grids.errors import PermissionDeniedError, StaleEditError, ValidationError
from grids.model import DECISION_OUTCOMES, PANEL_ROLES, VOTE_CHOICES
from grids.text import FALSE_WORDS, TRUE_WORDS, normalize_text, parse_flag

__all__ = ["DECISIONS_LAYER", "GRANTED", "MAX_PANEL", "MIN_PANEL", "PANEL_LAYER", "PENDING", "RETURNED",
           "REVIEW_RETURNED", "SESSIONS_LAYER", "SessionResult", "approve", "check_panel", "decisions_table",
           "minutes_text", "record_session", "return_", "review_queue", "tally"]

SESSIONS_LAYER, PANEL_LAYER, DECISIONS_LAYER = "rating_sessions", "rating_panel", "rating_decisions"
MIN_PANEL, MAX_PANEL = 5, 7
MAX_PLACE, MAX_MINUTES = 60, 2000
"""Longest 地点 and 会议纪要 (characters), as on the page."""
EARLIEST_SESSION = pd.Timestamp("2000-01-01")
"""No session is dated before this day (nor in the future)."""
GRANTED, PENDING, RETURNED, REVIEW_RETURNED = DECISION_OUTCOMES
"""已授信, 待贷审会审批, 退回重评, 贷审会退回."""
_DECISION_COLS = ("decision_id", "session_id", "hh_id", "product", "grade", "amount", "guarantee", "votes_for",
                  "votes_against", "votes_abstain", "votes", "outcome", "branch_id", "approval_limit",
                  "hh_version", "reviewed_by", "reviewed_at", "review_note")


def _s(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value).strip()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts keyed by column name (our frames' columns are strings)."""
    return cast("list[dict[str, Any]]", frame.to_dict("records"))


def _row_dict(row: pd.Series) -> dict[str, Any]:
    """One row (a Series indexed by column name) as a dict keyed by column name."""
    return cast("dict[str, Any]", row.to_dict())


PRESENT_WORDS = TRUE_WORDS | {"到会", "出席"}
"""Words read as 到会 in a panel's 是否到会 column (:data:`grids.text.TRUE_WORDS` plus attendance words)."""
ABSENT_WORDS = FALSE_WORDS | {"缺席", "未到"}
"""Words read as 缺席."""


def _bool(value: Any, default: bool = True) -> bool:
    """A member's 是否到会 cell: blank is ``default``; words are read by :func:`grids.text.parse_flag`."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return default
    if not isinstance(value, str):
        return bool(value)
    if not normalize_text(value):
        return default
    flag = parse_flag(value, true=PRESENT_WORDS, false=ABSENT_WORDS)
    if flag is None:
        raise ValidationError(f"是否到会 “{value.strip()}” 无法识别", column="present", fix="填写 是 或 否")
    return flag


def check_panel(panel: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The panel as a table (``seq``, ``name``, ``role``, ``present``), or the first rule it breaks.

    Parameters
    ----------
    panel : DataFrame or list of mappings
        ``name``, ``role`` (one of :data:`grids.model.PANEL_ROLES`), ``present`` (default true).

    Returns
    -------
    DataFrame
        One row per member, ``seq`` from 1.

    Raises
    ------
    ValidationError
        Fewer than 5 or more than 7 members; a member without a name, a repeated name, an unknown role; a required
        role missing (the message names which); nobody present.
    """
    rows = _records(panel) if isinstance(panel, pd.DataFrame) else [dict(r) for r in panel]
    rows = [r for r in rows if _s(r.get("name")) or _s(r.get("role"))]  # blank editor rows
    if not MIN_PANEL <= len(rows) <= MAX_PANEL:
        raise ValidationError(f"评定小组需要 {MIN_PANEL}–{MAX_PANEL} 名成员，现有 {len(rows)} 名", column="name",
                              fix="评定小组由村组干部、村民代表、信用社主任和客户经理共 5–7 人组成")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for seq, r in enumerate(rows, start=1):
        name, role = normalize_text(r.get("name")), _s(r.get("role"))
        if not name:
            raise ValidationError(f"评定小组第 {seq} 名成员没有姓名", row=seq, column="name", fix="填写成员姓名")
        if _reserved(name):
            raise ValidationError(f"评定小组成员姓名 “{name}” 与评定表的列名相同", row=seq, column="name",
                                  fix="填写成员的真实姓名（不能用 户号、金额、成员1 这类列名）")
        if name in names:
            raise ValidationError(f"评定小组成员 “{name}” 重复", row=seq, column="name",
                                  fix="每名成员只列一次；同名的请加以区分（如 张伟（村委））")
        if role not in PANEL_ROLES:
            raise ValidationError(f"评定小组成员 {name} 的身份 “{role}” 无效", row=seq, column="role",
                                  fix=f"身份应为：{'、'.join(PANEL_ROLES)}")
        names.add(name)
        out.append({"seq": seq, "name": name, "role": role, "present": _bool(r.get("present"))})
    missing = [role for role in PANEL_ROLES if role not in {r["role"] for r in out}]
    if missing:
        raise ValidationError(f"评定小组缺少{'、'.join(missing)}", column="role",
                              fix="评定小组至少要有一名村组干部、一名村民代表，以及信用社主任和客户经理")
    here = [r for r in out if r["present"]]
    if not here:
        raise ValidationError("评定小组没有到会的成员", column="present", fix="勾选到会的成员")
    if len(here) * 2 <= len(out):
        raise ValidationError(f"评定小组应到 {len(out)} 人，实到 {len(here)} 人，未过半数，不能评定", column="present",
                              fix="过半数成员到会才能开评定会；改期召开")
    roles_here = {r["role"] for r in here}
    if "信用社主任" not in roles_here:
        raise ValidationError("信用社主任未到会，不能评定", column="present", fix="信用社主任到会后再开评定会")
    if not roles_here & {"村组干部", "村民代表"}:
        raise ValidationError("村组干部和村民代表都未到会，不能评定", column="present",
                              fix="至少一名村组干部或村民代表到会后再开评定会")
    return pd.DataFrame(out, columns=["seq", "name", "role", "present"])


_RESERVED = frozenset({
    "row", "hh_id", "product", "grade", "amount", "granted_amount", "guarantee", "votes", "job_level",
    "head_name", "segment", "suggested_grade", "suggested_amount", "points", "reasons", "outcome", "decision_id",
    "session_id", "votes_for", "votes_against", "votes_abstain", "branch_id", "approval_limit", "hh_version",
    "reviewed_by", "reviewed_at", "review_note", "name", "role", "present", "seq",
    "户号", "户主", "客户类型", "产品", "等级", "金额", "金额（元）", "担保方式", "建议等级", "建议金额（元）", "评分",
    "序号", "姓名", "身份", "是否到会"})


def _reserved(name: str) -> bool:
    """A member name that is also a column of the decisions or the workbook (it would be read as that column)."""
    text = normalize_text(name).lower()
    return text in _RESERVED or bool(re.fullmatch(r"(?:成员|表决)\s*\d+", text))


def tally(votes: Mapping[str, str]) -> tuple[int, int, int, bool]:
    """``(同意, 反对, 弃权, carried)`` of one household's votes by the members present.

    A majority of the members present carries: 同意 > present / 2; a tie is not granted.

    Examples
    --------
    >>> tally({"a": "同意", "b": "同意", "c": "弃权"})
    (2, 0, 1, True)
    """
    values = list(votes.values())
    yes, no, abstain = (values.count(v) for v in VOTE_CHOICES)
    return yes, no, abstain, yes * 2 > len(values)


@dataclass(frozen=True)
class SessionResult:
    """What a saved session decided: its id and one row per household (``decision_id``, ``hh_id``,
    ``outcome``, …, as stored in ``rating_decisions``)."""

    session_id: str
    decisions: pd.DataFrame

    def count(self, outcome: str) -> int:
        """How many decisions have ``outcome``."""
        return int((self.decisions["outcome"] == outcome).sum())

    def summary(self) -> str:
        """One Chinese line: granted, escalated, returned."""
        return (f"评定会 {self.session_id}：评定 {len(self.decisions)} 户，当场授信 {self.count(GRANTED)} 户，"
                f"上报贷审会 {self.count(PENDING)} 户，退回重评 {self.count(RETURNED)} 户")


def minutes_text(*, held_on: Any, place: str, panel: pd.DataFrame, decisions: pd.DataFrame) -> str:
    """A plain 会议纪要 of a session: when, where, who attended, what was decided (used when none is given).

    Examples
    --------
    >>> p = pd.DataFrame({"name": ["甲", "乙"], "role": ["村组干部", "客户经理"], "present": [True, False]})
    >>> d = pd.DataFrame({"outcome": ["已授信", "退回重评"], "amount": [60000.0, 50000.0]})
    >>> minutes_text(held_on="2026-03-01", place="村委会", panel=p, decisions=d)
    '2026-03-01 在村委会召开资信等级评定会，应到 2 人，实到 1 人（村组干部 甲）；缺席：乙。评定 2 户：当场授信 1 户 6.0 万元，上报联社贷审会 0 户，退回重评 1 户。'
    """
    here = panel[panel["present"].astype(bool)]
    away = panel[~panel["present"].astype(bool)]
    who = "、".join(f"{r} {n}" for n, r in zip(here["name"], here["role"], strict=True))
    amount = pd.to_numeric(decisions["amount"], errors="coerce").fillna(0)
    out = decisions["outcome"]
    return (f"{pd.Timestamp(held_on):%Y-%m-%d} 在{place}召开资信等级评定会，应到 {len(panel)} 人，实到 {len(here)} 人"
            f"（{who}）" + (f"；缺席：{'、'.join(away['name'])}" if len(away) else "")
            + f"。评定 {len(decisions)} 户：当场授信 {int((out == GRANTED).sum())} 户 "
            f"{amount[out == GRANTED].sum() / 1e4:,.1f} 万元，上报联社贷审会 {int((out == PENDING).sum())} 户，"
            f"退回重评 {int((out == RETURNED).sum())} 户。")


def read_decisions(ws: Any, *, where: str | None = None, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Rows of ``rating_decisions`` (empty, with its columns, when the workspace has none yet)."""
    if DECISIONS_LAYER not in ws.layers():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _DECISION_COLS})
    return pd.DataFrame(ws.read(DECISIONS_LAYER, where=where, params=params))


def _tx_read(tx: Any, ws: Any, layer: str, *, where: str, params: Sequence[Any]) -> pd.DataFrame:
    if layer not in ws.layers():
        return pd.DataFrame()
    frame: pd.DataFrame = tx.read(layer, where=where, params=params)
    return frame


def _votes_of(rec: Mapping[str, Any], panel: pd.DataFrame) -> dict[str, str]:
    """The votes of one decision row: a ``votes`` mapping (or JSON text), else one column per member name."""
    raw = rec.get("votes")
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ValidationError(f"表决 “{raw[:40]}” 无法识别", column="votes",
                                  fix="每名成员一列，填写 同意、反对 或 弃权") from None
    if isinstance(raw, Mapping):
        return {normalize_text(k): _s(v) for k, v in raw.items() if _s(v)}
    # one column per member; a filled column that is no member's is returned too (the caller refuses it)
    return {n: _s(v) for k, v in rec.items() if isinstance(k, str) and not _reserved(k)
            and (n := normalize_text(k)) and _s(v)}


def _product_of(rec: Mapping[str, Any], hh: Mapping[str, Any]) -> str:
    product = _s(rec.get("product")) or _s(hh.get("product"))
    if not product and _s(hh.get("segment")):
        product = products.product_for_segment(_s(hh.get("segment")))
    return product


def _village_mask(frame: pd.DataFrame, code: str) -> np.ndarray:
    try:
        return credit._in_village(frame, code).to_numpy(dtype=bool)
    except ValidationError:
        return np.zeros(len(frame), dtype=bool)


def _branch_of(sw: Any, index: pd.Index) -> str | None:
    """The rating branch: the account's; for an administrator, the branch whose grids hold the village."""
    if sw.account.branch_id:
        return str(sw.account.branch_id)
    located = sw.located()
    found = located.loc[located.index.intersection(index), "branch_id"].dropna().astype(str)
    return str(found.mode().iloc[0]) if len(found) else None


def record_session(sw: Any, *, village_code: str, held_on: Any, place: str,
                   panel: pd.DataFrame | Sequence[Mapping[str, Any]], decisions: pd.DataFrame, minutes: str = "",
                   seen: Mapping[str, int] | None = None, expected_revision: int | None = None) -> SessionResult:
    """Record one village's rating session in one transaction: the panel, every household's votes and outcome,
    and the grants within the branch's authority.

    Parameters
    ----------
    sw : grids.scope.ScopedWorkspace
        The rater's scoped workspace (``rate``: a branch manager for its own branch's villages, admin any).
    village_code : str
        The village (嘎查/社区) rated; every household must be in it and in the scope.
    held_on : date-like
        The day the panel sat (not in the future).
    place : str
        Where (e.g. 村委会).
    panel : DataFrame or list of mappings
        :func:`check_panel`'s input.
    decisions : DataFrame
        One row per household: ``hh_id``, ``product`` (optional: the household's, else its entity type's),
        ``grade``, ``amount`` (yuan, > 0; ``granted_amount`` accepted), ``guarantee`` (optional), and the votes:
        a ``votes`` mapping member name → 同意/反对/弃权, or one column per member name. Every member present
        votes; absent members do not. An optional ``row`` column numbers the rows in messages (the workbook's).
    minutes : str
        会议纪要; default a summary made by :func:`minutes_text`.
    seen : mapping, optional
        ``hh_id`` → the household version the panel saw; a household changed since refuses the session.
    expected_revision : int, optional
        The workspace revision the caller read.

    Returns
    -------
    SessionResult

    Raises
    ------
    PermissionDeniedError
        No ``rate`` permission; the village or a household outside the scope.
    ValidationError
        The panel (:func:`check_panel`), a vote, an amount, a carried grant that breaks the product rules
        (naming the row, the household and the rule), a household already waiting for the credit committee.
    StaleEditError
        A household changed since ``seen``.
    """
    account = sw.account
    account.require("rate")
    code = _s(village_code)
    table = check_panel(panel)
    place = _s(place)
    if not place:
        raise ValidationError("没有填写评定会地点", column="place", fix="填写评定会召开的地点，如 村委会")
    if len(place) > MAX_PLACE:
        raise ValidationError(f"评定会地点有 {len(place)} 个字，超过 {MAX_PLACE} 个字", column="place",
                              fix="地点写简短些，如 某某嘎查村委会")
    if len(_s(minutes)) > MAX_MINUTES:
        raise ValidationError(f"会议纪要有 {len(_s(minutes))} 个字，超过 {MAX_MINUTES} 个字", column="minutes",
                              fix=f"会议纪要限 {MAX_MINUTES} 字以内，详细记录另存档")
    try:
        day = pd.Timestamp(held_on).normalize()
    except (TypeError, ValueError):
        raise ValidationError(f"评定会日期 “{held_on}” 无效", column="held_on", fix="填写日期，如 2026-03-01") from None
    if pd.isna(day) or day > pd.Timestamp.now().normalize() or day < EARLIEST_SESSION:
        raise ValidationError(f"评定会日期 {held_on} 无效、早于 {EARLIEST_SESSION:%Y-%m-%d} 或在未来", column="held_on",
                              fix="填写评定会实际召开的日期")
    # the village and its households, as the server knows them: never the client's say
    everyone = pd.DataFrame(sw.ws.read("households", columns=["hh_id", "village_code", "group_code"]))
    if not _village_mask(everyone, code).any():
        raise ValidationError(f"没有村代码为 {code} 的农户", column="village_code", fix="检查村代码（12 位统计用区划代码）")
    scoped = sw.households(columns=["hh_id", "village_code", "group_code", "segment", "product", "archived"])
    mine = _village_mask(scoped, code)
    if not mine.any():
        raise PermissionDeniedError(f"村 {code} 不在你的管辖范围内（{account.role_name} {account.username}）")
    known_ids = set(everyone["hh_id"].astype(str))
    village_ids = set(scoped.loc[mine, "hh_id"].astype(str))
    by_id = {str(r["hh_id"]): r for r in _records(scoped[mine])}
    if "hh_id" not in decisions.columns or not len(decisions):
        raise ValidationError("评定结果里没有农户", column="hh_id", fix="每户一行：户号、产品、等级、金额、担保方式和每名成员的表决")
    present = table.loc[table["present"], "name"].tolist()
    absent = set(table.loc[~table["present"], "name"])
    branch_id = _branch_of(sw, scoped.index[mine])
    rules = credit_rules.effective_rules(sw.ws, branch_id)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    outside: list[str] = []
    for n, rec in enumerate(_records(decisions), start=1):
        row_no = int(rec["row"]) if "row" in rec and pd.notna(rec.get("row")) else n
        hh_id = _s(rec.get("hh_id"))
        where = f"第 {row_no} 行（户号 {hh_id or '空'}）"
        if hh_id not in village_ids:
            if hh_id in known_ids and not sw.is_county_wide:
                outside.append(hh_id)
            else:
                problems.append(f"{where}不是本村（{code}）的农户")
            continue
        if hh_id in seen_ids:
            problems.append(f"{where}重复：每户只评一次")
            continue
        seen_ids.add(hh_id)
        votes = _votes_of(rec, table)
        bad = {k: v for k, v in votes.items() if v not in VOTE_CHOICES}
        if bad:
            k, v = next(iter(bad.items()))
            problems.append(f"{where}成员 {k} 的表决 “{v}” 无效（应为 同意、反对 或 弃权）")
            continue
        stray = [k for k in votes if k not in set(present)]
        if stray:
            why = "缺席，不能表决" if stray[0] in absent else "不是评定小组成员"
            problems.append(f"{where}{stray[0]} {why}")
            continue
        missing = [m for m in present if m not in votes]
        if missing:
            problems.append(f"{where}缺少 {'、'.join(missing[:3])} 的表决")
            continue
        raw_amount: Any = rec.get("amount", rec.get("granted_amount"))
        try:
            amount = float(raw_amount)
        except (TypeError, ValueError):
            amount = float("nan")
        if not np.isfinite(amount) or amount <= 0:
            problems.append(f"{where}金额 “{_s(raw_amount)}” 无效（应为大于 0 的元数）")
            continue
        try:
            product = _product_of(rec, by_id[hh_id])
        except ValidationError as exc:
            problems.append(f"{where}{exc}")
            continue
        yes, no, abstain, carried = tally({m: votes[m] for m in present})
        limit = rules.approval_limit(product) if product in products.load_catalogue() else 0.0
        outcome = RETURNED if not carried else (GRANTED if amount <= limit else PENDING)
        rows.append({"row": row_no, "hh_id": hh_id, "product": product,
                     "grade": products.grade_name(_s(rec.get("grade"))) or None, "amount": amount,
                     "guarantee": _s(rec.get("guarantee")) or None, "votes_for": yes, "votes_against": no,
                     "votes_abstain": abstain, "votes": json.dumps({m: votes[m] for m in present},
                                                                   ensure_ascii=False),
                     "outcome": outcome, "branch_id": branch_id, "approval_limit": limit})
    if outside:
        raise PermissionDeniedError(f"农户 {'、'.join(outside[:5])} 不在你的管辖范围内（{account.role_name}）")
    carried_rows = [r for r in rows if r["outcome"] != RETURNED]
    if carried_rows:  # the product rules, for grants and escalations alike (the committee sees only valid ones)
        current = pd.DataFrame(sw.ws.read("households", where=f"hh_id IN ({','.join('?' * len(carried_rows))})",
                                          params=[r["hh_id"] for r in carried_rows]))
        batch = pd.DataFrame({"hh_id": [r["hh_id"] for r in carried_rows],
                              "product": [r["product"] for r in carried_rows],
                              "grade": [r["grade"] for r in carried_rows],
                              "granted_amount": [r["amount"] for r in carried_rows],
                              "guarantee": [r["guarantee"] for r in carried_rows]})
        _, found = credit.record_ratings(current, batch, rules=rules)
        for p in found.itertuples():
            r = carried_rows[int(cast(int, p.row)) - 1]
            problems.append(f"第 {r['row']} 行（户号 {r['hh_id']}）{p.problem}（{p.fix}）")
    if problems:
        raise ValidationError(f"评定结果有 {len(problems)} 处问题，未保存任何内容：{'；'.join(problems[:5])}",
                              column="hh_id", fix="按提示修正评定结果后重新提交")
    session_id = f"RS{day:%Y%m%d}-{code}-{uuid.uuid4().hex[:6]}"
    frame = pd.DataFrame(rows)
    frame.insert(0, "decision_id", [f"{session_id}-{i:03d}" for i in range(1, len(frame) + 1)])
    frame.insert(1, "session_id", session_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    text = _s(minutes) or minutes_text(held_on=day, place=place, panel=table, decisions=frame)
    ids = frame["hh_id"].tolist()
    with sw.ws.transaction(actor=account.username, action="集中授信评定会", expected_revision=expected_revision) as tx:
        pending = _tx_read(tx, sw.ws, DECISIONS_LAYER, where=f"outcome = ? AND hh_id IN ({','.join('?' * len(ids))})",
                           params=[PENDING, *ids])
        if len(pending):
            raise ValidationError(f"农户 {'、'.join(pending['hh_id'].astype(str).head(5))} 的上次评定正等待联社贷审会审批",
                                  column="hh_id", fix="等贷审会审批或退回后再评；本次评定请去掉这些户")
        before = tx.read("households", where=f"hh_id IN ({','.join('?' * len(ids))})", params=ids)
        before = before.set_index(before["hh_id"].astype(str))
        version = pd.to_numeric(before.get("version", pd.Series(0, index=before.index)), errors="coerce")
        # the household as the panel decided on it: the committee approves only that household (approve)
        frame["hh_version"] = [int(0 if pd.isna(version[h]) else version[h]) for h in ids]
        if seen is not None:
            stale = [h for h in ids if int(seen.get(h, -1)) != int(0 if pd.isna(version[h]) else version[h])]
            if stale:
                raise StaleEditError(ids=stale)
        granted = frame[frame["outcome"] == GRANTED]
        changed: dict[str, dict[str, Any]] = {}
        if len(granted):
            entries, _ = credit.apply_ratings(
                tx, sw.ws.columns("households"),
                pd.DataFrame({"hh_id": granted["hh_id"], "product": granted["product"], "grade": granted["grade"],
                              "granted_amount": granted["amount"], "guarantee": granted["guarantee"]}), rules=rules)
            changed = {e["hh_id"]: e for e in entries}
        tx.append(SESSIONS_LAYER, pd.DataFrame([{
            "session_id": session_id, "branch_id": branch_id, "village_code": code, "held_on": day, "place": place,
            "status": "已评定", "created_by": account.username, "created_at": now, "minutes": text}]))
        tx.append(PANEL_LAYER, table.assign(session_id=session_id)[["session_id", "seq", "name", "role", "present"]])
        stored = frame.drop(columns=["row"]).assign(  # stubs reject the NaT scalar pandas broadcasts
            reviewed_by=None, reviewed_at=pd.NaT, review_note=None)  # type: ignore[arg-type]
        tx.append(DECISIONS_LAYER, stored[list(_DECISION_COLS)])
        tx.note(DECISIONS_LAYER, {
            "op": "rating_session", "session_id": session_id, "village_code": code, "branch_id": branch_id,
            "held_on": f"{day:%Y-%m-%d}", "place": place, "panel": table[["name", "role", "present"]].to_dict("records"),
            "households": [_audit_entry(r, before.loc[r["hh_id"]], changed.get(r["hh_id"]))
                           for r in _records(frame)]})
    return SessionResult(session_id, stored.reset_index(drop=True))


def _audit_entry(rec: Mapping[str, Any], before: pd.Series, change: Mapping[str, Any] | None) -> dict[str, Any]:
    """One household's audit entry: decision, votes, session id, before/after grade, amount, guarantee."""
    def view(source: Mapping[Hashable, Any]) -> dict[str, Any]:
        amount = source.get("granted_amount")
        return {"grade": credit._plain_value(source.get("grade")),
                "granted_amount": None if amount is None or pd.isna(amount) else float(amount),
                "guarantee": credit._plain_value(source.get("guarantee"))}

    was = view(before.to_dict())
    return {"hh_id": rec["hh_id"], "decision_id": rec["decision_id"], "session_id": rec["session_id"],
            "outcome": rec["outcome"], "product": rec["product"], "amount": float(rec["amount"]),
            "votes": {"同意": int(rec["votes_for"]), "反对": int(rec["votes_against"]),
                      "弃权": int(rec["votes_abstain"]), "members": json.loads(rec["votes"])},
            "before": was, "after": view(change["after"]) if change else was}


def _decision_for_review(tx: Any, ws: Any, decision_id: str) -> pd.Series:
    found = _tx_read(tx, ws, DECISIONS_LAYER, where="decision_id = ?", params=[_s(decision_id)])
    if not len(found):
        raise ValidationError(f"没有评定决定 “{decision_id}”", column="decision_id", fix="从待审批队列中选择决定编号")
    rec = found.iloc[0]
    if rec["outcome"] != PENDING:
        who = f"，{rec['reviewed_by']} 于 {pd.Timestamp(rec['reviewed_at']):%Y-%m-%d %H:%M}" if _s(
            rec.get("reviewed_by")) else ""
        raise StaleEditError(f"评定决定 {decision_id} 已处理（{rec['outcome']}{who}），不能再审批")
    return rec


def approve(ws: Any, decision_id: str, account: Any, *, note: str = "") -> dict[str, Any]:
    """The credit committee approves a decision waiting in the queue: the household is granted (product rules
    checked again, the session's branch's rules), the decision marked 已授信; one audited transaction.

    Parameters
    ----------
    ws : grids.workspace.Workspace
    decision_id : str
        A ``rating_decisions`` id with outcome 待贷审会审批.
    account : grids.auth.Account
        Needs ``review_credit`` (``credit_committee``).
    note : str
        审批意见 (optional).

    Returns
    -------
    dict
        The household's audit entry (before/after, votes, session id).

    Raises
    ------
    PermissionDeniedError
        Not the credit committee.
    StaleEditError
        The decision was already approved or returned.
    ValidationError
        Unknown decision; the grant now breaks the product rules.
    """
    account.require("review_credit")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with ws.transaction(actor=account.username, action="贷审会审批通过") as tx:
        rec = _decision_for_review(tx, ws, decision_id)
        before = tx.read("households", where="hh_id = ?", params=[rec["hh_id"]])
        now_version = pd.to_numeric(before.get("version", pd.Series([0])), errors="coerce").fillna(0)
        then = pd.to_numeric(pd.Series([rec.get("hh_version")]), errors="coerce").iloc[0]
        if pd.isna(then) or not len(before) or int(now_version.iloc[0]) != int(then):
            raise StaleEditError(f"农户 {rec['hh_id']} 在评定会后已被改动（等级或额度等），评定决定 {decision_id} "
                                 "已过时，不能批准；请退回，由网点重新评定", ids=[str(rec["hh_id"])])
        rules = credit_rules.effective_rules(ws, _s(rec.get("branch_id")) or None)
        entries, _ = credit.apply_ratings(tx, ws.columns("households"), pd.DataFrame({
            "hh_id": [rec["hh_id"]], "product": [rec["product"]], "grade": [rec["grade"]],
            "granted_amount": [float(rec["amount"])], "guarantee": [rec["guarantee"]]}), rules=rules)
        tx.execute(f"UPDATE {DECISIONS_LAYER} SET outcome = ?, reviewed_by = ?, reviewed_at = ?, review_note = ? "
                   "WHERE decision_id = ?", (GRANTED, account.username, now, _s(note) or None, rec["decision_id"]))
        entry = _audit_entry({**_row_dict(rec), "outcome": GRANTED}, before.iloc[0], entries[0])
        tx.note(DECISIONS_LAYER, {"op": "approve", "note": _s(note), "households": [entry]})
    return entry


def return_(ws: Any, decision_id: str, account: Any, note: str) -> dict[str, Any]:
    """The credit committee returns a decision waiting in the queue (贷审会退回), with its reason; the household
    is not changed. Same permission and staleness rules as :func:`approve`.

    Raises
    ------
    ValidationError
        No reason given; unknown decision.
    """
    account.require("review_credit")
    if not _s(note):
        raise ValidationError("退回需要写明理由", column="review_note", fix="填写退回理由，如 收入证明不足，请补充后重评")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with ws.transaction(actor=account.username, action="贷审会退回") as tx:
        rec = _decision_for_review(tx, ws, decision_id)
        before = tx.read("households", where="hh_id = ?", params=[rec["hh_id"]])
        tx.execute(f"UPDATE {DECISIONS_LAYER} SET outcome = ?, reviewed_by = ?, reviewed_at = ?, review_note = ? "
                   "WHERE decision_id = ?", (REVIEW_RETURNED, account.username, now, _s(note), rec["decision_id"]))
        entry = _audit_entry({**_row_dict(rec), "outcome": REVIEW_RETURNED}, before.iloc[0], None)
        tx.note(DECISIONS_LAYER, {"op": "return", "note": _s(note), "households": [entry]})
    return entry


def decisions_table(ws: Any, *, branch_id: str | None = None, outcome: str | None = None,
                    include: Sequence[str] = ()) -> pd.DataFrame:
    """Decisions with their session (village, date, place, minutes) and household (head name); ``branch_id``
    limits them to one branch's sessions, ``outcome`` to one outcome (or one of the ``include`` ids, whatever
    their outcome). Sorted by date, then decision id. Reads only the rows asked for (the demo has 52,000)."""
    where, params = [], []
    if branch_id is not None:
        where.append("branch_id = ?")
        params.append(branch_id)
    if outcome is not None:
        ids = [str(i) for i in include][:500]
        extra = f" OR decision_id IN ({','.join('?' * len(ids))})" if ids else ""
        where.append(f"(outcome = ?{extra})")
        params.extend([outcome, *ids])
    d = read_decisions(ws, where=" AND ".join(where) or None, params=params)
    cols = [*_DECISION_COLS, "village_code", "held_on", "place", "minutes", "head_name"]
    if not len(d):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    s = pd.DataFrame(ws.read(SESSIONS_LAYER))[["session_id", "village_code", "held_on", "place", "minutes"]]
    ids = d["hh_id"].astype(str).unique().tolist()
    if len(ids) <= 500:
        names = pd.DataFrame(ws.read("households", columns=["hh_id", "head_name"],
                                     where=f"hh_id IN ({','.join('?' * len(ids))})", params=ids))
    else:
        names = pd.DataFrame(ws.read("households", columns=["hh_id", "head_name"]))
        names = names[names["hh_id"].astype(str).isin(set(ids))]
    out = d.merge(s, on="session_id", how="left").merge(names, on="hh_id", how="left")
    return out.sort_values(["held_on", "decision_id"], kind="stable").reset_index(drop=True)[cols]


def review_queue(sw: Any, *, include: Sequence[str] = ()) -> pd.DataFrame:
    """The decisions waiting for the credit committee (待贷审会审批) that ``sw``'s account may read: all for the
    county-wide roles (the committee), a branch manager's own branch's; others none (PermissionDeniedError).

    ``include``: decision ids to list as well whatever their outcome now (a page keeps showing what the user saw:
    a decision someone else decided meanwhile stays, with its new outcome, and acting on it is refused).
    Columns as :func:`decisions_table` (votes as JSON text: member → 同意/反对/弃权; ``approval_limit`` is the
    branch's authority the amount exceeds).
    """
    account = sw.account
    if sw.is_county_wide:
        branch = None
    elif account.can("read_branch") and account.branch_id:
        branch = str(account.branch_id)
    else:
        raise PermissionDeniedError(f"{account.role_name}（{account.username}）不能查看贷审会待审批队列")
    return decisions_table(sw.ws, branch_id=branch, outcome=PENDING, include=include)


# -- tables for the rating page (assembled here, the page only renders them) ---------------------------------

DEFAULT_PANEL_ROLES: tuple[str, ...] = ("村组干部", "村民代表", "村民代表", "信用社主任", "客户经理")
"""The roles of an empty panel form (names to fill in; members may be added up to 7)."""
VOTE_TABLE_FIXED: tuple[str, ...] = ("hh_id", "head_name", "segment", "product", "suggested_grade",
                                     "suggested_amount", "points", "reasons", "grade", "amount", "guarantee")
"""The columns of :func:`vote_table` before the members' vote columns (``grade``, ``amount``, ``guarantee`` and
the votes are editable)."""


def empty_panel() -> pd.DataFrame:
    """A panel form: one row per :data:`DEFAULT_PANEL_ROLES` (``name`` empty, ``present`` true)."""
    return pd.DataFrame({"name": [""] * len(DEFAULT_PANEL_ROLES), "role": list(DEFAULT_PANEL_ROLES),
                         "present": [True] * len(DEFAULT_PANEL_ROLES)})


def present_members(panel: pd.DataFrame) -> list[str]:
    """Names of the members present in a panel form (blank names skipped, order kept, repeats once)."""
    if panel is None or not len(panel) or "name" not in panel.columns:
        return []
    here = panel["present"].astype("boolean").fillna(True) if "present" in panel.columns else pd.Series(
        True, index=panel.index)
    names = [_s(n) for n, p in zip(panel["name"], here, strict=True) if _s(n) and bool(p)]
    return list(dict.fromkeys(names))


def vote_table(rating_list: pd.DataFrame, members: Sequence[str], suggestions: pd.DataFrame | None = None
               ) -> pd.DataFrame:
    """The page's vote table: per household (:func:`grids.credit.rating_list` rows) the scorecard's suggestion,
    the grade/amount/guarantee to decide (pre-filled with the suggestion, else the current grant) and one empty
    column per member present (同意/反对/弃权).

    Examples
    --------
    >>> rl = pd.DataFrame({"hh_id": ["a"], "head_name": ["甲"], "segment": ["普通农牧户"], "product": ["福农卡"],
    ...                    "grade": [None], "granted_amount": [0.0], "guarantee": [""]})
    >>> vote_table(rl, ["张", "李"]).columns.tolist()[-3:]
    ['guarantee', '张', '李']
    """
    out = pd.DataFrame({c: rating_list.get(c) for c in ("hh_id", "head_name", "segment", "product")})
    sug = (suggestions if suggestions is not None and len(suggestions) else pd.DataFrame(
        columns=["hh_id", "suggested_grade", "suggested_amount", "points", "reasons"])).drop_duplicates("hh_id")
    merged = out[["hh_id"]].astype({"hh_id": str}).merge(sug.astype({"hh_id": str}), on="hh_id", how="left")
    for col in ("suggested_grade", "suggested_amount", "points", "reasons"):
        out[col] = merged[col].to_numpy(dtype=object)
    out["suggested_amount"] = pd.to_numeric(out["suggested_amount"], errors="coerce")
    out["points"] = pd.to_numeric(out["points"], errors="coerce")
    granted = pd.to_numeric(rating_list["granted_amount"], errors="coerce")
    out["grade"] = [g if isinstance(g, str) and g else (c if isinstance(c, str) and c else None)
                    for g, c in zip(out["suggested_grade"], rating_list["grade"], strict=True)]
    out["amount"] = out["suggested_amount"].where(out["suggested_amount"].notna(), granted.where(granted > 0))
    out["guarantee"] = rating_list.get("guarantee")
    for m in members:
        out[m] = None
    return out.reset_index(drop=True)


def decisions_from_votes(shown: pd.DataFrame, edited: pd.DataFrame, members: Sequence[str]) -> pd.DataFrame:
    """The decisions of a vote table as :func:`record_session` takes them: households by their position in the
    table the server showed (never the id the client sends), only rows with an amount or a vote.

    Raises
    ------
    ValidationError
        Rows added or removed (the table is fixed: a tampered client).

    Examples
    --------
    >>> shown = pd.DataFrame({"hh_id": ["a", "b"], "product": ["福农卡"] * 2, "grade": [None] * 2,
    ...                       "amount": [None, None], "guarantee": [""] * 2, "张": [None] * 2})
    >>> edited = shown.assign(amount=[60000, None], 张=["同意", None])
    >>> decisions_from_votes(shown, edited, ["张"])[["hh_id", "amount", "张"]].values.tolist()
    [['a', 60000.0, '同意']]
    >>> decisions_from_votes(shown, edited.assign(hh_id=["x", "b"]), ["张"])
    Traceback (most recent call last):
    ...
    grids.errors.ValidationError: 第 1 行，列 “hh_id”：评定表只能修改等级、金额、担保方式和表决；第 1 行的“hh_id”不能修改。修正方法：刷新页面后重新填写
    """
    extra = [i for i in edited.index if i not in range(len(shown))]
    if extra or len(edited) != len(shown):
        raise ValidationError("评定表只能修改等级、金额、担保方式和表决，不能新增或删除行", column="hh_id",
                              fix="刷新页面后重新填写")
    editable = {"grade", "amount", "guarantee", *members}
    for pos, rec in enumerate(shown.to_dict("records")):
        new = edited.loc[pos]
        for col in edited.columns:
            if col not in editable and not _same(rec.get(col), new.get(col)):
                raise ValidationError(f"评定表只能修改等级、金额、担保方式和表决；第 {pos + 1} 行的“{col}”不能修改",
                                      row=pos + 1, column=str(col), fix="刷新页面后重新填写")
    rows = []
    for pos, rec in zip(range(len(shown)), shown.to_dict("records"), strict=True):
        new = edited.loc[pos]
        votes = {m: _s(new.get(m)) for m in members if _s(new.get(m))}
        amount = new.get("amount")
        has_amount = amount is not None and not pd.isna(amount) and _s(amount) != ""
        if not votes and not has_amount:
            continue
        rows.append({"row": pos + 1, "hh_id": _s(rec["hh_id"]), "product": _s(rec.get("product")),
                     "grade": _s(new.get("grade")), "amount": amount, "guarantee": _s(new.get("guarantee")),
                     **{m: votes.get(m, "") for m in members}})
    return pd.DataFrame(rows, columns=["row", "hh_id", "product", "grade", "amount", "guarantee", *members])


def _same(a: Any, b: Any) -> bool:
    na = a is None or (not isinstance(a, str) and pd.isna(a))
    nb = b is None or (not isinstance(b, str) and pd.isna(b))
    if na or nb:
        return na and nb
    return bool(a == b)


def decided_votes(votes_json: str) -> pd.DataFrame:
    """A decision's votes (JSON text) as a table ``成员``, ``表决`` for display."""
    try:
        data = json.loads(votes_json or "{}")
    except (TypeError, json.JSONDecodeError):
        data = {}
    return pd.DataFrame({"成员": list(data), "表决": list(data.values())})
