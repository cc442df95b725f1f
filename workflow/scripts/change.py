"""Rule change: yearly net sink between two years, per pixel and per zone, with intervals.

Inputs: zones + coverage, each year's green-space fractions (fractions0 for y0, fractions1 for y1), both years'
        predictor rasters (results/{year}/{predictor}.tif), vegetation classes, models and zone tables.
Outputs: results/change/{y0}_{y1}/sink.tif (t C/ha/yr: estimate, lower, upper) and zones/{level}.gpkg/.csv/.parquet
         (sink, stock change and its attribution, no net loss of carbon-sink space),
         attribution.tif (attribution class, stock change t C/ha), lost_patches.gpkg (lost carbon-sink space),
         uncertainty.json (the residual's year-to-year correlation used to pair the years' draws, net of the
         plots' measurement error, and the residual field of both years' plots used for both years' draws).
The attribution reads the per-pixel estimates of the passes that compute the sink (EstimateRecorder): no extra
model evaluation and no draws.
"""

import numpy as np

from greensink import io
from greensink.aggregate import zone_draw_sums
from greensink.carbon import density_map, fill_values, pixel_function, type_fill, typed_pixels
from greensink.change import EstimateRecorder, attribute_change, change_table, difference_function
from greensink.grid import Grid
from greensink.logs import setup
from greensink.model import used_predictors
from greensink.uncertainty import Noise, noise_spec, paired_residual_field, residual_year_correlation

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
y0, y1 = int(snakemake.wildcards.y0), int(snakemake.wildcards.y1)  # noqa: F821
grid = Grid.read(inp.grid)
bands = list(range(1, len(p.types) + 1))
fractions0 = io.read_raster(inp.fractions0, bands=bands)  # (types, rows, cols), also for one type
fractions1 = io.read_raster(inp.fractions1, bands=bands)
active = np.union1d(typed_pixels(fractions0), typed_pixels(fractions1))  # typed land of either year


models0, models1 = io.read_json(inp.models0), io.read_json(inp.models1)
rho = residual_year_correlation(models0, models1, p.uncertainty)
log.info("residual year-to-year correlation %.3f (%s, %d remeasured plots; %.3f before the plots' measurement error "
         "came off)", rho["rho"], rho["method"], rho["n"], rho.get("rho_uncorrected", rho["rho"]))
# one residual field for both years (variogram of both years' plots): the years differ by 1 - rho, not by two fits
field = paired_residual_field(models0, models1, p.uncertainty)
if field is not None:
    log.info("residual field of the sink: nugget %.4g (fitted %.4g, less measurement %.4g), partial sill %.4g, range %.0f m",
             field.nugget, field.nugget_plots or 0.0, field.measurement.get("var", 0.0), field.psill, field.range_m)


def year_functions(models, year, fractions, predictor_paths, se_path):
    """The year's pixel function as mapped (NaN where unobserved) and as the zone tables sum it (filled),
    both with the year's error sources, the residual field correlated between the years by rho."""
    paths = dict(zip(p.predictors, predictor_paths, strict=True))
    rasters = {name: io.read_raster(paths[name]) for name in used_predictors(models, p.types)}
    fill = fill_values(type_fill(models, p.types, fractions, rasters, seed=int(models.get("seed", 0))))
    spec = noise_spec(p.uncertainty, models, seed=p.seed, year=year, resolution_m=grid.resolution_m, rho=rho["rho"],
                      paired=True)
    spec.width, spec.height = grid.width, grid.height
    if spec.residual is not None and field is not None:
        spec.residual = field
    noise = Noise(spec, np.asarray(models["types"][p.types[0]]["bootstrap"]).shape[0])
    layers = {**rasters, "ndvi_se": io.read_raster(se_path)} if spec.ndvi else rasters
    return (EstimateRecorder(pixel_function(models, p.types, fractions, layers, noise=noise), active),
            EstimateRecorder(pixel_function(models, p.types, fractions, layers, fill=fill, noise=noise, sources=True),
                             active))


