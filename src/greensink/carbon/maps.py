"""Carbon maps: the (estimate, lower, upper) bands of a pixel function over a grid (:func:`density_map`)
and the carbon stage streamed by row strips into carbon.tif (:func:`carbon_map_streamed`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from greensink import io as gio
from greensink.carbon.interval import (
    INTERVAL_METHODS,
    PAIR_TABLE_MIN_PIXELS,
    IntervalTable,
    interval_quantiles,
    tabulated_map,
)
from greensink.carbon.pixels import CHUNK_PIXELS, PixelFn, iter_chunks, pixel_function, typed_pixels
from greensink.carbon.stats import UseCodes, add_use_counts, use_stats_from_counts
from greensink.errors import InputDataError, ModelError
from greensink.grid import Tile
from greensink.memory import HUGEPAGE_ENV, hugepage_setter, small_pages  # noqa: F401 (moved there; names kept here)
from greensink.model import type_record, used_predictors
from greensink.uncertainty import Noise, NoiseSpec

STRIP_PIXELS = 1 << 22  # about 4 Mpx per streamed row strip (see strip_rows_for)
_hugepage_setter = hugepage_setter  # the name before greensink.memory (tests/test_carbon_pages.py)
def density_map(fn: PixelFn, active: np.ndarray, shape: tuple[int, int], interval_pct: float = 90.0,
                fill: float = 0.0, chunk_pixels: int = CHUNK_PIXELS) -> np.ndarray:
    """(3, rows, cols) float32: estimate, lower, upper; ``fill`` outside the active pixels."""
    out = np.full((3, shape[0] * shape[1]), fill, dtype=np.float32)
    qlo, qhi = interval_quantiles(interval_pct)
    for idx in iter_chunks(active, chunk_pixels):
        est, draws = fn(idx)
        out[0, idx] = est
        ok = np.isfinite(est)
        lo = np.full(idx.size, np.nan)
        hi = np.full(idx.size, np.nan)
        if ok.any():
            lo[ok], hi[ok] = np.quantile(draws[:, ok], [qlo, qhi], axis=0)
        out[1, idx], out[2, idx] = lo, hi
    return out.reshape(3, *shape)


# ----------------------------------------------------------------------------- streamed stage


def carbon_band_names(interval_pct: float) -> list[str]:
    """Band names of carbon.tif: the estimate and the interval's lower and upper percentiles
    (90 -> carbon_t_ha, carbon_t_ha_p5, carbon_t_ha_p95)."""
    lo, hi = int(round((100 - interval_pct) / 2)), int(round(100 - (100 - interval_pct) / 2))
    return ["carbon_t_ha", f"carbon_t_ha_p{lo}", f"carbon_t_ha_p{hi}"]


def strip_rows_for(width: int, strip_pixels: int = STRIP_PIXELS) -> int:
    """Rows per streamed strip of a grid ``width`` columns wide: about ``strip_pixels`` pixels,
    rounded to the nearest multiple of 512 rows (whole tile rows of the written COG, so no tile
    is encoded twice) when that many rows are at least 256, else as many rows as fit (at least 1).
    A strip is thus between half and twice ``strip_pixels``: 512 rows of a 10980-pixel
    Sentinel-2 tile (5.6 Mpx)."""
    rows = max(1, strip_pixels // max(width, 1))
    return max(512, 512 * round(rows / 512)) if rows >= 256 else rows


def _strips(path: str | Path, bands: int | list[int], height: int, width: int,
            strip_rows: int, tile: Tile | None = None,
            buffers: dict[str, np.ndarray] | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """(row slice, block) of successive row strips, each read as :func:`greensink.io.read_raster` reads
    (float32, nodata as NaN: the reader of the whole-raster path, so a strip has exactly the values of those rows);
    of the window ``tile`` (``height`` × ``width`` its shape, rows relative to it) when given. With ``buffers``
    every strip of the same shape is read into one float32 array kept there (:func:`_read_reused`): a block is
    overwritten by the next strip, so use it before asking for the next."""
    r0, c0 = (tile.row_off, tile.col_off) if tile is not None else (0, 0)
    for r in range(0, height, strip_rows):
        h = min(strip_rows, height - r)
        window = Window(c0, r0 + r, width, h)
        if buffers is None:
            yield slice(r, r + h), gio.read_raster(path, bands=bands, window=window)
        else:
            yield slice(r, r + h), _read_reused(path, bands, window, buffers)


def _read_reused(path: str | Path, bands: int | list[int], window: Window,
                 buffers: dict[str, np.ndarray]) -> np.ndarray:
    """:func:`greensink.io.read_raster` of ``window`` into a float32 buffer of ``buffers`` (keyed by the path and
    bands, made when missing or of another shape; fewer fresh pages per strip: 112 MB per 4 Mpx strip of five
    fractions, NDVI and its error), the same values: GDAL's conversion to float32 as there, nodata made NaN. A
    raster with mask or alpha bands goes to :func:`~greensink.io.read_raster` itself."""
    with gio.reading(path, "raster"), gio.open_raster(path) as src:
        band_list = [bands] if isinstance(bands, int) else list(bands)
        if not all(set(src.mask_flag_enums[b - 1]) <= {MaskFlags.nodata, MaskFlags.all_valid} for b in band_list):
            return gio.read_raster(path, bands=bands, window=window)
        shape = (window.height, window.width) if isinstance(bands, int) else (len(band_list), window.height,
                                                                              window.width)
        buf = _reused(buffers, f"read:{path}:{band_list}", None, np.float32, shape)
        src.read(bands, window=window, out=buf)
        nodata = src.nodata
        if nodata is not None and not np.isnan(nodata):
            buf[buf == np.float32(nodata)] = np.nan
    return buf


def _reused(buffers: dict[str, np.ndarray], name: str, values: np.ndarray | None, dtype,
            shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``buffers[name]`` (made when missing or of another shape) holding ``values`` cast to ``dtype`` (as
    ``astype``), or uninitialised for ``values`` None."""
    shape = values.shape if values is not None else shape
    buf = buffers.get(name)
    if buf is None or buf.shape != shape:
        buf = buffers[name] = np.empty(shape, dtype=dtype)
    if values is not None:
        np.copyto(buf, values, casting="unsafe")
    return buf


