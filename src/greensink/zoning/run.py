"""One function per zoning rule: the year's arrays, the zones and the settings in; the raster, the zone
tables per level and a JSON summary (what a report reads) out. No file is touched here: the rule
scripts read and write through :mod:`greensink.io`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp

from greensink.grid import Grid
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
from greensink.zoning.potential import not_subtracted, potential_raster, potential_share, potential_table
from greensink.zoning.settings import MASK_LAYERS, Density, Factor, canopy_target


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
