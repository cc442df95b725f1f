"""Tests of greensink.ingest: scenes table, radiometric harmonisation, quality masks, warping.

Tiny scenes are written with rasterio into ``tmp_path``. The analysis grid is 6 rows × 8 cols of
10 m pixels in UTM 51N (EPSG:32651) with its top-left corner at (350000, 3460060), so it spans
x 350000–350080 and y 3460000–3460060. Scenes are

* 10 m bands on exactly that grid (no resampling: values pass through unchanged);
* a 20 m SCL band on the same origin: 20 m pixel (r, c) covers 10 m pixels (2r..2r+1, 2c..2c+1);
* bands in UTM 50N (EPSG:32650) covering the same area, which the reader must warp.

Sentinel-2 harmonisation (DESIGN.md): reflectance = (DN + BOA_ADD_OFFSET) / 10000 with
BOA_ADD_OFFSET = -1000 after 2022-01-25 (processing baseline 04.00), 0 before.
Landsat C2 L2: reflectance = DN × 0.0000275 − 0.2.

The second half tests sensor profiles as data (GA Landsat NBAR with its PQ bits, NAIP with four
bands in one file, Sentinel-2 L1C JPEG2000, a profile from the config), scenes found by globs,
seasons across the new year, and the checks of one year's ingest (scenes outside the area,
another CRS, a nodata value that misses the fill, unreadable files, all cloud) with its masked share.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from greensink import config, ingest, workflow
from greensink.errors import ConfigError, InputDataError
from greensink.grid import Grid
from greensink.ingest import Scene, check_scene, harmonisation, in_season, quality_clear, read_scene_window
from greensink.vegetation import ndvi

CRS = "EPSG:32651"
GRID = Grid(CRS, Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460060.0), width=8, height=6)
FULL = Window(0, 0, GRID.width, GRID.height)

# True surface reflectance of the test area: red rises to the east, NIR to the south.
ROWS, COLS = np.mgrid[0:6, 0:8]
RED_REFL = 0.03 + 0.01 * COLS  # 0.03 … 0.10
NIR_REFL = 0.30 + 0.02 * ROWS  # 0.30 … 0.40
RED_DN_PRE = np.round(RED_REFL * 10000).astype(np.uint16)  # baseline < 04.00: DN = 10000 × ρ
NIR_DN_PRE = np.round(NIR_REFL * 10000).astype(np.uint16)

# SCL on the 20 m grid (3 × 4): every class that must be masked, and the clear ones 4 5 6 7
SCL_20M = np.array([[0, 1, 3, 8], [9, 10, 11, 4], [5, 6, 7, 4]], dtype=np.uint8)


def write_tif(path: Path, arr: np.ndarray, transform: Affine = GRID.transform, crs: str | None = CRS,
              nodata: float | None = None) -> str:
    with rasterio.open(
        path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
        crs=crs, transform=transform, nodata=nodata,
    ) as dst:
        dst.write(arr, 1)
    return str(path)


def s2(scene_id: str, red: str, nir: str, quality: str | None = None, date: str = "2023-06-15") -> Scene:
    scale, offset = harmonisation("sentinel2-l2a", dt.date.fromisoformat(date))
    return Scene(scene_id, date, "sentinel2-l2a", red, nir, quality, scale, offset)


def landsat(scene_id: str, red: str, nir: str, quality: str | None = None, date: str = "2023-06-15") -> Scene:
    scale, offset = harmonisation("landsat-c2-l2", dt.date.fromisoformat(date))
    return Scene(scene_id, date, "landsat-c2-l2", red, nir, quality, scale, offset)


def utm50_transform(margin_m: float = 200.0) -> tuple[Affine, int, int]:
    """A 10 m grid in EPSG:32650 covering the analysis grid plus a margin."""
    xmin, ymin, xmax, ymax = GRID.bounds
    bx0, by0, bx1, by1 = transform_bounds(CRS, "EPSG:32650", xmin - margin_m, ymin - margin_m, xmax + margin_m, ymax + margin_m)
    x0, y1 = np.floor(bx0 / 10) * 10, np.ceil(by1 / 10) * 10
    width, height = int(np.ceil((bx1 - x0) / 10)), int(np.ceil((y1 - by0) / 10))
    return Affine(10.0, 0.0, x0, 0.0, -10.0, y1), width, height


# ----------------------------------------------------------------------------- harmonisation


def test_sentinel2_offset_from_the_date():
    # after 2022-01-25 (baseline 04.00): offset -1000 DN = -0.1 reflectance
    assert harmonisation("sentinel2-l2a", dt.date(2022, 1, 26)) == (1e-4, pytest.approx(-0.1))
    assert harmonisation("sentinel2-l2a", dt.date(2023, 6, 15)) == (1e-4, pytest.approx(-0.1))
    # before: no offset
    assert harmonisation("sentinel2-l2a", dt.date(2022, 1, 24)) == (1e-4, 0.0)
    assert harmonisation("sentinel2-l2a", dt.date(2019, 6, 15)) == (1e-4, 0.0)


def test_sentinel2_explicit_columns_override_the_date():
    after, before = dt.date(2023, 6, 15), dt.date(2021, 6, 15)
    # boa_add_offset wins over everything
    assert harmonisation("sentinel2-l2a", after, boa_add_offset="0") == (1e-4, 0.0)
    assert harmonisation("sentinel2-l2a", before, boa_add_offset="-1000")[1] == pytest.approx(-0.1)
    assert harmonisation("sentinel2-l2a", after, baseline="04.00", boa_add_offset="0")[1] == 0.0
    # the processing baseline wins over the date
    assert harmonisation("sentinel2-l2a", after, baseline="03.01")[1] == 0.0
    assert harmonisation("sentinel2-l2a", before, baseline="04.00")[1] == pytest.approx(-0.1)
    assert harmonisation("sentinel2-l2a", before, baseline="05.09")[1] == pytest.approx(-0.1)


def test_sentinel2_bad_offset_or_baseline_is_refused():
    with pytest.raises(InputDataError, match=r"scenes.csv row 3.*boa_add_offset.*'minus'"):
        harmonisation("sentinel2-l2a", dt.date(2023, 1, 1), boa_add_offset="minus", where="scenes.csv row 3")
    with pytest.raises(InputDataError, match=r"processing_baseline.*'N0400'"):
        harmonisation("sentinel2-l2a", dt.date(2023, 1, 1), baseline="N0400")


def test_landsat_scale_and_offset_ignore_the_date():
    assert harmonisation("landsat-c2-l2", dt.date(2013, 6, 1)) == (2.75e-5, -0.2)
    assert harmonisation("landsat-c2-l2", dt.date(2023, 6, 1), "04.00", "-1000") == (2.75e-5, -0.2)


def test_sentinel2_post_2022_reflectance_hand_values(tmp_path):
    # DN 1500 -> (1500 - 1000) / 10000 = 0.05; DN 6000 -> 0.5; DN 1000 -> 0.0 (dark, still data)
    red = np.full(GRID.shape, 1500, np.uint16)
    nir = np.full(GRID.shape, 6000, np.uint16)
    red[0, 0] = 1000
    scene = s2("a", write_tif(tmp_path / "r.tif", red), write_tif(tmp_path / "n.tif", nir))
    r, n, clear = read_scene_window(scene, GRID, FULL)
    assert r.dtype == np.float32 and n.dtype == np.float32
    np.testing.assert_allclose(r.ravel()[1:], 0.05, rtol=0, atol=1e-7)
    assert r[0, 0] == 0.0
    np.testing.assert_allclose(n, 0.5, rtol=0, atol=1e-7)
    assert clear.all()  # no quality band: clear wherever both bands have data


def test_landsat_reflectance_hand_values(tmp_path):
    # red DN 10000 -> 10000 × 0.0000275 − 0.2 = 0.275 − 0.2 = 0.075
    # nir DN 30000 -> 0.825 − 0.2 = 0.625; NDVI = (0.625 − 0.075) / (0.625 + 0.075) = 0.55 / 0.7 = 0.785714
    red = np.full(GRID.shape, 10000, np.uint16)
    nir = np.full(GRID.shape, 30000, np.uint16)
    scene = landsat("l", write_tif(tmp_path / "r.tif", red), write_tif(tmp_path / "n.tif", nir))
    r, n, clear = read_scene_window(scene, GRID, FULL)
    np.testing.assert_allclose(r, 0.075, rtol=0, atol=1e-7)
    np.testing.assert_allclose(n, 0.625, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ndvi(r, n), 0.785714, atol=1e-6)
    assert clear.all()


def test_mixing_baselines_gives_identical_reflectance_and_ndvi(tmp_path):
    # The same surface observed once under baseline 03.xx (DN = 10000 ρ, 2021) and once under
    # 04.00 (DN = 10000 ρ + 1000, 2023). Harmonised, the two must agree exactly.
    pre = s2("pre", write_tif(tmp_path / "r21.tif", RED_DN_PRE), write_tif(tmp_path / "n21.tif", NIR_DN_PRE),
             date="2021-06-15")
    post = s2("post", write_tif(tmp_path / "r23.tif", RED_DN_PRE + 1000), write_tif(tmp_path / "n23.tif", NIR_DN_PRE + 1000),
              date="2023-06-15")
    r_pre, n_pre, _ = read_scene_window(pre, GRID, FULL)
    r_post, n_post, _ = read_scene_window(post, GRID, FULL)
    np.testing.assert_array_equal(r_post, r_pre)
    np.testing.assert_array_equal(n_post, n_pre)
    np.testing.assert_array_equal(ndvi(r_post, n_post), ndvi(r_pre, n_pre))
    np.testing.assert_allclose(r_pre, RED_REFL, rtol=0, atol=1e-7)
    np.testing.assert_allclose(n_pre, NIR_REFL, rtol=0, atol=1e-7)
    # without the offset the 2023 NDVI would be biased low: at (0, 0) red 0.03, nir 0.30
    # true NDVI 0.27 / 0.33 = 0.8182; unharmonised (0.40 − 0.13) / 0.53 = 0.5094
    assert ndvi(r_post, n_post)[0, 0] == pytest.approx(0.818182, abs=1e-6)


# ----------------------------------------------------------------------------- quality masks


def test_scl_classes_masked_and_clear():
    classes = np.arange(12)
    clear = quality_clear(classes, ingest.SENSORS["sentinel2-l2a"]["quality"])
    # 0 no data, 1 saturated, 3 cloud shadow, 8 cloud medium, 9 cloud high, 10 cirrus, 11 snow -> masked
    # 2 dark area, 4 vegetation, 5 bare soil, 6 water, 7 unclassified -> kept
    assert dict(zip(classes.tolist(), clear.tolist(), strict=True)) == {
        0: False, 1: False, 2: True, 3: False, 4: True, 5: True,
        6: True, 7: True, 8: False, 9: False, 10: False, 11: False,
    }


def test_landsat_qa_bits_0_to_4_masked():
    rule = ingest.SENSORS["landsat-c2-l2"]["quality"]
    # 21824 = 0b0101_0101_0100_0000 = bits 6 (clear), 8, 10, 12, 14 (low-confidence flags) -> clear
    # 22280 = 0b0101_0111_0000_1000 = bits 3 (cloud), 8, 9, 10, 12, 14 -> masked by bit 3
    # 1, 2, 4, 8, 16 = bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow -> masked
    # 32 = bit 5 snow, 64 = bit 6 clear, 128 = bit 7 water -> not in bits 0–4, kept
    assert 21824 == (1 << 6) | (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)
    assert 22280 == (1 << 3) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 12) | (1 << 14)
    qa = np.array([21824, 22280, 1, 2, 4, 8, 16, 32, 64, 128, 31, 0], dtype=np.uint16)
    expected = [True, False, False, False, False, False, False, True, True, True, False, True]
    assert quality_clear(qa, rule).tolist() == expected


def test_scl_at_20_m_is_resampled_nearest_onto_the_10_m_grid(tmp_path):
    red = write_tif(tmp_path / "r.tif", RED_DN_PRE + 1000)
    nir = write_tif(tmp_path / "n.tif", NIR_DN_PRE + 1000)
    scl = write_tif(tmp_path / "scl.tif", SCL_20M, transform=Affine(20.0, 0.0, 350000.0, 0.0, -20.0, 3460060.0))
    scene = s2("a", red, nir, scl)
    r, n, clear = read_scene_window(scene, GRID, FULL)
    # each 20 m class spreads over its 2 × 2 block of 10 m pixels
    expected = np.kron(np.isin(SCL_20M, [4, 5, 6, 7]), np.ones((2, 2), dtype=bool))
    assert expected.sum() == 20  # five clear 20 m pixels × 4
    np.testing.assert_array_equal(clear, expected)
    # the quality band masks, it does not blank the reflectance
    np.testing.assert_allclose(r, RED_REFL, atol=1e-7)
    stats = ingest.scene_statistics([scene], GRID, block_rows=4)
    assert stats["scenes"][0]["clear_pct"] == pytest.approx(100 * 20 / 48)


def test_landsat_qa_band_from_file(tmp_path):
    qa = np.full(GRID.shape, 21824, np.uint16)
    qa[0, :] = [22280, 1, 2, 4, 8, 16, 32, 128]
    scene = landsat(
        "l", write_tif(tmp_path / "r.tif", np.full(GRID.shape, 10000, np.uint16)),
        write_tif(tmp_path / "n.tif", np.full(GRID.shape, 30000, np.uint16)), write_tif(tmp_path / "qa.tif", qa),
    )
    _, _, clear = read_scene_window(scene, GRID, FULL)
    assert clear[0].tolist() == [False, False, False, False, False, False, True, True]
    assert clear[1:].all()


@pytest.mark.parametrize("declared", [None, 0], ids=["undeclared", "declared"])
def test_dn_zero_is_nodata(tmp_path, declared):
    red = RED_DN_PRE + 1000
    nir = NIR_DN_PRE + 1000
    red[2, 3] = 0
    nir[4, 6] = 0
    scene = s2("a", write_tif(tmp_path / "r.tif", red, nodata=declared), write_tif(tmp_path / "n.tif", nir, nodata=declared))
    r, n, clear = read_scene_window(scene, GRID, FULL)
    assert np.isnan(r[2, 3]) and np.isfinite(n[2, 3])
    assert np.isnan(n[4, 6]) and np.isfinite(r[4, 6])
    assert np.isfinite(r).sum() == 47 and np.isfinite(n).sum() == 47
    assert not clear[2, 3] and not clear[4, 6]
    assert clear.sum() == 46
    assert np.isnan(ndvi(r, n)[2, 3])  # never a reflectance of -0.1 or an NDVI from it


def test_scene_covering_part_of_the_grid_is_nan_outside(tmp_path):
    # a 6 × 4 scene on the western half: the eastern half is outside the scene
    red = write_tif(tmp_path / "r.tif", (RED_DN_PRE + 1000)[:, :4])
    nir = write_tif(tmp_path / "n.tif", (NIR_DN_PRE + 1000)[:, :4])
    r, n, clear = read_scene_window(s2("west", red, nir), GRID, FULL)
    np.testing.assert_allclose(r[:, :4], RED_REFL[:, :4], atol=1e-7)
    assert np.isnan(r[:, 4:]).all() and np.isnan(n[:, 4:]).all()
    assert clear[:, :4].all() and not clear[:, 4:].any()


def test_windowed_read_equals_full_read(tmp_path):
    scl = write_tif(tmp_path / "scl.tif", SCL_20M, transform=Affine(20.0, 0.0, 350000.0, 0.0, -20.0, 3460060.0))
    scene = s2("a", write_tif(tmp_path / "r.tif", RED_DN_PRE + 1000), write_tif(tmp_path / "n.tif", NIR_DN_PRE + 1000), scl)
    full = read_scene_window(scene, GRID, FULL)
    part = read_scene_window(scene, GRID, Window(0, 3, 8, 2))  # rows 3–4
    for a, b in zip(full, part, strict=True):
        np.testing.assert_array_equal(a[3:5], b)


# ----------------------------------------------------------------------------- warping another CRS


def test_scene_in_another_utm_zone_is_warped_onto_the_grid(tmp_path):
    # The same area written in UTM 50N; uniform DNs survive bilinear warping unchanged.
    transform, width, height = utm50_transform()
    red = write_tif(tmp_path / "r.tif", np.full((height, width), 3000, np.uint16), transform, "EPSG:32650")
    nir = write_tif(tmp_path / "n.tif", np.full((height, width), 5000, np.uint16), transform, "EPSG:32650")
    scl = write_tif(tmp_path / "scl.tif", np.full((height, width), 4, np.uint8), transform, "EPSG:32650")
    scene = s2("utm50", red, nir, scl, date="2021-06-15")  # pre-2022: ρ = DN / 10000
    check_scene(scene, GRID)  # overlaps once reprojected
    r, n, clear = read_scene_window(scene, GRID, FULL)
    assert r.shape == GRID.shape
    np.testing.assert_allclose(r, 0.3, atol=1e-7)
    np.testing.assert_allclose(n, 0.5, atol=1e-7)
    assert clear.all()


def test_warping_never_blends_fill_into_data(tmp_path):
    # A 60 m × 60 m hole of DN 0 (fill, not declared as nodata in the file, as in many JP2s) in the
    # middle of a uniform NIR band in UTM 50N. Each grid pixel must be either NaN or the true
    # 0.5 — never a bilinear mix of 0.5 and fill (which would read as a darker, real-looking NIR).
    transform, width, height = utm50_transform()
    nir = np.full((height, width), 5000, np.uint16)
    nir[height // 2 - 3: height // 2 + 3, width // 2 - 3: width // 2 + 3] = 0
    red = write_tif(tmp_path / "r.tif", np.full((height, width), 3000, np.uint16), transform, "EPSG:32650")
    scene = s2("holey", red, write_tif(tmp_path / "n.tif", nir, transform, "EPSG:32650"), date="2021-06-15")
    r, n, clear = read_scene_window(scene, GRID, FULL)
    valid = np.isfinite(n)
    assert 0 < valid.sum() < valid.size  # the hole is seen, the rest survives
    np.testing.assert_allclose(n[valid], 0.5, atol=1e-7)
    np.testing.assert_array_equal(clear, valid)
    np.testing.assert_allclose(r, 0.3, atol=1e-7)


# ----------------------------------------------------------------------------- season filter


def test_in_season_bounds_are_inclusive():
    def at(datetime: str) -> Scene:
        return Scene(datetime, datetime, "sentinel2-l2a", "r", "n", None, 1e-4, -0.1)

    scenes = [at(d) for d in (
        "2023-03-31T23:59:59Z", "2023-04-01T00:00:00Z", "2023-07-01", "2023-10-31T23:59:59Z",
        "2023-11-01T00:00:00Z", "2024-06-01", "2022-06-01",
    )]
    kept = in_season(scenes, 2023, {"start": "04-01", "end": "10-31"})
    assert [s.scene_id for s in kept] == ["2023-04-01T00:00:00Z", "2023-07-01", "2023-10-31T23:59:59Z"]
    assert in_season(scenes, 2024, {"start": "04-01", "end": "10-31"})[0].scene_id == "2024-06-01"
    assert in_season(scenes, 2023, {"start": "07-01", "end": "07-01"})[0].scene_id == "2023-07-01"


# ----------------------------------------------------------------------------- scenes table


@pytest.fixture
def scene_files(tmp_path) -> Path:
    """Band files in tmp_path/imagery/; tables refer to them relative to that folder."""
    folder = tmp_path / "imagery"
    folder.mkdir()
    write_tif(folder / "red.tif", RED_DN_PRE + 1000)
    write_tif(folder / "nir.tif", NIR_DN_PRE + 1000)
    write_tif(folder / "scl.tif", SCL_20M, transform=Affine(20.0, 0.0, 350000.0, 0.0, -20.0, 3460060.0))
    write_tif(folder / "qa.tif", np.full(GRID.shape, 21824, np.uint16))
    return folder


def write_table(folder: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    path = folder / "scenes.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


ROW = {"scene_id": "s2_a", "datetime": "2023-06-15T02:30:00Z", "sensor": "sentinel2-l2a",
       "red": "red.tif", "nir": "nir.tif", "scl": "scl.tif", "qa_pixel": "",
       "processing_baseline": "", "boa_add_offset": ""}


def test_read_scenes_table_resolves_sorts_and_harmonises(scene_files):
    rows = [
        {**ROW, "scene_id": "late", "datetime": "2023-08-01"},
        {**ROW, "scene_id": "old_baseline", "datetime": "2023-07-01", "processing_baseline": "03.01", "scl": ""},
        {**ROW, "scene_id": "early_forced", "datetime": "2021-05-01", "boa_add_offset": "-1000"},
        {**ROW, "scene_id": "landsat", "datetime": "2023-07-01", "sensor": "Landsat-C2-L2", "scl": "", "qa_pixel": "qa.tif"},
    ]
    scenes = ingest.read_scenes_table(write_table(scene_files, rows))
    # sorted by datetime, then id
    assert [s.scene_id for s in scenes] == ["early_forced", "landsat", "old_baseline", "late"]
    by_id = {s.scene_id: s for s in scenes}
    assert by_id["late"].offset == pytest.approx(-0.1)  # from the date
    assert by_id["old_baseline"].offset == 0.0  # the baseline column overrides the date
    assert by_id["early_forced"].offset == pytest.approx(-0.1)  # the offset column overrides the date
    assert (by_id["landsat"].scale, by_id["landsat"].offset) == (2.75e-5, -0.2)
    assert by_id["landsat"].sensor == "landsat-c2-l2"
    assert by_id["landsat"].quality == str((scene_files / "qa.tif").resolve())
    assert by_id["old_baseline"].quality is None  # empty quality column: no quality mask
    assert by_id["late"].red == str((scene_files / "red.tif").resolve())
    assert by_id["late"].date == dt.date(2023, 8, 1)
    assert by_id["late"].to_dict()["scene_id"] == "late"


def test_read_scenes_table_minimal_columns(scene_files):
    rows = [{k: ROW[k] for k in ingest.REQUIRED_COLUMNS}]
    (scene,) = ingest.read_scenes_table(write_table(scene_files, rows))
    assert scene.quality is None
    r, _, clear = read_scene_window(scene, GRID, FULL)
    np.testing.assert_allclose(r, RED_REFL, atol=1e-7)
    assert clear.all()


def test_scenes_table_not_found(tmp_path):
    with pytest.raises(InputDataError, match=r"nowhere\.csv: scenes table not found"):
        ingest.read_scenes_table(tmp_path / "nowhere.csv")


def test_scenes_table_missing_column(scene_files):
    rows = [{k: v for k, v in ROW.items() if k != "nir"}]
    with pytest.raises(InputDataError) as err:
        ingest.read_scenes_table(write_table(scene_files, rows))
    msg = str(err.value)
    assert "scenes.csv" in msg and "missing column(s) ['nir']" in msg


def test_scenes_table_without_rows(scene_files):
    with pytest.raises(InputDataError, match="no rows"):
        ingest.read_scenes_table(write_table(scene_files, [], columns=list(ROW)))


def test_scenes_table_unknown_sensor(scene_files):
    rows = [ROW, {**ROW, "scene_id": "s3", "sensor": "sentinel3-olci"}]
    with pytest.raises(InputDataError) as err:
        ingest.read_scenes_table(write_table(scene_files, rows))
    msg = str(err.value)
    assert "scenes.csv row 3 (scene 's3')" in msg  # row 1 is the header
    assert "'sentinel3-olci'" in msg and "landsat-c2-l2" in msg and "sentinel2-l2a" in msg


def test_scenes_table_bad_date(scene_files):
    rows = [{**ROW, "datetime": "2023-13-01"}]
    with pytest.raises(InputDataError) as err:
        ingest.read_scenes_table(write_table(scene_files, rows))
    msg = str(err.value)
    assert "scenes.csv row 2 (scene 's2_a')" in msg and "'2023-13-01'" in msg and "ISO 8601" in msg


def test_scenes_table_missing_file(scene_files):
    rows = [{**ROW, "nir": "B08_missing.tif"}]
    with pytest.raises(InputDataError) as err:
        ingest.read_scenes_table(write_table(scene_files, rows))
    msg = str(err.value)
    assert "row 2 (scene 's2_a')" in msg
    assert "nir file" in msg and str(scene_files / "B08_missing.tif") in msg and "not found" in msg


def test_scenes_table_empty_band_column(scene_files):
    rows = [{**ROW, "red": ""}]
    with pytest.raises(InputDataError, match=r"row 2 \(scene 's2_a'\): column 'red' is empty"):
        ingest.read_scenes_table(write_table(scene_files, rows))


def test_scenes_table_reports_every_bad_row_at_once(scene_files):
    rows = [
        {**ROW, "scene_id": "a", "sensor": "modis"},
        {**ROW, "scene_id": "b", "datetime": "15/06/2023"},
        {**ROW, "scene_id": "c", "red": "nope.tif"},
    ]
    with pytest.raises(InputDataError) as err:
        ingest.read_scenes_table(write_table(scene_files, rows))
    msg = str(err.value)
    assert "row 2 (scene 'a')" in msg and "row 3 (scene 'b')" in msg and "row 4 (scene 'c')" in msg


def test_scenes_table_duplicate_scene_id(scene_files):
    rows = [ROW, {**ROW, "datetime": "2023-07-01"}]
    with pytest.raises(InputDataError) as err:
        ingest.read_scenes_table(write_table(scene_files, rows))
    msg = str(err.value)
    assert "scenes.csv" in msg and "duplicate scene_id ['s2_a']" in msg


# ----------------------------------------------------------------------------- check_scene


def test_check_scene_accepts_an_overlapping_scene(scene_files):
    warnings = check_scene(s2("ok", str(scene_files / "red.tif"), str(scene_files / "nir.tif"), str(scene_files / "scl.tif")), GRID)
    # accepted: no error; the bands are in the grid's CRS (nothing reprojected). The only warnings are the
    # fill look of the hand-made 4 x 4 bands' minimum value (one per reflectance band), not about the scene
    assert [w.split(":")[1].split()[0] for w in warnings] == ["red.tif", "nir.tif"], warnings
    assert all("nodata value in use" in w and "reprojected" not in w for w in warnings), warnings


def test_check_scene_refuses_a_band_without_crs(tmp_path):
    red = write_tif(tmp_path / "r.tif", RED_DN_PRE)
    nir = write_tif(tmp_path / "n_nocrs.tif", NIR_DN_PRE, crs=None)
    with pytest.raises(InputDataError) as err:
        check_scene(s2("T51RUQ_20230615", red, nir), GRID)
    msg = str(err.value)
    assert "scene T51RUQ_20230615" in msg and "nir band" in msg and "n_nocrs.tif" in msg and "no CRS" in msg


def test_check_scene_refuses_a_scene_outside_the_grid(tmp_path):
    far = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 3460060.0)  # 50 km east
    red = write_tif(tmp_path / "r.tif", RED_DN_PRE, transform=far)
    nir = write_tif(tmp_path / "n.tif", NIR_DN_PRE, transform=far)
    with pytest.raises(InputDataError) as err:
        check_scene(s2("far_away", red, nir), GRID)
    msg = str(err.value)
    assert "scene far_away" in msg and "does not overlap" in msg and "EPSG:32651" in msg


def test_check_scene_refuses_an_unreadable_band(tmp_path):
    red = write_tif(tmp_path / "r.tif", RED_DN_PRE)
    bad = tmp_path / "n.tif"
    bad.write_text("not a raster")
    with pytest.raises(InputDataError, match=r"scene broken: nir band .*n\.tif cannot be read"):
        check_scene(s2("broken", red, str(bad)), GRID)


# ============================================================================= sensor profiles
#
# Profiles are data: the built-in ones can be changed and new ones added from the config
# (imagery.profiles). Each new profile below is read from tiny files with hand-computed values.


def write_bands(path: Path, bands: np.ndarray, nodata: float | None = None, driver: str = "GTiff",
                transform: Affine = GRID.transform, crs: str = CRS, **opts) -> str:
    """A multi-band file (bands, rows, cols) on the test grid."""
    with rasterio.open(path, "w", driver=driver, width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                       dtype=bands.dtype, crs=crs, transform=transform, nodata=nodata, **opts) as dst:
        dst.write(bands)
    return str(path)


def test_builtin_profiles_are_valid_data():
    for name, profile in ingest.PROFILES.items():
        assert ingest.profile_problems(profile, name) == [], name
        assert set(ingest.PROFILE_KEYS) - {"base"} <= set(profile), name
    assert ingest.SENSORS is ingest.PROFILES  # the former name still works


def test_profile_override_changes_only_the_keys_given():
    profiles = ingest.resolve_profiles({"landsat-c2-l2": {"nodata": 1, "bands": {"nir": 2}}})
    p = profiles["landsat-c2-l2"]
    assert p["nodata"] == 1
    assert p["bands"] == {"red": 1, "nir": 2, "quality": 1}  # merged band by band
    assert (p["scale"], p["offset"], p["quality"]) == (2.75e-5, -0.2, {"rule": "bits", "masked": [0, 1, 2, 3, 4]})
    assert ingest.PROFILES["landsat-c2-l2"]["nodata"] == 0  # the built-in table is not changed
    assert set(profiles) == set(ingest.PROFILES)


def test_new_profiles_from_a_base_or_from_scratch():
    profiles = ingest.resolve_profiles({
        "four-band": {"scale": 1e-4, "bands": {"red": 3, "nir": 4}, "quality": {"rule": "classes", "clear": [1]}},
        "l1c-fill": {"base": "sentinel2-l1c", "nodata": 65535, "nodata_override": True},
    })
    new = profiles["four-band"]
    # from scratch: no offset, no offset rule, no nodata unless given
    assert (new["scale"], new["offset"], new["offset_rule"], new["nodata"]) == (1e-4, 0.0, "none", None)
    assert new["bands"] == {"red": 3, "nir": 4, "quality": 1}
    based = profiles["l1c-fill"]
    assert based["offset_rule"] == "sentinel2-baseline" and based["nodata"] == 65535 and based["base"] == "sentinel2-l1c"
    # a new profile's harmonisation follows its base: L1C after 2022-01-25 has RADIO_ADD_OFFSET -1000
    assert harmonisation(based, dt.date(2023, 6, 1))[1] == pytest.approx(-0.1)
    assert harmonisation("four-band", dt.date(2023, 6, 1), profiles=profiles) == (1e-4, 0.0)


def test_bad_profiles_are_reported_together():
    with pytest.raises(ConfigError) as err:
        ingest.resolve_profiles({
            "a": {"offset": 0.1},  # new, no scale, no base
            "b": {"base": "modis"},
            "c": {"scale": -1},
            "d": {"scale": 1, "quality": {"rule": "bits", "masked": [0], "clear": [1]}},
            "e": {"scale": 1, "qualty": None},
            "f": {"scale": 1, "bands": {"nir": 0}},
            "g": {"scale": 1, "quality": {"rule": "bits", "masked": [64]}},
            "h": {"scale": 1, "offset_rule": "landsat"},
        })
    msg = str(err.value)
    assert "imagery.profiles.a.scale: required for a new profile" in msg
    assert "imagery.profiles.b.base: 'modis' is not a built-in profile" in msg
    assert "imagery.profiles.c.scale: must be a number > 0" in msg and "Got -1" in msg
    assert "imagery.profiles.d.quality: give exactly one of masked" in msg
    assert "imagery.profiles.e: unknown key(s) ['qualty']" in msg
    assert "imagery.profiles.f.bands.nir: must be a band index ≥ 1" in msg
    assert "imagery.profiles.g.quality.masked: must be a non-empty list of bit numbers 0–63" in msg
    assert "imagery.profiles.h.offset_rule" in msg and "'landsat'" in msg


def test_ga_pq_bits_clear_rule_hand_values():
    rule = ingest.PROFILES["ga-landsat-nbar"]["quality"]
    assert rule == {"rule": "bits", "clear": [2, 3, 10, 11, 12, 13]}
    # GA PQ25: a SET bit means the test passed. 16383 = bits 0-13 all set.
    cases = {
        16383: True,   # every test passed
        16127: True,   # 16383 − 2**8: not contiguous (a band such as thermal missing): not required for NDVI
        15871: True,   # − 2**9: sea (land/sea test): not a cloud test
        16382: True,   # − 2**0: blue saturated: not used by NDVI
        16379: False,  # − 2**2: red saturated
        16375: False,  # − 2**3: NIR saturated
        15359: False,  # − 2**10: cloud (ACCA)
        14335: False,  # − 2**11: cloud (Fmask)
        13311: False,  # − 2**10 − 2**11: both cloud tests failed (as in the Canberra scene)
        12287: False,  # − 2**12: cloud shadow (ACCA)
        8191: False,   # − 2**13: cloud shadow (Fmask)
        0: False,      # nothing passed
    }
    q = np.array(list(cases), dtype=np.uint16)
    assert quality_clear(q, rule).tolist() == list(cases.values())


def test_class_rule_with_clear_values():
    # a classification band where only class 1 is clear (e.g. a UDM "clear" band)
    q = np.array([0, 1, 2, 3])
    assert quality_clear(q, {"rule": "classes", "clear": [1]}).tolist() == [False, True, False, False]
    assert quality_clear(q, {"rule": "classes", "masked": [1]}).tolist() == [True, False, True, True]
    # bits, masked: a set bit 1 or 3 masks
    assert quality_clear(np.array([0, 2, 8, 4, 10]), {"rule": "bits", "masked": [1, 3]}).tolist() == [True, False, False, True, False]


def test_ga_landsat_nbar_reflectance_nodata_and_pq(tmp_path):
    # int16 NBAR × 10000 with nodata -999 declared in the file, as in ../shared/data/canberra
    red = np.full(GRID.shape, 500, np.int16)     # 500 / 10000 = 0.05
    nir = np.full(GRID.shape, 3000, np.int16)    # 0.30; NDVI = 0.25 / 0.35 = 0.714286
    red[0, 0] = -999                             # no data
    nir[5, 7] = 6101                             # 0.6101, the scene's brightest NIR
    pq = np.full(GRID.shape, 16383, np.uint16)
    pq[1, 1] = 13311                             # cloud
    pq[2, 2] = 16127                             # not contiguous: still clear for red/NIR
    pq[3, 3] = 16379                             # red saturated
    scene = ingest.make_scene("ls5", "1992-03-23", "ga-landsat-nbar", ingest.PROFILES["ga-landsat-nbar"],
                              write_tif(tmp_path / "B30.tif", red, nodata=-999), write_tif(tmp_path / "B40.tif", nir, nodata=-999),
                              write_tif(tmp_path / "pq.tif", pq))
    assert (scene.scale, scene.offset, scene.nodata) == (1e-4, 0.0, -999)
    r, n, clear = read_scene_window(scene, GRID, FULL)
    assert np.isnan(r[0, 0]) and not clear[0, 0]
    assert r[1, 0] == pytest.approx(0.05, abs=1e-7) and n[1, 0] == pytest.approx(0.30, abs=1e-7)
    assert n[5, 7] == pytest.approx(0.6101, abs=1e-7)
    assert ndvi(r, n)[1, 0] == pytest.approx(0.714286, abs=1e-6)
    assert not clear[1, 1] and clear[2, 2] and not clear[3, 3]
    assert clear.sum() == 48 - 3  # nodata, cloud, saturated


def test_naip_four_bands_in_one_file(tmp_path):
    # NAIP: R, G, B, NIR uint8 in one file, nodata 0; red is band 1, NIR band 4; ρ = DN / 255
    bands = np.zeros((4, *GRID.shape), np.uint8)
    bands[0] = 51    # red 51 / 255 = 0.2
    bands[1] = 90
    bands[2] = 70
    bands[3] = 204   # NIR 204 / 255 = 0.8; NDVI = 0.6 / 1.0 = 0.6
    bands[0, 0, 0] = 0  # nodata in red only
    path = write_bands(tmp_path / "m_4709963_se_14_1_20090818.tif", bands, nodata=0)
    scene = ingest.make_scene("naip", "2009-08-18", "naip", ingest.PROFILES["naip"], path, path, None)
    assert (scene.red_band, scene.nir_band) == (1, 4)
    r, n, clear = read_scene_window(scene, GRID, FULL)
    assert r[0, 1] == pytest.approx(0.2, abs=1e-7) and n[0, 1] == pytest.approx(0.8, abs=1e-7)
    assert ndvi(r, n)[0, 1] == pytest.approx(0.6, abs=1e-6)
    assert np.isnan(r[0, 0]) and clear.sum() == 47
    assert check_scene(scene, GRID) == []  # nothing suspicious


def test_sentinel2_l1c_jpeg2000_offset_and_no_quality(tmp_path):
    # L1C TOA × 10000 in JPEG2000 with no nodata tag (as the Brandenburg tiles); DN 0 is the profile's nodata
    red = np.full(GRID.shape, 1500, np.uint16)
    nir = np.full(GRID.shape, 4000, np.uint16)
    red[2, 2] = 0
    opts = {"QUALITY": 100, "REVERSIBLE": "YES"}
    red_p = write_bands(tmp_path / "T51RUQ_20170216T102101_B04.jp2", red[np.newaxis], driver="JP2OpenJPEG", **opts)
    nir_p = write_bands(tmp_path / "T51RUQ_20170216T102101_B08.jp2", nir[np.newaxis], driver="JP2OpenJPEG", **opts)
    profile = ingest.PROFILES["sentinel2-l1c"]
    old = ingest.make_scene("2017", "2017-02-16", "sentinel2-l1c", profile, red_p, nir_p, None)
    new = ingest.make_scene("2023", "2023-06-15", "sentinel2-l1c", profile, red_p, nir_p, None)
    forced = ingest.make_scene("b", "2017-02-16", "sentinel2-l1c", profile, red_p, nir_p, None, baseline="04.00")
    r_old, n_old, clear = read_scene_window(old, GRID, FULL)
    r_new, _, _ = read_scene_window(new, GRID, FULL)
    assert r_old[0, 0] == pytest.approx(0.15, abs=1e-7) and n_old[0, 0] == pytest.approx(0.40, abs=1e-7)  # 1500 / 10000
    assert r_new[0, 0] == pytest.approx(0.05, abs=1e-7)  # (1500 − 1000) / 10000 after baseline 04.00
    assert forced.offset == pytest.approx(-0.1)
    assert np.isnan(r_old[2, 2]) and clear.sum() == 47  # no quality band: clear wherever there is data


def test_custom_profile_with_bands_quality_and_nodata_override(tmp_path):
    # A 5-band uint16 product: bands 3 (red) and 4 (NIR) ×10000, band 5 a clear flag (1 clear, 0 not);
    # its fill is 65535 although the file declares nodata 0, so the profile overrides it.
    bands = np.zeros((5, *GRID.shape), np.uint16)
    bands[2] = 800    # red 0.08
    bands[3] = 2800   # NIR 0.28; NDVI 0.2 / 0.36 = 0.555556
    bands[4] = 1
    bands[4, 0, :] = 0          # first row not clear
    bands[2, 5, 7] = 65535      # fill in red
    bands[3, 5, 6] = 0          # a real zero NIR (dark water), not fill
    path = write_bands(tmp_path / "x.tif", bands, nodata=0)
    profiles = ingest.resolve_profiles({"five-band": {
        "scale": 1e-4, "nodata": 65535, "nodata_override": True, "bands": {"red": 3, "nir": 4, "quality": 5},
        "quality": {"rule": "classes", "clear": [1]}}})
    scene = ingest.make_scene("x", "2024-05-01", "five-band", profiles["five-band"], path, path, path)
    r, n, clear = read_scene_window(scene, GRID, FULL)
    assert ndvi(r, n)[1, 0] == pytest.approx(0.555556, abs=1e-6)
    assert np.isnan(r[5, 7])                       # 65535 is no data
    assert n[5, 6] == 0.0 and clear[5, 6]          # 0 is data under the override
    assert not clear[0].any() and clear[1:].sum() == 5 * 8 - 1


def test_scene_record_round_trips_through_json(tmp_path):
    path = write_bands(tmp_path / "n.tif", np.full((4, *GRID.shape), 100, np.uint8), nodata=0)
    scene = ingest.make_scene("n", "2010-06-29", "naip", ingest.PROFILES["naip"], path, path, None)
    record = json.loads(json.dumps({**scene.to_dict(), "clear_pct": 100.0, "masked_pct": 0.0}))
    assert Scene.from_dict(record) == scene


def test_legacy_scene_takes_its_builtin_profile():
    scene = Scene("a", "2023-06-15", "landsat-c2-l2", "r", "n", "qa", 2.75e-5, -0.2)
    assert scene.quality_rule == {"rule": "bits", "masked": [0, 1, 2, 3, 4]} and scene.nodata == 0
    assert (scene.red_band, scene.nir_band, scene.quality_band) == (1, 1, 1)
    assert Scene("b", "2023-06-15", "naip", "f", "f", None, 1 / 255, 0.0).nir_band == 4


def test_scenes_table_with_new_profiles(tmp_path):
    write_tif(tmp_path / "b3.tif", np.full(GRID.shape, 500, np.int16), nodata=-999)
    pq = write_tif(tmp_path / "pq.tif", np.full(GRID.shape, 16383, np.uint16))
    write_bands(tmp_path / "naip.tif", np.full((4, *GRID.shape), 100, np.uint8), nodata=0)
    rows = [
        {"scene_id": "ls5", "datetime": "1992-03-23", "sensor": "ga-landsat-nbar", "red": "b3.tif", "nir": "b3.tif", "pq": "pq.tif"},
        {"scene_id": "naip", "datetime": "2009-08-18", "sensor": "naip", "red": "naip.tif", "nir": "naip.tif", "pq": "pq.tif"},
        {"scene_id": "l1c", "datetime": "2023-06-01", "sensor": "sentinel2-l1c", "red": "naip.tif", "nir": "naip.tif", "pq": "",
         "radio_add_offset": "0"},
    ]
    rows = [{**row, "quality": ""} for row in rows]  # pq is not naip's quality column: ignored for it
    path = tmp_path / "scenes.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    by_id = {s.scene_id: s for s in ingest.read_scenes_table(path)}
    assert by_id["ls5"].quality == pq and by_id["ls5"].quality_rule["clear"] == [2, 3, 10, 11, 12, 13]
    assert by_id["naip"].nir_band == 4 and by_id["naip"].quality is None
    assert by_id["l1c"].offset == 0.0  # radio_add_offset 0 overrides the date
    # a quality file (in the generic quality column) for a profile without a quality rule is refused
    rows[1]["quality"] = "pq.tif"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(InputDataError, match=r"row 3 \(scene 'naip'\): a quality file is given but profile 'naip' has no quality rule"):
        ingest.read_scenes_table(path)


# ============================================================================= scenes from globs


def naip_files(folder: Path, dates=("20090818", "20100629", "20120731")) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    bands = np.full((4, *GRID.shape), 100, np.uint8)
    return [write_bands(folder / f"m_4709963_se_14_1_{d}.tif", bands, nodata=0) for d in dates]


def test_files_with_every_band_in_one_file(tmp_path):
    naip_files(tmp_path / "naip")
    scenes = ingest.scenes_from_files([{"path": str(tmp_path / "naip/m_*.tif"), "profile": "naip",
                                        "pattern": r"_(?P<date>\d{8})\.tif$"}])
    assert [s.scene_id for s in scenes] == ["m_4709963_se_14_1_20090818", "m_4709963_se_14_1_20100629", "m_4709963_se_14_1_20120731"]
    assert [s.datetime for s in scenes] == ["2009-08-18", "2010-06-29", "2012-07-31"]
    s = scenes[0]
    assert s.red == s.nir == str((tmp_path / "naip/m_4709963_se_14_1_20090818.tif").resolve())
    assert (s.red_band, s.nir_band, s.quality, s.scale) == (1, 4, None, 1 / 255)
    # the default pattern (first YYYYMMDD not inside a longer number) finds the same dates
    default = ingest.scenes_from_files([{"path": str(tmp_path / "naip/*.tif"), "profile": "naip"}])
    assert [x.datetime for x in default] == [x.datetime for x in scenes]


def test_files_one_band_per_file_matched_by_date_and_scene(tmp_path):
    # Landsat C2 L2 names: two path/rows on one date; the scene group tells them apart
    for pr in ("123044", "123045"):
        for band, value in (("SR_B4", 10000), ("SR_B5", 30000), ("QA_PIXEL", 21824)):
            write_tif(tmp_path / f"LC08_L2SP_{pr}_20230616_20230622_02_T1_{band}.TIF", np.full(GRID.shape, value, np.uint16))
    entry = {"red": str(tmp_path / "*_SR_B4.TIF"), "nir": str(tmp_path / "*_SR_B5.TIF"), "quality": str(tmp_path / "*_QA_PIXEL.TIF"),
             "profile": "landsat-c2-l2", "pattern": r"_(?P<scene>\d{6})_(?P<date>\d{8})_"}
    scenes = ingest.scenes_from_files([entry])
    assert [s.scene_id for s in scenes] == ["landsat-c2-l2_123044_20230616", "landsat-c2-l2_123045_20230616"]
    s = scenes[0]
    assert s.red.endswith("123044_20230616_20230622_02_T1_SR_B4.TIF") and s.nir.endswith("123044_20230616_20230622_02_T1_SR_B5.TIF")
    assert s.quality.endswith("123044_20230616_20230622_02_T1_QA_PIXEL.TIF")
    r, n, clear = read_scene_window(s, GRID, FULL)
    np.testing.assert_allclose(r, 0.075, atol=1e-7)  # 10000 × 0.0000275 − 0.2
    assert clear.all()
    # without the scene group two red files share one date: refused, with the fix
    with pytest.raises(InputDataError) as err:
        ingest.scenes_from_files([{**entry, "pattern": r"_(?P<date>\d{8})_"}])
    msg = str(err.value)
    assert "imagery.files[0]: 2 red files for the scene of 2023-06-16" in msg and "(?P<scene>" in msg


def test_files_sentinel2_baseline_from_the_product_name(tmp_path):
    for b, v in (("B04", 1500), ("B08", 4000)):
        write_tif(tmp_path / f"S2B_MSIL1C_20230615T023529_N0509_R089_T51RUQ_{b}.tif", np.full(GRID.shape, v, np.uint16))
        write_tif(tmp_path / f"S2B_MSIL1C_20230720T023529_N0301_R089_T51RUQ_{b}.tif", np.full(GRID.shape, v, np.uint16))
    entry = {"red": str(tmp_path / "*_B04.tif"), "nir": str(tmp_path / "*_B08.tif"), "profile": "sentinel2-l1c",
             "pattern": r"_(?P<date>\d{8})T\d{6}_N(?P<baseline>\d{4})_"}
    june, july = ingest.scenes_from_files([entry])
    assert june.offset == pytest.approx(-0.1)  # N0509 ≥ 04.00
    assert july.offset == 0.0  # N0301 wins over the date (a reprocessed old baseline)


def test_files_date_from_a_metadata_tag(tmp_path):
    path = write_bands(tmp_path / "ortho.tif", np.full((4, *GRID.shape), 100, np.uint8), nodata=0)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="2021:07:04 10:00:00")
    (scene,) = ingest.scenes_from_files([{"path": path, "profile": "naip", "date_tag": "TIFFTAG_DATETIME"}])
    assert scene.date == dt.date(2021, 7, 4) and scene.scene_id == "ortho"
    with pytest.raises(InputDataError, match=r"ortho\.tif has no metadata tag 'ACQUISITIONDATE'"):
        ingest.scenes_from_files([{"path": path, "profile": "naip", "date_tag": "ACQUISITIONDATE"}])


def test_date_from_text_formats():
    assert ingest.date_from_text("20230615") == dt.date(2023, 6, 15)
    assert ingest.date_from_text("2023-06-15") == dt.date(2023, 6, 15)
    assert ingest.date_from_text("2023_06_15") == dt.date(2023, 6, 15)
    assert ingest.date_from_text("2023:06:15 10:00:00") == dt.date(2023, 6, 15)
    assert ingest.date_from_text("2023166") == dt.date(2023, 6, 15)  # day 166 of 2023
    with pytest.raises(ValueError):
        ingest.date_from_text("June")


def test_files_problems_are_reported_together(tmp_path):
    naip_files(tmp_path / "naip")
    write_tif(tmp_path / "T33UUU_20170216T102101_B04.tif", RED_DN_PRE)  # a red band without its NIR band
    write_tif(tmp_path / "undated_B04.tif", RED_DN_PRE)
    entries = [
        {"path": str(tmp_path / "nowhere/*.tif"), "profile": "naip"},
        {"path": str(tmp_path / "naip/*.tif"), "profile": "modis"},
        {"red": str(tmp_path / "*_B04.tif"), "nir": str(tmp_path / "*_B08.tif"), "profile": "sentinel2-l1c"},
        {"path": str(tmp_path / "naip/*.tif"), "red": "x", "profile": "naip"},
        {"path": str(tmp_path / "naip/*.tif"), "profile": "naip", "pattern": "(?P<date>[0-9]{8}"},
        {"path": str(tmp_path / "naip/*.tif"), "profile": "naip", "pattern": r"\d{8}"},
        {"path": str(tmp_path / "naip/*.tif"), "profile": "naip", "quality": str(tmp_path / "naip/*.tif")},
    ]
    with pytest.raises(InputDataError) as err:
        ingest.scenes_from_files(entries)
    msg = str(err.value)
    assert f"imagery.files[0].path: {str(tmp_path / 'nowhere/*.tif')!r} matches no file" in msg
    assert "imagery.files[1].profile: must name a sensor profile" in msg and "'modis'" in msg
    assert "imagery.files[2].nir:" in msg and "matches no file" in msg
    assert "imagery.files[3]: give either path" in msg
    assert "imagery.files[4].pattern: not a valid regular expression" in msg
    assert "imagery.files[5].pattern: needs a named group date" in msg
    assert "imagery.files[6].quality: profile 'naip' has no quality rule" in msg


def test_files_missing_band_and_undated_file(tmp_path):
    write_tif(tmp_path / "T33UUU_20170216T102101_B04.tif", RED_DN_PRE)
    write_tif(tmp_path / "T33UUU_20170216T102101_B08.tif", NIR_DN_PRE)
    write_tif(tmp_path / "T33UUU_20170301T102101_B04.tif", RED_DN_PRE)  # its B08 is missing
    write_tif(tmp_path / "T33UUU_latest_B08.tif", NIR_DN_PRE)  # no date in the name
    with pytest.raises(InputDataError) as err:
        ingest.scenes_from_files([{"red": str(tmp_path / "*_B04.tif"), "nir": str(tmp_path / "*_B08.tif"), "profile": "sentinel2-l1c"}])
    msg = str(err.value)
    assert "no nir file for the scene of 2017-03-01" in msg and "T33UUU_20170301T102101_B04.tif" in msg
    assert "T33UUU_latest_B08.tif does not match pattern" in msg and "imagery.files[0].pattern" in msg


def test_imagery_inputs_per_year_and_problems(tmp_path, monkeypatch):
    naip_files(tmp_path / "naip")
    monkeypatch.chdir(tmp_path)  # relative globs start in the run directory
    cfg = {"imagery": {"source": "local", "files": [{"path": "naip/m_*.tif", "profile": "naip"}]},
           "season": {"start": "06-01", "end": "09-30"}, "demo": {"out_dir": "resources/demo"}}
    inputs = workflow.imagery_inputs(cfg, 2010)
    assert inputs == {"table": [], "images": [str((tmp_path / "naip/m_4709963_se_14_1_20100629.tif").resolve())]}
    assert len(workflow.imagery_inputs(cfg)["images"]) == 3
    assert workflow.imagery_inputs(cfg, 2011)["images"] == []
    assert workflow.imagery_inputs({**cfg, "imagery": {"source": "demo"}}, 2010) == {"table": ["resources/demo/imagery/scenes.csv"], "images": []}
    assert config.imagery_problems(cfg) == []
    bad = {**cfg, "imagery": {"source": "local", "profiles": {"naip": {"scale": 0}}, "files": [{"path": "x", "profile": "nope"}]}}
    problems = config.imagery_problems(bad)
    assert any(p.startswith("imagery.profiles.naip.scale") for p in problems)
    assert any(p.startswith("imagery.files[0].profile") for p in problems)
    assert "imagery.scenes" in config.imagery_problems({**cfg, "imagery": {"source": "local"}})[0]


def test_load_scenes_merges_table_and_files(tmp_path, monkeypatch):
    naip_files(tmp_path / "naip", dates=("20090818",))
    monkeypatch.chdir(tmp_path)
    table = tmp_path / "scenes.csv"
    pd.DataFrame([{"scene_id": "extra", "datetime": "2010-07-01", "sensor": "naip", "red": "naip/m_4709963_se_14_1_20090818.tif",
                   "nir": "naip/m_4709963_se_14_1_20090818.tif"}]).to_csv(table, index=False)
    imagery = {"source": "local", "files": [{"path": "naip/*.tif", "profile": "naip"}]}
    assert [s.scene_id for s in ingest.load_scenes(imagery, table)] == ["m_4709963_se_14_1_20090818", "extra"]
    pd.DataFrame([{"scene_id": "m_4709963_se_14_1_20090818", "datetime": "2010-07-01", "sensor": "naip",
                   "red": "naip/m_4709963_se_14_1_20090818.tif", "nir": "naip/m_4709963_se_14_1_20090818.tif"}]).to_csv(table, index=False)
    with pytest.raises(InputDataError, match="duplicate scene_id"):
        ingest.load_scenes(imagery, table)
    with pytest.raises(InputDataError, match="No scene is listed"):
        ingest.load_scenes({"source": "local"})


# ============================================================================= seasons across the new year


def test_season_wrapping_the_new_year_belongs_to_the_year_it_ends_in():
    season = {"start": "09-01", "end": "04-30"}  # a southern-hemisphere growing season
    assert ingest.season_window(2024, season) == (dt.date(2023, 9, 1), dt.date(2024, 4, 30))
    scenes = [Scene(d, d, "landsat-c2-l2", "r", "n", None, 2.75e-5, -0.2) for d in (
        "2023-08-31", "2023-09-01", "2024-03-01", "2024-04-30", "2024-05-01", "2024-09-15")]
    assert [s.scene_id for s in in_season(scenes, 2024, season)] == ["2023-09-01", "2024-03-01", "2024-04-30"]
    assert [s.scene_id for s in in_season(scenes, 2025, season)] == ["2024-09-15"]
    assert ingest.season_window(2024, {"start": "04-01", "end": "10-31"}) == (dt.date(2024, 4, 1), dt.date(2024, 10, 31))


# ============================================================================= one year: checks and masked share


def test_ingest_year_masked_share_hand_computed(tmp_path):
    # scene a: SCL at 20 m with 5 clear 20 m pixels = 20 of the 48 10 m pixels clear; scene b: no quality band.
    # Observations 2 × 48 = 96, clear 20 + 48 = 68: masked 28 / 96 = 29.1667 %.
    scl = write_tif(tmp_path / "scl.tif", SCL_20M, transform=Affine(20.0, 0.0, 350000.0, 0.0, -20.0, 3460060.0))
    red = write_tif(tmp_path / "r.tif", RED_DN_PRE + 1000)
    nir = write_tif(tmp_path / "n.tif", NIR_DN_PRE + 1000)
    scenes = [s2("a", red, nir, scl, date="2023-06-01"), s2("b", red, nir, date="2023-07-01"), s2("winter", red, nir, date="2023-01-10")]
    record = ingest.ingest_year(scenes, GRID, 2023, {"start": "04-01", "end": "10-31"}, block_rows=4)
    a, b = record["scenes"]
    assert a["clear_pct"] == pytest.approx(100 * 20 / 48) and a["valid_pct"] == 100.0
    assert a["masked_pct"] == pytest.approx(100 * 28 / 48)
    assert b["masked_pct"] == 0.0
    summary = record["summary"]
    assert summary["observations"] == 96 and summary["clear_observations"] == 68
    assert summary["masked_pct"] == pytest.approx(100 * 28 / 96)
    assert summary["area_seen_clear_pct"] == 100.0 and summary["n_scenes"] == 2
    assert record["excluded_out_of_season"] == ["winter"]
    assert record["season_dates"] == ["2023-04-01", "2023-10-31"]
    assert any("scene b: no quality band" in w for w in record["warnings"])
    assert Scene.from_dict(a) == scenes[0]  # the record rebuilds the scene for the composite stage


def test_ingest_year_leaves_out_a_scene_outside_the_area(tmp_path):
    far = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 3460060.0)  # 50 km east
    near = s2("near", write_tif(tmp_path / "r.tif", RED_DN_PRE), write_tif(tmp_path / "n.tif", NIR_DN_PRE), date="2021-06-01")
    away = s2("away", write_tif(tmp_path / "rf.tif", RED_DN_PRE, transform=far), write_tif(tmp_path / "nf.tif", NIR_DN_PRE, transform=far),
              date="2021-07-01")
    record = ingest.ingest_year([near, away], GRID, 2021, {"start": "04-01", "end": "10-31"})
    assert [s["scene_id"] for s in record["scenes"]] == ["near"]
    assert record["excluded_no_overlap"] == ["away"]
    assert any("scene away" in w and "does not overlap" in w and "left out of 2021" in w for w in record["warnings"])
    with pytest.raises(InputDataError) as err:
        ingest.ingest_year([away], GRID, 2021, {"start": "04-01", "end": "10-31"})
    msg = str(err.value)
    assert "2021: none of the 1 scene(s) in season overlaps the analysis area" in msg and "away" in msg and "EPSG:32651" in msg


def test_ingest_year_without_a_scene_in_season():
    scenes = [Scene("jan", "2023-01-10", "sentinel2-l2a", "r", "n", None, 1e-4, 0.0)]
    with pytest.raises(InputDataError) as err:
        ingest.ingest_year(scenes, GRID, 2023, {"start": "04-01", "end": "10-31"})
    msg = str(err.value)
    assert "2023: no scene in the season 2023-04-01 to 2023-10-31" in msg and "season.start" in msg


def test_ingest_year_warns_about_another_crs(tmp_path):
    transform, width, height = utm50_transform()
    red = write_tif(tmp_path / "r.tif", np.full((height, width), 3000, np.uint16), transform, "EPSG:32650")
    nir = write_tif(tmp_path / "n.tif", np.full((height, width), 5000, np.uint16), transform, "EPSG:32650")
    record = ingest.ingest_year([s2("utm50", red, nir, date="2021-06-15")], GRID, 2021, {"start": "04-01", "end": "10-31"})
    crs_warnings = [w for w in record["warnings"] if "reprojected" in w]
    assert len(crs_warnings) == 2  # red and nir
    assert "EPSG:32650" in crs_warnings[0] and "EPSG:32651" in crs_warnings[0]
    assert record["summary"]["area_seen_clear_pct"] == 100.0


def test_ingest_year_all_cloud_is_an_error_naming_the_scenes(tmp_path):
    red = write_tif(tmp_path / "r.tif", RED_DN_PRE + 1000)
    nir = write_tif(tmp_path / "n.tif", NIR_DN_PRE + 1000)
    cloud = write_tif(tmp_path / "scl.tif", np.full(GRID.shape, 9, np.uint8))
    with pytest.raises(InputDataError) as err:
        ingest.ingest_year([s2("c1", red, nir, cloud), s2("c2", red, nir, cloud, date="2023-07-01")], GRID, 2023,
                           {"start": "04-01", "end": "10-31"})
    msg = str(err.value)
    assert "2023: no clear pixel in any of the 2 scene(s)" in msg and "c1" in msg and "c2" in msg
    assert "imagery.profiles.<profile>.quality" in msg


def test_ingest_year_collects_unusable_files(tmp_path):
    three = write_bands(tmp_path / "three.tif", np.full((3, *GRID.shape), 100, np.uint8), nodata=0)
    naip3 = ingest.make_scene("naip3", "2020-08-31", "naip", ingest.PROFILES["naip"], three, three, None)
    good = write_tif(tmp_path / "r.tif", RED_DN_PRE)
    truncated = tmp_path / "n_cut.tif"
    truncated.write_bytes(Path(write_tif(tmp_path / "n_full.tif", NIR_DN_PRE)).read_bytes()[:8])  # the TIFF header only
    broken = s2("broken", good, str(truncated), date="2020-07-01")
    with pytest.raises(InputDataError) as err:
        ingest.ingest_year([naip3, broken], GRID, 2020, {"start": "04-01", "end": "10-31"})
    msg = str(err.value)
    assert "2020: 2 scene(s) cannot be used" in msg
    assert "scene naip3: nir file" in msg and "has 3 band(s) but profile 'naip' reads band 4" in msg and "imagery.profiles.naip.bands.nir" in msg
    assert "scene broken: nir band" in msg and "n_cut.tif" in msg and "cannot be read" in msg


def test_reading_a_corrupt_band_names_the_file(tmp_path):
    # a GeoTIFF whose header is intact but whose pixel data is cut off
    full = Path(write_tif(tmp_path / "n_full.tif", np.arange(48 * 100, dtype=np.uint16).reshape(60, 80),
                          transform=Affine(1.0, 0.0, 350000.0, 0.0, -1.0, 3460060.0)))
    cut = tmp_path / "n_cut.tif"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) - 4000])
    scene = s2("cut", str(full), str(cut), date="2021-06-01")
    with pytest.raises(InputDataError, match=r"n_cut\.tif: band 1 cannot be read .*truncated or corrupt"):
        read_scene_window(scene, GRID, FULL)


def test_suspect_nodata_warns_about_fill_the_nodata_misses(tmp_path):
    # GA NBAR declares nodata -999, but this file's fill is 0 along its top and bottom rows: 16 of 48 px,
    # and 20 of the 28 border pixels (8 + 8 in the top and bottom rows, 2 + 2 at the ends of the side columns)
    red = np.full(GRID.shape, 500, np.int16)
    red[[0, -1], :] = 0
    path = write_tif(tmp_path / "b30.tif", red, nodata=-999)
    msg = ingest.suspect_nodata(path, 1, -999, False, "ga-landsat-nbar")
    assert msg is not None
    assert "b30.tif band 1: 33.3 % of the pixels (and 71 % of the image border) are 0" in msg
    assert "nodata value in use is -999" in msg and "imagery.profiles.ga-landsat-nbar.nodata: 0 with nodata_override: true" in msg
    # a fill of -9999 (the band minimum) when the file declares 0
    red[[0, -1], :] = -9999
    msg = ingest.suspect_nodata(write_tif(tmp_path / "b30b.tif", red, nodata=0), 1, -999)
    assert "are -9999" in msg and "nodata value in use is 0 (declared by the file)" in msg
    # the same fill declared as nodata, or a clean band: nothing to say
    assert ingest.suspect_nodata(write_tif(tmp_path / "ok.tif", red, nodata=-9999), 1, None) is None
    assert ingest.suspect_nodata(write_tif(tmp_path / "clean.tif", np.full(GRID.shape, 500, np.int16)), 1, -999) is None
    # and ingest keeps the warning
    nir = write_tif(tmp_path / "b40.tif", np.full(GRID.shape, 3000, np.int16), nodata=-999)
    scene = ingest.make_scene("ls5", "1992-03-23", "ga-landsat-nbar", ingest.PROFILES["ga-landsat-nbar"], path, nir, None)
    record = ingest.ingest_year([scene], GRID, 1992, {"start": "01-01", "end": "12-31"})
    assert any("scene ls5: b30.tif band 1" in w for w in record["warnings"])


def test_reading_skips_windows_the_scene_does_not_reach(tmp_path):
    # a scene covering rows 0-1 only; a window of rows 4-5 is not read and comes back empty
    red = write_tif(tmp_path / "r.tif", (RED_DN_PRE + 1000)[:2])
    nir = write_tif(tmp_path / "n.tif", (NIR_DN_PRE + 1000)[:2])
    scene = s2("strip", red, nir)
    assert ingest.scene_window(scene, GRID, Window(0, 4, 8, 2)) is None
    assert ingest.scene_window(scene, GRID, FULL) == Window(0, 0, 8, 3)  # rows 0-1 and a one-pixel margin
    r, n, clear = read_scene_window(scene, GRID, Window(0, 4, 8, 2))
    assert r.shape == (2, 8) and np.isnan(r).all() and np.isnan(n).all() and not clear.any()
    r, _, clear = read_scene_window(scene, GRID, FULL)
    np.testing.assert_allclose(r[:2], RED_REFL[:2], atol=1e-7)
    assert np.isnan(r[2:]).all() and clear.sum() == 16


def test_files_date_and_baseline_from_a_safe_folder(tmp_path):
    # ESA's reprocessed archive: a 2019 scene at baseline 05.00 carries BOA_ADD_OFFSET -1000; the file
    # names hold no baseline, the .SAFE folder does (the pattern is searched in the path when the name misses)
    safe = tmp_path / "S2A_MSIL2A_20190615T023551_N0500_R089_T51RUQ_20230101T000000.SAFE/GRANULE/L2A_T51RUQ/IMG_DATA"
    for res, band, value in (("R10m", "B04_10m", 1500), ("R10m", "B08_10m", 4000), ("R20m", "SCL_20m", 4)):
        (safe / res).mkdir(parents=True, exist_ok=True)
        write_tif(safe / res / f"T51RUQ_20190615T023551_{band}.jp2", np.full(GRID.shape, value, np.uint16))
    g = str(tmp_path / "S2?_MSIL2A_*.SAFE/GRANULE/*/IMG_DATA")
    (scene,) = ingest.scenes_from_files([{
        "red": g + "/R10m/*_B04_10m.jp2", "nir": g + "/R10m/*_B08_10m.jp2", "quality": g + "/R20m/*_SCL_20m.jp2",
        "profile": "sentinel2-l2a", "pattern": r"MSIL2A_(?P<date>\d{8})T\d{6}_N(?P<baseline>\d{4})_R\d{3}_(?P<scene>T\d{2}[A-Z]{3})_"}])
    assert scene.scene_id == "sentinel2-l2a_T51RUQ_20190615" and scene.date == dt.date(2019, 6, 15)
    assert scene.offset == pytest.approx(-0.1)  # from baseline 05.00, although the date is before 2022
    assert scene.quality.endswith("_SCL_20m.jp2") and scene.quality_rule == ingest.PROFILES["sentinel2-l2a"]["quality"]
    r, _, clear = read_scene_window(scene, GRID, FULL)
    np.testing.assert_allclose(r, 0.05, atol=1e-7)  # (1500 − 1000) / 10000
    assert clear.all()


@pytest.mark.parametrize("name", ["canberra", "naip", "landsat-c2-local", "sentinel2-l2a"])
def test_example_configs_are_valid(name):
    # schema (with defaults) and the imagery checks; the files themselves are checked by test_realdata.py
    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "config" / "examples" / f"{name}.yaml").read_text(encoding="utf-8"))
    schema = config.load_schema()
    cfg = config.with_defaults(raw, schema)
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(cfg)]
    assert errors == [], errors
    assert config.imagery_problems(cfg) == []
    assert cfg["imagery"]["source"] == "local" and cfg["imagery"]["files"]
