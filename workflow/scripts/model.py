"""Rule model: fit the per-type carbon models of one year on that year's plots.

Inputs: plots (config plots; optional: without them every type takes the table), coefficient table
        (without green-space types, the one pseudo-type VEG takes greensink's tier-1 default density table
        unless the coefficient table has a VEG row), the first year's models.json for later years
        (model.selection first_year), results/{year}/{predictor}.tif (ndvi and the other
        model.predictors: fvc, canopy, height), results/types/fractions.tif.
Outputs: results/{year}/model/models.json (forms, predictors, coefficients, CV metrics, bootstrap draws),
         plots.csv (plots with their predictors, read at the plot's pixel or, with plots.radius_m, averaged over
         its circular footprint; own-type share of that pixel or footprint; and why any was left out),
         {type}.png (observed vs predicted per type).
"""

import pandas as pd

from greensink import io, uncertainty
from greensink.figures import observed_vs_predicted
from greensink.inventory import draws_by_plot
from greensink.logs import setup
from greensink.model import fit_models
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

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
year = int(snakemake.wildcards.year)  # noqa: F821
m = p.model
rasters = dict(zip(p.predictors, inp.predictors, strict=True))
grid = io.read_grid(rasters["ndvi"])
pseudo = list(p.types) == [VEG] and not p.typed  # no green-space types: one pseudo-type for all vegetated land
unused = None
if inp.plots:
    raw = io.read_vector(inp.plots[0])
    if pseudo:  # without green-space types every plot measures the one pseudo-type
        raw[p.plots["type_column"]] = VEG
    plots = prepare_plots(raw, p.plots, p.types, grid, inp.plots[0])
    unused = outside_years(plots, snakemake.config["years"], inp.plots[0], p.plots["year_column"])  # noqa: F821
    if unused:
        log.warning(unused["message"])
    plots = plots[plots["year"] == year].copy()
    radius = p.plots.get("radius_m", 0)
    footprints = footprint_matrix(plots, radius, grid) if radius > 0 else None
    for name, path in rasters.items():
        raster = io.read_raster(path)
        plots[name] = sample(raster, plots["row"], plots["col"]) if footprints is None else sample_footprints(footprints, raster)
    log.info("%d plots measured in %d (%s), predictors read %s", len(plots), year,
             plots["type"].value_counts().sort_index().to_dict(), "at the plot's pixel" if footprints is None else f"over {radius} m circles")
    fractions = io.read_raster(inp.fractions, bands=list(range(1, len(p.types) + 1)))  # (types, rows, cols), also for one type
    share = (own_type_share(plots, fractions, p.types) if footprints is None
             else own_type_share_footprints(plots, footprints, fractions, p.types))
    plots, screened = screen_mixed(plots, share, m["min_plot_type_share"], "pixel" if footprints is None else "footprint")
    if len(screened):
        log.warning("%d plot(s) left out of the fit: their pixel or footprint is mostly another type or non-green land (%s)",
                    len(screened), ", ".join(screened["plot_id"].astype(str).head(10)))
else:  # no plots configured: every type takes the table, no fitting
    plots = pd.DataFrame({c: pd.Series(dtype=object if c in ("plot_id", "type") else float)
                          for c in ("plot_id", "type", "year", "carbon_t_ha", "x_m", "y_m", *p.predictors)})
    screened = pd.DataFrame({c: pd.Series(dtype=object) for c in ("plot_id", "type", "type_share", "screened")})
    log.info("no plots configured: carbon of every type from the %s", "default density table" if pseudo else "coefficient table")
# with a tree inventory (rule plot_carbon): each bootstrap refit uses the plots' carbon draw of its index
tree_record = io.read_json(inp.plot_draws[1]) if inp.plot_draws else None
carbon_draws = draws_by_plot(io.read_csv(inp.plot_draws[0], dtype={"plot_id": str}), year) if inp.plot_draws else None
coefficients = io.read_csv(inp.coefficients)
default = pseudo and VEG not in set(coefficients["type"].astype(str))
if default:  # tier 1: greensink's default density table for all vegetated land
    coefficients = default_table()
models = fit_models(plots, coefficients, types=p.types, min_plots=m["min_plots"], forms=tuple(m["forms"]),
                    block_size_m=m["cv_block_m"], n_folds=m["cv_folds"], n_bootstrap=m["n_bootstrap"], seed=p.seed,
                    weighting=m.get("weighting", "relative"), predictors=tuple(m.get("predictors", ["ndvi"])),
                    bootstrap=m.get("bootstrap", "plots"), anchor=io.read_json(inp.anchor[0]) if inp.anchor else None,
                    carbon_draws=carbon_draws)
models["plot_carbon"] = tree_record or {"source": "plots_file" if inp.plots else None}
if tree_record:
    log.info("plot carbon from the tree inventory %s (%s; allometric error %s, DBH sd %.4g cm + %.4g %%, height sd %.4g %%): "
             "the bootstrap refits use the plots' carbon draws", tree_record["inventory"], tree_record["equation"],
             "on" if tree_record["errors"]["allometric"] else "off", tree_record["errors"]["dbh_sd_cm"],
             tree_record["errors"]["dbh_sd_pct"], tree_record["errors"]["height_sd_pct"])
annotate_models(models, coefficients, default=default, ndvi_min=p.ndvi_vegetation if pseudo else None)
uncertainty.annotate_models(models, plots, p.types, p.uncertainty, carbon_draws)  # residual variogram, plots needed per type
models["year"] = year
models["pseudo_type"] = bool(pseudo)
log.info("carbon from %s", tiers_text(models["tiers"]))
models["notes"] = list(p.notes)
for note in p.notes:
    log.warning(note)
models["plots_outside_years"] = unused
if unused:
    models["notes"].append(unused["message"])
models["screened_plots"] = screened[["plot_id", "type", "type_share", "screened"]].to_dict("records")
for code in p.types:
    models["types"][code]["n_screened_mixed_pixel"] = int((screened["type"] == code).sum())
io.write_json(out.models, models)
used = plots.assign(screened="")
io.write_csv(out.samples, pd.concat([used, screened]).sort_values(["type", "plot_id"]))
for code, path in zip(p.types, out.figures, strict=True):
    t = models["types"][code]
    sel = plots[(plots["type"] == code)]
    observed_vs_predicted(t, sel[list(p.predictors)], pd.to_numeric(sel["carbon_t_ha"]).to_numpy(float), f"{code} {year}", path)
    if t["source"] == "plots":
        log.info("%s: %s on %s, n=%d, CV R² %.2f, RMSE %.2f t C/ha", code, t["form"], "+".join(t["predictors"]), t["n"],
                 t["cv"]["r2"] or float("nan"), t["cv"]["rmse_t_ha"])
    else:
        log.warning("%s: %s", code, t["reason"])
