"""Households and visits keyed by village/group NAME: codes through :mod:`grids.names`, unknown names rejected
with the closest candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grids import names as N
from grids.ingest.context import Context, Problems
from grids.ingest.values import text_column
from grids.text import normalize_id, plain


def _name_problem(what: str, match: N.NameMatch, written: str) -> tuple[str, str]:
    """(reason, fix) for a name that matched no unit, with the closest candidates (“是否指：…？”)."""
    confirm = ("确认后在名称对照表（乡镇,登记名称,行政区划代码）里写一行，用 --names 导入一次"
               "（数据管理页：名称对照表），再重新导入本拒收文件")
    hint = N.suggestion(match.candidates)
    if match.how == "town":
        return "乡镇无法识别", (f"工作区里没有乡镇“{plain(written)}”。{hint or ''}"
                              "改成工作区里的乡镇名称或 9 位乡镇代码后重新导入")
    if match.how == "ambiguous":
        return f"{what}有歧义", f"“{plain(written)}”可能是几个{what[0]}中的任何一个：{hint}{confirm}"
    if not hint:
        return f"{what}无法识别", (f"“{plain(written)}”所在的乡镇（村）在工作区里还没有{what[0]}；"
                                 "先导入村（villages 或 admin_units），或填写乡镇列/--town 指定乡镇")
    return f"{what}无法识别", f"工作区里没有“{plain(written)}”。{hint}{confirm}"


def place_by_names(data: pd.DataFrame, village: pd.Series, group: pd.Series, problems: Problems,
                   ctx: Context) -> tuple[pd.Series, pd.Series, pd.Series, np.ndarray]:
    """Village and group codes from the 村/组 NAME columns where the row gives no code (:mod:`grids.names`).

    Returns the village and group codes, the group label (``'1组'``) of rows whose village has no group units
    (kept so that groups can be derived later) and the mask of rows whose village came from its name.
    Unknown and ambiguous names are problems with the closest candidates.
    """
    by_name = np.zeros(len(data), dtype=bool)
    names = text_column(data, "village_name")
    gnames = text_column(data, "group_name")
    if names.isna().all() and gnames.isna().all():
        return village, group, pd.Series(None, index=data.index, dtype=object), by_name
    v_out = village.to_numpy(dtype=object).copy()
    g_out = group.to_numpy(dtype=object).copy()
    label = np.full(len(data), None, dtype=object)
    units = ctx.units()
    code_cell = text_column(data, "village_code").notna() | text_column(data, "group_code").notna()
    need = (village.isna() & ~code_cell & names.notna()).to_numpy()
    if need.any():
        if units is None:
            problems.add(need, "village_name", "工作区还没有村",
                         "先导入村（python -m grids import 工作区 villages 村委会位置文件，或 admin_units），再按村名导入")
        else:
            towns = text_column(data, "town_name")
            idx = np.flatnonzero(need)
            matches = N.match_names(names.iloc[idx], towns.iloc[idx], candidates=units, aliases=ctx.aliases(),
                                    town=ctx.town)
            for pos, m in zip(idx, matches, strict=True):
                if m.code is not None:
                    v_out[pos] = m.code
                    by_name[pos] = True
                    continue
                col = "town_name" if m.how == "town" and "town_name" in data else "village_name"
                written = towns.iloc[pos] if col == "town_name" else names.iloc[pos]
                if m.how == "town" and written is None:
                    written = ctx.town or ""
                problems.add_at(int(pos), col, *_name_problem("村名", m, written or ""))
                if m.how != "town":
                    ctx.name_issues.append({"乡镇": towns.iloc[pos] or ctx.town or "", "村": "",
                                            "登记名称": names.iloc[pos], "候选": N.suggestion(m.candidates)})
    if ctx.mode == "update" and ctx.workspace is not None:
        # a new group alone: within the household's current village (an update keeps what the file leaves blank)
        alone = np.flatnonzero(np.array([v is None for v in v_out], dtype=bool) & names.isna().to_numpy()
                               & ~code_cell.to_numpy() & gnames.notna().to_numpy())
        if len(alone):
            stored = ctx.workspace.read("households", columns=["hh_id", "village_code"])
            current = {normalize_id(h): v for h, v in zip(stored["hh_id"], stored["village_code"], strict=True)
                       if isinstance(v, str) and v}
            ids = text_column(data, "hh_id")
            for pos in alone:
                v = current.get(normalize_id(ids.iloc[pos])) if isinstance(ids.iloc[pos], str) else None
                if v is not None:
                    v_out[pos] = v
                else:
                    problems.add_at(int(pos), "group_name", "改组需同时填写村",
                                    "这户在工作区里没有村代码：同一行填写乡镇和村（或村代码），再填组")
    has_village = np.array([v is not None for v in v_out], dtype=bool)
    gneed = (group.isna() & text_column(data, "group_code").isna() & gnames.notna()).to_numpy() & has_village
    if gneed.any() and units is not None:
        idx = np.flatnonzero(gneed)
        matches = N.match_groups(gnames.iloc[idx], v_out[idx], candidates=units, aliases=ctx.aliases())
        labels: dict[str, str] = {}
        # groups derived from located households are only those with enough of them: another numbered group of
        # such a village is no unknown name, its households are placed by village until it gets a polygon too
        derived = units["derived"].fillna(False).astype(bool) if "derived" in units.columns else None
        partial = (set(units.loc[(units["level"] == "group") & derived, "parent_code"].astype(str))
                   if derived is not None else set())
        for pos, m in zip(idx, matches, strict=True):
            if m.code is not None:
                g_out[pos] = m.code
            elif m.how == "unclear":
                problems.add_at(int(pos), "group_name", "组名无法识别",
                                f"“{plain(gnames.iloc[pos])}”看不出是哪一个组：组名写成一个编号（如 3组、第三村民小组）"
                                "或组的名称，不要写范围、小数、负号或括号备注")
            elif m.how == "none" or (m.how == "unknown" and v_out[pos] in partial
                                     and N.group_key(gnames.iloc[pos]).isdigit()):
                written = gnames.iloc[pos]
                label[pos] = labels[written] if written in labels else labels.setdefault(written, N.group_label(written))
            else:
                problems.add_at(int(pos), "group_name", *_name_problem("组名", m, gnames.iloc[pos]))
                ctx.name_issues.append({"乡镇": v_out[pos][:9], "村": v_out[pos],
                                        "登记名称": gnames.iloc[pos], "候选": N.suggestion(m.candidates)})
        kept = [x for x in label if x is not None]
        if kept:
            ctx.warnings.append(f"{len(kept)} 户所在的村还没有组的范围：按村定位，组名（如“{kept[0]}”）"
                                "保存在 group_name 列，供以后推算组界")
    return (pd.Series(v_out, index=data.index, dtype=object), pd.Series(g_out, index=data.index, dtype=object),
            pd.Series(label, index=data.index, dtype=object), by_name)
