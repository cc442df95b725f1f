#!/usr/bin/env python
"""Benchmark: per-pixel stages against their read/write floor, on the same generated data in the same run.

    python benchmarks/raster_floor.py                    # 2000 × 2000 px, every stage (~3-5 min on 2 cores)
    python benchmarks/raster_floor.py --size 1000 --no-exact   # skip the (slow) exact carbon path
    python benchmarks/raster_floor.py --change-run /path/to/run   # time rule change on another finished run
    python benchmarks/raster_floor.py --stages carbon --no-exact  # one stage (or a comma-separated list) only

For each stage the script runs the package's rule runner, then its **floor** in the same process: the stage's
inputs read and its outputs written again with the same writers, band count, dtype, band names and codec
(``--compress``), and no computation. The floor writes the stage's real output values (read back from the
stage's files; that read is timed separately and not counted), so the encoder sees the same data. Each stage
prints wall and CPU time of stage and floor and one line ending in ``stage/floor ratio: X`` (wall time; the
CPU ratio is printed beside it, steadier on a shared machine).

Stages and floors:

* ``ingest masking``: ``greensink.ingest.run.run_ingest`` of ``--dates`` Sentinel-2 L2A-like scenes
  (``benchmarks/composite_benchmark.py``'s generator: B04, B08 uint16 at 10 m with the baseline-04.00 offset,
  SCL at 20 m with clouds, shadow, cirrus and a swath edge) listed in a scenes table, on a ``--size`` grid:
  every scene's checks, masking and clear-pixel counts; floor: every band file read as stored, at its own
  resolution, over the same row strips (no calibration, masking nor resampling), scenes.json written again;
* ``composite``: ``greensink.composite.run_composite`` (median) of the same scenes; floor: the same reads,
  composite.tif written again;
* ``vegetation``: ``greensink.vegetation.run_vegetation`` of a 3-band composite (red, nir,
  valid_obs_count); floor: the composite read strip by strip, its five products written again;
* ``carbon``: ``greensink.carbon.run_carbon`` with every error source on (residual field and nugget, NDVI
  error, edges), ``uncertainty.pixel_interval: tabulated`` and (unless ``--no-exact``) ``exact``; floor: the
  fractions, NDVI and its standard error read strip by strip, carbon.tif written again; the line also gives
  user and system time and minor page faults of stage and floor (``getrusage``: a fresh process pays its
  fresh pages as system time);
* ``change``: ``greensink.change.run_change`` on a copy of a finished run's inputs (``--change-run``, default
  this checkout's results/ when it holds a change pair; the first pair is used; seed 42 and the demo
  config's uncertainty settings), its outputs in the copy; floor: every input read (rasters strip by strip,
  coverage matrices, zone layers, zone tables, models), sink.tif, attribution.tif, the zone tables (GeoPackage,
  CSV, Parquet), lost patches and uncertainty.json written again. Its grid is that run's (the demo: 502²),
  not ``--size``.

Peak resident memory (VmHWM) of the whole process is printed at the end and per stage as the growth of VmHWM,
which only shows a stage that raised the peak; a JSON summary is the last line.

Generated carbon data (fixed seed, 10 m pixels, EPSG:32651, tiled 512 × 512, ZSTD level 1, predictor 2):
fractions of 5 types in 40 × 40 px patches (about 35 % of pixels typed, a quarter of those cut by an
edge, ``--mixed`` of them shared by two types; the demo city has 0.5 %), NDVI and its standard error
(with cloud holes), models.json with a linear, power, exponential, logarithmic and linear curve of 200
bootstrap draws each (benchmarks/carbon_benchmark.py) and a residual field (nugget 0.02, partial sill
0.015, range 300 m). Figures and what they mean: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _bench import machine_summary  # noqa: E402

SEED = 20_261_121
TYPES = ["T1", "T2", "T3", "T4", "T5"]
VEG_SETTINGS = {"fvc_percentiles": [5, 95], "ndvi_soil": None, "ndvi_full": None, "ndvi_vegetation": 0.2,
                "ndvi_shrub": 0.4, "ndvi_tree": 0.5, "chm": None}


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def generate(work: Path, size: int, mixed: float) -> None:
    """fractions.tif, ndvi.tif, ndvi_se.tif, composite.tif and models.json in ``work``."""
    from affine import Affine
    from carbon_benchmark import make_models

    from greensink import io as gio
    from greensink.grid import Grid

    grid = Grid(crs="EPSG:32651", transform=Affine(10.0, 0.0, 330_000.0, 0.0, -10.0, 3_480_000.0),
                width=size, height=size)
    models = make_models(len(TYPES), 200, SEED)
    for t in models["types"].values():
        t["source"] = "plots"
        t["predictors"] = ["ndvi"]
    models["residual_field"] = {"nugget": 0.02, "psill": 0.015, "range_m": 300.0, "n_plots": 100,
                                "method": "generated"}
    gio.write_json(work / "models.json", models)
    rng = np.random.default_rng([SEED, 2])
    patch = 40
    n_patch = -(-size // patch)
    patch_type = rng.integers(0, len(TYPES), (n_patch, n_patch))
    patch_typed = rng.random((n_patch, n_patch)) < 0.4
    phase = rng.uniform(0, 2 * np.pi, 2)
    cols = np.arange(size)
    names = {"fractions": TYPES, "ndvi": ["ndvi"], "ndvi_se": ["ndvi_se"],
             "composite": ["red", "nir", "valid_obs_count"]}
    writers = {k: gio.raster_writer(work / f"{k}.tif", grid, len(v), band_names=v) for k, v in names.items()}
    outs = {k: w.__enter__() for k, w in writers.items()}
    try:
        for k, r0 in enumerate(range(0, size, 512)):
            r1 = min(r0 + 512, size)
            crng = np.random.default_rng([SEED, 3, k])
            rws = np.arange(r0, r1)
            nd = (0.45 + 0.25 * np.outer(np.cos(2 * np.pi * rws / 230.0 + phase[0]), np.sin(2 * np.pi * cols / 310.0 + phase[1]))
                  + crng.normal(0, 0.12, (r1 - r0, size))).clip(-0.2, 0.95).astype(np.float32)
            count = crng.integers(0, 4, nd.shape).astype(np.float32)
            nd[count == 0] = np.nan
            red = (0.08 * (1 - nd) + 0.02).astype(np.float32)
            nir = (red * (1 + nd) / (1 - nd)).astype(np.float32)
            se = np.where(count > 0, 0.03 * 1.2533 / np.sqrt(np.maximum(count, 1)), np.nan).astype(np.float32)
            pr, pc = rws // patch, cols // patch
            main = patch_type[pr][:, pc]
            typed = patch_typed[pr][:, pc] & (crng.random(nd.shape) < 0.9)
            share = np.where(crng.random(nd.shape) < 0.75, 1.0, crng.uniform(0.05, 1.0, nd.shape))
            two = typed & (crng.random(nd.shape) < mixed)
            frac = np.zeros((len(TYPES), r1 - r0, size), np.float32)
            for t in range(len(TYPES)):
                frac[t] = np.where(typed & (main == t), np.where(two, share * 0.6, share), 0.0)
                frac[t] += np.where(two & ((main + 1) % len(TYPES) == t), share * 0.4, 0.0)
            outs["fractions"].write(frac, r0)
            outs["ndvi"].write(nd[None], r0)
            outs["ndvi_se"].write(se[None], r0)
            outs["composite"].write(np.stack([red, nir, count]), r0)
    finally:
        for w in writers.values():
            w.__exit__(None, None, None)


def floor(inputs: list[Path], outputs: list[Path], dest: Path, compress: str, strip_rows: int = 512) -> dict:
    """Read every band of ``inputs`` and write ``outputs`` again (same bands, dtype, codec), strip by strip."""
    from rasterio.windows import Window

    from greensink import io as gio

    dest.mkdir(parents=True, exist_ok=True)
    grid = gio.read_grid(inputs[0])
    t0, c0 = time.perf_counter(), time.process_time()
    untimed = untimed_cpu = 0.0
    writers = []
    for p in outputs:
        with gio.open_raster(p) as src:
            dtype, count, nodata = src.dtypes[0], src.count, src.nodata
        writers.append((p, gio.raster_writer(dest / p.name, grid, count, dtype=dtype, band_names=gio.band_names(p),
                                             compress=compress, nodata=nodata)))
    opened = [(p, w.__enter__()) for p, w in writers]
    try:
        for r in range(0, grid.height, strip_rows):
            win = Window(0, r, grid.width, min(strip_rows, grid.height - r))
            for p in inputs:
                gio.read_raster(p, window=win)
            for p, out in opened:
                u0, v0 = time.perf_counter(), time.process_time()
                block = gio.read_raster(p, window=win)
                untimed += time.perf_counter() - u0
                untimed_cpu += time.process_time() - v0
                out.write(block if block.ndim == 3 else block[None], r)
    finally:
        for _, w in writers:
            w.__exit__(None, None, None)
    return {"wall_s": time.perf_counter() - t0 - untimed, "cpu_s": time.process_time() - c0 - untimed_cpu,
            "output_read_s": untimed}


def scene_floor(scene_files: list[dict], grid, outputs: list[Path], dest: Path, compress: str,
                strip_rows: int = 512) -> dict:
    """The floor of ingest masking and compositing: every band file of the scenes (red and NIR at the grid's
    10 m, the quality band at its own 20 m) read at its own resolution, strip by strip over the same rows, as
    stored (no calibration, masking nor resampling), and ``outputs`` written again as :func:`floor` does
    (a .json output is read and written again)."""
    import rasterio
    from rasterio.windows import Window

    from greensink import io as gio

    dest.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    untimed = untimed_cpu = 0.0
    srcs = [rasterio.open(f) for sc in scene_files for f in sc.values()]
    writers = []
    for q in outputs:
        if q.suffix == ".json":
            continue
        with gio.open_raster(q) as src:
            dtype, count, nodata = src.dtypes[0], src.count, src.nodata
        writers.append((q, gio.raster_writer(dest / q.name, grid, count, dtype=dtype, band_names=gio.band_names(q),
                                             compress=compress, nodata=nodata)))
    opened = [(q, w.__enter__()) for q, w in writers]
    try:
        for r in range(0, grid.height, strip_rows):
            h = min(strip_rows, grid.height - r)
            for src in srcs:
                f = src.height / grid.height  # 0.5 for the 20 m quality band
                r0, r1 = int(r * f), min(src.height, int(np.ceil((r + h) * f)))
                src.read(1, window=Window(0, r0, src.width, r1 - r0))
            for q, out in opened:
                u0, v0 = time.perf_counter(), time.process_time()
                block = gio.read_raster(q, window=Window(0, r, grid.width, h))
                untimed += time.perf_counter() - u0
                untimed_cpu += time.process_time() - v0
                out.write(block if block.ndim == 3 else block[None], r)
    finally:
        for _, w in writers:
            w.__exit__(None, None, None)
        for src in srcs:
            src.close()
    for q in outputs:
        if q.suffix == ".json":
            u0, v0 = time.perf_counter(), time.process_time()
            record = gio.read_json(q)
            untimed += time.perf_counter() - u0
            untimed_cpu += time.process_time() - v0
            gio.write_json(dest / q.name, record)
    return {"wall_s": time.perf_counter() - t0 - untimed, "cpu_s": time.process_time() - c0 - untimed_cpu,
            "output_read_s": untimed}


def make_scenes(work: Path, size: int, n_dates: int) -> tuple[list[dict], Path, Path, object]:
    """Sentinel-2 L2A-like scenes of ``benchmarks/composite_benchmark.py`` (B04, B08 uint16 at 10 m with the
    baseline-04.00 offset, SCL at 20 m with clouds, shadow and a swath edge), a scenes table (CSV) naming
    them and the grid (grid.json) they cover."""
    import composite_benchmark as cb
    from affine import Affine

    from greensink import io as gio
    from greensink.grid import Grid

    folder = work / "scenes"
    folder.mkdir(parents=True, exist_ok=True)
    files = [cb.generate_date(folder, size, d) for d in range(n_dates)]
    rows = ["scene_id,datetime,sensor,red,nir,scl,processing_baseline"]
    for d, f in enumerate(files):
        rows.append(f"S2_{d},{cb.DATES[d]}T02:30:00Z,sentinel2-l2a,{f['B04']},{f['B08']},{f['SCL']},04.00")
    table = folder / "scenes.csv"
    table.write_text("\n".join(rows) + "\n")
    grid = Grid(cb.CRS, Affine(cb.PIXEL_M, 0.0, cb.X_LEFT, 0.0, -cb.PIXEL_M, cb.Y_TOP), width=size, height=size)
    grid_json = gio.write_json(work / "scene_grid.json", grid.to_dict())
    return files, table, Path(grid_json), grid


CHANGE_RASTERS = ("fractions0", "fractions1", "classes0", "classes1", "ndvi_se0", "ndvi_se1")


def change_inputs(run: Path, y0: int, y1: int) -> tuple[dict, dict, dict]:
    """The inputs of rule change (workflow/rules/change.smk) in a finished run's folder ``run``, the keyword
    arguments of :func:`greensink.change.run_change` its config gives (read from the files: zone levels from
    results/zones, types from the fractions' band names, predictors from the rasters present, uncertainty
    defaults), and the outputs in ``run``/bench_change."""
    from greensink import io as gio

    res = run / "results"
    levels = [lv for lv in ("city", "district", "block", "parcel", "zone") if (res / "zones" / f"{lv}.gpkg").exists()]
    levels += sorted(q.stem for q in (res / "zones").glob("*.gpkg") if q.stem not in levels)
    fractions = res / "types" / "fractions.tif"
    types = gio.band_names(fractions)
    predictors = [q for q in ("ndvi", "fvc", "canopy", "height") if (res / str(y0) / f"{q}.tif").exists()
                  and (res / str(y1) / f"{q}.tif").exists()]
    inp = {"zones": [str(res / "zones" / f"{lv}.gpkg") for lv in levels],
           "coverage": [str(res / "zones" / f"{lv}_coverage.npz") for lv in levels],
           "grid": str(res / "zones" / "grid.json"), "fractions0": str(fractions), "fractions1": str(fractions),
           "predictors0": [str(res / str(y0) / f"{q}.tif") for q in predictors],
           "predictors1": [str(res / str(y1) / f"{q}.tif") for q in predictors],
           "classes0": str(res / str(y0) / "vegetation_class.tif"), "classes1": str(res / str(y1) / "vegetation_class.tif"),
           "ndvi_se0": str(res / str(y0) / "ndvi_se.tif"), "ndvi_se1": str(res / str(y1) / "ndvi_se.tif"),
           "models0": str(res / str(y0) / "model" / "models.json"), "models1": str(res / str(y1) / "model" / "models.json"),
           "tables0": [str(res / str(y0) / "zones" / f"{lv}.indicators.parquet") for lv in levels],
           "tables1": [str(res / str(y1) / "zones" / f"{lv}.indicators.parquet") for lv in levels]}
    comp = res / "change" / f"{y0}_{y1}" / "comparability.json"
    if comp.exists():
        inp["comparability"] = str(comp)
    out = change_outputs(run / "bench_change", levels)
    kwargs = {"y0": y0, "y1": y1, "levels": levels, "types": types, "predictors": predictors,
              "typed_land": (res / "types" / "greenspace.gpkg").exists(), "seed": 42,
              "uncertainty": {"plot_error_pct": 10, "plot_error_year_correlation": 0.81}}  # config/config.yaml's
    return inp, out, kwargs


def change_outputs(dest: Path, levels) -> dict:
    """Rule change's outputs in the folder ``dest``."""
    return {"sink": str(dest / "sink.tif"), "zones": [str(dest / "zones" / f"{lv}.gpkg") for lv in levels],
            "attribution": str(dest / "attribution.tif"), "lost_patches": str(dest / "lost_patches.gpkg"),
            "uncertainty": str(dest / "uncertainty.json")}


