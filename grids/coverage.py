"""Households → grids, the credit funnel, uncovered households and visit progress.

The funnel follows one household file (建档) from registration to credit use:

=================  =====================================================  ==============================
column             definition                                             rate
=================  =====================================================  ==============================
``registered``     households in the table (登记户数)
``closed``         not archived and closed by their latest survey          (已迁出/不符合条件, see below)
``archived``       ``archived`` is true (已建档)                           ``coverage_rate`` = archived /
                                                                          (registered − closed)
``eligible``       ``eligible`` is true (符合授信条件)
``granted``        ``granted_amount > 0`` (已授信)                         ``granted_rate`` = granted / eligible
``granted_amount`` sum of ``granted_amount`` (授信总额, yuan)
``signed``         ``signed`` is true (签约发卡)                           ``signed_rate`` = signed / granted
``available_amount`` sum of ``available_amount`` (签约可用信金额, yuan)
``using``          ``using`` is true (用信)                                ``using_rate`` = using / signed
``balance``        sum of ``balance`` (用信余额, yuan)
=================  =====================================================  ==============================

The coverage denominator (应建档户数) is ``registered − closed``: a household whose latest survey says 已迁出 or
不符合条件 and that has no file yet is owed no visit (:mod:`grids.survey`); an archived household stays counted,
so the rate never exceeds 1. ``closed`` is counted only when the closed households are passed (``closed=``, from
:func:`grids.survey.closed_ids`); without surveys it is 0 and every figure is as before.

A rate whose denominator is zero is ``NaN`` (``null`` in JSON). Flags are counted as stored; inconsistent
records (signed but not granted…) are reported by :func:`grids.credit.check_credit`, not hidden here.

Examples
--------
>>> import geopandas as gpd, shapely
>>> grids = gpd.GeoDataFrame({"grid_id": ["G1", "G2"], "source_codes": ["150422100201", "150422100202"]},
...                          geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4490)
>>> hh = gpd.GeoDataFrame({"hh_id": ["a", "b", "c"], "village_code": [None, "150422100202", "150422999999"]},
...                       geometry=[shapely.Point(0.5, 0.5), None, None], crs=4490)
>>> locate_households(hh, grids)[["grid_id", "method"]].values.tolist()
[['G1', 'point'], ['G2', 'village_code'], [nan, nan]]
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.crs import gk_crs_for, to_gk
from grids.errors import ValidationError
from grids.household_status import NOT_ARCHIVED, flag_column

__all__ = [
    "AMOUNT_COLUMNS",
    "BY_CHOICES",
    "COUNT_COLUMNS",
    "FUNNEL_COLUMNS",
    "FUNNEL_LABELS",
    "behind_quota",
    "county_summary",
    "funnel",
    "locate_households",
    "locate_in_workspace",
    "uncovered_households",
    "weekly_visits",
    "with_rates",
]

FUNNEL_COLUMNS: tuple[str, ...] = (
    "registered", "closed", "archived", "coverage_rate", "eligible", "granted", "granted_rate", "granted_amount",
    "signed", "signed_rate", "available_amount", "using", "using_rate", "balance",
)
"""Columns of :func:`funnel`, in display order (also the keys of :func:`county_summary`)."""

FUNNEL_LABELS: dict[str, str] = {
    "registered": "登记户数", "closed": "已迁出/不符合条件", "archived": "已建档", "coverage_rate": "建档率", "eligible": "符合条件",
    "granted": "授信户数", "granted_rate": "授信率", "granted_amount": "授信总额", "signed": "签约户数",
    "signed_rate": "签约率", "available_amount": "签约可用信金额", "using": "用信户数", "using_rate": "用信率",
    "balance": "用信余额",
}
"""Chinese labels of the funnel columns."""

BY_CHOICES: dict[str, str] = {
    "town": "镇/乡/苏木/街道", "village": "村/嘎查/社区", "grid": "网格", "branch": "网点", "staff": "客户经理",
    "segment": "客户类型", "product": "产品",
}
"""Breakdowns of :func:`funnel` and their Chinese names."""

COUNT_COLUMNS = ("registered", "closed", "archived", "eligible", "granted", "signed", "using")
AMOUNT_COLUMNS = ("granted_amount", "available_amount", "balance")
_RATES = {
    "coverage_rate": ("archived", "registered"),
    "granted_rate": ("granted", "eligible"),
    "signed_rate": ("signed", "granted"),
    "using_rate": ("using", "signed"),
}
UNLOCATED = "（未定位）"
UNASSIGNED = "（未分配）"

# --------------------------------------------------------------------------------------------------------
# households → grids
# --------------------------------------------------------------------------------------------------------


def _text(series: pd.Series | None, n: int) -> np.ndarray:
    """Object array of stripped strings, ``None`` for missing/empty values."""
    if series is None:
        return np.full(n, None, dtype=object)
    s = series.astype("string").str.strip()
    s = s.where(s.str.len() > 0)
    # pandas-stubs: na_value excludes None, which pandas accepts
    out: np.ndarray = s.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
    return out


def _code_index(grids: pd.DataFrame) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """``code → grid positions`` for each listed source code, and ``village → grid positions`` for groups."""
    exact: dict[str, list[int]] = {}
    by_village: dict[str, list[int]] = {}
    if "source_codes" not in grids.columns:
        return exact, by_village
    for pos, value in enumerate(_text(grids["source_codes"], len(grids))):
        if value is None:
            continue
        for code in {c.strip() for c in value.split(",") if c.strip()}:
            exact.setdefault(code, []).append(pos)
            if len(code) == 15 and code.isdigit():
                lst = by_village.setdefault(code[:12], [])
                if pos not in lst:
                    lst.append(pos)
    return exact, by_village


def _unit_to_grid(admin_units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, codes: set[str]) -> dict[str, int]:
    """Grid position holding a point inside each admin unit in ``codes`` (its ``point_on_surface``).

    The same rule :func:`grids.build.household_points` uses when it counts households per grid, so a
    household known only by a code that several grids share lands where the build counted it.
    """
    units = admin_units[admin_units["code"].astype("string").isin(list(codes))]
    units = units[~(units.geometry.is_empty | units.geometry.isna())]
    if not len(units) or not len(grids):
        return {}
    # the representative point is taken in the Gauss-Krüger zone, as grids.build does (it differs in degrees)
    epsg = gk_crs_for(grids)
    rep_points = gpd.GeoSeries(shapely.point_on_surface(to_gk(units.geometry, epsg=epsg).values), crs=epsg)
    reps = rep_points.to_crs(grids.crs).values if grids.crs is not None else rep_points.values
    tree = shapely.STRtree(np.asarray(grids.geometry.values, dtype=object))
    ui, gi = tree.query(reps, predicate="intersects")
    out: dict[str, int] = {}
    codes_arr = units["code"].astype(str).to_numpy()
    for u, g in sorted(zip(ui.tolist(), gi.tolist(), strict=True)):
        out.setdefault(codes_arr[u], int(g))
    return out


def _grid_list(grids: pd.DataFrame, positions: Sequence[int], limit: int = 5) -> str:
    ids = [str(grids["grid_id"].iloc[p]) for p in positions[:limit]]
    return "、".join(ids) + ("…" if len(positions) > limit else "")


def locate_households(households: pd.DataFrame, grids: gpd.GeoDataFrame, *,
                      admin_units: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """Place each household in one grid of a plan, by its point or else by its group/village code.

    Points are joined by one vectorised STRtree query over the grid polygons (a point on a shared edge goes to
    the first grid in table order; a point in two overlapping grids likewise, with a note). A household without
    a point — or whose point lies in no grid — goes to the grid whose ``source_codes`` lists its group code,
    else its village code, else the only grid holding groups of its village. With ``admin_units`` a code that no
    grid lists, or that several grids share, goes to the grid holding a point inside that unit's polygon — the
    rule :func:`grids.build.household_points` counts households by, so the join agrees with the plan's counts.

    Parameters
    ----------
    households : DataFrame or GeoDataFrame
        Columns ``hh_id``, ``village_code``, ``group_code`` (each optional) and point geometry where known.
    grids : GeoDataFrame
        One plan's grids: ``grid_id``, ``source_codes`` (comma-separated admin codes / block ids), and optionally
        ``code``, ``branch_id``, ``staff_id``.
    admin_units : GeoDataFrame, optional
        Town/village/group polygons with ``code``, to place codes that no grid lists.

    Returns
    -------
    DataFrame
        Aligned to ``households.index``: ``hh_id``, ``grid_id``, ``code``, ``branch_id``, ``staff_id``,
        ``method`` (``point``, ``group_code``, ``village_code``, ``admin_unit``, or ``override`` for a household
        moved by hand in the plan — column ``hh_overrides``; missing when unplaced),
        ``reason`` (why a household could not be placed, in Chinese) and ``note``.
    """
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValidationError("网格必须是 GeoDataFrame", fix="传入方案的网格（grids.plans.read_grids）")
    if "grid_id" not in grids.columns:
        raise ValidationError("网格缺少 grid_id 列", column="grid_id", fix="传入方案的网格（grids.plans.read_grids）")
    n = len(households)
    pos = np.full(n, -1, dtype=np.int64)
    method = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    note = np.full(n, None, dtype=object)
    grid_geoms = grids.geometry.values

    # 1. points, one STRtree query ('intersects' lets the tree prepare the polygons; for points it is
    #    'within' plus the boundary)
    if (isinstance(households, gpd.GeoDataFrame) and households.geometry.name in households.columns and n
            and len(grids)):
        hh = households
        if hh.crs is not None and grids.crs is not None and not hh.crs.equals(grids.crs):
            hh = hh.to_crs(grids.crs)
        pts = np.asarray(hh.geometry.values, dtype=object)
        valid = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        idx_valid = np.flatnonzero(valid)
        tree = shapely.STRtree(np.asarray(grid_geoms, dtype=object))
        src, tgt = tree.query(pts[idx_valid], predicate="intersects")
        src = idx_valid[src]
        counts = np.bincount(src, minlength=n)
        multi = counts > 1
        if multi.any():
            order = np.lexsort((tgt, src))
            src, tgt = src[order], tgt[order]
            keep = np.ones(len(src), dtype=bool)
            keep[1:] = src[1:] != src[:-1]
            inside = shapely.within(pts[src[~keep]], np.asarray(grid_geoms, dtype=object)[tgt[~keep]])
            for i in np.unique(src[~keep][inside]):
                note[i] = "坐标落在多个网格的重叠处，取第一个网格"
            src, tgt = src[keep], tgt[keep]
        pos[src] = tgt
        method[src] = "point"
        outside = valid & (pos < 0)
        for i in np.flatnonzero(outside):
            note[i] = "坐标不在任何网格内"
    else:
        valid = np.zeros(n, dtype=bool)

    # 2. codes, for households with no point or a point outside every grid
    todo = np.flatnonzero(pos < 0)
    if len(todo):
        exact, by_village = _code_index(grids)
        group = _text(households["group_code"] if "group_code" in households.columns else None, n)
        village = _text(households["village_code"] if "village_code" in households.columns else None, n)
        unit_grid: dict[str, int] = {}
        if admin_units is not None and len(admin_units):
            wanted = {c for c in np.concatenate([group[todo], village[todo]]) if c is not None}
            wanted = {c for c in wanted if len(exact.get(c, ())) != 1}
            unit_grid = _unit_to_grid(admin_units, grids, wanted)
        for i in todo:
            g, v = group[i], village[i]
            if v is None and g is not None and len(g) == 15:
                v = g[:12]
            found, why = _by_code(g, v, exact, by_village, unit_grid, grids)
            if found >= 0:
                pos[i] = found
                method[i] = why
            else:
                where = ""
                if valid[i]:
                    x, y = shapely.get_x(pts[i]), shapely.get_y(pts[i])
                    where = f"坐标 ({x:.5f}, {y:.5f}) 不在任何网格内，且"
                reason[i] = where + why

    # 3. hand-made moves (grids.edit.move_households_in_plan, column ``hh_overrides``) win over location
    if "hh_overrides" in grids.columns and "hh_id" in households.columns and n:
        moved: dict[str, int] = {}
        for k, ids in enumerate(grids["hh_overrides"].tolist()):
            if isinstance(ids, str) and ids:
                moved.update(dict.fromkeys(ids.split(","), k))
        if moved:
            hit = pd.Series(households["hh_id"].astype(str).to_numpy()).map(moved)
            m = hit.notna().to_numpy()
            pos[m] = hit[m].astype(np.int64).to_numpy()
            method[m] = "override"
            reason[m] = None

    # 4. the result, by array takes of small typed arrays (a million object strings would cost ~1 s)
    placed = pos >= 0
    fill = np.where(placed, pos, -1)

    def take(col: str) -> Any:
        if col not in grids.columns or not len(grids):
            return pd.array([None] * n, dtype="str")
        # pandas-stubs: na_value excludes None, which pandas accepts
        values: np.ndarray = grids[col].to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
        small = pd.array(values, dtype="str")
        return small.take(fill, allow_fill=True)

    methods = np.array(["point", "group_code", "village_code", "admin_unit", "override"], dtype=object)
    codes = np.full(n, -1, dtype=np.int64)
    for k, m in enumerate(methods):
        codes[method == m] = k
    out = pd.DataFrame(
        {
            "hh_id": households["hh_id"].array if "hh_id" in households.columns else pd.array([None] * n, dtype="str"),
            "grid_id": take("grid_id"),
            "code": take("code"),
            "branch_id": take("branch_id"),
            "staff_id": take("staff_id"),
            "method": pd.array(methods.tolist(), dtype="str").take(codes, allow_fill=True),
            "reason": pd.Series(reason, dtype=object).array,
            "note": pd.Series(note, dtype=object).array,
        },
        index=households.index,
    )
    return out


def locate_in_workspace(ws: Any, grids: gpd.GeoDataFrame, *,
                        households: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`locate_households` of a workspace's households (or ``households``) on ``grids``, with its admin
    polygons, so that households known only by a shared code land where the plan counted them.
    """
    hh = ws.read("households") if households is None else households
    admin = ws.read("admin_units", columns=["code", "level"])
    return locate_households(hh, grids, admin_units=admin)


