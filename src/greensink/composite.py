"""Composite: one growing-season image per year from many masked scenes.

Two methods, both over the clear observations of each pixel only:

* ``median``: per-band median of the clear observations (robust to leftover clouds);
* ``max-ndvi``: the greenest clear observation (both bands taken from that date).

A pixel never seen clear is NaN in every band and 0 in the count layer. Scenes are read one
row strip at a time, so memory grows with strip rows × columns × scenes, not with the scene;
:func:`composite_to_file` also writes each finished strip straight to disk, so the composite
itself is never held whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from greensink import io as gio
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest import Scene, read_scene_window

log = logging.getLogger(__name__)

BANDS = ("red", "nir", "valid_obs_count")


def median_composite(red: np.ndarray, nir: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band median over clear observations. Inputs (n_scenes, rows, cols); returns red, nir, count."""
    ok = clear & np.isfinite(red) & np.isfinite(nir)
    return masked_median(red, ok), masked_median(nir, ok), ok.sum(axis=0).astype(np.float32)


def masked_median(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Median along axis 0 of ``values`` where ``ok`` (float32; NaN where no value is ok).

    The middle value, or the mean of the two middle values, as ``np.nanmedian`` gives; but by one
    sort, without nanmedian's per-pixel warning for pixels never seen (which cost seconds per
    million pixels on a grid mostly outside the scenes)."""
    v = np.where(ok, values, np.nan).astype(np.float64)
    v.sort(axis=0)  # NaN sort last
    n = ok.sum(axis=0)
    lo = np.take_along_axis(v, np.maximum((n - 1) // 2, 0)[np.newaxis], 0)[0]
    hi = np.take_along_axis(v, (n // 2)[np.newaxis], 0)[0]
    out = (lo + hi) / 2.0
    out[n == 0] = np.nan
    return out.astype(np.float32)


def max_ndvi_composite(red: np.ndarray, nir: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greenest clear observation per pixel. Inputs (n_scenes, rows, cols); returns red, nir, count."""
    ok = clear & np.isfinite(red) & np.isfinite(nir)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (nir - red) / (nir + red)
    ndvi = np.where(ok & np.isfinite(ndvi), ndvi, -np.inf)
    best = np.argmax(ndvi, axis=0)[np.newaxis]
    seen = ok.any(axis=0)
    out_r = np.where(seen, np.take_along_axis(red, best, 0)[0], np.nan).astype(np.float32)
    out_n = np.where(seen, np.take_along_axis(nir, best, 0)[0], np.nan).astype(np.float32)
    return out_r, out_n, ok.sum(axis=0).astype(np.float32)


METHODS: dict[str, Callable] = {"median": median_composite, "max-ndvi": max_ndvi_composite}


def composite_strips(
    scenes: Sequence[Scene],
    grid: Grid,
    method: str = "median",
    block_rows: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Composite ``scenes`` on ``grid`` one row strip at a time: yields (row slice, (3, strip
    rows, cols) float32 block of red, nir, valid_obs_count). Memory is one strip of every scene."""
    if not scenes:
        raise InputDataError("No scene falls in the season of this year. Add scenes or widen season.start/season.end.")
    reduce = METHODS[method]
    windows = grid.windows(block_rows)
    for i, (rows, _) in enumerate(windows):
        window = Window(0, rows.start, grid.width, rows.stop - rows.start)
        stack = [read_scene_window(s, grid, window) for s in scenes]
        red = np.stack([s[0] for s in stack])
        nir = np.stack([s[1] for s in stack])
        clear = np.stack([s[2] for s in stack])
        del stack
        block = np.empty((3, window.height, grid.width), dtype=np.float32)
        block[0], block[1], block[2] = reduce(red, nir, clear)
        yield rows, block
        if progress:
            progress(i + 1, len(windows))


class CompositeStats:
    """Composite statistics accumulated strip by strip (exact integer counts)."""

    def __init__(self, n_scenes: int, method: str) -> None:
        self.n_scenes, self.method = n_scenes, method
        self.pixels = self.never = self.clear_obs = 0

    def add(self, count: np.ndarray) -> None:
        self.pixels += int(count.size)
        self.never += int((count == 0).sum())
        self.clear_obs += int(count.sum(dtype=np.float64))

    def result(self) -> dict:
        """The statistics; raises InputDataError if no pixel was ever clear."""
        if self.never == self.pixels:
            raise InputDataError(
                f"All {self.pixels} pixels are masked in every one of the {self.n_scenes} scenes (clouds, shadow or no data). "
                "Add clearer scenes or check the quality band."
            )
        return {
            "n_scenes": self.n_scenes,
            "pixels": self.pixels,
            "pixels_never_clear": self.never,
            "never_clear_pct": 100.0 * self.never / self.pixels,
            "mean_clear_obs": self.clear_obs / self.pixels,
            "method": self.method,
        }


def composite_year(
    scenes: Sequence[Scene],
    grid: Grid,
    method: str = "median",
    block_rows: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict]:
    """Composite ``scenes`` on ``grid``: returns a (3, rows, cols) float32 array (red, nir,
    valid_obs_count) and statistics (pixels never seen clear, mean clear observations).
    Holds the whole composite in memory; :func:`composite_to_file` streams it to disk instead."""
    out = np.full((3, *grid.shape), np.nan, dtype=np.float32)
    stats = CompositeStats(len(scenes), method)
    for rows, block in composite_strips(scenes, grid, method, block_rows, progress):
        out[:, rows] = block
        stats.add(block[2])
    return out, stats.result()


def composite_to_file(
    scenes: Sequence[Scene],
    grid: Grid,
    path: str | Path,
    method: str = "median",
    block_rows: int = 512,
    progress: Callable[[int, int], None] | None = None,
    *,
    compress: str = "zstd",
    tags: dict[str, object] | None = None,
) -> dict:
    """Composite ``scenes`` on ``grid`` into the COG ``path`` strip by strip (bands red, nir,
    valid_obs_count; the same values as :func:`composite_year`), and return the statistics.

    Memory is bounded by ``block_rows`` × columns × scenes, not by the grid. The statistics are
    stored as ``composite_*`` tags with ``tags`` besides. The file appears only when complete:
    if no pixel is ever clear, InputDataError is raised and nothing is written."""
    acc = CompositeStats(len(scenes), method)
    with gio.raster_writer(path, grid, len(BANDS), band_names=BANDS, compress=compress) as out:
        for rows, block in composite_strips(scenes, grid, method, block_rows, progress):
            out.write(block, rows.start)
            acc.add(block[2])
        stats = acc.result()
        out.update_tags(**{f"composite_{k}": v for k, v in stats.items()}, **(tags or {}))
    return stats
