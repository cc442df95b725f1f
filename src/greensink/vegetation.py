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
* With a canopy height model (CHM, ``vegetation.chm``: any CRS and resolution), the height
  thresholds are applied at the CHM's own resolution and the 0/1 masks are then area-averaged onto
  the grid (:func:`chm_on_grid`), so canopy.tif is a true tree-canopy fraction: the share of the
  pixel's valid CHM area at or above ``tree_height_m`` (at the CHM's outer edge too: only the part
  of the pixel the CHM covers counts). Classes follow the pixel's median height:
  tree where that share is ≥ 0.5, else (if NDVI says vegetation) shrub where the share at or above
  ``shrub_height_m`` is ≥ 0.5, else grass. Pixels with no valid CHM keep the NDVI rules.
  height.tif is the area-weighted mean of the pixel's valid CHM heights in metres (negative
  heights taken as 0); NaN where there is no valid CHM, and everywhere without a CHM.

:func:`vegetation_to_files` makes every product from a composite file strip by strip, so memory
is bounded by the strip, not the scene. Its FVC endmembers come from an NDVI histogram of the
whole scene (:class:`NDVIHistogram`: 20,000 bins over [−1, 1]), accurate to within one bin
width (1e-4 NDVI) of ``np.percentile`` of all values.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from affine import Affine

from greensink import io as gio
from greensink import logs
from greensink.errors import InputDataError
from greensink.grid import Grid, Tile
from greensink.tiling import mosaic_files, tile_strips

log = logging.getLogger(__name__)


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
    return _endmembers(lambda q: float(np.percentile(finite, q)), finite.size, percentiles, ndvi_soil, ndvi_full)


def fvc_endmembers_from_histogram(histogram: NDVIHistogram, percentiles: tuple[float, float] = (5, 95),
                                  ndvi_soil: float | None = None, ndvi_full: float | None = None) -> tuple[float, float]:
    """(NDVIsoil, NDVIveg) as :func:`fvc_endmembers`, from a histogram of every NDVI value of
    the scene (within :attr:`NDVIHistogram.accuracy` of the exact percentiles)."""
    return _endmembers(histogram.percentile, histogram.n, percentiles, ndvi_soil, ndvi_full)


def _endmembers(percentile: Callable[[float], float], n_finite: int, percentiles: tuple[float, float],
                ndvi_soil: float | None, ndvi_full: float | None) -> tuple[float, float]:
    if n_finite == 0 and (ndvi_soil is None or ndvi_full is None):
        raise InputDataError("NDVI has no valid pixel, so FVC endmembers cannot be estimated. Check the composite.")
    lo = percentile(percentiles[0]) if ndvi_soil is None else float(ndvi_soil)
    hi = percentile(percentiles[1]) if ndvi_full is None else float(ndvi_full)
    if not hi > lo:
        raise InputDataError(
            f"FVC endmembers must satisfy NDVIveg > NDVIsoil. Got soil {lo:.3f}, vegetation {hi:.3f}. "
            "Set vegetation.ndvi_soil / vegetation.ndvi_full or widen vegetation.fvc_percentiles."
        )
    return lo, hi


