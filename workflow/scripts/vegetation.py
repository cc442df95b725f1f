"""Rule vegetation: NDVI, FVC, vegetation and tree-canopy masks from the yearly composite.

Inputs: results/{year}/composite.tif.
Outputs: results/{year}/ndvi.tif, fvc.tif, vegetation.tif (0/1), canopy.tif (0/1 tree-canopy fraction),
         vegetation_class.tif (0 none, 1 grass, 2 shrub, 3 tree, NaN no data), vegetation.json.
Streamed strip by strip (imagery.block_rows rows), so memory does not grow with the scene; the FVC
endmember percentiles come from an NDVI histogram of the whole scene (accurate to 1e-4 NDVI).
"""

from greensink import io, vegetation
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
out, p = snakemake.output, snakemake.params  # noqa: F821
paths = {"ndvi": out.ndvi, "fvc": out.fvc, "vegetation": out.vegetation, "canopy": out.canopy, "classes": out.classes}
stats = vegetation.vegetation_to_files(snakemake.input[0], paths, p.vegetation, compress=p.compress,  # noqa: F821
                                       block_rows=p.block_rows, progress=progress(log, "vegetation"))
io.write_json(out.stats, stats)
log.info("NDVI endmembers soil %.3f / vegetation %.3f; vegetation %.1f %%, tree canopy %.1f %% of observed pixels",
         stats["ndvi_soil"], stats["ndvi_full"], stats["vegetation_pct"], stats["canopy_pct"])
