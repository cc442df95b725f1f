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

:func:`vegetation_to_files` makes every product from a composite file strip by strip, so memory
is bounded by the strip, not the scene. Its FVC endmembers come from an NDVI histogram of the
whole scene (:class:`NDVIHistogram`: 20,000 bins over [−1, 1]), accurate to within one bin
width (1e-4 NDVI) of ``np.percentile`` of all values.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from greensink import io as gio
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


# ----------------------------------------------------------------------------- streaming products

PRODUCTS = ("ndvi", "fvc", "vegetation", "canopy", "classes")


def _ndvi_strips(composite: str | Path, block_rows: int) -> Iterator[tuple[slice, np.ndarray]]:
    for rows, (red, nir) in gio.read_strips(composite, bands=[1, 2], block_rows=block_rows):
        yield rows, ndvi(red, nir)


def vegetation_to_files(
    composite: str | Path,
    out: Mapping[str, str | Path],
    settings: Mapping,
    *,
    compress: str = "zstd",
    block_rows: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """NDVI, FVC, vegetation and canopy masks and structure classes of a composite file (bands
    red, nir), streamed strip by strip; returns the statistics of ``vegetation.json``.

    ``out`` maps each of :data:`PRODUCTS` to a path; ``settings`` holds the ``vegetation`` config
    (fvc_percentiles, ndvi_soil, ndvi_full, ndvi_vegetation, ndvi_shrub, ndvi_tree). When an FVC
    endmember is not given, a first pass writes ndvi.tif while filling an :class:`NDVIHistogram`,
    and the second pass reads NDVI back from it; otherwise one pass does everything. Memory is a
    few strips of ``block_rows`` rows, whatever the scene size."""
    v = settings
    structure_classes(np.empty(0, np.float32), v["ndvi_vegetation"], v["ndvi_shrub"], v["ndvi_tree"])  # check thresholds first
    two_pass = v.get("ndvi_soil") is None or v.get("ndvi_full") is None
    grid = gio.read_grid(composite)
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
            for rows, nd in _ndvi_strips(composite, block_rows):
                w.write(nd, rows.start)
                hist.add(nd)
                step()
        strips = gio.read_strips(out["ndvi"], bands=1, block_rows=block_rows)
    else:
        strips = _ndvi_strips(composite, block_rows)
    soil, full = fvc_endmembers_from_histogram(hist, tuple(v["fvc_percentiles"]), v.get("ndvi_soil"), v.get("ndvi_full"))

    counts = {"veg": 0, "canopy": 0, "valid": 0}
    with contextlib.ExitStack() as stack:
        open_ = lambda key, name, tags=None: stack.enter_context(  # noqa: E731
            gio.raster_writer(out[key], grid, band_names=[name], compress=compress, tags=tags))
        w_ndvi = None if two_pass else open_("ndvi", "ndvi")
        w_fvc = open_("fvc", "fvc_frac", {"ndvi_soil": soil, "ndvi_full": full})
        w_veg = open_("vegetation", "vegetation_frac", {"ndvi_threshold": v["ndvi_vegetation"]})
        w_canopy = open_("canopy", "canopy_frac", {"ndvi_threshold": v["ndvi_tree"]})
        w_classes = open_("classes", "vegetation_class", {f"class_{k}": name for k, name in CLASS_NAMES.items()})
        for rows, nd in strips:
            if w_ndvi is not None:
                w_ndvi.write(nd, rows.start)
            w_fvc.write(fvc(nd, soil, full), rows.start)
            veg = threshold_mask(nd, v["ndvi_vegetation"])
            canopy = threshold_mask(nd, v["ndvi_tree"])
            w_veg.write(veg, rows.start)
            w_canopy.write(canopy, rows.start)
            w_classes.write(structure_classes(nd, v["ndvi_vegetation"], v["ndvi_shrub"], v["ndvi_tree"]), rows.start)
            counts["veg"] += int((veg == 1).sum())
            counts["canopy"] += int((canopy == 1).sum())
            counts["valid"] += int(np.isfinite(nd).sum())
            step()
    pct = (lambda k: 100.0 * counts[k] / counts["valid"]) if counts["valid"] else (lambda k: float("nan"))
    return {"ndvi_soil": soil, "ndvi_full": full, "ndvi_vegetation": v["ndvi_vegetation"], "ndvi_shrub": v["ndvi_shrub"],
            "ndvi_tree": v["ndvi_tree"], "vegetation_pct": pct("veg"), "canopy_pct": pct("canopy")}
