"""The rating session's Excel workbook (集中授信评定表): a template to prepare a session, read back to record it.

Two sheets:

- ``评定小组`` — the session (``村代码``, ``日期``, ``地点``, ``会议纪要``: a label in column A, the value in B), then
  a table ``序号 | 姓名 | 身份 | 是否到会`` of the 5–7 members;
- ``评定结果`` — one row per household: ``户号``, ``户主``, ``客户类型``, ``产品``, ``等级``, ``金额（元）``,
  ``担保方式`` (the scorecard's ``建议等级``, ``建议金额（元）``, ``评分`` for reference, not read), then one column
  per member (headed by the member's name, or ``成员N`` for member N of the table) holding 同意/反对/弃权.

:func:`read_session_workbook` checks the layout and the cells and names the sheet, row and column of each problem;
the rules (panel, votes, scope, authority, product rules) are then :func:`grids.sessions.record_session`'s.

Examples
--------
>>> hh = pd.DataFrame({"hh_id": ["H1", "H2"], "head_name": ["张三", "李四"], "segment": ["普通农牧户"] * 2,
...                    "product": ["福农卡"] * 2, "granted_amount": [60000.0, 0.0]})
>>> book = read_session_workbook(session_template_bytes(hh, village_code="150422100201"))
>>> book.village_code, list(book.decisions["hh_id"]), len(book.panel)
('150422100201', ['H1'], 0)
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grids.errors import ValidationError
from grids.model import GUARANTEES, PANEL_ROLES, VOTE_CHOICES

__all__ = ["MAX_COLUMNS", "MAX_PANEL_ROWS", "MAX_PART_BYTES", "MAX_RESULT_ROWS", "PANEL_SHEET", "RESULT_SHEET", "SessionWorkbook", "read_session_workbook", "session_template_bytes"]

PANEL_SHEET, RESULT_SHEET = "评定小组", "评定结果"
_INFO = {"村代码": "village_code", "日期": "held_on", "地点": "place", "会议纪要": "minutes"}
_PANEL_HEAD = ("序号", "姓名", "身份", "是否到会")
_RESULT_HEAD = {"户号": "hh_id", "户主": "head_name", "客户类型": "segment", "产品": "product", "等级": "grade",
                "金额（元）": "amount", "担保方式": "guarantee"}
_INFORMATIVE = ("建议等级", "建议金额（元）", "评分")
_MEMBER = re.compile(r"^(?:成员|表决)\s*(\d+)$")
_SLOTS = 7


@dataclass(frozen=True)
class SessionWorkbook:
    """A session read from a workbook: ``village_code``, ``held_on`` (Timestamp or None), ``place``,
    ``minutes``, ``panel`` (``name``, ``role``, ``present``) and ``decisions`` (``row`` = the sheet's row,
    ``hh_id``, ``product``, ``grade``, ``amount``, ``guarantee``, and one column per member name)."""

    village_code: str
    held_on: pd.Timestamp | None
    place: str
    minutes: str
    panel: pd.DataFrame
    decisions: pd.DataFrame


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def session_template_bytes(households: pd.DataFrame, *, village_code: str, village_name: str = "",
                           panel: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None, held_on: Any = None,
                           place: str = "") -> bytes:
    """The workbook to prepare a village's session, with its households (and the scorecard's suggestion).

    Parameters
    ----------
    households : DataFrame
        The households to rate (:func:`grids.credit.rating_list` rows): ``hh_id``, ``head_name``, ``segment``,
        ``product``, ``grade``, ``granted_amount`` (or ``amount``), ``guarantee``; optional ``suggested_grade``,
        ``suggested_amount``, ``points`` (:mod:`grids.scorecard`).
    village_code : str
    village_name : str
        Shown next to the code.
    panel : DataFrame or list of mappings, optional
        Members known in advance (``name``, ``role``); otherwise seven empty slots ``成员1…成员7``.
    held_on, place : optional
        Pre-filled session date and place.

    Returns
    -------
    bytes
        An xlsx file; every text cell written so that no spreadsheet runs it as a formula.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    from grids.export import xlsx_cell

    members = (panel.to_dict("records") if isinstance(panel, pd.DataFrame) else list(panel or []))
    names = [_text(m.get("name")) for m in members] or [""] * _SLOTS
    book = Workbook()
    info = book.active
    assert info is not None  # a new workbook has its one sheet
    info.title = PANEL_SHEET
    bold = Font(bold=True)
    values = {"村代码": village_code, "日期": "" if held_on is None else f"{pd.Timestamp(held_on):%Y-%m-%d}",
              "地点": place, "会议纪要": ""}
    for i, (label, value) in enumerate(values.items(), start=1):
        xlsx_cell(info, i, 1, label).font = bold
        xlsx_cell(info, i, 2, value)
    xlsx_cell(info, 1, 3, village_name)
    top = len(values) + 2
    for j, head in enumerate(_PANEL_HEAD, start=1):
        xlsx_cell(info, top, j, head).font = bold
    roles = DataValidation(type="list", formula1=f'"{",".join(PANEL_ROLES)}"', allow_blank=True)
    present = DataValidation(type="list", formula1='"是,否"', allow_blank=True)
    info.add_data_validation(roles)
    info.add_data_validation(present)
    for k, name in enumerate(names, start=1):
        r = top + k
        xlsx_cell(info, r, 1, k)
        xlsx_cell(info, r, 2, name)
        xlsx_cell(info, r, 3, _text(members[k - 1].get("role")) if members else "")
        xlsx_cell(info, r, 4, "是")
        roles.add(f"C{r}")
        present.add(f"D{r}")
    xlsx_cell(info, top + len(names) + 2, 1,
              f"评定小组 5–7 人，至少一名村组干部、一名村民代表，以及信用社主任和客户经理；“{RESULT_SHEET}”表中"
              "每名到会成员一列，填 同意/反对/弃权（成员N 列对应序号 N 的成员，也可把列名改成成员姓名）")
    res = book.create_sheet(RESULT_SHEET)
    heads = [*_RESULT_HEAD, *_INFORMATIVE, *[n or f"成员{k}" for k, n in enumerate(names, start=1)]]
    for j, head in enumerate(heads, start=1):
        xlsx_cell(res, 1, j, head).font = bold
    votes = DataValidation(type="list", formula1=f'"{",".join(VOTE_CHOICES)}"', allow_blank=True)
    guarantee = DataValidation(type="list", formula1=f'"{",".join(g for g in GUARANTEES if g)}"', allow_blank=True)
    res.add_data_validation(votes)
    res.add_data_validation(guarantee)
    first_vote = len(_RESULT_HEAD) + len(_INFORMATIVE) + 1
    for i, rec in enumerate(households.to_dict("records"), start=2):
        amount = rec.get("amount", rec.get("granted_amount"))
        suggested = rec.get("suggested_amount")
        row = [rec.get("hh_id"), rec.get("head_name"), rec.get("segment"), rec.get("product"), rec.get("grade"),
               None if amount is None or pd.isna(amount) or float(amount) <= 0 else float(amount),
               rec.get("guarantee"), rec.get("suggested_grade"),
               None if suggested is None or pd.isna(suggested) else float(suggested), rec.get("points")]
        for j, cell in enumerate(row, start=1):
            xlsx_cell(res, i, j, cell if not (isinstance(cell, float) and pd.isna(cell)) else None)
        guarantee.add(f"G{i}")
        for j in range(first_vote, first_vote + len(names)):
            votes.add(res.cell(row=i, column=j).coordinate)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _load(source: str | Path | bytes) -> tuple[Any, str]:
    from openpyxl import load_workbook

    name = "上传的评定表" if isinstance(source, bytes | bytearray) else Path(source).name
    try:
        data = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
        _check_size(data, name)
        return load_workbook(data, data_only=True, read_only=True), name
    except ValidationError:
        raise
    except FileNotFoundError:
        raise ValidationError(f"找不到评定表 {name}", file=name, fix="检查文件路径") from None
    except Exception as exc:
        raise ValidationError(f"{name} 不是 Excel 工作簿（.xlsx）：{type(exc).__name__}", file=name,
                              fix="在页面下载评定表模板，填写后按 .xlsx 保存再上传") from None


