"""Spatially blocked cross-validation and the choice of form and predictor set (the one-SE rule).

Plots are grouped into square blocks on a grid anchored at (0, 0) m and whole blocks go to one
fold (:func:`spatial_folds`), so nearby, spatially correlated plots are never split between
training and test. Every candidate (form × predictor set) is cross-validated with the same folds
(:func:`cross_validate`); the criterion matches the fit's weighting (relative RMSE, or RMSE in
t C/ha). Of the candidates whose pooled out-of-fold error is within one standard error of the
lowest, the simplest wins (fewest predictors, then parametric before ensemble; see
:func:`select_model`), and the candidates the CV cannot tell from the choice are its rivals
(:func:`rival_candidates`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from greensink.errors import ModelError
from greensink.model.checks import as_xy_m, check_n_folds, check_seed
from greensink.model.forms import (
    ALL_FORMS,
    FORMS,
    WEIGHT_FLOOR,
    check_form,
    check_forms,
    check_predictor_names,
    check_weighting,
    fit_form,
    plot_arrays,
    plot_layers,
    predict,
    predictor_sets,
)

TIE_RTOL, TIE_ATOL = 1e-9, 1e-12  # CV errors within this (relative, absolute) of each other tie: the earlier entry wins


def spatial_block_ids(xy_m: np.ndarray, block_size_m: float) -> np.ndarray:
    """Block index (0 .. n_blocks-1) of each plot on a square grid of ``block_size_m`` anchored at (0, 0).

    Blocks are numbered in (column, row) order of their grid cell, so the numbering does not
    depend on plot order.
    """
    xy = as_xy_m(xy_m)
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
    check_n_folds(n_folds)
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
    check_n_folds(n_folds)
    seed = check_seed(seed)
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
    check_form(form, ALL_FORMS)
    weighting = check_weighting(weighting)
    X, y = plot_arrays(x, y)
    preds = check_predictor_names(predictors, X.shape[1])
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
        pred[test] = predict(form, params, plot_layers(X[test], preds), preds)
    if not np.all(np.isfinite(pred)):
        raise ModelError(
            f"{form} out-of-fold predictions must be finite. Got {int(np.sum(~np.isfinite(pred)))} non-finite "
            "instead. Another form will be used."
        )
    return {**fit_metrics(pred, y), "rmse_rel": rmse_rel(pred, y), **_rmse_se(pred, y), "n": int(y.size),
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
    forms = check_forms(forms)
    weighting = check_weighting(weighting)
    X, y = plot_arrays(x, y)
    preds = check_predictor_names(predictors, X.shape[1])
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
    X, y = plot_arrays(X, y)
    preds = check_predictor_names(predictors, X.shape[1])
    sets = predictor_sets(preds) if sets is None else [check_predictor_names(s) for s in sets]
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
            cands = {f: {"skipped": str(err)} for f in check_forms(forms)}
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
        return np.maximum(predict(form, fit_form(form, Xs, y, weighting, names), plot_layers(Xs, names), names), 0.0)

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


def fit_metrics(pred: np.ndarray, obs: np.ndarray) -> dict[str, Any]:
    """{"r2", "rmse_t_ha", "bias_t_ha" (mean prediction - observation)} of predictions at the plots;
    R² = 1 - SS_res/SS_tot, None when all observations are equal."""
    resid = pred - obs
    ss_res = float(np.sum(resid**2))
    ss_tot = float(np.sum((obs - obs.mean()) ** 2))
    return {
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else None,
        "rmse_t_ha": math.sqrt(ss_res / obs.size),
        "bias_t_ha": float(resid.mean()),
    }


def rmse_rel(pred: np.ndarray, obs: np.ndarray) -> float:
    """Root mean square of (obs - pred)/pred, pred floored at WEIGHT_FLOOR x mean(obs) (> 0)."""
    floor = max(WEIGHT_FLOOR * float(np.mean(obs)), np.finfo(float).tiny)
    return math.sqrt(float(np.mean(((obs - pred) / np.maximum(pred, floor)) ** 2)))


