"""Rule aggregate (untiled): the zone tables of one year at every level.

Inputs: results/zones/{level}.gpkg and _coverage.npz, the year's ndvi/fvc/vegetation/canopy/vegetation_class
        rasters and the model's predictor rasters (results/{year}/{predictor}.tif), results/types/fractions.tif and
        greenspace.gpkg, the year's models and fill of unobserved typed land (results/{year}/fill.json), optional
        population and residential polygons.
Outputs: results/{year}/zones/{level}.indicators.parquet (one row per zone, the columns of docs/outputs.md but the
         targets'; an intermediate: rule targets adds the targets and writes results/{year}/zones/{level}.gpkg);
         results/{year}/zones/{level}.draws.npz (the zone draw sums, greensink.aggregate.ZoneDraws; read by the
         scenario rules for their baseline).
Zone intervals hold every error source of the uncertainty config (greensink.uncertainty), with each
source's share of the variance (var_share_<source>_pct), U % and the conservative lower bound.
Unobserved typed land is filled with its type's mean density over the year's observed pixels
(results/{year}/fill.json, rule fill); zones below carbon.min_observed_pct of observed typed land have NaN carbon.
Description: greensink.aggregate.run_aggregate (a tiled run: rules aggregate_tile and aggregate, aggregate_gather.py).
"""

from greensink.aggregate import run_aggregate
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_aggregate(inp.zones, inp.coverage, inp.grid, {name: inp[name] for name in ("ndvi", "fvc", "vegetation", "canopy", "classes")},
              inp.fractions, inp.greenspace, inp.models, dict(zip(p.predictors, inp.predictors, strict=True)), inp.ndvi_se,
              list(sm.output.tables), year=int(sm.wildcards.year), levels=p.levels, types=p.types, greenspace_config=p.greenspace,
              seed=p.seed, interval_pct=p.interval_pct, min_observed_pct=p.min_observed_pct, uncertainty=p.uncertainty,
              park_service=p.park_service, population=(inp.population or [None])[0], population_config=p.population,
              residential=(inp.residential or [None])[0], draws_out=list(sm.output.draws), fill_json=inp.fill)
