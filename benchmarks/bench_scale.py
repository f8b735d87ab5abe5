"""Benchmark: the household → grid join + funnel by grid for a city of 10M households (1M with ``quick``).

Households are generated straight to partitioned GeoParquet by :func:`geodata.city.write_city` (12 counties of
赤峰市, ~1.5k village grids), in a child process so that the driver's memory figures are its own. Then:

- **in-memory** (the baseline, in a child process): read every partition into one GeoDataFrame,
  :func:`grids.coverage.locate_households` + :func:`grids.coverage.funnel` (``by="grid"``);
- **Dask, 1 worker** and **Dask, 2 workers**: :func:`grids.scale.funnel_dask` on a ``distributed``
  LocalCluster (processes, one thread each) reading the partitions.

Timings are medians of several repeats (after one warm-up run for Dask); throughput is households/s of the
join + funnel (Dask includes reading the partitions; in-memory is given with and without its read). Peak RSS is
sampled every 50 ms with psutil in a thread (driver and each worker), and the in-memory child reports its
``ru_maxrss``. The Dask result is checked equal to the in-memory one.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--quick] [--households N]`` or ``python -m grids bench
--only scale``. Set ``GRIDS_BENCH_DIR`` to keep the generated data between runs (it is reused when present).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

MB = 1024 * 1024


class PeakRSS:
    """Peak resident memory of some processes, sampled in a background thread."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = dict.fromkeys(pids, 0)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak[name] = max(self.peak[name], proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def mb(self) -> dict[str, float]:
        return {k: round(v / MB, 1) for k, v in self.peak.items()}


def _child(args: list[str]) -> dict:
    """Run ``bench_scale.py --child …`` in a fresh interpreter; return its JSON answer."""
    res = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _generate(workdir: Path, households: int) -> dict:
    from geodata.city import write_city

    t0 = time.perf_counter()
    city = write_city(workdir, households=households, partition_size=250_000, overwrite=True)
    return {"seconds": time.perf_counter() - t0, "workspace": str(city.workspace),
            "households": str(city.households), "peak_rss_mb": _maxrss_mb()}


def _maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _grids(workspace: str):
    from grids.plans import read_grids, resolve_plan
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(workspace)
    return read_grids(ws, resolve_plan(ws))


def _in_memory(workspace: str, households: str, repeats: int, out: str) -> dict:
    """The in-memory path in this (child) process; the funnel table is pickled to ``out``."""
    import geopandas as gpd
    import pandas as pd

    from grids.coverage import funnel, locate_households

    grids = _grids(workspace)
    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    files = sorted(Path(households).glob("part.*.parquet"))
    hh = pd.concat([gpd.read_parquet(f) for f in files], ignore_index=True)
    read_s = time.perf_counter() - t0
    loaded_mb = (psutil.Process().memory_info().rss - rss0) / MB
    times, table = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        table = funnel(hh, by="grid", located=locate_households(hh, grids))
        times.append(time.perf_counter() - t0)
    with open(out, "wb") as fh:
        pickle.dump(table, fh)
    return {"rows": len(hh), "read_s": read_s, "join_funnel_s": times, "loaded_rss_mb": round(loaded_mb, 1),
            "peak_rss_mb": _maxrss_mb()}


def _dask(households: str, grids, workers: int, repeats: int, memory_limit: str):
    from grids.scale import funnel_dask, get_client, read_households_parquet

    with get_client(workers=workers, memory_limit=memory_limit) as client:
        pids = {"driver": os.getpid()}
        pids.update({f"worker{i}": pid for i, pid in enumerate(client.run(os.getpid).values())})
        warm = read_households_parquet(households).partitions[:workers]
        funnel_dask(warm, grids, by="town", client=client)  # warm-up: imports on every worker
        times, table = [], None
        with PeakRSS(pids) as peak:
            for _ in range(repeats):
                t0 = time.perf_counter()
                table = funnel_dask(households, grids, by="grid", client=client)
                times.append(time.perf_counter() - t0)
        worker_maxrss = client.run(_maxrss_mb)
    rss = peak.mb()
    return table, {
        "workers": workers,
        "join_funnel_s": times,
        "peak_rss_mb": {"driver": rss.pop("driver"), "workers": rss,
                        "workers_ru_maxrss": dict(zip(rss, worker_maxrss.values(), strict=True))},
    }


