"""Rule scenario_zones: a scenario's zone tables at every level and its difference from the baseline.

Inputs: zones + coverage, grid, the baseline year's layers (as rule scenario_inputs reads them), ndvi_se, models,
        zone tables and zone draws (results/{year}/zones/{level}.draws.npz, rule aggregate's), its fill of
        unobserved typed land (results/{year}/fill.json, rule fill's), the scenario's layers and models, optional
        population and residential polygons, the targets.
Outputs: results/scenarios/{scenario}/zones/{level}.gpkg, .csv, .parquet and totals.csv (one row per level).
Method: greensink.scenario.tables (paired draws: the same seed and noise for baseline and scenario; the
        baseline's zone sums from its record, drawn again only where the changes touch it).
Description: greensink.scenario.run.run_scenario_zones.
"""

from greensink.logs import setup
from greensink.scenario.files import BASELINE_KEYS, SCENARIO_KEYS
from greensink.scenario.run import run_scenario_zones

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_scenario_zones(inp.zones, inp.coverage, inp.grid, {k: inp[k] for k in BASELINE_KEYS}, inp.ndvi_se, inp.models,
                   inp.baseline_tables, {k: inp[f"s_{k}"] for k in SCENARIO_KEYS}, inp.s_models, inp.targets, out.zones,
                   out.totals, scenario=p.scenario, years=p.years, levels=p.levels, types=p.types,
                   greenspace=p.greenspace, park_service=p.park_service, interval_pct=p.interval_pct,
                   min_observed_pct=p.min_observed_pct, uncertainty=p.uncertainty, seed=p.seed,
                   population=(inp.population or [None])[0], population_config=p.population,
                   residential=(inp.residential or [None])[0], baseline_draws=list(inp.baseline_draws),
                   fill=inp.fill)
