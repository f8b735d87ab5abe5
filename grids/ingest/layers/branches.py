"""Branches: id, name, kind, inside the county."""

from __future__ import annotations

import pandas as pd

from grids.ingest.context import Context, Problems
from grids.ingest.geometry import OUTSIDE_TOLERANCE_M, points_outside_county
from grids.ingest.schema import ObjectArray
from grids.ingest.values import enum_column, require_column, text_column
from grids.model import BRANCH_KINDS


def check_branches(data: pd.DataFrame, geoms: ObjectArray, problems: Problems, ctx: Context) -> pd.DataFrame:
    """Branches: id, name, kind, and a point inside the county."""
    out = pd.DataFrame(index=data.index)
    out["branch_id"] = require_column(data, "branch_id", problems, "每个网点必须有编号")
    out["name"] = require_column(data, "name", problems, "每个网点必须有名称")
    if "kind" in data:
        out["kind"] = enum_column(data, "kind", BRANCH_KINDS, problems)
    for col in ("town_code", "address"):
        if col in data:
            out[col] = text_column(data, col)
    outside = points_outside_county(geoms, ctx)
    if outside is not None:
        problems.add(outside, "geometry", "位置在县界以外",
                     f"网点距县界超过 {OUTSIDE_TOLERANCE_M:.0f} 米；检查坐标（高德坐标请加 --coords gcj02）")
    return out
