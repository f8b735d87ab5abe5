"""The card key lives outside the workspace (attack finding E4 of issue 15): :mod:`grids.cardkey`.

Whoever holds a workspace file must not be able to match a card number (BIN + last four leave ~10^11 candidates:
seconds of HMAC): its key comes from the environment, a key file, or the GeoPackage's sidecar, never ws_meta.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
import stat
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from grids import cardkey
from grids import credit_events as ce
from grids.__main__ import main
from grids.auth import DEMO_PASSWORD, Account, create_demo_accounts
from grids.cardkey import CardKeyError
from grids.errors import GridsError
from grids.workspace import GpkgWorkspace, Workspace, open_workspace

from .conftest import COUNTY

CARD = "6228480055556666777"
ADMIN = Account("admin", "admin")
T07 = Account("t07", "teller", branch_id="B07")
KEY = "3c" * 32


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    monkeypatch.delenv(cardkey.ENV_KEY, raising=False)
    monkeypatch.delenv(cardkey.ENV_KEY_FILE, raising=False)


def _county(ws: Workspace) -> Workspace:
    """Two granted households, two branches, the demo accounts: enough to sign and serve."""
    hh = gpd.GeoDataFrame({"hh_id": ["H1", "H2"], "head_name": ["张三", "李四"],
                           "id_no": ["150422199001011234", "150422199001012345"],
                           "granted_amount": [80_000.0, 50_000.0]},
                          geometry=[shapely.Point(119.39, 43.98)] * 2, crs=4490)
    branches = gpd.GeoDataFrame({"branch_id": ["B01", "B07"], "name": ["林东", "隆昌"]},
                                geometry=[shapely.Point(119.4, 43.9)] * 2, crs=4490)
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.replace("households", hh)
        tx.replace("branches", branches)
    return ws


@pytest.fixture
def county(tmp_path) -> GpkgWorkspace:
    ws = GpkgWorkspace.create(tmp_path / "county.gpkg", **COUNTY, demo=True)
    create_demo_accounts(ws)
    _county(ws)
    return ws


def _sidecar(ws: Workspace) -> Path:
    side = cardkey.sidecar_path(ws.target)
    assert side is not None
    return side


def _assert_not_in_file(path: str | Path, key: str) -> None:
    """Neither the key's hex (either case) nor its raw bytes anywhere in the file (free pages included)."""
    raw = Path(path).read_bytes()
    for form in (key.encode(), key.upper().encode(), bytes.fromhex(key)):
        assert form not in raw


def _plant_legacy_key(ws: Workspace, key: str) -> None:
    """As a workspace written before the key left it: the key in ws_meta (and no sidecar)."""
    with ws.transaction(actor="test", action="旧版本") as tx:
        tx.execute("INSERT INTO ws_meta (key, value) VALUES (?, ?)", (cardkey.LEGACY_META_KEY, key))
    side = cardkey.sidecar_path(ws.target)
    if side is not None:
        side.unlink(missing_ok=True)


def _actions(ws: Workspace) -> list[str]:
    return [str(r[3]) for r in ws.audit_records()]


# -- where the key comes from ------------------------------------------------------------------------------

def test_a_first_signing_makes_the_sidecar_0600_and_nothing_in_the_workspace(county):
    assert not _sidecar(county).exists()
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    side = _sidecar(county)
    assert side.name == "county.gpkg.cardkey" and stat.S_IMODE(side.stat().st_mode) == 0o600
    key = side.read_text().strip()
    assert len(bytes.fromhex(key)) == 32
    assert cardkey.card_key(county) == key
    assert ce.read_events(county, hh_id="H1")["card_hash"].iloc[0] == ce.card_hash(key, CARD)
    assert cardkey.LEGACY_META_KEY not in county.meta and key not in str(county.meta)
    _assert_not_in_file(county.target, key)
    assert ce.find_customer(county, T07, card_no=CARD)["hh_id"] == "H1"


def test_the_environment_key_wins_hex_or_base64_and_no_sidecar_is_made(county, monkeypatch):
    monkeypatch.setenv(cardkey.ENV_KEY, KEY)
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    assert not _sidecar(county).exists()
    assert ce.read_events(county, hh_id="H1")["card_hash"].iloc[0] == ce.card_hash(KEY, CARD)
    monkeypatch.setenv(cardkey.ENV_KEY, base64.b64encode(bytes.fromhex(KEY)).decode())
    assert cardkey.card_key(county) == KEY and ce.find_customer(county, T07, card_no=CARD)["hh_id"] == "H1"
    monkeypatch.setenv(cardkey.ENV_KEY, "ab" * 16)  # 16 bytes
    with pytest.raises(CardKeyError, match="太短") as err:
        cardkey.card_key(county)
    assert "ab" * 16 not in str(err.value)
    monkeypatch.setenv(cardkey.ENV_KEY, "不是密钥")
    with pytest.raises(CardKeyError, match="无法识别"):
        cardkey.card_key(county)


