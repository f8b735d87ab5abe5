"""grids.placement: households by point vs known only by village, counts at the village seat, re-derivation."""

from __future__ import annotations

import csv

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids import placement as P
from grids.auth import sign_in
from grids.build import household_points

from .conftest import CLI_PASSWORD, COUNTY, cli_user

V1, V2, V3 = "150422100201", "150422100202", "150422100203"
G1, G2 = V1 + "001", V2 + "001"


@pytest.fixture
def admin():
    """Three villages near 林东: V1 real with a group polygon G1, V2 derived, V3 listed with no polygon;
    G2 is a group of V2 known by code but without a polygon."""
    return gpd.GeoDataFrame(
        {"code": ["150422100", V1, V2, V3, G1, G2], "name": ["林东镇", "三家子村", "五十家子村", "空村", "一组", "一组"],
         "level": ["town", "village", "village", "village", "group", "group"],
         "parent_code": ["150422", "150422100", "150422100", "150422100", V1, V2],
         "derived": [False, False, True, False, False, True]},
        geometry=[shapely.box(119.3, 43.9, 119.5, 44.0), shapely.box(119.3, 43.9, 119.4, 44.0),
                  shapely.box(119.4, 43.9, 119.5, 44.0), None, shapely.box(119.3, 43.9, 119.35, 44.0), None],
        crs=4490,
    )


@pytest.fixture
def seats():
    return gpd.GeoDataFrame({"code": [V2], "name": ["五十家子村委会"], "level": ["village"]},
                            geometry=[shapely.Point(119.47, 43.93)], crs=4490)


@pytest.fixture
def households():
    rows = [  # hh_id, village, group, placed_by, point
        ("p1", V1, None, "point", shapely.Point(119.31, 43.91)),
        ("p2", V2, None, None, shapely.Point(119.45, 43.95)),  # no placed_by, own point: inferred
        ("g1", V1, G1, "code", None),  # group with a polygon
        ("v1", V1, None, "name", None),
        ("v2", V2, G2, "code", None),  # group without polygon: known only by village
        ("v3", V2, None, "code", shapely.Point(119.45, 43.95)),  # a stored point the importer did not take
        ("v4", None, G2, None, None),  # village from the group code
        ("v5", V3, None, None, None),  # a village without polygon
        ("x1", None, None, None, None),
        ("x2", "150422999999", None, "code", None),  # a village that is not (or no longer) a unit
    ]
    return gpd.GeoDataFrame({"hh_id": [r[0] for r in rows], "village_code": [r[1] for r in rows],
                             "group_code": [r[2] for r in rows], "placed_by": [r[3] for r in rows]},
                            geometry=[r[4] for r in rows], crs=4490)


def test_placement_uses_placed_by_and_infers_where_missing(households, admin):
    got = dict(zip(households["hh_id"], P.placement(households, admin), strict=True))
    assert got == {"p1": "point", "p2": "point", "g1": "group", "v1": "village", "v2": "village", "v3": "village",
                   "v4": "village", "v5": "village", "x1": "unplaced", "x2": "unplaced"}


def test_placement_without_placed_by_column_or_geometry(households, admin):
    plain = pd.DataFrame(households.drop(columns=["placed_by", "geometry"]))
    got = P.placement(plain, admin)
    assert got.index.equals(plain.index)
    assert (got[plain["hh_id"].isin(["p1", "p2"]).to_numpy()] == "village").all()  # no point to speak of


def test_split_households_keeps_own_points_and_village_only(households, admin):
    points, by_village = P.split_households(households, admin)
    assert sorted(points["hh_id"]) == ["p1", "p2"]
    assert sorted(by_village["hh_id"]) == ["v1", "v2", "v3", "v4", "v5"]
    assert (points["placement"] == "point").all() and (by_village["placement"] == "village").all()
    assert "placement" not in households.columns  # input untouched


