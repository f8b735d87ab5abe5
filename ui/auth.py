"""Sign-in for the app: the login form, the session in ``st.session_state``, expiry, sign-out, optional OIDC.

The session (:class:`grids.auth.Session`: the :class:`~grids.auth.Account` and its start time) lives under
``ui.state.AUTH_SESSION``; it expires after ``GRIDS_SESSION_MINUTES`` (env; default
:data:`grids.auth.SESSION_MINUTES`) and the user is sent back to the login form with a message. Passwords are
checked by :func:`grids.auth.authenticate` (argon2). Sign-ins, failed attempts and sign-outs go to the audit
trail (audit-only records: the workspace revision does not move).

Single sign-on: when ``.streamlit/secrets.toml`` has an ``[auth]`` section, the form also offers
``st.login()``; the OIDC user (``st.user.email``) signs in as the account with that username.

Tests (AppTest) sign in by putting a session into ``st.session_state`` directly::

    at.session_state["auth.session"] = ui.auth.session_for(Account("t", "leadership"))
"""

from __future__ import annotations

import datetime as dt
import os
import re

import streamlit as st

from grids import auth as gauth
from grids.auth import Account, Session
from grids.errors import GridsError, PermissionDeniedError
from grids.store import Workspace
from grids.text import markdown
from ui.state import AUTH_NOTICE, AUTH_SESSION, ROLE, reset_signed_in


def session_minutes() -> int:
    """How long a sign-in lasts (env ``GRIDS_SESSION_MINUTES``, default :data:`grids.auth.SESSION_MINUTES`)."""
    try:
        return max(1, int(os.environ.get("GRIDS_SESSION_MINUTES", gauth.SESSION_MINUTES)))
    except ValueError:
        return gauth.SESSION_MINUTES


def session_for(account: Account, *, started_at: dt.datetime | None = None) -> Session:
    """A session for ``account`` starting now (or at ``started_at``); for SSO and for tests."""
    return Session(account, started_at or dt.datetime.now(dt.UTC))


def current_session() -> Session | None:
    """The signed-in session, or None (also when it has expired: then the login form shows why)."""
    session = st.session_state.get(AUTH_SESSION)
    if session is None:
        return None
    if session.expired(minutes=session_minutes()):
        sign_out(notice=f"登录已超过 {session_minutes()} 分钟，已自动退出，请重新登录。")
        return None
    st.session_state[ROLE] = session.account.role
    return session


def current_account() -> Account:
    """The signed-in account; without one the page stops here with a notice.

    ``app.py`` shows pages only after sign-in, but Streamlit runs a script of ``pages/`` directly (without
    ``app.py``) in one case: the first run of a fresh server process, whose URL names a page — its legacy
    “pages directory” mode lasts until the first ``st.navigation`` call. Every page calls this first.
    """
    session = current_session()
    if session is None:
        st.warning((st.session_state.get(AUTH_NOTICE) or "请先登录。") + "　[打开登录页](/)")
        st.stop()
    return session.account


def _audit(ws: Workspace, *, actor: str, action: str, **detail: object) -> None:
    with ws.transaction(actor=actor, action=action) as tx:
        tx.note("accounts", detail)


def sign_in(ws: Workspace, session: Session, *, method: str = "password") -> None:
    """Start ``session`` in this browser session (audited)."""
    reset_signed_in()
    st.session_state[AUTH_SESSION] = session
    st.session_state[ROLE] = session.account.role
    st.session_state[AUTH_NOTICE] = None
    _audit(ws, actor=session.account.username, action="登录", op="sign_in", method=method)


def sign_out(*, notice: str | None = None, ws: Workspace | None = None) -> None:
    """End the session (and forget everything of it); ``notice`` is shown on the login form."""
    session = st.session_state.get(AUTH_SESSION)
    if session is not None and ws is not None:
        _audit(ws, actor=session.account.username, action="退出登录", op="sign_out")
    reset_signed_in()
    st.session_state[AUTH_NOTICE] = notice
    if sso_configured() and _oidc_signed_in():
        st.logout()  # else the OIDC sign-in would sign the user straight back in


def sso_configured() -> bool:
    """True when ``secrets.toml`` has an ``[auth]`` section (Streamlit's OIDC sign-in)."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return False


def _oidc_signed_in() -> bool:
    """True when a user is signed in with ``st.login`` (st.user has no ``is_logged_in`` without a user)."""
    return bool(getattr(st.user, "is_logged_in", False))


def _sso_session(ws: Workspace) -> Session | None:
    """The account of the OIDC user, when one is signed in with Streamlit's ``st.login``."""
    if not sso_configured() or not _oidc_signed_in():
        return None
    email = str(st.user.get("email") or "").strip()
    accounts = gauth.list_accounts(ws)
    hit = accounts[(accounts["username"] == email) & accounts["active"].astype("boolean").fillna(False)]
    if hit.empty:
        st.error(f"单点登录用户 {markdown(email) or '（无邮箱）'} 在网格通里没有已启用的账号。请管理员建一个用户名为该邮箱的账号。")
        st.button("退出单点登录", on_click=st.logout)
        return None
    row = hit.iloc[0]

    def opt(v: object) -> str | None:
        return None if v is None or v != v or v == "" else str(v)

    account = Account(username=str(row["username"]), role=str(row["role"]),
                      display_name=str(row["display_name"] or ""), branch_id=opt(row["branch_id"]),
                      staff_id=opt(row["staff_id"]))
    return session_for(account)


def demo_hint(ws: Workspace) -> str | None:
    """The demo accounts and their password (demo workspaces only), for the login form."""
    if not ws.is_demo:
        return None
    names = gauth.list_accounts(ws)["username"].astype(str).tolist()

    def span(prefix: str) -> str:
        hits = sorted(n for n in names if re.fullmatch(prefix + r"\d+", n))
        return f"{hits[0]}…{hits[-1]}" if len(hits) > 1 else (hits[0] if hits else "")

    fixed = "、".join(n for n in ("admin", "leader", "planner") if n in names)
    parts = [fixed] if fixed else []
    if span("b"):
        parts.append(f"网点主任 {span('b')}")
    if span("s"):
        parts.append(f"客户经理 {span('s')}")
    if not parts:
        return None
    return f"演示工作区：账号 {'，'.join(parts)}；密码均为 `{gauth.DEMO_PASSWORD}`。"


def login_page(ws: Workspace) -> None:
    """The login form (用户名/密码), the SSO button when configured, the demo hint on demo workspaces."""
    session = _sso_session(ws)
    if session is not None:
        sign_in(ws, session, method="oidc")
        st.rerun()
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.title("网格通")
        county = ws.meta.get("county_name", "")
        st.caption(f"{markdown(county)}农村信用合作联社 · 网格化管理" if county else "网格化管理")
        if st.session_state.get(AUTH_NOTICE):
            st.warning(st.session_state[AUTH_NOTICE])
        with st.form("auth.login_form"):
            username = st.text_input("用户名", autocomplete="username")
            password = st.text_input("密码", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("登录", type="primary", width="stretch")
        if submitted:
            name = username.strip()
            try:
                session = gauth.authenticate(ws, name, password)
            except PermissionDeniedError as exc:
                if name:
                    _audit(ws, actor=name[:64], action="登录失败", op="sign_in_failed")
                st.error(str(exc))
            except GridsError as exc:
                st.error(str(exc))
            else:
                sign_in(ws, session)
                st.rerun()
        if sso_configured():
            st.button("单点登录（统一身份认证）", on_click=st.login, width="stretch")
        hint = demo_hint(ws)
        if hint:
            st.info(hint)
