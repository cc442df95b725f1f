"""The tabulated per-pixel interval (uncertainty.pixel_interval: tabulated) against the exact path.

Tolerance (docs/method.md §6, "Per-pixel interval, tabulated"):
* noise sources off: the exact band is deterministic (percentiles of the B curve and table draws); the
  tabulated band equals it within max(0.5 % of the exact band width, 0.01 t C/ha) at every pixel;
* noise sources on: the exact band is a B-draw Monte Carlo sample of the pixel's distribution, the tabulated
  one that distribution's percentile: 5 % of the exact draws lie below the tabulated lower bound and 5 %
  above the upper one (pooled over pixels, single-type, mixed and edge pixels alike), and each pixel's count
  is a Binomial(B, 0.05) count; the table itself equals the closed form it tabulates within 0.5 % of the band.
The checks use the noise numbers the exact path draws (greensink.uncertainty.Noise), not the closed form.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from scipy import stats

from greensink import io
from greensink.carbon import (
    IntervalTable,
    carbon_map_streamed,
    mixture_quantiles,
    pixel_function,
    tabulated_map,
    typed_pixels,
)
from greensink.grid import Grid
from greensink.uncertainty import Noise, NoiseSpec, ResidualField, _unit_triangular, pixel_noise_cdf

B = 200
TYPES = ["LIN", "POW", "EXP", "LOG", "TAB"]


def _models() -> dict:
    """Four curves fitted to plots (each form, one crossing 0 inside the NDVI range) and a table type."""
    rng = np.random.default_rng(5)
    forms = {"LIN": ("linear", 4.0, 40.0), "POW": ("power", 30.0, 1.2), "EXP": ("exponential", 0.9, 3.5),
             "LOG": ("logarithmic", 35.0, 8.0)}
    types = {}
    for t, (form, a, b) in forms.items():
        draws = np.column_stack([a + rng.normal(0, 0.1 * abs(a) + 0.2, B), b + rng.normal(0, 0.08 * abs(b), B)])
        types[t] = {"form": form, "predictors": ["ndvi"], "params": {"a": a, "b": b}, "bootstrap": draws.tolist(),
                    "x_range": [0.1, 0.9], "source": "plots"}
    types["TAB"] = {"form": "constant", "predictors": ["ndvi"], "params": {"c": 12.0},
                    "bootstrap": (12.0 * (1 + 0.2 * rng.standard_normal((B, 1)))).tolist(), "source": "table"}
    return {"types": types}


def _rasters(rows: int = 40, cols: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractions (whole, edge and mixed pixels), NDVI (with NaN) and its standard error."""
    rng = np.random.default_rng(11)
    frac = np.zeros((len(TYPES), rows, cols), np.float32)
    main = rng.integers(0, len(TYPES), (rows, cols))
    typed = rng.random((rows, cols)) < 0.8
    share = np.where(rng.random((rows, cols)) < 0.5, 1.0, rng.uniform(0.05, 1.0, (rows, cols)))
    mixed = typed & (rng.random((rows, cols)) < 0.15)
    for k in range(len(TYPES)):
        frac[k] = np.where(typed & (main == k), share, 0.0)
        frac[k] += np.where(mixed & ((main + 1) % len(TYPES) == k), (1 - share) * 0.9 + 0.05, 0.0)
    ndvi = rng.uniform(-0.05, 0.95, (rows, cols)).astype(np.float32)
    ndvi[rng.random((rows, cols)) < 0.03] = np.nan
    se = np.where(np.isfinite(ndvi), rng.uniform(0.01, 0.05, (rows, cols)), np.nan).astype(np.float32)
    return frac, ndvi, se


def _spec(rows: int, cols: int, on: bool) -> NoiseSpec:
    fld = ResidualField(nugget=0.02, psill=0.015, range_m=150.0, n_plots=80, method="test")
    return NoiseSpec(seed=3, year=2024, residual=fld if on else None, ndvi=on, position_sd_m=1.5 if on else 0.0,
                     resolution_m=10.0, width=cols, height=rows)


def _files(tmp_path: Path, frac, ndvi, se) -> tuple[Path, dict, Path]:
    rows, cols = ndvi.shape
    grid = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_000.0),
                width=cols, height=rows)
    f = io.write_raster(tmp_path / "fractions.tif", frac, grid, band_names=TYPES)
    n = io.write_raster(tmp_path / "ndvi.tif", ndvi[None], grid, band_names=["ndvi"])
    s = io.write_raster(tmp_path / "ndvi_se.tif", se[None], grid, band_names=["ndvi_se"])
    return f, {"ndvi": n}, s


