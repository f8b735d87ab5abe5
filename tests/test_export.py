"""Exports for a staff member, read back: xlsx, gpkg, kml, png, pdf, html; masking and formula injection."""

from __future__ import annotations

import json
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely

from grids import export, render
from grids.__main__ import main
from grids.errors import ValidationError
from tests.conftest import validate_gpkg
from tests.test_coverage import build_workspace

KML = "{http://www.opengis.net/kml/2.2}"


@pytest.fixture
def ws(empty_ws):
    build_workspace(empty_ws)
    return empty_ws


def test_masking():
    assert export.mask_id_no("150422198001011234") == "150422********1234"
    assert export.mask_phone("13812345678") == "138****5678"
    assert export.mask_id_no(None) == "" and export.mask_phone(float("nan")) == ""


def test_walking_order_is_a_nearest_neighbour_tour():
    # five points on a line, shuffled; from the west end the tour walks east, then the one without a point
    xs = [119.04, 119.00, 119.03, 119.01, 119.02]
    hh = gpd.GeoDataFrame({"hh_id": ["a", "b", "c", "d", "e", "f"], "group_code": [None] * 6},
                          geometry=[shapely.Point(x, 43.0) for x in xs] + [None], crs=4490)
    assert export.walking_order(hh, start=shapely.Point(118.99, 43.0)).tolist() == [1, 3, 4, 2, 0, 5]
    assert export.walking_order(hh, start=shapely.Point(119.05, 43.0)).tolist() == [0, 2, 4, 3, 1, 5]
    # the Hilbert fallback keeps every household exactly once
    hil = export.walking_order(hh, max_exact=2)
    assert sorted(hil.tolist()) == list(range(6)) and hil[-1] == 5


def test_xlsx_for_a_staff_member(ws, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "s1.xlsx"
    info = export.export_plan(ws, fmt="xlsx", out=out, staff_id="S1")
    assert info["grids"] == 2 and info["households"] == 3
    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "150422100201001", "150422100202001"]
    g1 = wb["150422100201001"]
    header = [c.value for c in g1[2]]
    assert header[:6] == ["序号", "户号", "户主姓名", "身份证号", "联系电话", "客户类型"]
    col = {h: i for i, h in enumerate(header)}
    rows = [[c.value for c in r] for r in g1.iter_rows(min_row=3)]
    # the branch B1 is at 119.001: h01 (119.005) before h02 (119.010)
    assert [r[col["户号"]] for r in rows] == ["h01", "h02"]
    assert rows[0][col["身份证号"]] == "150422********1000" and rows[0][col["联系电话"]] == "138****5670"
    assert rows[0][col["状态"]] == "已用信" and rows[1][col["状态"]] == "已授信"
    assert rows[0][col["最近走访"]] == "2019-03-04" and rows[0][col["所在村"]] == "甲村"
    summary = [[c.value for c in r] for r in wb["汇总"].iter_rows(min_row=5)]
    assert [r[2] for r in summary] == [2, 1]


