"""签约发卡 and 用信: the credit events of a household, the source of truth for its signed line and balance.

Every signing, drawdown and repayment is one row of the workspace table ``credit_events`` (kinds
:data:`KINDS`: 开户余额 — the balance a household already carried when events began —, 签约, 用信, 还款). The
households' ``signed``, ``available_amount``, ``using`` and ``balance`` are a *projection* of these events, updated
in the same transaction as the event is appended, so the funnel (:func:`grids.coverage.funnel`, ``report``) moves
live; :func:`rebuild_projection` recomputes every household from the events and :func:`check_projection` lists the
households whose projection differs (an error of ``python -m grids check``).

Amounts (授用分离, revolving):

- ``available_amount`` is the household's **signed line** (签约可用信金额, as the funnel and the 联社's figures
  count it): the amount of its latest 签约, never above its granted amount;
- ``balance`` is the sum of 开户余额 and 用信 minus 还款;
- the amount it may still draw (可用余额) is ``available_amount − balance``: a drawdown beyond it is refused
  (``超出可用额度``), a repayment beyond the balance too; repaid money can be drawn again.

Who may do what (decided here; :data:`grids.auth.PERMISSIONS`):

- **签约** (permission ``sign_card``): the branch manager of the household's branch (the branch of the grid the
  household lies in, in the published plan) and the administrator. The household must be granted; the signed
  amount lies between its balance and its granted amount. A signed household may sign again (换卡 or a new signed
  amount): the latest 签约 is the line in force and its card the one a teller finds.
- **用信 / 还款** (permission ``serve_credit``): a teller at *its own* branch (``account.branch_id``; a branch
  given by the client must be that one) for a signed customer of any branch of the county; the administrator
  names the branch.
- **柜员查询** (:func:`find_customer`, ``serve_credit``): one signed customer by card number or ID number, as a
  minimal view (:data:`VIEW_COLUMNS`: 户号, masked name and ID, card last four digits, amounts); every look-up is an
  audit row. A teller reads nothing else: :class:`grids.scope.ScopedWorkspace` shows it no grid and no household.

Card numbers are never stored: an event keeps the keyed hash of the card (HMAC-SHA256, :func:`card_hash`) for
look-ups and its last four digits for display. The key lives outside the workspace (:mod:`grids.cardkey`: an
environment variable or the GeoPackage's sidecar file), so a copy of the workspace alone cannot match a card.
Audit rows, errors and logs name the last four digits only.

Examples
--------
>>> card_digits("6228 4800-1234 5678 901")
'6228480012345678901'
>>> len(card_hash("00" * 32, "6228480012345678901"))
64
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from typing import Any, cast

import pandas as pd

from grids import cardkey
from grids.auth import Account
from grids.errors import PermissionDeniedError, ValidationError
from grids.privacy import mask_id_no, mask_name
from grids.workspace import Transaction, Workspace

__all__ = ["DRAW", "EVENTS_LAYER", "KINDS", "OPENING", "REPAY", "SIGN", "VIEW_COLUMNS", "card_digits",
           "card_hash", "check_projection", "draw", "find_customer", "household_branch", "looked_up", "mask_cards",
           "opening_events", "project", "read_events", "rebuild_projection", "repay", "shown_id", "sign",
           "write_opening_events"]

EVENTS_LAYER = "credit_events"
OPENING, SIGN, DRAW, REPAY = "开户余额", "签约", "用信", "还款"
KINDS: tuple[str, ...] = (OPENING, SIGN, DRAW, REPAY)
"""Kinds of credit event; 开户余额 is the balance a household carried when events began (opening)."""
OPENING_ACTOR = "期初流水"
"""``recorded_by`` of the opening events made from the households' values."""
VIEW_COLUMNS: dict[str, str] = {
    "hh_id": "户号", "name": "户主", "id_no": "身份证号", "card_last4": "卡号后四位", "granted_amount": "授信额度（元）",
    "signed_amount": "签约额度（元）", "balance": "用信余额（元）", "available": "可用余额（元）",
}
"""The teller's minimal view of a customer (:func:`find_customer`), with Chinese headings."""
_BALANCE_SIGN = {OPENING: 1.0, SIGN: 0.0, DRAW: 1.0, REPAY: -1.0}
_CENT = 0.005


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _when(on: dt.date | dt.datetime | str | None) -> str:
    """``on`` as an ISO timestamp (default now, UTC)."""
    if on is None:
        return _now()
    if isinstance(on, str):
        try:
            return pd.Timestamp(on).isoformat()
        except ValueError:
            raise ValidationError(f"日期 “{on[:40]}” 无法识别", fix="写成 2026-01-31 这样的日期") from None
    return pd.Timestamp(on).isoformat()


