"""Assignment across water and capacity as a number (issue 13): an island county built here, and the demo.

The island county: 24 rectangular islands 2 km apart, tiled by 1 km grids; branches on 9 of them, each at one
end of its island so that the other end often lies nearer a branch across the strait; ferries join five
branchless islands to a neighbour. The test knows every grid's island and the ferries, so it computes the
landmasses itself (union-find) and does not trust the library for them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from grids.assign import CAPACITY_LIMIT, assign_plan, branch_capacity, branch_distances
from grids.errors import ValidationError

GK = 4549
X0, Y0 = 400_000.0, 4_800_000.0
KM = 1000.0
COLS, ROWS = 6, 4
BRANCH_ISLANDS = {0: 2, 3: 1, 5: 1, 8: 1, 10: 1, 13: 1, 17: 1, 20: 1, 22: 1}  # island → branches on it
FERRIES = [(1, 2), (6, 7), (11, 10), (15, 14), (19, 20)]  # branchless island → its neighbour in the row
NO_ROADS = {4, 18, 21}  # islands without any road (branchless, no ferry)


class IslandCounty:
    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.boxes = []
        cells, island_of = [], []
        for r in range(ROWS):
            for c in range(COLS):
                w, h = int(rng.integers(4, 7)), int(rng.integers(2, 5))
                x, y = c * 8, r * 6
                self.boxes.append((x, y, w, h))
                for i in range(w):
                    for j in range(h):
                        cells.append(shapely.box(X0 + (x + i) * KM, Y0 + (y + j) * KM,
                                                 X0 + (x + i + 1) * KM, Y0 + (y + j + 1) * KM))
                        island_of.append(r * COLS + c)
        self.island_of = np.array(island_of)
        hh = rng.integers(20, 120, size=len(cells))
        self.grids = gpd.GeoDataFrame({"grid_id": [f"G{i:04d}" for i in range(len(cells))], "households": hh},
                                      geometry=cells, crs=GK)
        # branches at the west or east end of their island, on the middle row
        rows, self.branch_island = [], []
        for isl, n in BRANCH_ISLANDS.items():
            x, y, w, h = self.boxes[isl]
            ends = [x + 0.5, x + w - 0.5] if n > 1 else [x + w - 0.5 if rng.random() < 0.5 else x + 0.5]
            for e in ends:
                rows.append(shapely.Point(X0 + e * KM, Y0 + (y + h / 2) * KM))
                self.branch_island.append(isl)
        self.branch_island = np.array(self.branch_island)
        self.branches = gpd.GeoDataFrame({"branch_id": [f"B{i + 1:02d}" for i in range(len(rows))]},
                                         geometry=rows, crs=GK)
        # landmasses: islands joined by ferries (union-find)
        parent = list(range(ROWS * COLS))

        def find(a: int) -> int:
            while parent[a] != a:
                a = parent[a]
            return a

        for a, b in FERRIES:
            parent[find(a)] = find(b)
        self.mass_of_island = np.array([find(i) for i in range(ROWS * COLS)])
        self.grid_mass = self.mass_of_island[self.island_of]
        self.branch_mass = self.mass_of_island[self.branch_island]
        # staff: each branch landmass gets its own households plus a share of the branchless ones
        served = pd.Series(hh).groupby(self.grid_mass).sum()
        with_branch = set(self.branch_mass.tolist())
        orphan = served[[m for m in served.index if m not in with_branch]].sum()
        share = {m: served[m] + orphan * served[m] / served[list(with_branch)].sum() for m in with_branch}
        per_branch = pd.Series(self.branch_mass).value_counts()
        staff = []
        for i, m in enumerate(self.branch_mass):
            n = max(1, round(share[m] / per_branch[m] / 250))
            staff += [(f"S{i + 1:02d}-{j}", f"B{i + 1:02d}") for j in range(n)]
        self.staff = pd.DataFrame(staff, columns=["staff_id", "branch_id"])
        self.streets = self._streets()

    def _streets(self) -> gpd.GeoDataFrame:
        lines, kinds = [], []
        for isl, (x, y, w, h) in enumerate(self.boxes):
            if isl in NO_ROADS:
                continue
            ym, xm = y + h / 2, x + w / 2
            lines.append(shapely.LineString([(X0 + x * KM, Y0 + ym * KM), (X0 + (x + w) * KM, Y0 + ym * KM)]))
            lines.append(shapely.LineString([(X0 + xm * KM, Y0 + y * KM), (X0 + xm * KM, Y0 + (y + h) * KM)]))
            kinds += ["乡村道路", "乡村道路"]
        for a, b in FERRIES:
            (xa, ya, wa, ha), (xb, yb, _, hb) = self.boxes[a], self.boxes[b]
            left, right = ((xa + wa, ya + ha / 2), (xb, yb + hb / 2)) if xa < xb else \
                ((xb + self.boxes[b][2], yb + hb / 2), (xa, ya + ha / 2))
            # shore to shore, then along the shore-side road ends (both ends of each island road are on the shore)
            lines.append(shapely.LineString([(X0 + left[0] * KM, Y0 + left[1] * KM),
                                             (X0 + right[0] * KM, Y0 + right[1] * KM)]))
            kinds.append("ferry")
        return gpd.GeoDataFrame({"class": kinds}, geometry=lines, crs=GK)

    @property
    def outline(self) -> gpd.GeoSeries:
        return gpd.GeoSeries([shapely.MultiPolygon([shapely.box(X0 + x * KM, Y0 + y * KM, X0 + (x + w) * KM,
                                                                Y0 + (y + h) * KM)
                                                    for x, y, w, h in self.boxes])], crs=GK)


@pytest.fixture(scope="module")
def county() -> IslandCounty:
    return IslandCounty()


def test_the_island_county_is_what_the_test_needs(county):
    assert len(county.boxes) >= 20 and len(set(county.branch_island)) > 5
    hh = county.grids["households"].to_numpy(dtype=float)
    cap = branch_capacity(county.branches, county.staff, hh.sum())
    # every landmass with a branch has room for its own households: none of them need cross water
    for m in set(county.branch_mass.tolist()):
        assert cap[county.branch_mass == m].sum() >= hh[county.grid_mass == m].sum()
    # and straight-line nearest would send some of them across water: the water test below can fail
    d = branch_distances(county.grids, county.branches).to_numpy()
    nearest_mass = county.branch_mass[np.argmin(d, axis=1)]
    on_branch_land = np.isin(county.grid_mass, county.branch_mass)
    assert (on_branch_land & (nearest_mass != county.grid_mass)).sum() >= 5
    # a ferry joins a branchless island to a branch island
    assert any(county.mass_of_island[a] in set(county.branch_mass.tolist()) for a, _ in FERRIES)


@pytest.mark.parametrize("by", ["straight", "road"])
def test_no_household_crosses_water_when_its_landmass_has_a_branch_with_room(county, by):
    res = assign_plan(county.grids, county.branches, county.staff, by=by, streets=county.streets,
                      outline=county.outline)
    ids = county.branches["branch_id"].tolist()
    served_from = county.branch_mass[[ids.index(b) for b in res.grids["branch_id"]]]
    hh = county.grids["households"].to_numpy()
    on_branch_land = np.isin(county.grid_mass, county.branch_mass)
    across = served_from != county.grid_mass
    assert hh[on_branch_land & across].sum() == 0
    # only the households of branchless landmasses cross, and the summary counts exactly them
    assert res.summary["cross_water_households"] == hh[~on_branch_land].sum() > 0
    assert res.summary["landmasses"] == len(set(county.mass_of_island.tolist()))
    assert res.branches["capacity_use"].max() <= CAPACITY_LIMIT
    assert res.summary["over_capacity"] == []


def test_road_distances_cross_water_only_by_ferry_or_with_the_penalty(county):
    straight = branch_distances(county.grids, county.branches).to_numpy()
    penalty = 50_000.0
    road = branch_distances(county.grids, county.branches, by="road", streets=county.streets,
                            outline=county.outline, crossing_penalty=penalty).to_numpy()
    assert np.isfinite(road).all()
    linked = county.grid_mass[:, None] == county.branch_mass[None, :]
    # across unlinked water: exactly the straight line plus the penalty
    np.testing.assert_allclose(road[~linked], straight[~linked] + penalty)
    # on the same landmass never the penalty (by road or ferry; ferries and detours only lengthen the way)
    assert (road[linked] < straight[linked] + penalty).all() and (road[linked] >= straight[linked] - 1e-6).all()


def test_water_is_crossed_when_the_own_branch_is_full():
    # two islands 2 km apart; the west branch has one manager, the east one three: the west island overflows
    cols = [0, 1, 2, 3, 6, 7, 8, 9]
    g = gpd.GeoDataFrame({"households": [100] * 8}, crs=GK,
                         geometry=[shapely.box(X0 + i * KM, Y0, X0 + (i + 1) * KM, Y0 + KM) for i in cols])
    b = gpd.GeoDataFrame({"branch_id": ["W", "E"]}, crs=GK,
                         geometry=[shapely.Point(X0 + 500, Y0 + 500), shapely.Point(X0 + 9500, Y0 + 500)])
    s = pd.DataFrame({"staff_id": ["w1", "e1", "e2", "e3"], "branch_id": ["W", "E", "E", "E"]})
    res = assign_plan(g, b, s, capacity_slack=0.0)  # W holds 200, E 600
    out = res.grids["branch_id"].tolist()
    assert out[:4].count("W") == 2 and out[4:] == ["E"] * 4
    assert res.summary["cross_water_households"] == 200
    # the grids that cross are the ones nearest the strait
    assert out[2:4] == ["E", "E"]


def test_a_branch_never_ends_above_the_limit_and_an_impossible_limit_is_said():
    # a line of 10 grids, all nearest the west branch; capacity forces half of them east
    g = gpd.GeoDataFrame({"households": [50] * 10}, crs=GK,
                         geometry=[shapely.box(X0 + i * KM, Y0, X0 + (i + 1) * KM, Y0 + KM) for i in range(10)])
    b = gpd.GeoDataFrame({"branch_id": ["W", "E"]}, crs=GK,
                         geometry=[shapely.Point(X0, Y0 + 500), shapely.Point(X0 + 10 * KM, Y0 + 500)])
    s = pd.DataFrame({"staff_id": ["w", "e"], "branch_id": ["W", "E"]})
    res = assign_plan(g, b, s, capacity_slack=0.0)
    assert res.branches["capacity_use"].max() <= CAPACITY_LIMIT
    with pytest.raises(ValidationError, match="容纳不下") as err:
        assign_plan(g, b, s, capacity_slack=-0.2)
    assert "--capacity-slack" in str(err.value)


def test_locked_grids_over_the_limit_are_reported_not_hidden():
    g = gpd.GeoDataFrame({"households": [100] * 6, "branch_id": ["W"] * 6, "staff_id": ["w"] * 6,
                          "locked": [True] * 6}, crs=GK,
                         geometry=[shapely.box(X0 + i * KM, Y0, X0 + (i + 1) * KM, Y0 + KM) for i in range(6)])
    b = gpd.GeoDataFrame({"branch_id": ["W", "E"]}, crs=GK,
                         geometry=[shapely.Point(X0, Y0 + 500), shapely.Point(X0 + 6 * KM, Y0 + 500)])
    s = pd.DataFrame({"staff_id": ["w", "e"], "branch_id": ["W", "E"]})
    res = assign_plan(g, b, s, capacity_slack=0.0)
    assert res.summary["over_capacity"] == ["W"]


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def island_ws(empty_ws, county):
    from grids.plans import save_draft

    with empty_ws.transaction(actor="test", action="载入") as tx:
        tx.replace("branches", county.branches.to_crs(4490))
        tx.replace("staff", county.staff)
        tx.replace("streets", county.streets.to_crs(4490))
        tx.replace("admin_units", gpd.GeoDataFrame(
            {"code": ["150422000000"], "name": ["岛县"], "level": ["county"], "parent_code": [None]},
            geometry=county.outline.to_crs(4490).values, crs=4490))
    save_draft(empty_ws, county.grids.to_crs(4490), name="main")
    return empty_ws


def test_cli_default_measure_is_a_workspace_setting(island_ws, capsys, monkeypatch):
    from grids.__main__ import main

    from .conftest import cli_user

    user = ["--user", cli_user(island_ws, monkeypatch)]
    path = str(island_ws.path)
    assert main(["assign", path, *user]) == 0
    assert "直线距离" in capsys.readouterr().out
    assert main(["assign", path, "--set-default", "road", *user]) == 0
    assert "road" in capsys.readouterr().out and island_ws.meta["assign_by"] == "road"
    assert main(["assign", path, "--json", *user]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["by"] == "road" and out["summary"]["over_capacity"] == []
    # branchless landmasses only: the CLI reads the county outline and the ferries
    county = IslandCounty()
    hh = county.grids["households"].to_numpy()
    assert out["summary"]["cross_water_households"] == hh[~np.isin(county.grid_mass, county.branch_mass)].sum()
    # --by wins over the setting
    assert main(["assign", path, "--by", "straight", *user]) == 0
    assert "直线距离" in capsys.readouterr().out
    # setting the default writes, so it needs an account
    monkeypatch.delenv("GRIDS_PASSWORD")
    assert main(["assign", path, "--set-default", "straight"]) == 2


@pytest.mark.parametrize("extra", [["--by", "straight"], ["--plan", "nosuch"], ["--minimal-change"]])
def test_cli_set_default_refuses_options_it_would_ignore(island_ws, capsys, monkeypatch, extra):
    from grids.__main__ import main

    from .conftest import cli_user

    user = ["--user", cli_user(island_ws, monkeypatch)]
    assert main(["assign", str(island_ws.path), "--set-default", "road", *extra, *user]) == 2
    assert extra[0] in capsys.readouterr().err
    assert "assign_by" not in island_ws.meta


def test_cli_bad_setting_says_how_to_fix(island_ws, capsys, monkeypatch):
    from grids.__main__ import main

    from .conftest import cli_user

    island_ws.set_meta("assign_by", "boat")
    assert main(["assign", str(island_ws.path), "--user", cli_user(island_ws, monkeypatch)]) == 2
    assert "--set-default" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ the demo


@pytest.mark.slow
@pytest.mark.parametrize("by", ["straight", "road"])
def test_demo_assign_keeps_every_branch_within_the_limit_and_prints_no_warning(demo_copy, by, monkeypatch):
    import os

    from grids.workspace import GpkgWorkspace

    from .conftest import cli_user

    user = cli_user(GpkgWorkspace(demo_copy), monkeypatch, username="assign-test")  # the demo's admin has its own
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)  # warnings as the terminal shows them
    res = subprocess.run([sys.executable, "-m", "grids", "assign", str(demo_copy), "--by", by, "--json",
                          "--user", user], capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    assert "Warning" not in res.stderr and "warn" not in res.stderr.lower()
    out = json.loads(res.stdout)
    uses = [b["capacity_use"] for b in out["branches"] if b["capacity_use"] is not None]
    assert len(uses) == 30 and max(uses) <= CAPACITY_LIMIT
    assert out["summary"]["by"] == by and out["summary"]["max_branch_pieces"] == 1
