"""The page logic that moved out of ui/ into grids/ (display, navigation, ratings, staffview, planview, workbench),
tested directly with small frames: what the pages show must not change."""

from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids import display, navigation, planview, ratings, staffview, workbench
from grids.lifecycle import StaffChange

# ---------------------------------------------------------------------------------------------------------
# grids.display
# ---------------------------------------------------------------------------------------------------------


def test_numbers_as_the_pages_show_them() -> None:
    assert [display.pct(0.8279), display.pct(None), display.pct(math.nan)] == ["82.8%", "—", "—"]
    assert [display.count(12345), display.count(None)] == ["12,345", "—"]
    assert [display.yi(781_100_000), display.yi(123_456), display.yi(None)] == ["7.811 亿元", "12.3 万元", "—"]


def test_funnel_display_shows_rates_in_percent_and_amounts_in_wan() -> None:
    table = pd.DataFrame({"name": ["甲镇"], "coverage_rate": [0.5], "granted_amount": [123_456.0], "households": [3]})
    out = display.funnel_display(table, {"coverage_rate": "建档率", "granted_amount": "授信额", "households": "户数"})
    assert list(out.columns) == ["名称", "建档率（%）", "授信额（万元）", "户数"]
    assert out.iloc[0].tolist() == ["甲镇", 50.0, 12.3, 3]


# ---------------------------------------------------------------------------------------------------------
# grids.navigation
# ---------------------------------------------------------------------------------------------------------


def test_pages_per_role_in_menu_order() -> None:
    assert [p.path for p in navigation.pages_for("leadership")] == ["pages/overview.py", "pages/admin.py"]
    assert [p.title for p in navigation.pages_for("teller")] == ["柜员用信"]
    assert {p.path for p in navigation.pages_for("admin")} == {p.path for p in navigation.PAGES}
    assert navigation.pages_for("nobody") == []
    assert set(navigation.ROLE_LABELS) == set().union(*(p.roles for p in navigation.PAGES))


class _Accounts:
    """The two members of a workspace :func:`grids.navigation.demo_hint` reads."""

    def __init__(self, names: list[str], *, demo: bool) -> None:
        self.names, self.is_demo = names, demo

    def read(self, layer: str, columns: list[str]) -> pd.DataFrame:
        assert layer == "accounts" and columns == ["username"]
        return pd.DataFrame({"username": self.names})


def test_demo_hint_names_the_demo_accounts_only_on_a_demo_workspace() -> None:
    names = ["admin", "leader", "planner", "b01", "b02", "s001", "s002", "s003", "t01", "cc01"]
    hint = navigation.demo_hint(_Accounts(names, demo=True))  # type: ignore[arg-type]  # a stand-in workspace
    assert hint is not None
    assert "admin、leader、planner" in hint and "网点主任 b01…b02" in hint and "客户经理 s001…s003" in hint
    assert "柜员 t01" in hint and "贷审会 cc01" in hint
    assert navigation.demo_hint(_Accounts(names, demo=False)) is None  # type: ignore[arg-type]
    assert navigation.demo_hint(_Accounts(["x"], demo=True)) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# grids.ratings
# ---------------------------------------------------------------------------------------------------------


def test_villages_counts_households_and_archived_per_village() -> None:
    hh = pd.DataFrame({"village_code": ["V2", "V1", "V1", None], "archived": [True, False, True, True]})
    admin = pd.DataFrame({"code": ["V1"], "name": ["一村"]})
    out = ratings.villages(hh, admin)
    assert out.to_dict("records") == [{"code": "V1", "households": 2, "archived": 1, "name": "一村"},
                                      {"code": "V2", "households": 1, "archived": 1, "name": "V2"}]


def test_ratings_from_intents_fills_unchanged_fields_and_keeps_a_changed_id_apart() -> None:
    shown = pd.DataFrame({"hh_id": ["H1", "H2"], "grade": ["良好", ""], "granted_amount": [50000.0, 0.0],
                          "guarantee": ["信用", ""], "job_level": ["", ""]})
    edited = shown.assign(granted_amount=[40000.0, 0.0], hh_id=["H1", "H9"])
    intents = ratings.table_intents(shown, edited, id_column="hh_id")
    assert intents == {"H1": {"granted_amount": 40000.0}, "H2": {"hh_id": "H9"}}
    batch = ratings.ratings_from_intents(intents, shown)
    assert batch["hh_id"].tolist() == ["H1", "H2"]
    assert batch.loc[0, "grade"] == "良好" and batch.loc[0, "granted_amount"] == 40000.0
    assert batch.loc[1, "hh_id（改）"] == "H9"  # refused by the library: never another household's row


