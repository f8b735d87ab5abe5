"""Benchmark: a failed sign-in costs the same for a known and an unknown username (no enumeration by timing).

Times :func:`grids.auth.sign_in` with a wrong password for an existing account and for a name that does not
exist (verified against a dummy argon2 hash), both on a workspace holding as many accounts as the demo
(184). The known account is unlocked between attempts outside the timing, so every timed attempt takes the
full path (read, argon2 verification, failure count, rate-limited audit). Also reported: a successful
sign-in. The figure to watch is ``ratio_known_unknown`` (≈ 1; the issue measured 190 ms vs 3.5 ms before).
No test times this: tests check that both paths make one argon2 verification.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from grids import auth
from grids.errors import PermissionDeniedError
from grids.workspace import GpkgWorkspace, Workspace

PASSWORD = "bench-password-1"
ACCOUNTS = 184


def _timed_failure(ws: Workspace, name: str) -> float:
    t0 = time.perf_counter()
    try:
        auth.sign_in(ws, name, "wrong-password")
    except PermissionDeniedError:
        pass
    else:  # pragma: no cover - the password is wrong on purpose
        raise AssertionError("a wrong password signed in")
    return time.perf_counter() - t0


def run(*, quick: bool = False) -> dict:
    """Median seconds of failed sign-ins (known vs unknown username) and of a successful one, and their ratio."""
    repeats = 7 if quick else 25
    with tempfile.TemporaryDirectory() as tmp:
        ws = GpkgWorkspace.create(Path(tmp) / "ws.gpkg", county_code="150422", county_name="巴林左旗")
        digest = auth.hash_password(PASSWORD)
        frame = pd.DataFrame({"username": [f"u{i:03d}" for i in range(ACCOUNTS)], "role": "planner"})
        auth.create_accounts(ws, frame, actor="bench", password_hashes=pd.Series([digest] * ACCOUNTS))
        auth.sign_in(ws, "u000", PASSWORD)  # warm-up: the dummy hash, imports, file cache
        known, unknown, success = [], [], []
        for i in range(repeats):  # interleaved, so drift in machine load hits both alike
            known.append(_timed_failure(ws, f"u{i % ACCOUNTS:03d}"))
            unknown.append(_timed_failure(ws, f"nobody{i}"))
            auth.unlock(ws, f"u{i % ACCOUNTS:03d}", actor="bench")
            t0 = time.perf_counter()
            auth.sign_in(ws, "u100", PASSWORD)
            success.append(time.perf_counter() - t0)
    k, u, s = statistics.median(known), statistics.median(unknown), statistics.median(success)
    return {
        "repeats": repeats,
        "failed_known_s": round(k, 4),
        "failed_unknown_s": round(u, 4),
        "ratio_known_unknown": round(k / u, 3),
        "success_s": round(s, 4),
        "ratio_success_unknown": round(s / u, 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
