"""Per-layer row checks: one function per importable layer, each turning the recognised text columns into the
layer's typed columns and recording every bad cell in the :class:`~grids.ingest.context.Problems`."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from grids.ingest.context import Context, Problems
from grids.ingest.layers.admin_units import check_admin_units
from grids.ingest.layers.branches import check_branches
from grids.ingest.layers.households import check_households
from grids.ingest.layers.other import check_loan_totals, check_plain
from grids.ingest.layers.staff import check_staff
from grids.ingest.layers.visits import check_visits
from grids.ingest.schema import ObjectArray

LayerCheck = Callable[[pd.DataFrame, ObjectArray, Problems, Context], pd.DataFrame]
"""``(data, geoms, problems, ctx) -> typed columns``: the recognised text columns of a file in, the layer's
typed columns out (same index); problems recorded by row position."""

CHECKS: dict[str, LayerCheck] = {
    "households": check_households,
    "admin_units": check_admin_units,
    "branches": check_branches,
    "staff": check_staff,
    "visits": check_visits,
    "streets": check_plain,
    "urban_areas": check_plain,
    "loan_totals": check_loan_totals,
}
"""The check of each importable layer (``villages`` goes to :func:`grids.villages.validate_villages`)."""
