"""``python -m grids check PATH [--plan NAME] [--json]``: coverage, assignment and size problems of a plan.

Errors first, then warnings, each with its reason and its fix. Exit code 0 when the plan has no error (warnings
are printed but never block publishing), 1 when it has errors. Households whose signed / available / balance
values differ from their 签约/用信 events (:func:`grids.check.check_credit_events`) are an error here too.

``--credit`` checks the households' grants against the product rules instead (:mod:`grids.credit_rules`: the
联社's defaults, or the rules of the household's branch where the administrator set some,
:func:`grids.credit_rules.check_workspace`): every rule a grant breaks is an error, except on historical grants imported with ``--legacy``
(``credit_legacy``), which are warnings. Exit code 0 when no grant breaks a rule (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from typing import cast

import pandas as pd
from shapely.geometry.base import BaseGeometry

from grids.check import (
    PROBLEM_KINDS,
    SEVERITY_NAMES,
    check_credit_events,
    check_workspace_plan,
    errors,
    warnings,
)
from grids.plans import plan_info, resolve_plan
from grids.workspace import Workspace, open_workspace

SHOW_PER_KIND = 5

HELP = ("检查方案：错误（空白、重叠、飞地、跨有网点的岛、未分配…）阻止发布，退出码 1；"
        "警告（户数超出上下限、空网格）只提示原因和修正方法，退出码 0 / check a plan: errors block publishing "
        "(exit 1), warnings never do (exit 0)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help=HELP, description=HELP)
    p.add_argument("path", help="工作区文件 / workspace .gpkg")
    p.add_argument("--plan", help="方案名称（默认：已发布方案，否则最新草稿）/ plan name")
    p.add_argument("--credit", action="store_true",
                   help="改为检查授信是否符合产品规则（客户类型、额度范围、职务级别、担保）：违反为错误，退出码 1；"
                        "按 --legacy 导入的历史授信列为警告 / check the grants against the product rules instead")
    p.add_argument("--json", action="store_true",
                   help="以 JSON 输出全部问题（含 severity 与 fix）/ print every problem as JSON, with severity and fix")


def _print_group(found: pd.DataFrame, title: str) -> None:
    print(title)
    for kind, name in PROBLEM_KINDS.items():
        sub = found[found["kind"] == kind]
        if not len(sub):
            continue
        print(f"{name}：{len(sub)} 处")
        for msg, fix in zip(sub["message"].head(SHOW_PER_KIND), sub["fix"].head(SHOW_PER_KIND), strict=True):
            print(f"  - {msg}。修正方法：{fix}")
        if len(sub) > SHOW_PER_KIND:
            print(f"  … 另有 {len(sub) - SHOW_PER_KIND} 处（--json 查看全部）")


def _run_credit(ws: Workspace, *, as_json: bool) -> int:
    from grids.credit_rules import RULE_NAMES, check_workspace

    found = check_workspace(ws)
    granted = int(ws.count("households", where="granted_amount > 0"))
    bad, notes = found[~found["legacy"].astype(bool)], found[found["legacy"].astype(bool)]
    if as_json:
        rows = [{"hh_id": r.hh_id, "branch_id": r.branch_id, "product": r.product, "grade": r.grade, "granted_amount": r.granted_amount,
                 "rule": r.rule, "rule_name": RULE_NAMES[cast(str, r.rule)], "column": r.column,
                 "severity": "warning" if r.legacy else "error", "legacy": bool(r.legacy), "message": r.problem,
                 "fix": r.fix} for r in found.itertuples()]
        print(json.dumps({"granted": granted, "ok": not len(bad), "errors": len(bad), "warnings": len(notes),
                          "households_with_errors": int(bad["hh_id"].nunique()),
                          "counts": {k: int(v) for k, v in bad["rule"].value_counts().items()},
                          "problems": rows}, ensure_ascii=False, indent=2))
        return 1 if len(bad) else 0
    print(f"检查授信：{granted} 户已授信，对照产品规则（客户类型、额度范围、职务级别、担保）")
    for frame, title in ((bad, f"错误（{len(bad)} 处，{bad['hh_id'].nunique()} 户）："),
                         (notes, f"警告：历史授信（按 --legacy 导入并标记，{notes['hh_id'].nunique()} 户）：")):
        if not len(frame):
            continue
        print(title)
        for rule, name in RULE_NAMES.items():
            sub = frame[frame["rule"] == rule]
            if not len(sub):
                continue
            print(f"{name}：{len(sub)} 处")
            for r in sub.head(SHOW_PER_KIND).itertuples():
                print(f"  - 户 {r.hh_id}：{r.problem}。修正方法：{r.fix}")
            if len(sub) > SHOW_PER_KIND:
                print(f"  … 另有 {len(sub) - SHOW_PER_KIND} 处（--json 查看全部）")
    if not len(bad):
        print("没有违反产品规则的授信。")
    print(f"共 {len(bad)} 个错误、{len(notes)} 个警告。")
    return 1 if len(bad) else 0


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    if getattr(args, "credit", False):
        return _run_credit(ws, as_json=args.json)
    plan_id = resolve_plan(ws, args.plan)
    info = plan_info(ws, plan_id)
    problems = check_workspace_plan(ws, plan_id)
    events = check_credit_events(ws)  # the households' credit values against their events (an error)
    if len(events):
        problems = pd.concat([problems, events], ignore_index=True)
    bad, notes = errors(problems), warnings(problems)
    if args.json:
        rows = []
        for r in problems.itertuples():
            loc = None
            geom = cast(BaseGeometry | None, r.geometry)
            if geom is not None and not geom.is_empty:
                p = geom.representative_point()
                loc = [round(p.x, 6), round(p.y, 6)]
            kind, severity = cast(str, r.kind), cast(str, r.severity)
            rows.append({"kind": kind, "kind_name": PROBLEM_KINDS.get(kind, kind), "severity": severity,
                         "severity_name": SEVERITY_NAMES[severity], "grid_ids": r.grid_ids, "message": r.message,
                         "fix": r.fix, "location": loc})
        counts = problems["kind"].value_counts().to_dict()
        print(json.dumps({"plan_id": plan_id, "plan": info["name"], "revision": info["revision"],
                          "ok": not len(bad), "errors": len(bad), "warnings": len(notes),
                          "counts": {k: int(v) for k, v in counts.items()}, "problems": rows},
                         ensure_ascii=False, indent=2))
        return 1 if len(bad) else 0
    print(f"检查方案 “{info['name']}”（{plan_id}，第 {info['revision']} 版）")
    if not len(problems):
        print("没有发现问题：网格全覆盖、无重叠，每户恰在一个网格，均已分配网点和客户经理。")
        return 0
    if len(bad):
        _print_group(bad, f"错误（{len(bad)} 个，阻止发布）：")
    else:
        print("没有错误：网格全覆盖、无重叠，每户恰在一个网格，均已分配网点和客户经理，可以发布。")
    if len(notes):
        _print_group(notes, f"警告（{len(notes)} 个，不阻止发布）：")
    print(f"共 {len(bad)} 个错误、{len(notes)} 个警告。")
    return 1 if len(bad) else 0
