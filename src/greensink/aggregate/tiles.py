"""Aggregate in a tiled run: a tile's zone sums (:func:`run_aggregate_tile`, rule aggregate_tile) and the tables
finished from their sum (:func:`run_aggregate_gather`, rule aggregate)."""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
from rasterio.windows import Window

from greensink import io as gio
from greensink import logs
from greensink.aggregate.draws import ZoneDraws
from greensink.aggregate.run import YearInputs, finish_tables, log_fill, read_layers, year_inputs
from greensink.aggregate.sums import zone_partial_sums
from greensink.aggregate.table import DEFAULT_MIN_OBSERVED_PCT
from greensink.carbon import read_fill, typed_pixels
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.tiling import check_grid_shape, tile_matrices
from greensink.uncertainty import settings as uncertainty_settings
from greensink.uncertainty import variance_shares
from greensink.zone_sums import DRAW_PREFIX, ZoneSums, add_sums, read_tile_level, write_tile_sums

log = logging.getLogger(__name__)

MIN_TILE_CHUNK_PIXELS = 1024  # the smallest chunk of a tile's pixels drawn at once (rule aggregate_tile)
ZONE_BLOCK = 100_000  # zones whose per-source draw sums the gather holds at once (rule aggregate of a tiled run)



def tile_sums_identity(yi: YearInputs, grid: Grid, *, year: int, seed: int, uncertainty: Mapping | None) -> dict:
    """What a tile's sums must share with the gather's run (the header entries :func:`read_tile_sums` checks):
    the grid's shape, the year and the identity of the draws (:meth:`ZoneDraws.identity`)."""
    ident = ZoneDraws.identity(seed=seed, year=year, n_draws=yi.n_draws, uncertainty=uncertainty,
                               models_sha256=yi.models_digest)
    return {"grid_shape": [grid.height, grid.width], **ident}



