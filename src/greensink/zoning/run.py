"""One function per zoning rule, in two layers:

* ``canopy_gap_run``, ``importance_run``, ``potential_run``: the year's arrays, the zones and the settings
  in; the raster, the zone tables per level and a JSON summary (what a report reads) out; no file touched;
* ``run_zoning_canopy_gap``, ``run_zoning_importance``, ``run_zoning_potential`` (what the rule scripts
  call, one each): the rule's input paths, output paths and params in; they read the files, resolve the
  density and the user layers, call the function above and write the outputs through :mod:`greensink.io`."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp

from greensink import io
from greensink.grid import Grid
from greensink.styles import classed_raster_qml
from greensink.tiers import DEFAULT_TABLE, default_table
from greensink.tiling import CoveragePiece, PieceWriter, coverage_pieces
from greensink.zoning.canopy_gap import add_sums, gap_sums, gap_table_from_sums
from greensink.zoning.importance import (
    CLASS_NODATA,
    IMPORTANCE_CLASSES,
    class_sums,
    class_table_from_sums,
    class_tags,
    importance_classes,
    normalised_weights,
    reclassify,
    type_scores,
    weighted_score,
)
from greensink.zoning.layers import layer_source, polygon_parts, polygon_share, raster_on_grid, union_share
from greensink.zoning.potential import (
    not_subtracted,
    potential_raster,
    potential_share,
    potential_sums,
    potential_table_from_sums,
)
from greensink.zoning.settings import MASK_LAYERS, Density, Factor, canopy_target, zoning_density

log = logging.getLogger(__name__)

IMPORTANCE_COLOURS = {3: "#00441b", 2: "#41ab5d", 1: "#e5f5e0"}  # 极重要, 重要, 一般 (importance.qml)
POTENTIAL_STYLE = [(1, "潜力空间 potential space", "#31a354"), (0, "其他 other", "#f0f0f0")]  # potential.qml
DEFAULT_DENSITY_NAME = f"greensink default density table ({DEFAULT_TABLE})"


def level_totals(table: gpd.GeoDataFrame, columns: Sequence[str]) -> dict[str, float | None]:
    """Sum of each column over the level's zones; None (unknown) when any zone's value is NaN."""
    out: dict[str, float | None] = {}
    for c in columns:
        v = np.asarray(table[c], dtype=float)
        out[c] = None if (v.size == 0 or np.isnan(v).any()) else float(v.sum())
    return out


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def canopy_gap_sums(matrices: Sequence[sp.csr_matrix], classes: np.ndarray, canopy: np.ndarray,
                    carbon_t_ha: np.ndarray, open_share: np.ndarray | None) -> list[dict[str, np.ndarray]]:
    """Each level's canopy-gap zone sums (:func:`greensink.zoning.canopy_gap.gap_sums`) over the pixels of one
    piece of the grid (the whole grid, or a tile with its tile matrices)."""
    return [gap_sums(m, classes, canopy, carbon_t_ha, open_share) for m in matrices]


def canopy_gap_finish(levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame], sums: Sequence[Mapping[str, np.ndarray]],
                      grid: Grid, open_given: bool, target_setting: float | Mapping[str, float] | None,
                      density: Density, open_land: str | None = None) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """Canopy-gap tables per level and their summary, from each level's zone sums over the whole grid."""
    tables, per_level = {}, {}
    for level, z, s in zip(levels, zones, sums, strict=True):
        target = canopy_target(target_setting, level)
        t = gap_table_from_sums(z, s, grid.pixel_area_ha, open_given, target, density)
        tables[level] = t
        per_level[level] = {"canopy_target_pct": target, "zones": len(t),
                            "zones_by_status": {str(k): int(v) for k, v in t["gap_status"].value_counts().sort_index().items()},
                            "totals": level_totals(t, ["area_ha", "plantable_vegetated_ha", "plantable_open_ha", "plantable_ha",
                                                       "planting_needed_ha", "planting_ha", "planting_shortfall_ha",
                                                       "carbon_added_t", "carbon_added_net_t"])}
    summary = {"product": "canopy_gap", "tree_density_t_ha": density.t_ha, "density_source": density.source,
               "open_land": open_land or None,
               "not_computed": [] if open_given else
               ["plantable open land (no zoning.open_land layer): plantable_open_ha and plantable_ha are NaN; "
                "planting is capped by the vegetated land without trees alone"],
               "levels": per_level}
    return tables, summary


