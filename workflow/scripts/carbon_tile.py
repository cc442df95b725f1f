"""Rule carbon_tile (tiles.size_px set): the carbon density map of one tile of one year, with its 90 % band.

Inputs: as rule carbon (results/{year}/model/models.json, the predictor rasters, the type fractions,
        results/{year}/ndvi_se.tif): the tile's window of each is read.
Outputs: results/{year}/tiles/carbon_{tile}.tif on the tile's sub-grid (the window of the whole grid's map: the
         draws are keyed by the whole grid's pixels) and results/{year}/tiles/carbon_{tile}.json (the tile's
         statistics with its model use counts, summed by rule carbon_mosaic).
Streamed by row strips of the tile: memory is bounded by the tile, not the grid.
Description: greensink.carbon.run_carbon with tile_id.
"""

from greensink.carbon import run_carbon
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_carbon(inp.models, dict(zip(p.predictors, inp.predictors, strict=True)), inp.fractions, inp.ndvi_se, out.carbon,
           out.stats, types=p.types, year=int(sm.wildcards.year), seed=p.seed, interval_pct=p.interval_pct,
           uncertainty=p.uncertainty, compress=p.compress, tile_id=sm.wildcards.tile, size_px=p.size_px)
