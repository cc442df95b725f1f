"""Rule prepare_zones: read, validate, reproject and nest the zone levels; derive the grid.

Inputs: one vector file per level (config zones, coarsest first); with grid.align imagery the
scenes table or first scene (or STAC catalog) whose pixel lattice the grid follows.
Outputs: results/zones/{level}.gpkg (zone_id, parent_id, level, name), nesting.csv, grid.json
(the grid, and under align where its pixel corners come from).
"""

from greensink import io
from greensink.lattice import imagery_lattice
from greensink.logs import setup
from greensink.units import m2_to_ha
from greensink.zones import grid_for, nest_levels, prepare_level, zones_bounds

log = setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
levels = []
for z in p.zones:
    raw = io.read_vector(z["path"], z.get("layer"))
    level, _ = prepare_level(raw, z["level"], z["id"], p.crs, z["path"], z.get("name"), z.get("parent") if levels else None)
    levels.append(level)
    log.info("zones %s: %d zones, %.1f ha", z["level"], len(level), m2_to_ha(level.area.sum()))
nested, nesting = nest_levels(levels, p.resolution)
for level, path in zip(nested, snakemake.output.zones, strict=True):  # noqa: F821
    io.write_table(path, level, csv=False)
io.write_csv(snakemake.output.nesting, nesting)  # noqa: F821
align = imagery_lattice(snakemake.config, zones_bounds(nested))  # noqa: F821
if align["note"]:
    log.info(align["note"])
grid = grid_for(nested, p.resolution, p.crs, tuple(align["origin"]))
io.write_json(snakemake.output.grid, {**grid.to_dict(), "align": align})  # noqa: F821
log.info("grid %d x %d pixels of %g m in %s, corner at %.3f, %.3f (lattice offset %g, %g m from %s)", grid.width, grid.height,
         grid.resolution_m, grid.crs, grid.transform.c, grid.transform.f, *align["origin"], align["source"])
