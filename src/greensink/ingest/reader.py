"""Reader: a scene's bands on the analysis grid, one window at a time, as reflectance and a clear-sky mask.

Every band is read through a warped view onto the analysis :class:`~greensink.grid.Grid`
(nearest neighbour for quality bands, bilinear for reflectance), one window at a time, so
memory is bounded by the window, not the scene. A band whose pixels are the grid's pixels (same
CRS, same pixel size, corners on the grid's lattice; :func:`file_alignment`) is copied pixel for
pixel, not interpolated. :func:`read_scene_window` is the one reader of scenes: the ingest
statistics, the windowed composite and the lazy stack (:mod:`greensink.lazy`) all go through it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from greensink.errors import InputDataError
from greensink.grid import Grid, lattice_offset
from greensink.ingest.profiles import quality_clear
from greensink.ingest.scene import Scene
from greensink.units import format_m

# STAC assets read over http(s) (GDAL /vsicurl/): retry transient HTTP errors (429, 5xx) and do not
# list the remote folder on open. Set as environment defaults so every process that reads scenes
# (ingest, composite) has them; a value already in the environment wins.
GDAL_HTTP_DEFAULTS = {"GDAL_HTTP_MAX_RETRY": "5", "GDAL_HTTP_RETRY_DELAY": "2", "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
for _k, _v in GDAL_HTTP_DEFAULTS.items():
    os.environ.setdefault(_k, _v)


def nodata_in_use(file_nodata: float | None, profile_nodata: float | None, override: bool) -> float | None:
    """The nodata value a band is read with: the profile's where the file declares none or the
    profile overrides it (``nodata_override``), else the file's."""
    return profile_nodata if (override or file_nodata is None) else file_nodata


def file_alignment(crs: Any, transform: Any, grid: Grid) -> dict | None:
    """None when a file's pixels are pixels of ``grid`` (same CRS, north-up, same pixel size, corners
    on the grid's lattice within 1e-6 m), so it is read without resampling; else why it is resampled:
    ``{"why": text, "shift_m": [dx, dy] or None}``. ``shift_m`` is how far the file's pixel corners
    lie from the grid's lattice (each in (−res/2, res/2], metres) when only that differs."""
    res = grid.resolution_m
    if crs is None or CRS.from_user_input(crs) != CRS.from_user_input(grid.crs):
        return {"why": f"reprojected from {crs} to {grid.crs}", "shift_m": None}
    t = transform
    if abs(t.b) > 1e-9 or abs(t.d) > 1e-9 or abs(t.a - res) > 1e-6 or abs(t.e + res) > 1e-6:
        size = f"{abs(t.a):g} × {abs(t.e):g} m" + (" (rotated or not north-up)" if t.b or t.d or t.e > 0 else "")
        return {"why": f"pixel size {size} resampled to the {res:g} m grid", "shift_m": None}
    ox, oy = lattice_offset((t.c, t.f), res)
    gx, gy = lattice_offset((grid.transform.c, grid.transform.f), res)
    shift = []
    for a, b in ((ox, gx), (oy, gy)):
        d = math.fmod(a - b, res)
        d = d - res if d > res / 2 else d + res if d <= -res / 2 else d
        shift.append(0.0 if abs(d) < 1e-6 else round(d, 6))
    if shift == [0.0, 0.0]:
        return None
    return {"why": f"pixel corners {format_m(shift[0])} m east, {format_m(shift[1])} m north of the grid's: bilinear resampling by a "
                   "sub-pixel shift", "shift_m": shift}


# ----------------------------------------------------------------------------- reading


def _scale_ratio(src: rasterio.DatasetReader, grid: Grid) -> tuple[float, float]:
    """Destination pixels per source pixel along x and y (GDAL's XSCALE / YSCALE warp options),
    from the source's pixel size expressed in the grid's CRS at the source's centre."""
    from rasterio.warp import transform as warp_transform

    left, bottom, right, top = src.bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    rx, ry = abs(src.res[0]), abs(src.res[1])
    xs, ys = warp_transform(src.crs, grid.crs, [cx, cx + rx, cx], [cy, cy, cy + ry])
    px = float(np.hypot(xs[1] - xs[0], ys[1] - ys[0]))
    py = float(np.hypot(xs[2] - xs[0], ys[2] - ys[0]))
    res = grid.resolution_m
    return px / res, py / res


