"""Tests of greensink.composite: median and max-NDVI composites over clear observations.

Hand cases are stacks of 3 scenes × 2 × 2 pixels (scene, row, col). End-to-end cases write tiny
Sentinel-2 scenes before 2022 (reflectance = DN / 10000) on a 10 × 8 grid of 10 m pixels in
UTM 51N and composite them in row strips. Tiled cases composite tiles of the grid and mosaic
them back: the same file as the untiled composite, also when the scenes must be reprojected.
"""

from __future__ import annotations

import warnings

import hypothesis.strategies as st
import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays
from rasterio.windows import Window

from greensink.composite import (
    BANDS,
    composite_strips,
    composite_to_file,
    composite_year,
    masked_median,
    max_ndvi_composite,
    median_composite,
    mosaic_to_file,
)
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest import Scene, read_scene_window
from scenes_on_lattices import scenes_on_lattices

NAN = np.nan

# ----------------------------------------------------------------------------- hand stacks
#
# pixel (0, 0): three clear observations, red 0.10 / 0.20 / 0.30 -> median 0.20
# pixel (0, 1): scene 1 is cloudy with a bright value 0.90 -> median of the clear 0.10, 0.30 = 0.20
# pixel (1, 0): scene 2 clear but red is NaN (no data) -> median of 0.05, 0.07 = 0.06, count 2
# pixel (1, 1): cloudy in every scene -> NaN, count 0

RED = np.array([
    [[0.10, 0.10], [0.05, 0.08]],
    [[0.20, 0.90], [0.07, 0.08]],
    [[0.30, 0.30], [NAN, 0.08]],
])
NIR = np.array([
    [[0.50, 0.40], [0.30, 0.60]],
    [[0.40, 0.95], [0.50, 0.60]],
    [[0.45, 0.60], [0.40, 0.60]],
])
CLEAR = np.array([
    [[True, True], [True, False]],
    [[True, False], [True, False]],
    [[True, True], [True, False]],
])


def test_median_over_clear_observations_only():
    red, nir, count = median_composite(RED, NIR, CLEAR)
    assert red.dtype == nir.dtype == count.dtype == np.float32
    np.testing.assert_allclose(red, [[0.20, 0.20], [0.06, NAN]], rtol=1e-6)
    # nir: (0, 0) median(0.50, 0.40, 0.45) = 0.45; (0, 1) median(0.40, 0.60) = 0.50 (0.95 cloudy);
    # (1, 0) only scenes 0 and 1 count (scene 2 red is NaN): median(0.30, 0.50) = 0.40
    np.testing.assert_allclose(nir, [[0.45, 0.50], [0.40, NAN]], rtol=1e-6)
    np.testing.assert_array_equal(count, [[3, 2], [2, 0]])


def test_median_never_clear_is_nan_with_count_zero():
    red, nir, count = median_composite(RED, NIR, np.zeros_like(CLEAR))
    assert np.isnan(red).all() and np.isnan(nir).all()
    np.testing.assert_array_equal(count, 0)


def test_max_ndvi_takes_both_bands_from_the_greenest_clear_date():
    # NDVI per scene at (0, 0): (0.5-0.1)/0.6 = 0.667, (0.4-0.2)/0.6 = 0.333, (0.45-0.3)/0.75 = 0.2 -> scene 0
    # (0, 1): scene 1 (cloudy) is ignored; scene 0 (0.4-0.1)/0.5 = 0.6, scene 2 (0.6-0.3)/0.9 = 0.333 -> scene 0
    # (1, 0): scene 0 (0.3-0.05)/0.35 = 0.714, scene 1 (0.5-0.07)/0.57 = 0.754, scene 2 red NaN -> scene 1
    # (1, 1): never clear -> NaN
    red, nir, count = max_ndvi_composite(RED, NIR, CLEAR)
    assert red.dtype == nir.dtype == count.dtype == np.float32
    np.testing.assert_allclose(red, [[0.10, 0.10], [0.07, NAN]], rtol=1e-6)
    np.testing.assert_allclose(nir, [[0.50, 0.40], [0.50, NAN]], rtol=1e-6)
    np.testing.assert_array_equal(count, [[3, 2], [2, 0]])


