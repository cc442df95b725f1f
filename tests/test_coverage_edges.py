"""coverage._edges in batches of geometries (issue 14: 10⁶ parcels kept ~800 MiB of part and ring
clones resident when all were cloned at once): the edges, ring weights and entry bounds are the
same numbers as the whole-array function it replaced (copied below as the reference), for any batch
size, and the coverage matrix built from them is the same matrix and agrees with exactextract."""

from __future__ import annotations

from pathlib import Path

import exactextract
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from shapely.geometry import MultiPolygon, box

from greensink import coverage

TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_400.0)
SHAPE = (40, 50)


def reference_edges(geoms, transform: Affine) -> coverage._Edges:
    """coverage._edges before the batches (commit 07419cb), verbatim but for its name."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    parts, part_geom = shapely.get_parts(arr, return_index=True)
    is_polygon = shapely.get_type_id(parts) == 3
    parts, part_geom = parts[is_polygon], part_geom[is_polygon]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    u = (coords[:, 0] - transform.c) / transform.a
    v = (coords[:, 1] - transform.f) / transform.e
    same_ring = coord_ring[:-1] == coord_ring[1:]
    start = np.flatnonzero(same_ring)
    edge_ring = coord_ring[start]
    n_rings = len(rings)
    ring_first = np.searchsorted(coord_ring, np.arange(n_rings))
    ring_first = np.minimum(ring_first, max(len(coord_ring) - 1, 0))
    du0 = u[start] - u[ring_first[edge_ring]]
    dv0 = v[start] - v[ring_first[edge_ring]]
    du1 = u[start + 1] - u[ring_first[edge_ring]]
    dv1 = v[start + 1] - v[ring_first[edge_ring]]
    twice_area = np.bincount(edge_ring, weights=du0 * dv1 - du1 * dv0, minlength=n_rings)
    is_exterior = np.ones(n_rings, dtype=bool)
    is_exterior[1:] = ring_part[1:] != ring_part[:-1]
    ring_weight = -np.sign(twice_area) * np.where(is_exterior, 1.0, -1.0)
    edge_geom = part_geom[ring_part[edge_ring]].astype(np.int64)
    u0, v0, u1, v1 = u[start], v[start], u[start + 1], v[start + 1]
    ring_geom = part_geom[ring_part]
    n_geoms = len(geoms)
    area = np.bincount(ring_geom, weights=np.where(is_exterior, 0.5 * np.abs(twice_area), 0.0), minlength=n_geoms)
    crossed = np.bincount(edge_geom, weights=np.abs(u1 - u0) + np.abs(v1 - v0) + 3.0, minlength=n_geoms)
    return coverage._Edges(u0=u0, v0=v0, u1=u1, v1=v1, weight=ring_weight[edge_ring], geom=edge_geom,
                           max_pixels=np.ceil(area + crossed))


def mixed_geometries(seed: int, n: int) -> list:
    """Polygons of both orientations, with holes, multipolygons, collections holding a polygon and
    a line, points, lines, empty geometries and None, some across or beyond the grid edge."""
    rng = np.random.default_rng(seed)
    x0, y1 = TRANSFORM.c, TRANSFORM.f
    out = []
    for i in range(n):
        x, y = x0 + rng.uniform(-60, 560), y1 - rng.uniform(-60, 460)
        kind = i % 9
        if kind == 0:
            g = shapely.affinity.rotate(box(x, y, x + rng.uniform(2, 40), y + rng.uniform(2, 40)), rng.uniform(0, 180))
        elif kind == 1:
            g = shapely.Point(x, y).buffer(rng.uniform(3, 30), quad_segs=int(rng.integers(2, 12))).reverse()
        elif kind == 2:
            r = rng.uniform(15, 35)
            g = shapely.Point(x, y).buffer(r).difference(shapely.Point(x + r / 4, y).buffer(r / 3))
        elif kind == 3:
            g = MultiPolygon([shapely.Point(x, y).buffer(5.0), box(x + 12, y - 4, x + 30, y + 6)])
        elif kind == 4:
            g = shapely.GeometryCollection([box(x, y, x + 17.3, y + 9.1), shapely.LineString([(x, y), (x + 50, y)])])
        elif kind == 5:
            g = shapely.Point(x, y) if i % 2 else shapely.LineString([(x, y), (x + 9, y + 3)])
        elif kind == 6:
            g = shapely.Polygon() if i % 2 else None
        elif kind == 7:  # a hole and a second part with its own hole
            outer = box(x, y, x + 40, y + 40).difference(box(x + 10, y + 10, x + 20, y + 20))
            g = MultiPolygon([outer, box(x + 50, y, x + 70, y + 20).difference(box(x + 55, y + 5, x + 60, y + 9))])
        else:
            g = shapely.affinity.rotate(box(x - 30, y - 0.05, x + 30, y + 0.05), rng.uniform(0, 180))
        out.append(g)
    return out


FIELDS = ("u0", "v0", "u1", "v1", "weight", "geom", "max_pixels")


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 50, 10_000])
def test_batched_edges_equal_the_whole_array_function(batch: int) -> None:
    geoms = mixed_geometries(5, 181)
    ref = reference_edges(geoms, TRANSFORM)
    got = coverage._edges(geoms, TRANSFORM, batch=batch)
    assert len(ref.geom) > 1000  # a real amount of edges, holes and parts included
    assert set(np.unique(ref.weight)) == {-1.0, 1.0}  # exteriors and holes both present
    for name in FIELDS:
        a, b = getattr(got, name), getattr(ref, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b), name  # bit for bit, not within a tolerance


def test_batched_edges_of_nothing_and_of_only_non_polygons() -> None:
    for geoms in ([], [None, shapely.Polygon(), shapely.Point(1, 2), shapely.LineString([(0, 0), (5, 5)])]):
        got = coverage._edges(geoms, TRANSFORM, batch=2)
        ref = reference_edges(geoms, TRANSFORM)
        for name in FIELDS:
            assert np.array_equal(getattr(got, name), getattr(ref, name)), name
        assert len(got.geom) == 0 and len(got.max_pixels) == len(geoms)


def test_matrix_from_small_edge_batches_is_the_same_and_agrees_with_exactextract(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    geoms = [g for g in mixed_geometries(9, 120) if g is not None and not g.is_empty
             and shapely.get_type_id(g) in (3, 6)]  # exactextract takes polygons only
    whole = coverage.coverage_matrix(geoms, TRANSFORM, SHAPE)
    monkeypatch.setattr(coverage, "_EDGE_BATCH_GEOMS", 4)
    small = coverage.coverage_matrix(geoms, TRANSFORM, SHAPE)
    assert np.array_equal(small.indptr, whole.indptr) and np.array_equal(small.indices, whole.indices)
    assert np.array_equal(small.data, whole.data)

    values = np.random.default_rng(3).uniform(1.0, 2.0, SHAPE)
    path = tmp_path / "values.tif"
    with rasterio.open(path, "w", driver="GTiff", width=SHAPE[1], height=SHAPE[0], count=1, dtype="float64",
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(values, 1)
    zones = gpd.GeoDataFrame(geometry=geoms, crs="EPSG:32633")
    expected = exactextract.exact_extract(str(path), zones, ["sum"], output="pandas")["sum"].to_numpy()
    assert (expected == 0).any() and (expected > 0).sum() > 50  # some zones beyond the grid, most on it
    np.testing.assert_allclose(coverage.zonal_sum(small, values), expected, rtol=1e-6, atol=1e-9)


def reference_edges_by_task(edges: coverage._Edges, tasks: coverage._Tasks) -> tuple[np.ndarray, np.ndarray]:
    """coverage._edges_by_task before the batches (commit d622f20), verbatim but for its name."""
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


@pytest.mark.parametrize("cells", [1_000_000, 30])  # 30 cells: the larger windows cut into bands of rows
@pytest.mark.parametrize("batch", [1, 2, 3, 7, 50, 333, 100_000])
def test_edges_by_task_in_batches_equal_the_whole_array_function(
        monkeypatch: pytest.MonkeyPatch, batch: int, cells: int) -> None:
    monkeypatch.setattr(coverage, "_BATCH_CELLS", cells)
    geoms = mixed_geometries(5, 181)
    edges = coverage._edges(geoms, TRANSFORM)
    tasks = coverage._tasks(coverage._windows(edges, len(geoms), *SHAPE))
    ref_of, ref_task = reference_edges_by_task(edges, tasks)
    got_of, got_task = coverage._edges_by_task(edges, tasks, batch=batch)
    assert len(ref_of) > 1000
    if cells == 30:  # edges given to more than one band, and bands holding no edge of their geometry
        assert len(ref_of) > len(np.unique(ref_of)) and (np.diff(np.append(tasks.first, tasks.n)) > 1).any()
    for got, ref in ((got_of, ref_of), (got_task, ref_task)):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        assert np.array_equal(got, ref)


def test_matrix_from_small_task_batches_is_the_same_and_agrees_with_exactextract(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    geoms = [g for g in mixed_geometries(11, 150) if g is not None and not g.is_empty
             and shapely.get_type_id(g) in (3, 6)]  # exactextract takes polygons only
    monkeypatch.setattr(coverage, "_BATCH_CELLS", 200)  # bands of rows in the larger windows
    whole = coverage.coverage_matrix(geoms, TRANSFORM, SHAPE)
    monkeypatch.setattr(coverage, "_TASK_EDGE_BATCH", 5)
    small = coverage.coverage_matrix(geoms, TRANSFORM, SHAPE)
    assert np.array_equal(small.indptr, whole.indptr) and np.array_equal(small.indices, whole.indices)
    assert np.array_equal(small.data, whole.data)

    values = np.random.default_rng(4).uniform(1.0, 2.0, SHAPE)
    path = tmp_path / "values.tif"
    with rasterio.open(path, "w", driver="GTiff", width=SHAPE[1], height=SHAPE[0], count=1, dtype="float64",
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(values, 1)
    zones = gpd.GeoDataFrame(geometry=geoms, crs="EPSG:32633")
    expected = exactextract.exact_extract(str(path), zones, ["sum"], output="pandas")["sum"].to_numpy()
    assert (expected > 0).sum() > 50
    np.testing.assert_allclose(coverage.zonal_sum(small, values), expected, rtol=1e-6, atol=1e-9)
