"""Trend: Theil-Sen slopes of carbon stock over the years, their intervals from paired draws, per pixel and zone.

Unit tests check the estimator by hand and against scipy.stats.theilslopes, the interval and significance on
draws whose slopes are known by construction, NaN handling, the pooled year correlation and the pairing of N
years' draws; the workflow test reads the shared baseline demo run (three years) and checks the trend against
the first-to-last change and the yearly zone stocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from scipy.stats import theilslopes

from greensink import trend
from greensink.series import series_function, series_residual_field, series_year_correlation
from greensink.uncertainty import Noise, NoiseSpec, ResidualField, paired_residual_field, residual_year_correlation

# ----------------------------------------------------------------------------- the estimator


def test_theil_sen_of_a_line_is_its_slope():
    years = [2018, 2019, 2021, 2024]
    v = 5.0 - 0.75 * (np.array(years) - 2018)
    assert trend.theil_sen(v, years) == pytest.approx(-0.75, abs=1e-12)


def test_theil_sen_even_number_of_pairs_by_hand():
    # years 0..3, values 0 2 3 7: pair slopes 2, 1.5, 7/3, 1, 2.5, 4 -> sorted 1, 1.5, 2, 7/3, 2.5, 4
    # six pairs: the median is the mean of the 3rd and 4th, (2 + 7/3)/2 = 13/6
    assert trend.theil_sen(np.array([0.0, 2.0, 3.0, 7.0]), [0, 1, 2, 3]) == pytest.approx(13 / 6, abs=1e-12)


def test_an_outlier_moves_least_squares_but_not_theil_sen():
    years = np.arange(7.0)
    v = years.copy()
    v[6] = 100.0  # one odd last year
    # OLS: 1 + 94 (6 - 3) / 28 = 11.07; Theil-Sen: 15 of 21 pair slopes are 1, so the median is 1
    assert np.polyfit(years, v, 1)[0] == pytest.approx(1 + 94 * 3 / 28, rel=1e-12)
    assert trend.theil_sen(v, years) == pytest.approx(1.0, abs=1e-12)


def test_theil_sen_matches_scipy_on_random_series():
    rng = np.random.default_rng(7)
    years = np.array([2015, 2016, 2018, 2019, 2020, 2023, 2024, 2025])
    values = rng.normal(0, 3, (40, 25, years.size)) + rng.normal(0, 1, (40, 25, 1)) * (years - 2015)
    got = trend.theil_sen(values, years)
    want = np.array([[theilslopes(s, years)[0] for s in row] for row in values])
    assert got.shape == (40, 25)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_nan_years_are_left_out_and_fewer_than_two_is_nan():
    rng = np.random.default_rng(3)
    years = np.array([2020, 2021, 2022, 2023, 2024])
    v = rng.normal(size=(4, years.size))
    v[0, [1, 3]] = np.nan  # three observed years
    v[1, :4] = np.nan  # one observed year: no slope
    v[2, :] = np.nan  # none
    v[3, 2] = np.nan
    got = trend.theil_sen(v, years)
    keep0 = np.isfinite(v[0])
    assert got[0] == pytest.approx(theilslopes(v[0, keep0], years[keep0])[0], abs=1e-12)
    assert np.isnan(got[1]) and np.isnan(got[2])  # never 0
    keep3 = np.isfinite(v[3])
    assert got[3] == pytest.approx(theilslopes(v[3, keep3], years[keep3])[0], abs=1e-12)


def test_three_equally_spaced_years_give_the_first_to_last_slope():
    # the long pair's slope is the mean of the two short ones, so it is always the median
    rng = np.random.default_rng(11)
    v = rng.normal(size=(1000, 3)) * 10
    np.testing.assert_allclose(trend.theil_sen(v, [2023, 2024, 2025]), (v[:, 2] - v[:, 0]) / 2, atol=1e-12)


def test_duplicate_years_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        trend.theil_sen(np.zeros(3), [2023, 2023, 2024])


def test_nanmedian_last_matches_numpy():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(200, 9))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[0] = np.nan
    want = np.array([np.median(r[np.isfinite(r)]) if np.isfinite(r).any() else np.nan for r in a])
    np.testing.assert_array_equal(trend.nanmedian_last(a), want)


# ----------------------------------------------------------------------------- draws: interval and significance

YEARS4 = [2021, 2022, 2023, 2024]


def linear_draws(slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """(Y, B) series a_b + s_b (t − t0): each draw's Theil-Sen slope is s_b exactly."""
    t = np.array(YEARS4, dtype=float) - YEARS4[0]
    return intercepts[None, :] + slopes[None, :] * t[:, None]