def test_max_ndvi_ignores_a_greener_cloudy_date():
    # one pixel: scene 0 clear NDVI (0.4-0.2)/0.6 = 0.333; scene 1 cloudy NDVI (0.9-0.1)/1.0 = 0.8
    red = np.array([0.2, 0.1]).reshape(2, 1, 1)
    nir = np.array([0.4, 0.9]).reshape(2, 1, 1)
    clear = np.array([True, False]).reshape(2, 1, 1)
    r, n, c = max_ndvi_composite(red, nir, clear)
    assert (float(r[0, 0]), float(n[0, 0]), float(c[0, 0])) == pytest.approx((0.2, 0.4, 1.0))


def test_max_ndvi_zero_sum_observation_is_not_chosen_over_a_valid_one():
    # scene 0: red = nir = 0 gives NDVI NaN; scene 1: NDVI (0.3-0.1)/0.4 = 0.5 -> scene 1
    red = np.array([0.0, 0.1]).reshape(2, 1, 1)
    nir = np.array([0.0, 0.3]).reshape(2, 1, 1)
    clear = np.ones((2, 1, 1), dtype=bool)
    r, n, _ = max_ndvi_composite(red, nir, clear)
    assert (float(r[0, 0]), float(n[0, 0])) == pytest.approx((0.1, 0.3))


# ----------------------------------------------------------------------------- end to end on files

GRID = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460100.0), width=8, height=10)


def write_tif(path, arr, transform=GRID.transform) -> str:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=arr.dtype, crs=GRID.crs, transform=transform) as dst:
        dst.write(arr, 1)
    return str(path)


def make_scenes(tmp_path, scl_per_scene: list[np.ndarray]) -> list[Scene]:
    """One 2021 Sentinel-2 scene per SCL array, with varied reflectance (DN = 10000 ρ)."""
    rows, cols = np.mgrid[0:GRID.height, 0:GRID.width]
    scenes = []
    for i, scl in enumerate(scl_per_scene):
        red = (300 + 40 * i + 7 * cols + 3 * rows).astype(np.uint16)
        nir = (3000 + 500 * ((i * 7) % 3) + 11 * rows + 5 * cols).astype(np.uint16)
        scenes.append(Scene(
            f"s{i}", f"2021-0{5 + i}-01", "sentinel2-l2a",
            write_tif(tmp_path / f"red{i}.tif", red), write_tif(tmp_path / f"nir{i}.tif", nir),
            write_tif(tmp_path / f"scl{i}.tif", scl.astype(np.uint8)), 1e-4, 0.0,
        ))
    return scenes


def scl_layers() -> list[np.ndarray]:
    """Three SCL layers: scene 0 clear (4) with a cloud (9) block, scene 1 with shadow (3) rows,
    scene 2 clear; pixel (9, 7) is masked in every scene."""
    a = np.full(GRID.shape, 4)
    a[2:5, 1:4] = 9
    b = np.full(GRID.shape, 5)
    b[6:8, :] = 3
    c = np.full(GRID.shape, 6)
    for layer in (a, b, c):
        layer[9, 7] = 8
    return [a, b, c]


@pytest.mark.parametrize("method", ["median", "max-ndvi"])
def test_composite_year_in_strips_equals_one_strip(tmp_path, method):
    scenes = make_scenes(tmp_path, scl_layers())
    calls: list[tuple[int, int]] = []
    strips, stats_strips = composite_year(scenes, GRID, method, block_rows=3, progress=lambda i, n: calls.append((i, n)))
    whole, stats_whole = composite_year(scenes, GRID, method, block_rows=512)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 10 rows in strips of 3, 3, 3, 1
    assert strips.shape == (len(BANDS), *GRID.shape) and strips.dtype == np.float32
    np.testing.assert_array_equal(strips, whole)
    assert stats_strips == stats_whole
    # and both equal the reducer applied to the full stacks read directly
    stack = [read_scene_window(s, GRID, Window(0, 0, GRID.width, GRID.height)) for s in scenes]
    reducer = median_composite if method == "median" else max_ndvi_composite
    expected = reducer(*(np.stack([s[k] for s in stack]) for k in range(3)))
    for band, exp in zip(strips, expected, strict=True):
        np.testing.assert_array_equal(band, exp)


