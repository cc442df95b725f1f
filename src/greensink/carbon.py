"""Carbon: fitted per-type models applied to every pixel, with bootstrap uncertainty.

The carbon density of a pixel (t C per ha of pixel) is the sum over green-space types of the
type's coverage fraction times the type's model at the pixel's predictors (NDVI, or the type's
chosen set of NDVI, FVC, canopy fraction and canopy height), floored at 0:

    density = Σ_t frac_t × max(f_t(predictors), 0)

Where a type's chosen predictors are not all known at a pixel (e.g. canopy height outside the
canopy height model) its NDVI-only companion model ("ndvi_only" in models.json) is used instead.
Pixels with no typed green space hold 0 (measured: no green-space carbon), pixels with typed
green space but no clear observation (or no usable model) hold NaN. The same formula evaluated with each bootstrap
draw of the models gives draws of the density; the per-pixel band is the draws' 5th / 95th
percentile (for a 90 % interval), and zone intervals come from the same draws summed over
the zone (see :func:`greensink.aggregate.zone_draw_sums`), not from adding pixel bands.

Pixels are processed in chunks of the typed pixels only, so memory is chunk × draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from greensink.errors import ModelError
from greensink.model import model_predictors, param_names, predict

log = logging.getLogger(__name__)

CO2_PER_C = 44.0 / 12.0  # t CO2e per t C (molar masses)
CHUNK_PIXELS = 32_768

PixelFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Predictors = Mapping[str, np.ndarray] | np.ndarray


def typed_pixels(fractions: np.ndarray) -> np.ndarray:
    """Flat indices of pixels with any green-space type (ascending)."""
    return np.flatnonzero(fractions.reshape(fractions.shape[0], -1).sum(axis=0) > 0)


def _layers(predictors: Predictors) -> dict[str, np.ndarray]:
    """Flat float64 views of the predictor rasters by name; a bare array is NDVI."""
    if isinstance(predictors, np.ndarray):
        predictors = {"ndvi": predictors}
    return {k: np.asarray(v).reshape(-1).astype(np.float64, copy=False) for k, v in predictors.items()}


def _variants(type_model: dict) -> list[tuple[tuple[str, ...], str, np.ndarray, np.ndarray]]:
    """(predictors, form, params, draws) of a type model and then its NDVI-only companion, if any."""
    out = []
    for m in (type_model, type_model.get("ndvi_only")):
        if m:
            preds = model_predictors(m)
            out.append((preds, m["form"], _params(m), np.asarray(m["bootstrap"], dtype=np.float64)))
    return out


def _need(layers: dict[str, np.ndarray], preds: tuple[str, ...]) -> list[np.ndarray]:
    missing = [q for q in preds if q not in layers]
    if missing:
        raise ModelError(
            f"predictor raster(s) {missing} are needed by a fitted model. Got only {sorted(layers)} instead. "
            "Pass every raster of model.predictors (results/{year}/<name>.tif)."
        )
    return [layers[q] for q in preds]


def _stack(arrays: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    return arrays[0][idx] if len(arrays) == 1 else np.stack([a[idx] for a in arrays])


def _usable(x: np.ndarray, n_preds: int) -> np.ndarray:
    return np.isfinite(x) if n_preds == 1 else np.all(np.isfinite(x), axis=0)


Variant = tuple[tuple[str, ...], str, np.ndarray, np.ndarray]


def _served(variants: list[Variant], layers: dict[str, np.ndarray], idx: np.ndarray,
            todo: np.ndarray) -> Iterator[tuple[int, Variant, np.ndarray, np.ndarray]]:
    """The per-pixel model choice: for each variant in order (the model, then its NDVI-only
    companion), (position, variant, mask of the ``todo`` pixels it serves, their predictor values).
    A pixel is served by the first variant whose predictors are all finite there; served pixels are
    cleared from ``todo`` (in place), so what is left in it afterwards has no usable model."""
    for i, variant in enumerate(variants):
        if not todo.any():
            return
        preds = variant[0]
        x = _stack(_need(layers, preds), idx)
        use = todo & _usable(x, len(preds))
        todo &= ~use
        yield i, variant, use, x[..., use]


def pixel_function(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> PixelFn:
    """A function of flat pixel indices -> (estimate (n,), draws (B, n)) in t C/ha of pixel.

    ``predictors`` maps predictor names to rasters on the grid ("ndvi" always; the others the
    models use, see :func:`greensink.model.used_predictors`); a bare array is taken as NDVI. For each
    type the first of its model and its NDVI-only companion whose predictors are all finite at the
    pixel is used; a pixel with NaN NDVI, or with a type that has no usable model, is NaN."""
    frac = fractions.reshape(len(types), -1)
    layers = _layers(predictors)
    ndvi = layers.get("ndvi")
    specs = [_variants(models["types"][t]) for t in types]
    for variants in specs:  # fail at once, not at the first chunk
        for preds, *_ in variants:
            _need(layers, preds)
    n_draws = specs[0][0][3].shape[0]

    def evaluate(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        est = np.zeros(idx.size)
        draws = np.zeros((n_draws, idx.size))
        missing = ~np.isfinite(ndvi[idx]) if ndvi is not None else np.zeros(idx.size, dtype=bool)
        for k, variants in enumerate(specs):
            f = frac[k, idx].astype(np.float64)
            todo = f > 0
            for _, (preds, form, params, boot), use, xu in _served(variants, layers, idx, todo):
                if use.any():
                    est[use] += f[use] * np.maximum(predict(form, params, xu, preds), 0.0)
                    draws[:, use] += f[use] * np.maximum(predict(form, boot, xu, preds), 0.0)
            missing |= todo
        est[missing] = np.nan
        draws[:, missing] = np.nan
        return est, draws

    return evaluate


def _params(type_model: dict) -> np.ndarray:
    """A type model's parameters in the order :func:`greensink.model.param_names` gives for its form and predictors."""
    names = param_names(type_model["form"], model_predictors(type_model))
    return np.array([type_model["params"][k] for k in names], dtype=np.float64)


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


