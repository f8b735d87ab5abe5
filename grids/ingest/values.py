"""Value checks shared by the layers: text cells, required and enumerated columns, ids, codes and keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from grids import _validate as V
from grids.ingest.columns import LABELS
from grids.ingest.context import Context, Problems
from grids.ingest.schema import ID_COLUMNS, KEYED_APPEND


def text_column(data: pd.DataFrame, col: str) -> pd.Series:
    """``data[col]`` as stripped text, ``None`` for blanks (all ``None`` when the column is absent)."""
    if col not in data.columns:
        return pd.Series([None] * len(data), index=data.index, dtype=object)
    s = data[col].astype(object)
    has = V.present(s)
    return s.astype("str").str.strip().astype(object).where(has, None)


def require_column(data: pd.DataFrame, col: str, problems: Problems, fix: str, *, label: str | None = None) -> pd.Series:
    """:func:`text_column`, with a problem for every blank cell."""
    values = text_column(data, col)
    problems.add(values.isna(), col, f"缺少{label or LABELS.get(col, col)}", fix)
    return values


def enum_column(data: pd.DataFrame, col: str, allowed: Iterable[str], problems: Problems, *,
                aliases: Mapping[str, str | None] | None = None, required: bool = False) -> pd.Series:
    """:func:`text_column` with ``aliases`` applied; a problem for values not in ``allowed`` (and blanks when
    ``required``)."""
    allowed = tuple(allowed)
    values = text_column(data, col)
    if aliases:
        values = values.map(lambda v: aliases.get(v, v) if isinstance(v, str) else v)
    if required:
        problems.add(values.isna(), col, f"缺少{LABELS.get(col, col)}", f"填写其中之一：{'、'.join(allowed)}")
    problems.add(values.notna() & ~values.isin(allowed), col, f"{LABELS.get(col, col)}不在可选值中",
                 f"只能填写：{'、'.join(allowed)}")
    return values


def normalise_ids(data: pd.DataFrame, problems: Problems) -> dict[str, pd.Series]:
    """Normalise the :data:`ID_COLUMNS` of ``data`` in place; reject cells a spreadsheet stored as a number
    that lost digits. Returns, per column, the mask of those cells."""
    lost = {}
    for col in ID_COLUMNS:
        if col not in data.columns:
            continue
        data[col], mask = V.ids_from_numbers(data[col].astype(object))
        label = LABELS.get(col, col)
        problems.add(mask, col, f"{label}被 Excel 存成了数字，位数已丢失",
                     "把该列设置为文本格式后重新导出（Excel：选中该列 → 设置单元格格式 → 文本，重新录入或从原系统"
                     f"重新导出）；科学计数法（如 1.5E+17）表示的{label}已无法还原")
        lost[col] = mask
    return lost


def check_codes(values: pd.Series, col: str, length: int, problems: Problems, lost: pd.Series) -> pd.Series:
    """Admin codes of ``length`` digits: malformed ones are problems; both those and ``lost`` ones become ``None``."""
    bad = V.digits_of_length(values, length) & ~lost
    problems.add(bad, col, f"{LABELS.get(col, col)}格式错误",
                 f"应为 {length} 位数字（国家统计用区划代码）；在 Excel 中把该列设为文本格式以保留前导零")
    return values.where(~bad & ~lost, None)


def check_key(keys: pd.Series, col: str, layer: str, problems: Problems, ctx: Context) -> None:
    """A layer key: duplicates in the file, and (append) already in the workspace or (update) not in it, are problems."""
    values = keys.astype(object)
    has = values.notna() & ~ctx.lost_in(col, values.index)
    dup = has & values.duplicated(keep=False)
    if dup.any():
        positions = pd.Series(np.arange(len(values)), index=values.index)[dup].groupby(values[dup]).apply(list)
        for key, plist in positions.items():
            others = "、".join(str(problems.rows[p]) for p in plist)
            for p in plist:
                problems.add_at(int(p), col,
                                 f"{LABELS.get(col, col)}在文件中重复",
                                 f"{LABELS.get(col, col)} {key} 出现在文件的第 {others} 行；每个编号只保留一行")
    if ctx.mode == "update" and ctx.workspace is not None:
        existing = ctx.keys(layer, col)
        problems.add(has & ~values.isin(list(existing)), col, f"{LABELS.get(col, col)}不在工作区中",
                     "更新方式只修改工作区里已有的记录；新记录请用默认的追加方式（--mode append）导入")
    if ctx.mode == "append" and ctx.workspace is not None and layer not in KEYED_APPEND:
        existing = ctx.keys(layer, col)
        problems.add(has & values.isin(list(existing)), col, f"{LABELS.get(col, col)}已存在于工作区",
                     "这条记录已导入过，从文件中删除这一行；如确要用本文件替换整个图层的全部数据，才用 --mode replace")


def check_reference(out: pd.DataFrame, layer: str, key: str, problems: Problems, ctx: Context, *,
                    message: str, fix: str, unchecked: str | None = None) -> None:
    """Rows whose ``out[key]`` names no ``key`` of the workspace's ``layer`` are problems; when that layer is
    still empty nothing can be checked and ``unchecked`` (if given) becomes a warning."""
    known = ctx.keys(layer, key)
    if known:
        problems.add(out[key].notna() & ~ctx.lost_in(key, out.index) & ~out[key].isin(list(known)), key, message, fix)
    elif unchecked and ctx.workspace is not None:
        ctx.warnings.append(unchecked)
