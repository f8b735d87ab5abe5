"""Registers keyed by names (issue 14): name normalisation, matching within a town, rejects with candidates,
confirmed names (``--names``), re-importing the rejects, ``--mode update``."""

from __future__ import annotations

import csv
import json
import unicodedata

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids import names as N
from grids.__main__ import main
from grids.errors import ValidationError
from grids.ingest import import_file, read_table, validate
from grids.workspace import GpkgWorkspace, Workspace

from .conftest import cli_user

# A small county: two towns; 隆昌镇 has four villages (三家村 with three named groups, 三家子村 with two groups
# known only by code, 巴彦塔拉嘎查 and 红旗社区 without groups), 林东镇 one village (东山村) with two groups.
TOWNS = {"150422100": ("林东镇", (119.0, 43.5, 119.3, 44.1)), "150422101": ("隆昌镇", (119.3, 43.5, 119.7, 44.1))}
VILLAGES = {
    "150422101201": ("三家村", (119.3, 43.5, 119.4, 43.8)),
    "150422101203": ("三家子村", (119.4, 43.5, 119.5, 43.8)),
    "150422101202": ("巴彦塔拉嘎查", (119.5, 43.5, 119.7, 43.8)),
    "150422101204": ("红旗社区", (119.3, 43.8, 119.7, 44.1)),
    "150422100201": ("东山村", (119.0, 43.5, 119.3, 44.1)),
}
GROUPS = {
    "150422101201001": "一组", "150422101201002": "二组", "150422101201003": "三组",
    "150422101203001": None, "150422101203002": None,
    "150422100201001": "一组", "150422100201002": "二组",
}


def units() -> gpd.GeoDataFrame:
    rows = [("150422", "county", None, "巴林左旗", shapely.box(119.0, 43.5, 119.7, 44.1))]
    rows += [(c, "town", "150422", n, shapely.box(*b)) for c, (n, b) in TOWNS.items()]
    rows += [(c, "village", c[:9], n, shapely.box(*b)) for c, (n, b) in VILLAGES.items()]
    for c, n in GROUPS.items():
        x0, y0, x1, y1 = VILLAGES[c[:12]][1]
        k, total = int(c[-3:]) - 1, sum(1 for g in GROUPS if g[:12] == c[:12])
        w = (x1 - x0) / total
        rows.append((c, "group", c[:12], n, shapely.box(x0 + k * w, y0, x0 + (k + 1) * w, y1)))
    return gpd.GeoDataFrame(rows, columns=["code", "level", "parent_code", "name", "geometry"], crs=4490)


@pytest.fixture
def ws(tmp_path) -> Workspace:
    w = GpkgWorkspace.create(tmp_path / "ws.gpkg", county_code="150422", county_name="巴林左旗")
    with w.transaction(actor="test", action="准备") as tx:
        tx.replace("admin_units", units())
    return w


# -- normalisation -------------------------------------------------------------------------------------------

VILLAGE_VARIANTS = ["三家", "三家村", "三家村委会", "三家村村委会", "三家村民委员会", "三家嘎查", "三家嘎查村",
                    "三家社区", "三家居委会", " 三家\u3000村 ", "三家村\u200b", "三家（村）"]
GROUP_VARIANTS = ["一组", "1组", "第一村民小组", "第一组", "一社", "1社", "01组", "001", "１组", "一小组", "第1村民小组",
                  "一队", "三家村一组", "1"]


@pytest.mark.parametrize("variant", VILLAGE_VARIANTS)
def test_village_name_variants_normalise_equal(variant):
    assert N.village_key(variant) == N.village_key("三家村") == "三家"
    assert N.village_key(variant) != N.village_key("三家子村")


def test_control_and_bidi_characters_do_not_stop_a_match():
    got = N.match_names(["三家\x00村", "三家\u202e村"], ["隆昌镇"] * 2, candidates=units())
    assert [m.code for m in got] == ["150422101201"] * 2


@pytest.mark.parametrize("variant", GROUP_VARIANTS)
def test_group_name_variants_normalise_to_group_one(variant):
    assert N.group_key(variant) == "1"
    assert N.group_label(variant) == "1组"


@pytest.mark.parametrize(("name", "number"), [("十组", "10"), ("第十一村民小组", "11"), ("二十三社", "23"),
                                              ("12组", "12"), ("两组", "2")])
def test_group_numbers_beyond_nine(name, number):
    assert N.group_key(name) == number


