"""Checks of one scene before it is used: readable band files with a CRS and the bands the profile
reads (:func:`check_scene`), a nodata value that looks wrong (:func:`suspect_nodata`), how its
pixels sit on the grid (:func:`scene_alignment`) and whether its calibrated values look like
reflectance (:func:`calibration_check`). Errors raise InputDataError; doubts are warnings
(strings) that the ingest logs and keeps in ``scenes.json``.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.ingest.reader import dataset, file_alignment, nodata_in_use
from greensink.ingest.scene import Scene
from greensink.io import reading
from greensink.units import format_m

# Calibration check: reflectance lies between 0 and about 1 (bright cloud or snow ~1); a median of the valid
# values of a band after calibration above REFLECTANCE_MEDIAN_MAX or below REFLECTANCE_MEDIAN_MIN is not
# reflectance (uncalibrated DN or radiance, a missing scale or offset). Read from at most ~1024² pixels.
REFLECTANCE_MEDIAN_MAX = 1.5
REFLECTANCE_MEDIAN_MIN = -0.5
# Already reflectance: a profile whose scale is below DN_SCALE_MAX reads digital numbers; when the 99th percentile of
# a band's valid raw values is at most RAW_REFLECTANCE_MAX the file holds reflectance already (0-1), and scaling it
# again gives values near the offset (NDVI ~ 0, no vegetation).
DN_SCALE_MAX = 0.01
RAW_REFLECTANCE_MAX = 1.5

# Suspect nodata: a value (0 or the band minimum) that is not the nodata in use but fills at least
# SUSPECT_NODATA_PCT % of the pixels, and either SUSPECT_EDGE_PCT % of the image border or
# SUSPECT_NODATA_ALONE_PCT % of the pixels, looks like fill; the check reads at most ~1024² pixels.
SUSPECT_NODATA_PCT = 1.0
SUSPECT_EDGE_PCT = 10.0
SUSPECT_NODATA_ALONE_PCT = 5.0


class NoOverlapError(InputDataError):
    """A scene does not overlap the analysis area."""


def check_scene(scene: Scene, grid: Grid, samples: dict | None = None, datasets: dict | None = None) -> list[str]:
    """Check every band file of a scene against the grid; return warnings, raise on errors.

    Errors (InputDataError): a file that cannot be read, has no CRS or lacks the band the profile
    reads; NoOverlapError if no band overlaps the grid. Warnings: a CRS other than the grid's
    (the band is reprojected), a likely wrong nodata value. ``samples``, ``datasets``: see :func:`band_sample`."""
    warnings: list[str] = []
    gxmin, gymin, gxmax, gymax = grid.bounds
    grid_crs = CRS.from_user_input(grid.crs)
    for role, p, band in scene.band_files():
        src = None if datasets is None else datasets.get(p)
        if src is None:
            try:
                src = rasterio.open(p)
            except rasterio.errors.RasterioIOError as exc:
                raise InputDataError(f"scene {scene.scene_id}: {role} band {p} cannot be read ({exc}). "
                                     "Check that the file exists and is a complete GeoTIFF/COG/JPEG2000.") from exc
            if datasets is not None:
                datasets[p] = src  # kept open for the later checks and reads; held_open closes it
        with reading(p, f"{role} band of scene {scene.scene_id}"), (src if datasets is None else contextlib.nullcontext(src)):
            if src.crs is None:
                raise InputDataError(f"scene {scene.scene_id}: {role} band {p} has no CRS. Use a georeferenced file (GeoTIFF/COG/JP2).")
            if band > src.count:
                raise InputDataError(
                    f"scene {scene.scene_id}: {role} file {p} has {src.count} band(s) but profile {scene.sensor!r} reads band {band}. "
                    f"Fix imagery.profiles.{scene.sensor}.bands.{role}, or point {role} at the right file.")
            if src.crs != grid_crs:
                warnings.append(f"scene {scene.scene_id}: {role} band {Path(p).name} is in {src.crs}, not the analysis CRS {grid.crs}; "
                                f"it is reprojected on the fly ({'nearest' if role == 'quality' else 'bilinear'}).")
            xmin, ymin, xmax, ymax = transform_bounds(src.crs, grid.crs, *src.bounds)
        if xmax <= gxmin or xmin >= gxmax or ymax <= gymin or ymin >= gymax:
            raise NoOverlapError(
                f"scene {scene.scene_id}: {role} band {p} (bounds {xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f} in {grid.crs}) "
                f"does not overlap the analysis area {tuple(round(v) for v in grid.bounds)} ({grid.crs}). "
                "Remove the scene or check the zones."
            )
        if role != "quality":
            suspect = suspect_nodata(p, band, scene.nodata, scene.nodata_override, scene.sensor, samples, datasets)
            if suspect:
                warnings.append(f"scene {scene.scene_id}: {suspect}")
    return warnings



def band_sample(path: str, band: int, max_px: int = 1024, samples: dict | None = None,
                what: str = "", datasets: dict | None = None) -> tuple[np.ndarray, float | None]:
    """(values, the file's declared nodata) of ``band`` of ``path`` read at most ~``max_px``² pixels (every
    ``step``-th pixel, nearest neighbour), as stored. ``samples``, a dict the caller keeps for one ingest, holds
    the samples already read, so the checks of one scene (:func:`suspect_nodata`, :func:`calibration_check`)
    decode each band file once."""
    key = (str(path), int(band), int(max_px))
    if samples is not None and key in samples:
        return samples[key]
    with reading(path, what or f"file of band {band}"), dataset(path, datasets) as src:
        step = max(1, math.ceil(max(src.height, src.width) / max_px))
        arr = src.read(band, out_shape=(math.ceil(src.height / step), math.ceil(src.width / step)), resampling=Resampling.nearest)
        out = (arr, src.nodata)
    if samples is not None:
        samples[key] = out
    return out


def suspect_nodata(path: str, band: int, profile_nodata: float | None, override: bool = False, profile: str = "",
                   samples: dict | None = None, datasets: dict | None = None) -> str | None:
    """A warning if a value that is not the nodata in use (0 or the band minimum) looks like fill:
    it covers ≥ SUSPECT_NODATA_PCT % of the pixels and ≥ SUSPECT_EDGE_PCT % of the image border,
    or ≥ SUSPECT_NODATA_ALONE_PCT % of the pixels. None if nothing looks wrong. ``samples``: see :func:`band_sample`."""
    arr, file_nodata = band_sample(path, band, 1024, samples, datasets=datasets)
    nodata = nodata_in_use(file_nodata, profile_nodata, override)
    declared = "declared by the file" if nodata is not None and file_nodata == nodata and not override else "of the profile"
    if arr.size == 0 or arr.min() == arr.max():
        return None  # a constant band gives nothing to compare
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    for value in sorted({0, arr.min().item()}):
        if nodata is not None and value == nodata:
            continue
        share = 100.0 * float((arr == value).mean())
        edge = 100.0 * float((border == value).mean())
        if share >= SUSPECT_NODATA_PCT and (edge >= SUSPECT_EDGE_PCT or share >= SUSPECT_NODATA_ALONE_PCT):
            now = f"the nodata value in use is {nodata:g} ({declared})" if nodata is not None else "no nodata value is set"
            key = f"imagery.profiles.{profile}" if profile else "the profile"
            return (f"{Path(path).name} band {band}: {share:.1f} % of the pixels (and {edge:.0f} % of the image border) "
                    f"are {value}, but {now}. If {value} marks no data, set {key}.nodata: {value} with nodata_override: true "
                    "(otherwise these pixels count as dark surfaces); if it is real data, ignore this warning.")
    return None



def scene_alignment(scene: Scene, grid: Grid, datasets: dict | None = None) -> tuple[dict, list[str]]:
    """How a scene's band files sit on the grid: the record fields ``resampled`` (True if its red or NIR
    band is resampled, i.e. its NDVI is interpolated) and ``resampling`` (per resampled band, quality
    included: role, file, why, shift_m), and one warning naming the scene, the reason and the shift
    in metres when its red or NIR band is resampled in the grid's CRS (a band in another CRS is
    warned about by :func:`check_scene`). ``datasets``: files kept open, see :func:`band_sample`."""
    bands = []
    corner = None
    for role, path, _ in scene.band_files():
        with reading(path, f"{role} band of scene {scene.scene_id}"), dataset(path, datasets) as src:
            how = file_alignment(src.crs, src.transform, grid)
            corner = corner or (src.transform.c, src.transform.f)
        if how is not None:
            bands.append({"role": role, "file": path, **how})
    fields_ = {"resampled": any(b["role"] != "quality" for b in bands), "resampling": bands}
    warnings = []
    # a band in another CRS is warned about by check_scene; here the same CRS at another pixel size or lattice
    reflectance = [b for b in bands if b["role"] != "quality" and not b["why"].startswith("reprojected")]
    if reflectance:
        roles = " and ".join(b["role"] for b in reflectance)
        shift = reflectance[0]["shift_m"]
        fix = (f"To follow this scene's pixels instead, set grid.align: [{format_m(corner[0])}, {format_m(corner[1])}] (one of its pixel corners); "
               "scenes on different lattices cannot all be read without resampling." if shift else
               "Set resolution to the scene's pixel size to read it without resampling.")
        warnings.append(
            f"scene {scene.scene_id}: its {roles} band(s) are resampled onto the analysis grid "
            f"({grid.resolution_m:g} m, {grid.crs}, corner at {format_m(grid.transform.c)}, {format_m(grid.transform.f)}): {reflectance[0]['why']}"
            ". Resampled NDVI blends neighbouring pixels (on Landsat a half-pixel shift moved NDVI by up to 0.44). " + fix)
    return fields_, warnings


def _holds(dtype: np.dtype, value: float) -> bool:
    """True when ``value`` is a number the integer ``dtype`` holds exactly (so some DN can equal it)."""
    info = np.iinfo(dtype)
    return not math.isnan(value) and float(value).is_integer() and info.min <= value <= info.max


def _median_p99(dn: np.ndarray, scale: float, offset: float, need_p99: bool) -> tuple[float, float | None]:
    """The median of ``dn × scale + offset`` (float64) and the 99th percentile of ``dn`` (None unless
    ``need_p99``), both as numpy's median and percentile give them on the float64 values. Integer DNs are
    selected in their own type: the two middle values are found by counting every value (8/16-bit unsigned) or one partition and only they are
    calibrated (calibration is non-decreasing, ``scale`` > 0, so it keeps their rank; an even count takes the
    float64 mean of the two calibrated values, as np.median does), and the percentile of integers is the one
    of their float64 values: the two order statistics numpy interpolates, found by the same partition and
    interpolated in float64 as numpy's ``_lerp`` does."""
    if dn.dtype.kind not in "ui" or scale <= 0:
        values = dn.astype(np.float64)
        return float(np.median(values * scale + offset)), float(np.percentile(values, 99)) if need_p99 else None
    n = dn.size
    mid = [(n - 1) // 2, n // 2]
    at = (n - 1) * 0.99  # numpy's 'linear' percentile: between order statistics floor(at) and the next
    below = min(math.floor(at), n - 1)
    stats = sorted({*mid, below, min(below + 1, n - 1)})
    if dn.dtype.kind == "u" and dn.dtype.itemsize <= 2:  # order statistics from the counts of every value
        cum = np.cumsum(np.bincount(dn.ravel()))
        part = np.zeros(n, dtype=dn.dtype)
        part[stats] = np.searchsorted(cum, stats, side="right")  # the k-th value: the first with more than k at or below it
    else:
        part = np.partition(dn, stats)
    middle = part[mid].astype(np.float64) * scale + offset
    median = float(middle[0]) if n % 2 else float(np.mean(middle))
    if not need_p99:
        return median, None
    if at >= n - 1:
        return median, float(part[n - 1])
    a, b = float(part[below]), float(part[below + 1])  # float64, as numpy interpolates the float64 values
    t = at - below
    diff = b - a
    return median, (b - diff * (1 - t)) if t >= 0.5 else (a + diff * t)


def calibration_check(scene: Scene, max_px: int = 1024, samples: dict | None = None,
                      datasets: dict | None = None) -> tuple[dict, list[str]]:
    """The median of each reflectance band's valid values after calibration (read from at most
    ~``max_px``² pixels of the file), as the record field ``reflectance_median`` {red, nir}, and a
    warning when either median is outside [REFLECTANCE_MEDIAN_MIN, REFLECTANCE_MEDIAN_MAX]:
    those numbers are not reflectance (uncalibrated DN or radiance, or a missing scale/offset).
    ``samples``: see :func:`band_sample` (the sample :func:`suspect_nodata` read is not read again)."""
    medians: dict[str, float | None] = {}
    raw_p99: dict[str, float] = {}
    for role, path, band in scene.band_files():
        if role == "quality":
            continue
        dn, file_nodata = band_sample(path, band, max_px, samples, f"{role} band of scene {scene.scene_id}", datasets)
        nodata = nodata_in_use(file_nodata, scene.nodata, scene.nodata_override)
        if dn.dtype.kind not in "ui":  # compared in float64, as read
            dn = dn.astype(np.float64)
            values = dn[np.isfinite(dn) if nodata is None else np.isfinite(dn) & (dn != nodata)]
        elif nodata is None or not _holds(dn.dtype, nodata):  # integers are finite, and none equals such a nodata
            values = dn.ravel()
        else:
            values = dn[dn != dn.dtype.type(nodata)]
        scale, offset = scene.calibration(role)
        if values.size:
            medians[role], p99 = _median_p99(values, scale, offset, scale < DN_SCALE_MAX)
            if p99 is not None:
                raw_p99[role] = p99
        else:
            medians[role] = None
    scaled = {r: v for r, v in raw_p99.items() if v <= RAW_REFLECTANCE_MAX}
    odd = {r: m for r, m in medians.items() if m is not None and not REFLECTANCE_MEDIAN_MIN <= m <= REFLECTANCE_MEDIAN_MAX}
    warnings = []
    if odd:
        values = ", ".join(f"{r} {m:.4g} (DN × {scene.calibration(r)[0]:g} {scene.calibration(r)[1]:+g})" for r, m in odd.items())
        warnings.append(
            f"scene {scene.scene_id} (profile {scene.sensor}): after calibration the median of the valid {'/'.join(odd)} values is "
            f"{values}; reflectance lies between 0 and about 1, so these look like uncalibrated numbers (DN or radiance), not "
            "reflectance. NDVI thresholds (vegetation.ndvi_vegetation, ndvi_tree) and the FVC endmembers assume reflectance, and "
            f"with an offset or per-band gain missing NDVI itself is wrong. Set imagery.profiles.{scene.sensor}.scale and offset "
            "so that reflectance = DN × scale + offset, one number for both bands or per band, e.g. scale: {red: 0.0123, nir: 0.0098}.")
    if scaled and not odd:
        values = ", ".join(f"{r} {v:.3g} (read as DN × {scene.calibration(r)[0]:g} {scene.calibration(r)[1]:+g} = "
                           f"{v * scene.calibration(r)[0] + scene.calibration(r)[1]:.4g})" for r, v in scaled.items())
        warnings.append(
            f"scene {scene.scene_id} (profile {scene.sensor}): the file's values are already reflectance (99 % of the valid "
            f"{'/'.join(scaled)} values are at most {values}), but profile {scene.sensor} reads digital numbers, so every "
            "pixel becomes nearly the offset: NDVI near 0, no vegetation, no carbon. If the files hold reflectance 0-1, "
            f"set imagery.profiles.{scene.sensor}.scale: 1 and offset: 0 (or use a profile for reflectance files).")
    return {"reflectance_median": medians, "calibration_suspect": bool(odd or scaled)}, warnings