def constructed_series():
    """Five pixels of a 2 x 3 grid (pixel 5 inactive), 400 draws with known slopes:
    0 gain (slopes 1 + 0.3 z), 1 no significant change (0.1 + 0.3 z), 2 loss (-2 + 0.5 z),
    3 observed in one year only (unknown), 4 an estimate outside its draws' interval."""
    rng = np.random.default_rng(2024)
    b = 400
    z = rng.standard_normal((5, b))
    slopes = np.array([1.0, 0.1, -2.0, 0.5, 0.05])[:, None] + np.array([0.3, 0.3, 0.5, 0.3, 0.01])[:, None] * z
    slopes[4] += 1.0  # draws around 1.05 while the estimate's slope is 0.05
    intercepts = rng.uniform(10, 20, (5, b))
    draws = np.stack([linear_draws(slopes[k], intercepts[k]) for k in range(5)], axis=-1)  # (Y, B, 5)
    est_slope = np.array([1.0, 0.1, -2.0, 0.5, 0.05])
    est = 15.0 + est_slope[None, :] * (np.array(YEARS4, float) - YEARS4[0])[:, None]  # (Y, 5)
    est[:3, 3] = np.nan
    draws[:3, :, 3] = np.nan
    return est, draws, slopes, est_slope


def test_pixel_trend_interval_and_significance_from_draws():
    est, draws, slopes, est_slope = constructed_series()

    def series_fn(idx):
        return est[:, idx], draws[:, :, idx]

    bands, counts = trend.pixel_trend(series_fn, np.arange(5), (2, 3), YEARS4, interval_pct=90)
    flat = bands.reshape(4, -1)
    np.testing.assert_allclose(flat[0, [0, 1, 2, 4]], est_slope[[0, 1, 2, 4]], atol=1e-6)
    for k in (0, 1, 2):  # the interval is the draws' own 5th and 95th percentiles of s_b
        lo, hi = np.quantile(slopes[k], [0.05, 0.95])
        assert flat[1, k] == pytest.approx(lo, abs=1e-5) and flat[2, k] == pytest.approx(hi, abs=1e-5)
    assert flat[1, 0] > 0 and flat[3, 0] == 1  # gain
    assert flat[1, 1] < 0 < flat[2, 1] and flat[3, 1] == 0  # interval holds 0: not significant
    assert flat[2, 2] < 0 and flat[3, 2] == 1  # loss
    assert np.isnan(flat[:, 3]).all()  # one observed year: unknown in every band, never 0
    # draws around 1.05 +- 0.016, estimate 0.05: the interval is widened down to the estimate
    assert flat[1, 4] == pytest.approx(0.05, abs=1e-6) and flat[2, 4] == pytest.approx(np.quantile(slopes[4], 0.95), abs=1e-5)
    assert (flat[:, 5] == 0).all()  # inactive pixel: the fill
    assert counts == {"pixels": 5, "unknown": 1, "significant_gain": 2, "significant_loss": 1, "not_significant": 1}


def test_pixel_trend_chunks_do_not_change_the_result():
    est, draws, _, _ = constructed_series()
    est = np.tile(est, (1, 60))
    draws = np.tile(draws, (1, 1, 60))

    def series_fn(idx):
        return est[:, idx], draws[:, :, idx]

    a, _ = trend.pixel_trend(series_fn, np.arange(300), (10, 30), YEARS4, chunk_pixels=8192)
    b, _ = trend.pixel_trend(series_fn, np.arange(300), (10, 30), YEARS4, chunk_pixels=7)
    np.testing.assert_array_equal(a, b)


