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
from grids.workspace import GpkgWorkspace, Workspace
from tests.conftest import cli_user

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
    ws = GpkgWorkspace.create(path, county_code="150422", county_name="巴林左旗")
    layers = corpus.fixture_layers()
    with ws.transaction(actor="test", action="准备") as tx:
        for name in ("admin_units", "branches", "staff", "households"):
            tx.replace(name, layers[name])
    return path


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    dst = tmp_path / "ws.gpkg"
    shutil.copy(template, dst)
    return GpkgWorkspace(dst)


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


def test_undeclared_gcj02_refusal_says_how_far_and_cli_exits_2(ws, capsys, monkeypatch):

    src = BAD / "16_gcj02_undeclared.csv"
    user = ["--user", cli_user(ws, monkeypatch)]
    before = digest(ws.path)
    assert main(["import", str(ws.path), "households", str(src), *user]) == 2
    err = capsys.readouterr().err
    assert "GCJ-02" in err and "--coords gcj02" in err and src.name in err
    assert digest(ws.path) == before
    assert main(["import", str(ws.path), "households", str(src), "--coords", "gcj02", *user]) == 0
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


# --------------------------------------------------------------------------------------------------------
# issue 12, item 10: an import that cannot lose rows or hang
# --------------------------------------------------------------------------------------------------------


def _shapefile(path: Path, n: int) -> Path:
    rows = corpus._Rows(corpus.admin_units(), seed=21)
    frame = corpus._households_gdf([rows.row(i, f"HHP{i:04d}") for i in range(n)])
    frame = frame.rename(columns={"户号": "hh_id", "客户类型": "segment", "村代码": "village_co"})
    frame[["hh_id", "segment", "village_co", "geometry"]].to_file(path, encoding="utf-8", engine="pyogrio")
    return path


@pytest.mark.parametrize(("n_shp", "n_dbf"), [(5, 3), (3, 5)])
def test_shapefile_whose_shp_and_dbf_counts_differ_is_refused_naming_both(ws, tmp_path, capsys, monkeypatch,
                                                                         n_shp, n_dbf):
    """Geometries from one export, attributes from another: refused either way round, both counts named,
    nothing changed; the CLI exits 2 with a one-line error."""
    shp = _shapefile(tmp_path / "hh.shp", n_shp)
    other = _shapefile(tmp_path / "other" / "hh.shp", n_dbf) if (tmp_path / "other").mkdir() is None else None
    shutil.copy(other.with_suffix(".dbf"), shp.with_suffix(".dbf"))
    user = ["--user", cli_user(ws, monkeypatch)]
    before = digest(ws.path)
    with pytest.raises(ValidationError) as err:
        import_file(ws, "households", shp)
    text = str(err.value)
    assert f"（.shp）有 {n_shp} 条记录" in text and f"（.dbf）有 {n_dbf} 条" in text and "重新导出" in text
    assert digest(ws.path) == before
    assert main(["import", str(ws.path), "households", str(shp), *user]) == 2
    out = capsys.readouterr()
    assert "两者不一致" in out.err and "Traceback" not in out.err + out.out
    assert digest(ws.path) == before


def test_truncated_shp_without_index_counts_complete_records_only(ws, tmp_path):
    """A .shp cut in the middle of a record (and no .shx) counts only its complete records: refused."""
    shp = _shapefile(tmp_path / "hh.shp", 4)
    data = shp.read_bytes()
    shp.write_bytes(data[: len(data) - 10])
    shp.with_suffix(".shx").unlink()
    from grids.ingest import shapefile_counts

    assert shapefile_counts(shp) == (3, 4)
    with pytest.raises(ValidationError, match=r"有 3 条记录.*有 4 条"):
        import_file(ws, "households", shp)


def test_matching_shapefile_counts_import_every_row(ws, tmp_path):
    shp = _shapefile(tmp_path / "hh.shp", 4)
    from grids.ingest import shapefile_counts

    assert shapefile_counts(shp) == (4, 4)
    assert import_file(ws, "households", shp).imported == 4


