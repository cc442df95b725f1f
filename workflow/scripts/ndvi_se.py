"""Rule ndvi_se: the standard error of the year's composite NDVI, an input of the NDVI error source.

Inputs: results/{year}/composite.tif (its valid_obs_count band).
Outputs: results/{year}/ndvi_se.tif (NDVI units; NaN where never observed clear).
SE = uncertainty.ndvi.obs_sd × 1.2533 / √n (greensink.uncertainty.ndvi_standard_error), streamed by row strips.
Description: greensink.uncertainty.run_ndvi_se.
"""

from greensink.logs import setup
from greensink.uncertainty import run_ndvi_se

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_ndvi_se(sm.input.composite, sm.output[0], obs_sd=p.obs_sd, method=p.method, compress=p.compress)
