"""Rule trend in a tiled run (``tiles.size_px``): one ``trend_tile`` job per ``{tile}`` (:func:`run_trend_tile`) and
the rule ``trend`` that gathers them (:func:`run_trend_gather`).

A tile job reads only its windows of every year's rasters, its tile's coverage matrices
(results/zones/tiles/{level}_coverage_{tile}.npz) and every year's fill of unobserved typed land
(results/{year}/fill.json), and evaluates its pixels with the whole grid's pixel indices
(:func:`greensink.trend.trend_parts`). It writes

* ``results/change/trend/tiles/trend_{tile}.tif``: the window of trend.tif;
* ``results/change/trend/tiles/parts_{tile}.npz`` (:func:`greensink.io.write_arrays`): per level ``L<i>`` the rows
  of the zones the tile touches (``L<i>.rows``) and their sums (:class:`greensink.trend.TrendParts`): each year's
  filled stock and its draws, the same over the typed land observed in every year, the typed and observed areas;
  the header holds the tile's pixel counts by class and what the draws depend on (years, seed, draws, the years'
  models, the uncertainty settings), which the gather checks.

A zone's Theil–Sen slope is not linear in its pixels, but its yearly stock sums per draw are: rule trend adds the
tiles' sums zone by zone (one level at a time and ``zone_block`` zones at a time, only the block's rows of that
level's members of each file read: :func:`level_blocks`), fits the slopes of each block's yearly sums as the untiled
rule does (:func:`greensink.trend.level_trend_table`: every column is per zone, so the blocks' tables put together are
the level's, bit for bit), and mosaics trend.tif
(:func:`greensink.tiling.mosaic_files`). Every per-pixel value depends on the pixel alone, so the mosaic is the
untiled file byte for byte; the zone sums are the same terms added in another order (equal within rounding,
tests/test_trend_tiles.py). Memory of a tile job: the tile's windows of every year, one chunk's draws and the
draw sums of the zones it touches; of the gather: one block's zones × draws × years and the level's table (no
raster, no coverage, never a level's zones × draws).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from greensink import io as gio
from greensink import logs
from greensink.aggregate import content_sha256
from greensink.aggregate.tiles import read_tile_header, zone_blocks
from greensink.carbon.fill import models_digest
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.series import residual_summary
from greensink.tiling import check_grid_shape, tile_matrices
from greensink.trend import (
    level_trend_table,
    log_pixel_counts,
    read_fills,
    series_pairing,
    trend_lists,
    trend_parts,
    trend_record,
    write_level_trend,
    write_trend_raster,
)

log = logging.getLogger(__name__)

TREND_PARTS_FORMAT = 1  # the layout of results/change/trend/tiles/parts_{tile}.npz; the gather refuses another
PARTS_FIX = "It was made for other inputs or settings: delete results/change/trend/tiles and run again."
PARTS_WHAT = "trend tile parts (.npz)"
# zones whose draws the gather holds at once: with Y years and B draws a block's sums are 2 Y (zones × B) arrays and
# the Theil–Sen fits of zone_trend_table a few (zones × B × Y) more (benchmarks/README.md, trend_gather_memory)
TREND_ZONE_BLOCK = 20_000


def parts_identity(years: Sequence[int], models: Sequence[Mapping], grid: Grid, *, levels: Sequence[str],
                   n_zones: Sequence[int], seed: int, uncertainty: Mapping | None, size_px: int) -> dict:
    """What a tile's parts must share with the gather's run (the header entries :func:`read_header` and
    :func:`level_blocks` check)."""
    return {"format": TREND_PARTS_FORMAT, "years": [int(y) for y in years], "levels": list(levels),
            "n_zones": [int(n) for n in n_zones], "grid_shape": [grid.height, grid.width], "size_px": int(size_px),
            "seed": int(seed), "models_sha256": [models_digest(m) for m in models],
            "uncertainty_sha256": content_sha256(dict(uncertainty or {}))}


def run_trend_tile(years: Sequence[int], coverage: Sequence[str | Path], grid_json: str | Path,
                   fractions: Sequence[str | Path], predictors: Sequence[str | Path], ndvi_se: Sequence[str | Path],
                   models_json: Sequence[str | Path], fills: Sequence[str | Path], tile_out: str | Path,
                   parts_out: str | Path, *, tile_id: str, size_px: int, predictor_names: Sequence[str], levels: Sequence[str], types: Sequence[str], seed: int,
                   interval_pct: float = 90.0, uncertainty: Mapping | None = None, compress: str = "zstd") -> dict:
    """Rule trend_tile: the tile ``tile_id`` of ``grid.tiles(size_px)`` of the trend over ``years``. The inputs are
    rule trend's whole-grid rasters (:func:`greensink.trend.run_trend`; only the tile's window is read), every year's
    ``fills`` (required) and ``coverage``, the tile's coverage matrix of each level (every zone of the level a row: the
    gather checks their number against the zone layers). Writes
    the tile's raster ``tile_out`` (on the tile's sub-grid) and its parts ``parts_out`` (module doc); returns the
    parts file's header."""
    years = [int(y) for y in years]
    grid = Grid.read(grid_json)
    tile = grid.tile(tile_id, size_px)
    year_predictors, _ = trend_lists(predictors, None, years, predictor_names, levels)
    models = [gio.read_json(path) for path in models_json]
    year_fills = read_fills(fills, models, years)
    check_grid_shape(grid, (*fractions, *ndvi_se, *predictors), tile_id)
    matrices = [m.tocsr() for m in tile_matrices(coverage, levels, tile)]
    n_zones = [m.shape[0] for m in matrices]
    # only the zones the tile touches: their sums are the tile's whole part, the others' are 0
    rows = [np.flatnonzero(np.diff(m.indptr) > 0).astype(np.int64) for m in matrices]
    compact = [m[r] for m, r in zip(matrices, rows, strict=True)]
    pairing = series_pairing(models, uncertainty, years)
    parts = trend_parts(years, grid, tile, compact, fractions, year_predictors, ndvi_se, models, year_fills, pairing,
                        types=types, seed=seed, interval_pct=interval_pct, uncertainty=uncertainty)
    write_trend_raster(tile_out, parts.bands, grid.subgrid(tile), years, compress)
    arrays: dict[str, np.ndarray] = {}
    for i, (r, sums) in enumerate(zip(rows, parts.sums, strict=True)):
        arrays[f"L{i}.rows"] = r
        arrays |= {f"L{i}.{name}": np.asarray(v, dtype=np.float64) for name, v in sums.items()}
    meta = {**parts_identity(years, models, grid, levels=levels, n_zones=n_zones, seed=seed, uncertainty=uncertainty,
                             size_px=size_px),
            "tile": tile_id, "n_draws": parts.n_draws, "pixels": parts.counts}
    gio.write_arrays(parts_out, arrays, meta)
    log.info("trend tile %s %d-%d: %d × %d px, %s zones touched; %s", tile_id, years[0], years[-1], tile.height,
             tile.width, "/".join(str(r.size) for r in rows), ", ".join(f"{n} {k}" for k, n in parts.counts.items()))
    return meta


