"""The trend's filled zone sums take each year's fill of unobserved typed land from fill.json (issue 14 item 3).

A 1 × 4 grid of three unequally spaced years (blocks W: pixels 0-1, E: pixels 2-3; city C over both), one type G1 at
10 + 100 NDVI t C/ha (pixel 3 half typed), identical bootstrap draws and no other error source; pixel 1 is clouded in
2022, so W's 2022 stock holds the year's fill: the fraction-weighted mean density of the pixels observed that year,
(60 + 40 + 0.5 × 60) / 2.5 = 52 t C/ha by hand. run_trend given the years' fill.json (written by
greensink.carbon.write_fill from type_fill, as rule fill does) writes the same trend map, zone tables and record as
run_trend computing the fills itself, bit for bit; a fill.json holding another value moves W's trend to the
Theil-Sen slope (scipy) of the stocks with that value; a fill.json of another year is refused, naming the file.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from scipy.stats import theilslopes
from shapely.geometry import box

from greensink import io
from greensink.carbon import type_fill, write_fill
from greensink.carbon.fill import models_digest
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.trend import run_trend
from greensink.zones import run_zone_coverage

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0
YEARS = [2021, 2022, 2024]
NAN = float("nan")
NDVI = np.array([[0.30, 0.40, 0.20, 0.60],
                 [0.50, NAN, 0.30, 0.50],
                 [0.45, 0.80, 0.25, 0.70]])
FRACTION = np.array([1.0, 1.0, 1.0, 0.5])
PIXEL_HA = 0.01
NO_NOISE = {"curve": True, "table": False, "residual": {"enabled": False, "year_correlation": 0.5},
            "ndvi": {"enabled": False}, "edges": {"enabled": False}}
MODELS = {"types": {"G1": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 10.0, "b": 100.0},
                           "bootstrap": [[10.0, 100.0]] * 20, "x_range": [0.0, 1.0]}}, "seed": 0}


def inputs(tmp_path: Path) -> dict:
    g = Grid(crs=CRS, transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0 + 10.0), width=4, height=1)
    io.write_json(tmp_path / "grid.json", g.to_dict())
    rows = {"city": [("C", "", (0, 40))], "block": [("W", "C", (0, 20)), ("E", "C", (20, 40))]}
    zones, coverage = [], []
    for level, rs in rows.items():
        zones.append(tmp_path / f"{level}.gpkg")
        gpd.GeoDataFrame({"zone_id": [r[0] for r in rs], "parent_id": [r[1] for r in rs], "level": level,
                          "name": [f"zone {r[0]}" for r in rs]},
                         geometry=[box(X0 + a, Y0, X0 + b, Y0 + 10.0) for *_, (a, b) in rs], crs=CRS
                         ).to_file(zones[-1], driver="GPKG")
        coverage.append(tmp_path / f"{level}_coverage.npz")
        run_zone_coverage(zones[-1], tmp_path / "grid.json", coverage[-1])
    fractions = io.write_raster(tmp_path / "fractions.tif", FRACTION.reshape(1, 1, 4).astype(np.float32), g,
                                band_names=["G1"])
    predictors, ndvi_se, models_json, tables = [], [], [], []
    for k, year in enumerate(YEARS):
        predictors.append(io.write_raster(tmp_path / f"ndvi_{year}.tif", NDVI[k].reshape(1, 4).astype(np.float32), g))
        ndvi_se.append(io.write_raster(tmp_path / f"se_{year}.tif", np.zeros((1, 4), np.float32), g))
        models_json.append(io.write_json(tmp_path / f"models_{year}.json", {**MODELS, "year": year}))
        for level, ids in (("city", ["C"]), ("block", ["W", "E"])):
            tables.append(tmp_path / f"{level}_{year}.parquet")
            io.read_vector(zones[0 if level == "city" else 1]).assign(
                carbon_t=[1.0] * len(ids), area_ha=[0.04] if level == "city" else [0.02, 0.02]).to_parquet(tables[-1])
    return {"zones": zones, "coverage": coverage, "grid": tmp_path / "grid.json", "fractions": fractions,
            "predictors": predictors, "ndvi_se": ndvi_se, "models": models_json, "tables": tables}


def fill_files(tmp_path: Path, inp: dict, value: float | None = None, years=YEARS) -> list[Path]:
    """Each year's fill.json as rule fill writes it (type_fill of the year's rasters); ``value``: 2022's fill of G1
    set to that density in every draw instead."""
    frac = io.read_raster(inp["fractions"], bands=[1])
    out = []
    for k, year in enumerate(years):
        models = io.read_json(inp["models"][k])
        fill = type_fill(models, ["G1"], frac, {"ndvi": io.read_raster(inp["predictors"][k])}, seed=0)
        if value is not None and year == 2022:
            fill = {"G1": {**fill["G1"], "fill_t_ha": value, "spread_t_ha": 0.0, "draws": np.full(20, value)}}
        out.append(write_fill(tmp_path / f"fill_{k}.json", fill, year=year, seed=0, models_sha256=models_digest(models)))
    return out


def trend(tmp_path: Path, inp: dict, name: str, fills=None) -> dict:
    out = tmp_path / name
    record = run_trend(YEARS, inp["zones"], inp["coverage"], inp["grid"], [inp["fractions"]] * 3, inp["predictors"],
                       inp["ndvi_se"], inp["models"], inp["tables"], out / "trend.tif", [out / "city.gpkg", out / "block.gpkg"],
                       out / "trend.json", predictor_names=["ndvi"], levels=["city", "block"], types=["G1"], seed=1,
                       uncertainty=NO_NOISE, fills=fills)
    return {"record": record, "map": io.read_raster(out / "trend.tif"),
            **{level: pd.read_parquet(out / f"{level}.parquet").set_index("zone_id") for level in ("city", "block")}}


def w_stocks(fill_2022: float) -> list[float]:
    """W's filled stocks (t C) by hand: pixels 0 and 1, pixel 1 at the fill in 2022."""
    return [(10 + 100 * 0.30 + 10 + 100 * 0.40) * PIXEL_HA, (10 + 100 * 0.50 + fill_2022) * PIXEL_HA,
            (10 + 100 * 0.45 + 10 + 100 * 0.80) * PIXEL_HA]


