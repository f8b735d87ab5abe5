"""The Dask engine (grids.scale) and the streaming city generator (geodata.city).

Small in-memory counties, the synchronous scheduler where a cluster is not the point, and one real
``distributed.LocalCluster`` reached through its address.
"""

from __future__ import annotations

import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata.city import city_outlines, write_city
from grids.check import check_workspace_plan, errors
from grids.coverage import funnel, locate_households
from grids.errors import ValidationError, WorkspaceError
from grids.plans import read_grids, resolve_plan
from grids.scale import (
    LOCATED_COLUMNS,
    funnel_dask,
    funnel_workspace_dask,
    get_client,
    locate_dask,
    partition_households,
    read_households_parquet,
    workspace_households,
    write_households_parquet,
)
from grids.workspace import GpkgWorkspace

TOWNS = ("150422100", "150422101")


def make_grids() -> gpd.GeoDataFrame:
    """A 4 × 4 block of 0.01° squares from (119.00, 43.00); grid ``Gij`` is village ``<town>2ij`` of town
    ``TOWNS[i // 2]``, branch ``B<i // 2>``; staff ``S<j % 2>`` except the last column, which has none."""
    rows = []
    for i in range(4):
        for j in range(4):
            rows.append({
                "grid_id": f"G{i}{j}", "code": f"{TOWNS[i // 2]}2{i}{j}", "source_codes": f"{TOWNS[i // 2]}2{i}{j}",
                "branch_id": f"B{i // 2}", "staff_id": None if j == 3 else f"S{i // 2}{j % 2}",
                "geometry": shapely.box(119 + 0.01 * j, 43 + 0.01 * i, 119.01 + 0.01 * j, 43.01 + 0.01 * i),
            })
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


