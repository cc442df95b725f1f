"""Uncertainty: the error sources beyond the fitted curves, as Monte Carlo draws on the grid.

The carbon draws of a pixel (:func:`greensink.carbon.pixel_function`) start from the bootstrap draws
of the curves (and of the coefficient table for fallback types). This module adds, per draw b:

* **residual** — the scatter of the plots about the curve, a *relative* error e_b(x) of the pixel's
  carbon (C = Ĉ·(1 + e)), with the spatial correlation of the plot residuals: an exponential
  covariance C(h) = psill·exp(−h/range_m) plus an uncorrelated nugget. The correlated part is a
  Gaussian random field on a coarse lattice (cell = ``cell_fraction`` × range, never finer than a
  pixel) made by circulant embedding from ``(seed, stream, draw)``, interpolated bilinearly to the
  pixel centres and rescaled to unit variance at every pixel; the nugget is one N(0, 1) number per
  pixel and draw, those of a grid row drawn from a generator seeded by (seed, stream, row). Neither
  depends on how the grid is cut into strips or chunks, so the draws (and carbon.tif) are the same
  whatever the strip height. The parameters come from an empirical variogram of the plots'
  relative residuals (:func:`fit_variogram`) stored in ``models.json`` (``residual_field``).
  Years: e_y = √ρ·E_common + √(1 − ρ)·E_y, ρ the year-to-year correlation of remeasured plots'
  residuals (:func:`year_correlation`), so the sink's draws keep the persistence of the residual;
  a single year's stock uses E_common alone (same marginal distribution). The plots' own measurement
  error (``uncertainty.plot_error_pct`` or the tree-inventory draws) is no error of the map's pixels:
  it comes off the nugget (:func:`residual_field`) and off the covariance and variances behind ρ
  (:func:`year_correlation`), and a sink draws both years from one field fitted to both years' plots
  (:func:`paired_residual_field`).
* **ndvi** — the composite NDVI's standard error (``ndvi_se.tif``, :func:`ndvi_standard_error`)
  times one N(0, 1) number per pixel, draw and year, propagated through the curve's slope at the
  pixel (first order: f′(NDVI)·se·z).
* **edges** — a positional error of the green-space polygons, sd ``position_sd_m``: a pixel cut by
  a green-space edge (typed fraction 0 < F < 1) has its typed fraction moved by
  δF = z·position_sd_m·L/A, L = π·res/4 the mean chord of a square pixel (Cauchy), A = res², its
  types in proportion; a pixel between two types moves the same amount from one to the other. z is
  one N(0, 1) per pixel and draw, the same in every year (the polygons are the same), so it largely
  cancels in the sink.

Random numbers come from keys built with :func:`stream_key`, so every source has its own stream.
"""

from __future__ import annotations

import logging
import math
import weakref
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize

log = logging.getLogger(__name__)

SOURCES = ("curve", "table", "residual", "ndvi", "edges")  # the per-source draw contributions, in table order
MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2)  # SE of a median of n normal values ≈ 1.2533 σ/√n
MEAN_CHORD_FACTOR = math.pi / 4  # mean chord of a square of side a through random lines: π a / 4 (Cauchy)


# ----------------------------------------------------------------------------- random numbers


def stream_key(seed: int, name: str, year: int | None = None) -> int:
    """A 63-bit key of (seed, source name, year): one independent stream per source and year."""
    text = f"{int(seed)}|{name}|{'' if year is None else int(year)}"
    return (zlib.crc32(text.encode()) << 31) ^ zlib.crc32(text[::-1].encode()) ^ (int(seed) & 0x7FFFFFFF)


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


# ----------------------------------------------------------------------------- NDVI error


