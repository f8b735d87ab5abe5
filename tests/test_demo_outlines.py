"""The demo generator on any outline: jagged borders, holes, islands (issue 13).

The property test builds the demo (20,000 households) on every county of the bundled Chifeng outlines and on
each synthetic outline of :mod:`geodata.outlines_synth`, and asserts that ``demo`` publishes plan ``main`` and
that ``check`` finds no error. The quick tests assert the generator's own promise on smaller counties: every
town, village and group is one piece on each landmass it touches.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geodata import demo
from geodata.outlines_synth import SYNTHETIC, synthetic_ferries, synthetic_outline, write_synthetic
from grids.crs import to_gk
from grids.landmass import FERRY_CLASS, landmass_of, landmasses

CHIFENG = gpd.read_file(demo.DEFAULT_OUTLINE)["code"].astype(str).tolist()


def _pieces_per_landmass(layers) -> dict[str, int]:
    """Most pieces one unit of each level has on one landmass (landmasses from the outline and the ferries)."""
    admin = to_gk(layers["admin_units"])
    masses = landmasses(admin[admin.level == "county"], streets=layers["streets"])
    out = {}
    for level in ("town", "village", "group"):
        units = admin[admin.level == level]
        parts, owner = shapely.get_parts(units.geometry.values, return_index=True)
        lab = landmass_of(gpd.GeoSeries(parts, crs=admin.crs), masses)
        out[level] = int(np.bincount(owner * (len(masses) + 1) + lab).max())
    return out


# -- the synthetic outlines ---------------------------------------------------------------------------------


def test_synthetic_outlines_are_deterministic_valid_and_near_119e_44n():
    for kind in SYNTHETIC:
        a, b = synthetic_outline(kind), synthetic_outline(kind)
        geom = a.geometry.iloc[0]
        assert geom.is_valid and geom.equals_exact(b.geometry.iloc[0], 0.0)
        assert a.crs.to_epsg() == 4490
        c = geom.centroid
        assert abs(c.x - 119) < 1 and abs(c.y - 44) < 1
        assert 1000 < to_gk(a).area.iloc[0] / 1e6 < 5000


def test_synthetic_shapes_have_what_they_are_named_for():
    jagged = to_gk(synthetic_outline("jagged")).geometry.iloc[0]
    # fractal: the border is more than twice as long as a disc's of the same area (巴林左旗's is 1.6 times)
    assert jagged.length > 2 * (2 * np.sqrt(np.pi * jagged.area))
    holes = synthetic_outline("holes").geometry.iloc[0]
    assert holes.geom_type == "Polygon" and len(holes.interiors) >= 3
    islands = synthetic_outline("islands")
    assert len(shapely.get_parts(islands.geometry.iloc[0])) >= 21  # a mainland and at least 20 islands
    ferries = synthetic_ferries("islands")
    assert len(ferries) >= 3 and (ferries["class"] == FERRY_CLASS).all()
    masses = landmasses(islands, streets=ferries)
    assert (masses["parts"] > 1).any(), "some ferries join parts into one landmass"
    assert len(synthetic_ferries("jagged")) == 0


def test_unknown_synthetic_outline_names_the_choices():
    with pytest.raises(ValueError, match=r"没有名为 “atoll”.*可选：jagged、holes、islands"):
        synthetic_outline("atoll")


def test_synthetic_outlines_written_as_geojson_read_back(tmp_path):
    paths = write_synthetic(tmp_path)
    assert {p.name for p in paths} == {"jagged.geojson", "holes.geojson", "islands.geojson",
                                       "islands_ferries.geojson"}
    back = demo.load_outline(tmp_path / "holes.geojson", coords="cgcs2000")
    assert back.geometry.iloc[0].equals_exact(synthetic_outline("holes").geometry.iloc[0], 1e-9)
    lines = demo.load_lines(tmp_path / "islands_ferries.geojson", coords="cgcs2000")
    assert len(lines) == len(synthetic_ferries("islands"))


# -- the generator on them: one piece per landmass ------------------------------------------------------


@pytest.mark.parametrize("kind", list(SYNTHETIC))
def test_units_are_one_piece_per_landmass_on_synthetic_outlines(kind):
    layers = demo.generate(outline=synthetic_outline(kind), households=3000, seed=11,
                           ferries=synthetic_ferries(kind))
    assert _pieces_per_landmass(layers) == {"town": 1, "village": 1, "group": 1}


@pytest.mark.parametrize("code", ["150404", "150425"])
def test_units_are_one_piece_on_jagged_real_outlines(code):
    outline = demo.load_outline(demo.DEFAULT_OUTLINE, county=code, coords="gcj02")
    layers = demo.generate(outline=outline, households=3000, seed=7)
    admin = layers["admin_units"]
    units = admin[admin.level.isin(["town", "village", "group"])]
    assert shapely.get_num_geometries(units.geometry.values).max() == 1


def test_island_county_has_ferries_branches_on_several_islands_and_islands_without():
    layers = demo.generate(outline=synthetic_outline("islands"), households=3000, seed=11,
                           ferries=synthetic_ferries("islands"))
    streets = layers["streets"]
    ferries = streets[streets["class"] == FERRY_CLASS]
    assert len(ferries) >= 2
    admin = layers["admin_units"]
    masses = landmasses(admin[admin.level == "county"], streets=streets)
    assert len(masses) >= 20
    with_branch = np.unique(landmass_of(layers["branches"], masses))
    assert len(with_branch) >= 3
    assert len(with_branch) < len(masses)
    # a ferry never joins two parts of one town: every town lies in one piece per landmass
    assert _pieces_per_landmass(layers)["town"] == 1


# -- the property test: demo publishes, check finds no error ------------------------------------------------


def _demo_publishes_and_checks(tmp_path, capsys, args: list[str]) -> None:
    from grids import plans
    from grids.__main__ import main
    from grids.check import check_workspace_plan
    from grids.workspace import GpkgWorkspace

    path = tmp_path / "demo.gpkg"
    assert main(["demo", str(path), "--households", "20000", "--seed", "7", *args]) == 0
    capsys.readouterr()
    ws = GpkgWorkspace(path)
    plan_id = plans.resolve_plan(ws, "main")
    assert plans.plan_info(ws, plan_id)["status"] == "published"
    problems = check_workspace_plan(ws, plan_id)
    errors = problems[problems["severity"] == "error"] if "severity" in problems.columns else problems
    assert errors.empty, errors[["kind", "message"]].to_string()
    assert main(["check", str(path)]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("code", CHIFENG)
def test_demo_publishes_and_check_finds_no_error_on_chifeng(code, tmp_path, capsys):
    _demo_publishes_and_checks(tmp_path, capsys, ["--outline", str(demo.DEFAULT_OUTLINE), "--county", code,
                                                  "--coords", "gcj02"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(SYNTHETIC))
def test_demo_publishes_and_check_finds_no_error_on_synthetic(kind, tmp_path, capsys):
    _demo_publishes_and_checks(tmp_path, capsys, ["--synthetic", kind])


def test_cli_synthetic_and_outline_exclude_each_other(tmp_path, capsys):
    from grids.__main__ import main

    path = tmp_path / "x.gpkg"
    assert main(["demo", str(path), "--synthetic", "islands", "--outline", str(demo.DEFAULT_OUTLINE)]) == 2
    assert "--synthetic 与 --outline 只能选一个" in capsys.readouterr().err
    assert not path.exists()
