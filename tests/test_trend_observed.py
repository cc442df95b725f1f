"""Partial observation in the trend (issue 15 item 4): the trend over the typed land every year observed.

A hand-built series of three unequally spaced years on a 1 × 4 grid (blocks W: pixels 0-1, E: pixels 2-3, the
city C over both), one wholly typed type G1 (pixel 3 half typed), carbon 10 + 100 NDVI t C/ha, identical bootstrap
draws: pixel 1 is clouded in 2022, so W and C hold filled land and only pixel 0 of W was seen in every year.
The observed trend is checked against scipy.stats.theilslopes of the stocks computed here by hand over the
always-seen pixels, the shares by hand from the pixel areas.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from scipy.stats import theilslopes
from shapely.geometry import box

from greensink import io
from greensink.grid import Grid
from greensink.trend import partly_observed_warning, run_trend, zone_trend_table
from greensink.zones import run_zone_coverage

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0
YEARS = [2021, 2022, 2024]
NAN = float("nan")
# NDVI per year (rows) and pixel (columns); pixel 1 clouded in 2022
NDVI = np.array([[0.30, 0.40, 0.20, 0.60],
                 [0.50, NAN, 0.30, 0.50],
                 [0.45, 0.80, 0.25, 0.70]])
FRACTION = np.array([1.0, 1.0, 1.0, 0.5])  # pixel 3 half typed
PIXEL_HA = 0.01  # 10 m pixels
NO_NOISE = {"curve": True, "table": False, "residual": {"enabled": False, "year_correlation": 0.5},
            "ndvi": {"enabled": False}, "edges": {"enabled": False}}


def hand_stock(pixels: list[int], k: int) -> float:
    """t C of the ``pixels`` in year k: (10 + 100 NDVI) t C/ha × typed fraction × 0.01 ha (all observed)."""
    return float(sum((10.0 + 100.0 * NDVI[k, p]) * FRACTION[p] * PIXEL_HA for p in pixels))


def trend_inputs(tmp_path: Path) -> dict:
    """The 1 × 4 city of the module docstring written to ``tmp_path``: grid, zones and their coverage, fractions,
    each year's NDVI, NDVI SE (0), models.json and stock tables (also used by tests/test_series_fill.py)."""
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
    models = {"types": {"G1": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 10.0, "b": 100.0},
                               "bootstrap": [[10.0, 100.0]] * 20, "x_range": [0.0, 1.0]}}, "seed": 0}
    predictors, ndvi_se, models_json, tables = [], [], [], []
    for k, year in enumerate(YEARS):
        predictors.append(io.write_raster(tmp_path / f"ndvi_{year}.tif", NDVI[k].reshape(1, 4).astype(np.float32), g))
        ndvi_se.append(io.write_raster(tmp_path / f"se_{year}.tif", np.zeros((1, 4), np.float32), g))
        models_json.append(io.write_json(tmp_path / f"models_{year}.json", {**models, "year": year}))
        for level, ids in (("city", ["C"]), ("block", ["W", "E"])):
            tables.append(tmp_path / f"{level}_{year}.parquet")
            # the stock tables only say which years are known here; a number in every year
            io.read_vector(zones[0 if level == "city" else 1]).assign(
                carbon_t=[1.0] * len(ids), area_ha=[0.04] if level == "city" else [0.02, 0.02]).to_parquet(tables[-1])
    return {"zones": zones, "coverage": coverage, "grid": tmp_path / "grid.json", "fractions": fractions,
            "predictors": predictors, "ndvi_se": ndvi_se, "models": models_json, "tables": tables}


def series(tmp_path: Path, min_observed_pct: float, caplog=None) -> dict[str, pd.DataFrame]:
    inp = trend_inputs(tmp_path)
    out = tmp_path / "trend"
    if caplog is not None:
        caplog.set_level(logging.WARNING, logger="greensink.trend")
    run_trend(YEARS, inp["zones"], inp["coverage"], inp["grid"], [inp["fractions"]] * 3, inp["predictors"], inp["ndvi_se"],
              inp["models"], inp["tables"], out / "trend.tif", [out / "city.gpkg", out / "block.gpkg"], out / "trend.json", predictor_names=["ndvi"],
              levels=["city", "block"], types=["G1"], seed=1, uncertainty=NO_NOISE, min_observed_pct=min_observed_pct)
    return {level: pd.read_parquet(out / f"{level}.parquet").set_index("zone_id") for level in ("city", "block")}


