"""签约发卡 and 用信 (issue 15): events as the source of truth, the projection on households, the teller's scope."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geodata.demo_events import demo_card_number
from grids import cardkey, coverage
from grids import credit_events as ce
from grids.__main__ import main
from grids.auth import DEMO_PASSWORD, Account
from grids.errors import PermissionDeniedError, ValidationError
from grids.navigation import pages_for
from grids.scope import ScopedWorkspace
from grids.workspace import GpkgWorkspace, open_workspace

from .conftest import COUNTY

CARD = "6228 4800 9876 5432 109"
CARD_DIGITS = CARD.replace(" ", "")
ADMIN = Account("admin", "admin")
T07 = Account("t07", "teller", branch_id="B07")
T01 = Account("t01", "teller", branch_id="B01")


def _projection(ws) -> pd.DataFrame:
    hh = ws.read("households", columns=["hh_id", "signed", "available_amount", "balance", "using"])
    return hh.set_index("hh_id").sort_index()


def _granted_unsigned(ws, branch: str) -> str:
    """A granted, unsigned household of ``branch`` (by its located grid)."""
    sw = ScopedWorkspace(ws, Account("b", "branch_manager", branch_id=branch))
    hh = sw.households(columns=["hh_id", "granted_amount", "signed"])
    ok = hh[(hh["granted_amount"].fillna(0) > 0).to_numpy() & ~hh["signed"].astype(object).fillna(False).astype(bool)]
    return str(ok["hh_id"].iloc[0])


def _funnel(ws) -> pd.Series:
    return coverage.funnel(ws.read("households")).iloc[0]


@pytest.fixture
def signed_b01(demo_copy):
    """A demo copy where a B01 household (granted, unsigned before) signs 60,000 on :data:`CARD` as b01."""
    ws = open_workspace(demo_copy)
    hh = _granted_unsigned(ws, "B01")
    granted = float(ws.read("households", where="hh_id = ?", params=(hh,))["granted_amount"].iloc[0])
    amount = min(60_000.0, granted)
    before = _funnel(ws)
    r = ce.sign(ws, Account("b01", "branch_manager", branch_id="B01"), hh, amount, CARD)
    assert (r["hh_id"], r["card_last4"], r["branch_id"]) == (hh, CARD_DIGITS[-4:], "B01")
    return ws, hh, amount, before


def test_sign_draw_elsewhere_repay_draw_again_moves_the_funnel(signed_b01):
    ws, hh, amount, before = signed_b01
    after_sign = _funnel(ws)
    assert after_sign["signed"] == before["signed"] + 1
    assert after_sign["available_amount"] == pytest.approx(before["available_amount"] + amount)
    # t07 serves the B01 customer at B07 (授用分离)
    d = ce.draw(ws, T07, card_no=CARD, amount=20_000)
    assert (d["branch_id"], d["balance"], d["available"]) == ("B07", 20_000.0, amount - 20_000)
    f = _funnel(ws)
    assert f["using"] == after_sign["using"] + 1 and f["balance"] == pytest.approx(after_sign["balance"] + 20_000)
    ce.repay(ws, T07, card_no=CARD, amount=20_000)
    f = _funnel(ws)
    assert f["using"] == after_sign["using"] and f["balance"] == pytest.approx(after_sign["balance"])
    # revolving: the whole line can be drawn again once repaid
    d = ce.draw(ws, T01, card_no=CARD, amount=amount)
    assert (d["hh_id"], d["balance"], d["available"], d["branch_id"]) == (hh, amount, 0.0, "B01")
    row = ws.read("households", where="hh_id = ?", params=(hh,)).iloc[0]
    assert bool(row["signed"]) and bool(row["using"]) and row["balance"] == amount and row["available_amount"] == amount
    ev = ce.read_events(ws, hh_id=hh)
    assert ev["kind"].tolist() == ["签约", "用信", "还款", "用信"]
    assert ev["branch_id"].tolist() == ["B01", "B07", "B07", "B01"]
    assert ev["recorded_by"].tolist() == ["b01", "t07", "t07", "t01"]
    # report --json shows the moved counts
    assert ce.check_projection(ws).empty


def test_report_json_follows(signed_b01, capsys):
    ws, _hh, _amount, before = signed_b01
    ce.draw(ws, T07, card_no=CARD, amount=1234.5)
    assert main(["report", ws.target, "--json"]) == 0
    county = json.loads(capsys.readouterr().out)["county"]
    assert county["signed"] == before["signed"] + 1 and county["using"] == before["using"] + 1
    assert county["balance"] == pytest.approx(before["balance"] + 1234.5)


def test_beyond_available_is_refused_and_changes_nothing(signed_b01, monkeypatch, capsys):
    ws, hh, amount, _ = signed_b01
    ce.draw(ws, T07, card_no=CARD, amount=amount - 100)
    rev, proj, n_events = ws.revision, _projection(ws), len(ce.read_events(ws))
    with pytest.raises(ValidationError, match="超出可用额度") as err:
        ce.draw(ws, T07, card_no=CARD, amount=100.01)
    assert "100.00 元" in str(err.value)  # says what is still available
    with pytest.raises(ValidationError, match="超过户"):
        ce.repay(ws, T07, card_no=CARD, amount=amount)
    with pytest.raises(ValidationError, match=r"超过.*授信额度"):
        ce.sign(ws, ADMIN, hh, 10**9, CARD)
    assert ws.revision == rev and len(ce.read_events(ws)) == n_events
    pd.testing.assert_frame_equal(_projection(ws), proj)
    # the CLI: exit 1 and the reason on stderr
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    user = "t07"  # the demo's teller of B07
    monkeypatch.setenv("GRIDS_CARD", CARD)  # the card comes from the environment, never from argv
    code = main(["credit", ws.target, "draw", "--amount", "200", "--user", user])
    err_text = capsys.readouterr().err
    assert code == 1 and "超出可用额度" in err_text and "100.00 元" in err_text
    assert main(["credit", ws.target, "draw", "--amount", "50", "--branch", "B01", "--user", user]) == 1
    assert "只能在本网点" in capsys.readouterr().err
    assert ws.revision == rev
    assert main(["credit", ws.target, "repay", "--amount", "50", "--branch", "B07", "--user", user]) == 0
    assert ce.read_events(ws, hh_id=hh)["branch_id"].iloc[-1] == "B07"


def test_teller_finds_and_serves_but_reads_nothing_else(signed_b01):
    ws, hh, _amount, _ = signed_b01
    view = ce.find_customer(ws, T07, card_no=CARD)
    assert view is not None and set(view) == set(ce.VIEW_COLUMNS) and view["hh_id"] == hh
    full = ws.read("households", where="hh_id = ?", params=(hh,)).iloc[0]
    assert view["name"] != full["head_name"] and view["name"].startswith(str(full["head_name"])[0])
    assert view["id_no"] != full["id_no"] and "*" in view["id_no"] and view["card_last4"] == CARD_DIGITS[-4:]
    assert ce.find_customer(ws, T07, id_number=full["id_no"])["hh_id"] == hh
    # an unsigned household of B01 is not found by ID number; another card is not found
    unsigned = _granted_unsigned(ws, "B01")
    uid = ws.read("households", where="hh_id = ?", params=(unsigned,))["id_no"].iloc[0]
    assert ce.find_customer(ws, T07, id_number=uid) is None
    assert ce.find_customer(ws, T07, card_no="6228000000000000000") is None
    # every look-up is audited, with the last four digits only
    lookups = [r for r in ws.audit_records() if r[3] == "柜员查询"]
    assert len(lookups) == 4 and all(r[2] == "t07" for r in lookups)
    # the teller sees no grid, no household, no visit, no staff
    sw = ScopedWorkspace(ws, T07)
    assert sw.grids().empty and sw.households().empty and sw.visits().empty and sw.staff().empty
    assert sw.funnel()["registered"].sum() == 0
    ce.draw(ws, T07, card_no=CARD, amount=10)
    # and cannot serve a household it did not look up (nor learn whether it is signed), nor sign
    with pytest.raises(PermissionDeniedError, match="刚按卡号或身份证号查询到"):
        ce.draw(ws, T07, unsigned, amount=10)
    with pytest.raises(PermissionDeniedError):
        ce.sign(ws, T07, unsigned, 1000, CARD)
    with pytest.raises(PermissionDeniedError):
        ce.find_customer(ws, Account("s", "customer_manager", staff_id="S002"), card_no=CARD)


def test_sign_rules(signed_b01):
    ws, hh, _amount, _ = signed_b01
    other = _granted_unsigned(ws, "B02")
    with pytest.raises(PermissionDeniedError, match="本网点"):
        ce.sign(ws, Account("b01", "branch_manager", branch_id="B01"), other, 1000, CARD)
    notgranted = ws.read("households", where="NOT (granted_amount > 0)", columns=["hh_id"])["hh_id"].iloc[0]
    with pytest.raises(ValidationError, match="尚未授信"):
        ce.sign(ws, ADMIN, notgranted, 1000, CARD)
    with pytest.raises(ValidationError, match="卡号应为") as err:
        ce.sign(ws, ADMIN, other, 1000, "1234-5678")
    assert "1234" not in str(err.value)
    # re-sign (换卡): the new card is found, the old one no longer
    ce.draw(ws, T07, card_no=CARD, amount=5000)
    with pytest.raises(ValidationError, match="低于"):
        ce.sign(ws, ADMIN, hh, 4000, "6228111122223333444")
    ce.sign(ws, ADMIN, hh, 5000, "6228111122223333444")
    assert ce.find_customer(ws, T07, card_no=CARD) is None
    assert ce.find_customer(ws, T07, card_no="6228111122223333444")["available"] == 0.0


def test_card_number_never_stored_in_clear(signed_b01):
    ws, hh, _amount, _ = signed_b01
    ce.draw(ws, T07, card_no=CARD, amount=100)
    ce.find_customer(ws, T07, card_no=CARD)
    with open(ws.target, "rb") as fh:
        raw = fh.read()
    for form in (CARD_DIGITS, CARD):
        assert form.encode() not in raw and form.encode("utf-16-le") not in raw
    detail = " ".join(str(r) for r in ws.audit_records())
    assert CARD_DIGITS not in detail and CARD_DIGITS[-4:] in detail
    ev = ce.read_events(ws, hh_id=hh)
    assert ev["card_hash"].iloc[0] == ce.card_hash(cardkey.card_key(ws, create=False), CARD)
    assert cardkey.LEGACY_META_KEY not in ws.meta  # the key lives outside the workspace


def test_rebuild_equals_incremental(signed_b01):
    ws, hh, _amount, _ = signed_b01
    ce.draw(ws, T07, card_no=CARD, amount=3000)
    ce.repay(ws, T01, card_no=CARD, amount=1000)
    incremental = _projection(ws)
    assert ce.check_projection(ws).empty and ce.rebuild_projection(ws, actor="admin") == 0
    with ws.transaction(actor="test", action="篡改") as tx:
        tx.execute("UPDATE households SET balance = 1, \"using\" = 0 WHERE hh_id = ?", (hh,))
    bad = ce.check_projection(ws)
    assert set(bad["hh_id"]) == {hh} and set(bad["column"]) == {"balance", "using"}
    assert ce.rebuild_projection(ws, actor="admin") == 1
    pd.testing.assert_frame_equal(_projection(ws), incremental)


def test_demo_events_keep_the_funnel_and_cards_find_customers(demo_path):
    ws = open_workspace(demo_path)
    ev = ce.read_events(ws)
    kinds = ev["kind"].value_counts()
    assert kinds["签约"] == 26_029 and kinds["开户余额"] == 20_210 and kinds["用信"] == kinds["还款"] > 0
    assert ev.loc[ev["kind"].isin(["用信", "还款"]), "branch_id"].nunique() > 5
    assert ce.check_projection(ws).empty
    hh = ev.loc[ev["kind"] == "签约", "hh_id"].iloc[0]
    key = cardkey.card_key(ws, create=False)  # the demo's sidecar, workspace/demo.gpkg.cardkey
    assert key is not None and cardkey.LEGACY_META_KEY not in ws.meta
    assert ce.card_hash(key, demo_card_number(hh)) == ev.loc[ev["kind"] == "签约", "card_hash"].iloc[0]


def _small(ws) -> None:
    hh = gpd.GeoDataFrame(
        {"hh_id": ["H1", "H2", "H3"], "head_name": ["张三", "李四", "王五"],
         "id_no": ["150422199001011234", "150422199001012345", "15042219900101345X"],
         "granted_amount": [80_000.0, 50_000.0, 0.0], "signed": [True, False, None],
         "available_amount": [60_000.0, 0.0, None], "balance": [25_000.0, 0.0, None],
         "using": [True, False, None]},
        geometry=[shapely.Point(119.39, 43.98)] * 3, crs=4490)
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.replace("households", hh)


def test_opening_events_migration_is_idempotent(any_ws, monkeypatch):
    ws = any_ws
    if cardkey.sidecar_path(ws.target) is None:  # PostGIS keeps no key: it comes from the environment
        monkeypatch.setenv(cardkey.ENV_KEY, "5a" * 32)
    _small(ws)
    assert ce.write_opening_events(ws, actor="admin") == 2  # H1: 签约 60,000 and 开户余额 25,000
    rev = ws.revision
    assert ce.write_opening_events(ws, actor="admin") == 0 and ws.revision == rev
    p = ce.project(ce.read_events(ws)).loc["H1"]
    assert (bool(p["signed"]), p["available_amount"], p["balance"]) == (True, 60_000.0, 25_000.0)
    assert ce.check_projection(ws).empty
    # then the same workspace signs, serves and finds a customer (both backends)
    with ws.transaction(actor="test", action="网点") as tx:
        tx.replace("branches", gpd.GeoDataFrame({"branch_id": ["B01", "B07"], "name": ["林东", "隆昌"]},
                                                geometry=[shapely.Point(119.4, 43.9)] * 2, crs=4490))
    ce.sign(ws, ADMIN, "H2", 50_000, CARD)
    assert ce.draw(ws, T07, card_no=CARD, amount=30_000)["available"] == 20_000.0
    with pytest.raises(ValidationError, match="超出可用额度"):
        ce.draw(ws, T07, card_no=CARD, amount=20_000.01)
    assert ce.repay(ws, T07, card_no=CARD, amount=10_000, branch_id="B07")["balance"] == 20_000.0
    view = ce.find_customer(ws, T07, card_no=CARD)
    assert (view["hh_id"], view["balance"], view["available"]) == ("H2", 20_000.0, 30_000.0)
    assert ce.looked_up(ws, T07, "H2") and not ce.looked_up(ws, T07, "H1")
    assert ce.check_projection(ws).empty and list(ce.read_events(ws)["seq"])[-3:] == [1, 2, 3]


def test_a_household_without_events_is_unsigned_whatever_it_carries(tmp_path):
    """E6: values written outside the events (a tampered 'signed, 999,999 available') are never turned into events;
    the household is unsigned with balance 0, check lists it, a teller finds and serves nothing."""
    ws = GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
    _small(ws)  # H1 carries signed 60,000 / balance 25,000 but, unlike a migrated workspace, has no events
    with ws.transaction(actor="test", action="网点") as tx:
        tx.replace("branches", gpd.GeoDataFrame({"branch_id": ["B01"], "name": ["林东"]},
                                                geometry=[shapely.Point(119.4, 43.9)], crs=4490))
    diff = ce.check_projection(ws)
    assert set(diff.loc[diff["hh_id"] == "H1", "column"]) == {"signed", "available_amount", "balance", "using"}
    assert ce.find_customer(ws, T07, id_number="150422199001011234") is None
    rev = ws.revision
    with pytest.raises(ValidationError, match="尚未签约"):
        ce.draw(ws, ADMIN, "H1", amount=500_000, branch_id="B01")
    assert ce.read_events(ws).empty and ws.revision == rev  # nothing laundered into opening events
    assert ce.rebuild_projection(ws, actor="admin") == 1  # the events (none) are the truth: unsigned, 0
    h1 = ws.read("households", where="hh_id = 'H1'").iloc[0]
    assert not bool(h1["signed"]) and h1["balance"] == 0 and ce.check_projection(ws).empty


def test_a_revoked_or_lowered_grant_stops_drawing_and_check_flags_it(signed_b01):
    """E1: the grant set to 0 (or lowered) after signing: no drawdown beyond it; check reports the line above it."""
    ws, hh, amount, _ = signed_b01
    assert amount > 10_000
    with ws.transaction(actor="b01", action="集中授信评级") as tx:  # what a lowered rating writes
        tx.execute("UPDATE households SET granted_amount = 10000 WHERE hh_id = ?", (hh,))
    diff = ce.check_projection(ws)
    assert diff.loc[diff["hh_id"] == hh, "column"].tolist() == ["granted_amount"]
    from grids.check import check_credit_events

    assert "授信已下调" in check_credit_events(ws)["message"].iloc[0]
    with pytest.raises(ValidationError, match=r"授信已下调.*可用 10,000\.00 元"):
        ce.draw(ws, T07, card_no=CARD, amount=10_000.01)
    assert ce.draw(ws, T07, card_no=CARD, amount=10_000)["available"] == 0.0
    with ws.transaction(actor="b01", action="集中授信评级") as tx:  # the grant cancelled
        tx.execute("UPDATE households SET granted_amount = 0, grade = NULL WHERE hh_id = ?", (hh,))
    n = len(ce.read_events(ws))
    with pytest.raises(ValidationError, match="授信已取消/下调"):
        ce.draw(ws, T07, card_no=CARD, amount=1)
    assert len(ce.read_events(ws)) == n
    assert ce.repay(ws, T07, card_no=CARD, amount=10_000)["balance"] == 0.0  # repaying still works
    assert ce.rebuild_projection(ws, actor="admin") == 0  # a lowered grant is not a projection to rebuild


def test_one_card_cannot_be_signed_to_two_households(signed_b01):
    """E2: the card already current for a household is refused for another; re-signing the same household is fine."""
    ws, hh, amount, _ = signed_b01
    other = _granted_unsigned(ws, "B01")
    n = len(ce.read_events(ws))
    with pytest.raises(ValidationError, match=f"已是户 {hh} 的签约卡"):
        ce.sign(ws, ADMIN, other, 1000, CARD)
    assert len(ce.read_events(ws)) == n
    ce.sign(ws, ADMIN, hh, amount, CARD)  # the same household re-signs on its own card
    ce.sign(ws, ADMIN, hh, amount, "6228480000000000001")  # 换卡: the old card is free again
    assert ce.sign(ws, ADMIN, other, 1000, CARD)["hh_id"] == other
    assert ce.find_customer(ws, T07, card_no=CARD)["hh_id"] == other


def test_a_teller_serves_only_a_customer_it_looked_up(signed_b01, monkeypatch, capsys):
    """E3: a teller naming a household id without a look-up is refused without telling whether it exists or its
    amounts, in the library and on the CLI (which reads the card or ID number from the environment)."""
    ws, hh, _amount, _ = signed_b01
    rev = ws.revision
    texts = []
    for h in (hh, "1504229999999999999"):
        with pytest.raises(PermissionDeniedError) as err:
            ce.draw(ws, T07, h, amount=10**9)
        texts.append(str(err.value))
    assert texts[0] == texts[1] and "元" not in texts[0] and hh not in texts[0]
    assert ws.revision == rev
    full = ws.read("households", where="hh_id = ?", params=(hh,)).iloc[0]
    assert ce.find_customer(ws, T07, id_number=full["id_no"])["hh_id"] == hh
    assert ce.draw(ws, T07, hh, amount=10)["balance"] == 10.0  # after the look-up
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    monkeypatch.delenv("GRIDS_CARD", raising=False)
    assert main(["credit", ws.target, "draw", hh, "--amount", "5", "--user", "t01"]) == 1
    assert "刚按卡号或身份证号查询到" in capsys.readouterr().err
    monkeypatch.setenv("GRIDS_ID_NUMBER", str(full["id_no"]))
    assert main(["credit", ws.target, "draw", "--by-id-number", "--amount", "5", "--user", "t01"]) == 0
    assert ce.read_events(ws, hh_id=hh)["recorded_by"].iloc[-1] == "t01"


def test_a_card_typed_into_the_household_field_is_never_echoed_nor_audited(signed_b01):
    """E5: a card number in the 户号 field: the error and the refusal's audit row show its last four digits only."""
    ws, hh, _amount, _ = signed_b01
    other = _granted_unsigned(ws, "B02")
    for account in (Account("b02", "branch_manager", branch_id="B02"), ADMIN):
        with pytest.raises((ValidationError, PermissionDeniedError)) as err:
            ScopedWorkspace(ws, account).sign_card(CARD_DIGITS, amount=1000, card_no=other)
        assert CARD_DIGITS not in str(err.value) and CARD_DIGITS[-4:] in str(err.value)
    details = " ".join(str(d) for d in ws.read("audit")["detail"])
    assert CARD_DIGITS not in details and "拒绝：签约发卡" in [r[3] for r in ws.audit_records()]
    with pytest.raises(PermissionDeniedError) as err:  # an existing household is still named
        ScopedWorkspace(ws, Account("b02", "branch_manager", branch_id="B02")).sign_card(hh, amount=1, card_no=CARD)
    assert hh in str(err.value)


