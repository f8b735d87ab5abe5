"""``python -m grids migrate SRC DST --user NAME [--force] [--keep-demo-accounts]``: copy a workspace between backends.

SRC and DST are each a GeoPackage path or a PostgreSQL URL (``postgresql://user@host:5432/db?schema=name``):
GeoPackage → PostGIS, PostGIS → GeoPackage, or GeoPackage → GeoPackage. Every layer (every row, every column
including those added by importers, geometry exactly), the audit trail and the metadata (county, revision) are
copied in one transaction on the destination: it holds the whole copy or is left as it was. A destination that
already holds data is replaced only with ``--force``.

The card key (:mod:`grids.cardkey`) is never copied into the destination: for a GeoPackage destination the
source's sidecar key file is copied beside it; a PostGIS destination needs ``GRIDS_CARD_KEY`` set to the source's
key (the command says how). A key the source still kept in its metadata is first moved out of it (audited).

A demo workspace is the one exception to "losslessly": its accounts that still have the public demo password
(:data:`grids.auth.DEMO_PASSWORD`) and its demo flag (which shows the login hint) are not copied unless
``keep_demo_accounts`` (``--keep-demo-accounts``); the destination's audit records what was left out.

The command needs ``--user`` of an administrator of the source (the copy carries every account and every
household in full); the source's audit records the migration, under that account, before anything is copied.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from grids import cardkey
from grids.auth import DEMO_PASSWORD
from grids.commands._identity import add_user_argument, sign_in
from grids.errors import ValidationError, WorkspaceError
from grids.model import LAYERS
from grids.workspace import GpkgWorkspace, Transaction, Workspace, open_workspace
from grids.workspace.base import META_TABLE, _q
from grids.workspace.postgis import PgWorkspace, _mask, pg_type, split_url

_PG_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_pg_url(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` is a PostgreSQL URL rather than a GeoPackage path.

    Examples
    --------
    >>> is_pg_url("postgresql://u@h/db?schema=ws"), is_pg_url("workspace/demo.gpkg")
    (True, False)
    """
    return str(target).startswith(_PG_PREFIXES)


def migrate(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, force: bool = False,
            keep_demo_accounts: bool = False, actor: str = "migrate") -> dict[str, int]:
    """Copy the workspace ``src`` to ``dst`` (GeoPackage path or PostgreSQL URL, either way round).

    Parameters
    ----------
    src : str or path-like
        An existing workspace.
    dst : str or path-like
        Where to write the copy: a GeoPackage path (written to a temporary file and moved into place) or a
        PostgreSQL URL (created in one transaction, in the schema named by ``?schema=``, default ``public``).
    force : bool
        Replace a destination that already holds a workspace with data (or any other file).
    keep_demo_accounts : bool
        For a demo source: copy its demo accounts (those with the public demo password) and its demo flag too.
        By default they are left out, and one audit row on the destination (under ``actor``) names them.
    actor : str
        Who migrates, for that audit row.

    Returns
    -------
    dict
        Rows copied per layer.

    Raises
    ------
    WorkspaceError
        The destination holds data and ``force`` is false, or a backend cannot be reached.
    """
    source = open_workspace(src)
    if _same_target(src, dst):
        raise ValidationError("源和目标是同一个工作区", fix="给出另一个目标路径或 PostgreSQL 模式（?schema=…）")
    if not force:
        _refuse_non_empty(dst)
    cardkey.migrate_legacy(source, actor=actor)  # a key still in the source's metadata leaves it first
    meta = dict(source.meta)
    meta.pop(cardkey.LEGACY_META_KEY, None)  # never into the destination
    layers = source.layers()
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        raise ValidationError(
            f"源工作区有未声明的图层：{', '.join(unknown)}，无法无损迁移",
            fix="先在 grids.model.LAYERS 中声明这些图层，或在 QGIS 中删除它们",
        )
    dropped: list[str] = []
    drop_demo = source.is_demo and not keep_demo_accounts
    if drop_demo:
        meta["demo"] = "0"
    counts: dict[str, int] = {}
    with _destination(dst, meta=meta) as (tx, is_pg):
        for name in layers:
            frame = source.read(name)
            if name == "accounts" and drop_demo:
                demo = demo_password_accounts(frame)
                dropped = frame.loc[demo, "username"].astype(str).tolist()
                frame = frame.loc[~demo]
            _add_extra_columns(tx, name, source.columns(name), is_pg=is_pg)
            counts[name] = tx._insert(name, frame)
    cardkey.copy_sidecar(source, dst)
    if drop_demo:
        with open_workspace(dst).transaction(actor=actor, action="迁移") as tx:
            tx.note("accounts", {"op": "drop_demo_accounts", "usernames": dropped[:200], "count": len(dropped),
                                 "demo_flag": "removed"})
    return counts


