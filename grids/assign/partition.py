"""Balanced, contiguous partition of a small grid graph into k territories (one per customer manager).

Pure numpy/graph code with no geography: :func:`partition` takes neighbour lists, loads and centroids in
metres. Used by :func:`grids.assign.assign_staff` for the grids of one branch at a time.

Algorithm
---------
1. Seeds: locked grids seed their manager's territory; the other territories are seeded by a weighted
   k-means on the grid centroids (deterministic k-means++ start).
2. Seeded region growing: the lightest territory takes the free neighbouring grid closest to its seed, until
   every reachable grid is taken; grids no territory can reach (islands, exclaves) go, one connected cluster
   at a time, to the lightest territory.
3. Local search: move a border grid to a neighbouring territory when that lowers the sum of squared
   deviations from the mean load and leaves the donor in one piece (locked grids never move); when no
   single move helps, ejection chains (heavy → … → light, each territory passing border grids on) and a
   large-neighbourhood move (re-partition a territory together with its neighbours). Small graphs are
   solved from several seedings and the most balanced result is kept.
4. Recombination, when the spread is still above :data:`RECOMBINE_ABOVE`: neighbouring territories (pairs,
   then a territory with all its neighbours) are merged and cut again along random spanning trees ("ReCom"),
   kept when that lowers the sum of squared deviations; then step 3's border moves once more.

In minimal-change mode steps 1–2 start from the current assignment instead, pieces cut off from their
territory are reattached to a neighbour, and step 3 only moves grids while some territory lies outside
``mean·(1 ± tolerance)``, taking the move (or chain) that removes most excess, then the one moving fewest
households. Branches of up to :data:`EXACT_MAX_GRIDS` grids are also solved exactly (MILP with flow
contiguity constraints, HiGHS, 1 s limit) and the exact answer is kept when it moves fewer households.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

if TYPE_CHECKING:
    from grids.assign.graph import SparseMatrix

__all__ = ["EXACT_MAX_GRIDS", "SUBSET_SUM_MAX", "balance_bounds", "partition", "split_suggestions"]

RECOMBINE_ABOVE = 0.09  # spread above which a branch's territories are also recombined (_recombine)
EXACT_MAX_GRIDS = 40  # minimal-change mode: branches up to this many grids are also solved exactly (MILP)
SUBSET_SUM_MAX = 2_000_000  # balance_bounds enumerates subset sums of whole-number loads up to this total


def _subset_sums(w: np.ndarray) -> int | None:
    """Bit set of the sums of all subsets of integer loads (bit ``s`` set ⇔ some subset sums to ``s``);
    ``None`` when the loads are not whole numbers or their total is too large to enumerate."""
    if not len(w) or np.any(w != np.round(w)) or float(w.sum()) > SUBSET_SUM_MAX:
        return None
    bits = 1
    for x in w.astype(np.int64).tolist():
        if x > 0:
            bits |= bits << x
    return bits


def _sum_at_least(bits: int, x: float) -> float:
    """Smallest subset sum ≥ ``x`` (the total is always one)."""
    s = max(0, int(np.ceil(x - 1e-9)))
    rest = bits >> s
    return float(s + (rest & -rest).bit_length() - 1)


def _sum_at_most(bits: int, y: float) -> float:
    """Largest subset sum ≤ ``y`` (0, the empty subset, is always one)."""
    s = int(np.floor(y + 1e-9))
    return float((bits & ((1 << (s + 1)) - 1)).bit_length() - 1) if s >= 0 else 0.0


def balance_bounds(loads: np.ndarray, k: int) -> dict[str, float]:
    """Best spread ``(max−min)/mean`` that indivisible loads allow among ``k`` territories.

    ``lower_bound`` is a proof that no partition does better, contiguous or not; ``heaviest`` and
    ``lightest`` are the two halves of it (the heaviest territory carries at least ``heaviest``, the lightest
    at most ``lightest``). ``lpt`` is what longest-processing-time-first achieves ignoring contiguity — an
    achievable reference, not a bound.

    Proof. Let the loads be ``w₁ ≥ … ≥ wₙ ≥ 0`` with total ``W``, and let any partition into ``k ≥ 2``
    territories (some may be empty) have loads ``L₁ … L_k`` with ``H = max L`` and ``m = min L``.

    1. ``H ≥ W/k`` (the mean) and ``H ≥ w₁`` (the territory holding the largest grid).
    2. Pigeonhole: for every ``j ≥ 1`` with ``j·k + 1 ≤ n``, the ``j·k + 1`` largest grids lie in ``k``
       territories, so one territory holds ``j + 1`` of them and carries at least the ``j + 1`` smallest of
       them, ``w_{jk−j+1} + … + w_{jk+1}``.
    3. Whole grids: ``H`` is the sum of a subset of the loads, so ``H`` is at least the smallest subset sum
       ``≥`` the bound ``H₀`` of 1–2. Call that ``H*`` (``H* = H₀`` when the loads are not whole numbers).
    4. ``m ≤ W/k``; the other ``k − 1`` territories share ``W − H``, so ``m ≤ (W − H)/(k − 1) ≤
       (W − H*)/(k − 1)``; ``m = 0`` when ``n < k`` (a territory is empty). ``m`` is a subset sum too, so it
       is at most the largest subset sum ``≤`` those, ``m*``.
    5. Hence ``H − m ≥ H* − m*`` for every partition, and the spread ``(H − m)/(W/k) ≥ (H* − m*)/(W/k)``. ∎

    Subset sums are enumerated (a bit set) only for whole-number loads totalling at most
    :data:`SUBSET_SUM_MAX`; otherwise step 3 and the last part of step 4 are skipped (the bound stays valid,
    only weaker).

    Examples
    --------
    >>> b = balance_bounds(np.array([50.0, 10, 10, 10, 10, 10]), 2)
    >>> round(b["lower_bound"], 3), round(b["lpt"], 3)
    (0.0, 0.0)
    >>> b = balance_bounds(np.array([60.0, 20, 20]), 2)
    >>> round(b["lower_bound"], 3)
    0.4
    >>> round(balance_bounds(np.full(7, 10.0), 3)["lower_bound"], 4)  # 3 + 2 + 2 grids: 30 vs 20
    0.4286
    >>> round(balance_bounds(np.array([6.0, 4, 4, 4]), 2)["lower_bound"], 3)  # no half of 18: 10 | 8 at best
    0.222
    """
    w = np.sort(np.asarray(loads, dtype=float))[::-1]
    total = float(w.sum())
    if k <= 1 or total <= 0:  # one territory (or nothing to share): every partition has spread 0
        return {"lower_bound": 0.0, "lpt": 0.0, "heaviest": total, "lightest": total}
    n = len(w)
    mean = total / k
    heavy = max(mean, float(w[0]) if n else 0.0)
    j = 1
    while j * k + 1 <= n:  # pigeonhole over the j·k + 1 largest loads
        heavy = max(heavy, float(w[j * k - j: j * k + 1].sum()))
        j += 1
    bits = _subset_sums(w)
    if bits is not None:
        heavy = _sum_at_least(bits, heavy)
    light = 0.0 if n < k else min(mean, max(0.0, (total - heavy) / (k - 1)))
    if bits is not None:
        light = _sum_at_most(bits, light)
    lower = max(0.0, (heavy - light) / mean)
    return {"lower_bound": lower, "lpt": float(np.ptp(_lpt(w, k)) / mean), "heaviest": heavy, "lightest": light}


def _lpt(w: np.ndarray, k: int) -> np.ndarray:
    """Bin loads of longest-processing-time-first: each load, largest first, to the lightest bin."""
    bins = np.zeros(k)
    for x in np.sort(np.asarray(w, dtype=float))[::-1]:
        bins[np.argmin(bins)] += x
    return bins


def _best_bins(w: np.ndarray, k: int, *, starts: int = 4) -> float:
    """Best spread ``ptp/mean`` found for whole loads among ``k`` bins, contiguity aside (a heuristic).

    Greedy starts (largest first, then a few jittered orders) each improved by moves and swaps of loads
    between any two bins that lower the sum of squared deviations, then by moves and swaps between the
    heaviest and the lightest bin that narrow their gap.
    """
    w = np.asarray(w, dtype=float)
    n = len(w)
    mean = w.sum() / k
    if mean <= 0 or k <= 1:
        return 0.0
    rng = np.random.default_rng(0)
    best = np.inf
    for s in range(starts):
        key = w if s == 0 else w * rng.uniform(0.7, 1.3, n)
        bin_of = np.zeros(n, dtype=np.int64)
        bins: np.ndarray = np.zeros(k)
        for i in np.argsort(-key, kind="stable"):
            lightest = int(np.argmin(bins))
            bin_of[i] = lightest
            bins[lightest] += w[i]
        for _ in range(8 * n):  # sum of squares: best single move or swap
            move = 2 * w[:, None] * (bins[None, :] - bins[bin_of][:, None]) + 2 * w[:, None] ** 2
            move[np.arange(n), bin_of] = np.inf
            x = w[:, None] - w[None, :]  # swap i ↔ j: x moves from bin(i) to bin(j)
            swap = 2 * x * (bins[bin_of][None, :] - bins[bin_of][:, None]) + 2 * x**2
            swap[bin_of[:, None] == bin_of[None, :]] = np.inf
            im, jm = np.unravel_index(int(np.argmin(move)), move.shape)
            isw, jsw = np.unravel_index(int(np.argmin(swap)), swap.shape)
            if min(move[im, jm], swap[isw, jsw]) >= -1e-9 * mean**2:
                break
            if move[im, jm] <= swap[isw, jsw]:
                bin_of[im] = jm
            else:
                bin_of[isw], bin_of[jsw] = bin_of[jsw], bin_of[isw]
            bins = np.bincount(bin_of, weights=w, minlength=k)
        for _ in range(4 * n):  # narrow the gap between the heaviest and the lightest bin
            hi, lo = int(np.argmax(bins)), int(np.argmin(bins))
            gap = bins[hi] - bins[lo]
            a, b = np.flatnonzero(bin_of == hi), np.flatnonzero(bin_of == lo)
            d = w[a][:, None] - np.concatenate([w[b], [0.0]])[None, :]
            ok = (d > 1e-9) & (d < gap - 1e-9)
            if gap <= 1e-9 or not ok.any():
                break
            score = np.where(ok, np.abs(gap - 2 * d), np.inf)
            ia, ib = np.unravel_index(int(np.argmin(score)), score.shape)
            new = bins.copy()
            new[hi] -= d[ia, ib]
            new[lo] += d[ia, ib]
            if np.ptp(new) >= np.ptp(bins) - 1e-9:  # a third bin is now the extreme: no progress
                break
            bin_of[a[ia]] = lo
            if ib < len(b):
                bin_of[b[ib]] = hi
            bins = new
        best = min(best, float(np.ptp(bins) / mean))
    return best


def split_suggestions(loads: np.ndarray, k: int, *, target: float = 0.10, max_pieces: int | None = None) -> dict[int, int]:
    """Grids to split, and into how many equal parts, so that ``k`` territories can come within ``target``.

    Greedy: while the best whole-piece balance found (greedy starts improved by moves and swaps, ignoring
    contiguity) is above ``target``, the
    grid with the largest piece is cut into one more part; then each split is undone part by part (smallest
    grid first) while the target stays within reach. The result is a witness: with those splits that balance
    exists (among equal parts, contiguity aside). Empty when no split is needed (or there is nothing to
    share).

    Parameters
    ----------
    loads : array
        Workload of each grid.
    k : int
        Number of territories (customer managers).
    target : float
        The spread ``(max − min)/mean`` to reach.
    max_pieces : int, optional
        Give up (return what was found so far) at this many pieces; default ``len(loads) + 4·k``.

    Returns
    -------
    dict
        Position of the grid in ``loads`` → number of parts (≥ 2), largest grid first.

    Examples
    --------
    >>> split_suggestions(np.array([300.0, 60, 40]), 4)  # 400 among 4: the 300 must become 3 parts
    {0: 3}
    >>> split_suggestions(np.full(8, 10.0), 4)
    {}
    """
    w = np.asarray(loads, dtype=float)
    n = len(w)
    if k <= 1 or n == 0 or w.sum() <= 0:
        return {}
    limit = n + 4 * k if max_pieces is None else max_pieces
    parts = np.ones(n, dtype=np.int64)

    def reaches(p: np.ndarray) -> bool:
        return _best_bins(np.repeat(w / p, p), k) <= target + 1e-9

    while not reaches(parts) and parts.sum() < limit:
        parts[int(np.argmax(w / parts))] += 1
    if reaches(parts):  # prune: fewer parts wherever the target stays within reach
        changed = True
        while changed:
            changed = False
            for i in np.flatnonzero(parts > 1)[np.argsort(w[parts > 1], kind="stable")]:
                parts[i] -= 1
                if reaches(parts):
                    changed = True
                else:
                    parts[i] += 1
    out = np.flatnonzero(parts > 1)
    return {int(i): int(parts[i]) for i in out[np.argsort(-w[out], kind="stable")]}


class _Graph:
    """Neighbour lists of a small undirected graph in CSR form."""

    def __init__(self, adjacency: SparseMatrix) -> None:
        a = sparse.csr_matrix(adjacency)
        self.indptr, self.indices = a.indptr, a.indices
        self.n = a.shape[0]
        self.degree = np.diff(self.indptr)
        coo = a.tocoo()
        self.src, self.dst = coo.row, coo.col

    def nbrs(self, i: int | np.integer) -> np.ndarray:
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    def still_connected_without(self, g: int, labels: np.ndarray) -> bool:
        """Whether the neighbours of ``g`` in its territory stay connected to each other once ``g`` leaves."""
        lab = labels[g]
        same = [int(j) for j in self.nbrs(g) if labels[j] == lab]
        if len(same) <= 1:
            return True
        targets = set(same[1:])
        seen = {g, same[0]}
        queue = deque([same[0]])
        while queue:
            i = queue.popleft()
            for j in self.nbrs(i):
                j = int(j)
                if j not in seen and labels[j] == lab:
                    if j in targets:
                        targets.discard(j)
                        if not targets:
                            return True
                    seen.add(j)
                    queue.append(j)
        return not targets


def _kmeans_seeds(xy: np.ndarray, w: np.ndarray, k: int, candidates: np.ndarray, *, seed: int = 0) -> list[int]:
    """``k`` distinct candidate nodes near the centres of a weighted k-means of ``xy``."""
    if k <= 0 or not len(candidates):
        return []
    pts, wt = xy[candidates], w[candidates] + 1e-6
    rng = np.random.default_rng(seed)
    centres = [pts[int(np.argmax(wt)) if seed == 0 else rng.integers(len(pts))]]
    for _ in range(1, k):  # k-means++ start
        d2 = np.min(((pts[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1) * wt
        if d2.sum() <= 0:
            centres.append(pts[rng.integers(len(pts))])
        else:
            centres.append(pts[rng.choice(len(pts), p=d2 / d2.sum())])
    c = np.asarray(centres, dtype=float)
    lab = np.full(len(pts), -1)
    for _ in range(20):
        new = np.argmin(((pts[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        if (new == lab).all():
            break
        lab = new
        sw = np.bincount(lab, weights=wt, minlength=k)
        sx = np.bincount(lab, weights=wt * pts[:, 0], minlength=k)
        sy = np.bincount(lab, weights=wt * pts[:, 1], minlength=k)
        nz = sw > 0
        c[nz] = np.column_stack([sx, sy])[nz] / sw[nz, None]
    seeds: list[int] = []
    taken = np.zeros(len(candidates), dtype=bool)
    for j in range(k):
        d = ((pts - c[j]) ** 2).sum(-1)
        d[taken] = np.inf
        if np.isinf(d).all():
            break
        i = int(np.argmin(d))
        taken[i] = True
        seeds.append(int(candidates[i]))
    return seeds


def _grow(g: _Graph, labels: np.ndarray, w: np.ndarray, xy: np.ndarray, k: int, fixed: np.ndarray) -> np.ndarray:
    """Region growing from the labelled nodes; the lightest territory grows first."""
    labels = labels.copy()
    load = np.bincount(labels[labels >= 0], weights=w[labels >= 0], minlength=k).astype(float)
    centre = np.zeros((k, 2))
    for r in range(k):
        m = labels == r
        centre[r] = xy[m].mean(0) if m.any() else xy.mean(0)
    frontier: list[set[int]] = [set() for _ in range(k)]
    for node in np.flatnonzero(labels >= 0):
        for j in g.nbrs(node):
            if labels[j] < 0:
                frontier[labels[node]].add(int(j))
    while True:
        active = [r for r in range(k) if frontier[r]]
        if not active:
            break
        r = min(active, key=lambda q: (load[q], q))
        cand = np.fromiter(frontier[r], dtype=np.int64)
        i = int(cand[np.argmin(((xy[cand] - centre[r]) ** 2).sum(-1))])
        labels[i] = r
        load[r] += w[i]
        for f in frontier:
            f.discard(i)
        for j in g.nbrs(i):
            if labels[j] < 0:
                frontier[r].add(int(j))
    # what no territory reached: whole clusters to the lightest territory
    rest = np.flatnonzero(labels < 0)
    if len(rest):
        sub = sparse.csr_matrix((np.ones(len(g.src)), (g.src, g.dst)), shape=(g.n, g.n))[rest][:, rest]
        _, comp = csgraph.connected_components(sub, directed=False)
        for c in np.unique(comp):
            members = rest[comp == c]
            r = int(np.argmin(load))
            labels[members] = r
            load[r] += w[members].sum()
    return labels


def _reattach_pieces(g: _Graph, labels: np.ndarray, w: np.ndarray, k: int, fixed: np.ndarray) -> np.ndarray:
    """Keep the heaviest piece of each territory; give the other pieces to a neighbouring territory."""
    labels = labels.copy()
    adj = sparse.csr_matrix((np.ones(len(g.src)), (g.src, g.dst)), shape=(g.n, g.n))
    for _ in range(g.n + 1):
        comp = _pieces(adj, labels)
        load = np.bincount(labels, weights=w, minlength=k)
        moved = False
        for r in range(k):
            members = np.flatnonzero((labels == r) & (g.degree > 0))
            if not len(members):
                continue
            comps = np.unique(comp[members])
            if len(comps) <= 1:
                continue
            weight = {c: w[members[comp[members] == c]].sum() + 1e-9 * len(members[comp[members] == c])
                      for c in comps}
            main = max(comps, key=lambda c: weight[c])
            for c in comps:
                if c == main:
                    continue
                piece = members[comp[members] == c]
                if fixed[piece].any():
                    continue
                nb = {int(labels[j]) for i in piece for j in g.nbrs(i) if labels[j] != r}
                if not nb:
                    continue
                dest = min(nb, key=lambda q: (load[q], q))
                labels[piece] = dest
                load[dest] += w[piece].sum()
                load[r] -= w[piece].sum()
                moved = True
        if not moved:
            break
    return labels


def _pieces(adj: sparse.csr_matrix, labels: np.ndarray) -> np.ndarray:
    coo = adj.tocoo()
    keep = labels[coo.row] == labels[coo.col]
    sub = sparse.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=adj.shape)
    return csgraph.connected_components(sub, directed=False)[1]


def _seed_empty(g: _Graph, labels: np.ndarray, w: np.ndarray, xy: np.ndarray, k: int,
                fixed: np.ndarray) -> np.ndarray:
    """Give each empty territory one border grid of the heaviest territory (minimal-change mode)."""
    labels = labels.copy()
    for r in range(k):
        if (labels == r).any():
            continue
        load = np.bincount(labels[labels >= 0], weights=w[labels >= 0], minlength=k)
        for donor in np.argsort(-load):
            members = np.flatnonzero((labels == donor) & ~fixed)
            if len(members) <= 1:
                continue
            centre = xy[labels == donor].mean(0)
            order = members[np.argsort(-((xy[members] - centre) ** 2).sum(-1))]
            pick = next((int(i) for i in order if g.still_connected_without(int(i), labels)), None)
            if pick is not None:
                labels[pick] = r
                break
    return labels


def _excess(v: np.ndarray, target: float, tol: float) -> np.ndarray:
    return np.maximum(0.0, np.abs(v - target) - tol)


def _local_search(g: _Graph, labels: np.ndarray, w: np.ndarray, k: int, fixed: np.ndarray, *,
                  band: float | None, max_moves: int, xy: np.ndarray | None = None) -> np.ndarray:
    """Border moves that keep every donor in one piece.

    ``band=None`` minimises the sum of squared deviations from the mean load; a number minimises the total
    excess outside ``mean·(1 ± band)`` (minimal change), preferring the move with the fewest households.
    """
    labels = labels.copy()
    target = w.sum() / k
    free = np.flatnonzero(g.degree == 0)
    for _ in range(max_moves):
        load = np.bincount(labels, weights=w, minlength=k)
        count = np.bincount(labels, minlength=k)
        src, dst = g.src, g.dst
        a, b = labels[src], labels[dst]
        ok = (a != b) & ~fixed[src] & (count[a] > 1)
        gi, ga, gb = src[ok], a[ok], b[ok]
        if len(free):  # islands may join any territory: offer the lightest
            fr = free[~fixed[free] & (count[labels[free]] > 1)]
            gi = np.concatenate([gi, fr])
            ga = np.concatenate([ga, labels[fr]])
            gb = np.concatenate([gb, np.full(len(fr), int(np.argmin(load)))])
            keep = ga != gb
            gi, ga, gb = gi[keep], ga[keep], gb[keep]
        if not len(gi):
            break
        x = w[gi]
        if band is None:
            delta = 2 * x * (load[gb] - load[ga]) + 2 * x * x
            order = np.lexsort((gi, delta))
        else:
            tol = band * target
            delta = (_excess(load[ga] - x, target, tol) + _excess(load[gb] + x, target, tol)
                     - _excess(load[ga], target, tol) - _excess(load[gb], target, tol))
            order = np.lexsort((gi, x, delta))
        eps = 1e-9 * max(target, 1.0) ** (2 if band is None else 1)
        moved = False
        for o in order:
            if delta[o] >= -eps:
                break
            i = int(gi[o])
            if g.degree[i] == 0 or g.still_connected_without(i, labels):
                labels[i] = gb[o]
                moved = True
                break
        if not moved:
            moved = _chain_move(g, labels, w, k, fixed, load, band=band)
        if not moved and band is None and xy is not None:
            moved = _regrow(g, labels, w, xy, k, fixed, load)
        if not moved:
            break
    return labels


def _territory_graph(g: _Graph, labels: np.ndarray, k: int) -> list[set[int]]:
    a, b = labels[g.src], labels[g.dst]
    diff = a != b
    nb: list[set[int]] = [set() for _ in range(k)]
    for x, y in set(zip(a[diff].tolist(), b[diff].tolist(), strict=True)):
        nb[x].add(y)
    return nb


def _path(nb: list[set[int]], start: int, end: int) -> list[int] | None:
    prev = {start: start}
    queue = deque([start])
    while queue:
        r = queue.popleft()
        if r == end:
            out = [end]
            while out[-1] != start:
                out.append(prev[out[-1]])
            return out[::-1]
        for q in nb[r]:
            if q not in prev:
                prev[q] = r
                queue.append(q)
    return None


def _chain_move(g: _Graph, labels: np.ndarray, w: np.ndarray, k: int, fixed: np.ndarray,
                load: np.ndarray, *, band: float | None = None) -> bool:
    """An ejection chain: heavy → … → light, each territory on the way passing border grids on.

    Tried when no single border move helps (the heavy and light territories are not neighbours, or every
    border grid is too big). With ``band=None`` the first chain that lowers the sum of squared deviations is
    taken; with a band, the chain removing most excess outside ``mean·(1 ± band)``, then moving the fewest
    households. Changes ``labels`` in place and returns True when a chain was applied.
    """
    target = w.sum() / k
    slack = 0.0 if band is None else band * target
    nb = _territory_graph(g, labels, k)
    heavy = [int(r) for r in np.argsort(-load) if load[r] > target + slack]
    light = [int(r) for r in np.argsort(load) if load[r] < target - slack]

    def score(v: np.ndarray) -> float:
        if band is None:
            return float(((v - target) ** 2).sum())
        return float(_excess(v, target, slack).sum())

    base = score(load)
    eps = 1e-9 * max(target, 1.0) ** (2 if band is None else 1)
    best: tuple[float, float, np.ndarray] | None = None
    for h in heavy:
        for lo in light:
            path = _path(nb, h, lo)
            if path is None or len(path) < 2:
                continue
            want = load[h] - target - slack
            trial = labels.copy()
            ok = True
            for a, b in itertools.pairwise(path):
                if want <= 0:  # the territory reached so far absorbs the rest
                    break
                passed = _pass_on(g, trial, w, fixed, a, b, want)
                if passed is None:
                    ok = False
                    break
                want = load[b] + passed - target - slack
            if not ok:
                continue
            gain = base - score(np.bincount(trial, weights=w, minlength=k))
            if gain <= eps:
                continue
            if band is None:
                labels[:] = trial
                return True
            moved = float(w[trial != labels].sum())
            if best is None or (gain, -moved) > (best[0], -best[1]):
                best = (gain, moved, trial)
    if best is not None:
        labels[:] = best[2]
        return True
    return False


def _regrow(g: _Graph, labels: np.ndarray, w: np.ndarray, xy: np.ndarray, k: int, fixed: np.ndarray,
            load: np.ndarray) -> bool:
    """Large-neighbourhood move: re-partition a territory together with all its neighbours.

    Tried, most unbalanced territory first, when neither single moves nor chains help (typically a heavy
    territory of big grids surrounded by slightly light ones). The neighbourhood is connected, so its new
    territories are contiguous. Changes ``labels`` in place and returns True when the sum of squared
    deviations drops.
    """
    target = w.sum() / k
    nb = _territory_graph(g, labels, k)
    base = ((load - target) ** 2).sum()
    for h in np.argsort(-np.abs(load - target))[: max(3, k // 4)]:
        group = sorted({int(h), *nb[int(h)]})
        if len(group) < 2:
            continue
        members = np.flatnonzero(np.isin(labels, group))
        local = {r: i for i, r in enumerate(group)}
        sub_fixed = np.array([local[int(labels[i])] if fixed[i] else -1 for i in members])
        keep = np.isin(g.src, members) & np.isin(g.dst, members)
        pos = np.searchsorted(members, g.src[keep]), np.searchsorted(members, g.dst[keep])
        sub = sparse.csr_matrix((np.ones(len(pos[0])), pos), shape=(len(members), len(members)))
        lab = _solve(_Graph(sub), w[members], xy[members], len(group), sub_fixed, deep=False)
        trial = labels.copy()
        trial[members] = np.asarray(group)[lab]
        new = np.bincount(trial, weights=w, minlength=k)
        if ((new - target) ** 2).sum() < base * (1 - 1e-6) - 1e-9:
            labels[:] = trial
            return True
    return False


def _solve(g: _Graph, w: np.ndarray, xy: np.ndarray, k: int, fixed: np.ndarray, *, deep: bool = True) -> np.ndarray:
    """Seeds, region growing and local search from scratch (locked grids kept).

    Small graphs (few grids per territory, where the start matters most) are solved from several seedings
    and the most balanced result is kept.
    """
    locked = fixed >= 0
    candidates = np.flatnonzero(~locked & (g.degree > 0))
    if not len(candidates):
        candidates = np.flatnonzero(~locked)
    starts = int(np.clip(240 // max(len(w), 1), 1, 8)) if deep else 1
    best, best_score = None, np.inf
    target = w.sum() / k
    for seed in range(starts):
        labels = fixed.copy()
        empty = [r for r in range(k) if not (labels == r).any()]
        for r, s in zip(empty, _kmeans_seeds(xy, w, len(empty), candidates, seed=seed), strict=False):
            labels[s] = r
        labels = _grow(g, labels, w, xy, k, locked)
        labels = _local_search(g, labels, w, k, locked, band=None, max_moves=8 * len(w))
        score = ((np.bincount(labels, weights=w, minlength=k) - target) ** 2).sum()
        if score < best_score * (1 - 1e-9):
            best, best_score = labels, score
    assert best is not None  # starts ≥ 1 and every score is finite, so the first start is always kept
    if deep and best_score > 0:  # large-neighbourhood moves on the best start only
        best = _local_search(g, best, w, k, locked, band=None, max_moves=8 * len(w), xy=xy)
        for seed in range(1):  # recombination where border moves leave the branch out of balance
            load = np.bincount(best, weights=w, minlength=k)
            if (load.max() - load.min()) / max(target, 1e-9) <= RECOMBINE_ABOVE:
                break
            best = _recombine(g, best, w, xy, k, locked, seed=seed)
            best = _local_search(g, best, w, k, locked, band=None, max_moves=8 * len(w))
    return best


def _tree_partition(sub: sparse.csr_matrix, w: np.ndarray, xy: np.ndarray, m: int, goal: float,
                    rng: np.random.Generator) -> np.ndarray | None:
    """Cut a connected graph into ``m`` connected parts of about ``goal`` weight each (one random tree).

    Recursive bisection along a random spanning tree (minimum spanning tree of centroid distances times
    random factors, so that parts stay fairly compact): the tree edge whose subtree weighs closest to a
    multiple ``j·goal`` is cut, and the two sides are cut into ``j`` and ``m − j`` parts the same way.
    Returns part numbers ``0 … m−1``, or None when the graph is not connected.
    """
    n = sub.shape[0]
    out = np.zeros(n, dtype=np.int64)
    if m <= 1:
        return out
    coo = sparse.triu(sub, k=1).tocoo()
    if n < m or not len(coo.row):
        return None
    length = np.hypot(*(xy[coo.row] - xy[coo.col]).T) + 1.0
    wt = length * rng.uniform(0.2, 1.8, len(length))
    tree = csgraph.minimum_spanning_tree(sparse.csr_matrix((wt, (coo.row, coo.col)), shape=(n, n)))
    order, parent = csgraph.breadth_first_order(tree, int(rng.integers(n)), directed=False,
                                                return_predecessors=True)
    if len(order) < n:
        return None
    below = w.copy()
    for v in order[:0:-1]:
        below[parent[v]] += below[v]
    cand = order[1:]
    mult = np.clip(np.round(below[cand] / goal), 1, m - 1)
    dev = np.abs(below[cand] - mult * goal) / mult  # per part: a long way off over one part is worse
    o = int(np.argmin(dev))
    cut, j = int(cand[o]), int(mult[o])
    mask = np.zeros(n, dtype=bool)
    mask[cut] = True
    for v in order:  # the cut node's descendants (BFS order: parents first)
        if v != cut and parent[v] >= 0 and mask[parent[v]]:
            mask[v] = True
    for part, parts, offset in ((mask, j, 0), (~mask, m - j, j)):
        idx = np.flatnonzero(part)
        if parts > len(idx):
            return None
        lab = _tree_partition(sub[idx][:, idx], w[idx], xy[idx], parts, goal, rng)
        if lab is None:
            return None
        out[idx] = lab + offset
    return out


def _best_tree_partition(sub: sparse.csr_matrix, w: np.ndarray, xy: np.ndarray, m: int, target: float,
                         rng: np.random.Generator, *, trees: int) -> tuple[float, np.ndarray] | None:
    """The most balanced of ``trees`` random :func:`_tree_partition` cuts: (Σ (load − target)², labels)."""
    goal = w.sum() / m
    best: tuple[float, np.ndarray] | None = None
    for _ in range(trees):
        lab = _tree_partition(sub, w, xy, m, goal, rng)
        if lab is None:
            continue
        score = float(((np.bincount(lab, weights=w, minlength=m) - target) ** 2).sum())
        if best is None or score < best[0]:
            best = (score, lab)
    return best


def _recombine(g: _Graph, labels: np.ndarray, w: np.ndarray, xy: np.ndarray, k: int, locked: np.ndarray,
               *, trees: int = 8, seed: int = 0, stop: float = 0.08) -> np.ndarray:
    """Recombination: merge neighbouring territories and cut them again evenly along random spanning trees.

    Groups are tried most unequal first: every neighbouring pair, then each territory with all its
    neighbours. Their grids are cut into as many connected parts along a random spanning tree
    (:func:`_tree_partition`, the "ReCom" move of redistricting), which reaches splits that moving one
    border grid at a time cannot (a heavy territory behind a narrow neck, a chain of territories). A cut is
    kept when it lowers the sum of squared deviations from the mean load; repeated until no group improves
    or the spread is down to ``stop``.
    Groups holding a locked grid are left alone. Every new territory is connected (a subtree).
    """
    labels = labels.copy()
    rng = np.random.default_rng(seed)
    target = w.sum() / k
    eps = 1e-9 * max(target, 1.0) ** 2
    adj = sparse.csr_matrix((np.ones(len(g.src)), (g.src, g.dst)), shape=(g.n, g.n))
    tried: set[tuple[tuple[int, float], ...]] = set()
    for _ in range(10 * k):
        load = np.bincount(labels, weights=w, minlength=k)
        if (load.max() - load.min()) / max(target, 1e-9) <= stop:
            break
        nb = _territory_graph(g, labels, k)
        dev = (load - target) ** 2
        pairs = sorted({(min(a, b), max(a, b)) for a in range(k) for b in nb[a]},
                       key=lambda p: -abs(load[p[0]] - load[p[1]]))
        groups = [list(p) for p in pairs] + sorted(
            (sorted({r, *nb[r]}) for r in range(k) if len(nb[r]) > 1), key=lambda q: -dev[q].sum())
        improved = False
        for group in groups:
            key = tuple((r, round(load[r], 6)) for r in group)
            if key in tried:
                continue
            tried.add(key)
            members = np.flatnonzero(np.isin(labels, group))
            if locked[members].any():
                continue
            sub = adj[members][:, members]
            if csgraph.connected_components(sub, directed=False)[0] > 1:
                continue
            found = _best_tree_partition(sub, w[members], xy[members], len(group), target, rng, trees=trees)
            if found is None or found[0] >= dev[group].sum() - eps:
                continue
            labels[members] = np.asarray(group)[found[1]]
            improved = True
            break
        if not improved:
            break
    return labels


def _pass_on(g: _Graph, labels: np.ndarray, w: np.ndarray, fixed: np.ndarray, a: int, b: int,
             want: float) -> float | None:
    """Move border grids from territory ``a`` to its neighbour ``b`` until about ``want`` has passed."""
    passed = 0.0
    while want - passed > 0:
        rest = want - passed
        border = np.unique(g.src[(labels[g.src] == a) & (labels[g.dst] == b) & ~fixed[g.src]])
        if not len(border) or (labels == a).sum() <= 1:
            break
        order = border[np.argsort(np.abs(w[border] - rest), kind="stable")]
        pick = next((int(i) for i in order if g.still_connected_without(int(i), labels)), None)
        if pick is None or (passed > 0 and w[pick] - rest > rest):
            break
        labels[pick] = b
        passed += w[pick]
    return passed if passed > 0 else None


def _minimal_change_exact(g: _Graph, w: np.ndarray, k: int, fixed: np.ndarray, current: np.ndarray,
                          tolerance: float, *, time_limit: float = 1.0) -> np.ndarray | None:
    """Fewest households moved with every territory within ``mean·(1 ± tolerance)`` and in one piece (MILP).

    A flow formulation of contiguity (each territory has one root; every other grid of it must receive one
    unit of flow through grids of the same territory); islands need no flow. Solved by HiGHS; ``None`` when
    no such partition exists or none is found within ``time_limit`` seconds.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(w)
    target = w.sum() / k
    ei, ej = g.src, g.dst  # directed edges (both directions)
    m = len(ei)
    nx = n * k

    @overload
    def ix(i: int, j: int) -> int: ...
    @overload
    def ix(i: np.integer, j: int) -> np.integer: ...
    @overload
    def ix(i: int | np.integer | np.ndarray, j: np.ndarray) -> np.ndarray: ...
    @overload
    def ix(i: np.ndarray, j: int | np.integer | np.ndarray) -> np.ndarray: ...
    def ix(i: Any, j: Any) -> Any:  # column of "grid i in territory j" (ints or arrays of them)
        return i * k + j

    off_r, off_f = nx, 2 * nx
    nv = 2 * nx + m * k
    big = float(n)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []
    r = 0

    def add(c: np.ndarray, v: np.ndarray, lower: float, upper: float) -> None:
        nonlocal r
        rows.append(np.full(len(c), r))
        cols.append(np.asarray(c))
        vals.append(np.asarray(v, dtype=float))
        lo.append(lower)
        hi.append(upper)
        r += 1

    jj = np.arange(k)
    for i in range(n):  # one territory each
        add(ix(i, jj), np.ones(k), 1, 1)
    for j in range(k):  # band, one root
        add(ix(np.arange(n), j), w, target * (1 - tolerance), target * (1 + tolerance))
        add(off_r + ix(np.arange(n), j), np.ones(n), 1, 1)
    for i in range(n):
        for j in range(k):
            add(np.array([off_r + ix(i, j), ix(i, j)]), np.array([1.0, -1.0]), -np.inf, 0)  # root in territory
    for j in range(k):
        fcol = off_f + np.arange(m) * k + j
        for e in range(m):  # flow only between grids of territory j
            add(np.array([fcol[e], ix(ei[e], j)]), np.array([1.0, -big]), -np.inf, 0)
            add(np.array([fcol[e], ix(ej[e], j)]), np.array([1.0, -big]), -np.inf, 0)
        for node in np.flatnonzero(g.degree > 0):  # inflow − outflow ≥ x − n·root
            into, out = fcol[ej == node], fcol[ei == node]
            add(np.concatenate([into, out, [ix(node, j), off_r + ix(node, j)]]),
                np.concatenate([np.ones(len(into)), -np.ones(len(out)), [-1.0, big]]), 0, np.inf)
    a = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, nv))
    c = np.zeros(nv)
    has = current >= 0
    c[ix(np.flatnonzero(has), current[has])] = -(w[has] + 1e-6)  # keep as many households as possible
    lb, ub = np.zeros(nv), np.concatenate([np.ones(2 * nx), np.full(m * k, big)])
    lk = np.flatnonzero(fixed >= 0)
    lb[ix(lk, fixed[lk])] = 1
    integrality = np.concatenate([np.ones(2 * nx), np.zeros(m * k)])
    res = milp(c, constraints=LinearConstraint(a, lo, hi), integrality=integrality, bounds=Bounds(lb, ub),
               options={"time_limit": time_limit, "disp": False})
    if res.x is None:
        return None
    labels: np.ndarray = np.argmax(res.x[:nx].reshape(n, k), axis=1)
    return labels