def test_composite_year_counts_and_stats(tmp_path):
    scenes = make_scenes(tmp_path, scl_layers())
    out, stats = composite_year(scenes, GRID, "median", block_rows=4)
    count = out[2]
    assert count[0, 0] == 3
    assert count[3, 2] == 2  # cloud in scene 0
    assert count[6, 0] == 2  # shadow in scene 1
    assert count[9, 7] == 0 and np.isnan(out[0, 9, 7]) and np.isnan(out[1, 9, 7])
    # red at (0, 0) in scenes 0, 1, 2: DN 300, 340, 380 -> median 340 -> 0.034
    assert out[0, 0, 0] == pytest.approx(0.034, abs=1e-7)
    # expected mean count: 80 px × 3 obs − 9 cloud − 16 shadow − 3 never-clear = 212 clear obs
    assert stats == {
        "n_scenes": 3, "pixels": 80, "pixels_never_clear": 1, "never_clear_pct": pytest.approx(1.25),
        "mean_clear_obs": pytest.approx(212 / 80), "method": "median",
    }


def test_composite_year_all_masked_raises(tmp_path):
    cloudy = [np.full(GRID.shape, 9), np.full(GRID.shape, 8)]
    scenes = make_scenes(tmp_path, cloudy)
    with pytest.raises(InputDataError) as err:
        composite_year(scenes, GRID, "median", block_rows=4)
    msg = str(err.value)
    assert "All 80 pixels are masked" in msg and "2 scenes" in msg


def test_composite_year_without_scenes_names_the_season():
    with pytest.raises(InputDataError, match="season") as err:
        composite_year([], GRID)
    assert "season.start" in str(err.value)  # says which setting to widen



# ----------------------------------------------------------------------------- the median itself


@settings(max_examples=60)
@given(
    values=arrays(np.float64, (5, 3, 4), elements=st.floats(-1.0, 1.0, allow_nan=False, width=32)),
    ok=arrays(np.bool_, (5, 3, 4)),
)
def test_masked_median_equals_nanmedian(values, ok):
    # the one-sort median agrees with numpy's nanmedian over the ok values (NaN where none)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(np.where(ok, values, np.nan), axis=0).astype(np.float32)
    np.testing.assert_array_equal(masked_median(values, ok), expected)


def test_masked_median_hand_values():
    # one pixel, observations 0.4, 0.1, (masked 0.9), 0.3 -> sorted 0.1 0.3 0.4 -> 0.3; with 0.2 added -> (0.2 + 0.3) / 2
    v = np.array([0.4, 0.1, 0.9, 0.3, 0.2]).reshape(5, 1, 1)
    assert masked_median(v, np.array([1, 1, 0, 1, 0], bool).reshape(5, 1, 1))[0, 0] == pytest.approx(0.3)
    assert masked_median(v, np.array([1, 1, 0, 1, 1], bool).reshape(5, 1, 1))[0, 0] == pytest.approx(0.25)
    assert np.isnan(masked_median(v, np.zeros((5, 1, 1), bool))[0, 0])


def test_composite_of_a_grid_larger_than_the_scenes(tmp_path):
    # scenes cover the top 4 rows of the 10-row grid: the rest is NaN with count 0, and strips the
    # scenes do not reach are not read at all
    (tmp_path / "full").mkdir()
    scenes = make_scenes(tmp_path / "full", [np.full(GRID.shape, 4)] * 2)
    (tmp_path / "top").mkdir()
    top = []
    for s in scenes:
        cut = {}
        for role in ("red", "nir", "quality"):
            with rasterio.open(getattr(s, role)) as src:
                cut[role] = write_tif(tmp_path / "top" / f"{s.scene_id}_{role}.tif", src.read(1)[:4])
        top.append(Scene(s.scene_id, s.datetime, s.sensor, cut["red"], cut["nir"], cut["quality"], s.scale, s.offset))
    out, stats = composite_year(top, GRID, "median", block_rows=3)
    whole, _ = composite_year(scenes, GRID, "median", block_rows=3)
    np.testing.assert_array_equal(out[:, :4], whole[:, :4])
    assert np.isnan(out[:2, 4:]).all() and (out[2, 4:] == 0).all()
    assert stats["pixels_never_clear"] == 6 * 8


# ----------------------------------------------------------------------------- streamed to a file


