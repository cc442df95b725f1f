"""Carbon: fitted per-type models applied to every pixel, with bootstrap uncertainty.

The carbon density of a pixel (t C per ha of pixel) is the sum over green-space types of the
type's coverage fraction times the type's model at the pixel's NDVI, floored at 0:

    density = Σ_t frac_t × max(f_t(NDVI), 0)

Pixels with no typed green space hold 0 (measured: no green-space carbon), pixels with typed
green space but no clear observation hold NaN. The same formula evaluated with each bootstrap
draw of the models gives draws of the density; the per-pixel band is the draws' 5th / 95th
percentile (for a 90 % interval), and zone intervals come from the same draws summed over
the zone (see :func:`greensink.aggregate.zone_draw_sums`), not from adding pixel bands.

Pixels are processed in chunks of the typed pixels only, so memory is chunk × draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from greensink.model import PARAM_NAMES, predict

log = logging.getLogger(__name__)

CO2_PER_C = 44.0 / 12.0  # t CO2e per t C (molar masses)
CHUNK_PIXELS = 32_768

PixelFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def typed_pixels(fractions: np.ndarray) -> np.ndarray:
    """Flat indices of pixels with any green-space type (ascending)."""
    return np.flatnonzero(fractions.reshape(fractions.shape[0], -1).sum(axis=0) > 0)


def pixel_function(models: dict, types: Sequence[str], fractions: np.ndarray, ndvi: np.ndarray) -> PixelFn:
    """A function of flat pixel indices -> (estimate (n,), draws (B, n)) in t C/ha of pixel."""
    frac = fractions.reshape(len(types), -1)
    x_all = ndvi.reshape(-1).astype(np.float64)
    specs = []
    for t in types:
        m = models["types"][t]
        params = _params(m)
        boot = np.asarray(m["bootstrap"], dtype=np.float64)
        specs.append((m["form"], params, boot))

    def evaluate(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x_all[idx]
        est = np.zeros(idx.size)
        draws = np.zeros((specs[0][2].shape[0], idx.size))
        for k, (form, params, boot) in enumerate(specs):
            f = frac[k, idx].astype(np.float64)
            use = f > 0
            if not use.any():
                continue
            est[use] += f[use] * np.maximum(predict(form, params, x[use]), 0.0)
            draws[:, use] += f[use] * np.maximum(predict(form, boot, x[use]), 0.0)
        missing = ~np.isfinite(x)
        est[missing] = np.nan
        draws[:, missing] = np.nan
        return est, draws

    return evaluate


def _params(type_model: dict) -> np.ndarray:
    """A type model's parameters in the order :data:`greensink.model.PARAM_NAMES` gives for its form."""
    return np.array([type_model["params"][k] for k in PARAM_NAMES[type_model["form"]]], dtype=np.float64)


def iter_chunks(idx: np.ndarray, chunk_pixels: int = CHUNK_PIXELS) -> Iterator[np.ndarray]:
    for start in range(0, idx.size, chunk_pixels):
        yield idx[start : start + chunk_pixels]


def interval_quantiles(interval_pct: float) -> tuple[float, float]:
    """Lower and upper quantiles (0–1) of a central interval: 90 -> (0.05, 0.95)."""
    tail = (100.0 - interval_pct) / 200.0
    return tail, 1.0 - tail


def density_map(fn: PixelFn, active: np.ndarray, shape: tuple[int, int], interval_pct: float = 90.0,
                fill: float = 0.0, chunk_pixels: int = CHUNK_PIXELS) -> np.ndarray:
    """(3, rows, cols) float32: estimate, lower, upper; ``fill`` outside the active pixels."""
    out = np.full((3, shape[0] * shape[1]), fill, dtype=np.float32)
    qlo, qhi = interval_quantiles(interval_pct)
    for idx in iter_chunks(active, chunk_pixels):
        est, draws = fn(idx)
        out[0, idx] = est
        ok = np.isfinite(est)
        lo = np.full(idx.size, np.nan)
        hi = np.full(idx.size, np.nan)
        if ok.any():
            lo[ok], hi[ok] = np.quantile(draws[:, ok], [qlo, qhi], axis=0)
        out[1, idx], out[2, idx] = lo, hi
    return out.reshape(3, *shape)


def model_use_stats(models: dict, types: Sequence[str], fractions: np.ndarray, ndvi: np.ndarray) -> dict:
    """Per type: typed area (pixel units), share of it outside the NDVI range of the plots, share floored at 0."""
    frac = fractions.reshape(len(types), -1)
    x = ndvi.reshape(-1)
    stats = {}
    for k, t in enumerate(types):
        m = models["types"][t]
        use = frac[k] > 0
        xs = x[use]
        xs = xs[np.isfinite(xs)]
        if xs.size == 0:
            stats[t] = {"pixels": 0}
            continue
        pred = predict(m["form"], _params(m), xs)
        lo, hi = m.get("x_range", [None, None])
        outside = np.zeros(xs.size, bool) if lo is None else (xs < lo) | (xs > hi)
        stats[t] = {
            "pixels": int(use.sum()),
            "outside_plot_ndvi_range_pct": float(100.0 * outside.mean()),
            "floored_at_zero_pct": float(100.0 * (pred < 0).mean()),
        }
    return stats


def type_density(models: dict, types: Sequence[str], fractions: np.ndarray, ndvi: np.ndarray) -> np.ndarray:
    """(n_types, rows, cols) float32: carbon density each type contributes to each pixel, t C/ha of pixel
    (frac_t × max(f_t(NDVI), 0)); their sum is the estimate band of :func:`density_map`."""
    out = np.zeros(fractions.shape, dtype=np.float32)
    x = ndvi.astype(np.float64)
    for k, t in enumerate(types):
        m = models["types"][t]
        use = fractions[k] > 0
        out[k][use] = fractions[k][use] * np.maximum(predict(m["form"], _params(m), x[use]), 0.0)
        out[k][use & ~np.isfinite(x)] = np.nan
    return out
