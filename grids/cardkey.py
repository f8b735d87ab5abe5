"""The card-number key (卡号密钥): the secret of the keyed hash under which a workspace keeps card numbers.

Signing a card (:func:`grids.credit_events.sign`) stores the card number only as an HMAC-SHA256 under this key
plus its last four digits. A card number is 12–19 digits of which the bank (BIN) and the last four are known, so
whoever holds both the hashes and the key can try every card in seconds: the key therefore never lives in the
workspace. This module is the one home of where it lives (:func:`card_key`), first that exists:

1. the environment variable :data:`ENV_KEY` (``GRIDS_CARD_KEY``): hex or base64, at least :data:`MIN_BYTES`
   bytes once decoded;
2. the environment variable :data:`ENV_KEY_FILE` (``GRIDS_CARD_KEY_FILE``): the path of a file holding such a key;
3. for a GeoPackage, the sidecar file ``<workspace>.gpkg.cardkey`` beside it (:func:`sidecar_path`), created
   (mode 0600, 32 random bytes as hex) the first time a key is needed. A PostGIS workspace has no sidecar: it
   needs one of the environment variables (else :class:`CardKeyError`).

A key is never made anew for a workspace that already holds card records (their hashes would stop matching):
that is a :class:`CardKeyError` saying where the key should be. Nor is a wrong key used: the workspace keeps a
key check value (:data:`CHECK_META_KEY`, :func:`key_check`: 16 hex digits of an HMAC of a fixed text under the
key, which tells nothing about the key or any card), recorded by the first signing (or the move out of the
metadata); while card records exist, a key whose check value differs (mistyped, truncated, another county's) is
refused instead of silently finding no card and hashing new cards under it. A workspace whose cards predate the
check value stays unchecked (no key is recorded on trust).

Workspaces written before this rule kept the key in their metadata (``ws_meta``, key :data:`LEGACY_META_KEY`).
The first time such a workspace needs its key, :func:`migrate_legacy` moves it out, once: to the sidecar (or, when
an environment key is set, it checks that key is the same; a different one is refused when card records exist),
deletes it from the metadata (a GeoPackage is then compacted so no stale copy stays in the file), and writes one
audit row :data:`MIGRATE_ACTION` that holds no key material.

Examples
--------
>>> sidecar_path("workspace/demo.gpkg").as_posix()
'workspace/demo.gpkg.cardkey'
>>> sidecar_path("postgresql://grids@db/county?schema=c150422") is None
True
>>> parse_key("ab" * 32, where="示例") == "ab" * 32
True
>>> parse_key("abcd", where="环境变量 GRIDS_CARD_KEY")
Traceback (most recent call last):
...
grids.cardkey.CardKeyError: 环境变量 GRIDS_CARD_KEY 中的卡号密钥太短（2 字节，至少 32 字节）。修正方法：用 python -c "import secrets; print(secrets.token_hex(32))" 生成一个新密钥（仅限尚无签约卡记录的工作区）
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from grids.errors import GridsError
from grids.workspace import GpkgWorkspace, Transaction, Workspace, is_pg_url
from grids.workspace.base import META_TABLE

__all__ = ["CHECK_META_KEY", "ENV_KEY", "ENV_KEY_FILE", "LEGACY_META_KEY", "MIGRATE_ACTION", "MIN_BYTES",
           "SIDECAR_SUFFIX", "CardKey", "CardKeyError", "card_key", "copy_sidecar", "external_key", "has_cards",
           "key_check", "migrate_legacy", "migrate_notice", "new_key", "parse_key", "record_check", "sidecar_path",
           "write_key_file"]

ENV_KEY = "GRIDS_CARD_KEY"
"""Environment variable holding the card key itself (hex or base64)."""
ENV_KEY_FILE = "GRIDS_CARD_KEY_FILE"
"""Environment variable naming a file that holds the card key."""
SIDECAR_SUFFIX = ".cardkey"
"""Appended to a GeoPackage's file name: its key file beside it."""
LEGACY_META_KEY = "card_hash_key"
"""Metadata key under which workspaces written before this module kept the card key (moved out on first need)."""
MIGRATE_ACTION = "迁移卡号密钥"
"""The audit action of the one-time move of the key out of the workspace."""
MIN_BYTES = 32
"""Least length of a key, in bytes once decoded."""
CHECK_META_KEY = "card_key_check"
"""Metadata key of the key check value (:func:`key_check`): lets a wrong key be refused, reveals nothing."""
_MAX_FILE = 4096
"""Largest key file read (a key is 64 hex digits): a sidecar linked to /dev/zero or a huge file is refused."""
EVENTS_TABLE = "credit_events"
"""The table whose ``card_hash`` column holds the hashes (:data:`grids.credit_events.EVENTS_LAYER`)."""
_NEW_KEY_HOW = '用 python -c "import secrets; print(secrets.token_hex(32))" 生成一个新密钥'
_PG_HOW = (f"设置环境变量 {ENV_KEY}（至少 {MIN_BYTES} 字节的十六进制或 base64，{_NEW_KEY_HOW}），"
           f"或用 {ENV_KEY_FILE} 指向存放密钥的文件（权限 600）；密钥与数据库分开保存、一同备份")