def test_a_key_file_named_by_the_environment(county, tmp_path, monkeypatch):
    keyfile = tmp_path / "keys" / "county.key"
    monkeypatch.setenv(cardkey.ENV_KEY_FILE, str(keyfile))
    with pytest.raises(CardKeyError, match="不存在"):  # never made: a mistyped path would re-key the county
        ce.sign(county, ADMIN, "H1", 60_000, CARD)
    assert cardkey.write_key_file(keyfile, KEY)
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    assert not _sidecar(county).exists()
    assert cardkey.card_key(county) == KEY
    assert ce.read_events(county, hh_id="H1")["card_hash"].iloc[0] == ce.card_hash(KEY, CARD)


def test_a_workspace_copied_without_its_key_cannot_match_a_card(county, tmp_path, monkeypatch):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    key = _sidecar(county).read_text().strip()
    stolen = tmp_path / "stolen" / "county.gpkg"
    stolen.parent.mkdir()
    shutil.copy(county.target, stolen)
    ws = GpkgWorkspace(stolen)
    _assert_not_in_file(stolen, key)
    with sqlite3.connect(stolen) as con:
        meta = con.execute("SELECT key, value FROM ws_meta").fetchall()
    con.close()
    assert not any(key in str(v) or k == cardkey.LEGACY_META_KEY for k, v in meta)
    with pytest.raises(CardKeyError, match="找不到它的卡号密钥") as err:
        ce.find_customer(ws, T07, card_no=CARD)
    assert "\n" not in str(err.value) and isinstance(err.value, GridsError)
    with pytest.raises(CardKeyError):  # nor signed on a new key: the county's cards would stop matching
        ce.sign(ws, ADMIN, "H2", 10_000, "6228480000000000002")
    assert not _sidecar(ws).exists() and len(ce.read_events(ws)) == 1
    monkeypatch.setenv(cardkey.ENV_KEY, KEY)  # a guessed key is refused (the key check value), never used
    with pytest.raises(CardKeyError, match="不是这个工作区的密钥"):
        ce.find_customer(ws, T07, card_no=CARD)
    monkeypatch.delenv(cardkey.ENV_KEY)
    shutil.copy(_sidecar(county), _sidecar(ws))  # with the key file beside it, the copy works
    assert ce.find_customer(ws, T07, card_no=CARD)["hh_id"] == "H1"


# -- the one-time move out of ws_meta ------------------------------------------------------------------------

def test_a_key_kept_in_ws_meta_moves_to_the_sidecar_once(county):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    key = _sidecar(county).read_text().strip()
    _plant_legacy_key(county, key)
    assert county.meta[cardkey.LEGACY_META_KEY] == key and not _sidecar(county).exists()
    rev = county.revision
    assert ce.find_customer(county, T07, card_no=CARD)["hh_id"] == "H1"  # the first need moves it
    assert _sidecar(county).read_text().strip() == key
    assert stat.S_IMODE(_sidecar(county).stat().st_mode) == 0o600
    assert cardkey.LEGACY_META_KEY not in county.meta
    _assert_not_in_file(county.target, key)
    moves = [r for r in county.audit_records() if r[3] == cardkey.MIGRATE_ACTION]
    assert len(moves) == 1 and key not in str(moves[0]) and county.revision == rev + 1
    assert moves[0][2] == "t07"  # the teller whose look-up moved it, not "system"
    assert cardkey.migrate_legacy(county) is None  # idempotent
    assert cardkey.card_key(county) == key and ce.find_customer(county, T07, card_no=CARD) is not None
    assert _actions(county).count(cardkey.MIGRATE_ACTION) == 1
    again = GpkgWorkspace(county.target)  # reopened after the compaction: no outside edit to record
    assert again.revision == county.revision and cardkey.card_key(again) == key


def test_a_different_environment_key_is_refused_while_cards_exist(county, monkeypatch):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    key = _sidecar(county).read_text().strip()
    _plant_legacy_key(county, key)
    monkeypatch.setenv(cardkey.ENV_KEY, KEY)
    rev = county.revision
    with pytest.raises(CardKeyError, match=r"工作区元数据.*环境变量 GRIDS_CARD_KEY"):
        ce.find_customer(county, T07, card_no=CARD)
    assert county.meta[cardkey.LEGACY_META_KEY] == key and county.revision == rev  # nothing re-keyed
    assert cardkey.MIGRATE_ACTION not in _actions(county)
    monkeypatch.setenv(cardkey.ENV_KEY, key)  # the same key in the environment: moved out, no sidecar needed
    assert ce.find_customer(county, T07, card_no=CARD)["hh_id"] == "H1"
    assert cardkey.LEGACY_META_KEY not in county.meta and not _sidecar(county).exists()
    assert _actions(county).count(cardkey.MIGRATE_ACTION) == 1


