"""Rule ndvi_se_mosaic (tiles.size_px set): the year's ndvi_se.tif of the whole grid from its tiles.

Inputs: results/{year}/tiles/ndvi_se_{tile}.tif of every tile (row-major), results/zones/grid.json.
Outputs: results/{year}/ndvi_se.tif, the file the untiled rule ndvi_se writes. Streamed by row strips.
Description: greensink.uncertainty.ndvi_se.run_ndvi_se_mosaic.
"""

from greensink.logs import setup
from greensink.uncertainty.ndvi_se import run_ndvi_se_mosaic

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_ndvi_se_mosaic(list(sm.input.tiles), sm.input.grid, sm.output[0], size_px=p.size_px, compress=p.compress)
