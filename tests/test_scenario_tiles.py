"""Scenarios per tile (issue 14 item 2): a scenario's burn and carbon map in {scenario}×{tile} jobs equal the whole
grid's, bit for bit.

A hand-built 9 × 11 city of 10 m pixels (origin off the metre lattice, so pixel edges are not round numbers) in
tiles of 4 px (3 × 3 tiles, the last row 1 and the last column 3 pixels): parks (G1), attached green (XG), bare land
and unobserved (NaN) pixels, and four changes whose polygons cross tile edges at fractions of a pixel: a new park at
a planned density (a pseudo-type), a conversion G1 → G2, a construction and a planting. The whole-grid burn
(greensink.scenario.burn.burn, rule scenario_inputs) against the tiles' (plan_burn once, burn_window per tile with
window_coverage; rules scenario_plan, scenario_inputs_tile, scenario_inputs_mosaic), with hand-computed values at
pixels of the tile edges; then the same through the rule runners and files (mosaics = the untiled files' bytes); the
exact window coverage against coverage_raster, and the scenario carbon map's tiles and mosaic against the whole map.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from greensink import io
from greensink.coverage import coverage_raster, tile_coverage_matrix
from greensink.grid import Grid
from greensink.scenario import scenarios
from greensink.scenario.burn import (
    Landscape,
    Thresholds,
    burn,
    burn_window,
    plan_burn,
    window_coverage,
)
from greensink.scenario.files import RASTER_KEYS, SCENARIO_KEYS

CRS = "EPSG:32651"
X0, Y0 = 500000.3, 3500090.7  # the grid's top-left corner, off the metre lattice
GRID = Grid(crs=CRS, transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0), width=11, height=9)
SIZE = 4
TYPES = ["G1", "G2", "XG"]
TH = Thresholds(ndvi_vegetation=0.2, ndvi_shrub=0.35, ndvi_tree=0.5, ndvi_soil=0.05, ndvi_full=0.85)
YEARS = [2024]


def box(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    """A rectangle over grid columns c0..c1 and rows r0..r1 (fractional pixel coordinates)."""
    return shapely.box(X0 + 10 * c0, Y0 - 10 * r1, X0 + 10 * c1, Y0 - 10 * r0)


def landscape() -> Landscape:
    """G1 over columns 0-4.5 (all rows), XG over columns 7-9 of rows 5-8, bare elsewhere; NDVI 0.6 on green, 0.1
    bare, varied by a fixed pattern, NaN at (2, 8) and (6, 3); canopy where NDVI >= 0.5."""
    rows, cols = GRID.shape
    g1 = coverage_raster([box(0, 0, 4.5, 9)], GRID.transform, GRID.shape)
    xg = coverage_raster([box(7, 5, 9, 9)], GRID.transform, GRID.shape)
    green = np.maximum(g1, xg)
    pattern = (np.arange(rows * cols).reshape(rows, cols) % 7) * 0.01
    ndvi = (0.1 + 0.5 * green + pattern).astype(np.float32)
    ndvi[2, 8] = np.nan
    ndvi[6, 3] = np.nan
    veg = (ndvi >= 0.2).astype(np.float32)
    rasters = {"ndvi": ndvi, "fvc": np.clip((ndvi - 0.05) / 0.8, 0, 1).astype(np.float32),
               "canopy": (ndvi >= 0.5).astype(np.float32), "height": np.full(GRID.shape, np.nan, np.float32),
               "vegetation": veg, "tree_shrub": (ndvi >= 0.35).astype(np.float32)}
    fractions = np.stack([g1, np.zeros_like(g1), xg]).astype(np.float32)
    gs = gpd.GeoDataFrame({"type": ["G1", "XG"]}, geometry=[box(0, 0, 4.5, 9), box(7, 5, 9, 9)], crs=CRS)
    return Landscape(rasters=rasters, fractions=fractions, types=TYPES, greenspace=gs, type_column="type")


CHANGES = [  # (config entry, polygon): each crosses a tile edge (columns 4, 8; rows 4, 8) inside a pixel
    ({"kind": "greenspace", "path": "park.gpkg", "type": "G2", "state": {"ndvi": 0.7, "density_t_ha": 35}},
     box(5.5, 1.25, 8.5, 4.5)),
    ({"kind": "conversion", "path": "convert.gpkg", "from": "G1", "to": "G2"}, box(2.5, 3.5, 6, 6.75)),
    ({"kind": "construction", "path": "build.gpkg"}, box(3.25, 7.5, 9.5, 9)),
    ({"kind": "planting", "path": "trees.gpkg", "canopy_share_pct": 40, "type": "XG"}, box(9.5, 0, 11, 8.25)),
]


def plan_entry() -> dict:
    return {"name": "plan", "changes": [c for c, _ in CHANGES]}


def the_plan():
    (sc,) = scenarios({"years": YEARS, "scenarios": [plan_entry()]})
    return sc


def layers() -> list[np.ndarray]:
    return [np.array([g], dtype=object) for _, g in CHANGES]


def window(base: Landscape, tile) -> Landscape:
    return Landscape(rasters={k: v[tile.rows, tile.cols] for k, v in base.rasters.items()},
                     fractions=base.fractions[:, tile.rows, tile.cols], types=base.types, greenspace=base.greenspace,
                     type_column=base.type_column)


def test_the_tiles_burn_equals_the_whole_grid_bit_for_bit():
    base, sc = landscape(), the_plan()
    whole = burn(base, sc, layers(), GRID, TH)
    plan = plan_burn(base, sc, layers(), TH)
    tiles = GRID.tiles(SIZE)
    assert {t.shape for t in tiles} == {(4, 4), (4, 3), (1, 4), (1, 3)}
    for t in tiles:
        part = burn_window(window(base, t), plan, lambda geoms, t=t: window_coverage(geoms, GRID, t))
        for name in whole.rasters:
            assert part.rasters[name].tobytes() == whole.rasters[name][t.rows, t.cols].tobytes(), (t.id, name)
        assert part.fractions.tobytes() == whole.fractions[:, t.rows, t.cols].tobytes(), t.id
        assert part.changed.tobytes() == whole.changed[t.rows, t.cols].tobytes(), t.id
        assert part.last.tobytes() == whole.last[t.rows, t.cols].tobytes(), t.id
    assert whole.types == ["G1", "G2", "XG", "G2_plan1"]
    # by hand. The park (pseudo-type G2_plan1) over columns 5.5-8.5, rows 1.25-4.5: pixel (1, 6) 0.75 of it, (2, 6)
    # wholly (NDVI 0.75 × 0.7 + 0.25 × the baseline, the state 0.7 outright), (4, 8) at a tile corner 0.25; (2, 8)
    # half, but unobserved: it stays NaN
    f, r, b = whole.fractions, whole.rasters, base.rasters
    assert f[3, 1, 6] == pytest.approx(0.75) and f[3, 2, 6] == 1.0 and f[3, 4, 8] == pytest.approx(0.25)
    assert r["ndvi"][1, 6] == pytest.approx(0.75 * 0.7 + 0.25 * float(b["ndvi"][1, 6]), rel=1e-6)
    assert r["ndvi"][2, 6] == np.float32(0.7)
    assert whole.changed[2, 8] == pytest.approx(0.5) and np.isnan(r["ndvi"][2, 8]) and np.isnan(r["ndvi"][6, 3])
    # the conversion retypes G1 (columns 0-4.5) inside columns 2.5-6, rows 3.5-6.75: pixel (4, 3) wholly G1 → G2,
    # pixel (4, 4) half (columns 4-4.5) → half G2; the vegetation is the same, under another type's model
    assert f[0, 4, 3] == 0.0 and f[1, 4, 3] == pytest.approx(1.0)
    assert f[1, 4, 4] == pytest.approx(0.5) and f[0, 4, 4] == 0.0
    assert r["ndvi"][4, 3] == b["ndvi"][4, 3]
    # construction over columns 3.25-9.5, rows 7.5-9: pixel (8, 4), wholly built, was half G1: no type left; (7, 4)
    # loses rows 7.5-8 of its G1 half: 0.5 × 0.5 = 0.25 left
    assert f[:, 8, 4].sum() == 0.0 and f[0, 7, 4] == pytest.approx(0.25)
    assert whole.changed[8, 4] == 1.0 and whole.changed[7, 4] == pytest.approx(0.5)
    # the planting's 40 % over columns 9.5-11, rows 0-8.25: pixel (0, 10), bare and untyped, gets 0.4 of XG;
    # pixel (0, 9), half covered, 0.2
    assert f[2, 0, 10] == pytest.approx(0.4) and f[2, 0, 9] == pytest.approx(0.2)
    assert whole.last[0, 10] == 3 and whole.last[0, 0] == -1


def test_window_coverage_is_the_whole_grids_coverage_bit_for_bit():
    grid = Grid(crs=CRS, transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0), width=67, height=53)
    # by hand: a box over columns 10.5-12.25, rows 3-4 covers (3, 10) 0.5, (3, 11) 1, (3, 12) 0.25
    t = grid.tiles(11)[1]  # columns 11-21 of rows 0-10
    got = window_coverage([shapely.box(X0 + 105, Y0 - 40, X0 + 122.5, Y0 - 30)], grid, t)
    assert got[3, 0] == 1.0 and got[3, 1] == np.float32(0.25) and got.sum() == np.float32(1.25)
    rng = np.random.default_rng(13)  # a case where a tile's own coverage differs (the control below)
    polys = []
    for _ in range(25):  # star-shaped polygons of 1.5-12 pixels' radius, many crossing tile edges and the grid's edge
        cx, cy = X0 + rng.uniform(-50, 720), Y0 - rng.uniform(-50, 580)
        angles, radii = np.sort(rng.uniform(0, 2 * np.pi, 9)), rng.uniform(15, 120, 9)
        polys.append(shapely.Polygon(np.c_[cx + radii * np.cos(angles), cy + radii * np.sin(angles)]).buffer(0))
    parts = list(shapely.get_parts(shapely.union_all(polys)))
    whole = coverage_raster(parts, grid.transform, grid.shape)
    own = 0
    for t in grid.tiles(16):
        got = window_coverage(parts, grid, t)
        assert got.tobytes() == whole[t.rows, t.cols].tobytes(), t.id
        # the control: the coverage computed on the tile's own pixels (tile_coverage_matrix) rounds otherwise
        m = tile_coverage_matrix(parts, grid, t)
        local = np.minimum(np.bincount(m.indices, weights=m.data, minlength=t.height * t.width), 1.0)
        own += int((local.reshape(t.shape).astype(np.float32) != whole[t.rows, t.cols]).sum())
    assert own >= 1
    assert ((whole > 0) & (whole < 1)).sum() > 100  # many partial pixels, not only 0 and 1
    assert window_coverage([], grid, grid.tiles(16)[0]).sum() == 0.0


# ----------------------------------------------------------------------------- the rule runners on files


def write_case(tmp: Path) -> dict:
    """The hand-built city as the files of a run: the baseline year's rasters, types, models and change layers."""
    from greensink.vegetation import CLASS_GRASS, CLASS_SHRUB, CLASS_TREE

    base = landscape()
    r = base.rasters
    paths = {k: io.write_raster(tmp / f"{k}.tif", r[k], GRID, band_names=[k])
             for k in ("ndvi", "fvc", "canopy", "height", "vegetation")}
    classes = np.where(r["ndvi"] >= 0.5, CLASS_TREE, np.where(r["ndvi"] >= 0.35, CLASS_SHRUB,
                                                                np.where(r["ndvi"] >= 0.2, CLASS_GRASS, 0)))
    classes = np.where(np.isnan(r["ndvi"]), np.nan, classes).astype(np.float32)
    paths["classes"] = io.write_raster(tmp / "vegetation_class.tif", classes, GRID, band_names=["class"])
    paths["fractions"] = io.write_raster(tmp / "fractions.tif", base.fractions, GRID, band_names=TYPES)
    paths["greenspace"] = io.write_table(tmp / "greenspace.gpkg", base.greenspace, csv=False)
    changes = []
    for entry, geom in CHANGES:
        path = tmp / entry["path"]
        io.write_table(path, gpd.GeoDataFrame({"id": [1]}, geometry=[geom], crs=CRS), csv=False)
        changes.append(str(path))
    entry = {"name": "plan", "changes": [{**c, "path": p} for (c, _), p in zip(CHANGES, changes, strict=True)]}
    stats = io.write_json(tmp / "vegetation.json", {"ndvi_soil": TH.ndvi_soil, "ndvi_full": TH.ndvi_full})
    from test_scenarios import hand_models

    models = io.write_json(tmp / "models.json", hand_models(TYPES))
    grid_json = tmp / "grid.json"
    grid_json.write_text(json.dumps(GRID.to_dict()), encoding="utf-8")
    return {"paths": paths, "changes": changes, "entry": entry, "stats": stats, "models": models, "grid": grid_json}


