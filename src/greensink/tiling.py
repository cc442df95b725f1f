"""Tiles of the per-pixel stages: a tile job's window of a whole-grid raster, and the mosaic of tile files.

With ``tiles.size_px`` set, the per-pixel stages (composite, vegetation, NDVI standard error, carbon) run
as one job per ``{year}`` × ``{tile}`` (:meth:`greensink.grid.Grid.tiles`). A tile job reads its window of
the year's whole-grid inputs (:func:`tile_strips`) and writes ``results/{year}/tiles/<product>_{tile}.tif``
on the tile's sub-grid; a mosaic job (:func:`mosaic_files`) writes the whole-grid file the untiled stage
writes, with the tiles' band names, tags, codec and layout, strip by strip (memory: one strip of
``block_rows`` rows of the grid per product). Every per-pixel value depends on its pixel alone (and on
whole-scene figures computed before the tiles, such as the FVC endmembers), so the mosaic equals the
untiled product value for value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pyproj import CRS
from rasterio.windows import Window

from greensink import io as gio
from greensink.errors import InputDataError
from greensink.grid import Grid, Tile

# tags GDAL writes itself (the pixel convention is a GeoTIFF key, not metadata): not copied from a tile
GDAL_OWN_TAGS = ("AREA_OR_POINT",)


def tile_strips(path: str | Path, tile: Tile | None, bands: int | Sequence[int] | None = None,
                block_rows: int = 512) -> Iterator[tuple[slice, np.ndarray]]:
    """(row slice inside the tile, block) of successive strips of ``block_rows`` rows of the window
    ``tile`` of the whole-grid raster ``path`` (the whole raster when ``tile`` is None, as
    :func:`greensink.io.read_strips`), each read as :func:`greensink.io.read_strips` reads (masked,
    float32, nodata as NaN), so a window holds exactly the values of those pixels in the whole read."""
    if tile is None:
        yield from gio.read_strips(path, bands=bands, block_rows=block_rows)
        return
    with gio.reading(path, "raster"), gio.open_raster(path) as src:
        if tile.row_off + tile.height > src.height or tile.col_off + tile.width > src.width:
            raise InputDataError(f"{path}: {src.height} × {src.width} pixels, too small for tile {tile.id} (rows "
                                 f"{tile.row_off}-{tile.row_off + tile.height - 1}, columns {tile.col_off}-"
                                 f"{tile.col_off + tile.width - 1}). It was made for another grid: rerun the stage "
                                 "that wrote it.")
        idx = (1 if src.count == 1 else list(range(1, src.count + 1))) if bands is None else bands
        for r in range(0, tile.height, block_rows):
            h = min(block_rows, tile.height - r)
            arr = src.read(idx, window=Window(tile.col_off, tile.row_off + r, tile.width, h), masked=True)
            yield slice(r, r + h), arr.astype(np.float32).filled(np.nan)


def _check_tiles(tile_paths: Sequence[str | Path], grid: Grid, tiles: Sequence[Tile], size_px: int | None) -> None:
    """Every tile file on its tile's sub-grid with the first tile's bands, or InputDataError naming it."""
    if len(tile_paths) != len(tiles):
        raise InputDataError(f"The mosaic of the {grid.height} × {grid.width} grid in tiles of {size_px} px needs "
                             f"{len(tiles)} tile files; got {len(tile_paths)}.")
    names = gio.band_names(tile_paths[0])
    for t, p in zip(tiles, tile_paths, strict=True):
        got, want = gio.read_grid(p), grid.subgrid(t)
        same_grid = got.shape == want.shape and got.transform.almost_equals(want.transform, 1e-6) and (
            got.crs == want.crs or CRS.from_user_input(got.crs) == CRS.from_user_input(want.crs))
        if not same_grid or gio.band_names(p) != names:
            raise InputDataError(
                f"{p}: is not tile {t.id} of this run's grid (found a {got.height} × {got.width} raster at "
                f"{tuple(got.transform)[:6]} with bands {gio.band_names(p)}; expected {t.height} × {t.width} at "
                f"{tuple(want.transform)[:6]} with bands {names}). It was made for another grid or tile size: "
                "delete the tiles folder and run again.")


def _layout(path: str | Path) -> dict:
    """The band names, dtype, nodata and tags of a tile file, for the whole-grid file."""
    with gio.open_raster(path) as src:
        tags = {k: v for k, v in src.tags().items() if k not in GDAL_OWN_TAGS}
        band_tags = [src.tags(i) for i in range(1, src.count + 1)]
        return {"count": src.count, "dtype": src.dtypes[0], "nodata": src.nodata, "tags": tags,
                "band_tags": band_tags if any(band_tags) else None,
                "band_names": [d or f"band_{i}" for i, d in enumerate(src.descriptions, start=1)]}


def mosaic_files(
    tile_paths: Mapping[str, Sequence[str | Path]],
    out: Mapping[str, str | Path],
    grid: Grid,
    size_px: int | None,
    *,
    block_rows: int = 512,
    compress: str = "zstd",
    on_strip: Callable[[slice, dict[str, np.ndarray]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Mosaic, for each product ``name`` of ``out``, its tile files ``tile_paths[name]`` (those of
    ``grid.tiles(size_px)``, in that order) into the whole-grid raster ``out[name]``, with the tiles'
    band names, dtype, nodata and dataset tags, through :func:`greensink.io.raster_writer` (codec
    ``compress``: the file the untiled stage writes). Strips of ``block_rows`` rows are filled from
    the tiles they cross; ``on_strip(rows, {name: (bands, rows, cols) block})`` sees every strip of every
    product (statistics of the whole grid, counted in the untiled stage's strip order). Memory: one strip
    per product; only the tiles the strip crosses are open. A tile on the wrong grid raises InputDataError."""
    tiles = grid.tiles(size_px)
    for paths in tile_paths.values():
        _check_tiles(list(paths), grid, tiles, size_px)
    windows = grid.windows(block_rows)
    with contextlib.ExitStack() as stack:
        writers = {}
        for name, path in out.items():
            lay = _layout(tile_paths[name][0])
            writers[name] = (lay["count"], stack.enter_context(gio.raster_writer(
                path, grid, lay["count"], dtype=lay["dtype"], band_names=lay["band_names"], compress=compress,
                nodata=lay["nodata"], tags=lay["tags"], band_tags=lay["band_tags"])))
        open_: dict[tuple[str, int], object] = {}
        for i, (rows, _) in enumerate(windows):
            blocks = {}
            for name, (count, writer) in writers.items():
                block = np.full((count, rows.stop - rows.start, grid.width), np.nan, dtype=np.float32)
                for k, t in enumerate(tiles):
                    r0, r1 = max(rows.start, t.row_off), min(rows.stop, t.row_off + t.height)
                    if r0 >= r1:
                        continue
                    if (name, k) not in open_:
                        open_[name, k] = gio.open_raster(tile_paths[name][k])
                    src = open_[name, k]
                    part = src.read(window=Window(0, r0 - t.row_off, t.width, r1 - r0), masked=True)
                    block[:, r0 - rows.start:r1 - rows.start, t.cols] = part.astype(np.float32).filled(np.nan)
                    if r1 == t.row_off + t.height:  # the tile is done: close it
                        open_.pop((name, k)).close()
                writer.write(block, rows.start)
                blocks[name] = block
            if on_strip is not None:
                on_strip(rows, blocks)
            if progress:
                progress(i + 1, len(windows))
        for src in open_.values():
            src.close()


