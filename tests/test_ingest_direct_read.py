"""The reader's direct path (issue 14): a band whose pixels are the grid's, or whole blocks of grid pixels read
with nearest neighbour (a 20 m SCL on a 10 m grid), is read straight from the file's blocks instead of through a
GDAL WarpedVRT. It must give the very array the warp gives: same values, same fill and outside mask where the file
does not reach. Checked here against GDAL's own warp (the direct path switched off) on small hand-built files of
every layout: inside, overhanging every edge, offset by whole pixels, an odd offset of a 20 m band, no nodata
(alpha mask), a nodata value, a file that misses the window; and by hand on a 2 × 2 block of a 20 m band.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from greensink.grid import Grid
from greensink.ingest import reader
from greensink.ingest.profiles import PROFILES
from greensink.ingest.scene import Scene

CRS = "EPSG:32651"
GRID = Grid(CRS, Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460060.0), width=13, height=11)


def write(path: Path, arr: np.ndarray, transform: Affine, nodata=None, crs: str = CRS) -> str:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=arr.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(arr, 1)
    return str(path)


def warped(monkeypatch, *args):
    """The GDAL warp's answer: the same call with the direct path switched off."""
    with monkeypatch.context() as m:
        m.setattr(reader, "_direct_read", lambda *a, **k: None)
        return reader._warped_read(*args)


# (pixel size in m, column offset, row offset in grid pixels of the file's corner from the grid's, rows, cols)
LAYOUTS = [
    (10, 0, 0, 11, 13),    # the grid itself
    (10, -3, -2, 20, 20),  # overhangs every edge
    (10, 4, 3, 5, 6),      # inside, away from every edge
    (10, 9, -4, 8, 9),     # overhangs the top and right edges only
    (20, 0, 0, 6, 7),      # a 20 m band on the grid's corner
    (20, 1, 3, 4, 4),      # a 20 m band on an odd offset: grid pixels fall in either half of a file pixel
    (20, -3, -1, 9, 9),    # a 20 m band overhanging
    (30, 2, -5, 6, 5),     # 30 m
    (10, 20, 0, 4, 4),     # misses the grid
]
WINDOWS = [Window(0, 0, 13, 11), Window(3, 2, 7, 5), Window(0, 9, 13, 2), Window(11, 0, 2, 11)]


