"""Rule prepare_zones: read, validate, reproject and nest the zone levels; derive the grid.

Inputs: one vector file per level (config zones, coarsest first); with grid.align imagery the
scenes table or first scene (or STAC catalog) whose pixel lattice the grid follows.
Outputs: results/zones/{level}.gpkg (zone_id, parent_id, level, name), nesting.csv, grid.json
(the grid, and under align where its pixel corners come from).
Description: greensink.zones.run_prepare_zones.
"""

from greensink.logs import setup
from greensink.zones import run_prepare_zones

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
out, p = sm.output, sm.params
run_prepare_zones(p.zones, out.zones, out.nesting, out.grid, crs=p.crs, resolution_m=p.resolution, config=sm.config)
