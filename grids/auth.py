"""Accounts, roles and sign-in. Accounts live in the workspace (layer ``accounts``), passwords hashed with argon2.

Roles (:data:`grids.model.ROLES`): ``admin``, ``leadership``, ``planner``, ``branch_manager`` (bound to a
branch), ``customer_manager`` (bound to a staff record), ``teller`` (柜员, bound to a branch; serves any signed
customer there and reads nothing else), ``credit_committee`` (联社贷审会). What each role may read is enforced by
:mod:`grids.scope`, below the pages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from grids.errors import (
    AccountLockedError,
    GridsError,
    PermissionDeniedError,
    ValidationError,
    WorkspaceError,
)
from grids.model import ROLE_NAMES, ROLES
from grids.text import normalize_text, plain
from grids.workspace import Workspace

SESSION_MINUTES = 480
MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5
"""Wrong passwords in a row after which an account is locked for :data:`LOCK_MINUTES` minutes."""
LOCK_MINUTES = 15
FAILED_AUDIT_SECONDS = 60
"""At most one 登录失败 audit row per username in this many seconds (each carries the count of failures)."""
FAILED_ACTION = "登录失败"
UNKNOWN_USER_ACTION = "登录失败（无此用户名）"
"""Audit action of failed sign-ins with an unknown username: at most one row per minute for all of them, so
typing random names cannot flood the audit."""
_HASHER = PasswordHasher()
_DUMMY_HASH: list[str] = []  # one argon2 hash, made on first use, verified for unknown usernames
_BEIJING = dt.timezone(dt.timedelta(hours=8))

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read_all", "edit_plans", "publish", "assign", "record_visit", "rate", "import",
                        "export", "view_personal", "view_audit", "manage_accounts", "manage_staff", "sign_card",
                        "serve_credit"}),
    "leadership": frozenset({"read_all", "export", "view_audit", "view_personal"}),
    "planner": frozenset({"read_all", "edit_plans", "publish", "import", "export"}),
    # sign_card: 签约发卡 for the households of the branch (grids.credit_events.sign)
    "branch_manager": frozenset({"read_branch", "assign", "rate", "export", "view_personal", "manage_staff",
                                 "sign_card"}),
    "customer_manager": frozenset({"read_own", "record_visit", "export"}),
    # 柜员: serves any signed customer of the county at its own branch (授用分离) and reads nothing else
    "teller": frozenset({"serve_credit"}),
    # 联社贷审会: approves or returns amounts above a branch's authority; reads the county like leadership
    "credit_committee": frozenset({"read_all", "review_credit", "view_audit"}),
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
    """A sign-in that expires after :data:`SESSION_MINUTES` minutes.

    ``mark`` is a fingerprint of the account's password hash at sign-in (not the hash): when it no longer
    matches, the password was reset and :func:`refresh` ends the session. Sessions made without a sign-in
    (``mark`` None: tests building a session for an account that need not exist) skip that check.
    """

    account: Account
    started_at: dt.datetime
    mark: str | None = None

    def expired(self, now: dt.datetime | None = None, *, minutes: int = SESSION_MINUTES) -> bool:
        """True when the session is older than ``minutes``."""
        now = now or dt.datetime.now(dt.UTC)
        return now - self.started_at > dt.timedelta(minutes=minutes)


class Row(Protocol):
    """A row of an account table: a Series of a read (``frame.iloc[0]``) or a record dict (``to_dict("records")``)."""

    def __getitem__(self, key: str, /) -> Any: ...

    def get(self, key: str, /) -> Any: ...


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (raises ValidationError when it is too short)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"密码太短（{len(password)} 位）", fix=f"至少 {MIN_PASSWORD_LENGTH} 位")
    return _HASHER.hash(password)


def _opt(v: Any) -> str | None:
    """A cell value as text, None when missing (None, NaN/NaT/NA) or empty."""
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "" else str(v)


def _row_to_account(row: Row) -> Account:
    return Account(username=str(row["username"]), role=str(row["role"]),
                   display_name=str(_opt(row["display_name"]) or ""),
                   branch_id=_opt(row["branch_id"]), staff_id=_opt(row["staff_id"]))


def _check_binding(ws: Workspace, role: object, branch_id: object, staff_id: object) -> None:
    """Refuse an unknown role, or a role whose binding (branch, staff) is missing or does not exist.

    The values are cells of an account row: a string, or missing (None, NaN).
    """
    if not role:
        raise ValidationError("没有选择角色", fix=f"角色应为：{', '.join(ROLES)}")
    if role not in ROLES:
        raise ValidationError(f"未知角色 “{role}”", fix=f"角色应为：{', '.join(ROLES)}")
    role = str(role)
    branch_id, staff_id = _opt(branch_id), _opt(staff_id)  # a missing cell (NaN from a table) is no binding
    if role in ("branch_manager", "teller"):
        if not branch_id or ws.count("branches", where="branch_id = ?", params=[branch_id]) == 0:
            raise ValidationError(f"{ROLE_NAMES[role]}必须绑定一个存在的网点（给定：{branch_id!r}）",
                                  fix="指定 branch_id，例如 B01")
    if role == "customer_manager":
        person = ws.read("staff", where="staff_id = ?", params=[staff_id or ""], columns=["staff_id", "branch_id"])
        if not staff_id or person.empty:
            raise ValidationError(f"客户经理必须绑定一个存在的员工（给定：{staff_id!r}）", fix="指定 staff_id，例如 S001")
        own = _opt(person["branch_id"].iloc[0])
        if branch_id and own and str(branch_id) != own:
            raise ValidationError(f"员工 {staff_id} 属于网点 {own}，不是 {branch_id}",
                                  fix=f"网点填 {own}，或不填（按员工所在网点）")


_USERNAME = re.compile(r"^[\w.@+-]{1,64}$")


def _check_username(name: object) -> str:
    """A username as stored: printable letters, digits and ``. @ + - _`` only (no spaces, no control or look-alike
    characters a second account could hide behind), at most 64 characters."""
    text = str(name if name is not None else "")
    if text != normalize_text(text) or not _USERNAME.match(text):
        raise ValidationError(f"用户名 “{plain(text)}” 含空格、控制字符或全角字符",
                              fix="只用字母、数字、汉字和 . @ + - _，最多 64 个字符")
    return text


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
    for name in frame["username"]:
        _check_username(name)
    existing = {str(u).casefold() for u in ws.read("accounts", columns=["username"])["username"]}
    folded = frame["username"].astype(str).str.casefold()
    dupes = sorted(set(frame["username"][folded.isin(existing)])) + sorted(frame["username"][folded.duplicated()])
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
        tx.note("accounts", {"op": "create", "count": len(frame), "accounts": [
            {"username": r.username, "role": r.role, "branch_id": _opt(r.branch_id), "staff_id": _opt(r.staff_id)}
            for r in frame.head(200).itertuples()]})
    return len(frame)


def create_account(ws: Workspace, *, username: str, password: str, role: str, actor: str,
                   display_name: str = "", branch_id: str | None = None, staff_id: str | None = None) -> Account:
    """Add one account (password hashed with argon2); the change is audited."""
    create_accounts(ws, pd.DataFrame([{"username": username, "password": password, "role": role,
                                       "display_name": display_name, "branch_id": branch_id,
                                       "staff_id": staff_id}]), actor=actor)
    return Account(username, role, display_name, branch_id, staff_id)


def _utc(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _stamp(t: dt.datetime) -> str:
    """A DATETIME value as the workspace stores it (ISO 8601, UTC, milliseconds)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _mark(password_hash: object) -> str:
    """A fingerprint of a password hash (so a session notices a reset without holding the hash)."""
    return hashlib.sha256(str(password_hash).encode()).hexdigest()[:16]


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(_HASHER.hash("grids-no-such-user"))
    return _DUMMY_HASH[0]


