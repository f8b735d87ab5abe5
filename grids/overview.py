"""What the overview page shows: coverage by grid (or by village without a plan), the funnel, uncovered
households, weekly visits — assembled from layers passed in (:func:`overview_bundle`,
:func:`village_overview`) — and the map of it (:func:`overview_map`).

The app caches these per workspace revision and scope (``ui.data.overview_for``); the CLI and tests call them
with frames they read themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import folium
import geopandas as gpd
import pandas as pd

from grids import coverage, maps, plans
from grids.errors import ValidationError
from grids.household_status import NOT_ARCHIVED, flag_column
from grids.model import PLAN_STATUS_NAMES
from grids.placement import village_counts

__all__ = ["HOUSEHOLD_MAP_COLUMNS", "Overview", "current_plan_grids", "overview_bundle", "overview_map", "plan_label",
           "village_overview"]

HOUSEHOLD_MAP_COLUMNS: tuple[str, ...] = (
    "hh_id", "village_code", "group_code", "segment", "product", "archived", "eligible", "granted_amount",
    "signed", "available_amount", "using", "balance",
)
"""Household columns the overview needs (reading all 18 of 110k rows takes three times as long)."""


@dataclass
class Overview:
    """What the overview page shows, computed once per workspace revision."""

    areas: gpd.GeoDataFrame
    id_column: str
    area_label: str
    plan_name: str | None
    uncovered: gpd.GeoDataFrame
    branches: gpd.GeoDataFrame
    admin_units: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    summary: dict[str, Any]
    by_area: pd.DataFrame
    by_town: pd.DataFrame
    weekly: pd.DataFrame | None = None
    staff_names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def current_plan_grids(ws: Any) -> tuple[gpd.GeoDataFrame | None, str | None]:
    """The grids of the workspace's current plan and its :func:`plan_label`; ``(None, None)`` without a plan
    (or with an empty one)."""
    try:
        plan_id = plans.resolve_plan(ws)
        info = plans.plan_info(ws, plan_id)
        grids = plans.read_grids(ws, plan_id)
    except ValidationError:
        return None, None
    return (grids if len(grids) else None), plan_label(info, plan_id)


def plan_label(info: dict[str, Any], plan_id: str) -> str:
    """``main（已发布）``: a plan's name and status in Chinese."""
    status = str(info.get("status", ""))
    return f"{info.get('name', plan_id)}（{PLAN_STATUS_NAMES.get(status, status)}）"


def overview_bundle(*, hh: pd.DataFrame, grids: gpd.GeoDataFrame, located: pd.DataFrame, plan_name: str | None,
                    admin: gpd.GeoDataFrame, staff: pd.DataFrame, visits: pd.DataFrame,
                    branches: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, weekly_by: str = "branch") -> Overview:
    """The overview of ``hh`` placed in ``grids`` (the county, or one account's scope); ``located`` is
    :func:`grids.coverage.locate_households` of them."""
    towns = admin[admin["level"] == "town"]
    town_names = dict(zip(towns["code"], towns["name"], strict=True))
    names = dict(zip(grids["grid_id"], grids["name"].fillna(grids["code"]), strict=True))
    by_area = coverage.funnel(hh, by="grid", located=located, names=names)
    areas = grids[["grid_id", "code", "name", "staff_id", "branch_id", "geometry"]].copy()
    areas["name"] = areas["name"].fillna(areas["code"])
    areas["coverage_rate"] = areas["grid_id"].map(by_area["coverage_rate"])
    areas["households"] = areas["grid_id"].map(by_area["registered"]).fillna(0).astype(int)
    weekly = coverage.weekly_visits(visits, by=weekly_by, staff=staff) if len(visits) else None
    return Overview(
        areas=areas, id_column="grid_id", area_label="网格", plan_name=plan_name,
        uncovered=cast(gpd.GeoDataFrame, coverage.uncovered_households(hh, located).join(  # village codes → counts
            hh[[c for c in ("village_code", "group_code", "placed_by") if c in hh.columns]])),
        branches=branches, admin_units=admin,
        streets=streets, summary=coverage.county_summary(hh), by_area=by_area,
        by_town=coverage.funnel(hh, by="town", names=town_names), weekly=weekly,
        staff_names=dict(zip(staff["staff_id"], staff["name"], strict=True)),
    )


def village_overview(*, hh: pd.DataFrame, admin: gpd.GeoDataFrame, staff: pd.DataFrame, visits: pd.DataFrame,
                     branches: gpd.GeoDataFrame, streets: gpd.GeoDataFrame) -> Overview:
    """The county overview without a grid plan: coverage by village (:func:`grids.maps.unit_coverage`)."""
    towns = admin[admin["level"] == "town"]
    town_names = dict(zip(towns["code"], towns["name"], strict=True))
    areas = maps.unit_coverage(admin, hh, level="village").rename(columns={"code": "area_id"})
    areas["staff_id"] = "—"  # villages have no responsible person to flag
    unc = cast(gpd.GeoDataFrame, hh[~flag_column(hh, "archived")].assign(reason=NOT_ARCHIVED))  # hh has points
    weekly = coverage.weekly_visits(visits, by="branch", staff=staff) if len(visits) else None
    return Overview(
        areas=areas, id_column="area_id", area_label="村", plan_name=None, uncovered=unc, branches=branches,
        admin_units=admin, streets=streets, summary=coverage.county_summary(hh), by_area=coverage.funnel(hh, by="village"),
        by_town=coverage.funnel(hh, by="town", names=town_names), weekly=weekly,
        staff_names=dict(zip(staff["staff_id"], staff["name"], strict=True)),
        notes=["工作区还没有网格方案：地图按村/嘎查/社区显示建档率。"],
    )


def overview_map(ov: Overview, *, seats: pd.DataFrame, basemap: str, show_streets: bool = True,
                 tianditu_key: str | None = None, tile_url: str | None = None) -> folium.Map:
    """The overview map of ``ov`` (:func:`grids.maps.overview_map`): areas by coverage, branches, uncovered
    households, households known only by village counted at the village ``seats``; streets when ``show_streets``."""
    return maps.overview_map(
        ov.areas, branches=ov.branches, uncovered=ov.uncovered, admin_units=ov.admin_units,
        unlocated=village_counts(ov.uncovered, ov.admin_units, seats=cast(gpd.GeoDataFrame, seats)),  # a point layer
        streets=ov.streets if show_streets else None, basemap=basemap, id_column=ov.id_column,
        area_label=ov.area_label, tianditu_key=tianditu_key, tile_url=tile_url,
    )
