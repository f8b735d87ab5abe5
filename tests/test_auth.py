"""Accounts: argon2 hashes, bindings, sign-in, expiry, audit without secrets; masking of personal data."""

import datetime as dt

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from grids.auth import (
    PERMISSIONS,
    Account,
    AccountAdmin,
    Session,
    authenticate,
    create_account,
    list_accounts,
    set_active,
    set_password,
)
from grids.errors import PermissionDeniedError, ValidationError
from grids.privacy import mask_frame, mask_id_no, mask_phone


@pytest.fixture
def ws(empty_ws):
    branches = gpd.GeoDataFrame({"branch_id": ["B01"], "name": ["林东信用社"]},
                                geometry=[shapely.Point(119.39, 43.98)], crs=4490)
    staff = pd.DataFrame({"staff_id": ["S001"], "name": ["赵六"], "branch_id": ["B01"], "role": ["客户经理"]})
    with empty_ws.transaction(actor="t", action="准备") as tx:
        tx.replace("branches", branches)
        tx.replace("staff", staff)
    return empty_ws


def test_password_is_hashed_and_verified(ws):
    create_account(ws, username="b01", password="correct-horse", role="branch_manager", branch_id="B01", actor="admin")
    stored = ws.read("accounts")["password_hash"].iloc[0]
    assert stored.startswith("$argon2") and "correct-horse" not in stored
    session = authenticate(ws, "b01", "correct-horse")
    assert session.account.branch_id == "B01" and session.account.role == "branch_manager"
    with pytest.raises(PermissionDeniedError, match="用户名或密码错误"):
        authenticate(ws, "b01", "wrong-password")
    with pytest.raises(PermissionDeniedError):
        authenticate(ws, "nobody", "correct-horse")


def test_bindings_are_checked(ws):
    with pytest.raises(ValidationError, match="网点主任必须绑定"):
        create_account(ws, username="x", password="12345678", role="branch_manager", branch_id="B99", actor="a")
    with pytest.raises(ValidationError, match="客户经理必须绑定"):
        create_account(ws, username="y", password="12345678", role="customer_manager", actor="a")
    with pytest.raises(ValidationError, match="未知角色"):
        create_account(ws, username="z", password="12345678", role="boss", actor="a")
    with pytest.raises(ValidationError, match="密码太短"):
        create_account(ws, username="w", password="short", role="planner", actor="a")
    assert ws.count("accounts") == 0


def test_a_missing_branch_cell_binds_a_customer_manager_to_their_staff_rows_branch(ws):
    """An accounts table read from CSV/Excel has NaN where a cell is empty: no binding, not the branch “nan”."""
    from grids.auth import create_accounts

    table = pd.DataFrame({"username": ["s001", "b01"], "password": ["12345678", "12345678"],
                          "role": ["customer_manager", "branch_manager"], "branch_id": [float("nan"), "B01"],
                          "staff_id": ["S001", float("nan")]})
    assert create_accounts(ws, table, actor="admin") == 2
    assert authenticate(ws, "s001", "12345678").account.staff_id == "S001"
    with pytest.raises(ValidationError, match=r"网点主任必须绑定.*None"):
        create_accounts(ws, table.assign(username=["s9", "b9"], branch_id=[None, float("nan")]), actor="admin")


def test_duplicate_username_refused(ws):
    create_account(ws, username="p", password="12345678", role="planner", actor="a")
    with pytest.raises(ValidationError, match="账号已存在"):
        create_account(ws, username="p", password="87654321", role="planner", actor="a")


def test_disable_and_password_change_are_audited_without_secrets(ws):
    create_account(ws, username="p", password="12345678", role="planner", actor="admin")
    set_password(ws, "p", "new-password-1", actor="admin")
    set_active(ws, "p", False, actor="admin")
    with pytest.raises(PermissionDeniedError):
        authenticate(ws, "p", "new-password-1")
    audit = ws.read("audit")
    changes = audit[audit["action"] == "账号变更"]
    assert len(changes) >= 3 and set(changes["actor"]) == {"admin"}
    text = " ".join(audit["detail"])
    assert "new-password-1" not in text and "12345678" not in text and "argon2" not in text
    assert '"before": true' in text and '"after": false' in text
    assert "password_hash" not in list_accounts(ws).columns


