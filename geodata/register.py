"""What a 联社 actually holds for a real county, generated: the files a planner brings to ``python -m grids``.

:func:`write_county_files` takes a generated county (:func:`geodata.demo.generate` on one of the shipped Chifeng
outlines, 巴林右旗 ``150423`` by default) and writes it the way a cooperative has it — not as a workspace:

- **villages** (``villages.csv``): one row per 村/嘎查/社区 with its 乡镇 name, its name and the 村委会 position
  (经度/纬度, taken from a web map: GCJ-02 by default). No polygons, no codes. About 10 % of the names are written
  with a variant suffix (三家村委会, 三家村民委员会, 巴彦嘎查村, 林东社区居委会).
- **register** (``register.xlsx`` or ``.csv``): the household register keyed by NAMES — 乡镇, 村 and 组 as the
  村委会 writes them. About 10 % of the village names are variants (suffix dropped or 村委会/嘎查村 added), about
  10 % of the group names too (一组 → 1组 / 01组 / 第一村民小组 / 一社); about 1.5 % of the rows carry a village
  name the workspace cannot know (a misspelling: one character of the name doubled or a 屯/营/沟 inserted);
  20 % have a GPS point (WGS84) and the rest none. Credit columns (建档, 授信金额, …) come from the generator's
  funnel.
- **branches** (``branches.csv``: 网点编号, 网点名称, 类型, 乡镇代码, 地址, 经度, 纬度, WGS84) and **staff**
  (``staff.csv``: 工号, 姓名, 所属网点, 岗位, 电话).

The returned :class:`CountyFiles` also holds the truth the files hide (which village a misspelt name means), for
tests and benchmarks. The same seed gives the same files.

Examples
--------
>>> variant_village_name("三家村", 0), variant_village_name("巴彦嘎查", 0), variant_village_name("林东社区", 0)
('三家村委会', '巴彦嘎查村', '林东社区居委会')
>>> [variant_group_name("三组", k) for k in range(4)]
['3组', '03组', '第三村民小组', '三社']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from geodata.demo import DEFAULT_OUTLINE, generate, load_outline
from grids.crs import wgs84_to_gcj02
from grids.errors import ValidationError

__all__ = ["DEFAULT_COUNTY", "CountyFiles", "variant_group_name", "variant_village_name", "write_county_files"]

DEFAULT_COUNTY = "150423"
"""巴林右旗: a shipped Chifeng outline other than the demo's 巴林左旗."""
VILLAGE_VARIANT_SHARE = 0.10
GROUP_VARIANT_SHARE = 0.10
UNKNOWN_SHARE = 0.015
GPS_SHARE = 0.20
SEAT_VARIANT_SHARE = 0.10

_INSERTS = ("屯", "营", "沟", "堡", "窝")


@dataclass
class CountyFiles:
    """The files :func:`write_county_files` wrote, and what they hide.

    Attributes
    ----------
    county, name : str
        County code and name.
    outline : Path
        The shipped outline file holding the county (GCJ-02; ``init --county CODE --coords gcj02``).
    villages, register, branches, staff : Path
        The files.
    seat_coords : str
        Datum of the villages file's 经度/纬度 (``gcj02`` or ``wgs84``).
    households : int
        Rows of the register.
    unknown : DataFrame
        One row per misspelt village name: ``乡镇``, ``登记名称``, ``标准名称`` (the village meant), ``rows``.
    variants : dict
        Rows written with a variant village name, with a variant group name; seats with a variant suffix.
    gps : int
        Register rows with a GPS point.
    """

    county: str
    name: str
    outline: Path
    villages: Path
    register: Path
    branches: Path
    staff: Path
    seat_coords: str
    households: int
    unknown: pd.DataFrame
    variants: dict[str, int] = field(default_factory=dict)
    gps: int = 0


def variant_village_name(name: str, k: int) -> str:
    """A way a 村委会 or a register writes village ``name`` (as the generator stores it): ``k`` picks the form.

    Villages (``…村``): 村委会, 村民委员会, the bare name; 嘎查: 嘎查村, 嘎查村委会, bare; 社区: 社区居委会, 居委会, bare.
    """
    for suffix, forms in (("嘎查", ("嘎查村", "嘎查村委会", "")), ("社区", ("社区居委会", "居委会", "")),
                          ("村", ("村委会", "村民委员会", ""))):
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            return stem + forms[k % len(forms)]
    return name


_NUMERALS = "一二三四五六七八九十"


def _group_number(name: str) -> int | None:
    text = name.removesuffix("组")
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十") and len(text) == 2 and text[1] in _NUMERALS:
        return 10 + _NUMERALS.index(text[1]) + 1
    if len(text) == 1 and text in _NUMERALS:
        return _NUMERALS.index(text) + 1
    if len(text) in (2, 3) and text[0] in _NUMERALS and text[1] == "十":
        tail = _NUMERALS.index(text[2]) + 1 if len(text) == 3 else 0
        return (_NUMERALS.index(text[0]) + 1) * 10 + tail
    return None


