"""Composite: one growing-season image per year from many masked scenes.

Two methods, both over the clear observations of each pixel only:

* ``median``: per-band median of the clear observations (robust to leftover clouds);
* ``max-ndvi``: the greenest clear observation (both bands taken from that date).

A pixel never seen clear is NaN in every band and 0 in the count layer. Scenes are read one
row strip at a time, so memory grows with strip rows × columns × scenes, not with the scene;
:func:`composite_to_file` also writes each finished strip straight to disk, so the composite
itself is never held whole.

A large area can be cut into fixed tiles of the grid (:meth:`Grid.tiles`): each tile is
composited on its own (``composite_to_file(..., tile=...)``, one ``{year}``×``{tile}`` job) and
:func:`mosaic_to_file` streams the tiles back into the composite of the whole grid. Every tile
reads the scenes through the same warp onto the whole grid, only in its own window, so the
mosaic has the same pixels as the untiled composite, without seams, and the same statistics.

The dask engine (``imagery.engine: dask``; :func:`composite_dask`) reduces the lazy scene stack of
:mod:`greensink.lazy` with the same reducers, chunk by chunk; the values do not depend on the chunk
size, and :func:`composite_dask_to_file` writes them with the same writer and statistics, so the
file is the same as the windowed engine's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import dask.array as da
import numpy as np
from dask.base import tokenize
from pyproj import CRS
from rasterio.windows import Window

from greensink import io as gio
from greensink import logs
from greensink.errors import InputDataError
from greensink.grid import Grid, Tile
from greensink.ingest import Scene, read_scene_window
from greensink.ingest.reader import held_open
from greensink.lazy import DaskScheduler, dask_options, dask_scheduler, scene_stack
from greensink.memory import small_pages

log = logging.getLogger(__name__)

BANDS = ("red", "nir", "valid_obs_count")
ENGINES = ("windows", "dask")  # imagery.engine: row strips read in-process, or lazy dask chunks (greensink.lazy)


def median_composite(red: np.ndarray, nir: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band median over clear observations. Inputs (n_scenes, rows, cols); returns red, nir, count."""
    ok = clear & np.isfinite(red) & np.isfinite(nir)
    n = ok.sum(axis=0)
    return _median_of_finite(red, ok, n), _median_of_finite(nir, ok, n), n.astype(np.float32)


def masked_median(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Median along axis 0 of ``values`` where ``ok`` (float32; NaN where no value is ok).

    The middle value, or the mean of the two middle values, as ``np.nanmedian`` gives (a NaN value
    counts as not ok); without nanmedian's per-pixel warning for pixels never seen (which cost
    seconds per million pixels on a grid mostly outside the scenes)."""
    ok = ok & ~np.isnan(values)
    return _median_of_finite(values, ok, ok.sum(axis=0))


MEDIAN_NETWORK_MAX = 16  # up to this many scenes the median sorts by a comparator network, beyond by np.sort


def _median_of_finite(values: np.ndarray, ok: np.ndarray, n: np.ndarray) -> np.ndarray:
    """:func:`masked_median` where no ok value is NaN and ``n`` is the count of ok values per pixel.

    The values that are not ok become +inf and the scene axis is sorted, so each pixel's ok values come first
    in order; the median is the middle one, or the float64 mean of the two middle ones, rounded once to
    float32. Float32 values are sorted as float32 (the order and the values picked are those of a float64
    sort). Up to MEDIAN_NETWORK_MAX scenes the sort is Batcher's odd-even merge network of element-wise
    minimum/maximum over whole planes, not a sort call per pixel."""
    dtype = np.float32 if values.dtype == np.float32 else np.float64
    v = np.where(ok, values, np.inf).astype(dtype, copy=False)
    if len(v) <= MEDIAN_NETWORK_MAX:
        tmp = np.empty_like(v[0]) if len(v) else None
        for i, j in _batcher_pairs(len(v)):
            np.minimum(v[i], v[j], out=tmp)
            np.maximum(v[i], v[j], out=v[j])
            v[i] = tmp
    else:
        v.sort(axis=0)
    if len(v) == 0:
        return np.full(values.shape[1:], np.nan, dtype=np.float32)
    lo = np.take_along_axis(v, np.maximum((n - 1) // 2, 0)[np.newaxis], 0)[0]
    hi = np.take_along_axis(v, np.minimum(n // 2, len(v) - 1)[np.newaxis], 0)[0]
    out = (lo.astype(np.float64) + hi) / 2.0
    out[n == 0] = np.nan
    return out.astype(np.float32)


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
    """The comparators (i, j), i < j, of Batcher's odd-even merge sort of ``n`` elements (a network for the next
    power of two with the comparators that touch the missing elements dropped: those are +inf and stay last)."""
    pairs = []
    size = 1
    while size < n:
        size *= 2
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    return pairs


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
    *,
    tile: Tile | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Composite ``scenes`` on ``grid`` one row strip at a time: yields (row slice, (3, strip
    rows, cols) float32 block of red, nir, valid_obs_count). Memory is one strip of every scene.

    With ``tile`` (one of ``grid.tiles(...)``), only the pixels of that tile: strips span the
    tile's columns and the row slices count from the tile's first row. The scenes are still warped
    onto ``grid`` itself and read in the tile's window, so a tile has exactly the values of the same
    window of the untiled composite."""
    if not scenes:
        raise InputDataError("No scene falls in the season of this year. Add scenes or widen season.start/season.end.")
    reduce = METHODS[method]
    t = tile if tile is not None else grid.tiles()[0]
    with held_open() as datasets:  # each scene's band files open over all strips: a file tile decoded once
        yield from _strips(scenes, grid, reduce, block_rows, progress, t, datasets)


