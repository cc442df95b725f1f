"""Vegetation: NDVI, fractional vegetation cover, vegetation and tree-canopy masks.

* NDVI = (NIR − Red) / (NIR + Red); a zero or missing denominator gives NaN, never 0.
* FVC, dimidiate pixel model: (NDVI − NDVIsoil) / (NDVIveg − NDVIsoil) clipped to 0–1, with the
  endmembers at the 5th / 95th NDVI percentiles of the scene unless given.
* Vegetation where NDVI ≥ 0.2; tree canopy where NDVI ≥ 0.5 (a starting value to calibrate
  against a canopy height model or field data). Masks are 0/1 floats, NaN where NDVI is NaN,
  so a zone mean of the mask is its cover fraction.
* Structure classes: grass (vegetation ≤ NDVI < 0.35), shrub (0.35 ≤ NDVI < 0.5) and tree
  (NDVI ≥ 0.5). NDVI separates them only roughly; the thresholds are starting values to
  calibrate, and a canopy height model, where available, is the better source.
"""

from __future__ import annotations

import numpy as np

from greensink.errors import InputDataError


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Normalized difference vegetation index, float32; NaN where red + nir is 0 or missing."""
    red = np.asarray(red, dtype=np.float64)
    nir = np.asarray(nir, dtype=np.float64)
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (nir - red) / total
    return np.where(total == 0, np.nan, out).astype(np.float32)


def fvc_endmembers(ndvi_values: np.ndarray, percentiles: tuple[float, float] = (5, 95),
                   ndvi_soil: float | None = None, ndvi_full: float | None = None) -> tuple[float, float]:
    """(NDVIsoil, NDVIveg): given values, else the percentiles of the finite NDVI values."""
    finite = ndvi_values[np.isfinite(ndvi_values)]
    if finite.size == 0 and (ndvi_soil is None or ndvi_full is None):
        raise InputDataError("NDVI has no valid pixel, so FVC endmembers cannot be estimated. Check the composite.")
    lo = float(np.percentile(finite, percentiles[0])) if ndvi_soil is None else float(ndvi_soil)
    hi = float(np.percentile(finite, percentiles[1])) if ndvi_full is None else float(ndvi_full)
    if not hi > lo:
        raise InputDataError(
            f"FVC endmembers must satisfy NDVIveg > NDVIsoil. Got soil {lo:.3f}, vegetation {hi:.3f}. "
            "Set vegetation.ndvi_soil / vegetation.ndvi_full or widen vegetation.fvc_percentiles."
        )
    return lo, hi


def fvc(ndvi_values: np.ndarray, ndvi_soil: float, ndvi_full: float) -> np.ndarray:
    """Fractional vegetation cover 0–1 (dimidiate pixel model), NaN where NDVI is NaN."""
    out = (ndvi_values.astype(np.float64) - ndvi_soil) / (ndvi_full - ndvi_soil)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def threshold_mask(ndvi_values: np.ndarray, threshold: float) -> np.ndarray:
    """1.0 where NDVI ≥ threshold, 0.0 below, NaN where NDVI is NaN (float32)."""
    out = (ndvi_values >= threshold).astype(np.float32)
    out[~np.isfinite(ndvi_values)] = np.nan
    return out


CLASS_NONE, CLASS_GRASS, CLASS_SHRUB, CLASS_TREE = 0, 1, 2, 3
CLASS_NAMES = {CLASS_NONE: "not vegetated", CLASS_GRASS: "grass", CLASS_SHRUB: "shrub", CLASS_TREE: "tree"}


def structure_classes(ndvi_values: np.ndarray, ndvi_vegetation: float, ndvi_shrub: float, ndvi_tree: float) -> np.ndarray:
    """Vegetation structure class codes from NDVI thresholds, float32 like every raster product:
    0 not vegetated (< vegetation), 1 grass (vegetation ≤ NDVI < shrub), 2 shrub (shrub ≤ NDVI < tree),
    3 tree (≥ tree), NaN where NDVI is NaN."""
    if not ndvi_vegetation <= ndvi_shrub <= ndvi_tree:
        raise InputDataError(
            f"NDVI thresholds must satisfy vegetation ≤ shrub ≤ tree. Got {ndvi_vegetation}, {ndvi_shrub}, {ndvi_tree}. "
            "Fix vegetation.ndvi_vegetation / ndvi_shrub / ndvi_tree."
        )
    out = np.zeros(ndvi_values.shape, dtype=np.float32)
    out[ndvi_values >= ndvi_vegetation] = CLASS_GRASS
    out[ndvi_values >= ndvi_shrub] = CLASS_SHRUB
    out[ndvi_values >= ndvi_tree] = CLASS_TREE
    out[~np.isfinite(ndvi_values)] = np.nan
    return out


def class_mask(classes: np.ndarray, codes: tuple[int, ...]) -> np.ndarray:
    """float32 1.0 where the class is one of ``codes``, 0.0 elsewhere, NaN where no data."""
    out = np.isin(classes, codes).astype(np.float32)
    out[~np.isfinite(classes)] = np.nan
    return out
