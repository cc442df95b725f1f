"""Rule vegetation: NDVI, FVC, vegetation and tree-canopy masks from the yearly composite.

Inputs: results/{year}/composite.tif.
Outputs: results/{year}/ndvi.tif, fvc.tif, vegetation.tif (0/1), canopy.tif (0/1 tree-canopy fraction),
         vegetation_class.tif (0 none, 1 grass, 2 shrub, 3 tree, NaN no data), vegetation.json.
"""

from greensink import io, vegetation
from greensink.logs import setup

log = setup(snakemake.log[0])  # noqa: F821
out, p = snakemake.output, snakemake.params  # noqa: F821
v = p.vegetation
grid = io.read_grid(snakemake.input[0])  # noqa: F821
red, nir = io.read_raster(snakemake.input[0], bands=[1, 2])  # noqa: F821
ndvi = vegetation.ndvi(red, nir)
soil, full = vegetation.fvc_endmembers(ndvi, tuple(v["fvc_percentiles"]), v["ndvi_soil"], v["ndvi_full"])
fvc = vegetation.fvc(ndvi, soil, full)
veg = vegetation.threshold_mask(ndvi, v["ndvi_vegetation"])
canopy = vegetation.threshold_mask(ndvi, v["ndvi_tree"])
classes = vegetation.structure_classes(ndvi, v["ndvi_vegetation"], v["ndvi_shrub"], v["ndvi_tree"])
io.write_raster(out.ndvi, ndvi, grid, band_names=["ndvi"], compress=p.compress)
io.write_raster(out.fvc, fvc, grid, band_names=["fvc_frac"], compress=p.compress, tags={"ndvi_soil": soil, "ndvi_full": full})
io.write_raster(out.vegetation, veg, grid, band_names=["vegetation_frac"], compress=p.compress, tags={"ndvi_threshold": v["ndvi_vegetation"]})
io.write_raster(out.canopy, canopy, grid, band_names=["canopy_frac"], compress=p.compress, tags={"ndvi_threshold": v["ndvi_tree"]})
io.write_raster(out.classes, classes, grid, band_names=["vegetation_class"], compress=p.compress,
                tags={f"class_{k}": name for k, name in vegetation.CLASS_NAMES.items()})
stats = {"ndvi_soil": soil, "ndvi_full": full, "ndvi_vegetation": v["ndvi_vegetation"], "ndvi_shrub": v["ndvi_shrub"], "ndvi_tree": v["ndvi_tree"],
         "vegetation_pct": float(100 * (veg == 1).sum() / (veg >= 0).sum()), "canopy_pct": float(100 * (canopy == 1).sum() / (canopy >= 0).sum())}
io.write_json(out.stats, stats)
log.info("NDVI endmembers soil %.3f / vegetation %.3f; vegetation %.1f %%, tree canopy %.1f %% of observed pixels",
         soil, full, stats["vegetation_pct"], stats["canopy_pct"])
