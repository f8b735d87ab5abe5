"""Cached loaders: workspace layers and page bundles, keyed on the workspace target and its revision.

``st.cache_data`` cannot hash a GeoDataFrame (and samples big frames when it tries), so every cache here is
keyed on ``(target, revision)``: a committed change bumps the revision and the next run reloads. Cached
objects are shared by all sessions (``st.cache_resource``): treat them as read-only — the library never
mutates its inputs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from grids import coverage, export, maps, plans
from grids import overview as ovw
from grids.auth import Account
from grids.errors import ValidationError
from grids.overview import Overview
from grids.placement import placement, village_counts, village_of
from grids.scope import ScopedWorkspace
from grids.text import markdown
from grids.workspace import Workspace, open_workspace
from ui.state import AUTH_SESSION, EDITORS, ROOT, SCOPED, UNMASK, UNMASKED


def workspace_target() -> str:
    """The workspace the app serves: env ``GRIDS_WORKSPACE`` (path or PostGIS URL), default the demo."""
    return os.environ.get("GRIDS_WORKSPACE") or str(ROOT / "workspace" / "demo.gpkg")


_NOTICES: dict[str, str | None] = {}


def revision(target: str) -> int:
    """The workspace's current revision (read on every run; cheap). Reading it records edits made outside the
    library; on a read-only workspace that cannot be done and :func:`workspace_notice` says so."""
    ws = open_workspace(target)
    rev = ws.revision
    _NOTICES[target] = ws.notice
    return rev


def workspace_notice(target: str) -> str | None:
    """What the last :func:`revision` of ``target`` had to say (a read-only workspace with outside edits it
    could not record), or None."""
    return _NOTICES.get(target)


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


def tiles() -> dict[str, Any]:
    """The basemap settings map builders take (``tianditu_key``, ``tile_url``; see :func:`basemap_options`)."""
    opts = basemap_options()
    return {"tianditu_key": opts["tianditu_key"], "tile_url": opts["tile_url"]}


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
    from grids.audit import audit_table

    path = Path(target)
    return {
        "meta": ws.meta,
        "counts": counts,
        "audit": audit_table(ws, last=20) if "audit" in counts else pd.DataFrame(),
        "size_mb": path.stat().st_size / 1e6 if path.is_file() else None,
    }


@st.cache_resource(max_entries=4, show_spinner=False)
def onboarding(target: str, rev: int) -> dict[str, Any]:
    """What the workspace has and lacks, step by step (:func:`grids.status.workspace_status`), at ``rev``."""
    from grids.status import workspace_status
    from grids.text import mask_url

    return workspace_status(open_workspace(target), path=mask_url(target))


@st.cache_resource(max_entries=2, show_spinner="正在汇总覆盖情况…")
def overview(target: str, rev: int) -> Overview:
    """The county overview bundle: areas with coverage, uncovered households, funnel tables.

    The whole county, for roles that read it all (``read_all``); other roles use :func:`overview_for`.
    """
    hh = layer(target, rev, "households", HOUSEHOLD_MAP_COLUMNS)
    admin, staff, visits = layer(target, rev, "admin_units"), layer(target, rev, "staff"), layer(target, rev, "visits")
    branches, streets = layer(target, rev, "branches"), layer(target, rev, "streets")
    grids, plan_name = ovw.current_plan_grids(open_workspace(target))
    if grids is None:
        return ovw.village_overview(hh=hh, admin=admin, staff=staff, visits=visits, branches=branches,
                                         streets=streets)
    located = coverage.locate_households(hh, grids, admin_units=admin)
    return ovw.overview_bundle(hh=hh, grids=grids, located=located, plan_name=plan_name, admin=admin,
                                    staff=staff, visits=visits, branches=branches, streets=streets)


def overview_map(target: str, rev: int, basemap: str) -> Any:
    """A freshly built county overview map (show it with ``ui.maps.show_cached_map``, which renders it once)."""
    return ovw.overview_map(overview(target, rev), seats=layer(target, rev, "seats"), basemap=basemap,
                                 **tiles())


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


# --------------------------------------------------------------------------------------------------------
# the signed-in account's scope: every page reads through a ScopedWorkspace
# --------------------------------------------------------------------------------------------------------


@st.cache_resource(max_entries=14, show_spinner="正在读取数据…")
def _shared_raw(target: str, rev: int, plan_id: str, key: str) -> Any:
    """One raw layer (or the household → grid placement) at revision ``rev``, shared by all sessions.

    Only :class:`AppScopedWorkspace` reads these; it hands out scoped copies, never the shared frame.
    """
    from grids import coverage

    ws = open_workspace(target)
    if key == "grids":
        return plans.read_grids(ws, plan_id)
    if key == "located":
        return coverage.locate_in_workspace(ws, _shared_raw(target, rev, plan_id, "grids"),
                                            households=_shared_raw(target, rev, plan_id, "households"))
    if key == "surveys":  # made by the first save: an older workspace has none yet
        from grids.survey import read_surveys

        return read_surveys(ws)
    return ws.read(key)


class AppScopedWorkspace(ScopedWorkspace):
    """A :class:`grids.scope.ScopedWorkspace` whose raw layers come from the server-wide cache.

    The base class caches per instance; in the app that would be one copy of the county's 110k households
    per session. Here the raw layers are read once per workspace revision for all sessions
    (:func:`_shared_raw`), and the scoping, masking and auditing of the base class apply unchanged.
    """

    def __init__(self, ws: Workspace, account: Account, *, target: str, plan: str | None = None) -> None:
        super().__init__(ws, account, plan=plan)
        self.target = target

    def _raw(self, key: str) -> Any:
        return _shared_raw(self.target, self.ws.revision, self.plan_id, key)


def scope_key(account: Account) -> str:
    """What an account's data depends on: the county for ``read_all`` roles, else its branch or staff id."""
    if account.can("read_all"):
        return "county"
    return f"{account.role}:{account.branch_id or ''}:{account.staff_id or ''}"


