"""``python -m grids assign PATH --user NAME [--plan NAME] [--by straight|road] [--minimal-change] [--json]``.

Fills ``branch_id`` and ``staff_id`` of the plan's grids and prints the metrics; the account needs
``edit_plans`` (administrator, planner) and the audit records it. With ``--add-branch LON,LAT`` or
``--close-branch ID`` it runs a what-if on a copy instead: nothing is written (no ``--user`` needed). The what-if
changes as little as it can (:func:`grids.assign.what_if`): closing moves only the closed branch's grids, its
staff with them; a new branch (``--new-branch-staff N`` managers) takes only the grids nearer to it. The
households moved, the change in loads and distances, the people and the grids that move are printed.

Without ``--by`` the workspace setting ``assign_by`` decides (straight when unset);
``assign PATH --set-default road --user NAME`` stores it and assigns nothing (with --by, --plan or
--minimal-change it is refused: they would be ignored). The county outline
(``admin_units``, level county, else its towns) and the ferry lanes of ``streets`` give the landmasses: a grid
crosses water to its branch only when its own landmass has no branch with room. Exit code 1 when a branch
still ends above 1.10 × its capacity (only locked grids can cause that).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, cast

import geopandas as gpd
import pandas as pd

from grids.assign import (
    ASSIGN_BY_KEY,
    BY,
    CAPACITY_LIMIT,
    CROSSING_PENALTY_M,
    AssignmentResult,
    WhatIfResult,
    assign_plan,
    default_by,
    what_if,
)
from grids.assign.metrics import balance_warnings, warning_lines
from grids.commands._identity import add_user_argument, sign_in
from grids.errors import ValidationError
from grids.landmass import county_outline
from grids.plans import plan_info, read_grids, resolve_plan, update_grids
from grids.workspace import open_workspace

SHOW_MOVES = 20


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "assign", help="把网格分配到网点和客户经理 / assign grids to branches and staff",
        description="把网格分配到网点和客户经理。陆块取自县界（admin_units）各部分，由街道图层中 class=ferry 的渡轮航线"
                    "相连：网格只在本陆块没有网点或网点已满时才跨水分配。每个网点的户数不超过容量的 "
                    f"{CAPACITY_LIMIT:.2f} 倍；因锁定网格而做不到时列出这些网点并以退出码 1 结束。")
    p.add_argument("path", help="工作区文件 / workspace .gpkg")
    p.add_argument("--plan", help="方案名称（默认：已发布方案，否则最新草稿）/ plan name")
    p.add_argument("--by", choices=BY, default=None,
                   help="距离：straight 直线或 road 沿道路（含渡轮航线）；不写时取工作区设置 "
                        f"{ASSIGN_BY_KEY}（见 --set-default），未设置为 straight / distance measure")
    p.add_argument("--set-default", choices=BY, metavar="{straight,road}",
                   help="把工作区默认的距离方式设为 straight 或 road 后退出（不分配；需要 --user）"
                        " / store the workspace's default distance measure and exit")
    p.add_argument("--crossing-penalty", type=float, default=CROSSING_PENALTY_M, metavar="METRES",
                   help=f"沿道路距离时，两岛之间没有渡轮相连，按直线距离再加多少米（默认 {CROSSING_PENALTY_M:.0f}）"
                        " / metres added across water no ferry links (road only)")
    p.add_argument("--minimal-change", action="store_true",
                   help="在现有分配上尽量少调整 / rebalance moving as few households as possible")
    p.add_argument("--capacity-slack", type=float, default=0.15,
                   help="网点可超出按人员比例容量的比例（默认 0.15）/ branch capacity slack")
    p.add_argument("--tolerance", type=float, default=0.05,
                   help="少调整模式的均衡容差（默认 0.05，即 ±5%%）/ balance band of --minimal-change")
    p.add_argument("--add-branch", metavar="LON,LAT", help="假设新增网点（只比较，不保存）/ what-if: add a branch")
    p.add_argument("--close-branch", metavar="ID", help="假设关闭网点（只比较，不保存）/ what-if: close a branch")
    p.add_argument("--new-branch-staff", type=int, metavar="N",
                   help="假设新增网点配几名客户经理（默认：各网点人数的中位数）/ what-if: managers of the new branch")
    p.add_argument("--json", action="store_true", help="以 JSON 输出 / print JSON")
    add_user_argument(p, required=False)  # required when writing, i.e. unless --add-branch/--close-branch


def _lonlat(text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(x) for x in text.replace("，", ",").split(","))
    except ValueError as exc:
        raise ValidationError(f"无法解析坐标 “{text}”", fix="按“经度,纬度”填写，例如 --add-branch 119.39,43.98") from exc
    return lon, lat


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    what_if_only = bool(args.add_branch or args.close_branch)
    if args.new_branch_staff is not None and not args.add_branch:
        raise ValidationError("--new-branch-staff 只用于假设新增网点", fix="同时给出 --add-branch 经度,纬度")
    if args.set_default:
        if what_if_only:
            raise ValidationError("--set-default 不能与假设分析（--add-branch/--close-branch）同用",
                                  fix="先单独运行 --set-default，再做假设分析")
        ignored = [flag for flag, given in (("--by", args.by is not None), ("--plan", args.plan is not None),
                                            ("--minimal-change", args.minimal_change)) if given]
        if ignored:  # --set-default only stores the setting: these would be silently ignored
            raise ValidationError(f"--set-default 只保存默认设置、不分配，不能与 {'、'.join(ignored)} 同用",
                                  fix="先单独运行 assign 路径 --set-default road|straight --user 账号，"
                                      "再运行 assign（可带 --by/--plan）")
        setter = sign_in(ws, args.user, permission="edit_plans")
        ws.set_meta(ASSIGN_BY_KEY, args.set_default, actor=setter.username)
        name = "沿道路距离" if args.set_default == "road" else "直线距离"
        print(f"工作区默认的分配距离已设为 {args.set_default}（{name}）；不带 --by 的 assign 将按此分配")
        return 0
    account = None if what_if_only else sign_in(ws, args.user, permission="edit_plans")
    by = args.by or default_by(ws.meta)
    plan_id = resolve_plan(ws, args.plan)
    info = plan_info(ws, plan_id)
    grids = read_grids(ws, plan_id)
    if not len(grids):
        raise ValidationError(f"方案 “{info['name']}” 没有网格", fix="先运行 `python -m grids build` 生成网格")
    branches = cast(gpd.GeoDataFrame, ws.read("branches"))  # a spatial layer: always a GeoDataFrame
    staff = ws.read("staff")
    streets = ws.read("streets")  # ferry lanes join islands in both modes
    options = {"by": by, "streets": streets if len(streets) else None, "capacity_slack": args.capacity_slack,
               "outline": county_outline(ws), "crossing_penalty": args.crossing_penalty}
    if account is None:
        scenario = what_if(grids, branches, staff, add_branch=_lonlat(args.add_branch) if args.add_branch else None,
                           close_branch=args.close_branch, new_branch_staff=args.new_branch_staff, **options)
        if args.json:
            print(json.dumps({"plan_id": plan_id, "plan": info["name"], **scenario.to_dict()},
                             ensure_ascii=False, indent=2))
        else:
            _print_what_if(info, scenario)
        return 0
    result = assign_plan(grids, branches, staff, minimal_change=args.minimal_change, tolerance=args.tolerance,
                         **options)
    revision = update_grids(ws, plan_id, result.grids, actor=account.username,
                            action="最少调整重新分配网格" if args.minimal_change else "分配网格",
                            expected_revision=info["revision"])
    warnings = balance_warnings(result.grids, staff)  # grids too coarse for a 10 % staff balance: what to split
    if args.json:
        print(json.dumps({"plan_id": plan_id, "plan": info["name"], "revision": revision, **result.to_dict(),
                          "warnings": json.loads(warnings.drop(columns="geometry", errors="ignore").to_json(
                              orient="records", force_ascii=False))},
                         ensure_ascii=False, indent=2))
    else:
        _print_result(info, plan_id, revision, result)
        for line in warning_lines(warnings):
            print(line)
    return 1 if result.summary.get("over_capacity") else 0


def _pct(x: Any) -> str:
    """A share as a percentage, "—" for NA; ``x`` is a number or NA (``itertuples`` types its fields as any
    scalar, Period and Interval included)."""
    return "—" if pd.isna(x) else f"{100 * x:.1f}%"


def _km(x: Any) -> str:
    """Metres as kilometres, "—" for NA; ``x`` is a number or NA as for :func:`_pct`."""
    return "—" if pd.isna(x) else f"{x / 1000:.1f}"


def _print_result(info: dict[str, Any], plan_id: str, revision: int, r: AssignmentResult) -> None:
    s = r.summary
    by = "沿道路距离" if s["by"] == "road" else "直线距离"
    print(f"方案 “{info['name']}”（{plan_id}，第 {info['revision']} → {revision} 版）：已为 {s['grids']} 个网格"
          f"分配网点和客户经理（{by}{'，最少调整' if s['minimal_change'] else ''}）")
    print(f"网点 {s['branches']} 个，客户经理 {s['staff']} 名，{s['households']} 户；"
          f"调整 {s['moved_households']} 户（{s['moved_grids']} 个网格），新分配 {s['newly_assigned_grids']} 个网格")
    print(f"客户经理负荷差距 (最大−最小)/平均：各网点中最大 {_pct(s['staff_spread_max'])}，"
          f"最大偏离均值 {_pct(s['staff_max_dev_max'])}；{s['branches_balance_ok']}/{s['branches_with_staff']} "
          "个网点 ≤10% 或已达网格粒度允许的下限")
    if s.get("capacity_use_max") is not None and pd.notna(s.get("capacity_use_max")):
        print(f"网点负荷：最高为容量的 {s['capacity_use_max']:.2f} 倍（上限 {CAPACITY_LIMIT:.2f} 倍）")
    print(f"辖区连片：网点最多 {s['max_branch_pieces']} 片，客户经理最多 {s['max_staff_pieces']} 片（孤立网格不计）")
    print(f"户到网点距离：平均 {_km(s['mean_distance_m'])} km，最远 {_km(s['max_distance_m'])} km"
          + (f"；{s['road_fallback']} 个网格不通路，按直线计" if s.get("road_fallback") else ""))
    if s.get("cross_water_grids"):
        print(f"跨水分配：{s['cross_water_grids']} 个网格（{s['cross_water_households']} 户）由其他陆块的网点负责"
              "——它们所在的陆块没有网点或网点已满")
    if s.get("over_capacity"):
        print(f"注意：网点 {'、'.join(s['over_capacity'])} 超过容量的 {CAPACITY_LIMIT:.2f} 倍（锁定的网格无法移走）；"
              "解除部分网格的锁定，或为这些网点补充客户经理后重新分配")
    if s["unassigned_branch"] or s["unassigned_staff"]:
        print(f"注意：{s['unassigned_branch']} 个网格没有网点，{s['unassigned_staff']} 个网格没有客户经理"
              "（网点没有员工时无法分配到人）")
    print(f"耗时 {s['seconds']['total']:.2f} 秒")
    print()
    print("网点      客户经理 网格  户数   人均户数 差距    下限    连片 紧凑度 平均km 最远km")
    for b in r.branches.itertuples():
        print(f"{b.branch_id:<9} {b.staff:>6} {b.grids:>5} {b.households:>6} {b.load_per_staff:>8.0f} "
              f"{_pct(b.staff_spread):>7} {_pct(b.spread_lower_bound):>7} {b.pieces:>4} "
              f"{b.polsby_popper:>6.2f} {_km(b.mean_distance_m):>6} {_km(b.max_distance_m):>6}")


def _print_what_if(info: dict[str, Any], r: WhatIfResult) -> None:
    s = r.summary
    by = "沿道路距离" if s.get("by") == "road" else "直线距离"
    basis = "方案现有的分配" if s.get("baseline") == "current" else "按相同设置重新分配的结果"
    print(f"假设分析（方案 “{info['name']}”，不保存；以{basis}为基准，{by}）：")
    for line in s["scenario"]:
        print(f"  {line}")
    print(f"移动 {s['households_moved']} 户（{s['grids_moved']} 个网格改变网点）；其余网格的网点和客户经理都不变"
          if not s.get("grids_restaffed") else
          f"移动 {s['households_moved']} 户（{s['grids_moved']} 个网格改变网点），另有 {s['households_restaffed']} 户"
          f"（{s['grids_restaffed']} 个网格）网点不变、换客户经理")
    print(f"员工 {s['staff_before']} → {s['staff_after']} 名；调动 {s['staff_moved']} 名")
    print(f"户到网点平均距离 {_km(s['mean_distance_m_before'])} → {_km(s['mean_distance_m_after'])} km，"
          f"最远 {_km(s['max_distance_m_before'])} → {_km(s['max_distance_m_after'])} km")
    print()
    print("网点      客户经理     户数（前→后）      平均km（前→后）  最远km（前→后）")
    changed = r.branches[(r.branches["households_change"] != 0)
                         | (r.branches["staff_before"] != r.branches["staff_after"])]
    for b in changed.itertuples():
        print(f"{b.branch_id:<9} {b.staff_before:>3}→{b.staff_after:<3} {b.households_before:>7}→{b.households_after:<7} "
              f"({b.households_change:+d})  {_km(b.mean_distance_m_before):>5}→{_km(b.mean_distance_m_after):<5}  "
              f"{_km(b.max_distance_m_before):>5}→{_km(b.max_distance_m_after)}")
    if len(r.staff_moves):
        print()
        print("调动的员工：" + "，".join(f"{m.staff_id} {m.branch_before}→{m.branch_after}"
                                   for m in r.staff_moves.itertuples()))
    if len(r.moves):
        print()
        print("改变网点的网格：")
        for m in r.moves.head(SHOW_MOVES).itertuples():
            label = next((str(v) for v in (getattr(m, "name", None), getattr(m, "code", None))
                          if v is not None and pd.notna(v) and str(v)), "")
            before: object = m.staff_before  # a staff id or None
            after: object = m.staff_after
            who = (f"，客户经理 {before or '—'} 随网格调动" if before == after
                   else f"，客户经理 {before or '—'} → {after or '—'}")
            print(f"  {getattr(m, 'grid_id', '')} {label}：{m.households} 户，{m.branch_before} → {m.branch_after}{who}")
        if len(r.moves) > SHOW_MOVES:
            print(f"  … 另有 {len(r.moves) - SHOW_MOVES} 个（--json 查看全部）")