def run(*, quick: bool = False, households: int | None = None, repeats: int = 3) -> dict:
    """Generate the city (or reuse ``$GRIDS_BENCH_DIR``), run the three engines, return the figures."""
    import pandas as pd

    n = households or (1_000_000 if quick else 10_000_000)
    keep = os.environ.get("GRIDS_BENCH_DIR")
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="bench_scale_")
    workdir = Path(keep or tmp.name) / f"city_{n}"
    try:
        marker = workdir / "done.json"
        if marker.exists():
            gen = json.loads(marker.read_text()) | {"reused": True}
        else:
            gen = _child(["generate", str(workdir), str(n)])
            marker.write_text(json.dumps(gen))
        grids = _grids(gen["workspace"])
        parts = len(list(Path(gen["households"]).glob("part.*.parquet")))
        result: dict = {
            "households": n, "grids": len(grids), "partitions": parts,
            "machine": {"cpus": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
                        "available_gb": round(psutil.virtual_memory().available / 1024**3, 1),
                        "load_average_at_start": [round(x, 1) for x in os.getloadavg()]},
            "generate": {"seconds": round(gen["seconds"], 1), "peak_rss_mb": gen["peak_rss_mb"],
                         "reused": gen.get("reused", False)},
        }
        tables = {}
        for w in (1, 2):
            table, fig = _dask(gen["households"], grids, w, repeats, memory_limit="6GB")
            med = statistics.median(fig["join_funnel_s"])
            fig.update(median_s=round(med, 2), households_per_s=round(n / med))
            fig["join_funnel_s"] = [round(t, 2) for t in fig["join_funnel_s"]]
            result[f"dask_{w}_worker{'s' if w > 1 else ''}"] = fig
            tables[w] = table
        # the in-memory baseline last, in its own process (its memory is not the driver's)
        need_gb = n * 1.0e-6 * 0.8  # peak ~0.75 GB per million households (7.5 GB measured at 10M)
        if psutil.virtual_memory().available / 1024**3 > need_gb + 4:
            out = Path(workdir) / "in_memory_table.pkl"
            mem = _child(["in_memory", gen["workspace"], gen["households"], str(repeats), str(out)])
            with open(out, "rb") as fh:
                expected = pd.read_pickle(fh)
            med = statistics.median(mem["join_funnel_s"])
            result["in_memory"] = {
                "rows": mem["rows"], "read_s": round(mem["read_s"], 2),
                "join_funnel_s": [round(t, 2) for t in mem["join_funnel_s"]], "median_s": round(med, 2),
                "households_per_s": round(n / med), "households_per_s_with_read": round(n / (med + mem["read_s"])),
                "loaded_rss_mb": mem["loaded_rss_mb"], "peak_rss_mb": mem["peak_rss_mb"],
            }
            same = {}
            for w, table in tables.items():
                try:
                    pd.testing.assert_frame_equal(table, expected)
                    same[w] = True
                except AssertionError:
                    same[w] = False
            result["identical_to_in_memory"] = {f"{w}_worker{'s' if w > 1 else ''}": v for w, v in same.items()}
            base = result["in_memory"]["households_per_s_with_read"]
            result["ratios"] = {
                "dask_1_vs_in_memory_with_read": round(result["dask_1_worker"]["households_per_s"] / base, 2),
                "dask_2_vs_in_memory_with_read": round(result["dask_2_workers"]["households_per_s"] / base, 2),
            }
        else:
            result["in_memory"] = {"skipped": f"not enough free memory for {n:,} households in one process"}
            result["ratios"] = {}
        result["machine"]["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
        result["ratios"]["dask_2_vs_dask_1"] = round(
            result["dask_2_workers"]["households_per_s"] / result["dask_1_worker"]["households_per_s"], 2)
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        kind, *rest = argv[1:]
        if kind == "generate":
            answer = _generate(Path(rest[0]), int(rest[1]))
        else:
            answer = _in_memory(rest[0], rest[1], int(rest[2]), rest[3])
        print(json.dumps(answer))
        return
    quick = "--quick" in argv
    n = int(argv[argv.index("--households") + 1]) if "--households" in argv else None
    print(json.dumps(run(quick=quick, households=n), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    _main(sys.argv[1:])
