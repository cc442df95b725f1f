"""The truth: type fractions of the pixels, and type, vegetation, canopy, NDVI and carbon of every
fine cell per year (:class:`FineTruth`), with its pixel means and exact zone totals; the truth
files (truth/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.crs
import rasterio.features
from affine import Affine
from scipy import ndimage

from greensink import io as gio
from greensink.demo.layout import Landscape
from greensink.demo.params import (
    BUILT_CANOPY_SHARE,
    BUILT_VEGETATED_SHARE,
    CANOPY_NDVI_STEP,
    CANOPY_SHARE,
    CANOPY_SIGMA_M,
    CLASS_NDVI,
    CURVES,
    DISTURBED_NDVI,
    FRACTION_BANDS,
    GROWTH_PER_YEAR,
    LEVELS,
    NDVI_MAX,
    NDVI_MIN,
    PATCH_SIGMA_M,
    SUPERSAMPLE,
    TRUTH_CELL_M,
    TYPES,
    VEGETATED_SHARE,
    carbon_curve,
    cell_factor,
    step_rng,
)
from greensink.grid import Grid
from greensink.units import m2_to_ha

# ----------------------------------------------------------------------------- truth rasters


def make_fractions(
    landscape: Landscape, grid: Grid, disturbed_id: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Truth fractions (6, rows, cols) of G1 G2 G3 XG EG water, and the fraction of the disturbed
    polygon (rows, cols), by rasterizing at SUPERSAMPLE x finer pixels and block-averaging."""
    s = SUPERSAMPLE
    t = grid.transform
    fine = Affine(t.a / s, 0.0, t.c, 0.0, t.e / s, t.f)
    labels = {k: i + 1 for i, k in enumerate(FRACTION_BANDS)}
    disturbed_label = len(labels) + 1
    green = landscape.greenspace
    shapes = [
        (g, disturbed_label if gid == disturbed_id else labels[typ])
        for g, typ, gid in zip(green.geometry, green["type"], green["green_id"], strict=True)
    ]
    shapes += [(g, labels["water"]) for g in landscape.water.geometry if not g.is_empty]
    fine_labels = rasterio.features.rasterize(
        shapes, out_shape=(grid.height * s, grid.width * s), transform=fine, fill=0, dtype="uint8"
    )
    blocks = fine_labels.reshape(grid.height, s, grid.width, s)
    counts = np.stack([(blocks == k).sum(axis=(1, 3), dtype=np.int32) for k in range(1, disturbed_label + 1)])
    fractions = counts[: len(labels)].astype(np.float64) / (s * s)
    disturbed = counts[-1].astype(np.float64) / (s * s)
    fractions[FRACTION_BANDS.index("XG")] += disturbed
    return fractions, disturbed


@dataclass
class FineTruth:
    """The demo's truth at fine cells (``cell_m``, ``factor`` cells per pixel side): every array has
    shape (grid.height * factor, grid.width * factor), row 0 north, on ``transform``."""

    cell_m: float
    factor: int
    transform: Affine
    label: np.ndarray  # uint8: 0 built-up, 1..5 TYPES, 6 water (FINE_LABELS)
    disturbed: np.ndarray  # bool: cells of the polygon cleared from the second year
    vegetated: np.ndarray  # bool: vegetation (grass or tree crown) in the cell
    canopy: np.ndarray  # bool: tree crown in the cell (a subset of vegetated)
    ndvi: dict[int, np.ndarray]  # float32 per year: the cell's clear-sky growing-season NDVI
    carbon: dict[int, np.ndarray]  # float64 per year: t C per ha of cell (0 off typed land)

    def cell_area_ha(self) -> float:
        return m2_to_ha(self.cell_m * self.cell_m)


def block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks of a fine array (float64): the pixel's area mean."""
    if factor == 1:
        return np.asarray(a, dtype=np.float64)
    h, w = a.shape[0] // factor, a.shape[1] // factor
    return a.reshape(h, factor, w, factor).mean(axis=(1, 3), dtype=np.float64)


