"""Rule carbon's runner: :func:`run_carbon`, the year's carbon map and carbon.json from its files; in a tiled run
(tiles.size_px) the same for one tile (rule carbon_tile) and :func:`run_carbon_mosaic` (rule carbon_mosaic)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from greensink import io as gio
from greensink import logs
from greensink.carbon.maps import carbon_map_streamed, small_pages, strip_rows_for
from greensink.carbon.stats import add_use_counts, use_stats_from_counts
from greensink.grid import Grid
from greensink.tiling import mosaic_files
from greensink.uncertainty import noise_spec, settings

log = logging.getLogger(__name__)


def run_carbon(models_json: str | Path, predictors: Mapping[str, str | Path], fractions: str | Path,
               ndvi_se: str | Path | None, carbon_out: str | Path, stats_out: str | Path, *, types: Sequence[str],
               year: int, seed: int, interval_pct: float = 90.0, uncertainty: Mapping | None = None,
               compress: str = "zstd", strip_rows: int | None = None, tile_id: str | None = None,
               size_px: int | None = None) -> dict:
    """Rule carbon: the carbon map of ``year`` (:func:`carbon_map_streamed`) from the year's models.json
    ``models_json``, the ``predictors`` rasters (name → path) and the type fractions ``fractions`` (one band
    per type of ``types``), written to ``carbon_out``; its bands 2–3 hold every error source of the
    ``uncertainty`` config (:func:`greensink.uncertainty.noise_spec` of ``seed`` and ``year``; the NDVI source
    reads ``ndvi_se``). carbon.json (the statistics, returned) is written to ``stats_out``. The bands'
    method is ``uncertainty.pixel_interval`` (:data:`INTERVAL_METHODS`, default tabulated).

    ``tile_id`` (rule carbon_tile): the map of that tile of ``grid.tiles(size_px)`` only, the window of the
    whole grid's map (the draws keyed by the whole grid's pixels); its statistics, with the use counts the
    mosaic sums, go to ``stats_out``."""
    models = gio.read_json(models_json)
    grid = gio.read_grid(fractions)
    tile = grid.tile(tile_id, size_px) if tile_id else None
    noise = noise_spec(uncertainty, models, seed=seed, year=int(year), resolution_m=grid.resolution_m)
    method = str(settings(uncertainty)["pixel_interval"])
    stats = carbon_map_streamed(models, types, fractions, predictors, carbon_out, interval_pct=interval_pct,
                                compress=compress, strip_rows=strip_rows, progress=logs.progress(log, "carbon"),
                                noise=noise, ndvi_se_path=ndvi_se, interval_method=method, tile=tile)
    gio.write_json(stats_out, stats)
    log.info("carbon%s: %.0f t C over %d typed pixels", f" tile {tile_id}" if tile else "", stats["total_t"],
             stats["typed_pixels"])
    return stats


@small_pages()  # numpy's huge-page advice off, as in the untiled stage (same bytes, fewer dear fresh pages)
def run_carbon_mosaic(tiles: Sequence[str | Path], tile_stats: Sequence[str | Path], grid_json: str | Path,
                      carbon_out: str | Path, stats_out: str | Path, *, size_px: int, compress: str = "zstd",
                      strip_rows: int | None = None) -> dict:
    """Rule carbon_mosaic: the year's carbon.tif of the grid of ``grid_json`` from its tile maps ``tiles`` (every
    tile of ``grid.tiles(size_px)``, row-major; :func:`greensink.tiling.mosaic_files`) and carbon.json from the
    tiles' statistics ``tile_stats``: typed pixels and model use counts summed, ``total_t`` summed from the
    mosaicked estimate band in the untiled rule's strips (``strip_rows``, default
    :func:`~greensink.carbon.maps.strip_rows_for` the grid's width), so both files are the untiled run's."""
    grid = Grid.read(grid_json)
    rows = strip_rows or strip_rows_for(grid.width)
    total = 0.0

    def add_total(_rows: slice, blocks: dict[str, np.ndarray]) -> None:
        nonlocal total
        est = blocks["carbon"][0]
        total += float(est[np.isfinite(est)].sum(dtype=np.float64))

    mosaic_files({"carbon": list(tiles)}, {"carbon": carbon_out}, grid, size_px, block_rows=rows, compress=compress,
                 on_strip=add_total, progress=logs.progress(log, "carbon mosaic"))
    typed, counts = 0, {}
    for path in tile_stats:
        part = gio.read_json(path)
        typed += int(part["typed_pixels"])
        add_use_counts(counts, part["use_counts"])
    stats = {"total_t": total * grid.pixel_area_ha, "typed_pixels": typed, "types": use_stats_from_counts(counts)}
    gio.write_json(stats_out, stats)
    log.info("carbon mosaic of %d tiles of %d px: %.0f t C over %d typed pixels", len(tiles), size_px,
             stats["total_t"], typed)
    return stats
