"""Every error source of the Monte Carlo draws (greensink.uncertainty) on hand-computed cases:
the residual field's zone variance, the variogram fit, paired years, U %, the conservative bound,
the sink classes, and determinism (same seed, same draws; the strip height does not change carbon.tif)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from greensink.carbon import carbon_map_streamed, pixel_function
from greensink.change import change_table, sink_classes
from greensink.uncertainty import (
    Noise,
    NoiseSpec,
    ResidualField,
    fit_variogram,
    ndvi_standard_error,
    paired_residual_field,
    plot_measurement,
    plots_needed,
    residual_field,
    u_pct,
    variance_shares,
    year_correlation,
)


def field_noise(psill: float, nugget: float, range_m: float, *, n_draws: int, width: int, height: int,
                year: int | None = 2023, rho: float = 1.0, paired: bool = False, seed: int = 5) -> Noise:
    res = ResidualField(nugget=nugget, psill=psill, range_m=range_m, n_plots=100, method="test")
    spec = NoiseSpec(seed=seed, year=year, residual=res, rho=rho, paired=paired, resolution_m=10.0,
                     width=width, height=height)
    return Noise(spec, n_draws)


def test_residual_field_zone_variance_matches_its_covariance():
    # A 12 × 12 grid of 10 m pixels, psill 1, no nugget, range 30 m. The simulated field is separable
    # exponential: C(dx, dy) = exp(−(|dx| + |dy|)·10 m / L), L = 30·√(π/2) = 37.60 m, φ = exp(−10/L) = 0.7665.
    # A zone of the 4 × 4 pixels rows 3–6, cols 5–8 with weights 1/16 has
    # Var(Σ w_i e_i) = Σ_ij w_i w_j C(d_ij) = (Σ_a Σ_b φ^|a−b| / 16)² over a, b in 0..3 (separable)
    # = ((4 + 2(3φ + 2φ² + φ³)) / 16)² = ((4 + 2·(2.2995 + 1.1750 + 0.4503)) / 16)² = (11.849/16)² = 0.5484.
    n, w = 4000, 12
    noise = field_noise(1.0, 0.0, 30.0, n_draws=n, width=w, height=w)
    phi = math.exp(-10.0 / (30.0 * math.sqrt(math.pi / 2)))
    one_d = sum(phi ** abs(a - b) for a in range(4) for b in range(4)) / 16
    expected = one_d**2
    assert expected == pytest.approx(0.5484, abs=2e-3)
    gidx = np.array([r * w + c for r in range(3, 7) for c in range(5, 9)])
    e = noise.field(gidx)
    zone = e.mean(axis=1)
    var = zone.var()
    # the sampling sd of a variance of n Gaussian values is var·√(2/n) = 2.2 % of it; allow 4 sd
    assert var == pytest.approx(expected, rel=4 * math.sqrt(2 / n))
    # one pixel's variance is the partial sill, 1 (within 4 sampling sd)
    assert e[:, 0].var() == pytest.approx(1.0, rel=4 * math.sqrt(2 / n))
    # neighbours along a row correlate by φ (sd of a correlation estimate ≈ (1 − φ²)/√n)
    r = np.corrcoef(e[:, 0], e[:, 1])[0, 1]
    assert r == pytest.approx(phi, abs=4 * (1 - phi**2) / math.sqrt(n))


def test_nugget_adds_independent_pixel_variance():
    # nugget 0.04 (sd 0.2) at a pixel of density 10 t C/ha: the pixel term has sd 0.2 × 10 = 2 t C/ha;
    # the mean of 16 such independent pixels has variance 4/16 = 0.25.
    n, w = 4000, 8
    noise = field_noise(0.0, 0.04, 30.0, n_draws=n, width=w, height=w)
    gidx = np.arange(16)
    total, parts = noise.pixel_terms(gidx, np.full(16, 10.0), np.zeros(16), np.zeros(16))
    assert total.std(axis=0).mean() == pytest.approx(2.0, rel=0.05)
    assert total.mean(axis=1).var() == pytest.approx(0.25, rel=4 * math.sqrt(2 / n))
    assert set(parts) == {"residual", "ndvi", "edges"}


def test_variogram_fit_recovers_known_parameters():
    # 20 realisations of 300 points in a 3 km square; relative residuals with nugget 0.01, partial
    # sill 0.02 and range 200 m (exponential), simulated exactly by a Cholesky factor. One realisation
    # varies a lot (a range of 100–500 m), so the medians of the 20 fits are compared.
    rng = np.random.default_rng(11)
    fits = []
    for _ in range(20):
        xy = rng.uniform(0, 3000, (300, 2))
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        cov = 0.02 * np.exp(-d / 200.0) + 0.01 * np.eye(len(xy))
        v = np.linalg.cholesky(cov) @ rng.standard_normal(len(xy))
        f = fit_variogram(xy, v, n_bins=15, max_lag_m=1500)
        fits.append((f["nugget"], f["psill"], f["range_m"]))
    nugget, psill, range_m = np.median(fits, axis=0)
    assert nugget == pytest.approx(0.01, rel=0.2)
    assert psill == pytest.approx(0.02, rel=0.2)
    assert range_m == pytest.approx(200, rel=0.3)
    # no spatial structure: the partial sill is small against the nugget
    xy = rng.uniform(0, 3000, (500, 2))
    flat = fit_variogram(xy, rng.normal(0, 0.1, len(xy)), n_bins=15, max_lag_m=1500)
    assert flat["psill"] < 0.3 * (flat["nugget"] + flat["psill"])


def test_year_correlation_of_remeasured_plots():
    # residuals r1 = 0.9 r0 + 0.436 e (unit variance each): correlation 0.9
    rng = np.random.default_rng(3)
    r0 = rng.standard_normal(400)
    r1 = 0.9 * r0 + math.sqrt(1 - 0.81) * rng.standard_normal(400)
    p0 = [[str(i), "G1", 0.0, 0.0, float(a)] for i, a in enumerate(r0)]
    p1 = [[str(i), "G1", 0.0, 0.0, float(b)] for i, b in enumerate(r1)]
    out = year_correlation(p0, p1)
    assert out["n"] == 400 and out["rho"] == pytest.approx(0.9, abs=0.03)
    assert year_correlation(p0[:3], p1[:3])["rho"] == 1.0  # too few: assumed persistent


def remeasured(n: int, var_s: float, rho_s: float, var_m: float, rho_m: float, seed: int = 11):
    """Residual records of n plots measured in two years: r_y = s_y + m_y, the place's residual s
    (variance var_s, correlation rho_s between the years) plus the plot's measurement error m (variance
    var_m, correlation rho_m), each record with its measurement variance var_m."""
    rng = np.random.default_rng(seed)
    s0 = rng.standard_normal(n)
    s1 = rho_s * s0 + math.sqrt(1 - rho_s**2) * rng.standard_normal(n)
    u = rng.standard_normal(n)
    m0, m1 = (math.sqrt(rho_m) * u + math.sqrt(1 - rho_m) * rng.standard_normal(n) for _ in range(2))
    xy = rng.uniform(0, 5000, (n, 2))
    recs = []
    for s_, m_ in ((s0, m0), (s1, m1)):
        r = math.sqrt(var_s) * s_ + math.sqrt(var_m) * m_
        recs.append([[str(i), "G1", float(xy[i, 0]), float(xy[i, 1]), float(r[i]), var_m] for i in range(n)])
    return recs


def test_year_correlation_net_of_a_fresh_measurement_error():
    # persistent place residual s (var 0.01, rho_s = 1) plus a new measurement error each year (var 0.01):
    # the plain correlation is var(s)/(var(s) + var(m)) = 0.5, the corrected one var(s)/var(s) = 1.
    # n = 4000: sd of the plain estimate ≈ (1 − 0.5²)/√n = 0.012; of the corrected ratio cov/(var − var_m)
    # ≈ √2·√(2/n)·(var_r/var_s) ≈ 0.06 (each variance's relative sd is √(2/n)), so 4 sd ≈ 0.1 before the cap at 1.
    p0, p1 = remeasured(4000, 0.01, 1.0, 0.01, 0.0)
    out = year_correlation(p0, p1)
    assert out["rho_uncorrected"] == pytest.approx(0.5, abs=0.05)
    assert out["rho"] == pytest.approx(1.0, abs=0.1) and out["rho"] <= 1.0
    assert out["measurement_var"] == pytest.approx([0.01, 0.01])
    # without the measurement variance in the records: the plain correlation, as before
    bare0, bare1 = [r[:5] for r in p0], [r[:5] for r in p1]
    assert year_correlation(bare0, bare1)["rho"] == pytest.approx(out["rho_uncorrected"])
    # a known place correlation 0.6 under the same error: plain (0.6·0.01)/(0.02) = 0.3, corrected 0.6
    p0, p1 = remeasured(4000, 0.01, 0.6, 0.01, 0.0, seed=12)
    out = year_correlation(p0, p1)
    assert out["rho_uncorrected"] == pytest.approx(0.3, abs=0.05)
    assert out["rho"] == pytest.approx(0.6, abs=0.08)
    # a measurement error that persists (rho_m 0.81, as the demo's) enters the covariance too:
    # plain (0.006 + 0.0081)/0.02 = 0.705; corrected with rho_m: (0.0141 − 0.0081)/0.01 = 0.6
    p0, p1 = remeasured(4000, 0.01, 0.6, 0.01, 0.81, seed=13)
    assert year_correlation(p0, p1)["rho_uncorrected"] == pytest.approx(0.705, abs=0.05)
    assert year_correlation(p0, p1, measurement_year_correlation=0.81)["rho"] == pytest.approx(0.6, abs=0.08)


def test_nugget_net_of_the_plots_measurement_variance():
    # spatially independent residuals, var 0.03, of which 0.01 is measurement error: a pure nugget
    # of 0.03 (within sampling error) for the plots, 0.02 for the map's pixels
    rng = np.random.default_rng(4)
    n = 1500
    xy = rng.uniform(0, 3000, (n, 2))
    rel = rng.standard_normal(n) * math.sqrt(0.03)
    recs = [{"plot_id": str(i), "type": "G1", "x_m": xy[i, 0], "y_m": xy[i, 1], "rel": rel[i], "meas_var": 0.01}
            for i in range(n)]
    fld = residual_field(recs, measurement={"source": "test"})
    total = fld.nugget_plots + fld.psill
    assert total == pytest.approx(0.03, rel=0.12)
    assert fld.nugget == pytest.approx(max(fld.nugget_plots - 0.01, 0.0))
    assert fld.measurement == {"source": "test", "var": pytest.approx(0.01)}
    assert ResidualField.from_json(fld.to_json()).nugget_plots == pytest.approx(fld.nugget_plots)
    # the paired field of a sink: both years' plots in one variogram, the same correction
    models = {"residual_field": fld.to_json()}
    both = paired_residual_field(models, models, None)
    assert both.nugget == pytest.approx(max(both.nugget_plots - 0.01, 0.0))
    assert both.nugget_plots + both.psill == pytest.approx(0.03, rel=0.12)


def test_plot_measurement_source_and_year_correlation():
    assert plot_measurement(None, {}) == {"source": "uncertainty.plot_error_pct = 10 % of the plot's carbon",
                                          "plot_error_pct": 10.0, "year_correlation": 0.0}
    assert plot_measurement({"plot_error_year_correlation": 0.81}, {})["year_correlation"] == 0.81
    tree = {"plot_carbon": {"source": "tree_inventory", "errors": {"allometric": True, "allometric_year_correlation": 1.0}}}
    out = plot_measurement(None, tree, carbon_draws=np.zeros((1, 2)))
    assert out["year_correlation"] == 1.0 and out["plot_error_pct"] is None


def test_paired_years_give_a_narrower_sink_than_unpaired():
    # Nugget only (σ² = 0.04) at 10 t C/ha in both years: a pixel's sink draw (year 1 − year 0) has
    # variance 2·σ²·10²·(1 − ρ) = 8·(1 − ρ): 0.8 with ρ = 0.9, 8 with ρ = 0 (unpaired).
    n, w = 4000, 4
    gidx = np.arange(16)
    amp = np.full(16, 10.0)

    def sink_var(rho: float) -> float:
        d0 = field_noise(0.0, 0.04, 30.0, n_draws=n, width=w, height=w, year=2023, rho=rho, paired=True)
        d1 = field_noise(0.0, 0.04, 30.0, n_draws=n, width=w, height=w, year=2024, rho=rho, paired=True)
        z0 = d0.pixel_terms(gidx, amp, np.zeros(16), np.zeros(16))[0]
        z1 = d1.pixel_terms(gidx, amp, np.zeros(16), np.zeros(16))[0]
        return float((z1 - z0).var(axis=0).mean())

    paired, unpaired = sink_var(0.9), sink_var(0.0)
    assert paired == pytest.approx(0.8, rel=0.1)
    assert unpaired == pytest.approx(8.0, rel=0.1)
    assert paired < unpaired


def test_u_pct_and_conservative_bound_by_hand():
    # draws 0, 1, ..., 100 (numpy's linear quantiles): q2.5 = 2.5, q97.5 = 97.5; estimate 50:
    # U = ((97.5 − 2.5)/2)/50 × 100 = 95 %; a negative estimate uses |estimate|
    draws = np.arange(101.0)[np.newaxis, :]
    assert u_pct(draws, np.array([50.0]))[0] == pytest.approx(95.0)
    assert u_pct(draws - 100, np.array([-50.0]))[0] == pytest.approx(95.0)
    assert np.isnan(u_pct(draws, np.array([0.0]))[0])


def test_sink_classes_never_call_an_interval_with_zero_a_loss():
    est = np.array([-6.4, 3.0, -1.0, 2.0, np.nan])
    lo = np.array([-10.9, 1.0, -3.0, -0.5, np.nan])
    hi = np.array([-2.9, 5.0, 0.5, 4.0, np.nan])
    assert sink_classes(est, lo, hi) == ["loss", "gain", "no significant change", "no significant change", "unknown"]


def test_change_table_flags_and_conservative_sink():
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    zones = gpd.GeoDataFrame({"zone_id": ["a", "b"], "parent_id": ["X", "X"], "level": ["block"] * 2, "name": ["A", "B"]},
                             geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs="EPSG:32651")
    t = pd.DataFrame({"zone_id": ["a", "b"], "area_ha": [1.0, 1.0], "carbon_t": [10.0, 10.0], "green_area_ha": [0.5, 0.5]})
    # zone a: draws −3..−1 (interval below 0: a loss); zone b: draws −1..+1 (includes 0)
    draws = np.array([np.linspace(-3, -1, 101), np.linspace(-1, 1, 101)])
    est = np.array([-2.0, 0.2])
    out = change_table(zones, t, t, 2023, 2024, (est, draws))
    assert out["sink_class"].tolist() == ["loss", "no significant change"]
    assert out["no_net_carbon_loss"].tolist() == [False, True]
    # 90 % lower bound of a's draws: q5 of linspace(−3, −1, 101) = −3 + 0.05·2 = −2.9
    assert out["sink_t_yr_conservative"].iloc[0] == pytest.approx(-2.9)
    # U % of a: q2.5 = −2.95, q97.5 = −1.05: (1.9/2)/2 × 100 = 47.5 %
    assert out["sink_u_pct"].iloc[0] == pytest.approx(47.5)


def test_variance_shares_and_plots_needed_by_hand():
    # source a has variance 3 (draws ±√3), b variance 1 (±1): shares 75 % and 25 %
    parts = {"a": np.array([[math.sqrt(3), -math.sqrt(3)]]), "b": np.array([[1.0, -1.0]])}
    shares = variance_shares(parts)
    assert shares["a"][0] == pytest.approx(75.0) and shares["b"][0] == pytest.approx(25.0)
    # 40 plots at U 8 % for a 4 % target: 40 × (8/4)² = 160
    assert plots_needed(40, 8.0, 4.0) == 160


def test_ndvi_standard_error_by_hand():
    # σ_obs 0.03, n = 4: 1.2533 × 0.03 / 2 = 0.0188; n = 0: NaN
    se = ndvi_standard_error(np.array([4, 0, 1]), 0.03)
    assert se[0] == pytest.approx(0.018800, abs=1e-5)
    assert np.isnan(se[1])
    assert se[2] == pytest.approx(0.0376, abs=1e-4)


def _models(n_draws: int = 30) -> dict:
    rng = np.random.default_rng(1)
    boot = (np.array([2.0, 30.0]) + rng.normal(size=(n_draws, 2)) * [0.5, 2.0]).tolist()
    return {"types": {"G1": {"form": "linear", "source": "plots", "params": {"a": 2.0, "b": 30.0}, "bootstrap": boot},
                      "G2": {"form": "constant", "source": "table", "params": {"c": 12.0},
                             "bootstrap": (12.0 + rng.normal(size=(n_draws, 1))).tolist()}}}


def test_sources_sum_and_estimate_unchanged():
    # the estimate band never changes with the sources on; curve + table parts are the curve-only draws
    frac = np.zeros((2, 6, 5), dtype=np.float32)
    frac[0, :, :3] = 1.0
    frac[0, :, 3] = 0.4  # a green-space edge: typed fraction 0.4 + 0.3
    frac[1, :, 3] = 0.3
    frac[1, :, 4] = 1.0
    ndvi = np.full((6, 5), 0.6, dtype=np.float32)
    se = np.full((6, 5), 0.02, dtype=np.float32)
    models = _models()
    res = ResidualField(nugget=0.01, psill=0.02, range_m=40.0, n_plots=50, method="test")
    noise = Noise(NoiseSpec(seed=1, year=2023, residual=res, ndvi=True, position_sd_m=1.5, width=5, height=6), 30)
    idx = np.arange(30)
    est0, draws0 = pixel_function(models, ["G1", "G2"], frac, {"ndvi": ndvi})(idx)
    est, draws, parts = pixel_function(models, ["G1", "G2"], frac, {"ndvi": ndvi, "ndvi_se": se}, noise=noise,
                                       sources=True)(idx)
    np.testing.assert_array_equal(est, est0)
    np.testing.assert_allclose(parts["curve"] + parts["table"], draws0, rtol=1e-12)
    assert (parts["edges"][:, 3] != 0).all() and (parts["edges"][:, 0] == 0).all()  # only the edge column
    assert (parts["ndvi"][:, 4] == 0).all()  # a constant type has no NDVI slope
    assert (parts["residual"][:, 4] == 0).all()  # a table type has no plot residual
    assert draws.std(axis=0)[0] > draws0.std(axis=0)[0]


def test_same_seed_same_draws_and_strip_height_does_not_change_carbon(tmp_path: Path):
    from affine import Affine

    from greensink import io
    from greensink.grid import Grid

    rows, cols = 23, 17
    grid = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_230.0), width=cols,
                height=rows)
    rng = np.random.default_rng(4)
    frac = np.zeros((2, rows, cols), dtype=np.float32)
    frac[0] = (rng.random((rows, cols)) > 0.3) * rng.uniform(0.3, 1.0, (rows, cols))
    frac[1] = (1 - frac[0]) * (rng.random((rows, cols)) > 0.5)
    ndvi = rng.uniform(0.2, 0.9, (rows, cols)).astype(np.float32)
    se = np.full((rows, cols), 0.02, dtype=np.float32)
    fpath = io.write_raster(tmp_path / "fractions.tif", frac, grid, band_names=["G1", "G2"])
    npath = io.write_raster(tmp_path / "ndvi.tif", ndvi, grid, band_names=["ndvi"])
    spath = io.write_raster(tmp_path / "se.tif", se, grid, band_names=["ndvi_se"])
    res = ResidualField(nugget=0.01, psill=0.02, range_m=40.0, n_plots=50, method="test")
    spec = NoiseSpec(seed=9, year=2023, residual=res, ndvi=True, position_sd_m=1.5)
    out = {}
    for strip in (None, 5, 7):
        path = tmp_path / f"c{strip}.tif"
        carbon_map_streamed(_models(), ["G1", "G2"], fpath, {"ndvi": npath}, path, strip_rows=strip, noise=spec,
                            ndvi_se_path=spath, chunk_pixels=37)
        out[strip] = io.read_raster(path, bands=[1, 2, 3])
    np.testing.assert_array_equal(out[None], out[5])
    np.testing.assert_array_equal(out[None], out[7])
    # the bands are wider than the curve-only ones somewhere (the sources are in them)
    carbon_map_streamed(_models(), ["G1", "G2"], fpath, {"ndvi": npath}, tmp_path / "curve.tif")
    curve = io.read_raster(tmp_path / "curve.tif", bands=[1, 2, 3])
    np.testing.assert_array_equal(curve[0], out[None][0])  # the estimate band is unchanged
    assert np.nanmean(out[None][2] - out[None][1]) > np.nanmean(curve[2] - curve[1])
