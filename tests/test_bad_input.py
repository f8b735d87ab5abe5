"""Bad input: every file of the corpus ``tests/data/bad/`` (re-made by ``tests/data/make_bad_corpus.py``).

Each file is imported into a fresh copy of a small workspace on the real 巴林左旗 outline. Every case checks:
a clear error (a :class:`ValidationError` naming the file and the fix) or per-row rejects naming file, row,
column and fix, exactly the ones listed here; only :class:`GridsError` subclasses escape; nothing is silently
dropped (rows read == imported + rejected, and "read" is counted here independently of the importer); the
workspace is byte-for-byte unchanged (and keeps its revision) whenever nothing was imported; no ID number or
phone number appears in an error message, the warnings, the summary or the audit trail.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from grids.__main__ import main
from grids.errors import GridsError, ValidationError
from grids.ingest import detect_gcj02, import_file
from grids.store import Workspace

DATA = Path(__file__).resolve().parent / "data"
BAD = DATA / "bad"
sys.path.insert(0, str(DATA))
import make_bad_corpus as corpus  # noqa: E402

AMOUNT = "授信金额（元）"
GEOM = "几何"
LONLAT = "经度/纬度"


@dataclass
class Case:
    """One corpus file and what importing it must give."""

    file: str
    layer: str = "households"
    error: str | None = None                       # regex the ValidationError must match
    rejects: set[tuple[int, str, str]] = field(default_factory=set)  # (row, column, reason)
    imported: int = 0
    warning: str | None = None                     # regex one of the warnings must match
    kwargs: dict = field(default_factory=dict)
    exact: bool = True                             # False: the reject set is not pinned (see the case)

    def __str__(self) -> str:
        return self.file + "".join(f"-{k}={v}" for k, v in self.kwargs.items())


CASES = [
    # -- unusable files: a clear error, nothing changed -------------------------------------------------------
    Case("01_empty_0bytes.csv", error="0 字节"),
    Case("02_header_only.csv", error="只有表头"),
    Case("03_blank_lines_only.csv", error="文件是空的"),
    Case("04_no_header_row.csv", error="第一行看起来是数据而不是表头"),
    Case("05_missing_required_column.csv", error=r"缺少必需的列 客户类型（segment）"),
    Case("06_binary_garbage.csv", error="既不是 UTF-8 也不是 GBK"),
    Case("19_no_prj_lonlat.dbf", error="Shapefile 的附属文件"),
    Case("20_no_prj_projected.shp", error="没有坐标系.*坐标也不像经纬度"),
    Case("27_truncated.gpkg", error="无法读取.*被截断"),
    Case("28_two_layers.gpkg", error="2 个图层.*--layer-name"),
    Case("29_not_a_geopackage.gpkg", error="无法读取"),
    Case("30_households.zip", error="不直接读取压缩包"),
    Case("34_html_renamed.xlsx", error="其实是网页"),
    Case("35_old_excel.xls", error="旧版 Excel"),
    # -- GCJ-02 not declared: refused, and said by how much; declared: imported --------------------------------
    Case("16_gcj02_undeclared.csv", error=r"像是 GCJ-02（高德）坐标，与本县边界相差约 [3-7]\d0 米.*--coords gcj02"),
    Case("16_gcj02_undeclared.csv", imported=300, kwargs={"coords": "gcj02"}),
    Case("17_gcj02_undeclared_rim.geojson", error=r"像是 GCJ-02（高德）坐标.*县界"),
    Case("17_gcj02_undeclared_rim.geojson", imported=120, kwargs={"coords": "gcj02"}),
    Case("18_wgs84_declared_gcj02.csv", error="声明为 GCJ-02，但这些坐标像是 GPS", kwargs={"coords": "gcj02", "strict": True}),
    # declared by the user: imported, with the warning; which rim points end up > 200 m outside is not pinned
    Case("18_wgs84_declared_gcj02.csv", warning="声明为 GCJ-02，但这些坐标像是 GPS", kwargs={"coords": "gcj02"},
         imported=-1, exact=False),
    # -- encodings and layout --------------------------------------------------------------------------------
    Case("07_gbk.csv", imported=3, warning="不是 UTF-8 编码，已按 GBK 读取"),
    Case("08_utf8_bom_crlf.csv", imported=3),
    Case("21_gbk_no_cpg.shp", imported=3, warning="没有 .cpg 文件.*GBK"),
    Case("19_no_prj_lonlat.shp", imported=3, warning="没有坐标系信息，坐标按 WGS84"),
    Case("13_swapped_lon_lat.csv", imported=4, warning="两列似乎填反了"),
    Case("33_merged_title_rows.xlsx", imported=3, warning="第 3 行被当作表头，跳过了它上面的 2 行标题",
         rejects={(8, "客户类型", "缺少客户类型"), (8, "村代码", "无法定位：既没有坐标也没有村/组代码")}),
    Case("38_ragged_rows.csv", imported=1,
         rejects={(3, "（整行）", "字段数多于表头"), (4, "村代码", "无法定位：既没有坐标也没有村/组代码")}),
    # -- per-row problems ------------------------------------------------------------------------------------
    Case("09_duplicate_ids.csv", imported=1, rejects={
        (3, "户号", "户号在文件中重复"), (4, "户号", "户号在文件中重复"), (5, "户号", "户号已存在于工作区")}),
    Case("10_codes_not_in_hierarchy.csv", imported=1, rejects={
        (3, "村代码", "村代码不在行政区划中"), (4, "组代码", "组代码不在行政区划中"), (5, "村代码", "村代码格式错误"),
        (6, "村代码", "村代码被 Excel 存成了数字，位数已丢失"), (7, "组代码", "组代码不属于该村")}),
    Case("11_absurd_amounts.csv", imported=2, rejects={
        (2, AMOUNT, "授信金额为负数"), (3, AMOUNT, "授信金额过大"), (4, AMOUNT, "授信金额过大"),
        (5, AMOUNT, "授信金额不是数字"), (6, AMOUNT, "授信金额不是数字")}),
    Case("12_excel_scientific_ids.csv", imported=1, rejects={
        (2, "身份证号码", "身份证号被 Excel 存成了数字，位数已丢失"),
        (3, "联系电话", "联系电话被 Excel 存成了数字，位数已丢失")}),
    Case("14_nan_coordinates.csv", imported=2, rejects={
        (3, "经度", "坐标不是数字"), (4, "经度", "坐标不是数字"), (5, "经度", "坐标超出经纬度范围"),
        (6, "纬度", "经纬度只填了一个"), (8, "经度", "坐标不是数字")}),
    Case("15_lon_lat_out_of_range.csv", imported=2, rejects={
        (3, "经度", "坐标超出经纬度范围"), (4, "纬度", "坐标超出经纬度范围"), (5, LONLAT, "位置在县界以外"),
        (6, LONLAT, "位置在县界以外"), (7, LONLAT, "位置在县界以外")}),
    Case("22_wrong_geometry_type.geojson", rejects={(r, GEOM, "几何类型错误") for r in (1, 2, 3)}),
    Case("23_mixed_geometry_types.geojson", imported=3, rejects={(r, GEOM, "几何类型错误") for r in (3, 4, 5)}),
    Case("24_admin_spike_repairable.geojson", layer="admin_units", imported=10, warning="修复了 1 个无效面"),
    Case("25_admin_bowtie_unrepairable.geojson", layer="admin_units", kwargs={"strict": True},
         rejects={(3, GEOM, "几何无效且无法安全修复")}),
    Case("26_admin_as_points.geojson", layer="admin_units", rejects={(r, GEOM, "几何类型错误") for r in range(1, 11)}),
    Case("31_formula_injection.xlsx", imported=5, warning="1 个单元格是没有计算结果的公式",
         rejects={(5, "客户类型", "客户类型不在可选值中")}),
    Case("32_formula_injection.csv", imported=4, rejects={(5, "客户类型", "客户类型不在可选值中")}),
    Case("36_visits_future_dates.csv", layer="visits", imported=2, rejects={
        (3, "走访日期", "走访日期在未来"), (4, "走访日期", "走访日期在未来"), (5, "走访日期", "走访日期无法识别"),
        (6, "走访日期", "走访日期无法识别"), (8, "户号", "户号不在工作区中")}),
    Case("37_staff_bad_references.csv", layer="staff", rejects={
        (2, "工号", "工号在文件中重复"), (6, "工号", "工号在文件中重复"), (3, "所属网点", "网点不存在"),
        (4, "姓名", "缺少姓名"), (5, "岗位", "岗位不在可选值中")}),
    # -- issue 12, item 10: lost rows, ids mangled by Excel, look-alike ids -----------------------------------
    Case("39_shp_dbf_count_mismatch.shp", error=r"几何文件（\.shp）有 5 条记录，属性表（\.dbf）有 3 条，两者不一致"),
    Case("40_excel_number_ids.xlsx", imported=3, rejects={
        (3, "户号", "户号被 Excel 存成了数字，位数已丢失"), (4, "身份证号码", "身份证号被 Excel 存成了数字，位数已丢失")}),
    Case("41_lookalike_ids.csv", imported=2, rejects={
        *{(r, "户号", "户号在文件中重复") for r in range(2, 8)}, (8, "户号", "户号已存在于工作区")}),
]


# --------------------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The fixture workspace (hand-made hierarchy on the real outline), built once per module."""
    path = tmp_path_factory.mktemp("bad") / "template.gpkg"
    ws = Workspace.create(path, county_code="150422", county_name="巴林左旗")
    layers = corpus.fixture_layers()
    with ws.transaction(actor="test", action="准备") as tx:
        for name in ("admin_units", "branches", "staff", "households"):
            tx.replace(name, layers[name])
    return path


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    dst = tmp_path / "ws.gpkg"
    shutil.copy(template, dst)
    return Workspace(dst)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


