"""``python -m grids build PATH --user NAME [--plan NAME] [--min-households N] [--max-households N]``: build a draft plan.

The account needs ``edit_plans`` (administrator, planner); the audit records it.
"""

from __future__ import annotations

import argparse
import sys
import time

from grids.build import DEFAULT_MAX_HOUSEHOLDS, DEFAULT_MIN_HOUSEHOLDS, build_workspace_plan, summarize
from grids.commands._identity import add_user_argument, sign_in
from grids.model import GRID_KIND_NAMES
from grids.plans import plan_info, read_grids
from grids.workspace import open_workspace


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="生成网格方案（农牧区按镇村组、城区按街道）/ build grids into a draft plan")
    p.add_argument("path", help="工作区文件 / workspace .gpkg")
    p.add_argument("--plan", default="main", help="方案名称（默认 main；重跑覆盖同名草稿）/ plan name")
    p.add_argument("--min-households", type=int, default=DEFAULT_MIN_HOUSEHOLDS,
                   help=f"少于该户数的村与相邻村合并（默认 {DEFAULT_MIN_HOUSEHOLDS}）")
    p.add_argument("--max-households", type=int, default=DEFAULT_MAX_HOUSEHOLDS,
                   help=f"多于该户数的村按组拆分（默认 {DEFAULT_MAX_HOUSEHOLDS}）")
    add_user_argument(p)


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    account = sign_in(ws, args.user, permission="edit_plans")
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:5.1f}s] {msg}", file=sys.stderr, flush=True)

    plan_id = build_workspace_plan(ws, name=args.plan, min_households=args.min_households,
                                   max_households=args.max_households, progress=say,
                                   actor=account.username)
    info = plan_info(ws, plan_id)
    s = summarize(read_grids(ws, plan_id))
    kinds = "，".join(f"{GRID_KIND_NAMES.get(k, k)} {n} 个" for k, n in s["by_kind"].items())
    print(f"方案 “{info['name']}”（{plan_id}，草稿第 {info['revision']} 版）：共 {s['grids']} 个网格（{kinds}），"
          f"{s['households']} 户")
    print(f"每个网格户数：最少 {s['min']}，中位数 {s['median']:g}，最多 {s['max']}；用时 {time.perf_counter() - t0:.1f} 秒")
    return 0
