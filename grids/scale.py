"""Beyond one machine: the household → grid join and the credit funnel on Dask (dask-geopandas).

A city or province holds millions of households; the grids of a plan stay small (a few thousand polygons).
So the households are **spatially partitioned** (Hilbert-sorted GeoParquet partitions, or a Hilbert-sorted
dask-geopandas frame) and the grids are **broadcast**: one graph key that every partition's task depends on,
shipped once to each worker. Each partition is joined by :func:`grids.coverage.locate_households` and
aggregated by :func:`grids.coverage.funnel` — the very functions of the in-memory path, so the results are the
same by construction. Partition sums are added up and the rates recomputed from the sums (never averaged).

Nothing here materialises all households in one process: households live on disk as GeoParquet partitions
(:func:`write_households_parquet`), each task reads one partition, and only per-key sums travel back.

Examples
--------
>>> import geopandas as gpd, shapely
>>> grids = gpd.GeoDataFrame({"grid_id": ["G1", "G2"]},
...                          geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4490)
>>> hh = gpd.GeoDataFrame({"hh_id": ["a", "b", "c"], "archived": [True, False, True]},
...                       geometry=shapely.points([(0.5, 0.5), (1.5, 0.5), (1.2, 0.2)]), crs=4490)
>>> table = funnel_dask(partition_households(hh, npartitions=2), grids, by="grid", scheduler="synchronous")
>>> table[["registered", "archived", "coverage_rate"]].values.tolist()
[[1.0, 1.0, 1.0], [2.0, 1.0, 0.5]]
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from grids.coverage import AMOUNT_COLUMNS, BY_CHOICES, COUNT_COLUMNS, funnel, locate_households, with_rates
from grids.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import dask.dataframe as dd
    import dask_geopandas
    import distributed

__all__ = [
    "LOCATED_COLUMNS",
    "funnel_dask",
    "funnel_workspace_dask",
    "get_client",
    "locate_dask",
    "partition_households",
    "read_households_parquet",
    "workspace_households",
    "write_households_parquet",
]

LOCATED_COLUMNS: tuple[str, ...] = ("hh_id", "grid_id", "code", "branch_id", "staff_id", "method", "reason", "note")
"""Columns of :func:`locate_dask` (those of :func:`grids.coverage.locate_households`), all of dtype ``str``."""

_SUM_COLS: tuple[str, ...] = (*COUNT_COLUMNS, *AMOUNT_COLUMNS)
_LOCATE_INPUTS = ("hh_id", "village_code", "group_code")
_FUNNEL_INPUTS = ("archived", "eligible", "granted_amount", "signed", "available_amount", "using", "balance")
_NEEDS_LOCATION = ("grid", "branch", "staff")
_PART_GLOB = "part.*.parquet"
HOUSEHOLDS_META_KEY = "households_parquet"
"""Workspace metadata key naming the households' GeoParquet directory (relative to the workspace file)."""

# --------------------------------------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------------------------------------


def get_client(scheduler: str | None = None, *, workers: int = 2,
               memory_limit: str | int = "4GB", timeout: str = "20s") -> distributed.Client:
    """A ``distributed`` client: a new local cluster of worker processes, or one connected to ``scheduler``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://10.0.0.5:8786``); its workers must be able to import
        ``grids`` (same code and packages). Without it a :class:`distributed.LocalCluster` is started:
        ``workers`` processes with one thread each (the join is CPU-bound numpy/GEOS work).
    workers : int
        Worker processes of the local cluster.
    memory_limit : str or int
        Memory limit of each local worker (``"4GB"``); a worker near it spills, then pauses, then restarts.
    timeout : str
        How long to try to reach ``scheduler``.

    Returns
    -------
    distributed.Client
        Close it when done (``client.close()`` or ``with get_client() as client:``); a local cluster it
        started is closed with it.
    """
    from distributed import Client

    if scheduler:
        try:
            # never the process-wide default: other dask work (and later calls) must not run on it by accident
            return Client(scheduler, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]  # untyped in distributed
        except OSError as exc:
            raise ValidationError(
                f"无法连接 Dask 调度器 {scheduler}：{exc}",
                fix="检查地址和端口（例如 tcp://10.0.0.5:8786）以及调度器是否已启动；不传地址则在本机启动集群",
            ) from exc
    if workers < 1:
        raise ValidationError(f"工作进程数 {workers} 无效", fix="workers 至少为 1")
    # (Client is untyped in distributed)
    return Client(n_workers=workers, threads_per_worker=1, processes=True,  # type: ignore[no-untyped-call]
                  memory_limit=memory_limit, dashboard_address=":0", silence_logs=40,  # a free port: 8787 may be taken
                  set_as_default=False)


