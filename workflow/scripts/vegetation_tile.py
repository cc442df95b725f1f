"""Rule vegetation_tile (tiles.size_px set): the vegetation products of one tile of the year's composite.

Inputs: results/{year}/composite.tif (the tile's window is read), results/{year}/tiles/fvc_endmembers.json,
        the canopy height model vegetation.chm.path when configured.
Outputs: results/{year}/tiles/{ndvi,fvc,vegetation,canopy,vegetation_class,height}_{tile}.tif on the tile's
         sub-grid: the window of what rule vegetation writes for the whole grid (same bands and tags).
Streamed strip by strip within the tile: memory is bounded by the tile's width × imagery.block_rows.
Description: greensink.vegetation.run_vegetation_tile.
"""

from greensink.logs import setup
from greensink.vegetation import run_vegetation_tile

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_vegetation_tile(sm.input.composite, sm.input.endmembers, dict(sm.output.items()), tile_id=sm.wildcards.tile,
                    size_px=p.size_px, settings=p.vegetation, block_rows=p.block_rows, compress=p.compress,
                    chm=sm.input.chm)