def test_xlsx_neutralises_formula_injection(ws, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "s1.xlsx"
    export.export_plan(ws, fmt="xlsx", out=out, grid_code="150422100201001")
    cell = next(c for r in load_workbook(out).worksheets[1].iter_rows() for c in r
                if isinstance(c.value, str) and "calc" in c.value)
    assert cell.data_type == "s" and cell.value == "=cmd|' /C calc'!A0"
    with zipfile.ZipFile(out) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        xml = "".join(z.read(n).decode() for n in sheets)
        styles = z.read("xl/styles.xml").decode()
    assert "<f>" not in xml  # stored as a string, not a formula
    assert "<is><t>=cmd|' /C calc'!A0</t></is>" in xml
    assert 'quotePrefix="1"' in styles


def test_xlsx_unmasked_is_audited(ws, tmp_path):
    from openpyxl import load_workbook

    rev = ws.revision
    export.export_plan(ws, fmt="xlsx", out=tmp_path / "u.xlsx", staff_id="S1", unmask=True, actor="admin")
    values = {c.value for r in load_workbook(tmp_path / "u.xlsx").worksheets[1].iter_rows() for c in r}
    assert "150422198001011000" in values
    assert ws.revision == rev  # an audit-only record: no data changed
    last = ws.read("audit").iloc[-1]
    assert last["actor"] == "admin" and "明文" in last["action"] and "xlsx" in last["detail"]


def test_gpkg_export_is_valid(ws, tmp_path):
    import pyogrio

    out = tmp_path / "plan.gpkg"
    export.export_plan(ws, fmt="gpkg", out=out, staff_id="S2")
    layers = dict(pyogrio.list_layers(out).tolist())
    assert set(layers) == {"grids", "branches", "households", "staff"}
    hh = gpd.read_file(out, layer="households", engine="pyogrio")
    assert sorted(hh["hh_id"]) == ["h04", "h10"] and hh.crs.to_epsg() == 4490
    assert hh["id_no"].str.contains(r"\*{8}").all()
    grids = gpd.read_file(out, layer="grids", engine="pyogrio")
    assert grids["grid_id"].tolist() == ["G3"] and grids.geom_type.tolist() == ["MultiPolygon"]
    assert validate_gpkg(out) == []


def test_kml_export_parses(ws, tmp_path):
    out = tmp_path / "s1.kml"
    export.export_plan(ws, fmt="kml", out=out, staff_id="S1")
    root = ET.parse(out).getroot()
    assert root.tag == f"{KML}kml"
    folders = root.findall(f"{KML}Document/{KML}Folder")
    assert [f.findtext(f"{KML}name") for f in folders] == ["网格 甲村网格", "网格 乙村一组网格"]
    placemarks = root.findall(f".//{KML}Placemark")
    # 2 grid polygons + 2 households with points (h03 is placed by its group code, it has no point)
    assert len(placemarks) == 4
    assert len(root.findall(f".//{KML}Polygon")) == 2
    text = out.read_text(encoding="utf-8")
    assert "150422********1000" in text and "150422198001011000" not in text
    coords = root.find(f".//{KML}Point/{KML}coordinates").text
    assert coords == "119.0050000,43.0050000,0"


def _no_glyph_warnings(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    glyph = [str(w.message) for w in caught if "Glyph" in str(w.message) or "missing from" in str(w.message)]
    assert glyph == []
    return result


def test_png_map_renders_chinese(ws, tmp_path):
    from PIL import Image

    out = tmp_path / "s1.png"
    _no_glyph_warnings(export.export_plan, ws, fmt="png", out=out, staff_id="S1")
    with Image.open(out) as im:
        assert im.size == (1753, 1240)  # A4 landscape (11.69 × 8.27 in) at 150 dpi
        pixels = np.asarray(im.convert("RGB"))
    # household markers in the status colours are drawn (已用信 blue #1f77b4, 已授信 green #2ca02c)
    for rgb in ((0x1F, 0x77, 0xB4), (0x2C, 0xA0, 0x2C)):
        assert (np.abs(pixels.astype(int) - rgb).sum(axis=2) < 10).any()


def test_cjk_glyphs_really_render():
    """A title in Chinese draws ink with our font; with DejaVu only it would warn 'Glyph … missing'."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    family = render.cjk_font()
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": [family]}):
        fig = Figure(figsize=(2, 1))
        FigureCanvasAgg(fig)
        fig.text(0.1, 0.4, "客户分布地图", fontsize=14)
        fig.canvas.draw()
        ink = (np.asarray(fig.canvas.buffer_rgba())[:, :, :3] < 128).sum()
    assert ink > 100
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}):
        fig = Figure(figsize=(2, 1))
        FigureCanvasAgg(fig)
        fig.text(0.1, 0.4, "客户", fontsize=14)
        with pytest.warns(UserWarning, match="missing from font"):
            fig.canvas.draw()


def test_missing_cjk_font_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(render, "CJK_FONT_FILES", (str(tmp_path / "none.ttc"),))
    monkeypatch.delenv("GRIDS_CJK_FONT", raising=False)
    render.cjk_font.cache_clear()
    try:
        with pytest.raises(render.FontMissingError, match="fonts-noto-cjk"):
            render.cjk_font()
    finally:
        render.cjk_font.cache_clear()


def test_pdf_map_has_territory_and_grid_pages(ws, tmp_path):
    out = tmp_path / "s1.pdf"
    _no_glyph_warnings(export.export_plan, ws, fmt="pdf", out=out, staff_id="S1")
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages == 3  # the territory, then its two grids


def test_html_export(ws, tmp_path):
    from grids import maps

    if not (maps.STATIC_DIR / "vendor").is_dir():
        with pytest.raises(ValidationError, match="fetch_assets"):
            export.export_plan(ws, fmt="html", out=tmp_path / "m.html", staff_id="S1")
        return
    out = tmp_path / "m.html"
    export.export_plan(ws, fmt="html", out=out, staff_id="S1")
    html = out.read_text(encoding="utf-8")
    assert json.dumps("甲村网格")[1:-1] in html  # the grid names are in the inlined GeoJSON
    assert "<script src=" not in html and "<link rel=\"stylesheet\" href=" not in html  # all inlined
    assert "150422198001011000" not in html


def test_scope_is_required_and_validated(ws, tmp_path):
    with pytest.raises(ValidationError, match="--staff"):
        export.export_plan(ws, fmt="xlsx", out=tmp_path / "x.xlsx")
    with pytest.raises(ValidationError, match="S1、S2"):
        export.export_plan(ws, fmt="xlsx", out=tmp_path / "x.xlsx", staff_id="S9")


def test_export_cli(ws, tmp_path, capsys):
    out = tmp_path / "cli.kml"
    assert main(["export", str(ws.path), "--format", "kml", "--out", str(out), "--staff", "S2"]) == 0
    assert out.exists() and "已导出 kml" in capsys.readouterr().out
    assert main(["export", str(ws.path), "--format", "xlsx", "--out", str(out)]) == 2
