"""The change stages of benchmarks/tile_memory.py (issue 14 item 2): rule change over the whole grid against
change_tile for every tile and the gather (rule change of a tiled run), with their inputs.

The pair is tile_memory.py's aggregate year (its models, fractions, NDVI, NDVI SE and vegetation classes of the whole
run, its fill.json, zone layers and coverage) and a second year generated here from carbon_benchmark.py's seed + 1
(other models, type patches, NDVI and cloud holes; NDVI SE 0.03; vegetation classes from NDVI thresholds 0.2, 0.35,
0.5) with its own fill.json. The zone tables rule change reads (stocks and green areas) are written here from the
zone layers (any finite numbers: they do not touch the sums measured). Default uncertainty settings (NDVI error on).

Run alone (issue 14 items 2 and 7: does a tile job's cost follow the tile or the grid?), it measures one tile, the
bottom-right one (the farthest from the grid's top-left corner, where the noise streams' rows and the residual field's
recursion start), at one grid size, each job in a child process of its own (peak ``VmHWM``, CPU):

    python benchmarks/tile_change.py --size 2048 --tile 512            # change_tile of the last tile
    python benchmarks/tile_change.py --size 2048 --tile 512 --noise    # Noise alone: field + pixel terms

``--noise`` times greensink.uncertainty.Noise alone (the draws a change_tile chunk asks for: the residual field of
both years, ρ = 0.6, and the pixel terms, 200 draws, chunks of 8192 pixels) on the last tile and over the whole grid
(untiled), for a residual range ``--range-m`` (default 120 m at 10 m pixels: φ = 0.9357, halo K = 243 px): the
benchmark's models carry no residual field, so change_tile alone does not exercise it. With ``PYTHONPATH`` set to
another checkout's ``src`` the children import that greensink (before/after figures of one driver).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import RESULT_TAG, machine_summary, run_child, vmhwm_mib  # benchmarks/_bench.py
from carbon_benchmark import SEED, make_models, write_inputs  # benchmarks/carbon_benchmark.py

CHANGE_STAGES = ("change", "change_tile", "change_gather")


def prepare_change(workdir: Path, levels: list[str], year0: int, size_px: int) -> None:
    """The second year's inputs and fill.json, and both years' zone tables, in workdir/change (kept for reuse)."""
    import geopandas as gpd

    from greensink import io
    from greensink.carbon import run_fill

    d = workdir / "change"
    if (d / "done").exists():
        return
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    (d / "models.json").write_text(json.dumps(make_models(5, 200, SEED + 1)))
    grid = io.read_grid(workdir / "inputs" / "ndvi.tif")
    write_inputs(d, grid.width, 5, SEED + 1)  # fractions.tif, ndvi.tif of the second year
    with io.raster_writer(d / "ndvi_se.tif", grid, 1) as se, io.raster_writer(d / "vegetation_class.tif", grid, 1) as cl:
        for rows, _ in grid.windows(512):
            nd = io.read_raster(d / "ndvi.tif", window=((rows.start, rows.stop), (0, grid.width)))
            se.write(np.where(np.isfinite(nd), 0.03, np.nan).astype(np.float32), rows.start)
            c = np.digitize(nd, [0.2, 0.35, 0.5]).astype(np.float32)
            c[~np.isfinite(nd)] = np.nan
            cl.write(c, rows.start)
    types = list(io.read_json(d / "models.json")["types"])
    run_fill(d / "models.json", {"ndvi": d / "ndvi.tif"}, d / "fractions.tif", d / "fill.json", types=types,
             year=year0 + 1)
    for level in levels:
        z = io.read_vector(workdir / "agg" / f"{level}.gpkg")
        for k in (0, 1):
            n = len(z)
            gpd.GeoDataFrame({"zone_id": z["zone_id"], "area_ha": z.area / 1e4, "carbon_t": 100.0 + k + np.arange(n),
                              "green_area_ha": np.full(n, 1.0 + 0.1 * k)}, geometry=z.geometry, crs=z.crs).to_parquet(
                d / f"{level}_{k}.indicators.parquet")
    (d / "done").write_text("")
    print(f"change inputs written in {time.perf_counter() - t0:.0f} s", flush=True)


def _inputs(w: Path, levels: list[str], year0: int) -> dict:
    d = w / "change"
    return {"grid": str(w / "grid.json"), "zones": [str(w / "agg" / f"{lv}.gpkg") for lv in levels],
            "coverage": [str(w / "agg" / f"{lv}_coverage.npz") for lv in levels],
            "fractions0": str(w / "inputs" / "fractions.tif"), "fractions1": str(d / "fractions.tif"),
            "predictors0": [str(w / "whole" / "ndvi.tif")], "predictors1": [str(d / "ndvi.tif")],
            "classes0": str(w / "whole" / "vegetation_class.tif"), "classes1": str(d / "vegetation_class.tif"),
            "ndvi_se0": str(w / "whole" / "ndvi_se.tif"), "ndvi_se1": str(d / "ndvi_se.tif"),
            "models0": str(w / "inputs" / "models.json"), "models1": str(d / "models.json"),
            "fill0": str(w / "agg" / "fill.json"), "fill1": str(d / "fill.json"),
            "tables0": [str(d / f"{lv}_0.indicators.parquet") for lv in levels],
            "tables1": [str(d / f"{lv}_1.indicators.parquet") for lv in levels]}


def _outputs(d: Path, levels: list[str]) -> dict:
    (d / "zones").mkdir(parents=True, exist_ok=True)
    return {"sink": str(d / "sink.tif"), "attribution": str(d / "attribution.tif"),
            "zones": [str(d / "zones" / f"{lv}.gpkg") for lv in levels], "lost_patches": str(d / "lost_patches.gpkg"),
            "uncertainty": str(d / "uncertainty.json")}


def change_child(stage: str, w: Path, tile: str | None, size_px: int, levels: list[str], year0: int) -> None:
    """One change job as its rule runs it (the package's runner)."""
    from greensink import io
    from greensink.change import run_change, run_change_gather, run_change_tile
    from greensink.grid import Grid

    inp = _inputs(w, levels, year0)
    types = list(io.read_json(inp["models0"])["types"])
    kw = {"y0": year0, "y1": year0 + 1, "levels": levels, "types": types, "predictors": ["ndvi"], "typed_land": True,
          "uncertainty": {}, "seed": 1}
    td = w / "tiled" / "change_tiles"
    td.mkdir(parents=True, exist_ok=True)
    if stage == "change":
        run_change(inp, _outputs(w / "whole" / "change", levels), **kw)
    elif stage == "change_tile":
        cov = [str(w / "agg" / f"tiles_{size_px}" / f"{lv}_coverage_{tile}.npz") for lv in levels]
        run_change_tile({**inp, "coverage": cov}, {"sink": td / f"sink_{tile}.tif", "attribution": td / f"attribution_{tile}.tif",
                        "parts": td / f"parts_{tile}.npz"}, tile_id=tile, size_px=size_px, **kw)
    else:
        ids = [t.id for t in Grid.read(w / "grid.json").tiles(size_px)]
        gather = inp | {"sink_tiles": [td / f"sink_{t}.tif" for t in ids],
                        "attribution_tiles": [td / f"attribution_{t}.tif" for t in ids],
                        "parts": [td / f"parts_{t}.npz" for t in ids]}
        run_change_gather(gather, _outputs(w / "tiled" / "change", levels), size_px=size_px, y0=year0, y1=year0 + 1,
                          levels=levels, uncertainty={})


def compare_change(w: Path, levels: list[str]) -> tuple[bool, float, int]:
    """Whether the tiled change equals the untiled (sink.tif and attribution.tif byte for byte, every table column
    within rtol 1e-9 or 1e-9 absolute, the lost patches' polygons equal), the largest relative difference of the
    table values above 1e-6 in size, and the number of lost patches."""
    import geopandas as gpd
    import pandas as pd

    a, b = w / "whole" / "change", w / "tiled" / "change"
    ok = all((a / n).read_bytes() == (b / n).read_bytes() for n in ("sink.tif", "attribution.tif"))
    if not ok:
        print("DIFFERS: change sink.tif or attribution.tif")
    worst = 0.0
    for lv in levels:
        x, y = pd.read_parquet(a / "zones" / f"{lv}.parquet"), pd.read_parquet(b / "zones" / f"{lv}.parquet")
        ok &= list(x.columns) == list(y.columns)
        for c in x.columns:
            if pd.api.types.is_float_dtype(x[c]):
                u, v = x[c].to_numpy(float), y[c].to_numpy(float)
                ok &= bool(np.array_equal(np.isnan(u), np.isnan(v)))
                ok &= bool(np.allclose(v, u, rtol=1e-9, atol=1e-9, equal_nan=True))
                g = np.isfinite(u) & (np.abs(u) > 1e-6)
                worst = max(worst, float(np.max(np.abs(v[g] / u[g] - 1), initial=0.0)))
            elif c != "geometry":
                ok &= bool(x[c].equals(y[c]))
    pa, pb = gpd.read_file(a / "lost_patches.gpkg"), gpd.read_file(b / "lost_patches.gpkg")
    ok &= len(pa) == len(pb) and bool(pa.geometry.equals(pb.geometry))
    ok &= bool(np.allclose(pb["carbon_lost_t"], pa["carbon_lost_t"], rtol=1e-9, equal_nan=True))
    return ok, worst, len(pa)


def noise_child(size: int, tile: int, mode: str, range_m: float, n_draws: int = 200, chunk: int = 8192) -> dict:
    """Noise.field (both years of a pair, ρ = 0.6) and Noise.pixel_terms over the last tile (``mode`` "tile") or the
    whole grid ("whole"), in chunks of ``chunk`` pixels in row order, as change_tile's one pass asks them."""
    import numpy as np

    from greensink.uncertainty import Noise, NoiseSpec, ResidualField

    res = ResidualField(nugget=0.02, psill=0.03, range_m=range_m, n_plots=100, method="benchmark")
    pair = [Noise(NoiseSpec(seed=1, year=y, residual=res, rho=0.6, paired=True, ndvi=True, position_sd_m=1.5,
                            resolution_m=10.0, width=size, height=size), n_draws) for y in (2024, 2025)]
    r0 = c0 = ((size - 1) // tile) * tile if mode == "tile" else 0
    rows, cols = np.arange(r0, size), np.arange(c0, size)
    gidx = (rows[:, None] * size + cols[None, :]).ravel()
    base = vmhwm_mib()
    c_0, t_0 = time.process_time(), time.perf_counter()
    total = 0.0
    for i in range(0, gidx.size, chunk):
        g = gidx[i:i + chunk]
        one = np.ones(g.size)
        for n in pair:
            total += float(n.field(g)[0].sum())
            total += float(n.pixel_terms(g, one, one, one, parts=False)[0][0].sum())
    return {"wall_s": time.perf_counter() - t_0, "cpu_s": time.process_time() - c_0, "base_mib": base,
            "peak_mib": vmhwm_mib(), "pixels": int(gidx.size), "check": total}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048, help="grid side, pixels")
    ap.add_argument("--tile", type=int, default=512, help="tiles.size_px")
    ap.add_argument("--workdir", type=Path, default=None, help="inputs kept here for reuse (default: a temporary folder)")
    ap.add_argument("--noise", action="store_true", help="time greensink.uncertainty.Noise alone (last tile, whole grid)")
    ap.add_argument("--range-m", type=float, default=120.0, help="--noise: the residual field's range, m")
    ap.add_argument("--jobs", nargs="+", choices=["tile", "whole"], default=["tile", "whole"],
                    help="--noise: the last tile, the whole grid (untiled) or both (default)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(RESULT_TAG + json.dumps(noise_child(a.size, a.tile, a.child, a.range_m)), flush=True)
        return 0
    print(f"machine: {machine_summary()}")
    with open("/proc/loadavg") as f:
        print(f"load average: {f.read().split()[:3]}")
    import greensink

    print(f"greensink from {Path(greensink.__file__).parent}")
    print(f"grid {a.size} x {a.size} px, tiles of {a.tile} px", flush=True)
    if a.noise:
        phi = math.exp(-10.0 / (a.range_m * math.sqrt(math.pi / 2)))
        print(f"Noise: range {a.range_m:g} m, phi {phi:.4f}, 200 draws, chunks of 8192 px")
        print(f"{'job':<14} {'pixels':>9} {'peak MiB':>9} {'wall s':>8} {'CPU s':>7}")
        for mode in a.jobs:
            r = run_child([sys.executable, __file__, "--size", str(a.size), "--tile", str(a.tile), "--range-m",
                           str(a.range_m), "--child", mode], mode)
            print(f"{mode:<14} {r['pixels']:>9} {r['peak_mib']:>9.0f} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f}", flush=True)
        return 0
    import tile_memory as tm  # benchmarks/tile_memory.py (it imports this module: imported here, not at the top)

    from greensink.grid import Grid

    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="greensink_tile_change_"))
    workdir.mkdir(parents=True, exist_ok=True)
    tm.prepare(workdir, a.size)
    for sub in ("whole", "tiled"):
        (workdir / sub).mkdir(exist_ok=True)
    me = [sys.executable, tm.__file__, "--workdir", str(workdir), "--size", str(a.size), "--tile", str(a.tile)]
    for stage in ("vegetation", "ndvi_se"):  # the change's inputs over the whole grid (not measured)
        if not (workdir / "whole" / f"{stage}.done").exists():
            run_child([*me, "--child", stage], stage)
            (workdir / "whole" / f"{stage}.done").write_text("")
    tm.prepare_aggregate(workdir, a.tile, 32)
    prepare_change(workdir, tm.LEVELS, tm.AGG_YEAR, a.tile)
    last = Grid.read(workdir / "grid.json").tiles(a.tile)[-1].id
    r = run_child([*me, "--child", "change_tile", "--tile-id", last], f"change_tile {last}")
    print(f"{'job':<22} {'peak MiB':>9} {'wall s':>8} {'CPU s':>7}")
    print(f"{'change_tile ' + last:<22} {r['peak_mib']:>9.0f} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
