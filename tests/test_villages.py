"""Villages from points (grids.villages): derived territories, provisional codes, groups, the villages import."""

from __future__ import annotations

import csv

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids.crs import gk_crs_for
from grids.landmass import landmass_of, landmasses
from grids.villages import (
    DEFAULT_MAX_SHIFT_M,
    MIN_GROUP_HOUSEHOLDS,
    canonical_village_name,
    derive_villages,
)

from .conftest import COUNTY, cli_user

COUNTY_CODE = COUNTY["county_code"]
# A synthetic county in lon/lat (EPSG:4490): three towns side by side on the mainland (甲镇 and 乙乡 with
# polygons, 丙苏木 without) and an island that belongs to 丙苏木. Every polygon shares exact coordinates.
X0, X1, X2, X3, Y0, Y1 = 119.0, 119.1, 119.2, 119.3, 43.9, 44.0
MAINLAND = shapely.box(X0, Y0, X3, Y1)
ISLAND = shapely.box(119.33, 43.90, 119.36, 43.93)
TOWNS = {
    f"{COUNTY_CODE}100": ("甲镇", shapely.box(X0, Y0, X1, Y1)),
    f"{COUNTY_CODE}101": ("乙乡", shapely.box(X1, Y0, X2, Y1)),
    f"{COUNTY_CODE}102": ("丙苏木", None),  # the rest: east strip + island
}
TOL_M2 = 1.0


def _outline() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": [COUNTY_CODE], "name": ["测试旗"], "level": ["county"]},
                            geometry=[shapely.MultiPolygon([MAINLAND, ISLAND])], crs=4490)


def _towns(*, with_rest: bool = False) -> gpd.GeoDataFrame:
    rows = [(c, n, g) for c, (n, g) in TOWNS.items() if g is not None or with_rest]
    return gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows], "level": "town",
                             "parent_code": COUNTY_CODE}, geometry=[r[2] for r in rows], crs=4490)