def test_excel_number_ids_exact_ones_stored_as_text(ws):
    """Whole numbers Excel kept exactly come in as their digits (no ``.0``, no ``e+``); lost ones are rejected."""
    report = import_file(ws, "households", BAD / "40_excel_number_ids.xlsx")
    hh = ws.read("households", where="fid > 20").set_index("hh_id")
    assert sorted(hh.index) == ["150422100201001", "HHN0005", "HHN0006"]
    assert hh.loc["150422100201001", "village_code"].isdigit() and len(hh.loc["150422100201001", "village_code"]) == 12
    assert hh.loc["HHN0005", "phone"] == "13847600103"
    ids = hh.reset_index()[["hh_id", "id_no", "phone", "village_code", "group_code"]].to_numpy().ravel()
    assert not any("e+" in str(v).lower() or str(v).endswith(".0") for v in ids if v is not None)
    fix = report.rejects.set_index("行")["修正方法"]
    assert fix[3].startswith("把该列设置为文本格式后重新导出") and fix[4].startswith("把该列设置为文本格式后重新导出")


def test_lookalike_ids_are_one_id_and_full_width_id_numbers_work(ws, tmp_path):
    """Case, full-width and zero-width variants of one 户号 are duplicates (in the file and against the
    workspace); ids and ID numbers are stored normalised, so a later import of a variant finds them."""
    report = import_file(ws, "households", BAD / "41_lookalike_ids.csv")
    assert report.imported == 2
    hh = ws.read("households", where="fid > 20").set_index("hh_id")
    assert sorted(hh.index) == ["HH60004", "HH60005"]
    idn = corpus.person(107)[1]
    assert hh.loc["HH60004", "id_no"] == idn.upper()  # typed in full width, lower-case x
    again = tmp_path / "again.csv"
    rows = corpus._Rows(corpus.admin_units(), seed=2)
    again.write_text("户号,客户类型,村代码\n" + "\n".join(
        f"{h},农牧户,{rows.row(0, 'x')[5]}" for h in ("ｈｈ６０００４", "hh60005\u200b", "HH60099")) + "\n",
        encoding="utf-8")
    second = import_file(ws, "households", again)
    assert second.imported == 1
    assert set(second.rejects["原因"]) == {"户号已存在于工作区"} and sorted(second.rejects["行"]) == [2, 3]


def test_full_width_digits_in_id_number_do_not_crash(ws, tmp_path):
    from grids._validate import check_id_no, id_no_ok

    idn = corpus.person(3)[1]
    full = corpus._full_width(idn)
    assert id_no_ok(full)
    norm, bad = check_id_no(pd.Series([full, "１２３", "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨"], dtype=object))  # Arabic-Indic: invalid
    assert norm.iloc[0] == idn.upper() and bad.tolist() == [False, True, True]


# -- size guards -------------------------------------------------------------------------------------------


def _small_xlsx(path: Path, rows: int = 3) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    sheet = wb.active
    sheet.append(["户号", "客户类型", "村代码"])
    for i in range(rows):
        sheet.append([f"HHQ{i:05d}", "农牧户", "150422100201"])
    wb.save(path)
    return path


