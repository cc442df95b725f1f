"""Rule types: green-space polygons (or a land-cover raster + class table) -> exact per-type fractions.

Inputs: the green-space polygons, or the land-cover raster and its class table (config greenspace; those of
        the job's year when greenspace.path holds {year}); results/zones/grid.json.
Outputs: results/types/fractions.tif (one band per type), greenspace.gpkg (typed polygons, types not
         overlapping), summary.json; under results/types/{year}/ when the types are given per year.
Without green-space types (no greenspace in the config) there is one pseudo-type VEG covering every
pixel of the grid (fraction 1; its carbon counts only where NDVI >= vegetation.ndvi_vegetation, see
greensink.tiers) and greenspace.gpkg has no polygons.
"""

import geopandas as gpd
import numpy as np

from greensink import io
from greensink.geometry import area_tolerance_m2, prepare_polygons
from greensink.grid import Grid
from greensink.logs import setup
from greensink.tiers import VEG, VEG_NAME
from greensink.types import (
    check_classes_mapped,
    check_type_codes,
    landcover_polygons,
    read_class_table,
    resolve_overlaps,
    type_fractions,
)
from greensink.units import m2_to_ha

log = setup(snakemake.log[0])  # noqa: F821
gs = snakemake.params.greenspace or {"types": {VEG: VEG_NAME}, "type_column": "type"}  # noqa: F821
types, col = list(gs["types"]), gs["type_column"]
grid = Grid.read(snakemake.input.grid)  # noqa: F821
if not snakemake.params.greenspace:  # noqa: F821
    raw = gpd.GeoDataFrame({col: []}, geometry=[], crs=grid.crs)
    source = None
    log.info("no green-space types configured: one pseudo-type %s over all land (carbon where NDVI marks vegetation)", VEG)
elif "raster" in gs:
    mapping = read_class_table(io.read_csv(gs["class_table"], dtype=str, keep_default_na=False), types, gs["class_table"])
    classes, transform, crs, nodata = io.read_window_over(gs["raster"], grid.bounds, grid.crs)
    counts = check_classes_mapped(classes, nodata, mapping, gs["raster"])
    raw = landcover_polygons(classes, transform, crs, mapping, nodata, col)
    source = gs["raster"]
    log.info("land cover %s: classes present %s, mapped to %d typed polygons", source, counts, len(raw))
else:
    raw = io.read_vector(gs["path"])
    source = gs["path"]
    check_type_codes(raw, col, types, source)
if source is None:
    typed, overlaps, warnings = raw, {}, []
    fractions = np.ones((1, *grid.shape), dtype=np.float32)
else:
    polys, warnings = prepare_polygons(raw, grid.crs, source, col)
    typed, overlaps = resolve_overlaps(polys, col, types, area_tolerance_m2(grid.resolution_m))
    fractions = type_fractions(typed, col, types, grid)
io.write_raster(snakemake.output.fractions, fractions, grid, band_names=types, compress=snakemake.params.compress)  # noqa: F821
io.write_table(snakemake.output.greenspace, typed.explode(index_parts=False).reset_index(drop=True), csv=False)  # noqa: F821
summary = {
    t: {"area_ha": float(m2_to_ha(typed.area[typed[col] == t].sum())), "grid_area_ha": float(fractions[k].sum() * grid.pixel_area_ha),
        "overlap_given_to_earlier_types_ha": overlaps.get(t, 0.0)}
    for k, t in enumerate(types)
}
io.write_json(snakemake.output.summary, {"source": source, "types": summary, "warnings": warnings})  # noqa: F821
for t, s in summary.items():
    log.info("type %s: %.2f ha of polygons, %.2f ha on the grid", t, s["area_ha"], s["grid_area_ha"])