def demo_password_accounts(accounts: pd.DataFrame, *, password: str = DEMO_PASSWORD) -> pd.Series:
    """True for the accounts whose password is the public demo password (each distinct hash checked once).

    Examples
    --------
    >>> from grids.auth import hash_password
    >>> frame = pd.DataFrame({"username": ["admin", "b01", "own"],
    ...                       "password_hash": [hash_password(DEMO_PASSWORD)] * 2 + [hash_password("own-secret")]})
    >>> demo_password_accounts(frame).tolist()
    [True, True, False]
    """
    hasher = PasswordHasher()

    def is_demo(digest: str) -> bool:
        try:
            return hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False

    hashes = accounts["password_hash"].astype(str)
    verdict = {digest: is_demo(digest) for digest in hashes.unique()}
    return hashes.map(verdict).astype(bool)


def _same_target(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> bool:
    if is_pg_url(src) and is_pg_url(dst):
        return split_url(str(src)) == split_url(str(dst))
    if is_pg_url(src) or is_pg_url(dst):
        return False
    return Path(dst).exists() and Path(src).resolve() == Path(dst).resolve()


def _refuse_non_empty(dst: str | os.PathLike[str]) -> None:
    how = "修正方法：换一个目标，或加 --force（函数参数 force=True）覆盖"
    if is_pg_url(dst):
        try:
            ws = PgWorkspace(str(dst))
        except WorkspaceError:
            return  # no workspace in that schema yet (connection problems surface when writing)
        if not _is_empty(ws):
            raise WorkspaceError(f"目标 {ws} 里已有工作区数据（第 {ws.revision} 版）。{how}")
        return
    path = Path(dst)
    if not path.exists():
        return
    try:
        gpkg = GpkgWorkspace(path)
        empty = _is_empty(gpkg)
    except WorkspaceError:
        empty = False
    if not empty:
        raise WorkspaceError(f"目标文件 {path} 已存在且不是空工作区。{how}")


def _is_empty(ws: Workspace | PgWorkspace) -> bool:
    return ws.revision == 0 and all(ws.count(name) == 0 for name in ws.layers())


@contextlib.contextmanager
def _destination(dst: str | os.PathLike[str], *, meta: dict[str, str]) -> Iterator[tuple[Transaction, bool]]:
    """A fresh destination workspace and one open transaction on it; committed when the block ends.

    Writes go through ``Transaction._insert`` (no revision bump, no audit row): the source's metadata,
    revision included, and its audit trail are copied as they are.
    """
    if is_pg_url(dst):
        with PgWorkspace._build(str(dst), meta=meta, overwrite=True) as tx:
            yield tx, True
        return
    path = Path(dst)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".migrate", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        ws = GpkgWorkspace.create(tmp, county_code=meta.get("county_code", ""), county_name=meta.get("county_name", ""))
        with ws.transaction(actor="migrate", action="迁移") as tx:
            tx.execute(f"DELETE FROM {META_TABLE}")
            for key, value in meta.items():
                tx.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)", (key, value))
            yield tx, False
            tx.changed = False  # a copy, not a change: keep the source's revision, add no audit row
            tx._notes.clear()
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _add_extra_columns(tx: Transaction, layer: str, types: dict[str, str], *, is_pg: bool) -> None:
    """Create the source's extra columns with their declared types (a DATE column stays DATE)."""
    declared = LAYERS[layer].columns
    existing = set(tx.read(layer).columns)
    for col, sql_type in types.items():
        if col not in declared and col not in existing:
            col_type = pg_type(sql_type) if is_pg else sql_type
            tx._con.execute(f"ALTER TABLE {_q(layer)} ADD COLUMN {_q(col)} {col_type}")


