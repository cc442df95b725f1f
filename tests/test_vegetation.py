"""Tests of greensink.vegetation: NDVI, fractional vegetation cover and NDVI threshold masks.

NDVI = (NIR − Red) / (NIR + Red), NaN (never 0) where the denominator is 0 or missing.
FVC = (NDVI − NDVIsoil) / (NDVIveg − NDVIsoil) clipped to 0–1 (dimidiate pixel model).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from greensink.errors import InputDataError
from greensink.vegetation import fvc, fvc_endmembers, ndvi, threshold_mask

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
