"""``python -m grids publish PATH --plan NAME --user NAME [--accept-conflicts] [--force --reason TEXT] [--json]``.

Publishes a draft (:func:`grids.plans.publish_plan` through the account's scoped workspace, so a refusal is
audited too). Reassignments made on the published plan since the draft was made are carried into it; grids changed
on both sides are conflicts, listed, and the draft is not published unless ``--accept-conflicts`` (the draft's
version wins; every overridden live assignment is recorded in the audit). Check errors refuse it unless
``--force --reason TEXT`` (recorded in the audit).

Exit codes: 0 published; 1 refused (conflicts or check errors, listed with their fixes); 2 could not run (no
``--user``, no ``publish`` permission, unknown plan, ``--force`` without ``--reason``, a stale revision).
"""

from __future__ import annotations

import argparse
import json

from grids.commands._identity import add_user_argument, sign_in
from grids.errors import PublishBlockedError, PublishConflictError, ValidationError

HELP = ("发布草稿方案：期间在已发布方案上的改派自动并入；冲突逐条列出，--accept-conflicts 以草稿为准；检查错误阻止发布，"
        "--force --reason 说明理由后可带错发布（记入审计）/ publish a draft, carrying live reassignments in")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("publish", help=HELP, description=HELP)
    p.add_argument("path", help="工作区：GeoPackage 文件路径或 postgresql://… 地址")
    p.add_argument("--plan", required=True, help="要发布的草稿方案名称或编号 / the draft's name or id")
    p.add_argument("--accept-conflicts", action="store_true",
                   help="冲突网格以草稿为准（被覆盖的改派记入审计）/ keep the draft's version of conflicting grids")
    p.add_argument("--force", action="store_true", help="有检查错误也发布（须同时给 --reason）/ publish despite errors")
    p.add_argument("--reason", help="带错发布的理由（记入审计）/ why errors are accepted (audited)")
    p.add_argument("--json", action="store_true", help="以 JSON 输出结果 / print JSON")
    add_user_argument(p)


def run(args: argparse.Namespace) -> int:
    from grids import plans
    from grids.model import PLAN_STATUS_NAMES
    from grids.scope import ScopedWorkspace
    from grids.workspace import open_workspace

    if args.force and not (args.reason or "").strip():
        raise ValidationError("--force 需要 --reason 说明为什么带着检查错误发布", fix="加上 --reason 理由，例如 --reason 县里要求先发布")
    ws = open_workspace(args.path)
    account = sign_in(ws, args.user, permission="publish")
    plan_id = plans.resolve_plan(ws, args.plan)
    info = plans.plan_info(ws, plan_id)
    if info["status"] != "draft":
        raise ValidationError(f"方案 “{info['name']}” 是{PLAN_STATUS_NAMES.get(info['status'], info['status'])}方案，"
                              "不是草稿", fix="用 --plan 指定一个草稿方案（方案列表见 `python -m grids status`）")
    merge = plans.merge_live_changes(ws, plan_id)
    sw = ScopedWorkspace(ws, account, plan=plan_id)
    try:
        revision = sw.publish_plan(plan_id, expected_revision=int(info["revision"]),
                                   accept_conflicts=args.accept_conflicts,
                                   force_reason=args.reason if args.force else None)
    except PublishConflictError as exc:
        if args.json:
            print(json.dumps({"published": False, "conflicts": exc.conflicts}, ensure_ascii=False, indent=1))
        else:
            print(f"未发布：{exc}")
            for c in exc.conflicts:
                print(f"  - {c['message']}")
        return 1
    except PublishBlockedError as exc:
        print(json.dumps({"published": False, "error": str(exc)}, ensure_ascii=False) if args.json else f"未发布：{exc}")
        return 1
    out = {"published": True, "plan_id": plan_id, "name": info["name"], "revision": revision,
           "carried": [c["grid_id"] for c in merge.carried],
           "conflicts_overridden": [c["grid_id"] for c in merge.conflicts] if args.accept_conflicts else []}
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print(f"已发布方案 “{info['name']}”（第 {revision} 版）；并入已发布方案上的改派 {len(merge.carried)} 个网格"
              + (f"：{'、'.join(out['carried'][:20])}" if merge.carried else "")
              + (f"；以草稿为准覆盖 {len(merge.conflicts)} 处冲突（已记入审计）" if args.accept_conflicts and merge.conflicts
                 else ""))
    return 0
