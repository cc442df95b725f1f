"""Fitting the carbon models of a year: one type from its plots, and every type with its fallbacks.

:func:`fit_type_model` chooses a type's form and predictor set by spatially blocked CV
(:mod:`greensink.model.cv`), refits it on all plots and bootstraps it
(:mod:`greensink.model.bootstrap`). :func:`fit_models` does so for every type of a year: it keeps
the first year's choice when asked (model.selection "first_year"), adds the NDVI-only companion,
falls back to an NDVI-only model or to the coefficient table (:mod:`greensink.model.table`) when
the plots do not support a model, and returns models.json's dict, each type a
:class:`~greensink.model.record.TypeModel`'s ``to_json``. Everything here is pure: the dict is
JSON-serialisable and ``greensink.io`` writes it."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from greensink.errors import InputDataError, ModelError
from greensink.model.bootstrap import bootstrap_draws, check_bootstrap, relative_residuals
from greensink.model.checks import (
    MAX_LISTED,
    as_xy_m,
    carbon_message,
    check_carbon,
    check_count,
    check_seed,
    check_type_code,
    check_unique_ids,
    py_scalar,
    sort_order,
)
from greensink.model.cv import describe_folds, fit_metrics, rival_candidates, rmse_rel, select_model, spatial_folds
from greensink.model.forms import (
    FORMS,
    check_forms,
    check_predictor_names,
    check_weighting,
    fit_form,
    param_names,
    plot_arrays,
    plot_layers,
    predict,
    predictor_label,
)
from greensink.model.record import TypeModel, worse_than_mean
from greensink.model.table import table_record, validate_coefficients

log = logging.getLogger(__name__)


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

    Returns the models.json entry of the type (a :class:`TypeModel`'s ``to_json``): type, source
    ("plots"), form, predictors (the chosen set), params {name: value} (:func:`param_names` order),
    n, plot_ids (sorted), x_range (the plots' range of the predictor when the model has one, else
    None), predictor_ranges ({name: [min, max]} of the chosen predictors), fit (in-sample r2,
    rmse_t_ha, bias_t_ha), cv (the chosen candidate's CV metrics), cv_folds
    (:func:`describe_folds`), candidates, rivals (:func:`rival_candidates`; absent when only one
    candidate was cross-validated, as in a refit of an anchor year's choice), weighting,
    residual_sd_t_ha (residual standard error with n - k degrees of freedom, k = 1 + number of
    predictors, also for the ensemble, whose in-sample residuals are therefore somewhat optimistic),
    residual_rel_sd (the same of the relative residuals (y - ŷ)/ŷ, a fraction),
    residual_rel_quantiles (their 5th and 95th percentiles: a single plot's carbon lies within ŷ ×
    (1 + q05) .. ŷ × (1 + q95) about 90 % of the time), bootstrap (n_bootstrap rows of params),
    n_bootstrap_redrawn.
    """
    return fit_type_record(
        type_code, x, y, xy_m, plot_ids, forms=forms, block_size_m=block_size_m, n_folds=n_folds,
        n_bootstrap=n_bootstrap, seed=seed, weighting=weighting, predictors=predictors, sets=sets, bootstrap=bootstrap,
        y_draws=y_draws).to_json()


