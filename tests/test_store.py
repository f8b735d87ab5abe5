"""The GeoPackage workspace specifically: GDAL validity, geometry blobs, a failed transaction leaves the file
byte-identical, damaged files. The behaviour shared with PostGIS (round trip, transactions, revisions, audit) is
tested on both backends in tests/test_store_pg.py."""

import subprocess

import pandas as pd
import pytest
import shapely

from grids.errors import WorkspaceError
from grids.workspace import GpkgWorkspace
from grids.workspace.base import decode_geometries, encode_geometries

from .conftest import three_households, validate_gpkg


def test_geometry_blobs_round_trip():
    geoms = [shapely.Point(1, 2), shapely.LineString([(0, 0), (1, 1)]), None, shapely.box(0, 0, 1, 1)]
    back = decode_geometries(encode_geometries(geoms))
    assert back[0].equals(geoms[0]) and back[1].equals(geoms[1]) and back[2] is None and back[3].equals(geoms[3])


def test_failed_transaction_leaves_file_unchanged(empty_ws):
    empty_ws.write("households", three_households(), actor="t")
    before = empty_ws.path.read_bytes()
    with pytest.raises(RuntimeError), empty_ws.transaction(actor="t", action="坏的导入") as tx:
        tx.replace("households", three_households().iloc[:1])
        tx.append("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]}))
        raise RuntimeError("boom in the middle")
    assert empty_ws.path.read_bytes() == before
    assert len(empty_ws.read("households")) == 3
    assert len(empty_ws.read("staff")) == 0


def test_not_a_workspace_and_truncated(tmp_path, empty_ws):
    with pytest.raises(WorkspaceError, match="不存在"):
        GpkgWorkspace(tmp_path / "missing.gpkg")
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(empty_ws.path.read_bytes()[:1000])
    with pytest.raises(WorkspaceError):
        GpkgWorkspace(bad).read("households")


def test_gdal_validates_and_lists_layers(empty_ws):
    empty_ws.write("households", three_households(), actor="t")
    assert validate_gpkg(empty_ws.path) == []
    out = subprocess.run(["ogrinfo", "-ro", "-q", str(empty_ws.path)], capture_output=True, text=True,
                         check=True).stdout
    for name in ("admin_units", "households", "grids", "branches", "streets"):
        assert name in out


