"""Exact coverage of raster pixels by polygons, and zonal statistics built on it.

A zone (parcel, block, district) rarely follows pixel edges, so a zonal total must weight
every pixel by the *fraction of its area* the zone covers: ``area(zone ∩ pixel) / area(pixel)``.
This module computes those fractions exactly (to float rounding, the same quantity
exactextract reports) and turns them into a sparse ``(zone, pixel)`` matrix, so any raster
on the analysis grid can be summed per zone with one sparse product.

How the fractions are computed — signed-area accumulation
---------------------------------------------------------
Work in pixel space, where pixel ``(row, col)`` is the unit square
``[col, col + 1) × [row, row + 1)``: ``col = (x - c) / a`` and ``row = (y - f) / e``.
Take one polygon boundary edge piece lying inside a single pixel, with signed height ``dv``
and mid-point column ``um``. The area between that piece and the pixel's right side is the
trapezoid ``dv * ((col + 1) - um)``, and every pixel further right in the same row lies
entirely right of the piece, so gets ``dv`` in full. Summed over all edges of a closed ring,
"area right of the boundary" counted this way is, up to a sign fixed by the ring's
orientation, the area *inside* the ring. So:

1. split every edge at every integer column and row it crosses, so each piece lies in one pixel;
2. for a piece in pixel ``(r, c)`` add ``dv * ((c + 1) - um)`` to ``acc[r, c]`` and
   ``dv * (um - c)`` to ``acc[r, c + 1]`` (the two add up to ``dv``);
3. the coverage of pixel ``(r, c)`` is the cumulative sum of ``acc[r, :c + 1]``.

Each ring is weighted by ``±1`` from the sign of its own shoelace area, so exteriors add and
holes subtract whatever the input ring orientation; a multipolygon is the sum of its parts
(parts of a valid multipolygon do not overlap). Everything is vectorised with numpy over many
polygons at once; there is no per-pixel Python loop and no per-pixel geometry call.

The grid edge is handled without clipping polygons: rows outside the grid are skipped
(rows are independent), pieces right of the grid are dropped (the cumulative sum only runs
rightwards), and a piece left of the grid adds its whole ``dv`` to the first grid column,
which is exactly what it would have carried there through the cumulative sum.

Conventions: the grid is an axis-aligned ``affine.Affine`` (``b = d = 0``; north-up has
``a > 0``, ``e < 0``) with ``shape = (height, width)``; pixels are indexed flat as
``row * width + col``. Geometries must be valid (the caller repairs them) and in the grid's CRS.
Fractions below :data:`MIN_FRACTION` are treated as float noise and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import shapely
from affine import Affine

#: Fractions at or below this are cancellation noise of the cumulative sum (below 1e-13 in
#: practice) rather than real overlap, and are dropped. For 10 m pixels it is 1e-10 m².
MIN_FRACTION = 1e-12

# Dense accumulation cells per batch (float64 buffer of ~8 MB), and boundary edges per batch.
# A geometry whose window exceeds the cell budget is processed in bands of whole rows.
_BATCH_CELLS = 1_000_000
_BATCH_EDGES = 200_000
_POLYGON_TYPE_ID = 3


@dataclass(frozen=True)
class _Edges:
    """Polygon boundary edges in pixel space, one row per edge."""

    u0: np.ndarray  # start column coordinate (pixels)
    v0: np.ndarray  # start row coordinate (pixels)
    u1: np.ndarray  # end column coordinate
    v1: np.ndarray  # end row coordinate
    weight: np.ndarray  # +1 / -1 so that exteriors add and holes subtract coverage
    geom: np.ndarray  # index of the input geometry the edge belongs to


@dataclass(frozen=True)
class _Coverage:
    """Coverage of many geometries as aligned flat arrays, sorted by (geom, pixel)."""

    geom: np.ndarray  # int64 input geometry index
    pixel: np.ndarray  # int64 flat pixel index row * width + col
    fraction: np.ndarray  # float64 in (0, 1]


def coverage_fractions(
    geom: shapely.Geometry | None, transform: Affine, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices (int64, ascending, unique) of every pixel that `geom` (shapely Polygon or
    MultiPolygon, same CRS as the grid) covers with nonzero area, and the fraction of each pixel's
    area covered (float64 in (0, 1]). Pixels outside the grid are dropped (a polygon crossing the
    grid edge keeps only its in-grid part; one fully outside returns two empty arrays).
    Empty geometry -> empty arrays."""
    cov = _coverage([geom], transform, shape)
    return cov.pixel, cov.fraction