def test_account_admin_is_for_administrators_and_audits_under_their_name(ws):
    for role in ("leadership", "planner", "branch_manager", "customer_manager"):
        with pytest.raises(PermissionDeniedError, match="manage_accounts"):
            AccountAdmin(ws, Account("someone", role, branch_id="B01", staff_id="S001"))
    adm = AccountAdmin(ws, Account("root", "admin"))
    adm.create(username="b01", password="12345678", role="branch_manager", branch_id="B01")
    adm.set_password("b01", "another-pass-1")
    adm.set_active("b01", False)
    with pytest.raises(PermissionDeniedError):
        authenticate(ws, "b01", "another-pass-1")
    adm.set_active("b01", True)
    assert authenticate(ws, "b01", "another-pass-1").account.branch_id == "B01"
    with pytest.raises(ValidationError, match="不能停用自己的账号"):
        adm.set_active("root", False)
    changes = ws.read("audit").query("action == '账号变更'")
    assert len(changes) == 4 and set(changes["actor"]) == {"root"}


def test_session_expires():
    s = Session(account=None, started_at=dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC))
    assert not s.expired(dt.datetime(2026, 1, 1, 15, tzinfo=dt.UTC))
    assert s.expired(dt.datetime(2026, 1, 1, 17, tzinfo=dt.UTC))


def test_role_permissions():
    assert "manage_accounts" in PERMISSIONS["admin"]
    assert "manage_accounts" not in PERMISSIONS["leadership"]
    assert "read_all" not in PERMISSIONS["branch_manager"] and "read_all" not in PERMISSIONS["customer_manager"]
    assert "view_personal" not in PERMISSIONS["customer_manager"]


def test_masking():
    assert mask_id_no("150422199001011234") == "150422********1234"
    assert mask_phone("13812345678") == "138****5678"
    df = pd.DataFrame({"id_no": ["150422199001011234", None], "phone": ["13812345678", "13900001111"],
                       "head_name": ["张三", "李四"]})
    masked = mask_frame(df)
    assert masked["id_no"].tolist()[0] == "150422********1234" and masked["id_no"].isna().tolist()[1]
    assert masked["phone"].tolist() == ["138****5678", "139****1111"]
    assert df["phone"].tolist() == ["13812345678", "13900001111"]  # input untouched


def test_demo_accounts_only_on_demo_workspaces(ws, tmp_path):
    from grids.auth import DEMO_PASSWORD, create_demo_accounts
    from grids.workspace import GpkgWorkspace

    with pytest.raises(PermissionDeniedError, match="演示工作区"):
        create_demo_accounts(ws)
    demo = GpkgWorkspace.create(tmp_path / "demo.gpkg", county_code="150422", county_name="巴林左旗", demo=True)
    with demo.transaction(actor="t", action="准备") as tx:
        tx.replace("branches", ws.read("branches"))
        tx.replace("staff", ws.read("staff"))
    accounts = create_demo_accounts(demo)
    assert set(accounts["username"]) == {"admin", "leader", "planner", "b01", "s001", "t01", "cc01"}
    assert authenticate(demo, "b01", DEMO_PASSWORD).account.branch_id == "B01"
    teller = authenticate(demo, "t01", DEMO_PASSWORD).account
    assert (teller.role, teller.branch_id) == ("teller", "B01")
    assert teller.can("serve_credit") and not teller.can("read_branch") and not teller.can("read_all")
    assert authenticate(demo, "cc01", DEMO_PASSWORD).account.can("review_credit")
    assert authenticate(demo, "s001", DEMO_PASSWORD).account.staff_id == "S001"


# -- issue #12 item 8: throttling, timing, failed-login audit, sign-in audit, SSO ------------------------------


def failed_rows(ws):
    audit = ws.read("audit")
    return audit[audit["action"].str.startswith("登录失败")]


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(ws):
    from grids.auth import LOCK_MINUTES, MAX_FAILED_LOGINS, sign_in
    from grids.errors import AccountLockedError

    create_account(ws, username="b01", password="correct-horse", role="branch_manager", branch_id="B01", actor="a")
    rev = ws.revision
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(PermissionDeniedError, match="用户名或密码错误"):
            sign_in(ws, "b01", "wrong-password")
    with pytest.raises(AccountLockedError, match=r"已锁定，\d\d:\d\d（北京时间）后可再试"):
        sign_in(ws, "b01", "correct-horse")
    row = ws.read("accounts").iloc[0]
    assert row["locked_until"] > pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=LOCK_MINUTES - 1)
    assert list_accounts(ws)["locked"].tolist() == [True]
    assert ws.revision == rev  # sign-in bookkeeping does not move the revision (no cache reload for anyone)
    # after the lock time has passed, the right password works and resets the count
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=LOCK_MINUTES + 1)
    assert sign_in(ws, "b01", "correct-horse", now=later).account.username == "b01"
    assert int(ws.read("accounts")["failed_logins"].iloc[0]) == 0


