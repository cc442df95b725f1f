"""One function per zoning rule, in two layers:

* ``canopy_gap_run``, ``importance_run``, ``potential_run``: the year's arrays, the zones and the settings
  in; the raster, the zone tables per level and a JSON summary (what a report reads) out; no file touched;
* ``run_zoning_canopy_gap``, ``run_zoning_importance``, ``run_zoning_potential`` (what the rule scripts
  call, one each): the rule's input paths, output paths and params in; they read the files, resolve the
  density and the user layers, call the function above and write the outputs through :mod:`greensink.io`."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp

from greensink import io
from greensink.grid import Grid
from greensink.styles import classed_raster_qml
from greensink.tiers import DEFAULT_TABLE, default_table
from greensink.zoning.canopy_gap import gap_table
from greensink.zoning.importance import (
    IMPORTANCE_CLASSES,
    class_table,
    class_tags,
    importance_classes,
    normalised_weights,
    reclassify,
    type_scores,
    weighted_score,
)
from greensink.zoning.layers import layer_share, polygon_share, raster_on_grid, union_share
from greensink.zoning.potential import not_subtracted, potential_raster, potential_share, potential_table
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


def canopy_gap_run(levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame], matrices: Sequence[sp.csr_matrix], grid: Grid,
                   classes: np.ndarray, canopy: np.ndarray, carbon_t_ha: np.ndarray, open_share: np.ndarray | None,
                   target_setting: float | Mapping[str, float] | None, density: Density,
                   open_land: str | None = None) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """Canopy-gap tables per level and their summary."""
    tables, per_level = {}, {}
    for level, z, m in zip(levels, zones, matrices, strict=True):
        target = canopy_target(target_setting, level)
        t = gap_table(z, m, grid.pixel_area_ha, classes, canopy, carbon_t_ha, open_share, target, density)
        tables[level] = t
        per_level[level] = {"canopy_target_pct": target, "zones": len(t),
                            "zones_by_status": {str(k): int(v) for k, v in t["gap_status"].value_counts().sort_index().items()},
                            "totals": level_totals(t, ["area_ha", "plantable_vegetated_ha", "plantable_open_ha", "plantable_ha",
                                                       "planting_needed_ha", "planting_ha", "planting_shortfall_ha",
                                                       "carbon_added_t", "carbon_added_net_t"])}
    summary = {"product": "canopy_gap", "tree_density_t_ha": density.t_ha, "density_source": density.source,
               "open_land": open_land or None,
               "not_computed": [] if open_share is not None else
               ["plantable open land (no zoning.open_land layer): plantable_open_ha and plantable_ha are NaN; "
                "planting is capped by the vegetated land without trees alone"],
               "levels": per_level}
    return tables, summary


def drop_reason(factor: Factor, chm: bool, typed_land: bool) -> str | None:
    """Why a factor cannot be used in this run (None: it can)."""
    if factor.layer == "height" and not chm:
        return "no canopy height model (vegetation.chm): height.tif is empty"
    if factor.layer == "greenspace_type" and not typed_land:
        return "no green-space types (greenspace is not set)"
    return None


def importance_run(factors: Sequence[Factor], class_breaks: Sequence[float], layers: Mapping[str, np.ndarray],
                   fractions: np.ndarray, types: Sequence[str], *, typed_land: bool, chm: bool,
                   levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame], matrices: Sequence[sp.csr_matrix],
                   grid: Grid) -> tuple[np.ndarray, dict[str, str], dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """Importance classes (uint8), their GeoTIFF tags, the class tables per level and the summary.

    ``layers`` holds the built-in layers on the grid (vegetation_class, canopy, height, ndvi, fvc, carbon)
    and each user-raster factor's values under the factor's name. Factors that cannot be used in the run
    (:func:`drop_reason`) are left out and the weights renormalised over the rest; every observed pixel
    (vegetation_class not NaN) outside a factor's values keeps no class (255)."""
    dropped = {f.name: why for f in factors if (why := drop_reason(f, chm, typed_land))}
    used = [f for f in factors if f.name not in dropped]
    weights = normalised_weights(used)
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
    tags = class_tags(weights, used, class_breaks, dropped)
    tables, per_level = {}, {}
    for level, z, m in zip(levels, zones, matrices, strict=True):
        t = class_table(z, m, classes, layers["carbon"], observed, grid.pixel_area_ha)
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
               "dropped_factors": dropped,
               "pixels": {str(c): int((classes == c).sum()) for c in (*IMPORTANCE_CLASSES, 255)},
               "score_range": [_finite(float(np.nanmin(score))) if np.isfinite(score).any() else None,
                               _finite(float(np.nanmax(score))) if np.isfinite(score).any() else None],
               "levels": per_level}
    return classes, tags, tables, summary


