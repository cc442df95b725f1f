"""Rule composite: one growing-season composite per year from the masked scenes.

Inputs: results/{year}/ingest/scenes.json, results/zones/grid.json.
Outputs: results/{year}/composite.tif (red, nir reflectance; valid_obs_count), tagged with the
composite statistics and the ingest's masked share. Streamed strip by strip to disk, so memory
is bounded by imagery.block_rows, not by the size of the area.
"""

from greensink import io
from greensink.composite import composite_to_file
from greensink.grid import Grid
from greensink.ingest import Scene
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
grid = Grid.read(snakemake.input.grid)  # noqa: F821
listed = io.read_json(snakemake.input.scenes)  # noqa: F821
scenes = [Scene.from_dict(s) for s in listed["scenes"]]
stats = composite_to_file(scenes, grid, snakemake.output[0], p.method, p.block_rows,  # noqa: F821
                          progress=progress(log, "composite"), compress=p.compress,
                          tags={"ingest_masked_pct": listed.get("summary", {}).get("masked_pct")})
log.info("composite %s of %d scenes: %.2f %% of pixels never clear, %.2f clear observations per pixel",
         stats["method"], stats["n_scenes"], stats["never_clear_pct"], stats["mean_clear_obs"])
