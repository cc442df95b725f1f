"""Tests of greensink.vegetation: NDVI, fractional vegetation cover and NDVI threshold masks.

NDVI = (NIR − Red) / (NIR + Red), NaN (never 0) where the denominator is 0 or missing.
FVC = (NDVI − NDVIsoil) / (NDVIveg − NDVIsoil) clipped to 0–1 (dimidiate pixel model).
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from greensink.errors import InputDataError
from greensink.vegetation import (
    NDVIHistogram,
    fvc,
    fvc_endmembers,
    fvc_endmembers_from_histogram,
    ndvi,
    threshold_mask,
    vegetation_to_files,
)

NAN = np.nan

# ----------------------------------------------------------------------------- NDVI


def test_ndvi_hand_values():
    red = np.array([0.1, 0.2, 0.3, 0.0, 0.4])
    nir = np.array([0.5, 0.2, 0.1, 0.3, 0.0])
    # (0.5-0.1)/0.6 = 0.6667; equal bands 0; (0.1-0.3)/0.4 = -0.5; red 0 -> 1; nir 0 -> -1
    out = ndvi(red, nir)
    assert out.dtype == np.float32 and out.shape == (5,)
    np.testing.assert_allclose(out, [0.666667, 0.0, -0.5, 1.0, -1.0], atol=1e-6)


def test_ndvi_zero_denominator_is_nan_not_zero():
    out = ndvi(np.array([0.0, 0.0, 0.1]), np.array([0.0, 0.0, 0.3]))
    assert np.isnan(out[0]) and np.isnan(out[1])
    assert out[2] == pytest.approx(0.5)


def test_ndvi_nan_input_is_nan():
    out = ndvi(np.array([NAN, 0.1, NAN]), np.array([0.5, NAN, NAN]))
    assert np.isnan(out).all()


def test_ndvi_keeps_2d_shape_and_accepts_float32():
    red = np.array([[0.1, 0.0], [0.05, 0.2]], dtype=np.float32)
    nir = np.array([[0.5, 0.0], [0.45, 0.2]], dtype=np.float32)
    out = ndvi(red, nir)
    assert out.shape == (2, 2) and out.dtype == np.float32
    # (0.45-0.05)/0.5 = 0.8
    np.testing.assert_allclose(out, [[0.666667, NAN], [0.8, 0.0]], atol=1e-6)


reflectance = st.floats(min_value=0.0, max_value=2.0, allow_nan=False, allow_subnormal=False)
band = arrays(np.float64, st.integers(1, 50), elements=reflectance)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_ndvi_within_minus_one_and_one_for_nonnegative_reflectance(data):
    red = data.draw(band)
    nir = data.draw(arrays(np.float64, red.shape, elements=reflectance))
    out = ndvi(red, nir)
    zero = (red + nir) == 0
    assert np.isnan(out[zero]).all()
    assert np.all((out[~zero] >= -1.0) & (out[~zero] <= 1.0))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_swapping_bands_negates_ndvi(data):
    red = data.draw(band)
    nir = data.draw(arrays(np.float64, red.shape, elements=reflectance))
    np.testing.assert_array_equal(ndvi(nir, red), -ndvi(red, nir))  # NaN where the sum is 0, on both sides


@settings(max_examples=100, deadline=None)
@given(data=st.data(), k=st.floats(min_value=0.01, max_value=100.0))
def test_ndvi_is_scale_invariant(data, k):
    # a common gain on both bands (e.g. DN vs reflectance without offset) does not change NDVI
    realistic = st.one_of(st.just(0.0), st.floats(1e-6, 2.0))  # no near-underflow values
    red = data.draw(arrays(np.float64, st.integers(1, 50), elements=realistic))
    nir = data.draw(arrays(np.float64, red.shape, elements=realistic))
    np.testing.assert_allclose(ndvi(red * k, nir * k), ndvi(red, nir), atol=1e-6)


# ----------------------------------------------------------------------------- FVC


def test_fvc_endmembers_from_percentiles():
    values = np.linspace(0.0, 1.0, 101)  # 0.00, 0.01, …, 1.00: the p-th percentile is p / 100
    values = np.concatenate([values, [NAN, NAN]])  # NaNs are ignored
    lo, hi = fvc_endmembers(values)
    assert lo == pytest.approx(0.05) and hi == pytest.approx(0.95)
    lo, hi = fvc_endmembers(values, percentiles=(2, 98))
    assert lo == pytest.approx(0.02) and hi == pytest.approx(0.98)


def test_fvc_endmembers_explicit_values_override_percentiles():
    values = np.linspace(0.0, 1.0, 101)
    assert fvc_endmembers(values, ndvi_soil=0.1, ndvi_full=0.8) == (0.1, 0.8)
    lo, hi = fvc_endmembers(values, ndvi_soil=0.15)  # only soil given: vegetation from the 95th percentile
    assert lo == 0.15 and hi == pytest.approx(0.95)
    # both given: no valid pixel is needed
    assert fvc_endmembers(np.array([NAN, NAN]), ndvi_soil=0.1, ndvi_full=0.8) == (0.1, 0.8)


def test_fvc_endmembers_need_valid_pixels():
    with pytest.raises(InputDataError, match="no valid pixel"):
        fvc_endmembers(np.array([NAN, NAN]))
    with pytest.raises(InputDataError, match="no valid pixel"):
        fvc_endmembers(np.array([NAN]), ndvi_soil=0.1)


@pytest.mark.parametrize(("soil", "full"), [(0.8, 0.1), (0.5, 0.5)])
def test_fvc_invalid_endmembers_raise_with_the_fix(soil, full):
    with pytest.raises(InputDataError) as err:
        fvc_endmembers(np.linspace(0, 1, 11), ndvi_soil=soil, ndvi_full=full)
    msg = str(err.value)
    assert "NDVIveg > NDVIsoil" in msg
    assert f"soil {soil:.3f}" in msg and f"vegetation {full:.3f}" in msg
    assert "vegetation.ndvi_soil" in msg and "vegetation.fvc_percentiles" in msg


def test_fvc_uniform_scene_refuses_percentile_endmembers():
    # every pixel NDVI 0.3: 5th and 95th percentile coincide, so FVC is undefined
    with pytest.raises(InputDataError, match="NDVIveg > NDVIsoil"):
        fvc_endmembers(np.full(100, 0.3))


def test_fvc_hand_values_and_clipping():
    values = np.array([-0.2, 0.1, 0.5, 0.8, 0.95, NAN])
    out = fvc(values, 0.1, 0.8)
    # (0.5 − 0.1) / (0.8 − 0.1) = 0.4 / 0.7 = 0.5714; below soil -> 0, above full -> 1; NaN stays NaN
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:5], [0.0, 0.0, 0.571429, 1.0, 1.0], atol=1e-6)
    assert np.isnan(out[5])


@settings(max_examples=200, deadline=None)
@given(
    values=arrays(np.float64, st.integers(1, 30), elements=st.floats(-1.0, 1.0)),
    soil=st.floats(-0.5, 0.4),
    width=st.floats(0.05, 1.0),
)
def test_fvc_is_within_0_1_and_monotone(values, soil, width):
    out = fvc(values, soil, soil + width)
    assert np.all((out >= 0.0) & (out <= 1.0))
    order = np.argsort(values)
    assert np.all(np.diff(out[order]) >= 0)


# ----------------------------------------------------------------------------- masks


def test_threshold_mask_one_zero_nan():
    values = np.array([[0.1, 0.2], [0.5, NAN]], dtype=np.float32)
    out = threshold_mask(values, 0.2)
    assert out.dtype == np.float32
    # 0.2 is at the threshold, so it counts (NDVI ≥ 0.2)
    np.testing.assert_array_equal(out, [[0.0, 1.0], [1.0, NAN]])
    np.testing.assert_array_equal(threshold_mask(values, 0.5), [[0.0, 0.0], [1.0, NAN]])


def test_threshold_mask_mean_is_cover_fraction():
    # a zone of 4 valid pixels, 3 vegetated, and one no-data pixel: cover = 3 / 4, not 3 / 5
    values = np.array([0.3, 0.6, 0.25, 0.1, NAN])
    assert np.nanmean(threshold_mask(values, 0.2)) == pytest.approx(0.75)


def test_ndvi_of_plain_numbers():
    # (0.5 - 0.1) / (0.5 + 0.1) = 0.6667; 0/0 -> NaN, never 0
    assert float(ndvi(0.1, 0.5)) == pytest.approx(0.4 / 0.6, rel=1e-6)
    assert np.isnan(ndvi(0.0, 0.0))


# ----------------------------------------------------------------------------- percentiles from a histogram


@settings(max_examples=100, deadline=None)
@given(
    values=arrays(np.float32, st.integers(1, 400), elements=st.floats(-1.0, 1.0, width=32)),
    q=st.floats(0.0, 100.0),
    split=st.integers(1, 5),
)
def test_histogram_percentile_within_one_bin_of_numpy(values, q, split):
    hist = NDVIHistogram()
    for part in np.array_split(values, split):  # added strip by strip
        hist.add(part)
    assert hist.n == values.size
    assert hist.accuracy == pytest.approx(1e-4)
    assert abs(hist.percentile(q) - float(np.percentile(values, q))) <= 1e-4 + 1e-12  # one bin, plus rounding


def test_histogram_percentile_of_a_realistic_scene():
    # a million NDVI values: bare soil around 0.15 and vegetation around 0.7, with NaN gaps
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0.15, 0.08, 400_000), rng.normal(0.7, 0.1, 600_000)]).clip(-1, 1).astype(np.float32)
    values[::97] = np.nan
    hist = NDVIHistogram()
    for strip in values.reshape(100, -1):
        hist.add(strip)
    finite = values[np.isfinite(values)]
    for q in (0, 2, 5, 50, 95, 98, 100):
        assert abs(hist.percentile(q) - float(np.percentile(finite, q))) <= 1e-4 + 1e-12
    lo, hi = fvc_endmembers_from_histogram(hist)
    exact = fvc_endmembers(values)
    assert lo == pytest.approx(exact[0], abs=1e-4) and hi == pytest.approx(exact[1], abs=1e-4)


def test_histogram_keeps_values_outside_minus_one_one_exactly():
    # NDVI beyond ±1 needs a negative reflectance; such values are kept, not binned
    values = np.array([-3.0, -1.5, 0.2, 0.4, 1.0, 2.5, NAN])
    hist = NDVIHistogram()
    hist.add(values)
    assert hist.n == 6
    assert hist.percentile(0) == -3.0 and hist.percentile(100) == 2.5
    # rank 0.2 × 5 = 1 -> the second value, exactly
    assert hist.percentile(20) == -1.5
    assert abs(hist.percentile(50) - np.nanpercentile(values, 50)) <= 1e-4


def test_histogram_endmembers_errors_match_the_array_version():
    empty = NDVIHistogram()
    empty.add(np.array([NAN]))
    with pytest.raises(InputDataError, match="no valid pixel"):
        fvc_endmembers_from_histogram(empty)
    assert fvc_endmembers_from_histogram(empty, ndvi_soil=0.1, ndvi_full=0.8) == (0.1, 0.8)
    flat = NDVIHistogram()
    flat.add(np.full(100, 0.3))
    with pytest.raises(InputDataError, match="NDVIveg > NDVIsoil"):
        fvc_endmembers_from_histogram(flat)


# ----------------------------------------------------------------------------- streamed products

SETTINGS = {"fvc_percentiles": [5, 95], "ndvi_soil": None, "ndvi_full": None,
            "ndvi_vegetation": 0.2, "ndvi_shrub": 0.35, "ndvi_tree": 0.5}
FILES = {"ndvi": "ndvi.tif", "fvc": "fvc.tif", "vegetation": "vegetation.tif", "canopy": "canopy.tif",
         "classes": "vegetation_class.tif", "height": "height.tif"}


def composite_file(tmp_path, shape=(37, 29)):
    """A composite (red, nir, count) on a small grid with NaN holes and a zero-sum pixel."""
    from affine import Affine

    from greensink import io
    from greensink.grid import Grid

    grid = Grid("EPSG:32651", Affine(10.0, 0.0, 350000.0, 0.0, -10.0, 3460000.0), width=shape[1], height=shape[0])
    rng = np.random.default_rng(7)
    red = rng.uniform(0.01, 0.3, shape)
    nir = rng.uniform(0.05, 0.6, shape)
    red[3:6, 4:9] = NAN
    red[0, 0] = nir[0, 0] = 0.0
    count = np.where(np.isnan(red), 0, 3)
    return io.write_raster(tmp_path / "composite.tif", np.stack([red, nir, count]), grid), grid


def in_memory_products(composite, settings):
    """The products as the vegetation rule made them before it streamed: whole arrays."""
    from greensink import io
    from greensink.vegetation import structure_classes

    red, nir = io.read_raster(composite, bands=[1, 2])
    nd = ndvi(red, nir)
    soil, full = fvc_endmembers(nd, tuple(settings["fvc_percentiles"]), settings["ndvi_soil"], settings["ndvi_full"])
    return nd, soil, full, {
        "ndvi": nd, "fvc": fvc(nd, soil, full), "vegetation": threshold_mask(nd, settings["ndvi_vegetation"]),
        "canopy": threshold_mask(nd, settings["ndvi_tree"]),
        "classes": structure_classes(nd, settings["ndvi_vegetation"], settings["ndvi_shrub"], settings["ndvi_tree"]),
        "height": np.full(nd.shape, np.nan, np.float32),  # no canopy height model: no height anywhere
    }


@pytest.mark.parametrize("block_rows", [1, 5, 16, 512])
def test_vegetation_to_files_matches_the_in_memory_products(tmp_path, block_rows):
    from greensink import io

    composite, grid = composite_file(tmp_path)
    nd, soil, full, expected = in_memory_products(composite, SETTINGS)
    out = {k: tmp_path / "out" / name for k, name in FILES.items()}
    calls = []
    stats = vegetation_to_files(composite, out, SETTINGS, block_rows=block_rows, progress=lambda i, n: calls.append((i, n)))
    strips = -(-grid.height // block_rows)
    assert calls[-1] == (2 * strips, 2 * strips)  # histogram pass, then products pass
    assert stats["ndvi_soil"] == pytest.approx(soil, abs=1e-4) and stats["ndvi_full"] == pytest.approx(full, abs=1e-4)
    valid = np.isfinite(nd).sum()
    assert stats["vegetation_pct"] == pytest.approx(100 * (nd >= 0.2).sum() / valid)
    assert stats["canopy_pct"] == pytest.approx(100 * (nd >= 0.5).sum() / valid)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES.values())
    for key, arr in expected.items():
        got = io.read_raster(out[key], bands=1)
        if key == "fvc":  # endmembers within 1e-4 NDVI: FVC within 1e-4 / (full − soil) plus float32 rounding
            np.testing.assert_allclose(got, arr, atol=1e-4 / (full - soil) + 1e-6)
            assert (np.isnan(got) == np.isnan(arr)).all()
        else:
            np.testing.assert_array_equal(got, arr)
    assert io.band_names(out["fvc"]) == ["fvc_frac"] and io.band_names(out["classes"]) == ["vegetation_class"]
    assert np.isnan(io.read_raster(out["height"], bands=1)).all() and io.band_names(out["height"]) == ["height_m"]
    assert "chm" not in stats
    with rasterio.open(out["fvc"]) as src:
        assert float(src.tags()["ndvi_soil"]) == pytest.approx(stats["ndvi_soil"])
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_vegetation_to_files_result_does_not_depend_on_block_rows(tmp_path):
    from greensink import io

    composite, _ = composite_file(tmp_path)
    results = []
    for block_rows in (3, 512):
        out = {k: tmp_path / str(block_rows) / name for k, name in FILES.items()}
        results.append((vegetation_to_files(composite, out, SETTINGS, block_rows=block_rows),
                        {k: io.sha256(p) for k, p in out.items()}))
    assert results[0] == results[1]


def test_vegetation_to_files_with_given_endmembers_is_one_exact_pass(tmp_path):
    from greensink import io

    composite, grid = composite_file(tmp_path)
    settings = {**SETTINGS, "ndvi_soil": 0.1, "ndvi_full": 0.8}
    _, _, _, expected = in_memory_products(composite, settings)
    out = {k: tmp_path / "out" / name for k, name in FILES.items()}
    calls = []
    stats = vegetation_to_files(composite, out, settings, block_rows=8, progress=lambda i, n: calls.append((i, n)))
    assert calls[-1] == (5, 5)  # 37 rows in strips of 8: one pass
    assert (stats["ndvi_soil"], stats["ndvi_full"]) == (0.1, 0.8)
    for key, arr in expected.items():
        np.testing.assert_array_equal(io.read_raster(out[key], bands=1), arr)


def test_vegetation_to_files_bad_thresholds_write_nothing(tmp_path):
    composite, _ = composite_file(tmp_path)
    out = {k: tmp_path / "out" / name for k, name in FILES.items()}
    with pytest.raises(InputDataError, match="vegetation ≤ shrub ≤ tree"):
        vegetation_to_files(composite, out, {**SETTINGS, "ndvi_shrub": 0.6})
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_vegetation_to_files_needs_a_path_for_every_product(tmp_path):
    composite, _ = composite_file(tmp_path)
    out = {k: tmp_path / "out" / name for k, name in FILES.items() if k != "height"}
    with pytest.raises(ValueError, match=r"Got no path for \['height'\]"):
        vegetation_to_files(composite, out, SETTINGS)
    assert not (tmp_path / "out").exists()