def test_success_resets_the_failure_count(ws):
    from grids.auth import MAX_FAILED_LOGINS, sign_in

    create_account(ws, username="p", password="correct-horse", role="planner", actor="a")
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(PermissionDeniedError):
            sign_in(ws, "p", "nope-nope")
    sign_in(ws, "p", "correct-horse")
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(PermissionDeniedError):
            sign_in(ws, "p", "nope-nope")
    assert sign_in(ws, "p", "correct-horse").account.role == "planner"  # 4 + 4 failures: never locked


def test_unlock_lifts_the_lock_and_is_audited(ws):
    from grids.auth import MAX_FAILED_LOGINS, sign_in
    from grids.errors import AccountLockedError

    create_account(ws, username="p", password="correct-horse", role="planner", actor="a")
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(PermissionDeniedError):
            sign_in(ws, "p", "nope-nope")
    with pytest.raises(AccountLockedError):
        sign_in(ws, "p", "correct-horse")
    with pytest.raises(PermissionDeniedError, match="manage_accounts"):
        AccountAdmin(ws, Account("leader", "leadership")).unlock("p")
    assert AccountAdmin(ws, Account("root", "admin")).unlock("p") is True
    assert sign_in(ws, "p", "correct-horse").account.username == "p"
    note = ws.read("audit").query("actor == 'root'")["detail"].iloc[-1]
    assert '"op": "unlock"' in note and '"failed_logins": 0' in note and '"locked_until": null' in note


def test_locked_admin_may_pass_its_right_password_only_when_asked(ws):
    from grids.auth import MAX_FAILED_LOGINS
    from grids.errors import AccountLockedError

    create_account(ws, username="root", password="correct-horse", role="admin", actor="a")
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(PermissionDeniedError):
            authenticate(ws, "root", "nope-nope")
    with pytest.raises(AccountLockedError):
        authenticate(ws, "root", "correct-horse")
    with pytest.raises(PermissionDeniedError, match="用户名或密码错误"):
        authenticate(ws, "root", "nope-nope", allow_locked=True)
    assert authenticate(ws, "root", "correct-horse", allow_locked=True).account.role == "admin"


def test_unknown_usernames_cost_one_argon2_verification_like_known_ones(ws, monkeypatch):
    from grids import auth

    create_account(ws, username="p", password="correct-horse", role="planner", actor="a")
    calls = []
    real = auth._verify
    monkeypatch.setattr(auth, "_verify", lambda h, pw: calls.append(h) or real(h, pw))
    for name in ("p", "nobody"):
        with pytest.raises(PermissionDeniedError, match="用户名或密码错误"):
            auth.sign_in(ws, name, "wrong-password")
    assert len(calls) == 2 and all(h.startswith("$argon2id$") for h in calls)
    assert calls[0].split("$")[3] == calls[1].split("$")[3]  # same argon2 cost parameters


def test_a_lock_does_not_tell_real_usernames_from_made_up_ones(any_ws, monkeypatch):
    """Attack finding: only real accounts locked (and a locked one answered without argon2), so six tries told
    whether a username exists. Unknown names now lock alike, with the same message, at the same cost."""
    import re

    from grids import auth
    from grids.errors import AccountLockedError

    ws = any_ws
    create_account(ws, username="b07", password="correct-horse", role="planner", actor="a")
    rev = ws.revision
    messages, calls = {}, []
    real = auth._verify
    monkeypatch.setattr(auth, "_verify", lambda h, pw: calls.append(h) or real(h, pw))
    for name in ("b07", "nosuchuser"):
        for _ in range(auth.MAX_FAILED_LOGINS):
            with pytest.raises(PermissionDeniedError, match="用户名或密码错误"):
                auth.sign_in(ws, name, "wrong-password")
        calls.clear()
        with pytest.raises(AccountLockedError) as err:
            auth.sign_in(ws, name, "wrong-password")
        messages[name] = re.sub(r"\d\d:\d\d", "HH:MM", str(err.value))
        assert len(calls) == 1  # one argon2 verification while locked, known or not
    assert messages["b07"] == messages["nosuchuser"]
    assert ws.revision == rev
    assert len(failed_rows(ws)) <= 3  # counters are bookkeeping; the audit stays rate-limited


