"""Live sessions and sign-in through the app (AppTest): an account's status and role are read at every run,
lockout after repeated wrong passwords, unlock on 账号与审计, forged widget state on 账号与审计 refused by the
library (issue #12 items 4, 8 and the accounts part of 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from grids.auth import MAX_FAILED_LOGINS, Account, AccountAdmin, create_account
from grids.workspace import GpkgWorkspace
from tests.forged import forge_select
from tests.test_app import APP, FakeUser, tiny_workspace
from ui.auth import session_for

PASSWORD = "correct-horse-1"
ADMIN = Account("root", "admin", "管理员")


@pytest.fixture
def ws_path(tmp_path, monkeypatch) -> Path:
    path = tiny_workspace(tmp_path / "ws.gpkg")
    ws = GpkgWorkspace(path)
    create_account(ws, username="b01", password=PASSWORD, role="branch_manager", branch_id="B1", actor="test",
                   display_name="林东主任")
    create_account(ws, username="root", password=PASSWORD, role="admin", actor="test")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    return path


def signed_in(username: str, password: str = PASSWORD) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click()
    return at.run()


def shows_login_form(at: AppTest) -> bool:
    return [t.label for t in at.text_input] == ["用户名", "密码"] and at.session_state["auth.session"] is None


def next_run_signs_out(at: AppTest, reason: str) -> bool:
    """The next run ends the session with ``reason`` before any data, and the login form shows it.

    (AppTest reruns the page script by itself, where :func:`ui.auth.current_account` ends the session; the
    server reruns app.py, which shows the login form: both are checked.)
    """
    at.run()
    assert not at.exception
    assert at.session_state["auth.session"] is None and reason in warnings(at)
    assert not at.dataframe and not at.metric  # nothing of the account's data on screen
    at.switch_page("app.py").run()
    return shows_login_form(at) and reason in warnings(at)


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


# -- item 4: live sessions ----------------------------------------------------------------------------------


def test_disabling_an_account_ends_its_open_session_at_the_next_run(ws_path):
    at = signed_in("b01")
    assert not at.exception and at.session_state["auth.session"].account.username == "b01"
    AccountAdmin(GpkgWorkspace(ws_path), ADMIN).set_active("b01", False)
    assert next_run_signs_out(at, "账号已被管理员停用")  # b01's next interaction


def test_resetting_a_password_ends_the_open_session(ws_path):
    at = signed_in("b01")
    AccountAdmin(GpkgWorkspace(ws_path), ADMIN).set_password("b01", "a-new-password")
    assert next_run_signs_out(at, "密码已被修改")
    at = signed_in("b01", "a-new-password")
    assert at.session_state["auth.session"].account.username == "b01"


def test_a_role_change_applies_at_the_next_run(ws_path):
    at = signed_in("b01")
    assert at.session_state["app.role"] == "branch_manager"
    AccountAdmin(GpkgWorkspace(ws_path), ADMIN).set_role("b01", role="customer_manager", branch_id="B1", staff_id="S1")
    at.run()
    assert not at.exception
    account = at.session_state["auth.session"].account
    assert (account.role, account.staff_id, at.session_state["app.role"]) == ("customer_manager", "S1",
                                                                             "customer_manager")
    at.switch_page("app.py").run()  # the server's rerun: app.py draws the new role's navigation and sidebar
    assert not at.exception
    assert any("客户经理（b01）" in c.value for c in at.sidebar.caption)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/staffing.py")  # the branch manager's page is gone from the navigation


# -- item 8: throttling through the login form ----------------------------------------------------------------


def test_six_wrong_passwords_lock_and_admin_unlocks_on_the_admin_page(ws_path):
    for _ in range(MAX_FAILED_LOGINS):
        at = signed_in("b01", "wrong-password")
        assert any("用户名或密码错误" in e.value for e in at.error)
    at = signed_in("b01", PASSWORD)  # the 6th attempt, with the right password
    assert not at.exception and at.session_state["auth.session"] is None
    assert any("已锁定" in e.value and "北京时间" in e.value for e in at.error)

    adm = AppTest.from_file(APP, default_timeout=60)
    adm.session_state["auth.session"] = session_for(ADMIN)
    adm.run()
    adm.switch_page("pages/admin.py").run()
    adm.selectbox(key="admin.user").set_value("b01").run()
    assert any("已锁定至" in w.value for w in adm.warning)
    adm.button(key="admin.unlock").click().run()
    assert not adm.exception
    assert signed_in("b01").session_state["auth.session"].account.username == "b01"
    note = GpkgWorkspace(ws_path).read("audit").query("action == '账号变更' and actor == 'root'")["detail"].iloc[-1]
    assert '"op": "unlock"' in note


def test_a_sign_in_whose_audit_fails_gives_no_session(ws_path):
    import sqlite3

    with sqlite3.connect(ws_path) as con:
        con.execute("CREATE TRIGGER no_sign_in BEFORE INSERT ON audit WHEN NEW.action = '登录' "
                    "BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END")
    at = signed_in("b01")
    assert not at.exception and shows_login_form(at)
    assert any("登录未能记入审计" in e.value for e in at.error)


@pytest.mark.parametrize("verified", [False, None])
def test_single_sign_on_refuses_unverified_emails(ws_path, monkeypatch, verified):
    import streamlit

    from tests.test_app import AUTH_SECRETS

    email = "[点此](http://evil.invalid)"  # what the identity provider sends is text, not Markdown
    claims = {"email": email} if verified is None else {"email": email, "email_verified": verified}
    monkeypatch.setattr(streamlit, "user", FakeUser(**claims))
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH_SECRETS
    at.run()
    assert not at.exception and at.session_state["auth.session"] is None
    shown = " ".join(e.value for e in at.error)
    assert "邮箱未经验证" in shown and "\\[点此\\]\\(" in shown


# -- item 9 (accounts) and forged widget state on 账号与审计 -------------------------------------------------------
# (forge_select: the tampered-client harness of tests/forged.py)


def admin_page(account: Account = ADMIN) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(account)
    at.run()
    return at.switch_page("pages/admin.py").run()


def accounts(ws_path: Path):
    return GpkgWorkspace(ws_path).read("accounts").set_index("username")


def test_forged_role_value_is_refused_by_the_library(ws_path):
    at = admin_page()
    at.text_input(key="admin.new_username").input("boss1")
    at.text_input(key="admin.new_password_initial").input("a-long-password")
    forge_select(at, "admin.new_role", "superuser")  # a value the select box never offered
    next(b for b in at.button if b.label == "新建").click()
    at.run()
    assert not at.exception
    # Streamlit drops a value outside the options (the box has no default, so no role is chosen for the
    # forger: never the first option, admin); the library refuses what is left
    assert any("没有选择角色" in e.value for e in at.error)
    assert "boss1" not in accounts(ws_path).index


def test_forged_username_cannot_disable_oneself(ws_path):
    at = admin_page()
    at.selectbox(key="admin.user").set_value("b01").run()
    assert not at.button(key="admin.toggle").disabled
    forge_select(at, "admin.user", "root")  # b01 on screen; the click names oneself
    at.button(key="admin.toggle").click().run()  # … refused by the library
    assert not at.exception
    assert any("不能停用自己的账号" in e.value for e in at.error)
    assert bool(accounts(ws_path).loc["root", "active"])


def test_leader_forging_an_account_change_changes_nothing(ws_path):
    before = accounts(ws_path)
    at = admin_page(Account("leader", "leadership"))
    assert [t.label for t in at.tabs] == ["审计记录"]
    for key, value in {"admin.user": "b01", "admin.toggle": True, "admin.unlock": True, "admin.reset": True,
                       "admin.new_password": "forged-password", "admin.set_role": "admin"}.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception
    assert accounts(ws_path).equals(before)
    with pytest.raises(Exception, match="manage_accounts"):
        AccountAdmin(GpkgWorkspace(ws_path), Account("leader", "leadership")).set_active("b01", False)


def test_role_change_on_the_admin_page_is_audited_with_before_and_after(ws_path):
    at = admin_page()
    at.selectbox(key="admin.user").set_value("b01").run()
    at.selectbox(key="admin.set_role").set_value("planner")
    next(b for b in at.button if b.label == "修改 b01 的角色").click()
    at.run()
    assert not at.exception
    assert accounts(ws_path).loc["b01", "role"] == "planner"
    note = GpkgWorkspace(ws_path).read("audit")["detail"].iloc[-1]
    assert '"before": {"role": "branch_manager", "branch_id": "B1"' in note and '"after": {"role": "planner"' in note


# -- demo hint only on demo workspaces -------------------------------------------------------------------------


def test_login_form_has_no_demo_hint_on_a_real_workspace(ws_path):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert shows_login_form(at)
    assert not any("wgt-demo-2026" in i.value for i in at.info)