# --------------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "migrate",
        help="在 GeoPackage 与 PostGIS 之间无损复制工作区 / copy a workspace between backends",
        description="SRC、DST 可以是 .gpkg 路径或 postgresql://用户@主机:端口/数据库?schema=模式 地址。"
                    "需要源工作区管理员账号（--user）；演示工作区的演示账号和演示标志默认不复制。",
    )
    p.add_argument("src", metavar="SRC", help="源工作区 / source workspace")
    p.add_argument("dst", metavar="DST", help="目标工作区 / destination")
    p.add_argument("--force", action="store_true", help="覆盖已有数据的目标 / replace a non-empty destination")
    p.add_argument("--keep-demo-accounts", action="store_true",
                   help="演示工作区：连同演示账号（公开的演示密码）和演示标志一起复制 / keep the demo accounts")
    add_user_argument(p)


def _shown(target: str) -> str:
    """A target for messages and the audit: a PostgreSQL URL without its password."""
    return _mask(target) if is_pg_url(target) else str(target)


def run(args: argparse.Namespace) -> int:
    source = open_workspace(args.src)
    account = sign_in(source, args.user, permission="manage_accounts")
    if _same_target(args.src, args.dst):
        raise ValidationError("源和目标是同一个工作区", fix="给出另一个目标路径或 PostgreSQL 模式（?schema=…）")
    if not args.force:
        _refuse_non_empty(args.dst)  # refused before the source's audit records a migration
    before = set(source.read("accounts", columns=["username"])["username"].astype(str))
    with source.transaction(actor=account.username, action="迁移") as tx:  # audited before anything leaves
        tx.note("workspace", {"op": "migrate", "to": _shown(args.dst), "keep_demo_accounts": args.keep_demo_accounts})
    counts = migrate(args.src, args.dst, force=args.force, keep_demo_accounts=args.keep_demo_accounts,
                     actor=account.username)
    dst = open_workspace(args.dst)
    total = sum(counts.values())
    print(f"已迁移 {len(counts)} 个图层、共 {total} 行到 {_shown(args.dst)}（第 {dst.revision} 版）：")
    print(pd.Series(counts, name="行数").to_string())
    notice = cardkey.migrate_notice(source, args.dst)
    if notice:
        print(notice)
    if source.is_demo and not args.keep_demo_accounts:
        kept = set(dst.read("accounts", columns=["username"])["username"].astype(str))
        dropped = sorted(before - kept)
        print(f"源是演示工作区：未复制 {len(dropped)} 个使用公开演示密码的演示账号"
              f"{'（' + '、'.join(dropped[:5]) + ('…' if len(dropped) > 5 else '') + '）' if dropped else ''}"
              "和演示标志（登录页不再提示演示账号）；已记入目标的审计。要保留请加 --keep-demo-accounts")
        if not dst.count("accounts", where="role = 'admin' AND active"):
            print("目标里没有管理员账号：请用 python -m grids accounts add 为目标创建第一个管理员"
                  "（python -m grids accounts --help）")
    elif source.is_demo:
        print("注意：已按 --keep-demo-accounts 保留演示账号和演示标志，演示密码是公开的，勿用于真实数据")
    return 0
