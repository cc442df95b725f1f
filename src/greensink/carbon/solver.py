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
SOLVER_BIN_CDF_ERR = 1e-6  # rows in the smooth regimes solve against their draws gathered into bins (binned_cdf_means):
# bins narrow enough that the third-order expansion of the noise CDF about each bin's centre errs by at most this
# much in the mean CDF (so the quantile by at most this over the density, ~3e-6 of the band's width)
SOLVER_BIN_MAX = 50  # a row whose draws span more bins than this (far beyond the noise's scale) keeps its draws
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
    Cornish-Fisher approximation from the values' mean, variance and skewness and the noise's variance).

    Rows whose noise CDF is smooth (both noise terms, or the field alone) and whose values span at most
    :data:`SOLVER_BIN_MAX` bins solve against their values gathered into bins (:func:`draw_bins`,
    :func:`binned_cdf_means`: about 20 bins instead of 200 draws per evaluation), their mean CDF within
    :data:`SOLVER_BIN_CDF_ERR` of the draws'; the others against every value."""
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
    mean, sd, third, vmin, vmax = _row_moments(vr, start is None)
    total_sd = np.sqrt(sd * sd + tau * tau)
    if start is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            skew = np.nan_to_num(third / total_sd**3)
    scale = np.abs(mean) + sd + tau
    lo0, hi0 = vmin - 8.0 * tau, vmax + 8.0 * tau  # mean_b G(q - v_b) is 0 / 1 beyond
    c = TRIANGULAR_HALF_WIDTH
    closed = (a > 1e-6 * s * c) & (s * c > 1e-4 * a)  # rows in the closed form's regime (both noise terms)
    normal = (a > 1e-6 * s * c) & (s * c <= 1e-4 * a)  # the independent term negligible: the field alone
    tent = (a <= 1e-6 * s * c) & (s > 0)  # the field negligible: the independent (triangular) term alone
    # smooth rows whose draws fit in few bins solve against the bins (module constants read here: tests set them)
    binned, bins = draw_bins(vr, a, s, closed | normal, SOLVER_BIN_CDF_ERR, SOLVER_BIN_MAX)
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
            nrm, tri = normal[act], tent[act]
            if bins is not None:
                by_bin = binned[act]
                for regime, sel in (("mixed", fused & by_bin), ("normal", nrm & by_bin)):
                    if sel.any():
                        cdf_mean[sel], dens[sel], slope[sel] = binned_cdf_means(qa[sel], bins, act[sel], a, s, regime)
                fused, nrm = fused & ~by_bin, nrm & ~by_bin
            if fused.any():
                cdf_mean[fused], dens[fused], slope[fused] = mixed_cdf_means(qa[fused], vr, act[fused], a, s)
            if nrm.any():
                cdf_mean[nrm], dens[nrm], slope[nrm] = mixed_cdf_means(qa[nrm], vr, act[nrm], a, s, regime="normal")
            if tri.any():
                cdf_mean[tri], dens[tri], slope[tri] = mixed_cdf_means(qa[tri], vr, act[tri], a, s,
                                                                        regime="triangular")
            rest = ~closed[act] & ~normal[act] & ~tri
            smooth = closed[act] | normal[act]  # a C-infinity CDF with its slope: a small Halley step is final (SOLVER_ACCEPT)
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


_MOMENT_ROWS = 64  # rows whose moments are taken at a time (temporaries in cache, not fresh pages)


def _row_moments(v: np.ndarray, third: bool) -> tuple[np.ndarray, ...]:
    """(mean, sd, mean cubed deviation (None unless ``third``), min, max) of each row of ``v`` (n, B), in blocks of
    rows: the same bits as ``v.mean(axis=1)``, ``v.std(axis=1)``, ``((v - mean) ** 3).mean(axis=1)`` (each row's
    sums in the same order) without (n, B) temporaries."""
    n = v.shape[0]
    mean, sd, vmin, vmax = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    cube = np.empty(n) if third else None
    for r0 in range(0, n, _MOMENT_ROWS):
        blk = v[r0 : r0 + _MOMENT_ROWS]
        r1 = r0 + blk.shape[0]
        mean[r0:r1], sd[r0:r1] = blk.mean(axis=1), blk.std(axis=1)
        vmin[r0:r1], vmax[r0:r1] = blk.min(axis=1), blk.max(axis=1)
        if third:
            dev = blk - mean[r0:r1, None]
            dev *= dev * dev  # cubed, in place
            cube[r0:r1] = dev.mean(axis=1)
    return mean, sd, cube, vmin, vmax


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


_SUP_HE1_PHI = 0.24197072451914337  # sup |x φ(x)| (at x = 1): bounds Φ″ = φ′
_SUP_HE3_PHI = 0.55059  # sup |(x³ − 3x) φ(x)| (at x ≈ 0.742, rounded up): bounds Φ⁗ = φ‴