def model_use_stats(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> dict:
    """Per type: typed pixels; shares (%) of the observed typed pixels outside the plots' range of
    the model's predictors, floored at 0, and (for a model with an NDVI-only companion) served by
    the companion because a chosen predictor had no value."""
    frac = fractions.reshape(len(types), -1)
    layers = _layers(predictors)
    ndvi = layers["ndvi"]
    stats = {}
    for k, t in enumerate(types):
        m = models["types"][t]
        idx = np.flatnonzero((frac[k] > 0) & np.isfinite(ndvi))
        if idx.size == 0:
            stats[t] = {"pixels": 0}
            continue
        ranges = [m.get("predictor_ranges") or ({"ndvi": m["x_range"]} if m.get("x_range") else {}),
                  (m.get("ndvi_only") or {}).get("predictor_ranges") or {}]
        todo = np.ones(idx.size, dtype=bool)
        outside = np.zeros(idx.size, dtype=bool)
        floored = np.zeros(idx.size, dtype=bool)
        variants = _variants(m)
        served = [0] * len(variants)
        for i, (preds, form, params, _boot), use, xu in _served(variants, layers, idx, todo):
            floored[use] = predict(form, params, xu, preds) < 0
            for j, q in enumerate(preds):
                if q in ranges[i]:
                    v = xu if len(preds) == 1 else xu[j]
                    outside[use] |= (v < ranges[i][q][0]) | (v > ranges[i][q][1])
            served[i] = int(use.sum())
        row = {
            "pixels": int((frac[k] > 0).sum()),
            "outside_plot_predictor_range_pct": float(100.0 * outside.mean()),
            "floored_at_zero_pct": float(100.0 * floored.mean()),
        }
        if len(served) > 1:
            row["ndvi_only_pct"] = float(100.0 * served[1] / idx.size)
        if todo.any():
            row["no_usable_model_pct"] = float(100.0 * todo.mean())
        stats[t] = row
    return stats


def type_density(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> np.ndarray:
    """(n_types, rows, cols) float32: carbon density each type contributes to each pixel, t C/ha of pixel
    (frac_t × max(f_t(predictors), 0), with the same choice of model per pixel as :func:`pixel_function`);
    their sum is the estimate band of :func:`density_map`. 0 where the type is absent, NaN where it is
    present but NDVI is NaN or no model of the type is usable."""
    layers = _layers(predictors)
    ndvi = layers["ndvi"]
    out = np.zeros(fractions.shape, dtype=np.float32)
    flat = out.reshape(len(types), -1)
    frac = fractions.reshape(len(types), -1)
    for k, t in enumerate(types):
        variants = _variants(models["types"][t])
        for idx in iter_chunks(np.flatnonzero(frac[k] > 0)):
            f = frac[k, idx].astype(np.float64)
            todo = np.isfinite(ndvi[idx])
            for _, (preds, form, params, _boot), use, xu in _served(variants, layers, idx, todo):
                if use.any():
                    flat[k, idx[use]] = f[use] * np.maximum(predict(form, params, xu, preds), 0.0)
            flat[k, idx[~np.isfinite(ndvi[idx]) | todo]] = np.nan
    return out
