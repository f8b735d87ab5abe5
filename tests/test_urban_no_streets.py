"""Towns without streets (issue 14): a 社区 that no street crosses gets urban grids from its (derived) territory,
split by household count like a rural village, with a warning that street-based grids need a street layer; the
street layer imports from any GIS file and the next build follows it; ``status`` lists the missing layer."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids.__main__ import main
from grids.build import NO_STREETS, build_grids, build_warnings, build_workspace_plan
from grids.plans import plan_info, read_grids
from grids.status import workspace_status

from .conftest import cli_user

GK = 4549  # CGCS2000 3° zone, central meridian 120°E: metres
X0, Y0 = 500_000.0, 4_870_000.0
TOWN, COMMUNITY, VILLAGE = "150422001", "150422001001", "150422001201"
MESSAGE = "该社区没有街道图层，网格按推算社区范围划分"


def _admin(*, derived: bool = True, groups: bool = False) -> gpd.GeoDataFrame:
    """A 街道 of two units: a 社区 (west, 1200 × 1000 m) and a village (east)."""
    rows = [(TOWN, "城关街道", "town", "街道", "150422", shapely.box(X0, Y0, X0 + 2400, Y0 + 1000)),
            (COMMUNITY, "新城社区", "village", "社区", TOWN, shapely.box(X0, Y0, X0 + 1200, Y0 + 1000)),
            (VILLAGE, "东村", "village", "村", TOWN, shapely.box(X0 + 1200, Y0, X0 + 2400, Y0 + 1000))]
    if groups:  # three group polygons tiling the 社区 (vertical strips)
        rows += [(f"{COMMUNITY}{k + 1:03d}", f"{k + 1}组", "group", None, COMMUNITY,
                  shapely.box(X0 + 400 * k, Y0, X0 + 400 * (k + 1), Y0 + 1000)) for k in range(3)]
    frame = pd.DataFrame(rows, columns=["code", "name", "level", "kind", "parent_code", "geometry"])
    frame["derived"] = derived
    frame["provisional_code"] = False
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=GK)


def _households(per_group: int = 80, *, village: int = 40) -> gpd.GeoDataFrame:
    """``per_group`` households in each of the 社区's three strips (by group code), ``village`` in the village."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(3):
        for i in range(per_group):
            x = X0 + 400 * k + rng.uniform(20, 380)
            rows.append((f"C{k}{i:03d}", COMMUNITY, f"{COMMUNITY}{k + 1:03d}",
                         shapely.Point(x, Y0 + rng.uniform(20, 980))))
    for i in range(village):
        rows.append((f"V{i:03d}", VILLAGE, None, shapely.Point(X0 + 1200 + rng.uniform(20, 1180),
                                                              Y0 + rng.uniform(20, 980))))
    frame = pd.DataFrame(rows, columns=["hh_id", "village_code", "group_code", "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=GK)


def _streets() -> gpd.GeoDataFrame:
    """Two streets crossing the 社区 (north-south at x = 600, east-west at y = 500)."""
    return gpd.GeoDataFrame({"name": ["新华路", "中央街"]}, crs=GK, geometry=[
        shapely.LineString([(X0 + 600, Y0 - 50), (X0 + 600, Y0 + 1050)]),
        shapely.LineString([(X0 - 50, Y0 + 500), (X0 + 1250, Y0 + 500)])])


def _area(grids: gpd.GeoDataFrame) -> float:
    return float(grids.to_crs(GK).area.sum())


def test_a_community_without_streets_is_split_by_households_along_its_groups_with_a_warning():
    grids = build_grids(_admin(), households=_households(), min_households=30, max_households=100)
    urban = grids[grids["kind"] == "urban"]
    assert len(urban) == 3 and urban["code"].str.startswith(COMMUNITY).all()  # 240 households, ≤ 100 a grid
    assert (urban["households"] <= 100).all() and urban["households"].sum() == 240
    atoms = {c for s in urban["source_codes"] for c in s.split(",")}
    assert atoms == {f"{COMMUNITY}{k:03d}" for k in (1, 2, 3)}  # grids follow the groups, no street blocks
    assert _area(urban) == pytest.approx(1200 * 1000, rel=1e-6)  # the 社区's territory, whole
    assert grids.loc[grids["kind"] == "rural", "source_codes"].tolist() == [VILLAGE]  # the village stays rural
    found = build_warnings(grids)
    assert found["kind"].tolist() == [NO_STREETS] and found["severity"].tolist() == ["warning"]
    row = found.iloc[0]
    assert row["unit_code"] == COMMUNITY and MESSAGE in row["message"] and "新城社区" in row["message"]
    assert "import PATH streets FILE" in row["fix"] and sorted(row["grid_ids"]) == sorted(urban["grid_id"])


def test_group_polygons_of_the_community_are_its_atoms_and_a_real_boundary_is_not_called_derived():
    admin = _admin(derived=False, groups=True)
    grids = build_grids(admin, households=_households(60).drop(columns="group_code"), max_households=130)
    urban = grids[grids["kind"] == "urban"]
    assert sorted(c for s in urban["source_codes"] for c in s.split(",")) == [
        f"{COMMUNITY}{k:03d}" for k in (1, 2, 3)]
    assert len(urban) == 2 and urban["households"].sum() == 180  # 3 × 60 packed into two grids of ≤ 130
    message = build_warnings(grids)["message"].iloc[0]
    assert "该社区没有街道图层" in message and "推算" not in message


def test_without_groups_or_points_the_community_is_one_grid_still_warned():
    hh = _households(50).drop(columns="group_code")
    grids = build_grids(_admin(), households=hh, max_households=100)
    urban = grids[grids["kind"] == "urban"]
    assert urban["source_codes"].tolist() == [COMMUNITY] and urban["households"].tolist() == [150]
    assert build_warnings(grids)["unit_code"].tolist() == [COMMUNITY]


def test_streets_crossing_the_community_cut_it_into_blocks_and_nothing_is_warned():
    grids = build_grids(_admin(), households=_households(), streets=_streets(), max_households=100)
    urban = grids[grids["kind"] == "urban"]
    blocks = {c for s in urban["source_codes"] for c in s.split(",")}
    assert len(blocks) == 4 and all(f"{COMMUNITY}B" in c for c in blocks)
    assert build_warnings(grids).empty and grids.attrs["warnings"] == []


@pytest.mark.parametrize("inside_m", [0.0, 0.3])
def test_a_street_along_the_community_edge_only_cuts_nothing(inside_m):
    """Exactly on the edge, or digitised a little inside it (less than the snap tolerance)."""
    x = X0 + 1200 - inside_m
    edge = gpd.GeoDataFrame({"name": ["界路"]}, crs=GK, geometry=[shapely.LineString([(x, Y0 - 50), (x, Y0 + 1050)])])
    grids = build_grids(_admin(), households=_households(), streets=edge, max_households=100)
    assert build_warnings(grids)["unit_code"].tolist() == [COMMUNITY]
    assert not grids["source_codes"].str.contains("B").any()


def test_the_urban_part_of_a_village_without_streets_is_warned_too():
    admin = _admin()
    admin.loc[admin["code"] == COMMUNITY, "kind"] = "村"  # an ordinary village partly in the urban area
    urban_area = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, X0 + 600, Y0 + 1000)], crs=GK)
    grids = build_grids(admin, households=_households(), urban_areas=urban_area, max_households=100)
    found = build_warnings(grids)
    assert found["unit_code"].tolist() == [COMMUNITY] and "城区部分没有街道图层" in found["message"].iloc[0]
    kinds = grids[grids["code"].str.startswith(COMMUNITY)].groupby("kind")["households"].sum().to_dict()
    assert set(kinds) == {"rural", "urban"} and sum(kinds.values()) == 240