class CardKeyError(GridsError):
    """The card key cannot be found, read or used (the message says where it should be and how to set it)."""


@dataclass(frozen=True)
class CardKey:
    """A card key and where it was found.

    Attributes
    ----------
    hex : str
        The key, as hex (what :func:`grids.credit_events.card_hash` takes).
    where : str
        Where it lives, for messages (``环境变量 GRIDS_CARD_KEY``, ``密钥文件 …``); never the key itself.
    path : Path or None
        The file it was read from (``GRIDS_CARD_KEY_FILE``'s or the sidecar), None for the environment.
    sidecar : bool
        True when ``path`` is the workspace's sidecar.
    """

    hex: str
    where: str
    path: Path | None = None
    sidecar: bool = False


def new_key() -> str:
    """A fresh random key: 32 bytes as 64 hex characters."""
    return secrets.token_hex(32)


def parse_key(text: str, *, where: str) -> str:
    """The key written in ``text`` (hex, else base64; blanks around it ignored) as hex.

    CardKeyError naming ``where`` (never the value) when it is neither or shorter than :data:`MIN_BYTES` bytes.
    """
    s = "".join(str(text).split())
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", s):
        s = s[2:]
    raw: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]+", s):  # hex digits only: hex, never base64 (a 63-digit hex is not a key)
        if len(s) % 2:
            raise CardKeyError(f"{where} 中的卡号密钥位数不对（{len(s)} 位十六进制，应为偶数位，像是少复制或多复制了"
                               "一位）。修正方法：重新完整复制原密钥（通常是 64 位十六进制）")
        raw = bytes.fromhex(s)
    else:  # base64, standard or URL-safe alphabet, padding optional
        with contextlib.suppress(binascii.Error, ValueError):
            padded = s.replace("-", "+").replace("_", "/") + "=" * (-len(s) % 4)
            raw = base64.b64decode(padded, validate=True)
    if not raw:
        raise CardKeyError(f"{where} 中的卡号密钥无法识别（应为十六进制或 base64）。修正方法：{_NEW_KEY_HOW}"
                           "（仅限尚无签约卡记录的工作区；已有记录的须用原密钥）")
    if len(raw) < MIN_BYTES:
        raise CardKeyError(f"{where} 中的卡号密钥太短（{len(raw)} 字节，至少 {MIN_BYTES} 字节）。修正方法："
                           f"{_NEW_KEY_HOW}（仅限尚无签约卡记录的工作区）")
    return raw.hex()


