"""Rule vegetation_endmembers (tiles.size_px set): the FVC endmembers of the whole grid, read by every vegetation tile.

Inputs: results/{year}/composite.tif.
Outputs: results/{year}/tiles/fvc_endmembers.json (ndvi_soil, ndvi_full, ndvi_pixels): the given
vegetation.ndvi_soil / ndvi_full, else the vegetation.fvc_percentiles of an NDVI histogram of every pixel of
the grid, read tile by tile (memory: a strip of one tile), the same values the untiled rule vegetation finds.
Description: greensink.vegetation.run_vegetation_endmembers.
"""

from greensink.logs import setup
from greensink.vegetation import run_vegetation_endmembers

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
p = sm.params
run_vegetation_endmembers(sm.input.composite, sm.output[0], settings=p.vegetation, size_px=p.size_px,
                          block_rows=p.block_rows)
