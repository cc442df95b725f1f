"""Lost patches labelled tile by tile (rule change of a tiled run, issue 14 item 7): each tile labels its own lost
pixels, the tile patches touching across a tile edge are joined (union-find over the edge pixels), and the result is
the whole grid's labelling (greensink.change.attribution.label_lost_whole: patches, numbers, polygons), without a
whole-grid array."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box

from greensink.change.attribution import label_lost_tiled, label_lost_whole, patches_from_lost
from greensink.grid import Grid


def grid(rows: int, cols: int) -> Grid:
    return Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_000.0 + 10.0 * rows),
                width=cols, height=rows)


def lost_from_mask(mask: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(mask.ravel())
    return idx, groups.ravel()[idx].astype(np.int64)


def test_by_hand_a_ring_across_four_tiles_and_a_diagonal_touch() -> None:
    """6 × 6 grid in tiles of 3 px. Lost pixels (group 0 '#', group 1 'o'):

        . . . | . . .
        . # # | # # .
        . # . | . # .
        ------+------
        . # . | . # o
        . # # | # # .
        . . . | o . .

    The ring crosses all four tiles (one patch, with a hole); the 'o' at (3, 5) touches the ring only by
    sides of another group, and (5, 3) touches (4, 3) of group 0 only: two more patches of group 1, corner
    neighbours (4-connectivity) never joined."""
    g = grid(6, 6)
    mask = np.zeros((6, 6), bool)
    mask[1, 1:5] = mask[4, 1:5] = mask[1:5, 1] = mask[1:5, 4] = True
    mask[3, 5] = mask[5, 3] = True
    groups = np.zeros((6, 6), int)
    groups[3, 5] = groups[5, 3] = 1
    idx, group = lost_from_mask(mask, groups)
    pid, geoms = label_lost_tiled(idx, group, g, 3)
    ring = pid[group == 0]
    assert (ring == 1).all()  # group 0 first, one patch across four tiles
    assert sorted(pid[group == 1].tolist()) == [2, 3]  # (3, 5) first in row order, then (5, 3)
    assert pid[idx == 3 * 6 + 5][0] == 2 and pid[idx == 5 * 6 + 3][0] == 3
    (poly,) = geoms[1]
    assert poly.area == pytest.approx(12 * 100.0) and len(poly.interiors) == 1  # 12 px of 100 m², the hole inside
    x0, y0 = 500_000.0, 3_500_000.0
    assert poly.equals(box(x0 + 10, y0 + 10, x0 + 50, y0 + 50).difference(box(x0 + 20, y0 + 20, x0 + 40, y0 + 40)))
    whole_pid, whole_geoms = label_lost_whole(idx, group, g)
    np.testing.assert_array_equal(pid, whole_pid)
    assert all(geoms[k] == whole_geoms[k] for k in whole_geoms)


@pytest.mark.parametrize(("rows", "cols", "size", "seed"), [(37, 29, 8, 0), (40, 40, 10, 1), (23, 61, 7, 2),
                                                            (16, 16, 1, 3), (31, 17, 64, 4)])
def test_tiled_labels_and_polygons_equal_the_whole_grids(rows: int, cols: int, size: int, seed: int) -> None:
    """Random lost pixels in blobs (so patches cross tile edges and corners) with three groups cut by lines that do
    not follow the tiles: the same patch ids and exactly the same polygons as the whole-grid labelling."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    mask = ndimage.binary_dilation(rng.random((rows, cols)) < 0.08, iterations=2) & (rng.random((rows, cols)) < 0.9)
    r, c = np.mgrid[:rows, :cols]
    groups = (r * 3 + c * 2) // 37 % 3
    idx, group = lost_from_mask(mask, groups)
    g = grid(rows, cols)
    pid, geoms = label_lost_tiled(idx, group, g, size)
    whole_pid, whole_geoms = label_lost_whole(idx, group, g)
    np.testing.assert_array_equal(pid, whole_pid)
    assert geoms.keys() == whole_geoms.keys()
    for k, parts in whole_geoms.items():
        assert geoms[k] == parts, k  # exactly: same vertices in the same order
    crossing = [k for k in np.unique(pid) if np.unique((idx[pid == k] % cols) // size).size > 1]
    assert size >= cols or crossing  # the case has patches across tile edges


def test_patches_from_lost_tiled_equals_untiled_table() -> None:
    rng = np.random.default_rng(5)
    g = grid(30, 30)
    mask = rng.random((30, 30)) < 0.35
    idx = np.flatnonzero(mask.ravel())
    keys = np.vstack([np.zeros(idx.size, np.int64), (idx % 30 >= 13).astype(np.int64)])  # city 0, blocks 0/1
    found = {"index": idx, "keys": keys, "lost": rng.uniform(0.2, 1, idx.size),
             "stock0": rng.uniform(0, 50, idx.size), "stock1": rng.uniform(0, 20, idx.size)}
    zones = [gpd.GeoDataFrame({"zone_id": ["C"]}, geometry=[box(0, 0, 1, 1)]),
             gpd.GeoDataFrame({"zone_id": ["W", "E"]}, geometry=[box(0, 0, 1, 1)] * 2)]
    a = patches_from_lost(found, zones, ["city", "block"], g, 2021, 2023)
    b = patches_from_lost(found, zones, ["city", "block"], g, 2021, 2023, size_px=8)
    assert len(a) > 10
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert (a.geometry.values == b.geometry.values).all()


def test_no_lost_pixel_gives_no_patch() -> None:
    pid, geoms = label_lost_tiled(np.zeros(0, np.int64), np.zeros(0, np.int64), grid(5, 5), 2)
    assert pid.size == 0 and geoms == {}
