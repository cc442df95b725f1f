"""Closed-form pixel noise: the quantiles of the unit triangular number (:func:`triangular_quantile`)
and the CDF of the field plus the triangular pixel noise of one pixel and draw (:func:`pixel_noise_cdf`),
which the tabulated pixel interval solves for its quantiles."""

from __future__ import annotations

import math

import numpy as np

# ----------------------------------------------------------------------------- closed-form pixel noise

TRIANGULAR_HALF_WIDTH = math.sqrt(6.0)  # the unit-variance triangular numbers of noise.unit_triangular lie in ±√6


def triangular_quantile(p: float) -> float:
    """p-quantile of the unit-variance triangular distribution on ±√6 (the per-pixel noise z)."""
    c = TRIANGULAR_HALF_WIDTH
    return c * (math.sqrt(2.0 * p) - 1.0) if p <= 0.5 else c * (1.0 - math.sqrt(2.0 * (1.0 - p)))


def pixel_noise_cdf(w: np.ndarray, alpha: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CDF and density at ``w`` of α·F + σ·Z, the per-draw noise of one pixel in :class:`Noise` (single year):
    F ~ N(0, 1) the correlated residual field (a sum of many triangular numbers, taken as normal) and
    Z the unit triangular number of the nugget, NDVI and edge errors (density (c − |z|)/c², c = √6).

    With u = (w − σz)/α the tent's second difference gives the closed form
    G(w) = α²/(σ²c²)·[Ψ₂((w + σc)/α) − 2Ψ₂(w/α) + Ψ₂((w − σc)/α)], Ψ₂(x) = ((x² + 1)Φ(x) + xφ(x))/2
    (the second antiderivative of Φ); its derivative uses Ψ₁(x) = xΦ(x) + φ(x). α = 0 gives the
    triangular CDF, σ = 0 the normal one (both 0: a step at 0). Arrays broadcast."""
    from scipy.special import ndtr

    w, a, s = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (w, alpha, sigma)))
    c = TRIANGULAR_HALF_WIDTH
    cdf = np.empty(w.shape)
    pdf = np.empty(w.shape)
    tri = a <= 1e-6 * s * c  # the field is negligible: (α/σ)² below 1e-12
    nrm = ~tri & (s * c <= 1e-4 * a)  # the triangular part is negligible: (σ/α)² below 1e-8
    mix = ~tri & ~nrm
    if mix.all():  # the usual case: no masked copies
        return mixed_noise_cdf(w, a, s)
    if tri.any():
        sc = s[tri] * c
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.clip(w[tri] / sc, -1.0, 1.0)
            cdf[tri] = np.where(sc > 0, np.where(u <= 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2), (w[tri] >= 0) * 1.0)
            pdf[tri] = np.where(sc > 0, (1 - np.abs(u)) / sc, 0.0)
    if nrm.any():
        x = w[nrm] / a[nrm]
        cdf[nrm] = ndtr(x)
        pdf[nrm] = np.exp(-0.5 * x * x) / (math.sqrt(2 * math.pi) * a[nrm])
    if mix.any():
        cdf[mix], pdf[mix] = mixed_noise_cdf(w[mix], a[mix], s[mix])
    return cdf, pdf


def mixed_noise_cdf(w: np.ndarray, a: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pixel_noise_cdf` where α > 0 and σ > 0 (the closed form), without its checks: the solver's inner loop."""
    from scipy.special import ndtr

    c = TRIANGULAR_HALF_WIDTH
    inv_a = 1.0 / a
    x0 = w * inv_a
    d = (s * c) * inv_a
    g2 = np.zeros(np.shape(x0))
    g1 = np.zeros(np.shape(x0))
    for weight, x in ((1.0, x0 + d), (-2.0, x0), (1.0, x0 - d)):
        big_phi = ndtr(x)
        small_phi = np.exp(-0.5 * x * x)
        small_phi *= 1.0 / math.sqrt(2 * math.pi)
        xb = x * big_phi
        g1 += weight * (xb + small_phi)
        g2 += (0.5 * weight) * (x * (xb + small_phi) + big_phi)
    k2 = 1.0 / (d * d)
    return np.clip(k2 * g2, 0.0, 1.0), np.maximum(k2 * g1 * inv_a, 0.0)
