"""The demo county generator (geodata.demo) and ``python -m grids demo``."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata import demo
from grids.credit import check_credit
from grids.crs import to_gk
from grids.products import band, job_band, product_for_segment
from grids.towns import towns_of

N_SMALL = 20_000
TOWNS = {
    "林东镇": "镇", "隆昌镇": "镇", "十三敖包镇": "镇", "碧流台镇": "镇", "富河镇": "镇", "白音勿拉镇": "镇",
    "哈拉哈达镇": "镇", "三山乡": "乡", "花加拉嘎乡": "乡", "查干哈达苏木": "苏木", "乌兰达坝苏木": "苏木",
    "林东西城街道": "街道", "林东东城街道": "街道",
}
SEED_FUNNEL = {"archived": 84_792, "eligible": 53_054, "granted": 52_195, "signed": 26_029, "using": 20_210}
SEED_TOTALS = {"granted_amount": 7_811_000_000, "available_amount": 3_270_000_000, "balance": 2_153_000_000}


@pytest.fixture(scope="module")
def small():
    """巴林左旗 on its real outline with 20,000 households (generated once for the module)."""
    return demo.generate(households=N_SMALL)


@pytest.fixture(scope="module")
def red_outline():
    return demo.load_outline(demo.DEFAULT_OUTLINE, county="红山区", coords="gcj02")


@pytest.fixture(scope="module")
def red(red_outline):
    return demo.generate(outline=red_outline, households=1500, seed=3)


def _valid_id(id_no: str) -> bool:
    """GB 11643 check, written out independently of the generator."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    total = sum(int(c) * w for c, w in zip(id_no[:17], weights, strict=True))
    return "10X98765432"[total % 11] == id_no[17]


def _assert_tiles(admin: gpd.GeoDataFrame) -> None:
    """Each level tiles the county and each child level tiles its parents (areas in the GK zone)."""
    gk = to_gk(admin)
    gk["area"] = gk.area
    county = gk[gk.level == "county"]
    assert len(county) == 1
    total = county.area.iloc[0]
    for level, parent in (("town", "county"), ("village", "town"), ("group", "village")):
        units = gk[gk.level == level]
        assert units.is_valid.all()
        assert abs(units.area.sum() - total) / total < 1e-6, level
        sums = units.groupby("parent_code")["area"].sum()
        parents = gk[gk.level == parent].set_index("code")["area"]
        assert set(sums.index) == set(parents.index), f"every {parent} has {level}s and no orphan parent codes"
        assert np.allclose(sums, parents.loc[sums.index], rtol=1e-6), level
        geoms = units.geometry.values
        i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        pair = i < j
        overlap = shapely.area(shapely.intersection(geoms[i[pair]], geoms[j[pair]]))
        assert overlap.max(initial=0.0) < 1.0, f"{level} overlap {overlap.max()} m²"


def _assert_points_inside(layers) -> None:
    admin, hh = layers["admin_units"], layers["households"]
    county = admin[admin.level == "county"].geometry.iloc[0]
    located = hh[hh.geometry.notna()]
    assert shapely.contains_xy(county, located.geometry.x, located.geometry.y).all()
    groups = admin[admin.level == "group"].set_index("code").geometry
    assert located.group_code.isin(groups.index).all()
    assert shapely.contains(groups.loc[located.group_code].values, located.geometry.values).all()


# -- the funnel ---------------------------------------------------------------------------------------------


def test_funnel_targets_are_the_seed_figures_at_default_size():
    t = demo.funnel_targets(110_000)
    assert {k: t[k] for k in SEED_FUNNEL} == SEED_FUNNEL
    assert {k: t[k] for k in SEED_TOTALS} == SEED_TOTALS


def test_reduced_size_funnel_is_exact_and_scaled(small):
    hh = small["households"]
    assert len(hh) == N_SMALL
    f = N_SMALL / 110_000
    assert hh.archived.sum() == round(84_792 * f) == 15_417
    assert hh.eligible.sum() == round(53_054 * f) == 9_646
    assert (hh.granted_amount > 0).sum() == round(52_195 * f) == 9_490
    assert hh.signed.sum() == round(26_029 * f) == 4_733
    assert hh.using.sum() == round(20_210 * f) == 3_675
    assert hh.granted_amount.sum() == 1_420_181_818  # 7.811e9 × 2/11, to the yuan
    assert hh.available_amount.sum() == 594_545_455
    assert hh.balance.sum() == 391_454_545


