"""Product rules as data (issue 15): the 联社's defaults, the one checker, enforcement on import (``--legacy``
keeps historical grants, flagged), ``check --credit``, per-branch rules (admin only, audited) and the rating save."""

from __future__ import annotations

import csv
import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids import credit, credit_rules, products
from grids.__main__ import main
from grids.auth import Account
from grids.errors import PermissionDeniedError, ValidationError
from grids.ingest import import_file
from grids.scope import ScopedWorkspace
from grids.workspace import GpkgWorkspace, Workspace

from .conftest import cli_user
from .test_app import ACCOUNTS, APP, tiny_workspace

V, G = "150422100201", "150422100201001"
HEADER = ["户号", "户主姓名", "客户类型", "村代码", "产品", "等级", "授信金额（元）", "担保方式", "职务级别"]
# the acceptance rows, and one that follows the rules
ROWS = [
    ["R1", "甲", "普通农牧户", V, "福农卡", "一般", "20000", "", ""],          # 2: below 福农卡 一般 4万
    ["R2", "乙", "农牧户", V, "福农卡", "钻石客户", "800000", "", ""],        # 3: 钻石客户 for a plain 农牧户
    ["R3", "丙", "公职人员", V, "福薪卡", "", "300000", "保证人", "科级"],    # 4: 30万 without a qualifying guarantee
    ["R4", "丁", "家庭农牧场", V, "福农卡", "钻石客户", "800000", "", ""],    # 5: fine
]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    w = GpkgWorkspace.create(tmp_path / "ws.gpkg", county_code="150422", county_name="巴林左旗")
    admin = gpd.GeoDataFrame({"code": ["150422", "150422100", V, G], "level": ["county", "town", "village", "group"],
                              "parent_code": [None, "150422", "150422100", V], "name": ["巴林左旗", "林东镇", "甲村", "一组"]},
                             geometry=[shapely.box(118.5, 43.5, 120.0, 44.9)] * 4, crs=4490)
    branches = gpd.GeoDataFrame({"branch_id": ["B01", "B02"], "name": ["林东信用社", "隆昌信用社"], "kind": ["信用社"] * 2},
                                geometry=[shapely.Point(119.3, 44.0), shapely.Point(119.4, 44.1)], crs=4490)
    with w.transaction(actor="test", action="准备") as tx:
        tx.replace("admin_units", admin)
        tx.replace("branches", branches)
    return w


def register(tmp_path, rows=ROWS):
    path = tmp_path / "登记表.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def rejects(path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


# -- the defaults -------------------------------------------------------------------------------------------


def test_defaults_are_the_cooperatives():
    assert [products.band("福农卡", g) for g in ("一般", "良好", "较优", "优秀")] == [
        (40000.0, 55000.0), (55000.0, 70000.0), (70000.0, 85000.0), (85000.0, 100000.0)]
    assert products.band("福农卡", "黄金客户") == (100000.0, 500000.0)
    assert products.band("福农卡", "钻石客户") == (500000.0, 1000000.0)
    for grade in ("黄金客户", "钻石客户"):
        assert products.grade_entity_types("福农卡", grade) == ["家庭农牧场", "农牧业专业合作社"]
    assert products.grades("福农卡", entity_type="普通农牧户") == ["一般", "良好", "较优", "优秀"]
    assert products.band("福商卡", "标准") == (50000.0, 1000000.0)
    assert products.band("福民卡", "标准")[1] == 1000000.0
    assert [products.job_band("福薪卡", j) for j in products.job_levels("福薪卡")] == [
        (100000.0, 200000.0), (200000.0, 400000.0), (400000.0, 700000.0)]
    assert products.guarantee_above("福薪卡") == 200000.0
    assert products.qualifying_guarantees("福薪卡") == ["公职人员保证", "商厅楼房抵押"]
    assert set(products.ENTITY_TYPES) == {"普通农牧户", "家庭农牧场", "农牧业专业合作社", "个体工商户", "小微企业",
                                          "公职人员", "社区居民"}
    assert {products.product_for_segment(e) for e in products.ENTITY_TYPES} == set(products.load_catalogue())


