"""The fill of unobserved typed land, computed once per year: ``results/{year}/fill.json``.

Typed land whose carbon needs imagery but had no clear observation in a year is filled, in the zone tables
(aggregate, change, scenarios), with its type's fraction-weighted mean density over the year's observed
pixels (:func:`type_fill`; docs/method.md, "Unobserved land"). Rule ``fill`` computes it once per year and
writes fill.json (:func:`write_fill`); readers take it back with :func:`read_fill`, which refuses a file made
from other models (the models.json digest it records) or for another year.

The fill is a ratio of sums over the observed pixels of each type (:func:`type_fill_sums`): the fraction
weights ``w_sum``, the weighted densities ``v_sum`` and their squares ``v2_sum``, and the weighted density under
each bootstrap draw ``d_sum`` (B,). Sums add over any split of the pixels, so in a tiled run (``tiles.size_px``)
each ``{year}×{tile}`` job (rule fill_tile, :func:`run_fill_tile`) writes its tile's sums to
``results/{year}/tiles/fill_{tile}.json`` reading only its tile's window (memory bounded by the tile), and rule
fill_gather adds them up into the same fill.json (:func:`run_fill_gather`, :func:`type_fill_from_sums`): the same
fill up to the order of the additions (relative differences of order 1e-15, tested to 1e-12). The untiled rule
(:func:`run_fill`) is :func:`type_fill` of the whole grid, bit for bit the fill aggregate, change, the scenarios and
the trend computed themselves before they read fill.json (they call :func:`type_fill` only when given no file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from greensink import io as gio
from greensink.carbon.pixels import (
    Predictors,
    iter_chunks,
    model_variants,
    ndvi_gate,
    needs_imagery,
    observed_pixels,
    predictor_layers,
    served_variants,
    type_records,
)
from greensink.errors import InputDataError, ModelError
from greensink.grid import Grid, Tile
from greensink.memory import small_pages
from greensink.model import predict, used_predictors

log = logging.getLogger(__name__)

FILL_FORMAT = 1  # the layout of fill.json and of a tile's sums file; a reader refuses another
SUMS = ("w_sum", "v_sum", "v2_sum", "d_sum")  # a type's partial sums (d_sum: one per bootstrap draw)


def models_digest(models: Mapping) -> str:
    """SHA-256 of a models.json dict as canonical JSON (sorted keys): the same digest as
    :func:`greensink.aggregate.content_sha256` (a test checks it), defined here because the carbon package
    sits below aggregate in the imports."""
    return hashlib.sha256(json.dumps(models, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


def type_fill_sums(models: Mapping, types: Sequence[str], fractions: np.ndarray, predictors: Predictors) -> dict[str, dict]:
    """The partial sums of :func:`type_fill` over the pixels of ``fractions`` (the grid or a tile's window):
    {type: {"w_sum", "v_sum", "v2_sum" (floats), "d_sum" (list of B floats)}} for every type needing imagery
    (:func:`~greensink.carbon.pixels.needs_imagery`), JSON-able. Over the observed pixels a type's model (or its
    NDVI-only companion) serves, weighted by the type's fraction w: Σ w, Σ w v, Σ w v² with v the gated density
    max(f(x), 0) in t C/ha of the type's land, and Σ w v_b under each bootstrap draw b. The pixels are taken in
    chunks of :data:`~greensink.carbon.pixels.CHUNK_PIXELS` in flat order, as :func:`type_fill` always did."""
    frac = fractions.reshape(len(types), -1)
    layers = predictor_layers(predictors)
    ndvi = layers.get("ndvi")
    out: dict[str, dict] = {}
    for k, (t, tm) in enumerate(zip(types, type_records(models, types), strict=True)):
        if not needs_imagery(tm):
            continue
        variants = model_variants(tm)
        n_draws = variants[0][3].shape[0]
        w_sum, v_sum, v2_sum = 0.0, 0.0, 0.0
        d_sum = np.zeros(n_draws)
        for idx in iter_chunks(np.flatnonzero(frac[k] > 0)):
            f = frac[k, idx].astype(np.float64)
            todo = np.ones(idx.size, dtype=bool)
            gate = ndvi_gate(tm, ndvi, idx)
            for _, (preds, form, params, boot), use, xu in served_variants(variants, layers, idx, todo, observed_pixels(layers, idx),
                                                                   tm.ndvi_min is not None):
                if use.any():
                    g = gate if np.isscalar(gate) else gate[use]
                    v = g * np.maximum(predict(form, params, xu, preds), 0.0)
                    w = f[use]
                    w_sum += float(w.sum())
                    v_sum += float((w * v).sum())
                    v2_sum += float((w * v * v).sum())
                    d_sum += (g * np.maximum(predict(form, boot, xu, preds), 0.0)) @ w
        out[t] = {"w_sum": w_sum, "v_sum": v_sum, "v2_sum": v2_sum, "d_sum": d_sum.tolist()}
    return out


def type_fill_from_sums(parts: Sequence[Mapping[str, Mapping]], models: Mapping, types: Sequence[str],
                        seed: int = 0) -> dict[str, dict]:
    """:func:`type_fill`'s result from the partial sums ``parts`` of a split of the pixels (one
    :func:`type_fill_sums` result per tile, added in the order given; one part: bit for bit :func:`type_fill`)."""
    out: dict[str, dict] = {}
    for t, tm in zip(types, type_records(models, types), strict=True):
        if not needs_imagery(tm):
            continue
        n_draws = model_variants(tm)[0][3].shape[0]
        w_sum, v_sum, v2_sum = 0.0, 0.0, 0.0
        d_sum = np.zeros(n_draws)
        for i, part in enumerate(parts):
            s = part.get(t)
            if s is None or len(s["d_sum"]) != n_draws:
                raise ModelError(f"fill sums part {i + 1} of {len(parts)}: type {t!r} "
                                 + ("is missing" if s is None else f"has {len(s['d_sum'])} draws, the models {n_draws}")
                                 + ". The parts were made from other models: remake them (rule fill_tile).")
            w_sum += float(s["w_sum"])
            v_sum += float(s["v_sum"])
            v2_sum += float(s["v2_sum"])
            d_sum += np.asarray(s["d_sum"], dtype=np.float64)
        if w_sum <= 0:
            out[t] = {"fill_t_ha": None, "spread_t_ha": None, "observed_ha_px": 0.0, "draws": None}
            continue
        mean = v_sum / w_sum
        spread = math.sqrt(max(v2_sum / w_sum - mean * mean, 0.0))
        z = np.random.default_rng([int(seed), zlib.crc32(t.encode("utf-8")), 7]).standard_normal(n_draws)
        draws = np.maximum(d_sum / w_sum + spread * z, 0.0)
        out[t] = {"fill_t_ha": mean, "spread_t_ha": spread, "observed_ha_px": w_sum, "draws": draws}
    return out


def type_fill(models: dict, types: Sequence[str], fractions: np.ndarray, predictors: Predictors,
              seed: int = 0) -> dict[str, dict]:
    """The fill rule of unobserved typed land, per type needing imagery (:func:`needs_imagery`).

    Over the observed pixels of the type in this year (those its model serves), weighted by the
    type's fraction: the mean density per ha of the type's land (``fill_t_ha``), the same mean under
    every bootstrap draw of the model, and the between-pixel standard deviation ``spread_t_ha``.
    The fill draws are mean_b + spread × z_b (z_b ~ N(0, 1) from ``default_rng([seed, crc32(type),
    7])``, one z per draw for all the type's unobserved land, so the spread is fully correlated
    within and between zones: conservative), floored at 0. A type with no observed pixel has
    ``fill_t_ha`` None (its unobserved land stays unknown). Returns {type: {"fill_t_ha",
    "spread_t_ha", "observed_ha_px" (pixel-fraction units), "draws"}} for the types needing imagery.

    It is :func:`type_fill_from_sums` of the one part :func:`type_fill_sums` of the whole grid."""
    return type_fill_from_sums([type_fill_sums(models, types, fractions, predictors)], models, types, seed)


def fill_values(fill: Mapping[str, Mapping]) -> dict[str, tuple[float, np.ndarray]]:
    """The :func:`pixel_function` ``fill`` argument from :func:`type_fill` (types with a fill only)."""
    return {t: (v["fill_t_ha"], np.asarray(v["draws"])) for t, v in fill.items() if v["fill_t_ha"] is not None}


# --- fill.json and the tile sums files ------------------------------------------------------------------------


def write_fill(path: str | Path, fill: Mapping[str, Mapping], *, year: int, seed: int, models_sha256: str) -> Path:
    """Write a fill (:func:`type_fill`'s format) to ``path`` (fill.json) with its identity: ``year``, the fill
    draws' ``seed`` (models.json's) and the digest of the models.json it was made from (:func:`models_digest`).
    Floats are written with Python's shortest round-trip repr (read back exactly); None stays null."""
    types = {t: {"fill_t_ha": v["fill_t_ha"], "spread_t_ha": v["spread_t_ha"], "observed_ha_px": v["observed_ha_px"],
                 "draws": None if v["draws"] is None else np.asarray(v["draws"], dtype=np.float64).tolist()}
             for t, v in fill.items()}
    return gio.write_json(path, {"format": FILL_FORMAT, "year": int(year), "seed": int(seed),
                                 "models_sha256": str(models_sha256), "types": types})


