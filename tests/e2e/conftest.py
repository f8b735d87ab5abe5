"""Browser tests: ``streamlit run app.py`` in a subprocess, Debian's chromium driven by Playwright.

The server runs on a free port against the demo workspace (``workspace/demo.gpkg``) when it exists, else
against a synthetic county of the same scale (tests/e2e/synth.py), copied so tests may change it. Every
request the browser makes is recorded; tests assert that none leaves the app's host.
Screenshots go to ``test-artifacts/``.
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


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory) -> Path:
    """A private copy of the demo workspace (or a synthetic county of the same scale)."""
    dst = tmp_path_factory.mktemp("e2e") / "county.gpkg"
    if DEMO.exists():
        shutil.copy(DEMO, dst)
    else:
        from tests.e2e.synth import make_workspace

        make_workspace(dst)
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
    """Every URL the page requested (including iframes, scripts, styles, tiles)."""

    def __init__(self, app_url: str) -> None:
        self.app_host = urlparse(app_url).netloc
        self.urls: list[str] = []

    def foreign(self) -> list[str]:
        """Requests to any host other than the app's."""
        return [u for u in self.urls if urlparse(u).scheme in ("http", "https", "ws", "wss")
                and urlparse(u).netloc != self.app_host]


@pytest.fixture
def page(browser, app_url):
    """A fresh browser context (own profile) whose every request is recorded in ``page.request_log``."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    pg = context.new_page()
    log = RequestLog(app_url)
    context.on("request", lambda req: log.urls.append(req.url))
    pg.request_log = log
    pg.app_url = app_url
    yield pg
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