def _strips(scenes: Sequence[Scene], grid: Grid, reduce: Callable, block_rows: int,
            progress: Callable[[int, int], None] | None, t: Tile, datasets: dict) -> Iterator[tuple[slice, np.ndarray]]:
    """:func:`composite_strips` of the tile ``t`` with the band files held open in ``datasets``."""
    starts = range(0, t.height, block_rows)
    red = nir = clear = None
    for i, r in enumerate(starts):
        h = min(block_rows, t.height - r)
        window = Window(t.col_off, t.row_off + r, t.width, h)
        if red is None or h != red.shape[1]:  # one stack per strip height, every scene read into its own planes
            red = np.empty((len(scenes), h, t.width), dtype=np.float32)
            nir = np.empty_like(red)
            clear = np.empty(red.shape, dtype=bool)
        for k, s in enumerate(scenes):
            read_scene_window(s, grid, window, out=(red[k], nir[k], clear[k]), datasets=datasets)
        block = np.empty((3, h, t.width), dtype=np.float32)
        block[0], block[1], block[2] = reduce(red, nir, clear)
        yield slice(r, r + h), block
        if progress:
            progress(i + 1, len(starts))


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
        return self.summary()

    def summary(self) -> dict:
        """The statistics, even if no pixel was ever clear (one tile may lie wholly under cloud)."""
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
    tile: Tile | None = None,
    engine: str = "windows",
    threads: int = 1,
    dask_config: Mapping | None = None,
) -> dict:
    """Composite ``scenes`` on ``grid`` into the COG ``path`` strip by strip (bands red, nir,
    valid_obs_count; the same values as :func:`composite_year`), and return the statistics.

    Memory is bounded by ``block_rows`` × columns × scenes, not by the grid. The statistics are
    stored as ``composite_*`` tags with ``tags`` besides. The file appears only when complete:
    if no pixel is ever clear, InputDataError is raised and nothing is written.

    With ``tile`` (one of ``grid.tiles(size_px)``), the file holds that tile only, on
    ``grid.subgrid(tile)``, with the tile's own statistics and ``tile_*`` tags; a tile never seen
    clear is written (the check is made on the whole mosaic, by :func:`mosaic_to_file`).

    ``engine`` ``dask`` (untiled only) reads the scenes as a lazy dask array in ``block_rows`` ×
    ``block_rows`` chunks and reduces it chunk by chunk on ``threads`` threads, or on the dask.distributed
    cluster ``dask_config`` (``imagery.dask``) names (:func:`composite_dask_to_file`): the same file. ``windows`` (the default)
    reads row strips in this process; a tile is always composited so."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown composite engine {engine!r}. Use one of {list(ENGINES)}.")
    if engine == "dask" and tile is None:
        return composite_dask_to_file(scenes, grid, path, method, block_rows, progress, threads=threads,
                                      dask_config=dask_config, compress=compress, tags=tags)
    acc = CompositeStats(len(scenes), method)
    strips = composite_strips(scenes, grid, method, block_rows, progress, tile=tile)
    if tile is None:
        return _write_composite(path, grid, strips, acc, compress=compress, tags=tags)
    tile_tags = {"tile_id": tile.id, "tile_row_off": tile.row_off, "tile_col_off": tile.col_off}
    return _write_composite(path, grid.subgrid(tile), strips, acc, compress=compress,
                            tags=tile_tags | (tags or {}), require_clear=False)


def _write_composite(path: str | Path, grid: Grid, strips: Iterable[tuple[slice, np.ndarray]], acc: CompositeStats, *,
                     compress: str, tags: dict[str, object] | None, require_clear: bool = True) -> dict:
    """Stream ``strips`` of a composite into the COG ``path`` on ``grid``, counting the
    statistics in ``acc``; tag the file with them and ``tags``. The one writer of both the
    untiled composite and the mosaic of tiles, so the two give the same file."""
    with gio.raster_writer(path, grid, len(BANDS), band_names=BANDS, compress=compress) as out:
        for rows, block in strips:
            out.write(block, rows.start)
            acc.add(block[2])
        stats = acc.result() if require_clear else acc.summary()
        out.update_tags(**{f"composite_{k}": v for k, v in stats.items()}, **(tags or {}))
    return stats


# ----------------------------------------------------------------------------- the dask engine


def _reduce_block(block: np.ndarray, method: str) -> np.ndarray:
    """(n, 3, rows, cols) stack block -> (3, rows, cols) red, nir, valid_obs_count."""
    out = np.empty((3, *block.shape[2:]), dtype=np.float32)
    out[0], out[1], out[2] = METHODS[method](block[:, 0], block[:, 1], block[:, 2] != 0)
    return out


def composite_dask(scenes: Sequence[Scene], grid: Grid, method: str = "median", chunk_px: int = 1024) -> da.Array:
    """The composite of ``scenes`` on ``grid`` as a lazy (3, rows, cols) float32 dask array (red,
    nir, valid_obs_count), chunked (3, chunk_px, chunk_px): the stack of :func:`greensink.lazy.scene_stack`
    gathered over all scenes per spatial chunk and reduced by the ``method`` of
    :data:`METHODS`. Memory per chunk in flight: scenes × 3 × chunk_px² × 4 bytes."""
    if method not in METHODS:
        raise ValueError(f"Unknown composite method {method!r}. Use one of {sorted(METHODS)}.")
    stack = scene_stack(scenes, grid, chunk_px)
    stack = stack.rechunk({0: stack.shape[0]})
    return da.map_blocks(_reduce_block, stack, method, drop_axis=0, chunks=((3,), *stack.chunks[2:]), dtype=np.float32,
                         name="composite-" + tokenize(stack.name, method))


def composite_dask_strips(
    composite: da.Array,
    scheduler: DaskScheduler | int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Compute ``composite`` (from :func:`composite_dask`) one row of chunks at a time: yields (row
    slice, (3, rows, cols) float32 block) as :func:`composite_strips` does.
    Only the chunks of that row are computed, on ``scheduler`` (from :func:`greensink.lazy.dask_scheduler`),
    or on that many threads of this process when given a number."""
    if not isinstance(scheduler, DaskScheduler):
        with dask_scheduler(scheduler) as threaded:
            yield from composite_dask_strips(composite, threaded, progress)
        return
    row_chunks = composite.chunks[1]
    r0 = 0
    for i, h in enumerate(row_chunks):
        rows = slice(r0, r0 + h)
        block = np.asarray(composite[:, rows, :].compute(**scheduler.options))
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
    dask_config: Mapping | None = None,
    compress: str = "zstd",
    tags: dict[str, object] | None = None,
) -> dict:
    """The dask twin of :func:`composite_to_file` (untiled): composite
    ``scenes`` on ``grid`` through :func:`composite_dask` into the COG ``path``, one row of
    ``chunk_px`` × ``chunk_px`` chunks at a time, and return the statistics. The same pixels,
    band names and ``composite_*`` tags as the windowed composite. Memory: one row of chunks of the
    composite plus the chunks in flight (about ``threads`` × scenes × 3 × chunk_px² × 4 bytes).
    If no pixel is ever clear, InputDataError is raised and nothing is written.

    ``dask_config`` is the config's ``imagery.dask`` section (:func:`greensink.lazy.dask_options`): by default
    the chunks are reduced on ``threads`` threads of this process; ``scheduler: local`` starts a
    dask.distributed LocalCluster of ``threads`` threads for this composite (closed at the end, also on
    error); an address computes on that running scheduler, whose workers must read the scenes' files."""
    comp = composite_dask(scenes, grid, method, chunk_px)
    acc = CompositeStats(len(scenes), method)
    with dask_scheduler(threads, **dask_options(dask_config)) as scheduler:
        log.info("composite chunks computed on %s", scheduler.description)
        return _write_composite(path, grid, composite_dask_strips(comp, scheduler, progress), acc, compress=compress,
                                tags=tags)


