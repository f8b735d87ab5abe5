"""``python -m grids credit PATH ACTION … --user NAME``: 集中授信 from the command line.

* ``rate --session FILE.xlsx`` — record a village's rating session from its workbook (sheets 评定小组 and
  评定结果, :mod:`grids.session_workbook`): the panel's votes decide; amounts within the branch's authority are
  granted, larger ones wait for the credit committee (``rate``: a branch manager for its own villages, admin);
* ``approve ID [--note TEXT]`` / ``return ID --reason TEXT`` — the credit committee decides a waiting decision
  (``review_credit``: ``cc01``);
* ``queue [--json]`` — the decisions waiting for the committee (the committee: all; a branch manager: its own);
* ``sign``, ``draw``, ``repay`` — 签约发卡 and 用信/还款 (:mod:`grids.commands.credit_events`).

Every action signs in (``--user``, the identity rule of :mod:`grids.commands._identity`): a wrong password or a
role without the permission exits 2. Exit code 0 done; 1 refused (a rule of :mod:`grids.sessions`: panel, votes,
scope, product rules, a decision already decided), with the reason and the fix on stderr; 2 usage.

Actions are a dict (:data:`ACTIONS`, :data:`PERMISSION`): another module adds one with one line each.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from grids.commands import credit_events
from grids.commands._identity import add_user_argument, sign_in
from grids.errors import PermissionDeniedError, StaleEditError, ValidationError
from grids.scope import ScopedWorkspace
from grids.text import plain
from grids.workspace import open_workspace


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``credit`` and its actions to the command line."""
    p = sub.add_parser("credit", help="集中授信、签约与用信 / rating sessions, committee review, signing, drawdown",
                       description="集中授信：按评定表记录评定会（评定小组表决，超过网点审批权限的上报联社贷审会），"
                                   "贷审会审批通过或退回，查看待审批队列；签约发卡；柜员办理用信、还款。")
    p.add_argument("path", help="工作区文件 / workspace .gpkg")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="以 JSON 输出 / print JSON")
    add_user_argument(common)
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = csub.add_parser("rate", parents=[common], help="按评定表记录评定会 / record a rating session")
    r.add_argument("--session", required=True, metavar="FILE.xlsx", help="评定表（评定小组、评定结果两张表）")
    a = csub.add_parser("approve", parents=[common], help="贷审会审批通过 / approve a waiting decision")
    a.add_argument("decision_id", metavar="ID", help="评定决定编号（见 queue）")
    a.add_argument("--note", default="", help="审批意见（可不填）")
    t = csub.add_parser("return", parents=[common], help="贷审会退回 / return a waiting decision")
    t.add_argument("decision_id", metavar="ID", help="评定决定编号（见 queue）")
    t.add_argument("--reason", required=True, help="退回理由")
    csub.add_parser("queue", parents=[common], help="待贷审会审批的队列 / the review queue")
    credit_events.add_subcommands(csub)  # sign, draw, repay


def _rate(sw: ScopedWorkspace, args: argparse.Namespace) -> dict[str, Any]:
    from grids.session_workbook import read_session_workbook

    book = read_session_workbook(args.session)
    result = sw.record_rating_session(village_code=book.village_code, held_on=book.held_on, place=book.place,
                                      panel=book.panel, decisions=book.decisions, minutes=book.minutes)
    d = result.decisions
    return {"message": result.summary(), "session_id": result.session_id,
            "decisions": [{k: _plain(v) for k, v in rec.items() if k in _SHOWN}
                          for rec in d.to_dict("records")]}


def _approve(sw: ScopedWorkspace, args: argparse.Namespace) -> dict[str, Any]:
    entry = sw.approve_decision(args.decision_id, note=args.note)
    return {"message": f"已审批通过 {plain(args.decision_id, limit=80)}：农户 {entry['hh_id']} 授信 "
                       f"{entry['amount']:,.0f} 元", **entry}


def _return(sw: ScopedWorkspace, args: argparse.Namespace) -> dict[str, Any]:
    entry = sw.return_decision(args.decision_id, note=args.reason)
    return {"message": f"已退回 {plain(args.decision_id, limit=80)}（农户 {entry['hh_id']}）", **entry}


_SHOWN = ("decision_id", "session_id", "hh_id", "head_name", "village_code", "held_on", "place", "product", "grade",
          "amount", "guarantee", "votes_for", "votes_against", "votes_abstain", "votes", "outcome", "branch_id",
          "approval_limit", "minutes")


def _plain(v: Any) -> Any:
    import pandas as pd

    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return f"{v:%Y-%m-%d}"
    return v.item() if hasattr(v, "item") else v


def _queue(sw: ScopedWorkspace, args: argparse.Namespace) -> dict[str, Any]:
    q = sw.review_queue()
    rows = [{k: _plain(v) for k, v in rec.items() if k in _SHOWN} for rec in q.to_dict("records")]
    lines = [f"待贷审会审批 {len(rows)} 户"]
    for r in rows:
        lines.append(f"{r['decision_id']}  网点 {r['branch_id']}  村 {r['village_code']}  户 {plain(r['hh_id'])}"
                     f"（{plain(r['head_name'] or '')}）  {r['product']} {r['grade'] or ''} {r['amount']:,.0f} 元"
                     f"（审批权限 {r['approval_limit']:,.0f} 元）  表决 同意 {r['votes_for']} / 反对 "
                     f"{r['votes_against']} / 弃权 {r['votes_abstain']}")
    return {"message": "\n".join(lines), "queue": rows}


ACTIONS: dict[str, Callable[[ScopedWorkspace, argparse.Namespace], dict[str, Any]]] = {
    "rate": _rate, "approve": _approve, "return": _return, "queue": _queue}
"""Action name → its function; each returns ``message`` (printed) and the JSON fields."""
PERMISSION: dict[str, str | None] = {"rate": "rate", "approve": "review_credit", "return": "review_credit",
                                     "queue": None}
"""The permission each action signs in with (``None``: any account; the library scopes what it reads)."""


def run(args: argparse.Namespace) -> int:
    """Run one ``credit`` action; see the module docstring for the exit codes."""
    if args.action in credit_events.HANDLERS:
        return credit_events.handle(args)
    ws = open_workspace(args.path)
    account = sign_in(ws, args.user, permission=PERMISSION.get(args.action))
    sw = ScopedWorkspace(ws, account, require_plan=args.action == "rate")
    try:
        out = ACTIONS[args.action](sw, args)
    except (ValidationError, PermissionDeniedError, StaleEditError) as exc:
        print(f"已拒绝：{exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v for k, v in out.items() if k != "message"}, ensure_ascii=False, indent=2,
                         default=str))
    else:
        print(out["message"])
    return 0