def draw_bins(values: np.ndarray, alpha: np.ndarray, sigma: np.ndarray, smooth: np.ndarray,
              cdf_err: float = SOLVER_BIN_CDF_ERR, max_bins: int = SOLVER_BIN_MAX) -> tuple[np.ndarray, dict | None]:
    """(mask of the rows served by bins, the bins) for :func:`binned_cdf_means`: the ``smooth`` rows' draws
    ``values`` (n, B) gathered into bins of equal width h per row, each bin kept as its centre c, its count S₀ and
    the sums S₁, S₂/2, S₃/6 over its draws of (v − c)^k. The mean noise CDF over a bin's draws is then its
    third-order expansion about c, off by at most (h/2)⁴/24 · sup|G⁗| per draw, G the pixel's noise CDF
    (α·F + σ·Z): sup|G⁗| is at most sup|Φ⁗|/α⁴ (G is Φ(·/α) smoothed by the tent) and at most
    sup|Φ″|/α² · 4/(σc)² (the tent's second derivative is three point masses of total weight 4/(σc)²). h is chosen
    so that bound is ``cdf_err``; a row whose draws span more than ``max_bins`` − 1 bins keeps its draws (mask
    False)."""
    from greensink.uncertainty import TRIANGULAR_HALF_WIDTH

    n, n_b = values.shape
    use = smooth.copy()
    if not use.any():
        return use, None
    rows = np.flatnonzero(use)
    a, sc = alpha[rows], sigma[rows] * TRIANGULAR_HALF_WIDTH
    with np.errstate(divide="ignore"):
        sup4 = np.minimum(_SUP_HE3_PHI / a**4, 4.0 * _SUP_HE1_PHI / (a * a * sc * sc))
    h = 2.0 * (24.0 * cdf_err / sup4) ** 0.25
    lo = values[rows].min(axis=1) if rows.size < n else values.min(axis=1)
    fits = (values[rows].max(axis=1) if rows.size < n else values.max(axis=1)) - lo < (max_bins - 1) * h
    if not fits.all():  # (the margin: a rounded quotient stays below max_bins)
        rows, lo, h = rows[fits], lo[fits], h[fits]
    use[:] = False
    use[rows] = True
    if rows.size == 0:
        return use, None
    # in blocks of rows whose temporaries stay in cache (fresh pages for (rows, B) arrays cost more than the sums)
    parts = []
    for r0 in range(0, rows.size, _BIN_ROWS):
        r1 = min(r0 + _BIN_ROWS, rows.size)
        parts.append(_bin_block(values[rows[r0:r1]], lo[r0:r1], h[r0:r1]))
    width = max(p[0].shape[2] for p in parts)
    sums = np.zeros((4, rows.size, width))
    centres = np.zeros((rows.size, width))  # padding: empty bins (S = 0) at 0
    for r0, (sm, cn) in zip(range(0, rows.size, _BIN_ROWS), parts, strict=True):
        sums[:, r0 : r0 + sm.shape[1], : sm.shape[2]] = sm
        centres[r0 : r0 + sm.shape[1], : sm.shape[2]] = cn
    at = np.full(n, -1, dtype=np.int64)
    at[rows] = np.arange(rows.size)
    return use, {"at": at, "c": centres, "s": sums, "n_b": n_b}


_BIN_ROWS = 64  # rows binned at a time (their (rows, B) temporaries ~100 kB)


