"""Tampered clients: widget state a modified browser could send is refused by the library, shown as an error,
changes nothing and is audited as refused (harness in tests/forged.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests import forged
from tests.forged import B1, CC, PLANNER, S1, T2, Forgery

FORGERIES = [
    Forgery("staffing: staff of another branch", "pages/staffing.py", B1, forged.staffing_other_branch_staff,
            "不能负责网格"),
    Forgery("staffing: disabled grid_id column", "pages/staffing.py", B1, forged.staffing_disabled_column, "只读"),
    Forgery("staffing: disabled households column", "pages/staffing.py", B1, forged.staffing_households_column,
            "只读"),
    Forgery("staffing: added row", "pages/staffing.py", B1, forged.staffing_added_row, "新增行"),
    Forgery("staffing: stale balance preview", "pages/staffing.py", B1, forged.staffing_stale_preview,
            "数据已被他人修改，请刷新后重做"),
    Forgery("staffing: newcomer under a taken id", "pages/staffing.py", B1, forged.staffing_newcomer_taken_id,
            "已存在"),
    Forgery("staffing: stale leave preview", "pages/staffing.py", B1, forged.staffing_stale_leave,
            "数据已被他人修改"),
    Forgery("rating: household of another branch", "pages/rating.py", B1, forged.rating_other_village, "只能修改"),
    Forgery("rating: added row", "pages/rating.py", B1, forged.rating_added_row, "只能修改"),
    Forgery("rating: amount over the product band", "pages/rating.py", B1, forged.rating_over_limit, "不在 福农卡"),
    Forgery("rating: disabled product column", "pages/rating.py", B1, forged.rating_disabled_product, "只能修改"),
    Forgery("rating session: read-only household id", "pages/rating.py", B1, forged.session_other_household,
            "不能修改"),
    Forgery("rating session: added row", "pages/rating.py", B1, forged.session_added_row, "不能新增或删除行"),
    Forgery("review: decision already decided", "pages/review.py", CC, forged.review_decided_id, "已处理"),
    Forgery("planning: stale draft edit", "pages/planning.py", PLANNER, forged.planning_stale_edit,
            "数据已被他人修改，请刷新后重做"),
    Forgery("workbench: stale visit", "pages/workbench.py", S1, forged.workbench_stale_visit,
            "数据已被他人修改，请刷新后重做"),
    Forgery("workbench: stale survey", "pages/workbench.py", S1, forged.workbench_stale_survey, "数据已被他人修改"),
    Forgery("teller: household not found by look-up", "pages/teller.py", T2, forged.teller_forged_household,
            "刚按卡号或身份证号查询到的客户"),
    Forgery("teller: sign a household of another branch", "pages/teller.py", B1, forged.teller_sign_other_branch,
            "本网点"),
]


@pytest.fixture
def path(tmp_path, monkeypatch):
    p = forged.forged_workspace(tmp_path / "ws.gpkg")
    forged.with_draft(p)
    monkeypatch.setenv("GRIDS_WORKSPACE", str(p))
    return p


@pytest.mark.parametrize("forgery", FORGERIES, ids=lambda f: f.name)
def test_forged_state_is_refused(forgery, path):
    out = forged.run_forgery(forgery, path)
    assert not out.at.exception, out.at.exception
    assert any(forgery.expect in e for e in out.errors), out.errors
    assert out.unchanged(), "a refused intent changed the workspace"
    assert len(out.refused) == 1 and out.refused["actor"].iloc[0] == forgery.account.username
    assert forgery.expect in out.detail()[0]["reason"]


def test_forged_select_box_value_never_reaches_a_write(path):
    """改派给 sent as S2 (B2's staff, not an option): Streamlit resets it to an option, nothing is written
    (and were it to pass, ScopedWorkspace.assign_grids refuses it: tests/test_intents.py)."""
    before = forged.stored(path)
    at = forged.open_page("pages/staffing.py", B1)
    at = forged.staffing_reassign_select(at, path)
    assert not at.exception, at.exception
    assert at.session_state["staffing.reassign_to"] in {"S1", "S3"}
    assert forged.stored(path)["grids"].equals(before["grids"])
    assert not at.success


# -- item 5: a file with full ID numbers exists only after an explicit, audited click ----------------------

FULL_ID = "150422198001010000"  # H0 of 甲村, granted: on the whitelist


@pytest.fixture
def media(monkeypatch):
    """Every file Streamlit places at a /media URL during the test (its bytes)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    placed: list[bytes] = []
    real = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes | bytearray):
            placed.append(bytes(path_or_data))
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return placed


