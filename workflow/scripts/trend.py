"""Rule trend: Theil-Sen slope of carbon stock over every reporting year, per pixel and per zone, with intervals.

Inputs: zones + coverage, the grid, each year's fractions, predictor rasters (results/{year}/{predictor}.tif, year by
        year), ndvi_se.tif, models.json, fill.json (rule fill's fill of unobserved typed land) and zone tables.
Outputs: results/change/trend/trend.tif (t C/ha/yr: trend_t_ha_yr, _lo, _hi, significant 1/0),
         zones/{level}.gpkg/.csv/.parquet (t C/yr per zone, yearly stocks; the trend over the land observed in every
         year, observed_all_pct) and trend.json (method, draws, interval,
         the year correlation and residual field that pair the years' draws: greensink.series).
Description: greensink.trend.run_trend.
"""

from greensink.logs import setup
from greensink.trend import run_trend

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_trend(p.years, inp.zones, inp.coverage, inp.grid, inp.fractions, inp.predictors, inp.ndvi_se, inp.models, inp.tables,
          out.trend, out.zones, out.record, predictor_names=p.predictors, levels=p.levels, types=p.types, seed=p.seed,
          interval_pct=p.interval_pct, uncertainty=p.uncertainty, compress=p.compress,
          min_observed_pct=p.min_observed_pct, fills=inp.fills)
