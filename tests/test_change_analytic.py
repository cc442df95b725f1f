"""change.draws: analytic (greensink.change.sink.analytic_sink_pass) against the exact path's draws on the one-pass
test's hand-built 23 × 17 grid (tests/test_change_one_pass.py: real models, every error source on, clouds, a type
lost between the years, zones cutting pixels):

* what is not noise (estimates, stocks, maps, the curve and table draws summed over zones) equals the exact pass;
* each noise source's zone variance equals the empirical variance of the exact path's own draws of that source
  (its per-source parts) over 30 seeds × 40 draws;
* the noise parts are the seeded zone normals times those standard deviations, and add up to the draws;
* the pixel band holds about 90 % of the exact path's draws of the pixel (single-type, mixed, edge pixels, pixels
  typed in one year only);
* a tiled run refuses analytic with a ConfigError naming the keys.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from greensink.carbon import fill_values, pixel_function, type_fill, unserved_function
from greensink.change.run import check_draws
from greensink.change.sink import (
    NOISE_SOURCES,
    analytic_sink_pass,
    analytic_year_function,
    pixel_noise,
    sink_pass,
    zone_noise_variances,
)
from greensink.errors import ConfigError
from greensink.uncertainty import Noise, NoiseSpec
from greensink.uncertainty.zone_noise import zone_normals
from test_change_one_pass import GRID, RESIDUAL, TYPES, make_case

YEARS = (2023, 2025)
RHO = 0.6
B = 40
SEEDS = 30


def spec(seed, year):
    return NoiseSpec(seed=seed, year=year, residual=RESIDUAL, rho=RHO, paired=True, ndvi=True, position_sd_m=1.5,
                     width=GRID.width, height=GRID.height)


@pytest.fixture(scope="module")
def case():
    return make_case()


def fills(case):
    (m0, f0, l0), (m1, f1, l1), *_ = case
    return [fill_values(type_fill(m, TYPES, f, lay, seed=m["seed"])) for m, f, lay in ((m0, f0, l0), (m1, f1, l1))]


def exact_functions(case, seed):
    (m0, f0, l0), (m1, f1, l1), *_ = case
    fl = fills(case)
    return [pixel_function(m, TYPES, f, lay, fill=fill, noise=Noise(spec(seed, y), B), sources=True)
            for (m, f, lay), fill, y in zip(((m0, f0, l0), (m1, f1, l1)), fl, YEARS, strict=True)]


def analytic_functions(case, seed, tabulate=True):
    (m0, f0, l0), (m1, f1, l1), *_ = case
    fl = fills(case)
    return [analytic_year_function(m, TYPES, f, lay, spec(seed, y), B, fill=fill, tabulate=tabulate)
            for (m, f, lay), fill, y in zip(((m0, f0, l0), (m1, f1, l1)), fl, YEARS, strict=True)]


def unserved(case):
    (m0, f0, l0), (m1, f1, l1), *_ = case
    return unserved_function(m0, TYPES, f0, l0), unserved_function(m1, TYPES, f1, l1)


def passes(case, seed=42, tabulate=True):
    """The exact pass and the analytic one (its curve and table draws tabulated, or with ``tabulate=False`` evaluated
    per pixel as the exact path does: tests/test_change_analytic_table.py compares the two)."""
    *_, active, matrices = case
    u0, u1 = unserved(case)
    years = YEARS[1] - YEARS[0]
    e0, e1 = exact_functions(case, seed)
    a0, a1 = analytic_functions(case, seed, tabulate)
    exact = sink_pass(e0, e1, u0, u1, years, active, GRID.shape, matrices, GRID.pixel_area_ha, 90.0, chunk_pixels=50)
    analytic = analytic_sink_pass(a0, a1, u0, u1, years, active, GRID.shape, matrices, GRID.pixel_area_ha, 90.0,
                                  seed=seed, key=YEARS, chunk_pixels=50)
    return exact, analytic


def test_not_noise_equals_exact(case):
    """With the curve and table draws evaluated per pixel (the tabulated draws are within their tolerance of these:
    tests/test_change_analytic_table.py)."""
    exact, analytic = passes(case, tabulate=False)
    np.testing.assert_array_equal(analytic.sink[0], exact.sink[0])
    for k in ("stock0", "stock1", "map0", "map1"):
        np.testing.assert_array_equal(getattr(analytic, k), getattr(exact, k))
    for (ea, da, pa), (ee, _de, pe) in zip(analytic.sums, exact.sums, strict=True):
        np.testing.assert_allclose(ea, ee, rtol=1e-12)
        # the same curve and table draws, summed alike; each part differs from the exact one by a constant per zone
        # (the curve types' estimate is carried in the table part where both sources are drawn), so its variance
        # over draws, all that var_share reads, is the exact one
        np.testing.assert_allclose(pa["curve"] + pa["table"], pe["curve"] + pe["table"], rtol=1e-10, atol=1e-10)
        for k in ("curve", "table"):
            shift = pa[k] - pe[k]
            np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1], shift.shape), rtol=1e-9, atol=1e-9)
            assert np.all(pe[k].var(axis=1) > 0)
        # the parts add up to the draws
        np.testing.assert_allclose(sum(pa.values()), da, rtol=1e-10, atol=1e-10)
    for (ea, _), (ee, _) in zip(analytic.sums_both, exact.sums_both, strict=True):
        np.testing.assert_allclose(ea, ee, rtol=1e-12)


def test_noise_parts_are_seeded_zone_normals(case):
    """Each noise part is the zone normal of (seed, years, level, source) times one standard deviation per zone, and
    a second run gives the same numbers."""
    _, a = passes(case, seed=5)
    _, b = passes(case, seed=5)
    for lev, (s_a, s_b) in enumerate(zip(a.sums, b.sums, strict=True)):
        np.testing.assert_array_equal(s_a[1], s_b[1])
        for i, src in enumerate(NOISE_SOURCES):
            xi = zone_normals(5, (*YEARS, lev, i), s_a[1].shape[0], B)
            part = s_a[2][src]
            sd = part[:, :1] / xi[:, :1]
            np.testing.assert_allclose(part, sd * xi, rtol=1e-9, atol=1e-12)


def analytic_variances(case):
    """Per level the analytic variance of each noise source's zone sum (t C/yr)², from the pass's pieces over all
    active pixels in one chunk."""
    *_, active, matrices = case
    a0, a1 = analytic_functions(case, 42)
    years = YEARS[1] - YEARS[0]
    e0, _, _, t0 = a0.fn(active)
    e1, _, _, t1 = a1.fn(active)
    w, var, _ = pixel_noise(t0, t1, years, a1.rho)
    valued = ~np.isnan((e1 - e0) / years)
    npix = GRID.width * GRID.height
    g, v = np.zeros((3, npix)), np.zeros((3, npix))
    g[:, active] = np.where(valued, w, 0.0)
    v[:, active] = np.stack([np.where(valued, var[s], 0.0) for s in NOISE_SOURCES])
    return [{s: x * GRID.pixel_area_ha**2 for s, x in zone_noise_variances(sp.csr_matrix(m), g, v, GRID.width,
                                                                           a1.phi)[0].items()} for m in matrices]


@pytest.fixture(scope="module")
def exact_runs(case):
    """The exact path's per-source zone sums and per-pixel sink draws over SEEDS seeds (SEEDS × B realisations)."""
    *_, active, matrices = case
    years = YEARS[1] - YEARS[0]
    u0, u1 = unserved(case)
    parts = [{s: [] for s in NOISE_SOURCES} for _ in matrices]
    pixel = []
    for seed in range(SEEDS):
        e0, e1 = exact_functions(case, 1000 + seed)
        res = sink_pass(e0, e1, u0, u1, years, active, GRID.shape, matrices, GRID.pixel_area_ha, 90.0,
                        chunk_pixels=400)
        for lev, (_, _, p) in enumerate(res.sums):
            for s in NOISE_SOURCES:
                parts[lev][s].append(p[s])
        _, d0, _ = e0(active)
        _, d1, _ = e1(active)
        pixel.append((d1 - d0) / years)
    return ([{s: np.concatenate(v, axis=1) for s, v in lev.items()} for lev in parts],
            np.concatenate(pixel, axis=0))


