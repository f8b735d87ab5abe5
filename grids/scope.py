"""The scoped workspace: what one signed-in account may read and change, enforced below the pages.

Every page, map, table, export and download reads through a :class:`ScopedWorkspace`, never through the raw
:class:`~grids.store.Workspace`:

- ``admin``, ``leadership``, ``planner``: the whole county;
- ``branch_manager``: the grids whose ``branch_id`` is their branch, the households located in those grids,
  their branch's staff;
- ``customer_manager``: the grids whose ``staff_id`` is their own, and the households located there.

Households are placed in grids by :func:`grids.coverage.locate_households` against *all* grids of the plan,
then filtered, so a household is never pulled into a scope by a fallback rule. ID numbers and phones are masked
unless the role may see them (``view_personal``) and asks to; each such full view or export is audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from grids import coverage, plans
from grids.auth import Account
from grids.errors import PermissionDeniedError, ValidationError
from grids.privacy import mask_frame
from grids.store import Workspace


class ScopedWorkspace:
    """A read/write view of a workspace limited to what ``account`` may see and change.

    Parameters
    ----------
    ws : Workspace
    account : Account
    plan : str, optional
        Plan name or id; default the published plan, else the latest draft.
    """

    def __init__(self, ws: Workspace, account: Account, *, plan: str | None = None) -> None:
        self.ws = ws
        self.account = account
        self.plan_id = plans.resolve_plan(ws, plan)
        self._cache: dict[str, Any] = {}
        self._cache_rev = -1

    # -- cached raw data, refreshed when the workspace revision moves --------------------------------------

    def _raw(self, key: str) -> Any:
        rev = self.ws.revision
        if rev != self._cache_rev:
            self._cache.clear()
            self._cache_rev = rev
        if key not in self._cache:
            if key == "grids":
                self._cache[key] = plans.read_grids(self.ws, self.plan_id)
            elif key == "located":
                self._cache[key] = coverage.locate_in_workspace(self.ws, self._raw("grids"),
                                                                households=self._raw("households"))
            else:
                self._cache[key] = self.ws.read(key)
        return self._cache[key]

    @property
    def is_county_wide(self) -> bool:
        """True for roles that read the whole county."""
        return self.account.can("read_all")

    # -- reads -------------------------------------------------------------------------------------------

    def grid_mask(self, grids: pd.DataFrame) -> pd.Series:
        """Boolean Series: which of ``grids`` are inside this account's scope."""
        acc = self.account
        if acc.can("read_all"):
            return pd.Series(True, index=grids.index)
        if acc.can("read_branch"):
            return grids["branch_id"].astype(object).eq(acc.branch_id).fillna(False).astype(bool)
        if acc.can("read_own"):
            return grids["staff_id"].astype(object).eq(acc.staff_id).fillna(False).astype(bool)
        return pd.Series(False, index=grids.index)

    def grids(self) -> gpd.GeoDataFrame:
        """The plan's grids in scope."""
        g = self._raw("grids")
        return g[self.grid_mask(g).to_numpy()].copy()

    def located(self) -> pd.DataFrame:
        """Where each in-scope household lies (:func:`grids.coverage.locate_households` rows in scope)."""
        loc = self._raw("located")
        if self.is_county_wide:
            return loc.copy()
        return loc[loc["grid_id"].isin(set(self.grids()["grid_id"])).to_numpy()].copy()

    def households(self, *, unmask: bool = False, purpose: str = "查看") -> gpd.GeoDataFrame:
        """Households in scope; ID numbers and phones masked unless ``unmask`` (allowed roles only, audited)."""
        hh = self._raw("households")
        if not self.is_county_wide:
            hh = hh.loc[self.located().index]
        if unmask:
            self.account.require("view_personal")
            self._audit_personal(purpose=purpose, rows=len(hh))
            return hh.copy()
        return mask_frame(hh)

    def staff(self) -> pd.DataFrame:
        """Staff in scope: all, the branch's, or oneself."""
        st = self._raw("staff")
        acc = self.account
        if acc.can("read_all"):
            return st.copy()
        if acc.can("read_branch"):
            return st[st["branch_id"] == acc.branch_id].copy()
        return st[st["staff_id"] == acc.staff_id].copy()

    def branches(self) -> gpd.GeoDataFrame:
        """Outlets: public information, all of them (to show the network around a territory)."""
        return self._raw("branches").copy()

    def visits(self) -> pd.DataFrame:
        """Visit records of in-scope households."""
        v = self._raw("visits")
        if self.is_county_wide:
            return v.copy()
        return v[v["hh_id"].isin(set(self._raw("households").loc[self.located().index, "hh_id"]))].copy()

    def funnel(self, *, by: str | None = None) -> pd.DataFrame:
        """The credit funnel of the in-scope households (see :func:`grids.coverage.funnel`)."""
        hh = self._raw("households")
        loc = self._raw("located")
        if not self.is_county_wide:
            idx = self.located().index
            hh, loc = hh.loc[idx], loc.loc[idx]
        return coverage.funnel(hh, by=by, located=loc)

    def audit_log(self) -> pd.DataFrame:
        """The audit trail (leadership and admins only)."""
        self.account.require("view_audit")
        return self.ws.read("audit")

    # -- guards ------------------------------------------------------------------------------------------

    def require_grid(self, grid_id: str) -> pd.Series:
        """The in-scope grid row ``grid_id``, or PermissionDeniedError."""
        g = self.grids()
        hit = g[g["grid_id"] == grid_id]
        if hit.empty:
            raise PermissionDeniedError(f"网格 {grid_id} 不在你的管辖范围内（{self.account.role_name}）")
        return hit.iloc[0]

    def require_household(self, hh_id: str) -> pd.Series:
        """The in-scope household row ``hh_id`` (masked), or PermissionDeniedError."""
        hh = self._raw("households")
        idx = hh.index if self.is_county_wide else self.located().index
        hit = hh.loc[idx][hh.loc[idx, "hh_id"] == hh_id]
        if hit.empty:
            raise PermissionDeniedError(f"农户 {hh_id} 不在你的管辖范围内（{self.account.role_name}）")
        return mask_frame(hit).iloc[0]

    # -- changes -----------------------------------------------------------------------------------------

    def record_visit(self, hh_id: str, *, visited_on: Any, outcome: str, note: str = "") -> None:
        """Record a visit to an in-scope household (customer managers and admins); ``已建档`` archives it."""
        from grids.model import VISIT_OUTCOMES

        self.account.require("record_visit")
        self.require_household(hh_id)
        if outcome not in VISIT_OUTCOMES:
            raise ValidationError(f"未知的走访结果 “{outcome}”", fix=f"可选：{'、'.join(VISIT_OUTCOMES)}")
        day = pd.Timestamp(visited_on)
        if day > pd.Timestamp.now().normalize():
            raise ValidationError(f"走访日期 {day:%Y-%m-%d} 在未来", fix="填写实际走访的日期")
        staff_id = self.account.staff_id or ""
        with self.ws.transaction(actor=self.account.username, action="记录走访") as tx:
            before = tx.read("households", where="hh_id = ?", params=[hh_id])
            tx.append("visits", pd.DataFrame({"hh_id": [hh_id], "staff_id": [staff_id], "visited_on": [day],
                                              "outcome": [outcome], "note": [note]}))
            if outcome == "已建档":
                tx.execute("UPDATE households SET archived = ? WHERE hh_id = ?", (True, hh_id))
            tx.note("households", {"hh_id": hh_id, "outcome": outcome,
                                   "archived_before": bool(before["archived"].iloc[0]),
                                   "archived_after": True if outcome == "已建档" else bool(before["archived"].iloc[0])})

    def reassign_grid(self, grid_id: str, staff_id: str, *, expected_revision: int | None = None) -> int:
        """Give an in-scope grid to another staff member of the same branch; returns the plan revision."""
        self.account.require("assign")
        row = self.require_grid(grid_id)
        st = self._raw("staff")
        target = st[st["staff_id"] == staff_id]
        if target.empty:
            raise ValidationError(f"没有员工 {staff_id}", fix="从本网点的客户经理中选择")
        if str(target["branch_id"].iloc[0]) != str(row["branch_id"]):
            raise PermissionDeniedError(f"员工 {staff_id} 不属于网格 {grid_id} 的网点 {row['branch_id']}")
        grids = self._raw("grids").copy()
        before = grids.loc[grids["grid_id"] == grid_id, "staff_id"].iloc[0]
        grids.loc[grids["grid_id"] == grid_id, "staff_id"] = staff_id
        return plans.update_grids(self.ws, self.plan_id, grids, actor=self.account.username,
                                  action=f"调整网格 {grid_id} 客户经理：{before} → {staff_id}",
                                  expected_revision=expected_revision)

    def export(self, *, fmt: str, out: str | Path, staff_id: str | None = None, grid_code: str | None = None,
               unmask: bool = False) -> dict[str, Any]:
        """Export this account's part of the plan (see :func:`grids.export.export_plan`), never more."""
        from grids.export import export_plan

        acc = self.account
        acc.require("export")
        if unmask:
            acc.require("view_personal")
        branch_id = None
        if acc.can("read_branch"):
            branch_id = acc.branch_id
            if staff_id is not None and staff_id not in set(self.staff()["staff_id"]):
                raise PermissionDeniedError(f"员工 {staff_id} 不属于你的网点")
        elif acc.can("read_own"):
            if staff_id not in (None, acc.staff_id):
                raise PermissionDeniedError("客户经理只能导出自己的网格")
            staff_id = acc.staff_id
        if grid_code is not None:
            g = self.grids()
            if not ((g["code"] == grid_code) | (g["grid_id"] == grid_code)).any():
                raise PermissionDeniedError(f"网格 {grid_code} 不在你的管辖范围内")
        if not acc.can("read_all") and staff_id is None and grid_code is None and branch_id is None:
            raise PermissionDeniedError("没有可导出的范围")
        return export_plan(self.ws, fmt=fmt, out=out, plan=self.plan_id, branch_id=branch_id, staff_id=staff_id,
                           grid_code=grid_code, unmask=unmask, actor=acc.username)

    def _audit_personal(self, *, purpose: str, rows: int) -> None:
        with self.ws.transaction(actor=self.account.username, action="查看明文个人信息") as tx:
            tx.note("households", {"purpose": purpose, "rows": rows, "plan_id": self.plan_id})
