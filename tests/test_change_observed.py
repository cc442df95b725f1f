"""Partial observation in the change products (issue 15 item 4): a zone clouded in one year gets no "sink" made of
fill. Hand-built 4 × 4 grid of 10 m pixels (0.01 ha each), one green-space type G1 on every pixel in both years;
every expectation is worked out in the comments. The baseline demo run (fully observed) checks that the new columns
say so.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import box

from greensink.aggregate import zone_draw_sums
from greensink.change import (
    attribute_change,
    change_table,
    difference_function,
    masked_matrices,
    observation_shares,
    partly_observed_warning,
    partly_observed_zones,
)
from greensink.coverage import coverage_matrix
from greensink.grid import Grid

CRS = "EPSG:32651"
NAN = np.nan
# pixel (row, col) is box(10 col, 30 − 10 row, 10 col + 10, 40 − 10 row)
GRID = Grid(crs=CRS, transform=Affine(10.0, 0.0, 0.0, 0.0, -10.0, 40.0), width=4, height=4)
PA = 0.01
# L: x 0-15 (column 0 whole, column 1 half); R: the right half (columns 2-3); C: R's top 2 × 2 (rows 0-1, the cloud)
IDS = ["L", "R", "C"]
GEOMS = [box(0, 0, 15, 40), box(20, 0, 40, 40), box(20, 20, 40, 40)]
F = np.ones((1, 4, 4), dtype=np.float32)  # G1 wholly on every pixel, both years
ACTIVE = np.arange(16)
CLOUD = np.array([2, 3, 6, 7])  # rows 0-1 × columns 2-3: unobserved in the second year
# the carbon maps, t C/ha: 10 everywhere in 2023; in 2024 12 on columns 0-1, 14 on R's observed rows 2-3, NaN under
# the cloud; the zone tables' rule fills the cloud with 30 t C/ha (a type mean from elsewhere in the city)
MAP0 = np.full(16, 10.0)
MAP1 = np.where(np.arange(16) % 4 < 2, 12.0, 14.0)
MAP1[CLOUD] = NAN
SUM1 = MAP1.copy()
SUM1[CLOUD] = 30.0
SUM0 = MAP0.copy()


def year_function(values, factors):
    """A pixel function: the estimate ``values`` and three draws, the estimate × each factor."""
    def fn(idx):
        est = values[idx]
        return est, np.outer(factors, est)
    return fn


def hand_change(min_observed_pct: float = 50.0):
    matrix = coverage_matrix(GEOMS, GRID.transform, GRID.shape)
    both, shares = observation_shares([matrix], ACTIVE, MAP0, MAP1, F, F, PA)
    # three draws: 2023 exact, 2024 × 0.9, 1, 1.1
    fn = difference_function(year_function(SUM0, [1.0, 1.0, 1.0]), year_function(SUM1, [0.9, 1.0, 1.1]), 1)
    sums = zone_draw_sums([matrix, *masked_matrices([matrix], ACTIVE, both)], fn, ACTIVE, PA)
    shares[0]["sums"] = sums[1]
    # vegetation classes: tree everywhere in 2023; in 2024 unknown under the cloud and pixel (3, 0) of L cleared
    c0 = np.full((4, 4), 3.0, dtype=np.float32)
    c1 = c0.copy()
    c1.reshape(-1)[CLOUD] = NAN
    c1[3, 0] = 0.0
    zones = gpd.GeoDataFrame({"zone_id": IDS, "parent_id": "X", "level": "parcel", "name": IDS}, geometry=GEOMS, crs=CRS)
    att = attribute_change(c0, c1, F, F, ACTIVE, SUM0, SUM1, MAP0, MAP1, [matrix], [zones], ["parcel"], GRID, 2023, 2024)
    # the stock tables: L 0.06 ha × 10 = 0.6 t → 0.04 × 12 + 0.02 × 12 = 0.72 t; R 0.8 → 0.04 × 14 + 0.04 × 30 =
    # 1.76 t; C 0.4 → 1.2 t (filled); green area over each year's own observed land: L 0.06 → 0.05 (pixel (3, 0)
    # cleared), R 0.08 → 0.04 (half unseen), C 0.04 → 0 (unseen)
    t0 = pd.DataFrame({"zone_id": IDS, "area_ha": [0.06, 0.08, 0.04], "carbon_t": [0.6, 0.8, 0.4],
                       "green_area_ha": [0.06, 0.08, 0.04]})
    t1 = pd.DataFrame({"zone_id": IDS, "area_ha": [0.06, 0.08, 0.04], "carbon_t": [0.72, 1.76, 1.2],
                       "green_area_ha": [0.05, 0.04, 0.0]})
    table = change_table(zones, t0, t1, 2023, 2024, sums[0], no_net_loss_tolerance_ha=0.005, observed=shares[0],
                         min_observed_pct=min_observed_pct, green_compared=att.green[0],
                         attribution=att.parts[0])
    return both, table


def test_observed_in_both_years_per_pixel_and_zone():
    both, table = hand_change()
    assert both.tolist() == [i not in CLOUD for i in range(16)]
    # typed land observed in both years: L 0.06 of 0.06 ha, R 0.04 of 0.08 (the cloud is half of it), C 0 of 0.04
    np.testing.assert_allclose(table["observed_both_pct"], [100.0, 50.0, 0.0], atol=1e-9)
    assert table["sink_partly_observed"].tolist() == [False, True, True]


def test_sink_over_land_observed_in_both_years_by_hand():
    _, table = hand_change()
    # the filled sink (stock tables' rule): L 0.06 ha × (12 − 10) = 0.12 t/yr; R 0.04 × 4 + 0.04 × (30 − 10) = 0.96,
    # five sixths of it fill; C: observed in neither... its typed land is 0 % both-observed: unknown, not 0.8
    np.testing.assert_allclose(table["sink_t_yr"].iloc[:2], [0.12, 0.96], atol=1e-9)
    assert np.isnan(table["sink_t_yr"].iloc[2]) and table["sink_class"].iloc[2] == "unknown"
    # over the land both years saw: L 0.12 (all of it); R 4 pixels × 0.01 ha × (14 − 10) = 0.16 t/yr, 4 t C/ha/yr
    np.testing.assert_allclose(table["sink_observed_t_yr"].iloc[:2], [0.12, 0.16], atol=1e-9)
    np.testing.assert_allclose(table["sink_observed_t_ha_yr"].iloc[:2], [2.0, 4.0], atol=1e-9)
    assert np.isnan(table["sink_observed_t_yr"].iloc[2]) and np.isnan(table["sink_observed_t_ha_yr"].iloc[2])
    # R's draws over that land: 0.04 × (14 f − 10), f = 0.9, 1, 1.1 → 0.104, 0.16, 0.216; 90 % bounds of three draws
    # d0 + 0.1 (d1 − d0) = 0.1096 and d1 + 0.9 (d2 − d1) = 0.2104
    assert table["sink_observed_t_yr_lo"].iloc[1] == pytest.approx(0.1096, abs=1e-9)
    assert table["sink_observed_t_yr_hi"].iloc[1] == pytest.approx(0.2104, abs=1e-9)


def test_below_min_observed_pct_the_sink_is_unknown_not_zero():
    _, table = hand_change(min_observed_pct=60.0)
    # R is observed in both years on 50 % < 60 %: every sink column empty; L (100 %) unchanged
    for col in ("sink_t_yr", "sink_t_yr_lo", "sink_t_yr_hi", "sink_observed_t_yr", "sink_u_pct", "stock_change_t"):
        assert np.isnan(table[col].iloc[1]), col
    # L's draws 0.06 × (12 f − 10) = 0.048, 0.12, 0.192: lower bound 0.0552 > 0, a gain
    assert table["sink_class"].tolist() == ["gain", "unknown", "unknown"]
    assert pd.isna(table["no_net_carbon_loss"].iloc[1])
    assert table["sink_t_yr"].iloc[0] == pytest.approx(0.12, abs=1e-9)
    assert table["observed_both_pct"].iloc[1] == pytest.approx(50.0) and table["sink_partly_observed"].iloc[1]


def test_no_net_loss_compares_the_vegetation_both_years_saw():
    _, table = hand_change()
    # the tables' green area: R 0.08 → 0.04 ha (−0.04, a "loss" made of cloud); over the land whose vegetation both
    # years saw, R's rows 2-3 were tree in both: 0 change, no net loss; L lost pixel (3, 0): −0.01 ha < −0.005: loss;
    # C: nothing compared: empty
    np.testing.assert_allclose(table["green_area_change_ha"], [-0.01, -0.04, -0.04], atol=1e-9)
    np.testing.assert_allclose(table["green_area_change_compared_ha"].iloc[:2], [-0.01, 0.0], atol=1e-9)
    assert np.isnan(table["green_area_change_compared_ha"].iloc[2])
    np.testing.assert_allclose(table["green_area_compared_pct"], [100.0, 50.0, 0.0], atol=1e-9)
    assert table["no_net_loss"].tolist() == [False, True, pd.NA]


def test_the_warning_names_the_partly_observed_zones_with_their_shares():
    _, table = hand_change()
    warning = partly_observed_warning(table, "parcel", 50.0)
    assert warning.startswith("parcel 2023-2024: 2 of 3 zone(s) partly observed: typed land observed clear in both "
                              "years C 0.0 %, R 50.0 %.")
    assert "1 of them below carbon.min_observed_pct (50 %) have no sink" in warning
    assert partly_observed_warning(table.iloc[:1], "parcel", 50.0) is None  # L alone: fully observed, no warning
    many = pd.concat([table.iloc[[1]]] * 8, ignore_index=True)
    many["zone_id"] = [f"R{i}" for i in range(8)]
    assert "R0 50.0 %, R1 50.0 %, R2 50.0 %, R3 50.0 %, R4 50.0 % and 3 more" in partly_observed_warning(many, "block", 50.0)


def test_partly_observed_zones_is_shared_by_the_change_and_trend_warnings():
    """One helper lists the flagged zones for both warnings: least observed first, NA flags not flagged."""
    t = pd.DataFrame({"zone_id": ["a", "b", "c", "d", "e"], "observed_all_pct": [100.0, 80.0, 12.25, NAN, 62.5],
                      "trend_partly_observed": pd.array([False, True, True, pd.NA, True], dtype="boolean")})
    part, shown = partly_observed_zones(t, "trend_partly_observed", "observed_all_pct", limit=2)
    assert list(part["zone_id"]) == ["c", "e", "b"]
    assert shown == "c 12.2 %, e 62.5 % and 1 more"  # 12.25 rounds half to even, as the warnings always did
    assert partly_observed_zones(t, "sink_partly_observed", "observed_both_pct") is None  # no such column
    assert partly_observed_zones(t.iloc[[0, 3]], "trend_partly_observed", "observed_all_pct") is None


def test_baseline_change_is_fully_observed(baseline_run):
    tables = sorted((baseline_run / "results" / "change").glob("*_*/zones/*.csv"))
    assert tables
    for path in tables:
        t = pd.read_csv(path)
        cols = {"observed_both_pct", "sink_observed_t_yr", "sink_observed_t_yr_lo", "sink_observed_t_yr_hi",
                "sink_observed_t_ha_yr", "sink_partly_observed", "green_area_change_compared_ha", "green_area_compared_pct"}
        assert cols <= set(t.columns), path
        typed = t["observed_both_pct"].notna()
        assert typed.any()
        np.testing.assert_allclose(t.loc[typed, "observed_both_pct"], 100.0, atol=1e-6, err_msg=str(path))
        assert not t["sink_partly_observed"].astype(bool).any(), path
        # fully observed: the sink over land both years saw is the sink, and the vegetated area compared is the tables'
        np.testing.assert_allclose(t["sink_observed_t_yr"], t["sink_t_yr"], rtol=1e-9, atol=1e-9, err_msg=str(path))
        np.testing.assert_allclose(t["green_area_change_compared_ha"], t["green_area_change_ha"], atol=1e-4,
                                   err_msg=str(path))
