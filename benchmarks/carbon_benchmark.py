#!/usr/bin/env python
"""Benchmark: the carbon stage streamed by row strips against the whole-raster path it replaced.

    python benchmarks/carbon_benchmark.py                     # 6000 × 6000 px, 5 types, 200 draws
    python benchmarks/carbon_benchmark.py --quick             # 1000 × 1000 px (~10 s)
    python benchmarks/carbon_benchmark.py --workdir /tmp/gcb --keep   # keep and reuse the inputs

What it does (see benchmarks/README.md for the figures):

1. Generates, from a fixed seed, the inputs of the carbon rule on a ``--size`` × ``--size`` grid
   of 10 m pixels in EPSG:32651: ``fractions.tif`` with one band per type (``--types`` types in
   patches, about 35 % of the pixels typed, some pixels shared by two types, the rest 0) and
   ``ndvi.tif`` (a smooth field plus noise, NaN in round cloud holes and scattered pixels), both
   tiled GeoTIFFs (512 × 512, ZSTD level 1, predictor 2, nodata NaN), written strip by strip;
   and ``models.json`` with one parametric NDVI model per type (linear, power, exponential,
   logarithmic in turn) with ``--draws`` bootstrap draws. Reused when ``--workdir`` holds them.
2. Runs, each in its own fresh child process (so its peak resident memory, ``VmHWM``, is that path's own), in
   alternating order, ``--repeats`` times:

   * streamed: ``greensink.carbon.carbon_map_streamed`` (what the carbon rule runs now): row
     strips of ``strip_rows_for(width)`` rows (or ``--strip-rows``) read, evaluated and written
     through ``greensink.io.raster_writer``, the statistics accumulated as counts;
   * whole-raster: what the carbon rule ran before: ``io.read_raster`` of every raster whole,
     ``typed_pixels`` + ``pixel_function`` + ``density_map`` over the whole grid,
     ``io.write_raster``, ``model_use_stats`` and the total from the whole estimate band.

3. Checks the outputs: the two carbon.tif files have the same pixel bits in every band (and the
   same band names, tags and codec), the statistics and typed-pixel counts are equal, and the
   streamed total (a float64 sum of the float32 estimate band over the strips) is within 1e-9 of
   the float64 sum of the whole-raster band. The old stage summed that band in float32, so its own
   total is only good to about 1e-7: the streamed total must be within 1e-6 of it, and the
   relative difference is printed. Prints per path the median wall time, CPU time and peak resident
   memory, ``outputs: PASS`` (exit status 1 on FAIL), and ends with the line
   ``streamed/whole-raster: time ratio X, peak memory ratio Y``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _bench import RESULT_TAG, machine_summary, run_child  # benchmarks/_bench.py

ROOT = Path(__file__).resolve().parents[1]
SEED = 20_261_121
CRS = "EPSG:32651"
PIXEL_M = 10.0
X_LEFT, Y_TOP = 330_000.0, 3_480_000.0  # Shanghai, UTM 51N
TILE = 512
FORMS = (("linear", (-3.0, 40.0)), ("power", (30.0, 1.2)), ("exponential", (0.9, 3.5)),
         ("logarithmic", (35.0, 8.0)), ("linear", (1.0, 12.0)))
TOTAL_REL_TOL = 1e-9  # streamed total against the float64 sum of the whole-raster estimate band
FLOAT32_REL_TOL = 1e-6  # against the old stage's total, a float32 sum of that band (about 7 significant digits)


# --------------------------------------------------------------------------- generated data


def make_models(n_types: int, n_draws: int, seed: int) -> dict:
    """One NDVI model per type, the forms of FORMS in turn, with n_draws bootstrap draws each."""
    rng = np.random.default_rng([seed, 1])
    types = {}
    for k in range(n_types):
        form, (a, b) = FORMS[k % len(FORMS)]
        draws = np.column_stack([a + rng.normal(0, 0.1 * abs(a) + 0.2, n_draws), b + rng.normal(0, 0.08 * abs(b), n_draws)])
        types[f"T{k + 1}"] = {"form": form, "params": {"a": a, "b": b}, "bootstrap": draws.tolist(),
                              "x_range": [0.15, 0.85]}
    return {"types": types}


def write_inputs(workdir: Path, size: int, n_types: int, seed: int) -> dict:
    """fractions.tif (n_types bands) and ndvi.tif, written in strips of whole tiles; returns shares."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    profile = {"driver": "GTiff", "width": size, "height": size, "dtype": "float32", "crs": CRS,
               "transform": Affine(PIXEL_M, 0.0, X_LEFT, 0.0, -PIXEL_M, Y_TOP), "nodata": float("nan"),
               "tiled": True, "blockxsize": TILE, "blockysize": TILE, "compress": "ZSTD", "zstd_level": 1,
               "predictor": 2, "bigtiff": "IF_SAFER"}
    rng = np.random.default_rng([seed, 2])
    n_holes = max(3, round(40 * (size / 6000) ** 2))
    hole_r = rng.uniform(10, 90, n_holes) * size / 6000 + 2
    hole_row, hole_col = rng.uniform(0, size, n_holes), rng.uniform(0, size, n_holes)
    phase = rng.uniform(0, 2 * np.pi, 4)
    cols = np.arange(size)
    patch = 40  # types come in patches of 40 × 40 pixels
    n_patch = -(-size // patch)
    patch_type = rng.integers(0, n_types, (n_patch, n_patch))
    patch_typed = rng.uniform(size=(n_patch, n_patch)) < 0.4
    typed_px = nan_px = 0
    with rasterio.open(workdir / "fractions.tif", "w", count=n_types, **profile) as f_dst, \
            rasterio.open(workdir / "ndvi.tif", "w", count=1, **profile) as n_dst:
        for k, r0 in enumerate(range(0, size, TILE)):
            r1 = min(r0 + TILE, size)
            crng = np.random.default_rng([seed, 3, k])
            rws = np.arange(r0, r1)
            fy = np.cos(2 * np.pi * rws * PIXEL_M / 2_300.0 + phase[0])
            fx = np.sin(2 * np.pi * cols * PIXEL_M / 3_100.0 + phase[1])
            nd = (0.45 + 0.25 * np.outer(fy, fx) + crng.normal(0, 0.12, (r1 - r0, size))).astype(np.float32)
            nd[crng.random(nd.shape, dtype=np.float32) < 0.003] = np.nan
            for h in np.flatnonzero((hole_row + hole_r >= r0) & (hole_row - hole_r < r1)):
                dr = (rws[:, None] + 0.5 - hole_row[h]) ** 2
                dc = (cols[None, :] + 0.5 - hole_col[h]) ** 2
                nd[dr + dc < hole_r[h] ** 2] = np.nan
            pr, pc = rws // patch, cols // patch
            main = patch_type[pr][:, pc]
            typed = patch_typed[pr][:, pc] & (crng.random(nd.shape, dtype=np.float32) < 0.9)
            share = crng.uniform(0.3, 1.0, nd.shape).astype(np.float32)
            second = (main + 1) % n_types
            mixed = typed & (crng.random(nd.shape, dtype=np.float32) < 0.25)
            frac = np.zeros((n_types, r1 - r0, size), dtype=np.float32)
            for t in range(n_types):
                frac[t] = np.where(typed & (main == t), share, 0.0)
                frac[t] += np.where(mixed & (second == t), (1.0 - share) * 0.8, 0.0).astype(np.float32)
            f_dst.write(frac, window=Window(0, r0, size, r1 - r0))
            n_dst.write(nd, 1, window=Window(0, r0, size, r1 - r0))
            typed_px += int(typed.sum())
            nan_px += int(np.isnan(nd).sum())
        f_dst.descriptions = tuple(f"T{t + 1}" for t in range(n_types))
    return {"typed_share": typed_px / size**2, "nan_share": nan_px / size**2}


def prepare(workdir: Path, size: int, n_types: int, n_draws: int) -> dict:
    meta_path = workdir / "meta.json"
    wanted = {"size": size, "types": n_types, "draws": n_draws, "seed": SEED, "version": 1}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted:
            print(f"reusing generated data in {workdir}", flush=True)
            return meta
    t0 = time.perf_counter()
    models = make_models(n_types, n_draws, SEED)
    (workdir / "models.json").write_text(json.dumps(models))
    shares = write_inputs(workdir, size, n_types, SEED)
    meta = {**wanted, **shares, "generate_s": time.perf_counter() - t0,
            "input_mib": sum(os.path.getsize(workdir / f) for f in ("fractions.tif", "ndvi.tif")) / 2**20}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


# --------------------------------------------------------------------------- child processes


def peak_mib() -> float:
    """Peak resident set size of this process so far, MiB: VmHWM of /proc/self/status where there
    is one (Linux carries ``ru_maxrss`` across the execve of a child started by a big parent, so
    the child would report the parent's peak), else ``ru_maxrss`` (KiB on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_streamed(workdir: Path, tag: str, strip_rows: int | None) -> dict:
    from greensink import io
    from greensink.carbon import carbon_map_streamed, strip_rows_for

    models = io.read_json(workdir / "models.json")
    types = list(models["types"])
    base = peak_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    stats = carbon_map_streamed(models, types, workdir / "fractions.tif", {"ndvi": workdir / "ndvi.tif"},
                                workdir / f"carbon_{tag}.tif", strip_rows=strip_rows)
    io.write_json(workdir / f"carbon_{tag}.json", stats)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = strip_rows or strip_rows_for(io.read_grid(workdir / "ndvi.tif").width)
    return {"method": "streamed", "wall_s": wall, "cpu_s": cpu, "base_mib": base, "peak_mib": peak_mib(),
            "strip_rows": rows}


def run_whole(workdir: Path, tag: str) -> dict:
    """The carbon rule as it was before streaming (workflow/scripts/carbon.py up to 5740cc5)."""
    from greensink import io
    from greensink.carbon import carbon_band_names, density_map, model_use_stats, pixel_function, typed_pixels

    models = io.read_json(workdir / "models.json")
    types = list(models["types"])
    base = peak_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    grid = io.read_grid(workdir / "ndvi.tif")
    rasters = {"ndvi": io.read_raster(workdir / "ndvi.tif")}
    fractions = io.read_raster(workdir / "fractions.tif")
    active = typed_pixels(fractions)
    fn = pixel_function(models, types, fractions, rasters)
    carbon = density_map(fn, active, grid.shape, 90.0)
    io.write_raster(workdir / f"carbon_{tag}.tif", carbon, grid, band_names=carbon_band_names(90.0), compress="zstd",
                    tags={"units": "t C/ha", "interval_pct": 90.0})
    stats = model_use_stats(models, types, fractions, rasters)
    total = float(carbon[0][carbon[0] == carbon[0]].sum() * grid.pixel_area_ha)
    io.write_json(workdir / f"carbon_{tag}.json", {"total_t": total, "typed_pixels": int(active.size), "types": stats})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # not part of the old stage (untimed): the same band summed in float64, what the streamed stage sums
    total64 = float(carbon[0][carbon[0] == carbon[0]].sum(dtype=np.float64)) * grid.pixel_area_ha
    return {"method": "whole-raster", "wall_s": wall, "cpu_s": cpu, "base_mib": base, "peak_mib": peak_mib(),
            "total_t_float64": total64}


def child_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))  # measure this checkout's greensink
    workdir = Path(args.workdir)
    if args.run_one == "streamed":
        result = run_streamed(workdir, args.tag, args.strip_rows)
    else:
        result = run_whole(workdir, args.tag)
    print(RESULT_TAG + json.dumps(result), flush=True)


def spawn(workdir: Path, mode: str, tag: str, strip_rows: int | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-one", mode, "--workdir", str(workdir), "--tag", tag]
    if strip_rows:
        cmd += ["--strip-rows", str(strip_rows)]
    return run_child(cmd, mode)


# --------------------------------------------------------------------------- checks and orchestration


def compare_outputs(workdir: Path, a: str, b: str, b_total64: float) -> tuple[bool, str]:
    """Same pixel bits in every band (read in strips), equal statistics, the streamed total within
    TOTAL_REL_TOL of the float64 sum of the whole-raster band and within FLOAT32_REL_TOL of the
    whole-raster path's own (float32-summed) total."""
    import rasterio
    from rasterio.windows import Window

    same = True
    with rasterio.open(workdir / f"carbon_{a}.tif") as ra, rasterio.open(workdir / f"carbon_{b}.tif") as rb:
        meta_ok = (ra.descriptions == rb.descriptions and ra.tags() == rb.tags() and ra.shape == rb.shape
                   and ra.profile.get("compress") == rb.profile.get("compress"))
        for r0 in range(0, ra.height, 1024):
            w = Window(0, r0, ra.width, min(1024, ra.height - r0))
            same &= ra.read(window=w).tobytes() == rb.read(window=w).tobytes()
    ja = json.loads((workdir / f"carbon_{a}.json").read_text())
    jb = json.loads((workdir / f"carbon_{b}.json").read_text())
    rel64 = abs(ja["total_t"] - b_total64) / max(abs(b_total64), 1e-300)
    rel32 = abs(ja["total_t"] - jb["total_t"]) / max(abs(jb["total_t"]), 1e-300)
    ok = (same and meta_ok and ja["types"] == jb["types"] and ja["typed_pixels"] == jb["typed_pixels"]
          and rel64 <= TOTAL_REL_TOL and rel32 <= FLOAT32_REL_TOL)
    text = (f"pixels {'identical' if same else 'DIFFER'}, band names/tags/codec {'equal' if meta_ok else 'DIFFER'}, "
            f"statistics {'equal' if ja['types'] == jb['types'] else 'DIFFER'}, typed pixels {ja['typed_pixels']} vs "
            f"{jb['typed_pixels']}; total {ja['total_t']:.6f} t C vs the whole band summed in float64 {b_total64:.6f} "
            f"(rel diff {rel64:.1e}, limit {TOTAL_REL_TOL:g}) and vs the old float32 sum {jb['total_t']:.6f} "
            f"(rel diff {rel32:.1e}, limit {FLOAT32_REL_TOL:g})")
    return ok, text


def versions() -> str:
    import numpy
    import rasterio

    return f"python {platform.python_version()}, numpy {numpy.__version__}, rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__})"


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=None, help="grid width = height in pixels (default 6000)")
    parser.add_argument("--types", type=int, default=5, help="green-space types (default 5)")
    parser.add_argument("--draws", type=int, default=200, help="bootstrap draws per model (default 200)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per path (default 1)")
    parser.add_argument("--strip-rows", type=int, default=None, help="rows per strip of the streamed path (default: strip_rows_for)")
    parser.add_argument("--quick", action="store_true", help="1000 × 1000 pixels (~10 s)")
    parser.add_argument("--workdir", help="directory for the generated data (reused if it matches); default: a temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory with the generated data")
    parser.add_argument("--run-one", choices=("streamed", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="x", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        child_main(args)
        return 0
    size = args.size or (1000 if args.quick else 6000)
    if size < 100 or args.types < 1 or args.draws < 2 or args.repeats < 1:
        parser.error("need --size >= 100, --types >= 1, --draws >= 2 and --repeats >= 1")
    own_tmp = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="greensink-carbon-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, workdir, size)
    finally:
        if own_tmp and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _print_run(label: str, res: dict) -> None:
    extra = f"; strips of {res['strip_rows']} rows" if "strip_rows" in res else ""
    print(f"{label} {res['method']}: wall {res['wall_s']:.2f} s, CPU {res['cpu_s']:.2f} s, peak {res['peak_mib']:.0f} MiB "
          f"(before work {res['base_mib']:.0f}){extra}", flush=True)


def _bench(args: argparse.Namespace, workdir: Path, size: int) -> int:
    print(f"greensink carbon-stage benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine_summary()}; {_load()}")
    print(f"versions: {versions()}", flush=True)
    meta = prepare(workdir, size, args.types, args.draws)
    print(f"data: {size} × {size} px ({size * size / 1e6:.0f} Mpx), {args.types} types "
          f"({100 * meta['typed_share']:.1f} % of pixels typed), NDVI NaN {100 * meta['nan_share']:.1f} %, "
          f"{args.draws} bootstrap draws per model; inputs {meta['input_mib']:.0f} MiB, generated in {meta['generate_s']:.1f} s",
          flush=True)
    runs: dict[str, list[dict]] = {"streamed": [], "whole": []}
    for r in range(args.repeats):
        order = ("streamed", "whole") if r % 2 == 0 else ("whole", "streamed")
        for mode in order:
            res = spawn(workdir, mode, f"{mode}_{r}", args.strip_rows)
            runs[mode].append(res)
            _print_run(f"run {r + 1}", res)
    last = args.repeats - 1
    ok, text = compare_outputs(workdir, f"streamed_{last}", f"whole_{last}", runs["whole"][-1]["total_t_float64"])
    med = statistics.median
    fig = {m: {"wall": med(x["wall_s"] for x in rs), "cpu": med(x["cpu_s"] for x in rs),
               "peak": max(x["peak_mib"] for x in rs)} for m, rs in runs.items()}
    print()
    print(f"finished, {_load()}")
    for m, label in (("streamed", "streamed"), ("whole", "whole-raster")):
        f = fig[m]
        print(f"{label}: wall {f['wall']:6.2f} s, CPU {f['cpu']:6.2f} s, peak {f['peak']:5.0f} MiB "
              f"({size * size / 1e6 / f['wall']:.2f} Mpx/s)")
    print(f"outputs: {'PASS' if ok else 'FAIL'}: {text}")
    print(f"streamed/whole-raster: time ratio {fig['streamed']['wall'] / fig['whole']['wall']:.2f}, "
          f"peak memory ratio {fig['streamed']['peak'] / fig['whole']['peak']:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
