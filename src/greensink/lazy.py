"""Lazy scenes: the masked scenes of a year as a dask array on the analysis grid.

:func:`scene_stack` wraps the one reader of the ingest, :func:`~greensink.ingest.read_scene_window`,
so local files, the demo and STAC assets are harmonised and masked exactly as by the windowed
composite; it does not use odc-stac or stackstac. Each chunk of the stack is one scene in one
square window of the grid, read through the same warp onto the whole grid when (and only when)
the chunk is computed: building the array opens no file.

The dask engine of the composite (:func:`greensink.composite.composite_dask`) reduces this stack;
this module knows nothing of composites, so the composite imports it and not the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

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


__all__ = ["STACK_BANDS", "scene_stack"]
