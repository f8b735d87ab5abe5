"""The scoped workspace: what one signed-in account may read and change, enforced below the pages.

Every page, map, table, export and download reads through a :class:`ScopedWorkspace`, never through the raw
:class:`~grids.workspace.Workspace`:

- ``admin``, ``leadership``, ``planner``: the whole county;
- ``branch_manager``: the grids whose ``branch_id`` is their branch, the households located in those grids,
  their branch's staff;
- ``customer_manager``: the grids whose ``staff_id`` is their own, and the households located there.

Households are placed in grids by :func:`grids.coverage.locate_households` against *all* grids of the plan,
then filtered, so a household is never pulled into a scope by a fallback rule. ID numbers and phones are masked
unless the role may see them (``view_personal``) and asks to; each such full view or export is audited. The
survey's income, liabilities and consent are masked the same way (:meth:`ScopedWorkspace.surveys`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast, overload

import geopandas as gpd
import numpy as np
import pandas as pd

from grids import assign, coverage, plans, survey
from grids.auth import Account
from grids.errors import GridsError, PermissionDeniedError, StaleEditError, ValidationError
from grids.privacy import mask_frame, mask_survey_frame
from grids.text import plain
from grids.workspace import Workspace

REFUSALS_AUDITED_PER_MINUTE = 20
"""Refused intents of one account audited per minute at most (a tampered client could otherwise add a row a
request); the refusal itself still applies to every request."""


class ScopedWorkspace:
    """A read/write view of a workspace limited to what ``account`` may see and change.

    Parameters
    ----------
    ws : Workspace
    account : Account
    plan : str, optional
        Plan name or id; default the published plan, else the latest draft.
    require_plan : bool
        Raise (ValidationError) when the workspace has no plan; False for a planner about to build the first.
    """

    def __init__(self, ws: Workspace, account: Account, *, plan: str | None = None,
                 require_plan: bool = True) -> None:
        self.ws = ws
        self.account = account
        try:
            self.plan_id = plans.resolve_plan(ws, plan)
        except ValidationError:
            if require_plan:
                raise
            self.plan_id = ""  # no plan yet: only plan-building intents (build_plan) make sense
        if plan is not None and self.plan_id and not account.can("read_all"):
            # branch and customer managers work on the published plan only: a draft is the planners'
            if plans.plan_info(ws, self.plan_id)["status"] != "published":
                raise PermissionDeniedError(f"{account.role_name}（{account.username}）只能查看和调整已发布的方案")
        self._cache: dict[str, pd.DataFrame] = {}
        self._cache_rev = -1

    # -- cached raw data, refreshed when the workspace revision moves --------------------------------------

    @overload
    def _raw(self, key: Literal["grids", "households", "branches"]) -> gpd.GeoDataFrame: ...

    @overload
    def _raw(self, key: Literal["located", "staff", "surveys", "visits"]) -> pd.DataFrame: ...

    def _raw(self, key: str) -> pd.DataFrame:
        """The workspace's ``key`` (a layer, ``grids``: the plan's, ``located``: where households lie), unscoped."""
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
            elif key == "surveys":
                self._cache[key] = survey.read_surveys(self.ws)
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
            return _equals(grids["branch_id"], acc.branch_id)
        if acc.can("read_own"):
            return _equals(grids["staff_id"], acc.staff_id)
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

    def households(self, *, unmask: bool = False, purpose: str = "查看",
                   columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """Households in scope; ID numbers and phones masked unless ``unmask`` (allowed roles only, audited).

        ``columns``: only these (and the geometry), e.g. the overview's figures without the personal fields
        (nothing to mask then).
        """
        hh = self._raw("households")
        if columns is not None:
            hh = hh[[c for c in dict.fromkeys([*columns, hh.geometry.name]) if c in hh.columns]]
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
        return coverage.funnel(hh, by=by, located=loc, closed=self.closed_ids())

    # -- surveys (农户信息采集): reads scoped like visits, sensitive fields masked like ID numbers ----------

    def _in_scope_ids(self) -> set[str]:
        hh = self._raw("households")
        return set((hh if self.is_county_wide else hh.loc[self.located().index])["hh_id"].astype(str))

    def surveys(self, *, latest: bool = False, unmask: bool = False, purpose: str = "查看") -> pd.DataFrame:
        """Survey rows of in-scope households (every version, or ``latest`` only: one per household).

        Income, liabilities and the consent (:data:`grids.privacy.SURVEY_SENSITIVE_COLUMNS`) are masked unless
        ``unmask`` (roles with ``view_personal``; audited, without any value, before the rows are returned).
        """
        rows = self._raw("surveys")
        if not self.is_county_wide:
            rows = rows[rows["hh_id"].astype(str).isin(self._in_scope_ids())]
        if latest:
            rows = survey.latest_surveys(rows)
        if unmask:
            self.account.require("view_personal")
            self._audit_personal(purpose=f"{purpose}（采集信息）", rows=len(rows))
            return rows.copy()
        return mask_survey_frame(rows)

    def closed_ids(self) -> set[str]:
        """Households whose latest survey says 已迁出 or 不符合条件: off the to-do list and out of the coverage
        denominator (:mod:`grids.survey`)."""
        return survey.closed_ids(self._raw("surveys"))

    def survey_versions(self) -> dict[str, int]:
        """``hh_id`` → the latest survey version of the in-scope households (0: never surveyed); what a form
        carries as ``seen_version``."""
        rows = self._raw("surveys")
        found = survey.next_versions(rows, sorted(self._in_scope_ids()))
        return {h: v - 1 for h, v in found.items()}

    def to_do(self) -> gpd.GeoDataFrame:
        """In-scope households still to be visited: not archived and not closed by their latest survey."""
        hh = self._scoped_households()
        return mask_frame(hh[survey.to_do(hh, self.closed_ids())])

    def surveys_file(self, *, unmask: bool = False, latest: bool = True) -> bytes:
        """The in-scope surveys as an xlsx workbook (Chinese headers; text never runs as a formula).

        Masked unless ``unmask`` (``view_personal``): that export is written to the audit before the bytes
        exist. Needs ``export``.
        """
        from grids.export import frame_xlsx

        self.account.require("export")
        if unmask:
            self.account.require("view_personal")
            rows = self._raw("surveys")
            if not self.is_county_wide:
                rows = rows[rows["hh_id"].astype(str).isin(self._in_scope_ids())]
            with self.ws.transaction(actor=self.account.username, action="导出（含明文个人信息）") as tx:
                tx.note("surveys", {"op": "download", "what": "农户信息采集", "format": "xlsx",
                                    "rows": len(survey.latest_surveys(rows)) if latest else len(rows),
                                    "plan_id": self.plan_id})
        else:
            rows = self.surveys()
        return frame_xlsx(survey.export_frame(rows, latest=latest), title="农户信息采集")

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

    def _require_households(self, hh_ids: list[str]) -> None:
        """PermissionDeniedError naming the first households of ``hh_ids`` outside the scope."""
        hh = self._raw("households")
        inside = set((hh if self.is_county_wide else hh.loc[self.located().index])["hh_id"].astype(str))
        out = [h for h in hh_ids if h not in inside]
        if out:
            raise PermissionDeniedError(f"农户 {'、'.join(out[:5])} 不在你的管辖范围内（{self.account.role_name}）")

    def require_household(self, hh_id: str) -> pd.Series:
        """The in-scope household row ``hh_id`` (masked), or PermissionDeniedError."""
        hh = self._raw("households")
        idx = hh.index if self.is_county_wide else self.located().index
        hit: pd.DataFrame = hh.loc[idx][hh.loc[idx, "hh_id"] == hh_id]
        if hit.empty:
            raise PermissionDeniedError(f"农户 {hh_id} 不在你的管辖范围内（{self.account.role_name}）")
        return mask_frame(hit).iloc[0]

    # -- changes: intents keyed by ids, decided here ------------------------------------------------------
    #
    # Every write a page makes is one of these methods. Each takes ids and the row versions the user saw,
    # checks the role, the scope, the read-only fields and the product rules, and judges staleness on the rows
    # it touches only. A refused intent is recorded in the audit (action “拒绝：…”, with who, what and why)
    # and raised; nothing else is written.

    @contextmanager
    def _intent(self, action: str, layer: str, what: Mapping[str, Any]) -> Iterator[None]:
        """Run one intent; a refusal (any GridsError) is audited as refused, then re-raised."""
        try:
            yield
        except GridsError as exc:
            detail = {**_bounded(what), "reason": str(exc), "error": type(exc).__name__}
            since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            with self.ws.transaction(actor=self.account.username, action=f"拒绝：{action}") as tx:
                recent = tx.read("audit", where='actor = ? AND action LIKE ? AND "at" >= ?',
                                 params=[self.account.username, "拒绝：%", since])
                if len(recent) < REFUSALS_AUDITED_PER_MINUTE:  # a tampered client cannot flood the trail
                    tx.note(layer, detail)
            raise

    def _check_grid_rows(self, rows: pd.DataFrame, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Scope and value rules of a staffing change, on the touched rows as stored."""
        out = rows[~self.grid_mask(rows).to_numpy()]
        if len(out):
            raise PermissionDeniedError(
                f"网格 {'、'.join(out['grid_id'].astype(str).head(5))} 不在你的管辖范围内（{self.account.role_name}）")
        staff = assign.assignable_staff(self._raw("staff"))
        branch_of = dict(zip(staff["staff_id"].astype(str), staff["branch_id"].astype(str), strict=True))
        grid_branch = dict(zip(rows["grid_id"].astype(str), rows["branch_id"].astype(object), strict=True))
        for gid, fields in changes.items():
            if "staff_id" in fields:
                sid = fields["staff_id"]
                if not isinstance(sid, str) or not sid:
                    raise ValidationError(f"网格 {gid} 的客户经理不能为空", column="staff_id",
                                          fix="从本网点的客户经理中选择")
                if sid not in branch_of:
                    raise ValidationError(f"没有客户经理 {sid}", column="staff_id", fix="从本网点的客户经理中选择")
                if branch_of[sid] != str(grid_branch[gid]) or (
                        self.account.can("read_branch") and branch_of[sid] != self.account.branch_id):
                    raise PermissionDeniedError(
                        f"员工 {sid}（网点 {branch_of[sid]}）不能负责网格 {gid}（网点 {grid_branch[gid]}）："
                        "网格只能分给它所属网点的客户经理")
            if "locked" in fields and not isinstance(fields["locked"], bool | np.bool_):
                raise ValidationError(f"网格 {gid} 的锁定状态 “{fields['locked']}” 无效", column="locked",
                                      fix="勾选或取消勾选")

    def assign_grids(self, changes: Mapping[str, Mapping[str, Any]], *, seen: Mapping[str, int],
                     action: str = "调整网格分配") -> int:
        """Change who serves some grids, and their lock, as an intent; returns the plan's new revision.

        Parameters
        ----------
        changes : mapping
            ``grid_id`` → ``{"staff_id": …, "locked": …}`` (either or both). Any other field (``grid_id``,
            ``name``, ``households``, ``branch_id``…) is read-only here and refuses the whole intent.
        seen : mapping
            ``grid_id`` → the row version the user saw (:func:`grids.plans.versions` of what was shown).
        action : str
            What the audit calls it (``网点 B01 自动均衡``…).

        Raises
        ------
        PermissionDeniedError
            No ``assign`` permission; a grid outside the scope; staff of another branch than the grid's (or,
            for a branch manager, than the account's).
        StaleEditError
            A touched grid changed since it was read (other grids do not matter).
        ValidationError
            Read-only field, unknown grid or staff, a lock that is not true/false.
        """
        what = {"plan_id": self.plan_id, "changes": {str(k): dict(v) for k, v in changes.items()},
                "seen": dict(seen)}
        with self._intent(action, "grids", what):
            self.account.require("assign")
            return plans.edit_grid_rows(self.ws, self.plan_id, changes, seen=seen, actor=self.account.username,
                                        action=action, check=lambda rows: self._check_grid_rows(rows, changes))

    def reassign_grid(self, grid_id: str, staff_id: str, *, seen_version: int | None = None) -> int:
        """Give one in-scope grid to another staff member of the same branch; returns the plan revision.

        ``seen_version`` is the grid's version the user saw (None: the current one, for scripts).
        """
        g = self._raw("grids")
        if seen_version is None:
            seen_version = plans.versions(g).get(str(grid_id), 0)
        hit = g.loc[g["grid_id"] == grid_id, "staff_id"]
        before = hit.iloc[0] if len(hit) else None
        return self.assign_grids({grid_id: {"staff_id": staff_id}}, seen={grid_id: seen_version},
                                 action=f"调整网格 {grid_id} 客户经理：{before} → {staff_id}")

    def save_plan_edits(self, plan_id: str, grids: gpd.GeoDataFrame, *, base: gpd.GeoDataFrame,
                        action: str = "编辑网格方案") -> int:
        """Save a planner's edited draft (see :func:`grids.plans.save_edits`); returns the new revision.

        Raises
        ------
        PermissionDeniedError
            The role cannot edit plans.
        StaleEditError
            A grid the edit touches changed since ``base`` was read.
        """
        touched = len(grids)
        with self._intent(action, "plans", {"plan_id": plan_id, "grids": touched}):
            self.account.require("edit_plans")
            return plans.save_edits(self.ws, plan_id, grids, base=base, actor=self.account.username, action=action)

    def publish_plan(self, plan_id: str, *, expected_revision: int | None = None, accept_conflicts: bool = False,
                     force_reason: str | None = None) -> int:
        """Publish a draft (see :func:`grids.plans.publish_plan`: live reassignments carried in, conflicts refused
        unless accepted, errors refused unless forced with a reason); ``publish`` permission; refusals audited."""
        what = {"plan_id": plan_id, "expected_revision": expected_revision, "accept_conflicts": accept_conflicts,
                "force_reason": force_reason}
        with self._intent("发布网格方案", "plans", what):
            self.account.require("publish")
            return plans.publish_plan(self.ws, plan_id, actor=self.account.username,
                                      expected_revision=expected_revision, accept_conflicts=accept_conflicts,
                                      force_reason=force_reason)

    def build_plan(self, *, name: str, min_households: int, max_households: int, assign: bool = True,
                   progress: Callable[[str], None] | None = None) -> str:
        """Build a draft plan from the workspace (and assign branches and staff); ``edit_plans`` permission.

        See :func:`grids.build.build_workspace_plan` and :func:`grids.pipeline.assign_workspace_plan`; returns
        the new draft's ``plan_id``.
        """
        from grids.build import build_workspace_plan
        from grids.pipeline import assign_workspace_plan

        what = {"name": name, "min_households": min_households, "max_households": max_households}
        with self._intent(f"生成网格方案 {name}", "plans", what):
            self.account.require("edit_plans")
            pid = build_workspace_plan(self.ws, name=name, min_households=min_households,
                                       max_households=max_households, progress=progress,
                                       actor=self.account.username)
            if assign:
                if progress is not None:
                    progress("分配网点与客户经理…")
                assign_workspace_plan(self.ws, pid, actor=self.account.username)
            return pid

    def new_draft(self, source_plan_id: str, *, name: str) -> str:
        """A new draft copied from ``source_plan_id`` (``edit_plans`` permission); returns its ``plan_id``."""
        with self._intent(f"新建草稿 {name}", "plans", {"from_plan": source_plan_id, "name": name}):
            self.account.require("edit_plans")
            return plans.save_draft(self.ws, plans.read_grids(self.ws, source_plan_id), name=name,
                                    actor=self.account.username, params={"from_plan": source_plan_id})

    def household_versions(self) -> dict[str, int]:
        """``hh_id`` → row version of the in-scope households (what a page carries with what it shows)."""
        hh = self._raw("households")
        if not self.is_county_wide:
            hh = hh.loc[self.located().index]
        v = hh["version"] if "version" in hh.columns else pd.Series(0, index=hh.index)
        return dict(zip(hh["hh_id"].astype(str), pd.to_numeric(v, errors="coerce").fillna(0).astype(int),
                        strict=True))

    def set_quotas(self, quotas: Mapping[str, Any], *, branch_default: Any = ...) -> int:
        """Set visit quotas (households per visit day; None/"" = use the branch default) of customer managers,
        and with ``branch_default`` the default of the account's branch (:mod:`grids.progress`).

        Branch managers set them for their own branch's staff only, admins for anyone (``assign``
        permission); one audited transaction with each change before/after; returns the new revision.
        """
        from grids.progress import check_quota

        what = {"quotas": dict(quotas), "branch_default": None if branch_default is ... else branch_default}
        with self._intent("设置走访定额", "staff", what):
            self.account.require("assign")
            staff = self._raw("staff")
            ids = staff["staff_id"].astype(str)
            mine = _equals(staff["branch_id"], self.account.branch_id).to_numpy()
            allowed = set(ids) if self.is_county_wide else set(ids[mine])
            unknown = [k for k in quotas if str(k) not in set(ids)]
            if unknown:
                raise ValidationError(f"没有员工 {'、'.join(map(str, unknown[:5]))}", fix="从本网点的客户经理中选择")
            outside = [k for k in quotas if str(k) not in allowed]
            if outside:
                raise PermissionDeniedError(f"员工 {'、'.join(map(str, outside[:5]))} 不在你的管辖范围内"
                                            f"（{self.account.role_name}）")
            values = {str(k): check_quota(v) for k, v in quotas.items()}
            branch_id = self.account.branch_id
            if branch_default is not ... and not branch_id:
                raise ValidationError("只有网点主任能设置本网点的默认定额", fix="在人员分配页按客户经理设置")
            default = None if branch_default is ... else check_quota(branch_default)
            with self.ws.transaction(actor=self.account.username, action="设置走访定额") as tx:
                changes = []
                for sid, q in values.items():
                    tx.execute("UPDATE staff SET quota_per_day = ? WHERE staff_id = ?", (q, sid))
                    changes.append({"staff_id": sid, "quota_per_day": q})
                if branch_default is not ...:
                    tx.execute("UPDATE branches SET quota_per_day = ? WHERE branch_id = ?", (default, branch_id))
                    changes.append({"branch_id": branch_id, "quota_per_day": default})
                tx.note("staff", {"op": "update", "quotas": changes[:200]})
            return self.ws.revision

    def record_visit(self, hh_id: str, *, visited_on: Any, outcome: str, note: str = "",
                     seen_version: int | None = None) -> None:
        """Record a visit to an in-scope household (customer managers and admins); ``已建档`` archives it.

        ``seen_version`` is the household's version the user saw: when the household changed since, the visit
        is refused (:class:`~grids.errors.StaleEditError`); visits to other households never refuse it.
        """
        from grids.model import VISIT_OUTCOMES

        what = {"hh_id": hh_id, "outcome": outcome, "visited_on": str(visited_on), "seen": seen_version}
        with self._intent("记录走访", "visits", what):
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
                version = _version(before)
                if seen_version is not None and int(seen_version) != version:
                    raise StaleEditError(ids=[hh_id])
                tx.append("visits", pd.DataFrame({"hh_id": [hh_id], "staff_id": [staff_id], "visited_on": [day],
                                                  "outcome": [outcome], "note": [note]}))
                was = bool(before["archived"].iloc[0]) if pd.notna(before["archived"].iloc[0]) else False
                if outcome == "已建档" and not was:
                    tx.execute("UPDATE households SET archived = ?, version = COALESCE(version, 0) + 1 "
                               "WHERE hh_id = ?", (True, hh_id))
                tx.note("households", {"hh_id": hh_id, "outcome": outcome, "archived_before": was,
                                       "archived_after": True if outcome == "已建档" else was})

    def save_ratings(self, ratings: pd.DataFrame, *, seen: Mapping[str, int]) -> int:
        """Save a rating batch (keyed by ``hh_id``) for in-scope households; returns the number saved.

        Only ``grade``, ``granted_amount`` and ``guarantee`` may be given besides ``hh_id``; the product
        rules of :func:`grids.credit.record_ratings` apply, and no grant may exceed the branch's approval authority
        (larger ones go through a rating session, :meth:`record_rating_session`); each household's version must
        equal ``seen``. Only an administrator may grant or increase here (corrections, audited): everyone else
        may only lower or cancel a grant or change its grade, guarantee or 职务级别 — grants come from a rating
        session. A household whose session decision waits for the credit committee is refused.
        The audit records each household's before/after (see :func:`grids.credit.save_ratings`).

        Raises
        ------
        PermissionDeniedError
            No ``rate`` permission, or a household outside the scope.
        StaleEditError
            A household of the batch changed since it was read.
        ValidationError
            A read-only column, a duplicate household, a rating that breaks the product rules.
        """
        from grids import credit

        ids = [str(h) for h in ratings["hh_id"]] if "hh_id" in ratings.columns else []
        what = {"rows": len(ratings), "hh_ids": ids[:50],
                "ratings": ratings.head(50).astype(object).where(ratings.head(50).notna(), None).to_dict("records")}
        with self._intent("集中授信评级", "households", what):
            self.account.require("rate")
            bad = [c for c in ratings.columns if c not in ("hh_id", *credit.RATING_FIELDS)]
            if bad or "hh_id" not in ratings.columns:
                raise ValidationError(f"评级只能修改{'、'.join(credit.RATING_FIELDS)}；"
                                      f"{'、'.join(map(str, bad)) or 'hh_id'} 不能在这里修改",
                                      column=str(bad[0]) if bad else "hh_id", fix="刷新页面后重新填写")
            self._require_households(ids)
            return credit.save_ratings(self.ws, ratings, actor=self.account.username, seen=seen,
                                       branch_id=self.account.branch_id, within_authority=True,
                                       only_lower=self.account.role != "admin")

    def record_rating_session(self, *, village_code: str, held_on: Any, place: str, panel: Any,
                              decisions: pd.DataFrame, minutes: str = "", seen: Mapping[str, int] | None = None,
                              expected_revision: int | None = None) -> Any:
        """Record a village's rating session (集中授信评定会): see :func:`grids.sessions.record_session`
        (scope, panel, votes, authority and product rules decided there; refusals audited)."""
        from grids import sessions

        ids = [str(h) for h in decisions["hh_id"]] if "hh_id" in decisions.columns else []
        what = {"village_code": village_code, "held_on": str(held_on), "place": place, "rows": len(decisions),
                "hh_ids": ids[:50]}
        with self._intent("集中授信评定会", sessions.DECISIONS_LAYER, what):
            return sessions.record_session(self, village_code=village_code, held_on=held_on, place=place,
                                           panel=panel, decisions=decisions, minutes=minutes, seen=seen,
                                           expected_revision=expected_revision)

    def record_session_from_table(self, *, village_code: str, held_on: Any, place: str, panel: Any,
                                  shown: pd.DataFrame, edited: pd.DataFrame, members: Sequence[str],
                                  seen: Mapping[str, int] | None = None) -> Any:
        """:meth:`record_rating_session` from the page's vote table: the households are those of ``shown`` (the
        table the server drew) by position (:func:`grids.sessions.decisions_from_votes`: a changed read-only cell
        or an added row refuses); refusals audited."""
        from grids import sessions

        what = {"village_code": village_code, "held_on": str(held_on), "place": place, "rows": len(edited),
                "members": list(members)[:10]}
        with self._intent("集中授信评定会", sessions.DECISIONS_LAYER, what):
            decisions = sessions.decisions_from_votes(shown, edited, members)
            return sessions.record_session(self, village_code=village_code, held_on=held_on, place=place,
                                           panel=panel, decisions=decisions, seen=seen)

    def review_queue(self, *, include: Sequence[str] = ()) -> pd.DataFrame:
        """Decisions waiting for the credit committee that this account may read, plus ``include``
        (:func:`grids.sessions.review_queue`)."""
        from grids import sessions

        return sessions.review_queue(self, include=include)

    def approve_decision(self, decision_id: str, *, note: str = "") -> dict[str, Any]:
        """贷审会审批通过 (``review_credit``): :func:`grids.sessions.approve`; refusals audited."""
        from grids import sessions

        with self._intent("贷审会审批通过", sessions.DECISIONS_LAYER, {"decision_id": decision_id, "note": note}):
            return sessions.approve(self.ws, decision_id, self.account, note=note)

    def return_decision(self, decision_id: str, *, note: str) -> dict[str, Any]:
        """贷审会退回 (``review_credit``, a reason required): :func:`grids.sessions.return_`; refusals audited."""
        from grids import sessions

        with self._intent("贷审会退回", sessions.DECISIONS_LAYER, {"decision_id": decision_id, "note": note}):
            return sessions.return_(self.ws, decision_id, self.account, note)

    def set_credit_rule(self, *, branch_id: str, product: str = "", grade: str = "", **values: Any) -> dict[str, Any]:
        """Set or remove one branch's product-rule override (administrators only, audited; refusals audited too):
        see :func:`grids.credit_rules.set_branch_rule`."""
        from grids import credit_rules

        what = {"branch_id": branch_id, "product": product, "grade": grade, **values}
        with self._intent("修改产品规则", credit_rules.RULES_LAYER, what):
            return credit_rules.set_branch_rule(self.ws, account=self.account, branch_id=branch_id, product=product,
                                                grade=grade, **values)

    def whitelist_file(self, village_code: str, *, fmt: str = "csv", unmask: bool = False) -> bytes:
        """The village's whitelist as a file (CSV, UTF-8 with BOM; or xlsx), made only on request.

        With ``unmask`` (roles with ``view_personal``) the full ID numbers and phones are in it, and the export
        is written to the audit *before* the bytes exist; a failed audit means no file.

        Raises
        ------
        PermissionDeniedError
            ``unmask`` without ``view_personal``.
        ValidationError
            Unknown village or format.
        """
        from grids import credit

        if fmt not in ("csv", "xlsx"):
            raise ValidationError(f"不支持的格式 {fmt}", fix="csv 或 xlsx")
        if unmask:
            self.account.require("view_personal")
            white = credit.whitelist(self._scoped_households(), village_code, unmask=True)
            with self.ws.transaction(actor=self.account.username, action="导出（含明文个人信息）") as tx:
                tx.note("households", {"op": "download", "what": f"白名单 {village_code}", "format": fmt,
                                       "rows": len(white), "plan_id": self.plan_id})
        else:
            white = credit.whitelist(self.households(), village_code)
        return credit.whitelist_bytes(white, fmt=fmt)

    def _scoped_households(self) -> gpd.GeoDataFrame:
        hh = self._raw("households")
        return (hh if self.is_county_wide else hh.loc[self.located().index]).copy()

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

    # -- staff lifecycle (issue 16): newcomer, leaver, move; staff accounts ---------------------------------
    #
    # Admins act on any branch; a branch manager on their own branch only: adds to it, records its leavers,
    # moves its staff out (the source branch's manager: the branch that releases someone records it; the
    # receiving branch is only rebalanced by the same fewest-moves rule, audited, and its manager can adjust
    # afterwards). Customer managers, planners and leadership cannot. The library recomputes every change from
    # the ids it is given; the page's preview is never trusted.

    def _require_staff_change(self, action: str, *, staff_id: str | None = None,
                              branch_id: str | None = None) -> None:
        acc = self.account
        acc.require("manage_staff")
        if acc.can("read_all"):
            return
        if action == "add":
            if str(branch_id) != acc.branch_id:
                raise PermissionDeniedError(f"{acc.role_name}（{acc.username}）只能在本网点（{acc.branch_id}）新增员工，"
                                            f"不能在网点 {plain(branch_id)}")
            return
        st = self._raw("staff")
        hit = st[st["staff_id"].astype(str) == str(staff_id)]
        if hit.empty or str(hit["branch_id"].iloc[0]) != acc.branch_id:
            raise PermissionDeniedError(f"员工 {plain(staff_id)} 不属于你的网点（{acc.branch_id}）："
                                        f"{acc.role_name}只能登记本网点员工的离职和调出")

    def staff_preview(self, action: str, *, staff_id: str | None = None, person: Mapping[str, Any] | None = None,
                      to_branch: str | None = None) -> Any:
        """What a lifecycle change would do (:func:`grids.lifecycle.preview`), in scope; nothing written (a
        refusal is audited like any intent's)."""
        from grids import lifecycle

        branch = (person or {}).get("branch_id")
        what = {"action": action, "staff_id": staff_id, "to": to_branch,
                "person": {k: (None if v is None else str(v)) for k, v in dict(person or {}).items()}}
        with self._intent(f"预览人员变动 {plain(staff_id or branch)}", "staff", what):
            self._require_staff_change(action, staff_id=staff_id, branch_id=branch)
            return lifecycle.preview(self.ws, action, staff_id=staff_id, person=person, to_branch=to_branch)

    def _staff_intent(self, action: str, label: str, what: dict[str, Any], *, seen: Mapping[str, int] | None,
                      **kw: Any) -> Any:
        from grids import lifecycle

        with self._intent(label, "staff", {**what, "seen": dict(seen) if seen is not None else None}):
            branch = (kw.get("person") or {}).get("branch_id")
            self._require_staff_change(action, staff_id=kw.get("staff_id"), branch_id=branch)
            change = lifecycle.preview(self.ws, action, **kw)  # always the published plan
            return lifecycle.save(self.ws, change, actor=self.account.username, seen=seen)

    def staff_leave(self, staff_id: str, *, seen: Mapping[str, int] | None = None) -> Any:
        """Record a leaver (:func:`grids.lifecycle.leave`) in one transaction; returns the saved change.

        ``seen``: ``grid_id`` → version of every grid of the branch as the user saw it (None: now, for scripts).

        Raises
        ------
        PermissionDeniedError
            No ``manage_staff``; a branch manager naming another branch's staff.
        StaleEditError
            A grid of the branch, or its staff list, changed since it was read.
        ValidationError
            Unknown or already-left staff; nobody left to take the grids.
        """
        return self._staff_intent("leave", f"登记离职 {plain(staff_id)}", {"staff_id": staff_id}, seen=seen,
                                  staff_id=staff_id)

    def staff_add(self, person: Mapping[str, Any], *, seen: Mapping[str, int] | None = None) -> Any:
        """Add a staff member (``staff_id``, ``name``, ``branch_id``, ``role``, ``phone``) who takes grids with
        fewest moves (:func:`grids.lifecycle.add`); a branch manager to their own branch only."""
        what = {k: (None if v is None else str(v)) for k, v in dict(person).items()}
        return self._staff_intent("add", f"新增员工 {plain(person.get('staff_id'))}", {"person": what}, seen=seen,
                                  person=dict(person))

    def staff_move(self, staff_id: str, to_branch: str, *, seen: Mapping[str, int] | None = None) -> Any:
        """Move a staff member to another branch (:func:`grids.lifecycle.move`): admin, or the manager of the
        branch they leave; ``seen`` covers the grids of both branches."""
        return self._staff_intent("move", f"员工调动 {plain(staff_id)}", {"staff_id": staff_id, "to": to_branch},
                                  seen=seen, staff_id=staff_id, to_branch=to_branch)

    def set_staff_account_active(self, username: str, active: bool) -> None:
        """Enable or disable a staff member's account (:func:`grids.auth.set_staff_account_active`): a branch
        manager their own branch's staff only, an admin any."""
        from grids.auth import set_staff_account_active

        with self._intent("启用账号" if active else "停用账号", "accounts", {"username": username, "active": active}):
            if not (self.account.can("manage_accounts") or self.account.can("manage_staff")):
                raise PermissionDeniedError(f"{self.account.role_name}（{self.account.username}）无权启用或停用账号")
            set_staff_account_active(self.ws, username, bool(active), by=self.account)

    def staff_accounts(self) -> pd.DataFrame:
        """The accounts bound to the in-scope staff (username, staff_id, active), without password hashes."""
        st = self.staff()
        acc = self.ws.read("accounts", columns=["username", "display_name", "role", "branch_id", "staff_id", "active"])
        return acc[acc["staff_id"].astype(str).isin(set(st["staff_id"].astype(str)))].reset_index(drop=True)

    # -- surveys: the record_survey intent and the import of a workbook -----------------------------------

    def _survey_staff(self, hh_id: str, staff_id: str | None) -> tuple[str, str]:
        """Who a survey of ``hh_id`` is recorded for (staff, branch), decided by the role; forged ids refused."""
        acc = self.account
        staff = self._raw("staff")
        branch_of = dict(zip(staff["staff_id"].astype(str), staff["branch_id"].astype(object), strict=True)) \
            if len(staff) else {}
        if acc.can("read_own"):
            if staff_id not in (None, "", acc.staff_id):
                raise PermissionDeniedError(f"客户经理只能以自己的名义记录采集（{acc.username} 不能代 {staff_id} 记录）")
            sid = acc.staff_id or ""
            return sid, str(acc.branch_id or branch_of.get(sid) or "")
        if staff_id:
            if staff_id not in branch_of:
                raise ValidationError(f"没有员工 {staff_id}", column="客户经理编号", fix="填写本网点客户经理的员工编号")
            if acc.can("read_branch") and str(branch_of[staff_id]) != str(acc.branch_id):
                raise PermissionDeniedError(f"员工 {staff_id} 不属于你的网点（{acc.branch_id}）")
            return staff_id, str(branch_of[staff_id] or "")
        if acc.can("read_branch"):
            return acc.staff_id or "", str(acc.branch_id or "")
        row = self._grid_of(hh_id)
        sid = "" if row is None or pd.isna(row.get("staff_id")) else str(row["staff_id"])
        bid = "" if row is None or pd.isna(row.get("branch_id")) else str(row["branch_id"])
        return sid or (acc.staff_id or ""), bid or str(branch_of.get(sid) or "")

    def _grid_of(self, hh_id: str) -> pd.Series | None:
        """The located row (grid, branch, staff) of household ``hh_id``; None without a plan or a grid."""
        if not self.plan_id:
            return None
        hh = self._raw("households")
        hit = hh.index[hh["hh_id"].astype(str) == hh_id]
        if not len(hit):
            return None
        loc = self._raw("located")
        return loc.loc[hit[0]] if hit[0] in loc.index else None

    def record_survey(self, hh_id: str, fields: Mapping[str, Any], *, staff_id: str | None = None,
                      seen_version: int | None = None) -> str:
        """Record one survey of an in-scope household as its next version; returns the ``survey_id``.

        Customer managers record for the households of their grids, in their own name; branch managers for
        their branch (optionally in the name of one of their staff); administrators for the county. The
        survey's values are checked by :func:`grids.survey.validate_survey`; 已建档 archives the household.
        The audit row names the survey, household, version, outcome and staff, never a value.

        Parameters
        ----------
        hh_id : str
        fields : mapping
            Survey column → value (:data:`grids.survey.FIELDS`; ``hh_id`` may be left out). The columns the
            library fills in (``version``, ``staff_id``…) are refused.
        staff_id : str, optional
            Branch managers and administrators: the customer manager who surveyed.
        seen_version : int, optional
            The household's survey version the user saw (0: none); a survey saved since refuses this one
            (:class:`~grids.errors.StaleEditError`).

        Raises
        ------
        PermissionDeniedError
            The role records no surveys; a household outside the scope; staff of another branch or person.
        ValidationError
            A value out of range, a missing required field (:class:`grids.survey.SurveyProblem`).
        StaleEditError
            The household was surveyed since ``seen_version``.
        """
        what = {"hh_id": str(hh_id)[:64], "outcome": str(fields.get("outcome"))[:16], "staff_id": staff_id,
                "seen": seen_version}
        with self._intent("农户信息采集", "surveys", what):
            if not survey.may_record(self.account):
                raise PermissionDeniedError(f"{self.account.role_name}（{self.account.username}）无权记录农户信息采集")
            record = survey.validate_survey({"hh_id": hh_id, **dict(fields)})
            if fields.get("hh_id") not in (None, hh_id):
                raise ValidationError("采集表里的户号与所选农户不一致", column="户号", fix="刷新页面后重新填写")
            hid = record["hh_id"]
            self._require_households([hid])
            sid, bid = self._survey_staff(hid, staff_id)
            seen = None if seen_version is None else {hid: int(seen_version)}
            (out,) = survey.write_surveys(self.ws, [{**record, "staff_id": sid, "branch_id": bid}],
                                          actor=self.account.username, action="农户信息采集", seen=seen)
            return out

    def import_surveys(self, file: str | Path, *, sheet: str | None = None, strict: bool = False,
                       rejects_path: str | Path | None = None) -> Any:
        """Import a surveys workbook (xlsx or CSV, Chinese headers of :data:`grids.survey.EXPORT_LABELS`).

        Each valid row of an in-scope household is saved as that household's next version, all in one
        transaction (a failure leaves the workspace as it was). A row that breaks a rule, names a household
        outside the scope or a staff member the account may not name is rejected: the rejects file (CSV) gives
        file, row, column, reason and fix, then the row as it was. ``strict``: any reject, nothing imported.

        Returns
        -------
        grids.ingest.ImportReport
            ``imported``, ``rejected``, ``summary()``, ``rejects_path``.
        """
        from grids.ingest import REJECT_COLUMNS, ImportReport, read_table

        source = Path(file)
        with self._intent("导入农户信息采集", "surveys", {"file": source.name[:120]}):
            if not survey.may_record(self.account):
                raise PermissionDeniedError(f"{self.account.role_name}（{self.account.username}）无权导入农户信息采集")
            table = read_table(source, layer=sheet)
            raw = pd.DataFrame(table.frame.drop(columns=table.frame.geometry.name))
            frame, notes = survey.import_frame(raw)
            problems: list[tuple[int, str, str, str]] = [
                (int(r), str(c), str(why), str(fix)) for r, c, why, fix in table.row_problems]
            inside = self._in_scope_ids()
            known = set(self._raw("households")["hh_id"].astype(str))
            taken: list[tuple[int, dict[str, Any]]] = []
            for label, values in frame.iterrows():
                row = cast(int, label)  # the index is the row number in the file (survey.import_frame)
                rec = {str(k): v for k, v in values.items() if k != "staff_id"}
                clean, found = survey.survey_problems(rec)
                here = [(int(row), survey.EXPORT_LABELS.get(c, c), why, fix) for c, why, fix in found]
                hid = clean["hh_id"]
                if hid and hid not in known:
                    here.append((int(row), "户号", f"没有户号为 {hid} 的农户", "核对户号，或先导入该户的登记信息"))
                elif hid and hid not in inside:
                    here.append((int(row), "户号", f"农户 {hid} 不在你的管辖范围内（{self.account.role_name}）",
                                 "只导入自己网格（网点）的农户；其他农户交给负责的客户经理"))
                if not here:
                    given = values.get("staff_id")
                    try:
                        sid, bid = self._survey_staff(hid, None if survey._blank(given) else str(given).strip())
                    except (PermissionDeniedError, ValidationError) as exc:
                        here.append((int(row), "客户经理编号", str(exc), "填写自己（或本网点客户经理）的员工编号"))
                    else:
                        taken.append((int(row), {**clean, "staff_id": sid, "branch_id": bid}))
                problems += here
            bad_rows = sorted({p[0] for p in problems})
            records = [rec for row, rec in taken if row not in set(bad_rows)]
            rejects = _survey_rejects(problems, raw, source.name, REJECT_COLUMNS)
            report = ImportReport(accepted=frame.drop(index=bad_rows), rejects=rejects,
                                  warnings=[*table.warnings, *notes], source=source.name,
                                  layer="surveys", mode="append", read=len(frame), strict=strict)
            if records and not (strict and problems):
                survey.write_surveys(self.ws, records, actor=self.account.username, action="导入农户信息采集",
                                     extra_note={"file": source.name[:120], "rows_read": len(frame),
                                                 "rows_rejected": len(bad_rows)})
                report.imported, report.written = len(records), True
            if problems:
                report.write_rejects(rejects_path or survey.rejects_path_for(source))
            return report

    # -- 签约发卡 and 用信 (grids.credit_events): a teller's narrow path, not a read of households -------------

    def find_customer(self, *, card_no: str | None = None, id_number: str | None = None) -> dict[str, Any] | None:
        """:func:`grids.credit_events.find_customer` (the minimal view of one signed customer; audited)."""
        from grids import credit_events

        return credit_events.find_customer(self.ws, self.account, card_no=card_no, id_number=id_number)

    def serve_credit(self, kind: str, hh_id: str, *, amount: float, branch_id: str | None = None) -> dict[str, Any]:
        """A drawdown (``用信``) or repayment (``还款``) of a customer this account just found
        (:func:`grids.credit_events.draw`/``repay`` with ``found``); a refusal is audited as refused."""
        from grids import credit_events

        fn = {credit_events.DRAW: credit_events.draw, credit_events.REPAY: credit_events.repay}.get(kind)
        with self._intent(str(kind)[:10], credit_events.EVENTS_LAYER,
                          {"hh_id": credit_events.shown_id(self.ws, hh_id), "amount": str(amount)[:20],
                           "branch_id": str(branch_id)[:20]}):
            if fn is None:
                raise ValidationError(f"没有 “{str(kind)[:10]}” 这种业务", fix="选择 用信 或 还款")
            return fn(self.ws, self.account, hh_id, amount=amount, branch_id=branch_id, found=True)

    def sign_card(self, hh_id: str, *, amount: float, card_no: str, on: Any = None) -> dict[str, Any]:
        """:func:`grids.credit_events.sign` (签约发卡); a refusal is audited as refused (never the card number)."""
        from grids import credit_events

        with self._intent("签约发卡", credit_events.EVENTS_LAYER,  # a card typed into 户号 is kept as its last four
                          {"hh_id": credit_events.shown_id(self.ws, hh_id), "amount": str(amount)[:20]}):
            return credit_events.sign(self.ws, self.account, hh_id, amount, card_no, on=on)

    def _audit_personal(self, *, purpose: str, rows: int) -> None:
        with self.ws.transaction(actor=self.account.username, action="查看明文个人信息") as tx:
            tx.note("households", {"purpose": purpose, "rows": rows, "plan_id": self.plan_id})


