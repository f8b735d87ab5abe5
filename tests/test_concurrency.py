"""Revisions under concurrency and crash safety: no lost edit, no torn write (both backends for the edits).

Two processes make 200 edits each to one plan, each edit saved against the revision it read (retrying on
StaleRevisionError, as the app does after reloading); a process killed with SIGKILL in the middle of a save
leaves a workspace that opens, passes SQLite's integrity check and holds either the old or the new state.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import geopandas as gpd
import pytest
import shapely

from grids.check import COVERAGE_KINDS, check_plan
from grids.errors import StaleRevisionError
from grids.plans import plan_info, read_grids, save_draft, update_grids
from grids.workspace import GpkgWorkspace, open_workspace

EDITS = 200


def _lattice(n: int) -> gpd.GeoDataFrame:
    cells = [shapely.box(119 + 0.01 * (i % 50), 43 + 0.01 * (i // 50), 119.01 + 0.01 * (i % 50),
                         43.01 + 0.01 * (i // 50)) for i in range(n)]
    return gpd.GeoDataFrame({"code": [f"150422100{200 + i // 10:03d}{i % 10:03d}" for i in range(n)],
                             "kind": "rural", "households": 0}, geometry=cells, crs=4490)


def _editor(target: str, plan_id: str, grid_index: int, stale_counter) -> None:
    ws = open_workspace(target)
    done = 0
    while done < EDITS:
        rev = plan_info(ws, plan_id)["revision"]
        grids = read_grids(ws, plan_id)
        grids.loc[grid_index, "households"] = int(grids.loc[grid_index, "households"]) + 1
        try:
            update_grids(ws, plan_id, grids, actor=f"editor{grid_index}", action="编辑", expected_revision=rev)
            done += 1
        except StaleRevisionError:
            with stale_counter.get_lock():
                stale_counter.value += 1


@pytest.mark.slow
def test_two_processes_200_edits_each_lose_none(any_ws):
    ws = any_ws
    plan_id = save_draft(ws, _lattice(12), name="main")
    ctx = mp.get_context("spawn")
    stale = ctx.Value("i", 0)
    procs = [ctx.Process(target=_editor, args=(ws.target, plan_id, i, stale)) for i in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    grids = read_grids(ws, plan_id)
    assert grids.loc[0, "households"] == EDITS and grids.loc[1, "households"] == EDITS
    assert plan_info(ws, plan_id)["revision"] == 1 + 2 * EDITS
    audit = ws.read("audit")
    assert (audit["action"] == "编辑").sum() == 2 * EDITS
    # the two editors really did collide, and every collision was refused rather than overwriting
    assert stale.value > 0


def _saver(path: str, plan_id: str) -> None:
    ws = GpkgWorkspace(path)
    big = _lattice(4000)
    while True:
        rev = plan_info(ws, plan_id)["revision"]
        big["households"] = rev + 1  # each save stamps the revision it creates on every grid
        update_grids(ws, plan_id, big, actor="saver", action="保存", expected_revision=rev)


def test_sigkill_during_save_leaves_a_sound_workspace(tmp_path):
    ws = GpkgWorkspace.create(tmp_path / "ws.gpkg", county_code="150422", county_name="巴林左旗")
    plan_id = save_draft(ws, _lattice(4000).assign(households=1), name="main")
    ctx = mp.get_context("spawn")
    for delay in (0.05, 0.25, 0.45):
        proc = ctx.Process(target=_saver, args=(str(ws.path), plan_id))
        before = plan_info(ws, plan_id)["revision"]
        proc.start()
        deadline = time.monotonic() + 120
        while plan_info(ws, plan_id)["revision"] == before and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until this saver has committed once: it is now saving in a loop
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL
        reopened = GpkgWorkspace(ws.path)
        assert reopened.integrity_check() == "ok"
        grids = read_grids(reopened, plan_id)
        # never a torn write: all 4000 grids, all from the same save
        assert len(grids) == 4000 and grids["households"].nunique() == 1
        assert plan_info(reopened, plan_id)["revision"] == int(grids["households"].iloc[0])
        # and our own check finds the plan whole: no gap, overlap, invalid or stray grid
        town = gpd.GeoDataFrame({"code": ["150422100"], "level": ["town"]},
                                geometry=[shapely.union_all(_lattice(4000).geometry.values)], crs=4490)
        problems = check_plan(grids, admin_units=town)
        assert not problems["kind"].isin(COVERAGE_KINDS).any(), problems["kind"].value_counts().to_dict()
    assert plan_info(reopened, plan_id)["revision"] > 1  # the savers did commit between the kills
