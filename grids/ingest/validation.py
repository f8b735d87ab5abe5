"""Validating a read file for one layer (:func:`validate`): recognised columns, every row checked, the report."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from grids import _validate as V
from grids import names as N
from grids.errors import ValidationError
from grids.ingest.columns import LABELS, LONG_DIGITS, REQUIRED, recognise_columns, safe_names
from grids.ingest.context import Context, Problems
from grids.ingest.datum import detect_gcj02_geoms
from grids.ingest.geometry import FAMILY, check_geometries
from grids.ingest.layers import CHECKS
from grids.ingest.read import IngestResult
from grids.ingest.report import REJECT_COLUMNS, ImportReport, rejects_frame
from grids.ingest.schema import DEFAULT_MODE, MODES, ROW_INDEX, UPDATE_LAYERS, layer_schema
from grids.ingest.tabular import stringify
from grids.ingest.values import check_key, normalise_ids
from grids.model import STORAGE_EPSG
from grids.text import plain
from grids.workspace import Workspace


def validate(table: IngestResult | gpd.GeoDataFrame | pd.DataFrame, *, target_layer: str, workspace: Workspace | None,
             source_name: str, mode: str | None = None, town: str | None = None,
             aliases: pd.DataFrame | None = None, legacy: bool = False) -> ImportReport:
    """Check every row of ``table`` for ``target_layer`` and split it into accepted and rejected rows.

    Parameters
    ----------
    table : IngestResult, GeoDataFrame or DataFrame
        Usually the result of :func:`~grids.ingest.read.read_table` (whose warnings and row problems the report
        carries on); a bare frame is taken as it is. Row numbers come from the index when it is named ``row``
        (otherwise rows are numbered from 1); geometry in any CRS (converted to EPSG:4490).
    target_layer : str
        One of :data:`~grids.ingest.schema.IMPORTABLE_LAYERS`.
    workspace : Workspace or None
        Supplies the hierarchy (village/group codes, county outline), existing ids (append mode), branches,
        staff and households that rows refer to. ``None`` skips those checks (and says so).
    source_name : str
        File name used in the rejects and messages.
    mode : {'append', 'replace', 'update'}, optional
        How the rows will be written; in append mode an id already in the workspace is rejected, in update
        mode (households only) an id *not* in the workspace is. Defaults to :data:`~grids.ingest.schema.DEFAULT_MODE` (append for
        households and visits, replace otherwise).
    town : str, optional
        Households and visits keyed by village/group NAME (columns 村/嘎查/社区 and 组): the town (name or
        code) of rows without a 乡镇 cell (``import --town``). See :func:`grids.names.match_names`.
    aliases : DataFrame, optional
        Confirmed names to use besides the workspace's ``name_aliases`` (``level``, ``parent_code``,
        ``alias``, ``code``; see :func:`grids.names.read_name_mapping`).
    legacy : bool
        Households: a granted row that breaks the product rules (:func:`grids.credit_rules.check_grant`) is a
        historical grant, kept and flagged (``credit_legacy``, the rules in ``credit_note``) instead of rejected.

    Returns
    -------
    ImportReport

    Notes
    -----
    A file that is a rejects file written by an earlier import (columns 文件, 行, 列, 原因, 修正方法 first)
    is read as the original rows: one row per rejected row, the problem columns ignored.

    Raises
    ------
    ValidationError
        A problem of the whole file: no recognisable column, a required column missing.
    """
    if target_layer == "villages":
        from grids.villages import validate_villages

        return validate_villages(table, workspace=workspace, source_name=source_name)
    schema = layer_schema(target_layer)
    mode = mode or DEFAULT_MODE.get(target_layer, "replace")
    if mode not in MODES:
        raise ValidationError(f"不认识的写入方式 “{mode}”", fix="可选 append（追加）、replace（替换）或 update（更新已有的户）")
    if mode == "update" and target_layer not in UPDATE_LAYERS:
        raise ValidationError(f"图层 {target_layer} 不能按更新方式导入", fix="更新方式只用于农户（households）；"
                              "其他图层用 append 或 replace")
    read = table if isinstance(table, IngestResult) else IngestResult.wrap(table, source_name)
    notes = list(read.warnings)
    frame = _unwrap_rejects(read.frame if isinstance(table, IngestResult) else table, notes)
    n = len(frame)
    rows = (np.asarray(frame.index, dtype=np.int64) if frame.index.name == ROW_INDEX
            else np.arange(1, n + 1, dtype=np.int64))
    row_pos = {int(r): i for i, r in enumerate(rows)}
    geo_frame = frame if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns else None
    is_geo = geo_frame is not None
    raw = stringify(frame, is_text=read.text).reset_index(drop=True)
    if geo_frame is not None:
        geo = (geo_frame.geometry if geo_frame.crs is None or geo_frame.crs.to_epsg() == STORAGE_EPSG
               else geo_frame.to_crs(STORAGE_EPSG).geometry)
        geoms = np.asarray(geo.values, dtype=object)
    else:
        geoms = np.full(n, None, dtype=object)
    if n == 0:
        raise ValidationError("文件里没有数据行", file=source_name, fix="检查是否选错了文件")

    colmap = recognise_columns(raw.columns, target_layer)
    data = pd.DataFrame({canonical: raw[col] for col, canonical in colmap.items() if canonical not in ("lon", "lat")})
    labels = {canonical: col for col, canonical in colmap.items()}
    if read.geometry_label:
        labels["geometry"] = read.geometry_label
    ignored = [c for c in raw.columns if c not in colmap and V.present(raw[c]).any()]
    if not colmap and not any(g is not None for g in geoms):
        if any(LONG_DIGITS.search(str(c)) for c in raw.columns):
            seen = "第一行看起来是数据而不是表头（含长串数字），文件可能没有表头"
        else:
            seen = f"文件的列：{safe_names(raw.columns)}"
        raise ValidationError(
            f"没有一列能对应到图层 {target_layer} 的字段（{seen}）",
            file=source_name,
            fix=f"改表头为 {'、'.join(LABELS.get(c, c) for c in schema.columns)} 等，或用 --map 源列=目标列 指定")
    required = REQUIRED.get(target_layer, ())
    if mode == "update":
        assert schema.key is not None  # the UPDATE_LAYERS have a key
        required = (schema.key,)
    missing = [c for c in required if c not in data.columns]
    if missing:
        names = "、".join(f"{LABELS.get(c, c)}（{c}）" for c in missing)
        raise ValidationError(
            f"缺少必需的列 {names}", file=source_name,
            fix=f"在文件里加上这些列，或用 --map 指定哪一列是它，例如 --map 原列名={missing[0]}")
    if ignored:
        notes.append(f"这些列不属于图层 {target_layer}，未导入：{safe_names(ignored)}（如需导入请用 --map 指定）")

    problems = Problems(rows, labels)
    for row, col, reason, fix in read.row_problems:
        if int(row) in row_pos:
            problems.add_one(row_pos[int(row)], col, reason, fix)
    ctx = Context(workspace=workspace, mode=mode, warnings=notes, lost=normalise_ids(data, problems), town=town,
                  extra_aliases=aliases, legacy=legacy)
    if workspace is None:
        notes.append("没有提供工作区，未检查代码层级、重复和县界")
    units = ctx.units()
    if town and units is not None:
        tm = N.match_towns([town], candidates=units)[0]
        if tm is not None and tm.code is None:
            raise ValidationError(f"工作区里没有乡镇“{plain(town)}”（--town）", file=source_name,
                                  fix=f"{N.suggestion(tm.candidates)}写工作区里的乡镇名称或 9 位乡镇代码")

    family = FAMILY.get(schema.geometry or "")
    repaired = np.zeros(n, dtype=bool)
    if family:
        geoms, repaired = check_geometries(geoms, family, target_layer, data, problems, notes)
    elif any(g is not None for g in geoms):
        notes.append(f"图层 {target_layer} 不带几何，文件中的几何已忽略")

    declared = read.coords if read.coords_declared else None
    datum = None
    if family == "point" and workspace is not None:
        none = pd.Series([None] * n, dtype=object)
        datum = detect_gcj02_geoms(geoms, ctx.admin(), data.get("village_code", none).reset_index(drop=True),
                                   data.get("group_code", none).reset_index(drop=True), declared)
        if datum is not None and datum.suspect:
            notes.append(datum.message())

    typed = CHECKS[target_layer](data, geoms, problems, ctx)
    if schema.key and schema.key in typed.columns:
        check_key(typed[schema.key], schema.key, target_layer, problems, ctx)

    rejected = problems.rejected()
    keep = ~rejected
    out_cols = [c for c in schema.columns if c in typed.columns]
    accepted_attrs = typed.loc[keep, out_cols].set_axis(pd.Index(rows[keep], name=ROW_INDEX))
    if family:
        accepted: gpd.GeoDataFrame | pd.DataFrame = gpd.GeoDataFrame(
            accepted_attrs, geometry=gpd.GeoSeries(geoms[keep], index=accepted_attrs.index, crs=STORAGE_EPSG),
            crs=STORAGE_EPSG)
    else:
        accepted = accepted_attrs
    if repaired[keep].any():
        notes.append(f"修复了 {int(repaired[keep].sum())} 个无效面（make_valid，面积变化小于 1%）："
                     f"第 {'、'.join(map(str, rows[keep & repaired][:20]))} 行")
    rejects = rejects_frame(problems.items, rows, raw, geoms if is_geo and not read.tabular else None,
                            source_name)
    return ImportReport(accepted=accepted, rejects=rejects, warnings=notes, source=source_name,
                        layer=target_layer, mode=mode, read=n, repaired=int(repaired[keep].sum()), datum=datum,
                        coords_declared=read.coords_declared, name_issues=ctx.name_issues)


def _unwrap_rejects(frame: gpd.GeoDataFrame | pd.DataFrame, notes: list[str]) -> gpd.GeoDataFrame | pd.DataFrame:
    """A rejects file (:data:`REJECT_COLUMNS` then the original columns) as its original rows: one row per
    rejected row (a row with two problems has two lines), without the problem columns."""
    if not all(c in frame.columns for c in REJECT_COLUMNS):
        return frame
    first = ~frame.duplicated(["文件", "行"], keep="first")
    out = frame.loc[first.to_numpy()].drop(columns=list(REJECT_COLUMNS))
    out = out.rename(columns={f"{c}（原）": c for c in REJECT_COLUMNS})  # the original file's own 行/列… columns
    notes.append(f"这是一个拒收文件：按其中 {int(first.sum())} 个原始行重新校验（忽略“原因”等列）")
    return out
