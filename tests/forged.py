"""Forged widget state: a small harness to send what a tampered browser could send, and check the server refused.

A modified client can put anything into the widget state it sends over the websocket: edits of disabled
columns, rows of other branches, values outside a select box's options, clicks on disabled buttons. With
AppTest the same is done by writing ``at.session_state[...]`` before a run. Each :class:`Forgery` is one page,
one account and the steps of one attack; :func:`run_forgery` replays it and returns what to assert on.

Pages and roles added later join with one line in :data:`FORGERIES` (and their own steps function).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Selectbox

from grids.auth import Account
from grids.workspace import GpkgWorkspace
from ui.auth import session_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")

B1 = Account("b1", "branch_manager", "林东主任", branch_id="B1")
S1 = Account("s1", "customer_manager", "张三", branch_id="B1", staff_id="S1")
PLANNER = Account("planner", "planner", "规划员")
ADMIN = Account("admin", "admin", "管理员")
CC = Account("cc01", "credit_committee", "联社贷审会")


def forged_workspace(path: Path) -> Path:
    """The tiny workspace of tests/test_app.py (G1, G2 of branch B1; G3 of B2) with household counts on the
    grids, a second customer manager S3 at B1, and G2 given to S1 (so B1 has something to balance)."""
    from grids import plans
    from tests.test_app import tiny_workspace

    tiny_workspace(path)
    ws = GpkgWorkspace(path)
    with ws.transaction(actor="test", action="测试数据") as tx:
        tx.append("staff", pd.DataFrame({"staff_id": ["S3"], "name": ["王五"], "branch_id": ["B1"],
                                         "role": ["客户经理"]}))
    grids = plans.read_grids(ws, "P1").assign(households=[3, 3, 3], staff_id=["S1", "S1", "S2"])
    plans.update_grids(ws, "P1", grids, actor="test", action="测试数据")
    return path


def open_page(page: str, account: Account) -> AppTest:
    """``page`` of the app, signed in as ``account`` (the workspace comes from env GRIDS_WORKSPACE)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth.session"] = session_for(account)
    at.session_state["map.basemap"] = "offline"  # the sidebar's widget (AppTest runs a switched-to page alone)
    at.run()
    at.switch_page(page)
    return at.run()


def editor_key(at: AppTest, prefix: str) -> str:
    """The widget key of the data editor whose key starts with ``prefix``."""
    keys = [e.key for e in at.data_editor if e.key and e.key.startswith(prefix)]
    assert keys, f"no data editor with key {prefix}… on the page"
    return keys[0]


def forge_editor(at: AppTest, prefix: str, *, edited_rows: dict | None = None, added_rows: list | None = None,
                 deleted_rows: list | None = None) -> AppTest:
    """Write a data editor's widget state as a tampered client would, and run."""
    at.session_state[editor_key(at, prefix)] = {"edited_rows": edited_rows or {}, "added_rows": added_rows or [],
                                               "deleted_rows": deleted_rows or []}
    return at.run()


class _ForgedSelectbox(Selectbox):
    """A select box that sends a raw string of our choosing (Streamlit returns a string that is not among the
    formatted options as the value itself)."""

    forged: str = ""

    @property
    def _widget_state(self) -> WidgetState:
        ws = WidgetState()
        ws.id = self.id
        ws.string_value = self.forged
        return ws


def forge_select(at: AppTest, key: str, raw: str) -> AppTest:
    """Make the select box ``key`` send ``raw`` on the next run (not run yet: click something with it)."""
    node = at.selectbox(key=key)
    node.__class__ = _ForgedSelectbox
    node.forged = raw
    return at


def click(at: AppTest, key: str) -> AppTest:
    """Click the button with widget key ``key`` even when the page drew it disabled (a forged click)."""
    button = at.button(key=key)
    button.proto.disabled = False
    return button.click().run()


def stored(path: Path) -> dict[str, pd.DataFrame]:
    """The layers a write could change, without bookkeeping columns: compare before/after a forgery."""
    ws = GpkgWorkspace(path)
    out = {}
    for layer in ("grids", "households", "visits", "surveys", "rating_decisions"):
        if layer not in ws.layers():
            continue
        frame = pd.DataFrame(ws.read(layer)).drop(columns=["geometry"], errors="ignore")
        out[layer] = frame.sort_values(frame.columns[0], kind="stable").reset_index(drop=True)
    return out


def refusals(path: Path) -> pd.DataFrame:
    """Audit rows of refused intents (action “拒绝：…”)."""
    log = GpkgWorkspace(path).read("audit")
    return log[log["action"].astype(str).str.startswith("拒绝：")].reset_index(drop=True)


