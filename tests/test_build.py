"""Grid build: one grid per village, merge and split bounds, urban blocks, codes, and the tiling property."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from grids.build import build_grids, containing_polygon, household_points
from grids.errors import ValidationError

X0, Y0 = 500_000.0, 4_870_000.0  # EPSG:4549 (GK zone of 120°E)
ORIGIN = np.array([X0, Y0])
T1, T2 = "150422100", "150422101"
V = {k: f"{T1}2{k:02d}" if k <= 4 else f"{T2}2{k:02d}" for k in range(1, 7)}


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def admin(groups_in_v1=True):
    rows = [
        (T1, "甲镇", "town", "150422", box(0, 0, 2000, 2000)),
        (T2, "乙镇", "town", "150422", box(2000, 0, 4000, 2000)),
        (V[1], "一村", "village", T1, box(0, 0, 1000, 1000)),
        (V[2], "二村", "village", T1, box(1000, 0, 2000, 1000)),
        (V[3], "三村", "village", T1, box(0, 1000, 1000, 2000)),
        (V[4], "四村", "village", T1, box(1000, 1000, 2000, 2000)),
        (V[5], "五村", "village", T2, box(2000, 0, 3000, 2000)),
        (V[6], "六村", "village", T2, box(3000, 0, 4000, 2000)),
    ]
    if groups_in_v1:  # quadrants of 一村: 001 SW, 002 SE, 003 NW, 004 NE
        for k, (x, y) in enumerate([(0, 0), (500, 0), (0, 500), (500, 500)], start=1):
            rows.append((f"{V[1]}{k:03d}", f"{k}组", "group", V[1], box(x, y, x + 500, y + 500)))
    code, name, level, parent, geom = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"code": code, "name": name, "level": level, "parent_code": parent},
                            geometry=list(geom), crs=4549)


def points_in(x0, y0, x1, y1, n, *, village, group=None):
    """n household points on a regular lattice strictly inside the box."""
    side = int(np.ceil(np.sqrt(n)))
    xs = np.linspace(x0, x1, side + 2)[1:-1]
    ys = np.linspace(y0, y1, side + 2)[1:-1]
    xy = np.array([(x, y) for x in xs for y in ys])[:n]
    return gpd.GeoDataFrame({"village_code": [village] * n, "group_code": [group] * n},
                            geometry=shapely.points(xy + ORIGIN), crs=4549)


def households(counts):
    """counts: village number -> households spread over that village's box."""
    boxes = {1: (0, 0, 1000, 1000), 2: (1000, 0, 2000, 1000), 3: (0, 1000, 1000, 2000),
             4: (1000, 1000, 2000, 2000), 5: (2000, 0, 3000, 2000), 6: (3000, 0, 4000, 2000)}
    parts = [points_in(*boxes[k], n, village=V[k]) for k, n in counts.items() if n]
    return gpd.GeoDataFrame(gpd.pd.concat(parts, ignore_index=True), crs=4549)


def gk(grids):
    return grids.to_crs(4549)


def assert_tiles(grids, county_area, *, tol_m2=1.0):
    g = gk(grids).geometry.values
    assert shapely.is_valid(g).all()
    total = shapely.area(g).sum()
    assert abs(total - county_area) <= 1e-6 * county_area
    assert abs(shapely.area(shapely.union_all(g)) - county_area) <= 1e-6 * county_area
    i, j = shapely.STRtree(g).query(g, predicate="intersects")
    keep = i < j
    over = shapely.area(shapely.intersection(g[i[keep]], g[j[keep]]))
    assert (over <= tol_m2).all()


def test_one_grid_per_village_with_codes_and_counts():
    hh = households({1: 150, 2: 150, 3: 150, 4: 150, 5: 150, 6: 150})
    grids = build_grids(admin(groups_in_v1=False), households=hh, min_households=100, max_households=500)
    assert grids.crs.to_epsg() == 4490
    assert grids["code"].tolist() == [V[k] + "001" for k in range(1, 7)]
    assert grids["grid_id"].tolist() == grids["code"].tolist()
    assert grids["source_codes"].tolist() == [V[k] for k in range(1, 7)]
    assert grids["households"].tolist() == [150] * 6
    assert set(grids["kind"]) == {"rural"}
    assert grids["town_code"].tolist() == [T1] * 4 + [T2] * 2
    assert_tiles(grids, 4000 * 2000)


