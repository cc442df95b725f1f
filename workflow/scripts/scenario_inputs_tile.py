"""Rule scenario_inputs_tile (tiles.size_px set): a scenario's changes burned into one tile of its baseline's layers.

Inputs: results/zones/grid.json, results/scenarios/{scenario}/tiles/plan.json (rule scenario_plan), the baseline
        year's ndvi, fvc, canopy, height, vegetation, vegetation_class and type fractions rasters (the tile's window).
Outputs: results/scenarios/{scenario}/tiles/{ndvi,fvc,canopy,height,vegetation,tree_shrub,fractions,changes}_{tile}.tif
         on the tile's window: the window of rule scenario_inputs' rasters, bit for bit.
Method: greensink.scenario.burn.burn_window, window_coverage (docs/method.md, Scenarios).
Description: greensink.scenario.run.run_scenario_inputs_tile.
"""

from greensink.logs import setup
from greensink.scenario.files import BASELINE_KEYS, RASTER_KEYS
from greensink.scenario.run import run_scenario_inputs_tile

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_scenario_inputs_tile(inp.grid, {k: inp[k] for k in BASELINE_KEYS if k != "greenspace"}, inp.plan,
                         {k: out[k] for k in RASTER_KEYS}, scenario=p.scenario, years=p.years, types=p.types,
                         type_column=p.type_column, tile_id=sm.wildcards.tile, size_px=p.size_px, compress=p.compress)