def _exports(path) -> int:
    from grids.workspace import GpkgWorkspace

    return int((GpkgWorkspace(path).read("audit")["action"] == "导出（含明文个人信息）").sum())


def _has_full_id(blob: bytes) -> bool:
    import io
    import zipfile

    if blob[:2] == b"PK":  # xlsx: look inside the shared strings
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            return any(FULL_ID.encode() in z.read(n) for n in z.namelist())
    return FULL_ID.encode() in blob


def test_unmasked_whitelist_is_made_only_after_the_click_and_audited_first(path, media):
    at = forged.open_page("pages/rating.py", B1)
    at.session_state["app.unmask"] = True
    at.run()
    assert not at.exception, at.exception
    assert FULL_ID in at.dataframe[-1].value.to_csv()  # shown on screen (an audited view)
    labels = {d.label for d in at.get("download_button")}
    assert {"下载白名单（Excel）", "下载白名单（CSV）"} <= labels and not any("明文" in x for x in labels)  # masked only
    assert labels - {"下载白名单（Excel）", "下载白名单（CSV）"} == {"下载评定表模板（Excel）"}  # no ID numbers in it
    assert media and not any(_has_full_id(b) for b in media), "a full ID number was placed at a /media URL"
    assert _exports(path) == 0
    at.session_state["app.unmask"] = True  # the sidebar tick (app.py's widget; AppTest runs the page alone)
    at.button(key="rating.make_unmasked_csv").click().run()
    assert not at.exception, at.exception
    assert _exports(path) == 1
    assert "下载明文白名单（CSV）" in {d.label for d in at.get("download_button")}
    assert any(_has_full_id(b) for b in media)
    at.run()  # any later run: the file was handed over once and is no longer offered (nor kept at /media)
    assert "下载明文白名单（CSV）" not in {d.label for d in at.get("download_button")}
    assert _exports(path) == 1


# -- item 3: a pending table edit cannot be redirected by a concurrent save that reorders rows -------------


def test_a_pending_staffing_edit_stays_on_its_grid_when_rows_move(path):
    import geopandas as gpd
    import shapely

    from grids import plans
    from grids.workspace import GpkgWorkspace

    at = forged.open_page("pages/staffing.py", B1)
    row = forged.editor_row(at, "staffing.editor", "grid_id", "G1")
    forged.forge_editor(at, "staffing.editor", edited_rows={row: {"staff_id": "S3"}})  # b1's pending edit
    # meanwhile a save puts a new grid G0 of B1 before G1 and stores the rows in reverse order
    ws = GpkgWorkspace(path)
    g = plans.read_grids(ws, "P1")
    g0 = gpd.GeoDataFrame({"grid_id": ["G0"], "code": ["W0"], "name": ["新网格"], "branch_id": ["B1"],
                           "staff_id": ["S1"], "households": [0]}, geometry=[shapely.box(119.2, 43.9, 119.3, 44.0)],
                          crs=4490)
    plans.update_grids(ws, "P1", pd.concat([g0, g.iloc[::-1]], ignore_index=True), actor="planner", action="插入")
    at.run()
    at = forged.click(at, "staffing.save_table")
    assert not at.exception and not at.error, [e.value for e in at.error]
    staff = plans.read_grids(ws, "P1").set_index("grid_id")["staff_id"].to_dict()
    assert staff == {"G0": "S1", "G1": "S3", "G2": "S1", "G3": "S2"}


def test_a_forged_visit_for_a_household_of_another_branch_is_never_written(path):
    """s1 sends the visit form with H6 (B2's household) as the household: Streamlit resets a value that is
    not an option, and the library would refuse it anyway (tests/test_intents.py)."""
    from grids.workspace import GpkgWorkspace

    at = forged.open_page("pages/workbench.py", S1)
    forged.forge_select(at, "workbench.visit_hh", "H6")
    next(b for b in at.button if b.label == "记录走访").click()
    at.run()
    assert not at.exception, at.exception
    visits = GpkgWorkspace(path).read("visits")
    assert visits[visits["staff_id"] == "S1"]["hh_id"].isin(["H6"]).sum() == 0
