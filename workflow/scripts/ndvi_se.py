"""Rule ndvi_se: the standard error of the year's composite NDVI, an input of the NDVI error source.

Inputs: results/{year}/composite.tif (its valid_obs_count band).
Outputs: results/{year}/ndvi_se.tif (NDVI units; NaN where never observed clear).
SE = uncertainty.ndvi.obs_sd × 1.2533 / √n (greensink.uncertainty.ndvi_standard_error), streamed by row strips.
"""

from greensink.logs import setup
from greensink.uncertainty import ndvi_se_to_file

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
stats = ndvi_se_to_file(inp.composite, out[0], obs_sd=p.obs_sd, method=p.method, compress=p.compress)
log.info("ndvi_se: mean %s NDVI over %d observed pixels (σ per observation %g)",
         "-" if stats["mean_ndvi_se"] is None else f"{stats['mean_ndvi_se']:.4f}", stats["observed_pixels"], p.obs_sd)