@dataclass(frozen=True)
class Forgery:
    """One attack: sign in as ``account``, open ``page``, then ``steps`` (which forge state and click)."""

    name: str
    page: str
    account: Account
    steps: Callable[[AppTest, Path], AppTest | tuple[AppTest, dict[str, pd.DataFrame]]]
    expect: str  # a fragment of the error the page must show


@dataclass
class Outcome:
    at: AppTest
    before: dict[str, pd.DataFrame]
    after: dict[str, pd.DataFrame]
    refused: pd.DataFrame

    @property
    def errors(self) -> list[str]:
        return [e.value for e in self.at.error]

    def unchanged(self) -> bool:
        return all(self.before[k].equals(self.after[k]) for k in self.before)

    def detail(self) -> list[Any]:
        return json.loads(self.refused["detail"].iloc[-1]) if len(self.refused) else []


def run_forgery(f: Forgery, path: Path) -> Outcome:
    """Replay ``f`` on the workspace at ``path``; what the page showed, the data before/after, the refusals."""
    at = open_page(f.page, f.account)
    assert not at.exception, at.exception
    n = len(refusals(path))
    before = stored(path)
    done = f.steps(at, path)
    if isinstance(done, tuple):  # the steps changed the data on purpose (another user): compare from there
        at, before = done
    else:
        at = done
    return Outcome(at, before, stored(path), refusals(path).iloc[n:].reset_index(drop=True))


# -- steps of each attack ---------------------------------------------------------------------------------


def editor_row(at: AppTest, prefix: str, id_column: str, value: str) -> int:
    """Position of the row ``id_column == value`` in the data editor ``prefix…`` as the page drew it."""
    table = next(e for e in at.data_editor if e.key and e.key.startswith(prefix)).value
    return list(table[id_column].astype(str)).index(value)


def _staff_row(at: AppTest, grid_id: str) -> int:
    return editor_row(at, "staffing.editor", "grid_id", grid_id)


def staffing_other_branch_staff(at: AppTest, _path: Path) -> AppTest:
    """b1 gives its grid G1 to S2, a customer manager of B2 (not among the select box's options)."""
    forge_editor(at, "staffing.editor", edited_rows={_staff_row(at, "G1"): {"staff_id": "S2"}})
    return click(at, "staffing.save_table")


def staffing_disabled_column(at: AppTest, _path: Path) -> AppTest:
    """b1 edits the disabled grid_id column: row of G1 relabelled G3 (B2's grid), staff S3."""
    forge_editor(at, "staffing.editor", edited_rows={_staff_row(at, "G1"): {"grid_id": "G3", "staff_id": "S3"}})
    return click(at, "staffing.save_table")


def staffing_households_column(at: AppTest, _path: Path) -> AppTest:
    """b1 edits the disabled households column."""
    forge_editor(at, "staffing.editor", edited_rows={_staff_row(at, "G1"): {"households": 999}})
    return click(at, "staffing.save_table")


def staffing_added_row(at: AppTest, _path: Path) -> AppTest:
    """b1 adds a row naming B2's grid G3 with staff S1 (the editor allows no new rows)."""
    forge_editor(at, "staffing.editor", added_rows=[{"grid_id": "G3", "staff_id": "S1", "locked": False}])
    return click(at, "staffing.save_table")


def staffing_reassign_select(at: AppTest, _path: Path) -> AppTest:
    """b1 selects G1 and sends S2 (B2's staff) as the 改派给 select box's value."""
    at.session_state["staffing.selected"] = "G1"
    at.run()
    forge_select(at, "staffing.reassign_to", "S2")
    return click(at, "staffing.reassign")


def staffing_stale_preview(at: AppTest, path: Path) -> AppTest:
    """b1 computes a balance; meanwhile admin reassigns a grid the preview moves; b1 applies the preview."""
    from grids.scope import ScopedWorkspace

    next(b for b in at.button if b.label == "计算均衡方案").click().run()
    moved = at.session_state["staffing.preview"].changed
    assert moved, "the preview moves nothing"
    ScopedWorkspace(GpkgWorkspace(path), ADMIN).assign_grids({moved[0]: {"locked": True}}, seen={moved[0]: 1})
    baseline = stored(path)
    at.run()
    return click(at, "staffing.apply_preview"), baseline


def staffing_newcomer_taken_id(at: AppTest, _path: Path) -> AppTest:
    """b1 adds a newcomer under S2's id (a customer manager of B2): the library refuses the taken id."""
    at.radio(key="staffing.lifecycle_mode").set_value("新增客户经理").run()
    at.text_input(key="staffing.new_id").input("S2")
    at.text_input(key="staffing.new_name").input("冒名").run()
    return click(at, "staffing.preview_add")


