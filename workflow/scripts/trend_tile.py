"""Rule trend_tile: one tile of the trend over every reporting year (a tiled run, tiles.size_px).

Inputs: the tile's coverage matrix per level (results/zones/tiles/{level}_coverage_{tile}.npz), the grid, each year's
        fractions, predictor rasters (year by year), ndvi_se.tif, models.json and fill.json (rule fill: the whole
        year's fill of unobserved typed land); only the tile's window of each raster is read.
Outputs: results/change/trend/tiles/trend_{tile}.tif (the tile's window of trend.tif) and parts_{tile}.npz (the zone
         sums per year and draw of the zones the tile touches, and its pixel counts).
Description: greensink.trend_tiles.run_trend_tile.
"""

from greensink.logs import setup
from greensink.trend_tiles import run_trend_tile

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_trend_tile(p.years, inp.coverage, inp.grid, inp.fractions, inp.predictors, inp.ndvi_se, inp.models, inp.fills,
               out.trend, out.parts, tile_id=sm.wildcards.tile, size_px=p.size_px, predictor_names=p.predictors,
               levels=p.levels, types=p.types, seed=p.seed, interval_pct=p.interval_pct, uncertainty=p.uncertainty,
               compress=p.compress)
