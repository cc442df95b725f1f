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

``acc`` is nonzero only in pixels the boundary passes through (and their right neighbours), so
step 3 is evaluated at those pixels alone: between two of them the coverage is constant (0 or
1, a pixel no edge enters is wholly outside or inside), and it is written out as one run.

Each ring is weighted by ``±1`` from the sign of its own shoelace area, so exteriors add and
holes subtract whatever the input ring orientation; a multipolygon is the sum of its parts
(parts of a valid multipolygon do not overlap). Everything is vectorised with numpy over many
polygons at once; there is no per-pixel Python loop and no per-pixel geometry call. The
results go straight into the CSR arrays (int32 indices while the grid has fewer than 2³¹
pixels), sized from an upper bound on each geometry's covered pixels (its area plus the pixels
its edges can pass through), so the peak memory is the matrix plus one batch.

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
from dataclasses import dataclass, replace

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
# Geometries whose parts and rings are cloned at once to read their coordinates (_edges).
_EDGE_BATCH_GEOMS = 50_000
# Edges given to their tasks at once (_edges_by_task): its temporaries, one value per edge, stay ~2 MiB
# each instead of ~30 MiB at 10⁶ parcels (just under glibc's mmap threshold, so kept on the heap).
_TASK_EDGE_BATCH = 1 << 18
# Matrix entries per chunk of a zonal product.
_VALUE_CHUNK = 1 << 20
_INT32_MAX = np.iinfo(np.int32).max
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
    max_pixels: np.ndarray  # per input geometry: an upper bound on the pixels it can cover


@dataclass(frozen=True)
class _Coverage:
    """Coverage of many geometries in CSR layout: the entries of geometry ``i`` are
    ``pixel[start:stop]`` / ``fraction[start:stop]`` with ``start, stop = offsets[i], offsets[i + 1]``,
    pixels ascending within a geometry."""

    offsets: np.ndarray  # (n_geoms + 1,) int32 when the entry count allows, else int64
    pixel: np.ndarray  # flat pixel index row * width + col: int32 when the grid allows, else int64
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
    return cov.pixel.astype(np.int64), cov.fraction


def coverage_matrix(
    geoms: Sequence,
    transform: Affine,
    shape: tuple[int, int],
    progress: Callable[[int, int], None] | None = None,
) -> scipy.sparse.csr_matrix:
    """(n_geoms, height*width) float64 CSR matrix, row i = coverage fractions of geoms[i].

    The index arrays are int32 unless the grid has 2**31 pixels or more, or the matrix 2**31
    entries or more. Calls ``progress(done, total)`` (geometries finished, number of geometries)
    after each batch of work (a few hundred small polygons) and once at the end, if given.
    """
    height, width = _check_grid(transform, shape)
    cov = _coverage(geoms, transform, shape, progress)
    if cov.offsets.dtype != cov.pixel.dtype:  # scipy wants one index dtype; only at >= 2**31
        cov = _Coverage(cov.offsets.astype(np.int64), cov.pixel.astype(np.int64), cov.fraction)
    return scipy.sparse.csr_matrix(
        (cov.fraction, cov.pixel, cov.offsets), shape=(len(geoms), height * width), dtype=np.float64, copy=False
    )


