"""Village (村/嘎查/社区), group (组) and town names as registers write them, matched to statistical codes.

A 联社's household registers name the village and the group the way the 村委会 writes them: “三家村”,
“三家村委会”, “三家嘎查村”; “一组”, “1组”, “第一村民小组”, “一社”, “01组”. This module turns such names into
comparison keys (:func:`village_key`, :func:`group_key`, :func:`town_key`) and matches them to the workspace's
admin units:

- :func:`match_towns` resolves a 乡镇 column (name or 9-digit code) to town codes;
- :func:`match_names` matches village names within their town (or county-wide when no town is known);
- :func:`match_groups` matches group names within their village.

A name matches when a confirmed alias (layer ``name_aliases``) says so, or when exactly one unit has the same
name, or the same key. Two equally good units (ambiguous) and no unit at all (unknown) give no match but the
closest candidates, ranked by similarity of the keys (:func:`similarity`), for the rejects file:
“是否指：三家子村（150422101203）？” (:func:`suggestion`). Names that fit only approximately are never taken
on their own: the user confirms them once (``import --names mapping.csv``, :func:`read_name_mapping`,
:func:`save_aliases`) and every later import uses the alias.

Examples
--------
>>> {village_key(n) for n in ("三家村", "三家村委会", "三家 村民委员会", "三家嘎查村", "三家 社区", "三家（原三家屯）")}
{'三家'}
>>> sorted({group_key(n) for n in ("一组", "1组", "第一村民小组", "一社", "1社", "01组", "第1组", "一队")})
['1']
>>> chinese_number("二十三"), chinese_number("一百零五"), chinese_number("十")
(23, 105, 10)
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from grids.errors import ValidationError
from grids.text import normalize_id, normalize_text, plain

if TYPE_CHECKING:
    from grids.workspace import Workspace

VILLAGE_SUFFIXES: tuple[str, ...] = ("社区居民委员会", "社区居委会", "嘎查村民委员会", "村民委员会", "居民委员会",
                                     "嘎查村委会", "嘎查委员会", "村委会", "居委会",
                                     "嘎查村", "嘎查", "社区", "行政村", "委员会", "村委", "村")
"""Suffixes removed from a village name before comparing (the longest that fits, once; then ``村`` again)."""
GROUP_SUFFIXES: tuple[str, ...] = ("村民小组", "村民组", "居民小组", "小组", "生产队", "组", "社", "队")
"""Suffixes of a group name (``第一村民小组`` → group 1)."""
TOWN_SUFFIXES: tuple[str, ...] = ("街道办事处", "人民政府", "民族乡", "民族镇", "街道", "办事处", "苏木", "镇", "乡")
"""Suffixes removed from a town name before comparing."""
CANDIDATES = 3
"""How many candidates a non-match lists."""
MATCH_HOW: dict[str, str] = {
    "alias": "确认过的别名", "name": "名称相同", "key": "名称规范后相同", "ambiguous": "有歧义",
    "unclear": "写法无法判断是哪个组",
    "unknown": "无法识别", "town": "乡镇无法识别", "blank": "未填写",
}
"""What each ``how`` of a match result means (Chinese, for reports)."""

_DIGITS = "零〇一二两三四五六七八九"
_DIGIT_VALUE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
                "九": 9}
_NUMERAL_RUN = re.compile(f"(?<=第)[{_DIGITS}十百]+|[{_DIGITS}十百]+(?=[号队社组分场])")
_SPACES = re.compile(r"[\s\u3000·•._\-—－/\\]+")
_BRACKETS = re.compile(r"[（(][^（）()]*[）)]")
_GROUP = re.compile(rf"(?:第)?([0-9]+|[{_DIGITS}十百]+)\s*(?:{'|'.join(GROUP_SUFFIXES)})?$")
_NUMBER_SPLIT = re.compile(rf"[0-9{_DIGITS}十百][\s\u3000\-−—－.·•/\\~～、,，]+[0-9{_DIGITS}十百]")
_LEADING_SIGN = re.compile(r"^[\s\u3000]*[-−—－+]")
_ANY_BRACKET = re.compile(r"[（()）【】\[\]]")


def chinese_number(text: str) -> int | None:
    """The value of a Chinese (一、十一、二十、一百零五、两) or Arabic numeral, or ``None``.

    Examples
    --------
    >>> chinese_number("十一"), chinese_number("07"), chinese_number("三家")
    (11, 7, None)
    """
    text = normalize_text(text)
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if any(ch not in _DIGIT_VALUE and ch not in "十百" for ch in text):
        return None
    if all(ch in _DIGIT_VALUE for ch in text):  # 一〇五 read digit by digit
        return int("".join(str(_DIGIT_VALUE[ch]) for ch in text)) if len(text) > 1 else _DIGIT_VALUE[text]
    total, current = 0, 0
    for ch in text:
        if ch in _DIGIT_VALUE:
            current = _DIGIT_VALUE[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        else:  # 百
            total += (current or 1) * 100
            current = 0
    return total + current


def _numerals(text: str) -> str:
    """Chinese numerals that count (after 第, before 号/队/社/组/分/场) written as Arabic numbers: ``十二号`` and
    ``12号`` compare equal, while ``三家`` stays a word."""
    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        if not any(ch in _DIGIT_VALUE or ch == "十" for ch in run):
            return run  # 百 alone (百合村) is a word
        value = chinese_number(run)
        return run if value is None else str(value)
    return _NUMERAL_RUN.sub(repl, text)


def _clean(name: Any) -> str:
    """NFKC, no spaces or separators, no bracketed remark, upper-case Latin."""
    return _clean_text(name) if isinstance(name, str) else _clean_text(normalize_text(name))


@functools.lru_cache(maxsize=65536)
def _clean_text(name: str) -> str:
    text = "".join(ch for ch in normalize_text(name) if unicodedata.category(ch)[0] != "C")  # \x00, U+202E …
    text = _BRACKETS.sub("", text)
    return _SPACES.sub("", text).upper()


def _strip_suffix(text: str, suffixes: Sequence[str]) -> str:
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)]
    return text


def village_key(name: Any) -> str:
    """The comparison key of a village/嘎查/社区 name: cleaned, suffix removed, numerals as digits.

    Examples
    --------
    >>> village_key(" 三家子村委会 "), village_key("巴彦塔拉嘎查村"), village_key("十二号村"), village_key("社区")
    ('三家子', '巴彦塔拉', '12号', '社区')
    >>> village_key("林东社区居委会"), village_key("巴彦嘎查村民委员会")
    ('林东', '巴彦')
    """
    text = _clean(name)
    stripped = _strip_suffix(text, VILLAGE_SUFFIXES)
    if stripped != text and stripped.endswith("村") and len(stripped) > 1:  # 三家村村委会
        stripped = stripped[:-1]
    return _numerals(stripped)


def town_key(name: Any) -> str:
    """The comparison key of a town/苏木/街道 name.

    Examples
    --------
    >>> town_key("林东镇"), town_key("林东"), town_key("查干哈达苏木"), town_key("新城街道办事处"), town_key("隆昌镇人民政府")
    ('林东', '林东', '查干哈达', '新城', '隆昌')
    """
    text = _clean(name)
    stripped = _strip_suffix(text, TOWN_SUFFIXES)
    if stripped != text:  # 隆昌镇人民政府
        stripped = _strip_suffix(stripped, TOWN_SUFFIXES)
    return _numerals(stripped)


def group_key(name: Any) -> str:
    """The comparison key of a group (组) name: its number when it has one (``'1'``), else the cleaned name.

    Examples
    --------
    >>> group_key("第一村民小组"), group_key("01组"), group_key("十一社"), group_key("东营子组"), group_key("3")
    ('1', '1', '11', '东营子', '3')
    """
    text = _clean(name)
    m = _GROUP.search(text)
    if m and (m.start() == 0 or text[: m.start()].endswith(("村", "嘎查", "社区"))):
        value = chinese_number(m.group(1))
        if value is not None:
            return str(value)
    return _numerals(_strip_suffix(text, GROUP_SUFFIXES))


def group_name_unclear(name: Any) -> bool:
    """Whether a group name cannot be read as one group: two numbers (``1-2组``, ``3.5组``), a sign
    (``-1组``), group zero (``零组``) or a remark in brackets (``三组（东）``). Normalising such a name would
    silently make another group of it (12组, 35组, 1组, 0组, 3组).

    >>> [group_name_unclear(n) for n in ("1-2组", "3.5组", "-1组", "零组", "三组（东）", "第一村民小组", "东营子")]
    [True, True, True, True, True, False, False]
    """
    text = normalize_text(name)
    if not text:
        return False
    if _ANY_BRACKET.search(text) or _LEADING_SIGN.search(text) or _NUMBER_SPLIT.search(text):
        return True
    return group_key(text) in ("0", "00")


def group_label(name: Any) -> str:
    """A group name written the one way (``'1组'``), or the cleaned name when it has no number.

    >>> group_label("第一村民小组"), group_label("东营子")
    ('1组', '东营子组')
    """
    key = group_key(name)
    return f"{key}组" if key else ""


def similarity(a: str, b: str) -> float:
    """Similarity (0–1) of two keys: difflib's ratio, raised when one contains the other.

    >>> round(similarity("三家", "三家子"), 2), similarity("三家", "三家"), similarity("三家", "红旗")
    (0.83, 1.0, 0.0)
    """
    return _scores(a, [b])[0]


def _scores(key: str, keys: Sequence[str]) -> list[float]:
    """:func:`similarity` of ``key`` with each of ``keys`` (one matcher, ``key``'s index built once)."""
    if not key:
        return [0.0] * len(keys)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(key)
    out = []
    for k in keys:
        if not k:
            out.append(0.0)
            continue
        matcher.set_seq1(k)
        ratio = matcher.ratio()
        if key in k or k in key:
            ratio = max(ratio, 0.5 + 0.5 * min(len(key), len(k)) / max(len(key), len(k)))
        out.append(ratio)
    return out


@dataclass(frozen=True)
class Candidate:
    """One possible unit for a name: its name, code and similarity (0–1)."""

    name: str
    code: str
    score: float

    def label(self) -> str:
        """``三家子村（150422101203）``."""
        return f"{self.name}（{self.code}）"


def suggestion(candidates: Iterable[Candidate]) -> str:
    """“是否指：A（code）、B（code）？”, or ``""`` without candidates.

    >>> suggestion([Candidate("三家子村", "150422101203", 0.9)])
    '是否指：三家子村（150422101203）？'
    """
    items = [c.label() for c in candidates]
    return f"是否指：{'、'.join(items)}？" if items else ""


@dataclass(frozen=True)
class NameMatch:
    """The outcome for one name: ``code`` when matched, else ``None`` and the closest ``candidates``.

    ``how`` is a key of :data:`MATCH_HOW`; ``parent`` the town (village match) or village (group match)
    code the name was matched within (``None`` when county-wide or the town is unknown).
    """

    code: str | None
    how: str
    candidates: tuple[Candidate, ...] = ()
    parent: str | None = None


def _units(candidates: pd.DataFrame, level: str) -> pd.DataFrame:
    if candidates is None or not len(candidates):
        return pd.DataFrame({"code": [], "name": [], "parent_code": []}, dtype=object)
    sel = candidates[candidates["level"].astype(object) == level]
    code = sel["code"].map(normalize_id)
    parent = sel["parent_code"].astype(object) if "parent_code" in sel else pd.Series(None, index=sel.index)
    parent_code = [normalize_id(p) if isinstance(p, str) and p.strip() else c[: {"town": 6, "village": 9,
                                                                                   "group": 12}.get(level, 0)]
                   for p, c in zip(parent, code, strict=True)]
    name = sel["name"].astype(object) if "name" in sel else pd.Series(None, index=sel.index)
    return pd.DataFrame({"code": code.to_numpy(), "name": [n if isinstance(n, str) else "" for n in name],
                         "parent_code": parent_code}, dtype=object)


def _alias_lookup(aliases: pd.DataFrame | None, level: str) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    if aliases is None or not len(aliases):
        return out
    sel = aliases[aliases["level"].astype(object) == level]
    for parent, alias, code in zip(sel["parent_code"], sel["alias"], sel["code"], strict=True):
        if isinstance(alias, str) and isinstance(code, str):
            out[(normalize_id(parent) if isinstance(parent, str) else "", _clean(alias))] = normalize_id(code)
    return out


def _best_scores(key: str, keys: Sequence[str], top: int) -> list[float]:
    """:func:`similarity` of ``key`` with ``keys`` where it can reach the ``top`` best (``-1`` elsewhere): difflib's
    cheap upper bound (``quick_ratio``) skips most of the exact ratios."""
    if not key or len(keys) <= top:
        return _scores(key, keys)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(key)
    best: list[float] = []  # the top scores so far, ascending
    out = []
    for k in keys:
        if not k:
            out.append(0.0)
            continue
        bonus = 0.5 + 0.5 * min(len(key), len(k)) / max(len(key), len(k)) if (key in k or k in key) else 0.0
        matcher.set_seq1(k)
        floor = best[0] if len(best) >= top else -1.0
        if max(bonus, matcher.quick_ratio()) < floor:
            out.append(-1.0)
            continue
        score = max(bonus, matcher.ratio())
        out.append(score)
        best = sorted([*best, score])[-top:]
    return out


def _rank(key: str, pool: pd.DataFrame, keys: list[str], *, top: int = CANDIDATES) -> tuple[Candidate, ...]:
    scored = sorted(zip(_best_scores(key, keys, top), pool["name"], pool["code"], strict=True),
                    key=lambda t: (-t[0], t[2]))
    return tuple(Candidate(n or c, c, round(s, 3)) for s, n, c in scored[:top])


def _match_one(text: str, parent: str | None, pool: pd.DataFrame, keys: list[str],
               alias: Mapping[tuple[str, str], str], level: str, keyfn: Callable[[Any], str],
               prefixes: Sequence[str] = ()) -> NameMatch:
    cleaned = _clean(text)
    for scope in ((parent or ""), ""):
        code = alias.get((scope, cleaned))
        if code is not None:
            return NameMatch(code, "alias", (), parent)
        if not parent:
            break
    if not parent:  # county-wide: an alias confirmed in one town only
        codes = {c for (_, a), c in alias.items() if a == cleaned}
        if len(codes) == 1:
            return NameMatch(codes.pop(), "alias", (), parent)
    names = [_clean(n) for n in pool["name"]]
    same = [i for i, n in enumerate(names) if n and n == cleaned]
    if len(same) == 1:
        return NameMatch(pool["code"].iloc[same[0]], "name", (), parent)
    key = keyfn(text)
    for prefix in prefixes:  # “林东镇三家村” within 林东镇
        if prefix and cleaned.startswith(prefix) and len(cleaned) > len(prefix):
            key = keyfn(cleaned[len(prefix):])
            break
    if len(same) > 1:
        hits = same
    else:
        hits = [i for i, k in enumerate(keys) if k and k == key]
    if len(hits) == 1:
        return NameMatch(pool["code"].iloc[hits[0]], "key", (), parent)
    if len(hits) > 1:
        sub = pool.iloc[hits]
        return NameMatch(None, "ambiguous", tuple(Candidate(n or c, c, 1.0) for n, c in
                                                  zip(sub["name"], sub["code"], strict=True)), parent)
    return NameMatch(None, "unknown", _rank(key, pool, keys), parent)


def match_towns(towns: Iterable[Any], *, candidates: pd.DataFrame) -> list[NameMatch | None]:
    """Resolve 乡镇 cells (a 9-digit code or a name as written) to town codes.

    Returns ``None`` for a blank cell, else a :class:`NameMatch` (``how`` ``name``/``key``, or ``unknown`` /
    ``ambiguous`` with the closest towns).

    Examples
    --------
    >>> units = pd.DataFrame({"code": ["150422100", "150422101"], "name": ["林东镇", "隆昌镇"],
    ...                       "level": ["town", "town"], "parent_code": ["150422", "150422"]})
    >>> [m.code for m in match_towns(["林东", "150422101", "隆昌镇"], candidates=units)]
    ['150422100', '150422101', '150422101']
    >>> match_towns(["新城镇"], candidates=units)[0].how
    'unknown'
    """
    pool = _units(candidates, "town")
    keys = [town_key(n) for n in pool["name"]]
    codes = set(pool["code"])
    cache: dict[str, NameMatch | None] = {}
    out: list[NameMatch | None] = []
    for value in towns:
        text = normalize_text(value) if isinstance(value, str) else ""
        if text not in cache:
            if not text:
                cache[text] = None
            elif normalize_id(text) in codes:
                cache[text] = NameMatch(normalize_id(text), "name")
            else:
                cache[text] = _match_one(text, None, pool, keys, {}, "town", town_key)
        out.append(cache[text])
    return out


def match_names(names: Iterable[Any], towns: Iterable[Any] | None = None, *, candidates: pd.DataFrame,
                aliases: pd.DataFrame | None = None, town: str | None = None) -> list[NameMatch]:
    """Match village/嘎查/社区 names to 12-digit village codes, each within its town.

    Parameters
    ----------
    names : iterable
        Village names as written (blank cells give ``how='blank'``).
    towns : iterable, optional
        The 乡镇 of each name (name or code, aligned with ``names``); a blank cell falls back to ``town``.
    candidates : DataFrame
        Admin units with ``code``, ``name``, ``level`` and ``parent_code`` (``admin_units`` of a workspace).
    aliases : DataFrame, optional
        Confirmed names (layer ``name_aliases``: ``level``, ``parent_code``, ``alias``, ``code``); an alias
        with no ``parent_code`` applies county-wide.
    town : str, optional
        The town (name or code) of every name whose 乡镇 cell is blank (``import --town``). With neither,
        a name is matched county-wide, and a name found in two towns is ambiguous.

    Returns
    -------
    list of NameMatch
        Aligned with ``names``: ``how`` is ``alias``, ``name`` or ``key`` with a ``code``; or ``ambiguous``,
        ``unknown`` (closest villages in the town as ``candidates``), ``town`` (the town is unknown; the
        closest towns as ``candidates``) or ``blank`` without one.

    Examples
    --------
    >>> units = pd.DataFrame({
    ...     "code": ["150422101", "150422101201", "150422101203"], "name": ["隆昌镇", "三家村", "三家子村"],
    ...     "level": ["town", "village", "village"], "parent_code": ["150422", "150422101", "150422101"]})
    >>> [m.code for m in match_names(["三家村委会", "三家子"], ["隆昌镇", "隆昌"], candidates=units)]
    ['150422101201', '150422101203']
    >>> m = match_names(["三家屯"], town="隆昌镇", candidates=units)[0]
    >>> m.how, suggestion(m.candidates[:1])
    ('unknown', '是否指：三家村（150422101201）？')
    """
    names = list(names)
    town_cells = list(towns) if towns is not None else [None] * len(names)
    if len(town_cells) != len(names):
        raise ValidationError("乡镇与村名的行数不一致", fix="传入与村名等长的乡镇列")
    default = match_towns([town], candidates=candidates)[0] if town else None
    if default is not None and default.code is None:
        return [NameMatch(None, "town", default.candidates) for _ in names]
    resolved = match_towns(town_cells, candidates=candidates)
    pool = _units(candidates, "village")
    town_names = dict(zip(_units(candidates, "town")["code"], _units(candidates, "town")["name"], strict=True))
    alias = _alias_lookup(aliases, "village")
    by_town = {code: grp for code, grp in pool.groupby("parent_code", sort=False)}
    keys_all = [village_key(n) for n in pool["name"]]
    keys_of = {code: [village_key(n) for n in grp["name"]] for code, grp in by_town.items()}
    empty = pool.iloc[:0]
    cache: dict[tuple[str, str | None], NameMatch] = {}
    out = []
    for value, tm in zip(names, resolved, strict=True):
        text = normalize_text(value) if isinstance(value, str) else ""
        if not text:
            out.append(NameMatch(None, "blank"))
            continue
        tm = tm if tm is not None else default
        if tm is not None and tm.code is None:
            out.append(NameMatch(None, "town", tm.candidates))
            continue
        parent = tm.code if tm is not None else None
        k = (text, parent)
        if k not in cache:
            if parent is None:
                cache[k] = _match_one(text, None, pool, keys_all, alias, "village", village_key)
            else:
                tname = town_names.get(parent, "")
                prefixes = [p for p in (_clean(tname), town_key(tname)) if p]
                cache[k] = _match_one(text, parent, by_town.get(parent, empty), keys_of.get(parent, []), alias,
                                      "village", village_key, prefixes)
        out.append(cache[k])
    return out


def match_groups(names: Iterable[Any], villages: Iterable[Any], *, candidates: pd.DataFrame,
                 aliases: pd.DataFrame | None = None) -> list[NameMatch]:
    """Match group (组) names to 15-digit group codes within their village.

    A village with no group units gives ``how='none'`` (nothing to match against; the household is placed by
    its village). A group unit without a name is known by the number in its code (``…001`` → group 1).

    Examples
    --------
    >>> units = pd.DataFrame({"code": ["150422101201001", "150422101201002"], "name": ["一组", None],
    ...                       "level": ["group", "group"], "parent_code": ["150422101201"] * 2})
    >>> [m.code for m in match_groups(["第一村民小组", "2社"], ["150422101201"] * 2, candidates=units)]
    ['150422101201001', '150422101201002']
    >>> match_groups(["一组"], ["150422101202"], candidates=units)[0].how
    'none'
    """
    pool = _units(candidates, "group")
    pool["name"] = [n if n else f"{int(c[-3:])}组" if c[-3:].isdigit() else c
                    for n, c in zip(pool["name"], pool["code"], strict=True)]
    alias = _alias_lookup(aliases, "group")
    by_village = {code: grp for code, grp in pool.groupby("parent_code", sort=False)}
    keys_of = {code: [group_key(n) for n in grp["name"]] for code, grp in by_village.items()}
    cache: dict[tuple[str, str], NameMatch] = {}
    out = []
    for value, village in zip(names, villages, strict=True):
        text = normalize_text(value) if isinstance(value, str) else ""
        parent = normalize_id(village) if isinstance(village, str) and village.strip() else ""
        if not text:
            out.append(NameMatch(None, "blank", (), parent or None))
            continue
        k = (text, parent)
        if k not in cache:
            if group_name_unclear(text) and alias.get((parent, _clean(text))) is None:
                cache[k] = NameMatch(None, "unclear", (), parent or None)
            elif parent not in by_village:
                code = alias.get((parent, _clean(text)))
                cache[k] = NameMatch(code, "alias" if code else "none", (), parent or None)
            else:
                cache[k] = _match_one(text, parent, by_village[parent], keys_of[parent], alias, "group", group_key)
        out.append(cache[k])
    return out


# --------------------------------------------------------------------------------------------------------
# confirmed names (layer name_aliases)
# --------------------------------------------------------------------------------------------------------


MAPPING_COLUMNS: dict[str, tuple[str, ...]] = {
    "town": ("乡镇", "乡镇名称", "苏木乡镇", "镇", "乡", "苏木", "街道", "town"),
    "village": ("村", "村名", "嘎查", "社区", "所属村", "village"),
    "alias": ("登记名称", "登记名", "原名称", "登记表名称", "别名", "alias"),
    "code": ("行政区划代码", "区划代码", "统计用区划代码", "代码", "code"),
    "name": ("标准名称", "名称", "规范名称", "name"),
}
"""Headers of a name mapping file (``import --names``): 乡镇, 登记名称 and 行政区划代码 or 标准名称; a group
alias by 标准名称 also needs 村."""


def read_name_mapping(file: str | os.PathLike[str], *, candidates: pd.DataFrame) -> pd.DataFrame:
    """Read a name mapping file (CSV/XLSX) and resolve each row to a unit code.

    Each row confirms that a name as written (登记名称) means one unit: given by its code (行政区划代码, 12
    digits for a village, 15 for a group), or by its standard name (标准名称) within the row's 乡镇 (and 村
    for a group). Lines with neither code nor standard name are skipped (a template line not decided yet,
    :meth:`grids.ingest.ImportReport.names_template_csv`). The whole file is refused when any other row
    cannot be resolved, so a mapping is never half read.

    Parameters
    ----------
    file : path
        CSV (UTF-8 or GBK) or XLSX, headers as in :data:`MAPPING_COLUMNS`.
    candidates : DataFrame
        The workspace's admin units (``code``, ``name``, ``level``, ``parent_code``).

    Returns
    -------
    DataFrame
        ``level``, ``parent_code``, ``alias``, ``code`` (the rows of layer ``name_aliases`` without the
        confirmation stamp), one per distinct alias.

    Raises
    ------
    ValidationError
        Missing columns, or rows naming no unit (each listed with its line and the fix).
    """
    from grids.ingest import read_table

    read = read_table(file)
    table, source = read.frame, read.source
    cols: dict[str, str] = {}
    for canonical, headers in MAPPING_COLUMNS.items():
        for h in table.columns:
            if normalize_text(h).lower() in headers and canonical not in cols:
                cols[canonical] = h
    if "alias" not in cols or not ({"code", "name"} & set(cols)):
        raise ValidationError("名称对照表缺少必需的列", file=source,
                              fix="表头写成：乡镇,登记名称,行政区划代码（或 乡镇,登记名称,标准名称；组名另加一列 村）")

    def cell(row: pd.Series, what: str) -> str:
        v = row.get(cols[what]) if what in cols else None
        return normalize_text(v) if isinstance(v, str) else ""

    villages = _units(candidates, "village")
    groups = _units(candidates, "group")
    known = {**dict.fromkeys(villages["code"], "village"), **dict.fromkeys(groups["code"], "group")}
    parents = {**dict(zip(villages["code"], villages["parent_code"], strict=True)),
               **dict(zip(groups["code"], groups["parent_code"], strict=True))}
    exact: dict[tuple[str, str, str], tuple[str, str]] = {}  # a unit's exact name cannot become another's alias
    for lvl, frame in (("village", villages), ("group", groups)):
        for c, nm, p in zip(frame["code"], frame["name"], frame["parent_code"], strict=True):
            if isinstance(nm, str) and nm:
                exact.setdefault((lvl, p, _clean(nm)), (c, nm))
    rows, problems = [], []
    for n, row in table.iterrows():
        alias, code, name = cell(row, "alias"), normalize_id(cell(row, "code")), cell(row, "name")
        if not code and not name:
            continue  # a template line not decided yet
        if not alias:
            problems.append(f"第 {n} 行缺少登记名称")
            continue
        if code:
            if code not in known:
                problems.append(f"第 {n} 行：代码 {plain(code, limit=20)} 不在工作区的村/组中")
                continue
            level = known[code]
        else:
            if cell(row, "village"):
                village = match_names([cell(row, "village")], [cell(row, "town")], candidates=candidates)[0]
                if village.code is None:
                    problems.append(f"第 {n} 行：村 {plain(cell(row, 'village'))} {MATCH_HOW[village.how]}"
                                    f"{suggestion(village.candidates)}")
                    continue
                m = match_groups([name], [village.code], candidates=candidates)[0]
            else:
                m = match_names([name], [cell(row, "town")], candidates=candidates)[0]
            if m.code is None:
                problems.append(f"第 {n} 行：标准名称 {plain(name)} {MATCH_HOW.get(m.how, m.how)}"
                                f"{suggestion(m.candidates)}")
                continue
            code, level = m.code, known.get(m.code, "village")
        town_given = cell(row, "town")
        if town_given and level == "village":
            tm = match_towns([town_given], candidates=candidates)[0]
            if tm is not None and tm.code is not None and tm.code != parents[code]:
                problems.append(f"第 {n} 行：{plain(code, limit=20)} 不属于乡镇 {plain(town_given)}")
                continue
        owner = exact.get((level, parents[code], _clean(alias)))
        if owner is not None and owner[0] != code:
            problems.append(f"第 {n} 行：“{plain(alias)}”是{'同一乡镇' if level == 'village' else '同一村'}里"
                            f"{plain(owner[1])}（{owner[0]}）的名称，不能对应到另一个单位 {plain(code, limit=20)}")
            continue
        rows.append({"level": level, "parent_code": parents[code], "alias": _clean(alias), "code": code,
                     "line": n})
    if problems:
        shown = "；".join(problems[:10]) + (f"；另有 {len(problems) - 10} 行" if len(problems) > 10 else "")
        raise ValidationError(f"名称对照表有 {len(problems)} 行无法对应到工作区的村/组，未采用任何一行：{shown}",
                              file=source, fix="按提示改正代码或标准名称（可参照拒收文件里的“是否指”），再导入")
    out = pd.DataFrame(rows, columns=["level", "parent_code", "alias", "code", "line"])
    clash = out[out.duplicated(["level", "parent_code", "alias"], keep=False)]
    clash = clash[clash.groupby(["level", "parent_code", "alias"])["code"].transform("nunique") > 1]
    if len(clash):
        first = clash.iloc[0]
        raise ValidationError(f"名称对照表里“{plain(first['alias'])}”对应了不同的代码（第 "
                              f"{'、'.join(map(str, clash['line']))} 行）", file=source,
                              fix="同一乡镇（村）里一个登记名称只能对应一个代码；删去错误的一行")
    return out.drop_duplicates(["level", "parent_code", "alias"]).drop(columns="line").reset_index(drop=True)


def read_aliases(ws: Workspace) -> pd.DataFrame:
    """The confirmed names of a workspace (layer ``name_aliases``; empty when it has none)."""
    cols = ["level", "parent_code", "alias", "code"]
    if "name_aliases" not in ws.layers() or not ws.count("name_aliases"):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    return ws.read("name_aliases", columns=cols)


def save_aliases(ws: Workspace, mapping: pd.DataFrame, *, actor: str, source: str = "") -> dict[str, int]:
    """Store confirmed names in layer ``name_aliases`` in one audited transaction (action ``确认名称``).

    An alias already confirmed for the same code is left alone; one confirmed for another code is replaced
    (the audit lists it with the code before and after).

    Returns
    -------
    dict
        ``added``, ``changed`` and ``unchanged`` counts.
    """
    existing = read_aliases(ws)
    old = {(lv, p or "", a): c for lv, p, a, c in zip(existing["level"], existing["parent_code"], existing["alias"],
                                                       existing["code"], strict=True)}
    new_rows, changed, same = [], [], 0
    for rec in mapping.to_dict("records"):
        k = (rec["level"], rec["parent_code"] or "", rec["alias"])
        if old.get(k) == rec["code"]:
            same += 1
            continue
        if k in old:
            changed.append({"level": k[0], "parent_code": k[1], "alias": k[2], "before": old[k], "after": rec["code"]})
        new_rows.append(rec)
    counts = {"added": len(new_rows) - len(changed), "changed": len(changed), "unchanged": same}
    if not new_rows:
        return counts
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pd.DataFrame(new_rows)[["level", "parent_code", "alias", "code"]]
    frame["confirmed_at"] = pd.Timestamp(now)
    frame["actor"] = actor
    with ws.transaction(actor=actor, action="确认名称") as tx:
        for c in changed:
            tx.delete("name_aliases", where="level = ? AND parent_code = ? AND alias = ?",
                      params=[c["level"], c["parent_code"], c["alias"]])
        tx.append("name_aliases", frame)
        tx.note("name_aliases", {"file": plain(source, limit=255), **counts,
                                 "aliases": [{k: r[k] for k in ("level", "parent_code", "alias", "code")}
                                             for r in new_rows[:200]],
                                 "replaced": changed[:200]})
    return counts
