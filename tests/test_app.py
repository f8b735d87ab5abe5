"""The Streamlit app with streamlit.testing's AppTest: sign-in, each page runs, key widgets exist, roles filter
pages, each role sees only its scope."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from grids.auth import Account, create_account
from grids.navigation import PAGES, pages_for
from grids.workspace import GpkgWorkspace
from ui.auth import session_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PASSWORD = "correct-horse-1"

ACCOUNTS = {
    "leadership": Account("leader", "leadership", "联社领导"),
    "planner": Account("planner", "planner", "规划员"),
    "admin": Account("admin", "admin", "管理员"),
    "branch_manager": Account("b1", "branch_manager", "林东主任", branch_id="B1"),
    "customer_manager": Account("s1", "customer_manager", "张三", branch_id="B1", staff_id="S1"),
    "teller": Account("t2", "teller", "隆昌柜员", branch_id="B2"),
    "credit_committee": Account("cc1", "credit_committee", "贷审会委员"),
}


def tiny_workspace(path: Path, *, with_plan: bool = True, demo: bool = False) -> Path:
    """One town, three villages, three grids side by side.

    G1 (甲村, B1, staff S1): H0–H2, all archived. G2 (乙村, B1, no staff): H3 archived, H4–H5 not.
    G3 (丙村, B2, staff S2): H6, H8 archived (H6 granted 60,000 as 福农卡 “良好”), H7 not.
    The county: 9 households, 6 archived; branch B1: 6 households, 4 archived; S1: 3, all archived.
    """
    ws = GpkgWorkspace.create(path, county_code="150422", county_name="巴林左旗", demo=demo)
    boxes = [shapely.box(119.3 + 0.1 * i, 43.9, 119.4 + 0.1 * i, 44.0) for i in range(3)]
    villages = ["150422100201", "150422100202", "150422100203"]
    admin = gpd.GeoDataFrame(
        {"code": ["150422", "150422100", *villages], "name": ["巴林左旗", "林东镇", "甲村", "乙村", "丙村"],
         "level": ["county", "town", "village", "village", "village"],
         "parent_code": [None, "150422", "150422100", "150422100", "150422100"]},
        geometry=[shapely.union_all(boxes), shapely.union_all(boxes), *boxes], crs=4490)
    hh = gpd.GeoDataFrame(
        {"hh_id": [f"H{i}" for i in range(9)], "head_name": [f"户主{i}" for i in range(9)],
         "id_no": [f"15042219800101{i:04d}" for i in range(9)], "phone": [f"1381234{i:04d}" for i in range(9)],
         "segment": "农牧户", "village_code": [v for v in villages for _ in range(3)],
         "archived": [True, True, True, True, False, False, True, False, True],
         "eligible": [True, True, False, True, False, False, True, False, False],
         "product": [None] * 6 + ["福农卡", None, None], "grade": [None] * 6 + ["良好", None, None],
         "granted_amount": [50000.0, 0, 0, 80000.0, 0, 0, 60000.0, 0, 0]},
        geometry=[shapely.Point(119.35 + 0.1 * (i // 3), 43.95 + 0.01 * (i % 3)) for i in range(9)], crs=4490)
    branches = gpd.GeoDataFrame({"branch_id": ["B1", "B2"], "name": ["林东信用社", "隆昌信用社"]},
                                geometry=[shapely.Point(119.4, 43.95), shapely.Point(119.55, 43.95)], crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["张三", "李四"], "branch_id": ["B1", "B2"],
                          "role": ["客户经理", "客户经理"]})
    visits = pd.DataFrame({"hh_id": ["H0", "H1", "H6"], "staff_id": ["S1", "S1", "S2"],
                           "visited_on": pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-04"]),
                           "outcome": ["已建档"] * 3, "note": [""] * 3})
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.replace("admin_units", admin)
        tx.replace("households", hh)
        tx.replace("branches", branches)
        tx.replace("staff", staff)
        tx.replace("visits", visits)
        if with_plan:
            now = pd.Timestamp("2024-01-01", tz="UTC")
            tx.replace("plans", pd.DataFrame({"plan_id": ["P1"], "name": ["main"], "status": ["published"],
                                              "revision": [1], "created_at": [now], "updated_at": [now]}))
            tx.replace("grids", gpd.GeoDataFrame(
                {"grid_id": ["G1", "G2", "G3"], "plan_id": "P1", "code": ["W1", "W2", "W3"],
                 "name": ["甲网格", "乙网格", "丙网格"], "kind": "rural", "source_codes": villages,
                 "branch_id": ["B1", "B1", "B2"], "staff_id": ["S1", None, "S2"]}, geometry=boxes, crs=4490))
    create_account(ws, username="zhang", password=PASSWORD, role="leadership", actor="test", display_name="张领导")
    return path


@pytest.fixture
def ws_path(tmp_path, monkeypatch) -> Path:
    path = tiny_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    return path


@pytest.fixture
def app(ws_path):
    def make(role: str | None = "leadership", *, page: str | None = None) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        if role is not None:
            at.session_state["auth.session"] = session_for(ACCOUNTS[role])
        at.run()
        if page is not None:
            at.switch_page(page).run()
        return at

    return make


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def all_text(at: AppTest) -> str:
    """Every table cell and text element of the page, as one string (to look for household ids)."""
    parts = [df.value.to_csv() for df in at.dataframe]
    parts += [str(getattr(e, "value", "")) for kind in ("markdown", "caption", "info", "subheader", "title")
              for e in getattr(at, kind)]
    return "\n".join(parts)


# -- sign-in -----------------------------------------------------------------------------------------------


def login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click()
    return at.run()


def test_signed_out_shows_only_the_login_form(app):
    at = app(None)
    assert not at.exception
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert [t.value for t in at.title] == ["网格通"]
    assert not at.metric and not at.dataframe  # no data before sign-in
    assert not any("演示工作区" in i.value for i in at.info)  # not a demo workspace: no demo password shown


def test_wrong_password_fails(app, ws_path):
    at = login(app(None), "zhang", "wrong-password")
    assert not at.exception
    assert any("用户名或密码错误" in e.value for e in at.error)
    assert at.session_state["auth.session"] is None
    log = GpkgWorkspace(ws_path).read("audit")
    assert log["action"].tolist()[-1] == "登录失败" and log["actor"].tolist()[-1] == "zhang"


def test_right_password_signs_in(app, ws_path):
    at = login(app(None), "zhang", PASSWORD)
    assert not at.exception
    assert at.session_state["auth.session"].account.role == "leadership"
    assert [t.value for t in at.title] == ["覆盖总览"]
    assert any("张领导" in m.value for m in at.sidebar.markdown)
    assert "退出登录" in [b.label for b in at.sidebar.button]
    assert GpkgWorkspace(ws_path).read("audit")["action"].tolist()[-1] == "登录"


def test_expired_session_goes_back_to_the_form(app):
    at = AppTest.from_file(APP, default_timeout=60)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=9)  # SESSION_MINUTES is 480
    at.session_state["auth.session"] = session_for(ACCOUNTS["leadership"], started_at=old)
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert any("已自动退出" in w.value for w in at.warning)
    assert at.session_state["auth.session"] is None


def test_sign_out(app):
    at = app("leadership")
    next(b for b in at.sidebar.button if b.label == "退出登录").click().run()
    assert not at.exception
    assert at.session_state["auth.session"] is None
    assert not at.metric  # the page stops before reading any data
    # (AppTest reruns the last page script directly; the server reruns app.py, which shows the form)
    at.switch_page("app.py").run()
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert any("已退出登录" in w.value for w in at.warning)


def test_demo_workspace_shows_the_demo_hint(tmp_path, monkeypatch):
    path = tiny_workspace(tmp_path / "demo.gpkg", demo=True)
    from grids.auth import create_demo_accounts

    create_demo_accounts(GpkgWorkspace(path))
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    hint = " ".join(i.value for i in at.info)
    assert "wgt-demo-2026" in hint and "b1…b2" in hint and "s1…s2" in hint and "admin" in hint


AUTH_SECRETS = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "c" * 32,
                "client_id": "wgt", "client_secret": "s", "server_metadata_url": "http://idp.invalid/.well-known"}


class FakeUser(dict):
    """What ``st.user`` looks like after ``st.login()``."""

    is_logged_in = True


def test_single_sign_on_is_offered_only_when_configured(app, ws_path):
    assert "单点登录（统一身份认证）" not in [b.label for b in app(None).button]
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH_SECRETS
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["登录", "单点登录（统一身份认证）"]


@pytest.mark.parametrize(("email", "signed_in"), [("zhang", True), ("nobody@bank.cn", False)])
def test_single_sign_on_maps_the_oidc_user_to_an_account(ws_path, monkeypatch, email, signed_in):
    import streamlit

    monkeypatch.setattr(streamlit, "user", FakeUser(email=email, email_verified=True))
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH_SECRETS
    at.run()
    assert not at.exception
    if signed_in:
        assert at.session_state["auth.session"].account.username == "zhang"
        assert [t.value for t in at.title] == ["覆盖总览"]
        assert "oidc" in GpkgWorkspace(ws_path).read("audit")["detail"].iloc[-1]
    else:
        assert at.session_state["auth.session"] is None
        assert any("没有已启用的账号" in e.value for e in at.error)


# -- navigation by role ------------------------------------------------------------------------------------


def test_roles_filter_the_navigation(app):
    at = app("leadership")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/data.py")
    assert [p.path for p in pages_for("leadership")] == ["pages/overview.py", "pages/admin.py"]
    assert "pages/data.py" in [p.path for p in pages_for("planner")]
    assert "pages/admin.py" not in [p.path for p in pages_for("planner")]
    assert [p.path for p in pages_for("customer_manager")] == ["pages/workbench.py"]
    assert {"pages/rating.py", "pages/overview.py"} <= {p.path for p in pages_for("branch_manager")}
    assert {p.path for p in pages_for("admin")} == {p.path for p in PAGES}


def test_customer_manager_lands_on_the_workbench(app):
    at = app("customer_manager")
    assert not at.exception
    assert [t.value for t in at.title] == ["走访工作台"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/overview.py")


def test_missing_workspace_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_WORKSPACE", str(tmp_path / "nope.gpkg"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("无法打开工作区" in e.value and "python -m grids demo" in e.value.replace("\\", "") for e in at.error)


# -- overview ----------------------------------------------------------------------------------------------


def test_overview_runs_and_shows_the_funnel(app):
    at = app("leadership")
    assert not at.exception
    assert [t.value for t in at.title] == ["覆盖总览"]
    values = metric_values(at)
    assert values["登记户数"] == "9" and values["已建档"] == "6"
    assert {m.label: m.delta for m in at.metric}["已建档"] == "66.7%"  # 6 of 9
    assert any("点击地图上的网格" in i.value for i in at.info)  # the side panel waits for a click
    assert "map.basemap" in {s.key for s in at.selectbox}
    assert [t.label for t in at.tabs] == ["授信漏斗", "分镇统计", "每周走访", "客户经理进度", "月度报告"]


def test_overview_runs_only_the_open_tab(app):
    at = app("leadership")
    assert not at.get("download_button")  # the town table's tab is closed: its table and CSV are not built
    at.session_state["overview.tab"] = "分镇统计"
    at.run()
    assert not at.exception
    assert [b.label for b in at.get("download_button")] == ["下载分镇统计（CSV）"]
    towns = at.dataframe[-1].value
    assert towns["名称"].tolist() == ["林东镇"] and towns["登记户数"].tolist() == [9]


def test_overview_of_a_branch_manager_is_their_branch(app):
    at = app("branch_manager")
    assert not at.exception
    assert [t.value for t in at.title] == ["覆盖总览 · 林东信用社"]
    values = metric_values(at)
    assert values["登记户数"] == "6" and values["已建档"] == "4"
    text = all_text(at)
    assert not any(f"H{i}" in text for i in (6, 7, 8))
    assert [c.label for c in at.sidebar.checkbox] == ["显示完整身份证号/电话"]  # branch managers may unmask


def test_planner_cannot_unmask(app):
    at = app("planner")
    assert not at.exception
    assert not at.sidebar.checkbox


def _without_a_plan(tmp_path, monkeypatch, role: str) -> AppTest:
    """The app signed in as ``role`` on a workspace that has no grid plan yet."""
    monkeypatch.setenv("GRIDS_WORKSPACE", str(tiny_workspace(tmp_path / "np.gpkg", with_plan=False)))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(ACCOUNTS[role])
    return at.run()


def test_overview_falls_back_to_villages_without_a_plan(tmp_path, monkeypatch):
    at = _without_a_plan(tmp_path, monkeypatch, "leadership")
    assert not at.exception
    assert any("还没有网格方案" in i.value for i in at.info)
    assert any("点击地图上的村" in i.value for i in at.info)


def test_branch_manager_without_a_plan_gets_a_warning(tmp_path, monkeypatch):
    at = _without_a_plan(tmp_path, monkeypatch, "branch_manager")
    assert not at.exception
    assert any("无法确定你的管辖范围" in w.value for w in at.warning)
    assert not at.metric


def test_selected_grid_shows_its_figures(app):
    at = app("leadership")
    at.session_state["overview.selected"] = "G2"
    at.run()
    assert not at.exception
    assert "乙网格" in [h.value for h in at.subheader]
    assert any("无人负责" in e.value for e in at.error)
    assert metric_values(at)["户数"] == "3"
    assert any("未覆盖农户：3 户" in m.value for m in at.markdown)  # 2 not archived + no staff for all 3


def test_a_grid_out_of_scope_cannot_be_selected(app):
    at = app("branch_manager")
    at.session_state["overview.selected"] = "G3"  # B2's grid
    at.run()
    assert not at.exception
    assert "丙网格" not in [h.value for h in at.subheader]
    assert any("点击地图上的网格" in i.value for i in at.info)


# -- data page ---------------------------------------------------------------------------------------------


def test_data_page_for_admin(app):
    at = app("admin", page="pages/data.py")
    assert not at.exception
    assert [t.value for t in at.title] == ["数据管理"]
    assert metric_values(at)["旗县"] == "巴林左旗"
    counts = at.dataframe[0].value
    assert counts.set_index("图层").loc["households", "行数"] == 9
    assert {"只校验", "校验并导入"} <= {b.label for b in at.button}


def test_data_page_hides_the_audit_from_planners(app):
    at = app("planner", page="pages/data.py")
    assert not at.exception
    assert any("审计记录只对管理员和领导开放" in c.value for c in at.caption)


# -- workbench ---------------------------------------------------------------------------------------------


def test_workbench_lists_my_households_left_to_visit(tmp_path, monkeypatch):
    # S2 (grid G3): H7 not archived; H6, H8 archived
    monkeypatch.setenv("GRIDS_WORKSPACE", str(tiny_workspace(tmp_path / "w.gpkg")))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(Account("s2", "customer_manager", "李四", "B2", "S2"))
    at.run()
    assert not at.exception
    values = metric_values(at)
    assert values["我的农户"] == "3" and values["建档率"] == "66.7%"
    # no reporting date: the 7 days to today, quota 12 a visit day × 5 visit days
    week = next(v for k, v in values.items() if k.startswith("近 7 天走访（截至 "))
    assert week == "0 / 60"
    assert any("待走访：1 户" in h.value for h in at.subheader)
    todo = at.dataframe[0].value
    assert todo["户号"].tolist() == ["H7"]
    assert todo["电话"].tolist() == ["138****0007"]  # masked
    # H7 is at (119.55, 43.96), the branch B2 at (119.55, 43.95): 0.01° of latitude ≈ 1.11 km
    assert todo["距离（公里）"].iloc[0] == pytest.approx(1.11, abs=0.01)
    assert {"农户（离起点最近的在前）", "走访结果"} <= {s.label for s in at.selectbox}
    assert [d.label for d in at.date_input] == ["走访日期"]  # the survey form is built only once opened
    at.session_state["workbench.survey_open"] = True
    at.run()
    assert [d.label for d in at.date_input] == ["走访日期", "采集日期"]  # the visit form, then the survey form


def test_recording_a_visit_updates_coverage(app, ws_path):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(Account("s9", "customer_manager", "王五", "B1", "S1"))
    ws = GpkgWorkspace(ws_path)
    ws.write("grids", ws.read("grids").assign(staff_id=["S1", "S1", "S2"]), actor="test")  # S1 takes G2
    at.run()
    assert metric_values(at)["建档率"] == "66.7%"  # 4 of 6
    rev = ws.revision
    form_select = next(s for s in at.selectbox if s.label == "农户（离起点最近的在前）")
    # from the branch B1 (119.40, 43.95): H4 (119.45, 43.96) ≈ 4.2 km, H5 (119.45, 43.97) ≈ 4.6 km
    assert [o.split()[0] for o in form_select.options] == ["H4", "H5"]
    form_select.set_value("H4")
    next(s for s in at.selectbox if s.label == "走访结果").set_value("已建档")
    next(b for b in at.button if b.label == "记录走访").click()
    at.run()
    assert not at.exception
    assert ws.revision == rev + 1
    assert metric_values(at)["建档率"] == "83.3%"  # 5 of 6
    assert any("已记录：H4 已建档" in s.value for s in at.success)
    assert next(v for k, v in metric_values(at).items() if k.startswith("近 7 天走访")).startswith("1 / ")
    last = ws.read("visits").iloc[-1]
    assert (last["hh_id"], last["staff_id"], last["outcome"]) == ("H4", "S1", "已建档")


def test_admin_picks_a_customer_manager_on_the_workbench(app):
    at = app("admin", page="pages/workbench.py")
    assert not at.exception
    pick = next(s for s in at.selectbox if s.label == "客户经理")
    assert pick.options == ["张三（S1）", "李四（S2）"]
    assert metric_values(at)["我的农户"] == "3"


# -- rating ------------------------------------------------------------------------------------------------


def test_rating_lists_surveyed_households_of_a_village_of_the_branch(app):
    at = app("branch_manager", page="pages/rating.py")
    assert not at.exception
    village = next(s for s in at.selectbox if s.label == "村/嘎查/社区")
    assert village.options == ["甲村（已建档 3 户）", "乙村（已建档 1 户）"]  # 丙村 belongs to B2
    assert {b.label for b in at.button} >= {"校验", "保存"}
    assert {d.label for d in at.get("download_button")} == {"下载白名单（Excel）", "下载白名单（CSV）",
                                                            "下载评定表模板（Excel）"}
    white = at.dataframe[-1].value
    assert white["户号"].tolist() == ["H0"] and white["身份证号"].iloc[0] == "150422********0000"


def test_rating_unmasked_view_is_audited(app, ws_path):
    at = app("branch_manager", page="pages/rating.py")
    assert at.dataframe[-1].value["身份证号"].iloc[0] == "150422********0000"
    at.session_state["app.unmask"] = True  # the sidebar tick (AppTest runs a switched-to page without app.py)
    at.run()
    assert not at.exception
    assert at.dataframe[-1].value["身份证号"].iloc[0] == "150422198001010000"
    log = GpkgWorkspace(ws_path).read("audit")
    assert log["action"].tolist()[-1] == "查看明文个人信息" and log["actor"].tolist()[-1] == "b1"
    n = len(log)
    at.run()  # the same view again: no second audit row
    assert len(GpkgWorkspace(ws_path).read("audit")) == n


def test_rating_check_and_save(app, ws_path):
    from grids.ratings import changed_ratings, check_ratings, save_ratings
    from ui.data import AppScopedWorkspace

    ws = GpkgWorkspace(ws_path)
    sw = AppScopedWorkspace(ws, ACCOUNTS["branch_manager"], target=str(ws_path))
    batch = pd.DataFrame({"hh_id": ["H1", "H2"], "grade": ["良好", "优秀"], "granted_amount": [60000.0, 150000.0],
                          "guarantee": ["", ""]})
    problems = check_ratings(sw, batch)
    assert problems["hh_id"].tolist() == ["H2"]  # 150,000 is above 福农卡 “优秀” (80,000–100,000)
    rev = ws.revision
    from grids.errors import ValidationError

    with pytest.raises(ValidationError, match="直接评级只能调低或取消授信"):  # H1 0 → 60,000: a 评定会's
        save_ratings(sw, batch.iloc[:1], expected_revision=rev)
    lower = batch.iloc[:1].assign(hh_id="H0", grade="一般", granted_amount=45000.0)  # H0 50,000 → 45,000
    assert save_ratings(sw, lower, expected_revision=rev) == 1
    assert ws.read("households").set_index("hh_id").loc["H0", "granted_amount"] == 45000.0
    assert ws.read("audit")["action"].tolist()[-1] == "集中授信评级"
    from grids.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):  # H6 is B2's
        save_ratings(sw, pd.DataFrame({"hh_id": ["H6"], "grade": ["良好"], "granted_amount": [60000.0]}),
                     expected_revision=ws.revision)
    original = pd.DataFrame({"hh_id": ["a"], "grade": [None], "granted_amount": [0.0], "guarantee": [None]})
    assert changed_ratings(original, original.copy()).empty


def test_rating_page_buttons(app):
    at = app("branch_manager", page="pages/rating.py")
    next(b for b in at.button if b.label == "校验").click().run()
    assert not at.exception
    assert any("还没有改动" in i.value for i in at.info)


# -- accounts and audit ------------------------------------------------------------------------------------


def test_admin_page_manages_accounts(app, ws_path):
    at = app("admin", page="pages/admin.py")
    assert not at.exception
    assert [t.label for t in at.tabs] == ["账号", "产品规则", "审计记录"]
    assert at.dataframe[0].value["用户名"].tolist() == ["zhang"]
    inputs = {t.label: t for t in at.text_input}
    inputs["用户名"].input("wang")
    inputs["姓名"].input("王五")
    inputs["初始密码"].input("a-long-password")
    next(s for s in at.selectbox if s.label == "角色").set_value("branch_manager")
    next(s for s in at.selectbox if s.label == "网点（网点主任）").set_value("B2")
    next(b for b in at.button if b.label == "新建").click()
    at.run()
    assert not at.exception
    acc = GpkgWorkspace(ws_path).read("accounts").set_index("username")
    assert acc.loc["wang", "role"] == "branch_manager" and acc.loc["wang", "branch_id"] == "B2"
    next(s for s in at.selectbox if s.label == "账号").set_value("wang")
    at.run()
    next(b for b in at.button if b.label == "停用账号").click()
    at.run()
    assert not bool(GpkgWorkspace(ws_path).read("accounts").set_index("username").loc["wang", "active"])


def test_leadership_sees_only_the_audit_tab(app, ws_path):
    from grids.audit import chain_head

    at = app("leadership", page="pages/admin.py")
    assert not at.exception
    assert [t.label for t in at.tabs] == ["审计记录"]
    log = at.dataframe[0].value
    assert "账号变更" in set(log["操作"]) and "测试数据" in set(log["操作"])
    at.multiselect[1].select("账号变更").run()
    assert set(at.dataframe[0].value["操作"]) == {"账号变更"}
    assert at.get("download_button")[0].label == "导出审计记录（CSV）"
    assert any(chain_head(GpkgWorkspace(ws_path)) in c.value for c in at.caption)  # the head, to compare out of band


def test_audit_trail_needs_view_audit(ws_path):
    from grids.audit import audit_trail
    from grids.errors import PermissionDeniedError

    ws = GpkgWorkspace(ws_path)
    assert len(audit_trail(ws, ACCOUNTS["admin"], actions=["账号变更"])) == 1
    with pytest.raises(PermissionDeniedError):
        audit_trail(ws, ACCOUNTS["planner"])


def _village_only_workspace(path: Path) -> Path:
    """The tiny workspace plus, in 丙村 (S2's grid G3), three households not yet archived known only by village:
    H9 and H10 without a point, H11 with a stored point its import did not take (``placed_by`` ``name``); and
    丙村's seat."""
    tiny_workspace(path)
    ws = GpkgWorkspace(path)
    extra = gpd.GeoDataFrame(
        {"hh_id": ["H9", "H10", "H11"], "head_name": ["户主9", "户主10", "户主11"], "segment": "农牧户",
         "village_code": "150422100203", "archived": False, "placed_by": ["name", "code", "name"],
         "phone": ["13812340009", "13812340010", "13812340011"]},
        geometry=[None, None, shapely.Point(119.51, 43.91)], crs=4490)
    seats = gpd.GeoDataFrame({"code": ["150422100203"], "name": ["丙村村委会"], "level": ["village"],
                              "town_code": ["150422100"]}, geometry=[shapely.Point(119.58, 43.98)], crs=4490)
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.append("households", extra)
        tx.replace("seats", seats)
    return path


def test_workbench_lists_village_only_households_under_their_village(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_WORKSPACE", str(_village_only_workspace(tmp_path / "w.gpkg")))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(Account("s2", "customer_manager", "李四", "B2", "S2"))
    at.run()
    assert not at.exception
    assert any("待走访：4 户" in h.value for h in at.subheader)
    located = at.dataframe[0].value
    assert located["户号"].tolist() == ["H7"]  # only a household's own point has a distance
    assert located["距离（公里）"].notna().all()
    assert any("只知道村、没有坐标的农户：3 户" in m.value for m in at.markdown)
    box = next(e for e in at.expander if "丙村" in e.label)
    assert box.label == "丙村：3 户未定位"
    rows = box.dataframe[0].value
    assert sorted(rows["户号"]) == ["H10", "H11", "H9"]
    assert "距离（公里）" not in rows.columns
    assert rows["电话"].str.contains(r"\*\*\*\*").all()  # masked like the other list
    pick = next(s for s in at.selectbox if s.label == "农户（离起点最近的在前）")
    assert pick.options[0].startswith("H7") and "H9 户主9 丙村" in pick.options


def test_workbench_map_counts_village_only_households_at_the_seat(tmp_path):
    import json
    import re

    from grids.scope import ScopedWorkspace
    from ui import data

    ws = GpkgWorkspace(_village_only_workspace(tmp_path / "w.gpkg"))
    sw = ScopedWorkspace(ws, Account("s2", "customer_manager", "李四", "B2", "S2"))
    wb = data.workbench(sw, staff_id="S2", start=None, admin_units=ws.read("admin_units"), seats=ws.read("seats"))
    html = data.workbench_map(wb, basemap="offline").get_root().render()
    steps = json.loads(re.search(r"var steps = (\[[^\]]*\])", html).group(1))
    assert len(steps) == 2  # H7 alone is a point; H11's stored point is not drawn
    marker = json.loads(re.search(r"var d = (\[.*?\]), color", html).group(1))
    assert marker == [43.98, 119.58, 3, "丙村"]  # at the seat, the tooltip “丙村：3 户未定位”


def test_a_start_picked_on_the_map_recomputes_only_the_distances(tmp_path):
    """The workbench from a picked point equals the full computation from that point (the figures, progress and
    village counts come from the branch-start result; only distances and order are redone)."""
    from grids.workspace import open_workspace
    from ui import data

    path = tiny_workspace(tmp_path / "w.gpkg")
    ws = open_workspace(path)
    acc = Account("s2", "customer_manager", "李四", "B2", "S2")
    sw = data.AppScopedWorkspace(ws, acc, target=str(path))
    start = (119.56, 43.99)
    full = data.workbench(sw, staff_id="S2", start=start, admin_units=ws.read("admin_units"), seats=ws.read("seats"))
    fast = data._cached_workbench(str(path), ws.revision, "s2", "customer_manager", "S2", start, "d", sw)
    assert fast.todo["hh_id"].tolist() == full.todo["hh_id"].tolist()
    assert fast.todo["distance_km"].tolist() == full.todo["distance_km"].tolist()
    assert (fast.start, fast.start_label, fast.week["visits"]) == (full.start, full.start_label, full.week["visits"])
