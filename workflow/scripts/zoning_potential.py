"""Rule zoning_potential: carbon-sink potential space (greensink.zoning.potential).

Inputs: results/zones/{level}.gpkg and _coverage.npz (tiled: tiles/{level}_coverage_{tile}.npz), grid.json, the year's carbon.tif, the coefficient table (the
        density's default), the optional zoning.construction, cropland and red_line layers.
Outputs: results/{year}/zoning/potential.tif (uint8 1 potential space, 0 not, 255 unknown) and potential.qml;
         potential_{level}.gpkg and .csv (area per layer, potential area and added stock per zone);
         potential.json (layers subtracted and not subtracted, density and its source, totals per level).
Description: greensink.zoning.run.run_zoning_potential.
"""

from greensink.logs import setup
from greensink.zoning.run import run_zoning_potential

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_zoning_potential(inp.zones, inp.coverage, inp.grid, inp.carbon, inp.coefficients, out.raster, out.style, out.gpkg,
                     out.summary, levels=p.levels, zoning=p.zoning, greenspace=p.greenspace, compress=p.compress,
                     size_px=p.size_px)
