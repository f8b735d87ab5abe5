"""Scope enforced in the data access layer: each role calls the library and tries to reach what it must not.

Every test runs against both backends (GeoPackage and PostGIS).
"""

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.auth import Account
from grids.errors import PermissionDeniedError
from grids.plans import save_draft
from grids.scope import ScopedWorkspace

# Four grids in a row: G1, G2 belong to branch B1 (staff S1, S2), G3, G4 to branch B2 (staff S3, S4).
GRIDS = [("G1", "B1", "S1"), ("G2", "B1", "S2"), ("G3", "B2", "S3"), ("G4", "B2", "S4")]


@pytest.fixture
def ws(any_ws):
    empty_ws = any_ws
    grids = gpd.GeoDataFrame(
        {"grid_id": [g for g, _, _ in GRIDS], "code": [f"15042210020{i}001" for i in range(1, 5)],
         "kind": "rural", "branch_id": [b for _, b, _ in GRIDS], "staff_id": [s for _, _, s in GRIDS],
         "source_codes": [f"15042210020{i}" for i in range(1, 5)]},
        geometry=[shapely.box(119 + 0.1 * i, 43, 119.1 + 0.1 * i, 43.1) for i in range(4)], crs=4490)
    hh = gpd.GeoDataFrame(
        {"hh_id": [f"H{i}{j}" for i in range(1, 5) for j in range(3)],
         "head_name": "某某", "id_no": "150422199001011234", "phone": "13812345678",
         "village_code": [f"15042210020{i}" for i in range(1, 5) for _ in range(3)],
         "archived": False, "eligible": False, "granted_amount": 0.0, "signed": False, "using": False},
        geometry=[shapely.Point(119.05 + 0.1 * (i - 1), 43.05 + 0.01 * j) for i in range(1, 5) for j in range(3)],
        crs=4490)
    hh.loc[hh["hh_id"] == "H22", "geometry"] = None  # located by village code only
    staff = pd.DataFrame({"staff_id": ["S1", "S2", "S3", "S4"], "name": ["甲", "乙", "丙", "丁"],
                          "branch_id": ["B1", "B1", "B2", "B2"], "role": "客户经理"})
    branches = gpd.GeoDataFrame({"branch_id": ["B1", "B2"], "name": ["一社", "二社"]},
                                geometry=[shapely.Point(119.1, 43.05), shapely.Point(119.3, 43.05)], crs=4490)
    with empty_ws.transaction(actor="t", action="准备") as tx:
        tx.replace("households", hh)
        tx.replace("staff", staff)
        tx.replace("branches", branches)
    save_draft(empty_ws, grids, name="main")
    return empty_ws


def view(ws, role, **kw):
    return ScopedWorkspace(ws, Account(username=f"u-{role}", role=role, **kw))


def test_branch_manager_sees_only_own_branch(ws):
    sw = view(ws, "branch_manager", branch_id="B1")
    assert set(sw.grids()["grid_id"]) == {"G1", "G2"}
    assert set(sw.households()["hh_id"]) == {f"H{i}{j}" for i in (1, 2) for j in range(3)}
    assert set(sw.staff()["staff_id"]) == {"S1", "S2"}
    assert int(sw.funnel().iloc[0]["registered"]) == 6
    with pytest.raises(PermissionDeniedError):
        sw.require_grid("G3")
    with pytest.raises(PermissionDeniedError):
        sw.require_household("H30")
    with pytest.raises(PermissionDeniedError):
        sw.reassign_grid("G3", "S1")
    with pytest.raises(PermissionDeniedError):
        sw.reassign_grid("G1", "S3")  # staff of another branch
    with pytest.raises(PermissionDeniedError):
        sw.audit_log()


def test_households_with_columns_keeps_scope_and_leaves_the_rest_out(ws):
    sw = view(ws, "branch_manager", branch_id="B1")
    few = sw.households(columns=["hh_id", "archived", "no_such_column"])
    assert set(few["hh_id"]) == set(sw.households()["hh_id"]) == {f"H{i}{j}" for i in (1, 2) for j in range(3)}
    assert list(few.columns) == ["hh_id", "archived", few.geometry.name]  # no ID number or phone to mask
    assert few.geometry.notna().sum() == sw.households().geometry.notna().sum()

def test_customer_manager_sees_only_own_grids(ws):
    sw = view(ws, "customer_manager", staff_id="S2")
    assert sw.grids()["grid_id"].tolist() == ["G2"]
    assert set(sw.households()["hh_id"]) == {"H20", "H21", "H22"}
    assert sw.staff()["staff_id"].tolist() == ["S2"]
    with pytest.raises(PermissionDeniedError):
        sw.record_visit("H10", visited_on="2026-01-05", outcome="已建档")
    with pytest.raises(PermissionDeniedError):
        sw.households(unmask=True)
    with pytest.raises(PermissionDeniedError):
        sw.reassign_grid("G2", "S1")


def test_county_roles_see_everything_and_masking_is_default(ws):
    sw = view(ws, "leadership")
    hh = sw.households()
    assert len(hh) == 12 and set(sw.grids()["grid_id"]) == {"G1", "G2", "G3", "G4"}
    assert hh["id_no"].iloc[0] == "150422********1234" and hh["phone"].iloc[0] == "138****5678"
    full = sw.households(unmask=True, purpose="核对")
    assert full["id_no"].iloc[0] == "150422199001011234"
    audit = ws.read("audit")
    assert audit["action"].iloc[-1] == "查看明文个人信息" and audit["actor"].iloc[-1] == "u-leadership"
    assert "150422199001011234" not in " ".join(audit["detail"])


def test_record_visit_archives_and_is_audited(ws):
    sw = view(ws, "customer_manager", staff_id="S1")
    sw.record_visit("H10", visited_on="2026-01-05", outcome="已建档", note="首次走访")
    assert bool(ws.read("households", where="hh_id = 'H10'")["archived"].iloc[0])
    assert int(sw.funnel().iloc[0]["archived"]) == 1
    visits = ws.read("visits")
    assert visits["staff_id"].tolist() == ["S1"] and visits["hh_id"].tolist() == ["H10"]
    assert ws.read("audit")["action"].iloc[-1] == "记录走访"


def test_branch_manager_reassigns_within_branch(ws):
    sw = view(ws, "branch_manager", branch_id="B1")
    sw.reassign_grid("G1", "S2")
    assert sw.grids().set_index("grid_id").loc["G1", "staff_id"] == "S2"
    last = ws.read("audit").iloc[-1]
    assert "S1 → S2" in last["action"]
    assert '"grid_id": "G1", "field": "staff_id", "before": "S1", "after": "S2"' in last["detail"]