def ndvi_standard_error(count: np.ndarray, obs_sd: float, method: str = "median") -> np.ndarray:
    """Standard error of the composite NDVI from the number of clear observations n: σ_obs·1.2533/√n
    for a median composite (the median's asymptotic SE), σ_obs/√n·1.2533 also for max-NDVI (an
    approximation: the maximum is not an average); NaN where n = 0."""
    n = np.asarray(count, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = MEDIAN_SE_FACTOR * float(obs_sd) / np.sqrt(n)
    return np.where(n > 0, se, np.nan).astype(np.float32)


# ----------------------------------------------------------------------------- per-draw noise


@dataclass
class NoiseSpec:
    """What the draws include beyond the curves, and how (one run, one year)."""

    seed: int
    year: int | None = None
    curve: bool = True
    table: bool = True
    residual: ResidualField | None = None  # None: no residual source
    rho: float = 1.0  # year-to-year correlation of the residual
    paired: bool = False  # True in the change rule: common and year streams kept apart
    ndvi: bool = False  # NDVI error from an "ndvi_se" layer
    position_sd_m: float = 0.0  # edges
    resolution_m: float = 10.0
    width: int = 1  # grid columns (global pixel index = row × width + col)
    height: int = 1


def _unit_triangular(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-variance float32 numbers: (u1 + u2 − 1)·√6 of two uniforms (triangular; its 5 %
    and 95 % points are ∓1.675, against ∓1.645 of a normal), three times cheaper than normals."""
    k = gen.integers(0, 1 << 16, (2, *shape), dtype=np.uint16)
    out = np.add(k[0], k[1], dtype=np.float32)  # exact: integers below 2^24
    out += np.float32(1.0 - 65536.0)
    out *= np.float32(math.sqrt(6.0) / 65536.0)
    return out


class _Rows:
    """Consecutive grid rows ``first`` … ``first + k − 1`` of one random stream, kept as one block
    (B, k, width) float32, so a chunk's values are gathered from it without stacking rows. A field
    stream also keeps where its row recursion stands (``next``, the next row to compute; ``prev``, the
    last row computed)."""

    def __init__(self) -> None:
        self.first = 0  # the first row kept
        self.base = 0  # the grid row of the block's first row (≤ first: rows above first are forgotten)
        self.block: np.ndarray | None = None  # (B, rows, width), C-contiguous
        self.next = 0
        self.prev: np.ndarray | None = None

    @property
    def stop(self) -> int:
        return self.base + (0 if self.block is None else self.block.shape[1])

    def keep_from(self, r0: int) -> None:
        """Forget the rows above ``r0`` (the next :meth:`extend` copies only the rows kept)."""
        if self.block is not None and r0 > self.first:
            if r0 < self.stop:
                self.first = r0
            else:
                self.block = None

    def trim(self, r: int) -> None:
        """Keep the rows from ``r`` on in a block of their own (the memory of the rows above is freed now)."""
        if self.block is not None and self.base < r < self.stop:
            self.block = self.block[:, r - self.base:].copy()
            self.first = self.base = r

    def extend(self, first: int, n: int, n_draws: int, width: int) -> np.ndarray:
        """A new block of the kept rows and ``n`` rows ``first`` … after them (or of those alone where they do
        not follow the kept rows); returns its view (B, n, width) of the new rows, for the caller to fill."""
        if self.block is None or first != self.stop:
            self.first = self.base = first
            self.block = np.empty((n_draws, n, width), dtype=np.float32)
            return self.block
        keep = self.stop - self.first
        block = np.empty((n_draws, keep + n, width), dtype=np.float32)
        block[:, :keep] = self.block[:, self.first - self.base:]
        self.block, self.base = block, self.first
        return block[:, keep:]

    def gather(self, gidx: np.ndarray, width: int) -> np.ndarray:
        """(B, n) values at global pixel indices ``gidx`` (all within the kept rows)."""
        return self.block.reshape(self.block.shape[0], -1)[:, gidx - self.base * width]


# Rows of the residual field computed at a time: those the chunk needs, at least FIELD_AHEAD_ROWS, at most
# FIELD_BATCH_BYTES of float32 rows (or FIELD_AHEAD_ROWS) per batch. The row filter's Python loop runs over the
# columns once per batch, but with 200 draws its array work dominates: 8 rows ahead gave no gain on a 10980-wide
# grid (chunks of 8192 pixels, 0.93 vs 0.94 s CPU for 24 rows), so none are computed ahead (no memory for them).
FIELD_AHEAD_ROWS = 1
FIELD_BATCH_BYTES = 32 << 20

# The streams' kept rows, shared by the Noise objects alive with the same stream (key, draws, width and,
# for a field, φ): the change rule's two years draw the same common streams (residual field and pixel
# numbers) chunk by chunk, and compute them once. The numbers depend on the stream and the row alone.
_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _shared_rows(key: tuple) -> _Rows:
    rows = _SHARED.get(key)
    if rows is None:
        rows = _Rows()
        _SHARED[key] = rows
    return rows


class Noise:
    """Per-chunk draws of the residual, NDVI and edge errors of :class:`NoiseSpec` (module docstring).

    Random numbers are made per grid row from a generator seeded by (seed, stream, row), so a pixel's
    numbers do not depend on the strip or chunk it is evaluated in. The correlated residual field is a
    separable exponential field at pixel resolution: white noise filtered by a first-order
    autoregression along each row and then down the rows (φ = exp(−res/L), L = range_m·√(π/2), the
    scale whose correlation integral equals the fitted isotropic model's, so large zone sums get its
    variance), carried from row to row, so memory is a few rows × draws.

    A stream's rows are kept as one block from the first row the last chunk asked for (:class:`_Rows`),
    shared with the other live Noise objects of the same stream: the common streams of a pair of years
    are computed once (tests/test_uncertainty_rows.py compares the numbers, bit for bit, with a plain
    whole-grid reference of these definitions)."""

    def __init__(self, spec: NoiseSpec, n_draws: int) -> None:
        self.spec = spec
        self.n_draws = int(n_draws)
        r = spec.residual
        self.sd_nugget = math.sqrt(r.nugget) if r is not None else 0.0
        self.sd_field = math.sqrt(r.psill) if r is not None and r.range_m > 0 else 0.0
        if self.sd_field > 0:
            self.phi = math.exp(-spec.resolution_m / (r.range_m * math.sqrt(math.pi / 2)))
        self.rho = min(max(float(spec.rho), 0.0), 1.0) if spec.paired else 1.0
        self._streams: dict[tuple, _Rows] = {}  # strong references: the shared rows live as long as this object

    @property
    def active(self) -> bool:
        return self.sd_nugget > 0 or self.sd_field > 0 or self.spec.ndvi or self.spec.position_sd_m > 0

    def _stream(self, kind: str, name: str, year: int | None) -> tuple[int, _Rows]:
        key = stream_key(self.spec.seed, name, year)
        ident = (kind, key, self.n_draws, int(self.spec.width),
                 float(self.phi) if kind == "field" else None)
        rows = self._streams.get(ident)
        if rows is None:
            rows = self._streams[ident] = _shared_rows(ident)
        return key, rows

    def _white_rows(self, key: int, r0: int, out: np.ndarray) -> None:
        """Fill ``out`` (B, rows, width) with the white rows r0 … of the stream ``key`` (one generator per row)."""
        for k in range(out.shape[1]):
            out[:, k] = _unit_triangular(np.random.default_rng([key & 0xFFFFFFFF, key >> 32, r0 + k]),
                                         (self.n_draws, self.spec.width))

    def white(self, name: str, year: int | None, gidx: np.ndarray) -> np.ndarray:
        """(B, n) float32 unit-variance numbers of a stream at global pixel indices ``gidx``."""
        w = self.spec.width
        r0, r1 = int(gidx.min() // w), int(gidx.max() // w)
        key, st = self._stream("white", name, year)
        if st.block is None or r0 < st.first or r0 >= st.stop:
            st.block = None
            self._white_rows(key, r0, st.extend(r0, r1 + 1 - r0, self.n_draws, w))
        else:
            st.keep_from(r0)
            if r1 >= st.stop:
                start = st.stop
                self._white_rows(key, start, st.extend(start, r1 + 1 - start, self.n_draws, w))
        out = st.gather(gidx, w)
        if not (self.spec.paired and year is None):  # no other year asks for these rows: keep the last one only
            st.trim(r1)
        return out

    def _field_rows(self, year: int | None, r0: int, r1: int) -> _Rows:
        """The unit-variance correlated field's rows r0..r1 of a stream (kept from r0 on), computed in row
        order from the top of the grid (restarting there if an earlier row is asked again), in batches of
        :data:`FIELD_AHEAD_ROWS` to :data:`FIELD_BATCH_BYTES` of rows, ahead of r1 up to the grid's height
        (``spec.height``)."""
        key, st = self._stream("field", "field", year)
        if r0 < (st.first if st.block is not None else st.next):
            st.first, st.base, st.block, st.next, st.prev = 0, 0, None, 0, None
        st.keep_from(r0)
        w = self.spec.width
        limit = max(int(self.spec.height), r1 + 1)
        ahead = max(1, int(FIELD_AHEAD_ROWS))
        batch = max(ahead, FIELD_BATCH_BYTES // (4 * self.n_draws * w))
        phi, cc = np.float32(self.phi), np.float32(math.sqrt(1.0 - self.phi**2))
        while st.next <= r1:
            first = st.next
            n_new = min(max(r1 + 1 - first, ahead), batch, limit - first)
            # white noise of the new rows laid out (width, rows, B): the autoregression along each row runs over
            # the columns, x_j = φ x_(j−1) + √(1 − φ²) x_j (x_0 is already stationary: unit variance)
            x = np.empty((w, n_new, self.n_draws), dtype=np.float32)
            for k, r in enumerate(range(first, first + n_new)):
                x[:, k] = _unit_triangular(np.random.default_rng([key & 0xFFFFFFFF, key >> 32, r]),
                                           (self.n_draws, w)).T
            tmp = np.empty(x.shape[1:], dtype=np.float32)
            np.multiply(x[1:], cc, out=x[1:])  # the c x_j of every column at once (x_j is not changed before)
            for j in range(1, w):
                np.multiply(x[j - 1], phi, out=tmp)
                np.add(tmp, x[j], out=x[j])
            # down the rows, (width, B) at a time: y_r = φ y_(r−1) + √(1 − φ²) x_r, the grid's first row as it is
            y = st.extend(first, n_new, self.n_draws, w)  # the new rows' place in the kept block
            cur = np.empty((w, self.n_draws), dtype=np.float32)
            prev = st.prev
            scaled = 0 if prev is not None else 1  # the grid's first row enters unscaled
            np.multiply(x[:, scaled:], cc, out=x[:, scaled:])  # c x_r of every row at once
            for k in range(n_new):
                if prev is None:
                    cur[...] = x[:, k]
                else:
                    np.multiply(prev, phi, out=cur)
                    np.add(cur, x[:, k], out=cur)
                y[:, k] = cur.T
                prev, cur = cur, (prev if prev is not None else np.empty_like(cur))
            st.prev = prev
            st.next = first + n_new
            st.keep_from(r0)
        return st

    def field(self, gidx: np.ndarray) -> np.ndarray | None:
        """(B, n) correlated part of the relative residual: sd_field × (√ρ F_common + √(1−ρ) F_year)."""
        if not self.sd_field > 0:
            return None
        w = self.spec.width
        r0, r1 = int(gidx.min() // w), int(gidx.max() // w)
        out = None
        streams = [(None, math.sqrt(self.rho))]
        if self.rho < 1:
            streams.append((self.spec.year, math.sqrt(1.0 - self.rho)))
        for year, weight in streams:
            if weight <= 0:
                continue
            # float64 product of the float32 field (exactly widened) and the weight, without a widened copy
            part = np.multiply(self._field_rows(year, r0, r1).gather(gidx, w), self.sd_field * weight, dtype=np.float64)
            if out is None:
                out = part
            else:
                out += part
        return out

    def edge_sd_frac(self) -> float:
        """Standard deviation of the typed fraction of a pixel cut by an edge: position_sd × (π res/4) / res²."""
        res = self.spec.resolution_m
        return float(self.spec.position_sd_m) * MEAN_CHORD_FACTOR * res / (res * res)

    def pixel_terms(self, gidx: np.ndarray, nugget_amp: np.ndarray, ndvi_amp: np.ndarray,
                    edge_amp: np.ndarray, parts: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The per-pixel independent errors, given their standard deviations per pixel (t C/ha of
        pixel): the nugget (sd_nugget × the plot types' density), the NDVI error (slope × se) and the
        edge shift (:func:`greensink.carbon` edge term × sd). Returns (total (B, n), {source: (B, n)}).

        Single year: one stream z, total = √(nugget² + ndvi² + edges²)·z (the same distribution as
        three independent terms); the parts are amplitude × z (their variances are right, their sum
        is not the total). Paired years: a common stream (the persistent share ρ of the nugget and the
        edges: the same polygons) and a year stream (the rest of the nugget and the NDVI error)."""
        n2 = (self.sd_nugget * nugget_amp) ** 2
        if not self.spec.paired:
            z = self.white("pixel", None, gidx)
            amp = np.sqrt(n2 + ndvi_amp**2 + edge_amp**2)
            if not parts:
                return amp * z, {}
            return amp * z, {"residual": np.sqrt(n2) * z, "ndvi": ndvi_amp * z, "edges": edge_amp * z}
        zc = self.white("pixel", None, gidx)
        zy = self.white("pixel", self.spec.year, gidx)
        total = np.sqrt(self.rho * n2 + edge_amp**2) * zc  # the common part, then the year's added in place
        total += np.sqrt((1.0 - self.rho) * n2 + ndvi_amp**2) * zy
        if not parts:
            return total, {}
        mix = math.sqrt(self.rho) * zc  # float32, as the unit numbers
        mix += math.sqrt(1.0 - self.rho) * zy
        return total, {"residual": np.sqrt(n2) * mix, "ndvi": ndvi_amp * zy, "edges": edge_amp * zc}


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


def variance_shares(parts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per zone the share (%) of each source in the sum of the sources' variances: Var_k / Σ Var_k × 100,
    Var_k the variance over draws of source k's contribution to the zone sum ((Z, B) each). The
    sources are drawn independently, so their variances add up to the total variance except for the
    (small) interactions, e.g. of a residual with a curve draw. NaN where no source varies."""
    var = {k: np.var(np.asarray(v, dtype=float), axis=1) for k, v in parts.items()}
    total = np.sum(list(var.values()), axis=0) if var else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {k: np.where(total > 0, 100.0 * v / total, np.nan) for k, v in var.items()}


def plots_needed(n: int, u_now_pct: float, u_target_pct: float) -> int | None:
    """Plots for a target curve uncertainty: n × (U_now/U_target)², as the standard error of a fitted
    mean shrinks with 1/√n. None without a current uncertainty or target."""
    if not (n and u_now_pct and u_target_pct) or not all(map(math.isfinite, (u_now_pct, u_target_pct))):
        return None
    return int(math.ceil(n * (u_now_pct / u_target_pct) ** 2))


# ----------------------------------------------------------------------------- configuration and models.json

DEFAULTS: dict = {
    "curve": True,
    "table": True,
    "residual": {"enabled": True, "n_bins": 12, "max_lag_m": None, "min_pairs": 30, "year_correlation": "auto"},
    "ndvi": {"enabled": True, "obs_sd": 0.03},
    "edges": {"enabled": True, "position_sd_m": 1.5},
    "plot_error_pct": 10.0,
    "plot_error_year_correlation": "auto",
    "target_u_pct": 10.0,
    "pixel_interval": "tabulated",
}


def settings(config: Mapping | None) -> dict:
    """The ``uncertainty`` config section with every default filled in (nested one level)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for k, v in (config or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def noise_spec(config: Mapping | None, models: Mapping, *, seed: int, year: int | None, resolution_m: float,
               rho: float = 1.0, paired: bool = False) -> NoiseSpec:
    """The :class:`NoiseSpec` of a year from the ``uncertainty`` config and the year's models.json."""
    cfg = settings(config)
    res = None
    if cfg["residual"]["enabled"] and models.get("residual_field"):
        res = ResidualField.from_json(models["residual_field"])
    return NoiseSpec(seed=int(seed), year=year, curve=bool(cfg["curve"]), table=bool(cfg["table"]), residual=res,
                     rho=float(rho), paired=paired,
                     ndvi=bool(cfg["ndvi"]["enabled"]),
                     position_sd_m=float(cfg["edges"]["position_sd_m"]) if cfg["edges"]["enabled"] else 0.0,
                     resolution_m=float(resolution_m))


def plot_residuals(models: Mapping, plots, types: Sequence[str], *, plot_error_pct: float = 0.0,
                   carbon_draws=None) -> list[dict]:
    """Relative residuals (C − Ĉ)/Ĉ of the plots of the types fitted to plots (``source`` "plots"),
    Ĉ the chosen model at the plot's predictors (NaN predictors or Ĉ ≤ 0: left out), each with its
    measurement variance on the same scale, ``meas_var`` = Var(C_measured)/Ĉ²: the variance of the
    plot's carbon draws where ``carbon_draws`` (plot_id → draws, the tree inventory's) has the plot,
    else (plot_error_pct/100 · C)² (a relative measurement sd of the plot's carbon)."""
    from greensink.model import model_predictors, predict_type

    draw_var: dict[str, float] = {}
    if carbon_draws is not None and len(carbon_draws):
        values = np.asarray(carbon_draws, dtype=float)
        if values.shape[1] > 1:
            draw_var = dict(zip(carbon_draws.index.astype(str), np.nanvar(values, axis=1, ddof=1), strict=True))
    rel_err = float(plot_error_pct) / 100.0

    out = []
    for t in types:
        tm = models["types"][t]
        if tm.get("source") != "plots":
            continue
        sel = plots[plots["type"].astype(str) == t]
        if sel.empty:
            continue
        preds = model_predictors(tm)
        x = np.stack([sel[q].to_numpy(float) for q in preds]) if len(preds) > 1 else sel[preds[0]].to_numpy(float)
        fit = predict_type(models, t, x)
        obs = sel["carbon_t_ha"].to_numpy(float)
        for pid, xm, ym, c, f in zip(sel["plot_id"], sel["x_m"], sel["y_m"], obs, fit, strict=True):
            if np.isfinite(f) and f > 0 and np.isfinite(c):
                v = draw_var.get(str(pid))
                v = (rel_err * c) ** 2 if v is None or not np.isfinite(v) else float(v)
                out.append({"plot_id": str(pid), "type": t, "x_m": float(xm), "y_m": float(ym), "rel": float((c - f) / f),
                            "meas_var": float(v / (f * f))})
    return out


def plot_measurement(config: Mapping | None, models: Mapping, carbon_draws=None) -> dict:
    """Where the plots' measurement error comes from and how it persists between years: with a tree
    inventory (``carbon_draws``) the variance of each plot's carbon draws (allometric and tree
    measurement errors), else ``uncertainty.plot_error_pct``; ``uncertainty.plot_error_year_correlation``
    or, ``auto``, 0 for a plots file (each year's measurement is new) and for a tree inventory the
    inventory's ``allometric_year_correlation`` (its allometric error, which dominates a plot's error,
    persists as configured there; its measurement_year_correlation when the allometric error is off)."""
    cfg = settings(config)
    tree = (models.get("plot_carbon") or {}) if carbon_draws is not None else {}
    setting = cfg["plot_error_year_correlation"]
    if setting != "auto":
        rho_m = float(setting)
    elif tree.get("source") == "tree_inventory":
        err = tree.get("errors") or {}
        rho_m = float(err.get("allometric_year_correlation", 1.0) if err.get("allometric", True)
                      else err.get("measurement_year_correlation", 0.0))
    else:
        rho_m = 0.0
    source = ("tree inventory draws (variance of each plot's carbon draws)" if carbon_draws is not None
              else f"uncertainty.plot_error_pct = {float(cfg['plot_error_pct']):g} % of the plot's carbon")
    return {"source": source, "plot_error_pct": None if carbon_draws is not None else float(cfg["plot_error_pct"]),
            "year_correlation": min(max(rho_m, 0.0), 1.0)}


def curve_u_pct(models: Mapping, plots, type_code: str) -> float | None:
    """U % (half the 95 % interval over the estimate) of the type's mean density over its plots
    from the curve draws: the curve part of the uncertainty of an average stand of the type."""
    from greensink.model import model_predictors, predict_draws, predict_type

    tm = models["types"][type_code]
    sel = plots[plots["type"].astype(str) == type_code]
    if tm.get("source") != "plots" or sel.empty:
        return None
    preds = model_predictors(tm)
    x = np.stack([sel[q].to_numpy(float) for q in preds]) if len(preds) > 1 else sel[preds[0]].to_numpy(float)
    est = np.nanmean(np.maximum(predict_type(models, type_code, x), 0.0))
    draws = np.nanmean(np.maximum(predict_draws(models, type_code, x), 0.0), axis=-1)
    u = u_pct(draws[np.newaxis, :], np.array([est]))[0]
    return float(u) if np.isfinite(u) else None


def annotate_models(models: dict, plots, types: Sequence[str], config: Mapping | None, carbon_draws=None) -> None:
    """Add the residual model (``residual_field``, its nugget net of the plots' measurement error:
    :func:`residual_field`, :func:`plot_measurement`) and, per type fitted to plots, ``curve_u_pct`` and
    ``plots_needed`` (n × (U_now/U_target)² for ``uncertainty.target_u_pct``) to models.json's dict.
    ``carbon_draws``: the tree inventory's plot carbon draws of the year (plot_id → draws), if any."""
    cfg = settings(config)
    r = cfg["residual"]
    meas = plot_measurement(config, models, carbon_draws)
    records = plot_residuals(models, plots, types, plot_error_pct=float(cfg["plot_error_pct"]),
                             carbon_draws=carbon_draws) if len(plots) else []
    fld = residual_field(records, n_bins=int(r["n_bins"]), max_lag_m=r["max_lag_m"], min_pairs=int(r["min_pairs"]),
                         measurement=meas)
    models["residual_field"] = fld.to_json()
    target = float(cfg["target_u_pct"])
    models["target_u_pct"] = target
    for t in types:
        tm = models["types"][t]
        u = curve_u_pct(models, plots, t) if len(plots) else None
        tm["curve_u_pct"] = u
        tm["plots_needed"] = plots_needed(int(tm.get("n") or 0), u, target) if u is not None else None


def ndvi_se_to_file(composite_path, out_path, *, obs_sd: float, method: str = "median", compress: str = "zstd",
                    strip_rows: int = 512) -> dict:
    """Write ``ndvi_se.tif`` (NDVI standard error of the composite, :func:`ndvi_standard_error`) from the
    composite's ``valid_obs_count`` band, strip by strip; returns its mean over observed pixels."""
    from rasterio.windows import Window

    from greensink import io as gio

    grid = gio.read_grid(composite_path)
    band = gio.band_names(composite_path).index("valid_obs_count") + 1
    total, n = 0.0, 0
    with gio.raster_writer(out_path, grid, 1, band_names=["ndvi_se"], compress=compress,
                           tags={"units": "NDVI", "obs_sd": obs_sd, "method": method}) as out:
        for r in range(0, grid.height, strip_rows):
            h = min(strip_rows, grid.height - r)
            count = gio.read_raster(composite_path, bands=band, window=Window(0, r, grid.width, h))
            se = ndvi_standard_error(count, obs_sd, method)
            out.write(se[np.newaxis], r)
            ok = np.isfinite(se)
            total += float(se[ok].sum(dtype=np.float64))
            n += int(ok.sum())
    return {"mean_ndvi_se": total / n if n else None, "observed_pixels": n}


def run_ndvi_se(composite: str | Path, out: str | Path, *, obs_sd: float, method: str = "median",
                compress: str = "zstd") -> dict:
    """Rule ndvi_se: ``out`` (results/{year}/ndvi_se.tif) from the composite's clear-observation count
    (:func:`ndvi_se_to_file`); returns its statistics."""
    stats = ndvi_se_to_file(composite, out, obs_sd=obs_sd, method=method, compress=compress)
    log.info("ndvi_se: mean %s NDVI over %d observed pixels (σ per observation %g)",
             "-" if stats["mean_ndvi_se"] is None else f"{stats['mean_ndvi_se']:.4f}", stats["observed_pixels"], obs_sd)
    return stats


def residual_year_correlation(models0: Mapping, models1: Mapping, config: Mapping | None) -> dict:
    """ρ of the residual between two years: ``uncertainty.residual.year_correlation`` when a number,
    else (``auto``) :func:`year_correlation` of the remeasured plots in both years' models.json, with
    the plots' measurement error (each plot's variance in the records, its year correlation from the
    first year's ``residual_field.measurement``) taken off."""
    setting = settings(config)["residual"]["year_correlation"]
    if setting != "auto":
        return {"rho": float(setting), "n": 0, "method": "configured (uncertainty.residual.year_correlation)"}
    f0 = models0.get("residual_field") or {}
    p0 = f0.get("plots") or []
    p1 = (models1.get("residual_field") or {}).get("plots") or []
    rho_m = float((f0.get("measurement") or {}).get("year_correlation", 0.0) or 0.0)
    return year_correlation(p0, p1, measurement_year_correlation=rho_m)


def paired_residual_field(models0: Mapping, models1: Mapping, config: Mapping | None) -> ResidualField | None:
    """One residual model for both years of a sink: the variogram fitted to the plots of both years
    (pairs within a year only), its nugget net of the plots' mean measurement variance.

    The residual field of a place is one field; each year's own fit of it varies by sampling alone
    (the split between nugget and partial sill especially), and drawing the two years with different
    amplitudes would put the difference of the amplitudes into every sink even where the residual
    persists (ρ = 1). None when neither year has a residual model."""
    f0, f1 = models0.get("residual_field"), models1.get("residual_field")
    if not (f0 or f1):
        return None
    r = settings(config)["residual"]
    records, groups = [], []
    for k, fld in enumerate((f0, f1)):
        for rec in (fld or {}).get("plots") or []:
            records.append({"plot_id": rec[0], "type": rec[1], "x_m": rec[2], "y_m": rec[3], "rel": rec[4],
                            "meas_var": rec[5] if len(rec) > 5 else 0.0})
            groups.append(k)
    meas = dict((f0 or f1).get("measurement") or {})
    meas.pop("var", None)
    out = residual_field(records, n_bins=int(r["n_bins"]), max_lag_m=r["max_lag_m"], min_pairs=int(r["min_pairs"]),
                         groups=groups, measurement=meas)
    out.method = "both years' plots (pairs within a year): " + out.method
    out.plots = []
    return out


# ----------------------------------------------------------------------------- closed-form pixel noise

TRIANGULAR_HALF_WIDTH = math.sqrt(6.0)  # the unit-variance triangular numbers of _unit_triangular lie in ±√6


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
