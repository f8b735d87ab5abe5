"""``python -m grids status``: what a workspace has and lacks, what each gap blocks, the next command (issue 14)."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import shapely

from grids.__main__ import main
from grids.auth import create_account
from grids.status import STEPS, workspace_status
from grids.workspace import GpkgWorkspace


def _steps(status):
    return {s["key"]: s for s in status["steps"]}


def test_empty_workspace_lacks_everything_and_says_init_first(empty_ws):
    st = workspace_status(empty_ws, path="ws.gpkg")
    steps = _steps(st)
    assert [s["key"] for s in st["steps"]] == [s["key"] for s in STEPS]
    assert steps["outline"]["state"] == "missing" and st["next"].startswith("python -m grids init ws.gpkg")
    assert not st["ready"] and steps["groups"]["state"] == "optional"
    for s in st["steps"]:
        if s["state"] == "missing":
            assert s["blocks"] and s["next"], s["key"]


def _initialised(tmp_path):
    from geodata.demo import reference_outline
    from grids.commands.init import init_workspace

    outline = reference_outline("150423")
    return init_workspace(tmp_path / "brq.gpkg", county="150423", outline=outline)


def test_initialised_workspace_asks_for_the_first_admin_then_villages(tmp_path):
    ws = _initialised(tmp_path)
    st = workspace_status(ws, path="brq.gpkg")
    steps = _steps(st)
    assert steps["outline"]["state"] == "done" and not steps["outline"]["next"]
    assert steps["towns"]["state"] == "partial"  # the towns are listed, their territory is not known yet
    assert steps["towns"]["counts"] == {"towns": ws.count("admin_units", where="level = 'town'"),
                                        "with_territory": 0}
    assert steps["accounts"]["state"] == "missing" and "accounts add brq.gpkg" in st["next"]
    assert "--user" not in st["next"]  # the first admin needs none
    create_account(ws, username="chief", password="first-admin-pass", role="admin", actor="test")
    st = workspace_status(ws, path="brq.gpkg")
    assert st["next"].startswith("python -m grids import brq.gpkg villages")


def test_households_and_villages_are_counted_by_how_they_are_placed(tmp_path):
    ws = _initialised(tmp_path)
    town = ws.read("admin_units", where="level = 'town'").code.iloc[0]
    box = shapely.box(118.9, 43.6, 119.0, 43.7)
    villages = gpd.GeoDataFrame({
        "code": [town + "201", town + "901"], "name": ["甲村", "乙村"], "level": "village", "kind": "村",
        "parent_code": town, "derived": [False, True], "provisional_code": [False, True]},
        geometry=[box, box], crs=4490)
    hh = gpd.GeoDataFrame({
        "hh_id": ["H1", "H2", "H3", "H4", "H5"],
        "village_code": [town + "201", town + "201", town + "901", None, "999999999999"],
        "placed_by": ["point", None, "name", None, None]},
        geometry=[shapely.Point(118.95, 43.65), None, None, None, None], crs=4490)
    with ws.transaction(actor="test", action="测试") as tx:
        tx.append("admin_units", villages)
        tx.replace("households", hh)
    steps = _steps(workspace_status(ws))
    assert steps["villages"]["counts"] == {"villages": 2, "real": 1, "derived": 1, "provisional_code": 1}
    assert steps["villages"]["state"] == "partial"
    # H1 by its point, H2 by its (known) village code, H3 by name, H4 and H5 (unknown code) unplaced
    assert steps["households"]["counts"] == {"households": 5, "point": 1, "code": 1, "name": 1, "unplaced": 2,
                                             "unknown_village": 1}
    assert steps["households"]["state"] == "partial" and "households" in steps["households"]["next"]


def test_households_of_a_deleted_village_are_unplaced_whatever_placed_by_says(tmp_path):
    from grids.status import format_status

    ws = _initialised(tmp_path)
    town = ws.read("admin_units", where="level = 'town'").code.iloc[0]
    hh = gpd.GeoDataFrame({"hh_id": ["H1", "H2"], "village_code": [town + "901", town + "902"],
                           "placed_by": ["code", "name"]}, geometry=[None, None], crs=4490)
    with ws.transaction(actor="test", action="测试") as tx:
        tx.replace("households", hh)
    st = workspace_status(ws)
    steps = _steps(st)
    assert steps["households"]["counts"]["unplaced"] == 2 and steps["households"]["counts"]["unknown_village"] == 2
    assert steps["households"]["state"] == "partial"
    assert "已不存在" in format_status(st)


def test_status_prints_no_control_characters_of_the_county_name(tmp_path):
    from grids.status import format_status

    ws = _initialised(tmp_path)
    ws.set_meta("county_name", "巴林右旗\x1b[2J\x07")
    text = format_status(workspace_status(ws))
    assert "\x1b" not in text and "\x07" not in text and "巴林右旗[2J" in text


def test_demo_workspace_is_ready(demo_path, capsys):
    ws = GpkgWorkspace(demo_path)
    st = workspace_status(ws)
    assert st["ready"] and st["next"] == "" and st["demo"]
    steps = _steps(st)
    assert all(s["state"] == "done" for s in st["steps"])
    hh = steps["households"]["counts"]
    assert hh["households"] == ws.count("households") and hh["unplaced"] == 0
    assert hh["point"] + hh["code"] == hh["households"] and hh["code"] > 0  # the demo's ≈ 3 % without a point
    assert steps["plan"]["counts"]["published"] >= 1


def test_cli_prints_steps_and_json_exit_0(tmp_path, capsys):
    ws = _initialised(tmp_path)
    assert main(["status", str(ws.path)]) == 0
    out = capsys.readouterr().out
    assert "县界" in out and "下一步：" in out and "accounts add" in out
    assert main(["status", str(ws.path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["county"] == {"code": "150423", "name": "巴林右旗"} and len(data["steps"]) == len(STEPS)
    assert pd.Series([s["state"] for s in data["steps"]]).isin(["done", "partial", "missing", "optional"]).all()


def test_status_on_postgis(pg_target, capsys):
    from geodata.demo import reference_outline
    from grids.commands.init import init_workspace

    init_workspace(pg_target, county="150423", outline=reference_outline("150423"))
    assert main(["status", pg_target, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    steps = _steps(data)
    assert steps["outline"]["state"] == "done" and steps["accounts"]["state"] == "missing"
    assert steps["towns"]["counts"]["towns"] > 0 and "accounts add" in data["next"]


def test_data_page_shows_the_checklist(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui.auth import session_for

    from .test_app import ACCOUNTS, APP, tiny_workspace

    path = tiny_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(ACCOUNTS["admin"])
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert "开通进度" in [h.value for h in at.subheader]
    table = at.dataframe[1].value
    expected = workspace_status(GpkgWorkspace(path))
    assert table["步骤"].tolist() == [s["title"] for s in expected["steps"]]
    assert table["状态"].tolist() == [s["state_name"] for s in expected["steps"]]


def test_status_and_the_map_agree_on_households_known_by_their_group_codes_village():
    """A household whose group is not a unit but whose group code's village is counts as placed by code in
    `status`, as grids.placement draws it at that village (one rule: grids.placement.village_of)."""
    import pandas as pd

    from grids.placement import placement
    from grids.status import _placed

    hh = pd.DataFrame({"placed_by": ["code", "code"], "village_code": [None, None],
                       "group_code": ["150422100201009", "150422999999001"]})
    admin = pd.DataFrame({"code": ["150422100201"], "level": ["village"]})
    assert _placed(hh, {"150422100201"}).tolist() == ["code", "unplaced"]
    assert placement(hh, admin).tolist() == ["village", "unplaced"]