def test_a_teller_cannot_date_an_event_and_an_admin_only_within_a_year(signed_b01):
    """E8: tellers are always dated now; an administrator may back-date within a year, never into the future."""
    import datetime as dt

    ws, _hh, _amount, _ = signed_b01
    n = len(ce.read_events(ws))
    for on in ("1900-01-01", "2099-01-01", dt.date.today().isoformat()):
        with pytest.raises(PermissionDeniedError, match="不能指定日期"):
            ce.draw(ws, T07, card_no=CARD, amount=1, on=on)
    for on in ("1900-01-01", (dt.date.today() + dt.timedelta(days=2)).isoformat()):
        with pytest.raises(ValidationError, match="不在允许范围内"):
            ce.draw(ws, ADMIN, card_no=CARD, amount=1, branch_id="B01", on=on)
    assert len(ce.read_events(ws)) == n
    week_ago = (dt.date.today() - dt.timedelta(days=7)).isoformat()
    ce.draw(ws, ADMIN, card_no=CARD, amount=1, branch_id="B01", on=week_ago)
    assert str(ce.read_events(ws)["occurred_at"].iloc[-1]).startswith(week_ago)


def test_amounts_and_exit_codes_are_strict(signed_b01, monkeypatch, capsys):
    """E9: True and "1_000" are not amounts; a wrong password exits 2 as elsewhere; look-ups are rate limited."""
    ws, _hh, _amount, _ = signed_b01
    for bad in (True, "1_000", " 1e3", "0x10"):
        with pytest.raises(ValidationError, match="不是数字"):
            ce.draw(ws, T07, card_no=CARD, amount=bad)
    monkeypatch.setenv("GRIDS_CARD", CARD)
    monkeypatch.setenv("GRIDS_PASSWORD", "wrong")
    assert main(["credit", ws.target, "draw", "--amount", "5", "--user", "t07"]) == 2
    assert main(["credit", ws.target, "draw", "--amount", "1_000", "--user", "t07"]) == 2  # identity first
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    assert main(["credit", ws.target, "draw", "--amount", "1_000", "--user", "t07"]) == 1
    assert "不是数字" in capsys.readouterr().err
    monkeypatch.setattr(ce, "LOOKUPS_PER_10_MINUTES", 3)
    for _ in range(3):
        ce.find_customer(ws, T01, card_no=CARD)
    with pytest.raises(PermissionDeniedError, match="查询过于频繁"):
        ce.find_customer(ws, T01, card_no=CARD)
    assert ce.find_customer(ws, T07, card_no=CARD) is not None  # per account


