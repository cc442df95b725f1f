"""Rule carbon: carbon density map of one year with its 90 % band.

Inputs: results/{year}/model/models.json, results/{year}/{predictor}.tif (ndvi and the other model.predictors),
        results/types/fractions.tif.
Outputs: results/{year}/carbon.tif (t C/ha: estimate, lower, upper), carbon.json (model use statistics).
Streamed by row strips (greensink.carbon.carbon_map_streamed), so memory is bounded by the strip
(about 4 Mpx) and the chunk of typed pixels × bootstrap draws, not by the size of the grid.
"""

from greensink import io
from greensink.carbon import carbon_map_streamed
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
models = io.read_json(inp.models)
paths = dict(zip(p.predictors, inp.predictors, strict=True))
stats = carbon_map_streamed(models, p.types, inp.fractions, paths, out.carbon, interval_pct=p.interval_pct,
                            compress=p.compress, progress=progress(log, "carbon"))
io.write_json(out.stats, stats)
log.info("carbon: %.0f t C over %d typed pixels", stats["total_t"], stats["typed_pixels"])
