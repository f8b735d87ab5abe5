"""Importing a file into a workspace (:func:`import_file`): read, validate, write the accepted rows in one
audited transaction; :func:`check_file` validates only."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyogrio

from grids import credit_events, loans
from grids import names as N
from grids.errors import ValidationError, WorkspaceError
from grids.ingest.context import Context
from grids.ingest.read import read_source, read_table
from grids.ingest.report import ImportReport
from grids.ingest.schema import KEYED_APPEND, layer_schema
from grids.ingest.update import update_households
from grids.ingest.validation import validate
from grids.text import plain, strip_controls
from grids.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from grids.auth import Account




def _workspace_failure(exc: BaseException, workspace: Any) -> WorkspaceError:
    """A one-line Chinese error for a workspace that cannot be read or written (nothing was changed)."""
    text = str(exc).lower()
    where = plain(getattr(workspace, "path", None) or workspace, limit=200)
    if "://" in where or "@" in where:  # a database URL may carry a password: never shown
        where = "工作区数据库"
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        why = f"工作区文件是只读的，无法写入（{where}）。修正方法：检查文件和所在文件夹的写权限，或把工作区复制到可写的位置"
    elif "full" in text or getattr(exc, "errno", None) == 28:
        why = f"磁盘已满，无法写入工作区（{where}）。修正方法：清理磁盘空间后重新导入；工作区未改动"
    elif "malformed" in text or "not a database" in text or "corrupt" in text:
        why = (f"工作区文件已损坏（{where}）。修正方法：用 python -m grids check 检查，"
               "从备份恢复工作区后重新导入")
    else:
        why = f"无法读写工作区（{where}）：{plain(exc, limit=200)}。修正方法：检查文件是否存在、可写，磁盘是否有空间"
    return WorkspaceError(why + "。未导入任何数据")


def _strip_control_characters(report: ImportReport) -> int:
    """Remove control characters (other than tab and line breaks) from the text cells of
    ``report.accepted`` in place; returns how many cells changed."""
    frame = report.accepted
    changed = 0
    for col in frame.columns:
        if col == getattr(frame, "_geometry_column_name", None) or frame[col].dtype != object:
            continue
        diff = sum(1 for v in frame[col] if isinstance(v, str) and strip_controls(v) != v)
        if diff:
            frame[col] = frame[col].map(strip_controls)
            changed += diff
    return changed


def import_file(workspace: Workspace | str | os.PathLike[str], layer: str, file: str | os.PathLike[str], *,
                coords: str | None = None, encoding: str | None = None,
                mapping: Mapping[str, str] | None = None, strict: bool = False,
                rejects_path: str | os.PathLike[str] | None = None, actor: str = "cli",
                mode: str | None = None, layer_name: str | None = None,
                account: Account | None = None, names: str | os.PathLike[str] | None = None,
                town: str | None = None, legacy: bool = False) -> ImportReport:
    """Read, validate and import ``file`` into ``layer`` of ``workspace`` in one transaction.

    Parameters
    ----------
    workspace : Workspace or path
        The workspace to write to.
    layer : str
        One of :data:`IMPORTABLE_LAYERS`.
    file : path
        See :func:`read_table` for formats.
    coords, encoding, mapping :
        As in :func:`read_table`. When ``coords`` is not declared and the points look like GCJ-02
        (:func:`detect_gcj02`), nothing is imported: a :class:`ValidationError` says so and how to re-import.
    strict : bool
        Import nothing when any row is rejected, or when the declared datum looks wrong.
    rejects_path : path, optional
        Where to write the rejected rows (CSV, UTF-8 with BOM); written only when there are rejects.
    actor : str
        Who imports, for the audit trail (action ``导入``); ignored when ``account`` is given.
    account : Account, optional
        The signed-in account importing: it must hold the ``import`` permission, and its user name is
        recorded in the audit.
    mode : {'append', 'replace', 'update'}, optional
        Default append for households and visits, replace otherwise. Replace is all-or-nothing: with any
        rejected row (or none acceptable) nothing is written, so a layer is never replaced by part of a file.
        ``update`` (households): changes the existing households named by 户号, only the cells the file fills
        (a blank cell keeps the stored value); each changed household's ``version`` goes up by one and the
        audit lists the changed columns before and after (ID numbers and phones only as “changed”).
    layer_name : str, optional
        Layer or worksheet inside ``file``; for a GeoPackage holding a layer named like ``layer``, that one.
    names : path, optional
        A name mapping file (乡镇, 登记名称, 行政区划代码 or 标准名称; :func:`grids.names.read_name_mapping`).
        Its names are confirmed first, in their own audited transaction (action ``确认名称``, layer
        ``name_aliases``), and used by this and every later import. A mapping with any unresolvable row is
        refused as a whole (:class:`ValidationError`), before anything is written.
    town : str, optional
        Town (name or 9-digit code) of rows keyed by village NAME that have no 乡镇 column or cell.
    legacy : bool
        Households: keep historical grants that break the product rules, flagged (see :func:`validate`).

    Returns
    -------
    ImportReport
        With ``written``/``imported`` set.

    The audit row (action ``导入``) records the file name, the SHA-256 of the file (and of a Shapefile's
    sidecars), layer, mode, the declared coordinates and rows read, imported, repaired and rejected.

    Raises
    ------
    ValidationError
        The whole file is unusable; nothing was changed.
    WorkspaceError
        The workspace cannot be opened, read or written (read-only, disk full, damaged); nothing was changed.
    PermissionDeniedError
        ``account`` may not import.
    """
    if account is not None:
        account.require("import")
        actor = account.username
    if layer != "villages":
        layer_schema(layer)
    path = Path(file)
    try:
        ws = open_workspace(workspace) if isinstance(workspace, (str, os.PathLike)) else workspace
        if layer == "villages":
            from grids.villages import import_villages

            return import_villages(ws, path, coords=coords, encoding=encoding, mapping=mapping, strict=strict,
                                   rejects_path=rejects_path, actor=actor, mode=mode, layer_name=layer_name)
        aliases = None
        confirmed = None
        if names is not None:
            aliases = _name_mapping(ws, names)
            counts = N.save_aliases(ws, aliases, actor=actor, source=Path(names).name)
            confirmed = (f"名称对照表 {plain(Path(names).name, limit=120)}：{len(aliases)} 个名称已确认"
                         f"（新增 {counts['added']}，更改 {counts['changed']}，原已确认 {counts['unchanged']}），"
                         "以后的导入自动采用")
        report = _import(ws, layer, path, coords=coords, encoding=encoding, mapping=mapping, strict=strict,
                         rejects_path=rejects_path, actor=actor, mode=mode, layer_name=layer_name, town=town,
                         aliases=aliases, legacy=legacy)
        if confirmed is not None:
            report.warnings.insert(0, confirmed)
        return report
    except sqlite3.Error as exc:
        raise _workspace_failure(exc, workspace) from exc


def _name_mapping(workspace: Workspace, names: str | os.PathLike[str]) -> pd.DataFrame:
    """The name mapping file ``names`` read against the workspace's villages (ValidationError when it has none)."""
    units = Context(workspace=workspace, mode="append", warnings=[]).units()
    if units is None:
        raise ValidationError("工作区还没有村，名称对照表无从对应", file=Path(names).name,
                              fix="先导入村（villages 或 admin_units），再导入名称对照表")
    return N.read_name_mapping(names, candidates=units)


