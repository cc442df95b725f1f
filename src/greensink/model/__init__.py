"""Per-green-space-type carbon density models: plot carbon (t C/ha) as a function of remote-sensing predictors.

For each green-space type (G1 G2 G3 XG EG, or a configured list) the carbon density of the
field plots is regressed on predictors sampled at the plots (NDVI by default; FVC, tree-canopy
fraction and canopy height may join). The modules, in import order:

- :mod:`~greensink.model.checks`: argument and input checks (counts, seeds, plot ids, carbon).
- :mod:`~greensink.model.forms`: the curve forms (linear, logarithmic, power, exponential and the
  tree ensemble), their weighted fitting (:func:`fit_form`) and evaluation (:func:`predict`).
- :mod:`~greensink.model.cv`: spatially blocked folds, cross-validation and the one-SE choice of
  form and predictor set (:func:`select_model`), with its rivals.
- :mod:`~greensink.model.bootstrap`: the bootstrap schemes and the paired draws of a curve.
- :mod:`~greensink.model.record`: :class:`TypeModel`, the typed record of a type's fitted model
  that models.json is written from and read into; predictions from it.
- :mod:`~greensink.model.table`: the coefficient-table fallback (a density or the table's curve).
- :mod:`~greensink.model.fit`: :func:`fit_type_model` (one type from its plots) and
  :func:`fit_models` (every type of a year, with anchoring, companions and fallbacks).

Form and predictor set are chosen per type by spatially blocked cross-validation; uncertainty is
a bootstrap whose draws are paired across years by (seed, type). Everything here is pure:
:func:`fit_models` returns models.json's JSON-serialisable dict, which ``greensink.io`` writes.
Everything public is re-exported here: import from ``greensink.model``.
"""

from greensink.model.bootstrap import BOOTSTRAPS, bootstrap_draws, bootstrap_indices
from greensink.model.cv import (
    TIE_ATOL,
    TIE_RTOL,
    cross_validate,
    describe_folds,
    rival_candidates,
    select_form,
    select_model,
    spatial_block_ids,
    spatial_folds,
)
from greensink.model.fit import fit_models, fit_type_model, fit_type_record
from greensink.model.forms import (
    ALL_FORMS,
    ENSEMBLE_DEPTH,
    ENSEMBLE_GRID,
    ENSEMBLE_LEARNING_RATE,
    ENSEMBLE_MIN_LEAF,
    ENSEMBLE_TREES,
    FORMS,
    IRLS_MAX_ITER,
    PARAM_NAMES,
    PREDICTOR_GRIDS,
    PREDICTOR_UNITS,
    PREDICTORS,
    WEIGHT_FLOOR,
    WEIGHTINGS,
    X_MIN_LOG,
    ensemble_regressor,
    fit_form,
    param_names,
    predict,
    predictor_sets,
)
from greensink.model.record import (
    TypeModel,
    model_predictors,
    predict_draws,
    predict_type,
    type_record,
    used_predictors,
    worse_than_mean,
)
from greensink.model.table import COEFFICIENT_COLUMNS, fallback_record, fallback_type_model

__all__ = [
    "ALL_FORMS",
    "BOOTSTRAPS",
    "COEFFICIENT_COLUMNS",
    "ENSEMBLE_DEPTH",
    "ENSEMBLE_GRID",
    "ENSEMBLE_LEARNING_RATE",
    "ENSEMBLE_MIN_LEAF",
    "ENSEMBLE_TREES",
    "FORMS",
    "IRLS_MAX_ITER",
    "PARAM_NAMES",
    "PREDICTORS",
    "PREDICTOR_GRIDS",
    "PREDICTOR_UNITS",
    "TIE_ATOL",
    "TIE_RTOL",
    "WEIGHTINGS",
    "WEIGHT_FLOOR",
    "X_MIN_LOG",
    "TypeModel",
    "bootstrap_draws",
    "bootstrap_indices",
    "cross_validate",
    "describe_folds",
    "ensemble_regressor",
    "fallback_record",
    "fallback_type_model",
    "fit_form",
    "fit_models",
    "fit_type_model",
    "fit_type_record",
    "model_predictors",
    "param_names",
    "predict",
    "predict_draws",
    "predict_type",
    "predictor_sets",
    "rival_candidates",
    "select_form",
    "select_model",
    "spatial_block_ids",
    "spatial_folds",
    "type_record",
    "used_predictors",
    "worse_than_mean",
]