def test_town_names_with_and_without_suffix_and_codes():
    got = N.match_towns(["林东", "林东镇", "150422101", "隆昌镇人民政府", "", "新城镇"], candidates=units())
    assert [m.code if m else None for m in got] == ["150422100", "150422100", "150422101", "150422101", None, None]
    assert got[-1].how == "unknown" and got[-1].candidates


# -- matching -------------------------------------------------------------------------------------------------

def test_match_within_town_and_candidates_for_unknown():
    got = N.match_names(["三家村委会", "三家子", "隆昌镇三家子村", "三家屯", "东山村"], ["隆昌镇"] * 5,
                        candidates=units())
    assert [m.code for m in got[:3]] == ["150422101201", "150422101203", "150422101203"]
    unknown = got[3]
    assert unknown.code is None and unknown.how == "unknown"
    assert {c.code for c in unknown.candidates[:2]} == {"150422101201", "150422101203"}
    assert unknown.candidates[0].score >= unknown.candidates[-1].score
    assert N.suggestion(unknown.candidates[:1]).startswith("是否指：三家")
    # 东山村 exists, but in 林东镇: not taken from another town
    assert got[4].code is None and got[4].how == "unknown"


def test_ambiguous_names_are_not_matched():
    u = units()
    extra = gpd.GeoDataFrame([("150422101205", "village", "150422101", "三家嘎查", shapely.box(119.6, 43.9, 119.7, 44.0))],
                             columns=["code", "level", "parent_code", "name", "geometry"], crs=4490)
    u = pd.concat([u, extra], ignore_index=True)
    m = N.match_names(["三家村委会"], town="隆昌镇", candidates=u)[0]
    assert m.code is None and m.how == "ambiguous"
    assert {c.code for c in m.candidates} == {"150422101201", "150422101205"}
    # the name exactly as one unit spells it is not ambiguous
    assert N.match_names(["三家嘎查"], town="隆昌镇", candidates=u)[0].code == "150422101205"


def test_county_wide_without_town_unique_only():
    u = units()
    other = gpd.GeoDataFrame([("150422100202", "village", "150422100", "三家村", shapely.box(119.0, 43.5, 119.1, 43.6))],
                             columns=["code", "level", "parent_code", "name", "geometry"], crs=4490)
    u2 = pd.concat([u, other], ignore_index=True)
    assert N.match_names(["东山"], candidates=u)[0].code == "150422100201"
    m = N.match_names(["三家村"], candidates=u2)[0]
    assert m.code is None and m.how == "ambiguous"


def test_aliases_win_and_are_scoped_to_their_town():
    aliases = pd.DataFrame({"level": ["village"], "parent_code": ["150422101"], "alias": ["三家屯"],
                            "code": ["150422101203"]})
    got = N.match_names(["三家屯", "三家屯"], ["隆昌镇", "林东镇"], candidates=units(), aliases=aliases)
    assert (got[0].code, got[0].how) == ("150422101203", "alias")
    assert got[1].code is None
    # without a town the alias applies when it names one unit in the whole county
    assert N.match_names(["三家屯"], candidates=units(), aliases=aliases)[0].code == "150422101203"


def test_groups_by_name_and_by_code_number():
    got = N.match_groups(["第二村民小组", "2社", "五组", "一组"],
                         ["150422101201", "150422101203", "150422101201", "150422101202"], candidates=units())
    assert [m.code for m in got[:2]] == ["150422101201002", "150422101203002"]
    assert got[2].how == "unknown" and got[2].candidates
    assert got[3].how == "none"  # 巴彦塔拉嘎查 has no group units: placed by village


# -- the register import ------------------------------------------------------------------------------------

def _inside(code: str, rng: np.random.Generator) -> tuple[float, float]:
    x0, y0, x1, y1 = VILLAGES[code][1] if len(code) == 12 else units().set_index("code").geometry[code].bounds
    return round(float(rng.uniform(x0 + 0.01, x1 - 0.01)), 6), round(float(rng.uniform(y0 + 0.01, y1 - 0.01)), 6)


VARIANT = {"三家村": "三家村委会", "三家子村": "三家子村民委员会", "巴彦塔拉嘎查": "巴彦塔拉嘎查村", "红旗社区": "红旗居委会",
           "东山村": "东山"}
