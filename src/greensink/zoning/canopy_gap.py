"""Canopy gap and plantable space (树冠覆盖缺口与可种植空间) per zone.

Per pixel, the plantable share is the vegetated land without tree canopy, plus open land (neither
built nor water, from a user layer) where the pixel is not vegetated:

    plantable = veg × (1 − canopy) + (1 − veg) × open

with veg 1 where the structure class is grass, shrub or tree (vegetation_class.tif ≥ 1), canopy the
tree-canopy fraction (canopy.tif) and open the share of the pixel in the open-land layer. Without an
open-land layer that part is not computed (NaN, never 0) and only the vegetated part is known.

Per zone, with canopy cover c % (the coverage-weighted mean canopy fraction over observed pixels, as in
the zone tables) and target T %, the gap is max(T − c, 0) % of the zone's area: the hectares of canopy
to add. Planting is capped by the plantable land; where the plantable land cannot close the gap the
zone is flagged. Carbon added = planted ha × the mature density D (t C per ha of canopy land), gross,
and net of the carbon the plantable land holds now (its mean density from carbon.tif).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from greensink.coverage import zonal_covered, zonal_sum
from greensink.units import m2_to_ha
from greensink.zoning.settings import Density

AREA_EPS_HA = 1e-9
# gap_status values (docs/outputs.md)
MET, CLOSABLE, SHORT, SHORT_OPEN_UNKNOWN, UNKNOWN, NO_TARGET = (
    "target met", "closable", "not closable: plantable land short",
    "not closable on vegetated land (open land not computed)", "unknown: no observation", "no target")


def plantable_shares(classes: np.ndarray, canopy: np.ndarray, open_share: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(vegetated share without canopy, open share on unvegetated land) per pixel, float32, NaN where the
    pixel is unobserved (class NaN); the second is None without an open-land layer."""
    cls = np.asarray(classes, dtype=np.float32)
    seen = np.isfinite(cls)
    veg = (cls >= 1).astype(np.float32)
    can = np.clip(np.nan_to_num(np.asarray(canopy, dtype=np.float32)), 0.0, 1.0)
    vegetated = np.where(seen, veg * (1.0 - can), np.nan).astype(np.float32)
    if open_share is None:
        return vegetated, None
    open_ = np.where(seen, (1.0 - veg) * np.clip(np.asarray(open_share, dtype=np.float32), 0.0, 1.0), np.nan)
    return vegetated, open_.astype(np.float32)  # NaN where the open-land layer has no data


def gap_sums(matrix: sp.csr_matrix, classes: np.ndarray, canopy: np.ndarray, carbon_t_ha: np.ndarray,
             open_share: np.ndarray | None) -> dict[str, np.ndarray]:
    """The zone sums (pixel units, float64 per zone) a canopy-gap table is made of, over the pixels of
    ``matrix``'s columns: additive over disjoint parts of the grid (:func:`add_sums`), so the sums of a tiled
    run's tiles give the whole grid's. ``open_share`` None: no open-land layer (its sums left out)."""
    cls = np.asarray(classes, dtype=np.float32)
    seen = np.isfinite(cls)
    canopy_seen = np.where(np.isfinite(classes), canopy, np.nan).astype(np.float32)
    out = {"observed": zonal_sum(matrix, seen.astype(np.float32)),
           "canopy": zonal_sum(matrix, canopy_seen), "canopy_covered": zonal_covered(matrix, canopy_seen)}
    vegetated, open_ = plantable_shares(classes, canopy, open_share)
    out["vegetated"] = zonal_sum(matrix, vegetated)
    if open_ is not None:
        out["open_lacking"] = zonal_sum(matrix, (seen & ~np.isfinite(open_)).astype(np.float32))
        out["open"] = zonal_sum(matrix, open_)
    plantable_px = np.nan_to_num(vegetated) + (np.zeros_like(vegetated) if open_ is None else np.nan_to_num(open_))
    carbon = np.asarray(carbon_t_ha, dtype=np.float32)
    out["carbon_unknown"] = zonal_sum(matrix, ((plantable_px > 0) & ~np.isfinite(carbon)).astype(np.float32))
    out["carbon_now"] = zonal_sum(matrix, (plantable_px * carbon).astype(np.float32))
    out["plantable"] = zonal_sum(matrix, plantable_px.astype(np.float32))
    return out