def test_two_year_trend_is_the_pairs_sink_map():
    # rule change's own path (difference_function + density_map) on the same two years' draws
    from greensink.carbon import density_map
    from greensink.change import difference_function

    rng = np.random.default_rng(8)
    n, b = 600, 120
    base = rng.uniform(0, 40, n)
    e0, e1 = base, base + rng.normal(0.5, 2.0, n)
    d0 = e0 + rng.normal(0, 1.0, (b, n))
    d1 = d0 + (e1 - e0) + rng.normal(0, 1.5, (b, n))
    e0[:7] = np.nan
    d0[:, :7] = np.nan

    def fn(e, d):
        return lambda idx: (e[idx], d[:, idx])

    sink = density_map(difference_function(fn(e0, d0), fn(e1, d1), 3), np.arange(n), (20, 30), 90).reshape(3, -1)
    bands, _ = trend.pixel_trend(series_function([fn(e0, d0), fn(e1, d1)]), np.arange(n), (20, 30), [2020, 2023], 90)
    bands = bands.reshape(4, -1)
    np.testing.assert_allclose(bands[0], sink[0], atol=1e-5)
    np.testing.assert_allclose(bands[1], np.minimum(sink[1], sink[0]), atol=1e-5)  # widened to hold the estimate
    np.testing.assert_allclose(bands[2], np.maximum(sink[2], sink[0]), atol=1e-5)
    assert np.isnan(bands[:, :7]).all() and np.isnan(sink[:, :7]).all()


def test_series_function_stacks_the_years():
    def year_fn(offset):
        return lambda idx: (idx + offset, np.tile(idx + offset, (2, 1)).astype(float))

    est, draws = series_function([year_fn(0.0), year_fn(10.0), year_fn(30.0)])(np.array([1, 4]))
    np.testing.assert_array_equal(est, [[1, 4], [11, 14], [31, 34]])
    assert draws.shape == (3, 2, 2)
    np.testing.assert_array_equal(draws[2], [[31, 34], [31, 34]])


# ----------------------------------------------------------------------------- zones


def test_zone_trend_table_by_hand():
    years = [2023, 2024, 2025]
    zones = gpd.GeoDataFrame({"zone_id": ["a", "b", "c"], "parent_id": ["x", "x", "x"], "level": "block",
                              "name": ["A", "B", "C"]},
                             geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 300, 100),
                                       shapely.box(0, 100, 100, 200)], crs="EPSG:32651")
    stocks = {2023: [100.0, 50.0, 10.0], 2024: [110.0, np.nan, 12.0], 2025: [140.0, 40.0, np.nan]}
    tables = [pd.DataFrame({"zone_id": ["c", "b", "a"], "carbon_t": stocks[y][::-1], "area_ha": [1.0, 2.0, 1.0]})
              for y in years]  # rows in another order than the zones
    rng = np.random.default_rng(1)
    z = rng.standard_normal(500)
    sums = []
    for k, y in enumerate(years):
        est = np.nan_to_num(np.array(stocks[y]), nan=999.0)  # the sums know a number even where the table does not
        sums.append((est, est[:, None] + np.outer([1.0, 1.0, 1.0], 0.5 * k * z)))  # draw slope 0.5 z per year
    table = trend.zone_trend_table(zones, tables, sums, years, 90)
    a, b, c = (table.iloc[i] for i in range(3))
    # a: pair slopes (110-100)/1 = 10, (140-110)/1 = 30, (140-100)/2 = 20 -> median 20
    assert a["trend_t_yr"] == pytest.approx(20.0) and a["n_years"] == 3 and a["trend_t_ha_yr"] == pytest.approx(20.0)
    # draw b: 100, 110 + 0.5 z, 140 + z: pair slopes 10 + 0.5 z, 30 + 0.5 z, 20 + 0.5 z -> median 20 + 0.5 z
    lo, hi = np.quantile(20.0 + 0.5 * z, [0.05, 0.95])
    assert a["trend_t_yr_draws_lo"] == pytest.approx(lo) and a["trend_t_yr_draws_hi"] == pytest.approx(hi)
    # the scatter: with 3 years Sen's 90 % interval is the smallest to the largest pair slope, [10, 30]
    assert a["trend_t_yr_scatter_lo"] == pytest.approx(10.0) and a["trend_t_yr_scatter_hi"] == pytest.approx(30.0)
    # the two half-widths in quadrature on each side
    assert a["trend_t_yr_lo"] == pytest.approx(20.0 - np.hypot(20.0 - lo, 10.0))
    assert a["trend_t_yr_hi"] == pytest.approx(20.0 + np.hypot(hi - 20.0, 10.0))
    assert bool(a["trend_significant"]) and a["trend_class"] == "gain"
    # b: 2024 unknown in the table -> left out: (40 - 50)/2 = -5 per year over 2 ha
    assert b["trend_t_yr"] == pytest.approx(-5.0) and b["n_years"] == 2 and b["trend_t_ha_yr"] == pytest.approx(-2.5)
    # c: known in 2023 and 2024: 2 per year from two years
    assert c["trend_t_yr"] == pytest.approx(2.0) and c["n_years"] == 2
    assert list(table[[f"carbon_t_{y}" for y in years]].iloc[0]) == [100.0, 110.0, 140.0]
    assert np.isnan(table.loc[1, "carbon_t_2024"])
    assert (table["years"] == "2023-2025").all()
    # a zone with one known year: unknown, not 0, and its flag is empty
    tables[0].loc[tables[0]["zone_id"] == "c", "carbon_t"] = np.nan
    table = trend.zone_trend_table(zones, tables, sums, years, 90)
    assert np.isnan(table.loc[2, ["trend_t_yr", "trend_t_yr_lo", "trend_t_yr_hi", "trend_t_ha_yr"]].astype(float)).all()
    assert pd.isna(table.loc[2, "trend_significant"]) and table.loc[2, "trend_class"] == "unknown"
    assert table.loc[2, "n_years"] == 1