class NDVIHistogram:
    """Counts of NDVI values in ``bins`` equal bins over [−1, 1], filled strip by strip, from
    which percentiles of every value seen are read as ``np.percentile`` (linear) defines them.

    Each order statistic is placed inside its bin by its rank among the bin's values (the bin
    narrowed to the smallest and largest value seen), so it is off by less than one bin width
    (:attr:`accuracy`, 1e-4 with the default 20,000 bins), and so is a percentile, which
    interpolates between two of them. The 0th and 100th percentiles are exact, and so are all
    percentiles of a constant scene. Values outside [−1, 1] (possible
    only with negative reflectance) are kept exactly, so percentiles that fall among them are
    exact. Memory: ``bins`` counts plus those outliers."""

    LOW, HIGH = -1.0, 1.0

    def __init__(self, bins: int = 20_000) -> None:
        self.bins = int(bins)
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self._below: list[np.ndarray] = []
        self._above: list[np.ndarray] = []
        self._min, self._max = math.inf, -math.inf  # of the values inside [−1, 1]

    @property
    def accuracy(self) -> float:
        """Largest difference from the exact percentile: one bin width."""
        return (self.HIGH - self.LOW) / self.bins

    @property
    def n(self) -> int:
        """Number of finite values added."""
        return int(self.counts.sum()) + sum(a.size for a in self._below) + sum(a.size for a in self._above)

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        inside = (v >= self.LOW) & (v <= self.HIGH)
        if not inside.all():
            self._below.append(v[v < self.LOW])
            self._above.append(v[v > self.HIGH])
            v = v[inside]
        if v.size:
            self._min, self._max = min(self._min, float(v.min())), max(self._max, float(v.max()))
        idx = np.minimum(((v - self.LOW) / self.accuracy).astype(np.int64), self.bins - 1)
        self.counts += np.bincount(idx, minlength=self.bins)

    def _order_statistic(self, k: int, below: np.ndarray, above: np.ndarray, cum: np.ndarray) -> float:
        """The k-th smallest value (0-based)."""
        if k < below.size:
            return float(below[k])
        j = k - below.size
        if j >= int(cum[-1]):
            return float(above[j - int(cum[-1])])
        b = int(np.searchsorted(cum, j, side="right"))
        c = int(self.counts[b])
        lo = max(self.LOW + self.accuracy * b, self._min)  # the bin, narrowed to the values' range
        hi = min(self.LOW + self.accuracy * (b + 1), self._max)
        if c == 1:  # alone in its bin: exact if it is the smallest or largest value
            return lo if lo == self._min else hi if hi == self._max else (lo + hi) / 2
        return lo + (hi - lo) * (j - int(cum[b]) + c) / (c - 1)  # the bin's values spread evenly over it

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0–100) of the values added, linear interpolation between
        order statistics as ``np.percentile``'s default; NaN if no value was added."""
        n = self.n
        if n == 0:
            return float("nan")
        below = np.sort(np.concatenate(self._below)) if self._below else np.empty(0)
        above = np.sort(np.concatenate(self._above)) if self._above else np.empty(0)
        cum = np.cumsum(self.counts)
        h = (n - 1) * float(q) / 100.0
        k = math.floor(h)
        lo = self._order_statistic(k, below, above, cum)
        if k + 1 >= n or h == k:
            return lo
        hi = self._order_statistic(k + 1, below, above, cum)
        return lo + (h - k) * (hi - lo)


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


# ----------------------------------------------------------------------------- canopy height model


class CHMOnGrid(NamedTuple):
    """A canopy height model resampled onto a grid (:func:`chm_on_grid`): float32 arrays of the
    grid's shape, NaN where no valid CHM covers the pixel."""

    tree_frac: np.ndarray  # share of the pixel's valid CHM area with height ≥ tree_height_m, 0–1
    woody_frac: np.ndarray  # share with height ≥ shrub_height_m, 0–1
    height_m: np.ndarray  # area-weighted mean height of the valid CHM, metres (heights < 0 taken as 0)


