"""Excel workbooks (.xlsx): size guards before parsing (zip bombs, row caps), formulas without results."""

from __future__ import annotations

import html
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from grids.errors import ValidationError
from grids.ingest.schema import RowProblem
from grids.ingest.tabular import table_from_records
from grids.workspace.base import no_gc

XLSX_MAX_UNCOMPRESSED = 200 * 2**20
"""An .xlsx whose members unpack to more than this many bytes (200 MB) is refused before it is parsed."""


XLSX_MAX_ROWS = 200_000
"""An .xlsx worksheet with more rows than this is refused (bigger registers go through CSV, which has no cap)."""


XLSX_MAX_MEMBERS = 10_000
"""An .xlsx (a zip) with more members than this is refused."""


_XML_ATTR = re.compile(rb'([\w:]+)\s*=\s*"([^"]*)"')


_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s[^>]*ref\s*=\s*\"(?:[A-Z]+[0-9]+:)?[A-Z]+([0-9]+)\"")


def _xlsx_sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet name → zip member, from ``xl/workbook.xml`` and its relationships (read as bytes, no parser)."""
    names = set(zf.namelist())
    parts: dict[str, str] = {}
    for member in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels"):
        if member not in names or zf.getinfo(member).file_size > 16 * 2**20:
            return {}
    book = zf.read("xl/workbook.xml")
    rels = zf.read("xl/_rels/workbook.xml.rels")
    targets = {}
    for tag in re.findall(rb"<(?:\w+:)?Relationship\s[^>]*>", rels):
        attrs = dict(_XML_ATTR.findall(tag))
        if b"Id" in attrs and b"Target" in attrs:
            target = attrs[b"Target"].decode("utf-8", "replace")
            targets[attrs[b"Id"]] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    for tag in re.findall(rb"<(?:\w+:)?sheet\s[^>]*>", book):
        attrs = {k.split(b":")[-1]: v for k, v in _XML_ATTR.findall(tag)}
        rid = attrs.get(b"id")
        if b"name" in attrs and rid in targets:
            parts[html.unescape(attrs[b"name"].decode("utf-8", "replace"))] = targets[rid]
    return parts


def _check_xlsx_size(path: Path, sheet: str | None) -> None:
    """Refuse an .xlsx that would take too much memory or time, before anything parses it.

    The sum of the members' uncompressed sizes must stay under :data:`XLSX_MAX_UNCOMPRESSED` (a zip bomb of
    2 MB that unpacks to 600 MB is refused in milliseconds), and the worksheet's declared dimension under
    :data:`XLSX_MAX_ROWS`. The declared sizes can be trusted as a bound: :mod:`zipfile`, which openpyxl reads
    through, never returns more bytes than a member declares.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > XLSX_MAX_MEMBERS:
                raise ValidationError(f"Excel 文件内部有 {len(infos):,} 个部件，超过上限 {XLSX_MAX_MEMBERS:,}，"
                                      "不像正常的工作簿", file=path.name,
                                      fix="用 Excel 打开后另存为 .xlsx 或 CSV UTF-8 再导入")
            total = sum(i.file_size for i in infos)
            if total > XLSX_MAX_UNCOMPRESSED:
                raise ValidationError(
                    f"Excel 文件解压后有 {total / 2**20:,.0f} MB（压缩包 {path.stat().st_size / 2**20:,.1f} MB），"
                    f"超过上限 {XLSX_MAX_UNCOMPRESSED / 2**20:,.0f} MB，未读取", file=path.name,
                    fix=f"大表请另存为 CSV UTF-8 再导入（CSV 没有这个上限），或拆成每个不超过 {XLSX_MAX_ROWS:,} 行的文件")
            parts = _xlsx_sheet_parts(zf)
            if sheet is not None and sheet in parts:
                members = [parts[sheet]]
            elif sheet is None and parts:
                members = [next(iter(parts.values()))]
            else:
                members = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            for member in members:
                if member not in zf.NameToInfo:
                    continue
                with zf.open(member) as fh:
                    head = fh.read(4096)
                m = _DIMENSION.search(head)
                rows = int(m.group(1)) if m else 0
                if rows > XLSX_MAX_ROWS:
                    name = next((k for k, v in parts.items() if v == member), member)
                    raise ValidationError(
                        f"工作表 “{name}” 有 {rows:,} 行，超过上限 {XLSX_MAX_ROWS:,} 行，未读取", file=path.name,
                        fix=f"大表请另存为 CSV UTF-8 再导入（CSV 没有这个上限），或拆成每个不超过 {XLSX_MAX_ROWS:,} 行的文件")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise ValidationError(f"无法读取 Excel 文件：{exc}", file=path.name,
                              fix="确认文件是 .xlsx 且未损坏（用 Excel 打开后另存一次）") from exc