# -- the workspace: build, status, import of the street layer ------------------------------------------------


@pytest.fixture
def town_ws(empty_ws):
    admin = _admin().to_crs(4490)
    empty_ws.write("admin_units", admin, actor="t")
    empty_ws.write("households", _households().to_crs(4490), actor="t")
    return empty_ws


def test_build_keeps_the_warning_with_the_plan_and_status_lists_the_missing_street_layer(town_ws):
    said: list[str] = []
    plan_id = build_workspace_plan(town_ws, max_households=100, progress=said.append)
    assert any(line.startswith("警告：") and MESSAGE in line for line in said)
    kept = plan_info(town_ws, plan_id)["params"]["warnings"]
    assert [w["unit_code"] for w in kept] == [COMMUNITY] and MESSAGE in kept[0]["message"]
    st = {s["key"]: s for s in workspace_status(town_ws, path="ws.gpkg")["steps"]}
    streets = st["streets"]
    assert streets["state"] == "partial"
    assert streets["counts"] == {"streets": 0, "communities": 1, "without_streets": 1}
    assert streets["next"].startswith("python -m grids import ws.gpkg streets ") and "--user" in streets["next"]
    assert "街道" in streets["blocks"]


@pytest.mark.parametrize("suffix", ["geojson", "shp"])
def test_streets_import_from_a_gis_file_and_the_next_build_follows_them(town_ws, tmp_path, monkeypatch, suffix,
                                                                         capsys):
    user = cli_user(town_ws, monkeypatch)
    src = tmp_path / f"streets.{suffix}"
    _streets().to_crs(4490).to_file(src, engine="pyogrio")
    assert main(["import", str(town_ws.path), "streets", str(src), "--user", user]) == 0
    assert town_ws.count("streets") == 2
    log = town_ws.read("audit")
    assert log["actor"].iloc[-1] == user and "streets" in log["detail"].iloc[-1]
    assert main(["build", str(town_ws.path), "--user", user, "--max-households", "100"]) == 0
    assert "没有街道图层" not in capsys.readouterr().err
    plan_id = plan_info(town_ws, town_ws.read("plans")["plan_id"].iloc[-1])["plan_id"]
    urban = read_grids(town_ws, plan_id)
    urban = urban[urban["kind"] == "urban"]
    assert urban["source_codes"].str.contains(f"{COMMUNITY}B").all()
    assert "warnings" not in plan_info(town_ws, plan_id)["params"]
    st = {s["key"]: s for s in workspace_status(town_ws)["steps"]}
    assert st["streets"]["state"] == "done" and st["streets"]["next"] == ""


