"""Rule vegetation: NDVI, FVC, vegetation and tree-canopy masks from the yearly composite.

Inputs: results/{year}/composite.tif; the canopy height model vegetation.chm.path when configured.
Outputs: results/{year}/ndvi.tif, fvc.tif, vegetation.tif (0/1), canopy.tif (tree-canopy fraction 0–1:
         the CHM's area share ≥ vegetation.chm.tree_height_m where it has data, else 0/1 from NDVI),
         vegetation_class.tif (0 none, 1 grass, 2 shrub, 3 tree, NaN no data), height.tif (mean canopy
         height in metres of the pixel's valid CHM area; NaN where the CHM has no data or NDVI is NaN,
         and everywhere without vegetation.chm), vegetation.json.
Streamed strip by strip (imagery.block_rows rows), so memory does not grow with the scene; the FVC
endmember percentiles come from an NDVI histogram of the whole scene (accurate to 1e-4 NDVI).
"""

from greensink import io, vegetation
from greensink.logs import progress, setup

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
paths = {"ndvi": out.ndvi, "fvc": out.fvc, "vegetation": out.vegetation, "canopy": out.canopy, "classes": out.classes,
         "height": out.height}
settings = dict(p.vegetation)
if inp.chm:
    settings["chm"] = {**settings["chm"], "path": inp.chm[0]}
stats = vegetation.vegetation_to_files(inp.composite, paths, settings, compress=p.compress,
                                       block_rows=p.block_rows, progress=progress(log, "vegetation"))
io.write_json(out.stats, stats)
log.info("NDVI endmembers soil %.3f / vegetation %.3f; vegetation %.1f %%, tree canopy %.1f %% of observed pixels",
         stats["ndvi_soil"], stats["ndvi_full"], stats["vegetation_pct"], stats["canopy_pct"])
if "chm" in stats:
    log.info("canopy height model %s: %d observed pixels (%.1f %%) had no valid height and use the NDVI rules",
             stats["chm"]["path"], stats["chm"]["fallback_pixels"], stats["chm"]["fallback_pct"])
    log.info("canopy height: %d pixels with a valid mean height, %s m on average", stats["chm"]["height_pixels"],
             "n/a" if stats["chm"]["height_mean_m"] is None else f"{stats['chm']['height_mean_m']:.2f}")
    if stats["chm"]["fallback_pct"] > 50:
        log.warning("the canopy height model covers less than half of the observed pixels (%.1f %% fell back to NDVI); "
                    "check that it overlaps the study area", stats["chm"]["fallback_pct"])
