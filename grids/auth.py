"""Accounts, roles and sign-in. Accounts live in the workspace (layer ``accounts``), passwords hashed with argon2.

Roles (:data:`grids.model.ROLES`): ``admin``, ``leadership``, ``planner``, ``branch_manager`` (bound to a
branch), ``customer_manager`` (bound to a staff record). What each role may read is enforced by
:mod:`grids.scope`, below the pages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from grids.errors import PermissionDeniedError, ValidationError
from grids.model import ROLE_NAMES, ROLES
from grids.store import Workspace

SESSION_MINUTES = 480
MIN_PASSWORD_LENGTH = 8
_HASHER = PasswordHasher()

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read_all", "edit_plans", "publish", "assign", "record_visit", "rate", "import",
                        "export", "view_personal", "view_audit", "manage_accounts"}),
    "leadership": frozenset({"read_all", "export", "view_audit", "view_personal"}),
    "planner": frozenset({"read_all", "edit_plans", "publish", "import", "export"}),
    "branch_manager": frozenset({"read_branch", "assign", "rate", "export", "view_personal"}),
    "customer_manager": frozenset({"read_own", "record_visit", "export"}),
}


@dataclass(frozen=True)
class Account:
    """A signed-in user: who they are and what they are bound to."""

    username: str
    role: str
    display_name: str = ""
    branch_id: str | None = None
    staff_id: str | None = None

    @property
    def role_name(self) -> str:
        """The role in Chinese."""
        return ROLE_NAMES.get(self.role, self.role)

    def can(self, permission: str) -> bool:
        """True when the role grants ``permission`` (see :data:`PERMISSIONS`)."""
        return permission in PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: str) -> None:
        """Raise :class:`PermissionDeniedError` unless the role grants ``permission``."""
        if not self.can(permission):
            raise PermissionDeniedError(f"{self.role_name}（{self.username}）无权执行此操作（需要权限 {permission}）")


@dataclass(frozen=True)
class Session:
    """A sign-in that expires after :data:`SESSION_MINUTES` minutes."""

    account: Account
    started_at: dt.datetime

    def expired(self, now: dt.datetime | None = None, *, minutes: int = SESSION_MINUTES) -> bool:
        """True when the session is older than ``minutes``."""
        now = now or dt.datetime.now(dt.UTC)
        return now - self.started_at > dt.timedelta(minutes=minutes)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (raises ValidationError when it is too short)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"密码太短（{len(password)} 位）", fix=f"至少 {MIN_PASSWORD_LENGTH} 位")
    return _HASHER.hash(password)


def _row_to_account(row: pd.Series) -> Account:
    def opt(v):
        return None if v is None or pd.isna(v) or v == "" else str(v)

    return Account(username=str(row["username"]), role=str(row["role"]), display_name=str(row["display_name"] or ""),
                   branch_id=opt(row["branch_id"]), staff_id=opt(row["staff_id"]))


def _check_binding(ws: Workspace, role: str, branch_id: str | None, staff_id: str | None) -> None:
    if role not in ROLES:
        raise ValidationError(f"未知角色 “{role}”", fix=f"角色应为：{', '.join(ROLES)}")
    if role == "branch_manager":
        if not branch_id or ws.count("branches", where="branch_id = ?", params=[branch_id]) == 0:
            raise ValidationError(f"网点主任必须绑定一个存在的网点（给定：{branch_id!r}）", fix="指定 branch_id，例如 B01")
    if role == "customer_manager":
        if not staff_id or ws.count("staff", where="staff_id = ?", params=[staff_id]) == 0:
            raise ValidationError(f"客户经理必须绑定一个存在的员工（给定：{staff_id!r}）", fix="指定 staff_id，例如 S001")


def create_accounts(ws: Workspace, accounts: pd.DataFrame, *, actor: str,
                    password_hashes: pd.Series | None = None) -> int:
    """Add accounts in one transaction.

    Parameters
    ----------
    accounts : DataFrame
        Columns ``username``, ``role``, optional ``display_name``, ``branch_id``, ``staff_id``, ``password``.
    password_hashes : Series, optional
        Precomputed hashes aligned with ``accounts`` (used for demo accounts sharing one demo password).
    """
    frame = accounts.copy()
    for col in ("display_name", "branch_id", "staff_id"):
        if col not in frame:
            frame[col] = None
    existing = set(ws.read("accounts", columns=["username"])["username"])
    dupes = sorted(set(frame["username"]) & existing) + sorted(frame["username"][frame["username"].duplicated()])
    if dupes:
        raise ValidationError(f"账号已存在：{', '.join(dupes[:5])}", fix="换一个用户名")
    for r in frame.itertuples():
        _check_binding(ws, r.role, r.branch_id, r.staff_id)
    if password_hashes is None:
        frame["password_hash"] = [hash_password(p) for p in frame.pop("password")]
    else:
        frame = frame.drop(columns=["password"], errors="ignore")
        frame["password_hash"] = password_hashes.to_numpy()
    frame["active"] = True
    frame["created_at"] = pd.Timestamp.now(tz="UTC")
    with ws.transaction(actor=actor, action="账号变更") as tx:
        tx.append("accounts", frame)
        tx.note("accounts", {"op": "create", "usernames": frame["username"].tolist()[:50], "count": len(frame)})
    return len(frame)


def create_account(ws: Workspace, *, username: str, password: str, role: str, actor: str,
                   display_name: str = "", branch_id: str | None = None, staff_id: str | None = None) -> Account:
    """Add one account (password hashed with argon2); the change is audited."""
    create_accounts(ws, pd.DataFrame([{"username": username, "password": password, "role": role,
                                       "display_name": display_name, "branch_id": branch_id,
                                       "staff_id": staff_id}]), actor=actor)
    return Account(username, role, display_name, branch_id, staff_id)


def authenticate(ws: Workspace, username: str, password: str) -> Session:
    """Check a username and password; return a new :class:`Session` or raise PermissionDeniedError."""
    rows = ws.read("accounts", where="username = ?", params=[username])
    fail = PermissionDeniedError("用户名或密码错误，或账号已停用")
    if rows.empty or not bool(rows["active"].iloc[0]):
        raise fail
    try:
        _HASHER.verify(str(rows["password_hash"].iloc[0]), password)
    except (VerificationError, InvalidHashError):
        raise fail from None
    return Session(_row_to_account(rows.iloc[0]), dt.datetime.now(dt.UTC))


def list_accounts(ws: Workspace) -> pd.DataFrame:
    """Accounts without their password hashes."""
    return ws.read("accounts").drop(columns=["password_hash"])


def set_password(ws: Workspace, username: str, password: str, *, actor: str) -> None:
    """Change a password (audited, hash never logged)."""
    new_hash = hash_password(password)
    with ws.transaction(actor=actor, action="账号变更") as tx:
        cur = tx.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", (new_hash, username))
        if cur.rowcount != 1:
            raise ValidationError(f"没有账号 “{username}”", fix="检查用户名")
        tx.note("accounts", {"op": "set_password", "username": username})


def set_active(ws: Workspace, username: str, active: bool, *, actor: str) -> None:
    """Enable or disable an account (audited with before/after)."""
    with ws.transaction(actor=actor, action="账号变更") as tx:
        before = tx.read("accounts", where="username = ?", params=[username])
        if before.empty:
            raise ValidationError(f"没有账号 “{username}”", fix="检查用户名")
        tx.execute("UPDATE accounts SET active = ? WHERE username = ?", (1 if active else 0, username))
        tx.note("accounts", {"op": "set_active", "username": username,
                             "before": bool(before["active"].iloc[0]), "after": active})


class AccountAdmin:
    """Account changes made by a signed-in account (the app's 账号与审计 page).

    Refused at construction unless ``by``'s role may ``manage_accounts``; every change is audited under
    ``by.username``. The module functions (:func:`create_account`, :func:`set_password`, :func:`set_active`)
    are the unchecked operator's tools (command line, demo set-up).

    Examples
    --------
    >>> AccountAdmin(None, Account("leader", "leadership"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    grids.errors.PermissionDeniedError: 联社领导（leader）无权执行此操作（需要权限 manage_accounts）...
    """

    def __init__(self, ws: Workspace, by: Account) -> None:
        by.require("manage_accounts")
        self.ws = ws
        self.by = by

    def create(self, *, username: str, password: str, role: str, display_name: str = "",
               branch_id: str | None = None, staff_id: str | None = None) -> Account:
        """Add one account (see :func:`create_account`)."""
        return create_account(self.ws, username=username, password=password, role=role, actor=self.by.username,
                              display_name=display_name, branch_id=branch_id, staff_id=staff_id)

    def set_password(self, username: str, password: str) -> None:
        """Reset ``username``'s password (see :func:`set_password`)."""
        set_password(self.ws, username, password, actor=self.by.username)

    def set_active(self, username: str, active: bool) -> None:
        """Enable or disable ``username``; an administrator cannot disable their own account."""
        if username == self.by.username and not active:
            raise ValidationError("不能停用自己的账号", fix="请另一位管理员操作")
        set_active(self.ws, username, active, actor=self.by.username)


DEMO_PASSWORD = "wgt-demo-2026"
"""The shared password of demo accounts; only ever set on workspaces made by the demo generator."""


def create_demo_accounts(ws: Workspace, *, password: str = DEMO_PASSWORD) -> pd.DataFrame:
    """Create the documented demo accounts (demo workspaces only) and return them (without hashes).

    ``admin`` (系统管理员), ``leader`` (联社领导), ``planner`` (规划人员), one branch manager per branch
    (username = branch id in lower case, e.g. ``b01``) and one customer manager per 客户经理 staff record
    (username = staff id in lower case, e.g. ``s001``), all with ``password``. The accounts share one argon2
    hash of the public demo password (hashing 180 times would only slow the demo down).
    """
    if not ws.is_demo:
        raise PermissionDeniedError("演示账号只能建在演示工作区里（python -m grids demo 生成的工作区）")
    branches = ws.read("branches", columns=["branch_id", "name"])
    staff = ws.read("staff", columns=["staff_id", "name", "branch_id", "role"])
    managers = staff[staff["role"] == "客户经理"]
    rows = [
        {"username": "admin", "role": "admin", "display_name": "系统管理员"},
        {"username": "leader", "role": "leadership", "display_name": "联社领导"},
        {"username": "planner", "role": "planner", "display_name": "市场部规划员"},
    ]
    rows += [{"username": str(b.branch_id).lower(), "role": "branch_manager", "branch_id": b.branch_id,
              "display_name": f"{b.name}主任"} for b in branches.itertuples()]
    rows += [{"username": str(s.staff_id).lower(), "role": "customer_manager", "staff_id": s.staff_id,
              "branch_id": s.branch_id, "display_name": s.name} for s in managers.itertuples()]
    frame = pd.DataFrame(rows)
    digest = hash_password(password)
    create_accounts(ws, frame, actor="demo", password_hashes=pd.Series([digest] * len(frame)))
    return list_accounts(ws)
