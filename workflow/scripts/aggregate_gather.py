"""Rule aggregate of a tiled run: the zone tables of one year at every level, from the tiles' zone partial sums.

Inputs: results/zones/{level}.gpkg, results/{year}/tiles/aggregate_{tile}.npz of every tile (rule aggregate_tile),
        results/zones/grid.json, the year's green-space polygons, models and fill (results/{year}/fill.json), optional
        population and residential polygons. No raster and no coverage matrix.
Outputs: the untiled rule's (aggregate.py): results/{year}/zones/{level}.indicators.parquet and {level}.draws.npz.
Description: greensink.aggregate.run_aggregate_gather.
"""

from greensink.aggregate import run_aggregate_gather
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_aggregate_gather(inp.zones, list(inp.sums), inp.grid, inp.greenspace, inp.models, inp.fill, list(sm.output.tables),
                     year=int(sm.wildcards.year), size_px=p.size_px, levels=p.levels, types=p.types,
                     greenspace_config=p.greenspace, seed=p.seed, interval_pct=p.interval_pct,
                     min_observed_pct=p.min_observed_pct, uncertainty=p.uncertainty, park_service=p.park_service,
                     population=(inp.population or [None])[0], population_config=p.population,
                     residential=(inp.residential or [None])[0], draws_out=list(sm.output.draws))