# ----------------------------------------------------------------------------- the years' scatter (Sen 1968)

NAIP_YEARS = [2009, 2010, 2012, 2014, 2015, 2016, 2017, 2018, 2019, 2020]
D4_B08 = [109.0, 308.0, 5.0, 156.0, 3.0, 215.0, 174.0, 201.0, 214.0, 25.0]  # NAIP block D4-B08, t C


@pytest.mark.parametrize("pct", [80.0, 90.0, 95.0])
def test_scatter_interval_is_scipys_sen_interval(pct):
    # scipy.stats.theilslopes(y, x, alpha) returns Sen's (1968) interval, eq. 2.6, ties in y included
    rng = np.random.default_rng(int(pct))
    for n in (2, 3, 4, 6, 10):
        years = NAIP_YEARS[:n]
        values = rng.normal(0, 3, (40, n)) + 0.5 * np.arange(n)
        values[::4] = np.round(values[::4])  # ties
        lo, hi = trend.scatter_interval(values, years, pct)
        for v, a, b in zip(values, lo, hi, strict=True):
            _, _, want_lo, want_hi = theilslopes(v, years, alpha=pct / 100)
            assert (a, b) == pytest.approx((want_lo, want_hi), abs=1e-12), (n, v)
    lo, hi = trend.scatter_interval(np.array(D4_B08), NAIP_YEARS, pct)
    assert (lo, hi) == pytest.approx(theilslopes(D4_B08, NAIP_YEARS, alpha=pct / 100)[2:], abs=1e-12)


def test_scatter_interval_by_hand_and_nan_years():
    # 4 years 0..3, values 0 2 3 7: slopes sorted 1 2 2.333 2.5 3.5 4 (N = 6); Var S = 4*3*13/18 = 26/3,
    # C = 1.6449 * 2.944 = 4.843 at 90 %: ranks round(0.58) = 1 and round(5.42) + 1 = 6 -> [1, 4]
    lo, hi = trend.scatter_interval(np.array([0.0, 2.0, 3.0, 7.0]), [0, 1, 2, 3], 90)
    assert (lo, hi) == (1.0, 4.0)
    # a year without observation leaves its pairs out; fewer than two observed years: NaN, never 0
    v = np.array([[0.0, np.nan, 3.0, 7.0], [np.nan, np.nan, 1.0, np.nan]])
    lo, hi = trend.scatter_interval(v, [0, 1, 2, 3], 90)
    assert (lo[0], hi[0]) == pytest.approx(theilslopes([0.0, 3.0, 7.0], [0, 2, 3], alpha=0.9)[2:])
    assert np.isnan(lo[1]) and np.isnan(hi[1])
    # two years: one slope, no scatter to measure
    assert trend.scatter_interval(np.array([1.0, 4.0]), [2020, 2023], 90) == (1.0, 1.0)