def potential_run(shares: Mapping[str, np.ndarray | None], excluded: np.ndarray | None, carbon_t_ha: np.ndarray,
                  density: Density, *, levels: Sequence[str], zones: Sequence[gpd.GeoDataFrame],
                  matrices: Sequence[sp.csr_matrix], grid: Grid, sources: Mapping[str, str] | None = None,
                  ) -> tuple[np.ndarray, dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """The potential-space raster (uint8 1/0, 255 unknown), its tables per level and the summary.
    ``excluded`` is the union share of the given layers (None when none is given)."""
    pot = potential_share(excluded, grid.shape)
    raster = potential_raster(pot)
    tables, per_level = {}, {}
    for level, z, m in zip(levels, zones, matrices, strict=True):
        t = potential_table(z, m, grid.pixel_area_ha, shares, pot, carbon_t_ha, density)
        tables[level] = t
        per_level[level] = {"zones": len(t), "totals": level_totals(t, ["area_ha", "grid_area_ha", *[f"{n}_ha" for n in MASK_LAYERS],
                                                                          "excluded_ha", "potential_ha", "current_carbon_t",
                                                                          "potential_stock_t", "potential_added_t"])}
    summary = {"product": "potential", "subtracted": [n for n in MASK_LAYERS if shares.get(n) is not None],
               "not_subtracted": not_subtracted(shares), "layers": dict(sources or {}),
               "potential_density_t_ha": density.t_ha, "density_source": density.source,
               "raster": {"1": "potential space (≥ half the pixel)", "0": "not potential space", "255": "unknown"},
               "levels": per_level}
    return raster, tables, summary


# ----------------------------------------------------------------------------- rule runners (files in, files out)

Paths = Sequence[str | Path]


def _zone_layers(zones: Paths, coverage: Paths) -> tuple[list[gpd.GeoDataFrame], list[sp.csr_matrix]]:
    return [io.read_vector(f) for f in zones], [io.read_sparse(f) for f in coverage]


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
                          greenspace: Mapping[str, Any] | None) -> dict[str, Any]:
    """Rule zoning_canopy_gap: canopy gap and plantable space per zone of each of ``levels``.

    Reads the zone layers ``zones`` with their ``coverage`` matrices on the grid ``grid_json``, the year's
    vegetation ``classes``, ``canopy`` and ``carbon`` (band 1) rasters, the coefficient table ``coefficients``
    (the tree density's default, :func:`greensink.zoning.settings.zoning_density`) and the ``zoning.open_land``
    layer if the ``zoning`` config section gives one; writes one GeoPackage (with its CSV twin) per level to
    ``gpkg_out`` and the summary (returned) to ``summary_out``."""
    grid = Grid.read(grid_json)
    density = _density(zoning, greenspace, "tree_density_t_ha", coefficients)
    open_land = zoning.get("open_land")
    open_share = layer_share(open_land, grid, "zoning.open_land") if open_land else None
    zone_layers, matrices = _zone_layers(zones, coverage)
    tables, summary = canopy_gap_run(levels, zone_layers, matrices, grid, io.read_raster(classes),
                                     io.read_raster(canopy), io.read_raster(carbon, bands=1), open_share,
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
                          ) -> dict[str, Any]:
    """Rule zoning_importance: carbon-sink importance classes by the weighted overlay of ``zoning.importance``.

    ``rasters`` maps each built-in layer (vegetation_class, canopy, height, ndvi, fvc, carbon) to the year's
    raster (band 1 read); each user-raster factor is read from its own path onto the grid ``grid_json``;
    ``fractions`` holds one band per type of ``types``. Writes the class raster (uint8, 255 no class, class
    names, weights and breaks in its tags) to ``raster_out`` with its QGIS style ``style_out``, one class table
    per level to ``gpkg_out`` (with CSV twins) and the summary (returned) to ``summary_out``."""
    grid = Grid.read(grid_json)
    imp = zoning["importance"]
    factors = [Factor.from_config(f) for f in imp["factors"]]
    layers = {name: io.read_raster(path, bands=1) for name, path in rasters.items()}
    layers |= {f.name: raster_on_grid(f.path, f.band, grid, categorical=bool(f.classes)) for f in factors if f.path}
    frac = io.read_raster(fractions, bands=list(range(1, len(types) + 1)))
    zone_layers, matrices = _zone_layers(zones, coverage)
    classes, tags, tables, summary = importance_run(factors, imp["class_breaks"], layers, frac, types,
                                                    typed_land=typed_land, chm=chm, levels=levels, zones=zone_layers,
                                                    matrices=matrices, grid=grid)
    io.write_raster(raster_out, classes, grid, band_names=["importance_class"], compress=compress, nodata=255, tags=tags)
    io.write_text(style_out, classed_raster_qml([(c, f"{zh} {en}", IMPORTANCE_COLOURS[c])
                                                 for c, (_, zh, en) in IMPORTANCE_CLASSES.items()]))
    _write_tables("importance", levels, gpkg_out, tables)
    io.write_json(summary_out, summary)
    for name, why in summary["dropped_factors"].items():
        log.warning("importance: factor %s left out: %s; weights renormalised over the others", name, why)
    log.info("importance classes (pixels): %s; weights %s", summary["pixels"],
             {f["name"]: round(f["weight_normalised"], 4) for f in summary["factors"]})
    return summary