def test_small_village_merges_with_smallest_neighbour_of_same_town():
    # 二村 (30) touches 一村 (150), 四村 (120) in its town and 五村 (50) across the town boundary
    hh = households({1: 150, 2: 30, 3: 150, 4: 120, 5: 150, 6: 150})
    grids = build_grids(admin(groups_in_v1=False), households=hh, min_households=100, max_households=500)
    merged = grids[grids["source_codes"].str.contains(",")]
    assert merged["source_codes"].tolist() == [f"{V[2]},{V[4]}"]
    assert merged["code"].tolist() == [f"{T1}901"]
    assert merged["households"].tolist() == [150]
    assert merged["town_code"].tolist() == [T1]
    assert (grids["households"] >= 100).all()
    assert len(grids) == 5
    assert_tiles(grids, 4000 * 2000)


def test_merge_never_crosses_town_boundary():
    # 五村 is small and its only neighbours in its town (六村) – never 二村/四村 of the other town
    hh = households({1: 150, 2: 150, 3: 150, 4: 150, 5: 20, 6: 150})
    grids = build_grids(admin(groups_in_v1=False), households=hh, min_households=100, max_households=500)
    row = grids[grids["source_codes"].str.contains(V[5])]
    assert row["source_codes"].tolist() == [f"{V[5]},{V[6]}"]
    assert row["code"].tolist() == [f"{T2}901"]


def test_split_along_group_polygons_respects_max():
    # 一村 has 800 households, 200 per quadrant group; max 500 → 2 grids of 400, each two adjacent groups
    parts = [points_in(x, y, x + 500, y + 500, 200, village=V[1], group=f"{V[1]}{k:03d}")
             for k, (x, y) in enumerate([(0, 0), (500, 0), (0, 500), (500, 500)], start=1)]
    hh = gpd.GeoDataFrame(gpd.pd.concat([*parts, households({2: 150, 3: 150, 4: 150, 5: 150, 6: 150})],
                                        ignore_index=True), crs=4549)
    grids = build_grids(admin(), households=hh, min_households=100, max_households=500)
    v1 = grids[grids["code"].str.startswith(V[1])]
    assert v1["code"].tolist() == [V[1] + "001", V[1] + "002"]
    assert v1["households"].tolist() == [400, 400]
    for src, geom in zip(v1["source_codes"], gk(v1).geometry, strict=True):
        assert len(src.split(",")) == 2
        assert geom.geom_type == "Polygon"  # contiguous
    assert (grids["households"] <= 500).all()
    assert_tiles(grids, 4000 * 2000)


def test_split_without_group_polygons_uses_household_locations():
    # 六村 (no group polygons): group A in the west half, group B in the east half, 300 each
    a = points_in(3000, 0, 3500, 2000, 300, village=V[6], group=V[6] + "001")
    b = points_in(3500, 0, 4000, 2000, 300, village=V[6], group=V[6] + "002")
    rest = households({1: 150, 2: 150, 3: 150, 4: 150, 5: 150})
    hh = gpd.GeoDataFrame(gpd.pd.concat([rest, a, b], ignore_index=True), crs=4549)
    grids = build_grids(admin(groups_in_v1=False), households=hh, min_households=100, max_households=500)
    v6 = grids[grids["code"].str.startswith(V[6])]
    assert v6["source_codes"].tolist() == [V[6] + "001", V[6] + "002"]
    assert v6["households"].tolist() == [300, 300]
    west, east = gk(v6).geometry
    assert shapely.contains(west, a.geometry.values).all() and not shapely.intersects(west, b.geometry.values).any()
    assert shapely.contains(east, b.geometry.values).all()
    assert west.area + east.area == pytest.approx(1000 * 2000)
    assert_tiles(grids, 4000 * 2000)


def test_households_without_points_count_by_code():
    hh = households({1: 150, 2: 150, 3: 150, 4: 150, 5: 150, 6: 150})
    extra = gpd.GeoDataFrame({"village_code": [V[3]] * 7, "group_code": [None] * 7}, geometry=[None] * 7,
                             crs=4549)
    hh = gpd.GeoDataFrame(gpd.pd.concat([hh, extra], ignore_index=True), crs=4549)
    grids = build_grids(admin(groups_in_v1=False), households=hh, min_households=100, max_households=500)
    assert grids.set_index("code").loc[V[3] + "001", "households"] == 157
    pts = household_points(hh, admin())
    assert pts.notna().all()