def _rewrite_member(path: Path, member: str, edit) -> None:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        items = [(i, zf.read(i.filename)) for i in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for info, data in items:
            if info.filename == member:
                edit(zf, info)
            else:
                zf.writestr(info, data)


def test_xlsx_zip_bomb_is_refused_before_parsing_in_under_2_s(ws, tmp_path, monkeypatch):
    """A 3 MB .xlsx whose sheet unpacks to 600 MB is refused from the zip directory alone: openpyxl never runs."""
    import openpyxl

    src = _small_xlsx(tmp_path / "bomb.xlsx")
    sheet = "xl/worksheets/sheet1.xml"
    with __import__("zipfile").ZipFile(src) as zf:
        xml = zf.read(sheet)

    def inflate(zf, info):
        with zf.open(sheet, "w", force_zip64=True) as out:
            head, tail = xml.split(b"<sheetData>")
            out.write(head + b"<sheetData>")
            chunk = b"<row/>" * (2**20 // 6)
            for _ in range(600):
                out.write(chunk)
            out.write(tail)

    _rewrite_member(src, sheet, inflate)
    assert src.stat().st_size < 3 * 2**20
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("openpyxl was called"))
    before = digest(ws.path)
    start = time.perf_counter()
    with pytest.raises(ValidationError, match=r"解压后有 6\d\d MB.*超过上限 200 MB") as err:
        import_file(ws, "households", src)
    assert time.perf_counter() - start < 2.0
    assert "另存为 CSV" in str(err.value)
    assert digest(ws.path) == before


def test_xlsx_declared_rows_above_the_cap_refused_before_parsing(ws, tmp_path, monkeypatch):
    import openpyxl

    src = _small_xlsx(tmp_path / "tall.xlsx")
    sheet = "xl/worksheets/sheet1.xml"
    with __import__("zipfile").ZipFile(src) as zf:
        xml = zf.read(sheet)
    assert b'<dimension ref="A1:C4" />' in xml
    _rewrite_member(src, sheet, lambda zf, info: zf.writestr(info, xml.replace(b"A1:C4", b"A1:C250001")))
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("openpyxl was called"))
    with pytest.raises(ValidationError, match=r"工作表 “Sheet” 有 250,001 行，超过上限 200,000 行"):
        import_file(ws, "households", src)


def test_xlsx_with_a_lying_dimension_loses_no_row(ws, tmp_path):
    """The dimension says 3 rows, the sheet holds 150: every row is read (openpyxl alone would stop at 3)."""
    src = _small_xlsx(tmp_path / "liar.xlsx", rows=150)
    sheet = "xl/worksheets/sheet1.xml"
    with __import__("zipfile").ZipFile(src) as zf:
        xml = zf.read(sheet)
    _rewrite_member(src, sheet, lambda zf, info: zf.writestr(info, xml.replace(b"A1:C151", b"A1:C4")))
    report = import_file(ws, "households", src)
    assert report.read == 150 and report.imported == 150


def test_xlsx_with_a_lying_dimension_stops_at_the_row_cap(ws, tmp_path, monkeypatch):
    """The dimension says 3 rows, the sheet holds more than the cap: reading stops there, with the error."""
    import grids.ingest.xlsx

    monkeypatch.setattr(grids.ingest.xlsx, "XLSX_MAX_ROWS", 20)
    src = _small_xlsx(tmp_path / "liar.xlsx", rows=150)
    sheet = "xl/worksheets/sheet1.xml"
    with __import__("zipfile").ZipFile(src) as zf:
        xml = zf.read(sheet)
    _rewrite_member(src, sheet, lambda zf, info: zf.writestr(info, xml.replace(b"A1:C151", b"A1:C4")))
    before = digest(ws.path)
    with pytest.raises(ValidationError, match="超过 20 行"):
        import_file(ws, "households", src)
    assert digest(ws.path) == before
    assert import_file(ws, "households", _small_xlsx(tmp_path / "ok.xlsx", rows=15)).read == 15


def _circle(vertices: int) -> shapely.Polygon:
    """A circle of radius 0.2° around (119.3, 43.9) with ``vertices`` coordinates (the last closes the ring)."""
    t = np.linspace(0, 2 * np.pi, vertices - 1, endpoint=False)
    ring = np.column_stack([119.3 + 0.2 * np.cos(t), 43.9 + 0.2 * np.sin(t)])
    return shapely.Polygon(np.vstack([ring, ring[:1]]))


def test_polygon_above_2e5_vertices_is_simplified_with_a_warning(ws, tmp_path):
    src = tmp_path / "county.gpkg"
    big = _circle(300_001)
    assert shapely.get_num_coordinates(big) == 300_001
    gpd.GeoDataFrame({"code": ["150422"], "name": ["巴林左旗"], "level": ["county"]}, geometry=[big],
                     crs=4490).to_file(src, engine="pyogrio")
    report = import_file(ws, "admin_units", src)
    assert report.written and report.rejected == 0
    note = next(w for w in report.warnings if "已简化" in w)
    assert "300,001 →" in note and "超过 200,000" in note
    stored = ws.read("admin_units").geometry.iloc[0]
    assert shapely.get_num_coordinates(stored) <= 200_000
    assert stored.area == pytest.approx(big.area, rel=1e-6)