# --------------------------------------------------------------------------------------------------------
# households on disk
# --------------------------------------------------------------------------------------------------------


def _hilbert_order(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Positions of ``frame``'s rows along a Hilbert curve over their extent (rows without a point last)."""
    geoms = frame.geometry
    valid = ~(geoms.isna() | geoms.is_empty).to_numpy()
    key = np.full(len(frame), np.iinfo(np.int64).max, dtype=np.int64)
    if valid.any():
        pts = cast(gpd.GeoSeries, geoms[valid])  # a GeoSeries: pandas-stubs type the mask lookup as Series
        key[valid] = pts.hilbert_distance(total_bounds=pts.total_bounds).to_numpy(dtype=np.int64)
    return np.argsort(key, kind="stable")


def _part_files(path: Path) -> list[Path]:
    return sorted(path.glob(_PART_GLOB))


def write_households_parquet(frame_or_iter: gpd.GeoDataFrame | Iterable[gpd.GeoDataFrame],
                             path: str | os.PathLike[str], *, partition_size: int = 250_000,
                             append: bool = False, spatial_sort: bool = True) -> list[Path]:
    """Write households as a directory of GeoParquet partitions (``part.00000.parquet`` …), one frame at a time.

    Each frame is sorted along a Hilbert curve (so a partition covers a compact area) and cut into partitions
    of at most ``partition_size`` rows; partitions never span two frames, so a generator yielding one county
    at a time gives county-pure partitions. Only one frame is in memory at once. The index is not written:
    ``hh_id`` identifies a household.

    Parameters
    ----------
    frame_or_iter : GeoDataFrame or iterable of GeoDataFrames
        Households with point geometry (EPSG:4490 or convertible to it).
    path : str or Path
        The output directory.
    partition_size : int
        Maximum rows per partition file.
    append : bool
        Add partitions after those already in ``path``; otherwise ``path`` must not hold partitions yet.
    spatial_sort : bool
        Hilbert-sort each frame before cutting it (off keeps the row order).

    Returns
    -------
    list of Path
        The partition files written, in order.
    """
    if partition_size < 1:
        raise ValidationError(f"分区大小 {partition_size} 无效", fix="partition_size 至少为 1（建议 10 万–50 万户）")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    existing = _part_files(out)
    if existing and not append:
        raise ValidationError(
            f"{out} 里已有 {len(existing)} 个住户分区文件", fix="换一个目录，先删除旧分区，或传 append=True 追加"
        )
    k = len(existing)
    frames = [frame_or_iter] if isinstance(frame_or_iter, pd.DataFrame) else frame_or_iter
    written: list[Path] = []
    for frame in frames:
        if not isinstance(frame, gpd.GeoDataFrame):
            raise ValidationError("住户必须是 GeoDataFrame", fix="用 geopandas.GeoDataFrame(..., geometry=点, crs=4490)")
        if frame.crs is None:
            raise ValidationError("住户数据没有坐标参考系（CRS）", fix="先 set_crs(4490)")
        if not len(frame):
            continue
        if frame.crs.to_epsg() != 4490:
            frame = frame.to_crs(4490)
        if spatial_sort:
            frame = frame.iloc[_hilbert_order(frame)]
        for start in range(0, len(frame), partition_size):
            part = frame.iloc[start:start + partition_size].reset_index(drop=True)
            file = out / f"part.{k:05d}.parquet"
            tmp = out / f".part.{k:05d}.parquet.tmp"
            part.to_parquet(tmp, index=False)
            os.replace(tmp, file)  # a reader never sees half a partition
            written.append(file)
            k += 1
    return written


def read_households_parquet(path: str | os.PathLike[str], *,
                            columns: Sequence[str] | None = None) -> dask_geopandas.GeoDataFrame:
    """Open a directory written by :func:`write_households_parquet` lazily: one partition per file.

    The per-file bounding boxes stored in the GeoParquet metadata become the frame's ``spatial_partitions``.

    Parameters
    ----------
    path : str or Path
        The partition directory.
    columns : sequence of str, optional
        Only these attribute columns (the geometry is always read).
    """
    import dask_geopandas

    files = _part_files(Path(path))
    if not files:
        raise ValidationError(
            f"{path} 里没有住户分区文件（{_PART_GLOB}）",
            fix="先用 write_households_parquet 写入，或运行 `python -m grids demo 路径 --city 1504` 生成",
        )
    cols = None if columns is None else [*dict.fromkeys([*columns, "geometry"])]
    return dask_geopandas.read_parquet([str(f) for f in files], columns=cols)


def partition_households(households: gpd.GeoDataFrame, *, npartitions: int | None = None,
                         partition_size: int = 250_000) -> dask_geopandas.GeoDataFrame:
    """An in-memory household table as a spatially partitioned dask-geopandas frame (index kept).

    Rows are Hilbert-sorted (households without a point last) and cut into ``npartitions`` pieces (default:
    enough for ``partition_size`` rows each); ``spatial_partitions`` holds each piece's extent.
    """
    import dask_geopandas

    if not isinstance(households, gpd.GeoDataFrame):
        raise ValidationError("住户必须是 GeoDataFrame", fix="用 geopandas.GeoDataFrame(..., geometry=点, crs=4490)")
    n = npartitions or max(1, -(-len(households) // partition_size))
    ordered = households.iloc[_hilbert_order(households)]
    ddf = dask_geopandas.from_geopandas(ordered, npartitions=n, sort=False)
    if len(households) and (~(households.geometry.isna() | households.geometry.is_empty)).any():
        ddf.calculate_spatial_partitions()
    return ddf


def _as_dask(households: Any, columns: Sequence[str] | None) -> dask_geopandas.GeoDataFrame:
    """Households as a dask-geopandas frame, reading only ``columns`` (plus geometry) where they exist."""
    import dask_geopandas

    if isinstance(households, str | os.PathLike):
        households = read_households_parquet(households)
    elif isinstance(households, gpd.GeoDataFrame):
        households = partition_households(households)
    elif not isinstance(households, dask_geopandas.GeoDataFrame):
        raise ValidationError(
            f"住户类型 {type(households).__name__} 不能用于 Dask 计算",
            fix="传入 GeoParquet 分区目录、dask_geopandas.GeoDataFrame 或 geopandas.GeoDataFrame",
        )
    if columns is not None:
        keep = [c for c in dict.fromkeys([*columns, households.geometry.name]) if c in households.columns]
        households = households[keep]
    return households


def _broadcast(frame: Any, label: str) -> Any:
    """``frame`` as one graph key: every partition's task depends on it, a worker receives it once."""
    from dask.delayed import delayed

    if frame is None:
        return None
    return delayed(frame, name=f"{label}-{uuid.uuid4().hex}")


# --------------------------------------------------------------------------------------------------------
# the join
# --------------------------------------------------------------------------------------------------------


def _located_meta() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="str") for c in LOCATED_COLUMNS})


