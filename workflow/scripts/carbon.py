"""Rule carbon (and carbon_tile): carbon density map of one year with its 90 % band, of the whole grid (carbon) or
of one tile of it (carbon_tile, when tiles.size_px is set).

Inputs: results/{year}/model/models.json, results/{year}/{predictor}.tif (ndvi and the other model.predictors),
        results/types/fractions.tif, results/{year}/ndvi_se.tif (NDVI error source).
Bands 2-3 hold every error source of the config's uncertainty section (greensink.uncertainty).
Outputs: results/{year}/carbon.tif (t C/ha: estimate, lower, upper), carbon.json (model use statistics); or
         results/{year}/tiles/carbon_{tile}.tif on the tile's window (the window of the whole grid's map: the
         draws are keyed by the whole grid's pixels) and carbon_{tile}.json (the tile's statistics with its model
         use counts, summed by rule carbon_mosaic).
Streamed by row strips (greensink.carbon.carbon_map_streamed), so memory is bounded by the strip
(about 4 Mpx) and the chunk of typed pixels × bootstrap draws, not by the size of the grid.
Description: greensink.carbon.run_carbon.
"""

from greensink.carbon import run_carbon
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_carbon(inp.models, dict(zip(p.predictors, inp.predictors, strict=True)), inp.fractions, inp.ndvi_se, out.carbon,
           out.stats, types=p.types, year=int(sm.wildcards.year), seed=p.seed, interval_pct=p.interval_pct,
           uncertainty=p.uncertainty, compress=p.compress, tile_id=sm.wildcards.get("tile"), size_px=p.get("size_px"))