MAX_PANEL_ROWS, MAX_RESULT_ROWS, MAX_COLUMNS = 50, 5000, 40
"""The most rows read of ``评定小组`` and of ``评定结果`` (households, besides the heading), and columns of
either: a larger sheet is refused, never read whole (an upload is a few kilobytes)."""


MAX_PART_BYTES = 12_000_000
"""The largest sheet (or shared-strings part) of a workbook, uncompressed: a full 5,000-row 评定结果 is about
3 MB; openpyxl scans a whole sheet for its size before the first row, so a larger one is refused unread."""


def _check_size(data: Any, name: str) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(data) as z:
            big = [i for i in z.infolist() if i.filename.startswith("xl/") and i.file_size > MAX_PART_BYTES]
    except zipfile.BadZipFile:
        return  # load_workbook names it
    finally:
        if hasattr(data, "seek"):
            data.seek(0)
    if big:
        raise ValidationError(f"{name} 过大（{big[0].filename} 解压后 {big[0].file_size / 1e6:,.0f} MB）", file=name,
                              fix=f"评定表最多 {MAX_RESULT_ROWS} 户、{MAX_COLUMNS} 列；从页面下载模板填写，一个村一张表")


def _rows(book: Any, sheet: str, file: str, *, max_row: int, header: int = 0) -> list[tuple[Any, ...]]:
    if sheet not in book.sheetnames:
        raise ValidationError(f"{file} 缺少工作表“{sheet}”", file=file,
                              fix=f"评定表应有“{PANEL_SHEET}”和“{RESULT_SHEET}”两张表；从页面下载模板填写")
    rows = []
    # one row past the cap, and only the first columns: a huge sheet costs no more than a full one
    for r in book[sheet].iter_rows(values_only=True, max_row=max_row + 1, max_col=MAX_COLUMNS + 1):
        rows.append(tuple(r))
    if len(rows) > max_row and any(_text(c) for c in rows[max_row]):
        most = f"{max_row - header} 行" + ("（不含表头）" if header else "")
        raise ValidationError(f"{file}“{sheet}”表超过 {most}", file=file, row=max_row + 1,
                              fix=f"“{sheet}”表最多 {most}；一次评定会评一个村，过大的表请分开")
    if any(len(r) > MAX_COLUMNS and any(_text(c) for c in r[MAX_COLUMNS:]) for r in rows):
        raise ValidationError(f"{file}“{sheet}”表超过 {MAX_COLUMNS} 列", file=file,
                              fix="从页面下载模板填写，不要在右侧另加列")
    return [r[:MAX_COLUMNS] for r in rows[:max_row]]