def _check_record(path: str | Path, record: Mapping, what: str, *, year: int | None, digest: str | None,
                  keys: Sequence[str]) -> None:
    """InputDataError naming ``path`` unless ``record`` is a current ``what`` of this year and models."""
    if not isinstance(record, Mapping) or record.get("format") != FILL_FORMAT or any(k not in record for k in keys):
        got = record.get("format") if isinstance(record, Mapping) else type(record).__name__
        raise InputDataError(f"{path}: not a {what} of format {FILL_FORMAT} with fields {list(keys)} (format found: "
                             f"{got!r}). It was written by another version of greensink: delete it and run again.")
    if year is not None and int(record["year"]) != int(year):
        raise InputDataError(f"{path}: field 'year' is {record['year']}, expected {int(year)}. The {what} is of "
                             "another year: delete it and run again.")
    if digest is not None and record["models_sha256"] != digest:
        raise InputDataError(f"{path}: field 'models_sha256' is {record['models_sha256'][:12]}…, the year's "
                             f"models.json has {digest[:12]}…. The {what} was made from other models (stale): delete "
                             "it and run again (Snakemake remakes it when models.json changes).")


def read_fill(path: str | Path, *, models: Mapping | None = None, year: int | None = None) -> dict[str, dict]:
    """The fill written by :func:`write_fill`, in :func:`type_fill`'s format (draws as float64 arrays, None
    where the type had no observed pixel): exactly the fill written. With ``models`` (the year's models.json
    dict, before anything annotates it) or ``year``, a file made from other models or for another year raises
    InputDataError naming the file, the field and the fix."""
    record = gio.read_json(path)
    _check_record(path, record, "fill file", year=year, digest=None if models is None else models_digest(models),
                  keys=("year", "seed", "models_sha256", "types"))
    return {t: {"fill_t_ha": v["fill_t_ha"], "spread_t_ha": v["spread_t_ha"], "observed_ha_px": v["observed_ha_px"],
                "draws": None if v["draws"] is None else np.asarray(v["draws"], dtype=np.float64)}
            for t, v in record["types"].items()}


