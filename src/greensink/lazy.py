"""Lazy scenes: the masked scenes of a year as a dask array on the analysis grid.

:func:`scene_stack` wraps the one reader of the ingest, :func:`~greensink.ingest.read_scene_window`,
so local files, the demo and STAC assets are harmonised and masked exactly as by the windowed
composite; it does not use odc-stac or stackstac. Each chunk of the stack is one scene in one
square window of the grid, read through the same warp onto the whole grid when (and only when)
the chunk is computed: building the array opens no file.

:func:`composite_dask` reduces the stack over the scene axis with the reducers of
:mod:`greensink.composite`, block by block; the values do not depend on the chunk size, and equal
those of :func:`~greensink.composite.composite_strips`. :func:`composite_dask_to_file` streams the
composite into a COG one row of chunks at a time, with the writer and statistics of
:func:`~greensink.composite.composite_to_file`, so the file is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from greensink.composite import BANDS, METHODS, CompositeStats, _write_composite
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest import Scene, read_scene_window

STACK_BANDS = ("red", "nir", "clear")


def _axis_chunks(n: int, size: int) -> tuple[int, ...]:
    return tuple(min(size, n - i) for i in range(0, n, size))


def _read_block(scene: Scene, grid: Grid, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
    """One chunk of the stack: (1, 3, height, width) float32 red, nir, clear (0/1)."""
    red, nir, clear = read_scene_window(scene, grid, Window(col_off, row_off, width, height))
    block = np.empty((1, 3, height, width), dtype=np.float32)
    block[0, 0], block[0, 1], block[0, 2] = red, nir, clear
    return block


def scene_stack(scenes: Sequence[Scene], grid: Grid, chunk_px: int = 1024) -> da.Array:
    """The scenes on ``grid`` as a lazy (n_scenes, 3, rows, cols) float32 dask array of bands
    red, nir (reflectance, NaN where no data) and clear (1 clear sky, 0 not), chunked
    (1, 3, chunk_px, chunk_px) (smaller at the grid's right and bottom edges).

    Each chunk is :func:`~greensink.ingest.read_scene_window` of one scene in that chunk's window;
    nothing is opened until the chunk is computed. The graph is deterministic: the same scenes,
    grid and chunk size give the same array name."""
    if not scenes:
        raise InputDataError("No scene falls in the season of this year. Add scenes or widen season.start/season.end.")
    if int(chunk_px) != chunk_px or chunk_px < 1:
        raise ValueError(f"chunk_px must be a whole number of pixels >= 1. Got {chunk_px!r}.")
    chunk_px = int(chunk_px)
    scenes = list(scenes)
    rows, cols = _axis_chunks(grid.height, chunk_px), _axis_chunks(grid.width, chunk_px)
    name = "scene-stack-" + tokenize(scenes, grid, chunk_px)
    graph = {}
    for s, scene in enumerate(scenes):
        r0 = 0
        for i, h in enumerate(rows):
            c0 = 0
            for j, w in enumerate(cols):
                graph[(name, s, 0, i, j)] = (_read_block, scene, grid, r0, c0, h, w)
                c0 += w
            r0 += h
    return da.Array(graph, name, chunks=((1,) * len(scenes), (3,), rows, cols), dtype=np.float32)


def _reduce_block(block: np.ndarray, method: str) -> np.ndarray:
    """(n, 3, rows, cols) stack block -> (3, rows, cols) red, nir, valid_obs_count."""
    out = np.empty((3, *block.shape[2:]), dtype=np.float32)
    out[0], out[1], out[2] = METHODS[method](block[:, 0], block[:, 1], block[:, 2] != 0)
    return out


def composite_dask(scenes: Sequence[Scene], grid: Grid, method: str = "median", chunk_px: int = 1024) -> da.Array:
    """The composite of ``scenes`` on ``grid`` as a lazy (3, rows, cols) float32 dask array (red,
    nir, valid_obs_count), chunked (3, chunk_px, chunk_px): the stack of :func:`scene_stack`
    gathered over all scenes per spatial chunk and reduced by the ``method`` of
    :data:`greensink.composite.METHODS`. Memory per chunk in flight: scenes × 3 × chunk_px² × 4 bytes."""
    if method not in METHODS:
        raise ValueError(f"Unknown composite method {method!r}. Use one of {sorted(METHODS)}.")
    stack = scene_stack(scenes, grid, chunk_px)
    stack = stack.rechunk({0: stack.shape[0]})
    return da.map_blocks(_reduce_block, stack, method, drop_axis=0, chunks=((3,), *stack.chunks[2:]), dtype=np.float32,
                         name="composite-" + tokenize(stack.name, method))


def _scheduler(threads: int) -> dict:
    """compute() options: in-process synchronous for one thread, else the threaded scheduler."""
    threads = max(int(threads or 1), 1)
    return {"scheduler": "synchronous"} if threads == 1 else {"scheduler": "threads", "num_workers": threads}


def composite_dask_strips(
    composite: da.Array,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Compute ``composite`` (from :func:`composite_dask`) one row of chunks at a time: yields (row
    slice, (3, rows, cols) float32 block) as :func:`~greensink.composite.composite_strips` does.
    Only the chunks of that row are computed, on ``threads`` threads."""
    opts = _scheduler(threads)
    row_chunks = composite.chunks[1]
    r0 = 0
    for i, h in enumerate(row_chunks):
        rows = slice(r0, r0 + h)
        with dask.config.set(opts):
            block = np.asarray(composite[:, rows, :].compute())
        yield rows, block
        if progress:
            progress(i + 1, len(row_chunks))
        r0 += h


def composite_dask_to_file(
    scenes: Sequence[Scene],
    grid: Grid,
    path: str | Path,
    method: str = "median",
    chunk_px: int = 1024,
    progress: Callable[[int, int], None] | None = None,
    *,
    threads: int = 1,
    compress: str = "zstd",
    tags: dict[str, object] | None = None,
) -> dict:
    """The dask twin of :func:`~greensink.composite.composite_to_file` (untiled): composite
    ``scenes`` on ``grid`` through :func:`composite_dask` into the COG ``path``, one row of
    ``chunk_px`` × ``chunk_px`` chunks at a time, and return the statistics. The same pixels,
    band names and ``composite_*`` tags as the windowed composite. Memory: one row of chunks of the
    composite plus the chunks in flight (about ``threads`` × scenes × 3 × chunk_px² × 4 bytes).
    If no pixel is ever clear, InputDataError is raised and nothing is written."""
    comp = composite_dask(scenes, grid, method, chunk_px)
    acc = CompositeStats(len(scenes), method)
    return _write_composite(path, grid, composite_dask_strips(comp, threads, progress), acc, compress=compress, tags=tags)


__all__ = ["BANDS", "STACK_BANDS", "composite_dask", "composite_dask_strips", "composite_dask_to_file", "scene_stack"]
