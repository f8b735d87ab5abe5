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

from typing import TYPE_CHECKING, TypeAlias

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import Delaunay

from grids.crs import to_gk
from grids.errors import ValidationError
from grids.landmass import FERRY_CLASS

__all__ = ["FERRY_FACTOR", "components", "grid_adjacency", "road_distance_matrix", "to_metres"]

if TYPE_CHECKING:
    from scipy.sparse._base import _spbase

    SparseMatrix: TypeAlias = _spbase
    """Any scipy sparse matrix or array (their common base class; the stubs' ``spmatrix`` is only a mixin)."""


def to_metres(data: gpd.GeoDataFrame | gpd.GeoSeries, *, epsg: int | None = None) -> gpd.GeoSeries:
    """Geometry of ``data`` in its Gauss-Krüger zone (or ``epsg``), as a GeoSeries in metres."""
    geo: gpd.GeoSeries = data.geometry if isinstance(data, gpd.GeoDataFrame) else data
    if geo.crs is None:
        raise ValidationError(
            "数据没有坐标参考系（CRS），无法计算距离", fix="先用 set_crs 声明坐标系，例如 EPSG:4490"
        )
    if epsg is None and geo.crs.is_projected:
        return geo
    projected: gpd.GeoSeries = to_gk(geo, epsg=epsg)
    return projected


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
    geoms = np.asarray(to_metres(grids).values, dtype=object)
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


def components(adjacency: SparseMatrix, labels: np.ndarray | None = None) -> np.ndarray:
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
    comp: np.ndarray = csgraph.connected_components(coo, directed=False)[1]
    return comp


FERRY_FACTOR = 2.0
"""A metre by ferry counts as this many metres of road (a ferry is slower, and one waits for it)."""

ACCESS_REACH = 2.0
ACCESS_MIN_M = 300.0
"""A place joins every road within ``ACCESS_REACH`` times the distance of its nearest road (and at least
``ACCESS_MIN_M`` farther): a block between two streets, or a farm between two roads, may leave by either, so that
distances change smoothly from one grid to the next."""

LAND_TOLERANCE_M = 100.0
"""A road node this close to an island's shore may be joined to the island's other roads (ferry landings)."""


def _segments(lines: np.ndarray, *, node: bool) -> np.ndarray:
    lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
    if not len(lines):
        return np.empty((0, 4))
    parts = shapely.get_parts(lines)
    parts = parts[shapely.get_type_id(parts) == 1]  # LineString
    if node and len(parts):
        parts = shapely.get_parts(shapely.node(shapely.multilinestrings(parts)))
    if not len(parts):
        return np.empty((0, 4))
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[:-1] == idx[1:]
    seg = np.column_stack([coords[:-1][same], coords[1:][same]])
    kept: np.ndarray = seg[np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]) > 0]
    return kept


def _street_segments(streets: gpd.GeoDataFrame | gpd.GeoSeries, *, epsg: int | None,
                     node: bool) -> tuple[np.ndarray, np.ndarray]:
    """Start/end coordinates (``m × 4``: x0, y0, x1, y1) of every straight segment of the street network, and
    whether each is a ferry lane (``class == 'ferry'``; ferries are noded among themselves, not with roads)."""
    lines = np.asarray(to_metres(streets, epsg=epsg).values, dtype=object)
    ferry = np.zeros(len(lines), dtype=bool)
    if isinstance(streets, gpd.GeoDataFrame) and "class" in streets.columns:
        ferry = (streets["class"].astype(str) == FERRY_CLASS).to_numpy()
    road, boat = _segments(lines[~ferry], node=node), _segments(lines[ferry], node=node)
    return np.vstack([road, boat]), np.repeat([False, True], [len(road), len(boat)])


def _part_of_points(points: np.ndarray, polys: np.ndarray, *, within: float | None = None) -> np.ndarray:
    """Index of the polygon each point lies on (else the nearest; with ``within``, -1 when farther)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if not len(polys) or not len(points):
        return out
    tree = shapely.STRtree(polys)
    idx, dist = tree.query_nearest(points, all_matches=False, return_distance=True)
    out[idx[0]] = idx[1]
    if within is not None:
        far = np.zeros(len(points), dtype=bool)
        far[idx[0]] = dist > within
        out[far] = -1
    return out


def _attach(points: np.ndarray, seg_lines: np.ndarray, allowed: np.ndarray,
            ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point, segment) pairs: the ``allowed`` segments within each point's access reach that are nearer to it
    than the segments they meet (``ends``: the two node numbers of each segment), i.e. the nearest stretch of
    each road around, not every piece of it."""
    none = np.empty(0, dtype=np.int64)
    if not len(allowed) or not len(points):
        return none, none
    tree = shapely.STRtree(seg_lines[allowed])
    p_idx, s_idx = tree.query_nearest(points, all_matches=False)
    d0 = shapely.distance(points[p_idx], seg_lines[allowed[s_idx]])
    reach = np.maximum(ACCESS_REACH * d0, d0 + ACCESS_MIN_M)
    qi, qs = tree.query(points[p_idx], predicate="dwithin", distance=reach)
    pp, ps = p_idx[qi], allowed[qs]
    d = shapely.distance(points[pp], seg_lines[ps])
    # the least distance from each point to any of its segments at each node; keep a segment when neither of its
    # nodes has a nearer one
    key = np.concatenate([pp, pp]) * (int(ends.max()) + 1) + np.concatenate([ends[ps, 0], ends[ps, 1]])
    uniq, inv = np.unique(key, return_inverse=True)
    best = np.full(len(uniq), np.inf)
    np.minimum.at(best, inv.ravel(), np.concatenate([d, d]))
    at = best[inv.ravel()]
    keep = (d <= at[:len(d)] + 1e-9) & (d <= at[len(d):] + 1e-9)
    return pp[keep], ps[keep]


