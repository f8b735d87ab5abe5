"""What can be imported, how, and the types the import steps share.

The import targets (:data:`IMPORTABLE_LAYERS`), write modes (:data:`MODES`), declared datums (:data:`COORDS`)
and the index name of a read table (:data:`ROW_INDEX`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from grids.errors import ValidationError
from grids.model import LAYERS, Layer

ObjectArray = npt.NDArray[np.object_]
"""Geometries (or ``None``) or cells, one per row."""
BoolArray = npt.NDArray[np.bool_]
"""A row mask."""
IntArray = npt.NDArray[np.int64]
"""Row numbers as the user sees them."""
RowProblem = tuple[int, str, str, str]
"""(row or position, column label, reason, fix) of one problem found in a row."""


ROW_INDEX = "row"
"""Name of the index :func:`read_table` gives its result: the row number as the user sees it."""


COORDS: dict[str, str] = {"wgs84": "WGS84", "cgcs2000": "CGCS2000", "gcj02": "GCJ-02（高德/腾讯）"}


IMPORTABLE_LAYERS: tuple[str, ...] = (
    "admin_units", "urban_areas", "streets", "branches", "staff", "households", "visits", "villages", "loan_totals",
)
"""Import targets: workspace layers, and ``villages`` (村委会 points → ``seats`` and derived village territories,
:mod:`grids.villages`)."""


DEFAULT_MODE: dict[str, str] = {"households": "append", "visits": "append", "loan_totals": "append"}


KEYED_APPEND: tuple[str, ...] = ("loan_totals",)
"""Layers whose append replaces the stored rows of the same key (loan totals: the same month, branch and
product, :func:`grids.loans.write_rows`) instead of refusing them."""


MODES: dict[str, str] = {"append": "追加", "replace": "替换", "update": "更新"}
"""Write modes: ``update`` changes existing households by 户号 (only the cells the file fills)."""


UPDATE_LAYERS: tuple[str, ...] = ("households",)
"""Layers that ``mode='update'`` applies to."""


ID_COLUMNS: tuple[str, ...] = ("hh_id", "branch_id", "staff_id", "code", "parent_code", "village_code",
                               "group_code", "town_code", "id_no", "phone")
"""Identifiers, codes and numbers: stored normalised (:func:`grids.text.normalize_id`), and refused when a
spreadsheet kept them as a number that lost digits (:func:`grids._validate.number_as_id`)."""


def layer_schema(target_layer: str) -> Layer:
    """The schema of an importable workspace layer; :class:`ValidationError` for any other target."""
    if target_layer not in IMPORTABLE_LAYERS:
        raise ValidationError(f"不能导入到图层 “{target_layer}”", fix=f"可导入的图层：{'、'.join(IMPORTABLE_LAYERS)}")
    return LAYERS[target_layer]