def fit_type_record(
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
) -> TypeModel:
    """The :class:`TypeModel` of :func:`fit_type_model` (same arguments), which returns its ``to_json``."""
    type_code = check_type_code(type_code)
    check_carbon(np.asarray(y, dtype=float).ravel(), plot_ids, where=f"type {type_code} plots")
    X, y = plot_arrays(x, y, error=InputDataError, where=f"type {type_code} plots")
    preds = check_predictor_names(predictors, X.shape[1])
    xy = as_xy_m(xy_m, error=InputDataError)
    ids = np.asarray(list(plot_ids), dtype=object)
    if xy.shape[0] != y.size or ids.size != y.size:
        raise InputDataError(
            f"type {type_code}: x, y, xy_m and plot_ids must describe the same plots. Got {y.size}, {y.size}, "
            f"{xy.shape[0]} and {ids.size} rows instead. Pass one row per plot."
        )
    check_unique_ids(ids, where=f"type {type_code} plots")
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap", 0, "Use e.g. 200 draws.")
    if y_draws is not None:
        y_draws = np.asarray(y_draws, dtype=float)
        if y_draws.shape != (n_bootstrap, y.size) or not np.all(np.isfinite(y_draws)) or np.any(y_draws < 0):
            raise InputDataError(
                f"type {type_code}: y_draws must be finite carbon draws >= 0 of shape (n_bootstrap, plots) = "
                f"({n_bootstrap}, {y.size}). Got shape {y_draws.shape} instead. Make the plot carbon draws with "
                "model.n_bootstrap draws for every plot.")
    seed = check_seed(seed)
    weighting = check_weighting(weighting)
    bootstrap = check_bootstrap(bootstrap)

    order = sort_order(ids)
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
    fitted = predict(form, params, plot_layers(Xc, chosen), chosen)
    ss_res = float(np.sum((fitted - y) ** 2))
    dof = max(y.size - min(params.size, len(chosen) + 1), 1)  # an ensemble's tables count as 1 + p
    rel = relative_residuals(y, fitted)
    draws, n_redrawn = bootstrap_draws(form, params, Xc, y, chosen, type_code=type_code, n_bootstrap=n_bootstrap,
                                       seed=seed, weighting=weighting, scheme=bootstrap, y_draws=y_draws)

    ranges = {q: [float(Xc[:, j].min()), float(Xc[:, j].max())] for j, q in enumerate(chosen)}
    return TypeModel(
        type=type_code,
        source="plots",
        form=form,
        predictors=tuple(chosen),
        params=dict(zip(param_names(form, chosen), (float(v) for v in params), strict=True)),
        n=int(y.size),
        plot_ids=[py_scalar(v) for v in ids],
        x_range=ranges[chosen[0]] if len(chosen) == 1 else None,
        predictor_ranges=ranges,
        fit={**fit_metrics(fitted, y), "rmse_rel": rmse_rel(fitted, y)},
        cv=candidates[label],
        cv_folds=fold_info,
        candidates=candidates,
        rivals=rival_candidates(X, y, preds, candidates, label, weighting) if len(candidates) > 1 else None,
        weighting=weighting,
        bootstrap_scheme=bootstrap,
        residual_sd_t_ha=math.sqrt(ss_res / dof),
        residual_rel_sd=math.sqrt(float(np.sum(rel**2)) / dof),
        residual_rel_quantiles=[float(v) for v in np.quantile(rel, [0.05, 0.95])],
        bootstrap=draws,
        n_bootstrap_redrawn=int(n_redrawn),
        plot_carbon_draws=y_draws is not None,
    )


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
    codes = sorted({check_type_code(t) for t in types})
    if not codes:
        raise ModelError("types must name at least one green-space type. Got none instead. List e.g. G1 G2 G3 XG EG.")
    min_plots = check_count(min_plots, "min_plots", 3, "Use e.g. 10 plots per type.")
    forms = check_forms(forms)
    weighting = check_weighting(weighting)
    preds = check_predictor_names(predictors)
    table = _validate_plots(plots, preds)
    coef = validate_coefficients(coefficients)
    settings = _Settings(forms=forms, block_size_m=block_size_m, n_folds=n_folds, n_bootstrap=n_bootstrap, seed=seed,
                         weighting=weighting, bootstrap=check_bootstrap(bootstrap), predictors=preds,
                         min_plots=min_plots, carbon_draws=carbon_draws)

    other = sorted(set(table["type"]) - set(codes))
    if other:
        log.info("ignoring %d plots of types %s not in types %s",
                 int(table["type"].isin(other).sum()), other, codes)
    out_types = {code: _type_model(code, table[table["type"] == code], coef, settings, anchor).to_json()
                 for code in codes}
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
        "bootstrap": settings.bootstrap,
        "anchor_year": anchor.get("year") if anchor else None,
        "types": out_types,
    }


@dataclass(frozen=True)
class _Settings:
    """What every fit of one year's types shares: the arguments of :func:`fit_models`, checked."""

    forms: tuple[str, ...]
    block_size_m: float
    n_folds: int
    n_bootstrap: int
    seed: int
    weighting: str
    bootstrap: str
    predictors: tuple[str, ...]
    min_plots: int
    carbon_draws: pd.DataFrame | None


