"""Rule mosaic: the composite of one year from its tiles (tiles.size_px set).

Inputs: results/{year}/tiles/composite_{tile}.tif (every tile of the grid, in row-major order),
results/{year}/ingest/scenes.json, results/zones/grid.json.
Outputs: results/{year}/composite.tif, the same file the untiled rule composite writes: the
tiles' pixels without seams, and the composite statistics counted exactly over the whole grid.
Streamed strip by strip: memory is bounded by imagery.block_rows × columns.
Description: greensink.composite.run_mosaic.
"""

from greensink.composite import run_mosaic
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_mosaic(sm.input.tiles, sm.input.scenes, sm.input.grid, sm.output[0], size_px=p.size_px, method=p.method,
           block_rows=p.block_rows, compress=p.compress)
