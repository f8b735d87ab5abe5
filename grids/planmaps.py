"""The planning and staffing maps: the edit map, the staff map and the what-if map (folium), built from their
inputs (grids, admin units, branches, staff, check results) — no page state.

The pages show them with ``ui.maps.show_cached_map``; every data string passes :mod:`grids.text` through the
tooltip/legend helpers of :mod:`grids.maps`.
"""

from __future__ import annotations

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd

from grids import maps
from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS
from grids.check import ERROR, PROBLEM_KINDS, SEVERITY_NAMES, severity_of
from grids.crs import wgs84_to_gcj02

__all__ = ["HH_CLASSES", "SEVERITY_STYLE", "STAFF_PALETTE", "compare_map", "fit", "plan_map", "staff_colors",
           "staff_map", "whatif_map"]

SEVERITY_STYLE = {ERROR: ("#b71c1c", "#ef5350", ":material/error:"), "warning": ("#e65100", "#ffb74d",
                                                                                  ":material/warning:")}
"""Severity → (marker outline, marker fill, list icon)."""

HH_CLASSES = (("#c6dbef", "少于下限"), ("#74c476", "下限–上限"), ("#fd8d3c", "超过上限"))
"""Colour and label of a grid's household class: below, within, above the bounds."""
STAFF_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
"""Distinct colours of customer managers (and of branches on the what-if map)."""


def _grid_layer(m: folium.Map, disp: gpd.GeoDataFrame, colors: list[str], *, name: str,
                tooltip: list[tuple[str, str]]) -> None:
    props = pd.DataFrame({c: disp[c].astype(str).to_numpy() for c, _ in tooltip})
    props["c"] = colors
    folium.GeoJson(
        maps._feature_collection(disp, props, disp["grid_id"]), name=name,
        style_function=lambda f: {"fillColor": f["properties"]["c"], "color": "#37474f", "weight": 0.8,
                                  "fillOpacity": 0.55},
        highlight_function=lambda _f: {"weight": 2.5, "color": "#1f4e79"},
        tooltip=maps.GeoJsonTooltip([c for c, _ in tooltip], aliases=[a for _, a in tooltip]),
        zoom_on_click=False, smooth_factor=1.0,
    ).add_to(m)


def fit(m: folium.Map, bounds: maps.Bounds | None, basemap: str) -> None:
    """Zoom ``m`` to lon/lat ``bounds`` (storage coordinates; shifted for the GCJ-02 basemap); None: no change."""
    if bounds is None:
        return
    minx, miny, maxx, maxy = bounds
    if basemap == "amap":
        minx, miny = wgs84_to_gcj02(minx, miny)
        maxx, maxy = wgs84_to_gcj02(maxx, maxy)
    m.fit_bounds([[miny, minx], [maxy, maxx]])