def read_session_workbook(source: str | Path | bytes) -> SessionWorkbook:
    """Read a filled-in session workbook (:func:`session_template_bytes`'s layout).

    Parameters
    ----------
    source : path or bytes

    Returns
    -------
    SessionWorkbook

    Raises
    ------
    ValidationError
        Not an xlsx; a missing sheet or column; a bad date, role, 是否到会, amount or vote, a vote column that is
        no member — each naming the file, sheet, row and column, with the fix.
    """
    book, file = _load(source)

    def bad(sheet: str, row: int, column: str, what: str, fix: str) -> ValidationError:
        return ValidationError(f"工作表“{sheet}”：{what}", file=file, row=row, column=column, fix=fix)

    rows = _rows(book, PANEL_SHEET, file, max_row=MAX_PANEL_ROWS)
    info: dict[str, Any] = {}
    head_at = None
    for i, r in enumerate(rows, start=1):
        label = _text(r[0] if r else None)
        if label in _INFO:
            info[_INFO[label]] = r[1] if len(r) > 1 else None
        if [_text(c) for c in r[:2]] == list(_PANEL_HEAD[:2]):
            head_at = i
            break
    if head_at is None:
        raise ValidationError(f"{file}“{PANEL_SHEET}”表没有成员表头（序号、姓名、身份、是否到会）", file=file,
                              fix="从页面下载模板，在模板的成员表里填写")
    heads = [_text(c) for c in rows[head_at - 1]]
    for need in _PANEL_HEAD[1:]:
        if need not in heads:
            raise bad(PANEL_SHEET, head_at, need, "缺少这一列", "成员表应有 序号、姓名、身份、是否到会 四列")
    col = {h: heads.index(h) for h in _PANEL_HEAD if h in heads}
    members: list[dict[str, Any]] = []
    for i, r in enumerate(rows[head_at:], start=head_at + 1):
        cells = {h: (r[j] if j < len(r) else None) for h, j in col.items()}
        name, role = _text(cells.get("姓名")), _text(cells.get("身份"))
        if not name and not role:
            if members or any(_text(c) for c in r[1:]):
                break  # the table ended (the note under it)
            continue
        if not name:
            raise bad(PANEL_SHEET, i, "姓名", "没有姓名", "填写成员姓名，或删去这一行")
        if role not in PANEL_ROLES:
            raise bad(PANEL_SHEET, i, "身份", f"“{role}”无效", f"身份应为：{'、'.join(PANEL_ROLES)}")
        here = _text(cells.get("是否到会")) or "是"
        if here not in ("是", "否"):
            raise bad(PANEL_SHEET, i, "是否到会", f"“{here}”无效", "填写 是 或 否")
        seq = _text(cells.get("序号"))
        members.append({"seq": int(seq) if seq.isdigit() else len(members) + 1, "name": name, "role": role,
                        "present": here == "是", "row": i})
    held = info.get("held_on")
    held_on = None
    if _text(held):
        try:
            held_on = pd.Timestamp(held if isinstance(held, dt.date | dt.datetime) else _text(held)).normalize()
        except (TypeError, ValueError):
            row = 1 + list(_INFO.values()).index("held_on")
            raise bad(PANEL_SHEET, row, "日期", f"“{_text(held)}”不是日期", "填写评定会日期，如 2026-03-01") from None
    panel = pd.DataFrame(members, columns=["seq", "name", "role", "present", "row"])

    rows = _rows(book, RESULT_SHEET, file, max_row=MAX_RESULT_ROWS + 1, header=1)
    if not rows:
        raise ValidationError(f"{file}“{RESULT_SHEET}”表是空的", file=file, fix="从页面下载模板填写")
    heads = [_text(c) for c in rows[0]]
    for need in ("户号", "金额（元）"):
        if need not in heads:
            raise bad(RESULT_SHEET, 1, need, "缺少这一列", f"评定结果应有列：{'、'.join(_RESULT_HEAD)}，以及每名成员一列")
    by_seq = dict(zip(panel["seq"], panel["name"], strict=True))
    names = set(panel["name"])
    vote_cols: dict[int, str] = {}
    for j, h in enumerate(heads):
        if not h or h in _RESULT_HEAD or h in _INFORMATIVE:
            continue
        m = _MEMBER.match(h)
        member = by_seq.get(int(m.group(1))) if m else (h if h in names else None)
        if member is None:
            if m and not any(_text(r[j]) for r in rows[1:] if j < len(r)):
                continue  # an unused slot of the template
            raise bad(RESULT_SHEET, 1, h, "不是评定小组的成员", f"表决列的列名应为“{PANEL_SHEET}”表里成员的姓名，或 成员N")
        vote_cols[j] = member
    out = []
    for i, r in enumerate(rows[1:], start=2):
        cells = {h: (r[j] if j < len(r) else None) for j, h in enumerate(heads)}
        if not any(_text(c) for c in r):
            continue
        hh_id = _text(cells.get("户号"))
        if not hh_id:
            raise bad(RESULT_SHEET, i, "户号", "没有户号", "填写户号，或删去这一行")
        raw = cells.get("金额（元）")
        if not _text(raw) and not any(_text(r[j] if j < len(r) else None) for j in vote_cols):
            continue  # listed in the template, not rated at this session
        try:
            amount = float(str(raw).replace(",", "").replace("，", "")) if _text(raw) else float("nan")
        except ValueError:
            raise bad(RESULT_SHEET, i, "金额（元）", f"“{_text(raw)}”不是数字", "填写以元为单位的金额，如 60000") from None
        if not amount > 0:
            raise bad(RESULT_SHEET, i, "金额（元）", "没有填写金额", "填写评定的授信金额（元，大于 0）")
        rec = {"row": i, "hh_id": hh_id, "product": _text(cells.get("产品")), "grade": _text(cells.get("等级")),
               "amount": amount, "guarantee": _text(cells.get("担保方式"))}
        for j, member in vote_cols.items():
            vote = _text(r[j] if j < len(r) else None)
            if vote and vote not in VOTE_CHOICES:
                raise bad(RESULT_SHEET, i, heads[j], f"表决“{vote}”无效", "填写 同意、反对 或 弃权（缺席成员留空）")
            rec[member] = vote
        out.append(rec)
    decisions = pd.DataFrame(out, columns=["row", "hh_id", "product", "grade", "amount", "guarantee",
                                           *dict.fromkeys(vote_cols.values())])
    return SessionWorkbook(village_code=_text(info.get("village_code")), held_on=held_on,
                           place=_text(info.get("place")), minutes=_text(info.get("minutes")),
                           panel=panel.drop(columns=["row"]), decisions=decisions)
