"""What a workspace has and lacks, step by step, what each gap blocks, and the next command to run.

Made for a real county moving in (``python -m grids init`` … ``build``/``assign``/publish): ``python -m grids
status PATH`` prints it, ``--json`` gives the same dict. Reads counts only; works on both backends and on the demo.

Examples
--------
>>> [s["key"] for s in STEPS]
['outline', 'towns', 'villages', 'groups', 'streets', 'households', 'branches', 'staff', 'accounts', 'plan']
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from grids.placement import village_of

STEPS: tuple[dict[str, str], ...] = (
    {"key": "outline", "title": "县界"},
    {"key": "towns", "title": "镇/乡/苏木/街道"},
    {"key": "villages", "title": "村/嘎查/社区"},
    {"key": "groups", "title": "组"},
    {"key": "streets", "title": "街道"},
    {"key": "households", "title": "农户"},
    {"key": "branches", "title": "营业网点"},
    {"key": "staff", "title": "员工"},
    {"key": "accounts", "title": "账号"},
    {"key": "plan", "title": "已发布的网格方案"},
)
"""The steps, in the order they are shown."""

STATES = {"done": "完成", "partial": "部分", "missing": "缺少", "optional": "可选"}
"""``state`` of a step → its Chinese label. ``partial`` is usable but incomplete; ``optional`` is missing but
blocks nothing essential."""

# which missing step to fix first (imports need an admin account; villages before households …)
_PRIORITY = ("outline", "accounts", "villages", "households", "branches", "staff", "plan")


def _placed(hh: pd.DataFrame, unit_codes: set[str]) -> pd.Series:
    """How each household is placed: point / code / name / unplaced.

    ``placed_by`` where the importer set it, else inferred; a household placed by code or name whose village
    and group codes are no longer units of the workspace (a village deleted since) is unplaced."""
    by = hh["placed_by"].astype(object) if "placed_by" in hh.columns else pd.Series(None, index=hh.index)
    has_point = hh.geometry.notna() & ~hh.geometry.is_empty if hasattr(hh, "geometry") else False
    # known by code where its group or its village (grids.placement.village_of: the village code, else the
    # group code's first 12 digits) is a unit of the workspace: the map places such a household the same way
    code_known = village_of(hh).isin(unit_codes).to_numpy(dtype=bool, copy=True)
    if "group_code" in hh.columns:
        code_known |= hh["group_code"].isin(unit_codes).to_numpy(dtype=bool)
    inferred = np.where(has_point, "point", np.where(code_known, "code", "unplaced"))
    known = by.isin(["point", "code", "name"]).to_numpy()
    out = np.where(known, by.to_numpy(dtype=object), inferred)
    out[np.isin(out, ["code", "name"]) & ~code_known] = "unplaced"
    return pd.Series(out, index=hh.index)


def _orphans(hh: pd.DataFrame, unit_codes: set[str]) -> int:
    """Households whose village code is set but is not a unit of the workspace."""
    if "village_code" not in hh.columns:
        return 0
    vc = hh["village_code"]
    return int((vc.notna() & (vc.astype(str) != "") & ~vc.isin(unit_codes)).sum())


def _unstreeted(ws: Any) -> int:
    """Urban zones the newest draft or published plan was built for without streets (its build warnings)."""
    if "params" not in ws.columns("plans"):
        return 0
    plans = ws.read("plans", columns=["status", "params", "updated_at"])
    plans = plans[plans["status"].isin(["draft", "published"])]
    if not len(plans):
        return 0
    newest = plans.sort_values("updated_at", kind="stable", na_position="first")["params"].iloc[-1]
    try:
        params = json.loads(newest) if isinstance(newest, str) and newest else {}
    except ValueError:
        return 0
    found = params.get("warnings") if isinstance(params, dict) else None
    return sum(1 for w in found or [] if isinstance(w, dict) and w.get("kind") == "no_streets")


def workspace_status(ws: Any, *, path: str | None = None) -> dict[str, Any]:
    """What ``ws`` has and lacks.

    Parameters
    ----------
    ws : Workspace or PgWorkspace
        The workspace to inspect (read only).
    path : str, optional
        How to name the workspace in the suggested commands (default ``ws.target``).

    Returns
    -------
    dict
        ``county`` (code, name), ``steps`` (one dict per :data:`STEPS` entry: ``key``, ``title``, ``state``
        (:data:`STATES`), ``counts``, ``detail``, ``blocks`` (what the gap blocks, empty when done) and
        ``next`` (the command or page that closes it, empty when done)), ``next`` (the one command to run now)
        and ``ready`` (every step done or optional).
    """
    p = path or str(getattr(ws, "target", "PATH"))
    meta = ws.meta
    admin = ws.read("admin_units", columns=["code", "level", "kind", "derived", "provisional_code"])
    has_geom = admin.geometry.notna() & ~admin.geometry.is_empty
    level = admin["level"]
    steps: dict[str, dict[str, Any]] = {}

    def step(key: str, state: str, counts: dict[str, int], detail: str, blocks: str = "", nxt: str = "") -> None:
        title = next(s["title"] for s in STEPS if s["key"] == key)
        done = state == "done"
        steps[key] = {"key": key, "title": title, "state": state, "state_name": STATES[state], "counts": counts,
                      "detail": detail, "blocks": "" if done else blocks, "next": "" if done else nxt}

    county = admin[(level == "county") & has_geom]
    step("outline", "done" if len(county) else "missing", {"county": len(county)},
         "有县界（旗县单元）" if len(county) else "没有县界",
         "一切：辖区、全覆盖检查、村界推算都以县界为边界",
         f"python -m grids init {p} --county 代码 --outline 县界文件 [--coords gcj02]")

    towns = admin[level == "town"]
    t_geom = int((has_geom & (level == "town")).sum())
    step("towns", "done" if len(towns) and t_geom == len(towns) else ("partial" if len(towns) else "missing"),
         {"towns": len(towns), "with_territory": t_geom},
         f"{len(towns)} 个乡级单位，{t_geom} 个有辖区" + ("（其余由村界合成）" if len(towns) > t_geom else ""),
         "按镇匹配村名、按镇汇总；没有镇界时镇的辖区由其村界合成",
         f"python -m grids import {p} admin_units 镇界文件 --user 账号（有镇界时）；或导入村后由村界合成")

    villages = admin[level == "village"]
    derived = int(villages["derived"].fillna(False).astype(bool).sum()) if len(villages) else 0
    provisional = int(villages["provisional_code"].fillna(False).astype(bool).sum()) if len(villages) else 0
    v_state = "missing" if not len(villages) else ("partial" if derived or provisional else "done")
    step("villages", v_state, {"villages": len(villages), "real": len(villages) - derived,
                               "derived": derived, "provisional_code": provisional},
         f"{len(villages)} 个村级单位：{len(villages) - derived} 个有实测村界，{derived} 个由驻地推算村界，"
         f"{provisional} 个用临时代码",
         "生成网格、按村名或代码定位农户；推算村界与临时代码可用，但导入真实村界和代码后更准确",
         f"python -m grids import {p} villages 村委会位置文件 --user 账号（或 admin_units 导入村界）")

    groups = admin[level == "group"]
    step("groups", "done" if len(groups) else "optional", {"groups": len(groups)},
         f"{len(groups)} 个组" if len(groups) else "没有组界：农户按村定位，网格按村生成",
         "按组拆分过大的网格", f"python -m grids import {p} admin_units 组界文件 --user 账号（可选）")

    communities = int(((level == "village") & (admin["kind"] == "社区")).sum()) if "kind" in admin.columns else 0
    n_streets, n_urban = ws.count("streets"), ws.count("urban_areas")
    unstreeted = _unstreeted(ws)
    if n_streets:
        s_state = "partial" if unstreeted else "done"
        s_detail = f"{n_streets:,} 条街道" + (
            f"；最近生成的网格方案里 {unstreeted} 个社区/城区部分没有街道穿过，网格按（推算）社区范围划分"
            if unstreeted else "")
    elif communities or n_urban:
        s_state = "partial"
        s_detail = (f"没有街道图层：{communities} 个社区{'和城区' if n_urban else ''}的网格按（推算）社区范围划分，不沿街道"
                    if communities else "没有街道图层：城区网格按村（组）范围划分，不沿街道")
    else:
        s_state, s_detail = "optional", "没有街道图层，也没有社区或城区：网格都按镇村组划分"
    step("streets", s_state, {"streets": n_streets, "communities": communities, "without_streets": unstreeted},
         s_detail,
         "城区网格沿街道划分（“纵向到底、横向到边”）；没有街道时按社区范围划分并在生成网格时警告",
         f"python -m grids import {p} streets 街道文件（任意 GIS 文件：GeoPackage/Shapefile/GeoJSON/KML）--user 账号；"
         f"再 python -m grids build {p} --user 账号 按街道重划")

    hh = ws.read("households", columns=[c for c in ("placed_by", "village_code", "group_code")
                                        if c in ws.columns("households")])
    unit_codes = set(admin["code"].dropna())
    placed = _placed(hh, unit_codes)
    by = {k: int((placed == k).sum()) for k in ("point", "code", "name", "unplaced")}
    orphans = _orphans(hh, unit_codes)
    h_state = "missing" if not len(hh) else ("partial" if by["unplaced"] or orphans else "done")
    step("households", h_state, {"households": len(hh), **by, "unknown_village": orphans},
         f"{len(hh):,} 户：按坐标定位 {by['point']:,}，按村组代码 {by['code']:,}，按村组名称 {by['name']:,}，"
         f"未能定位 {by['unplaced']:,}"
         + (f"；{orphans:,} 户的村代码在工作区里已不存在（村被删除或改了代码），请重新导入这些户的村组"
            if orphans else ""),
         "覆盖率、漏斗、入户清单；未能定位的农户不进任何网格",
         f"python -m grids import {p} households 农户登记表 --user 账号（未能定位的见导入的拒收文件）")

    n_branch, n_staff = ws.count("branches"), ws.count("staff")
    step("branches", "done" if n_branch else "missing", {"branches": n_branch}, f"{n_branch} 个网点",
         "把网格分配给网点（assign）", f"python -m grids import {p} branches 网点文件 --user 账号")
    step("staff", "done" if n_staff else "missing", {"staff": n_staff}, f"{n_staff} 名员工",
         "把网格分配给客户经理（责任到人）", f"python -m grids import {p} staff 员工名单 --user 账号")

    accounts = ws.read("accounts", columns=["role", "active"])
    active = accounts[accounts["active"].fillna(False).astype(bool)]
    admins = int((active["role"] == "admin").sum())
    others = int((active["role"] != "admin").sum())
    a_state = "missing" if not admins else ("done" if others else "partial")
    step("accounts", a_state, {"admins": admins, "others": others},
         f"{admins} 个启用的管理员，{others} 个其他账号",
         "所有写入命令（--user）和网页登录；其他角色（领导、规划、网点主任、客户经理）缺账号时无法登录使用",
         f"GRIDS_NEW_PASSWORD=… python -m grids accounts add {p} 用户名 --role admin" if not admins else
         f"python -m grids accounts add {p} 用户名 --role planner --user 管理员（或在“账号与审计”页）")

    plans = ws.read("plans", columns=["name", "status"])
    published = plans[plans["status"] == "published"]
    drafts = plans[plans["status"] == "draft"]
    step("plan", "done" if len(published) else ("partial" if len(drafts) else "missing"),
         {"published": len(published), "drafts": len(drafts)},
         (f"已发布方案 {published['name'].iloc[0]}" if len(published) else
          f"{len(drafts)} 个草稿方案，未发布" if len(drafts) else "还没有网格方案"),
         "覆盖地图、人员分配、走访工作台都按已发布方案显示",
         f"python -m grids build {p} --user 账号；python -m grids assign {p} --user 账号；"
         f"python -m grids check {p}；无错误后在“网格规划”页发布" if not len(drafts) else
         f"python -m grids assign {p} --user 账号；python -m grids check {p}；无错误后在“网格规划”页发布")

    ordered = [steps[s["key"]] for s in STEPS]
    first = next((steps[k] for k in _PRIORITY if steps[k]["state"] in ("missing",)), None) or next(
        (steps[k] for k in _PRIORITY if steps[k]["state"] == "partial"), None)
    return {
        "workspace": p,
        "county": {"code": meta.get("county_code", ""), "name": meta.get("county_name", "")},
        "demo": bool(getattr(ws, "is_demo", False)),
        "steps": ordered,
        "next": first["next"] if first else "",
        "ready": all(s["state"] in ("done", "optional") for s in ordered),
    }


def format_status(status: dict[str, Any]) -> str:
    """The status as the lines ``python -m grids status`` prints."""
    mark = {"done": "✔", "partial": "◐", "missing": "✘", "optional": "○"}
    from grids.text import plain

    c = status["county"]  # names come from files: never print their control characters (terminal escapes)
    lines = [f"工作区 {plain(status['workspace'], limit=300)}：{plain(c['name'])}（{plain(c['code'])}）"
             f"{'（演示）' if status['demo'] else ''}"]
    for s in status["steps"]:
        lines.append(f"{mark[s['state']]} {s['title']}：{s['state_name']}。{s['detail']}")
        if s["blocks"]:
            lines.append(f"    影响：{s['blocks']}")
        if s["next"]:
            lines.append(f"    补齐：{s['next']}")
    lines.append(f"下一步：{status['next']}" if status["next"] else "各步都已完成。")
    return "\n".join(lines)