def test_funnel_subsets_and_amount_order(small):
    hh = small["households"]
    granted = hh.granted_amount > 0
    assert not (hh.eligible & ~hh.archived).any()
    assert not (granted & ~hh.eligible).any()
    assert not (hh.signed & ~granted).any()
    assert not (hh.using & ~hh.signed).any()
    assert (hh.available_amount <= hh.granted_amount).all()
    assert (hh.balance <= hh.available_amount).all()
    assert (hh.available_amount[~hh.signed] == 0).all() and (hh.available_amount[hh.signed] > 0).all()
    assert (hh.balance[~hh.using] == 0).all() and (hh.balance[hh.using] > 0).all()
    for col in ("granted_amount", "available_amount", "balance"):
        amounts = hh[col]
        assert (amounts == amounts.round()).all()
        assert (amounts % 100 != 0).sum() <= 1  # one amount may carry the remainder of an odd total


def test_products_grades_and_guarantees_follow_the_catalogue(small):
    hh = small["households"]
    archived = hh[hh.archived]
    assert (archived["product"] == archived.segment.map(product_for_segment)).all()
    granted = hh[hh.granted_amount > 0]
    lo_hi = np.array([band(p, g) for p, g in zip(granted["product"], granted["grade"], strict=True)])
    assert (granted.granted_amount >= lo_hi[:, 0]).all() and (granted.granted_amount <= lo_hi[:, 1]).all()
    farm = granted[granted["product"] == "福农卡"]
    assert set(farm["grade"]) == {"一般", "良好", "较优", "优秀", "黄金客户", "钻石客户"}
    # 黄金/钻石客户 only for 家庭农牧场 and 农牧业专业合作社; the four grades 4万–10万 for plain 农牧户
    top = farm["grade"].isin(["黄金客户", "钻石客户"])
    assert farm.loc[top, "segment"].isin(["家庭农牧场", "农牧业专业合作社"]).all() and top.sum() > 100
    assert farm.loc[farm.segment == "普通农牧户", "granted_amount"].between(40_000, 100_000).all()
    salary = granted[granted["product"] == "福薪卡"]
    assert salary.loc[salary.granted_amount > 200_000, "guarantee"].isin(["公职人员保证", "商厅楼房抵押"]).all()
    assert (salary.loc[salary.granted_amount <= 200_000, "guarantee"] == "").all()
    levels = np.array([job_band("福薪卡", j) for j in salary["job_level"]])
    assert (salary.granted_amount >= levels[:, 0]).all() and (salary.granted_amount <= levels[:, 1]).all()
    assert check_credit(hh).empty  # no grant breaks a product rule
    assert (hh.loc[hh.granted_amount == 0, "grade"].isna()).all()
    # the average line is the seed cooperative's (7.811 bn / 52,195 ≈ 149.65k)
    assert granted.granted_amount.mean() == pytest.approx(7_811_000_000 / 52_195, rel=1e-3)


# -- households -----------------------------------------------------------------------------------------------


def test_household_identity_fields(small):
    hh = small["households"]
    assert hh.hh_id.is_unique and hh.hh_id.str.startswith("150422").all()
    assert hh.id_no.is_unique
    assert hh.id_no.str.fullmatch(r"150422\d{11}[\dX]").all()
    assert all(_valid_id(x) for x in hh.id_no)
    assert hh.phone.str.fullmatch(r"1\d{10}").all()
    assert hh.head_name.str.len().between(2, 5).all()
    assert set(hh.segment) == {"普通农牧户", "家庭农牧场", "农牧业专业合作社", "个体工商户", "小微企业", "公职人员",
                               "社区居民"}
    civil = hh.segment == "公职人员"
    assert hh.loc[civil, "job_level"].notna().all() and hh.loc[~civil, "job_level"].isna().all()
    assert hh.address.str.startswith("巴林左旗").all()
    assert (hh.group_code.str[:12] == hh.village_code).all()


