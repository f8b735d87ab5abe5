"""balance_bounds (a proven lower bound on the staff spread with whole grids) and split_suggestions, against
brute force over every assignment of small random instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from grids.assign.partition import balance_bounds, split_suggestions


def brute_force(w: np.ndarray, k: int) -> tuple[float, float, float]:
    """Over every assignment of the loads to k territories: (best spread, least max load, largest min load)."""
    every = np.array(list(itertools.product(range(k), repeat=len(w))), dtype=np.int64).reshape(-1, len(w))
    loads = np.stack([(every == j) @ w for j in range(k)], axis=1)  # one row per assignment
    return float(np.ptp(loads, axis=1).min()) / (w.sum() / k), float(loads.max(1).min()), float(loads.min(1).max())


def random_instances(seed: int, count: int, *, whole: bool):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        k = int(rng.integers(2, 4))
        n = int(rng.integers(1, 8 if k == 2 else 7))
        w = rng.integers(0, 40, n).astype(float) if whole else rng.uniform(0, 40, n).round(2)
        if rng.random() < 0.3:  # coarse: one grid much larger than the rest
            w[0] *= 6
        if w.sum() > 0:
            yield w, k


@pytest.mark.parametrize("whole", [True, False], ids=["whole-number loads", "fractional loads"])
def test_bound_never_exceeds_the_brute_force_optimum_and_lpt_never_beats_it(whole):
    tight = count = 0
    for w, k in random_instances(13 if whole else 14, 150, whole=whole):
        b = balance_bounds(w, k)
        best, least_max, most_min = brute_force(w, k)
        assert b["lower_bound"] <= best + 1e-9, (w, k, b, best)
        assert b["heaviest"] <= least_max + 1e-9 and b["lightest"] >= most_min - 1e-9, (w, k, b)
        assert b["lpt"] >= best - 1e-9  # LPT is an assignment: it cannot beat the optimum
        tight += abs(b["lower_bound"] - best) < 1e-9
        count += 1
    # and it is often exact (not a vacuous 0.0): with whole-number loads (households) the subset sums make it
    # exact on most instances, with fractional workloads on a good share
    assert tight >= (0.8 if whole else 0.4) * count


def test_subset_sums_prove_a_spread_where_the_partition_bound_said_zero():
    # 6 + 4 + 4 + 4 = 18 among 2: no subset sums to 9, so the best is 10 | 8 — mean and pigeonhole alone give 0
    w = np.array([6.0, 4, 4, 4])
    b = balance_bounds(w, 2)
    assert b["heaviest"] == 10 and b["lightest"] == 8
    assert b["lower_bound"] == pytest.approx(2 / 9) == pytest.approx(brute_force(w, 2)[0])


def test_coarse_branch_bound_comes_from_the_largest_grid():
    # 300 + 60 + 40 among 4 staff: someone carries the 300, someone gets nothing (3 grids, 4 staff)
    b = balance_bounds(np.array([300.0, 60, 40]), 4)
    assert b["heaviest"] == 300 and b["lightest"] == 0
    assert b["lower_bound"] == pytest.approx(3.0)
    # with 6 grids among 4 the lightest carries at most (W − 300) / 3
    b = balance_bounds(np.array([300.0, 60, 40, 30, 20, 10]), 4)
    assert b["lower_bound"] == pytest.approx((300 - 50) / 115)


def _reaches(pieces: np.ndarray, k: int, target: float) -> bool:
    return brute_force(pieces, k)[0] <= target + 1e-9


@pytest.mark.parametrize("target", [0.10, 0.25])
def test_split_suggestions_are_a_witness_and_empty_only_when_whole_grids_suffice(target):
    checked = 0
    for w, k in random_instances(21, 80, whole=True):
        splits = split_suggestions(w, k, target=target)
        parts = np.ones(len(w), dtype=np.int64)
        for i, p in splits.items():
            assert p >= 2
            parts[i] = p
        pieces = np.repeat(w / parts, parts)
        if k ** len(pieces) > 200_000:
            continue
        checked += 1
        if splits:  # the splits make the target reachable, and were needed: whole grids cannot
            assert _reaches(pieces, k, target), (w, k, splits)
            assert list(splits) == sorted(splits, key=lambda i: -w[i])
        else:
            assert _reaches(w, k, target), (w, k)
    assert checked >= 40


def test_split_suggestions_cut_the_grid_that_blocks_balance():
    assert split_suggestions(np.array([300.0, 60, 40]), 4) == {0: 3}  # 100 | 100 | 100 | 60 + 40
    assert split_suggestions(np.full(8, 10.0), 4) == {}
    assert split_suggestions(np.array([50.0]), 1) == {}
