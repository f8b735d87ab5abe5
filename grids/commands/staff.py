"""``python -m grids staff PATH add|leave|move … --user NAME [--dry-run] [--json]``: staff who come and go.

* ``leave STAFF_ID`` — record a leaver: their grids (locks released) go to the branch's remaining staff, the
  branch rebalanced with fewest moves, their accounts disabled;
* ``add STAFF_ID --name 姓名 --branch B01 [--role 客户经理] [--phone …]`` — a newcomer who takes grids the same way;
* ``move STAFF_ID --to B02`` — leave one branch, join another (both rebalanced; the accounts follow).

Each is one transaction on the published plan (:mod:`grids.lifecycle`), audited under ``--user``; the account
needs ``manage_staff`` (administrator; a branch manager for their own branch's staff only, and for a move the
branch the person leaves). ``--dry-run`` prints the moves without saving (no ``--user`` needed). Exit code 0
done; 1 done, but a branch's spread is still above its goal (printed with the proven lower bound); 2 refused.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from grids import lifecycle
from grids.commands._identity import add_user_argument, sign_in
from grids.model import STAFF_ROLES
from grids.scope import ScopedWorkspace
from grids.workspace import open_workspace


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "staff", help="员工新增、离职、调动 / staff lifecycle: add, leave, move",
        description="员工新增、离职、调动：网格只在相关网点内交接，其他网点的网格不动；网点内按“最少调整”均衡到负荷差 ≤ "
                    "max(10%, 可证明的下限)，并列出每个移动的网格。离职员工的账号同时停用。")
    p.add_argument("path", help="工作区文件 / workspace .gpkg")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dry-run", action="store_true", help="只预览要移动的网格，不保存 / preview only")
    common.add_argument("--json", action="store_true", help="以 JSON 输出 / print JSON")
    add_user_argument(common, required=False)  # required unless --dry-run
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = acts.add_parser("add", parents=[common], help="新增员工 / add a staff member")
    a.add_argument("staff_id", help="新员工编号，例如 S200")
    a.add_argument("--name", required=True, help="姓名")
    a.add_argument("--branch", required=True, help="网点编号，例如 B01")
    a.add_argument("--role", default="客户经理", choices=STAFF_ROLES, help="岗位（默认 客户经理）")
    a.add_argument("--phone", default="", help="电话（可不填）")
    lv = acts.add_parser("leave", parents=[common], help="登记离职 / record a leaver")
    lv.add_argument("staff_id", help="员工编号，例如 S003")
    mv = acts.add_parser("move", parents=[common], help="调到另一个网点 / move to another branch")
    mv.add_argument("staff_id", help="员工编号")
    mv.add_argument("--to", required=True, metavar="BRANCH", help="调入的网点编号，例如 B02")


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "add":
        return {"person": {"staff_id": args.staff_id, "name": args.name, "branch_id": args.branch,
                           "role": args.role, "phone": args.phone}}
    if args.action == "move":
        return {"staff_id": args.staff_id, "to_branch": args.to}
    return {"staff_id": args.staff_id}


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    kw = _kwargs(args)
    if args.dry_run and not args.user:
        change = lifecycle.preview(ws, args.action, **kw)
    else:
        account = sign_in(ws, args.user, permission="manage_staff")
        sw = ScopedWorkspace(ws, account, require_plan=False)
        if args.dry_run:
            change = sw.staff_preview(args.action, **kw)
        elif args.action == "leave":
            change = sw.staff_leave(kw["staff_id"])
        elif args.action == "add":
            change = sw.staff_add(kw["person"])
        else:
            change = sw.staff_move(kw["staff_id"], kw["to_branch"])
    if args.json:
        print(json.dumps({"dry_run": bool(args.dry_run), **change.to_dict()}, ensure_ascii=False, indent=2))
    else:
        print("\n".join(change.lines()))
        if not change.reached:
            print("警告：整块网格分配时，上面“未达到”的网点的负荷差仍高于目标。处理：请规划人员在网格规划页拆分过大的网格，再在人员分配页自动均衡")
    return 0 if change.reached else 1