def _type_model(code: str, sub: pd.DataFrame, coef: pd.DataFrame, s: _Settings,
                anchor: dict[str, Any] | None) -> TypeModel:
    """The model of type ``code`` from its plots ``sub``: the anchor year's choice refitted, else a fresh
    choice, else the coefficient table; with the flags and warnings of :func:`fit_models` (logged)."""
    has_x = _finite(sub, s.predictors)
    n_ok = int(has_x.sum())
    failures: list[tuple[str, str]] = []  # (the plots a failed fit used, its error)
    model, selection = _anchored(code, sub, anchor, s)
    if model is None:
        model, failures = _fresh(code, sub, s)
    if model is None and failures and code not in coef.index:
        raise ModelError("; ".join(err for _, err in failures))
    worse = worse_than_mean(model)  # CV R² < 0: falls back to the table when it has a row, else kept and flagged
    rejected, model = (model, None) if worse and code in coef.index else (None, model)
    n_dropped = int((~has_x).sum())
    dropped_note = f" ({n_dropped} more plots had no value of some predictor)" if n_dropped else ""
    fit_error = "; ".join(f"{used}: {err}" if len(failures) > 1 else err for used, err in failures) or None
    why = (worse if rejected is not None else
           f"no model form could be fitted to {' or '.join(used for used, _ in failures)}{dropped_note}"
           if failures else f"{n_ok} plots < min_plots {s.min_plots}{dropped_note}")
    if model is None:
        if code not in coef.index:
            raise ModelError(
                f"type {code} needs the coefficient table: {why}. Got no row for {code} in the coefficient "
                f"table instead. Add a row for {code} (type, c_above, c_below, c_soil, c_dead, "
                f"uncertainty_pct) or add plots of {code}."
            )
        model = table_record(code, coef, why, n_ok, n_bootstrap=s.n_bootstrap, seed=s.seed)
        model.fit_error = fit_error
    model.cv_worse_than_mean = bool(worse)
    model.warnings = [] if not worse else [
        f"{worse}; the coefficient table is used instead" if rejected is not None else
        f"{worse}; kept, because the coefficient table has no row for {code}: its estimates are no better than the "
        f"plots' mean density. Add a row for {code} to the coefficient table, or add plots"]
    if rejected is not None:
        entry = rejected.to_json()
        model.rejected_model = {k: entry[k] for k in ("form", "predictors", "params", "n", "cv")}
    if model.source == "plots":
        n_dropped = int((~_finite(sub, model.predictors)).sum())
    model.n_dropped_no_predictor = n_dropped
    model.selection = selection
    _log_type(code, model)
    return model


def _fresh(code: str, sub: pd.DataFrame, s: _Settings) -> tuple[TypeModel | None, list[tuple[str, str]]]:
    """The type's model chosen afresh and the failed fits on the way: on the plots with every predictor
    (refitted on more plots when more have the chosen set), else NDVI-only on the plots with NDVI."""
    has_x = _finite(sub, s.predictors)
    n_ok = int(has_x.sum())
    failures: list[tuple[str, str]] = []
    if n_ok >= s.min_plots:
        try:
            model = _fit_plots(code, sub[has_x], s.predictors, s)
            names = model.predictors
            has = _finite(sub, names)
            if int(has.sum()) > n_ok:  # more plots have the chosen predictors than all of them
                refit = _fit_plots(code, sub[has], names, s, model.form)
                refit.candidates, refit.selected_on_n = model.candidates, n_ok
                if model.rivals is not None:
                    refit.rivals = model.rivals
                model = refit
            return _with_companion(code, sub, model, s), failures
        except ModelError as err:
            failures.append((f"{n_ok} plots" + (" with every predictor" if len(s.predictors) > 1 else ""), str(err)))
    if s.predictors != ("ndvi",) and "ndvi" in s.predictors:
        has = _finite(sub, ("ndvi",))
        if int(has.sum()) >= s.min_plots:
            try:
                model = _fit_plots(code, sub[has], ("ndvi",), s)
                model.note = (f"NDVI-only model from {int(has.sum())} plots: " + (
                    f"only {n_ok} plots had every predictor {list(s.predictors)} (< min_plots {s.min_plots})"
                    if n_ok < s.min_plots else "no model on the other predictor sets could be fitted"))
                return model, failures
            except ModelError as err:
                failures.append((f"{int(has.sum())} plots with NDVI", str(err)))
    return None, failures


def _anchored(code: str, sub: pd.DataFrame, anchor: dict[str, Any] | None,
              s: _Settings) -> tuple[TypeModel | None, dict[str, Any]]:
    """The type's refit of the anchor year's choice (or None) and the "selection" record saying why."""
    anchor_year = anchor.get("year") if anchor else None
    selection: dict[str, Any] = {"mode": "per_year"}
    if anchor is not None:
        selection["anchor_year"] = anchor_year
    entry = ((anchor or {}).get("types") or {}).get(code)
    if entry is None:
        return None, selection
    fixed = TypeModel.from_json(entry)
    names = fixed.predictors
    what = f"the {anchor_year} choice ({fixed.form} on {'+'.join(names)})"
    if fixed.source != "plots":
        return None, {**selection, "reason": f"the {anchor_year} model used the coefficient table; chosen afresh"}
    if not all(q in s.predictors for q in names):
        return None, {**selection, "reason": f"{what} uses predictors not in model.predictors {list(s.predictors)}; "
                                             "chosen afresh"}
    has = _finite(sub, names)
    try:
        if int(has.sum()) < s.min_plots:
            raise ModelError(f"{int(has.sum())} plots with {'+'.join(names)} < min_plots {s.min_plots}")
        model = _fit_plots(code, sub[has], names, s, fixed.form)
    except ModelError as err:
        return None, {**selection, "reason": f"{what} could not be refitted ({err}); chosen afresh"}
    model = _with_companion(code, sub, model, s, fixed.ndvi_only.form if fixed.ndvi_only is not None else None)
    return model, {"mode": "first_year", "anchor_year": anchor_year, "form": fixed.form, "predictors": list(names)}