def _lattice_factor(src: rasterio.DatasetReader, grid: Grid) -> tuple[int, int, int, int] | None:
    """(kx, ky, dx, dy) when the file's pixels are whole blocks of kx × ky grid pixels on the grid's lattice
    (same CRS, north-up, pixel size k × the grid's within 1e-6 m, corners on the grid's lattice): grid column j
    lies in file column (j + dx) // kx, grid row i in file row (i + dy) // ky. None otherwise."""
    t, res = src.transform, grid.resolution_m
    if src.crs is None or abs(t.b) > 1e-9 or abs(t.d) > 1e-9 or t.a <= 0 or t.e >= 0:
        return None
    k = []
    for size in (t.a, -t.e):
        n = round(size / res)
        if n < 1 or abs(size - n * res) > 1e-6:
            return None
        k.append(n)
    d = []
    for offset in ((grid.transform.c - t.c) / res, (t.f - grid.transform.f) / res):
        n = round(offset)
        if abs(offset - n) * res > 1e-6:
            return None
        d.append(n)
    if CRS.from_user_input(src.crs) != CRS.from_user_input(grid.crs):
        return None
    return k[0], k[1], d[0], d[1]


def _direct_read(src: rasterio.DatasetReader, band: int, grid: Grid, window: Window, nodata: float | None,
                 nearest: bool) -> tuple[np.ndarray, float | None, np.ndarray | None] | None:
    """What the warped read of :func:`_warped_read` gives, read straight from the file's blocks, where that is
    the same array: the file's pixels are the grid's (``kx = ky = 1``), or whole blocks of grid pixels read
    with nearest neighbour (a 20 m quality band on a 10 m grid: each file pixel repeated), with the same fill
    (``nodata``, or 0 and the outside mask) where the file does not reach. None where the warp is needed: another
    lattice, CRS or pixel size, an interpolated band, a file whose validity comes from an alpha band or a
    per-dataset mask (the warper applies those), or a nodata value the band's type cannot hold."""
    from rasterio.enums import ColorInterp, MaskFlags

    lattice = _lattice_factor(src, grid)
    if lattice is None or (not nearest and lattice[:2] != (1, 1)) or ColorInterp.alpha in src.colorinterp:
        return None
    flags = src.mask_flag_enums[band - 1]
    if MaskFlags.per_dataset in flags or MaskFlags.alpha in flags:
        return None
    dtype = np.dtype(src.dtypes[band - 1])
    if nodata is not None and not (np.isnan(nodata) and dtype.kind == "f") and np.array(nodata).astype(dtype) != nodata:
        return None
    kx, ky, dx, dy = lattice
    h, w = int(window.height), int(window.width)
    fcols = (np.arange(int(window.col_off), int(window.col_off) + w) + dx) // kx
    frows = (np.arange(int(window.row_off), int(window.row_off) + h) + dy) // ky
    cin = np.flatnonzero((fcols >= 0) & (fcols < src.width))
    rin = np.flatnonzero((frows >= 0) & (frows < src.height))
    fill = 0 if nodata is None else nodata
    if cin.size == 0 or rin.size == 0:
        arr = np.full((h, w), fill, dtype=dtype)
        return arr, nodata, (np.ones((h, w), dtype=bool) if nodata is None else None)
    c0, c1, r0, r1 = int(fcols[cin[0]]), int(fcols[cin[-1]]) + 1, int(frows[rin[0]]), int(frows[rin[-1]]) + 1
    data = src.read(band, window=Window(c0, r0, c1 - c0, r1 - r0))
    if (kx, ky) != (1, 1):
        data = data[frows[rin] - r0][:, fcols[cin] - c0]
    inside = (slice(int(rin[0]), int(rin[-1]) + 1), slice(int(cin[0]), int(cin[-1]) + 1))
    if data.shape == (h, w):
        return data, nodata, (np.zeros((h, w), dtype=bool) if nodata is None else None)
    arr = np.full((h, w), fill, dtype=dtype)
    arr[inside] = data
    outside = None
    if nodata is None:
        outside = np.ones((h, w), dtype=bool)
        outside[inside] = False
    return arr, nodata, outside


