"""Rule scenario_zones: a scenario's zone tables at every level and its difference from the baseline.

Inputs: zones + coverage, grid, the baseline year's layers (as rule scenario_inputs reads them), ndvi_se, models and
        zone tables, the scenario's layers and models, optional population and residential polygons, the targets.
Outputs: results/scenarios/{scenario}/zones/{level}.gpkg, .csv, .parquet and totals.csv (one row per level).
Method: greensink.scenario.tables (paired draws: the same seed and noise for baseline and scenario).
"""

import numpy as np

from greensink import io, targets
from greensink.grid import Grid
from greensink.logs import progress, setup
from greensink.scenario import scenarios
from greensink.scenario.files import BASELINE_KEYS, SCENARIO_KEYS, read_burned, read_landscape
from greensink.scenario.tables import Setting, scenario_tables

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
(scenario,) = scenarios({"years": p.years, "scenarios": [p.scenario]})
gs = p.greenspace or {"type_column": "type", "park_types": []}
base = read_landscape({k: inp[k] for k in BASELINE_KEYS}, p.types, gs["type_column"])
scen = read_burned({k: inp[f"s_{k}"] for k in SCENARIO_KEYS},
                   scenario.types(p.types), gs["type_column"])
setting = Setting(
    levels=p.levels, zones=[io.read_vector(path) for path in inp.zones], matrices=[io.read_sparse(m) for m in inp.coverage],
    grid=Grid.read(inp.grid), park_types=gs["park_types"], park_service=p.park_service,
    population=io.read_vector(inp.population[0]) if inp.population else None,
    population_column=p.population["column"] if p.population else None,
    residential=io.read_vector(inp.residential[0]) if inp.residential else None, interval_pct=p.interval_pct,
    min_observed_pct=p.min_observed_pct, typed_land=bool(p.greenspace), uncertainty=p.uncertainty, seed=p.seed)
if setting.population is not None:
    setting.population = setting.population.to_crs(setting.grid.crs)
if setting.residential is not None:
    setting.residential = setting.residential.to_crs(setting.grid.crs)
baseline_tables = {level: io.read_vector(path) for level, path in zip(p.levels, inp.baseline_tables, strict=True)}
tables, totals = scenario_tables(scenario, base, io.read_json(inp.models), scen, io.read_json(inp.s_models),
                                 io.read_raster(inp.ndvi_se), baseline_tables, targets.read_targets(inp.targets), setting,
                                 progress=progress(log, "zone draws"))
for level, gpkg in zip(p.levels, out.zones, strict=True):
    io.write_table(gpkg, tables[level], layer=level, parquet=True)
io.write_csv(out.totals, totals)
for row in totals.to_dict("records"):
    log.info("%s %s: %.1f t C, difference %.1f t C [%.1f, %.1f] from %.2f ha changed", scenario.name, row["level"],
             row["carbon_t"], row["difference_t"], row["difference_t_lo"], row["difference_t_hi"], row["changed_area_ha"])
    if np.isnan(row["difference_t"]):
        log.warning("%s %s: some zone's carbon is unknown (NaN) in the baseline or the scenario: no level total",
                    scenario.name, row["level"])
