"""The coefficient-table fallback: a type's carbon from the table when no curve can be fitted.

A type with too few plots, with no form that fits its plots, or with a fitted model worse than
the plots' mean takes its carbon from the coefficient table (``coefficients.csv``): a constant
density c_above + c_below (t C/ha), or, when its row names one, the table's density model of
NDVI (model_form, model_a, model_b; e.g. a published curve for the type). The table's
uncertainty_pct becomes draws that scale the estimate (see :func:`fallback_type_model`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from greensink.errors import InputDataError
from greensink.model.bootstrap import type_rng
from greensink.model.checks import check_count, check_number, check_seed, check_type_code, py_scalar
from greensink.model.forms import FORMS, check_form
from greensink.model.record import TypeModel

COEFFICIENT_COLUMNS = ("type", "c_above", "c_below", "uncertainty_pct")
"""Columns every coefficient table has (c_soil, c_dead and the density model columns are optional here)."""


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
    gives no residual spread; all uncertainty is in the draws). The models.json entry of
    :func:`fallback_record`.
    """
    return fallback_record(type_code, density_t_ha, uncertainty_pct, n_plots, reason, n_bootstrap=n_bootstrap,
                           seed=seed, density_model=density_model).to_json()


def fallback_record(
    type_code: str,
    density_t_ha: float,
    uncertainty_pct: float,
    n_plots: int,
    reason: str,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
    density_model: tuple[str, float, float] | None = None,
) -> TypeModel:
    """The :class:`TypeModel` of :func:`fallback_type_model` (same arguments)."""
    type_code = check_type_code(type_code)
    c = check_number(density_t_ha, f"type {type_code}: density_t_ha", "Fix the coefficient table.")
    u = check_number(uncertainty_pct, f"type {type_code}: uncertainty_pct", "Fix the coefficient table.")
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap", 0, "Use e.g. 200 draws.")
    n_plots = check_count(n_plots, "n_plots", 0, "Pass the number of plots of the type.")
    z = type_rng(check_seed(seed), type_code).standard_normal(n_bootstrap)
    scale = 1.0 + (u / 100.0 / 1.645) * z
    if density_model is None:
        form, params = "constant", {"c": c}
        draws = [[float(c * v)] for v in scale]
    else:
        form, pa, pb = density_model
        check_form(form, FORMS)
        params = {"a": float(pa), "b": float(pb)}
        if form in ("linear", "logarithmic"):
            draws = [[float(pa * v), float(pb * v)] for v in scale]
        else:
            draws = [[float(pa * v), float(pb)] for v in scale]
    return TypeModel(form=form, params=params, bootstrap=np.array(draws, dtype=np.float64).reshape(-1, len(params)),
                     type=type_code, source="coefficients", n=n_plots, plot_ids=[], reason=str(reason),
                     uncertainty_pct=u)


def table_record(code: str, coef: pd.DataFrame, why: str, n_plots: int, *, n_bootstrap: int, seed: int) -> TypeModel:
    """The fallback of type ``code`` from its row of the checked table ``coef`` (:func:`validate_coefficients`).

    The row's density model when it has one, else the density c_above + c_below; the reason
    starts with ``why`` (why the table is used) and says which."""
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
    return fallback_record(code, density, float(row["uncertainty_pct"]), n_plots, reason, n_bootstrap=n_bootstrap,
                           seed=seed, density_model=curve)


def validate_coefficients(coefficients: pd.DataFrame | None) -> pd.DataFrame:
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
                f"Got {py_scalar(coefficients[col].iloc[i])!r} instead. Fix the coefficient table."
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
                        f"{py_scalar(raw)!r} instead. Give the density model's parameters (C = f(NDVI) in t C/ha)."
                    )
    dup = sorted(k for k, c in Counter(table["type"]).items() if c > 1)
    if dup:
        problems.append(
            f"coefficients: type must be unique. Got repeated rows for {', '.join(dup)} instead. Keep one row per type."
        )
    if problems:
        raise InputDataError("\n".join(problems))
    return table.set_index("type")