def test_sign_reads_the_card_from_the_environment_not_argv(signed_b01, monkeypatch, capsys):
    """E7: ``credit sign`` has no --card; the card comes from GRIDS_CARD (or a prompt / standard input)."""
    ws, _hh, _amount, _ = signed_b01
    other = _granted_unsigned(ws, "B01")
    monkeypatch.setenv("GRIDS_PASSWORD", DEMO_PASSWORD)
    with pytest.raises(SystemExit) as exc:
        main(["credit", ws.target, "sign", other, "--amount", "1000", "--card", "6228480000000000002",
              "--user", "b01"])
    assert exc.value.code == 2
    monkeypatch.setenv("GRIDS_CARD", "6228480000000000002")
    assert main(["credit", ws.target, "sign", other, "--amount", "1000", "--user", "b01"]) == 0
    assert "0002" in capsys.readouterr().out
    assert ce.find_customer(ws, T07, card_no="6228480000000000002")["hh_id"] == other


def test_teller_page_finds_draws_and_shows_nothing_else(tmp_path, monkeypatch):
    from tests import forged

    path = forged.forged_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDS_WORKSPACE", str(path))
    forged._signed_h0(path)  # H0 of B1, signed on forged.TELLER_CARD
    at = forged.open_page("pages/teller.py", forged.T2)
    assert not at.exception, at.exception
    assert not at.dataframe and not at.data_editor  # nothing listed before a look-up
    at.radio(key="teller.by").set_value("卡号")
    at.text_input(key="teller.number").input(forged.TELLER_CARD)
    at = at.button(key="teller.find").click().run()
    (shown,) = [d.value for d in at.dataframe]
    assert shown["户号"].tolist() == ["H0"] and shown["户主"].tolist() == ["户**"]
    assert "0000" in shown["身份证号"].iloc[0] and shown["身份证号"].iloc[0] != "150422198001010000"
    assert not any(sb.key == "teller.branch" for sb in at.selectbox)  # a teller's branch is its own
    at = forged._teller_submit(at, amount=1500)
    assert not at.error and "1,500" in at.success[0].value
    ev = ce.read_events(GpkgWorkspace(path), hh_id="H0")
    assert ev["kind"].tolist() == ["签约", "用信"] and ev["branch_id"].tolist() == ["B1", "B2"]
    page_text = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.success, *at.dataframe])
    for other in ("H1", "H2", "H3", "户主1", "户主3"):
        assert other not in page_text
    assert [p.title for p in pages_for("teller")] == ["柜员用信"]


