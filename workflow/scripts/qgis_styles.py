"""Rule qgis_styles: QGIS default styles (.qml) beside the carbon, sink and zone layers.

Inputs: results/{year}/carbon.tif, results/change/*/sink.tif, every zone and change table.
Outputs: a .qml beside each (QGIS applies it when the layer is opened); one colour scale per quantity for all years;
and a .qml beside each year's NDVI, FVC and canopy raster on a fixed 0-1 scale (greensink.styles.FIXED_RASTERS).
"""

from pathlib import Path

from greensink import io
from greensink.logs import setup
from greensink.styles import BROWN_GREEN, FIXED_RASTERS, GREENS, raster_qml, robust_max, vector_qml

log = setup(snakemake.log[0])  # noqa: F821
inp, out = snakemake.input, snakemake.output  # noqa: F821
carbon_max = max(robust_max(io.read_raster(path, bands=1)) for path in inp.carbon)
for path in out.carbon:
    io.write_text(path, raster_qml(0.0, carbon_max, GREENS, "t C/ha"))
sink_max = max((robust_max(abs(io.read_raster(path, bands=1))) for path in inp.sinks), default=1.0)
for path in out.sinks:
    io.write_text(path, raster_qml(-sink_max, sink_max, BROWN_GREEN, "t C/ha/yr"))
zone_max = max(robust_max(io.read_vector(path)["carbon_t_ha"].to_numpy(), 100) for path in inp.tables)
for path in out.tables:
    io.write_text(path, vector_qml("carbon_t_ha", 0.0, zone_max, GREENS, "t C/ha"))
change_max = max((robust_max(abs(io.read_vector(path)["sink_t_ha_yr"].to_numpy()), 100) for path in inp.change), default=1.0)
for path in out.change:
    io.write_text(path, vector_qml("sink_t_ha_yr", -change_max, change_max, BROWN_GREEN, "t C/ha/yr"))
for path in out.fixed:
    io.write_text(path, raster_qml(*FIXED_RASTERS[Path(path).stem]))
log.info("QGIS styles: carbon 0-%.1f t C/ha, sink ±%.2f t C/ha/yr, zones 0-%.1f t C/ha", carbon_max, sink_max, zone_max)
