"""Carbon-sink importance zoning (碳汇重要性分区): a weighted overlay of factor layers.

Each factor layer is reclassified to scores (:func:`reclassify`), the scores are averaged with the
factors' weights normalised to sum to 1 (:func:`normalised_weights`, :func:`weighted_score`), and the
score is cut into three classes by two score breaks (:func:`importance_classes`): 极重要 extremely
important (3) at or above the upper break, 重要 important (2) at or above the lower, 一般 general (1)
below. A pixel where a factor has no value (and the factor no ``nodata_score``) has no class (255).
Per zone, the area and the carbon (carbon.tif band 1) of each class come from the exact coverage
matrix (:func:`class_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from greensink.coverage import zonal_sum
from greensink.units import m2_to_ha
from greensink.zoning.settings import NO_TYPE, Factor

CLASS_NODATA = 255
# class code -> (column key, 中文, English)
IMPORTANCE_CLASSES: dict[int, tuple[str, str, str]] = {
    3: ("extremely_important", "极重要", "extremely important"),
    2: ("important", "重要", "important"),
    1: ("general", "一般", "general"),
}
AREA_EPS_HA = 1e-9


def reclassify(values: np.ndarray, factor: Factor) -> np.ndarray:
    """float32 scores of a continuous or class layer: by ``factor.breaks``/``scores`` (NaN stays NaN)
    or by ``factor.classes`` (a value not listed has no score: NaN); then ``factor.nodata_score`` where
    the value is missing."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan, dtype=np.float32)
    finite = np.isfinite(v)
    if factor.breaks:
        idx = np.searchsorted(np.asarray(factor.breaks), v[finite], side="right")  # breaks[i-1] <= v < breaks[i] -> i
        out[finite] = np.asarray(factor.scores, dtype=np.float32)[idx]
    else:
        for key, score in factor.classes.items():
            try:
                code = float(key)
            except ValueError:
                continue  # type codes belong to greenspace_type (type_scores)
            out[finite & (v == code)] = score
    if factor.nodata_score is not None:
        out[np.isnan(out)] = factor.nodata_score
    return out


def type_scores(fractions: np.ndarray, types: Sequence[str], classes: Mapping[str, float]) -> np.ndarray:
    """Scores of the greenspace_type factor: Σ_t fraction_t × score_t + (1 − Σ_t fraction_t) × score of
    ``none``, so a pixel half park and half untyped land scores halfway. A type without a score in
    ``classes`` takes the ``none`` score."""
    fr = np.asarray(fractions, dtype=np.float32)
    none = float(classes[NO_TYPE])
    total = fr.sum(axis=0)
    out = (1.0 - np.clip(total, 0.0, 1.0)) * none
    for k, t in enumerate(types):
        out = out + fr[k] * float(classes.get(t, none))
    return out.astype(np.float32)


def normalised_weights(factors: Sequence[Factor]) -> dict[str, float]:
    """Each factor's weight over the sum of the weights of ``factors`` (they sum to 1)."""
    total = sum(f.weight for f in factors)
    if not factors or total <= 0:
        raise ValueError("The importance overlay needs at least one factor with a weight > 0.")
    return {f.name: f.weight / total for f in factors}


