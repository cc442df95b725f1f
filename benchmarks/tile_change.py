"""The change stages of benchmarks/tile_memory.py (issue 14 item 2): rule change over the whole grid against
change_tile for every tile and the gather (rule change of a tiled run), with their inputs.

The pair is tile_memory.py's aggregate year (its models, fractions, NDVI, NDVI SE and vegetation classes of the whole
run, its fill.json, zone layers and coverage) and a second year generated here from carbon_benchmark.py's seed + 1
(other models, type patches, NDVI and cloud holes; NDVI SE 0.03; vegetation classes from NDVI thresholds 0.2, 0.35,
0.5) with its own fill.json. The zone tables rule change reads (stocks and green areas) are written here from the
zone layers (any finite numbers: they do not touch the sums measured). Default uncertainty settings (NDVI error on).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
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