def test_tiled_rules_write_the_untiled_files(tmp_path):
    from greensink.scenario.run import (
        run_scenario_inputs,
        run_scenario_inputs_mosaic,
        run_scenario_inputs_tile,
        run_scenario_plan,
    )

    case = write_case(tmp_path)
    veg = {"ndvi_vegetation": TH.ndvi_vegetation, "ndvi_shrub": TH.ndvi_shrub, "ndvi_tree": TH.ndvi_tree}
    kw = {"scenario": case["entry"], "years": YEARS, "types": TYPES, "type_column": "type"}
    whole = tmp_path / "whole"
    whole.mkdir()
    out = {k: whole / f"{k}.tif" for k in SCENARIO_KEYS} | {"greenspace": whole / "greenspace.gpkg"}
    run_scenario_inputs(case["changes"], case["grid"], case["paths"], case["stats"], case["models"], out,
                        whole / "models.json", whole / "inputs.json", typed_land=True, vegetation=veg, **kw)
    tiled = tmp_path / "tiled"
    tiled.mkdir()
    run_scenario_plan(case["changes"], case["grid"], case["paths"], case["stats"], case["models"],
                      tiled / "greenspace.gpkg", tiled / "models.json", tiled / "inputs.json", tiled / "plan.json",
                      typed_land=True, vegetation=veg, **kw)
    tiles = GRID.tiles(SIZE)
    files = {k: [tiled / f"{k}_{t.id}.tif" for t in tiles] for k in RASTER_KEYS}
    rasters = {k: v for k, v in case["paths"].items() if k != "greenspace"}
    for i, t in enumerate(tiles):
        run_scenario_inputs_tile(case["grid"], rasters, tiled / "plan.json", {k: files[k][i] for k in RASTER_KEYS},
                                 tile_id=t.id, size_px=SIZE, **kw)
        with rasterio.open(files["ndvi"][i]) as src:
            assert src.transform == GRID.subgrid(t).transform
    changed_ha = run_scenario_inputs_mosaic(files, case["grid"], {k: tiled / f"{k}.tif" for k in RASTER_KEYS},
                                            size_px=SIZE)
    for k in RASTER_KEYS:
        assert (tiled / f"{k}.tif").read_bytes() == out[k].read_bytes(), k
    for name in ("inputs.json", "models.json"):
        assert (tiled / name).read_text() == (whole / name).read_text(), name
    a, b = io.read_vector(tiled / "greenspace.gpkg"), io.read_vector(whole / "greenspace.gpkg")
    assert a.equals(b) and set(a["type"]) == {"G1", "G2", "XG"}
    # independent of both: the changed share summed over the whole grid's changes band × 0.01 ha
    assert changed_ha == pytest.approx(float(io.read_raster(out["changes"], bands=1).sum(dtype=np.float64)) * 0.01)
    assert changed_ha > 0


