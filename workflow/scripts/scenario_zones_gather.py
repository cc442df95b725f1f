"""Rule scenario_zones of a tiled run: a scenario's zone tables at every level and its difference from the baseline,
from the tiles' zone partial sums.

Inputs: results/zones/{level}.gpkg, results/scenarios/{scenario}/tiles/zones_{tile}.npz of every tile (rule
        scenario_zones_tile), results/zones/grid.json, the baseline year's models, fill, zone tables and zone draws
        (results/{year}/zones/{level}.draws.npz, rule aggregate's), the scenario's green-space polygons and models,
        optional population and residential polygons, the targets. No raster and no coverage matrix.
Outputs: the untiled rule's (scenario_zones.py): results/scenarios/{scenario}/zones/{level}.gpkg, .csv, .parquet and
         totals.csv.
Description: greensink.scenario.tiles.run_scenario_zones_gather.
"""

from greensink.logs import setup
from greensink.scenario.tiles import run_scenario_zones_gather

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_scenario_zones_gather(inp.zones, list(inp.sums), inp.grid, inp.models, inp.fill, inp.baseline_tables,
                          list(inp.baseline_draws), inp.s_greenspace, inp.s_models, inp.targets, out.zones, out.totals,
                          scenario=p.scenario, years=p.years, size_px=p.size_px, levels=p.levels, types=p.types,
                          greenspace=p.greenspace, park_service=p.park_service, interval_pct=p.interval_pct,
                          min_observed_pct=p.min_observed_pct, uncertainty=p.uncertainty, seed=p.seed,
                          population=(inp.population or [None])[0], population_config=p.population,
                          residential=(inp.residential or [None])[0])
