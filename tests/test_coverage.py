"""Tests of greensink.coverage: exact pixel coverage fractions and zonal statistics.

Hand cases use a 10 × 10 grid of 10 m pixels whose top-left corner is (1000, 2000), so pixel
(row, col) spans x in [1000 + 10 col, 1010 + 10 col] and y in [1990 - 10 row, 2000 - 10 row],
and its flat index is 10 row + col. Expectations are worked out in the comments.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import exactextract
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import scipy.sparse
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.polygon import orient

from greensink import coverage
from greensink.coverage import (
    coverage_fractions,
    coverage_matrix,
    coverage_raster,
    zonal_covered,
    zonal_mean,
    zonal_sum,
)

TRANSFORM = Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 2000.0)
SHAPE = (10, 10)
PIXEL_AREA_M2 = 100.0


def px_box(col0: float, row0: float, col1: float, row1: float) -> Polygon:
    """Rectangle given in pixel coordinates (col right, row down) of the hand-case grid."""
    return box(1000 + 10 * col0, 2000 - 10 * row1, 1000 + 10 * col1, 2000 - 10 * row0)


def px_polygon(points: list[tuple[float, float]], holes: list[list[tuple[float, float]]] = ()) -> Polygon:
    """Polygon from (col, row) pixel coordinates of the hand-case grid."""

    def world(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(1000 + 10 * c, 2000 - 10 * r) for c, r in ring]

    return Polygon(world(points), [world(h) for h in holes])


def as_dict(pixels: np.ndarray, fractions: np.ndarray) -> dict[int, float]:
    return {int(p): float(f) for p, f in zip(pixels, fractions, strict=True)}


def assert_coverage(geom, expected: dict[int, float]) -> None:
    pixels, fractions = coverage_fractions(geom, TRANSFORM, SHAPE)
    assert pixels.dtype == np.int64 and fractions.dtype == np.float64
    assert np.all(np.diff(pixels) > 0), "pixel indices must be ascending and unique"
    assert sorted(expected) == pixels.tolist()
    np.testing.assert_allclose(fractions, [expected[p] for p in pixels.tolist()], rtol=0, atol=1e-12)


# --- hand-computed cases ---------------------------------------------------------------------


def test_pixel_aligned_square_covers_four_whole_pixels() -> None:
    # x 1000..1020, y 1980..2000 = cols 0-1, rows 0-1: pixels 0, 1, 10, 11 fully covered.
    assert_coverage(box(1000, 1980, 1020, 2000), {0: 1.0, 1: 1.0, 10: 1.0, 11: 1.0})


def test_square_offset_by_half_a_pixel() -> None:
    # cols 0.5..2.5, rows 0.5..2.5 (a 2 × 2 pixel square shifted by half a pixel) touches the
    # 3 × 3 block of rows 0-2, cols 0-2. Corners: 0.5 × 0.5 = 0.25; edges: 0.5 × 1 = 0.5;
    # centre: 1. Total 4 × 0.25 + 4 × 0.5 + 1 = 4 pixels = the square's area.
    assert_coverage(
        px_box(0.5, 0.5, 2.5, 2.5),
        {0: 0.25, 1: 0.5, 2: 0.25, 10: 0.5, 11: 1.0, 12: 0.5, 20: 0.25, 21: 0.5, 22: 0.25},
    )


def test_right_triangle_on_pixel_corners() -> None:
    # Triangle (col, row) = (0, 0), (2, 0), (0, 2): the region col + row <= 2. Pixel (0, 0) lies
    # wholly inside (col + row <= 2 there) -> 1. The hypotenuse runs corner to corner through
    # pixels (0, 1) and (1, 0), halving each -> 0.5. Pixel (1, 1) only touches it at a corner.
    assert_coverage(px_polygon([(0, 0), (2, 0), (0, 2)]), {0: 1.0, 1: 0.5, 10: 0.5})


def test_polygon_with_hole() -> None:
    # Exterior: cols 0..4, rows 0..4 (16 pixels). Hole: cols 1.5..2.5, rows 1.5..2.5, a 1-pixel
    # square centred on the corner shared by pixels (1,1), (1,2), (2,1), (2,2); each loses a
    # 0.5 × 0.5 quarter -> 0.75. All other 12 pixels stay 1. Total 16 - 1 = 15 pixels.
    outer = [(0, 0), (4, 0), (4, 4), (0, 4)]
    hole = [(1.5, 1.5), (2.5, 1.5), (2.5, 2.5), (1.5, 2.5)]
    expected = {10 * r + c: 1.0 for r in range(4) for c in range(4)}
    expected.update({11: 0.75, 12: 0.75, 21: 0.75, 22: 0.75})
    assert_coverage(px_polygon(outer, [hole]), expected)


def test_ring_orientation_does_not_matter() -> None:
    # Same polygon with exterior CW / hole CCW (shapely's sign=-1) gives the same fractions.
    poly = px_polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1.5, 1.5), (2.5, 1.5), (2.5, 2.5), (1.5, 2.5)]])
    for sign in (1.0, -1.0):
        p1, f1 = coverage_fractions(orient(poly, sign=sign), TRANSFORM, SHAPE)
        p2, f2 = coverage_fractions(poly, TRANSFORM, SHAPE)
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_allclose(f1, f2, atol=1e-12)


def test_multipolygon_sums_its_parts() -> None:
    # Part A: pixel (0, 0) exactly -> 1. Part B: cols 5..5.5, rows 5..6 = left half of pixel
    # (5, 5) -> 0.5 at index 55. Part C: a hole-free triangle (7,7), (8,7), (7,8) = half of
    # pixel (7, 7) below its anti-diagonal -> 0.5 at index 77.
    multi = MultiPolygon([px_box(0, 0, 1, 1), px_box(5, 5, 5.5, 6), px_polygon([(7, 7), (8, 7), (7, 8)])])
    assert_coverage(multi, {0: 1.0, 55: 0.5, 77: 0.5})


def test_polygon_partly_outside_keeps_in_grid_part_exactly() -> None:
    # cols -1.5..1.5, rows -0.5..1: in the grid only row 0 remains, cols 0..1.5:
    # pixel (0, 0) fully covered -> 1; pixel (0, 1) has cols 1..1.5 -> 0.5.
    assert_coverage(px_box(-1.5, -0.5, 1.5, 1.0), {0: 1.0, 1: 0.5})
    # cols 9.5..11, rows 9.25..12 crosses the bottom-right corner: pixel (9, 9) keeps
    # cols 9.5..10 (0.5) × rows 9.25..10 (0.75) = 0.375.
    assert_coverage(px_box(9.5, 9.25, 11, 12), {99: 0.375})
    # A triangle leaving through the left edge: (col, row) = (-2, 0), (2, 0), (-2, 4), i.e.
    # col + row <= 2 for col >= -2. In-grid part: pixel (0, 0) -> 1, (0, 1) and (1, 0) -> 0.5.
    assert_coverage(px_polygon([(-2, 0), (2, 0), (-2, 4)]), {0: 1.0, 1: 0.5, 10: 0.5})


def test_polygon_covering_whole_grid() -> None:
    # A box larger than the grid on every side covers all 100 pixels fully.
    assert_coverage(px_box(-3, -3, 13, 13), {i: 1.0 for i in range(100)})


def test_fully_outside_and_empty_give_empty_arrays() -> None:
    for geom in (px_box(11, 0, 12, 1), px_box(-5, -5, -1, -1), Polygon(), MultiPolygon()):
        pixels, fractions = coverage_fractions(geom, TRANSFORM, SHAPE)
        assert pixels.shape == (0,) and fractions.shape == (0,)
        assert pixels.dtype == np.int64 and fractions.dtype == np.float64


def test_vertices_exactly_on_grid_lines() -> None:
    # Diamond with vertices on pixel corners (1, 0), (2, 1), (1, 2), (0, 1): each of its edges
    # runs corner to corner through one of pixels (0,0), (0,1), (1,0), (1,1), cutting it in half.
    assert_coverage(px_polygon([(1, 0), (2, 1), (1, 2), (0, 1)]), {0: 0.5, 1: 0.5, 10: 0.5, 11: 0.5})
    # L-shape along grid lines: cols 0..3 × rows 0..1 plus cols 0..1 × rows 1..3 -> 5 whole pixels.
    l_shape = px_polygon([(0, 0), (3, 0), (3, 1), (1, 1), (1, 3), (0, 3)])
    assert_coverage(l_shape, {0: 1.0, 1: 1.0, 2: 1.0, 10: 1.0, 20: 1.0})
    # A vertex on a vertical grid line mid-pixel: triangle (0, 0), (1, 0.5), (0, 1) lies in
    # pixel (0, 0) with area 1 × 1 / 2 = 0.5.
    assert_coverage(px_polygon([(0, 0), (1, 0.5), (0, 1)]), {0: 0.5})


def test_non_square_pixels_and_south_up_grid() -> None:
    # 10 m × 5 m pixels: box x 1000..1010, y 1992.5..2000 covers pixel (0, 0) fully (10 × 5)
    # and the top half of pixel (1, 0) (10 × 2.5 of 10 × 5) -> 1 and 0.5 (index 1 * 4 + 0 = 4).
    t = Affine(10.0, 0.0, 1000.0, 0.0, -5.0, 2000.0)
    pixels, fractions = coverage_fractions(box(1000, 1992.5, 1010, 2000), t, (3, 4))
    assert pixels.tolist() == [0, 4]
    np.testing.assert_allclose(fractions, [1.0, 0.5], atol=1e-12)
    # South-up grid (e > 0): row 0 is the bottom. Box y 1000..1015 covers rows 0 and half of 1.
    t_up = Affine(10.0, 0.0, 0.0, 0.0, 10.0, 1000.0)
    pixels, fractions = coverage_fractions(box(0, 1000, 10, 1015), t_up, (3, 3))
    assert pixels.tolist() == [0, 3]
    np.testing.assert_allclose(fractions, [1.0, 0.5], atol=1e-12)


def test_rotated_transform_is_rejected() -> None:
    with pytest.raises(ValueError, match="axis-aligned"):
        coverage_fractions(box(0, 0, 1, 1), Affine(1.0, 0.5, 0.0, 0.0, -1.0, 0.0), (2, 2))


def test_total_fraction_times_pixel_area_equals_polygon_area() -> None:
    rng = np.random.default_rng(1)
    polygons = random_polygons(rng, 40, inside_only=True)
    matrix = coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE)
    covered_m2 = np.asarray(matrix.sum(axis=1)).ravel() * 100.0
    np.testing.assert_allclose(covered_m2, shapely.area(np.array(polygons, dtype=object)), rtol=1e-9)


# --- matrix, raster, zonal statistics ---------------------------------------------------------


def test_coverage_matrix_rows_match_coverage_fractions_and_report_progress() -> None:
    triangle = px_polygon([(0, 0), (2, 0), (0, 2)])
    geoms = [px_box(0.5, 0.5, 2.5, 2.5), Polygon(), px_box(20, 20, 21, 21), triangle]
    calls: list[tuple[int, int]] = []
    matrix = coverage_matrix(geoms, TRANSFORM, SHAPE, progress=lambda done, n: calls.append((done, n)))
    assert matrix.shape == (4, 100) and matrix.dtype == np.float64
    assert calls[-1] == (4, 4)
    for i, geom in enumerate(geoms):
        pixels, fractions = coverage_fractions(geom, TRANSFORM, SHAPE)
        row = matrix.getrow(i)
        np.testing.assert_array_equal(row.indices, pixels)
        np.testing.assert_allclose(row.data, fractions, atol=0)


def test_coverage_raster_of_adjacent_polygons() -> None:
    # Two halves of pixel (0, 0) split at col 0.5, plus the triangle that halves pixels 1 and
    # 10: pixel 0 -> 0.5 + 0.5 = 1 (clipped only for rounding); pixel 1 and 10 -> 0.5 each.
    geoms = [px_box(0, 0, 0.5, 1), px_box(0.5, 0, 1, 1), px_polygon([(1, 0), (2, 0), (1, 1)])]
    raster = coverage_raster(geoms, TRANSFORM, SHAPE)
    assert raster.shape == SHAPE and raster.dtype == np.float32
    expected = np.zeros(SHAPE, dtype=np.float32)
    expected[0, 0] = 1.0
    expected[0, 1] = 0.5
    np.testing.assert_allclose(raster, expected, atol=1e-7)


def test_zonal_statistics_with_nan() -> None:
    # Zone A: the half-pixel-offset square (corners 0.25, edges 0.5, centre 1) over rows 0-2,
    # cols 0-2. Zone B: pixel (5, 5) exactly. Zone C: nothing in the grid.
    zones = [px_box(0.5, 0.5, 2.5, 2.5), px_box(5, 5, 6, 6), px_box(20, 20, 21, 21)]
    matrix = coverage_matrix(zones, TRANSFORM, SHAPE)
    values = np.full(SHAPE, 2.0)
    values[0, 0] = np.nan  # a corner of zone A (coverage 0.25) is missing
    values[1, 1] = 10.0  # zone A's centre (coverage 1)
    values[5, 5] = np.nan  # all of zone B is missing
    # Zone A sum: corners 3 × 0.25 × 2 = 1.5; edges 4 × 0.5 × 2 = 4; centre 1 × 10 = 10 -> 15.5.
    # Zone A covered: 4 - 0.25 (the NaN corner) = 3.75 pixels; mean 15.5 / 3.75.
    np.testing.assert_allclose(zonal_sum(matrix, values), [15.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(zonal_covered(matrix, values), [3.75, 0.0, 0.0], atol=1e-12)
    mean = zonal_mean(matrix, values.ravel())
    assert mean[0] == pytest.approx(15.5 / 3.75, rel=1e-12)
    assert np.isnan(mean[1]) and np.isnan(mean[2])
    with pytest.raises(ValueError, match="one entry per grid pixel"):
        zonal_sum(matrix, np.zeros((3, 3)))


def test_large_windows_split_into_row_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny batch budgets force every geometry into many bands and batches; results must agree
    # with the default budgets.
    rng = np.random.default_rng(5)
    polygons = random_polygons(rng, 25, inside_only=False)
    reference = coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE)
    monkeypatch.setattr(coverage, "_BATCH_CELLS", 7)
    monkeypatch.setattr(coverage, "_BATCH_EDGES", 3)
    banded = coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE)
    np.testing.assert_array_equal(banded.indptr, reference.indptr)
    np.testing.assert_array_equal(banded.indices, reference.indices)
    np.testing.assert_allclose(banded.data, reference.data, rtol=0, atol=1e-13)


def test_batch_neighbours_do_not_change_a_geometry_result() -> None:
    # 3000 parcels of 20 × 12 pixels (~50 000 window rows) share accumulation buffers; each
    # row of the matrix must still match the same parcel computed on its own: no rounding
    # may carry over from one window row to the next, however many rows a batch holds.
    rng = np.random.default_rng(6)
    transform, shape = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0), (1000, 1000)
    centres = rng.uniform(10, 990, (3000, 2))
    parcels = [
        shapely.affinity.rotate(box(x - 10, -y - 6, x + 10, -y + 6), angle)
        for (x, y), angle in zip(centres, rng.uniform(0, 180, 3000), strict=True)
    ]
    matrix = coverage_matrix(parcels, transform, shape)
    for i in range(0, len(parcels), 97):
        pixels, fractions = coverage_fractions(parcels[i], transform, shape)
        row = matrix.getrow(i)
        np.testing.assert_array_equal(row.indices, pixels)
        np.testing.assert_allclose(row.data, fractions, rtol=0, atol=1e-13)


def test_matrix_uses_int32_indices_and_survives_save_and_vstack(tmp_path: Path) -> None:
    # The grid has far fewer than 2**31 pixels, so both index arrays are int32 (half the memory
    # of int64); the matrix is canonical CSR and round-trips through save_npz and vstack.
    polygons = random_polygons(np.random.default_rng(21), 30, inside_only=False)
    matrix = coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE)
    assert matrix.indices.dtype == np.int32 and matrix.indptr.dtype == np.int32
    assert matrix.has_canonical_format and matrix.indptr[-1] == matrix.nnz == len(matrix.data)
    scipy.sparse.save_npz(tmp_path / "m.npz", matrix)
    loaded = scipy.sparse.load_npz(tmp_path / "m.npz")
    assert (loaded != matrix).nnz == 0
    stacked = scipy.sparse.vstack([matrix, loaded], format="csr")
    assert stacked.shape == (2 * len(polygons), SHAPE_EE[0] * SHAPE_EE[1])
    np.testing.assert_array_equal(stacked[len(polygons) :].toarray(), matrix.toarray())


def test_grid_of_more_than_2_31_pixels_uses_int64_indices() -> None:
    # 50 000 × 50 000 = 2.5e9 pixels: flat indices near the bottom-right corner exceed int32.
    # Only the polygon's window is ever allocated, so this is cheap.
    transform, shape = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0), (50_000, 50_000)
    geom = box(49_998.5, -50_000.0, 50_000.0, -49_999.0)  # cols 49998.5..50000 of the last row
    last = 49_999 * 50_000
    pixels, fractions = coverage_fractions(geom, transform, shape)
    assert pixels.dtype == np.int64 and pixels.tolist() == [last + 49_998, last + 49_999]
    np.testing.assert_allclose(fractions, [0.5, 1.0], atol=1e-12)
    matrix = coverage_matrix([geom], transform, shape)
    assert matrix.indices.dtype == np.int64 and matrix.indices.tolist() == pixels.tolist()


def test_output_grows_if_the_entry_bound_is_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    # The output arrays are sized from an upper bound on each geometry's entries. If that bound
    # were ever too small, the arrays must grow and the result stay the same.
    polygons = random_polygons(np.random.default_rng(22), 25, inside_only=False)
    reference = coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE)
    real_edges = coverage._edges

    def underestimating_edges(*args, **kwargs):
        edges = real_edges(*args, **kwargs)
        return dataclasses.replace(edges, max_pixels=np.zeros_like(edges.max_pixels))

    monkeypatch.setattr(coverage, "_edges", underestimating_edges)
    monkeypatch.setattr(coverage, "_BATCH_CELLS", 50)  # many small batches: many growth steps
    grown = coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE)
    np.testing.assert_array_equal(grown.indptr, reference.indptr)
    np.testing.assert_array_equal(grown.indices, reference.indices)
    np.testing.assert_allclose(grown.data, reference.data, rtol=0, atol=1e-13)


def test_entry_bound_holds_for_every_geometry() -> None:
    # The per-geometry bound (area + pixels the boundary can pass through) is never exceeded.
    polygons = random_polygons(np.random.default_rng(23), 60, inside_only=False)
    edges = coverage._edges(polygons, TRANSFORM_EE)
    entries = np.diff(coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE).indptr)
    assert np.all(entries <= edges.max_pixels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zonal_statistics_in_chunks_match_a_plain_float64_product(monkeypatch: pytest.MonkeyPatch, dtype: type) -> None:
    # zonal_sum / zonal_covered run over the matrix entries in chunks, gathering the values in
    # their own dtype. With a tiny chunk (rows span several chunks; the zone wholly outside the
    # grid is an empty row) the result must equal the plain float64 product up to summation
    # order, for CSR and for other sparse formats, and the input must stay untouched.
    monkeypatch.setattr(coverage, "_VALUE_CHUNK", 7)
    rng = np.random.default_rng(24)
    polygons = random_polygons(rng, 30, inside_only=False)
    matrix = coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE)
    assert np.diff(matrix.indptr).min() == 0 and np.diff(matrix.indptr).max() > 7
    values = rng.uniform(0.0, 50.0, SHAPE_EE).astype(dtype)
    values[rng.random(SHAPE_EE) < 0.1] = np.nan
    before = values.copy()
    as64 = values.astype(np.float64).ravel()
    expected_sum = matrix @ np.where(np.isnan(as64), 0.0, as64)
    expected_covered = matrix @ (~np.isnan(as64)).astype(np.float64)
    for m in (matrix, matrix.tocsc(), scipy.sparse.csr_array(matrix)):
        np.testing.assert_allclose(zonal_sum(m, values), expected_sum, rtol=1e-14, atol=0)
        np.testing.assert_allclose(zonal_covered(m, values), expected_covered, rtol=1e-14, atol=0)
        assert zonal_sum(m, values).shape == (len(polygons),)
    np.testing.assert_array_equal(values, before, strict=True)
    # integer and boolean rasters (no NaN possible) work as well
    flags = rng.random(SHAPE_EE) < 0.5
    np.testing.assert_allclose(zonal_sum(matrix, flags), matrix @ flags.ravel().astype(np.float64), rtol=1e-14)
    np.testing.assert_allclose(zonal_covered(matrix, flags.astype(np.int16)), np.asarray(matrix.sum(axis=1)).ravel())


def test_zonal_sum_of_an_empty_matrix() -> None:
    matrix = coverage_matrix([px_box(20, 20, 21, 21), Polygon()], TRANSFORM, SHAPE)
    assert matrix.nnz == 0
    np.testing.assert_array_equal(zonal_sum(matrix, np.ones(SHAPE, np.float32)), [0.0, 0.0])
    np.testing.assert_array_equal(zonal_mean(matrix, np.ones(SHAPE)), [np.nan, np.nan])


# --- agreement with exactextract ---------------------------------------------------------------

# A 40 × 50 grid of 10 m pixels at realistic UTM coordinates.
TRANSFORM_EE = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_400.0)
SHAPE_EE = (40, 50)
X0, Y1 = 500_000.0, 4_000_400.0
X1, Y0 = X0 + 500.0, Y1 - 400.0


def random_polygons(rng: np.random.Generator, n: int, inside_only: bool) -> list:
    """A mix of rotated rectangles, buffered points, polygons with holes, multipolygons and
    slivers; unless ``inside_only``, some of them cross or lie beyond the grid edge."""
    margin = 40.0 if inside_only else -30.0
    out = []
    for i in range(n):
        x = rng.uniform(X0 + margin, X1 - margin)
        y = rng.uniform(Y0 + margin, Y1 - margin)
        kind = i % 5
        if kind == 0:  # rotated rectangle
            w, h = rng.uniform(3, 35, 2)
            g = shapely.affinity.rotate(box(x - w / 2, y - h / 2, x + w / 2, y + h / 2), rng.uniform(0, 180))
        elif kind == 1:  # buffered point
            g = shapely.Point(x, y).buffer(rng.uniform(2, 30), quad_segs=rng.integers(2, 16))
        elif kind == 2:  # polygon with a hole
            r = rng.uniform(15, 35)
            g = shapely.Point(x, y).buffer(r).difference(shapely.Point(x + r / 4, y).buffer(r / 3))
        elif kind == 3:  # multipolygon of two disjoint pieces
            a = shapely.Point(x, y).buffer(rng.uniform(3, 12))
            b = shapely.affinity.rotate(box(x + 15, y - 5, x + 37, y + 4), rng.uniform(0, 90), origin=(x, y))
            g = MultiPolygon([a, b.difference(a.buffer(1.0))])
        else:  # sliver: long and very thin
            g = shapely.affinity.rotate(box(x - 30, y - 0.05, x + 30, y + 0.05), rng.uniform(0, 180))
        out.append(g)
    if not inside_only:
        out.append(box(X0 - 100, Y0 - 100, X0 - 10, Y0 - 5))  # fully outside
        out.append(box(X1 - 13.3, Y1 - 27.1, X1 + 41.0, Y1 + 12.0))  # across the top-right corner
    assert all(g.is_valid for g in out)
    return out


@pytest.fixture(scope="module")
def random_raster(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(7)
    values = rng.uniform(1.0, 2.0, SHAPE_EE)
    path = tmp_path_factory.mktemp("coverage") / "values.tif"
    profile = dict(
        driver="GTiff",
        width=SHAPE_EE[1],
        height=SHAPE_EE[0],
        count=1,
        dtype="float64",
        crs="EPSG:32633",
        transform=TRANSFORM_EE,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    return path, values


def test_zonal_sum_matches_exactextract(random_raster: tuple[Path, np.ndarray]) -> None:
    path, values = random_raster
    polygons = random_polygons(np.random.default_rng(11), 60, inside_only=False)
    zones = gpd.GeoDataFrame(geometry=polygons, crs="EPSG:32633")
    expected = exactextract.exact_extract(str(path), zones, ["sum"], output="pandas")["sum"].to_numpy()
    ours = zonal_sum(coverage_matrix(polygons, TRANSFORM_EE, SHAPE_EE), values)
    assert expected[-2] == 0.0 and ours[-2] == 0.0  # the zone wholly outside the grid
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-9)


def test_per_cell_coverage_matches_exactextract(random_raster: tuple[Path, np.ndarray]) -> None:
    path, _ = random_raster
    polygons = random_polygons(np.random.default_rng(13), 10, inside_only=False)
    zones = gpd.GeoDataFrame(geometry=polygons, crs="EPSG:32633")
    table = exactextract.exact_extract(str(path), zones, ["cell_id", "coverage"], output="pandas")
    # exactextract's cell_id is row * width + col of the raster, the same flat convention.
    for geom, cell_ids, cover in zip(polygons, table["cell_id"], table["coverage"], strict=True):
        pixels, fractions = coverage_fractions(geom, TRANSFORM_EE, SHAPE_EE)
        theirs = {int(c): float(f) for c, f in zip(cell_ids, cover, strict=True) if f > 1e-9}
        ours = {k: v for k, v in as_dict(pixels, fractions).items() if v > 1e-9}
        assert ours.keys() == theirs.keys()
        np.testing.assert_allclose([ours[k] for k in ours], [theirs[k] for k in ours], atol=1e-9)


# --- properties ----------------------------------------------------------------------------------

centre_x = st.floats(X0 - 50, X1 + 50)
centre_y = st.floats(Y0 - 50, Y1 + 50)


@st.composite
def rotated_rectangles(draw: st.DrawFn) -> Polygon:
    x, y = draw(centre_x), draw(centre_y)
    w, h = draw(st.floats(0.5, 80)), draw(st.floats(0.5, 80))
    angle = draw(st.floats(0, 180))
    return shapely.affinity.rotate(box(x - w / 2, y - h / 2, x + w / 2, y + h / 2), angle)


@settings(max_examples=40, deadline=None)
@given(rotated_rectangles())
def test_fractions_lie_in_zero_one(geom: Polygon) -> None:
    pixels, fractions = coverage_fractions(geom, TRANSFORM_EE, SHAPE_EE)
    assert np.all(fractions > 0.0) and np.all(fractions <= 1.0)
    assert np.all((pixels >= 0) & (pixels < SHAPE_EE[0] * SHAPE_EE[1]))
    assert np.all(np.diff(pixels) > 0)
    in_grid_m2 = geom.intersection(box(X0, Y0, X1, Y1)).area
    assert fractions.sum() * 100.0 == pytest.approx(in_grid_m2, rel=1e-9, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.lists(rotated_rectangles(), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_results_independent_of_polygon_order(geoms: list[Polygon], random) -> None:
    order = list(range(len(geoms)))
    random.shuffle(order)
    straight = coverage_matrix(geoms, TRANSFORM_EE, SHAPE_EE)
    shuffled = coverage_matrix([geoms[i] for i in order], TRANSFORM_EE, SHAPE_EE)
    np.testing.assert_allclose(shuffled.toarray(), straight[order].toarray(), rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(rotated_rectangles(), st.floats(0.01, 0.99), st.booleans())
def test_split_parts_sum_to_whole(rect: Polygon, cut: float, diagonal: bool) -> None:
    corners = list(rect.exterior.coords)[:4]
    if diagonal:  # two triangles sharing a diagonal
        parts = [Polygon([corners[0], corners[1], corners[2]]), Polygon([corners[0], corners[2], corners[3]])]
    else:  # two quadrilaterals cut across at fraction `cut` of two opposite sides
        a = np.add(corners[0], np.multiply(cut, np.subtract(corners[1], corners[0])))
        b = np.add(corners[3], np.multiply(cut, np.subtract(corners[2], corners[3])))
        parts = [Polygon([corners[0], a, b, corners[3]]), Polygon([a, corners[1], corners[2], b])]
    matrix = coverage_matrix([rect, *parts], TRANSFORM_EE, SHAPE_EE)
    whole = matrix[0].toarray().ravel()
    summed = matrix[1].toarray().ravel() + matrix[2].toarray().ravel()
    np.testing.assert_allclose(summed, whole, rtol=0, atol=1e-9)


def test_coverage_raster_of_no_geometry_is_all_zero_float():
    # a type whose polygons were all taken by earlier types leaves nothing to cover
    out = coverage_raster([], Affine(10, 0, 0, 0, -10, 40), (4, 4))
    assert out.dtype == np.float32 and out.shape == (4, 4) and not out.any()
