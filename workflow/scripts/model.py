"""Rule model: fit the per-type carbon models of one year on that year's plots.

Inputs: plots (config plots), coefficient table, the first year's models.json for later years
        (model.selection first_year), results/{year}/{predictor}.tif (ndvi and the other
        model.predictors: fvc, canopy, height), results/types/fractions.tif.
Outputs: results/{year}/model/models.json (forms, predictors, coefficients, CV metrics, bootstrap draws),
         plots.csv (plots with their predictors, read at the plot's pixel or, with plots.radius_m, averaged over
         its circular footprint; own-type share of that pixel or footprint; and why any was left out),
         {type}.png (observed vs predicted per type).
"""

import pandas as pd

from greensink import io
from greensink.figures import observed_vs_predicted
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

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
year = int(snakemake.wildcards.year)  # noqa: F821
m = p.model
rasters = dict(zip(p.predictors, inp.predictors, strict=True))
grid = io.read_grid(rasters["ndvi"])
plots = prepare_plots(io.read_vector(inp.plots), p.plots, p.types, grid, inp.plots)
unused = outside_years(plots, snakemake.config["years"], inp.plots, p.plots["year_column"])  # noqa: F821
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
coefficients = io.read_csv(inp.coefficients)
models = fit_models(plots, coefficients, types=p.types, min_plots=m["min_plots"], forms=tuple(m["forms"]),
                    block_size_m=m["cv_block_m"], n_folds=m["cv_folds"], n_bootstrap=m["n_bootstrap"], seed=p.seed,
                    weighting=m.get("weighting", "relative"), predictors=tuple(m.get("predictors", ["ndvi"])),
                    bootstrap=m.get("bootstrap", "plots"), anchor=io.read_json(inp.anchor[0]) if inp.anchor else None)
models["year"] = year
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
