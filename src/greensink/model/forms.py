"""Carbon density curves: the forms, their fitting and their evaluation (t C/ha of predictors).

The carbon density of a type's plots (t C/ha) is regressed on remote-sensing predictors sampled
at the plots: NDVI by default, and any of FVC, tree-canopy fraction and mean canopy height
(:data:`PREDICTORS`). Four forms from the Chinese NDVI-carbon literature are candidates (``x`` a
predictor; ``C`` t C/ha); with one predictor:

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
converge raises :class:`~greensink.errors.ModelError`.

Weighting (:data:`WEIGHTINGS`: "relative", the default, or "none"): plot carbon errors are taken
as proportional to carbon (multiplicative), so each form is refitted with weights 1/ŷ² by
iteratively reweighted least squares (see :func:`fit_form`); the ensemble is refitted once with
sample weights 1/ŷ² of its unweighted fit.

Predictions (:func:`predict`) clamp x to >= :data:`X_MIN_LOG` (1e-3) before evaluating the
logarithmic and power forms, so bare ground and water (NDVI <= 0) get the model's value at
NDVI 0.001 instead of NaN or -inf. Predictions are returned raw: a fitted curve may go below 0
t C/ha and the caller floors at 0 and counts floored pixels.

The checks of forms, weightings, predictor names and plot arrays live here with the forms they
check."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from greensink.errors import ModelError
from greensink.model.checks import check_choice

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
WEIGHTINGS: tuple[str, ...] = ("relative", "none")
"""Least-squares weighting of the plots: "relative" (weights 1/ŷ², multiplicative error) or "none"."""
WEIGHT_FLOOR = 0.1
"""Predictions below this share of the plots' mean carbon are raised to it before weighting (so a
curve near or below 0 at some plot cannot give that plot an unbounded weight)."""
IRLS_MAX_ITER = 50
_IRLS_RTOL = 1e-9

_POSITIVE_X_FORMS = ("logarithmic", "power")


def param_names(form: str, predictors: Sequence[str] = ("ndvi",)) -> tuple[str, ...]:
    """Names of a form's parameters, in the order :func:`fit_form` returns and :func:`predict` takes them.

    With one predictor these are :data:`PARAM_NAMES` (the ensemble's table "y000" ... over that
    predictor's :data:`PREDICTOR_GRIDS` entry). With p > 1 predictors the parametric forms have
    "a" and one "b_<predictor>" per predictor, and the ensemble has "base" and one table
    "<predictor>_000" ... per predictor (see :func:`fit_form`). "constant" is always ("c",).
    """
    check_form(form, PARAM_NAMES)
    preds = check_predictor_names(predictors)
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
    check_form(form, ALL_FORMS)
    weighting = check_weighting(weighting)
    X, y = plot_arrays(x, y)
    preds = check_predictor_names(predictors, X.shape[1])
    if form == "ensemble":
        return _fit_ensemble(X, y, weighting, preds)
    if form in _POSITIVE_X_FORMS and np.any(X <= 0):
        j = int(np.argmax(np.any(X <= 0, axis=0)))
        col = X[:, j]
        bad = int(np.sum(col <= 0))
        name = predictor_label(preds[j])
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
                f"{form} fit needs plots at 2 or more distinct {predictor_label(q)} values. Got "
                f"{np.unique(X[:, j]).size} distinct value(s) over {n} plots instead. Add plots that span a range of "
                f"{predictor_label(q)}."
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
    check_form(form, PARAM_NAMES)
    preds = check_predictor_names(predictors)
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


def plot_layers(X: np.ndarray, preds: Sequence[str]) -> np.ndarray:
    """(n, p) plot predictors in :func:`predict`'s layout: (n,) for one predictor, else (p, n)."""
    return X[:, 0] if len(preds) == 1 else X.T


def check_form(form: str, allowed: Iterable[str]) -> None:
    """ModelError unless ``form`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if form not in allowed:
        raise ModelError(f"form must be one of {', '.join(allowed)}. Got {form!r} instead. Fix the form name.")


def check_forms(forms: Sequence[str]) -> tuple[str, ...]:
    """Candidate forms as a tuple without repeats (a single name is one form); each of :data:`ALL_FORMS`."""
    if isinstance(forms, str):
        forms = (forms,)
    forms = tuple(dict.fromkeys(forms))
    if not forms:
        raise ModelError(f"forms must list at least one of {', '.join(ALL_FORMS)}. Got none instead.")
    for form in forms:
        check_form(form, ALL_FORMS)
    return forms


def check_weighting(weighting: Any) -> str:
    """A weighting of :data:`WEIGHTINGS`."""
    return check_choice("weighting", weighting, WEIGHTINGS, "Use relative for plot errors proportional to carbon "
                         "(the usual case), none for constant errors.")


def check_predictor_names(predictors: Sequence[str] | None, n_columns: int | None = None) -> tuple[str, ...]:
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


def predictor_label(name: str) -> str:
    """A predictor's name as messages write it (NDVI, FVC, canopy, height)."""
    return "NDVI" if name == "ndvi" else "FVC" if name == "fvc" else name


def predictor_sets(predictors: Sequence[str]) -> list[tuple[str, ...]]:
    """Candidate predictor sets: every non-empty subset of ``predictors``, smallest first, each in
    the given order (["ndvi", "height"] -> ndvi; height; ndvi+height)."""
    preds = check_predictor_names(predictors)
    return [c for r in range(1, len(preds) + 1) for c in combinations(preds, r)]


def plot_arrays(
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


