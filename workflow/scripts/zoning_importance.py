"""Rule zoning_importance: carbon-sink importance classes by weighted overlay (greensink.zoning.importance).

Inputs: results/zones/{level}.gpkg and _coverage.npz (tiled: tiles/{level}_coverage_{tile}.npz), grid.json, the year's vegetation_class, canopy, height, ndvi,
        fvc and carbon rasters, the green-space type fractions, the user rasters of zoning.importance.factors.
Outputs: results/{year}/zoning/importance.tif (uint8 1 一般, 2 重要, 3 极重要, 255 no class; class names, weights
         and breaks in its tags) and importance.qml beside it; importance_{level}.gpkg and .csv (area and carbon
         per class and zone); importance.json (factors, normalised weights, dropped factors, totals per level).
Description: greensink.zoning.run.run_zoning_importance.
"""

from greensink.logs import setup
from greensink.zoning.run import run_zoning_importance

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_zoning_importance(inp.zones, inp.coverage, inp.grid,
                      {name: inp[name] for name in ("vegetation_class", "canopy", "height", "ndvi", "fvc", "carbon")},
                      inp.fractions, out.raster, out.style, out.gpkg, out.summary, levels=p.levels, types=p.types,
                      zoning=p.zoning, typed_land=p.typed_land, chm=p.chm, compress=p.compress,
                      size_px=p.size_px)