def test_zone_variances_match_exact_draws(case, exact_runs):
    """Per zone and source, the analytic variance against the variance of the exact path's own draws of that source
    over 1,200 realisations (sd of a variance estimate √(2/1200) ≈ 4 %; the field's realisations are rows of
    correlated numbers, so 15 % is taken, about 3.5 sd)."""
    parts, _ = exact_runs
    ana = analytic_variances(case)
    checked = 0
    for lev in range(len(parts)):
        for s in NOISE_SOURCES:
            emp = parts[lev][s].var(axis=1)
            np.testing.assert_allclose(ana[lev][s], emp, rtol=0.15, err_msg=f"level {lev} source {s}")
            checked += int((emp > 0).sum())
    assert checked >= 10


def test_pixel_band_holds_the_exact_draws(case, exact_runs):
    """The analytic pixel band against SEEDS × B exact draws of each pixel: 5 % of them below the lower bound and 5 %
    above the upper one, per kind of pixel. Tolerance ±1.5 % (the band is a Cornish–Fisher expansion of the mixture
    of the pixel's curve draws and its noise, and the exact draws are floored at 0 per year, which the band ignores;
    measured values are in docs/method.md §8)."""
    (m0, f0, l0), (m1, f1, l1), active, _ = case
    _, analytic = passes(case)
    _, pixel = exact_runs
    lo = analytic.sink[1].reshape(-1)[active]
    hi = analytic.sink[2].reshape(-1)[active]
    ok = np.isfinite(lo)
    below = (pixel < lo[None, :]).mean(axis=0)
    above = (pixel > hi[None, :]).mean(axis=0)
    n0 = (f0.reshape(3, -1)[:, active] > 0).sum(axis=0)
    n1 = (f1.reshape(3, -1)[:, active] > 0).sum(axis=0)
    t0 = f0.reshape(3, -1)[:, active].sum(axis=0)
    t1 = f1.reshape(3, -1)[:, active].sum(axis=0)
    kinds = {"single type": ok & (n0 == 1) & (n1 == 1),
             "mixed": ok & ((n0 > 1) | (n1 > 1)),
             "edge (typed fraction < 1)": ok & (((t0 > 0) & (t0 < 0.999)) | ((t1 > 0) & (t1 < 0.999))),
             "typed in one year only": ok & ((n0 == 0) | (n1 == 0))}
    for name, sel in kinds.items():
        assert sel.sum() >= 10, name
        assert below[sel].mean() == pytest.approx(0.05, abs=0.015), name
        assert above[sel].mean() == pytest.approx(0.05, abs=0.015), name


