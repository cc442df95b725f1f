"""The change rule's one pass (issue 14 item 1): :func:`greensink.change.sink_pass` evaluates each year's draws once
per chunk and must give, bit for bit, what the two passes it replaced gave: the sink map of
``density_map(difference_function(map0, map1))`` (the carbon maps' functions, NaN where unobserved) and the zone sums
of ``zone_draw_sums`` of the filled functions (the zone tables' rule) through the coverage matrices and the matrices
restricted to the typed land observed in both years, plus the per-pixel estimates the attribution reads.

Hand-built 23 × 17 grid of 10 m pixels with real models (a two-predictor curve with its NDVI-only companion, a power
curve, a coefficient-table constant), every error source on (residual field and nugget paired between the years,
NDVI error, edges), a cloud in each year at a different place, a type lost between the years, and zones that leave
part of the grid uncovered. The reference is the two-pass code as it was (commit before 78a3a06), run here.
"""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box

from greensink.aggregate import zone_draw_sums
from greensink.carbon import density_map, fill_values, interval_quantiles, pixel_function, type_fill, typed_pixels
from greensink.change import (
    EstimateRecorder,
    difference_function,
    masked_matrices,
    observation_shares,
    sink_pass,
    unserved_function,
    year_fill,
)
from greensink.change.sink import sorted_quantiles
from greensink.coverage import coverage_matrix
from greensink.grid import Grid
from greensink.uncertainty import Noise, NoiseSpec, ResidualField

TYPES = ["G1", "G2", "G3"]
ROWS, COLS = 23, 17
GRID = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_230.0), width=COLS, height=ROWS)
B = 40


def _draws(rng, centre, spread):
    return (np.asarray(centre) + rng.normal(size=(B, len(centre))) * np.asarray(spread)).tolist()


def make_models(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"seed": seed, "types": {
        "G1": {"form": "linear", "source": "plots", "predictors": ["ndvi", "height"],
               "params": {"a": -2.0, "b_ndvi": 30.0, "b_height": 1.5},
               "bootstrap": _draws(rng, [-2.0, 30.0, 1.5], [1.0, 3.0, 0.2]),
               "ndvi_only": {"form": "linear", "source": "plots", "predictors": ["ndvi"], "params": {"a": -4.0, "b": 40.0},
                             "bootstrap": _draws(rng, [-4.0, 40.0], [1.0, 4.0])}},
        "G2": {"form": "power", "source": "plots", "params": {"a": 25.0, "b": 1.3},
               "bootstrap": _draws(rng, [25.0, 1.3], [3.0, 0.1])},
        "G3": {"form": "constant", "source": "table", "params": {"c": 12.0}, "bootstrap": _draws(rng, [12.0], [1.5])},
    }}


def make_year(seed: int, cloud: tuple[slice, slice]):
    """Fractions (3, rows, cols) and the predictor layers ndvi, height, ndvi_se of one year."""
    rng = np.random.default_rng(seed)
    frac = rng.uniform(0, 1, (3, ROWS, COLS)) * (rng.uniform(size=(3, ROWS, COLS)) < 0.5)
    frac /= np.maximum(frac.sum(axis=0), 1.0)
    frac[:, 5:9, 3:11] = 0.0  # untyped land
    ndvi = rng.uniform(0.05, 0.9, (ROWS, COLS))
    ndvi[cloud] = np.nan
    height = rng.uniform(0.0, 20.0, (ROWS, COLS))
    height[rng.uniform(size=height.shape) < 0.3] = np.nan  # outside the CHM: G1's NDVI-only companion serves
    se = np.full((ROWS, COLS), 0.03)
    return frac.astype(np.float32), {"ndvi": ndvi.astype(np.float32), "height": height.astype(np.float32),
                                     "ndvi_se": se.astype(np.float32)}


RESIDUAL = ResidualField(nugget=0.01, psill=0.02, range_m=40.0, n_plots=50, method="test")


def year_functions(models, year, frac, layers, rho=0.6):
    """As run_change makes them: the map's function (no fill) and the zone tables' (fill, sources), one Noise."""
    fill = fill_values(type_fill(models, TYPES, frac, layers, seed=models["seed"]))
    spec = NoiseSpec(seed=42, year=year, residual=RESIDUAL, rho=rho, paired=True, ndvi=True, position_sd_m=1.5,
                     width=COLS, height=ROWS)
    noise = Noise(spec, B)
    return (pixel_function(models, TYPES, frac, layers, noise=noise),
            pixel_function(models, TYPES, frac, layers, fill=fill, noise=noise, sources=True))