def _seats(seed: int = 7) -> gpd.GeoDataFrame:
    """About 20 seats: 7 per mainland town, 2 on the island; every third one without a code."""
    rng = np.random.default_rng(seed)
    rows = []
    spans = {f"{COUNTY_CODE}100": (X0, X1), f"{COUNTY_CODE}101": (X1, X2), f"{COUNTY_CODE}102": (X2, X3)}
    for town, (a, b) in spans.items():
        for k in range(7):
            x, y = rng.uniform(a + 0.005, b - 0.005), rng.uniform(Y0 + 0.005, Y1 - 0.005)
            rows.append({"town_code": town, "code": None if k % 3 == 0 else f"{town}{201 + k:03d}",
                         "name": f"{town[-1]}号{k}村委会", "geometry": shapely.Point(x, y)})
    for k, (x, y) in enumerate([(119.34, 43.91), (119.35, 43.92)]):
        rows.append({"town_code": f"{COUNTY_CODE}102", "code": None, "name": f"岛{k}嘎查",
                     "geometry": shapely.Point(x, y)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


def _gk(frame):
    return frame.to_crs(gk_crs_for(_outline()))


@pytest.fixture(scope="module")
def derived():
    return derive_villages(_seats(), towns=_towns(), outline=_outline())


# -- territories ------------------------------------------------------------------------------------------


def test_one_polygon_per_village_per_landmass(derived):
    villages = _gk(derived.villages)
    assert len(villages) == len(_seats())
    masses = landmasses(_gk(_outline()))
    for geom in villages.geometry:
        parts = [p for p in shapely.get_parts(geom) if p.area > TOL_M2]
        labels = landmass_of(gpd.GeoSeries(parts, crs=villages.crs), masses)
        assert len(labels) == len(set(labels.tolist()))


def test_villages_cover_the_county_without_gaps_or_overlaps(derived):
    villages = _gk(derived.villages)
    county = _gk(_outline()).geometry.iloc[0]
    union = shapely.union_all(villages.geometry.values)
    assert shapely.difference(county, union).area < TOL_M2
    assert shapely.difference(union, county).area < TOL_M2
    assert villages.area.sum() - union.area < TOL_M2  # no overlap


def test_each_village_holds_its_seat_and_stays_in_its_town(derived):
    villages = _gk(derived.villages).set_index("code")
    seats = _gk(derived.seats).set_index("code")
    for code, geom in villages.geometry.items():
        assert geom.covers(seats.geometry[code])
    towns = _gk(_towns()).set_index("code")
    for code, geom in villages.geometry.items():
        town = villages.at[code, "parent_code"]
        if town in towns.index:
            assert shapely.difference(geom, towns.geometry[town]).area < TOL_M2


def test_villages_are_marked_derived(derived):
    assert derived.units["derived"].all()


def test_villages_without_code_get_provisional_codes(derived):
    v = derived.villages
    given = set(_seats()["code"].dropna())
    prov = v[v["provisional_code"]]
    assert len(prov) == int(_seats()["code"].isna().sum())
    assert set(v.loc[~v["provisional_code"], "code"]) == given
    assert prov["code"].is_unique and not set(prov["code"]) & given
    for code, town in zip(prov["code"], prov["parent_code"], strict=True):
        assert len(code) == 12 and code.startswith(town) and code[9] == "9"


def test_town_without_polygon_is_union_of_its_villages(derived):
    towns = _gk(derived.units[derived.units["level"] == "town"])
    rest = f"{COUNTY_CODE}102"
    assert towns["code"].tolist() == [rest]  # towns that had polygons are not re-derived
    villages = _gk(derived.villages)
    union = shapely.union_all(villages[villages["parent_code"] == rest].geometry.values)
    assert shapely.symmetric_difference(towns.geometry.iloc[0], union).area < TOL_M2


def test_names_lose_their_committee_suffix(derived):
    assert "1号1村" in set(derived.villages["name"])
    assert canonical_village_name("三家村委会") == canonical_village_name("三家村") == "三家村"


def test_seats_at_one_place_are_refused():
    seats = _seats().iloc[:2].copy()
    seats.loc[seats.index[1], "geometry"] = seats.geometry.iloc[0]
    with pytest.raises(ValueError, match="村委会位置相同"):
        derive_villages(seats, towns=_towns(), outline=_outline())


# -- located households ------------------------------------------------------------------------------------


def _household(hh_id: str, village: str, point: shapely.Point, group: str | None = None) -> dict:
    return {"hh_id": hh_id, "village_code": village, "group_code": group, "geometry": point}


def _neighbours(derived):
    """Two villages of 甲镇 sharing a long edge, in GK, and the GK CRS."""
    v = _gk(derived.villages)
    v = v[v["parent_code"] == f"{COUNTY_CODE}100"].reset_index(drop=True)
    best = max(((i, j, v.geometry[i].intersection(v.geometry[j]).length) for i in range(len(v))
                for j in range(len(v)) if i < j), key=lambda t: t[2])
    return v.iloc[best[0]], v.iloc[best[1]], v.crs


def _point_across(a, b, metres: float) -> shapely.Point:
    """A point inside ``b``, ``metres`` from ``a``'s edge (along the line between their shared edge's middle and
    ``b``'s inside)."""
    edge = a.geometry.intersection(b.geometry)
    mid = edge.interpolate(0.5, normalized=True)
    inner = b.geometry.representative_point()
    line = shapely.LineString([mid, inner])
    for t in np.linspace(0, line.length, 400):
        p = line.interpolate(t)
        if b.geometry.contains(p) and p.distance(a.geometry) >= metres:
            return p
    raise AssertionError("village too small for the test point")


def test_households_pull_their_village_over_them_within_max_shift(derived):
    a, b, crs = _neighbours(derived)
    near = _point_across(a, b, 300)
    hh = gpd.GeoDataFrame([_household("NEAR", a["code"], near)], geometry="geometry", crs=crs)
    out = derive_villages(_seats(), towns=_towns(), outline=_outline(), households=hh.to_crs(4490))
    villages = _gk(out.villages).set_index("code")
    assert villages.geometry[a["code"]].covers(near)
    assert not villages.geometry[b["code"]].contains(near)
    assert "NEAR" not in set(out.beyond["hh_id"])
    county = _gk(_outline()).geometry.iloc[0]
    assert shapely.difference(county, shapely.union_all(villages.geometry.values)).area < TOL_M2
    assert villages.area.sum() - shapely.union_all(villages.geometry.values).area < TOL_M2


def test_households_beyond_max_shift_are_listed_not_absorbed():
    seats = gpd.GeoDataFrame({"town_code": [f"{COUNTY_CODE}100"] * 2, "code": [None, None], "name": ["东村", "西村"]},
                             geometry=[shapely.Point(119.01, 43.95), shapely.Point(119.09, 43.95)], crs=4490)
    crs = gk_crs_for(_outline())
    west = seats.to_crs(crs).geometry.iloc[0]
    # the border is halfway (≈3.2 km from each seat); a household of 西村 far inside 东村, 2.5 km over the line
    far = shapely.Point(west.x + 700, west.y)
    first = derive_villages(seats, towns=_towns(), outline=_outline())
    west_code = first.villages["code"].iloc[1]
    hh = gpd.GeoDataFrame([_household("FAR", west_code, far)], geometry="geometry", crs=crs).to_crs(4490)
    out = derive_villages(seats, towns=_towns(), outline=_outline(), households=hh)
    row = out.beyond.set_index("hh_id").loc["FAR"]
    assert row["distance_m"] > DEFAULT_MAX_SHIFT_M
    assert not _gk(out.villages).set_index("code").geometry[west_code].covers(far)


def test_absorbing_never_splits_a_village(derived):
    a, b, crs = _neighbours(derived)
    # a household of ``a`` 1 km inside ``b``, ringed by ``b``'s households: its own cell is an island in ``b``
    p = _point_across(a, b, 1000)
    ring = [shapely.Point(p.x + 80 * np.cos(t), p.y + 80 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 12,
                                                                                         endpoint=False)]
    rows = [_household("ISLE", a["code"], p)] + [_household(f"B{k}", b["code"], q) for k, q in enumerate(ring)]
    hh = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs(4490)
    out = derive_villages(_seats(), towns=_towns(), outline=_outline(), households=hh)
    assert "ISLE" in set(out.beyond["hh_id"])
    villages = _gk(out.villages)
    for geom in villages.geometry:
        assert len([q for q in shapely.get_parts(geom) if q.area > TOL_M2]) == 1 or not geom.intersects(MAINLAND)


# -- groups -----------------------------------------------------------------------------------------------


def _group_households(village, crs, sizes: dict[str, int], seed: int = 3) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    c = village.geometry.representative_point()
    for k, (group, n) in enumerate(sizes.items()):
        placed = 0
        while placed < n:
            p = shapely.Point(c.x + (k - 0.5) * 800 + rng.normal(0, 150), c.y + rng.normal(0, 150))
            if village.geometry.contains(p):
                rows.append(_household(f"G{group}-{placed}", village["code"], p, group))
                placed += 1
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs(4490)


def test_groups_get_polygons_when_two_groups_have_enough_located_households(derived):
    a, _, crs = _neighbours(derived)
    g1, g2 = f"{a['code']}001", f"{a['code']}002"
    hh = _group_households(a, crs, {g1: MIN_GROUP_HOUSEHOLDS, g2: MIN_GROUP_HOUSEHOLDS + 5})
    out = derive_villages(_seats(), towns=_towns(), outline=_outline(), households=hh)
    groups = _gk(out.units[out.units["level"] == "group"]).set_index("code")
    assert sorted(groups.index) == [g1, g2]
    village = _gk(out.villages).set_index("code").geometry[a["code"]]
    assert shapely.symmetric_difference(shapely.union_all(groups.geometry.values), village).area < TOL_M2
    for geom in groups.geometry:
        assert len([q for q in shapely.get_parts(geom) if q.area > TOL_M2]) == 1
    located = _gk(hh)
    inside = [groups.geometry[g].covers(p) for g, p in zip(located["group_code"], located.geometry, strict=True)]
    assert np.mean(inside) > 0.9


def test_no_group_polygons_below_the_threshold(derived):
    a, _, crs = _neighbours(derived)
    hh = _group_households(a, crs, {f"{a['code']}001": MIN_GROUP_HOUSEHOLDS + 20,
                                    f"{a['code']}002": MIN_GROUP_HOUSEHOLDS - 1})
    out = derive_villages(_seats(), towns=_towns(), outline=_outline(), households=hh)
    assert not (out.units["level"] == "group").any()


# -- the import (CLI) ---------------------------------------------------------------------------------------


@pytest.fixture
def county_ws(tmp_path):
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
    admin = pd.concat([_outline().assign(parent_code=None), _towns()], ignore_index=True)
    with ws.transaction(actor="test", action="导入") as tx:
        tx.replace("admin_units", gpd.GeoDataFrame(admin, geometry="geometry", crs=4490))
    return ws


def _seat_csv(path, *, extra: list[dict] | None = None):
    seats = _seats()
    rows = []
    for s in seats.itertuples():
        town = s.town_code
        name = TOWNS[town][0] if town in TOWNS else town
        rows.append({"村名": s.name, "代码": s.code if isinstance(s.code, str) else "", "乡镇": town if TOWNS[town][1] is None else name,
                     "经度": f"{s.geometry.x:.6f}", "纬度": f"{s.geometry.y:.6f}"})
    rows[1]["乡镇"] = "甲镇人民政府"  # a variant of the town's name
    rows += extra or []
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["村名", "代码", "乡镇", "经度", "纬度"])
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def test_import_villages_cli(county_ws, tmp_path, monkeypatch, capsys):
    from grids.__main__ import main

    user = cli_user(county_ws, monkeypatch)
    f = tmp_path / "villages.csv"
    bad = [{"村名": "无名村", "代码": "", "乡镇": "甲真", "经度": "119.05", "纬度": "43.95"},
           {"村名": "无位置村", "代码": "", "乡镇": "乙乡", "经度": "", "纬度": ""},
           {"村名": "县外村", "代码": "", "乡镇": "乙乡", "经度": "118.0", "纬度": "43.95"}]
    n = _seat_csv(f, extra=bad)
    rejects = tmp_path / "rejects.csv"
    code = main(["import", str(county_ws.path), "villages", str(f), "--user", user, "--rejects", str(rejects)])
    out = capsys.readouterr().out
    assert code == 1
    admin = county_ws.read("admin_units")
    villages = admin[admin["level"] == "village"]
    imported = county_ws.count("seats")
    rejected = pd.read_csv(rejects)
    assert imported + rejected["行"].nunique() == n
    assert imported == len(_seats()) == len(villages)
    assert villages["derived"].astype(bool).all()
    assert "是否指：甲镇" in rejected.loc[rejected["行"] == n - 1, "修正方法"].iloc[0]
    assert f"导入 {imported} 行" in out
    assert (admin.loc[admin["code"] == f"{COUNTY_CODE}102", "derived"].astype(bool)).all()
    last = county_ws.audit_records()[-1]
    assert (last[2], last[3]) == (user, "导入")
    assert "seats" in last[4] and "admin_units" in last[4]
    # importing again keeps every code (provisional ones too)
    before = dict(zip(villages["name"], villages["code"], strict=True))
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user, "--rejects", str(rejects)]) == 1
    again = county_ws.read("admin_units", where="level = 'village'")
    assert dict(zip(again["name"], again["code"], strict=True)) == before