def test_failed_login_audit_is_rate_limited_and_sanitised(ws):
    from grids.auth import MAX_FAILED_LOGINS, sign_in

    create_account(ws, username="p", password="correct-horse", role="planner", actor="a")
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(PermissionDeniedError):
            sign_in(ws, "p", "nope-nope")
    rows = failed_rows(ws)
    assert len(rows) == 1 and rows["actor"].tolist() == ["p"]  # one row a minute per username
    with pytest.raises(PermissionDeniedError):
        sign_in(ws, "p", "nope-nope")  # the locking failure is always recorded, with the count
    rows = failed_rows(ws)
    assert len(rows) == 2 and '"failed_logins": 5' in rows["detail"].iloc[-1]
    hostile = "x" * 500 + "\n\x1b[31m<script>"
    for i in range(20):
        with pytest.raises(PermissionDeniedError):
            sign_in(ws, f"{hostile}{i}", "nope-nope")
    unknown = failed_rows(ws).query("action == '登录失败（无此用户名）'")
    assert len(unknown) == 1  # unknown names: one row a minute for all of them
    assert len(unknown["actor"].iloc[0]) <= 64 and "\n" not in unknown["actor"].iloc[0]


def test_sign_in_is_refused_when_its_audit_row_cannot_be_written(ws):
    import sqlite3

    from grids.auth import sign_in
    from grids.errors import WorkspaceError

    create_account(ws, username="p", password="correct-horse", role="planner", actor="a")
    with sqlite3.connect(ws.path) as con:
        con.execute("CREATE TRIGGER no_sign_in BEFORE INSERT ON audit WHEN NEW.action = '登录' "
                    "BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END")
    with pytest.raises(WorkspaceError, match="登录未能记入审计，已拒绝登录"):
        sign_in(ws, "p", "correct-horse")


def test_sso_maps_only_verified_emails_to_enabled_accounts():
    from grids.auth import account_for_claims

    accounts = pd.DataFrame({"username": ["li@bank.cn", "wang@bank.cn"], "role": ["planner", "admin"],
                             "display_name": ["李", "王"], "branch_id": [None, None], "staff_id": [None, None],
                             "active": [True, False]})
    assert account_for_claims({"email": "li@bank.cn", "email_verified": True}, accounts).username == "li@bank.cn"
    assert account_for_claims({"email": " LI@bank.cn ", "email_verified": "true"}, accounts).role == "planner"
    for claims in ({"email": "li@bank.cn"}, {"email": "li@bank.cn", "email_verified": False},
                   {"email": "li@bank.cn", "email_verified": "False"}, {"email": "li@bank.cn", "email_verified": 1},
                   {"email": "wang@bank.cn", "email_verified": True},  # disabled
                   {"email": "", "email_verified": True}, {"email_verified": True}):
        assert account_for_claims(claims, accounts) is None, claims


# -- issue #12 item 4: live sessions ---------------------------------------------------------------------------


def test_refresh_ends_disabled_and_password_reset_sessions(ws):
    from grids.auth import refresh, sign_in

    create_account(ws, username="b01", password="correct-horse", role="branch_manager", branch_id="B01", actor="a")
    session = sign_in(ws, "b01", "correct-horse")
    assert refresh(ws, session) is session
    set_active(ws, "b01", False, actor="admin")
    with pytest.raises(PermissionDeniedError, match="停用"):
        refresh(ws, session)
    set_active(ws, "b01", True, actor="admin")
    assert refresh(ws, session) is session
    set_password(ws, "b01", "another-pass-1", actor="admin")
    with pytest.raises(PermissionDeniedError, match="密码已被修改"):
        refresh(ws, session)
    fresh = sign_in(ws, "b01", "another-pass-1")
    assert refresh(ws, fresh) is fresh
    old = Session(fresh.account, dt.datetime.now(dt.UTC) - dt.timedelta(hours=9), mark=fresh.mark)
    with pytest.raises(PermissionDeniedError, match="已自动退出"):
        refresh(ws, old)


