"""Value checks used by :mod:`grids.ingest`: one function per kind of value, vectorised over a column.

Every checker takes a column of strings (``None``/``NA`` for an empty cell) and returns the parsed values
and a boolean mask of the cells that are present but malformed; empty cells are never "bad" here — whether
a value is required is decided by the caller.

Examples
--------
>>> id_no_ok("11010519491231002X"), id_no_ok("110105194912310021")
(True, False)
>>> phone_digits("138-0476-1234")
'13804761234'
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")

TRUE_WORDS = frozenset({"是", "y", "yes", "true", "t", "1", "√", "✓", "已", "有", "已建档", "已签约", "已用信",
                        "符合", "合格"})
FALSE_WORDS = frozenset({"否", "n", "no", "false", "f", "0", "×", "✗", "未", "无", "未建档", "未签约", "未用信",
                         "不符合", "不合格"})

MAX_AMOUNT = 10_000_000.0
"""Upper bound of a plausible household amount in yuan (the largest product line is 1m)."""


def present(values: pd.Series) -> pd.Series:
    """True where a cell holds a non-blank value."""
    return values.notna() & (values.astype("str").str.strip() != "")


def id_no_ok(value: str) -> bool:
    """True when ``value`` is an 18-character resident ID number (GB 11643) with a valid date and checksum.

    Examples
    --------
    >>> id_no_ok("11010519491231002X")
    True
    >>> id_no_ok("110105194902300021")  # 30 February
    False
    """
    v = value.strip().upper()
    if not _ID_RE.match(v):
        return False
    try:
        born = dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        return False
    total = sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == v[17]


def check_id_no(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Normalise ID numbers (trim, upper-case ``X``); mask of present values that are not valid."""
    has = present(values)
    norm = values.astype("str").str.strip().str.upper().astype(object).where(has, None)
    shape_ok = (has & norm.astype("str").str.fullmatch(r"\d{17}[\dX]").fillna(False)).to_numpy(dtype=bool)
    ok = np.zeros(len(values), dtype=bool)
    if shape_ok.any():
        text = norm[shape_ok].astype("str")
        digits = np.frombuffer("".join(text).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
        total = (digits[:, :17].astype(np.int64) - 48) @ np.array(_ID_WEIGHTS, dtype=np.int64)
        check = np.frombuffer(_ID_CHECK.encode("ascii"), dtype=np.uint8)[total % 11]
        born = pd.to_datetime(text.str.slice(6, 14), format="%Y%m%d", errors="coerce")
        dated = (born >= pd.Timestamp("1900-01-01")) & (born <= pd.Timestamp(dt.date.today()))
        ok[shape_ok] = (check == digits[:, 17]) & dated.fillna(False).to_numpy(dtype=bool)
    return norm, pd.Series(has.to_numpy(dtype=bool) & ~ok, index=values.index)


def phone_digits(value: str) -> str:
    """The digits of a phone number without separators or the ``+86`` prefix."""
    digits = re.sub(r"[\s\-()（）]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits


def check_phone(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Normalise phone numbers to 11 digits; mask of present values that are not 11 digits."""
    has = present(values)
    norm = values.astype("str").map(phone_digits, na_action="ignore").where(has)
    bad = has & ~norm.astype("str").str.fullmatch(r"\d{11}").fillna(False).astype(bool)
    return norm, bad


def parse_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse 是/否, Y/N, 1/0, true/false, √/× …; mask of present values that are none of these."""
    has = present(values)
    low = values.astype("str").str.strip().str.lower()
    true = low.isin(TRUE_WORDS) & has
    false = low.isin(FALSE_WORDS) & has
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[true] = True
    out[false] = False
    return out, has & ~true & ~false


def parse_amount(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Parse amounts in yuan (``50,000``, ``5万``, ``50000.00元``).

    Returns the parsed floats and three masks: not a number, negative, above :data:`MAX_AMOUNT`.
    """
    has = present(values)
    text = values.astype("str").str.strip().str.replace(r"[,，\s元¥￥]", "", regex=True)
    wan = text.str.endswith("万").fillna(False).astype(bool)
    text = text.str.removesuffix("万")
    num = pd.to_numeric(text.where(has), errors="coerce").astype(float)
    num = num.where(~wan, num * 10_000.0)
    bad = has & (num.isna() | ~np.isfinite(num.fillna(0.0)))
    neg = has & ~bad & (num < 0)
    absurd = has & ~bad & (num > MAX_AMOUNT)
    return num, bad, neg, absurd


def parse_date(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse dates (``2019-03-05``, ``2019/3/5``, ``20190305``, ``2019年3月5日``).

    Returns the dates (``datetime64``) and two masks: unreadable, later than today.
    """
    has = present(values)
    text = values.astype("str").str.strip().str.replace(r"[年月/.]", "-", regex=True).str.replace("日", "")
    compact = text.str.fullmatch(r"\d{8}").fillna(False).astype(bool)
    text = text.where(~compact, text.str.slice(0, 4) + "-" + text.str.slice(4, 6) + "-" + text.str.slice(6, 8))
    parsed = pd.to_datetime(text.where(has).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    bad = has & parsed.isna()
    future = has & ~bad & (parsed > pd.Timestamp(dt.date.today()))
    return parsed, bad, future


def digits_of_length(values: pd.Series, lengths: int | tuple[int, ...]) -> pd.Series:
    """Mask of present values that are not all digits of one of ``lengths``."""
    lengths = (lengths,) if isinstance(lengths, int) else lengths
    has = present(values)
    text = values.astype("str").str.strip()
    ok = text.str.fullmatch(r"\d+").fillna(False).astype(bool) & text.str.len().isin(lengths)
    return has & ~ok
