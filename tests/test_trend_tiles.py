"""Rule trend per tile (issue 14 items 2 and 7): trend_tile jobs on a grid's tiles, gathered by rule trend, give the
untiled rule's outputs.

A hand-built three-year case (2020, 2021, 2024: unequal gaps) on the 23 × 29 grid of tests/test_change_tiles.py,
cut into uneven tiles of 10 px (3 × 3 tiles; the last row 3 px high, the last column 9 px wide), with its three
model types, every error source on (the residual field paired over the years, NDVI error, edges), a cloud in each
year at another place (so each year's zone sums read its fill.json), the type fractions given per year, a parcel
under the first year's cloud (unknown stock that year) and parcels across tile corners (P2 spans the corner of
rows 20 and columns 10 and 20). The untiled reference is rule trend's own runner on the whole grid
(:func:`greensink.trend.run_trend`). Tiled: trend.tif is the untiled file byte for byte, trend.json equal, the
zone tables within rtol 1e-12 (the same terms added in another order: measured largest relative difference 5.6e-14); the tiles' typed area
adds up to Σ coverage × typed share computed here with the whole grid's matrix.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from greensink import io as gio
from greensink.carbon import type_fill
from greensink.carbon.fill import models_digest, write_fill
from greensink.coverage import coverage_matrix, tile_coverage_matrix
from greensink.errors import InputDataError
from greensink.trend import run_trend, theil_sen
from greensink.trend_tiles import level_blocks, parts_identity, run_trend_gather, run_trend_tile
from tables_compare import assert_tables_close
from test_change_tiles import CLOUD0, CLOUD1, GRID, LEVELS, SIZE_PX, TYPES, make_models, make_year, zones

YEARS = [2020, 2021, 2024]
CLOUDS = [CLOUD0, CLOUD1, (slice(15, 23), slice(20, 29))]
PREDICTORS = ["ndvi", "height"]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The inputs on disk, the untiled run and the tiled one (every tile, then the gather)."""
    d = tmp_path_factory.mktemp("trend_tiles")
    grid_json = str(gio.write_json(d / "grid.json", GRID.to_dict()))
    inp = {"fractions": [], "predictors": [], "ndvi_se": [], "models": [], "fills": [], "tables": []}
    z = zones()
    for k, year in enumerate(YEARS):
        m = make_models(k + 1)
        frac, layers, _ = make_year(k + 3, CLOUDS[k], lost=(k == 2))
        inp["models"].append(str(gio.write_json(d / f"models{k}.json", m)))
        inp["fractions"].append(str(gio.write_raster(d / f"fractions{k}.tif", frac, GRID, band_names=TYPES)))
        inp["predictors"] += [str(gio.write_raster(d / f"{p}{k}.tif", layers[p], GRID)) for p in PREDICTORS]
        inp["ndvi_se"].append(str(gio.write_raster(d / f"ndvi_se{k}.tif", layers["ndvi_se"], GRID)))
        # the year's fill as rule fill writes it: type_fill over the whole grid's rasters as read back
        fr = gio.read_raster(inp["fractions"][-1], bands=[1, 2, 3])
        preds = {p: gio.read_raster(inp["predictors"][-2 + i]) for i, p in enumerate(PREDICTORS)}
        fill = type_fill(m, TYPES, fr, preds, seed=m["seed"])
        inp["fills"].append(str(write_fill(d / f"fill{k}.json", fill, year=year, seed=m["seed"],
                                           models_sha256=models_digest(m))))
        for level in LEVELS:  # the year's indicator tables (rule aggregate): P5 has no stock in the first year
            t = gpd.GeoDataFrame({"zone_id": z[level]["zone_id"], "area_ha": z[level].area / 1e4,
                                  "carbon_t": 100.0 + 10.0 * np.arange(len(z[level])) + k}, geometry=z[level].geometry,
                                 crs=GRID.crs)
            if k == 0 and level == "parcel":
                t.loc[t["zone_id"] == "P5", "carbon_t"] = np.nan
            t.to_parquet(d / f"{level}_{k}.indicators.parquet")
            inp["tables"].append(str(d / f"{level}_{k}.indicators.parquet"))
    wholes, zone_paths, coverage = [], [], []
    for level in LEVELS:
        z[level].to_file(d / f"{level}.gpkg", layer=level)
        zone_paths.append(str(d / f"{level}.gpkg"))
        wholes.append(coverage_matrix(list(z[level].geometry), GRID.transform, GRID.shape))
        coverage.append(str(gio.write_sparse(d / f"{level}_coverage.npz", wholes[-1])))
    kw = {"levels": LEVELS, "seed": 42, "uncertainty": {}, "interval_pct": 90.0}

    def outputs(folder):
        (d / folder / "zones").mkdir(parents=True)
        return {"trend": str(d / folder / "trend.tif"), "record": str(d / folder / "trend.json"),
                "zones": [str(d / folder / "zones" / f"{level}.gpkg") for level in LEVELS]}

    untiled = outputs("untiled")
    run_trend(YEARS, zone_paths, coverage, grid_json, inp["fractions"], inp["predictors"], inp["ndvi_se"],
              inp["models"], inp["tables"], untiled["trend"], untiled["zones"], untiled["record"],
              predictor_names=PREDICTORS, types=TYPES, fills=inp["fills"], **kw)
    tiles = GRID.tiles(SIZE_PX)
    (d / "tiles").mkdir()
    tile_rasters, parts = [], []
    for t in tiles:
        cov = [str(gio.write_sparse(d / "tiles" / f"{level}_coverage_{t.id}.npz",
                                    tile_coverage_matrix(list(z[level].geometry), GRID, t))) for level in LEVELS]
        tile_rasters.append(str(d / "tiles" / f"trend_{t.id}.tif"))
        parts.append(str(d / "tiles" / f"parts_{t.id}.npz"))
        run_trend_tile(YEARS, cov, grid_json, inp["fractions"], inp["predictors"], inp["ndvi_se"], inp["models"],
                       inp["fills"], tile_rasters[-1], parts[-1], tile_id=t.id, size_px=SIZE_PX,
                       predictor_names=PREDICTORS, types=TYPES, **kw)
    tiled = outputs("tiled")
    run_trend_gather(YEARS, zone_paths, grid_json, tile_rasters, parts, inp["models"], inp["tables"], tiled["trend"],
                     tiled["zones"], tiled["record"], size_px=SIZE_PX, **kw)
    blocked = outputs("blocked")  # zone blocks of 2: the parcels in three blocks (P1-P2, P3-P4, P5)
    run_trend_gather(YEARS, zone_paths, grid_json, tile_rasters, parts, inp["models"], inp["tables"], blocked["trend"],
                     blocked["zones"], blocked["record"], size_px=SIZE_PX, zone_block=2, **kw)
    return {"dir": d, "inp": inp, "untiled": untiled, "tiled": tiled, "blocked": blocked, "tiles": tiles,
            "wholes": wholes, "z": z,
            "parts": parts, "tile_rasters": tile_rasters, "grid": grid_json, "zone_paths": zone_paths}