def test_pixel_noise_cdf_is_the_distribution_of_the_drawn_noise() -> None:
    # independent: the triangular numbers the exact path draws, plus normal numbers for the field
    rng = np.random.default_rng(0)
    z = _unit_triangular(rng, (400_000,)).astype(np.float64)
    f = rng.standard_normal(400_000)
    w = np.linspace(-4.0, 4.0, 17)
    for alpha, sigma in ((0.0, 1.0), (1.0, 0.0), (0.4, 1.0), (1.0, 0.4), (0.8, 0.8)):
        empirical = ((alpha * f + sigma * z)[:, None] <= w).mean(axis=0)
        cdf, pdf = pixel_noise_cdf(w, alpha, sigma)
        assert np.abs(cdf - empirical).max() < 0.003  # 400k draws: sd of a share <= 0.0008
        h = 1e-5
        slope = (pixel_noise_cdf(w + h, alpha, sigma)[0] - pixel_noise_cdf(w - h, alpha, sigma)[0]) / (2 * h)
        np.testing.assert_allclose(pdf, slope, atol=1e-6)
    # by hand: the unit triangular on ±√6 has CDF (1 + w/√6)²/2 below 0
    c = math.sqrt(6.0)
    assert pixel_noise_cdf(np.array([-c, -c / 2, 0.0, c]), 0.0, 1.0)[0] == pytest.approx([0.0, 0.125, 0.5, 1.0])
    assert pixel_noise_cdf(np.array([1.0]), 2.0, 0.0)[0][0] == pytest.approx(stats.norm.cdf(0.5))


def test_mixture_quantiles_without_noise_are_numpy_percentiles_and_with_noise_the_mixture_s() -> None:
    rng = np.random.default_rng(1)
    values = rng.gamma(3.0, 2.0, (6, B))
    np.testing.assert_array_equal(mixture_quantiles(values, 0.0, 0.0, (0.05, 0.95)),
                                  np.quantile(values, [0.05, 0.95], axis=1))
    alpha, sigma = np.array([0.0, 1.0, 0.5, 2.0, 0.1, 3.0]), np.array([1.0, 0.0, 0.5, 1.0, 0.1, 3.0])
    q = mixture_quantiles(values, alpha, sigma, (0.05, 0.95))
    # Monte Carlo of the same mixture: a uniform draw b, then the two noise numbers
    n = 400_000
    for r in range(values.shape[0]):
        sample = (values[r, rng.integers(0, B, n)] + alpha[r] * rng.standard_normal(n)
                  + sigma[r] * _unit_triangular(rng, (n,)).astype(np.float64))
        share = [(sample <= q[0, r]).mean(), (sample <= q[1, r]).mean()]
        assert share == pytest.approx([0.05, 0.95], abs=0.002)


def test_noise_off_the_tabulated_band_equals_the_exact_band(tmp_path: Path) -> None:
    frac, ndvi, se = _rasters()
    fpath, preds, _ = _files(tmp_path, frac, ndvi, se)
    spec = _spec(*ndvi.shape, on=False)
    out = {}
    for method in ("exact", "tabulated"):
        carbon_map_streamed(_models(), TYPES, fpath, preds, tmp_path / f"{method}.tif", noise=spec, strip_rows=16,
                            interval_method=method)
        out[method] = io.read_raster(tmp_path / f"{method}.tif").astype(np.float64)
    exact, tab = out["exact"], out["tabulated"]
    np.testing.assert_array_equal(tab[0], exact[0])  # the estimate band is the same, bit for bit
    assert np.array_equal(np.isnan(tab), np.isnan(exact))
    ok = np.isfinite(exact[1])
    width = (exact[2] - exact[1])[ok]
    tol = np.maximum(0.005 * width, 0.01)
    for band in (1, 2):
        assert (np.abs(tab[band][ok] - exact[band][ok]) <= tol).all()
    assert (np.abs(tab[1:, ok] - exact[1:, ok]) > 1e-6).any()  # a table, not the exact path under another name


