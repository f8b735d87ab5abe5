"""The audit trail you can check: append-only and hash-chained.

Every committed change adds one row to the ``audit`` table (:meth:`grids.workspace.Transaction._write_audit`, both
backends). The table refuses ``UPDATE`` and ``DELETE`` (SQLite triggers; a PostgreSQL trigger function), and each
row carries ``prev_hash`` (the previous row's ``hash``; :data:`GENESIS` for the first row) and
``hash = sha256(canonical(prev_hash, at, actor, action, layer, revision, detail))`` (:func:`row_hash`). Someone
who edits the file directly (after dropping the triggers) breaks the chain at the row they touched, and
:func:`verify` names that row. Someone who rewrites the whole chain, or cuts rows off its end, is caught by
comparing :func:`chain_head` with a copy kept out of band: the head is shown on 账号与审计 and printed on every
export and report.

Workspaces made before the chain existed are upgraded on open (:mod:`grids.workspace`): the upgrade computes the hashes
of the rows already there once, chained from :data:`GENESIS` in ``fid`` order, and records itself in the audit.
That is the one place where hashes are computed for rows after the fact.

Examples
--------
>>> import tempfile, pathlib, pandas as pd
>>> from grids.workspace import GpkgWorkspace
>>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422", county_name="巴林左旗")
>>> ws.write("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]}), actor="admin")
1
>>> result = verify(ws)
>>> result.ok, result.rows
(True, 1)
>>> chain_head(ws) == result.head
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

GENESIS = "0" * 64
"""The ``prev_hash`` of the first audit row of every workspace."""
HEAD_CHARS = 16
"""How many hex characters of the last hash :func:`chain_head` shows."""


class _AuditSource(Protocol):
    @property
    def revision(self) -> int: ...

    def audit_records(self) -> list[tuple[Any, ...]]: ...

    def audit_head(self) -> tuple[str | None, int]: ...


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def row_hash(prev_hash: str, *, at: str, actor: str | None, action: str | None, layer: str | None,
             revision: int | None, detail: str | None) -> str:
    """The sha256 hex digest of one audit row, chained to ``prev_hash``.

    The canonical serialisation is the compact JSON array ``[prev_hash, at, actor, action, layer, revision,
    detail]`` (UTF-8, no ASCII escaping); ``at`` is the stored text ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Examples
    --------
    >>> row_hash(GENESIS, at="2026-01-01T00:00:00.000Z", actor="admin", action="导入", layer="staff",
    ...          revision=1, detail="[]")[:16]
    'd19ac3e94ab4af23'
    """
    payload = [prev_hash, _text(at), _text(actor), _text(action), _text(layer),
               None if revision is None else int(revision), _text(detail)]
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_rows(rows: list[tuple[Any, ...]], *, prev: str = GENESIS) -> list[tuple[str, str, int]]:
    """``(prev_hash, hash, fid)`` for audit rows ``(fid, at, actor, action, layer, revision, detail)`` in order.

    Used when a row is written and by the one-time upgrade of an older workspace.
    """
    out = []
    for fid, at, actor, action, layer, revision, detail in rows:
        digest = row_hash(prev, at=at, actor=actor, action=action, layer=layer, revision=revision, detail=detail)
        out.append((prev, digest, int(fid)))
        prev = digest
    return out


def _head_text(last_hash: str | None, rows: int) -> str:
    if rows and not last_hash:
        return f"未建立哈希链（{rows} 条）"
    return f"{(last_hash or GENESIS)[:HEAD_CHARS]}（{rows} 条）"


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found.

    Attributes
    ----------
    ok : bool
        Every row's hash matches its content and the previous row's hash.
    rows : int
        Number of audit rows checked.
    head : str
        The chain head as :func:`chain_head` gives it.
    fid, at, actor : optional
        The first broken row (``None`` when ``ok``).
    reason : str, optional
        Why that row is broken.
    """

    ok: bool
    rows: int
    head: str
    fid: int | None = None
    at: str | None = None
    actor: str | None = None
    reason: str | None = None

    def message(self) -> str:
        """One line in Chinese saying whether the trail is intact, or which row is the first broken one."""
        if self.ok:
            return f"审计记录完整：{self.rows} 条，哈希链头 {self.head}"
        return (f"审计记录被改动：第一处断裂在 fid {self.fid}（时间 {self.at}，操作人 {self.actor}）：{self.reason}。"
                "修正方法：从备份恢复工作区，并核对该时间前后的操作")


