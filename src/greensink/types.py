"""Green-space types: typed polygons -> per-type coverage fractions on the grid.

Types follow CJJ/T 85-2017 城市绿地分类标准 by default (G1 park 公园绿地, G2 protective 防护绿地,
G3 square 广场用地, XG attached 附属绿地, EG regional 区域绿地); other lists may be configured.
Each pixel gets the exact fraction of its area covered by each type's polygons, so a pixel
30 % G1 and 70 % XG contributes to both. A land-cover raster (e.g. ESA WorldCover, or a local
legend) can stand in for the polygons: a class table maps every class present to a type or
to "ignore" (a class it does not list stops the run), and the outlines of each type's pixels
become that type's polygons, which then take the same exact path. Where polygons of different types overlap, the type
listed first in the configuration wins the overlap (reported), so fractions never add above 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

from greensink import io as gio
from greensink.coverage import coverage_raster
from greensink.errors import InputDataError
from greensink.geometry import area_tolerance_m2, prepare_polygons
from greensink.grid import Grid
from greensink.tiers import VEG, VEG_NAME
from greensink.units import m2_to_ha

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


def resolve_overlaps(gdf: gpd.GeoDataFrame, type_column: str, types: Sequence[str],
                     tolerance_m2: float = 10.0) -> tuple[gpd.GeoDataFrame, dict]:
    """One row per type present (in the order of ``types``) with its polygons merged and the area
    already taken by earlier types removed; and per type the overlap given away, in ha. An overlap
    above ``tolerance_m2`` (:func:`greensink.geometry.area_tolerance_m2`; 10 m² is that of 10 m pixels)
    is a WARNING, a smaller one an INFO line."""
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
        overlaps[code] = m2_to_ha(overlap.area)
        if overlap.area > 0:
            log.log(logging.WARNING if overlap.area > tolerance_m2 else logging.INFO,
                    "greenspace: %.6g m² of type %s overlap earlier types and were counted there%s", overlap.area, code,
                    "" if overlap.area > tolerance_m2 else f" (within the tolerance of {tolerance_m2:g} m²)")
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


# ----------------------------------------------------------------------------- land-cover rasters

IGNORE = "ignore"


def read_class_table(table: pd.DataFrame, types: Sequence[str], where: str) -> dict[int, str]:
    """Check a class -> type table (columns class, type[, name]) and return {class: type or 'ignore'}.

    Every row's type must be a configured type code or 'ignore'; classes must be unique integers."""
    missing = [c for c in ("class", "type") if c not in table.columns]
    if missing:
        raise InputDataError(f"{where}: missing column(s) {missing}. A class table needs columns class, type (and optionally name).")
    problems, mapping = [], {}
    for i, row in enumerate(table.to_dict("records"), start=2):
        try:
            code = int(str(row["class"]).strip())
        except ValueError:
            problems.append(f"{where} row {i}: class must be an integer. Got {row['class']!r}.")
            continue
        target = str(row["type"]).strip()
        if target not in types and target != IGNORE:
            problems.append(f"{where} row {i} (class {code}): type must be one of {list(types)} or '{IGNORE}'. Got {target!r}.")
        if code in mapping:
            problems.append(f"{where} row {i}: class {code} is listed twice. List each class once.")
        mapping[code] = target
    if problems:
        raise InputDataError("Problems in the class table:\n" + "\n".join(f"  - {p}" for p in problems))
    return mapping


def check_classes_mapped(classes: np.ndarray, nodata: float | int | None, mapping: Mapping[int, str], where: str) -> dict[int, int]:
    """Pixel count per class present; raise if any present class is neither mapped nor ignored."""
    values = classes[classes != nodata] if nodata is not None else classes.ravel()
    present, counts = np.unique(values, return_counts=True)
    found = {int(c): int(n) for c, n in zip(present, counts, strict=True)}
    unmapped = {c: n for c, n in found.items() if c not in mapping}
    if unmapped:
        listing = ", ".join(f"{c} ({n} pixels)" for c, n in sorted(unmapped.items()))
        raise InputDataError(
            f"{where}: land-cover class(es) {listing} are in the raster but not in the class table. "
            f"Map each to a green-space type or to '{IGNORE}'."
        )
    return found


