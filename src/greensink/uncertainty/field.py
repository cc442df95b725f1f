"""The residual field of the plots: their relative residuals' empirical variogram, the exponential model
fitted to it (:class:`ResidualField`, ``models.json`` → ``residual_field``), the plots' measurement
error taken off its nugget (:func:`residual_field`), and the year-to-year correlation of a place's
residual from remeasured plots (:func:`year_correlation`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

# ----------------------------------------------------------------------------- variogram


def exponential_variogram(h: np.ndarray, nugget: float, psill: float, range_m: float) -> np.ndarray:
    """γ(h) = nugget + psill·(1 − exp(−h/range_m)) for h > 0 (0 at h = 0)."""
    h = np.asarray(h, dtype=float)
    return np.where(h > 0, nugget + psill * (1.0 - np.exp(-h / max(range_m, 1e-9))), 0.0)


def empirical_variogram(xy_m: np.ndarray, values: np.ndarray, n_bins: int = 12, max_lag_m: float | None = None,
                        groups: np.ndarray | None = None) -> dict[str, list[float]]:
    """Matheron's estimator γ(h) = Σ (v_i − v_j)² / (2 N(h)) over pairs in ``n_bins`` distance bins of
    equal pair counts up to ``max_lag_m`` (default half the largest pair distance), so the short lags,
    where the correlation is, get bins of their own. With ``groups`` only pairs of the same
    group count (pooling types without mixing them). Returns lag (mean pair distance per bin, m),
    gamma and pairs, bins without pairs left out."""
    xy = np.asarray(xy_m, dtype=float).reshape(-1, 2)
    v = np.asarray(values, dtype=float)
    i, j = np.triu_indices(v.size, k=1)
    if groups is not None:
        g = np.asarray(groups)
        keep = g[i] == g[j]
        i, j = i[keep], j[keep]
    d = np.hypot(*(xy[i] - xy[j]).T)
    if d.size == 0:
        return {"lag_m": [], "gamma": [], "pairs": []}
    top = float(max_lag_m) if max_lag_m else float(d.max()) / 2.0
    edges = np.unique(np.quantile(d[d <= top], np.linspace(0.0, 1.0, int(n_bins) + 1))) if (d <= top).any() else np.array([0.0, top])
    edges[-1] = np.nextafter(edges[-1], np.inf)
    n_bins = edges.size - 1
    b = np.digitize(d, edges) - 1
    ok = (b >= 0) & (b < n_bins) & (d > 0)
    sq = (v[i] - v[j]) ** 2
    pairs = np.bincount(b[ok], minlength=n_bins)
    gsum = np.bincount(b[ok], weights=sq[ok], minlength=n_bins)
    dsum = np.bincount(b[ok], weights=d[ok], minlength=n_bins)
    has = pairs > 0
    return {"lag_m": (dsum[has] / pairs[has]).tolist(), "gamma": (gsum[has] / (2 * pairs[has])).tolist(),
            "pairs": pairs[has].astype(int).tolist()}


@dataclass
class ResidualField:
    """The fitted residual model of one year (``models.json`` → ``residual_field``)."""

    nugget: float  # variance of the uncorrelated part of the relative residual (fraction²)
    psill: float  # variance of the spatially correlated part (fraction²)
    range_m: float  # distance parameter of exp(−h/range_m), m (practical range 3 × range_m)
    n_plots: int
    method: str
    variance: float = 0.0  # sample variance of the pooled relative residuals
    variogram: dict = field(default_factory=dict)
    per_type_sd: dict = field(default_factory=dict)
    plots: list = field(default_factory=list)  # [plot_id, type, x_m, y_m, relative residual, measurement variance]
    nugget_plots: float | None = None  # the variogram's nugget before the plots' measurement variance came off it
    measurement: dict = field(default_factory=dict)  # {var, source, year_correlation}: the plots' measurement error

    def to_json(self) -> dict:
        return {"nugget": self.nugget, "psill": self.psill, "range_m": self.range_m, "n_plots": self.n_plots,
                "method": self.method, "variance": self.variance, "nugget_plots": self.nugget_plots,
                "measurement": self.measurement, "variogram": self.variogram,
                "per_type_sd": self.per_type_sd, "plots": self.plots}

    @classmethod
    def from_json(cls, d: Mapping) -> ResidualField:
        nug_plots = d.get("nugget_plots")
        return cls(float(d["nugget"]), float(d["psill"]), float(d["range_m"]), int(d["n_plots"]), str(d["method"]),
                   float(d.get("variance", 0.0)), dict(d.get("variogram") or {}), dict(d.get("per_type_sd") or {}),
                   list(d.get("plots") or []), None if nug_plots is None else float(nug_plots),
                   dict(d.get("measurement") or {}))


def fit_variogram(xy_m: np.ndarray, values: np.ndarray, *, n_bins: int = 12, max_lag_m: float | None = None,
                  min_pairs: int = 30, min_range_m: float = 1.0, groups: np.ndarray | None = None) -> dict:
    """Nugget, partial sill and range of an exponential model fitted to the empirical variogram by
    weighted least squares (Cressie's weights N(h)/γ̂(h)², bins with ≥ ``min_pairs`` pairs), bounded
    by nugget, psill ≥ 0 and ``min_range_m`` ≤ range ≤ 2 × the largest lag. With fewer than 3 usable
    bins the model is a pure nugget equal to the sample variance (method says which)."""
    v = np.asarray(values, dtype=float)
    var = float(np.var(v, ddof=1)) if v.size > 1 else 0.0
    emp = empirical_variogram(xy_m, v, n_bins, max_lag_m, groups)
    lag, gam, n = (np.asarray(emp[k], dtype=float) for k in ("lag_m", "gamma", "pairs"))
    use = n >= min_pairs
    if use.sum() < 3 or var <= 0:
        return {"nugget": var, "psill": 0.0, "range_m": float(min_range_m), "variance": var, "variogram": emp,
                "method": f"pure nugget (sample variance): fewer than 3 lag bins with >= {min_pairs} pairs"}
    h, g, w = lag[use], gam[use], n[use]
    top = float(h.max())

    def resid(p: np.ndarray) -> np.ndarray:
        model = exponential_variogram(h, *p)
        return np.sqrt(w) * (g - model) / np.maximum(model, 1e-12)

    starts = [(0.5 * var, 0.5 * var, top / 3), (0.1 * var, 0.9 * var, top / 10), (0.9 * var, 0.1 * var, top)]
    best = None
    for s in starts:
        try:
            r = optimize.least_squares(resid, np.array(s), bounds=([0, 0, min_range_m], [4 * var, 4 * var, 2 * top]))
        except ValueError:
            continue
        if best is None or r.cost < best.cost:
            best = r
    if best is None:
        return {"nugget": var, "psill": 0.0, "range_m": float(min_range_m), "variance": var, "variogram": emp,
                "method": "pure nugget (sample variance): the exponential fit failed"}
    nug, ps, rng_m = (float(x) for x in best.x)
    return {"nugget": nug, "psill": ps, "range_m": rng_m, "variance": var, "variogram": emp,
            "method": "exponential variogram, weighted least squares (Cressie), relative residuals pooled over types"}


def residual_field(plots: Sequence[Mapping], *, n_bins: int = 12, max_lag_m: float | None = None,
                   min_pairs: int = 30, min_range_m: float = 1.0, groups: Sequence | None = None,
                   measurement: Mapping | None = None) -> ResidualField:
    """The residual model from plot records {plot_id, type, x_m, y_m, rel[, meas_var]} (relative residuals
    (C − Ĉ)/Ĉ of the fitted types): one variogram pooled over types (all pairs: one field serves
    every type of a pixel); per-type standard deviations are recorded beside it. With ``groups`` (one
    label per record, e.g. the year) only pairs within a group enter the variogram.

    **Plot measurement error.** A plot's measured carbon carries its own error (``meas_var``, the
    relative variance of the measurement: from the tree-inventory draws or ``uncertainty.plot_error_pct``),
    independent between plots, so the variogram counts it in the nugget. It is no error of the map's
    pixels: the nugget drawn for the pixels is the fitted one minus the plots' mean measurement
    variance, floored at 0 (``nugget_plots`` keeps the fitted one; a shortfall below 0 is left in the
    partial sill, which a measurement error cannot be part of). ``measurement`` ({source,
    year_correlation}) is recorded with the mean variance."""
    keep = [k for k, p in enumerate(plots) if np.isfinite(p["rel"])]
    ok = [plots[k] for k in keep]
    meas = np.array([float(p.get("meas_var", 0.0) or 0.0) for p in ok], dtype=float)
    meas_var = float(np.nanmean(meas)) if meas.size else 0.0
    minfo = {**dict(measurement or {}), "var": meas_var}
    if len(ok) < 3:
        return ResidualField(0.0, 0.0, float(min_range_m), len(ok), "none: fewer than 3 plot residuals",
                             measurement=minfo)
    xy = np.array([[p["x_m"], p["y_m"]] for p in ok], dtype=float)
    rel = np.array([p["rel"] for p in ok], dtype=float)
    types = np.array([str(p["type"]) for p in ok])
    grp = None if groups is None else np.asarray([str(groups[k]) for k in keep])
    fit = fit_variogram(xy, rel, n_bins=n_bins, max_lag_m=max_lag_m, min_pairs=min_pairs, min_range_m=min_range_m,
                        groups=grp)
    sd = {t: float(np.std(rel[types == t], ddof=1)) for t in sorted(set(types)) if (types == t).sum() > 1}
    records = [[str(p["plot_id"]), str(p["type"]), float(p["x_m"]), float(p["y_m"]), float(p["rel"]), float(m)]
               for p, m in zip(ok, meas, strict=True)]
    nugget = max(fit["nugget"] - meas_var, 0.0)
    method = fit["method"] + (f"; nugget less the plots' measurement variance {meas_var:.4g}" if meas_var > 0 else "")
    return ResidualField(nugget, fit["psill"], fit["range_m"], len(ok), method, fit["variance"],
                         fit["variogram"], sd, records, nugget_plots=fit["nugget"], measurement=minfo)


def year_correlation(plots0: Sequence[Sequence], plots1: Sequence[Sequence], min_pairs: int = 5,
                     measurement_year_correlation: float = 0.0) -> dict:
    """Year-to-year correlation of the *place's* relative residual, from plots measured in both years
    (matched by type and id; records as in :attr:`ResidualField.plots`, whose 6th item is the plot's
    relative measurement variance σ²_m, 0 when absent).

    A remeasured plot's residual is r_y = s_y + m_y: s the place's departure from the curve (what the
    pixels' residual field stands for) and m_y the plot's measurement error, variance σ²_m, correlated
    between the years by ``measurement_year_correlation`` ρ_m (0: each year's measurement is new). The
    measurement error is no error of the map, so it comes off both the covariance and the variances:

        ρ = (cov(r0, r1) − ρ_m·mean(σ_m0·σ_m1)) / √((var(r0) − mean σ²_m0)·(var(r1) − mean σ²_m1)),

    clipped to 0–1 (``rho_uncorrected`` is the plain Pearson correlation, which the measurement error
    pulls towards 0: var(s)/(var(s) + σ²_m) for a persistent s and a fresh error). Fewer than ``min_pairs``
    remeasured plots, or no variance left once the measurement error is taken off: ρ = 1 (the residual of
    a place persists; no evidence says otherwise)."""
    a = {(r[1], r[0]): (r[4], r[5] if len(r) > 5 else 0.0) for r in plots0}
    rows = [(a[(r[1], r[0])][0], r[4], a[(r[1], r[0])][1], r[5] if len(r) > 5 else 0.0)
            for r in plots1 if (r[1], r[0]) in a]
    arr = np.array(rows, dtype=float).reshape(-1, 4)
    pairs, m = arr[:, :2], np.nan_to_num(arr[:, 2:], nan=0.0)
    rho_m = min(max(float(measurement_year_correlation), 0.0), 1.0)
    if len(pairs) < min_pairs or np.std(pairs[:, 0]) == 0 or np.std(pairs[:, 1]) == 0:
        return {"rho": 1.0, "n": int(len(pairs)), "method": f"assumed 1: fewer than {min_pairs} remeasured plots"}
    raw = float(np.corrcoef(pairs.T)[0, 1])
    cov = float(np.cov(pairs.T, ddof=1)[0, 1])
    v0, v1 = (float(np.var(pairs[:, k], ddof=1)) for k in (0, 1))
    mv0, mv1 = float(m[:, 0].mean()), float(m[:, 1].mean())
    mcov = rho_m * float(np.sqrt(m[:, 0] * m[:, 1]).mean())
    out = {"rho_uncorrected": raw, "rho_raw": raw, "n": int(len(pairs)), "cov": cov, "var": [v0, v1],
           "measurement_var": [mv0, mv1], "measurement_year_correlation": rho_m}
    s0, s1 = v0 - mv0, v1 - mv1
    if not (mv0 > 0 or mv1 > 0):
        return {**out, "rho": float(min(max(raw, 0.0), 1.0)),
                "method": "Pearson correlation of the relative residuals of remeasured plots (same id), clipped to 0-1"}
    if s0 <= 0 or s1 <= 0:
        return {**out, "rho": 1.0, "method": "assumed 1: the plots' measurement variance is as large as their residual variance"}
    rho = (cov - mcov) / math.sqrt(s0 * s1)
    return {**out, "rho": float(min(max(rho, 0.0), 1.0)), "rho_corrected_raw": float(rho),
            "method": "correlation of the remeasured plots' relative residuals with their measurement error taken off "
                      "(cov - rho_m mean sd_m0 sd_m1) / sqrt((var0 - mean var_m0)(var1 - mean var_m1)), clipped to 0-1"}
