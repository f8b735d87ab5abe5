"""Import of user files: each format, Chinese headers and encodings, per-row validation, rejects, atomicity."""

from __future__ import annotations

import csv

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.__main__ import main
from grids.crs import to_gk, wgs84_to_gcj02
from grids.errors import ValidationError
from grids.ingest import import_file, read_table, recognise_columns, validate
from grids.workspace import GpkgWorkspace, Workspace

# A toy county: 0.6° x 0.6° box split into two towns; town 100 has villages 201 (south) and 202 (north),
# village 201 has groups 001 (west) and 002 (east); town 101 has village 201 with group 001.
COUNTY = shapely.box(119.0, 43.5, 119.6, 44.1)
UNITS = [
    ("150422", "county", None, "巴林左旗", COUNTY),
    ("150422100", "town", "150422", "林东镇", shapely.box(119.0, 43.5, 119.3, 44.1)),
    ("150422101", "town", "150422", "隆昌镇", shapely.box(119.3, 43.5, 119.6, 44.1)),
    ("150422100201", "village", "150422100", "东山村", shapely.box(119.0, 43.5, 119.3, 43.8)),
    ("150422100202", "village", "150422100", "西山村", shapely.box(119.0, 43.8, 119.3, 44.1)),
    ("150422101201", "village", "150422101", "隆昌村", shapely.box(119.3, 43.5, 119.6, 44.1)),
    ("150422100201001", "group", "150422100201", "一组", shapely.box(119.0, 43.5, 119.15, 43.8)),
    ("150422100201002", "group", "150422100201", "二组", shapely.box(119.15, 43.5, 119.3, 43.8)),
    ("150422101201001", "group", "150422101201", "一组", shapely.box(119.3, 43.5, 119.6, 44.1)),
]
V201, G001, G002 = "150422100201", "150422100201001", "150422100201002"

HEADER = ["户号", "户主姓名", "身份证号码", "联系电话", "客户类型", "村代码", "组代码", "经度", "纬度", "授信金额（元）"]


def id_no(first17: str) -> str:
    """An ID number with its GB 11643 check character (weights 2^(17-i) mod 11)."""
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(first17))
    return first17 + "10X98765432"[total % 11]


GOOD_ID = "11010519491231002X"  # the standard's own example
assert id_no("11010519491231002") == GOOD_ID


@pytest.fixture
def ws(tmp_path) -> Workspace:
    w = GpkgWorkspace.create(tmp_path / "ws.gpkg", county_code="150422", county_name="巴林左旗")
    admin = gpd.GeoDataFrame(
        [u[:4] for u in UNITS], columns=["code", "level", "parent_code", "name"],
        geometry=[u[4] for u in UNITS], crs=4490,
    )
    with w.transaction(actor="test", action="准备") as tx:
        tx.replace("admin_units", admin)
    return w


def households(n: int = 3, **over) -> gpd.GeoDataFrame:
    data = {
        "hh_id": [f"H{i + 1}" for i in range(n)],
        "head_name": ["张三", "李四", "王五", "赵六"][:n],
        "segment": ["农牧户"] * n,
        "village_code": [V201] * n,
        "group_code": [G001] * n,
    }
    data.update(over)
    return gpd.GeoDataFrame(data, geometry=[shapely.Point(119.05 + 0.01 * i, 43.6) for i in range(n)], crs=4490)


