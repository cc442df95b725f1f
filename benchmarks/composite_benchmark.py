#!/usr/bin/env python
"""Benchmark: a whole Sentinel-2 tile through compositing and NDVI/FVC with bounded memory.

    python benchmarks/composite_benchmark.py                  # 10980 × 10980 px, 3 dates (project issue 3)
    python benchmarks/composite_benchmark.py --quick          # 2000 × 2000 px, 3 dates (~20 s)
    python benchmarks/composite_benchmark.py --workdir /tmp/gsc --keep   # keep and reuse the scenes

What it does (see benchmarks/README.md for the figures):

1. Generates, from a fixed seed, ``--dates`` Sentinel-2 L2A-like scenes of ``--size`` × ``--size``
   10 m pixels in EPSG:32651: B04 and B08 as uint16 digital numbers carrying the −1000
   BOA_ADD_OFFSET of processing baseline 04.00 (DN = 10000 ρ + 1000, nodata 0), and SCL as uint8
   at 20 m with clouds (8, 9), shadow (3) and cirrus (10), a no-data swath edge (SCL 0, DN 0) in
   one date. Files are tiled GeoTIFFs (1024 × 1024 tiles, DEFLATE, predictor 2), like the
   Sentinel-2 COGs on AWS, written strip by strip. Reused when ``--workdir`` already holds them.
2. Runs, each in its own fresh child process (so ``ru_maxrss`` is that stage's own peak):

   * composite: ``greensink.composite.composite_to_file`` (median of the clear observations,
     streamed in ``--block-rows`` strips to a COG), what the workflow's composite rule does;
   * vegetation: ``greensink.vegetation.vegetation_to_files`` on that composite (NDVI, FVC with
     endmembers from the scene's 5th / 95th NDVI percentiles, vegetation and canopy masks,
     structure classes: five COGs), what the vegetation rule does.

3. Prints per stage the wall time, the CPU time of the child (all its threads), its peak
   resident memory and the throughput in grid megapixels per second of wall time; checks the
   outputs (shape, COG layout, plausible statistics); ends with the line
   ``peak memory: composite X MiB, vegetation Y MiB (budget 2048 MiB): PASS`` and exits with
   status 1 if a stage's peak exceeds ``--budget-mib`` (default 2048 MiB = 2 GiB) or a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _bench import RESULT_TAG, machine_summary, run_child  # benchmarks/_bench.py

ROOT = Path(__file__).resolve().parents[1]
SEED = 20_261_122
CRS = "EPSG:32651"
PIXEL_M = 10.0
X_LEFT, Y_TOP = 300_000.0, 3_500_040.0  # the corner of a Sentinel-2 tile in UTM 51N (51RUQ)
DATES = ("2023-05-12", "2023-06-21", "2023-07-31", "2023-08-20", "2023-09-09", "2023-09-29")
GEN_ROWS = 1024  # rows per generated strip (also the tile size of the generated files)
DEFAULT_BUDGET_MIB = 2048


# --------------------------------------------------------------------------- generated data


def _fields(rows: np.ndarray, cols: np.ndarray, size: int, date: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Land (0–1 greenness), cloud and shadow fields at pixel centres rows × cols (10 m pixels)."""
    y = rows[:, None] / size
    x = cols[None, :] / size
    green = 0.45 + 0.35 * np.sin(2 * np.pi * (3 * x + 0.3)) * np.cos(2 * np.pi * (2 * y - 0.1)) \
        + 0.3 * np.sin(2 * np.pi * (17 * x + 11 * y)) * np.sin(2 * np.pi * (13 * y - 5 * x))
    season = 0.85 + 0.1 * math.sin(date)
    phase = 0.37 * date
    cloud = np.sin(2 * np.pi * (4 * x + phase)) * np.sin(2 * np.pi * (3 * y - phase)) \
        + 0.5 * np.sin(2 * np.pi * (9 * x - 7 * y + 2 * phase)) \
        + 2.0 * np.exp(-((x - 0.7) ** 2 + (y - 0.3) ** 2) / 0.004)  # a cloud that stays over the hills
    return np.clip(green * season, 0.0, 1.0), cloud, np.roll(cloud, 12, axis=1) if cloud.shape[1] > 12 else cloud


def _profile(size: int, dtype: str) -> dict:
    return {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": dtype, "nodata": 0, "crs": CRS,
        "tiled": True, "blockxsize": GEN_ROWS, "blockysize": GEN_ROWS, "compress": "DEFLATE", "predictor": 2,
        "BIGTIFF": "IF_SAFER",
    }


