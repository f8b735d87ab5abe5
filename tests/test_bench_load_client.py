"""The load benchmark's protocol-level client (benchmarks/st_client.py) against the real app, one session.

Starts ``streamlit run app.py`` on a private copy of the demo workspace (see tests/e2e/conftest.py), signs in
through the login form over the websocket and checks the script finished with the page's title.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from st_client import StClient  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.e2e.conftest import DEMO, AppServer, _complete

    workspace = tmp_path_factory.mktemp("load") / "county.gpkg"
    if DEMO.exists():
        shutil.copy(DEMO, workspace)
    else:
        from tests.e2e.synth import make_workspace

        make_workspace(workspace)
    _complete(workspace)
    app = AppServer(workspace)
    yield app, workspace
    app.stop()


def _customer_manager(workspace: Path) -> str:
    from grids.auth import list_accounts
    from grids.workspace import GpkgWorkspace

    accounts = list_accounts(GpkgWorkspace(workspace))
    return str(accounts[accounts["role"] == "customer_manager"]["username"].sort_values().iloc[0])


def test_client_signs_in_through_the_form_and_gets_the_finished_page(server):
    from grids.auth import DEMO_PASSWORD

    app, workspace = server
    user = _customer_manager(workspace)

    async def session():
        client = await StClient.connect(app.url)
        try:
            login = await client.run(timeout=120)
            wrong = await client.submit_form("登录", {"用户名": user, "密码": "not-the-password"}, last=login,
                                             timeout=120)
            signed = await client.submit_form("登录", {"用户名": user, "密码": DEMO_PASSWORD}, last=wrong,
                                              timeout=120)
            mode = signed.widget(kind="radio", key="workbench.start_mode")
            again = await client.run(states={mode.id: StClient.choose(mode, mode.options[1])}, timeout=120)
            return login, wrong, signed, again, dict(client.pages)
        finally:
            await client.close()

    # in a thread of its own: the browser tests' Playwright keeps an event loop running in this one
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        login, wrong, signed, again, pages = pool.submit(asyncio.run, session()).result(timeout=600)
    assert login.status == ForwardMsg.FINISHED_SUCCESSFULLY
    assert "网格通" in login.headings
    assert login.widget(label="用户名", kind="text_input").form_id
    # a wrong password: the form again, with the refusal, and no page
    assert wrong.error_alerts and "走访工作台" not in wrong.headings
    # the right one: the sign-in reruns the app (st.rerun) and the first page of a 客户经理 arrives
    assert signed.status == ForwardMsg.FINISHED_SUCCESSFULLY
    assert signed.runs == 2
    assert "走访工作台" in signed.headings
    assert list(pages) == ["走访工作台"]
    assert not signed.exceptions and not signed.error_alerts
    # an interaction (the 起点 radio) reruns the page
    assert again.status == ForwardMsg.FINISHED_SUCCESSFULLY
    assert "走访工作台" in again.headings and not again.exceptions
    assert again.seconds > 0