def _by_code(group: str | None, village: str | None, exact: Mapping[str, list[int]],
             by_village: Mapping[str, list[int]], unit_grid: Mapping[str, int],
             grids: pd.DataFrame) -> tuple[int, str]:
    """Grid position found for a household's codes and how, or ``(-1, reason)``."""
    if group is None and village is None:
        return -1, "没有坐标，也没有村/组代码，无法定位。请补充坐标或组代码"
    ambiguous: list[str] = []
    for code, how in ((group, "group_code"), (village, "village_code")):
        if code is None:
            continue
        hits = exact.get(code, [])
        if len(hits) == 1:
            return hits[0], how
        if len(hits) > 1:
            ambiguous.append(f"代码 {code} 分属 {len(hits)} 个网格（{_grid_list(grids, hits)}）")
    if village is not None:
        hits = by_village.get(village, [])
        if len(hits) == 1:
            return hits[0], "village_code"
        if len(hits) > 1 and group is None:
            ambiguous.append(f"村 {village} 的各组分属 {len(hits)} 个网格（{_grid_list(grids, hits)}）")
    for code in (group, village):
        if code is not None and code in unit_grid:
            return unit_grid[code], "admin_unit"
    if ambiguous:
        return -1, "；".join(ambiguous) + "，仅凭代码无法确定网格。请补充组代码或坐标"
    codes = "、".join(c for c in (group, village) if c)
    return -1, f"代码 {codes} 不属于方案中的任何网格。请检查代码，或补充坐标"