def scoped(target: str, rev: int, account: Account) -> AppScopedWorkspace:
    """This session's scoped workspace, kept in session state on (workspace, revision, account).

    Raises
    ------
    ValidationError
        The workspace has no grid plan (so no scope can be drawn).
    """
    key = (target, rev, account)
    held = st.session_state.get(SCOPED)
    if held is None or held[0] != key:
        held = (key, AppScopedWorkspace(open_workspace(target), account, target=target))
        st.session_state[SCOPED] = held
    return held[1]


def scope_or_stop(target: str, rev: int, account: Account) -> AppScopedWorkspace:
    """:func:`scoped`, or a warning and the end of the page when the workspace has no grid plan."""
    try:
        return scoped(target, rev, account)
    except ValidationError as exc:
        st.warning(f"还没有网格方案，无法确定你的管辖范围：{markdown(exc)}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


def households(sw: ScopedWorkspace, *, purpose: str) -> gpd.GeoDataFrame:
    """In-scope households: masked, or in full when the user ticked “显示完整身份证号/电话”.

    Only roles with ``view_personal`` get the full view; it is audited once per workspace revision and
    ``purpose`` in this session (a rerun of the same view is not a new view).
    """
    if not (st.session_state.get(UNMASK) and sw.account.can("view_personal")):
        return sw.households()
    rev = sw.ws.revision
    key = (getattr(sw, "target", ""), rev, purpose)
    held = {k: v for k, v in st.session_state.get(UNMASKED, {}).items() if k[1] == rev}
    if key not in held:
        held[key] = sw.households(unmask=True, purpose=purpose)
    st.session_state[UNMASKED] = held
    return held[key]


def unmasked() -> bool:
    """True when this run shows personal data in full."""
    session = st.session_state.get(AUTH_SESSION)
    return bool(st.session_state.get(UNMASK)) and session is not None and session.account.can("view_personal")


@st.cache_resource(max_entries=16, show_spinner="正在汇总覆盖情况…")
def _scoped_overview(target: str, rev: int, account: Account) -> Overview:

    ws = open_workspace(target)
    sw = AppScopedWorkspace(ws, account, target=target)
    return ovw.overview_bundle(
        hh=sw.households(columns=HOUSEHOLD_MAP_COLUMNS), grids=sw.grids(), located=sw.located(),
        plan_name=ovw.plan_label(plans.plan_info(ws, sw.plan_id), sw.plan_id), admin=layer(target, rev, "admin_units"),
        staff=sw.staff(), visits=sw.visits(), branches=sw.branches(), streets=layer(target, rev, "streets"),
        weekly_by="staff")


def overview_for(target: str, rev: int, account: Account) -> Overview:
    """The overview ``account`` may see: the county (``read_all``) or its branch / its own grids."""
    if account.can("read_all"):
        return overview(target, rev)
    scope_or_stop(target, rev, account)  # no plan → a warning instead of the page
    return _scoped_overview(target, rev, account)


def account_overview_map(target: str, rev: int, basemap: str, account: Account) -> Any:
    """A freshly built overview map of what ``account`` may see (show with ``ui.maps.show_cached_map`` and a
    cache key that includes :func:`scope_key`)."""
    return ovw.overview_map(overview_for(target, rev, account), seats=layer(target, rev, "seats"),
                                 basemap=basemap, show_streets=account.can("read_all"), **tiles())


# --------------------------------------------------------------------------------------------------------
# 走访工作台
# --------------------------------------------------------------------------------------------------------

def progress_table(target: str, rev: int, account: Account, *, days: int) -> pd.DataFrame:
    """Every in-scope customer manager's progress over the ``days`` days ending on the workspace's as-of date
    (:func:`grids.progress.staff_progress`), computed once per revision, scope and window; empty without a
    plan (no scope)."""
    return _progress_table(target, rev, scope_key(account), int(days), account)


@st.cache_data(max_entries=64, show_spinner=False)
def _progress_table(target: str, rev: int, key: str, days: int, _account: Account) -> pd.DataFrame:
    from grids import progress

    sw = _scoped_or_none(target, _account)
    if sw is None:
        return pd.DataFrame()
    return progress.staff_progress(sw.visits(), sw.staff(), as_of=progress.as_of_date(sw.ws.meta), days=days,
                                   branches=sw.branches())


def weekly_trend(target: str, rev: int, account: Account, *, by: str) -> pd.DataFrame:
    """Visits per ISO week and branch or customer manager in the account's scope, the last 12 weeks to the
    as-of date (:func:`grids.monthly.weekly_progress`), once per revision and scope; empty without a plan."""
    return _weekly_trend(target, rev, scope_key(account), by, account)


@st.cache_data(max_entries=32, show_spinner=False)
def _weekly_trend(target: str, rev: int, key: str, by: str, _account: Account) -> pd.DataFrame:
    from grids import monthly

    sw = _scoped_or_none(target, _account)
    return pd.DataFrame() if sw is None else monthly.weekly_progress(sw, by=by)


def _scoped_or_none(target: str, account: Account) -> AppScopedWorkspace | None:
    """The account's scoped workspace, or None when it has no plan to scope by yet."""
    try:
        return AppScopedWorkspace(open_workspace(target), account, target=target)
    except ValidationError:
        return None


def progress_of(visits: pd.DataFrame, person: pd.DataFrame, *, meta: dict[str, str],
                branches: pd.DataFrame | None) -> dict[str, Any]:
    """One customer manager's visits in the 7 and 30 days ending on the workspace's as-of date, against their
    quota (:func:`grids.progress.staff_progress`): ``visits``/``target``/``behind`` of 7 days, ``month_*`` of 30,
    ``quota``, ``start``, ``end``, ``live`` (no reporting date: up to today)."""
    from grids import progress

    as_of = progress.as_of_date(meta)
    out: dict[str, Any] = {"visits": 0, "target": 0.0, "behind": True, "month_visits": 0, "month_target": 0.0,
                           "quota": float(progress.DEFAULT_QUOTA_PER_DAY), "end": as_of,
                           "start": progress.window(as_of, 7)[0], "live": progress.is_live(meta)}
    if len(person):
        week = progress.staff_progress(visits, person, as_of=as_of, days=7, branches=branches).iloc[0]
        month = progress.staff_progress(visits, person, as_of=as_of, days=30, branches=branches).iloc[0]
        out.update(visits=int(week["visits"]), target=float(week["target"]), behind=week["status"] == "落后",
                   month_visits=int(month["visits"]), month_target=float(month["target"]),
                   quota=float(week["quota_per_day"]))
    return out


@dataclass
class Workbench:
    """One customer manager's grids, households, who is left to visit and progress."""

    staff_id: str | None
    grids: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    todo: gpd.GeoDataFrame
    summary: dict[str, Any]
    start: tuple[float, float] | None
    start_label: str
    branch: gpd.GeoDataFrame
    week: dict[str, Any]
    weekly: pd.DataFrame
    villages: gpd.GeoDataFrame | None = None
    """Households to visit known only by village, counted per village at its seat
    (:func:`grids.placement.village_counts`); their rows are in ``todo`` with ``placement == 'village'``."""


def to_visit(households: gpd.GeoDataFrame, *, start: tuple[float, float] | None,
             admin_units: pd.DataFrame | None = None, closed: Collection[str] = ()) -> gpd.GeoDataFrame:
    """The households still to visit (:func:`grids.survey.to_do`: not archived, not closed by their latest
    survey), nearest first from ``start`` (storage lon/lat), with ``distance_km`` measured in the Gauss-Krüger
    zone and ``placement`` (:func:`grids.placement.placement`, with ``admin_units``); only a household's own
    point has a distance, the others come last."""
    from grids.survey import to_do

    todo = households[to_do(households, closed)].copy()
    todo["distance_km"] = float("nan")
    units = admin_units if admin_units is not None else pd.DataFrame({"code": [], "level": []})
    todo["placement"] = placement(todo, units)
    return with_distances(todo, start=start)


def with_distances(todo: gpd.GeoDataFrame, *, start: tuple[float, float] | None) -> gpd.GeoDataFrame:
    """``todo`` (rows of :func:`to_visit`) with ``distance_km`` from ``start`` for the households with their own
    point (measured in the Gauss-Krüger zone), nearest first; the others come last."""
    from grids.crs import to_gk

    todo = todo.copy()
    todo["distance_km"] = float("nan")
    located = (todo["placement"] == "point") & ~(todo.geometry.isna() | todo.geometry.is_empty)
    if start is not None and located.any():
        gk = to_gk(todo[located])
        here = gpd.GeoSeries(gpd.points_from_xy([start[0]], [start[1]]), crs=todo.crs).to_crs(gk.crs).iloc[0]
        todo.loc[located, "distance_km"] = (gk.geometry.distance(here) / 1000).round(2).to_numpy()
    return todo.sort_values(["distance_km", "hh_id"], na_position="last", kind="stable")


def versions_of(households: pd.DataFrame) -> dict[str, int]:
    """``hh_id`` → row version of ``households`` (``NULL`` or no column: 0).

    >>> versions_of(pd.DataFrame({"hh_id": ["a", "b"], "version": [2, None]}))
    {'a': 2, 'b': 0}
    """
    v = households["version"] if "version" in households.columns else pd.Series(0, index=households.index)
    return dict(zip(households["hh_id"].astype(str), pd.to_numeric(v, errors="coerce").fillna(0).astype(int).tolist(),
                    strict=True))


def workbench(sw: ScopedWorkspace, *, staff_id: str | None, start: tuple[float, float] | None,
              admin_units: gpd.GeoDataFrame | None = None, seats: gpd.GeoDataFrame | None = None) -> Workbench:
    """The workbench of ``staff_id`` (a customer manager's own; admins pick one) from ``start``
    (default: the staff member's branch). With ``admin_units`` (and ``seats``) the households to visit known
    only by village are counted per village at its seat (``villages``) and never given a distance."""
    from grids import coverage

    grids = sw.grids()
    located = sw.located()
    hh = sw.households()
    if staff_id is not None:
        grids = grids[grids["staff_id"] == staff_id]
        mine = located["staff_id"].astype(object).eq(staff_id).fillna(False).to_numpy(dtype=bool)
        hh, located = hh[mine], located[mine]
    staff = sw.staff()
    person = staff[staff["staff_id"] == staff_id]
    branch_id = sw.account.branch_id or (str(person["branch_id"].iloc[0]) if len(person) else None)
    branches = sw.branches()
    branch = branches[branches["branch_id"] == branch_id]
    label = "网点"
    if start is None and len(branch):
        start = (float(branch.geometry.iloc[0].x), float(branch.geometry.iloc[0].y))
        label = f"{branch['name'].iloc[0]}（网点）"
    elif start is not None:
        label = f"地图上选的位置（{start[0]:.5f}, {start[1]:.5f}）"
    closed = sw.closed_ids()
    by_grid = coverage.funnel(hh, by="grid", located=located, closed=closed)
    grids = grids.assign(coverage_rate=grids["grid_id"].map(by_grid["coverage_rate"]),
                         households=grids["grid_id"].map(by_grid["registered"]).fillna(0).astype(int))
    visits = sw.visits()
    visits = visits[visits["staff_id"] == staff_id] if staff_id is not None else visits.iloc[:0]
    week = progress_of(visits, person, meta=sw.ws.meta, branches=branches)
    weekly = coverage.weekly_visits(visits, by="staff") if len(visits) else pd.DataFrame(
        {"week": pd.Series(dtype=str), "visits": pd.Series(dtype=int)})
    todo = to_visit(hh, start=start, admin_units=admin_units, closed=closed)
    villages = village_counts(todo, admin_units, seats=seats) if admin_units is not None else None
    return Workbench(staff_id=staff_id, grids=grids, households=hh, todo=todo,
                     summary=coverage.county_summary(hh, closed=closed), start=start, start_label=label,
                     branch=branch, week=week, weekly=weekly, villages=villages)


@st.cache_data(max_entries=128, show_spinner=False)
def _cached_workbench_base(target: str, rev: int, username: str, role: str, staff_id: str | None, day: str,
                           _sw: ScopedWorkspace) -> Workbench:
    return workbench(_sw, staff_id=staff_id, start=None, admin_units=layer(target, rev, "admin_units"),
                     seats=layer(target, rev, "seats"))


@st.cache_data(max_entries=256, show_spinner=False)
def _cached_workbench(target: str, rev: int, username: str, role: str, staff_id: str | None,
                      start: tuple[float, float] | None, day: str, _sw: ScopedWorkspace) -> Workbench:
    """From the branch (the base), or from a point picked on the map: only the distances change, so only they
    are computed again (the figures, progress and village counts come from the base)."""
    base = _cached_workbench_base(target, rev, username, role, staff_id, day, _sw)
    if start is None:
        return base
    return dataclasses.replace(base, todo=with_distances(base.todo, start=start), start=start,
                               start_label=f"地图上选的位置（{start[0]:.5f}, {start[1]:.5f}）")


def visit_lists(wb: Workbench) -> tuple[pd.DataFrame, list[tuple[str, str, pd.DataFrame]]]:
    """The to-visit list as the page shows it: households with a position (own point, nearest first; then
    those placed by group), and per village — ``(village name, “三家子村：23 户未定位”, its households)`` by
    village code — those known only by village (no invented distance)."""
    todo = wb.todo
    kind = todo["placement"] if "placement" in todo.columns else pd.Series("point", index=todo.index)

    def table(rows: pd.DataFrame, *, distance: bool) -> pd.DataFrame:
        group = rows.get("group_name")
        cols = {"户主": rows.get("head_name"), "距离（公里）": rows["distance_km"] if distance else None,
                "电话": rows.get("phone"), "户号": rows["hh_id"],
                "组": group if group is not None and group.notna().any() else None, "地址": rows.get("address")}
        return pd.DataFrame({k: v for k, v in cols.items() if v is not None})

    main = table(todo[(kind != "village").to_numpy()], distance=True)
    groups: list[tuple[str, str, pd.DataFrame]] = []
    by_village = todo[(kind == "village").to_numpy()]
    if len(by_village) and wb.villages is not None and len(wb.villages):
        code = village_of(by_village)
        for row in wb.villages.itertuples(index=False):
            rows = by_village[code.eq(row.village_code).fillna(False).to_numpy(dtype=bool)].sort_values(
                "hh_id", kind="stable")
            groups.append((str(row.name), row.label, table(rows, distance=False)))
    return main, groups


def cached_workbench(sw: ScopedWorkspace, *, target: str, rev: int, staff_id: str | None,
                     start: tuple[float, float] | None) -> Workbench:
    """:func:`workbench`, computed once per workspace revision, account, staff member, start point and day
    (a rerun that only moves a radio button or opens a row costs no recomputation)."""
    day = pd.Timestamp.now().strftime("%Y-%m-%d")
    return _cached_workbench(target, rev, sw.account.username, sw.account.role, staff_id, start, day, sw)


def workbench_map(wb: Workbench, *, basemap: str, admin_units: gpd.GeoDataFrame | None = None) -> Any:
    """A small map of the workbench: my grids by coverage, households left to visit, my branch, the start."""
    import folium

    opts = basemap_options()
    m = maps.overview_map(wb.grids[["grid_id", "code", "name", "staff_id", "coverage_rate", "households",
                                    "geometry"]].assign(name=wb.grids["name"].fillna(wb.grids["code"])),
                          branches=wb.branch,
                          uncovered=wb.todo[[c for c in (wb.todo.geometry.name, "placement") if c in wb.todo]],
                          unlocated=wb.villages, admin_units=admin_units,
                          basemap=basemap, tianditu_key=opts["tianditu_key"], tile_url=opts["tile_url"])
    if wb.start is not None and len(wb.grids):
        minx, miny, maxx, maxy = wb.grids.to_crs(4490).total_bounds
        pts = maps.display_frame(gpd.GeoDataFrame(geometry=gpd.points_from_xy(
            [wb.start[0], minx, maxx], [wb.start[1], miny, maxy]), crs=4490), basemap=basemap)
        start = pts.geometry.iloc[0]
        folium.CircleMarker([start.y, start.x], radius=9, color="#0b7a4b", weight=3, fill=True,
                            fill_color="#ffeb3b", fill_opacity=1.0, tooltip=maps.Tooltip("起点")).add_to(m)
        x, y = pts.geometry.x, pts.geometry.y
        m.fit_bounds([[float(y.min()), float(x.min())], [float(y.max()), float(x.max())]], padding=(16, 16))
    return m


# --------------------------------------------------------------------------------------------------------
# 集中授信
# --------------------------------------------------------------------------------------------------------

RATING_EDITABLE = ("grade", "granted_amount", "guarantee", "job_level")


def villages(households: pd.DataFrame, admin_units: pd.DataFrame) -> pd.DataFrame:
    """Villages of ``households`` with their names, household and archived (surveyed) counts."""
    code = households["village_code"].astype("string")
    archived = households["archived"].astype("boolean").fillna(False).astype(int)
    out = pd.DataFrame({"code": code, "archived": archived}).dropna(subset=["code"]).groupby("code").agg(
        households=("archived", "size"), archived=("archived", "sum")).reset_index()
    names = dict(zip(admin_units["code"], admin_units["name"], strict=True))
    out["name"] = out["code"].map(names).fillna(out["code"])
    return out.sort_values("code").reset_index(drop=True)


def changed_ratings(original: pd.DataFrame, edited: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``edited`` (a rating editor) whose grade, limit or guarantee differ from ``original``.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"hh_id": ["x", "y"], "grade": ["良好", None], "granted_amount": [50000.0, None],
    ...                   "guarantee": ["", None]})
    >>> b = a.assign(granted_amount=[50000.0, 40000.0], grade=["良好", "一般"])
    >>> changed_ratings(a, b)["hh_id"].tolist()
    ['y']
    """
    def norm(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=frame.index)
        out["grade"] = frame["grade"].astype(object).where(frame["grade"].notna(), "").astype(str).str.strip()
        out["guarantee"] = frame["guarantee"].astype(object).where(frame["guarantee"].notna(), "").astype(str)
        out["granted_amount"] = pd.to_numeric(frame["granted_amount"], errors="coerce").fillna(0.0)
        return out

    a, b = norm(original), norm(edited.reindex(original.index))
    diff = (a != b).any(axis=1).to_numpy()
    return edited.reindex(original.index)[diff]


def _same(a: Any, b: Any) -> bool:
    na = a is None or (not isinstance(a, str | list | tuple) and pd.isna(a))
    nb = b is None or (not isinstance(b, str | list | tuple) and pd.isna(b))
    if na or nb:
        return na and nb
    a = a.item() if hasattr(a, "item") else a
    b = b.item() if hasattr(b, "item") else b
    return bool(a == b)


def table_intents(shown: pd.DataFrame, edited: pd.DataFrame, *, id_column: str,
                  blank_equal: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """What a data editor asks to change, keyed by the ids of the rows the *server* showed.

    ``shown`` is the table as this session rendered it (kept server-side, default RangeIndex); ``edited`` is
    what the editor returned. A row is identified by its position label in ``shown`` — never by the id column
    the client sends back — so every changed cell, read-only or not, becomes ``{id: {column: value}}`` for
    the library to decide. Rows the client added or deleted, or an edited index, become intents the library
    refuses (an unknown id, a read-only field ``删除``). Columns in ``blank_equal`` treat None and ``""`` alike.

    Examples
    --------
    >>> shown = pd.DataFrame({"grid_id": ["G1", "G2"], "staff_id": ["S1", "S2"]})
    >>> table_intents(shown, shown.assign(staff_id=["S1", "S3"], grid_id=["G1", "G9"]), id_column="grid_id")
    {'G2': {'grid_id': 'G9', 'staff_id': 'S3'}}
    >>> table_intents(shown, shown.iloc[[1]], id_column="grid_id")
    {'G1': {'删除': True}}
    """
    ids = dict(zip(range(len(shown)), shown[id_column].astype(str), strict=True))
    out: dict[str, dict[str, Any]] = {}
    labels = list(edited.index)
    before = shown.to_dict("records")  # plain rows: one lookup per cell (``iloc`` per cell cost 0.1 s a run)
    after = dict(zip(labels, edited.to_dict("records"), strict=True))
    for pos, gid in ids.items():
        if pos not in after:
            out[gid] = {"删除": True}
            continue
        row = after[pos]
        diff = {}
        for col in edited.columns:
            old = before[pos].get(col)
            new = row[col]
            if col in blank_equal:
                old, new = (None if _same(old, "") else old), (None if _same(new, "") else new)
            if not _same(old, new):
                diff[col] = new.item() if hasattr(new, "item") else new
        if diff:
            out[gid] = diff
    for n, label in enumerate(lb for lb in labels if lb not in ids):
        out[f"（新增行 {n + 1}）"] = {c: (v.item() if hasattr(v, "item") else v) for c, v in after[label].items()}
    return out


def editor_table(name: str, key: tuple, build: Any, *, rev: int) -> tuple[pd.DataFrame, dict[str, int], str]:
    """The table a data editor shows, kept while the user has unsaved edits in it.

    ``build()`` returns the table with a ``version`` column (row versions). It is built again when ``key``
    changes (another plan, branch, village), after :func:`drop_editor_table`, or when the workspace moved on
    and the editor holds no edits. Edits in an editor are positions in *this* table, so a save elsewhere
    cannot reorder rows under them, and the versions shown are the versions sent with the intent.

    Returns ``(table without version, {id: version}, editor widget key)``.
    """
    store = st.session_state[EDITORS]
    held = store.get(name)
    pending = held is not None and _has_edits(st.session_state.get(held["widget"]))
    if held is None or held["key"] != key or held.get("dropped") or (held["rev"] != rev and not pending):
        serial = held["serial"] + 1 if held is not None else 0
        table = build().reset_index(drop=True)
        id_col = table.columns[0]
        versions = dict(zip(table[id_col].astype(str), pd.to_numeric(table["version"], errors="coerce").fillna(0)
                            .astype(int), strict=True))
        held = {"key": key, "rev": rev, "serial": serial, "table": table.drop(columns="version"),
                "versions": versions, "widget": f"{name}.editor.{serial}"}
        store[name] = held
    return held["table"], held["versions"], held["widget"]


def editor_rev(name: str) -> int | None:
    """The workspace revision an editor's table was read at (None before it is shown)."""
    held = st.session_state[EDITORS].get(name)
    return None if held is None else held["rev"]