def test_a_streets_file_of_points_is_refused_and_the_workspace_is_unchanged(town_ws, tmp_path, monkeypatch, capsys):
    user = cli_user(town_ws, monkeypatch)
    src = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[shapely.Point(119.4, 44.0)], crs=4490).to_file(src)
    rev = town_ws.revision
    assert main(["import", str(town_ws.path), "streets", str(src), "--user", user]) == 1
    assert "拒绝 1 行（几何类型错误 1 行）" in capsys.readouterr().out
    assert town_ws.count("streets") == 0 and town_ws.revision == rev
    rejects = pd.read_csv(tmp_path / "points.rejects.csv", dtype=str)
    assert len(rejects) == 1


def test_status_names_communities_the_streets_miss_after_a_build(town_ws):
    edge = gpd.GeoDataFrame({"name": ["界路"]}, crs=GK,
                            geometry=[shapely.LineString([(X0 + 1200, Y0 - 50), (X0 + 1200, Y0 + 1050)])])
    town_ws.write("streets", edge.to_crs(4490), actor="t")
    st = {s["key"]: s for s in workspace_status(town_ws)["steps"]}
    assert st["streets"]["state"] == "done"  # streets and no plan yet: nothing known to be missed
    build_workspace_plan(town_ws, max_households=100)
    st = {s["key"]: s for s in workspace_status(town_ws)["steps"]}["streets"]
    assert st["state"] == "partial" and st["counts"]["without_streets"] == 1 and "没有街道穿过" in st["detail"]


def test_check_lists_the_saved_build_warning_as_a_warning_and_keeps_exit_0_for_it(town_ws, capsys):
    from grids.check import check_workspace_plan, errors, warnings

    plan_id = build_workspace_plan(town_ws, max_households=100)
    found = check_workspace_plan(town_ws, plan_id)
    ours = found[found["kind"] == NO_STREETS]
    assert len(ours) == 1 and MESSAGE in ours["message"].iloc[0] and ours["severity"].iloc[0] == "warning"
    grid_ids = set(read_grids(town_ws, plan_id)["grid_id"])
    assert ours["grid_ids"].iloc[0] and set(ours["grid_ids"].iloc[0]) <= grid_ids
    assert len(warnings(found)) >= 1 and not errors(found)[errors(found)["kind"] == NO_STREETS].shape[0]
    main(["check", str(town_ws.path), "--json"])
    assert NO_STREETS in capsys.readouterr().out