def _too_many_rows(path: Path, title: str) -> ValidationError:
    return ValidationError(f"工作表 “{title}” 超过 {XLSX_MAX_ROWS:,} 行，未读取", file=path.name,
                           fix=f"大表请另存为 CSV UTF-8 再导入（CSV 没有这个上限），或拆成每个不超过 {XLSX_MAX_ROWS:,} 行的文件")


def read_xlsx(path: Path, sheet: str | None) -> tuple[pd.DataFrame, list[str], list[RowProblem]]:
    """An .xlsx worksheet (the first when ``sheet`` is not given) as a text frame indexed by row number, after
    the size guards; every row read, whatever dimension the file declares."""
    import openpyxl

    with path.open("rb") as fh:
        head = fh.read(2048)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValidationError("这是旧版 Excel（.xls）文件，只是扩展名写成了 .xlsx", file=path.name,
                              fix="用 Excel 打开后“另存为” Excel 工作簿（.xlsx），或另存为 CSV UTF-8")
    if re.search(rb"<(!doctype\s+html|html|table|meta|\?xml)", head.lstrip(b"\xef\xbb\xbf \t\r\n")[:200],
                 re.IGNORECASE):
        raise ValidationError("这个文件其实是网页（HTML/XML 表格），只是扩展名写成了 .xlsx（有些业务系统这样“导出 Excel”）",
                              file=path.name, fix="用 Excel 打开后“另存为” Excel 工作簿（.xlsx）或 CSV UTF-8，再导入")
    _check_xlsx_size(path, sheet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationError(f"无法读取 Excel 文件：{exc}", file=path.name,
                              fix="确认文件是 .xlsx 且未损坏（用 Excel 打开后另存一次）") from exc
    try:
        if sheet is None:
            ws = wb.worksheets[0]
        elif sheet in wb.sheetnames:
            ws = wb[sheet]
        else:
            raise ValidationError(f"没有工作表 “{sheet}”", file=path.name,
                                  fix=f"可用的工作表：{'、'.join(wb.sheetnames)}")
        # openpyxl (read-only) stops at the declared dimension, which may be wrong: rows below it would be
        # silently lost. Read every row instead, and stop past the cap (a few title rows allowed).
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()
        limit = XLSX_MAX_ROWS + 100
        with warnings.catch_warnings(), no_gc():
            warnings.simplefilter("ignore")
            records = []
            for n, rec in enumerate(ws.iter_rows(values_only=True), start=1):
                if n > limit:
                    raise _too_many_rows(path, ws.title)
                records.append((n, list(rec)))
        notes = [f"读取了工作表 “{ws.title}”"] if len(wb.sheetnames) > 1 else []
    finally:
        wb.close()
    notes += _formula_text(path, records, ws.title)
    with no_gc():
        frame, more, problems = table_from_records(records, path.name)
    return frame, notes + more, problems


def _formula_text(path: Path, records: list[tuple[int, list[Any]]], title: str) -> list[str]:
    """Fill cells whose formula has no stored result (files not saved by Excel) with the formula's text.

    ``data_only`` reading gives the result Excel stored with a formula; a file written by another program
    has none, and the cell would silently come out blank. The text (``=A1*2``) is kept as data instead.
    """
    import openpyxl

    with zipfile.ZipFile(path) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        if not any(re.search(rb"<f[ >]", zf.read(n)) for n in sheets):
            return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
        try:
            filled = 0
            sheet = wb[title]
            if hasattr(sheet, "reset_dimensions"):
                sheet.reset_dimensions()
            rows = sheet.iter_rows(values_only=True)
            for (_, rec), frec in zip(records, rows, strict=False):
                for j, v in enumerate(frec[: len(rec)]):
                    if rec[j] is None and isinstance(v, str) and v.startswith("="):
                        rec[j] = v
                        filled += 1
        finally:
            wb.close()
    if not filled:
        return []
    return [f"{filled} 个单元格是没有计算结果的公式（文件不是用 Excel 保存的），已按公式文本原样读取；"
            "如需计算结果，请用 Excel 打开并保存一次再导入"]
