"""Cells as the user typed them, and CSV files: header detection, blank and ragged rows, encodings."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from grids import _validate as V
from grids.errors import ValidationError
from grids.ingest.columns import known_headers, norm_header
from grids.ingest.schema import ROW_INDEX, RowProblem
from grids.text import plain
from grids.workspace.base import no_gc


def cell_text(value: Any) -> str | None:
    """One cell as the text the user typed (integers without ``.0``; ``None`` for a blank cell)."""
    if type(value) is str:
        return value.strip() or None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "是" if value else "否"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return None
        if float(value).is_integer():
            if abs(float(value)) < V.EXACT_LIMIT:
                return str(int(value))
            # beyond 2**53 a float (what Excel stores) may have lost digits: keep the scientific form,
            # which validation refuses in id columns (never a silently rounded id)
            return np.format_float_scientific(float(value), unique=True, trim="-")
        return repr(float(value))
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.strftime("%Y-%m-%d") if (value.hour, value.minute, value.second) == (0, 0, 0) \
            else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def stringify(frame: pd.DataFrame, *, is_text: bool = False) -> pd.DataFrame:
    """Every attribute column as text cells (object dtype, ``None`` for blanks), same index.

    ``is_text`` says the cells already are (what :func:`read_table` returns), which skips the conversion.
    """
    cols = [c for c in frame.columns if not (isinstance(frame, gpd.GeoDataFrame) and c == frame.geometry.name)]
    if is_text:
        return pd.DataFrame({c: frame[c].astype(object) for c in cols}, index=frame.index)
    with no_gc():
        return pd.DataFrame(
            {c: pd.Series([cell_text(v) for v in frame[c].tolist()], index=frame.index, dtype=object)
             for c in cols},
            index=frame.index,
        )


def _unique_headers(headers: list[Any]) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, h in enumerate(headers, start=1):
        name = cell_text(h) or f"列{i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def table_from_records(records: list[tuple[int, list[Any]]], source: str, *, text: bool = False
                       ) -> tuple[pd.DataFrame, list[str], list[tuple[int, str, str, str]]]:
    """Header detection, blank rows, ragged rows → a text frame indexed by row number.

    ``text`` says every cell is a ``str`` already (CSV), which takes a faster path.
    """
    notes: list[str] = []
    problems: list[tuple[int, str, str, str]] = []
    if text:
        records = [(n, [v.strip() or None for v in rec]) for n, rec in records]
    else:
        records = [(n, [cell_text(v) for v in rec]) for n, rec in records]
    filled = [(n, rec, len(rec) - rec.count(None)) for n, rec in records]
    nonblank = [(n, rec, k) for n, rec, k in filled if k]
    if not nonblank:
        raise ValidationError("文件是空的，没有任何数据", file=source, fix="检查是否选错了文件或工作表")
    known = known_headers()
    scores = [sum(1 for v in rec if v is not None and norm_header(v) in known) for _, rec, _ in nonblank[:20]]
    if max(scores) >= 2:  # the row with most recognised headers, above it titles and 填报单位/日期 lines
        header_at = scores.index(max(scores))
    else:
        header_at = next((i for i, (_, _, k) in enumerate(nonblank[:20]) if k >= 2), 0)
    header_row, header, _ = nonblank[header_at]
    if header_at:
        notes.append(f"第 {header_row} 行被当作表头，跳过了它上面的 {header_at} 行标题")
    while header and cell_text(header[-1]) is None:
        header = header[:-1]
    names = _unique_headers(list(header))
    rows, index, blank = [], [], 0
    for n, rec, k in filled:
        if n <= header_row:
            continue
        if not k:
            blank += 1
            continue
        cells = rec
        extra = [c for c in cells[len(names):] if c is not None]
        if extra:
            problems.append((n, "（整行）", "字段数多于表头",
                             f"这一行有 {len(names) + len(extra)} 个以上的值，表头只有 {len(names)} 列；"
                             "检查是否有多余的分隔符（逗号）或未加引号的文字"))
        cells = (cells + [None] * len(names))[: len(names)]
        rows.append(cells)
        index.append(n)
    if blank:
        notes.append(f"跳过了 {blank} 个空行")
    if not rows:
        raise ValidationError("文件只有表头，没有数据行", file=source, fix="在表头下面填写数据后再导入")
    frame = pd.DataFrame(rows, columns=names, index=pd.Index(index, name=ROW_INDEX), dtype=object)
    return frame, notes, problems




def _rows_before_error(text: str, delimiter: str) -> int:
    """How many rows of ``text`` csv reads before its error (counted again on the error path only, so that
    the fast read keeps its list comprehension)."""
    n = 0
    with contextlib.suppress(csv.Error):
        for _ in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            n += 1
    return n


def _csv_error(exc: csv.Error, name: str, line: int) -> ValidationError:
    """A CSV syntax error in Chinese, naming the row (as a spreadsheet numbers it, the header row 1) it starts in.

    Examples
    --------
    >>> str(_csv_error(csv.Error("field larger than field limit (131072)"), "a.csv", 7))
    '文件 a.csv，第 7 行：有一个单元格超过 131072 个字符。修正方法：多半是少了一个引号（一个未闭合的引号会把后面的整段文字读成一个单元格）：检查该行附近的引号是否成对；确实过长的内容请删短'
    """
    if "field larger than field limit" in str(exc):
        return ValidationError(f"有一个单元格超过 {csv.field_size_limit()} 个字符", file=name, row=line,
                               fix="多半是少了一个引号（一个未闭合的引号会把后面的整段文字读成一个单元格）："
                                   "检查该行附近的引号是否成对；确实过长的内容请删短")
    return ValidationError(f"CSV 格式错误（{plain(str(exc), limit=120)}）", file=name, row=line,
                           fix="检查该行附近的引号是否成对")


def read_csv(path: Path, encoding: str | None) -> tuple[pd.DataFrame, list[str], list[RowProblem]]:
    """A CSV file as a text frame indexed by row number: encoding (UTF-8, else GBK) and delimiter detected."""
    raw = path.read_bytes()
    notes: list[str] = []
    if encoding:
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ValidationError(f"无法按 {encoding} 解码：{exc}", file=path.name,
                                  fix="换一个编码（常见的是 utf-8 或 gbk），或用 Excel 另存为 UTF-8 CSV") from exc
        text = text.removeprefix("\ufeff")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise ValidationError("文件既不是 UTF-8 也不是 GBK 编码", file=path.name,
                                      fix="用 --encoding 指定编码，或用 Excel 另存为 “CSV UTF-8”") from exc
            notes.append("文件不是 UTF-8 编码，已按 GBK 读取（如仍有乱码，请用 --encoding 指定编码）")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = max([",", "\t", ";", "|", "，"], key=first.count) if first else ","
    if first and not first.count(delimiter):
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    with no_gc():
        try:
            records = [(n, rec) for n, rec in enumerate(reader, start=1)]
        except csv.Error as exc:
            raise _csv_error(exc, path.name, _rows_before_error(text, delimiter) + 1) from exc
        frame, more, problems = table_from_records(records, path.name, text=True)
    return frame, notes + more, problems