def test_polygon_above_the_hard_cap_is_rejected_quickly():
    from grids.ingest import validate

    frame = gpd.GeoDataFrame({"code": ["150422", "150422100"], "level": ["county", "town"]},
                             geometry=[_circle(1_000_005), _circle(1_000)], crs=4490)
    start = time.perf_counter()
    report = validate(frame, target_layer="admin_units", workspace=None, source_name="big.gpkg")
    assert time.perf_counter() - start < 10
    assert report.rejects[["行", "原因"]].values.tolist() == [[1, "几何顶点过多"]]
    assert "1,000,005 个顶点" in report.rejects["修正方法"].iloc[0]
    assert report.rejects["几何（WKT）"].str.len().max() <= 32_000


# -- the rejects file, the audit, a workspace that cannot be written ---------------------------------------


def test_rejects_csv_neutralises_every_formula_start_and_bare_cr(ws, tmp_path):
    src = tmp_path / "evil.csv"
    rows = corpus._Rows(corpus.admin_units(), seed=5)
    payloads = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "正常\r=1+1", "\t=1"]
    with src.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["户号", "客户类型", "村代码", "=备注"])
        for i, p in enumerate(payloads):
            w.writerow([f"HHR{i:04d}", p, rows.row(0, "x")[5], p])
    report = import_file(ws, "households", src, rejects_path=tmp_path / "r.csv")
    assert report.rejected == len(payloads)
    data = report.rejects_csv()
    assert (tmp_path / "r.csv").read_bytes() == data
    assert b"\r=" not in data
    with (tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0][-1] == "'=备注"
    cells = [c for line in lines for c in line]
    for cell in cells:
        for part in cell.split("\n"):
            assert not part.startswith(("=", "+", "-", "@", "\t", "\r")) or cell.startswith("'"), cell


def test_import_audit_names_file_sha256_rows_layer_mode_and_coords(ws, tmp_path):
    shp = _shapefile(tmp_path / "hh.shp", 3)
    report = import_file(ws, "households", shp, coords="wgs84", actor="planner1")
    detail = __import__("json").loads(ws.read("audit")["detail"].iloc[-1])
    note = next(d for d in detail if "sha256" in d)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("hh.*")}
    assert note["file"] == "hh.shp" and note["sha256"] == files["hh.shp"] and note["files"] == files
    assert set(files) >= {"hh.shp", "hh.shx", "hh.dbf", "hh.prj"}
    assert (note["layer"], note["mode"], note["coords"]) == ("households", "append", "wgs84")
    assert (note["read"], note["imported"], note["rejected"]) == (3, 3, 0) == (report.read, report.imported, 0)
    assert ws.read("audit")["actor"].iloc[-1] == "planner1"


def test_import_by_an_account_needs_the_permission_and_is_audited_under_it(ws, tmp_path):
    from grids.auth import Account
    from grids.errors import PermissionDeniedError

    shp = _shapefile(tmp_path / "hh.shp", 2)
    before = digest(ws.path)
    with pytest.raises(PermissionDeniedError):
        import_file(ws, "households", shp, account=Account("b01", "branch_manager"), actor="admin")
    assert digest(ws.path) == before
    import_file(ws, "households", shp, account=Account("planner1", "planner"), actor="someone-else")
    assert ws.read("audit")["actor"].iloc[-1] == "planner1"


@pytest.mark.parametrize(("error", "expected"), [
    ("database or disk is full", "磁盘已满"),
    ("attempt to write a readonly database", "只读"),
    ("database disk image is malformed", "已损坏"),
])
def test_workspace_write_failure_is_one_chinese_line_and_changes_nothing(ws, tmp_path, monkeypatch, capsys,
                                                                        error, expected):
    import sqlite3

    import grids.workspace.base
    from grids.errors import WorkspaceError

    def fail(*args, **kwargs):
        raise sqlite3.OperationalError(error)

    monkeypatch.setattr(grids.workspace.base, "encode_geometries", fail)  # inside the write, after the first statements
    shp = _shapefile(tmp_path / "hh.shp", 2)
    user = ["--user", cli_user(ws, monkeypatch)]
    before = digest(ws.path)
    with pytest.raises(WorkspaceError, match=expected) as err:
        import_file(ws, "households", shp)
    assert "\n" not in str(err.value) and "修正方法" in str(err.value)
    assert digest(ws.path) == before
    assert main(["import", str(ws.path), "households", str(shp), *user]) == 2
    out = capsys.readouterr()
    assert expected in out.err and "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1
    assert digest(ws.path) == before


