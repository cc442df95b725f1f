"""Quick-look maps as PNG files, for Snakemake's own report (``snakemake --report report.zip``).

Snakemake's report shows PNG files in place but only offers GeoTIFFs for download, so rule
report_maps draws each year's carbon density (``results/{year}/carbon.png``) and each pair's yearly
net sink (``results/change/{y0}_{y1}/sink.png``) beside their GeoTIFFs, the way the planner report
draws them (:mod:`greensink.report.maps`): one colour scale per quantity shared by every year (every
pair), the boundaries of the second zone level, grey where no clear observation was made.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from greensink import io as gio
from greensink.grid import Grid
from greensink.report.maps import downsample, raster_map, upper_limit

log = logging.getLogger(__name__)

DATA_URI_PREFIX = "data:image/png;base64,"


def png_bytes(data_uri: str) -> bytes:
    """The PNG file of a ``data:image/png;base64,...`` URI (what :mod:`greensink.report.maps` returns)."""
    if not data_uri.startswith(DATA_URI_PREFIX):
        raise ValueError(f"a PNG data URI ({DATA_URI_PREFIX}...) expected. Got {data_uri[:40]!r}.")
    return base64.b64decode(data_uri[len(DATA_URI_PREFIX):])


def _write_png(path: str | Path, data_uri: str) -> None:
    with gio.atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(data_uri))


def run_report_maps(*, carbon: Sequence[str | Path], sinks: Sequence[str | Path], grid: str | Path,
                    boundaries: str | Path | None, out_carbon: Sequence[str | Path], out_sinks: Sequence[str | Path],
                    years: Sequence[int], pairs: Sequence[Sequence[int]]) -> dict[str, float]:
    """Rule report_maps: draw ``carbon`` (one carbon.tif per year of ``years``, band 1 in t C/ha) to
    ``out_carbon`` and ``sinks`` (one sink.tif per pair of ``pairs``, band 1 in t C/ha/yr) to ``out_sinks``,
    on the run's ``grid`` with the zones of ``boundaries`` (a zone layer, or None) outlined. The carbon
    scale runs from 0 to the 99th percentile of every year's pixels, the sink scale symmetric to the 98th
    percentile of every pair's absolute sink, as in the planner report. Returns the two scale limits."""
    years, pairs = [int(y) for y in years], [tuple(int(v) for v in p) for p in pairs]
    for what, paths, outs, keys in (("carbon", carbon, out_carbon, years), ("sinks", sinks, out_sinks, pairs)):
        if not len(paths) == len(outs) == len(keys):
            raise ValueError(f"report_maps {what}: one input and one output per entry of {keys} expected. "
                             f"Got {len(paths)} inputs and {len(outs)} outputs.")
    run_grid = Grid.read(grid)
    extent = tuple(float(v) for v in run_grid.bounds)
    outline = gio.read_vector(boundaries) if boundaries else None
    shown = [downsample(gio.read_raster(p, bands=1), extent) for p in carbon]
    density_max = upper_limit((band for band, _ in shown), 99)
    for year, (band, band_extent), out in zip(years, shown, out_carbon, strict=True):
        _write_png(out, raster_map(band, band_extent, extent, outline, title=f"Carbon density {year}",
                                   label="t C/ha", cmap="YlGn", vmin=0.0, vmax=density_max, extend="max"))
    shown_sink = [downsample(gio.read_raster(p, bands=1), extent) for p in sinks]
    sink_max = upper_limit((np.abs(band) for band, _ in shown_sink), 98)
    for (y0, y1), (band, band_extent), out in zip(pairs, shown_sink, out_sinks, strict=True):
        _write_png(out, raster_map(band, band_extent, extent, outline, title=f"Yearly sink {y0}-{y1}",
                                   label="t C/ha/yr", cmap="BrBG", vmin=-sink_max, vmax=sink_max, extend="both"))
    log.info("report maps: %d carbon maps (0-%.2f t C/ha), %d sink maps (±%.3f t C/ha/yr)", len(years), density_max,
             len(pairs), sink_max)
    return {"carbon_t_ha_max": density_max, "sink_t_ha_yr_max": sink_max}