def _verify(password_hash: object, password: str) -> bool:
    try:
        return bool(_HASHER.verify(str(password_hash), password))
    except (VerificationError, InvalidHashError):
        return False


def _locked_until(row: Row, now: dt.datetime) -> dt.datetime | None:
    """When the account's lock ends, or None when it is not locked at ``now``."""
    until = pd.to_datetime(row.get("locked_until"), errors="coerce", utc=True)
    if until is None or pd.isna(until) or until.to_pydatetime() <= now:
        return None
    end: dt.datetime = until.to_pydatetime()
    return end


def _locked_error(until: dt.datetime) -> AccountLockedError:
    return AccountLockedError(
        f"该账号因连续 {MAX_FAILED_LOGINS} 次密码错误已锁定，"
        f"{until.astimezone(_BEIJING):%H:%M}（北京时间）后可再试；修正方法：稍后再登录，或请管理员在“账号与审计”页解锁"
        f"（命令行 python -m grids accounts unlock）")


def _failures(row: Row) -> int:
    n = row.get("failed_logins")
    return 0 if n is None or pd.isna(n) else int(n)


def _recently_audited(tx: Any, *, action: str, actor: str | None, now: dt.datetime) -> bool:
    since = _stamp(now - dt.timedelta(seconds=FAILED_AUDIT_SECONDS))
    where, params = 'action = ? AND "at" >= ?', [action, since]
    if actor is not None:
        where, params = where + " AND actor = ?", [*params, actor]
    return not tx.read("audit", where=where, params=params).empty


