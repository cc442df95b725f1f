"""Rule scenario_inputs: a scenario's changes burned into copies of its baseline year's layers.

Inputs: the scenario's change layers, results/zones/grid.json, the baseline year's ndvi, fvc, canopy, height,
        vegetation and vegetation_class rasters, vegetation.json (FVC endmembers), type fractions and typed
        polygons, and models.json.
Outputs: results/scenarios/{scenario}/{ndvi,fvc,canopy,height,vegetation,tree_shrub}.tif, fractions.tif (one band
         per type, then the scenario's planned-density pseudo-types), changes.tif, greenspace.gpkg, models.json
         (the baseline's models and the pseudo-types), inputs.json (the plan's provenance: its config entry, its
         change layers' SHA-256, the state each change burned in; greensink.provenance.scenario_record).
Method: greensink.scenario.burn (docs/method.md, Scenarios).
"""

from greensink import io
from greensink.grid import Grid
from greensink.logs import setup
from greensink.provenance import scenario_record
from greensink.scenario import read_change_layer, scenarios
from greensink.scenario.burn import burn, scenario_models
from greensink.scenario.files import BASELINE_KEYS, SCENARIO_KEYS, read_landscape, thresholds, write_burned

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
(scenario,) = scenarios({"years": p.years, "scenarios": [p.scenario]})
grid = Grid.read(inp.grid)
base = read_landscape({k: inp[k] for k in BASELINE_KEYS}, p.types, p.type_column)
layers = [read_change_layer(c, grid.crs, f"scenario {scenario.name} change {k + 1} ({c.kind})", grid.bounds)
          for k, c in enumerate(scenario.changes)]
burned = burn(base, scenario, layers, grid, thresholds(p.vegetation, io.read_json(inp.vegetation_stats)), p.typed_land)
write_burned({k: out[k] for k in SCENARIO_KEYS}, burned, grid, p.compress)
io.write_json(out.models, scenario_models(io.read_json(inp.models), scenario))
io.write_json(out.record, scenario_record(p.scenario, inp.changes, scenario=scenario.to_json(), types=burned.types,
                                         changes=burned.states))
for k, s in enumerate(burned.states):
    log.info("scenario %s change %d (%s, %s): %.2f ha of polygons, state %s", scenario.name, k + 1, s["kind"], s["path"],
             s["area_ha"], {key: round(v, 4) for key, v in s["state"].items()})
log.info("scenario %s: %.2f ha of pixels changed", scenario.name, float(burned.changed.sum()) * grid.pixel_area_ha)
