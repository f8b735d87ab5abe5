"""One workspace type: grids.workspace.Workspace is what both backends are, open_workspace picks one, the
backends do not import each other, and the old module names re-export what callers use."""

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


def test_old_module_names_re_export():
    import grids.store as store
    import grids.store_pg as store_pg
    from grids.workspace.postgis import PgWorkspace

    assert store.Workspace is GpkgWorkspace and store.open_workspace is open_workspace
    assert store_pg.PgWorkspace is PgWorkspace
    for name in store.__all__:
        assert hasattr(store, name), name


@pytest.mark.parametrize(("target", "pg"), [("postgresql://u@h/db", True), ("postgres://u@h/db?schema=s", True),
                                            ("workspace/demo.gpkg", False), ("postgresql.gpkg", False)])
def test_is_pg_url(target, pg):
    assert is_pg_url(target) is pg
