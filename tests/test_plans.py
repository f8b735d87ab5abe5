"""Plans: drafts replaced on rebuild, published plans never replaced, plan revisions and stale saves."""

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.errors import StaleRevisionError, ValidationError
from grids.plans import (
    list_plans,
    plan_info,
    publish_plan,
    read_grids,
    resolve_plan,
    save_draft,
    update_grids,
)

EXTENT = (119.0, 43.0, 119.03, 43.01)


def _grids(codes, x0=119.0):
    """Strips tiling EXTENT, assigned (branch B01, staff S1)."""
    w = (EXTENT[2] - x0) / len(codes)
    return gpd.GeoDataFrame(
        {"code": codes, "kind": ["rural"] * len(codes), "households": list(range(10, 10 + len(codes))),
         "branch_id": "B01", "staff_id": "S1"},
        geometry=[shapely.box(x0 + i * w, EXTENT[1], x0 + (i + 1) * w, EXTENT[3]) for i in range(len(codes))],
        crs=4490,
    )


@pytest.fixture
def empty_ws(empty_ws):
    """A workspace whose county is EXTENT (no households), with staff S1 of branch B01: plans can be checked."""
    admin = gpd.GeoDataFrame({"code": ["150422", "150422100"], "name": ["巴林左旗", "林东镇"],
                              "level": ["county", "town"], "parent_code": [None, "150422"]},
                             geometry=[shapely.box(*EXTENT)] * 2, crs=4490)
    with empty_ws.transaction(actor="t", action="测试数据") as tx:
        tx.replace("admin_units", admin)
        tx.replace("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["张三"], "branch_id": ["B01"],
                                          "role": ["客户经理"]}))
    return empty_ws


def test_save_draft_creates_plan_and_grids(empty_ws):
    pid = save_draft(empty_ws, _grids(["A001", "A002"]), name="main", params={"max_households": 400})
    info = plan_info(empty_ws, pid)
    assert (info["name"], info["status"], info["revision"]) == ("main", "draft", 1)
    assert info["params"] == {"max_households": 400}
    back = read_grids(empty_ws, pid)
    assert back.crs.to_epsg() == 4490
    assert back["grid_id"].tolist() == ["A001", "A002"]
    assert back["plan_id"].unique().tolist() == [pid]
    assert back["locked"].tolist() == [False, False]


def test_draft_replaced_on_rebuild_keeps_id_and_bumps_revision(empty_ws):
    pid = save_draft(empty_ws, _grids(["A001", "A002"]), name="main")
    pid2 = save_draft(empty_ws, _grids(["B001", "B002", "B003"]), name="main")
    assert pid2 == pid
    assert plan_info(empty_ws, pid)["revision"] == 2
    assert read_grids(empty_ws, pid)["code"].tolist() == ["B001", "B002", "B003"]
    assert len(list_plans(empty_ws)) == 1
    assert empty_ws.count("grids") == 3


def test_other_plan_untouched_by_rebuild(empty_ws):
    a = save_draft(empty_ws, _grids(["A001"]), name="a")
    b = save_draft(empty_ws, _grids(["B001", "B002"]), name="b")
    save_draft(empty_ws, _grids(["A009"]), name="a")
    assert read_grids(empty_ws, b)["code"].tolist() == ["B001", "B002"]
    assert read_grids(empty_ws, a)["code"].tolist() == ["A009"]


def test_published_plan_never_replaced(empty_ws):
    pid = save_draft(empty_ws, _grids(["A001"]), name="main")
    publish_plan(empty_ws, pid, actor="t")
    before = empty_ws.revision
    with pytest.raises(ValidationError, match="已发布"):
        save_draft(empty_ws, _grids(["X001"]), name="main")
    assert empty_ws.revision == before
    assert read_grids(empty_ws, pid)["code"].tolist() == ["A001"]


def test_publish_archives_previous(empty_ws):
    a = save_draft(empty_ws, _grids(["A001"]), name="a")
    publish_plan(empty_ws, a, actor="t")
    b = save_draft(empty_ws, _grids(["B001"]), name="b")
    publish_plan(empty_ws, b, actor="t")
    assert plan_info(empty_ws, a)["status"] == "archived"
    assert plan_info(empty_ws, b)["status"] == "published"


