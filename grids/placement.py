"""How each household is known to be where it is, and what maps and lists may show of it.

A household is placed (``households.placed_by``) by its own GPS point (``point``), by its village/group code
(``code``) or by its village/group name matched through ``name_aliases`` (``name``). Grid assignment and
coverage place every household somewhere (:func:`grids.build.household_points`: its point, else a point inside
its group, else inside its village) so that counts add up; that point is *invented* for a household without
its own point. Maps and lists show only what is known:

- ``point``: the household has its own point — drawn as a point, sorted by distance;
- ``group``: no own point, but its 组 has a polygon — placed in the group (not drawn as a point);
- ``village``: known only by village (no own point, no group polygon) — counted at the village seat
  (:func:`village_counts`, “三家子村：23 户未定位”) and listed under its village, never drawn as a point;
- ``unplaced``: neither a point nor a known village or group.

Examples
--------
>>> import geopandas as gpd, shapely
>>> admin = gpd.GeoDataFrame({"code": ["150422100201", "150422100201001"], "name": ["三家子村", "一组"],
...                           "level": ["village", "group"]},
...                          geometry=[shapely.box(0, 0, 10, 10), shapely.box(0, 0, 5, 5)], crs=4549)
>>> hh = gpd.GeoDataFrame({"hh_id": ["a", "b", "c", "d"],
...                        "village_code": ["150422100201"] * 3 + [None],
...                        "group_code": [None, "150422100201001", None, None]},
...                       geometry=[shapely.Point(1, 1), None, None, None], crs=4549)
>>> placement(hh, admin).tolist()
['point', 'group', 'village', 'unplaced']
>>> village_counts(hh, admin)[["village_code", "households", "label"]].values.tolist()
[['150422100201', 1, '三家子村：1 户未定位']]
"""

from __future__ import annotations

from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from grids.crs import to_gk
from grids.model import CODE_LENGTH, STORAGE_CRS

__all__ = [
    "PLACEMENTS",
    "placement",
    "rederive_after_households",
    "rederive_message",
    "split_households",
    "village_counts",
    "village_of",
    "village_seats",
]

PLACEMENTS: dict[str, str] = {"point": "自有坐标", "group": "按组定位", "village": "仅知村", "unplaced": "未定位"}
"""Values of :func:`placement` → their Chinese labels."""


