"""``python -m grids status PATH [--json]``: what the workspace has and lacks, and the next command to run."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "status",
        help="工作区有什么、缺什么、下一步做什么 / what the workspace has and lacks, and what to do next",
        description="逐步列出县界、镇、村（实测/推算村界、临时代码）、组、农户（按坐标/代码/名称定位、未能定位）、网点、"
                    "员工、账号、已发布方案：每一步缺什么、影响什么、用哪条命令补齐。只读，退出码 0。",
    )
    p.add_argument("path", help="工作区：GeoPackage 文件路径或 postgresql://… 地址")
    p.add_argument("--json", action="store_true", help="以 JSON 输出 / print JSON")


def run(args: argparse.Namespace) -> int:
    from grids.status import format_status, workspace_status
    from grids.text import mask_url
    from grids.workspace import open_workspace

    ws = open_workspace(args.path)
    if ws.revision is not None and ws.notice:  # outside edits it could not record (a read-only workspace)
        print(f"注意：{ws.notice}", file=sys.stderr)
    status = workspace_status(ws, path=mask_url(str(args.path)))  # no password shown
    print(json.dumps(status, ensure_ascii=False, indent=1) if args.json else format_status(status))
    return 0