def read_header(path: str | Path, expect: Mapping) -> dict:
    """A tile's parts file's header, checked against ``expect`` (:func:`greensink.aggregate.tiles.read_tile_header`:
    InputDataError naming the file and the entry); no zone sum is read."""
    return read_tile_header(path, expect, what=PARTS_WHAT, fix=PARTS_FIX)[0]


def level_blocks(paths: Sequence[str | Path], tiles: Sequence, level_index: int, expect: Mapping,
                 zone_block: int = TREND_ZONE_BLOCK) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """One level's sums added over the tiles' parts files ``zone_block`` zones at a time: (z0, z1, sums) with one entry
    per zone z0 ≤ row < z1 (0 for a zone no tile touches, as the whole grid's sums give it), only the block's rows of
    each file read (:func:`greensink.aggregate.tiles.zone_blocks`; ``expect``: :func:`parts_identity`, checked in
    every file with its tile's id)."""
    levels, n_zones = expect["levels"], expect["n_zones"]
    yield from zone_blocks(tiles, paths, levels, n_zones, levels[level_index], expect, zone_block, what=PARTS_WHAT,
                           fix=PARTS_FIX)


def run_trend_gather(years: Sequence[int], zones: Sequence[str | Path], grid_json: str | Path,
                     trend_tiles: Sequence[str | Path], parts: Sequence[str | Path], models_json: Sequence[str | Path],
                     tables: Sequence[str | Path], trend_out: str | Path, zones_out: Sequence[str | Path],
                     record_out: str | Path, *, size_px: int, levels: Sequence[str], seed: int,
                     interval_pct: float = 90.0, uncertainty: Mapping | None = None, compress: str = "zstd",
                     min_observed_pct: float = 50.0, zone_block: int = TREND_ZONE_BLOCK) -> dict:
    """Rule trend in a tiled run: trend.tif mosaicked from the tiles' files (``trend_tiles``, every tile of
    ``grid.tiles(size_px)`` in order), the zone sums of the tiles' ``parts`` added level by level and ``zone_block``
    zones at a time (:func:`level_blocks`), and the zone
    tables (with the years' zone ``tables``, year-major as :func:`greensink.trend.run_trend` takes them) and
    trend.json written as the untiled rule writes them; trend.json returned. No raster is read but the tiles'."""
    from greensink.tiling import mosaic_files

    years = [int(y) for y in years]
    grid = Grid.read(grid_json)
    tiles = grid.tiles(size_px)
    if len(parts) != len(tiles) or len(trend_tiles) != len(tiles):
        raise InputDataError(f"The trend of the {grid.height} × {grid.width} grid in tiles of {size_px} px needs "
                             f"{len(tiles)} tile rasters and parts files; got {len(trend_tiles)} and {len(parts)}.")
    _, tables_by_year = trend_lists([], tables, years, [], levels)
    models = [gio.read_json(path) for path in models_json]
    mosaic_files({"trend": list(trend_tiles)}, {"trend": trend_out}, grid, size_px, compress=compress,
                 progress=logs.progress(log, "trend mosaic"))
    n_zones = [len(gio.read_vector(path)) for path in zones]
    expect = parts_identity(years, models, grid, levels=levels, n_zones=n_zones, seed=seed, uncertainty=uncertainty,
                            size_px=size_px)
    metas = [read_header(path, {**expect, "tile": t.id}) for t, path in zip(tiles, parts, strict=True)]  # fail fast
    counts: dict[str, int] = {}
    for meta in metas:
        for k, v in meta["pixels"].items():
            counts[k] = counts.get(k, 0) + int(v)
    log_pixel_counts(years, counts)
    pairing = series_pairing(models, uncertainty, years)
    progress = logs.progress(log, "trend gather")
    for j, (level, zpath, gpkg) in enumerate(zip(levels, zones, zones_out, strict=True)):
        layer = gio.read_vector(zpath)
        year_tables = [gio.read_vector(tables_by_year[k][j]) for k in range(len(years))]
        blocks = [level_trend_table(layer.iloc[z0:z1], year_tables, block, years, interval_pct, min_observed_pct)
                  for z0, z1, block in level_blocks(parts, tiles, j, expect, zone_block)]
        table = pd.concat(blocks, ignore_index=True) if len(blocks) > 1 else blocks[0]
        del blocks
        write_level_trend(table, level, gpkg, years, min_observed_pct)
        progress(j + 1, len(levels))
    record = trend_record(years, metas[0]["n_draws"], interval_pct, counts, pairing[0], residual_summary(pairing[1]))
    gio.write_json(record_out, record)
    log.info("trend %d-%d gathered from %d tiles of %d px", years[0], years[-1], len(tiles), size_px)
    return record
