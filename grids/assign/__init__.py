"""Assignment of grids to branches and customer managers (the ``grids.assign`` subpackage).

* :mod:`grids.assign.core` — grids → branches (nearest, capacity-aware, contiguous), grids → staff (balanced,
  contiguous), the whole plan and the least-change what-if;
* :mod:`grids.assign.graph` — grid adjacency and road distances over streets and ferries;
* :mod:`grids.assign.partition` — contiguous balanced partitions of one branch's grids and their proven bounds;
* :mod:`grids.assign.metrics` — workload, distance, compactness metrics and balance warnings.

The public names of :mod:`grids.assign.core` are re-exported here (``from grids.assign import assign_plan``).
Synthetic test counties live in :mod:`geodata.synthetic`.
"""

from __future__ import annotations

from grids.assign.core import (
    ASSIGN_BY_KEY,
    BY,
    CAPACITY_LIMIT,
    CROSSING_PENALTY_M,
    DETOUR_CAP,
    AssignmentResult,
    WhatIfResult,
    assign_branches,
    assign_plan,
    assign_staff,
    assignable_staff,
    branch_capacity,
    branch_distances,
    default_by,
    default_new_branch_staff,
    grid_workload,
    landmass_numbers,
    what_if,
)

__all__ = [
    "ASSIGN_BY_KEY",
    "BY",
    "CAPACITY_LIMIT",
    "CROSSING_PENALTY_M",
    "DETOUR_CAP",
    "AssignmentResult",
    "WhatIfResult",
    "assign_branches",
    "assign_plan",
    "assign_staff",
    "assignable_staff",
    "branch_capacity",
    "branch_distances",
    "default_by",
    "default_new_branch_staff",
    "grid_workload",
    "landmass_numbers",
    "what_if",
]