def add_sums(total: dict[str, np.ndarray] | None, part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``total`` + ``part`` key by key (``part`` itself when ``total`` is None): the zone sums of two disjoint
    parts of the grid."""
    if total is None:
        return part
    for k, v in part.items():
        total[k] += v
    return total


def gap_table(zones: gpd.GeoDataFrame, matrix: sp.csr_matrix, pixel_area_ha: float, classes: np.ndarray,
              canopy: np.ndarray, carbon_t_ha: np.ndarray, open_share: np.ndarray | None, target_pct: float | None,
              density: Density) -> gpd.GeoDataFrame:
    """The canopy-gap table of one level (columns in docs/outputs.md)."""
    return gap_table_from_sums(zones, gap_sums(matrix, classes, canopy, carbon_t_ha, open_share), pixel_area_ha,
                               open_share is not None, target_pct, density)


def gap_table_from_sums(zones: gpd.GeoDataFrame, sums: dict[str, np.ndarray], pixel_area_ha: float, open_given: bool,
                        target_pct: float | None, density: Density) -> gpd.GeoDataFrame:
    """The canopy-gap table of one level from its zone sums (:func:`gap_sums` of the whole grid, or of its
    tiles added up); ``open_given``: an open-land layer was given."""
    pa = pixel_area_ha
    area_ha = m2_to_ha(np.asarray(zones.geometry.area, dtype=float))
    out = pd.DataFrame({k: zones[k].to_numpy() for k in ("zone_id", "parent_id", "level", "name") if k in zones})
    out["area_ha"] = area_ha
    observed_ha = sums["observed"] * pa
    out["observed_ha"] = observed_ha
    covered = sums["canopy_covered"]
    mean = np.full(covered.shape, np.nan, dtype=np.float64)
    has_data = covered > 0
    mean[has_data] = sums["canopy"][has_data] / covered[has_data]  # greensink.coverage.zonal_mean
    cover = 100.0 * mean
    out["canopy_cover_pct"] = cover
    out["canopy_area_ha"] = cover / 100.0 * observed_ha
    out["plantable_vegetated_ha"] = sums["vegetated"] * pa
    if not open_given:
        out["plantable_open_ha"] = np.nan
        open_unknown = np.ones(len(out), dtype=bool)
    else:
        lacking = sums["open_lacking"] * pa
        open_unknown = lacking > AREA_EPS_HA
        out["plantable_open_ha"] = np.where(open_unknown, np.nan, sums["open"] * pa)
    known_ha = out["plantable_vegetated_ha"].to_numpy() + np.nan_to_num(out["plantable_open_ha"].to_numpy())
    out["plantable_ha"] = np.where(open_unknown, np.nan, known_ha)
    out["plantable_known_ha"] = known_ha
    out["plantable_parts"] = ("vegetated land without trees only; open land not computed" if not open_given
                              else np.where(open_unknown, "vegetated land without trees; open land unknown (layer has no data here)",
                                            "vegetated land without trees + open land"))
    seen_any = observed_ha > AREA_EPS_HA
    target = np.nan if target_pct is None else float(target_pct)
    out["canopy_target_pct"] = target
    gap_pct = np.where(seen_any, np.maximum(target - cover, 0.0), np.nan)
    out["canopy_gap_pct"] = gap_pct
    needed = gap_pct / 100.0 * area_ha
    out["planting_needed_ha"] = needed
    planting = np.minimum(needed, known_ha)
    out["planting_ha"] = planting
    out["planting_shortfall_ha"] = needed - planting
    short = (needed - known_ha) > AREA_EPS_HA
    status = np.where(short, np.where(open_unknown, SHORT_OPEN_UNKNOWN, SHORT), CLOSABLE)
    status = np.where(needed <= AREA_EPS_HA, MET, status)
    status = np.where(np.isfinite(gap_pct), status, UNKNOWN)
    out["gap_status"] = status if target_pct is not None else NO_TARGET
    unknown_c = sums["carbon_unknown"] * pa
    now_t = sums["carbon_now"] * pa
    plant_px_ha = sums["plantable"] * pa
    with np.errstate(divide="ignore", invalid="ignore"):
        now_t_ha = np.where((plant_px_ha > AREA_EPS_HA) & (unknown_c <= AREA_EPS_HA), now_t / plant_px_ha, np.nan)
    out["plantable_carbon_t_ha"] = now_t_ha
    out["tree_density_t_ha"] = density.t_ha
    out["carbon_added_t"] = planting * density.t_ha
    out["carbon_added_net_t"] = np.where(planting > AREA_EPS_HA, planting * (density.t_ha - now_t_ha),
                                         np.where(np.isfinite(planting), 0.0, np.nan))
    out["carbon_to_close_gap_t"] = needed * density.t_ha
    out["density_source"] = density.source
    return gpd.GeoDataFrame(out, geometry=zones.geometry.values, crs=zones.crs)
