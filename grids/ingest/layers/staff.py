"""Staff: id, name, role, phone, a branch of the workspace."""

from __future__ import annotations

import pandas as pd

from grids import _validate as V
from grids.ingest.context import Context, Problems
from grids.ingest.schema import ObjectArray
from grids.ingest.values import check_reference, enum_column, require_column, text_column
from grids.model import STAFF_ROLES


def check_staff(data: pd.DataFrame, geoms: ObjectArray, problems: Problems, ctx: Context) -> pd.DataFrame:
    """Staff: id, name, a branch of the workspace, role and phone."""
    out = pd.DataFrame(index=data.index)
    out["staff_id"] = require_column(data, "staff_id", problems, "每名员工必须有工号")
    out["name"] = require_column(data, "name", problems, "每名员工必须有姓名", label="姓名")
    out["branch_id"] = require_column(data, "branch_id", problems, "每名员工必须属于一个网点")
    if "role" in data:
        out["role"] = enum_column(data, "role", STAFF_ROLES, problems)
    if "phone" in data:
        out["phone"], bad = V.check_phone(text_column(data, "phone"))
        problems.add(bad & ~ctx.lost_in("phone", data.index), "phone", "联系电话格式错误", "应为 11 位数字")
    check_reference(out, "branches", "branch_id", problems, ctx, message="网点不存在",
                    fix="工作区里没有这个网点编号；检查编号，或先导入网点（branches）",
                    unchecked="工作区还没有网点，未检查员工所属网点是否存在（先导入 branches）")
    return out