def test_households_inside_outline_and_group(small):
    _assert_points_inside(small)
    share = small["households"].geometry.isna().mean()
    assert 0.02 < share < 0.04  # ~3% located only by their codes


def test_urban_households_are_residents_rural_mostly_farmers(small):
    hh, admin = small["households"], small["admin_units"]
    urban_villages = admin[(admin.level == "village") & (admin.kind == "社区")].code
    urban = hh.village_code.isin(urban_villages)
    assert set(hh.loc[urban, "segment"]) == {"社区居民", "公职人员", "个体工商户", "小微企业"}
    assert hh.loc[~urban, "segment"].isin(["普通农牧户", "家庭农牧场", "农牧业专业合作社"]).mean() > 0.85


# -- administrative units -----------------------------------------------------------------------------------


def test_town_names_kinds_and_codes(small):
    admin = small["admin_units"]
    towns = admin[admin.level == "town"]
    assert dict(zip(towns.name, towns.kind, strict=True)) == TOWNS
    code = dict(zip(towns.name, towns.code, strict=True))
    real = dict(zip(*towns_of("150422")[["name", "code"]].T.values, strict=True))  # the statistical codes
    assert code == {name: real[name] for name in TOWNS}


def test_codes_lengths_and_parents(small):
    admin = small["admin_units"]
    length = admin.level.map({"county": 6, "town": 9, "village": 12, "group": 15})
    assert (admin.code.str.len() == length).all() and admin.code.str.isdigit().all()
    assert admin.code.is_unique
    child = admin[admin.level != "county"]
    assert child.parent_code.isin(admin.code).all()
    assert all(c.startswith(p) for c, p in zip(child.code, child.parent_code, strict=True))
    parent_level = child.parent_code.map(admin.set_index("code").level)
    assert (parent_level == child.level.map({"town": "county", "village": "town", "group": "village"})).all()


def test_villages_communities_and_groups(small):
    admin = small["admin_units"]
    villages = admin[admin.level == "village"]
    rural = villages[villages.kind != "社区"]
    communities = villages[villages.kind == "社区"]
    assert 175 <= len(rural) <= 205
    assert villages.name.is_unique
    assert rural.name.str.endswith("村").mean() > 0.6 and rural.name.str.endswith("嘎查").any()
    assert (rural.name.str.endswith("嘎查") == (rural.kind == "嘎查")).all()
    assert 10 <= len(communities) <= 14
    assert communities.parent_code.isin(towns_of("150422").query("kind == '街道'").code).all()
    assert communities.code.str[9:].str.startswith("1").all() and rural.code.str[9:].str.startswith("2").all()
    groups = admin[admin.level == "group"]
    per_rural = groups[groups.parent_code.isin(rural.code)].groupby("parent_code").size()
    assert per_rural.between(5, 10).all()
    assert groups.name.str.fullmatch(r"[一二三四五六七八九十]+组").all()
    first = groups[groups.code.str.endswith("001")]
    assert (first.name == "一组").all()


def test_admin_levels_tile_the_county(small):
    _assert_tiles(small["admin_units"])


def test_urban_area_is_the_union_of_the_two_street_offices(small):
    admin, urban = small["admin_units"], small["urban_areas"]
    offices = admin[(admin.level == "town") & (admin.kind == "街道")]
    gk_urban = to_gk(urban).geometry.iloc[0]
    gk_offices = shapely.union_all(to_gk(offices).geometry.values)
    assert shapely.symmetric_difference(gk_urban, gk_offices).area < 1.0
    minx, miny, maxx, maxy = gk_urban.bounds
    assert 3_500 < maxx - minx < 7_500 and 2_800 < maxy - miny < 6_000  # roughly 5 km × 4 km
    assert gk_urban.contains(to_gk(gpd.GeoSeries([shapely.Point(119.39, 43.98)], crs=4490)).iloc[0])


# -- streets, branches, staff, visits ---------------------------------------------------------------------


