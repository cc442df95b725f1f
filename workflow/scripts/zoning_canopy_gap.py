"""Rule zoning_canopy_gap: canopy gap and plantable space per zone (greensink.zoning.canopy_gap).

Inputs: results/zones/{level}.gpkg and _coverage.npz, grid.json, the year's vegetation_class.tif, canopy.tif and
        carbon.tif, the coefficient table (the tree density's default), the optional zoning.open_land layer.
Outputs: results/{year}/zoning/canopy_gap_{level}.gpkg and .csv (one row per zone, columns in docs/outputs.md),
         results/{year}/zoning/canopy_gap.json (settings, density source, parts not computed, totals per level).
"""

from greensink import io
from greensink.grid import Grid
from greensink.logs import setup
from greensink.tiers import DEFAULT_TABLE, default_table
from greensink.zoning import canopy_gap_run, layer_share
from greensink.zoning.settings import zoning_density

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
z = p.zoning
density = zoning_density(z, p.greenspace, "tree_density_t_ha", io.read_csv(inp.coefficients), inp.coefficients,
                         default_table(), f"greensink default density table ({DEFAULT_TABLE})")
open_land = z.get("open_land")
open_share = layer_share(open_land, grid, "zoning.open_land") if open_land else None
tables, summary = canopy_gap_run(p.levels, [io.read_vector(f) for f in inp.zones], [io.read_sparse(f) for f in inp.coverage],
                                 grid, io.read_raster(inp.classes), io.read_raster(inp.canopy),
                                 io.read_raster(inp.carbon, bands=1), open_share, z.get("canopy_target_pct"), density,
                                 open_land=(open_land or {}).get("path") or (open_land or {}).get("raster"))
for level, gpkg in zip(p.levels, out.gpkg, strict=True):
    io.write_table(gpkg, tables[level], layer=f"canopy_gap_{level}")
io.write_json(out.summary, summary)
for level, s in summary["levels"].items():
    log.info("%s: target %s %%, planting %s ha of %s ha needed, %s t C added at %.2f t C/ha (%s)", level,
             s["canopy_target_pct"], s["totals"]["planting_ha"], s["totals"]["planting_needed_ha"],
             s["totals"]["carbon_added_t"], density.t_ha, density.source)
for note in summary["not_computed"]:
    log.warning("canopy gap: not computed: %s", note)