PERSONAL = re.compile(r"\d{17}[\dXx]|1[3-9]\d{9}")


def personal_values(path: Path) -> set[str]:
    """ID numbers and phones present in a corpus file (in any text it holds), to look for in messages."""
    found: set[str] = set()
    for sib in path.parent.glob(path.stem + ".*"):
        raw = sib.read_bytes()
        if sib.suffix == ".xlsx":
            import openpyxl

            try:
                wb = openpyxl.load_workbook(sib, read_only=True)
                raw = "\n".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                                for c in row).encode()
                wb.close()
            except Exception:  # the HTML file renamed .xlsx
                pass
        for enc in ("utf-8", "gbk"):
            try:
                found |= set(PERSONAL.findall(raw.decode(enc)))
                break
            except UnicodeDecodeError:
                continue
    return found


def rows_in_file(path: Path) -> int:
    """Data rows of a file, counted without the importer: non-blank CSV lines below the header, features."""
    if path.suffix == ".csv":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gbk")
        recs = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
        return len(recs) - 1
    if path.suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True)
        recs = [r for r in wb.worksheets[0].iter_rows(values_only=True) if any(c is not None for c in r)]
        wb.close()
        header = next(i for i, r in enumerate(recs) if "户号" in r)
        return len(recs) - header - 1
    return int(pyogrio.read_info(path)["features"])


