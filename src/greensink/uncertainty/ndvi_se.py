"""The composite NDVI's standard error from its clear-observation count (:func:`ndvi_standard_error`),
written as ``ndvi_se.tif`` (:func:`ndvi_se_to_file`) by rule ndvi_se (:func:`run_ndvi_se`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2)  # SE of a median of n normal values ≈ 1.2533 σ/√n




# ----------------------------------------------------------------------------- NDVI error


def ndvi_standard_error(count: np.ndarray, obs_sd: float, method: str = "median") -> np.ndarray:
    """Standard error of the composite NDVI from the number of clear observations n: σ_obs·1.2533/√n
    for a median composite (the median's asymptotic SE), σ_obs/√n·1.2533 also for max-NDVI (an
    approximation: the maximum is not an average); NaN where n = 0."""
    n = np.asarray(count, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = MEDIAN_SE_FACTOR * float(obs_sd) / np.sqrt(n)
    return np.where(n > 0, se, np.nan).astype(np.float32)


def ndvi_se_to_file(composite_path, out_path, *, obs_sd: float, method: str = "median", compress: str = "zstd",
                    strip_rows: int = 512, tile=None) -> dict:
    """Write ``ndvi_se.tif`` (NDVI standard error of the composite, :func:`ndvi_standard_error`) from the
    composite's ``valid_obs_count`` band, strip by strip; returns its mean over observed pixels. With ``tile``
    (a :class:`greensink.grid.Tile`, rule ndvi_se_tile) only the composite's window ``tile``, on its sub-grid."""
    from rasterio.windows import Window

    from greensink import io as gio

    grid = gio.read_grid(composite_path)
    r0, c0 = (tile.row_off, tile.col_off) if tile is not None else (0, 0)
    if tile is not None:
        grid = grid.subgrid(tile)
    band = gio.band_names(composite_path).index("valid_obs_count") + 1
    total, n = 0.0, 0
    with gio.raster_writer(out_path, grid, 1, band_names=["ndvi_se"], compress=compress,
                           tags={"units": "NDVI", "obs_sd": obs_sd, "method": method}) as out:
        for r in range(0, grid.height, strip_rows):
            h = min(strip_rows, grid.height - r)
            count = gio.read_raster(composite_path, bands=band, window=Window(c0, r0 + r, grid.width, h))
            se = ndvi_standard_error(count, obs_sd, method)
            out.write(se[np.newaxis], r)
            ok = np.isfinite(se)
            total += float(se[ok].sum(dtype=np.float64))
            n += int(ok.sum())
    return {"mean_ndvi_se": total / n if n else None, "observed_pixels": n}


def run_ndvi_se(composite: str | Path, out: str | Path, *, obs_sd: float, method: str = "median",
                compress: str = "zstd") -> dict:
    """Rule ndvi_se: ``out`` (results/{year}/ndvi_se.tif) from the composite's clear-observation count
    (:func:`ndvi_se_to_file`); returns its statistics."""
    stats = ndvi_se_to_file(composite, out, obs_sd=obs_sd, method=method, compress=compress)
    log.info("ndvi_se: mean %s NDVI over %d observed pixels (σ per observation %g)",
             "-" if stats["mean_ndvi_se"] is None else f"{stats['mean_ndvi_se']:.4f}", stats["observed_pixels"], obs_sd)
    return stats


def run_ndvi_se_tile(composite: str | Path, out: str | Path, *, tile_id: str, size_px: int, obs_sd: float,
                     method: str = "median", compress: str = "zstd") -> dict:
    """Rule ndvi_se_tile (tiles.size_px set): ``out`` (results/{year}/tiles/ndvi_se_{tile}.tif), the window
    ``tile_id`` of ``grid.tiles(size_px)`` of what rule ndvi_se writes (:func:`ndvi_se_to_file`)."""
    from greensink import io as gio

    tile = gio.read_grid(composite).tile(tile_id, size_px)
    stats = ndvi_se_to_file(composite, out, obs_sd=obs_sd, method=method, compress=compress, tile=tile)
    log.info("ndvi_se tile %s: %d observed pixels", tile_id, stats["observed_pixels"])
    return stats


def run_ndvi_se_mosaic(tiles: Sequence[str | Path], grid_json: str | Path, out: str | Path, *, size_px: int,
                       compress: str = "zstd") -> None:
    """Rule ndvi_se_mosaic: results/{year}/ndvi_se.tif of the grid of ``grid_json`` from its tiles ``tiles``
    (every tile of ``grid.tiles(size_px)``, row-major; :func:`greensink.tiling.mosaic_files`)."""
    from greensink.grid import Grid
    from greensink.tiling import mosaic_files

    mosaic_files({"ndvi_se": list(tiles)}, {"ndvi_se": out}, Grid.read(grid_json), size_px, compress=compress)
    log.info("ndvi_se: mosaic of %d tiles of %d px", len(tiles), size_px)

