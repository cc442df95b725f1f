"""Rule scenario_inputs_mosaic (tiles.size_px set): a scenario's whole-grid rasters from their tiles.

Inputs: results/scenarios/{scenario}/tiles/<name>_{tile}.tif of every tile (row-major) for each raster of rule
        scenario_inputs, results/zones/grid.json.
Outputs: results/scenarios/{scenario}/{ndvi,fvc,canopy,height,vegetation,tree_shrub,fractions,changes}.tif, the
         files of the untiled rule scenario_inputs. Streamed by row strips.
Description: greensink.scenario.run.run_scenario_inputs_mosaic.
"""

from greensink.logs import setup
from greensink.scenario.files import RASTER_KEYS
from greensink.scenario.run import run_scenario_inputs_mosaic

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_scenario_inputs_mosaic({k: list(inp[k]) for k in RASTER_KEYS}, inp.grid, {k: out[k] for k in RASTER_KEYS},
                           size_px=p.size_px, compress=p.compress)