def chm_on_grid(height: np.ndarray, src_transform, src_crs: str, src_nodata: float | None, grid: Grid,
                tree_height_m: float, shrub_height_m: float) -> CHMOnGrid:
    """Tree and woody area fractions 0–1 and the mean height (metres) on ``grid`` of a canopy height
    raster (metres) in any CRS and resolution: for each grid pixel, the share of its valid CHM area
    with height ≥ ``tree_height_m`` and with height ≥ ``shrub_height_m``, and the area-weighted
    mean of its valid CHM heights; NaN where no valid CHM pixel covers the grid pixel.

    Each threshold is applied at the CHM's own resolution, and the 0/1 masks and the heights (NaN
    where the CHM is nodata or NaN) are then resampled with GDAL's area-weighted average, which
    leaves nodata out of both sums: so with a finer CHM the results are shares and means over the
    pixel's valid CHM area. Negative heights (noise in a CHM made as surface minus terrain) are
    taken as 0 m for the mean; they are below both thresholds anyway. The CHM is padded with
    nodata beyond its extent before resampling, so a grid pixel only partly inside the CHM is
    averaged over the part the CHM covers (GDAL would otherwise stretch the edge CHM pixels over
    the outside part). With a coarser CHM every CHM pixel is taken as uniform, so a grid pixel
    inside one CHM pixel gets its value and one straddling several gets their area-weighted mean."""
    from rasterio.warp import Resampling, reproject

    h = np.asarray(height)
    out = np.full((3, *grid.shape), np.nan, dtype=np.float32)
    if h.size == 0:
        return CHMOnGrid(out[0], out[1], out[2])
    invalid = ~np.isfinite(h)
    if src_nodata is not None and not np.isnan(src_nodata):
        invalid |= h == src_nodata
    pad = _edge_pad_px(src_transform, src_crs, grid)
    bands = np.full((3, h.shape[0] + 2 * pad, h.shape[1] + 2 * pad), np.nan, dtype=np.float32)  # nodata around
    inner = bands[:, pad:pad + h.shape[0], pad:pad + h.shape[1]]
    with np.errstate(invalid="ignore"):
        inner[0] = h >= tree_height_m
        inner[1] = h >= shrub_height_m
        inner[2] = np.maximum(h, 0)
    inner[:, invalid] = np.nan
    reproject(bands, out, src_transform=src_transform @ Affine.translation(-pad, -pad), src_crs=src_crs,
              src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
              resampling=Resampling.average)
    return CHMOnGrid(out[0], out[1], out[2])


def _edge_pad_px(src_transform, src_crs: str, grid: Grid) -> int:
    """CHM pixels of nodata to add on each side so that the footprint of every grid pixel touching
    the CHM lies inside the padded raster: twice a grid pixel's size in CHM pixels, plus one."""
    from rasterio.warp import transform_bounds

    x0, y0, x1, y1 = transform_bounds(grid.crs, src_crs, *grid.bounds, densify_pts=21)
    src_x, src_y = math.hypot(src_transform.a, src_transform.d), math.hypot(src_transform.b, src_transform.e)
    px = max((x1 - x0) / grid.width / src_x, (y1 - y0) / grid.height / src_y, 1.0)
    return 2 * math.ceil(px) + 1