def tile_coverage_matrix(
    geoms: Sequence,
    grid,
    tile,
    progress: Callable[[int, int], None] | None = None,
) -> scipy.sparse.csr_matrix:
    """(n_geoms, tile.height*tile.width) float64 CSR matrix: the coverage of the pixels of ``tile`` (a
    :class:`greensink.grid.Tile` of the :class:`greensink.grid.Grid` ``grid``) by each of ``geoms``, pixels
    indexed locally (``r * tile.width + c`` for the tile's row r and column c). Every geometry has its row, in
    the order given; one whose bounds miss the tile's is not computed (an empty row).

    It is the whole grid's :func:`coverage_matrix` restricted to the tile's columns, computed on the tile's
    pixels (:meth:`greensink.grid.Grid.subgrid`) alone, so its memory is bounded by the tile and the geometries
    inside it. The vertices are put in the whole grid's pixel coordinates (rounded as the whole grid's matrix
    rounds them) and moved by the tile's whole-pixel offset (exact), so the fractions are the whole grid's to the
    rounding of the sums along a row, which start at the tile's edge for a geometry crossing it (~1e-16; a
    fraction within rounding of :data:`MIN_FRACTION` may be kept on one side and dropped on the other)."""
    sub = grid.subgrid(tile)
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    xmin, ymin, xmax, ymax = sub.bounds
    lo_x, lo_y, hi_x, hi_y = shapely.bounds(arr).T if len(arr) else (np.zeros(0),) * 4
    # strict: a geometry that only touches the tile's edge covers no area of it (NaN bounds, empty: False)
    with np.errstate(invalid="ignore"):
        inside = np.flatnonzero((lo_x < xmax) & (hi_x > xmin) & (lo_y < ymax) & (hi_y > ymin))
    cov = _coverage(arr[inside], grid.transform, sub.shape, progress, offset=(tile.row_off, tile.col_off))
    counts = np.zeros(len(arr), dtype=np.int64)
    counts[inside] = np.diff(cov.offsets)
    indptr = np.zeros(len(arr) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    index_dtype = cov.pixel.dtype if indptr[-1] <= _INT32_MAX else np.int64
    return scipy.sparse.csr_matrix(
        (cov.fraction, cov.pixel.astype(index_dtype, copy=False), indptr.astype(index_dtype)),
        shape=(len(arr), tile.height * tile.width), dtype=np.float64, copy=False,
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
    return _zonal_product(matrix, _flat_values(matrix, values), covered_only=False)


def zonal_covered(matrix: scipy.sparse.csr_matrix, values: np.ndarray) -> np.ndarray:
    """For each zone, sum of coverage over pixels where values is not NaN (in pixel units), float64."""
    return _zonal_product(matrix, _flat_values(matrix, values), covered_only=True)


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
    """Values as a flat vector (a view when possible) with one entry per matrix column."""
    flat = np.asarray(values).reshape(-1)
    if flat.size != matrix.shape[1]:
        raise ValueError(
            f"values must have one entry per grid pixel ({matrix.shape[1]}). "
            f"Got an array of shape {np.shape(values)}. Use a raster on the coverage matrix's grid."
        )
    return flat


def _zonal_product(matrix: scipy.sparse.csr_matrix, flat: np.ndarray, covered_only: bool) -> np.ndarray:
    """Per row of ``matrix``: sum of fraction * value (``covered_only=False``) or of fraction
    alone (``covered_only=True``) over the row's pixels whose value is not NaN. float64.

    For a CSR matrix this runs over the stored entries in chunks: gather the chunk's values
    (in their own dtype, e.g. float32), multiply in float64 and add up by row. Nothing of the
    raster's size is allocated (a float64 copy of a 10⁸-pixel raster would be 800 MB)."""
    if not (scipy.sparse.issparse(matrix) and matrix.format == "csr"):
        as64 = flat.astype(np.float64)
        missing = np.isnan(as64)
        as64[missing] = 0.0
        if covered_only:
            as64[~missing] = 1.0
        return np.asarray(matrix @ as64, dtype=np.float64).reshape(-1)
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    out = np.zeros(matrix.shape[0], dtype=np.float64)
    nnz = int(indptr[-1])
    size = min(_VALUE_CHUNK, nnz)
    value_buf = np.empty(size, dtype=flat.dtype)
    term_buf = np.empty(size, dtype=np.float64)
    missing_buf = np.empty(size, dtype=bool)
    for a in range(0, nnz, _VALUE_CHUNK):
        b = min(a + _VALUE_CHUNK, nnz)
        value, term, missing = value_buf[: b - a], term_buf[: b - a], missing_buf[: b - a]
        np.take(flat, indices[a:b], out=value, mode="clip")  # CSR indices are in range already
        np.isnan(value, out=missing)
        if covered_only:
            term[...] = data[a:b]
        else:
            np.multiply(value, data[a:b], out=term)
        term[missing] = 0.0
        # rows with entries in [a, b): the one holding entry a, then every nonempty row after it
        # that starts before b
        r0 = int(np.searchsorted(indptr, a, side="right")) - 1
        r1 = int(np.searchsorted(indptr, b, side="left"))
        rows = r0 + np.flatnonzero(indptr[r0 + 1 : r1 + 1] > indptr[r0:r1])
        out[rows] += np.add.reduceat(term, np.maximum(indptr[rows], a) - a)
    return out


def _edges(geoms: Sequence, transform: Affine, batch: int | None = None) -> _Edges:
    """Boundary edges of all polygon parts of ``geoms`` in pixel space, with ring weights.

    The coordinates come from clones of every part and ring (shapely has no other way to tell rings
    apart), so they are taken ``batch`` geometries at a time (None: :data:`_EDGE_BATCH_GEOMS`) and
    written into arrays sized once from the coordinate count (an edge per coordinate at most): only
    one batch's clones are alive at a time (10⁶ parcels at once kept about 800 MiB resident). The
    result does not depend on ``batch``: every number is computed from one geometry's own
    coordinates, in the same order (tests/test_coverage_edges.py)."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    n_geoms = len(arr)
    capacity = int(shapely.get_num_coordinates(arr).sum()) if n_geoms else 0
    u0, v0, u1, v1, weight = (np.empty(capacity, dtype=np.float64) for _ in range(5))
    geom = np.empty(capacity, dtype=np.int64)
    max_pixels = np.empty(n_geoms, dtype=np.float64)
    step = max(int(_EDGE_BATCH_GEOMS if batch is None else batch), 1)
    n = 0
    for b0 in range(0, n_geoms, step):
        b1 = min(b0 + step, n_geoms)
        part = _edges_of(arr[b0:b1], transform)
        k = len(part.geom)
        u0[n : n + k], v0[n : n + k], u1[n : n + k], v1[n : n + k] = part.u0, part.v0, part.u1, part.v1
        weight[n : n + k] = part.weight
        geom[n : n + k] = part.geom + b0
        max_pixels[b0:b1] = part.max_pixels
        n += k
    return _Edges(
        u0=_resized(u0, n),
        v0=_resized(v0, n),
        u1=_resized(u1, n),
        v1=_resized(v1, n),
        weight=_resized(weight, n),
        geom=_resized(geom, n),
        max_pixels=max_pixels,
    )


def _edges_of(arr: np.ndarray, transform: Affine) -> _Edges:
    """:func:`_edges` of one batch (an object array of geometries), ``geom`` indexing the batch."""
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

    edge_geom = part_geom[ring_part[edge_ring]].astype(np.int64)
    u0, v0, u1, v1 = u[start], v[start], u[start + 1], v[start + 1]

    # A covered pixel lies wholly inside the geometry (there are at most its area's worth of
    # those) or has boundary passing through it (an edge passes through at most
    # |du| + |dv| + 3 pixels). This bounds the entries of each geometry, so the output
    # arrays can be sized up front.
    ring_geom = part_geom[ring_part]
    n_geoms = len(arr)
    area = np.bincount(ring_geom, weights=np.where(is_exterior, 0.5 * np.abs(twice_area), 0.0), minlength=n_geoms)
    crossed = np.bincount(edge_geom, weights=np.abs(u1 - u0) + np.abs(v1 - v0) + 3.0, minlength=n_geoms)
    return _Edges(
        u0=u0,
        v0=v0,
        u1=u1,
        v1=v1,
        weight=ring_weight[edge_ring],
        geom=edge_geom,
        max_pixels=np.ceil(area + crossed),
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
    offset: tuple[int, int] = (0, 0),
) -> _Coverage:
    """Coverage fractions of every geometry, in CSR layout (see :class:`_Coverage`).

    ``offset`` (row, col) in whole pixels: the grid is the ``shape`` window of ``transform``'s grid whose first
    pixel is (row, col) of it; the vertices' pixel coordinates are ``transform``'s, less the offset (a tile's
    coverage rounded as its grid's). Each batch of tasks is written straight into output arrays sized from an
    upper bound on the entry count; untouched capacity is never paged in and is released at the end."""
    height, width = _check_grid(transform, shape)
    n_geoms = len(geoms)
    pixel_dtype = np.int32 if height * width <= _INT32_MAX else np.int64
    edges = _edges(geoms, transform) if n_geoms else None
    if edges is not None and offset != (0, 0):
        row_off, col_off = float(offset[0]), float(offset[1])
        edges = replace(edges, u0=edges.u0 - col_off, u1=edges.u1 - col_off, v0=edges.v0 - row_off,
                        v1=edges.v1 - row_off)
    if edges is None or len(edges.geom) == 0 or height == 0 or width == 0:
        if progress is not None:
            progress(n_geoms, n_geoms)
        return _Coverage(np.zeros(n_geoms + 1, np.int32), np.zeros(0, pixel_dtype), np.zeros(0, np.float64))

    windows = _windows(edges, n_geoms, height, width)
    tasks = _tasks(windows)
    edge_of, edge_task = _edges_by_task(edges, tasks)
    task_edge_start = np.searchsorted(edge_task, np.arange(tasks.n + 1))
    cum_cells = np.concatenate([[0], np.cumsum((tasks.row1 - tasks.row0) * (tasks.col1 - tasks.col0))])

    window_cells = (windows.row1 - windows.row0) * (windows.col1 - windows.col0)
    capacity = max(int(np.minimum(edges.max_pixels, window_cells).sum()), 1)
    pixel_out = np.empty(capacity, dtype=pixel_dtype)
    frac_out = np.empty(capacity, dtype=np.float64)
    task_count = np.zeros(tasks.n, dtype=np.int64)
    n_out = 0
    start = 0
    while start < tasks.n:
        # The largest run of whole tasks within both budgets (at least one task).
        by_cells = np.searchsorted(cum_cells, cum_cells[start] + _BATCH_CELLS, side="right") - 1
        by_edges = np.searchsorted(task_edge_start, task_edge_start[start] + _BATCH_EDGES, side="right") - 1
        stop = min(max(start + 1, int(min(by_cells, by_edges))), tasks.n)
        sel = slice(task_edge_start[start], task_edge_start[stop])
        batch = slice(start, stop)
        run_pixel, run_len, run_value, task_count[batch] = _accumulate_tasks(
            edges,
            edge_of[sel],
            edge_task[sel] - start,
            tasks.row0[batch],
            tasks.row1[batch],
            tasks.col0[batch],
            tasks.col1[batch],
            width,
        )
        n_new = int(task_count[batch].sum())
        if n_out + n_new > capacity:  # not expected (the bound is an upper bound); grow anyway
            capacity = max(2 * capacity, n_out + n_new)
            pixel_out = _resized(pixel_out, capacity)
            frac_out = _resized(frac_out, capacity)
        _expand_runs(run_pixel, run_len, run_value, pixel_out[n_out : n_out + n_new], frac_out[n_out : n_out + n_new])
        n_out += n_new
        start = stop
        if progress is not None and start < tasks.n:
            progress(int(tasks.geom[start]), n_geoms)
    if progress is not None:
        progress(n_geoms, n_geoms)

    offsets = np.zeros(n_geoms + 1, dtype=np.int32 if n_out <= _INT32_MAX else np.int64)
    np.cumsum(np.bincount(tasks.geom, weights=task_count, minlength=n_geoms).astype(np.int64), out=offsets[1:])
    return _Coverage(offsets, _resized(pixel_out, n_out), _resized(frac_out, n_out))


def _resized(arr: np.ndarray, n: int) -> np.ndarray:
    """``arr`` (a 1-d array that owns its memory) with length ``n``, resized in place where the
    allocator allows it (for a large array, shrinking just unmaps the tail: nothing is copied
    and the untouched tail was never paged in)."""
    if len(arr) == n:
        return arr
    try:
        arr.resize(n, refcheck=False)
    except ValueError:  # not resizable in place (it does not own its data): copy
        out = np.empty(n, dtype=arr.dtype)
        k = min(n, len(arr))
        out[:k] = arr[:k]
        return out
    return arr


def _expand_runs(
    run_pixel: np.ndarray, run_len: np.ndarray, run_value: np.ndarray, pixel_out: np.ndarray, frac_out: np.ndarray
) -> None:
    """Write runs of equal coverage (first pixel, length, fraction) out as one entry per pixel.
    ``pixel_out`` is filled as a running sum of steps: 1 inside a run, a jump at a run start."""
    if len(run_len) == 0:
        return
    run_at = np.cumsum(run_len) - run_len
    jump = run_pixel.astype(pixel_out.dtype)
    jump[1:] -= run_pixel[:-1] + (run_len[:-1] - 1)
    pixel_out.fill(1)
    pixel_out[run_at] = jump
    np.cumsum(pixel_out, dtype=pixel_out.dtype, out=pixel_out)
    frac_out[...] = np.repeat(run_value, run_len)


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


def _edges_by_task(edges: _Edges, tasks: _Tasks, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Give each edge to every task (band) whose rows it crosses. Returns (edge index, task)
    sorted by task (stably: by edge index within a task). Horizontal edges carry no height and
    edges right of their window add nothing inside it, so both are left out.

    The edges are taken about ``batch`` at a time (None: :data:`_TASK_EDGE_BATCH`), cut at geometry
    boundaries, and written into two arrays sized once from the edge count: a batch's temporaries are
    small, and the whole-array version's ~15 temporaries of one value per edge (30 MiB each at 10⁶
    parcels, left on the heap by glibc) are not made. Edges are ordered by geometry (``_edges``) and a
    geometry's tasks are consecutive, so sorting each batch by task and putting the batches one after
    the other is the same order as one stable sort of all edges: the result does not depend on
    ``batch`` (tests/test_coverage_edges.py)."""
    n_edges = len(edges.geom)
    step = max(int(_TASK_EDGE_BATCH if batch is None else batch), 1)
    capacity = n_edges  # one task per useful edge unless a window is cut into bands; grown if needed
    edge_of = np.empty(capacity, dtype=np.int64)
    edge_task = np.empty(capacity, dtype=np.int64)
    n = 0
    a = 0
    while a < n_edges:
        b = min(a + step, n_edges)
        if b < n_edges:  # end the batch where a geometry's edges start (or after the geometry of edge a)
            cut = a + int(np.searchsorted(edges.geom[a:b], edges.geom[b], side="left"))
            b = cut if cut > a else a + int(np.searchsorted(edges.geom[a:], edges.geom[a], side="right"))
        of, task = _edges_by_task_of(edges, tasks, a, b)
        k = len(of)
        if n + k > capacity:
            capacity = max(2 * capacity, n + k)
            edge_of, edge_task = _resized(edge_of, capacity), _resized(edge_task, capacity)
        edge_of[n : n + k] = of
        edge_task[n : n + k] = task
        n += k
        a = b
    return _resized(edge_of, n), _resized(edge_task, n)


def _edges_by_task_of(edges: _Edges, tasks: _Tasks, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_edges_by_task` of the edges [a, b), whole geometries; edge indices are global."""
    win = tasks.windows
    g = edges.geom[a:b]
    e_u0, e_v0, e_u1, e_v1 = edges.u0[a:b], edges.v0[a:b], edges.u1[a:b], edges.v1[a:b]
    v_lo = np.minimum(e_v0, e_v1)
    v_hi = np.maximum(e_v0, e_v1)
    row_first = np.maximum(np.floor(v_lo), win.row0[g]).astype(np.int64)
    row_last = np.minimum(np.ceil(v_hi) - 1, win.row1[g] - 1).astype(np.int64)
    useful = (v_hi > v_lo) & (row_first <= row_last) & (np.minimum(e_u0, e_u1) < win.col1[g])
    idx = np.flatnonzero(useful)
    g = g[idx]
    band_first = (row_first[idx] - win.row0[g]) // tasks.band_rows[g]
    band_last = (row_last[idx] - win.row0[g]) // tasks.band_rows[g]
    reps = band_last - band_first + 1
    within = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    edge_task = np.repeat(tasks.first[g] + band_first, reps) + within
    edge_of = np.repeat(idx + a, reps)
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coverage of one batch of task windows. ``edge_task`` is the (batch-local) task of each
    edge in ``edge_of``; windows are rows [row0, row1) × cols [col0, col1) of the grid.

    Returns the coverage as runs of pixels of equal fraction along window rows: (flat pixel
    index of the run's first pixel (int64), run length (int64), fraction (float64)), sorted by
    task then pixel, and the number of covered pixels of each task (int64)."""
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
    index = np.concatenate([row_base[in_window] + c[in_window], row_base[spills] + c[spills] + 1, row_base[left_of]])
    cf = c.astype(np.float64)
    contribution = np.concatenate([(dv * ((cf + 1.0) - u_mid))[in_window], (dv * (u_mid - cf))[spills], dv[left_of]])
    acc = np.bincount(index, weights=contribution, minlength=total_cells)

    # 4. Coverage is the cumulative sum of acc along each window row. It only changes at the
    #    (few) cells where acc is nonzero, so the sum runs over those cells alone: the
    #    coverage of such a cell holds for every cell up to the next one in the row (or to the
    #    row's end). A row's entries need not sum to 0 (what spills past the window is
    #    dropped), so each row's total is taken off at the start of the next row; otherwise
    #    the running sum would drift and its rounding would grow with the number of rows in
    #    the batch. What is left over at each row start (rounding only) is subtracted
    #    afterwards.
    at = np.flatnonzero(acc)
    if len(at) == 0:
        nothing = np.zeros(0, np.int64)
        return nothing, nothing, np.zeros(0), np.zeros(len(cells), np.int64)
    step = acc[at]
    row_len = np.repeat(n_cols, n_rows)
    row_start = np.cumsum(row_len) - row_len
    # the window row of each such cell (searching the few row starts among the sorted cells)
    in_row = np.diff(np.append(np.searchsorted(at, row_start), len(at)))
    row = np.repeat(np.arange(len(row_len), dtype=np.int64), in_row)
    first = (np.cumsum(in_row) - in_row)[in_row > 0]
    row_total = np.add.reduceat(step, first)
    step[first[1:]] -= row_total[:-1]
    running = np.cumsum(step)
    carry = np.zeros(len(first))
    carry[1:] = running[first[1:] - 1] - row_total[:-1]
    seg_len = np.diff(np.append(first, len(at)))
    coverage = running - np.repeat(carry, seg_len)

    # 5. Runs: from each such cell to the next one in its row, or to the row's end. Keep the
    #    covered ones and map them back to flat grid pixels.
    run_end = np.empty_like(at)
    run_end[:-1] = at[1:]
    last = np.append(first[1:], len(at)) - 1
    run_end[last] = row_start[row[last]] + row_len[row[last]]
    covered = coverage > MIN_FRACTION
    at, row, run_len, value = at[covered], row[covered], (run_end - at)[covered], coverage[covered]
    row_task = np.repeat(np.arange(len(cells), dtype=np.int64), n_rows)
    row_in_window = np.arange(len(row_len), dtype=np.int64) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    # flat pixel of each window row's first cell, less that cell's buffer index
    row_shift = (row0[row_task] + row_in_window) * width + col0[row_task] - row_start
    task_count = np.bincount(row_task[row], weights=run_len, minlength=len(cells)).astype(np.int64)
    return at + row_shift[row], run_len, np.minimum(value, 1.0), task_count
