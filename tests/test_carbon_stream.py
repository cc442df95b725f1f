"""The carbon stage streamed by row strips (greensink.carbon.carbon_map_streamed) against the
whole-raster path it replaces (density_map over the whole grid, model_use_stats over the whole
grid, the total as the sum of the estimate band × pixel area), on real GeoTIFFs in tmp_path.

The synthetic grid (23 × 17 pixels of 10 m, 0.01 ha each) has four types with overlapping
fractions, untyped pixels, NaN NDVI (unobserved) pixels, and a type G1 on NDVI + height with an
NDVI-only companion where height is NaN; type G4 on NDVI + FVC has no companion, so pixels with
NaN FVC have no usable model. Models have 40 bootstrap draws, so the quantile bands are not
trivial; some predictions fall below 0 (floored) and some predictors outside the plots' range.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from greensink import io
from greensink.carbon import (
    add_use_counts,
    carbon_band_names,
    carbon_map_streamed,
    density_map,
    model_use_counts,
    model_use_stats,
    pixel_function,
    strip_rows_for,
    typed_pixels,
    use_stats_from_counts,
)
from greensink.errors import InputDataError
from greensink.grid import Grid

ROOT = Path(__file__).resolve().parents[1]
TYPES = ["G1", "G2", "G3", "G4"]
ROWS, COLS = 23, 17
GRID = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_230.0), width=COLS, height=ROWS)


def _draws(rng: np.random.Generator, centre: list[float], spread: list[float], n: int = 40) -> list[list[float]]:
    return (np.asarray(centre) + rng.normal(size=(n, len(centre))) * np.asarray(spread)).tolist()


def make_models() -> dict:
    rng = np.random.default_rng(7)
    return {"types": {
        "G1": {"form": "linear", "predictors": ["ndvi", "height"], "params": {"a": -2.0, "b_ndvi": 30.0, "b_height": 1.5},
               "bootstrap": _draws(rng, [-2.0, 30.0, 1.5], [1.0, 3.0, 0.2]),
               "predictor_ranges": {"ndvi": [0.2, 0.85], "height": [1.0, 20.0]},
               "ndvi_only": {"form": "linear", "predictors": ["ndvi"], "params": {"a": -4.0, "b": 40.0},
                             "bootstrap": _draws(rng, [-4.0, 40.0], [1.0, 4.0]), "predictor_ranges": {"ndvi": [0.1, 0.8]}}},
        "G2": {"form": "power", "params": {"a": 25.0, "b": 1.3}, "bootstrap": _draws(rng, [25.0, 1.3], [3.0, 0.1]),
               "x_range": [0.3, 0.9]},
        "G3": {"form": "exponential", "params": {"a": 0.8, "b": 3.0}, "bootstrap": _draws(rng, [0.8, 3.0], [0.1, 0.3]),
               "x_range": [0.0, 0.7]},
        "G4": {"form": "logarithmic", "predictors": ["ndvi", "fvc"], "params": {"a": 10.0, "b_ndvi": 6.0, "b_fvc": 2.0},
               "bootstrap": _draws(rng, [10.0, 6.0, 2.0], [1.0, 1.0, 0.5]),
               "predictor_ranges": {"ndvi": [0.2, 0.9], "fvc": [0.1, 1.0]}},
    }}


def make_rasters() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fractions (4, 23, 17) and the predictor rasters ndvi, fvc, height (23, 17), float32."""
    rng = np.random.default_rng(11)
    frac = rng.uniform(0, 1, (len(TYPES), ROWS, COLS)) * (rng.uniform(size=(len(TYPES), ROWS, COLS)) < 0.45)
    frac /= np.maximum(frac.sum(axis=0), 1.0)  # shares of a pixel sum to at most 1
    frac[:, 5:9, 3:11] = 0.0  # an untyped block
    frac[3, 0, 1] = 1e-4  # a type barely present
    ndvi = rng.uniform(-0.3, 0.95, (ROWS, COLS))
    ndvi[rng.uniform(size=ndvi.shape) < 0.08] = np.nan
    ndvi[14:17, :] = np.nan  # a cloud across the grid
    fvc = np.clip((ndvi + 0.1) / 0.9, 0, 1)
    fvc[:, 12:] = np.nan  # FVC missing on the right: G4 has no usable model there
    height = rng.uniform(0.0, 25.0, (ROWS, COLS))
    height[rng.uniform(size=height.shape) < 0.3] = np.nan  # outside the CHM: G1's companion serves
    return frac.astype(np.float32), {q: a.astype(np.float32) for q, a in (("ndvi", ndvi), ("fvc", fvc), ("height", height))}