def canopy_gap_run(levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame], matrices: Sequence[sp.csr_matrix], grid: Grid,
                   classes: np.ndarray, canopy: np.ndarray, carbon_t_ha: np.ndarray, open_share: np.ndarray | None,
                   target_setting: float | Mapping[str, float] | None, density: Density,
                   open_land: str | None = None) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """Canopy-gap tables per level and their summary."""
    sums = canopy_gap_sums(matrices, classes, canopy, carbon_t_ha, open_share)
    return canopy_gap_finish(levels, zones, sums, grid, open_share is not None, target_setting, density, open_land)


def drop_reason(factor: Factor, chm: bool, typed_land: bool) -> str | None:
    """Why a factor cannot be used in this run (None: it can)."""
    if factor.layer == "height" and not chm:
        return "no canopy height model (vegetation.chm): height.tif is empty"
    if factor.layer == "greenspace_type" and not typed_land:
        return "no green-space types (greenspace is not set)"
    return None


def importance_piece(used: Sequence[Factor], weights: Mapping[str, float], class_breaks: Sequence[float],
                     layers: Mapping[str, np.ndarray], fractions: np.ndarray, types: Sequence[str],
                     matrices: Sequence[sp.csr_matrix]) -> tuple[np.ndarray, list[dict[str, np.ndarray]], dict[str, Any]]:
    """One piece of the grid (the whole grid, or a tile with its tile matrices and its windows of the layers):
    its importance classes (uint8), each level's zone sums (:func:`greensink.zoning.importance.class_sums`) and
    its pixel statistics (``pixels`` per class code, ``score_min``, ``score_max``: NaN without a score), which
    :func:`add_pixel_stats` adds up over the pieces."""
    scores = {}
    for f in used:
        if f.layer == "greenspace_type":
            scores[f.name] = type_scores(fractions, types, f.classes)
        else:
            scores[f.name] = reclassify(layers[f.layer] if f.layer else layers[f.name], f)
    score = weighted_score(scores, weights)
    observed = np.isfinite(layers["vegetation_class"])
    score = np.where(observed, score, np.nan)  # unobserved land has no class
    classes = importance_classes(score, class_breaks)
    sums = [class_sums(m, classes, layers["carbon"], observed) for m in matrices]
    finite = np.isfinite(score).any()
    stats = {"pixels": {c: int((classes == c).sum()) for c in (*IMPORTANCE_CLASSES, CLASS_NODATA)},
             "score_min": float(np.nanmin(score)) if finite else math.nan,
             "score_max": float(np.nanmax(score)) if finite else math.nan}
    return classes, sums, stats