@pytest.mark.parametrize("nodata", [None, 0], ids=["no-nodata", "nodata-0"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=[f"{p}m_{c}_{r}_{h}x{w}" for p, c, r, h, w in LAYOUTS])
def test_direct_read_equals_the_warp(tmp_path, monkeypatch, layout, nodata):
    px, dc, dr, h, w = layout
    rng = np.random.default_rng(px * 1000 + dc * 37 + dr)
    arr = rng.integers(0, 12, (h, w)).astype(np.uint8)  # 0 is data without nodata, fill with it
    t = Affine(px, 0, GRID.transform.c + dc * 10.0, 0, -px, GRID.transform.f - dr * 10.0)
    path = write(tmp_path / "b.tif", arr, t, nodata)
    direct_seen = 0
    for window in WINDOWS:
        want = warped(monkeypatch, path, 1, GRID, window, Resampling.nearest, None, False)
        with rasterio.open(path) as src:
            direct = reader._direct_read(src, 1, GRID, window, want[1], nearest=True)
        assert direct is not None  # every layout here is on the lattice
        direct_seen += 1
        got = reader._warped_read(path, 1, GRID, window, Resampling.nearest, None, False)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[0].dtype == want[0].dtype and got[1] == want[1]
        if nodata is None:
            np.testing.assert_array_equal(got[2], want[2])
            # the mask is exactly the grid pixels whose centre lies outside the file
            cols = np.arange(window.col_off, window.col_off + window.width)
            rows = np.arange(window.row_off, window.row_off + window.height)
            fc, fr = np.floor((cols + 0.5) * 10 / px - dc * 10 / px), np.floor((rows + 0.5) * 10 / px - dr * 10 / px)
            inside = ((fr >= 0) & (fr < h))[:, None] & ((fc >= 0) & (fc < w))[None, :]
            np.testing.assert_array_equal(got[2], ~inside)
        else:
            assert got[2] is None and want[2] is None
    assert direct_seen == len(WINDOWS)


def test_20m_band_pixels_repeat_by_hand(tmp_path):
    # a 2 × 2 20 m band whose corner is one 10 m pixel east and south of the grid's: grid (1, 1) and (2, 2) lie in
    # file pixel (0, 0) and (1, 1); grid (0, *) and (*, 0) lie outside (nodata 255)
    arr = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    t = Affine(20, 0, GRID.transform.c + 10, 0, -20, GRID.transform.f - 10)
    path = write(tmp_path / "scl.tif", arr, t, nodata=255)
    got, nodata, outside = reader._warped_read(path, 1, GRID, Window(0, 0, 6, 6), Resampling.nearest)
    want = np.full((6, 6), 255, np.uint8)
    want[1:3, 1:3], want[1:3, 3:5], want[3:5, 1:3], want[3:5, 3:5] = 1, 2, 3, 4
    np.testing.assert_array_equal(got, want)
    assert nodata == 255 and outside is None


def test_warp_still_used_off_the_lattice_and_for_interpolated_bands(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(1, 5000, (8, 8)).astype(np.uint16)
    shifted = write(tmp_path / "s.tif", arr, Affine(10, 0, GRID.transform.c + 3, 0, -10, GRID.transform.f), 0)
    coarse = write(tmp_path / "c.tif", arr, Affine(20, 0, GRID.transform.c, 0, -20, GRID.transform.f), 0)
    other_crs = write(tmp_path / "o.tif", arr, Affine(10, 0, 0, 0, -10, 0), 0, crs="EPSG:32650")
    window = Window(0, 0, 13, 11)
    for path, nearest in ((shifted, True), (coarse, False), (other_crs, True)):
        with rasterio.open(path) as src:
            assert reader._direct_read(src, 1, GRID, window, 0, nearest=nearest) is None
    with rasterio.open(coarse) as src:  # the same 20 m band read nearest (a quality band) is direct
        assert reader._direct_read(src, 1, GRID, window, 0, nearest=True) is not None


def test_scene_on_the_grid_reads_the_same_through_either_path(tmp_path, monkeypatch):
    # a whole Sentinel-2 scene (10 m red/NIR with DN 0 fill, 20 m SCL): reflectance and clear mask identical
    rng = np.random.default_rng(7)
    t10 = Affine(10, 0, GRID.transform.c - 20, 0, -10, GRID.transform.f + 10)
    red = rng.integers(900, 4000, (12, 14)).astype(np.uint16)
    nir = rng.integers(900, 6000, (12, 14)).astype(np.uint16)
    red[:3, :4] = 0
    scl = rng.integers(0, 12, (6, 7)).astype(np.uint8)
    paths = [write(tmp_path / f"{k}.tif", a, tr) for k, a, tr in
             (("red", red, t10), ("nir", nir, t10), ("scl", scl, Affine(20, 0, t10.c, 0, -20, t10.f)))]
    p = PROFILES["sentinel2-l2a"]
    scene = Scene("s", "2023-06-15", "sentinel2-l2a", *paths, 1e-4, -0.1, red_band=1, nir_band=1, quality_band=1,
                  nodata=0, quality_rule=p["quality"])
    window = Window(0, 0, GRID.width, GRID.height)
    got = reader.read_scene_window(scene, GRID, window)
    with monkeypatch.context() as m:
        m.setattr(reader, "_direct_read", lambda *a, **k: None)
        want = reader.read_scene_window(scene, GRID, window)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert 0 < want[2].sum() < want[2].size and np.isnan(want[0]).sum() > 0


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("rule", [
    {"rule": "classes", "masked": [0, 1, 3, 8, 9, 10, 11]},  # Sentinel-2 SCL
    {"rule": "classes", "clear": [4, 5, 6, 7]},
    {"rule": "bits", "masked": [0, 1, 2, 3, 4]},  # Landsat QA_PIXEL
    {"rule": "bits", "clear": [2, 3, 10, 11, 12, 13]},  # GA PQ25 (bits above 7 never set in 8-bit types)
])
def test_quality_table_equals_the_rule_on_every_value(dtype, rule):
    # the table lookup of 8/16-bit quality bands against the rule applied to the int64 values one by one
    from greensink.ingest.profiles import _quality_clear, quality_clear

    info = np.iinfo(dtype)
    q = np.arange(info.min, info.max + 1, dtype=np.int64).astype(dtype).reshape(-1, 256)
    got = quality_clear(q, rule)
    want = _quality_clear(q.astype(np.int64), rule)  # the rule on the int64 values, as before the table
    np.testing.assert_array_equal(got, want)
    assert got.shape == q.shape and got.dtype == bool
    if rule == {"rule": "classes", "masked": [0, 1, 3, 8, 9, 10, 11]}:  # by hand: SCL 4 vegetation clear, 9 cloud not
        assert bool(quality_clear(np.array([4, 9], dtype=dtype), rule).tolist() == [True, False])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16])
