"""Rule change: yearly net sink between two years, per pixel and per zone, with intervals; the attribution of
each zone's stock change; no net loss of carbon-sink space.

Inputs: zones + coverage, grid, each year's green-space fractions (fractions0 for y0, fractions1 for y1), both
        years' predictor rasters (results/{year}/{predictor}.tif), NDVI standard errors, vegetation classes,
        models, zone tables and fill of unobserved typed land (results/{year}/fill.json, rule fill).
Outputs: results/change/{y0}_{y1}/sink.tif (t C/ha/yr: estimate, lower, upper) and zones/{level}.gpkg/.csv/.parquet
         (sink, stock change and its attribution, no net loss of carbon-sink space), attribution.tif (attribution
         class, stock change t C/ha), lost_patches.gpkg/.csv (lost carbon-sink space), uncertainty.json (the
         residual's year-to-year correlation used to pair the years' draws, net of the plots' measurement error,
         and the residual field of both years' plots used for both years' draws).
Description: greensink.change.run_change.
"""

from greensink.change import run_change
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_change(sm.input, sm.output, y0=int(sm.wildcards.y0), y1=int(sm.wildcards.y1), levels=p.levels, types=p.types,
           predictors=p.predictors, typed_land=bool(p.greenspace), interval_pct=p.interval_pct,
           uncertainty=p.uncertainty, seed=p.seed, compress=p.compress,
           no_net_loss_tolerance_pixels=p.no_net_loss_tolerance_pixels, min_observed_pct=p.min_observed_pct,
           draws=p.draws)
