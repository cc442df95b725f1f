"""Tiled per-pixel stages (tiles.size_px): each tile job's products equal the window of the whole-grid products,
and the mosaic of the tiles is the untiled rule's file (same pixels, band names, tags, codec: the same bytes).

Small hand-built grids on real GeoTIFFs, cut into uneven tiles (the last row and column of tiles narrower).
The untiled runner (run_vegetation, run_carbon) is the reference; the tiled path is the endmembers step, one
job per tile and the mosaic, called as the rules call them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from greensink import io
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.vegetation import (
    PRODUCTS,
    fvc_endmembers_file,
    ndvi,
    run_vegetation,
    run_vegetation_endmembers,
    run_vegetation_mosaic,
    run_vegetation_tile,
)

NAN = np.nan
X0, Y1 = 500_000.0, 3_600_000.0
SHAPE = (37, 29)
SIZE_PX = 16  # tiles of 16 × 16, 16 × 13, 5 × 16, 5 × 13: 3 rows × 2 columns
FILES = {"ndvi": "ndvi.tif", "fvc": "fvc.tif", "vegetation": "vegetation.tif", "canopy": "canopy.tif",
         "classes": "vegetation_class.tif", "height": "height.tif"}
SETTINGS = {"fvc_percentiles": [5, 95], "ndvi_soil": None, "ndvi_full": None, "ndvi_vegetation": 0.2,
            "ndvi_shrub": 0.35, "ndvi_tree": 0.5, "chm": None}


def whole_grid(shape=SHAPE) -> Grid:
    return Grid("EPSG:32651", Affine(10.0, 0.0, X0, 0.0, -10.0, Y1), width=shape[1], height=shape[0])


def make_composite(tmp_path: Path, shape=SHAPE) -> tuple[Path, np.ndarray, np.ndarray]:
    """A composite whose NDVI rises from the top-left (bare) to the bottom-right (green), so each tile's own
    NDVI percentiles differ from the scene's; a never-clear hole across a tile corner (rows 14–18, cols 12–17)."""
    rng = np.random.default_rng(11)
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    green = (rows + cols) / (shape[0] + shape[1])
    red = (0.25 - 0.2 * green + rng.uniform(-0.02, 0.02, shape)).astype(np.float32)
    nir = (0.2 + 0.35 * green + rng.uniform(-0.02, 0.02, shape)).astype(np.float32)
    red[14:19, 12:18] = NAN
    nir[14:19, 12:18] = NAN
    count = np.where(np.isnan(red), 0, 3).astype(np.float32)
    path = io.write_raster(tmp_path / "composite.tif", np.stack([red, nir, count]), whole_grid(shape),
                           band_names=["red", "nir", "valid_obs_count"])
    return path, red, nir


def run_tiled_vegetation(composite: Path, tmp_path: Path, settings: dict, chm=()) -> tuple[dict, dict]:
    """The tiled rules: vegetation_endmembers, vegetation_tile per tile, vegetation_mosaic; returns (the
    mosaic's output paths, {tile id: the tile's output paths})."""
    grid = io.read_grid(composite)
    grid_json = tmp_path / "grid.json"
    grid_json.write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    ends = tmp_path / "tiled" / "tiles" / "fvc_endmembers.json"
    run_vegetation_endmembers(composite, ends, settings=settings, size_px=SIZE_PX, block_rows=7)
    tiles = grid.tiles(SIZE_PX)
    tile_out = {t.id: {k: tmp_path / "tiled" / "tiles" / f"{Path(n).stem}_{t.id}.tif" for k, n in FILES.items()}
                for t in tiles}
    for t in tiles:
        run_vegetation_tile(composite, ends, tile_out[t.id], tile_id=t.id, size_px=SIZE_PX, settings=settings,
                            block_rows=7, chm=chm)
    out = {k: tmp_path / "tiled" / n for k, n in FILES.items()} | {"stats": tmp_path / "tiled" / "vegetation.json"}
    run_vegetation_mosaic({k: [tile_out[t.id][k] for t in tiles] for k in PRODUCTS}, ends, grid_json, out,
                          size_px=SIZE_PX, settings=settings, block_rows=7, chm=chm)
    return out, tile_out


def run_untiled_vegetation(composite: Path, tmp_path: Path, settings: dict, chm=()) -> dict:
    out = {k: tmp_path / "whole" / n for k, n in FILES.items()} | {"stats": tmp_path / "whole" / "vegetation.json"}
    run_vegetation(composite, out, settings=settings, block_rows=7, chm=chm)
    return out