def test_a_plan_of_other_changes_is_refused(tmp_path):
    from greensink.errors import InputDataError
    from greensink.scenario.files import read_plan, write_plan

    base, sc = landscape(), the_plan()
    write_plan(tmp_path / "plan.json", plan_burn(base, sc, layers(), TH))
    (other,) = scenarios({"years": YEARS, "scenarios": [{"name": "plan", "changes": [c for c, _ in CHANGES[:2]]}]})
    with pytest.raises(InputDataError, match=r"plan\.json.*Delete the scenario's tiles folder"):
        read_plan(tmp_path / "plan.json", other, CRS)


# ----------------------------------------------------------------------------- the scenario's carbon map


def test_scenario_carbon_tiles_and_their_mosaic_equal_the_whole_map(tmp_path):
    from greensink.scenario.run import run_scenario_carbon, run_scenario_carbon_mosaic
    from test_tiles_stages import carbon_case

    models, preds, fpath, sepath, types = carbon_case(tmp_path)
    unc = {"residual": {"enabled": True}, "ndvi": {"enabled": True}, "edges": {"enabled": True, "position_sd_m": 1.5}}
    kw = {"types": types, "year": 2024, "seed": 4, "uncertainty": unc}
    whole, whole_json = tmp_path / "whole" / "carbon.tif", tmp_path / "whole" / "carbon.json"
    ref = run_scenario_carbon(models, preds, fpath, sepath, whole, whole_json, **kw)
    grid = io.read_grid(fpath)
    size = 8
    tiles = grid.tiles(size)
    paths = [tmp_path / "tiles" / f"carbon_{t.id}.tif" for t in tiles]
    jsons = [tmp_path / "tiles" / f"carbon_{t.id}.json" for t in tiles]
    for t, p, j in zip(tiles, paths, jsons, strict=True):
        run_scenario_carbon(models, preds, fpath, sepath, p, j, tile_id=t.id, size_px=size, **kw)
        with rasterio.open(p) as src, rasterio.open(whole) as full:
            win = rasterio.windows.Window(t.col_off, t.row_off, t.width, t.height)
            assert src.read().tobytes() == full.read(window=win).tobytes(), t.id
    grid_json = tmp_path / "grid.json"
    grid_json.write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    out, out_json = tmp_path / "tiled" / "carbon.tif", tmp_path / "tiled" / "carbon.json"
    got = run_scenario_carbon_mosaic(paths, jsons, grid_json, out, out_json, size_px=size)
    assert out.read_bytes() == whole.read_bytes()
    assert out_json.read_text() == whole_json.read_text() and got == json.loads(json.dumps(ref))
    est = io.read_raster(out, bands=1).astype(np.float64)
    assert got["total_t"] == pytest.approx(np.nansum(est) * 0.01, rel=1e-12)
    # the band is not the estimate: the draws' interval is there (exact percentiles of the noisy draws)
    lo, hi = io.read_raster(out, bands=2), io.read_raster(out, bands=3)
    assert np.nanmax(hi - lo) > 0