def test_noise_on_the_tabulated_band_holds_the_exact_draws_distribution(tmp_path: Path) -> None:
    models = _models()
    frac, ndvi, se = _rasters()
    rows, cols = ndvi.shape
    spec = _spec(rows, cols, on=True)
    layers = {"ndvi": ndvi, "ndvi_se": se}
    table = IntervalTable(models, TYPES, Noise(spec, B), 90.0)
    band = tabulated_map(models, TYPES, frac, layers, table, noise=Noise(spec, B), chunk_pixels=500)
    active = typed_pixels(frac)
    est, draws = pixel_function(models, TYPES, frac, layers, noise=Noise(spec, B))(active)
    np.testing.assert_array_equal(band[0].reshape(-1)[active].astype(np.float32), est.astype(np.float32))
    ok = np.isfinite(est)
    lo, hi = band[1].reshape(-1)[active][ok], band[2].reshape(-1)[active][ok]
    d = draws[:, ok]
    below, above = (d < lo).sum(axis=0), (d > hi).sum(axis=0)
    n_types = (frac.reshape(len(TYPES), -1)[:, active][:, ok] > 0).sum(axis=0)
    edge = frac.reshape(len(TYPES), -1)[:, active][:, ok].sum(axis=0) < 0.999
    positive = lo > 0  # where the floor at 0 holds the lower bound, more than 5 % of draws sit at 0
    for name, sel in (("all", positive), ("mixed", positive & (n_types > 1)), ("edge", positive & edge)):
        assert sel.sum() > 100, name
        # pooled over pixels: the draws are independent between pixels but for the shared curve draws and the
        # correlated field; 0.05 ± 0.006 is > 4 standard errors at these counts
        assert below[sel].mean() / B == pytest.approx(0.05, abs=0.006), name
        assert above[sel].mean() / B == pytest.approx(0.05, abs=0.006), name
    # per pixel: counts of a Binomial(200, 0.05); outside its 99.9 % range at about 0.1 % of pixels
    lo_k, hi_k = stats.binom.ppf([0.0005, 0.9995], B, 0.05)
    assert ((below[positive] < lo_k) | (below[positive] > hi_k)).mean() < 0.01
    assert ((above < lo_k) | (above > hi_k)).mean() < 0.01


def test_the_table_equals_the_closed_form_it_tabulates() -> None:
    models = _models()
    spec = _spec(10, 10, on=True)
    noise = Noise(spec, B)
    table = IntervalTable(models, TYPES, noise, 90.0)
    rng = np.random.default_rng(7)
    for k in range(4):
        preds, form, params, boot = table.specs[k][0]
        x = rng.uniform(0.0, 0.95, 400)
        from greensink.model import predict

        v = np.maximum(predict(form, params, x, preds), 0.0)
        vals = np.maximum(predict(form, boot, x, preds), 0.0).T
        sigma = v * rng.uniform(0.0, 1.2, x.size) ** 2
        direct = mixture_quantiles(vals, noise.sd_field * v, sigma, table.probs)
        looked, inside = table.lookup(k, 0, x, sigma)
        assert inside.all()
        width = direct[1] - direct[0]
        assert (np.abs(looked - direct) <= 0.005 * width + 1e-9).all(), form


def test_tabulated_is_the_default_of_the_config_and_needs_no_seed(tmp_path: Path) -> None:
    from greensink.carbon import run_carbon

    frac, ndvi, se = _rasters(12, 20)
    fpath, preds, sepath = _files(tmp_path, frac, ndvi, se)
    models = io.write_json(tmp_path / "models.json", {**_models(), "residual_field": dataclasses.asdict(
        ResidualField(nugget=0.02, psill=0.015, range_m=150.0, n_plots=80, method="test"))})
    bands = {}
    for name, seed, unc in (("a", 1, {}), ("b", 2, {}), ("x", 1, {"pixel_interval": "exact"}),
                            ("y", 2, {"pixel_interval": "exact"})):
        run_carbon(models, preds, fpath, sepath, tmp_path / f"{name}.tif", tmp_path / f"{name}.json", types=TYPES,
                   year=2024, seed=seed, uncertainty=unc)
        bands[name] = io.read_raster(tmp_path / f"{name}.tif")
    np.testing.assert_array_equal(bands["a"], bands["b"])  # closed form: no random numbers
    assert not np.array_equal(bands["x"][1:], bands["y"][1:], equal_nan=True)  # exact: the seed's draws
    np.testing.assert_array_equal(bands["a"][0], bands["x"][0])