def assert_tiles_are_windows(whole: dict, tile_out: dict, grid: Grid) -> None:
    for t in grid.tiles(SIZE_PX):
        for k in PRODUCTS:
            with rasterio.open(tile_out[t.id][k]) as src, rasterio.open(whole[k]) as ref:
                assert (src.height, src.width) == t.shape and src.transform == grid.subgrid(t).transform
                assert src.descriptions == ref.descriptions and src.tags() == ref.tags()
                window = rasterio.windows.Window(t.col_off, t.row_off, t.width, t.height)
                # bit for bit (NaN where NaN): tobytes compares the float32 patterns
                assert src.read().tobytes() == ref.read(window=window).tobytes(), (t.id, k)


def test_vegetation_tiles_and_their_mosaic_equal_the_whole_grid(tmp_path):
    composite, red, nir = make_composite(tmp_path)
    grid = whole_grid()
    whole = run_untiled_vegetation(composite, tmp_path, SETTINGS)
    mosaic, tile_out = run_tiled_vegetation(composite, tmp_path, SETTINGS)
    assert [t.shape for t in grid.tiles(SIZE_PX)] == [(16, 16), (16, 13), (16, 16), (16, 13), (5, 16), (5, 13)]
    assert_tiles_are_windows(whole, tile_out, grid)
    for k in PRODUCTS:  # the mosaic is the untiled rule's file, byte for byte
        assert mosaic[k].read_bytes() == whole[k].read_bytes(), k
    assert json.loads(mosaic["stats"].read_text()) == json.loads(whole["stats"].read_text())

    # independent check: the endmembers are the scene's 5th / 95th NDVI percentiles (numpy, to the histogram's
    # 1e-4), not a tile's own; FVC of a tile pixel by hand from its red and nir with them
    nd = ndvi(red, nir)
    finite = nd[np.isfinite(nd)].astype(np.float64)
    soil, full = np.percentile(finite, 5), np.percentile(finite, 95)
    stats = json.loads(mosaic["stats"].read_text())
    assert stats["ndvi_soil"] == pytest.approx(soil, abs=1e-4) and stats["ndvi_full"] == pytest.approx(full, abs=1e-4)
    corner = nd[:16, :16][np.isfinite(nd[:16, :16])]  # the bare top-left tile alone has other percentiles
    assert abs(np.percentile(corner, 95) - full) > 0.05
    t = grid.tile("r002c001", SIZE_PX)  # the 5 × 13 corner tile
    fvc_tile = io.read_raster(tile_out[t.id]["fvc"])
    want = np.clip((nd[t.rows, t.cols].astype(np.float64) - stats["ndvi_soil"])
                   / (stats["ndvi_full"] - stats["ndvi_soil"]), 0, 1)
    np.testing.assert_allclose(fvc_tile, want, rtol=0, atol=1e-6)
    # never-clear pixels stay NaN, not 0, in every product of the tile across the hole
    hole = io.read_raster(tile_out["r000c000"]["fvc"])[14:16, 12:16]
    assert np.isnan(hole).all()
    # pixels: 37 × 29 minus the 5 × 6 hole; the endmembers step saw every one of them
    assert json.loads((tmp_path / "tiled/tiles/fvc_endmembers.json").read_text())["ndvi_pixels"] == 37 * 29 - 30


def test_given_endmembers_are_used_without_reading_the_scene(tmp_path):
    composite, _, _ = make_composite(tmp_path)
    given = {**SETTINGS, "ndvi_soil": 0.05, "ndvi_full": 0.8}
    found = fvc_endmembers_file(composite, given, size_px=SIZE_PX)
    assert found == {"ndvi_soil": 0.05, "ndvi_full": 0.8, "ndvi_pixels": 0}
    whole = run_untiled_vegetation(composite, tmp_path, given)
    mosaic, _ = run_tiled_vegetation(composite, tmp_path, given)
    for k in PRODUCTS:
        assert mosaic[k].read_bytes() == whole[k].read_bytes(), k
    assert json.loads(mosaic["stats"].read_text()) == json.loads(whole["stats"].read_text())