def _read_window(path: str | Path, grid: Grid, tile: Tile | None, bands=None) -> np.ndarray:
    """The window ``tile`` (None: all) of a raster on ``grid``, read as :func:`greensink.io.read_raster` reads
    the whole file (the same values); InputDataError naming the file if it is on another grid."""
    got = gio.read_grid(path)
    if (got.height, got.width) != (grid.height, grid.width) or not got.transform.almost_equals(grid.transform, 1e-6):
        raise InputDataError(f"{path}: a {got.height} × {got.width} raster at {tuple(got.transform)[:6]}; the type "
                             f"fractions are {grid.height} × {grid.width} at {tuple(grid.transform)[:6]}. It was made "
                             "for another grid: rerun the stage that wrote it.")
    if tile is None:
        return gio.read_raster(path, bands=bands)
    from rasterio.windows import Window

    return gio.read_raster(path, bands=bands, window=Window(tile.col_off, tile.row_off, tile.width, tile.height))


def _inputs(models: Mapping, predictors: Mapping[str, str | Path], fractions: str | Path, types: Sequence[str],
            tile_id: str | None = None, size_px: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], Tile | None]:
    """The type fractions and the used predictors (:func:`greensink.model.used_predictors`), of the grid or of
    the window of tile ``tile_id`` of ``grid.tiles(size_px)``."""
    grid = gio.read_grid(fractions)
    tile = grid.tile(tile_id, size_px) if tile_id else None
    names = used_predictors(models, types)
    missing = [q for q in names if q not in predictors]
    if missing:
        raise ModelError(f"predictor raster(s) {missing} are needed by the year's models. Got only {sorted(predictors)}"
                         " instead. Pass every raster of model.predictors (results/{year}/<name>.tif).")
    frac = _read_window(fractions, grid, tile, bands=list(range(1, len(types) + 1)))
    used = {q: _read_window(predictors[q], grid, tile) for q in names}
    return frac, used, tile


def log_fill(fill: Mapping[str, Mapping], pixel_area_ha: float) -> None:
    """Log each type's fill (rules fill, fill_gather and aggregate): density, between-pixel sd, observed area."""
    for t, f in fill.items():
        log.info("fill of unobserved %s land: %s t C/ha (between-pixel sd %s) from %.1f ha observed", t,
                 "none (no observed pixel: its unobserved land stays unknown)" if f["fill_t_ha"] is None
                 else f"{f['fill_t_ha']:.3f}",
                 "-" if f["spread_t_ha"] is None else f"{f['spread_t_ha']:.3f}", f["observed_ha_px"] * pixel_area_ha)


