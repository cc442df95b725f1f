"""Coverage per tile (greensink.coverage.tile_coverage_matrix, rule zone_coverage_tile; issue 14 item 2).

A tile's matrix, computed on the tile's sub-grid alone, must be the whole grid's matrix's columns of the tile:
checked on polygons crossing tile edges and corners, holes, multipolygons with parts in different tiles, slivers,
zones across the grid's edge and wholly outside it, in uneven tiles (Grid.tiles with a size that does not divide
the grid, and a hand-cut partition). The largest difference measured is stated in the assertion (float rounding
of the pixel coordinates taken from the tile's corner: order 1e-15). Independent check: exactextract's coverage
sums on a raster of the tile's sub-grid alone.
"""

from __future__ import annotations

import json

import exactextract
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import scipy.sparse
import shapely
import shapely.affinity
from affine import Affine
from shapely.geometry import MultiPolygon, box

from greensink import io
from greensink.coverage import coverage_matrix, tile_coverage_matrix
from greensink.grid import Grid, Tile
from greensink.zones import run_zone_coverage_tile
from test_coverage import random_polygons

CRS = "EPSG:32633"
X0, Y1 = 500_000.0, 4_000_400.0  # test_coverage's grid: 40 × 50 pixels of 10 m (random_polygons fit it)
GRID = Grid(CRS, Affine(10.0, 0.0, X0, 0.0, -10.0, Y1), width=50, height=40)


def zones() -> list:
    """test_coverage's random mix (rotated rectangles, discs, holes, multipolygons, slivers, across the grid's
    edge and one wholly outside) and, by hand: a block across the corner of four 16-px tiles (x 120..220 m,
    y 100..230 m below the top), a square with a hole straddling a tile edge, a multipolygon with one part in
    the first tile and one in the last, and an empty polygon."""
    out = random_polygons(np.random.default_rng(23), 80, inside_only=False)
    corner = box(X0 + 120, Y1 - 230, X0 + 220, Y1 - 100)
    holed = box(X0 + 140, Y1 - 380, X0 + 200, Y1 - 300).difference(box(X0 + 155, Y1 - 345, X0 + 185, Y1 - 325))
    parts = MultiPolygon([box(X0 + 3, Y1 - 47, X0 + 61, Y1 - 2), box(X0 + 421, Y1 - 397, X0 + 497.5, Y1 - 333)])
    out += [corner, holed, parts, shapely.Polygon()]
    assert all(g.is_valid for g in out)
    return out


def hand_tiles() -> list[Tile]:
    """Rows cut at 0, 3, 27, 40 and columns at 0, 31, 50: tiles from 3 × 19 to 24 × 31 pixels."""
    rc, cc = [0, 3, 27, 40], [0, 31, 50]
    return [Tile(f"r{i:03d}c{j:03d}", r0, c0, r1 - r0, c1 - c0)
            for i, (r0, r1) in enumerate(zip(rc[:-1], rc[1:], strict=True))
            for j, (c0, c1) in enumerate(zip(cc[:-1], cc[1:], strict=True))]


def tile_columns(tile: Tile, width: int) -> np.ndarray:
    """The whole grid's flat pixel index of each local pixel r × tile.width + c of ``tile``."""
    rows, cols = np.divmod(np.arange(tile.height * tile.width), tile.width)
    return (rows + tile.row_off) * width + cols + tile.col_off


@pytest.mark.parametrize("cut", ["grid16", "hand"])
def test_tile_matrices_are_the_whole_grid_matrix_columns(cut):
    geoms = zones()
    whole = coverage_matrix(geoms, GRID.transform, GRID.shape)
    tiles = GRID.tiles(16) if cut == "grid16" else hand_tiles()
    assert len({t.shape for t in tiles}) >= 4  # uneven tiles
    worst = 0.0
    total = np.zeros(len(geoms))
    for t in tiles:
        m = tile_coverage_matrix(geoms, GRID, t)
        assert m.shape == (len(geoms), t.height * t.width) and m.format == "csr"
        ref = whole[:, tile_columns(t, GRID.width)].toarray()
        diff = np.abs(m.toarray() - ref)
        worst = max(worst, float(diff.max()))
        # the same pixels carry coverage, but for a fraction within rounding of MIN_FRACTION
        assert ((m.toarray() > 0) != (ref > 0)).sum() == 0 or diff[(m.toarray() > 0) != (ref > 0)].max() < 1e-11
        # zones that miss the tile: empty rows, not computed
        missing = np.flatnonzero(ref.sum(axis=1) == 0)
        assert np.all(np.diff(m.indptr)[missing] == 0)
        total += np.asarray(m.sum(axis=1)).ravel()
    assert worst < 1e-14, f"largest difference from the whole grid's matrix: {worst:.3g}"  # measured 4.4e-16
    # the tiles' row sums add up to the whole grid's (each pixel in exactly one tile)
    np.testing.assert_allclose(total, np.asarray(whole.sum(axis=1)).ravel(), rtol=1e-12, atol=1e-12)
    assert total[-6] == 0.0 and total[-1] == 0.0  # random_polygons' zone wholly outside the grid; the empty polygon
    # the hand-built zones cross tiles: the corner block is cut by the 16-px tiles into four non-empty parts
    corner = len(geoms) - 4
    if cut == "grid16":
        touched = [t.id for t in tiles if tile_coverage_matrix([geoms[corner]], GRID, t).nnz]
        assert touched == ["r000c000", "r000c001", "r001c000", "r001c001"]
        assert total[corner] == pytest.approx(100 * 130 / 100.0, rel=1e-12)  # 1.3 ha of 10 m pixels: 130 px
        assert total[corner + 1] == pytest.approx((60 * 80 - 30 * 20) / 100.0, rel=1e-12)  # the hole taken out