def chm_strip(chm: str | Path, grid: Grid, tree_height_m: float, shrub_height_m: float,
              src_px_per_px: float = 1.0, max_src_px: int = 1 << 24) -> CHMOnGrid:
    """:func:`chm_on_grid` of the CHM file ``chm`` over ``grid`` (a strip of the analysis grid),
    read at native resolution in blocks of at most about ``max_src_px`` CHM pixels
    (``src_px_per_px``: CHM pixels per grid pixel), so memory stays bounded for a fine CHM."""
    import rasterio.errors

    out = CHMOnGrid(*(np.full(grid.shape, np.nan, dtype=np.float32) for _ in range(3)))
    side = max(1, math.isqrt(max(1, int(max_src_px / max(src_px_per_px, 1.0)))))
    rh = min(grid.height, side)
    cw = max(1, (side * side) // rh)
    for r in range(0, grid.height, rh):
        for c in range(0, grid.width, cw):
            sub = grid.subgrid(Tile("", r, c, min(rh, grid.height - r), min(cw, grid.width - c)))
            try:
                arr, transform, crs, nodata = gio.read_window_over(chm, sub.bounds, grid.crs, pad_px=1)
            except rasterio.errors.WindowError:  # the CHM does not reach this block
                continue
            block = chm_on_grid(arr, transform, crs, nodata, sub, tree_height_m, shrub_height_m)
            for whole, part in zip(out, block, strict=True):
                whole[r:r + sub.height, c:c + sub.width] = part
    return out


def _chm_px_per_px(chm: str | Path, grid: Grid) -> float:
    """CHM pixels per grid pixel (by area), to size the blocks :func:`chm_strip` reads."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    crs, transform, width, height = gio.read_georef(chm)
    west, south, east, north = array_bounds(height, width, transform)
    x0, y0, x1, y1 = transform_bounds(crs, grid.crs, west, south, east, north, densify_pts=21)
    chm_px_area = (x1 - x0) * (y1 - y0) / max(width * height, 1)
    return grid.resolution_m**2 / chm_px_area if chm_px_area > 0 else 1.0


def chm_canopy(ndvi_values: np.ndarray, tree_frac: np.ndarray, ndvi_tree: float) -> np.ndarray:
    """Tree-canopy fraction: the CHM's tree fraction where it is valid, the NDVI rule
    (:func:`threshold_mask` at ``ndvi_tree``) where not, NaN where NDVI is NaN."""
    out = np.where(np.isfinite(tree_frac), tree_frac, threshold_mask(ndvi_values, ndvi_tree)).astype(np.float32)
    out[~np.isfinite(ndvi_values)] = np.nan
    return out


def chm_structure_classes(ndvi_values: np.ndarray, tree_frac: np.ndarray, woody_frac: np.ndarray,
                          ndvi_vegetation: float, ndvi_shrub: float, ndvi_tree: float) -> np.ndarray:
    """Structure classes refined by a CHM (fractions from :func:`chm_on_grid`). Where the CHM is
    valid the pixel's median height decides: 3 tree where the tree fraction is ≥ 0.5 (whatever the
    NDVI); otherwise, where NDVI ≥ ``ndvi_vegetation``, 2 shrub where the fraction at or above the
    shrub height is ≥ 0.5, else 1 grass; 0 where not vegetated. Where the CHM is NaN the NDVI
    classes of :func:`structure_classes`. NaN where NDVI is NaN."""
    out = structure_classes(ndvi_values, ndvi_vegetation, ndvi_shrub, ndvi_tree)
    has = np.isfinite(tree_frac) & np.isfinite(ndvi_values)
    veg = ndvi_values >= ndvi_vegetation
    chm_cls = np.where(tree_frac >= 0.5, CLASS_TREE,
                       np.where(veg, np.where(woody_frac >= 0.5, CLASS_SHRUB, CLASS_GRASS), CLASS_NONE))
    out[has] = chm_cls[has]
    return out


def _check_chm(chm: Mapping) -> tuple[float, float]:
    tree_h, shrub_h = float(chm.get("tree_height_m", 2.0)), float(chm.get("shrub_height_m", 0.5))
    if not 0 <= shrub_h < tree_h:
        raise InputDataError(f"Canopy height thresholds must satisfy 0 ≤ shrub < tree. Got shrub {shrub_h} m, tree {tree_h} m. "
                             "Fix vegetation.chm.shrub_height_m / tree_height_m.")
    return tree_h, shrub_h


# ----------------------------------------------------------------------------- streaming products

PRODUCTS = ("ndvi", "fvc", "vegetation", "canopy", "classes", "height")


def _ndvi_strips(composite: str | Path, block_rows: int, tile: Tile | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """NDVI strips of the composite (of its window ``tile``; rows relative to the tile)."""
    for rows, (red, nir) in tile_strips(composite, tile, bands=[1, 2], block_rows=block_rows):
        yield rows, ndvi(red, nir)


def _add_counts(counts: dict, nd: np.ndarray, veg: np.ndarray, canopy: np.ndarray, height: np.ndarray | None = None,
                no_chm: np.ndarray | None = None) -> None:
    """Add a strip's pixels to the counts behind vegetation.json (``no_chm``: where the CHM has no valid
    height, given with a CHM; ``height`` then NaN where NDVI is NaN)."""
    if no_chm is not None:
        counts["fallback"] += int((np.isfinite(nd) & no_chm).sum())
        counts["height_px"] += int(np.isfinite(height).sum())
        counts["height_sum"] += float(np.nansum(height, dtype=np.float64))
    counts["veg"] += int((veg == 1).sum())
    counts["canopy"] += float(np.nansum(canopy, dtype=np.float64))  # canopy area in pixels
    counts["valid"] += int(np.isfinite(nd).sum())


def _new_counts() -> dict:
    return {"veg": 0, "canopy": 0.0, "valid": 0, "fallback": 0, "height_px": 0, "height_sum": 0.0}


def _stats(counts: dict, soil: float, full: float, v: Mapping, chm: Mapping | None, tree_h: float | None = None,
           shrub_h: float | None = None) -> dict:
    """vegetation.json from the counts of the whole grid."""
    pct = (lambda k: 100.0 * counts[k] / counts["valid"]) if counts["valid"] else (lambda k: float("nan"))
    stats = {"ndvi_soil": soil, "ndvi_full": full, "ndvi_vegetation": v["ndvi_vegetation"], "ndvi_shrub": v["ndvi_shrub"],
             "ndvi_tree": v["ndvi_tree"], "vegetation_pct": pct("veg"), "canopy_pct": pct("canopy")}
    if chm:
        stats["chm"] = {"path": str(chm["path"]), "tree_height_m": tree_h, "shrub_height_m": shrub_h,
                        "fallback_pixels": counts["fallback"], "fallback_pct": pct("fallback"),
                        "height_pixels": counts["height_px"],
                        "height_mean_m": counts["height_sum"] / counts["height_px"] if counts["height_px"] else None}
    return stats


def vegetation_to_files(
    composite: str | Path,
    out: Mapping[str, str | Path],
    settings: Mapping,
    *,
    compress: str = "zstd",
    block_rows: int = 512,
    progress: Callable[[int, int], None] | None = None,
    tile: Tile | None = None,
    endmembers: tuple[float, float] | None = None,
) -> dict:
    """NDVI, FVC, vegetation and canopy masks, structure classes and mean canopy height of a
    composite file (bands red, nir), streamed strip by strip; returns the statistics of
    ``vegetation.json``.

    ``tile`` (a tiled run's vegetation_tile job): the products of the composite's window ``tile`` only,
    on its sub-grid; ``endmembers`` (NDVIsoil, NDVIveg) of the whole scene (:func:`fvc_endmembers_file`)
    replace the histogram pass, so a tile's FVC is the whole grid's (the statistics are then the tile's).

    ``out`` maps each of :data:`PRODUCTS` to a path; ``settings`` holds the ``vegetation`` config
    (fvc_percentiles, ndvi_soil, ndvi_full, ndvi_vegetation, ndvi_shrub, ndvi_tree). When an FVC
    endmember is not given, a first pass writes ndvi.tif while filling an :class:`NDVIHistogram`,
    and the second pass reads NDVI back from it; otherwise one pass does everything. Memory is a
    few strips of ``block_rows`` rows, whatever the scene size.

    With ``settings["chm"]`` (path, tree_height_m, shrub_height_m) the canopy and classes come
    from the canopy height model where it has valid data (:func:`chm_strip`, :func:`chm_canopy`,
    :func:`chm_structure_classes`), read strip by strip in blocks of bounded size, and the
    statistics gain ``chm``: the thresholds, the share of observed pixels (finite NDVI) with
    no valid CHM that fell back to the NDVI rules (``fallback_pct``, ``fallback_pixels``), and the
    observed pixels with a mean height (``height_pixels``) and their mean (``height_mean_m``, metres,
    None if there are none).

    The ``height`` product is always written, so the set of files is fixed: the area-weighted mean
    of the pixel's valid CHM heights in metres (heights < 0 taken as 0, see :func:`chm_on_grid`),
    NaN where no valid CHM covers the pixel or NDVI is NaN, and NaN everywhere without a CHM."""
    missing = [key for key in PRODUCTS if key not in out]
    if missing:
        raise ValueError(f"out must map each of {PRODUCTS} to a path. Got no path for {missing}.")
    v = settings
    structure_classes(np.empty(0, np.float32), v["ndvi_vegetation"], v["ndvi_shrub"], v["ndvi_tree"])  # check thresholds first
    chm = v.get("chm") or None
    if chm:
        tree_h, shrub_h = _check_chm(chm)
    two_pass = endmembers is None and (v.get("ndvi_soil") is None or v.get("ndvi_full") is None)
    grid = gio.read_grid(composite)
    if tile is not None:
        grid = grid.subgrid(tile)
    chm_ratio = _chm_px_per_px(chm["path"], grid) if chm else 1.0
    n_strips = math.ceil(grid.height / block_rows)
    total = n_strips * (2 if two_pass else 1)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    hist = NDVIHistogram()
    if two_pass:
        with gio.raster_writer(out["ndvi"], grid, band_names=["ndvi"], compress=compress) as w:
            for rows, nd in _ndvi_strips(composite, block_rows, tile):
                w.write(nd, rows.start)
                hist.add(nd)
                step()
        strips = gio.read_strips(out["ndvi"], bands=1, block_rows=block_rows)
    else:
        strips = _ndvi_strips(composite, block_rows, tile)
    if endmembers is not None:
        soil, full = float(endmembers[0]), float(endmembers[1])
    else:
        soil, full = fvc_endmembers_from_histogram(hist, tuple(v["fvc_percentiles"]), v.get("ndvi_soil"), v.get("ndvi_full"))

    counts = _new_counts()
    with contextlib.ExitStack() as stack:
        open_ = lambda key, name, tags=None: stack.enter_context(  # noqa: E731
            gio.raster_writer(out[key], grid, band_names=[name], compress=compress, tags=tags))
        w_ndvi = None if two_pass else open_("ndvi", "ndvi")
        w_fvc = open_("fvc", "fvc_frac", {"ndvi_soil": soil, "ndvi_full": full})
        w_veg = open_("vegetation", "vegetation_frac", {"ndvi_threshold": v["ndvi_vegetation"]})
        canopy_tags = {"ndvi_threshold": v["ndvi_tree"]} if not chm else {
            "source": "canopy height model; NDVI rule where it has no valid data", "chm_tree_height_m": tree_h,
            "chm_shrub_height_m": shrub_h, "ndvi_threshold_fallback": v["ndvi_tree"]}
        w_canopy = open_("canopy", "canopy_frac", canopy_tags)
        w_classes = open_("classes", "vegetation_class", {f"class_{k}": name for k, name in CLASS_NAMES.items()})
        height_source = ("canopy height model: area-weighted mean of its valid heights (heights < 0 as 0); "
                         "NaN where it has no valid data or NDVI is NaN") if chm else "no canopy height model: all NaN"
        w_height = open_("height", "height_m", {"unit": "m", "source": height_source})
        for rows, nd in strips:
            if w_ndvi is not None:
                w_ndvi.write(nd, rows.start)
            w_fvc.write(fvc(nd, soil, full), rows.start)
            veg = threshold_mask(nd, v["ndvi_vegetation"])
            if chm:
                strip = grid.subgrid(Tile("", rows.start, 0, rows.stop - rows.start, grid.width))
                tree, woody, height = chm_strip(chm["path"], strip, tree_h, shrub_h, chm_ratio)
                canopy = chm_canopy(nd, tree, v["ndvi_tree"])
                classes = chm_structure_classes(nd, tree, woody, v["ndvi_vegetation"], v["ndvi_shrub"], v["ndvi_tree"])
                height[~np.isfinite(nd)] = np.nan
                no_chm = ~np.isfinite(tree)
            else:
                canopy = threshold_mask(nd, v["ndvi_tree"])
                classes = structure_classes(nd, v["ndvi_vegetation"], v["ndvi_shrub"], v["ndvi_tree"])
                height = np.full(nd.shape, np.nan, dtype=np.float32)
                no_chm = None
            w_veg.write(veg, rows.start)
            w_canopy.write(canopy, rows.start)
            w_classes.write(classes, rows.start)
            w_height.write(height, rows.start)
            _add_counts(counts, nd, veg, canopy, height, no_chm)
            step()
    return _stats(counts, soil, full, v, chm, *((tree_h, shrub_h) if chm else ()))


def run_vegetation(composite: str | Path, out: Mapping[str, str | Path], *, settings: Mapping, block_rows: int = 512,
                   compress: str = "zstd", chm: str | Path | Sequence[str | Path] = ()) -> dict:
    """Rule vegetation: the products of :func:`vegetation_to_files` of ``composite`` at the paths ``out``
    (each of :data:`PRODUCTS`, and ``stats``: vegetation.json, written here); returns the statistics.

    ``settings`` is the vegetation config; ``chm`` the canopy height model file of the year (its path, or
    the rule's input list: empty without vegetation.chm), which replaces ``settings["chm"]["path"]``."""
    settings = _with_chm(settings, chm)
    stats = vegetation_to_files(composite, {k: out[k] for k in PRODUCTS}, settings, compress=compress,
                                block_rows=block_rows, progress=logs.progress(log, "vegetation"))
    gio.write_json(out["stats"], stats)
    log.info("NDVI endmembers soil %.3f / vegetation %.3f; vegetation %.1f %%, tree canopy %.1f %% of observed pixels",
             stats["ndvi_soil"], stats["ndvi_full"], stats["vegetation_pct"], stats["canopy_pct"])
    if "chm" in stats:
        c = stats["chm"]
        log.info("canopy height model %s: %d observed pixels (%.1f %%) had no valid height and use the NDVI rules",
                 c["path"], c["fallback_pixels"], c["fallback_pct"])
        log.info("canopy height: %d pixels with a valid mean height, %s m on average", c["height_pixels"],
                 "n/a" if c["height_mean_m"] is None else f"{c['height_mean_m']:.2f}")
        if c["fallback_pct"] > 50:
            log.warning("the canopy height model covers less than half of the observed pixels (%.1f %% fell back to "
                        "NDVI); check that it overlaps the study area", c["fallback_pct"])
    return stats


# ----------------------------------------------------------------------------- tiled runs (tiles.size_px)


def fvc_endmembers_file(composite: str | Path, settings: Mapping, *, size_px: int | None = None,
                        block_rows: int = 512) -> dict:
    """The FVC endmembers of the whole composite, for a tiled run's vegetation_tile jobs: {ndvi_soil,
    ndvi_full, ndvi_pixels}. Given endmembers (``vegetation.ndvi_soil`` / ``ndvi_full``) are taken as
    they are; the others are the ``fvc_percentiles`` of an :class:`NDVIHistogram` of every NDVI value of
    the grid, filled tile by tile (memory: a strip of ``block_rows`` rows of one tile of ``size_px``), as
    the untiled :func:`vegetation_to_files` fills it strip by strip: the same counts, so the same values."""
    v = settings
    hist = NDVIHistogram()
    if v.get("ndvi_soil") is None or v.get("ndvi_full") is None:
        for tile in gio.read_grid(composite).tiles(size_px):
            for _, nd in _ndvi_strips(composite, block_rows, tile):
                hist.add(nd)
    soil, full = fvc_endmembers_from_histogram(hist, tuple(v["fvc_percentiles"]), v.get("ndvi_soil"), v.get("ndvi_full"))
    return {"ndvi_soil": soil, "ndvi_full": full, "ndvi_pixels": hist.n}


def run_vegetation_endmembers(composite: str | Path, out: str | Path, *, settings: Mapping, size_px: int | None,
                              block_rows: int = 512) -> dict:
    """Rule vegetation_endmembers: :func:`fvc_endmembers_file` of the year's composite, written to ``out``
    (results/{year}/tiles/fvc_endmembers.json); returns it."""
    found = fvc_endmembers_file(composite, settings, size_px=size_px, block_rows=block_rows)
    gio.write_json(out, found)
    log.info("FVC endmembers of the whole grid (%d NDVI values): soil %.4f / vegetation %.4f", found["ndvi_pixels"],
             found["ndvi_soil"], found["ndvi_full"])
    return found


def _with_chm(settings: Mapping, chm: str | Path | Sequence[str | Path]) -> dict:
    settings = dict(settings)
    chm_files = [chm] if isinstance(chm, str | Path) else list(chm)
    if chm_files:
        settings["chm"] = {**settings["chm"], "path": chm_files[0]}
    return settings


def run_vegetation_tile(composite: str | Path, endmembers_json: str | Path, out: Mapping[str, str | Path], *,
                        tile_id: str, size_px: int, settings: Mapping, block_rows: int = 512, compress: str = "zstd",
                        chm: str | Path | Sequence[str | Path] = ()) -> dict:
    """Rule vegetation_tile: every product of :data:`PRODUCTS` of the tile ``tile_id`` of ``grid.tiles(size_px)``
    (:func:`vegetation_to_files` of the composite's window, with the whole grid's FVC endmembers from
    ``endmembers_json``) at the tile paths ``out``; returns the tile's statistics (not written: the mosaic
    counts the whole grid's)."""
    settings = _with_chm(settings, chm)
    tile = gio.read_grid(composite).tile(tile_id, size_px)
    ends = gio.read_json(endmembers_json)
    stats = vegetation_to_files(composite, {k: out[k] for k in PRODUCTS}, settings, compress=compress,
                                block_rows=block_rows, progress=logs.progress(log, f"vegetation {tile_id}"), tile=tile,
                                endmembers=(ends["ndvi_soil"], ends["ndvi_full"]))
    log.info("vegetation tile %s (rows %d-%d, columns %d-%d): vegetation %.1f %%, tree canopy %.1f %% of its observed "
             "pixels", tile.id, tile.row_off, tile.row_off + tile.height - 1, tile.col_off,
             tile.col_off + tile.width - 1, stats["vegetation_pct"], stats["canopy_pct"])
    return stats


def run_vegetation_mosaic(tiles: Mapping[str, Sequence[str | Path]], endmembers_json: str | Path, grid_json: str | Path,
                          out: Mapping[str, str | Path], *, size_px: int, settings: Mapping, block_rows: int = 512,
                          compress: str = "zstd", chm: str | Path | Sequence[str | Path] = ()) -> dict:
    """Rule vegetation_mosaic: the whole-grid products of rule vegetation (``out``: each of :data:`PRODUCTS`
    and ``stats``) from the tile files ``tiles`` (product → the files of ``grid.tiles(size_px)`` in order) of the
    grid of ``grid_json``,
    through :func:`greensink.tiling.mosaic_files`; vegetation.json is counted from the mosaicked strips of
    ``block_rows`` rows in the untiled rule's order, so it is the untiled run's. Returns the statistics."""
    settings = _with_chm(settings, chm)
    v = settings
    chm_cfg = v.get("chm") or None
    tree_h, shrub_h = _check_chm(chm_cfg) if chm_cfg else (None, None)
    ends = gio.read_json(endmembers_json)
    grid = Grid.read(grid_json)
    counts = _new_counts()

    def count(rows: slice, blocks: dict[str, np.ndarray]) -> None:
        nd, height = blocks["ndvi"][0], blocks["height"][0]
        _add_counts(counts, nd, blocks["vegetation"][0], blocks["canopy"][0], height,
                    ~np.isfinite(height) if chm_cfg else None)

    mosaic_files({k: list(tiles[k]) for k in PRODUCTS}, {k: out[k] for k in PRODUCTS}, grid, size_px,
                 block_rows=block_rows, compress=compress, on_strip=count, progress=logs.progress(log, "vegetation mosaic"))
    stats = _stats(counts, ends["ndvi_soil"], ends["ndvi_full"], v, chm_cfg, tree_h, shrub_h)
    gio.write_json(out["stats"], stats)
    log.info("mosaic of %d vegetation tiles of %d px: NDVI endmembers soil %.3f / vegetation %.3f; vegetation %.1f %%, "
             "tree canopy %.1f %% of observed pixels", len(tiles["ndvi"]), size_px, stats["ndvi_soil"],
             stats["ndvi_full"], stats["vegetation_pct"], stats["canopy_pct"])
    return stats
