"""Rule change in a tiled run (``tiles.size_px``): one ``change_tile`` job per ``{y0}_{y1}`` × ``{tile}``
(:func:`run_change_tile`) and the rule ``change`` that gathers them (:func:`run_change_gather`).

A tile job reads only its windows of both years' rasters, its tile's coverage matrices
(results/zones/tiles/{level}_coverage_{tile}.npz) and both years' fill of unobserved land (results/{year}/fill.json),
and evaluates its pixels with the whole grid's pixel indices (:func:`greensink.change.run.change_parts`). It writes

* ``tiles/sink_{tile}.tif`` and ``tiles/attribution_{tile}.tif``: the windows of sink.tif and attribution.tif;
* ``tiles/parts_{tile}.npz`` (:func:`greensink.io.write_arrays`, the layout of
  :func:`greensink.zone_sums.write_tile_sums`): per level ``L<i>`` the zone sums of the zones the tile touches
  (``L<i>.rows``: their rows; ``L<i>.<sum>``: the compact arrays, :data:`~greensink.change.run.ZONE_SUMS`) and the
  tile's lost pixels (``lost.*``: global flat index, lost share, both stocks, zone keys).

Rule change then mosaics the rasters (:func:`greensink.tiling.mosaic_files`: the untiled files, byte for byte), adds
the zone sums level by level and zone block by zone block (:func:`gather_level`: memory grows with the zones and
one block's draws, not with zones × draws, and never with the grid's pixels), and makes the lost patches from the
lost pixels tile by tile, joined across the tile edges (:func:`~greensink.change.attribution.label_lost_tiled`: one
tile's arrays and the lost pixels, no whole-grid array; the untiled rule's patches, numbers and polygons), the zone
tables and uncertainty.json as the untiled rule does. Every per-pixel value
depends on the pixel alone, so the mosaics are the untiled rasters; the zone sums are the same terms added in
another order (equal within rounding, tests/test_change_tiles.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from greensink import io as gio
from greensink import logs
from greensink.aggregate.tiles import ZONE_BLOCK, read_tile_header, zone_blocks
from greensink.change.run import (
    change_parts,
    check_draws,
    pair_uncertainty,
    write_change_outputs,
    write_change_rasters,
)
from greensink.change.tables import join_summaries, summarize_draws
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.zone_sums import TILE_SUMS_FORMAT, touching_rows

log = logging.getLogger(__name__)

LOST_KEYS = ("index", "lost", "stock0", "stock1", "keys")
PARTS_WHAT = "change tile parts (.npz)"


def compact_sums(sums: Sequence[Mapping[str, np.ndarray]], matrices: Sequence, levels: Sequence[str]) -> dict:
    """The arrays of a tile's parts file, in the layout of :func:`greensink.zone_sums.write_tile_sums` (which the
    gather's block reader :func:`greensink.zone_sums.read_tile_level` reads): per level ``L<i>`` (in ``levels``
    order) the rows of the zones the tile's coverage touches (``L<i>.rows``) and each zone sum at those rows
    (``L<i>.<name>``). A zone the tile does not touch has every sum 0 there (its row of the coverage is empty), so
    leaving it out changes no total; nor does leaving out a draw sum that is 0 everywhere (a tile without typed
    pixels has one draw column of 0s, the others as many as the run's draws)."""
    arrays = {}
    for i, (_, level_sums, matrix) in enumerate(zip(levels, sums, matrices, strict=True)):
        rows = touching_rows(matrix.tocsr())
        arrays[f"L{i}.rows"] = rows
        for name, value in level_sums.items():
            value = np.asarray(value, dtype=np.float64)[rows]
            if value.ndim == 2 and not value.any():  # e.g. a tile without typed pixels: one draw column of 0
                continue  # adds nothing to any sum, whatever the other tiles' number of draws
            arrays[f"L{i}.{name}"] = value
    return arrays


def gather_level(paths: Sequence[str | Path], tiles: Sequence, levels: Sequence[str], n_zones: Sequence[int],
                 level: str, expect: Mapping, *, interval_pct: float, sources: Sequence[str],
                 zone_block: int = ZONE_BLOCK, fix: str = "") -> dict[str, object]:
    """One level's zone sums added over the tiles' parts files as :func:`greensink.change.run.level_sums` takes them
    (one entry per zone, 0 for a zone no tile touches), ``zone_block`` zones at a time
    (:func:`greensink.aggregate.tiles.zone_blocks`: only the block's rows of each file read): the (Z,) sums as they
    are, and in place of the draws ``sink_draws`` and ``both_draws`` (with the per-source parts ``sink_src_<source>``)
    their :class:`~greensink.change.tables.DrawSummary` (interval, U %, variance shares), taken block by block and
    the block's draws dropped. Memory: the level's (Z,) sums and one block's (zone_block × draws) arrays, never the
    level's draws. The summaries are per zone, so any ``zone_block`` gives the same numbers, bit for bit."""
    n = n_zones[list(levels).index(level)]
    narrow: dict[str, np.ndarray] = {}
    sink, both = [], []
    for z0, z1, total in zone_blocks(tiles, paths, levels, n_zones, level, expect, zone_block, what=PARTS_WHAT,
                                     fix=fix):
        missing = [k for k in ("sink", "both") if k not in total]
        if missing:
            raise InputDataError(f"{paths[0] if paths else 'change tile parts'}: no zone sums {missing} for level "
                                 f"{level}. {fix}")
        nothing = np.zeros((z1 - z0, 1))  # no tile drew a pixel of these zones (compact_sums left the 0s out)
        for key in ("sink_draws", "both_draws"):
            total.setdefault(key, nothing)
        parts = {k: total.pop(f"sink_src_{k}", np.zeros_like(total["sink_draws"])) for k in sources}
        sink.append(summarize_draws(total["sink"], total.pop("sink_draws"), interval_pct, parts))
        both.append(summarize_draws(total["both"], total.pop("both_draws"), interval_pct, u=False))
        del parts
        for name, v in total.items():
            narrow.setdefault(name, np.zeros((n, *v.shape[1:])))[z0:z1] = v
        del total
    return {**narrow, "sink_draws": join_summaries(sink), "both_draws": join_summaries(both)}


def read_lost(path: str | Path, expect: Mapping, fix: str) -> tuple[dict[str, np.ndarray], dict]:
    """A tile's parts file's lost pixels (``lost.*``) and header, checked against ``expect``
    (:func:`greensink.aggregate.tiles.read_tile_header`); no zone sum is read."""
    meta, lost = read_tile_header(path, expect, what=PARTS_WHAT, fix=fix, members=[f"lost.{k}" for k in LOST_KEYS])
    return lost, meta


def gather_lost(parts: Sequence[Mapping[str, np.ndarray]], n_levels: int) -> dict[str, np.ndarray]:
    """The tiles' lost pixels together, in the whole grid's pixel order (ascending global index)."""
    found = {k: [part[f"lost.{k}"] for part in parts] for k in LOST_KEYS}
    index = np.concatenate(found["index"]) if parts else np.zeros(0, dtype=np.int64)
    order = np.argsort(index, kind="stable")
    out = {k: np.concatenate(v)[order] for k, v in found.items() if k != "keys"} if parts else {
        k: np.zeros(0) for k in LOST_KEYS if k != "keys"}
    keys = np.concatenate(found["keys"], axis=1) if parts else np.zeros((n_levels, 0), dtype=np.int64)
    out["keys"] = keys.reshape(n_levels, -1)[:, order]
    out["index"] = out["index"].astype(np.int64)
    if out["index"].size > 1 and not (np.diff(out["index"]) > 0).all():
        raise InputDataError("change tile parts: a pixel is lost in two tiles. The tiles were made for another tile "
                             "size: delete results/change/*/tiles and run again.")
    return out


def run_change_tile(
    inp: Mapping[str, object], out: Mapping[str, object], *, tile_id: str, size_px: int, y0: int, y1: int,
    levels: Sequence[str], types: Sequence[str], predictors: Sequence[str], typed_land: bool,
    interval_pct: float = 90.0, uncertainty: Mapping | None = None, seed: int = 0, compress: str = "zstd",
    draws: str = "exact",
) -> None:
    """Rule change_tile: the tile ``tile_id`` of ``grid.tiles(size_px)`` of the change between ``y0`` and ``y1``.
    ``inp`` holds rule change's whole-grid rasters and models, ``coverage`` the tile's coverage matrices (one per
    level of ``levels``), ``fill0`` / ``fill1`` the years' fill.json; ``out`` the tile's ``sink`` and
    ``attribution`` rasters (on the tile's sub-grid) and its ``parts`` file (see the module doc)."""
    check_draws(draws, tiled=True)  # change.draws: analytic is refused in a tiled run
    grid = Grid.read(inp["grid"])
    tile = grid.tile(tile_id, size_px)
    matrices = [gio.read_sparse(path) for path in inp["coverage"]]
    for level, path, m in zip(levels, inp["coverage"], matrices, strict=True):
        if m.shape[1] != tile.height * tile.width:
            raise InputDataError(f"{path}: {m.shape[1]} pixel columns for tile {tile_id} of {tile.height} × "
                                 f"{tile.width} px ({level}). It was made for another tile size: delete "
                                 "results/zones/tiles and run again.")
    parts = change_parts(inp, grid, tile, matrices, y0=y0, y1=y1, types=types, predictors=predictors,
                         typed_land=typed_land, interval_pct=interval_pct, uncertainty=uncertainty, seed=seed)
    write_change_rasters(out, parts.sink, parts.attribution, grid.subgrid(tile), y0, y1, compress)
    arrays = compact_sums(parts.sums, matrices, levels)
    arrays |= {f"lost.{k}": v for k, v in parts.lost.items()}
    gio.write_arrays(out["parts"], arrays, {"format": TILE_SUMS_FORMAT, "tile": tile_id, "size_px": int(size_px),
                                            "years": [y0, y1], "levels": list(levels),
                                            "n_zones": [int(m.shape[0]) for m in matrices], "sources": parts.sources})
    log.info("change tile %s %d-%d: %d px, %s zones touched, %d pixels lost sink space", tile_id, y0, y1,
             tile.height * tile.width, "/".join(str(arrays[f"L{i}.rows"].size) for i in range(len(levels))),
             parts.lost["index"].size)


def run_change_gather(
    inp: Mapping[str, object], out: Mapping[str, object], *, size_px: int, y0: int, y1: int, levels: Sequence[str],
    interval_pct: float = 90.0, uncertainty: Mapping | None = None, compress: str = "zstd",
    no_net_loss_tolerance_pixels: float = 0.5, min_observed_pct: float = 50.0, zone_block: int = ZONE_BLOCK,
) -> None:
    """Rule change in a tiled run: sink.tif and attribution.tif mosaicked from the tiles (``inp["sink_tiles"]``,
    ``inp["attribution_tiles"]``, every tile of ``grid.tiles(size_px)`` in order), the zone sums of the tiles'
    parts files (``inp["parts"]``) added, and the zone tables, lost patches and uncertainty.json written as
    :func:`greensink.change.run_change` writes them, the zone sums gathered level by level and ``zone_block`` zones
    at a time (:func:`gather_level`): memory grows with the zones (their (Z,) sums and tables) and with one block's
    draws, not with zones × draws. A parts file of another tile, tile size, pair, level list or zone count, or of
    the layout before the blocks (no ``format``), is refused naming the file and the entry."""
    from greensink.tiling import mosaic_files

    grid = Grid.read(inp["grid"])
    mosaic_files({"sink": list(inp["sink_tiles"]), "attribution": list(inp["attribution_tiles"])},
                 {"sink": out["sink"], "attribution": out["attribution"]}, grid, size_px, compress=compress,
                 progress=logs.progress(log, "change mosaic"))
    tiles = grid.tiles(size_px)
    paths = list(inp["parts"])
    if len(paths) != len(tiles):
        raise InputDataError(f"The change of the {grid.height} × {grid.width} grid in tiles of {size_px} px needs "
                             f"{len(tiles)} parts files; got {len(paths)}.")
    n_zones = [len(gio.read_vector(path)) for path in inp["zones"]]
    fix = f"It was made for other inputs or settings: delete results/change/{y0}_{y1}/tiles and run again."
    ident = {"format": TILE_SUMS_FORMAT, "size_px": int(size_px), "years": [y0, y1], "levels": list(levels),
             "n_zones": n_zones}
    lost, sources = [], []
    for tile, path in zip(tiles, paths, strict=True):  # every file's header first: a wrong file fails fast
        arrays, meta = read_lost(path, {**ident, "tile": tile.id}, fix)
        got = list(meta.get("sources") or [])  # [] for a tile without typed pixels (nothing drawn)
        if sources and got and got != sources:
            raise InputDataError(f"{path}: sources must be {sources!r} for this run. Got {got!r}. {fix}")
        sources = sources or got
        lost.append(arrays)
    lost = gather_lost(lost, len(levels))
    progress = logs.progress(log, "change gather")
    sums = []
    for k, level in enumerate(levels):
        sums.append(gather_level(paths, tiles, levels, n_zones, level, ident, interval_pct=interval_pct,
                                 sources=sources, zone_block=zone_block, fix=fix))
        progress(k + 1, len(levels))
    pair = pair_uncertainty(gio.read_json(inp["models0"]), gio.read_json(inp["models1"]), uncertainty)
    # the per-source variance shares travel in the sink's DrawSummary (gather_level): no per-source draws to pass
    write_change_outputs(inp, out, sums, [], lost, pair, grid, y0=y0, y1=y1, levels=levels,
                         interval_pct=interval_pct, no_net_loss_tolerance_pixels=no_net_loss_tolerance_pixels,
                         min_observed_pct=min_observed_pct, size_px=size_px)
    log.info("change %d-%d gathered from %d tiles of %d px", y0, y1, len(tiles), size_px)