def write_inputs(tmp_path: Path) -> tuple[Path, dict[str, Path], np.ndarray, dict[str, np.ndarray]]:
    frac, preds = make_rasters()
    fpath = io.write_raster(tmp_path / "fractions.tif", frac, GRID, band_names=TYPES)
    ppaths = {q: io.write_raster(tmp_path / f"{q}.tif", a, GRID, band_names=[q]) for q, a in preds.items()}
    ppaths["canopy"] = io.write_raster(tmp_path / "canopy.tif", np.zeros(GRID.shape, np.float32), GRID)  # not used
    return fpath, ppaths, frac, preds


def whole_raster(models: dict, fpath: Path, ppaths: dict[str, Path], interval_pct: float = 90.0):
    """The pre-streaming stage: every raster read whole, one density_map and model_use_stats."""
    fractions = io.read_raster(fpath)
    rasters = {q: io.read_raster(ppaths[q]) for q in ("ndvi", "fvc", "height")}
    active = typed_pixels(fractions)
    carbon = density_map(pixel_function(models, TYPES, fractions, rasters), active, GRID.shape, interval_pct)
    stats = model_use_stats(models, TYPES, fractions, rasters)
    return carbon, active, stats


def read_carbon(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_the_case_exercises_every_branch(tmp_path: Path) -> None:
    models = make_models()
    fpath, ppaths, frac, preds = write_inputs(tmp_path)
    carbon, active, stats = whole_raster(models, fpath, ppaths)
    est = carbon[0].ravel()
    typed = frac.sum(axis=0).ravel() > 0
    assert 0 < active.size < ROWS * COLS and (est[~typed] == 0).all()  # untyped pixels hold 0
    assert np.isnan(est[active]).any() and (np.isfinite(est[active]) & (est[active] > 0)).any()
    assert 0 < stats["G1"]["ndvi_only_pct"] < 100  # the companion serves some pixels, not all
    assert stats["G4"]["no_usable_model_pct"] > 0 and "ndvi_only_pct" not in stats["G4"]
    assert all(stats[t]["floored_at_zero_pct"] > 0 for t in ("G1",))
    assert all(stats[t]["outside_plot_predictor_range_pct"] > 0 for t in TYPES)


@pytest.mark.parametrize("strip_rows", [1, 4, 7, ROWS, 64, None])
def test_streamed_equals_the_whole_raster_path(tmp_path: Path, strip_rows: int | None) -> None:
    models = make_models()
    fpath, ppaths, _, _ = write_inputs(tmp_path)
    carbon, active, stats = whole_raster(models, fpath, ppaths)
    out = tmp_path / "out" / "carbon.tif"
    seen = []
    result = carbon_map_streamed(models, TYPES, fpath, ppaths, out, strip_rows=strip_rows, chunk_pixels=50,
                                 progress=lambda done, total: seen.append((done, total)))
    n = -(-ROWS // (strip_rows or ROWS))  # the default strip height is the whole of this small grid
    assert seen == [(i, n) for i in range(1, n + 1)]
    streamed = read_carbon(out)
    # the same bits in every band, NaN where the whole-raster path has NaN
    assert streamed.dtype == np.float32 and streamed.shape == carbon.shape
    assert streamed.tobytes() == carbon.tobytes()
    assert result["typed_pixels"] == active.size
    assert result["types"] == stats  # the shares recomputed from summed counts: the same floats
    est = carbon[0]
    total64 = float(est[np.isfinite(est)].sum(dtype=np.float64)) * GRID.pixel_area_ha
    assert result["total_t"] == pytest.approx(total64, rel=1e-12)
    # the old stage summed the float32 band in float32: the same total to float32 accuracy
    assert result["total_t"] == pytest.approx(float(est[est == est].sum() * GRID.pixel_area_ha), rel=1e-6)
    assert json.loads(json.dumps(result, sort_keys=True)) == result  # what carbon.json holds


def test_counts_of_strips_add_up_to_the_whole() -> None:
    models = make_models()
    frac, preds = make_rasters()
    whole = model_use_counts(models, TYPES, frac, preds)
    summed: dict = {}
    for r0, r1 in ((0, 5), (5, 6), (6, 17), (17, ROWS)):
        add_use_counts(summed, model_use_counts(models, TYPES, frac[:, r0:r1], {q: a[r0:r1] for q, a in preds.items()}))
    assert summed == whole
    g1 = whole["G1"]
    assert g1["observed"] == sum(g1["served"]) + g1["unserved"] and g1["served"][1] > 0
    assert whole["G4"]["unserved"] > 0 and len(whole["G4"]["served"]) == 1
    assert use_stats_from_counts(summed) == model_use_stats(models, TYPES, frac, preds)


def test_written_geotiff_matches_the_whole_raster_file(tmp_path: Path) -> None:
    models = make_models()
    fpath, ppaths, _, _ = write_inputs(tmp_path)
    carbon, _, _ = whole_raster(models, fpath, ppaths, interval_pct=80)
    old = io.write_raster(tmp_path / "old.tif", carbon, GRID, band_names=carbon_band_names(80), compress="deflate",
                          tags={"units": "t C/ha", "interval_pct": 80})
    new = tmp_path / "new.tif"
    carbon_map_streamed(models, TYPES, fpath, ppaths, new, interval_pct=80, compress="deflate", strip_rows=5)
    with rasterio.open(old) as a, rasterio.open(new) as b:
        assert b.descriptions == a.descriptions == ("carbon_t_ha", "carbon_t_ha_p10", "carbon_t_ha_p90")
        assert b.tags()["units"] == "t C/ha" and b.tags()["interval_pct"] == "80"
        assert {k: v for k, v in b.tags().items() if k != "AREA_OR_POINT"} == \
            {k: v for k, v in a.tags().items() if k != "AREA_OR_POINT"}
        assert b.profile["compress"] == a.profile["compress"] == "deflate"
        assert b.dtypes == a.dtypes == ("float32",) * 3 and np.isnan(b.nodata) and np.isnan(a.nodata)
        assert (b.crs, b.transform, b.shape) == (a.crs, a.transform, a.shape)
        assert b.read().tobytes() == a.read().tobytes()
    # only the finished file is left in the folder (the stage and temporary names are gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["canopy.tif", "fractions.tif", "fvc.tif", "height.tif", "ndvi.tif", "new.tif", "old.tif"]


def test_an_interrupted_run_leaves_no_file(tmp_path: Path) -> None:
    models = make_models()
    fpath, ppaths, _, _ = write_inputs(tmp_path)
    out = tmp_path / "out" / "carbon.tif"

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        carbon_map_streamed(models, TYPES, fpath, ppaths, out, strip_rows=3, progress=stop)
    assert list(out.parent.iterdir()) == []


def test_rasters_off_the_grid_or_with_the_wrong_bands_are_refused(tmp_path: Path) -> None:
    models = make_models()
    fpath, ppaths, frac, _ = write_inputs(tmp_path)
    small = Grid(crs=GRID.crs, transform=GRID.transform, width=COLS, height=ROWS - 1)
    bad_h = io.write_raster(tmp_path / "h_small.tif", np.zeros(small.shape, np.float32), small)
    with pytest.raises(InputDataError, match=r"h_small.tif: 22 × 17 pixels"):
        carbon_map_streamed(models, TYPES, fpath, {**ppaths, "height": bad_h}, tmp_path / "c.tif")
    three = io.write_raster(tmp_path / "f3.tif", frac[:3], GRID)
    with pytest.raises(InputDataError, match=r"f3.tif: 3 band\(s\), but there are 4 types"):
        carbon_map_streamed(models, TYPES, three, ppaths, tmp_path / "c.tif")
    assert not (tmp_path / "c.tif").exists()


def test_strip_rows_default() -> None:
    assert strip_rows_for(10_980) == 512  # a Sentinel-2 tile: 512 rows (5.6 Mpx), whole 512-row tiles
    assert strip_rows_for(6000) == 512  # 3.1 Mpx
    assert strip_rows_for(2000) == 2048  # 4.1 Mpx
    assert strip_rows_for(16_384) == 512 and strip_rows_for(16_385) == 255  # below 256 rows: what fits
    assert strip_rows_for(100_000) == 41
    assert strip_rows_for(17) == 246_784  # 246,723 rows fit: the nearest multiple of 512


@pytest.mark.slow
def test_quick_carbon_benchmark_runs_and_prints_the_figures(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "carbon_benchmark.py"), "--quick",
                           "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for label in ("streamed", "whole-raster"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{label}:"))
        assert re.search(r"wall +\d+\.\d\d s, CPU +\d+\.\d\d s, peak +\d+ MiB", line), line
    assert "outputs: PASS" in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"streamed/whole-raster: time ratio \d+\.\d\d, peak memory ratio \d+\.\d\d", last), last