def write_chm(tmp_path: Path, shape=SHAPE) -> tuple[Path, np.ndarray]:
    """A 2 m CHM (nodata −1) over grid rows 0–19 only, with a nodata patch straddling the tile boundary at
    row 16 and column 16 (grid rows 14–17, cols 14–18), so tiles hold both CHM and NDVI-fallback pixels."""
    rng = np.random.default_rng(5)
    h = rng.uniform(0.0, 6.0, (100, shape[1] * 5)).astype(np.float32)
    h[70:90, 70:95] = -1.0
    path = tmp_path / "chm.tif"
    with rasterio.open(path, "w", driver="GTiff", width=h.shape[1], height=h.shape[0], count=1, dtype="float32",
                       crs="EPSG:32651", transform=Affine(2.0, 0.0, X0, 0.0, -2.0, Y1), nodata=-1.0) as dst:
        dst.write(h, 1)
    return path, h


def test_vegetation_tiles_with_a_canopy_height_model_equal_the_whole_grid(tmp_path):
    composite, _, _ = make_composite(tmp_path)
    chm, h = write_chm(tmp_path)
    settings = {**SETTINGS, "chm": {"path": "unused: the rule's input replaces it", "tree_height_m": 2.0,
                                    "shrub_height_m": 0.5}}
    whole = run_untiled_vegetation(composite, tmp_path, settings, chm=[chm])
    mosaic, tile_out = run_tiled_vegetation(composite, tmp_path, settings, chm=[chm])
    assert_tiles_are_windows(whole, tile_out, whole_grid())
    for k in PRODUCTS:
        assert mosaic[k].read_bytes() == whole[k].read_bytes(), k
    got, ref = json.loads(mosaic["stats"].read_text()), json.loads(whole["stats"].read_text())
    assert got == ref
    # the fallback count by hand: observed pixels with no valid CHM under them (rows 20–36 and the patch)
    valid = (h != -1.0).reshape(20, 5, SHAPE[1], 5).any(axis=(1, 3))
    nd = io.read_raster(whole["ndvi"])
    no_chm = np.vstack([~valid, np.ones((SHAPE[0] - 20, SHAPE[1]), bool)])
    assert got["chm"]["fallback_pixels"] == int((np.isfinite(nd) & no_chm).sum())
    assert 0 < got["chm"]["fallback_pixels"] < np.isfinite(nd).sum()


def test_mosaic_refuses_a_tile_of_another_grid(tmp_path):
    composite, _, _ = make_composite(tmp_path)
    _, tile_out = run_tiled_vegetation(composite, tmp_path, SETTINGS)
    grid = whole_grid()
    tiles = grid.tiles(SIZE_PX)
    paths = {k: [tile_out[t.id][k] for t in tiles] for k in PRODUCTS}
    paths["fvc"][1] = paths["fvc"][0]  # the first tile's file in the second tile's place
    grid_json = tmp_path / "grid.json"
    with pytest.raises(InputDataError, match=r"fvc_r000c000\.tif: is not tile r000c001"):
        run_vegetation_mosaic(paths, tmp_path / "tiled/tiles/fvc_endmembers.json", grid_json,
                              {k: tmp_path / "bad" / n for k, n in FILES.items()} | {"stats": tmp_path / "bad/v.json"},
                              size_px=SIZE_PX, settings=SETTINGS)
    assert not (tmp_path / "bad" / "fvc.tif").exists()


# ----------------------------------------------------------------------------- carbon


def carbon_case(tmp_path: Path, rows: int = 23, cols: int = 30):
    """The tabulated-interval tests' five types (four curves fitted to plots, one table type; whole, edge and
    mixed pixels, NaN NDVI) with a residual field, NDVI error and edge error all on."""
    import dataclasses

    from greensink.uncertainty import ResidualField
    from test_carbon_tabulated import TYPES, _files, _models, _rasters

    frac, nd, se = _rasters(rows, cols)
    fpath, preds, sepath = _files(tmp_path, frac, nd, se)
    field = ResidualField(nugget=0.02, psill=0.015, range_m=150.0, n_plots=80, method="test")
    models = io.write_json(tmp_path / "models.json", {**_models(), "residual_field": dataclasses.asdict(field)})
    return models, preds, fpath, sepath, TYPES


