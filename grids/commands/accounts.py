"""``python -m grids accounts add|disable|enable|unlock|passwd|list PATH …``: the workspace's accounts.

Every subcommand but ``list`` changes accounts and needs ``--user ADMIN`` (an administrator; password from
``GRIDS_PASSWORD`` or a prompt; see :mod:`grids.commands._identity`). Two exceptions:

- **The first administrator.** ``accounts add PATH NAME --role admin`` runs without ``--user`` while the
  workspace has no enabled administrator (a fresh real workspace has no accounts at all). It is audited under
  the actor ``cli:first-admin``.
- **A locked administrator unlocking itself.** ``accounts unlock PATH NAME --user ADMIN`` accepts ADMIN's right
  password even while ADMIN is locked after wrong passwords (only this subcommand; wrong passwords still
  count). Whoever can run the command line on the workspace can read the workspace anyway, so this opens
  nothing new, and an installation with a single administrator is never locked out of itself.

The new password of ``add`` and ``passwd`` comes from ``GRIDS_NEW_PASSWORD`` or a second prompt (typed twice).
Exit codes: 0 done; 1 done but nothing to do (``unlock`` of an account that was not locked); 2 could not run
(usage, no permission, unknown account, weak password).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from grids import auth
from grids.commands._identity import add_user_argument, read_password, sign_in
from grids.errors import PermissionDeniedError, ValidationError
from grids.model import ROLE_NAMES, ROLES
from grids.workspace import Workspace, open_workspace

NEW_PASSWORD_ENV = "GRIDS_NEW_PASSWORD"
FIRST_ADMIN_ACTOR = "cli:first-admin"
def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("accounts", help="账号：新建、停用、启用、解锁、改密码、列表 / manage accounts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ops = p.add_subparsers(dest="op", required=True, metavar="OP")
    add = ops.add_parser("add", help="新建账号（工作区还没有管理员时，--role admin 可不带 --user）")
    _path_and_name(add)
    add.add_argument("--role", required=True, choices=ROLES, help="角色 / role")
    add.add_argument("--display-name", default="", help="姓名 / display name")
    add.add_argument("--branch", help="网点编号（网点主任、客户经理）/ branch id")
    add.add_argument("--staff", help="员工编号（客户经理）/ staff id")
    add_user_argument(add, required=False)
    for op, text in (("disable", "停用账号"), ("enable", "启用账号"), ("unlock", "解除连续密码错误造成的锁定"),
                     ("passwd", f"重置密码（新密码取自环境变量 {NEW_PASSWORD_ENV} 或提示输入两次）")):
        q = ops.add_parser(op, help=text)
        _path_and_name(q)
        add_user_argument(q)
    lst = ops.add_parser("list", help="列出账号（只读，不需要 --user）")
    lst.add_argument("path", help="工作区文件或 PostGIS 地址 / workspace")
    lst.add_argument("--json", action="store_true", help="以 JSON 输出 / print JSON")


def _path_and_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="工作区文件或 PostGIS 地址 / workspace")
    p.add_argument("name", help="账号用户名 / username")


def new_password() -> str:
    """The new account password: env ``GRIDS_NEW_PASSWORD``, or typed twice at a terminal."""
    value = os.environ.get(NEW_PASSWORD_ENV)
    if value is not None:
        return value
    if not sys.stdin or not sys.stdin.isatty():
        raise PermissionDeniedError(f"没有新密码：请设置环境变量 {NEW_PASSWORD_ENV}，或在终端中运行以输入新密码")
    first = getpass.getpass("新账号密码：")
    if getpass.getpass("再输入一次：") != first:
        raise ValidationError("两次输入的新密码不一致", fix="重新运行命令，两次输入同一个密码")
    return first


def _admin(ws: Workspace, args: argparse.Namespace) -> str:
    """The administrator running the command (its password checked), as the audit actor."""
    user = ws.read("accounts", where="username = ?", params=[args.user or ""])
    if args.op == "unlock" and len(user) and user["role"].iloc[0] == "admin":
        # a locked administrator may unlock with its right password (see the module docstring)
        account = auth.authenticate(ws, args.user, read_password(), allow_locked=True).account
        account.require("manage_accounts")
        return account.username
    return sign_in(ws, args.user, permission="manage_accounts").username


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    if args.op == "list":
        return _list(ws, as_json=args.json)
    if args.op == "add":
        return _add(ws, args)
    actor = _admin(ws, args)
    if args.op in ("disable", "enable"):
        if args.op == "disable" and args.name == actor:
            raise ValidationError("不能停用自己的账号", fix="请另一位管理员操作")
        auth.set_active(ws, args.name, args.op == "enable", actor=actor)
        print(f"已{'启用' if args.op == 'enable' else '停用'}账号 {args.name}")
        return 0
    if args.op == "unlock":
        if auth.unlock(ws, args.name, actor=actor):
            print(f"已解锁账号 {args.name}")
            return 0
        print(f"账号 {args.name} 没有被锁定（已清零连续密码错误次数）")
        return 1
    auth.set_password(ws, args.name, new_password(), actor=actor)  # passwd
    print(f"已重置账号 {args.name} 的密码；该账号已登录的会话在下一次操作时退出")
    return 0


def _add(ws: Workspace, args: argparse.Namespace) -> int:
    if args.user:
        actor = sign_in(ws, args.user, permission="manage_accounts").username
    elif auth.has_admin(ws):
        raise PermissionDeniedError("工作区已有管理员：新建账号需要 --user 指定一个管理员账号")
    elif args.role != "admin":
        raise PermissionDeniedError(
            "工作区还没有管理员：不带 --user 只能新建第一个管理员（--role admin），再用它新建其他账号")
    else:
        actor = FIRST_ADMIN_ACTOR
    branch = args.branch
    if args.role == "customer_manager" and args.staff and not branch:
        staff = ws.read("staff", where="staff_id = ?", params=[args.staff])
        branch = str(staff["branch_id"].iloc[0]) if len(staff) else None
    auth.create_account(ws, username=args.name, password=new_password(), role=args.role, actor=actor,
                        display_name=args.display_name, branch_id=branch, staff_id=args.staff)
    print(f"已新建账号 {args.name}（{ROLE_NAMES[args.role]}）")
    return 0


def _list(ws: Workspace, *, as_json: bool) -> int:
    frame = auth.list_accounts(ws)
    cols = ["username", "display_name", "role", "branch_id", "staff_id", "active", "locked"]
    rows = [{c: (None if r[c] is None or r[c] != r[c] else r[c]) for c in cols}
            for r in frame[cols].astype(object).to_dict("records")]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return 0
    for r in rows:
        bound = r["branch_id"] or ""
        bound += f"/{r['staff_id']}" if r["staff_id"] else ""
        state = "停用" if not r["active"] else ("锁定" if r["locked"] else "启用")
        print(f"{r['username']}\t{ROLE_NAMES.get(str(r['role']), r['role'])}\t{bound or '—'}\t{state}\t"
              f"{r['display_name'] or ''}")
    print(f"共 {len(rows)} 个账号")
    return 0