class CoveragePiece(NamedTuple):
    """A part of the grid with each level's coverage of its pixels (:func:`coverage_pieces`): a tile of a tiled
    run, or (``tile`` None) the whole grid. ``matrices`` are in level order, one column per pixel of the piece
    (local index r × width + c)."""

    tile: Tile | None
    matrices: list

    @property
    def window(self) -> Window | None:
        """The piece's window of a whole-grid raster (None: the whole raster)."""
        t = self.tile
        return None if t is None else Window(t.col_off, t.row_off, t.width, t.height)

    def read(self, path: str | Path, bands: int | Sequence[int] | None = None) -> np.ndarray:
        """The piece's pixels of the whole-grid raster ``path``, read as :func:`greensink.io.read_raster` reads."""
        return gio.read_raster(path, bands=bands, window=self.window)

    def grid(self, grid: Grid) -> Grid:
        """The piece's own grid: ``grid`` itself, or the tile's sub-grid."""
        return grid if self.tile is None else grid.subgrid(self.tile)


def check_grid_shape(grid: Grid, paths: Sequence[str | Path], tile_id: str) -> None:
    """Each raster of ``paths`` on the run's grid (its shape), or InputDataError naming it: a tile job reads windows
    of them, which must be the tile's pixels."""
    for path in paths:
        got = gio.read_grid(path)
        if got.shape != grid.shape:
            raise InputDataError(f"{path}: {got.height} × {got.width} pixels, but the run's grid (results/zones/grid.json) "
                                 f"is {grid.height} × {grid.width}, so tile {tile_id} is not its window. Rerun the stage "
                                 "that wrote it.")


