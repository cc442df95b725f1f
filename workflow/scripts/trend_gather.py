"""Rule trend of a tiled run (tiles.size_px): the trend_tile jobs gathered into rule trend's outputs.

Inputs: every tile's trend raster and parts (results/change/trend/tiles/), the zones, the grid, each year's
        models.json and zone tables.
Outputs: results/change/trend/trend.tif (the tiles' mosaic: the untiled file), zones/{level}.gpkg/.csv/.parquet
         (the Theil-Sen trend of the zones' yearly stock sums added over the tiles) and trend.json.
Description: greensink.trend_tiles.run_trend_gather.
"""

from greensink.logs import setup
from greensink.trend_tiles import run_trend_gather

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp, out, p = sm.input, sm.output, sm.params
run_trend_gather(p.years, inp.zones, inp.grid, inp.trend_tiles, inp.parts, inp.models, inp.tables, out.trend,
                 out.zones, out.record, size_px=p.size_px, levels=p.levels, seed=p.seed, interval_pct=p.interval_pct,
                 uncertainty=p.uncertainty, compress=p.compress, min_observed_pct=p.min_observed_pct)