def test_strips_read_into_reused_buffers_equal_read_raster(tmp_path: Path) -> None:
    """carbon_map_streamed's strip reader with reused buffers (maps._strips, _read_reused) against io.read_raster of
    each window: a float32 raster with NaN nodata, a uint16 one with nodata 0 (made NaN), a float raster with an
    internal mask band (left to read_raster); of a tile's window too. Full strips share one buffer."""
    from rasterio.windows import Window

    from greensink.carbon.maps import _strips

    rng = np.random.default_rng(3)
    frac = make_rasters()[0]
    f32 = io.write_raster(tmp_path / "f32.tif", frac, GRID, band_names=TYPES)
    counts = rng.integers(0, 5, (ROWS, COLS)).astype(np.uint16)  # 0 = nodata
    u16 = tmp_path / "u16.tif"
    with rasterio.open(u16, "w", driver="GTiff", width=COLS, height=ROWS, count=1, dtype="uint16", nodata=0,
                       crs=GRID.crs, transform=GRID.transform) as dst:
        dst.write(counts, 1)
    masked = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
            masked, "w", driver="GTiff", width=COLS, height=ROWS, count=1, dtype="float32", crs=GRID.crs,
            transform=GRID.transform) as dst:
        dst.write(frac[0], 1)
        dst.write_mask(np.where(frac[0] > 0.3, 255, 0).astype(np.uint8))
    tile = GRID.tiles(8)[4]
    for path, bands in ((f32, [1, 2, 3, 4]), (u16, 1), (masked, 1)):
        for t in (None, tile):
            height, width = (ROWS, COLS) if t is None else t.shape
            r0, c0 = (0, 0) if t is None else (t.row_off, t.col_off)
            buffers: dict = {}
            seen = []
            for sl, block in _strips(path, bands, height, width, 3, t, buffers):
                want = io.read_raster(path, bands=bands, window=Window(c0, r0 + sl.start, width, sl.stop - sl.start))
                assert block.dtype == np.float32 and block.shape == want.shape
                np.testing.assert_array_equal(block, want, err_msg=f"{path.name} {sl}")
                seen.append(block)
            full = [b for b in seen if b.shape == seen[0].shape]
            if path != masked:
                assert len(full) >= 2 and all(b is full[0] for b in full)  # one buffer for every full strip
    assert np.isnan(io.read_raster(u16)).sum() == (counts == 0).sum() > 0
    assert np.isnan(io.read_raster(masked)).sum() == (frac[0] <= 0.3).sum() > 0