@small_pages()  # the whole stage without numpy's huge-page advice (fewer dear fresh pages; same values)
def carbon_map_streamed(
    models: dict,
    types: Sequence[str],
    fractions_path: str | Path,
    predictor_paths: Mapping[str, str | Path],
    out_path: str | Path,
    *,
    interval_pct: float = 90.0,
    compress: str = "zstd",
    strip_rows: int | None = None,
    chunk_pixels: int = CHUNK_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    noise: NoiseSpec | None = None,
    ndvi_se_path: str | Path | None = None,
    interval_method: str = "exact",
    tile: Tile | None = None,
) -> dict:
    """The carbon stage, streamed by row strips: writes the (estimate, lower, upper) map of
    :func:`density_map` to ``out_path`` and returns the content of carbon.json
    (``total_t``, ``typed_pixels``, ``types``: the :func:`model_use_stats`).

    ``fractions_path`` has one band per type of ``types`` (in that order); ``predictor_paths``
    maps predictor names to rasters on the same grid (``ndvi`` always, the others the models
    use: :func:`greensink.model.used_predictors`; extra entries are not read). The grid is
    ``predictor_paths["ndvi"]``'s. Each strip of ``strip_rows`` rows (default
    :func:`strip_rows_for` the grid width) is evaluated with :func:`pixel_function` and
    :func:`density_map` and written through :func:`greensink.io.raster_writer`, so an error
    leaves no file behind. ``total_t`` is the sum of the written estimate band (float32 values,
    summed in float64) × pixel area; the statistics are exact counts summed over the strips, recorded by the
    map's own model evaluations (:class:`~greensink.carbon.stats.UseCodes`: each pixel's curve is evaluated once,
    the counts equal to :func:`model_use_counts`'s).

    ``noise`` adds the other error sources to the draws of bands 2–3 (:mod:`greensink.uncertainty`;
    its grid size is taken from the grid here), ``ndvi_se_path`` is the NDVI standard error raster
    its NDVI source needs. Their random numbers depend on the pixel, never on the strip.

    ``interval_method`` (:data:`INTERVAL_METHODS`): ``exact`` evaluates and sorts every draw at every typed
    pixel (:func:`density_map`); ``tabulated`` takes the percentiles of the same draws' distribution in
    closed form (:func:`tabulated_map`, one :class:`IntervalTable` for the whole grid), the noise's random
    numbers never drawn; the estimate band is the same either way.

    ``tile`` (a tiled run's carbon_tile job): the map of the inputs' window ``tile`` only, on its sub-grid;
    the noise streams stay keyed by the whole grid's pixel index, so the tile is the window of the whole
    map. The statistics are then the tile's, with ``use_counts`` (:func:`model_use_counts`, summed by the
    mosaic)."""
    if interval_method not in INTERVAL_METHODS:
        raise ValueError(f"interval_method must be one of {INTERVAL_METHODS}. Got {interval_method!r}.")
    types = list(types)
    grid = gio.read_grid(predictor_paths["ndvi"])
    names = used_predictors(models, types)
    missing = [q for q in names if q not in predictor_paths]
    if missing:
        raise ModelError(
            f"predictor raster(s) {missing} are needed by a fitted model. Got only {sorted(predictor_paths)} instead. "
            "Pass every raster of model.predictors (results/{year}/<name>.tif)."
        )
    paths = {"fractions": fractions_path, **{q: predictor_paths[q] for q in names}}
    for label, path in paths.items():
        other = gio.read_grid(path)
        if other.shape != grid.shape:
            raise InputDataError(f"{path}: {other.height} × {other.width} pixels, but the grid of "
                                 f"{predictor_paths['ndvi']} is {grid.height} × {grid.width}. "
                                 f"The {label} raster must be on the run's grid; rerun the stage that wrote it.")
    with gio.open_raster(fractions_path) as src:
        if src.count != len(types):
            raise InputDataError(f"{fractions_path}: {src.count} band(s), but there are {len(types)} types {types}. "
                                 "Rerun the types rule (results/types/fractions.tif) for this configuration.")
    whole = grid
    grid = whole.subgrid(tile) if tile is not None else whole  # the grid of the map written
    row_off, col_off = (tile.row_off, tile.col_off) if tile is not None else (0, 0)
    rows = strip_rows or strip_rows_for(grid.width)
    if rows < 1:
        raise ValueError(f"strip_rows must be >= 1. Got {strip_rows}.")
    buffers: dict[str, np.ndarray] = {}  # reused by every full strip (fresh pages are dear: fewer page faults)
    readers = [_strips(fractions_path, list(range(1, len(types) + 1)), grid.height, grid.width, rows, tile, buffers)]
    readers += [_strips(predictor_paths[q], 1, grid.height, grid.width, rows, tile, buffers) for q in names]
    noisy = None
    if noise is not None:
        noise = dataclasses.replace(noise, width=whole.width, height=whole.height)
        noisy = Noise(noise, type_record(models, types[0]).bootstrap.shape[0])
        if noise.ndvi:
            if ndvi_se_path is None:
                raise ModelError("the NDVI error source (uncertainty.ndvi) needs results/{year}/ndvi_se.tif. Got none.")
            names = [*names, "ndvi_se"]
            readers.append(_strips(ndvi_se_path, 1, grid.height, grid.width, rows, tile, buffers))
    n_strips = math.ceil(grid.height / rows)
    table = None
    if interval_method == "tabulated":  # pair tables on large grids (the whole grid's size, so a tile is its window)
        table = IntervalTable(models, types, noisy, interval_pct,
                              pairs=whole.width * whole.height >= PAIR_TABLE_MIN_PIXELS)
    total = 0.0
    typed = 0
    counts: dict = {}
    with gio.raster_writer(out_path, grid, 3, band_names=carbon_band_names(interval_pct), compress=compress,
                           tags={"units": "t C/ha", "interval_pct": interval_pct}) as out:
        for i, ((sl, frac), *preds) in enumerate(zip(*readers, strict=True)):
            # float64 once per strip (the pixel functions work in float64 and would each convert the rasters again)
            layers = {q: _reused(buffers, q, block.reshape(-1), np.float64) for q, (_, block) in zip(names, preds,
                                                                                                    strict=True)}
            shape = (sl.stop - sl.start, grid.width)
            active = typed_pixels(frac)
            # the use counts recorded by the map's own evaluations (the curve evaluated once per pixel)
            uses = UseCodes(models, types, layers["ndvi"], buffers.get("uses"))
            buffers["uses"] = uses.codes
            if table is not None:
                block = tabulated_map(models, types, frac, layers, table, noise=noisy, row0=row_off + sl.start,
                                      chunk_pixels=chunk_pixels, col0=col_off, grid_width=whole.width, active=active,
                                      out=_reused(buffers, "out", None, np.float32, (3, shape[0] * shape[1])),
                                      uses=uses)
            else:
                fn = pixel_function(models, types, frac, layers, noise=noisy, row0=row_off + sl.start, col0=col_off,
                                    grid_width=whole.width, uses=uses)
                block = density_map(fn, active, shape, interval_pct, chunk_pixels=chunk_pixels)
            out.write(block, sl.start)
            est = block[0]
            total += float(est[np.isfinite(est)].sum(dtype=np.float64))
            typed += int(active.size)
            add_use_counts(counts, uses.counts(frac))
            if progress:
                progress(i + 1, n_strips)
    stats = {"total_t": total * grid.pixel_area_ha, "typed_pixels": typed, "types": use_stats_from_counts(counts)}
    if tile is not None:
        stats["use_counts"] = counts
    return stats