def _with_companion(code: str, sub: pd.DataFrame, model: TypeModel, s: _Settings,
                    form: str | None = None) -> TypeModel:
    """Add the NDVI-only companion (form fixed when given) unless the model is on NDVI alone."""
    if model.predictors == ("ndvi",) or "ndvi" not in s.predictors:
        return model
    try:
        model.ndvi_only = _fit_plots(code, sub[_finite(sub, ("ndvi",))], ("ndvi",), s, form).as_companion()
    except ModelError as err:
        model.ndvi_only = None
        model.ndvi_only_error = str(err)
    return model


def _fit_plots(code: str, used: pd.DataFrame, names: tuple[str, ...], s: _Settings,
               form: str | None = None) -> TypeModel:
    """:func:`fit_type_record` on the plots ``used`` and predictors ``names``; only ``form`` when given."""
    return fit_type_record(
        code, used[list(names)].to_numpy(dtype=float), used["carbon_t_ha"].to_numpy(dtype=float),
        used[["x_m", "y_m"]].to_numpy(dtype=float), used["plot_id"].tolist(), predictors=names,
        sets=None if form is None else [names], y_draws=_plot_draws(code, used, s.carbon_draws),
        forms=s.forms if form is None else (form,), block_size_m=s.block_size_m, n_folds=s.n_folds,
        n_bootstrap=s.n_bootstrap, seed=s.seed, weighting=s.weighting, bootstrap=s.bootstrap)


def _plot_draws(code: str, used: pd.DataFrame, carbon_draws: pd.DataFrame | None) -> np.ndarray | None:
    """(draws, plots) carbon draws of the plots ``used`` (None without a tree inventory)."""
    if carbon_draws is None:
        return None
    ids = used["plot_id"].astype(str)
    lost = sorted(set(ids) - set(carbon_draws.index.astype(str)))
    if lost:
        raise InputDataError(f"type {code}: plots {lost[:10]} have no carbon draws. Make the draws for every plot "
                             "(rule plot_carbon).")
    return carbon_draws.loc[ids.to_numpy()].to_numpy(dtype=float).T


def _finite(sub: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Which plots have a finite value of every predictor in ``names``."""
    return np.all(np.isfinite(sub[list(names)].to_numpy(dtype=float)), axis=1)


def _log_type(code: str, model: TypeModel) -> None:
    """One line per type (the form and CV, or the table's reason) and its warnings."""
    if model.source == "plots":
        r2 = model.cv["r2"]
        log.info("type %s: %s form on %s from %d plots, CV RMSE %.3g t C/ha, R2 %s", code, model.form,
                 "+".join(model.predictors), model.n, model.cv["rmse_t_ha"], "n/a" if r2 is None else f"{r2:.3f}")
    else:
        log.info("type %s: %s", code, model.reason)
    for warning in model.warnings or []:
        log.warning("type %s: %s", code, warning)


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
        problems.append(carbon_message("plots", [(ids[i], py_scalar(raw_carbon[i])) for i in bad]))

    for q, col in source.items():
        raw_x = plots[col].tolist()
        bad_x = [i for i in np.flatnonzero(~np.isfinite(table[q].to_numpy())) if not pd.isna(raw_x[i])]
        if bad_x:
            shown = ", ".join(f"{py_scalar(raw_x[i])!r} at plot_id {py_scalar(ids[i])!r}" for i in bad_x[:MAX_LISTED])
            problems.append(
                f"plots: {col} ({predictor_label(q)}) must be a finite number or missing (NaN). Got {shown} instead. "
                "Fix the sampled predictor values."
            )

    has_x = np.any(np.isfinite(table[list(source)].to_numpy()), axis=1)
    no_loc = np.flatnonzero(has_x & ~np.isfinite(table[["x_m", "y_m"]].to_numpy()).all(axis=1))
    if no_loc.size:
        shown = ", ".join(repr(py_scalar(ids[i])) for i in no_loc[:MAX_LISTED])
        problems.append(
            f"plots: x_m and y_m must be finite coordinates in metres. Got missing or non-numeric values at "
            f"plot_id {shown} instead. Give every plot a location in the run's projected CRS."
        )

    try:
        check_unique_ids(table["plot_id"].to_numpy(dtype=object), "plots")
    except InputDataError as err:
        problems.append(str(err))
    if problems:
        raise InputDataError("\n".join(problems))
    return table