@pytest.mark.parametrize("method", ["median", "max-ndvi"])
@pytest.mark.parametrize("block_rows", [1, 3, 4, 512])
def test_composite_to_file_equals_the_in_memory_composite(tmp_path, method, block_rows):
    # the strip height changes neither the values on disk nor the statistics
    scenes = make_scenes(tmp_path, scl_layers())
    whole, stats_whole = composite_year(scenes, GRID, method, block_rows=512)
    calls: list[tuple[int, int]] = []
    path = tmp_path / "out" / "composite.tif"
    stats = composite_to_file(scenes, GRID, path, method, block_rows, progress=lambda i, n: calls.append((i, n)),
                              tags={"ingest_masked_pct": 12.5})
    assert stats == stats_whole
    assert calls[-1] == (-(-GRID.height // block_rows),) * 2
    with rasterio.open(path) as src:
        assert src.descriptions == BANDS and src.dtypes == ("float32",) * 3
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.tags()["composite_method"] == method
        assert float(src.tags()["composite_mean_clear_obs"]) == pytest.approx(stats["mean_clear_obs"])
        assert src.tags()["ingest_masked_pct"] == "12.5"
        np.testing.assert_array_equal(src.read(), whole)  # NaN in the same places
    assert sorted(p.name for p in path.parent.iterdir()) == ["composite.tif"]


def test_composite_to_file_is_byte_identical_to_writing_the_array(tmp_path):
    from greensink import io

    scenes = make_scenes(tmp_path, scl_layers())
    whole, stats = composite_year(scenes, GRID, "median")
    tags = {f"composite_{k}": v for k, v in stats.items()}
    a = io.write_raster(tmp_path / "a.tif", whole, GRID, band_names=BANDS, tags=tags)
    b = tmp_path / "b.tif"
    composite_to_file(scenes, GRID, b, "median", block_rows=512)
    assert io.sha256(a) == io.sha256(b)


def test_composite_to_file_all_masked_writes_nothing(tmp_path):
    scenes = make_scenes(tmp_path, [np.full(GRID.shape, 9), np.full(GRID.shape, 8)])
    (tmp_path / "out").mkdir()
    with pytest.raises(InputDataError, match="All 80 pixels are masked"):
        composite_to_file(scenes, GRID, tmp_path / "out" / "composite.tif", "median", block_rows=4)
    assert list((tmp_path / "out").iterdir()) == []


def test_composite_strips_cover_the_grid_once(tmp_path):
    scenes = make_scenes(tmp_path, scl_layers())
    rows = [r for r, block in composite_strips(scenes, GRID, "median", block_rows=4)]
    assert rows == [slice(0, 4), slice(4, 8), slice(8, 10)]


# ----------------------------------------------------------------------------- tiles and mosaic


def composite_in_tiles(scenes, grid, tmp_path, size_px, method="median", block_rows=512):
    """Every tile of ``grid.tiles(size_px)`` composited on its own, then mosaicked: (mosaic path, stats)."""
    paths = []
    for t in grid.tiles(size_px):
        paths.append(tmp_path / f"tiles_{size_px}" / f"composite_{t.id}.tif")
        composite_to_file(scenes, grid, paths[-1], method, block_rows, tile=t, tags={"ingest_masked_pct": 12.5})
    out = tmp_path / f"mosaic_{size_px}.tif"
    stats = mosaic_to_file(paths, grid, out, size_px, n_scenes=len(scenes), method=method, block_rows=block_rows,
                           tags={"ingest_masked_pct": 12.5})
    return out, stats


@pytest.mark.parametrize("method", ["median", "max-ndvi"])
@pytest.mark.parametrize(("size_px", "block_rows"), [(3, 2), (4, 512), (5, 3), (8, 4)])
def test_tiles_mosaicked_are_the_untiled_composite(tmp_path, method, size_px, block_rows):
    # 10 × 8 grid in tiles of 3 (4 × 3 tiles, edge tiles 1 × 2), 4, 5 or 8 px: the mosaic is the
    # same file, byte for byte, as the untiled composite, so the values along the tile edges agree
    scenes = make_scenes(tmp_path, scl_layers())
    whole = tmp_path / "whole.tif"
    stats_whole = composite_to_file(scenes, GRID, whole, method, block_rows, tags={"ingest_masked_pct": 12.5})
    mosaic, stats = composite_in_tiles(scenes, GRID, tmp_path, size_px, method, block_rows)
    assert stats == stats_whole
    from greensink import io

    a, b = io.read_raster(whole), io.read_raster(mosaic)
    np.testing.assert_array_equal(a, b)
    assert io.sha256(whole) == io.sha256(mosaic)
    # each tile file holds its window of the composite, on its sub-grid
    for t in GRID.tiles(size_px):
        path = tmp_path / f"tiles_{size_px}" / f"composite_{t.id}.tif"
        assert io.read_grid(path) == GRID.subgrid(t)
        np.testing.assert_array_equal(io.read_raster(path), a[:, t.rows, t.cols])
        with rasterio.open(path) as src:
            assert src.tags()["tile_id"] == t.id and src.descriptions == BANDS


def test_tiles_of_reprojected_scenes_have_no_seams(tmp_path):
    # scenes on other lattices (20 m shifted by 3.3 m; 7 m) and in another UTM zone are warped
    # bilinearly onto the grid: tiles read them through the same warp, so the rows and columns on
    # either side of every tile edge equal the untiled composite's, bit for bit
    from greensink import io

    grid = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460000.0), width=150, height=130)
    scenes = scenes_on_lattices(tmp_path, [0, 1, 2], np.random.default_rng(7))
    whole = tmp_path / "whole.tif"
    stats_whole = composite_to_file(scenes, grid, whole, "median", 32)
    a = io.read_raster(whole)
    assert a[2].max() == 3 and (a[2] == 0).any()  # all three scenes overlap somewhere; some pixels never clear
    mosaic, stats = composite_in_tiles(scenes, grid, tmp_path, 64, "median", 32)
    b = io.read_raster(mosaic)
    edges = [64, 128]  # tile edges (rows and columns), the pixels either side of each
    for e in edges:
        np.testing.assert_array_equal(b[:, e - 1:e + 1, :], a[:, e - 1:e + 1, :])
        np.testing.assert_array_equal(b[:, :, e - 1:e + 1], a[:, :, e - 1:e + 1])
    np.testing.assert_array_equal(b, a)
    assert stats == stats_whole


