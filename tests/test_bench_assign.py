"""benchmarks/bench_assign.py: ours against CBC's exact capacitated assignment (quick mode), and the CBC
wrapper on an instance whose answer is known by hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_assign", ROOT / "benchmarks" / "bench_assign.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_cbc_wrapper_reports_solution_bound_and_loads(bench):
    # 3 grids, 2 branches; branch 0 is nearest to all, but holds only 10 households: grid 2 (10) stays,
    # grids 0 and 1 must go to branch 1 — cost 5 + 6 + 1 = 12
    cost = np.array([[1.0, 5.0], [2.0, 6.0], [1.0, 9.0]])
    load = np.array([10.0, 10.0, 10.0])
    got = bench.cbc_assignment(cost, load, np.array([10.0, 30.0]), time_limit=10)
    assert got["status"].startswith("Optimal")
    assert got["objective"] == pytest.approx(12) and got["bound"] == pytest.approx(12)
    assert got["loads"].tolist() == [10.0, 20.0]
    infeasible = bench.cbc_assignment(cost, load, np.array([10.0, 10.0]), time_limit=10)
    assert infeasible["objective"] is None and infeasible["loads"] is None


def test_quick_bench_json_shape_and_ours_never_beats_the_lower_bound(bench):
    out = json.loads(json.dumps(bench.bench_vs_cbc(quick=True)))  # JSON-ready
    (inst,) = out["instances"]
    assert inst["grids"] == 80 and inst["branches"] == 6
    for by in ("straight", "road"):
        r = inst[by]
        assert set(r) >= {"ours", "cbc", "gap_to_bound_pct", "gap_to_best_pct", "time_ratio_ours_to_cbc"}
        ours, cbc = r["ours"], r["cbc"]
        assert cbc["best_bound"] is not None and cbc["best_solution"] is not None
        assert cbc["best_bound"] <= cbc["best_solution"] + 0.1
        assert cbc["max_load_per_capacity"] <= bench.CBC_CAPACITY + 1e-9  # CBC keeps the capacity (hard)
        # ours keeps it too, so CBC's bound is a lower bound for ours: the gap cannot be negative
        assert ours["branches_over_limit"] == 0 and ours["max_load_per_capacity"] <= bench.CBC_CAPACITY + 1e-9
        assert ours["cost_household_km"] >= cbc["best_bound"] - 0.1
        assert r["gap_to_bound_pct"] >= -1e-3
        assert r["time_ratio_ours_to_cbc"] > 0 and ours["seconds"] > 0
        # the like-for-like bound (the capacity ours used) is valid for ours in any case
        same = r["cbc_at_ours_capacity"]
        assert ours["cost_household_km"] >= same["best_bound"] - 0.1
        if same["status"].startswith("Optimal") and cbc["status"].startswith("Optimal"):
            # ours kept ≤ 1.10: the like-for-like limit is tighter, its optimum higher, our gap to it smaller
            assert r["gap_to_bound_at_ours_capacity_pct"] <= r["gap_to_bound_pct"] + 1e-3
    assert [(row["instance"], row["by"]) for row in out["table"]] == [(inst["name"], "straight"), (inst["name"], "road")]
