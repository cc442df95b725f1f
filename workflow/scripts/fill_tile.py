"""Rule fill_tile (tiles.size_px set): the partial sums of one year's fill of unobserved typed land over one tile.

Inputs: results/{year}/model/models.json, results/{year}/{predictor}.tif (those the models use; the tile's window
        is read), results/types/fractions.tif (or the year's fractions).
Outputs: results/{year}/tiles/fill_{tile}.json: per type the tile's sums of the observed land, of its densities,
         their squares and each draw's densities, with the tile id, the year and the models.json digest; rule
         fill adds them up.
Description: greensink.carbon.run_fill_tile.
"""

from greensink.carbon import run_fill_tile
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_fill_tile(inp.models, dict(zip(p.predictors, inp.predictors, strict=True)), inp.fractions, sm.output[0],
              types=p.types, year=int(sm.wildcards.year), tile_id=sm.wildcards.tile, size_px=p.size_px)