def card_digits(card_no: object) -> str:
    """The digits of a card number (spaces and hyphens dropped); ValidationError unless 12–19 digits.

    The error never repeats the number.

    Examples
    --------
    >>> card_digits("1234")
    Traceback (most recent call last):
    ...
    grids.errors.ValidationError: 卡号应为 12–19 位数字（输入了 4 位）。修正方法：按卡面输入完整卡号，只含数字（可带空格）
    """
    s = re.sub(r"[\s\-]", "", str(card_no or ""))
    if not s.isdigit() or not 12 <= len(s) <= 19:
        raise ValidationError(f"卡号应为 12–19 位数字（输入了 {len(s)} 位）",
                              fix="按卡面输入完整卡号，只含数字（可带空格）")
    return s


def card_hash(key: str, card_no: object) -> str:
    """Keyed hash (HMAC-SHA256, hex) of a card number under ``key`` (hex; :func:`grids.cardkey.card_key`): what
    the workspace keeps to find a card again."""
    return hmac.new(bytes.fromhex(key), card_digits(card_no).encode("ascii"), hashlib.sha256).hexdigest()


def _amount(value: object, what: str) -> float:
    if isinstance(value, bool) or (isinstance(value, str) and not re.fullmatch(r"\s*\d+(\.\d+)?\s*", value)):
        raise ValidationError(f"{what}金额 “{mask_cards(str(value)[:40])}” 不是数字", fix="输入大于 0 的金额（元），只含数字和小数点")
    try:
        x = float(value)  # type: ignore[arg-type]  # a number or a digits-only string here; else caught below
    except (TypeError, ValueError):
        raise ValidationError(f"{what}金额 “{str(value)[:20]}” 不是数字", fix="输入大于 0 的金额（元）") from None
    if not math.isfinite(x) or x <= 0:
        raise ValidationError(f"{what}金额必须大于 0（输入了 {str(value)[:20]}）", fix="输入大于 0 的金额（元）")
    if abs(round(x, 2) - x) > 1e-9:
        raise ValidationError(f"{what}金额最多两位小数（输入了 {x}）", fix="按元、角、分输入金额")
    return round(x, 2)


def _stored_amount(value: Any) -> float:
    """An amount as a household row stores it, as float (blank: 0.0; text that is no number: NaN)."""
    return float(pd.to_numeric(value, errors="coerce") or 0.0)


def _scalar(value: object) -> float:
    """One value of a frame (``.at``) as float; the stubs type it as any scalar, the columns read hold numbers."""
    return float(cast(float, value))


def _yuan(x: float) -> str:
    return f"{x:,.2f} 元"


_DIGIT_RUN = re.compile(r"(?<!\d)\d{8,15}(\d{4})(?!\d)")


def mask_cards(text: object) -> str:
    """``text`` with every run of 12–19 digits shown as its last four (what a card number may be).

    Examples
    --------
    >>> mask_cards("户 6228480012345678901 不存在")
    '户 ****8901 不存在'
    """
    return _DIGIT_RUN.sub(lambda m: "****" + m.group(1), str(text))


def shown_id(ws: Workspace, hh_id: object) -> str:
    """``hh_id`` as errors and audit rows may show it: as given when such a household exists, else masked by
    :func:`mask_cards` (a card number typed into the 户号 field is never echoed)."""
    h = str(hh_id or "").strip()[:40]
    if h:
        rows = ws.read("households", where="hh_id = ?", params=(h,), columns=["hh_id"])
        if len(rows):
            return h
    return mask_cards(h)


DATE_WINDOW_DAYS = 366
"""How far back an administrator may date an event (a teller's events are always dated now)."""


def _dated(account: Account, on: dt.date | dt.datetime | str | None, *, admin_only: bool) -> str:
    """The event time: now unless ``on`` is given; a given date must not lie in the future nor more than
    :data:`DATE_WINDOW_DAYS` back, and (``admin_only``) only an administrator may give one."""
    if on is None or (isinstance(on, str) and not on.strip()):
        return _now()
    if admin_only and account.role != "admin":
        raise PermissionDeniedError(f"{account.role_name}（{account.username}）办理的业务按系统当前时间记账，"
                                    "不能指定日期。修正方法：不填日期；补记历史业务请联系管理员")
    when = _when(on)
    day = pd.Timestamp(when).date()
    today = dt.datetime.now(dt.UTC).date()
    if day > today or (today - day).days > DATE_WINDOW_DAYS:
        raise ValidationError(f"日期 {day.isoformat()} 不在允许范围内（最早 "
                              f"{(today - dt.timedelta(days=DATE_WINDOW_DAYS)).isoformat()}，最晚今天）",
                              fix="填写今天或一年内的过去日期")
    return when


# -- reading ----------------------------------------------------------------------------------------------------

def read_events(ws: Workspace, *, hh_id: str | None = None) -> pd.DataFrame:
    """The credit events (of one household), oldest first; empty when the workspace has none yet."""
    from grids.model import LAYERS

    cols = list(LAYERS[EVENTS_LAYER].columns)
    if EVENTS_LAYER not in ws.layers():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    ev = ws.read(EVENTS_LAYER, where="hh_id = ?" if hh_id else None, params=(hh_id,) if hh_id else ())
    return _ordered(ev)


def _ordered(ev: pd.DataFrame) -> pd.DataFrame:
    if not len(ev):
        return ev
    seq = pd.to_numeric(ev["seq"], errors="coerce").fillna(0)
    return ev.assign(_seq=seq).sort_values(["_seq", "event_id"], kind="stable").drop(columns="_seq")


