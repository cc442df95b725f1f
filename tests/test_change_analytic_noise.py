"""greensink.uncertainty.zone_noise: a zone's variance of the residual field's sum (vᵀKv) against hand-computed
cases, a brute-force dense K, and the empirical variance of the field the exact path draws (Noise.field)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from greensink.uncertainty import Noise, NoiseSpec, ResidualField
from greensink.uncertainty.zone_noise import (
    ar_apply,
    field_quadratic_forms,
    independent_variances,
    mixture_band,
    zone_normals,
)


def brute(matrix, weights, width, phi):
    """vᵀKv by explicit loops over every pair of the zone's pixels."""
    m = matrix.toarray()
    out = np.zeros((m.shape[0], weights.shape[0]))
    for z in range(m.shape[0]):
        pix = np.flatnonzero(m[z])
        for k in range(weights.shape[0]):
            v = m[z, pix] * weights[k, pix]
            tot = 0.0
            for i, p in enumerate(pix):
                for j, q in enumerate(pix):
                    dr = abs(p // width - q // width)
                    dc = abs(p % width - q % width)
                    tot += v[i] * v[j] * phi ** (dr + dc)
            out[z, k] = tot
    return out


def test_hand_cases():
    phi = 0.6
    width = 5
    # zone 0: two pixels side by side (1 + 1 + 2φ); zone 1: diagonal neighbours (2 + 2φ²); zone 2: one pixel with
    # coverage 0.5 and weight 2 (variance 1); zone 3: a pixel and the one two rows below, weights 1 and −1 (2 − 2φ²)
    rows = [[0, 1], [0, 6], [12], [3, 13]]
    data = [[1, 1], [1, 1], [0.5], [1, 1]]
    m = sp.csr_matrix((np.concatenate(data), np.concatenate(rows), np.cumsum([0] + [len(r) for r in rows])),
                      shape=(4, 25))
    w = np.ones((1, 25))
    w[0, 12] = 2.0
    w[0, 13] = -1.0
    expect = [2 + 2 * phi, 2 + 2 * phi**2, 1.0, 2 - 2 * phi**2]
    for dense_max in (0, 1000):  # the filters over the bounding box, and the dense matrix
        got = field_quadratic_forms(m, w, width, phi, dense_max=dense_max)[:, 0]
        np.testing.assert_allclose(got, expect, rtol=1e-12)


def test_ar_apply_is_the_kms_matrix():
    phi = 0.83
    x = np.random.default_rng(1).normal(size=(3, 11))
    a = phi ** np.abs(np.subtract.outer(np.arange(11), np.arange(11)))
    np.testing.assert_allclose(ar_apply(x, phi, axis=1), x @ a.T, rtol=1e-12)


@pytest.mark.parametrize("dense_max", [0, 10_000])
def test_against_brute_force(dense_max):
    rng = np.random.default_rng(7)
    height, width = 9, 13
    n = height * width
    dense = np.zeros((5, n))
    for z in range(5):  # irregular zones with partial coverage at random pixels, one zone empty
        if z == 3:
            continue
        pix = rng.choice(n, size=rng.integers(3, 30), replace=False)
        dense[z, pix] = rng.uniform(0.1, 1.0, pix.size)
    m = sp.csr_matrix(dense)
    w = rng.normal(size=(3, n))
    phi = 0.7
    got = field_quadratic_forms(m, w, width, phi, dense_max=dense_max)
    np.testing.assert_allclose(got, brute(m, w, width, phi), rtol=1e-10, atol=1e-12)
    assert np.all(got[3] == 0)


@pytest.mark.parametrize("numbers", [50, 4_000_000])
def test_batches_of_boxes(monkeypatch, numbers):
    """The filtered zones go through in batches of boxes padded to the batch's largest: 40 zones of boxes from 1 × 9 to
    20 × 30 pixels (tall, wide, scattered), in batches of one zone (50 numbers) or all together, equal the brute force."""
    from greensink.uncertainty import zone_noise

    monkeypatch.setattr(zone_noise, "BATCH_NUMBERS", numbers)
    rng = np.random.default_rng(3)
    height, width = 24, 31
    n = height * width
    dense = np.zeros((40, n))
    for z in range(40):
        h, w = int(rng.integers(1, 21)), int(rng.integers(9, 31))
        r0, c0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        rr, cc = np.meshgrid(np.arange(r0, r0 + h), np.arange(c0, c0 + w), indexing="ij")
        pix = (rr * width + cc).ravel()
        pix = pix[rng.uniform(size=pix.size) < 0.7]
        dense[z, pix] = rng.uniform(0.1, 1.0, pix.size)
    m = sp.csr_matrix(dense)
    wts = rng.normal(size=(2, n))
    got = field_quadratic_forms(m, wts, width, 0.8, dense_max=0)
    # the definition with numpy: K = φ^(|Δr| + |Δc|) over each zone's pixels (brute()'s loops, vectorised)
    want = np.zeros_like(got)
    for z in range(dense.shape[0]):
        pix = np.flatnonzero(dense[z])
        r, c = np.divmod(pix, width)
        kmat = 0.8 ** (np.abs(r[:, None] - r[None, :]) + np.abs(c[:, None] - c[None, :]))
        v = dense[z, pix] * wts[:, pix]
        want[z] = np.einsum("kn,nm,km->k", v, kmat, v)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_white_field_and_independent_terms():
    """φ = 0: the field is white, vᵀv, and equals the independent terms' Σ c² var."""
    m = sp.csr_matrix(np.array([[0.5, 1.0, 0.0, 0.25], [0.0, 0.0, 1.0, 1.0]]))
    w = np.array([[2.0, 1.0, 3.0, 4.0]])
    expect = [0.25 * 4 + 1 * 1 + 0.0625 * 16, 9 + 16]
    np.testing.assert_allclose(field_quadratic_forms(m, w, 2, 0.0)[:, 0], expect)
    np.testing.assert_allclose(independent_variances(m, w**2)[:, 0], [0.25 * 4 + 1 + 0.0625 * 16, 25])


def test_against_the_exact_path_field_draws():
    """The variance over draws of Σ_z c w F of the field the exact path draws (Noise.field: 200 draws per seed, 6
    seeds, 1,200 realisations) matches the quadratic form within its sampling error (sd of a variance estimate
    √(2/1200) ≈ 4 %: tolerance 13 %, about 3 sd), for a compact zone, a long thin one and a scattered one."""
    height, width = 24, 30
    field = ResidualField(nugget=0.0, psill=1.0, range_m=25.0, n_plots=10, method="test")
    rng = np.random.default_rng(3)
    n = height * width
    dense = np.zeros((3, n))
    rr, cc = np.divmod(np.arange(n), width)
    dense[0, (rr >= 4) & (rr < 12) & (cc >= 5) & (cc < 15)] = 1.0  # 8 × 10 block
    dense[1, (rr == 20) & (cc < 28)] = 0.6  # one row, 28 px
    dense[2, rng.choice(n, 40, replace=False)] = 1.0  # scattered
    m = sp.csr_matrix(dense)
    w = rng.uniform(0.5, 2.0, n)
    gidx = np.arange(n)
    sums = []
    phi = None
    for seed in range(6):
        spec = NoiseSpec(seed=seed, residual=field, resolution_m=10.0, width=width, height=height)
        noise = Noise(spec, 200)
        phi = noise.phi
        f = noise.field(gidx)  # (B, n): sd_field (1) × the unit field
        sums.append(m @ (w[:, None] * f.T))  # (Z, B)
    sums = np.concatenate(sums, axis=1)
    emp = sums.var(axis=1)
    ana = field_quadratic_forms(m, w[None, :], width, phi)[:, 0]
    assert phi == pytest.approx(math.exp(-10.0 / (25.0 * math.sqrt(math.pi / 2))))
    np.testing.assert_allclose(emp, ana, rtol=0.13)
    # and the correlation matters: the block's variance is far above the white-noise one
    assert ana[0] > 5 * independent_variances(m, w[None, :] ** 2)[0, 0]


def test_zone_normals_repeat():
    a = zone_normals(42, (2023, 2024, 1, 0), 5, 200)
    b = zone_normals(42, (2023, 2024, 1, 0), 5, 200)
    c = zone_normals(42, (2023, 2024, 1, 1), 5, 200)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.std() - 1) < 0.05