def weighted_score(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Σ weight × score over the factors (weights normalised, :func:`normalised_weights`); NaN where any
    factor's score is NaN."""
    out = None
    for name, w in weights.items():
        term = np.asarray(scores[name], dtype=np.float64) * w
        out = term if out is None else out + term
    return np.asarray(out, dtype=np.float32)


def importance_classes(score: np.ndarray, class_breaks: Sequence[float]) -> np.ndarray:
    """uint8 classes of a score: 3 (极重要) where score ≥ class_breaks[1], 2 (重要) where
    class_breaks[0] ≤ score < class_breaks[1], 1 (一般) below, 255 where the score is NaN."""
    lo, hi = float(class_breaks[0]), float(class_breaks[1])
    s = np.asarray(score, dtype=np.float64)
    out = np.full(s.shape, CLASS_NODATA, dtype=np.uint8)
    ok = np.isfinite(s)
    out[ok] = 1
    out[ok & (s >= lo)] = 2
    out[ok & (s >= hi)] = 3
    return out


def class_sums(matrix: sp.csr_matrix, classes: np.ndarray, carbon_t_ha: np.ndarray,
               observed: np.ndarray) -> dict[str, np.ndarray]:
    """The zone sums (pixel units, float64 per zone) of :func:`class_table` over the pixels of ``matrix``'s
    columns; additive over disjoint parts of the grid (:func:`greensink.zoning.canopy_gap.add_sums`)."""
    cls = np.asarray(classes)
    carbon = np.asarray(carbon_t_ha, dtype=np.float32)
    obs = np.asarray(observed, dtype=bool)
    out = {"observed": zonal_sum(matrix, obs.astype(np.float32)),
           "classified": zonal_sum(matrix, (cls != CLASS_NODATA).astype(np.float32)),
           "unclassified": zonal_sum(matrix, (obs & (cls == CLASS_NODATA)).astype(np.float32))}
    for code, (key, _, _) in IMPORTANCE_CLASSES.items():
        in_class = (cls == code).astype(np.float32)
        out[f"area_{key}"] = zonal_sum(matrix, in_class)
        out[f"unknown_{key}"] = zonal_sum(matrix, (in_class > 0) & ~np.isfinite(carbon))
        out[f"carbon_{key}"] = zonal_sum(matrix, np.where(in_class > 0, carbon, 0.0).astype(np.float32))
    return out


def class_table(zones: gpd.GeoDataFrame, matrix: sp.csr_matrix, classes: np.ndarray, carbon_t_ha: np.ndarray,
                observed: np.ndarray, pixel_area_ha: float) -> gpd.GeoDataFrame:
    """Per zone: ``observed_ha`` (pixels with imagery, ``observed`` True), ``classified_ha`` and
    ``unclassified_ha`` (observed land without a class: a factor had no value), and per class
    ``area_ha_<class>``, ``share_pct_<class>`` (of the classified land) and ``carbon_t_<class>``
    (Σ coverage × carbon density × pixel area, t C; NaN where the class holds a pixel of unknown carbon)."""
    return class_table_from_sums(zones, class_sums(matrix, classes, carbon_t_ha, observed), pixel_area_ha)


def class_table_from_sums(zones: gpd.GeoDataFrame, sums: dict[str, np.ndarray], pixel_area_ha: float) -> gpd.GeoDataFrame:
    """:func:`class_table` from its zone sums (:func:`class_sums` of the whole grid, or of its tiles added up)."""
    out = pd.DataFrame({k: zones[k].to_numpy() for k in ("zone_id", "parent_id", "level", "name") if k in zones})
    out["area_ha"] = m2_to_ha(np.asarray(zones.geometry.area, dtype=float))
    out["observed_ha"] = sums["observed"] * pixel_area_ha
    out["classified_ha"] = sums["classified"] * pixel_area_ha
    out["unclassified_ha"] = sums["unclassified"] * pixel_area_ha
    for key, _, _ in IMPORTANCE_CLASSES.values():
        area = sums[f"area_{key}"] * pixel_area_ha
        unknown = sums[f"unknown_{key}"] * pixel_area_ha
        carbon_t = sums[f"carbon_{key}"] * pixel_area_ha
        out[f"area_ha_{key}"] = area
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"share_pct_{key}"] = np.where(out["classified_ha"] > AREA_EPS_HA, 100.0 * area / out["classified_ha"], np.nan)
        out[f"carbon_t_{key}"] = np.where(unknown > AREA_EPS_HA, np.nan, carbon_t)
    return gpd.GeoDataFrame(out, geometry=zones.geometry.values, crs=zones.crs)


def class_tags(weights: Mapping[str, float], factors: Sequence[Factor], class_breaks: Sequence[float],
               dropped: Mapping[str, str]) -> dict[str, str]:
    """GeoTIFF tags of importance.tif: class names, the normalised weights, the breaks, the dropped factors."""
    tags = {f"class_{code}": f"{zh} {en}" for code, (_, zh, en) in IMPORTANCE_CLASSES.items()}
    tags["class_255"] = "no class (unobserved, or a factor without a value)"
    tags["class_breaks"] = f"{class_breaks[0]:g}, {class_breaks[1]:g} (score ≥ first: 重要; ≥ second: 极重要)"
    for f in factors:
        tags[f"weight_{f.name}"] = f"{weights[f.name]:.6g} ({f.source})"
    for name, why in dropped.items():
        tags[f"dropped_{name}"] = why
    return tags