def _urban_case():
    adm = admin(groups_in_v1=False)
    urban = gpd.GeoDataFrame({"name": ["城区"]}, geometry=[box(2200, 500, 2800, 1500)], crs=4549)
    streets = gpd.GeoDataFrame({"name": ["大街", "横街", "死胡同"]}, geometry=[
        shapely.LineString([(X0 + 2500, Y0 + 400), (X0 + 2500, Y0 + 1600)]),
        shapely.LineString([(X0 + 2100, Y0 + 1000), (X0 + 2900, Y0 + 1000)]),
        shapely.LineString([(X0 + 2300, Y0 + 600), (X0 + 2400, Y0 + 700)]),  # dead end inside a block
    ], crs=4549)
    parts = [households({1: 150, 2: 150, 3: 150, 4: 150, 6: 150}),
             points_in(2000, 0, 2150, 2000, 150, village=V[5]),  # rural part of 五村
             points_in(2200, 500, 2500, 1000, 400, village=V[5]),  # SW block
             points_in(2500, 1000, 2800, 1500, 300, village=V[5])]  # NE block
    hh = gpd.GeoDataFrame(gpd.pd.concat(parts, ignore_index=True), crs=4549)
    return adm, urban, streets, hh


def test_urban_area_cut_into_blocks_and_grouped():
    adm, urban, streets, hh = _urban_case()
    grids = build_grids(adm, households=hh, streets=streets, urban_areas=urban, min_households=100,
                        max_households=500)
    urb = grids[grids["kind"] == "urban"]
    # 4 blocks of 300 m × 500 m (the dead end splits nothing), ordered NW, NE, SW, SE: 0, 300, 400, 0
    # households. 700 > 500 → 2 grids, target 350: from NW grow to NE (longest edge), then SE; SW would
    # exceed 500 → second grid. 五村 also has a rural grid, so urban sequences start at 501.
    assert urb["code"].tolist() == [V[5] + "501", V[5] + "502"]
    assert urb["source_codes"].tolist() == [f"{V[5]}B001,{V[5]}B002,{V[5]}B004", f"{V[5]}B003"]
    assert urb["households"].tolist() == [300, 400]
    assert urb["town_code"].tolist() == [T2, T2]
    assert shapely.area(gk(urb).geometry.values).tolist() == pytest.approx([450_000, 150_000])
    rural5 = gk(grids[grids["code"] == V[5] + "001"]).geometry.iloc[0]
    assert rural5.area == pytest.approx(1000 * 2000 - 600 * 1000)
    assert_tiles(grids, 4000 * 2000)


def test_codes_stable_across_rebuilds_and_input_order():
    adm, urban, streets, hh = _urban_case()
    a = build_grids(adm, households=hh, streets=streets, urban_areas=urban)
    b = build_grids(adm.iloc[::-1], households=hh.sample(frac=1, random_state=3),
                    streets=streets.iloc[::-1], urban_areas=urban)
    assert a["code"].tolist() == b["code"].tolist()
    assert a["households"].tolist() == b["households"].tolist()
    assert all(x.equals(y) for x, y in zip(gk(a).geometry, gk(b).geometry, strict=True))


def test_locate_households_counts_overlap_and_orphans():
    grids = gpd.GeoSeries([shapely.box(0, 0, 10, 10), shapely.box(5, 0, 15, 10)], crs=4549)
    pts = gpd.GeoSeries([shapely.Point(2, 2), shapely.Point(7, 5), shapely.Point(20, 20)], crs=4549)
    loc = containing_polygon(grids, pts)
    assert loc["grid"].tolist() == [0, 0, -1]
    assert loc["n_within"].tolist() == [1, 2, 0]


def test_bad_bounds_and_missing_columns_raise():
    with pytest.raises(ValidationError, match="上限"):
        build_grids(admin(), min_households=600, max_households=500)
    with pytest.raises(ValidationError, match="parent_code"):
        build_grids(admin().drop(columns="parent_code"))


# -- property: random admin tilings with a random urban area and streets always give a tiling --------------


