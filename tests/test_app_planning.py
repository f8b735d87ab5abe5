"""The planning (网格规划) and staffing (人员分配) pages with streamlit.testing's AppTest on a tiny workspace."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from grids import plans
from grids.auth import Account
from grids.workspace import GpkgWorkspace, Workspace

APP = str(Path(__file__).resolve().parents[1] / "app.py")
W, E = shapely.box(119.30, 43.90, 119.40, 44.00), shapely.box(119.40, 43.90, 119.50, 44.00)


def small_workspace(path: Path) -> Workspace:
    """One town, two villages = two grids of branch B1 (staff S1, S2), published; six households."""
    ws = GpkgWorkspace.create(path, county_code="150422", county_name="巴林左旗")
    admin = gpd.GeoDataFrame(
        {"code": ["150422", "150422100", "150422100201", "150422100202"], "name": ["巴林左旗", "林东镇", "甲村", "乙村"],
         "level": ["county", "town", "village", "village"], "parent_code": [None, "150422", "150422100", "150422100"]},
        geometry=[W.union(E), W.union(E), W, E], crs=4490)
    hh = gpd.GeoDataFrame(
        {"hh_id": [f"H{i}" for i in range(6)], "head_name": "某", "village_code": ["150422100201"] * 3
         + ["150422100202"] * 3, "archived": [True, False] * 3},
        geometry=[shapely.Point(119.35, 43.95 + i / 100) for i in range(3)]
        + [shapely.Point(119.45, 43.95 + i / 100) for i in range(3)], crs=4490)
    branches = gpd.GeoDataFrame({"branch_id": ["B1"], "name": ["林东信用社"]},
                                geometry=[shapely.Point(119.4, 43.95)], crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["张三", "李四"], "branch_id": ["B1", "B1"],
                          "role": ["客户经理", "客户经理"]})
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.replace("admin_units", admin)
        tx.replace("households", hh)
        tx.replace("branches", branches)
        tx.replace("staff", staff)
    grids = gpd.GeoDataFrame(
        {"code": ["150422100201001", "150422100202001"], "name": ["甲村", "乙村"], "kind": "rural",
         "town_code": "150422100", "source_codes": ["150422100201", "150422100202"], "households": [3, 3],
         "branch_id": "B1", "staff_id": ["S1", "S2"]}, geometry=[W, E], crs=4490)
    pid = plans.save_draft(ws, grids, name="main", actor="test")
    plans.publish_plan(ws, pid, actor="test")
    return ws


@pytest.fixture
def ws(tmp_path, monkeypatch):
    w = small_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(w.path))
    return w


def run(page: str, account: Account) -> AppTest:
    from ui.auth import session_for

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(account)
    at.run()
    at.switch_page(page)
    return at.run()


def test_planning_page_runs_and_shows_the_editing_tools(ws):
    at = run("pages/planning.py", Account("planner", "planner", "规划员"))
    assert not at.exception, at.exception
    assert at.title[0].value == "网格规划"
    buttons = {b.label for b in at.button}
    assert {"撤销", "重做", "保存草稿", "发布方案", "合并所选网格"} <= buttons
    assert at.multiselect[0].label.startswith("合并网格")
    assert at.multiselect[0].placeholder == "选择要合并的网格"  # not Streamlit's English "Choose options"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["网格"] == "2" and metrics["住户"] == "6" and metrics["检查错误"] == "0"
    # the published plan is not editable in place
    assert next(b for b in at.button if b.label == "保存草稿").disabled


def test_planning_merge_is_undoable(ws):
    at = run("pages/planning.py", Account("planner", "planner", "规划员"))
    # a published plan is not edited in place: the merge tools are disabled; start a draft first
    assert at.multiselect[0].disabled and next(b for b in at.button if b.label == "合并所选网格").disabled
    at.get("button_group")[0].set_value("方案版本").run()
    next(b for b in at.button if b.label == "从已发布方案新建草稿").click().run()
    assert not at.exception, at.exception
    at.get("button_group")[0].set_value("编辑").run()
    at.multiselect[0].set_value(["150422100201001", "150422100202001"]).run()
    next(b for b in at.button if b.label == "合并所选网格").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["网格"] == "1" and metrics["住户"] == "6"
    next(b for b in at.button if b.label == "撤销").click().run()
    assert {m.label: m.value for m in at.metric}["网格"] == "2"


def test_planning_refuses_branch_managers(ws):
    from ui.auth import session_for

    # not in a branch manager's navigation, and refused when opened directly
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        run("pages/planning.py", Account("b01", "branch_manager", "主任", branch_id="B1"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "planning.py"), default_timeout=60)
    at.session_state["auth.session"] = session_for(Account("b01", "branch_manager", "主任", branch_id="B1"))
    at.run()
    assert not at.exception, at.exception
    assert "只有规划人员" in at.error[0].value


def test_staffing_page_runs_with_map_workload_and_downloads(ws):
    at = run("pages/staffing.py", Account("b01", "branch_manager", "主任", branch_id="B1"))
    assert not at.exception, at.exception
    assert at.title[0].value == "人员分配"
    labels = {b.label for b in at.button}
    assert {"计算均衡方案", "生成入户清单", "生成地图 PNG", "生成地图 PDF"} <= labels
    workload = at.dataframe[0].value
    assert workload["户数"].tolist() == [3, 3]
    assert {m.label for m in at.metric} >= {"客户经理负荷差", "可达到的下限"}


def test_staffing_table_reassigns_a_grid(ws):
    at = run("pages/staffing.py", Account("b01", "branch_manager", "主任", branch_id="B1"))
    # reassign through the selected-grid panel: select the grid as a map click would
    at.session_state["staffing.selected"] = "150422100202001"
    at.run()
    at.selectbox(key="staffing.reassign_to").set_value("S1").run()
    next(b for b in at.button if b.label == "改派").click().run()
    assert not at.exception, at.exception
    grids = plans.read_grids(ws, plans.resolve_plan(ws))
    assert grids.set_index("grid_id")["staff_id"].to_dict() == {"150422100201001": "S1", "150422100202001": "S1"}
    assert at.dataframe[0].value["户数"].tolist() == [6, 0]


@pytest.mark.parametrize(("section", "widget"), [("生成网格", "生成网格方案"), ("方案版本", "对比"),
                                                 ("假设分析", "计算")])
def test_planning_sections_render(ws, section, widget):
    at = run("pages/planning.py", Account("planner", "planner", "规划员"))
    at.session_state["planning.section"] = section
    at.run()
    assert not at.exception, at.exception
    labels = {b.label for b in at.button} | {b.label for b in at.get("form_submit_button")}
    assert widget in labels, labels


def test_planning_lists_warnings_with_reason_fix_and_a_zoom_button(ws):
    """Both grids have 3 households, below the default lower bound: two warnings, publishing not blocked."""
    at = run("pages/planning.py", Account("planner", "planner", "规划员"))
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["检查错误"] == "0" and metrics["检查警告"] == "2"
    rows = [m.value for m in at.markdown if "网格户数低于下限" in m.value]
    assert len(rows) == 2 and all("警告" in r and "修正方法" in r for r in rows)
    assert "150422100201001" in rows[0]
    zoom = [b for b in at.button if b.label == "定位"]
    assert len(zoom) == 2 and not zoom[0].disabled
    assert at.session_state["planning.focus"] is None
    zoom[0].click().run()
    assert not at.exception, at.exception
    focus = at.session_state["planning.focus"]
    assert focus is not None and W.contains(shapely.box(*focus).centroid)  # the map zooms to 甲村's grid
    assert shapely.box(*focus).area < 0.5 * W.area
    assert at.session_state["planning.selected"] == "150422100201001"


def test_publishing_lists_conflicts_with_live_reassignments_and_publishes_once_accepted(ws):
    import json

    live = plans.resolve_plan(ws)
    at = run("pages/planning.py", Account("planner", "planner", "规划员"))
    at.get("button_group")[0].set_value("方案版本").run()
    next(b for b in at.button if b.label == "从已发布方案新建草稿").click().run()
    at.get("button_group")[0].set_value("编辑").run()
    at.multiselect[0].set_value(["150422100201001", "150422100202001"]).run()
    next(b for b in at.button if b.label == "合并所选网格").click().run()
    next(b for b in at.button if b.label == "保存草稿").click().run()
    assert not at.exception, at.exception
    # meanwhile the branch manager gives 甲村's grid to 李四 on the published plan
    seen = plans.versions(plans.read_grids(ws, live))
    plans.edit_grid_rows(ws, live, {"150422100201001": {"staff_id": "S2"}}, seen=seen, actor="b1", action="改派")
    next(b for b in at.button if b.label == "发布方案").click().run()
    assert not at.exception, at.exception
    assert plans.resolve_plan(ws) == live  # refused: nothing published
    warning = " ".join(w.value for w in at.warning)
    assert "150422100201001" in warning and "草稿中已拆分或合并" in warning
    next(b for b in at.button if b.label.startswith("以草稿为准发布")).click().run()
    assert not at.exception, at.exception
    assert plans.resolve_plan(ws) != live and "方案已发布" in " ".join(s.value for s in at.success)
    note = json.loads(ws.audit_records()[-1][6])[0]
    assert [c["grid_id"] for c in note["conflicts_overridden"]] == ["150422100201001"]


def test_a_branch_manager_sets_visit_quotas_on_the_staffing_page(ws):
    at = run("pages/staffing.py", Account("b1", "branch_manager", "林东主任", branch_id="B1"))
    assert not at.exception, at.exception
    assert not any("quota" in d.value.columns for d in at.dataframe)  # closed: not even built
    at.session_state["staffing.quotas_open"] = True  # the user opens the section
    at.run()
    editor = next(d for d in at.dataframe if "quota" in d.value.columns)
    assert editor.value["staff_id"].tolist() == ["S1", "S2"]
    # the number input and the editor live in a form: set them, then submit
    next(n for n in at.number_input if n.label.startswith("本网点默认定额")).set_value(10)
    at.session_state["staffing.quota_editor"] = {"edited_rows": {0: {"quota": 15}}, "added_rows": [],
                                                 "deleted_rows": []}
    next(b for b in at.button if b.label == "保存定额").click().run()
    assert not at.exception, at.exception
    staff = ws.read("staff").set_index("staff_id")
    assert staff.loc["S1", "quota_per_day"] == 15 and pd.isna(staff.loc["S2", "quota_per_day"])
    assert ws.read("branches").set_index("branch_id").loc["B1", "quota_per_day"] == 10