def make_case():
    m0, m1 = make_models(1), make_models(2)
    f0, l0 = make_year(3, (slice(2, 8), slice(0, 9)))
    f1, l1 = make_year(4, (slice(12, 19), slice(6, 17)))
    f1[1, 15:, :] = 0.0  # G2 lost from the bottom rows in the second year
    active = np.union1d(typed_pixels(f0), typed_pixels(f1))
    # two levels: a city that leaves the left columns and the top rows uncovered, and three blocks cutting pixels
    x0, y0 = 500_000.0, 3_500_000.0
    city = [box(x0 + 25.0, y0, x0 + 170.0, y0 + 205.0)]
    blocks = [box(x0 + 25.0, y0, x0 + 95.0, y0 + 120.0), box(x0 + 95.0, y0, x0 + 170.0, y0 + 120.0),
              box(x0 + 33.0, y0 + 120.0, x0 + 170.0, y0 + 205.0)]
    matrices = [coverage_matrix(g, GRID.transform, GRID.shape) for g in (city, blocks)]
    return (m0, f0, l0), (m1, f1, l1), active, matrices


def two_pass(case, chunk_pixels=50, years=2):
    """The change rule's code before the one pass: the map pass, then the zone-sum pass with the masked matrices."""
    (m0, f0, l0), (m1, f1, l1), active, matrices = case
    map0, sum0 = (EstimateRecorder(fn, active) for fn in year_functions(m0, 2023, f0, l0))
    map1, sum1 = (EstimateRecorder(fn, active) for fn in year_functions(m1, 2025, f1, l1))
    sink = density_map(difference_function(map0, map1, years), active, GRID.shape, 90.0, chunk_pixels=64)
    both, _ = observation_shares(matrices, active, map0.estimates(), map1.estimates(), f0, f1, GRID.pixel_area_ha)
    sums = zone_draw_sums([*matrices, *masked_matrices(matrices, active, both)], difference_function(sum0, sum1, years),
                          active, GRID.pixel_area_ha, chunk_pixels=chunk_pixels)
    return sink, sums[:len(matrices)], sums[len(matrices):], (sum0, sum1, map0, map1), both


def one_pass(case, chunk_pixels=50, block_pixels=1_024, years=2):
    (m0, f0, l0), (m1, f1, l1), active, matrices = case
    _, fn0 = year_functions(m0, 2023, f0, l0)
    _, fn1 = year_functions(m1, 2025, f1, l1)
    return sink_pass(fn0, fn1, unserved_function(m0, TYPES, f0, l0), unserved_function(m1, TYPES, f1, l1), years, active,
                     GRID.shape, matrices, GRID.pixel_area_ha, 90.0, chunk_pixels=chunk_pixels, block_pixels=block_pixels)


@pytest.mark.parametrize(("block_pixels", "years"), [(1_024, 2), (7, 2), (1, 2), (7, 1)])
def test_one_pass_equals_the_two_passes_bit_for_bit(block_pixels, years):
    # blocks of 7 and 1 pixel inside chunks of 50: the blocks change no number (they only keep the work in cache);
    # one year apart the pass skips the division by 1
    case = make_case()
    sink, sums, sums_both, (sum0, sum1, map0, map1), both = two_pass(case, years=years)
    coverage = [m.copy() for m in case[3]]
    res = one_pass(case, block_pixels=block_pixels, years=years)
    for m, m_before in zip(case[3], coverage, strict=True):  # the pass zeroes coverage of a copy, never the caller's
        assert (m != m_before).nnz == 0
    # the case has what the one pass must get right: land filled in a year (map NaN, stock known), pixels outside
    # every zone, partly observed zones
    filled = np.isnan(map1.estimates()) & np.isfinite(sum1.estimates())
    assert filled.sum() > 20 and (np.isnan(map0.estimates()) & np.isfinite(sum0.estimates())).sum() > 20
    assert (np.asarray(case[3][0].sum(axis=0)).ravel()[case[2]] == 0).sum() > 20
    assert 0 < both.sum() < both.size
    np.testing.assert_array_equal(res.sink, sink)  # NaN where either map is NaN, as before
    assert np.isnan(res.sink[0].reshape(-1)[case[2][filled]]).all()
    for j in range(2):
        np.testing.assert_array_equal(res.sums[j][0], sums[j][0])
        np.testing.assert_array_equal(res.sums[j][1], sums[j][1])
        assert res.sums[j][2].keys() == sums[j][2].keys()
        for k in sums[j][2]:
            np.testing.assert_array_equal(res.sums[j][2][k], sums[j][2][k])
        np.testing.assert_array_equal(res.sums_both[j][0], sums_both[j][0])
        np.testing.assert_array_equal(res.sums_both[j][1], sums_both[j][1])
        assert not np.allclose(res.sums_both[j][0], res.sums[j][0])  # the observed land's sums are not the filled
    np.testing.assert_array_equal(res.stock0, sum0.estimates())
    np.testing.assert_array_equal(res.stock1, sum1.estimates())
    np.testing.assert_array_equal(res.map0, map0.estimates())
    np.testing.assert_array_equal(res.map1, map1.estimates())


@pytest.mark.parametrize("chunk_pixels", [7, 8_192])
def test_one_pass_does_not_depend_on_the_chunks(chunk_pixels):
    # the map and the estimates are per pixel (bit for bit); the sums change only by the order of summation
    case = make_case()
    ref, res = one_pass(case, 50), one_pass(case, chunk_pixels)
    np.testing.assert_array_equal(res.sink, ref.sink)
    np.testing.assert_array_equal(res.map1, ref.map1)
    for a, b in zip(res.sums + res.sums_both, ref.sums + ref.sums_both, strict=True):
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-12)