def _locate_partition(part: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
                      admin_units: gpd.GeoDataFrame | None) -> pd.DataFrame:
    located = locate_households(part, grids, admin_units=admin_units)
    return located.astype("str")  # one dtype whatever a partition holds (all-missing columns included)


def locate_dask(households: Any, grids: gpd.GeoDataFrame, *,
                admin_units: gpd.GeoDataFrame | None = None) -> dd.DataFrame:
    """Place every household in a grid, partition by partition, with the grids broadcast to each partition.

    Parameters
    ----------
    households : dask_geopandas.GeoDataFrame, GeoDataFrame, or path
        Spatially partitioned households, an in-memory table (partitioned by :func:`partition_households`),
        or a GeoParquet directory from :func:`write_households_parquet` (only ``hh_id``, ``village_code``,
        ``group_code`` and the geometry are read).
    grids : GeoDataFrame
        One plan's grids, as for :func:`grids.coverage.locate_households`.
    admin_units : GeoDataFrame, optional
        Admin polygons for codes that no grid lists.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy; per partition exactly :func:`grids.coverage.locate_households` of that partition, columns
        :data:`LOCATED_COLUMNS` as ``str``, index that of the households (a parquet directory has none:
        join on ``hh_id``). ``.compute()`` it for a small area, or ``.to_parquet`` it for a province.
    """
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValidationError("网格必须是 GeoDataFrame", fix="传入方案的网格（grids.plans.read_grids）")
    ddf = _as_dask(households, _LOCATE_INPUTS)
    located: dd.DataFrame = ddf.map_partitions(_locate_partition, _broadcast(grids, "grids"),
                                               _broadcast(admin_units, "admin-units"), meta=_located_meta(),
                                               align_dataframes=False)
    return located


