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

from grids.text import FALSE_WORDS, TRUE_WORDS, normalize_id

_ID_WEIGHTS = np.array((7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), dtype=np.int64)
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
_SCIENTIFIC = re.compile(r"^([+-]?)([0-9]+)(?:\.([0-9]*))?[eE]([+-]?[0-9]+)$")
_POINT_ZERO = re.compile(r"^([+-]?[0-9]+)\.0+$")

EXACT_LIMIT = 2 ** 53
"""Integers below this are exact in a binary64 float (what Excel stores a number as); above it, digits may be lost."""

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
    v = normalize_id(value)
    if not _ID_RE.match(v):
        return False
    try:
        born = dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        return False
    return id_check_char(v[:17]) == v[17]


def id_check_codes(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check characters (as ASCII codes) of resident ID numbers, from their first 17 digits.

    The one place the ID-number checksum is computed (validation here, the demo's ID numbers in
    :mod:`geodata.names`). ``first17`` is an ``(n, 17)`` array of ASCII digit codes.

    >>> codes = np.frombuffer(b"11010519491231002", dtype=np.uint8).reshape(1, 17)
    >>> bytes(id_check_codes(codes)).decode()
    'X'
    """
    total = (np.asarray(first17, dtype=np.int64) - 48) @ _ID_WEIGHTS
    codes: np.ndarray = _ID_CHECK[total % 11]
    return codes


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of an ID number (:func:`id_check_codes`).

    >>> id_check_char("11010519491231002")
    'X'
    """
    codes = np.frombuffer(first17.encode("ascii"), dtype=np.uint8).reshape(1, 17)
    return chr(int(id_check_codes(codes)[0]))


def check_id_no(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Normalise ID numbers (:func:`grids.text.normalize_id`: NFKC so full-width digits count, zero-width
    characters removed, upper-case ``X``); mask of present values that are not valid.

    Examples
    --------
    >>> norm, bad = check_id_no(pd.Series(["１１０１０５１９４９１２３１００２ｘ", "1.10105E+17", None]))
    >>> norm.tolist(), bad.tolist()
    (['11010519491231002X', '1.10105E+17', None], [False, True, False])
    """
    has = present(values)
    norm = values.map(normalize_id, na_action="ignore").astype(object).where(has, None)
    shape_ok = (has & norm.astype("str").str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False)).to_numpy(dtype=bool)
    ok = np.zeros(len(values), dtype=bool)
    if shape_ok.any():
        text = norm[shape_ok].astype("str")
        digits = np.frombuffer("".join(text).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
        check = id_check_codes(digits[:, :17])
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
    norm = values.map(normalize_id, na_action="ignore").map(phone_digits, na_action="ignore").where(has)
    bad = has & ~norm.astype("str").str.fullmatch(r"[0-9]{11}").fillna(False).astype(bool)
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
    ok = text.str.fullmatch(r"[0-9]+").fillna(False).astype(bool) & text.str.len().isin(lengths)
    return has & ~ok


def number_as_id(value: str) -> tuple[str, bool]:
    """An identifier that a spreadsheet may have stored as a number, back as its digits.

    Returns ``(text, exact)``. ``1234.0`` becomes ``1234``; scientific notation becomes the integer it
    stands for when that is certain: below :data:`EXACT_LIMIT` and written with at least as many digits as
    the integer has (``1.2345E+4`` → ``12345``). Otherwise (``1.50422E+17``: six digits for an 18-digit
    number; anything at or above 2**53) the digits are lost and ``exact`` is False. Other text is returned
    unchanged (exact).

    Examples
    --------
    >>> number_as_id("150422100201.0"), number_as_id("1.2345E+4"), number_as_id("H001")
    (('150422100201', True), ('12345', True), ('H001', True))
    >>> number_as_id("1.50422E+17"), number_as_id("1.5042219900101123e+17")
    (('1.50422E+17', False), ('1.5042219900101123e+17', False))
    """
    text = value.strip()
    m = _POINT_ZERO.match(text)
    if m:
        return m.group(1), abs(int(m.group(1))) < EXACT_LIMIT
    m = _SCIENTIFIC.match(text)
    if not m:
        return value, True
    sign, whole, frac, exp = m.group(1), m.group(2), m.group(3) or "", int(m.group(4))
    point = len(whole) + exp  # digits before the decimal point once the exponent is applied
    mantissa = whole + frac
    if point < len(mantissa.rstrip("0")) or point > 400:
        return value, False  # not an integer (or absurd): nothing a spreadsheet made of an id
    number = int((mantissa + "0" * (point - len(mantissa)))[:point] or "0")
    significant = len(mantissa.lstrip("0"))
    exact = number < EXACT_LIMIT and significant >= len(str(number))
    return (f"{'-' if sign == '-' else ''}{number}" if exact else value), exact


def ids_from_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Identifiers normalised (:func:`grids.text.normalize_id`) with spreadsheet numbers turned back into
    digits (:func:`number_as_id`); mask of present values whose digits were lost (left as they are).

    Examples
    --------
    >>> ids, lost = ids_from_numbers(pd.Series(["ｈ００１\u200b", "42.0", "1.50422E+11", " h2 ", None]))
    >>> ids.tolist(), lost.tolist()
    (['H001', '42', '1.50422E+11', 'H2', None], [False, False, True, False, False])
    """
    out: list[str | None] = []
    lost = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.tolist()):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            out.append(None)
            continue
        v = str(v)
        # ASCII needs no NFKC nor zero-width removal: the common case, kept fast (10^6 ids in well under 1 s)
        v = v.strip().upper() if v.isascii() else normalize_id(v)
        if not v:
            out.append(None)
            continue
        if "." in v or "E" in v:
            v, exact = number_as_id(v)
            lost[i] = not exact
        out.append(v)
    return pd.Series(out, index=values.index, dtype=object), pd.Series(lost, index=values.index)
