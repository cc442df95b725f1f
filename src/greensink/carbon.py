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

The carbon stage streams (:func:`carbon_map_streamed`): the fractions and the predictor rasters
are read in row strips of ``strip_rows`` rows (by default about :data:`STRIP_PIXELS` pixels, a
multiple of 512 rows where the width allows), each strip is evaluated and written straight into
``carbon.tif`` through :func:`greensink.io.raster_writer` (staged under a temporary name and
renamed when complete), and what ``carbon.json`` needs is accumulated as exact counts and sums over
the strips. Within a strip the typed pixels are evaluated in chunks of :data:`CHUNK_PIXELS`, so
memory is a few copies of one strip (fractions, predictors, the three output bands) plus
chunk × draws, whatever the size of the grid. Every pixel's value depends only on that pixel, so
the streamed map is the same, bit for bit, as :func:`density_map` over the whole grid, and the
statistics are those of :func:`model_use_stats` over the whole grid.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from greensink import io as gio
from greensink import logs
from greensink.errors import InputDataError, ModelError
from greensink.model import X_MIN_LOG, TypeModel, predict, type_record, used_predictors
from greensink.uncertainty import SOURCES, Noise, NoiseSpec, noise_spec, settings
from greensink.units import CO2_PER_C as CO2_PER_C  # re-exported: aggregate, change and trend still import it from here

log = logging.getLogger(__name__)

CHUNK_PIXELS = 32_768
STRIP_PIXELS = 1 << 22  # about 4 Mpx per streamed row strip (see strip_rows_for)

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


def _variants(type_model: TypeModel) -> list[tuple[tuple[str, ...], str, np.ndarray, np.ndarray]]:
    """(predictors, form, params, draws) of a type model and then its NDVI-only companion, if any."""
    return [(m.predictors, m.form, m.param_vector(), m.bootstrap)
            for m in (type_model, type_model.ndvi_only) if m is not None]


def _records(models: Mapping, types: Sequence[str]) -> list[TypeModel]:
    """The :class:`~greensink.model.TypeModel` of each of ``types`` in a models.json dict."""
    return [type_record(models, t) for t in types]


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


def needs_imagery(type_model: Mapping | TypeModel) -> bool:
    """Whether a type's carbon needs a clear observation: False only for a constant density
    (a coefficient-table or default-table value per ha of the type's land) without an NDVI gate
    (``ndvi_min``, the vegetation threshold of the one-type run without green-space types)."""
    tm = TypeModel.from_json(type_model)
    return tm.form != "constant" or tm.ndvi_min is not None