def test_the_trend_from_fill_json_is_the_trend_computing_the_fill_bit_for_bit(tmp_path):
    inp = inputs(tmp_path)
    direct = trend(tmp_path, inp, "direct")
    from_file = trend(tmp_path, inp, "file", fills=fill_files(tmp_path, inp))
    np.testing.assert_array_equal(from_file["map"], direct["map"])
    for level in ("city", "block"):
        pd.testing.assert_frame_equal(from_file[level], direct[level], check_exact=True)
    assert from_file["record"] == direct["record"]
    # the fill in both: 2022's mean over pixels 0, 2, 3 = (60 + 40 + 30) / 2.5 = 52 t C/ha
    slope = theilslopes(w_stocks(52.0), YEARS).slope
    assert direct["block"].loc["W", "trend_t_yr"] == pytest.approx(slope, rel=1e-5)


def test_the_fill_in_fill_json_is_the_one_the_zone_sums_use(tmp_path):
    inp = inputs(tmp_path)
    t = trend(tmp_path, inp, "other", fills=fill_files(tmp_path, inp, value=200.0))
    stocks = w_stocks(200.0)  # 0.9, 2.6, 1.45 t: slopes 1.7, -0.575, 0.1833 per year -> median 0.1833
    assert t["block"].loc["W", "trend_t_yr"] == pytest.approx(theilslopes(stocks, YEARS).slope, rel=1e-5)
    assert t["block"].loc["W", "trend_t_yr"] == pytest.approx(0.55 / 3, rel=1e-5)
    # E never clouded: its trend does not depend on the fill
    assert t["block"].loc["E", "trend_t_yr"] == trend(tmp_path, inp, "direct")["block"].loc["E", "trend_t_yr"]


def test_a_fill_json_of_another_year_is_refused_naming_the_file(tmp_path):
    inp = inputs(tmp_path)
    fills = fill_files(tmp_path, inp, years=[2021, 2023, 2024])
    with pytest.raises(InputDataError, match=r"fill_1\.json: field 'year' is 2023, expected 2022"):
        trend(tmp_path, inp, "stale", fills=fills)
    with pytest.raises(ValueError, match="2 fill.json files for 3 years"):
        trend(tmp_path, inp, "short", fills=fill_files(tmp_path, inp)[:2])