def test_the_solvers_fused_noise_cdf_equals_the_unfused_one_in_every_regime() -> None:
    # the solver's inner loop (carbon._mixed_cdf_means) against uncertainty.pixel_noise_cdf, averaged over the draws
    from greensink.carbon import _mixed_cdf_means

    rng = np.random.default_rng(3)
    values = rng.gamma(2.0, 3.0, (300, B))
    rows = rng.permutation(300)[:250]  # a subset, out of order, as the solver's active rows
    q = rng.uniform(-5.0, 25.0, rows.size)
    for regime, alpha, sigma in (("mixed", rng.uniform(0.1, 3.0, 300), rng.uniform(0.1, 3.0, 300)),
                                 ("normal", rng.uniform(0.1, 3.0, 300), np.zeros(300)),
                                 ("triangular", np.zeros(300), rng.uniform(0.1, 3.0, 300))):
        cdf, pdf = pixel_noise_cdf(q[:, None] - values[rows], alpha[rows, None], sigma[rows, None])
        got_cdf, got_pdf, got_slope = _mixed_cdf_means(q, values, rows, alpha, sigma, regime=regime)
        np.testing.assert_allclose(got_cdf, cdf.mean(axis=1), rtol=0, atol=1e-14, err_msg=regime)
        np.testing.assert_allclose(got_pdf, pdf.mean(axis=1), rtol=1e-12, atol=1e-15, err_msg=regime)
        assert 0.05 < got_cdf.mean() < 0.95  # the points span the distributions, not only their tails
        # the density's slope (the solver's Halley steps) against a central difference of the unfused density
        h = 1e-5
        up = pixel_noise_cdf(q[:, None] + h - values[rows], alpha[rows, None], sigma[rows, None])[1].mean(axis=1)
        down = pixel_noise_cdf(q[:, None] - h - values[rows], alpha[rows, None], sigma[rows, None])[1].mean(axis=1)
        np.testing.assert_allclose(got_slope, (up - down) / (2 * h), rtol=0, atol=2e-4 * np.abs(got_slope).max(),
                                   err_msg=regime)



def test_the_fused_noise_cdfs_row_means_are_np_mean_bit_for_bit() -> None:
    # the triangular regime's per-draw CDF written out element by element (same operations, same order): the
    # solver's row means (row sums, divided by B once after the blocks) must be np.mean's, to the bit
    from greensink.carbon import _mixed_cdf_means
    from greensink.uncertainty import TRIANGULAR_HALF_WIDTH

    rng = np.random.default_rng(5)
    values = rng.gamma(2.0, 3.0, (400, B))
    rows = rng.permutation(400)[:333]  # more rows than one block of the fused loop
    q = rng.uniform(-2.0, 20.0, rows.size)
    sigma = rng.uniform(0.1, 3.0, 400)
    sc = sigma[rows, None] * TRIANGULAR_HALF_WIDTH
    u = np.clip((q[:, None] - values[rows]) / sc, -1.0, 1.0)
    x = 1.0 - np.abs(u)
    half = x * x * 0.5
    ref = np.where(u > 0, 1.0 - half, half).mean(axis=1)
    got, dens, _ = _mixed_cdf_means(q, values, rows, np.zeros(400), sigma, regime="triangular")
    assert got.tobytes() == ref.tobytes()
    assert dens.tobytes() == (x / sc).mean(axis=1).tobytes()
    assert 0.05 < got.mean() < 0.95

