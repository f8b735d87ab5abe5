"""A multi-county (city-scale) workspace, streamed to disk: admin layers in a GeoPackage, households in GeoParquet.

Every county outline of ``outlines/chifeng_counties_gcj02.geojson`` (12 counties of 赤峰市, GCJ-02, converted
to CGCS2000 here) is synthesised **one county at a time**: village seeds scattered in the outline, villages as
their Voronoi cells (clipped to the outline, computed in the county's Gauss-Krüger zone; a piece that a jagged
border cuts off a cell joins the neighbouring village, so every village is one polygon per landmass), towns as
connected groups of neighbouring villages, one branch per town with a few customer managers, one grid per
village in a published plan that :func:`grids.check.check_plan` finds no error in, and households clustered around the village seeds with credit records following the seed cooperative's
funnel ratios. The admin layers, branches, staff and grids go to a :class:`grids.workspace.GpkgWorkspace`; households
are written partition by partition to GeoParquet (:func:`grids.scale.write_households_parquet`), so peak memory
is one partition of households plus one county's polygons, whatever the city's size.

Examples
--------
>>> sorted(city_outlines(prefix="15040")["code"])
['150402', '150403', '150404']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geodata.demo import _cells, _dissolve, _grow, _polygonal, _spread_seeds
from grids.crs import gdf_gcj02_to_wgs84, gk_crs_for
from grids.errors import ValidationError, WorkspaceError
from grids.model import STORAGE_EPSG
from grids.scale import HOUSEHOLDS_META_KEY, write_households_parquet

__all__ = ["FUNNEL_SHARES", "City", "city_outlines", "county_households", "write_city"]

OUTLINES = Path(__file__).resolve().parent / "outlines" / "chifeng_counties_gcj02.geojson"

FUNNEL_SHARES: dict[str, float] = {
    "archived": 84_792 / 110_000,  # of registered
    "eligible": 53_054 / 84_792,  # of archived
    "granted": 52_195 / 53_054,  # of eligible
    "signed": 26_029 / 52_195,  # of granted
    "using": 20_210 / 26_029,  # of signed
}
"""Conditional shares of each funnel stage, from the seed cooperative (see DESIGN.md §1)."""

_KM2_PER_VILLAGE = 60.0
_DISTRICT_DENSITY = 4.0  # 市辖区 (codes 1504 0x) are denser than the banners and counties
_NO_POINT_SHARE = 0.03
_MAX_EDGE_DEG = 0.005  # longest outline edge (about 400-550 m), see write_city
_SEGMENTS = ("农牧户", "个体工商户", "小微企业", "公职人员", "社区居民")
_SEGMENT_P = (0.80, 0.06, 0.03, 0.05, 0.06)
_PRODUCT = {"农牧户": "福农卡", "个体工商户": "福商卡", "小微企业": "福商卡", "公职人员": "福薪卡", "社区居民": "福民卡"}
_LINES = {  # credit lines per product, yuan (whole thousands: sums are exact in float64)
    "福农卡": (40_000, 60_000, 80_000, 100_000, 300_000),
    "福商卡": (50_000, 100_000, 200_000, 500_000, 1_000_000),
    "福薪卡": (100_000, 200_000, 300_000, 500_000, 700_000),
    "福民卡": (50_000, 100_000, 200_000, 500_000),
}
_TOWN_STEMS = ("城关", "兴隆", "新华", "太平", "永丰", "红旗", "富裕", "三合", "长胜", "东升", "五一", "双井",
               "天山", "乌丹", "新惠", "大营子", "八里罕", "汐子", "宝国吐", "四道湾子")


@dataclass(frozen=True)
class City:
    """What :func:`write_city` wrote.

    Attributes
    ----------
    workspace : Path
        The GeoPackage workspace (admin units, branches, staff, one published plan of grids).
    households : Path
        The GeoParquet partition directory (``part.00000.parquet`` …).
    counties : DataFrame
        One row per county: ``code``, ``name``, ``households``, ``villages``, ``towns``, ``partitions``
        (the partition file names written for it).
    plan_id : str
        The published plan.
    """

    workspace: Path
    households: Path
    counties: pd.DataFrame
    plan_id: str


def city_outlines(*, prefix: str = "1504", counties: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """County outlines whose code starts with ``prefix`` (or is in ``counties``), in EPSG:4490.

    Raises
    ------
    ValidationError
        No outline matches; the message lists the available codes.
    """
    gcj = gpd.read_file(OUTLINES)
    codes = gcj["code"].astype(str)
    pick = codes.isin(list(counties)) if counties is not None else codes.str.startswith(str(prefix))
    if not pick.any():
        avail = "、".join(f"{c} {n}" for c, n in zip(codes, gcj["name"], strict=True))
        raise ValidationError(f"没有代码以 {prefix} 开头（或在 {counties} 中）的县界", fix=f"可用的县：{avail}")
    out = gdf_gcj02_to_wgs84(gcj[pick].reset_index(drop=True))
    out["code"] = out["code"].astype(str)
    return out


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder: sums exactly)."""
    w = np.asarray(weights, dtype=float)
    share = total * w / w.sum()
    base = np.floor(share).astype(np.int64)
    rest = total - int(base.sum())
    base[np.argsort(-(share - base), kind="stable")[:rest]] += 1
    return base


