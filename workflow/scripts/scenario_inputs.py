"""Rule scenario_inputs: a scenario's changes burned into copies of its baseline year's layers.

Inputs: the scenario's change layers, results/zones/grid.json, the baseline year's ndvi, fvc, canopy, height,
        vegetation and vegetation_class rasters, vegetation.json (FVC endmembers), type fractions and typed
        polygons, and models.json.
Outputs: results/scenarios/{scenario}/{ndvi,fvc,canopy,height,vegetation,tree_shrub}.tif, fractions.tif (one band
         per type, then the scenario's planned-density pseudo-types), changes.tif, greenspace.gpkg, models.json
         (the baseline's models and the pseudo-types), inputs.json (the plan's provenance: its config entry, its
         change layers' SHA-256, the state each change burned in; greensink.provenance.scenario_record).
Method: greensink.scenario.burn (docs/method.md, Scenarios).
Description: greensink.scenario.run.run_scenario_inputs.
"""

from greensink.logs import setup
from greensink.scenario.files import BASELINE_KEYS, SCENARIO_KEYS
from greensink.scenario.run import run_scenario_inputs

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_scenario_inputs(inp.changes, inp.grid, {k: inp[k] for k in BASELINE_KEYS}, inp.vegetation_stats, inp.models,
                    {k: out[k] for k in SCENARIO_KEYS}, out.models, out.record, scenario=p.scenario, years=p.years,
                    types=p.types, type_column=p.type_column, typed_land=p.typed_land, vegetation=p.vegetation,
                    compress=p.compress)
