"""What validating one file collects (:class:`Problems`) and looks up in the workspace (:class:`Context`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd

from grids import names as N
from grids.ingest.columns import LABELS
from grids.text import normalize_id
from grids.workspace import Workspace


class Problems:
    """Collects (position, column, reason, fix) for rows of one file."""

    def __init__(self, rows: np.ndarray, labels: Mapping[str, str]) -> None:
        self.n = len(rows)
        self.rows = rows
        self.labels = labels
        self.items: list[tuple[int, str, str, str]] = []

    def add(self, mask: pd.Series | np.ndarray, column: str, reason: str, fix: str) -> None:
        """Record a problem in ``column`` for every row where ``mask`` holds."""
        label = self.labels.get(column, LABELS.get(column, column))
        for pos in np.flatnonzero(np.asarray(mask, dtype=bool)):
            self.items.append((int(pos), label, reason, fix))

    def add_one(self, pos: int, column_label: str, reason: str, fix: str) -> None:
        """Record a problem of the row at position ``pos``, ``column_label`` as the user sees it."""
        self.items.append((pos, column_label, reason, fix))

    def add_at(self, pos: int, column: str, reason: str, fix: str) -> None:
        """Record a problem in ``column`` of the row at position ``pos``."""
        self.items.append((pos, self.labels.get(column, LABELS.get(column, column)), reason, fix))

    def rejected(self) -> np.ndarray:
        """Mask of the rows with at least one problem."""
        out = np.zeros(self.n, dtype=bool)
        for pos, *_ in self.items:
            out[pos] = True
        return out


@dataclass
class Context:
    """What the layer checks of one file share: the workspace (read lazily, once), mode, warnings, name matching."""
    workspace: Workspace | None
    mode: str
    warnings: list[str]
    lost: dict[str, pd.Series] = field(default_factory=dict)
    town: str | None = None
    legacy: bool = False
    extra_aliases: pd.DataFrame | None = None
    name_issues: list[dict[str, str]] = field(default_factory=list)
    _admin: gpd.GeoDataFrame | None = None
    _units: pd.DataFrame | None = None
    _aliases: pd.DataFrame | None = None

    def lost_in(self, col: str, index: pd.Index) -> pd.Series:
        """Rows whose ``col`` was refused as a spreadsheet number that lost digits (checked no further)."""
        mask = self.lost.get(col)
        return pd.Series(False, index=index) if mask is None else mask

    def admin(self) -> gpd.GeoDataFrame | None:
        """The workspace's admin units (``code``, ``level``, ``parent_code``, geometry), or ``None`` when it has none."""
        if self._admin is None and self.workspace is not None and self.workspace.count("admin_units"):
            self._admin = cast(gpd.GeoDataFrame,  # a layer with geometry: a GeoDataFrame
                               self.workspace.read("admin_units", columns=["code", "level", "parent_code"]))
        return self._admin

    def units(self) -> pd.DataFrame | None:
        """Admin units with names (``code``, ``name``, ``level``, ``parent_code``) for matching names."""
        if self._units is None and self.workspace is not None and self.workspace.count("admin_units"):
            units = self.workspace.read("admin_units", columns=["code", "name", "level", "parent_code", "derived"])
            self._units = pd.DataFrame(units.drop(columns=units.geometry.name)
                                       if isinstance(units, gpd.GeoDataFrame) else units)
        return self._units

    def aliases(self) -> pd.DataFrame | None:
        """Confirmed names: the workspace's ``name_aliases`` and those passed in (``import --names``), which win."""
        if self._aliases is None:
            stored = N.read_aliases(self.workspace) if self.workspace is not None else None
            frames = [f for f in (stored, self.extra_aliases) if f is not None and len(f)]
            self._aliases = (pd.concat([f[["level", "parent_code", "alias", "code"]] for f in frames],
                                       ignore_index=True).drop_duplicates(["level", "parent_code", "alias"], keep="last")
                             if frames else pd.DataFrame(columns=["level", "parent_code", "alias", "code"]))
        return self._aliases

    def codes(self, level: str) -> pd.DataFrame:
        """``code`` and ``parent_code`` of the workspace's admin units of ``level`` (empty without admin units)."""
        admin = self.admin()
        if admin is None:
            return pd.DataFrame({"code": [], "parent_code": []})
        sel = admin[admin["level"] == level]
        return pd.DataFrame({"code": sel["code"].astype(str).to_numpy(),
                             "parent_code": sel["parent_code"].astype(object).to_numpy()})

    def keys(self, layer: str, column: str) -> set[str]:
        """The normalised values of ``column`` in the workspace's ``layer`` (empty when there is no workspace)."""
        if self.workspace is None or not self.workspace.count(layer):
            return set()
        values = self.workspace.read(layer, columns=[column])[column]
        return {normalize_id(v) for v in values if not pd.isna(v)}
