"""Chinese texts for Streamlit widgets that have fixed English ones (number formatting: :mod:`grids.display`)."""

from __future__ import annotations

import streamlit as st


def chinese_uploader() -> None:
    """Show ``st.file_uploader``'s fixed English texts ("Upload", "200MB per file") in Chinese on this page."""
    limit = st.get_option("server.maxUploadSize")
    st.html(f"""<style>
    [data-testid="stFileUploaderDropzoneInstructions"] span {{ font-size: 0; }}
    [data-testid="stFileUploaderDropzoneInstructions"] span::after {{ content: "每个文件不超过 {limit} MB";
                                                                      font-size: 14px; }}
    [data-testid="stFileUploaderDropzone"] button p {{ font-size: 0; }}
    [data-testid="stFileUploaderDropzone"] button p::after {{ content: "选择文件"; font-size: 14px; }}
    </style>""")
