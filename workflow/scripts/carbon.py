"""Rule carbon: carbon density map of one year with its 90 % band.

Inputs: results/{year}/model/models.json, results/{year}/{predictor}.tif (ndvi and the other model.predictors),
        results/types/fractions.tif, results/{year}/ndvi_se.tif (NDVI error source).
Bands 2-3 hold every error source of the config's uncertainty section (greensink.uncertainty).
Outputs: results/{year}/carbon.tif (t C/ha: estimate, lower, upper), carbon.json (model use statistics).
Streamed by row strips (greensink.carbon.carbon_map_streamed), so memory is bounded by the strip
(about 4 Mpx) and the chunk of typed pixels × bootstrap draws, not by the size of the grid.
"""

from greensink import io
from greensink.carbon import carbon_map_streamed
from greensink.logs import progress, setup
from greensink.uncertainty import noise_spec

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
models = io.read_json(inp.models)
paths = dict(zip(p.predictors, inp.predictors, strict=True))
grid = io.read_grid(inp.fractions)
noise = noise_spec(p.uncertainty, models, seed=p.seed, year=int(snakemake.wildcards.year),  # noqa: F821
                   resolution_m=grid.resolution_m)
stats = carbon_map_streamed(models, p.types, inp.fractions, paths, out.carbon, interval_pct=p.interval_pct,
                            compress=p.compress, progress=progress(log, "carbon"), noise=noise, ndvi_se_path=inp.ndvi_se)
io.write_json(out.stats, stats)
log.info("carbon: %.0f t C over %d typed pixels", stats["total_t"], stats["typed_pixels"])
