"""The carbon of a pixel: each type's fitted model (or its NDVI-only companion) chosen and evaluated
at the pixel's predictors, with its draws (:func:`pixel_function`); the pixels no model serves
(:func:`unserved_function`) and each type's share of a pixel's density (:func:`type_density`). The fills of
unobserved typed land (``type_fill``, ``fill_values``) are in :mod:`greensink.carbon.fill`, which builds on this
module (so it cannot re-export them without an import cycle): import them from ``greensink.carbon``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from greensink.errors import ModelError
from greensink.model import TypeModel, predict, type_record
from greensink.uncertainty import SOURCES, Noise

CHUNK_PIXELS = 32_768


PixelFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Predictors = Mapping[str, np.ndarray] | np.ndarray


def typed_pixels(fractions: np.ndarray) -> np.ndarray:
    """Flat indices of pixels with any green-space type (ascending)."""
    return np.flatnonzero(fractions.reshape(fractions.shape[0], -1).sum(axis=0) > 0)


def predictor_layers(predictors: Predictors) -> dict[str, np.ndarray]:
    """Flat float64 views of the predictor rasters by name; a bare array is NDVI."""
    if isinstance(predictors, np.ndarray):
        predictors = {"ndvi": predictors}
    return {k: np.asarray(v).reshape(-1).astype(np.float64, copy=False) for k, v in predictors.items()}


def model_variants(type_model: TypeModel) -> list[tuple[tuple[str, ...], str, np.ndarray, np.ndarray]]:
    """(predictors, form, params, draws) of a type model and then its NDVI-only companion, if any."""
    return [(m.predictors, m.form, m.param_vector(), m.bootstrap)
            for m in (type_model, type_model.ndvi_only) if m is not None]


def type_records(models: Mapping, types: Sequence[str]) -> list[TypeModel]:
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


def observed_pixels(layers: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """True at the pixels ``idx`` with a finite NDVI (every pixel when there is no NDVI layer)."""
    ndvi = layers.get("ndvi")
    return np.isfinite(ndvi[idx]) if ndvi is not None else np.ones(idx.size, dtype=bool)


def served_variants(variants: list[Variant], layers: dict[str, np.ndarray], idx: np.ndarray,
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


def ndvi_gate(type_model: TypeModel, ndvi: np.ndarray | None, idx: np.ndarray) -> np.ndarray | float:
    """1 where the type's NDVI gate passes (NDVI >= ndvi_min), else 0; 1.0 for a type without a gate."""
    gate = type_model.ndvi_min
    if gate is None or ndvi is None:
        return 1.0
    with np.errstate(invalid="ignore"):
        return (ndvi[idx] >= float(gate)).astype(np.float64)


Fill = Mapping[str, tuple[float, np.ndarray]]


def global_index(idx: np.ndarray, width: int, row0: int = 0, col0: int = 0, grid_width: int | None = None) -> np.ndarray:
    """Global pixel indices (row × grid width + column, the keys of the noise streams) of the flat indices
    ``idx`` of a block ``width`` columns wide whose top-left pixel is grid pixel (``row0``, ``col0``) of a grid
    ``grid_width`` columns wide (None: the block spans whole grid rows)."""
    idx = idx.astype(np.int64)
    if grid_width is None or (col0 == 0 and grid_width == width):
        return idx + int(row0) * width
    rows, cols = np.divmod(idx, width)
    return (rows + int(row0)) * int(grid_width) + int(col0) + cols