def test_observed_trend_follows_only_the_land_seen_in_every_year(tmp_path: Path, caplog) -> None:
    t = series(tmp_path, 50.0, caplog)
    block, city = t["block"], t["city"].loc["C"]
    w, e = block.loc["W"], block.loc["E"]
    # shares by hand: W 1 of its 2 typed pixels seen every year; E both; C (1 + 1 + 0.5) of 3.5 typed pixel areas
    assert w["observed_all_pct"] == pytest.approx(50.0)
    assert e["observed_all_pct"] == pytest.approx(100.0)
    assert city["observed_all_pct"] == pytest.approx(100.0 * 2.5 / 3.5)
    assert bool(w["trend_partly_observed"]) and bool(city["trend_partly_observed"])
    assert not bool(e["trend_partly_observed"])
    # W over pixel 0 alone: stocks 0.40, 0.60, 0.55 t -> pair slopes 0.2, 0.05, -0.025 per year -> median 0.05
    w_stocks = [hand_stock([0], k) for k in range(3)]
    assert w_stocks == pytest.approx([0.40, 0.60, 0.55])
    ts = theilslopes(w_stocks, YEARS, alpha=0.90)
    assert ts.slope == pytest.approx(0.05)
    assert w["trend_observed_t_yr"] == pytest.approx(ts.slope, rel=1e-5)
    # identical draws: the interval is Sen's scatter interval alone, scipy's at 90 %
    assert w["trend_observed_t_yr_lo"] == pytest.approx(ts.low_slope, rel=1e-5)
    assert w["trend_observed_t_yr_hi"] == pytest.approx(ts.high_slope, rel=1e-5)
    assert w["trend_observed_t_ha_yr"] == pytest.approx(ts.slope / PIXEL_HA, rel=1e-5)
    # the filled trend includes pixel 1's 2022 fill: another number than the observed one
    assert abs(w["trend_t_yr"] - w["trend_observed_t_yr"]) > 0.01
    # C over pixels 0, 2, 3
    c_stocks = [hand_stock([0, 2, 3], k) for k in range(3)]
    assert city["trend_observed_t_yr"] == pytest.approx(theilslopes(c_stocks, YEARS).slope, rel=1e-5)
    # E fully observed: the observed trend is the trend, to the bit (the same sums)
    for col in ("t_yr", "t_yr_lo", "t_yr_hi"):
        assert e[f"trend_observed_{col}"] == e[f"trend_{col}"]
    assert e["trend_t_yr"] == pytest.approx(theilslopes([hand_stock([2, 3], k) for k in range(3)], YEARS).slope,
                                            rel=1e-5)
    # the warning names the partly observed zones with their shares; E (fully observed) is not named
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "block trend 2021-2024: 1 of 2 zone(s) partly observed" in text and "W 50.0 %" in text
    assert "city trend 2021-2024: 1 of 1 zone(s)" in text and "C 71.4 %" in text
    assert " E " not in text and "0 of them below carbon.min_observed_pct (50 %)" in text


def test_below_min_observed_pct_the_observed_trend_is_empty_not_zero(tmp_path: Path, caplog) -> None:
    t = series(tmp_path, 60.0, caplog)
    w, e, city = t["block"].loc["W"], t["block"].loc["E"], t["city"].loc["C"]
    # W (50 %) below 60 %: no observed trend, never 0; its filled trend and flag are still reported
    for col in ("trend_observed_t_yr", "trend_observed_t_yr_lo", "trend_observed_t_yr_hi", "trend_observed_t_ha_yr"):
        assert np.isnan(w[col]), col
    assert np.isfinite(w["trend_t_yr"]) and bool(w["trend_partly_observed"])
    assert w["observed_all_pct"] == pytest.approx(50.0)
    # C (71.4 %) and E (100 %) above it keep theirs
    assert np.isfinite(city["trend_observed_t_yr"]) and np.isfinite(e["trend_observed_t_yr"])
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "1 of them below carbon.min_observed_pct (60 %) have no observed trend (empty)" in text


