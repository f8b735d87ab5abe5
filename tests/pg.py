"""Helpers for the PostGIS tests: the test cluster's URL, throwaway schemas, the concurrency worker.

The URL comes from ``GRIDS_TEST_PG_URL`` or from ``scripts/postgres.sh`` (which installs, initialises and
starts a throwaway cluster under ``.pg/``). When PostgreSQL cannot be had, tests are skipped with the reason,
except under CI (``CI`` set), where they fail: the PostGIS backend must not go untested there silently.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "postgres.sh"


def in_ci() -> bool:
    """True when running under CI (``CI`` set to anything but empty/0/false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def postgres_url() -> str:
    """The test database URL, starting the throwaway cluster when needed; skip (fail under CI) when impossible."""
    url = os.environ.get("GRIDS_TEST_PG_URL", "").strip()
    reason = ""
    if not url:
        try:
            res = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"{SCRIPT.name} failed to run: {exc}"
        else:
            lines = res.stdout.strip().splitlines()
            if res.returncode == 0 and lines:
                url = lines[-1].strip()
            else:
                reason = f"{SCRIPT.name} exited {res.returncode}: {(res.stderr or res.stdout).strip()[-800:]}"
    if url:
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=10) as con:
                ok = con.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
            if not ok:
                reason = f"the database {url} has no postgis extension"
        except psycopg.Error as exc:
            reason = f"cannot connect to {url}: {exc}"
    if reason:
        message = f"PostgreSQL/PostGIS unavailable, PostGIS backend not tested: {reason}"
        if in_ci():
            pytest.fail(message + " (CI is set: these tests must run in CI)", pytrace=False)
        pytest.skip(message)
    return url


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A unique schema name for one test; the schema (if created) is dropped afterwards."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    try:
        yield name
    finally:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def with_schema(url: str, schema: str) -> str:
    """``url`` with ``?schema=`` (or ``&schema=``) appended."""
    return url + ("&" if "?" in url else "?") + f"schema={schema}"


def bump_counter(target: str, n: int, barrier, name: str) -> None:
    """Worker process: ``n`` transactions, each reading the ``plans`` row P1's revision and writing it + 1.

    The read and the write are separate statements with Python in between, so concurrent writers lose updates
    unless the workspace serialises its transactions.
    """
    from grids.workspace import open_workspace

    ws = open_workspace(target)
    barrier.wait(timeout=120)
    for _ in range(n):
        with ws.transaction(actor=name, action="计数") as tx:
            current = int(tx.read("plans", where="plan_id = ?", params=["P1"])["revision"].iloc[0])
            tx.execute("UPDATE plans SET revision = ? WHERE plan_id = ?", (current + 1, "P1"))