def sidecar_path(target: str | os.PathLike[str]) -> Path | None:
    """The key file beside GeoPackage ``target`` (``<file>.cardkey``); None for a PostGIS URL."""
    if is_pg_url(target):
        return None
    p = Path(target)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def _read_file(path: Path, *, where: str) -> str:
    try:
        if not path.is_file():  # a dangling link, a directory, a device or pipe (which would block or never end)
            raise OSError(0, "不存在或不是普通文件")
        with path.open("rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as exc:
        raise CardKeyError(f"无法读取{where}（{exc.strerror or exc}）。修正方法：检查该文件是否存在、"
                           "是普通文件（不是失效的链接）、运行网格通的账号能否读取") from None
    if len(data) > _MAX_FILE:
        raise CardKeyError(f"{where} 太大（超过 {_MAX_FILE} 字节），不是卡号密钥文件。修正方法：检查该路径")
    return parse_key(data.decode("ascii", errors="replace"), where=where)


def external_key(target: str | os.PathLike[str]) -> CardKey | None:
    """The key for workspace ``target`` from outside it (environment, key file, sidecar), or None when none of
    them exists. Never creates anything; CardKeyError when a source exists but is unreadable or malformed."""
    env = os.environ.get(ENV_KEY)
    if env is not None and env.strip():
        return CardKey(parse_key(env, where=f"环境变量 {ENV_KEY}"), f"环境变量 {ENV_KEY}")
    named = os.environ.get(ENV_KEY_FILE)
    if named is not None and named.strip():
        path = Path(named.strip()).expanduser()
        where = f"密钥文件 {path}（环境变量 {ENV_KEY_FILE}）"
        if not path.is_file():
            raise CardKeyError(f"环境变量 {ENV_KEY_FILE} 指向的密钥文件 {path} 不存在。修正方法：改正路径，"
                               f"或取消该变量；新工作区可{_NEW_KEY_HOW}写入该文件（权限 600）")
        return CardKey(_read_file(path, where=where), where, path)
    side = sidecar_path(target)
    if side is not None and (side.exists() or side.is_symlink()):  # a dangling link is an error, never replaced
        return CardKey(_read_file(side, where=f"密钥文件 {side}"), f"密钥文件 {side}", side, sidecar=True)
    return None


def write_key_file(path: Path, key: str, *, overwrite: bool = False) -> bool:
    """Write ``key`` (hex) to ``path`` with mode 0600, atomically; returns False when ``path`` already existed and
    ``overwrite`` is false (the file is then left as it is: a concurrent writer's key wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # never replaces: the first writer's key stays
        except FileExistsError:
            return False
        except OSError as exc:  # no hard links here (FAT, some SMB/CIFS shares): create the file exclusively
            if exc.errno not in _NO_LINKS:
                raise
            return _create_exclusive(path, key)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK}
"""``os.link`` errors of a file system without hard links."""


def _create_exclusive(path: Path, key: str) -> bool:
    """Write ``key`` to a new ``path`` (mode 0600; never through a link); False when it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    return True


def _write_sidecar(side: Path, key: str) -> None:
    """:func:`write_key_file` for a workspace's sidecar, an OSError (read-only directory, disk full) as a
    CardKeyError: the workspace is left as it was (a legacy key stays where it was until the file is written)."""
    try:
        write_key_file(side, key)
    except OSError as exc:
        raise CardKeyError(f"无法写入密钥文件 {side}（{exc.strerror or exc}）。修正方法：让运行网格通的账号能在"
                           f"工作区所在目录创建文件，或设置环境变量 {ENV_KEY} / {ENV_KEY_FILE}") from None


def has_cards(ws: Workspace) -> bool:
    """True when the workspace holds card hashes (a key made now would not match them)."""
    if EVENTS_TABLE not in ws.layers() or "card_hash" not in ws.columns(EVENTS_TABLE):
        return False
    return ws.count(EVENTS_TABLE, where="card_hash IS NOT NULL AND card_hash <> ''") > 0


def _missing(ws: Workspace) -> CardKeyError:
    side = sidecar_path(ws.target)
    place = f"密钥文件 {side}，或环境变量 {ENV_KEY} / {ENV_KEY_FILE}" if side else f"环境变量 {ENV_KEY} / {ENV_KEY_FILE}"
    restore = f"把与工作区一同备份的密钥文件复制为 {side}，或设置环境变量 {ENV_KEY}" if side \
        else f"把环境变量 {ENV_KEY}（或 {ENV_KEY_FILE}）设为这个工作区原来的密钥"
    return CardKeyError(f"工作区已有签约卡记录，但找不到它的卡号密钥（应在{place}），无法按卡号查找或签约。"
                        f"修正方法：{restore}；不要新建密钥，否则已有的卡都再也查不到")


@overload
def card_key(ws: Workspace, *, create: Literal[True] = ..., actor: str = ...) -> str: ...


@overload
def card_key(ws: Workspace, *, create: bool, actor: str = ...) -> str | None: ...


def card_key(ws: Workspace, *, create: bool = True, actor: str = "system") -> str | None:
    """The card key of ``ws`` (hex), by the rule of this module.

    Parameters
    ----------
    ws : Workspace
    create : bool
        Make the key when none exists yet (a GeoPackage's sidecar). With False, None is returned instead.
    actor : str
        Who the audit row of a one-time move out of the metadata (:func:`migrate_legacy`) names.

    Raises
    ------
    CardKeyError
        The workspace holds card records but its key is nowhere (never made anew); a PostGIS workspace without
        an environment key (when one is to be made); a key source that is unreadable or malformed; a metadata
        key that differs from the environment's while card records exist.
    """
    moved = migrate_legacy(ws, actor=actor)
    if moved is not None:
        return _checked(ws, moved)
    found = external_key(ws.target)
    if found is not None:
        return _checked(ws, found)
    if has_cards(ws):
        raise _missing(ws)
    if not create:
        return None
    side = sidecar_path(ws.target)
    if side is None:
        raise CardKeyError(f"PostGIS 工作区的卡号密钥不放在数据库里，现在没有设置。修正方法：{_PG_HOW}")
    _write_sidecar(side, new_key())
    made = external_key(ws.target)  # read back: a concurrent first use may have written its key first
    if made is None:  # removed again in between
        raise CardKeyError(f"密钥文件 {side} 刚写入就不见了。修正方法：检查是否有别的程序在删除该目录中的文件，再重试")
    return made.hex


def key_check(key: str) -> str:
    """The check value of key ``key`` (hex): 16 hex digits of HMAC-SHA256 of a fixed text under it. Kept in the
    workspace so that a wrong key is refused; a one-way value of a 256-bit key, it helps no one find the key.

    >>> key_check("00" * 32) == key_check("00" * 32) != key_check("01" * 32)
    True
    """
    return hmac.new(bytes.fromhex(key), b"grids card key check v1", hashlib.sha256).hexdigest()[:16]


def _checked(ws: Workspace, found: CardKey) -> str:
    """``found``'s key, unless the workspace's check value says it is another key while card records exist."""
    stored = ws.meta.get(CHECK_META_KEY)
    if stored and stored != key_check(found.hex) and has_cards(ws):
        raise CardKeyError(f"{found.where} 中的卡号密钥不是这个工作区的密钥（与工作区记录的密钥校验值不符）：用它既查不到"
                           "已签约的卡，新签的卡以后也查不到，已拒绝。修正方法：改用这个工作区原来的密钥"
                           "（与工作区一同备份的 .cardkey 文件，或原来的环境变量值；注意完整复制）")
    return found.hex


def record_check(tx: Transaction, key: str, *, known: bool = False) -> None:
    """Record ``key``'s check value (:func:`key_check`) in the workspace, within ``tx`` (a signing's, before its
    card is written).

    CardKeyError when another key's check value is recorded and card records exist (a concurrent first signing
    under another key got in first). Where card records exist but no check value yet (workspaces written before
    it), nothing is recorded unless ``known`` (the key is known to be theirs: the one moved out of the metadata):
    a mistyped key must never become the recorded one.
    """
    value = key_check(key)
    row = tx._con.execute(f"SELECT value FROM {META_TABLE} WHERE key = ?", (CHECK_META_KEY,)).fetchone()
    if row is not None and row[0] == value:
        return
    tx._layer_schema(EVENTS_TABLE)  # exists from the first signing on (created here when this is it)
    cards = tx._con.execute(
        f"SELECT 1 FROM {EVENTS_TABLE} WHERE card_hash IS NOT NULL AND card_hash <> '' LIMIT 1").fetchone()
    if cards and row is not None and row[0]:
        raise CardKeyError("另一个签约刚用另一个卡号密钥签了卡（与工作区记录的密钥校验值不符），已拒绝本次签约。"
                           "修正方法：所有使用这个工作区的程序用同一个密钥（同一个 .cardkey 文件或同样的环境变量），再重试")
    if cards and not known:
        return
    tx.execute(f"DELETE FROM {META_TABLE} WHERE key = ?", (CHECK_META_KEY,))
    tx.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)", (CHECK_META_KEY, value))


