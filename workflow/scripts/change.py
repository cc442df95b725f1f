"""Rule change: yearly net sink between two years, per pixel and per zone, with intervals.

Inputs: zones + coverage, fractions, both years' predictor rasters (results/{year}/{predictor}.tif), models and zone tables.
Outputs: results/change/{y0}_{y1}/sink.tif (t C/ha/yr: estimate, lower, upper) and zones/{level}.gpkg/.csv/.parquet.
"""

from greensink import io
from greensink.aggregate import zone_draw_sums
from greensink.carbon import density_map, fill_values, pixel_function, type_fill, typed_pixels
from greensink.change import change_table, difference_function
from greensink.grid import Grid
from greensink.logs import setup
from greensink.model import used_predictors

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
y0, y1 = int(snakemake.wildcards.y0), int(snakemake.wildcards.y1)  # noqa: F821
grid = Grid.read(inp.grid)
fractions = io.read_raster(inp.fractions, bands=list(range(1, len(p.types) + 1)))  # (types, rows, cols), also for one type
active = typed_pixels(fractions)


def year_functions(models_path, predictor_paths):
    """The year's pixel function as mapped (NaN where unobserved) and as the zone tables sum it (filled)."""
    models = io.read_json(models_path)
    paths = dict(zip(p.predictors, predictor_paths, strict=True))
    rasters = {name: io.read_raster(paths[name]) for name in used_predictors(models, p.types)}
    fill = fill_values(type_fill(models, p.types, fractions, rasters, seed=int(models.get("seed", 0))))
    return pixel_function(models, p.types, fractions, rasters), pixel_function(models, p.types, fractions, rasters, fill=fill)


(map0, sum0), (map1, sum1) = year_functions(inp.models0, inp.predictors0), year_functions(inp.models1, inp.predictors1)
sink = density_map(difference_function(map0, map1, y1 - y0), active, grid.shape, p.interval_pct)
io.write_raster(out.sink, sink, grid, band_names=["sink_t_ha_yr", "sink_t_ha_yr_lo", "sink_t_ha_yr_hi"], compress=p.compress,
                tags={"units": "t C/ha/yr", "years": f"{y0}-{y1}"})
matrices = [io.read_sparse(path) for path in inp.coverage]
sums = zone_draw_sums(matrices, difference_function(sum0, sum1, y1 - y0), active, grid.pixel_area_ha)
for level, zpath, t0, t1, s, gpkg in zip(p.levels, inp.zones, inp.tables0, inp.tables1, sums, out.zones, strict=True):
    table = change_table(io.read_vector(zpath), io.read_vector(t0), io.read_vector(t1), y0, y1, s, p.interval_pct,
                         no_net_loss_tolerance_ha=p.no_net_loss_tolerance_pixels * grid.pixel_area_ha)
    io.write_table(gpkg, table, layer=level, parquet=True)
    log.info("%s %d-%d: sink %.1f t C/yr [%.1f, %.1f]; no net loss of vegetated area in %d of %d zones (losses up to %g m² tolerated)",
             level, y0, y1, table["sink_t_yr"].sum(), table["sink_t_yr_lo"].sum(), table["sink_t_yr_hi"].sum(),
             int(table["no_net_loss"].sum()), len(table), p.no_net_loss_tolerance_pixels * grid.pixel_area_ha * 1e4)
