"""Rule qgis_styles: QGIS default styles (.qml) beside the carbon, sink and zone layers.

Inputs: results/{year}/carbon.tif, results/change/*/sink.tif, every zone and change table, the trend raster and tables, the lost patches.
Outputs: a .qml beside each (QGIS applies it when the layer is opened); one colour scale per quantity for all years;
and a .qml beside each year's NDVI, FVC and canopy raster on a fixed 0-1 scale (greensink.styles.FIXED_RASTERS).
Description: greensink.styles.run_qgis_styles.
"""

from greensink.logs import setup
from greensink.styles import run_qgis_styles

sm = snakemake  # noqa: F821 (the object Snakemake's script directive defines)
setup(sm.log[0])
inp = sm.input
run_qgis_styles(inp.carbon, inp.sinks, inp.tables, inp.change, dict(sm.output.items()), trend=inp.trend,
                trend_tables=inp.trend_tables, lost_patches=inp.lost_patches, n_years=sm.params.n_years)