@pytest.mark.parametrize("method", ["tabulated", "exact"])
def test_carbon_tiles_and_their_mosaic_equal_the_whole_grid(tmp_path, method):
    from greensink.carbon import run_carbon, run_carbon_mosaic

    models, preds, fpath, sepath, types = carbon_case(tmp_path)
    unc = {"pixel_interval": method, "residual": {"enabled": True}, "ndvi": {"enabled": True},
           "edges": {"enabled": True, "position_sd_m": 1.5}}
    kw = {"types": types, "year": 2024, "seed": 4, "uncertainty": unc}
    whole, whole_json = tmp_path / "whole" / "carbon.tif", tmp_path / "whole" / "carbon.json"
    ref = run_carbon(models, preds, fpath, sepath, whole, whole_json, **kw)
    grid = io.read_grid(fpath)
    size = 8  # 3 × 4 tiles, the last row 7 and the last column 6 pixels
    tiles = grid.tiles(size)
    assert {t.shape for t in tiles} == {(8, 8), (8, 6), (7, 8), (7, 6)}
    paths = [tmp_path / "tiles" / f"carbon_{t.id}.tif" for t in tiles]
    jsons = [tmp_path / "tiles" / f"carbon_{t.id}.json" for t in tiles]
    for t, p, j in zip(tiles, paths, jsons, strict=True):
        part = run_carbon(models, preds, fpath, sepath, p, j, tile_id=t.id, size_px=size, **kw)
        with rasterio.open(p) as src, rasterio.open(whole) as full:
            assert src.transform == grid.subgrid(t).transform and src.descriptions == full.descriptions
            window = rasterio.windows.Window(t.col_off, t.row_off, t.width, t.height)
            # the window of the whole map, bit for bit: the exact path's draws keyed by the whole grid's pixels
            assert src.read().tobytes() == full.read(window=window).tobytes(), t.id
        assert part["typed_pixels"] == int((io.read_raster(fpath)[:, t.rows, t.cols].sum(axis=0) > 0).sum())
    grid_json = tmp_path / "grid.json"
    grid_json.write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    out, out_json = tmp_path / "tiled" / "carbon.tif", tmp_path / "tiled" / "carbon.json"
    got = run_carbon_mosaic(paths, jsons, grid_json, out, out_json, size_px=size)
    assert out.read_bytes() == whole.read_bytes()
    assert out_json.read_text() == whole_json.read_text()
    assert got == json.loads(json.dumps(ref))
    # independent of both paths: the total is the estimate band's sum × 0.01 ha, NaN (unobserved) left out
    est = io.read_raster(out, bands=1).astype(np.float64)
    assert np.isnan(est).any()
    assert got["total_t"] == pytest.approx(np.nansum(est) * 0.01, rel=1e-12)


def test_exact_draws_of_a_tile_differ_from_a_grid_of_the_tiles_size(tmp_path):
    """The control: a tile's window run as if it were a grid of its own (its pixels keyed from 0) gets other
    draws, so the equality above tests the global keys, not a band that ignores them."""
    from greensink.carbon import run_carbon

    models, preds, fpath, sepath, types = carbon_case(tmp_path)
    unc = {"pixel_interval": "exact", "residual": {"enabled": True}, "ndvi": {"enabled": True}, "edges": {"enabled": False}}
    kw = {"types": types, "year": 2024, "seed": 4, "uncertainty": unc}
    run_carbon(models, preds, fpath, sepath, tmp_path / "a.tif", tmp_path / "a.json", tile_id="r001c001", size_px=8, **kw)
    grid = io.read_grid(fpath)
    t = grid.tile("r001c001", 8)
    sub = tmp_path / "sub"
    sub.mkdir()
    window = {name: io.read_raster(path) for name, path in (("f", fpath), ("n", preds["ndvi"]), ("s", sepath))}
    g = grid.subgrid(t)
    f = io.write_raster(sub / "fractions.tif", window["f"][:, t.rows, t.cols], g, band_names=types)
    n = io.write_raster(sub / "ndvi.tif", window["n"][t.rows, t.cols], g, band_names=["ndvi"])
    s = io.write_raster(sub / "ndvi_se.tif", window["s"][t.rows, t.cols], g, band_names=["ndvi_se"])
    run_carbon(models, {"ndvi": n}, f, s, sub / "b.tif", sub / "b.json", **kw)
    a, b = io.read_raster(tmp_path / "a.tif"), io.read_raster(sub / "b.tif")
    np.testing.assert_array_equal(a[0], b[0])  # the estimate is the pixel's alone
    assert not np.array_equal(a[1:], b[1:], equal_nan=True)


# ----------------------------------------------------------------------------- NDVI standard error


