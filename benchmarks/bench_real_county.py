"""A real county from scratch: ``init`` + villages + a 100,000-household register by NAMES + build + assign.

The files are what a 联社 holds (:func:`geodata.register.write_county_files` on 巴林右旗, 150423): village seats
as points with names only (GCJ-02), a register (CSV) keyed by 乡镇/村/组 names with variant spellings, ≈1.5 %
unknown village names and 20 % GPS points, branches and staff. Generating them is not timed.

Each step runs ``python -m grids …`` in its own process, as a planner would; the figures per step are the wall
time and the process's peak RSS (``VmHWM`` of ``/proc/self/status`` in the child; ``ru_maxrss`` would carry
the parent's peak over ``fork``/``exec``). The budget (issue 14): the timed steps
together ≤ 120 s and no step above 3 GB on this machine. Steps: ``init``, ``accounts add`` (first admin),
``import villages``, ``import households`` (the register; the import then re-derives the villages around the
households just located), ``import households --names`` (the rejects file after confirming the unknown names),
``import branches``, ``import staff``, ``build``, ``assign``.

Run: ``python -m grids bench --only real_county`` (``--quick``: 10,000 households).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 120.0
BUDGET_RSS_MB = 3 * 1024
_PASSWORD = "bench-real-county-2026"
_CHILD = (
    "import json, resource, sys\n"
    "from grids.__main__ import main\n"
    "try:\n"
    "    rc = main(sys.argv[2:])\n"
    "except SystemExit as exc:\n"
    "    rc = exc.code if isinstance(exc.code, int) else 2\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "for line in open('/proc/self/status'):  # VmHWM: this process's own peak (ru_maxrss keeps the parent's)\n"
    "    if line.startswith('VmHWM:'):\n"
    "        peak = int(line.split()[1]) / 1024\n"
    "open(sys.argv[1], 'w').write(json.dumps({'rc': rc, 'peak_rss_mb': peak}))\n"
    "sys.exit(rc)\n"
)


def _step(argv: list[str], work: Path) -> dict:
    """Run ``python -m grids argv`` in a child process: its exit code, wall seconds and peak RSS (MB)."""
    probe = work / "probe.json"
    env = {**os.environ, "GRIDS_PASSWORD": _PASSWORD, "GRIDS_NEW_PASSWORD": _PASSWORD}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _CHILD, str(probe), *map(str, argv)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    got = json.loads(probe.read_text()) if probe.exists() else {"rc": res.returncode, "peak_rss_mb": None}
    probe.unlink(missing_ok=True)
    out = {"s": round(wall, 2), "rc": got["rc"],
           "peak_rss_mb": round(got["peak_rss_mb"], 1) if got["peak_rss_mb"] else None}
    if got["rc"] not in (0, 1):
        out["stderr"] = res.stderr.strip()[-600:]
    return out


def run(*, quick: bool = False, households: int | None = None) -> dict:
    """Time the steps; returns the figures (JSON-able) with ``within_budget``."""
    from geodata.register import write_county_files

    n = households or (10_000 if quick else 100_000)
    with tempfile.TemporaryDirectory(prefix="bench_real_county_") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        files = write_county_files(work / "files", households=n, seed=1423, register_format="csv")
        generate_s = time.perf_counter() - t0
        ws = work / "county.gpkg"
        user = ("--user", "chief")
        steps: dict[str, dict] = {}
        steps["init"] = _step(["init", ws, "--county", files.county, "--outline", files.outline,
                               "--coords", "gcj02"], work)
        steps["accounts_add"] = _step(["accounts", "add", ws, "chief", "--role", "admin"], work)
        steps["import_villages"] = _step(["import", ws, "villages", files.villages, "--coords", "gcj02", *user],
                                         work)
        steps["import_register"] = _step(["import", ws, "households", files.register, *user], work)
        rejects = files.register.with_name(files.register.stem + ".rejects.csv")
        template = files.register.with_name(files.register.stem + ".names.csv")
        if template.exists():
            names = pd.read_csv(template, dtype=str)
            meant = files.unknown.set_index(["乡镇", "登记名称"])["标准名称"]
            mapping = work / "mapping.csv"
            names.drop(columns=["行政区划代码"]).assign(
                标准名称=[meant.get((t, w)) for t, w in zip(names["乡镇"], names["登记名称"], strict=True)],
            ).to_csv(mapping, index=False)
            steps["import_rejects_with_names"] = _step(["import", ws, "households", rejects, "--names", mapping,
                                                        *user], work)
        steps["import_branches"] = _step(["import", ws, "branches", files.branches, *user], work)
        steps["import_staff"] = _step(["import", ws, "staff", files.staff, *user], work)
        steps["build"] = _step(["build", ws, *user], work)
        steps["assign"] = _step(["assign", ws, *user], work)
        from grids.workspace import open_workspace

        w = open_workspace(ws)
        stored = {"households": w.count("households"), "villages": w.count("admin_units", where="level = 'village'"),
                  "groups": w.count("admin_units", where="level = 'group'"), "grids": w.count("grids")}
    total = sum(s["s"] for s in steps.values())
    peak = max((s["peak_rss_mb"] or 0) for s in steps.values())
    return {
        "households": n,
        "county": f"{files.name}（{files.county}）",
        "generate_files_s": round(generate_s, 1),
        "steps": steps,
        "total_s": round(total, 1),
        "peak_rss_mb": peak,
        "budget": {"total_s": BUDGET_S, "peak_rss_mb": BUDGET_RSS_MB},
        "within_budget": bool(total <= BUDGET_S and peak <= BUDGET_RSS_MB
                              and all(s["rc"] in (0, 1) for s in steps.values())),
        "register": {"rows": files.households, "gps": files.gps, "unknown_name_rows": int(files.unknown["rows"].sum()),
                     "variant_rows": files.variants},
        "workspace": stored,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), ensure_ascii=False, indent=2))
