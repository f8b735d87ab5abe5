"""The workspace: GeoPackage validity, round trip, transactions and revisions."""

import subprocess

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.errors import StaleRevisionError, ValidationError, WorkspaceError
from grids.model import LAYERS
from grids.store import Workspace, decode_geometries, encode_geometries

from .conftest import validate_gpkg


def _households():
    return gpd.GeoDataFrame(
        {
            "hh_id": ["H1", "H2", "H3"],
            "head_name": ["张三", "李四", "王五"],
            "segment": ["农牧户", "公职人员", "社区居民"],
            "archived": [True, False, True],
            "granted_amount": [50_000.0, 0.0, None],
            "using": [True, False, False],
        },
        geometry=[shapely.Point(119.39, 43.98), None, shapely.Point(119.40, 43.99)],
        crs=4490,
    )


def test_create_has_every_layer(empty_ws):
    assert set(LAYERS) <= set(empty_ws.layers())
    assert empty_ws.revision == 0
    assert empty_ws.meta["county_code"] == "150422"


def test_round_trip_keeps_values_types_and_empty_points(empty_ws):
    with empty_ws.transaction(actor="t", action="导入") as tx:
        tx.replace("households", _households())
    back = empty_ws.read("households")
    assert back["hh_id"].tolist() == ["H1", "H2", "H3"]
    assert back["head_name"].tolist() == ["张三", "李四", "王五"]
    assert back["archived"].tolist() == [True, False, True]
    assert back["using"].tolist() == [True, False, False]
    assert back["granted_amount"].iloc[0] == 50_000.0 and pd.isna(back["granted_amount"].iloc[2])
    assert back.geometry.iloc[1] is None
    assert back.geometry.iloc[0].equals(shapely.Point(119.39, 43.98))
    assert back.crs.to_epsg() == 4490


def test_polygons_are_stored_multi_and_read_back_single(empty_ws):
    poly = shapely.box(119, 43, 119.1, 43.1)
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])
    admin = gpd.GeoDataFrame({"code": ["150422", "150422100"], "level": ["county", "town"]},
                             geometry=[poly, multi], crs=4490)
    empty_ws.write("admin_units", admin, actor="t")
    back = empty_ws.read("admin_units")
    assert back.geometry.iloc[0].geom_type == "Polygon" and back.geometry.iloc[0].equals(poly)
    assert back.geometry.iloc[1].geom_type == "MultiPolygon"


def test_geometry_blobs_round_trip():
    geoms = [shapely.Point(1, 2), shapely.LineString([(0, 0), (1, 1)]), None, shapely.box(0, 0, 1, 1)]
    back = decode_geometries(encode_geometries(geoms))
    assert back[0].equals(geoms[0]) and back[1].equals(geoms[1]) and back[2] is None and back[3].equals(geoms[3])


def test_failed_transaction_leaves_file_unchanged(empty_ws):
    empty_ws.write("households", _households(), actor="t")
    before = empty_ws.path.read_bytes()
    with pytest.raises(RuntimeError), empty_ws.transaction(actor="t", action="坏的导入") as tx:
        tx.replace("households", _households().iloc[:1])
        tx.append("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]}))
        raise RuntimeError("boom in the middle")
    assert empty_ws.path.read_bytes() == before
    assert len(empty_ws.read("households")) == 3
    assert len(empty_ws.read("staff")) == 0


def test_duplicate_key_rolls_back_whole_transaction(empty_ws):
    import sqlite3

    rev = empty_ws.revision
    dup = _households()
    dup.loc[2, "hh_id"] = "H1"
    with pytest.raises(sqlite3.IntegrityError):
        empty_ws.write("households", dup, actor="t")
    assert empty_ws.revision == rev and empty_ws.count("households") == 0


def test_revision_and_audit(empty_ws):
    empty_ws.write("households", _households(), actor="alice", action="导入农户")
    assert empty_ws.revision == 1
    audit = empty_ws.read("audit")
    assert audit["actor"].tolist() == ["alice"] and audit["action"].tolist() == ["导入农户"]
    assert '"rows_after": 3' in audit["detail"].iloc[0]
    with (pytest.raises(StaleRevisionError, match="第 0 版"),
          empty_ws.transaction(actor="bob", action="改", expected_revision=0) as tx):
        tx.append("staff", pd.DataFrame({"staff_id": ["S1"]}))
    assert empty_ws.count("staff") == 0


def test_extra_columns_are_kept(empty_ws):
    df = pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"], "hired_year": [2015]})
    empty_ws.write("staff", df, actor="t")
    assert empty_ws.read("staff")["hired_year"].tolist() == [2015]


def test_read_where_and_unknown_layer(empty_ws):
    empty_ws.write("households", _households(), actor="t")
    assert empty_ws.read("households", where="segment = ?", params=["农牧户"])["hh_id"].tolist() == ["H1"]
    with pytest.raises(ValidationError, match="可用的图层"):
        empty_ws.read("nope")


def test_not_a_workspace_and_truncated(tmp_path, empty_ws):
    with pytest.raises(WorkspaceError, match="不存在"):
        Workspace(tmp_path / "missing.gpkg")
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(empty_ws.path.read_bytes()[:1000])
    with pytest.raises(WorkspaceError):
        Workspace(bad).read("households")


def test_gdal_validates_and_lists_layers(empty_ws):
    empty_ws.write("households", _households(), actor="t")
    assert validate_gpkg(empty_ws.path) == []
    out = subprocess.run(["ogrinfo", "-ro", "-q", str(empty_ws.path)], capture_output=True, text=True,
                         check=True).stdout
    for name in ("admin_units", "households", "grids", "branches", "streets"):
        assert name in out


def test_audit_only_record_keeps_revision(empty_ws):
    empty_ws.write("households", _households(), actor="t")
    with empty_ws.transaction(actor="leader", action="查看明文个人信息") as tx:
        tx.note("households", {"rows": 3})
    assert empty_ws.revision == 1
    audit = empty_ws.read("audit")
    assert audit["action"].tolist()[-1] == "查看明文个人信息" and audit["revision"].tolist() == [1, 1]