def drop_editor_table(name: str) -> None:
    """Forget an editor's table (after a save, or 刷新): the next run shows the stored data, edits cleared."""
    held = st.session_state[EDITORS].get(name)
    if held is not None:
        held["dropped"] = True


def _has_edits(state: Any) -> bool:
    if not isinstance(state, dict):
        return False
    return bool(state.get("edited_rows") or state.get("added_rows") or state.get("deleted_rows"))


def rating_table(sw: ScopedWorkspace, households: pd.DataFrame, village: str, *, unmask: bool) -> pd.DataFrame:
    """The rating editor's table of one village (:func:`grids.credit.rating_list`) with each household's
    ``version`` (``hh_id`` first)."""
    from grids import credit

    table = credit.rating_list(households, village, unmask=unmask).reset_index(drop=True)
    table["granted_amount"] = pd.to_numeric(table["granted_amount"], errors="coerce").fillna(0.0)
    table["guarantee"] = table["guarantee"].astype(object).where(table["guarantee"].notna(), "")
    versions = sw.household_versions()
    table["version"] = [versions.get(str(h), 0) for h in table["hh_id"]]
    return table


def ratings_from_intents(intents: dict[str, dict[str, Any]], shown: pd.DataFrame) -> pd.DataFrame:
    """A rating batch (one row per household, ``hh_id`` + the changed columns, unchanged rating fields filled
    from ``shown``) from :func:`table_intents` of the rating editor; other columns stay in, to be refused."""
    from grids.credit import RATING_FIELDS

    base = shown.set_index(shown["hh_id"].astype(str))
    rows = []
    for hh_id, fields in intents.items():
        rec: dict[str, Any] = {"hh_id": hh_id}
        if hh_id in base.index:
            rec.update({c: base.at[hh_id, c] for c in RATING_FIELDS})
        # a changed id column is a change of a read-only field of *this* row, never another household
        rec.update({("hh_id（改）" if c == "hh_id" else c): v for c, v in fields.items()})
        rows.append(rec)
    out = pd.DataFrame(rows)
    return out.reindex(columns=list(dict.fromkeys(["hh_id", *RATING_FIELDS, *out.columns])))