def test_streets_enclose_blocks(small):
    streets, urban = to_gk(small["streets"]), to_gk(small["urban_areas"]).geometry.iloc[0]
    assert set(streets["class"]) == {"主干道", "次干道", "支路", "乡村道路"}
    city = streets[streets["class"] != "乡村道路"]
    noded = shapely.union_all([*city.geometry.values, urban.boundary])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    blocks = faces[shapely.contains(urban, shapely.point_on_surface(faces))]
    assert 400 <= len(blocks) <= 650  # ~500 blocks of ~0.03 km² (支路 every ~200 m)
    assert city.geometry.distance(urban).max() < 400  # in and slightly beyond the urban area
    # not a lattice: some streets end without meeting another (dead ends)
    ends = shapely.get_parts(shapely.boundary(city.geometry.values))
    deg = shapely.STRtree(city.geometry.values).query(ends, predicate="intersects")
    touching = np.bincount(deg[0], minlength=len(ends))
    assert (touching == 1).sum() > 10
    rural = streets[streets["class"] == "乡村道路"]
    assert len(rural) == 10 and rural.name.str.startswith("林东至").all()


def test_capped_counts_sum_exactly_and_respect_the_cap():
    # 8 : 1 : 1 of 100 would be 80 / 10 / 10; capped at 50 the rest is shared 1 : 1
    assert demo._capped_counts(np.array([8.0, 1, 1]), 100, cap=50).tolist() == [50, 25, 25]
    out = demo._capped_counts(np.random.default_rng(1).lognormal(0, 1, 200), 9_000, cap=60)
    assert out.sum() == 9_000 and out.max() <= 60
    # a cap too small for the total is raised to 1.25 × the mean (4 entries, 100 → at most 31)
    out = demo._capped_counts(np.array([10.0, 1, 1, 1]), 100, cap=10)
    assert out.sum() == 100 and out.max() == 31


def test_urban_blocks_and_rural_groups_are_small_at_full_size():
    """At 110,000 households no street block holds more than ~150 households, no villager group either."""
    b = demo._Builder(demo.load_outline(), code="150422", name="巴林左旗", households=110_000, seed=1504)
    b._seats()
    b._urban_area()
    b._streets()
    b._admin()
    b._households()
    urban = np.array([g["urban"] for g in b.groups])
    per_group = np.bincount(b.hh_group, minlength=len(b.groups))
    assert per_group[~urban].max() <= 150
    blocks = b.blocks()
    assert 400 <= len(blocks) <= 650
    located = b.hh_xy[b.hh_has_point & urban[b.hh_group]]
    hit = shapely.STRtree(blocks).query(shapely.points(located), predicate="within")[1]
    per_block = np.bincount(hit, minlength=len(blocks))
    assert per_block.max() <= 150
    assert per_block.sum() >= 0.99 * len(located)  # urban households lie in blocks, off the streets


def test_branches_and_staff(small):
    branches, staff, admin = small["branches"], small["staff"], small["admin_units"]
    assert 25 <= len(branches) <= 35
    assert branches.branch_id.is_unique and branches.branch_id.str.fullmatch(r"B\d\d").all()
    assert branches.name.is_unique
    assert (branches.kind == "营业部").sum() == 1
    credit = branches[branches.kind == "信用社"]
    rural_towns = admin[(admin.level == "town") & (admin.kind != "街道")]
    assert sorted(credit.town_code) == sorted(rural_towns.code)
    assert "林东信用社" in set(credit.name)
    assert (branches.kind == "分社").sum() >= 10
    assert branches.town_code.isin(admin[admin.level == "town"].code).all()
    assert 130 <= len(staff) <= 170
    assert staff.staff_id.is_unique and staff.staff_id.str.fullmatch(r"S\d{3}").all()
    assert staff.branch_id.isin(branches.branch_id).all()
    heads = staff[staff.role == "网点主任"].groupby("branch_id").size()
    assert (heads == 1).all() and len(heads) == len(branches)
    assert set(staff.role) == {"客户经理", "网点主任"}


