"""``python -m grids bench [--quick] [--only NAME ...]``: run the project's benchmarks, print JSON.

Each ``benchmarks/bench_<name>.py`` exposes ``run(*, quick=False) -> dict`` with its figures (medians, ratios
against a baseline measured in the same process). Benchmarks check budgets; tests check correctness.
A new file is registered by its name: ``benchmarks/bench_real_county.py`` is ``--only real_county`` (a real county
from scratch: ``init`` + villages + a 100,000-household register by names + build + assign, each step in its own
process, with wall time and peak RSS against the 120 s / 3 GB budget).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def median_time(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall-clock seconds of ``repeats`` calls of ``func``, and the last call's result (for the
    benchmark scripts: machines are noisy, medians are reported)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def available() -> list[str]:
    """Names of the benchmarks in ``benchmarks/`` (``bench_<name>.py``)."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="运行性能基准测试，输出 JSON / run the benchmarks")
    p.add_argument("--quick", action="store_true", help="小规模快速运行 / smaller, faster instances")
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"只运行这些：{', '.join(available())}")
    p.add_argument("--out", help="同时把结果写入该 JSON 文件 / also write the JSON here")


def run(args: argparse.Namespace) -> int:
    names = args.only or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"错误：没有这些基准：{', '.join(unknown)}；可用：{', '.join(available())}", file=sys.stderr)
        return 2
    results: dict[str, object] = {}
    for name in names:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"bench_{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses (and pickling) look the module up by name
        spec.loader.exec_module(module)
        t0 = time.perf_counter()
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        results[name] = module.run(quick=args.quick)
        print(f"[bench] {name} {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    text = json.dumps(results, ensure_ascii=False, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0