@st.composite
def counties(draw):
    n = draw(st.integers(3, 9))
    pts = draw(st.lists(st.tuples(st.floats(50, 3950), st.floats(50, 1950)), min_size=n, max_size=n,
                        unique=True))
    frame = box(0, 0, 4000, 2000)
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(np.array(pts) + ORIGIN), extend_to=frame, ordered=True))
    cells = [shapely.intersection(c, frame) for c in cells]
    cells = [c for c in cells if c.area > 1]
    towns = {"150422100": [], "150422101": []}
    rows = []
    for k, c in enumerate(cells):
        t = "150422100" if c.centroid.x < X0 + 2000 else "150422101"
        towns[t].append(c)
        rows.append((f"{t}2{k:02d}", "village", t, c))
    for t, cs in towns.items():
        if cs:
            rows.append((t, "town", "150422", shapely.union_all(cs)))
    code, level, parent, geom = zip(*rows, strict=True)
    adm = gpd.GeoDataFrame({"code": code, "level": level, "parent_code": parent}, geometry=list(geom),
                           crs=4549)
    ux, uy = draw(st.floats(100, 3000)), draw(st.floats(100, 1200))
    urban = gpd.GeoDataFrame(geometry=[box(ux, uy, ux + draw(st.floats(50, 900)), uy + draw(st.floats(50, 700)))],
                             crs=4549)
    segs = draw(st.lists(st.tuples(*[st.floats(0, 4000), st.floats(0, 2000)] * 2), max_size=12))
    streets = gpd.GeoDataFrame(geometry=[shapely.LineString([(X0 + a, Y0 + b), (X0 + c, Y0 + d)])
                                         for a, b, c, d in segs if (a, b) != (c, d)], crs=4549)
    hpts = draw(st.lists(st.tuples(st.floats(1, 3999), st.floats(1, 1999)), max_size=60))
    hh = gpd.GeoDataFrame({"village_code": [None] * len(hpts)},
                          geometry=shapely.points(np.array(hpts).reshape(-1, 2) + ORIGIN), crs=4549)
    return adm, urban, streets, hh


@settings(max_examples=15, deadline=None)
@given(counties(), st.integers(0, 10), st.integers(10, 30))
def test_random_counties_always_tile(case, min_hh, max_hh):
    adm, urban, streets, hh = case
    grids = build_grids(adm, households=hh, streets=streets, urban_areas=urban, min_households=min_hh,
                        max_households=max_hh)
    assert_tiles(grids, 4000 * 2000)
    assert grids["households"].sum() == len(hh)
    assert grids["code"].is_unique


@settings(max_examples=15, deadline=None)
@given(counties(), st.lists(st.booleans(), min_size=9, max_size=9), st.integers(2, 4), st.integers(10, 30))
def test_random_counties_with_communities_without_streets_always_tile(case, is_community, n_groups, max_hh):
    """Some villages are 社区 (urban as a whole), streets are dropped where they would cut them, households carry
    group codes: the 社区 split along the Voronoi areas of their groups still tile the county, every household in
    exactly one grid, and every 社区 is warned about."""
    from grids.build import build_warnings

    adm, urban, streets, hh = case
    villages = (adm["level"] == "village").to_numpy()
    kind = np.where(villages & np.resize(is_community, len(adm)), "社区", "村")
    adm = adm.assign(kind=kind)
    communities = adm[adm["kind"] == "社区"]
    if len(communities) and len(streets):
        streets = streets[~streets.intersects(shapely.union_all(communities.geometry.values))]
    located = containing_polygon(adm[villages], hh.geometry)["grid"].to_numpy()
    codes = adm[villages]["code"].to_numpy()
    hh = hh.assign(village_code=[codes[k] if k >= 0 else None for k in located])
    hh["group_code"] = [f"{v}{1 + i % n_groups:03d}" if v else None for i, v in enumerate(hh["village_code"])]
    grids = build_grids(adm, households=hh, streets=streets, urban_areas=urban, min_households=0,
                        max_households=max_hh)
    assert_tiles(grids, 4000 * 2000)
    assert grids["households"].sum() == len(hh) and grids["code"].is_unique
    warned = set(build_warnings(grids)["unit_code"])
    assert set(communities["code"]) <= warned
    assert (grids[grids["code"].str[:12].isin(communities["code"])]["kind"] == "urban").all()