def noisy_and_clean_zones():
    """Two zones over the ten NAIP years, draws with a tight slope error (sd 2 t C/yr about the estimate's slope):
    'noisy' is block D4-B08's stocks, whose first-to-last change (-84 t C) is against its trend (+4.4 t C/yr);
    'clean' is 100 + 12 (t - 2009) plus a little wobble."""
    years = NAIP_YEARS
    t = np.array(years, float) - years[0]
    clean = 100.0 + 12.0 * t + np.array([0.5, -0.3, 0.2, -0.4, 0.1, 0.3, -0.2, 0.4, -0.1, 0.0])
    stocks = np.stack([np.array(D4_B08), clean])  # (Z, Y)
    zones = gpd.GeoDataFrame({"zone_id": ["noisy", "clean"], "parent_id": "x", "level": "block",
                              "name": ["noisy", "clean"]},
                             geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)], crs="EPSG:32614")
    tables = [pd.DataFrame({"zone_id": ["noisy", "clean"], "carbon_t": stocks[:, k], "area_ha": 1.0})
              for k in range(len(years))]
    z = np.random.default_rng(5).standard_normal((2, 400))
    sums = [(stocks[:, k], stocks[:, k, None] + 2.0 * t[k] * z) for k in range(len(years))]  # draw slope + 2 z
    return zones, tables, sums, years, stocks


def test_noisy_series_is_not_significant_but_the_draws_alone_would_say_so():
    zones, tables, sums, years, stocks = noisy_and_clean_zones()
    table = trend.zone_trend_table(zones, tables, sums, years, 90).set_index("zone_id")
    noisy, clean = table.loc["noisy"], table.loc["clean"]
    est = theilslopes(D4_B08, years)[0]
    assert noisy["trend_t_yr"] == pytest.approx(est) and est > 0 > D4_B08[-1] - D4_B08[0]
    # the draws alone: a tight interval about the estimate, excluding 0 (what the table said before)
    assert 0 < noisy["trend_t_yr_draws_lo"] < est < noisy["trend_t_yr_draws_hi"] < est + 5
    # the scatter: scipy's Sen interval, holding 0
    s_lo, s_hi = theilslopes(D4_B08, years, alpha=0.9)[2:]
    assert (noisy["trend_t_yr_scatter_lo"], noisy["trend_t_yr_scatter_hi"]) == pytest.approx((s_lo, s_hi))
    assert s_lo < 0 < s_hi
    # combined, by hand: each side's half-widths in quadrature
    d_lo, d_hi = noisy["trend_t_yr_draws_lo"], noisy["trend_t_yr_draws_hi"]
    assert noisy["trend_t_yr_lo"] == pytest.approx(est - np.hypot(est - d_lo, est - s_lo))
    assert noisy["trend_t_yr_hi"] == pytest.approx(est + np.hypot(d_hi - est, s_hi - est))
    assert not noisy["trend_significant"] and noisy["trend_class"] != "gain"
    # a clean linear series stays significant, its interval close to the draws' (the scatter is small)
    assert clean["trend_t_yr"] == pytest.approx(12.0, abs=0.2) and clean["trend_significant"]
    assert clean["trend_class"] == "gain" and clean["trend_t_yr_lo"] > 5
    assert clean["trend_t_yr_scatter_hi"] - clean["trend_t_yr_scatter_lo"] < 0.5


def test_pixel_trend_uses_the_same_combined_interval():
    zones, tables, sums, years, stocks = noisy_and_clean_zones()
    est = stocks.T  # (Y, 2): the two series as two pixels
    draws = np.stack([d for _, d in sums]).transpose(0, 2, 1)  # (Y, B, 2)
    bands, counts = trend.pixel_trend(lambda idx: (est[:, idx], draws[:, :, idx]), np.arange(2), (1, 2), years, 90)
    table = trend.zone_trend_table(zones, tables, sums, years, 90)
    flat = bands.reshape(4, -1)
    np.testing.assert_allclose(flat[0], table["trend_t_yr"], rtol=1e-6)
    np.testing.assert_allclose(flat[1], table["trend_t_yr_lo"], rtol=1e-6)
    np.testing.assert_allclose(flat[2], table["trend_t_yr_hi"], rtol=1e-6)
    assert list(flat[3]) == [0.0, 1.0]  # noisy not significant, clean significant
    assert counts["not_significant"] == 1 and counts["significant_gain"] == 1