def test_mixture_band_normal_case():
    """Draws all equal to 3 and normal noise of sd 2: the band is 3 ∓ 1.6449 × 2; no noise: the draws' own
    np.quantile."""
    d = np.full((2, 200), 3.0)
    lo, hi = mixture_band(d, np.array([4.0, 0.0]), (0.05, 0.95))
    assert lo[0] == pytest.approx(3 - 1.6448536 * 2, abs=1e-6)
    assert hi[0] == pytest.approx(3 + 1.6448536 * 2, abs=1e-6)
    assert lo[1] == 3.0 and hi[1] == 3.0
    d2 = np.random.default_rng(0).normal(size=(1, 200))
    lo, hi = mixture_band(d2, np.zeros(1), (0.05, 0.95))
    assert lo[0] == np.quantile(d2[0], 0.05) and hi[0] == np.quantile(d2[0], 0.95)


@pytest.mark.parametrize("case", ["lump_and_tail", "lump_and_ones", "floored_normal"])
def test_mixture_band_of_draws_floored_at_zero_holds_its_share(case):
    """Draws with a lump at 0 (a curve floored there) and little noise: the Cornish–Fisher expansion inverted such a
    band ([0.708, 0.261] for the first case) or missed the bulk (97.5 % of D below the 'lower' bound for the third);
    they are solved instead. Checked against a Monte Carlo of D = d_b + N (400,000 samples): 5 ± 0.4 % of D below the
    lower bound and above the upper one, and lower ≤ upper."""
    rng = np.random.default_rng(11)
    d = {"lump_and_tail": np.r_[np.zeros(196), np.linspace(0.5, 2, 4)],
         "lump_and_ones": np.r_[np.zeros(190), np.ones(10)],
         "floored_normal": np.maximum(rng.normal(-1.5, 1, 200), 0)}[case]
    var = {"lump_and_tail": 1e-4, "lump_and_ones": 1e-2, "floored_normal": 1e-4}[case]
    lo, hi = mixture_band(d[None], np.array([var]), (0.05, 0.95))
    assert lo[0] <= hi[0]
    big = d[rng.integers(0, d.size, 400_000)] + rng.normal(0.0, math.sqrt(var), 400_000)
    assert (big < lo[0]).mean() == pytest.approx(0.05, abs=0.004)
    assert (big > hi[0]).mean() == pytest.approx(0.05, abs=0.004)