def test_tiles_refused():
    with pytest.raises(ConfigError, match=r"change\.draws.*tiles\.size_px"):
        check_draws("analytic", tiled=True)
    with pytest.raises(ConfigError, match="exact or analytic"):
        check_draws("fast")
    check_draws("analytic")
    check_draws("exact", tiled=True)


def test_observed_land_as_masked_weights(case):
    """The sums over the land observed in both years take the coverage restricted to that land; the pass gives it as
    weights restricted to it (the same product): both ways agree, for the field and the independent terms."""
    *_, matrices = case
    rng = np.random.default_rng(11)
    npix = GRID.width * GRID.height
    g = rng.normal(size=(3, npix))
    v = rng.uniform(0, 1, size=(3, npix))
    mask = rng.uniform(size=npix) < 0.6
    for m in matrices:
        m = sp.csr_matrix(m)
        masked = sp.csr_matrix(m.multiply(mask[None, :]))
        whole, via_weights = zone_noise_variances(m, np.vstack([g, g * mask]), np.vstack([v, v * mask]), GRID.width,
                                                  0.8)
        direct = zone_noise_variances(masked, g, v, GRID.width, 0.8)[0]
        for s in NOISE_SOURCES:
            np.testing.assert_allclose(via_weights[s], direct[s], rtol=1e-10)
            assert np.all(whole[s] >= 0)