def test_tiles_are_uneven(case):
    assert [t.shape for t in case["tiles"]] == [(10, 10), (10, 10), (10, 9)] * 2 + [(3, 10), (3, 10), (3, 9)]


def test_trend_mosaic_is_the_untiled_raster_byte_for_byte(case):
    a, b = case["untiled"]["trend"], case["tiled"]["trend"]
    x, y = gio.read_raster(a), gio.read_raster(b)
    np.testing.assert_array_equal(y, x)  # value for value, NaN where NaN
    assert open(a, "rb").read() == open(b, "rb").read()
    # the comparison is not empty: slopes mapped (under a cloud from the other two years), significant somewhere
    assert np.isfinite(x[0]).sum() > 300 and np.isfinite(x[0][CLOUD0]).any()
    assert set(np.unique(x[3][np.isfinite(x[3])])) == {0.0, 1.0}


def test_trend_json_equal(case):
    a = json.loads(open(case["untiled"]["record"], encoding="utf-8").read())
    b = json.loads(open(case["tiled"]["record"], encoding="utf-8").read())
    assert a == b
    assert a["pixels"]["pixels"] > 300 and a["years"] == YEARS and a["residual_field"] is not None


def test_zone_tables_equal_within_rounding(case):
    worst = 0.0
    for k, level in enumerate(LEVELS):
        a, b = (gpd.read_file(case[which]["zones"][k]) for which in ("untiled", "tiled"))
        worst = max(worst, assert_tables_close(a, b, level, floor=1e-9))
        # zone blocks of 2 zones give the one-block tables bit for bit, and the same file types
        blocked = gpd.read_file(case["blocked"]["zones"][k])
        assert assert_tables_close(b, blocked, level, rtol=0, atol=0) == 0.0
        pd.testing.assert_frame_equal(pd.read_parquet(case["blocked"]["zones"][k].replace(".gpkg", ".parquet")),
                                      pd.read_parquet(case["tiled"]["zones"][k].replace(".gpkg", ".parquet")))
    assert worst < 1e-12
    print(f"tiled vs untiled trend tables: largest relative difference {worst:.1e}")
    parcel = gpd.read_file(case["tiled"]["zones"][1]).set_index("zone_id")
    # the parcels the tiles cut have a trend from all three years; P5 (unknown stock in 2020) from two
    assert parcel.loc[["P1", "P2", "P3", "P4"], "trend_t_yr"].notna().all()
    assert (parcel.loc[["P1", "P2", "P3", "P4"], "n_years"] == 3).all() and parcel.loc["P5", "n_years"] == 2


