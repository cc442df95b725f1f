"""Rule scenario_carbon_mosaic (tiles.size_px set): a scenario's carbon map and carbon.json of the whole grid from
its tiles.

Inputs: results/scenarios/{scenario}/tiles/carbon_{tile}.tif and .json of every tile (row-major),
        results/zones/grid.json.
Outputs: results/scenarios/{scenario}/carbon.tif and carbon.json, the files of the untiled rule scenario_carbon
         (the total summed from the mosaicked estimate band, the counts from the tiles). Streamed by row strips.
Description: greensink.scenario.run.run_scenario_carbon_mosaic (the mosaic of rule carbon_mosaic).
"""

from greensink.logs import setup
from greensink.scenario.run import run_scenario_carbon_mosaic

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_scenario_carbon_mosaic(list(sm.input.tiles), list(sm.input.stats), sm.input.grid, sm.output.carbon,
                           sm.output.stats, size_px=p.size_px, compress=p.compress)
