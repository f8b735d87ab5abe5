"""``python -m grids audit verify|head PATH``: check the audit hash chain, or print its head.

``verify`` exits 0 when every row's hash matches its content and the row before it, 1 naming the first broken
row (fid, time, actor). Both only read (no ``--user``); PATH may also be a ``postgresql://`` URL. Opening a
workspace made by an older version upgrades it first (see :mod:`grids.workspace`).
"""

from __future__ import annotations

import argparse

from grids.audit import chain_head, verify
from grids.workspace import open_workspace


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="审计记录：校验哈希链、显示链头 / check the audit trail")
    actions = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    v = actions.add_parser("verify", help="校验审计哈希链（完整 0，被改动 1）/ verify the hash chain")
    v.add_argument("path", help="工作区文件 (.gpkg) 或 postgresql:// 地址")
    h = actions.add_parser("head", help="显示审计链头（与留存的副本比对）/ print the chain head")
    h.add_argument("path", help="工作区文件 (.gpkg) 或 postgresql:// 地址")


def run(args: argparse.Namespace) -> int:
    ws = open_workspace(args.path)
    if args.audit_command == "head":
        print(f"审计链头：{chain_head(ws)}")
        return 0
    result = verify(ws)
    print(result.message())
    return 0 if result.ok else 1
