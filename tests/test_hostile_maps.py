"""Hostile names on every map builder: rendered HTML carries them escaped, never as markup or template code.

Issue #12 item 1. Each builder gets the hostile corpus (``tests/data/hostile/names.txt``) as grid, branch,
staff and area names; the page it renders (``m.get_root().render()``) must not contain any raw payload, and
must contain the escaped text (so the name still shows, literally).
"""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids import maps
from grids.errors import ValidationError
from grids.text import html as html_text
from tests.hostile import corpus

# what must never reach the page as written: markup that runs, or template code that expands
RAW = (
    "<img src=x", "<script>window", "<svg onload", "<iframe src=", "<a href=\"javascript", "<a href=\\\"javascript",
    "<style>body", "onmouseover='window", "${window", "`${document", "{{constructor",
)
# the escaped forms (as HTML text, or inside JSON where htmlsafe tojson writes & as \u0026)
ESCAPED = ("lt;img src=x onerror=", "#36;&#123;window", "lt;script&gt;window")
ESCAPED_JSON = ("lt;img src=x onerror=", "#36;\\u0026#123;window", "lt;script\\u0026gt;window")

NAMES = corpus()


def assert_safe(html: str) -> None:
    """No raw payload in ``html``, and the escaped payloads are there (HTML text or JSON form)."""
    found = [p for p in RAW if p in html]
    assert not found, f"raw payload in the page: {found}"
    for plain, in_json in zip(ESCAPED, ESCAPED_JSON, strict=True):
        assert plain in html or in_json in html, f"escaped {plain!r} not in the page"


def boxes(n: int) -> list[shapely.Polygon]:
    return [shapely.box(119.3 + 0.01 * i, 43.9, 119.31 + 0.01 * i, 43.91) for i in range(n)]


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    n = len(NAMES)
    return gpd.GeoDataFrame(
        {"grid_id": [f"G{i:03d}" for i in range(n)], "name": NAMES, "coverage_rate": np.linspace(0, 1, n),
         "staff_id": [f"S{i:03d}" if i % 3 else None for i in range(n)], "households": np.arange(n) * 10,
         "branch_id": [f"B{i % 3:02d}" for i in range(n)], "code": [f"C{i}" for i in range(n)]},
        geometry=boxes(n), crs=4490,
    )


@pytest.fixture
def branches() -> gpd.GeoDataFrame:
    n = len(NAMES)
    return gpd.GeoDataFrame({"branch_id": [f"B{i:02d}" for i in range(n)], "name": NAMES},
                            geometry=[shapely.Point(119.3 + 0.01 * i, 43.95) for i in range(n)], crs=4490)


@pytest.fixture
def staff() -> pd.DataFrame:
    n = len(NAMES)
    return pd.DataFrame({"staff_id": [f"S{i:03d}" for i in range(n)], "name": NAMES,
                         "branch_id": [f"B{i % 3:02d}" for i in range(n)]})


@pytest.fixture
def admin() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["150422", "150422100"], "name": [NAMES[0], NAMES[1]], "level": ["county", "town"],
         "parent_code": [None, "150422"]},
        geometry=[shapely.box(119.2, 43.8, 119.7, 44.1), shapely.box(119.3, 43.9, 119.6, 44.0)], crs=4490,
    )


def test_corpus_has_the_payloads_this_module_looks_for():
    text = "\n".join(NAMES)
    assert all(p in text for p in ("<img src=x", "<script>window", "${window", "<svg onload", "`${document"))


def test_overview_map_escapes_area_branch_and_label_names(grids, branches, admin):
    m = maps.overview_map(grids, branches=branches, admin_units=admin, area_label=NAMES[0],
                          uncovered=gpd.GeoDataFrame(geometry=[shapely.Point(119.31, 43.905)], crs=4490))
    assert_safe(m.get_root().render())


def test_standalone_html_of_the_overview_is_escaped(grids, branches, tmp_path):
    static = tmp_path / "static"
    for rel in ("leaflet/leaflet.js", "leaflet/leaflet.css"):
        (static / "vendor" / rel).parent.mkdir(parents=True, exist_ok=True)
        (static / "vendor" / rel).write_text("/* stub */", encoding="utf-8")
    assert_safe(maps.standalone_html(maps.overview_map(grids, branches=branches), static_dir=static))


def test_legend_tooltip_popup_escape_their_text():
    m = maps.OfflineMap()
    for i, name in enumerate(NAMES):
        folium.CircleMarker([43.9, 119.3 + i * 0.01], tooltip=maps.Tooltip(name),
                            popup=maps.Popup(name)).add_to(m)
    maps.Legend(NAMES[0], [("#fff", n) for n in NAMES]).add_to(m)
    assert_safe(m.get_root().render())