def test_resolve_prefers_published_then_latest_draft(empty_ws):
    with pytest.raises(ValidationError, match="还没有任何方案"):
        resolve_plan(empty_ws)
    a = save_draft(empty_ws, _grids(["A001"]), name="a")
    b = save_draft(empty_ws, _grids(["B001"]), name="b")
    assert resolve_plan(empty_ws) == b  # most recently updated draft
    save_draft(empty_ws, _grids(["A002"]), name="a")
    assert resolve_plan(empty_ws) == a
    publish_plan(empty_ws, b, actor="t")
    assert resolve_plan(empty_ws) == b
    assert resolve_plan(empty_ws, "a") == a
    assert resolve_plan(empty_ws, b) == b  # by id as well


def test_resolve_unknown_name_lists_plans(empty_ws):
    save_draft(empty_ws, _grids(["A001"]), name="春季方案")
    with pytest.raises(ValidationError, match="春季方案"):
        resolve_plan(empty_ws, "nope")


def test_update_grids_bumps_revision_and_detects_stale(empty_ws):
    pid = save_draft(empty_ws, _grids(["A001", "A002"]), name="main")
    g = read_grids(empty_ws, pid)
    g["branch_id"] = ["B01", "B02"]
    rev = update_grids(empty_ws, pid, g, actor="t", action="分配", expected_revision=1)
    assert rev == 2 and plan_info(empty_ws, pid)["revision"] == 2
    assert read_grids(empty_ws, pid)["branch_id"].tolist() == ["B01", "B02"]
    ws_rev = empty_ws.revision
    with pytest.raises(StaleRevisionError) as err:
        update_grids(empty_ws, pid, g.iloc[:1], actor="t", action="编辑", expected_revision=1)
    assert (err.value.expected, err.value.actual) == (1, 2)
    assert empty_ws.revision == ws_rev
    assert len(read_grids(empty_ws, pid)) == 2


def test_update_grids_refuses_duplicate_ids_and_unknown_plan(empty_ws):
    pid = save_draft(empty_ws, _grids(["A001", "A002"]), name="main")
    g = _grids(["A001", "A001"])
    with pytest.raises(ValidationError, match="重复"):
        update_grids(empty_ws, pid, g, actor="t", action="编辑")
    with pytest.raises(ValidationError, match="不存在"):
        update_grids(empty_ws, "Pnope", _grids(["A001"]), actor="t", action="编辑")
    assert read_grids(empty_ws, pid)["code"].tolist() == ["A001", "A002"]


def test_projected_grids_are_stored_in_4490(empty_ws):
    g = _grids(["A001"]).to_crs(4549)
    pid = save_draft(empty_ws, g)
    back = read_grids(empty_ws, pid)
    assert back.geometry.iloc[0].equals_exact(shapely.box(*EXTENT), tolerance=1e-7)


def test_rebuilt_draft_bumps_the_versions_of_changed_grids_only(empty_ws):
    from grids.plans import versions

    pid = save_draft(empty_ws, _grids(["A001", "A002"]), name="main")
    assert versions(read_grids(empty_ws, pid)) == {"A001": 0, "A002": 0}
    again = _grids(["A001", "A002", "A003"]).assign(households=[10, 99, 12])
    save_draft(empty_ws, again, name="main")
    assert versions(read_grids(empty_ws, pid)) == {"A001": 0, "A002": 1, "A003": 1}


def test_edit_grid_rows_refuses_stale_touched_rows_only(empty_ws):
    from grids.errors import StaleEditError
    from grids.plans import edit_grid_rows, versions

    pid = save_draft(empty_ws, _grids(["A001", "A002"]), name="main")
    old = versions(read_grids(empty_ws, pid))
    edit_grid_rows(empty_ws, pid, {"A001": {"locked": True}}, seen=old, actor="a", action="锁定")
    edit_grid_rows(empty_ws, pid, {"A002": {"staff_id": "S9"}}, seen=old, actor="b", action="改派")
    with pytest.raises(StaleEditError, match="A001"):
        edit_grid_rows(empty_ws, pid, {"A001": {"staff_id": "S9"}}, seen=old, actor="b", action="改派")
    with pytest.raises(ValidationError, match="只读"):
        edit_grid_rows(empty_ws, pid, {"A001": {"households": 1}}, seen=versions(read_grids(empty_ws, pid)),
                       actor="b", action="改")
    back = read_grids(empty_ws, pid).set_index("grid_id")
    assert back.loc["A001", "staff_id"] != "S9" and back.loc["A002", "staff_id"] == "S9"
