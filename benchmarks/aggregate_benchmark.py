#!/usr/bin/env python
"""Benchmark: greensink's zonal aggregation against exactextract on the same data, in one run.

    python benchmarks/aggregate_benchmark.py [--size 10000] [--parcels 50000] [--repeats 3] [--rasters 1]
    python benchmarks/aggregate_benchmark.py --quick        # 2000 × 2000 pixels, 2000 parcels, < 30 s

What it does (see benchmarks/README.md for the figures):

1. Generates, from a fixed seed, ``--rasters`` float32 rasters of size × size 10 m pixels in
   EPSG:32651, written as tiled GeoTIFFs (512 × 512 tiles, ZSTD level 1, predictor 2, nodata
   NaN: the codec settings of ``greensink.io.write_raster``'s default COG, without overviews),
   with NaN holes; and ``--parcels`` parcels as the cells of a jittered lattice (shared
   vertices, so they tile exactly; no edge on a pixel edge; the top and left rows of parcels
   cross the raster edge), nested in blocks of 5 × 5 parcels and 4 districts.
2. Times, each in its own fresh child process (so ``ru_maxrss`` is that method's own peak),
   ``--repeats`` times, alternating the order:

   * greensink: ``coverage_matrix`` of the parcel layer once, then per raster
     ``greensink.io.read_raster`` + ``zonal_sum`` (what the workflow does per zone layer);
   * exactextract: one ``exact_extract(..., ["sum"])`` call over all rasters, in the fastest
     configuration found (``--ee-config``, default ``numpy-fs``: the raster read whole with
     rasterio inside the timed section, WKB features, ``strategy="feature-sequential"``; the
     others are in ``EE_CONFIGS`` and ``--ee-variants`` times them once each).

3. Checks the parcel sums agree (max relative difference ≤ 1e-6 over parcels covering more
   than one pixel; exit status 1 otherwise), rolls parcel sums up to blocks and districts and
   compares with direct block/district coverage sums, and ends with the line
   ``aggregate/exactextract time ratio: X`` (greensink median / exactextract median).

With ``--edges-memory`` it also builds the parcels' coverage matrix once more in each of two fresh
processes, one with the coverage engine's boundary edges taken from all parcels at once (the
``coverage._edges`` of before issue 14's batches, copied below as :func:`whole_array_edges`) and
one with the current batched ``_edges``, and prints each one's peak memory (VmHWM), the memory
still resident after the matrix is built, and whether the two matrices are identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _bench import RESULT_TAG, machine_summary, run_child, vmhwm_mib  # benchmarks/_bench.py

ROOT = Path(__file__).resolve().parents[1]
SEED = 20_251_121
CRS = "EPSG:32651"
PIXEL_M = 10.0
X_LEFT, Y_TOP = 330_000.0, 3_480_000.0  # Shanghai, UTM 51N
TILE = 512
BLOCK_SIDE = 5  # a block is 5 × 5 parcels
JITTER = 0.2  # lattice vertices move by up to ±0.2 of a lattice cell in x and y
REL_TOL = 1e-6  # parcel sums must agree to this relative difference
MEMORY_BUDGET_MIB = 4096  # issue 5 at 50,000 parcels; issue 14 asks < 8 GiB at 10^6 (--budget-mib 8192)

# exactextract configurations (the first four let exactextract read the GeoTIFF itself, through
# rasterio, since this environment has no GDAL Python bindings):
#   shipped  exact_extract(path, GeoDataFrame, ["sum"], output="pandas"), the documented call;
#   wkb-fs   features handed over as WKB, strategy="feature-sequential";
#   tuned    features handed over as WKB, strategy="raster-sequential";
#   tuned-big  as tuned, with max_cells_in_memory raised from 3e7 to 1e9 (the whole raster);
#   numpy-fs   the raster read whole with rasterio (timed) and handed over as a NumPyRasterSource,
#              WKB features, strategy="feature-sequential".
# numpy-fs took ~10 % less CPU than tuned at 10^8 pixels (3 alternating runs each), so it is the
# default. A lean custom Writer (keeping only the sums) was tried too and saved no time.
EE_CONFIGS = ("numpy-fs", "tuned", "wkb-fs", "shipped", "tuned-big")
EE_DEFAULT = "numpy-fs"


# --------------------------------------------------------------------------- generated data


def lattice_shape(n_parcels: int) -> tuple[int, int]:
    """(rows, cols) of the parcel lattice: about n_parcels cells, aspect 4:5, both multiples of
    10 so blocks of 5 × 5 parcels pair up into 2 × 2 districts."""
    rows = max(10, round(math.sqrt(n_parcels * 0.8) / 10) * 10)
    cols = max(10, round(n_parcels / rows / 10) * 10)
    return rows, cols


def lattice_vertices(size: int, rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y (metres) of the (rows + 1) × (cols + 1) jittered lattice points. The lattice is
    shifted up and left by a third of a cell, so the first row and column of parcels cross the
    raster edge (and a strip at the right and bottom of the raster lies outside every parcel)."""
    rng = np.random.default_rng([seed, 1])
    cell_w = size * PIXEL_M / cols
    cell_h = size * PIXEL_M / rows
    jj, ii = np.meshgrid(np.arange(cols + 1), np.arange(rows + 1))
    x = X_LEFT - 0.37 * cell_w + (jj + rng.uniform(-JITTER, JITTER, jj.shape)) * cell_w
    y = Y_TOP + 0.29 * cell_h - (ii + rng.uniform(-JITTER, JITTER, ii.shape)) * cell_h
    return x, y


