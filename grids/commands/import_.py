"""``python -m grids import PATH LAYER FILE --user NAME``: import a user file into a workspace layer.

The account needs the ``import`` permission (administrator, planner); the audit records it.
Exit codes: 0 every row imported; 1 some rows rejected (the others imported, or nothing with ``--strict``);
2 the file or workspace could not be used at all, or the account may not import (nothing changed).

Registers keyed by names: households and visits may give the village (村/嘎查/社区) and group (组) by name
instead of code, matched within the town of a 乡镇 column (else ``--town``); unknown and ambiguous names go
to the rejects file with the closest candidates. ``--names mapping.csv`` confirms names once (kept in the
workspace, used by every later import), after which the rejects file imports as it is.
``--mode update`` changes existing households by 户号 (only the filled cells; audited before/after).

After a households import into a workspace whose villages are derived from their seats, the villages are derived
again (:func:`grids.villages.rederive_villages`, one more audited transaction): they take in the households just
located, and groups named in the register get polygons where a village has enough located households.

``surveys`` (农户信息采集, an xlsx or CSV with the Chinese headers of a surveys export): the account needs no
``import`` permission but must record surveys (customer managers for their grids, branch managers for their
branch, administrators); rows of households outside its scope are rejected, the others saved as each
household's next version in one transaction (:meth:`grids.scope.ScopedWorkspace.import_surveys`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from grids.commands._identity import add_user_argument, sign_in
from grids.errors import ValidationError
from grids.ingest import COORDS, IMPORTABLE_LAYERS, MODES, import_file
from grids.workspace import open_workspace

if TYPE_CHECKING:
    from grids.auth import Account


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``import`` command."""
    p = subparsers.add_parser(
        "import",
        help="导入数据文件（GeoPackage/Shapefile/GeoJSON/KML/CSV/XLSX），逐行校验，输出拒绝行",
        description="把一个数据文件导入工作区的一个图层：逐行校验，合格的行在一个事务中写入，"
                    "不合格的行写入拒绝文件（CSV，Excel 可直接打开）。",
    )
    p.add_argument("path", metavar="PATH", help="工作区文件（.gpkg）")
    p.add_argument("layer", metavar="LAYER", choices=(*IMPORTABLE_LAYERS, "surveys"),
                   help=f"目标图层：{', '.join(IMPORTABLE_LAYERS)}, surveys（农户信息采集）")
    p.add_argument("file", metavar="FILE", help="要导入的文件")
    p.add_argument("--coords", choices=tuple(COORDS), default=None,
                   help="输入坐标的基准：wgs84（GPS）、cgcs2000（天地图）、gcj02（高德/腾讯）；不写时按 WGS84 读取，"
                        "并对照本县村/组范围检查是否像未声明的高德坐标（像则拒绝导入并提示）")
    p.add_argument("--encoding", help="CSV 或缺少 .cpg 的 Shapefile 的文字编码，例如 gbk（默认自动识别）")
    p.add_argument("--rejects", metavar="OUT",
                   help="拒绝行写到这里（CSV）；默认写在输入文件旁边：<文件名>.rejects.csv")
    p.add_argument("--strict", action="store_true", help="只要有一行被拒绝就什么都不导入")
    p.add_argument("--map", metavar="SRC=DST", nargs="+", action="extend", default=[],
                   help="指定列对应关系，例如 --map 户号=hh_id 东经=lon")
    p.add_argument("--layer-name", help="文件中的图层名（GeoPackage）或工作表名（XLSX）")
    p.add_argument("--mode", choices=tuple(MODES),
                   help="append 追加 / replace 替换 / update 按户号更新已有农户（只改文件里填了的格）；"
                        "默认 households、visits 追加，其他图层替换")
    p.add_argument("--names", metavar="MAPPING",
                   help="名称对照表（CSV/XLSX，列：乡镇,登记名称,行政区划代码 或 标准名称）：确认登记表里的村名/组名写法，"
                        "存入工作区，本次和以后的导入都自动采用")
    p.add_argument("--town", metavar="TOWN",
                   help="按村名导入时，没有“乡镇”列（或该格为空）的行所在的乡镇（名称或 9 位代码）")
    p.add_argument("--legacy", action="store_true",
                   help="农户：不符合现行产品规则的授信是规则实行前的历史授信，照样导入并标记（credit_legacy），"
                        "check --credit 列为警告；不加时这些行被拒绝并写明违反的规则")
    add_user_argument(p)
    return p


def _mapping(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValidationError(f"--map 的写法不对：“{pair}”", fix="写成 源列名=目标列名，例如 --map 户号=hh_id")
        out[src.strip()] = dst.strip()
    return out


def _rederive(target: str, account: Account) -> None:
    """Villages derived from their seats take in the households just located, and groups with enough located
    households get polygons (:func:`grids.villages.rederive_villages`); nothing when no village is derived."""
    from grids.villages import rederive_villages

    ws = open_workspace(target)
    if not ws.count("seats") or not ws.count("admin_units", where="derived"):
        return
    result = rederive_villages(ws, account=account)
    groups = int((result.units["level"] == "group").sum())
    print(f"已按新定位的住户重新推算村界（{len(result.villages)} 个村，{groups} 个组有了推算组界"
          f"{f'，{len(result.beyond)} 户未并入' if len(result.beyond) else ''}）")


def run(args: argparse.Namespace) -> int:
    """Run the import and print the warnings and the summary; returns the exit code."""
    if args.layer == "surveys":
        return _run_surveys(args)
    account = sign_in(open_workspace(args.path), args.user, permission="import")
    source = Path(args.file)
    rejects = Path(args.rejects) if args.rejects else source.with_name(source.stem + ".rejects.csv")
    report = import_file(
        args.path, args.layer, source, coords=args.coords, encoding=args.encoding, mapping=_mapping(args.map),
        strict=args.strict, rejects_path=rejects, account=account, mode=args.mode, layer_name=args.layer_name,
        names=args.names, town=args.town, legacy=args.legacy,
    )
    for note in report.warnings:
        print(f"提示：{note}")
    print(report.summary())
    if args.layer == "households" and report.written and report.imported:
        _rederive(args.path, account)
    if report.rejects_path is not None:
        print(f"被拒绝的行（含原因和修正方法）已写入：{report.rejects_path}")
    template = report.names_template_csv()
    if template:
        out = rejects.with_name(rejects.stem.removesuffix(".rejects") + ".names.csv")
        try:
            out.write_bytes(template)
        except OSError as exc:
            print(f"提示：无法写出名称对照表模板 {out}：{exc.strerror or exc}")
        else:
            print(f"无法识别的村名/组名及候选已写入名称对照表模板：{out}；填写“行政区划代码”后用 --names 导入，"
                  f"再重新导入 {report.rejects_path or '拒收文件'}")
    return 1 if report.rejected else 0


def _run_surveys(args: argparse.Namespace) -> int:
    """``import PATH surveys FILE``: scoped to the account (the library decides), rejects beside the file."""
    from grids.scope import ScopedWorkspace

    ws = open_workspace(args.path)
    account = sign_in(ws, args.user)
    sw = ScopedWorkspace(ws, account, require_plan=not account.can("read_all"))
    report = sw.import_surveys(args.file, sheet=args.layer_name, strict=args.strict, rejects_path=args.rejects)
    for note in report.warnings:
        print(f"提示：{note}")
    print(report.summary())
    if report.rejects_path is not None:
        print(f"被拒绝的行（含原因和修正方法）已写入：{report.rejects_path}")
    return 1 if report.rejected else 0