def project(events: pd.DataFrame) -> pd.DataFrame:
    """The projection of events per household: ``signed``, ``available_amount`` (latest 签约), ``balance``,
    ``using`` (balance > 0), ``card_last4``; indexed by ``hh_id``.

    Examples
    --------
    >>> ev = pd.DataFrame({"hh_id": ["a", "a", "a", "a"], "kind": ["签约", "用信", "还款", "签约"],
    ...                    "amount": [50000.0, 30000.0, 10000.0, 60000.0], "seq": [1, 2, 3, 4],
    ...                    "event_id": ["E1", "E2", "E3", "E4"], "card_last4": ["1111", None, None, "2222"]})
    >>> [v.item() if hasattr(v, "item") else v for v in project(ev).loc["a"]]
    [True, 60000.0, 20000.0, True, '2222']
    """
    ev = _ordered(events)
    if not len(ev):
        return pd.DataFrame({"signed": pd.Series(dtype=bool), "available_amount": pd.Series(dtype=float),
                             "balance": pd.Series(dtype=float), "using": pd.Series(dtype=bool),
                             "card_last4": pd.Series(dtype=object)}, index=pd.Index([], name="hh_id"))
    hh = ev["hh_id"].astype(str)
    amount = pd.to_numeric(ev["amount"], errors="coerce").fillna(0.0)
    delta = amount * ev["kind"].map(_BALANCE_SIGN).fillna(0.0)
    balance = delta.groupby(hh).sum().round(2)
    signs = ev["kind"].eq(SIGN).to_numpy()
    line = amount[signs].groupby(hh[signs]).last()
    last4 = ev.loc[signs, "card_last4"].groupby(hh[signs]).last()
    out = pd.DataFrame(index=pd.Index(sorted(set(hh)), name="hh_id"))
    out["signed"] = out.index.isin(line.index)
    out["available_amount"] = line.reindex(out.index).fillna(0.0).astype(float)
    out["balance"] = balance.reindex(out.index).fillna(0.0).astype(float)
    out["using"] = out["balance"] > _CENT
    out["card_last4"] = last4.reindex(out.index).astype(object)
    return out


def _household_values(households: pd.DataFrame) -> pd.DataFrame:
    """``signed``, ``available_amount``, ``balance``, ``using`` of households as stored (blanks as none)."""
    out = pd.DataFrame(index=households["hh_id"].astype(str))
    for col in ("signed", "using"):
        vals = households[col] if col in households else pd.Series(False, index=households.index)
        out[col] = vals.astype(object).where(vals.notna(), False).astype(bool).to_numpy()
    for col in ("available_amount", "balance"):
        vals = households[col] if col in households else pd.Series(0.0, index=households.index)
        out[col] = pd.to_numeric(vals, errors="coerce").fillna(0.0).to_numpy()
    return out