def test_import_villages_needs_an_account(county_ws, tmp_path, monkeypatch):
    from grids.__main__ import main

    f = tmp_path / "villages.csv"
    _seat_csv(f)
    with pytest.raises(SystemExit) as exc:
        main(["import", str(county_ws.path), "villages", str(f)])
    assert exc.value.code == 2
    user = cli_user(county_ws, monkeypatch)
    monkeypatch.setenv("GRIDS_PASSWORD", "wrong")
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user]) == 2
    assert county_ws.count("seats") == 0


def test_import_villages_refuses_polygons(county_ws, tmp_path, monkeypatch, capsys):
    from grids.__main__ import main

    user = cli_user(county_ws, monkeypatch)
    f = tmp_path / "villages.geojson"
    _towns().to_file(f, driver="GeoJSON")
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user]) == 2
    assert "admin_units" in capsys.readouterr().err


def test_real_village_polygons_replace_derived_ones(county_ws, tmp_path, monkeypatch):
    from grids.__main__ import main

    user = cli_user(county_ws, monkeypatch)
    f = tmp_path / "villages.csv"
    _seat_csv(f)
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user]) == 0
    derived = county_ws.read("admin_units")
    real = derived.copy()
    real["derived"] = None
    real = real[["code", "name", "level", "parent_code", "geometry"]]
    g = tmp_path / "real.gpkg"
    real.to_file(g, driver="GPKG")
    assert main(["import", str(county_ws.path), "admin_units", str(g), "--user", user]) == 0
    after = county_ws.read("admin_units")
    assert len(after) == len(derived)
    assert not after["derived"].fillna(False).astype(bool).any()