def test_gathered_sums_are_the_whole_grid_terms(case):
    """The typed area of each zone gathered over the tiles (P2 across a tile corner) is Σ coverage × the largest
    typed share of the years, with the whole grid's coverage matrix; the yearly stock sums' Theil–Sen slope is the
    table's trend_t_yr."""
    n_zones = [len(case["z"][level]) for level in LEVELS]
    models = [gio.read_json(p) for p in case["inp"]["models"]]
    expect = parts_identity(YEARS, models, GRID, levels=LEVELS, n_zones=n_zones, seed=42, uncertainty={},
                            size_px=SIZE_PX)
    shares = [np.minimum(gio.read_raster(p, bands=[1, 2, 3]).astype(float).sum(axis=0), 1.0).ravel()
              for p in case["inp"]["fractions"]]
    typed = np.max(np.stack(shares), axis=0)
    for i in range(len(LEVELS)):
        ((z0, z1, sums),) = level_blocks(case["parts"], case["tiles"], i, expect, zone_block=100)  # one block
        assert (z0, z1) == (0, n_zones[i])
        want = np.asarray(case["wholes"][i] @ typed).ravel() * GRID.pixel_area_ha
        np.testing.assert_allclose(sums["typed_ha"], want, rtol=1e-12)
        table = gpd.read_file(case["tiled"]["zones"][i])
        est = np.stack([sums[f"est_{k}"] for k in range(len(YEARS))], axis=-1)
        if LEVELS[i] == "parcel":
            est[4, 0] = np.nan  # P5: no published stock in 2020
        np.testing.assert_allclose(table["trend_t_yr"], theil_sen(est, YEARS), rtol=1e-12)
    # tile r000c000 (rows 0-9, columns 0-9) touches the city and parcel P3 only
    arrays, meta = gio.read_arrays(case["parts"][0])
    assert meta["tile"] == "r000c000" and arrays["L0.rows"].tolist() == [0] and arrays["L1.rows"].tolist() == [2]