def test_read_only_workspace_file_gives_a_one_line_error(ws, tmp_path, monkeypatch):
    """The workspace opened read-only (as a file without write permission is, for a non-root user)."""
    import sqlite3

    import grids.workspace.gpkg
    from grids.errors import WorkspaceError

    def read_only(self):
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60, isolation_level=None)

    monkeypatch.setattr(grids.workspace.gpkg.GpkgWorkspace, "_connect", read_only)
    before = digest(ws.path)
    with pytest.raises(WorkspaceError, match="只读"):
        import_file(ws, "households", _shapefile(tmp_path / "hh.shp", 2))
    assert digest(ws.path) == before


def test_corrupted_workspace_page_gives_a_one_line_error_and_exit_2(ws, tmp_path, capsys, monkeypatch):
    """Pages of the households table overwritten mid-file: a one-line Chinese error, no traceback."""
    import sqlite3

    user = ["--user", cli_user(ws, monkeypatch)]

    with sqlite3.connect(ws.path) as con:
        pages = [p for (p,) in con.execute("SELECT pageno FROM dbstat WHERE name = 'households'")]
        size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    with ws.path.open("r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * size)
            fh.write(bytes(range(256)) * (size // 256))
    src = tmp_path / "hh.csv"
    src.write_text("户号,客户类型,村代码\nZZ1,农牧户,150422100201\n", encoding="utf-8")
    before = digest(ws.path)
    assert main(["import", str(ws.path), "households", str(src), *user]) == 2
    out = capsys.readouterr()
    assert "已损坏" in out.err and "Traceback" not in out.err + out.out and len(out.err.strip().splitlines()) == 1
    assert digest(ws.path) == before


def test_an_imported_register_opens_its_credit_events(ws, tmp_path):
    """A register's 签约/可用额度/贷款余额 become opening events in the import's own transaction: check finds the
    households and the events agreeing, and the signed customer can be served from there."""
    from grids import credit_events as ce

    lines = (BAD / "16_gcj02_undeclared.csv").read_text(encoding="utf-8").splitlines()[:3]
    rows = [lines[0] + ",是否签约,可用额度,贷款余额", lines[1] + ",是,40000,15000", lines[2] + ",否,0,0"]
    src = tmp_path / "register.csv"
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = len(ce.read_events(ws))
    report = import_file(ws, "households", src, coords="gcj02")
    assert report.written and report.imported == 2
    events = ce.read_events(ws)
    mine = events[events["hh_id"] == "HHD0000"]
    assert len(events) == before + 2 and sorted(mine["kind"]) == sorted([ce.SIGN, ce.OPENING])
    assert ce.project(mine).loc["HHD0000", "balance"] == 15000.0
    assert not (events["hh_id"] == "HHD0001").any()  # unsigned and owing nothing: no event
    assert ce.check_projection(ws).empty


def test_an_unclosed_quote_that_swallows_the_file_names_its_row_in_chinese(tmp_path):
    """A quote left open reads the rest of the file as one cell until csv's 131,072-character limit: the
    message names the row the quote opens in and the likely cause, not csv's English text."""
    from grids.ingest import read_table

    path = tmp_path / "农户.csv"
    path.write_text("户号,姓名\nH1,张三\nH2,\"李四\n" + "".join(f"H{i},某某\n" for i in range(3, 20_000)),
                    encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        read_table(path)
    assert (err.value.file, err.value.row) == ("农户.csv", 3)
    assert "引号" in (err.value.fix or "") and not re.search(r"[A-Za-z]{4,}", str(err.value).replace("农户.csv", ""))