def generate_date(workdir: Path, size: int, d: int) -> dict:
    """Write B04, B08 (10 m) and SCL (20 m) of date ``d``, strip by strip; returns the file record."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    t10 = Affine(PIXEL_M, 0.0, X_LEFT, 0.0, -PIXEL_M, Y_TOP)
    t20 = Affine(2 * PIXEL_M, 0.0, X_LEFT, 0.0, -2 * PIXEL_M, Y_TOP)
    size20 = (size + 1) // 2
    paths = {band: workdir / f"T51RUQ_{DATES[d].replace('-', '')}_{band}.tif" for band in ("B04", "B08", "SCL")}
    cols = np.arange(size)
    cols20 = np.arange(size20) * 2 + 0.5  # 20 m pixel centres in 10 m pixel units
    with rasterio.open(paths["B04"], "w", transform=t10, **_profile(size, "uint16")) as red_f, \
            rasterio.open(paths["B08"], "w", transform=t10, **_profile(size, "uint16")) as nir_f, \
            rasterio.open(paths["SCL"], "w", transform=t20, **_profile(size20, "uint8")) as scl_f:
        for r0 in range(0, size, GEN_ROWS):
            rows = np.arange(r0, min(r0 + GEN_ROWS, size))
            rng = np.random.default_rng([SEED, d, r0])
            green, cloud, _ = _fields(rows, cols, size, d)
            red = 0.15 - 0.11 * green + rng.normal(0.0, 0.004, green.shape)
            nir = 0.14 + 0.34 * green + rng.normal(0.0, 0.01, green.shape)
            bright = cloud > 1.05  # clouds are bright in both bands
            red[bright] += 0.3
            nir[bright] += 0.25
            dn = lambda rho: np.clip(np.round(rho * 10000 + 1000), 1, 65535).astype(np.uint16)  # noqa: E731
            red_dn, nir_dn = dn(red), dn(nir)
            if d == 1:  # a swath edge: the lower-left triangle has no data
                edge = (cols[None, :] * 2.2 + (size - rows[:, None])) < 0.45 * size
                red_dn[edge] = 0
                nir_dn[edge] = 0
            win = Window(0, r0, size, rows.size)
            red_f.write(red_dn, 1, window=win)
            nir_f.write(nir_dn, 1, window=win)
            if r0 % 2 == 0:
                rows20 = np.arange(r0 // 2, min((r0 + GEN_ROWS) // 2, size20)) * 2 + 0.5
                g20, c20, shadow20 = _fields(rows20, cols20, size, d)
                scl = np.where(g20 > 0.35, 4, 5).astype(np.uint8)
                scl[(c20 > 0.75) & (c20 <= 1.05)] = 10
                scl[c20 > 1.05] = 9
                scl[(c20 > 1.3)] = 8
                scl[(shadow20 > 1.05) & (c20 <= 0.75)] = 3
                if d == 1:
                    e20 = (cols20[None, :] * 2.2 + (size - rows20[:, None])) < 0.45 * size
                    scl[e20] = 0
                scl_f.write(scl, 1, window=Window(0, r0 // 2, size20, rows20.size))
    return {k: str(v) for k, v in paths.items()}


def prepare(workdir: Path, size: int, n_dates: int) -> dict:
    meta_path = workdir / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("size") == size and meta.get("dates") == n_dates and meta.get("seed") == SEED \
                and all(Path(p).exists() for s in meta["scenes"] for p in s.values()):
            meta["reused"] = True
            return meta
    t0 = time.perf_counter()
    scenes = [generate_date(workdir, size, d) for d in range(n_dates)]
    meta = {"size": size, "dates": n_dates, "seed": SEED, "scenes": scenes, "generate_s": time.perf_counter() - t0,
            "input_mib": sum(os.path.getsize(p) for s in scenes for p in s.values()) / 2**20}
    meta_path.write_text(json.dumps(meta, indent=1))
    meta["reused"] = False
    return meta


# --------------------------------------------------------------------------- child processes


def peak_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports ru_maxrss in KiB).

    Linux carries ru_maxrss across execve, so a child started by a big parent would report the
    parent's peak: the scenes are generated in a child of their own, the parent stays small, and
    :func:`hwm_mib` (the child's own high-water mark) is reported beside it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def hwm_mib() -> float:
    """VmHWM of /proc/self/status: the peak resident set of this process image only, MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def rss_mib() -> float:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def _timeline() -> tuple[list[tuple[int, int, float]], callable]:
    marks: list[tuple[int, int, float]] = []
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        marks.append((done, total, time.perf_counter() - t0))

    return marks, progress