def verify(ws: _AuditSource) -> VerifyResult:
    """Check the audit hash chain of a workspace (GeoPackage or PostGIS); reads only.

    Parameters
    ----------
    ws : Workspace or PgWorkspace
        The workspace to check.

    Returns
    -------
    VerifyResult
        ``ok`` and the row count, or the first broken row (fid, time, actor) and why.

    Examples
    --------
    See the module docstring.
    """
    records = ws.audit_records()
    prev = GENESIS
    head_hash = None
    for fid, at, actor, action, layer, revision, detail, stored_prev, stored_hash in records:
        reason = None
        if not stored_hash or not stored_prev:
            reason = "该记录没有哈希（在哈希链之外写入）"
        elif stored_prev != prev:
            reason = "它记下的上一条哈希与实际的上一条不符（之前的记录被删除、插入或改动）"
        elif row_hash(prev, at=at, actor=actor, action=action, layer=layer, revision=revision,
                      detail=detail) != stored_hash:
            reason = "内容与其哈希不符（该记录被修改）"
        if reason:
            return VerifyResult(False, len(records), _head_text(records[-1][8], len(records)), fid=int(fid),
                                at=_text(at), actor=_text(actor), reason=reason)
        prev = head_hash = stored_hash
    head = _head_text(head_hash, len(records))
    audited = max((int(r[5]) for r in records if r[5] is not None and not pd.isna(r[5])), default=0)
    if ws.revision > audited:  # every committed change writes its audit row: the last rows were cut off
        last = records[-1] if records else None
        return VerifyResult(False, len(records), head, fid=int(last[0]) if last else None,
                            at=_text(last[1]) if last else "", actor=_text(last[2]) if last else "",
                            reason=f"工作区已是第 {ws.revision} 版，但审计记录只到第 {audited} 版（最后的记录被删除）")
    return VerifyResult(True, len(records), head)


def chain_head(ws: _AuditSource) -> str:
    """The current head of the audit chain: the first 16 hex characters of the last hash and the row count.

    Cheap (one query); shown on 账号与审计 and printed on exports and reports so that it can be compared with a
    copy kept elsewhere: a rewritten or shortened trail has a different head.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from grids.workspace import GpkgWorkspace
    >>> ws = GpkgWorkspace.create(pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg", county_code="150422",
    ...                           county_name="巴林左旗")
    >>> chain_head(ws)
    '0000000000000000（0 条）'
    """
    last_hash, rows = ws.audit_head()
    return _head_text(last_hash, rows)


# --------------------------------------------------------------------------------------------------------
# reading the trail: Beijing time, details in Chinese
# --------------------------------------------------------------------------------------------------------

DETAIL_KEYS: dict[str, str] = {
    "layer": "图层", "op": "操作", "rows": "行数", "rows_before": "原有行数", "rows_after": "现有行数",
    "plan_id": "方案", "revision": "版本", "grids": "网格数", "name": "名称", "where": "条件", "added": "新增",
    "removed": "删除", "changed": "修改", "changed_total": "共修改", "status": "状态", "count": "数量",
    "accounts": "账号", "schema_from": "原结构版本", "schema_to": "新结构版本", "columns_added": "新增列或图层",
    "rows_chained": "补算哈希的行数", "rtree_added": "新增空间索引", "genesis": "链起点", "username": "用户名",
    "usernames": "用户名", "method": "方式", "file": "文件", "what": "内容", "towns": "镇", "to": "目标",
    "rows_recoded": "重编码行数", "purpose": "用途", "outline_coords": "县界坐标系", "outcome": "结果",
    "mode": "写入方式", "known": "账号存在", "keep_demo_accounts": "保留演示账号", "imported": "导入行数",
    "rejected": "拒收行数", "hh_id": "户号", "grids_changed": "改动网格数", "format": "格式", "county": "旗县",
    "code_changes": "代码变更", "changed_rows": "修改行数", "branch_id": "网点", "staff_id": "客户经理",
    "archived_before": "原建档状态", "reason": "原因", "error": "错误类型", "carried": "并入的改派数",
    "carried_grids": "并入改派的网格", "conflicts_overridden": "以草稿为准覆盖的改派", "forced": "带错发布理由",
    "errors": "检查错误数", "expected_revision": "所见版本", "accept_conflicts": "以草稿为准",
    "force_reason": "带错发布理由", "from_plan": "来源方案", "tables": "表", "grid_id": "网格", "live": "已发布方案上",
    "draft": "草稿中", "base": "建草稿时", "locked": "锁定", "seen": "所见版本", "visited_on": "走访日期",
    "role": "角色", "active": "启用", "source": "来源", "target": "目标", "actor": "操作人", "action": "操作",
}
"""English keys of audit details → the Chinese shown on 账号与审计 and 数据管理 (others are shown as written)."""

