"""One workspace type: grids.workspace.Workspace is what both backends are, open_workspace picks one, the
backends do not import each other, and nothing goes through the old module names (they are gone)."""

import subprocess
import sys

import pytest

from grids.workspace import GpkgWorkspace, Workspace, is_pg_url, open_workspace


def test_both_backends_are_workspaces(any_ws):
    assert isinstance(any_ws, Workspace)
    again = open_workspace(any_ws.target if isinstance(any_ws, GpkgWorkspace) else
                           any_ws._conninfo + f"?schema={any_ws.schema}")
    assert type(again) is type(any_ws) and again.revision == any_ws.revision


def test_gpkg_path_needs_no_postgis_module_and_there_is_no_cycle():
    code = ("import sys, grids.workspace.gpkg, grids.workspace.postgis; "
            "import grids.workspace as w; "
            "print(sorted(m for m in sys.modules if m in ('grids.store', 'grids.store_pg')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # the package never goes through the old modules
    code = "import sys, grids.workspace; print('grids.workspace.postgis' in sys.modules, 'psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_old_module_names_are_gone_and_no_code_names_them():
    """``grids.store`` / ``grids.store_pg`` were shims; every caller imports from :mod:`grids.workspace` now."""
    import importlib
    import pathlib
    import re

    for name in ("grids.store", "grids.store_pg"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)
    root = pathlib.Path(__file__).resolve().parents[1]
    old = re.compile(r"\bgrids\.store(_pg)?\b|from grids import store")
    files = [f for d in ("grids", "geodata", "ui", "pages", "tests", "benchmarks", "scripts") if (root / d).is_dir()
             for f in (root / d).rglob("*.py")] + [root / "app.py", root / "README.md"]
    offenders = [f"{f.relative_to(root)}:{n}" for f in files if f.is_file() and f != pathlib.Path(__file__).resolve()
                 for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if old.search(line)]
    assert offenders == []


@pytest.mark.slow
def test_every_grids_module_imports_without_a_cycle():
    """Each module of grids/ imported first in a fresh interpreter: a cycle shows up as an ImportError (~35 s)."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    mods = sorted(".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
                  for f in (root / "grids").rglob("*.py") if f.name != "__main__.py")
    code = ("import importlib, subprocess, sys\n"
            "bad = []\n"
            "for m in sys.argv[1:]:\n"
            "    r = subprocess.run([sys.executable, '-c', f'import {m}'], capture_output=True, text=True)\n"
            "    bad += [m + ': ' + r.stderr.strip().splitlines()[-1]] if r.returncode else []\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code, *mods], capture_output=True, text=True, check=True,
                         cwd=root).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("target", "pg"), [("postgresql://u@h/db", True), ("postgres://u@h/db?schema=s", True),
                                            ("workspace/demo.gpkg", False), ("postgresql.gpkg", False)])
def test_is_pg_url(target, pg):
    assert is_pg_url(target) is pg