def test_build_then_check_on_derived_villages(county_ws, tmp_path, monkeypatch):
    from grids.__main__ import main

    user = cli_user(county_ws, monkeypatch)
    f = tmp_path / "villages.csv"
    _seat_csv(f)
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user]) == 0
    villages = county_ws.read("admin_units", where="level = 'village'")
    rng = np.random.default_rng(5)
    hh = []
    for k, (code, geom) in enumerate(zip(villages["code"], villages.geometry, strict=True)):
        seat = geom.representative_point()
        for j in range(40):
            row = {"户号": f"H{k:02d}{j:03d}", "客户类型": "农牧户", "村代码": code, "经度": "", "纬度": ""}
            if j % 5 == 0:
                p = shapely.Point(seat.x + rng.normal(0, 0.002), seat.y + rng.normal(0, 0.002))
                if geom.contains(p):
                    row["经度"], row["纬度"] = f"{p.x:.6f}", f"{p.y:.6f}"
            hh.append(row)
    pd.DataFrame(hh).to_csv(tmp_path / "hh.csv", index=False)
    pd.DataFrame({"网点编号": ["B1", "B2"], "网点名称": ["甲", "丙"], "经度": [119.05, 119.25],
                  "纬度": [43.95, 43.95]}).to_csv(tmp_path / "br.csv", index=False)
    pd.DataFrame({"工号": ["S1", "S2"], "姓名": ["张", "李"], "网点编号": ["B1", "B2"],
                  "岗位": ["客户经理", "客户经理"]}).to_csv(tmp_path / "st.csv", index=False)
    for layer, name in (("households", "hh.csv"), ("branches", "br.csv"), ("staff", "st.csv")):
        assert main(["import", str(county_ws.path), layer, str(tmp_path / name), "--user", user]) == 0, layer
    assert main(["build", str(county_ws.path), "--user", user]) == 0
    assert main(["assign", str(county_ws.path), "--user", user]) == 0
    assert main(["check", str(county_ws.path)]) == 0