def test_level_blocks_add_the_tiles_by_hand(tmp_path):
    # two tiles of one level of 3 zones: tile A touches zones 0 and 2, tile B zones 1 and 2 (a zone across the
    # tile edge); in blocks of 2 zones: [0, 2) gets A's zone 0 and B's zone 1, [2, 3) A's + B's zone 2
    expect = {"format": 1, "levels": ["parcel"], "n_zones": [3]}
    tiles = [SimpleNamespace(id="a"), SimpleNamespace(id="b")]
    paths = [gio.write_arrays(tmp_path / "a.npz", {"L0.rows": np.array([0, 2]), "L0.est_0": np.array([1.0, 2.0]),
                                                   "L0.draws_0": np.array([[1.0, 3.0], [2.0, 4.0]])},
                              {**expect, "tile": "a"}),
             gio.write_arrays(tmp_path / "b.npz", {"L0.rows": np.array([1, 2]), "L0.est_0": np.array([10.0, 20.0]),
                                                   "L0.draws_0": np.array([[9.0, 11.0], [19.0, 21.0]])},
                              {**expect, "tile": "b"})]
    blocks = list(level_blocks(paths, tiles, 0, expect, zone_block=2))
    assert [(z0, z1) for z0, z1, _ in blocks] == [(0, 2), (2, 3)]
    assert blocks[0][2]["est_0"].tolist() == [1.0, 10.0] and blocks[1][2]["est_0"].tolist() == [22.0]
    assert blocks[0][2]["draws_0"].tolist() == [[1.0, 3.0], [9.0, 11.0]]
    assert blocks[1][2]["draws_0"].tolist() == [[21.0, 25.0]]
    with pytest.raises(InputDataError, match="b.npz: tile must be 'a'"):
        list(level_blocks(paths[::-1], tiles, 0, expect, zone_block=2))


def test_a_tile_needs_the_years_fill(case, tmp_path):
    inp = case["inp"]
    with pytest.raises(ValueError, match="fill"):
        run_trend_tile(YEARS, [], case["grid"], inp["fractions"], inp["predictors"], inp["ndvi_se"], inp["models"],
                       inp["fills"][:2], tmp_path / "t.tif", tmp_path / "p.npz", tile_id="r000c000", size_px=SIZE_PX,
                       predictor_names=PREDICTORS, types=TYPES, levels=[], seed=42)


def test_the_gather_refuses_parts_of_another_tile_or_seed(case, tmp_path):
    inp, d = case["inp"], tmp_path
    (d / "zones").mkdir()
    out = {"trend": d / "trend.tif", "record": d / "trend.json", "zones": [d / "zones" / f"{lv}.gpkg" for lv in LEVELS]}
    swapped = [case["parts"][1], case["parts"][0], *case["parts"][2:]]
    args = (YEARS, case["zone_paths"], case["grid"], case["tile_rasters"])
    with pytest.raises(InputDataError, match="parts_r000c001.npz: tile must be 'r000c000'"):
        run_trend_gather(*args, swapped, inp["models"], inp["tables"], out["trend"], out["zones"], out["record"],
                         size_px=SIZE_PX, levels=LEVELS, seed=42)
    with pytest.raises(InputDataError, match="seed must be 7"):
        run_trend_gather(*args, case["parts"], inp["models"], inp["tables"], out["trend"], out["zones"], out["record"],
                         size_px=SIZE_PX, levels=LEVELS, seed=7)


def test_resources_cover_the_measured_trend_peaks():
    # benchmarks/README.md, tile_memory.py --only trend (VmHWM of each job's process; 2048² grid, 512-px tiles, 3 years,
    # 200 draws): a tiled run's rule trend is the gather, and a tile job asks for far less than the whole-grid rule
    from greensink import resources

    assert resources.cost_rule("trend", {"tiles": {"size_px": 512}}) == "trend_gather"
    assert resources.cost_rule("trend", {"tiles": {"size_px": None}}) == "trend"
    for rule, mpx, peak, cpu_s in (("trend_tile", 512**2 / 1e6, 466, 22), ("trend_gather", 2048**2 / 1e6, 521, 4),
                                   ("trend", 2048**2 / 1e6, 2384, 367), ("trend", 502**2 / 1e6, 683, 0)):
        assert peak <= resources.mem_mb(rule, mpx) <= 2 * peak + 1000, rule
        assert resources.runtime_min(rule, mpx) * 60 >= cpu_s, rule
    assert resources.mem_mb("trend_tile", 512**2 / 1e6) < resources.mem_mb("trend", 512**2 / 1e6)
    assert resources.mem_mb("trend_gather", 2048**2 / 1e6) < resources.mem_mb("trend", 2048**2 / 1e6) / 4
