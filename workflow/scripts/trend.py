"""Rule trend: Theil-Sen slope of carbon stock over every reporting year, per pixel and per zone, with intervals.

Inputs: zones + coverage, the grid, each year's fractions, predictor rasters (results/{year}/{predictor}.tif, year by
        year), ndvi_se.tif, models.json and zone tables.
Outputs: results/change/trend/trend.tif (t C/ha/yr: trend_t_ha_yr, _lo, _hi, significant 1/0),
         zones/{level}.gpkg/.csv/.parquet (t C/yr per zone, yearly stocks) and trend.json (method, draws, interval,
         the year correlation and residual field that pair the years' draws: greensink.series).
"""

import numpy as np

from greensink import io
from greensink.aggregate import zone_draw_sums
from greensink.carbon import typed_pixels
from greensink.grid import Grid
from greensink.logs import setup
from greensink.model import used_predictors
from greensink.series import (
    residual_summary,
    series_function,
    series_residual_field,
    series_year_correlation,
    year_pixel_function,
)
from greensink.trend import TREND_BANDS, pixel_trend, trend_record, zone_trend_table

log = setup(snakemake.log[0])  # noqa: F821
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
years, n_pred, n_lvl = [int(y) for y in p.years], len(p.predictors), len(p.levels)
grid = Grid.read(inp.grid)
models = [io.read_json(path) for path in inp.models]
rho = series_year_correlation(models, p.uncertainty)
field = series_residual_field(models, p.uncertainty)
log.info("%d years %s: residual correlation between years %.3f (%s, %d plot pairs; per pair %s)", len(years), years,
         rho["rho"], rho["method"], rho["n"], rho.get("pairs"))

maps, sums, fractions_all = [], [], []
for k, year in enumerate(years):
    fractions = io.read_raster(inp.fractions[k], bands=list(range(1, len(p.types) + 1)))
    paths = dict(zip(p.predictors, inp.predictors[k * n_pred : (k + 1) * n_pred], strict=True))
    rasters = {name: io.read_raster(paths[name]) for name in used_predictors(models[k], p.types)}
    rasters["ndvi_se"] = io.read_raster(inp.ndvi_se[k])
    args = dict(year=year, config=p.uncertainty, seed=p.seed, rho=rho["rho"], field=field)
    maps.append(year_pixel_function(models[k], p.types, fractions, rasters, grid, **args))
    sums.append(year_pixel_function(models[k], p.types, fractions, rasters, grid, filled=True, **args))
    fractions_all.append(fractions)
active = typed_pixels(np.concatenate(fractions_all))  # typed in any year
n_draws = np.asarray(models[0]["types"][p.types[0]]["bootstrap"]).shape[0]

bands, counts = pixel_trend(series_function(maps), active, grid.shape, years, p.interval_pct)
io.write_raster(out.trend, bands, grid, band_names=TREND_BANDS, compress=p.compress,
                tags={"units": "t C/ha/yr", "years": f"{years[0]}-{years[-1]}", "method": "Theil-Sen"})
log.info("pixels %d-%d: %s", years[0], years[-1], ", ".join(f"{n} {k}" for k, n in counts.items()))

matrices = [io.read_sparse(path) for path in inp.coverage]
year_sums = [zone_draw_sums(matrices, fn, active, grid.pixel_area_ha, chunk_pixels=8_192) for fn in sums]  # [year][level]
for j, (level, zpath, gpkg) in enumerate(zip(p.levels, inp.zones, out.zones, strict=True)):
    tables = [io.read_vector(inp.tables[k * n_lvl + j]) for k in range(len(years))]
    table = zone_trend_table(io.read_vector(zpath), tables, [s[j] for s in year_sums], years, p.interval_pct)
    io.write_table(gpkg, table, layer=level, parquet=True)
    first = table.iloc[0]
    log.info("%s %d-%d: %d zones (%s); %s: trend %.1f t C/yr [%.1f, %.1f]", level, years[0], years[-1], len(table),
             ", ".join(f"{n} {c}" for c, n in table["trend_class"].value_counts().items()), first["zone_id"],
             first["trend_t_yr"], first["trend_t_yr_lo"], first["trend_t_yr_hi"])
io.write_json(out.record, trend_record(years, n_draws, p.interval_pct, counts, rho, residual_summary(field)))