# -- maps and exports ---------------------------------------------------------------------------------------


def test_base_map_draws_derived_units_dashed_and_real_ones_solid(derived):
    from grids.maps import DERIVED_DASH, base_map

    real = _towns().assign(derived=None)
    units = pd.concat([real, derived.units], ignore_index=True)
    m = base_map(admin_units=gpd.GeoDataFrame(units, geometry="geometry", crs=4490), admin_levels=("town", "village"))
    html = m.get_root().render()
    assert html.count(f'"dashArray": "{DERIVED_DASH}"') == 2  # derived villages and the derived town
    names = {getattr(child, "layer_name", None) for child in m._children.values()}
    assert {"推算村界", "推算镇界", "镇界"} <= names
    solid = base_map(admin_units=real, admin_levels=("town",)).get_root().render()
    assert DERIVED_DASH not in solid


def _built_workspace(county_ws, tmp_path, monkeypatch):
    from grids.__main__ import main

    user = cli_user(county_ws, monkeypatch)
    f = tmp_path / "villages.csv"
    _seat_csv(f)
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user]) == 0
    villages = county_ws.read("admin_units", where="level = 'village'")
    hh = [{"户号": f"H{k:03d}", "客户类型": "农牧户", "村代码": c} for k, c in enumerate(villages["code"])
          for _ in range(1)]
    hh = [dict(r, 户号=f"{r['户号']}-{j}") for r in hh for j in range(35)]
    pd.DataFrame(hh).to_csv(tmp_path / "hh.csv", index=False)
    pd.DataFrame({"网点编号": ["B1"], "网点名称": ["甲"], "经度": [119.05], "纬度": [43.95]}).to_csv(
        tmp_path / "br.csv", index=False)
    pd.DataFrame({"工号": ["S1"], "姓名": ["张"], "网点编号": ["B1"], "岗位": ["客户经理"]}).to_csv(
        tmp_path / "st.csv", index=False)
    for layer, name in (("households", "hh.csv"), ("branches", "br.csv"), ("staff", "st.csv")):
        assert main(["import", str(county_ws.path), layer, str(tmp_path / name), "--user", user]) == 0, layer
    assert main(["build", str(county_ws.path), "--user", user]) == 0
    assert main(["assign", str(county_ws.path), "--user", user]) == 0
    return user


def test_exports_label_derived_boundaries(county_ws, tmp_path, monkeypatch):
    import openpyxl

    from grids.export import DERIVED_LABEL, export_plan

    _built_workspace(county_ws, tmp_path, monkeypatch)
    kml = tmp_path / "b1.kml"
    export_plan(county_ws, fmt="kml", out=kml, branch_id="B1")
    assert f"边界：{DERIVED_LABEL}" in kml.read_text(encoding="utf-8")
    gpkg = tmp_path / "all.gpkg"
    export_plan(county_ws, fmt="gpkg", out=gpkg)
    assert (gpd.read_file(gpkg, layer="grids")["boundary"] == DERIVED_LABEL).all()
    xlsx = tmp_path / "b1.xlsx"
    export_plan(county_ws, fmt="xlsx", out=xlsx, branch_id="B1")
    wb = openpyxl.load_workbook(xlsx, read_only=True)
    cells = [str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c]
    assert any(DERIVED_LABEL in c for c in cells)


