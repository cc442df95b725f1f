"""Rule zoning_canopy_gap: canopy gap and plantable space per zone (greensink.zoning.canopy_gap).

Inputs: results/zones/{level}.gpkg and _coverage.npz (tiled: tiles/{level}_coverage_{tile}.npz), grid.json, the year's vegetation_class.tif, canopy.tif and
        carbon.tif, the coefficient table (the tree density's default), the optional zoning.open_land layer.
Outputs: results/{year}/zoning/canopy_gap_{level}.gpkg and .csv (one row per zone, columns in docs/outputs.md),
         results/{year}/zoning/canopy_gap.json (settings, density source, parts not computed, totals per level).
Description: greensink.zoning.run.run_zoning_canopy_gap.
"""

from greensink.logs import setup
from greensink.zoning.run import run_zoning_canopy_gap

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_zoning_canopy_gap(inp.zones, inp.coverage, inp.grid, inp.classes, inp.canopy, inp.carbon, inp.coefficients, out.gpkg,
                      out.summary, levels=p.levels, zoning=p.zoning, greenspace=p.greenspace,
                      size_px=p.size_px)
