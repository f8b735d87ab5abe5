"""网格通 — Streamlit entry: page config, role switch (until sign-in), navigation, the shared sidebar.

Run with ``./scripts/app`` (or ``streamlit run app.py``); the workspace is env ``GRIDS_WORKSPACE``
(default ``workspace/demo.gpkg``).
"""

from __future__ import annotations

import streamlit as st

from grids.errors import GridsError
from ui import data, sidebar
from ui.state import ROLE_LABELS, ROOT, init_state, pages_for

# page_icon is a local file: a ":material/…:" icon would make the browser fetch it from fonts.gstatic.com
st.set_page_config(page_title="网格通", page_icon=str(ROOT / "static" / "favicon.png"), layout="wide")
init_state()

role = sidebar.role_switch()


def _no_pages() -> None:
    st.title("网格通")
    st.info(f"“{ROLE_LABELS[role]}”角色的页面正在建设中，请切换角色。")


specs = pages_for(role)
pages = [st.Page(p.path, title=p.title, icon=p.icon) for p in specs] or [
    st.Page(_no_pages, title="网格通", url_path="home")
]
nav = st.navigation(pages)

target = data.workspace_target()
try:
    rev = data.revision(target)
except GridsError as exc:
    st.error(f"无法打开工作区：{exc}")
    st.stop()
sidebar.workspace_panel(target, rev)
nav.run()