def _bridges(xy: np.ndarray, comp: np.ndarray, part: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Off-road links that join the road pieces of each island into one network, shortest first.

    Candidate links are the Delaunay edges between nodes of the same island (they contain every island's
    Euclidean minimum spanning tree); a minimum spanning tree over the road pieces keeps the fewest and
    shortest. Returns node pairs and their straight lengths.
    """
    cand_a, cand_b = [], []
    a: np.ndarray
    b: np.ndarray
    for p in np.unique(part[part >= 0]):
        nodes = np.flatnonzero(part == p)
        if len(np.unique(comp[nodes])) < 2:
            continue
        if len(nodes) <= 3:
            a, b = np.triu_indices(len(nodes), 1)
        else:
            tri = Delaunay(xy[nodes], qhull_options="QJ").simplices
            e = np.vstack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
            a, b = e[:, 0], e[:, 1]
        a, b = nodes[a], nodes[b]
        keep = comp[a] != comp[b]
        cand_a.append(a[keep])
        cand_b.append(b[keep])
    if not cand_a:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    a, b = np.concatenate(cand_a), np.concatenate(cand_b)
    length = np.hypot(*(xy[a] - xy[b]).T)
    # the shortest link between each pair of road pieces, then a spanning tree over the pieces
    ca, cb = np.minimum(comp[a], comp[b]), np.maximum(comp[a], comp[b])
    order = np.lexsort((length, cb, ca))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (ca[order][1:] != ca[order][:-1]) | (cb[order][1:] != cb[order][:-1])
    pick = order[first]
    k = int(comp.max()) + 1
    tree = csgraph.minimum_spanning_tree(
        sparse.csr_matrix((np.maximum(length[pick], 1e-9), (ca[pick], cb[pick])), shape=(k, k)))
    edges = tree.tocoo()
    chosen = {(int(r), int(c)) for r, c in zip(edges.row, edges.col, strict=True)}
    use = np.array([(int(x), int(y)) in chosen for x, y in zip(ca[pick], cb[pick], strict=True)], dtype=bool)
    pick = pick[use]
    return a[pick], b[pick], length[pick]


def road_distance_matrix(origins: gpd.GeoSeries | gpd.GeoDataFrame, targets: gpd.GeoSeries | gpd.GeoDataFrame,
                         streets: gpd.GeoDataFrame | gpd.GeoSeries, *, node: bool = True,
                         decimals: int = 1, land: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
                         ferry_factor: float = FERRY_FACTOR) -> np.ndarray:
    """Shortest road distance in metres from every origin to every target over the street network.

    The streets become a graph (vertices rounded to ``decimals`` of a metre are one node; with ``node=True``
    crossing streets are joined where they cross). Ferry lanes (``class == 'ferry'``) are edges too, each metre
    counting ``ferry_factor`` metres. Each point joins the nearest point of every street segment within its
    access reach (twice the distance of its nearest street, at least 300 m more; see ``ACCESS_REACH``) by a
    straight access leg, at both ends. All origins are solved together by
    :func:`scipy.sparse.csgraph.dijkstra` (one call, no Python loop over pairs).

    Parameters
    ----------
    origins, targets : GeoSeries or GeoDataFrame of points
        Usually branches and grid centroids; any CRS (projected to the Gauss-Krüger zone of ``targets``).
    streets : GeoDataFrame or GeoSeries of (multi)lines
        The ``streets`` layer (streets and rural roads, and ferry lanes with ``class == 'ferry'``).
    land : GeoDataFrame or GeoSeries of polygons, optional
        The county's land, one polygon per island (e.g. :func:`grids.landmass.land_parts`). With it, a point is
        attached only to a road of its own island (never across water), and road pieces of one island that do
        not meet are joined off-road in a straight line where they come closest, so that every place reaches
        every place of its island. Islands meet only by ferry.
    ferry_factor : float
        Weight of a ferry metre against a road metre.

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
    if ferry_factor <= 0:
        raise ValidationError(f"渡轮距离系数必须为正：{ferry_factor}", fix="取 1（与道路相同）或更大，例如 2")
    tgt = to_metres(targets)
    assert tgt.crs is not None  # to_metres raises on data without a CRS
    epsg = tgt.crs.to_epsg()
    org = to_metres(origins, epsg=epsg)
    seg, is_ferry = _street_segments(streets, epsg=epsg, node=node)
    if not len(seg):
        raise ValidationError("街道图层为空，无法按道路距离分配", fix="导入街道/道路图层，或改用 --by straight")
    ends = np.round(np.vstack([seg[:, :2], seg[:, 2:]]), decimals)
    uniq, inverse = np.unique(ends, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    m = len(seg)
    u, v = inverse[:m], inverse[m:]
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]) * np.where(is_ferry, ferry_factor, 1.0)
    n_nodes = int(inverse.max()) + 1

    points = np.concatenate([np.asarray(org.values, dtype=object), np.asarray(tgt.values, dtype=object)])
    points = np.asarray(shapely.centroid(points), dtype=object)
    seg_lines = np.asarray(shapely.linestrings(seg.reshape(-1, 2, 2)), dtype=object)
    road = np.flatnonzero(~is_ferry)  # a place is reached from a road, not from a ferry lane
    seg_nodes = np.column_stack([u, v])
    extra_u, extra_v, extra_w = [], [], []
    pair_p, pair_s = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
    if land is None:
        pp, ps = _attach(points, seg_lines, road, seg_nodes)
        pair_p.append(pp)
        pair_s.append(ps)
    else:
        polys = np.asarray(to_metres(land, epsg=epsg).values, dtype=object)
        polys = shapely.get_parts(polys[~(shapely.is_missing(polys) | shapely.is_empty(polys))])
        pt_part = _part_of_points(points, polys)
        seg_part = _part_of_points(shapely.line_interpolate_point(seg_lines, 0.5, normalized=True), polys)
        for p in np.unique(pt_part[pt_part >= 0]):
            mine = road[seg_part[road] == p]
            if not len(mine):
                continue
            who = np.flatnonzero(pt_part == p)
            pp, ps = _attach(points[who], seg_lines, mine, seg_nodes)
            pair_p.append(who[pp])
            pair_s.append(ps)
        _, comp = csgraph.connected_components(
            sparse.coo_matrix((np.ones(m), (u, v)), shape=(n_nodes, n_nodes)), directed=False)
        node_part = _part_of_points(np.asarray(shapely.points(uniq), dtype=object), polys, within=LAND_TOLERANCE_M)
        ba, bb, bw = _bridges(uniq, comp, node_part)
        extra_u, extra_v, extra_w = [ba], [bb], [bw]
    pp, ps = np.concatenate(pair_p), np.concatenate(pair_s)
    p_along = shapely.line_locate_point(seg_lines[ps], points[pp])
    p_access = shapely.distance(points[pp], seg_lines[ps])
    virtual = n_nodes + np.arange(len(points))
    # each access leg lands on a node of its own, the segment split there (so two places on one segment, or a
    # place and the junction behind it, are joined along the segment exactly)
    landing = n_nodes + len(points) + np.arange(len(pp))
    order = np.lexsort((p_along, ps))
    s_seg, s_along, s_node = ps[order], p_along[order], landing[order]
    head = np.ones(len(order), dtype=bool)
    head[1:] = s_seg[1:] != s_seg[:-1]
    tail = np.ones(len(order), dtype=bool)
    tail[:-1] = s_seg[1:] != s_seg[:-1]
    nxt = ~tail

    rows = np.concatenate([u, *extra_u, u[s_seg[head]], s_node[:-1][nxt[:-1]], s_node[tail]])
    cols = np.concatenate([v, *extra_v, s_node[head], s_node[1:][nxt[:-1]], v[s_seg[tail]]])
    w = np.concatenate([length, *extra_w, s_along[head], np.diff(s_along)[nxt[:-1]],
                        shapely.length(seg_lines[s_seg[tail]]) - s_along[tail]])
    # keep the shortest of parallel edges (a sparse matrix would add them up)
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    keep = a != b
    a, b, w = a[keep], b[keep], w[keep]
    order = np.lexsort((w, b, a))
    a, b, w = a[order], b[order], w[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    a, b, w = a[first], b[first], np.maximum(w[first], 1e-9)  # explicit zeros would vanish
    # roads both ways; access legs one way (out of an origin, into a target), so that no way passes through
    # another place and no place's distance depends on which other places are asked about
    n_org = len(org)
    out_leg = pp < n_org
    rows = np.concatenate([a, b, virtual[pp[out_leg]], landing[~out_leg]])
    cols = np.concatenate([b, a, landing[out_leg], virtual[pp[~out_leg]]])
    w = np.concatenate([w, w, np.maximum(p_access[out_leg], 1e-9), np.maximum(p_access[~out_leg], 1e-9)])
    size = n_nodes + len(points) + len(pp)
    graph = sparse.csr_matrix((w, (rows, cols)), shape=(size, size))
    return csgraph.dijkstra(graph, directed=True, indices=virtual[:n_org])[:, virtual[n_org:]]
