"""Zone partial sums: the part of a zone table that is linear in the pixels, over any set of pixels.

Every pixel-based number of a zone table (:func:`greensink.aggregate.zone_table`) is a ratio, quantile or rule
applied to sums over pixels of coverage × value: the grid area, the observed area, the numerator and the
denominator of every coverage-weighted mean (:func:`greensink.coverage.zonal_mean`), each type's land, its land
without a usable model and its observed carbon, and the zone sums of the carbon estimate, its draws and their
per-source parts (:func:`greensink.aggregate.zone_draw_sums`). Those sums are additive over disjoint sets of
pixels, so the sums over the tiles of a grid add up to the whole grid's (in another order: equal to rounding).

A :class:`ZoneSums` holds one level's sums over one set of pixels for the zones that touch it (their row
indices in the level's zone list, and one compact array per sum); a tiled run's ``aggregate_tile`` job writes
those of its tile for every level (:func:`write_tile_sums`, ``results/{year}/tiles/aggregate_{tile}.npz``), and
rule ``aggregate`` adds them up (:func:`gather_tile_sums`) without any whole-grid array: its memory grows with
zones × draws, not with pixels. Untiled runs compute the same sums over the whole grid, one "tile".

The sums, per zone (pixel units: multiply by the pixel area in ha for hectares or tonnes):

* ``cover_px`` Σ coverage; ``observed_px`` Σ coverage where NDVI is finite (observed clear at least once);
* ``<r>_sum`` and ``<r>_covered`` for r in :data:`MEAN_RASTERS`: Σ coverage × value and Σ coverage over the
  pixels where the value is not NaN (their ratio is ``zonal_mean``; NaN where the covered sum is 0, never 0);
* ``tree_shrub_sum`` Σ coverage × tree-or-shrub (0/1), where the structure classes are given;
* ``type_px`` (Z, T) Σ coverage × type fraction; ``unseen_px`` (Z, T) the same over the pixels where the type
  has no usable model (NaN in :func:`greensink.carbon.type_density`); ``density_px`` (Z, T) Σ coverage × the
  type's density (t C/ha of pixel; NaN pixels add nothing);
* ``estimate_t`` (Z,) and ``draws_t`` (Z, B), ``part_<source>_t`` (Z, B) in t C: the filled pixel function's
  zone sums (absent where the pixels hold no typed pixel: nothing was drawn there).
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from greensink import io as gio
from greensink.coverage import zonal_covered, zonal_sum
from greensink.errors import InputDataError

MEAN_RASTERS = ("vegetation", "canopy", "ndvi", "fvc")  # the rasters whose coverage-weighted means a zone table shows
TILE_SUMS_FORMAT = 1  # the layout of a results/{year}/tiles/aggregate_{tile}.npz; a reader refuses another
DRAW_PREFIX = "part_"  # per-source draw sums are stored as part_<source>_t


def touching_rows(matrix: sp.csr_matrix) -> np.ndarray:
    """Row indices (ascending, int64) of the zones with at least one stored coverage entry in ``matrix``."""
    return np.flatnonzero(np.diff(matrix.indptr) > 0).astype(np.int64)


def compact(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """The rows ``rows`` of ``matrix`` (``matrix`` itself when they are all of them: no copy)."""
    return matrix if rows.size == matrix.shape[0] else matrix[rows]


def pixel_sums(matrix: sp.csr_matrix, rasters: Mapping[str, np.ndarray], type_density: np.ndarray,
               fractions: np.ndarray) -> dict[str, np.ndarray]:
    """The sums of the module docstring but the draws, one entry per row of ``matrix`` (float64, pixel units).

    ``rasters`` holds ``ndvi``, ``fvc``, ``vegetation`` and ``canopy`` (and optionally ``tree_shrub``) on the
    matrix's pixels (the grid, or a tile with the tile's coverage matrix); ``type_density`` and ``fractions``
    are (n_types, rows, cols) on the same pixels. Each sum is :func:`greensink.coverage.zonal_sum` /
    ``zonal_covered`` of one raster, so the whole grid's sums are the zone table's to the bit."""
    n = matrix.shape[0]
    out = {"cover_px": np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel(),
           "observed_px": zonal_sum(matrix, np.isfinite(rasters["ndvi"]).astype(np.float32))}
    for name in MEAN_RASTERS:
        out[f"{name}_sum"] = zonal_sum(matrix, rasters[name])
        out[f"{name}_covered"] = zonal_covered(matrix, rasters[name])
    if "tree_shrub" in rasters:
        out["tree_shrub_sum"] = zonal_sum(matrix, rasters["tree_shrub"])
    out.update(type_sums(matrix, type_density, fractions))
    assert all(v.shape[0] == n for v in out.values())
    return out


def type_sums(matrix: sp.csr_matrix, type_density: np.ndarray, fractions: np.ndarray) -> dict[str, np.ndarray]:
    """``type_px``, ``unseen_px`` and ``density_px``, each (Z, n_types) float64 in pixel units (module docstring)."""
    n_types = fractions.shape[0]
    out = {name: np.zeros((matrix.shape[0], n_types)) for name in ("type_px", "unseen_px", "density_px")}
    for k in range(n_types):
        frac = fractions[k]
        unseen = np.where(np.isnan(type_density[k]), frac, 0.0).astype(np.float32)
        out["type_px"][:, k] = zonal_sum(matrix, frac)
        out["unseen_px"][:, k] = zonal_sum(matrix, unseen)
        out["density_px"][:, k] = zonal_sum(matrix, type_density[k])  # NaN pixels add nothing
    return out


@dataclass
class ZoneSums:
    """One level's sums (module docstring) over one set of pixels: ``values[name]`` holds one entry (first axis)
    per zone of ``rows`` (row indices, ascending, into the level's ``n_zones`` zones: those touching the pixels).
    Zones not in ``rows`` have every sum 0 there."""

    n_zones: int
    rows: np.ndarray
    values: dict[str, np.ndarray]

    def dense(self) -> dict[str, np.ndarray]:
        """Every sum with one entry per zone of the level (0 for the zones not in ``rows``)."""
        if self.rows.size == self.n_zones and np.array_equal(self.rows, np.arange(self.n_zones)):
            return dict(self.values)
        out = {}
        for name, v in self.values.items():
            full = np.zeros((self.n_zones, *v.shape[1:]), dtype=np.float64)
            full[self.rows] = v
            out[name] = full
        return out


def add_sums(total: dict[str, np.ndarray], part: ZoneSums) -> None:
    """Add ``part`` into ``total`` (dense arrays per zone, allocated at a sum's first appearance, in place)."""
    for name, v in part.values.items():
        if name not in total:
            total[name] = np.zeros((part.n_zones, *v.shape[1:]), dtype=np.float64)
        acc = total[name]
        if acc.shape[1:] != v.shape[1:]:
            raise ValueError(f"zone sum {name}: shape {v.shape[1:]} per zone does not match the {acc.shape[1:]} "
                             "of the sums it is added to (another number of types or draws).")
        acc[part.rows] += v


def gather(parts: Iterable[ZoneSums], n_zones: int) -> dict[str, np.ndarray]:
    """The sums of ``parts`` (one level's sums over disjoint sets of pixels, e.g. the tiles of the grid) added
    up, one entry per zone; a part's zones outside its ``rows`` add nothing."""
    total: dict[str, np.ndarray] = {}
    for p in parts:
        if p.n_zones != n_zones:
            raise ValueError(f"zone sums of {p.n_zones} zones cannot be added to those of {n_zones} zones.")
        add_sums(total, p)
    return total


def write_tile_sums(path: str | Path, sums: Mapping[str, ZoneSums], meta: Mapping) -> Path:
    """Write one tile's :class:`ZoneSums` of every level (``sums``: level → sums, in the run's level order) as
    one .npz (:func:`greensink.io.write_arrays`): per level ``L<i>.rows`` and ``L<i>.<sum>``; ``meta`` (the
    tile, the year, the draws' identity) goes to the header with the format, the levels and their zone counts."""
    arrays: dict[str, np.ndarray] = {}
    for i, s in enumerate(sums.values()):
        arrays[f"L{i}.rows"] = s.rows.astype(np.int64)
        for name, v in s.values.items():
            arrays[f"L{i}.{name}"] = np.asarray(v, dtype=np.float64)
    header = {**meta, "format": TILE_SUMS_FORMAT, "levels": list(sums),
              "n_zones": [int(s.n_zones) for s in sums.values()]}
    return gio.write_arrays(path, arrays, header)


TILE_SUMS_FIX = ("It was written for other inputs or settings: delete the tile sums (results/{year}/tiles/aggregate_*.npz) "
                 "and run again (snakemake --forcerun aggregate_tile).")


def _check_tile_meta(path: str | Path, meta: Mapping, levels: Sequence[str], n_zones: Sequence[int],
                     expect: Mapping | None, fix: str = TILE_SUMS_FIX) -> None:
    checks = {"format": TILE_SUMS_FORMAT, "levels": list(levels), "n_zones": [int(n) for n in n_zones],
              **(expect or {})}
    for name, want in checks.items():
        got = meta.get(name)
        if got != want:
            raise InputDataError(f"{path}: {name} must be {want!r} for this run. Got {got!r}. {fix}")


def _member(path: str | Path, zf: zipfile.ZipFile, name: str, fix: str = TILE_SUMS_FIX) -> np.ndarray:
    """The .npy member ``name`` of the .npz ``path`` (open as ``zf``) as a read-only memory map when it is stored
    uncompressed (as :func:`greensink.io.write_arrays` writes it): slicing it reads only those rows from disk."""
    info = zf.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the zip local file header: name and extra field lengths at bytes 26-29
        n_name, n_extra = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + n_name + n_extra)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise InputDataError(f"{path}: {name} holds Python objects, not numbers. {fix}")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def read_tile_level(path: str | Path, levels: Sequence[str], n_zones: Sequence[int], level: str,
                    expect: Mapping | None = None, *, parts: bool = False,
                    zones: tuple[int, int] | None = None, fix: str = TILE_SUMS_FIX,
                    what: str = "aggregate tile sums (.npz)") -> ZoneSums:
    """One level's sums of one tile file (:func:`write_tile_sums`), reading only that level's members: without the
    per-source draw sums (``part_<source>_t``; ``parts`` False) or only those (``parts`` True). ``zones`` (z0, z1)
    keeps only the zones z0 ≤ row < z1 (their rows of the file only are read: the members are memory-mapped).
    The header is checked as :func:`read_tile_sums` does (InputDataError naming the file and the field). The
    memory is one level's (or one zone block's) sums of one tile, not the file's. ``what`` names the kind of file and
    ``fix`` says how to make it again in the messages (another rule's tile sums: rule scenario_zones_tile's)."""
    i = list(levels).index(level)
    with gio.reading(path, what, gio.CORRUPT_FIX + " If the workflow wrote it, delete it and run again."):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputDataError(f"{path}: not a {what} ({gio.error_text(exc)}). Delete it and run again.") from exc
        with zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if gio.ARRAYS_META not in names:
                raise InputDataError(f"{path}: not a {what}: it has no '{gio.ARRAYS_META}' header. Delete it and run again.")
            with zf.open(f"{gio.ARRAYS_META}.npy") as f:
                meta = json.loads(np.lib.format.read_array(f, allow_pickle=False).tobytes().decode("utf-8"))
            _check_tile_meta(path, meta, levels, n_zones, expect, fix)
            key = f"L{i}.rows"
            if key not in names:
                raise InputDataError(f"{path}: the tile sums lack {key} (level {level}). {fix}")
            rows = np.asarray(_member(path, zf, key, fix), dtype=np.int64)
            n = int(n_zones[i])
            if rows.size and (rows.min() < 0 or rows.max() >= n or np.any(np.diff(rows) <= 0)):
                raise InputDataError(f"{path}: level {level}: zone rows must be ascending indices below {n}. "
                                     f"{fix}")
            lo, hi = (0, rows.size) if zones is None else np.searchsorted(rows, zones)
            values = {}
            for name in names:
                if not name.startswith(f"L{i}.") or name == key:
                    continue
                short = name.split(".", 1)[1]
                if short.startswith(DRAW_PREFIX) != parts:
                    continue
                v = _member(path, zf, name, fix)
                if v.shape[:1] != rows.shape:
                    raise InputDataError(f"{path}: level {level}: sums {[short]} do not have one entry per zone row "
                                         f"({rows.size}). {fix}")
                values[short] = np.array(v[lo:hi])  # a copy in memory: the map is closed with the file
                del v
    return ZoneSums(n_zones=n, rows=rows[lo:hi].copy(), values=values)


def read_tile_sums(path: str | Path, levels: Sequence[str], n_zones: Sequence[int],
                   expect: Mapping | None = None) -> dict[str, ZoneSums]:
    """One tile's sums by level, as :func:`write_tile_sums` wrote them; InputDataError naming the file and the
    field when it is not of this format, holds other levels or zone counts than ``levels`` / ``n_zones`` (the
    run's zone layers), or a header entry differs from ``expect`` (e.g. the tile id, the year, the draws'
    identity)."""
    arrays, meta = gio.read_arrays(path, "aggregate tile sums (.npz)")
    fix = ("It was written for other inputs or settings: delete the tile sums (results/{year}/tiles/aggregate_*.npz) "
           "and run again (snakemake --forcerun aggregate_tile).")
    checks = {"format": TILE_SUMS_FORMAT, "levels": list(levels), "n_zones": [int(n) for n in n_zones],
              **(expect or {})}
    for name, want in checks.items():
        got = meta.get(name)
        if got != want:
            raise InputDataError(f"{path}: {name} must be {want!r} for this run. Got {got!r}. {fix}")
    out = {}
    for i, (level, n) in enumerate(zip(levels, n_zones, strict=True)):
        key = f"L{i}.rows"
        if key not in arrays:
            raise InputDataError(f"{path}: the tile sums lack {key} (level {level}). {fix}")
        rows = arrays[key]
        values = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"L{i}.") and k != key}
        bad = [k for k, v in values.items() if v.shape[:1] != rows.shape]
        if rows.size and (rows.min() < 0 or rows.max() >= n or np.any(np.diff(rows) <= 0)):
            raise InputDataError(f"{path}: level {level}: zone rows must be ascending indices below {n}. {fix}")
        if bad:
            raise InputDataError(f"{path}: level {level}: sums {bad} do not have one entry per zone row "
                                 f"({rows.size}). {fix}")
        out[level] = ZoneSums(n_zones=int(n), rows=rows.astype(np.int64), values=values)
    return out