def test_without_cards_a_legacy_key_simply_gives_way(county, monkeypatch):
    _plant_legacy_key(county, "7e" * 32)
    monkeypatch.setenv(cardkey.ENV_KEY, KEY)
    assert cardkey.card_key(county) == KEY
    assert cardkey.LEGACY_META_KEY not in county.meta and _actions(county).count(cardkey.MIGRATE_ACTION) == 1


# -- PostGIS, migrate, the command line --------------------------------------------------------------------

def test_postgis_needs_an_environment_key(pg_ws, monkeypatch):
    ws = _county(pg_ws)
    with pytest.raises(CardKeyError, match="GRIDS_CARD_KEY") as err:
        ce.sign(ws, ADMIN, "H1", 60_000, CARD)
    assert "\n" not in str(err.value) and "PostGIS" in str(err.value)
    monkeypatch.setenv(cardkey.ENV_KEY, KEY)
    ce.sign(ws, ADMIN, "H1", 60_000, CARD)
    assert ce.find_customer(ws, T07, card_no=CARD)["hh_id"] == "H1"
    assert cardkey.LEGACY_META_KEY not in ws.meta
    _plant_legacy_key(ws, KEY)  # an old PostGIS workspace: moved out once the same key is in the environment
    assert cardkey.card_key(ws) == KEY and cardkey.LEGACY_META_KEY not in ws.meta
    monkeypatch.delenv(cardkey.ENV_KEY)
    _plant_legacy_key(ws, KEY)
    with pytest.raises(CardKeyError, match="ws_meta"):  # nowhere to put it: the user sets the variable
        cardkey.card_key(ws)


def test_migrate_never_copies_the_key_but_the_sidecar(county, tmp_path, monkeypatch, capsys):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    key = _sidecar(county).read_text().strip()
    _plant_legacy_key(county, key)  # even a key still in ws_meta stays out of the copy
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    dst = tmp_path / "copy" / "county.gpkg"
    assert main(["migrate", county.target, str(dst), "--user", "admin", "--keep-demo-accounts"]) == 0
    out = capsys.readouterr().out
    assert f"{dst}{cardkey.SIDECAR_SUFFIX}" in out
    copy = open_workspace(dst)
    assert cardkey.LEGACY_META_KEY not in copy.meta and cardkey.LEGACY_META_KEY not in county.meta
    _assert_not_in_file(dst, key)
    assert _sidecar(copy).read_text().strip() == key and stat.S_IMODE(_sidecar(copy).stat().st_mode) == 0o600
    assert ce.find_customer(copy, T07, card_no=CARD)["hh_id"] == "H1"


def test_migrate_to_postgis_says_how_to_set_the_key(county, pg_target, monkeypatch, capsys):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    key = _sidecar(county).read_text().strip()
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    assert main(["migrate", county.target, pg_target, "--user", "admin", "--keep-demo-accounts"]) == 0
    out = capsys.readouterr().out
    assert "GRIDS_CARD_KEY" in out and str(_sidecar(county)) in out and key not in out
    pg = open_workspace(pg_target)
    assert cardkey.LEGACY_META_KEY not in pg.meta
    with pytest.raises(CardKeyError):
        ce.find_customer(pg, T07, card_no=CARD)
    monkeypatch.setenv(cardkey.ENV_KEY, key)
    assert ce.find_customer(pg, T07, card_no=CARD)["hh_id"] == "H1"