def _unknown_failures(ws: Workspace, username: str) -> pd.Series | None:
    """The failure counter of a username that has no account (layer ``login_failures``), or None."""
    if "login_failures" not in ws.layers():
        return None
    rows = ws.read("login_failures", where="username = ?", params=[username])
    return rows.iloc[0] if len(rows) else None


def _count_unknown_failure(tx: Any, ws: Workspace, username: str, *, now: dt.datetime) -> int:
    """Count a failure of a username without account, locking it like a real account; stale counters of other
    names (no failure for :data:`LOCK_MINUTES` minutes and no lock) are dropped so the table stays small."""
    exists = "login_failures" in ws.layers()
    previous = tx.read("login_failures", where="username = ?", params=[username]) if exists else pd.DataFrame()
    count = (_failures(previous.iloc[0]) if len(previous) else 0) + 1
    locks = count >= MAX_FAILED_LOGINS
    if exists:
        stale = _stamp(now - dt.timedelta(minutes=LOCK_MINUTES))
        tx.execute('DELETE FROM login_failures WHERE username = ? OR (last_failed < ? AND '
                   '(locked_until IS NULL OR locked_until < ?))', (username, stale, _stamp(now)))
    tx._insert("login_failures", pd.DataFrame({  # no audit note: rate-limited rows are written by the caller
        "username": [username], "failed_logins": [0 if locks else count],
        "locked_until": [pd.Timestamp(now + dt.timedelta(minutes=LOCK_MINUTES)) if locks else pd.NaT],
        "last_failed": [pd.Timestamp(now)]}))
    tx.changed = False  # bookkeeping: the revision stays
    return count


def _record_failure(ws: Workspace, username: str, row: Row | None, *, now: dt.datetime) -> int:
    """Count a wrong password (lock at :data:`MAX_FAILED_LOGINS`), rate-limited audit; returns the count.

    The counter lives in the workspace (every server process sees it). It is sign-in bookkeeping, not a data
    change: the workspace revision (and every cache keyed on it) stays.
    """
    actor = plain(username) or "（空）"
    with ws.transaction(actor=actor, action=FAILED_ACTION if row is not None else UNKNOWN_USER_ACTION) as tx:
        if row is None:
            count = _count_unknown_failure(tx, ws, username, now=now)
            if not _recently_audited(tx, action=UNKNOWN_USER_ACTION, actor=None, now=now):
                tx.note("accounts", {"op": "sign_in_failed", "known": False})
            return count
        fresh = tx.read("accounts", where="username = ?", params=[str(row["username"])])
        row = fresh.iloc[0] if len(fresh) else row  # read again under the write lock: parallel failures all count
        count = _failures(row) + 1
        current = _locked_until(row, now)  # a wrong password through a lock (allow_locked) keeps the lock
        locks = current is None and count >= MAX_FAILED_LOGINS
        until = current or (now + dt.timedelta(minutes=LOCK_MINUTES) if locks else None)
        tx.execute("UPDATE accounts SET failed_logins = ?, locked_until = ? WHERE username = ?",
                   (0 if locks else count, _stamp(until) if until else None, str(row["username"])))
        tx.changed = False  # bookkeeping: the revision stays (see docstring)
        if locks or not _recently_audited(tx, action=FAILED_ACTION, actor=actor, now=now):
            detail: dict[str, Any] = {"op": "sign_in_failed", "failed_logins": count}
            if until is not None:
                detail["locked_until"] = _stamp(until)
            tx.note("accounts", detail)
    return count