def staffing_stale_leave(at: AppTest, path: Path) -> tuple[AppTest, dict[str, pd.DataFrame]]:
    """b1 previews S3's leave; meanwhile admin locks a grid of B1; b1 confirms the preview it saw."""
    from grids.scope import ScopedWorkspace

    at.radio(key="staffing.lifecycle_mode").set_value("登记离职").run()
    at.selectbox(key="staffing.leaver").set_value("S3").run()
    click(at, "staffing.preview_leave")
    assert at.session_state["staffing.change"], [e.value for e in at.error]
    ScopedWorkspace(GpkgWorkspace(path), ADMIN).assign_grids({"G1": {"locked": True}}, seen={"G1": 1})
    baseline = stored(path)
    return click(at, "staffing.confirm_change"), baseline


def workbench_stale_visit(at: AppTest, path: Path) -> AppTest | tuple[AppTest, dict[str, pd.DataFrame]]:
    """s1 has H4 on screen; admin archives H4 meanwhile; s1 sends the form for H4 (old version)."""
    from grids.scope import ScopedWorkspace

    ScopedWorkspace(GpkgWorkspace(path), ADMIN).record_visit("H4", visited_on="2024-03-06", outcome="已建档")
    baseline = stored(path)
    next(s for s in at.selectbox if s.label == "农户（离起点最近的在前）").set_value("H4")
    next(s for s in at.selectbox if s.label == "走访结果").set_value("补充资料")
    next(b for b in at.button if b.label == "记录走访").click()
    return at.run(), baseline


def _rating_row(at: AppTest, hh_id: str) -> int:
    return editor_row(at, "rating.editor", "hh_id", hh_id)


def rating_other_village(at: AppTest, _path: Path) -> AppTest:
    """b1 rates 甲村 and relabels a row's hh_id to H6 (丙村, branch B2) with a grade and an amount."""
    forge_editor(at, "rating.editor", edited_rows={_rating_row(at, "H1"): {"hh_id": "H6", "grade": "良好",
                                                                          "granted_amount": 60000}})
    return click(at, "rating.save")


def rating_added_row(at: AppTest, _path: Path) -> AppTest:
    """b1 adds a row for H6 (branch B2) to 甲村's rating table."""
    forge_editor(at, "rating.editor", added_rows=[{"hh_id": "H6", "grade": "良好", "granted_amount": 60000}])
    return click(at, "rating.save")


def rating_over_limit(at: AppTest, _path: Path) -> AppTest:
    """b1 grants H1 900,000 yuan, far above 福农卡's band (the editor's number column has no maximum)."""
    forge_editor(at, "rating.editor", edited_rows={_rating_row(at, "H1"): {"grade": "优秀",
                                                                          "granted_amount": 900000}})
    return click(at, "rating.save")


def rating_disabled_product(at: AppTest, _path: Path) -> AppTest:
    """b1 edits the disabled product column of H1."""
    forge_editor(at, "rating.editor", edited_rows={_rating_row(at, "H1"): {"product": "福商卡", "grade": "良好",
                                                                          "granted_amount": 50000}})
    return click(at, "rating.save")


def planning_stale_edit(at: AppTest, path: Path) -> tuple[AppTest, dict[str, pd.DataFrame]]:
    """The planner merges G1 and G2 in a draft; meanwhile admin reassigns G1 in that draft; the planner saves."""
    from grids.scope import ScopedWorkspace

    ws = GpkgWorkspace(path)
    draft = at.session_state["planning.plan_id"]
    at.multiselect[0].set_value(["G1", "G2"]).run()
    next(b for b in at.button if b.label == "合并所选网格").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ScopedWorkspace(ws, ADMIN, plan=draft).assign_grids({"G1": {"staff_id": "S3"}}, seen={"G1": 1})
    baseline = stored(path)
    return click(at, "planning.save"), baseline


def with_draft(path: Path) -> None:
    """A draft “调整” copied from the published plan (the planning page edits the first draft)."""
    from grids.scope import ScopedWorkspace

    ScopedWorkspace(GpkgWorkspace(path), PLANNER).new_draft("P1", name="调整")


def workbench_stale_survey(at: AppTest, path: Path) -> tuple[AppTest, dict[str, pd.DataFrame]]:
    """s1 has H4's survey form on screen; admin saves a survey of H4 meanwhile; s1 sends the form (old version)."""
    from grids.scope import ScopedWorkspace

    at.session_state["workbench.survey_open"] = True  # s1 opens the form (it is built only while open)
    at.run()
    ScopedWorkspace(GpkgWorkspace(path), ADMIN).record_survey("H4", {"surveyed_at": "2024-03-06", "outcome": "未遇"})
    baseline = stored(path)
    at.selectbox(key="workbench.survey_hh").set_value("H4")
    at.selectbox(key="workbench.survey.outcome").set_value("已迁出")
    next(b for b in at.button if b.label == "保存采集").click()
    return at.run(), baseline


# -- 柜员用信 (pages/teller.py) ------------------------------------------------------------------------------