def _codes(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as stripped strings (``<NA>`` when missing or blank)."""
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    s = frame[column].astype("string").str.strip()
    return s.where(s.str.len() > 0)


def village_of(households: pd.DataFrame) -> pd.Series:
    """Village code of each household: ``village_code``, else the first 12 digits of a 15-digit ``group_code``.

    Examples
    --------
    >>> village_of(pd.DataFrame({"village_code": ["150422100201", None],
    ...                          "group_code": [None, "150422100202003"]})).tolist()
    ['150422100201', '150422100202']
    """
    village = _codes(households, "village_code")
    group = _codes(households, "group_code")
    from_group = group.where(group.str.len() == CODE_LENGTH["group"]).str.slice(0, CODE_LENGTH["village"])
    return village.fillna(from_group).rename("village_code")


def _has_polygon(admin_units: pd.DataFrame, level: str) -> set[str]:
    units = admin_units[admin_units["level"] == level]
    if isinstance(units, gpd.GeoDataFrame):
        units = units[~(units.geometry.isna() | units.geometry.is_empty)]
    return set(units["code"].dropna().astype(str))


def placement(households: pd.DataFrame, admin_units: pd.DataFrame) -> pd.Series:
    """How each household is known to be placed: ``point``, ``group``, ``village`` or ``unplaced``.

    ``placed_by`` decides where the importer set it: ``point`` needs the point to be there (else the codes
    decide), ``code``/``name`` mean the stored geometry, if any, is not the household's own position. Without
    ``placed_by`` a household with a point is ``point``; one without is ``group`` when its group code is a
    group with a polygon, ``village`` when its village code is a village of ``admin_units``, else ``unplaced``.

    Parameters
    ----------
    households : DataFrame or GeoDataFrame
        ``village_code``, ``group_code``, ``placed_by`` (each optional) and point geometry where known.
    admin_units : DataFrame or GeoDataFrame
        The admin units (``code``, ``level``; polygons where known).

    Returns
    -------
    Series
        Aligned to ``households.index``, values of :data:`PLACEMENTS`.
    """
    n = len(households)
    if isinstance(households, gpd.GeoDataFrame) and households.geometry.name in households.columns:
        geoms = np.asarray(households.geometry.values, dtype=object)
        has_point = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) if n else np.zeros(0, dtype=bool)
    else:
        has_point = np.zeros(n, dtype=bool)
    own_point = has_point & ~_codes(households, "placed_by").isin(["code", "name"]).to_numpy(dtype=bool)
    groups = _has_polygon(admin_units, "group")
    villages = set(admin_units.loc[admin_units["level"] == "village", "code"].dropna().astype(str))
    in_group = _codes(households, "group_code").isin(groups).to_numpy(dtype=bool)
    in_village = village_of(households).isin(villages).to_numpy(dtype=bool)
    out = np.where(own_point, "point", np.where(in_group, "group", np.where(in_village, "village", "unplaced")))
    return pd.Series(out.astype(object), index=households.index, name="placement")


def split_households(households: gpd.GeoDataFrame, admin_units: pd.DataFrame
                     ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The households located by their own point, and those known only by village.

    Parameters
    ----------
    households : GeoDataFrame
        As for :func:`placement`.
    admin_units : DataFrame or GeoDataFrame
        The admin units.

    Returns
    -------
    (GeoDataFrame, GeoDataFrame)
        ``households`` rows with placement ``point`` (to draw as points), and those with placement ``village``
        (to count at their village seat, :func:`village_counts`), each with a ``placement`` column; households
        placed by group or not at all are in neither.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> admin = pd.DataFrame({"code": ["150422100201"], "level": ["village"]})
    >>> hh = gpd.GeoDataFrame({"village_code": ["150422100201"] * 2, "placed_by": ["point", "name"]},
    ...                       geometry=[shapely.Point(1, 1), shapely.Point(2, 2)], crs=4549)
    >>> [len(part) for part in split_households(hh, admin)]
    [1, 1]
    """
    kind = placement(households, admin_units)
    out = households.assign(placement=kind)
    return out[(kind == "point").to_numpy()], out[(kind == "village").to_numpy()]


def village_seats(admin_units: gpd.GeoDataFrame, *, seats: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Where each village is shown as one place: its seat (村委会, layer ``seats``) when it has one, else a point
    inside its polygon (real or derived).

    Parameters
    ----------
    admin_units : GeoDataFrame
        The admin units (village rows are used: ``code``, ``name``, polygon).
    seats : GeoDataFrame, optional
        The ``seats`` layer (``code`` = village code, point).

    Returns
    -------
    GeoDataFrame
        One row per village: ``code``, ``name``, ``source`` (``seat`` or ``polygon``; ``None`` when the village
        has neither and its geometry is missing), in EPSG:4490.
    """
    villages = admin_units[admin_units["level"] == "village"]
    crs = admin_units.crs if isinstance(admin_units, gpd.GeoDataFrame) else None
    codes = villages["code"].astype(str).to_numpy()
    names = (villages["name"].astype(object).where(villages["name"].notna(), None).to_numpy()
             if "name" in villages.columns else np.full(len(villages), None, dtype=object))
    names = np.where(pd.isna(names), codes, names)
    geom = np.full(len(villages), None, dtype=object)
    source = np.full(len(villages), None, dtype=object)
    if isinstance(villages, gpd.GeoDataFrame) and len(villages):
        poly = villages.geometry
        ok = ~(poly.isna() | poly.is_empty).to_numpy()
        if ok.any():  # a point inside the polygon, taken in the Gauss-Krüger zone as grids.build does
            gk = to_gk(cast(gpd.GeoSeries, poly[ok]))  # a GeoSeries: pandas-stubs type a mask lookup as Series
            reps = gpd.GeoSeries(shapely.point_on_surface(np.asarray(gk.values, dtype=object)), crs=gk.crs)
            geom[ok] = np.asarray(reps.to_crs(STORAGE_CRS).values, dtype=object)
            source[ok] = "polygon"
    if seats is not None and len(seats):
        s = seats.to_crs(STORAGE_CRS) if seats.crs is not None else seats
        s = s[~(s.geometry.isna() | s.geometry.is_empty)]
        at = dict(zip(s["code"].astype(str), s.geometry.values, strict=True))
        for i, code in enumerate(codes):
            if code in at:
                geom[i], source[i] = at[code], "seat"
    out_crs = STORAGE_CRS if crs is not None or seats is not None else None
    return gpd.GeoDataFrame({"code": codes, "name": names, "source": source}, geometry=list(geom), crs=out_crs)


def village_counts(households: pd.DataFrame, admin_units: gpd.GeoDataFrame, *,
                   seats: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Households known only by village, counted per village at the village seat.

    Parameters
    ----------
    households : DataFrame or GeoDataFrame
        As for :func:`placement` (e.g. the households still to visit).
    admin_units : GeoDataFrame
        The admin units.
    seats : GeoDataFrame, optional
        The ``seats`` layer; see :func:`village_seats`.

    Returns
    -------
    GeoDataFrame
        One row per village that has such households, by village code: ``village_code``, ``name``,
        ``households``, ``source`` (``seat``/``polygon``, see :func:`village_seats`) and ``label``
        (“三家子村：23 户未定位”, plain text — escape it before HTML), at the seat (EPSG:4490; no geometry when
        the village has neither seat nor polygon).
    """
    kind = placement(households, admin_units)
    village = village_of(households)[(kind == "village").to_numpy()]
    n = village.value_counts().sort_index()
    where = village_seats(admin_units, seats=seats).drop_duplicates("code").set_index("code")
    where = where.reindex(n.index.astype(str))
    names = where["name"].where(where["name"].notna(), pd.Series(n.index.astype(str), index=where.index))
    out = gpd.GeoDataFrame({
        "village_code": n.index.astype(str).to_numpy(),
        "name": names.to_numpy(dtype=object),
        "households": n.to_numpy(dtype=np.int64),
        "source": where["source"].to_numpy(dtype=object),
    }, geometry=list(where.geometry.to_numpy(dtype=object)) if len(where) else [], crs=STORAGE_CRS)
    out["label"] = [f"{name}：{k:,} 户未定位" for name, k in zip(out["name"], out["households"], strict=True)]
    return out


def rederive_after_households(workspace: Any, *, account: Any = None) -> Any:
    """After a households import: villages derived from their seats take in the households just located, and
    groups with enough located households get polygons (:func:`grids.villages.rederive_villages`, one audited
    transaction) — what ``python -m grids import … households`` does.

    Parameters
    ----------
    workspace : Workspace
        The workspace the households were imported into.
    account : Account, optional
        Who imported (needs ``import``); the audit names them.

    Returns
    -------
    Derivation or None
        What was derived again; ``None`` when the workspace has no seats or no derived village (real
        boundaries are never re-derived). :func:`rederive_message` says it in Chinese.
    """
    from grids.villages import rederive_villages

    if not workspace.count("seats") or not workspace.count("admin_units", where="derived"):
        return None
    return rederive_villages(workspace, account=account)


def rederive_message(result: Any) -> str:
    """The Chinese report of :func:`rederive_after_households` (the text the CLI prints).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> r = SimpleNamespace(villages=[1, 2], units=pd.DataFrame({"level": ["village", "village", "group"]}),
    ...                     beyond=pd.DataFrame({"hh_id": ["a"]}))
    >>> rederive_message(r)
    '已按新定位的住户重新推算村界（2 个村，1 个组有了推算组界，1 户未并入）'
    """
    groups = int((result.units["level"] == "group").sum())
    beyond = f"，{len(result.beyond)} 户未并入" if len(result.beyond) else ""
    return f"已按新定位的住户重新推算村界（{len(result.villages)} 个村，{groups} 个组有了推算组界{beyond}）"
