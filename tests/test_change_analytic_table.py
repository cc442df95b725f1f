"""change.draws: analytic with the curve and table draws tabulated on predictor nodes (greensink.change.draw_table,
docs/method.md §8 "Tabulated curve draws") against the same pass evaluating every draw at every pixel
(``analytic_year_function(..., tabulate=False)``, carbon.pixel_function's closed form).

Hand-built 14 × 11 grid, curves of other shapes than the demo's: an exponential on NDVI with an NDVI gate, a power
curve on FVC (log axis, values at and below its clamp), a linear curve on canopy whose draws cross 0 inside cells
(the floor's kink), a logarithmic curve on NDVI, a coefficient-table constant, a one-predictor curve on height with
values beyond the table's axis and a two-predictor model (both served per pixel, "fallback"); pixels of two types,
types changing between the years, clouds in each year (land no year observes stays NaN, never 0), zones cutting
pixels, filled land, and the curve or table draws switched off.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box

from greensink.carbon import fill_values, type_fill, typed_pixels, unserved_function
from greensink.change.draw_table import CURVE, LOG_STEP, SUBDIVIDE, TABLE, YearDrawTable
from greensink.change.sink import analytic_sink_pass, analytic_year_function
from greensink.coverage import coverage_matrix
from greensink.grid import Grid
from greensink.model import predict
from greensink.uncertainty import NoiseSpec, ResidualField

TYPES = ["EXP", "POW", "LIN", "LOG", "TAB", "HGT", "TWO"]
ROWS, COLS = 14, 11
GRID = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 3_500_140.0), width=COLS, height=ROWS)
B = 60
YEARS = (2022, 2025)
RESIDUAL = ResidualField(nugget=0.01, psill=0.02, range_m=40.0, n_plots=50, method="test")


def _draws(rng, centre, spread):
    return (np.asarray(centre) + rng.normal(size=(B, len(centre))) * np.asarray(spread)).tolist()


def make_models(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"seed": seed, "types": {
        "EXP": {"form": "exponential", "source": "plots", "predictors": ["ndvi"], "params": {"a": 2.0, "b": 3.5},
                "bootstrap": _draws(rng, [2.0, 3.5], [0.3, 0.4]), "ndvi_min": 0.2},
        "POW": {"form": "power", "source": "plots", "predictors": ["fvc"], "params": {"a": 30.0, "b": 0.7},
                "bootstrap": _draws(rng, [30.0, 0.7], [4.0, 0.15])},
        # draws cross 0 at canopy ≈ 0.2-0.3: the floor's kink falls inside table cells
        "LIN": {"form": "linear", "source": "plots", "predictors": ["canopy"], "params": {"a": -6.0, "b": 25.0},
                "bootstrap": _draws(rng, [-6.0, 25.0], [1.5, 3.0])},
        "LOG": {"form": "logarithmic", "source": "plots", "predictors": ["ndvi"], "params": {"a": 20.0, "b": 8.0},
                "bootstrap": _draws(rng, [20.0, 8.0], [2.0, 1.0])},
        "TAB": {"form": "constant", "source": "coefficients", "params": {"c": 12.0},
                "bootstrap": _draws(rng, [12.0], [1.5])},
        "HGT": {"form": "power", "source": "plots", "predictors": ["height"], "params": {"a": 3.0, "b": 0.8},
                "bootstrap": _draws(rng, [3.0, 0.8], [0.4, 0.05])},
        "TWO": {"form": "linear", "source": "plots", "predictors": ["ndvi", "height"],
                "params": {"a": -2.0, "b_ndvi": 30.0, "b_height": 1.5},
                "bootstrap": _draws(rng, [-2.0, 30.0, 1.5], [1.0, 3.0, 0.2]),
                "ndvi_only": {"form": "linear", "source": "plots", "predictors": ["ndvi"],
                              "params": {"a": -4.0, "b": 40.0}, "bootstrap": _draws(rng, [-4.0, 40.0], [1.0, 4.0])}},
    }}


def make_year(seed: int, cloud: tuple[slice, slice]):
    """Fractions (types, rows, cols): mostly one type a pixel, a quarter of the typed pixels two types, some land
    untyped; predictors ndvi, fvc, canopy, height (some beyond the height axis, some NaN), ndvi_se."""
    rng = np.random.default_rng(seed)
    n = len(TYPES)
    frac = np.zeros((n, ROWS, COLS))
    first = rng.integers(0, n, (ROWS, COLS))
    second = (first + rng.integers(1, n, (ROWS, COLS))) % n
    share = rng.uniform(0.3, 1.0, (ROWS, COLS))
    two = rng.uniform(size=(ROWS, COLS)) < 0.25
    r, c = np.indices((ROWS, COLS))
    frac[first, r, c] = np.where(two, share, rng.uniform(0.5, 1.0, (ROWS, COLS)))
    frac[second, r, c] += np.where(two, (1 - share) * rng.uniform(0.5, 1.0, (ROWS, COLS)), 0.0)
    frac[:, 0:2, 0:3] = 0.0  # untyped land
    ndvi = rng.uniform(0.05, 0.9, (ROWS, COLS))
    ndvi[cloud] = np.nan
    fvc = np.clip((ndvi - 0.1) / 0.7, 0.0, 1.0)
    fvc[3, :4] = [0.0, 5e-4, 1e-3, 0.0015]  # at and below the power form's clamp (X_MIN_LOG)
    canopy = rng.uniform(0.0, 1.0, (ROWS, COLS))
    height = rng.uniform(0.0, 30.0, (ROWS, COLS))
    height[rng.uniform(size=height.shape) < 0.15] = 140.0  # beyond the height axis (0-100 m): served per pixel
    height[rng.uniform(size=height.shape) < 0.2] = np.nan  # TWO's NDVI-only companion serves; HGT unserved
    se = np.full((ROWS, COLS), 0.03)
    layers = {"ndvi": ndvi, "fvc": fvc, "canopy": canopy, "height": height, "ndvi_se": se}
    return frac.astype(np.float32), {k: v.astype(np.float32) for k, v in layers.items()}


def make_case():
    m0, m1 = make_models(1), make_models(2)
    f0, l0 = make_year(3, (slice(2, 6), slice(0, 7)))
    f1, l1 = make_year(4, (slice(4, 9), slice(3, 11)))  # rows 4-5, columns 3-6: no year observes them
    active = np.union1d(typed_pixels(f0), typed_pixels(f1))
    x0, y0 = 500_000.0, 3_500_000.0
    city = [box(x0 + 15.0, y0, x0 + 110.0, y0 + 135.0)]
    blocks = [box(x0 + 15.0, y0, x0 + 55.0, y0 + 75.0), box(x0 + 55.0, y0, x0 + 110.0, y0 + 75.0),
              box(x0 + 23.0, y0 + 75.0, x0 + 110.0, y0 + 135.0)]
    matrices = [coverage_matrix(g, GRID.transform, GRID.shape) for g in (city, blocks)]
    return (m0, f0, l0), (m1, f1, l1), active, matrices


def spec(year, **kw):
    return dataclasses.replace(NoiseSpec(seed=7, year=year, residual=RESIDUAL, rho=0.6, paired=True, ndvi=True,
                                         position_sd_m=1.5, width=COLS, height=ROWS), **kw)


@pytest.fixture(scope="module")
def case():
    return make_case()


def run(case, tabulate: bool, fill: bool = True, chunk_pixels: int = 37, **kw):
    (m0, f0, l0), (m1, f1, l1), active, matrices = case
    fns = []
    for (m, f, lay), y in zip(((m0, f0, l0), (m1, f1, l1)), YEARS, strict=True):
        fl = fill_values(type_fill(m, TYPES, f, lay, seed=m["seed"])) if fill else None
        fns.append(analytic_year_function(m, TYPES, f, lay, spec(y, **kw), B, fill=fl, tabulate=tabulate))
    u0, u1 = unserved_function(m0, TYPES, f0, l0), unserved_function(m1, TYPES, f1, l1)
    return analytic_sink_pass(*fns, u0, u1, YEARS[1] - YEARS[0], active, GRID.shape, matrices, GRID.pixel_area_ha,
                              90.0, seed=3, key=YEARS, chunk_pixels=chunk_pixels, block_pixels=16)


#: The tolerance checked below (docs/method.md §8 "Tabulated curve draws"): a zone's sum of each draw within 2e-5 of
#: the zone's largest absolute draw sum (measured on this case: 1.4e-6), the pixel band within 2e-3 of its width
#: (measured: 2.3e-6; the bound leaves room for pixels whose band the mixture's solver gives).
ZONE_RTOL = 2e-5
BAND_RTOL = 2e-3


@pytest.mark.parametrize("kw", [{}, {"curve": False}, {"table": False}], ids=["both drawn", "curve off", "table off"])
def test_zone_sums_within_tolerance(case, kw):
    ref, tab = run(case, False, **kw), run(case, True, **kw)
    for (er, dr, pr), (et, dt, pt) in zip(ref.sums, tab.sums, strict=True):
        np.testing.assert_allclose(et, er, rtol=1e-12)  # per pixel, unchanged (summed in another order)
        scale = np.abs(dr).max(axis=1, keepdims=True)
        assert np.all(scale > 0)
        assert np.max(np.abs(dt - dr) / scale) < ZONE_RTOL
        # each part's variance over draws (var_share reads nothing else) and the noise parts: the same
        for k in ("curve", "table"):
            vr, vt = pr[k].var(axis=1), pt[k].var(axis=1)
            np.testing.assert_allclose(vt, vr, rtol=20 * ZONE_RTOL, atol=1e-9 * scale.max() ** 2)
        for k in ("residual", "ndvi", "edges"):
            np.testing.assert_array_equal(pt[k], pr[k])
        np.testing.assert_allclose(sum(pt.values()), dt, rtol=1e-12, atol=1e-9)  # the parts add up to the draws
    for (er, dr), (et, dt) in zip(ref.sums_both, tab.sums_both, strict=True):
        np.testing.assert_allclose(et, er, rtol=1e-12)
        assert np.max(np.abs(dt - dr) / np.abs(dr).max(axis=1, keepdims=True)) < ZONE_RTOL
    if kw.get("curve") is False:  # the curve types count their estimate in every draw: no variance
        for _, _, pt in tab.sums:
            assert np.all(pt["curve"].std(axis=1) <= 1e-9 * np.abs(pt["curve"]).max())


def test_chunks_change_no_number(case):
    """Chunks of 3 pixels (the zone weights summed every COMPACT_CHUNKS chunks, many times over) against one chunk: the
    same map and band bit for bit, the sums to rounding."""
    one, many = run(case, True, chunk_pixels=100_000), run(case, True, chunk_pixels=3)
    np.testing.assert_array_equal(many.sink, one.sink)
    for a, b in zip(many.sums + many.sums_both, one.sums + one.sums_both, strict=True):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-12)


def test_pixel_band_within_tolerance(case):
    ref, tab = run(case, False), run(case, True)
    np.testing.assert_array_equal(tab.sink[0], ref.sink[0])
    for k in ("stock0", "stock1", "map0", "map1"):
        np.testing.assert_array_equal(getattr(tab, k), getattr(ref, k))
    known = np.isfinite(ref.sink[1])
    np.testing.assert_array_equal(np.isfinite(tab.sink[1:]), np.isfinite(ref.sink[1:]))
    width = (ref.sink[2] - ref.sink[1])[known].astype(np.float64)
    assert (width > 0).sum() > 0.8 * width.size  # others: no draw varies (a gated type below its gate in both years)
    for b in (1, 2):
        diff = np.abs(tab.sink[b][known] - ref.sink[b][known])
        assert np.all(diff <= BAND_RTOL * width + 1e-6)


def test_unobserved_land_stays_nan(case):
    """Pixels no year observes (rows 4-5, columns 3-6 are clouded in both years) and pixels a year cannot value have
    no sink and no band (NaN, never 0); the zone sums over the land observed in both years leave them out, those over
    all land count their filled stock, as the per-pixel evaluation does."""
    (m0, f0, l0), (m1, f1, l1), active, _ = case
    tab = run(case, True)
    both_clouded = np.zeros((ROWS, COLS), dtype=bool)
    both_clouded[4:6, 3:7] = True
    typed = (f0.sum(axis=0) > 0) | (f1.sum(axis=0) > 0)
    sel = both_clouded & typed
    assert sel.sum() >= 4
    assert np.isnan(tab.sink[:, sel]).all()
    # without a fill such pixels have no value at all: the sums leave them out (not 0 × anything unknown)
    nofill_ref, nofill_tab = run(case, False, fill=False), run(case, True, fill=False)
    assert np.isnan(nofill_tab.stock0).any() and np.isnan(nofill_tab.stock1).any()
    for (er, dr, _), (et, dt, _) in zip(nofill_ref.sums, nofill_tab.sums, strict=True):
        np.testing.assert_allclose(et, er, rtol=1e-12)
        assert np.all(np.isfinite(dt))
        assert np.max(np.abs(dt - dr) / np.abs(dr).max(axis=1, keepdims=True)) < ZONE_RTOL


def test_weights_by_hand():
    """One pixel of each kind, weights worked out by hand: a linear curve on NDVI between nodes 0.500 and 0.501 (step
    0.005/SUBDIVIDE), a power curve on FVC on the log axis, a constant (one row), a gated type below its gate (0),
    and a curve switched off (its estimate on the ONE row)."""
    rng = np.random.default_rng(0)
    models = {"seed": 0, "types": {
        "L": {"form": "linear", "source": "plots", "predictors": ["ndvi"], "params": {"a": 1.0, "b": 10.0},
              "bootstrap": _draws(rng, [1.0, 10.0], [0.1, 1.0])},
        "P": {"form": "power", "source": "plots", "predictors": ["fvc"], "params": {"a": 20.0, "b": 0.5},
              "bootstrap": _draws(rng, [20.0, 0.5], [1.0, 0.05])},
        "C": {"form": "constant", "source": "coefficients", "params": {"c": 8.0}, "bootstrap": _draws(rng, [8.0], [1.0])},
        "G": {"form": "exponential", "source": "plots", "predictors": ["ndvi"], "params": {"a": 1.0, "b": 2.0},
              "bootstrap": _draws(rng, [1.0, 2.0], [0.1, 0.1]), "ndvi_min": 0.6}}}
    types = list(models["types"])
    frac = np.zeros((4, 1, 1), dtype=np.float32)
    frac[:, 0, 0] = [0.5, 0.25, 0.125, 0.125]
    layers = {"ndvi": np.array([[0.5003]]), "fvc": np.array([[0.3]])}
    tab = YearDrawTable(models, types, frac, layers, B)
    row = tab.weights(np.array([0])).rows.toarray()[0]
    assert tab.source[0] == CURVE and tab.source[1] == TABLE
    # L: ndvi 0.5003 lies 0.3 of the way from node 0.500 to 0.501: weights 0.5 × 0.7 and 0.5 × 0.3
    lin = tab.blocks[0][0]
    j = lin.row_of[round((0.5 - (-1.0)) / (0.005 / SUBDIVIDE))]
    assert lin.row_of[round((0.5 - (-1.0)) / (0.005 / SUBDIVIDE)) + 1] == j + 1
    assert row[lin.offset + j] == pytest.approx(0.35, rel=1e-9)
    assert row[lin.offset + j + 1] == pytest.approx(0.15, rel=1e-9)
    boot = np.asarray(models["types"]["L"]["bootstrap"])
    np.testing.assert_allclose(tab.table[lin.offset + j], boot[:, 0] + boot[:, 1] * 0.5, rtol=1e-12)
    # P: u = ln 0.3 on the log axis from ln 0.001, step LOG_STEP
    pw = tab.blocks[1][0]
    pos = (math.log(0.3) - math.log(1e-3)) / LOG_STEP
    k = math.floor(pos)
    pos, k = pos - k + pw.row_of[k], pw.row_of[k]
    assert row[pw.offset + k] == pytest.approx(0.25 * (1 - (pos - k)), rel=1e-9)
    assert row[pw.offset + k + 1] == pytest.approx(0.25 * (pos - k), rel=1e-9)
    # C: one row, weight its fraction; G: NDVI 0.5003 below its gate 0.6: weight 0
    c = tab.blocks[2][0]
    assert row[c.offset] == pytest.approx(0.125)
    g = tab.blocks[3][0]
    assert not np.any(row[g.offset:g.offset + g.n])
    # the pixel's interpolated draws against the curves evaluated at the pixel
    draws = tab.weights(np.array([0])).draws(tab.table)[0]
    exact = sum(f * np.maximum(predict(models["types"][t]["form"], np.asarray(models["types"][t]["bootstrap"]),
                                       np.array([x]), (p,)), 0.0)[:, 0]
                for t, f, x, p in (("L", 0.5, 0.5003, "ndvi"), ("P", 0.25, 0.3, "fvc")))
    exact = exact + 0.125 * np.maximum(np.asarray(models["types"]["C"]["bootstrap"])[:, 0], 0.0)
    np.testing.assert_allclose(draws, exact, rtol=1e-5)
    # the curve switched off: L and P count their estimate in every draw, on the ONE row of the curve
    off = YearDrawTable(models, types, frac, layers, B, curve=False)
    row = off.weights(np.array([0])).rows.toarray()[0]
    assert row[CURVE] == pytest.approx(0.5 * (1.0 + 10.0 * 0.5003) + 0.25 * 20.0 * math.sqrt(0.3), rel=1e-6)


def test_fallback_terms_are_the_pixel_function(case):
    """Terms no table serves (a two-predictor model, a height beyond the axis) are evaluated per pixel: a zone made of
    such pixels alone gets the per-pixel sums to rounding."""
    (m0, f0, l0), _, _, _ = case
    tab = YearDrawTable(m0, TYPES, f0, l0, B)
    idx = np.flatnonzero(f0.reshape(len(TYPES), -1).sum(axis=0) > 0)
    w = tab.weights(idx)
    assert w.fallback[CURVE] is not None and np.any(w.fallback[CURVE])
    from greensink.carbon import pixel_function

    only = np.flatnonzero((f0.reshape(len(TYPES), -1)[:, idx] > 0).sum(axis=0) == 1)
    hgt = only[(f0.reshape(len(TYPES), -1)[TYPES.index("HGT"), idx[only]] > 0)
               & (l0["height"].reshape(-1)[idx[only]] > 100)]
    assert hgt.size >= 1
    est, draws, _, _ = pixel_function(m0, TYPES, f0, l0, closed_form=True)(idx[hgt])
    np.testing.assert_allclose(w.draws(tab.table)[hgt], draws.T, rtol=1e-12)