# --------------------------------------------------------------------------------------------------------
# the funnel
# --------------------------------------------------------------------------------------------------------


def _amount(households: pd.DataFrame, col: str) -> np.ndarray:
    if col not in households.columns:
        return np.zeros(len(households))
    return pd.to_numeric(households[col], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def _closed(households: pd.DataFrame, closed: Collection[str] | None) -> np.ndarray:
    """Which households are closed by their latest survey (already archived ones are not: they stay counted)."""
    if not closed or "hh_id" not in households.columns:
        return np.zeros(len(households), dtype=bool)
    shut = households["hh_id"].astype(str).isin(set(map(str, closed))).to_numpy()
    closed_now: np.ndarray = shut & ~flag_column(households, "archived")
    return closed_now


def _measures(households: pd.DataFrame, closed: Collection[str] | None = None) -> pd.DataFrame:
    granted_amount = _amount(households, "granted_amount")
    return pd.DataFrame(
        {
            "registered": np.ones(len(households), dtype=np.int64),
            "closed": _closed(households, closed),
            "archived": flag_column(households, "archived"),
            "eligible": flag_column(households, "eligible"),
            "granted": granted_amount > 0,
            "granted_amount": np.where(granted_amount > 0, granted_amount, 0.0),
            "signed": flag_column(households, "signed"),
            "available_amount": _amount(households, "available_amount"),
            "using": flag_column(households, "using"),
            "balance": _amount(households, "balance"),
        },
        index=households.index,
    )


def with_rates(sums: pd.DataFrame) -> pd.DataFrame:
    """Summed counts and amounts (:data:`COUNT_COLUMNS`, :data:`AMOUNT_COLUMNS`) → the funnel table with rates.

    Rates are recomputed from the sums (never averaged), so partial sums from partitions combine exactly.
    Sums without ``closed`` (made before surveys existed) count none closed.
    """
    out = sums.copy()
    if "closed" not in out.columns:
        out["closed"] = 0
    for col in COUNT_COLUMNS:
        out[col] = out[col].astype(np.int64)
    for rate, (num, den) in _RATES.items():
        den_values = out[den].astype(float)
        if rate == "coverage_rate":  # 应建档户数: the closed households are owed no file
            den_values = den_values - out["closed"].astype(float)
        out[rate] = (out[num] / den_values.where(den_values > 0)).astype(float)
    return out[list(FUNNEL_COLUMNS)]


def _keys(households: pd.DataFrame, by: str, located: pd.DataFrame | None) -> pd.Series:
    """The breakdown key of each household (missing values labelled, so levels still add up)."""
    n = len(households)
    if by in ("town", "village"):
        village = pd.Series(_text(households.get("village_code"), n), index=households.index, dtype=object)
        group = pd.Series(_text(households.get("group_code"), n), index=households.index, dtype=object)
        village = village.where(village.notna(), group.str[:12])
        key = village.str[:9] if by == "town" else village
        return key.fillna("（无代码）")
    if by in ("grid", "branch", "staff"):
        if located is None:
            raise ValidationError(
                f"按{BY_CHOICES[by]}汇总需要网格定位结果", fix="先用 locate_households(households, grids) 定位，"
                "把结果作为 located= 传入（命令行：工作区里需要有网格方案）"
            )
        loc = located.reindex(households.index)
        col = {"grid": "grid_id", "branch": "branch_id", "staff": "staff_id"}[by]
        key = loc[col].astype(object)
        key = key.where(key.notna(), np.where(loc["grid_id"].isna(), UNLOCATED, UNASSIGNED))
        return key.astype(object)
    if by in ("segment", "product"):
        s = pd.Series(_text(households.get(by), n), index=households.index, dtype=object)
        return s.fillna("（无产品）" if by == "product" else "（未填）")
    if by in households.columns:
        return households[by].astype(object).fillna("（空）")
    raise ValidationError(
        f"不能按 “{by}” 汇总", fix=f"可选：{'、'.join(f'{k}（{v}）' for k, v in BY_CHOICES.items())}"
    )


def funnel(households: pd.DataFrame, *, by: str | None = None, located: pd.DataFrame | None = None,
           names: Mapping[str, str] | None = None, closed: Collection[str] | None = None) -> pd.DataFrame:
    """The credit funnel for the whole table, or one row per town, village, grid, branch, staff, segment, product.

    Parameters
    ----------
    households : DataFrame
        The ``households`` layer (``archived``, ``eligible``, ``granted_amount``, ``signed``,
        ``available_amount``, ``using``, ``balance``, ``village_code``, ``group_code``, ``segment``, ``product``).
    by : {None, 'town', 'village', 'grid', 'branch', 'staff', 'segment', 'product'}
        ``None`` gives one row (index ``全县``). Households without a key are counted under a label such as
        ``（未定位）`` or ``（未分配）``, so the rows always add up to the county.
    located : DataFrame, optional
        :func:`locate_households` result; needed for ``grid``, ``branch`` and ``staff``.
    names : mapping, optional
        Key → display name; adds a ``name`` column.
    closed : collection of str, optional
        ``hh_id`` of the households closed by their latest survey (:func:`grids.survey.closed_ids`); those not
        archived leave the coverage denominator.

    Returns
    -------
    DataFrame
        Columns :data:`FUNNEL_COLUMNS` (counts int, rates fractions, amounts yuan), indexed by the key.

    Examples
    --------
    >>> import pandas as pd
    >>> hh = pd.DataFrame({"archived": [True, True, False], "eligible": [True, True, False],
    ...                    "granted_amount": [50000.0, 0.0, 0.0], "signed": [True, False, False],
    ...                    "available_amount": [50000.0, 0, 0], "using": [False, False, False],
    ...                    "balance": [0.0, 0, 0]})
    >>> row = funnel(hh).iloc[0]
    >>> int(row.registered), round(float(row.coverage_rate), 3), float(row.granted_rate), float(row.signed_rate)
    (3, 0.667, 0.5, 1.0)
    """
    measures = _measures(households, closed)
    if by is None:
        sums = measures.sum().to_frame("全县").T
        sums.index.name = "county"
    else:
        keys = _keys(households, by, located)
        sums = measures.groupby(keys.to_numpy(), sort=True).sum()
        sums.index.name = by
    out = with_rates(sums)
    if names is not None:
        out.insert(0, "name", [names.get(k, k) for k in out.index])
    return out


def county_summary(households: pd.DataFrame, *, closed: Collection[str] | None = None) -> dict[str, Any]:
    """The county funnel as a plain dict: counts as int, rates as fractions (None when undefined), yuan.

    Examples
    --------
    >>> import pandas as pd
    >>> county_summary(pd.DataFrame({"archived": [True, False]}))["coverage_rate"]
    0.5
    """
    row = funnel(households, closed=closed).iloc[0]
    return _record(row)


def _record(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in FUNNEL_COLUMNS:
        v = row[col]
        if col in COUNT_COLUMNS:
            out[col] = int(v)
        elif col in _RATES:
            out[col] = None if pd.isna(v) else float(v)
        else:
            out[col] = round(float(v), 2)
    return out


def funnel_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a :func:`funnel` table as JSON-ready dicts (``key`` and ``name`` first)."""
    rows = []
    for key, row in table.iterrows():
        rec: dict[str, Any] = {"key": str(key)}
        if "name" in table.columns:
            rec["name"] = str(row["name"])
        rec.update(_record(row))
        rows.append(rec)
    return rows


# --------------------------------------------------------------------------------------------------------
# uncovered households
# --------------------------------------------------------------------------------------------------------


def uncovered_households(households: pd.DataFrame, located: pd.DataFrame, *,
                         by: str | None = None, closed: Collection[str] | None = None) -> pd.DataFrame:
    """Households nobody covers yet: not archived (未建档), in a grid without staff, or in no grid.

    A household closed by its latest survey (``closed``: 已迁出, 不符合条件; :func:`grids.survey.closed_ids`) is
    on no to-do list and never listed here.

    Parameters
    ----------
    households : DataFrame
        The ``households`` layer.
    located : DataFrame
        :func:`locate_households` result for the same households.
    by : {None, 'grid', 'staff', 'branch'}
        ``None`` lists the households (``hh_id``, ``grid_id``, ``branch_id``, ``staff_id``, ``not_archived``,
        ``no_staff``, ``unlocated``, ``reason``, plus geometry when the input has it, so the list can be
        mapped); otherwise counts per key: ``uncovered``, ``not_archived``, ``no_staff``, ``unlocated``.

    Examples
    --------
    >>> import pandas as pd
    >>> hh = pd.DataFrame({"hh_id": ["a", "b", "c"], "archived": [True, False, True]})
    >>> loc = pd.DataFrame({"grid_id": ["G1", "G1", "G2"], "staff_id": ["S1", "S1", None]})
    >>> uncovered_households(hh, loc)[["hh_id", "reason"]].values.tolist()
    [['b', '未建档'], ['c', '网格无客户经理']]
    """
    loc = located.reindex(households.index)
    unlocated = loc["grid_id"].isna().to_numpy()
    no_staff = ~unlocated & loc["staff_id"].isna().to_numpy() if "staff_id" in loc else ~unlocated
    shut = (households["hh_id"].astype(str).isin(set(map(str, closed))).to_numpy()
            if closed and "hh_id" in households.columns else np.zeros(len(households), dtype=bool))
    not_archived = ~flag_column(households, "archived") & ~shut
    no_staff, unlocated = no_staff & ~shut, unlocated & ~shut
    any_ = not_archived | no_staff | unlocated
    if by is not None:
        if by not in ("grid", "staff", "branch"):
            raise ValidationError(f"未覆盖户不能按 “{by}” 汇总", fix="可选：grid、staff、branch")
        keys = _keys(households, by, loc)
        frame = pd.DataFrame({"uncovered": any_, "not_archived": not_archived, "no_staff": no_staff,
                              "unlocated": unlocated}, index=households.index).astype(np.int64)
        out = frame.groupby(keys.to_numpy(), sort=True).sum()
        out.index.name = by
        return out[out["uncovered"] > 0]
    labels = np.array(["", NOT_ARCHIVED], dtype=object)[not_archived.astype(int)]
    reasons = [
        "；".join(r for r in (a, "网格无客户经理" if s else "", "未定位到网格" if u else "") if r)
        for a, s, u in zip(labels[any_], no_staff[any_], unlocated[any_], strict=True)
    ]
    cols = {
        "hh_id": households["hh_id"].to_numpy()[any_] if "hh_id" in households else households.index[any_],
        "grid_id": loc["grid_id"].to_numpy()[any_],
        "branch_id": loc["branch_id"].to_numpy()[any_] if "branch_id" in loc else None,
        "staff_id": loc["staff_id"].to_numpy()[any_] if "staff_id" in loc else None,
        "not_archived": not_archived[any_],
        "no_staff": no_staff[any_],
        "unlocated": unlocated[any_],
        "reason": reasons,
    }
    out = pd.DataFrame(cols, index=households.index[any_])
    if isinstance(households, gpd.GeoDataFrame):
        out = gpd.GeoDataFrame(out, geometry=households.geometry.values[any_], crs=households.crs)
    return out


# --------------------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------------------


def _iso_week(dates: pd.Series) -> pd.Series:
    iso = dates.dt.isocalendar()
    week = iso["week"].astype(int).map("{:02d}".format).astype(str)
    weeks: pd.Series = iso["year"].astype(str) + "-W" + week
    return weeks  # (also empty)


def _visits_in(visits: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    v = visits.copy()
    v["visited_on"] = pd.to_datetime(v["visited_on"], errors="coerce")
    v = v[v["visited_on"].notna()]
    if start is not None:
        v = v[v["visited_on"] >= pd.Timestamp(start)]
    if end is not None:
        v = v[v["visited_on"] <= pd.Timestamp(end)]
    return v


def weekly_visits(visits: pd.DataFrame, *, by: str = "staff", staff: pd.DataFrame | None = None,
                  start: Any = None, end: Any = None) -> pd.DataFrame:
    """Visits per ISO week (``2019-W05``) and staff member or branch.

    Parameters
    ----------
    visits : DataFrame
        The ``visits`` layer (``hh_id``, ``staff_id``, ``visited_on``).
    by : {'staff', 'branch'}
        Group by the visiting staff member, or by their branch (needs ``staff`` with ``branch_id``).
    staff : DataFrame, optional
        The ``staff`` layer.
    start, end : date-like, optional
        Only visits on or after ``start`` and on or before ``end``.

    Returns
    -------
    DataFrame
        Columns ``week``, ``staff_id`` or ``branch_id``, ``visits`` (household visits: distinct household and
        day), ``households`` (distinct households), ``visit_days`` (distinct days), sorted by week and key.

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.DataFrame({"hh_id": ["a", "b", "a"], "staff_id": ["S1", "S1", "S1"],
    ...                   "visited_on": ["2019-01-07", "2019-01-08", "2019-01-14"]})
    >>> weekly_visits(v).values.tolist()
    [['2019-W02', 'S1', 2, 2, 2], ['2019-W03', 'S1', 1, 1, 1]]
    """
    if by not in ("staff", "branch"):
        raise ValidationError(f"走访进度不能按 “{by}” 汇总", fix="可选：staff（客户经理）、branch（网点）")
    v = _visits_in(visits, start, end).drop_duplicates(["hh_id", "staff_id", "visited_on"])
    key = "staff_id"
    if by == "branch":
        if staff is None or "branch_id" not in staff.columns:
            raise ValidationError("按网点汇总走访需要员工表（含 branch_id）", fix="传入 staff=工作区的 staff 图层")
        v = v.assign(branch_id=v["staff_id"].map(dict(zip(staff["staff_id"], staff["branch_id"], strict=True))))
        v["branch_id"] = v["branch_id"].fillna(UNASSIGNED)
        key = "branch_id"
    v = v.assign(week=_iso_week(v["visited_on"]))
    out = v.groupby(["week", key], sort=True).agg(
        visits=("hh_id", "size"), households=("hh_id", "nunique"), visit_days=("visited_on", "nunique")
    ).reset_index()
    return out.astype({"visits": np.int64, "households": np.int64, "visit_days": np.int64})


def behind_quota(visits: pd.DataFrame, staff: pd.DataFrame, *, quota_per_day: float = 12,
                 days_per_week: float | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Each customer manager's household visits against a quota, and who is behind.

    Parameters
    ----------
    visits : DataFrame
        The ``visits`` layer.
    staff : DataFrame
        The ``staff`` layer; every customer manager (``role`` 客户经理, or all rows without ``role``) gets a
        row, also those with no visit at all.
    quota_per_day : float
        Households to visit per visit day (default 12).
    days_per_week : float, optional
        Visit days expected per week. When given, the target is ``quota_per_day × days_per_week × weeks`` of
        the period (``start``…``end``, default the span of the visits); when not, the target is
        ``quota_per_day × the days the person actually went out``.
    start, end : date-like, optional
        The period.

    Returns
    -------
    DataFrame
        ``staff_id``, ``name``, ``branch_id``, ``visit_days``, ``visits`` (distinct household and day),
        ``target``, ``per_day``, ``shortfall`` (≥ 0), ``behind`` (short of the target, or no visit at all),
        sorted with the furthest behind first.

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.DataFrame({"hh_id": list("abcde"), "staff_id": ["S1"] * 3 + ["S2"] * 2,
    ...                   "visited_on": ["2019-01-07"] * 3 + ["2019-01-07", "2019-01-08"]})
    >>> s = pd.DataFrame({"staff_id": ["S1", "S2", "S3"], "name": ["甲", "乙", "丙"], "branch_id": "B1"})
    >>> behind_quota(v, s, quota_per_day=2)[["staff_id", "visits", "target", "behind"]].values.tolist()
    [['S3', 0, 0.0, True], ['S2', 2, 4.0, True], ['S1', 3, 2.0, False]]
    """
    if quota_per_day <= 0:
        raise ValidationError(f"每日走访定额 {quota_per_day} 无效", fix="定额应为正数，例如每个走访日 12 户")
    people = staff
    if "role" in staff.columns:
        people = staff[staff["role"].isna() | (staff["role"] == "客户经理")]
    v = _visits_in(visits, start, end).drop_duplicates(["hh_id", "staff_id", "visited_on"])
    per = v.groupby("staff_id").agg(visits=("hh_id", "size"), visit_days=("visited_on", "nunique"))
    out = pd.DataFrame({
        "staff_id": people["staff_id"].to_numpy(),
        "name": people["name"].to_numpy() if "name" in people else None,
        "branch_id": people["branch_id"].to_numpy() if "branch_id" in people else None,
    })
    out["visit_days"] = out["staff_id"].map(per["visit_days"]).fillna(0).astype(np.int64)
    out["visits"] = out["staff_id"].map(per["visits"]).fillna(0).astype(np.int64)
    if days_per_week is None:
        out["target"] = (out["visit_days"] * float(quota_per_day)).astype(float)
    else:
        first = pd.Timestamp(start) if start is not None else (v["visited_on"].min() if len(v) else None)
        last = pd.Timestamp(end) if end is not None else (v["visited_on"].max() if len(v) else None)
        weeks = 0 if first is None or last is None else math.ceil(((last - first).days + 1) / 7)
        out["target"] = float(quota_per_day) * float(days_per_week) * weeks
    out["per_day"] = (out["visits"] / out["visit_days"].where(out["visit_days"] > 0)).astype(float)
    out["shortfall"] = (out["target"] - out["visits"]).clip(lower=0).astype(float)
    out["behind"] = (out["visits"] < out["target"]) | (out["visit_days"] == 0)
    out["_idle"] = out["visit_days"] == 0
    out = out.sort_values(["behind", "_idle", "shortfall", "staff_id"], ascending=[False, False, False, True],
                          kind="stable")
    return out.drop(columns="_idle").reset_index(drop=True)