@contextlib.contextmanager
def held_open() -> Iterator[dict]:
    """A dict that keeps the band files the reader opens open until the block ends (one handle per file, used by
    one thread): pass it as ``datasets`` to :func:`read_scene_window` (and the checks' samples) so that a file tile
    which several windows cross, or which a check has read already, is decoded once (GDAL's block cache lives
    with the handle) instead of once per window."""
    held: dict = {}
    try:
        yield held
    finally:
        for src in held.values():
            src.close()
        held.clear()


@contextlib.contextmanager
def dataset(path: str, datasets: dict | None = None) -> Iterator[rasterio.DatasetReader]:
    """``path`` open for reading: the handle kept in ``datasets`` (from :func:`held_open`; opened and kept there
    on first use), or, without it, a handle closed at the end of the block."""
    if datasets is None:
        with rasterio.open(path) as src:
            yield src
        return
    src = datasets.get(path)
    if src is None:
        src = datasets[path] = rasterio.open(path)
    yield src


def _warped_read(path: str, band: int, grid: Grid, window: Window, resampling: Resampling,
                 profile_nodata: float | None = None, override: bool = False,
                 datasets: dict | None = None) -> tuple[np.ndarray, float | None, np.ndarray | None]:
    """One band of a file on ``grid`` in ``window``: (DN array, nodata value in use, outside mask or None).

    A file that declares no nodata still has the sensor's fill value (e.g. DN 0): telling the
    warper keeps fill out of the bilinear kernel, so scene edges and holes do not blend into
    data. With no nodata at all, an alpha band marks the pixels outside the file."""
    try:
        with dataset(path, datasets) as src:
            nodata = nodata_in_use(src.nodata, profile_nodata, override)
            direct = _direct_read(src, band, grid, window, nodata, nearest=resampling == Resampling.nearest)
            if direct is not None:
                return direct
            if file_alignment(src.crs, src.transform, grid) is None:
                resampling = Resampling.nearest  # the file's pixels are the grid's: copied, not interpolated
            opts = dict(crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height, resampling=resampling)
            if resampling != Resampling.nearest:
                # Fix the kernel scale for the whole scene: GDAL otherwise derives it per warp chunk, so a
                # scene finer than the grid came out slightly different in different windows (strips, tiles).
                sx, sy = _scale_ratio(src, grid)
                opts.update(XSCALE=str(sx), YSCALE=str(sy))
            if resampling != Resampling.nearest:
                opts["dtype"] = "float32"  # interpolated DNs are not rounded back to integers (0.5 DN is 0.2 % of a uint8 range)
            if nodata is None:
                with WarpedVRT(src, add_alpha=True, **opts) as vrt:
                    arr = vrt.read(band, window=window)
                    outside = vrt.read(vrt.count, window=window) == 0
                return arr, None, outside
            # UNIFIED_SRC_NODATA=NO: in a multi-band file (NAIP) a pixel is no data band by band, not only where every band is
            with WarpedVRT(src, src_nodata=nodata, nodata=nodata, UNIFIED_SRC_NODATA="NO", **opts) as vrt:
                arr = vrt.read(band, window=window)
        return arr, nodata, None
    except rasterio.errors.RasterioError as exc:
        from greensink.io import error_text

        raise InputDataError(f"{path}: band {band} cannot be read ({error_text(exc)}). The file may be truncated or corrupt: "
                             "download or export it again.") from exc


@functools.lru_cache(maxsize=256)
def _footprint(path: str, crs: str) -> tuple[float, float, float, float]:
    """Bounds of a file in ``crs`` (densified, so a reprojected footprint is inside them)."""
    with rasterio.open(path) as src:
        return transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)


