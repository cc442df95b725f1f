#!/usr/bin/env python
"""Benchmark: per-pixel stages against their read/write floor, on the same generated data in the same run.

    python benchmarks/raster_floor.py                    # 2000 × 2000 px (~1–2 min on 2 cores)
    python benchmarks/raster_floor.py --size 4000        # the figures in benchmarks/README.md
    python benchmarks/raster_floor.py --size 1000 --no-exact   # skip the (slow) exact carbon path

For each stage the script runs the package's rule runner on generated inputs, then its **floor**: the
same input rasters read strip by strip (every band, ``greensink.io.read_raster``) and the stage's own
output rasters written again through ``greensink.io.raster_writer`` with the same band count, dtype,
band names and codec (``--compress``), no computation. The floor writes the stage's real output values
(read back strip by strip from the stage's files; that read is timed separately and not counted), so
the encoder sees the same data. Each stage prints one line ending in ``stage/floor ratio: X``.

Stages: ``vegetation`` (``greensink.vegetation.run_vegetation`` of a 3-band composite: red, nir,
valid_obs_count) and ``carbon`` (``greensink.carbon.run_carbon`` with every error source on: residual
field and nugget, NDVI error, edges), once with ``uncertainty.pixel_interval: tabulated`` and once with
``exact`` (``--no-exact`` skips it). Peak resident memory (VmHWM) of the whole process is printed at the
end and per stage as the growth of VmHWM, which only shows a stage that raised the peak.

Generated data (fixed seed, 10 m pixels, EPSG:32651, tiled 512 × 512, ZSTD level 1, predictor 2):
fractions of 5 types in 40 × 40 px patches (about 35 % of pixels typed, a quarter of those cut by an
edge, ``--mixed`` of them shared by two types; the demo city has 0.5 %), NDVI and its standard error
(with cloud holes), models.json with a linear, power, exponential, logarithmic and linear curve of 200
bootstrap draws each (benchmarks/carbon_benchmark.py) and a residual field (nugget 0.02, partial sill
0.015, range 300 m). Ingest masking, composite and change are not measured here yet (see README).
"""

from __future__ import annotations

import argparse
import json
import os
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
    t0 = time.perf_counter()
    untimed = 0.0
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
                u0 = time.perf_counter()
                block = gio.read_raster(p, window=win)
                untimed += time.perf_counter() - u0
                out.write(block if block.ndim == 3 else block[None], r)
    finally:
        for _, w in writers:
            w.__exit__(None, None, None)
    return {"wall_s": time.perf_counter() - t0 - untimed, "output_read_s": untimed}


def timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    before = peak_mib()
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, peak_mib() - before, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=2000, help="grid side, pixels (default 2000)")
    ap.add_argument("--mixed", type=float, default=0.02, help="share of typed pixels shared by two types")
    ap.add_argument("--compress", default="zstd")
    ap.add_argument("--no-exact", action="store_true", help="skip the exact carbon path")
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    from greensink.carbon import run_carbon
    from greensink.vegetation import PRODUCTS, run_vegetation

    work = a.workdir or Path(tempfile.mkdtemp(prefix="raster_floor_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_summary()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    generate(work, a.size, a.mixed)
    print(f"generated {a.size} × {a.size} px in {time.perf_counter() - t0:.1f} s ({work})", flush=True)
    lines = []

    veg_out = {k: work / "veg" / f"{k}.tif" for k in PRODUCTS} | {"stats": work / "veg" / "vegetation.json"}
    wall, mem, _ = timed(run_vegetation, work / "composite.tif", veg_out, settings=VEG_SETTINGS, compress=a.compress)
    fl = floor([work / "composite.tif"], [veg_out[k] for k in PRODUCTS], work / "veg_floor", a.compress)
    lines.append(("vegetation", wall, mem, fl["wall_s"]))
    print(f"vegetation: {wall:.2f} s, floor {fl['wall_s']:.2f} s, stage/floor ratio: {wall / fl['wall_s']:.2f}",
          flush=True)

    models = work / "models.json"
    inputs = [work / "fractions.tif", work / "ndvi.tif", work / "ndvi_se.tif"]
    carbon = {}
    for method in ("tabulated", *(() if a.no_exact else ("exact",))):
        out = work / f"carbon_{method}.tif"
        wall, mem, stats = timed(run_carbon, models, {"ndvi": work / "ndvi.tif"}, work / "fractions.tif",
                                 work / "ndvi_se.tif", out, work / f"carbon_{method}.json", types=TYPES, year=2024,
                                 seed=1, uncertainty={"pixel_interval": method}, compress=a.compress)
        carbon[method] = (wall, mem, out, stats)
    fl = floor(inputs, [carbon["tabulated"][2]], work / "carbon_floor", a.compress)
    typed = carbon["tabulated"][3]["typed_pixels"]
    for method, (wall, mem, _, _) in carbon.items():
        lines.append((f"carbon ({method})", wall, mem, fl["wall_s"]))
        print(f"carbon ({method}): {wall:.2f} s for {typed / 1e6:.2f} M typed px, floor {fl['wall_s']:.2f} s, "
              f"stage/floor ratio: {wall / fl['wall_s']:.2f}", flush=True)
    if "exact" in carbon:
        from greensink import io as gio

        ex = gio.read_raster(carbon["exact"][2]).astype(np.float64)
        tb = gio.read_raster(carbon["tabulated"][2]).astype(np.float64)
        ok = np.isfinite(ex[1])
        width = (ex[2] - ex[1])[ok]
        print(f"carbon tabulated vs exact: estimate band identical: {np.array_equal(ex[0], tb[0], equal_nan=True)}; "
              f"mean band difference {np.mean(tb[1][ok] - ex[1][ok]):+.4f} / {np.mean(tb[2][ok] - ex[2][ok]):+.4f} t C/ha "
              f"(lower / upper; mean width {width.mean():.3f}; the exact band is a 200-draw Monte Carlo sample)")
    print(f"peak memory (VmHWM) of the run: {peak_mib():.0f} MiB")
    print(json.dumps({"size": a.size, "stages": [{"stage": s, "wall_s": w, "peak_growth_mib": m, "floor_s": f,
                                                   "ratio": w / f} for s, w, m, f in lines]}))


if __name__ == "__main__":
    main()