def test_visits(small):
    visits, hh, staff, branches = small["visits"], small["households"], small["staff"], small["branches"]
    archived = hh.loc[hh.archived, "hh_id"]
    assert archived.isin(visits.hh_id).all()
    filed = visits[visits.outcome == "已建档"]
    assert set(filed.hh_id) == set(archived)
    assert visits.outcome.isin(["已建档", "补充资料", "未遇", "拒绝", "已迁出"]).all()
    assert visits.visited_on.min() >= pd.Timestamp("2017-01-01")
    assert visits.visited_on.max() <= pd.Timestamp("2019-09-30")
    assert visits.visited_on.dt.year.nunique() == 3
    # follow-ups due after the data's last day are not piled onto it (the last eight weeks are a campaign:
    # the last day is compared with the campaign's days)
    per_day = visits.visited_on.value_counts()
    last = visits.visited_on.max()
    campaign = per_day[per_day.index >= last - pd.Timedelta(days=55)]
    assert per_day[last] <= max(5, 3 * campaign.median())
    # the campaign: most managers see 8–14 households a visit day, some more, some fewer
    recent = visits[visits.visited_on >= last - pd.Timedelta(days=55)]
    pace = recent.groupby("staff_id").size() / recent.groupby("staff_id")["visited_on"].nunique()
    assert pace.between(8, 14).mean() > 0.6 and pace.min() < 10 < pace.max()
    # the visiting manager works at the branch nearest the household
    located = hh[hh.geometry.notna()].set_index("hh_id")
    v = visits[visits.hh_id.isin(located.index)].head(3000)
    pts = to_gk(located.geometry.loc[v.hh_id])
    bgk = to_gk(branches.geometry, epsg=pts.crs.to_epsg())
    nearest = branches.branch_id.values[bgk.sindex.nearest(pts.values, return_all=False)[1]]
    staff_branch = v.staff_id.map(staff.set_index("staff_id").branch_id).values
    assert (staff_branch == nearest).all()


# -- determinism, other outlines ----------------------------------------------------------------------------


def test_same_seed_same_county_other_seed_differs(red, red_outline):
    again = demo.generate(outline=red_outline, households=1500, seed=3)
    for name in demo.LAYER_NAMES:
        pd.testing.assert_frame_equal(pd.DataFrame(red[name]), pd.DataFrame(again[name]))
    other = demo.generate(outline=red_outline, households=1500, seed=4)
    assert not other["households"].geometry.geom_equals(red["households"].geometry).all()


def test_second_outline_scales_the_county(red):
    admin = red["admin_units"]
    county = admin[admin.level == "county"].iloc[0]
    assert (county.code, county["name"]) == ("150402", "红山区")
    _assert_tiles(admin)
    _assert_points_inside(red)
    towns = admin[admin.level == "town"]
    assert not set(towns.name) & set(TOWNS)  # generic names away from 巴林左旗
    assert (towns.kind == "街道").sum() == 2 and len(towns) >= 5
    assert red["households"].id_no.str.startswith("150402").all()
    assert red["households"].archived.sum() == round(84_792 * 1500 / 110_000)


def test_multi_part_outline(red_outline):
    main = red_outline.geometry.iloc[0]
    _, miny, maxx, maxy = main.bounds
    island = shapely.Point(maxx + 0.06, (miny + maxy) / 2).buffer(0.03)
    parts = [*shapely.get_parts(main), island]
    outline = gpd.GeoDataFrame({"code": ["150402"], "name": ["红山区"]}, geometry=[shapely.MultiPolygon(parts)],
                               crs=4490)
    layers = demo.generate(outline=outline, households=2000, seed=5)
    admin = layers["admin_units"]
    _assert_tiles(admin)
    _assert_points_inside(layers)
    gk_admin = to_gk(admin)
    gk_island = to_gk(gpd.GeoSeries([island], crs=4490), epsg=gk_admin.crs.to_epsg()).iloc[0]
    groups = gk_admin[gk_admin.level == "group"]
    on_island = groups.geometry.intersection(gk_island).area
    assert on_island.sum() == pytest.approx(gk_island.area, rel=1e-6)
    towns = gk_admin[gk_admin.level == "town"]
    assert (towns.geometry.intersection(gk_island).area > 1).sum() == 1  # the island belongs to one town
    assert layers["households"].intersects(island).sum() > 0