def _two_type_rasters(rows: int = 50, cols: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearly every pixel shared by two types: every pair of the five (curve and curve on one axis, on the
    linear and the log axis, curve and table constant), shares over 0.02..0.98, some pixels cut by an edge
    (summed fraction < 1), NDVI over −0.05..0.95 (below the log axis' start at some), a few NaN."""
    rng = np.random.default_rng(21)
    n = len(TYPES)
    frac = np.zeros((n, rows, cols), np.float32)
    first = rng.integers(0, n, (rows, cols))
    second = (first + rng.integers(1, n, (rows, cols))) % n
    share = rng.uniform(0.02, 0.98, (rows, cols))
    total = np.where(rng.random((rows, cols)) < 0.7, 1.0, rng.uniform(0.2, 1.0, (rows, cols)))
    one = rng.random((rows, cols)) < 0.05  # a few pixels of one type among them
    for k in range(n):
        frac[k] += np.where(first == k, np.where(one, total, share * total), 0.0).astype(np.float32)
        frac[k] += np.where((second == k) & ~one, (1 - share) * total, 0.0).astype(np.float32)
    ndvi = rng.uniform(-0.05, 0.95, (rows, cols)).astype(np.float32)
    ndvi[rng.random((rows, cols)) < 0.02] = np.nan
    se = np.where(np.isfinite(ndvi), rng.uniform(0.01, 0.05, (rows, cols)), np.nan).astype(np.float32)
    return frac, ndvi, se


@pytest.fixture(scope="module")
def two_type_case() -> tuple:
    """The two-type rasters' tabulated map through pair tables (built once: the tables take seconds)."""
    models = _models()
    frac, ndvi, se = _two_type_rasters()
    spec = _spec(*ndvi.shape, on=True)
    layers = {"ndvi": ndvi, "ndvi_se": se}
    table = IntervalTable(models, TYPES, Noise(spec, B), 90.0, pairs=True)
    band = tabulated_map(models, TYPES, frac, layers, table, noise=Noise(spec, B), chunk_pixels=700)
    return models, frac, layers, spec, table, band


def test_two_type_pixels_through_pair_tables_equal_the_closed_form_of_their_own_draws(two_type_case) -> None:
    # the pair tables (IntervalTable.pair_lookup) against mixture_quantiles of each pixel's own curve and table
    # draws, α and σ (pixel_function closed_form): the table's stated tolerance, 0.5 % of the band width
    models, frac, layers, spec, table, band = two_type_case
    flat = frac.reshape(len(TYPES), -1)
    two = np.flatnonzero((flat > 0).sum(axis=0) == 2)
    est, draws, alpha, sigma = pixel_function(models, TYPES, frac, layers, noise=Noise(spec, B), closed_form=True)(two)
    np.testing.assert_array_equal(band[0].reshape(-1)[two], est.astype(np.float32))  # the estimate, bit for bit
    ok = np.isfinite(est)
    direct = np.maximum(mixture_quantiles(draws[:, ok].T, alpha[ok], sigma[ok], table.probs), 0.0)
    got = band[1:].reshape(2, -1)[:, two[ok]].astype(np.float64)
    assert np.isnan(band[1].reshape(-1)[two[~ok]]).all()
    width = direct[1] - direct[0]
    err = np.abs(got - direct)
    # float32 output: half a unit in the last place besides the table's error
    assert (err <= 0.005 * width + 4e-7 * np.abs(direct) + 1e-9).all(), (err / width).max()
    assert ok.sum() > 3000
    pairs = {key[:4] for key in table._tables if len(key) == 5}
    assert len(pairs) == 10  # every pair of the five types went through its tables
    assert (err > 1e-6 * width).mean() > 0.5  # tables, not the pixels' own solve under another name


def test_two_type_pixels_hold_the_exact_draws_distribution(two_type_case) -> None:
    # against exact: the noisy draws the exact path samples (Noise), many two-type pixels
    models, frac, layers, spec, table, band = two_type_case
    flat = frac.reshape(len(TYPES), -1)
    two = np.flatnonzero((flat > 0).sum(axis=0) == 2)
    est, draws = pixel_function(models, TYPES, frac, layers, noise=Noise(spec, B))(two)
    ok = np.isfinite(est)
    lo, hi = band[1].reshape(-1)[two][ok], band[2].reshape(-1)[two][ok]
    d = draws[:, ok]
    below, above = (d < lo).sum(axis=0), (d > hi).sum(axis=0)
    positive = lo > 0
    assert positive.sum() > 2500
    assert below[positive].mean() / B == pytest.approx(0.05, abs=0.004)
    assert above[positive].mean() / B == pytest.approx(0.05, abs=0.004)
    lo_k, hi_k = stats.binom.ppf([0.0005, 0.9995], B, 0.05)
    assert ((below[positive] < lo_k) | (below[positive] > hi_k)).mean() < 0.01
    assert ((above < lo_k) | (above > hi_k)).mean() < 0.01


def test_moments_only_gives_the_closed_forms_estimate_alpha_and_sigma_without_draws() -> None:
    # pixel_function(closed_form, moments_only): what the pair tables take, equal to the full closed form's
    models = _models()
    frac, ndvi, se = _two_type_rasters(20, 30)
    spec = _spec(20, 30, on=True)
    layers = {"ndvi": ndvi, "ndvi_se": se}
    idx = typed_pixels(frac)
    full = pixel_function(models, TYPES, frac, layers, noise=Noise(spec, B), closed_form=True)(idx)
    lean = pixel_function(models, TYPES, frac, layers, noise=Noise(spec, B), closed_form=True, moments_only=True)(idx)
    for a, b in zip((full[0], full[2], full[3]), (lean[0], lean[2], lean[3]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert lean[1].shape == (0, idx.size)
    seen = np.isfinite(full[0])
    assert (~seen).any() and (full[3][seen] > 0).mean() > 0.9  # unserved pixels among them; σ not trivially 0


def test_pair_tables_do_not_depend_on_strips_nor_on_the_order_nodes_are_filled() -> None:
    # a tile or strip is the window of the whole map: each node is computed from its own x, share and t alone
    models = _models()
    frac, ndvi, se = _two_type_rasters(12, 20)
    spec = _spec(12, 20, on=True)

    def run(r0: int, r1: int, table: IntervalTable) -> np.ndarray:
        return tabulated_map(models, TYPES, frac[:, r0:r1], {"ndvi": ndvi[r0:r1], "ndvi_se": se[r0:r1]}, table,
                             noise=Noise(spec, B), row0=r0, chunk_pixels=50)

    whole = run(0, 12, IntervalTable(models, TYPES, Noise(spec, B), 90.0, pairs=True))
    table = IntervalTable(models, TYPES, Noise(spec, B), 90.0, pairs=True)
    bottom, top = run(7, 12, table), run(0, 7, table)  # the lower strip first: other nodes filled first
    np.testing.assert_array_equal(np.concatenate([top, bottom], axis=1), whole)
    assert any(len(key) == 5 for key in table._tables)


def test_the_tables_t_nodes_solved_level_by_level_equal_a_bisection_of_the_closed_form() -> None:
    # IntervalTable._r solves the inner t nodes level by level, each later row started from its neighbours' R: the
    # roots must not depend on the start. Against a plain bisection (60 halvings) of the unfused closed-form noise
    # CDF (uncertainty.pixel_noise_cdf) averaged over each node's own draws: no solver, no start, no fused kernel
    from greensink.carbon.interval import _t_levels

    assert [lv.tolist() for lv in _t_levels(17)] == [[8], [4, 12], [2, 6, 10, 14], list(range(1, 16, 2))]
    models = _models()
    table = IntervalTable(models, TYPES, Noise(_spec(10, 10, on=True), B), 90.0)
    for k in (0, 3):  # a linear curve crossing 0 and the logarithmic one (log axis), R nodes and fine nodes
        key = (k, 0)
        tab = table._table(key)
        nodes = np.array([0, 24, 40, 56, 72, 80]) * (8 if k == 3 else 1)
        nodes = nodes[nodes < tab["n"]]
        vals, alpha, m, kappa, _ = table._draws(key, nodes)
        r = table._r(vals, alpha, m, kappa)  # (nodes, t, P)
        t = table.t[1:-1]
        sigma = kappa[:, None] * (t / (1 - t))[None, :]  # (nodes, inner t)
        scale = sigma + kappa[:, None]
        for j, p in enumerate(table.probs):
            lo = np.broadcast_to(vals.min(axis=1)[:, None] - 10 * (alpha[:, None] + 3 * sigma), sigma.shape).copy()
            hi = np.broadcast_to(vals.max(axis=1)[:, None] + 10 * (alpha[:, None] + 3 * sigma), sigma.shape).copy()
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                cdf = pixel_noise_cdf(mid[:, :, None] - vals[:, None, :], alpha[:, None, None], sigma[:, :, None])[0]
                below = cdf.mean(axis=2) < p
                lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
            want = (0.5 * (lo + hi) - m[:, None]) / scale  # R at every inner t
            # the solver stops at a step below 1e-5 of its scale |mean| + sd + τ (wider than the band where the mean is
            # large): within 1e-5 of R's spread between the percentiles (measured 2.3e-6 here; the previous code's
            # Cornish-Fisher starts 3.2e-6)
            np.testing.assert_allclose(r[:, 1:-1, j], want, rtol=0, atol=1e-5 * (table.z_tri[1] - table.z_tri[0]))


def test_the_tabulated_map_does_not_depend_on_its_chunks() -> None:
    # tabulated_map groups the pixels left to their own draws by the types present (so the pixel function sums whole
    # blocks) and chunks every group: a pixel's bands must not depend on which pixels share its chunk
    models = _models()
    frac, ndvi, se = _rasters()
    rows, cols = ndvi.shape
    spec = _spec(rows, cols, on=True)
    layers = {"ndvi": ndvi, "ndvi_se": se}
    bands = [tabulated_map(models, TYPES, frac, layers, IntervalTable(models, TYPES, Noise(spec, B), 90.0),
                           noise=Noise(spec, B), chunk_pixels=c) for c in (7, 256, rows * cols)]
    two = (frac.reshape(len(TYPES), -1) > 0).sum(axis=0) > 1
    assert two.sum() > 100 and np.isfinite(bands[0][1].reshape(-1)[two]).sum() > 100  # pixels solved from their draws
    for other in bands[1:]:
        np.testing.assert_array_equal(other, bands[0])


def test_kink_cells_solved_only_at_the_pixels_t_nodes_equal_a_bisection_and_do_not_depend_on_who_asked() -> None:
    # IntervalTable._fine_r solves a kink cell's fine nodes only at the t nodes its pixels use, each started from the
    # cell's R nodes at the same t (linear in u). The roots against a plain bisection (60 halvings) of the unfused
    # closed-form noise CDF over the node's own draws, and the same bits whether the (node, t) pairs are asked for
    # together, one at a time or in another order (tables filled by other strips or tiles give the same map)
    models = _models()
    noise = Noise(_spec(10, 10, on=True), B)
    key = (0, 0)  # the linear curve crossing 0 inside the NDVI range
    probe = IntervalTable(models, TYPES, noise, 90.0)
    tab = probe._table(key)
    rnodes = np.arange(tab["nr"])
    probe._fill(key, rnodes * probe.stride, rnodes)
    kink = np.flatnonzero(tab["zeros"][:-1] != tab["zeros"][1:])
    assert kink.size >= 2  # cells where some draws reach 0
    nodes = np.concatenate([c * probe.stride + np.arange(probe.stride) for c in kink[:2]])
    nodes = np.repeat(nodes, 3)
    cols = np.tile([0, 7, 15], nodes.size // 3)  # t = 0, an inner t and the last inner t
    together = probe._fine_r(key, nodes, cols)
    for order in (np.arange(nodes.size), np.arange(nodes.size)[::-1]):
        other = IntervalTable(models, TYPES, noise, 90.0)
        other._fill(key, rnodes * other.stride, rnodes)
        alone = np.array([other._fine_r(key, nodes[i : i + 1], cols[i : i + 1])[0] for i in order])
        np.testing.assert_array_equal(alone[np.argsort(order)], together)
    vals, alpha, m, kappa, _ = probe._draws(key, nodes)
    # t = 0 (no independent noise; where the floored curve and α are 0, numpy's percentiles of the draws, as the
    # exact path): the table's own R nodes' solve of every t at once (IntervalTable._r)
    zero = cols == 0
    np.testing.assert_allclose(together[zero], probe._r(vals[zero], alpha[zero], m[zero], kappa[zero])[:, 0], rtol=0,
                               atol=1e-5 * (probe.z_tri[1] - probe.z_tri[0]))
    vals, alpha, m, kappa, together = vals[~zero], alpha[~zero], m[~zero], kappa[~zero], together[~zero]
    t = probe.t[cols[~zero]]
    sigma = kappa * t / (1 - t)
    for j, p in enumerate(probe.probs):
        lo = vals.min(axis=1) - 10 * (alpha + 3 * sigma)
        hi = vals.max(axis=1) + 10 * (alpha + 3 * sigma)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = pixel_noise_cdf(mid[:, None] - vals, alpha[:, None], sigma[:, None])[0].mean(axis=1) < p
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        want = (0.5 * (lo + hi) - m) / (sigma + kappa)
        np.testing.assert_allclose(together[:, j], want, rtol=0, atol=1e-5 * (probe.z_tri[1] - probe.z_tri[0]))


def test_draw_bins_sums_by_hand() -> None:
    # one row, α = 1, σ = 0 (the field alone): sup|G''''| = sup|Φ''''| = 0.55059, so for a CDF error of 1e-6 the bins
    # are h = 2·(24e-6/0.55059)^(1/4) = 0.16251 wide from the least draw 1.0: draws 1.0 and 1.1 in bin 0 (centre
    # 1.08125), 1.3 in bin 1 (centre 1.24376)
    from greensink.carbon.solver import draw_bins

    v = np.array([[1.0, 1.1, 1.3]])
    use, bins = draw_bins(v, np.array([1.0]), np.array([0.0]), np.array([True]), 1e-6, 50)
    h = 2 * (24e-6 / 0.55059) ** 0.25
    assert use.tolist() == [True] and h == pytest.approx(0.16251, abs=1e-5)
    c = 1.0 + np.array([0.5, 1.5]) * h
    np.testing.assert_allclose(bins["c"][0], [1.08125, 1.24376], atol=1e-5)
    d0, d1 = np.array([1.0, 1.1]) - c[0], 1.3 - c[1]
    want = [[2, 1], [d0.sum(), d1], [(d0**2).sum() / 2, d1**2 / 2], [(d0**3).sum() / 6, d1**3 / 6]]
    np.testing.assert_allclose(bins["s"][:, 0, :], want, rtol=1e-12, atol=1e-17)
    # draws spread over more than max_bins − 1 bins keep their draws
    assert not draw_bins(v, np.array([1.0]), np.array([0.0]), np.array([True]), 1e-6, 2)[0].any()


@pytest.mark.parametrize("regime", ["mixed", "normal"])
def test_binned_cdf_means_within_their_bound_of_the_draws(regime: str) -> None:
    # the bins' third-order expansion against the fused kernel over every draw (mixed_cdf_means), on rows whose draws
    # spread from 0.1 to 3 times the noise's scale, some with a lump at 0 (floored curve draws): the mean CDF within the
    # bound cdf_err, and the quantiles solved either way within 1e-5 of the band's width
    from greensink.carbon import solver
    from greensink.carbon.solver import binned_cdf_means, draw_bins, mixed_cdf_means

    rng = np.random.default_rng(17)
    n = 600
    m = rng.uniform(1.0, 40.0, n)
    alpha = 0.12 * m
    sigma = (0.2 * m * rng.uniform(0.05, 2.0, n)) if regime == "mixed" else np.zeros(n)
    tau = np.sqrt(alpha**2 + sigma**2)
    vals = np.maximum(m[:, None] + (rng.uniform(0.1, 3.0, n) * tau)[:, None] * rng.standard_normal((n, B)), 0.0)
    use, bins = draw_bins(vals, alpha, sigma, np.ones(n, dtype=bool), 1e-6, 50)
    assert use.mean() > 0.3 and not use.all()  # many rows binned, the widest keep their draws
    rows = np.flatnonzero(use)
    for z in (-2.0, -1.0, 0.0, 1.5):
        q = vals[rows].mean(axis=1) + z * tau[rows]
        got = binned_cdf_means(q, bins, rows, alpha, sigma, regime)
        want = mixed_cdf_means(q, vals, rows, alpha, sigma, regime)
        assert np.abs(got[0] - want[0]).max() <= 1e-6
        np.testing.assert_allclose(got[1], want[1], rtol=1e-3)  # the density: the Halley steps' speed, not the root
    probs = (0.05, 0.95)
    binned = mixture_quantiles(vals, alpha, sigma, probs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(solver, "SOLVER_BIN_MAX", 0)  # no row fits: every draw
        every = mixture_quantiles(vals, alpha, sigma, probs)
    width = every[1] - every[0]
    assert (np.abs(binned - every) <= 1e-5 * width).all()


def test_row_moments_in_blocks_are_numpys_bit_for_bit() -> None:
    # mixture_quantiles takes each row's mean, sd, mean cubed deviation, min and max in blocks of rows: the same bits as
    # numpy's whole-array reductions (C-ordered rows and the transposed (B, n) draws the pixels pass)
    from greensink.carbon.solver import _row_moments

    rng = np.random.default_rng(23)
    for v in (rng.gamma(2.0, 3.0, (150, B)), np.ascontiguousarray(rng.normal(5, 2, (B, 150))).T):
        mean, sd, cube, vmin, vmax = _row_moments(v, True)
        assert np.array_equal(mean, v.mean(axis=1)) and np.array_equal(sd, v.std(axis=1))
        dev = v - v.mean(axis=1)[:, None]
        assert np.array_equal(cube, (dev * (dev * dev)).mean(axis=1))  # the unblocked code's order: dev *= dev * dev
        assert np.array_equal(vmin, v.min(axis=1)) and np.array_equal(vmax, v.max(axis=1))
        assert _row_moments(v, False)[2] is None
