"""Per-band calibration in sensor profiles, and the warning for values that are not reflectance.

Landsat-7 ETM+ DNs have a different gain per band, so one scale for red and NIR cannot calibrate
them. A profile gives ``scale: {red: 0.0123, nir: 0.0098}`` and ``offset: {red: -0.01, nir:
0.02}``; reflectance = DN × gain + offset per band. A 3 × 3 scene on its own 30 m grid is read
through the ingest and composite stages and its NDVI compared with a hand computation.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from greensink.composite import composite_year
from greensink.errors import ConfigError
from greensink.grid import Grid
from greensink.ingest import harmonisation, ingest_year, load_scenes, resolve_profiles

CRS = "EPSG:32651"
TRANSFORM = Affine(30.0, 0.0, 690015.0, 0.0, -30.0, 3520815.0)
GRID = Grid(CRS, TRANSFORM, 3, 3)
SEASON = {"start": "01-01", "end": "12-31"}
RED_DN = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], dtype=np.uint8)
NIR_DN = np.array([[50, 60, 70], [80, 90, 100], [110, 120, 130]], dtype=np.uint8)
L7 = {"base": "landsat-c2-l2", "scale": {"red": 0.0123, "nir": 0.0098}, "offset": {"red": -0.01, "nir": 0.02},
      "quality": None, "nodata": 0}


def write_scene(folder: Path, red: np.ndarray = RED_DN, nir: np.ndarray = NIR_DN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in (("B3", red), ("B4", nir)):
        with rasterio.open(folder / f"LE07_20020615_{name}.tif", "w", driver="GTiff", width=3, height=3, count=1,
                           dtype=arr.dtype, crs=CRS, transform=TRANSFORM, nodata=0) as dst:
            dst.write(arr, 1)
    return folder


def imagery(folder: Path, profile: dict) -> dict:
    return {"source": "local", "profiles": {"l7dn": profile},
            "files": [{"red": str(folder / "*_B3.tif"), "nir": str(folder / "*_B4.tif"), "profile": "l7dn"}]}


def test_per_band_gain_and_offset_give_ndvi_by_hand(tmp_path):
    (scene,) = load_scenes(imagery(write_scene(tmp_path / "img"), L7))
    assert scene.calibration("red") == (0.0123, -0.01) and scene.calibration("nir") == (0.0098, 0.02)
    record = ingest_year([scene], GRID, 2002, SEASON)
    (rec,) = record["scenes"]
    assert (rec["scale"], rec["offset"], rec["nir_scale"], rec["nir_offset"]) == (0.0123, -0.01, 0.0098, 0.02)
    stack, _ = composite_year([scene], GRID)
    # pixel (0, 0): red 10 × 0.0123 − 0.01 = 0.113, NIR 50 × 0.0098 + 0.02 = 0.51, NDVI = 0.397 / 0.623 = 0.637239...
    assert stack[0][0, 0] == pytest.approx(0.113, abs=1e-7) and stack[1][0, 0] == pytest.approx(0.51, abs=1e-7)
    ndvi = (stack[1] - stack[0]) / (stack[1] + stack[0])
    assert ndvi[0, 0] == pytest.approx(0.397 / 0.623, abs=1e-6)
    # pixel (2, 2): red 90 × 0.0123 − 0.01 = 1.097, NIR 130 × 0.0098 + 0.02 = 1.294, NDVI = 0.197 / 2.391
    assert ndvi[2, 2] == pytest.approx(0.197 / 2.391, abs=1e-6)
    red = RED_DN * 0.0123 - 0.01
    nir = NIR_DN * 0.0098 + 0.02
    np.testing.assert_allclose(ndvi, (nir - red) / (nir + red), atol=1e-6, rtol=0)
    # one scale for both bands (the mean gain) would give another NDVI: the per-band gains matter
    one = (NIR_DN * 0.01105 - (RED_DN * 0.01105)) / ((NIR_DN + RED_DN) * 0.01105)
    assert np.abs(ndvi - one).max() > 0.05
    assert not [w for w in record["warnings"] if "uncalibrated" in w]  # these are reflectances: no warning


def test_a_scalar_scale_still_means_both_bands():
    profiles = resolve_profiles({"mine": {"scale": 1e-4, "offset": -0.1}})
    date = dt.date(2020, 6, 1)
    assert harmonisation(profiles["mine"], date) == harmonisation(profiles["mine"], date, band="nir") == (1e-4, -0.1)
    # a built-in profile changed per band keeps its scalar offset for both bands
    ls = resolve_profiles({"landsat-c2-l2": {"scale": {"red": 2e-5, "nir": 3e-5}}})["landsat-c2-l2"]
    assert harmonisation(ls, date, band="nir") == (3e-5, -0.2)


def test_per_band_profile_problems_name_the_key_and_the_fix():
    with pytest.raises(ConfigError) as err:
        resolve_profiles({"a": {"scale": {"red": 0.01}}, "b": {"scale": {"red": 0.01, "nir": 0}}, "c": {"scale": 1e-4, "offset": "x"}})
    msg = str(err.value)
    assert "imagery.profiles.a.scale: a per-band mapping needs exactly the keys red and nir" in msg and "Got keys ['red']" in msg
    assert "imagery.profiles.b.scale.nir: must be a number > 0" in msg and "Got 0" in msg
    assert "imagery.profiles.c.offset: must be a number" in msg and "{red: ..., nir: ...}" in msg


def test_uncalibrated_numbers_are_warned_about(tmp_path):
    # scale 1: the DNs themselves go through as "reflectance"; medians 50 (red) and 90 (NIR) by hand
    folder = write_scene(tmp_path / "img")
    (scene,) = load_scenes(imagery(folder, {"base": "landsat-c2-l2", "scale": 1.0, "offset": 0.0, "quality": None, "nodata": 0}))
    record = ingest_year([scene], GRID, 2002, SEASON)
    (rec,) = record["scenes"]
    assert rec["reflectance_median"] == {"red": 50.0, "nir": 90.0} and rec["calibration_suspect"] is True
    (warning,) = [w for w in record["warnings"] if "uncalibrated" in w]
    assert scene.scene_id in warning and "red 50" in warning and "nir 90" in warning
    assert "NDVI thresholds" in warning and "imagery.profiles.l7dn.scale" in warning
    # the per-band profile on the same files: medians 50 × 0.0123 − 0.01 = 0.605 and 90 × 0.0098 + 0.02 = 0.902
    (ok,) = load_scenes(imagery(folder, L7))
    rec = ingest_year([ok], GRID, 2002, SEASON)["scenes"][0]
    assert rec["reflectance_median"] == pytest.approx({"red": 0.605, "nir": 0.902}) and rec["calibration_suspect"] is False