def test_outline_errors_say_how_to_fix(tmp_path):
    with pytest.raises(ValueError, match=r"没有 “某某旗”.*可选：红山区"):
        demo.load_outline(demo.DEFAULT_OUTLINE, county="某某旗")
    lines = tmp_path / "lines.geojson"
    gpd.GeoDataFrame(geometry=[shapely.LineString([(119, 43), (119.1, 43.1)])], crs=4326).to_file(lines)
    with pytest.raises(ValueError, match="只包含面"):
        demo.load_outline(lines)


# -- writing and the command line -------------------------------------------------------------------------


def test_cli_writes_a_valid_workspace_and_refuses_to_overwrite(tmp_path, capsys):
    from grids.__main__ import main
    from grids.workspace import GpkgWorkspace
    from tests.conftest import gdal_validator, validate_gpkg

    path = tmp_path / "red.gpkg"
    args = ["demo", str(path), "--outline", str(demo.DEFAULT_OUTLINE), "--county", "红山区", "--coords", "gcj02",
            "--households", "1200", "--seed", "9"]
    assert main(args) == 0
    assert "已生成演示工作区" in capsys.readouterr().out
    ws = GpkgWorkspace(path)
    # seven revisions: the generated county, (grids.pipeline) the built plan, its assignment and its publication
    # (the generator's villages and groups are one piece each, so the plan passes its check), the historic
    # visits credited to the plan's managers, the rating sessions behind the grants, the demo accounts
    from grids import plans
    from grids.coverage import locate_in_workspace

    assert ws.is_demo and ws.meta["county_code"] == "150402" and ws.revision == 7
    assert plans.plan_info(ws, plans.resolve_plan(ws, "main"))["status"] == "published"

    located = locate_in_workspace(ws, plans.read_grids(ws, plans.resolve_plan(ws))).set_index("hh_id")
    visits = ws.read("visits")
    plan_staff = visits["hh_id"].map(located["staff_id"])
    assert plan_staff.notna().mean() > 0.99
    assert (visits["staff_id"][plan_staff.notna()] == plan_staff.dropna()).all()
    assert ws.count("households") == 1200
    assert ws.read("households").granted_amount.sum() == round(7_811_000_000 * 1200 / 110_000)
    capsys.readouterr()
    assert main(["check", str(path), "--credit"]) == 0  # every generated grant follows the product rules
    assert "共 0 个错误、0 个警告" in capsys.readouterr().out
    for layer in demo.LAYER_NAMES:
        assert ws.count(layer) > 0, layer
    if gdal_validator():
        assert validate_gpkg(path) == []
    before = path.stat().st_mtime_ns
    assert main(args) == 2
    assert "已存在" in capsys.readouterr().err
    assert path.stat().st_mtime_ns == before
    assert main([*args, "--force", "--households", "1000"]) == 0
    assert GpkgWorkspace(path).count("households") == 1000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".building")]


@pytest.mark.slow
def test_default_demo_workspace_has_the_seed_figures(demo_path):
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(demo_path)
    assert ws.is_demo and ws.meta["county_code"] == "150422" and ws.meta["county_name"] == "巴林左旗"
    hh = ws.read("households")
    assert len(hh) == 110_000
    counts = {"archived": hh.archived.sum(), "eligible": hh.eligible.sum(),
              "granted": (hh.granted_amount > 0).sum(), "signed": hh.signed.sum(), "using": hh.using.sum()}
    assert counts == SEED_FUNNEL
    totals = {k: hh[k].sum() for k in SEED_TOTALS}
    assert totals == SEED_TOTALS
    assert not (hh.using & ~hh.signed).any() and not (hh.signed & (hh.granted_amount == 0)).any()
    assert check_credit(hh).empty  # the grants behind the funnel follow the product rules
    from grids.__main__ import main

    assert main(["check", str(demo_path), "--credit"]) == 0
    admin = ws.read("admin_units")
    assert set(admin[admin.level == "town"].name) == set(TOWNS)
    assert 25 <= ws.count("branches") <= 35 and 130 <= ws.count("staff") <= 170
