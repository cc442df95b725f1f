"""Rule change_tile (tiled runs, tiles.size_px set): the change between y0 and y1 on one tile of the grid.

Inputs: as rule change (the whole-grid rasters, of which only the tile's window is read), the tile's coverage
        matrices (results/zones/tiles/{level}_coverage_{tile}.npz) and both years' fill (results/{year}/fill.json).
Outputs: results/change/{y0}_{y1}/tiles/sink_{tile}.tif and attribution_{tile}.tif (the tile's windows of sink.tif
         and attribution.tif: the draws keyed by the whole grid's pixels), parts_{tile}.npz (the zone partial sums of
         the zones the tile touches and the tile's pixels that lost carbon-sink space), gathered by rule change.
Description: greensink.change.run_change_tile.
"""

from greensink.change import run_change_tile
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_change_tile(sm.input, sm.output, tile_id=sm.wildcards.tile, size_px=p.size_px, y0=int(sm.wildcards.y0),
                y1=int(sm.wildcards.y1), levels=p.levels, types=p.types, predictors=p.predictors,
                typed_land=bool(p.greenspace), interval_pct=p.interval_pct, uncertainty=p.uncertainty, seed=p.seed,
                compress=p.compress, draws=p.draws)
