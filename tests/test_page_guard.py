"""Every page guards itself: opened directly, without app.py and without sign-in, it shows no data.

Streamlit can run a ``pages/`` script on its own (its legacy multipage mode, e.g. right after a server starts), so
the sign-in check cannot live in app.py only.
"""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from .test_app import tiny_workspace

PAGES = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "pages").glob("*.py"))


@pytest.mark.parametrize("page", PAGES, ids=[Path(p).stem for p in PAGES])
def test_page_without_sign_in_shows_nothing(page, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDS_WORKSPACE", str(tiny_workspace(tmp_path / "ws.gpkg")))
    at = AppTest.from_file(page, default_timeout=60).run()
    assert not at.exception
    assert any("请先登录" in w.value for w in at.warning), [w.value for w in at.warning]
    # nothing of the workspace reached the page: no table, no metric, no map, no download
    assert not at.dataframe and not at.metric and not at.get("download_button")
    assert not [c for c in at.get("iframe")] and len(at.main.children) <= 2