# --------------------------------------------------------------------------------------------------------
# the funnel
# --------------------------------------------------------------------------------------------------------


def _sums_meta() -> pd.DataFrame:
    cols: dict[str, pd.Series] = {"key": pd.Series([], dtype="str")}
    cols.update({c: pd.Series([], dtype="int64") for c in COUNT_COLUMNS})
    cols.update({c: pd.Series([], dtype="float64") for c in AMOUNT_COLUMNS})
    return pd.DataFrame(cols)


def _partition_sums(part: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, admin_units: gpd.GeoDataFrame | None,
                    by: str | None) -> pd.DataFrame:
    """Funnel counts and amounts of one partition per key (``key`` column; rates dropped: they do not add)."""
    located = locate_households(part, grids, admin_units=admin_units) if by in _NEEDS_LOCATION else None
    table = funnel(part, by=by, located=located)
    sums = table[list(_SUM_COLS)].astype({c: "int64" for c in COUNT_COLUMNS} | {c: "float64" for c in AMOUNT_COLUMNS})
    sums.insert(0, "key", pd.Series(pd.array([str(k) for k in table.index], dtype="str"), index=sums.index))
    return sums.reset_index(drop=True)


def funnel_dask(households: Any, grids: gpd.GeoDataFrame, *, by: str | None = None,
                admin_units: gpd.GeoDataFrame | None = None, client: distributed.Client | None = None,
                scheduler: str | None = None) -> pd.DataFrame:
    """The credit funnel of millions of households: per-partition sums on Dask, rates recomputed at the end.

    Equal to ``grids.coverage.funnel(households, by=by, located=locate_households(households, grids))`` on the
    same households: each partition runs exactly that, the counts and amounts are summed per key, and the
    rates are computed from the sums (amounts may differ in the last bits when they are not whole yuan,
    because floating-point sums depend on their order).

    Parameters
    ----------
    households : dask_geopandas.GeoDataFrame, GeoDataFrame, or path
        As for :func:`locate_dask`; only the columns the funnel needs are read.
    grids : GeoDataFrame
        One plan's grids (broadcast to every partition); used when ``by`` is ``grid``, ``branch`` or ``staff``.
    by : {None, 'town', 'village', 'grid', 'branch', 'staff', 'segment', 'product'}
        As for :func:`grids.coverage.funnel`.
    admin_units : GeoDataFrame, optional
        Admin polygons for codes that no grid lists.
    client : distributed.Client, optional
        Run on this cluster (see :func:`get_client`); otherwise on ``scheduler`` or dask's default (an active
        ``distributed`` client if there is one, else threads).
    scheduler : str, optional
        A local dask scheduler name (``"synchronous"``, ``"threads"``, ``"processes"``) when no client is given.

    Returns
    -------
    DataFrame
        Columns :data:`grids.coverage.FUNNEL_COLUMNS`, indexed by the key (``全县`` when ``by`` is None).
    """
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValidationError("网格必须是 GeoDataFrame", fix="传入方案的网格（grids.plans.read_grids）")
    needed = [*_FUNNEL_INPUTS, *_LOCATE_INPUTS, "segment", "product", *([by] if by else [])]
    ddf = _as_dask(households, needed)
    if by is not None and by not in BY_CHOICES and by not in ddf.columns:
        raise ValidationError(
            f"不能按 “{by}” 汇总", fix=f"可选：{'、'.join(f'{k}（{v}）' for k, v in BY_CHOICES.items())}"
        )
    parts = ddf.map_partitions(_partition_sums, _broadcast(grids, "grids"), _broadcast(admin_units, "admin-units"),
                               by, meta=_sums_meta(), align_dataframes=False)
    if client is not None:
        partial = client.compute(parts, sync=True)  # type: ignore[no-untyped-call]  # untyped in distributed
    else:
        partial = parts.compute(scheduler=scheduler)
    sums = partial.groupby("key", sort=True)[list(_SUM_COLS)].sum()
    if by is None and not len(sums):
        sums = pd.DataFrame({c: [0] for c in _SUM_COLS}, index=["全县"])
    sums.index = pd.Index(sums.index.astype(object), dtype="str", name=by or "county")
    return with_rates(sums)


