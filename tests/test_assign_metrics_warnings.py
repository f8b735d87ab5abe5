"""balance_warnings: which grids to split where whole grids cannot bring a branch's managers within 10 %,
as warnings with the reason and the fix; and how 人员分配 shows them."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from grids.assign.metrics import BALANCE_TARGET, WARNING_COLUMNS, balance_warnings, warning_lines
from grids.assign.partition import balance_bounds


def frame(households, staff_id, branch="B1", name=None):
    n = len(households)
    return pd.DataFrame({"grid_id": [f"{branch}-G{i}" for i in range(n)],
                         "name": name or [f"网格{i}" for i in range(n)],
                         "households": households, "branch_id": branch, "staff_id": staff_id})


def team(branch, k):
    return pd.DataFrame({"staff_id": [f"{branch}-S{i}" for i in range(k)], "branch_id": branch})


def test_coarse_branch_gets_a_split_warning_with_the_proven_bound():
    hh = [400, 300, 80, 60, 50, 40, 30]
    grids = frame(hh, [f"B1-S{i}" for i in range(5)] + ["B1-S4", "B1-S4"])
    w = balance_warnings(grids, team("B1", 5))
    assert list(w.columns) == WARNING_COLUMNS
    assert (w["severity"] == "warning").all() and (w["code"] == "staff_balance_split").all()
    bound = balance_bounds(np.array(hh, dtype=float), 5)["lower_bound"]
    assert bound > BALANCE_TARGET
    assert w["lower_bound"].tolist() == pytest.approx([bound] * len(w))
    first = w.iloc[0]
    assert first["grid_id"] == "B1-G0" and first["parts"] >= 2  # the largest grid is split first
    assert f"{bound:.0%}" in first["message"] and "可证明的下限" in first["message"]
    assert f"拆成 {first['parts']} 块" in first["fix"] and "网格0（B1-G0）" in first["fix"]
    # splitting as suggested makes 10 % reachable: the bound on the pieces allows it
    parts = np.ones(len(hh), dtype=np.int64)
    parts[[int(g.rsplit("G", 1)[1]) for g in w["grid_id"]]] = w["parts"].to_numpy()
    pieces = np.repeat(np.array(hh, dtype=float) / parts, parts)
    assert balance_bounds(pieces, 5)["lower_bound"] <= BALANCE_TARGET


def test_no_warning_where_whole_grids_can_balance_or_the_team_already_is():
    even = frame([10] * 8, [f"B2-S{i % 4}" for i in range(8)], branch="B2")
    assert balance_warnings(even, team("B2", 4)).empty
    # unbalanced now (all on one manager), but whole grids can reach 10 %: rebalancing fixes it, no split
    lopsided = frame([10] * 8, ["B2-S0"] * 8, branch="B2")
    assert balance_warnings(lopsided, team("B2", 4)).empty
    # a single manager has nothing to balance
    assert balance_warnings(frame([500, 5], ["B3-S0"] * 2, branch="B3"), team("B3", 1)).empty


def test_only_the_branches_that_need_it_and_unassigned_grids_use_the_best_whole_grid_balance():
    grids = pd.concat([frame([300, 60, 40], [None, None, None], branch="BX"),
                       frame([10] * 8, [f"BY-S{i % 2}" for i in range(8)], branch="BY")], ignore_index=True)
    staff = pd.concat([team("BX", 4), team("BY", 2)], ignore_index=True)
    w = balance_warnings(grids, staff)
    assert w["branch_id"].unique().tolist() == ["BX"]
    assert w[["grid_id", "parts"]].values.tolist() == [["BX-G0", 3]]
    assert w["spread"].isna().all()  # no manager has a grid yet: no current spread


def test_weights_replace_households():
    grids = frame([10] * 4, ["B1-S0", "B1-S0", "B1-S1", "B1-S1"])
    assert balance_warnings(grids, team("B1", 2)).empty
    heavy = pd.Series([100.0, 10, 10, 10], index=grids.index)
    w = balance_warnings(grids, team("B1", 2), weights=heavy)
    assert w["grid_id"].tolist() == ["B1-G0"] and w["households"].tolist() == [10]


def test_warning_lines_carry_reason_and_fix():
    w = balance_warnings(frame([300, 60, 40], ["B1-S0"] * 3), team("B1", 4))
    lines = warning_lines(w)
    assert len(lines) == 1 and lines[0].startswith("警告：") and "。处理：把网格" in lines[0]


def test_staffing_page_shows_the_split_warning_next_to_the_bound(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from grids import plans
    from grids.auth import Account
    from tests.test_app_planning import APP, E, W, small_workspace
    from ui.auth import session_for

    ws = small_workspace(tmp_path / "ws.gpkg")
    grids = gpd.GeoDataFrame(
        {"code": ["150422100201001", "150422100202001"], "name": ["甲*村*", "乙村"], "kind": "rural",
         "town_code": "150422100", "source_codes": ["150422100201", "150422100202"], "households": [40, 2],
         "branch_id": "B1", "staff_id": ["S1", "S2"]}, geometry=[W, E], crs=4490)
    pid = plans.save_draft(ws, grids, name="coarse", actor="test")
    plans.publish_plan(ws, pid, actor="test")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(ws.path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(Account("b01", "branch_manager", "主任", branch_id="B1"))
    at.run()
    at.switch_page(str(Path("pages") / "staffing.py"))
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["可达到的下限"] == f"{(40 - 2) / 21 * 100:.0f}%"
    texts = [w.value for w in at.warning]
    split = [t for t in texts if "拆成 2 块" in t]
    assert len(split) == 1
    assert r"甲\*村\*" in split[0]  # the grid's name reaches Markdown escaped