def _check_password(ws: Workspace, username: str, password: str, *, allow_locked: bool = False,
                    now: dt.datetime | None = None) -> pd.Series:
    """The account row when ``password`` is right; else count the failure and raise PermissionDeniedError.

    Unknown usernames are verified against a dummy hash, so both paths cost one argon2 verification.
    """
    now = _utc(now)
    rows = ws.read("accounts", where="username = ?", params=[username])
    fail = PermissionDeniedError("用户名或密码错误，或账号已停用")
    if rows.empty:
        _verify(_dummy_hash(), password)
        shadow = _unknown_failures(ws, username)
        until = None if shadow is None else _locked_until(shadow, now)
        if until is not None:  # an unknown name locks like a real one: the lock tells nothing about existence
            raise _locked_error(until)
        _record_failure(ws, username, None, now=now)
        raise fail
    row = rows.iloc[0]
    until = _locked_until(row, now)
    right = _verify(row["password_hash"], password)  # also when locked: every path costs one verification
    if until is not None and not allow_locked:
        raise _locked_error(until)
    if not right:
        _record_failure(ws, username, row, now=now)
        raise fail
    if not bool(row["active"]):
        raise fail
    return row


def _has_failures(row: Row) -> bool:
    return bool(_failures(row)) or not pd.isna(pd.to_datetime(row.get("locked_until"), errors="coerce"))


def _reset_failures(tx: Any, row: Row) -> None:
    if _has_failures(row):
        tx.execute("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE username = ?",
                   (str(row["username"]),))
        tx.changed = False  # bookkeeping: the revision stays


def authenticate(ws: Workspace, username: str, password: str, *, allow_locked: bool = False,
                 now: dt.datetime | None = None) -> Session:
    """Check a username and password; return a new :class:`Session` or raise PermissionDeniedError.

    After :data:`MAX_FAILED_LOGINS` wrong passwords in a row the account is locked for :data:`LOCK_MINUTES`
    minutes: every attempt then raises :class:`~grids.errors.AccountLockedError` (saying until when), even
    with the right password. A right password resets the count. ``allow_locked`` lets the right password
    through a lock: only ``python -m grids accounts unlock`` uses it (an administrator at the server unlocking
    itself; whoever can run the command line can read the workspace anyway). This function writes no
    sign-in audit row (the command line audits what the account then does); the app signs in with
    :func:`sign_in`.
    """
    now = _utc(now)
    row = _check_password(ws, username, password, allow_locked=allow_locked, now=now)
    if _has_failures(row) and _locked_until(row, now) is None:  # a lock is lifted by unlock (audited) only
        with ws.transaction(actor=str(row["username"]), action="登录") as tx:
            _reset_failures(tx, row)
    return Session(_row_to_account(row), now, mark=_mark(row["password_hash"]))