def migrate_legacy(ws: Workspace, *, actor: str = "system") -> CardKey | None:
    """Move a key kept in the workspace's metadata (workspaces written before this module) out of it, once.

    The key goes to the sidecar (GeoPackage without an environment key); with an environment key set, that key
    must be the same when card records exist (else CardKeyError naming both sources: never a silent re-key). The
    metadata row is then deleted (a GeoPackage is compacted so no stale copy stays in the file) and one audit row
    :data:`MIGRATE_ACTION` records the move, with no key material. Returns the key now in force, or None when
    the metadata held none (nothing done: idempotent).
    """
    stored = ws.meta.get(LEGACY_META_KEY)
    if stored is None:
        return None
    try:
        legacy: str | None = parse_key(stored, where="工作区元数据")
    except CardKeyError:
        legacy = None  # unusable: nothing to keep
    cards = has_cards(ws)
    found = external_key(ws.target)
    side = sidecar_path(ws.target)
    if found is not None:
        if cards and found.hex != legacy:
            keep = f"取消{found.where}的设置（网格通会把旧密钥移到 {side}）" if side and not found.sidecar \
                else f"把{found.where}改为这个工作区原来的密钥"
            raise CardKeyError(f"工作区元数据里的旧卡号密钥与{found.where}中的密钥不同，而工作区已有签约卡记录："
                               f"换用新密钥后这些卡都再也查不到，已拒绝迁移。修正方法：{keep}，再重试")
        key = found
    elif legacy is None:
        if cards:
            raise _missing(ws)
        key = None
    elif side is not None:
        _write_sidecar(side, legacy)
        written = external_key(ws.target)
        assert written is not None
        if cards and written.hex != legacy:  # someone else's key landed first
            raise CardKeyError(f"密钥文件 {side} 中的密钥与工作区元数据里的旧密钥不同，而工作区已有签约卡记录，"
                               f"已拒绝迁移。修正方法：核对 {side} 是否属于这个工作区；删除它后重试即可迁移旧密钥")
        key = written
    else:
        raise CardKeyError("这个 PostGIS 工作区的卡号密钥还存放在数据库里（ws_meta 表），须移到数据库之外。"
                           f"修正方法：把环境变量 {ENV_KEY} 设为它（在 psql 中 SELECT value FROM ws_meta WHERE "
                           f"key = '{LEGACY_META_KEY}' 可查到），再重试；网格通随后会把它从数据库中删除")
    with ws.transaction(actor=actor, action=MIGRATE_ACTION) as tx:
        if isinstance(ws, GpkgWorkspace):
            tx._con.execute("PRAGMA secure_delete = ON")  # the freed bytes are overwritten, not left in the file
        if tx._con.execute(f"SELECT 1 FROM {META_TABLE} WHERE key = ?", (LEGACY_META_KEY,)).fetchone():
            tx.execute(f"DELETE FROM {META_TABLE} WHERE key = ?", (LEGACY_META_KEY,))
            if key is not None and cards:
                record_check(tx, key.hex, known=True)
            tx.note(META_TABLE, {"op": "move_card_key", "key": LEGACY_META_KEY,
                                 "to": key.where if key is not None else "（旧密钥无法使用，已删除）",
                                 "card_records": cards})
    if isinstance(ws, GpkgWorkspace):
        _compact(ws)
    return key


