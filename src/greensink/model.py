"""Per-green-space-type carbon density models: plot carbon (t C/ha) as a function of remote-sensing predictors.

For each green-space type (G1 G2 G3 XG EG, or a configured list) the carbon density of the
field plots is regressed on predictors sampled at the plots: NDVI by default, and any of FVC,
tree-canopy fraction and mean canopy height (:data:`PREDICTORS`). Four forms from the Chinese
NDVI-carbon literature are candidates (``x`` a predictor; ``C`` t C/ha); with one predictor:

=============  =====================  ===================================================
form           equation               fitted by
=============  =====================  ===================================================
linear         C = a + b*x            (weighted) linear least squares
logarithmic    C = a + b*ln(x)        (weighted) linear least squares on ln(x); every x > 0
power          C = a * x**b           (weighted) non-linear least squares; every x > 0
exponential    C = a * exp(b*x)       (weighted) non-linear least squares
=============  =====================  ===================================================

and with several, a + Σ b_j x_j, a + Σ b_j ln x_j, a Π x_j^b_j and a exp(Σ b_j x_j)
(:func:`param_names`). A fifth, non-parametric form, "ensemble", may be a candidate:
gradient-boosted regression trees (200 trees, learning rate 0.05, >= 3 plots per leaf; depth 2
on one predictor, stumps on several, so that it is additive; see :func:`ensemble_regressor`). It
is stored as lookup tables over :data:`PREDICTOR_GRIDS` (for NDVI alone the 241 values of
:data:`ENSEMBLE_GRID`, -0.2 .. 1.0 step 0.005, parameters "y000" .. "y240"), and :func:`predict`
interpolates linearly between them (flat beyond the grid).

Power and exponential are fitted in the original (untransformed) carbon space with
:func:`scipy.optimize.curve_fit`, started from the log-linear fit (ln C on ln x or x). The
log-space fit itself is never reported: back-transformed, it estimates the geometric, not the
arithmetic, mean carbon and so is biased low. A form whose domain excludes a training plot
(x <= 0 for logarithmic and power), whose predictors are collinear, or whose fit does not
converge is skipped, and the reason is kept with the candidates.

Weighting ("relative", the default, or "none"): plot carbon errors are taken as proportional to
carbon (multiplicative), so each form is refitted with weights 1/ŷ² by iteratively reweighted
least squares (see :func:`fit_form`); the ensemble is refitted once with sample weights 1/ŷ² of
its unweighted fit. The same weighting is used in cross-validation, the final fit and every
bootstrap refit, and the CV criterion matches it (relative RMSE, or RMSE in t C/ha).

Form and predictor set are chosen per type by spatially blocked cross-validation
(:func:`spatial_folds`): plots are grouped into square blocks on a grid anchored at (0, 0) m and
whole blocks go to one fold, so nearby, spatially correlated plots are never split between
training and test. Of the candidates whose pooled out-of-fold error is within one standard error
of the lowest, the simplest wins (fewest predictors, then parametric before ensemble; see
:func:`select_model`).

Uncertainty is a bootstrap (:data:`BOOTSTRAPS`): by default over plots, the chosen candidate
refitted on ``n_bootstrap`` resamples of the plots drawn with replacement, or over residuals.
Plots are sorted by ``plot_id`` first and the random generator depends only on ``(seed,
type_code)``, so two years with the same plot ids per type resample the same plots in the same
draws: their draws are *paired*, and a per-draw difference between years (the sink) carries the
right correlation. The draws are curve (parameter) draws; the absolute and relative residual
spread of the fit are reported for a per-plot prediction interval.

Predictions (:func:`predict`) clamp x to >= :data:`X_MIN_LOG` (1e-3) before evaluating the
logarithmic and power forms, so bare ground and water (NDVI <= 0) get the model's value at
NDVI 0.001 instead of NaN or -inf. Predictions are returned raw: a fitted curve may go below 0
t C/ha and the caller floors at 0 and counts floored pixels. Everything here is pure: the model
is returned as a JSON-serialisable dict that ``greensink.io`` writes."""

from __future__ import annotations

import logging
import math
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from greensink.errors import InputDataError, ModelError

__all__ = [
    "ALL_FORMS",
    "BOOTSTRAPS",
    "ENSEMBLE_GRID",
    "FORMS",
    "PARAM_NAMES",
    "PREDICTORS",
    "PREDICTOR_GRIDS",
    "IRLS_MAX_ITER",
    "WEIGHTINGS",
    "WEIGHT_FLOOR",
    "X_MIN_LOG",
    "bootstrap_indices",
    "cross_validate",
    "describe_folds",
    "fallback_type_model",
    "fit_form",
    "fit_models",
    "fit_type_model",
    "model_predictors",
    "param_names",
    "predict",
    "predict_draws",
    "predict_type",
    "predictor_sets",
    "select_form",
    "select_model",
    "spatial_block_ids",
    "spatial_folds",
    "used_predictors",
    "worse_than_mean",
]

log = logging.getLogger(__name__)

FORMS: tuple[str, ...] = ("linear", "logarithmic", "power", "exponential")
"""The parametric forms: the default candidate list."""
ALL_FORMS: tuple[str, ...] = (*FORMS, "ensemble")
"""Every form that may be a candidate (``model.forms``), in tie-break order."""
ENSEMBLE_GRID: np.ndarray = np.round(np.linspace(-0.2, 1.0, 241), 6)
"""NDVI values (-0.2 .. 1.0, step 0.005) at which a fitted "ensemble" is stored as a lookup table."""
ENSEMBLE_GRID.setflags(write=False)
PREDICTORS: tuple[str, ...] = ("ndvi", "fvc", "canopy", "height")
"""Remote-sensing predictors a model may use (``model.predictors``): NDVI (unitless), fractional
vegetation cover (0-1), tree-canopy fraction (0-1) and mean canopy height (m, from the canopy height
model), each the value of the plot's pixel in results/{year}/{name}.tif."""
PREDICTOR_UNITS: dict[str, str] = {"ndvi": "", "fvc": "fraction 0-1", "canopy": "fraction 0-1", "height": "m"}
PREDICTOR_GRIDS: dict[str, np.ndarray] = {
    "ndvi": ENSEMBLE_GRID,
    "fvc": np.round(np.linspace(0.0, 1.0, 201), 6),
    "canopy": np.round(np.linspace(0.0, 1.0, 201), 6),
    "height": np.round(np.linspace(0.0, 60.0, 241), 6),
}
"""Values of each predictor at which a fitted "ensemble" is stored (NDVI -0.2..1 step 0.005, FVC and
canopy 0..1 step 0.005, height 0..60 m step 0.25); predictions are flat beyond them."""
for _g in PREDICTOR_GRIDS.values():
    _g.setflags(write=False)
ENSEMBLE_TREES = 200
ENSEMBLE_DEPTH = 2
ENSEMBLE_LEARNING_RATE = 0.05
ENSEMBLE_MIN_LEAF = 3
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "linear": ("a", "b"),
    "logarithmic": ("a", "b"),
    "power": ("a", "b"),
    "exponential": ("a", "b"),
    "ensemble": tuple(f"y{i:03d}" for i in range(ENSEMBLE_GRID.size)),
    "constant": ("c",),
}
X_MIN_LOG = 1e-3
"""Smallest x (NDVI) at which the logarithmic and power forms are evaluated by :func:`predict`."""
BOOTSTRAPS: tuple[str, ...] = ("plots", "residuals")
"""Bootstrap schemes (``model.bootstrap``): "plots" resamples whole plots (pairs bootstrap, the
default); "residuals" keeps the plots and refits to the fitted values plus resampled residuals
(relative residuals under relative weighting: y* = ŷ·(1 + r*); absolute under "none": y* = ŷ + e*)."""
WEIGHTINGS: tuple[str, ...] = ("relative", "none")
"""Least-squares weighting of the plots: "relative" (weights 1/ŷ², multiplicative error) or "none"."""
WEIGHT_FLOOR = 0.1
"""Predictions below this share of the plots' mean carbon are raised to it before weighting (so a
curve near or below 0 at some plot cannot give that plot an unbounded weight)."""
IRLS_MAX_ITER = 50
_IRLS_RTOL = 1e-9

_POSITIVE_X_FORMS = ("logarithmic", "power")
_REDRAW_STREAM = 1  # extra entropy word of the generator that replaces failed bootstrap draws
TIE_RTOL, TIE_ATOL = 1e-9, 1e-12  # CV errors within this (relative, absolute) of each other tie: the earlier entry wins
_MAX_LISTED = 10  # problems listed in one error message before "and N more"

COEFFICIENT_COLUMNS = ("type", "c_above", "c_below", "uncertainty_pct")


# ---------------------------------------------------------------------------------------------
# Forms: fit and predict


def param_names(form: str, predictors: Sequence[str] = ("ndvi",)) -> tuple[str, ...]:
    """Names of a form's parameters, in the order :func:`fit_form` returns and :func:`predict` takes them.

    With one predictor these are :data:`PARAM_NAMES` (the ensemble's table "y000" ... over that
    predictor's :data:`PREDICTOR_GRIDS` entry). With p > 1 predictors the parametric forms have
    "a" and one "b_<predictor>" per predictor, and the ensemble has "base" and one table
    "<predictor>_000" ... per predictor (see :func:`fit_form`). "constant" is always ("c",).
    """
    _check_form(form, PARAM_NAMES)
    preds = _check_predictor_names(predictors)
    if form == "constant":
        return ("c",)
    if len(preds) == 1:
        if form == "ensemble":
            return tuple(f"y{i:03d}" for i in range(PREDICTOR_GRIDS[preds[0]].size))
        return PARAM_NAMES[form]
    if form == "ensemble":
        return ("base", *(f"{q}_{i:03d}" for q in preds for i in range(PREDICTOR_GRIDS[q].size)))
    return ("a", *(f"b_{q}" for q in preds))