def run_composite(workdir: Path, meta: dict, args: argparse.Namespace) -> dict:
    from affine import Affine

    from greensink.composite import composite_to_file
    from greensink.grid import Grid
    from greensink.ingest import Scene

    size = meta["size"]
    grid = Grid(CRS, Affine(PIXEL_M, 0.0, X_LEFT, 0.0, -PIXEL_M, Y_TOP), width=size, height=size)
    scenes = [Scene(f"S2_{DATES[d]}", DATES[d], "sentinel2-l2a", s["B04"], s["B08"], s["SCL"], 1e-4, -0.1)
              for d, s in enumerate(meta["scenes"])]
    out = workdir / "out" / "composite.tif"
    base = peak_mib()
    marks, progress = _timeline()
    c0, t0 = time.process_time(), time.perf_counter()
    stats = composite_to_file(scenes, grid, out, "median", args.block_rows, progress, compress=args.compress)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"stage": "composite", "wall_s": wall, "cpu_s": cpu, "strips_s": marks[-1][2], "strips": marks[-1][1],
            "base_mib": base, "peak_mib": peak_mib(), "hwm_mib": hwm_mib(), "end_rss_mib": rss_mib(), "stats": stats,
            "out_mib": out.stat().st_size / 2**20, "gdal_cachemax": os.environ.get("GDAL_CACHEMAX", "default")}


def run_vegetation(workdir: Path, meta: dict, args: argparse.Namespace) -> dict:
    from greensink.vegetation import vegetation_to_files

    settings = {"fvc_percentiles": [5, 95], "ndvi_soil": None, "ndvi_full": None,
                "ndvi_vegetation": 0.2, "ndvi_shrub": 0.35, "ndvi_tree": 0.5}  # the config defaults
    names = {"height": "height.tif", "ndvi": "ndvi.tif", "fvc": "fvc.tif", "vegetation": "vegetation.tif", "canopy": "canopy.tif",
             "classes": "vegetation_class.tif"}
    out = {k: workdir / "out" / v for k, v in names.items()}
    base = peak_mib()
    marks, progress = _timeline()
    c0, t0 = time.process_time(), time.perf_counter()
    stats = vegetation_to_files(workdir / "out" / "composite.tif", out, settings, compress=args.compress,
                                block_rows=args.block_rows, progress=progress)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    half = marks[-1][1] // 2
    return {"stage": "vegetation", "wall_s": wall, "cpu_s": cpu, "pass1_s": marks[half][2] if len(marks) > half else None,
            "base_mib": base, "peak_mib": peak_mib(), "hwm_mib": hwm_mib(), "end_rss_mib": rss_mib(), "stats": stats,
            "out_mib": sum(p.stat().st_size for p in out.values()) / 2**20}


def child_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))  # measure this checkout's greensink
    workdir = Path(args.workdir)
    if args.run_one == "generate":
        meta = prepare(workdir, args.size, args.dates)
        print(RESULT_TAG + json.dumps(meta), flush=True)
        return
    meta = json.loads((workdir / "meta.json").read_text())
    run = run_composite if args.run_one == "composite" else run_vegetation
    print(RESULT_TAG + json.dumps(run(workdir, meta, args), default=float), flush=True)


def spawn(workdir: Path, stage: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-one", stage, "--workdir", str(workdir),
           "--block-rows", str(args.block_rows), "--compress", args.compress, "--size", str(args.size), "--dates", str(args.dates)]
    return run_child(cmd, stage)


# --------------------------------------------------------------------------- orchestration