# ----------------------------------------------------------------------------- the mosaic of tiles


def mosaic_strips(
    tile_paths: Sequence[str | Path],
    grid: Grid,
    size_px: int | None,
    block_rows: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """The composite of the whole ``grid`` from its tiles, one row strip at a time: yields (row
    slice, (3, strip rows, columns) float32 block) as :func:`composite_strips` does.

    ``tile_paths`` are the files of ``grid.tiles(size_px)``, in that order. Each must lie on its
    tile's sub-grid with the composite's bands, or InputDataError names it. Memory is one strip;
    only the tiles the strip crosses are open."""
    tiles = grid.tiles(size_px)
    if len(tile_paths) != len(tiles):
        raise InputDataError(f"The mosaic of the {grid.height} × {grid.width} grid in tiles of {size_px} px needs "
                             f"{len(tiles)} tile files; got {len(tile_paths)}.")
    for t, p in zip(tiles, tile_paths, strict=True):
        got, want = gio.read_grid(p), grid.subgrid(t)
        same_grid = got.shape == want.shape and got.transform.almost_equals(want.transform, 1e-6) and (
            got.crs == want.crs or CRS.from_user_input(got.crs) == CRS.from_user_input(want.crs))
        if not same_grid or tuple(gio.band_names(p)) != BANDS:
            raise InputDataError(
                f"{p}: is not tile {t.id} of this run's composite (found a {got.height} × {got.width} raster at "
                f"{tuple(got.transform)[:6]} with bands {gio.band_names(p)}; expected {t.height} × {t.width} at "
                f"{tuple(want.transform)[:6]} with bands {list(BANDS)}). It was made for another grid or "
                "tile size: delete the tiles folder and run again."
            )
    windows = grid.windows(block_rows)
    with contextlib.ExitStack() as stack:
        open_: dict[int, object] = {}
        for i, (rows, _) in enumerate(windows):
            block = np.full((len(BANDS), rows.stop - rows.start, grid.width), np.nan, dtype=np.float32)
            for k, t in enumerate(tiles):
                r0, r1 = max(rows.start, t.row_off), min(rows.stop, t.row_off + t.height)
                if r0 >= r1:
                    continue
                if k not in open_:
                    open_[k] = stack.enter_context(gio.open_raster(tile_paths[k]))
                src = open_[k]
                block[:, r0 - rows.start:r1 - rows.start, t.cols] = src.read(
                    window=Window(0, r0 - t.row_off, t.width, r1 - r0), out_dtype=np.float32)
                if r1 == t.row_off + t.height:  # the tile is done: close it
                    open_.pop(k).close()
            yield rows, block
            if progress:
                progress(i + 1, len(windows))


def mosaic_to_file(
    tile_paths: Sequence[str | Path],
    grid: Grid,
    path: str | Path,
    size_px: int | None,
    *,
    n_scenes: int,
    method: str = "median",
    block_rows: int = 512,
    progress: Callable[[int, int], None] | None = None,
    compress: str = "zstd",
    tags: dict[str, object] | None = None,
) -> dict:
    """Mosaic the tile composites ``tile_paths`` (of ``grid.tiles(size_px)``, in order, written by
    :func:`composite_to_file` with ``tile``) into the COG ``path`` of the whole grid, and return
    the statistics of the whole composite.

    The file is written as :func:`composite_to_file` writes the untiled composite: the same
    pixels, band names and ``composite_*`` tags, counted exactly over the mosaic (``n_scenes`` and
    ``method`` are those of the tiles). Memory is one strip of ``block_rows`` rows. If no pixel is
    ever clear, InputDataError is raised and nothing is written."""
    acc = CompositeStats(n_scenes, method)
    strips = mosaic_strips(tile_paths, grid, size_px, block_rows, progress)
    return _write_composite(path, grid, strips, acc, compress=compress, tags=tags)


def _ingest_tags(listed: dict) -> dict[str, object]:
    """The ingest's masked share, kept as a tag of the composite (results/{year}/ingest/scenes.json → summary)."""
    return {"ingest_masked_pct": listed.get("summary", {}).get("masked_pct")}


@small_pages()  # numpy's huge-page advice off (greensink.memory; benchmarks/README.md): same bytes, less system time
def run_composite(scenes_json: str | Path, grid_json: str | Path, out: str | Path, *, method: str, block_rows: int,
                  compress: str, engine: str = "windows", threads: int = 1, tile_id: str | None = None,
                  size_px: int | None = None, dask_config: Mapping | None = None) -> dict:
    """Rule composite (``tile_id`` None) and composite_tile: the year's composite of the scenes listed in
    ``scenes_json`` (rule ingest's record) on the grid of ``grid_json``, or of the tile ``tile_id`` of
    ``grid.tiles(size_px)``, written to ``out`` (:func:`composite_to_file`); returns its statistics.
    ``dask_config``: the ``imagery.dask`` section (where the dask engine computes; untiled only)."""
    grid = Grid.read(grid_json)
    tile = grid.tile(tile_id, size_px) if tile_id else None
    listed = gio.read_json(scenes_json)
    scenes = [Scene.from_dict(s) for s in listed["scenes"]]
    if engine == "dask" and tile:
        log.info("imagery.engine dask: tile %s is composited in row strips (the dask engine serves the untiled composite)",
                 tile.id)
    elif engine == "dask":
        log.info("imagery.engine dask: %d x %d chunks, job threads %d, imagery.dask.scheduler %s", block_rows,
                 block_rows, threads, (dask_config or {}).get("scheduler", "threads"))
    stats = composite_to_file(scenes, grid, out, method, block_rows,
                              progress=logs.progress(log, f"composite {tile_id}" if tile else "composite"), compress=compress,
                              tags=_ingest_tags(listed), tile=tile, engine=engine, threads=threads,
                              dask_config=dask_config)
    if tile:
        log.info("tile %s: rows %d-%d, columns %d-%d of the %d x %d grid", tile.id, tile.row_off,
                 tile.row_off + tile.height - 1, tile.col_off, tile.col_off + tile.width - 1, grid.height, grid.width)
    log.info("composite %s of %d scenes: %.2f %% of pixels never clear, %.2f clear observations per pixel",
             stats["method"], stats["n_scenes"], stats["never_clear_pct"], stats["mean_clear_obs"])
    if not tile and (text := never_clear_warning(stats, out)):
        log.warning(text)
    return stats


NEVER_CLEAR_WARN_PCT = 5.0  # a composite with more of its pixels never seen clear is warned about, with the share


def never_clear_warning(stats: dict, out: str | Path) -> str | None:
    """A warning when more than NEVER_CLEAR_WARN_PCT % of a composite's pixels were never seen clear (clouds,
    shadow, no scene): green space there has no imagery-based value, and stock and change compare less land."""
    pct = float(stats.get("never_clear_pct") or 0.0)
    if pct <= NEVER_CLEAR_WARN_PCT:
        return None
    return (f"{out}: {pct:.1f} % of the analysis grid's pixels were never seen clear in the {stats.get('n_scenes')} "
            "scene(s) of the season (clouds, shadow or no scene); their green space has no imagery-based carbon "
            "(zones report observed_pct and carbon_observed_pct; below carbon.min_observed_pct a zone's carbon is NaN). "
            "Add clear scenes of this year (widen season, raise the cloud limit of the search) or accept the gap.")


def run_mosaic(tiles: Sequence[str | Path], scenes_json: str | Path, grid_json: str | Path, out: str | Path, *,
               size_px: int, method: str, block_rows: int, compress: str) -> dict:
    """Rule mosaic: the year's composite ``out`` of the grid of ``grid_json`` from its tile composites ``tiles``
    (every tile of ``grid.tiles(size_px)``, row-major; :func:`mosaic_to_file`); returns its statistics."""
    grid = Grid.read(grid_json)
    listed = gio.read_json(scenes_json)
    stats = mosaic_to_file(list(tiles), grid, out, size_px, n_scenes=len(listed["scenes"]), method=method,
                           block_rows=block_rows, progress=logs.progress(log, "mosaic"), compress=compress,
                           tags=_ingest_tags(listed))
    log.info("mosaic of %d tiles of %d px: composite %s of %d scenes: %.2f %% of pixels never clear, "
             "%.2f clear observations per pixel", len(tiles), size_px, stats["method"], stats["n_scenes"],
             stats["never_clear_pct"], stats["mean_clear_obs"])
    if text := never_clear_warning(stats, out):
        log.warning(text)
    return stats