def fit_form(
    form: str, x: np.ndarray, y: np.ndarray, weighting: str = "relative", predictors: Sequence[str] | None = None
) -> np.ndarray:
    """Fit one form to plots (x predictors, y carbon t C/ha); parameters in :func:`param_names` order.

    ``x`` is one predictor (shape (n,), NDVI unless ``predictors`` names another) or several
    (shape (n, p), columns in the order of ``predictors``). With p predictors x_1 .. x_p the
    parametric forms are C = a + Σ b_j x_j (linear), a + Σ b_j ln x_j (logarithmic),
    a Π x_j^b_j (power) and a exp(Σ b_j x_j) (exponential); with one predictor they are the
    two-parameter forms of the module docstring. The ensemble with p > 1 is additive (boosted
    stumps, one predictor per tree), stored as one lookup table per predictor.

    ``weighting`` "none" is (ordinary or non-linear) least squares. "relative" (the default) assumes
    multiplicative plot error, Var(C) ∝ E(C)²: starting from the unweighted fit, the form is refitted
    by weighted least squares with weights 1/ŷ² (ŷ the previous fit's prediction at the plot, floored
    at :data:`WEIGHT_FLOOR` × mean carbon) until the parameters change by less than 1e-9 relative (at
    most :data:`IRLS_MAX_ITER` refits). The fixed point solves the quasi-likelihood equations
    Σ (y - ŷ)/ŷ² ∂ŷ/∂θ = 0 (those of a gamma GLM), so the curve still estimates the arithmetic mean
    carbon. Scaling y by a constant scales a and the linear/logarithmic b by the same constant.

    Raises :class:`ModelError` if the form's domain excludes a plot (a predictor <= 0 for
    logarithmic and power), if the predictors do not vary independently over the plots (fewer than
    2 distinct values of one predictor, or collinear predictors), or if the non-linear fit does not
    converge.
    """
    _check_form(form, ALL_FORMS)
    weighting = _check_weighting(weighting)
    X, y = _as_Xy(x, y)
    preds = _check_predictor_names(predictors, X.shape[1])
    if form == "ensemble":
        return _fit_ensemble(X, y, weighting, preds)
    if form in _POSITIVE_X_FORMS and np.any(X <= 0):
        j = int(np.argmax(np.any(X <= 0, axis=0)))
        col = X[:, j]
        bad = int(np.sum(col <= 0))
        name = _predictor_label(preds[j])
        raise ModelError(
            f"{form} form needs {name} x > 0 at every plot. Got {bad} of {col.size} plots with x <= 0 "
            f"(min {col.min():.4g}) instead. Use the linear or exponential form for these plots."
        )
    T = np.log(X) if form in _POSITIVE_X_FORMS else X
    _check_design(form, T, X, preds)
    params = _fit_t(form, T, y, None, None)
    floor = WEIGHT_FLOOR * float(np.mean(y))
    if weighting == "relative" and floor > 0:
        for _ in range(IRLS_MAX_ITER):
            mu = np.maximum(_eval_t(form, params, T), floor)
            new = _fit_t(form, T, y, mu, params)
            done = bool(np.all(np.abs(new - params) <= _IRLS_RTOL * np.abs(new)))
            params = new
            if done or not np.all(np.isfinite(params)):
                break
    if not np.all(np.isfinite(params)):
        raise ModelError(
            f"{form} fit must give finite parameters. Got {params.tolist()} instead. "
            "Check the plots for extreme carbon or predictor values."
        )
    return params


def _check_design(form: str, T: np.ndarray, X: np.ndarray, preds: tuple[str, ...]) -> None:
    """Raise ModelError unless every predictor has >= 2 distinct values and (p > 1) [1, T] has full rank."""
    n, p = T.shape
    _check_spread(form, T, X, preds)
    if p > 1:
        design = np.column_stack([np.ones(n), (T - T.mean(axis=0)) / T.std(axis=0)])
        if n < p + 1 or np.linalg.matrix_rank(design, tol=1e-8 * n) < p + 1:
            raise ModelError(
                f"{form} fit on {'+'.join(preds)} needs predictors that vary independently over the plots. Got "
                f"collinear predictors over {n} plots instead. Drop one of them from model.predictors."
            )


def _check_spread(form: str, T: np.ndarray, X: np.ndarray, preds: tuple[str, ...]) -> None:
    """Raise ModelError unless every predictor column of T (X before any log) has 2 or more distinct values."""
    n = T.shape[0]
    for j, q in enumerate(preds):
        if n < 2 or not np.ptp(T[:, j]) > 0:
            raise ModelError(
                f"{form} fit needs plots at 2 or more distinct {_predictor_label(q)} values. Got "
                f"{np.unique(X[:, j]).size} distinct value(s) over {n} plots instead. Add plots that span a range of "
                f"{_predictor_label(q)}."
            )


def ensemble_regressor(n_predictors: int = 1) -> Any:
    """The (unfitted) gradient-boosted tree ensemble of the "ensemble" form; deterministic.

    200 trees, learning rate 0.05, at least 3 plots per leaf, squared-error loss, no subsampling,
    ``random_state`` 0. With one predictor the trees have depth 2; with several they are stumps
    (depth 1), so the ensemble is a sum of one function per predictor (no interactions) and can be
    stored exactly as one lookup table per predictor.
    """
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(
        loss="squared_error", n_estimators=ENSEMBLE_TREES, max_depth=ENSEMBLE_DEPTH if n_predictors == 1 else 1,
        learning_rate=ENSEMBLE_LEARNING_RATE, min_samples_leaf=ENSEMBLE_MIN_LEAF, subsample=1.0, random_state=0,
    )


def _fit_ensemble(X: np.ndarray, y: np.ndarray, weighting: str, preds: tuple[str, ...]) -> np.ndarray:
    """Lookup table(s) (at :data:`PREDICTOR_GRIDS`) of the tree ensemble fitted to the plots.

    With ``weighting`` "relative" the ensemble is refitted once with sample weights 1/ŷ², ŷ the
    unweighted fit's prediction at the plot floored at :data:`WEIGHT_FLOOR` × mean carbon (trees
    have no fixed point to iterate to). One predictor: the predictions at its grid. Several: the
    additive ensemble f(x) = base + Σ g_j(x_j) as base = f(m) at the plots' median m, and per
    predictor g_j(v) = f(m with x_j = v) - base at its grid (exact for a sum of stumps)."""
    n, p = X.shape
    _check_spread("ensemble", X, X, preds)
    reg = ensemble_regressor(p).fit(X, y)
    floor = WEIGHT_FLOOR * float(np.mean(y))
    if weighting == "relative" and floor > 0:
        mu = np.maximum(reg.predict(X), floor)
        reg = ensemble_regressor(p).fit(X, y, sample_weight=1.0 / mu**2)
    if p == 1:
        table = np.asarray(reg.predict(PREDICTOR_GRIDS[preds[0]].reshape(-1, 1)), dtype=float)
    else:
        ref = np.median(X, axis=0)
        base = float(reg.predict(ref.reshape(1, -1))[0])
        parts = [np.array([base])]
        for j, q in enumerate(preds):
            g = np.tile(ref, (PREDICTOR_GRIDS[q].size, 1))
            g[:, j] = PREDICTOR_GRIDS[q]
            parts.append(np.asarray(reg.predict(g), dtype=float) - base)
        table = np.concatenate(parts)
    if not np.all(np.isfinite(table)):
        raise ModelError("ensemble fit must give finite predictions. Got non-finite values instead. "
                         "Check the plots for extreme carbon or predictor values.")
    return table


