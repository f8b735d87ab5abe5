"""``python -m grids credit PATH sign|draw|repay …``: 签约发卡 and 用信 from the command line.

* ``sign HH_ID --amount N --card NO --user NAME`` — the branch manager of the household's branch, or an
  administrator (:func:`grids.credit_events.sign`); the card number is kept only as a keyed hash and its last four
  digits;
* ``draw HH_ID --amount N [--branch ID] --user NAME`` and ``repay …`` — a teller at its own branch (``--branch``,
  when given, must be it), or an administrator naming ``--branch`` (:func:`grids.credit_events.draw`,
  :func:`~grids.credit_events.repay`).

Exit codes: 0 recorded; 1 refused (beyond the available amount, not granted or not signed, another branch, no
permission) with the reason and fix on stderr; 2 usage or an unreadable workspace.

:func:`add_subcommands` adds exactly these three subparsers to the ``credit`` command's subparsers and
:data:`HANDLERS` maps each to its handler, so the ``credit`` command of :mod:`grids.commands.credit` can take them
over; until it exists, :func:`add_parser` and :func:`run` register a ``credit`` command of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from grids import credit_events
from grids.commands._identity import add_user_argument, sign_in
from grids.errors import PermissionDeniedError, ValidationError
from grids.workspace import Workspace, open_workspace

HELP = "签约发卡、用信、还款 / sign a card, draw, repay"


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Add ``sign``, ``draw`` and ``repay`` to the ``credit`` command's subparsers (``dest`` of the caller)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("hh_id", metavar="HH_ID", help="户号")
    common.add_argument("--amount", required=True, type=float, help="金额（元）")
    common.add_argument("--json", action="store_true", help="以 JSON 输出结果 / print JSON")
    add_user_argument(common)
    s = sub.add_parser("sign", parents=[common], help="签约发卡（网点主任、管理员）/ sign a card",
                       description="签约发卡：签约额度不超过授信额度；卡号只保存密钥哈希和后四位。")
    s.add_argument("--card", required=True, metavar="NO", help="卡号（12–19 位数字）")
    s.add_argument("--on", default=None, metavar="DATE", help="签约日期（默认现在）")
    for name, what in (("draw", "用信（在可用额度内）/ draw"), ("repay", "还款 / repay")):
        p = sub.add_parser(name, parents=[common], help=f"{what}（柜员在本网点；管理员指定网点）",
                           description=f"{what}：柜员只能记在本网点（--branch 可省略，给出时必须是本网点）。")
        p.add_argument("--branch", default=None, metavar="ID", help="办理网点编号（柜员：本网点，可省略）")
        p.add_argument("--on", default=None, metavar="DATE", help="办理时间（默认现在）")


def _print(result: dict, *, as_json: bool, line: str) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(line)


def _sign(ws: Workspace, args: argparse.Namespace) -> int:
    account = sign_in(ws, args.user, permission="sign_card")
    r = credit_events.sign(ws, account, args.hh_id, args.amount, args.card, on=args.on)
    _print(r, as_json=args.json, line=f"已签约：户 {r['hh_id']}，签约额度 {r['amount']:,.2f} 元，卡号尾号 "
           f"{r['card_last4']}，网点 {r['branch_id'] or '—'}（流水 {r['event_id']}）")
    return 0


def _move(ws: Workspace, args: argparse.Namespace, fn: Callable[..., dict]) -> int:
    account = sign_in(ws, args.user, permission="serve_credit")
    r = fn(ws, account, args.hh_id, amount=args.amount, branch_id=args.branch, on=args.on)
    _print(r, as_json=args.json, line=f"已{r['kind']}：户 {r['hh_id']} {r['amount']:,.2f} 元，网点 {r['branch_id']}；"
           f"用信余额 {r['balance']:,.2f} 元，可用余额 {r['available']:,.2f} 元（流水 {r['event_id']}）")
    return 0


HANDLERS: dict[str, Callable[[Workspace, argparse.Namespace], int]] = {
    "sign": _sign,
    "draw": lambda ws, args: _move(ws, args, credit_events.draw),
    "repay": lambda ws, args: _move(ws, args, credit_events.repay),
}
"""Subcommand → handler ``(workspace, args) -> exit code``; refusals raise (see :func:`handle`)."""


def handle(args: argparse.Namespace) -> int:
    """Run ``args.action`` (one of :data:`HANDLERS`) on ``args.path``: a refusal (validation or permission)
    prints its reason and fix on stderr and returns 1."""
    ws = open_workspace(args.path)
    try:
        return HANDLERS[args.action](ws, args)
    except (ValidationError, PermissionDeniedError) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1


# -- the temporary top-level ``credit`` command (until grids/commands/credit.py takes these over) ---------------

def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``credit PATH sign|draw|repay …``."""
    p = sub.add_parser("credit", help=HELP, description=HELP)
    p.add_argument("path", help="工作区文件 / workspace .gpkg")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_subcommands(acts)


def run(args: argparse.Namespace) -> int:
    """Entry point of the ``credit`` command (see :func:`handle`)."""
    return handle(args)
