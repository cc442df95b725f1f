"""Rule vegetation: NDVI, FVC, vegetation and tree-canopy masks from the yearly composite.

Inputs: results/{year}/composite.tif; the canopy height model vegetation.chm.path when configured.
Outputs: results/{year}/ndvi.tif, fvc.tif, vegetation.tif (0/1), canopy.tif (tree-canopy fraction 0–1:
         the CHM's area share ≥ vegetation.chm.tree_height_m where it has data, else 0/1 from NDVI),
         vegetation_class.tif (0 none, 1 grass, 2 shrub, 3 tree, NaN no data), height.tif (mean canopy
         height in metres of the pixel's valid CHM area; NaN where the CHM has no data or NDVI is NaN,
         and everywhere without vegetation.chm), vegetation.json.
Streamed strip by strip (imagery.block_rows rows), so memory does not grow with the scene; the FVC
endmember percentiles come from an NDVI histogram of the whole scene (accurate to 1e-4 NDVI).
Description: greensink.vegetation.run_vegetation.
"""

from greensink.logs import setup
from greensink.vegetation import run_vegetation

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_vegetation(sm.input.composite, dict(sm.output.items()), settings=p.vegetation, block_rows=p.block_rows,
               compress=p.compress, chm=sm.input.chm)
