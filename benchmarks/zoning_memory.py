"""Peak memory and time of rules transitions, zoning_canopy_gap, zoning_importance and zoning_potential over the
whole grid against the same rules streaming tile by tile (tiles.size_px; issue 14 item 7).

    python benchmarks/zoning_memory.py --size 2048 --tile 512

Writes a size × size grid of 10 m pixels with two years of random vegetation classes, canopy, carbon (3 bands) and
two green-space type fractions with unobserved pixels, NDVI, FVC, an empty height model; four levels of zones (the
city, 4 × 4 districts, 16 × 16 blocks, parcels of 32 px on a lattice shifted by 3.3 m so that their edges cut
pixels); their coverage over the whole grid and per tile; open land, construction and red line polygons. Each rule's
runner then runs in its own child process (peak RSS ru_maxrss, its own): with the whole-grid coverage (the untiled
rule), then with the tiles' coverage (size_px). The tiled outputs are checked against the untiled (tables within
rtol 1e-9, rasters equal). ``lost_patches``: rule change's gather labelling the lost patches (about 2 % of the
pixels lost in blobs of up to 3 × 3 px, zones of 32 px; ``--rules lost_patches`` alone builds only the zones) over the whole grid against tile by tile (patches and polygons equal).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0
LEVELS = ["city", "district", "block", "parcel"]
YEARS = [2023, 2024]
TYPES = ["G1", "G2"]


def build(d: Path, size: int, tile: int, zones_only: bool = False) -> dict:
    import geopandas as gpd
    from affine import Affine
    from shapely.geometry import box

    from greensink import io
    from greensink.grid import Grid
    from greensink.zones import run_zone_coverage, run_zone_coverage_tile

    g = Grid(crs=CRS, transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0 + 10.0 * size), width=size, height=size)
    io.write_json(d / "grid.json", g.to_dict())
    w = 10.0 * size
    zones, whole, tiles = [], [], []
    for level, n in zip(LEVELS, (1, 4, 16, size // 32), strict=True):
        step = w / n
        edges = [0.0] + [k * step + 3.3 for k in range(1, n)] + [w]
        geoms = [box(X0 + edges[i], Y0 + edges[j], X0 + edges[i + 1], Y0 + edges[j + 1]) for j in range(n) for i in range(n)]
        path = d / f"{level}.gpkg"
        gpd.GeoDataFrame({"zone_id": [f"{level[0]}{k}" for k in range(len(geoms))], "parent_id": "", "level": level,
                          "name": ""}, geometry=geoms, crs=CRS).to_file(path, driver="GPKG")
        zones.append(path)
        if zones_only:  # lost_patches alone: the grid and the zone ids
            continue
        whole.append(d / f"{level}_coverage.npz")
        run_zone_coverage(path, d / "grid.json", whole[-1])
        for t in g.tiles(tile):
            tiles.append(d / "tiles" / f"{level}_coverage_{t.id}.npz")
            run_zone_coverage_tile(path, d / "grid.json", tiles[-1], tile_id=t.id, size_px=tile)
    if zones_only:
        return {"zones": [str(p) for p in zones], "whole": [], "tiles": [], "grid": str(d / "grid.json"),
                "rasters": {}, "zoning": {}}
    rng = np.random.default_rng(14)
    r: dict = {"classes": [], "carbon": [], "fractions": []}
    for y in YEARS:
        unobserved = rng.random(g.shape) < 0.05
        c = rng.integers(0, 4, g.shape).astype(np.float32)
        c[unobserved] = np.nan
        r["classes"].append(io.write_raster(d / f"classes_{y}.tif", c, g))
        k = rng.uniform(0, 60, g.shape).astype(np.float32)
        k[unobserved] = np.nan
        r["carbon"].append(io.write_raster(d / f"carbon_{y}.tif", np.stack([k, 0.8 * k, 1.2 * k]), g))
        f = rng.dirichlet([1, 1, 1], size * size).T[:2].reshape(2, size, size).astype(np.float32)
        r["fractions"].append(io.write_raster(d / f"fractions_{y}.tif", f, g, band_names=TYPES))
        del c, k, f
    canopy = np.where(rng.random(g.shape) < 0.3, rng.uniform(0.3, 1, g.shape), 0).astype(np.float32)
    r["canopy"] = io.write_raster(d / "canopy.tif", canopy, g)
    r["ndvi"] = io.write_raster(d / "ndvi.tif", rng.uniform(0, 0.9, g.shape).astype(np.float32), g)
    r["fvc"] = io.write_raster(d / "fvc.tif", rng.uniform(0, 1, g.shape).astype(np.float32), g)
    r["height"] = io.write_raster(d / "height.tif", np.full(g.shape, np.nan, np.float32), g)
    del canopy

    def layer(name: str, boxes: list) -> dict:
        gpd.GeoDataFrame(geometry=[box(X0 + a * w, Y0 + b * w, X0 + c * w, Y0 + e * w) for a, b, c, e in boxes],
                         crs=CRS).to_file(d / f"{name}.gpkg")
        return {"path": str(d / f"{name}.gpkg")}

    zoning = {"canopy_target_pct": 30, "potential_density_t_ha": 45.0, "tree_density_t_ha": 80.0,
              "open_land": layer("open", [(0.1, 0.1, 0.4, 0.35), (0.6, 0.5, 0.9, 0.8)]),
              "construction": layer("construction", [(0, 0, 0.3, 1), (0.3, 0.4, 1, 0.55)]),
              "cropland": layer("cropland", [(0.7, 0.05, 0.95, 0.3)]),
              "red_line": layer("red_line", [(0.45, 0.6, 0.65, 0.95)]),
              "importance": {"class_breaks": [1.8, 2.4], "factors": [
                  {"name": "veg", "weight": 1, "layer": "vegetation_class", "classes": {"0": 1, "1": 1, "2": 2, "3": 3}},
                  {"name": "carbon", "weight": 2, "layer": "carbon", "breaks": [10, 25], "scores": [1, 2, 3]},
                  {"name": "gs", "weight": 1, "layer": "greenspace_type", "classes": {"G1": 3, "G2": 2, "none": 1}}]}}
    (d / "coefficients.csv").write_text("type,name,c_above,c_below\nVEG,vegetation,30,8\n", encoding="utf-8")
    return {"zones": [str(p) for p in zones], "whole": [str(p) for p in whole], "tiles": [str(p) for p in tiles],
            "rasters": {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in r.items()},
            "zoning": zoning, "grid": str(d / "grid.json"), "coefficients": str(d / "coefficients.csv")}


def run(rule: str, case: dict, tiled: bool, tile: int, out: Path) -> None:
    from greensink.transitions import run_transitions, transition_pairs
    from greensink.zoning.run import run_zoning_canopy_gap, run_zoning_importance, run_zoning_potential

    out.mkdir(parents=True, exist_ok=True)
    cov, size_px = (case["tiles"], tile) if tiled else (case["whole"], None)
    r, zoning = case["rasters"], case["zoning"]
    tables = [out / f"{rule}_{level}.gpkg" for level in LEVELS]
    if rule == "transitions":
        pairs = transition_pairs(YEARS)
        o = {"classes": out / "classes.tif", "types": [out / "types.tif"], "csv": [out / f"{lv}.csv" for lv in LEVELS],
             "matrices": [out / f"matrix_{a}_{b}.csv" for a, b in pairs],
             "type_matrices": [out / f"type_matrix_{a}_{b}.csv" for a, b in pairs], "summary": out / "transitions.json"}
        run_transitions(case["zones"], cov, case["grid"], r["classes"], r["carbon"], r["fractions"], o, years=YEARS,
                        levels=LEVELS, types=TYPES, types_by_year=True, size_px=size_px)
    elif rule == "zoning_canopy_gap":
        run_zoning_canopy_gap(case["zones"], cov, case["grid"], r["classes"][-1], r["canopy"], r["carbon"][-1],
                              case["coefficients"], tables, out / "canopy_gap.json", levels=LEVELS, zoning=zoning,
                              greenspace=None, size_px=size_px)
    elif rule == "zoning_importance":
        layers = {"vegetation_class": r["classes"][-1], "canopy": r["canopy"], "height": r["height"],
                  "ndvi": r["ndvi"], "fvc": r["fvc"], "carbon": r["carbon"][-1]}
        run_zoning_importance(case["zones"], cov, case["grid"], layers, r["fractions"][-1], out / "importance.tif",
                              out / "importance.qml", tables, out / "importance.json", levels=LEVELS, types=TYPES,
                              zoning=zoning, typed_land=True, chm=False, size_px=size_px)
    elif rule == "lost_patches":  # rule change's gather: the lost patches from the lost pixels (no draws)
        import pickle

        from greensink.change.attribution import patches_from_lost
        from greensink.grid import Grid
        from greensink.io import read_json, read_vector

        g = Grid.from_dict(read_json(case["grid"]))
        rng = np.random.default_rng(3)
        # blobs: 3 × 3 pixels around 0.3 % of the pixels, 85 % of each kept (made from the pixel list: no grid array)
        centre = rng.integers(0, g.height * g.width, int(0.003 * g.height * g.width))
        dr, dc = np.mgrid[-1:2, -1:2]
        r = (centre // g.width)[:, None] + dr.ravel()
        c = (centre % g.width)[:, None] + dc.ravel()
        inside = (r >= 0) & (r < g.height) & (c >= 0) & (c < g.width) & (rng.random(r.shape) < 0.85)
        idx = np.unique(r[inside] * g.width + c[inside])
        r, c = idx // g.width, idx % g.width
        keys = np.vstack([np.zeros(idx.size, np.int64), (r // 32) * (g.width // 32) + c // 32])  # city, 32-px parcels
        found = {"index": idx, "keys": keys, "lost": rng.uniform(0.2, 1, idx.size),
                 "stock0": rng.uniform(0, 50, idx.size), "stock1": rng.uniform(0, 20, idx.size)}
        zones = [read_vector(case["zones"][0]), read_vector(case["zones"][-1])]
        patches = patches_from_lost(found, zones, ["city", "parcel"], g, 2023, 2024, size_px)
        (out / "patches.pkl").write_bytes(pickle.dumps(patches))
    else:
        run_zoning_potential(case["zones"], cov, case["grid"], r["carbon"][-1], case["coefficients"],
                             out / "potential.tif", out / "potential.qml", tables, out / "potential.json",
                             levels=LEVELS, zoning=zoning, greenspace=None, size_px=size_px)


def compare(a: Path, b: Path) -> float:
    """The largest relative difference between the CSV tables of two output folders; rasters must be equal."""
    import pandas as pd
    import rasterio

    worst = 0.0
    for f in sorted(a.glob("*.csv")):
        x, y = pd.read_csv(f), pd.read_csv(b / f.name)
        for c in x.columns:
            if pd.api.types.is_numeric_dtype(x[c]):
                u, v = x[c].to_numpy(float), y[c].to_numpy(float)
                assert (np.isnan(u) == np.isnan(v)).all(), (f.name, c)
                ok = np.isfinite(u) & (u != 0)
                if ok.any():
                    worst = max(worst, float(np.max(np.abs(v[ok] / u[ok] - 1))))
            else:
                assert x[c].tolist() == y[c].tolist(), (f.name, c)
    if (a / "patches.pkl").is_file():
        import pickle

        x, y = (pickle.loads((d / "patches.pkl").read_bytes()) for d in (a, b))
        assert len(x) > 100 and x.drop(columns="geometry").equals(y.drop(columns="geometry"))
        assert (x.geometry.values == y.geometry.values).all()
    for f in sorted(a.glob("*.tif")):
        with rasterio.open(f) as s, rasterio.open(b / f.name) as t:
            assert np.array_equal(s.read(), t.read(), equal_nan=True), f.name
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--rules", default="transitions,zoning_canopy_gap,zoning_importance,zoning_potential,lost_patches")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        rule, case, tiled, out, result = a.child
        t0, c0 = time.perf_counter(), time.process_time()
        run(rule, json.loads(Path(case).read_text()), tiled == "1", a.tile, Path(out))
        Path(result).write_text(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                            "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        case = build(d, a.size, a.tile, zones_only=a.rules == "lost_patches")
        (d / "case.json").write_text(json.dumps(case))
        print(f"{a.size}² px, tiles of {a.tile} px, {(-(-a.size // a.tile)) ** 2} tiles, "
              f"{(a.size // 32) ** 2} parcels: inputs in {time.perf_counter() - t0:.0f} s")
        print("| rule | run | peak MiB | wall s | CPU s |\n|---|---|---|---|---|")
        for rule in a.rules.split(","):
            outs = {}
            for tiled in (False, True):
                out, result = d / f"{rule}_{int(tiled)}", d / f"{rule}_{int(tiled)}.json"
                subprocess.run([sys.executable, __file__, "--tile", str(a.tile), "--child", rule, str(d / "case.json"),
                                str(int(tiled)), str(out), str(result)], check=True)
                r = json.loads(result.read_text())
                outs[tiled] = out
                print(f"| {rule} | {'tiled' if tiled else 'whole grid'} | {r['peak_mib']:.0f} | {r['wall_s']:.1f} | "
                      f"{r['cpu_s']:.1f} |", flush=True)
            print(f"  {rule}: tiled equals untiled, largest relative difference {compare(outs[False], outs[True]):.1e}")


if __name__ == "__main__":
    main()
