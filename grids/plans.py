"""Grid plans: named sets of grids stored in the workspace, drafts and published versions, with revisions.

A plan is one row of the ``plans`` layer (``plan_id``, ``name``, ``status`` draft | published | archived,
``revision``, ``params`` as JSON, timestamps) and its rows of the ``grids`` layer (``plan_id`` = the plan's id).
Every change of a plan's grids is one workspace transaction that also bumps the plan's own ``revision``, so an
editor that read revision *n* and saves against it gets :class:`~grids.errors.StaleRevisionError` when someone
else saved in between.

``grid_id`` is unique inside a plan (the build sets it to the grid's code); ``(plan_id, grid_id)`` identifies a
grid row across plans.

Examples
--------
>>> import tempfile, pathlib, geopandas as gpd, shapely
>>> from grids.workspace import GpkgWorkspace
>>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422",
...                           county_name="巴林左旗")
>>> g = gpd.GeoDataFrame({"code": ["150422100201001"], "kind": ["rural"], "households": [120]},
...                      geometry=[shapely.box(119.0, 43.0, 119.1, 43.1)], crs=4490)
>>> pid = save_draft(ws, g, name="main")
>>> resolve_plan(ws) == pid, plan_info(ws, pid)["revision"]
(True, 1)
>>> read_grids(ws, pid)[["grid_id", "code", "households"]].values.tolist()
[['150422100201001', '150422100201001', 120]]
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from grids.errors import (
    PublishBlockedError,
    PublishConflictError,
    StaleEditError,
    StaleRevisionError,
    ValidationError,
)
from grids.model import PLAN_STATUS_NAMES, STORAGE_EPSG
from grids.workspace import Transaction, Workspace

__all__ = [
    "edit_grid_rows",
    "list_plans",
    "merge_live_changes",
    "plan_info",
    "publish_plan",
    "read_grids",
    "resolve_plan",
    "save_draft",
    "save_edits",
    "update_grids",
    "versions",
]

_GRID_DEFAULTS: dict[str, Any] = {
    "name": None,
    "kind": None,
    "town_code": None,
    "source_codes": None,
    "households": None,
    "branch_id": None,
    "staff_id": None,
    "locked": False,
    "version": 0,
}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _describe(plans: pd.DataFrame) -> str:
    if not len(plans):
        return "工作区里还没有任何方案"
    items = [
        f"{r.name}（{PLAN_STATUS_NAMES.get(str(r.status), str(r.status))}，第 {r.revision} 版，{r.plan_id}）"
        for r in plans.itertuples()
    ]
    return "现有方案：" + "；".join(items)


def list_plans(ws: Workspace) -> pd.DataFrame:
    """All plans of the workspace, most recently updated first.

    Returns
    -------
    DataFrame
        Columns of the ``plans`` layer (``plan_id``, ``name``, ``status``, ``revision``, ``params`` …).
    """
    plans = ws.read("plans")
    if not len(plans):
        return plans
    # newest first; equal timestamps (same millisecond): the later row first
    return plans.iloc[::-1].sort_values("updated_at", ascending=False, kind="stable").reset_index(drop=True)


def resolve_plan(ws: Workspace, name: str | None = None) -> str:
    """The ``plan_id`` of the plan called ``name`` (or with that id).

    When ``name`` is None: the published plan if there is one, else the most recently updated draft. Among
    several plans of one name, a published one wins over a draft, a draft over an archived one.

    Raises
    ------
    ValidationError
        No plan matches; the message lists the available plans.
    """
    plans = list_plans(ws)
    rank = {"published": 0, "draft": 1, "archived": 2}
    if name is None:
        cand = plans[plans["status"].isin(["published", "draft"])] if len(plans) else plans
        what = "已发布或草稿方案"
    else:
        cand = plans[(plans["name"] == name) | (plans["plan_id"] == name)] if len(plans) else plans
        what = f"名为 “{name}” 的方案"
    if not len(cand):
        raise ValidationError(
            f"找不到{what}。{_describe(plans)}",
            fix="先运行 `python -m grids build 工作区路径 --plan 名称` 生成方案，或用 --plan 指定上面列出的名称",
        )
    order = cand.assign(_rank=cand["status"].map(rank).fillna(3)).sort_values("_rank", kind="stable")
    return str(order["plan_id"].iloc[0])


def _plan_row(tx_or_ws: Transaction | Workspace, plan_id: str) -> dict[str, Any]:
    rows = tx_or_ws.read("plans", where="plan_id = ?", params=(plan_id,))
    if not len(rows):
        raise ValidationError(
            f"方案 {plan_id} 不存在", fix="用 resolve_plan 或 `--plan 名称` 选择一个现有方案"
        )
    return {str(k): v for k, v in rows.iloc[0].items()}


def plan_info(ws: Workspace, plan_id: str) -> dict[str, Any]:
    """Name, status, revision, params (a dict) and timestamps of one plan.

    Raises
    ------
    ValidationError
        No plan has this id.
    """
    row = _plan_row(ws, plan_id)
    params = row.get("params")
    row["params"] = json.loads(params) if isinstance(params, str) and params else {}
    row["revision"] = int(row["revision"])
    return row


def read_grids(ws: Workspace, plan_id: str) -> gpd.GeoDataFrame:
    """The grid rows of one plan as a GeoDataFrame in EPSG:4490.

    Raises
    ------
    ValidationError
        No plan has this id.
    """
    _plan_row(ws, plan_id)
    return cast(gpd.GeoDataFrame, ws.read("grids", where="plan_id = ?", params=(plan_id,)))  # a spatial layer


def _prepare_grids(grids: gpd.GeoDataFrame, plan_id: str) -> gpd.GeoDataFrame:
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValidationError("网格必须是 GeoDataFrame", fix="传入带多边形几何的 GeoDataFrame")
    if grids.crs is None:
        raise ValidationError("网格数据没有坐标参考系（CRS）", fix="先 set_crs(4490) 或转换到 EPSG:4490")
    if "grid_id" not in grids.columns and "code" not in grids.columns:
        raise ValidationError("网格缺少 grid_id 和 code 列", column="grid_id", fix="至少给出其中一列")
    out = grids.to_crs(STORAGE_EPSG) if grids.crs.to_epsg() != STORAGE_EPSG else grids.copy()
    if "grid_id" not in out.columns:
        out["grid_id"] = out["code"]
    if "code" not in out.columns:
        out["code"] = out["grid_id"]
    ids = out["grid_id"]
    if ids.isna().any() or ids.duplicated().any():
        dup = ids[ids.duplicated()].dropna().astype(str).unique().tolist()[:5]
        raise ValidationError(
            f"网格编号 grid_id 为空或重复：{', '.join(dup) or '有空值'}", column="grid_id",
            fix="每个网格一个唯一的 grid_id",
        )
    out["plan_id"] = plan_id
    for col, default in _GRID_DEFAULTS.items():
        if col not in out.columns:
            out[col] = default
    if out["locked"].isna().any():
        out["locked"] = out["locked"].astype("boolean").fillna(False).astype(bool)
    out["version"] = pd.to_numeric(out["version"], errors="coerce").fillna(0).astype("int64")
    first = ["grid_id", "plan_id", "code", *[c for c in _GRID_DEFAULTS if c != "code"]]
    rest = [c for c in out.columns if c not in first]
    return out[first + rest]


def save_draft(ws: Workspace, grids: gpd.GeoDataFrame, *, name: str = "main", params: dict[str, Any] | None = None,
               actor: str = "cli") -> str:
    """Create the draft plan ``name``, or replace its grids when the draft exists; returns its ``plan_id``.

    One transaction: the plan row and its grids land together. A replaced draft keeps its ``plan_id`` and its
    revision goes up by one.

    Parameters
    ----------
    ws : Workspace
    grids : GeoDataFrame
        The grids (columns of the ``grids`` layer; ``grid_id`` defaults to ``code``).
    name : str
        Plan name shown to users.
    params : dict, optional
        Build parameters, stored as JSON.
    actor : str
        Who saves (audit trail).

    Raises
    ------
    ValidationError
        A published plan already has this name (published plans are never replaced), or the grids are unusable.
    """
    params_json = json.dumps(params or {}, ensure_ascii=False, sort_keys=True, default=str)
    shapes = _live_shapes(ws)  # published plans are never reshaped: their shapes can be read before
    with ws.transaction(actor=actor, action=f"生成网格方案 {name}") as tx:
        plans = tx.read("plans", where="name = ? AND status != 'archived'", params=(name,))
        if (plans["status"] == "published").any():
            raise ValidationError(
                f"方案 “{name}” 已发布，不能被覆盖",
                fix="换一个方案名（命令行 --plan 新名称），或先在规划页把它归档",
            )
        now = _now()
        if len(plans):
            plan_id = str(plans["plan_id"].iloc[0])
            revision = int(plans["revision"].iloc[0]) + 1
            old = tx.read("grids", where="plan_id = ?", params=(plan_id,))
            tx.delete("grids", where="plan_id = ?", params=(plan_id,))
            tx.execute(
                "UPDATE plans SET revision = ?, params = ?, updated_at = ? WHERE plan_id = ?",
                (revision, params_json, now, plan_id),
            )
        else:
            plan_id = "P" + uuid.uuid4().hex[:10]
            revision = 1
            tx.append("plans", pd.DataFrame({
                "plan_id": [plan_id], "name": [name], "status": ["draft"], "revision": [revision],
                "parent_plan_id": [None], "params": [params_json], "created_at": [now], "updated_at": [now],
                "published_at": [None],
            }))
        prepared = _prepare_grids(grids, plan_id)
        if len(plans):
            prepared["version"] = _bumped_versions(old, prepared)
        tx.append("grids", prepared)
        _record_fork(tx, plan_id, prepared, now=now, live_shapes=shapes)
        tx.note("plans", {"plan_id": plan_id, "name": name, "revision": revision, "grids": len(grids)})
    return plan_id


NOT_A_DRAFT = "已发布方案不能直接修改：请在“方案版本”中从已发布方案新建草稿"
"""Why a planner's edit of a published (live) plan is refused: edits go into a draft, which is checked when
it is published (branch managers' reassignments on the live plan are :func:`edit_grid_rows`)."""


def _editable_plan(tx: Transaction | Workspace, plan_id: str, expected_revision: int | None, *, doing: str,
                   unsaved: str) -> tuple[dict[str, Any], int]:
    """The plan row and its revision, inside a transaction; refuses a stale revision or an archived plan."""
    row = _plan_row(tx, plan_id)
    current = int(row["revision"])
    if expected_revision is not None and current != expected_revision:
        raise StaleRevisionError(
            f"方案 “{row['name']}” 已被他人修改（你读取的是第 {expected_revision} 版，现在是第 {current} 版），"
            f"{unsaved}。修正方法：重新载入方案后再{doing}",
            expected=expected_revision, actual=current,
        )
    if row["status"] == "archived":
        raise ValidationError(f"方案 “{row['name']}” 已归档，不能{doing}", fix=f"另存为新的草稿方案后再{doing}")
    return row, current


_TRACKED = ("branch_id", "staff_id", "households", "locked", "source_codes")


def grid_changes(before: pd.DataFrame, after: pd.DataFrame, *, limit: int = 50) -> dict[str, Any]:
    """Before/after of a plan's grids for the audit trail: grids added, removed, and changed fields.

    Examples
    --------
    >>> a = pd.DataFrame({"grid_id": ["G1", "G2"], "staff_id": ["S1", "S2"]})
    >>> b = pd.DataFrame({"grid_id": ["G1", "G3"], "staff_id": ["S3", "S2"]})
    >>> grid_changes(a, b)
    {'added': ['G3'], 'removed': ['G2'], 'changed': [{'grid_id': 'G1', 'field': 'staff_id', 'before': 'S1', 'after': 'S3'}]}
    """
    def norm(v: Any) -> Any:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        return v.item() if hasattr(v, "item") else v

    b = before.set_index(before["grid_id"].astype(str))
    a = after.set_index(after["grid_id"].astype(str))
    changed = []
    for gid in a.index.intersection(b.index):
        for col in _TRACKED:
            if col in a.columns and col in b.columns:
                old, new = norm(b.at[gid, col]), norm(a.at[gid, col])
                if old != new:
                    changed.append({"grid_id": gid, "field": col, "before": old, "after": new})
    out: dict[str, Any] = {"added": sorted(set(a.index) - set(b.index))[:limit],
                           "removed": sorted(set(b.index) - set(a.index))[:limit],
                           "changed": changed[:limit]}
    if len(changed) > limit:
        out["changed_total"] = len(changed)
    return out


_COMPARED = (*_TRACKED, "name", "code", "kind", "town_code", "hh_overrides")


def versions(grids: pd.DataFrame) -> dict[str, int]:
    """``grid_id`` → row version (``NULL`` counts as 0): what a page carries with the grids it shows.

    Examples
    --------
    >>> versions(pd.DataFrame({"grid_id": ["A", "B"], "version": [3, None]}))
    {'A': 3, 'B': 0}
    """
    col = grids["version"] if "version" in grids.columns else pd.Series(0, index=grids.index)
    v = pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")
    return dict(zip(grids["grid_id"].astype(str), v.tolist(), strict=True))


def _norm(v: Any) -> Any:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    v = v.item() if hasattr(v, "item") else v
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


def _differs(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """For each row of ``after`` whose ``grid_id`` is in ``before``: does it differ (fields or shape)?

    Rows of ``after`` not in ``before`` count as differing.
    """
    import shapely

    b = before.drop_duplicates("grid_id").set_index(before.drop_duplicates("grid_id")["grid_id"].astype(str))
    ids = after["grid_id"].astype(str)
    known = ids.isin(b.index).to_numpy()
    out = ~known
    if not known.any():
        return pd.Series(out, index=after.index)
    a = after[known]
    bb = b.loc[pd.Index(a["grid_id"].astype(str))]
    diff = pd.Series(False, index=a.index)
    for col in _COMPARED:
        if col in a.columns or col in bb.columns:
            left = a[col].tolist() if col in a.columns else [None] * len(a)
            right = bb[col].tolist() if col in bb.columns else [None] * len(a)
            diff |= pd.Series([_norm(x) != _norm(y) for x, y in zip(left, right, strict=True)], index=a.index)
    if isinstance(a, gpd.GeoDataFrame) and isinstance(bb, gpd.GeoDataFrame):
        ga = np.asarray(a.geometry.values, dtype=object)
        gb = np.asarray(bb.geometry.to_crs(a.crs).values if bb.crs and a.crs and not bb.crs.equals(a.crs)
                        else bb.geometry.values, dtype=object)
        same = shapely.equals_exact(ga, gb, tolerance=0)
        redo = ~same & ~shapely.is_missing(ga) & ~shapely.is_missing(gb)
        if redo.any():
            same[redo] = shapely.equals(ga[redo], gb[redo])
        diff |= pd.Series(~same, index=a.index)
    out = out.copy()
    out[known] = diff.to_numpy()
    return pd.Series(out, index=after.index)


def _bumped_versions(before: pd.DataFrame, after: pd.DataFrame) -> np.ndarray:
    """Row versions of ``after`` replacing ``before``: unchanged rows keep theirs, changed rows get +1, new
    rows their carried version + 1 (a grid restored by undo never reuses a version a reader may hold)."""
    old = versions(before) if len(before) else {}
    carried = pd.to_numeric(after["version"], errors="coerce").fillna(0).astype("int64").to_numpy() \
        if "version" in after.columns else np.zeros(len(after), dtype="int64")
    changed = _differs(before, after).to_numpy() if len(before) else np.ones(len(after), dtype=bool)
    out = []
    for gid, c, ch in zip(after["grid_id"].astype(str), carried, changed, strict=True):
        if gid in old:
            out.append(old[gid] + 1 if ch else old[gid])
        else:
            out.append(int(c) + 1)
    return np.asarray(out, dtype="int64")


def _stale(ids: list[str], seen: Mapping[str, int], current: Mapping[str, int]) -> list[str]:
    return [g for g in ids if g not in seen or int(seen[g]) != int(current.get(g, -1))]


EDITABLE_GRID_FIELDS: tuple[str, ...] = ("staff_id", "locked")
"""Grid fields :func:`edit_grid_rows` changes (who serves a grid, and whether balancing may move it)."""


def edit_grid_rows(ws: Workspace, plan_id: str, changes: Mapping[str, Mapping[str, Any]], *,
                   seen: Mapping[str, int], actor: str, action: str,
                   check: Callable[[pd.DataFrame], None] | None = None) -> int:
    """Change fields of some grids of a plan, judged on those rows only; returns the plan's new revision.

    One transaction. Each touched grid's ``version`` must equal the version the caller saw (``seen``);
    otherwise nothing is written and :class:`~grids.errors.StaleEditError` names the grids that changed.
    Grids the edit does not touch may have changed meanwhile: they do not refuse it. Each touched row's
    version goes up by one.

    Parameters
    ----------
    changes : mapping
        ``grid_id`` → ``{field: new value}``; fields among :data:`EDITABLE_GRID_FIELDS`.
    seen : mapping
        ``grid_id`` → the row version the caller read (see :func:`versions`).
    check : callable, optional
        Called with the touched rows as stored (inside the transaction) before anything is written; raise
        to refuse (scope rules).

    Raises
    ------
    StaleEditError
        A touched grid changed since it was read.
    ValidationError
        Unknown grid, a read-only field, an archived plan.

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely
    >>> from grids.workspace import GpkgWorkspace
    >>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422",
    ...                           county_name="巴林左旗")
    >>> g = gpd.GeoDataFrame({"code": ["A", "B"], "staff_id": ["S1", "S1"]}, crs=4490,
    ...                      geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> pid = save_draft(ws, g)
    >>> seen = versions(read_grids(ws, pid))
    >>> edit_grid_rows(ws, pid, {"A": {"staff_id": "S2"}}, seen=seen, actor="t", action="改派")
    2
    >>> edit_grid_rows(ws, pid, {"B": {"locked": True}}, seen=seen, actor="t", action="锁定")  # other row
    3
    >>> versions(read_grids(ws, pid))
    {'A': 1, 'B': 1}
    """
    ids = [str(g) for g in changes]
    if not ids:
        raise ValidationError("没有要保存的修改", fix="先修改网格的客户经理或锁定状态")
    for gid, fields in changes.items():
        bad = [f for f in fields if f not in EDITABLE_GRID_FIELDS]
        if bad:
            raise ValidationError(f"网格 {gid} 的字段 {'、'.join(map(str, bad))} 是只读的，不能在这里修改",
                                  column=str(bad[0]), fix=f"只能修改：{'、'.join(EDITABLE_GRID_FIELDS)}")
    with ws.transaction(actor=actor, action=action) as tx:
        _, current = _editable_plan(tx, plan_id, None, doing="修改", unsaved="未保存任何内容")
        marks = ",".join("?" for _ in ids)
        rows = tx.read("grids", where=f"plan_id = ? AND grid_id IN ({marks})", params=[plan_id, *ids])
        missing = sorted(set(ids) - set(rows["grid_id"].astype(str)))
        if missing:
            raise ValidationError(f"方案里没有网格 {'、'.join(missing[:5])}", column="grid_id",
                                  fix="刷新页面后从列表中选择现有网格")
        if check is not None:
            check(rows)
        stale = _stale(ids, seen, versions(rows))
        if stale:
            raise StaleEditError(ids=stale)
        by_id = rows.set_index(rows["grid_id"].astype(str))
        detail = []
        for gid in ids:
            fields = dict(changes[gid])
            for f, v in fields.items():
                detail.append({"grid_id": gid, "field": f, "before": _norm(by_id.at[gid, f]), "after": _norm(v)})
            sets = ", ".join(f'"{f}" = ?' for f in fields)
            values = [(bool(v) if f == "locked" else v) for f, v in fields.items()]
            tx.execute(f'UPDATE grids SET {sets}{", " if sets else ""}version = COALESCE(version, 0) + 1 '
                       "WHERE plan_id = ? AND grid_id = ?", (*values, plan_id, gid))
        tx.execute("UPDATE plans SET revision = ?, updated_at = ? WHERE plan_id = ?", (current + 1, _now(), plan_id))
        tx.note("grids", {"plan_id": plan_id, "revision": current + 1, "changed": detail})
    return current + 1


def save_edits(ws: Workspace, plan_id: str, grids: gpd.GeoDataFrame, *, base: gpd.GeoDataFrame, actor: str,
               action: str) -> int:
    """Save an edited copy of a plan's grids, judged on the grids the edit touched; returns the new revision.

    ``base`` is the plan's grids as the editor loaded them (with their versions). The grids that differ between
    ``base`` and ``grids`` (changed, added, removed) are the edit: each must still be at the version in
    ``base``, else nothing is written (:class:`~grids.errors.StaleEditError`). Grids the edit did not touch are
    kept as stored now, so a branch manager's reassignment made meanwhile is not overwritten.

    Raises
    ------
    StaleEditError
        A grid the edit touches changed (or appeared) since ``base`` was read.
    ValidationError
        Unknown plan, a plan that is not a draft (published or archived: :data:`NOT_A_DRAFT`), unusable grids.
    """
    with ws.transaction(actor=actor, action=action) as tx:
        row, current = _editable_plan(tx, plan_id, None, doing="修改", unsaved="未保存任何内容")
        if row["status"] != "draft":
            raise ValidationError(f"方案 “{row['name']}” 不是草稿，未保存任何内容",
                                  fix=NOT_A_DRAFT.split("：", 1)[1])
        prepared = _prepare_grids(grids, plan_id)
        stored = tx.read("grids", where="plan_id = ?", params=(plan_id,))
        base_ids = set(base["grid_id"].astype(str))
        new_ids = prepared["grid_id"].astype(str)
        touched = set(new_ids[_differs(base, prepared).to_numpy()])
        removed = base_ids - set(new_ids)
        seen = versions(base)
        now_v = versions(stored)
        stale = sorted(g for g in touched | removed
                       if (g in seen and now_v.get(g, -1) != seen[g]) or (g not in seen and g in now_v))
        if stale:
            raise StaleEditError(ids=stale)
        mine = prepared[new_ids.isin(touched).to_numpy()].copy()
        mine["version"] = [now_v[g] + 1 if g in now_v else int(v) + 1
                           for g, v in zip(mine["grid_id"].astype(str), mine["version"], strict=True)]
        gone = sorted(touched | removed)
        if gone:  # only the rows of the edit are replaced; every other row stays as stored
            marks = ",".join("?" for _ in gone)
            tx.delete("grids", where=f"plan_id = ? AND grid_id IN ({marks})", params=(plan_id, *gone))
        if len(mine):
            tx.append("grids", mine)
        tx.execute("UPDATE plans SET revision = ?, updated_at = ? WHERE plan_id = ?", (current + 1, _now(), plan_id))
        was = stored[stored["grid_id"].astype(str).isin(gone).to_numpy()]
        tx.note("plans", {"plan_id": plan_id, "revision": current + 1, "grids_changed": len(gone),
                          **grid_changes(was, mine)})
    return current + 1


def update_grids(ws: Workspace, plan_id: str, grids: gpd.GeoDataFrame, *, actor: str, action: str,
                 expected_revision: int | None = None) -> int:
    """Replace the grid rows of one plan in one transaction; returns the plan's new revision.

    Used by assignment and edits. Archived plans are read-only.

    Parameters
    ----------
    expected_revision : int, optional
        The plan revision the caller read; when the plan has moved on, nothing is written.

    Raises
    ------
    StaleRevisionError
        ``expected_revision`` is not the plan's current revision.
    ValidationError
        Unknown or archived plan, or unusable grids.
    """
    with ws.transaction(actor=actor, action=action) as tx:
        _, current = _editable_plan(tx, plan_id, expected_revision, doing="修改", unsaved="未保存任何内容")
        prepared = _prepare_grids(grids, plan_id)
        before = tx.read("grids", where="plan_id = ?", params=(plan_id,))
        prepared["version"] = _bumped_versions(before, prepared)
        tx.delete("grids", where="plan_id = ?", params=(plan_id,))
        tx.append("grids", prepared)
        tx.execute("UPDATE plans SET revision = ?, updated_at = ? WHERE plan_id = ?",
                   (current + 1, _now(), plan_id))
        tx.note("plans", {"plan_id": plan_id, "revision": current + 1, "grids": len(prepared),
                          **grid_changes(before, prepared)})
    return current + 1


PUBLISH_SHOW_ERRORS = 3
"""How many check errors a refused publication names (the rest are counted)."""


def publish_plan(ws: Workspace, plan_id: str, *, actor: str, expected_revision: int | None = None,
                 accept_conflicts: bool = False, force_reason: str | None = None) -> int:
    """Publish a draft plan that has no check error; the previously published plan becomes archived.

    **Live work is kept.** Branch managers go on reassigning grids on the published plan while a planner works
    on a draft. Publishing merges three ways, grid by grid (:func:`merge_live_changes`): a reassignment made on
    the published plan since the draft was made is carried into the draft where the draft left that grid as
    it was (shape and assignment); where the draft also changed it (reshaped, split, merged or reassigned it
    otherwise) it is a conflict — listed, and publishing refuses (:class:`~grids.errors.PublishConflictError`)
    unless ``accept_conflicts``, which keeps the draft's version of those grids and records in the audit every
    live assignment it overrode. Nothing is lost silently.

    The merged plan is checked (:func:`grids.check.check_workspace_plan`): any **error** refuses the
    publication unless ``force_reason`` gives a reason (recorded in the audit with the error count);
    **warnings** never do. The revision that was checked is the one published: a save to the draft or a
    reassignment on the published plan in between refuses with :class:`~grids.errors.StaleRevisionError`.
    One transaction: the carried reassignments, the archiving and the publication land together. Returns the
    plan's revision (one more than before when reassignments were carried in).

    Raises
    ------
    StaleRevisionError
        ``expected_revision`` (or the checked revision) is not the plan's current revision, or the published plan
        changed after the merge was computed.
    PublishConflictError
        Conflicts, without ``accept_conflicts``.
    PublishBlockedError
        Check errors (the message gives their count and the first few), without ``force_reason``.
    ValidationError
        Unknown plan, or the plan is archived.
    """
    from grids.check import check_workspace_plan, errors

    row, checked = _editable_plan(ws, plan_id, expected_revision, doing="发布", unsaved="未发布")
    merge = merge_live_changes(ws, plan_id)
    if merge.conflicts and not accept_conflicts:
        shown = "；".join(c["message"] for c in merge.conflicts[:PUBLISH_SHOW_ERRORS])
        more = f"；另有 {len(merge.conflicts) - PUBLISH_SHOW_ERRORS} 个" \
            if len(merge.conflicts) > PUBLISH_SHOW_ERRORS else ""
        raise PublishConflictError(
            f"方案 “{row['name']}” 与已发布方案有 {len(merge.conflicts)} 处冲突（草稿建立后，已发布方案上的改派与草稿的"
            f"修改落在同一网格）：{shown}{more}",
            conflicts=merge.conflicts,
            fix="在草稿里按已发布方案的改派调整这些网格后再发布；或确认以草稿为准发布（命令行 --accept-conflicts），"
                "被覆盖的改派会逐条记入审计",
        )
    bad = errors(check_workspace_plan(ws, plan_id, grids=merge.grids))
    reason = (force_reason or "").strip()
    if len(bad) and not reason:
        first = "；".join(f"{m}（{f}）" for m, f in zip(bad["message"].head(PUBLISH_SHOW_ERRORS),
                                                       bad["fix"].head(PUBLISH_SHOW_ERRORS), strict=True))
        more = f"；另有 {len(bad) - PUBLISH_SHOW_ERRORS} 个" if len(bad) > PUBLISH_SHOW_ERRORS else ""
        raise PublishBlockedError(
            f"方案 “{row['name']}” 有 {len(bad)} 个检查错误，不能发布：{first}{more}",
            fix="在网格规划页的检查列表或用 `python -m grids check` 查看并修正全部错误后再发布（警告不影响发布；"
                "确需带错发布时用 --force --reason 说明理由，记入审计）",
        )
    with ws.transaction(actor=actor, action="发布网格方案") as tx:
        _, current = _editable_plan(tx, plan_id, checked, doing="发布", unsaved="未发布")
        if merge.live_plan_id is not None:
            live = tx.read("plans", where="plan_id = ?", params=(merge.live_plan_id,))
            now_rev = int(live["revision"].iloc[0]) if len(live) else -1
            if not len(live) or live["status"].iloc[0] != "published" or now_rev != merge.live_revision:
                raise StaleRevisionError(
                    "已发布方案在发布前的检查之后又有改动（例如网点主任改派了网格），未发布。修正方法：重新发布一次，"
                    "新的改派会一并并入", expected=int(merge.live_revision or 0), actual=now_rev)
        now = _now()
        for c in merge.carried:
            tx.execute("UPDATE grids SET branch_id = ?, staff_id = ?, locked = ?, version = COALESCE(version, 0) + 1 "
                       "WHERE plan_id = ? AND grid_id = ?",
                       (c["live"]["branch_id"], c["live"]["staff_id"], bool(c["live"]["locked"]), plan_id,
                        c["grid_id"]))
        if merge.carried:
            current += 1
            tx.execute("UPDATE plans SET revision = ? WHERE plan_id = ?", (current, plan_id))
        tx.execute("UPDATE plans SET status = 'archived', updated_at = ? WHERE status = 'published' "
                   "AND plan_id != ?", (now, plan_id))
        tx.execute("UPDATE plans SET status = 'published', published_at = ?, updated_at = ? WHERE plan_id = ?",
                   (now, now, plan_id))
        note: dict[str, Any] = {"plan_id": plan_id, "status": "published", "revision": current,
                                "carried": len(merge.carried), "carried_grids": [c["grid_id"] for c in merge.carried][:50]}
        if merge.conflicts:
            note["conflicts_overridden"] = [{k: c[k] for k in ("grid_id", "reason", "live", "draft")}
                                            for c in merge.conflicts][:200]
        if len(bad):
            note.update(forced=reason, errors=len(bad))
        tx.note("plans", note)
    return current


# --------------------------------------------------------------------------------------------------------
# the three-way merge at publication
# --------------------------------------------------------------------------------------------------------


def shape_keys(geoms: Any) -> list[str]:
    """A short fingerprint per geometry: equal for the same shape whatever its vertex order, starting point or
    single/multi wrapping (coordinates to 1e-9 degree), different otherwise.

    Examples
    --------
    >>> import shapely
    >>> a = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 0)])
    >>> b = shapely.MultiPolygon([shapely.Polygon([(1, 1), (0, 0), (1, 0), (1, 1)])])
    >>> k = shape_keys([a, b, shapely.box(0, 0, 2, 2)])
    >>> k[0] == k[1], k[0] == k[2]
    (True, False)
    """
    import hashlib

    import shapely

    arr = np.asarray(list(geoms), dtype=object)
    out: list[str] = []
    for g in arr:
        if g is None or shapely.is_missing(g) or shapely.is_empty(g):
            out.append("")
            continue
        parts = shapely.get_parts(g)
        g = parts[0] if len(parts) == 1 else g
        g = shapely.normalize(shapely.transform(g, lambda c: np.round(c, 9)))
        out.append(hashlib.sha1(shapely.to_wkb(g)).hexdigest()[:20])
    return out


def _assignment(row: Mapping[Hashable, Any]) -> dict[str, Any]:
    def text(v: Any) -> str | None:
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "" else str(v)

    locked = row.get("locked")
    return {"branch_id": text(row.get("branch_id")), "staff_id": text(row.get("staff_id")),
            "locked": bool(locked) if locked is not None and not pd.isna(locked) else False}


def _describe_assignment(a: Mapping[str, Any]) -> str:
    who = a["staff_id"] or "无人负责"
    return f"{who}（{a['branch_id'] or '无网点'}{'，已锁定' if a['locked'] else ''}）"


def _live_shapes(ws: Workspace) -> dict[tuple[str, str], str]:
    """``(plan_id, grid_id)`` → :func:`shape_keys` of the published plan's grids (empty without one)."""
    live = ws.read("plans", where="status = 'published'")
    if not len(live):
        return {}
    live_id = str(live["plan_id"].iloc[0])
    lg = read_grids(ws, live_id)
    return {(live_id, str(g)): k for g, k in zip(lg["grid_id"], shape_keys(lg.geometry), strict=True) if k}


def _record_fork(tx: Transaction, plan_id: str, grids: gpd.GeoDataFrame, *, now: str,
                 live_shapes: Mapping[tuple[str, str], str]) -> None:
    """Keep the published plan's assignment of every draft grid that matches one of its grids (same id, else
    same code, and the same shape): the base of the three-way merge at publication. Replaces the draft's
    earlier record (a rebuilt draft starts from the live plan as it is now)."""
    tx.delete("plan_forks", where="plan_id = ?", params=(plan_id,))
    live = tx.read("plans", where="status = 'published' AND plan_id != ?", params=(plan_id,))
    if not len(live) or not len(grids):
        return
    live_id = str(live["plan_id"].iloc[0])
    lg = tx.read("grids", where="plan_id = ?", params=(live_id,))
    if not len(lg):
        return
    lkeys = [live_shapes.get((live_id, str(g)), "") for g in lg["grid_id"]]
    dkeys = shape_keys(grids.geometry)
    by_id = {(str(g), k): i for i, (g, k) in enumerate(zip(lg["grid_id"], lkeys, strict=True)) if k}
    by_code = {(str(c), k): i for i, (c, k) in enumerate(zip(lg["code"], lkeys, strict=True)) if k and c}
    codes = grids["code"] if "code" in grids.columns else grids["grid_id"]
    live_rows = lg.to_dict("records")
    rows = []
    matched: set[int] = set()
    for gid, code, key in zip(grids["grid_id"].astype(str), codes.astype(object), dkeys, strict=True):
        i = by_id.get((gid, key))
        if i is None:
            i = by_code.get((str(code), key))
        if i is None:
            continue
        matched.add(i)
        a = _assignment(live_rows[i])
        rows.append({"plan_id": plan_id, "grid_id": gid, "live_plan_id": live_id,
                     "live_grid_id": str(live_rows[i]["grid_id"]), "shape": key, **a, "forked_at": now})
    # live grids the draft does not have (redrawn, split, merged): a later live reassignment of one of them
    # would be lost by publishing, so it is recorded too and becomes a conflict then
    for i, r in enumerate(live_rows):
        if i not in matched:
            rows.append({"plan_id": plan_id, "grid_id": None, "live_plan_id": live_id,
                         "live_grid_id": str(r["grid_id"]), "shape": lkeys[i], **_assignment(r), "forked_at": now})
    if rows:
        tx.append("plan_forks", pd.DataFrame(rows))


@dataclass
class LiveMerge:
    """What publishing a draft takes from the published plan (:func:`merge_live_changes`).

    Attributes
    ----------
    live_plan_id, live_revision : str or None, int or None
        The published plan compared against, and its revision then.
    carried : list of dict
        Grids whose live reassignment is carried into the draft (``grid_id``, ``base``, ``draft``, ``live``).
    conflicts : list of dict
        Grids changed on both sides (``grid_id``, ``reason``, ``message``, ``base``, ``draft``, ``live``).
    grids : GeoDataFrame
        The draft's grids with the carried reassignments applied (what would be published).
    """

    live_plan_id: str | None
    live_revision: int | None
    carried: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    grids: gpd.GeoDataFrame


def merge_live_changes(ws: Workspace, plan_id: str) -> LiveMerge:
    """The three-way merge of a draft with the published plan, against the published plan's assignments when the
    draft was made (``plan_forks``); reads only.

    For each grid the draft took from the published plan: if the published plan's assignment (网点, 客户经理,
    锁定) is still what it was, nothing happens. If it changed since: where the draft kept the grid's shape and
    assignment, the change is carried in; where the draft holds the same assignment already, nothing to do;
    otherwise — the draft reshaped, split or merged the grid, or reassigned it differently — it is a conflict.
    A draft not made from the plan published now (another plan was published since, or it was made before any
    was, or by a version without this record) is one conflict for the whole plan: which of the published plan's
    assignments are live work cannot be told, and publishing would replace them all.
    """
    draft = read_grids(ws, plan_id)
    forks = ws.read("plan_forks", where="plan_id = ?", params=(plan_id,))
    live = ws.read("plans", where="status = 'published' AND plan_id != ?", params=(plan_id,))
    if not len(live):
        return LiveMerge(None, None, [], [], draft)
    live_id, live_rev = str(live["plan_id"].iloc[0]), int(live["revision"].iloc[0])
    based_on = set(forks["live_plan_id"].astype(str)) if len(forks) else set()
    if based_on != {live_id}:
        # the draft was made before this plan was published (or before any was): nothing tells which of the
        # published plan's assignments are live work since — publishing it would replace them all unseen
        name = str(live["name"].iloc[0])
        message = (f"草稿建立时的现行方案不是现在的已发布方案 “{name}”（之后又发布过方案，或草稿建于发布之前），"
                   "无法判断哪些是之后的改派；发布它会整体替换现行方案的全部分配")
        return LiveMerge(live_id, live_rev, [], [{"grid_id": "（整个方案）", "reason": "草稿基于的不是现行方案",
                                                   "message": message, "base": None, "draft": None, "live": None}],
                         draft)
    lg = read_grids(ws, live_id)
    live_rows = {str(r["grid_id"]): r for r in lg.to_dict("records")}
    draft_rows = {str(r["grid_id"]): r for r in draft.to_dict("records")}
    dkeys = dict(zip(draft["grid_id"].astype(str), shape_keys(draft.geometry), strict=True))
    carried: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    for f in forks.to_dict("records"):
        lgid = str(f["live_grid_id"])
        in_draft = isinstance(f["grid_id"], str) and f["grid_id"] != ""
        gid = str(f["grid_id"]) if in_draft else lgid
        if lgid not in live_rows:  # published plans are never reshaped: a grid of the fork is still there
            continue
        base, now_live = _assignment(f), _assignment(live_rows[lgid])
        if now_live == base:
            continue
        d = draft_rows.get(gid) if in_draft else None
        draft_a = _assignment(d) if d is not None else None
        entry = {"grid_id": gid, "base": base, "draft": draft_a, "live": now_live}
        if draft_a == now_live:
            continue
        if d is None:
            reason = "草稿中已拆分或合并" if in_draft else "草稿中没有这个网格（已重划）"
        elif dkeys.get(gid) != f["shape"]:
            reason = "草稿中边界已调整"
        elif draft_a != base:
            reason = "草稿另行改派"
        else:
            carried.append(entry)
            continue
        conflicts.append({**entry, "reason": reason, "message": (
            f"网格 {gid}{reason}，而已发布方案在此期间由 {_describe_assignment(base)} 改为 "
            f"{_describe_assignment(now_live)}")})
    merged = draft.copy()
    if carried:
        at = {c["grid_id"]: c["live"] for c in carried}
        ids = merged["grid_id"].astype(str)
        for col in ("branch_id", "staff_id", "locked"):
            merged[col] = [at[g][col] if g in at else v for g, v in zip(ids, merged[col], strict=True)]
    return LiveMerge(live_id, live_rev, carried, conflicts, merged)