def test_folium_raw_text_elements_and_markup_layer_names_are_refused():
    for element in (folium.Tooltip("x"), folium.Popup("x"), folium.DivIcon(html="<b>x</b>")):
        m = maps.OfflineMap()
        holder = folium.Marker([43.9, 119.3]).add_to(m)
        holder.add_child(element)
        with pytest.raises(ValidationError, match=r"grids\.maps\.Tooltip"):
            m.get_root().render()
    m = maps.OfflineMap()
    folium.GeoJson({"type": "FeatureCollection", "features": []},
                   tooltip=folium.GeoJsonTooltip(fields=["name"])).add_to(m)
    with pytest.raises(ValidationError, match="GeoJsonTooltip"):
        m.get_root().render()
    m = maps.OfflineMap()
    folium.FeatureGroup(name=NAMES[0]).add_to(m)
    with pytest.raises(ValidationError, match="图层名"):
        m.get_root().render()


def test_feature_properties_are_escaped_once(grids):
    fc = maps._feature_collection(grids, grids[["name", "households"]], grids["grid_id"])
    names = [f["properties"]["name"] for f in fc["features"]]
    assert names == [html_text(n) for n in NAMES]
    assert fc["features"][1]["properties"]["households"] == 10  # numbers untouched


def test_plan_map_escapes_grid_branch_and_staff_names(grids, branches, staff, admin):
    from grids.planmaps import plan_map

    found = gpd.GeoDataFrame({"kind": [NAMES[0]]}, geometry=[shapely.Point(119.305, 43.905)], crs=4490)
    g = grids.assign(staff_id=[NAMES[i % len(NAMES)] for i in range(len(grids))])
    m = plan_map(g, admin=admin, branches=branches, basemap="offline", found=found, focus=None,
                 min_households=10, max_households=100)
    assert_safe(m.get_root().render())


def test_staff_map_escapes_staff_names_in_tooltips_and_legend(grids, branches, staff, admin):
    from grids.planmaps import staff_map

    m = staff_map(grids, staff=staff, branches=branches, basemap="offline", admin=admin, changed=["G001"])
    html = m.get_root().render()
    assert_safe(html)
    assert "staff_name" in html  # the staff name is a tooltip field



def test_compare_map_escapes_names_of_plan_b_and_the_changed_grids(grids, branches, staff, admin):
    """The 方案版本 comparison (grids.planmaps.compare_map, new with grids.planflow) draws plan B and outlines
    the changed grids: both carry names from data."""
    from grids.planmaps import compare_map

    g = grids.assign(staff_id=[NAMES[i % len(NAMES)] for i in range(len(grids))])
    m = compare_map(g, g.iloc[:2], admin=admin, branches=branches, basemap="offline")
    assert_safe(m.get_root().render())

def test_whatif_map_escapes_branch_names_and_ids(grids, branches, staff, admin):
    from grids.planmaps import whatif_map

    m = whatif_map(grids.assign(branch_id=[NAMES[i % 3] for i in range(len(grids))]),
                   admin=admin, branches=branches, basemap="offline", point=(119.31, 43.92),
                   moves=["G001"])
    assert_safe(m.get_root().render())


def test_workbench_map_escapes_grid_and_branch_names(grids, branches):
    from grids.workbench import Workbench
    from ui.data import workbench_map

    todo = gpd.GeoDataFrame({"hh_id": ["H1"]}, geometry=[shapely.Point(119.305, 43.905)], crs=4490)
    wb = Workbench(staff_id="S001", grids=grids, households=todo, todo=todo, summary={}, start=(119.3, 43.95),
                   start_label=NAMES[0], branch=branches.iloc[:3], week={}, weekly=pd.DataFrame())
    assert_safe(workbench_map(wb, basemap="offline").get_root().render())


def test_overview_map_of_an_empty_workspace_renders():
    """A new real workspace has no grids yet: the county overview still draws (an empty layer has no tooltip)."""
    import geopandas as gpd

    from grids import maps

    empty = gpd.GeoDataFrame({"grid_id": [], "name": [], "coverage_rate": [], "staff_id": [], "households": []},
                             geometry=[], crs=4490)
    html = maps.overview_map(empty, id_column="grid_id", name_column="name", rate_column="coverage_rate",
                             staff_column="staff_id", households_column="households").get_root().render()
    assert "leaflet" in html.lower()


def test_rendered_map_parts_are_not_templated_a_second_time():
    """branca used to compile every element's rendered script as a new Jinja template: a ``{{…}}`` that got
    into the output (here through an element that writes it raw) was evaluated on the server."""
    from branca.element import MacroElement

    from grids.maps import OfflineMap

    class Raw(MacroElement):
        _template = folium.template.Template("{% macro script(this, kwargs) %}var x = '{{ '{{7*7}}' }}';"
                                             "{% endmacro %}")

    m = OfflineMap(location=[43.0, 119.0], zoom_start=8)
    Raw().add_to(m)
    html = m.get_root().render()
    assert "var x = '{{7*7}}';" in html
    assert "var x = '49';" not in html
