"""A protocol-level Streamlit client: one browser session over ``/_stcore/stream``, without a browser.

It speaks what Streamlit's frontend speaks: ``BackMsg`` protobufs up (``rerun_script`` with a
``ClientState``: the widget states, the page to run, the hashes of the large elements it already holds),
``ForwardMsg`` protobufs down (``new_session``, ``delta``, ``navigation``, ``script_finished``…). Like the
browser it keeps the large cacheable elements it received (by hash) and tells the server so, which then
sends references (``ref_hash``) instead of the elements again.

Used by ``benchmarks/bench_load.py`` (many sessions at once) and ``tests/test_bench_load_client.py``::

    client = await StClient.connect("http://127.0.0.1:8501")
    login = await client.run()                       # the first page (the login form)
    run = await client.submit_form("登录", {"用户名": "b01", "密码": DEMO_PASSWORD})
    assert "覆盖总览" in run.headings
    await client.close()

Every connection goes to the URL given (the benchmark passes 127.0.0.1 only); waits are bounded by
``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED_OK = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
WIDGET_KINDS = {"text_input", "text_area", "button", "selectbox", "radio", "checkbox", "component_instance",
                "multiselect", "number_input", "date_input", "download_button", "arrow_data_frame",
                "toggle", "slider", "button_group"}


class ClientError(RuntimeError):
    """The session failed: disconnected, timed out, or the script did not compile."""


@dataclass(frozen=True)
class Widget:
    """A widget the last run drew: its id (what the server knows it by), kind, label and options."""

    id: str
    kind: str
    label: str
    form_id: str = ""
    options: tuple[str, ...] = ()
    component_name: str = ""
    disabled: bool = False

    @property
    def user_key(self) -> str:
        """The ``key=`` given in the script (``$$ID-<hash>-<key>``), or ``"None"``."""
        return self.id.split("-", 2)[-1] if self.id.startswith("$$ID-") else ""


@dataclass
class ElementInfo:
    """What the client reads from one element: enough to interact and to check the page."""

    kind: str
    widget: Widget | None = None
    heading: str | None = None
    exception: str | None = None
    error_alert: str | None = None


@dataclass
class RunResult:
    """One script run as the client saw it (the last run when ``st.rerun`` chained several)."""

    seconds: float
    status: int
    headings: list[str] = field(default_factory=list)
    widgets: dict[str, Widget] = field(default_factory=dict)
    exceptions: list[str] = field(default_factory=list)
    error_alerts: list[str] = field(default_factory=list)
    received_bytes: int = 0
    runs: int = 0  # script runs until it finished (2 after an st.rerun)
    ends: list[int] = field(default_factory=list)  # every script_finished status seen (a rerun loop shows here)

    def widget(self, *, label: str | None = None, kind: str | None = None, key: str | None = None,
               component: str | None = None) -> Widget:
        """The first widget matching all the given criteria (KeyError if none)."""
        for w in self.widgets.values():
            if ((label is None or w.label == label) and (kind is None or w.kind == kind)
                    and (key is None or w.user_key == key)
                    and (component is None or component in w.component_name)):
                return w
        raise KeyError(f"no widget label={label!r} kind={kind!r} key={key!r} component={component!r}; "
                       f"have {[(w.kind, w.label, w.user_key) for w in self.widgets.values()]}")


# element info by ForwardMsg hash, shared by every client of the process (same hash → same element)
_INFO_BY_HASH: dict[str, ElementInfo] = {}


def _element_info(msg: ForwardMsg) -> ElementInfo | None:
    delta = msg.delta
    if delta.WhichOneof("type") != "new_element":
        return None
    element = delta.new_element
    kind = element.WhichOneof("type") or ""
    info = ElementInfo(kind=kind)
    sub = getattr(element, kind, None)
    if kind == "heading":
        info.heading = sub.body
    elif kind == "exception":
        info.exception = f"{sub.type}: {sub.message}"
    elif kind == "alert" and sub.format == Alert.ERROR:
        info.error_alert = sub.body
    if sub is not None and "id" in sub.DESCRIPTOR.fields_by_name and sub.id:
        fields = sub.DESCRIPTOR.fields_by_name
        options = tuple(sub.options) if "options" in fields and kind in ("selectbox", "radio") else ()
        info.widget = Widget(
            id=sub.id, kind=kind, label=getattr(sub, "label", ""), form_id=getattr(sub, "form_id", ""),
            options=options, component_name=getattr(sub, "component_name", ""),
            disabled=bool(getattr(sub, "disabled", False)))
    return info


class StClient:
    """One Streamlit session over a websocket (see the module docstring). Use :meth:`connect`."""

    def __init__(self, ws: Any, url: str) -> None:
        self.url = url
        self._ws = ws
        self._cached: set[str] = set()  # hashes of cacheable elements received (the browser's cache)
        self._page_hash = ""
        self.pages: dict[str, str] = {}  # page title → page_script_hash (from the navigation message)
        self.states: dict[str, WidgetState] = {}  # widget values set so far (sent with every rerun)
        self._current: RunResult | None = None
        self._finished: asyncio.Future | None = None
        self._t0 = 0.0
        self._reader = asyncio.create_task(self._read())
        self.closed_reason: str | None = None

    @classmethod
    async def connect(cls, url: str, *, timeout: float = 30.0) -> StClient:
        """Open a session at ``url`` (``http://127.0.0.1:PORT``)."""
        ws_url = url.replace("http://", "ws://", 1).rstrip("/") + "/_stcore/stream"
        ws = await asyncio.wait_for(websockets.connect(
            ws_url, subprotocols=["streamlit"], max_size=None, ping_interval=None, open_timeout=timeout,
            compression=None), timeout)
        return cls(ws, url)

    async def close(self) -> None:
        """Close the websocket (the server ends the session)."""
        self._reader.cancel()
        await self._ws.close()

    # -- receiving -------------------------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self._on_message(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure ends the session; reported to the waiter
            self.closed_reason = f"{type(exc).__name__}: {exc}"
        else:
            self.closed_reason = "disconnected"
        if self._finished is not None and not self._finished.done():
            self._finished.set_exception(ClientError(self.closed_reason))

    def _on_message(self, data: bytes) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        run = self._current
        if run is not None:
            run.received_bytes += len(data)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self._page_hash = msg.new_session.page_script_hash
            if run is not None:
                run.runs += 1
                run.headings.clear()
                run.widgets.clear()
                run.exceptions.clear()
                run.error_alerts.clear()
            return
        if kind == "navigation":
            self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
            if msg.navigation.page_script_hash:
                self._page_hash = msg.navigation.page_script_hash
            return
        if kind == "page_info_changed" or kind == "session_status_changed":
            return
        if kind == "session_event":
            ev = msg.session_event
            if ev.WhichOneof("type") == "script_compilation_exception" and run is not None:
                run.exceptions.append(str(ev.script_compilation_exception.message))
            return
        info: ElementInfo | None
        if kind == "ref_hash":
            info = _INFO_BY_HASH.get(msg.ref_hash)
        elif kind == "delta":
            info = _element_info(msg)
            if msg.hash and info is not None:
                _INFO_BY_HASH.setdefault(msg.hash, info)
            if msg.metadata.cacheable:
                self._cached.add(msg.hash)
        elif kind == "script_finished":
            if run is not None:
                run.ends.append(int(msg.script_finished))
            if run is not None and self._finished is not None and not self._finished.done():
                if msg.script_finished in FINISHED_OK:
                    run.status = msg.script_finished
                    run.seconds = time.perf_counter() - self._t0
                    self._finished.set_result(run)
                elif msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    run.status = msg.script_finished
                    run.exceptions.append("script compile error")
                    run.seconds = time.perf_counter() - self._t0
                    self._finished.set_result(run)
            return
        else:
            return
        if run is None or info is None:
            return
        if info.heading is not None:
            run.headings.append(info.heading)
        if info.exception is not None:
            run.exceptions.append(info.exception)
        if info.error_alert is not None:
            run.error_alerts.append(info.error_alert)
        if info.widget is not None:
            run.widgets[info.widget.id] = info.widget

    # -- sending ---------------------------------------------------------------------------------------------
    async def run(self, *, states: dict[str, WidgetState] | None = None, page: str | None = None,
                  timeout: float = 120.0) -> RunResult:
        """Ask for a rerun (with the widget values set so far plus ``states``, on the current page or the
        page titled ``page``) and wait until the script finished; triggers (buttons) are sent once."""
        if self.closed_reason:
            raise ClientError(self.closed_reason)
        page_hash = self._page_hash
        if page is not None:
            if page not in self.pages:
                raise ClientError(f"no page {page!r}; the navigation has {sorted(self.pages)}")
            page_hash = self.pages[page]
        sent = dict(self.states)
        for wid, st in (states or {}).items():
            sent[wid] = st
            if st.WhichOneof("value") not in ("trigger_value", "json_trigger_value", "string_trigger_value"):
                self.states[wid] = st
        client_state = ClientState(query_string="", page_script_hash=page_hash, page_name="",
                                   cached_message_hashes=sorted(self._cached))
        client_state.widget_states.widgets.extend(sent.values())
        msg = BackMsg(rerun_script=client_state)
        self._current = RunResult(seconds=0.0, status=-1)
        self._finished = asyncio.get_running_loop().create_future()
        self._t0 = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        try:
            return await asyncio.wait_for(asyncio.shield(self._finished), timeout)
        except TimeoutError as exc:
            seen = self._current
            detail = (f" ({seen.runs} runs started, finish statuses {seen.ends[-8:]}, {len(seen.ends)} in all)"
                      if seen is not None else "")
            raise ClientError(f"script did not finish in {timeout:.0f} s{detail}") from exc
        finally:
            self._current = None

    async def submit_form(self, button: str, values: dict[str, str], *, last: RunResult,
                          timeout: float = 120.0) -> RunResult:
        """Fill text inputs (by label) and press the form's submit button ``button``, as the browser does:
        the form's values and the submit trigger go in one rerun."""
        states = {}
        for label, value in values.items():
            w = last.widget(label=label, kind="text_input")
            states[w.id] = WidgetState(id=w.id, string_value=value)
        b = last.widget(label=button, kind="button")
        states[b.id] = WidgetState(id=b.id, trigger_value=True)
        return await self.run(states=states, timeout=timeout)

    @staticmethod
    def choose(widget: Widget, option: str) -> WidgetState:
        """The state of a selectbox/radio set to ``option`` (its label as shown)."""
        if option not in widget.options:
            raise ClientError(f"{widget.label!r} has no option {option!r}")
        return WidgetState(id=widget.id, string_value=option)

    @staticmethod
    def component_value(widget: Widget, value: dict[str, Any]) -> WidgetState:
        """The state a custom component (e.g. st_folium's map) reports back: a JSON value."""
        return WidgetState(id=widget.id, json_value=json.dumps(value))