def test_unserved_is_where_the_carbon_map_is_nan_by_hand():
    models = make_models(1)
    # four pixels, NDVI known on the first two: G1 alone with NDVI (served), G1 with NDVI but no height (its NDVI-only
    # companion serves), G3 alone under cloud (a table constant needs no imagery), G1 + G3 under cloud (G1 unserved)
    frac = np.zeros((3, 1, 4), dtype=np.float32)
    frac[0, 0, [0, 1, 3]] = [1.0, 1.0, 0.5]
    frac[2, 0, [2, 3]] = [1.0, 0.5]
    layers = {"ndvi": np.array([[0.6, 0.5, np.nan, np.nan]], np.float32),
              "height": np.array([[5.0, np.nan, 5.0, 5.0]], np.float32)}
    idx = np.arange(4)
    np.testing.assert_array_equal(unserved_function(models, TYPES, frac, layers)(idx), [False, False, False, True])
    est, _ = pixel_function(models, TYPES, frac, layers)(idx)
    np.testing.assert_array_equal(np.isnan(est), [False, False, False, True])
    assert est[2] == pytest.approx(12.0) and est[0] == pytest.approx(-2.0 + 30.0 * 0.6 + 1.5 * 5.0, rel=1e-6)


def test_sink_pass_refuses_non_positive_years():
    case = make_case()
    (m0, f0, l0), _, active, matrices = case
    _, fn = year_functions(m0, 2023, f0, l0)
    un = unserved_function(m0, TYPES, f0, l0)
    with pytest.raises(ValueError, match="years between stocks must be > 0"):
        sink_pass(fn, fn, un, un, 0, active, GRID.shape, matrices, GRID.pixel_area_ha)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # np.quantile's own inf - inf
@pytest.mark.parametrize("n_draws", [1, 2, 7, 40, 199, 200])
@pytest.mark.parametrize("interval_pct", [90.0, 95.0, 50.0, 99.9])
def test_sorted_quantiles_equal_np_quantile(n_draws, interval_pct):
    # the per-pixel interval of the sink map from sorted rows: numpy's linear quantile, bit for bit, with ties,
    # signed zeros, infinities and rows holding NaN
    rng = np.random.default_rng(n_draws)
    rows = rng.normal(size=(300, n_draws)) * rng.choice([1e-3, 1.0, 1e4], size=(300, 1))
    rows[:40] = np.round(rows[:40])  # ties
    rows[40:50] = 0.0
    rows[45:50, ::2] = -0.0
    rows[50, 0], rows[51, -1], rows[52] = np.inf, -np.inf, np.inf
    rows[53, n_draws // 2] = np.nan
    qlo, qhi = interval_quantiles(interval_pct)
    got = sorted_quantiles(rows, (qlo, qhi))
    want = np.quantile(rows, [qlo, qhi], axis=1)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.tobytes() == w.tobytes()


def test_year_fill_only_where_a_pixel_needs_it():
    # a clear year (no cloud): every typed pixel is served, so no fill is computed, and the zone tables' pixel
    # function gives the same numbers, bit for bit, as with the fill type_fill computes; a cloudy year gets that fill
    models = make_models(1)
    clear, clear_layers = make_year(5, (slice(0, 0), slice(0, 0)))
    cloudy, cloudy_layers = make_year(3, (slice(2, 8), slice(0, 9)))
    for frac, layers, cloud in ((clear, clear_layers, False), (cloudy, cloudy_layers, True)):
        active = typed_pixels(frac)
        unserved = unserved_function(models, TYPES, frac, layers)
        assert unserved(active).any() == cloud
        predictors = {k: v for k, v in layers.items() if k != "ndvi_se"}
        fill = year_fill(models, TYPES, frac, predictors, unserved, active)
        full = fill_values(type_fill(models, TYPES, frac, predictors, seed=models["seed"]))
        assert full["G1"] is not None and full["G2"] is not None  # type_fill has something to give either way
        if cloud:
            assert fill.keys() == full.keys()
            for t in full:
                assert fill[t][0] == full[t][0]
                np.testing.assert_array_equal(fill[t][1], full[t][1])
            continue
        assert fill is None
        spec = NoiseSpec(seed=42, year=2024, residual=RESIDUAL, rho=0.6, paired=True, ndvi=True, position_sd_m=1.5,
                         width=COLS, height=ROWS)
        with_fill = pixel_function(models, TYPES, frac, layers, fill=full, noise=Noise(spec, B), sources=True)(active)
        without = pixel_function(models, TYPES, frac, layers, fill=None, noise=Noise(spec, B), sources=True)(active)
        np.testing.assert_array_equal(without[0], with_fill[0])
        np.testing.assert_array_equal(without[1], with_fill[1])
        assert without[2].keys() == with_fill[2].keys()
        for k in with_fill[2]:
            np.testing.assert_array_equal(without[2][k], with_fill[2][k])
