"""Hostile text (tests/data/hostile) through every export and download: shown literally, never run.

Branch, staff, household, grid, plan and county names carry the corpus; each format is read back with its own
parser: xlsx with openpyxl (no formula cell), KML with an XML parser (no HTML for Google Earth to run), the
offline HTML map (no raw tag or template), PDF/PNG (a ``$…$`` name draws its dollar signs), CSV with ``csv``.
Connection strings are masked wherever the app shows them.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids import export, render, text
from grids.household_status import household_status
from grids.text import FORMULA_START, strip_controls
from tests.hostile import corpus
from tests.test_coverage import VA, make_grids, make_households

KML = "{http://www.opengis.net/kml/2.2}"
HOSTILE = corpus()
MATH = next(s for s in HOSTILE if s.startswith("$\\alpha"))
# what must never appear raw in a file a browser or Google Earth renders
RAW = ("<img src=x", "<script>window", "<svg onload", "<iframe", "${window", "${document", "onmouseover='",
       "<style>body", '<a href="javascript')
# the spreadsheet payloads of issue #12 item 6, and a bare CR followed by a formula
FORMULAS = ['=HYPERLINK("http://127.0.0.1:9/x","点击")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3", "正常\r=cmd|' /C calc'!A0"]


def hostile_workspace(ws) -> None:
    """The coverage fixture with the corpus in every name: branches, staff, grids, plan, county and households
    (the ten fixture households plus one more in G1 per corpus string, as head name and address)."""
    from grids import plans

    hh = make_households()
    hh["head_name"] = HOSTILE[:10]
    hh["address"] = HOSTILE[-10:]
    n = len(HOSTILE) + 1
    extra = gpd.GeoDataFrame({
        "hh_id": [f"x{i:02d}" for i in range(n)], "village_code": VA, "segment": "农牧户",
        "archived": False, "eligible": False, "granted_amount": 0.0, "signed": False, "available_amount": 0.0,
        "using": False, "balance": 0.0, "head_name": [*HOSTILE, "响铃\x07控制符"], "address": [*HOSTILE, "\x0b"],
        "id_no": [f"1504221980010120{i:02d}" for i in range(n)], "phone": "13800000000",
    }, geometry=[shapely.Point(119.001 + 0.008 * i / n, 43.002 + 0.006 * (i % 3) / 3) for i in range(n)], crs=4490)
    hh = pd.concat([hh, extra], ignore_index=True)
    branches = gpd.GeoDataFrame({"branch_id": ["B1", "B2"], "name": [HOSTILE[0], MATH], "kind": ["信用社"] * 2},
                                geometry=[shapely.Point(119.001, 43.001), shapely.Point(119.039, 43.001)], crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "name": [HOSTILE[9], HOSTILE[1]], "branch_id": ["B1", "B2"],
                          "role": ["客户经理"] * 2, "phone": ["13900000001", "13900000002"]})
    units = gpd.GeoDataFrame({"code": ["150422", "150422100", VA], "name": ["巴林左旗", HOSTILE[12], HOSTILE[9]],
                              "level": ["county", "town", "village"], "parent_code": [None, "150422", "150422100"]},
                             geometry=[shapely.box(118.9, 42.9, 119.6, 43.6)] * 2 + [make_grids().geometry[0]],
                             crs=4490)
    grids = make_grids()
    grids["name"] = [MATH, HOSTILE[2], HOSTILE[8], HOSTILE[3]]
    with ws.transaction(actor="test", action="fixture") as tx:
        tx.replace("households", hh)
        tx.replace("branches", branches)
        tx.replace("staff", staff)
        tx.replace("admin_units", units)
    ws.set_meta("county_name", HOSTILE[7], actor="test")  # ${window.__pwned=1}周八
    plans.save_draft(ws, grids, name=HOSTILE[0], actor="test")


@pytest.fixture
def ws(empty_ws):
    hostile_workspace(empty_ws)
    return empty_ws


def flat(value: str) -> str:
    """How a spreadsheet cell keeps a string: a bare CR becomes a line feed, control characters XML cannot hold
    are dropped."""
    from grids.text import strip_controls

    return strip_controls(value).replace("\r\n", "\n").replace("\r", "\n")


def runs_as_formula(cell: str) -> bool:
    """A CSV cell a spreadsheet would run: it starts like a formula, or a bare CR (which some readers take for
    a row break) puts a formula at the start of a line."""
    return cell.startswith(FORMULA_START) or bool(re.search("\r(?![\n])", cell))


def assert_no_formula_cells(book) -> list:
    """Every cell of ``book`` is a value or text, none a formula; text that looks like one is quote-prefixed."""
    strings = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s"
                    assert "\r" not in cell.value
                    if cell.value.startswith(FORMULA_START):
                        assert cell.quotePrefix, (sheet.title, cell.coordinate, cell.value)
                    strings.append(cell.value)
    return strings


# -- xlsx and CSV (issue #12 items 1 and 6) --------------------------------------------------------------------


def test_xlsx_export_keeps_every_hostile_name_as_text(ws, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "s1.xlsx"
    export.export_plan(ws, fmt="xlsx", out=out, staff_id="S1")
    strings = assert_no_formula_cells(load_workbook(out))
    for s in HOSTILE:
        assert flat(s) in strings, s  # each corpus string is a head name in S1's grid G1, kept verbatim
    assert any(MATH in v for v in strings)  # the grid name in the sheet heading
    with zipfile.ZipFile(out) as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    assert "<f>" not in xml and "&#13;" not in xml and "\r" not in xml


def test_xlsx_cell_neutralises_each_formula_form():
    from openpyxl import Workbook, load_workbook

    book = Workbook()
    for i, value in enumerate(FORMULAS, start=1):
        export.xlsx_cell(book.active, i, 1, value)
    buf = io.BytesIO()
    book.save(buf)
    sheet = load_workbook(io.BytesIO(buf.getvalue())).active
    cells = [sheet.cell(i, 1) for i in range(1, len(FORMULAS) + 1)]
    assert [c.value for c in cells] == [flat(v) for v in FORMULAS]
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)


def test_table_csv_neutralises_each_formula_form():
    from ui.data import table_csv

    frame = pd.DataFrame({"name": FORMULAS, "n": range(len(FORMULAS))}, index=FORMULAS)
    for index in (False, True):
        rows = list(csv.reader(io.StringIO(table_csv(frame, index=index).decode("utf-8-sig"), newline="")))
        cells = [c for row in rows[1:] for c in row]
        assert not [c for c in cells if runs_as_formula(c)]
        assert [row[-2] for row in rows[1:]] == ["'" + flat(v) for v in FORMULAS]
        assert [row[-1] for row in rows[1:]] == [str(i) for i in range(len(FORMULAS))]  # numbers stay numbers
        if index:
            assert [row[0] for row in rows[1:]] == ["'" + flat(v) for v in FORMULAS]


def test_table_csv_neutralises_headers():
    from ui.data import table_csv

    header = next(csv.reader(io.StringIO(table_csv(pd.DataFrame({"=1+1": [1]})).decode("utf-8-sig"))))
    assert header == ["'=1+1"]


def test_table_xlsx_neutralises_each_formula_form():
    from openpyxl import load_workbook

    from grids.export import frame_xlsx as table_xlsx

    frame = pd.DataFrame({"=名称": HOSTILE, "n": np.arange(len(HOSTILE))})
    book = load_workbook(io.BytesIO(table_xlsx(frame, title="白名单")))
    strings = assert_no_formula_cells(book)
    assert strings == ["=名称", "n", *[flat(s) for s in HOSTILE]]
    assert [c.value for c in book.active["B"][1:]] == list(range(len(HOSTILE)))


def test_overview_town_csv_download_is_neutralised(tmp_path, monkeypatch):
    """覆盖总览 → 分镇统计 CSV: a town named like a formula is handed out as text (the bytes the button serves)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import AppTest

    from grids.workspace import GpkgWorkspace
    from tests.test_app import ACCOUNTS, APP, tiny_workspace
    from ui.auth import session_for

    path = tiny_workspace(tmp_path / "ws.gpkg")
    ws = GpkgWorkspace(path)
    units = ws.read("admin_units")
    units.loc[units["level"] == "town", "name"] = FORMULAS[0]
    with ws.transaction(actor="test", action="恶意镇名") as tx:
        tx.replace("admin_units", units)
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    served: dict[str, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes) and filename:
            served[filename] = path_or_data
        return load(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(ACCOUNTS["leadership"])
    at.session_state["overview.tab"] = "分镇统计"
    at.run()
    assert not at.exception
    rows = list(csv.reader(io.StringIO(served["分镇统计.csv"].decode("utf-8-sig"), newline="")))
    cells = [c for row in rows for c in row]
    assert "'" + FORMULAS[0] in cells
    assert not [c for c in cells if runs_as_formula(c)]


# -- KML --------------------------------------------------------------------------------------------------------


def test_kml_is_valid_xml_and_carries_no_html(ws, tmp_path):
    out = tmp_path / "s1.kml"
    export.export_plan(ws, fmt="kml", out=out, staff_id="S1")
    root = ET.parse(out).getroot()  # valid XML, even with a BEL and a vertical tab in the data
    texts = [el.text or "" for el in root.iter() if el.tag in (f"{KML}name", f"{KML}description")]
    parsed = "\n".join(texts)
    for raw in (*RAW, "$[", "<a href", "<"):
        assert raw not in parsed, raw  # what Google Earth would render as HTML or expand as $[entity]
    names = {el.text for el in root.iter(f"{KML}name")}
    for s in HOSTILE:
        if "\r" not in s:
            assert text.html(strip_controls(s)) in names, s  # each head name, escaped: shown as text
    assert text.html(MATH) in names  # the grid name
    assert "响铃控制符" in names
    descriptions = [el.text for el in root.iter(f"{KML}description")]
    assert any(f"地址 {text.html(HOSTILE[4])}" in d for d in descriptions)  # an address, escaped
    assert root.find(f"{KML}Document/{KML}name").text.startswith(text.html(HOSTILE[7]))  # county in the title


# -- PDF / PNG (matplotlib) -------------------------------------------------------------------------------------


def test_pdf_export_with_dollar_names_renders(ws, tmp_path):
    out = tmp_path / "s1.pdf"
    export.export_plan(ws, fmt="pdf", out=out, staff_id="S1")
    assert out.read_bytes().startswith(b"%PDF-") and out.stat().st_size > 10_000
    if shutil.which("pdftotext") is None:
        return
    import subprocess

    shown = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "$\\alpha^{2}$" in shown and "${window.__pwned=1}周八" in shown


def test_png_export_with_dollar_names_renders(ws, tmp_path):
    from PIL import Image

    out = tmp_path / "b2.png"
    export.export_plan(ws, fmt="png", out=out, branch_id="B2")  # B2 is named MATH; its grids G3, G4
    with Image.open(out) as im:
        assert im.size == (1753, 1240)


def test_map_text_is_drawn_literally(ws):
    """Every text on the printed map is plain text (no mathtext) and shows the names character for character."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    grids = make_grids().to_crs(32650)
    grids["name"] = [MATH, HOSTILE[7], HOSTILE[9], HOSTILE[2]]
    hh = make_households().to_crs(32650)
    branches = gpd.GeoDataFrame({"name": [MATH]}, geometry=[shapely.Point(119.001, 43.001)], crs=4490)
    family = render.cjk_font()
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": [family, "DejaVu Sans"]}):
        fig = Figure(figsize=(11.69, 8.27))
        FigureCanvasAgg(fig)
        render._draw_page(fig, hh, household_status(hh), grids, branches.to_crs(32650),
                          title=f"{HOSTILE[7]} {MATH}", subtitle=f"客户经理 {HOSTILE[10]}", label_grids=True)
        fig.canvas.draw()
    shown = []
    for t in fig.findobj(Text):
        s, math = t._preprocess_math(t.get_text())
        assert math is False, t.get_text()
        shown.append(s)
    assert f"{HOSTILE[7]} {MATH}" in shown and f"客户经理 {HOSTILE[10]}" in shown
    assert shown.count(MATH) == 2 and HOSTILE[7] in shown  # a grid label and the branch label


# -- offline HTML map -------------------------------------------------------------------------------------------


def test_html_export_carries_no_raw_markup(ws, tmp_path):
    from grids import maps

    if not (maps.STATIC_DIR / "vendor").is_dir():
        pytest.skip("vendored Leaflet assets missing (scripts/fetch_assets.sh)")
    out = tmp_path / "plan.html"
    export.export_plan(ws, fmt="html", out=out)
    html = out.read_text(encoding="utf-8")
    for raw in RAW:
        assert raw not in html, raw
    assert html.count("</script>") == html.count("<script")  # no name ends a script block early
    assert "49吴九" not in html  # '{{7*7}}吴九' in a grid name is data, not a template (Jinja in folium/branca)


# -- connection strings (issue #12 item 7) ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
    ("postgresql+psycopg://grids:p%40ss@db:5432/county?schema=ws_1", "postgresql+psycopg://grids:***@db:5432/county?schema=ws_1"),
    ("postgres://u:se/cr@t@h/db", "postgres://u:***@h/db"),
    ("postgresql://u@h/db?password=secret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("host=h password=secret dbname=db", "host=h password=*** dbname=db"),
    ("postgresql://u@h/db?application_name=a@b", "postgresql://u@h/db?application_name=a@b"),
    ("workspace/demo.gpkg", "workspace/demo.gpkg"),
])
def test_mask_url(url, shown):
    assert text.mask_url(url) == shown
    assert "secret" not in text.mask_url(url) and "se/cr" not in text.mask_url(url)


def _sidebar_script() -> None:
    from types import SimpleNamespace

    import streamlit as st

    from ui import data, sidebar

    names = st.session_state["names"]
    original = data.workspace_info  # the module is shared with every later test: put it back
    data.workspace_info = lambda target, rev: {"meta": {"county_name": names[0], "county_code": "150422"}}
    try:
        account = SimpleNamespace(display_name=names[1], username="b01", role="branch_manager",
                                  role_name="网点负责人", branch_id="B01", staff_id=None, can=lambda permission: False)
        sidebar.account_panel(SimpleNamespace(account=account), ws=None)
        sidebar.workspace_panel("postgresql://grids:secret@db.internal:5432/county", 3)
    finally:
        data.workspace_info = original


def test_sidebar_shows_names_literally_and_no_password():
    from streamlit.testing.v1 import AppTest

    names = ["[点此领取补贴](http://127.0.0.1:9/phish)", "**加粗**_斜体_ :red[红色] $x$"]
    at = AppTest.from_function(_sidebar_script, default_timeout=30)
    at.session_state["names"] = names
    at.run()
    assert not at.exception
    markdown = [m.value for m in at.sidebar.markdown]
    assert f"**{text.markdown(names[1])}**" in markdown
    assert any(m.startswith(f"**{text.markdown(names[0])}**") for m in markdown)
    shown = " ".join(str(e.proto) for e in at.sidebar)
    assert "网点负责人" in shown and "secret" not in shown  # the workspace URL is not on the sidebar at all


def test_imported_control_characters_are_removed_and_the_whitelist_xlsx_builds(empty_ws, tmp_path):
    """Attack finding: a name with \\x0b or ESC was stored raw and broke the 集中授信 page's Excel whitelist."""
    import io

    import openpyxl

    from grids.credit import whitelist_bytes
    from grids.ingest import import_file

    src = tmp_path / "hh.csv"
    src.write_text("户号,户主,客户类型,村代码\nH1,张\x0b三\x1b[31m,农牧户,150422100201\nH2,李四,农牧户,150422100201\n",
                   encoding="utf-8")
    report = import_file(empty_ws, "households", src, actor="test")
    assert report.rejected == 0 and any("控制字符" in w for w in report.warnings)
    names = empty_ws.read("households")["head_name"].tolist()
    assert names == ["张三[31m", "李四"]
    book = openpyxl.load_workbook(io.BytesIO(whitelist_bytes(
        pd.DataFrame({"hh_id": ["H1"], "head_name": ["王\x01五"], "granted_amount": [5e4]}), fmt="xlsx")))
    assert [c.value for c in book.active["B"]] == ["户主", "王五"]