def test_real_code_replaces_provisional_code_with_households_and_grids(county_ws, tmp_path, monkeypatch):
    from grids.__main__ import main

    user = _built_workspace(county_ws, tmp_path, monkeypatch)
    villages = county_ws.read("admin_units", where="level = 'village'")
    prov = villages[villages["provisional_code"].astype(bool)].iloc[0]
    old, name, town = prov["code"], prov["name"], prov["parent_code"]
    real = f"{town}299"
    assert real not in set(villages["code"])
    hh_before = county_ws.count("households", where="village_code = ?", params=[old])
    grids_before = county_ws.read("grids", columns=["grid_id", "code", "source_codes"])
    following = grids_before[grids_before["code"].str.slice(0, 12) == old]
    assert hh_before and len(following)
    seat = county_ws.read("seats", where="code = ?", params=[old]).geometry.iloc[0]
    f = tmp_path / "one.csv"
    pd.DataFrame({"村名": [f"{name}村委会" if not name.endswith("村") else name], "代码": [real],
                  "乡镇": [town], "经度": [seat.x], "纬度": [seat.y]}).to_csv(f, index=False)
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user]) == 0
    after = county_ws.read("admin_units", where="level = 'village'")
    assert real in set(after["code"]) and old not in set(after["code"])
    assert not after.loc[after["code"] == real, "provisional_code"].astype(bool).any()
    assert len(after) == len(villages)  # the other seats were kept
    assert county_ws.count("households", where="village_code = ?", params=[real]) == hh_before
    assert county_ws.count("households", where="village_code = ?", params=[old]) == 0
    grids_after = county_ws.read("grids", columns=["grid_id", "code", "source_codes"])
    assert set(grids_after["code"]) == {real + c[12:] if c[:12] == old and len(c) == 15 else c
                                        for c in grids_before["code"]}
    assert not grids_after["source_codes"].str.contains(old).any()
    detail = county_ws.audit_records()[-1][6]
    assert old in detail and real in detail
    assert main(["check", str(county_ws.path)]) == 0


def test_rederive_after_households_gives_groups(county_ws, tmp_path, monkeypatch):
    from grids.__main__ import main
    from grids.villages import rederive_villages

    user = cli_user(county_ws, monkeypatch)
    f = tmp_path / "villages.csv"
    _seat_csv(f)
    assert main(["import", str(county_ws.path), "villages", str(f), "--user", user]) == 0
    assert not county_ws.count("admin_units", where="level = 'group'")
    village = _gk(county_ws.read("admin_units", where="level = 'village'")).iloc[0]
    crs = gk_crs_for(_outline())
    g1, g2 = f"{village['code']}001", f"{village['code']}002"
    hh = _group_households(village, crs, {g1: MIN_GROUP_HOUSEHOLDS, g2: MIN_GROUP_HOUSEHOLDS})
    groups = gpd.GeoDataFrame({"code": [g1, g2], "name": ["1组", "2组"], "level": "group",
                               "parent_code": village["code"]}, geometry=[None, None], crs=4490)
    hh = hh.assign(segment="农牧户")
    with county_ws.transaction(actor="test", action="导入") as tx:  # a register whose groups have no polygon yet
        tx.append("admin_units", groups)
        tx.append("households", hh)
    result = rederive_villages(county_ws, actor=user)
    stored = county_ws.read("admin_units", where="level = 'group'")
    assert sorted(stored["code"]) == [g1, g2]
    assert stored["derived"].astype(bool).all() and stored.geometry.notna().all()
    assert result.beyond.empty


def test_import_villages_on_both_backends(any_ws, tmp_path):
    from grids.villages import import_villages

    admin = pd.concat([_outline().assign(parent_code=None), _towns()], ignore_index=True)
    with any_ws.transaction(actor="test", action="导入") as tx:
        tx.replace("admin_units", gpd.GeoDataFrame(admin, geometry="geometry", crs=4490))
    f = tmp_path / "villages.csv"
    n = _seat_csv(f)
    report = import_villages(any_ws, f, actor="planner")
    assert report.imported == n and report.rejected == 0
    units = any_ws.read("admin_units", where="level = 'village'")
    assert len(units) == n and units["derived"].astype(bool).all()
    again = import_villages(any_ws, f, actor="planner")  # derived units are replaced, not duplicated
    assert again.imported == n
    assert any_ws.count("admin_units", where="level = 'village'") == n


# -- attacker findings (issue 14) ------------------------------------------------------------------------------


@pytest.fixture
def init_ws(tmp_path):
    """A workspace as `init` writes it: the outline and every town, 丙苏木 without territory."""
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace.create(tmp_path / "init.gpkg", **COUNTY)
    admin = pd.concat([_outline().assign(parent_code=None), _towns(with_rest=True)], ignore_index=True)
    admin = admin.assign(derived=False, provisional_code=False, kind=[None, "镇", "乡", "苏木"])
    with ws.transaction(actor="test", action="导入") as tx:
        tx.replace("admin_units", gpd.GeoDataFrame(admin, geometry="geometry", crs=4490))
    ws.set_meta("towns_source", "test")
    return ws


def _town_names(ws) -> dict:
    towns = ws.read("admin_units", where="level = 'town'")
    return dict(zip(towns["code"], towns["name"], strict=True))


