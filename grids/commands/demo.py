"""``python -m grids demo PATH``: write the demo county workspace (巴林左旗 by default)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from grids.errors import ValidationError, WorkspaceError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="生成演示旗县工作区 / build the demo county workspace",
        description="生成一个完整的演示工作区（默认：巴林左旗真实县界，约 11 万户，漏斗数据与样本联社一致）。",
    )
    p.add_argument("path", type=Path, help="工作区文件 (.gpkg)")
    p.add_argument("--outline", type=Path, help="县界文件 (GeoJSON/GPKG/SHP)；默认内置巴林左旗县界")
    p.add_argument("--county", help="县界文件含多个要素时，按代码或名称选一个（默认合并全部）")
    p.add_argument("--coords", choices=("wgs84", "gcj02", "cgcs2000"),
                   help="县界文件的经纬度坐标系。赤峰各旗县（geodata/outlines 有参考县界）的文件与参考比对：GCJ-02 "
                        "（高德等网络地图）必须声明 --coords gcj02；其他旗县的经纬度文件必须声明；投影坐标按 .prj 换算")
    p.add_argument("--synthetic", choices=("jagged", "holes", "islands"),
                   help="用合成县界代替 --outline（geodata/outlines_synth.py，119°E 44°N 附近）：jagged = 锯齿状"
                        "边界的内陆旗县，holes = 有湖泊和他县飞地的旗县，islands = 大陆加 30 个海岛、部分岛间有渡口航线"
                        "（streets.class = ferry）。写成 GeoJSON：python -c \"from geodata.outlines_synth import "
                        "write_synthetic; write_synthetic('DIR')\"，再用 --outline DIR/holes.geojson --coords cgcs2000")
    p.add_argument("--ferries", type=Path,
                   help="渡口航线文件（线图层，坐标系同 --coords），作为 class = ferry 的道路写入；"
                        "--synthetic islands 自带航线")
    p.add_argument("--households", type=int, default=None,
                   help="户数（默认：旗县 110000；--city 时 1000000，最多约 5000000）")
    p.add_argument("--city", metavar="PREFIX",
                   help="生成市级多旗县工作区（如 1504 = 赤峰市全部 12 个旗县区），农户流式写入 GeoParquet 分区")
    p.add_argument("--seed", type=int, default=1504, help="随机种子（同一种子生成相同的旗县）")
    p.add_argument("--force", action="store_true", help="覆盖已存在的文件")


def _refuse_real_workspace(path: Path) -> None:
    """``demo --force`` may replace a demo workspace (or a file that is no workspace), never a real one: the
    ``demo`` command needs no ``--user``, so overwriting a county's data, accounts and audit is not its job."""
    from grids.workspace import GpkgWorkspace

    try:
        ws = GpkgWorkspace(path)
        is_demo = ws.is_demo
    except WorkspaceError:
        return  # not a workspace of ours (or damaged): nothing of a county's to protect
    if not is_demo:
        raise WorkspaceError(f"{path} 是本行的真实工作区（不是演示工作区），demo --force 不会覆盖它。"
                             "修正方法：换一个文件名生成演示工作区；真要删除真实工作区，请先备份并由管理员手工删除")


def run(args: argparse.Namespace) -> int:
    from geodata.demo import load_outline, write_demo

    if args.path.exists() and not args.force:
        raise WorkspaceError(f"{args.path} 已存在。修正方法：换一个文件名，或加 --force 覆盖")
    if args.path.exists():
        _refuse_real_workspace(args.path)
    t0 = time.perf_counter()
    if args.city:
        from geodata.city import write_city

        city = write_city(args.path, prefix=args.city, households=args.households or 1_000_000, seed=args.seed,
                          overwrite=args.force)
        print(f"已生成市级工作区 {args.path}：{len(city.counties)} 个旗县区，{args.households or 1_000_000:,} 户"
              f"（GeoParquet 分区：{city.households}）；用时 {time.perf_counter() - t0:.1f} 秒。"
              f"汇总：python -m grids report {args.path} --engine dask")
        return 0
    ferries = None
    if args.synthetic:
        if args.outline is not None:
            raise ValidationError("--synthetic 与 --outline 只能选一个", fix="去掉其中一个参数")
        from geodata.outlines_synth import synthetic_ferries, synthetic_outline

        outline = synthetic_outline(args.synthetic)
        ferries = synthetic_ferries(args.synthetic)
    else:
        outline = load_outline(args.outline, county=args.county, coords=args.coords)
        if args.outline is not None:
            print(f"县界坐标：{outline.attrs['datum_check']}")
    if args.ferries is not None:
        from geodata.demo import load_lines

        ferries = load_lines(args.ferries, coords=args.coords)
    ws = write_demo(args.path, outline=outline, households=args.households or 110_000, seed=args.seed,
                    ferries=ferries, overwrite=args.force)
    from grids.auth import DEMO_PASSWORD, create_demo_accounts
    from grids.pipeline import prepare_plan

    report = prepare_plan(ws, name="main", publish=True, actor="demo",
                          progress=lambda msg: print(f"  {msg}", flush=True))
    from geodata.demo import visits_to_plan_staff

    moved = visits_to_plan_staff(ws, report.plan_id, actor="demo")
    from geodata.demo_sessions import add_sessions  # the panels and votes behind the grants (issue 15)
    rated = add_sessions(ws, report.plan_id, seed=args.seed)
    accounts = create_demo_accounts(ws)
    meta = ws.meta
    counts = {layer: ws.count(layer) for layer in
              ("admin_units", "streets", "branches", "staff", "households", "visits")}
    print(f"已生成演示工作区 {args.path}：{meta['county_name']}（{meta['county_code']}），"
          f"{counts['households']} 户，{counts['branches']} 个网点，{counts['staff']} 名员工，"
          f"{counts['admin_units']} 个行政区划单元，{counts['streets']} 条道路，{counts['visits']} 条走访记录；"
          f"用时 {time.perf_counter() - t0:.1f} 秒")
    s = report.assignment.summary
    from grids.check import errors, warnings

    bad, notes = errors(report.problems), warnings(report.problems)
    state = "已发布" if report.published else f"草稿（检查发现 {len(bad)} 个错误，未发布）"
    print(f"网格方案 main：{len(report.assignment.grids)} 个网格，{state}；客户经理负荷最大差 "
          f"{s['staff_spread_max']:.0%}，网点辖区均为一块：{s['max_branch_pieces'] == 1}")
    print(f"历史走访记录按方案记到各网格的客户经理（{moved:,} 条改了走访人）")
    print(f"集中授信评定会 {rated['sessions']} 场、评定 {rated['decisions']:,} 户（{rated['escalated_approved']:,} 户超过网点"
          f"审批权限、经贷审会审批；{rated['pending']} 户待贷审会审批）")
    def span(role: str) -> str:
        names = sorted(accounts.loc[accounts["role"] == role, "username"].astype(str))
        return f"{names[0]}…{names[-1]}" if len(names) > 1 else "".join(names)

    print(f"演示账号 {len(accounts)} 个（admin、leader、planner、网点主任 {span('branch_manager')}、客户经理 "
          f"{span('customer_manager')}；客户经理的账号名是其员工编号，不连续；柜员 {span('teller')}、贷审会 "
          f"{span('credit_committee')}），演示密码：{DEMO_PASSWORD}")
    if len(bad):
        print(bad[["kind", "message"]].head(20).to_string(index=False))
    if len(notes):
        print(f"检查警告 {len(notes)} 个（不阻止发布），原因和修正方法见 python -m grids check {args.path}")
    return 0