@dataclass
class _County:
    """One synthetic county in its Gauss-Krüger zone: towns, villages, branches, staff, grids."""

    code: str
    name: str
    epsg: int
    villages: gpd.GeoDataFrame  # GK: code, name, town_code, seed_x, seed_y, households, branch_id, staff_id
    towns: gpd.GeoDataFrame  # GK: code, name
    branches: gpd.GeoDataFrame  # GK points
    staff: pd.DataFrame


def _build_county(outline, *, code: str, name: str, households: int, rng: np.random.Generator) -> _County:
    """Towns, villages, branches and staff of one county (outline in EPSG:4490).

    Villages are Voronoi cells of random seeds clipped to the outline; where a jagged border cuts a cell in
    pieces, every piece is a cell of its own (:func:`geodata.demo._cells`). The ``n_vil`` largest pieces seed
    the villages and every other piece joins the village nearest to it through shared borders
    (:func:`geodata.demo._grow`), so a village is one polygon on each landmass it touches. Towns are grown the
    same way over the villages' neighbour graph, so a town is connected too.
    """
    epsg = gk_crs_for(gpd.GeoSeries([outline], crs=STORAGE_EPSG))
    gk = gpd.GeoSeries([outline], crs=STORAGE_EPSG).to_crs(epsg).iloc[0]
    gk = _polygonal(shapely.make_valid(gk))
    area_km2 = gk.area / 1e6
    n_vil = int(np.clip(round(area_km2 / _KM2_PER_VILLAGE), 12, 400))
    pts, pieces, edges = _cells(rng, gk, n_vil)
    # the n_vil largest pieces seed villages; the other pieces (cut off by the border) join a neighbour
    vseed = np.sort(np.argsort(-shapely.area(pieces), kind="stable")[:n_vil])
    region = _grow(rng, pts, edges, np.arange(len(pts)), vseed, noise=0.0)
    n_vil = len(vseed)
    cells = _dissolve(pieces, region, n_vil)
    seeds = pts[vseed]
    # towns: grown from well-spread villages over the villages' neighbour graph (shared borders)
    n_town = int(np.clip(round(n_vil / 12), 3, min(len(_TOWN_STEMS), n_vil)))
    pair = region[edges[:, :2].astype(np.int64)]
    pair = np.unique(np.sort(pair[pair[:, 0] != pair[:, 1]], axis=1), axis=0)
    vedges = np.column_stack([pair, np.hypot(*(seeds[pair[:, 0]] - seeds[pair[:, 1]]).T)])
    town_of = _grow(rng, seeds, vedges, np.arange(n_vil), _spread_seeds(rng, seeds, n_town), noise=0.3)
    town_codes = [f"{code}{100 + t:03d}" for t in range(n_town)]
    town_names = [f"{_TOWN_STEMS[t]}{'镇' if t % 3 else '乡'}" for t in range(n_town)]
    vil_codes, vil_names = [], []
    counters = np.zeros(n_town, dtype=int)
    for t in town_of:
        counters[t] += 1
        vil_codes.append(f"{town_codes[t]}{200 + counters[t]:03d}")
        vil_names.append(f"{town_names[t][:-1]}{counters[t]}村")
    town_geoms = list(_dissolve(cells, town_of, n_town))
    towns = gpd.GeoDataFrame({"code": town_codes, "name": town_names}, geometry=town_geoms, crs=epsg)
    # branches at the village seed nearest to each town's centroid; 2–4 customer managers each
    branch_ids = [f"B{code}{t:02d}" for t in range(n_town)]
    bxy = []
    staff_rows = []
    for t in range(n_town):
        members = np.flatnonzero(town_of == t)
        c = town_geoms[t].centroid
        bxy.append(seeds[members[np.argmin(np.hypot(seeds[members, 0] - c.x, seeds[members, 1] - c.y))]])
        for k in range(int(np.clip(len(members) // 5, 2, 4))):
            staff_rows.append({"staff_id": f"S{code}{t:02d}{k}", "name": f"{town_names[t][:-1]}客户经理{k + 1}",
                               "branch_id": branch_ids[t], "role": "客户经理"})
    staff = pd.DataFrame(staff_rows)
    branches = gpd.GeoDataFrame(
        {"branch_id": branch_ids, "name": [f"{n}信用社" for n in town_names],
         "kind": ["营业部" if t == 0 else "信用社" for t in range(n_town)], "town_code": town_codes},
        geometry=shapely.points(np.asarray(bxy)), crs=epsg,
    )
    # households per village: area-weighted with noise; staff round-robin inside the branch
    weights = np.sqrt(shapely.area(cells)) * rng.lognormal(0.0, 0.5, n_vil)
    per_village = _allocate(households, weights)
    staff_of: list[str] = []
    for t in town_of:
        ids = staff.loc[staff["branch_id"] == branch_ids[t], "staff_id"].to_numpy()
        staff_of.append(ids[len(staff_of) % len(ids)])
    villages = gpd.GeoDataFrame(
        {"code": vil_codes, "name": vil_names, "town_code": [town_codes[t] for t in town_of],
         "seed_x": seeds[:, 0], "seed_y": seeds[:, 1], "households": per_village,
         "branch_id": [branch_ids[t] for t in town_of], "staff_id": staff_of},
        geometry=cells, crs=epsg,
    )
    return _County(code, name, epsg, villages, towns, branches, staff)


def _household_chunk(county: _County, rows: pd.DataFrame, first_seq: int,
                     rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Households of some villages of a county (EPSG:4490), ``hh_id`` numbered from ``first_seq``."""
    counts = rows["households"].to_numpy(dtype=np.int64)
    n = int(counts.sum())
    xs, ys = np.empty(n), np.empty(n)
    start = 0
    for cnt, (_, v) in zip(counts, rows.iterrows(), strict=True):
        if cnt == 0:
            continue
        cell = v.geometry
        sigma = 0.35 * np.sqrt(max(cell.area, 1.0) / np.pi)
        x = v.seed_x + rng.normal(0.0, sigma, cnt)
        y = v.seed_y + rng.normal(0.0, sigma, cnt)
        shapely.prepare(cell)
        out = ~shapely.contains_xy(cell, x, y)
        x[out], y[out] = v.seed_x + rng.normal(0, sigma / 4, out.sum()), v.seed_y + rng.normal(0, sigma / 4, out.sum())
        out = ~shapely.contains_xy(cell, x, y)
        x[out], y[out] = v.seed_x, v.seed_y
        xs[start:start + cnt], ys[start:start + cnt] = x, y
        start += cnt
    lon, lat = pyproj.Transformer.from_crs(county.epsg, STORAGE_EPSG, always_xy=True).transform(xs, ys)
    geoms = shapely.points(lon, lat)
    geoms[rng.random(n) < _NO_POINT_SHARE] = None
    village = np.repeat(rows["code"].to_numpy(dtype=object), counts)
    group = rng.integers(1, 7, n)
    seq = pd.Series(np.arange(first_seq, first_seq + n)).astype(str).str.zfill(7)
    segment = np.asarray(_SEGMENTS, dtype=object)[rng.choice(len(_SEGMENTS), n, p=_SEGMENT_P)]
    product = pd.Series(segment).map(_PRODUCT).to_numpy(dtype=object)
    s = FUNNEL_SHARES
    archived = rng.random(n) < s["archived"]
    eligible = archived & (rng.random(n) < s["eligible"])
    granted = eligible & (rng.random(n) < s["granted"])
    signed = granted & (rng.random(n) < s["signed"])
    using = signed & (rng.random(n) < s["using"])
    amount = np.zeros(n)
    for prod, lines in _LINES.items():
        m = granted & (product == prod)
        amount[m] = rng.choice(np.asarray(lines, dtype=float), m.sum(), p=_line_weights(len(lines)))
    available = np.where(signed, amount, 0.0)
    balance = np.where(using, np.round(available * rng.uniform(0.3, 1.0, n), -2), 0.0)
    return gpd.GeoDataFrame(
        {
            "hh_id": (county.code + seq).to_numpy(dtype=object),
            "segment": segment,
            "village_code": village,
            "group_code": village + pd.Series(group).astype(str).str.zfill(3).to_numpy(dtype=object),
            "archived": archived,
            "eligible": eligible,
            "product": np.where(granted, product, np.array(None)),
            "granted_amount": amount,
            "signed": signed,
            "available_amount": available,
            "using": using,
            "balance": balance,
        },
        geometry=gpd.GeoSeries(geoms, crs=STORAGE_EPSG),
        crs=STORAGE_EPSG,
    )


def _line_weights(k: int) -> np.ndarray:
    w = 0.5 ** np.arange(k)
    return w / w.sum()


def county_households(county: _County, *, partition_size: int, rng: np.random.Generator
                      ) -> Iterator[gpd.GeoDataFrame]:
    """Households of one county, in chunks of whole villages of at most ``partition_size`` rows (when a single
    village is not larger), villages in Hilbert order of their seeds so each chunk covers a compact area."""
    v = county.villages
    order = np.argsort(gpd.GeoSeries(shapely.points(v["seed_x"], v["seed_y"])).hilbert_distance().to_numpy(),
                       kind="stable")
    v = v.iloc[order]
    counts = v["households"].to_numpy()
    seq, start, acc = 1, 0, 0
    for i, c in enumerate(counts):
        if acc and acc + c > partition_size:
            yield _household_chunk(county, v.iloc[start:i], seq, rng)
            seq, start, acc = seq + acc, i, 0
        acc += int(c)
    if acc:
        yield _household_chunk(county, v.iloc[start:], seq, rng)


def _to_storage(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(STORAGE_EPSG)


def write_city(out: str | os.PathLike, *, prefix: str = "1504", households: int = 1_000_000, seed: int = 1504,
               counties: Sequence[str] | None = None, partition_size: int = 250_000,
               overwrite: bool = False) -> City:
    """Generate a multi-county workspace, one county at a time, households streamed to GeoParquet.

    Parameters
    ----------
    out : str or Path
        A ``.gpkg`` path (households go to ``<name>_households/`` next to it) or a directory (``city.gpkg`` and
        ``households/`` inside it).
    prefix : str
        Counties whose code starts with this (``1504``: all 12 of 赤峰市; ``150422``: 巴林左旗 alone).
    households : int
        Households of the whole city, shared among counties by area (市辖区 four times denser).
    seed : int
        Random seed; the same arguments give the same city.
    counties : sequence of str, optional
        Exactly these county codes instead of ``prefix``.
    partition_size : int
        Maximum households per GeoParquet partition; bounds the generator's memory.
    overwrite : bool
        Replace an existing workspace and its household partitions.

    Returns
    -------
    City
        Paths, the published plan and a per-county summary.

    Raises
    ------
    WorkspaceError
        The workspace or partition directory exists and ``overwrite`` is false.
    """
    from grids.plans import publish_plan, save_draft
    from grids.workspace import GpkgWorkspace

    if households < 0:
        raise ValidationError(f"住户数 {households} 无效", fix="住户数应为非负整数，例如 1000000")
    out = Path(out)
    if out.suffix.lower() == ".gpkg":
        ws_path, hh_dir = out, out.with_name(out.stem + "_households")
    else:
        ws_path, hh_dir = out / "city.gpkg", out / "households"
    outlines = city_outlines(prefix=prefix, counties=counties)
    # short edges: a border vertex the clipping adds in one county's zone stays on its neighbour's border
    outlines = outlines.set_geometry(shapely.segmentize(np.asarray(outlines.geometry.values), _MAX_EDGE_DEG),
                                     crs=STORAGE_EPSG)
    old_parts = sorted(hh_dir.glob("part.*.parquet")) if hh_dir.exists() else []
    if (ws_path.exists() or old_parts) and not overwrite:
        raise WorkspaceError(f"{ws_path} 或 {hh_dir} 已存在。修正方法：换一个路径，或传 overwrite=True（命令行 --force）覆盖")
    for f in old_parts:
        f.unlink()
    city_name = str(outlines["city"].iloc[0]) if "city" in outlines.columns and len(outlines) == 12 else "、".join(
        outlines["name"].astype(str))
    ws = GpkgWorkspace.create(ws_path, county_code=str(prefix if counties is None else ",".join(counties)),
                          county_name=city_name, demo=True, overwrite=overwrite)
    gk_area = np.array([gpd.GeoSeries([g], crs=STORAGE_EPSG).to_crs(gk_crs_for(gpd.GeoSeries([g], crs=STORAGE_EPSG)))
                        .area.iloc[0] for g in outlines.geometry])
    density = np.where(outlines["code"].str[4] == "0", _DISTRICT_DENSITY, 1.0)
    per_county = _allocate(households, gk_area * density)
    rng = np.random.default_rng(seed)
    summary, grids = [], []
    for (_, row), n in zip(outlines.iterrows(), per_county, strict=True):
        county = _build_county(row.geometry, code=row["code"], name=str(row["name"]), households=int(n), rng=rng)
        files = write_households_parquet(county_households(county, partition_size=partition_size, rng=rng),
                                         hh_dir, partition_size=partition_size, append=True)
        _write_admin(ws, county, row)
        grids.append(_grids_of(county))
        summary.append({"code": county.code, "name": county.name, "households": int(n),
                        "villages": len(county.villages), "towns": len(county.towns),
                        "partitions": [f.name for f in files]})
    plan = pd.concat(grids, ignore_index=True)
    plan_id = save_draft(ws, gpd.GeoDataFrame(plan, geometry="geometry", crs=STORAGE_EPSG), name="全市村级网格",
                         params={"generator": "geodata.city", "seed": seed, "households": households}, actor="demo")
    publish_plan(ws, plan_id, actor="demo")
    with contextlib.suppress(ValueError):
        rel = os.path.relpath(hh_dir, ws_path.parent)
        ws.set_meta(HOUSEHOLDS_META_KEY, rel, actor="demo")
    return City(ws_path, hh_dir, pd.DataFrame(summary), plan_id)


def _write_admin(ws, county: _County, outline_row: pd.Series) -> None:
    """The county's admin units, branches and staff, appended in one transaction."""
    v, t = county.villages, county.towns
    units = pd.concat([
        gpd.GeoDataFrame({"code": [county.code], "name": [county.name], "level": ["county"], "parent_code": [None]},
                         geometry=[outline_row.geometry], crs=STORAGE_EPSG),
        _to_storage(gpd.GeoDataFrame({"code": t["code"], "name": t["name"], "level": "town",
                                      "parent_code": county.code}, geometry=t.geometry, crs=county.epsg)),
        _to_storage(gpd.GeoDataFrame({"code": v["code"], "name": v["name"], "level": "village",
                                      "parent_code": v["town_code"]}, geometry=v.geometry, crs=county.epsg)),
    ], ignore_index=True)
    with ws.transaction(actor="demo", action=f"生成 {county.name} 行政区划、网点与员工") as tx:
        tx.append("admin_units", gpd.GeoDataFrame(units, geometry="geometry", crs=STORAGE_EPSG))
        tx.append("branches", _to_storage(county.branches))
        tx.append("staff", county.staff)


def _grids_of(county: _County) -> gpd.GeoDataFrame:
    """One rural grid per village, assigned to the town's branch and one of its customer managers."""
    v = county.villages
    return _to_storage(gpd.GeoDataFrame(
        {"grid_id": v["code"], "code": v["code"], "name": v["name"] + "网格", "kind": "rural",
         "town_code": v["town_code"], "source_codes": v["code"], "households": v["households"].astype("int64"),
         "branch_id": v["branch_id"], "staff_id": v["staff_id"]},
        geometry=v.geometry, crs=county.epsg,
    ))