def add_pixel_stats(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """The pixel statistics of two disjoint pieces (:func:`importance_piece`) together."""
    if total is None:
        return part
    return {"pixels": {c: total["pixels"][c] + part["pixels"][c] for c in total["pixels"]},
            "score_min": float(np.fmin(total["score_min"], part["score_min"])),
            "score_max": float(np.fmax(total["score_max"], part["score_max"]))}


def importance_setup(factors: Sequence[Factor], *, typed_land: bool, chm: bool,
                     ) -> tuple[list[Factor], dict[str, float], dict[str, str]]:
    """The factors used in this run, their normalised weights and the dropped ones with the reason
    (:func:`drop_reason`): the weights are renormalised over the factors used."""
    dropped = {f.name: why for f in factors if (why := drop_reason(f, chm, typed_land))}
    used = [f for f in factors if f.name not in dropped]
    return used, normalised_weights(used), dropped


def importance_finish(used: Sequence[Factor], weights: Mapping[str, float], dropped: Mapping[str, str],
                      class_breaks: Sequence[float], sums: Sequence[Mapping[str, np.ndarray]], stats: Mapping[str, Any],
                      *, levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame], grid: Grid,
                      ) -> tuple[dict[str, str], dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """The class raster's tags, the class tables per level and the summary from the whole grid's zone sums and
    pixel statistics (:func:`importance_piece`, added up over the pieces)."""
    tags = class_tags(weights, used, class_breaks, dropped)
    tables, per_level = {}, {}
    for level, z, s in zip(levels, zones, sums, strict=True):
        t = class_table_from_sums(z, s, grid.pixel_area_ha)
        tables[level] = t
        cols = ["area_ha", "observed_ha", "classified_ha", "unclassified_ha"]
        for key, _, _ in IMPORTANCE_CLASSES.values():
            cols += [f"area_ha_{key}", f"carbon_t_{key}"]
        per_level[level] = {"zones": len(t), "totals": level_totals(t, cols)}
    summary = {"product": "importance",
               "classes": {str(c): {"key": k, "zh": zh, "en": en} for c, (k, zh, en) in IMPORTANCE_CLASSES.items()},
               "nodata": 255, "class_breaks": [float(b) for b in class_breaks],
               "factors": [{"name": f.name, "source": f.source, "weight": f.weight, "weight_normalised": weights[f.name],
                            "breaks": list(f.breaks), "scores": list(f.scores), "classes": dict(f.classes),
                            "nodata_score": f.nodata_score} for f in used],
               "dropped_factors": dict(dropped),
               "pixels": {str(c): int(n) for c, n in stats["pixels"].items()},
               "score_range": [_finite(stats["score_min"]), _finite(stats["score_max"])],
               "levels": per_level}
    return tags, tables, summary


def importance_run(factors: Sequence[Factor], class_breaks: Sequence[float], layers: Mapping[str, np.ndarray],
                   fractions: np.ndarray, types: Sequence[str], *, typed_land: bool, chm: bool,
                   levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame], matrices: Sequence[sp.csr_matrix],
                   grid: Grid) -> tuple[np.ndarray, dict[str, str], dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """Importance classes (uint8), their GeoTIFF tags, the class tables per level and the summary.

    ``layers`` holds the built-in layers on the grid (vegetation_class, canopy, height, ndvi, fvc, carbon)
    and each user-raster factor's values under the factor's name. Factors that cannot be used in the run
    (:func:`drop_reason`) are left out and the weights renormalised over the rest; every observed pixel
    (vegetation_class not NaN) outside a factor's values keeps no class (255)."""
    used, weights, dropped = importance_setup(factors, typed_land=typed_land, chm=chm)
    classes, sums, stats = importance_piece(used, weights, class_breaks, layers, fractions, types, matrices)
    tags, tables, summary = importance_finish(used, weights, dropped, class_breaks, sums, stats, levels=levels,
                                              zones=zones, grid=grid)
    return classes, tags, tables, summary


def potential_piece(shares: Mapping[str, np.ndarray | None], excluded: np.ndarray | None, carbon_t_ha: np.ndarray,
                    density: Density, matrices: Sequence[sp.csr_matrix], shape: tuple[int, int],
                    ) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """One piece of the grid (``shape``: the whole grid, or a tile with its tile matrices and its windows of the
    layers): its potential-space raster (uint8 1/0, 255 unknown) and each level's zone sums
    (:func:`greensink.zoning.potential.potential_sums`)."""
    pot = potential_share(excluded, shape)
    return potential_raster(pot), [potential_sums(m, shares, pot, carbon_t_ha, density) for m in matrices]


def potential_finish(given: list[str], sums: Sequence[Mapping[str, np.ndarray]], density: Density, *,
                     levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame], grid: Grid,
                     sources: Mapping[str, str] | None = None) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """The potential tables per level and the summary from each level's zone sums over the whole grid;
    ``given`` the mask layers given."""
    tables, per_level = {}, {}
    for level, z, s in zip(levels, zones, sums, strict=True):
        t = potential_table_from_sums(z, s, grid.pixel_area_ha, given, density)
        tables[level] = t
        per_level[level] = {"zones": len(t), "totals": level_totals(t, ["area_ha", "grid_area_ha", *[f"{n}_ha" for n in MASK_LAYERS],
                                                                          "excluded_ha", "potential_ha", "current_carbon_t",
                                                                          "potential_stock_t", "potential_added_t"])}
    summary = {"product": "potential", "subtracted": [n for n in MASK_LAYERS if n in given],
               "not_subtracted": [n for n in MASK_LAYERS if n not in given], "layers": dict(sources or {}),
               "potential_density_t_ha": density.t_ha, "density_source": density.source,
               "raster": {"1": "potential space (≥ half the pixel)", "0": "not potential space", "255": "unknown"},
               "levels": per_level}
    return tables, summary


