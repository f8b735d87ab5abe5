"""Folium map builders that work on a bank intranet: every asset local, basemaps optional, sizes bounded.

Builders return a :class:`folium.Map` (an :class:`OfflineMap`) and never render it; pages hand it to
``st_folium`` and exports to :func:`standalone_html`.

Offline by construction
    :class:`OfflineMap` rewrites, when it renders, the script and style links of itself and of every plugin
    in its tree (``default_js``/``default_css``) to the copies that ``scripts/fetch_assets.sh`` put under
    ``static/vendor/`` and Streamlit serves at :data:`ASSET_BASE` (``/app/static/vendor``). An element whose
    assets we do not ship raises :class:`~grids.errors.ValidationError` instead of silently loading them from
    a CDN. Folium's bootstrap, awesome-markers and font-awesome are dropped (we draw circle markers and
    HTML legends); jQuery is kept only when a ``folium.Popup`` needs it.

Basemaps (:data:`BASEMAPS`)
    ``offline`` (default) draws no tiles at all, only our own county/town/village outlines and streets;
    ``tianditu`` (key from config; CGCS2000, no shift), ``osm``, ``amap`` (GCJ-02: data shifted for display
    with :func:`to_display`, drawn shapes and clicks shifted back with :func:`from_display`) and ``custom``
    (the bank's own tile server). A tile server that cannot be reached leaves the tiles blank and shows a
    notice; our layers still draw.

Text from data
    Names reach the browser as HTML: Leaflet puts tooltips, legend rows and layer-control names in
    ``innerHTML``, and folium writes a :class:`folium.Tooltip` into a JavaScript template string. So every
    string from data is escaped once, here, with :func:`grids.text.html`: GeoJSON properties in
    :func:`_feature_collection` (what :class:`GeoJsonTooltip` shows), the text of :class:`Tooltip`, the title
    and rows of :class:`Legend`. :func:`localize` refuses folium's own ``Tooltip``/``Popup``/``GeoJsonTooltip``/
    ``GeoJsonPopup``/``DivIcon`` (which take HTML as is) and a layer name with markup, so a new layer cannot
    bypass the escaping.

Size
    Polygons are simplified in the Gauss-Krüger zone (shared edges kept with ``shapely.coverage_simplify``)
    and coordinates rounded (5 decimals ≈ 1 m); households are sent as one flat coordinate array, counted
    per screen cell in the browser at county zoom and drawn one by one (canvas, in view only) when zoomed
    in (:class:`PointAggregate`), so a county overview stays within a few MB and paints in about a second.

Examples
--------
>>> import geopandas as gpd, shapely
>>> areas = gpd.GeoDataFrame({"grid_id": ["G1", "G2"], "name": ["一网格", "二网格"],
...                           "coverage_rate": [0.9, 0.1], "staff_id": ["S1", None]},
...                          geometry=[shapely.box(119.0, 43.0, 119.1, 43.1), shapely.box(119.1, 43.0, 119.2, 43.1)],
...                          crs=4490)
>>> m = overview_map(areas)
>>> html = m.get_root().render()
>>> "/app/static/vendor/leaflet/leaflet.js" in html and "cdn.jsdelivr" not in html
True
>>> pick_feature(areas, lon=119.15, lat=43.05)
'G2'
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import branca
import folium
import folium.elements
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.template import Template

from grids.crs import gcj02_to_wgs84, gdf_gcj02_to_wgs84, gdf_wgs84_to_gcj02, to_gk, wgs84_to_gcj02
from grids.errors import ValidationError
from grids.model import STORAGE_CRS
from grids.text import html as html_text

if TYPE_CHECKING:
    from shapely.geometry import Point
    from shapely.geometry.base import BaseGeometry

ASSET_BASE = "/app/static/vendor"
"""URL prefix under which Streamlit serves ``static/vendor`` (``[server] enableStaticServing = true``)."""


class _Rendered(branca.element.Element):
    """HTML or JavaScript that a folium element has already rendered: kept as text.

    branca wraps every rendered ``header``/``html``/``script`` part of an element in a new ``Element`` whose
    *template* is that output, so the county's GeoJSON was lexed and compiled by Jinja a second time (12 % of
    a branch manager's first page under load, ``benchmarks/bench_load.py``) and any ``{{…}}`` that reached
    the output was evaluated on the server. This element returns its text as is.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = str(text)

    def render(self, **kwargs: Any) -> str:
        return self._text


def _render_macro(self: branca.element.MacroElement, **kwargs: Any) -> None:
    """``branca.element.MacroElement.render`` with the rendered parts kept as text (:class:`_Rendered`)."""
    figure = self.get_root()
    if not isinstance(figure, branca.element.Figure):
        raise ValueError("只能在 Figure 中渲染地图元素")
    module = self._template.module.__dict__
    for part in ("header", "html", "script"):
        macro = module.get(part)
        if macro is not None:
            getattr(figure, part).add_child(_Rendered(macro(self, kwargs)), name=self.get_name())
    for element in self._children.values():
        element.render(**kwargs)


# folium's classes call it through super().render()
branca.element.MacroElement.render = _render_macro  # type: ignore[method-assign]  # a patch on purpose

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
"""The app's ``static`` folder; ``static/vendor`` is filled by ``scripts/fetch_assets.sh``."""

BASEMAPS: dict[str, str] = {
    "offline": "离线底图（本地图层）",
    "tianditu": "天地图",
    "osm": "OpenStreetMap",
    "amap": "高德地图",
    "custom": "自建瓦片服务",
}
"""Basemap key → Chinese label, in menu order."""

RATE_BINS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
RATE_COLORS: tuple[str, ...] = ("#d7191c", "#fdae61", "#fee08b", "#a6d96a", "#1a9641")
NO_DATA_COLOR = "#bdbdbd"
UNSTAFFED_COLOR = "#7b2cbf"
UNCOVERED_COLOR = "#c0392b"
VILLAGE_COUNT_COLOR = "#6a1b9a"

# Known CDN assets (matched on the end of the URL) → file under static/vendor, or None to drop it.
_VENDOR: tuple[tuple[str, str | None], ...] = (
    (r"/leaflet(@[\d.]+)?/dist/leaflet\.js$", "leaflet/leaflet.js"),
    (r"/leaflet(@[\d.]+)?/dist/leaflet\.css$", "leaflet/leaflet.css"),
    (r"leaflet\.markercluster(-src)?\.js$", "leaflet.markercluster/leaflet.markercluster.js"),
    (r"/MarkerCluster\.css$", "leaflet.markercluster/MarkerCluster.css"),
    (r"/MarkerCluster\.Default\.css$", "leaflet.markercluster/MarkerCluster.Default.css"),
    (r"leaflet\.draw(-src)?\.js$", "leaflet-draw/leaflet.draw.js"),
    (r"leaflet\.draw(-src)?\.css$", "leaflet-draw/leaflet.draw.css"),
    (r"Control\.FullScreen(\.min)?\.js$", "leaflet.fullscreen/Control.FullScreen.js"),
    (r"Control\.FullScreen(\.min)?\.css$", "leaflet.fullscreen/Control.FullScreen.css"),
    (r"jquery[-\d.]*(\.min)?\.js$", "jquery/jquery.min.js"),
    (r"bootstrap[^/]*\.js$|bootstrap[^/]*\.css$|glyphicons", None),
    (r"awesome-markers|fontawesome|awesome\.rotate", None),
)

