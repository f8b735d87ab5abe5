"""Households → grids, the funnel and its rates, uncovered households, progress, and the ``report`` command."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids import coverage
from grids.__main__ import main
from grids.coverage import county_summary, funnel, locate_households

VA, VB, VC, VD = "150422100201", "150422100202", "150422101203", "150422101204"


def make_grids() -> gpd.GeoDataFrame:
    """Four 0.01° squares in a row along 43°N: G1 village A; G2 groups 1–2 of B; G3 group 3 of B and C; G4 D."""
    boxes = [shapely.box(119.00 + 0.01 * i, 43.00, 119.01 + 0.01 * i, 43.01) for i in range(4)]
    return gpd.GeoDataFrame(
        {
            "grid_id": ["G1", "G2", "G3", "G4"],
            "code": [VA + "001", VB + "001", VC + "001", VD + "001"],
            "name": ["甲村网格", "乙村一组网格", "丙村网格", "丁村网格"],
            "kind": ["rural"] * 4,
            "source_codes": [VA, f"{VB}001,{VB}002", f"{VB}003,{VC}", VD],
            "branch_id": ["B1", "B1", "B2", "B2"],
            "staff_id": ["S1", "S1", "S2", None],
        },
        geometry=boxes, crs=4490,
    )


def make_households() -> gpd.GeoDataFrame:
    """Ten households; comments give where each must go and its funnel stage."""
    P = shapely.Point
    rows = [
        # hh_id, geometry, village, group, segment, archived, eligible, product, granted, signed, avail, using, bal
        ("h01", P(119.005, 43.005), VA, None, "农牧户", True, True, "福农卡", 50000, True, 50000, True, 20000),
        ("h02", P(119.010, 43.005), VA, None, "农牧户", True, True, "福农卡", 60000, True, 60000, False, 0),  # edge
        ("h03", None, VB, VB + "002", "农牧户", True, True, "福农卡", 40000, False, 0, False, 0),  # group → G2
        ("h04", None, VC, None, "个体工商户", True, False, None, 0, False, 0, False, 0),  # village → G3
        ("h05", None, VB, None, "农牧户", True, True, None, 0, False, 0, False, 0),  # B split → unplaced
        ("h06", None, "150422999999", None, "农牧户", False, False, None, 0, False, 0, False, 0),  # unknown code
        ("h07", None, None, None, "社区居民", False, False, None, 0, False, 0, False, 0),  # nothing
        ("h08", P(119.50, 43.50), VD, None, "农牧户", False, False, None, 0, False, 0, False, 0),  # outside → G4
        ("h09", P(119.035, 43.005), VD, None, "公职人员", True, True, "福薪卡", 150000, True, 150000, True, 90000),
        ("h10", P(119.025, 43.005), VC, None, "小微企业", True, True, "福商卡", 80000, True, 80000, False, 0),
    ]
    cols = ["hh_id", "geometry", "village_code", "group_code", "segment", "archived", "eligible", "product",
            "granted_amount", "signed", "available_amount", "using", "balance"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["granted_amount"] = frame["granted_amount"].astype(float)
    frame["available_amount"] = frame["available_amount"].astype(float)
    frame["balance"] = frame["balance"].astype(float)
    frame["head_name"] = [f"户主{i}" for i in range(1, 11)]
    frame["id_no"] = [f"15042219800101{1000 + i}" for i in range(10)]
    frame["phone"] = [f"1381234{5670 + i}" for i in range(10)]
    frame["address"] = ["=cmd|' /C calc'!A0", *["某村某组"] * 9]
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4490)


def build_workspace(ws) -> str:
    """Fill an empty workspace with the fixture and a draft plan; returns the plan id."""
    from grids import plans

    hh = make_households()
    branches = gpd.GeoDataFrame({"branch_id": ["B1", "B2"], "name": ["甲网点", "乙网点"], "kind": ["信用社"] * 2},
                                geometry=[shapely.Point(119.001, 43.001), shapely.Point(119.039, 43.001)], crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["张三", "李四"], "branch_id": ["B1", "B2"],
                          "role": ["客户经理"] * 2, "phone": ["13900000001", "13900000002"]})
    visits = pd.DataFrame({"hh_id": ["h01", "h02", "h09"], "staff_id": ["S1", "S1", "S2"],
                           "visited_on": pd.to_datetime(["2019-03-04", "2019-03-05", "2019-03-04"]),
                           "outcome": ["已建档", "已建档", "已建档"], "note": [None] * 3})
    units = gpd.GeoDataFrame({"code": ["150422", "150422100", VA], "name": ["巴林左旗", "林东镇", "甲村"],
                              "level": ["county", "town", "village"], "parent_code": [None, "150422", "150422100"]},
                             geometry=[shapely.box(118.9, 42.9, 119.6, 43.6)] * 2 + [make_grids().geometry[0]],
                             crs=4490)
    with ws.transaction(actor="test", action="fixture") as tx:
        tx.replace("households", hh)
        tx.replace("branches", branches)
        tx.replace("staff", staff)
        tx.replace("visits", visits)
        tx.replace("admin_units", units)
    return plans.save_draft(ws, make_grids(), name="main", actor="test")


# -- locate ---------------------------------------------------------------------------------------------------


@pytest.fixture
def located():
    return locate_households(make_households(), make_grids())


def test_locate_by_point_code_and_reasons(located):
    where = dict(zip(located["hh_id"], located["grid_id"], strict=True))
    how = dict(zip(located["hh_id"], located["method"], strict=True))
    assert (where["h01"], how["h01"]) == ("G1", "point")
    assert where["h02"] == "G1"  # on the G1|G2 edge: the first grid in table order
    assert (where["h03"], how["h03"]) == ("G2", "group_code")
    assert (where["h04"], how["h04"]) == ("G3", "village_code")
    assert (where["h08"], how["h08"]) == ("G4", "village_code")  # point outside every grid, code places it
    assert (where["h09"], where["h10"]) == ("G4", "G3")
    assert located.loc[located["hh_id"] == "h08", "note"].item() == "坐标不在任何网格内"
    assert list(located.index) == list(range(10))
    assert located.loc[located["hh_id"] == "h10", ["branch_id", "staff_id"]].values.tolist() == [["B2", "S2"]]


def test_unplaceable_households_listed_with_reason(located):
    unplaced = located[located["grid_id"].isna()].set_index("hh_id")["reason"]
    assert sorted(unplaced.index) == ["h05", "h06", "h07"]
    assert "村 150422100202 的各组分属 2 个网格（G2、G3）" in unplaced["h05"]
    assert "不属于方案中的任何网格" in unplaced["h06"] and "150422999999" in unplaced["h06"]
    assert unplaced["h07"].startswith("没有坐标，也没有村/组代码")
    assert located["method"].isna().sum() == 3


def test_group_code_implies_its_village():
    hh = gpd.GeoDataFrame({"hh_id": ["x"], "village_code": [None], "group_code": [VC + "007"]},
                          geometry=[None], crs=4490)
    out = locate_households(hh, make_grids())
    assert out[["grid_id", "method"]].values.tolist() == [["G3", "village_code"]]


def test_admin_units_place_codes_no_grid_lists():
    grids = make_grids()
    unit = gpd.GeoDataFrame({"code": ["150422101299"], "level": ["village"]},
                            geometry=[shapely.box(119.031, 43.001, 119.039, 43.009)], crs=4490)
    hh = pd.DataFrame({"hh_id": ["y"], "village_code": ["150422101299"]})
    assert locate_households(hh, grids)["grid_id"].isna().all()
    out = locate_households(hh, grids, admin_units=unit)
    assert out[["grid_id", "method"]].values.tolist() == [["G4", "admin_unit"]]


def test_locate_reprojects_households_and_keeps_inputs():
    hh = make_households().iloc[[0]].to_crs(4549)
    grids = make_grids()
    before = grids.copy()
    assert locate_households(hh, grids)["grid_id"].tolist() == ["G1"]
    pd.testing.assert_frame_equal(grids, before)


def test_overlapping_grids_take_first_with_note():
    grids = gpd.GeoDataFrame({"grid_id": ["A", "B"], "source_codes": [None, None]},
                             geometry=[shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)], crs=4490)
    hh = gpd.GeoDataFrame({"hh_id": ["p"]}, geometry=[shapely.Point(1.5, 1)], crs=4490)
    out = locate_households(hh, grids)
    assert out["grid_id"].tolist() == ["A"]
    assert "重叠" in out["note"].iloc[0]


# -- funnel ---------------------------------------------------------------------------------------------------


def test_each_rate_definition():
    hh = make_households()
    c = county_summary(hh)
    # by hand from make_households: archived h01-05,h09,h10 = 7; eligible h01,02,03,05,09,10 = 6;
    # granted (amount > 0) h01,02,03,09,10 = 5; signed h01,02,09,10 = 4; using h01,h09 = 2
    assert (c["registered"], c["archived"], c["eligible"], c["granted"], c["signed"], c["using"]) == (10, 7, 6, 5, 4, 2)
    assert c["coverage_rate"] == pytest.approx(7 / 10)
    assert c["granted_rate"] == pytest.approx(5 / 6)
    assert c["signed_rate"] == pytest.approx(4 / 5)
    assert c["using_rate"] == pytest.approx(2 / 4)
    assert c["granted_amount"] == 50000 + 60000 + 40000 + 150000 + 80000
    assert c["available_amount"] == 50000 + 60000 + 150000 + 80000
    assert c["balance"] == 20000 + 90000
    assert list(c) == list(coverage.FUNNEL_COLUMNS)
    assert all(isinstance(c[k], int) for k in ("registered", "archived", "eligible", "granted", "signed", "using"))


def test_rate_with_zero_denominator_is_none_and_nan():
    hh = pd.DataFrame({"archived": [False], "eligible": [False], "granted_amount": [0.0]})
    c = county_summary(hh)
    assert c["granted_rate"] is None and c["signed_rate"] is None and c["using_rate"] is None
    assert c["coverage_rate"] == 0.0
    assert np.isnan(funnel(hh)["granted_rate"].iloc[0])


def test_nullable_flags_count_as_false():
    hh = pd.DataFrame({"archived": pd.array([True, None, False], dtype="boolean")})
    assert county_summary(hh)["archived"] == 1


@pytest.mark.parametrize("by", list(coverage.BY_CHOICES))
def test_levels_add_up_to_the_county(by, located):
    hh = make_households()
    table = funnel(hh, by=by, located=located)
    county = funnel(hh).iloc[0]
    for col in ("registered", "archived", "eligible", "granted", "signed", "using"):
        assert table[col].sum() == county[col], col
    for col in ("granted_amount", "available_amount", "balance"):
        assert table[col].sum() == pytest.approx(county[col])


def test_breakdown_rows_by_branch_and_staff(located):
    hh = make_households()
    branch = funnel(hh, by="branch", located=located)
    # B1: G1 (h01, h02) + G2 (h03) = 3; B2: G3 (h04, h10) + G4 (h08, h09) = 4; unplaced h05-h07 = 3
    assert branch["registered"].to_dict() == {"B1": 3, "B2": 4, coverage.UNLOCATED: 3}
    staff = funnel(hh, by="staff", located=located, names={"S1": "张三"})
    assert staff["registered"].to_dict() == {"S1": 3, "S2": 2, coverage.UNASSIGNED: 2, coverage.UNLOCATED: 3}
    assert staff.loc["S1", "name"] == "张三"
    assert staff.loc["S1", "granted_rate"] == pytest.approx(3 / 3)
    town = funnel(hh, by="town")
    assert town["registered"].to_dict() == {"150422100": 4, "150422101": 4, "150422999": 1, "（无代码）": 1}
    product = funnel(hh, by="product")
    assert product.loc["福农卡", "granted_amount"] == 150000


def test_grid_breakdown_needs_located():
    with pytest.raises(coverage.ValidationError, match="locate_households"):
        funnel(make_households(), by="grid")
    with pytest.raises(coverage.ValidationError, match="可选"):
        funnel(make_households(), by="colour")


# -- uncovered and progress -----------------------------------------------------------------------------------


def test_uncovered_households_list_and_counts(located):
    hh = make_households()
    lst = uncovered = coverage.uncovered_households(hh, located)
    reasons = dict(zip(lst["hh_id"], lst["reason"], strict=True))
    # not archived: h06, h07, h08; in G4 (no staff): h08, h09; unplaced: h05, h06, h07
    assert sorted(reasons) == ["h05", "h06", "h07", "h08", "h09"]
    assert reasons["h08"] == "未建档；网格无客户经理"
    assert reasons["h09"] == "网格无客户经理"
    assert reasons["h05"] == "未定位到网格"
    assert reasons["h06"] == "未建档；未定位到网格"
    assert isinstance(uncovered, gpd.GeoDataFrame)
    by_staff = coverage.uncovered_households(hh, located, by="staff")
    assert by_staff["uncovered"].to_dict() == {coverage.UNASSIGNED: 2, coverage.UNLOCATED: 3}
    by_grid = coverage.uncovered_households(hh, located, by="grid")
    assert by_grid.loc["G4"].to_dict() == {"uncovered": 2, "not_archived": 1, "no_staff": 2, "unlocated": 0}


def test_weekly_visits_by_staff_and_branch():
    v = pd.DataFrame({"hh_id": ["a", "b", "b", "c", "d"], "staff_id": ["S1", "S1", "S1", "S2", "S1"],
                      "visited_on": ["2019-03-04", "2019-03-05", "2019-03-05", "2019-03-10", "2019-03-11"]})
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "branch_id": ["B1", "B1"]})
    out = coverage.weekly_visits(v)
    # 2019-03-04 (Mon) … 03-10 (Sun) is ISO week 10; 03-11 is week 11; the duplicate b visit counts once
    assert out.values.tolist() == [["2019-W10", "S1", 2, 2, 2], ["2019-W10", "S2", 1, 1, 1],
                                   ["2019-W11", "S1", 1, 1, 1]]
    br = coverage.weekly_visits(v, by="branch", staff=staff)
    assert br.values.tolist() == [["2019-W10", "B1", 3, 3, 3], ["2019-W11", "B1", 1, 1, 1]]


def test_behind_quota_with_days_per_week():
    v = pd.DataFrame({"hh_id": [f"h{i}" for i in range(30)], "staff_id": ["S1"] * 24 + ["S2"] * 6,
                      "visited_on": ["2019-03-04"] * 12 + ["2019-03-05"] * 12 + ["2019-03-04"] * 6})
    staff = pd.DataFrame({"staff_id": ["S1", "S2", "M"], "name": ["甲", "乙", "主任"], "branch_id": ["B1"] * 3,
                          "role": ["客户经理", "客户经理", "网点主任"]})
    out = coverage.behind_quota(v, staff, quota_per_day=12, days_per_week=2, start="2019-03-04",
                                end="2019-03-10").set_index("staff_id")
    assert list(out.index) == ["S2", "S1"]  # the branch head is not a customer manager
    assert out.loc["S1", "target"] == 24 and not out.loc["S1", "behind"]
    assert out.loc["S2", "shortfall"] == 18 and out.loc["S2", "behind"]
    assert out.loc["S1", "per_day"] == 12


# -- CLI ------------------------------------------------------------------------------------------------------


def test_report_json_keys_and_breakdown(empty_ws, capsys):
    build_workspace(empty_ws)
    assert main(["report", str(empty_ws.path), "--by", "branch", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["county"]) == ["registered", "closed", "archived", "coverage_rate", "eligible", "granted", "granted_rate",
                                    "granted_amount", "signed", "signed_rate", "available_amount", "using",
                                    "using_rate", "balance"]
    assert data["county"]["registered"] == 10 and data["county"]["granted_rate"] == pytest.approx(5 / 6)
    assert data["county"]["granted_amount"] == 380000.0
    rows = {r["key"]: r for r in data["breakdown"]}
    assert rows["B1"]["name"] == "甲网点" and rows["B1"]["registered"] == 3
    assert sum(r["registered"] for r in data["breakdown"]) == 10
    assert data["unlocated"] == 3


def test_report_human_table_in_chinese(empty_ws, capsys):
    build_workspace(empty_ws)
    assert main(["report", str(empty_ws.path), "--by", "staff", "--uncovered", "grid", "--progress"]) == 0
    out = capsys.readouterr().out
    assert "信贷漏斗（全县）" in out and "授信率 83.33%" in out and "0.00 亿元" in out
    assert "张三（S1）" in out and "合计" in out
    assert "未覆盖户" in out and "走访进度" in out


def test_report_without_plan_for_grid_says_how_to_fix(empty_ws, capsys):
    assert main(["report", str(empty_ws.path), "--by", "grid"]) == 2
    assert "python -m grids build" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_county_funnel_is_the_seed_cooperatives(demo_path, capsys):
    assert main(["report", str(demo_path), "--by", "branch", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    c = data["county"]
    assert (c["archived"], c["eligible"], c["granted"], c["signed"], c["using"]) == (84792, 53054, 52195, 26029, 20210)
    assert f"{c['granted_rate'] * 100:.2f}" == "98.38" and f"{c['signed_rate'] * 100:.2f}" == "49.87"
    assert (round(c["granted_amount"] / 1e8, 2), round(c["available_amount"] / 1e8, 2),
            round(c["balance"] / 1e8, 2)) == (78.11, 32.70, 21.53)
    assert sum(r["archived"] for r in data["breakdown"]) == c["archived"]
    assert sum(r["balance"] for r in data["breakdown"]) == pytest.approx(c["balance"])
    # every household is placed, where the plan counted it: no "（未定位）" line, grid counts agree
    assert data["unlocated"] == 0 and all(r["key"] != "（未定位）" for r in data["breakdown"])
    from grids.plans import read_grids, resolve_plan
    from grids.workspace import GpkgWorkspace

    assert main(["report", str(demo_path), "--by", "grid", "--json"]) == 0
    by_grid = {r["key"]: r["registered"] for r in json.loads(capsys.readouterr().out)["breakdown"]}
    ws = GpkgWorkspace(demo_path)
    grids = read_grids(ws, resolve_plan(ws))
    assert by_grid == dict(zip(grids["grid_id"], grids["households"].astype(int), strict=True))


def test_households_moved_by_hand_follow_the_plan():
    import geopandas as gpd
    import shapely

    from grids.coverage import locate_households

    grids = gpd.GeoDataFrame({"grid_id": ["G1", "G2"], "source_codes": ["V1", "V2"],
                              "hh_overrides": [None, "h1"]},
                             geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4490)
    hh = gpd.GeoDataFrame({"hh_id": ["h1", "h2"]}, geometry=[shapely.Point(0.5, 0.5), shapely.Point(0.6, 0.5)],
                          crs=4490)
    loc = locate_households(hh, grids)
    assert loc["grid_id"].tolist() == ["G2", "G1"] and loc["method"].tolist() == ["override", "point"]
