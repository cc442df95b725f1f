"""Reading and writing: the only module of greensink that touches disk.

Conventions, from the output contract in DESIGN.md:

* rasters are Cloud-Optimized GeoTIFFs, float32, nodata NaN, on the run's :class:`Grid`,
  with band descriptions; the codec is a setting (``output.compress``);
* tables are GeoPackage (one layer per file, named after the file) plus a CSV twin;
* every file is written under a temporary name in the same folder and renamed when
  complete, so an interrupted run never leaves a half-written output;
* writing is deterministic: fixed creation options, fixed GeoPackage timestamps, sorted
  JSON keys, so two runs over the same inputs give identical tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import rasterio._err  # CPLE_BaseError: GDAL's own errors (e.g. IReadBlock failed)
import rasterio.shutil
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from greensink.errors import InputDataError
from greensink.grid import Grid

log = logging.getLogger(__name__)

# GeoPackage stores a "last change" timestamp; a fixed one keeps reruns byte-identical.
pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})

# GDAL's block cache defaults to 5 % of the machine's RAM, and a COG copy fills it with the whole
# source raster when it fits: 1.2 GiB on a 24 GiB machine, more on a bigger node. Bounding it keeps
# memory per job set by the strip size, not by the raster or the machine (a 6000² three-band COG
# copy peaked at 860 MiB with the default and 610 MiB with 256 MiB, in the same time). A
# GDAL_CACHEMAX already in the environment wins. GDAL reads it at its first block read, so it
# holds in processes that import greensink.io before reading rasters (every workflow script).
GDAL_CACHE_MB = 256
os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))

COMPRESS_OPTIONS = {
    "zstd": {"compress": "ZSTD", "level": 1, "predictor": 2},
    "deflate": {"compress": "DEFLATE", "level": 6, "predictor": 2},
    "lzw": {"compress": "LZW", "predictor": 2},
    "none": {"compress": "NONE"},
}


def special_file(path: str | Path) -> str | None:
    """What ``path`` is when it exists but is neither a regular file nor a folder ("a named pipe (FIFO)",
    "a character device", ...), else None. Reading or hashing such a path can block forever (/dev/zero)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None


def check_readable(path: str | Path, what: str = "input") -> None:
    """Raise InputDataError naming ``path`` when it is a device, pipe or socket rather than a file."""
    if "://" in str(path) or str(path).startswith("/vsi"):
        return
    kind = special_file(path)
    if kind:
        raise InputDataError(f"{path}: the {what} is {kind}, not a file; reading it could block forever. "
                             "Give the path of a regular file.")


# What the libraries raise when a file cannot be read or parsed; :func:`reading` turns each into an InputDataError.
READ_ERRORS: tuple[type[BaseException], ...] = (
    rasterio.errors.RasterioError, rasterio._err.CPLE_BaseError, pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError, pyogrio.errors.FieldError, pyogrio.errors.GeometryError, pd.errors.ParserError,
    pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
)
CORRUPT_FIX = "The file may be truncated or corrupt: download or export it again."


def error_text(exc: BaseException) -> str:
    """The library's reason for ``exc`` in one line, with GDAL's own text where rasterio only says "see previous
    exception" (e.g. ``IReadBlock failed at X offset 0, Y offset 3``)."""
    text = " ".join(str(exc).split())
    cause = exc.__cause__ or exc.__context__
    if cause is not None and (not text or "previous exception" in text):
        text = f"{text.split('.')[0]}: {' '.join(str(cause).split())}" if text else " ".join(str(cause).split())
    return text or type(exc).__name__