def check_ratings(sw: ScopedWorkspace, ratings: pd.DataFrame) -> pd.DataFrame:
    """The problems of a rating batch (product bands, guarantees, households outside the scope)."""
    from grids import credit, credit_rules

    rules = credit_rules.effective_rules(sw.ws, sw.account.branch_id)  # the branch's, as the save applies them
    _, problems = credit.record_ratings(sw.households(), ratings, rules=rules)
    return problems


def save_ratings(sw: ScopedWorkspace, ratings: pd.DataFrame, *, seen: dict[str, int] | None = None,
                 expected_revision: int | None = None) -> int:
    """Send a rating batch to the library (:meth:`ScopedWorkspace.save_ratings`); returns the count saved.

    ``seen`` are the household versions the user saw (the page passes them); without it, the versions read now
    (``expected_revision`` is accepted for older callers and not used: staleness is judged per household).
    """
    del expected_revision
    return sw.save_ratings(ratings, seen=sw.household_versions() if seen is None else seen)


table_csv = export.frame_csv  # pages/overview.py and pages/admin.py download tables with it


def whitelist_file(sw: ScopedWorkspace, village: str, *, fmt: str) -> bytes:
    """The unmasked whitelist file, made now (after the user's click) and audited by the library first."""
    return sw.whitelist_file(village, fmt=fmt, unmask=True)