def check_projection(ws: Workspace, *, households: pd.DataFrame | None = None,
                     events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Households whose stored ``signed`` / ``available_amount`` / ``balance`` / ``using`` differ from their events,
    and signed households whose signed line exceeds their granted amount (授信已下调).

    A household with no event is unsigned with balance 0: one carrying other values (written outside the events,
    e.g. an edit in QGIS after the schema-7 migration turned every household's values into opening events) is
    listed, and never served.

    Returns
    -------
    DataFrame
        ``hh_id``, ``column``, ``stored``, ``events`` (one row per differing value; ``column`` ``granted_amount``:
        ``stored`` the granted amount, ``events`` the signed line above it).
    """
    ev = read_events(ws) if events is None else events
    cols = ["hh_id", "column", "stored", "events"]
    present = set(ws.columns("households")) if households is None else set(households.columns)
    hh = ws.read("households", columns=[c for c in ("hh_id", "signed", "available_amount", "balance", "using",
                                                    "granted_amount") if c in present]) \
        if households is None else households
    stored = _household_values(hh)
    expect = project(ev).reindex(stored.index)
    expect["signed"] = expect["signed"].astype(object).where(expect["signed"].notna(), False).astype(bool)
    expect["using"] = expect["using"].astype(object).where(expect["using"].notna(), False).astype(bool)
    expect[["available_amount", "balance"]] = expect[["available_amount", "balance"]].fillna(0.0)
    rows = []
    for col in ("signed", "available_amount", "balance", "using"):
        a, b = stored[col], expect[col]
        bad = (a != b) if col in ("signed", "using") else ((a - b).abs() > _CENT)
        for h in stored.index[bad.to_numpy()]:
            rows.append({"hh_id": h, "column": col, "stored": stored.at[h, col], "events": expect.at[h, col]})
    unknown = sorted(set(ev["hh_id"].astype(str)) - set(stored.index))
    rows += [{"hh_id": h, "column": "hh_id", "stored": None, "events": "有流水"} for h in unknown]
    if "granted_amount" in hh:
        granted = pd.Series(pd.to_numeric(hh["granted_amount"], errors="coerce").fillna(0.0).to_numpy(),
                            index=stored.index)
        over = expect["signed"].to_numpy() & (expect["available_amount"] > granted + _CENT).to_numpy()
        rows += [{"hh_id": h, "column": "granted_amount", "stored": float(granted[h]),
                  "events": _scalar(expect.at[h, "available_amount"])} for h in stored.index[over]]
    return pd.DataFrame(rows, columns=cols)


def rebuild_projection(ws: Workspace, *, actor: str) -> int:
    """Recompute every household's ``signed``, ``available_amount``, ``balance`` and ``using`` from the events,
    in one transaction; returns the number of households changed (none: nothing written)."""
    diff = check_projection(ws)
    ids = sorted(set(diff.loc[~diff["column"].isin(["hh_id", "granted_amount"]), "hh_id"]))
    if not ids:
        return 0
    proj = project(read_events(ws)).reindex(ids)
    with ws.transaction(actor=actor, action="按用信流水重算") as tx:
        for h in ids:
            r = proj.loc[h]
            signed = bool(r["signed"]) if pd.notna(r["signed"]) else False
            bal = float(r["balance"]) if pd.notna(r["balance"]) else 0.0
            line = float(r["available_amount"]) if pd.notna(r["available_amount"]) else 0.0
            _set_projection(tx, h, signed=signed, line=line, balance=bal, bump=False)
        tx.note("households", {"op": "rebuild_projection", "rows": len(ids), "hh_ids": ids[:200]})
    return len(ids)


# -- opening events ---------------------------------------------------------------------------------------------

def opening_events(households: pd.DataFrame, *, at: str | None = None,
                   card_numbers: Mapping[str, str] | None = None, key: str | None = None) -> pd.DataFrame:
    """Opening events of households from the values they carry (vectorised): a 签约 of ``available_amount`` for
    each signed household and a 开户余额 of ``balance`` for each with a balance.

    ``card_numbers`` (``hh_id`` → card number) with ``key``: the 签约 rows carry the card's hash and last four
    digits (the demo's cards); otherwise the card is unknown (a teller finds such a customer by ID number).
    """
    v = _household_values(households)
    at = at or _now()
    signed = v.index[v["signed"].to_numpy()]  # a register's signed household opens signed, even on a line of 0
    owing = v.index[(v["balance"] > _CENT).to_numpy()]
    sign_rows = pd.DataFrame({"event_id": "OS-" + pd.Series(signed, dtype=object), "seq": 0,
                              "hh_id": list(signed), "kind": SIGN,
                              "amount": v.loc[signed, "available_amount"].to_numpy()})
    if card_numbers is not None and key is not None and len(signed):
        cards = [card_numbers.get(h) for h in signed]
        sign_rows["card_hash"] = [card_hash(key, c) if c else None for c in cards]
        sign_rows["card_last4"] = [card_digits(c)[-4:] if c else None for c in cards]
    bal_rows = pd.DataFrame({"event_id": "OB-" + pd.Series(owing, dtype=object), "seq": 0,
                             "hh_id": list(owing), "kind": OPENING, "amount": v.loc[owing, "balance"].to_numpy()})
    out = pd.concat([sign_rows, bal_rows], ignore_index=True)
    for col in ("card_hash", "card_last4", "branch_id"):
        if col not in out:
            out[col] = pd.Series(None, index=out.index, dtype=object)
    out["occurred_at"] = at
    out["recorded_by"] = OPENING_ACTOR
    out["recorded_at"] = at
    return out


def write_opening_events(ws: Workspace, *, actor: str, card_numbers: Mapping[str, str] | None = None,
                         at: str | None = None) -> int:
    """Turn the households' values into opening events, for the households that have no event yet (idempotent:
    a second run finds nothing to do and writes nothing). Returns the number of events written."""
    present = ws.columns("households")
    cols = [c for c in ("hh_id", "signed", "available_amount", "balance", "using") if c in present]
    hh = ws.read("households", columns=cols)
    have = set(read_events(ws)["hh_id"].astype(str))
    hh = hh[~hh["hh_id"].astype(str).isin(have).to_numpy()]
    if not len(hh):
        return 0
    key = cardkey.card_key(ws, actor=actor) if card_numbers else None
    with ws.transaction(actor=actor, action="建立期初用信流水") as tx:
        rows = opening_events(hh, at=at, card_numbers=card_numbers, key=key)
        if not len(rows):
            tx._layer_schema(EVENTS_LAYER)  # the table exists from now on
            return 0
        if key is not None:
            cardkey.record_check(tx, key)
        tx.append(EVENTS_LAYER, rows)
        tx.note(EVENTS_LAYER, {"op": "opening", "households": int(rows["hh_id"].nunique()),
                               "signed": int((rows["kind"] == SIGN).sum()),
                               "opening_balance": int((rows["kind"] == OPENING).sum()),
                               "amount_signed": round(float(rows.loc[rows["kind"] == SIGN, "amount"].sum()), 2),
                               "amount_balance": round(float(rows.loc[rows["kind"] == OPENING, "amount"].sum()), 2)})
    return len(rows)


def append_opening_events(tx: Transaction, households: pd.DataFrame) -> int:
    """Inside an import's transaction: opening events (签约 of the signed line, 开户余额 of the balance) for the
    imported ``households`` that have no event yet, so a register's current values become their history and
    ``check`` finds households and events agreeing. Returns the number of events written.

    Examples
    --------
    A register row signed for 50,000 with 20,000 drawn opens with two events (see :func:`opening_events`):

    >>> hh = pd.DataFrame({"hh_id": ["H1"], "signed": [True], "available_amount": [50000.0], "balance": [20000.0]})
    >>> opening_events(hh)["kind"].tolist()
    ['签约', '开户余额']
    """
    if households is None or not len(households) or "hh_id" not in households:
        return 0
    cols = [c for c in ("hh_id", "signed", "available_amount", "balance", "using") if c in households.columns]
    if len(cols) == 1:
        return 0
    tx._layer_schema(EVENTS_LAYER)  # the table exists from now on
    have = set(tx.read(EVENTS_LAYER)["hh_id"].astype(str))
    hh = pd.DataFrame(households[cols])
    hh = hh[~hh["hh_id"].astype(str).isin(have).to_numpy()]
    rows = opening_events(hh)
    if not len(rows):
        return 0
    tx.append(EVENTS_LAYER, rows)
    return len(rows)


# -- writing ----------------------------------------------------------------------------------------------------

def _set_projection(tx: Transaction, hh_id: str, *, signed: bool, line: float, balance: float,
                    bump: bool = True) -> None:
    version = ", version = COALESCE(version, 0) + 1" if bump else ""
    tx.execute(f'UPDATE households SET signed = ?, available_amount = ?, balance = ?, "using" = ?{version} '
               "WHERE hh_id = ?",
               (1 if signed else 0, round(line, 2), round(balance, 2), 1 if balance > _CENT else 0, hh_id))


def _household(tx: Transaction, hh_id: object) -> pd.Series:
    h = str(hh_id or "").strip()
    rows = tx.read("households", where="hh_id = ?", params=(h,)) if h else pd.DataFrame()
    if not len(rows):
        raise ValidationError(f"没有户号为 “{mask_cards(h[:40])}” 的户", fix="核对户号（户号不是卡号）；柜员先按卡号或身份证号查询客户")
    return rows.iloc[0]


def _state(tx: Transaction, row: pd.Series) -> tuple[pd.DataFrame, pd.Series | None]:
    """The household's events and their projection (None without events: unsigned, balance 0 — the values a
    household carries are never turned into events here; only the schema-7 migration did that, once)."""
    tx._layer_schema(EVENTS_LAYER)
    h = str(row["hh_id"])
    ev = _ordered(tx.read(EVENTS_LAYER, where="hh_id = ?", params=(h,)))
    proj = project(ev)
    return ev, (cast(pd.Series, proj.loc[h]) if h in proj.index else None)  # a unique index: one row


def _next_seq(tx: Transaction) -> int:
    row = tx._con.execute(f"SELECT max(seq) FROM {EVENTS_LAYER}").fetchone()
    return int(row[0] or 0) + 1 if row else 1


def _append(tx: Transaction, *, hh_id: str, kind: str, amount: float, branch_id: str | None, actor: str,
            on: str, card: tuple[str | None, str] | None = None) -> str:
    seq = _next_seq(tx)
    event_id = f"E{seq:010d}"
    tx.append(EVENTS_LAYER, pd.DataFrame([{
        "event_id": event_id, "seq": seq, "hh_id": hh_id, "kind": kind, "amount": amount, "branch_id": branch_id,
        "card_hash": card[0] if card else None, "card_last4": card[1] if card else None, "occurred_at": on,
        "recorded_by": actor, "recorded_at": _now()}]))
    return event_id


def household_branch(ws: Workspace, hh_id: str) -> str | None:
    """The branch of the grid household ``hh_id`` lies in (published plan, else the latest draft); None when the
    workspace has no plan or the household lies in no grid."""
    from grids import coverage, plans

    try:
        plan_id = plans.resolve_plan(ws, None)
    except ValidationError:
        return None
    one = ws.read("households", where="hh_id = ?", params=(hh_id,))
    if not len(one):
        return None
    loc = coverage.locate_in_workspace(ws, plans.read_grids(ws, plan_id), households=one)
    b = loc["branch_id"].iloc[0] if "branch_id" in loc and len(loc) else None
    return None if b is None or pd.isna(b) else str(b)


def _branch_exists(ws: Workspace, branch_id: str) -> bool:
    return ws.count("branches", where="branch_id = ?", params=(branch_id,)) > 0


def sign(ws: Workspace, account: Account, hh_id: str, amount: float, card_no: str, *,
         on: dt.date | dt.datetime | str | None = None) -> dict[str, Any]:
    """Record 签约发卡 of household ``hh_id``: its signed line becomes ``amount`` on card ``card_no``.

    Parameters
    ----------
    ws : Workspace
    account : Account
        A branch manager of the household's branch, or an administrator (permission ``sign_card``).
    hh_id : str
    amount : float
        The signed line (yuan): at most the granted amount, at least the current balance.
    card_no : str
        The card number (12–19 digits); only its keyed hash and last four digits are stored.
    on : date, optional
        When the customer signed (default now).

    Returns
    -------
    dict
        ``event_id``, ``hh_id``, ``amount``, ``card_last4``, ``branch_id``.

    Raises
    ------
    PermissionDeniedError
        The account may not sign, or the household is not in its branch.
    ValidationError
        Unknown or ungranted household, amount above the granted amount or below the balance, bad card number.
    """
    account.require("sign_card")
    value = _amount(amount, "签约")
    digits = card_digits(card_no)
    when = _dated(account, on, admin_only=False)
    h = str(hh_id or "").strip()
    branch = household_branch(ws, h)
    if account.role != "admin" and (branch is None or branch != account.branch_id):
        raise PermissionDeniedError(f"{account.role_name}（{account.username}）只能为本网点（{account.branch_id}）"
                                    f"网格内的户签约，户 {shown_id(ws, h)} 不在其中")
    key = cardkey.card_key(ws, actor=account.username)  # outside the workspace; made on first need
    with ws.transaction(actor=account.username, action="签约发卡") as tx:
        row = _household(tx, h)
        granted = _stored_amount(row.get("granted_amount"))
        if not granted > 0:
            raise ValidationError(f"户 {h} 尚未授信，不能签约", fix="先经集中授信评定授信额度，再签约发卡")
        if value > granted + _CENT:
            raise ValidationError(f"签约额度 {_yuan(value)} 超过户 {h} 的授信额度 {_yuan(granted)}",
                                  fix=f"签约额度不超过 {_yuan(granted)}")
        _, state = _state(tx, row)
        balance = float(state["balance"]) if state is not None else 0.0
        if value + _CENT < balance:
            raise ValidationError(f"签约额度 {_yuan(value)} 低于户 {h} 的用信余额 {_yuan(balance)}",
                                  fix=f"签约额度不低于 {_yuan(balance)}，或先还款")
        cardkey.record_check(tx, key)  # a wrong key is refused from now on (cardkey.key_check)
        card = (card_hash(key, digits), digits[-4:])
        holder = _card_holder(tx, card[0])
        if holder is not None and holder != h:
            raise ValidationError(f"卡号尾号 {digits[-4:]} 已是户 {holder} 的签约卡，一张卡只能签约给一户",
                                  fix="核对卡号；给本户发一张新卡再签约")
        event_id = _append(tx, hh_id=h, kind=SIGN, amount=value, branch_id=branch, actor=account.username,
                           on=when, card=card)
        before = None if state is None else float(state["available_amount"]) if bool(state["signed"]) else None
        _set_projection(tx, h, signed=True, line=value, balance=balance)
        tx.note(EVENTS_LAYER, {"op": SIGN, "event_id": event_id, "hh_id": h, "amount": value, "branch_id": branch,
                               "card_last4": digits[-4:], "signed_before": before, "resign": before is not None})
    return {"event_id": event_id, "hh_id": h, "amount": value, "card_last4": digits[-4:], "branch_id": branch}


def _card_holder(tx: Transaction, digest: str) -> str | None:
    """The household whose current card (its latest 签约's) has hash ``digest``, read in ``tx``."""
    hits = tx.read(EVENTS_LAYER, where="card_hash = ?", params=(digest,))
    for h in dict.fromkeys(hits["hh_id"].astype(str)):
        ev = _ordered(tx.read(EVENTS_LAYER, where="hh_id = ? AND kind = ?", params=(h, SIGN)))
        if len(ev) and ev["card_hash"].iloc[-1] == digest:
            return h
    return None


def _serving_branch(ws: Workspace, account: Account, branch_id: str | None) -> str:
    """The branch where a drawdown or repayment happens: a teller's own (a different one is refused)."""
    account.require("serve_credit")
    given = str(branch_id).strip() if branch_id is not None and str(branch_id).strip() else None
    if account.role == "teller":
        own = account.branch_id
        if not own:
            raise PermissionDeniedError(f"柜员（{account.username}）未绑定网点，不能办理用信")
        if given is not None and given != own:
            raise PermissionDeniedError(f"柜员（{account.username}）只能在本网点（{own}）办理，不能记到网点 {given[:20]}")
        return own
    if given is None:
        raise ValidationError("没有指定办理网点", fix="用 --branch 指定办理业务的网点编号，例如 B01")
    if not _branch_exists(ws, given):
        raise ValidationError(f"没有编号为 “{given[:20]}” 的网点", fix="用网点列表里的编号，例如 B01")
    return given


def _find_signed_id(ws: Workspace, card_no: str, *, actor: str = "system") -> str | None:
    if EVENTS_LAYER not in ws.layers():
        return None
    key = cardkey.card_key(ws, create=False, actor=actor)  # CardKeyError when the workspace has cards but no key is found
    if key is None:
        return None
    digest = card_hash(key, card_no)
    hits = ws.read(EVENTS_LAYER, where="card_hash = ?", params=(digest,), columns=["hh_id"])
    for h in dict.fromkeys(hits["hh_id"].astype(str)):  # the card counts only while it is the latest 签约's
        ev = read_events(ws, hh_id=h)
        signs = ev[ev["kind"].eq(SIGN).to_numpy()]
        if len(signs) and signs["card_hash"].iloc[-1] == digest:
            return h
    return None


LOOKUPS_PER_10_MINUTES = 120
"""How many look-ups (:func:`find_customer`) one account may make in 10 minutes (each is an audit row)."""
LOOKUP_MINUTES = 30
"""How long a teller's look-up lets the page serve the customer it found (:func:`looked_up`)."""


def looked_up(ws: Workspace, account: Account, hh_id: str, *, minutes: int = LOOKUP_MINUTES) -> bool:
    """True when ``account`` found ``hh_id`` with :func:`find_customer` in the last ``minutes`` (its audit rows:
    a server-side record the client cannot forge)."""
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")
    rows = ws.read("audit", where='action = ? AND actor = ? AND "at" >= ?', params=("柜员查询", account.username, since),
                   columns=["detail"])
    needle = f'"hh_id": "{hh_id}"'
    return any(needle in str(d) and '"found": true' in str(d) for d in rows["detail"])


def _move(ws: Workspace, account: Account, kind: str, *, hh_id: str | None, card_no: str | None, amount: float,
          branch_id: str | None, on: dt.date | dt.datetime | str | None, found: bool = False) -> dict[str, Any]:
    branch = _serving_branch(ws, account, branch_id)
    value = _amount(amount, kind)
    when = _dated(account, on, admin_only=True)
    if (found or account.role == "teller") and not card_no and not looked_up(ws, account, str(hh_id or "")):
        # a teller reaches a customer only through a look-up (card or ID number): never by a household id alone,
        # and the refusal tells nothing about the household (neither whether it exists nor its amounts)
        raise PermissionDeniedError("只能为刚按卡号或身份证号查询到的客户办理，给出的户号不是。"
                                    "修正方法：先按卡号或身份证号查询客户，再办理用信或还款")
    if card_no:
        holder = _find_signed_id(ws, card_digits(card_no), actor=account.username)
        if holder is None:
            raise ValidationError(f"没有找到卡号尾号 {card_digits(card_no)[-4:]} 的签约客户",
                                  fix="核对卡号；换过卡的客户用新卡")
        if hh_id and str(hh_id).strip() != holder:
            raise ValidationError("户号与卡号不是同一客户", fix="只给卡号，或给查询到的户号")
        hh_id = holder
    with ws.transaction(actor=account.username, action=kind) as tx:
        row = _household(tx, hh_id)
        h = str(row["hh_id"])
        _, state = _state(tx, row)
        if state is None or not bool(state["signed"]):
            raise ValidationError(f"户 {h} 尚未签约发卡，不能{kind}", fix="先由网点主任办理签约发卡")
        line, balance = float(state["available_amount"]), float(state["balance"])
        granted = _stored_amount(row.get("granted_amount"))
        if kind == DRAW and not granted > _CENT:
            raise ValidationError(f"户 {h} 的授信已取消/下调为 0，不能用信", fix="可以还款；重新授信后再签约、用信")
        free = round(min(line, granted) - balance, 2)
        if kind == DRAW and value > free + _CENT:
            cut = f"（授信已下调为 {_yuan(granted)}）" if granted + _CENT < line else ""
            raise ValidationError(f"超出可用额度：户 {h} 签约额度 {_yuan(line)}{cut}，用信余额 {_yuan(balance)}，"
                                  f"可用 {_yuan(max(free, 0.0))}，本次用信 {_yuan(value)}",
                                  fix=f"用信金额不超过 {_yuan(max(free, 0.0))}；先还款可恢复额度")
        if kind == REPAY and value > balance + _CENT:
            raise ValidationError(f"还款 {_yuan(value)} 超过户 {h} 的用信余额 {_yuan(balance)}",
                                  fix=f"还款金额不超过 {_yuan(balance)}")
        after = round(balance + value if kind == DRAW else balance - value, 2)
        last4 = state["card_last4"] if isinstance(state["card_last4"], str) else None
        event_id = _append(tx, hh_id=h, kind=kind, amount=value, branch_id=branch, actor=account.username,
                           on=when, card=(None, last4) if last4 else None)
        _set_projection(tx, h, signed=True, line=line, balance=after)
        tx.note(EVENTS_LAYER, {"op": kind, "event_id": event_id, "hh_id": h, "amount": value, "branch_id": branch,
                               "card_last4": last4, "balance_before": balance, "balance_after": after})
    return {"event_id": event_id, "hh_id": h, "kind": kind, "amount": value, "branch_id": branch,
            "balance": after, "available": max(round(min(line, granted) - after, 2), 0.0), "signed_amount": line, "card_last4": last4}


def draw(ws: Workspace, account: Account, hh_id: str | None = None, *, amount: float, card_no: str | None = None,
         branch_id: str | None = None, on: dt.date | dt.datetime | str | None = None,
         found: bool = False) -> dict[str, Any]:
    """Record a drawdown (用信) of a signed customer, at the account's branch (a teller's own; the administrator
    names it), within the amount still available (signed line − balance).

    Parameters
    ----------
    ws : Workspace
    account : Account
        A teller (its own branch) or an administrator (permission ``serve_credit``).
    hh_id : str, optional
        The household (as :func:`find_customer` found it); or give ``card_no``.
    amount : float
        Yuan, > 0.
    card_no : str, optional
        The customer's card (its latest 签约's).
    branch_id : str, optional
        Where it happens: for a teller its own branch or nothing (another is refused).
    on : date, optional
        When (default now).
    found : bool
        The page's rule: ``hh_id`` must be a customer this account found with :func:`find_customer` in the last
        :data:`LOOKUP_MINUTES` (:func:`looked_up`); a forged household id is refused.

    Returns
    -------
    dict
        ``event_id``, ``hh_id``, ``kind``, ``amount``, ``branch_id``, ``balance``, ``available``, ``signed_amount``.

    Raises
    ------
    ValidationError
        ``超出可用额度 …`` when ``amount`` exceeds what is available; unknown or unsigned customer.
    PermissionDeniedError
        Not a teller/administrator, or a teller naming another branch.
    """
    return _move(ws, account, DRAW, hh_id=hh_id, card_no=card_no, amount=amount, branch_id=branch_id, on=on,
                 found=found)


def repay(ws: Workspace, account: Account, hh_id: str | None = None, *, amount: float, card_no: str | None = None,
          branch_id: str | None = None, on: dt.date | dt.datetime | str | None = None,
          found: bool = False) -> dict[str, Any]:
    """Record a repayment (还款) of a signed customer, at most its balance; as :func:`draw` otherwise."""
    return _move(ws, account, REPAY, hh_id=hh_id, card_no=card_no, amount=amount, branch_id=branch_id, on=on,
                 found=found)


def find_customer(ws: Workspace, account: Account, *, card_no: str | None = None,
                  id_number: str | None = None) -> dict[str, Any] | None:
    """A teller's look-up of one signed customer of the county, by card number or ID number.

    Returns the minimal view (keys of :data:`VIEW_COLUMNS`; name and ID masked) or None when no signed customer
    matches. Every look-up is an audit row ``柜员查询`` (last four digits of what was asked, the household found;
    never a full number). Permission ``serve_credit``.
    """
    account.require("serve_credit")
    if bool(card_no) == bool(id_number):
        raise ValidationError("请只按卡号或只按身份证号查询", fix="输入卡号，或输入身份证号")
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
    recent = ws.count("audit", where='action = ? AND actor = ? AND "at" >= ?', params=("柜员查询", account.username, since))
    if recent >= LOOKUPS_PER_10_MINUTES:
        raise PermissionDeniedError(f"查询过于频繁：{account.username} 10 分钟内已查询 {recent} 次。"
                                    "修正方法：稍后再查；确有大量业务请联系管理员")
    hh_id: str | None = None
    if card_no:
        digits = card_digits(card_no)
        hh_id = _find_signed_id(ws, digits, actor=account.username)
        asked = {"by": "card", "last4": digits[-4:]}
    else:
        idn = re.sub(r"\s", "", str(id_number)).upper()
        if not re.fullmatch(r"\d{17}[\dX]|\d{15}", idn):
            raise ValidationError("身份证号应为 18 位（末位可为 X）或 15 位", fix="核对证件后重新输入")
        asked = {"by": "id_no", "last4": idn[-4:]}
        rows = ws.read("households", where="id_no = ? AND signed", params=(idn,), columns=["hh_id"])
        hh_id = str(rows["hh_id"].iloc[0]) if len(rows) == 1 else None
    view = None
    if hh_id is not None:
        one = ws.read("households", where="hh_id = ?", params=(hh_id,),
                      columns=["hh_id", "head_name", "id_no", "granted_amount", "signed", "available_amount",
                               "balance"])
        ev = project(read_events(ws, hh_id=hh_id))
        if len(one) and bool(one["signed"].iloc[0]) and hh_id in ev.index and bool(ev.at[hh_id, "signed"]):
            r = one.iloc[0]  # the amounts are the events' (a stored value edited outside them is not served)
            line, bal = _scalar(ev.at[hh_id, "available_amount"]), _scalar(ev.at[hh_id, "balance"])
            granted = float(pd.to_numeric(r["granted_amount"], errors="coerce") or 0.0)
            view = {"hh_id": hh_id, "name": mask_name(r["head_name"]), "id_no": mask_id_no(r["id_no"]),
                    "card_last4": ev["card_last4"].iloc[0] if len(ev) else None,
                    "granted_amount": granted, "signed_amount": line, "balance": bal,
                    "available": max(round(min(line, granted) - bal, 2), 0.0)}
    with ws.transaction(actor=account.username, action="柜员查询") as tx:
        tx.note("households", {"op": "teller_lookup", **asked, "branch_id": account.branch_id,
                               "found": view is not None, "hh_id": view["hh_id"] if view else None})
    return view
