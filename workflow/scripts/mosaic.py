"""Rule mosaic: the composite of one year from its tiles (tiles.size_px set).

Inputs: results/{year}/tiles/composite_{tile}.tif (every tile of the grid, in row-major order),
results/{year}/ingest/scenes.json, results/zones/grid.json.
Outputs: results/{year}/composite.tif, the same file the untiled rule composite writes: the
tiles' pixels without seams, and the composite statistics counted exactly over the whole grid.
Streamed strip by strip: memory is bounded by imagery.block_rows × columns.
"""

from greensink import io
from greensink.composite import mosaic_to_file
from greensink.grid import Grid
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
grid = Grid.read(snakemake.input.grid)  # noqa: F821
listed = io.read_json(snakemake.input.scenes)  # noqa: F821
tiles = list(snakemake.input.tiles)  # noqa: F821
stats = mosaic_to_file(tiles, grid, snakemake.output[0], p.size_px, n_scenes=len(listed["scenes"]),  # noqa: F821
                       method=p.method, block_rows=p.block_rows, progress=progress(log, "mosaic"), compress=p.compress,
                       tags={"ingest_masked_pct": listed.get("summary", {}).get("masked_pct")})
log.info("mosaic of %d tiles of %d px: composite %s of %d scenes: %.2f %% of pixels never clear, "
         "%.2f clear observations per pixel", len(tiles), p.size_px, stats["method"], stats["n_scenes"],
         stats["never_clear_pct"], stats["mean_clear_obs"])
