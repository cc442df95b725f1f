"""The ``uncertainty`` config section and models.json: the settings with their defaults
(:func:`settings`), a year's :class:`NoiseSpec` (:func:`noise_spec`), the plots' relative residuals
and measurement error (:func:`plot_residuals`, :func:`plot_measurement`), the curve's U % and the plots
needed written to models.json (:func:`annotate_models`), and the residual of a pair of years
(:func:`residual_year_correlation`, :func:`paired_residual_field`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from greensink.uncertainty.field import ResidualField, residual_field, year_correlation
from greensink.uncertainty.inventory import plots_needed, u_pct
from greensink.uncertainty.noise import NoiseSpec

# ----------------------------------------------------------------------------- configuration and models.json

DEFAULTS: dict = {
    "curve": True,
    "table": True,
    "residual": {"enabled": True, "n_bins": 12, "max_lag_m": None, "min_pairs": 30, "year_correlation": "auto"},
    "ndvi": {"enabled": True, "obs_sd": 0.03},
    "edges": {"enabled": True, "position_sd_m": 1.5},
    "plot_error_pct": 10.0,
    "plot_error_year_correlation": "auto",
    "target_u_pct": 10.0,
    "pixel_interval": "tabulated",
}


def settings(config: Mapping | None) -> dict:
    """The ``uncertainty`` config section with every default filled in (nested one level)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for k, v in (config or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def noise_spec(config: Mapping | None, models: Mapping, *, seed: int, year: int | None, resolution_m: float,
               rho: float = 1.0, paired: bool = False) -> NoiseSpec:
    """The :class:`NoiseSpec` of a year from the ``uncertainty`` config and the year's models.json."""
    cfg = settings(config)
    res = None
    if cfg["residual"]["enabled"] and models.get("residual_field"):
        res = ResidualField.from_json(models["residual_field"])
    return NoiseSpec(seed=int(seed), year=year, curve=bool(cfg["curve"]), table=bool(cfg["table"]), residual=res,
                     rho=float(rho), paired=paired,
                     ndvi=bool(cfg["ndvi"]["enabled"]),
                     position_sd_m=float(cfg["edges"]["position_sd_m"]) if cfg["edges"]["enabled"] else 0.0,
                     resolution_m=float(resolution_m))


def plot_residuals(models: Mapping, plots, types: Sequence[str], *, plot_error_pct: float = 0.0,
                   carbon_draws=None) -> list[dict]:
    """Relative residuals (C − Ĉ)/Ĉ of the plots of the types fitted to plots (``source`` "plots"),
    Ĉ the chosen model at the plot's predictors (NaN predictors or Ĉ ≤ 0: left out), each with its
    measurement variance on the same scale, ``meas_var`` = Var(C_measured)/Ĉ²: the variance of the
    plot's carbon draws where ``carbon_draws`` (plot_id → draws, the tree inventory's) has the plot,
    else (plot_error_pct/100 · C)² (a relative measurement sd of the plot's carbon)."""
    from greensink.model import model_predictors, predict_type

    draw_var: dict[str, float] = {}
    if carbon_draws is not None and len(carbon_draws):
        values = np.asarray(carbon_draws, dtype=float)
        if values.shape[1] > 1:
            draw_var = dict(zip(carbon_draws.index.astype(str), np.nanvar(values, axis=1, ddof=1), strict=True))
    rel_err = float(plot_error_pct) / 100.0

    out = []
    for t in types:
        tm = models["types"][t]
        if tm.get("source") != "plots":
            continue
        sel = plots[plots["type"].astype(str) == t]
        if sel.empty:
            continue
        preds = model_predictors(tm)
        x = np.stack([sel[q].to_numpy(float) for q in preds]) if len(preds) > 1 else sel[preds[0]].to_numpy(float)
        fit = predict_type(models, t, x)
        obs = sel["carbon_t_ha"].to_numpy(float)
        for pid, xm, ym, c, f in zip(sel["plot_id"], sel["x_m"], sel["y_m"], obs, fit, strict=True):
            if np.isfinite(f) and f > 0 and np.isfinite(c):
                v = draw_var.get(str(pid))
                v = (rel_err * c) ** 2 if v is None or not np.isfinite(v) else float(v)
                out.append({"plot_id": str(pid), "type": t, "x_m": float(xm), "y_m": float(ym), "rel": float((c - f) / f),
                            "meas_var": float(v / (f * f))})
    return out


def plot_measurement(config: Mapping | None, models: Mapping, carbon_draws=None) -> dict:
    """Where the plots' measurement error comes from and how it persists between years: with a tree
    inventory (``carbon_draws``) the variance of each plot's carbon draws (allometric and tree
    measurement errors), else ``uncertainty.plot_error_pct``; ``uncertainty.plot_error_year_correlation``
    or, ``auto``, 0 for a plots file (each year's measurement is new) and for a tree inventory the
    inventory's ``allometric_year_correlation`` (its allometric error, which dominates a plot's error,
    persists as configured there; its measurement_year_correlation when the allometric error is off)."""
    cfg = settings(config)
    tree = (models.get("plot_carbon") or {}) if carbon_draws is not None else {}
    setting = cfg["plot_error_year_correlation"]
    if setting != "auto":
        rho_m = float(setting)
    elif tree.get("source") == "tree_inventory":
        err = tree.get("errors") or {}
        rho_m = float(err.get("allometric_year_correlation", 1.0) if err.get("allometric", True)
                      else err.get("measurement_year_correlation", 0.0))
    else:
        rho_m = 0.0
    source = ("tree inventory draws (variance of each plot's carbon draws)" if carbon_draws is not None
              else f"uncertainty.plot_error_pct = {float(cfg['plot_error_pct']):g} % of the plot's carbon")
    return {"source": source, "plot_error_pct": None if carbon_draws is not None else float(cfg["plot_error_pct"]),
            "year_correlation": min(max(rho_m, 0.0), 1.0)}


def curve_u_pct(models: Mapping, plots, type_code: str) -> float | None:
    """U % (half the 95 % interval over the estimate) of the type's mean density over its plots
    from the curve draws: the curve part of the uncertainty of an average stand of the type."""
    from greensink.model import model_predictors, predict_draws, predict_type

    tm = models["types"][type_code]
    sel = plots[plots["type"].astype(str) == type_code]
    if tm.get("source") != "plots" or sel.empty:
        return None
    preds = model_predictors(tm)
    x = np.stack([sel[q].to_numpy(float) for q in preds]) if len(preds) > 1 else sel[preds[0]].to_numpy(float)
    est = np.nanmean(np.maximum(predict_type(models, type_code, x), 0.0))
    draws = np.nanmean(np.maximum(predict_draws(models, type_code, x), 0.0), axis=-1)
    u = u_pct(draws[np.newaxis, :], np.array([est]))[0]
    return float(u) if np.isfinite(u) else None


def annotate_models(models: dict, plots, types: Sequence[str], config: Mapping | None, carbon_draws=None) -> None:
    """Add the residual model (``residual_field``, its nugget net of the plots' measurement error:
    :func:`residual_field`, :func:`plot_measurement`) and, per type fitted to plots, ``curve_u_pct`` and
    ``plots_needed`` (n × (U_now/U_target)² for ``uncertainty.target_u_pct``) to models.json's dict.
    ``carbon_draws``: the tree inventory's plot carbon draws of the year (plot_id → draws), if any."""
    cfg = settings(config)
    r = cfg["residual"]
    meas = plot_measurement(config, models, carbon_draws)
    records = plot_residuals(models, plots, types, plot_error_pct=float(cfg["plot_error_pct"]),
                             carbon_draws=carbon_draws) if len(plots) else []
    fld = residual_field(records, n_bins=int(r["n_bins"]), max_lag_m=r["max_lag_m"], min_pairs=int(r["min_pairs"]),
                         measurement=meas)
    models["residual_field"] = fld.to_json()
    target = float(cfg["target_u_pct"])
    models["target_u_pct"] = target
    for t in types:
        tm = models["types"][t]
        u = curve_u_pct(models, plots, t) if len(plots) else None
        tm["curve_u_pct"] = u
        tm["plots_needed"] = plots_needed(int(tm.get("n") or 0), u, target) if u is not None else None



def residual_year_correlation(models0: Mapping, models1: Mapping, config: Mapping | None) -> dict:
    """ρ of the residual between two years: ``uncertainty.residual.year_correlation`` when a number,
    else (``auto``) :func:`year_correlation` of the remeasured plots in both years' models.json, with
    the plots' measurement error (each plot's variance in the records, its year correlation from the
    first year's ``residual_field.measurement``) taken off."""
    setting = settings(config)["residual"]["year_correlation"]
    if setting != "auto":
        return {"rho": float(setting), "n": 0, "method": "configured (uncertainty.residual.year_correlation)"}
    f0 = models0.get("residual_field") or {}
    p0 = f0.get("plots") or []
    p1 = (models1.get("residual_field") or {}).get("plots") or []
    rho_m = float((f0.get("measurement") or {}).get("year_correlation", 0.0) or 0.0)
    return year_correlation(p0, p1, measurement_year_correlation=rho_m)


def paired_residual_field(models0: Mapping, models1: Mapping, config: Mapping | None) -> ResidualField | None:
    """One residual model for both years of a sink: the variogram fitted to the plots of both years
    (pairs within a year only), its nugget net of the plots' mean measurement variance.

    The residual field of a place is one field; each year's own fit of it varies by sampling alone
    (the split between nugget and partial sill especially), and drawing the two years with different
    amplitudes would put the difference of the amplitudes into every sink even where the residual
    persists (ρ = 1). None when neither year has a residual model."""
    f0, f1 = models0.get("residual_field"), models1.get("residual_field")
    if not (f0 or f1):
        return None
    r = settings(config)["residual"]
    records, groups = [], []
    for k, fld in enumerate((f0, f1)):
        for rec in (fld or {}).get("plots") or []:
            records.append({"plot_id": rec[0], "type": rec[1], "x_m": rec[2], "y_m": rec[3], "rel": rec[4],
                            "meas_var": rec[5] if len(rec) > 5 else 0.0})
            groups.append(k)
    meas = dict((f0 or f1).get("measurement") or {})
    meas.pop("var", None)
    out = residual_field(records, n_bins=int(r["n_bins"]), max_lag_m=r["max_lag_m"], min_pairs=int(r["min_pairs"]),
                         groups=groups, measurement=meas)
    out.method = "both years' plots (pairs within a year): " + out.method
    out.plots = []
    return out

