"""Rule transitions: land transitions between years (IPCC Approach 3), per pixel and per zone.

Inputs: results/zones/{level}.gpkg and _coverage.npz (tiled: tiles/{level}_coverage_{tile}.npz), grid.json; results/{year}/vegetation_class.tif and
        carbon.tif of every year; with green-space types given per year, results/types/{year}/fractions.tif.
Outputs: results/change/trend/transitions/classes.tif (vegetation class per year, band descriptions = years),
         greenspace_types.tif (dominant type per year; types per year only), {level}.csv and .parquet (long form:
         zone_id, level, y0, y1, kind, from_class, to_class, area_ha, carbon_change_t, carbon_known_ha),
         matrix_{y0}_{y1}.csv (city vegetation matrix, ha), greenspace_matrix_{y0}_{y1}.csv (types per year only),
         transitions.json.
Description: greensink.transitions.run_transitions.
"""

from greensink.logs import setup
from greensink.transitions import run_transitions

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_transitions(inp.zones, inp.coverage, inp.grid, inp.classes, inp.carbon, inp.fractions, out, years=p.years,
                levels=p.levels, types=p.types, types_by_year=p.types_by_year, compress=p.compress,
                size_px=p.size_px)