def test_refresh_applies_role_and_binding_changes_and_audits_them(ws):
    from grids.auth import refresh, sign_in

    create_account(ws, username="b01", password="correct-horse", role="branch_manager", branch_id="B01", actor="a")
    session = sign_in(ws, "b01", "correct-horse")
    AccountAdmin(ws, Account("root", "admin")).set_role("b01", role="customer_manager", branch_id="B01",
                                                        staff_id="S001")
    now = refresh(ws, session)
    assert (now.account.role, now.account.staff_id) == ("customer_manager", "S001")
    assert now.started_at == session.started_at
    note = ws.read("audit")["detail"].iloc[-1]
    assert '"before": {"role": "branch_manager", "branch_id": "B01", "staff_id": null}' in note
    assert '"after": {"role": "customer_manager", "branch_id": "B01", "staff_id": "S001"}' in note
    with pytest.raises(ValidationError, match="未知角色"):
        AccountAdmin(ws, Account("root", "admin")).set_role("b01", role="boss")
    with pytest.raises(ValidationError, match="不能取消自己的管理员角色"):
        AccountAdmin(ws, Account("root", "admin")).set_role("root", role="planner")


def test_account_creation_audit_records_role_and_scope(ws):
    create_account(ws, username="s1", password="12345678", role="customer_manager", branch_id="B01",
                   staff_id="S001", actor="admin")
    note = ws.read("audit")["detail"].iloc[-1]
    assert '"username": "s1", "role": "customer_manager", "branch_id": "B01", "staff_id": "S001"' in note
    assert "12345678" not in note and "argon2" not in note


# -- python -m grids accounts ----------------------------------------------------------------------------------


def cli(*argv, password=None, new_password=None, monkeypatch):
    from grids.__main__ import main

    for env, value in (("GRIDS_PASSWORD", password), ("GRIDS_NEW_PASSWORD", new_password)):
        if value is None:
            monkeypatch.delenv(env, raising=False)
        else:
            monkeypatch.setenv(env, value)
    return main(["accounts", *map(str, argv)])


