"""``python -m grids check PATH [--plan NAME] [--json]``: coverage and assignment problems of a plan.

Exit code 0 when the plan has no problem, 1 when it has some.
"""

from __future__ import annotations

import argparse
import json

from grids.check import PROBLEM_KINDS, check_workspace_plan
from grids.plans import plan_info, resolve_plan
from grids.store import open_workspace

SHOW_PER_KIND = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="检查方案是否全覆盖、无重叠、已分配 / check a plan's coverage")
    p.add_argument("path", help="工作区文件 / workspace .gpkg")
    p.add_argument("--plan", help="方案名称（默认：已发布方案，否则最新草稿）/ plan name")
    p.add_argument("--json", action="store_true", help="以 JSON 输出全部问题 / print every problem as JSON")


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    plan_id = resolve_plan(ws, args.plan)
    info = plan_info(ws, plan_id)
    problems = check_workspace_plan(ws, plan_id)
    if args.json:
        rows = []
        for r in problems.itertuples():
            loc = None
            if r.geometry is not None and not r.geometry.is_empty:
                p = r.geometry.representative_point()
                loc = [round(p.x, 6), round(p.y, 6)]
            rows.append({"kind": r.kind, "kind_name": PROBLEM_KINDS.get(r.kind, r.kind), "grid_ids": r.grid_ids,
                         "message": r.message, "location": loc})
        counts = problems["kind"].value_counts().to_dict()
        print(json.dumps({"plan_id": plan_id, "plan": info["name"], "revision": info["revision"],
                          "ok": not len(problems), "counts": {k: int(v) for k, v in counts.items()},
                          "problems": rows}, ensure_ascii=False, indent=2))
        return 1 if len(problems) else 0
    print(f"检查方案 “{info['name']}”（{plan_id}，第 {info['revision']} 版）")
    if not len(problems):
        print("没有发现问题：网格全覆盖、无重叠，每户恰在一个网格，均已分配网点和客户经理。")
        return 0
    for kind, name in PROBLEM_KINDS.items():
        sub = problems[problems["kind"] == kind]
        if not len(sub):
            continue
        print(f"{name}：{len(sub)} 处")
        for msg in sub["message"].head(SHOW_PER_KIND):
            print(f"  - {msg}")
        if len(sub) > SHOW_PER_KIND:
            print(f"  … 另有 {len(sub) - SHOW_PER_KIND} 处（--json 查看全部）")
    print(f"共 {len(problems)} 个问题。")
    return 1