def test_rates_are_a_base_plus_adjustments():
    base = products.rate("福薪卡")
    assert products.rate("福薪卡", payroll=True) < base  # salary paid through the 农信社
    assert products.rate("福商卡", deposit_tier="50万以上") < products.rate("福商卡", deposit_tier="5万以上") \
        < products.rate("福商卡")
    assert products.rate("福民卡", e_banking=True) < products.rate("福民卡")
    with pytest.raises(ValidationError, match="存款档次"):
        products.rate("福民卡", deposit_tier="很多")


def test_old_names_read_as_the_new():
    assert products.entity_type("农牧户") == "普通农牧户" and products.grade_name("金卡") == "黄金客户"
    assert products.grade_name("钻石卡") == "钻石客户"
    # the generic 保证人 of earlier versions does not say the guarantor is a 公职人员: not mapped
    grant = {"entity_type": "公职人员", "product": "福薪卡", "grade": "标准", "amount": 300000, "guarantee": "保证人",
             "job_level": "科级"}
    found = credit_rules.check_grant(**grant)
    assert [v.rule for v in found] == ["guarantee"] and "不能确认" in found[0].problem
    old = pd.DataFrame({"hh_id": ["g"], "segment": ["农牧户"], "product": ["福农卡"], "grade": ["金卡"],
                        "granted_amount": [300000.0], "guarantee": [""]})
    assert credit.check_credit(old)["rule"].tolist() == ["entity_type"]  # 黄金客户 is not for a plain 农牧户
    assert credit.check_credit(old.assign(segment="家庭农牧场")).empty


# -- the checker ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("grant", "rule", "named"), [
    ({"entity_type": "普通农牧户", "product": "福农卡", "grade": "一般", "amount": 20000}, "band",
     ["福农卡“一般”", "40,000–55,000"]),
    ({"entity_type": "普通农牧户", "product": "福农卡", "grade": "钻石客户", "amount": 800000}, "entity_type",
     ["钻石客户", "家庭农牧场", "农牧业专业合作社", "普通农牧户"]),
    ({"entity_type": "公职人员", "product": "福薪卡", "grade": "", "amount": 300000, "job_level": "科级"}, "guarantee",
     ["20万", "公职人员保证", "商厅楼房抵押"]),
    ({"entity_type": "公职人员", "product": "福薪卡", "grade": "", "amount": 450000, "job_level": "科级",
      "guarantee": "公职人员保证"}, "band", ["科级", "200,000–400,000"]),
    ({"entity_type": "个体工商户", "product": "福农卡", "grade": "一般", "amount": 50000}, "entity_type",
     ["个体工商户", "福商卡"]),
])
def test_each_violation_names_its_rule_with_a_fix(grant, rule, named):
    found = credit_rules.check_grant(**grant)
    assert [v.rule for v in found] == [rule]
    assert all(word in found[0].problem + found[0].fix for word in named)
    assert found[0].fix


def test_grants_within_the_rules_pass():
    ok = [
        {"entity_type": "普通农牧户", "product": "福农卡", "grade": "优秀", "amount": 100000},
        {"entity_type": "农牧业专业合作社", "product": "福农卡", "grade": "黄金客户", "amount": 500000},
        {"entity_type": "公职人员", "product": "福薪卡", "grade": "标准", "amount": 200000, "job_level": "一般工作人员"},
        {"entity_type": "公职人员", "product": "福薪卡", "grade": "标准", "amount": 700000, "job_level": "处级及以上",
         "guarantee": "商厅楼房抵押"},
        {"entity_type": "社区居民", "product": "福民卡", "grade": "", "amount": 1000000},
        {"entity_type": "普通农牧户", "product": "福农卡", "grade": "一般", "amount": 0},  # no grant
    ]
    for grant in ok:
        assert credit_rules.check_grant(**grant) == [], grant


# -- import -------------------------------------------------------------------------------------------------