def test_calibration_median_and_p99_equal_numpy_on_float64(dtype):
    # the check's median (one partition of the integers, only the middle values calibrated) and raw 99th
    # percentile against numpy's median/percentile of the float64 values, on random samples of every size parity
    from greensink.ingest.checks import _median_p99

    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    for n in list(range(1, 120)) + [1000, 1001, 4097]:
        dn = rng.integers(max(info.min, -2000), min(info.max, 20000) + 1, n).astype(dtype)
        for scale, offset in ((1e-4, -0.1), (2.75e-5, -0.2), (1 / 255, 0.0)):
            f = dn.astype(np.float64)
            median, p99 = _median_p99(dn.copy(), scale, offset, True)
            assert median == float(np.median(f * scale + offset))
            assert p99 == float(np.percentile(f, 99))
    # int16 extremes: the two order statistics 60,000 DN apart (an int16 difference would wrap)
    dn = np.array([-30000] * 50 + [30000] * 51, dtype=np.int16)
    assert _median_p99(dn.copy(), 1e-4, 0.0, True)[1] == float(np.percentile(dn.astype(np.float64), 99))
    dn = np.array([-30000] * 50 + [30000], dtype=np.int16)  # 51 values: the 99th percentile halfway (50 × 0.99 = 49.5)
    p99 = _median_p99(dn.copy(), 1e-4, 0.0, True)[1]  # between the 50th and 51st: -30000 + 60000 / 2 = 0
    assert p99 == float(np.percentile(dn.astype(np.float64), 99)) and p99 == pytest.approx(0.0, abs=0.01)
    # by hand: DNs 1000, 3000 (even count): reflectance (0.0 + 0.2) / 2 = 0.1 at scale 1e-4, offset -0.1
    assert _median_p99(np.array([3000, 1000], dtype=np.uint16), 1e-4, -0.1, False) == (pytest.approx(0.1), None)


@pytest.mark.parametrize("case", ["s2-nodata", "no-nodata", "other-crs", "landsat-offset", "partial"])
def test_valid_read_equals_the_finite_reflectance(tmp_path, case):
    # read_scene_valid (the ingest statistics' read, no reflectance made) against read_scene_window's
    # isfinite(red) & isfinite(nir) and clear, on scenes through either read path
    rng = np.random.default_rng(5)
    t10 = Affine(10, 0, GRID.transform.c - 20, 0, -10, GRID.transform.f + 10)
    crs, nodata, sensor, scale, offset = CRS, 0, "sentinel2-l2a", 1e-4, -0.1
    shape = (12, 14)
    if case == "other-crs":
        crs = "EPSG:32650"
        from rasterio.warp import transform as wt
        xs, ys = wt(CRS, crs, [GRID.transform.c - 30], [GRID.transform.f + 30])
        t10 = Affine(10, 0, xs[0], 0, -10, ys[0])
        shape = (20, 22)
    if case == "partial":
        t10 = Affine(10, 0, GRID.transform.c + 50, 0, -10, GRID.transform.f - 40)
    if case == "landsat-offset":
        sensor, scale, offset = "landsat-c2-l2", 2.75e-5, -0.2
    if case == "no-nodata":
        nodata = None
    red = rng.integers(1, 4000, shape).astype(np.uint16)
    nir = rng.integers(1, 6000, shape).astype(np.uint16)
    red[:4, :5] = 0
    nir[6:, 8:] = 0
    q = rng.integers(0, 12, (shape[0] // 2, shape[1] // 2)).astype(np.uint8)
    paths = [write(tmp_path / f"{k}.tif", a, tr, nodata, crs=crs) for k, a, tr in
             (("red", red, t10), ("nir", nir, t10), ("q", q, Affine(20, 0, t10.c, 0, -20, t10.f)))]
    rule = PROFILES["sentinel2-l2a"]["quality"]
    scene = Scene("s", "2023-06-15", sensor, *paths, scale, offset, red_band=1, nir_band=1, quality_band=1,
                  nodata=nodata, quality_rule=rule)
    for window in WINDOWS:
        r, n, c = reader.read_scene_window(scene, GRID, window)
        with reader.held_open() as held:
            v, c2 = reader.read_scene_valid(scene, GRID, window, held)
        np.testing.assert_array_equal(v, np.isfinite(r) & np.isfinite(n))
        np.testing.assert_array_equal(c2, c)
    full = reader.read_scene_window(scene, GRID, WINDOWS[0])
    assert 0 < np.isfinite(full[0]).sum() < full[0].size  # the cases have data and holes in the window


def test_finite_everywhere_by_hand():
    assert reader._finite_everywhere(np.dtype(np.uint16), 1e-4, -0.1)  # 65535 -> 6.4535
    assert not reader._finite_everywhere(np.dtype(np.uint16), 1e34, 0.0)  # 65535e34 overflows float32
    assert not reader._finite_everywhere(np.dtype(np.float32), 1.0, 0.0)  # floats are calibrated, not assumed
