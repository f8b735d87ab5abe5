"""``python -m grids credit PATH sign|draw|repay …``: 签约发卡 and 用信 from the command line.

* ``sign HH_ID --amount N --user NAME`` — the branch manager of the household's branch, or an administrator
  (:func:`grids.credit_events.sign`); the card number comes from the environment variable ``GRIDS_CARD`` or a
  prompt (a line on standard input), never from the command line, which ``ps`` and the shell history would keep;
  only its keyed hash and last four digits are stored;
* ``draw --amount N [--by-id-number] [--branch ID] --user NAME`` and ``repay …`` — the customer is looked up by
  card number (``GRIDS_CARD``) or, with ``--by-id-number``, by ID number (``GRIDS_ID_NUMBER``), either from the
  environment or a prompt, like a teller at the counter (:func:`grids.credit_events.find_customer`, audited); a
  teller at its own branch (``--branch``, when given, must be it), or an administrator naming ``--branch``
  (:func:`grids.credit_events.draw`, :func:`~grids.credit_events.repay`). An administrator may instead name the
  household ``HH_ID`` and date the event (``--on``, within the last year); a teller may do neither.

Exit codes: 0 recorded; 1 refused (beyond the available amount, not granted or not signed, another branch, no
customer found) with the reason and fix on stderr; 2 usage, an unreadable workspace, or an identity error (no or
wrong password, no permission: as :func:`grids.commands._identity.sign_in`).

:func:`add_subcommands` adds exactly these three subparsers to the ``credit`` command's subparsers and
:data:`HANDLERS` maps each to its handler; the ``credit`` command of :mod:`grids.commands.credit` registers and
dispatches them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from grids import credit_events
from grids.auth import Account
from grids.commands._identity import add_user_argument, sign_in
from grids.errors import PermissionDeniedError, ValidationError
from grids.workspace import Workspace, open_workspace

HELP = "签约发卡、用信、还款 / sign a card, draw, repay"
CARD_ENV = "GRIDS_CARD"
"""Environment variable holding the card number (never an argument)."""
ID_ENV = "GRIDS_ID_NUMBER"
"""Environment variable holding the customer's ID number for a look-up (never an argument)."""


def read_secret(env: str, prompt: str) -> str:
    """``env``'s value, else a prompt on a terminal (not echoed), else one line of standard input.

    ValidationError when none of them gives a value.
    """
    value = os.environ.get(env)
    if value is None and sys.stdin is not None:
        value = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()
    value = (value or "").strip()
    if not value:
        raise ValidationError(f"没有{prompt.rstrip('：')}", fix=f"设置环境变量 {env}，或在终端中运行后按提示输入")
    return value


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sign``, ``draw`` and ``repay`` to the ``credit`` command's subparsers (``dest`` of the caller)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--amount", required=True, help="金额（元）")
    common.add_argument("--json", action="store_true", help="以 JSON 输出结果 / print JSON")
    add_user_argument(common)
    s = sub.add_parser("sign", parents=[common], help="签约发卡（网点主任、管理员）/ sign a card",
                       description=f"签约发卡：签约额度不超过授信额度；卡号取自环境变量 {CARD_ENV} 或提示输入"
                                   "（不放在命令行上），只保存密钥哈希和后四位。")
    s.add_argument("hh_id", metavar="HH_ID", help="户号")
    s.add_argument("--on", default=None, metavar="DATE", help="签约日期（默认现在；一年内，不能是将来）")
    for name, what in (("draw", "用信（在可用额度内）/ draw"), ("repay", "还款 / repay")):
        p = sub.add_parser(name, parents=[common], help=f"{what}（柜员在本网点；管理员指定网点）",
                           description=f"{what}：按卡号（环境变量 {CARD_ENV} 或提示输入）或身份证号（--by-id-number，"
                                       f"环境变量 {ID_ENV} 或提示输入）查询客户后办理；柜员只能记在本网点。")
        p.add_argument("hh_id", metavar="HH_ID", nargs="?", default=None,
                       help="户号（仅管理员；柜员须按卡号或身份证号查询）")
        p.add_argument("--by-id-number", action="store_true", help="按身份证号查询客户（默认按卡号）")
        p.add_argument("--branch", default=None, metavar="ID", help="办理网点编号（柜员：本网点，可省略）")
        p.add_argument("--on", default=None, metavar="DATE", help="办理日期（仅管理员补记；默认现在）")


class _IdentityError(Exception):
    """Signing in failed (its cause is the PermissionDeniedError of :func:`sign_in`): exit code 2."""


def _sign_in(ws: Workspace, user: str | None, permission: str) -> Account:
    try:
        return sign_in(ws, user, permission=permission)
    except PermissionDeniedError as exc:
        raise _IdentityError() from exc


def _print(result: dict[str, Any], *, as_json: bool, line: str) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(line)


def _sign(ws: Workspace, args: argparse.Namespace) -> int:
    account = _sign_in(ws, args.user, "sign_card")
    card = read_secret(CARD_ENV, "卡号：")
    r = credit_events.sign(ws, account, args.hh_id, args.amount, card, on=args.on)
    _print(r, as_json=args.json, line=f"已签约：户 {r['hh_id']}，签约额度 {r['amount']:,.2f} 元，卡号尾号 "
           f"{r['card_last4']}，网点 {r['branch_id'] or '—'}（流水 {r['event_id']}）")
    return 0


def _move(ws: Workspace, args: argparse.Namespace, fn: Callable[..., dict[str, Any]]) -> int:
    account = _sign_in(ws, args.user, "serve_credit")
    if args.hh_id:  # the administrator's correction path; a teller is refused by the library (no look-up)
        r = fn(ws, account, args.hh_id, amount=args.amount, branch_id=args.branch, on=args.on)
    elif args.by_id_number:
        view = credit_events.find_customer(ws, account, id_number=read_secret(ID_ENV, "身份证号："))
        if view is None:
            raise ValidationError("没有找到该身份证号的签约客户", fix="核对证件号码；未签约的户须先由网点主任签约发卡")
        r = fn(ws, account, view["hh_id"], amount=args.amount, branch_id=args.branch, on=args.on, found=True)
    else:
        r = fn(ws, account, card_no=read_secret(CARD_ENV, "卡号："), amount=args.amount, branch_id=args.branch,
               on=args.on)
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
    prints its reason and fix on stderr and returns 1; an identity error (:func:`sign_in`) returns 2."""
    ws = open_workspace(args.path)
    try:
        return HANDLERS[args.action](ws, args)
    except _IdentityError as exc:
        print(f"错误：{exc.__cause__}", file=sys.stderr)
        return 2
    except (ValidationError, PermissionDeniedError) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1

