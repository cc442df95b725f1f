"""The per-pixel noise of a sink summed over zones without drawing it per pixel (``change.draws: analytic``,
docs/method.md §8 "Analytic zone noise").

A zone's sum of per-pixel noise terms is a sum of many terms with a known covariance, so its variance is computed
(:func:`independent_variances` for the terms independent between pixels, :func:`field_quadratic_forms` for the
correlated residual field) and one number per zone and draw is drawn (:func:`zone_normals`). The pixel band of the
sink comes from the curve and table draws and the pixel's noise variance (:func:`mixture_band`).

The residual field (:class:`greensink.uncertainty.Noise`) is a separable first-order autoregression with the same
φ along and across rows, started stationary, so its correlation is exactly φ^|Δrow| · φ^|Δcol| with unit variance;
K·w over a zone's bounding box is two filters (forward and backward) along each axis."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.signal import lfilter
from scipy.special import ndtri

#: Zones of at most this many pixels take their quadratic form from the dense φ^(|Δr|+|Δc|) matrix of their pixels
#: (n² numbers), larger ones through the filters over their bounding box (the same value within rounding).
DENSE_MAX_PIXELS = 64

#: Fourth cumulant of the unit triangular numbers of :func:`greensink.uncertainty.unit_triangular` (excess kurtosis
#: −0.6 of a sum of two uniforms), used in the pixel band's Cornish–Fisher expansion.
TRIANGULAR_K4 = -0.6


def ar_apply(x: np.ndarray, phi: float, axis: int) -> np.ndarray:
    """A·x along ``axis``, A[i, j] = φ^|i − j| (the correlation of a stationary first-order autoregression): a forward
    and a backward recursion y_i = x_i + φ y_(i∓1), their sum less x."""
    a = [1.0, -float(phi)]
    fwd = lfilter([1.0], a, x, axis=axis)
    fwd += np.flip(lfilter([1.0], a, np.flip(x, axis=axis), axis=axis), axis=axis)
    fwd -= x  # in place: no further arrays of x's size
    return fwd


#: The zones taking the filters are filtered together in batches of bounding boxes of about the same size, padded with
#: zeros to the batch's largest (zeros add nothing to vᵀKv): at most this many numbers per batch (k weight images ×
#: zones × rows × columns), and a box at most BATCH_PAD times the area of the batch's first (largest).
BATCH_NUMBERS = 4_000_000
BATCH_PAD = 1.5


def field_quadratic_forms(matrix: sp.csr_matrix, weights: np.ndarray, width: int, phi: float,
                          dense_max: int = DENSE_MAX_PIXELS) -> np.ndarray:
    """(Z, k): per zone (row of the coverage ``matrix``, columns the flat pixels of a grid ``width`` columns wide) and
    weight image (``weights`` (k, pixels)) the variance of Σ_p c_zp w_p F_p for the unit-variance separable field F
    of correlation φ^|Δr|·φ^|Δc|: vᵀKv with v = c_z ⊙ w over the zone's pixels. Zones of at most ``dense_max``
    pixels take the dense matrix of their pixels; larger ones K·v over their bounding box by the filters
    (:func:`ar_apply`), in batches of boxes of about the same size (:data:`BATCH_NUMBERS`, :data:`BATCH_PAD`)."""
    matrix = sp.csr_matrix(matrix)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    k = weights.shape[0]
    out = np.zeros((matrix.shape[0], k))
    if not phi > 0:  # no correlation: the field is white, vᵀv
        sq = matrix.multiply(matrix).tocsr()
        return np.asarray(sq @ (weights**2).T)
    lphi = math.log(phi)
    n_zones = matrix.shape[0]
    # every zone's entries at once (the matrix's rows in order): v = c ⊙ w, the pixels where some weight is not 0
    zone_of = np.repeat(np.arange(n_zones), np.diff(matrix.indptr))
    v_all = weights[:, matrix.indices] * matrix.data  # (k, nnz)
    keep = np.any(v_all != 0, axis=0)
    zone_of, v_all = zone_of[keep], v_all[:, keep]
    r_all, c_all = np.divmod(matrix.indices[keep], width)
    counts = np.bincount(zone_of, minlength=n_zones)
    starts = np.concatenate([[0], np.cumsum(counts)])
    present = np.flatnonzero(counts)
    if present.size == 0:
        return out
    r0 = np.zeros(n_zones, dtype=np.int64)
    c0 = np.zeros(n_zones, dtype=np.int64)
    hh = np.zeros(n_zones, dtype=np.int64)
    ww = np.zeros(n_zones, dtype=np.int64)
    r0[present] = np.minimum.reduceat(r_all, starts[present])
    c0[present] = np.minimum.reduceat(c_all, starts[present])
    hh[present] = np.maximum.reduceat(r_all, starts[present]) - r0[present] + 1
    ww[present] = np.maximum.reduceat(c_all, starts[present]) - c0[present] + 1
    for z in present[counts[present] <= dense_max]:
        sl = slice(starts[z], starts[z + 1])
        r, c, v = r_all[sl], c_all[sl], v_all[:, sl]
        dr = np.abs(r[:, None] - r[None, :])
        dr += np.abs(c[:, None] - c[None, :])
        kmat = np.exp(lphi * np.arange(dr.max() + 1))[dr]  # φ^(|Δr| + |Δc|) from a table of powers
        out[z] = np.einsum("kn,kn->k", v @ kmat, v)
    big = present[counts[present] > dense_max]
    big = big[np.argsort(-(hh[big] * ww[big]), kind="stable")]  # largest boxes first
    i = 0
    while i < big.size:
        h, w = int(hh[big[i]]), int(ww[big[i]])
        first = h * w
        j = i + 1
        while j < big.size:
            h2, w2 = max(h, int(hh[big[j]])), max(w, int(ww[big[j]]))
            if h2 * w2 > BATCH_PAD * first or (j - i + 1) * k * h2 * w2 > BATCH_NUMBERS:
                break
            h, w = h2, w2
            j += 1
        batch = big[i:j]
        ent = np.concatenate([np.arange(starts[z], starts[z + 1]) for z in batch])
        zi = np.repeat(np.arange(batch.size), counts[batch])
        img = np.zeros((batch.size, k, h, w))
        img[zi, :, r_all[ent] - r0[zone_of[ent]], c_all[ent] - c0[zone_of[ent]]] = v_all[:, ent].T
        kv = ar_apply(img, phi, axis=3)
        fwd = kv.copy()
        for row in range(1, h):
            fwd[:, :, row, :] += phi * fwd[:, :, row - 1, :]
        out[batch] = 2.0 * np.einsum("zkij,zkij->zk", img, fwd) - np.einsum("zkij,zkij->zk", img, kv)
        i = j
    return out


def independent_variances(matrix: sp.csr_matrix, variances: np.ndarray) -> np.ndarray:
    """(Z, k): Σ_p c_zp² var_p per zone and variance image (``variances`` (k, pixels)): the variance of a zone's sum of
    terms independent between pixels."""
    sq = sp.csr_matrix(matrix).multiply(sp.csr_matrix(matrix)).tocsr()
    return np.asarray(sq @ np.atleast_2d(np.asarray(variances, dtype=np.float64)).T)


def zone_normals(seed: int, key: Sequence[int], n_zones: int, n_draws: int) -> np.ndarray:
    """(Z, B) standard normal numbers, row z the zone at position z: a generator seeded by (``seed``, ``key``…), so a
    run repeats them exactly (``key``: e.g. the pair's years, the level's and the source's positions)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(x) & 0xFFFFFFFF for x in key)])
    return rng.standard_normal((int(n_zones), int(n_draws)))


#: :func:`mixture_band` takes the Cornish–Fisher expansion only for mixtures whose skewness is within ±CF_MAX_SKEW and
#: excess kurtosis at most CF_MAX_KURTOSIS (where it is accurate to a few per cent of the spread); others are solved.
CF_MAX_SKEW = 0.5
CF_MAX_KURTOSIS = 2.0


def mixture_band(draws: np.ndarray, noise_var: np.ndarray, qs: Sequence[float],
                 noise_k4: np.ndarray | None = None) -> list[np.ndarray]:
    """Per pixel the quantiles ``qs`` of D = d_b + N: d_b uniform over the pixel's B draws (``draws`` (n, B)), N a
    symmetric noise independent of b with variance ``noise_var`` (n,) and fourth cumulant ``noise_k4`` (n,; 0: normal).
    Cornish–Fisher from the mixture's cumulants (κ2 = var_b d + var N, κ3 = third central moment of d, κ4 = that of d
    + κ4 of N); pixels without noise (var N = 0) take the draws' own quantiles (``np.quantile``, the numbers the exact
    path's ``greensink.change.sink.sorted_quantiles`` gives)."""
    d = np.asarray(draws, dtype=np.float64)
    s2 = np.asarray(noise_var, dtype=np.float64)
    out = [np.full(d.shape[0], np.nan) for _ in qs]
    quiet = ~(s2 > 0)
    if quiet.any():
        for res, v in zip(out, np.quantile(d[quiet], list(qs), axis=1), strict=True):
            res[quiet] = v
    noisy = ~quiet
    if not noisy.any():
        return out
    dn = d[noisy]
    n_draws = dn.shape[1]
    m = dn.mean(axis=1)
    dev = dn - m[:, None]
    dev2 = dev * dev
    m2 = dev2.mean(axis=1)
    m3 = np.einsum("ij,ij->i", dev2, dev) / n_draws
    m4 = np.einsum("ij,ij->i", dev2, dev2) / n_draws
    k2 = m2 + s2[noisy]
    k4 = m4 - 3.0 * m2 * m2 + (0.0 if noise_k4 is None else np.asarray(noise_k4, dtype=np.float64)[noisy])
    sd = np.sqrt(k2)
    g1 = m3 / (k2 * sd)
    g2 = k4 / (k2 * k2)
    cf = []
    for q in qs:
        z = float(ndtri(q))
        w = z + (z * z - 1) * g1 / 6 + (z**3 - 3 * z) * g2 / 24 - (2 * z**3 - 5 * z) * g1 * g1 / 36
        cf.append(m + sd * w)
    # The expansion holds for mildly skewed mixtures only. Draws with a lump at 0 (a curve floored there) and little
    # noise are far from that: the expansion can invert the band or miss the bulk. Those pixels (|skewness| above
    # CF_MAX_SKEW, excess kurtosis above CF_MAX_KURTOSIS, or quantiles out of order) take the root of the mixture's
    # CDF instead (greensink.carbon.solver.mixture_quantiles, N taken as normal).
    bad = (np.abs(g1) > CF_MAX_SKEW) | (g2 > CF_MAX_KURTOSIS)
    order = np.argsort(qs)
    for a, b in zip(order[:-1], order[1:], strict=True):
        bad |= cf[a] > cf[b]
    if bad.any():
        from greensink.carbon.solver import mixture_quantiles  # lazy: greensink.carbon imports this package

        exact = mixture_quantiles(dn[bad], np.sqrt(s2[noisy][bad]), np.zeros(int(bad.sum())), list(qs))
        for c, e in zip(cf, exact, strict=True):
            c[bad] = e
    for res, c in zip(out, cf, strict=True):
        res[noisy] = c
    return out
