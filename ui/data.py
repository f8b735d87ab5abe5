"""Cached loaders: workspace layers and page bundles, keyed on the workspace target and its revision.

``st.cache_data`` cannot hash a GeoDataFrame (and samples big frames when it tries), so every cache here is
keyed on ``(target, revision)``: a committed change bumps the revision and the next run reloads. Cached
objects are shared by all sessions (``st.cache_resource``): treat them as read-only — the library never
mutates its inputs.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, cast

import folium
import geopandas as gpd
import pandas as pd
import streamlit as st

from grids import coverage, export, maps, plans
from grids import overview as ovw
from grids.auth import Account
from grids.errors import ValidationError
from grids.overview import HOUSEHOLD_MAP_COLUMNS, Overview
from grids.scope import ScopedWorkspace
from grids.text import markdown
from grids.workbench import Workbench, with_distances, workbench
from grids.workbench import workbench_map as build_workbench_map
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


@st.cache_resource(max_entries=16, show_spinner=False)
def layer(target: str, rev: int, name: str, columns: tuple[str, ...] | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
    """One workspace layer at revision ``rev`` (read-only, shared); only ``columns`` when given."""
    ws = open_workspace(target)
    if columns is not None:
        present = ws.columns(name)
        columns = tuple(c for c in columns if c in present)
    return ws.read(name, columns=columns)


def geo_layer(target: str, rev: int, name: str, columns: tuple[str, ...] | None = None) -> gpd.GeoDataFrame:
    """:func:`layer` of a layer with geometry (admin units, branches, streets, seats…), typed as such."""
    return cast(gpd.GeoDataFrame, layer(target, rev, name, columns))


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
    admin, staff, visits = geo_layer(target, rev, "admin_units"), layer(target, rev, "staff"), layer(target, rev, "visits")
    branches, streets = geo_layer(target, rev, "branches"), geo_layer(target, rev, "streets")
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
        plan_name=ovw.plan_label(plans.plan_info(ws, sw.plan_id), sw.plan_id), admin=geo_layer(target, rev, "admin_units"),
        staff=sw.staff(), visits=sw.visits(), branches=sw.branches(), streets=geo_layer(target, rev, "streets"),
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


@st.cache_data(max_entries=128, show_spinner=False)
def _cached_workbench_base(target: str, rev: int, username: str, role: str, staff_id: str | None, day: str,
                           _sw: ScopedWorkspace) -> Workbench:
    return workbench(_sw, staff_id=staff_id, start=None, admin_units=geo_layer(target, rev, "admin_units"),
                     seats=geo_layer(target, rev, "seats"))


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


def cached_workbench(sw: ScopedWorkspace, *, target: str, rev: int, staff_id: str | None,
                     start: tuple[float, float] | None) -> Workbench:
    """:func:`grids.workbench.workbench`, computed once per workspace revision, account, staff member, start point and day
    (a rerun that only moves a radio button or opens a row costs no recomputation)."""
    day = pd.Timestamp.now().strftime("%Y-%m-%d")
    return _cached_workbench(target, rev, sw.account.username, sw.account.role, staff_id, start, day, sw)


def workbench_map(wb: Workbench, *, basemap: str, admin_units: gpd.GeoDataFrame | None = None) -> folium.Map:
    """:func:`grids.workbench.workbench_map` with this installation's basemap settings (:func:`tiles`)."""
    return build_workbench_map(wb, basemap=basemap, admin_units=admin_units, **tiles())


# --------------------------------------------------------------------------------------------------------
# data editors (集中授信, 人员分配, …): the table each shows, kept in session state
# --------------------------------------------------------------------------------------------------------

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


table_csv = export.frame_csv  # pages/overview.py and pages/admin.py download tables with it


def whitelist_file(sw: ScopedWorkspace, village: str, *, fmt: str) -> bytes:
    """The unmasked whitelist file, made now (after the user's click) and audited by the library first."""
    return sw.whitelist_file(village, fmt=fmt, unmask=True)