def _bin_block(v: np.ndarray, lo: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sums (4, rows, bins): S₀, S₁, S₂/2, S₃/6; centres (rows, bins)) of the draws ``v`` (rows, B) in bins of width
    ``h`` from ``lo`` per row (:func:`draw_bins`), the non-empty bins first and as many as the fullest row has."""
    n = v.shape[0]
    u = v - lo[:, None]
    u /= h[:, None]  # the draw in bin widths from the row's least
    k = np.floor(u)
    u -= k
    u -= 0.5  # (v − c)/h, in −0.5..0.5
    flat = k.astype(np.intp)
    width = int(flat.max()) + 1
    flat += (np.arange(n, dtype=np.intp) * width)[:, None]
    flat = flat.reshape(-1)
    size = n * width
    d = u.reshape(-1)
    sums = np.empty((4, size))
    sums[0] = np.bincount(flat, minlength=size)
    sums[1] = np.bincount(flat, d, size)
    d2 = d * d
    sums[2] = np.bincount(flat, d2, size)
    d2 *= d
    sums[3] = np.bincount(flat, d2, size)
    sums = sums.reshape(4, n, width)
    sums[1] *= h[:, None]
    sums[2] *= (0.5 * h * h)[:, None]  # S₂/2
    sums[3] *= (h * h * h / 6.0)[:, None]  # S₃/6
    centres = lo[:, None] + (np.arange(width) + 0.5) * h[:, None]
    full = sums[0] > 0
    order = np.argsort(~full, axis=1, kind="stable")[:, : int(full.sum(axis=1).max())]
    return np.take_along_axis(sums, order[None], axis=2), np.take_along_axis(centres, order, axis=1)


def binned_cdf_means(q: np.ndarray, bins: dict, rows: np.ndarray, alpha: np.ndarray, sigma: np.ndarray,
                     regime: str = "mixed") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`mixed_cdf_means` of the rows ``rows`` (``regime`` mixed or normal) from their draws' bins
    (:func:`draw_bins`): per bin the mean CDF's third-order expansion about the bin's centre c at w = q − c,
    S₀G − S₁G′ + S₂G″/2 − S₃G‴/6 (S_k the bin's sums of (v − c)^k), the density's second-order one and its
    slope's first-order one; G and its derivatives from Φ and φ at the closed form's three points
    (G^(k)(w) = Δ²Ψ₂^(k)(x)/(α^k d²), x = w/α, d = σc/α, Ψ₂″ = Φ, Ψ₂‴ = φ), in cache-sized blocks. The mean
    CDF is within the bins' bound of the draws' (clipped to 0..1, the density floored at 0); the root the solver
    finds moves by that over the density."""
    from scipy.special import ndtr

    from greensink.uncertainty import TRIANGULAR_HALF_WIDTH

    at = bins["at"][rows]
    cen_all, sums = bins["c"], bins["s"]
    n, width = rows.size, cen_all.shape[1]
    step = max(1, SOLVER_BLOCK // width)
    out = np.empty((3, n))
    buf = np.empty((9, min(step, n), width))
    k_phi = 1.0 / math.sqrt(2.0 * math.pi)
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        x0, x, big, phi, tmp, g0, g1, g2, g3 = (b[: r1 - r0] for b in buf)
        sel = at[r0:r1]
        inv_a = 1.0 / alpha[rows[r0:r1], None]
        np.subtract(q[r0:r1, None], cen_all[sel], out=x0)
        x0 *= inv_a
        if regime == "normal":  # G = Φ(x), G′ = φ/α, G″ = −xφ/α², G‴ = (x² − 1)φ/α³
            ndtr(x0, out=g0)
            np.multiply(x0, x0, out=tmp)
            np.multiply(tmp, -0.5, out=phi)
            np.exp(phi, out=phi)
            phi *= k_phi
            np.multiply(phi, inv_a, out=g1)
            np.multiply(x0, g1, out=g2)
            g2 *= -inv_a
            tmp -= 1.0
            np.multiply(tmp, g1, out=g3)
            g3 *= inv_a * inv_a
        else:
            d = (sigma[rows[r0:r1], None] * TRIANGULAR_HALF_WIDTH) * inv_a
            for b in (g0, g1, g2, g3):
                b.fill(0.0)
            for weight, shift in ((1.0, d), (-2.0, None), (1.0, -d)):
                if shift is None:
                    x[...] = x0
                else:
                    np.add(x0, shift, out=x)
                ndtr(x, out=big)
                np.multiply(x, x, out=phi)
                phi *= -0.5
                np.exp(phi, out=phi)
                phi *= k_phi
                if weight != 1.0:
                    big *= weight
                    phi *= weight
                g2 += big  # Δ²Φ
                g3 += phi  # Δ²φ
                np.multiply(x, big, out=tmp)
                tmp += phi  # Ψ₁
                g1 += tmp
                tmp *= x
                tmp += big  # 2Ψ₂
                g0 += tmp
            k2 = 1.0 / (d * d)
            g0 *= 0.5 * k2
            k2 *= inv_a
            g1 *= k2
            k2 *= inv_a
            g2 *= k2
            k2 *= inv_a
            g3 *= k2
        s0, s1, s2h, s3s = (sums[j][sel] for j in range(4))
        # CDF: S₀G − S₁G′ + (S₂/2)G″ − (S₃/6)G‴; density: S₀G′ − S₁G″ + (S₂/2)G‴; its slope: S₀G″ − S₁G‴
        np.multiply(s0, g0, out=x)
        np.multiply(s1, g1, out=tmp)
        x -= tmp
        np.multiply(s2h, g2, out=tmp)
        x += tmp
        np.multiply(s3s, g3, out=tmp)
        x -= tmp
        np.add.reduce(x, axis=1, out=out[0, r0:r1])
        np.multiply(s0, g1, out=x)
        np.multiply(s1, g2, out=tmp)
        x -= tmp
        np.multiply(s2h, g3, out=tmp)
        x += tmp
        np.add.reduce(x, axis=1, out=out[1, r0:r1])
        np.multiply(s0, g2, out=x)
        np.multiply(s1, g3, out=tmp)
        x -= tmp
        np.add.reduce(x, axis=1, out=out[2, r0:r1])
    out /= bins["n_b"]
    np.clip(out[0], 0.0, 1.0, out=out[0])
    np.maximum(out[1], 0.0, out=out[1])
    return out[0], out[1], out[2]
