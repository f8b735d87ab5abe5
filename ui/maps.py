"""Map adapter: shows ``grids.maps`` maps with streamlit-folium and turns their output into domain values.

:func:`show_map` is plain ``st_folium`` (pass a freshly built map each run). :func:`show_cached_map` is for
big maps: it renders the map once per ``cache_key`` (for all sessions) and, on later runs (a new visitor, a
click in a fragment), hands the same component arguments to streamlit-folium's component without rebuilding
or re-rendering anything — ``st_folium`` renames the elements of a map it renders, so one map object cannot be
rendered twice, and rendering a county map costs ~0.6 s. Streamlit sends an unchanged large element to the
browser only once (its forward-message cache), so a rerun costs almost nothing on the wire either.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import branca
import folium
import folium.elements
import streamlit as st
import streamlit_folium as stf
from streamlit_folium import st_folium

from grids import maps

_DEFAULTS = {
    "last_clicked": None, "last_object_clicked": None, "last_object_clicked_count": None,
    "last_object_clicked_tooltip": None, "last_object_clicked_popup": None, "all_drawings": None,
    "last_active_drawing": None, "last_circle_radius": None, "last_circle_polygon": None,
    "selected_layers": None, "selected_tags": None, "last_geocoder_result": None,
}


def show_map(m: folium.Map, *, key: str, height: int = 620,
             returned: Sequence[str] = ("last_object_clicked",)) -> dict[str, Any]:
    """Render ``m`` (built this run); only the ``returned`` interactions rerun the app."""
    out = st_folium(m, key=key, height=height, use_container_width=True, returned_objects=list(returned))
    return out or {}


def _component_args(m: folium.Map, *, key: str, height: int, returned: Sequence[str]) -> dict[str, Any]:
    """What ``st_folium`` would pass to its component for ``m`` (streamlit-folium 0.2x)."""
    m.render()  # fills the figure's header (links, styles); st_folium also renders the whole figure first
    html = stf._get_html(m)
    header = stf._get_header(m)
    script = stf._get_map_string(m)
    defaults = {**_DEFAULTS, "zoom": m.options.get("zoom")}
    if "bounds" in returned:  # folium walks every coordinate of the map for these (0.05 s on a branch map)
        (s, w), (n, e) = m.get_bounds()
        defaults["bounds"] = {"_southWest": {"lat": s, "lng": w}, "_northEast": {"lat": n, "lng": e}}
    css: list[str] = []
    js: list[str] = []

    def walk(el: Any):
        yield el
        for child in getattr(el, "_children", {}).values():
            yield from walk(child)

    for el in walk(m):
        if isinstance(el, branca.colormap.ColorMap):
            raise ValueError("branca colormaps load d3 from the internet; use grids.maps.Legend")
        if isinstance(el, folium.elements.JSCSSMixin):
            css.extend(href for _, href in el.default_css)
            js.extend(src for _, src in el.default_js)
    return {
        "script": script, "header": header, "html": html, "id": stf.get_full_id(m),
        "key": stf.generate_js_hash(script, key, False), "height": height, "width": None,
        "returned_objects": list(returned), "default": {k: v for k, v in defaults.items() if k in returned},
        "zoom": None, "center": None, "feature_group": None, "return_on_hover": False, "layer_control": None,
        "pixelated": False, "css_links": list(dict.fromkeys(css)), "js_links": list(dict.fromkeys(js)),
        "wrap_longitude": False,
    }


@st.cache_resource(max_entries=96, show_spinner="正在绘制地图…")  # one per branch/manager view
def _cached_args(cache_key: Hashable, key: str, height: int, returned: tuple[str, ...],
                 _build: Callable[[], folium.Map]) -> dict[str, Any]:
    return _component_args(_build(), key=key, height=height, returned=returned)


def show_cached_map(build: Callable[[], folium.Map], *, cache_key: Hashable, key: str, height: int = 620,
                    returned: Sequence[str] = ("last_object_clicked",)) -> dict[str, Any]:
    """Show the map ``build()`` makes, building and rendering it only once per ``cache_key``.

    The rendered component arguments (plain strings and dicts, no folium objects) are shared by all
    sessions, so a new visitor and every rerun (a click) cost no map work at all.

    Parameters
    ----------
    build : callable
        Returns a fresh ``folium.Map`` (e.g. ``lambda: data.overview_map(target, rev, basemap)``).
    cache_key : hashable
        Everything the map depends on (workspace, revision, basemap…).
    key : str
        Widget key.
    """
    try:
        args = _cached_args(cache_key, key, height, tuple(returned), build)
    except AttributeError:  # streamlit-folium internals changed: fall back to the public call
        return show_map(build(), key=key, height=height, returned=returned)

    def on_change() -> None:
        st.session_state[key] = st.session_state.get(args["key"], {})

    out = stf._component_func(**args, on_change=on_change)
    return out or {}


def clicked_area(out: dict[str, Any], areas: Any, *, basemap: str, id_column: str) -> str | None:
    """The id of the area under the last click (``last_object_clicked``), or None."""
    click = out.get("last_object_clicked")
    if not click or click.get("lat") is None:
        return None
    return maps.pick_feature(areas, lon=click["lng"], lat=click["lat"], basemap=basemap, id_column=id_column)