_URL = re.compile(r"^(https?:)?//", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------------
# offline assets
# --------------------------------------------------------------------------------------------------------


def _local_asset(url: str, *, asset_base: str, element: Any) -> str | None:
    if not _URL.match(url):
        return url  # already local
    for pattern, local in _VENDOR:
        if re.search(pattern, url):
            return None if local is None else f"{asset_base.rstrip('/')}/{local}"
    raise ValidationError(
        f"地图元素 {type(element).__name__} 需要从互联网加载 {url}，内网无法访问",
        fix="把该库加入 scripts/fetch_assets.sh 和 grids/maps.py 的 _VENDOR 表，或改用不需要它的图层",
    )


def _walk(element: Any) -> Iterator[Any]:
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def localize(m: folium.Map, *, asset_base: str = ASSET_BASE) -> folium.Map:
    """Point every script and style of ``m`` and its plugins at the app's own copies.

    Rewrites ``default_js``/``default_css`` on the elements of the map (per instance, never the folium
    classes) and returns ``m``. :class:`OfflineMap` calls this itself when it renders; call it directly only
    for a plain ``folium.Map``.

    Raises
    ------
    ValidationError
        An element needs an asset we do not ship (the message names it and says how to add it), uses
        something that only works online (awesome-marker icons, branca colormaps), or would put text in the
        page unescaped (folium's own tooltips and popups, a layer name with markup: see :func:`_check_text`).
    """
    elements = list(_walk(m))
    needs_jquery = any(isinstance(e, folium.Popup) for e in elements) or bool(
        getattr(m, "objects_to_stay_in_front", None)
    )
    for e in elements:
        _check_text(e)
        if isinstance(e, folium.Icon):
            raise ValidationError(
                "地图使用了 folium.Icon（awesome-markers 图标，需要联网加载图标字体）",
                fix="改用 folium.CircleMarker 或 folium.DivIcon",
            )
        if isinstance(e, branca.colormap.ColorMap):
            raise ValidationError(
                "地图使用了 branca 颜色条（streamlit-folium 会从互联网加载 d3.js）",
                fix="用 grids.maps.Legend 画图例",
            )
        for attr in ("default_js", "default_css"):
            # from the class: an instance list may already be localized for another asset base or without
            # jQuery (before a Popup was added)
            links = getattr(type(e), attr, None)
            if not links:
                continue
            out = []
            for name, url in links:
                local = _local_asset(url, asset_base=asset_base, element=e)
                if local is None or (not needs_jquery and local.endswith("jquery/jquery.min.js")):
                    continue
                out.append((name, local))
            setattr(e, attr, out)
    return m


# folium elements that put their text into the page as HTML (or into a JavaScript template string) as given
_RAW_TEXT = (folium.Tooltip, folium.Popup, folium.GeoJsonTooltip, folium.GeoJsonPopup, folium.DivIcon)


def _check_text(element: Any) -> None:
    """Refuse an element that would show text from data as HTML: only this module's escaping classes pass."""
    if isinstance(element, _RAW_TEXT) and not isinstance(element, (Tooltip, Popup, GeoJsonTooltip)):
        raise ValidationError(
            f"地图元素 {type(element).__name__} 会把文字当作 HTML 放进网页（名称里的 <img onerror=…> 会执行）",
            fix="改用 grids.maps.Tooltip、grids.maps.Popup 或 grids.maps.GeoJsonTooltip（它们转义文字）",
        )
    name = getattr(element, "layer_name", None) if isinstance(element, folium.map.Layer) else None
    if isinstance(name, str) and "<" in name:
        raise ValidationError(
            f"图层名 “{name}” 含有 HTML 标记（图层控件把名称当作 HTML 显示）",
            fix="图层名用 grids.text.html() 转义后再传入",
        )


# folium embeds data (GeoJSON above all) with json.dumps' default ", " and ": " separators; compact ones send
# about 9% less to the browser, the same JSON. Set once on the template environment all folium elements (and
# ours) share.
_FOLIUM_ENV = folium.GeoJson._template.environment
_FOLIUM_ENV.policies["json.dumps_kwargs"] = {**_FOLIUM_ENV.policies["json.dumps_kwargs"], "separators": (",", ":")}


class OfflineMap(folium.Map):
    """A ``folium.Map`` that loads Leaflet and every plugin from the app (:func:`localize`) when rendered.

    Parameters
    ----------
    asset_base : str
        URL prefix of the vendored assets, default :data:`ASSET_BASE`.
    **kwargs
        Passed to ``folium.Map``; ``tiles`` defaults to ``None`` (no basemap).
    """

    def __init__(self, *args: Any, asset_base: str = ASSET_BASE, **kwargs: Any) -> None:
        kwargs.setdefault("tiles", None)
        kwargs.setdefault("max_zoom", 18)
        kwargs.setdefault("min_zoom", 4)
        super().__init__(*args, **kwargs)
        # folium passes these to its default tile layer only; the map needs them too (marker clusters)
        self.options["max_zoom"] = kwargs["max_zoom"]
        self.options["min_zoom"] = kwargs["min_zoom"]
        self.asset_base = asset_base
        localize(self, asset_base=asset_base)

    # branca types Element.render as returning the HTML, yet its MacroElement.render (and folium's) returns None
    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        localize(self, asset_base=self.asset_base)
        super().render(**kwargs)  # type: ignore[no-untyped-call]  # untyped in folium


def standalone_html(m: folium.Map, *, static_dir: str | Path | None = None,
                    asset_base: str | None = None) -> str:
    """Render ``m`` to one self-contained HTML page that works offline (scripts, styles, images inlined).

    Parameters
    ----------
    m : folium.Map
        Usually built by this module; a plain ``folium.Map`` is localized first.
    static_dir : path, optional
        The folder served as ``/app/static`` (default: this repository's ``static``).
    asset_base : str, optional
        URL prefix of the vendored assets in ``m`` (default: the map's own, else :data:`ASSET_BASE`).

    Raises
    ------
    ValidationError
        A vendored file is missing (run ``scripts/fetch_assets.sh``).
    """
    base = cast(str, asset_base or getattr(m, "asset_base", ASSET_BASE)).rstrip("/")
    vendor = Path(static_dir) / "vendor" if static_dir else STATIC_DIR / "vendor"
    if not isinstance(m, OfflineMap):
        localize(m, asset_base=base)
    html = m.get_root().render()

    def read(url: str) -> Path:
        path = vendor / url[len(base) + 1:]
        if not path.is_file():
            raise ValidationError(
                f"离线地图资源缺失：{path}", fix="运行 scripts/fetch_assets.sh 下载 Leaflet 等资源后重试"
            )
        return path

    def inline_js(match: re.Match[str]) -> str:
        code = read(match.group(1)).read_text(encoding="utf-8")
        return "<script>" + code.replace("</script", "<\\/script") + "</script>"

    def inline_css(match: re.Match[str]) -> str:
        path = read(match.group(1))
        css = path.read_text(encoding="utf-8")

        def data_uri(u: re.Match[str]) -> str:
            ref = u.group(2)
            if ref.startswith(("data:", "#", "http:", "https:", "//")):
                return u.group(0)
            target = (path.parent / ref).resolve()
            if not target.is_file():
                return u.group(0)
            mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            return f'url("data:{mime};base64,{base64.b64encode(target.read_bytes()).decode()}")'

        css = re.sub(r"url\((['\"]?)([^'\")]+)\1\)", data_uri, css)
        return "<style>" + css.replace("</style", "<\\/style") + "</style>"

    esc = re.escape(base)
    html = re.sub(rf'<script src="({esc}/[^"]+)"></script>', inline_js, html)
    html = re.sub(rf'<link rel="stylesheet" href="({esc}/[^"]+)"\s*/>', inline_css, html)
    return html


# --------------------------------------------------------------------------------------------------------
# display coordinates
# --------------------------------------------------------------------------------------------------------


def _check_basemap(basemap: str) -> None:
    if basemap not in BASEMAPS:
        raise ValidationError(f"未知的底图 “{basemap}”", fix=f"可选：{', '.join(BASEMAPS)}")


Bounds = tuple[float, float, float, float]
"""A lon/lat extent ``(minx, miny, maxx, maxy)``."""


def frame_bounds(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> Bounds:
    """``frame.total_bounds`` as a tuple of floats.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> frame_bounds(gpd.GeoSeries([shapely.box(119.0, 43.0, 119.5, 43.5)], crs=4490))
    (119.0, 43.0, 119.5, 43.5)
    """
    minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
    return minx, miny, maxx, maxy


def marker_location(geom: BaseGeometry) -> list[float]:
    """``[lat, lon]`` of a point geometry: the location of a folium marker.

    Examples
    --------
    >>> import shapely
    >>> marker_location(shapely.Point(119.5, 43.25))
    [43.25, 119.5]
    """
    point = cast("Point", geom)
    return [point.y, point.x]


def to_display(gdf: gpd.GeoDataFrame, *, basemap: str = "offline") -> gpd.GeoDataFrame:
    """Return ``gdf`` in the coordinates the basemap draws in: GCJ-02 for ``amap``, else CGCS2000/WGS84.

    The result is for display only (an Amap-shifted frame is labelled EPSG:4326 but is GCJ-02).
    """
    _check_basemap(basemap)
    if gdf.crs is None:
        raise ValidationError("图层没有坐标系", fix="先 set_crs(4490)")
    if basemap == "amap":
        return gdf_wgs84_to_gcj02(gdf)
    return gdf.to_crs(STORAGE_CRS) if not gdf.crs.equals(STORAGE_CRS) else gdf.copy()


def from_display(gdf: gpd.GeoDataFrame, *, basemap: str = "offline") -> gpd.GeoDataFrame:
    """Inverse of :func:`to_display`: shapes drawn on the map → storage CRS (EPSG:4490)."""
    _check_basemap(basemap)
    if basemap == "amap":
        return gdf_gcj02_to_wgs84(gdf.set_crs(4326, allow_override=True))
    return gdf.set_crs(STORAGE_CRS, allow_override=True) if gdf.crs is None else gdf.to_crs(STORAGE_CRS)


def point_from_display(lon: float, lat: float, *, basemap: str = "offline") -> tuple[float, float]:
    """A clicked map position → storage lon/lat (undoes the GCJ-02 shift on ``amap``).

    Examples
    --------
    >>> lon, lat = point_from_display(*wgs84_to_gcj02(119.4, 43.9), basemap="amap")
    >>> round(lon, 7), round(lat, 7)
    (119.4, 43.9)
    """
    _check_basemap(basemap)
    if basemap == "amap":
        return gcj02_to_wgs84(float(lon), float(lat))
    return float(lon), float(lat)


def drawing_to_geometry(feature: Mapping[str, Any], *, basemap: str = "offline") -> shapely.Geometry:
    """A GeoJSON feature drawn on the map (``st_folium``'s ``last_active_drawing``) → storage geometry."""
    _check_basemap(basemap)
    geom = shapely.geometry.shape(feature.get("geometry", feature))
    if basemap == "amap":
        def back(c: np.ndarray) -> np.ndarray:
            return np.column_stack(gcj02_to_wgs84(c[:, 0], c[:, 1]))
        geom = shapely.transform(geom, back)
    return geom


def display_frame(gdf: gpd.GeoDataFrame, *, basemap: str = "offline", simplify_m: float = 0.0,
                  precision: int = 5) -> gpd.GeoDataFrame:
    """A light copy of ``gdf`` for the browser: simplified (metres, in the GK zone), shifted, rounded.

    Polygon layers that tile (grids, admin units) keep shared edges (``shapely.coverage_simplify``).
    Empty geometries are dropped.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame(geometry=[shapely.Point(119.123456789, 43.987654321)], crs=4490)
    >>> display_frame(g).geometry.iloc[0].coords[0]
    (119.12346, 43.98765)
    """
    out = to_display(gdf, basemap=basemap)
    out = out[~(out.geometry.is_empty | out.geometry.isna())]
    if out.empty:
        return out
    geoms = np.asarray(out.geometry.array, dtype=object)
    assert out.crs is not None  # to_display always sets the storage (or GCJ-02) CRS
    if simplify_m > 0 and not np.all(shapely.get_type_id(geoms) == 0):
        gk = to_gk(gpd.GeoSeries(geoms, crs=out.crs))
        arr = np.asarray(gk.array, dtype=object)
        polygonal = np.isin(shapely.get_type_id(arr), (3, 6))
        if polygonal.all():
            try:
                arr = shapely.coverage_simplify(arr, simplify_m)
            except shapely.errors.GEOSException:
                arr = shapely.simplify(arr, simplify_m, preserve_topology=True)
        else:
            arr = shapely.simplify(arr, simplify_m, preserve_topology=True)
        geoms = np.asarray(gpd.GeoSeries(arr, crs=gk.crs).to_crs(out.crs).array, dtype=object)
    geoms = shapely.transform(geoms, lambda c: np.round(c, precision))
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
    return out[~out.geometry.is_empty]


def _feature_collection(frame: gpd.GeoDataFrame, props: pd.DataFrame, ids: pd.Series | None) -> dict[str, Any]:
    """GeoJSON of ``frame`` with ``props`` as properties; every text property escaped with
    :func:`grids.text.html` (a :class:`GeoJsonTooltip` shows properties as HTML)."""
    geo = shapely.to_geojson(np.asarray(frame.geometry.array, dtype=object))
    records = [{k: html_text(v) if isinstance(v, str) else v for k, v in r.items()}
               for r in props.to_dict("records")]
    id_list = [str(v) for v in ids] if ids is not None else None
    feats = []
    for i, g in enumerate(geo):
        f = {"type": "Feature", "geometry": json.loads(g), "properties": records[i]}
        if id_list is not None:
            f["id"] = id_list[i]
        feats.append(f)
    return {"type": "FeatureCollection", "features": feats}


# --------------------------------------------------------------------------------------------------------
# small map elements
# --------------------------------------------------------------------------------------------------------


class Tooltip(folium.Tooltip):
    """A ``folium.Tooltip`` whose text is shown literally (escaped with :func:`grids.text.html`).

    folium writes a tooltip's text into a JavaScript template string that Leaflet shows as HTML; a name
    like ``<img src=x onerror=…>`` or ``${…}`` would run. Pass it as ``tooltip=`` of a marker or layer.

    Examples
    --------
    >>> Tooltip('林东<img src=x onerror="alert(1)">').text
    '林东&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """

    def __init__(self, text: Any, **kwargs: Any) -> None:
        super().__init__(html_text(text), **kwargs)


class Popup(folium.Popup):
    """A ``folium.Popup`` whose text is shown literally (escaped with :func:`grids.text.html`)."""

    def __init__(self, text: Any, **kwargs: Any) -> None:
        kwargs.pop("parse_html", None)
        super().__init__(html_text(text), parse_html=False, **kwargs)


class GeoJsonTooltip(folium.GeoJsonTooltip):
    """folium's ``GeoJsonTooltip`` with its aliases escaped; the field values it shows are escaped already
    (GeoJSON built here passes every text property through :func:`grids.text.html`)."""

    def __init__(self, fields: list[str], *, aliases: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(fields=fields, aliases=[html_text(a) for a in (aliases or fields)], **kwargs)

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # returns None like branca's MacroElement
        """Render the tooltip; on an empty layer (a new workspace, a scope without grids) there is nothing to
        show, and folium would fail asserting that the fields exist in its (absent) features."""
        data = getattr(self._parent, "data", None)
        if isinstance(data, dict) and not data.get("features"):
            return
        super().render(**kwargs)  # type: ignore[no-untyped-call]  # untyped in folium


class _MacroElement(branca.element.MacroElement):
    """branca's ``MacroElement`` with a typed constructor."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # untyped in branca


class Legend(_MacroElement):
    """A legend box (HTML) as a Leaflet control; use instead of branca colormaps, which need d3 online.

    The box folds to its title (click to open) on maps narrower than ``fold_below`` pixels — on a phone an
    open legend would cover half the map. Clicks on it never reach the map (they would select a grid).

    Parameters
    ----------
    title : str
    items : list of (color, label)
        Title and labels are text (escaped here), colours CSS colours.
    position : str
        Leaflet control position, default ``bottomright``.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create("div", "grids-legend");
            div.innerHTML = {{ this.html|tojson }};
            if (map.getSize().x < {{ this.fold_below }}) { div.querySelector("details").open = false; }
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, title: str, items: list[tuple[str, str]], *, position: str = "bottomright",
                 fold_below: int = 500) -> None:
        super().__init__()
        self._name = "Legend"
        self.position = position
        self.fold_below = int(fold_below)
        rows = "".join(
            f'<div><span style="display:inline-block;width:14px;height:14px;margin-right:6px;'
            f'vertical-align:middle;background:{html_text(c)};border:1px solid #555"></span>{html_text(label)}</div>'
            for c, label in items
        )
        self.html = (
            '<div style="background:rgba(255,255,255,.92);padding:6px 9px;border-radius:4px;'
            'box-shadow:0 1px 4px rgba(0,0,0,.3);font-size:12px;line-height:18px">'
            f'<details open><summary style="cursor:pointer"><b>{html_text(title)}</b></summary>{rows}</details></div>'
        )


class MetricScale(_MacroElement):
    """Leaflet's scale bar in metres and kilometres only (folium's ``control_scale`` adds feet and miles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "MetricScale"


class TileErrorNotice(_MacroElement):
    """Shows “底图服务器无法访问” once when a tile layer of the map fails to load; our layers keep drawing."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function (map) {
            var shown = false;
            map.eachLayer(function (layer) {
                if (!(layer instanceof L.TileLayer)) { return; }
                layer.on("tileerror", function () {
                    if (shown) { return; }
                    shown = true;
                    var c = L.control({position: "bottomleft"});
                    c.onAdd = function () {
                        var d = L.DomUtil.create("div", "grids-tile-error");
                        d.style.cssText = "background:#fff3cd;padding:4px 8px;border-radius:4px;font-size:12px";
                        d.innerHTML = {{ this.text|tojson }};
                        return d;
                    };
                    c.addTo(map);
                });
            });
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, text: str = "底图服务器无法访问，仅显示本地图层") -> None:
        super().__init__()
        self._name = "TileErrorNotice"
        self.text = html_text(text)


class PointCluster(folium.elements.JSCSSMixin, folium.map.Layer):
    """Many points as one flat coordinate array, drawn as circle markers and clustered in the browser
    (Leaflet.markercluster).

    About 18 bytes per point at 5 decimals, against ~200 for a folium ``Marker``; clusters break up into
    single points from ``disable_clustering_at_zoom``. Adding every point to the cluster index costs the
    browser seconds for tens of thousands of points: for a county use :class:`PointAggregate`.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var d = {{ this.coords|tojson }};
            var style = {{ this.style|tojson }};
            var group = L.markerClusterGroup({{ this.options|tojavascript }});
            var markers = [];
            for (var i = 0; i < d.length; i += 2) {
                markers.push(L.circleMarker([d[i], d[i + 1]], style));
            }
            group.addLayers(markers);
            return group;
        })();
        {% endmacro %}
        """
    )
    # folium's CDN links, rewritten to the local copies by localize() like any plugin's
    # (not ClassVar: folium's JSCSSMixin declares them as instance attributes)
    default_js: list[tuple[str, str]] = list(folium.plugins.MarkerCluster.default_js)  # noqa: RUF012
    default_css: list[tuple[str, str]] = list(folium.plugins.MarkerCluster.default_css)  # noqa: RUF012

    def __init__(self, lonlat: np.ndarray, *, name: str, precision: int = 5, color: str = "#c0392b",
                 disable_clustering_at_zoom: int = 15, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PointCluster"
        latlon = np.round(np.asarray(lonlat, dtype=float).reshape(-1, 2)[:, ::-1], precision)
        self.coords = [float(v) for v in latlon.ravel()]
        self.style = {"radius": 4, "color": color, "weight": 1, "fillColor": color, "fillOpacity": 0.8}
        self.options = {
            "chunkedLoading": True,
            "disableClusteringAtZoom": disable_clustering_at_zoom,
            "showCoverageOnHover": False,
            "maxClusterRadius": 60,
        }


def encode_points(lonlat: np.ndarray, *, precision: int = 5) -> np.ndarray:
    """Points as a flat integer array for the browser: ``[lat, lon]`` of the first, then differences.

    The points are rounded to ``precision`` decimals (as integers of 10^-precision degrees) and put in
    Hilbert-curve order, so neighbours follow each other and the differences are a few digits long. The
    order of the points is not kept. Decoding is a running sum (see :class:`PointAggregate`).

    Examples
    --------
    >>> encode_points(np.array([[119.31235, 43.91235], [119.45, 43.95]])).tolist()
    [4391235, 11931235, 3765, 13765]
    """
    lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    if not len(lonlat):
        return np.empty(0, dtype=np.int64)
    q = np.round(lonlat[:, ::-1] * 10 ** int(precision)).astype(np.int64)  # lat, lon
    order = np.argsort(gpd.GeoSeries(shapely.points(lonlat)).hilbert_distance().to_numpy(), kind="stable")
    q = q[order]
    encoded: np.ndarray = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel()
    return encoded


class PointAggregate(folium.map.Layer):
    """Many points as one flat coordinate array: counted per screen cell at county zoom, drawn one by one
    (circle markers on the map's canvas, only those in view) from ``points_zoom`` on.

    The browser bins the points itself on every zoom change (Leaflet's ``zoomend``/``moveend``, no server
    round trip): ~25k points take a few milliseconds, where adding them to a Leaflet.markercluster index
    takes seconds. Count bubbles are ``div`` icons with the class ``marker-cluster`` (styled here, no
    plugin needed); a click on a bubble zooms in on it (two levels, at most to ``points_zoom``) and does not
    reach the areas beneath. The points travel delta-encoded (:func:`encode_points`, ~10 bytes per point at 5
    decimals instead of ~21 as a plain array); no script or style beyond Leaflet itself.

    Parameters
    ----------
    lonlat : array of shape (n, 2)
        Display lon/lat of the points.
    name : str
        Name in the layer control.
    precision : int
        Coordinate decimals sent (5 ≈ 1 m).
    color : str
        Fill of the bubbles and points.
    points_zoom : int
        First zoom level at which single points are drawn.
    cell_px : int
        Size of a counting cell in screen pixels.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function (map) {
            // [lat, lon] of the first point, then each point's difference from the previous one, in units of
            // 10^-precision degrees (points in Hilbert order, so the differences are short)
            var steps = {{ this.steps_js }}, scale = {{ this.scale }}, d = new Array(steps.length);
            for (var s = 0, la = 0, lo = 0; s < steps.length; s += 2) {
                la += steps[s]; lo += steps[s + 1];
                d[s] = la / scale; d[s + 1] = lo / scale;
            }
            var style = {{ this.style|tojson }};
            var color = {{ this.color|tojson }}, pointsZoom = {{ this.points_zoom }}, cell = {{ this.cell_px }};
            var zoomHint = {{ this.zoom_hint|tojson }};
            var group = L.layerGroup();
            group.gridsPoints = d;  // the decoded [lat, lon, lat, lon, …] (read by the browser tests)
            var renderer = L.canvas({padding: 0.3});
            var shown = null;
            style.renderer = renderer;
            style.interactive = false;
            function bubble(lat, lon, n) {
                var size = Math.round(18 + 5 * Math.log(n) / Math.LN10);
                var label = n < 1000 ? String(n) : (n < 10000 ? (n / 1000).toFixed(1) + "k" : Math.round(n / 1000) + "k");
                var html = '<div style="width:' + size + 'px;height:' + size + 'px;line-height:' + size +
                    'px;border-radius:50%;background:' + color + ';opacity:.8;color:#fff;font-weight:bold;' +
                    'font-size:10px;font-family:sans-serif;text-align:center;' +
                    'box-shadow:0 0 0 2px rgba(255,255,255,.6)">' + label + '</div>';
                var marker = L.marker([lat, lon], {
                    icon: L.divIcon({html: html, className: "marker-cluster grids-hh-cluster",
                                     iconSize: [size, size]}),
                    keyboard: false, title: zoomHint, bubblingMouseEvents: false
                });
                marker.on("click", function () {
                    map.setView([lat, lon], Math.min(map.getZoom() + 2, pointsZoom));
                });
                return marker;
            }
            function redraw() {
                if (!map.hasLayer(group)) { return; }
                var z = map.getZoom();
                var view = map.getBounds().pad(0.3);
                var key = z >= pointsZoom ? "p" + view.toBBoxString() : "z" + z;
                if (key === shown) { return; }
                shown = key;
                var layers = [];
                if (z >= pointsZoom) {
                    for (var i = 0; i < d.length; i += 2) {
                        if (view.contains([d[i], d[i + 1]])) { layers.push(L.circleMarker([d[i], d[i + 1]], style)); }
                    }
                } else {
                    var bins = {};
                    for (var j = 0; j < d.length; j += 2) {
                        var p = map.project([d[j], d[j + 1]], z);
                        var k = Math.floor(p.x / cell) + ":" + Math.floor(p.y / cell);
                        var b = bins[k] || (bins[k] = [0, 0, 0]);
                        b[0] += 1; b[1] += d[j]; b[2] += d[j + 1];
                    }
                    for (var c in bins) {
                        var v = bins[c];
                        layers.push(bubble(v[1] / v[0], v[2] / v[0], v[0]));
                    }
                }
                group.clearLayers();
                for (var m = 0; m < layers.length; m++) { group.addLayer(layers[m]); }
            }
            // first drawn after the current script: streamlit-folium hooks its "object clicked" handler onto
            // every layer present when the map script ends, and a bubble click must only zoom
            group.on("add", function () { shown = null; map.whenReady(function () { setTimeout(redraw, 0); }); });
            map.on("zoomend moveend", redraw);
            return group;
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, lonlat: np.ndarray, *, name: str, precision: int = 5, color: str = "#c0392b",
                 points_zoom: int = 13, cell_px: int = 60, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PointAggregate"
        self.scale = 10 ** int(precision)
        self.steps = encode_points(np.asarray(lonlat, dtype=float).reshape(-1, 2), precision=precision)
        self.steps_js = "[" + ",".join(map(str, self.steps.tolist())) + "]"
        self.color = color
        self.style = {"radius": 4, "color": color, "weight": 1, "fillColor": color, "fillOpacity": 0.8}
        self.points_zoom = int(points_zoom)
        self.cell_px = int(cell_px)
        self.zoom_hint = "点击放大"


class VillageCounts(folium.map.Layer):
    """Households known only by village: one marker per village at its seat, showing the count, with the
    label (“三家子村：23 户未定位”) as tooltip — never one point per household (their position is not known).

    Sent as one flat array ``[lat, lon, count, "name", …]`` (~40 bytes a village); the tooltip is the village
    name, escaped here with :func:`grids.text.html` (Leaflet puts a tooltip in ``innerHTML``), then
    “：23 户未定位”.

    Parameters
    ----------
    counts : GeoDataFrame
        Display-CRS points with ``households`` and ``name`` (:func:`grids.placement.village_counts` after
        :func:`display_frame`); rows without geometry are skipped.
    name : str
        Name in the layer control.
    precision : int
        Coordinate decimals sent.
    color : str
        Border and text colour of the markers.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var d = {{ this.data_js }}, color = {{ this.color|tojson }}, suffix = {{ this.suffix|tojson }};
            var group = L.layerGroup();
            group.gridsVillages = d;  // read by the browser tests
            for (var i = 0; i < d.length; i += 4) {
                var n = d[i + 2], label = n < 10000 ? String(n) : Math.round(n / 1000) + "k";
                var w = 12 + 7 * label.length;
                var html = '<div style="width:' + w + 'px;height:18px;line-height:16px;border:1px solid ' + color +
                    ';border-radius:9px;background:#fff;color:' + color + ';font:bold 11px sans-serif;' +
                    'text-align:center;box-sizing:border-box">' + label + '</div>';
                // the village name arrives escaped; the rest of the text is ours
                L.marker([d[i], d[i + 1]], {icon: L.divIcon({html: html, className: "grids-village-count",
                                                             iconSize: [w, 18]}), keyboard: false})
                    .bindTooltip(d[i + 3] + suffix.replace("{n}", n.toLocaleString("en-US")), {direction: "top"})
                    .addTo(group);
            }
            return group;
        })();
        {% endmacro %}
        """
    )

    def __init__(self, counts: gpd.GeoDataFrame, *, name: str, precision: int = 5, color: str = VILLAGE_COUNT_COLOR,
                 show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "VillageCounts"
        ok = counts[~(counts.geometry.isna() | counts.geometry.is_empty)] if len(counts) else counts
        rows: list[Any] = []
        for geom, n, name in zip(ok.geometry, ok["households"], ok["name"], strict=True):
            lat, lon = marker_location(geom)
            rows += [round(float(lat), precision), round(float(lon), precision), int(n), html_text(name)]
        self.suffix = "：{n} 户未定位"  # the tooltip: name + suffix, as grids.placement.village_counts labels it
        # UTF-8 as is (half the bytes of \\u escapes); the two line separators a pre-2019 script parser
        # would end a string at are escaped
        self.data_js = (json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
                        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
        self.color = color
        self.villages = len(ok)
        self.households = int(pd.to_numeric(ok["households"]).sum()) if len(ok) else 0


# --------------------------------------------------------------------------------------------------------
# basemaps
# --------------------------------------------------------------------------------------------------------


def tile_layers(basemap: str, *, tianditu_key: str | None = None, tile_url: str | None = None) -> list[folium.TileLayer]:
    """The tile layers of a basemap (none for ``offline``).

    Raises
    ------
    ValidationError
        ``tianditu`` without a key, ``custom`` without a URL, or an unknown basemap.
    """
    _check_basemap(basemap)
    common: dict[str, Any] = {"overlay": False, "control": False, "max_zoom": 18}
    if basemap == "offline":
        return []
    if basemap == "osm":
        return [folium.TileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", name="OpenStreetMap",
                                 attr="© OpenStreetMap 贡献者", **common)]
    if basemap == "amap":
        return [folium.TileLayer(
            "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
            name="高德地图", attr="© 高德地图（GCJ-02）", subdomains="1234", **common)]
    if basemap == "tianditu":
        if not tianditu_key:
            raise ValidationError(
                "天地图底图需要密钥（tk）",
                fix="在 .streamlit/secrets.toml 写 tianditu_key = \"…\"，或设置环境变量 TIANDITU_KEY；也可改用离线底图",
            )
        url = ("https://t{s}.tianditu.gov.cn/%s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=%s"
               "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=" + tianditu_key)
        return [
            folium.TileLayer(url % ("vec", "vec"), name="天地图", attr="© 天地图", subdomains="01234567", **common),
            folium.TileLayer(url % ("cva", "cva"), name="天地图注记", attr="© 天地图", subdomains="01234567",
                             overlay=True, control=False, max_zoom=18),
        ]
    if not tile_url:
        raise ValidationError(
            "自建瓦片服务需要瓦片地址", fix="设置环境变量 GRIDS_TILE_URL，例如 http://tiles.bank.local/{z}/{x}/{y}.png"
        )
    return [folium.TileLayer(tile_url, name="自建瓦片", attr="本行瓦片服务", **common)]


DERIVED_DASH = "6 4"
"""Leaflet ``dashArray`` of boundaries derived from seats (``admin_units.derived``, :mod:`grids.villages`)."""
_ADMIN_LAYER_NAMES = {"county": "旗县", "town": "镇界", "village": "村界", "group": "组界"}


def _admin_style(level: str, *, derived: bool = False) -> dict[str, Any]:
    """Outline style of one admin level: real boundaries solid, derived ones (推算村界) dashed.

    Examples
    --------
    >>> _admin_style("village")["dashArray"] is None, _admin_style("village", derived=True)["dashArray"]
    (True, '6 4')
    """
    weight = {"county": 2.5, "town": 1.5, "village": 0.6, "group": 0.4}.get(level, 0.6)
    color = {"county": "#333333", "town": "#555555"}.get(level, "#888888")
    return {"color": color, "weight": weight, "fill": False, "interactive": False,
            "dashArray": DERIVED_DASH if derived else None}


def _derived_mask(units: pd.DataFrame) -> np.ndarray:
    if "derived" not in units.columns:
        return np.zeros(len(units), dtype=bool)
    return np.array([not pd.isna(v) and bool(v) for v in units["derived"]], dtype=bool)


_Layer = tuple[str, dict[str, Any], dict[str, Any]]
"""An outline layer of :func:`base_map`: name, style and GeoJSON."""

_BACKGROUNDS: OrderedDict[tuple[Any, ...], tuple[Callable[[], Any], Callable[[], Any], list[_Layer]]] = OrderedDict()
_BACKGROUNDS_MAX = 8


def _frame_token(gdf: gpd.GeoDataFrame | None) -> tuple[Any, ...]:
    """What identifies a layer's drawing cheaply: the object, its length and extent (a frame the caller
    changed in place, or a new frame at a recycled address, gives another token)."""
    if gdf is None or not len(gdf):
        return (None,)
    return (id(gdf), len(gdf), tuple(np.round(gdf.total_bounds, 7)))


def _background(admin_units: gpd.GeoDataFrame | None, streets: gpd.GeoDataFrame | None, *, basemap: str,
                admin_levels: tuple[str, ...], simplify_m: float) -> list[_Layer]:
    """The outline layers of :func:`base_map` as ``(name, style, GeoJSON)``, simplified and shifted once per
    (layers, basemap, levels, tolerance) and reused by later maps of the same layers.

    Every branch's map draws the same county, town and village lines; the app hands the same read-only
    frames (one per workspace revision) to every map, so the second map on costs nothing here. The cache
    holds weak references: a dropped frame drops its entry's hits.
    """
    key = (_frame_token(admin_units), _frame_token(streets), basemap, tuple(admin_levels), float(simplify_m))
    held = _BACKGROUNDS.get(key)
    if held is not None and held[0]() is admin_units and held[1]() is streets:
        _BACKGROUNDS.move_to_end(key)
        return held[2]
    out: list[_Layer] = []
    if admin_units is not None and len(admin_units):
        for level in reversed(admin_levels):
            units = admin_units[admin_units["level"] == level]
            if units.empty:
                continue
            derived = _derived_mask(units)
            for flag in (False, True):  # real boundaries solid, derived ones (推算村界) dashed
                part = units[derived == flag]
                if part.empty:
                    continue
                disp = display_frame(part[["name", "geometry"]], basemap=basemap,
                                     simplify_m=simplify_m if level != "county" else simplify_m / 2)
                name = _ADMIN_LAYER_NAMES.get(level, level)
                out.append((f"推算{name}" if flag else name, _admin_style(level, derived=flag),
                            _feature_collection(disp, pd.DataFrame(index=range(len(disp))), None)))
    if streets is not None and len(streets):
        disp = display_frame(streets[["geometry"]], basemap=basemap, simplify_m=min(simplify_m, 5.0))
        out.append(("街道", {"color": "#9e9e9e", "weight": 1, "interactive": False},
                    _feature_collection(disp, pd.DataFrame(index=range(len(disp))), None)))
    none = lambda: None  # noqa: E731 — stands for "no frame" in the identity check
    _BACKGROUNDS[key] = (weakref.ref(admin_units) if admin_units is not None else none,
                         weakref.ref(streets) if streets is not None else none, out)
    while len(_BACKGROUNDS) > _BACKGROUNDS_MAX:
        _BACKGROUNDS.popitem(last=False)
    return out


def base_map(*, bounds: tuple[float, float, float, float] | None = None, basemap: str = "offline",
             admin_units: gpd.GeoDataFrame | None = None, streets: gpd.GeoDataFrame | None = None,
             admin_levels: tuple[str, ...] = ("county", "town", "village"), simplify_m: float = 30.0,
             asset_base: str = ASSET_BASE, tianditu_key: str | None = None,
             tile_url: str | None = None) -> OfflineMap:
    """An empty map of the county: tiles of ``basemap`` (if any) and our own outlines and streets.

    Parameters
    ----------
    bounds : (minx, miny, maxx, maxy), optional
        Storage lon/lat to fit; default the extent of ``admin_units``.
    basemap : str
        A key of :data:`BASEMAPS`.
    admin_units, streets : GeoDataFrame, optional
        Workspace layers drawn as light, non-clickable lines (the offline basemap).
    admin_levels : tuple of str
        Which ``admin_units.level`` values to draw.
    """
    _check_basemap(basemap)
    m = OfflineMap(tiles=None, prefer_canvas=True, asset_base=asset_base, zoom_snap=0.25)
    MetricScale().add_to(m)
    for layer in tile_layers(basemap, tianditu_key=tianditu_key, tile_url=tile_url):
        layer.add_to(m)
    if basemap != "offline":
        TileErrorNotice().add_to(m)
    for name, style, features in _background(admin_units, streets, basemap=basemap, admin_levels=admin_levels,
                                             simplify_m=simplify_m):
        extra: dict[str, Any] = {} if name == "街道" else {"smooth_factor": 1.0}
        folium.GeoJson(features, name=name, style_function=lambda _f, s=style: s, interactive=False,
                       **extra).add_to(m)
    if bounds is None and admin_units is not None and len(admin_units):
        bounds = frame_bounds(admin_units.to_crs(STORAGE_CRS))
    if bounds is not None and np.all(np.isfinite(bounds)):
        minx, miny, maxx, maxy = bounds
        if basemap == "amap":
            (minx, maxx), (miny, maxy) = wgs84_to_gcj02(np.array([minx, maxx]), np.array([miny, maxy]))
        m.fit_bounds([[float(miny), float(minx)], [float(maxy), float(maxx)]])
    return m


# --------------------------------------------------------------------------------------------------------
# the county overview
# --------------------------------------------------------------------------------------------------------


def rate_color(rate: float | None) -> str:
    """Fill colour of a coverage rate (0–1) in the :data:`RATE_BINS` classes; grey when unknown.

    Examples
    --------
    >>> rate_color(0.05), rate_color(0.8), rate_color(1.0), rate_color(None)
    ('#d7191c', '#1a9641', '#1a9641', '#bdbdbd')
    """
    if rate is None or not np.isfinite(rate):
        return NO_DATA_COLOR
    i = int(np.searchsorted(RATE_BINS, rate, side="right")) - 1
    return RATE_COLORS[min(max(i, 0), len(RATE_COLORS) - 1)]


def _pct(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v) * 100:.1f}%"


def overview_map(areas: gpd.GeoDataFrame, *, branches: gpd.GeoDataFrame | None = None,
                 uncovered: gpd.GeoDataFrame | None = None, admin_units: gpd.GeoDataFrame | None = None,
                 streets: gpd.GeoDataFrame | None = None, unlocated: gpd.GeoDataFrame | None = None,
                 basemap: str = "offline",
                 id_column: str = "grid_id", name_column: str = "name", rate_column: str = "coverage_rate",
                 staff_column: str | None = "staff_id", households_column: str | None = "households",
                 area_label: str = "网格", simplify_m: float = 20.0, precision: int = 5,
                 points_zoom: int = 13, asset_base: str = ASSET_BASE, tianditu_key: str | None = None,
                 tile_url: str | None = None) -> OfflineMap:
    """The county coverage map: areas coloured by coverage rate, unstaffed areas flagged, branches,
    uncovered households counted per screen cell (drawn one by one when zoomed in).

    Parameters
    ----------
    areas : GeoDataFrame
        Grids (or admin units while no plan exists) with ``id_column``, ``name_column`` and ``rate_column``
        (0–1, NaN when the area has no households); ``staff_column`` empty → flagged “无人负责”.
    branches : GeoDataFrame, optional
        Branch points with ``name``.
    uncovered : GeoDataFrame, optional
        Household points still to cover (empty geometries are skipped); counted in bubbles at county zoom,
        drawn as points from ``points_zoom`` on (:class:`PointAggregate`, all in the browser). Only a
        household's own point is drawn: rows whose ``placement`` (:func:`grids.placement.placement`) is not
        ``point``, or whose ``placed_by`` is ``code``/``name``, are skipped — count them with ``unlocated``.
    unlocated : GeoDataFrame, optional
        Households known only by village, counted per village (:func:`grids.placement.village_counts`): one
        marker per village at its seat with the count, “三家子村：23 户未定位” as tooltip (:class:`VillageCounts`).
    admin_units, streets : GeoDataFrame, optional
        Drawn as the offline basemap (see :func:`base_map`).
    basemap : str
        A key of :data:`BASEMAPS`; ``amap`` shifts everything to GCJ-02.
    simplify_m, precision : float, int
        Display simplification tolerance (metres) and coordinate decimals.
    points_zoom : int
        First zoom level at which uncovered households are drawn one by one.

    Returns
    -------
    OfflineMap
        Not rendered. Clicks come back from ``st_folium`` as ``last_object_clicked``; turn them into an
        area id with :func:`pick_feature`.
    """
    missing = [c for c in (id_column, name_column, rate_column) if c not in areas.columns]
    if missing:
        raise ValidationError(
            f"覆盖地图的区域缺少列：{', '.join(missing)}", fix=f"区域需要列 {id_column}、{name_column}、{rate_column}"
        )
    bounds = frame_bounds(areas.to_crs(STORAGE_CRS)) if len(areas) else None
    m = base_map(bounds=bounds, basemap=basemap, admin_units=admin_units, streets=streets,
                 admin_levels=("county", "town"), simplify_m=simplify_m * 1.5, asset_base=asset_base,
                 tianditu_key=tianditu_key, tile_url=tile_url)
    keep = [c for c in (id_column, name_column, rate_column, staff_column, households_column)
            if c and c in areas.columns]
    disp = display_frame(areas[[*dict.fromkeys(keep), areas.geometry.name]], basemap=basemap,
                         simplify_m=simplify_m, precision=precision)
    rates = pd.to_numeric(disp[rate_column], errors="coerce")
    unstaffed = (disp[staff_column].isna() | (disp[staff_column].astype("string").str.strip() == "")).to_numpy(
        dtype=bool) if staff_column and staff_column in disp.columns else np.zeros(len(disp), dtype=bool)
    props = pd.DataFrame({
        "name": disp[name_column].astype("string").fillna("").to_numpy(dtype=object),
        "rate": [_pct(v) for v in rates],
        "c": [rate_color(None if pd.isna(v) else float(v)) for v in rates],
    })
    fields, aliases = ["name", "rate"], [area_label, "覆盖率"]
    if households_column and households_column in disp.columns:
        props["hh"] = pd.to_numeric(disp[households_column], errors="coerce").fillna(0).astype(int).to_numpy()
        fields.append("hh")
        aliases.append("户数")
    props["staff"] = np.where(unstaffed, "无人负责", "")
    if unstaffed.any():
        fields.append("staff")
        aliases.append("负责人")
    folium.GeoJson(
        _feature_collection(disp, props, disp[id_column]),
        name=html_text(f"{area_label}覆盖率"),
        style_function=lambda f: {"fillColor": f["properties"]["c"], "color": "#ffffff", "weight": 0.8,
                                  "fillOpacity": 0.65},
        highlight_function=lambda _f: {"weight": 2.5, "color": "#1f4e79"},
        tooltip=GeoJsonTooltip(fields, aliases=aliases, sticky=False),
        zoom_on_click=False, smooth_factor=1.0,
    ).add_to(m)
    if unstaffed.any():
        flagged = disp[unstaffed]
        folium.GeoJson(
            _feature_collection(flagged, pd.DataFrame(index=range(len(flagged))), None),
            name=html_text("无人负责的" + area_label),
            style_function=lambda _f: {"color": UNSTAFFED_COLOR, "weight": 2.5, "dashArray": "6 4",
                                       "fill": False, "interactive": False},
            interactive=False,
        ).add_to(m)
    n_uncovered = 0
    if uncovered is not None and len(uncovered):
        own = np.ones(len(uncovered), dtype=bool)  # never an invented position (a point inside the village)
        if "placement" in uncovered.columns:
            own &= (uncovered["placement"].astype(object) == "point").to_numpy()
        if "placed_by" in uncovered.columns:
            own &= ~uncovered["placed_by"].isin(["code", "name"]).to_numpy()
        pts = display_frame(uncovered.loc[own, [uncovered.geometry.name]], basemap=basemap, precision=precision)
        if len(pts):
            xy = shapely.get_coordinates(np.asarray(pts.geometry.array, dtype=object))
            n_uncovered = len(xy)
            PointAggregate(xy, name=f"未建档农户（{n_uncovered:,}）", precision=precision, color=UNCOVERED_COLOR,
                           points_zoom=points_zoom).add_to(m)
    villages = None
    if unlocated is not None and len(unlocated):
        shown = display_frame(unlocated[["households", "name", unlocated.geometry.name]], basemap=basemap,
                              precision=precision)
        if len(shown):
            n = int(pd.to_numeric(shown["households"]).sum())
            villages = VillageCounts(shown, name=f"仅知村的农户（{n:,}）", precision=precision)
            villages.add_to(m)
    if branches is not None and len(branches):
        group = folium.FeatureGroup(name="营业网点")
        bdisp = display_frame(branches, basemap=basemap, precision=precision)
        for geom, name in zip(bdisp.geometry, bdisp.get("name", pd.Series("", index=bdisp.index)), strict=True):
            folium.CircleMarker(marker_location(geom), radius=6, color="#0d47a1", weight=2, fill=True,
                                fill_color="#ffffff", fill_opacity=1.0, tooltip=Tooltip(name)).add_to(group)
        group.add_to(m)
    items = [(c, f"{lo * 100:.0f}–{hi * 100:.0f}%") for c, lo, hi in
             zip(RATE_COLORS, RATE_BINS[:-1], RATE_BINS[1:], strict=True)]
    items.append((NO_DATA_COLOR, "无农户"))
    if unstaffed.any():
        items.append((UNSTAFFED_COLOR, f"无人负责（{int(unstaffed.sum())} 个）"))
    if n_uncovered:
        items.append((UNCOVERED_COLOR, f"未建档农户 {n_uncovered:,} 户（放大逐户显示）"))
    if villages is not None:
        items.append((VILLAGE_COUNT_COLOR, f"仅知村的农户 {villages.households:,} 户（{villages.villages} 个村，标在村委会）"))
    Legend(f"{area_label}覆盖率（已建档/农户）", items).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    return m


def pick_feature(areas: gpd.GeoDataFrame, *, lon: float, lat: float, basemap: str = "offline",
                 id_column: str = "grid_id") -> str | None:
    """The id of the area under a clicked map position (display coordinates), or ``None``.

    Parameters
    ----------
    areas : GeoDataFrame
        The areas drawn by :func:`overview_map` (storage CRS).
    lon, lat : float
        The click, as ``st_folium`` returns it (``last_object_clicked["lng"]``, ``["lat"]``).
    """
    x, y = point_from_display(lon, lat, basemap=basemap)
    geo = areas.to_crs(STORAGE_CRS) if areas.crs is not None and not areas.crs.equals(STORAGE_CRS) else areas
    hits = geo.sindex.query(shapely.Point(x, y), predicate="intersects")
    if len(hits) == 0:
        return None
    return str(geo[id_column].iloc[int(np.min(hits))])


def unit_coverage(admin_units: gpd.GeoDataFrame, households: pd.DataFrame, *,
                  level: str = "village") -> gpd.GeoDataFrame:
    """Admin units of one level with ``households``, ``covered`` (已建档) and ``coverage_rate`` columns.

    The map's stand-in for grid coverage while a workspace has no grid plan: households are counted by
    their statistical codes (``village_code``; towns by its first 9 digits; groups by ``group_code``).

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> units = gpd.GeoDataFrame({"code": ["150422100201", "150422100202"], "name": ["甲村", "乙村"],
    ...                           "level": ["village", "village"], "parent_code": ["150422100"] * 2},
    ...                          geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4490)
    >>> hh = pd.DataFrame({"village_code": ["150422100201"] * 4, "archived": [True, True, True, False]})
    >>> unit_coverage(units, hh)[["code", "households", "covered", "coverage_rate"]].values.tolist()
    [['150422100201', 4, 3, 0.75], ['150422100202', 0, 0, nan]]
    """
    if level not in ("town", "village", "group"):
        raise ValidationError(f"无法按 “{level}” 统计覆盖率", fix="level 取 town、village 或 group")
    units = admin_units[admin_units["level"] == level].copy()
    if level == "group":
        key = households["group_code"].astype("string")
    else:
        key = households["village_code"].astype("string")
        if level == "town":
            key = key.str.slice(0, 9)
    archived = households["archived"].astype("boolean").fillna(False).astype(bool)
    stats = pd.DataFrame({"key": key, "a": archived}).groupby("key")["a"].agg(["size", "sum"])
    codes = units["code"].astype("string")
    units["households"] = codes.map(stats["size"]).fillna(0).astype(int).to_numpy()
    units["covered"] = codes.map(stats["sum"]).fillna(0).astype(int).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        units["coverage_rate"] = np.where(units["households"] > 0,
                                          units["covered"] / units["households"].replace(0, 1), np.nan)
    return units
