"""The command line on both backends: one representative sequence of commands (status, import of a small CSV,
build, check, assign, check, report --json, export xlsx, audit verify) run against a GeoPackage path and against
a ``postgresql://`` URL gives the same exit codes, the same report figures and the same exported rows."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from grids.__main__ import main
from grids.workspace import GpkgWorkspace, Workspace

from .conftest import COUNTY, cli_user
from .test_build import V, admin, households


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and standard output of ``python -m grids argv`` (argparse's usage errors included)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


def _without_ids(payload: object) -> object:
    """``payload`` without what differs by nature: plan ids (made afresh in each workspace), run times, and the
    audit chain head's hash (it covers the times of the rows; its row count stays)."""
    if isinstance(payload, dict):
        return {k: (v.rpartition("（")[2] if k == "audit_head" else _without_ids(v))  # "（5 条）": rows, not hash
                for k, v in payload.items() if k not in ("plan_id", "seconds")}
    if isinstance(payload, list):
        return [_without_ids(v) for v in payload]
    return payload


def _fill(ws: Workspace) -> None:
    """6 villages in 2 towns, 72 households, 2 branches, 2 customer managers: the same county on every backend."""
    hh = households({k: 12 for k in range(1, 7)}).to_crs(4490)
    hh["hh_id"] = [f"H{i:03d}" for i in range(len(hh))]
    hh["head_name"] = "张三"
    hh["id_no"] = "150422199001011234"
    n = pd.Series(range(len(hh)), index=hh.index)
    hh["segment"] = "农牧户"
    hh["archived"] = n % 4 != 0  # a credit funnel with something in every step, for the report to add up
    hh["eligible"] = hh["archived"] & (n % 3 != 0)
    hh["granted_amount"] = (hh["eligible"] & (n % 2 == 0)) * (30_000.0 + 1_000.0 * n)
    hh["signed"] = hh["granted_amount"] > 0
    hh["using"] = hh["signed"] & (n % 5 != 0)
    hh["balance"] = hh["using"] * 10_000.0
    branches = gpd.GeoDataFrame({"branch_id": ["B01", "B02"], "name": ["甲镇营业部", "乙镇信用社"]},
                                geometry=hh.geometry.iloc[[0, -1]].to_numpy(), crs=4490)
    staff = pd.DataFrame({"staff_id": ["S1", "S2"], "name": ["赵六", "钱七"], "branch_id": ["B01", "B02"],
                          "role": ["客户经理", "客户经理"]})
    with ws.transaction(actor="t", action="载入") as tx:
        tx.replace("admin_units", admin().to_crs(4490))
        tx.replace("households", hh)
        tx.replace("branches", branches)
        tx.replace("staff", staff)
    from grids import credit_events

    credit_events.write_opening_events(ws, actor="t")  # loaded past the import: its credit values open the events


def _sequence(ws: Workspace, target: str, tmp: Path, monkeypatch, capsys) -> dict[str, object]:
    """Run the sequence on ``target`` (``ws`` opened on it); every step's exit code and what it reported."""
    _fill(ws)
    user = ["--user", cli_user(ws, monkeypatch)]
    csv = tmp / "new.csv"
    csv.write_text("hh_id,segment,village_code\n" f"N1,农牧户,{V[1]}\n" f"N2,不是客群,{V[1]}\n", encoding="utf-8")
    seen: dict[str, object] = {}

    code, out = _cli(["status", target, "--json"], capsys)
    status = json.loads(out)
    seen["status"] = code, [(s["key"], s["state"], s["counts"]) for s in status["steps"]]
    code, _ = _cli(["import", target, "households", str(csv), *user], capsys)
    rejects = pd.read_csv(tmp / "new.rejects.csv", dtype=str)
    seen["import"] = code, ws.count("households"), sorted(rejects["hh_id"])
    seen["build"] = _cli(["build", target, "--min-households", "5", *user], capsys)[0], ws.count("grids")
    seen["check before assign"] = _cli(["check", target], capsys)[0]
    code, out = _cli(["assign", target, "--json", *user], capsys)
    seen["assign"] = code, _without_ids(json.loads(out))
    code, out = _cli(["check", target, "--json"], capsys)
    seen["check"] = code, _without_ids(json.loads(out))
    code, out = _cli(["report", target, "--json"], capsys)
    seen["report"] = code, _without_ids(json.loads(out))
    code, out = _cli(["report", target, "--by", "branch", "--json"], capsys)
    seen["report by branch"] = code, _without_ids(json.loads(out))
    xlsx = tmp / "b01.xlsx"
    code, _ = _cli(["export", target, "--format", "xlsx", "--branch", "B01", "--out", str(xlsx)], capsys)
    sheets = pd.read_excel(xlsx, sheet_name=None, dtype=str)
    seen["export"] = code, {name: frame.fillna("").to_numpy().tolist() for name, frame in sheets.items()}
    code, out = _cli(["audit", "verify", target], capsys)
    seen["audit verify"] = code, [a for a in ws.read("audit")["action"].astype(str) if "登录" not in a]
    return seen


def test_cli_sequence_gives_the_same_results_on_both_backends(tmp_path, pg_target, monkeypatch, capsys):
    gpkg = GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
    (tmp_path / "g").mkdir()
    on_gpkg = _sequence(gpkg, str(gpkg.path), tmp_path / "g", monkeypatch, capsys)

    from grids.workspace.postgis import PgWorkspace

    (tmp_path / "p").mkdir()
    on_pg = _sequence(PgWorkspace.create(pg_target, **COUNTY), pg_target, tmp_path / "p", monkeypatch, capsys)

    # what the sequence must do at all (so that "the same" is not "equally broken")
    assert on_gpkg["status"][0] == 0
    assert on_gpkg["import"] == (1, 73, ["N2"])  # N1 in, N2 (not a segment) refused: exit 1
    assert on_gpkg["build"][0] == 0 and on_gpkg["build"][1] > 0
    assert on_gpkg["check before assign"] == 1  # the draft is not assigned yet
    assert on_gpkg["assign"][0] == 0
    assert on_gpkg["check"][0] == 0 and on_gpkg["check"][1]["errors"] == 0
    report = on_gpkg["report"][1]
    assert on_gpkg["report"][0] == 0 and report["county"]["registered"] == 73
    assert on_gpkg["report by branch"][0] == 0
    breakdown = on_gpkg["report by branch"][1]["breakdown"]
    assert [row["key"] for row in breakdown] == ["B01", "B02"]
    for figure in ("registered", "archived", "eligible", "granted", "granted_amount", "signed", "using", "balance"):
        assert report["county"][figure] > 0, figure  # every step of the funnel has households in it
        assert sum(row[figure] for row in breakdown) == pytest.approx(report["county"][figure]), figure
    assert on_gpkg["export"][0] == 0 and sum(map(len, on_gpkg["export"][1].values())) > 0
    assert on_gpkg["audit verify"][0] == 0

    for step in on_gpkg:
        assert on_pg[step] == on_gpkg[step], step
