"""Text from data, made safe at one boundary: HTML, Markdown, matplotlib, spreadsheets, and normalised ids.

Names, addresses, notes and plan names come from files other people typed. They may carry HTML
(``<img onerror=…>``), JavaScript template syntax (``${…}``), Markdown links, ``$…$`` mathtext or
spreadsheet formulas. Every place where such text meets a renderer calls one function of this module:

- :func:`html` before any HTML (folium tooltips, popups, labels, legends, the HTML export, KML descriptions);
- :func:`markdown` before ``st.markdown``/``st.caption``/``st.write`` of a string (or use ``st.text``);
- :func:`mathtext` before matplotlib text (PNG/PDF maps);
- :func:`spreadsheet_cell` before a CSV/xlsx cell;
- :func:`mask_url` before a connection string is shown or printed (the password becomes ``***``).

Identifiers typed by people are compared after :func:`normalize_id` (NFKC, zero-width characters removed,
upper case ``X`` in ID numbers), so ``B01``, ``Ｂ０１`` and ``B01\\u200b`` are one branch.

Examples
--------
>>> html('林东<img src=x onerror="alert(1)">${x}')
'林东&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#36;&#123;x&#125;'
>>> markdown("[点此](http://evil) $x$")
'\\\\[点此\\\\]\\\\(http\\u2060\\\\://evil\\\\) \\\\$x\\\\$'
>>> spreadsheet_cell("=HYPERLINK(1)")
"'=HYPERLINK(1)"
>>> normalize_id("ｂ０１\\u200b")
'B01'
>>> mask_url("postgresql://u:secret@h/db")
'postgresql://u:***@h/db'
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|")
"""First characters that make a spreadsheet read a cell as a formula (or a DDE command)."""

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:^=&])")
# Streamlit links bare URLs, www. names and e-mail addresses in the text after parsing (escapes do not help):
# an invisible word joiner (U+2060) inside ``http:``, ``www.`` and before ``@`` breaks the pattern
_MD_AUTOLINK = re.compile(r"(?i)(https?|ftp|www)(?=[:.])|(?=@)")
_URL_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#\s]*):(?P<secret>.*)@(?P<tail>[^@]*)$", re.S)
_PASSWORD_PARAM = re.compile(r"(?P<key>\b(?:password|passwd|pwd)\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^&\s;]*)",
                             re.IGNORECASE)
_HTML_EXTRA = {"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        if value != value:  # NaN, pd.NA raise or compare unequal
            return ""
    except (TypeError, ValueError):
        return ""
    return str(value)


def html(value: Any) -> str:
    """``value`` as text that HTML and JavaScript template strings show literally.

    Escapes ``& < > " '`` and also ``$ { } \\``` so that a ``${…}`` or ``{{…}}`` payload cannot expand in
    a template. ``None``/NaN give ``""``.

    >>> html("a&b") + html(None)
    'a&amp;b'
    """
    out = _html.escape(_text(value), quote=True)
    return "".join(_HTML_EXTRA.get(ch, ch) for ch in out) if any(ch in out for ch in _HTML_EXTRA) else out


def markdown(value: Any) -> str:
    """``value`` as Markdown that Streamlit shows literally (no links, emphasis, LaTeX, colour directives).

    Markdown punctuation is backslash-escaped. Streamlit also links bare ``http://…``, ``www.…`` and e-mail
    addresses, escaped or not: an invisible word joiner (U+2060) after ``http``/``www`` and before ``@``
    stops that.

    >>> markdown("**粗** :red[x]")
    '\\\\*\\\\*粗\\\\*\\\\* \\\\:red\\\\[x\\\\]'
    >>> markdown("见 http://evil 或 a@b.cn")
    '见 http\\u2060\\\\://evil 或 a\\u2060@b\\\\.cn'
    """
    text = _MD_AUTOLINK.sub("\\g<0>\u2060", _text(value))
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def mathtext(value: Any) -> str:
    """``value`` for matplotlib text: a ``$`` no longer starts mathtext.

    >>> mathtext("$x^2$")
    '\\\\$x^2\\\\$'
    """
    return _text(value).replace("$", r"\$")


def spreadsheet_cell(value: Any) -> Any:
    """A cell value that Excel/WPS cannot run: text starting like a formula gets a leading ``'``.

    Carriage returns become line feeds first (a bare CR would start a new row in some CSV readers, and the
    text after it could then be read as a formula). Non-text values pass unchanged.

    >>> spreadsheet_cell("正常\\r=cmd|' /C calc'!A0")
    "'正常\\n=cmd|' /C calc'!A0"
    >>> spreadsheet_cell(3)
    3
    """
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if any(line.startswith(FORMULA_START) for line in lines) or text.startswith(FORMULA_START):
        return "'" + text
    return text


def unescape_spreadsheet_cell(value: Any) -> Any:
    """Undo :func:`spreadsheet_cell`: the leading ``'`` it adds, and only that (a file the app wrote — a rejects
    file, a names template — read back in gives the text the user typed).

    >>> unescape_spreadsheet_cell("'=1+1"), unescape_spreadsheet_cell("'正常"), unescape_spreadsheet_cell(7)
    ('=1+1', "'正常", 7)
    """
    if isinstance(value, str) and value.startswith("'") and spreadsheet_cell(value[1:]) == value:
        return value[1:]
    return value


_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_controls(value: Any) -> Any:
    """Text without control characters (keeps tab, line feed and carriage return); other values unchanged.

    Imported names may carry ``\\x0b``, ``\\x01`` or terminal escapes (ESC): XML (xlsx, KML) cannot hold
    them and terminals would run them.

    >>> strip_controls("张\\x0b三\\x1b[31m"), strip_controls(5)
    ('张三[31m', 5)
    """
    return _CONTROLS.sub("", value) if isinstance(value, str) else value


def normalize_text(value: Any) -> str:
    """NFKC-normalised text without zero-width characters, trimmed (full-width digits become ASCII).

    >>> normalize_text(" ３家村\\u200b ")
    '3家村'
    """
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", _text(value))).strip()


TRUE_WORDS = frozenset({"是", "y", "yes", "true", "t", "1", "√", "✓", "已", "有", "已建档", "已签约", "已用信",
                        "符合", "合格"})
"""Words read as a true flag (lower case, after :func:`normalize_text`)."""
FALSE_WORDS = frozenset({"否", "n", "no", "false", "f", "0", "×", "✗", "未", "无", "未建档", "未签约", "未用信",
                         "不符合", "不合格"})
"""Words read as a false flag."""


def parse_flag(value: Any, *, true: frozenset[str] | set[str] = TRUE_WORDS,
               false: frozenset[str] | set[str] = FALSE_WORDS) -> bool | None:
    """A typed yes/no flag (是/否, Y/N, 1/0, true/false, √/× …) as True/False; None when blank or unrecognised.

    The one reader of flags typed by people; ``true``/``false`` replace the word lists where a form has its
    own words (a survey's 同意/代发).

    >>> parse_flag(" 是 "), parse_flag("ＹＥＳ"), parse_flag("0"), parse_flag("也许"), parse_flag(None)
    (True, True, False, None, None)
    """
    text = normalize_text(value).lower()
    if text in true:
        return True
    if text in false:
        return False
    return None


def normalize_id(value: Any) -> str:
    """An identifier as stored and compared: :func:`normalize_text`, then upper case (``x`` → ``X``).

    >>> normalize_id("15042219900101123x")
    '15042219900101123X'
    """
    return normalize_text(value).upper()


def plain(value: Any, *, limit: int = 64) -> str:
    """Untrusted text for logs and audit actors: control characters removed, at most ``limit`` characters.

    >>> plain("admin\\n\\x1b[31m" + "x" * 100, limit=10)
    'admin[31mx'
    """
    text = "".join(ch for ch in normalize_text(value) if unicodedata.category(ch)[0] != "C")
    return text[:limit]


def mask_url(value: Any) -> str:
    """A connection string fit to show or print: its password replaced by ``***``.

    Masks the password of a URL (``scheme://user:password@host/…``), a ``password=`` query parameter and
    the ``password=…`` of a libpq keyword string. Paths and URLs without a password pass unchanged. When the
    URL is ambiguous (a raw ``@`` or ``/`` in the password) more is masked, never less.

    Examples
    --------
    >>> mask_url("postgresql://grids:s3cr%40t@db.example:5432/county?schema=ws_1")
    'postgresql://grids:***@db.example:5432/county?schema=ws_1'
    >>> mask_url("postgresql://u@h/db?password=x&sslmode=require")
    'postgresql://u@h/db?password=***&sslmode=require'
    >>> mask_url("host=h dbname=db password='a b' user=u")
    'host=h dbname=db password=*** user=u'
    >>> mask_url("workspace/demo.gpkg")
    'workspace/demo.gpkg'
    """
    text = _text(value)
    head, sep, rest = text.partition("://")
    if sep:
        netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        netloc = rest[:netloc_end]
        user, at, host = netloc.rpartition("@")
        if at and ":" in user:
            text = f"{head}://{user.split(':', 1)[0]}:***@{host}{rest[netloc_end:]}"
        else:
            m = _URL_USERINFO.match(text)  # a raw '/', '?' or '#' in the password: mask up to the last '@'
            if m:
                text = f"{m['head']}:***@{m['tail']}"
    return _PASSWORD_PARAM.sub(lambda m: m["key"] + "***", text)
