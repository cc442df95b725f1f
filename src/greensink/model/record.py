"""The fitted model of one green-space type: a typed record, written to models.json and read back.

:class:`TypeModel` holds what the model stage hands the later stages for one type, like a fitted
scikit-learn estimator's attributes: the chosen form and predictors, its parameters and bootstrap
draws, how it was chosen (CV metrics, candidates, rivals) or why the coefficient table was used,
and its NDVI-only companion. ``models.json`` → ``types`` → ``<code>`` is its :meth:`TypeModel.to_json`
and :meth:`TypeModel.from_json` reads it back, also from files written before a field existed
(the field is then None, and ``predictors`` ["ndvi"]). Keys this record does not know (the
annotations of later steps: ``tier``, ``tier_name``, ``pools``, ``curve_u_pct``, ``plots_needed``,
``n_screened_mixed_pixel``) are kept in ``extra`` and written back unchanged, so
``TypeModel.from_json(d).to_json() == d`` for every type entry of a models.json.

Which keys a record writes (docs/outputs.md is the contract): a model's ``type``, ``source``,
``plot_ids`` and ``cv_folds`` always, and its companion (``ndvi_only``, which states only what its
main model does not) never; the core fields (form ... n_bootstrap_redrawn) always, None where they
have no meaning (a table model has no fit, cv or residuals); every other field only when it is set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from greensink.errors import ModelError
from greensink.model.forms import PREDICTORS, param_names, predict

_CORE = ("form", "predictors", "params", "n", "x_range", "predictor_ranges", "fit", "cv", "candidates", "weighting",
         "residual_sd_t_ha", "residual_rel_sd", "residual_rel_quantiles", "bootstrap", "n_bootstrap_redrawn")
_MAIN_ONLY = ("type", "source", "plot_ids", "cv_folds")  # what a companion leaves to its main model


@dataclass(eq=False)
class TypeModel:
    """A type's carbon model (t C/ha of its predictors) as models.json holds it; see the module docstring."""

    form: str  # a form of greensink.model.forms, or "constant" (a table density)
    params: dict[str, float]  # by name, in param_names(form, predictors) order
    bootstrap: np.ndarray  # (B, k) parameter draws, columns in params order
    predictors: tuple[str, ...] = ("ndvi",)
    type: str | None = None  # the type code; None in a companion
    source: str | None = None  # "plots" (fitted) or "coefficients" (the table); None in a companion
    n: int | None = None  # plots of the type used (a table model: plots with every predictor)
    plot_ids: list[Any] | None = None  # sorted; [] for a table model
    x_range: list[float] | None = None  # [min, max] of the one predictor at the plots
    predictor_ranges: dict[str, list[float]] | None = None  # {name: [min, max]} at the plots
    fit: dict[str, Any] | None = None  # in-sample r2, rmse_t_ha, bias_t_ha, rmse_rel
    cv: dict[str, Any] | None = None  # the chosen candidate's CV metrics
    cv_folds: dict[str, Any] | None = None  # greensink.model.describe_folds
    candidates: dict[str, Any] = field(default_factory=dict)  # CV metrics (or "skipped") per candidate
    weighting: str | None = None
    residual_sd_t_ha: float | None = None
    residual_rel_sd: float | None = None  # fraction
    residual_rel_quantiles: list[float] | None = None  # 5th and 95th percentile of the relative residuals
    n_bootstrap_redrawn: int = 0
    # fitted to plots
    rivals: list[dict[str, Any]] | None = None  # greensink.model.rival_candidates; None: one candidate only
    bootstrap_scheme: str | None = None
    plot_carbon_draws: bool | None = None  # whether the draws carry the plots' own carbon draws
    selected_on_n: int | None = None  # plots the choice was made on, when the refit used more
    ndvi_only: TypeModel | None = None  # the companion for pixels without every chosen predictor
    ndvi_only_error: str | None = None  # why the companion could not be fitted
    note: str | None = None
    # from the coefficient table
    reason: str | None = None
    uncertainty_pct: float | None = None
    fit_error: str | None = None  # why no curve could be fitted to the plots
    # added by fit_models for every type
    cv_worse_than_mean: bool | None = None
    warnings: list[str] | None = None
    rejected_model: dict[str, Any] | None = None  # form, predictors, params, n, cv of a model worse than the mean
    n_dropped_no_predictor: int | None = None
    selection: dict[str, Any] | None = None  # per-year choice or the anchor year's (model.selection)
    ndvi_min: float | None = None  # NDVI gate of the pseudo-type (greensink.tiers.annotate_models)
    extra: dict[str, Any] = field(default_factory=dict)  # every other key, as read

    @property
    def companion(self) -> bool:
        """Whether this is an NDVI-only companion (it has no source of its own)."""
        return self.source is None

    def param_vector(self) -> np.ndarray:
        """The parameters as a float array in :func:`~greensink.model.param_names` order."""
        return np.array([self.params[k] for k in param_names(self.form, self.predictors)], dtype=np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Point-estimate carbon density (t C/ha, raw) at predictor values ``x`` (laid out as in :func:`predict`)."""
        return predict(self.form, self.param_vector(), x, self.predictors)

    def predict_draws(self, x: np.ndarray) -> np.ndarray:
        """(B, *shape) carbon density (t C/ha, raw) of the B bootstrap draws at ``x``."""
        k = len(param_names(self.form, self.predictors))
        return predict(self.form, self.bootstrap.reshape(-1, k), x, self.predictors)

    def as_companion(self) -> TypeModel:
        """This model as an "ndvi_only" companion: without the fields its main model states."""
        return dataclasses.replace(self, **dict.fromkeys(_MAIN_ONLY))

    def to_json(self) -> dict[str, Any]:
        """The models.json entry (JSON-serialisable: lists, floats, text)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            name = f.name
            value = getattr(self, name)
            if name == "extra":
                continue
            if name in _MAIN_ONLY:
                if self.companion:
                    continue
            elif name == "ndvi_only":
                if value is None and self.ndvi_only_error is None:
                    continue
                value = None if value is None else value.to_json()
            elif name not in _CORE and value is None:
                continue
            if name == "bootstrap":
                value = np.asarray(value, dtype=float).tolist()
            elif name == "predictors":
                value = list(value)
            out[name] = value
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | TypeModel) -> TypeModel:
        """The record of a models.json entry (a TypeModel is returned as it is)."""
        if isinstance(d, TypeModel):
            return d
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kw = {k: v for k, v in d.items() if k in known}
        kw["predictors"] = tuple(d.get("predictors") or ("ndvi",))
        kw["params"] = dict(d.get("params") or {})
        kw["bootstrap"] = _draws(d.get("bootstrap"), len(kw["params"]))
        kw["candidates"] = d.get("candidates") if d.get("candidates") is not None else {}
        if isinstance(d.get("ndvi_only"), Mapping):
            kw["ndvi_only"] = cls.from_json(d["ndvi_only"])
        kw.setdefault("form", None)
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})