def change_floor(inp: dict, out: dict, dest: Path, compress: str, strip_rows: int = 512) -> dict:
    """The floor of rule change: every input read (rasters strip by strip with greensink.io.read_raster, the
    coverage matrices, zone layers, zone tables and models whole) and every output written again with the same
    writers and codec (rasters strip by strip, tables by greensink.io.write_table with their CSV and Parquet
    twins); the output values are read back untimed."""
    from rasterio.windows import Window

    from greensink import io as gio

    dest.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    untimed = untimed_cpu = 0.0
    rasters = [inp[k] for k in CHANGE_RASTERS] + list(inp["predictors0"]) + list(inp["predictors1"])
    grid = gio.read_grid(inp["fractions0"])
    for path in (*inp["coverage"],):
        gio.read_sparse(path)
    for path in inp["zones"]:
        gio.read_vector(path)
    for path in (*inp["tables0"], *inp["tables1"]):
        gio.read_vector(path)
    for path in (inp["models0"], inp["models1"], *([inp["comparability"]] if "comparability" in inp else [])):
        gio.read_json(path)
    outs = [Path(out["sink"]), Path(out["attribution"])]
    writers = []
    for q in outs:
        with gio.open_raster(q) as src:
            dtype, count, nodata = src.dtypes[0], src.count, src.nodata
        writers.append((q, gio.raster_writer(dest / q.name, grid, count, dtype=dtype, band_names=gio.band_names(q),
                                             compress=compress, nodata=nodata)))
    opened = [(q, w.__enter__()) for q, w in writers]
    try:
        for r in range(0, grid.height, strip_rows):
            win = Window(0, r, grid.width, min(strip_rows, grid.height - r))
            for path in rasters:
                gio.read_raster(path, window=win)
            for q, w in opened:
                u0, v0 = time.perf_counter(), time.process_time()
                block = gio.read_raster(q, window=win)
                untimed += time.perf_counter() - u0
                untimed_cpu += time.process_time() - v0
                w.write(block if block.ndim == 3 else block[None], r)
    finally:
        for _, w in writers:
            w.__exit__(None, None, None)
    (dest / "zones").mkdir(exist_ok=True)
    for path in out["zones"]:
        u0, v0 = time.perf_counter(), time.process_time()
        table = gio.read_vector(path)
        untimed += time.perf_counter() - u0
        untimed_cpu += time.process_time() - v0
        gio.write_table(dest / "zones" / Path(path).name, table, layer=Path(path).stem, parquet=True)
    u0, v0 = time.perf_counter(), time.process_time()
    patches = gio.read_vector(out["lost_patches"])
    record = gio.read_json(out["uncertainty"])
    untimed += time.perf_counter() - u0
    untimed_cpu += time.process_time() - v0
    gio.write_table(dest / "lost_patches.gpkg", patches, layer="lost_patches", geometry_type="Polygon")
    gio.write_json(dest / "uncertainty.json", record)
    return {"wall_s": time.perf_counter() - t0 - untimed, "cpu_s": time.process_time() - c0 - untimed_cpu,
            "output_read_s": untimed}


