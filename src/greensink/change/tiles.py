"""Rule change in a tiled run (``tiles.size_px``): one ``change_tile`` job per ``{y0}_{y1}`` × ``{tile}``
(:func:`run_change_tile`) and the rule ``change`` that gathers them (:func:`run_change_gather`).

A tile job reads only its windows of both years' rasters, its tile's coverage matrices
(results/zones/tiles/{level}_coverage_{tile}.npz) and both years' fill of unobserved land (results/{year}/fill.json),
and evaluates its pixels with the whole grid's pixel indices (:func:`greensink.change.run.change_parts`). It writes

* ``tiles/sink_{tile}.tif`` and ``tiles/attribution_{tile}.tif``: the windows of sink.tif and attribution.tif;
* ``tiles/parts_{tile}.npz`` (:func:`greensink.io.write_arrays`): per level the zone sums of the zones the tile
  touches (``<level>.rows``: their rows; ``<level>.<sum>``: the compact arrays, :data:`~greensink.change.run.ZONE_SUMS`)
  and the tile's lost pixels (``lost.*``: global flat index, lost share, both stocks, zone keys).

Rule change then mosaics the rasters (:func:`greensink.tiling.mosaic_files`: the untiled files, byte for byte), adds
the zone sums (memory: zones × draws, never the grid's pixels), and makes the lost patches from the lost pixels
tile by tile, joined across the tile edges (:func:`~greensink.change.attribution.label_lost_tiled`: one tile's
arrays and the lost pixels, no whole-grid array; the untiled rule's patches, numbers and polygons), the zone tables
and uncertainty.json as the untiled rule does. Every per-pixel value
depends on the pixel alone, so the mosaics are the untiled rasters; the zone sums are the same terms added in
another order (equal within rounding, tests/test_change_tiles.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from greensink.change.run import (
    change_parts,
    check_draws,
    pair_uncertainty,
    write_change_outputs,
    write_change_rasters,
)
from greensink.errors import InputDataError
from greensink.grid import Grid

log = logging.getLogger(__name__)

LOST_KEYS = ("index", "lost", "stock0", "stock1", "keys")


def compact_sums(sums: Sequence[Mapping[str, np.ndarray]], matrices: Sequence, levels: Sequence[str]) -> dict:
    """The arrays of a tile's parts file: per level the rows of the zones the tile's coverage touches
    (``<level>.rows``) and each zone sum at those rows (``<level>.<name>``). A zone the tile does not touch has
    every sum 0 there (its row of the coverage is empty), so leaving it out changes no total."""
    arrays = {}
    for level, level_sums, matrix in zip(levels, sums, matrices, strict=True):
        rows = np.flatnonzero(np.diff(matrix.tocsr().indptr) > 0)
        arrays[f"{level}.rows"] = rows.astype(np.int64)
        for name, value in level_sums.items():
            arrays[f"{level}.{name}"] = np.asarray(value)[rows]
    return arrays


def gather_sums(parts: Sequence[Mapping[str, np.ndarray]], levels: Sequence[str],
                n_zones: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """Per level, every zone sum added over the tiles' compact arrays (:func:`compact_sums`): (Z,) or (Z, B) arrays,
    0 for a zone no tile touches (as the whole grid's sums give it)."""
    out: list[dict[str, np.ndarray]] = []
    for level, z in zip(levels, n_zones, strict=True):
        total: dict[str, np.ndarray] = {}
        prefix = f"{level}."
        for part in parts:
            rows = part[f"{level}.rows"]
            if rows.size and (rows.min() < 0 or rows.max() >= z):
                raise InputDataError(f"change tile parts: zone rows up to {int(rows.max())} for {z} {level} zones. The "
                                     "tiles were made for other zones: delete results/change/*/tiles and run again.")
            for key, value in part.items():
                if not key.startswith(prefix) or key == f"{level}.rows":
                    continue
                name = key[len(prefix):]
                if name not in total:
                    total[name] = np.zeros((z, *value.shape[1:]), dtype=np.float64)
                total[name][rows] += value
        out.append(total)
    return out


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
    from greensink import io as gio

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
    gio.write_arrays(out["parts"], arrays, {"tile": tile_id, "size_px": size_px, "years": [y0, y1],
                                            "levels": list(levels), "sources": parts.sources})
    log.info("change tile %s %d-%d: %d px, %s zones touched, %d pixels lost sink space", tile_id, y0, y1,
             tile.height * tile.width, "/".join(str(arrays[f"{lv}.rows"].size) for lv in levels),
             parts.lost["index"].size)


def run_change_gather(
    inp: Mapping[str, object], out: Mapping[str, object], *, size_px: int, y0: int, y1: int, levels: Sequence[str],
    interval_pct: float = 90.0, uncertainty: Mapping | None = None, compress: str = "zstd",
    no_net_loss_tolerance_pixels: float = 0.5, min_observed_pct: float = 50.0,
) -> None:
    """Rule change in a tiled run: sink.tif and attribution.tif mosaicked from the tiles (``inp["sink_tiles"]``,
    ``inp["attribution_tiles"]``, every tile of ``grid.tiles(size_px)`` in order), the zone sums of the tiles'
    parts files (``inp["parts"]``) added, and the zone tables, lost patches and uncertainty.json written as
    :func:`greensink.change.run_change` writes them."""
    from greensink import io as gio
    from greensink import logs
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
    parts, sources = [], None
    for tile, path in zip(tiles, paths, strict=True):
        arrays, meta = gio.read_arrays(path, "change tile parts (.npz)")
        if meta.get("tile") != tile.id or meta.get("levels") != list(levels) or meta.get("years") != [y0, y1]:
            raise InputDataError(f"{path}: parts of tile {meta.get('tile')} for levels {meta.get('levels')} and years "
                                 f"{meta.get('years')}; expected tile {tile.id}, levels {list(levels)}, years "
                                 f"{[y0, y1]}. Delete results/change/{y0}_{y1}/tiles and run again.")
        sources = meta.get("sources", []) if sources is None else sources
        parts.append(arrays)
    zones = [len(gio.read_vector(path)) for path in inp["zones"]]
    sums = gather_sums(parts, levels, zones)
    lost = gather_lost(parts, len(levels))
    del parts
    pair = pair_uncertainty(gio.read_json(inp["models0"]), gio.read_json(inp["models1"]), uncertainty)
    write_change_outputs(inp, out, sums, sources or [], lost, pair, grid, y0=y0, y1=y1, levels=levels,
                         interval_pct=interval_pct, no_net_loss_tolerance_pixels=no_net_loss_tolerance_pixels,
                         min_observed_pct=min_observed_pct, size_px=size_px)
    log.info("change %d-%d gathered from %d tiles of %d px", y0, y1, len(tiles), size_px)

