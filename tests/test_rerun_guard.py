"""A page that reruns itself for a widget value (a map click) reruns once per user action, never in a loop."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _flipping_page() -> None:
    import streamlit as st

    from ui.state import RerunGuard

    guard = RerunGuard("t")
    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    # a value that differs every run, as two maps holding each other's old clicks answer (or a forged client)
    value = 1 - st.session_state.get("value", 0)
    if value != st.session_state.get("value") and guard.may_rerun:
        st.session_state["value"] = value
        guard.rerun()
    st.write(f"value {st.session_state.get('value')}")


def test_a_changing_widget_value_reruns_the_page_once_not_for_ever():
    at = AppTest.from_function(_flipping_page, default_timeout=30)
    at.run()
    assert not at.exception
    assert at.session_state["runs"] == 2  # the run and the one rerun it asked for
    at.run()
    assert at.session_state["runs"] == 4  # the next user action may rerun once again