def plan_map(grids: gpd.GeoDataFrame, *, admin: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, basemap: str,
             found: gpd.GeoDataFrame | None, focus: maps.Bounds | None, min_households: int, max_households: int,
             highlight: gpd.GeoDataFrame | None = None, draw: bool = True, tianditu_key: str | None = None,
             tile_url: str | None = None) -> folium.Map:
    """The edit map: grids by household class (:data:`HH_CLASSES`), problem spots of
    :func:`grids.check.check_plan` (``found``), branches, ``highlight`` outlined, the Draw toolbar (line,
    polygon, rectangle) when ``draw``; zoomed to ``focus`` (lon/lat bounds) when given."""
    m = maps.base_map(bounds=maps.frame_bounds(grids) if len(grids) else None, basemap=basemap,
                      admin_units=admin, admin_levels=("county", "town"), simplify_m=30.0,
                      tianditu_key=tianditu_key, tile_url=tile_url)
    disp = maps.display_frame(grids[["grid_id", "name", "households", "staff_id", grids.geometry.name]],
                              basemap=basemap, simplify_m=3.0)
    hh = pd.to_numeric(disp["households"], errors="coerce").fillna(0).to_numpy()
    colors = np.where(hh < min_households, HH_CLASSES[0][0],
                      np.where(hh > max_households, HH_CLASSES[2][0], HH_CLASSES[1][0])).tolist()
    disp = disp.assign(name=disp["name"].fillna(disp["grid_id"]), staff_id=disp["staff_id"].fillna("—"))
    _grid_layer(m, disp, colors, name="网格",
                tooltip=[("name", "网格"), ("grid_id", "编码"), ("households", "户数"), ("staff_id", "客户经理")])
    if highlight is not None and len(highlight):
        hd = maps.display_frame(highlight[[highlight.geometry.name]], basemap=basemap)
        folium.GeoJson(maps._feature_collection(hd, pd.DataFrame(index=range(len(hd))), None), name="变化的网格",
                       style_function=lambda _f: {"color": "#d81b60", "weight": 3, "fill": False},
                       interactive=False).add_to(m)
    if found is not None and len(found):
        spots = found.assign(severity=severity_of(found).to_numpy())
        spots = spots[spots.geometry.notna() & ~spots.geometry.is_empty]
        if len(spots):
            pts = maps.display_frame(spots.set_geometry(spots.geometry.representative_point())[
                ["kind", "severity", "geometry"]], basemap=basemap)
            group = folium.FeatureGroup(name="检查问题")
            for geom, kind, sev in zip(pts.geometry, pts["kind"], pts["severity"], strict=True):
                line, fill, _ = SEVERITY_STYLE.get(sev, SEVERITY_STYLE[ERROR])
                folium.CircleMarker(maps.marker_location(geom), radius=7 if sev == ERROR else 5, color=line, weight=2,
                                    fill=True, fill_color=fill, fill_opacity=0.9,
                                    tooltip=maps.Tooltip(f"{SEVERITY_NAMES.get(sev, '错误')}：{PROBLEM_KINDS.get(kind, kind)}"),
                                    ).add_to(group)
            group.add_to(m)
    if len(branches):
        group = folium.FeatureGroup(name="营业网点")
        bd = maps.display_frame(branches, basemap=basemap)
        for geom, name in zip(bd.geometry, bd["name"], strict=True):
            folium.CircleMarker(maps.marker_location(geom), radius=5, color="#0d47a1", weight=2, fill=True,
                                fill_color="#ffffff", fill_opacity=1.0, tooltip=maps.Tooltip(name)).add_to(group)
        group.add_to(m)
    if draw:
        folium.plugins.Draw(  # type: ignore[no-untyped-call]  # untyped in folium
            export=False, position="topleft",
            draw_options={"polyline": {"shapeOptions": {"color": "#d81b60"}}, "polygon": True, "rectangle": True,
                          "circle": False, "marker": False, "circlemarker": False},
            edit_options={"edit": False, "remove": False},
        ).add_to(m)
    items = [(c, f"{label}（{min_households}–{max_households} 户）" if i == 1 else label)
             for i, (c, label) in enumerate(HH_CLASSES)]
    if found is not None and len(found):
        sev = severity_of(found)
        for key, (_, fill, _) in SEVERITY_STYLE.items():
            if (sev == key).any():
                items.append((fill, f"检查{SEVERITY_NAMES[key]}（{int((sev == key).sum())} 个）"))
    maps.Legend("网格户数", items).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    fit(m, focus, basemap)
    return m


def staff_colors(staff_ids: list[str]) -> dict[str, str]:
    """A distinct colour per staff member (in the given order)."""
    return {s: STAFF_PALETTE[i % len(STAFF_PALETTE)] for i, s in enumerate(staff_ids)}


def staff_map(grids: gpd.GeoDataFrame, *, staff: pd.DataFrame, branches: gpd.GeoDataFrame, basemap: str,
              admin: gpd.GeoDataFrame | None = None, changed: list[str] | None = None,
              tianditu_key: str | None = None, tile_url: str | None = None) -> folium.Map:
    """A branch's territory coloured by customer manager, with a legend; ``changed`` grids outlined."""
    names = dict(zip(staff["staff_id"].astype(str), staff["name"].astype(str), strict=True))
    colors = staff_colors(list(names))
    m = maps.base_map(bounds=maps.frame_bounds(grids) if len(grids) else None, basemap=basemap,
                      admin_units=admin, admin_levels=("town", "village"), simplify_m=10.0, tianditu_key=tianditu_key,
                      tile_url=tile_url)
    disp = maps.display_frame(grids[["grid_id", "name", "households", "staff_id", grids.geometry.name]],
                              basemap=basemap, simplify_m=2.0)
    sid = disp["staff_id"].astype(object).where(disp["staff_id"].notna(), None)
    disp = disp.assign(name=disp["name"].fillna(disp["grid_id"]),
                       staff_name=[names.get(str(s), "无人负责") if s is not None else "无人负责" for s in sid])
    _grid_layer(m, disp, [colors.get(str(s), maps.UNSTAFFED_COLOR) for s in sid], name="网格",
                tooltip=[("name", "网格"), ("grid_id", "编码"), ("households", "户数"), ("staff_name", "客户经理")])
    if changed:
        hd = maps.display_frame(grids[grids["grid_id"].isin(changed)][[grids.geometry.name]], basemap=basemap)
        folium.GeoJson(maps._feature_collection(hd, pd.DataFrame(index=range(len(hd))), None), name="将改派的网格",
                       style_function=lambda _f: {"color": "#000000", "weight": 3, "dashArray": "5 3",
                                                  "fill": False}, interactive=False).add_to(m)
    bd = maps.display_frame(branches, basemap=basemap)
    for geom, name in zip(bd.geometry, bd["name"], strict=True):
        folium.CircleMarker(maps.marker_location(geom), radius=6, color="#0d47a1", weight=2, fill=True, fill_color="#ffffff",
                            fill_opacity=1.0, tooltip=maps.Tooltip(name)).add_to(m)
    loads = grids.groupby(grids["staff_id"].astype(object))["households"].sum()
    items = [(colors[s], f"{n}（{int(loads.get(s, 0)):,} 户）") for s, n in names.items()]
    if sid.isna().any():
        items.append((maps.UNSTAFFED_COLOR, "无人负责"))
    maps.Legend("客户经理", items).add_to(m)
    return m


