"""Rule aggregate: the zone tables of one year at every level.

Inputs: results/zones/{level}.gpkg and _coverage.npz, the year's ndvi/fvc/vegetation/canopy rasters,
        results/types/fractions.tif and greenspace.gpkg, the year's models, optional population polygons.
Outputs: results/{year}/zones/{level}.gpkg and .csv (one row per zone, columns in docs/outputs.md).
"""

from greensink import io
from greensink.aggregate import zone_draw_sums, zone_table
from greensink.carbon import pixel_function, type_density, typed_pixels
from greensink.grid import Grid
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
rasters = {name: io.read_raster(inp[name]) for name in ("ndvi", "fvc", "vegetation", "canopy")}
fractions = io.read_raster(inp.fractions)
models = io.read_json(inp.models)
zones = [io.read_vector(path) for path in inp.zones]
matrices = [io.read_sparse(path) for path in inp.coverage]
fn = pixel_function(models, p.types, fractions, rasters["ndvi"])
sums = zone_draw_sums(matrices, fn, typed_pixels(fractions), grid.pixel_area_ha, progress=progress(log, "zone draws"))
density = type_density(models, p.types, fractions, rasters["ndvi"])
greenspace = io.read_vector(inp.greenspace)
population = io.read_vector(inp.population[0]).to_crs(grid.crs) if p.population else None
n_levels = len(p.levels)
for level, z, m, s, gpkg in zip(p.levels, zones, matrices, sums, snakemake.output[:n_levels], strict=True):  # noqa: F821
    table = zone_table(z, m, grid, rasters, density, p.types, s, greenspace, p.greenspace["type_column"],
                       p.greenspace["park_types"], population, p.population["column"] if p.population else None, p.interval_pct)
    io.write_table(gpkg, table, layer=level)
    log.info("%s: %d zones, %.0f t C [%.0f-%.0f] on %.1f ha", level, len(table), table["carbon_t"].sum(),
             table["carbon_t_lo"].sum(), table["carbon_t_hi"].sum(), table["area_ha"].sum())