def write_csv(path, rows, header=HEADER, encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_rejects(path) -> list[dict[str, str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf"), "rejects CSV must start with a UTF-8 BOM for Excel"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# -- CSV with Chinese headers and bad rows ---------------------------------------------------------------


def test_csv_chinese_headers_bad_rows_go_to_rejects_with_row_column_reason(ws, tmp_path):
    rows = [
        ["H01", "张三", GOOD_ID, "13800001111", "农牧户", V201, G001, "119.05", "43.60", "50000"],       # 2 ok
        ["H02", "李四", "110105194912310021", "13800001112", "农牧户", V201, G001, "119.06", "43.60", ""],  # 3 id
        ["H03", "王五", "", "1380000111", "农牧户", V201, G001, "119.07", "43.60", ""],                   # 4 phone
        ["H04", "赵六", "", "", "外星人", V201, G001, "119.08", "43.60", ""],                            # 5 segment
        ["H05", "钱七", "", "", "农牧户", V201, G001, "119.09", "43.60", "-5"],                          # 6 amount
        ["H06", "孙八", "", "", "农牧户", "150422999201", "", "", "", ""],                               # 7 village
        ["H07", "周九", "", "", "农牧户", V201, G001, "120.50", "43.60", ""],                            # 8 outside
        ["H08", "吴十", "", "", "个体工商户", V201, G002, "", "", "5万"],                                 # 9 ok codes
        ["H09", "郑一", "", "", "农牧户", V201, G001, "119.10", "43.60", ""],                            # 10 dup
        ["H09", "郑二", "", "", "农牧户", V201, G001, "119.11", "43.60", ""],                            # 11 dup
        ["H10", "冯三", "", "", "农牧户", V201, G001, "东经119", "43.60", ""],                           # 12 lon
        ["", "陈四", "", "", "农牧户", V201, G001, "119.12", "43.60", ""],                               # 13 no id
    ]
    src = write_csv(tmp_path / "村登记表.csv", rows)
    out = tmp_path / "rejects.csv"
    report = import_file(ws, "households", src, rejects_path=out)

    got = {(r["行"], r["列"], r["原因"]) for r in read_rejects(out)}
    assert got == {
        ("3", "身份证号码", "身份证号无效"),
        ("4", "联系电话", "联系电话格式错误"),
        ("5", "客户类型", "客户类型不在可选值中"),
        ("6", "授信金额（元）", "授信金额为负数"),
        ("7", "村代码", "村代码不在行政区划中"),
        ("8", "经度/纬度", "位置在县界以外"),
        ("10", "户号", "户号在文件中重复"),
        ("11", "户号", "户号在文件中重复"),
        ("12", "经度", "坐标不是数字"),
        ("13", "户号", "缺少户号"),
    }
    first = read_rejects(out)[0]
    assert first["文件"] == "村登记表.csv" and first["户号"] == "H02" and first["户主姓名"] == "李四"
    assert first["修正方法"]  # every reject says how to fix it
    stored = ws.read("households")
    assert stored["hh_id"].tolist() == ["H01", "H08"]
    assert stored["granted_amount"].tolist() == [50000.0, 50000.0]  # "5万" is 50,000 yuan
    assert stored.geometry.iloc[1] is None and stored["village_code"].iloc[1] == V201
    assert report.read == 12 and report.imported == 2 and report.rejected == 10
    summary = report.summary()
    assert "读取 12 行" in summary and "导入 2 行" in summary and "拒绝 10 行" in summary
    assert "户号在文件中重复 2 行" in summary


def test_csv_in_gbk_is_detected_and_said(ws, tmp_path):
    src = write_csv(tmp_path / "gbk.csv", [["H1", "张三", "", "", "农牧户", V201, G001, "119.05", "43.6", ""]],
                    encoding="gbk")
    report = import_file(ws, "households", src)
    assert ws.read("households")["head_name"].tolist() == ["张三"]
    assert any("GBK" in w for w in report.warnings)


def test_group_code_must_belong_to_the_village_and_exist(ws, tmp_path):
    rows = [
        ["H1", "甲", "", "", "农牧户", "150422100202", G001, "", "", ""],  # group of another village
        ["H2", "乙", "", "", "农牧户", V201, "150422100201009", "", "", ""],  # group not in hierarchy
        ["H3", "丙", "", "", "农牧户", "", G002, "", "", ""],  # village inferred from group
    ]
    report = import_file(ws, "households", write_csv(tmp_path / "g.csv", rows))
    reasons = {(int(r), c) for r, c in zip(report.rejects["行"], report.rejects["原因"], strict=True)}
    assert reasons == {(2, "组代码不属于该村"), (3, "组代码不在行政区划中")}
    stored = ws.read("households")
    assert stored[["hh_id", "village_code", "group_code"]].values.tolist() == [["H3", V201, G002]]


def test_duplicate_ids_against_the_workspace_are_rejected_when_appending(ws, tmp_path):
    first = tmp_path / "a.gpkg"
    households(2).to_file(first, layer="households", engine="pyogrio")
    assert import_file(ws, "households", first).imported == 2
    second = tmp_path / "b.gpkg"
    households(3).to_file(second, layer="households", engine="pyogrio")
    report = import_file(ws, "households", second)
    assert report.rejects["行"].tolist() == [1, 2] and set(report.rejects["原因"]) == {"户号已存在于工作区"}
    assert ws.read("households")["hh_id"].tolist() == ["H1", "H2", "H3"]


def test_point_outside_county_beyond_tolerance_only(ws, tmp_path):
    # 119.6° is the east edge; at 43.8°N 0.001° of longitude is ~80 m, 0.01° ~800 m.
    frame = households(2)
    frame.geometry = [shapely.Point(119.601, 43.8), shapely.Point(119.61, 43.8)]
    report = validate(frame, target_layer="households", workspace=ws, source_name="x")
    assert report.accepted["hh_id"].tolist() == ["H1"]
    assert report.rejects["原因"].tolist() == ["位置在县界以外"] and report.rejects["行"].tolist() == [2]


# -- formats ---------------------------------------------------------------------------------------------


def test_geopackage_layer_is_chosen_by_target_name_and_chinese_kept(ws, tmp_path):
    src = tmp_path / "export.gpkg"
    households(3).to_file(src, layer="households", engine="pyogrio")
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[shapely.Point(119.1, 43.6)], crs=4490).to_file(
        src, layer="other", engine="pyogrio")
    report = import_file(ws, "households", src)
    assert report.imported == 3 and report.rejected == 0
    stored = ws.read("households")
    assert stored["head_name"].tolist() == ["张三", "李四", "王五"]
    assert stored.geometry.iloc[0].equals(shapely.Point(119.05, 43.6))


def test_geopackage_with_several_layers_needs_a_name_for_other_targets(ws, tmp_path):
    src = tmp_path / "two.gpkg"
    households(1).to_file(src, layer="a", engine="pyogrio")
    households(1).to_file(src, layer="b", engine="pyogrio")
    with pytest.raises(ValidationError, match="--layer-name"):
        import_file(ws, "households", src)
    assert import_file(ws, "households", src, layer_name="b").imported == 1


@pytest.mark.filterwarnings("ignore:Column names longer than 10")
@pytest.mark.filterwarnings("ignore:Normalized/laundered field name")
def test_shapefile_with_cpg_and_projected_crs_is_reprojected(ws, tmp_path):
    src = tmp_path / "hh.shp"
    households(2).to_crs(4549).to_file(src, encoding="utf-8", engine="pyogrio")
    assert (tmp_path / "hh.cpg").exists()
    report = import_file(ws, "households", src)
    stored = ws.read("households")
    assert report.imported == 2 and stored["head_name"].tolist() == ["张三", "李四"]
    assert stored.geometry.iloc[0].distance(shapely.Point(119.05, 43.6)) < 1e-8
    assert stored["village_code"].tolist() == [V201, V201]  # "village_co" after the 10-character cut


@pytest.fixture
def gbk_shapefile(tmp_path):
    frame = gpd.GeoDataFrame(
        {"户号": ["H1", "H2"], "户主": ["张三", "李四"], "客户类型": ["农牧户", "社区居民"], "村代码": [V201, V201]},
        geometry=[shapely.Point(119.05, 43.6), shapely.Point(119.06, 43.6)], crs=4490,
    )
    src = tmp_path / "gbk.shp"
    frame.to_file(src, encoding="gbk", engine="pyogrio")
    (tmp_path / "gbk.cpg").unlink()
    assert "张三".encode("gbk") in (tmp_path / "gbk.dbf").read_bytes()
    return src


def test_gbk_shapefile_without_cpg_with_declared_encoding(ws, gbk_shapefile):
    report = import_file(ws, "households", gbk_shapefile, encoding="gbk")
    assert report.imported == 2
    assert ws.read("households")[["hh_id", "head_name", "segment"]].values.tolist() == [
        ["H1", "张三", "普通农牧户"], ["H2", "李四", "社区居民"]]


def test_gbk_shapefile_without_cpg_is_detected_and_said(ws, gbk_shapefile):
    report = import_file(ws, "households", gbk_shapefile)
    assert report.imported == 2
    assert ws.read("households")["head_name"].tolist() == ["张三", "李四"]
    assert any(".cpg" in w and "GBK" in w for w in report.warnings)


def test_geojson_branches_replace_and_kind_checked(ws, tmp_path):
    src = tmp_path / "branches.geojson"
    gpd.GeoDataFrame(
        {"网点编号": ["B01", "B02"], "网点名称": ["林东营业部", "隆昌信用社"], "类型": ["营业部", "银行"]},
        geometry=[shapely.Point(119.2, 43.9), shapely.Point(119.4, 43.7)], crs=4326,
    ).to_file(src, driver="GeoJSON", engine="pyogrio")
    before = ws.path.read_bytes()
    report = import_file(ws, "branches", src)
    assert report.mode == "replace"
    assert report.rejects[["行", "列", "原因"]].values.tolist() == [[2, "类型", "类型不在可选值中"]]
    # replacing a layer with part of a file would lose what it replaces: nothing is written
    assert ws.path.read_bytes() == before and not report.written
    assert "未导入任何数据" in " ".join(report.warnings)
    report = import_file(ws, "branches", src, mode="append")
    assert ws.read("branches")[["branch_id", "name", "kind"]].values.tolist() == [["B01", "林东营业部", "营业部"]]


def test_xlsx_with_title_row_numeric_codes_and_row_numbers(ws, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.append(["林东镇东山村农户信息表"])  # row 1: a title, as village registers have
    sheet.append(["户号", "户主姓名", "客户类型", "村代码", "组代码", "经度", "纬度", "是否建档"])  # row 2
    sheet.append(["H1", "张三", "农牧户", int(V201), int(G001), 119.05, 43.6, "是"])  # row 3
    sheet.append([])  # row 4 blank
    sheet.append(["H2", "李四", "农牧户", int(V201), int(G001), 119.06, 43.6, "也许"])  # row 5
    src = tmp_path / "register.xlsx"
    wb.save(src)
    report = import_file(ws, "households", src)
    stored = ws.read("households")
    assert stored[["hh_id", "village_code", "group_code", "archived"]].values.tolist() == [["H1", V201, G001, True]]
    assert report.rejects[["行", "列", "原因"]].values.tolist() == [[5, "是否建档", "是否建档无法识别"]]
    assert any("第 2 行被当作表头" in w for w in report.warnings)


def test_kml_points_read_with_mapping(ws, tmp_path):
    src = tmp_path / "hh.kml"
    frame = households(2).rename(columns={"hh_id": "Name"})
    frame.to_file(src, driver="KML", engine="pyogrio")
    report = import_file(ws, "households", src, mapping={"Name": "hh_id"})
    assert report.imported == 2
    stored = ws.read("households")
    assert stored["hh_id"].tolist() == ["H1", "H2"] and stored["segment"].tolist() == ["普通农牧户", "普通农牧户"]
    assert stored.geometry.iloc[1].distance(shapely.Point(119.06, 43.6)) < 1e-7


# -- coordinates -----------------------------------------------------------------------------------------


def test_gcj02_declared_points_land_300_to_600_m_away(ws, tmp_path):
    lon, lat = 119.3, 43.95
    src = write_csv(tmp_path / "amap.csv", [["H1", "张三", "", "", "农牧户", "", "", f"{lon}", f"{lat}", ""]])
    report = import_file(ws, "households", src, coords="gcj02")
    got = ws.read("households").geometry.iloc[0]
    pair = gpd.GeoSeries([got, shapely.Point(lon, lat)], crs=4490)
    gk = to_gk(pair)
    assert 300 < gk.iloc[0].distance(gk.iloc[1]) < 600
    back = wgs84_to_gcj02(got.x, got.y)  # converting back lands on the input within a centimetre
    assert back == pytest.approx((lon, lat), abs=1e-7)
    assert any("GCJ-02" in w for w in report.warnings)


def test_undeclared_csv_coordinates_are_assumed_wgs84_and_said(tmp_path):
    src = write_csv(tmp_path / "p.csv", [["H1", "张三", "", "", "农牧户", "", "", "119.3", "43.95", ""]])
    table = read_table(src)
    assert table.frame.geometry.iloc[0].equals(shapely.Point(119.3, 43.95))
    assert any("WGS84" in w for w in table.warnings)


def test_swapped_lon_lat_columns_are_swapped_back(tmp_path):
    src = write_csv(tmp_path / "p.csv", [["H1", "甲", "", "", "农牧户", "", "", "43.95", "119.3", ""]])
    table = read_table(src)
    assert table.frame.geometry.iloc[0].equals(shapely.Point(119.3, 43.95))


def test_projected_numbers_without_crs_are_an_unknown_crs(tmp_path):
    src = write_csv(tmp_path / "p.csv", [["H1", "甲", "", "", "农牧户", "", "", "40512345.1", "4867000.2", ""]])
    with pytest.raises(ValidationError, match="坐标系未知"):
        read_table(src)


# -- geometry --------------------------------------------------------------------------------------------


def test_invalid_polygon_repaired_when_safe_bowtie_rejected(tmp_path):
    # a box with a zero-width spike: invalid, make_valid drops the spike, area unchanged -> repaired
    spike = shapely.Polygon([(119.0, 43.5), (119.3, 43.5), (119.3, 43.8), (119.2, 43.8), (119.2, 43.9),
                             (119.2, 43.8), (119.0, 43.8)])
    bowtie = shapely.Polygon([(119.3, 43.5), (119.6, 43.8), (119.6, 43.5), (119.3, 43.8)])
    assert not spike.is_valid and not bowtie.is_valid
    frame = gpd.GeoDataFrame(
        {"code": ["150422", "150422100", "150422101"], "level": ["county", "town", "town"]},
        geometry=[COUNTY, spike, bowtie], crs=4490,
    )
    report = validate(frame, target_layer="admin_units", workspace=None, source_name="t.gpkg")
    assert report.accepted["code"].tolist() == ["150422", "150422100"]
    assert report.accepted.geometry.iloc[1].is_valid
    assert report.accepted.geometry.iloc[1].area == pytest.approx(spike.area, rel=1e-9)
    assert report.repaired == 1 and any("修复" in w for w in report.warnings)
    assert report.rejects[["行", "原因"]].values.tolist() == [[3, "几何无效且无法安全修复"]]
    assert report.accepted["parent_code"].tolist() == [None, "150422"]  # inferred from the code


def test_wrong_geometry_type_rejected(ws):
    frame = households(2)
    frame.geometry = [shapely.Point(119.05, 43.6), shapely.LineString([(119.05, 43.6), (119.06, 43.6)])]
    report = validate(frame, target_layer="households", workspace=ws, source_name="x")
    assert report.accepted["hh_id"].tolist() == ["H1"]
    assert report.rejects["原因"].tolist() == ["几何类型错误"]


# -- strictness, atomicity, whole-file errors -------------------------------------------------------------


def test_strict_imports_nothing_when_a_row_is_rejected(ws, tmp_path):
    rows = [["H1", "甲", "", "", "农牧户", V201, G001, "", "", ""],
            ["H2", "乙", "", "", "火星人", V201, G001, "", "", ""]]
    src = write_csv(tmp_path / "s.csv", rows)
    before = ws.path.read_bytes()
    report = import_file(ws, "households", src, strict=True, rejects_path=tmp_path / "r.csv")
    assert not report.written and ws.path.read_bytes() == before
    assert [r["行"] for r in read_rejects(tmp_path / "r.csv")] == ["3"]
    assert "严格模式" in report.summary()


def test_failure_mid_write_leaves_workspace_byte_identical(ws, tmp_path, monkeypatch):
    import grids.workspace.base

    src = tmp_path / "admin.gpkg"
    frame = gpd.GeoDataFrame([u[:4] for u in UNITS], columns=["code", "level", "parent_code", "name"],
                             geometry=[u[4] for u in UNITS], crs=4490)
    frame.to_file(src, engine="pyogrio")
    before = ws.path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(grids.workspace.base, "encode_geometries", boom)  # runs after the DELETE of replace
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(ws, "admin_units", src)
    assert ws.path.read_bytes() == before
    assert ws.count("admin_units") == len(UNITS)


def test_whole_file_errors_raise_and_change_nothing(ws, tmp_path):
    before = ws.path.read_bytes()
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header_only.csv").write_text("户号,客户类型\n", encoding="utf-8")
    (tmp_path / "nothing.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "no_segment.csv").write_text("户号,姓名\nH1,张三\n", encoding="utf-8")
    good = tmp_path / "good.gpkg"
    households(2).to_file(good, engine="pyogrio")
    (tmp_path / "truncated.gpkg").write_bytes(good.read_bytes()[:3000])
    cases = {"empty.csv": "空", "header_only.csv": "只有表头", "nothing.csv": "没有一列",
             "no_segment.csv": "缺少必需的列", "truncated.gpkg": "无法读取"}
    for name, text in cases.items():
        with pytest.raises(ValidationError, match=text) as err:
            import_file(ws, "households", tmp_path / name)
        assert name in str(err.value) and "修正方法" in str(err.value)
    assert ws.path.read_bytes() == before


def test_import_is_audited_as_one_change(ws, tmp_path):
    src = tmp_path / "hh.gpkg"
    households(2).to_file(src, engine="pyogrio")
    rev = ws.revision
    import_file(ws, "households", src, actor="planner1")
    assert ws.revision == rev + 1
    audit = ws.read("audit")
    last = audit.iloc[-1]
    assert last["action"] == "导入" and last["actor"] == "planner1"
    assert '"file": "hh.gpkg"' in last["detail"] and '"imported": 2' in last["detail"]


def test_recognise_columns_prefers_specific_alias_and_explicit_mapping():
    assert recognise_columns(["姓名", "户主姓名", "手机号"], "households") == {"户主姓名": "head_name", "手机号": "phone"}
    assert recognise_columns(["编号", "户主"], "households", mapping={"编号": "hh_id"}) == {
        "编号": "hh_id", "户主": "head_name"}
    assert recognise_columns([" 授信金额(元) ", "*户号"], "households") == {
        " 授信金额(元) ": "granted_amount", "*户号": "hh_id"}


def test_rejects_neutralise_formula_cells(tmp_path):
    frame = households(1, segment=["=HYPERLINK(\"http://x\")"])
    report = validate(frame, target_layer="households", workspace=None, source_name="x")
    path = report.write_rejects(tmp_path / "r.csv")
    row = read_rejects(path)[0]
    assert row["segment"].startswith("'=")


# -- CLI -------------------------------------------------------------------------------------------------


def test_cli_exit_codes_and_summary(ws, tmp_path, capsys, monkeypatch):
    from .conftest import cli_user

    user = ["--user", cli_user(ws, monkeypatch)]
    good = write_csv(tmp_path / "good.csv", [["H1", "甲", "", "", "农牧户", V201, G001, "", "", ""]])
    assert main(["import", str(ws.path), "households", str(good), *user]) == 0
    out = capsys.readouterr().out
    assert "读取 1 行，导入 1 行" in out

    bad = write_csv(tmp_path / "bad.csv", [["H2", "乙", "", "", "农牧户", V201, G001, "", "", ""],
                                           ["H3", "丙", "", "", "x", V201, G001, "", "", ""]])
    assert main(["import", str(ws.path), "households", str(bad), "--strict", *user]) == 1
    out = capsys.readouterr().out
    assert "严格模式" in out and "bad.rejects.csv" in out
    assert (tmp_path / "bad.rejects.csv").exists()
    assert ws.read("households")["hh_id"].tolist() == ["H1"]

    mapped = tmp_path / "mapped.csv"
    mapped.write_text("编号,类别,村\nH9,农牧户," + V201 + "\n", encoding="utf-8")
    rc = main(["import", str(ws.path), "households", str(mapped), "--map", "编号=hh_id", "类别=segment",
               "村=village_code", "--rejects", str(tmp_path / "r.csv"), *user])
    assert rc == 0 and ws.read("households")["hh_id"].tolist() == ["H1", "H9"]

    (tmp_path / "empty.csv").write_bytes(b"")
    assert main(["import", str(ws.path), "households", str(tmp_path / "empty.csv"), *user]) == 2
    assert "empty.csv" in capsys.readouterr().err


def test_rejects_file_columns_and_values_round_trip(ws, tmp_path):
    """The rejects CSV round-trips through pandas with the original headers after the five fixed columns."""
    src = write_csv(tmp_path / "x.csv", [["H1", "甲", "", "", "x", V201, G001, "", "", ""]])
    import_file(ws, "households", src, rejects_path=tmp_path / "r.csv")
    back = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig", dtype=str)
    assert back.columns.tolist() == ["文件", "行", "列", "原因", "修正方法", *HEADER]
    assert back["村代码"].tolist() == [V201]  # codes keep all their digits




def test_a_rejects_file_reimported_gives_the_text_as_typed_not_the_escape(ws, tmp_path):
    """Attack finding: the rejects file escapes formula-like cells with a leading ', and importing it back as the
    README says stored that ' in the data (户主姓名 “'=cmd…”)."""
    src = write_csv(tmp_path / "x.csv", [["H1", "=cmd|' /C calc'!A0", "", "", "x", V201, G001, "", "", ""],
                                         ["H2", "+1+1", "", "", "x", V201, G001, "", "", ""]])
    report = import_file(ws, "households", src, rejects_path=tmp_path / "r.csv")
    assert report.rejected == 2
    raw = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig", dtype=str)
    assert raw["户主姓名"].tolist() == ["'=cmd|' /C calc'!A0", "'+1+1"]  # safe to open in Excel
    fixed = raw.assign(客户类型="农牧户").drop(columns=["文件", "行", "列", "原因", "修正方法"])
    fixed.to_csv(tmp_path / "fixed.csv", index=False, encoding="utf-8-sig")
    again = import_file(ws, "households", tmp_path / "fixed.csv")
    assert again.imported == 2 and any("按原文读取" in w for w in again.warnings)
    names = ws.read("households").set_index("hh_id")["head_name"]
    assert names.to_dict() == {"H1": "=cmd|' /C calc'!A0", "H2": "+1+1"}
    # a name that merely starts with ' is kept as it is
    own = write_csv(tmp_path / "own.csv", [["H3", "'老王", "", "", "农牧户", V201, G001, "", "", ""]])
    import_file(ws, "households", own)
    assert ws.read("households").set_index("hh_id").loc["H3", "head_name"] == "'老王"

@pytest.mark.parametrize(("value", "ok"), [
    (GOOD_ID, True),
    (GOOD_ID.lower(), True),                 # a lower-case x is the same check character
    (id_no("15042219850704123"), True),
    ("110105194912310021", False),           # wrong check character
    (id_no("11010519490231002"), False),     # 31 February: right checksum, impossible birth date
    ("110105491231002", False),              # old 15-digit number
    ("1.1010519491231e+17", False),          # what Excel makes of a long number
])
def test_id_number_check(value, ok):
    from grids._validate import check_id_no

    norm, bad = check_id_no(pd.Series([value, None], dtype=object))
    assert bad.tolist() == [not ok, False]
    assert norm.iloc[0] == value.upper()


def test_staff_and_visits_refer_to_existing_records(ws, tmp_path):
    branches = gpd.GeoDataFrame({"branch_id": ["B01"], "name": ["林东营业部"]},
                                geometry=[shapely.Point(119.2, 43.9)], crs=4490)
    with ws.transaction(actor="test", action="准备") as tx:
        tx.replace("branches", branches)
        tx.append("households", households(1))
    staff = tmp_path / "staff.csv"
    staff.write_text("工号,姓名,所属网点,岗位\nS1,刘一,B01,客户经理\nS2,刘二,B99,客户经理\n", encoding="utf-8")
    report = import_file(ws, "staff", staff, mode="append")
    assert ws.read("staff")["staff_id"].tolist() == ["S1"]
    assert report.rejects[["行", "列", "原因"]].values.tolist() == [[3, "所属网点", "网点不存在"]]

    visits = tmp_path / "visits.csv"
    visits.write_text("户号,工号,走访日期,结果\nH1,S1,2019/3/5,已建档\nH9,S1,2019-03-06,未遇\n"
                      "H1,S1,2999-01-01,未遇\nH1,S1,昨天,未遇\n", encoding="utf-8")
    report = import_file(ws, "visits", visits)
    stored = ws.read("visits")
    assert stored["visited_on"].dt.strftime("%Y-%m-%d").tolist() == ["2019-03-05"]
    assert report.rejects[["行", "原因"]].values.tolist() == [
        [3, "户号不在工作区中"], [4, "走访日期在未来"], [5, "走访日期无法识别"]]


# -- identifiers that a spreadsheet stored as numbers (issue 12, item 10) ----------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (150422100201.0, "150422100201"),            # a code as an Excel number: its digits, no ".0"
    (13847600103.0, "13847600103"),
    (float(2**53 - 1), str(2**53 - 1)),          # the largest integer a double holds exactly
    (1.50422100201001e18, "1.50422100201001e+18"),  # beyond 2**53: kept scientific, refused in id columns
    (float(2**53 + 2), "9.007199254740994e+15"),
    (150422100201, "150422100201"),              # an int (another writer): exact
    (0.5, "0.5"),
])
def test_cell_text_of_spreadsheet_numbers(value, text):
    from grids.ingest.tabular import cell_text

    assert cell_text(value) == text


@pytest.mark.parametrize(("value", "text", "exact"), [
    ("150422100201.0", "150422100201", True),
    ("1.2345E+4", "12345", True),
    ("1.50422E+11", "1.50422E+11", False),       # six digits written for a twelve-digit code
    ("1.50422E+17", "1.50422E+17", False),
    ("9.007199254740994e+15", "9.007199254740994e+15", False),  # at or above 2**53: never trusted
    ("1.5E+0", "1.5E+0", False),                 # not a whole number
    ("H001", "H001", True),
    ("12E3X", "12E3X", True),                    # an id that merely contains an E
])
def test_number_as_id(value, text, exact):
    from grids._validate import number_as_id

    assert number_as_id(value) == (text, exact)


def test_ids_are_normalised_and_excel_numbers_refused_in_every_id_column(tmp_path):
    frame = households(3, hh_id=["ｈ１", "H2\u200b", "1.5E+18"], village_code=[V201 + ".0", "1.50422E+11", V201],
                       group_code=[None, None, None])
    report = validate(frame, target_layer="households", workspace=None, source_name="x.csv")
    assert report.accepted["hh_id"].tolist() == ["H1"]
    assert report.accepted["village_code"].tolist() == [V201]
    assert sorted(map(tuple, report.rejects[["行", "原因"]].values.tolist())) == [
        (2, "村代码被 Excel 存成了数字，位数已丢失"), (3, "户号被 Excel 存成了数字，位数已丢失")]