def test_import_rejects_each_violating_row_naming_the_rule(ws, tmp_path):
    out = tmp_path / "rejects.csv"
    report = import_file(ws, "households", register(tmp_path), rejects_path=out)
    assert report.imported == 1 and ws.read("households")["hh_id"].tolist() == ["R4"]
    got = {r["行"]: (r["列"], r["原因"], r["修正方法"]) for r in rejects(out)}
    assert set(got) == {"2", "3", "4"}
    column, reason, _ = got["2"]
    assert column == "授信金额（元）" and "额度范围" in reason and "福农卡“一般”" in reason and "40,000–55,000" in reason
    column, reason, _ = got["3"]
    assert column == "等级" and "客户类型" in reason and "普通农牧户" in reason and "家庭农牧场" in reason
    column, reason, _ = got["4"]
    assert column == "担保方式" and "担保" in reason and "公职人员保证或商厅楼房抵押" in reason
    assert all("--legacy" in f for _, _, f in got.values())


def test_legacy_import_keeps_historical_grants_flagged(ws, tmp_path):
    report = import_file(ws, "households", register(tmp_path), legacy=True)
    assert report.imported == 4 and not len(report.rejects)
    assert any("--legacy" in w for w in report.warnings)
    hh = ws.read("households").set_index("hh_id")
    assert hh.loc[["R1", "R2", "R3"], "credit_legacy"].astype(bool).all()
    assert pd.isna(hh.loc["R4", "credit_legacy"])
    assert "额度范围" in hh.loc["R1", "credit_note"] and "担保" in hh.loc["R3", "credit_note"]
    assert hh.loc["R2", "segment"] == "普通农牧户"  # the old name, stored under the new


def test_update_checks_the_stored_values_with_the_new_cells(ws, tmp_path):
    import_file(ws, "households", register(tmp_path, ROWS[3:]))
    upd = tmp_path / "upd.csv"
    upd.write_text("户号,客户类型\nR4,普通农牧户\n", encoding="utf-8")  # the 钻石客户 would become a plain 农牧户's
    report = import_file(ws, "households", upd, mode="update")
    assert report.imported == 0 and "客户类型" in report.rejects["原因"].iloc[0]
    assert ws.read("households")["segment"].tolist() == ["家庭农牧场"]


def test_an_update_without_credit_cells_is_not_judged(ws, tmp_path):
    import_file(ws, "households", register(tmp_path, ROWS[:1]), legacy=True)  # R1: 福农卡 一般 2万, flagged
    upd = tmp_path / "phone.csv"
    upd.write_text("户号,联系电话\nR1,13800001111\n", encoding="utf-8")
    assert import_file(ws, "households", upd, mode="update").imported == 1
    upd.write_text("户号,授信金额（元）\nR1,30000\n", encoding="utf-8")  # still below 4万: judged, refused
    report = import_file(ws, "households", upd, mode="update")
    assert report.imported == 0 and "额度范围" in report.rejects["原因"].iloc[0]
    hh = ws.read("households").set_index("hh_id")
    assert hh.loc["R1", "phone"] == "13800001111" and hh.loc["R1", "granted_amount"] == 20000


