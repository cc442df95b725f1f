"""Rule zone_coverage_tile (tiles.size_px set): exact fraction of each pixel of one tile covered by each zone of
one level.

Inputs: results/zones/{level}.gpkg, results/zones/grid.json.
Outputs: results/zones/tiles/{level}_coverage_{tile}.npz, a sparse (zones x tile pixels) matrix in zone_id order,
         pixel index row x tile width + column inside the tile (the whole grid's matrix's columns of the tile;
         zones that miss the tile have empty rows).
Description: greensink.zones.run_zone_coverage_tile.
"""

from greensink.logs import setup
from greensink.zones import run_zone_coverage_tile

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
run_zone_coverage_tile(sm.input.zones, sm.input.grid, sm.output[0], tile_id=sm.wildcards.tile,
                       size_px=sm.params.size_px)