def sign_in(ws: Workspace, username: str, password: str, *, now: dt.datetime | None = None) -> Session:
    """:func:`authenticate` and the 登录 audit row in one transaction: no audit row, no session.

    The app's sign-in (``ui.auth.login_page``). Raises what :func:`authenticate` raises, and
    :class:`~grids.errors.WorkspaceError` when the audit row cannot be written (nothing signed in).
    """
    now = _utc(now)
    row = _check_password(ws, username, password, now=now)
    try:
        with ws.transaction(actor=str(row["username"]), action="登录") as tx:
            _reset_failures(tx, row)
            tx.note("accounts", {"op": "sign_in", "method": "password"})
    except GridsError:
        raise
    except Exception as exc:  # any database failure: re-raised as the refusal it is, never swallowed
        raise WorkspaceError(f"登录未能记入审计，已拒绝登录（{plain(exc, limit=120)}）。修正方法：检查工作区能否写入"
                             "（磁盘空间、文件权限、数据库连接），再登录") from exc
    return Session(_row_to_account(row), now, mark=_mark(row["password_hash"]))


def account_for_claims(claims: Mapping[str, Any], accounts: pd.DataFrame) -> Account | None:
    """The enabled account a single-sign-on user maps to, or None.

    Only an e-mail the identity provider marks verified (``email_verified`` is true) maps, to the account
    whose username is that e-mail (case-insensitive). A pure function: ``claims`` are the OIDC claims
    (``st.user``), ``accounts`` the frame of :func:`list_accounts`.

    Examples
    --------
    >>> acc = pd.DataFrame({"username": ["li@bank.cn"], "role": ["planner"], "display_name": ["李"],
    ...                     "branch_id": [None], "staff_id": [None], "active": [True]})
    >>> account_for_claims({"email": "Li@bank.cn", "email_verified": True}, acc).role
    'planner'
    >>> account_for_claims({"email": "li@bank.cn", "email_verified": "false"}, acc) is None
    True
    """
    verified = claims.get("email_verified")
    if not (verified is True or (isinstance(verified, str) and verified.strip().lower() == "true")):
        return None
    email = str(claims.get("email") or "").strip().lower()
    if not email or accounts.empty:
        return None
    hit = accounts[(accounts["username"].astype(str).str.strip().str.lower() == email)
                   & accounts["active"].astype("boolean").fillna(False).to_numpy()]
    return None if hit.empty else _row_to_account(hit.iloc[0])


def sign_in_sso(ws: Workspace, claims: Mapping[str, Any], *, now: dt.datetime | None = None) -> Session:
    """Sign in the single-sign-on user of ``claims`` (see :func:`account_for_claims`), audited.

    Raises PermissionDeniedError when the e-mail is not verified or no enabled account has it.
    """
    account = account_for_claims(claims, ws.read("accounts"))
    if account is None:
        email = plain(claims.get("email") or "（无邮箱）")
        raise PermissionDeniedError(
            f"单点登录用户 {email} 的邮箱未经验证，或在网格通里没有已启用的账号。"
            "修正方法：在统一身份认证中验证邮箱，并请管理员建一个用户名为该邮箱的账号")
    now = _utc(now)
    with ws.transaction(actor=account.username, action="登录") as tx:
        row = tx.read("accounts", where="username = ?", params=[account.username]).iloc[0]
        tx.note("accounts", {"op": "sign_in", "method": "oidc"})
    return Session(account, now, mark=_mark(row["password_hash"]))


_REFRESH_COLUMNS = ("username", "display_name", "role", "branch_id", "staff_id", "password_hash", "active")
"""What :func:`refresh` reads at every run (no DATETIME columns: parsing them is most of the cost)."""


def refresh(ws: Workspace, session: Session, *, now: dt.datetime | None = None,
            minutes: int = SESSION_MINUTES) -> Session:
    """``session`` as the workspace has it now: read at every run of the app, so changes act at once.

    The role and binding (branch, staff) are re-read (a changed role comes back in the returned session).

    Raises
    ------
    PermissionDeniedError
        The session expired, or since sign-in the account was disabled, deleted or had its password reset;
        the message says which (the app shows the login form with it).
    """
    if session.expired(now, minutes=minutes):
        raise PermissionDeniedError(f"登录已超过 {minutes} 分钟，已自动退出，请重新登录。")
    rows = ws.read("accounts", where="username = ?", params=[session.account.username], columns=_REFRESH_COLUMNS)
    if rows.empty:
        if session.mark is None:
            return session
        raise PermissionDeniedError("账号已被删除，已退出登录。")
    row = rows.iloc[0]
    if not bool(row["active"]):
        raise PermissionDeniedError("账号已被管理员停用，已退出登录。如有疑问请联系管理员。")
    if session.mark is not None and session.mark != _mark(row["password_hash"]):
        raise PermissionDeniedError("密码已被修改，请用新密码重新登录。")
    account = _row_to_account(row)
    return session if account == session.account else replace(session, account=account)