def test_changed_ratings_ignores_blank_versus_missing() -> None:
    a = pd.DataFrame({"hh_id": ["x"], "grade": [None], "granted_amount": [None], "guarantee": [None]})
    b = a.assign(grade=[""], granted_amount=[0.0], guarantee=[""])
    assert ratings.changed_ratings(a, b).empty


# ---------------------------------------------------------------------------------------------------------
# grids.staffview
# ---------------------------------------------------------------------------------------------------------


def test_staffing_tables() -> None:
    metrics = pd.DataFrame({"staff_id": ["S1", "S2"], "grids": [2, 1], "households": [300, 100],
                            "load_vs_mean": [1.5, 0.5], "pieces": [1, 1]})
    table = staffview.workload_table(metrics, {"S1": "张三", "S2": "李四"})
    assert list(table.columns) == ["编号", "客户经理", "网格数", "户数", "相对平均（%）", "片数"]
    assert table["相对平均（%）"].tolist() == [150.0, 50.0] and table["客户经理"].tolist() == ["张三", "李四"]
    after = metrics.assign(households=[200, 200])
    balance = staffview.balance_table(metrics, after, {"S1": "张三", "S2": "李四"})
    assert balance.to_dict("list") == {"客户经理": ["张三", "李四"], "现在（户）": [300, 100], "均衡后（户）": [200, 200]}
    acc = pd.DataFrame({"username": ["u1", "u2"], "display_name": ["甲", "乙"], "staff_id": ["S1", "S2"],
                        "active": [True, None]})
    assert staffview.accounts_table(acc)["状态"].tolist() == ["启用", "已停用"]
    grids = pd.DataFrame({"grid_id": ["G1"], "name": ["一"], "households": [10], "staff_id": ["S1"],
                          "locked": [None], "geometry": [None]})
    listed = staffview.grid_list(grids, {"G1": 4})
    assert listed.to_dict("records") == [{"grid_id": "G1", "name": "一", "households": 10, "staff_id": "S1",
                                          "locked": False, "version": 4}]


def test_change_moves_table_names_the_reason() -> None:
    moves = pd.DataFrame({"grid_id": ["G1"], "name": ["一"], "households": [10], "branch_id": ["B1"],
                          "before": ["S1"], "after": ["S2"], "reason": ["交接"]})
    change = StaffChange(action="leave", staff={"staff_id": "S1"}, from_branch="B1", to_branch=None, moves=moves,
                         balance=pd.DataFrame())
    assert staffview.change_moves_table(change).iloc[0].to_dict() == {
        "编码": "G1", "网格": "一", "户数": 10, "网点": "B1", "原客户经理": "S1", "新客户经理": "S2", "原因": "离职/调出交接"}


def test_quotas() -> None:
    team = pd.DataFrame({"staff_id": ["S1", "S2", "M1"], "name": ["甲", "乙", "主任"],
                         "role": ["客户经理", "客户经理", "网点主任"], "quota_per_day": [6.0, None, 3.0]})
    table = staffview.staff_quotas(team)
    assert table["staff_id"].tolist() == ["S1", "S2"] and table["quota"].iloc[0] == 6
    assert math.isnan(table["quota"].iloc[1])  # None in a numeric column: the editor shows it blank
    stored = dict(zip(table["staff_id"], table["quota"], strict=True))
    assert staffview.quota_changes(stored, table) == {}  # unchanged, blanks included
    assert staffview.quota_changes(stored, table.assign(quota=[None, 8])) == {"S1": None, "S2": 8}
    branches = pd.DataFrame({"branch_id": ["B1", "B2"], "quota_per_day": [5.0, None]})
    assert (staffview.branch_quota(branches, "B1"), staffview.branch_quota(branches, "B2")) == (5, None)
    assert staffview.branch_quota(branches.drop(columns="quota_per_day"), "B1") is None


# ---------------------------------------------------------------------------------------------------------
# grids.planview (the sections of the planning page)
# ---------------------------------------------------------------------------------------------------------


def test_plan_labels_and_versions_table() -> None:
    plans = pd.DataFrame({"plan_id": ["p1", "p2"], "name": ["甲", "乙"], "status": ["published", "odd"],
                          "revision": [2, 1], "updated_at": ["t1", "t2"], "published_at": ["t0", None]})
    assert planview.plan_labels(plans) == {"p1": "甲（已发布，第 2 版）", "p2": "乙（odd，第 1 版）"}
    assert list(planview.versions_table(plans).columns) == ["方案", "状态", "版本", "更新时间", "发布时间"]