def variant_group_name(name: str, k: int) -> str:
    """A way a register writes group ``name`` (``三组``): ``3组``, ``03组``, ``第三村民小组``, ``三社`` (``k`` picks)."""
    n = _group_number(name)
    if n is None:
        return name
    chinese = name.removesuffix("组")
    return (f"{n}组", f"{n:02d}组", f"第{chinese}村民小组", f"{chinese}社")[k % 4]


def _misspell(rng: np.random.Generator, name: str, taken: set[str]) -> str | None:
    """A misspelling of ``name`` (a character inserted before the suffix) whose stem no village of ``taken`` has."""
    from grids.names import village_key

    suffix = next((s for s in ("嘎查", "社区", "村") if name.endswith(s)), "")
    stem = name[: -len(suffix)] if suffix else name
    for ch in rng.permutation(_INSERTS):
        cand = stem + str(ch) + suffix
        if village_key(cand) not in taken:
            return cand
    return None


def write_county_files(out_dir: str | os.PathLike, *, county: str = DEFAULT_COUNTY, households: int = 6000,
                       seed: int = 1423, register_format: str = "xlsx", seat_coords: str = "gcj02",
                       layers: dict | None = None) -> CountyFiles:
    """Generate a county and write what its 联社 holds (see the module docstring) into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Directory to write into (created).
    county : str
        A county of the shipped outlines (:data:`geodata.demo.DEFAULT_OUTLINE`).
    households : int
        Register rows.
    seed : int
        Random seed (the county and the files' variants).
    register_format : {'xlsx', 'csv'}
        The register's format (big registers: csv).
    seat_coords : {'gcj02', 'wgs84'}
        Datum of the villages file (村委会 positions taken from a web map are GCJ-02).
    layers : dict, optional
        An already generated county (:func:`geodata.demo.generate` output) instead of generating one.

    Returns
    -------
    CountyFiles
    """
    if register_format not in ("xlsx", "csv"):
        raise ValidationError(f"登记表格式 “{register_format}” 不支持", fix="用 xlsx 或 csv")
    if seat_coords not in ("gcj02", "wgs84"):
        raise ValidationError(f"坐标系 “{seat_coords}” 不支持", fix="用 gcj02 或 wgs84")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if layers is None:
        outline = load_outline(DEFAULT_OUTLINE, county=county, coords="gcj02")
        layers = generate(outline=outline, households=households, seed=seed)
    rng = np.random.default_rng(seed + 1)
    admin = layers["admin_units"]
    cty = admin[admin["level"] == "county"].iloc[0]
    towns = admin[admin["level"] == "town"].set_index("code")["name"]
    villages = admin[admin["level"] == "village"].reset_index(drop=True)
    groups = admin[admin["level"] == "group"].set_index("code")["name"]

    # villages: seat points (a point inside the village), names, town names; no codes, no polygons
    seats = shapely.point_on_surface(np.asarray(villages.geometry.values, dtype=object))
    xy = shapely.get_coordinates(seats)
    if seat_coords == "gcj02":
        xy = np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    seat_names = villages["name"].astype(str).to_numpy(dtype=object).copy()
    pick = np.flatnonzero(rng.random(len(villages)) < SEAT_VARIANT_SHARE)
    seat_names[pick] = [variant_village_name(n, 0 if k % 2 else 1) for k, n in zip(pick, seat_names[pick],
                                                                                    strict=True)]
    vfile = out / "villages.csv"
    pd.DataFrame({"乡镇": villages["parent_code"].map(towns).to_numpy(), "村名": seat_names,
                  "经度": np.round(xy[:, 0], 6), "纬度": np.round(xy[:, 1], 6)}).to_csv(vfile, index=False,
                                                                                   encoding="utf-8-sig")

    # the register: names instead of codes
    hh = layers["households"].reset_index(drop=True)
    n = len(hh)
    vname = hh["village_code"].map(villages.set_index("code")["name"]).astype(str).to_numpy(dtype=object)
    tname = hh["village_code"].str.slice(0, 9).map(towns).to_numpy(dtype=object)
    gname = hh["group_code"].map(groups).to_numpy(dtype=object)
    written_v = vname.copy()
    vvar = rng.random(n) < VILLAGE_VARIANT_SHARE
    forms = rng.integers(0, 3, n)
    written_v[vvar] = [variant_village_name(v, int(k)) for v, k in zip(vname[vvar], forms[vvar], strict=True)]
    written_g = gname.copy()
    has_g = np.array([isinstance(g, str) for g in gname])
    gvar = has_g & (rng.random(n) < GROUP_VARIANT_SHARE)
    gforms = rng.integers(0, 4, n)
    written_g[gvar] = [variant_group_name(g, int(k)) for g, k in zip(gname[gvar], gforms[gvar], strict=True)]

    # unknown names: whole groups of households of a few villages written with a misspelt village name
    from grids.names import village_key

    keys_by_town: dict[str, set[str]] = {}
    for code, name in zip(villages["code"], villages["name"], strict=True):
        keys_by_town.setdefault(code[:9], set()).add(village_key(name))
    want = int(np.ceil(UNKNOWN_SHARE * n))
    unknown_rows: list[dict] = []
    bad = np.zeros(n, dtype=bool)
    gcodes = hh["group_code"].fillna(hh["village_code"]).to_numpy(dtype=object)
    for g in rng.permutation(pd.unique(gcodes)):
        if bad.sum() >= want:
            break
        rows = np.flatnonzero(gcodes == g)
        v = vname[rows[0]]
        t = str(hh.at[int(rows[0]), "village_code"])[:9]
        wrong = _misspell(rng, v, keys_by_town[t])
        if wrong is None:
            continue
        keys_by_town[t].add(village_key(wrong))
        bad[rows] = True
        written_v[rows] = wrong
        unknown_rows.append({"乡镇": towns[t], "登记名称": wrong, "标准名称": v, "rows": len(rows)})
    unknown = pd.DataFrame(unknown_rows, columns=["乡镇", "登记名称", "标准名称", "rows"])

    # GPS points for 20 % (the households already visited), WGS84
    pts = np.asarray(hh.geometry.values, dtype=object)
    has_pt = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    gps = np.zeros(n, dtype=bool)
    cand = np.flatnonzero(has_pt)
    gps[rng.choice(cand, size=min(len(cand), round(GPS_SHARE * n)), replace=False)] = True
    pxy = np.full((n, 2), np.nan)
    pxy[gps] = shapely.get_coordinates(pts[gps])

    def yes_no(col: str) -> np.ndarray:
        return np.where(hh[col].fillna(False).astype(bool), "是", "否")

    reg = pd.DataFrame({
        "户号": hh["hh_id"].astype(str), "户主姓名": hh["head_name"], "身份证号": hh["id_no"].astype(str),
        "联系电话": hh["phone"].astype(str), "客户类型": hh["segment"], "乡镇": tname, "村": written_v,
        "组": written_g, "地址": hh["address"], "经度": np.round(pxy[:, 0], 6), "纬度": np.round(pxy[:, 1], 6),
        "是否建档": yes_no("archived"), "是否符合条件": yes_no("eligible"), "产品": hh["product"],
        "等级": hh["grade"], "授信金额": hh["granted_amount"], "是否签约": yes_no("signed"),
        "可用额度": hh["available_amount"], "是否用信": yes_no("using"), "贷款余额": hh["balance"],
        "担保方式": hh["guarantee"],
    })
    if "job_level" in hh:  # the 福薪卡 band follows 职务级别, as the 联社's rules say (a real register carries it)
        reg["职务级别"] = hh["job_level"].to_numpy()
    if "payroll" in hh:
        reg["工资代发"] = np.where(hh["payroll"].astype("boolean").fillna(False).to_numpy(dtype=bool), "是", "否")
    rfile = out / f"register.{register_format}"
    if register_format == "csv":
        reg.to_csv(rfile, index=False, encoding="utf-8-sig")
    else:
        reg.to_excel(rfile, index=False, sheet_name="农户登记表")

    b = layers["branches"]
    bxy = shapely.get_coordinates(np.asarray(b.geometry.values, dtype=object))
    bfile = out / "branches.csv"
    pd.DataFrame({"网点编号": b["branch_id"], "网点名称": b["name"], "类型": b["kind"], "乡镇代码": b["town_code"],
                  "地址": b["address"], "经度": np.round(bxy[:, 0], 6), "纬度": np.round(bxy[:, 1], 6),
                  }).to_csv(bfile, index=False, encoding="utf-8-sig")
    s = layers["staff"]
    sfile = out / "staff.csv"
    pd.DataFrame({"工号": s["staff_id"], "姓名": s["name"], "所属网点": s["branch_id"], "岗位": s["role"],
                  "电话": s["phone"].astype(str)}).to_csv(sfile, index=False, encoding="utf-8-sig")
    return CountyFiles(
        county=str(cty["code"]), name=str(cty["name"]), outline=DEFAULT_OUTLINE, villages=vfile, register=rfile,
        branches=bfile, staff=sfile, seat_coords=seat_coords, households=n, unknown=unknown,
        variants={"village": int((vvar & ~bad).sum()), "group": int(gvar.sum()), "seats": len(pick)},
        gps=int(gps.sum()))