def list_accounts(ws: Workspace, *, now: dt.datetime | None = None) -> pd.DataFrame:
    """Accounts without their password hashes; ``locked`` is True while a sign-in lock lasts."""
    frame = ws.read("accounts")
    now = _utc(now)
    frame["locked"] = [_locked_until(r, now) is not None for r in frame.to_dict("records")]
    return frame.drop(columns=["password_hash"])


def _account_row(tx: Any, username: str) -> pd.Series:
    rows: pd.DataFrame = tx.read("accounts", where="username = ?", params=[username])
    if rows.empty:
        raise ValidationError(f"没有账号 “{plain(username)}”", fix="检查用户名（账号列表见“账号与审计”页或 accounts list）")
    return rows.iloc[0]


def set_password(ws: Workspace, username: str, password: str, *, actor: str) -> None:
    """Change a password (audited, hash never logged); the account's open sessions end at their next run."""
    new_hash = hash_password(password)
    with ws.transaction(actor=actor, action="账号变更") as tx:
        _account_row(tx, username)
        tx.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", (new_hash, username))
        tx.note("accounts", {"op": "set_password", "username": username,
                             "before": {"password": "（旧密码）"}, "after": {"password": "（新密码）"}})


def set_active(ws: Workspace, username: str, active: bool, *, actor: str) -> None:
    """Enable or disable an account (audited with before/after); a disabled account's sessions end."""
    with ws.transaction(actor=actor, action="账号变更") as tx:
        before = _account_row(tx, username)
        tx.execute("UPDATE accounts SET active = ? WHERE username = ?", (1 if active else 0, username))
        tx.note("accounts", {"op": "set_active", "username": username,
                             "before": bool(before["active"]), "after": active})


def set_role(ws: Workspace, username: str, *, role: str, actor: str, branch_id: str | None = None,
             staff_id: str | None = None) -> None:
    """Change an account's role and binding (audited with before/after); open sessions get the new role."""
    _check_binding(ws, role, branch_id, staff_id)
    with ws.transaction(actor=actor, action="账号变更") as tx:
        before = _account_row(tx, username)
        tx.execute("UPDATE accounts SET role = ?, branch_id = ?, staff_id = ? WHERE username = ?",
                   (role, branch_id, staff_id, username))
        tx.note("accounts", {
            "op": "set_role", "username": username,
            "before": {"role": str(before["role"]), "branch_id": _opt(before["branch_id"]),
                       "staff_id": _opt(before["staff_id"])},
            "after": {"role": role, "branch_id": branch_id, "staff_id": staff_id}})


def unlock(ws: Workspace, username: str, *, actor: str) -> bool:
    """Lift a sign-in lock and reset the failure count (audited with before/after); True when it was locked."""
    with ws.transaction(actor=actor, action="账号变更") as tx:
        before = _account_row(tx, username)
        was = _locked_until(before, _utc(None))
        tx.execute("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE username = ?", (username,))
        tx.note("accounts", {"op": "unlock", "username": username,
                             "before": {"failed_logins": _failures(before),
                                        "locked_until": _stamp(was) if was else None},
                             "after": {"failed_logins": 0, "locked_until": None}})
    return was is not None