def test_zone_trend_table_observed_by_hand_and_the_warning_limit() -> None:
    """Six zones, sums given by hand: shares, the cut-off, a zone without typed land (no share, not flagged),
    a year the stock table does not know left out of the observed trend too, and the warning's first five."""
    ids = list("abcdef")
    zones = gpd.GeoDataFrame({"zone_id": ids, "parent_id": "x", "level": "block", "name": ids},
                             geometry=[box(i, 0, i + 1, 1) for i in range(6)], crs=CRS)
    years = [2020, 2021, 2022]
    typed = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    seen = np.array([1.0, 0.9, 0.3, 0.0, 0.8, 0.7])  # ha seen in every year
    o = {2020: [10.0, 9.0, 3.0, 0.0, 8.0, 7.0], 2021: [12.0, 9.0, 3.3, 0.0, 8.0, 7.0],
         2022: [13.0, 8.1, 3.9, 0.0, 8.4, 7.7]}
    full = {y: np.array(v) + 1.0 for y, v in o.items()}  # the filled sums: another series
    tables = [pd.DataFrame({"zone_id": ids, "carbon_t": full[y], "area_ha": 1.0}) for y in years]
    tables[1].loc[1, "carbon_t"] = NAN  # b: 2021 unknown in the stock table
    sums = [(full[y], np.repeat(full[y][:, None], 4, axis=1)) for y in years]
    obs_sums = [(np.array(o[y]), np.repeat(np.array(o[y])[:, None], 4, axis=1)) for y in years]
    table = zone_trend_table(zones, tables, sums, years, 90.0,
                             observed={"typed_ha": typed, "observed_all_ha": seen, "sums": obs_sums},
                             min_observed_pct=50.0).set_index("zone_id")
    np.testing.assert_allclose(table["observed_all_pct"].to_numpy(), [100.0, 90.0, 30.0, NAN, 80.0, 70.0])
    assert table.loc["a", "trend_observed_t_yr"] == pytest.approx(1.5)  # slopes 2, 1, 1.5 -> 1.5
    assert table.loc["b", "trend_observed_t_yr"] == pytest.approx((8.1 - 9.0) / 2)  # 2021 left out
    assert table.loc["b", "n_years"] == 2
    assert np.isnan(table.loc["c", "trend_observed_t_yr"])  # 30 % < 50 %
    assert table.loc["d", "trend_observed_t_yr"] == 0.0  # no typed land: a known 0 t, not a share
    assert not bool(table.loc["d", "trend_partly_observed"]) and not bool(table.loc["a", "trend_partly_observed"])
    assert table.loc["e", "trend_observed_t_ha_yr"] == pytest.approx(0.2 / 0.8)  # slopes 0, 0.2, 0.4 -> 0.2 over 0.8 ha
    assert table.loc[list("bcef"), "trend_partly_observed"].all()
    table["years"] = "2020-2022"
    msg = partly_observed_warning(table.reset_index(), "block", 50.0, limit=3)
    assert msg.startswith("block trend 2020-2022: 4 of 6 zone(s) partly observed")
    assert "c 30.0 %, f 70.0 %, e 80.0 % and 1 more" in msg  # least observed first
    assert "1 of them below carbon.min_observed_pct (50 %)" in msg
    assert partly_observed_warning(table.loc[["a", "d"]].reset_index(), "block", 50.0) is None


def cloud_columns(path: Path, share: float) -> None:
    """Make the first ``share`` of the raster's columns NaN (a cloud over the west of the city), rewritten as a
    plain GeoTIFF with the same grid, band names and tags."""
    import rasterio

    with rasterio.open(path) as src:
        profile, data, names, tags = src.profile, src.read(), src.descriptions, src.tags()
    data[:, :, : int(share * data.shape[2])] = np.nan
    profile.update(driver="GTiff", tiled=False)
    for key in ("blockxsize", "blockysize"):
        profile.pop(key, None)
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(**tags)
        for i, name in enumerate(names, start=1):
            if name:
                dst.set_band_description(i, name)


@pytest.mark.slow
def test_workflow_a_clouded_year_flags_the_trend_as_the_pairs_change(baseline_run, tmp_path: Path) -> None:
    """A copy of the demo run with 40 % of the middle year's NDVI clouded (issue 15's case), the model, stock tables,
    trend and the first pair rerun: the trend's observed_all_pct and flags equal the pair's observed_both_pct and
    sink_partly_observed (engineer C's change products; the other years are seen everywhere, so land seen in every
    year is land seen in both years of the pair), the same zones lose their observed numbers, and the trend log
    warns per level."""
    import shutil

    import yaml

    from test_workflow import snakemake

    run = tmp_path / "run"
    shutil.copytree(baseline_run, run, symlinks=True)
    years = sorted(yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["years"])
    if len(years) < 3:
        pytest.skip(f"the baseline demo run has {len(years)} years {years}; this test needs 3")
    y0, y1 = years[0], years[1]
    cloud_columns(run / f"results/{y1}/ndvi.tif", 0.4)
    snakemake(run, "results/change/trend/trend.json", f"results/change/{y0}_{y1}/zones/city.parquet",
              "--rerun-triggers", "mtime")
    res = run / "results/change"
    log_text = (run / "logs/change/trend.log").read_text(encoding="utf-8")
    for level in ("city", "district", "block", "parcel"):
        pair = pd.read_parquet(res / f"{y0}_{y1}/zones/{level}.parquet").set_index("zone_id")
        t = pd.read_parquet(res / f"trend/zones/{level}.parquet").set_index("zone_id").loc[pair.index]
        np.testing.assert_allclose(t["observed_all_pct"], pair["observed_both_pct"], rtol=1e-9, atol=1e-9)
        assert (t["trend_partly_observed"] == pair["sink_partly_observed"]).all(), level
        assert (t["trend_observed_t_yr"].isna() == pair["sink_observed_t_yr"].isna()).all(), level
        n_part = int(t["trend_partly_observed"].sum())
        assert n_part > 0, level
        assert f"{level} trend {years[0]}-{years[-1]}: {n_part} of {len(t)} zone(s) partly observed" in log_text
        whole = ~t["trend_partly_observed"].astype(bool) & t["observed_all_pct"].notna()
        np.testing.assert_array_equal(t.loc[whole, "trend_observed_t_yr"], t.loc[whole, "trend_t_yr"])
    city = pd.read_parquet(res / "trend/zones/city.parquet").iloc[0]
    assert 40.0 < city["observed_all_pct"] < 90.0 and city["trend_observed_t_yr"] != city["trend_t_yr"]
