"""Rule aggregate: the zone tables of one year at every level.

Inputs: results/zones/{level}.gpkg and _coverage.npz, the year's ndvi/fvc/vegetation/canopy/vegetation_class
        rasters and the model's predictor rasters (results/{year}/{predictor}.tif), results/types/fractions.tif and greenspace.gpkg, the year's models, optional population and
        residential polygons.
Outputs: results/{year}/zones/{level}.indicators.parquet (one row per zone, the columns of docs/outputs.md but the
         targets'; an intermediate: rule targets adds the targets and writes results/{year}/zones/{level}.gpkg).
Zone intervals hold every error source of the uncertainty config (greensink.uncertainty), with each
source's share of the variance (var_share_<source>_pct), U % and the conservative lower bound.
Unobserved typed land is filled with its type's mean density over the year's observed pixels
(greensink.carbon.type_fill); zones below carbon.min_observed_pct of observed typed land have NaN carbon.
"""

import numpy as np

from greensink import io
from greensink.aggregate import unknown_carbon_warning, unobserved_zones_warning, zone_draw_sums, zone_table
from greensink.carbon import fill_values, pixel_function, type_density, type_fill, typed_pixels
from greensink.grid import Grid
from greensink.indicators import park_service_columns
from greensink.logs import progress, setup
from greensink.model import used_predictors
from greensink.uncertainty import Noise, noise_spec
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask

log = setup(snakemake.log[0])  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
grid = Grid.read(inp.grid)
rasters = {name: io.read_raster(inp[name]) for name in ("ndvi", "fvc", "vegetation", "canopy")}
rasters["tree_shrub"] = class_mask(io.read_raster(inp.classes), (CLASS_SHRUB, CLASS_TREE))
fractions = io.read_raster(inp.fractions, bands=list(range(1, len(p.types) + 1)))  # (types, rows, cols), also for one type
models = io.read_json(inp.models)
zones = [io.read_vector(path) for path in inp.zones]
matrices = [io.read_sparse(path) for path in inp.coverage]
paths = dict(zip(p.predictors, inp.predictors, strict=True))
predictors = {name: rasters[name] if name in rasters else io.read_raster(paths[name]) for name in used_predictors(models, p.types)}
fill = type_fill(models, p.types, fractions, predictors, seed=int(models.get("seed", 0)))
for t, f in fill.items():
    log.info("fill of unobserved %s land: %s t C/ha (between-pixel sd %s) from %.1f ha observed", t,
             "none (no observed pixel: its unobserved land stays unknown)" if f["fill_t_ha"] is None else f"{f['fill_t_ha']:.3f}",
             "-" if f["spread_t_ha"] is None else f"{f['spread_t_ha']:.3f}", f["observed_ha_px"] * grid.pixel_area_ha)
spec = noise_spec(p.uncertainty, models, seed=p.seed, year=int(snakemake.wildcards.year),  # noqa: F821
                  resolution_m=grid.resolution_m)
spec.width, spec.height = grid.width, grid.height
noise = Noise(spec, np.asarray(models["types"][p.types[0]]["bootstrap"]).shape[0])
layers = {**predictors, "ndvi_se": io.read_raster(inp.ndvi_se)} if spec.ndvi else predictors
fn = pixel_function(models, p.types, fractions, layers, fill=fill_values(fill), noise=noise, sources=True)
sums = zone_draw_sums(matrices, fn, typed_pixels(fractions), grid.pixel_area_ha, chunk_pixels=16_384,
                      progress=progress(log, "zone draws"))
density = type_density(models, p.types, fractions, predictors)
greenspace = io.read_vector(inp.greenspace)
typed_land = bool(p.greenspace)  # False: no green-space types, one pseudo-type over all land
gs = p.greenspace or {"type_column": "type", "park_types": []}
if gs["type_column"] not in greenspace.columns:
    greenspace[gs["type_column"]] = np.array([], dtype=object)
parks = greenspace.geometry.values[greenspace[gs["type_column"]].astype(str).isin(gs["park_types"]).to_numpy()]
type_info = {"fill_t_ha": {t: f["fill_t_ha"] for t, f in fill.items()},
             "tiers": {t: models["types"][t].get("tier", 3 if models["types"][t].get("source") == "plots" else 2) for t in p.types},
             "pools": {t: models["types"][t].get("pools") or {} for t in p.types}}
population = io.read_vector(inp.population[0]).to_crs(grid.crs) if p.population else None
pop_col = p.population["column"] if p.population else None
residential = io.read_vector(inp.residential[0]).to_crs(grid.crs) if inp.residential else None
n = len(p.levels)
for level, z, m, s, path in zip(p.levels, zones, matrices, sums, snakemake.output[:n], strict=True):  # noqa: F821
    table = zone_table(z, m, grid, rasters, density, p.types, s, greenspace, gs["type_column"], gs["park_types"],
                       population, pop_col, p.interval_pct, fractions=fractions, min_observed_pct=p.min_observed_pct,
                       typed_land=typed_land, **type_info)
    for name, values in park_service_columns(z, parks, p.park_service, population, pop_col, residential).items():
        table[name] = values if typed_land else np.nan  # no parks known without green-space types
    io.write_geoparquet(path, table)
    if warning := unobserved_zones_warning(table, level):
        log.warning(warning)
    if warning := unknown_carbon_warning(table, level, p.min_observed_pct):
        log.warning(warning)
    log.info("%s: %d zones on %.1f ha, %.0f t C observed + %.0f t C filled (zone intervals in the table; %d zones NaN)",
             level, len(table), table["area_ha"].sum(), table["carbon_t_observed"].sum(), table["carbon_t_filled"].sum(),
             int(table["carbon_t"].isna().sum()))