def coverage_matrix(
    geoms: Sequence,
    transform: Affine,
    shape: tuple[int, int],
    progress: Callable[[int, int], None] | None = None,
) -> scipy.sparse.csr_matrix:
    """(n_geoms, height*width) float64 CSR matrix, row i = coverage fractions of geoms[i].

    Calls ``progress(done, total)`` (geometries finished, number of geometries) after each
    batch of work (a few thousand small polygons) and once at the end, if given.
    """
    n_geoms = len(geoms)
    height, width = _check_grid(transform, shape)
    cov = _coverage(geoms, transform, shape, progress)
    indptr = np.zeros(n_geoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(cov.geom, minlength=n_geoms), out=indptr[1:])
    return scipy.sparse.csr_matrix(
        (cov.fraction, cov.pixel, indptr), shape=(n_geoms, height * width), dtype=np.float64
    )


def coverage_raster(geoms: Sequence, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """(height, width) float32: fraction of each pixel covered by the union of geoms. Geometries
    are assumed not to overlap each other (they are summed); the sum is clipped to 1.0 to absorb
    float rounding only."""
    height, width = _check_grid(transform, shape)
    cov = _coverage(geoms, transform, shape)
    # float64 even with no geometry (bincount of nothing is an integer array)
    total = np.bincount(cov.pixel, weights=cov.fraction, minlength=height * width).astype(np.float64, copy=False)
    np.minimum(total, 1.0, out=total)
    return total.reshape(height, width).astype(np.float32)


def zonal_sum(matrix: scipy.sparse.csr_matrix, values: np.ndarray) -> np.ndarray:
    """For each zone (row), sum of coverage * value over its pixels; values is (height, width) or
    flat (height*width,). NaN values are missing: they contribute nothing. float64 (n_zones,)."""
    flat = _flat_values(matrix, values)
    return np.asarray(matrix @ np.where(np.isnan(flat), 0.0, flat), dtype=np.float64)


def zonal_covered(matrix: scipy.sparse.csr_matrix, values: np.ndarray) -> np.ndarray:
    """For each zone, sum of coverage over pixels where values is not NaN (in pixel units), float64."""
    flat = _flat_values(matrix, values)
    return np.asarray(matrix @ (~np.isnan(flat)).astype(np.float64), dtype=np.float64)


def zonal_mean(matrix: scipy.sparse.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Coverage-weighted mean over non-NaN pixels: zonal_sum / zonal_covered; NaN where a zone has
    no valid covered pixel (never 0, never inf)."""
    total = zonal_sum(matrix, values)
    covered_px = zonal_covered(matrix, values)
    out = np.full(total.shape, np.nan, dtype=np.float64)
    has_data = covered_px > 0
    out[has_data] = total[has_data] / covered_px[has_data]
    return out


# --- internals -------------------------------------------------------------------------------


def _check_grid(transform: Affine, shape: tuple[int, int]) -> tuple[int, int]:
    """Validate an axis-aligned grid and return (height, width)."""
    if transform.b != 0 or transform.d != 0 or transform.a == 0 or transform.e == 0:
        raise ValueError(
            "transform must be axis-aligned (b = d = 0, a and e nonzero; north-up has a > 0, e < 0). "
            f"Got {tuple(transform)[:6]!r}. Warp the raster to a north-up grid first."
        )
    if len(shape) != 2 or min(shape) < 0:
        raise ValueError(f"shape must be (height, width) with both >= 0. Got {shape!r}.")
    return int(shape[0]), int(shape[1])


def _flat_values(matrix: scipy.sparse.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Values as a flat float64 vector with one entry per matrix column."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size != matrix.shape[1]:
        raise ValueError(
            f"values must have one entry per grid pixel ({matrix.shape[1]}). "
            f"Got an array of shape {np.shape(values)}. Use a raster on the coverage matrix's grid."
        )
    return flat


def _edges(geoms: Sequence, transform: Affine) -> _Edges:
    """Boundary edges of all polygon parts of ``geoms`` in pixel space, with ring weights."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    parts, part_geom = shapely.get_parts(arr, return_index=True)
    is_polygon = shapely.get_type_id(parts) == _POLYGON_TYPE_ID
    parts, part_geom = parts[is_polygon], part_geom[is_polygon]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)

    u = (coords[:, 0] - transform.c) / transform.a
    v = (coords[:, 1] - transform.f) / transform.e
    # Edge k joins vertex k to k + 1 within one (closed) ring.
    same_ring = coord_ring[:-1] == coord_ring[1:]
    start = np.flatnonzero(same_ring)
    edge_ring = coord_ring[start]

    # Ring orientation from its shoelace area in pixel space, taken about the ring's first
    # vertex to avoid cancellation with large coordinates.
    n_rings = len(rings)
    ring_first = np.searchsorted(coord_ring, np.arange(n_rings))
    ring_first = np.minimum(ring_first, max(len(coord_ring) - 1, 0))
    du0 = u[start] - u[ring_first[edge_ring]]
    dv0 = v[start] - v[ring_first[edge_ring]]
    du1 = u[start + 1] - u[ring_first[edge_ring]]
    dv1 = v[start + 1] - v[ring_first[edge_ring]]
    twice_area = np.bincount(edge_ring, weights=du0 * dv1 - du1 * dv0, minlength=n_rings)
    # get_rings lists each polygon's exterior first, then its holes.
    is_exterior = np.ones(n_rings, dtype=bool)
    is_exterior[1:] = ring_part[1:] != ring_part[:-1]
    # With the accumulation rule used here a ring of positive pixel-space shoelace area yields
    # minus its indicator, so exteriors take -sign(area) and holes +sign(area).
    ring_weight = -np.sign(twice_area) * np.where(is_exterior, 1.0, -1.0)

    return _Edges(
        u0=u[start],
        v0=v[start],
        u1=u[start + 1],
        v1=v[start + 1],
        weight=ring_weight[edge_ring],
        geom=part_geom[ring_part[edge_ring]].astype(np.int64),
    )


def _split_at_integers(
    a0: np.ndarray,
    b0: np.ndarray,
    a1: np.ndarray,
    b1: np.ndarray,
    k_lo: float | np.ndarray,
    k_hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split segments (a0, b0) -> (a1, b1) wherever coordinate ``a`` crosses an integer k with
    ``k_lo <= k <= k_hi`` strictly between a0 and a1. Returns the pieces (a0, b0, a1, b1) in
    travel order and the index of the segment each piece came from. Crossing points get
    ``a = k`` exactly and ``b`` interpolated along the segment."""
    lo = np.minimum(a0, a1)
    hi = np.maximum(a0, a1)
    first = np.maximum(np.floor(lo) + 1.0, k_lo)
    last = np.minimum(np.ceil(hi) - 1.0, k_hi)
    n_cross = np.maximum(last - first + 1.0, 0.0).astype(np.int64)
    n_pieces = n_cross + 1
    src = np.repeat(np.arange(len(a0), dtype=np.int64), n_pieces)
    offset = np.cumsum(n_pieces) - n_pieces
    j = np.arange(int(n_pieces.sum()), dtype=np.int64) - np.repeat(offset, n_pieces)

    s_a0, s_b0, s_a1, s_b1 = a0[src], b0[src], a1[src], b1[src]
    increasing = s_a1 > s_a0
    s_first, s_last = first[src], last[src]
    span_a = s_a1 - s_a0
    span_a = np.where(span_a == 0.0, 1.0, span_a)  # only pieces without crossings have span 0

    def crossing(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.where(increasing, s_first + i, s_last - i)
        return k, s_b0 + (k - s_a0) / span_a * (s_b1 - s_b0)

    ka, kb = crossing(j - 1)  # point j = crossing j - 1 (point 0 is the segment start)
    la, lb = crossing(j)  # point j + 1 = crossing j (the last point is the segment end)
    is_first = j == 0
    is_last = j == n_pieces[src] - 1
    p_a0 = np.where(is_first, s_a0, ka)
    p_b0 = np.where(is_first, s_b0, kb)
    p_a1 = np.where(is_last, s_a1, la)
    p_b1 = np.where(is_last, s_b1, lb)
    return p_a0, p_b0, p_a1, p_b1, src


def _coverage(
    geoms: Sequence,
    transform: Affine,
    shape: tuple[int, int],
    progress: Callable[[int, int], None] | None = None,
) -> _Coverage:
    """Coverage fractions of every geometry, as flat arrays sorted by (geometry, pixel)."""
    height, width = _check_grid(transform, shape)
    n_geoms = len(geoms)
    empty = _Coverage(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    edges = _edges(geoms, transform) if n_geoms else None
    if edges is None or len(edges.geom) == 0 or height == 0 or width == 0:
        if progress is not None:
            progress(n_geoms, n_geoms)
        return empty

    tasks = _tasks(_windows(edges, n_geoms, height, width))
    edge_of, edge_task = _edges_by_task(edges, tasks)
    task_edge_start = np.searchsorted(edge_task, np.arange(tasks.n + 1))
    cum_cells = np.concatenate([[0], np.cumsum((tasks.row1 - tasks.row0) * (tasks.col1 - tasks.col0))])

    geom_out: list[np.ndarray] = []
    pixel_out: list[np.ndarray] = []
    frac_out: list[np.ndarray] = []
    start = 0
    while start < tasks.n:
        # The largest run of whole tasks within both budgets (at least one task).
        by_cells = np.searchsorted(cum_cells, cum_cells[start] + _BATCH_CELLS, side="right") - 1
        by_edges = np.searchsorted(task_edge_start, task_edge_start[start] + _BATCH_EDGES, side="right") - 1
        stop = min(max(start + 1, int(min(by_cells, by_edges))), tasks.n)
        sel = slice(task_edge_start[start], task_edge_start[stop])
        batch = slice(start, stop)
        pixel, frac, task = _accumulate_tasks(
            edges,
            edge_of[sel],
            edge_task[sel] - start,
            tasks.row0[batch],
            tasks.row1[batch],
            tasks.col0[batch],
            tasks.col1[batch],
            width,
        )
        geom_out.append(tasks.geom[batch][task])
        pixel_out.append(pixel)
        frac_out.append(frac)
        start = stop
        if progress is not None and start < tasks.n:
            progress(int(tasks.geom[start]), n_geoms)
    if progress is not None:
        progress(n_geoms, n_geoms)
    if not geom_out:
        return empty
    return _Coverage(np.concatenate(geom_out), np.concatenate(pixel_out), np.concatenate(frac_out))


@dataclass(frozen=True)
class _Windows:
    """Per geometry: rows [row0, row1) × cols [col0, col1) of the grid, its pixel-space
    bounding box cut to the grid (empty, 0 × 0, when it misses the grid)."""

    row0: np.ndarray
    row1: np.ndarray
    col0: np.ndarray
    col1: np.ndarray


@dataclass(frozen=True)
class _Tasks(_Windows):
    """Units of work: a whole geometry window, or a band of whole rows of a very large one.
    ``geom`` is the geometry of each task; ``first`` (per geometry) its first task and
    ``band_rows`` (per geometry) the height of its bands."""

    geom: np.ndarray
    first: np.ndarray
    band_rows: np.ndarray
    windows: _Windows

    @property
    def n(self) -> int:
        return len(self.geom)


def _windows(edges: _Edges, n_geoms: int, height: int, width: int) -> _Windows:
    """Window of each geometry: its pixel-space bounding box snapped outward and cut to the grid."""
    u_min, v_min = np.full(n_geoms, np.inf), np.full(n_geoms, np.inf)
    u_max, v_max = np.full(n_geoms, -np.inf), np.full(n_geoms, -np.inf)
    np.minimum.at(u_min, edges.geom, np.minimum(edges.u0, edges.u1))
    np.minimum.at(v_min, edges.geom, np.minimum(edges.v0, edges.v1))
    np.maximum.at(u_max, edges.geom, np.maximum(edges.u0, edges.u1))
    np.maximum.at(v_max, edges.geom, np.maximum(edges.v0, edges.v1))
    has_edges = np.isfinite(u_min)
    col0 = np.where(has_edges, np.maximum(np.floor(u_min), 0), 0).astype(np.int64)
    col1 = np.where(has_edges, np.minimum(np.ceil(u_max), width), 0).astype(np.int64)
    row0 = np.where(has_edges, np.maximum(np.floor(v_min), 0), 0).astype(np.int64)
    row1 = np.where(has_edges, np.minimum(np.ceil(v_max), height), 0).astype(np.int64)
    misses_grid = (col1 <= col0) | (row1 <= row0)
    return _Windows(
        row0=row0,
        row1=np.where(misses_grid, row0, row1),
        col0=col0,
        col1=np.where(misses_grid, col0, col1),
    )


def _tasks(windows: _Windows) -> _Tasks:
    """Cut each window into bands of whole rows of at most ``_BATCH_CELLS`` cells (one band
    for an ordinary geometry); rows are independent, so bands can be computed separately."""
    n_cols = windows.col1 - windows.col0
    n_rows = windows.row1 - windows.row0
    band_rows = np.maximum(_BATCH_CELLS // np.maximum(n_cols, 1), 1)
    n_bands = -(-n_rows // band_rows)
    first = np.cumsum(n_bands) - n_bands
    geom = np.repeat(np.arange(len(n_cols), dtype=np.int64), n_bands)
    band = np.arange(len(geom), dtype=np.int64) - first[geom]
    row0 = windows.row0[geom] + band * band_rows[geom]
    row1 = np.minimum(row0 + band_rows[geom], windows.row1[geom])
    return _Tasks(
        row0=row0,
        row1=row1,
        col0=windows.col0[geom],
        col1=windows.col1[geom],
        geom=geom,
        first=first,
        band_rows=band_rows,
        windows=windows,
    )


def _edges_by_task(edges: _Edges, tasks: _Tasks) -> tuple[np.ndarray, np.ndarray]:
    """Give each edge to every task (band) whose rows it crosses. Returns (edge index, task)
    sorted by task. Horizontal edges carry no height and edges right of their window add
    nothing inside it, so both are left out."""
    win = tasks.windows
    g = edges.geom
    v_lo = np.minimum(edges.v0, edges.v1)
    v_hi = np.maximum(edges.v0, edges.v1)
    row_first = np.maximum(np.floor(v_lo), win.row0[g]).astype(np.int64)
    row_last = np.minimum(np.ceil(v_hi) - 1, win.row1[g] - 1).astype(np.int64)
    useful = (v_hi > v_lo) & (row_first <= row_last) & (np.minimum(edges.u0, edges.u1) < win.col1[g])
    idx = np.flatnonzero(useful)
    g = g[idx]
    band_first = (row_first[idx] - win.row0[g]) // tasks.band_rows[g]
    band_last = (row_last[idx] - win.row0[g]) // tasks.band_rows[g]
    reps = band_last - band_first + 1
    within = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    edge_task = np.repeat(tasks.first[g] + band_first, reps) + within
    edge_of = np.repeat(idx, reps)
    order = np.argsort(edge_task, kind="stable")
    return edge_of[order], edge_task[order]


def _accumulate_tasks(
    edges: _Edges,
    edge_of: np.ndarray,
    edge_task: np.ndarray,
    row0: np.ndarray,
    row1: np.ndarray,
    col0: np.ndarray,
    col1: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage of one batch of task windows. ``edge_task`` is the (batch-local) task of each
    edge in ``edge_of``; windows are rows [row0, row1) × cols [col0, col1) of the grid.
    Returns (flat pixel index, fraction, batch-local task) sorted by task then pixel."""
    n_cols = col1 - col0
    n_rows = row1 - row0
    cells = n_rows * n_cols
    cell_offset = np.cumsum(cells) - cells
    total_cells = int(cells.sum())

    # Window-local pixel coordinates (subtracting whole pixels is exact inside the window) keep
    # every number below the window size, so rounding stays at the scale of the window, not of
    # the grid.
    e_task = edge_task
    u0 = edges.u0[edge_of] - col0[e_task]
    v0 = edges.v0[edge_of] - row0[e_task]
    u1 = edges.u1[edge_of] - col0[e_task]
    v1 = edges.v1[edge_of] - row0[e_task]
    weight = edges.weight[edge_of]

    # 1. Split edges at the integer columns inside each window (pieces left of the window are
    #    not split: they only pass their dv on; pieces right of it are dropped).
    u0, v0, u1, v1, src = _split_at_integers(u0, v0, u1, v1, 0.0, n_cols[e_task])
    e_task, weight = e_task[src], weight[src]
    keep = (np.minimum(u0, u1) < n_cols[e_task]) & (v0 != v1)
    u0, v0, u1, v1, e_task, weight = u0[keep], v0[keep], u1[keep], v1[keep], e_task[keep], weight[keep]
    # 2. Split the column pieces at the integer rows inside the window.
    v0, u0, v1, u1, src = _split_at_integers(v0, u0, v1, u1, 0.0, n_rows[e_task])
    e_task, weight = e_task[src], weight[src]

    # 3. Each piece now lies in one window cell (r, c), found from its mid-point.
    dv = (v1 - v0) * weight
    u_mid = 0.5 * (u0 + u1)
    r = np.floor(0.5 * (v0 + v1)).astype(np.int64)
    c = np.floor(u_mid).astype(np.int64)
    t_cols = n_cols[e_task]
    inside_rows = (r >= 0) & (r < n_rows[e_task]) & (dv != 0)
    left_of = inside_rows & (c < 0)
    in_window = inside_rows & (c >= 0) & (c < t_cols)
    spills = in_window & (c + 1 < t_cols)
    row_base = cell_offset[e_task] + r * t_cols
    # Pieces left of the window add their whole dv at the window's first column.
    index = np.concatenate(
        [row_base[in_window] + c[in_window], row_base[spills] + c[spills] + 1, row_base[left_of]]
    )
    cf = c.astype(np.float64)
    contribution = np.concatenate(
        [(dv * ((cf + 1.0) - u_mid))[in_window], (dv * (u_mid - cf))[spills], dv[left_of]]
    )
    acc = np.bincount(index, weights=contribution, minlength=total_cells)

    # 4. Cumulative sum along each window row, done as one running sum over the whole buffer.
    #    A row's entries need not sum to 0 (what spills past the window is dropped), so each
    #    row's total is taken off at the start of the next row; otherwise the running sum would
    #    drift and its rounding would grow with the number of rows in the batch. What is left
    #    over at each row start (rounding only) is subtracted afterwards.
    row_len = np.repeat(n_cols, n_rows)
    row_start = np.cumsum(row_len) - row_len
    row_total = np.add.reduceat(acc, row_start) if len(row_start) else np.zeros(0)
    acc[row_start[1:]] -= row_total[:-1]
    running = np.cumsum(acc)
    carry = np.zeros(len(row_start))
    carry[1:] = running[row_start[1:] - 1] - row_total[:-1]
    coverage = running - np.repeat(carry, row_len)

    # 5. Keep covered cells and map them back to flat grid pixels.
    cell = np.flatnonzero(coverage > MIN_FRACTION)
    task = np.searchsorted(cell_offset, cell, side="right") - 1
    local = cell - cell_offset[task]
    pixel = (row0[task] + local // n_cols[task]) * width + col0[task] + local % n_cols[task]
    fraction = np.minimum(coverage[cell], 1.0)
    return pixel.astype(np.int64), fraction, task
