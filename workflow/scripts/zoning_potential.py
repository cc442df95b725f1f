"""Rule zoning_potential: carbon-sink potential space (greensink.zoning.potential).

Inputs: results/zones/{level}.gpkg and _coverage.npz, grid.json, the year's carbon.tif, the coefficient table (the
        density's default), the optional zoning.construction, cropland and red_line layers.
Outputs: results/{year}/zoning/potential.tif (uint8 1 potential space, 0 not, 255 unknown) and potential.qml;
         potential_{level}.gpkg and .csv (area per layer, potential area and added stock per zone);
         potential.json (layers subtracted and not subtracted, density and its source, totals per level).
"""

from greensink import io
from greensink.grid import Grid
from greensink.logs import setup
from greensink.styles import classed_raster_qml
from greensink.tiers import DEFAULT_TABLE, default_table
from greensink.zoning import MASK_LAYERS, layer_share, polygon_share, potential_run, union_share
from greensink.zoning.settings import zoning_density

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
z = p.zoning
density = zoning_density(z, p.greenspace, "potential_density_t_ha", io.read_csv(inp.coefficients), inp.coefficients,
                         default_table(), f"greensink default density table ({DEFAULT_TABLE})")
specs = {name: z.get(name) for name in MASK_LAYERS}
shares = {name: layer_share(spec, grid, f"zoning.{name}") if spec else None for name, spec in specs.items()}
# the union: all polygon layers dissolved together (exact), then the larger share with each raster mask
polygons = [io.read_vector(s["path"], layer=s.get("layer")).to_crs(grid.crs).geometry for s in specs.values() if s and s.get("path")]
parts = [polygon_share([g for gs in polygons for g in gs], grid)] if polygons else []
parts += [shares[n] for n, s in specs.items() if s and s.get("raster")]
excluded = union_share(parts) if parts else None
sources = {n: s.get("path") or s.get("raster") for n, s in specs.items() if s}
raster, tables, summary = potential_run(shares, excluded, io.read_raster(inp.carbon, bands=1), density, levels=p.levels,
                                        zones=[io.read_vector(f) for f in inp.zones],
                                        matrices=[io.read_sparse(f) for f in inp.coverage], grid=grid, sources=sources)
io.write_raster(out.raster, raster, grid, band_names=["potential_space"], compress=p.compress, nodata=255,
                tags={"value_1": "potential space (at least half the pixel)", "value_0": "not potential space",
                      "not_subtracted": ", ".join(summary["not_subtracted"]) or "none"})
io.write_text(out.style, classed_raster_qml([(1, "潜力空间 potential space", "#31a354"), (0, "其他 other", "#f0f0f0")]))
for level, gpkg in zip(p.levels, out.gpkg, strict=True):
    io.write_table(gpkg, tables[level], layer=f"potential_{level}")
io.write_json(out.summary, summary)
if summary["not_subtracted"]:
    log.warning("potential space: not subtracted (no layer given): %s", ", ".join(summary["not_subtracted"]))
first = p.levels[0]
log.info("%s: potential space %s ha, potential added stock %s t C at %.2f t C/ha (%s)", first,
         summary["levels"][first]["totals"]["potential_ha"], summary["levels"][first]["totals"]["potential_added_t"],
         density.t_ha, density.source)