def pixel_function(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors,
                   fill: Fill | None = None, noise: Noise | None = None, row0: int = 0,
                   sources: bool = False, closed_form: bool = False, col0: int = 0,
                   grid_width: int | None = None, moments_only: bool = False, uses=None) -> PixelFn:
    """A function of flat pixel indices -> (estimate (n,), draws (B, n)) in t C/ha of pixel.

    ``predictors`` maps predictor names to rasters on the grid ("ndvi" always; the others the
    models use, see :func:`greensink.model.used_predictors`; "ndvi_se" for the NDVI error source);
    a bare array is taken as NDVI. For each type the first of its model and its NDVI-only companion
    whose predictors are all finite at the pixel (and, for a model that needs imagery, where NDVI is
    finite) is used. A constant-density type (:func:`needs_imagery` False) needs no observation:
    frac × c everywhere it is typed.

    A type present at a pixel with no usable model (no clear observation) makes the pixel NaN, unless
    ``fill`` gives the type a fill density: {type: (estimate, draws (B,))} in t C per ha of the type's
    land (:func:`greensink.carbon.fill.type_fill`), then that land counts frac × fill (the zone tables' rule; the carbon map
    keeps NaN there).

    ``noise`` (:class:`greensink.uncertainty.Noise`) adds the residual, NDVI and edge errors to the
    draws (``row0``: the first grid row of ``fractions``, which spans whole grid rows; for a tile's window,
    ``col0`` its first grid column and ``grid_width`` the grid's columns), and switches
    the curve and table draws off where its spec says so; the draws are then floored at 0 per pixel.
    The estimate never changes. With ``sources`` the function returns a third item, {source: (B, n)}
    of the per-source contributions (:data:`greensink.uncertainty.SOURCES`) whose sum is the draws
    before the floor.

    With ``closed_form`` the noise is not drawn: the function returns (estimate, curve and table draws (B, n),
    α (n,), σ (n,)), the standard deviations of the correlated residual field and of the per-pixel
    independent errors whose sum with the draws (floored at 0) the noisy draws are
    (:func:`mixture_quantiles` takes their percentiles in closed form; α = σ = 0 without noise). With
    ``moments_only`` as well the curve and table draws are not evaluated (the draws returned are (0, n)): the
    estimate, α and σ alone (the pair tables of :func:`greensink.carbon.interval.tabulated_map`).

    ``uses`` (a :class:`greensink.carbon.stats.UseCodes` of ``fractions``' pixels): every model value evaluated
    is recorded there too (carbon.json's use counts, from this pass)."""
    frac = fractions.reshape(len(types), -1)
    width = fractions.shape[-1]
    layers = predictor_layers(predictors)
    ndvi = layers.get("ndvi")
    ndvi_se = layers.get("ndvi_se")
    type_models = type_records(models, types)
    specs = [model_variants(m) for m in type_models]
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
    no_draws = closed_form and moments_only

    def evaluate(idx: np.ndarray):
        est = np.zeros(idx.size)
        missing = np.zeros(idx.size, dtype=bool)
        observed = observed_pixels(layers, idx)
        if noise is None and not sources and not closed_form:
            draws = np.zeros((n_draws, idx.size))
            parts = None
        else:
            parts = {k: np.zeros((0 if no_draws else n_draws, idx.size)) for k in ("curve", "table")}
            dens = np.zeros((len(types), idx.size))
            plot_est = np.zeros(idx.size)  # density of the types fitted to plots (the residual's scale)
            slope = np.zeros(idx.size)  # d density / d NDVI
        for k, (variants, tm) in enumerate(zip(specs, type_models, strict=True)):
            f = frac[k, idx].astype(np.float64)
            todo = f > 0
            gate = ndvi_gate(tm, ndvi, idx)
            gated = tm.ndvi_min is not None
            source = "curve" if from_plots[k] else "table"
            on = spec is None or (spec.curve if from_plots[k] else spec.table)
            for i, (preds, form, params, boot), use, xu in served_variants(variants, layers, idx, todo, observed, gated):
                if use.any():
                    g = gate if np.isscalar(gate) else gate[use]
                    raw = predict(form, params, xu, preds)
                    if uses is not None:
                        uses.record(k, i, idx[use], preds, xu, raw)
                    v = g * np.maximum(raw, 0.0)
                    est[use] += f[use] * v
                    if no_draws:
                        vb = None
                    else:
                        vb = (g * np.maximum(predict(form, boot, xu, preds), 0.0) if on
                              else np.broadcast_to(v, (n_draws, v.size)))
                    whole = use.all()  # every pixel of the chunk: no masked read-modify-write of a (B, n) block
                    if parts is None:
                        if whole:
                            draws += f * vb
                        else:
                            draws[:, use] += f[use] * vb
                        continue
                    dens[k, use] = v
                    if vb is not None:
                        if whole:
                            parts[source] += f * vb
                        else:
                            parts[source][:, use] += f[use] * vb
                    if from_plots[k]:
                        plot_est[use] += f[use] * v
                    if spec is not None and spec.ndvi and "ndvi" in preds and form != "constant":
                        slope[use] += f[use] * ndvi_slope(form, params, xu, preds, g)
            if fills[k] is not None and todo.any():
                fe, fd = fills[k]
                est[todo] += f[todo] * fe
                fdraws = np.outer(np.asarray(fd, dtype=np.float64), f[todo])
                if parts is None:
                    draws[:, todo] += fdraws
                else:
                    if not no_draws:
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
                if missing.any():
                    est[missing] = np.nan
                    draws[:, missing] = np.nan
                return est, draws, alpha, sigma
            if noise is not None and noise.active:
                gidx = global_index(idx, width, row0, col0, grid_width)
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