def usage(before: dict | None = None) -> dict:
    """The process's user and system CPU time (s) and minor page faults (``getrusage``), or their growth since
    ``before``: a fresh process's stage pays its fresh pages as system time (benchmarks/README.md)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    now = {"user_s": r.ru_utime, "sys_s": r.ru_stime, "minflt": r.ru_minflt}
    return now if before is None else {k: now[k] - before[k] for k in now}


def timed(fn, *args, **kwargs) -> tuple[dict, object]:
    """({wall_s, cpu_s, peak_growth_mib}, result) of ``fn(*args, **kwargs)``; CPU time is the process's (all threads)."""
    before = peak_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "peak_growth_mib": max(0.0, peak_mib() - before)}, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=2000, help="grid side, pixels (default 2000)")
    ap.add_argument("--mixed", type=float, default=0.02, help="share of typed pixels shared by two types")
    ap.add_argument("--compress", default="zstd")
    ap.add_argument("--no-exact", action="store_true", help="skip the exact carbon path")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--dates", type=int, default=3, help="scenes of the ingest and composite stages (at most 6)")
    ap.add_argument("--change-run", type=Path, default=None,
                    help="a finished workflow run's folder (with results/change/Y0_Y1): its change rule is timed on a "
                         "copy of its inputs (default: this checkout's results/ if it holds a change pair)")
    ap.add_argument("--no-change", action="store_true", help="skip the change stage")
    ap.add_argument("--change-draws", default="both", choices=["exact", "analytic", "both"],
                    help="change.draws of the timed change rule (default both: exact, then analytic, in the same run "
                         "against the same floor)")
    ap.add_argument("--stages", default="ingest,composite,vegetation,carbon,change",
                    help="comma-separated stages to run (default all): ingest, composite, vegetation, carbon, change; "
                         "e.g. --stages carbon")
    a = ap.parse_args()
    stages = {v.strip() for v in a.stages.split(",") if v.strip()}
    unknown = stages - {"ingest", "composite", "vegetation", "carbon", "change"}
    if unknown:
        ap.error(f"unknown stage(s) {sorted(unknown)}: choose from ingest, composite, vegetation, carbon, change")
    from greensink.carbon import run_carbon
    from greensink.composite import run_composite
    from greensink.ingest.run import run_ingest
    from greensink.vegetation import PRODUCTS, run_vegetation

    work = a.workdir or Path(tempfile.mkdtemp(prefix="raster_floor_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_summary()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    generate(work, a.size, a.mixed)
    print(f"generated {a.size} × {a.size} px in {time.perf_counter() - t0:.1f} s ({work})", flush=True)
    lines = []

    def report(stage: str, m: dict, fl: dict, note: str = "") -> None:
        lines.append({"stage": stage, **m, "floor_s": fl["wall_s"], "floor_cpu_s": fl["cpu_s"],
                      "ratio": m["wall_s"] / fl["wall_s"], "cpu_ratio": m["cpu_s"] / fl["cpu_s"]})
        print(f"{stage}: {m['wall_s']:.2f} s (CPU {m['cpu_s']:.2f} s){note}, floor {fl['wall_s']:.2f} s (CPU "
              f"{fl['cpu_s']:.2f} s), CPU ratio {m['cpu_s'] / fl['cpu_s']:.2f}, "
              f"stage/floor ratio: {m['wall_s'] / fl['wall_s']:.2f}", flush=True)

    if stages & {"ingest", "composite"}:
        t0 = time.perf_counter()
        scene_files, table, grid_json, scene_grid = make_scenes(work, a.size, a.dates)
        print(f"generated {a.dates} Sentinel-2-like scenes in {time.perf_counter() - t0:.1f} s", flush=True)
        season = {"start": "04-01", "end": "10-31"}
        ingest_out = work / "ingest" / "scenes.json"
        m, record = timed(run_ingest, grid_json, ingest_out, year=2023, source="files", season=season,
                          block_rows=512, table=table)
        if "ingest" in stages:
            fl = scene_floor(scene_files, scene_grid, [ingest_out], work / "ingest_floor", a.compress)
            report("ingest masking", m, fl, f" ({record['summary']['masked_pct']:.1f} % of observations masked)")
    if "composite" in stages:
        comp_out = work / "composite_s2.tif"
        m, _ = timed(run_composite, ingest_out, grid_json, comp_out, method="median", block_rows=512,
                     compress=a.compress)
        fl = scene_floor(scene_files, scene_grid, [comp_out], work / "composite_floor", a.compress)
        report("composite", m, fl)

    if "vegetation" in stages:
        veg_out = {k: work / "veg" / f"{k}.tif" for k in PRODUCTS} | {"stats": work / "veg" / "vegetation.json"}
        m, _ = timed(run_vegetation, work / "composite.tif", veg_out, settings=VEG_SETTINGS, compress=a.compress)
        fl = floor([work / "composite.tif"], [veg_out[k] for k in PRODUCTS], work / "veg_floor", a.compress)
        report("vegetation", m, fl)

    models = work / "models.json"
    inputs = [work / "fractions.tif", work / "ndvi.tif", work / "ndvi_se.tif"]
    carbon = {}
    for method in ("tabulated", *(() if a.no_exact else ("exact",))) if "carbon" in stages else ():
        out = work / f"carbon_{method}.tif"
        u0 = usage()
        m, stats = timed(run_carbon, models, {"ndvi": work / "ndvi.tif"}, work / "fractions.tif",
                         work / "ndvi_se.tif", out, work / f"carbon_{method}.json", types=TYPES, year=2024,
                         seed=1, uncertainty={"pixel_interval": method}, compress=a.compress)
        carbon[method] = (m | usage(u0), out, stats)
    if carbon:
        u0 = usage()
        fl = floor(inputs, [carbon["tabulated"][1]], work / "carbon_floor", a.compress)
        fu = usage(u0)
        typed = carbon["tabulated"][2]["typed_pixels"]
        for method, (m, _, _) in carbon.items():  # user/system time and page faults: where a fresh process's time goes
            report(f"carbon ({method})", m, fl, f" for {typed / 1e6:.2f} M typed px (user {m['user_s']:.2f} s, system "
                   f"{m['sys_s']:.2f} s, {m['minflt']} page faults; floor's {fu['user_s']:.2f} s, {fu['sys_s']:.2f} s, "
                   f"{fu['minflt']})")
    if "exact" in carbon:
        from greensink import io as gio

        ex = gio.read_raster(carbon["exact"][1]).astype(np.float64)
        tb = gio.read_raster(carbon["tabulated"][1]).astype(np.float64)
        ok = np.isfinite(ex[1])
        width = (ex[2] - ex[1])[ok]
        print(f"carbon tabulated vs exact: estimate band identical: {np.array_equal(ex[0], tb[0], equal_nan=True)}; "
              f"mean band difference {np.mean(tb[1][ok] - ex[1][ok]):+.4f} / {np.mean(tb[2][ok] - ex[2][ok]):+.4f} t C/ha "
              f"(lower / upper; mean width {width.mean():.3f}; the exact band is a 200-draw Monte Carlo sample)")
    run = a.change_run or (ROOT if any((ROOT / "results" / "change").glob("*_*/sink.tif")) else None)
    if a.no_change or "change" not in stages or run is None:
        print("change: skipped (no finished run with results/change/Y0_Y1: pass --change-run)", flush=True)
    else:
        from greensink.change import run_change

        pair = sorted(run.joinpath("results", "change").glob("*_*/sink.tif"))[0].parent.name
        y0, y1 = (int(v) for v in pair.split("_"))
        copy = work / "change_run"
        for sub in ("zones", "types", str(y0), str(y1), f"change/{pair}"):  # a copy: the run may be rewritten meanwhile
            src = run / "results" / sub
            if src.exists():
                shutil.copytree(src, copy / "results" / sub, dirs_exist_ok=True)
        inp, out, kwargs = change_inputs(copy, y0, y1)
        draws = ["exact", "analytic"] if a.change_draws == "both" else [a.change_draws]
        timings, outs = {}, {}
        for mode in draws:  # analytic's outputs in a folder of their own (bench_change/analytic)
            outs[mode] = out if mode == "exact" else change_outputs(Path(out["sink"]).parent / mode, kwargs["levels"])
            timings[mode], _ = timed(run_change, inp, outs[mode], compress=a.compress, draws=mode, **kwargs)
        fl = change_floor(inp, outs[draws[0]], work / "change_floor", a.compress)  # the outputs of a timed run
        grid = json.loads(Path(inp["grid"]).read_text())
        for mode, m in timings.items():
            report("change" if mode == "exact" else "change (draws: analytic)", m, fl,
                   f" ({pair}, {grid['width']} × {grid['height']} px, {len(kwargs['levels'])} zone levels, "
                   f"change.draws {mode}, from {run})")
    print(f"peak memory (VmHWM) of the run: {peak_mib():.0f} MiB")
    print(json.dumps({"size": a.size, "load_average_end": os.getloadavg()[0], "stages": lines}))


if __name__ == "__main__":
    main()