def excluded_share(specs: Mapping[str, Mapping[str, Any] | None], shares: Mapping[str, np.ndarray | None],
                   grid: Grid) -> np.ndarray | None:
    """The share of each pixel taken out by the given mask layers together (None when none is given): all
    polygon layers dissolved together (exact), then the larger share with each raster mask."""
    polygons = [io.read_vector(s["path"], layer=s.get("layer")).to_crs(grid.crs).geometry
                for s in specs.values() if s and s.get("path")]
    parts = [polygon_share([g for gs in polygons for g in gs], grid)] if polygons else []
    parts += [shares[n] for n, s in specs.items() if s and s.get("raster")]
    return union_share(parts) if parts else None


def run_zoning_potential(zones: Paths, coverage: Paths, grid_json: str | Path, carbon: str | Path,
                         coefficients: str | Path, raster_out: str | Path, style_out: str | Path, gpkg_out: Paths,
                         summary_out: str | Path, *, levels: Sequence[str], zoning: Mapping[str, Any],
                         greenspace: Mapping[str, Any] | None, compress: str = "zstd") -> dict[str, Any]:
    """Rule zoning_potential: the carbon-sink potential space, the land left once the ``zoning`` section's
    construction, cropland and red_line layers (those given) are taken out.

    Reads the zones with their ``coverage`` on the grid ``grid_json``, the year's ``carbon`` (band 1) and the
    coefficient table ``coefficients`` (the density's default); writes the potential raster (uint8 1/0, 255
    unknown) to ``raster_out`` with its style ``style_out``, one table per level to ``gpkg_out`` (with CSV
    twins) and the summary (returned) to ``summary_out``."""
    grid = Grid.read(grid_json)
    density = _density(zoning, greenspace, "potential_density_t_ha", coefficients)
    specs = {name: zoning.get(name) for name in MASK_LAYERS}
    shares = {name: layer_share(spec, grid, f"zoning.{name}") if spec else None for name, spec in specs.items()}
    sources = {n: s.get("path") or s.get("raster") for n, s in specs.items() if s}
    zone_layers, matrices = _zone_layers(zones, coverage)
    raster, tables, summary = potential_run(shares, excluded_share(specs, shares, grid), io.read_raster(carbon, bands=1),
                                            density, levels=levels, zones=zone_layers, matrices=matrices, grid=grid,
                                            sources=sources)
    io.write_raster(raster_out, raster, grid, band_names=["potential_space"], compress=compress, nodata=255,
                    tags={"value_1": "potential space (at least half the pixel)", "value_0": "not potential space",
                          "not_subtracted": ", ".join(summary["not_subtracted"]) or "none"})
    io.write_text(style_out, classed_raster_qml(POTENTIAL_STYLE))
    _write_tables("potential", levels, gpkg_out, tables)
    io.write_json(summary_out, summary)
    if summary["not_subtracted"]:
        log.warning("potential space: not subtracted (no layer given): %s", ", ".join(summary["not_subtracted"]))
    first = summary["levels"][levels[0]]["totals"]
    log.info("%s: potential space %s ha, potential added stock %s t C at %.2f t C/ha (%s)", levels[0],
             first["potential_ha"], first["potential_added_t"], density.t_ha, density.source)
    return summary