def disable_staff_accounts(tx: Any, staff_id: str) -> list[dict[str, Any]]:
    """Inside ``tx``: disable the enabled accounts bound to ``staff_id`` (a leaver); audited before/after.

    Returns ``[{"username", "active": False}]`` for each account disabled (their open sessions end at their
    next run, see :func:`refresh`).
    """
    rows = tx.read("accounts", where="staff_id = ?", params=[staff_id])
    done = []
    for r in rows.to_dict("records"):
        if not bool(r["active"]):
            continue
        tx.execute("UPDATE accounts SET active = ? WHERE username = ?", (0, str(r["username"])))
        tx.note("accounts", {"op": "set_active", "username": str(r["username"]), "reason": f"员工 {staff_id} 离职",
                             "before": True, "after": False})
        done.append({"username": str(r["username"]), "active": False})
    return done


def rebind_staff_accounts(tx: Any, staff_id: str, branch_id: str) -> list[dict[str, Any]]:
    """Inside ``tx``: the accounts bound to ``staff_id`` follow it to ``branch_id`` (a move); audited."""
    rows = tx.read("accounts", where="staff_id = ?", params=[staff_id])
    done = []
    for r in rows.to_dict("records"):
        if _opt(r["branch_id"]) == branch_id:
            continue
        tx.execute("UPDATE accounts SET branch_id = ? WHERE username = ?", (branch_id, str(r["username"])))
        tx.note("accounts", {"op": "set_role", "username": str(r["username"]), "reason": f"员工 {staff_id} 调动",
                             "before": {"branch_id": _opt(r["branch_id"])}, "after": {"branch_id": branch_id}})
        done.append({"username": str(r["username"]), "branch_id": branch_id})
    return done


def require_staff_account(by: Account, account: Row, staff: pd.DataFrame) -> None:
    """May ``by`` enable or disable ``account`` (a row of ``accounts``)? PermissionDeniedError when not.

    Administrators may change any account (other than disabling their own, see :class:`AccountAdmin`); a
    branch manager only the accounts bound to a staff member (``staff_id``) who works at their own branch, as
    the staff table has it now; nobody else. An account bound to a leaver cannot be enabled (see
    :func:`set_staff_account_active`).

    Examples
    --------
    >>> st = pd.DataFrame({"staff_id": ["S1", "S2"], "branch_id": ["B1", "B2"]})
    >>> require_staff_account(Account("b1", "branch_manager", branch_id="B1"), {"username": "s1", "staff_id": "S1"}, st)
    >>> require_staff_account(Account("b1", "branch_manager", branch_id="B1"), {"username": "s2", "staff_id": "S2"}, st)
    Traceback (most recent call last):
    ...
    grids.errors.PermissionDeniedError: 网点主任（b1）只能启用或停用本网点（B1）员工的账号；账号 s2 不是
    """
    if by.can("manage_accounts"):
        return
    username = str(account.get("username"))
    if by.role == "branch_manager" and by.branch_id:
        sid = _opt(account.get("staff_id"))
        hit = staff[staff["staff_id"].astype(str) == sid] if sid else staff.iloc[0:0]
        if len(hit) and str(hit["branch_id"].iloc[0]) == by.branch_id and username != by.username:
            return
        raise PermissionDeniedError(f"{by.role_name}（{by.username}）只能启用或停用本网点（{by.branch_id}）员工的账号；"
                                    f"账号 {plain(username)} 不是")
    raise PermissionDeniedError(f"{by.role_name}（{by.username}）无权启用或停用账号")


def set_staff_account_active(ws: Workspace, username: str, active: bool, *, by: Account) -> None:
    """Enable or disable a staff member's account as ``by`` (:func:`require_staff_account`), one transaction.

    Raises
    ------
    PermissionDeniedError
        Outside ``by``'s branch, or ``by`` may not.
    ValidationError
        Unknown account; enabling the account of a staff member who has left; disabling oneself.
    """
    if username == by.username and not active:
        raise ValidationError("不能停用自己的账号", fix="请另一位管理员操作")
    with ws.transaction(actor=by.username, action="账号变更") as tx:
        row = _account_row(tx, username)
        staff = tx.read("staff")
        require_staff_account(by, row, staff)
        sid = _opt(row["staff_id"])
        person = staff[staff["staff_id"].astype(str) == sid] if sid else staff.iloc[0:0]
        if active and len(person) and "status" in person.columns and person["status"].iloc[0] == "left":
            raise ValidationError(f"账号 {plain(username)} 绑定的员工 {sid} 已离职，不能启用",
                                  fix="为重新入职的员工新增员工记录和账号")
        tx.execute("UPDATE accounts SET active = ? WHERE username = ?", (1 if active else 0, username))
        tx.note("accounts", {"op": "set_active", "username": username, "before": bool(row["active"]),
                             "after": active})


