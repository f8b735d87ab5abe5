"""Visits: a household of the workspace, a date not in the future, and the village named matching its own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grids import _validate as V
from grids.ingest.context import Context, Problems
from grids.ingest.placenames import place_by_names
from grids.ingest.schema import ObjectArray
from grids.ingest.values import check_reference, enum_column, require_column, text_column
from grids.model import VISIT_OUTCOMES
from grids.text import normalize_id, plain


def check_visits(data: pd.DataFrame, geoms: ObjectArray, problems: Problems, ctx: Context) -> pd.DataFrame:
    """Visits: a household of the workspace, a date not in the future, a staff member of the workspace."""
    out = pd.DataFrame(index=data.index)
    out["hh_id"] = require_column(data, "hh_id", problems, "每条走访记录必须有户号")
    visited, bad, future = V.parse_date(require_column(data, "visited_on", problems, "填写走访日期，例如 2019-03-05"))
    problems.add(bad, "visited_on", "走访日期无法识别", "写成 2019-03-05 这样的日期")
    problems.add(future, "visited_on", "走访日期在未来", "检查年份和月份")
    out["visited_on"] = visited
    if "staff_id" in data:
        out["staff_id"] = text_column(data, "staff_id")
        check_reference(out, "staff", "staff_id", problems, ctx, message="员工不存在",
                        fix="工作区里没有这个工号；检查工号，或先导入员工（staff）")
    if "outcome" in data:
        out["outcome"] = enum_column(data, "outcome", VISIT_OUTCOMES, problems)
    if "note" in data:
        out["note"] = text_column(data, "note")
    check_reference(out, "households", "hh_id", problems, ctx, message="户号不在工作区中",
                    fix="先导入这户的档案（households），或检查户号",
                    unchecked="工作区还没有农户，未检查走访记录的户号（先导入 households）")
    _check_visit_village(data, out, problems, ctx)
    return out


def _check_visit_village(data: pd.DataFrame, out: pd.DataFrame, problems: Problems, ctx: Context) -> None:
    """A visit register that names the village (and group) of each 户号: the names must be known, and name the
    household's own village — a mismatch is a wrong 户号 more often than a moved household."""
    if "village_name" not in data and "group_name" not in data:
        return
    none = pd.Series(None, index=data.index, dtype=object)
    village, group, _, by_name = place_by_names(data, none, none, problems, ctx)
    if ctx.workspace is None or not ctx.workspace.count("households") or not by_name.any():
        return
    hh = ctx.workspace.read("households", columns=["hh_id", "village_code", "group_code"])
    own_village = dict(zip(hh["hh_id"].map(normalize_id), hh["village_code"], strict=True))
    own_group = dict(zip(hh["hh_id"].map(normalize_id), hh["group_code"], strict=True))
    for pos in np.flatnonzero(by_name):
        hid = out["hh_id"].iloc[pos]
        if hid is None or hid not in own_village:
            continue
        have, said = own_village[hid], village.iloc[pos]
        if isinstance(have, str) and have != said:
            problems.add_at(int(pos), "village_name", "户号与村名不符",
                            f"户号 {plain(hid, limit=30)} 在工作区里属于村 {have}，登记的村名对应 {said}；检查户号")
        elif isinstance(own_group[hid], str) and isinstance(group.iloc[pos], str) and own_group[hid] != group.iloc[pos]:
            problems.add_at(int(pos), "group_name", "户号与组名不符",
                            f"户号 {plain(hid, limit=30)} 在工作区里属于组 {own_group[hid]}，登记的组名对应 "
                            f"{group.iloc[pos]}；检查户号")