def _observed(layers: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    ndvi = layers.get("ndvi")
    return np.isfinite(ndvi[idx]) if ndvi is not None else np.ones(idx.size, dtype=bool)


def _served(variants: list[Variant], layers: dict[str, np.ndarray], idx: np.ndarray,
            todo: np.ndarray, observed: np.ndarray | None = None,
            gated: bool = False) -> Iterator[tuple[int, Variant, np.ndarray, np.ndarray]]:
    """The per-pixel model choice: for each variant in order (the model, then its NDVI-only
    companion), (position, variant, mask of the ``todo`` pixels it serves, their predictor values).
    A pixel is served by the first variant whose predictors are all finite there and, unless the
    variant is an ungated constant (which needs no imagery), where ``observed`` (finite NDVI);
    served pixels are cleared from ``todo`` (in place), so what is left in it afterwards has no
    usable model (no observation, or no predictor value)."""
    for i, variant in enumerate(variants):
        if not todo.any():
            return
        preds, form = variant[0], variant[1]
        x = _stack(_need(layers, preds), idx)
        if form == "constant" and not gated:  # a density of the land: every typed pixel, seen or not
            use = todo.copy()
            x = np.zeros_like(x)
        else:
            use = todo & _usable(x, len(preds))
            if observed is not None:
                use &= observed
        todo &= ~use
        yield i, variant, use, x[..., use]


def _gate(type_model: TypeModel, ndvi: np.ndarray | None, idx: np.ndarray) -> np.ndarray | float:
    """1 where the type's NDVI gate passes (NDVI >= ndvi_min), else 0; 1.0 for a type without a gate."""
    gate = type_model.ndvi_min
    if gate is None or ndvi is None:
        return 1.0
    with np.errstate(invalid="ignore"):
        return (ndvi[idx] >= float(gate)).astype(np.float64)


Fill = Mapping[str, tuple[float, np.ndarray]]


def pixel_function(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors,
                   fill: Fill | None = None, noise: Noise | None = None, row0: int = 0,
                   sources: bool = False, closed_form: bool = False) -> PixelFn:
    """A function of flat pixel indices -> (estimate (n,), draws (B, n)) in t C/ha of pixel.

    ``predictors`` maps predictor names to rasters on the grid ("ndvi" always; the others the
    models use, see :func:`greensink.model.used_predictors`; "ndvi_se" for the NDVI error source);
    a bare array is taken as NDVI. For each type the first of its model and its NDVI-only companion
    whose predictors are all finite at the pixel (and, for a model that needs imagery, where NDVI is
    finite) is used. A constant-density type (:func:`needs_imagery` False) needs no observation:
    frac × c everywhere it is typed.

    A type present at a pixel with no usable model (no clear observation) makes the pixel NaN, unless
    ``fill`` gives the type a fill density: {type: (estimate, draws (B,))} in t C per ha of the type's
    land (:func:`type_fill`), then that land counts frac × fill (the zone tables' rule; the carbon map
    keeps NaN there).

    ``noise`` (:class:`greensink.uncertainty.Noise`) adds the residual, NDVI and edge errors to the
    draws (``row0``: the first grid row of ``fractions``, which spans whole grid rows), and switches
    the curve and table draws off where its spec says so; the draws are then floored at 0 per pixel.
    The estimate never changes. With ``sources`` the function returns a third item, {source: (B, n)}
    of the per-source contributions (:data:`greensink.uncertainty.SOURCES`) whose sum is the draws
    before the floor.

    With ``closed_form`` the noise is not drawn: the function returns (estimate, curve and table draws (B, n),
    α (n,), σ (n,)), the standard deviations of the correlated residual field and of the per-pixel
    independent errors whose sum with the draws (floored at 0) the noisy draws are
    (:func:`mixture_quantiles` takes their percentiles in closed form; α = σ = 0 without noise)."""
    frac = fractions.reshape(len(types), -1)
    width = fractions.shape[-1]
    layers = _layers(predictors)
    ndvi = layers.get("ndvi")
    ndvi_se = layers.get("ndvi_se")
    type_models = _records(models, types)
    specs = [_variants(m) for m in type_models]
    for variants in specs:  # fail at once, not at the first chunk
        for preds, *_ in variants:
            _need(layers, preds)
    n_draws = specs[0][0][3].shape[0]
    fills = [(fill or {}).get(t) for t in types]
    spec = noise.spec if noise is not None else None
    if spec is not None and spec.ndvi and ndvi_se is None:
        raise ModelError("the NDVI error source needs the 'ndvi_se' raster (results/{year}/ndvi_se.tif). "
                         "Got none. Pass it, or set uncertainty.ndvi.enabled: false.")
    from_plots = [tm.source == "plots" for tm in type_models]

    def evaluate(idx: np.ndarray):
        est = np.zeros(idx.size)
        missing = np.zeros(idx.size, dtype=bool)
        observed = _observed(layers, idx)
        if noise is None and not sources and not closed_form:
            draws = np.zeros((n_draws, idx.size))
            parts = None
        else:
            parts = {k: np.zeros((n_draws, idx.size)) for k in ("curve", "table")}
            dens = np.zeros((len(types), idx.size))
            plot_est = np.zeros(idx.size)  # density of the types fitted to plots (the residual's scale)
            slope = np.zeros(idx.size)  # d density / d NDVI
        for k, (variants, tm) in enumerate(zip(specs, type_models, strict=True)):
            f = frac[k, idx].astype(np.float64)
            todo = f > 0
            gate = _gate(tm, ndvi, idx)
            gated = tm.ndvi_min is not None
            source = "curve" if from_plots[k] else "table"
            on = spec is None or (spec.curve if from_plots[k] else spec.table)
            for _, (preds, form, params, boot), use, xu in _served(variants, layers, idx, todo, observed, gated):
                if use.any():
                    g = gate if np.isscalar(gate) else gate[use]
                    v = g * np.maximum(predict(form, params, xu, preds), 0.0)
                    est[use] += f[use] * v
                    vb = g * np.maximum(predict(form, boot, xu, preds), 0.0) if on else np.broadcast_to(v, (n_draws, v.size))
                    if parts is None:
                        draws[:, use] += f[use] * vb
                        continue
                    dens[k, use] = v
                    parts[source][:, use] += f[use] * vb
                    if from_plots[k]:
                        plot_est[use] += f[use] * v
                    if spec is not None and spec.ndvi and "ndvi" in preds and form != "constant":
                        slope[use] += f[use] * _ndvi_slope(form, params, xu, preds, g)
            if fills[k] is not None and todo.any():
                fe, fd = fills[k]
                est[todo] += f[todo] * fe
                fdraws = np.outer(np.asarray(fd, dtype=np.float64), f[todo])
                if parts is None:
                    draws[:, todo] += fdraws
                else:
                    parts[source][:, todo] += fdraws if on else f[todo] * fe
                    dens[k, todo] = fe
            else:
                missing |= todo
        if parts is not None:
            draws = parts["curve"] + parts["table"]
            if closed_form:
                alpha, sigma = np.zeros(idx.size), np.zeros(idx.size)
                if noise is not None and noise.active:
                    edge_amp = (np.abs(_edge_term(frac[:, idx].astype(np.float64), dens, noise.edge_sd_frac()))
                                if spec.position_sd_m > 0 else 0.0)
                    ndvi_amp = np.abs(slope) * np.nan_to_num(ndvi_se[idx]) if spec.ndvi else 0.0
                    alpha = noise.sd_field * plot_est
                    sigma = np.sqrt((noise.sd_nugget * plot_est) ** 2 + ndvi_amp**2 + edge_amp**2)
                est[missing] = np.nan
                draws[:, missing] = np.nan
                return est, draws, alpha, sigma
            if noise is not None and noise.active:
                gidx = idx.astype(np.int64) + int(row0) * width
                fld = noise.field(gidx)
                field_part = plot_est * fld if fld is not None else np.zeros_like(draws)
                edge_amp = (np.abs(_edge_term(frac[:, idx].astype(np.float64), dens, noise.edge_sd_frac()))
                            if spec.position_sd_m > 0 else np.zeros(idx.size))
                ndvi_amp = np.abs(slope) * np.nan_to_num(ndvi_se[idx]) if spec.ndvi else np.zeros(idx.size)
                total, pix = noise.pixel_terms(gidx, plot_est, ndvi_amp, edge_amp, parts=sources)
                draws = np.maximum(draws + field_part + total, 0.0)
                if sources:
                    parts.update(residual=field_part + pix["residual"], ndvi=pix["ndvi"], edges=pix["edges"])
            else:
                parts.update({k: np.zeros_like(draws) for k in SOURCES[2:]})
        est[missing] = np.nan
        draws[:, missing] = np.nan
        if sources:
            for arr in parts.values():
                arr[:, missing] = np.nan
            return est, draws, parts
        return est, draws

    return evaluate


NDVI_STEP = 0.005  # NDVI step of the central difference giving a curve's slope (the ensemble's table step)


def _ndvi_slope(form: str, params: np.ndarray, xu: np.ndarray, preds: tuple[str, ...], gate) -> np.ndarray:
    """d/dNDVI of gate × max(f(predictors), 0) at the pixels, by a central difference of ±NDVI_STEP."""
    j = preds.index("ndvi")
    lo, hi = np.array(xu, dtype=np.float64, copy=True), np.array(xu, dtype=np.float64, copy=True)
    if len(preds) == 1:
        lo -= NDVI_STEP
        hi += NDVI_STEP
    else:
        lo[j] -= NDVI_STEP
        hi[j] += NDVI_STEP
    up = np.maximum(predict(form, params, hi, preds), 0.0)
    down = np.maximum(predict(form, params, lo, preds), 0.0)
    return gate * np.nan_to_num((up - down) / (2 * NDVI_STEP))


def _edge_term(frac: np.ndarray, dens: np.ndarray, sd_frac: float) -> np.ndarray:
    """(n,) change of a pixel's density per unit N(0, 1) edge shift (t C/ha of pixel): where the pixel
    is cut by a green-space edge (typed fraction 0 < F < 1) its typed fraction moves by sd_frac, its
    types in proportion (sd_frac × density / F); where it is wholly typed but split between types,
    sd_frac moves from its second-largest type to its largest (sd_frac × (d_first − d_second))."""
    eps = 1e-6
    big = np.nan_to_num(frac)
    total = big.sum(axis=0)
    d = np.nan_to_num(dens)
    pix = (big * d).sum(axis=0)
    out = np.zeros(total.size)
    green_edge = (total > eps) & (total < 1 - eps)
    out[green_edge] = sd_frac * pix[green_edge] / total[green_edge]
    if frac.shape[0] > 1:
        order = np.argsort(-big, axis=0)
        first, second = order[0], order[1]
        cols = np.arange(total.size)
        split = ~green_edge & (big[second, cols] > eps)
        out[split] = sd_frac * (d[first, cols] - d[second, cols])[split]
    return out


def unserved_function(models: Mapping, types: Sequence[str], fractions: np.ndarray,
                      predictors) -> Callable[[np.ndarray], np.ndarray]:
    """A function of flat pixel indices -> bool (n,): True where a type present at the pixel has no usable
    model (no clear observation, or no predictor value), i.e. where :func:`greensink.carbon.pixel_function`
    without ``fill`` (the carbon map) gives NaN. It makes the same per-type model choice as
    :func:`~greensink.carbon.pixel_function` (the model, then its NDVI-only companion; an ungated constant
    needs no observation) without evaluating any curve or draw."""
    frac = fractions.reshape(len(types), -1)
    layers = _layers(predictors)
    type_models = _records(models, types)
    specs = [_variants(m) for m in type_models]

    def unserved(idx: np.ndarray) -> np.ndarray:
        out = np.zeros(idx.size, dtype=bool)
        observed = _observed(layers, idx)
        for k, (variants, tm) in enumerate(zip(specs, type_models, strict=True)):
            todo = frac[k, idx].astype(np.float64) > 0
            for _ in _served(variants, layers, idx, todo, observed, tm.ndvi_min is not None):
                pass  # clears the served pixels from todo
            out |= todo
        return out

    return unserved


def type_fill(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors,
              seed: int = 0) -> dict[str, dict]:
    """The fill rule of unobserved typed land, per type needing imagery (:func:`needs_imagery`).

    Over the observed pixels of the type in this year (those its model serves), weighted by the
    type's fraction: the mean density per ha of the type's land (``fill_t_ha``), the same mean under
    every bootstrap draw of the model, and the between-pixel standard deviation ``spread_t_ha``.
    The fill draws are mean_b + spread × z_b (z_b ~ N(0, 1) from ``default_rng([seed, crc32(type),
    7])``, one z per draw for all the type's unobserved land, so the spread is fully correlated
    within and between zones: conservative), floored at 0. A type with no observed pixel has
    ``fill_t_ha`` None (its unobserved land stays unknown). Returns {type: {"fill_t_ha",
    "spread_t_ha", "observed_ha_px" (pixel-fraction units), "draws"}} for the types needing imagery."""
    import zlib

    frac = fractions.reshape(len(types), -1)
    layers = _layers(predictors)
    ndvi = layers.get("ndvi")
    out: dict[str, dict] = {}
    for k, (t, tm) in enumerate(zip(types, _records(models, types), strict=True)):
        if not needs_imagery(tm):
            continue
        variants = _variants(tm)
        n_draws = variants[0][3].shape[0]
        w_sum, v_sum, v2_sum = 0.0, 0.0, 0.0
        d_sum = np.zeros(n_draws)
        for idx in iter_chunks(np.flatnonzero(frac[k] > 0)):
            f = frac[k, idx].astype(np.float64)
            todo = np.ones(idx.size, dtype=bool)
            gate = _gate(tm, ndvi, idx)
            for _, (preds, form, params, boot), use, xu in _served(variants, layers, idx, todo, _observed(layers, idx),
                                                                   tm.ndvi_min is not None):
                if use.any():
                    g = gate if np.isscalar(gate) else gate[use]
                    v = g * np.maximum(predict(form, params, xu, preds), 0.0)
                    w = f[use]
                    w_sum += float(w.sum())
                    v_sum += float((w * v).sum())
                    v2_sum += float((w * v * v).sum())
                    d_sum += (g * np.maximum(predict(form, boot, xu, preds), 0.0)) @ w
        if w_sum <= 0:
            out[t] = {"fill_t_ha": None, "spread_t_ha": None, "observed_ha_px": 0.0, "draws": None}
            continue
        mean = v_sum / w_sum
        spread = math.sqrt(max(v2_sum / w_sum - mean * mean, 0.0))
        z = np.random.default_rng([int(seed), zlib.crc32(t.encode("utf-8")), 7]).standard_normal(n_draws)
        draws = np.maximum(d_sum / w_sum + spread * z, 0.0)
        out[t] = {"fill_t_ha": mean, "spread_t_ha": spread, "observed_ha_px": w_sum, "draws": draws}
    return out


def fill_values(fill: Mapping[str, Mapping]) -> dict[str, tuple[float, np.ndarray]]:
    """The :func:`pixel_function` ``fill`` argument from :func:`type_fill` (types with a fill only)."""
    return {t: (v["fill_t_ha"], np.asarray(v["draws"])) for t, v in fill.items() if v["fill_t_ha"] is not None}


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


# ----------------------------------------------------------------------------- tabulated per-pixel interval

INTERVAL_METHODS = ("tabulated", "exact")
"""How carbon.tif's bands 2–3 are computed (``uncertainty.pixel_interval``): ``tabulated`` (closed-form noise,
the curve draws' percentiles looked up in a per-type table) or ``exact`` (every draw at every pixel, sorted)."""
TABLE_AXES: dict[str, tuple[float, float, float]] = {
    "ndvi": (-1.0, 1.0, 0.005), "fvc": (0.0, 1.0, 0.005), "canopy": (0.0, 1.0, 0.005), "height": (0.0, 100.0, 0.25)}
"""Predictor values (first, last, step) at which a one-predictor curve's interval is tabulated; a pixel whose
value lies outside is evaluated draw by draw (:func:`mixture_quantiles`)."""
TABLE_T_NODES = 17  # nodes of t = σ/(σ + κ) in 0..1 (σ the pixel's independent noise sd, κ the draws' own spread)
TABLE_LOG_STEP = 0.01  # step of ln x for the logarithmic and power forms
TABLE_X_STRIDE = 8  # R (the noise's shape) is tabulated at every 8th predictor node: it varies slowly with x
SOLVER_MAX_ITER = 60
SOLVER_ROWS = 2048  # rows per solver pass (memory: a few (rows, B) float64 arrays)
SOLVER_RTOL = 1e-5  # a row stops when its Newton step is below this share of its scale; the step is still taken,
# so its error is of the order of the step squared (bands moved by < 1e-5 of their width against 1e-7 here)


def mixture_quantiles(values: np.ndarray, alpha: np.ndarray, sigma: np.ndarray,
                      probs: Sequence[float], start: np.ndarray | None = None) -> np.ndarray:
    """(len(probs), n) quantiles of V + α·F + σ·Z per row: V uniform over the row's B ``values`` (n, B) (the
    curve and table draws of a pixel), F and Z the pixel's noise numbers
    (:func:`greensink.uncertainty.pixel_noise_cdf`), i.e. of the noisy draws' distribution, not of one set of
    B noise numbers. Rows with α = σ = 0 give ``np.quantile`` of their values (linear interpolation, as
    :func:`density_map`). Otherwise the root of mean_b G(q − v_b) = p by Newton steps kept inside a bracket
    (bisection where a step leaves it), each row iterated until its step is below :data:`SOLVER_RTOL` of its scale, so a
    row's result does not depend on the other rows. ``start`` (len(probs), n): first guesses (else the
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
                cdf_mean[fused], dens[fused], slope[fused] = _mixed_cdf_means(qa[fused], vr, act[fused], a, s)
            nrm, tri = normal[act], tent[act]
            if nrm.any():
                cdf_mean[nrm], dens[nrm], slope[nrm] = _mixed_cdf_means(qa[nrm], vr, act[nrm], a, s, regime="normal")
            if tri.any():
                cdf_mean[tri], dens[tri], slope[tri] = _mixed_cdf_means(qa[tri], vr, act[tri], a, s,
                                                                        regime="triangular")
            rest = ~fused & ~nrm & ~tri
            if rest.any():  # no slope here: Newton steps
                other = act[rest]
                cdf, pdf = pixel_noise_cdf(qa[rest, None] - vr[other], a[other, None], s[other, None])
                cdf_mean[rest], dens[rest] = cdf.mean(axis=1), pdf.mean(axis=1)
            resid = cdf_mean - p
            lo[act] = np.where(resid < 0, qa, lo[act])
            hi[act] = np.where(resid >= 0, qa, hi[act])
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = resid / dens
                # Halley: the Newton step divided by 1 − f·f''/(2f'²), where that factor is within 0.5..2
                factor = 1.0 - newton * slope / (2.0 * dens)
                step = qa - np.where((factor >= 0.5) & (factor <= 2.0), newton / factor, newton)
            inside = (dens > 0) & (step > lo[act]) & (step < hi[act])
            new = np.where(inside, step, 0.5 * (lo[act] + hi[act]))
            q[act] = new
            done = (np.abs(new - qa) <= SOLVER_RTOL * scale[act]) | (hi[act] - lo[act] <= SOLVER_RTOL * scale[act])
            act = act[~done]
            if act.size == 0:
                break
        out[j, rows] = q
    return out


SOLVER_BLOCK = 16_384  # elements per block of the fused noise CDF (a few such float64 buffers stay in cache)


def _mixed_cdf_means(q: np.ndarray, values: np.ndarray, rows: np.ndarray, alpha: np.ndarray,
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
            cdf[r0:r1] = g2.mean(axis=1)
            pdf[r0:r1] = g1.mean(axis=1)
            dpdf[r0:r1] = g0.mean(axis=1)
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
            cdf[r0:r1] = g2.mean(axis=1)
            pdf[r0:r1] = g1.mean(axis=1)
            dpdf[r0:r1] = g0.mean(axis=1)
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
        cdf[r0:r1] = g2.mean(axis=1)
        pdf[r0:r1] = g1.mean(axis=1)
        dpdf[r0:r1] = g0.mean(axis=1)
    return cdf, pdf, dpdf


class IntervalTable:
    """The per-pixel interval of pixels of one green-space type, by table (``uncertainty.pixel_interval:
    tabulated``, docs/method.md).

    A pixel of one type with fraction f, gate g (0/1), one-predictor curve draws v_b(x) (floored at 0) and
    noise has draws max(0, f·(v_b(x) + α(x)·F + σ·Z)) with α(x) = sd_field·v(x) (the correlated residual
    field, types fitted to plots) and σ² = (sd_nugget·v(x))² + (v′(x)·se)² + (sd_edge·v(x)/f)² (nugget,
    NDVI error, edge shift; each only where on). Its percentiles are f·Q(x, σ), floored at 0, times g.
    Per (type, model variant) the table holds the draws' mean m and κ = √(variance + α²) at nodes u_i of
    :data:`TABLE_AXES` (u = x, or ln x for the logarithmic and power forms), and R = (Q − m)/(σ + κ) at
    every ``TABLE_X_STRIDE``-th node (every node without noise) and t_j = σ/(σ + κ) of ``TABLE_T_NODES``
    nodes in 0..1, so a pixel is m(u) + (σ + κ(u))·R(u, t), each interpolated linearly; R is the
    triangular's quantile at t = 1. Nodes are computed when a pixel first needs them
    (:func:`mixture_quantiles`), each from its own u alone, so the result does not depend on strips."""

    def __init__(self, models: Mapping, types: Sequence[str], noise: Noise | None, interval_pct: float) -> None:
        if noise is not None and noise.spec.paired:
            raise ValueError("IntervalTable serves one year's carbon map; paired years draw their noise")
        from greensink.uncertainty import triangular_quantile

        self.type_models = _records(models, types)
        self.specs = [_variants(m) for m in self.type_models]
        self.probs = interval_quantiles(interval_pct)
        self.noise = noise if noise is not None and noise.active else None
        self.t = np.linspace(0.0, 1.0, TABLE_T_NODES) if self.noise is not None else np.zeros(1)
        self.stride = TABLE_X_STRIDE if self.noise is not None else 1
        self.z_tri = np.array([triangular_quantile(p) for p in self.probs])
        self._tables: dict[tuple[int, int], dict] = {}

    def on(self, k: int) -> bool:
        """Whether type k's draws vary (its curve or table source is on)."""
        spec = self.noise.spec if self.noise is not None else None
        plots = self.type_models[k].source == "plots"
        return spec is None or (spec.curve if plots else spec.table)

    def tabulable(self, k: int, i: int) -> bool:
        preds, form = self.specs[k][i][0], self.specs[k][i][1]
        return form == "constant" or (len(preds) == 1 and preds[0] in TABLE_AXES)

    def _table(self, k: int, i: int) -> dict:
        key = (k, i)
        if key not in self._tables:
            preds, form = self.specs[k][i][0], self.specs[k][i][1]
            logx = form in ("logarithmic", "power")
            if form == "constant":
                u0, u1, step = 0.0, 1.0, 1.0
            else:
                x0, x1, step = TABLE_AXES[preds[0]]
                u0, u1 = (math.log(X_MIN_LOG), math.log(x1)) if logx else (x0, x1)
                step = TABLE_LOG_STEP if logx else step
            n = int(math.floor((u1 - u0) / step + 1e-9)) + 1
            nr = (n - 1) // self.stride + 1
            self._tables[key] = {"u0": u0, "step": step, "n": n, "logx": logx, "done": np.zeros(n, dtype=bool),
                                 "m": np.zeros(n), "kappa": np.zeros(n), "rdone": np.zeros(nr, dtype=bool),
                                 "nr": nr, "r": np.zeros((nr, self.t.size, len(self.probs))),
                                 "zeros": np.zeros(nr, dtype=np.int64), "rf": None, "rfdone": np.zeros(n, dtype=bool)}
        return self._tables[key]

    def _draws(self, k: int, i: int, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(draws (nodes, B), α, m, κ) at fine nodes."""
        tab = self._table(k, i)
        preds, form, params, boot = self.specs[k][i]
        u = tab["u0"] + nodes * tab["step"]
        x = np.exp(u) if tab["logx"] else u
        est = np.maximum(predict(form, params, x, preds), 0.0)
        vals = (np.maximum(predict(form, boot, x, preds), 0.0).T if self.on(k)
                else np.repeat(est[:, None], boot.shape[0], axis=1))
        alpha = np.zeros(nodes.size)
        if self.noise is not None and self.type_models[k].source == "plots":
            alpha = self.noise.sd_field * est
        m = vals.mean(axis=1)
        kappa = np.sqrt(vals.var(axis=1) + alpha * alpha)
        tiny = 1e-12 * (1.0 + np.abs(m))
        return vals, alpha, m, np.where(kappa > tiny, kappa, tiny)

    def _fill(self, k: int, i: int, nodes: np.ndarray, rnodes: np.ndarray) -> None:
        """Compute the table's missing fine ``nodes`` (m, κ) and R nodes ``rnodes``."""
        tab = self._table(k, i)
        nodes = np.unique(nodes)
        nodes = nodes[~tab["done"][nodes]]
        if nodes.size:
            _, _, tab["m"][nodes], tab["kappa"][nodes] = self._draws(k, i, nodes)
            tab["done"][nodes] = True
        rnodes = np.unique(rnodes)
        rnodes = rnodes[~tab["rdone"][rnodes]]
        if rnodes.size == 0:
            return
        vals, alpha, m, kappa = self._draws(k, i, rnodes * self.stride)
        tab["r"][rnodes], tab["rdone"][rnodes] = self._r(vals, alpha, m, kappa), True
        tab["zeros"][rnodes] = (vals == 0).sum(axis=1)

    def _fine_r(self, k: int, i: int, nodes: np.ndarray) -> np.ndarray:
        """R at fine nodes (cells where draws reach the floor at 0 between two R nodes: R changes fast there)."""
        tab = self._table(k, i)
        if tab["rf"] is None:
            tab["rf"] = np.zeros((tab["n"], *tab["r"].shape[1:]))
        new = np.unique(nodes)
        new = new[~tab["rfdone"][new]]
        if new.size:
            tab["rf"][new], tab["rfdone"][new] = self._r(*self._draws(k, i, new)), True
        return tab["rf"][nodes]

    def _r(self, vals: np.ndarray, alpha: np.ndarray, m: np.ndarray, kappa: np.ndarray) -> np.ndarray:
        """R (nodes, t, P) from the nodes' draws: t = 0 (σ = 0), then every t strictly between 0 and 1 in one
        solver call (rows t-major; each row started from its Cornish-Fisher quantile)."""
        n, nt, n_p = m.size, self.t.size, len(self.probs)
        r = np.empty((n, nt, n_p))
        r0 = ((mixture_quantiles(vals, alpha, np.zeros(n), self.probs) - m) / kappa).T  # (nodes, P) at t = 0
        r[:, 0, :] = r0
        r[:, self.t >= 1.0, :] = self.z_tri
        mid = np.flatnonzero((self.t > 0.0) & (self.t < 1.0))
        if n == 0 or mid.size == 0:
            return r
        t = self.t[mid]
        sigma = (kappa[None, :] * (t / (1.0 - t))[:, None]).reshape(-1)  # (t, nodes) flattened
        scale = sigma + np.tile(kappa, mid.size)
        mm = np.tile(m, mid.size)
        q = mixture_quantiles(np.tile(vals, (mid.size, 1)), np.tile(alpha, mid.size), sigma, self.probs)
        r[:, mid, :] = ((q - mm) / scale).T.reshape(mid.size, n, n_p).transpose(1, 0, 2)
        return r

    def lookup(self, k: int, i: int, x: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(quantiles (P, n) of v_b(x) + α(x)F + σZ, mask of the pixels inside the table); NaN outside."""
        tab = self._table(k, i)
        x = np.asarray(x, dtype=np.float64)
        if self.specs[k][i][1] == "constant":
            x = np.zeros_like(x)
        elif tab["logx"]:
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.log(np.maximum(x, X_MIN_LOG))
        pos = (x - tab["u0"]) / tab["step"]
        n, nr, st = tab["n"], tab["nr"], self.stride
        top = (nr - 1) * st  # the last fine node with an R node
        inside = np.isfinite(pos) & (pos >= 0) & (pos <= top)
        out = np.full((len(self.probs), x.size), np.nan)
        if not inside.any():
            return out, inside
        pos = pos[inside]
        ix = np.minimum(np.floor(pos).astype(np.int64), max(n - 2, 0))
        ix1 = np.minimum(ix + 1, n - 1)
        wx = pos - ix
        rpos = pos / st
        jr = np.minimum(np.floor(rpos).astype(np.int64), max(nr - 2, 0))
        jr1 = np.minimum(jr + 1, nr - 1)
        wr = (rpos - jr)[:, None]
        self._fill(k, i, np.concatenate([ix, ix1]), np.concatenate([jr, jr1]))
        m = tab["m"][ix] * (1 - wx) + tab["m"][ix1] * wx
        kappa = tab["kappa"][ix] * (1 - wx) + tab["kappa"][ix1] * wx
        s = np.asarray(sigma, dtype=np.float64)[inside] if np.ndim(sigma) else np.full(pos.size, float(sigma))
        nt = self.t.size
        r = tab["r"]
        if nt == 1:
            rv = r[jr, 0] * (1 - wr) + r[jr1, 0] * wr
        else:
            tt = s / (s + kappa) * (nt - 1)
            jt = np.minimum(np.floor(tt).astype(np.int64), nt - 2)
            wt = (tt - jt)[:, None]
            # R (n, P) at the cell's two R nodes (a, b) and the pixel's two t nodes (0, 1), gathered directly
            a0, a1, b0, b1 = r[jr, jt], r[jr, jt + 1], r[jr1, jt], r[jr1, jt + 1]
            kink = tab["zeros"][jr] != tab["zeros"][jr1]
            if st > 1 and kink.any():  # some draws reach 0 inside the cell: the fine nodes instead
                kk = np.flatnonzero(kink)
                rk = np.arange(kk.size)
                fa, fb = self._fine_r(k, i, ix[kk]), self._fine_r(k, i, ix1[kk])
                a0[kk], a1[kk], b0[kk], b1[kk] = fa[rk, jt[kk]], fa[rk, jt[kk] + 1], fb[rk, jt[kk]], fb[rk, jt[kk] + 1]
                wr = np.where(kink[:, None], wx[:, None], wr)
            rv = (a0 * (1 - wr) + b0 * wr) * (1 - wt) + (a1 * (1 - wr) + b1 * wr) * wt
        out[:, inside] = (m[:, None] + (s + kappa)[:, None] * rv).T
        return out, inside


def tabulated_map(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors,
                  table: IntervalTable, noise: Noise | None = None, row0: int = 0,
                  chunk_pixels: int = CHUNK_PIXELS) -> np.ndarray:
    """(3, rows, cols) float32 like :func:`density_map` of :func:`pixel_function`, its bands 2–3 the
    percentiles of the draws' distribution in closed form (``uncertainty.pixel_interval: tabulated``):
    pixels of one type through ``table`` (:class:`IntervalTable`); pixels of several types, of a model with
    several predictors or with a predictor outside the table, from their curve and table draws and the
    noise's closed form (:func:`pixel_function` ``closed_form``, :func:`mixture_quantiles`). The estimate
    band is :func:`density_map`'s, bit for bit."""
    n_types = len(types)
    shape = fractions.shape[1:]
    frac = fractions.reshape(n_types, -1)
    layers = _layers(predictors)
    ndvi, ndvi_se = layers.get("ndvi"), layers.get("ndvi_se")
    spec = noise.spec if noise is not None and noise.active else None
    if spec is not None and spec.ndvi and ndvi_se is None:
        raise ModelError("the NDVI error source needs the 'ndvi_se' raster (results/{year}/ndvi_se.tif). "
                         "Got none. Pass it, or set uncertainty.ndvi.enabled: false.")
    out = np.zeros((3, frac.shape[1]), dtype=np.float32)  # float32 as written (rounding is monotone: the clamp below is the same)
    active = typed_pixels(fractions)
    n_of = (frac[:, active] > 0).sum(axis=0)
    slow = [active[n_of > 1]]
    single = active[n_of == 1]
    owner = np.argmax(frac[:, single] > 0, axis=0)
    sd_edge = noise.edge_sd_frac() if spec is not None and spec.position_sd_m > 0 else 0.0
    for k in range(n_types):
        tm = table.type_models[k]
        plots = tm.source == "plots"
        for idx in iter_chunks(single[owner == k], chunk_pixels):
            f = frac[k, idx].astype(np.float64)
            est = np.zeros(idx.size)
            band = np.full((2, idx.size), np.nan)
            todo = np.ones(idx.size, dtype=bool)
            gate = _gate(tm, ndvi, idx)
            for i, (preds, form, params, _boot), use, xu in _served(table.specs[k], layers, idx, todo, _observed(layers, idx),
                                                                  tm.ndvi_min is not None):
                if not use.any():
                    continue
                g = gate if np.isscalar(gate) else gate[use]
                v = g * np.maximum(predict(form, params, xu, preds), 0.0)
                est[use] += f[use] * v
                if not table.tabulable(k, i):
                    slow.append(idx[use])
                    continue
                sig2 = np.zeros(v.size)
                if spec is not None:
                    if plots:
                        sig2 += (noise.sd_nugget * v) ** 2
                    if spec.ndvi and "ndvi" in preds and form != "constant":
                        sig2 += (_ndvi_slope(form, params, xu, preds, g) * np.nan_to_num(ndvi_se[idx[use]])) ** 2
                    if sd_edge > 0:
                        fu = f[use]
                        cut = (fu > 1e-6) & (fu < 1 - 1e-6)
                        sig2 += np.where(cut, (sd_edge * v / np.where(cut, fu, 1.0)) ** 2, 0.0)
                q, inside = table.lookup(k, i, xu, np.sqrt(sig2))
                band[:, use] = g * np.maximum(f[use] * q, 0.0)
                if not inside.all():
                    slow.append(idx[use][~inside])
            est[todo] = np.nan
            out[0, idx] = est
            out[1:, idx] = band
    slow_idx = np.sort(np.concatenate(slow))
    if slow_idx.size:
        fn = pixel_function(models, types, fractions, predictors, noise=noise, row0=row0, closed_form=True)
        for idx in iter_chunks(slow_idx, chunk_pixels):
            est, draws, alpha, sigma = fn(idx)
            out[0, idx] = est
            ok = np.isfinite(est)
            band = np.full((2, idx.size), np.nan)
            if ok.any():
                band[:, ok] = np.maximum(mixture_quantiles(draws[:, ok].T, alpha[ok], sigma[ok], table.probs), 0.0)
            out[1:, idx] = band
    # the table's interpolation (within its stated tolerance) can put a bound a hair past an estimate that sits on
    # it (e.g. a floored curve at 0): the band holds the estimate, as the exact path's percentiles of draws do
    known = np.isfinite(out[1])
    np.minimum(out[1], out[0], out=out[1], where=known)  # in place where known (no masked copies)
    np.maximum(out[2], out[0], out=out[2], where=known)
    return out.reshape(3, *shape)


def model_use_stats(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> dict:
    """Per type: typed pixels; shares (%) of the observed typed pixels outside the plots' range of
    the model's predictors, floored at 0, and (for a model with an NDVI-only companion) served by
    the companion because a chosen predictor had no value."""
    return use_stats_from_counts(model_use_counts(models, types, fractions, predictors))


def model_use_counts(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> dict:
    """The pixel counts behind :func:`model_use_stats`, per type: ``pixels`` (typed), ``observed``
    (typed with finite NDVI), ``outside`` (observed and outside the plots' predictor range of the
    model that served them), ``floored`` (model value < 0), ``served`` (observed pixels served by
    the model and by its NDVI-only companion, one count per variant) and ``unserved`` (observed,
    no usable model). Counts of disjoint parts of a grid add up (:func:`add_use_counts`)."""
    frac = fractions.reshape(len(types), -1)
    layers = _layers(predictors)
    ndvi = layers["ndvi"]
    counts = {}
    for k, (t, m) in enumerate(zip(types, _records(models, types), strict=True)):
        variants = _variants(m)
        typed = frac[k] > 0
        idx = np.flatnonzero(typed & np.isfinite(ndvi))
        row = {"pixels": int(typed.sum()), "observed": int(idx.size), "outside": 0, "floored": 0,
               "served": [0] * len(variants), "unserved": 0}
        counts[t] = row
        if idx.size == 0:
            continue
        ranges = [m.predictor_ranges or ({"ndvi": m.x_range} if m.x_range else {}),
                  (m.ndvi_only.predictor_ranges if m.ndvi_only is not None else None) or {}]
        todo = np.ones(idx.size, dtype=bool)
        outside = np.zeros(idx.size, dtype=bool)
        floored = np.zeros(idx.size, dtype=bool)
        for i, (preds, form, params, _boot), use, xu in _served(variants, layers, idx, todo, None,
                                                                m.ndvi_min is not None):
            floored[use] = predict(form, params, xu, preds) < 0
            for j, q in enumerate(preds):
                if q in ranges[i]:
                    v = xu if len(preds) == 1 else xu[j]
                    outside[use] |= (v < ranges[i][q][0]) | (v > ranges[i][q][1])
            row["served"][i] = int(use.sum())
        row["outside"], row["floored"], row["unserved"] = int(outside.sum()), int(floored.sum()), int(todo.sum())
    return counts


def add_use_counts(total: dict, counts: dict) -> dict:
    """Add the :func:`model_use_counts` of another part of the grid into ``total`` (in place); returns it."""
    for t, row in counts.items():
        acc = total.setdefault(t, {"pixels": 0, "observed": 0, "outside": 0, "floored": 0,
                                   "served": [0] * len(row["served"]), "unserved": 0})
        for key in ("pixels", "observed", "outside", "floored", "unserved"):
            acc[key] += row[key]
        acc["served"] = [a + b for a, b in zip(acc["served"], row["served"], strict=True)]
    return total


def use_stats_from_counts(counts: dict) -> dict:
    """The per-type statistics of :func:`model_use_stats` from (summed) :func:`model_use_counts`:
    a type with no observed typed pixel is ``{"pixels": 0}``."""
    stats = {}
    for t, c in counts.items():
        n = c["observed"]
        if n == 0:
            stats[t] = {"pixels": 0}
            continue
        # the same float operations as a boolean mask's mean (count / n, in float64), so the
        # shares are the same bits whether the counts come from one array or from strips
        row = {
            "pixels": c["pixels"],
            "outside_plot_predictor_range_pct": float(100.0 * (c["outside"] / n)),
            "floored_at_zero_pct": float(100.0 * (c["floored"] / n)),
        }
        if len(c["served"]) > 1:
            row["ndvi_only_pct"] = float(100.0 * c["served"][1] / n)
        if c["unserved"]:
            row["no_usable_model_pct"] = float(100.0 * (c["unserved"] / n))
        stats[t] = row
    return stats


def type_density(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> np.ndarray:
    """(n_types, rows, cols) float32: carbon density each type contributes to each pixel, t C/ha of pixel
    (frac_t × max(f_t(predictors), 0), with the same choice of model per pixel as :func:`pixel_function`);
    their sum is the estimate band of :func:`density_map`. 0 where the type is absent, NaN where it is
    present but has no usable model (no clear observation, for a type that needs imagery)."""
    layers = _layers(predictors)
    ndvi = layers.get("ndvi")
    out = np.zeros(fractions.shape, dtype=np.float32)
    flat = out.reshape(len(types), -1)
    frac = fractions.reshape(len(types), -1)
    for k, tm in enumerate(_records(models, types)):
        variants = _variants(tm)
        for idx in iter_chunks(np.flatnonzero(frac[k] > 0)):
            f = frac[k, idx].astype(np.float64)
            todo = np.ones(idx.size, dtype=bool)
            gate = _gate(tm, ndvi, idx)
            for _, (preds, form, params, _boot), use, xu in _served(variants, layers, idx, todo, _observed(layers, idx),
                                                                   tm.ndvi_min is not None):
                if use.any():
                    g = gate if np.isscalar(gate) else gate[use]
                    flat[k, idx[use]] = f[use] * g * np.maximum(predict(form, params, xu, preds), 0.0)
            flat[k, idx[todo]] = np.nan
    return out


# ----------------------------------------------------------------------------- streamed stage


def carbon_band_names(interval_pct: float) -> list[str]:
    """Band names of carbon.tif: the estimate and the interval's lower and upper percentiles
    (90 -> carbon_t_ha, carbon_t_ha_p5, carbon_t_ha_p95)."""
    lo, hi = int(round((100 - interval_pct) / 2)), int(round(100 - (100 - interval_pct) / 2))
    return ["carbon_t_ha", f"carbon_t_ha_p{lo}", f"carbon_t_ha_p{hi}"]


def strip_rows_for(width: int, strip_pixels: int = STRIP_PIXELS) -> int:
    """Rows per streamed strip of a grid ``width`` columns wide: about ``strip_pixels`` pixels,
    rounded to the nearest multiple of 512 rows (whole tile rows of the written COG, so no tile
    is encoded twice) when that many rows are at least 256, else as many rows as fit (at least 1).
    A strip is thus between half and twice ``strip_pixels``: 512 rows of a 10980-pixel
    Sentinel-2 tile (5.6 Mpx)."""
    rows = max(1, strip_pixels // max(width, 1))
    return max(512, 512 * round(rows / 512)) if rows >= 256 else rows


def _strips(path: str | Path, bands: int | list[int], height: int, width: int,
            strip_rows: int) -> Iterator[tuple[slice, np.ndarray]]:
    """(row slice, block) of successive row strips, each read by :func:`greensink.io.read_raster`
    (the reader of the whole-raster path, so a strip has exactly the values of those rows)."""
    for r in range(0, height, strip_rows):
        h = min(strip_rows, height - r)
        yield slice(r, r + h), gio.read_raster(path, bands=bands, window=Window(0, r, width, h))


def carbon_map_streamed(
    models: dict,
    types: Sequence[str],
    fractions_path: str | Path,
    predictor_paths: Mapping[str, str | Path],
    out_path: str | Path,
    *,
    interval_pct: float = 90.0,
    compress: str = "zstd",
    strip_rows: int | None = None,
    chunk_pixels: int = CHUNK_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    noise: NoiseSpec | None = None,
    ndvi_se_path: str | Path | None = None,
    interval_method: str = "exact",
) -> dict:
    """The carbon stage, streamed by row strips: writes the (estimate, lower, upper) map of
    :func:`density_map` to ``out_path`` and returns the content of carbon.json
    (``total_t``, ``typed_pixels``, ``types``: the :func:`model_use_stats`).

    ``fractions_path`` has one band per type of ``types`` (in that order); ``predictor_paths``
    maps predictor names to rasters on the same grid (``ndvi`` always, the others the models
    use: :func:`greensink.model.used_predictors`; extra entries are not read). The grid is
    ``predictor_paths["ndvi"]``'s. Each strip of ``strip_rows`` rows (default
    :func:`strip_rows_for` the grid width) is evaluated with :func:`pixel_function` and
    :func:`density_map` and written through :func:`greensink.io.raster_writer`, so an error
    leaves no file behind. ``total_t`` is the sum of the written estimate band (float32 values,
    summed in float64) × pixel area; the statistics are exact counts summed over the strips.

    ``noise`` adds the other error sources to the draws of bands 2–3 (:mod:`greensink.uncertainty`;
    its grid size is taken from the grid here), ``ndvi_se_path`` is the NDVI standard error raster
    its NDVI source needs. Their random numbers depend on the pixel, never on the strip.

    ``interval_method`` (:data:`INTERVAL_METHODS`): ``exact`` evaluates and sorts every draw at every typed
    pixel (:func:`density_map`); ``tabulated`` takes the percentiles of the same draws' distribution in
    closed form (:func:`tabulated_map`, one :class:`IntervalTable` for the whole grid), the noise's random
    numbers never drawn; the estimate band is the same either way."""
    if interval_method not in INTERVAL_METHODS:
        raise ValueError(f"interval_method must be one of {INTERVAL_METHODS}. Got {interval_method!r}.")
    types = list(types)
    grid = gio.read_grid(predictor_paths["ndvi"])
    names = used_predictors(models, types)
    missing = [q for q in names if q not in predictor_paths]
    if missing:
        raise ModelError(
            f"predictor raster(s) {missing} are needed by a fitted model. Got only {sorted(predictor_paths)} instead. "
            "Pass every raster of model.predictors (results/{year}/<name>.tif)."
        )
    paths = {"fractions": fractions_path, **{q: predictor_paths[q] for q in names}}
    for label, path in paths.items():
        other = gio.read_grid(path)
        if other.shape != grid.shape:
            raise InputDataError(f"{path}: {other.height} × {other.width} pixels, but the grid of "
                                 f"{predictor_paths['ndvi']} is {grid.height} × {grid.width}. "
                                 f"The {label} raster must be on the run's grid; rerun the stage that wrote it.")
    with gio.open_raster(fractions_path) as src:
        if src.count != len(types):
            raise InputDataError(f"{fractions_path}: {src.count} band(s), but there are {len(types)} types {types}. "
                                 "Rerun the types rule (results/types/fractions.tif) for this configuration.")
    rows = strip_rows or strip_rows_for(grid.width)
    if rows < 1:
        raise ValueError(f"strip_rows must be >= 1. Got {strip_rows}.")
    readers = [_strips(fractions_path, list(range(1, len(types) + 1)), grid.height, grid.width, rows)]
    readers += [_strips(predictor_paths[q], 1, grid.height, grid.width, rows) for q in names]
    noisy = None
    if noise is not None:
        noise = dataclasses.replace(noise, width=grid.width, height=grid.height)
        noisy = Noise(noise, type_record(models, types[0]).bootstrap.shape[0])
        if noise.ndvi:
            if ndvi_se_path is None:
                raise ModelError("the NDVI error source (uncertainty.ndvi) needs results/{year}/ndvi_se.tif. Got none.")
            names = [*names, "ndvi_se"]
            readers.append(_strips(ndvi_se_path, 1, grid.height, grid.width, rows))
    n_strips = math.ceil(grid.height / rows)
    table = IntervalTable(models, types, noisy, interval_pct) if interval_method == "tabulated" else None
    total = 0.0
    typed = 0
    counts: dict = {}
    with gio.raster_writer(out_path, grid, 3, band_names=carbon_band_names(interval_pct), compress=compress,
                           tags={"units": "t C/ha", "interval_pct": interval_pct}) as out:
        for i, ((sl, frac), *preds) in enumerate(zip(*readers, strict=True)):
            # float64 once per strip (the pixel functions work in float64 and would each convert the rasters again)
            layers = {q: block.reshape(-1).astype(np.float64) for q, (_, block) in zip(names, preds, strict=True)}
            shape = (sl.stop - sl.start, grid.width)
            active = typed_pixels(frac)
            if table is not None:
                block = tabulated_map(models, types, frac, layers, table, noise=noisy, row0=sl.start,
                                      chunk_pixels=chunk_pixels)
            else:
                fn = pixel_function(models, types, frac, layers, noise=noisy, row0=sl.start)
                block = density_map(fn, active, shape, interval_pct, chunk_pixels=chunk_pixels)
            out.write(block, sl.start)
            est = block[0]
            total += float(est[np.isfinite(est)].sum(dtype=np.float64))
            typed += int(active.size)
            add_use_counts(counts, model_use_counts(models, types, frac, {q: layers[q] for q in layers if q != "ndvi_se"}))
            if progress:
                progress(i + 1, n_strips)
    return {"total_t": total * grid.pixel_area_ha, "typed_pixels": typed, "types": use_stats_from_counts(counts)}


def run_carbon(models_json: str | Path, predictors: Mapping[str, str | Path], fractions: str | Path,
               ndvi_se: str | Path | None, carbon_out: str | Path, stats_out: str | Path, *, types: Sequence[str],
               year: int, seed: int, interval_pct: float = 90.0, uncertainty: Mapping | None = None,
               compress: str = "zstd", strip_rows: int | None = None) -> dict:
    """Rule carbon: the carbon map of ``year`` (:func:`carbon_map_streamed`) from the year's models.json
    ``models_json``, the ``predictors`` rasters (name → path) and the type fractions ``fractions`` (one band
    per type of ``types``), written to ``carbon_out``; its bands 2–3 hold every error source of the
    ``uncertainty`` config (:func:`greensink.uncertainty.noise_spec` of ``seed`` and ``year``; the NDVI source
    reads ``ndvi_se``). carbon.json (the statistics, returned) is written to ``stats_out``. The bands'
    method is ``uncertainty.pixel_interval`` (:data:`INTERVAL_METHODS`, default tabulated)."""
    models = gio.read_json(models_json)
    grid = gio.read_grid(fractions)
    noise = noise_spec(uncertainty, models, seed=seed, year=int(year), resolution_m=grid.resolution_m)
    method = str(settings(uncertainty)["pixel_interval"])
    stats = carbon_map_streamed(models, types, fractions, predictors, carbon_out, interval_pct=interval_pct,
                                compress=compress, strip_rows=strip_rows, progress=logs.progress(log, "carbon"),
                                noise=noise, ndvi_se_path=ndvi_se, interval_method=method)
    gio.write_json(stats_out, stats)
    log.info("carbon: %.0f t C over %d typed pixels", stats["total_t"], stats["typed_pixels"])
    return stats
