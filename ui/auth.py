"""Sign-in for the app: the login form, the session in ``st.session_state``, expiry, sign-out, optional OIDC.

The session (:class:`grids.auth.Session`: the :class:`~grids.auth.Account` and its start time) lives under
``ui.state.AUTH_SESSION``. At every run ``app.py`` calls :func:`current_session`, which re-reads the account
from the workspace (:func:`grids.auth.refresh`): expiry after ``GRIDS_SESSION_MINUTES`` (env; default
:data:`grids.auth.SESSION_MINUTES`), a disabled account or a reset password send the user back to the login
form with a message; a changed role or binding applies at once. Passwords are checked by
:func:`grids.auth.sign_in` (argon2, lockout after repeated failures, the sign-in audited in the same
transaction: no audit row, no session). Failed attempts (rate-limited) and sign-outs go to the audit trail.

Single sign-on: when ``.streamlit/secrets.toml`` has an ``[auth]`` section, the form also offers
``st.login()``; the OIDC user signs in as the account whose username is their e-mail, only when the identity
provider says the e-mail is verified (:func:`grids.auth.account_for_claims`).

Tests (AppTest) sign in by putting a session into ``st.session_state`` directly::

    at.session_state["auth.session"] = ui.auth.session_for(Account("t", "leadership"))
"""

from __future__ import annotations

import datetime as dt
import os

import streamlit as st

from grids import auth as gauth
from grids import text
from grids.auth import Account, Session
from grids.errors import GridsError, PermissionDeniedError
from grids.navigation import demo_hint
from grids.workspace import Workspace, open_workspace
from ui.data import workspace_target
from ui.state import AUTH_NOTICE, AUTH_SESSION, ROLE, reset_signed_in


def session_minutes() -> int:
    """How long a sign-in lasts (env ``GRIDS_SESSION_MINUTES``, default :data:`grids.auth.SESSION_MINUTES`)."""
    try:
        return max(1, int(os.environ.get("GRIDS_SESSION_MINUTES", gauth.SESSION_MINUTES)))
    except ValueError:
        return gauth.SESSION_MINUTES


def session_for(account: Account, *, started_at: dt.datetime | None = None) -> Session:
    """A session for ``account`` starting now (or at ``started_at``), for tests.

    Made without a sign-in, it carries no password mark: :func:`grids.auth.refresh` still ends it when the
    account is disabled and applies role changes, but keeps it for an account the workspace does not have.
    """
    return Session(account, started_at or dt.datetime.now(dt.UTC))


def current_session(ws: Workspace | None = None) -> Session | None:
    """The signed-in session, or None (then the login form shows why).

    With ``ws`` (``app.py`` and :func:`current_account`, at every run) the account is re-read from the
    workspace (:func:`grids.auth.refresh`): expired, disabled or password-reset sessions end here, and a
    changed role or binding replaces the session's account (and forgets what the old one had open). Without
    ``ws`` the session is returned as held, unchecked.
    """
    session = st.session_state.get(AUTH_SESSION)
    if session is None:
        return None
    if ws is not None:
        try:
            fresh = gauth.refresh(ws, session, minutes=session_minutes())
        except PermissionDeniedError as exc:
            sign_out(notice=str(exc))
            return None
        if fresh is not session:
            reset_signed_in()  # the old role's views, unmasked frames and selections go
            st.session_state[AUTH_SESSION] = session = fresh
    st.session_state[ROLE] = session.account.role
    return session


def current_account() -> Account:
    """The signed-in account; without one the page stops here with a notice.

    ``app.py`` shows pages only after sign-in, but Streamlit runs a script of ``pages/`` directly (without
    ``app.py``) in one case: the first run of a fresh server process, whose URL names a page — its legacy
    “pages directory” mode lasts until the first ``st.navigation`` call (AppTest, too, reruns a page script by
    itself). Every page calls this first, so the account is re-read from the workspace here as well: a
    disabled account never reaches a page's data, however the page was run.
    """
    held = st.session_state.get(AUTH_SESSION)
    session = None if held is None else current_session(open_workspace(workspace_target()))
    if session is None:
        st.warning(text.markdown(st.session_state.get(AUTH_NOTICE) or "请先登录。") + "　[打开登录页](/)")
        st.stop()
    return session.account


def _audit(ws: Workspace, *, actor: str, action: str, **detail: object) -> None:
    with ws.transaction(actor=actor, action=action) as tx:
        tx.note("accounts", detail)


def start(session: Session) -> None:
    """Hold ``session`` (made, and audited, by :func:`grids.auth.sign_in` or ``sign_in_sso``) in this browser
    session."""
    reset_signed_in()
    st.session_state[AUTH_SESSION] = session
    st.session_state[ROLE] = session.account.role
    st.session_state[AUTH_NOTICE] = None


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
    """The session of the OIDC user signed in with Streamlit's ``st.login`` (verified e-mail only), audited."""
    if not sso_configured() or not _oidc_signed_in():
        return None
    try:
        return gauth.sign_in_sso(ws, dict(st.user.items()))
    except GridsError as exc:
        st.error(text.markdown(str(exc)))  # carries the e-mail the identity provider sent
        st.button("退出单点登录", on_click=st.logout)
        return None


def login_page(ws: Workspace) -> None:
    """The login form (用户名/密码), the SSO button when configured, the demo hint on demo workspaces."""
    session = _sso_session(ws)
    if session is not None:
        start(session)
        st.rerun()
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.title("网格通")
        county = ws.meta.get("county_name", "")
        st.caption(f"{text.markdown(county)}农村信用合作联社 · 网格化管理" if county else "网格化管理")
        if st.session_state.get(AUTH_NOTICE):
            st.warning(text.markdown(st.session_state[AUTH_NOTICE]))
        with st.form("auth.login_form"):
            username = st.text_input("用户名", autocomplete="username")
            password = st.text_input("密码", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("登录", type="primary", width="stretch")
        if submitted:
            try:
                session = gauth.sign_in(ws, username.strip(), password)
            except GridsError as exc:
                st.error(text.markdown(str(exc)))
            else:
                start(session)
                st.rerun()
        if sso_configured():
            st.button("单点登录（统一身份认证）", on_click=st.login, width="stretch")
        hint = demo_hint(ws)
        if hint:
            st.info(hint)
