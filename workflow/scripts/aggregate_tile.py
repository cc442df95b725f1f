"""Rule aggregate_tile (tiled runs): one tile's zone partial sums of one year at every level.

Inputs: results/zones/tiles/{level}_coverage_{tile}.npz (the tile's coverage of each level), results/zones/grid.json,
        the year's ndvi/fvc/vegetation/canopy/vegetation_class, predictor, ndvi_se and type fraction rasters (only the
        tile's window is read), the year's models and fill (results/{year}/fill.json).
Outputs: results/{year}/tiles/aggregate_{tile}.npz (per level, the sums of the zones touching the tile:
         greensink.zone_sums; rule aggregate adds them up).
Description: greensink.aggregate.run_aggregate_tile.
"""

from greensink.aggregate import run_aggregate_tile
from greensink.logs import setup

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_aggregate_tile(list(inp.coverage), inp.grid, {name: inp[name] for name in ("ndvi", "fvc", "vegetation", "canopy", "classes")},
                   inp.fractions, inp.models, inp.fill, dict(zip(p.predictors, inp.predictors, strict=True)), inp.ndvi_se,
                   sm.output.sums, year=int(sm.wildcards.year), tile_id=sm.wildcards.tile, size_px=p.size_px,
                   levels=p.levels, types=p.types, seed=p.seed, uncertainty=p.uncertainty)
