"""Browser tests: ``streamlit run app.py`` in a subprocess, Debian's chromium driven by Playwright.

The server runs on a free port against a private copy of the demo workspace (``workspace/demo.gpkg``, or the
file named by env ``GRIDS_E2E_WORKSPACE``) — completed with a published plan and the demo accounts when the
copy lacks them — else against a synthetic county of the same scale (tests/e2e/synth.py). Tests sign in with
:func:`sign_in` (demo accounts, password :data:`grids.auth.DEMO_PASSWORD`). Every request the browser makes
and every websocket frame it receives are recorded (``page.request_log``); tests assert that no request
leaves the app's host. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "workspace" / "demo.gpkg"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit not healthy at {url} after {timeout} s")


def _complete(path: Path) -> None:
    """Give a workspace copy what the app tests need: a published grid plan and the demo accounts."""
    from grids import plans
    from grids.auth import create_demo_accounts
    from grids.errors import ValidationError
    from grids.workspace import GpkgWorkspace

    ws = GpkgWorkspace(path)
    try:
        plans.resolve_plan(ws)
    except ValidationError:
        from grids.pipeline import prepare_plan

        prepare_plan(ws, name="main", publish=True, actor="e2e")
    if not ws.is_demo:
        ws.set_meta("demo", "1", actor="e2e")  # a test copy: demo accounts allowed
    if ws.count("accounts") == 0:
        create_demo_accounts(ws)


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory) -> Path:
    """A private copy of the demo workspace (or a synthetic county of the same scale), signed-in ready."""
    dst = tmp_path_factory.mktemp("e2e") / "county.gpkg"
    source = Path(os.environ.get("GRIDS_E2E_WORKSPACE") or DEMO)
    if source.exists():
        shutil.copy(source, dst)
        if source.with_name(source.name + ".cardkey").exists():  # its card key (grids.cardkey) beside the copy
            shutil.copy(source.with_name(source.name + ".cardkey"), dst.with_name(dst.name + ".cardkey"))
    else:
        from tests.e2e.synth import make_workspace

        make_workspace(dst)
    _complete(dst)
    return dst


class AppServer:
    """``streamlit run app.py`` (or ``script``) on a free port against ``workspace``; ``stop()`` ends it."""

    def __init__(self, workspace: Path, *, env: dict[str, str] | None = None,
                 script: Path = ROOT / "app.py") -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(tempfile.mkstemp(prefix="streamlit-", suffix=".log")[1])
        self._log = self.log_path.open("w")
        full_env = {**os.environ, "GRIDS_WORKSPACE": str(workspace), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script.name, "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1",
             "--server.enableStaticServing", "true", "--browser.gatherUsageStats", "false"],
            cwd=script.parent, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(self.url, self.proc)
        except Exception:
            self.stop()
            raise

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def app_server(e2e_workspace):
    server = AppServer(e2e_workspace)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def app_url(app_server) -> str:
    return app_server.url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class RequestLog:
    """Every URL the page requested (including iframes, scripts, styles, tiles) and every websocket frame
    the browser received (the app's data: element protos, Arrow tables, map component arguments)."""

    def __init__(self, app_url: str) -> None:
        self.app_host = urlparse(app_url).netloc
        self.urls: list[str] = []
        self.frames: list[bytes] = []

    def on_websocket(self, ws) -> None:
        ws.on("framereceived", lambda payload: self.frames.append(
            payload if isinstance(payload, bytes) else payload.encode("utf-8")))

    def received(self) -> bytes:
        """Everything received over websockets so far, concatenated."""
        return b"\n".join(self.frames)

    def foreign(self) -> list[str]:
        """Requests to any host other than the app's."""
        return [u for u in self.urls if urlparse(u).scheme in ("http", "https", "ws", "wss")
                and urlparse(u).netloc != self.app_host]


def _new_page(browser, app_url: str, **context_args):
    context = browser.new_context(locale="zh-CN", accept_downloads=True, **context_args)
    pg = context.new_page()
    log = RequestLog(app_url)
    context.on("request", lambda req: log.urls.append(req.url))
    pg.on("websocket", log.on_websocket)
    pg.request_log = log
    pg.app_url = app_url
    return context, pg


@pytest.fixture
def page(browser, app_url):
    """A fresh browser context (own profile) whose every request is recorded in ``page.request_log``."""
    context, pg = _new_page(browser, app_url, viewport={"width": 1440, "height": 1000})
    yield pg
    context.close()


@pytest.fixture
def phone(browser, app_url):
    """Like :func:`page`, on a phone-sized touch screen (390×844, iPhone 12–14 class)."""
    context, pg = _new_page(browser, app_url, viewport={"width": 390, "height": 844}, is_mobile=True,
                            has_touch=True, device_scale_factor=2)
    yield pg
    context.close()


def sign_in(page, username: str, password: str | None = None, *, timeout: float = 60_000) -> None:
    """Open the app, sign in with the login form and wait until the first page of the account is shown."""
    from grids.auth import DEMO_PASSWORD

    page.goto(page.app_url + "/", wait_until="domcontentloaded")
    page.get_by_label("用户名").fill(username, timeout=timeout)
    page.get_by_label("密码").fill(password or DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("button", name="退出登录").wait_for(state="attached", timeout=timeout)


def open_page(page, username: str, title: str, *, timeout: float = 60_000) -> None:
    """Sign in as ``username`` and open the page ``title`` from the navigation (waits for its heading)."""
    sign_in(page, username, timeout=timeout)
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).wait_for(timeout=timeout)


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def app_page(browser, app_url: str, **context_args):
    """``(context, page)`` like the :func:`page` fixture, for a test's own server at ``app_url``; close the
    context when done."""
    context_args.setdefault("viewport", {"width": 1440, "height": 1000})
    return _new_page(browser, app_url, **context_args)


def settle(page, timeout: float = 120.0) -> None:
    """Wait until Streamlit has no script run in progress and shows no spinner (a map being drawn), then a
    little more."""
    busy = '[data-test-script-state="running"], [data-testid="stStatusWidget"], [data-testid="stSpinner"]'
    page.wait_for_timeout(800)
    deadline = time.monotonic() + timeout
    while page.locator(busy).count() and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_timeout(1200)