@contextlib.contextmanager
def reading(path: str | Path, what: str = "input file", fix: str = CORRUPT_FIX) -> Iterator[None]:
    """The one guard of every read of a user's file: refuse a device or pipe up front, then turn any failure
    to read or parse ``path`` inside the block (rasterio/GDAL incl. block reads, pyogrio, pandas, OS errors)
    into an InputDataError naming the file, what it is, the library's reason and ``fix``.
    A GreensinkError raised inside (already a clear message) passes through."""
    from greensink.errors import GreensinkError

    check_readable(path, what)
    try:
        yield
    except (GreensinkError, rasterio.errors.WindowError):  # a window outside the raster is the caller's to handle
        raise
    except READ_ERRORS as exc:
        raise InputDataError(f"{path}: the {what} cannot be read ({error_text(exc)}). {fix}") from exc


# errno values and GDAL texts of a write the file system refused: disk full, quota, file size limit
_FULL_ERRNOS = {28, 27, 122}  # ENOSPC, EFBIG, EDQUOT
FULL_DISK_MIB = 16  # a failed write with less free space than this is reported as a full disk
_FULL_TEXTS = ("no space left", "file too large", "quota", "seek", "write failed", "failed to write", "short write")


def _refused_write(exc: BaseException, tmp: Path | None = None) -> bool:
    """True when ``exc`` (or an exception it chains) says the file system refused a write, or when a library's
    write error (GDAL often reports only "Unknown GDAL Error" or a seek error) meets a disk with under
    FULL_DISK_MIB free or a process with a file size limit (ulimit -f)."""
    import resource
    import shutil

    if isinstance(exc, (OSError, SystemError, *READ_ERRORS)) and tmp is not None:
        try:
            if shutil.disk_usage(tmp.parent).free < FULL_DISK_MIB * 2**20:
                return True
            if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
                return True  # GDAL's temporaries (COG staging, overviews) hit the limit before ours does
        except OSError:
            pass
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if isinstance(exc, (OSError, *READ_ERRORS)) and any(t in str(exc).lower() for t in _FULL_TEXTS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A write the file system refuses (disk full, quota, file size limit) raises an OutputWriteError naming
    ``path``, the reason and the free space, instead of GDAL's seek error; the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # temporaries of an earlier attempt killed hard (SIGKILL, power loss) before its cleanup: one job writes a path at a time
    for pattern in (f".{path.stem}.*.tmp{path.suffix}", f".{path.stem}.*.tmp{path.suffix}.aux.xml",
                    f".{path.stem}.*.tmp.stage.tif", f".{path.stem}.*.tmp.stage.tif.aux.xml"):
        for stale in path.parent.glob(pattern):
            stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # drivers want to create the file themselves
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except Exception as exc:
        if not _refused_write(exc, tmp_path):
            raise
        import resource
        import shutil

        from greensink.errors import OutputWriteError

        tmp_path.unlink(missing_ok=True)
        free = shutil.disk_usage(path.parent).free / 2**20
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        full = ("the disk is full" if free < FULL_DISK_MIB else
                f"the file size limit of this process (ulimit -f, {limit} bytes) was reached" if limit != resource.RLIM_INFINITY
                else "the disk or your quota is full")
        raise OutputWriteError(
            f"{path}: cannot be written ({error_text(exc)}); {free:.1f} MiB free on its disk: {full}. Free space (or raise "
            "the limit) and run the same command again; it resumes where it stopped, and no half-written file was left.") from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# ----------------------------------------------------------------------------- rasters


def write_raster(
    path: str | Path,
    data: np.ndarray,
    grid: Grid,
    *,
    band_names: Sequence[str] | None = None,
    compress: str = "zstd",
    nodata: float | int | None = float("nan"),
    tags: dict[str, str] | None = None,
    band_tags: Sequence[dict[str, str]] | None = None,
) -> Path:
    """Write ``data`` (rows, cols) or (bands, rows, cols) as a COG on ``grid``, atomically.

    float data are written as float32 with nodata NaN; integer data keep their dtype and
    take ``nodata`` as given (or none)."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.shape[1:] != grid.shape:
        raise ValueError(f"write_raster {path}: array shape {arr.shape[1:]} does not match grid {grid.shape}.")
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32, copy=False)
        nodata = float("nan")
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        **_cog_profile(arr.dtype, compress),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
            for i, name in enumerate(band_names or [], start=1):
                dst.set_band_description(i, name)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
            for i, btags in enumerate(band_tags or [], start=1):
                dst.update_tags(i, **{k: str(v) for k, v in btags.items()})
    return path


# The tiled GeoTIFF a streamed raster is staged in before its COG copy: ZSTD level 1, band
# interleaved (the GTiff driver takes ZSTD_LEVEL; it ignores the COG driver's generic LEVEL and
# would use level 9, which made staging 9× slower).
STAGE_OPTIONS = {"compress": "ZSTD", "zstd_level": 1, "interleave": "band"}


class StripWriter:
    """Writes row strips of a raster opened by :func:`raster_writer`.

    ``write(data, row_off)`` writes a (rows, cols) or (bands, rows, cols) block at row
    ``row_off`` (all columns of the grid); ``update_tags`` sets dataset tags until the writer
    closes, so statistics gathered while streaming can be stored with the raster."""

    def __init__(self, dst: rasterio.io.DatasetWriter, grid: Grid, dtype: np.dtype) -> None:
        self._dst = dst
        self._grid = grid
        self._dtype = dtype
        self.rows_written = 0

    def write(self, data: np.ndarray, row_off: int) -> None:
        arr = np.asarray(data)
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        if arr.shape[0] != self._dst.count or arr.shape[2] != self._grid.width or not 0 <= row_off <= self._grid.height - arr.shape[1]:
            raise ValueError(f"{self._dst.name}: strip of shape {arr.shape} at row {row_off} does not fit "
                             f"{self._dst.count} band(s) of grid {self._grid.shape}.")
        self._dst.write(arr.astype(self._dtype, copy=False), window=Window(0, row_off, self._grid.width, arr.shape[1]))
        self.rows_written += arr.shape[1]

    def update_tags(self, bidx: int = 0, **tags: object) -> None:
        self._dst.update_tags(bidx, **{k: str(v) for k, v in tags.items()})


def _cog_profile(dtype: np.dtype, compress: str) -> dict:
    """Creation options shared by :func:`write_raster` and :func:`raster_writer`."""
    floating = np.issubdtype(dtype, np.floating)
    profile = {
        "blocksize": 512,
        "overviews": "auto",
        "resampling": "average" if floating else "nearest",
        **COMPRESS_OPTIONS[compress],
    }
    if not floating and profile.get("predictor") == 2 and dtype.itemsize > 4:
        profile.pop("predictor")
    return profile


@contextlib.contextmanager
def raster_writer(
    path: str | Path,
    grid: Grid,
    count: int = 1,
    *,
    dtype: str | np.dtype = "float32",
    band_names: Sequence[str] | None = None,
    compress: str = "zstd",
    nodata: float | int | None = float("nan"),
    tags: dict[str, object] | None = None,
    band_tags: Sequence[dict[str, object]] | None = None,
    threads: int = 1,
) -> Iterator[StripWriter]:
    """Stream a raster to ``path`` strip by strip: the streaming twin of :func:`write_raster`.

    Strips go straight into a tiled GeoTIFF (512 × 512 tiles, ZSTD level 1) staged beside
    ``path``; when the block ends without error, the stage is copied to a COG with the same
    creation options as :func:`write_raster` (codec ``compress``, overviews, average
    resampling for floats) and renamed onto ``path``. Memory is one strip plus GDAL's block
    cache, whatever the raster's size. If the block raises, nothing is left behind. Strips
    not written stay nodata. Strips whose rows are a multiple of 512 fill whole tile rows
    and are written once; other strip heights work but make GDAL re-encode partial tiles.
    ``threads`` > 1 lets GDAL compress the COG copy on that many threads (the same bytes; about a
    third faster with 2)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        dtype, nodata = np.dtype(np.float32), float("nan")
    path = Path(path)
    with atomic_path(path) as tmp:
        stage = tmp.with_name(tmp.stem + ".stage.tif")
        profile = {
            "driver": "GTiff", "width": grid.width, "height": grid.height, "count": count, "dtype": dtype.name,
            "crs": grid.crs, "transform": grid.transform, "nodata": nodata,
            "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER", **STAGE_OPTIONS,
        }
        try:
            with rasterio.open(stage, "w", **profile) as dst:
                writer = StripWriter(dst, grid, dtype)
                yield writer
                for i, name in enumerate(band_names or [], start=1):
                    dst.set_band_description(i, name)
                if tags:
                    writer.update_tags(**tags)
                for i, btags in enumerate(band_tags or [], start=1):
                    writer.update_tags(i, **btags)
            options = _cog_profile(dtype, compress) | ({"num_threads": str(threads)} if threads > 1 else {})
            rasterio.shutil.copy(stage, tmp, driver="COG", **options)
        finally:
            for leftover in (stage, stage.with_name(stage.name + ".aux.xml")):
                leftover.unlink(missing_ok=True)


def read_strips(path: str | Path, bands: int | Sequence[int] | None = None,
                block_rows: int = 512) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (row slice, block) for successive row strips of ``block_rows`` rows of a raster,
    each block read as :func:`read_raster` reads (float32, nodata as NaN)."""
    with reading(path, "raster"), open_raster(path) as src:
        if bands is None:
            idx = 1 if src.count == 1 else list(range(1, src.count + 1))
        else:
            idx = bands
        for r in range(0, src.height, block_rows):
            h = min(block_rows, src.height - r)
            arr = src.read(idx, window=Window(0, r, src.width, h), masked=True)
            yield slice(r, r + h), arr.astype(np.float32).filled(np.nan)


def read_raster(path: str | Path, bands: int | Sequence[int] | None = None, window: Window | None = None) -> np.ndarray:
    """Read a raster as float32 with nodata turned into NaN: (bands, rows, cols), or (rows, cols)
    when ``bands`` is one int or the file has a single band and ``bands`` is None."""
    with reading(path, "raster"), open_raster(path) as src:
        if bands is None:
            idx = 1 if src.count == 1 else list(range(1, src.count + 1))
        else:
            idx = bands
        band_list = [idx] if isinstance(idx, int) else list(idx)
        simple = all(set(src.mask_flag_enums[b - 1]) <= {MaskFlags.nodata, MaskFlags.all_valid} for b in band_list)
        if not simple:  # alpha or internal mask bands: let GDAL's mask decide
            return src.read(idx, window=window, masked=True).astype(np.float32).filled(np.nan)
        # Only a nodata value (or nothing) marks missing pixels: read straight into float32 and
        # replace nodata in place, without the masked array's extra copies (see benchmarks/README.md).
        out = src.read(idx, window=window, out_dtype=np.float32)
        nodata = src.nodata
        if nodata is not None and not np.isnan(nodata):
            out[out == np.float32(nodata)] = np.nan
    return out


def read_grid(path: str | Path) -> Grid:
    """The :class:`Grid` of a raster file."""
    with reading(path, "raster"), open_raster(path) as src:
        if src.crs is None:
            raise InputDataError(f"{path}: the raster has no CRS (a file without georeferencing, or cut short). "
                                 f"{CORRUPT_FIX} If the workflow wrote it, delete it and run again.")
        return Grid(crs=src.crs.to_string(), transform=src.transform, width=src.width, height=src.height)


def band_names(path: str | Path) -> list[str]:
    with reading(path, "raster"), open_raster(path) as src:
        return [d or f"band_{i}" for i, d in enumerate(src.descriptions, start=1)]


def open_raster(path: str | Path) -> rasterio.DatasetReader:
    """Open a raster for reading, or raise an InputDataError naming the file."""
    check_readable(path, "raster")
    try:
        return rasterio.open(path)
    except (rasterio.errors.RasterioError, rasterio._err.CPLE_BaseError) as exc:
        raise InputDataError(f"{path}: cannot be opened as a raster ({error_text(exc)}). Check the path and that the file is a "
                             "complete GeoTIFF/COG/JPEG2000 (download or export it again if it was cut short).") from exc


# ----------------------------------------------------------------------------- tables


def read_vector(path: str | Path, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer (any format GDAL reads), or raise an InputDataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: file not found. Check the path in the config.")
    check_readable(path, "vector file")
    if path.suffix == ".parquet":  # GeoParquet (pyogrio's GDAL has no Parquet driver)
        try:
            return gpd.read_parquet(path)
        except Exception as exc:
            raise InputDataError(f"{path}: cannot be read as GeoParquet ({exc}).") from exc
    try:
        table = gpd.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several DataSourceError subclasses
        raise InputDataError(f"{path}: cannot be read as a vector layer ({error_text(exc)}). Give a vector file GDAL reads "
                             "(GeoPackage, Shapefile, GeoJSON, ...); if it was cut short, export it again.") from exc
    if not isinstance(table, gpd.GeoDataFrame) or table.geometry.name not in table.columns:
        cols = [str(c) for c in table.columns]
        xy = [c for c in cols if c.lower() in ("x", "y", "lon", "lat", "longitude", "latitude", "easting", "northing")]
        hint = (f" It has coordinate columns {xy}, but a CSV carries no CRS: make a point layer of it with its CRS, e.g. "
                f"ogr2ogr -a_srs EPSG:XXXX -oo X_POSSIBLE_NAMES={xy[0]} -oo Y_POSSIBLE_NAMES={xy[-1]} {path.stem}.gpkg {path.name} "
                "(or QGIS: Layer > Add Delimited Text Layer, then Export > Save Features As GeoPackage).") if xy else ""
        raise InputDataError(f"{path}: has no geometry (columns: {cols[:12]}), so its rows cannot be placed on the map.{hint} "
                             "Give a vector layer (GeoPackage, Shapefile, GeoJSON).")
    return table


def write_geoparquet(path: str | Path, table: gpd.GeoDataFrame) -> Path:
    """Write ``table`` as GeoParquet only (an intermediate table the workflow reads back with :func:`read_vector`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False, compression="zstd", write_covering_bbox=False)
    return path


def write_table(path: str | Path, table: gpd.GeoDataFrame | pd.DataFrame, *, layer: str | None = None, csv: bool = True,
                parquet: bool = False, geometry_type: str | None = None) -> Path:
    """Write a GeoPackage (layer named after the file unless given), a CSV twin without geometry and,
    if asked, a GeoParquet twin; a plain DataFrame has no geometry and is written as the CSV (with a Parquet
    twin if asked) alone.
    Returns the main file written."""
    path = Path(path)
    if not isinstance(table, gpd.GeoDataFrame):  # a plain table: the CSV (and the Parquet twin if asked)
        if parquet:
            with atomic_path(path.with_suffix(".parquet")) as tmp:
                table.to_parquet(tmp, index=False, compression="zstd")
        return write_csv(path.with_suffix(".csv"), table)
    layer = layer or path.stem
    with atomic_path(path) as tmp:
        # GeoPackage 1.2: what every QGIS 3 / GDAL >= 2.2 reads without a warning (newer GDAL writes 1.4)
        # geometry_type (e.g. "Polygon") declares the layer's type, so an empty layer is still a polygon layer in QGIS
        extra = {"geometry_type": geometry_type} if geometry_type else {}
        table.to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio", dataset_options={"VERSION": "1.2"}, **extra)
    if csv:
        write_csv(path.with_suffix(".csv"), pd.DataFrame(table.drop(columns=table.geometry.name)))
    if parquet:
        with atomic_path(path.with_suffix(".parquet")) as tmp:
            table.to_parquet(tmp, index=False, compression="zstd", write_covering_bbox=False)
    return path


def write_csv(path: str | Path, table: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
    return Path(path)


# ----------------------------------------------------------------------------- JSON and checksums


def write_json(path: str | Path, obj: object) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default) + "\n", encoding="utf-8")
    return Path(path)


