"""Admin units: codes, levels and parents that agree with one another."""

from __future__ import annotations

import pandas as pd

from grids import _validate as V
from grids.ingest.context import Context, Problems
from grids.ingest.schema import ObjectArray
from grids.ingest.values import require_column, text_column
from grids.model import CODE_LENGTH

LEVEL_ALIASES = {
    "county": "county", "旗": "county", "县": "county", "旗县": "county", "区县": "county",
    "town": "town", "镇": "town", "乡": "town", "苏木": "town", "街道": "town", "乡镇": "town",
    "village": "village", "村": "village", "嘎查": "village", "社区": "village", "行政村": "village",
    "group": "group", "组": "group", "村民小组": "group", "小组": "group",
}


def check_admin_units(data: pd.DataFrame, geoms: ObjectArray, problems: Problems, ctx: Context) -> pd.DataFrame:
    """Admin units: codes of 6/9/12/15 digits, a level that agrees with the code, parents in the file."""
    out = pd.DataFrame(index=data.index)
    code = require_column(data, "code", problems, "每个区划单元必须有统计用区划代码")
    lengths = tuple(CODE_LENGTH.values())
    lost = ctx.lost_in("code", data.index)
    bad = V.digits_of_length(code, lengths) & ~lost
    problems.add(bad, "code", "代码格式错误", "应为 6（旗县）、9（镇）、12（村）或 15（组）位数字")
    code = code.where(~bad & ~lost, None)
    by_len = {v: k for k, v in CODE_LENGTH.items()}
    level = text_column(data, "level").map(lambda v: LEVEL_ALIASES.get(v.lower(), v) if isinstance(v, str) else v)
    problems.add(level.notna() & ~level.isin(CODE_LENGTH), "level", "级别无法识别",
                 "填写 county/town/village/group（或 旗县/镇/村/组）")
    implied = code.map(lambda c: by_len.get(len(c)) if isinstance(c, str) else None)
    clash = level.notna() & level.isin(CODE_LENGTH) & implied.notna() & (level != implied)
    problems.add(clash, "level", "级别与代码位数不符", "旗县 6 位、镇 9 位、村 12 位、组 15 位")
    out["code"], out["level"] = code, level.where(level.notna(), implied)
    out["name"] = text_column(data, "name")
    parent_len = {"town": 6, "village": 9, "group": 12}
    expected_parent = pd.Series([c[: parent_len[lv]] if isinstance(c, str) and lv in parent_len else None
                                 for c, lv in zip(code, out["level"], strict=True)], index=data.index, dtype=object)
    parent = text_column(data, "parent_code").where(~ctx.lost_in("parent_code", data.index), None)
    problems.add(parent.notna() & expected_parent.notna() & (parent != expected_parent), "parent_code",
                 "上级代码与代码不符", "上级代码应是代码的前 6/9/12 位")
    out["parent_code"] = parent.where(parent.notna(), expected_parent)
    known = set(code.dropna())
    orphan = out["parent_code"].notna() & ~out["parent_code"].isin(list(known)) & out["level"].isin(parent_len)
    problems.add(orphan, "parent_code", "上级单元不在文件中", "同一文件里要包含上级单元（旗县、镇、村）")
    return out
