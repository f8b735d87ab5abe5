"""The sidebar every page shares, drawn once by ``app.py``."""

from __future__ import annotations

import streamlit as st

from ui import data
from ui.state import BASEMAP, ROLE, ROLE_LABELS


def role_switch() -> str:
    """The role selector (stands in for sign-in until accounts are wired in); returns the role key."""
    return st.sidebar.selectbox(
        "角色（演示用，待接入登录）", list(ROLE_LABELS), format_func=ROLE_LABELS.__getitem__, key=ROLE
    )


def workspace_panel(target: str, rev: int) -> None:
    """County name, revision and the basemap choice."""
    info = data.workspace_info(target, rev)
    meta = info["meta"]
    sb = st.sidebar
    sb.markdown(f"**{meta.get('county_name', '')}**（{meta.get('county_code', '')}）")
    sb.caption(f"工作区第 {rev} 版" + ("　演示数据" if meta.get("demo") == "1" else ""))
    labels = data.basemap_options()["labels"]
    if st.session_state.get(BASEMAP) not in labels:
        st.session_state[BASEMAP] = "offline"
    sb.selectbox("底图", list(labels), format_func=labels.__getitem__, key=BASEMAP,
                 help="离线底图只用本地图层，内网可用；其他底图需要能访问对应的瓦片服务器")