def lattice_ring(x: np.ndarray, y: np.ndarray, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
    """Closed ring (k, 2) around lattice cells rows [i0, i1) × cols [j0, j1), through every
    lattice point on its boundary, so it is exactly the union of those cells."""
    ii = np.concatenate(
        [
            np.full(j1 - j0, i0),
            np.arange(i0, i1),
            np.full(j1 - j0, i1),
            np.arange(i1, i0, -1),
            [i0],
        ]
    )
    jj = np.concatenate(
        [
            np.arange(j0, j1),
            np.full(i1 - i0, j1),
            np.arange(j1, j0, -1),
            np.full(i1 - i0, j0),
            [j0],
        ]
    )
    return np.column_stack([x[ii, jj], y[ii, jj]])


def make_zones(size: int, n_parcels: int, seed: int) -> dict:
    """Parcels, blocks and districts as GeoDataFrames (EPSG:32651) tiling the same lattice."""
    import geopandas as gpd
    import shapely

    rows, cols = lattice_shape(n_parcels)
    x, y = lattice_vertices(size, rows, cols, seed)
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    corner_i = np.stack([ii, ii, ii + 1, ii + 1, ii], axis=1)
    corner_j = np.stack([jj, jj + 1, jj + 1, jj, jj], axis=1)
    parcels = shapely.polygons(np.stack([x[corner_i, corner_j], y[corner_i, corner_j]], axis=-1))

    b_rows, b_cols = rows // BLOCK_SIDE, cols // BLOCK_SIDE
    block_of = (ii // BLOCK_SIDE) * b_cols + jj // BLOCK_SIDE
    blocks, block_district = [], []
    for bi in range(b_rows):
        for bj in range(b_cols):
            i0, j0 = bi * BLOCK_SIDE, bj * BLOCK_SIDE
            blocks.append(shapely.Polygon(lattice_ring(x, y, i0, i0 + BLOCK_SIDE, j0, j0 + BLOCK_SIDE)))
            block_district.append(2 * int(bi >= b_rows // 2) + int(bj >= b_cols // 2))
    half_i, half_j = (b_rows // 2) * BLOCK_SIDE, (b_cols // 2) * BLOCK_SIDE
    districts = [
        shapely.Polygon(lattice_ring(x, y, i0, i1, j0, j1))
        for i0, i1 in ((0, half_i), (half_i, rows))
        for j0, j1 in ((0, half_j), (half_j, cols))
    ]
    block_district = np.asarray(block_district)
    out = {
        "parcels": gpd.GeoDataFrame(
            {"parcel_id": np.arange(len(parcels)), "block_id": block_of, "district_id": block_district[block_of]},
            geometry=parcels,
            crs=CRS,
        ),
        "blocks": gpd.GeoDataFrame(
            {"block_id": np.arange(len(blocks)), "district_id": block_district}, geometry=blocks, crs=CRS
        ),
        "districts": gpd.GeoDataFrame({"district_id": np.arange(4)}, geometry=districts, crs=CRS),
        "lattice": (rows, cols),
    }
    for name in ("parcels", "blocks", "districts"):
        geoms = out[name].geometry.values
        if not shapely.is_valid(geoms).all():
            raise RuntimeError(f"generated {name} are not all valid polygons; lower JITTER")
    parcel_area = out["parcels"].area.groupby(out["parcels"]["block_id"]).sum().to_numpy()
    if not np.allclose(parcel_area, out["blocks"].area.to_numpy(), rtol=1e-9):
        raise RuntimeError("generated parcels do not tile their blocks")
    return out


def raster_transform(size: int):
    from affine import Affine

    return Affine(PIXEL_M, 0.0, X_LEFT, 0.0, -PIXEL_M, Y_TOP)


def write_raster(path: Path, size: int, seed: int, index: int) -> float:
    """A size × size float32 GeoTIFF of carbon-density-like values (t C/ha, ≥ 0): a smooth field
    plus pixel noise, with NaN in round holes (clouds) and in scattered pixels. Written in strips
    of whole tiles so memory stays small. Returns the NaN fraction."""
    import rasterio
    from rasterio.windows import Window

    rng = np.random.default_rng([seed, 2, index])
    n_holes = max(3, round(60 * (size / 10_000) ** 2))
    hole_r = rng.uniform(20, 150, n_holes) * size / 10_000 + 2
    hole_row = rng.uniform(0, size, n_holes)
    hole_col = rng.uniform(0, size, n_holes)
    phase = rng.uniform(0, 2 * np.pi, 2)
    cols = np.arange(size)
    fx = np.sin(2 * np.pi * cols * PIXEL_M / 3_000.0 + phase[0]).astype(np.float32)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "float32",
        "crs": CRS,
        "transform": raster_transform(size),
        "nodata": float("nan"),
        "tiled": True,
        "blockxsize": TILE,
        "blockysize": TILE,
        "compress": "ZSTD",
        "zstd_level": 1,
        "predictor": 2,
        "bigtiff": "IF_SAFER",
    }
    n_nan = 0
    with rasterio.open(path, "w", **profile) as dst:
        for k, r0 in enumerate(range(0, size, TILE)):
            r1 = min(r0 + TILE, size)
            chunk_rng = np.random.default_rng([seed, 3, index, k])
            rws = np.arange(r0, r1)
            fy = np.cos(2 * np.pi * rws * PIXEL_M / 2_300.0 + phase[1]).astype(np.float32)
            values = 25.0 + 15.0 * np.outer(fy, fx)
            values += chunk_rng.standard_normal(values.shape, dtype=np.float32) * np.float32(4.0)
            np.maximum(values, 0.0, out=values)
            values[chunk_rng.random(values.shape, dtype=np.float32) < 0.002] = np.nan
            near = np.flatnonzero((hole_row + hole_r >= r0) & (hole_row - hole_r < r1))
            for h in near:
                dr = (rws[:, None] + 0.5 - hole_row[h]) ** 2
                dc = (cols[None, :] + 0.5 - hole_col[h]) ** 2
                values[dr + dc < hole_r[h] ** 2] = np.nan
            n_nan += int(np.isnan(values).sum())
            dst.write(values, 1, window=Window(0, r0, size, r1 - r0))
    return n_nan / size**2


def prepare(workdir: Path, size: int, n_parcels: int, n_rasters: int) -> dict:
    """Generate (or reuse, if workdir already holds the same set-up) the rasters and zones."""
    meta_path = workdir / "meta.json"
    wanted = {"size": size, "parcels": n_parcels, "rasters": n_rasters, "seed": SEED, "version": 1}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted:
            print(f"reusing generated data in {workdir}", flush=True)
            return meta
    t0 = time.perf_counter()
    zones = make_zones(size, n_parcels, SEED)
    with open(workdir / "zones.pkl", "wb") as fh:
        pickle.dump({k: zones[k] for k in ("parcels", "blocks", "districts")}, fh)
    t_zones = time.perf_counter() - t0
    rasters, nan_frac = [], []
    for k in range(n_rasters):
        path = workdir / f"raster_{k}.tif"
        nan_frac.append(write_raster(path, size, SEED, k))
        rasters.append(str(path))
    meta = {
        **wanted,
        "lattice": list(zones["lattice"]),
        "n_parcels": len(zones["parcels"]),
        "n_blocks": len(zones["blocks"]),
        "n_districts": len(zones["districts"]),
        "rasters_paths": rasters,
        "nan_fraction": nan_frac,
        "raster_mib": [os.path.getsize(p) / 2**20 for p in rasters],
        "generate_s": {"zones": t_zones, "rasters": time.perf_counter() - t0 - t_zones},
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


# --------------------------------------------------------------------------- child processes


def peak_mib() -> float:
    """Peak resident set size of this process so far, MiB: its VmHWM (``ru_maxrss`` would carry
    the parent's peak across ``execve``, and the parent holds the generated zones)."""
    return vmhwm_mib()


def load_zones(workdir: Path) -> dict:
    with open(workdir / "zones.pkl", "rb") as fh:
        return pickle.load(fh)


def run_greensink(workdir: Path, meta: dict, tag: str) -> dict:
    """Coverage of the parcel layer once, then read + zonal_sum per raster, as the workflow does."""
    import rasterio

    from greensink.coverage import coverage_matrix, zonal_sum
    from greensink.io import read_raster

    parcels = load_zones(workdir)["parcels"]
    with rasterio.open(meta["rasters_paths"][0]) as src:
        transform, shape = src.transform, src.shape
    base = peak_mib()

    c0 = time.process_time()
    t0 = time.perf_counter()
    matrix = coverage_matrix(parcels.geometry.values, transform, shape)
    t_cov = time.perf_counter() - t0
    peak_cov = peak_mib()
    t_read, t_sum, sums = [], [], []
    for path in meta["rasters_paths"]:
        t = time.perf_counter()
        values = read_raster(path)
        t_read.append(time.perf_counter() - t)
        t = time.perf_counter()
        sums.append(zonal_sum(matrix, values))
        t_sum.append(time.perf_counter() - t)
        del values
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = peak_mib()

    np.save(workdir / f"sums_{tag}.npy", np.column_stack(sums))
    np.save(workdir / "covered_px.npy", np.asarray(matrix.sum(axis=1)).ravel())
    return {
        "method": "greensink",
        "total_s": total,
        "cpu_s": cpu,
        "coverage_s": t_cov,
        "read_s": t_read,
        "sum_s": t_sum,
        "nnz": int(matrix.nnz),
        "matrix_mib": (matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 2**20,
        "base_mib": base,
        "peak_after_coverage_mib": peak_cov,
        "peak_mib": peak,
    }


def whole_array_edges(geoms, transform):
    """``greensink.coverage._edges`` before it took the geometries in batches (commit 07419cb): every
    parcel's parts and rings cloned at once (about 800 MiB resident at 10⁶ parcels). The reference of
    ``--edges-memory``; tests/test_coverage_edges.py checks the batched function against the same code."""
    import shapely

    from greensink.coverage import _Edges

    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    parts, part_geom = shapely.get_parts(arr, return_index=True)
    is_polygon = shapely.get_type_id(parts) == 3
    parts, part_geom = parts[is_polygon], part_geom[is_polygon]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    u = (coords[:, 0] - transform.c) / transform.a
    v = (coords[:, 1] - transform.f) / transform.e
    same_ring = coord_ring[:-1] == coord_ring[1:]
    start = np.flatnonzero(same_ring)
    edge_ring = coord_ring[start]
    n_rings = len(rings)
    ring_first = np.searchsorted(coord_ring, np.arange(n_rings))
    ring_first = np.minimum(ring_first, max(len(coord_ring) - 1, 0))
    du0 = u[start] - u[ring_first[edge_ring]]
    dv0 = v[start] - v[ring_first[edge_ring]]
    du1 = u[start + 1] - u[ring_first[edge_ring]]
    dv1 = v[start + 1] - v[ring_first[edge_ring]]
    twice_area = np.bincount(edge_ring, weights=du0 * dv1 - du1 * dv0, minlength=n_rings)
    is_exterior = np.ones(n_rings, dtype=bool)
    is_exterior[1:] = ring_part[1:] != ring_part[:-1]
    ring_weight = -np.sign(twice_area) * np.where(is_exterior, 1.0, -1.0)
    edge_geom = part_geom[ring_part[edge_ring]].astype(np.int64)
    u0, v0, u1, v1 = u[start], v[start], u[start + 1], v[start + 1]
    ring_geom = part_geom[ring_part]
    n_geoms = len(geoms)
    area = np.bincount(ring_geom, weights=np.where(is_exterior, 0.5 * np.abs(twice_area), 0.0), minlength=n_geoms)
    crossed = np.bincount(edge_geom, weights=np.abs(u1 - u0) + np.abs(v1 - v0) + 3.0, minlength=n_geoms)
    return _Edges(u0=u0, v0=v0, u1=u1, v1=v1, weight=ring_weight[edge_ring], geom=edge_geom,
                  max_pixels=np.ceil(area + crossed))


def whole_array_edges_by_task(edges, tasks):
    """``greensink.coverage._edges_by_task`` before it took the edges in batches (commit d622f20): about 15
    temporaries of one value per edge at once (30 MiB each at 10⁶ parcels, kept on glibc's heap). The
    reference of ``--edges-memory``; tests/test_coverage_edges.py checks the batched function against it."""
    win = tasks.windows
    g = edges.geom
    v_lo = np.minimum(edges.v0, edges.v1)
    v_hi = np.maximum(edges.v0, edges.v1)
    row_first = np.maximum(np.floor(v_lo), win.row0[g]).astype(np.int64)
    row_last = np.minimum(np.ceil(v_hi) - 1, win.row1[g] - 1).astype(np.int64)
    useful = (v_hi > v_lo) & (row_first <= row_last) & (np.minimum(edges.u0, edges.u1) < win.col1[g])
    idx = np.flatnonzero(useful)
    g = g[idx]
    band_first = (row_first[idx] - win.row0[g]) // tasks.band_rows[g]
    band_last = (row_last[idx] - win.row0[g]) // tasks.band_rows[g]
    reps = band_last - band_first + 1
    within = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    edge_task = np.repeat(tasks.first[g] + band_first, reps) + within
    edge_of = np.repeat(idx, reps)
    order = np.argsort(edge_task, kind="stable")
    return edge_of[order], edge_task[order]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def run_edges(workdir: Path, meta: dict, tag: str) -> dict:
    """The parcels' coverage matrix with the whole-array ``_edges`` and ``_edges_by_task`` (tag "whole"), the
    batched ``_edges`` and whole-array ``_edges_by_task`` ("batched_edges", the engine at commit d622f20) or
    both batched ("batched", the current engine): time, peak memory, memory resident afterwards and a digest
    of the matrix."""
    import rasterio

    from greensink import coverage

    parcels = load_zones(workdir)["parcels"]
    with rasterio.open(meta["rasters_paths"][0]) as src:
        transform, shape = src.transform, src.shape
    if tag == "whole":
        coverage._edges = whole_array_edges  # this process only: the engine as it was before the batches
    if tag in ("whole", "batched_edges"):
        coverage._edges_by_task = whole_array_edges_by_task
    geoms = parcels.geometry.values
    base = peak_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    matrix = coverage.coverage_matrix(geoms, transform, shape)
    t, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak, rss = peak_mib(), _rss_mib()  # before the digest (which adds nothing: it reads the arrays in place)
    digest = hashlib.sha256()
    for a in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(memoryview(np.ascontiguousarray(a)))
    return {"method": "edges", "edges": tag, "total_s": t, "cpu_s": cpu, "base_mib": base, "peak_mib": peak,
            "rss_after_mib": rss, "nnz": int(matrix.nnz), "digest": digest.hexdigest()}


def _wkb_source(parcels):
    """An exactextract FeatureSource that hands each parcel over as WKB (no GeoJSON round trip)."""
    import shapely
    from exactextract import Feature, FeatureSource

    class WKBFeature(Feature):
        def __init__(self, wkb: bytes | None = None, parcel_id: int | None = None):
            Feature.__init__(self)
            self.wkb = wkb
            self.props = {} if parcel_id is None else {"parcel_id": parcel_id}

        def geometry(self):
            return self.wkb

        def set_geometry(self, wkb):
            self.wkb = wkb

        def set_geometry_format(self):
            return "wkb"

        def get(self, name):
            return self.props[name]

        def set(self, name, value):
            self.props[name] = value

        def fields(self):
            return list(self.props)

    class WKBSource(FeatureSource):
        def __init__(self, gdf):
            super().__init__()
            self.wkbs = shapely.to_wkb(gdf.geometry.values)
            self.ids = gdf["parcel_id"].to_numpy().tolist()
            self.wkt = gdf.crs.to_wkt()

        def count(self):
            return len(self.ids)

        def __iter__(self):
            for wkb, pid in zip(self.wkbs, self.ids, strict=True):
                yield WKBFeature(wkb, pid)

        def srs_wkt(self):
            return self.wkt

    return WKBSource(parcels)


def exactextract_call(config: str, paths: list[str], parcels):
    """Run exact_extract in one of EE_CONFIGS; returns (n_parcels, n_rasters) sums in parcel order."""
    from exactextract import exact_extract

    rast = paths[0] if len(paths) == 1 else paths
    if config == "numpy-fs":
        import rasterio
        from exactextract.raster import NumPyRasterSource

        rast = []
        for k, path in enumerate(paths):
            with rasterio.open(path) as src:
                b = src.bounds
                rast.append(
                    NumPyRasterSource(
                        src.read(1),
                        b.left,
                        b.bottom,
                        b.right,
                        b.top,
                        nodata=src.nodata,
                        srs_wkt=src.crs.wkt,
                        name=f"raster_{k}",
                    )
                )
    if config == "shipped":
        df = exact_extract(rast, parcels, ["sum"], output="pandas")
        cols = [c for c in df.columns if c == "sum" or c.endswith("_sum")]
        return df[cols].to_numpy(dtype=np.float64)
    kwargs = {
        "wkb-fs": {"strategy": "feature-sequential"},
        "tuned": {"strategy": "raster-sequential"},
        "tuned-big": {"strategy": "raster-sequential", "max_cells_in_memory": 1_000_000_000},
        "numpy-fs": {"strategy": "feature-sequential"},
    }[config]
    df = exact_extract(rast, _wkb_source(parcels), ["sum"], include_cols=["parcel_id"], output="pandas", **kwargs)
    cols = [c for c in df.columns if c == "sum" or c.endswith("_sum")]
    out = np.full((len(parcels), len(cols)), np.nan)
    out[df["parcel_id"].to_numpy(dtype=np.int64)] = df[cols].to_numpy(dtype=np.float64)
    return out


def run_exactextract(workdir: Path, meta: dict, tag: str, config: str) -> dict:
    parcels = load_zones(workdir)["parcels"]
    base = peak_mib()
    c0 = time.process_time()
    t0 = time.perf_counter()
    sums = exactextract_call(config, meta["rasters_paths"], parcels)
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = peak_mib()
    np.save(workdir / f"sums_{tag}.npy", sums)
    return {
        "method": "exactextract",
        "config": config,
        "total_s": total,
        "cpu_s": cpu,
        "base_mib": base,
        "peak_mib": peak,
    }


def run_rollup(workdir: Path, meta: dict, parcel_sums_tag: str) -> dict:
    """Parcel sums rolled up to blocks and districts (groupby) against direct coverage sums."""
    import pandas as pd
    import rasterio

    from greensink.coverage import coverage_matrix, zonal_sum
    from greensink.io import read_raster

    zones = load_zones(workdir)
    parcels = zones["parcels"]
    parcel_sums = np.load(workdir / f"sums_{parcel_sums_tag}.npy")[:, 0]
    with rasterio.open(meta["rasters_paths"][0]) as src:
        transform, shape = src.transform, src.shape
    values = read_raster(meta["rasters_paths"][0])
    out = {"method": "rollup"}
    t = time.perf_counter()
    frame = pd.DataFrame({"sum": parcel_sums, "block_id": parcels["block_id"], "district_id": parcels["district_id"]})
    rolled = {
        "blocks": frame.groupby("block_id")["sum"].sum().to_numpy(),
        "districts": frame.groupby("district_id")["sum"].sum().to_numpy(),
    }
    out["rollup_s"] = time.perf_counter() - t
    for level in ("blocks", "districts"):
        t = time.perf_counter()
        direct = zonal_sum(coverage_matrix(zones[level].geometry.values, transform, shape), values)
        out[f"{level}_direct_s"] = time.perf_counter() - t
        out[f"{level}_max_rel_diff"] = float(np.max(rel_diff(rolled[level], direct)))
        out[f"{level}_n"] = len(direct)
    out["peak_mib"] = peak_mib()
    return out


def rel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|), 0 where both are 0."""
    den = np.maximum(np.abs(a), np.abs(b))
    return np.where(den > 0, np.abs(a - b) / np.where(den > 0, den, 1.0), 0.0)


def child_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))  # measure this checkout's greensink
    workdir = Path(args.workdir)
    meta = json.loads((workdir / "meta.json").read_text())
    if args.run_one == "greensink":
        result = run_greensink(workdir, meta, args.tag)
    elif args.run_one == "exactextract":
        result = run_exactextract(workdir, meta, args.tag, args.ee_config)
    elif args.run_one == "edges":
        result = run_edges(workdir, meta, args.tag)
    else:
        result = run_rollup(workdir, meta, args.tag)
    print(RESULT_TAG + json.dumps(result), flush=True)


def spawn(workdir: Path, mode: str, tag: str, ee_config: str = EE_DEFAULT) -> dict:
    """Run one measurement in a fresh Python process and return its RESULT record."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-one",
        mode,
        "--workdir",
        str(workdir),
        "--tag",
        tag,
        "--ee-config",
        ee_config,
    ]
    return run_child(cmd, mode)


# --------------------------------------------------------------------------- orchestration




def versions() -> str:
    import exactextract
    import numpy
    import rasterio
    import scipy
    import shapely

    return (
        f"python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
        f"shapely {shapely.__version__}, rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__}), "
        f"exactextract {exactextract.__version__}"
    )


def warm_page_cache(paths: list[str]) -> None:
    """Read every raster once so both methods start from the same (cached) file state."""
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass


def agreement(workdir: Path, gs_tag: str, ee_tag: str) -> tuple[bool, str]:
    gs = np.load(workdir / f"sums_{gs_tag}.npy")
    ee = np.load(workdir / f"sums_{ee_tag}.npy")
    covered = np.load(workdir / "covered_px.npy")
    if gs.shape != ee.shape or np.isnan(ee).any():
        return False, f"result shapes differ or exactextract left parcels out: {gs.shape} vs {ee.shape}"
    big = covered > 1.0
    rd = rel_diff(gs, ee)[big]
    max_rd, p99 = float(rd.max(initial=0.0)), float(np.quantile(rd, 0.99)) if rd.size else 0.0
    max_abs_small = float(np.abs(gs - ee)[~big].max(initial=0.0))
    ok = max_rd <= REL_TOL
    text = (
        f"parcel sums, greensink vs exactextract, {int(big.sum())} parcels covering > 1 pixel: "
        f"max rel diff {max_rd:.2e}, p99 {p99:.2e} (limit {REL_TOL:g}); "
        f"{int((~big).sum())} smaller or outside: max abs diff {max_abs_small:.2e}"
    )
    return ok, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=None, help="raster width = height in pixels (default 10000)")
    parser.add_argument("--parcels", type=int, default=None, help="number of parcels, about (default 50000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (default 3)")
    parser.add_argument("--rasters", type=int, default=1, help="rasters aggregated over the same parcels (default 1)")
    parser.add_argument("--quick", action="store_true", help="2000 × 2000 pixels and 2000 parcels (< 30 s)")
    parser.add_argument(
        "--ee-config", choices=EE_CONFIGS, default=EE_DEFAULT, help="exactextract configuration compared"
    )
    parser.add_argument(
        "--ee-variants", action="store_true", help="also time every other exactextract configuration once, for context"
    )
    parser.add_argument(
        "--workdir", help="directory for the generated data (reused if it matches); default: a temp dir"
    )
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="skip the untimed first run of each method"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory with the generated data")
    parser.add_argument(
        "--budget-mib",
        type=float,
        default=MEMORY_BUDGET_MIB,
        help=f"greensink peak memory (VmHWM of its process) allowed, MiB; exit status 1 above it "
        f"(default {MEMORY_BUDGET_MIB})",
    )
    parser.add_argument(
        "--edges-memory",
        action="store_true",
        help="also build the coverage matrix with the whole-array boundary edges of before, with the batched edges "
        "but the whole-array edges by task, and with both batched, in one fresh process each, and print the peaks",
    )
    parser.add_argument("--run-one", choices=("greensink", "exactextract", "rollup", "edges"), help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="x", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        child_main(args)
        return 0

    size = args.size or (2000 if args.quick else 10_000)
    n_parcels = args.parcels or (2000 if args.quick else 50_000)
    if args.repeats < (0 if args.edges_memory else 1) or args.rasters < 1 or size < 100 or n_parcels < 100:
        parser.error("need --repeats >= 1 (0 with --edges-memory: that comparison only), --rasters >= 1, "
                     "--size >= 100 and --parcels >= 100")

    own_tmp = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="greensink-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, workdir, size, n_parcels)
    finally:
        if own_tmp and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def _print_run(label: str, res: dict) -> None:
    if res["method"] == "greensink":
        reads = " + ".join(f"{t:.2f}" for t in res["read_s"])
        sums = " + ".join(f"{t:.2f}" for t in res["sum_s"])
        print(
            f"{label} greensink:    total {res['total_s']:6.2f} s (CPU {res['cpu_s']:6.2f} s) = coverage "
            f"{res['coverage_s']:.2f} s + read {reads} s + zonal_sum {sums} s; peak {res['peak_mib']:.0f} MiB "
            f"(after coverage {res['peak_after_coverage_mib']:.0f}, before work {res['base_mib']:.0f})",
            flush=True,
        )
    else:
        print(
            f"{label} exactextract: total {res['total_s']:6.2f} s (CPU {res['cpu_s']:6.2f} s) [{res['config']}]; "
            f"peak {res['peak_mib']:.0f} MiB (before work {res['base_mib']:.0f})",
            flush=True,
        )


def _edges_memory(workdir: Path) -> bool:
    """--edges-memory: the parcels' coverage matrix with the whole-array boundary edges, with the batched
    edges but the whole-array edges by task, and with both batched, one fresh process each; prints the
    peaks; True when the three matrices are identical."""
    edge_runs = {tag: spawn(workdir, "edges", tag) for tag in ("whole", "batched_edges", "batched")}
    for tag, res in edge_runs.items():
        print(f"coverage with {tag:13s} edges: {res['total_s']:6.2f} s (CPU {res['cpu_s']:6.2f} s); peak "
              f"{res['peak_mib']:.0f} MiB (before work {res['base_mib']:.0f}), resident after the matrix "
              f"{res['rss_after_mib']:.0f} MiB; {res['nnz'] / 1e6:.1f} M entries", flush=True)
    whole, half, batched = edge_runs["whole"], edge_runs["batched_edges"], edge_runs["batched"]
    same = whole["digest"] == half["digest"] == batched["digest"]
    print(f"coverage._edges peak memory before/after (whole-array / batched): {whole['peak_mib']:.0f} / "
          f"{half['peak_mib']:.0f} MiB ({whole['peak_mib'] - half['peak_mib']:.0f} MiB less)", flush=True)
    print(f"coverage._edges_by_task peak memory before/after (whole-array / batched): {half['peak_mib']:.0f} / "
          f"{batched['peak_mib']:.0f} MiB ({half['peak_mib'] - batched['peak_mib']:.0f} MiB less); the three "
          f"matrices {'identical' if same else 'DIFFER'} (sha256 of indptr, indices, data)", flush=True)
    return same


def _bench(args: argparse.Namespace, workdir: Path, size: int, n_parcels: int) -> int:
    print(f"greensink aggregation benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine_summary()}; {_load()}")
    print(f"versions: {versions()}", flush=True)
    meta = prepare(workdir, size, n_parcels, args.rasters)
    rows, cols = meta["lattice"]
    print(
        f"data: {args.rasters} raster(s) {size} × {size} float32 ({size * size / 1e6:.0f} Mpx, 10 m, {CRS}), "
        f"tiled GeoTIFF 512×512 ZSTD-1 predictor 2, {np.mean(meta['raster_mib']):.0f} MiB each, "
        f"NaN {100 * np.mean(meta['nan_fraction']):.1f} %"
    )
    print(
        f"      {meta['n_parcels']} parcels ({rows} × {cols} jittered lattice, ~{(size / cols) * (size / rows):.0f} px each, "
        f"first row/column crossing the raster edge) in {meta['n_blocks']} blocks and {meta['n_districts']} districts"
    )
    print(
        f"      generated in {meta['generate_s']['zones']:.1f} s (zones) + {meta['generate_s']['rasters']:.1f} s (rasters)"
    )
    print(
        f"exactextract configuration compared: {args.ee_config}; each run in a fresh process, order alternating",
        flush=True,
    )
    if args.repeats == 0:  # --edges-memory alone
        return 0 if _edges_memory(workdir) else 1
    warm_page_cache(meta["rasters_paths"])
    if args.warmup:
        for method in ("greensink", "exactextract"):
            _print_run("warm-up (untimed)", spawn(workdir, method, f"{method}_warmup", args.ee_config))

    gs_runs, ee_runs = [], []
    for r in range(args.repeats):
        order = ("greensink", "exactextract") if r % 2 == 0 else ("exactextract", "greensink")
        for method in order:
            res = spawn(workdir, method, f"{method}_{r}", args.ee_config)
            (gs_runs if method == "greensink" else ee_runs).append(res)
            _print_run(f"run {r + 1}", res)

    variants = []
    if args.ee_variants:
        for config in EE_CONFIGS:
            if config != args.ee_config:
                res = spawn(workdir, "exactextract", f"variant_{config}", config)
                variants.append(res)
                _print_run(f"variant {config:9s}", res)

    last = args.repeats - 1
    ok, text = agreement(workdir, f"greensink_{last}", f"exactextract_{last}")
    for res in variants:
        v_ok, v_text = agreement(workdir, f"greensink_{last}", f"variant_{res['config']}")
        ok = ok and v_ok
        if not v_ok:
            print(f"exactextract variant {res['config']} disagrees with greensink: {v_text}")
    roll = spawn(workdir, "rollup", f"greensink_{last}")
    edges_ok = _edges_memory(workdir) if args.edges_memory else True

    med = statistics.median
    gs_t, ee_t = med(r["total_s"] for r in gs_runs), med(r["total_s"] for r in ee_runs)
    gs_cpu, ee_cpu = med(r["cpu_s"] for r in gs_runs), med(r["cpu_s"] for r in ee_runs)
    marginal = med(a + b for r in gs_runs for a, b in zip(r["read_s"], r["sum_s"], strict=True))
    read_m = med(a for r in gs_runs for a in r["read_s"])
    sum_m = med(a for r in gs_runs for a in r["sum_s"])
    gs_peak = max(r["peak_mib"] for r in gs_runs)
    ee_peak = max(r["peak_mib"] for r in ee_runs)
    roll_ok = max(roll["blocks_max_rel_diff"], roll["districts_max_rel_diff"]) <= REL_TOL
    print()
    print(f"finished, {_load()}")
    print(
        f"greensink    median total {gs_t:.2f} s, CPU {gs_cpu:.2f} s (coverage {med(r['coverage_s'] for r in gs_runs):.2f} s, "
        f"{gs_runs[0]['nnz'] / 1e6:.1f} M entries = {gs_runs[0]['matrix_mib']:.0f} MiB; read {read_m:.2f} s; "
        f"zonal_sum {sum_m:.2f} s); peak {gs_peak:.0f} MiB"
    )
    print(f"exactextract median total {ee_t:.2f} s, CPU {ee_cpu:.2f} s ({args.ee_config}); peak {ee_peak:.0f} MiB")
    print(f"greensink marginal time per further raster on the same coverage (read + zonal_sum): {marginal:.2f} s")
    print(
        f"roll-up parcel -> {roll['blocks_n']} blocks and {roll['districts_n']} districts (pandas groupby): "
        f"{1000 * roll['rollup_s']:.1f} ms; vs direct coverage sums: max rel diff blocks "
        f"{roll['blocks_max_rel_diff']:.1e}, districts {roll['districts_max_rel_diff']:.1e} "
        f"(direct coverage + sum took {roll['blocks_direct_s']:.2f} s and {roll['districts_direct_s']:.2f} s)"
    )
    print(f"agreement: {'PASS' if ok else 'FAIL'}: {text}")
    print(f"roll-up agreement: {'PASS' if roll_ok else 'FAIL'}")
    budget_ok = gs_peak < args.budget_mib
    print(
        f"greensink peak memory {gs_peak:.0f} MiB: {'under' if budget_ok else 'OVER'} "
        f"the {args.budget_mib:.0f} MiB budget"
    )
    print(f"aggregate/exactextract CPU time ratio: {gs_cpu / ee_cpu:.2f}")
    print(f"aggregate/exactextract time ratio: {gs_t / ee_t:.2f}")
    return 0 if ok and roll_ok and budget_ok and edges_ok else 1


if __name__ == "__main__":
    sys.exit(main())
