"""Green-space types: typed polygons -> per-type coverage fractions on the grid.

Types follow CJJ/T 85-2017 城市绿地分类标准 by default (G1 park 公园绿地, G2 protective 防护绿地,
G3 square 广场用地, XG attached 附属绿地, EG regional 区域绿地); other lists may be configured.
Each pixel gets the exact fraction of its area covered by each type's polygons, so a pixel
30 % G1 and 70 % XG contributes to both. Where polygons of different types overlap, the type
listed first in the configuration wins the overlap (reported), so fractions never add above 1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely

from greensink.coverage import coverage_raster
from greensink.errors import InputDataError
from greensink.grid import Grid

log = logging.getLogger(__name__)


def check_type_codes(gdf: gpd.GeoDataFrame, type_column: str, types: Sequence[str], where: str) -> None:
    """Raise if the type column is missing or holds a code that is not configured."""
    if type_column not in gdf.columns:
        raise InputDataError(f"{where}: column {type_column!r} not found (columns: {list(gdf.columns)}). Set greenspace.type_column.")
    codes = gdf[type_column].astype("string")
    unknown = codes[~codes.isin(list(types))]
    if len(unknown):
        sample = ", ".join(f"row {i + 1}: {v!r}" for i, v in list(zip(unknown.index, unknown, strict=True))[:5])
        raise InputDataError(
            f"{where}: unknown green-space type code(s) {sorted(set(unknown.fillna('<empty>')))} ({sample}). "
            f"Known codes: {list(types)}. Recode the polygons or add the codes to greenspace.types."
        )


def resolve_overlaps(gdf: gpd.GeoDataFrame, type_column: str, types: Sequence[str]) -> tuple[gpd.GeoDataFrame, dict]:
    """One row per type present (in the order of ``types``) with its polygons merged and the area
    already taken by earlier types removed; and per type the overlap given away, in ha."""
    taken = shapely.Polygon()
    rows, geoms, overlaps = [], [], {}
    codes = gdf[type_column].astype("string").to_numpy()
    for code in types:
        parts = gdf.geometry.values[codes == code]
        if not len(parts):
            continue
        merged = shapely.union_all(parts)
        overlap = shapely.intersection(merged, taken)
        own = shapely.difference(merged, taken) if not overlap.is_empty else merged
        taken = shapely.union(taken, own)
        overlaps[code] = overlap.area / 10_000
        if overlap.area > 0:
            log.warning("greenspace: %.2f ha of type %s overlap earlier types and were counted there", overlap.area / 1e4, code)
        rows.append({type_column: code, "polygons": int(len(parts))})
        geoms.append(own)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=gdf.crs), overlaps


def type_fractions(typed: gpd.GeoDataFrame, type_column: str, types: Sequence[str], grid: Grid) -> np.ndarray:
    """(n_types, rows, cols) float32 exact coverage fractions in the order of ``types``, from
    non-overlapping per-type geometries (see :func:`resolve_overlaps`)."""
    out = np.zeros((len(types), *grid.shape), dtype=np.float32)
    codes = list(typed[type_column])
    for k, code in enumerate(types):
        if code in codes:
            parts = list(shapely.get_parts(typed.geometry.values[codes.index(code)]))
            out[k] = coverage_raster(parts, grid.transform, grid.shape)
    return out