def _compact(ws: GpkgWorkspace) -> None:
    """Rebuild the GeoPackage (VACUUM) so that no page keeps an old copy of the deleted key; best effort (a busy
    file stays as it is: the deleted row itself was already overwritten)."""
    with contextlib.suppress(sqlite3.Error), contextlib.closing(ws._connect()) as con:
        con.execute("VACUUM")


def copy_sidecar(source: Workspace, dst: str | os.PathLike[str]) -> bool:
    """After copying workspace ``source`` to GeoPackage ``dst``: copy its sidecar key file beside ``dst`` (mode
    0600, replacing a stale one). Returns True when a file was written; nothing for a PostGIS ``dst`` or a
    source whose key lives elsewhere (see :func:`migrate_notice`)."""
    side = sidecar_path(dst)
    found = external_key(source.target)
    if side is None or found is None or not found.sidecar:
        return False
    write_key_file(side, found.hex, overwrite=True)
    return True


def migrate_notice(source: Workspace, dst: str | os.PathLike[str]) -> str | None:
    """What the user must do so that the copy ``dst`` of ``source`` finds its card key (Chinese), or None."""
    found = external_key(source.target)
    if found is None:
        return None
    if sidecar_path(dst) is not None:
        if found.sidecar:
            return f"卡号密钥已复制为 {sidecar_path(dst)}（与工作区分开保存、一同备份）"
        return f"卡号密钥来自{found.where}：使用目标工作区时保持同样的设置（它不复制进工作区）"
    if found.sidecar:
        how = f"export {ENV_KEY}=$(cat '{found.path}')，或 export {ENV_KEY_FILE}=<存放该密钥的文件>"
    else:
        how = f"保持{found.where}不变"
    return (f"PostGIS 工作区不存放卡号密钥：使用目标前须把环境变量 {ENV_KEY} 设为源工作区的密钥（{how}），"
            "否则已有的卡都无法按卡号查到")