def read_json(path: str | Path) -> dict:
    """A JSON file; one that cannot be read or parsed raises InputDataError naming it (and where)."""
    with reading(path, "JSON file"):
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{path} line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}). {CORRUPT_FIX} "
                                 "If the workflow wrote it, delete it and run again to remake it.") from exc


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    check_readable(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- sparse matrices


def write_sparse(path: str | Path, matrix) -> Path:
    """Save a scipy sparse matrix (.npz, uncompressed for speed), atomically."""
    import scipy.sparse as sp

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            sp.save_npz(f, matrix.tocsr(), compressed=False)
    return Path(path)


def read_sparse(path: str | Path):
    import scipy.sparse as sp

    with reading(path, "sparse matrix (.npz)", CORRUPT_FIX + " If the workflow wrote it, delete it and run again."):
        try:
            return sp.load_npz(path).tocsr()
        except (ValueError, KeyError, EOFError) as exc:  # numpy's and zipfile's ways of saying "not an .npz"
            raise InputDataError(f"{path}: not a sparse matrix file ({error_text(exc)}). Delete it and run again.") from exc


# ----------------------------------------------------------------------------- named arrays with a JSON header


ARRAYS_META = "__meta__"  # the .npz member holding the JSON header of write_arrays


def write_arrays(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Save named arrays and a JSON header (``meta``) as one uncompressed .npz (``numpy.load`` reads it),
    atomically. The arrays keep their dtype (float64 stays float64); no pickled objects (strings as fixed-width
    unicode arrays). The zip members carry a fixed timestamp, so the same arrays give the same bytes."""
    import zipfile

    if ARRAYS_META in arrays:
        raise ValueError(f"write_arrays: '{ARRAYS_META}' is the header's name; rename that array.")
    header = np.frombuffer(json.dumps(meta, sort_keys=True, default=_json_default).encode("utf-8"), dtype=np.uint8)
    members = {ARRAYS_META: header, **{k: np.asarray(v) for k, v in arrays.items()}}
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, value in members.items():
                with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, value, allow_pickle=False)
    return Path(path)


def read_arrays(path: str | Path, what: str = "arrays file (.npz)") -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and header written by :func:`write_arrays` (pickled objects refused)."""
    fix = CORRUPT_FIX + " If the workflow wrote it, delete it and run again."
    with reading(path, what, fix):
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, KeyError, EOFError, OSError) as exc:
            raise InputDataError(f"{path}: not a {what} ({error_text(exc)}). Delete it and run again.") from exc
    if ARRAYS_META not in arrays:
        raise InputDataError(f"{path}: not a {what}: it has no '{ARRAYS_META}' header. Delete it and run again.")
    meta = json.loads(arrays.pop(ARRAYS_META).tobytes().decode("utf-8"))
    return arrays, meta


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_csv(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a CSV table; a file with no columns at all (an empty table) reads as an empty DataFrame. A file
    that cannot be parsed (an unquoted comma, not UTF-8, a device) raises InputDataError naming it."""
    check_readable(path, "CSV table")
    try:
        table = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: cannot be read as a CSV table ({error_text(exc)}). Save it as UTF-8 CSV with a header row, "
                             "one value per column, and quote values that contain a comma.") from exc
    except OSError as exc:
        raise InputDataError(f"{path}: the CSV table cannot be read ({error_text(exc)}). Check the path and its permissions.") from exc
    check_separator(path, table)
    if "index_col" not in kwargs:
        check_row_lengths(path, table)
    return table


def check_separator(path: str | Path, table: pd.DataFrame) -> None:
    """Raise InputDataError when a CSV read with commas has one column whose header holds ';' or a tab: the
    file is separated by another character (a European-locale spreadsheet export), so every row is one value."""
    if table.shape[1] == 1:
        header = str(table.columns[0])
        for sep, name in ((";", "semicolons (;)"), ("\t", "tabs")):
            if sep in header:
                raise InputDataError(
                    f"{path}: the header {header!r} is read as one column: the values are separated by {name}, not commas. "
                    "Save it as comma-separated CSV (e.g. Excel: CSV UTF-8 (Comma delimited)), with '.' as decimal mark.")


def check_row_lengths(path: str | Path, table: pd.DataFrame) -> None:
    """Raise InputDataError when pandas took the first column as an index because a row has more values than the
    header has columns (an unquoted comma in the first data row shifts every value of that row silently)."""
    if isinstance(table.index, pd.RangeIndex):
        return
    import csv

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, [])
        line, n = next(((i, len(r)) for i, r in enumerate(rows, start=2) if len(r) > len(header)), (2, len(header) + 1))
    raise InputDataError(f"{path}: line {line} has {n} values but the header has {len(header)} columns, so the values "
                         "would shift into the wrong columns. Save it as UTF-8 CSV with a header row, one value per column, "
                         "and quote values that contain a comma.")


def read_window_over(path: str | Path, bounds: tuple[float, float, float, float], crs: str, band: int = 1,
                     pad_px: int = 1) -> tuple[np.ndarray, object, str, float | int | None]:
    """The part of band ``band`` of a raster that covers ``bounds`` (given in ``crs``), padded by
    ``pad_px`` pixels, in the raster's own values and CRS: (array, transform, raster CRS, nodata)."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    with reading(path, "raster"), open_raster(path) as src:
        if src.crs is None:
            raise InputDataError(f"{path}: the raster has no CRS. Assign one (e.g. gdal_edit.py -a_srs EPSG:XXXX) and try again.")
        b = transform_bounds(crs, src.crs, *bounds, densify_pts=21)
        w = from_bounds(*b, transform=src.transform)
        col0, row0 = math.floor(w.col_off) - pad_px, math.floor(w.row_off) - pad_px
        col1, row1 = math.ceil(w.col_off + w.width) + pad_px, math.ceil(w.row_off + w.height) + pad_px
        win = Window(col0, row0, col1 - col0, row1 - row0)
        win = win.intersection(Window(0, 0, src.width, src.height))
        arr = src.read(band, window=win)
        return arr, src.window_transform(win), src.crs.to_string(), src.nodata


def read_georef(path: str | Path) -> tuple[str, object, int, int]:
    """(CRS, transform, width, height) of a raster, or an InputDataError naming the file if it has no CRS."""
    with reading(path, "raster"), open_raster(path) as src:
        if src.crs is None:
            raise InputDataError(f"{path}: the raster has no CRS. Assign one (e.g. gdal_edit.py -a_srs EPSG:XXXX) and try again.")
        return src.crs.to_string(), src.transform, src.width, src.height


def read_csv_as_text(path: str | Path) -> pd.DataFrame:
    """A CSV table with every cell as the text written in the file (no type guessing; an empty cell is
    "", never NaN; a UTF-8 byte-order mark is dropped), for readers that parse and check values
    themselves and name the row of a bad one (e.g. the tree inventory of ``greensink allometry``).
    A file that is not a readable CSV (not parseable, empty, not UTF-8) raises InputDataError naming it."""
    check_readable(path, "CSV table")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise InputDataError(f"{path}: cannot be read as a CSV table ({error_text(exc)}). Save it as UTF-8 CSV with a header row. "
                             "One value per column: quote values that contain a comma.") from exc
    check_separator(path, table)
    check_row_lengths(path, table)
    return table