def test_check_reports_a_projection_that_differs_from_the_events(tmp_path, capsys):
    from tests import forged

    path = forged.forged_workspace(tmp_path / "ws.gpkg")
    forged._signed_h0(path)
    ws = GpkgWorkspace(path)
    ce.draw(ws, ADMIN, "H0", amount=500, branch_id="B2")

    def kinds() -> dict:
        main(["check", str(path), "--json"])
        return json.loads(capsys.readouterr().out)["counts"]

    assert "credit_events" not in kinds()
    with ws.transaction(actor="test", action="篡改") as tx:  # an edit outside the events (e.g. in QGIS)
        tx.execute("UPDATE households SET balance = 0, \"using\" = 0 WHERE hh_id = 'H0'")
    assert kinds().get("credit_events") == 1
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "与签约、用信流水不一致" in out and "H0" in out
    assert ce.rebuild_projection(ws, actor="admin") == 1
    assert "credit_events" not in kinds()


def test_opening_a_schema_6_workspace_migrates_its_values_to_opening_events_once(tmp_path):
    import sqlite3

    from grids.workspace import SCHEMA_VERSION

    path = tmp_path / "old.gpkg"
    ws = GpkgWorkspace.create(path, **COUNTY)
    _small(ws)
    with sqlite3.connect(path) as con:  # as a workspace written before credit events existed
        con.execute("UPDATE ws_meta SET value = '6' WHERE key = 'schema'")
    con.close()
    ws = GpkgWorkspace(path)
    assert ws.meta["schema"] == str(SCHEMA_VERSION)
    ev = ce.read_events(ws)
    assert sorted(ev["kind"]) == ["开户余额", "签约"] and set(ev["hh_id"]) == {"H1"}
    assert ce.check_projection(ws).empty
    actions = [r[3] for r in ws.audit_records()]
    assert "升级工作区" in actions and actions[-1] == "建立期初用信流水"
    rev = ws.revision
    again = GpkgWorkspace(path)
    assert again.revision == rev and len(ce.read_events(again)) == 2
