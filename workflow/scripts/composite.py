"""Rule composite (and composite_tile): the growing-season composite of one year from the masked
scenes, of the whole grid (composite) or of one tile of it (composite_tile, when tiles.size_px is set).

Inputs: results/{year}/ingest/scenes.json, results/zones/grid.json.
Outputs: results/{year}/composite.tif, or results/{year}/tiles/composite_{tile}.tif on the tile's
window of the grid (red, nir reflectance; valid_obs_count), tagged with the composite statistics
and the ingest's masked share. Streamed strip by strip to disk, so memory is bounded by
imagery.block_rows × columns (of the grid, or of the tile), not by the size of the area.

imagery.engine dask (untiled only; a tile is always composited in row strips) reads the scenes as
a lazy dask array of imagery.block_rows² chunks and reduces them, one row of chunks at a time, where
imagery.dask.scheduler says: on the rule's threads (threads, the default: the synchronous scheduler
for one, the threaded one for more), on a dask.distributed LocalCluster of the rule's threads started
and closed by this job (local), or on a running dask.distributed scheduler by address: the same file.
Description: greensink.composite.run_composite.

The work runs under ``if __name__ == "__main__"``: with imagery.dask.processes true, dask.distributed
starts worker processes by spawning, which re-imports this script's module; the guard keeps them from
running the composite again.
"""

from greensink.composite import run_composite
from greensink.logs import setup

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
    setup(sm.log[0])
    p = sm.params
    run_composite(sm.input.scenes, sm.input.grid, sm.output[0], method=p.method, block_rows=p.block_rows,
                  compress=p.compress, engine=p.engine, threads=sm.threads, tile_id=sm.wildcards.get("tile"),
                  size_px=p.get("size_px"), dask_config=p.get("dask"))
