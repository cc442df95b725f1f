"""Rule types: green-space polygons (or a land-cover raster + class table) -> exact per-type fractions.

Inputs: the green-space polygons, or the land-cover raster and its class table (config greenspace; those of
        the job's year when greenspace.path holds {year}); results/zones/grid.json.
Outputs: results/types/fractions.tif (one band per type), greenspace.gpkg (typed polygons, types not
         overlapping), summary.json; under results/types/{year}/ when the types are given per year.
Without green-space types (no greenspace in the config) there is one pseudo-type VEG covering every
pixel of the grid (fraction 1; its carbon counts only where NDVI >= vegetation.ndvi_vegetation, see
greensink.tiers) and greenspace.gpkg has no polygons.
Description: greensink.types.run_types.
"""

from greensink.logs import setup
from greensink.types import run_types

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
out = sm.output
run_types(sm.input.grid, out.fractions, out.greenspace, out.summary, greenspace=sm.params.greenspace,
          compress=sm.params.compress)
