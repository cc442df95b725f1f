#!/usr/bin/env python
"""Benchmark: peak memory and time of a tiled per-pixel job against the whole-grid job (issue 14 items 2 and 4).

    python benchmarks/tile_memory.py                          # 4096 × 4096 px grid, tiles of 1024 px
    python benchmarks/tile_memory.py --size 2048 --tile 512   # quicker
    python benchmarks/tile_memory.py --workdir /tmp/gtm --keep
    python benchmarks/tile_memory.py --only aggregate         # vegetation and ndvi_se (inputs), then aggregate

What it does (figures in benchmarks/README.md):

1. Generates, from carbon_benchmark.py's fixed seed, the carbon rule's inputs on a ``--size`` grid (fractions of
   5 types, NDVI with cloud holes, models with 200 bootstrap draws) and a composite whose red and NIR give that
   NDVI (valid_obs_count 3, 0 where NDVI is NaN).
2. Runs each job as the rules run it (the package's runner), each in its own child process so that its peak
   resident memory (``VmHWM``) is the job's own: the untiled rules vegetation, ndvi_se and carbon over the whole
   grid; then the tiled rules: vegetation_endmembers, vegetation_tile for every tile, vegetation_mosaic,
   ndvi_se_tile for every tile, ndvi_se_mosaic, carbon_tile for every tile, carbon_mosaic. Carbon uses the
   default uncertainty settings (tabulated interval; NDVI error from ndvi_se.tif).
3. Aggregate (issue 14 item 2, zone sums gathered from tiles): zone layers on a jittered lattice (parcels of
   about ``--parcel`` px, 4 × 4 parcels a block, 8 × 8 blocks a district, the city), their coverage matrices
   (whole grid and per tile), a few green-space polygons and the year's fill.json (rule fill) are written by the
   parent (not measured); then rule aggregate over the whole grid (``run_aggregate``), aggregate_tile for every
   tile and the gather (rule aggregate of a tiled run, ``run_aggregate_gather``), with the default uncertainty
   settings (NDVI error on). The tiled tables and draws must equal the untiled ones within rtol 1e-9 (the largest
   relative difference is printed).
3b. Change (benchmarks/tile_change.py): the aggregate year and a generated second year; rule change over the whole
   grid (``run_change``), change_tile for every tile and the gather (rule change of a tiled run,
   ``run_change_gather``): sink.tif and attribution.tif byte-identical, tables within rtol 1e-9, patches equal.
   ``--only change`` runs vegetation and ndvi_se (its inputs) and the change stages.
3c. Trend (benchmarks/tile_trend.py): the change's two years and a generated third; rule trend over the whole grid
   (``run_trend``), trend_tile for every tile and the gather (``run_trend_gather``): trend.tif byte-identical,
   trend.json equal, tables within rtol 1e-9. ``--only trend`` runs vegetation and ndvi_se and the trend stages.
4. Checks that every mosaic is byte-identical to the untiled file (``outputs: PASS``, exit status 1 on FAIL) and
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
from carbon_benchmark import CRS, SEED, make_models, write_inputs  # benchmarks/carbon_benchmark.py
from tile_change import CHANGE_STAGES, change_child, compare_change, prepare_change  # benchmarks/tile_change.py
from tile_trend import TREND_STAGES, compare_trend, prepare_trend, trend_child  # benchmarks/tile_trend.py

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


LEVELS = ["city", "district", "block", "parcel"]
AGG_YEAR = 2024


def lattice_zones(grid, parcel_px: int, seed: int = SEED) -> dict:
    """Zone layers of the grid: parcels on a lattice of ``parcel_px`` pixels whose inner lines are jittered by up to
    a quarter of a parcel (so they cut pixels), 4 × 4 parcels a block, 8 × 8 blocks a district, one city."""
    import geopandas as gpd
    from shapely.geometry import box

    x0, y1 = grid.transform.c, grid.transform.f
    res = grid.resolution_m
    n_side = max(1, grid.width // parcel_px)
    rng = np.random.default_rng([seed, 9])
    edges = np.linspace(0.0, grid.width * res, n_side + 1)
    jitter = rng.uniform(-0.25, 0.25, n_side + 1) * parcel_px * res
    jitter[[0, -1]] = 0.0
    xs = edges + jitter
    ys = edges + jitter[::-1]
    rows = {"parcel": [], "block": [], "district": []}
    for i in range(n_side):
        for j in range(n_side):
            bi, bj = i // 4, j // 4
            rows["parcel"].append((f"P{i:04d}_{j:04d}", f"B{bi:03d}_{bj:03d}",
                                   box(x0 + xs[j], y1 - ys[i + 1], x0 + xs[j + 1], y1 - ys[i])))
    out = {}
    parcels = gpd.GeoDataFrame({"zone_id": [r[0] for r in rows["parcel"]], "parent_id": [r[1] for r in rows["parcel"]],
                                "level": "parcel"}, geometry=[r[2] for r in rows["parcel"]], crs=CRS)
    blocks = parcels.dissolve(by="parent_id", as_index=False)[["parent_id", "geometry"]].rename(
        columns={"parent_id": "zone_id"})
    blocks["parent_id"] = [f"D{int(z[1:4]) // 8:02d}_{int(z[5:8]) // 8:02d}" for z in blocks["zone_id"]]
    blocks["level"] = "block"
    districts = blocks.dissolve(by="parent_id", as_index=False)[["parent_id", "geometry"]].rename(
        columns={"parent_id": "zone_id"})
    districts["parent_id"], districts["level"] = "C", "district"
    city = gpd.GeoDataFrame({"zone_id": ["C"], "parent_id": [""], "level": ["city"]},
                            geometry=[box(x0, y1 - grid.height * res, x0 + grid.width * res, y1)], crs=CRS)
    for level, z in (("city", city), ("district", districts), ("block", blocks), ("parcel", parcels)):
        z = z[["zone_id", "parent_id", "level", "geometry"]].copy()
        z["name"] = z["zone_id"]
        out[level] = gpd.GeoDataFrame(z, geometry="geometry", crs=CRS)
    return out


def prepare_aggregate(workdir: Path, size_px: int, parcel_px: int) -> None:
    """Zone layers, coverage (whole grid and each tile), green-space polygons and fill.json of the aggregate
    stages (step 3 of the module docstring), in workdir/agg; kept for reuse."""
    import geopandas as gpd
    from shapely.geometry import box

    from greensink import io
    from greensink.carbon import run_fill
    from greensink.coverage import coverage_matrix
    from greensink.grid import Grid

    agg = workdir / "agg"
    tiles_dir = agg / f"tiles_{size_px}"
    if (tiles_dir / "done").exists():
        print(f"reusing aggregate inputs in {agg}", flush=True)
        return
    tiles_dir.mkdir(parents=True, exist_ok=True)
    grid = Grid.read(workdir / "grid.json")
    t0 = time.perf_counter()
    if not (agg / "fill.json").exists():
        zones = lattice_zones(grid, parcel_px)
        for level in LEVELS:
            zones[level].to_file(agg / f"{level}.gpkg", driver="GPKG")
            m = coverage_matrix(list(zones[level].geometry.values), grid.transform, grid.shape)
            io.write_sparse(agg / f"{level}_coverage.npz", m)
        x0, y1, res = grid.transform.c, grid.transform.f, grid.resolution_m
        types = list(io.read_json(workdir / "inputs" / "models.json")["types"])
        rng = np.random.default_rng([SEED, 10])
        parks = []
        for k in range(40):  # 40 park polygons of 20-120 px sides, each of a type
            c, r = rng.uniform(0, grid.width - 120), rng.uniform(0, grid.height - 120)
            w, h = rng.uniform(20, 120, 2)
            parks.append((types[k % len(types)], box(x0 + c * res, y1 - (r + h) * res, x0 + (c + w) * res, y1 - r * res)))
        gpd.GeoDataFrame({"type": [p[0] for p in parks]}, geometry=[p[1] for p in parks], crs=CRS).to_file(
            agg / "greenspace.gpkg", driver="GPKG")
        run_fill(workdir / "inputs" / "models.json", {"ndvi": workdir / "whole" / "ndvi.tif"},
                 workdir / "inputs" / "fractions.tif", agg / "fill.json", types=types, year=AGG_YEAR)
    try:
        from greensink.coverage import tile_coverage_matrix
    except ImportError:  # before the tile coverage of issue 14 item 2: the whole matrix's columns of the tile
        tile_coverage_matrix = None
    for level in LEVELS:
        zones = io.read_vector(agg / f"{level}.gpkg")
        whole = io.read_sparse(agg / f"{level}_coverage.npz") if tile_coverage_matrix is None else None
        for t in grid.tiles(size_px):
            if tile_coverage_matrix is not None:
                m = tile_coverage_matrix(list(zones.geometry.values), grid, t)
            else:
                rows, cols = np.mgrid[t.rows, t.cols]
                m = whole[:, (rows * grid.width + cols).ravel()].tocsr()
            io.write_sparse(tiles_dir / f"{level}_coverage_{t.id}.npz", m)
    (tiles_dir / "done").write_text("")
    print(f"aggregate inputs written in {time.perf_counter() - t0:.0f} s", flush=True)


def aggregate_kwargs(workdir: Path) -> dict:
    from greensink import io

    types = list(io.read_json(workdir / "inputs" / "models.json")["types"])
    return {"year": AGG_YEAR, "levels": LEVELS, "types": types, "seed": 1, "uncertainty": {}}


def aggregate_tables_kwargs(workdir: Path, types: list[str]) -> dict:
    return {"greenspace_config": {"type_column": "type", "park_types": types[:1], "types": {t: t for t in types}}}


def compare_aggregate(workdir: Path) -> tuple[bool, float]:
    """Whether the tiled tables and draws equal the untiled within rtol 1e-9, and the largest relative difference."""
    import pandas as pd

    from greensink.aggregate import ZoneDraws

    worst, ok = 0.0, True
    for level in LEVELS:
        a = pd.read_parquet(workdir / "whole" / "zones" / f"{level}.indicators.parquet")
        b = pd.read_parquet(workdir / "tiled" / "zones" / f"{level}.indicators.parquet")
        da = ZoneDraws.read(workdir / "whole" / "zones" / f"{level}.draws.npz")
        db = ZoneDraws.read(workdir / "tiled" / "zones" / f"{level}.draws.npz")
        ok &= list(a.columns) == list(b.columns) and a["zone_id"].tolist() == b["zone_id"].tolist()
        pairs = [(a[c].to_numpy(dtype=float), b[c].to_numpy(dtype=float)) for c in a.columns
                 if pd.api.types.is_numeric_dtype(a[c])] + [(da.estimate, db.estimate), (da.draws, db.draws)]
        for x, y in pairs:
            ok &= bool(np.array_equal(np.isnan(x), np.isnan(y)))
            ok &= bool(np.allclose(y, x, rtol=1e-9, atol=0.0, equal_nan=True))
            good = np.isfinite(x) & (x != 0)
            worst = max(worst, float(np.max(np.abs(y[good] / x[good] - 1), initial=0.0)))
    return ok, worst


def child(stage: str, workdir: Path, tile: str | None, size_px: int) -> dict:
    from greensink import io
    from greensink.aggregate import run_aggregate, run_aggregate_gather, run_aggregate_tile
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
    elif stage in ("aggregate", "aggregate_tile", "aggregate_gather"):
        agg, akw = w / "agg", aggregate_kwargs(w)
        veg = {k: w / "whole" / n for k, n in VEG_FILES.items() if k != "height"}
        zones = [agg / f"{lv}.gpkg" for lv in LEVELS]
        tables_kw = aggregate_tables_kwargs(w, akw["types"])
        outs = lambda d: ([w / d / "zones" / f"{lv}.indicators.parquet" for lv in LEVELS],  # noqa: E731
                          [w / d / "zones" / f"{lv}.draws.npz" for lv in LEVELS])
        ids_sums = [w / "tiled" / f"aggregate_{t}.npz" for t in ids]
        if stage == "aggregate":
            tables, draws = outs("whole")
            run_aggregate(zones, [agg / f"{lv}_coverage.npz" for lv in LEVELS], grid_json, veg,
                          inputs / "fractions.tif", agg / "greenspace.gpkg", models, {"ndvi": veg["ndvi"]},
                          w / "whole" / "ndvi_se.tif", tables, draws_out=draws, fill_json=agg / "fill.json",
                          **tables_kw, **akw)
        elif stage == "aggregate_tile":
            run_aggregate_tile([agg / f"tiles_{size_px}" / f"{lv}_coverage_{tile}.npz" for lv in LEVELS], grid_json,
                               veg, inputs / "fractions.tif", models, agg / "fill.json", {"ndvi": veg["ndvi"]},
                               w / "whole" / "ndvi_se.tif", w / "tiled" / f"aggregate_{tile}.npz", tile_id=tile,
                               size_px=size_px, **akw)
        else:
            tables, draws = outs("tiled")
            run_aggregate_gather(zones, ids_sums, grid_json, agg / "greenspace.gpkg", models, agg / "fill.json",
                                 tables, size_px=size_px, draws_out=draws, **tables_kw, **akw)
    elif stage == "carbon_mosaic":
        run_carbon_mosaic([w / "tiled" / f"carbon_{t}.tif" for t in ids],
                          [w / "tiled" / f"carbon_{t}.json" for t in ids], grid_json, w / "tiled" / "carbon.tif",
                          w / "tiled" / "carbon.json", size_px=size_px)
    elif stage in CHANGE_STAGES:
        change_child(stage, w, tile, size_px, LEVELS, AGG_YEAR)
    elif stage in TREND_STAGES:
        trend_child(stage, w, tile, size_px, LEVELS, AGG_YEAR)
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
    ap.add_argument("--parcel", type=int, default=32, help="parcel side of the aggregate stages' zones, pixels")
    ap.add_argument("--only", choices=["aggregate", "change", "trend"], default=None,
                    help="aggregate: run vegetation and ndvi_se (its inputs) and the aggregate stages only")
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
    plan = [("vegetation", None), ("ndvi_se", None)]
    if a.only is None:
        plan += [("carbon", None), ("vegetation_endmembers", None)]
        plan += [("vegetation_tile", t) for t in tiles] + [("vegetation_mosaic", None)]
        plan += [("ndvi_se_tile", t) for t in tiles] + [("ndvi_se_mosaic", None)]
        plan += [("carbon_tile", t) for t in tiles] + [("carbon_mosaic", None)]
    agg_plan = [("aggregate", None)] + [("aggregate_tile", t) for t in tiles] + [("aggregate_gather", None)]
    me += ["--parcel", str(a.parcel)]
    change_plan = [("prepare_change", None), ("change", None), *[("change_tile", t) for t in tiles],
                   ("change_gather", None)]
    trend_plan = [("prepare_trend", None), ("trend", None), *[("trend_tile", t) for t in tiles], ("trend_gather", None)]
    agg_plan = [] if a.only in ("change", "trend") else agg_plan
    change_plan = change_plan if a.only in (None, "change") else []
    trend_plan = trend_plan if a.only in (None, "trend") else []
    if trend_plan and not change_plan:  # the trend's second year is the change's
        trend_plan.insert(0, ("prepare_change", None))
    for stage, tile in [*plan, ("prepare_aggregate", None), *agg_plan, *change_plan, *trend_plan]:
        if stage == "prepare_aggregate":
            prepare_aggregate(workdir, a.tile, a.parcel)
            continue
        if stage == "prepare_change":
            prepare_change(workdir, LEVELS, AGG_YEAR, a.tile)
            continue
        if stage == "prepare_trend":
            prepare_trend(workdir, LEVELS, AGG_YEAR)
            continue
        extra = ["--tile-id", tile] if tile else []
        results.setdefault(stage, []).append(run_child([*me, "--child", stage, *extra], f"{stage} {tile or ''}"))
    ok = True
    mosaics = [] if a.only else [*VEG_FILES.values(), "ndvi_se.tif", "carbon.tif", "vegetation.json", "carbon.json"]
    for name in mosaics:
        same = (workdir / "whole" / name).read_bytes() == (workdir / "tiled" / name).read_bytes()
        ok &= same
        if not same:
            print(f"DIFFERS: {name}")
    if agg_plan:
        same, worst = compare_aggregate(workdir)
        ok &= same
        print(f"aggregate: tiled tables and draws {'equal' if same else 'DIFFER from'} the untiled within rtol 1e-9 "
              f"(largest relative difference {worst:.1e})")
    if change_plan:
        same, worst, n_patches = compare_change(workdir, LEVELS)
        ok &= same
        print(f"change: tiled sink.tif/attribution.tif, tables and {n_patches} lost patches {'equal' if same else 'DIFFER from'} "
              f"the untiled (tables within rtol 1e-9, largest relative difference {worst:.1e})")
    if trend_plan:
        same, worst = compare_trend(workdir, LEVELS)
        ok &= same
        print(f"trend: tiled trend.tif/trend.json and tables {'equal' if same else 'DIFFER from'} the untiled (tables "
              f"within rtol 1e-9, largest relative difference {worst:.1e})")
    print(f"{'rule':<22} {'jobs':>4} {'peak MiB':>9} {'wall s':>8} {'CPU s':>7}")
    for stage, runs in results.items():
        peak = max(r["peak_mib"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        print(f"{stage:<22} {len(runs):>4} {peak:>9.0f} {wall:>8.2f} {cpu:>7.2f}")
    print(f"outputs: {'PASS' if ok else 'FAIL'} (every mosaic byte-identical to the untiled file, zone tables equal)")
    if not a.keep and a.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
