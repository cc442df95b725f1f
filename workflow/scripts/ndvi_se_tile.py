"""Rule ndvi_se_tile (tiles.size_px set): the composite NDVI's standard error of one tile.

Inputs: results/{year}/composite.tif (the tile's window of its valid_obs_count band is read).
Outputs: results/{year}/tiles/ndvi_se_{tile}.tif on the tile's sub-grid: the window of rule ndvi_se's file.
Description: greensink.uncertainty.ndvi_se.run_ndvi_se_tile.
"""

from greensink.logs import setup
from greensink.uncertainty.ndvi_se import run_ndvi_se_tile

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_ndvi_se_tile(sm.input.composite, sm.output[0], tile_id=sm.wildcards.tile, size_px=p.size_px, obs_sd=p.obs_sd,
                 method=p.method, compress=p.compress)
