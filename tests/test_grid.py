"""Tests of greensink.grid: snapping a bounding box to whole pixels, the CRS check, and the
fixed tiles a large grid is composited in (ids, windows covering the grid once, edge tiles).

The hand case is a box in UTM 51N (EPSG:32651) that does not sit on the 10 m lattice:
bounds (350003.3, 3455001, 355001, 3460004.1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from greensink.errors import ConfigError
from greensink.grid import Grid, check_projected

CRS = "EPSG:32651"


def test_from_bounds_snaps_outward_to_multiples_of_the_resolution():
    grid = Grid.from_bounds((350003.3, 3455001.0, 355001.0, 3460004.1), 10, CRS)
    # x origin: floor(350003.3 / 10) * 10 = 350000; top: ceil(3460004.1 / 10) * 10 = 3460010
    assert grid.transform == Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460010.0)
    # width: ceil((355001 - 350000) / 10) = ceil(500.1) = 501
    # height: ceil((3460010 - 3455001) / 10) = ceil(500.9) = 501
    assert (grid.width, grid.height) == (501, 501)
    assert grid.shape == (501, 501)
    assert grid.crs == CRS
    # the snapped extent contains the requested box
    xmin, ymin, xmax, ymax = grid.bounds
    assert (xmin, ymin, xmax, ymax) == (350000.0, 3455000.0, 355010.0, 3460010.0)
    assert xmin <= 350003.3 and ymin <= 3455001 and xmax >= 355001 and ymax >= 3460004.1


def test_from_bounds_on_the_lattice_adds_no_extra_pixel():
    # 5000 m / 10 m = 500 exactly; the 1e-9 tolerance must not round 500.0000000001 up to 501
    grid = Grid.from_bounds((350000.0, 3455000.0, 355000.0, 3460000.0), 10, CRS)
    assert (grid.width, grid.height) == (500, 500)
    assert grid.bounds == (350000.0, 3455000.0, 355000.0, 3460000.0)


def test_from_bounds_30_m():
    # floor(100 / 30) * 30 = 90; ceil(200 / 30) * 30 = 210; width ceil((161 - 90) / 30) = ceil(2.37) = 3;
    # height ceil((210 - 101) / 30) = ceil(3.63) = 4
    grid = Grid.from_bounds((100.0, 101.0, 161.0, 200.0), 30, CRS)
    assert grid.transform == Affine(30.0, 0.0, 90.0, 0.0, -30.0, 210.0)
    assert (grid.width, grid.height) == (3, 4)
    assert grid.bounds == (90.0, 90.0, 180.0, 210.0)


def test_bounds_resolution_and_pixel_area():
    grid = Grid(CRS, Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460060.0), width=8, height=6)
    # xmax = 350000 + 8 * 10, ymin = 3460060 - 6 * 10
    assert grid.bounds == (350000.0, 3460000.0, 350080.0, 3460060.0)
    assert grid.resolution_m == 10.0
    assert grid.pixel_area_ha == pytest.approx(0.01)  # 100 m² / 10 000 m² per ha
    landsat = Grid(CRS, Affine(30.0, 0.0, 0.0, 0.0, -30.0, 0.0), width=1, height=1)
    assert landsat.pixel_area_ha == pytest.approx(0.09)  # 900 m²


@pytest.mark.parametrize(
    ("bounds", "resolution", "match"),
    [
        ((0.0, 0.0, 100.0, 100.0), 0, "resolution"),
        ((0.0, 0.0, 100.0, 100.0), -10, "resolution"),
        ((100.0, 0.0, 0.0, 100.0), 10, "xmax > xmin"),
        ((0.0, 100.0, 100.0, 100.0), 10, "ymax > ymin"),
    ],
)
def test_from_bounds_refuses_bad_arguments(bounds, resolution, match):
    with pytest.raises(ConfigError, match=match):
        Grid.from_bounds(bounds, resolution, CRS)


def test_from_bounds_refuses_a_geographic_crs():
    with pytest.raises(ConfigError, match="geographic"):
        Grid.from_bounds((120.0, 30.0, 121.0, 31.0), 0.0001, "EPSG:4326")


def test_to_dict_from_dict_round_trip(tmp_path):
    grid = Grid.from_bounds((350003.3, 3455001.0, 355001.0, 3460004.1), 10, CRS)
    d = grid.to_dict()
    assert d["resolution_m"] == 10.0
    assert d["bounds"] == list(grid.bounds)
    assert Grid.from_dict(d) == grid
    # through JSON, as the workflow stores it
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    assert Grid.read(path) == grid


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 3000), width=st.integers(1, 50), block_rows=st.integers(1, 700))
def test_windows_cover_every_row_exactly_once(height, width, block_rows):
    grid = Grid(CRS, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width=width, height=height)
    windows = grid.windows(block_rows)
    rows = [r for rs, _ in windows for r in range(rs.start, rs.stop)]
    assert rows == list(range(height))  # in order, no gap, no overlap
    for rs, cs in windows:
        assert 0 < rs.stop - rs.start <= block_rows
        assert (cs.start, cs.stop) == (0, width)
    assert len(windows) == -(-height // block_rows)  # ceil(height / block_rows)


def test_windows_hand_case():
    grid = Grid(CRS, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width=4, height=10)
    assert grid.windows(4) == [(slice(0, 4), slice(0, 4)), (slice(4, 8), slice(0, 4)), (slice(8, 10), slice(0, 4))]


def test_check_projected_refuses_geographic_crs_and_suggests_utm():
    with pytest.raises(ConfigError) as err:
        check_projected("EPSG:4326", "crs")
    msg = str(err.value)
    assert msg.startswith("crs:")
    assert "EPSG:4326" in msg
    assert "geographic" in msg
    assert "UTM" in msg and "EPSG:32651" in msg


def test_check_projected_accepts_utm():
    parsed = check_projected("EPSG:32651", "crs")
    assert parsed.is_projected
    assert parsed.to_epsg() == 32651


def test_check_projected_refuses_unknown_crs():
    with pytest.raises(ConfigError, match="not a CRS pyproj understands"):
        check_projected("EPSG:999999", "crs")


def test_check_projected_refuses_projected_crs_in_feet():
    # EPSG:2229 NAD83 / California zone 5 is projected but in US survey feet
    with pytest.raises(ConfigError, match="metres"):
        check_projected("EPSG:2229", "crs")


# ----------------------------------------------------------------------------- tiles


def test_tiles_hand_case_row_major_ids_and_smaller_edge_tiles():
    grid = Grid(CRS, Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 5000.0), width=202, height=150)
    tiles = grid.tiles(96)
    assert [t.id for t in tiles] == ["r000c000", "r000c001", "r000c002", "r001c000", "r001c001", "r001c002"]
    assert [(t.row_off, t.col_off, t.height, t.width) for t in tiles] == [
        (0, 0, 96, 96), (0, 96, 96, 96), (0, 192, 96, 10),
        (96, 0, 54, 96), (96, 96, 54, 96), (96, 192, 54, 10),
    ]
    assert tiles[5].rows == slice(96, 150) and tiles[5].cols == slice(192, 202) and tiles[5].shape == (54, 10)
    assert grid.tile("r001c002", 96) == tiles[5]
    with pytest.raises(ValueError, match="r002c000"):
        grid.tile("r002c000", 96)


def test_no_tile_size_is_one_tile_of_the_whole_grid():
    grid = Grid(CRS, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width=7, height=5)
    assert grid.tiles() == grid.tiles(None) == [("r000c000", 0, 0, 5, 7)]
    assert grid.subgrid(grid.tiles()[0]) == grid
    assert grid.tiles(7) == grid.tiles(100) == grid.tiles()  # one tile when the size covers the grid


def test_tile_ids_widen_past_999_tiles_per_side():
    grid = Grid(CRS, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width=1001, height=1)
    tiles = grid.tiles(1)
    assert tiles[0].id == "r0000c0000" and tiles[-1].id == "r0000c1000"
    assert sorted(t.id for t in tiles) == [t.id for t in tiles]  # ids sort in mosaic order


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 400), width=st.integers(1, 400), size=st.integers(1, 500))
def test_tiles_cover_the_grid_exactly_once(height, width, size):
    grid = Grid(CRS, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width=width, height=height)
    tiles = grid.tiles(size)
    seen = np.zeros(grid.shape, dtype=int)
    for t in tiles:
        assert 0 < t.height <= size and 0 < t.width <= size
        assert t.row_off % size == 0 and t.col_off % size == 0  # a fixed lattice from the top-left corner
        seen[t.rows, t.cols] += 1
    assert (seen == 1).all()
    assert len(tiles) == -(-height // size) * -(-width // size)
    assert len({t.id for t in tiles}) == len(tiles)
    assert [(t.row_off, t.col_off) for t in tiles] == sorted((t.row_off, t.col_off) for t in tiles)  # row-major


def test_subgrid_is_the_window_of_the_grid():
    grid = Grid(CRS, Affine(10.0, 0.0, 349990.0, 0.0, -10.0, 3457010.0), width=202, height=202)
    t = grid.tiles(96)[4]  # r001c001
    sub = grid.subgrid(t)
    assert sub.shape == (96, 96) and sub.crs == grid.crs and sub.resolution_m == 10.0
    # the tile's top-left corner is pixel (96, 96) of the grid
    assert sub.transform @ (0, 0) == grid.transform @ (96, 96)
    assert sub.bounds == (349990.0 + 960, 3457010.0 - 1920, 349990.0 + 1920, 3457010.0 - 960)
    with pytest.raises(ValueError, match="not inside"):
        grid.subgrid(t._replace(height=200))


def test_tiles_refuse_a_size_below_one_pixel():
    grid = Grid(CRS, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width=7, height=5)
    with pytest.raises(ConfigError, match="size_px"):
        grid.tiles(0)
