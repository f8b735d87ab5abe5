"""Cached loaders: workspace layers and page bundles, keyed on the workspace target and its revision.

``st.cache_data`` cannot hash a GeoDataFrame (and samples big frames when it tries), so every cache here is
keyed on ``(target, revision)``: a committed change bumps the revision and the next run reloads. Cached
objects are shared by all sessions (``st.cache_resource``): treat them as read-only — the library never
mutates its inputs.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from grids import maps
from grids.errors import ValidationError
from grids.store import open_workspace
from ui.state import ROOT


def optional_module(name: str) -> ModuleType | None:
    """``grids.<name>`` when that module has been written, else None (pages degrade gracefully)."""
    try:
        return importlib.import_module(f"grids.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"grids.{name}":
            return None
        raise


def workspace_target() -> str:
    """The workspace the app serves: env ``GRIDS_WORKSPACE`` (path or PostGIS URL), default the demo."""
    return os.environ.get("GRIDS_WORKSPACE") or str(ROOT / "workspace" / "demo.gpkg")


def revision(target: str) -> int:
    """The workspace's current revision (read on every run; cheap)."""
    return open_workspace(target).revision


def _secret(name: str) -> str | None:
    try:
        value = st.secrets.get(name)
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return None
    return str(value) if value else None


def basemap_options() -> dict[str, Any]:
    """Basemaps this installation can show (key → label) and their settings from env/secrets.

    Tianditu needs ``TIANDITU_KEY`` (env) or ``tianditu_key`` (secrets); ``custom`` needs ``GRIDS_TILE_URL``.
    """
    key = os.environ.get("TIANDITU_KEY") or _secret("tianditu_key")
    url = os.environ.get("GRIDS_TILE_URL") or _secret("tile_url")
    labels = {k: v for k, v in maps.BASEMAPS.items()
              if (k != "tianditu" or key) and (k != "custom" or url)}
    return {"labels": labels, "tianditu_key": key, "tile_url": url}


HOUSEHOLD_MAP_COLUMNS: tuple[str, ...] = (
    "hh_id", "village_code", "group_code", "segment", "product", "archived", "eligible", "granted_amount",
    "signed", "available_amount", "using", "balance",
)
"""Household columns the overview needs (reading all 18 of 110k rows takes three times as long)."""


