"""Bootstrap draws of a fitted curve: the schemes, the paired resamples and the refits.

Uncertainty of a type's curve is a bootstrap (:data:`BOOTSTRAPS`): by default over plots, the
chosen candidate refitted on ``n_bootstrap`` resamples of the plots drawn with replacement, or
over residuals. Plots are sorted by ``plot_id`` first and the random generator depends only on
``(seed, type_code)`` (:func:`type_rng`), so two years with the same plot ids per type resample
the same plots in the same draws: their draws are *paired*, and a per-draw difference between
years (the sink) carries the right correlation. The draws are curve (parameter) draws."""

from __future__ import annotations

import logging
import zlib

import numpy as np

from greensink.errors import ModelError
from greensink.model.checks import check_choice, check_seed
from greensink.model.forms import WEIGHT_FLOOR, fit_form, plot_layers, predict

log = logging.getLogger(__name__)

BOOTSTRAPS: tuple[str, ...] = ("plots", "residuals")
"""Bootstrap schemes (``model.bootstrap``): "plots" resamples whole plots (pairs bootstrap, the
default); "residuals" keeps the plots and refits to the fitted values plus resampled residuals
(relative residuals under relative weighting: y* = ŷ·(1 + r*); absolute under "none": y* = ŷ + e*)."""
_REDRAW_STREAM = 1  # extra entropy word of the generator that replaces failed bootstrap draws


def check_bootstrap(scheme: object) -> str:
    """A bootstrap scheme of :data:`BOOTSTRAPS`."""
    return check_choice("bootstrap", scheme, BOOTSTRAPS, "Use plots (resample whole plots, the default) or "
                        "residuals (resample the residuals of the fit).")


def type_rng(seed: int, type_code: str, stream: int | None = None) -> np.random.Generator:
    """The generator of a type's draws: ``default_rng([seed, crc32(type_code)(, stream)])``, the same every year."""
    entropy = [seed, zlib.crc32(type_code.encode())]
    if stream is not None:
        entropy.append(stream)
    return np.random.default_rng(entropy)


def bootstrap_indices(n: int, n_bootstrap: int, seed: int, type_code: str) -> np.ndarray:
    """(n_bootstrap, n) resample indices into the plots of ``type_code`` sorted by plot_id.

    The generator is ``np.random.default_rng([seed, zlib.crc32(type_code)])``: it depends on the
    seed and the type only, so the same n gives the same indices in every year (paired draws).
    """
    return type_rng(check_seed(seed), type_code).integers(0, n, size=(n_bootstrap, n))


def relative_residuals(y: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """(y - ŷ)/ŷ at the plots, ŷ floored at :data:`WEIGHT_FLOOR` × mean carbon (and > 0)."""
    return (y - fitted) / np.maximum(fitted, max(WEIGHT_FLOOR * float(np.mean(y)), np.finfo(float).tiny))


def bootstrap_draws(
    form: str,
    params: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    predictors: tuple[str, ...],
    *,
    type_code: str,
    n_bootstrap: int,
    seed: int,
    weighting: str,
    scheme: str,
    y_draws: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """(n_bootstrap, k) parameter draws of ``form`` on ``predictors`` and the number of draws redrawn.

    ``X`` (n, p) and ``y`` are the type's plots sorted by plot_id, ``params`` the final fit to
    them (ŷ its prediction at the plots). Draw i refits the form to the resample
    :func:`bootstrap_indices` gives it: scheme "plots" to the resampled plots; "residuals" to the
    same plots with carbon ŷ·(1 + r*) under relative weighting (r* the resampled relative
    residuals, :func:`relative_residuals`) or ŷ + e* under "none" (e* the resampled residuals
    y - ŷ). With ``y_draws`` (n_bootstrap, n), draw i uses the plots' carbon draw i in place of
    ``y`` (the resampled plots' draw, or the synthetic carbon plus y_draws[i] - y).

    A draw that cannot be fitted is replaced by a fresh resample from a second generator derived
    from (seed, type_code), so the other draws stay paired across years. After 10 × n_bootstrap +
    100 failures a :class:`ModelError` is raised."""
    fitted = predict(form, params, plot_layers(X, predictors), predictors)
    rel = relative_residuals(y, fitted)
    draws = np.empty((n_bootstrap, params.size))
    redraw_rng: np.random.Generator | None = None
    n_failed, max_failed = 0, 10 * n_bootstrap + 100
    floor = max(WEIGHT_FLOOR * float(np.mean(y)), np.finfo(float).tiny)
    for i, idx in enumerate(bootstrap_indices(y.size, n_bootstrap, seed, type_code)):
        y_b = y if y_draws is None else y_draws[i]  # plot carbon of draw i (its own error drawn, paired by i)
        while True:
            try:
                if scheme == "plots":
                    draws[i] = fit_form(form, X[idx], y_b[idx], weighting, predictors)
                elif weighting == "relative":
                    draws[i] = fit_form(form, X, np.maximum(fitted, floor) * (1.0 + rel[idx]) + (y_b - y), weighting,
                                        predictors)
                else:
                    draws[i] = fit_form(form, X, fitted + (y - fitted)[idx] + (y_b - y), weighting, predictors)
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
                    redraw_rng = type_rng(seed, type_code, _REDRAW_STREAM)
                idx = redraw_rng.integers(0, y.size, size=y.size)
    if n_failed:
        log.info("type %s: %d of %d bootstrap draws redrawn after failed %s fits",
                 type_code, n_failed, n_bootstrap, form)
    return draws, n_failed
