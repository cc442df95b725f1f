"""The mixture quantiles' solver behind the per-pixel interval of carbon.tif's bands 2–3 (``uncertainty.pixel_interval:
tabulated``): :func:`mixture_quantiles`, the quantiles of a mixture of curve draws and normal noise by Newton/Halley
steps inside a bracket, and its inner loop :func:`mixed_cdf_means`, the noise CDF fused into cache-sized blocks
(:data:`SOLVER_BLOCK`). Used by :mod:`greensink.carbon.interval` (tables and the pixels outside them)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SOLVER_MAX_ITER = 60
SOLVER_ROWS = 2048  # rows per solver pass (memory: a few (rows, B) float64 arrays)
SOLVER_RTOL = 1e-5  # a row stops when its Newton step is below this share of its scale; the step is still taken,
# so its error is of the order of the step squared (bands moved by < 1e-5 of their width against 1e-7 here)
SOLVER_ACCEPT = 2e-3  # a Halley step on a smooth noise CDF (the closed form or the field alone) below this share of
# the row's scale is taken and the row stops without evaluating the CDF again: Halley's error is of the order of
# the step cubed (on the 22,284 two-type pixels of benchmarks/raster_floor.py at 2000²: bands within 1e-7 of their
# width of the checked solve's, 1.11 instead of 2.00 CDF evaluations per pixel and percentile)


def mixture_quantiles(values: np.ndarray, alpha: np.ndarray, sigma: np.ndarray,
                      probs: Sequence[float], start: np.ndarray | None = None) -> np.ndarray:
    """(len(probs), n) quantiles of V + α·F + σ·Z per row: V uniform over the row's B ``values`` (n, B) (the
    curve and table draws of a pixel), F and Z the pixel's noise numbers
    (:func:`greensink.uncertainty.pixel_noise_cdf`), i.e. of the noisy draws' distribution, not of one set of
    B noise numbers. Rows with α = σ = 0 give ``np.quantile`` of their values (linear interpolation, as
    :func:`density_map`). Otherwise the root of mean_b G(q − v_b) = p by Newton steps kept inside a bracket
    (bisection where a step leaves it), each row iterated until its step is below :data:`SOLVER_RTOL` of its scale (or,
    a Halley step on a smooth noise CDF, below :data:`SOLVER_ACCEPT`), so a row's result does not depend on the other rows. ``start`` (len(probs), n): first guesses (else the
    Cornish-Fisher approximation from the values' mean, variance and skewness and the noise's variance)."""
    from scipy.special import ndtri

    from greensink.uncertainty import TRIANGULAR_HALF_WIDTH, pixel_noise_cdf

    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    if n > SOLVER_ROWS:  # bounded memory: (rows, B) temporaries
        parts = [mixture_quantiles(v[r : r + SOLVER_ROWS], np.broadcast_to(alpha, (n,))[r : r + SOLVER_ROWS],
                                   np.broadcast_to(sigma, (n,))[r : r + SOLVER_ROWS], probs,
                                   None if start is None else start[:, r : r + SOLVER_ROWS])
                 for r in range(0, n, SOLVER_ROWS)]
        return np.concatenate(parts, axis=1)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n,))
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n,))
    out = np.empty((len(probs), n))
    quiet = (alpha == 0) & (sigma == 0)
    if quiet.any():
        out[:, quiet] = np.quantile(v[quiet], list(probs), axis=1)
    rows = np.flatnonzero(~quiet)
    if rows.size == 0:
        return out
    vr, a, s = v[rows], alpha[rows], sigma[rows]
    tau = np.sqrt(a * a + s * s)
    mean, sd = vr.mean(axis=1), vr.std(axis=1)
    total_sd = np.sqrt(sd * sd + tau * tau)
    if start is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = vr - mean[:, None]
            dev *= dev * dev  # cubed, in place
            skew = np.nan_to_num(dev.mean(axis=1) / total_sd**3)
            del dev
    scale = np.abs(mean) + sd + tau
    lo0, hi0 = vr.min(axis=1) - 8.0 * tau, vr.max(axis=1) + 8.0 * tau  # mean_b G(q - v_b) is 0 / 1 beyond
    c = TRIANGULAR_HALF_WIDTH
    closed = (a > 1e-6 * s * c) & (s * c > 1e-4 * a)  # rows in the closed form's regime (both noise terms)
    normal = (a > 1e-6 * s * c) & (s * c <= 1e-4 * a)  # the independent term negligible: the field alone
    tent = (a <= 1e-6 * s * c) & (s > 0)  # the field negligible: the independent (triangular) term alone
    for j, p in enumerate(probs):
        if start is None:  # Cornish-Fisher: the normal quantile corrected by the skewness (the noise is symmetric)
            z = float(ndtri(p))
            guess = mean + total_sd * (z + (z * z - 1.0) * skew / 6.0)
        else:
            guess = start[j, rows]
        q = np.clip(guess, lo0, hi0)
        lo, hi = lo0.copy(), hi0.copy()
        act = np.arange(rows.size)
        for _ in range(SOLVER_MAX_ITER):
            qa = q[act]
            cdf_mean, dens, slope = np.empty(act.size), np.empty(act.size), np.zeros(act.size)
            fused = closed[act]
            if fused.any():
                cdf_mean[fused], dens[fused], slope[fused] = mixed_cdf_means(qa[fused], vr, act[fused], a, s)
            nrm, tri = normal[act], tent[act]
            if nrm.any():
                cdf_mean[nrm], dens[nrm], slope[nrm] = mixed_cdf_means(qa[nrm], vr, act[nrm], a, s, regime="normal")
            if tri.any():
                cdf_mean[tri], dens[tri], slope[tri] = mixed_cdf_means(qa[tri], vr, act[tri], a, s,
                                                                        regime="triangular")
            rest = ~fused & ~nrm & ~tri
            smooth = fused | nrm  # a C-infinity CDF with its slope: a small Halley step is final (SOLVER_ACCEPT)
            if rest.any():  # no slope here: Newton steps
                other = act[rest]
                cdf, pdf = pixel_noise_cdf(qa[rest, None] - vr[other], a[other, None], s[other, None])
                cdf_mean[rest], dens[rest] = cdf.mean(axis=1), pdf.mean(axis=1)
            resid = cdf_mean - p
            lo[act] = np.where(resid < 0, qa, lo[act])
            hi[act] = np.where(resid >= 0, qa, hi[act])
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                newton = resid / dens
                # Halley: the Newton step divided by 1 − f·f''/(2f'²), where that factor is within 0.5..2
                factor = 1.0 - newton * slope / (2.0 * dens)
                halley = (factor >= 0.5) & (factor <= 2.0)
                step = qa - np.where(halley, newton / factor, newton)
            inside = (dens > 0) & (step > lo[act]) & (step < hi[act])
            new = np.where(inside, step, 0.5 * (lo[act] + hi[act]))
            q[act] = new
            moved = np.abs(new - qa)
            sc = scale[act]
            done = (moved <= SOLVER_RTOL * sc) | (hi[act] - lo[act] <= SOLVER_RTOL * sc)
            done |= smooth & halley & inside & (moved <= SOLVER_ACCEPT * sc)
            act = act[~done]
            if act.size == 0:
                break
        out[j, rows] = q
    return out


SOLVER_BLOCK = 16_384  # elements per block of the fused noise CDF (a few such float64 buffers stay in cache)


def mixed_cdf_means(q: np.ndarray, values: np.ndarray, rows: np.ndarray, alpha: np.ndarray,
                     sigma: np.ndarray, regime: str = "mixed") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row means over b of :func:`greensink.uncertainty.mixed_noise_cdf` (CDF clipped to 0..1 and density
    floored at 0 per element, as there), and of the density's derivative (for Halley steps; it comes almost
    free: the closed form's second derivative is the tent's second difference of Φ, already evaluated),
    at w = q_i − values[rows_i, b], α = alpha[rows_i], σ = sigma[rows_i]:
    the solver's inner loop, the same formula fused into blocks of :data:`SOLVER_BLOCK` elements with
    reused buffers, so the temporaries stay in cache and no (rows, B) array is gathered (about twice as
    fast as the unfused form; equal to it up to rounding). ``regime``: ``mixed`` (α > 0 and σ > 0, the closed
    form), ``normal`` (σ negligible: Φ(w/α) and φ(w/α)/α) or ``triangular`` (α negligible, σ > 0: the tent's
    CDF and density), the regimes of :func:`greensink.uncertainty.pixel_noise_cdf`."""
    from scipy.special import ndtr

    from greensink.uncertainty import TRIANGULAR_HALF_WIDTH

    n, n_b = rows.size, values.shape[1]
    step = max(1, SOLVER_BLOCK // n_b)
    cdf, pdf, dpdf = np.empty(n), np.empty(n), np.empty(n)
    buf = np.empty((8, min(step, n), n_b))
    k_phi = 1.0 / math.sqrt(2.0 * math.pi)
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        x0, x, big, t, tmp, g0, g1, g2 = (b[: r1 - r0] for b in buf)
        sel = rows[r0:r1]
        if regime == "triangular":  # u = w/(σc) in -1..1: (1 + u)²/2 below 0, 1 − (1 − u)²/2 above, density (1 − |u|)/(σc)
            sc = sigma[sel, None] * TRIANGULAR_HALF_WIDTH
            np.subtract(q[r0:r1, None], values[sel], out=x0)
            x0 /= sc
            np.clip(x0, -1.0, 1.0, out=x0)
            np.abs(x0, out=t)
            np.subtract(1.0, t, out=x)  # 1 − |u|
            np.multiply(x, x, out=g2)
            g2 *= 0.5
            pos = x0 > 0
            np.subtract(1.0, g2, out=g2, where=pos)  # 1 − (1 − u)²/2 above 0; (1 + u)²/2 = (1 − |u|)²/2 below
            np.divide(x, sc, out=g1)
            np.sign(x0, out=g0)  # the density's slope: −sign(u)/(σc)² inside the tent, 0 outside
            g0[t >= 1.0] = 0.0
            g0 /= -(sc * sc)
            np.add.reduce(g2, axis=1, out=cdf[r0:r1])
            np.add.reduce(g1, axis=1, out=pdf[r0:r1])
            np.add.reduce(g0, axis=1, out=dpdf[r0:r1])
            continue
        inv_a = 1.0 / alpha[sel, None]
        d = (sigma[sel, None] * TRIANGULAR_HALF_WIDTH) * inv_a
        np.subtract(q[r0:r1, None], values[sel], out=x0)
        x0 *= inv_a
        if regime == "normal":
            ndtr(x0, out=g2)
            np.multiply(x0, x0, out=t)
            t *= -0.5
            np.exp(t, out=g1)
            g1 *= k_phi * inv_a
            np.multiply(x0, g1, out=g0)  # the density's slope: −x φ(x)/α²
            g0 *= -inv_a
            np.add.reduce(g2, axis=1, out=cdf[r0:r1])
            np.add.reduce(g1, axis=1, out=pdf[r0:r1])
            np.add.reduce(g0, axis=1, out=dpdf[r0:r1])
            continue
        g0.fill(0.0)
        g1.fill(0.0)
        g2.fill(0.0)
        for weight, shift in ((1.0, d), (-2.0, None), (1.0, -d)):
            if shift is None:
                x[...] = x0
            else:
                np.add(x0, shift, out=x)
            ndtr(x, out=big)  # Φ(x)
            if weight != 1.0:
                np.multiply(big, weight, out=tmp)
                g0 += tmp
            else:
                g0 += big
            np.multiply(x, x, out=t)
            t *= -0.5
            np.exp(t, out=t)
            t *= k_phi  # φ(x)
            np.multiply(x, big, out=tmp)
            t += tmp  # Ψ₁(x) = xΦ(x) + φ(x)
            np.multiply(x, t, out=x)
            x += big  # 2Ψ₂(x) = x Ψ₁(x) + Φ(x)
            if weight != 1.0:
                t *= weight
                x *= weight
            g1 += t
            g2 += x
        k2 = 1.0 / (d * d)
        g2 *= 0.5 * k2
        np.clip(g2, 0.0, 1.0, out=g2)
        g1 *= k2 * inv_a
        np.maximum(g1, 0.0, out=g1)
        g0 *= k2 * inv_a * inv_a
        np.add.reduce(g2, axis=1, out=cdf[r0:r1])
        np.add.reduce(g1, axis=1, out=pdf[r0:r1])
        np.add.reduce(g0, axis=1, out=dpdf[r0:r1])
    # row sums / B once for all blocks: np.mean's own two steps (the same bits), without its per-call overhead
    for sums in (cdf, pdf, dpdf):
        sums /= n_b
    return cdf, pdf, dpdf
