"""Rule model: fit the per-type carbon models of one year on that year's plots (:func:`run_model`).

Not re-exported by :mod:`greensink.model`: it reads and writes files and draws the fits through
:mod:`greensink.figures` and annotates them through :mod:`greensink.uncertainty`, which both import the
model package, so the package importing it would be an import cycle. Import it as
``from greensink.model.run import run_model``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from greensink import io as gio
from greensink import uncertainty
from greensink.figures import observed_vs_predicted
from greensink.inventory import draws_by_plot
from greensink.model.fit import fit_models
from greensink.plots import (
    footprint_matrix,
    outside_years,
    own_type_share,
    own_type_share_footprints,
    prepare_plots,
    sample,
    sample_footprints,
    screen_mixed,
)
from greensink.tiers import VEG, annotate_models, default_table, tiers_text

log = logging.getLogger(__name__)


def run_model(plots: str | Path | None, coefficients: str | Path, predictors: Mapping[str, str | Path],
              fractions: str | Path, models_out: str | Path, samples_out: str | Path,
              figures_out: Sequence[str | Path], *, year: int, years: Sequence[int], types: Sequence[str],
              model: Mapping, plots_config: Mapping | None, typed: bool, seed: int, ndvi_vegetation: float,
              notes: Sequence[str] = (), uncertainty_config: Mapping | None = None,
              plot_draws: Sequence[str | Path] = (), anchor: str | Path | None = None) -> dict:
    """Rule model: the models of ``year`` (models.json's dict, written to ``models_out`` and returned).

    ``plots`` is the plots file (None: no plots, every type takes the coefficient table), read with the
    config's ``plots_config`` section; its plots of other years than ``years`` are reported, those of other
    years than ``year`` left out. ``predictors`` maps each predictor name to the year's raster (``ndvi``
    first); the plots take their values at their pixel, or averaged over their footprint with
    ``plots_config["radius_m"]``; plots mostly of another type (``fractions``, one band per type of
    ``types``) are screened out. ``model`` is the config's model section (forms, CV, bootstrap),
    ``coefficients`` the coefficient table; without green-space types (``typed`` False and ``types`` the one
    pseudo-type VEG) and no VEG row in it, greensink's tier-1 default density table is used, counting
    carbon where NDVI ≥ ``ndvi_vegetation``. ``plot_draws`` (draws CSV, record JSON; empty without a tree
    inventory) gives each bootstrap refit its draw of the plots' carbon; ``anchor`` is the first year's
    models.json (``model.selection`` first_year). Writes ``samples_out`` (the plots with their predictors
    and why any was left out) and one observed-vs-predicted PNG per type to ``figures_out``."""
    names = list(predictors)
    grid = gio.read_grid(predictors["ndvi"])
    pseudo = list(types) == [VEG] and not typed  # no green-space types: one pseudo-type for all vegetated land
    unused = None
    if plots:
        raw = gio.read_vector(plots)
        if pseudo:  # without green-space types every plot measures the one pseudo-type
            raw[plots_config["type_column"]] = VEG
        table = prepare_plots(raw, plots_config, types, grid, plots)
        unused = outside_years(table, years, plots, plots_config["year_column"])
        if unused:
            log.warning(unused["message"])
        table = table[table["year"] == year].copy()
        radius = plots_config.get("radius_m", 0)
        footprints = footprint_matrix(table, radius, grid) if radius > 0 else None
        for name, path in predictors.items():
            raster = gio.read_raster(path)
            table[name] = (sample(raster, table["row"], table["col"]) if footprints is None
                           else sample_footprints(footprints, raster))
        log.info("%d plots measured in %d (%s), predictors read %s", len(table), year,
                 table["type"].value_counts().sort_index().to_dict(),
                 "at the plot's pixel" if footprints is None else f"over {radius} m circles")
        frac = gio.read_raster(fractions, bands=list(range(1, len(types) + 1)))  # (types, rows, cols), also for one type
        share = (own_type_share(table, frac, types) if footprints is None
                 else own_type_share_footprints(table, footprints, frac, types))
        table, screened = screen_mixed(table, share, model["min_plot_type_share"],
                                       "pixel" if footprints is None else "footprint")
        if len(screened):
            log.warning("%d plot(s) left out of the fit: their pixel or footprint is mostly another type or non-green "
                        "land (%s)", len(screened), ", ".join(screened["plot_id"].astype(str).head(10)))
    else:  # no plots configured: every type takes the table, no fitting
        table = pd.DataFrame({c: pd.Series(dtype=object if c in ("plot_id", "type") else float)
                              for c in ("plot_id", "type", "year", "carbon_t_ha", "x_m", "y_m", *names)})
        screened = pd.DataFrame({c: pd.Series(dtype=object) for c in ("plot_id", "type", "type_share", "screened")})
        log.info("no plots configured: carbon of every type from the %s",
                 "default density table" if pseudo else "coefficient table")
    # with a tree inventory (rule plot_carbon): each bootstrap refit uses the plots' carbon draw of its index
    tree_record = gio.read_json(plot_draws[1]) if plot_draws else None
    carbon_draws = draws_by_plot(gio.read_csv(plot_draws[0], dtype={"plot_id": str}), year) if plot_draws else None
    coef = gio.read_csv(coefficients)
    default = pseudo and VEG not in set(coef["type"].astype(str))
    if default:  # tier 1: greensink's default density table for all vegetated land
        coef = default_table()
    models = fit_models(table, coef, types=types, min_plots=model["min_plots"], forms=tuple(model["forms"]),
                        block_size_m=model["cv_block_m"], n_folds=model["cv_folds"], n_bootstrap=model["n_bootstrap"],
                        seed=seed, weighting=model.get("weighting", "relative"),
                        predictors=tuple(model.get("predictors", ["ndvi"])), bootstrap=model.get("bootstrap", "plots"),
                        anchor=gio.read_json(anchor) if anchor else None, carbon_draws=carbon_draws)
    models["plot_carbon"] = tree_record or {"source": "plots_file" if plots else None}
    if tree_record:
        e = tree_record["errors"]
        log.info("plot carbon from the tree inventory %s (%s; allometric error %s, DBH sd %.4g cm + %.4g %%, height sd "
                 "%.4g %%): the bootstrap refits use the plots' carbon draws", tree_record["inventory"],
                 tree_record["equation"], "on" if e["allometric"] else "off", e["dbh_sd_cm"], e["dbh_sd_pct"],
                 e["height_sd_pct"])
    annotate_models(models, coef, default=default, ndvi_min=ndvi_vegetation if pseudo else None)
    uncertainty.annotate_models(models, table, types, uncertainty_config, carbon_draws)  # residual variogram, plots needed
    models["year"] = year
    models["pseudo_type"] = bool(pseudo)
    log.info("carbon from %s", tiers_text(models["tiers"]))
    models["notes"] = list(notes)
    for note in notes:
        log.warning(note)
    models["plots_outside_years"] = unused
    if unused:
        models["notes"].append(unused["message"])
    models["screened_plots"] = screened[["plot_id", "type", "type_share", "screened"]].to_dict("records")
    for code in types:
        models["types"][code]["n_screened_mixed_pixel"] = int((screened["type"] == code).sum())
    gio.write_json(models_out, models)
    used = table.assign(screened="")
    gio.write_csv(samples_out, pd.concat([used, screened]).sort_values(["type", "plot_id"]))
    for code, path in zip(types, figures_out, strict=True):
        t = models["types"][code]
        sel = table[(table["type"] == code)]
        observed_vs_predicted(t, sel[names], pd.to_numeric(sel["carbon_t_ha"]).to_numpy(float), f"{code} {year}", path)
        if t["source"] == "plots":
            log.info("%s: %s on %s, n=%d, CV R² %.2f, RMSE %.2f t C/ha", code, t["form"], "+".join(t["predictors"]),
                     t["n"], t["cv"]["r2"] or float("nan"), t["cv"]["rmse_t_ha"])
        else:
            log.warning("%s: %s", code, t["reason"])
    return models