def test_tile_coverage_sums_agree_with_exactextract_on_the_tile_alone(tmp_path):
    geoms = zones()[:-1]  # exactextract wants no empty geometry
    t = GRID.tile("r001c001", 16)  # 16 × 16, rows 16-31, cols 16-31
    sub = GRID.subgrid(t)
    path = tmp_path / "tile.tif"
    with rasterio.open(path, "w", driver="GTiff", width=t.width, height=t.height, count=1, dtype="float64",
                       crs=CRS, transform=sub.transform) as dst:
        dst.write(np.ones(t.shape), 1)
    theirs = exactextract.exact_extract(str(path), gpd.GeoDataFrame(geometry=geoms, crs=CRS), ["sum"],
                                        output="pandas")["sum"].to_numpy()
    ours = np.asarray(tile_coverage_matrix(geoms, GRID, t).sum(axis=1)).ravel()
    assert (ours > 0).sum() > 10 and (ours == 0).sum() > 10  # zones inside, across and outside the tile
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_rule_runner_writes_the_tile_matrix_in_zone_id_order(tmp_path):
    geoms = zones()[:-1]
    ids = [f"Z{i:03d}" for i in range(len(geoms))]
    level = gpd.GeoDataFrame({"zone_id": ids}, geometry=geoms, crs=CRS)
    path = tmp_path / "parcel.gpkg"
    level.to_file(path, driver="GPKG")
    grid_json = tmp_path / "grid.json"
    grid_json.write_text(json.dumps(GRID.to_dict()), encoding="utf-8")
    out = tmp_path / "tiles" / "parcel_coverage_r002c003.npz"
    m = run_zone_coverage_tile(path, grid_json, out, tile_id="r002c003", size_px=16)  # the 8 × 2 corner tile
    back = io.read_sparse(out)
    assert back.shape == (len(geoms), 8 * 2) and (back != m).nnz == 0
    t = GRID.tile("r002c003", 16)
    ref = coverage_matrix(list(io.read_vector(path).geometry.values), GRID.transform, GRID.shape)
    np.testing.assert_allclose(back.toarray(), ref[:, tile_columns(t, GRID.width)].toarray(), rtol=0, atol=1e-12)
    assert scipy.sparse.isspmatrix_csr(back) and back.nnz > 0


def test_far_tiles_are_rounded_as_the_whole_grid():
    """Tile r003c003 of 1024 px of a 4000 × 4000 grid (pixel coordinates near 3000-4000): taking the vertices'
    pixel coordinates from the tile's own corner would round them differently from the whole grid's matrix (about
    2e-13 measured on 400 m parcels); they are the whole grid's, moved by whole pixels, so the fractions agree to
    the sums' rounding and most of them bit for bit."""
    grid = Grid(CRS, Affine(10.0, 0.0, X0, 0.0, -10.0, Y1), width=4000, height=4000)
    t = grid.tile("r003c003", 1024)  # rows and columns 3072-3999: 928 × 928
    rng = np.random.default_rng(5)
    cx, cy = X0 + 30_720.0, Y1 - 30_720.0  # the tile's top-left corner
    geoms = []
    for _ in range(60):
        x, y = cx + rng.uniform(-400, 600), cy - rng.uniform(-400, 600)
        w, h = rng.uniform(30, 300, 2)
        g = shapely.affinity.rotate(box(x - w / 2, y - h / 2, x + w / 2, y + h / 2), rng.uniform(0, 90))
        if rng.random() < 0.3:
            g = g.difference(shapely.Point(x, y).buffer(min(w, h) / 4))
        geoms.append(g)
    whole = coverage_matrix(geoms, grid.transform, grid.shape)
    m = tile_coverage_matrix(geoms, grid, t)
    ref = whole[:, tile_columns(t, grid.width)].tocsr()
    diff = abs(m - ref)
    worst = diff.max() if diff.nnz else 0.0
    assert ref.nnz > 2000 and 10 < np.count_nonzero(np.diff(m.indptr)) < len(geoms)  # some zones miss the tile
    assert worst < 1e-14, f"largest difference from the whole grid's matrix: {worst:.3g}"
    assert (m.indices == ref.indices).all() and np.mean(m.data == ref.data) > 0.5