# --------------------------------------------------------------------------------------------------------
# a workspace on Dask (what ``python -m grids report --engine dask`` calls)
# --------------------------------------------------------------------------------------------------------


def workspace_households(ws: Any) -> Path | dask_geopandas.GeoDataFrame:
    """The households of a workspace for the Dask engine.

    A city workspace (``python -m grids demo --city``) keeps its households outside the GeoPackage, in the
    GeoParquet directory named by its ``households_parquet`` metadata: that path is returned, nothing is read.
    A county workspace keeps them in its ``households`` layer: read, then spatially partitioned.
    """
    rel = ws.meta.get(HOUSEHOLDS_META_KEY) if hasattr(ws, "meta") else None
    if rel:
        path = Path(rel) if Path(rel).is_absolute() else Path(ws.path).parent / rel
        if not path.is_dir():
            raise ValidationError(
                f"工作区登记的住户分区目录 {path} 不存在",
                fix="把住户分区目录放回工作区文件旁边，或重新运行 `python -m grids demo 路径 --city 1504 --force`",
            )
        return path
    return partition_households(ws.read("households"))


def funnel_workspace_dask(ws: Any, *, by: str | None = None, plan: str | None = None,
                          scheduler: str | None = None, workers: int = 2,
                          memory_limit: str | int = "4GB") -> pd.DataFrame:
    """The funnel of a workspace computed on Dask: a local cluster (or ``scheduler``), closed afterwards.

    The same table as ``python -m grids report`` computes in memory (households placed by point and codes,
    as :func:`grids.coverage.locate_households` without admin units).

    Parameters
    ----------
    ws : Workspace
        A county or city workspace.
    by : str, optional
        Breakdown, as for :func:`grids.coverage.funnel`.
    plan : str, optional
        Plan name or id (default: the published plan, else the latest draft); needed for ``grid``, ``branch``
        and ``staff``. Without any plan, only breakdowns that need no grid are possible.
    scheduler : str, optional
        Address of a running Dask scheduler; default a :class:`distributed.LocalCluster` of ``workers``.
    workers, memory_limit
        Local cluster size, see :func:`get_client`.
    """
    from grids.plans import read_grids, resolve_plan

    if by in _NEEDS_LOCATION or plan is not None:
        grids = read_grids(ws, resolve_plan(ws, plan))
    else:
        try:
            grids = read_grids(ws, resolve_plan(ws, None))
        except ValidationError:
            grids = gpd.GeoDataFrame({"grid_id": []}, geometry=[], crs=4490)
    households = workspace_households(ws)
    admin = ws.read("admin_units", columns=["code", "level"])
    with get_client(scheduler, workers=workers, memory_limit=memory_limit) as client:
        return funnel_dask(households, grids, by=by, client=client, admin_units=admin)
