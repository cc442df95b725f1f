"""Tests of the canopy height model (CHM) refinement of greensink.vegetation.

Heights are thresholded at the CHM's own resolution and the 0/1 masks area-averaged onto the grid,
so canopy.tif is the share of each pixel's valid CHM area with height ≥ tree_height_m; height.tif
is the area-weighted mean of the valid heights. Hand cases: a 1 m CHM under a 2 × 2 grid of 10 m
pixels, so each grid pixel holds 100 CHM pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from greensink import io
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.vegetation import (
    CLASS_GRASS,
    CLASS_NONE,
    CLASS_SHRUB,
    CLASS_TREE,
    chm_canopy,
    chm_on_grid,
    chm_strip,
    chm_structure_classes,
    structure_classes,
    threshold_mask,
    vegetation_to_files,
)

NAN = np.nan
X0, Y1 = 350000.0, 3460000.0
GRID = Grid("EPSG:32651", Affine(10.0, 0.0, X0, 0.0, -10.0, Y1), width=2, height=2)
ONE_M = Affine(1.0, 0.0, X0, 0.0, -1.0, Y1)


def hand_chm():
    """20 × 20 heights (1 m) under GRID: pixel (0, 0) has 37 of 100 sub-pixels at 5 m (tree) and the rest 0;
    (0, 1) is all 1 m (shrub height); (1, 0) half nodata (-9999), half 3 m; (1, 1) 50 at 1 m, 50 at 0.2 m."""
    h = np.zeros((20, 20), np.float32)
    h[:10, :10].flat[:37] = 5.0
    h[:10, 10:] = 1.0
    h[10:, :10] = -9999.0
    h[10:15, :10] = 3.0
    h[10:, 10:] = 0.2
    h[10:, 10:].flat[:50] = 1.0
    return h


def test_fine_chm_gives_the_area_share_over_valid_chm():
    tree, woody, _ = chm_on_grid(hand_chm(), ONE_M, "EPSG:32651", -9999.0, GRID, 2.0, 0.5)
    # tree: 37/100; 0/100; 50 of the 50 valid sub-pixels (nodata left out); 0/100
    np.testing.assert_allclose(tree, [[0.37, 0.0], [1.0, 0.0]], atol=1e-6)
    # woody (≥ 0.5 m): 37/100; 100/100; 50/50; 50/100
    np.testing.assert_allclose(woody, [[0.37, 1.0], [1.0, 0.5]], atol=1e-6)


def test_mean_height_of_a_2m_chm_over_10m_pixels():
    # 5 × 5 CHM pixels of 2 m per 10 m grid pixel. (0, 0): rows of 1, 2, 3, 4, 5 m -> mean 3 m.
    # (0, 1): 24 pixels of 10 m and one of 0.5 m -> (240 + 0.5)/25 = 9.62 m.
    # (1, 0): 15 valid pixels of 4 m, 10 nodata (-9999) -> 4 m over the valid area only.
    # (1, 1): 20 pixels of 1 m and 5 of -0.4 m (a CHM's ground noise, taken as 0 m) -> 20/25 = 0.8 m.
    h = np.zeros((10, 10), np.float32)
    h[:5, :5] = np.array([1.0, 2.0, 3.0, 4.0, 5.0])[:, None]
    h[:5, 5:] = 10.0
    h[4, 9] = 0.5
    h[5:, :5] = 4.0
    h[8:, :5] = -9999.0
    h[5:, 5:] = 1.0
    h[9, 5:] = -0.4
    tree, woody, height = chm_on_grid(h, Affine(2.0, 0.0, X0, 0.0, -2.0, Y1), "EPSG:32651", -9999.0, GRID, 2.0, 0.5)
    np.testing.assert_allclose(height, [[3.0, 9.62], [4.0, 0.8]], atol=1e-5)
    assert height.dtype == np.float32
    # the fractions of the same CHM: (0, 0) 20/25 ≥ 2 m; (0, 1) 24/25; (1, 0) 15/15; (1, 1) none
    np.testing.assert_allclose(tree, [[0.8, 0.96], [1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(woody, [[1.0, 1.0], [1.0, 0.8]], atol=1e-6)


def test_mean_height_in_another_crs_and_from_a_coarser_chm():
    # hand_chm (1 m) in a CRS shifted 1000 m: (0, 0) 37 × 5 m / 100 = 1.85 m; (0, 1) 1 m; (1, 0) 3 m over its
    # 50 valid pixels; (1, 1) (50 × 1 + 50 × 0.2)/100 = 0.6 m
    other = "+proj=tmerc +lat_0=0 +lon_0=123 +k=0.9996 +x_0=501000 +y_0=0 +datum=WGS84 +units=m +no_defs"
    _, _, height = chm_on_grid(hand_chm(), Affine(1.0, 0.0, X0 + 1000.0, 0.0, -1.0, Y1), other, -9999.0, GRID, 2.0, 0.5)
    np.testing.assert_allclose(height, [[1.85, 1.0], [3.0, 0.6]], atol=1e-3)
    # 15 m CHM pixels [6 m, 2 m]: grid column 0 lies in the first, column 1 half in each -> 4 m
    coarse = np.array([[6.0, 2.0], [6.0, 2.0]], np.float32)
    _, _, height = chm_on_grid(coarse, Affine(15.0, 0.0, X0, 0.0, -15.0, Y1), "EPSG:32651", None, GRID, 2.0, 0.5)
    np.testing.assert_allclose(height, [[6.0, 4.0], [6.0, 4.0]], atol=1e-6)


def test_chm_all_nodata_over_a_pixel_is_nan():
    h = hand_chm()
    h[:10, 10:] = np.nan  # NaN counts as no data too
    h[10:, 10:] = -9999.0
    tree, woody, _ = chm_on_grid(h, ONE_M, "EPSG:32651", -9999.0, GRID, 2.0, 0.5)
    assert np.isnan(tree[0, 1]) and np.isnan(tree[1, 1]) and np.isnan(woody[1, 1])
    assert tree[0, 0] == pytest.approx(0.37) and tree[1, 0] == pytest.approx(1.0)


def test_chm_offset_by_half_a_chm_pixel_weights_partial_sub_pixels_by_area():
    # a 2 m CHM starting 1 m west and north of the grid: grid pixel (0, 0) (x 0–10) holds 1 m of CHM column 0
    # (x −1–1), columns 1–4 whole and 1 m of column 5 (x 9–11)
    for col, share in [(0, 0.1), (1, 0.2), (4, 0.2), (5, 0.1)]:
        h = np.zeros((12, 12), np.float32)
        h[:, col] = 5.0
        tree, _, _ = chm_on_grid(h, Affine(2.0, 0.0, X0 - 1, 0.0, -2.0, Y1 + 1), "EPSG:32651", None, GRID, 2.0, 0.5)
        assert tree[0, 0] == pytest.approx(share, abs=1e-6), col
    # column 5 also covers 1 m of grid pixel (0, 1)
    assert tree[0, 1] == pytest.approx(0.1, abs=1e-6)


def test_grid_pixel_at_the_chm_edge_counts_only_the_covered_part():
    # the 2 m CHM starts 1 m east of the grid, so grid pixel (0, 0) (x 0–10) is covered over x 1–10 only:
    # 9 m of CHM, of which column 0 (x 1–3, 5 m trees) is 2 m. Tree share 2/9 (not 0.3, as if column 0 were
    # stretched over x 0–3); mean height 5 m × 2/9 = 10/9 m. Pixel (0, 1) (x 10–20) is fully covered, all 0 m.
    h = np.zeros((10, 10), np.float32)
    h[:, 0] = 5.0
    tree, woody, height = chm_on_grid(h, Affine(2.0, 0.0, X0 + 1, 0.0, -2.0, Y1), "EPSG:32651", None, GRID, 2.0, 0.5)
    np.testing.assert_allclose(tree, [[2 / 9, 0.0], [2 / 9, 0.0]], atol=1e-6)
    np.testing.assert_allclose(woody, tree, atol=1e-6)
    np.testing.assert_allclose(height, [[10 / 9, 0.0], [10 / 9, 0.0]], atol=1e-6)


def test_chm_ending_mid_pixel_east_and_south():
    # a 1 m CHM over x 0–15, y 0–13 from the top: grid column 1 (x 10–20) holds CHM columns 10–14 only, grid
    # row 1 (y 10–20) CHM rows 10–12 only. Heights by CHM column: 0 west of x 10, then 1, 2, 3, 4, 5 m;
    # tree (≥ 2 m) columns 11–14, woody (≥ 0.5 m) 10–14.
    h = np.zeros((13, 15), np.float32)
    h[:, 10:15] = [1.0, 2.0, 3.0, 4.0, 5.0]
    h[10:, 14] = -9999.0  # nodata in the covered corner of pixel (1, 1): its columns 10–13 remain
    tree, woody, height = chm_on_grid(h, ONE_M, "EPSG:32651", -9999.0, GRID, 2.0, 0.5)
    # (0, 1): 4 of its 5 covered columns are ≥ 2 m (2, 3, 4, 5 m) -> 0.8; mean (1+2+3+4+5)/5 = 3 m
    # (1, 1): covered rows 10–12 × columns 10–13 (14 is nodata): tree 3/4, mean (1+2+3+4)/4 = 2.5
    # (0, 0) and (1, 0): all 0 m, (1, 0) over its 3 covered rows
    np.testing.assert_allclose(tree, [[0.0, 0.8], [0.0, 0.75]], atol=1e-6)
    np.testing.assert_allclose(woody, [[0.0, 1.0], [0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(height, [[0.0, 3.0], [0.0, 2.5]], atol=1e-6)


def test_chm_file_ending_mid_pixel_through_chm_strip(tmp_path):
    # the CHM above without its nodata, as a file, read whole and in blocks of one grid pixel (each block
    # read to the file's edge)
    h = np.zeros((13, 15), np.float32)
    h[:, 10:15] = [1.0, 2.0, 3.0, 4.0, 5.0]
    path = tmp_path / "chm.tif"
    with rasterio.open(path, "w", driver="GTiff", width=15, height=13, count=1, dtype="float32",
                       crs="EPSG:32651", transform=ONE_M, nodata=-9999.0) as dst:
        dst.write(h, 1)
    for max_src_px in (1 << 24, 100):
        tree, _, height = chm_strip(path, GRID, 2.0, 0.5, src_px_per_px=100, max_src_px=max_src_px)
        np.testing.assert_allclose(tree, [[0.0, 0.8], [0.0, 0.8]], atol=1e-6)
        np.testing.assert_allclose(height, [[0.0, 3.0], [0.0, 3.0]], atol=1e-6)


def test_chm_in_another_crs():
    # the same transverse Mercator as EPSG:32651 with a false easting 1000 m larger: a pure shift
    other = "+proj=tmerc +lat_0=0 +lon_0=123 +k=0.9996 +x_0=501000 +y_0=0 +datum=WGS84 +units=m +no_defs"
    shifted = Affine(1.0, 0.0, X0 + 1000.0, 0.0, -1.0, Y1)
    tree, woody, _ = chm_on_grid(hand_chm(), shifted, other, -9999.0, GRID, 2.0, 0.5)
    np.testing.assert_allclose(tree, [[0.37, 0.0], [1.0, 0.0]], atol=1e-3)
    np.testing.assert_allclose(woody, [[0.37, 1.0], [1.0, 0.5]], atol=1e-3)


def test_coarse_chm_gives_each_pixel_the_covering_chm_value_or_an_area_share():
    # 15 m CHM pixels: [tree, low]; grid pixel (0, 0) lies in the first, (0, 1) straddles both half and half
    h = np.array([[5.0, 0.0], [5.0, 0.0]], np.float32)
    tree, _, _ = chm_on_grid(h, Affine(15.0, 0.0, X0, 0.0, -15.0, Y1), "EPSG:32651", None, GRID, 2.0, 0.5)
    np.testing.assert_allclose(tree, [[1.0, 0.5], [1.0, 0.5]], atol=1e-6)


def test_canopy_uses_chm_where_valid_and_ndvi_elsewhere():
    nd = np.array([[0.6, 0.6], [0.1, NAN]], np.float32)
    tree = np.array([[0.37, NAN], [0.8, 0.9]], np.float32)
    np.testing.assert_allclose(chm_canopy(nd, tree, 0.5), [[0.37, 1.0], [0.8, NAN]], atol=1e-6)


def test_structure_classes_with_heights():
    nd = np.array([0.6, 0.1, 0.6, 0.3, 0.6, 0.1, 0.4, NAN, 0.6], np.float32)
    tree = np.array([0.5, 0.7, 0.49, 0.0, 0.0, 0.0, NAN, 1.0, 0.1], np.float32)
    woody = np.array([0.5, 0.7, 0.6, 0.5, 0.49, 0.9, NAN, 1.0, 0.1], np.float32)
    got = chm_structure_classes(nd, tree, woody, 0.2, 0.35, 0.5)
    # tree fraction ≥ 0.5 is tree even at low NDVI; median height in shrub band -> shrub (vegetated only);
    # below shrub height -> grass even at NDVI 0.6; not vegetated -> 0; no CHM -> NDVI class (0.4: shrub); NaN NDVI -> NaN
    expected = [CLASS_TREE, CLASS_TREE, CLASS_SHRUB, CLASS_SHRUB, CLASS_GRASS, CLASS_NONE, CLASS_SHRUB, NAN, CLASS_GRASS]
    np.testing.assert_array_equal(got, np.array(expected, np.float32))


# ----------------------------------------------------------------------------- streamed with a CHM file

SETTINGS = {"fvc_percentiles": [5, 95], "ndvi_soil": None, "ndvi_full": None,
            "ndvi_vegetation": 0.2, "ndvi_shrub": 0.35, "ndvi_tree": 0.5}
FILES = {"ndvi": "ndvi.tif", "fvc": "fvc.tif", "vegetation": "vegetation.tif", "canopy": "canopy.tif",
         "classes": "vegetation_class.tif", "height": "height.tif"}


def composite_and_chm(tmp_path, shape=(37, 29)):
    """A composite on a 10 m grid and a 2 m CHM (nodata -1) that covers only grid rows 0–19, with a
    nodata hole over grid pixels rows 2–3, cols 5–7, and ground noise (-0.5 m) over rows 10–11."""
    grid = Grid("EPSG:32651", Affine(10.0, 0.0, X0, 0.0, -10.0, Y1), width=shape[1], height=shape[0])
    rng = np.random.default_rng(7)
    red = rng.uniform(0.01, 0.3, shape)
    nir = rng.uniform(0.05, 0.6, shape)
    red[3:6, 4:9] = NAN
    composite = io.write_raster(tmp_path / "composite.tif", np.stack([red, nir, np.where(np.isnan(red), 0, 3)]), grid)
    h = rng.uniform(0.0, 6.0, (100, shape[1] * 5)).astype(np.float32)
    h[10:20, 25:40] = -1.0
    h[50:60, :] = -0.5
    path = tmp_path / "chm.tif"
    with rasterio.open(path, "w", driver="GTiff", width=h.shape[1], height=h.shape[0], count=1, dtype="float32",
                       crs="EPSG:32651", transform=Affine(2.0, 0.0, X0, 0.0, -2.0, Y1), nodata=-1.0) as dst:
        dst.write(h, 1)
    return composite, path, grid, h


def test_vegetation_to_files_with_a_chm(tmp_path):
    composite, chm_path, grid, h = composite_and_chm(tmp_path)
    settings = {**SETTINGS, "chm": {"path": str(chm_path), "tree_height_m": 2.0, "shrub_height_m": 0.5}}
    out = {k: tmp_path / "out" / name for k, name in FILES.items()}
    stats = vegetation_to_files(composite, out, settings, block_rows=7)
    nd = io.read_raster(out["ndvi"], bands=1)
    # expected by hand from 5 × 5 blocks of the 2 m CHM
    valid = h != -1.0
    blocks = lambda a: a.reshape(20, 5, grid.width, 5).sum(axis=(1, 3))  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        tree = blocks((h >= 2.0) & valid) / blocks(valid)
        woody = blocks((h >= 0.5) & valid) / blocks(valid)
        height = blocks(np.where(valid, np.maximum(h, 0.0), 0.0)) / blocks(valid)  # heights < 0 count as 0 m
    tree = np.vstack([tree, np.full((grid.height - 20, grid.width), NAN)])
    woody = np.vstack([woody, np.full((grid.height - 20, grid.width), NAN)])
    height = np.vstack([height, np.full((grid.height - 20, grid.width), NAN)])
    height[~np.isfinite(nd)] = NAN  # unobserved
    assert (height[10:12] == 0).all()
    assert np.isnan(tree[2:4, 5:8]).all() and np.isfinite(tree[:2]).all()
    np.testing.assert_allclose(io.read_raster(out["canopy"], bands=1), chm_canopy(nd, tree, 0.5), atol=1e-6)
    got_classes = io.read_raster(out["classes"], bands=1)
    np.testing.assert_array_equal(got_classes, chm_structure_classes(nd, tree, woody, 0.2, 0.35, 0.5))
    # no CHM over rows 20–36 and the hole: the NDVI rules there
    np.testing.assert_array_equal(io.read_raster(out["canopy"], bands=1)[20:], threshold_mask(nd[20:], 0.5))
    np.testing.assert_array_equal(got_classes[20:], structure_classes(nd[20:], 0.2, 0.35, 0.5))
    fallback = int((np.isfinite(nd) & ~np.isfinite(tree)).sum())
    # rows 20–36, plus the 2 × 3 hole less its row 3, which the composite's NaN hole (rows 3–5, cols 4–8) covers
    assert fallback == int(np.isfinite(nd[20:]).sum()) + 3
    assert stats["chm"]["fallback_pixels"] == fallback
    assert stats["chm"]["fallback_pct"] == pytest.approx(100 * fallback / np.isfinite(nd).sum())
    assert stats["canopy_pct"] == pytest.approx(100 * np.nansum(chm_canopy(nd, tree, 0.5)) / np.isfinite(nd).sum(), rel=1e-6)
    with rasterio.open(out["canopy"]) as src:
        assert float(src.tags()["chm_tree_height_m"]) == 2.0
    got_height = io.read_raster(out["height"], bands=1)
    np.testing.assert_allclose(got_height, height, rtol=1e-6, atol=1e-6)
    assert (np.isnan(got_height) == np.isnan(height)).all()
    assert io.band_names(out["height"]) == ["height_m"]
    assert stats["chm"]["height_pixels"] == int(np.isfinite(height).sum())
    assert stats["chm"]["height_mean_m"] == pytest.approx(float(np.nanmean(height.astype(np.float64))), rel=1e-6)


def test_vegetation_to_files_with_a_chm_does_not_depend_on_blocks(tmp_path):
    composite, chm_path, grid, _ = composite_and_chm(tmp_path)
    settings = {**SETTINGS, "chm": {"path": str(chm_path), "tree_height_m": 2.0, "shrub_height_m": 0.5}}
    results = []
    for block_rows in (3, 512):
        out = {k: tmp_path / str(block_rows) / name for k, name in FILES.items()}
        results.append((vegetation_to_files(composite, out, settings, block_rows=block_rows),
                        {k: io.read_raster(p, bands=1).tobytes() for k, p in out.items()}))
    assert results[0] == results[1]
    # reading the CHM in small blocks (a few grid pixels each) gives the same fractions
    whole = chm_strip(chm_path, grid, 2.0, 0.5, src_px_per_px=25)
    small = chm_strip(chm_path, grid, 2.0, 0.5, src_px_per_px=25, max_src_px=25 * 6)
    np.testing.assert_array_equal(whole[0], small[0])
    np.testing.assert_array_equal(whole[1], small[1])


def test_chm_outside_the_grid_falls_back_everywhere(tmp_path):
    composite, _, grid, _ = composite_and_chm(tmp_path)
    far = tmp_path / "far.tif"
    with rasterio.open(far, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32", crs="EPSG:32651",
                       transform=Affine(2.0, 0.0, X0 - 1e5, 0.0, -2.0, Y1), nodata=-1.0) as dst:
        dst.write(np.full((4, 4), 5.0, np.float32), 1)
    out = {k: tmp_path / "out" / name for k, name in FILES.items()}
    stats = vegetation_to_files(composite, out, {**SETTINGS, "chm": {"path": str(far)}}, block_rows=16)
    assert stats["chm"]["fallback_pct"] == pytest.approx(100.0)
    assert stats["chm"]["height_pixels"] == 0 and stats["chm"]["height_mean_m"] is None
    assert np.isnan(io.read_raster(out["height"], bands=1)).all()
    nd = io.read_raster(out["ndvi"], bands=1)
    np.testing.assert_array_equal(io.read_raster(out["canopy"], bands=1), threshold_mask(nd, 0.5))


def test_bad_height_thresholds_raise(tmp_path):
    composite, chm_path, _, _ = composite_and_chm(tmp_path)
    out = {k: tmp_path / "out" / name for k, name in FILES.items()}
    with pytest.raises(InputDataError, match="shrub < tree"):
        vegetation_to_files(composite, out, {**SETTINGS, "chm": {"path": str(chm_path), "tree_height_m": 1.0,
                                                                  "shrub_height_m": 1.0}})
