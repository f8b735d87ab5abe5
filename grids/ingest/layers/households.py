"""Households: ids, ID numbers, phones, segments and credit columns, village/group by code or name,
location, and the product rules for granted rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from grids import _validate as V
from grids.ingest.columns import LABELS
from grids.ingest.context import Context, Problems
from grids.ingest.geometry import OUTSIDE_TOLERANCE_M, points_outside_county
from grids.ingest.placenames import place_by_names
from grids.ingest.values import check_codes, enum_column, require_column, text_column
from grids.model import CODE_LENGTH, GUARANTEES, JOB_LEVELS, PRODUCTS, SEGMENTS
from grids.placement import village_of
from grids.text import normalize_id

SEGMENT_ALIASES = {
    "农牧户": "普通农牧户", "农户": "普通农牧户", "牧户": "普通农牧户", "农牧民": "普通农牧户", "农民": "普通农牧户",
    "牧民": "普通农牧户", "普通农户": "普通农牧户", "普通牧户": "普通农牧户", "家庭农场": "家庭农牧场", "家庭牧场": "家庭农牧场",
    "合作社": "农牧业专业合作社", "专业合作社": "农牧业专业合作社", "农民专业合作社": "农牧业专业合作社",
    "农牧民专业合作社": "农牧业专业合作社",
    "个体户": "个体工商户", "商户": "个体工商户", "个体": "个体工商户", "企业": "小微企业", "小微": "小微企业",
    "公务员": "公职人员", "事业单位": "公职人员", "公职": "公职人员", "居民": "社区居民", "城镇居民": "社区居民",
}


GRADE_ALIASES = {"金卡": "黄金客户", "钻石卡": "钻石客户"}
"""Grade names of earlier versions, taken as today's (the rules are :func:`grids.credit_rules.check_grant`'s)."""


_BOOL_COLUMNS = ("archived", "eligible", "signed", "using", "payroll")


_AMOUNT_COLUMNS = ("granted_amount", "available_amount", "balance")


def check_households(data: pd.DataFrame, geoms: np.ndarray, problems: Problems, ctx: Context) -> pd.DataFrame:
    """Households: the typed columns of the layer, located by point, village/group code or name."""
    out = pd.DataFrame(index=data.index)
    out["hh_id"] = require_column(data, "hh_id", problems, "每户必须有户号；补填后再导入")
    out["head_name"] = text_column(data, "head_name")
    updating = ctx.mode == "update"
    out["segment"] = enum_column(data, "segment", SEGMENTS, problems, aliases=SEGMENT_ALIASES, required=not updating)
    if "id_no" in data:
        out["id_no"], bad = V.check_id_no(text_column(data, "id_no"))
        problems.add(bad & ~ctx.lost_in("id_no", data.index), "id_no", "身份证号无效",
                     "应为 18 位（最后一位可为 X），出生日期和校验位正确（GB 11643）；Excel 中请把该列设为文本，"
                     "否则长数字会变成科学计数法")
    if "phone" in data:
        out["phone"], bad = V.check_phone(text_column(data, "phone"))
        problems.add(bad & ~ctx.lost_in("phone", data.index), "phone", "联系电话格式错误",
                     "应为 11 位数字（手机号，或带区号的固定电话如 04767654321）")
    if "address" in data:
        out["address"] = text_column(data, "address")
    if "grade" in data:
        out["grade"] = text_column(data, "grade").map(lambda v: GRADE_ALIASES.get(v, v) if isinstance(v, str) else v)
    if "guarantee" in data:
        out["guarantee"] = enum_column(data, "guarantee", [g for g in GUARANTEES if g], problems,
                                       aliases={"信用": None, "无": None, "免担保": None})
    if "job_level" in data:
        out["job_level"] = enum_column(data, "job_level", JOB_LEVELS, problems,
                                       aliases={"科员": "一般工作人员", "办事员": "一般工作人员", "处级": "处级及以上"})
    if "product" in data:
        out["product"] = enum_column(data, "product", PRODUCTS, problems)
    for col in _BOOL_COLUMNS:
        if col in data:
            out[col], bad = V.parse_bool(text_column(data, col))
            problems.add(bad, col, f"{LABELS[col]}无法识别", "填写 是/否（也可 Y/N、1/0）")
    for col in _AMOUNT_COLUMNS:
        if col in data:
            out[col], bad, neg, absurd = V.parse_amount(text_column(data, col))
            problems.add(bad, col, f"{LABELS[col]}不是数字", "填写以元为单位的数字，例如 50000 或 5万")
            problems.add(neg, col, f"{LABELS[col]}为负数", "金额不能为负")
            problems.add(absurd, col, f"{LABELS[col]}过大",
                         f"单户金额不应超过 {V.MAX_AMOUNT:,.0f} 元；检查单位（元）和多余的零")

    village = check_codes(text_column(data, "village_code"), "village_code", CODE_LENGTH["village"], problems,
                          ctx.lost_in("village_code", data.index))
    group = check_codes(text_column(data, "group_code"), "group_code", CODE_LENGTH["group"], problems,
                        ctx.lost_in("group_code", data.index))
    inferred = village.isna() & group.notna()
    of_group = village_of(pd.DataFrame({"village_code": village, "group_code": group}))  # a group names its village
    village = of_group.astype(object).where(of_group.notna(), None)
    mismatch = village.notna() & group.notna() & (group.str.slice(0, CODE_LENGTH["village"]) != village)
    problems.add(mismatch, "group_code", "组代码不属于该村", "组代码的前 12 位应等于村代码；检查两列是否对应")
    if ctx.admin() is None:
        if (village.notna() | group.notna()).any():
            ctx.warnings.append("工作区还没有行政区划，未检查村/组代码是否存在（先导入 admin_units）")
    else:
        villages = set(ctx.codes("village")["code"])
        groups = set(ctx.codes("group")["code"])
        problems.add(village.notna() & ~village.isin(list(villages)) & ~inferred, "village_code", "村代码不在行政区划中",
                     "工作区的行政区划里没有这个村；检查代码，或先导入包含它的 admin_units")
        problems.add(group.notna() & ~group.isin(list(groups)), "group_code", "组代码不在行政区划中",
                     "工作区的行政区划里没有这个组；检查代码，或先导入包含它的 admin_units")
    by_code = village.notna().to_numpy()
    village, group, label, by_name = place_by_names(data, village, group, problems, ctx)
    if by_name.any():
        ctx.warnings.append(f"{int(by_name.sum())} 户按村名（和组名）对应到村代码（定位方式 name）")
    out["village_code"], out["group_code"] = village, group
    if label.notna().any():
        out["group_name"] = label

    has_point = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    named = text_column(data, "village_name").notna().to_numpy()
    if not updating:  # an update keeps the household's location when the file gives none
        problems.add(~has_point & village.isna().to_numpy() & text_column(data, "village_code").isna().to_numpy() & ~named,
                     "village_code", "无法定位：既没有坐标也没有村/组代码",
                     "填写经纬度，或填写村代码/组代码，或乡镇、村名和组名")
    placed = np.full(len(data), None, dtype=object)
    placed[by_name] = "name"
    placed[by_code] = "code"
    placed[has_point] = "point"
    out["placed_by"] = pd.Series(placed, index=data.index, dtype=object)
    outside = points_outside_county(geoms, ctx)
    if outside is None:
        if has_point.any() and ctx.workspace is not None:
            ctx.warnings.append("工作区没有县界（admin_units 中 level=county），未检查点是否在县内")
    else:
        problems.add(outside, "geometry", "位置在县界以外",
                     f"点距县界超过 {OUTSIDE_TOLERANCE_M:.0f} 米；检查经纬度是否填反、是否为高德坐标（--coords gcj02）")
    _check_credit_rules(out, problems, ctx)
    return out


_CREDIT_INPUTS = ("segment", "product", "grade", "granted_amount", "guarantee", "job_level")


def _check_credit_rules(out: pd.DataFrame, problems: Problems, ctx: Context) -> None:
    """Granted rows that break the product rules (:func:`grids.credit_rules.check_grant`): rejected naming the
    rule, or with ``ctx.legacy`` (``--legacy``: historical grants) kept and flagged ``credit_legacy`` with the
    rules broken in ``credit_note``. An update that fills any credit cell (客户类型, 产品, 等级, 授信金额, 担保方式,
    职务级别) is checked with the household's stored values filling the cells the file leaves blank; one that
    fills none (a new phone number) is not judged, so a flagged historical grant does not block it."""
    from grids.credit_rules import RULE_NAMES, check_grant

    if "granted_amount" not in out.columns and not (ctx.mode == "update" and any(c in out for c in _CREDIT_INPUTS)):
        return
    frame = out.reindex(columns=list(_CREDIT_INPUTS))
    touched = frame.notna().any(axis=1).to_numpy()  # an update that leaves the credit cells blank is not judged
    if ctx.mode == "update" and ctx.workspace is not None:
        present = set(ctx.workspace.columns("households"))
        stored = ctx.workspace.read("households", columns=[c for c in ("hh_id", *_CREDIT_INPUTS) if c in present])
        stored = pd.DataFrame(stored).drop_duplicates("hh_id")
        stored.index = [normalize_id(h) if isinstance(h, str) else h for h in stored["hh_id"]]
        keys = out["hh_id"].map(lambda v: normalize_id(v) if isinstance(v, str) else v)
        for col in _CREDIT_INPUTS:
            if col in stored.columns and len(stored):
                frame[col] = frame[col].where(frame[col].notna(), keys.map(stored[col].to_dict()))
    amount = pd.to_numeric(frame["granted_amount"], errors="coerce").fillna(0.0)
    legacy = np.zeros(len(out), dtype=bool)
    notes = np.full(len(out), None, dtype=object)
    rejected = problems.rejected()
    for pos in np.flatnonzero((amount.to_numpy() > 0) & touched):
        if rejected[pos]:
            continue  # already refused for its cells (a bad amount, an unknown product…)
        rec = frame.iloc[pos]

        def text(col: str, _rec: pd.Series = rec) -> str:
            v = _rec[col]
            return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

        found = check_grant(entity_type=text("segment"), product=text("product"), grade=text("grade"),
                            amount=float(amount.iloc[pos]), guarantee=text("guarantee"), job_level=text("job_level"))
        if not found:
            continue
        if ctx.legacy:
            legacy[pos] = True
            notes[pos] = "；".join(f"{RULE_NAMES[v.rule]}：{v.problem}" for v in found)
            continue
        for v in found:
            problems.add_at(int(pos), v.column,
                            f"不符合产品规则（{RULE_NAMES[v.rule]}）：{v.problem}",
                            f"{v.fix}；确是规则实行前的历史授信，用 --legacy 导入（标记为历史授信）")
    if ctx.legacy:
        out["credit_legacy"] = pd.Series([True if flag else None for flag in legacy], index=out.index, dtype=object)
        out["credit_note"] = pd.Series(notes, index=out.index, dtype=object)
        if legacy.any():
            ctx.warnings.append(f"{int(legacy.sum())} 户的历史授信不符合现行产品规则，已按 --legacy 导入并标记"
                                "（credit_legacy；python -m grids check 工作区 --credit 列为警告）")