def potential_run(shares: Mapping[str, np.ndarray | None], excluded: np.ndarray | None, carbon_t_ha: np.ndarray,
                  density: Density, *, levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame],
                  matrices: Sequence[sp.csr_matrix], grid: Grid, sources: Mapping[str, str] | None = None,
                  ) -> tuple[np.ndarray, dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """The potential-space raster (uint8 1/0, 255 unknown), its tables per level and the summary.
    ``excluded`` is the union share of the given layers (None when none is given)."""
    raster, sums = potential_piece(shares, excluded, carbon_t_ha, density, matrices, grid.shape)
    given = [n for n in MASK_LAYERS if n not in not_subtracted(shares)]
    tables, summary = potential_finish(given, sums, density, levels=levels, zones=zones, grid=grid, sources=sources)
    return raster, tables, summary


# ----------------------------------------------------------------------------- rule runners (files in, files out)

Paths = Sequence[str | Path]


def _pieces(grid: Grid, levels: Sequence[str], coverage: Paths, size_px: int | None) -> Iterator[CoveragePiece]:
    """The whole grid with the whole-grid ``coverage`` matrices (``size_px`` None), or, in a tiled run, each tile
    with its tile matrices (``coverage``: results/zones/tiles/{level}_coverage_{tile}.npz, level-major)."""
    return coverage_pieces(grid, levels, coverage, coverage if size_px is not None else None, size_px)


def _add_level_sums(total: list | None, part: list) -> list:
    return part if total is None else [add_sums(t, p) for t, p in zip(total, part, strict=True)]


def _density(zoning: Mapping[str, Any], greenspace: Mapping[str, Any] | None, key: str,
             coefficients: str | Path) -> Density:
    """The zoning density ``key`` resolved against the coefficient table ``coefficients`` (the default table's
    value when the table has none for the type)."""
    return zoning_density(zoning, greenspace, key, io.read_csv(coefficients), str(coefficients), default_table(),
                          DEFAULT_DENSITY_NAME)


def _write_tables(product: str, levels: Sequence[str], gpkg_out: Paths, tables: Mapping[str, gpd.GeoDataFrame]) -> None:
    """Each level's table as its GeoPackage (layer ``<product>_<level>``) with the CSV twin beside it."""
    for level, gpkg in zip(levels, gpkg_out, strict=True):
        io.write_table(gpkg, tables[level], layer=f"{product}_{level}")


def run_zoning_canopy_gap(zones: Paths, coverage: Paths, grid_json: str | Path, classes: str | Path,
                          canopy: str | Path, carbon: str | Path, coefficients: str | Path, gpkg_out: Paths,
                          summary_out: str | Path, *, levels: Sequence[str], zoning: Mapping[str, Any],
                          greenspace: Mapping[str, Any] | None, size_px: int | None = None) -> dict[str, Any]:
    """Rule zoning_canopy_gap: canopy gap and plantable space per zone of each of ``levels``.

    Reads the zone layers ``zones`` with their ``coverage`` matrices on the grid ``grid_json``, the year's
    vegetation ``classes``, ``canopy`` and ``carbon`` (band 1) rasters, the coefficient table ``coefficients``
    (the tree density's default, :func:`greensink.zoning.settings.zoning_density`) and the ``zoning.open_land``
    layer if the ``zoning`` config section gives one; writes one GeoPackage (with its CSV twin) per level to
    ``gpkg_out`` and the summary (returned) to ``summary_out``. With ``size_px`` (a tiled run) ``coverage`` holds
    the tiles' matrices (:func:`greensink.tiling.coverage_pieces`) and the job works tile by tile: memory is one
    tile's windows and matrices plus the zone sums, and the tables equal the untiled ones to rounding."""
    grid = Grid.read(grid_json)
    density = _density(zoning, greenspace, "tree_density_t_ha", coefficients)
    open_land = zoning.get("open_land")
    open_of = layer_source(open_land, grid, "zoning.open_land") if open_land else None
    zone_layers = [io.read_vector(f) for f in zones]
    sums = None
    for piece in _pieces(grid, levels, coverage, size_px):
        open_share = open_of(piece.grid(grid)) if open_of else None
        part = canopy_gap_sums(piece.matrices, piece.read(classes), piece.read(canopy), piece.read(carbon, bands=1),
                               open_share)
        sums = _add_level_sums(sums, part)
    tables, summary = canopy_gap_finish(levels, zone_layers, sums, grid, open_land is not None,
                                        zoning.get("canopy_target_pct"), density,
                                        open_land=(open_land or {}).get("path") or (open_land or {}).get("raster"))
    _write_tables("canopy_gap", levels, gpkg_out, tables)
    io.write_json(summary_out, summary)
    for level, s in summary["levels"].items():
        log.info("%s: target %s %%, planting %s ha of %s ha needed, %s t C added at %.2f t C/ha (%s)", level,
                 s["canopy_target_pct"], s["totals"]["planting_ha"], s["totals"]["planting_needed_ha"],
                 s["totals"]["carbon_added_t"], density.t_ha, density.source)
    for note in summary["not_computed"]:
        log.warning("canopy gap: not computed: %s", note)
    return summary


def run_zoning_importance(zones: Paths, coverage: Paths, grid_json: str | Path, rasters: Mapping[str, str | Path],
                          fractions: str | Path, raster_out: str | Path, style_out: str | Path, gpkg_out: Paths,
                          summary_out: str | Path, *, levels: Sequence[str], types: Sequence[str],
                          zoning: Mapping[str, Any], typed_land: bool, chm: bool, compress: str = "zstd",
                          size_px: int | None = None) -> dict[str, Any]:
    """Rule zoning_importance: carbon-sink importance classes by the weighted overlay of ``zoning.importance``.

    ``rasters`` maps each built-in layer (vegetation_class, canopy, height, ndvi, fvc, carbon) to the year's
    raster (band 1 read); each user-raster factor is read from its own path onto the grid ``grid_json``;
    ``fractions`` holds one band per type of ``types``. Writes the class raster (uint8, 255 no class, class
    names, weights and breaks in its tags) to ``raster_out`` with its QGIS style ``style_out``, one class table
    per level to ``gpkg_out`` (with CSV twins) and the summary (returned) to ``summary_out``. With ``size_px``
    (a tiled run) it works tile by tile as :func:`run_zoning_canopy_gap` does, the raster written a row of
    tiles at a time."""
    grid = Grid.read(grid_json)
    imp = zoning["importance"]
    factors = [Factor.from_config(f) for f in imp["factors"]]
    used, weights, dropped = importance_setup(factors, typed_land=typed_land, chm=chm)
    zone_layers = [io.read_vector(f) for f in zones]
    sums, stats = None, None
    with io.raster_writer(raster_out, grid, dtype="uint8", band_names=["importance_class"], compress=compress,
                          nodata=255) as writer:
        out = PieceWriter(writer, grid, 1, "uint8", 255)
        for piece in _pieces(grid, levels, coverage, size_px):
            pg = piece.grid(grid)
            layers = {name: piece.read(path, bands=1) for name, path in rasters.items()}
            layers |= {f.name: raster_on_grid(f.path, f.band, pg, categorical=bool(f.classes)) for f in factors if f.path}
            frac = piece.read(fractions, bands=list(range(1, len(types) + 1)))
            classes, part, pstats = importance_piece(used, weights, imp["class_breaks"], layers, frac, types,
                                                     piece.matrices)
            out.put(piece.tile, classes)
            sums, stats = _add_level_sums(sums, part), add_pixel_stats(stats, pstats)
        tags, tables, summary = importance_finish(used, weights, dropped, imp["class_breaks"], sums, stats,
                                                  levels=levels, zones=zone_layers, grid=grid)
        writer.update_tags(**tags)
    io.write_text(style_out, classed_raster_qml([(c, f"{zh} {en}", IMPORTANCE_COLOURS[c])
                                                 for c, (_, zh, en) in IMPORTANCE_CLASSES.items()]))
    _write_tables("importance", levels, gpkg_out, tables)
    io.write_json(summary_out, summary)
    for name, why in summary["dropped_factors"].items():
        log.warning("importance: factor %s left out: %s; weights renormalised over the others", name, why)
    log.info("importance classes (pixels): %s; weights %s", summary["pixels"],
             {f["name"]: round(f["weight_normalised"], 4) for f in summary["factors"]})
    return summary


def excluded_source(specs: Mapping[str, Mapping[str, Any] | None], grid: Grid,
                    ) -> Callable[[Grid, Mapping[str, np.ndarray | None]], np.ndarray | None]:
    """A function giving, for ``grid`` or a sub-grid and the mask layers' shares there, the share of each pixel
    taken out by the given layers together (None when none is given): all polygon layers dissolved together
    (exact, read and dissolved once, here), then the larger share with each raster mask."""
    polygons = [io.read_vector(s["path"], layer=s.get("layer")).to_crs(grid.crs).geometry
                for s in specs.values() if s and s.get("path")]
    parts = polygon_parts([g for gs in polygons for g in gs]) if polygons else None
    rasters = [n for n, s in specs.items() if s and s.get("raster")]

    def excluded(g: Grid, shares: Mapping[str, np.ndarray | None]) -> np.ndarray | None:
        layers = [polygon_share(parts, g, dissolved=True)] if parts is not None else []
        layers += [shares[n] for n in rasters]
        return union_share(layers) if layers else None

    return excluded


def excluded_share(specs: Mapping[str, Mapping[str, Any] | None], shares: Mapping[str, np.ndarray | None],
                   grid: Grid) -> np.ndarray | None:
    """The share of each pixel taken out by the given mask layers together (None when none is given): all
    polygon layers dissolved together (exact), then the larger share with each raster mask."""
    return excluded_source(specs, grid)(grid, shares)


def run_zoning_potential(zones: Paths, coverage: Paths, grid_json: str | Path, carbon: str | Path,
                         coefficients: str | Path, raster_out: str | Path, style_out: str | Path, gpkg_out: Paths,
                         summary_out: str | Path, *, levels: Sequence[str], zoning: Mapping[str, Any],
                         greenspace: Mapping[str, Any] | None, compress: str = "zstd",
                         size_px: int | None = None) -> dict[str, Any]:
    """Rule zoning_potential: the carbon-sink potential space, the land left once the ``zoning`` section's
    construction, cropland and red_line layers (those given) are taken out.

    Reads the zones with their ``coverage`` on the grid ``grid_json``, the year's ``carbon`` (band 1) and the
    coefficient table ``coefficients`` (the density's default); writes the potential raster (uint8 1/0, 255
    unknown) to ``raster_out`` with its style ``style_out``, one table per level to ``gpkg_out`` (with CSV
    twins) and the summary (returned) to ``summary_out``. With ``size_px`` (a tiled run) it works tile by tile
    as :func:`run_zoning_canopy_gap` does, the raster written a row of tiles at a time."""
    grid = Grid.read(grid_json)
    density = _density(zoning, greenspace, "potential_density_t_ha", coefficients)
    specs = {name: zoning.get(name) for name in MASK_LAYERS}
    share_of = {name: layer_source(spec, grid, f"zoning.{name}") for name, spec in specs.items() if spec}
    excluded_of = excluded_source(specs, grid)
    sources = {n: s.get("path") or s.get("raster") for n, s in specs.items() if s}
    given = [n for n in MASK_LAYERS if n in share_of]
    zone_layers = [io.read_vector(f) for f in zones]
    sums = None
    tags = {"value_1": "potential space (at least half the pixel)", "value_0": "not potential space",
            "not_subtracted": ", ".join(n for n in MASK_LAYERS if n not in given) or "none"}
    with io.raster_writer(raster_out, grid, dtype="uint8", band_names=["potential_space"], compress=compress,
                          nodata=255, tags=tags) as writer:
        out = PieceWriter(writer, grid, 1, "uint8", 255)
        for piece in _pieces(grid, levels, coverage, size_px):
            pg = piece.grid(grid)
            shares = {name: share_of[name](pg) if name in share_of else None for name in MASK_LAYERS}
            raster, part = potential_piece(shares, excluded_of(pg, shares), piece.read(carbon, bands=1), density,
                                           piece.matrices, pg.shape)
            out.put(piece.tile, raster)
            sums = _add_level_sums(sums, part)
    tables, summary = potential_finish(given, sums, density, levels=levels, zones=zone_layers, grid=grid,
                                       sources=sources)
    io.write_text(style_out, classed_raster_qml(POTENTIAL_STYLE))
    _write_tables("potential", levels, gpkg_out, tables)
    io.write_json(summary_out, summary)
    if summary["not_subtracted"]:
        log.warning("potential space: not subtracted (no layer given): %s", ", ".join(summary["not_subtracted"]))
    first = summary["levels"][levels[0]]["totals"]
    log.info("%s: potential space %s ha, potential added stock %s t C at %.2f t C/ha (%s)", levels[0],
             first["potential_ha"], first["potential_added_t"], density.t_ha, density.source)
    return summary
