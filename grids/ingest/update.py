"""Update-mode household imports: the file's filled cells over the stored households, versioned and audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from grids.ingest.report import ImportReport
from grids.model import STORAGE_EPSG
from grids.text import normalize_id
from grids.workspace import Workspace

_PERSONAL = ("id_no", "phone", "head_name")
"""Columns whose values an update's audit does not copy (it says “已更改” instead)."""


AUDIT_CHANGED_MAX = 500
"""An update's audit lists at most this many households with their before/after values (and counts all)."""


def _audit_value(col: str, value: Any) -> Any:
    if value is None or (not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value)):
        return None
    if col in _PERSONAL:
        return "（已更改）"
    if isinstance(value, shapely.Geometry):
        if isinstance(value, shapely.Point):
            return f"{value.x:.6f},{value.y:.6f}"
        return str(cast(BaseGeometry, value).geom_type)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def _missing(v: Any) -> bool:
    return v is None or (not isinstance(v, shapely.Geometry) and bool(pd.isna(v)))


def _same(a: Any, b: Any) -> bool:
    a_na = a is None or (not isinstance(a, shapely.Geometry) and pd.isna(a))
    b_na = b is None or (not isinstance(b, shapely.Geometry) and pd.isna(b))
    if a_na or b_na:
        return a_na and b_na
    if isinstance(a, shapely.Geometry) or isinstance(b, shapely.Geometry):
        return isinstance(a, shapely.Geometry) and isinstance(b, shapely.Geometry) and bool(shapely.equals_exact(a, b, 1e-9))
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return bool(a) == bool(b)
    if isinstance(a, (int, float, np.integer, np.floating)) and isinstance(b, (int, float, np.integer, np.floating)):
        return float(a) == float(b)
    return str(a) == str(b)


def update_households(ws: Workspace, report: ImportReport, *, actor: str, note: Mapping[str, Any]) -> None:
    """Write an update-mode import: the accepted rows' filled cells over the stored households, one transaction.

    Blank cells keep the stored value; a new village without a group clears the stored group; ``placed_by``
    stays ``point`` while the household has a point. Only households that change are rewritten, each with
    ``version`` + 1; the audit (action ``导入``, op ``update``) counts the changes per column and lists up to
    :data:`AUDIT_CHANGED_MAX` households with the changed values before and after.

    Raises
    ------
    StaleEditError
        A household of the file changed between reading and writing (another user saved it): nothing is
        written; import the file again.
    """
    from grids.errors import StaleEditError

    new = report.accepted
    stored = ws.read("households")
    geom_col = stored.geometry.name
    stored = stored.set_index(stored["hh_id"].map(normalize_id), drop=False)
    ids = [normalize_id(h) for h in new["hh_id"]]
    n = len(ids)
    old = stored.loc[ids]
    cols = [c for c in new.columns if c not in ("hh_id", new.geometry.name, "placed_by")]
    values: dict[str, list[Any]] = {c: (old[c].tolist() if c in old.columns else [None] * n)
              for c in dict.fromkeys([*cols, "group_code", "group_name", "placed_by"])}
    changes: list[dict[str, tuple[Any, Any]]] = [{} for _ in range(n)]
    for c in cols:
        now, given = values[c], new[c].tolist()
        for i, v in enumerate(given):
            if _missing(v) or _same(now[i], v):
                continue
            changes[i][c] = (now[i], v)
            now[i] = v
    geoms = old.geometry.tolist()
    new_geoms = new.geometry.tolist()
    new_placed = new["placed_by"].tolist() if "placed_by" in new else [None] * n
    for i in range(n):
        change = changes[i]
        if "village_code" in change and "group_code" not in change:
            g = values["group_code"][i]
            if isinstance(g, str) and not g.startswith(str(change["village_code"][1])):
                change["group_code"] = (g, None)
                values["group_code"][i] = None
        if "village_code" in change and "group_name" not in change and not _missing(values["group_name"][i]):
            change["group_name"] = (values["group_name"][i], None)  # the old village's group label is stale
            values["group_name"][i] = None
        g_new = new_geoms[i]
        if g_new is not None and not g_new.is_empty and not _same(geoms[i], g_new):
            change["geometry"] = (geoms[i], g_new)
            geoms[i] = g_new
        has_point = geoms[i] is not None and not geoms[i].is_empty
        placed = "point" if has_point else (new_placed[i] if "village_code" in change else None)
        if placed is not None and not _same(values["placed_by"][i], placed):
            change["placed_by"] = (values["placed_by"][i], placed)
            values["placed_by"][i] = placed
    changed_rows = [i for i in range(n) if changes[i]]
    per_column: dict[str, int] = {}
    listed: list[dict[str, Any]] = []
    for i in changed_rows:
        for c in changes[i]:
            per_column[c] = per_column.get(c, 0) + 1
        if len(listed) < AUDIT_CHANGED_MAX:
            listed.append({"hh_id": ids[i], "before": {c: _audit_value(c, b) for c, (b, _) in changes[i].items()},
                           "after": {c: _audit_value(c, a) for c, (_, a) in changes[i].items()}})
    version = (pd.to_numeric(old["version"], errors="coerce").fillna(0).astype(int).to_numpy()
               if "version" in old else np.zeros(n, dtype=int))
    report.imported = n
    unchanged = report.unchanged = n - len(changed_rows)
    if not changed_rows:
        return
    rows = np.asarray(changed_rows)
    out = pd.DataFrame(old.drop(columns=geom_col).iloc[rows]).reset_index(drop=True)
    for c, vals in values.items():
        out[c] = pd.Series([vals[i] for i in rows], dtype=object)
    out["version"] = version[rows] + 1
    out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries([geoms[i] for i in rows], crs=STORAGE_EPSG), crs=STORAGE_EPSG)
    seen = {ids[i]: int(version[i]) for i in rows}
    with ws.transaction(actor=actor, action="导入") as tx:
        changed_ids = list(seen)
        for k in range(0, len(changed_ids), 500):
            chunk = changed_ids[k:k + 500]
            where = f"hh_id IN ({', '.join('?' for _ in chunk)})"
            current = tx.read("households", where=where, params=chunk)
            stale = [h for h, v in zip(current["hh_id"], pd.to_numeric(current["version"], errors="coerce").fillna(0)
                                       .astype(int), strict=True) if int(seen.get(normalize_id(h), -1)) != int(v)]
            if stale or len(current) != len(chunk):
                raise StaleEditError(ids=stale or chunk)
            tx.execute(f"DELETE FROM households WHERE {where}", chunk)
        tx.append("households", out)
        tx.note("households", {**note, "op": "update", "mode": "update", "imported": n, "changed_rows": len(changed_rows),
                               "unchanged": unchanged, "columns": per_column, "changed": listed,
                               "listed": len(listed)})