def whatif_map(grids: gpd.GeoDataFrame, *, admin: gpd.GeoDataFrame, branches: gpd.GeoDataFrame, basemap: str,
               point: tuple[float, float] | None, moves: list[str] | None = None, tianditu_key: str | None = None,
               tile_url: str | None = None) -> folium.Map:
    """Branches and grids (moving grids outlined) for the what-if: a click places the new branch."""
    m = maps.base_map(bounds=maps.frame_bounds(grids) if len(grids) else None, basemap=basemap,
                      admin_units=admin, admin_levels=("county", "town"), simplify_m=30.0, tianditu_key=tianditu_key,
                      tile_url=tile_url)
    disp = maps.display_frame(grids[["grid_id", "branch_id", grids.geometry.name]], basemap=basemap, simplify_m=20.0)
    ids = sorted(branches["branch_id"].astype(str))
    col = {b: STAFF_PALETTE[i % len(STAFF_PALETTE)] for i, b in enumerate(ids)}
    _grid_layer(m, disp.assign(branch_id=disp["branch_id"].fillna("—")),
                [col.get(str(b), maps.NO_DATA_COLOR) for b in disp["branch_id"]], name="网格（按网点着色）",
                tooltip=[("grid_id", "网格"), ("branch_id", "网点")])
    if moves:
        hd = maps.display_frame(grids[grids["grid_id"].isin(moves)][[grids.geometry.name]], basemap=basemap,
                                simplify_m=20.0)
        folium.GeoJson(maps._feature_collection(hd, pd.DataFrame(index=range(len(hd))), None), name="改变网点的网格",
                       style_function=lambda _f: {"color": "#000000", "weight": 2.5, "fill": False},
                       interactive=False).add_to(m)
    bd = maps.display_frame(branches, basemap=basemap)
    for geom, name, bid in zip(bd.geometry, bd["name"], bd["branch_id"], strict=True):
        folium.CircleMarker(maps.marker_location(geom), radius=6, color="#0d47a1", weight=2, fill=True, fill_color="#ffffff",
                            fill_opacity=1.0, tooltip=maps.Tooltip(f"{bid} {name}")).add_to(m)
    if point is not None:
        lon, lat = wgs84_to_gcj02(*point) if basemap == "amap" else point
        folium.CircleMarker([lat, lon], radius=9, color="#d81b60", weight=3, fill=True, fill_color="#f8bbd0",
                            fill_opacity=1.0, tooltip=maps.Tooltip("新网点")).add_to(m)
    return m


def compare_map(grids: gpd.GeoDataFrame, changed: gpd.GeoDataFrame, *, admin: gpd.GeoDataFrame,
                branches: gpd.GeoDataFrame, basemap: str, tianditu_key: str | None = None,
                tile_url: str | None = None) -> folium.Map:
    """The comparison map: plan B's ``grids`` (classed by the default household bounds) with the grids that
    change (``changed``, :attr:`grids.edit.PlanComparison.grids`) outlined; nothing to draw on."""
    return plan_map(grids, admin=admin, branches=branches, basemap=basemap, found=None, focus=None,
                    min_households=DEFAULT_MIN_HOUSEHOLDS, max_households=DEFAULT_MAX_HOUSEHOLDS, highlight=changed,
                    draw=False, tianditu_key=tianditu_key, tile_url=tile_url)