def run_aggregate_tile(coverage_tiles: Sequence[str | Path], grid: str | Path, rasters: Mapping[str, str | Path],
                       fractions: str | Path, models_json: str | Path, fill_json: str | Path,
                       predictors: Mapping[str, str | Path], ndvi_se: str | Path | None, out: str | Path, *,
                       year: int, tile_id: str, size_px: int, levels: Sequence[str], types: Sequence[str], seed: int,
                       uncertainty: Mapping | None = None, chunk_pixels: int = 16_384) -> dict[str, ZoneSums]:
    """Rule aggregate_tile: one tile's zone sums of every level (:func:`zone_partial_sums`), written to ``out``
    (results/{year}/tiles/aggregate_{tile}.npz, :func:`greensink.zone_sums.write_tile_sums`) and returned.

    It reads only the tile's window of the year's whole-grid rasters (``rasters``, ``fractions``, ``predictors``,
    ``ndvi_se``: :func:`run_aggregate`'s), the tile's coverage matrix of each level (``coverage_tiles``, one per
    level of ``levels``: :func:`greensink.coverage.tile_coverage_matrix`, local pixel index r × tile width + c)
    and the year's fill ``fill_json`` (results/{year}/fill.json, refused when made from other models than
    ``models_json``). The draws are keyed by the whole grid's pixels, so they are the untiled rule's there.
    Memory: the tile's rasters and the draw sums of the zones touching it."""
    g = Grid.read(grid)
    tile = g.tile(tile_id, size_px)
    window = Window(tile.col_off, tile.row_off, tile.width, tile.height)
    models = gio.read_json(models_json)
    fill = read_fill(fill_json, models=models, year=year)  # refused when made from other models or another year
    check_grid_shape(g, [rasters["ndvi"], fractions], tile_id)
    ndvi_error = bool(uncertainty_settings(uncertainty)["ndvi"]["enabled"])
    layers, frac, used, se = read_layers(rasters, fractions, predictors, ndvi_se, models, types, ndvi_error, window)
    yi = year_inputs(models, g, types, year=year, seed=seed, uncertainty=uncertainty, fill=fill)
    matrices = tile_matrices(coverage_tiles, levels, tile)
    # the noise streams are made a whole grid row at a time: chunks of the tile's pixels spanning as many rows as
    # the untiled rule's chunks keep those rows' memory (draws × rows × grid width) at the untiled rule's
    chunk = max(MIN_TILE_CHUNK_PIXELS, chunk_pixels * tile.width // g.width)
    parts = zone_partial_sums(matrices, layers, frac, yi.models, types, used, yi.fill, g.pixel_area_ha, noise=yi.noise,
                              ndvi_se=se, row0=tile.row_off, col0=tile.col_off, grid_width=g.width,
                              chunk_pixels=chunk, progress=logs.progress(log, f"zone sums of tile {tile_id}"))
    sums = dict(zip(levels, parts, strict=True))
    meta = {"tile": tile_id, "window": [tile.row_off, tile.col_off, tile.height, tile.width],
            **tile_sums_identity(yi, g, year=year, seed=seed, uncertainty=uncertainty)}
    write_tile_sums(out, sums, meta)
    log.info("aggregate tile %s (%d × %d px, %d typed): %s zones touched", tile_id, tile.height, tile.width,
             int(typed_pixels(frac).size), ", ".join(f"{lv} {s.rows.size}" for lv, s in sums.items()))
    return sums



def run_aggregate_gather(zones: Sequence[str | Path], tile_sums: Sequence[str | Path], grid: str | Path,
                         greenspace: str | Path, models_json: str | Path, fill_json: str | Path,
                         tables_out: Sequence[str | Path], *, year: int, size_px: int, levels: Sequence[str],
                         types: Sequence[str], greenspace_config: Mapping | None, seed: int,
                         interval_pct: float = 90.0, min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT,
                         uncertainty: Mapping | None = None, park_service: Sequence[Mapping] | None = None,
                         population: str | Path | None = None, population_config: Mapping | None = None,
                         residential: str | Path | None = None,
                         draws_out: Sequence[str | Path] | None = None,
                         zone_block: int = ZONE_BLOCK) -> dict[str, gpd.GeoDataFrame]:
    """Rule aggregate of a tiled run: the outputs of :func:`run_aggregate` from the tiles' zone sums ``tile_sums``
    (every tile of ``grid.tiles(size_px)``, row-major; :func:`run_aggregate_tile`) added up zone by zone
    (:func:`greensink.zone_sums.gather`), one tile file at a time: no raster and no coverage matrix is read, and
    memory grows with zones × draws, not with pixels. The levels are gathered one after another, each reading
    only its own members of the tile files, and the per-source draw sums (``part_<source>_t``, only needed for
    the variance shares) ``zone_block`` zones at a time: the peak holds one (zones × draws) array, the level's
    draws, beside (zone_block × draws) per source. A tile file of another tile, year, grid, level list, zone
    count or draw identity (seed, draws, uncertainty settings, models) is refused, naming the file and the field.
    The other arguments are :func:`run_aggregate`'s."""
    g = Grid.read(grid)
    tiles = g.tiles(size_px)
    if len(tile_sums) != len(tiles):
        raise InputDataError(f"The {g.height} × {g.width} grid in tiles of {size_px} px has {len(tiles)} tiles; got "
                             f"{len(tile_sums)} aggregate tile sums. Run every aggregate_tile job of the year.")
    models = gio.read_json(models_json)
    fill = read_fill(fill_json, models=models, year=year)  # refused when made from other models or another year
    yi = year_inputs(models, g, types, year=year, seed=seed, uncertainty=uncertainty, fill=fill)
    log_fill(yi.fill, g.pixel_area_ha)
    zone_layers = [gio.read_vector(path) for path in zones]
    n_zones = [len(z) for z in zone_layers]
    ident = tile_sums_identity(yi, g, year=year, seed=seed, uncertainty=uncertainty)
    for t, path in zip(tiles, tile_sums, strict=True):  # every file's header first: a wrong file fails fast
        read_tile_level(path, levels, n_zones, levels[0], expect={"tile": t.id, **ident}, parts=True, zones=(0, 0))
    loaders = [level_loader(tiles, tile_sums, levels, n_zones, lv, ident) for lv in levels]
    shares = [shares_loader(tiles, tile_sums, levels, n_zones, lv, ident, zone_block) for lv in levels]
    return finish_tables(zone_layers, loaders, g, yi, greenspace, tables_out, year=year, levels=levels, types=types,
                         greenspace_config=greenspace_config, seed=seed, interval_pct=interval_pct,
                         min_observed_pct=min_observed_pct, uncertainty=uncertainty, park_service=park_service,
                         population=population, population_config=population_config, residential=residential,
                         draws_out=draws_out, var_shares=shares)


def level_loader(tiles, tile_sums, levels, n_zones, level, ident, *, label: str = "aggregate gather",
                 **read) -> Callable[[], dict[str, np.ndarray]]:
    """A function returning one level's sums but the per-source parts, added up over the tile files (read one at
    a time, only that level's members: :func:`greensink.zone_sums.read_tile_level`, with ``read``'s keywords);
    its progress is logged as ``label`` and the level."""
    def load() -> dict[str, np.ndarray]:
        total: dict[str, np.ndarray] = {}
        progress = logs.progress(log, f"{label} {level}")
        for i, (t, path) in enumerate(zip(tiles, tile_sums, strict=True)):
            add_sums(total, read_tile_level(path, levels, n_zones, level, expect={"tile": t.id, **ident}, **read))
            progress(i + 1, len(tiles))
        return total
    return load


def read_tile_header(path: str | Path, expect: Mapping, *, what: str, fix: str,
                     members: Sequence[str] = ()) -> tuple[dict, dict[str, np.ndarray]]:
    """A tile file's header (:func:`greensink.io.write_arrays`' ``__meta__``), each entry of ``expect`` checked
    (InputDataError naming the file, the entry, what it must be and what it is, then ``fix``), and its members
    ``members`` (only those read; InputDataError where one is missing). ``what`` names the kind of file."""
    with gio.reading(path, what, gio.CORRUPT_FIX + " If the workflow wrote it, delete it and run again."):
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise InputDataError(f"{path}: not a {what} ({gio.error_text(exc)}). {fix}") from exc
        with data:
            if gio.ARRAYS_META not in data.files:
                raise InputDataError(f"{path}: not a {what}: it has no '{gio.ARRAYS_META}' header. {fix}")
            meta = json.loads(data[gio.ARRAYS_META].tobytes().decode("utf-8"))
            for name, want in expect.items():
                if meta.get(name) != want:
                    raise InputDataError(f"{path}: {name} must be {want!r} for this run. Got {meta.get(name)!r}. {fix}")
            missing = [m for m in members if m not in data.files]
            if missing:
                raise InputDataError(f"{path}: the {what} lacks {missing}. {fix}")
            return meta, {m: data[m] for m in members}


def zone_blocks(tiles, tile_sums, levels, n_zones, level, ident, zone_block,
                **read) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """One level's sums ``zone_block`` zones at a time: yields (z0, z1, sums) for the zones z0 ≤ row < z1, each sum
    added up over the tile files (one file at a time, only the block's rows of the level's members read:
    :func:`greensink.zone_sums.read_tile_level` with ``read``'s keywords, e.g. ``parts``, ``what``, ``fix``) with one
    entry per zone of the block (0 for a zone no tile touches). Memory: one block's sums, not the level's."""
    n = n_zones[list(levels).index(level)]
    for z0 in range(0, max(n, 1), zone_block):
        z1 = min(z0 + zone_block, n)
        total: dict[str, np.ndarray] = {}
        for t, path in zip(tiles, tile_sums, strict=True):
            part = read_tile_level(path, levels, n_zones, level, expect={"tile": t.id, **ident}, zones=(z0, z1), **read)
            add_sums(total, ZoneSums(n_zones=z1 - z0, rows=part.rows - z0, values=part.values))
        yield z0, z1, total


def shares_loader(tiles, tile_sums, levels, n_zones, level, ident, zone_block,
                  **read) -> Callable[[], dict[str, np.ndarray]]:
    """A function returning one level's per-source variance shares (:func:`greensink.uncertainty.variance_shares`)
    computed ``zone_block`` zones at a time (:func:`zone_blocks` of the per-source parts): each block's parts are
    dropped once its shares are taken. The variance is per zone, so the shares are those of the whole level's
    parts, bit for bit."""
    def load() -> dict[str, np.ndarray]:
        n = n_zones[list(levels).index(level)]
        out: dict[str, np.ndarray] = {}
        for z0, z1, total in zone_blocks(tiles, tile_sums, levels, n_zones, level, ident, zone_block, parts=True,
                                         **read):
            for source, share in variance_shares({k[len(DRAW_PREFIX):-2]: v for k, v in total.items()}).items():
                out.setdefault(source, np.full(n, np.nan))[z0:z1] = share
            del total
        return out
    return load
