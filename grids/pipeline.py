"""Whole-workspace steps chained: build the grids, assign them, check, publish.

Publishing goes through :func:`grids.plans.publish_plan`, the one gate: check errors keep the plan a draft,
warnings never do. Used by ``python -m grids demo`` (so the demo county opens with a published, assigned plan
without check errors) and by the planning page's one-click rebuild.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import geopandas as gpd
import pandas as pd

from grids.assign import AssignmentResult, assign_plan, default_by
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS, build_workspace_plan
from grids.check import check_workspace_plan, errors
from grids.errors import ValidationError
from grids.landmass import county_outline
from grids.plans import plan_info, publish_plan, read_grids, update_grids
from grids.workspace import Workspace


@dataclass
class PlanReport:
    """What :func:`prepare_plan` did: the plan, the assignment figures and the remaining problems (errors and
    warnings, see :mod:`grids.check`)."""

    plan_id: str
    revision: int
    assignment: AssignmentResult
    problems: pd.DataFrame
    published: bool


def assign_workspace_plan(ws: Workspace, plan_id: str, *, by: str | None = None, minimal_change: bool = False,
                          actor: str = "cli") -> tuple[int, AssignmentResult]:
    """Assign a stored plan's grids to branches and staff and save them; returns (revision, result).

    ``by`` defaults to the workspace's setting (:func:`grids.assign.default_by`); the county outline and the
    streets (ferry lanes join islands) go to the assignment in both modes.
    """
    info = plan_info(ws, plan_id)
    grids = read_grids(ws, plan_id)
    if not len(grids):
        raise ValidationError(f"方案 “{info['name']}” 没有网格", fix="先运行 `python -m grids build` 生成网格")
    streets = cast(gpd.GeoDataFrame, ws.read("streets"))  # geometry layers read as GeoDataFrames
    branches = cast(gpd.GeoDataFrame, ws.read("branches"))
    result = assign_plan(grids, branches, ws.read("staff"), by=by or default_by(ws.meta),
                         streets=streets if len(streets) else None, outline=county_outline(ws),
                         minimal_change=minimal_change)
    revision = update_grids(ws, plan_id, result.grids, actor=actor,
                            action="最少调整重新分配网格" if minimal_change else "分配网格",
                            expected_revision=info["revision"])
    return revision, result


def prepare_plan(ws: Workspace, *, name: str = "main", min_households: int = DEFAULT_MIN_HOUSEHOLDS,
                 max_households: int = DEFAULT_MAX_HOUSEHOLDS, publish: bool = False, actor: str = "cli",
                 progress: Callable[[str], None] | None = None) -> PlanReport:
    """Build the draft plan ``name``, assign it, check it and, when asked and free of errors, publish it.

    The plan stays a draft when :func:`grids.check.check_workspace_plan` reports an error (the publish gate of
    :func:`grids.plans.publish_plan`); warnings do not stop it. The problems are returned either way.
    """
    say = progress or (lambda _msg: None)
    plan_id = build_workspace_plan(ws, name=name, min_households=min_households, max_households=max_households,
                                   progress=say, actor=actor)
    say("分配网点与客户经理…")
    revision, result = assign_workspace_plan(ws, plan_id, actor=actor)
    say("检查方案…")
    problems = check_workspace_plan(ws, plan_id)
    published = False
    if publish and errors(problems).empty:
        revision = publish_plan(ws, plan_id, actor=actor, expected_revision=revision)
        published = True
    return PlanReport(plan_id, revision, result, problems, published)
