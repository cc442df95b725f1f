#!/usr/bin/env python
"""Benchmark: peak memory and time of a scenario's tiled jobs against its whole-grid jobs (issue 14 items 2 and 7).

    python benchmarks/tile_scenario.py                          # 2048 × 2048 px grid, tiles of 1024 px
    python benchmarks/tile_scenario.py --size 1024 --tile 512   # quicker
    python benchmarks/tile_scenario.py --workdir /tmp/gts --keep
    python benchmarks/tile_scenario.py --size 4096 --stages scenario_inputs,scenario_plan   # the plan's records only

What it does (figures in benchmarks/README.md, section "tile_scenario.py"):

1. The baseline year as tile_memory.py makes it (its ``prepare``: carbon_benchmark.py's fixed-seed fractions of 5
   types, NDVI with cloud holes, models with 200 bootstrap draws, a composite), then its untiled vegetation and
   ndvi_se jobs (tile_memory.py's children), and typed green-space polygons (200 rectangles of 20-200 px sides, one
   type each, overlapping) and four change layers: 30 new parks at a planned density, 20 conversions T1 → T2,
   20 constructions and 40 street-tree plantings (rectangles and rotated rectangles anywhere, crossing tile edges).
   None of this is measured.
2. Runs each job as its rule runs it (the package's runner), each in its own child process so that its peak
   resident memory (``VmHWM``) is the job's own: the untiled rules scenario_inputs and scenario_carbon over the
   whole grid; then the tiled rules scenario_plan, scenario_inputs_tile for every tile, scenario_inputs_mosaic,
   scenario_carbon_tile for every tile and scenario_carbon_mosaic.
3. Checks that every mosaic, inputs.json, models.json and carbon.json equal the untiled files byte for byte, or for a
   raster of 3 or more bands on a grid with 2+ overview levels its full resolution bit for bit (the untiled rule
   writes it with io.write_raster, the mosaic with io.raster_writer, whose overviews of such rasters GDAL averages in
   another order) (``outputs: PASS``, exit status 1 on FAIL) and prints per rule the peak memory (the largest over its tile jobs)
   and the wall / CPU time (median over tiles).
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
from carbon_benchmark import CRS, SEED  # benchmarks/carbon_benchmark.py
from tile_memory import VEG_FILES, VEG_SETTINGS, prepare  # benchmarks/tile_memory.py

YEAR = 2024
KINDS = (  # (config entry without path, number of polygons)
    ({"kind": "greenspace", "type": "T2", "state": {"ndvi": 0.7, "density_t_ha": 35}}, 30),
    ({"kind": "conversion", "from": "T1", "to": "T2"}, 20),
    ({"kind": "construction"}, 20),
    ({"kind": "planting", "canopy_share_pct": 10, "type": "T3"}, 40),
)
RASTERS = ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "changes")


def prepare_scenario(workdir: Path) -> None:
    """Green-space polygons and change layers on the grid of workdir/grid.json (step 1), in workdir/scen."""
    import geopandas as gpd
    import shapely

    from greensink.grid import Grid

    scen = workdir / "scen"
    if (scen / "entry.json").exists():
        return
    scen.mkdir(parents=True, exist_ok=True)
    grid = Grid.read(workdir / "grid.json")
    x0, y1, res = grid.transform.c, grid.transform.f, grid.resolution_m
    rng = np.random.default_rng([SEED, 20])

    def rects(n: int, lo: float, hi: float) -> list:
        out = []
        for _ in range(n):
            w, h = rng.uniform(lo, hi, 2)
            c, r = rng.uniform(0, grid.width - w), rng.uniform(0, grid.height - h)
            g = shapely.box(x0 + c * res, y1 - (r + h) * res, x0 + (c + w) * res, y1 - r * res)
            out.append(shapely.affinity.rotate(g, rng.uniform(0, 45)) if rng.uniform() < 0.5 else g)
        return out

    types = [f"T{k + 1}" for k in range(5)]
    parks = rects(200, 20, 200)
    gpd.GeoDataFrame({"type": [types[k % 5] for k in range(len(parks))]}, geometry=parks, crs=CRS).to_file(
        scen / "greenspace.gpkg", driver="GPKG")
    changes = []
    for k, (entry, n) in enumerate(KINDS):
        path = scen / f"change{k + 1}.gpkg"
        gpd.GeoDataFrame({"id": range(n)}, geometry=rects(n, 5, 80), crs=CRS).to_file(path, driver="GPKG")
        changes.append({**entry, "path": str(path)})
    (scen / "vegetation.json").write_text(json.dumps({"ndvi_soil": 0.05, "ndvi_full": 0.85}))
    (scen / "entry.json").write_text(json.dumps({"name": "bench", "changes": changes}))


def child(stage: str, workdir: Path, tile: str | None, size_px: int) -> dict:
    from greensink import io
    from greensink.grid import Grid
    from greensink.scenario.run import (
        run_scenario_carbon,
        run_scenario_carbon_mosaic,
        run_scenario_inputs,
        run_scenario_inputs_mosaic,
        run_scenario_inputs_tile,
        run_scenario_plan,
    )

    w, scen = workdir, workdir / "scen"
    grid_json = w / "grid.json"
    ids = [t.id for t in Grid.read(grid_json).tiles(size_px)]
    entry = json.loads((scen / "entry.json").read_text())
    changes = [c["path"] for c in entry["changes"]]
    models = w / "inputs" / "models.json"
    types = list(io.read_json(models)["types"])
    base = {k: w / "whole" / VEG_FILES[k] for k in ("ndvi", "fvc", "canopy", "height", "vegetation", "classes")}
    base |= {"fractions": w / "inputs" / "fractions.tif", "greenspace": scen / "greenspace.gpkg"}
    rasters = {k: v for k, v in base.items() if k != "greenspace"}
    veg = {k: VEG_SETTINGS[k] for k in ("ndvi_vegetation", "ndvi_shrub", "ndvi_tree")}
    kw = {"scenario": entry, "years": [YEAR], "types": types, "type_column": "type"}
    out_dir = {"whole": w / "scen_whole", "tiled": w / "scen_tiled"}
    for d in out_dir.values():
        d.mkdir(exist_ok=True)
    t_dir = out_dir["tiled"]
    tile_files = lambda t: {k: t_dir / f"{k}_{t}.tif" for k in RASTERS}  # noqa: E731
    s_types = types + ["T2_plan1"]
    ckw = {"types": s_types, "year": YEAR, "seed": 1, "uncertainty": {}}
    base_mib = vmhwm_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    if stage == "scenario_inputs":
        d = out_dir["whole"]
        run_scenario_inputs(changes, grid_json, base, scen / "vegetation.json", models,
                            {k: d / f"{k}.tif" for k in RASTERS} | {"greenspace": d / "greenspace.gpkg"},
                            d / "models.json", d / "inputs.json", typed_land=True, vegetation=veg, **kw)
    elif stage == "scenario_plan":
        run_scenario_plan(changes, grid_json, base, scen / "vegetation.json", models, t_dir / "greenspace.gpkg",
                          t_dir / "models.json", t_dir / "inputs.json", t_dir / "plan.json", typed_land=True,
                          vegetation=veg, **kw)
    elif stage == "scenario_inputs_tile":
        run_scenario_inputs_tile(grid_json, rasters, t_dir / "plan.json", tile_files(tile), tile_id=tile,
                                 size_px=size_px, **kw)
    elif stage == "scenario_inputs_mosaic":
        run_scenario_inputs_mosaic({k: [tile_files(t)[k] for t in ids] for k in RASTERS}, grid_json,
                                   {k: t_dir / f"{k}.tif" for k in RASTERS}, size_px=size_px)
    elif stage in ("scenario_carbon", "scenario_carbon_tile"):
        d = out_dir["whole"] if stage == "scenario_carbon" else t_dir
        out = (d / "carbon.tif", d / "carbon.json") if tile is None else (d / f"carbon_{tile}.tif",
                                                                            d / f"carbon_{tile}.json")
        run_scenario_carbon(d / "models.json", {"ndvi": d / "ndvi.tif"}, d / "fractions.tif",
                            w / "whole" / "ndvi_se.tif", *out, tile_id=tile, size_px=size_px if tile else None, **ckw)
    elif stage == "scenario_carbon_mosaic":
        run_scenario_carbon_mosaic([t_dir / f"carbon_{t}.tif" for t in ids],
                                   [t_dir / f"carbon_{t}.json" for t in ids], grid_json, t_dir / "carbon.tif",
                                   t_dir / "carbon.json", size_px=size_px)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "base_mib": base_mib,
            "peak_mib": vmhwm_mib()}


def full_resolution_equal(a: Path, b: Path) -> bool:
    """Whether two rasters hold the same bits at full resolution, with the same bands, tags and profile."""
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        same_meta = (x.descriptions == y.descriptions and x.tags() == y.tags() and x.crs == y.crs
                     and x.transform == y.transform and x.dtypes == y.dtypes and x.overviews(1) == y.overviews(1))
        return same_meta and x.read().tobytes() == y.read().tobytes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048, help="grid side, pixels")
    ap.add_argument("--tile", type=int, default=1024, help="tiles.size_px")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--stages", default=None,
                    help="comma-separated stages to run (default: all); only the files both sides wrote are compared")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tile-id", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="greensink_scen_tiles_"))
    if a.child:
        print(RESULT_TAG + json.dumps(child(a.child, workdir, a.tile_id, a.tile)), flush=True)
        return 0
    from greensink.grid import Grid

    print(f"machine: {machine_summary()}")
    print(f"grid {a.size} x {a.size} px ({a.size**2 / 1e6:.1f} Mpx), tiles of {a.tile} px", flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    prepare(workdir, a.size)
    (workdir / "whole").mkdir(exist_ok=True)
    (workdir / "tiled").mkdir(exist_ok=True)
    here = Path(__file__).resolve().parent
    base = [sys.executable, str(here / "tile_memory.py"), "--workdir", str(workdir), "--size", str(a.size),
            "--tile", str(a.tile)]
    for stage, name in (("vegetation", "ndvi.tif"), ("ndvi_se", "ndvi_se.tif")):  # the baseline year, not measured
        if not (workdir / "whole" / name).exists():
            run_child([*base, "--child", stage], stage)
    prepare_scenario(workdir)
    tiles = [t.id for t in Grid.read(workdir / "grid.json").tiles(a.tile)]
    me = [sys.executable, __file__, "--workdir", str(workdir), "--size", str(a.size), "--tile", str(a.tile)]
    plan = [("scenario_inputs", None), ("scenario_carbon", None), ("scenario_plan", None)]
    plan += [("scenario_inputs_tile", t) for t in tiles] + [("scenario_inputs_mosaic", None)]
    plan += [("scenario_carbon_tile", t) for t in tiles] + [("scenario_carbon_mosaic", None)]
    if a.stages:
        plan = [(stage, tile) for stage, tile in plan if stage in a.stages.split(",")]
    results: dict[str, list[dict]] = {}
    for stage, tile in plan:
        extra = ["--tile-id", tile] if tile else []
        results.setdefault(stage, []).append(run_child([*me, "--child", stage, *extra], f"{stage} {tile or ''}"))
    ok = True
    for name in [f"{k}.tif" for k in RASTERS] + ["carbon.tif", "carbon.json", "inputs.json", "models.json"]:
        x, y = workdir / "scen_whole" / name, workdir / "scen_tiled" / name
        if a.stages and not (x.exists() and y.exists()):
            continue
        if x.read_bytes() == y.read_bytes():
            continue
        full = name.endswith(".tif") and full_resolution_equal(x, y)
        ok &= full
        print(f"{'overviews differ' if full else 'DIFFERS'}: {name}" + (
            " (full resolution bit for bit; GDAL averages the overviews of a 3+ band float raster otherwise from "
            "io.write_raster's pixel-interleaved source than from io.raster_writer's band-interleaved stage)"
            if full else ""))
    if a.stages and "scenario_inputs" not in a.stages.split(","):
        changed = float("nan")
    else:
        changed = float(np.nansum(np.asarray(__import__("greensink.io", fromlist=["read_raster"]).read_raster(
            workdir / "scen_whole" / "changes.tif", bands=1), dtype=np.float64)))
    print(f"changed: {changed:.0f} px of {a.size**2}")
    print(f"{'rule':<24} {'jobs':>4} {'peak MiB':>9} {'wall s':>8} {'CPU s':>7}")
    for stage, runs in results.items():
        peak = max(r["peak_mib"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        print(f"{stage:<24} {len(runs):>4} {peak:>9.0f} {wall:>8.2f} {cpu:>7.2f}")
    print(f"outputs: {'PASS' if ok else 'FAIL'} (every mosaic and record byte-identical to the untiled file, or its "
          "full resolution where only the overviews differ)")
    if not a.keep and a.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