@small_pages()  # numpy's huge-page advice off (greensink.memory; benchmarks/README.md): same bytes, less system time
def run_fill(models_json: str | Path, predictors: Mapping[str, str | Path], fractions: str | Path, out: str | Path, *,
             types: Sequence[str], year: int) -> dict[str, dict]:
    """Rule fill (untiled): :func:`type_fill` of the whole grid from the year's ``models_json``, its
    ``predictors`` (name → raster; those the models use are read) and the type ``fractions`` (one band per type
    of ``types``), with models.json's seed; written to ``out`` (fill.json, :func:`write_fill`) and returned."""
    models = gio.read_json(models_json)
    digest = models_digest(models)  # before anything reads (or annotates) the dict
    frac, used, _ = _inputs(models, predictors, fractions, types)
    seed = int(models.get("seed", 0))
    fill = type_fill(models, types, frac, used, seed=seed)
    write_fill(out, fill, year=year, seed=seed, models_sha256=digest)
    log_fill(fill, gio.read_grid(fractions).pixel_area_ha)
    return fill


def run_fill_tile(models_json: str | Path, predictors: Mapping[str, str | Path], fractions: str | Path,
                  out: str | Path, *, types: Sequence[str], year: int, tile_id: str, size_px: int) -> dict[str, dict]:
    """Rule fill_tile: the fill's partial sums (:func:`type_fill_sums`) over tile ``tile_id`` of
    ``grid.tiles(size_px)``, read from the tile's window of the whole-grid ``fractions`` and ``predictors``
    (memory bounded by the tile), written to ``out`` (results/{year}/tiles/fill_{tile}.json) with the tile's
    id, the year and the models' digest, and returned."""
    models = gio.read_json(models_json)
    digest = models_digest(models)
    frac, used, tile = _inputs(models, predictors, fractions, types, tile_id, size_px)
    sums = type_fill_sums(models, types, frac, used)
    gio.write_json(out, {"format": FILL_FORMAT, "year": int(year), "tile": tile.id, "size_px": int(size_px),
                         "models_sha256": digest, "types": sums})
    log.info("fill sums of tile %s (%d × %d px): %s", tile.id, tile.height, tile.width,
             ", ".join(f"{t} {s['w_sum']:.1f} observed px" for t, s in sums.items()) or "no type needs imagery")
    return sums


def run_fill_gather(tile_sums: Sequence[str | Path], models_json: str | Path, grid_json: str | Path, out: str | Path,
                    *, types: Sequence[str], year: int, size_px: int) -> dict[str, dict]:
    """Rule fill_gather (tiled runs): the fill of the grid of ``grid_json`` from its tiles' partial sums ``tile_sums`` (one
    file of rule fill_tile per tile of ``grid.tiles(size_px)``, each once), added in the tiles' order
    (:func:`type_fill_from_sums`), with models.json's seed; written to ``out`` (fill.json) and returned. A
    tile file of other models, another year or another tiling, or a missing tile, raises InputDataError."""
    models = gio.read_json(models_json)
    digest = models_digest(models)
    grid = Grid.read(grid_json)
    order = [t.id for t in grid.tiles(size_px)]
    parts: dict[str, dict] = {}
    for path in tile_sums:
        record = gio.read_json(path)
        _check_record(path, record, "fill tile sums file", year=year, digest=digest,
                      keys=("year", "tile", "size_px", "models_sha256", "types"))
        if int(record["size_px"]) != int(size_px) or record["tile"] not in order or record["tile"] in parts:
            raise InputDataError(f"{path}: field 'tile' is {record['tile']!r} of tiles of {record['size_px']} px; the "
                                 f"run's grid has tiles {order[0]}…{order[-1]} of {size_px} px, each once. It was made "
                                 "for another tiling: delete the tiles folder and run again.")
        parts[record["tile"]] = record["types"]
    if len(parts) != len(order):
        missing = [t for t in order if t not in parts]
        raise InputDataError(f"The fill of the {grid.height} × {grid.width} grid in tiles of {size_px} px needs the sums"
                             f" of {len(order)} tiles; got {len(parts)} (missing {missing[:5]}). Run rule fill_tile "
                             "for every tile.")
    seed = int(models.get("seed", 0))
    fill = type_fill_from_sums([parts[t] for t in order], models, types, seed)
    write_fill(out, fill, year=year, seed=seed, models_sha256=digest)
    log_fill(fill, grid.pixel_area_ha)
    return fill