def versions() -> str:
    import rasterio

    return (f"python {platform.python_version()}, numpy {np.__version__}, rasterio {rasterio.__version__} "
            f"(GDAL {rasterio.__gdal_version__})")


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def check_outputs(workdir: Path, size: int, comp: dict, veg: dict) -> list[str]:
    """Problems with the outputs: shape, COG layout, plausible statistics."""
    import rasterio

    problems = []
    for name in ("composite.tif", "ndvi.tif", "fvc.tif", "vegetation.tif", "canopy.tif", "vegetation_class.tif"):
        with rasterio.open(workdir / "out" / name) as src:
            if (src.height, src.width) != (size, size) or src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
                problems.append(f"{name}: {src.height} × {src.width}, layout {src.tags(ns='IMAGE_STRUCTURE').get('LAYOUT')}")
    s, v = comp["stats"], veg["stats"]
    if not (0 < s["never_clear_pct"] < 50 and 1 < s["mean_clear_obs"] <= s["n_scenes"]):
        problems.append(f"composite statistics implausible: {s}")
    if not (-0.2 < v["ndvi_soil"] < v["ndvi_full"] < 1 and 0 < v["vegetation_pct"] <= 100):
        problems.append(f"vegetation statistics implausible: {v}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=None, help="grid width = height in 10 m pixels (default 10980)")
    parser.add_argument("--quick", action="store_true", help="2000 × 2000 pixels")
    parser.add_argument("--dates", type=int, default=3, help=f"scenes (dates) composited, 1–{len(DATES)} (default 3)")
    parser.add_argument("--block-rows", type=int, default=512, help="rows per streamed strip (imagery.block_rows, default 512)")
    parser.add_argument("--compress", default="zstd", help="output codec (output.compress, default zstd)")
    parser.add_argument("--budget-mib", type=float, default=DEFAULT_BUDGET_MIB, help="peak memory limit per stage (2048)")
    parser.add_argument("--workdir", help="directory for the generated scenes (reused if they match); default: a temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--run-one", choices=("generate", "composite", "vegetation"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        child_main(args)
        return 0
    size = args.size = args.size or (2000 if args.quick else 10_980)
    if size < 64 or not 1 <= args.dates <= len(DATES):
        parser.error(f"need --size >= 64 and 1 <= --dates <= {len(DATES)}")
    own_tmp = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="greensink-composite-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, workdir, size)
    finally:
        if own_tmp and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _bench(args: argparse.Namespace, workdir: Path, size: int) -> int:
    mpx = size * size / 1e6
    print(f"greensink composite + vegetation benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine_summary()}; {_load()}")
    print(f"versions: {versions()}", flush=True)
    meta = spawn(workdir, "generate", args)  # in a child, so this process stays small (see peak_mib)
    how = "reused" if meta["reused"] else f"generated in {meta['generate_s']:.1f} s"
    print(f"data: {args.dates} Sentinel-2 L2A-like dates, {size} × {size} px ({mpx:.1f} Mpx) at 10 m, B04/B08 uint16 "
          f"(offset −1000) + SCL at 20 m, tiled DEFLATE GeoTIFFs, {meta.get('input_mib', float('nan')):.0f} MiB ({how})")
    print(f"settings: median composite, block_rows {args.block_rows}, output codec {args.compress}; "
          "each stage in a fresh process", flush=True)
    comp = spawn(workdir, "composite", args)
    print(f"GDAL_CACHEMAX in the stages: {comp['gdal_cachemax']} (MiB; greensink.io sets 256 unless the environment does)")
    print(f"composite:  wall {comp['wall_s']:7.2f} s, CPU {comp['cpu_s']:7.2f} s, {mpx / comp['wall_s']:6.2f} Mpx/s; "
          f"{comp['strips']} strips streamed in {comp['strips_s']:.2f} s, COG copy {comp['wall_s'] - comp['strips_s']:.2f} s; "
          f"peak {comp['peak_mib']:.0f} MiB (VmHWM {comp['hwm_mib']:.0f}, before work {comp['base_mib']:.0f}); output {comp['out_mib']:.0f} MiB; "
          f"never clear {comp['stats']['never_clear_pct']:.2f} %, {comp['stats']['mean_clear_obs']:.2f} clear obs/px", flush=True)
    veg = spawn(workdir, "vegetation", args)
    pass1 = f"histogram pass + ndvi.tif {veg['pass1_s']:.2f} s, " if veg.get("pass1_s") is not None else ""
    print(f"vegetation: wall {veg['wall_s']:7.2f} s, CPU {veg['cpu_s']:7.2f} s, {mpx / veg['wall_s']:6.2f} Mpx/s; "
          f"{pass1}peak {veg['peak_mib']:.0f} MiB (VmHWM {veg['hwm_mib']:.0f}, before work {veg['base_mib']:.0f}); outputs {veg['out_mib']:.0f} MiB; "
          f"endmembers {veg['stats']['ndvi_soil']:.4f} / {veg['stats']['ndvi_full']:.4f}, "
          f"vegetation {veg['stats']['vegetation_pct']:.1f} %, canopy {veg['stats']['canopy_pct']:.1f} %", flush=True)
    total = comp["wall_s"] + veg["wall_s"]
    print(f"total: wall {total:.2f} s, CPU {comp['cpu_s'] + veg['cpu_s']:.2f} s, {mpx / total:.2f} Mpx/s; finished, {_load()}")
    problems = check_outputs(workdir, size, comp, veg)
    for p in problems:
        print(f"check FAILED: {p}")
    peak = max(comp["peak_mib"], veg["peak_mib"], comp["hwm_mib"], veg["hwm_mib"])
    ok = peak <= args.budget_mib
    print(f"outputs: {'PASS' if not problems else 'FAIL'}")
    top = {r["stage"]: max(r["peak_mib"], r["hwm_mib"]) for r in (comp, veg)}
    print(f"peak memory: composite {top['composite']:.0f} MiB, vegetation {top['vegetation']:.0f} MiB "
          f"(budget {args.budget_mib:.0f} MiB): {'PASS' if ok else 'FAIL'}")
    return 0 if ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
