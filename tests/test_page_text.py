"""Chinese first: every page, opened by every role, shows no Latin words outside an allow-list (codes, units,
file formats and product names) in its titles, texts, alerts, labels, options, metrics, tabs and table headers.

The sidebar and the main area are both read (AppTest's element tree). Map legends and tooltips are checked in the
browser test. A new page or role joins by being in ``grids.navigation.PAGES`` / ``tests.test_app.ACCOUNTS``.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from grids.navigation import pages_for
from tests.test_app import ACCOUNTS, APP, tiny_workspace
from ui.auth import session_for

LATIN = re.compile(r"[A-Za-z][A-Za-z_.-]*[A-Za-z]|[A-Za-z]")
ALLOWED = {
    # file formats, systems and standards a user meets by these names
    "CSV", "Excel", "xlsx", "PDF", "PNG", "KML", "HTML", "GeoPackage", "gpkg", "Shapefile", "shp", "dbf", "shx",
    "prj", "cpg", "GeoJSON", "GIS", "QGIS", "WGS", "GCJ", "CGCS", "GPS", "ID", "PostGIS", "PostgreSQL", "MB", "KB",
    "OpenStreetMap", "OSM", "SSO", "OIDC", "URL", "Leaflet",
    # units
    "km", "m", "mm", "h", "s",
    # usernames of the test workspace's audit (data, shown as written)
    "zhang", "test",
    # the test workspace's plan name (data)
    "main",
}


def texts(at: AppTest) -> list[str]:
    """Every text a user reads on the page (both the main area and the sidebar)."""
    out: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success",
                 "text", "exception"):
        out += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    for kind in ("button", "checkbox", "toggle", "text_input", "number_input", "date_input", "text_area",
                 "selectbox", "multiselect", "radio", "select_slider", "slider", "color_picker", "time_input"):
        for e in getattr(at, kind):
            out.append(str(getattr(e, "label", "")))
            out += [str(o) for o in getattr(e, "options", []) or []]
            out.append(str(getattr(e, "placeholder", "") or ""))
            out.append(str(getattr(e, "help", "") or ""))
    for m in at.metric:
        out += [str(m.label), str(m.value), str(m.delta or "")]
    for t in at.tabs:
        out.append(str(t.label))
    for df in at.dataframe:
        value = df.value
        if isinstance(value, pd.DataFrame):
            out += headers(df.proto, value)
    return out


def headers(proto, value: pd.DataFrame) -> list[str]:
    """The column headers a table shows: ``column_config`` labels where given, hidden and unlisted columns left
    out (a data editor keeps English column names under Chinese labels)."""
    config = json.loads(proto.columns or "{}")
    order = list(proto.column_order)
    shown = []
    for c in [*([value.index.name] if value.index.name else []), *value.columns]:
        cfg = config.get(str(c)) or {}
        if cfg.get("hidden") or (order and str(c) not in order and c != value.index.name):
            continue
        shown.append(str(cfg.get("label") or c))
    return shown


def latin_words(strings: list[str]) -> set[str]:
    found = set()
    for s in strings:
        s = re.sub(r"\\(.)", r"\1", s)  # Markdown escapes (texts from the data are shown literally)
        s = re.sub(r"`[^`]*`", "", s)  # quoted commands and codes
        s = re.sub(r"(\b[A-Z_]+=\S*\s+)*(\.venv/bin/)?python -m grids[^\u4e00-\u9fff（，。；]*", "", s)  # commands
        s = re.sub(r"\b[0-9a-f]{8,}\b", "", s)  # hashes
        s = re.sub(r"\b[A-Za-z]+\d+[\w-]*", "", s)  # codes like B01, S002, P1a2b
        s = re.sub(r"\b\d+[A-Za-z]+\b", "", s)  # 30m, 2km
        s = re.sub(r":material/[a-z_]+:", "", s)  # icons
        s = re.sub(r"https?://\S+|postgresql://\S+|/[\w./-]+", "", s)  # paths and URLs
        for w in LATIN.findall(s):
            if w not in ALLOWED and w.lower() not in {a.lower() for a in ALLOWED}:
                found.add(w)
    return found


@pytest.fixture
def ws_path(tmp_path, monkeypatch):
    path = tiny_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    return path


@pytest.mark.parametrize("role", sorted(ACCOUNTS))
def test_every_page_of_every_role_reads_in_chinese(ws_path, role):
    bad: dict[str, set[str]] = {}
    for page in pages_for(ACCOUNTS[role].role):
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["auth.session"] = session_for(ACCOUNTS[role])
        at.run()
        at.switch_page(page.path).run()
        assert not at.exception, (page.path, at.exception)
        words = latin_words(texts(at))
        if words:
            bad[page.path] = words
    assert not bad, f"Latin words on {role}'s pages: {bad}"


def test_the_scan_finds_latin_words():
    assert latin_words(["方案状态：draft", "Choose an option", "网点 B01，户数 12"]) == {"draft", "Choose", "an",
                                                                                     "option"}