@pytest.mark.parametrize("method", ["tabulated", "exact"])
def test_scenario_carbon_takes_the_configured_pixel_interval(tmp_path, method):
    """The scenario's map of unchanged inputs is the baseline's map (rule carbon, run_carbon) byte for byte under
    either uncertainty.pixel_interval: before, the scenario always took exact percentiles of its draws while the
    baseline took the configured (default tabulated) band, so an unchanged pixel's band moved in a scenario."""
    from greensink.carbon import run_carbon
    from greensink.scenario.run import run_scenario_carbon
    from test_tiles_stages import carbon_case

    models, preds, fpath, sepath, types = carbon_case(tmp_path)
    unc = {"residual": {"enabled": True}, "ndvi": {"enabled": True}, "edges": {"enabled": True, "position_sd_m": 1.5},
           "pixel_interval": method}
    kw = {"types": types, "year": 2024, "seed": 4, "uncertainty": unc}
    base, base_json = tmp_path / "base" / "carbon.tif", tmp_path / "base" / "carbon.json"
    scen, scen_json = tmp_path / "scen" / "carbon.tif", tmp_path / "scen" / "carbon.json"
    run_carbon(models, preds, fpath, sepath, base, base_json, **kw)
    run_scenario_carbon(models, preds, fpath, sepath, scen, scen_json, **kw)
    assert io.read_raster(scen).tobytes() == io.read_raster(base).tobytes()
    # and the two methods give different bands here (so the test can tell which one ran)
    other = "exact" if method == "tabulated" else "tabulated"
    alt, alt_json = tmp_path / "alt" / "carbon.tif", tmp_path / "alt" / "carbon.json"
    run_scenario_carbon(models, preds, fpath, sepath, alt, alt_json, **{**kw, "uncertainty": {**unc, "pixel_interval": other}})
    assert io.read_raster(alt, bands=2).tobytes() != io.read_raster(scen, bands=2).tobytes()