def test_importing_villages_again_keeps_town_names(init_ws, tmp_path):
    from grids.villages import import_villages, rederive_villages

    f = tmp_path / "v.csv"
    _seat_csv(f)
    names = _town_names(init_ws)
    import_villages(init_ws, f)
    assert _town_names(init_ws) == names
    report = import_villages(init_ws, f)  # towns are derived now; their names must survive
    assert report.rejected == 0 and _town_names(init_ws) == names
    rederive_villages(init_ws)
    assert _town_names(init_ws) == names
    kind = init_ws.read("admin_units", where="code = ?", params=[f"{COUNTY_CODE}102"])["kind"].iloc[0]
    assert kind == "苏木"
    only_first = tmp_path / "first.csv"
    pd.read_csv(f, dtype=str).head(7).to_csv(only_first, index=False)  # 甲镇's villages only
    import_villages(init_ws, only_first, mode="replace")
    assert _town_names(init_ws) == names  # 丙苏木 lost its villages, not its name and code


def _imported(ws, tmp_path):
    """``init_ws`` with the seats of :func:`_seat_csv` imported; returns the CSV rows and the village units."""
    from grids.villages import import_villages

    f = tmp_path / "v.csv"
    _seat_csv(f)
    import_villages(ws, f)
    return pd.read_csv(f, dtype=str, keep_default_na=False), ws.read("admin_units", where="level = 'village'")


def _write(rows: list[dict] | pd.DataFrame, path):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_code_held_by_another_village_is_rejected(init_ws, tmp_path):
    from grids.villages import import_villages

    _, villages = _imported(init_ws, tmp_path)
    real = villages[~villages["provisional_code"].astype(bool)]
    a, b = real.iloc[0], real[real["parent_code"] == real.iloc[0]["parent_code"]].iloc[1]
    seat = init_ws.read("seats", where="code = ?", params=[b["code"]]).geometry.iloc[0]
    prov = villages[villages["provisional_code"].astype(bool)]
    p, q = prov.iloc[0], prov[prov["parent_code"] == prov.iloc[0]["parent_code"]].iloc[1]
    pseat = init_ws.read("seats", where="code = ?", params=[p["code"]]).geometry.iloc[0]
    f = _write([{"村名": b["name"], "代码": a["code"], "乡镇代码": b["parent_code"], "经度": seat.x, "纬度": seat.y},
                {"村名": p["name"], "代码": q["code"], "乡镇代码": p["parent_code"], "经度": pseat.x,
                 "纬度": pseat.y}], tmp_path / "c.csv")
    report = import_villages(init_ws, f)
    assert report.rejected == 2
    reasons = report.rejects["原因"].tolist()
    assert f"代码 {a['code']} 已属于 {a['name']}" in reasons and f"代码 {q['code']} 已属于 {q['name']}" in reasons
    after = init_ws.read("admin_units", where="level = 'village'")
    assert dict(zip(after["code"], after["name"], strict=True)) == dict(
        zip(villages["code"], villages["name"], strict=True))


def test_replace_with_rejected_rows_writes_nothing(init_ws, tmp_path):
    from grids.villages import import_villages

    rows, villages = _imported(init_ws, tmp_path)
    part = rows.head(3).copy()
    part.loc[2, "经度"] = "abc"
    revision = init_ws.revision
    report = import_villages(init_ws, _write(part, tmp_path / "r.csv"), mode="replace")
    assert report.rejected == 1 and not report.written
    assert init_ws.revision == revision
    assert init_ws.count("admin_units", where="level = 'village'") == len(villages)


def test_replace_that_orphans_households_is_refused_and_codes_are_never_reused(init_ws, tmp_path):
    from grids.errors import ValidationError
    from grids.villages import import_villages

    rows, villages = _imported(init_ws, tmp_path)
    town = f"{COUNTY_CODE}100"
    prov = villages[villages["provisional_code"].astype(bool) & (villages["parent_code"] == town)]
    gone = prov.iloc[0]
    keep = rows[[canonical_village_name(n) != gone["name"] for n in rows["村名"]]]
    assert len(keep) == len(rows) - 1
    hh = gpd.GeoDataFrame([_household("H1", gone["code"], None)], geometry="geometry", crs=4490)
    with init_ws.transaction(actor="test", action="导入") as tx:
        tx.append("households", hh.assign(segment="农牧户"))
    revision = init_ws.revision
    with pytest.raises(ValidationError, match=f"{gone['name']}（{gone['code']}，1 户）"):
        import_villages(init_ws, _write(keep, tmp_path / "k.csv"), mode="replace")
    assert init_ws.revision == revision
    with init_ws.transaction(actor="test", action="删除") as tx:
        tx.delete("households", where="hh_id = 'H1'")
    import_villages(init_ws, tmp_path / "k.csv", mode="replace")  # nobody points at it: the village may go
    assert gone["code"] not in set(init_ws.read("admin_units", where="level = 'village'")["code"])
    seat = _outline().geometry.iloc[0].intersection(TOWNS[town][1]).representative_point()
    report = import_villages(init_ws, _write([{"村名": "新来村", "乡镇代码": town, "经度": seat.x, "纬度": seat.y}],
                                             tmp_path / "n.csv"))
    assert report.imported == 1
    new = init_ws.read("admin_units", where="name = '新来村'")["code"].iloc[0]
    assert new.startswith(town) and int(new[-3:]) > max(int(c[-3:]) for c in prov["code"])


