"""The command line entry (``python -m grids``): commands are listed and only the one run is imported; one identity
rule (``--user``) for every writing command and ``--unmask``; one set of exit codes."""

from __future__ import annotations

import errno
import importlib.util
import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from grids.__main__ import COMMANDS, main
from grids.auth import DEMO_PASSWORD, create_account, create_demo_accounts, set_active
from grids.build import build_workspace_plan
from grids.workspace import GpkgWorkspace, Workspace, open_workspace

from .conftest import COUNTY, cli_user
from .test_build import V, admin, households

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    built = [n for n in COMMANDS if importlib.util.find_spec(f"grids.commands.{n.replace('import', 'import_')}")]
    assert {"import", "build", "migrate"} <= set(built)
    for name in built:
        assert name in out
    assert "--user" in out and "退出码" in out


def test_unknown_command_names_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "report" in err


def test_a_command_imports_only_its_own_module():
    code = ("import sys\nfrom grids.__main__ import main\n"
            "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('grids.commands.')))\n"
            "print('dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120).stdout.splitlines()
    assert out[-2] == "['grids.commands.check']"
    assert out[-1] == "False"


# -- a small county: 6 villages, 2 branches, 2 customer managers, a draft plan --------------------------------


def cli(argv: list[str]) -> int:
    """Exit code of ``python -m grids argv`` (argparse's usage errors included)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture
def county_ws(empty_ws):
    hh = households({k: 12 for k in range(1, 7)}).to_crs(4490)
    hh["hh_id"] = [f"H{i:03d}" for i in range(len(hh))]
    hh["head_name"] = "张三"
    hh["id_no"] = "150422199001011234"
    branches = gpd.GeoDataFrame({"branch_id": ["B01", "B02"], "name": ["甲镇营业部", "乙镇信用社"]},
                                geometry=hh.geometry.iloc[[0, -1]].to_numpy(), crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["赵六", "钱七"], "branch_id": ["B01", "B02"],
                          "role": ["客户经理", "客户经理"]})
    with empty_ws.transaction(actor="t", action="载入") as tx:
        tx.replace("admin_units", admin().to_crs(4490))
        tx.replace("households", hh)
        tx.replace("branches", branches)
        tx.replace("staff", staff)
    build_workspace_plan(empty_ws, name="main", min_households=5, actor="t")
    return empty_ws


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("hh_id,segment,village_code\n" + "".join(f"{h},{s},{V[1]}\n" for h, s in rows),
                    encoding="utf-8")
    return path


WRITING = {  # command → (argv after the workspace path, given a tmp dir); each needs --user
    "import": lambda ws, tmp: ["import", str(ws.path), "households", str(_csv(tmp / "new.csv", [("N1", "农牧户")]))],
    "build": lambda ws, tmp: ["build", str(ws.path), "--min-households", "5"],
    "assign": lambda ws, tmp: ["assign", str(ws.path)],
    "export --unmask": lambda ws, tmp: ["export", str(ws.path), "--format", "gpkg", "--out", str(tmp / "o.gpkg"),
                                        "--unmask"],
    "migrate": lambda ws, tmp: ["migrate", str(ws.path), str(tmp / "copy.gpkg")],
}


def _state(ws: Workspace) -> tuple[int, int, int]:
    """Audit rows (other than sign-in records), households and grids: what a refused command must not change."""
    audit = ws.read("audit")
    return int((~audit["action"].astype(str).str.contains("登录")).sum()), ws.count("households"), ws.count("grids")


@pytest.mark.parametrize("command", list(WRITING))
def test_writing_command_needs_user_and_audits_that_account(command, county_ws, tmp_path, monkeypatch, capsys):
    argv = WRITING[command](county_ws, tmp_path)
    user = cli_user(county_ws, monkeypatch, username="chief")
    before, revision = _state(county_ws), county_ws.revision
    assert cli(argv) == 2  # no --user: cannot run, nothing written, nothing audited
    assert "--user" in capsys.readouterr().err
    assert _state(county_ws) == before and county_ws.revision == revision
    assert not (tmp_path / "copy.gpkg").exists() and not (tmp_path / "o.gpkg").exists()

    assert cli([*argv, "--user", user]) == 0, capsys.readouterr().err
    last = county_ws.read("audit").iloc[-1]
    assert last["actor"] == "chief"
    assert county_ws.count("audit", where="actor = 'cli'") == 0


def test_no_password_and_no_terminal_cannot_run(county_ws, tmp_path, monkeypatch, capsys):
    user = cli_user(county_ws, monkeypatch)
    monkeypatch.delenv("GRIDS_PASSWORD")
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal: no prompt
    assert cli([*WRITING["build"](county_ws, tmp_path), "--user", user]) == 2
    err = capsys.readouterr().err
    assert "GRIDS_PASSWORD" in err and err.count("\n") == 1


def test_actor_option_is_gone(county_ws, tmp_path, monkeypatch, capsys):
    user = cli_user(county_ws, monkeypatch)
    assert cli([*WRITING["import"](county_ws, tmp_path), "--user", user, "--actor", "leader"]) == 2
    assert "--actor" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(WRITING))
def test_wrong_password_or_disabled_account_cannot_run(command, county_ws, tmp_path, monkeypatch, capsys):
    argv = [*WRITING[command](county_ws, tmp_path), "--user", cli_user(county_ws, monkeypatch)]
    monkeypatch.setenv("GRIDS_PASSWORD", "not-the-password")
    before = _state(county_ws)
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误：") and "密码错误" in err and "Traceback" not in err and err.count("\n") == 1
    assert _state(county_ws) == before
    cli_user(county_ws, monkeypatch)  # the right password again
    set_active(county_ws, "admin", False, actor="t")
    before = _state(county_ws)
    assert cli(argv) == 2
    assert "停用" in capsys.readouterr().err
    assert _state(county_ws) == before
    assert not (tmp_path / "copy.gpkg").exists() and not (tmp_path / "o.gpkg").exists()


@pytest.mark.parametrize(("command", "role", "binding"), [
    ("import", "leadership", {}),
    ("build", "branch_manager", {"branch_id": "B01"}),
    ("assign", "leadership", {}),
    ("export --unmask", "planner", {}),  # may export, may not see personal data
    ("export --unmask", "customer_manager", {"staff_id": "S1"}),
    ("migrate", "planner", {}),  # only an administrator copies every account and household
])
def test_role_without_the_permission_cannot_run(command, role, binding, county_ws, tmp_path, monkeypatch, capsys):
    user = cli_user(county_ws, monkeypatch, username="someone", role=role, **binding)
    before = _state(county_ws)
    assert cli([*WRITING[command](county_ws, tmp_path), "--user", user]) == 2
    err = capsys.readouterr().err
    assert "无权" in err and err.count("\n") == 1
    assert _state(county_ws) == before
    assert not (tmp_path / "copy.gpkg").exists() and not (tmp_path / "o.gpkg").exists()


def test_export_unmask_by_a_branch_manager_stays_in_the_branch(county_ws, tmp_path, monkeypatch, capsys):
    assert cli(["assign", str(county_ws.path), "--user", cli_user(county_ws, monkeypatch)]) == 0
    user = cli_user(county_ws, monkeypatch, username="b01", role="branch_manager", branch_id="B01")
    out = tmp_path / "b.gpkg"
    argv = ["export", str(county_ws.path), "--format", "gpkg", "--out", str(out), "--unmask", "--user", user]
    assert cli([*argv, "--branch", "B02"]) == 2
    assert "B02" in capsys.readouterr().err and not out.exists()
    assert cli(argv) == 0
    assert set(gpd.read_file(out, layer="grids")["branch_id"].dropna()) <= {"B01"}
    last = county_ws.read("audit").iloc[-1]
    assert (last["actor"], last["action"]) == ("b01", "导出（含明文个人信息）")


def test_read_only_commands_need_no_user(county_ws, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GRIDS_PASSWORD", raising=False)
    path = str(county_ws.path)
    before = _state(county_ws), county_ws.revision
    assert cli(["report", path]) == 0
    assert cli(["export", path, "--format", "gpkg", "--out", str(tmp_path / "m.gpkg")]) == 0
    assert cli(["assign", path, "--close-branch", "B02"]) == 0  # a what-if writes nothing
    assert (_state(county_ws), county_ws.revision) == before


# -- exit codes ---------------------------------------------------------------------------------------------


def test_exit_1_for_import_with_rejected_rows(county_ws, tmp_path, monkeypatch, capsys):
    user = cli_user(county_ws, monkeypatch)
    src = _csv(tmp_path / "mixed.csv", [("N1", "农牧户"), ("N2", "不是客群")])
    assert cli(["import", str(county_ws.path), "households", str(src), "--user", user]) == 1
    assert "N1" in set(county_ws.read("households")["hh_id"])
    assert (tmp_path / "mixed.rejects.csv").exists()


def test_exit_1_for_check_with_problems_0_without(county_ws, monkeypatch, capsys):
    path = str(county_ws.path)
    assert cli(["check", path]) == 1  # the draft is not assigned yet
    assert "共" in capsys.readouterr().out
    assert cli(["assign", path, "--user", cli_user(county_ws, monkeypatch)]) == 0
    assert cli(["check", path]) == 0


def test_unreadable_workspace_is_one_line_exit_2(tmp_path, capsys):
    garbage = tmp_path / "broken.gpkg"
    garbage.write_bytes(b"not a database" * 100)
    for argv in (["check", str(garbage)], ["report", str(garbage)], ["check", str(tmp_path / "missing.gpkg")]):
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("错误：") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(("error", "words"), [
    (sqlite3.OperationalError("database or disk is full"), "磁盘已满"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "只读"),
    (sqlite3.DatabaseError("database disk image is malformed"), "已损坏"),
    (OSError(errno.ENOSPC, "No space left on device", "ws.gpkg"), "磁盘已满"),
    (PermissionError(errno.EACCES, "Permission denied", "ws.gpkg"), "没有读写权限"),
    (OSError(errno.EROFS, "Read-only file system", "ws.gpkg"), "只读"),
])
def test_database_and_file_errors_are_one_chinese_line(error, words, county_ws, monkeypatch, capsys):
    import grids.commands.check as check_command

    def fail(*_args, **_kw):
        raise error

    monkeypatch.setattr(check_command, "check_workspace_plan", fail)
    assert cli(["check", str(county_ws.path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误：") and words in err and "修正方法" in err and err.count("\n") == 1


def test_interrupt_exits_130(county_ws, monkeypatch, capsys):
    import grids.commands.check as check_command

    def interrupted(*_args, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(check_command, "check_workspace_plan", interrupted)
    assert cli(["check", str(county_ws.path)]) == 130
    assert capsys.readouterr().err.count("\n") == 1


# -- migrate of a demo workspace ---------------------------------------------------------------------------


@pytest.fixture
def demo_ws(tmp_path):
    ws = GpkgWorkspace.create(tmp_path / "demo.gpkg", **COUNTY, demo=True)
    create_demo_accounts(ws)  # admin, leader, planner, cc01 (no branches, no staff)
    create_account(ws, username="ops", password="ops-own-password", role="planner", actor="admin")
    return ws


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_migrate_demo_drops_demo_accounts_and_flag(backend, demo_ws, tmp_path, monkeypatch, capsys, request):
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    dst = str(tmp_path / "real.gpkg") if backend == "gpkg" else request.getfixturevalue("pg_target")
    assert cli(["migrate", str(demo_ws.path), dst, "--user", "admin"]) == 0
    out = capsys.readouterr().out
    assert "未复制 4 个" in out and "演示标志" in out and "--keep-demo-accounts" in out and "第一个管理员" in out
    real = open_workspace(dst)
    assert not real.is_demo
    assert real.read("accounts")["username"].tolist() == ["ops"]  # its own password: kept
    audit = real.read("audit")
    assert (audit["actor"].iloc[-1], audit["action"].iloc[-1]) == ("admin", "迁移")
    assert "admin" in audit["detail"].iloc[-1] and "drop_demo_accounts" in audit["detail"].iloc[-1]
    assert demo_ws.is_demo and demo_ws.count("accounts") == 5  # the source is as it was


def test_migrate_demo_keeps_demo_accounts_when_asked(demo_ws, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    dst = tmp_path / "copy.gpkg"
    assert cli(["migrate", str(demo_ws.path), str(dst), "--user", "admin", "--keep-demo-accounts"]) == 0
    assert "演示密码是公开的" in capsys.readouterr().out
    copy = GpkgWorkspace(dst)
    assert copy.is_demo and copy.count("accounts") == 5


def test_demo_force_never_replaces_a_real_workspace(tmp_path, capsys, monkeypatch):
    """``demo`` needs no --user, so ``--force`` may replace a demo workspace but never a real one (attack finding:
    a real workspace, its accounts and audit were replaced by a demo on the public password)."""
    import hashlib

    from grids.workspace import GpkgWorkspace

    monkeypatch.delenv("GRIDS_PASSWORD", raising=False)
    path = tmp_path / "real.gpkg"
    GpkgWorkspace.create(path, county_code="150422", county_name="巴林左旗")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["demo", str(path), "--force", "--households", "500"]) == 2
    err = capsys.readouterr().err
    assert "真实工作区" in err and "Traceback" not in err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("command", ["check", "report", "build", "assign", "export"])
def test_every_command_takes_a_postgis_url(command, capsys, monkeypatch):
    """Attack finding: five commands treated ``postgresql://…`` as a file path ("工作区文件不存在")."""
    monkeypatch.setenv("GRIDS_PASSWORD", "x" * 12)
    extra = {"build": ["--user", "a"], "assign": ["--user", "a"], "export": ["--format", "xlsx", "--out", "o.xlsx"]}
    assert main([command, "postgresql://nobody@127.0.0.1:1/db", *extra.get(command, [])]) == 2
    err = capsys.readouterr().err
    assert "PostgreSQL" in err and "工作区文件不存在" not in err
