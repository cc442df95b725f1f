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
    boxes = []  # zones for the filters: (zone, rows, cols, v, r0, c0, height, width)
    for z in range(matrix.shape[0]):
        a, b = matrix.indptr[z], matrix.indptr[z + 1]
        if a == b:
            continue
        cols = matrix.indices[a:b]
        v = weights[:, cols] * matrix.data[a:b]  # (k, n)
        keep = np.any(v != 0, axis=0)
        if not keep.any():
            continue
        cols, v = cols[keep], v[:, keep]
        r, c = np.divmod(cols, width)
        if cols.size <= dense_max:
            dr = np.abs(r[:, None] - r[None, :])
            dr += np.abs(c[:, None] - c[None, :])
            kmat = np.exp(lphi * np.arange(dr.max() + 1))[dr]  # φ^(|Δr| + |Δc|) from a table of powers
            out[z] = np.einsum("kn,kn->k", v @ kmat, v)
            continue
        r0, c0 = r.min(), c.min()
        boxes.append((z, r - r0, c - c0, v, r.max() - r0 + 1, c.max() - c0 + 1))
    boxes.sort(key=lambda t: -(t[4] * t[5]))
    i = 0
    while i < len(boxes):
        h, w = boxes[i][4], boxes[i][5]
        first = h * w
        j = i + 1
        while j < len(boxes):
            hh, ww = max(h, boxes[j][4]), max(w, boxes[j][5])
            if hh * ww > BATCH_PAD * first or (j - i + 1) * k * hh * ww > BATCH_NUMBERS:
                break
            h, w = hh, ww
            j += 1
        batch = boxes[i:j]
        img = np.zeros((len(batch), k, h, w))
        zi = np.concatenate([np.full(t[1].size, n) for n, t in enumerate(batch)])
        img[zi, :, np.concatenate([t[1] for t in batch]), np.concatenate([t[2] for t in batch])] = \
            np.concatenate([t[3] for t in batch], axis=1).T
        # vᵀ(A_r ⊗ A_c)v = vᵀ((2L_r − I) ⊗ A_c)v, L_r the forward recursion along rows (A = L + Lᵀ − I, and
        # vᵀ(Lᵀ ⊗ A_c)v = vᵀ(L ⊗ A_c)v for the symmetric A_c): A_c along the columns, then one forward pass down the
        # rows, a loop over rows of vectorised slices (faster than lfilter along that axis)
        kv = ar_apply(img, phi, axis=3)
        fwd = kv.copy()
        for row in range(1, h):
            fwd[:, :, row, :] += phi * fwd[:, :, row - 1, :]
        out[[t[0] for t in batch]] = 2.0 * np.einsum("zkij,zkij->zk", img, fwd) - np.einsum("zkij,zkij->zk", img, kv)
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