def _draws(raw: Any, k: int) -> np.ndarray:
    """Bootstrap draws as a (B, k) float array ((0, k) when there are none)."""
    arr = np.asarray(raw if raw is not None else [], dtype=np.float64)
    if arr.size == 0:
        return np.empty((0, k), dtype=np.float64)
    return arr if arr.ndim == 2 else arr.reshape(-1, k or arr.shape[-1])


def type_record(models: Mapping[str, Any], type_code: str) -> TypeModel:
    """The :class:`TypeModel` of ``type_code`` in a models.json dict (a :func:`fit_models` result)."""
    types = models.get("types", {}) if isinstance(models, Mapping) else {}
    if type_code not in types:
        raise ModelError(
            f"type_code must be a type of the model. Got {type_code!r} instead; the model has {sorted(types)}. "
            "Add the type to `types` when fitting or fix the type code."
        )
    return TypeModel.from_json(types[type_code])


def model_predictors(type_model: Mapping[str, Any] | TypeModel) -> tuple[str, ...]:
    """The predictors a type model is evaluated on (["ndvi"] for models written before predictors existed)."""
    if isinstance(type_model, TypeModel):
        return type_model.predictors
    return tuple(type_model.get("predictors") or ("ndvi",))


def used_predictors(models: Mapping[str, Any], types: Sequence[str]) -> list[str]:
    """Every predictor the models of ``types`` need, NDVI always included, in :data:`PREDICTORS` order."""
    need = {"ndvi"}
    for t in types:
        need.update(type_record(models, t).predictors)
    return [q for q in PREDICTORS if q in need]


def predict_type(model: Mapping[str, Any], type_code: str, x: np.ndarray) -> np.ndarray:
    """Point-estimate carbon density (t C/ha, raw) of a type of a :func:`fit_models` result.

    ``x`` is laid out as in :func:`predict` for the type's predictors (:func:`model_predictors`)."""
    return type_record(model, type_code).predict(x)


def predict_draws(model: Mapping[str, Any], type_code: str, x: np.ndarray) -> np.ndarray:
    """(B, *shape) carbon density (t C/ha, raw) of the type's B bootstrap draws of a :func:`fit_models` result."""
    return type_record(model, type_code).predict_draws(x)


def worse_than_mean(model: Mapping[str, Any] | TypeModel | None) -> str | None:
    """Why a model fitted to plots is worse than the plots' mean in cross-validation, or None.

    A model is worse than the mean when its out-of-fold R² is below 0: its pooled out-of-fold
    squared error exceeds the plots' squared deviation from their own mean (SS_res > SS_tot), so a
    constant at the plots' mean density would predict the held-out plots better. None for a model
    that is not fitted to plots, or whose R² is undefined (all plots alike)."""
    if not model:
        return None
    tm = TypeModel.from_json(model)
    if tm.source != "plots":
        return None
    r2 = (tm.cv or {}).get("r2")
    if r2 is None or not r2 < 0:
        return None
    return (f"the chosen {tm.form} model on {'+'.join(tm.predictors)} from {tm.n} plots has "
            f"cross-validated R² {r2:.3f} < 0: it predicts held-out plots worse than the plots' mean density")
