"""Inventory conventions: the draw sources in table order (:data:`SOURCES`), the IPCC uncertainty
U % (:func:`u_pct`), each source's share of a zone's variance (:func:`variance_shares`) and the plots
needed for a target uncertainty (:func:`plots_needed`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

SOURCES = ("curve", "table", "residual", "ndvi", "edges")  # the per-source draw contributions, in table order


# ----------------------------------------------------------------------------- inventory conventions


def u_pct(draws: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """IPCC 2006 (Vol. 1 Ch. 3) uncertainty: half the 95 % interval as a percentage of |estimate|,
    ((q97.5 − q2.5)/2)/|estimate| × 100, per row of ``draws`` (Z, B); NaN where the estimate is 0 or NaN."""
    d = np.asarray(draws, dtype=float)
    est = np.asarray(estimate, dtype=float)
    if d.ndim != 2 or d.shape[1] < 2:
        return np.where(np.isfinite(est), 0.0, np.nan)
    lo, hi = np.quantile(d, [0.025, 0.975], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(est) & (est != 0), 100.0 * (hi - lo) / 2.0 / np.abs(est), np.nan)


ROUNDING_SD = 1e-12  # a standard deviation this small relative to the mean is rounding (variance_shares)


def variance_shares(parts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per zone the share (%) of each source in the sum of the sources' variances: Var_k / Σ Var_k × 100,
    Var_k the variance over draws of source k's contribution to the zone sum ((Z, B) each). The
    sources are drawn independently, so their variances add up to the total variance except for the
    (small) interactions, e.g. of a residual with a curve draw. NaN where no source varies. A source whose draws are
    one number up to rounding (a standard deviation of at most :data:`ROUNDING_SD` of its mean: a constant density
    summed over pixels in another order, as a tiled run's gather does) does not vary."""
    var = {}
    for k, v in parts.items():
        v = np.asarray(v, dtype=float)
        var_k = np.var(v, axis=1)
        var[k] = np.where(var_k <= (ROUNDING_SD * np.mean(v, axis=1)) ** 2, 0.0, var_k)
    total = np.sum(list(var.values()), axis=0) if var else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {k: np.where(total > 0, 100.0 * v / total, np.nan) for k, v in var.items()}


def plots_needed(n: int, u_now_pct: float, u_target_pct: float) -> int | None:
    """Plots for a target curve uncertainty: n × (U_now/U_target)², as the standard error of a fitted
    mean shrinks with 1/√n. None without a current uncertainty or target."""
    if not (n and u_now_pct and u_target_pct) or not all(map(math.isfinite, (u_now_pct, u_target_pct))):
        return None
    return int(math.ceil(n * (u_now_pct / u_target_pct) ** 2))