def test_tile_job_refuses_analytic_before_reading():
    from greensink.change.tiles import run_change_tile

    with pytest.raises(ConfigError, match="tiles.size_px"):
        run_change_tile({}, {}, tile_id="0_0", size_px=128, y0=2023, y1=2024, levels=["city"], types=TYPES,
                        predictors=["ndvi"], typed_land=True, draws="analytic")


def test_amplitudes_equal_each_source_alone(case):
    """The year's amplitudes (the edges derived from the draws' evaluation with the residual and the edges on, the
    nugget from the field's amplitude) equal pixel_function's closed form with each source alone on."""
    import dataclasses

    (m0, f0, l0), _, active, _ = case
    fill = fills(case)[0]
    sp0 = spec(42, YEARS[0])
    terms = analytic_year_function(m0, TYPES, f0, l0, sp0, B, fill=fill).fn(active)[3]
    silent = dataclasses.replace(sp0, residual=None, ndvi=False, position_sd_m=0.0)

    def alone(**kw):
        fn = pixel_function(m0, TYPES, f0, l0, fill=fill, noise=Noise(dataclasses.replace(silent, **kw), B),
                            closed_form=True, moments_only=True)
        return fn(active)

    edges = alone(position_sd_m=sp0.position_sd_m)[3]
    ndvi = alone(ndvi=True)[3]
    _, _, field, nugget = alone(residual=sp0.residual)
    assert np.count_nonzero(edges) > 50 and np.count_nonzero(ndvi) > 50 and np.count_nonzero(nugget) > 50
    np.testing.assert_allclose(terms["edges"], edges, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(terms["ndvi"], ndvi, rtol=1e-12)
    np.testing.assert_allclose(terms["field"], field, rtol=1e-12)
    np.testing.assert_allclose(terms["nugget"], nugget, rtol=1e-12)


def test_config_refuses_analytic_with_tiles():
    """The config check stops a tiled run with change.draws: analytic before any job runs."""
    from pathlib import Path

    import yaml

    from greensink.config import validate

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg.setdefault("change", {})["draws"] = "analytic"
    cfg["tiles"] = {"size_px": 128}
    with pytest.raises(ConfigError, match=r"change\.draws: analytic cannot run with tiles\.size_px"):
        validate(cfg)
    cfg["tiles"] = {"size_px": None}
    assert validate(cfg)["change"]["draws"] == "analytic"
    cfg["change"]["draws"] = "exact"
    cfg["tiles"] = {"size_px": 128}
    assert validate(cfg)["change"]["draws"] == "exact"


def test_curve_types_only(case):
    """Without a table type (G3's constant taken as fitted to plots) the curve part is the draws, summed once: equal
    to the exact path's curve part; the table part is 0 in both."""
    import copy

    (m0, f0, l0), (m1, f1, l1), active, matrices = case
    m0, m1 = copy.deepcopy(m0), copy.deepcopy(m1)
    m0["types"]["G3"]["source"] = m1["types"]["G3"]["source"] = "plots"
    sub_case = ((m0, f0, l0), (m1, f1, l1), active, matrices)
    ex, an = passes(sub_case, tabulate=False)
    for (_, da, pa), (_, _, pe) in zip(an.sums, ex.sums, strict=True):
        np.testing.assert_allclose(pa["curve"], pe["curve"], rtol=1e-10, atol=1e-10)
        assert not np.any(pa["table"]) and not np.any(pe["table"])
        np.testing.assert_allclose(sum(pa.values()), da, rtol=1e-10, atol=1e-10)
