"""Credit rules against the product catalogue, and the rating session (集中授信)."""

from __future__ import annotations

import pandas as pd
import pytest

from grids import credit
from grids.errors import ValidationError

V = "150422100201"


def households() -> pd.DataFrame:
    return pd.DataFrame({
        "hh_id": ["a", "b", "c", "d", "e", "f"],
        "head_name": ["甲", "乙", "丙", "丁", "戊", "己"],
        "id_no": ["150422198001011234", None, "150422198001015678", None, None, None],
        "phone": ["13812345678", None, None, None, None, None],
        "segment": ["农牧户", "农牧户", "公职人员", "小微企业", "农牧户", "社区居民"],
        "village_code": [V, V, V, "150422100202", V, V],
        "group_code": [V + "002", V + "001", None, None, V + "001", None],
        "archived": [True, True, True, True, False, True],
        "eligible": [True, True, True, True, False, False],
        "product": ["福农卡", "福农卡", "福薪卡", "福商卡", None, None],
        "grade": ["良好", "优秀", "标准", None, None, None],
        "granted_amount": [60000.0, 120000.0, 300000.0, 50000.0, 0.0, 0.0],
        "guarantee": [None, None, None, None, None, None],
        "job_level": [None, None, "科级", None, None, None],
        "signed": [True, False, False, False, False, False],
    })


# -- check_credit --------------------------------------------------------------------------------------------


def test_check_credit_bands_and_guarantee():
    problems = credit.check_credit(households())
    by_hh = problems.groupby("hh_id")["column"].apply(list).to_dict()
    # a: 良好 55k–70k, 60k fine; b: 优秀 85k–100k, 120k out; c: 福薪卡 科级 300k > 200k with no guarantee;
    # d: 福商卡 has one grade, so an empty grade is fine and 50k is in 50k–1m
    assert by_hh == {"b": ["granted_amount"], "c": ["guarantee"]}
    assert "85,000–100,000" in problems.set_index("hh_id").loc["b", "problem"]
    assert "公职人员保证或商厅楼房抵押" in problems.set_index("hh_id").loc["c", "fix"]
    assert problems.set_index("hh_id").loc["c", "rule"] == "guarantee"
    assert list(problems.index) == [1, 2]


def test_check_credit_guarantee_given_and_band_edges():
    hh = households().iloc[[2]].assign(guarantee="商厅楼房抵押")
    assert credit.check_credit(hh).empty
    edge = pd.DataFrame({"hh_id": ["x", "y", "z"], "product": ["福薪卡"] * 3, "grade": ["标准"] * 3,
                         "granted_amount": [200000.0, 700000.0, 700001.0], "guarantee": ["", "公职人员保证", "公职人员保证"],
                         "job_level": ["一般工作人员", "处级及以上", "处级及以上"]})
    assert credit.check_credit(edge)["hh_id"].tolist() == ["z", "z"]  # 标准 10万–70万 and 处级及以上 40万–70万
    # without 职务级别 a 福薪卡 may not exceed the lowest level's band (一般工作人员 ≤ 20万)
    no_level = edge.assign(job_level=None, granted_amount=[200000.0, 200001.0, 150000.0])
    assert credit.check_credit(no_level)[["hh_id", "rule"]].values.tolist() == [["y", "job_level"]]


def test_check_credit_unknown_product_and_grade_and_segment():
    hh = pd.DataFrame({"hh_id": ["p", "q", "r", "s", "t"], "segment": ["农牧户", "农牧户", "公职人员", "", "农牧户"],
                       "product": ["福X卡", "福农卡", "福农卡", None, None], "grade": ["", "白金", "一般", "", ""],
                       "granted_amount": [1.0, 50000.0, 45000.0, 1000.0, 30000.0], "guarantee": [""] * 5})
    p = credit.check_credit(hh).groupby("hh_id")["problem"].apply(list).to_dict()
    assert p["p"] == ["产品 “福X卡” 不在产品目录中"]
    assert p["q"] == ["福农卡 没有等级 “白金”"]
    assert p["r"] == ["福农卡 面向普通农牧户、家庭农牧场、农牧业专业合作社，客户类型 公职人员 不能办理"]
    assert p["s"] == ["已授信但没有产品"]
    # no product: the entity type's; no grade: the range open to it (普通农牧户 4万–10万)
    assert p["t"] == ["额度 30,000 元不在 普通农牧户的福农卡 的范围 40,000–100,000 元内"]


def test_check_credit_reads_the_catalogue_data(monkeypatch):
    from grids import products

    cat = {k: dict(v) for k, v in products.load_catalogue().items()}
    cat["福商卡"] = {**cat["福商卡"], "grades": [{"grade": "标准", "min": 60000, "max": 1000000}]}
    monkeypatch.setattr(products, "load_catalogue", lambda: cat)
    assert credit.check_credit(households())["hh_id"].tolist() == ["b", "c", "d"]


# -- rating session -----------------------------------------------------------------------------------------


def test_rating_list_is_the_villages_archived_households_masked():
    out = credit.rating_list(households(), V)
    # d is in another village, e is not archived; sorted by group code then id, no group last
    assert out["hh_id"].tolist() == ["b", "a", "c", "f"]
    assert out.set_index("hh_id").loc["a", "id_no"] == "150422********1234"
    assert out.set_index("hh_id").loc["a", "phone"] == "138****5678"
    assert out.set_index("hh_id").loc["f", "product"] == "福民卡"
    assert out.set_index("hh_id").loc["a", "grades"].startswith("一般、良好")
    full = credit.rating_list(households(), V, unmask=True)
    assert full.set_index("hh_id").loc["a", "id_no"] == "150422198001011234"


