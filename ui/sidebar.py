"""The sidebar every page shares, drawn once by ``app.py``: who is signed in, the workspace, the basemap."""

from __future__ import annotations

import streamlit as st

from grids.auth import Session
from grids.text import markdown
from grids.workspace import Workspace
from ui import auth, data
from ui.state import BASEMAP, UNMASK


def account_panel(session: Session, ws: Workspace) -> None:
    """The signed-in account (name, role, branch or staff binding) and the sign-out button."""
    acc = session.account
    sb = st.sidebar
    sb.markdown(f"**{markdown(acc.display_name or acc.username)}**")
    bound = f"　网点 {acc.branch_id}" if acc.role == "branch_manager" else (
        f"　员工 {acc.staff_id}" if acc.role == "customer_manager" else "")
    sb.caption(f"{acc.role_name}（{markdown(acc.username)}）{markdown(bound)}")
    sb.button("退出登录", key="auth.sign_out", icon=":material/logout:", on_click=auth.sign_out,
              kwargs={"notice": "已退出登录。", "ws": ws})


def workspace_panel(target: str, rev: int, session: Session | None = None) -> None:
    """County name, revision, the basemap choice and (roles that may) the full-personal-data switch."""
    info = data.workspace_info(target, rev)
    meta = info["meta"]
    sb = st.sidebar
    sb.divider()
    sb.markdown(f"**{markdown(meta.get('county_name', ''))}**（{markdown(meta.get('county_code', ''))}）")
    sb.caption(f"工作区第 {rev} 版" + ("　演示数据" if meta.get("demo") == "1" else ""))
    notice = data.workspace_notice(target)
    if notice:  # e.g. a read-only workspace with edits made outside the library it could not record
        sb.warning(markdown(notice))
    labels = data.basemap_options()["labels"]
    if st.session_state.get(BASEMAP) not in labels:
        st.session_state[BASEMAP] = "offline"
    sb.selectbox("底图", list(labels), format_func=labels.__getitem__, key=BASEMAP,
                 help="离线底图只用本地图层，内网可用；其他底图需要能访问对应的瓦片服务器")
    if session is not None and session.account.can("view_personal"):
        sb.checkbox("显示完整身份证号/电话", key=UNMASK,
                    help="默认打码显示；勾选后显示明文，每次查看和导出都记入审计记录")