(map0, sum0) = year_functions(models0, y0, fractions0, inp.predictors0, inp.ndvi_se0)
(map1, sum1) = year_functions(models1, y1, fractions1, inp.predictors1, inp.ndvi_se1)
sink = density_map(difference_function(map0, map1, y1 - y0), active, grid.shape, p.interval_pct)
io.write_raster(out.sink, sink, grid, band_names=["sink_t_ha_yr", "sink_t_ha_yr_lo", "sink_t_ha_yr_hi"], compress=p.compress,
                tags={"units": "t C/ha/yr", "years": f"{y0}-{y1}"})
matrices = [io.read_sparse(path) for path in inp.coverage]
sums = zone_draw_sums(matrices, difference_function(sum0, sum1, y1 - y0), active, grid.pixel_area_ha, chunk_pixels=8_192)

# attribution from the estimates recorded in the two passes above (the zone tables' filled stocks; the map's for the raster)
zones = [io.read_vector(zpath) for zpath in inp.zones]
att = attribute_change(io.read_raster(inp.classes0), io.read_raster(inp.classes1), fractions0, fractions1, active,
                       sum0.estimates(), sum1.estimates(), map0.estimates(), map1.estimates(), matrices, zones, p.levels,
                       grid, y0, y1, typed_land=bool(p.greenspace))
io.write_raster(out.attribution, att.raster, grid, band_names=["attribution_class", "stock_change_t_ha"], compress=p.compress,
                tags={"years": f"{y0}-{y1}", "attribution_class": "0 other/none, 1 gain, 2 loss, 3 growth, 4 conversion",
                      "stock_change_t_ha": "t C/ha, stock y1 - stock y0"})
tolerance_ha = p.no_net_loss_tolerance_pixels * grid.pixel_area_ha
for level, z, t0, t1, s, part, space, gpkg in zip(p.levels, zones, inp.tables0, inp.tables1, sums, att.parts, att.space,
                                                 out.zones, strict=True):
    table = change_table(z, io.read_vector(t0), io.read_vector(t1), y0, y1, s, p.interval_pct,
                         no_net_loss_tolerance_ha=tolerance_ha, attribution=part, sink_space=space)
    io.write_table(gpkg, table, layer=level, parquet=True)
    known = table["stock_change_t"].notna()
    log.info("%s %d-%d: stock change %.1f t C = gain %.1f + loss %.1f + growth %.1f + conversion %.1f + other %.1f "
             "(%d of %d zones known); no net loss of sink space in %d of %d zones (%d unknown), %.2f ha lost, %.2f ha gained",
             level, y0, y1, *(table.loc[known, c].sum() for c in ("stock_change_t", "change_gain_t", "change_loss_t",
                                                                   "change_growth_t", "change_conversion_t", "change_other_t")),
             int(known.sum()), len(table), int(table["no_net_loss_sink_space"].sum()), len(table),
             int(table["no_net_loss_sink_space"].isna().sum()), table["sink_space_lost_ha"].sum(),
             table["sink_space_gained_ha"].sum())
    log.info("%s %d-%d: sink %.1f t C/yr [%.1f, %.1f]; no net loss of vegetated area in %d of %d zones (losses up to %g m² tolerated)",
             level, y0, y1, table["sink_t_yr"].sum(), table["sink_t_yr_lo"].sum(), table["sink_t_yr_hi"].sum(),
             int(table["no_net_loss"].sum()), len(table), p.no_net_loss_tolerance_pixels * grid.pixel_area_ha * 1e4)
    log.info("%s %d-%d: %s", level, y0, y1, ", ".join(f"{n} {c}" for c, n in table["sink_class"].value_counts().items()))
io.write_table(out.lost_patches, att.patches, layer="lost_patches", geometry_type="Polygon")
log.info("lost patches %d-%d: %d polygons, %.2f ha of sink space, %.1f t C lost", y0, y1, len(att.patches),
         att.patches["area_ha"].sum(), att.patches["carbon_lost_t"].sum())
io.write_json(out.uncertainty, {"year_correlation": rho, "years": [y0, y1],
                                "residual_field": field.to_json() if field is not None else None})