def reflectance(ndvi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free red and NIR reflectance of a surface of ``ndvi``: red = 0.08 - 0.05 max(ndvi, 0),
    NIR = red (1 + ndvi) / (1 - ndvi) (dark soil line; bright vegetation)."""
    red = 0.08 - 0.05 * np.maximum(ndvi, 0.0)
    return red, red * (1 + ndvi) / (1 - ndvi)


def pixel_ndvi(fine_ndvi: np.ndarray, factor: int) -> np.ndarray:
    """NDVI a perfect sensor sees on the pixels: of the area-mean red and NIR of the fine cells."""
    red, nir = reflectance(np.asarray(fine_ndvi, dtype=np.float64))
    red, nir = block_mean(red, factor), block_mean(nir, factor)
    return (nir - red) / (nir + red)


def make_fine_truth(
    landscape: Landscape,
    grid: Grid,
    disturbed_id: str | None,
    years: Sequence[int],
    seed: int,
    cell_m: float = TRUTH_CELL_M,
) -> FineTruth:
    """Type, vegetation, canopy, NDVI and carbon of every fine cell, per year.

    * Type: the polygon (or water) holding the cell's centre; polygons are rasterized at the
      cell size, so their edges cut through pixels wherever they run.
    * Vegetation: patches of a smooth random field (correlation ~PATCH_SIGMA_M) cover
      VEGETATED_SHARE of each type's cells (the rest are paths, paving, bare ground, NDVI of
      built-up land), and BUILT_VEGETATED_SHARE of built-up land (street trees, gardens: NDVI but
      no carbon in the accounts, which count green space). Tree crowns (CANOPY_SHARE of the
      vegetated cells, another field of ~CANOPY_SIGMA_M) are CANOPY_NDVI_STEP greener than the
      type's field, grass as much less green.
    * NDVI: per class a smooth field at the pixel size (mean and sd CLASS_NDVI), bilinearly
      interpolated to the cells; vegetation grows by GROWTH_PER_YEAR; the disturbed polygon's
      cells drop to DISTURBED_NDVI from the second year.
    * Carbon: curve_type(cell NDVI) on each typed cell (t C/ha), 0 on water and built-up land.
    """
    factor = cell_factor(grid.resolution_m, cell_m)
    t = grid.transform
    fine_t = Affine(t.a / factor, 0.0, t.c, 0.0, t.e / factor, t.f)
    shape = (grid.height * factor, grid.width * factor)
    labels = {k: i + 1 for i, k in enumerate(FRACTION_BANDS)}
    disturbed_label = len(labels) + 1
    green = landscape.greenspace
    shapes = [
        (g, disturbed_label if gid == disturbed_id else labels[typ])
        for g, typ, gid in zip(green.geometry, green["type"], green["green_id"], strict=True)
    ]
    shapes += [(g, labels["water"]) for g in landscape.water.geometry if not g.is_empty]
    label = rasterio.features.rasterize(shapes, out_shape=shape, transform=fine_t, fill=0, dtype="uint8")
    disturbed = label == disturbed_label
    label[disturbed] = labels["XG"]

    # smooth class fields at the pixel size (as drawn since the first demo), then onto the cells
    rng = step_rng(seed, "ndvi")
    fields = {}
    for cls, (mean, sd) in CLASS_NDVI.items():
        sigma = rng.uniform(3.0, 8.0)
        f = ndimage.gaussian_filter(rng.standard_normal(grid.shape), sigma, mode="reflect")
        f = (f - f.mean()) / f.std()
        fields[cls] = np.clip(mean + sd * f, NDVI_MIN, NDVI_MAX)

    def up(a: np.ndarray, smooth: bool) -> np.ndarray:
        if factor == 1:
            return a.astype(np.float32)
        if not smooth:
            return a.repeat(factor, axis=0).repeat(factor, axis=1).astype(np.float32)
        # pixel centres sit at (i + 0.5) factor - 0.5 in cell units: interpolate there, edges held
        coords = (np.arange(shape[0]) + 0.5) / factor - 0.5, (np.arange(shape[1]) + 0.5) / factor - 0.5
        rows = np.clip(coords[0], 0, grid.height - 1)
        cols = np.clip(coords[1], 0, grid.width - 1)
        r0 = np.minimum(rows.astype(int), grid.height - 2) if grid.height > 1 else np.zeros(len(rows), int)
        c0 = np.minimum(cols.astype(int), grid.width - 2) if grid.width > 1 else np.zeros(len(cols), int)
        fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
        a = a.astype(np.float32)
        top = a[r0][:, c0] * (1 - fc) + a[r0][:, c0 + 1] * fc
        bottom = a[r0 + 1][:, c0] * (1 - fc) + a[r0 + 1][:, c0 + 1] * fc
        return (top * (1 - fr) + bottom * fr).astype(np.float32)

    vrng = step_rng(seed, "fine-vegetation")

    def patches(sigma_m: float) -> np.ndarray:
        f = ndimage.gaussian_filter(vrng.standard_normal(shape).astype(np.float32), sigma_m / cell_m)
        return (f - f.mean()) / f.std()

    patch, crown = patches(PATCH_SIGMA_M), patches(CANOPY_SIGMA_M)
    from scipy.stats import norm

    vegetated = np.zeros(shape, dtype=bool)
    canopy = np.zeros(shape, dtype=bool)
    for k, cls in enumerate(("built", *TYPES)):
        cells = label == k  # 0 built-up, 1..5 the types
        share = BUILT_VEGETATED_SHARE if cls == "built" else VEGETATED_SHARE[cls]
        tree = BUILT_CANOPY_SHARE if cls == "built" else CANOPY_SHARE[cls]
        vegetated |= cells & (patch > norm.ppf(1 - share))
        canopy |= cells & vegetated & (crown > norm.ppf(1 - tree))
    step = np.where(canopy, CANOPY_NDVI_STEP, -CANOPY_NDVI_STEP).astype(np.float32)
    built_field = up(fields["built"], smooth=False)
    base = np.where(label == labels["water"], up(fields["water"], smooth=False), built_field)
    type_fields = {cls: up(fields[cls], smooth=True) for cls in TYPES}
    street = type_fields["XG"]  # vegetation on built-up land looks like attached green
    ndvi_out, carbon_out = {}, {}
    for k, year in enumerate(years):
        dt = year - years[0]
        ndvi = base.copy()
        for i, cls in enumerate(("built", *TYPES)):
            field = street if cls == "built" else type_fields[cls]
            grown = field + GROWTH_PER_YEAR * dt * (NDVI_MAX - field) / 0.5
            cells = vegetated & (label == i)
            ndvi[cells] = np.clip(grown[cells] + step[cells], NDVI_MIN, NDVI_MAX)
        if k >= 1:
            ndvi[disturbed] = DISTURBED_NDVI
        carbon = np.zeros(shape, dtype=np.float64)
        for i, cls in enumerate(TYPES, start=1):
            cells = label == i
            carbon[cells] = carbon_curve(cls, ndvi[cells])
        ndvi_out[int(year)] = ndvi
        carbon_out[int(year)] = carbon
    return FineTruth(
        cell_m=float(cell_m),
        factor=factor,
        transform=fine_t,
        label=label,
        disturbed=disturbed,
        vegetated=vegetated,
        canopy=canopy,
        ndvi=ndvi_out,
        carbon=carbon_out,
    )


def fine_zone_totals(fine: FineTruth, year: int, zones: gpd.GeoDataFrame, crs_wkt: str) -> pd.DataFrame:
    """Zone totals (zone_id, carbon_t) of the fine truth: exact coverage of every fine cell by each
    zone (exactextract, independent of greensink's aggregation) times its t C/ha x cell area in ha."""
    import exactextract
    from exactextract.raster import NumPyRasterSource

    t = fine.transform
    h, w = fine.label.shape
    src = NumPyRasterSource(
        fine.carbon[year], t.c, t.f + h * t.e, t.c + w * t.a, t.f, srs_wkt=crs_wkt, name="carbon"
    )
    df = exactextract.exact_extract(
        src, zones[["zone_id", "geometry"]], ["sum"], output="pandas", include_cols=["zone_id"]
    )
    out = pd.DataFrame(
        {"zone_id": df["zone_id"].astype(str), "carbon_t": df["sum"].to_numpy() * fine.cell_area_ha()}
    )
    return out.sort_values("zone_id", kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- truth files


def write_truth(
    truth: Path,
    grid: Grid,
    zones: dict[str, gpd.GeoDataFrame],
    fractions: np.ndarray,
    fine: FineTruth,
    compress: str,
) -> dict[str, float]:
    """Write the truth rasters (pixel area means of the fine truth), curves and zone tables (from the
    fine cells); return the city carbon (t C) per year."""
    gio.write_raster(
        truth / "fractions.tif",
        fractions,
        grid,
        band_names=list(FRACTION_BANDS),
        compress=compress,
        tags={"UNITS": "fraction of pixel area", "METHOD": f"rasterized at 1/{SUPERSAMPLE} pixel, averaged"},
    )
    gio.write_json(
        truth / "curves.json",
        {
            "units": "t C per ha of type land; x = NDVI of a fine cell; 0 for x <= 0; floored at 0",
            "cell_m": fine.cell_m,
            "curves": CURVES,
        },
    )
    crs_wkt = rasterio.crs.CRS.from_user_input(grid.crs).to_wkt()
    city_t = {}
    for year in sorted(fine.ndvi):
        gio.write_raster(
            truth / f"ndvi_{year}.tif",
            pixel_ndvi(fine.ndvi[year], fine.factor),
            grid,
            band_names=["ndvi"],
            compress=compress,
            tags={"METHOD": f"NDVI of the area-mean red and NIR of {fine.cell_m:g} m cells"},
        )
        gio.write_raster(
            truth / f"carbon_{year}.tif",
            block_mean(fine.carbon[year], fine.factor),
            grid,
            band_names=["carbon_t_ha"],
            compress=compress,
            tags={"UNITS": "t C per ha of pixel", "METHOD": f"area mean of {fine.cell_m:g} m cells"},
        )
        for level in LEVELS:
            table = fine_zone_totals(fine, year, zones[level], crs_wkt)
            gio.write_csv(truth / f"zones_{year}_{level}.csv", table)
            if level == "city":
                city_t[str(year)] = round(float(table["carbon_t"].iloc[0]), 6)
    return city_t
