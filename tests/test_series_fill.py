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

import numpy as np
import pandas as pd
import pytest
from scipy.stats import theilslopes

from greensink import io
from greensink.carbon import type_fill, write_fill
from greensink.carbon.fill import models_digest
from greensink.errors import InputDataError
from greensink.trend import run_trend
from test_trend_observed import NO_NOISE, PIXEL_HA, YEARS, trend_inputs


def inputs(tmp_path: Path) -> dict:
    """The 1 × 4 city of the module docstring (the trend observation test's, tests/test_trend_observed.py)."""
    return trend_inputs(tmp_path)


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