def test_the_command_line_says_it_in_one_line_and_exits_2(county, tmp_path, monkeypatch, capsys):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    copy = tmp_path / "copy.gpkg"
    shutil.copy(county.target, copy)  # without its key file
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    monkeypatch.setenv("GRIDS_CARD", CARD)
    capsys.readouterr()
    assert main(["credit", str(copy), "draw", "--amount", "100", "--branch", "B07", "--user", "admin"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("错误：") and "卡号密钥" in err and CARD not in err
    monkeypatch.setenv(cardkey.ENV_KEY, "00")
    assert main(["credit", county.target, "draw", "--amount", "100", "--branch", "B07", "--user", "admin"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- attack review (branch atk) ----------------------------------------------------------------------------

def test_a_key_missing_a_digit_is_refused_not_read_as_base64():
    key = "3c" * 31 + "3d"
    for bad in (key[:-1], key + "a"):  # odd count of hex digits: a copy that lost or gained one
        with pytest.raises(CardKeyError, match="位数不对") as err:
            cardkey.parse_key(bad, where="环境变量 GRIDS_CARD_KEY")
        assert key[:20] not in str(err.value)
    assert cardkey.parse_key("0x" + key, where="x") == key


def test_a_wrong_environment_key_is_refused_while_cards_exist(county, monkeypatch, capsys):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    key = _sidecar(county).read_text().strip()
    assert county.meta[cardkey.CHECK_META_KEY] == cardkey.key_check(key) and key not in str(county.meta)
    _assert_not_in_file(county.target, key)
    other = "3c" * 32  # another county's key, or one mistyped
    monkeypatch.setenv(cardkey.ENV_KEY, other)
    with pytest.raises(CardKeyError, match="不是这个工作区的密钥"):
        ce.find_customer(county, T07, card_no=CARD)
    with pytest.raises(CardKeyError):  # and no card is hashed under it
        ce.sign(county, ADMIN, "H2", 10_000, "6228480000000000002")
    assert len(ce.read_events(county)) == 1
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    monkeypatch.setenv("GRIDS_CARD", CARD)
    capsys.readouterr()
    assert main(["credit", county.target, "draw", "--amount", "100", "--branch", "B07", "--user", "admin"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "不是这个工作区的密钥" in err and other not in err and key not in err
    monkeypatch.setenv(cardkey.ENV_KEY, key)  # the right key in the environment works
    assert ce.find_customer(county, T07, card_no=CARD)["hh_id"] == "H1"


def test_a_dangling_or_special_sidecar_is_an_error_never_replaced_or_read_forever(county, tmp_path):
    side = _sidecar(county)
    side.symlink_to(tmp_path / "nowhere")
    with pytest.raises(CardKeyError, match="不是普通文件"):
        ce.sign(county, ADMIN, "H1", 60_000, CARD)
    assert side.is_symlink() and not (tmp_path / "nowhere").exists()
    side.unlink()
    side.symlink_to("/dev/zero")
    with pytest.raises(CardKeyError, match="不是普通文件"):
        ce.sign(county, ADMIN, "H1", 60_000, CARD)
    side.unlink()
    side.write_text("ab" * 5000)
    with pytest.raises(CardKeyError, match="太大"):
        ce.sign(county, ADMIN, "H1", 60_000, CARD)
    assert not ce.read_events(county).shape[0]


def test_two_first_signings_under_different_keys_cannot_both_land(county):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)  # the first, under the sidecar's key
    with county.transaction(actor="admin", action="签约发卡") as tx:  # the second process had checked before it
        with pytest.raises(CardKeyError, match="另一个卡号密钥"):
            cardkey.record_check(tx, KEY)
        cardkey.record_check(tx, _sidecar(county).read_text().strip())  # the same key: nothing to do


def test_a_key_is_never_recorded_on_trust_for_cards_signed_before_the_check_value(county, monkeypatch):
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    key = _sidecar(county).read_text().strip()
    with county.transaction(actor="test", action="旧版本") as tx:  # cards signed before the check value existed
        tx.execute("DELETE FROM ws_meta WHERE key = ?", (cardkey.CHECK_META_KEY,))
    monkeypatch.setenv(cardkey.ENV_KEY, KEY)  # a mistyped key signs one card (cannot be told apart yet) ...
    ce.sign(county, ADMIN, "H2", 10_000, "6228480000000000002")
    assert cardkey.CHECK_META_KEY not in county.meta  # ... but is not recorded as the workspace's key
    monkeypatch.delenv(cardkey.ENV_KEY)
    assert cardkey.card_key(county) == key and ce.find_customer(county, T07, card_no=CARD)["hh_id"] == "H1"


def test_a_sidecar_that_cannot_be_written_is_a_card_key_error_and_the_legacy_key_stays(county, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(cardkey.os, "link", refused)  # a read-only workspace directory (root ignores chmod)
        with pytest.raises(CardKeyError, match="无法写入密钥文件"):
            ce.sign(county, ADMIN, "H1", 60_000, CARD)
        _plant_legacy_key(county, KEY)
        with pytest.raises(CardKeyError, match="无法写入密钥文件"):
            ce.find_customer(county, T07, card_no=CARD)
        assert county.meta[cardkey.LEGACY_META_KEY] == KEY  # not deleted before it was safe elsewhere
    assert cardkey.card_key(county) == KEY and cardkey.LEGACY_META_KEY not in county.meta


def test_a_file_system_without_hard_links_still_gets_its_sidecar(county, monkeypatch):
    import errno

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")  # FAT, some SMB/CIFS shares

    monkeypatch.setattr(cardkey.os, "link", no_links)
    ce.sign(county, ADMIN, "H1", 60_000, CARD)
    side = _sidecar(county)
    assert stat.S_IMODE(side.stat().st_mode) == 0o600 and not side.is_symlink()
    assert cardkey.write_key_file(side, KEY) is False and cardkey.card_key(county) == side.read_text().strip()
    assert ce.find_customer(county, T07, card_no=CARD)["hh_id"] == "H1"
    assert [f.name for f in side.parent.iterdir() if f.name.endswith(".tmp")] == []
