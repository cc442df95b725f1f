"""Rule scenario_carbon (and scenario_carbon_tile): the carbon density map of a scenario with its 90 % band, of the
whole grid (scenario_carbon) or of one tile of it (scenario_carbon_tile, when tiles.size_px is set).

Inputs: results/scenarios/{scenario}/models.json, its predictor rasters and fractions.tif, the baseline year's
        ndvi_se.tif (the NDVI error source, paired with the baseline).
Outputs: results/scenarios/{scenario}/carbon.tif (t C/ha: estimate, lower, upper), carbon.json; or
         results/scenarios/{scenario}/tiles/carbon_{tile}.tif (the tile's window of the whole map) and
         carbon_{tile}.json (the tile's statistics with its model use counts, summed by rule scenario_carbon_mosaic).
The same streamed stage as rule carbon (greensink.carbon.carbon_map_streamed), with the baseline year's noise.
Description: greensink.scenario.run.run_scenario_carbon.
"""

from greensink.logs import setup
from greensink.scenario.run import run_scenario_carbon

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_scenario_carbon(inp.models, dict(zip(p.predictors, inp.predictors, strict=True)), inp.fractions, inp.ndvi_se,
                    out.carbon, out.stats, types=p.types, year=p.year, seed=p.seed, interval_pct=p.interval_pct,
                    uncertainty=p.uncertainty, compress=p.compress, tile_id=sm.wildcards.get("tile"),
                    size_px=p.get("size_px"))