def test_compare_tables() -> None:
    changed = gpd.GeoDataFrame({"grid_id": ["G1"], "change": ["added"]}, geometry=[shapely.box(0, 0, 1, 1)])
    from grids.edit import CHANGE_LABELS

    table = planview.compare_grid_table(changed)
    assert table.columns.tolist() == ["网格编号", "变化"] and table.iloc[0, 1] == CHANGE_LABELS["added"]
    s = {"grids_changed": 3, "added": 1, "removed": 0, "households_moved": 1234, "staff_changed": 2}
    assert planview.compare_metrics(s) == [("变化的网格", "3"), ("新增 / 删除", "1 / 0"),
                                           ("换网格或换人的住户", "1,234"), ("工作量变化的客户经理", "2")]


def test_whatif_figures() -> None:
    s = {"households_moved": 1500, "grids_moved": 4, "staff_moved": 2, "mean_distance_m_before": 3000.0,
         "mean_distance_m_after": 2500.0, "max_distance_m_before": 9000.0, "max_distance_m_after": 9100.0,
         "staff_before": 10, "staff_after": 11, "grids_restaffed": 0}
    assert planview.whatif_metrics(s) == [("移动户数", "1,500 户", "4 个网格改变网点", "off"),
                                          ("调动员工", "2 名", None, "normal"),
                                          ("平均距离", "2.50 km", "-0.50 km", "inverse"),
                                          ("最远距离", "9.10 km", "+0.10 km", "inverse")]
    assert planview.whatif_caption(s) == "员工 10 → 11 名；其余网格的网点和客户经理都不变。"
    assert planview.whatif_caption({**s, "grids_restaffed": 2, "households_restaffed": 3000}).endswith(
        "另有 3,000 户网点不变、换客户经理。")


def test_problem_text_escapes_data_and_names_the_fix() -> None:
    row = pd.Series({"kind": "unknown-kind", "message": "网格 *G1* 无人", "fix": "指派客户经理"})
    text = planview.problem_text(row, "error")
    assert text.startswith(":material/error: **错误·**") and "\\*G1\\*" in text and "修正方法：指派客户经理" in text
    assert "修正方法" not in planview.problem_text(row.drop("fix"), "warning")
    assert planview.problem_text(row.drop("fix"), "warning").startswith(":material/warning: **警告·")


# ---------------------------------------------------------------------------------------------------------
# grids.workbench
# ---------------------------------------------------------------------------------------------------------


def _todo() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"hh_id": ["H3", "H1", "H2", "H4"], "head_name": ["丙", "甲", "乙", "丁"], "phone": ["3", "1", "2", "4"],
         "village_code": ["V1", "V1", "V1", "V2"], "placement": ["point", "point", "village", "point"]},
        geometry=[shapely.Point(111.02, 42.0), shapely.Point(111.01, 42.0), None, None], crs=4490)


def test_with_distances_orders_own_points_nearest_first_and_never_measures_the_others() -> None:
    out = workbench.with_distances(_todo(), start=(111.0, 42.0))
    assert out["hh_id"].tolist() == ["H1", "H3", "H2", "H4"]
    assert out["distance_km"].iloc[0] == pytest.approx(0.83, abs=0.02)
    assert out["distance_km"].iloc[2:].isna().all()
    assert workbench.with_distances(_todo(), start=None)["distance_km"].isna().all()


def test_versions_of() -> None:
    assert workbench.versions_of(pd.DataFrame({"hh_id": ["a"]})) == {"a": 0}


def test_visit_lists_split_positioned_households_from_those_known_by_village() -> None:
    todo = workbench.with_distances(_todo(), start=(111.0, 42.0))
    villages = gpd.GeoDataFrame({"village_code": ["V1"], "name": ["一村"], "label": ["一村：1 户未定位"]},
                                geometry=[shapely.Point(111, 42)], crs=4490)
    empty = gpd.GeoDataFrame(geometry=[], crs=4490)
    wb = workbench.Workbench(staff_id="S1", grids=empty, households=empty, todo=todo, summary={}, start=None,
                             start_label="网点", branch=empty, week={}, weekly=pd.DataFrame(), villages=villages)
    main, groups = workbench.visit_lists(wb)
    assert main["户号"].tolist() == ["H1", "H3", "H4"] and list(main.columns)[:2] == ["户主", "距离（公里）"]
    assert "组" not in main.columns
    assert [(name, label, table["户号"].tolist()) for name, label, table in groups] == [
        ("一村", "一村：1 户未定位", ["H2"])]
    assert "距离（公里）" not in groups[0][2].columns
