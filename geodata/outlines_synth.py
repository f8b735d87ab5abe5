"""Synthetic county outlines for testing the demo generator on geography the bundled outlines lack.

Three deterministic counties in CGCS2000 lon/lat (EPSG:4490) near 119°E 44°N, drawn in the Gauss-Krüger zone
of 120°E (EPSG:4549):

- ``jagged``: an inland county (~2,900 km²) whose border is fractal: long narrow peninsulas and inlets at every
  scale, the shape on which clipped Voronoi cells fall into pieces;
- ``holes``: a county (~3,100 km²) with three lakes and an enclave of another county inside it;
- ``islands``: a coastal county: a mainland and 30 islands (a few large, most small), with ferry lines
  (``class = 'ferry'``) between the mainland and some islands and between some island pairs.

:func:`synthetic_outline` gives the outline as :func:`geodata.demo.load_outline` does, :func:`synthetic_ferries`
the ferry lines for the demo's ``streets`` layer (empty except on ``islands``). ``python -m grids demo OUT
--synthetic islands`` builds a demo on one of them; :func:`write_synthetic` writes them as GeoJSON files.

Examples
--------
>>> g = synthetic_outline("islands")
>>> g.crs.to_epsg(), len(shapely.get_parts(g.geometry.iloc[0])) >= 20
(4490, True)
>>> sorted(synthetic_ferries("islands")["class"].unique().tolist())
['ferry']
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from grids.errors import ValidationError
from grids.model import STORAGE_EPSG

__all__ = ["SYNTHETIC", "synthetic_ferries", "synthetic_outline", "write_synthetic"]

SYNTHETIC: dict[str, tuple[str, str]] = {
    "jagged": ("990501", "锯齿旗"),
    "holes": ("990502", "湖泊旗"),
    "islands": ("990503", "群岛县"),
}
"""Name → (six-digit code, county name) of the synthetic outlines."""

_GK = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
_CENTRE = (119.0, 44.0)
_SEED = 13


def _check(kind: str) -> None:
    if kind not in SYNTHETIC:
        raise ValidationError(f"没有名为 “{kind}” 的合成县界", fix=f"可选：{'、'.join(SYNTHETIC)}")


def _centre_gk() -> np.ndarray:
    p = gpd.GeoSeries([shapely.Point(_CENTRE)], crs=STORAGE_EPSG).to_crs(_GK).iloc[0]
    assert isinstance(p, shapely.Point)
    return np.array([p.x, p.y])


def _noisy_ring(rng: np.random.Generator, centre: np.ndarray, radius: float, *, n: int = 720,
                rough: float = 0.18, octaves: int = 7, squash: float = 1.0) -> shapely.Polygon:
    """A star-shaped polygon with a 1/f noisy radius (always simple)."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.zeros(n)
    for k in range(octaves):
        f = 2 ** (k + 1)
        r += rng.normal(0, 1) / (k + 1) * np.cos(f * theta + rng.uniform(0, 2 * np.pi))
        r += rng.normal(0, 1) / (k + 1) * np.cos((f + 1) * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.exp(rough * r / np.abs(r).max() * 2)
    xy = np.column_stack([centre[0] + r * np.cos(theta), centre[1] + squash * r * np.sin(theta)])
    return shapely.Polygon(xy)


def _fractal(rng: np.random.Generator, poly: shapely.Polygon, *, levels: int, amp: float) -> shapely.Polygon:
    """Midpoint displacement of the exterior: each level halves every edge and pushes the new vertex sideways
    by up to ``amp`` times the edge length; the result is made valid and its largest part kept."""
    xy = np.asarray(poly.exterior.coords)[:-1]
    for _ in range(levels):
        nxt = np.roll(xy, -1, axis=0)
        d = nxt - xy
        normal = np.column_stack([-d[:, 1], d[:, 0]])
        mid = (xy + nxt) / 2 + normal * rng.uniform(-amp, amp, (len(xy), 1))
        out = np.empty((2 * len(xy), 2))
        out[0::2], out[1::2] = xy, mid
        xy = out
    geom = shapely.make_valid(shapely.Polygon(xy))
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return shapely.Polygon(max(parts, key=lambda p: p.area).exterior)


def _jagged(rng: np.random.Generator) -> shapely.Polygon:
    base = _noisy_ring(rng, _centre_gk(), 30_000.0, n=180, rough=0.22)
    return _fractal(rng, base, levels=5, amp=0.32)


def _holes(rng: np.random.Generator) -> shapely.Polygon:
    c = _centre_gk()
    county = _fractal(rng, _noisy_ring(rng, c, 31_000.0, n=240, rough=0.15, squash=1.05), levels=3, amp=0.2)
    holes = []
    # three lakes and an enclave (another county's land, cut out like a lake), well inside and apart
    for dx, dy, r, sq in ((-12_000, 9_000, 3_200, 0.6), (10_000, 12_000, 1_800, 1.2), (6_000, -11_000, 2_500, 0.8),
                          (-9_000, -8_000, 4_500, 1.0)):
        holes.append(_noisy_ring(rng, c + np.array([dx, dy]), r, n=240, rough=0.2, squash=sq))
    return shapely.Polygon(county.exterior, [h.exterior for h in holes])


def _islands(rng: np.random.Generator) -> tuple[shapely.MultiPolygon, list[shapely.LineString]]:
    c = _centre_gk()
    # mainland: the west of a noisy disc, cut by a wavy north-south coast
    disc = _noisy_ring(rng, c + np.array([-22_000, 0]), 26_000.0, n=360, rough=0.12)
    y = np.linspace(-40_000, 40_000, 200)
    coast_x = c[0] - 4_000 + 2_500 * np.sin(y / 6_000) + 900 * np.sin(y / 1_300 + 1)
    west = shapely.Polygon(np.vstack([np.column_stack([coast_x, c[1] + y]), [[c[0] - 80_000, c[1] + 40_000],
                                                                               [c[0] - 80_000, c[1] - 40_000]]]))
    land = shapely.intersection(disc, west)
    assert isinstance(land, shapely.Polygon)  # the disc's west, one piece
    mainland = _fractal(rng, land, levels=2, amp=0.15)
    # islands: a few large, many small, in the sea east of the coast, apart from each other and the mainland
    sizes = np.concatenate([[6_000, 4_500, 3_800, 3_000], rng.uniform(1_000, 2_200, 8), rng.uniform(300, 900, 18)])
    islands: list[shapely.Polygon] = []
    taken: BaseGeometry = mainland.buffer(1_200)
    for r in sizes:
        for _ in range(400):
            p = c + np.array([rng.uniform(2_000, 34_000), rng.uniform(-30_000, 30_000)])
            isl = _noisy_ring(rng, p, float(r), n=120, rough=0.25, octaves=5, squash=rng.uniform(0.6, 1.2))
            if not isl.intersects(taken):
                islands.append(isl)
                taken = taken.union(isl.buffer(max(800.0, 0.4 * r)))
                break
    # ferries (7): mainland ↔ the three largest islands, large ↔ 4th and 5th, small islands ↔ their nearest
    # large one; a line that would pass another island is left out
    parts = [mainland, *islands]
    big = range(1, 4)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 5)]
    pairs += [(min(big, key=lambda j: parts[j].distance(parts[k])), k) for k in range(len(parts) - 1, 4, -1)]
    ferries: list[shapely.LineString] = []
    for a, b in pairs:
        if len(ferries) >= 7:
            break
        line = shapely.shortest_line(parts[a], parts[b])
        if not any(line.dwithin(parts[k], 300.0) for k in range(len(parts)) if k not in (a, b)):
            ferries.append(line)
    return shapely.MultiPolygon([mainland, *islands]), ferries


