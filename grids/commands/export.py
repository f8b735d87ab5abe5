"""``python -m grids export PATH --format F --out OUT [--plan NAME] [--branch ID] [--staff ID] [--grid CODE]``.

Formats: ``xlsx`` (入户清单), ``gpkg``, ``kml``, ``png``/``pdf`` (客户分布地图), ``html`` (offline map). ID numbers
and phones are masked unless ``--unmask``, which needs ``--user NAME`` of an account that may ``export`` and
``view_personal``; the export is then recorded in the audit trail under that account. With ``--user``, an
account limited to a branch or to its own grids exports only those (:meth:`grids.scope.ScopedWorkspace.export`).

``--layer surveys --format xlsx``: the latest survey of each household (农户信息采集, Chinese headers, ``--all``
every version); income, liabilities and consent masked unless ``--unmask``; with ``--user`` only the account's
households (:meth:`grids.scope.ScopedWorkspace.surveys_file`). The file imports back with
``import PATH surveys FILE``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from grids.audit import chain_head
from grids.commands._identity import add_user_argument, sign_in
from grids.errors import PermissionDeniedError
from grids.export import FORMATS, export_plan
from grids.scope import ScopedWorkspace
from grids.workspace import open_workspace

if TYPE_CHECKING:
    from grids.auth import Account
    from grids.workspace import Workspace


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="导出入户清单、地图、GeoPackage、KML / export lists and maps")
    p.add_argument("path", help="工作区文件 (.gpkg)")
    p.add_argument("--format", required=True, choices=FORMATS, help="导出格式")
    p.add_argument("--out", required=True, help="输出文件")
    p.add_argument("--plan", help="网格方案名称（默认：已发布方案，否则最新草稿）")
    p.add_argument("--branch", help="只导出该网点的网格")
    p.add_argument("--staff", help="只导出该客户经理的网格")
    p.add_argument("--grid", help="只导出该网格（网格编码）")
    p.add_argument("--unmask", action="store_true", help="身份证号与电话不脱敏（需要 --user；记入审计）")
    p.add_argument("--layer", choices=("surveys",), help="导出一个数据图层而不是网格方案：surveys（农户信息采集，xlsx）")
    p.add_argument("--all", action="store_true", help="与 --layer surveys 一起用：导出每户的全部版本（默认只导出最新版本）")
    add_user_argument(p, required=False)


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    account = None
    if args.unmask or args.user:
        needed = ("export", "view_personal") if args.unmask else ("export",)
        if args.unmask and not args.user:
            raise PermissionDeniedError("--unmask 导出明文个人信息需要 --user 指定有权查看个人信息的账号")
        account = sign_in(ws, args.user, permission=needed)
    if args.layer == "surveys":
        return _export_surveys(ws, args, account)
    if account is None or account.can("read_all"):
        info = export_plan(ws, fmt=args.format, out=args.out, plan=args.plan, branch_id=args.branch,
                           staff_id=args.staff, grid_code=args.grid, unmask=args.unmask,
                           actor=account.username if account else "cli")
    else:
        if args.branch not in (None, account.branch_id):
            raise PermissionDeniedError(f"{account.role_name}（{account.username}）不能导出网点 {args.branch}")
        info = ScopedWorkspace(ws, account, plan=args.plan).export(
            fmt=args.format, out=args.out, staff_id=args.staff, grid_code=args.grid, unmask=args.unmask)
    print(f"已导出 {info['format']}：{info['path']}（{info['title']}，网格 {info['grids']} 个，农户 {info['households']:,} 户"
          f"{'，含明文个人信息，已记入审计' if args.unmask else ''}）")
    print(f"审计链头：{chain_head(ws)}")
    return 0



def _export_surveys(ws: Workspace, args: argparse.Namespace, account: Account | None) -> int:
    """``export PATH --layer surveys --format xlsx --out OUT``: the surveys workbook, scoped and masked."""
    from pathlib import Path

    from grids import survey
    from grids.errors import ValidationError
    from grids.export import frame_xlsx
    from grids.privacy import mask_survey_frame

    if args.format != "xlsx":
        raise ValidationError(f"农户信息采集只能导出为 xlsx（不是 {args.format}）", fix="改用 --format xlsx")
    if account is None:  # no user: the county's surveys, masked (like the other exports without --user)
        data = frame_xlsx(survey.export_frame(mask_survey_frame(survey.read_surveys(ws)), latest=not args.all),
                          title="农户信息采集")
    else:
        sw = ScopedWorkspace(ws, account, plan=args.plan, require_plan=not account.can("read_all"))
        data = sw.surveys_file(unmask=args.unmask, latest=not args.all)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"已导出农户信息采集：{out}{'（含明文收入、负债和征信授权，已记入审计）' if args.unmask else ''}")
    print(f"审计链头：{chain_head(ws)}")
    return 0
