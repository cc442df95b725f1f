"""Rule aggregate: the zone tables of one year at every level.

Inputs: results/zones/{level}.gpkg and _coverage.npz, the year's ndvi/fvc/vegetation/canopy/vegetation_class
        rasters and the model's predictor rasters (results/{year}/{predictor}.tif), results/types/fractions.tif and greenspace.gpkg, the year's models, optional population and
        residential polygons, the targets file.
Outputs: results/{year}/zones/{level}.gpkg, .csv and .parquet (one row per zone, columns in docs/outputs.md).
"""

from greensink import io, targets
from greensink.aggregate import unobserved_zones_warning, zone_draw_sums, zone_table
from greensink.carbon import pixel_function, type_density, typed_pixels
from greensink.grid import Grid
from greensink.indicators import park_service_columns
from greensink.logs import progress, setup
from greensink.model import used_predictors
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask

log = setup(snakemake.log[0])  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
rasters = {name: io.read_raster(inp[name]) for name in ("ndvi", "fvc", "vegetation", "canopy")}
rasters["tree_shrub"] = class_mask(io.read_raster(inp.classes), (CLASS_SHRUB, CLASS_TREE))
fractions = io.read_raster(inp.fractions, bands=list(range(1, len(p.types) + 1)))  # (types, rows, cols), also for one type
models = io.read_json(inp.models)
zones = [io.read_vector(path) for path in inp.zones]
matrices = [io.read_sparse(path) for path in inp.coverage]
paths = dict(zip(p.predictors, inp.predictors, strict=True))
predictors = {name: rasters[name] if name in rasters else io.read_raster(paths[name]) for name in used_predictors(models, p.types)}
fn = pixel_function(models, p.types, fractions, predictors)
sums = zone_draw_sums(matrices, fn, typed_pixels(fractions), grid.pixel_area_ha, progress=progress(log, "zone draws"))
density = type_density(models, p.types, fractions, predictors)
greenspace = io.read_vector(inp.greenspace)
gs = p.greenspace
parks = greenspace.geometry.values[greenspace[gs["type_column"]].astype(str).isin(gs["park_types"]).to_numpy()]
population = io.read_vector(inp.population[0]).to_crs(grid.crs) if p.population else None
pop_col = p.population["column"] if p.population else None
residential = io.read_vector(inp.residential[0]).to_crs(grid.crs) if inp.residential else None
goals = targets.read_targets(inp.targets)
n = len(p.levels)
for level, z, m, s, gpkg in zip(p.levels, zones, matrices, sums, snakemake.output[:n], strict=True):  # noqa: F821
    table = zone_table(z, m, grid, rasters, density, p.types, s, greenspace, gs["type_column"], gs["park_types"],
                       population, pop_col, p.interval_pct)
    for name, values in park_service_columns(z, parks, p.park_service, population, pop_col, residential).items():
        table[name] = values
    table = targets.annotate(table, level, goals)
    io.write_table(gpkg, table, layer=level, parquet=True)
    if warning := unobserved_zones_warning(table, level):
        log.warning(warning)
    log.info("%s: %d zones on %.1f ha, %.0f t C in all (zone intervals in the table)", level, len(table),
             table["area_ha"].sum(), table["carbon_t"].sum())