def test_ndvi_se_tiles_and_their_mosaic_equal_the_whole_grid(tmp_path):
    from greensink.uncertainty.ndvi_se import run_ndvi_se, run_ndvi_se_mosaic, run_ndvi_se_tile

    composite, _, _ = make_composite(tmp_path)
    grid = whole_grid()
    run_ndvi_se(composite, tmp_path / "whole.tif", obs_sd=0.03, method="median")
    tiles = grid.tiles(SIZE_PX)
    paths = [tmp_path / "tiles" / f"ndvi_se_{t.id}.tif" for t in tiles]
    for t, p in zip(tiles, paths, strict=True):
        run_ndvi_se_tile(composite, p, tile_id=t.id, size_px=SIZE_PX, obs_sd=0.03, method="median")
    grid_json = tmp_path / "grid.json"
    grid_json.write_text(json.dumps(grid.to_dict()), encoding="utf-8")
    run_ndvi_se_mosaic(paths, grid_json, tmp_path / "tiled.tif", size_px=SIZE_PX)
    assert (tmp_path / "tiled.tif").read_bytes() == (tmp_path / "whole.tif").read_bytes()
    # by hand: 3 clear observations → 0.03 × 1.2533 / √3; never clear (the hole) → NaN, not 0
    se = io.read_raster(paths[0])
    assert se[0, 0] == pytest.approx(0.03 * np.sqrt(np.pi / 2) / np.sqrt(3), rel=1e-6)
    assert np.isnan(se[14:16, 12:16]).all()


def test_interval_table_nodes_do_not_depend_on_which_nodes_are_computed_together():
    """A tile asks the tabulated interval's table for other nodes first than the whole grid does: every node's
    draws' mean and spread must be the same bits whether it is computed alone or in a batch (numpy reduces a
    transposed block in another order than a contiguous row)."""
    import dataclasses

    from greensink.carbon import IntervalTable
    from greensink.uncertainty import Noise, ResidualField, noise_spec
    from test_carbon_tabulated import TYPES, _models

    models = {**_models(), "residual_field": dataclasses.asdict(
        ResidualField(nugget=0.02, psill=0.015, range_m=150.0, n_plots=80, method="test"))}
    spec = dataclasses.replace(noise_spec({}, models, seed=1, year=2024, resolution_m=10.0), width=50, height=50)
    table = IntervalTable(models, TYPES, Noise(spec, 200), 90.0)
    nodes = np.arange(0, 380, 7)
    for k in range(len(TYPES)):
        batch = table._draws((k, 0), nodes)
        for j, node in enumerate(nodes):
            alone = table._draws((k, 0), np.array([node]))
            assert alone[2][0] == batch[2][j] and alone[3][0] == batch[3][j], (TYPES[k], node)


# ----------------------------------------------------------------------------- resources of the tile jobs


@pytest.mark.parametrize(("rule", "mpx", "peak_mib"), [
    # benchmarks/README.md, tile_memory.py at 4096² in 1024-px tiles (VmHWM of each job's process)
    ("vegetation_tile", 1024**2 / 1e6, 303), ("vegetation_endmembers", 4096**2 / 1e6, 297),
    ("vegetation_mosaic", 4096**2 / 1e6, 435), ("ndvi_se_tile", 1024**2 / 1e6, 263),
    ("ndvi_se_mosaic", 4096**2 / 1e6, 357), ("carbon_tile", 1024**2 / 1e6, 336), ("carbon_mosaic", 4096**2 / 1e6, 590),
])
def test_tile_jobs_request_their_measured_peak_and_are_not_whole_grid_stages(rule, mpx, peak_mib):
    from greensink import resources

    assert resources.mem_mb(rule, mpx) >= peak_mib
    assert resources.mem_mb(rule, mpx) < resources.mem_mb("aggregate", mpx)  # listed, not the whole-grid default


def test_a_tile_job_asks_for_its_tile_not_the_grid(tmp_path):
    from greensink import resources

    cfg = {"imagery": {"source": "demo"}, "demo": {"extent_m": 50_000}, "resolution": 10, "tiles": {"size_px": 2048}}
    # 5000 × 5000 px grid from the demo extent; a tile job works on 2048² px
    assert resources.job_mpx(cfg, {"year": "2024", "tile": "r000c000"}, tmp_path) == pytest.approx(2048**2 / 1e6)
    assert resources.job_mpx(cfg, {"year": "2024"}, tmp_path) == pytest.approx(25.0)
    # carbon_tile by hand: (600 + 6 × 4.194304) × 1.5 = 937.7 → 938 MiB; the whole-grid carbon (600 + 150) × 1.5 = 1125
    assert resources.mem_mb("carbon_tile", 2048**2 / 1e6) == 938
    assert resources.mem_mb("carbon", 25.0) == 1125
