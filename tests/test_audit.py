"""The audit you can trust (issue #12 item 9) and storage failures as one-line errors (item 10), GeoPackage.

The PostGIS side of the same rules (trigger function, chain, upgrade) is in tests/test_store_pg.py.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from grids.__main__ import main
from grids.audit import GENESIS, chain_head, row_hash, verify
from grids.errors import WorkspaceError
from grids.model import LAYERS
from grids.workspace import SCHEMA_VERSION, GpkgWorkspace, Workspace
from grids.workspace.base import AUDIT_APPEND_ONLY

from .conftest import COUNTY, three_households

STAFF = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["赵六", "钱七"], "branch_id": ["B01", "B01"]})


def _filled(path: Path) -> Workspace:
    """A workspace with four audit rows."""
    ws = GpkgWorkspace.create(path, **COUNTY)
    ws.write("households", three_households(), actor="alice", action="导入农户")
    ws.write("staff", STAFF, actor="bob", action="导入员工")
    with ws.transaction(actor="carol", action="删除") as tx:
        tx.delete("households", where="hh_id = ?", params=["H2"])
    with ws.transaction(actor="leader", action="查看明文个人信息") as tx:
        tx.note("households", {"rows": 2})
    return ws


@contextlib.contextmanager
def _raw(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        yield con
    finally:
        con.close()


def _drop_guard(con: sqlite3.Connection) -> None:
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("DROP TRIGGER audit_no_delete")


# -- append-only ----------------------------------------------------------------------------------------------


def test_raw_update_and_delete_of_audit_rows_fail_with_triggers_in_place(tmp_path):
    ws = _filled(tmp_path / "ws.gpkg")
    before = ws.read("audit")
    with _raw(ws.path) as con:
        for sql in ("UPDATE audit SET actor = 'nobody' WHERE fid = 1", "DELETE FROM audit WHERE fid = 2",
                    "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match=AUDIT_APPEND_ONLY):
                con.execute(sql)
        con.execute("INSERT INTO audit (actor) VALUES ('appending is allowed')")
    pd.testing.assert_frame_equal(ws.read("audit").iloc[:4], before, check_dtype=False)


# -- hash chain -----------------------------------------------------------------------------------------------


def test_each_row_is_chained_to_the_one_before(tmp_path):
    ws = _filled(tmp_path / "ws.gpkg")
    records = ws.audit_records()
    assert len(records) == 4 and records[0][7] == GENESIS
    for before, row in itertools.pairwise(records):
        assert row[7] == before[8]
    _, at, actor, action, layer, revision, detail, prev, digest = records[1]
    assert digest == row_hash(prev, at=at, actor=actor, action=action, layer=layer, revision=revision,
                              detail=detail)
    assert actor == "bob" and at.endswith("Z") and len(digest) == 64


def test_verify_passes_on_an_intact_workspace_and_head_names_the_last_hash(tmp_path, capsys):
    ws = _filled(tmp_path / "ws.gpkg")
    result = verify(ws)
    assert result.ok and result.rows == 4 and result.fid is None
    last = ws.audit_records()[-1][8]
    assert chain_head(ws) == result.head == f"{last[:16]}（4 条）"
    assert main(["audit", "verify", str(ws.path)]) == 0
    out = capsys.readouterr().out
    assert "审计记录完整：4 条" in out and last[:16] in out
    assert main(["audit", "head", str(ws.path)]) == 0 and last[:16] in capsys.readouterr().out


def test_report_and_export_print_the_chain_head(tmp_path, capsys):
    ws = _filled(tmp_path / "ws.gpkg")
    assert main(["report", str(ws.path)]) == 0
    assert f"审计链头：{chain_head(ws)}" in capsys.readouterr().out
    assert main(["report", str(ws.path), "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["audit_head"] == chain_head(ws)


def test_verify_detects_an_update_made_with_raw_sqlite_after_dropping_the_trigger(tmp_path, capsys):
    ws = _filled(tmp_path / "ws.gpkg")
    with _raw(ws.path) as con:
        _drop_guard(con)
        con.execute("UPDATE audit SET actor = 'alice' WHERE fid = 3")  # carol's delete blamed on alice
    result = verify(ws)
    assert not result.ok and result.fid == 3 and result.actor == "alice" and "被修改" in result.reason
    assert main(["audit", "verify", str(ws.path)]) == 1
    out = capsys.readouterr().out
    assert "fid 3" in out and "alice" in out and result.at in out


def test_verify_detects_a_delete_in_the_middle_and_a_rewritten_row(tmp_path, capsys):
    ws = _filled(tmp_path / "ws.gpkg")
    with _raw(ws.path) as con:
        _drop_guard(con)
        con.execute("DELETE FROM audit WHERE fid = 2")
    result = verify(ws)
    assert not result.ok and result.fid == 3 and "上一条" in result.reason
    assert main(["audit", "verify", str(ws.path)]) == 1 and "fid 3" in capsys.readouterr().out

    other = _filled(tmp_path / "other.gpkg")
    with _raw(other.path) as con:  # an editor who recomputes the row's own hash still breaks the next link
        _drop_guard(con)
        fid, at, _, action, layer, revision, detail, prev, _ = other.audit_records()[1]
        forged = row_hash(prev, at=at, actor="mallory", action=action, layer=layer, revision=revision, detail=detail)
        con.execute("UPDATE audit SET actor = 'mallory', hash = ? WHERE fid = ?", (forged, fid))
    assert verify(other).fid == 3


def test_rows_written_outside_the_chain_are_named(tmp_path):
    ws = _filled(tmp_path / "ws.gpkg")
    with _raw(ws.path) as con:
        con.execute("INSERT INTO audit (\"at\", actor, action) VALUES ('2026-01-01T00:00:00.000Z', 'x', '伪造')")
    result = verify(ws)
    assert not result.ok and result.fid == 5 and "没有哈希" in result.reason
    assert chain_head(ws).endswith("（5 条）")


def test_chain_continues_after_a_refused_write(tmp_path):
    ws = _filled(tmp_path / "ws.gpkg")
    with pytest.raises(RuntimeError), ws.transaction(actor="t", action="坏的") as tx:
        tx.append("staff", STAFF.assign(staff_id=["S3", "S4"]))
        raise RuntimeError("boom")
    ws.write("staff", STAFF.assign(staff_id=["S5", "S6"]), mode="append", actor="dave")
    assert verify(ws).ok and verify(ws).rows == 5


# -- upgrade of older workspaces ------------------------------------------------------------------------------

_NEW_COLUMNS = {"audit": ("prev_hash", "hash"), "households": ("version",), "grids": ("version",),
                "accounts": ("failed_logins", "locked_until")}


def _old_workspace(path: Path) -> Path:
    """A workspace as the base commit wrote it: no version/lockout/hash columns, no triggers, ``schema`` 1."""
    _filled(path)
    with _raw(path) as con:
        _drop_guard(con)
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'ws_edit_%'"):
            con.execute(f'DROP TRIGGER "{name}"')  # schema 5's edit log did not exist either
        con.execute("DROP TABLE ws_external_edits")
        con.execute("DROP TABLE ws_edit_guard")
        for table, cols in _NEW_COLUMNS.items():
            for col in cols:
                con.execute(f'ALTER TABLE {table} DROP COLUMN "{col}"')
        con.execute("UPDATE ws_meta SET value = '1' WHERE key = 'schema'")
    return path


def _columns(path: Path, table: str) -> set[str]:
    with _raw(path) as con:
        return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}


def test_opening_an_old_workspace_upgrades_it_once(tmp_path):
    path = _old_workspace(tmp_path / "old.gpkg")
    assert "hash" not in _columns(path, "audit")
    ws = GpkgWorkspace(path)
    for table, cols in _NEW_COLUMNS.items():
        assert set(cols) <= _columns(path, table), table
    assert set(LAYERS["households"].columns) <= set(ws.read("households").columns)
    assert ws.meta["schema"] == str(SCHEMA_VERSION) and ws.revision == 4
    log = ws.read("audit")
    assert len(log) == 5 and log["action"].iloc[-1] == "升级工作区" and log["actor"].iloc[-1] == "system"
    assert '"rows_chained": 4' in log["detail"].iloc[-1] and "households.version" in log["detail"].iloc[-1]
    assert verify(ws).ok and ws.audit_records()[0][7] == GENESIS
    with _raw(path) as con, pytest.raises(sqlite3.IntegrityError, match=AUDIT_APPEND_ONLY):
        con.execute("DELETE FROM audit")
    ws.write("staff", STAFF.assign(staff_id=["S7", "S8"]), mode="append", actor="t")
    assert verify(ws).ok and verify(ws).rows == 6

    before = path.read_bytes()
    GpkgWorkspace(path)  # nothing left to do: the file is not touched
    assert path.read_bytes() == before


def test_two_processes_opening_an_old_workspace_at_once_upgrade_it_once(tmp_path):
    path = _old_workspace(tmp_path / "old.gpkg")
    start, errors = threading.Barrier(4), []

    def open_it() -> None:
        start.wait()
        try:
            GpkgWorkspace(path)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ws = GpkgWorkspace(path)
    assert ws.read("audit")["action"].tolist().count("升级工作区") == 1 and verify(ws).ok


def test_old_workspace_on_the_command_line_is_upgraded_and_verified(tmp_path):
    path = _old_workspace(tmp_path / "old.gpkg")
    res = subprocess.run([sys.executable, "-m", "grids", "audit", "verify", str(path)], capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0, res.stderr
    assert "审计记录完整：5 条" in res.stdout


# -- storage failures: one line in Chinese, no traceback ------------------------------------------------------


@contextlib.contextmanager
def _mount(*args: str) -> None:
    """Run ``mount *args`` for the block (tests run as root in the container); skip where mounting is refused."""
    res = subprocess.run(["mount", *args], capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"mount refused here: {res.stderr.strip()}")
    try:
        yield
    finally:
        if subprocess.run(["umount", args[-1]], capture_output=True).returncode:
            subprocess.run(["umount", "-l", args[-1]], check=True)  # still busy: detach now, free when closed


def _cli_error(path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grids", *argv, str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])


def test_read_only_mount_gives_one_line_error_and_reads_still_work(tmp_path):
    src = tmp_path / "rw"
    src.mkdir()
    ws = _filled(src / "ws.gpkg")
    before = ws.path.read_bytes()
    ro = tmp_path / "ro"
    ro.mkdir()
    with _mount("--bind", "-o", "ro", str(src), str(ro)):
        if not subprocess.run(["touch", str(ro / "probe")], capture_output=True).returncode:
            pytest.skip("the bind mount is writable here")
        ro_ws = GpkgWorkspace(ro / "ws.gpkg")
        assert len(ro_ws.read("households")) == 2 and verify(ro_ws).ok
        with pytest.raises(WorkspaceError, match="工作区是只读的") as err:
            ro_ws.write("staff", STAFF.assign(staff_id=["S9", "S10"]), mode="append", actor="t")
        assert "修正方法" in str(err.value) and "\n" not in str(err.value)
    assert ws.path.read_bytes() == before


def test_read_only_old_workspace_opens_without_upgrade(tmp_path):
    src = tmp_path / "rw"
    src.mkdir()
    path = _old_workspace(src / "old.gpkg")
    ro = tmp_path / "ro"
    ro.mkdir()
    with _mount("--bind", "-o", "ro", str(src), str(ro)):
        ws = GpkgWorkspace(ro / "old.gpkg")
        assert ws.meta["schema"] == "1" and len(ws.read("staff")) == 2
        assert not verify(ws).ok and chain_head(ws) == "未建立哈希链（4 条）"
    assert GpkgWorkspace(path).meta["schema"] == str(SCHEMA_VERSION)


def test_full_disk_gives_one_line_error_and_keeps_the_workspace(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    with _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)):
        ws = GpkgWorkspace.create(disk / "ws.gpkg", **COUNTY)
        ws.write("staff", STAFF, actor="t")
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        before = ws.path.read_bytes()
        big = three_households()
        big = pd.concat([big] * 3000, ignore_index=True)
        big["hh_id"] = [f"H{i}" for i in range(len(big))]
        with pytest.raises(WorkspaceError, match="磁盘已满") as err:
            ws.write("households", big, actor="t")
        assert "修正方法：清理" in str(err.value)
        assert ws.path.read_bytes() == before and ws.count("households") == 0
        res = _cli_error(ws.path, "audit", "verify")
        assert res.returncode == 0  # reading a workspace on a full disk still works
        (disk / "filler").unlink()


def _corrupt(tmp_path: Path) -> Path:
    """A workspace whose middle pages (the households table) are overwritten with garbage."""
    ws = GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
    many = pd.concat([three_households()] * 400, ignore_index=True)
    many["hh_id"] = [f"H{i}" for i in range(len(many))]
    many["address"] = "巴林左旗林东镇某某村" * 5
    ws.write("households", many, actor="t")
    data = bytearray(ws.path.read_bytes())
    page = 4096
    # the middle of the households' pages (found by their text: other tables' pages may lie mid-file too)
    text, found, at = "巴林左旗林东镇某某村".encode(), [], 0
    while (at := data.find(text, at)) >= 0:
        found.append(at)
        at += page
    middle = (found[len(found) // 2] // page - 2) * page
    data[middle:middle + 4 * page] = b"\xa5" * (4 * page)
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(bytes(data))
    return bad


def test_corrupt_page_mid_file_gives_one_line_error_from_read_and_write(tmp_path):
    bad = _corrupt(tmp_path)
    # the header and schema pages are intact: opening may already look at the damaged page (the check for
    # edits made outside the library reads every table's schema) or only the read does; either way one line
    with pytest.raises(WorkspaceError, match="工作区文件已损坏") as err:
        GpkgWorkspace(bad).read("households")
    assert "修正方法：从备份恢复" in str(err.value)
    with pytest.raises(WorkspaceError, match="工作区文件已损坏"), \
            GpkgWorkspace(bad).transaction(actor="t", action="改") as tx:
        tx.execute("UPDATE households SET grade = 'A'")
    res = _cli_error(bad, "report")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("错误：") and "已损坏" in res.stderr and res.stderr.count("\n") == 1



def test_faking_an_old_schema_does_not_launder_an_edited_trail(tmp_path, capsys):
    """Attack finding: with ``schema`` set back to 1 the upgrade on open re-hashed every row, so ``audit verify``
    passed an edited and shortened trail. A trail that already carries hashes is never re-chained."""
    ws = _filled(tmp_path / "ws.gpkg")
    with _raw(ws.path) as con:
        _drop_guard(con)
        first = con.execute("SELECT min(fid) FROM audit").fetchone()[0]
        con.execute("UPDATE audit SET actor = 'someone-else' WHERE fid = ?", (first,))
        con.execute("DELETE FROM audit WHERE fid = ?", (first + 1,))
        con.execute("UPDATE ws_meta SET value = '1' WHERE key = 'schema'")
    assert main(["audit", "verify", str(ws.path)]) == 1
    assert str(first) in capsys.readouterr().out
    with _raw(ws.path) as con, pytest.raises(sqlite3.DatabaseError):  # the guard is back all the same
        con.execute("UPDATE audit SET actor = 'x'")


def test_verify_detects_the_last_rows_cut_off(tmp_path, capsys):
    """Attack finding: deleting the newest rows left a chain that verified; the workspace revision says more
    changes were committed than the trail records."""
    ws = _filled(tmp_path / "ws.gpkg")
    with _raw(ws.path) as con:
        _drop_guard(con)
        last_data = con.execute("SELECT max(fid) FROM audit WHERE revision = (SELECT max(revision) FROM audit)"
                                " AND action <> '查看明文个人信息'").fetchone()[0]
        con.execute("DELETE FROM audit WHERE fid >= ?", (last_data,))
    result = verify(ws)
    assert not result.ok and "审计记录只到第" in result.reason
    assert main(["audit", "verify", str(ws.path)]) == 1
    assert "最后的记录被删除" in capsys.readouterr().out


def test_upgrade_adds_layers_declared_since(tmp_path):
    """A workspace from before ``login_failures`` existed (schema 2) gets the layer on open, once."""
    ws = _filled(tmp_path / "ws.gpkg")
    with _raw(ws.path) as con:
        con.execute("DROP TABLE login_failures")
        con.execute("DELETE FROM gpkg_contents WHERE table_name = 'login_failures'")
        con.execute("UPDATE ws_meta SET value = '2' WHERE key = 'schema'")
    ws = GpkgWorkspace(ws.path)
    assert "login_failures" in ws.layers() and ws.meta["schema"] == str(SCHEMA_VERSION)
    assert verify(ws).ok


def test_the_trail_reads_in_beijing_time_and_chinese(tmp_path):
    from grids.audit import audit_table
    from grids.model import LAYERS

    ws = GpkgWorkspace.create(tmp_path / "ws.gpkg", county_code="150422", county_name="巴林左旗")
    ws.write("staff", pd.DataFrame({"staff_id": ["S1"], "name": ["赵六"]}), actor="admin")
    stored = ws.read("audit").iloc[-1]
    row = audit_table(ws).iloc[0]  # newest first
    utc = pd.Timestamp(stored["at"]).tz_localize(None) if pd.Timestamp(stored["at"]).tzinfo is None \
        else pd.Timestamp(stored["at"]).tz_convert("UTC").tz_localize(None)
    assert row["at"] == (utc + pd.Timedelta(hours=8)).floor("s")
    assert row["layer"] == LAYERS["staff"].description and row["detail_json"] == stored["detail"]
    assert "操作 替换" in row["detail"] or "操作 追加" in row["detail"]
    assert "layer" not in row["detail"] and "op" not in row["detail"]
    assert list(audit_table(ws, last=1)["detail_json"]) == [stored["detail"]]
