"""Rule scenario_carbon: the carbon density map of a scenario with its 90 % band.

Inputs: results/scenarios/{scenario}/models.json, its predictor rasters and fractions.tif, the baseline year's
        ndvi_se.tif (the NDVI error source, paired with the baseline).
Outputs: results/scenarios/{scenario}/carbon.tif (t C/ha: estimate, lower, upper), carbon.json.
The same streamed stage as rule carbon (greensink.carbon.carbon_map_streamed), with the baseline year's noise.
"""

from greensink import io
from greensink.carbon import carbon_map_streamed
from greensink.logs import progress, setup
from greensink.uncertainty import noise_spec

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
models = io.read_json(inp.models)
grid = io.read_grid(inp.fractions)
noise = noise_spec(p.uncertainty, models, seed=p.seed, year=p.year, resolution_m=grid.resolution_m)
stats = carbon_map_streamed(models, p.types, inp.fractions, dict(zip(p.predictors, inp.predictors, strict=True)),
                            out.carbon, interval_pct=p.interval_pct, compress=p.compress,
                            progress=progress(log, "carbon"), noise=noise, ndvi_se_path=inp.ndvi_se)
io.write_json(out.stats, stats)
log.info("scenario carbon: %.0f t C over %d typed pixels", stats["total_t"], stats["typed_pixels"])