T2 = Account("t2", "teller", "隆昌柜员", branch_id="B2")
TELLER_CARD = "6228480011112222333"


def _signed_h0(path: Path) -> None:
    """H0 (B1, granted 50,000) signs 50,000 on :data:`TELLER_CARD` (the administrator, as another user)."""
    from grids import credit_events

    credit_events.sign(GpkgWorkspace(path), ADMIN, "H0", 50_000, TELLER_CARD)


def _teller_submit(at: AppTest, *, amount: float) -> AppTest:
    at.number_input(key="teller.amount").set_value(amount)
    at.checkbox(key="teller.sure").check()
    return at.button(key="teller.submit").click().run()


def teller_forged_household(at: AppTest, path: Path) -> tuple[AppTest, dict[str, pd.DataFrame]]:
    """t2 (B2) never looked H0 up, but its client sends a view naming H0 (a signed customer of B1)."""
    _signed_h0(path)
    before = stored(path)
    at.session_state["teller.found"] = {"hh_id": "H0", "name": "户*", "id_no": "*", "card_last4": "2333",
                                        "granted_amount": 50_000.0, "signed_amount": 50_000.0, "balance": 0.0,
                                        "available": 50_000.0}
    at.run()
    return _teller_submit(at, amount=100), before


def teller_sign_other_branch(at: AppTest, _path: Path) -> AppTest:
    """b1 sends the 签约发卡 form for H6, a granted household of B2."""
    at.text_input(key="teller.sign_hh").input("H6")
    at.number_input(key="teller.sign_amount").set_value(60_000)
    at.text_input(key="teller.sign_card").input(TELLER_CARD)
    return at.button(key="teller.sign_submit").click().run()


# -- 评定会 (rating sessions) and 贷审会审批 ----------------------------------------------------------------------

SESSION_PANEL = ["王村长", "李代表", "周代表", "赵主任", "孙经理"]


def _session_panel(at: AppTest) -> AppTest:
    """Fill 甲村's panel form (村组干部, 村民代表 ×2, 信用社主任, 客户经理) as the user would."""
    key = next(e.key for e in at.data_editor if e.key and e.key.startswith("session.panel."))
    at.session_state[key] = {"edited_rows": {i: {"name": n} for i, n in enumerate(SESSION_PANEL)},
                             "added_rows": [], "deleted_rows": []}
    return at.run()


def session_other_household(at: AppTest, _path: Path) -> AppTest:
    """b1 rewrites the read-only 户号 of 甲村's first row to H6 (丙村, branch B2) and votes it through."""
    at = _session_panel(at)
    forge_editor(at, "session.editor", edited_rows={0: {"hh_id": "H6", "grade": "良好", "amount": 60000,
                                                        **{n: "同意" for n in SESSION_PANEL}}})
    return click(at, "session.save")


def session_added_row(at: AppTest, _path: Path) -> AppTest:
    """b1 adds a row for H6 (branch B2) to 甲村's vote table."""
    at = _session_panel(at)
    forge_editor(at, "session.editor", added_rows=[{"hh_id": "H6", "grade": "良好", "amount": 60000,
                                                   **{n: "同意" for n in SESSION_PANEL}}])
    return click(at, "session.save")


def pending_decisions(path: Path, n: int = 2) -> list[str]:
    """``n`` decisions of 甲村 waiting for the committee (B1's authority lowered to 50,000 by the admin)."""
    from grids import credit_rules
    from grids.scope import ScopedWorkspace

    ws = GpkgWorkspace(path)
    credit_rules.set_branch_rule(ws, account=ADMIN, branch_id="B1", approval_limit=50000)
    panel = [{"name": x, "role": r} for x, r in zip(SESSION_PANEL, ("村组干部", "村民代表", "村民代表", "信用社主任",
                                                                     "客户经理"), strict=True)]
    decisions = pd.DataFrame({"hh_id": ["H0", "H1", "H2"][:n], "grade": "良好", "amount": 60000.0,
                              "votes": [dict.fromkeys(SESSION_PANEL, "同意")] * n})
    result = ScopedWorkspace(ws, B1).record_rating_session(village_code="150422100201", held_on="2026-03-01",
                                                           place="甲村村委会", panel=panel, decisions=decisions)
    return result.decisions["decision_id"].tolist()


def review_decided_id(at: AppTest, path: Path) -> tuple[AppTest, dict[str, pd.DataFrame]]:
    """cc01 approves a decision of its queue that another committee member approved meanwhile (the decision id
    sent is of a decision in another state)."""
    from grids import sessions

    first, _second = pending_decisions(path)
    at.run()  # the queue now shows both
    sessions.approve(GpkgWorkspace(path), first, Account("cc02", "credit_committee", "贷审会委员"))
    before = stored(path)
    at.selectbox(key="review.pick").set_value(first)
    return click(at, "review.approve"), before