# ----------------------------------------------------------------------------- pairing N years


def models_with_plots(records):
    return {"residual_field": {"plots": records, "measurement": {"year_correlation": 0.0}}}


def test_series_year_correlation_pools_every_pair_of_years():
    rng = np.random.default_rng(9)
    n = 80
    persistent = rng.normal(0, 0.3, n)
    years = [persistent + rng.normal(0, 0.2, n) for _ in range(3)]
    models = [models_with_plots([[f"p{i}", "G1", 0.0, 0.0, float(r[i]), 0.0] for i in range(n)]) for r in years]
    got = series_year_correlation(models, {})
    # independently: Pearson over the stacked pairs (0,1), (0,2), (1,2)
    x = np.concatenate([years[0], years[0], years[1]])
    y = np.concatenate([years[1], years[2], years[2]])
    assert got["rho"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert got["n"] == 3 * n
    assert set(got["pairs"]) == {"0-1", "0-2", "1-2"}
    # two years: the pair's own correlation, as rule change uses
    two = series_year_correlation(models[:2], {})
    assert two["rho"] == pytest.approx(residual_year_correlation(models[0], models[1], {})["rho"], abs=1e-12)
    # a configured number wins
    assert series_year_correlation(models, {"residual": {"year_correlation": 0.4}})["rho"] == 0.4


def test_series_residual_field_of_two_years_is_the_pairs_field():
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 5000, (120, 2))
    models = [models_with_plots([[f"p{i}", "G1", float(x), float(y), float(r), 0.01]
                                 for i, ((x, y), r) in enumerate(zip(xy, rng.normal(0, 0.2, 120), strict=True))])
              for _ in range(3)]
    two = series_residual_field(models[:2], {})
    pair = paired_residual_field(models[0], models[1], {})
    assert (two.nugget, two.psill, two.range_m, two.n_plots) == (pair.nugget, pair.psill, pair.range_m, pair.n_plots)
    three = series_residual_field(models, {})
    assert three.n_plots == 360 and three.measurement["var"] == pytest.approx(0.01)
    assert series_residual_field([{}, {}], {}) is None


def test_paired_draws_of_three_years_share_the_correlation():
    # e_y = sqrt(rho) E_common + sqrt(1 - rho) E_y: every pair of years correlates by rho, each year has variance 1
    rho, width, height, draws = 0.6, 200, 50, 40
    field = ResidualField(nugget=1.0, psill=0.0, range_m=10.0, n_plots=100, method="test")
    idx = np.arange(width * height)
    terms = []
    for year in (2023, 2024, 2025):
        spec = NoiseSpec(seed=5, year=year, residual=field, rho=rho, paired=True, width=width, height=height)
        total, _ = Noise(spec, draws).pixel_terms(idx, np.ones(idx.size), np.zeros(idx.size), np.zeros(idx.size),
                                                  parts=False)
        terms.append(np.asarray(total, dtype=float).ravel())
    for a in range(3):
        assert np.var(terms[a]) == pytest.approx(1.0, abs=0.02)
        for b in range(a + 1, 3):
            assert np.corrcoef(terms[a], terms[b])[0, 1] == pytest.approx(rho, abs=0.02)


# ----------------------------------------------------------------------------- workflow (shared baseline run)


def run_years(run: Path) -> list[int]:
    return sorted(yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["years"])