def _equals(column: pd.Series, value: str | None) -> pd.Series:
    """Boolean Series: where ``column`` holds ``value`` (False where it is missing; everywhere for None).

    Examples
    --------
    >>> _equals(pd.Series(["B1", None, "B2"]), "B1").tolist(), _equals(pd.Series(["B1", None]), None).tolist()
    ([True, False, False], [False, False])
    """
    if value is None:  # what ``eq(None)`` gives: nothing equals a missing binding
        return pd.Series(False, index=column.index)
    return column.astype(object).eq(value).fillna(False).astype(bool)


def _version(rows: pd.DataFrame) -> int:
    """The ``version`` of the first row (``NULL`` or no column: 0)."""
    if not len(rows) or "version" not in rows.columns or pd.isna(rows["version"].iloc[0]):
        return 0
    return int(rows["version"].iloc[0])


def _bounded(what: Mapping[str, Any], *, limit: int = 4000) -> dict[str, Any]:
    """``what`` for an audit detail: JSON-safe, and cut down when a forged request is huge."""
    text = json.dumps(what, ensure_ascii=False, default=str)
    if len(text) <= limit:
        bounded: dict[str, Any] = json.loads(text)
        return bounded
    return {"truncated": text[:limit]}


def _survey_rejects(problems: list[tuple[int, str, str, str]], raw: pd.DataFrame, source: str,
                    columns: tuple[str, ...]) -> pd.DataFrame:
    """One line per problem: file, row, column, reason, fix (:data:`grids.ingest.REJECT_COLUMNS`), then the
    row's original cells."""
    originals = [c if c not in columns else f"{c}（原）" for c in raw.columns]
    if not problems:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in [*columns, *originals]})
    problems = sorted(problems, key=lambda t: t[0])
    head = pd.DataFrame({columns[0]: source, columns[1]: [p[0] for p in problems],
                         columns[2]: [p[1] for p in problems], columns[3]: [p[2] for p in problems],
                         columns[4]: [p[3] for p in problems]})
    values = raw.loc[[p[0] for p in problems]].reset_index(drop=True).astype(object)
    values.columns = originals
    return pd.concat([head, values], axis=1)
