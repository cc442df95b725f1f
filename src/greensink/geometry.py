"""Polygon layers made safe to compute with: projected, valid, non-empty, polygonal.

Every vector input goes through :func:`prepare_polygons`, which reprojects to the run's CRS,
refuses layers without a CRS, repairs invalid geometries (with a warning naming the feature)
and refuses empty or non-polygon geometries with an error naming the feature.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import shapely

from greensink.errors import InputDataError

log = logging.getLogger(__name__)

AREA_TOLERANCE_PIXELS = 0.1
"""Areas up to this share of one pixel's area are tolerated by the area warnings (zone nesting: area
outside parents, gaps, overlaps, a straddler's part outside its parent; green-space polygons of
different types overlapping): smaller areas move no pixel's coverage, and so no zone sum, by more
than a tenth of a pixel. They are still measured and written; they are logged at INFO, not WARNING."""


def area_tolerance_m2(resolution_m: float) -> float:
    """The tolerated area, m²: :data:`AREA_TOLERANCE_PIXELS` × resolution_m² (10 m² at 10 m, 90 m² at 30 m)."""
    return AREA_TOLERANCE_PIXELS * float(resolution_m) ** 2


def prepare_polygons(gdf: gpd.GeoDataFrame, crs: str, where: str, label_column: str | None = None) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Reproject to ``crs`` and repair geometries; returns the layer and the warnings issued.

    ``where`` names the file for messages; ``label_column`` names each feature in messages."""
    if gdf.crs is None:
        raise InputDataError(f"{where}: the layer has no CRS. Assign one in GIS software (e.g. QGIS: Layer ▸ Set CRS) and save again.")
    if gdf.empty:
        raise InputDataError(f"{where}: the layer has no features.")
    if gdf.crs != crs:
        kind = "geographic" if gdf.crs.is_geographic else "projected"
        log.info("%s: reprojected from %s (%s) to %s", where, gdf.crs.to_string(), kind, crs)
        out = gdf.to_crs(crs)
    else:
        out = gdf.copy()

    def label(i: int) -> str:
        return f"row {i + 1}" + (f" ({label_column}={out[label_column].iloc[i]!r})" if label_column else "")

    geoms = out.geometry.values
    empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
    if empty.any():
        rows = [label(i) for i in empty.nonzero()[0][:10]]
        raise InputDataError(f"{where}: empty or missing geometry at {', '.join(rows)}. Delete these features or draw them.")
    warnings: list[str] = []
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        repaired = shapely.make_valid(geoms[invalid])
        repaired = shapely.get_parts(repaired, return_index=True)
        geoms = geoms.copy()
        parts, idx = repaired
        for k, i in enumerate(invalid.nonzero()[0]):
            polys = [p for p, j in zip(parts, idx, strict=True) if j == k and p.geom_type in ("Polygon", "MultiPolygon")]
            fixed = shapely.union_all(polys) if polys else shapely.Polygon()
            reason = shapely.is_valid_reason(out.geometry.values[i])
            msg = f"{where}: {label(i)} had an invalid geometry ({reason}); repaired with make_valid (area {fixed.area:.1f} m²)."
            log.warning(msg)
            warnings.append(msg)
            geoms[i] = fixed
        out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
    kinds = out.geometry.geom_type
    bad = ~kinds.isin(["Polygon", "MultiPolygon"]) | shapely.is_empty(out.geometry.values)
    if bad.any():
        rows = [f"{label(i)}: {kinds.iloc[i]}" for i in bad.to_numpy().nonzero()[0][:10]]
        raise InputDataError(f"{where}: features must be polygons. Got {', '.join(rows)}. Remove them or convert them to polygons.")
    return out, warnings