def check_rejects_file(path: Path, name: str) -> list[dict[str, str]]:
    """The rejects CSV: BOM for Excel, every line names file, row, column, reason and fix; no live formula."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    for line in lines:
        assert line["文件"] == name and line["行"].isdigit()
        assert line["列"] and line["原因"] and line["修正方法"]
        for value in line.values():
            assert not (value or "").startswith(("=", "+", "-", "@")), value
    return lines


# --------------------------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------------------------


def test_corpus_is_complete_and_small():
    files = [p for p in BAD.iterdir() if p.is_file()]
    assert len(files) >= 25
    assert sum(p.stat().st_size for p in files) < 600_000
    covered = {c.file for c in CASES}
    sidecars = {p.name for p in files if p.suffix in (".shx", ".cpg", ".prj", ".dbf") and p.name not in covered}
    assert {p.name for p in files} - covered - sidecars == set()  # every file is a case


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_file(case: Case, ws: Workspace, tmp_path):
    src = BAD / case.file
    before, rev = digest(ws.path), ws.revision
    count_before = ws.count(case.layer)
    rejects_out = tmp_path / "rejects.csv"
    personal = personal_values(src)
    try:
        report = import_file(ws, case.layer, src, rejects_path=rejects_out, actor="tester", **case.kwargs)
    except ValidationError as err:
        assert case.error, f"unexpected error: {err}"
        assert re.search(case.error, str(err)), str(err)
        assert err.file == src.name and src.name in str(err)
        assert err.fix and "修正方法" in str(err)
        assert not PERSONAL.findall(str(err)), str(err)
        assert digest(ws.path) == before and ws.revision == rev
        return
    except GridsError as err:  # pragma: no cover - a GridsError other than ValidationError is a failure too
        pytest.fail(f"{type(err).__name__}: {err}")
    assert case.error is None, f"expected an error matching {case.error!r}; got {report.summary()}"

    # nothing silently dropped
    assert report.read == rows_in_file(src)
    assert report.read == len(report.accepted) + report.rejected
    if report.written:
        assert report.imported == len(report.accepted) == report.read - report.rejected
    if case.imported >= 0:
        assert report.imported == case.imported
    # the rejects, and their file
    got = {(int(r), c, why) for r, c, why in report.rejects[["行", "列", "原因"]].itertuples(index=False)}
    if case.exact:
        assert got == case.rejects
    if len(report.rejects):
        lines = check_rejects_file(rejects_out, src.name)
        assert len(lines) == len(report.rejects)
    else:
        assert not rejects_out.exists()
    if case.warning:
        assert any(re.search(case.warning, w) for w in report.warnings), report.warnings
    # the workspace: unchanged unless rows were written, then one revision and exactly those rows
    if report.written:
        assert ws.revision == rev + 1
        expected = report.imported + (count_before if report.mode == "append" else 0)
        assert ws.count(case.layer) == expected
    else:
        assert digest(ws.path) == before and ws.revision == rev
    # no personal data in what is shown or logged (a file's SHA-256 in the audit may hold digit runs: not data)
    shown = "\n".join([report.summary(), *report.warnings, *ws.read("audit")["detail"].astype(str)])
    shown = re.sub(r"[0-9a-f]{64}", "<sha256>", shown)
    leaked = [v for v in personal if v in shown]
    assert not leaked and not PERSONAL.findall(shown), shown


# --------------------------------------------------------------------------------------------------------
# what the corpus cases bring in, looked at closely
# --------------------------------------------------------------------------------------------------------


def test_gcj02_declared_lands_in_the_declared_groups(ws):
    """With --coords gcj02 every point of the file lands back inside the group its row declares."""
    import_file(ws, "households", BAD / "16_gcj02_undeclared.csv", coords="gcj02")
    hh = ws.read("households", where="hh_id LIKE 'HHD%'")
    groups = ws.read("admin_units", where="level = 'group'").set_index("code")
    inside = [groups.geometry[g].covers(p) for g, p in zip(hh["group_code"], hh.geometry, strict=True)]
    assert len(hh) == 300 and all(inside)


def test_undeclared_gcj02_refusal_says_how_far_and_cli_exits_2(ws, capsys):
    src = BAD / "16_gcj02_undeclared.csv"
    before = digest(ws.path)
    assert main(["import", str(ws.path), "households", str(src)]) == 2
    err = capsys.readouterr().err
    assert "GCJ-02" in err and "--coords gcj02" in err and src.name in err
    assert digest(ws.path) == before
    assert main(["import", str(ws.path), "households", str(src), "--coords", "gcj02"]) == 0
    assert ws.count("households") == 20 + 300


def test_gcj02_declared_wgs84_by_the_user_warns_only(ws):
    """A user who says --coords wgs84 is believed: imported, with the warning (strict refuses)."""
    src = BAD / "16_gcj02_undeclared.csv"
    with pytest.raises(ValidationError, match="像是 GCJ-02"):
        import_file(ws, "households", src, coords="wgs84", strict=True)
    report = import_file(ws, "households", src, coords="wgs84")
    assert report.written and any("像是 GCJ-02" in w for w in report.warnings)


def test_detect_gcj02_numbers_on_hand_made_points(ws):
    """Points 300 m inside the east edge of a group: as WGS84 all fit; shifted to GCJ-02 (~550 m east) none do."""
    groups = ws.read("admin_units", where="level = 'group'")
    g = groups[groups["code"] == corpus.inner_groups(groups)["code"].iloc[0]].iloc[0]
    _, miny, maxx, maxy = g.geometry.bounds
    gk = gpd.GeoSeries([shapely.Point(maxx, (miny + maxy) / 2)], crs=4490).to_crs(4549)
    east = gpd.GeoSeries([shapely.Point(gk.iloc[0].x - 300, gk.iloc[0].y + dy) for dy in range(-500, 501, 100)],
                         crs=4549).to_crs(4490)
    assert all(g.geometry.covers(p) for p in east)
    codes = [g["code"]] * len(east)
    as_is = detect_gcj02(east, ws, group_codes=codes)
    assert (as_is.misfit, as_is.improved, as_is.suspect) == (0, 0, False)
    from grids.crs import wgs84_to_gcj02

    x, y = wgs84_to_gcj02(east.x.to_numpy(), east.y.to_numpy())
    shifted = detect_gcj02(gpd.GeoSeries(shapely.points(x, y), crs=4490), ws, group_codes=codes)
    assert (shifted.checked, shifted.misfit, shifted.misfit_shifted, shifted.improved) == (11, 11, 0, 11)
    assert shifted.suspect and 500 < shifted.offset_m < 700
    assert "--coords gcj02" in shifted.message()


def test_formula_text_is_kept_as_data_and_neutralised_in_exports(ws, tmp_path):
    import openpyxl

    from grids.export import write_xlsx

    report = import_file(ws, "households", BAD / "31_formula_injection.xlsx", rejects_path=tmp_path / "r.csv")
    hh = ws.read("households", where="hh_id LIKE 'HHI%'")
    names = dict(zip(hh["hh_id"], hh["head_name"], strict=True))
    assert names["HHI0001"] == '=HYPERLINK("http://example.invalid/","点我")'
    assert names["HHI0002"] == "+86 王五" and names["HHI0003"] == "@王六" and names["HHI0005"] == "-赵七"
    assert names["HHI0006"] == '=CONCAT("钱","八")'  # a formula without a stored result: its text, not a blank
    # the rejects file: the formula is quoted text
    line = check_rejects_file(report.rejects_path, "31_formula_injection.xlsx")[0]
    assert line["客户类型"] == "'=1+1"
    # the xlsx export: every such cell is a string cell with the quote prefix, never a formula
    grid = gpd.GeoDataFrame({"grid_id": ["G1"], "code": ["G1"], "name": ["网格一"]},
                            geometry=[ws.read("admin_units", where="level='county'").geometry.iloc[0]], crs=4490)
    located = pd.DataFrame({"grid_id": "G1"}, index=hh.index)
    out = write_xlsx(hh, grid, located, tmp_path / "list.xlsx")
    wb = openpyxl.load_workbook(out)
    cells = [c for row in wb["G1"].iter_rows() for c in row if isinstance(c.value, str)
             and c.value.startswith(("=", "+", "-", "@"))]
    assert {c.value for c in cells} >= {'=HYPERLINK("http://example.invalid/","点我")', "+86 王五", "@王六"}
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)


def test_gbk_shapefile_and_csv_come_out_in_chinese(ws):
    import_file(ws, "households", BAD / "21_gbk_no_cpg.shp")
    import_file(ws, "households", BAD / "07_gbk.csv")
    names = ws.read("households", where="hh_id LIKE 'HHG%' OR hh_id LIKE 'HH4%'")["head_name"].tolist()
    expected = [corpus.person(100 + k)[0] for k in range(3)]
    assert names == expected + expected


def test_repaired_polygon_has_the_same_area(ws):
    report = import_file(ws, "admin_units", BAD / "24_admin_spike_repairable.geojson")
    assert report.repaired == 1
    src = gpd.read_file(BAD / "24_admin_spike_repairable.geojson")
    stored = ws.read("admin_units").set_index("code")
    row = src.iloc[1]  # the town with the spike (feature 2)
    assert not row.geometry.is_valid and stored.geometry[row["code"]].is_valid
    assert stored.geometry[row["code"]].area == pytest.approx(row.geometry.area, rel=1e-9)


def test_no_header_error_does_not_show_the_data(ws):
    src = BAD / "04_no_header_row.csv"
    with pytest.raises(ValidationError) as err:
        import_file(ws, "households", src)
    first = src.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert not any(v in str(err.value) for v in first[:4])  # id, name, ID number, phone


# --------------------------------------------------------------------------------------------------------
# a 10^6-row file
# --------------------------------------------------------------------------------------------------------


def write_big_csv(path: Path, n: int, *, bad_every: int = 100) -> int:
    """``n`` household rows in the fixture's groups; every ``bad_every``-th has a negative amount."""
    groups = corpus.inner_groups(corpus.admin_units())
    rng = np.random.default_rng(5)
    k = rng.integers(0, len(groups), n)
    cx = shapely.get_x(shapely.centroid(groups["inner"].values))[k]
    cy = shapely.get_y(shapely.centroid(groups["inner"].values))[k]
    # centroids of the shrunk groups are inside their group (checked below for the ones used)
    codes = groups["code"].to_numpy()[k]
    amount = np.where(np.arange(n) % bad_every == bad_every - 1, "-1", "50000")
    frame = pd.DataFrame({"户号": [f"B{i:07d}" for i in range(n)], "客户类型": "农牧户", "村代码": [c[:12] for c in codes],
                          "组代码": codes, "经度": np.round(cx, 6), "纬度": np.round(cy, 6), "授信金额": amount})
    frame.to_csv(path, index=False)
    return int((amount == "-1").sum())


@pytest.mark.slow
def test_a_million_rows_import_row_wise(ws, tmp_path):
    n = 1_000_000
    src = tmp_path / "big.csv"
    bad = write_big_csv(src, n)
    start = time.perf_counter()
    report = import_file(ws, "households", src, rejects_path=tmp_path / "r.csv")
    seconds = time.perf_counter() - start
    print(f"\n10^6-row CSV ({src.stat().st_size / 1e6:.0f} MB): {seconds:.1f} s — {report.summary()}")
    assert report.read == n and report.rejected == bad and report.imported == n - bad
    assert report.reasons() == {"授信金额为负数": bad}
    assert ws.count("households") == 20 + n - bad