# ----------------------------------------------------------------------------- resources of the tile jobs


@pytest.mark.parametrize(("rule", "mpx", "peak_mib"), [
    # benchmarks/README.md, tile_scenario.py at 512² in 256-px tiles and 2048² in 1024-px tiles (VmHWM of each job)
    ("scenario_plan", 512**2 / 1e6, 293), ("scenario_plan", 2048**2 / 1e6, 538),
    ("scenario_inputs_tile", 256**2 / 1e6, 296), ("scenario_inputs_tile", 1024**2 / 1e6, 440),
    ("scenario_inputs_mosaic", 2048**2 / 1e6, 532),
    ("scenario_carbon_tile", 256**2 / 1e6, 622), ("scenario_carbon_tile", 1024**2 / 1e6, 760),
    ("scenario_carbon_mosaic", 2048**2 / 1e6, 423),
])
def test_scenario_tile_jobs_request_their_measured_peak(rule, mpx, peak_mib):
    from greensink import resources

    assert resources.mem_mb(rule, mpx) >= peak_mib
    assert resources.mem_mb(rule, mpx) <= 2 * peak_mib + 1000  # listed, not the whole-grid default's far more
    assert rule in resources.COSTS


def test_a_scenario_tile_job_asks_for_its_tile():
    from greensink import resources

    # by hand: scenario_carbon_tile on a 2048-px tile (4.194304 Mpx): (620 + 140 × 4.194304) × 1.5 = 1810.7 → 1811 MiB,
    # whatever the grid; the untiled scenario_carbon of a 120 Mpx grid is the whole-grid default (800 + 200 × 120) × 1.5
    assert resources.mem_mb("scenario_carbon_tile", 2048**2 / 1e6) == 1811
    assert resources.mem_mb("scenario_carbon", 120.0) == 37200