def test_cli_import_legacy_then_check_credit_lists_warnings(ws, tmp_path, monkeypatch, capsys):
    user = cli_user(ws, monkeypatch)
    src = register(tmp_path)
    assert cli(["import", str(ws.path), "households", str(src), "--user", user]) == 1
    assert cli(["import", str(ws.path), "households", str(src), "--user", user, "--legacy", "--mode", "replace"]) == 0
    capsys.readouterr()
    assert cli(["check", str(ws.path), "--credit"]) == 0  # historical grants only: warnings
    out = capsys.readouterr().out
    assert "警告" in out and "R1" in out and "共 0 个错误、3 个警告" in out
    assert cli(["check", str(ws.path), "--credit", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["errors"] == 0 and doc["warnings"] == 3
    assert {p["hh_id"]: p["rule"] for p in doc["problems"]} == {"R1": "band", "R2": "entity_type", "R3": "guarantee"}
    assert all(p["severity"] == "warning" and p["fix"] for p in doc["problems"])


def test_check_credit_errors_exit_1(ws, tmp_path, monkeypatch, capsys):
    hh = gpd.GeoDataFrame({"hh_id": ["a", "b"], "segment": ["农牧户", "公职人员"], "product": ["福农卡", "福薪卡"],
                           "grade": ["钻石卡", "标准"], "granted_amount": [600000.0, 150000.0],
                           "guarantee": ["", ""], "job_level": [None, "一般工作人员"]},
                          geometry=[None, None], crs=4490)
    with ws.transaction(actor="test", action="旧数据") as tx:
        tx.replace("households", hh)
    assert cli(["check", str(ws.path), "--credit", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == 1 and doc["problems"][0]["hh_id"] == "a" and doc["problems"][0]["severity"] == "error"
    assert "钻石客户" in doc["problems"][0]["message"]


# -- per-branch rules ---------------------------------------------------------------------------------------

ADMIN = Account("admin", "admin")
B1 = Account("b1", "branch_manager", branch_id="B01")


def test_branch_rules_admin_only_narrow_only_audited(ws):
    with pytest.raises(PermissionDeniedError, match="系统管理员"):
        ScopedWorkspace(ws, B1, require_plan=False).set_credit_rule(branch_id="B01", approval_limit=2_000_000)
    assert ws.read("audit")["action"].iloc[-1] == "拒绝：修改产品规则"
    sw = ScopedWorkspace(ws, ADMIN, require_plan=False)
    with pytest.raises(ValidationError, match="只能收紧"):
        sw.set_credit_rule(branch_id="B01", product="福农卡", grade="一般", min_amount=30000)
    with pytest.raises(ValidationError, match="没有网点"):
        sw.set_credit_rule(branch_id="B99", approval_limit=100000)
    sw.set_credit_rule(branch_id="B01", product="福农卡", grade="一般", min_amount=45000)
    sw.set_credit_rule(branch_id="B01", approval_limit=200000)
    sw.set_credit_rule(branch_id="B01", product="福薪卡", base_rate=5.2)
    row = ws.read("audit").iloc[-1]
    assert row["action"] == "修改产品规则" and row["actor"] == "admin"
    note = next(d for d in json.loads(row["detail"]) if "rule_id" in d)
    assert note["rule_id"] == "B01|福薪卡|" and note["before"] is None and note["after"]["base_rate"] == 5.2
    b01, b02 = credit_rules.effective_rules(ws, "B01"), credit_rules.effective_rules(ws, "B02")
    assert b01.band("福农卡", "一般") == (45000.0, 55000.0) and b02.band("福农卡", "一般") == (40000.0, 55000.0)
    assert b01.approval_limit("福商卡") == 200000 and b02.approval_limit("福商卡") == products.approval_authority()
    assert b01.rate("福薪卡") < b02.rate("福薪卡")
    sw.set_credit_rule(branch_id="B01", product="福农卡", grade="一般")  # every value empty: removed
    assert credit_rules.effective_rules(ws, "B01").band("福农卡", "一般") == (40000.0, 55000.0)


def test_rating_save_applies_the_branchs_rules(ws):
    hh = gpd.GeoDataFrame({"hh_id": ["a", "b"], "segment": ["普通农牧户", "公职人员"], "village_code": [V, V],
                           "archived": [True, True]}, geometry=[None, None], crs=4490)
    with ws.transaction(actor="test", action="准备") as tx:
        tx.replace("households", hh)
    ScopedWorkspace(ws, ADMIN, require_plan=False).set_credit_rule(branch_id="B01", product="福农卡", grade="一般",
                                                                   min_amount=45000)
    rating = pd.DataFrame({"hh_id": ["a"], "grade": ["一般"], "granted_amount": [42000]})
    with pytest.raises(ValidationError, match="网点 B01 的范围"):
        credit.save_ratings(ws, rating, actor="b1", branch_id="B01")
    assert credit.save_ratings(ws, rating, actor="admin") == 1  # the 联社's band
    with pytest.raises(ValidationError, match="公职人员保证或商厅楼房抵押"):
        credit.save_ratings(ws, pd.DataFrame({"hh_id": ["b"], "grade": ["标准"], "granted_amount": [300000],
                                              "job_level": ["科级"]}), actor="admin")
    credit.save_ratings(ws, pd.DataFrame({"hh_id": ["b"], "grade": ["标准"], "granted_amount": [300000],
                                          "job_level": ["科级"], "guarantee": ["公职人员保证"]}), actor="admin")
    stored = ws.read("households").set_index("hh_id")
    assert stored.loc["b", "job_level"] == "科级" and stored.loc["b", "guarantee"] == "公职人员保证"
    changed = json.loads(ws.read("audit")["detail"].iloc[-1])[0]["changed"][0]
    assert changed["job_level"] == {"before": None, "after": "科级"}


# -- pages --------------------------------------------------------------------------------------------------


@pytest.fixture
def ws_path(tmp_path, monkeypatch):
    """test_app's small workspace (branches B1, B2; b1 is B1's manager), served to the app."""
    path = tiny_workspace(tmp_path / "app.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    return path


@pytest.fixture
def app(ws_path):
    from streamlit.testing.v1 import AppTest

    from ui.auth import session_for

    def make(role: str, *, page: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["auth.session"] = session_for(ACCOUNTS[role])
        at.run()
        return at.switch_page(page).run()

    return make


def test_admin_page_edits_a_branchs_rules(app, ws_path):
    at = app("admin", page="pages/admin.py")
    assert not at.exception and "产品规则" in [t.label for t in at.tabs]
    next(s for s in at.selectbox if s.label == "网点").set_value("B1")
    next(s for s in at.selectbox if s.label.startswith("产品")).set_value("福农卡")
    next(t for t in at.text_input if t.label.startswith("等级")).input("一般")
    next(n for n in at.number_input if n.label == "最低额度（元）").set_value(30000)  # wider than the 联社's
    next(b for b in at.button if b.label.startswith("保存")).click().run()
    assert any("只能收紧" in e.value for e in at.error)
    assert credit_rules.rules_table(GpkgWorkspace(ws_path)).empty
    next(n for n in at.number_input if n.label == "最低额度（元）").set_value(45000)
    next(b for b in at.button if b.label.startswith("保存")).click().run()
    assert not at.exception and not at.error
    assert credit_rules.effective_rules(GpkgWorkspace(ws_path), "B1").band("福农卡", "一般") == (45000.0, 55000.0)
    log = GpkgWorkspace(ws_path).read("audit")
    assert log["action"].tolist()[-2:] == ["拒绝：修改产品规则", "修改产品规则"]


def test_rating_page_shows_the_branchs_rules(app):
    at = app("branch_manager", page="pages/rating.py")
    assert not at.exception
    shown = at.expander[0]
    assert "产品规则" in shown.label and "B1" in shown.label
    table = next(d.value for d in at.dataframe if "客户类型" in d.value.columns and "最低额度（元）" in d.value.columns)
    assert table.loc[table["等级"] == "钻石客户", "客户类型"].iloc[0] == "家庭农牧场、农牧业专业合作社"


def test_branch_rules_on_either_backend(any_ws):
    with any_ws.transaction(actor="test", action="准备") as tx:
        tx.replace("branches", gpd.GeoDataFrame({"branch_id": ["B01"], "name": ["林东信用社"]},
                                                geometry=[shapely.Point(119.3, 44.0)], crs=4490))
    credit_rules.set_branch_rule(any_ws, account=ADMIN, branch_id="B01", product="福商卡", approval_limit=500000)
    credit_rules.set_branch_rule(any_ws, account=ADMIN, branch_id="B01", product="福商卡", approval_limit=400000)
    assert len(credit_rules.rules_table(any_ws)) == 1  # one row per branch, product and grade
    assert credit_rules.effective_rules(any_ws, "B01").approval_limit("福商卡") == 400000
    assert any_ws.read("audit")["action"].tolist()[-2:] == ["修改产品规则"] * 2


def test_a_schema_5_workspace_upgrades_and_reads_old_names(tmp_path, capsys):
    import sqlite3

    path = tmp_path / "old.gpkg"
    old = GpkgWorkspace.create(path, county_code="150422", county_name="巴林左旗")
    hh = gpd.GeoDataFrame({"hh_id": ["a", "b"], "segment": ["家庭农牧场", "农牧户"], "product": ["福农卡", "福农卡"],
                           "grade": ["金卡", "金卡"], "granted_amount": [300000.0, 300000.0]},
                          geometry=[None, None], crs=4490)
    with old.transaction(actor="test", action="旧数据") as tx:
        tx.replace("households", hh)
    con = sqlite3.connect(path)
    with con:
        con.execute("DROP TABLE credit_rules")
        con.execute("DELETE FROM gpkg_contents WHERE table_name = 'credit_rules'")
        for col in ("job_level", "payroll", "credit_legacy", "credit_note"):
            con.execute(f'ALTER TABLE households DROP COLUMN "{col}"')
        con.execute("UPDATE ws_meta SET value = '5' WHERE key = 'schema'")
    con.close()
    ws = GpkgWorkspace(path)  # upgraded on open
    assert "credit_rules" in ws.layers() and {"job_level", "credit_legacy"} <= set(ws.columns("households"))
    assert cli(["check", str(path), "--credit", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    # 金卡 reads as 黄金客户: a 家庭农牧场's is fine, a plain 农牧户's breaks the entity-type rule
    assert [(p["hh_id"], p["rule"]) for p in doc["problems"]] == [("b", "entity_type")]
    assert "黄金客户" in doc["problems"][0]["message"] and "普通农牧户" in doc["problems"][0]["message"]


# -- forged page state --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("edit", "expect"), [
    ({"job_level": "<b>厅级</b>", "grade": "良好", "granted_amount": 60000}, "职务级别"),  # not a 职务级别
    ({"grade": "钻石客户", "granted_amount": 800000}, "钻石客户"),  # a plain 农牧户's 钻石客户
])
def test_forged_rating_rows_are_refused_by_the_rules(tmp_path, monkeypatch, edit, expect):
    from .forged import B1 as FORGER
    from .forged import click, editor_row, forge_editor, forged_workspace, open_page, refusals, stored

    path = forged_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    at = open_page("pages/rating.py", FORGER)
    before, n = stored(path), len(refusals(path))
    forge_editor(at, "rating.editor", edited_rows={editor_row(at, "rating.editor", "hh_id", "H1"): edit})
    at = click(at, "rating.save")
    assert any(expect in e.value for e in at.error)
    assert all(before[k].equals(stored(path)[k]) for k in before)  # nothing written
    assert refusals(path)["action"].iloc[n:].tolist() == ["拒绝：集中授信评级"]


def test_check_credit_applies_the_rules_of_the_households_branch(tmp_path, capsys):
    from .forged import ADMIN as ADMIN_ACCOUNT
    from .forged import forged_workspace

    path = forged_workspace(tmp_path / "ws.gpkg")  # H6: 福农卡 良好 60,000 in G3 of branch B2
    ws = GpkgWorkspace(path)
    before = credit_rules.check_workspace(ws)
    assert "H6" not in set(before["hh_id"])
    credit_rules.set_branch_rule(ws, account=ADMIN_ACCOUNT, branch_id="B1", product="福农卡", grade="良好",
                                 min_amount=65000)
    assert "H6" not in set(credit_rules.check_workspace(ws)["hh_id"])  # B1's rules are not B2's
    credit_rules.set_branch_rule(ws, account=ADMIN_ACCOUNT, branch_id="B2", product="福农卡", grade="良好",
                                 min_amount=65000)
    found = credit_rules.check_workspace(ws).set_index("hh_id")
    assert found.loc["H6", "branch_id"] == "B2" and "网点 B2 的范围" in found.loc["H6", "problem"]
    assert cli(["check", str(path), "--credit", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {"hh_id": "H6", "branch_id": "B2"}.items() <= next(p for p in doc["problems"] if p["hh_id"] == "H6").items()