@pytest.mark.slow
def test_workflow_trend_agrees_with_the_period_change_and_the_yearly_stocks(baseline_run):
    import rasterio

    years = run_years(baseline_run)
    if len(years) < 3:
        pytest.skip(f"the baseline demo run has {len(years)} years {years}; the trend test needs 3 (demo config years)")
    first, last = years[0], years[-1]
    res = baseline_run / "results"
    record = json.loads((res / "change/trend/trend.json").read_text(encoding="utf-8"))
    assert record["years"] == years and record["draws"] > 1
    with rasterio.open(res / "change/trend/trend.tif") as src:
        assert list(src.descriptions) == trend.TREND_BANDS
        bands = src.read().astype(float)
    with rasterio.open(res / f"{first}/carbon.tif") as a, rasterio.open(res / f"{last}/carbon.tif") as b:
        change = (b.read(1).astype(float) - a.read(1).astype(float)) / (last - first)
    est, lo, hi, flag = bands
    sig = flag == 1
    assert sig.sum() > 20
    # where significant, the trend has the sign of the first-to-last change
    assert (np.sign(est[sig]) == np.sign(change[sig])).mean() > 0.99
    assert ((lo[sig] > 0) | (hi[sig] < 0)).all() and ((lo <= est) & (est <= hi))[np.isfinite(est)].all()
    # unknown where the stock is unknown in too many years: NaN in every band, never 0
    assert np.isnan(flag[np.isnan(est)]).all()
    if np.ptp(np.diff(years)) == 0 and len(years) == 3:  # three equal steps: Theil-Sen is the first-to-last slope
        ok = np.isfinite(change) & np.isfinite(est)
        np.testing.assert_allclose(est[ok], change[ok], atol=1e-3)
    for level in ("city", "district", "block", "parcel"):
        t = pd.read_csv(res / f"change/trend/zones/{level}.csv", dtype={"zone_id": str, "parent_id": str})
        stocks = t[[f"carbon_t_{y}" for y in years]].to_numpy(float)
        known = np.isfinite(stocks).sum(axis=1) >= 2
        # the zone estimate is the Theil-Sen of its yearly stocks as published (scipy, years with a stock)
        want = [theilslopes(s[np.isfinite(s)], np.array(years)[np.isfinite(s)])[0] for s in stocks[known]]
        np.testing.assert_allclose(t.loc[known, "trend_t_yr"], want, rtol=1e-6, atol=1e-6)
        assert t.loc[~known, "trend_t_yr"].isna().all()
        s = t["trend_significant"].astype("boolean")
        period = stocks[:, -1] - stocks[:, 0]
        both = s.fillna(False).to_numpy(bool) & np.isfinite(period) & (period != 0)
        assert (np.sign(t.loc[both, "trend_t_yr"]) == np.sign(period[both])).all()
        np.testing.assert_allclose(t["trend_t_ha_yr"], t["trend_t_yr"] / t["area_ha"], rtol=1e-9)
    city = pd.read_csv(res / "change/trend/zones/city.csv")
    c = city[[f"carbon_t_{y}" for y in years]].to_numpy(float)[0]
    assert city["trend_t_yr"][0] == pytest.approx(theilslopes(c, years)[0], rel=1e-6)
    if np.ptp(np.diff(years)) == 0 and len(years) == 3:
        # medians of slopes do not add up in general; with three equal steps the trend is (last - first) / 2,
        # linear in the stocks, so it nests as the stocks do (where every zone's trend is known)
        for level in ("district", "block", "parcel"):
            t = pd.read_csv(res / f"change/trend/zones/{level}.csv")
            if t["trend_t_yr"].notna().all():
                assert t["trend_t_yr"].sum() == pytest.approx(city["trend_t_yr"][0], rel=1e-6, abs=1e-6)
    # the period pair is made by rule change, beside the consecutive pairs
    assert (res / f"change/{first}_{last}/sink.tif").is_file()


@pytest.mark.slow
def test_workflow_trend_of_the_demo_is_observed_in_every_year(baseline_run):
    """The demo city is seen clear in every year (no NaN in any year's carbon map): every zone with typed land has
    observed_all_pct 100 %, none is flagged, and the observed trend is the trend, interval included, to the bit."""
    import rasterio

    years = run_years(baseline_run)
    res = baseline_run / "results"
    for year in years:  # the premise, checked independently of the trend: every carbon map known everywhere
        with rasterio.open(res / f"{year}/carbon.tif") as src:
            assert not np.isnan(src.read(1)).any(), year
    for level in ("city", "district", "block", "parcel"):
        t = pd.read_parquet(res / f"change/trend/zones/{level}.parquet")
        typed = t["observed_all_pct"].notna()
        assert typed.any(), level
        np.testing.assert_allclose(t.loc[typed, "observed_all_pct"], 100.0, atol=1e-6)
        assert not t["trend_partly_observed"].fillna(False).any(), level
        for col in ("t_yr", "t_yr_lo", "t_yr_hi"):
            np.testing.assert_array_equal(t[f"trend_observed_{col}"], t[f"trend_{col}"], err_msg=f"{level} {col}")
    assert "partly observed" not in (baseline_run / "logs/change/trend.log").read_text(encoding="utf-8")