@cache
def _build(kind: str) -> tuple[shapely.Geometry, tuple]:
    rng = np.random.default_rng([_SEED, list(SYNTHETIC).index(kind)])
    if kind == "jagged":
        return _jagged(rng), ()
    if kind == "holes":
        return _holes(rng), ()
    geom, ferries = _islands(rng)
    return geom, tuple(ferries)


def synthetic_outline(kind: str) -> gpd.GeoDataFrame:
    """The synthetic county ``kind`` (``jagged``, ``holes`` or ``islands``): one row, ``code``, ``name``,
    geometry in EPSG:4490, as :func:`geodata.demo.load_outline` returns.

    Examples
    --------
    >>> g = synthetic_outline("holes")
    >>> g.loc[0, "name"], int(shapely.get_num_interior_rings(g.geometry.iloc[0]))
    ('湖泊旗', 4)
    """
    _check(kind)
    code, name = SYNTHETIC[kind]
    geom, _ = _build(kind)
    gs = gpd.GeoSeries([geom], crs=_GK).to_crs(STORAGE_EPSG)
    return gpd.GeoDataFrame({"code": [code], "name": [name]}, geometry=gs.values, crs=STORAGE_EPSG)


def synthetic_ferries(kind: str) -> gpd.GeoDataFrame:
    """Ferry lines of the synthetic county ``kind``: ``name``, ``class`` (``'ferry'``), geometry in EPSG:4490
    (no rows for the inland counties).

    Examples
    --------
    >>> len(synthetic_ferries("jagged")), len(synthetic_ferries("islands")) >= 5
    (0, True)
    """
    _check(kind)
    _, ferries = _build(kind)
    gs = gpd.GeoSeries(list(ferries), crs=_GK).to_crs(STORAGE_EPSG)
    return gpd.GeoDataFrame({"name": [f"{SYNTHETIC[kind][1]}{i + 1}号航线" for i in range(len(ferries))],
                             "class": ["ferry"] * len(ferries)}, geometry=gs.values, crs=STORAGE_EPSG)


def write_synthetic(directory: str | os.PathLike) -> list[Path]:
    """Write every synthetic outline (``<kind>.geojson``, CGCS2000 lon/lat) and the island county's ferries
    (``islands_ferries.geojson``) into ``directory``; returns the paths written.

    The outlines read back with ``demo --outline <kind>.geojson --coords cgcs2000``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in SYNTHETIC:
        p = out / f"{kind}.geojson"
        synthetic_outline(kind).to_file(p, driver="GeoJSON")
        paths.append(p)
    p = out / "islands_ferries.geojson"
    synthetic_ferries("islands").to_file(p, driver="GeoJSON")
    paths.append(p)
    return paths