def ndvi_slope(form: str, params: np.ndarray, xu: np.ndarray, preds: tuple[str, ...], gate) -> np.ndarray:
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
    layers = predictor_layers(predictors)
    type_models = type_records(models, types)
    specs = [model_variants(m) for m in type_models]

    def unserved(idx: np.ndarray) -> np.ndarray:
        out = np.zeros(idx.size, dtype=bool)
        observed = observed_pixels(layers, idx)
        for k, (variants, tm) in enumerate(zip(specs, type_models, strict=True)):
            todo = frac[k, idx].astype(np.float64) > 0
            for _ in served_variants(variants, layers, idx, todo, observed, tm.ndvi_min is not None):
                pass  # clears the served pixels from todo
            out |= todo
        return out

    return unserved


def iter_chunks(idx: np.ndarray, chunk_pixels: int = CHUNK_PIXELS) -> Iterator[np.ndarray]:
    for start in range(0, idx.size, chunk_pixels):
        yield idx[start : start + chunk_pixels]


def type_density(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> np.ndarray:
    """(n_types, rows, cols) float32: carbon density each type contributes to each pixel, t C/ha of pixel
    (frac_t × max(f_t(predictors), 0), with the same choice of model per pixel as :func:`pixel_function`);
    their sum is the estimate band of :func:`density_map`. 0 where the type is absent, NaN where it is
    present but has no usable model (no clear observation, for a type that needs imagery)."""
    layers = predictor_layers(predictors)
    ndvi = layers.get("ndvi")
    out = np.zeros(fractions.shape, dtype=np.float32)
    flat = out.reshape(len(types), -1)
    frac = fractions.reshape(len(types), -1)
    for k, tm in enumerate(type_records(models, types)):
        variants = model_variants(tm)
        for idx in iter_chunks(np.flatnonzero(frac[k] > 0)):
            f = frac[k, idx].astype(np.float64)
            todo = np.ones(idx.size, dtype=bool)
            gate = ndvi_gate(tm, ndvi, idx)
            for _, (preds, form, params, _boot), use, xu in served_variants(variants, layers, idx, todo, observed_pixels(layers, idx),
                                                                   tm.ndvi_min is not None):
                if use.any():
                    g = gate if np.isscalar(gate) else gate[use]
                    flat[k, idx[use]] = f[use] * g * np.maximum(predict(form, params, xu, preds), 0.0)
            flat[k, idx[todo]] = np.nan
    return out
