"""Rule carbon: carbon density map of one year with its 90 % band.

Inputs: results/{year}/model/models.json, results/{year}/{predictor}.tif (ndvi and the other model.predictors),
        results/types/fractions.tif.
Outputs: results/{year}/carbon.tif (t C/ha: estimate, lower, upper), carbon.json (model use statistics).
"""

from greensink import io
from greensink.carbon import density_map, model_use_stats, pixel_function, typed_pixels
from greensink.logs import setup
from greensink.model import used_predictors

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
models = io.read_json(inp.models)
paths = dict(zip(p.predictors, inp.predictors, strict=True))
grid = io.read_grid(paths["ndvi"])
rasters = {name: io.read_raster(paths[name]) for name in used_predictors(models, p.types)}
fractions = io.read_raster(inp.fractions)
active = typed_pixels(fractions)
fn = pixel_function(models, p.types, fractions, rasters)
carbon = density_map(fn, active, grid.shape, p.interval_pct)
lo, hi = int(round((100 - p.interval_pct) / 2)), int(round(100 - (100 - p.interval_pct) / 2))
io.write_raster(out.carbon, carbon, grid, band_names=["carbon_t_ha", f"carbon_t_ha_p{lo}", f"carbon_t_ha_p{hi}"], compress=p.compress,
                tags={"units": "t C/ha", "interval_pct": p.interval_pct})
stats = model_use_stats(models, p.types, fractions, rasters)
total = float(carbon[0][carbon[0] == carbon[0]].sum() * grid.pixel_area_ha)
io.write_json(out.stats, {"total_t": total, "typed_pixels": int(active.size), "types": stats})
log.info("carbon: %.0f t C over %d typed pixels", total, active.size)
