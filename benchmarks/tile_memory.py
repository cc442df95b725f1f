#!/usr/bin/env python
"""Benchmark: peak memory and time of a tiled per-pixel job against the whole-grid job (issue 14 items 2 and 4).

    python benchmarks/tile_memory.py                          # 4096 × 4096 px grid, tiles of 1024 px
    python benchmarks/tile_memory.py --size 2048 --tile 512   # quicker
    python benchmarks/tile_memory.py --workdir /tmp/gtm --keep

What it does (figures in benchmarks/README.md):

1. Generates, from carbon_benchmark.py's fixed seed, the carbon rule's inputs on a ``--size`` grid (fractions of
   5 types, NDVI with cloud holes, models with 200 bootstrap draws) and a composite whose red and NIR give that
   NDVI (valid_obs_count 3, 0 where NDVI is NaN).
2. Runs each job as the rules run it (the package's runner), each in its own child process so that its peak
   resident memory (``VmHWM``) is the job's own: the untiled rules vegetation, ndvi_se and carbon over the whole
   grid; then the tiled rules: vegetation_endmembers, vegetation_tile for every tile, vegetation_mosaic,
   ndvi_se_tile for every tile, ndvi_se_mosaic, carbon_tile for every tile, carbon_mosaic. Carbon uses the
   default uncertainty settings (tabulated interval; NDVI error from ndvi_se.tif).
3. Checks that every mosaic is byte-identical to the untiled file (``outputs: PASS``, exit status 1 on FAIL) and
   prints per rule the peak memory (the largest over its tile jobs) and the wall / CPU time (median over tiles).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import RESULT_TAG, machine_summary, run_child, vmhwm_mib  # benchmarks/_bench.py
from carbon_benchmark import SEED, make_models, write_inputs  # benchmarks/carbon_benchmark.py

VEG_SETTINGS = {"fvc_percentiles": [5, 95], "ndvi_soil": None, "ndvi_full": None, "ndvi_vegetation": 0.2,
                "ndvi_shrub": 0.35, "ndvi_tree": 0.5, "chm": None}
VEG_FILES = {"ndvi": "ndvi.tif", "fvc": "fvc.tif", "vegetation": "vegetation.tif", "canopy": "canopy.tif",
             "classes": "vegetation_class.tif", "height": "height.tif"}


def prepare(workdir: Path, size: int) -> None:
    """models.json, fractions.tif, ndvi.tif (carbon_benchmark.py) and composite.tif and grid.json from them."""
    import rasterio

    from greensink import io
    from greensink.grid import Grid

    if (workdir / "composite.tif").exists():
        print(f"reusing generated data in {workdir}", flush=True)
        return
    inputs = workdir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / "models.json").write_text(json.dumps(make_models(5, 200, SEED)))
    write_inputs(inputs, size, 5, SEED)
    grid = io.read_grid(inputs / "ndvi.tif")
    (workdir / "grid.json").write_text(json.dumps(grid.to_dict()))
    with io.raster_writer(workdir / "composite.tif", grid, 3, band_names=["red", "nir", "valid_obs_count"]) as out, \
            rasterio.open(inputs / "ndvi.tif") as src:
        for rows, _ in Grid.windows(grid, 512):
            nd = src.read(1, window=((rows.start, rows.stop), (0, grid.width))).astype(np.float64)
            red = np.full(nd.shape, 0.08)
            nir = red * (1 + nd) / (1 - nd)  # NDVI (nir − red)/(nir + red) = nd
            count = np.where(np.isfinite(nd), 3.0, 0.0)
            red[~np.isfinite(nd)] = np.nan
            out.write(np.stack([red, nir, count]).astype(np.float32), rows.start)


def child(stage: str, workdir: Path, tile: str | None, size_px: int) -> dict:
    from greensink import io
    from greensink.carbon import run_carbon, run_carbon_mosaic
    from greensink.grid import Grid
    from greensink.uncertainty.ndvi_se import run_ndvi_se, run_ndvi_se_mosaic, run_ndvi_se_tile
    from greensink.vegetation import (
        PRODUCTS,
        run_vegetation,
        run_vegetation_endmembers,
        run_vegetation_mosaic,
        run_vegetation_tile,
    )

    w = workdir
    comp, grid_json, ends = w / "composite.tif", w / "grid.json", w / "tiled" / "fvc_endmembers.json"
    ids = [t.id for t in Grid.read(grid_json).tiles(size_px)]
    tile_veg = lambda t: {k: w / "tiled" / f"{Path(n).stem}_{t}.tif" for k, n in VEG_FILES.items()}  # noqa: E731
    inputs = w / "inputs"
    models = inputs / "models.json"
    types = list(io.read_json(models)["types"])
    kw = {"types": types, "year": 2024, "seed": 1, "uncertainty": {}}
    base = vmhwm_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    if stage == "vegetation":
        run_vegetation(comp, {k: w / "whole" / n for k, n in VEG_FILES.items()} | {"stats": w / "whole/vegetation.json"},
                       settings=VEG_SETTINGS)
    elif stage == "ndvi_se":
        run_ndvi_se(comp, w / "whole" / "ndvi_se.tif", obs_sd=0.03)
    elif stage == "carbon":
        run_carbon(models, {"ndvi": w / "whole" / "ndvi.tif"}, inputs / "fractions.tif", w / "whole" / "ndvi_se.tif",
                   w / "whole" / "carbon.tif", w / "whole" / "carbon.json", **kw)
    elif stage == "vegetation_endmembers":
        run_vegetation_endmembers(comp, ends, settings=VEG_SETTINGS, size_px=size_px)
    elif stage == "vegetation_tile":
        run_vegetation_tile(comp, ends, tile_veg(tile), tile_id=tile, size_px=size_px, settings=VEG_SETTINGS)
    elif stage == "vegetation_mosaic":
        out = {k: w / "tiled" / n for k, n in VEG_FILES.items()} | {"stats": w / "tiled" / "vegetation.json"}
        run_vegetation_mosaic({k: [tile_veg(t)[k] for t in ids] for k in PRODUCTS}, ends, grid_json, out,
                              size_px=size_px, settings=VEG_SETTINGS)
    elif stage == "ndvi_se_tile":
        run_ndvi_se_tile(comp, w / "tiled" / f"ndvi_se_{tile}.tif", tile_id=tile, size_px=size_px, obs_sd=0.03)
    elif stage == "ndvi_se_mosaic":
        run_ndvi_se_mosaic([w / "tiled" / f"ndvi_se_{t}.tif" for t in ids], grid_json, w / "tiled" / "ndvi_se.tif",
                           size_px=size_px)
    elif stage == "carbon_tile":
        run_carbon(models, {"ndvi": w / "tiled" / "ndvi.tif"}, inputs / "fractions.tif", w / "tiled" / "ndvi_se.tif",
                   w / "tiled" / f"carbon_{tile}.tif", w / "tiled" / f"carbon_{tile}.json", tile_id=tile,
                   size_px=size_px, **kw)
    elif stage == "carbon_mosaic":
        run_carbon_mosaic([w / "tiled" / f"carbon_{t}.tif" for t in ids],
                          [w / "tiled" / f"carbon_{t}.json" for t in ids], grid_json, w / "tiled" / "carbon.tif",
                          w / "tiled" / "carbon.json", size_px=size_px)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "base_mib": base,
            "peak_mib": vmhwm_mib()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096, help="grid side, pixels")
    ap.add_argument("--tile", type=int, default=1024, help="tiles.size_px")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tile-id", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="greensink_tiles_"))
    if a.child:
        print(RESULT_TAG + json.dumps(child(a.child, workdir, a.tile_id, a.tile)), flush=True)
        return 0
    from greensink.grid import Grid

    print(f"machine: {machine_summary()}")
    print(f"grid {a.size} x {a.size} px ({a.size**2 / 1e6:.1f} Mpx), tiles of {a.tile} px", flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    prepare(workdir, a.size)
    for sub in ("whole", "tiled"):
        (workdir / sub).mkdir(exist_ok=True)
    tiles = [t.id for t in Grid.read(workdir / "grid.json").tiles(a.tile)]
    me = [sys.executable, __file__, "--workdir", str(workdir), "--size", str(a.size), "--tile", str(a.tile)]
    results: dict[str, list[dict]] = {}
    plan = [("vegetation", None), ("ndvi_se", None), ("carbon", None), ("vegetation_endmembers", None)]
    plan += [("vegetation_tile", t) for t in tiles] + [("vegetation_mosaic", None)]
    plan += [("ndvi_se_tile", t) for t in tiles] + [("ndvi_se_mosaic", None)]
    plan += [("carbon_tile", t) for t in tiles] + [("carbon_mosaic", None)]
    for stage, tile in plan:
        extra = ["--tile-id", tile] if tile else []
        results.setdefault(stage, []).append(run_child([*me, "--child", stage, *extra], f"{stage} {tile or ''}"))
    ok = True
    for name in [*VEG_FILES.values(), "ndvi_se.tif", "carbon.tif", "vegetation.json", "carbon.json"]:
        same = (workdir / "whole" / name).read_bytes() == (workdir / "tiled" / name).read_bytes()
        ok &= same
        if not same:
            print(f"DIFFERS: {name}")
    print(f"{'rule':<22} {'jobs':>4} {'peak MiB':>9} {'wall s':>8} {'CPU s':>7}")
    for stage, runs in results.items():
        peak = max(r["peak_mib"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        print(f"{stage:<22} {len(runs):>4} {peak:>9.0f} {wall:>8.2f} {cpu:>7.2f}")
    print(f"outputs: {'PASS' if ok else 'FAIL'} (every mosaic byte-identical to the untiled file)")
    if not a.keep and a.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
