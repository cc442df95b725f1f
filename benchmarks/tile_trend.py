"""The trend stages of benchmarks/tile_memory.py (issue 14 items 2 and 7): rule trend over the whole grid against
trend_tile for every tile and the gather (rule trend of a tiled run), on three years.

The years are tile_memory.py's aggregate year, tile_change.py's second year (its models, fractions, NDVI, NDVI SE
and fill.json) and a third year generated here the same way from carbon_benchmark.py's seed + 2, with its own
fill.json. The zone tables rule trend reads (stocks, areas) are written here from the zone layers (any finite
numbers: they do not touch the sums measured). Default uncertainty settings (NDVI error on). The tiled trend.tif
must be the untiled file byte for byte, trend.json equal and the zone tables within rtol 1e-9.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from carbon_benchmark import SEED, make_models, write_inputs  # benchmarks/carbon_benchmark.py

TREND_STAGES = ("trend", "trend_tile", "trend_gather")


def prepare_trend(workdir: Path, levels: list[str], year0: int) -> None:
    """The third year's inputs and fill.json and the three years' zone tables, in workdir/trend (kept for reuse);
    the second year's are tile_change.py's (workdir/change, made first)."""
    import geopandas as gpd

    from greensink import io
    from greensink.carbon import run_fill

    d = workdir / "trend"
    if (d / "done").exists():
        return
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    (d / "models.json").write_text(json.dumps(make_models(5, 200, SEED + 2)))
    grid = io.read_grid(workdir / "inputs" / "ndvi.tif")
    write_inputs(d, grid.width, 5, SEED + 2)  # fractions.tif, ndvi.tif of the third year
    with io.raster_writer(d / "ndvi_se.tif", grid, 1) as se:
        for rows, _ in grid.windows(512):
            nd = io.read_raster(d / "ndvi.tif", window=((rows.start, rows.stop), (0, grid.width)))
            se.write(np.where(np.isfinite(nd), 0.03, np.nan).astype(np.float32), rows.start)
    types = list(io.read_json(d / "models.json")["types"])
    run_fill(d / "models.json", {"ndvi": d / "ndvi.tif"}, d / "fractions.tif", d / "fill.json", types=types,
             year=year0 + 2)
    for level in levels:
        z = io.read_vector(workdir / "agg" / f"{level}.gpkg")
        for k in range(3):
            n = len(z)
            gpd.GeoDataFrame({"zone_id": z["zone_id"], "area_ha": z.area / 1e4, "carbon_t": 100.0 + k + np.arange(n)},
                             geometry=z.geometry, crs=z.crs).to_parquet(d / f"{level}_{k}.indicators.parquet")
    (d / "done").write_text("")
    print(f"trend inputs written in {time.perf_counter() - t0:.0f} s", flush=True)


def _inputs(w: Path, levels: list[str]) -> dict:
    c, d = w / "change", w / "trend"
    return {"zones": [str(w / "agg" / f"{lv}.gpkg") for lv in levels],
            "coverage": [str(w / "agg" / f"{lv}_coverage.npz") for lv in levels], "grid": str(w / "grid.json"),
            "fractions": [str(w / "inputs" / "fractions.tif"), str(c / "fractions.tif"), str(d / "fractions.tif")],
            "predictors": [str(w / "whole" / "ndvi.tif"), str(c / "ndvi.tif"), str(d / "ndvi.tif")],
            "ndvi_se": [str(w / "whole" / "ndvi_se.tif"), str(c / "ndvi_se.tif"), str(d / "ndvi_se.tif")],
            "models": [str(w / "inputs" / "models.json"), str(c / "models.json"), str(d / "models.json")],
            "fills": [str(w / "agg" / "fill.json"), str(c / "fill.json"), str(d / "fill.json")],
            "tables": [str(d / f"{lv}_{k}.indicators.parquet") for k in range(3) for lv in levels]}


def _outputs(d: Path, levels: list[str]) -> tuple[str, list[str], str]:
    (d / "zones").mkdir(parents=True, exist_ok=True)
    return str(d / "trend.tif"), [str(d / "zones" / f"{lv}.gpkg") for lv in levels], str(d / "trend.json")


def trend_child(stage: str, w: Path, tile: str | None, size_px: int, levels: list[str], year0: int) -> None:
    """One trend job as its rule runs it (the package's runner)."""
    from greensink import io
    from greensink.grid import Grid
    from greensink.trend import run_trend
    from greensink.trend_tiles import run_trend_gather, run_trend_tile

    inp, years = _inputs(w, levels), [year0, year0 + 1, year0 + 2]
    types = list(io.read_json(inp["models"][0])["types"])
    kw = {"levels": levels, "seed": 1, "uncertainty": {}}
    td = w / "tiled" / "trend_tiles"
    td.mkdir(parents=True, exist_ok=True)
    if stage == "trend":
        run_trend(years, inp["zones"], inp["coverage"], inp["grid"], inp["fractions"], inp["predictors"],
                  inp["ndvi_se"], inp["models"], inp["tables"], *_outputs(w / "whole" / "trend", levels),
                  predictor_names=["ndvi"], types=types, fills=inp["fills"], **kw)
    elif stage == "trend_tile":
        cov = [str(w / "agg" / f"tiles_{size_px}" / f"{lv}_coverage_{tile}.npz") for lv in levels]
        run_trend_tile(years, cov, inp["grid"], inp["fractions"], inp["predictors"], inp["ndvi_se"], inp["models"],
                       inp["fills"], td / f"trend_{tile}.tif", td / f"parts_{tile}.npz", tile_id=tile, size_px=size_px,
                       predictor_names=["ndvi"], types=types, **kw)
    else:
        ids = [t.id for t in Grid.read(w / "grid.json").tiles(size_px)]
        run_trend_gather(years, inp["zones"], inp["grid"], [td / f"trend_{t}.tif" for t in ids],
                         [td / f"parts_{t}.npz" for t in ids], inp["models"], inp["tables"],
                         *_outputs(w / "tiled" / "trend", levels), size_px=size_px, **kw)


def compare_trend(w: Path, levels: list[str]) -> tuple[bool, float]:
    """Whether the tiled trend equals the untiled (trend.tif byte for byte, trend.json equal, every table column
    within rtol 1e-9 or 1e-9 absolute, NaN where NaN) and the largest relative difference of the table values above
    1e-6 in size."""
    import pandas as pd

    a, b = w / "whole" / "trend", w / "tiled" / "trend"
    ok = (a / "trend.tif").read_bytes() == (b / "trend.tif").read_bytes()
    ok &= json.loads((a / "trend.json").read_text()) == json.loads((b / "trend.json").read_text())
    if not ok:
        print("DIFFERS: trend.tif or trend.json")
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
    return ok, worst
