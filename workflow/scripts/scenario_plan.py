"""Rule scenario_plan (tiles.size_px set): the whole-scene part of rule scenario_inputs, once before its tiles.

Inputs: the scenario's change layers, results/zones/grid.json, the baseline year's ndvi, fvc, canopy, height,
        vegetation and vegetation_class rasters, vegetation.json (FVC endmembers), type fractions and typed
        polygons, and models.json.
Outputs: results/scenarios/{scenario}/greenspace.gpkg, models.json, inputs.json (as rule scenario_inputs writes
         them) and tiles/plan.json (each change's polygons and state, the edited polygons per type: what the tile
         jobs burn).
Method: greensink.scenario.burn.plan_burn (docs/method.md, Scenarios).
Description: greensink.scenario.run.run_scenario_plan.
"""

from greensink.logs import setup
from greensink.scenario.files import BASELINE_KEYS
from greensink.scenario.run import run_scenario_plan

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_scenario_plan(inp.changes, inp.grid, {k: inp[k] for k in BASELINE_KEYS}, inp.vegetation_stats, inp.models,
                  out.greenspace, out.models, out.record, out.plan, scenario=p.scenario, years=p.years, types=p.types,
                  type_column=p.type_column, typed_land=p.typed_land, vegetation=p.vegetation)