def test_cli_first_admin_needs_no_user_then_every_change_needs_an_admin(ws, monkeypatch, capsys):
    path = ws.path
    assert cli("add", path, "b01", "--role", "branch_manager", "--branch", "B01", new_password="pass-b01-pass",
               monkeypatch=monkeypatch) == 2  # no admin yet: only an admin may be made without --user
    assert cli("add", path, "root", "--role", "admin", new_password="root-password",
               monkeypatch=monkeypatch) == 0
    assert list_accounts(ws)["username"].tolist() == ["root"]
    assert ws.read("audit")["actor"].iloc[-1] == "cli:first-admin"
    assert cli("add", path, "root2", "--role", "admin", new_password="root-password",
               monkeypatch=monkeypatch) == 2  # there is an admin now
    assert "需要 --user" in capsys.readouterr().err
    assert cli("add", path, "b01", "--role", "branch_manager", "--branch", "B01", "--user", "root",
               password="wrong-password", new_password="pass-b01-pass", monkeypatch=monkeypatch) == 2
    assert cli("add", path, "b01", "--role", "branch_manager", "--branch", "B01", "--user", "root",
               password="root-password", new_password="pass-b01-pass", monkeypatch=monkeypatch) == 0
    assert cli("add", path, "p", "--role", "planner", "--user", "b01", password="pass-b01-pass",
               new_password="pass-p-pass", monkeypatch=monkeypatch) == 2  # not an admin
    assert "manage_accounts" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli("disable", path, "b01", monkeypatch=monkeypatch)  # --user is required
    assert exc.value.code == 2
    assert cli("disable", path, "b01", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 0
    assert cli("disable", path, "root", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 2
    assert cli("enable", path, "b01", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 0
    assert cli("passwd", path, "b01", "--user", "root", password="root-password", new_password="new-b01-pass",
               monkeypatch=monkeypatch) == 0
    assert authenticate(ws, "b01", "new-b01-pass").account.branch_id == "B01"
    assert cli("disable", path, "nobody", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 2
    capsys.readouterr()
    assert cli("list", path, "--json", monkeypatch=monkeypatch) == 0  # read-only: no user
    listed = {r["username"]: r for r in __import__("json").loads(capsys.readouterr().out)}
    assert listed["b01"]["role"] == "branch_manager" and listed["b01"]["active"] is True
    assert "password_hash" not in listed["b01"]
    assert set(ws.read("audit").query("action == '账号变更'")["actor"]) == {"cli:first-admin", "root"}


def test_cli_unlock_lifts_a_lock_also_for_a_locked_admin_itself(ws, monkeypatch):
    from grids.auth import MAX_FAILED_LOGINS

    create_account(ws, username="root", password="root-password", role="admin", actor="t")
    create_account(ws, username="p", password="correct-horse", role="planner", actor="t")
    for name in ("root", "p"):
        for _ in range(MAX_FAILED_LOGINS):
            with pytest.raises(PermissionDeniedError):
                authenticate(ws, name, "nope-nope")
    # other subcommands refuse a locked admin; unlock takes its right password (never a wrong one)
    assert cli("disable", ws.path, "p", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 2
    assert cli("unlock", ws.path, "root", "--user", "root", password="wrong-pass", monkeypatch=monkeypatch) == 2
    assert cli("unlock", ws.path, "p", "--user", "p", password="correct-horse", monkeypatch=monkeypatch) == 2
    assert list_accounts(ws)["locked"].tolist() == [True, True]
    assert cli("unlock", ws.path, "root", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 0
    assert cli("unlock", ws.path, "p", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 0
    assert authenticate(ws, "p", "correct-horse").account.role == "planner"
    assert cli("unlock", ws.path, "p", "--user", "root", password="root-password", monkeypatch=monkeypatch) == 1
    unlocks = ws.read("audit")["detail"].str.contains('"op": "unlock"').sum()
    assert unlocks == 3


def test_lockout_and_live_session_on_both_backends(any_ws):
    """The counter, the lock and the session check live in the workspace: GeoPackage and PostGIS alike."""
    from grids.auth import MAX_FAILED_LOGINS, refresh, sign_in
    from grids.errors import AccountLockedError

    create_account(any_ws, username="p", password="correct-horse", role="planner", actor="a")
    session = sign_in(any_ws, "p", "correct-horse")
    rev = any_ws.revision
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(PermissionDeniedError, match="用户名或密码错误"):
            sign_in(any_ws, "p", "nope-nope")
    with pytest.raises(AccountLockedError):
        sign_in(any_ws, "p", "correct-horse")
    assert any_ws.revision == rev and list_accounts(any_ws)["locked"].tolist() == [True]
    assert len(failed_rows(any_ws)) == 2  # the first failure, and the lock
    assert refresh(any_ws, session) is session  # a lock (someone else guessing) does not end the session
    set_active(any_ws, "p", False, actor="admin")
    with pytest.raises(PermissionDeniedError, match="停用"):
        refresh(any_ws, session)


def test_parallel_wrong_passwords_all_count(ws):
    from concurrent.futures import ThreadPoolExecutor

    from grids.auth import MAX_FAILED_LOGINS, sign_in

    create_account(ws, username="p", password="correct-horse", role="planner", actor="a")

    def attempt(_):
        with pytest.raises(PermissionDeniedError):
            sign_in(ws, "p", "nope-nope")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(attempt, range(MAX_FAILED_LOGINS - 1)))
    assert int(ws.read("accounts")["failed_logins"].iloc[0]) == MAX_FAILED_LOGINS - 1


@pytest.mark.parametrize("name", [" admin", "ad\nmin", "ＡＤＭＩＮ", "ADMIN", "ad min", "adm\u200bin"])
def test_look_alike_usernames_are_refused(ws, name):
    """Attack finding: " admin", "ADMIN" and "ad\\nmin" became accounts beside admin (an audit actor to hide
    behind). Usernames are plain characters, unique regardless of case."""
    create_account(ws, username="admin", password="correct-horse", role="admin", actor="a")
    with pytest.raises(ValidationError):
        create_account(ws, username=name, password="correct-horse", role="admin", actor="a")
    assert ws.read("accounts")["username"].tolist() == ["admin"]


def test_a_customer_manager_is_bound_within_the_staff_members_branch(ws):
    """Attack finding: a customer manager could be bound to B01 with a staff member of another branch."""
    with ws.transaction(actor="t", action="准备") as tx:
        tx.append("branches", gpd.GeoDataFrame({"branch_id": ["B09"], "name": ["十三敖包信用社"]},
                                               geometry=[shapely.Point(119.5, 44.1)], crs=4490))
        tx.append("staff", pd.DataFrame({"staff_id": ["S050"], "name": ["钱七"], "branch_id": ["B09"],
                                         "role": ["客户经理"]}))
    with pytest.raises(ValidationError, match="属于网点 B09"):
        create_account(ws, username="cm", password="correct-horse", role="customer_manager", staff_id="S050",
                       branch_id="B01", actor="a")
    assert create_account(ws, username="cm", password="correct-horse", role="customer_manager", staff_id="S050",
                          branch_id="B09", actor="a").staff_id == "S050"
