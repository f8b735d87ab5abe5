"""Graphs behind assignment: grid adjacency from shared edges, and road distances over the street network.

Both work in the Gauss-Krüger zone of the data (metres). Adjacency is "rook" adjacency: two grids are
neighbours when they share a stretch of boundary (within a small tolerance, so that slivers left by
digitising do not cut a territory in two); touching at a corner is not enough.

Examples
--------
>>> import geopandas as gpd, shapely
>>> squares = gpd.GeoSeries([shapely.box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(3)], crs=4549)
>>> grid_adjacency(squares).toarray().astype(int).tolist()
[[0, 1, 0], [1, 0, 1], [0, 1, 0]]
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from grids.crs import to_gk
from grids.errors import ValidationError

__all__ = ["components", "grid_adjacency", "road_distance_matrix", "to_metres"]


def to_metres(data: gpd.GeoDataFrame | gpd.GeoSeries, *, epsg: int | None = None) -> gpd.GeoSeries:
    """Geometry of ``data`` in its Gauss-Krüger zone (or ``epsg``), as a GeoSeries in metres."""
    geo = data.geometry if isinstance(data, gpd.GeoDataFrame) else data
    if geo.crs is None:
        raise ValidationError(
            "数据没有坐标参考系（CRS），无法计算距离", fix="先用 set_crs 声明坐标系，例如 EPSG:4490"
        )
    if epsg is None and geo.crs.is_projected:
        return geo
    return to_gk(geo, epsg=epsg)


def grid_adjacency(grids: gpd.GeoDataFrame | gpd.GeoSeries, *, tolerance: float = 1.0,
                   min_shared: float = 10.0) -> sparse.csr_matrix:
    """Symmetric 0/1 adjacency matrix of grids that share an edge.

    Parameters
    ----------
    grids : GeoDataFrame or GeoSeries
        Polygons with a CRS; projected to the Gauss-Krüger zone when geographic.
    tolerance : float
        Metres: a gap or overlap narrower than this still counts as a shared edge.
    min_shared : float
        Metres of shared boundary needed; a corner touch (a few times ``tolerance``) is not adjacency.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``n × n`` matrix in the positional order of ``grids``; ``A[i, j] = 1`` when grids i and j are
        neighbours.
    """
    geoms = to_metres(grids).values
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if n == 0:
        return sparse.csr_matrix((0, 0))
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=tolerance)
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left):
        grown = shapely.buffer(geoms, tolerance, quad_segs=2)
        shared = shapely.length(shapely.intersection(grown[left], shapely.boundary(geoms[right])))
        ok = shared >= min_shared
        left, right = left[ok], right[ok]
    data = np.ones(2 * len(left), dtype=np.int8)
    return sparse.csr_matrix(
        (data, (np.concatenate([left, right]), np.concatenate([right, left]))), shape=(n, n)
    )


def components(adjacency: sparse.spmatrix, labels: np.ndarray | None = None) -> np.ndarray:
    """Connected-component number of every node, keeping only edges whose ends carry the same label.

    With ``labels`` (an integer array, one per node), the components are the pieces of each labelled
    territory. Nodes with label ``-1`` still get a component of their own kind.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> a = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> components(a, np.array([0, 1, 0])).tolist()
    [0, 1, 2]
    """
    coo = sparse.coo_matrix(adjacency)
    if labels is not None:
        keep = labels[coo.row] == labels[coo.col]
        coo = sparse.coo_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)
    _, comp = csgraph.connected_components(coo, directed=False)
    return comp


def _street_segments(streets: gpd.GeoDataFrame | gpd.GeoSeries, *, epsg: int, node: bool) -> np.ndarray:
    """Start/end coordinates (``m × 4``: x0, y0, x1, y1) of every straight segment of the street network."""
    lines = np.asarray(to_metres(streets, epsg=epsg).values, dtype=object)
    lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
    if not len(lines):
        return np.empty((0, 4))
    parts = shapely.get_parts(lines)
    parts = parts[shapely.get_type_id(parts) == 1]  # LineString
    if node and len(parts):
        parts = shapely.get_parts(shapely.node(shapely.multilinestrings(parts)))
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[:-1] == idx[1:]
    seg = np.column_stack([coords[:-1][same], coords[1:][same]])
    return seg[np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]) > 0]


def road_distance_matrix(origins: gpd.GeoSeries | gpd.GeoDataFrame, targets: gpd.GeoSeries | gpd.GeoDataFrame,
                         streets: gpd.GeoDataFrame | gpd.GeoSeries, *, node: bool = True,
                         decimals: int = 1) -> np.ndarray:
    """Shortest road distance in metres from every origin to every target over the street network.

    The streets become a graph (vertices rounded to ``decimals`` of a metre are one node; with ``node=True``
    crossing streets are joined where they cross). Each point is attached to the nearest point of the
    nearest street segment, and the straight access distance is added at both ends. All origins are solved
    together by :func:`scipy.sparse.csgraph.dijkstra` (one call, no Python loop over pairs).

    Parameters
    ----------
    origins, targets : GeoSeries or GeoDataFrame of points
        Usually branches and grid centroids; any CRS (projected to the Gauss-Krüger zone of ``targets``).
    streets : GeoDataFrame or GeoSeries of (multi)lines
        The ``streets`` layer (streets and rural roads).

    Returns
    -------
    numpy.ndarray
        ``len(origins) × len(targets)``; ``inf`` where the network does not connect the two.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> roads = gpd.GeoSeries([shapely.LineString([(0, 0), (1000, 0), (1000, 1000)])], crs=4549)
    >>> a = gpd.GeoSeries([shapely.Point(0, 10)], crs=4549)
    >>> b = gpd.GeoSeries([shapely.Point(990, 1000)], crs=4549)
    >>> road_distance_matrix(a, b, roads).round(1).tolist()
    [[2020.0]]
    """
    tgt = to_metres(targets)
    epsg = tgt.crs.to_epsg()
    org = to_metres(origins, epsg=epsg)
    seg = _street_segments(streets, epsg=epsg, node=node)
    if not len(seg):
        raise ValidationError("街道图层为空，无法按道路距离分配", fix="导入街道/道路图层，或改用 --by straight")
    ends = np.round(np.vstack([seg[:, :2], seg[:, 2:]]), decimals)
    _, inverse = np.unique(ends, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    m = len(seg)
    u, v = inverse[:m], inverse[m:]
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    n_nodes = int(inverse.max()) + 1

    points = np.concatenate([np.asarray(org.values, dtype=object), np.asarray(tgt.values, dtype=object)])
    points = shapely.centroid(points)
    seg_lines = shapely.linestrings(seg.reshape(-1, 2, 2))
    tree = shapely.STRtree(seg_lines)
    p_idx, s_idx = tree.query_nearest(points, all_matches=False)
    nearest = np.empty(len(points), dtype=np.int64)
    nearest[p_idx] = s_idx
    along = shapely.line_locate_point(seg_lines[nearest], points)
    access = shapely.distance(points, seg_lines[nearest])
    virtual = n_nodes + np.arange(len(points))

    rows = np.concatenate([u, virtual, virtual])
    cols = np.concatenate([v, u[nearest], v[nearest]])
    w = np.concatenate([length, access + along, access + (length[nearest] - along)])
    # keep the shortest of parallel edges (a sparse matrix would add them up)
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    keep = a != b
    a, b, w = a[keep], b[keep], w[keep]
    order = np.lexsort((w, b, a))
    a, b, w = a[order], b[order], w[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    a, b, w = a[first], b[first], np.maximum(w[first], 1e-9)  # explicit zeros would vanish
    size = n_nodes + len(points)
    graph = sparse.csr_matrix((w, (a, b)), shape=(size, size))

    n_org = len(org)
    dist = csgraph.dijkstra(graph, directed=False, indices=virtual[:n_org])[:, virtual[n_org:]]
    # an origin and a target on the same segment: go along it directly
    same = nearest[:n_org, None] == nearest[None, n_org:]
    if same.any():
        direct = (access[:n_org, None] + access[None, n_org:]
                  + np.abs(along[:n_org, None] - along[None, n_org:]))
        dist = np.where(same, np.minimum(dist, direct), dist)
    return dist