def test_village_seats_prefer_the_seat_else_a_point_inside_the_polygon(admin, seats):
    where = P.village_seats(admin, seats=seats).set_index("code")
    assert where.crs.to_epsg() == 4490
    assert where.at[V2, "source"] == "seat" and where.geometry[V2].equals(seats.geometry.iloc[0])
    assert where.at[V1, "source"] == "polygon"
    assert admin.set_index("code").geometry[V1].contains(where.geometry[V1])
    assert pd.isna(where.at[V3, "source"]) and where.geometry[V3] is None
    derived_only = P.village_seats(admin).set_index("code")  # no seats layer: a derived village's polygon
    assert derived_only.at[V2, "source"] == "polygon"
    assert admin.set_index("code").geometry[V2].contains(derived_only.geometry[V2])


def test_village_counts_per_village_at_the_seat(households, admin, seats):
    counts = P.village_counts(households, admin, seats=seats).set_index("village_code")
    assert counts["households"].to_dict() == {V1: 1, V2: 3, V3: 1}
    assert counts.at[V2, "label"] == "五十家子村：3 户未定位"
    assert counts.at[V2, "source"] == "seat" and counts.geometry[V2].equals(seats.geometry.iloc[0])
    assert counts.geometry[V3] is None  # listed, not drawn
    none = P.village_counts(households[households["hh_id"].isin(["p1", "g1"])], admin, seats=seats)
    assert none.empty and {"village_code", "households", "label"} <= set(none.columns)


def test_grid_counting_still_places_village_only_households(households, admin):
    # what maps show changes, not what the build counts: the invented point stays for grid assignment
    pts = household_points(households, admin)
    assert pts[households["hh_id"].eq("v1").to_numpy()].iloc[0] is not None


# -- 数据管理: re-derive villages after a households import ---------------------------------------------------

SEATS = [("三家子村", 119.32, 43.95), ("五十家子村委会", 119.38, 43.95), ("哈拉哈达嘎查", 119.45, 43.95)]


@pytest.fixture
def derived_ws(tmp_path):
    """A county with one town polygon and three villages derived from their seats."""
    from grids.villages import import_villages
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
    admin = gpd.GeoDataFrame(
        {"code": ["150422", "150422100"], "name": ["巴林左旗", "林东镇"], "level": ["county", "town"],
         "parent_code": [None, "150422"]},
        geometry=[shapely.box(119.3, 43.9, 119.5, 44.0), shapely.box(119.3, 43.9, 119.5, 44.0)], crs=4490)
    with ws.transaction(actor="test", action="导入") as tx:
        tx.replace("admin_units", admin)
    f = tmp_path / "villages.csv"
    with open(f, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["村名", "乡镇", "经度", "纬度"])
        w.writerows([(n, "林东镇", x, y) for n, x, y in SEATS])
    assert import_villages(ws, f).rejected == 0
    return ws


def test_rederive_after_households_is_nothing_without_derived_villages(empty_ws):
    assert P.rederive_after_households(empty_ws) is None


def test_rederive_after_households_reports_like_the_cli(derived_ws, tmp_path, monkeypatch, capsys):
    from grids.__main__ import main

    user = cli_user(derived_ws, monkeypatch)
    villages = derived_ws.read("admin_units", where="level = 'village'")
    code = villages["code"].iloc[0]
    f = tmp_path / "hh.csv"
    with open(f, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["户号", "客户类型", "村代码", "经度", "纬度"])
        w.writerows([(f"H{k}", "农牧户", code, 119.32 + k * 0.001, 43.95) for k in range(3)])
    assert main(["import", str(derived_ws.path), "households", str(f), "--user", user]) == 0
    printed = capsys.readouterr().out
    account = sign_in(derived_ws, user, CLI_PASSWORD).account
    rev, n_audit = derived_ws.revision, len(derived_ws.audit_records())
    result = P.rederive_after_households(derived_ws, account=account)
    assert result is not None and len(result.villages) == len(SEATS)
    message = P.rederive_message(result)
    assert message.startswith("已按新定位的住户重新推算村界") and message in printed  # the CLI's words
    assert derived_ws.revision > rev and len(derived_ws.audit_records()) == n_audit + 1
    last = derived_ws.audit_records()[-1]
    assert last[2] == user and "重新推算" in last[6]
