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
    from grids.store import Workspace

    with pytest.raises(PermissionDeniedError, match="演示工作区"):
        create_demo_accounts(ws)
    demo = Workspace.create(tmp_path / "demo.gpkg", county_code="150422", county_name="巴林左旗", demo=True)
    with demo.transaction(actor="t", action="准备") as tx:
        tx.replace("branches", ws.read("branches"))
        tx.replace("staff", ws.read("staff"))
    accounts = create_demo_accounts(demo)
    assert set(accounts["username"]) == {"admin", "leader", "planner", "b01", "s001"}
    assert authenticate(demo, "b01", DEMO_PASSWORD).account.branch_id == "B01"
    assert authenticate(demo, "s001", DEMO_PASSWORD).account.staff_id == "S001"