def has_admin(ws: Workspace) -> bool:
    """True when the workspace has an enabled administrator account."""
    return ws.count("accounts", where="role = ? AND active = ?", params=["admin", 1]) > 0


class AccountAdmin:
    """Account changes made by a signed-in account (the app's 账号与审计 page).

    Refused at construction unless ``by``'s role may ``manage_accounts``; every change is audited under
    ``by.username``. The module functions (:func:`create_account`, :func:`set_password`, :func:`set_active`,
    :func:`set_role`, :func:`unlock`) are the unchecked operator's tools (command line after its own check,
    demo set-up).

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

    def set_role(self, username: str, *, role: str, branch_id: str | None = None,
                 staff_id: str | None = None) -> None:
        """Change ``username``'s role and binding; an administrator cannot take away their own admin role."""
        if username == self.by.username and role != "admin":
            raise ValidationError("不能取消自己的管理员角色", fix="请另一位管理员操作")
        set_role(self.ws, username, role=role, branch_id=branch_id, staff_id=staff_id, actor=self.by.username)

    def unlock(self, username: str) -> bool:
        """Lift ``username``'s sign-in lock (see :func:`unlock`)."""
        return unlock(self.ws, username, actor=self.by.username)


DEMO_PASSWORD = "wgt-demo-2026"
"""The shared password of demo accounts; only ever set on workspaces made by the demo generator."""


def create_demo_accounts(ws: Workspace, *, password: str = DEMO_PASSWORD) -> pd.DataFrame:
    """Create the documented demo accounts (demo workspaces only) and return them (without hashes).

    ``admin`` (系统管理员), ``leader`` (联社领导), ``planner`` (规划人员), one branch manager per branch
    (username = branch id in lower case, e.g. ``b01``) and one customer manager per 客户经理 staff record
    (username = staff id in lower case, e.g. ``s002``), one teller per branch (``t`` + the branch number, e.g.
    ``t07`` for B07) and the credit committee ``cc01``, all with ``password``. The accounts share one argon2
    hash of the public demo password (hashing 180 times would only slow the demo down).
    """
    if not ws.is_demo:
        raise PermissionDeniedError("演示账号只能建在演示工作区里（python -m grids demo 生成的工作区）")
    branches = ws.read("branches", columns=["branch_id", "name"])
    staff = ws.read("staff", columns=["staff_id", "name", "branch_id", "role"])
    managers = staff[staff["role"] == "客户经理"]
    rows: list[dict[str, object]] = [
        {"username": "admin", "role": "admin", "display_name": "系统管理员"},
        {"username": "leader", "role": "leadership", "display_name": "联社领导"},
        {"username": "planner", "role": "planner", "display_name": "市场部规划员"},
    ]
    rows += [{"username": str(b.branch_id).lower(), "role": "branch_manager", "branch_id": b.branch_id,
              "display_name": f"{b.name}主任"} for b in branches.itertuples()]
    rows += [{"username": str(s.staff_id).lower(), "role": "customer_manager", "staff_id": s.staff_id,
              "branch_id": s.branch_id, "display_name": s.name} for s in managers.itertuples()]
    rows += [{"username": f"t{str(b.branch_id)[1:].lower()}", "role": "teller", "branch_id": b.branch_id,
              "display_name": f"{b.name}柜员"} for b in branches.itertuples()]
    rows.append({"username": "cc01", "role": "credit_committee", "display_name": "联社贷审会"})
    frame = pd.DataFrame(rows)
    digest = hash_password(password)
    create_accounts(ws, frame, actor="demo", password_hashes=pd.Series([digest] * len(frame)))
    return list_accounts(ws)
