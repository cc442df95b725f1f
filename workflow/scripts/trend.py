"""Rule trend: Theil-Sen slope of carbon stock over every reporting year, per pixel and per zone, with intervals.

Inputs: zones + coverage, the grid, each year's fractions, predictor rasters (results/{year}/{predictor}.tif, year by
        year), ndvi_se.tif, models.json and zone tables.
Outputs: results/change/trend/trend.tif (t C/ha/yr: trend_t_ha_yr, _lo, _hi, significant 1/0),
         zones/{level}.gpkg/.csv/.parquet (t C/yr per zone, yearly stocks) and trend.json (method, draws, interval,
         the year correlation and residual field that pair the years' draws: greensink.series).
Description: greensink.trend.run_trend.
"""

from greensink.logs import setup
from greensink.trend import run_trend

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
n_pred, n_lvl = len(p.predictors), len(p.levels)
# the year-major input lists (expand over year, then predictor or level), one item per year
predictors = [dict(zip(p.predictors, inp.predictors[k * n_pred : (k + 1) * n_pred], strict=True)) for k in range(len(p.years))]
tables = [inp.tables[k * n_lvl : (k + 1) * n_lvl] for k in range(len(p.years))]
run_trend(p.years, inp.zones, inp.coverage, inp.grid, inp.fractions, predictors, inp.ndvi_se, inp.models, tables,
          out.trend, out.zones, out.record, levels=p.levels, types=p.types, seed=p.seed, interval_pct=p.interval_pct,
          uncertainty=p.uncertainty, compress=p.compress)