DETAIL_VALUES: dict[str, str] = {
    "append": "追加", "replace": "替换", "delete": "删除", "update": "修改", "create": "新建", "upgrade": "升级",
    "sign_in": "登录", "sign_in_failed": "登录失败", "sign_out": "退出", "unlock": "解锁", "disable": "停用",
    "enable": "启用", "passwd": "改密码", "set_role": "改角色", "migrate": "迁移", "password": "密码",
    "oidc": "单点登录", "draft": "草稿", "published": "已发布", "archived": "已归档", "external": "外部编辑",
}
"""Codes among audit detail values → Chinese (layer names come from :data:`grids.model.LAYERS`)."""

MAX_LISTED = 10
"""Items of a list shown in a detail before “等 N 个”."""


def _value_text(key: str, value: Any) -> str:
    from grids.model import LAYERS

    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return "无"
    if isinstance(value, dict):
        return "（" + "，".join(f"{DETAIL_KEYS.get(k, k)} {_value_text(k, v)}" for k, v in value.items()) + "）"
    if isinstance(value, list):
        shown = "、".join(_value_text(key, v) for v in value[:MAX_LISTED])
        return shown + (f" 等 {len(value)} 个" if len(value) > MAX_LISTED else "")
    text = str(value)
    if key == "layer" and text in LAYERS:
        return LAYERS[text].description or text
    return DETAIL_VALUES.get(text, text)


def describe_detail(detail: str | None) -> str:
    """An audit row's ``detail`` (JSON written by the library) as one line of Chinese.

    Examples
    --------
    >>> describe_detail('[{"layer": "households", "op": "append", "rows": 2}]')
    '图层 农户与客户（建档与授信信息），操作 追加，行数 2'
    >>> describe_detail('[{"layer": "accounts", "op": "sign_in", "method": "password"}, {"zz": true}]')
    '图层 账号（密码以 argon2 哈希保存），操作 登录，方式 密码；zz 是'
    >>> describe_detail("not json")
    'not json'
    """
    if not detail:
        return ""
    try:
        items = json.loads(detail)
    except (TypeError, ValueError):
        return str(detail)
    items = items if isinstance(items, list) else [items]
    parts = []
    for item in items:
        if isinstance(item, dict):
            parts.append("，".join(f"{DETAIL_KEYS.get(k, k)} {_value_text(k, v)}" for k, v in item.items()))
        else:
            parts.append(_value_text("", item))
    return "；".join(parts)


def audit_table(ws: Any, *, last: int | None = None) -> pd.DataFrame:
    """The audit trail to read, newest first: ``at`` in Beijing time (naive, to the second), ``layer`` in Chinese,
    ``detail`` described in Chinese (:func:`describe_detail`), the stored JSON kept as ``detail_json``, and
    ``prev_hash``/``hash``. ``last``: only the newest rows. Whoever calls it decides who may read it (the
    scoped workspace requires ``view_audit``)."""
    from grids.model import LAYERS

    log: pd.DataFrame = ws.read("audit")
    if last is not None:
        log = log.tail(last)
    log = log.iloc[::-1].reset_index(drop=True)
    log["at"] = pd.to_datetime(log["at"], errors="coerce", utc=True).dt.tz_convert("Asia/Shanghai") \
        .dt.tz_localize(None).dt.floor("s")
    log["layer"] = ["、".join(LAYERS[p].description if p in LAYERS else p for p in str(v).split(","))
                    if isinstance(v, str) and v else v for v in log["layer"]]
    log["detail_json"] = log["detail"]
    log["detail"] = [describe_detail(d) for d in log["detail"]]
    return log


def audit_trail(ws: Any, account: Any, *, actors: list[str] | None = None,
                actions: list[str] | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
    """The audit trail (``view_audit`` roles only, as :meth:`grids.scope.ScopedWorkspace.audit_log`, but also without a
    grid plan), newest first, filtered by actor, action and day (:func:`audit_table`: ``at`` in China
    time, details in Chinese)."""
    account.require("view_audit")
    return filter_audit(audit_table(ws), actors=actors, actions=actions, start=start, end=end)


def filter_audit(log: pd.DataFrame, *, actors: list[str] | None = None, actions: list[str] | None = None,
                 start: Any = None, end: Any = None) -> pd.DataFrame:
    """Rows of an :func:`audit_trail` by actor, action and China-time day (in place of reading it again)."""
    keep = pd.Series(True, index=log.index)
    if actors:
        keep &= log["actor"].isin(actors)
    if actions:
        keep &= log["action"].isin(actions)
    day = log["at"].dt.normalize()
    if start is not None:
        keep &= day >= pd.Timestamp(start)
    if end is not None:
        keep &= day <= pd.Timestamp(end)
    return log[keep.to_numpy()].reset_index(drop=True)