def check_file(workspace: Workspace, layer: str, file: str | os.PathLike[str], *, coords: str | None = None,
               mode: str | None = None, names: str | os.PathLike[str] | None = None,
               town: str | None = None, legacy: bool = False) -> ImportReport:
    """Validate ``file`` for ``layer`` as :func:`import_file` would, writing nothing (the app's “只校验”).

    A name mapping (``names``) is applied in memory only: nothing is confirmed until the import.

    Raises
    ------
    ValidationError
        The file (or the name mapping) is unusable as a whole.
    """
    path = Path(file)
    aliases = None
    if names is not None:
        aliases = _name_mapping(workspace, names)
    table = read_table(path, coords=coords)
    return validate(table, target_layer=layer, workspace=workspace, source_name=path.name, mode=mode, town=town,
                    aliases=aliases, legacy=legacy)


def _import(ws: Workspace, layer: str, path: Path, *, coords: str | None, encoding: str | None,
            mapping: Mapping[str, str] | None, strict: bool, rejects_path: str | os.PathLike[str] | None, actor: str,
            mode: str | None, layer_name: str | None, town: str | None = None,
            aliases: pd.DataFrame | None = None, legacy: bool = False) -> ImportReport:
    if layer_name is None and path.suffix.lower() == ".gpkg" and path.exists():
        with contextlib.suppress(Exception):
            names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
            if len(names) > 1 and layer in names:
                layer_name = layer
    table, digests = read_source(path, layer=layer_name, encoding=encoding, coords=coords, mapping=mapping)
    report = validate(table, target_layer=layer, workspace=ws, source_name=path.name, mode=mode, town=town,
                      aliases=aliases, legacy=legacy)
    report.strict = strict
    report.refuse_suspect_datum()
    if rejects_path is not None and len(report.rejects):
        report.write_rejects(rejects_path)
    if report.stop_before_writing(loses="丢失现有数据"):
        return report
    cleaned = _strip_control_characters(report)
    if cleaned:
        report.warnings.append(f"{cleaned} 个单元格含控制字符（如 \\x0b、ESC），已删除这些字符后导入")
    if report.mode == "update":
        try:
            update_households(ws, report, actor=actor, note={
                "file": plain(path.name, limit=255), "sha256": digests.get(path.name),
                "files": {plain(k, limit=255): v for k, v in digests.items()},
                "coords": coords if coords is not None else "未声明（按 WGS84 读取）", "strict": bool(strict),
                "read": report.read, "rejected": report.rejected})
        except OSError as exc:
            raise _workspace_failure(exc, ws) from exc
        report.written = True
        return report
    try:
        if layer == "households" and "balance" in report.accepted:  # 用信 is a balance above 0, as the events say
            owing = pd.to_numeric(report.accepted["balance"], errors="coerce").fillna(0) > 0.005
            report.accepted["using"] = owing.to_numpy()
        with ws.transaction(actor=actor, action="导入") as tx:
            replaced = None
            if report.mode == "replace":
                tx.replace(layer, report.accepted)
            elif layer in KEYED_APPEND:
                replaced = loans.write_rows(tx, report.accepted)
            else:
                tx.append(layer, report.accepted)
            opened = credit_events.append_opening_events(tx, report.accepted) if layer == "households" else 0
            tx.note(layer, {"file": plain(path.name, limit=255), "sha256": digests.get(path.name),
                            "files": {plain(k, limit=255): v for k, v in digests.items()},
                            "mode": report.mode,
                            "coords": coords if coords is not None else "未声明（按 WGS84 读取）",
                            "strict": bool(strict), "read": report.read, "imported": len(report.accepted),
                            "repaired": report.repaired, "rejected": report.rejected,
                            **({"replaced": replaced} if replaced is not None else {}),
                            **({"opening_events": opened} if opened else {})})
    except OSError as exc:
        raise _workspace_failure(exc, ws) from exc
    if replaced:
        report.warnings.append(f"其中 {replaced} 行替换了工作区里同月份、同网点、同产品的原有余额")
    report.imported = len(report.accepted)
    report.written = True
    return report