@st.cache_resource(max_entries=16, show_spinner=False)
def layer(target: str, rev: int, name: str, columns: tuple[str, ...] | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
    """One workspace layer at revision ``rev`` (read-only, shared); only ``columns`` when given."""
    ws = open_workspace(target)
    if columns is not None:
        present = ws.columns(name)
        columns = tuple(c for c in columns if c in present)
    return ws.read(name, columns=columns)


@st.cache_resource(max_entries=4, show_spinner=False)
def workspace_info(target: str, rev: int) -> dict[str, Any]:
    """Metadata, layer row counts and the last audit entries of the workspace."""
    ws = open_workspace(target)
    counts = {name: ws.count(name) for name in ws.layers()}
    audit = ws.read("audit") if "audit" in counts else pd.DataFrame()
    path = Path(target)
    return {
        "meta": ws.meta,
        "counts": counts,
        "audit": audit.tail(20).iloc[::-1].reset_index(drop=True),
        "size_mb": path.stat().st_size / 1e6 if path.is_file() else None,
    }


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


def _grids_of_current_plan(target: str, rev: int) -> tuple[gpd.GeoDataFrame | None, str | None]:
    plans = optional_module("plans")
    if plans is None:
        return None, None
    ws = open_workspace(target)
    try:
        plan_id = plans.resolve_plan(ws)
        info = plans.plan_info(ws, plan_id)
        grids = plans.read_grids(ws, plan_id)
    except ValidationError:
        return None, None
    return (grids if len(grids) else None), f"{info.get('name', plan_id)}（{info.get('status', '')}）"


@st.cache_resource(max_entries=2, show_spinner="正在汇总覆盖情况…")
def overview(target: str, rev: int) -> Overview:
    """The overview bundle: areas with coverage, uncovered households, funnel tables."""
    coverage = optional_module("coverage")
    hh = layer(target, rev, "households", HOUSEHOLD_MAP_COLUMNS)
    admin = layer(target, rev, "admin_units")
    staff = layer(target, rev, "staff")
    notes: list[str] = []
    grids, plan_name = _grids_of_current_plan(target, rev)
    towns = admin[admin["level"] == "town"]
    town_names = dict(zip(towns["code"], towns["name"], strict=True))
    if coverage is None:
        notes.append("覆盖统计模块（grids.coverage）尚未上线：按村统计已建档率。")
    if grids is not None and coverage is not None:
        located = coverage.locate_households(hh, grids, admin_units=admin)
        names = dict(zip(grids["grid_id"], grids["name"].fillna(grids["code"]), strict=True))
        by_area = coverage.funnel(hh, by="grid", located=located, names=names)
        areas = grids[["grid_id", "code", "name", "staff_id", "branch_id", "geometry"]].copy()
        areas["name"] = areas["name"].fillna(areas["code"])
        areas["coverage_rate"] = areas["grid_id"].map(by_area["coverage_rate"])
        areas["households"] = areas["grid_id"].map(by_area["registered"]).fillna(0).astype(int)
        unc = coverage.uncovered_households(hh, located)
        id_column, area_label = "grid_id", "网格"
    else:
        if grids is None:
            notes.append("工作区还没有网格方案：地图按村/嘎查/社区显示建档率。")
        areas = maps.unit_coverage(admin, hh, level="village").rename(columns={"code": "area_id"})
        areas["staff_id"] = "—"  # villages have no responsible person to flag
        by_area = (coverage.funnel(hh, by="village") if coverage is not None
                   else areas.set_index("area_id")[["households", "covered", "coverage_rate"]])
        unc = hh[~hh["archived"].astype("boolean").fillna(False).to_numpy(dtype=bool)].assign(reason="未建档")
        id_column, area_label = "area_id", "村"
    summary = coverage.county_summary(hh) if coverage is not None else {
        "registered": len(hh), "archived": int(hh["archived"].fillna(False).sum()),
        "coverage_rate": float(hh["archived"].fillna(False).mean()) if len(hh) else None}
    by_town = coverage.funnel(hh, by="town", names=town_names) if coverage is not None else pd.DataFrame()
    visits = layer(target, rev, "visits")
    weekly = None
    if coverage is not None and len(visits):
        weekly = coverage.weekly_visits(visits, by="branch", staff=staff)
    return Overview(
        areas=areas, id_column=id_column, area_label=area_label, plan_name=plan_name,
        uncovered=unc, branches=layer(target, rev, "branches"), admin_units=admin,
        streets=layer(target, rev, "streets"), summary=summary, by_area=by_area, by_town=by_town,
        weekly=weekly, staff_names=dict(zip(staff["staff_id"], staff["name"], strict=True)), notes=notes,
    )


def overview_map(target: str, rev: int, basemap: str) -> Any:
    """A freshly built overview map (show it with ``ui.maps.show_cached_map``, which renders it once)."""
    ov = overview(target, rev)
    opts = basemap_options()
    return maps.overview_map(
        ov.areas, branches=ov.branches, uncovered=ov.uncovered, admin_units=ov.admin_units,
        streets=ov.streets, basemap=basemap, id_column=ov.id_column, area_label=ov.area_label,
        tianditu_key=opts["tianditu_key"], tile_url=opts["tile_url"],
    )


def current() -> tuple[str, int]:
    """``(target, revision)`` of the served workspace, for the caches above."""
    target = workspace_target()
    return target, revision(target)


def save_uploads(files: list[Any], folder: str | os.PathLike) -> Path:
    """Write uploaded files (a Shapefile's .shp/.dbf/.shx/.prj/.cpg together) into ``folder``; returns the
    file to read: the ``.shp`` when there is one, else the first file."""
    folder = Path(folder)
    paths = []
    for f in files:
        p = folder / Path(f.name).name
        p.write_bytes(f.getvalue())
        paths.append(p)
    shp = [p for p in paths if p.suffix.lower() == ".shp"]
    return shp[0] if shp else paths[0]
