"""Rule fill (untiled) and rule fill_tile (tiles.size_px set): the fill of one year's unobserved typed land.

Inputs: results/{year}/model/models.json, results/{year}/{predictor}.tif (those the models use are read),
        results/types/fractions.tif (or the year's fractions).
Outputs: rule fill: results/{year}/fill.json, each type's fill density (t C/ha of its land), between-pixel sd,
         observed land and fill draws, with the year, the seed and the models.json digest; rule fill_tile:
         results/{year}/tiles/fill_{tile}.json, the partial sums of the tile's window, which rule fill adds up.
Description: greensink.carbon.run_fill, greensink.carbon.run_fill_tile.
"""

from greensink.carbon import run_fill, run_fill_tile
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
predictors = dict(zip(p.predictors, inp.predictors, strict=True))
year = int(sm.wildcards.year)
if sm.wildcards.get("tile"):
    run_fill_tile(inp.models, predictors, inp.fractions, sm.output[0], types=p.types, year=year,
                  tile_id=sm.wildcards.tile, size_px=p.size_px)
else:
    run_fill(inp.models, predictors, inp.fractions, sm.output[0], types=p.types, year=year)
