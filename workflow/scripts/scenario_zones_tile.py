"""Rule scenario_zones_tile (tiled runs): one tile's zone partial sums of one scenario at every level.

Inputs: results/zones/tiles/{level}_coverage_{tile}.npz (the tile's coverage of each level), results/zones/grid.json,
        the baseline year's ndvi/fvc/canopy/height/vegetation/vegetation_class, type fraction and ndvi_se rasters,
        its models and fill (results/{year}/fill.json), the scenario's layers and models (rule scenario_inputs'); only
        the tile's window of each raster is read.
Outputs: results/scenarios/{scenario}/tiles/zones_{tile}.npz (per level, the sums of the zones touching the tile:
         greensink.zone_sums; rule scenario_zones adds them up).
Description: greensink.scenario.tiles.run_scenario_zones_tile.
"""

from greensink.logs import setup
from greensink.scenario.files import BASELINE_KEYS, SCENARIO_KEYS
from greensink.scenario.tiles import run_scenario_zones_tile

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, p = sm.input, sm.params
run_scenario_zones_tile(list(inp.coverage), inp.grid, {k: inp[k] for k in BASELINE_KEYS if k != "greenspace"},
                        inp.ndvi_se, inp.models, inp.fill, {k: inp[f"s_{k}"] for k in SCENARIO_KEYS if k != "greenspace"},
                        inp.s_models, sm.output.sums, scenario=p.scenario, years=p.years, tile_id=sm.wildcards.tile,
                        size_px=p.size_px, levels=p.levels, types=p.types, seed=p.seed, uncertainty=p.uncertainty)
