"""User layers of the zoning on the analysis grid: the share of each pixel a layer covers.

A layer is polygons (any vector format) or a raster mask (pixels whose value is one of its
``classes`` belong to it). Polygons are dissolved and covered exactly (:mod:`greensink.coverage`);
a raster mask's 0/1 pixels are averaged onto the grid with GDAL's area-weighted resampling, so a
grid pixel gets the share of its area the mask's pixels cover, NaN where the raster has no data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import shapely
from affine import Affine

from greensink.coverage import coverage_raster
from greensink.grid import Grid


def polygon_parts(geoms: Sequence) -> list:
    """The parts of the union of ``geoms`` (overlapping polygons dissolved, so land is never counted twice)."""
    parts = [g for g in geoms if g is not None and not g.is_empty]
    return list(shapely.get_parts(shapely.union_all(parts))) if parts else []


def polygon_share(geoms: Sequence, grid: Grid, dissolved: bool = False) -> np.ndarray:
    """(rows, cols) float32 0–1: the share of each pixel covered by the union of ``geoms`` (in the grid's
    CRS). Overlapping polygons are dissolved first (:func:`polygon_parts`; ``dissolved``: they are already its
    output), so land is never counted twice."""
    parts = list(geoms) if dissolved else polygon_parts(geoms)
    if not parts:
        return np.zeros(grid.shape, dtype=np.float32)
    return coverage_raster(parts, grid.transform, grid.shape)


def raster_share(values: np.ndarray, transform: Affine, crs: str, nodata: float | int | None,
                 classes: Sequence[int | float], grid: Grid) -> np.ndarray:
    """(rows, cols) float32 0–1: the share of each grid pixel covered by the pixels of ``values`` (a raster
    window in ``crs`` with ``transform``) whose value is in ``classes``; NaN where the raster has no data
    (its nodata, NaN, or outside its extent)."""
    from rasterio.warp import Resampling, reproject

    v = np.asarray(values)
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    if v.size == 0:
        return out
    invalid = ~np.isfinite(v.astype(np.float64))
    if nodata is not None and not np.isnan(nodata):
        invalid |= v == nodata
    pad = 1  # nodata around the window: a grid pixel partly outside is averaged over the part inside
    mask = np.full((v.shape[0] + 2 * pad, v.shape[1] + 2 * pad), np.nan, dtype=np.float32)
    inner = mask[pad:pad + v.shape[0], pad:pad + v.shape[1]]
    inner[:] = np.isin(v, np.asarray(classes, dtype=v.dtype if np.issubdtype(v.dtype, np.number) else float))
    inner[invalid] = np.nan
    reproject(mask, out, src_transform=transform @ Affine.translation(-pad, -pad), src_crs=crs, src_nodata=np.nan,
              dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan, resampling=Resampling.average)
    return out


def union_share(shares: Sequence[np.ndarray]) -> np.ndarray:
    """The share of each pixel covered by any of ``shares`` (each 0–1, NaN unknown): their maximum, exact
    where each layer covers whole pixels and a lower bound of the union where two layers share a pixel in
    part; NaN where any layer is unknown. Zeros when ``shares`` is empty."""
    if not shares:
        raise ValueError("union_share needs at least one layer.")
    stack = np.stack([np.asarray(s, dtype=np.float32) for s in shares])
    out = stack.max(axis=0)  # NaN propagates: one unknown layer makes the union unknown
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def layer_source(spec: dict, grid: Grid, where: str) -> Callable[[Grid], np.ndarray]:
    """A function giving, for ``grid`` or a sub-grid of it (a tile), the share of each pixel in the user layer
    ``spec``: {path: polygons[, layer]} (read, checked and dissolved once, here) or {raster: file, classes:
    [values]} (default classes [1]; the window over the sub-grid read at each call). Reads through
    :mod:`greensink.io`."""
    from greensink import io
    from greensink.geometry import prepare_polygons

    if spec.get("path"):
        gdf, _ = prepare_polygons(io.read_vector(spec["path"], layer=spec.get("layer")), grid.crs, f"{where} ({spec['path']})")
        parts = polygon_parts(list(gdf.geometry.values))
        return lambda g: polygon_share(parts, g, dissolved=True)

    def raster(g: Grid) -> np.ndarray:
        values, transform, crs, nodata = io.read_window_over(spec["raster"], g.bounds, g.crs, band=int(spec.get("band", 1)))
        return raster_share(values, transform, crs, nodata, spec.get("classes") or [1], g)

    return raster


def layer_share(spec: dict, grid: Grid, where: str) -> np.ndarray:
    """The share of each pixel of ``grid`` in a user layer ``spec`` (:func:`layer_source`)."""
    return layer_source(spec, grid, where)(grid)


def raster_on_grid(path: str, band: int, grid: Grid, categorical: bool) -> np.ndarray:
    """A user raster's band resampled onto ``grid`` (float32, NaN where it has no data): nearest neighbour for a
    class layer (``categorical``), area-weighted average otherwise."""
    from rasterio.warp import Resampling, reproject

    from greensink import io

    values, transform, crs, nodata = io.read_window_over(path, grid.bounds, grid.crs, band=band)
    v = values.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        v[values == nodata] = np.nan
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    if v.size:
        reproject(v, out, src_transform=transform, src_crs=crs, src_nodata=np.nan, dst_transform=grid.transform,
                  dst_crs=grid.crs, dst_nodata=np.nan, resampling=Resampling.nearest if categorical else Resampling.average)
    return out