GROUP_VARIANT = {"一组": "第一村民小组", "二组": "2社", "三组": "03组"}
UNKNOWN = [("隆昌镇", "三家屯"), ("隆昌镇", "新发村"), ("林东镇", "东山屯"), ("隆昌镇", "巴彦嘎查")]


def register(n: int = 400, *, seed: int = 14) -> tuple[list[list[str]], dict[str, object]]:
    """A register keyed by names: 5 % variant spellings, 1 % unknown villages, 20 % with GPS points."""
    rng = np.random.default_rng(seed)
    codes = list(VILLAGES)
    rows, truth = [], {"variants": 0, "unknown": [], "points": 0, "village": {}}
    unknown_at = set(rng.choice(n, size=max(1, n // 100), replace=False).tolist())
    variant_at = set(rng.choice(sorted(set(range(n)) - unknown_at), size=n // 20, replace=False).tolist())
    point_at = set(rng.choice(n, size=n // 5, replace=False).tolist())
    for i in range(n):
        code = codes[i % len(codes)]
        town = TOWNS[code[:9]][0]
        village = VILLAGES[code][0]
        groups = [g for g in GROUPS if g[:12] == code]
        group_code = groups[i % len(groups)] if groups else None
        group = GROUPS.get(group_code) or (f"{int(group_code[-3:])}组" if group_code else "")
        if i in variant_at:
            village = VARIANT[village]
            group = GROUP_VARIANT.get(group, group)
            truth["variants"] += 1
        if i in unknown_at:
            town, village = UNKNOWN[len(truth["unknown"]) % len(UNKNOWN)]
            truth["unknown"].append(f"H{i:04d}")
        lon = lat = ""
        if i in point_at and i not in unknown_at:
            lon, lat = _inside(group_code or code, rng)
            truth["points"] += 1
        truth["village"][f"H{i:04d}"] = code
        rows.append([f"H{i:04d}", f"户主{i}", "农牧户", town, village, group, str(lon), str(lat)])
    return rows, truth


def write_register(path, rows) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["户号", "户主姓名", "客户类型", "乡镇", "村（嘎查）", "村民小组", "经度", "纬度"])
        w.writerows(rows)


def test_register_by_names_rows_in_equal_imported_plus_rejected(ws, tmp_path):
    rows, truth = register(400)
    src = tmp_path / "register.csv"
    write_register(src, rows)
    report = import_file(ws, "households", src, rejects_path=tmp_path / "rej.csv", coords="wgs84")
    assert report.read == 400
    assert report.imported + report.rejected == report.read
    assert report.rejected == len(truth["unknown"])
    rejects = pd.read_csv(tmp_path / "rej.csv", dtype=str, encoding="utf-8-sig")
    assert sorted(rejects["户号"]) == sorted(truth["unknown"])
    assert (rejects["原因"] == "村名无法识别").all()
    assert rejects["修正方法"].str.contains(r"是否指：.+（15042210\d{4}）", regex=True).all()
    hh = ws.read("households")
    by_id = hh.set_index("hh_id")
    for hid in by_id.index:
        assert by_id.at[hid, "village_code"] == truth["village"][hid]
    assert (hh["placed_by"] == "point").sum() == truth["points"]
    assert set(hh["placed_by"]) == {"point", "name"}
    # groups: named ones matched to their codes, code-only groups by the number, none where the village has none
    sanjia = hh[hh["village_code"] == "150422101201"]
    assert sanjia["group_code"].str.startswith("150422101201").all()
    assert hh[hh["village_code"] == "150422101203"]["group_code"].notna().all()
    bayan = hh[hh["village_code"] == "150422101202"]
    assert bayan["group_code"].isna().all()


def test_rejects_reimport_after_names_mapping(ws, tmp_path):
    rows, truth = register(300, seed=3)
    src = tmp_path / "register.csv"
    write_register(src, rows)
    rej = tmp_path / "register.rejects.csv"
    first = import_file(ws, "households", src, rejects_path=rej, coords="wgs84")
    assert first.rejected == len(truth["unknown"]) > 0
    # the user confirms each unknown name once (as the rejects file suggested)
    rejects = pd.read_csv(rej, dtype=str, encoding="utf-8-sig")
    mapping = tmp_path / "names.csv"
    with mapping.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["乡镇", "登记名称", "行政区划代码"])
        for town, village in rejects[["乡镇", "村（嘎查）"]].drop_duplicates().itertuples(index=False):
            code = next(c for c in VILLAGES if TOWNS[c[:9]][0] == town)
            w.writerow([town, village, code])
    again = import_file(ws, "households", rej, names=mapping, coords="wgs84")
    assert again.rejected == 0 and again.imported == first.rejected
    assert ws.count("households") == 300
    aliases = ws.read("name_aliases")
    assert len(aliases) == len(rejects[["乡镇", "村（嘎查）"]].drop_duplicates())
    assert aliases["actor"].notna().all() and aliases["confirmed_at"].notna().all()
    actions = ws.read("audit")["action"].tolist()
    assert "确认名称" in actions
    # and every later import takes them, without --names
    more = tmp_path / "more.csv"
    write_register(more, [["X1", "某", "农牧户", rejects["乡镇"].iloc[0], rejects["村（嘎查）"].iloc[0], "", "", ""]])
    assert import_file(ws, "households", more).rejected == 0


def test_names_template_lists_each_unknown_once_and_imports_once_filled(ws, tmp_path):
    rows, truth = register(300, seed=5)
    src = tmp_path / "register.csv"
    write_register(src, rows)
    rej = tmp_path / "rej.csv"
    report = import_file(ws, "households", src, rejects_path=rej)
    template = tmp_path / "names.csv"
    template.write_bytes(report.names_template_csv())
    t = pd.read_csv(template, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(t.columns) == ["乡镇", "登记名称", "行政区划代码", "候选"]
    assert len(t) == len({(r[3], r[4]) for r in rows if r[0] in truth["unknown"]})
    assert t["候选"].str.startswith("是否指：").all()
    # an untouched template confirms nothing; filled with the first candidate it does
    assert import_file(ws, "households", rej, names=template).imported == 0
    t["行政区划代码"] = t["候选"].str.extract(r"（(\d{12})）", expand=False)
    t.to_csv(template, index=False)
    again = import_file(ws, "households", rej, names=template)
    assert again.rejected == 0 and ws.count("households") == 300



def test_names_confirmed_while_every_row_is_rejected_are_reported_as_kept(ws, tmp_path):
    """The mapping is its own audited write: when no row of the file can be taken, the report says the names
    were confirmed and that no row was imported, never that the workspace is unchanged."""
    rows, truth = register(300, seed=5)
    src = tmp_path / "register.csv"
    write_register(src, rows)
    report = import_file(ws, "households", src, rejects_path=tmp_path / "rej.csv")
    template = tmp_path / "names.csv"
    template.write_bytes(report.names_template_csv())
    t = pd.read_csv(template, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    t["行政区划代码"] = t["候选"].str.extract(r"（(\d{12})）", expand=False)
    t.to_csv(template, index=False)
    taken = [r for r in rows if r[0] not in truth["unknown"]]
    unknown = [r for r in rows if r[0] in truth["unknown"]]
    clash = tmp_path / "clash.csv"  # the unknown names again, under ids already imported: every row refused
    write_register(clash, [[taken[i][0], *r[1:]] for i, r in enumerate(unknown)])
    aliases, revision = ws.count("name_aliases"), ws.revision
    again = import_file(ws, "households", clash, names=template)
    assert again.imported == 0 and again.rejected == len(unknown) and not again.written
    assert ws.count("name_aliases") > aliases and ws.revision > revision
    text = "\n".join(again.warnings)
    assert "个名称已确认" in text and "未导入任何数据" in text and "工作区未改动" not in text

def test_check_file_uses_a_mapping_in_memory_only(ws, tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,乡镇,村\nA1,农牧户,隆昌镇,三家屯\n", encoding="utf-8")
    mapping = tmp_path / "names.csv"
    mapping.write_text("乡镇,登记名称,行政区划代码\n隆昌镇,三家屯,150422101203\n", encoding="utf-8")
    from grids.ingest import check_file

    assert check_file(ws, "households", src).rejected == 1
    report = check_file(ws, "households", src, names=mapping)
    assert report.rejected == 0 and report.accepted["village_code"].tolist() == ["150422101203"]
    assert ws.count("name_aliases") == 0 and ws.count("households") == 0 and ws.revision == 1


def test_bad_names_mapping_is_refused_whole(ws, tmp_path):
    mapping = tmp_path / "names.csv"
    mapping.write_text("乡镇,登记名称,行政区划代码\n隆昌镇,三家屯,150422101201\n隆昌镇,新发村,150422101999\n",
                       encoding="utf-8")
    src = tmp_path / "r.csv"
    write_register(src, [["A1", "甲", "农牧户", "隆昌镇", "三家村", "一组", "", ""]])
    with pytest.raises(ValidationError, match="150422101999"):
        import_file(ws, "households", src, names=mapping)
    assert ws.count("name_aliases") == 0 and ws.count("households") == 0


def test_names_mapping_by_standard_name_and_group_alias(ws, tmp_path):
    mapping = tmp_path / "names.csv"
    mapping.write_text("乡镇,村,登记名称,标准名称\n隆昌镇,,三家屯,三家子村\n隆昌镇,三家村,南队,三组\n", encoding="utf-8")
    got = N.read_name_mapping(mapping, candidates=units())
    assert got.set_index("alias")["code"].to_dict() == {"三家屯": "150422101203", "南队": "150422101201003"}
    src = tmp_path / "r.csv"
    write_register(src, [["A1", "甲", "农牧户", "隆昌镇", "三家村", "南队", "", ""]])
    report = import_file(ws, "households", src, names=mapping)
    assert report.rejected == 0
    assert ws.read("households")["group_code"].tolist() == ["150422101201003"]


def test_town_option_and_unknown_town(ws, tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,村,组\nA1,农牧户,三家子村,1组\nA2,农牧户,东山村,一组\n", encoding="utf-8")
    report = validate(read_table(src), target_layer="households", workspace=ws, source_name="r.csv", town="隆昌")
    assert len(report.accepted) == 1 and report.accepted["group_code"].tolist() == ["150422101203001"]
    assert report.rejects["修正方法"].str.contains("是否指").all()
    with pytest.raises(ValidationError, match="新城镇") as exc:
        validate(read_table(src), target_layer="households", workspace=ws, source_name="r.csv", town="新城镇")
    assert "是否指" in exc.value.fix
    # a 乡镇 cell that names no town rejects that row, with the closest towns
    src.write_text("户号,客户类型,乡镇,村\nA1,农牧户,新城镇,三家村\nA2,农牧户,隆昌,三家村\n", encoding="utf-8")
    bad = validate(read_table(src), target_layer="households", workspace=ws, source_name="r.csv")
    assert bad.rejected == 1 and bad.reasons() == {"乡镇无法识别": 1}
    assert "是否指：" in bad.rejects["修正方法"].iloc[0] and bad.rejects["列"].iloc[0] == "乡镇"


def test_codes_win_over_names_and_placed_by(ws, tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,村代码,乡镇,村,经度,纬度\n"
                   "A1,农牧户,150422101203,隆昌镇,三家村,,\n"
                   "A2,农牧户,,隆昌镇,三家村,,\n"
                   "A3,农牧户,,隆昌镇,三家村,119.35,43.6\n", encoding="utf-8")
    report = import_file(ws, "households", src, coords="wgs84")
    assert report.rejected == 0
    hh = ws.read("households").set_index("hh_id")
    assert hh["village_code"].to_dict() == {"A1": "150422101203", "A2": "150422101201", "A3": "150422101201"}
    assert hh["placed_by"].to_dict() == {"A1": "code", "A2": "name", "A3": "point"}


def test_group_kept_as_label_when_village_has_no_groups(ws, tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,乡镇,嘎查,社\nA1,农牧户,隆昌镇,巴彦塔拉,第二村民小组\n", encoding="utf-8")
    report = import_file(ws, "households", src)
    assert report.rejected == 0
    row = ws.read("households").iloc[0]
    assert (row["village_code"], row["group_name"]) == ("150422101202", "2组")
    assert pd.isna(row["group_code"])


def test_unknown_group_rejected_with_candidates(ws, tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,乡镇,村,组\nA1,农牧户,隆昌镇,三家村,九组\n", encoding="utf-8")
    report = import_file(ws, "households", src)
    assert report.rejected == 1 and report.reasons() == {"组名无法识别": 1}
    assert "是否指：" in report.rejects["修正方法"].iloc[0]


def test_visits_by_names_checked_against_the_household(ws, tmp_path):
    hh = tmp_path / "hh.csv"
    hh.write_text("户号,客户类型,乡镇,村,组\nA1,农牧户,隆昌镇,三家村,一组\nA2,农牧户,隆昌镇,三家子村,一组\n",
                  encoding="utf-8")
    import_file(ws, "households", hh)
    visits = tmp_path / "v.csv"
    visits.write_text("户号,走访日期,乡镇,村,组\n"
                      "A1,2024-03-01,隆昌镇,三家村委会,第一村民小组\n"
                      "A2,2024-03-01,隆昌镇,三家村,一组\n"
                      "A1,2024-03-02,隆昌镇,三家屯,一组\n", encoding="utf-8")
    report = import_file(ws, "visits", visits)
    assert report.read == report.imported + report.rejected == 3
    assert report.reasons() == {"户号与村名不符": 1, "村名无法识别": 1}
    assert ws.read("visits")["hh_id"].tolist() == ["A1"]


# -- update mode -----------------------------------------------------------------------------------------------

def test_update_mode_changes_only_given_cells_bumps_versions_and_audits(ws, tmp_path):
    src = tmp_path / "hh.csv"
    src.write_text("户号,户主姓名,客户类型,联系电话,乡镇,村,组,授信金额\n"
                   "A1,张三,农牧户,13800000001,隆昌镇,三家村,一组,50000\n"
                   "A2,李四,农牧户,13800000002,隆昌镇,三家村,二组,60000\n"
                   "A3,王五,农牧户,13800000003,隆昌镇,三家村,三组,70000\n", encoding="utf-8")
    import_file(ws, "households", src)
    before = ws.read("households").set_index("hh_id")
    upd = tmp_path / "upd.csv"
    upd.write_text("户号,联系电话,乡镇,村,授信金额\n"
                   "A1,13900000009,,,\n"
                   "A2,,隆昌镇,三家子村,\n"
                   "A3,,,,70000\n"
                   "Z9,13900000000,,,\n", encoding="utf-8")
    report = import_file(ws, "households", upd, mode="update")
    assert report.read == 4 and report.rejected == 1 and report.reasons() == {"户号不在工作区中": 1}
    assert (report.imported, report.unchanged) == (3, 1)  # A3 taken, but nothing in it changed
    assert "1 行与工作区相同" in report.summary()
    after = ws.read("households").set_index("hh_id")
    assert len(after) == 3
    assert after.at["A1", "phone"] == "13900000009" and after.at["A1", "head_name"] == "张三"
    assert after.at["A1", "granted_amount"] == 50000 and after.at["A1", "group_code"] == before.at["A1", "group_code"]
    assert after.at["A2", "village_code"] == "150422101203" and pd.isna(after.at["A2", "group_code"])
    assert after.at["A2", "phone"] == "13800000002"
    def version(frame, h):
        v = frame.at[h, "version"]
        return 0 if pd.isna(v) else int(v)

    versions = {h: version(after, h) - version(before, h) for h in ("A1", "A2", "A3")}
    assert versions == {"A1": 1, "A2": 1, "A3": 0}
    audit = ws.read("audit").iloc[-1]
    assert audit["action"] == "导入"
    detail = next(d for d in json.loads(audit["detail"]) if d.get("op") == "update")
    changed = {c["hh_id"]: c for c in detail["changed"]}
    assert set(changed) == {"A1", "A2"}
    assert changed["A2"]["before"]["village_code"] == "150422101201"
    assert changed["A2"]["after"]["village_code"] == "150422101203"
    assert changed["A1"]["after"]["phone"] == "（已更改）"  # no personal data copied into the audit
    assert detail["columns"]["phone"] == 1 and detail["unchanged"] == 1


def test_update_mode_applies_a_group_alone_and_clears_a_stale_group_name(ws, tmp_path):
    src = tmp_path / "hh.csv"
    src.write_text("户号,客户类型,乡镇,村,组\n"
                   "A1,农牧户,隆昌镇,三家村,一组\n"
                   "A2,农牧户,隆昌镇,巴彦塔拉嘎查,4组\n", encoding="utf-8")
    import_file(ws, "households", src)
    assert ws.read("households").set_index("hh_id").at["A2", "group_name"] == "4组"
    upd = tmp_path / "upd.csv"
    upd.write_text("户号,乡镇,村,组\n"
                   "A1,,,二组\n"  # a new group within the household's current village
                   "A2,隆昌镇,红旗社区,\n", encoding="utf-8")  # another village, no group given
    report = import_file(ws, "households", upd, mode="update")
    assert (report.rejected, report.imported, report.unchanged) == (0, 2, 0)
    after = ws.read("households").set_index("hh_id")
    assert after.at["A1", "village_code"] == "150422101201" and after.at["A1", "group_code"] == "150422101201002"
    assert after.at["A2", "village_code"] == "150422101204" and pd.isna(after.at["A2", "group_name"])
    pointed = tmp_path / "pt.csv"  # a household known by its point only: a group alone cannot be placed
    pointed.write_text("户号,客户类型,经度,纬度\nA3,农牧户,119.35,43.6\n", encoding="utf-8")
    import_file(ws, "households", pointed, coords="wgs84")
    upd.write_text("户号,组\nA3,二组\n", encoding="utf-8")
    report = import_file(ws, "households", upd, mode="update")
    assert report.reasons() == {"改组需同时填写村": 1}


@pytest.mark.parametrize("written", ["1-2组", "3.5组", "-1组", "零组", "三组（东）"])
@pytest.mark.parametrize("village", ["三家村", "巴彦塔拉嘎查"])  # with group units, and without
def test_group_names_that_are_not_one_group_are_rejected(ws, tmp_path, written, village):
    assert N.group_name_unclear(written)
    src = tmp_path / "hh.csv"
    src.write_text(f"户号,客户类型,乡镇,村,组\nA1,农牧户,隆昌镇,{village},{written}\n", encoding="utf-8")
    report = import_file(ws, "households", src)
    assert report.imported == 0 and report.reasons() == {"组名无法识别": 1}
    assert unicodedata.normalize("NFKC", written) in report.rejects["修正方法"].iloc[0]


def test_a_mapping_cannot_give_a_villages_exact_name_to_another(ws, tmp_path):
    mapping = tmp_path / "names.csv"
    mapping.write_text("乡镇,登记名称,行政区划代码\n隆昌镇,三家村,150422101203\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="三家村（150422101201）的名称"):
        N.read_name_mapping(mapping, candidates=units())
    mapping.write_text("乡镇,登记名称,行政区划代码\n隆昌镇,三家屯,150422101203\n", encoding="utf-8")
    assert N.read_name_mapping(mapping, candidates=units())["code"].tolist() == ["150422101203"]


def test_default_mode_still_refuses_existing_ids(ws, tmp_path):
    src = tmp_path / "hh.csv"
    src.write_text("户号,客户类型,乡镇,村\nA1,农牧户,隆昌镇,三家村\n", encoding="utf-8")
    assert import_file(ws, "households", src).imported == 1
    again = import_file(ws, "households", src)
    assert again.imported == 0 and again.reasons() == {"户号已存在于工作区": 1}
    with pytest.raises(ValidationError, match="更新方式"):
        import_file(ws, "staff", src, mode="update")


# -- the command line -------------------------------------------------------------------------------------------

def test_cli_names_user_and_exit_codes(ws, tmp_path, monkeypatch, capsys):
    rows, truth = register(200, seed=7)
    src = tmp_path / "register.csv"
    write_register(src, rows)
    rej = tmp_path / "rej.csv"
    # no --user: refused before anything is read (exit 2); a wrong password likewise
    with pytest.raises(SystemExit) as exc:
        main(["import", str(ws.path), "households", str(src), "--rejects", str(rej)])
    assert exc.value.code == 2
    user = cli_user(ws, monkeypatch, username="planner1", role="planner")
    monkeypatch.setenv("GRIDS_PASSWORD", "wrong")
    assert main(["import", str(ws.path), "households", str(src), "--user", user]) == 2
    assert ws.count("households") == 0 and not rej.exists()
    user = cli_user(ws, monkeypatch, username="planner1", role="planner")
    assert main(["import", str(ws.path), "households", str(src), "--rejects", str(rej), "--coords", "wgs84",
                 "--user", user]) == 1
    out = capsys.readouterr().out
    assert "拒绝" in out and str(rej) in out
    template = tmp_path / "rej.names.csv"
    assert str(template) in out and "是否指" in template.read_text(encoding="utf-8-sig")
    rejects = pd.read_csv(rej, dtype=str, encoding="utf-8-sig")
    assert sorted(rejects["户号"]) == sorted(truth["unknown"])
    mapping = tmp_path / "names.csv"
    pairs = rejects[["乡镇", "村（嘎查）"]].drop_duplicates()
    mapping.write_text("乡镇,登记名称,行政区划代码\n" + "".join(
        f"{t},{v},{next(c for c in VILLAGES if TOWNS[c[:9]][0] == t)}\n" for t, v in pairs.itertuples(index=False)),
        encoding="utf-8")
    assert main(["import", str(ws.path), "households", str(rej), "--names", str(mapping), "--coords", "wgs84",
                 "--user", user]) == 0
    assert "名称对照表" in capsys.readouterr().out
    assert ws.count("households") == 200
    audit = ws.read("audit")
    assert set(audit[audit["action"].isin(["导入", "确认名称"])]["actor"]) == {user}
    # a broken mapping: exit 2, nothing changed
    mapping.write_text("乡镇,登记名称\n隆昌镇,三家屯\n", encoding="utf-8")
    n_audit = len(audit)
    assert main(["import", str(ws.path), "households", str(rej), "--names", str(mapping), "--user", user]) == 2
    assert len(ws.read("audit")) == n_audit


def test_names_aliases_and_update_on_both_backends(any_ws, tmp_path):
    with any_ws.transaction(actor="test", action="准备") as tx:
        tx.replace("admin_units", units())
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,乡镇,村,组,联系电话\nA1,农牧户,隆昌镇,三家村委会,第二村民小组,13800000001\n"
                   "A2,农牧户,隆昌镇,三家屯,一组,13800000002\n", encoding="utf-8")
    rej = tmp_path / "rej.csv"
    first = import_file(any_ws, "households", src, rejects_path=rej)
    assert (first.imported, first.rejected) == (1, 1)
    mapping = tmp_path / "names.csv"
    mapping.write_text("乡镇,登记名称,行政区划代码\n隆昌镇,三家屯,150422101203\n", encoding="utf-8")
    assert import_file(any_ws, "households", rej, names=mapping).imported == 1
    assert any_ws.read("name_aliases")["code"].tolist() == ["150422101203"]
    upd = tmp_path / "u.csv"
    upd.write_text("户号,联系电话\nA2,13900000000\n", encoding="utf-8")
    assert import_file(any_ws, "households", upd, mode="update").unchanged == 0
    hh = any_ws.read("households").set_index("hh_id")
    assert hh.at["A1", "group_code"] == "150422101201002" and hh.at["A1", "placed_by"] == "name"
    assert hh.at["A2", "village_code"] == "150422101203" and hh.at["A2", "phone"] == "13900000000"
    assert int(hh.at["A2", "version"]) == 1


def test_candidate_ranking_equals_brute_force():
    rng = np.random.default_rng(0)
    chars = list("三家子红旗东山西沟巴彦塔拉乌兰哈达新发永兴太平")
    keys = ["".join(rng.choice(chars, size=int(rng.integers(2, 5)))) for _ in range(60)]
    pool = pd.DataFrame({"name": [k + "村" for k in keys], "code": [f"150422101{i:03d}" for i in range(60)]})
    for _ in range(30):
        key = "".join(rng.choice(chars, size=3))
        brute = sorted(((N.similarity(key, k), c) for k, c in zip(keys, pool["code"], strict=True)),
                       key=lambda t: (-t[0], t[1]))[: N.CANDIDATES]
        got = N._rank(key, pool, keys)
        assert [(c.code, c.score) for c in got] == [(c, round(s, 3)) for s, c in brute]


def test_rejects_file_rows_with_two_problems_are_read_once(ws, tmp_path):
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,联系电话,乡镇,村\nA1,农牧户,123,隆昌镇,三家屯\nA2,农牧户,13800000000,隆昌镇,三家村\n",
                   encoding="utf-8")
    rej = tmp_path / "rej.csv"
    first = import_file(ws, "households", src, rejects_path=rej)
    assert first.rejected == 1 and len(first.rejects) == 2  # one row, two problems
    again = import_file(ws, "households", rej)
    assert again.read == 1 and again.rejected == 1
    assert set(again.reasons()) == {"联系电话格式错误", "村名无法识别"}


def test_import_into_a_postgis_workspace_by_url(pg_ws, tmp_path):
    """What 数据管理 does: import_file with the workspace's URL, not a Workspace object."""
    with pg_ws.transaction(actor="test", action="准备") as tx:
        tx.replace("admin_units", units())
    src = tmp_path / "r.csv"
    src.write_text("户号,客户类型,乡镇,村,组\nA1,农牧户,隆昌镇,三家子村委会,2组\n", encoding="utf-8")
    report = import_file(pg_ws.target, "households", src)
    assert report.imported == 1
    assert pg_ws.read("households")["group_code"].tolist() == ["150422101203002"]