def scene_window(scene: Scene, grid: Grid, window: Window) -> Window | None:
    """The part of ``window`` (grid pixels) that the scene's red and NIR files can reach, with a
    one-pixel margin for the bilinear kernel; None if they do not reach it."""
    b = np.array([_footprint(p, grid.crs) for p in (scene.red, scene.nir)])
    xmin, ymin, xmax, ymax = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    inv = ~grid.transform
    c0, r0 = inv @ (xmin, ymax)
    c1, r1 = inv @ (xmax, ymin)
    col0 = max(int(math.floor(c0)) - 1, window.col_off)
    row0 = max(int(math.floor(r0)) - 1, window.row_off)
    col1 = min(int(math.ceil(c1)) + 1, window.col_off + window.width)
    row1 = min(int(math.ceil(r1)) + 1, window.row_off + window.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_scene_window(scene: Scene, grid: Grid, window: Window,
                      out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                      datasets: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red and NIR reflectance (float32, NaN where no data) and the clear-sky mask for a window.

    Only the part of the window the scene's files reach is read; the rest is NaN and not clear. ``out``: three
    arrays of the window's shape (float32, float32, bool; e.g. one scene's slices of a composite's stack) to
    fill and return instead of new ones. ``datasets``: band files kept open across windows (:func:`held_open`)."""
    shape = (int(window.height), int(window.width))
    if out is None:
        red = np.full(shape, np.nan, dtype=np.float32)
        nir = np.full(shape, np.nan, dtype=np.float32)
        clear = np.zeros(shape, dtype=bool)
    else:
        red, nir, clear = out
        red.fill(np.nan)
        nir.fill(np.nan)
        clear.fill(False)
    _read(scene, grid, window, (red, nir), clear, datasets)
    return red, nir, clear


def read_scene_valid(scene: Scene, grid: Grid, window: Window, datasets: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(where red and NIR both have data, the clear-sky mask) of a window: ``isfinite(red) & isfinite(nir)`` and
    ``clear`` of :func:`read_scene_window`, the same arrays, without making the reflectance where no value is
    needed (integer bands whose every value calibrates to a finite float32; others are calibrated)."""
    shape = (int(window.height), int(window.width))
    valid = np.zeros(shape, dtype=bool)
    clear = np.zeros(shape, dtype=bool)
    _read(scene, grid, window, None, clear, datasets, valid)
    return valid, clear


def _finite_everywhere(dtype: np.dtype, scale: float, offset: float) -> bool:
    """True when every value of the integer ``dtype`` calibrates (float64, rounded to float32) to a finite
    number: calibration is non-decreasing for ``scale`` > 0, so the two ends of the type's range decide."""
    if dtype.kind not in "ui" or not scale > 0:
        return False
    info = np.iinfo(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        ends = (np.array([info.min, info.max], dtype=np.float64) * scale + offset).astype(np.float32)
    return bool(np.isfinite(ends).all())


def _read(scene: Scene, grid: Grid, window: Window, bands: tuple[np.ndarray, np.ndarray] | None, clear: np.ndarray,
          datasets: dict | None, valid: np.ndarray | None = None) -> None:
    """Fill ``bands`` (red, nir reflectance; NaN-filled) or ``valid`` (False-filled: both bands have data), and
    ``clear`` (False-filled), in the part of ``window`` the scene reaches."""
    sub = scene_window(scene, grid, window)
    if sub is None:
        return
    at = (slice(sub.row_off - window.row_off, sub.row_off - window.row_off + sub.height),
          slice(sub.col_off - window.col_off, sub.col_off - window.col_off + sub.width))
    ok = None
    for k, (path, band, role) in enumerate(((scene.red, scene.red_band, "red"), (scene.nir, scene.nir_band, "nir"))):
        dn, nodata, outside = _warped_read(path, band, grid, sub, Resampling.bilinear, scene.nodata, scene.nodata_override,
                                           datasets)
        scale, offset = scene.calibration(role)
        if bands is None and _finite_everywhere(dn.dtype, scale, offset):
            # finite reflectance exactly where the calibrated band below is not NaN
            has = np.ones(dn.shape, dtype=bool) if nodata is None else dn != nodata
        else:
            # float64 then one rounding to float32: the same reflectance from either S2 baseline is bit-identical
            refl = (dn.astype(np.float64) * scale + offset).astype(np.float32)
            if nodata is not None:
                refl[dn == nodata] = np.nan
            if outside is not None:
                refl[outside] = np.nan
            if bands is not None:
                bands[k][at] = refl
                continue
            has = np.isfinite(refl)
        if outside is not None:
            has &= ~outside
        ok = has if ok is None else ok & has
    if bands is not None:
        ok = np.isfinite(bands[0][at]) & np.isfinite(bands[1][at])
    else:
        valid[at] = ok
    if scene.quality is not None and scene.quality_rule:
        q, qnodata, outside = _warped_read(scene.quality, scene.quality_band, grid, sub, Resampling.nearest,
                                           datasets=datasets)
        ok &= quality_clear(q, scene.quality_rule)
        if qnodata is not None:
            ok &= q != qnodata
        if outside is not None:
            ok &= ~outside
    clear[at] = ok
