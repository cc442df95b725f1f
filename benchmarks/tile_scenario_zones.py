#!/usr/bin/env python
"""Benchmark: peak memory and time of a scenario's tiled zone tables against the whole-grid rule (issue 14 items 2, 7).

    python benchmarks/tile_scenario_zones.py                          # 2048 × 2048 px grid, tiles of 1024 px
    python benchmarks/tile_scenario_zones.py --size 1024 --tile 512   # quicker
    python benchmarks/tile_scenario_zones.py --workdir /tmp/gtz --keep
    python benchmarks/tile_scenario_zones.py --workdir /tmp/gtz --keep --stages scenario_zones_tile   # tiles only

What it does (figures in benchmarks/README.md, section "tile_scenario_zones.py"):

1. The baseline year and its zone tables and zone draws as tile_memory.py makes them (its ``prepare`` and
   ``prepare_aggregate``: carbon_benchmark.py's fixed-seed fractions of 5 types, NDVI with cloud holes, models with
   200 bootstrap draws; zones on a jittered lattice of parcels of about ``--parcel`` px, 4 × 4 parcels a block,
   8 × 8 blocks a district, the city; coverage of the whole grid and of each tile; the year's fill.json; then its
   untiled vegetation, ndvi_se and aggregate jobs, which write the records results/{year}/zones/{level}.draws.npz),
   and a plan as tile_scenario.py makes it (its ``prepare_scenario``: 30 new parks at a planned density,
   20 conversions, 20 constructions and 40 street-tree plantings, crossing tile edges; its untiled scenario_inputs
   job writes the plan's layers). None of this is measured.
2. Runs each job as its rule runs it (the package's runner), each in its own child process so that its peak
   resident memory (``VmHWM``) is the job's own: rule scenario_zones over the whole grid
   (``run_scenario_zones``), scenario_zones_tile for every tile (``run_scenario_zones_tile``) and the gather (rule
   scenario_zones of a tiled run, ``run_scenario_zones_gather``), with the default uncertainty settings.
3. Checks that the tiled tables and totals equal the untiled ones within rtol 1e-9 (the differences from the
   baseline within 1e-9 of the level's largest zone stock: they are sums of terms of the stock's size; ``outputs:
   PASS``, exit status 1 on FAIL; the largest relative difference and the differences' largest error are printed)
   and prints per rule the peak memory (the largest over its tile jobs) and the wall / CPU time (median over tiles).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import RESULT_TAG, machine_summary, print_rules, run_child, run_plan, vmhwm_mib  # benchmarks/_bench.py
from tile_memory import LEVELS, VEG_FILES, aggregate_tables_kwargs, prepare, prepare_aggregate  # benchmarks/
from tile_scenario import RASTERS, YEAR, prepare_scenario  # benchmarks/tile_scenario.py

STAGES = ("scenario_zones", "scenario_zones_tile", "scenario_zones_gather")
PARK_SERVICE = [{"min_area_m2": 5000, "radius_m": 500}, {"min_area_m2": 2000, "radius_m": 300}]


def child(stage: str, workdir: Path, tile: str | None, size_px: int) -> dict:
    from greensink import io
    from greensink.scenario.run import run_scenario_zones
    from greensink.scenario.tiles import run_scenario_zones_gather, run_scenario_zones_tile

    w, agg, scen, s = workdir, workdir / "agg", workdir / "scen", workdir / "scen_whole"
    entry = json.loads((scen / "entry.json").read_text())
    models = w / "inputs" / "models.json"
    types = list(io.read_json(models)["types"])
    base = {k: w / "whole" / VEG_FILES[k] for k in ("ndvi", "fvc", "canopy", "height", "vegetation", "classes")}
    base |= {"fractions": w / "inputs" / "fractions.tif", "greenspace": scen / "greenspace.gpkg"}
    layers = {k: s / f"{k}.tif" for k in RASTERS} | {"greenspace": s / "greenspace.gpkg"}
    zones = [agg / f"{lv}.gpkg" for lv in LEVELS]
    tables = [w / "whole" / "zones" / f"{lv}.indicators.parquet" for lv in LEVELS]
    draws = [w / "whole" / "zones" / f"{lv}.draws.npz" for lv in LEVELS]
    kw = {"scenario": entry, "years": [YEAR], "levels": LEVELS, "types": types, "seed": 1, "uncertainty": {}}
    finish = {"greenspace": aggregate_tables_kwargs(w, types)["greenspace_config"], "park_service": PARK_SERVICE,
              "interval_pct": 90.0, "min_observed_pct": 50.0}
    out = lambda d: ([w / d / f"{lv}.gpkg" for lv in LEVELS], w / d / "totals.csv")  # noqa: E731
    sums = w / "zones_tiled" / "tiles"
    base_mib = vmhwm_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    if stage == "scenario_zones":
        run_scenario_zones(zones, [agg / f"{lv}_coverage.npz" for lv in LEVELS], w / "grid.json", base,
                           w / "whole" / "ndvi_se.tif", models, tables, layers, s / "models.json", w / "no_targets.yaml",
                           *out("zones_whole"), baseline_draws=draws, fill=agg / "fill.json", **kw, **finish)
    elif stage == "scenario_zones_tile":
        run_scenario_zones_tile([agg / f"tiles_{size_px}" / f"{lv}_coverage_{tile}.npz" for lv in LEVELS],
                                w / "grid.json", {k: v for k, v in base.items() if k != "greenspace"},
                                w / "whole" / "ndvi_se.tif", models, agg / "fill.json",
                                {k: v for k, v in layers.items() if k != "greenspace"}, s / "models.json",
                                sums / f"zones_{tile}.npz", tile_id=tile, size_px=size_px, **kw)
    elif stage == "scenario_zones_gather":
        from greensink.grid import Grid

        ids = [t.id for t in Grid.read(w / "grid.json").tiles(size_px)]
        run_scenario_zones_gather(zones, [sums / f"zones_{t}.npz" for t in ids], w / "grid.json", models,
                                  agg / "fill.json", tables, draws, layers["greenspace"], s / "models.json",
                                  w / "no_targets.yaml", *out("zones_tiled"), size_px=size_px, **kw, **finish)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "base_mib": base_mib,
            "peak_mib": vmhwm_mib()}


def compare(workdir: Path) -> tuple[bool, float, float, int]:
    """Whether the tiled tables and totals equal the untiled (rtol 1e-9; the differences from the baseline within
    1e-9 of the level's largest zone stock, the indicators' changes within 1e-9 of the indicator's largest value:
    the scale of their terms' rounding), the largest relative difference of the other columns, the largest error of
    a difference or change over that scale, and the number of parcels the plan changes."""
    import pandas as pd

    worst, worst_diff, ok = 0.0, 0.0, True
    pairs = [(pd.read_parquet(workdir / "zones_whole" / f"{lv}.parquet"),
              pd.read_parquet(workdir / "zones_tiled" / f"{lv}.parquet")) for lv in LEVELS]
    pairs.append((pd.read_csv(workdir / "zones_whole" / "totals.csv"), pd.read_csv(workdir / "zones_tiled" / "totals.csv")))
    for a, b in pairs:
        ok &= list(a.columns) == list(b.columns) and len(a) == len(b)
        scale = float(np.nanmax(np.abs(a["carbon_t"].to_numpy(dtype=float))))
        for col in a.columns:
            if not pd.api.types.is_numeric_dtype(a[col]):
                ok &= a[col].tolist() == b[col].tolist()
                continue
            x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
            ok &= bool(np.array_equal(np.isnan(x), np.isnan(y)))
            if col.startswith("difference_t") or col.endswith("_change"):  # differences: rounding of their terms
                ref = scale if col.startswith("difference_t") else float(np.nanmax(np.abs(a[col[:-7]].to_numpy(float)), initial=0.0))
                ok &= bool(np.allclose(y, x, rtol=1e-9, atol=1e-9 * ref, equal_nan=True))
                worst_diff = max(worst_diff, float(np.nanmax(np.abs(y - x), initial=0.0)) / ref) if ref else worst_diff
                continue
            ok &= bool(np.allclose(y, x, rtol=1e-9, atol=0.0, equal_nan=True))
            good = np.isfinite(x) & (x != 0)
            worst = max(worst, float(np.max(np.abs(y[good] / x[good] - 1), initial=0.0)))
    changed = int((pairs[-2][0]["changed_area_ha"] > 0).sum())
    return ok, worst, worst_diff, changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048, help="grid side, pixels")
    ap.add_argument("--tile", type=int, default=1024, help="tiles.size_px")
    ap.add_argument("--parcel", type=int, default=32, help="parcel side of the zones, pixels")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--stages", default=None, help="comma-separated stages to run (default: all three); the tables "
                    "are compared only when the untiled rule and the gather ran")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tile-id", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="greensink_scen_zones_tiles_"))
    if a.child:
        print(RESULT_TAG + json.dumps(child(a.child, workdir, a.tile_id, a.tile)), flush=True)
        return 0
    from greensink.grid import Grid

    print(f"machine: {machine_summary()}")
    print(f"grid {a.size} x {a.size} px ({a.size**2 / 1e6:.1f} Mpx), tiles of {a.tile} px, parcels of {a.parcel} px",
          flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    prepare(workdir, a.size)
    for d in ("whole", "tiled", "zones_whole", "zones_tiled/tiles"):
        (workdir / d).mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    size = ["--workdir", str(workdir), "--size", str(a.size), "--tile", str(a.tile)]
    mem = [sys.executable, str(here / "tile_memory.py"), *size, "--parcel", str(a.parcel)]
    for stage, name in (("vegetation", "ndvi.tif"), ("ndvi_se", "ndvi_se.tif")):  # the baseline year, not measured
        if not (workdir / "whole" / name).exists():
            run_child([*mem, "--child", stage], stage)
    prepare_aggregate(workdir, a.tile, a.parcel)
    if not (workdir / "whole" / "zones" / "parcel.draws.npz").exists():  # the baseline's tables and records
        run_child([*mem, "--child", "aggregate"], "aggregate")
    prepare_scenario(workdir)
    if not (workdir / "scen_whole" / "models.json").exists():  # the plan's layers, not measured
        run_child([sys.executable, str(here / "tile_scenario.py"), *size, "--child", "scenario_inputs"], "scenario_inputs")
    tiles = [t.id for t in Grid.read(workdir / "grid.json").tiles(a.tile)]
    me = [sys.executable, __file__, *size]
    plan = [("scenario_zones", None)] + [("scenario_zones_tile", t) for t in tiles] + [("scenario_zones_gather", None)]
    if a.stages:
        plan = [(stage, tile) for stage, tile in plan if stage in a.stages.split(",")]
    results = run_plan(me, plan)
    from greensink import io

    n_zones = {lv: len(io.read_vector(workdir / "agg" / f"{lv}.gpkg")) for lv in LEVELS}
    if a.stages and not {"scenario_zones", "scenario_zones_gather"} <= set(a.stages.split(",")):
        print(f"zones: {n_zones}")
        print_rules(results)
        print("outputs: not compared (--stages without both the untiled rule and the gather)")
        return 0
    ok, worst, worst_diff, changed = compare(workdir)
    print(f"zones: {n_zones}; parcels the plan changes: {changed}")
    print_rules(results)
    print(f"tiled vs untiled tables: largest relative difference {worst:.1e}; differences from the baseline: largest "
          f"|tiled - untiled| {worst_diff:.1e} of the level's largest zone stock (changes: of the indicator's largest value)")
    print(f"outputs: {'PASS' if ok else 'FAIL'} (tables and totals within rtol 1e-9 of the untiled rule's)")
    if not a.keep and a.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