def tile_matrices(coverage_tiles: Sequence[str | Path], levels: Sequence[str], tile: Tile) -> list:
    """The tile's coverage matrix of each level (``coverage_tiles``, one per level of ``levels``: rule
    zone_coverage_tile's results/zones/tiles/{level}_coverage_{tile}.npz, local pixel index r × tile width + c), or
    InputDataError naming the file when one is not the tile's width."""
    matrices = []
    for level, path in zip(levels, coverage_tiles, strict=True):
        m = gio.read_sparse(path)
        if m.shape[1] != tile.height * tile.width:
            raise InputDataError(f"{path}: the {level} coverage of tile {tile.id} must have one column per pixel of "
                                 f"the {tile.height} × {tile.width} tile ({tile.height * tile.width}). Got "
                                 f"{m.shape[1]}. It was made for another grid or tile size: delete results/zones/tiles "
                                 "and run again.")
        matrices.append(m)
    return matrices


def coverage_pieces(grid: Grid, levels: Sequence[str], coverage: Sequence[str | Path],
                    coverage_tiles: Sequence[str | Path] | None = None,
                    size_px: int | None = None) -> Iterator[CoveragePiece]:
    """The pieces a zone-summing rule streams over: without ``coverage_tiles``, one piece, the whole grid with
    the whole-grid matrices ``coverage`` (one per level); with them (results/zones/tiles/{level}_coverage_{tile}.npz,
    level-major: every tile of ``grid.tiles(size_px)`` of the first level, then of the second...), one piece per
    tile, row-major, each with its tiles' matrices, read when the piece is reached. Memory: one piece's matrices.
    A tile matrix of the wrong width raises InputDataError naming the file."""
    if not coverage_tiles:
        yield CoveragePiece(None, [gio.read_sparse(p) for p in coverage])
        return
    tiles = grid.tiles(size_px)
    paths = list(coverage_tiles)
    if len(paths) != len(levels) * len(tiles):
        raise InputDataError(f"The {len(levels)} levels × {len(tiles)} tiles of {size_px} px of the {grid.height} × "
                             f"{grid.width} grid need {len(levels) * len(tiles)} tile coverage files; got {len(paths)}.")
    for k, tile in enumerate(tiles):
        yield CoveragePiece(tile, tile_matrices([paths[i * len(tiles) + k] for i in range(len(levels))], levels, tile))


class PieceWriter:
    """Writes the pieces of :func:`coverage_pieces` (in their order) into a :func:`greensink.io.raster_writer`:
    the whole grid at once, or the tiles of one tile row gathered into a strip (memory: one strip of the tile
    height × the grid width), written when the row's last tile arrives."""

    def __init__(self, writer: gio.StripWriter, grid: Grid, count: int, dtype: str | np.dtype, fill: float | int):
        self._writer, self._grid, self._count, self._dtype, self._fill = writer, grid, count, np.dtype(dtype), fill
        self._strip: np.ndarray | None = None

    def put(self, tile: Tile | None, block: np.ndarray) -> None:
        """``block`` ((bands,) rows, cols) of the piece ``tile`` (None: the whole grid)."""
        b = np.asarray(block).reshape(self._count, *np.shape(block)[-2:])
        if tile is None:
            self._writer.write(b, 0)
            return
        if self._strip is None or tile.col_off == 0:
            self._strip = np.full((self._count, tile.height, self._grid.width), self._fill, dtype=self._dtype)
        self._strip[:, :, tile.cols] = b
        if tile.col_off + tile.width == self._grid.width:
            self._writer.write(self._strip, tile.row_off)
            self._strip = None