def test_unknown_town_code_of_the_county_is_rejected_with_the_closest(init_ws, tmp_path):
    from grids.villages import import_villages

    f = _write([{"村名": "幻影村", "乡镇代码": f"{COUNTY_CODE}999", "经度": 119.05, "纬度": 43.95}],
               tmp_path / "t.csv")
    report = import_villages(init_ws, f)
    assert report.rejected == 1 and report.rejects["原因"].iloc[0] == "本县没有这个乡镇代码"
    assert f"{COUNTY_CODE}1" in report.rejects["修正方法"].iloc[0]
    assert f"{COUNTY_CODE}999" not in set(init_ws.read("admin_units")["code"])


def test_control_and_bidi_characters_are_removed_from_names(init_ws, tmp_path):
    from grids.villages import import_villages

    f = _write([{"村名": "坏\x07名\u202e村", "乡镇": "甲镇", "经度": 119.05, "纬度": 43.95}], tmp_path / "x.csv")
    assert import_villages(init_ws, f).imported == 1
    assert "坏名村" in set(init_ws.read("admin_units", where="level = 'village'")["name"])


def test_a_village_at_the_place_of_a_stored_one_is_a_rejected_row(init_ws, tmp_path):
    from grids.villages import import_villages

    rows, villages = _imported(init_ws, tmp_path)
    first = rows.iloc[0]
    f = _write([{"村名": "叠加村", "乡镇": "甲镇", "经度": first["经度"], "纬度": first["纬度"]},
                {"村名": "另一村", "乡镇": "甲镇", "经度": 119.0123, "纬度": 43.9012}], tmp_path / "s.csv")
    report = import_villages(init_ws, f)
    assert report.rejected == 1 and report.imported == 1
    assert "的村委会位置相同" in report.rejects["原因"].iloc[0]
    assert init_ws.count("admin_units", where="level = 'village'") == len(villages) + 1


def test_a_provisional_code_households_still_use_is_not_reused(init_ws, tmp_path):
    from grids.villages import ISSUED_META_KEY, import_villages

    _, villages = _imported(init_ws, tmp_path)
    town = f"{COUNTY_CODE}100"
    prov = villages[villages["provisional_code"].astype(bool) & (villages["parent_code"] == town)]
    top = prov.sort_values("code").iloc[-1]
    hh = gpd.GeoDataFrame([_household("H1", top["code"], None)], geometry="geometry", crs=4490)
    with init_ws.transaction(actor="test", action="导入") as tx:  # a workspace orphaned before this fix
        tx.execute("DELETE FROM ws_meta WHERE key = ?", (ISSUED_META_KEY,))
        tx.delete("admin_units", where="code = ?", params=[top["code"]])
        tx.delete("seats", where="code = ?", params=[top["code"]])
        tx.append("households", hh.assign(segment="农牧户"))
    seat = TOWNS[town][1].representative_point()
    import_villages(init_ws, _write([{"村名": "新来村", "乡镇代码": town, "经度": seat.x, "纬度": seat.y}],
                                    tmp_path / "n.csv"))
    new = init_ws.read("admin_units", where="name = '新来村'")["code"].iloc[0]
    assert new != top["code"] and int(new[-3:]) > int(top["code"][-3:])


def test_a_rejects_file_that_cannot_be_written_is_a_clear_error_and_nothing_is_imported(init_ws, tmp_path):
    from grids.errors import ValidationError
    from grids.villages import import_villages

    f = _write([{"村名": "幻影村", "乡镇代码": f"{COUNTY_CODE}999", "经度": 119.05, "纬度": 43.95}],
               tmp_path / "t.csv")
    (tmp_path / "plain-file").write_text("")  # a file where the rejects folder should be: no mkdir, even as root
    revision = init_ws.revision
    with pytest.raises(ValidationError, match=r"无法写出拒绝行文件 t\.rejects\.csv") as err:
        import_villages(init_ws, f, rejects_path=tmp_path / "plain-file" / "t.rejects.csv")
    assert err.value.file == "t.csv" and "--rejects" in (err.value.fix or "")
    assert init_ws.revision == revision