def landcover_polygons(classes: np.ndarray, transform, crs, mapping: Mapping[int, str], nodata: float | int | None,
                       type_column: str = "type") -> gpd.GeoDataFrame:
    """The outlines of the pixels of each mapped type, as polygons in the raster's CRS (ignored
    classes and nodata left out), so land-cover typing takes the same exact path as polygons."""
    from rasterio.features import shapes

    codes = sorted({t for t in mapping.values() if t != IGNORE})
    index = np.zeros(classes.shape, dtype=np.int32)  # 0 = not green space
    for c, t in mapping.items():
        if t != IGNORE:
            index[classes == c] = codes.index(t) + 1
    if nodata is not None:
        index[classes == nodata] = 0
    rows, geoms = [], []
    for geom, value in shapes(index, mask=index > 0, transform=transform):
        rows.append(codes[int(value) - 1])
        geoms.append(shapely.geometry.shape(geom))
    return gpd.GeoDataFrame({type_column: rows}, geometry=geoms, crs=crs)


def run_types(grid: str | Path, fractions_out: str | Path, greenspace_out: str | Path, summary_out: str | Path, *,
              greenspace: Mapping | None, compress: str = "zstd") -> dict:
    """Rule types: the exact per-type fractions of the grid (``grid.json`` at ``grid``), one band per type,
    written to ``fractions_out``; the typed polygons (types not overlapping) to ``greenspace_out``; and
    summary.json (source, per type polygon and grid area in ha and the overlap given to earlier types,
    warnings; returned) to ``summary_out``.

    ``greenspace`` is the config's greenspace section of the job's year: polygons (``path``,
    ``type_column``, ``types``) or a land-cover raster with its class table (``raster``, ``class_table``).
    None or empty: no green-space types, one pseudo-type VEG covering every pixel (fraction 1; its carbon
    counts only where NDVI marks vegetation, :mod:`greensink.tiers`) and no polygons."""
    gs = greenspace or {"types": {VEG: VEG_NAME}, "type_column": "type"}
    types, col = list(gs["types"]), gs["type_column"]
    g = Grid.read(grid)
    if not greenspace:
        raw = gpd.GeoDataFrame({col: []}, geometry=[], crs=g.crs)
        source = None
        log.info("no green-space types configured: one pseudo-type %s over all land (carbon where NDVI marks vegetation)",
                 VEG)
    elif "raster" in gs:
        mapping = read_class_table(gio.read_csv(gs["class_table"], dtype=str, keep_default_na=False), types,
                                   gs["class_table"])
        classes, transform, crs, nodata = gio.read_window_over(gs["raster"], g.bounds, g.crs)
        counts = check_classes_mapped(classes, nodata, mapping, gs["raster"])
        raw = landcover_polygons(classes, transform, crs, mapping, nodata, col)
        source = gs["raster"]
        log.info("land cover %s: classes present %s, mapped to %d typed polygons", source, counts, len(raw))
    else:
        raw = gio.read_vector(gs["path"])
        source = gs["path"]
        check_type_codes(raw, col, types, source)
    if source is None:
        typed, overlaps, warnings = raw, {}, []
        fractions = np.ones((1, *g.shape), dtype=np.float32)
    else:
        polys, warnings = prepare_polygons(raw, g.crs, source, col)
        typed, overlaps = resolve_overlaps(polys, col, types, area_tolerance_m2(g.resolution_m))
        fractions = type_fractions(typed, col, types, g)
    gio.write_raster(fractions_out, fractions, g, band_names=types, compress=compress)
    gio.write_table(greenspace_out, typed.explode(index_parts=False).reset_index(drop=True), csv=False)
    summary = {
        t: {"area_ha": float(m2_to_ha(typed.area[typed[col] == t].sum())),
            "grid_area_ha": float(fractions[k].sum() * g.pixel_area_ha),
            "overlap_given_to_earlier_types_ha": overlaps.get(t, 0.0)}
        for k, t in enumerate(types)
    }
    record = {"source": source, "types": summary, "warnings": warnings}
    gio.write_json(summary_out, record)
    for t, s in summary.items():
        log.info("type %s: %.2f ha of polygons, %.2f ha on the grid", t, s["area_ha"], s["grid_area_ha"])
    return record
