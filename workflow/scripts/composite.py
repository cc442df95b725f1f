"""Rule composite (and composite_tile): the growing-season composite of one year from the masked
scenes, of the whole grid (composite) or of one tile of it (composite_tile, when tiles.size_px is set).

Inputs: results/{year}/ingest/scenes.json, results/zones/grid.json.
Outputs: results/{year}/composite.tif, or results/{year}/tiles/composite_{tile}.tif on the tile's
window of the grid (red, nir reflectance; valid_obs_count), tagged with the composite statistics
and the ingest's masked share. Streamed strip by strip to disk, so memory is bounded by
imagery.block_rows × columns (of the grid, or of the tile), not by the size of the area.

imagery.engine dask (untiled only; a tile is always composited in row strips) reads the scenes as
a lazy dask array of imagery.block_rows² chunks and reduces them on the rule's threads (the
synchronous scheduler for one, the threaded one for more), one row of chunks at a time: the same file.
"""

from greensink import io
from greensink.composite import composite_to_file
from greensink.grid import Grid
from greensink.ingest import Scene
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
tile_id = snakemake.wildcards.get("tile")  # noqa: F821
grid = Grid.read(snakemake.input.grid)  # noqa: F821
tile = grid.tile(tile_id, p.size_px) if tile_id else None
listed = io.read_json(snakemake.input.scenes)  # noqa: F821
scenes = [Scene.from_dict(s) for s in listed["scenes"]]
engine = snakemake.config.get("imagery", {}).get("engine", "windows")  # noqa: F821
if engine == "dask" and tile:
    log.info("imagery.engine dask: tile %s is composited in row strips (the dask engine serves the untiled composite)", tile.id)
elif engine == "dask":
    log.info("imagery.engine dask: %d x %d chunks on %d thread(s)", p.block_rows, p.block_rows, snakemake.threads)  # noqa: F821
stats = composite_to_file(scenes, grid, snakemake.output[0], p.method, p.block_rows,  # noqa: F821
                          progress=progress(log, f"composite {tile_id}" if tile else "composite"), compress=p.compress,
                          tags={"ingest_masked_pct": listed.get("summary", {}).get("masked_pct")}, tile=tile,
                          engine=engine, threads=snakemake.threads)  # noqa: F821
if tile:
    log.info("tile %s: rows %d-%d, columns %d-%d of the %d x %d grid", tile.id, tile.row_off, tile.row_off + tile.height - 1,
             tile.col_off, tile.col_off + tile.width - 1, grid.height, grid.width)
log.info("composite %s of %d scenes: %.2f %% of pixels never clear, %.2f clear observations per pixel",
         stats["method"], stats["n_scenes"], stats["never_clear_pct"], stats["mean_clear_obs"])