def test_rating_list_unknown_village():
    with pytest.raises(ValidationError, match="没有村代码为 150422999999"):
        credit.rating_list(households(), "150422999999")


def test_record_ratings_applies_valid_rows_and_reports_the_rest():
    hh = households()
    before = hh.copy()
    ratings = pd.DataFrame({
        "hh_id": ["f", "a", "c", "zz", "e", "a", "b"],
        "grade": ["标准", "较优", "标准", "良好", "良好", "良好", "优秀"],
        "granted_amount": [300000, 90000, 250000, 60000, 60000, 60000, 0],
        "guarantee": ["", "", "", "", "", "", ""],
    })
    new, problems = credit.record_ratings(hh, ratings)
    pd.testing.assert_frame_equal(hh, before)  # input unchanged
    got = new.set_index("hh_id")
    assert got.loc["f", "granted_amount"] == 300000 and got.loc["f", "product"] == "福民卡"
    assert bool(got.loc["f", "eligible"]) is True
    assert got.loc["b", "granted_amount"] == 0 and got.loc["b", "grade"] == "优秀"  # rated, not granted
    assert got.loc["a", "granted_amount"] == 60000  # the 较优 90k row failed: 70k–85k
    assert got.loc["c", "granted_amount"] == 300000  # 250k > 200k needs a guarantee: not applied
    assert problems[["row", "hh_id", "column"]].values.tolist() == [
        [2, "a", "granted_amount"], [3, "c", "guarantee"], [4, "zz", "hh_id"], [5, "e", "hh_id"],
        [6, "a", "hh_id"],
    ]
    assert "尚未建档" in problems.set_index("row").loc[5, "problem"]
    assert "重复" in problems.set_index("row").loc[6, "problem"]


def test_record_ratings_requires_columns():
    with pytest.raises(ValidationError, match="grade"):
        credit.record_ratings(households(), pd.DataFrame({"hh_id": ["a"], "granted_amount": [1]}))


def test_whitelist_is_the_villages_granted_households():
    out = credit.whitelist(households(), V)
    assert out["hh_id"].tolist() == ["b", "a", "c"]
    assert out["phone"].tolist() == ["", "138****5678", ""]


def test_save_ratings_one_transaction(empty_ws):
    hh = households().drop(columns=["signed"])
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(hh, geometry=[None] * len(hh), crs=4490)
    with empty_ws.transaction(actor="t", action="fixture") as tx:
        tx.replace("households", gdf)
    rev = empty_ws.revision
    bad = pd.DataFrame({"hh_id": ["a", "b"], "grade": ["良好", "优秀"], "granted_amount": [60000, 200000]})
    with pytest.raises(ValidationError, match="第 2 行（b）"):
        credit.save_ratings(empty_ws, bad, actor="主任")
    assert empty_ws.revision == rev  # nothing written
    good = pd.DataFrame({"hh_id": ["a", "f"], "grade": ["良好", "标准"], "granted_amount": [65000, 100000],
                         "guarantee": ["", ""]})
    assert credit.save_ratings(empty_ws, good, actor="主任") == 2
    assert empty_ws.revision == rev + 1
    stored = empty_ws.read("households").set_index("hh_id")
    assert stored.loc["a", "granted_amount"] == 65000 and stored.loc["f", "product"] == "福民卡"
    assert bool(stored.loc["f", "eligible"]) and stored.loc["b", "granted_amount"] == 120000
    audit = empty_ws.read("audit")
    assert audit["action"].iloc[-1] == "集中授信评级" and audit["actor"].iloc[-1] == "主任"


def test_save_ratings_judges_staleness_per_household_and_audits_each(empty_ws):
    import json

    import geopandas as gpd

    from grids.errors import StaleEditError

    hh = households().drop(columns=["signed"])
    with empty_ws.transaction(actor="t", action="fixture") as tx:
        tx.replace("households", gpd.GeoDataFrame(hh, geometry=[None] * len(hh), crs=4490))
    old = {h: 0 for h in hh["hh_id"]}
    one = pd.DataFrame({"hh_id": ["a"], "grade": ["良好"], "granted_amount": [65000]})
    other = pd.DataFrame({"hh_id": ["f"], "grade": ["标准"], "granted_amount": [100000]})
    assert credit.save_ratings(empty_ws, one, actor="甲", seen=old) == 1
    assert credit.save_ratings(empty_ws, other, actor="乙", seen=old) == 1  # another household: fine
    with pytest.raises(StaleEditError, match="a"):
        credit.save_ratings(empty_ws, one.assign(granted_amount=60000), actor="乙", seen=old)
    detail = json.loads(empty_ws.read("audit")["detail"].iloc[-1])[0]
    assert detail["changed"] == [{"hh_id": "f", "before": {"product": None, "grade": None, "granted_amount": 0.0,
                                                           "guarantee": None, "eligible": False},
                                  "after": {"product": "福民卡", "grade": "标准", "granted_amount": 100000.0,
                                            "guarantee": None, "eligible": True}}]
