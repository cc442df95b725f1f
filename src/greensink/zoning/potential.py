"""Carbon-sink potential space (碳汇潜力空间): the land left for green space once construction land
(建设用地), cropland (耕地) and the ecological red line (生态保护红线) are taken out.

Per pixel, potential = 1 − excluded, where excluded is the share of the pixel in any given layer
(:func:`greensink.zoning.layers.union_share`). A layer not given is not subtracted, and the outputs
name it. The potential added stock of a zone is Σ coverage × potential × max(D − c, 0) × pixel area:
the land of the potential space brought to the density D (zoning.potential_density_t_ha) where its
carbon density c now (carbon.tif band 1) is lower.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from greensink.coverage import zonal_sum
from greensink.units import m2_to_ha
from greensink.zoning.settings import MASK_LAYERS, Density

AREA_EPS_HA = 1e-9
RASTER_NODATA = 255


def potential_share(excluded: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """1 − excluded per pixel (float32, NaN where a layer is unknown); all 1 when no layer is given."""
    if excluded is None:
        return np.ones(shape, dtype=np.float32)
    return (1.0 - np.asarray(excluded, dtype=np.float32)).astype(np.float32)


def potential_raster(potential: np.ndarray) -> np.ndarray:
    """uint8 1 where at least half the pixel is potential space, 0 where less, 255 where unknown."""
    p = np.asarray(potential, dtype=np.float32)
    out = np.full(p.shape, RASTER_NODATA, dtype=np.uint8)
    ok = np.isfinite(p)
    out[ok] = (p[ok] >= 0.5).astype(np.uint8)
    return out


def not_subtracted(shares: Mapping[str, np.ndarray | None]) -> list[str]:
    """The mask layers (:data:`MASK_LAYERS`) not given, in that order."""
    return [name for name in MASK_LAYERS if shares.get(name) is None]


def potential_sums(matrix: sp.csr_matrix, shares: Mapping[str, np.ndarray | None], potential: np.ndarray,
                   carbon_t_ha: np.ndarray, density: Density) -> dict[str, np.ndarray]:
    """The zone sums (pixel units, float64 per zone) of :func:`potential_table` over the pixels of ``matrix``'s
    columns; additive over disjoint parts of the grid (:func:`greensink.zoning.canopy_gap.add_sums`)."""
    out = {"grid": np.asarray(matrix.sum(axis=1)).ravel()}
    for name in MASK_LAYERS:
        share = shares.get(name)
        if share is not None:
            out[f"{name}_unknown"] = zonal_sum(matrix, (~np.isfinite(share)).astype(np.float32))
            out[name] = zonal_sum(matrix, share)
    pot = np.asarray(potential, dtype=np.float32)
    out["potential_unknown"] = zonal_sum(matrix, (~np.isfinite(pot)).astype(np.float32))
    out["potential"] = zonal_sum(matrix, pot)
    carbon = np.asarray(carbon_t_ha, dtype=np.float32)
    on_pot = np.nan_to_num(pot) > 0
    out["carbon_unknown"] = zonal_sum(matrix, (on_pot & ~np.isfinite(carbon)).astype(np.float32))
    out["carbon_now"] = zonal_sum(matrix, (np.nan_to_num(pot) * carbon).astype(np.float32))
    out["carbon_added"] = zonal_sum(matrix, (np.nan_to_num(pot) * np.maximum(density.t_ha - carbon, 0.0)).astype(np.float32))
    return out


def potential_table(zones: gpd.GeoDataFrame, matrix: sp.csr_matrix, pixel_area_ha: float,
                    shares: Mapping[str, np.ndarray | None], potential: np.ndarray, carbon_t_ha: np.ndarray,
                    density: Density) -> gpd.GeoDataFrame:
    """The potential-space table of one level (columns in docs/outputs.md). ``shares`` maps each of
    :data:`MASK_LAYERS` to its share of every pixel (None: not given); ``potential`` is :func:`potential_share`."""
    given = [n for n in MASK_LAYERS if shares.get(n) is not None]
    return potential_table_from_sums(zones, potential_sums(matrix, shares, potential, carbon_t_ha, density),
                                     pixel_area_ha, given, density)


def potential_table_from_sums(zones: gpd.GeoDataFrame, sums: Mapping[str, np.ndarray], pixel_area_ha: float,
                              given: list[str], density: Density) -> gpd.GeoDataFrame:
    """:func:`potential_table` from its zone sums (:func:`potential_sums` of the whole grid, or of its tiles
    added up); ``given`` the mask layers given."""
    pa = pixel_area_ha
    out = pd.DataFrame({k: zones[k].to_numpy() for k in ("zone_id", "parent_id", "level", "name") if k in zones})
    out["area_ha"] = m2_to_ha(np.asarray(zones.geometry.area, dtype=float))
    grid_ha = sums["grid"] * pa
    out["grid_area_ha"] = grid_ha
    for name in MASK_LAYERS:
        if name not in given:
            out[f"{name}_ha"] = np.nan
            continue
        unknown = sums[f"{name}_unknown"] * pa
        out[f"{name}_ha"] = np.where(unknown > AREA_EPS_HA, np.nan, sums[name] * pa)
    unknown = sums["potential_unknown"] * pa
    pot_ha = np.where(unknown > AREA_EPS_HA, np.nan, sums["potential"] * pa)
    out["excluded_ha"] = grid_ha - pot_ha
    out["potential_ha"] = pot_ha
    with np.errstate(divide="ignore", invalid="ignore"):
        out["potential_pct"] = np.where(grid_ha > AREA_EPS_HA, 100.0 * pot_ha / grid_ha, np.nan)
    missing = [n for n in MASK_LAYERS if n not in given]
    out["not_subtracted"] = ", ".join(missing) if missing else ""
    c_unknown = sums["carbon_unknown"] * pa
    now_t = sums["carbon_now"] * pa
    added_t = sums["carbon_added"] * pa
    bad = (c_unknown > AREA_EPS_HA) | ~np.isfinite(pot_ha)
    out["current_carbon_t"] = np.where(bad, np.nan, now_t)
    out["potential_density_t_ha"] = density.t_ha
    out["potential_stock_t"] = pot_ha * density.t_ha
    out["potential_added_t"] = np.where(bad, np.nan, added_t)
    out["density_source"] = density.source
    return gpd.GeoDataFrame(out, geometry=zones.geometry.values, crs=zones.crs)
