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
Description: greensink.model.run.run_model.
"""

from greensink.logs import setup
from greensink.model.run import run_model

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_model((inp.plots or [None])[0], inp.coefficients, dict(zip(p.predictors, inp.predictors, strict=True)), inp.fractions,
          out.models, out.samples, out.figures, year=int(sm.wildcards.year), years=sm.config["years"], types=p.types,
          model=p.model, plots_config=p.plots, typed=p.typed, seed=p.seed, ndvi_vegetation=p.ndvi_vegetation,
          notes=p.notes, uncertainty_config=p.uncertainty, plot_draws=list(inp.plot_draws),
          anchor=(inp.anchor or [None])[0])