def partition(adjacency: SparseMatrix, weights: np.ndarray, xy: np.ndarray, k: int, *,
              fixed: np.ndarray | None = None, current: np.ndarray | None = None,
              minimal_change: bool = False, tolerance: float = 0.05) -> np.ndarray:
    """Split a graph into ``k`` contiguous territories of balanced weight.

    Parameters
    ----------
    adjacency : sparse matrix
        ``n × n`` symmetric adjacency of the grids (shared edges).
    weights : array
        Workload of each grid (households by default).
    xy : array
        ``n × 2`` centroids in metres (compactness: territories grow around their seed).
    k : int
        Number of territories (customer managers).
    fixed : array of int, optional
        Territory of each locked grid, ``-1`` for grids free to move.
    current : array of int, optional
        Current territory of each grid (``-1`` when none); the start of ``minimal_change`` mode.
    minimal_change : bool
        Rebalance from ``current`` moving as few households as possible, only while a territory is outside
        ``mean·(1 ± tolerance)``.

    Returns
    -------
    numpy.ndarray
        Territory number ``0 … k−1`` of every grid.

    Examples
    --------
    >>> from scipy import sparse
    >>> line = sparse.diags([np.ones(5), np.ones(5)], [-1, 1], shape=(6, 6))
    >>> xy = np.column_stack([np.arange(6) * 1000.0, np.zeros(6)])
    >>> partition(line, np.full(6, 10.0), xy, 2).tolist() in ([0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0])
    True
    """
    n = len(weights)
    w = np.asarray(weights, dtype=float)
    xy = np.asarray(xy, dtype=float)
    fixed = np.full(n, -1) if fixed is None else np.asarray(fixed, dtype=np.int64)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    g = _Graph(adjacency)
    locked = fixed >= 0
    if minimal_change and current is not None:
        labels = np.where(locked, fixed, np.asarray(current, dtype=np.int64))
        labels = np.where((labels >= 0) & (labels < k), labels, -1)
        if (labels < 0).all():
            minimal_change = False
    else:
        minimal_change = False
    if not minimal_change:
        return _solve(g, w, xy, k, fixed)
    start = labels
    labels = _grow(g, labels, w, xy, k, locked)
    labels = _reattach_pieces(g, labels, w, k, locked)
    labels = _seed_empty(g, labels, w, xy, k, locked)
    greedy = _local_search(g, labels, w, k, locked, band=tolerance, max_moves=4 * n)
    moved = w[greedy != start].sum()
    if moved > 0 and n <= EXACT_MAX_GRIDS:
        exact = _minimal_change_exact(g, w, k, fixed, start, tolerance)
        if exact is not None and w[exact != start].sum() < moved:
            return exact
    return greedy
