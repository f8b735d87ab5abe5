"""网格通 — Streamlit entry: page config, sign-in, navigation by role, the shared sidebar.

Run with ``./scripts/app`` (or ``streamlit run app.py``); the workspace is env ``GRIDS_WORKSPACE``
(default ``workspace/demo.gpkg``). Until someone signs in, the only page is the login form (ui/auth.py);
then the navigation holds the pages the account's role may use (grids/navigation.PAGES), and every page reads its
data through the account's scoped workspace (ui/data.scoped).
"""

from __future__ import annotations

import streamlit as st

from grids.errors import GridsError
from grids.navigation import pages_for
from grids.text import markdown
from ui import auth, data, sidebar
from ui.state import ROOT, init_state

# page_icon is a local file: a ":material/…:" icon would make the browser fetch it from fonts.gstatic.com
st.set_page_config(page_title="网格通", page_icon=str(ROOT / "static" / "favicon.png"), layout="wide")
init_state()

target = data.workspace_target()
try:
    ws = data.open_workspace(target)
    rev = ws.revision
except GridsError as exc:
    st.error(f"无法打开工作区：{markdown(exc)}")
    st.stop()

session = auth.current_session(ws)  # re-read from the workspace: disabled, reset or re-roled accounts act now
if session is None:
    def login() -> None:
        auth.login_page(ws)

    st.navigation([st.Page(login, title="登录", url_path="login", default=True)], position="hidden").run()
    st.stop()


role_name = session.account.role_name


def _no_pages() -> None:
    st.title("网格通")
    st.info(f"“{role_name}”角色暂无可用页面，请联系管理员。")


specs = pages_for(session.account.role)
pages = [st.Page(p.path, title=p.title, icon=p.icon) for p in specs] or [
    st.Page(_no_pages, title="网格通", url_path="home")
]
nav = st.navigation(pages)
sidebar.account_panel(session, ws)
sidebar.workspace_panel(target, rev, session)
nav.run()