def make_households(n: int = 3000, seed: int = 8) -> gpd.GeoDataFrame:
    """``n`` households: most with a point in the block, 5 % without a point (placed by village code), 1 %
    with a point outside every grid, 1 % with no point and an unknown code (unplaceable). Amounts are whole
    thousands of yuan, so every sum is exact."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, 4, n), rng.integers(0, 4, n)
    x = 119 + 0.01 * j + rng.uniform(0.0005, 0.0095, n)
    y = 43 + 0.01 * i + rng.uniform(0.0005, 0.0095, n)
    geoms = shapely.points(x, y)
    village = np.array([f"{TOWNS[a // 2]}2{a}{b}" for a, b in zip(i, j, strict=True)], dtype=object)
    kind = rng.random(n)
    geoms[kind < 0.05] = None
    outside = (kind >= 0.05) & (kind < 0.06)
    geoms[outside] = shapely.points(x[outside] + 1.0, y[outside])
    unknown = (kind >= 0.06) & (kind < 0.07)
    geoms[unknown] = None
    village[unknown] = "150422999999"
    archived = rng.random(n) < 0.8
    eligible = archived & (rng.random(n) < 0.6)
    granted = eligible & (rng.random(n) < 0.95)
    signed = granted & (rng.random(n) < 0.5)
    using = signed & (rng.random(n) < 0.75)
    amount = np.where(granted, rng.integers(4, 100, n) * 1000.0, 0.0)
    return gpd.GeoDataFrame(
        {
            "hh_id": [f"H{k:05d}" for k in range(n)],
            "segment": rng.choice(["农牧户", "个体工商户", "公职人员"], n),
            "village_code": village,
            "archived": archived, "eligible": eligible, "granted_amount": amount, "signed": signed,
            "available_amount": np.where(signed, amount, 0.0), "using": using,
            "balance": np.where(using, amount / 2, 0.0),
        },
        geometry=gpd.GeoSeries(geoms, crs=4490), crs=4490,
    )


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return make_grids()


@pytest.fixture(scope="module")
def households() -> gpd.GeoDataFrame:
    return make_households()


# -- the join ------------------------------------------------------------------------------------------------


def test_locate_dask_equals_locate_households_row_for_row(households, grids):
    parts = partition_households(households, npartitions=4)
    got = locate_dask(parts, grids).compute(scheduler="synchronous")
    expected = locate_households(households, grids)
    assert parts.npartitions == 4
    assert list(got.columns) == list(LOCATED_COLUMNS)
    got = got.sort_index()
    pd.testing.assert_frame_equal(got, expected.astype("str"))
    # the fixture exercises every path: points, codes, points outside, unplaceable
    assert set(got["method"].dropna()) == {"point", "village_code"}
    assert got["grid_id"].isna().sum() == (households["village_code"] == "150422999999").sum()


def test_partitions_are_spatially_compact():
    xy = np.array([(119 + 0.001 * a, 43 + 0.001 * b) for a in range(40) for b in range(40)])
    hh = gpd.GeoDataFrame({"hh_id": [f"h{k}" for k in range(len(xy))]},
                          geometry=shapely.points(xy), crs=4490).sample(frac=1.0, random_state=1)
    parts = partition_households(hh, npartitions=4)
    boxes = parts.spatial_partitions.envelope.to_crs(4549).area.sum()
    total = gpd.GeoSeries([shapely.box(*hh.total_bounds)], crs=4490).to_crs(4549).area.sum()
    # Hilbert quarters of a square lattice are its four quadrants; shuffled rows would give ~4× the area
    assert boxes < 1.2 * total
    assert parts.compute().index.sort_values().equals(hh.index.sort_values())


# -- the funnel ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", [None, "town", "village", "grid", "staff", "segment"])
def test_funnel_dask_equals_funnel(households, grids, by):
    got = funnel_dask(partition_households(households, npartitions=3), grids, by=by, scheduler="synchronous")
    expected = funnel(households, by=by, located=locate_households(households, grids))
    pd.testing.assert_frame_equal(got, expected)


def test_funnel_rates_come_from_sums_not_averages(grids):
    # partition 1: one household, archived (rate 1); partition 2: three, none archived (rate 0)
    pts = shapely.points([(119.005, 43.005)] * 4)
    hh = gpd.GeoDataFrame({"hh_id": list("abcd"), "archived": [True, False, False, False]}, geometry=pts, crs=4490)
    ddf = dd.concat([dask_geopandas.from_geopandas(hh.iloc[:1], npartitions=1),
                     dask_geopandas.from_geopandas(hh.iloc[1:], npartitions=1)])
    assert ddf.npartitions == 2
    row = funnel_dask(ddf, grids, by="grid", scheduler="synchronous").loc["G00"]
    assert (row["registered"], row["archived"]) == (4, 1)
    assert row["coverage_rate"] == 0.25  # the mean of the partitions' rates would be 0.5


def test_funnel_dask_rejects_unknown_breakdown(households, grids):
    with pytest.raises(ValidationError, match="不能按 “colour” 汇总"):
        funnel_dask(households, grids, by="colour", scheduler="synchronous")


# -- households on disk ----------------------------------------------------------------------------------------


def test_parquet_round_trip(households, tmp_path):
    files = write_households_parquet(households, tmp_path / "hh", partition_size=1100)
    assert [f.name for f in files] == ["part.00000.parquet", "part.00001.parquet", "part.00002.parquet"]
    back = read_households_parquet(tmp_path / "hh")
    assert back.npartitions == 3
    assert back.spatial_partitions is not None and len(back.spatial_partitions) == 3
    got = back.compute().set_index("hh_id").sort_index()
    want = households.set_index("hh_id").sort_index()
    pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                  pd.DataFrame(want.drop(columns="geometry")), check_dtype=False)
    assert got.geometry.geom_equals_exact(want.geometry, 0).sum() == want.geometry.notna().sum()
    assert got.geometry.isna().sum() == want.geometry.isna().sum()
    assert got.crs.to_epsg() == 4490


def test_parquet_refuses_to_mix_then_appends(households, tmp_path):
    write_households_parquet(households.iloc[:100], tmp_path / "hh")
    with pytest.raises(ValidationError, match="append=True"):
        write_households_parquet(households.iloc[100:200], tmp_path / "hh")
    more = write_households_parquet(iter([households.iloc[100:150], households.iloc[150:200]]), tmp_path / "hh",
                                    append=True)
    assert [f.name for f in more] == ["part.00001.parquet", "part.00002.parquet"]
    assert len(read_households_parquet(tmp_path / "hh", columns=["hh_id"]).compute()) == 200


def test_funnel_dask_reads_a_parquet_directory(households, grids, tmp_path):
    write_households_parquet(households, tmp_path / "hh", partition_size=1000)
    got = funnel_dask(tmp_path / "hh", grids, by="grid", scheduler="synchronous")
    expected = funnel(households, by="grid", located=locate_households(households, grids))
    pd.testing.assert_frame_equal(got, expected)


# -- a real cluster ------------------------------------------------------------------------------------------


def test_local_cluster_and_scheduler_address(households, grids, tmp_path, small_city):
    write_households_parquet(households, tmp_path / "hh", partition_size=1000)
    expected = funnel(households, by="staff", located=locate_households(households, grids))
    ws = GpkgWorkspace(small_city.workspace)
    with get_client(workers=2, memory_limit="1GB") as local:
        workers = local.scheduler_info()["workers"].values()
        assert len(workers) == 2
        assert [(w["nthreads"], w["memory_limit"]) for w in workers] == [(1, 10**9)] * 2  # as get_client asks
        with get_client(local.scheduler.address) as remote:  # any scheduler address
            got = funnel_dask(tmp_path / "hh", grids, by="staff", client=remote)
        # what `report --engine dask --scheduler ADDR` runs on a city workspace
        city = funnel_workspace_dask(ws, by="town", scheduler=local.scheduler.address)
    pd.testing.assert_frame_equal(got, expected)
    assert city["registered"].sum() == 6000
    assert set(city.index) == set(ws.read("admin_units").query("level == 'town'")["code"])


def test_workspace_households(small_city, empty_ws):
    assert workspace_households(GpkgWorkspace(small_city.workspace)) == small_city.households
    hh = make_households(50)
    with empty_ws.transaction(actor="test", action="导入住户") as tx:
        tx.append("households", hh)
    parts = workspace_households(empty_ws)
    assert isinstance(parts, dask_geopandas.GeoDataFrame)
    assert sorted(parts.compute()["hh_id"]) == sorted(hh["hh_id"])


def test_get_client_bad_address_says_how_to_fix():
    with pytest.raises(ValidationError, match="无法连接 Dask 调度器"):
        get_client("tcp://127.0.0.1:9", timeout="1s")


# -- the city generator ----------------------------------------------------------------------------------------


def test_city_outlines_are_converted_from_gcj02():
    outlines = city_outlines()
    assert len(outlines) == 12 and outlines.crs.to_epsg() == 4490
    with pytest.raises(ValidationError, match="150422 巴林左旗"):
        city_outlines(prefix="1599")


@pytest.fixture(scope="module")
def small_city(tmp_path_factory):
    return write_city(tmp_path_factory.mktemp("city"), counties=["150402", "150403"], households=6000,
                      partition_size=1500, seed=7)


def test_write_city_streams_county_by_county(small_city):
    summary = small_city.counties.set_index("code")
    assert list(summary.index) == ["150402", "150403"]
    assert summary["households"].sum() == 6000
    files = sorted(small_city.households.glob("part.*.parquet"))
    assert [f.name for f in files] == [f for parts in summary["partitions"] for f in parts]
    for code, row in summary.iterrows():
        sizes = []
        for name in row["partitions"]:
            part = gpd.read_parquet(small_city.households / name, columns=["hh_id", "village_code", "geometry"])
            assert part["hh_id"].str.startswith(code).all()  # a partition never spans two counties
            assert part["village_code"].str.startswith(code).all()
            sizes.append(len(part))
        assert max(sizes) <= 1500
        assert sum(sizes) == row["households"]
        assert len(sizes) >= -(-row["households"] // 1500)


def test_write_city_workspace_joins(small_city):
    ws = GpkgWorkspace(small_city.workspace)
    grids = read_grids(ws, resolve_plan(ws))
    units = ws.read("admin_units")
    assert resolve_plan(ws) == small_city.plan_id
    assert len(grids) == small_city.counties["villages"].sum() == (units["level"] == "village").sum()
    assert set(units.loc[units["level"] == "county", "code"]) == {"150402", "150403"}
    assert grids["staff_id"].notna().all()
    assert set(grids["branch_id"]) <= set(ws.read("branches")["branch_id"])
    got = funnel_dask(small_city.households, grids, by="grid", scheduler="synchronous")
    assert got["registered"].sum() == 6000
    assert "（未定位）" not in got.index  # every generated household lands in a grid
    hh = read_households_parquet(small_city.households).compute()
    pd.testing.assert_frame_equal(got, funnel(hh, by="grid", located=locate_households(hh, grids)))


def test_write_city_villages_and_towns_are_one_piece(small_city):
    # both counties are one landmass: a village (grid) or town in several pieces would be an enclave
    ws = GpkgWorkspace(small_city.workspace)
    units = ws.read("admin_units")
    grids = read_grids(ws, small_city.plan_id)
    for geoms in (grids.geometry, units.loc[units["level"].isin(["village", "town"])].geometry):
        assert (shapely.get_num_geometries(np.asarray(geoms.values)) == 1).all()
    problems = check_workspace_plan(ws, small_city.plan_id)
    assert errors(problems).empty, errors(problems)["message"].tolist()


def test_write_city_whole_city_plan_has_no_check_error(tmp_path):
    # 12 counties in two Gauss-Krüger zones: neighbours' borders meet without gap or overlap
    city = write_city(tmp_path, households=2000, seed=3)
    problems = check_workspace_plan(GpkgWorkspace(city.workspace), city.plan_id)
    assert len(city.counties) == 12
    assert errors(problems).empty, errors(problems)["message"].tolist()


def test_write_city_will_not_overwrite(small_city):
    with pytest.raises(WorkspaceError, match="已存在"):
        write_city(small_city.workspace.parent, counties=["150402"], households=10)


# -- the demo county (integration: only when workspace/demo.gpkg has been built) -----------------------------


@pytest.mark.slow
def test_demo_county_identical_on_dask(tmp_path):
    import shutil

    from tests.conftest import DEMO

    if not DEMO.exists():
        pytest.skip("workspace/demo.gpkg not built yet (python -m grids demo workspace/demo.gpkg)")
    path = tmp_path / "demo.gpkg"
    shutil.copy(DEMO, path)  # the demo may be regenerated while we read
    ws = GpkgWorkspace(path)
    try:
        grids = read_grids(ws, resolve_plan(ws))
    except ValidationError:  # no plan built yet: one grid per village (and urban community)
        units = ws.read("admin_units")
        villages = units[units["level"] == "village"]
        grids = gpd.GeoDataFrame({"grid_id": villages["code"], "source_codes": villages["code"]},
                                 geometry=villages.geometry.values, crs=4490)
    hh = ws.read("households")
    located = locate_households(hh, grids)
    parts = partition_households(hh, partition_size=30_000)
    assert parts.npartitions == -(-len(hh) // 30_000)
    for by in (None, "town", "grid", "segment"):
        got = funnel_dask(parts, grids, by=by, scheduler="synchronous")
        pd.testing.assert_frame_equal(got, funnel(hh, by=by, located=located), check_exact=False, rtol=1e-12)
    got = locate_dask(parts, grids).compute(scheduler="synchronous").sort_index()
    pd.testing.assert_frame_equal(got, located.astype("str"))
