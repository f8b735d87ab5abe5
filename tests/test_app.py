"""The Streamlit app with streamlit.testing's AppTest: each page runs, key widgets exist, roles filter pages."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from grids.store import Workspace
from ui.state import PAGES, pages_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def tiny_workspace(path: Path, *, with_plan: bool = True) -> Path:
    """One town, two villages, two grids (G2 without staff), six households of which four archived."""
    ws = Workspace.create(path, county_code="150422", county_name="巴林左旗")
    west, east = shapely.box(119.3, 43.9, 119.4, 44.0), shapely.box(119.4, 43.9, 119.5, 44.0)
    admin = gpd.GeoDataFrame(
        {"code": ["150422", "150422100", "150422100201", "150422100202"],
         "name": ["巴林左旗", "林东镇", "甲村", "乙村"], "level": ["county", "town", "village", "village"],
         "parent_code": [None, "150422", "150422100", "150422100"]},
        geometry=[west.union(east), west.union(east), west, east], crs=4490)
    hh = gpd.GeoDataFrame(
        {"hh_id": [f"H{i}" for i in range(6)], "head_name": "某",
         "village_code": ["150422100201"] * 3 + ["150422100202"] * 3,
         "archived": [True, True, True, True, False, False], "eligible": [True, True, False, True, False, False],
         "granted_amount": [50000.0, 0, 0, 80000.0, 0, 0]},
        geometry=[shapely.Point(119.35, 43.95)] * 3 + [shapely.Point(119.45, 43.95)] * 3, crs=4490)
    branches = gpd.GeoDataFrame({"branch_id": ["B1"], "name": ["林东信用社"]},
                                geometry=[shapely.Point(119.4, 43.95)], crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1"], "name": ["张三"], "branch_id": ["B1"], "role": ["客户经理"]})
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.replace("admin_units", admin)
        tx.replace("households", hh)
        tx.replace("branches", branches)
        tx.replace("staff", staff)
        if with_plan:
            now = pd.Timestamp("2024-01-01", tz="UTC")
            tx.replace("plans", pd.DataFrame({"plan_id": ["P1"], "name": ["main"], "status": ["published"],
                                              "revision": [1], "created_at": [now], "updated_at": [now]}))
            tx.replace("grids", gpd.GeoDataFrame(
                {"grid_id": ["G1", "G2"], "plan_id": "P1", "code": ["W1", "W2"], "name": ["甲网格", "乙网格"],
                 "kind": "rural", "source_codes": ["150422100201", "150422100202"], "branch_id": "B1",
                 "staff_id": ["S1", None]}, geometry=[west, east], crs=4490))
    return path


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_WORKSPACE", str(tiny_workspace(tmp_path / "ws.gpkg")))

    def make(role: str = "leadership") -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["app.role"] = role
        return at.run()

    return make


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_overview_runs_and_shows_the_funnel(app):
    at = app("leadership")
    assert not at.exception
    assert [t.value for t in at.title] == ["覆盖总览"]
    values = metric_values(at)
    assert values["登记户数"] == "6" and values["已建档"] == "4"
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["已建档"] == "66.7%"  # 4 of 6
    assert any("点击地图上的网格" in i.value for i in at.info)  # the side panel waits for a click
    assert {s.key for s in at.selectbox} >= {"app.role", "map.basemap"}
    assert [t.label for t in at.tabs] == ["授信漏斗", "分镇统计", "每周走访"]


def test_overview_falls_back_to_villages_without_a_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_WORKSPACE", str(tiny_workspace(tmp_path / "np.gpkg", with_plan=False)))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("还没有网格方案" in i.value for i in at.info)
    assert any("点击地图上的村" in i.value for i in at.info)


def test_selected_grid_shows_its_figures(app):
    at = app("leadership")
    at.session_state["overview.selected"] = "G2"
    at.run()
    assert not at.exception
    assert "乙网格" in [h.value for h in at.subheader]
    assert any("无人负责" in e.value for e in at.error)
    assert metric_values(at)["户数"] == "3"
    assert any("未覆盖农户：3 户" in m.value for m in at.markdown)  # 2 not archived + no staff for all 3


def test_data_page_for_admin(app):
    at = app("admin")
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["数据管理"]
    assert metric_values(at)["旗县"] == "巴林左旗"
    counts = at.dataframe[0].value
    assert counts.set_index("图层").loc["households", "行数"] == 6
    labels = [b.label for b in at.button]
    if labels:  # the import form appears once grids.ingest exists
        assert {"只校验", "校验并导入"} <= set(labels)


def test_roles_filter_the_navigation(app):
    at = app("leadership")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/data.py")
    assert [p.path for p in pages_for("leadership")] == ["pages/overview.py"]
    assert "pages/data.py" in [p.path for p in pages_for("planner")]
    assert {p.path for p in pages_for("admin")} == {p.path for p in PAGES if p.exists}


def test_role_without_pages_gets_a_notice(app):
    at = app("customer_manager")
    assert not at.exception
    if not pages_for("customer_manager"):
        assert any("正在建设中" in i.value for i in at.info)
    else:
        assert at.title


def test_missing_workspace_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_WORKSPACE", str(tmp_path / "nope.gpkg"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("无法打开工作区" in e.value and "python -m grids demo" in e.value for e in at.error)
