"""Shared fixtures: small in-memory data with explicit CRS, temporary workspaces, the demo workspace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "workspace" / "demo.gpkg"


@pytest.fixture
def empty_ws(tmp_path):
    """A fresh, empty workspace for 巴林左旗."""
    from grids.workspace import GpkgWorkspace

    return GpkgWorkspace.create(tmp_path / "ws.gpkg", county_code="150422", county_name="巴林左旗")


COUNTY = {"county_code": "150422", "county_name": "巴林左旗"}

# Streamlit's AppTest runs app.py as ``__main__`` and leaves it there; a process started later with the "spawn"
# method (our concurrency tests, Dask's worker nannies) would then re-run app.py in the child. Put pytest's own
# ``__main__`` back before every test.
_MAIN = sys.modules["__main__"]


@pytest.fixture(autouse=True)
def _pytest_main_module():
    sys.modules["__main__"] = _MAIN
    yield
    sys.modules["__main__"] = _MAIN


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the throwaway PostGIS test cluster (skips outside CI when PostgreSQL cannot be started)."""
    from .pg import postgres_url

    return postgres_url()


@pytest.fixture
def pg_target(pg_url):
    """A URL naming a fresh, not yet existing schema (dropped after the test)."""
    from .pg import fresh_schema, with_schema

    with fresh_schema(pg_url) as schema:
        yield with_schema(pg_url, schema)


@pytest.fixture
def pg_ws(pg_target):
    """An empty PostGIS workspace in its own schema."""
    from grids.workspace.postgis import PgWorkspace

    return PgWorkspace.create(pg_target, **COUNTY)


@pytest.fixture(params=["gpkg", "postgis"])
def any_ws(request, tmp_path):
    """An empty workspace on either backend: behaviour tests run against both."""
    from grids.workspace import GpkgWorkspace

    if request.param == "gpkg":
        return GpkgWorkspace.create(tmp_path / "ws.gpkg", **COUNTY)
    return request.getfixturevalue("pg_ws")


@pytest.fixture(scope="session")
def demo_path() -> Path:
    """The demo workspace built by scripts/setup.sh (built here when missing), read-only for tests."""
    if not DEMO.exists():
        DEMO.parent.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "grids", "demo", str(DEMO)], check=True, cwd=ROOT)
    return DEMO


@pytest.fixture
def demo_copy(demo_path, tmp_path) -> Path:
    """A private copy of the demo workspace that a test may change (with its card key file beside it)."""
    dst = tmp_path / "demo.gpkg"
    copy_workspace(demo_path, dst)
    return dst


def copy_workspace(src: Path, dst: Path) -> Path:
    """Copy the GeoPackage workspace ``src`` to ``dst`` together with its card key file (``.cardkey``) when it has
    one: a copy of the workspace alone cannot find its cards (:mod:`grids.cardkey`)."""
    shutil.copy(src, dst)
    key = src.with_name(src.name + ".cardkey")
    if key.exists():
        shutil.copy(key, dst.with_name(dst.name + ".cardkey"))
    return dst


def gdal_validator() -> list[str] | None:
    """Command running GDAL's validate_gpkg.py with Debian's python3-gdal, or None when not installed."""
    for p in ("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py",
              "/usr/share/doc/python3-gdal/examples/validate_gpkg.py"):
        if os.path.exists(p):
            return ["/usr/bin/python3", p]
    return None


def validate_gpkg(path: Path) -> list[str]:
    """Every problem GDAL's validate_gpkg.py reports for ``path`` (its output lines; none for a clean file)."""
    cmd = gdal_validator()
    assert cmd is not None, "GDAL's validate_gpkg.py missing: scripts/setup.sh --test installs python3-gdal"
    res = subprocess.run([*cmd, str(path)], capture_output=True, text=True)
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert lines or res.returncode == 0, f"validate_gpkg.py exited {res.returncode} without a message"
    return lines


def three_households():
    """Three households for the workspace tests: Chinese text, booleans with a gap, an empty point."""
    return gpd.GeoDataFrame(
        {
            "hh_id": ["H1", "H2", "H3"],
            "head_name": ["张三", "李四", "王五"],
            "segment": ["农牧户", "公职人员", "社区居民"],
            "archived": [True, False, True],
            "eligible": [True, None, False],
            "granted_amount": [50_000.0, 0.0, None],
            "using": [True, False, False],
        },
        geometry=[shapely.Point(119.39, 43.98), None, shapely.Point(119.40, 43.99)],
        crs=4490,
    )


CLI_PASSWORD = "cli-test-pass"


def cli_user(ws, monkeypatch, *, username: str = "admin", role: str = "admin", **binding) -> str:
    """An account for ``python -m grids … --user NAME`` (created when missing; its password is put in
    ``GRIDS_PASSWORD``); returns the username to pass."""
    from grids.auth import create_account

    if not ws.count("accounts", where="username = ?", params=[username]):
        create_account(ws, username=username, password=CLI_PASSWORD, role=role, actor="test", **binding)
    monkeypatch.setenv("GRIDS_PASSWORD", CLI_PASSWORD)
    return username
