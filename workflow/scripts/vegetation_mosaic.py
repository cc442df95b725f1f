"""Rule vegetation_mosaic (tiles.size_px set): the year's vegetation products of the whole grid from its tiles.

Inputs: results/{year}/tiles/<product>_{tile}.tif of every tile (row-major), results/{year}/tiles/fvc_endmembers.json,
        results/zones/grid.json, the canopy height model when configured (its path goes into vegetation.json).
Outputs: the files of the untiled rule vegetation: results/{year}/ndvi.tif, fvc.tif, vegetation.tif, canopy.tif,
         vegetation_class.tif, height.tif and vegetation.json (counted over the mosaicked strips).
Streamed strip by strip: memory is bounded by imagery.block_rows × columns per product.
Description: greensink.vegetation.run_vegetation_mosaic.
"""

from greensink.logs import setup
from greensink.vegetation import PRODUCTS, run_vegetation_mosaic

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_vegetation_mosaic({k: list(sm.input[k]) for k in PRODUCTS}, sm.input.endmembers, sm.input.grid,
                      dict(sm.output.items()), size_px=p.size_px, settings=p.vegetation, block_rows=p.block_rows,
                      compress=p.compress, chm=sm.input.chm)
