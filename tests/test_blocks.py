"""Street blocks: hand-countable lattices, dead ends, unnoded crossings, duplicates, streets past the limit,
slivers, unenclosed pieces, and the property that blocks always tile the limit."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from grids.blocks import street_blocks
from grids.errors import ValidationError

L = shapely.LineString
LIMIT = shapely.box(0, 0, 300, 200)


def lattice():
    """Verticals at x=100, 200 and a horizontal at y=100, all running 20 m past the limit: 3 × 2 = 6 blocks."""
    return [L([(100, -20), (100, 220)]), L([(200, -20), (200, 220)]), L([(-20, 100), (320, 100)])]


def blocks(lines, limit=LIMIT, **kw):
    return street_blocks(gpd.GeoSeries(lines, crs=4549), limit, **kw)


def assert_tiles(b, limit):
    geoms = b.geometry.values
    assert shapely.area(geoms).sum() == pytest.approx(limit.area, rel=1e-9)
    assert shapely.union_all(geoms).symmetric_difference(limit).area < 1e-6
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = i < j
    assert (shapely.area(shapely.intersection(geoms[i[keep]], geoms[j[keep]])) < 1e-6).all()


def test_lattice_gives_the_blocks_counted_by_hand():
    b = blocks(lattice())
    assert len(b) == 6
    assert b["area_m2"].tolist() == pytest.approx([10_000] * 6)
    assert b["block_id"].tolist() == list(range(6))
    # north-west first: the first block is [0,100]×[100,200]
    assert b.geometry.iloc[0].equals(shapely.box(0, 100, 100, 200).normalize()) or \
        b.geometry.iloc[0].symmetric_difference(shapely.box(0, 100, 100, 200)).area < 1e-9
    assert_tiles(b, LIMIT)


def test_dead_end_does_not_split_a_block():
    b = blocks([*lattice(), L([(50, 0), (50, 60)]), L([(250, 150), (280, 180), (260, 190)])])
    assert len(b) == 6
    assert_tiles(b, LIMIT)


def test_crossing_without_shared_vertex_still_splits():
    # two lines crossing at (150, 100) with no vertex there
    b = blocks([L([(150, -10), (150, 210)]), L([(-10, 100), (310, 100)])])
    assert len(b) == 4
    assert sorted(b["area_m2"].round()) == [15_000] * 4


def test_duplicated_lines_change_nothing():
    once = blocks(lattice())
    twice = blocks(lattice() + lattice() + [L([(100, 50), (100, 150)])])  # plus an overlapping piece
    assert len(twice) == len(once) == 6
    assert all(a.equals(b) for a, b in zip(once.geometry, twice.geometry, strict=True))


def test_street_past_the_limit_is_cut():
    b = blocks([L([(150, -500), (150, 700)])])
    assert len(b) == 2
    assert b["area_m2"].tolist() == pytest.approx([30_000, 30_000])
    assert_tiles(b, LIMIT)


def test_near_miss_is_snapped_but_a_real_gap_is_not():
    # ends 0.5 m short of the limit on both sides → joined (tolerance 1 m) → 2 blocks
    assert len(blocks([L([(150, 0.5), (150, 199.5)])])) == 2
    # ends 5 m short → a dead end, nothing split
    assert len(blocks([L([(150, 5), (150, 195)])])) == 1
    # the near miss between two streets: horizontal ends 0.4 m short of the vertical
    b = blocks([L([(150, -10), (150, 210)]), L([(-10, 100), (149.6, 100)])])
    assert len(b) == 3
    assert_tiles(b, LIMIT)


def test_sliver_absorbed_into_neighbour():
    # a second vertical 1 m east of x=100 (a dual carriageway) makes a 1 m × 200 m sliver
    b = blocks([L([(100, -20), (100, 220)]), L([(101, -20), (101, 220)])])
    assert len(b) == 2
    assert sorted(b["area_m2"].round()) == [20_000, 40_000]
    assert_tiles(b, LIMIT)
    kept = blocks([L([(100, -20), (100, 220)]), L([(101, -20), (101, 220)])], sliver_width=0.5)
    assert len(kept) == 3


def test_piece_not_enclosed_by_streets_is_still_a_block():
    # an L-shaped urban area; the street cuts only the lower arm, the upper arm is bounded by the limit alone
    limit = shapely.union_all([shapely.box(0, 0, 300, 100), shapely.box(0, 100, 100, 300)])
    b = blocks([L([(200, -10), (200, 110)])], limit)
    assert len(b) == 2
    assert_tiles(b, limit)


def test_blocks_never_cross_a_limit_boundary():
    limits = gpd.GeoSeries([shapely.box(0, 0, 150, 200), shapely.box(150, 0, 300, 200)], index=["甲", "乙"],
                           crs=4549)
    b = street_blocks(gpd.GeoSeries([L([(-10, 100), (310, 100)])], crs=4549), limits)
    assert len(b) == 4
    assert sorted(b["limit_index"]) == ["乙", "乙", "甲", "甲"]


def test_geographic_input_round_trip():
    lim = gpd.GeoSeries([shapely.box(119.38, 43.97, 119.40, 43.99)], crs=4490)
    streets = gpd.GeoSeries([L([(119.39, 43.96), (119.39, 44.0)])], crs=4490)
    b = street_blocks(streets, lim)
    assert b.crs.to_epsg() == 4490 and len(b) == 2
    assert b.to_crs(4549).area.sum() == pytest.approx(lim.to_crs(4549).area.sum(), rel=1e-9)


def test_non_polygon_limit_rejected():
    with pytest.raises(ValidationError, match="多边形"):
        street_blocks(gpd.GeoSeries([L([(0, 0), (1, 1)])], crs=4549), gpd.GeoSeries([shapely.Point(0, 0)],
                                                                                  crs=4549))


coord = st.floats(-50, 350, allow_nan=False).map(lambda v: round(v, 3))  # millimetres, like survey data


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(coord, coord, coord, coord), max_size=15), st.booleans())
def test_random_streets_always_tile_the_limit(segments, with_hole):
    lines = [L([(a, b), (c, d)]) for a, b, c, d in segments if (a, b) != (c, d)]
    limit = LIMIT.difference(shapely.box(120, 60, 180, 140)) if with_hole else LIMIT
    b = blocks(lines, limit)
    assert len(b) >= 1
    assert_tiles(b, limit)


def test_same_blocks_as_momepy_enclosures_on_a_lattice():
    momepy = pytest.importorskip("momepy")
    streets = gpd.GeoDataFrame(geometry=lattice(), crs=4549)
    limit = gpd.GeoDataFrame(geometry=[LIMIT], crs=4549)
    ours = blocks(lattice())
    theirs = momepy.enclosures(streets, limit=limit)
    assert len(theirs) == len(ours) == 6
    a = np.sort(shapely.area(theirs.geometry.values))
    assert a == pytest.approx(np.sort(ours["area_m2"].to_numpy()))
