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
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from greensink import ingest
from greensink.errors import InputDataError
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
    assert ingest.scene_clear_fraction(scene, GRID, block_rows=4) == pytest.approx(20 / 48)


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
    check_scene(s2("ok", str(scene_files / "red.tif"), str(scene_files / "nir.tif"), str(scene_files / "scl.tif")), GRID)


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
