"""A customer manager's workbench (走访工作台): their grids, the households left to visit (nearest first from
a start point), visit progress against their quota, and the workbench map.

Pure functions of a :class:`grids.scope.ScopedWorkspace` and frames; ``ui.data`` caches them per revision.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from grids import maps
from grids.placement import placement, village_counts, village_of
from grids.scope import ScopedWorkspace

if TYPE_CHECKING:
    import folium


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
        assert gk.crs is not None  # to_gk always returns a projected Gauss-Krüger frame
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
        start = (float(branch.geometry.x.iloc[0]), float(branch.geometry.y.iloc[0]))
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
            rows = by_village[code.eq(str(row.village_code)).fillna(False).to_numpy(dtype=bool)].sort_values(
                "hh_id", kind="stable")
            groups.append((str(row.name), str(row.label), table(rows, distance=False)))
    return main, groups



def workbench_map(wb: Workbench, *, basemap: str, admin_units: gpd.GeoDataFrame | None = None,
                  tianditu_key: str | None = None, tile_url: str | None = None) -> folium.Map:
    """A small map of the workbench: my grids by coverage, households left to visit, my branch, the start
    (``tianditu_key``/``tile_url``: the basemap settings, as :func:`grids.maps.overview_map` takes them)."""
    import folium

    m = maps.overview_map(wb.grids[["grid_id", "code", "name", "staff_id", "coverage_rate", "households",
                                    "geometry"]].assign(name=wb.grids["name"].fillna(wb.grids["code"])),
                          branches=wb.branch,
                          uncovered=wb.todo[[c for c in (wb.todo.geometry.name, "placement") if c in wb.todo]],
                          unlocated=wb.villages, admin_units=admin_units,
                          basemap=basemap, tianditu_key=tianditu_key, tile_url=tile_url)
    if wb.start is not None and len(wb.grids):
        minx, miny, maxx, maxy = wb.grids.to_crs(4490).total_bounds
        pts = maps.display_frame(gpd.GeoDataFrame(geometry=gpd.points_from_xy(
            [wb.start[0], minx, maxx], [wb.start[1], miny, maxy]), crs=4490), basemap=basemap)
        folium.CircleMarker([float(pts.geometry.y.iloc[0]), float(pts.geometry.x.iloc[0])], radius=9, color="#0b7a4b", weight=3, fill=True,
                            fill_color="#ffeb3b", fill_opacity=1.0, tooltip=maps.Tooltip("起点")).add_to(m)
        x, y = pts.geometry.x, pts.geometry.y
        m.fit_bounds([[float(y.min()), float(x.min())], [float(y.max()), float(x.max())]], padding=(16, 16))
    return m
