"""A real county end to end (issue 14 acceptance), from what a 联社 holds (:mod:`geodata.register`).

From a fresh workspace on 巴林右旗 (150423, a shipped outline other than the demo's 巴林左旗): ``init``, the first
admin (``accounts add`` without ``--user``), the villages file (村委会 points only, names only), a register of
5,200 households keyed by 乡镇/村/组 NAMES, branches, staff; ``build``, ``assign``, ``check`` (exit 0),
``report --json``. Every file: rows in = imported + rejected; every unknown village name is rejected with
candidates; after ``--names`` the rejects file imports as it is. The same sequence on a PostGIS URL gives the same
report.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodata.register import (
    GPS_SHARE,
    variant_group_name,
    variant_village_name,
    write_county_files,
)
from grids.names import group_key, village_key

HOUSEHOLDS = 5_200
PASSWORD = "real-county-pass-2026"
_SUMMARY = re.compile(r"读取 (\d+) 行，导入 (\d+) 行，修复 \d+ 行，拒绝 (\d+) 行")


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """The files of a generated 巴林右旗 (5,200 households; the register as .xlsx)."""
    return write_county_files(tmp_path_factory.mktemp("county"), households=HOUSEHOLDS, seed=1423)


def _cli(*argv: str) -> tuple[int, str]:
    """Run ``python -m grids`` in-process; (exit code, stdout)."""
    from grids.__main__ import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue()


def _counts(text: str) -> tuple[int, int, int]:
    m = _SUMMARY.findall(text)
    assert m, text
    read, imported, rejected = map(int, m[-1])
    return read, imported, rejected


# -- the files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,k,expected", [("三家村", 1, "三家村民委员会"), ("三家村", 2, "三家"),
                                             ("巴彦嘎查", 1, "巴彦嘎查村委会"), ("林东社区", 1, "林东居委会")])
def test_village_variants_keep_the_village_key(name, k, expected):
    assert variant_village_name(name, k) == expected
    assert village_key(expected) == village_key(name)


@pytest.mark.parametrize("name", ["一组", "三组", "十组", "十二组", "二十组"])
def test_group_variants_keep_the_group_number(name):
    forms = {variant_group_name(name, k) for k in range(4)}
    assert len(forms) >= 3 and name not in forms  # 10组 and 010组: 01组 only below ten
    assert {group_key(f) for f in forms} == {group_key(name)}


def test_the_files_hold_what_a_cooperative_holds(county):
    villages = pd.read_csv(county.villages, dtype=str)
    assert list(villages.columns) == ["乡镇", "村名", "经度", "纬度"]  # points and names only: no code, no polygon
    assert county.seat_coords == "gcj02" and county.variants["seats"] >= 0.05 * len(villages)
    assert villages["村名"].str.endswith(("村委会", "村民委员会", "嘎查村", "居委会")).mean() >= 0.05
    reg = pd.read_excel(county.register, dtype=str)
    n = len(reg)
    assert n == county.households >= 5_000
    assert {"乡镇", "村", "组"} <= set(reg.columns)
    assert not {"村代码", "组代码"} & set(reg.columns)
    assert (county.variants["village"] + county.variants["group"]) >= 0.05 * n
    assert reg["组"].str.contains(r"^\d+组$|村民小组|社$", regex=True).mean() >= 0.05
    assert county.unknown["rows"].sum() >= 0.01 * n
    assert reg["村"].isin(county.unknown["登记名称"]).sum() == county.unknown["rows"].sum()
    gps = reg["经度"].notna()
    assert gps.sum() == county.gps and abs(gps.mean() - GPS_SHARE) < 0.01
    assert reg.loc[gps, "纬度"].notna().all()
    branches, staff = pd.read_csv(county.branches, dtype=str), pd.read_csv(county.staff, dtype=str)
    assert len(branches) and branches["网点编号"].is_unique
    assert set(staff["所属网点"]) <= set(branches["网点编号"])


def test_the_same_seed_gives_the_same_files(county, tmp_path):
    again = write_county_files(tmp_path, households=HOUSEHOLDS, seed=1423, register_format="csv")
    for a, b in ((county.villages, again.villages), (county.branches, again.branches), (county.staff, again.staff)):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    first = pd.read_excel(county.register, dtype=str)
    second = pd.read_csv(again.register, dtype=str)
    names = ["户号", "户主姓名", "乡镇", "村", "组"]
    assert first[names].equals(second[names])
    assert np.allclose(first["经度"].astype(float), second["经度"].astype(float), equal_nan=True)
    assert county.unknown.equals(again.unknown)


# -- the sequence -------------------------------------------------------------------------------------------


def run_sequence(target: str, files, work: Path) -> dict:
    """The acceptance sequence on ``target`` (a GeoPackage path or a PostGIS URL); returns what the test checks."""
    out: dict = {"imports": {}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDS_NEW_PASSWORD", PASSWORD)
        mp.setenv("GRIDS_PASSWORD", PASSWORD)
        rc, text = _cli("init", target, "--county", files.county, "--outline", files.outline, "--coords", "gcj02")
        assert rc == 0, text
        rc, text = _cli("accounts", "add", target, "chief", "--role", "admin")  # the first admin: no --user
        assert rc == 0, text
        user = ("--user", "chief")
        rc, text = _cli("import", target, "villages", files.villages, "--coords", "gcj02", *user)
        out["imports"]["villages"] = (rc, *_counts(text))
        register = work / files.register.name
        register.write_bytes(files.register.read_bytes())  # rejects and the names template are written beside it
        rc, text = _cli("import", target, "households", register, *user)
        out["imports"]["register"] = (rc, *_counts(text))
        out["register_text"] = text
        rejects = register.with_name(register.stem + ".rejects.csv")
        template = register.with_name(register.stem + ".names.csv")
        out["rejects"] = pd.read_csv(rejects, dtype=str)
        names = pd.read_csv(template, dtype=str)
        out["template"] = names
        meant = files.unknown.set_index(["乡镇", "登记名称"])["标准名称"]  # the village each misspelling means
        mapping = work / "mapping.csv"
        names.drop(columns=["行政区划代码"]).assign(
            标准名称=[meant.get((t, w)) for t, w in zip(names["乡镇"], names["登记名称"], strict=True)],
        ).to_csv(mapping, index=False)
        rc, text = _cli("import", target, "households", rejects, "--names", mapping, *user)
        out["imports"]["rejects"] = (rc, *_counts(text))
        for layer, f in (("branches", files.branches), ("staff", files.staff)):
            rc, text = _cli("import", target, layer, f, *user)
            out["imports"][layer] = (rc, *_counts(text))
        out["build"] = _cli("build", target, *user)
        out["assign"] = _cli("assign", target, *user)
        out["check"] = _cli("check", target)
        rc, text = _cli("report", target, "--json")
        assert rc == 0, text
        out["report"] = json.loads(text)
        rc, text = _cli("report", target, "--by", "branch", "--json")
        assert rc == 0, text
        out["by_branch"] = json.loads(text)
    return out


@pytest.fixture(scope="module")
def gpkg_run(county, tmp_path_factory):
    work = tmp_path_factory.mktemp("gpkg")
    target = str(work / "巴林右旗.gpkg")
    return target, run_sequence(target, county, work)


@pytest.mark.slow
def test_rows_in_are_imported_plus_rejected_for_every_file(gpkg_run, county):
    _, run = gpkg_run
    imports = run["imports"]
    for name, (rc, read, imported, rejected) in imports.items():
        assert read == imported + rejected, name
        assert rc == (1 if rejected else 0), name
    assert imports["villages"][1:] == (len(pd.read_csv(county.villages)), len(pd.read_csv(county.villages)), 0)
    assert imports["register"][1] == county.households
    assert imports["register"][3] == county.unknown["rows"].sum() == len(run["rejects"])
    assert imports["rejects"] == (0, imports["register"][3], imports["register"][3], 0)  # all taken after --names
    assert imports["branches"][3] == imports["staff"][3] == 0


@pytest.mark.slow
def test_every_unknown_name_is_rejected_with_candidates(gpkg_run, county):
    _, run = gpkg_run
    rejects = run["rejects"]
    assert set(rejects["村"]) == set(county.unknown["登记名称"])
    assert (rejects["原因"] == "村名无法识别").all()
    assert rejects["修正方法"].str.contains("是否指：").all()
    meant = dict(zip(county.unknown["登记名称"], county.unknown["标准名称"], strict=True))
    # the village meant is among the candidates offered (“是否指：联合村（150423101901）、…？”)
    offered = [meant[w] in fix for w, fix in zip(rejects["村"], rejects["修正方法"], strict=True)]
    assert np.mean(offered) >= 0.9
    template = run["template"]
    assert set(template["登记名称"]) == set(county.unknown["登记名称"])
    assert template["候选"].str.startswith("是否指：").all()


@pytest.mark.slow
def test_the_county_is_built_assigned_and_checked(gpkg_run, county):
    from grids.workspace import open_workspace

    target, run = gpkg_run
    for step in ("build", "assign", "check"):
        assert run[step][0] == 0, run[step][1][-2000:]
    assert "没有错误" in run["check"][1]
    report = run["report"]["county"]
    assert report["registered"] == county.households
    ws = open_workspace(target)
    hh = ws.read("households", columns=["hh_id", "village_code", "placed_by", "group_name"])
    assert len(hh) == county.households and hh["hh_id"].is_unique
    assert hh["village_code"].notna().all()
    assert (hh["placed_by"] == "point").sum() == county.gps
    assert set(hh["placed_by"]) == {"point", "name"}
    villages = ws.read("admin_units", where="level = 'village'")
    assert villages["derived"].astype(bool).all() and villages["provisional_code"].astype(bool).all()
    assert set(hh["village_code"]) <= set(villages["code"])
    # the households import re-derived the villages around the households just located (audited)
    actions = [r[6] for r in ws.audit_records() if r[3] == "导入"]
    assert any("重新推算" in str(detail) for detail in actions)
    assert ws.count("staff") == len(pd.read_csv(county.staff)) and ws.count("branches")
    staffed = run["by_branch"]["breakdown"]
    assert sum(r["registered"] for r in staffed) == county.households


@pytest.mark.slow
def test_rederiving_keeps_town_names_and_gives_named_groups_polygons(gpkg_run, county):
    from grids.names import group_key
    from grids.towns import towns_of
    from grids.workspace import open_workspace

    target, _ = gpkg_run
    ws = open_workspace(target)
    towns = ws.read("admin_units", where="level = 'town'")
    real = dict(zip(*towns_of(county.county)[["code", "name"]].T.values, strict=True))
    assert dict(zip(towns["code"], towns["name"], strict=True)) == {c: real[c] for c in towns["code"]}
    groups = ws.read("admin_units", where="level = 'group'")
    assert len(groups) and groups["derived"].astype(bool).all() and groups.geometry.notna().all()
    hh = ws.read("households", columns=["village_code", "group_code", "group_name"])
    coded = hh[hh["group_code"].notna()]
    assert len(coded) and set(coded["group_code"]) <= set(groups["code"])
    # the code is the village's plus the number of the group the register named
    assert all(g[:12] == v and int(g[12:]) == int(group_key(n))
               for v, g, n in zip(coded["village_code"], coded["group_code"], coded["group_name"], strict=True))


@pytest.mark.slow
def test_another_group_of_a_village_with_derived_groups_is_placed_by_village(gpkg_run, tmp_path, monkeypatch):
    import shutil

    from grids.workspace import open_workspace

    target, _ = gpkg_run
    copy = tmp_path / "copy.gpkg"
    shutil.copy(target, copy)
    ws = open_workspace(copy)
    groups = ws.read("admin_units", where="level = 'group'")
    village = ws.read("admin_units", where="code = ?", params=[groups["parent_code"].iloc[0]]).iloc[0]
    town = ws.read("admin_units", where="code = ?", params=[village["parent_code"]]).iloc[0]
    taken = {int(c[12:]) for c in groups.loc[groups["parent_code"] == village["code"], "code"]}
    free = next(k for k in range(1, 100) if k not in taken)
    f = tmp_path / "one.csv"
    pd.DataFrame({"户号": ["NEW0001"], "客户类型": ["农牧户"], "乡镇": [town["name"]], "村": [village["name"]],
                  "组": [f"第{free}村民小组"]}).to_csv(f, index=False)
    monkeypatch.setenv("GRIDS_PASSWORD", PASSWORD)
    rc, text = _cli("import", copy, "households", f, "--user", "chief")
    assert rc == 0, text
    row = ws.read("households", where="hh_id = 'NEW0001'").iloc[0]
    assert (row["village_code"], row["group_name"], row["placed_by"]) == (village["code"], f"{free}组", "name")
    assert row["group_code"] is None or pd.isna(row["group_code"])


@pytest.mark.slow
def test_postgis_gives_the_same_report(gpkg_run, county, pg_target, tmp_path):
    _, run = gpkg_run
    pg = run_sequence(pg_target, county, tmp_path)
    assert pg["imports"] == run["imports"]
    for step in ("build", "assign", "check"):
        assert pg[step][0] == 0, pg[step][1][-2000:]
    for key in ("report", "by_branch"):  # the audit chain's head and the plan's id are the workspace's own
        a = {k: v for k, v in run[key].items() if k not in ("audit_head", "plan_id")}
        b = {k: v for k, v in pg[key].items() if k not in ("audit_head", "plan_id")}
        assert a == b, key
    assert run["by_branch"]["breakdown"] and run["report"]["county"]["registered"] == county.households


@pytest.mark.slow
def test_the_benchmark_times_every_step_and_reports_its_peak_memory():
    import importlib.util

    from grids.commands.bench import BENCH_DIR, available

    assert "real_county" in available()
    spec = importlib.util.spec_from_file_location("bench_real_county", BENCH_DIR / "bench_real_county.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(households=3_000)  # fewer leave branches without grids (assign exits 1)
    steps = result["steps"]
    assert list(steps) == ["init", "accounts_add", "import_villages", "import_register", "import_rejects_with_names",
                           "import_branches", "import_staff", "build", "assign"]
    assert all(s["rc"] == 0 for k, s in steps.items() if k != "import_register"), steps
    assert steps["import_register"]["rc"] == 1  # the misspelt names are rejected …
    assert result["workspace"]["households"] == result["register"]["rows"] == 3_000  # … and taken after --names
    assert all(s["s"] > 0 and 50 < s["peak_rss_mb"] < 3 * 1024 for s in steps.values())
    assert result["total_s"] == pytest.approx(sum(s["s"] for s in steps.values()), abs=0.2)
    assert json.loads(json.dumps(result)) == result and result["within_budget"] is True