def _interp_table(p: np.ndarray, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """np.interp(x, grid, table) for a table (k,) or every row of (B, k); NaN x gives NaN."""
    g = grid
    xc = np.clip(x, g[0], g[-1])
    i = np.clip(np.searchsorted(g, xc, side="right") - 1, 0, g.size - 2)
    w = (xc - g[i]) / (g[i + 1] - g[i])
    w = np.where(np.isnan(x), 0.0, w)
    i = np.where(np.isnan(x), 0, i)
    out = p[..., i] * (1.0 - w) + p[..., i + 1] * w
    return np.where(np.isnan(x), np.nan, out)


def _fit_t(form: str, T: np.ndarray, y: np.ndarray, sigma: np.ndarray | None, p0: np.ndarray | None) -> np.ndarray:
    """One (weighted) least-squares fit in T = X or ln X, (n, p); ``sigma`` is the per-plot error scale (weight 1/sigma²)."""
    if form in ("linear", "logarithmic"):
        return _ols(T, y, None if sigma is None else 1.0 / sigma**2)
    return _fit_a_exp_bt(form, T, y, sigma, p0)


def _eval_t(form: str, params: np.ndarray, T: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        lin = T[:, 0] * params[1] if T.shape[1] == 1 else T @ params[1:]
        if form in ("linear", "logarithmic"):
            return params[0] + lin
        return params[0] * np.exp(lin)


def predict(form: str, params: np.ndarray, x: np.ndarray, predictors: Sequence[str] = ("ndvi",)) -> np.ndarray:
    """Carbon density (t C/ha, raw, may be < 0) of ``form`` at predictor values ``x``.

    With one predictor ``x`` is an array of its values (any shape); with p > 1 ``predictors``,
    ``x`` has shape (p, *shape), one layer per predictor in that order, and the result has shape
    ``shape``. ``params`` of shape (k,) gives one result; a stack of draws of shape (B, k) gives
    (B, *shape), computed by broadcasting (memory is B times that of x: chunk large rasters).
    Logarithmic and power forms clamp every predictor to >= :data:`X_MIN_LOG` first. The
    "constant" form returns c everywhere except where a predictor is NaN. The "ensemble" form
    interpolates its table(s) linearly over :data:`PREDICTOR_GRIDS` (flat beyond the grid), as
    ``np.interp``, for all draws at once. NaN in any predictor gives NaN in the result for every form.
    """
    _check_form(form, PARAM_NAMES)
    preds = _check_predictor_names(predictors)
    names = param_names(form, preds)
    k = len(names)
    x = np.asarray(x, dtype=float)
    if len(preds) > 1 and (x.ndim < 1 or x.shape[0] != len(preds)):
        raise ModelError(
            f"x of a model on {'+'.join(preds)} must have shape ({len(preds)}, ...), one layer per predictor. "
            f"Got shape {x.shape} instead. Stack the predictor rasters in the order {list(preds)}."
        )
    layers = [x] if len(preds) == 1 else list(x)
    shape = layers[0].shape
    p = np.asarray(params, dtype=float)
    if not (p.shape == (k,) or (p.ndim == 2 and p.shape[1] == k)):
        raise ModelError(
            f"params of the {form} form must have shape ({k},) or (n_draws, {k}). Got shape {p.shape} "
            f"instead. Pass parameters in the order {names[:4]}{'...' if k > 4 else ''}."
        )
    nan = np.zeros(shape, dtype=bool)
    for layer in layers:
        nan |= np.isnan(layer)
    if form == "ensemble":
        if len(preds) == 1:
            return np.asarray(_interp_table(p, x, PREDICTOR_GRIDS[preds[0]]), dtype=float)
        out = p[..., 0].reshape(p.shape[:-1] + (1,) * len(shape)) + np.zeros(shape)
        start = 1
        for q, layer in zip(preds, layers, strict=True):
            size = PREDICTOR_GRIDS[q].size
            out = out + _interp_table(p[..., start : start + size], layer, PREDICTOR_GRIDS[q])
            start += size
        return np.asarray(np.where(nan, np.nan, out), dtype=float)
    if p.shape == (k,):
        cols = [p[j] for j in range(k)]
    else:
        expand = (slice(None),) + (np.newaxis,) * len(shape)
        cols = [p[:, j][expand] for j in range(k)]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if form == "constant":
            return np.asarray(np.where(nan, np.nan, cols[0] + np.zeros(shape)), dtype=float)
        if form in _POSITIVE_X_FORMS:
            layers = [np.log(np.maximum(layer, X_MIN_LOG)) for layer in layers]
        lin = cols[1] * layers[0]
        for j in range(1, len(layers)):
            lin = lin + cols[j + 1] * layers[j]
        out = cols[0] + lin if form in ("linear", "logarithmic") else cols[0] * np.exp(lin)
    return np.asarray(out, dtype=float)


def _ols(T: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """(a, b_1 .. b_p) of y = a + Σ b_j T_j by (weighted, weights ``w``) least squares (centred, stable)."""
    if T.shape[1] > 1:
        w = np.ones(y.size) if w is None else w
        sw = float(np.sum(w))
        tm, ym = (w @ T) / sw, float(np.dot(w, y)) / sw
        r = np.sqrt(w)
        b, *_ = np.linalg.lstsq(r[:, None] * (T - tm), r * (y - ym), rcond=None)
        return np.concatenate([[ym - float(tm @ b)], b])
    t = T[:, 0]
    if w is None:
        tm, ym = t.mean(), y.mean()
        dt = t - tm
        b = float(np.dot(dt, y - ym) / np.dot(dt, dt))
    else:
        sw = float(np.sum(w))
        tm, ym = float(np.dot(w, t)) / sw, float(np.dot(w, y)) / sw
        dt = t - tm
        b = float(np.dot(w * dt, y - ym) / np.dot(w * dt, dt))
    return np.array([ym - b * tm, b])


def _a_exp_bt(T: np.ndarray, a: float, *b: float) -> np.ndarray:
    """a*exp(Σ b_j T_j) with T of shape (p, n) (curve_fit's xdata layout)."""
    return a * np.exp(np.asarray(b) @ T)


def _a_exp_bt_jac(T: np.ndarray, a: float, *b: float) -> np.ndarray:
    e = np.exp(np.asarray(b) @ T)
    return np.column_stack([e, *(a * t * e for t in T)])


def _fit_a_exp_bt(
    form: str, T: np.ndarray, y: np.ndarray, sigma: np.ndarray | None = None, p0: np.ndarray | None = None
) -> np.ndarray:
    """Power (T = ln X) and exponential (T = X) forms, both C = a*exp(Σ b_j T_j), by NLS in C space.

    ``sigma`` (per-plot error scale) weights the squared residuals by 1/sigma²; ``p0`` is the start
    (by default the log-linear fit)."""
    p = T.shape[1]
    if p0 is None:
        p0 = np.concatenate([[max(float(np.mean(y)), 1e-6)], np.zeros(p)])
        pos = y > 0
        if np.count_nonzero(pos) >= p + 1 and np.all(np.ptp(T[pos], axis=0) > 0):
            start = _ols(T[pos], np.log(y[pos]))
            if math.isfinite(start[0]) and start[0] < 700 and np.all(np.isfinite(start[1:])):
                p0 = np.concatenate([[math.exp(start[0])], start[1:]])
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", under="ignore"):
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            popt, _ = curve_fit(_a_exp_bt, T.T, y, p0=p0, sigma=sigma, jac=_a_exp_bt_jac, method="lm", maxfev=2000)
        except (RuntimeError, ValueError, FloatingPointError) as err:
            raise ModelError(
                f"{form} fit must converge. Got no solution from non-linear least squares ({err}) "
                "instead. Another form will be used; check the plots for outliers."
            ) from err
        fitted = _a_exp_bt(T.T, *popt)
    if not np.all(np.isfinite(fitted)):
        raise ModelError(
            f"{form} fit must give finite predictions at the plots. Got parameters {np.round(popt, 4).tolist()} "
            "instead. Another form will be used; check the plots for outliers."
        )
    return np.asarray(popt, dtype=float)


# ---------------------------------------------------------------------------------------------
# Spatially blocked cross-validation


def spatial_block_ids(xy_m: np.ndarray, block_size_m: float) -> np.ndarray:
    """Block index (0 .. n_blocks-1) of each plot on a square grid of ``block_size_m`` anchored at (0, 0).

    Blocks are numbered in (column, row) order of their grid cell, so the numbering does not
    depend on plot order.
    """
    xy = _as_xy_m(xy_m)
    if not (isinstance(block_size_m, int | float | np.number) and math.isfinite(block_size_m) and block_size_m > 0):
        raise ModelError(
            f"block_size_m must be a number of metres > 0. Got {block_size_m!r} instead. "
            "Set it to about the range of spatial correlation of carbon, e.g. 1000."
        )
    cells = np.floor(xy / float(block_size_m)).astype(np.int64)
    if cells.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(cells, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def describe_folds(xy_m: np.ndarray, block_size_m: float, n_folds: int) -> dict[str, Any]:
    """How :func:`spatial_folds` splits these plots: the companion that reports the fallback.

    Returns {"scheme": "spatial_blocks" | "plots", "n_blocks", "n_folds", "block_size_m"}; scheme
    "plots" means all plots lie in one block and folds were made over individual plots, so the CV
    is not spatially blocked (and is optimistic).
    """
    _check_n_folds(n_folds)
    blocks = spatial_block_ids(xy_m, block_size_m)
    n_blocks = int(blocks.max()) + 1 if blocks.size else 0
    if n_blocks > 1:
        return {"scheme": "spatial_blocks", "n_blocks": n_blocks, "n_folds": min(n_folds, n_blocks),
                "block_size_m": float(block_size_m)}
    return {"scheme": "plots", "n_blocks": n_blocks, "n_folds": min(n_folds, int(blocks.size)),
            "block_size_m": float(block_size_m)}


def spatial_folds(xy_m: np.ndarray, block_size_m: float, n_folds: int, seed: int) -> np.ndarray:
    """Spatially blocked CV fold id (0 .. k-1) per plot; ``xy_m`` is (n, 2) plot locations in metres.

    Plots are grouped into square blocks of ``block_size_m`` on a grid anchored at (0, 0). The
    blocks are shuffled with ``seed``, then dealt, largest first (a stable sort, so equal-sized
    blocks keep their shuffled order), each to the fold with the fewest plots so far (ties to the
    lowest fold id): k = min(n_folds, number of non-empty blocks) and every fold gets at least one
    block. A block is never split, so no plot is in the training and test set of one fold.

    With a single block the folds cannot be spatial: k = min(n_folds, n) folds are then made over
    individual plots (shuffled with ``seed``, dealt round-robin). :func:`describe_folds` reports
    which scheme was used.
    """
    _check_n_folds(n_folds)
    seed = _check_seed(seed)
    blocks = spatial_block_ids(xy_m, block_size_m)
    n = blocks.size
    if n < 2:
        raise ModelError(
            f"cross-validation needs 2 or more plots. Got {n} instead. Add plots or use the coefficient table."
        )
    rng = np.random.default_rng(seed)
    n_blocks = int(blocks.max()) + 1
    if n_blocks == 1:
        k = min(n_folds, n)
        folds = np.empty(n, dtype=np.int64)
        folds[rng.permutation(n)] = np.arange(n) % k
        return folds
    k = min(n_folds, n_blocks)
    sizes = np.bincount(blocks, minlength=n_blocks)
    order = rng.permutation(n_blocks)
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_block = np.empty(n_blocks, dtype=np.int64)
    load = np.zeros(k, dtype=np.int64)
    for block in order:
        target = int(np.argmin(load))
        fold_of_block[block] = target
        load[target] += sizes[block]
    return fold_of_block[blocks]


def cross_validate(
    form: str, x: np.ndarray, y: np.ndarray, folds: np.ndarray, weighting: str = "relative",
    predictors: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Out-of-fold metrics of ``form``: each fold is predicted by a fit (with ``weighting``) on all other folds.

    ``x`` and ``predictors`` are as in :func:`fit_form`. Returns {"rmse_t_ha", "r2", "bias_t_ha"
    (mean prediction - observation), "rmse_rel" (root mean square of (observation -
    prediction)/prediction, a fraction; predictions floored at :data:`WEIGHT_FLOOR` × mean carbon),
    "n", "n_folds"} computed on the pooled out-of-fold predictions; R² = 1 - SS_res/SS_tot (None
    when all observations are equal). Raises :class:`ModelError` if a fold cannot be fitted.
    """
    _check_form(form, ALL_FORMS)
    weighting = _check_weighting(weighting)
    X, y = _as_Xy(x, y)
    preds = _check_predictor_names(predictors, X.shape[1])
    folds = np.asarray(folds)
    if folds.shape != y.shape or not np.issubdtype(folds.dtype, np.integer):
        raise ModelError(
            f"folds must be an integer fold id per plot, shape {y.shape}. Got dtype {folds.dtype}, "
            f"shape {folds.shape} instead. Make them with spatial_folds()."
        )
    fold_ids = np.unique(folds)
    if fold_ids.size < 2:
        raise ModelError(
            f"cross-validation needs 2 or more folds. Got {fold_ids.size} instead. "
            "Add plots in more blocks or make block_size_m smaller."
        )
    pred = np.empty_like(y)
    for fold in fold_ids:
        test = folds == fold
        try:
            params = fit_form(form, X[~test], y[~test], weighting, preds)
        except ModelError as err:
            raise ModelError(f"fold {int(fold)} of {fold_ids.size}: {err}") from err
        pred[test] = predict(form, params, _layers(X[test], preds), preds)
    if not np.all(np.isfinite(pred)):
        raise ModelError(
            f"{form} out-of-fold predictions must be finite. Got {int(np.sum(~np.isfinite(pred)))} non-finite "
            "instead. Another form will be used."
        )
    return {**_metrics(pred, y), "rmse_rel": _rmse_rel(pred, y), **_rmse_se(pred, y), "n": int(y.size),
            "n_folds": int(fold_ids.size)}


def _rmse_se(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """Standard errors of the CV RMSE and relative RMSE (delta method: SE(MSE) / (2 RMSE), SE(MSE) the
    standard error of the mean of the per-plot squared errors)."""
    floor = max(WEIGHT_FLOOR * float(np.mean(obs)), np.finfo(float).tiny)
    out = {}
    for key, err in (("rmse_t_ha_se", obs - pred), ("rmse_rel_se", (obs - pred) / np.maximum(pred, floor))):
        sq = err**2
        rmse = math.sqrt(float(np.mean(sq)))
        se_mse = float(np.std(sq, ddof=1)) / math.sqrt(sq.size) if sq.size > 1 else 0.0
        out[key] = se_mse / (2 * rmse) if rmse > 0 else 0.0
    return out


def _one_se_choice(entries: Sequence[tuple[tuple[int, int], dict[str, Any], Any]], criterion: str) -> Any:
    """The simplest entry whose CV error is within one standard error of the lowest (the one-SE rule).

    ``entries`` are (complexity, metrics, payload) in tie-break order; complexity is (number of
    predictors, 1 for the ensemble else 0). Among the simplest entries within the bound the lowest
    error wins, ties to the earlier entry; errors within :data:`TIE_RTOL` (relative) plus
    :data:`TIE_ATOL` are ties (every form fits a constant to ~1e-16, and that noise is no evidence)."""
    best = min(range(len(entries)), key=lambda i: entries[i][1][criterion])
    low = entries[best][1][criterion]
    tol = TIE_RTOL * abs(low) + TIE_ATOL  # errors this close are equal: floating noise must not break a tie
    bound = low + entries[best][1].get(f"{criterion}_se", 0.0) + tol
    ok = [i for i in range(len(entries)) if entries[i][1][criterion] <= bound]
    simplest = min(entries[i][0] for i in ok)
    ok = [i for i in ok if entries[i][0] == simplest]
    least = min(entries[i][1][criterion] for i in ok)
    pick = min(i for i in ok if entries[i][1][criterion] <= least + TIE_RTOL * abs(least) + TIE_ATOL)
    return entries[pick][2]


def _layers(X: np.ndarray, preds: Sequence[str]) -> np.ndarray:
    """(n, p) plot predictors in :func:`predict`'s layout: (n,) for one predictor, else (p, n)."""
    return X[:, 0] if len(preds) == 1 else X.T


def select_form(
    x: np.ndarray, y: np.ndarray, folds: np.ndarray, forms: Sequence[str] = FORMS, weighting: str = "relative",
    predictors: Sequence[str] | None = None,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The form with the lowest cross-validated error (ties to the earlier form in :data:`ALL_FORMS`).

    The error matches the fit's loss: with ``weighting`` "relative" the relative RMSE ("rmse_rel"),
    with "none" the RMSE in t C/ha ("rmse_t_ha"). Under multiplicative plot error an absolute
    RMSE is dominated by the few plots with the most carbon, and so is a noisy criterion.
    The one-standard-error rule guards against choosing flexibility on CV noise: the ensemble is
    chosen only if no parametric form is within one standard error ("rmse_rel_se" or
    "rmse_t_ha_se") of its error; the parametric forms, equally simple, compete on error alone.

    The second value maps every requested form to its :func:`cross_validate` metrics, or to
    {"skipped": reason} when the form cannot be fitted to all plots or to some fold. Raises
    :class:`ModelError` listing the reasons if no form could be fitted.
    """
    forms = _check_forms(forms)
    weighting = _check_weighting(weighting)
    X, y = _as_Xy(x, y)
    preds = _check_predictor_names(predictors, X.shape[1])
    criterion = _criterion(weighting)
    candidates: dict[str, dict[str, Any]] = {}
    for form in forms:
        try:
            fit_form(form, X, y, weighting, preds)  # domain and convergence on all plots
            candidates[form] = cross_validate(form, X, y, folds, weighting, preds)
        except ModelError as err:
            candidates[form] = {"skipped": str(err)}
    fitted = [f for f in ALL_FORMS if f in candidates and "skipped" not in candidates[f]]
    if not fitted:
        reasons = "; ".join(f"{f}: {c['skipped']}" for f, c in candidates.items())
        raise ModelError(
            f"at least one carbon model form must fit the plots. Got none of {list(forms)} on "
            f"{'+'.join(preds)} instead ({reasons}). Add plots spanning more predictor values and blocks, or use "
            "the coefficient table."
        )
    best = _one_se_choice([((len(preds), int(f == "ensemble")), candidates[f], f) for f in fitted], criterion)
    return best, candidates


def select_model(
    X: np.ndarray, y: np.ndarray, folds: np.ndarray, forms: Sequence[str], weighting: str,
    predictors: Sequence[str], sets: Sequence[Sequence[str]] | None = None,
) -> tuple[str, tuple[str, ...], dict[str, dict[str, Any]]]:
    """The (form, predictor set) with the lowest cross-validated error over every candidate set.

    ``X`` (n, p) holds the plots' values of ``predictors``; ``sets`` are the candidate predictor
    sets (default :func:`predictor_sets`), each a subset of ``predictors``. Every form is
    cross-validated on every set with the same folds and plots. The choice follows the
    one-standard-error rule: of the candidates whose error is within one standard error of the
    lowest, the simplest (fewest predictors, then parametric before ensemble) wins, and among equally
    simple ones the lowest error; ties go to the earlier set, then the earlier form. A predictor is
    thus added only when it lowers the CV error by more than its noise. The candidates map is keyed
    by form when there is one set, else by "form[ndvi+height]"; every entry names its "form" and
    "predictors". Raises :class:`ModelError` if no (form, set) could be fitted.
    """
    X, y = _as_Xy(X, y)
    preds = _check_predictor_names(predictors, X.shape[1])
    sets = predictor_sets(preds) if sets is None else [_check_predictor_names(s) for s in sets]
    criterion = _criterion(weighting)
    candidates: dict[str, dict[str, Any]] = {}
    entries: list[tuple[tuple[int, int], dict[str, Any], tuple[str, tuple[str, ...]]]] = []
    reasons = []
    for subset in sets:
        cols = [preds.index(q) for q in subset]
        try:
            form, cands = select_form(X[:, cols], y, folds, forms, weighting, subset)
        except ModelError as err:
            reasons.append(str(err))
            cands = {f: {"skipped": str(err)} for f in _check_forms(forms)}
            form = None
        for f, c in cands.items():
            label = f if len(sets) == 1 else f"{f}[{'+'.join(subset)}]"
            candidates[label] = {"form": f, "predictors": list(subset), **c}
        if form is not None:
            entries += [((len(subset), int(f == "ensemble")), cands[f], (f, tuple(subset)))
                        for f in ALL_FORMS if f in cands and "skipped" not in cands[f]]
    if not entries and len(reasons) == 1:
        raise ModelError(reasons[0])
    if not entries:
        raise ModelError(
            f"at least one carbon model form must fit the plots. Got none on any predictor set instead "
            f"({'; '.join(reasons)})."
        )
    form, chosen = _one_se_choice(entries, criterion)
    return form, chosen, candidates


def _criterion(weighting: str) -> str:
    return "rmse_rel" if weighting == "relative" else "rmse_t_ha"


def rival_candidates(
    X: np.ndarray, y: np.ndarray, predictors: Sequence[str], candidates: Mapping[str, Mapping[str, Any]],
    chosen: str, weighting: str,
) -> list[dict[str, Any]]:
    """The candidates the cross-validation cannot tell from the chosen one, and how much they differ.

    A rival is any other fitted candidate whose CV error lies within one standard error of the
    lowest (the band of the one-SE rule, :func:`select_model`). Each is refitted on all plots and
    compared with the chosen model (``chosen`` is its key in ``candidates``) at the plots, both
    floored at 0 as the carbon map floors them: the largest and the mean (signed, rival minus chosen)
    difference, in % of the chosen prediction (floored at :data:`WEIGHT_FLOOR` × mean carbon, as the
    relative errors are). Small differences mean the choice of form hardly matters for the
    predictions; large ones mean it does and more plots are needed to settle it. Listed by CV error;
    [] when no candidate is within the band. ``X`` (n, p) holds the plots' values of ``predictors``."""
    criterion = _criterion(weighting)
    scored = {k: c for k, c in candidates.items() if "skipped" not in c and criterion in c}
    if chosen not in scored:
        return []
    best = min(scored.values(), key=lambda c: c[criterion])
    bound = best[criterion] + best.get(f"{criterion}_se", 0.0)
    preds = list(predictors)

    def at_plots(form: str, names: Sequence[str]) -> np.ndarray:
        Xs = X[:, [preds.index(q) for q in names]]
        return np.maximum(predict(form, fit_form(form, Xs, y, weighting, names), _layers(Xs, names), names), 0.0)

    def names_of(c: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(c.get("predictors") or preds)

    ref = at_plots(scored[chosen]["form"], names_of(scored[chosen]))
    scale = np.maximum(ref, max(WEIGHT_FLOOR * float(np.mean(y)), np.finfo(float).tiny))
    out = []
    for label, c in sorted(scored.items(), key=lambda kv: kv[1][criterion]):
        if label == chosen or c[criterion] > bound:
            continue
        try:
            diff = (at_plots(c["form"], names_of(c)) - ref) / scale
        except ModelError:
            continue
        out.append({"candidate": label, "form": c["form"], "predictors": list(names_of(c)), criterion: c[criterion],
                    "max_difference_pct": float(100.0 * np.max(np.abs(diff))),
                    "mean_difference_pct": float(100.0 * np.mean(diff))})
    return out


# ---------------------------------------------------------------------------------------------
# Per-type models with bootstrap draws


def bootstrap_indices(n: int, n_bootstrap: int, seed: int, type_code: str) -> np.ndarray:
    """(n_bootstrap, n) resample indices into the plots of ``type_code`` sorted by plot_id.

    The generator is ``np.random.default_rng([seed, zlib.crc32(type_code)])``: it depends on the
    seed and the type only, so the same n gives the same indices in every year (paired draws).
    """
    return _type_rng(_check_seed(seed), type_code).integers(0, n, size=(n_bootstrap, n))


def fit_type_model(
    type_code: str,
    x: np.ndarray,
    y: np.ndarray,
    xy_m: np.ndarray,
    plot_ids: Sequence[Any],
    *,
    forms: Sequence[str] = FORMS,
    block_size_m: float = 1000.0,
    n_folds: int = 5,
    n_bootstrap: int = 200,
    seed: int = 0,
    weighting: str = "relative",
    predictors: Sequence[str] | None = None,
    sets: Sequence[Sequence[str]] | None = None,
    bootstrap: str = "plots",
    y_draws: np.ndarray | None = None,
) -> dict[str, Any]:
    """Choose the form (and predictor set) by spatially blocked CV, refit on all plots, and bootstrap the plots.

    ``y_draws`` (n_bootstrap, n), when plot carbon comes with draws of its own error (a tree
    inventory, :mod:`greensink.inventory`): bootstrap draw b uses the plots' carbon draw b in place
    of ``y`` (scheme "plots": the resampled plots' draw b; "residuals": the synthetic carbon plus the
    plot's y_draws[b] - y), so the curve draws carry that error, paired across years by draw index.
    Form choice, CV and the final fit use ``y``.

    ``weighting`` (see :func:`fit_form`) is used alike in the CV fits, the final fit and every
    bootstrap refit.

    ``x`` holds the plots' predictor values: (n,) for one predictor or (n, p) with columns named by
    ``predictors`` (default ["ndvi"]); ``sets`` are the candidate predictor sets (default every
    non-empty subset, :func:`predictor_sets`). ``y`` is carbon (t C/ha), ``xy_m`` (n, 2) plot
    locations in metres, ``plot_ids`` unique per plot. Plots are sorted by plot_id first; resample
    indices come from :func:`bootstrap_indices`. A draw that cannot be fitted is replaced by a fresh
    resample from a second generator derived from (seed, type_code), so the other draws stay paired
    across years; the number replaced is "n_bootstrap_redrawn". After 10 x n_bootstrap + 100
    failures a :class:`ModelError` is raised.

    ``bootstrap`` (:data:`BOOTSTRAPS`) "plots" refits the chosen candidate to each resample of the
    plots; "residuals" refits it to the same plots with carbon ŷ·(1 + r*) under relative weighting
    (r* resampled, with the same indices, from the relative residuals (y - ŷ)/ŷ) or ŷ + e* under
    "none" (e* from the residuals y - ŷ), ŷ the final fit. Either way the draws are parameter draws.

    Returns a JSON-serialisable dict: type, source ("plots"), form, predictors (the chosen set),
    params {name: value} (:func:`param_names` order), n, plot_ids (sorted), x_range (the plots'
    range of the predictor when the model has one, else None), predictor_ranges ({name: [min, max]}
    of the chosen predictors), fit (in-sample r2, rmse_t_ha, bias_t_ha), cv (the chosen candidate's
    CV metrics), cv_folds (:func:`describe_folds`), candidates, rivals (:func:`rival_candidates`; absent
    when only one candidate was cross-validated, as in a refit of an anchor year's choice), weighting, residual_sd_t_ha
    (residual standard error with n - k degrees of freedom, k = 1 + number of predictors, also for
    the ensemble, whose in-sample residuals are therefore somewhat optimistic), residual_rel_sd (the
    same of the relative residuals (y - ŷ)/ŷ, a fraction), residual_rel_quantiles (their 5th and
    95th percentiles: a single plot's carbon lies within ŷ × (1 + q05) .. ŷ × (1 + q95) about 90 %
    of the time), bootstrap (n_bootstrap rows of params), n_bootstrap_redrawn.
    """
    type_code = _check_type_code(type_code)
    _check_carbon(np.asarray(y, dtype=float).ravel(), plot_ids, where=f"type {type_code} plots")
    X, y = _as_Xy(x, y, error=InputDataError, where=f"type {type_code} plots")
    preds = _check_predictor_names(predictors, X.shape[1])
    xy = _as_xy_m(xy_m, error=InputDataError)
    ids = np.asarray(list(plot_ids), dtype=object)
    if xy.shape[0] != y.size or ids.size != y.size:
        raise InputDataError(
            f"type {type_code}: x, y, xy_m and plot_ids must describe the same plots. Got {y.size}, {y.size}, "
            f"{xy.shape[0]} and {ids.size} rows instead. Pass one row per plot."
        )
    _check_unique_ids(ids, where=f"type {type_code} plots")
    n_bootstrap = _check_count(n_bootstrap, "n_bootstrap", 0, "Use e.g. 200 draws.")
    if y_draws is not None:
        y_draws = np.asarray(y_draws, dtype=float)
        if y_draws.shape != (n_bootstrap, y.size) or not np.all(np.isfinite(y_draws)) or np.any(y_draws < 0):
            raise InputDataError(
                f"type {type_code}: y_draws must be finite carbon draws >= 0 of shape (n_bootstrap, plots) = "
                f"({n_bootstrap}, {y.size}). Got shape {y_draws.shape} instead. Make the plot carbon draws with "
                "model.n_bootstrap draws for every plot.")
    seed = _check_seed(seed)
    weighting = _check_weighting(weighting)
    bootstrap = _check_bootstrap(bootstrap)

    order = _sort_order(ids)
    X, y, xy, ids = X[order], y[order], xy[order], ids[order]
    if y_draws is not None:
        y_draws = y_draws[:, order]
    folds = spatial_folds(xy, block_size_m, n_folds, seed)
    fold_info = describe_folds(xy, block_size_m, n_folds)
    try:
        form, chosen, candidates = select_model(X, y, folds, forms, weighting, preds, sets)
    except ModelError as err:
        raise ModelError(f"type {type_code}: {err}") from err
    label = form if form in candidates else f"{form}[{'+'.join(chosen)}]"
    Xc = X[:, [preds.index(q) for q in chosen]]
    params = fit_form(form, Xc, y, weighting, chosen)
    fitted = predict(form, params, _layers(Xc, chosen), chosen)
    ss_res = float(np.sum((fitted - y) ** 2))
    dof = max(y.size - min(params.size, len(chosen) + 1), 1)  # an ensemble's tables count as 1 + p
    rel = (y - fitted) / np.maximum(fitted, max(WEIGHT_FLOOR * float(np.mean(y)), np.finfo(float).tiny))

    draws = np.empty((n_bootstrap, params.size))
    redraw_rng: np.random.Generator | None = None
    n_failed, max_failed = 0, 10 * n_bootstrap + 100
    floor = max(WEIGHT_FLOOR * float(np.mean(y)), np.finfo(float).tiny)
    for i, idx in enumerate(bootstrap_indices(y.size, n_bootstrap, seed, type_code)):
        y_b = y if y_draws is None else y_draws[i]  # plot carbon of draw i (its own error drawn, paired by i)
        while True:
            try:
                if bootstrap == "plots":
                    draws[i] = fit_form(form, Xc[idx], y_b[idx], weighting, chosen)
                elif weighting == "relative":
                    draws[i] = fit_form(form, Xc, np.maximum(fitted, floor) * (1.0 + rel[idx]) + (y_b - y), weighting, chosen)
                else:
                    draws[i] = fit_form(form, Xc, fitted + (y - fitted)[idx] + (y_b - y), weighting, chosen)
                break
            except ModelError as err:
                n_failed += 1
                if n_failed > max_failed:
                    raise ModelError(
                        f"type {type_code}: bootstrap refits of the {form} form must mostly succeed. Got "
                        f"{n_failed} failures for {i} successful draws instead (last: {err}). "
                        "Add plots or restrict forms to linear."
                    ) from err
                if redraw_rng is None:
                    redraw_rng = _type_rng(seed, type_code, _REDRAW_STREAM)
                idx = redraw_rng.integers(0, y.size, size=y.size)
    if n_failed:
        log.info("type %s: %d of %d bootstrap draws redrawn after failed %s fits",
                 type_code, n_failed, n_bootstrap, form)

    ranges = {q: [float(Xc[:, j].min()), float(Xc[:, j].max())] for j, q in enumerate(chosen)}
    rivals = rival_candidates(X, y, preds, candidates, label, weighting) if len(candidates) > 1 else None
    return {
        "type": type_code,
        "source": "plots",
        "form": form,
        "predictors": list(chosen),
        "params": dict(zip(param_names(form, chosen), (float(v) for v in params), strict=True)),
        "n": int(y.size),
        "plot_ids": [_py(v) for v in ids],
        "x_range": ranges[chosen[0]] if len(chosen) == 1 else None,
        "predictor_ranges": ranges,
        "fit": {**_metrics(fitted, y), "rmse_rel": _rmse_rel(fitted, y)},
        "cv": candidates[label],
        "cv_folds": fold_info,
        "candidates": candidates,
        **({} if rivals is None else {"rivals": rivals}),
        "weighting": weighting,
        "bootstrap_scheme": bootstrap,
        "residual_sd_t_ha": math.sqrt(ss_res / dof),
        "residual_rel_sd": math.sqrt(float(np.sum(rel**2)) / dof),
        "residual_rel_quantiles": [float(v) for v in np.quantile(rel, [0.05, 0.95])],
        "bootstrap": draws.tolist(),
        "n_bootstrap_redrawn": int(n_failed),
        "plot_carbon_draws": y_draws is not None,
    }


def fallback_type_model(
    type_code: str,
    density_t_ha: float,
    uncertainty_pct: float,
    n_plots: int,
    reason: str,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
    density_model: tuple[str, float, float] | None = None,
) -> dict[str, Any]:
    """Coefficient-table model: a constant density, or the table's density model of NDVI.

    Without ``density_model`` the form is "constant" with params {"c": density_t_ha} (t C/ha).
    With ``density_model`` = (form, a, b), one of the parametric forms of NDVI with the table's
    parameters (e.g. a published curve for the type), the model is that curve.

    Draws scale the estimate by s = 1 + (uncertainty_pct / 100 / 1.645) * z, z ~ N(0, 1) from
    ``default_rng([seed, crc32(type_code)])``, so their 5-95 % span is about estimate × (1 ±
    uncertainty_pct/100) at every NDVI (a constant: c s; linear and logarithmic: a s, b s; power
    and exponential: a s, b); uncertainty_pct 0 gives identical draws. Draws may be < 0 when
    uncertainty_pct > ~164 (the caller floors). Keys without meaning here are None: x_range, fit,
    cv, cv_folds, weighting, residual_sd_t_ha, residual_rel_sd, residual_rel_quantiles (the table
    gives no residual spread; all uncertainty is in the draws).
    """
    type_code = _check_type_code(type_code)
    c = _check_number(density_t_ha, f"type {type_code}: density_t_ha", "Fix the coefficient table.")
    u = _check_number(uncertainty_pct, f"type {type_code}: uncertainty_pct", "Fix the coefficient table.")
    n_bootstrap = _check_count(n_bootstrap, "n_bootstrap", 0, "Use e.g. 200 draws.")
    n_plots = _check_count(n_plots, "n_plots", 0, "Pass the number of plots of the type.")
    z = _type_rng(_check_seed(seed), type_code).standard_normal(n_bootstrap)
    scale = 1.0 + (u / 100.0 / 1.645) * z
    if density_model is None:
        form, params = "constant", {"c": c}
        draws = [[float(c * v)] for v in scale]
    else:
        form, pa, pb = density_model
        _check_form(form, FORMS)
        params = {"a": float(pa), "b": float(pb)}
        if form in ("linear", "logarithmic"):
            draws = [[float(pa * v), float(pb * v)] for v in scale]
        else:
            draws = [[float(pa * v), float(pb)] for v in scale]
    return {
        "type": type_code,
        "source": "coefficients",
        "form": form,
        "predictors": ["ndvi"],
        "params": params,
        "n": n_plots,
        "reason": str(reason),
        "uncertainty_pct": u,
        "plot_ids": [],
        "x_range": None,
        "predictor_ranges": None,
        "fit": None,
        "cv": None,
        "cv_folds": None,
        "candidates": {},
        "weighting": None,
        "residual_sd_t_ha": None,
        "residual_rel_sd": None,
        "residual_rel_quantiles": None,
        "bootstrap": draws,
        "n_bootstrap_redrawn": 0,
    }


def fit_models(
    plots: pd.DataFrame,
    coefficients: pd.DataFrame | None,
    *,
    types: Sequence[str],
    min_plots: int = 10,
    forms: Sequence[str] = FORMS,
    block_size_m: float = 1000.0,
    n_folds: int = 5,
    n_bootstrap: int = 200,
    seed: int = 0,
    weighting: str = "relative",
    predictors: Sequence[str] = ("ndvi",),
    bootstrap: str = "plots",
    anchor: dict[str, Any] | None = None,
    carbon_draws: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Carbon models of every green-space type in ``types`` for one year (JSON-serialisable dict).

    ``carbon_draws`` (index plot_id as text, ``n_bootstrap`` columns, t C/ha), when plot carbon
    comes from a tree inventory: every refit of a type passes its plots' rows as ``y_draws`` to
    :func:`fit_type_model`. Every plot fitted must have a row.

    ``anchor`` (model.selection "first_year") is the result of this function for the first
    reporting year: a type whose anchor model was fitted to plots keeps the anchor's form and
    predictor set (and its companion's form) and only refits the coefficients to this year's plots,
    so a change of stock between years is not an artefact of a different model being chosen. Its
    CV metrics are still computed; "selection" records the anchor. If the anchored candidate cannot
    be fitted this year, the type is chosen afresh and "selection" says why.

    ``weighting`` is the least-squares weighting of :func:`fit_form` ("relative" or "none"),
    ``bootstrap`` the scheme of :func:`fit_type_model` ("plots" or "residuals").
    ``predictors`` (from :data:`PREDICTORS`) are the remote-sensing predictors; every non-empty
    subset of them is a candidate predictor set (:func:`predictor_sets`).

    ``plots`` has columns plot_id, type, carbon_t_ha, x_m, y_m (metres, projected CRS) and one
    column per predictor, named like it ("ndvi", "fvc", "canopy", "height"; with the single
    predictor ["ndvi"] a column "x" is accepted instead). ``coefficients`` has type, c_above,
    c_below (t C/ha) and uncertainty_pct (c_soil, c_dead are ignored here), and optionally a density
    model per type in model_form, model_a, model_b (a form of NDVI, see :func:`fallback_type_model`),
    or is None when there is no table.

    A type with >= ``min_plots`` plots that have every predictor gets :func:`fit_type_model` on
    those plots. When the chosen set is not NDVI alone and "ndvi" is a predictor, an NDVI-only model
    of the type is also fitted on every plot with NDVI and kept as "ndvi_only": it serves the pixels
    where a chosen predictor has no value (e.g. outside the canopy height model). A type with too few
    plots with every predictor but enough with NDVI gets the NDVI-only model, saying so in
    "note". Otherwise, or when no form can be fitted (the error is kept as "fit_error"), the type
    gets :func:`fallback_type_model`: the table's density model when its row has one, else the
    density c_above + c_below, with a reason naming the counts. Plots without every predictor are
    counted as "n_dropped_no_predictor". Plots of types not in ``types`` are ignored (logged).

    A chosen model worse than the plots' mean in CV (:func:`worse_than_mean`: CV R² < 0) is not
    used when the type has a row in the coefficient table: the type falls back to the table like
    a type with too few plots, its "reason" says why and "rejected_model" keeps the rejected
    model's form, predictors, params, n and cv. Without a row the model is kept. Either way every
    type has "cv_worse_than_mean" (bool) and "warnings" (texts, each also logged as a WARNING).

    Raises :class:`InputDataError` listing every plot with carbon not a finite number >= 0, a
    non-numeric predictor, a missing location, or a duplicate plot_id; :class:`ModelError` for a type
    that needs the coefficient table and has no row in it.
    """
    if isinstance(types, str):
        raise ModelError(f"types must be a list of type codes. Got the string {types!r} instead. Write [{types!r}].")
    codes = sorted({_check_type_code(t) for t in types})
    if not codes:
        raise ModelError("types must name at least one green-space type. Got none instead. List e.g. G1 G2 G3 XG EG.")
    min_plots = _check_count(min_plots, "min_plots", 3, "Use e.g. 10 plots per type.")
    forms = _check_forms(forms)
    weighting = _check_weighting(weighting)
    preds = _check_predictor_names(predictors)
    table = _validate_plots(plots, preds)
    coef = _validate_coefficients(coefficients)
    fit_kw = {"forms": forms, "block_size_m": block_size_m, "n_folds": n_folds, "n_bootstrap": n_bootstrap,
              "seed": seed, "weighting": weighting, "bootstrap": _check_bootstrap(bootstrap)}

    other = sorted(set(table["type"]) - set(codes))
    if other:
        log.info("ignoring %d plots of types %s not in types %s",
                 int(table["type"].isin(other).sum()), other, codes)

    def fit(code: str, used: pd.DataFrame, names: tuple[str, ...], form: str | None = None) -> dict[str, Any]:
        kw = fit_kw if form is None else {**fit_kw, "forms": (form,)}
        return fit_type_model(
            code, used[list(names)].to_numpy(dtype=float), used["carbon_t_ha"].to_numpy(dtype=float),
            used[["x_m", "y_m"]].to_numpy(dtype=float), used["plot_id"].tolist(), predictors=names,
            sets=None if form is None else [names], y_draws=plot_draws(code, used), **kw)

    def plot_draws(code: str, used: pd.DataFrame) -> np.ndarray | None:
        if carbon_draws is None:
            return None
        ids = used["plot_id"].astype(str)
        lost = sorted(set(ids) - set(carbon_draws.index.astype(str)))
        if lost:
            raise InputDataError(f"type {code}: plots {lost[:10]} have no carbon draws. Make the draws for every plot "
                                 "(rule plot_carbon).")
        return carbon_draws.loc[ids.to_numpy()].to_numpy(dtype=float).T

    anchor_year = anchor.get("year") if anchor else None
    anchor_types = (anchor or {}).get("types") or {}

    def finite(sub: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
        return np.all(np.isfinite(sub[list(names)].to_numpy(dtype=float)), axis=1)

    def with_companion(code: str, sub: pd.DataFrame, model: dict[str, Any], form: str | None = None) -> dict[str, Any]:
        """Add the NDVI-only companion (form fixed when given) unless the model is on NDVI alone."""
        if model["predictors"] == ["ndvi"] or "ndvi" not in preds:
            return model
        try:
            model["ndvi_only"] = _strip_nested(fit(code, sub[finite(sub, ("ndvi",))], ("ndvi",), form))
        except ModelError as err:
            model["ndvi_only"] = None
            model["ndvi_only_error"] = str(err)
        return model

    def anchored(code: str, sub: pd.DataFrame) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The type's refit of the anchor year's choice (or None) and the "selection" record saying why."""
        selection: dict[str, Any] = {"mode": "per_year"}
        if anchor is not None:
            selection["anchor_year"] = anchor_year
        fixed = anchor_types.get(code)
        if fixed is None:
            return None, selection
        names = tuple(fixed.get("predictors") or ("ndvi",))
        what = f"the {anchor_year} choice ({fixed.get('form')} on {'+'.join(names)})"
        if fixed.get("source") != "plots":
            return None, {**selection, "reason": f"the {anchor_year} model used the coefficient table; chosen afresh"}
        if not all(q in preds for q in names):
            return None, {**selection, "reason": f"{what} uses predictors not in model.predictors {list(preds)}; "
                                                 "chosen afresh"}
        has = finite(sub, names)
        try:
            if int(has.sum()) < min_plots:
                raise ModelError(f"{int(has.sum())} plots with {'+'.join(names)} < min_plots {min_plots}")
            model = fit(code, sub[has], names, fixed["form"])
        except ModelError as err:
            return None, {**selection, "reason": f"{what} could not be refitted ({err}); chosen afresh"}
        model = with_companion(code, sub, model, (fixed.get("ndvi_only") or {}).get("form"))
        return model, {"mode": "first_year", "anchor_year": anchor_year, "form": fixed["form"], "predictors": list(names)}

    out_types: dict[str, dict[str, Any]] = {}
    for code in codes:
        sub = table[table["type"] == code]
        has_x = finite(sub, preds)
        n_ok = int(has_x.sum())
        model: dict[str, Any] | None = None
        failures: list[tuple[str, str]] = []  # (the plots a failed fit used, its error)
        model, selection = anchored(code, sub)
        if model is None and n_ok >= min_plots:
            try:
                model = fit(code, sub[has_x], preds)
                names = tuple(model["predictors"])
                has = finite(sub, names)
                if int(has.sum()) > n_ok:  # more plots have the chosen predictors than all of them
                    refit = fit(code, sub[has], names, model["form"])
                    refit["candidates"], refit["selected_on_n"] = model["candidates"], n_ok
                    if "rivals" in model:
                        refit["rivals"] = model["rivals"]
                    model = refit
                model = with_companion(code, sub, model)
            except ModelError as err:
                model = None
                failures.append((f"{n_ok} plots" + (" with every predictor" if len(preds) > 1 else ""), str(err)))
        if model is None and preds != ("ndvi",) and "ndvi" in preds:
            has = finite(sub, ("ndvi",))
            if int(has.sum()) >= min_plots:
                try:
                    model = fit(code, sub[has], ("ndvi",))
                    model["note"] = (f"NDVI-only model from {int(has.sum())} plots: " + (
                        f"only {n_ok} plots had every predictor {list(preds)} (< min_plots {min_plots})"
                        if n_ok < min_plots else "no model on the other predictor sets could be fitted"))
                except ModelError as err:
                    failures.append((f"{int(has.sum())} plots with NDVI", str(err)))
        if model is None and failures and code not in coef.index:
            raise ModelError("; ".join(err for _, err in failures))
        worse = worse_than_mean(model)  # CV R² < 0: falls back to the table when it has a row, else kept and flagged
        rejected, model = (model, None) if worse and code in coef.index else (None, model)
        n_dropped = int((~has_x).sum())
        dropped_note = f" ({n_dropped} more plots had no value of some predictor)" if n_dropped else ""
        fit_error = "; ".join(f"{used}: {err}" if len(failures) > 1 else err for used, err in failures) or None
        why = (worse if rejected is not None else
               f"no model form could be fitted to {' or '.join(used for used, _ in failures)}{dropped_note}"
               if failures else f"{n_ok} plots < min_plots {min_plots}{dropped_note}")
        if model is None:
            if code not in coef.index:
                raise ModelError(
                    f"type {code} needs the coefficient table: {why}. Got no row for {code} in the coefficient "
                    f"table instead. Add a row for {code} (type, c_above, c_below, c_soil, c_dead, "
                    f"uncertainty_pct) or add plots of {code}."
                )
            row = coef.loc[code]
            density = float(row["c_above"] + row["c_below"])
            dm = row.get("model_form")
            if isinstance(dm, str) and dm:
                curve = (dm, float(row["model_a"]), float(row["model_b"]))
                reason = (f"{why}: using the coefficient table's density model ({dm}, a = {round(curve[1], 6)}, "
                          f"b = {round(curve[2], 6)}, C in t C/ha of NDVI)")
            else:
                curve = None
                reason = f"{why}: using coefficient table (c_above + c_below = {round(density, 6)} t C/ha)"
            model = fallback_type_model(code, density, float(row["uncertainty_pct"]), n_ok, reason,
                                        n_bootstrap=n_bootstrap, seed=seed, density_model=curve)
            if fit_error is not None:
                model["fit_error"] = fit_error
        model["cv_worse_than_mean"] = bool(worse)
        model["warnings"] = [] if not worse else [
            f"{worse}; the coefficient table is used instead" if rejected is not None else
            f"{worse}; kept, because the coefficient table has no row for {code}: its estimates are no better than the "
            f"plots' mean density. Add a row for {code} to the coefficient table, or add plots"]
        if rejected is not None:
            model["rejected_model"] = {k: rejected[k] for k in ("form", "predictors", "params", "n", "cv")}
        if model["source"] == "plots":
            n_dropped = int((~finite(sub, model["predictors"])).sum())
        model["n_dropped_no_predictor"] = n_dropped
        model["selection"] = selection
        out_types[code] = model
        if model["source"] == "plots":
            r2 = model["cv"]["r2"]
            log.info("type %s: %s form on %s from %d plots, CV RMSE %.3g t C/ha, R2 %s", code, model["form"],
                     "+".join(model["predictors"]), model["n"], model["cv"]["rmse_t_ha"],
                     "n/a" if r2 is None else f"{r2:.3f}")
        else:
            log.info("type %s: %s", code, model["reason"])
        for warning in model["warnings"]:
            log.warning("type %s: %s", code, warning)

    return {
        "predictor": "+".join(preds),
        "predictors": list(preds),
        "carbon_unit": "t C/ha",
        "min_plots": min_plots,
        "n_bootstrap": int(n_bootstrap),
        "seed": int(seed),
        "block_size_m": float(block_size_m),
        "n_folds": int(n_folds),
        "forms": list(forms),
        "weighting": weighting,
        "bootstrap": fit_kw["bootstrap"],
        "anchor_year": anchor_year,
        "types": out_types,
    }


def worse_than_mean(model: Mapping[str, Any] | None) -> str | None:
    """Why a model fitted to plots is worse than the plots' mean in cross-validation, or None.

    A model is worse than the mean when its out-of-fold R² is below 0: its pooled out-of-fold
    squared error exceeds the plots' squared deviation from their own mean (SS_res > SS_tot), so a
    constant at the plots' mean density would predict the held-out plots better. None for a model
    that is not fitted to plots, or whose R² is undefined (all plots alike)."""
    if not model or model.get("source") != "plots":
        return None
    r2 = (model.get("cv") or {}).get("r2")
    if r2 is None or not r2 < 0:
        return None
    return (f"the chosen {model['form']} model on {'+'.join(model['predictors'])} from {model['n']} plots has "
            f"cross-validated R² {r2:.3f} < 0: it predicts held-out plots worse than the plots' mean density")


def _strip_nested(model: dict[str, Any]) -> dict[str, Any]:
    """An "ndvi_only" companion model without the fields the main model already states."""
    return {k: v for k, v in model.items() if k not in ("type", "source", "plot_ids", "cv_folds")}


def model_predictors(type_model: dict[str, Any]) -> tuple[str, ...]:
    """The predictors a type model is evaluated on (["ndvi"] for models written before predictors existed)."""
    return tuple(type_model.get("predictors") or ("ndvi",))


def used_predictors(models: dict[str, Any], types: Sequence[str]) -> list[str]:
    """Every predictor the models of ``types`` need, NDVI always included, in :data:`PREDICTORS` order."""
    need = {"ndvi"}
    for t in types:
        tm = _type_model(models, t)
        need.update(model_predictors(tm))
    return [q for q in PREDICTORS if q in need]


def predict_type(model: dict[str, Any], type_code: str, x: np.ndarray) -> np.ndarray:
    """Point-estimate carbon density (t C/ha, raw) of a type of a :func:`fit_models` result.

    ``x`` is laid out as in :func:`predict` for the type's predictors (:func:`model_predictors`)."""
    tm = _type_model(model, type_code)
    preds = model_predictors(tm)
    params = [tm["params"][name] for name in param_names(tm["form"], preds)]
    return predict(tm["form"], np.asarray(params, dtype=float), x, preds)


def predict_draws(model: dict[str, Any], type_code: str, x: np.ndarray) -> np.ndarray:
    """(B, *shape) carbon density (t C/ha, raw) of the type's B bootstrap draws of a :func:`fit_models` result."""
    tm = _type_model(model, type_code)
    preds = model_predictors(tm)
    k = len(param_names(tm["form"], preds))
    draws = np.asarray(tm["bootstrap"], dtype=float).reshape(-1, k)
    return predict(tm["form"], draws, x, preds)


# ---------------------------------------------------------------------------------------------
# Validation and helpers


def _type_model(model: dict[str, Any], type_code: str) -> dict[str, Any]:
    types = model.get("types", {}) if isinstance(model, dict) else {}
    if type_code not in types:
        raise ModelError(
            f"type_code must be a type of the model. Got {type_code!r} instead; the model has {sorted(types)}. "
            "Add the type to `types` when fitting or fix the type code."
        )
    return types[type_code]


def _metrics(pred: np.ndarray, obs: np.ndarray) -> dict[str, Any]:
    resid = pred - obs
    ss_res = float(np.sum(resid**2))
    ss_tot = float(np.sum((obs - obs.mean()) ** 2))
    return {
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else None,
        "rmse_t_ha": math.sqrt(ss_res / obs.size),
        "bias_t_ha": float(resid.mean()),
    }


def _rmse_rel(pred: np.ndarray, obs: np.ndarray) -> float:
    """Root mean square of (obs - pred)/pred, pred floored at WEIGHT_FLOOR x mean(obs) (> 0)."""
    floor = max(WEIGHT_FLOOR * float(np.mean(obs)), np.finfo(float).tiny)
    return math.sqrt(float(np.mean(((obs - pred) / np.maximum(pred, floor)) ** 2)))


def _type_rng(seed: int, type_code: str, stream: int | None = None) -> np.random.Generator:
    entropy = [seed, zlib.crc32(type_code.encode())]
    if stream is not None:
        entropy.append(stream)
    return np.random.default_rng(entropy)


def _check_form(form: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if form not in allowed:
        raise ModelError(f"form must be one of {', '.join(allowed)}. Got {form!r} instead. Fix the form name.")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...], fix: str) -> str:
    if value not in allowed:
        raise ModelError(f"{name} must be one of {', '.join(allowed)}. Got {value!r} instead. {fix}")
    return str(value)


def _check_bootstrap(scheme: Any) -> str:
    return _check_choice("bootstrap", scheme, BOOTSTRAPS, "Use plots (resample whole plots, the default) or "
                         "residuals (resample the residuals of the fit).")


def _check_weighting(weighting: Any) -> str:
    return _check_choice("weighting", weighting, WEIGHTINGS, "Use relative for plot errors proportional to carbon "
                         "(the usual case), none for constant errors.")


def _check_forms(forms: Sequence[str]) -> tuple[str, ...]:
    if isinstance(forms, str):
        forms = (forms,)
    forms = tuple(dict.fromkeys(forms))
    if not forms:
        raise ModelError(f"forms must list at least one of {', '.join(ALL_FORMS)}. Got none instead.")
    for form in forms:
        _check_form(form, ALL_FORMS)
    return forms


def _check_type_code(code: Any) -> str:
    if not isinstance(code, str) or not code:
        raise ModelError(f"type code must be a non-empty string such as 'G1'. Got {code!r} instead.")
    return code


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ModelError(f"seed must be an integer >= 0. Got {seed!r} instead. Set e.g. seed: 0.")
    return int(seed)


def _check_n_folds(n_folds: Any) -> int:
    return _check_count(n_folds, "n_folds", 2, "Use e.g. 5 folds.")


def _check_count(value: Any, name: str, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ModelError(f"{name} must be an integer >= {minimum}. Got {value!r} instead. {fix}")
    return int(value)


def _check_number(value: Any, name: str, fix: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v >= 0):
        raise ModelError(f"{name} must be a finite number >= 0. Got {value!r} instead. {fix}")
    return v


def _check_predictor_names(predictors: Sequence[str] | None, n_columns: int | None = None) -> tuple[str, ...]:
    """Predictor names as a tuple; None means ("ndvi",) for one column. Raises ModelError for unknown,
    repeated or miscounted names."""
    if predictors is None:
        if n_columns not in (None, 1):
            raise ModelError(
                f"predictors must name the {n_columns} predictor columns of x. Got None instead. "
                f"Pass e.g. predictors={list(PREDICTORS[:n_columns])}."
            )
        return ("ndvi",)
    if isinstance(predictors, str):
        predictors = (predictors,)
    preds = tuple(str(q) for q in predictors)
    unknown = [q for q in preds if q not in PREDICTORS]
    if not preds or unknown or len(set(preds)) != len(preds):
        raise ModelError(
            f"predictors must be distinct names from {', '.join(PREDICTORS)}. Got {list(preds)} instead. "
            "Fix model.predictors."
        )
    if n_columns is not None and len(preds) != n_columns:
        raise ModelError(
            f"predictors must name every column of x. Got {len(preds)} names {list(preds)} for {n_columns} "
            "columns instead. Pass one name per column."
        )
    return preds


def _predictor_label(name: str) -> str:
    return "NDVI" if name == "ndvi" else "FVC" if name == "fvc" else name


def predictor_sets(predictors: Sequence[str]) -> list[tuple[str, ...]]:
    """Candidate predictor sets: every non-empty subset of ``predictors``, smallest first, each in
    the given order (["ndvi", "height"] -> ndvi; height; ndvi+height)."""
    preds = _check_predictor_names(predictors)
    return [c for r in range(1, len(preds) + 1) for c in combinations(preds, r)]


def _as_Xy(
    x: Any, y: Any, *, error: type[Exception] = ModelError, where: str = "plots"
) -> tuple[np.ndarray, np.ndarray]:
    """x as an (n, p) float array (a 1-D x is one predictor) and y as (n,); both finite."""
    X = np.asarray(x, dtype=float)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise error(
            f"{where}: x must be (n,) or (n, p) and y (n,), one row per plot. Got shapes {np.shape(x)} and "
            f"{y.shape} instead. Pass one value per plot."
        )
    bad = ~(np.all(np.isfinite(X), axis=1) & np.isfinite(y))
    if bad.any():
        raise error(
            f"{where}: x and y must be finite. Got {int(bad.sum())} plots with NaN or infinite values "
            f"(first at position {int(np.argmax(bad))}) instead. Drop plots without a predictor first."
        )
    return X, y


def _as_xy_m(xy_m: Any, *, error: type[Exception] = ModelError) -> np.ndarray:
    xy = np.asarray(xy_m, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise error(f"xy_m must be an (n, 2) array of plot x, y in metres. Got shape {xy.shape} instead.")
    if not np.all(np.isfinite(xy)):
        raise error(
            f"xy_m must be finite plot coordinates in metres. Got {int((~np.isfinite(xy)).any(axis=1).sum())} "
            "plots with NaN or infinite coordinates instead. Give every plot a location."
        )
    return xy


def _check_carbon(y: np.ndarray, plot_ids: Sequence[Any], where: str) -> None:
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0))
    if bad.size:
        ids = list(plot_ids)
        listed = [(ids[i] if i < len(ids) else i, y[i]) for i in bad]
        raise InputDataError(_carbon_message(where, listed))


def _carbon_message(where: str, listed: list[tuple[Any, Any]]) -> str:
    shown = ", ".join(f"{v!r} at plot_id {_py(pid)!r}" for pid, v in listed[:_MAX_LISTED])
    more = f" and {len(listed) - _MAX_LISTED} more" if len(listed) > _MAX_LISTED else ""
    return (
        f"{where}: carbon_t_ha must be a finite number >= 0 (t C/ha). Got {shown}{more} instead. "
        "Correct these plots or remove them from the plot table."
    )


def _check_unique_ids(ids: np.ndarray, where: str) -> None:
    dup = [(k, c) for k, c in Counter(_py(v) for v in ids).items() if c > 1]
    if dup:
        shown = ", ".join(f"{k!r} ({c} times)" for k, c in dup[:_MAX_LISTED])
        raise InputDataError(
            f"{where}: plot_id must be unique. Got {shown} instead. Give every plot its own id "
            "(filter the plot table to one year first)."
        )


def _sort_order(ids: np.ndarray) -> np.ndarray:
    keys = [_py(v) for v in ids]
    try:
        return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.intp)
    except TypeError:  # mixed id types: order by their text
        return np.array(sorted(range(len(keys)), key=lambda i: str(keys[i])), dtype=np.intp)


def _py(value: Any) -> Any:
    """A plain Python scalar (JSON-serialisable) for a numpy scalar."""
    return value.item() if isinstance(value, np.generic) else value


def _validate_plots(plots: pd.DataFrame, predictors: tuple[str, ...] = ("ndvi",)) -> pd.DataFrame:
    """Numeric copy of the plot table with one column per predictor; raises InputDataError listing every problem."""
    source = {q: q for q in predictors}
    if predictors == ("ndvi",) and "ndvi" not in plots.columns and "x" in plots.columns:
        source["ndvi"] = "x"
    required = ("plot_id", "type", *source.values(), "carbon_t_ha", "x_m", "y_m")
    missing = [c for c in required if c not in plots.columns]
    if missing:
        raise InputDataError(
            f"plots must have columns {', '.join(required)}. Got no {', '.join(missing)} instead "
            f"(columns: {', '.join(map(str, plots.columns))}). Rename or add the columns."
        )
    table = pd.DataFrame({"plot_id": plots["plot_id"].to_numpy(), "type": plots["type"].astype(str).to_numpy()})
    for col in ("carbon_t_ha", "x_m", "y_m"):
        table[col] = pd.to_numeric(plots[col], errors="coerce").to_numpy(dtype=float)
    for q, col in source.items():
        table[q] = pd.to_numeric(plots[col], errors="coerce").to_numpy(dtype=float)
    ids = table["plot_id"].tolist()
    problems: list[str] = []

    carbon = table["carbon_t_ha"].to_numpy()
    raw_carbon = plots["carbon_t_ha"].tolist()
    bad = np.flatnonzero(~np.isfinite(carbon) | (carbon < 0))
    if bad.size:
        problems.append(_carbon_message("plots", [(ids[i], _py(raw_carbon[i])) for i in bad]))

    for q, col in source.items():
        raw_x = plots[col].tolist()
        bad_x = [i for i in np.flatnonzero(~np.isfinite(table[q].to_numpy())) if not pd.isna(raw_x[i])]
        if bad_x:
            shown = ", ".join(f"{_py(raw_x[i])!r} at plot_id {_py(ids[i])!r}" for i in bad_x[:_MAX_LISTED])
            problems.append(
                f"plots: {col} ({_predictor_label(q)}) must be a finite number or missing (NaN). Got {shown} instead. "
                "Fix the sampled predictor values."
            )

    has_x = np.any(np.isfinite(table[list(source)].to_numpy()), axis=1)
    no_loc = np.flatnonzero(has_x & ~np.isfinite(table[["x_m", "y_m"]].to_numpy()).all(axis=1))
    if no_loc.size:
        shown = ", ".join(repr(_py(ids[i])) for i in no_loc[:_MAX_LISTED])
        problems.append(
            f"plots: x_m and y_m must be finite coordinates in metres. Got missing or non-numeric values at "
            f"plot_id {shown} instead. Give every plot a location in the run's projected CRS."
        )

    try:
        _check_unique_ids(table["plot_id"].to_numpy(dtype=object), "plots")
    except InputDataError as err:
        problems.append(str(err))
    if problems:
        raise InputDataError("\n".join(problems))
    return table


def _validate_coefficients(coefficients: pd.DataFrame | None) -> pd.DataFrame:
    """Coefficient rows indexed by type; raises InputDataError listing every problem found.

    The optional density model columns model_form, model_a, model_b: a row with model_form set
    (one of the parametric forms of NDVI) must have finite model_a and model_b; an empty model_form
    means the row has no density model."""
    if coefficients is None:
        return pd.DataFrame(columns=list(COEFFICIENT_COLUMNS[1:]), index=pd.Index([], name="type"))
    missing = [c for c in COEFFICIENT_COLUMNS if c not in coefficients.columns]
    if missing:
        raise InputDataError(
            f"coefficients must have columns {', '.join(COEFFICIENT_COLUMNS)}. Got no {', '.join(missing)} "
            f"instead (columns: {', '.join(map(str, coefficients.columns))}). Rename or add the columns."
        )
    table = pd.DataFrame({"type": coefficients["type"].astype(str).to_numpy()})
    problems: list[str] = []
    for col in COEFFICIENT_COLUMNS[1:]:
        values = pd.to_numeric(coefficients[col], errors="coerce").to_numpy(dtype=float)
        table[col] = values
        for i in np.flatnonzero(~np.isfinite(values) | (values < 0)):
            problems.append(
                f"coefficients type {table['type'].iloc[i]}: {col} must be a finite number >= 0. "
                f"Got {_py(coefficients[col].iloc[i])!r} instead. Fix the coefficient table."
            )
    if "model_form" in coefficients.columns:
        forms = [("" if pd.isna(v) else str(v).strip()) for v in coefficients["model_form"]]
        table["model_form"] = forms
        for col in ("model_a", "model_b"):
            raw = coefficients[col] if col in coefficients.columns else pd.Series([np.nan] * len(forms))
            table[col] = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        for i, f in enumerate(forms):
            code = table["type"].iloc[i]
            if not f:
                continue
            if f not in FORMS:
                problems.append(
                    f"coefficients type {code}: model_form must be empty or one of {', '.join(FORMS)}. Got {f!r} "
                    "instead. Fix the coefficient table."
                )
                continue
            for col in ("model_a", "model_b"):
                if not np.isfinite(table[col].iloc[i]):
                    raw = coefficients[col].iloc[i] if col in coefficients.columns else None
                    problems.append(
                        f"coefficients type {code}: {col} must be a finite number for model_form {f}. Got "
                        f"{_py(raw)!r} instead. Give the density model's parameters (C = f(NDVI) in t C/ha)."
                    )
    dup = sorted(k for k, c in Counter(table["type"]).items() if c > 1)
    if dup:
        problems.append(
            f"coefficients: type must be unique. Got repeated rows for {', '.join(dup)} instead. Keep one row per type."
        )
    if problems:
        raise InputDataError("\n".join(problems))
    return table.set_index("type")