def test_a_tile_never_seen_clear_is_written_and_the_mosaic_still_checks_the_whole(tmp_path):
    from greensink import io

    layers = [np.full(GRID.shape, 4), np.full(GRID.shape, 4)]
    for layer in layers:
        layer[:4, :4] = 9  # tile r000c000 of 4 px is cloudy in every scene
    (tmp_path / "half").mkdir()
    scenes = make_scenes(tmp_path / "half", layers)
    t = GRID.tiles(4)[0]
    stats = composite_to_file(scenes, GRID, tmp_path / "t.tif", "median", 4, tile=t)
    assert stats["pixels"] == 16 and stats["pixels_never_clear"] == 16
    assert (io.read_raster(tmp_path / "t.tif", 3) == 0).all()
    # all cloudy everywhere: every tile is written, but the mosaic refuses and writes nothing
    (tmp_path / "cloudy").mkdir()
    cloudy = make_scenes(tmp_path / "cloudy", [np.full(GRID.shape, 9), np.full(GRID.shape, 8)])
    paths = []
    for t in GRID.tiles(4):
        paths.append(tmp_path / "cloudy" / f"composite_{t.id}.tif")
        composite_to_file(cloudy, GRID, paths[-1], "median", 4, tile=t)
    (tmp_path / "out").mkdir()
    with pytest.raises(InputDataError, match="All 80 pixels are masked"):
        mosaic_to_file(paths, GRID, tmp_path / "out" / "composite.tif", 4, n_scenes=2)
    assert list((tmp_path / "out").iterdir()) == []


def test_mosaic_refuses_tiles_of_another_tiling(tmp_path):
    scenes = make_scenes(tmp_path, scl_layers())
    paths = []
    for t in GRID.tiles(4):
        paths.append(tmp_path / f"composite_{t.id}.tif")
        composite_to_file(scenes, GRID, paths[-1], "median", tile=t)
    with pytest.raises(InputDataError, match="needs 4 tile files; got 6"):
        mosaic_to_file(paths, GRID, tmp_path / "m.tif", 5, n_scenes=3)
    swapped = [paths[1], paths[0], *paths[2:]]
    with pytest.raises(InputDataError, match="is not tile r000c000") as err:
        mosaic_to_file(swapped, GRID, tmp_path / "m.tif", 4, n_scenes=3)
    assert "delete the tiles folder" in str(err.value)
    assert not (tmp_path / "m.tif").exists()


def test_composite_strips_of_a_tile_count_rows_from_the_tile(tmp_path):
    scenes = make_scenes(tmp_path, scl_layers())
    t = GRID.tiles(6)[3]  # r001c001: rows 6-9, columns 6-7
    assert (t.row_off, t.col_off, t.shape) == (6, 6, (4, 2))
    got = list(composite_strips(scenes, GRID, "median", block_rows=3, tile=t))
    assert [r for r, _ in got] == [slice(0, 3), slice(3, 4)]
    whole, _ = composite_year(scenes, GRID, "median")
    np.testing.assert_array_equal(np.concatenate([b for _, b in got], axis=1), whole[:, 6:10, 6:8])
