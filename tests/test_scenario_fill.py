"""The scenario zone tables take the baseline year's fill of unobserved typed land from fill.json (issue 14 item 3).

A 4 × 4 grid of 10 m pixels: G1 on the left half (zone A, columns 0-1) with carbon 10 + 100 NDVI t C/ha, NDVI 0.4-0.7
by row, pixel (0, 1) clouded (NaN) and pixel (3, 1) half typed; zone B (columns 2-3) bare and untyped. The fill of the
clouded G1 land is the fraction-weighted mean density of the observed G1 pixels, computed here by hand. The tables
made from fill.json (written by greensink.carbon.write_fill, read back by read_fill as the rule does) are the tables
made by computing the fill in the scenario, bit for bit; a fill.json with another value moves the zone's stock and
the plan's difference by exactly that value times the clouded land.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from greensink.carbon import read_fill, type_fill, write_fill
from greensink.carbon.fill import models_digest
from greensink.coverage import coverage_matrix
from greensink.grid import Grid
from greensink.scenario import scenarios
from greensink.scenario.burn import Landscape, Thresholds, burn, scenario_models
from greensink.scenario.tables import Setting, scenario_tables

CRS = "EPSG:32651"
GRID = Grid(crs=CRS, transform=Affine(10.0, 0.0, 0.0, 0.0, -10.0, 40.0), width=4, height=4)
PA = GRID.pixel_area_ha  # 0.01 ha
TH = Thresholds(ndvi_vegetation=0.2, ndvi_shrub=0.35, ndvi_tree=0.5, ndvi_soil=0.05, ndvi_full=0.85)
YEAR = 2024
NO_NOISE = {"curve": True, "table": False, "residual": {"enabled": False}, "ndvi": {"enabled": False},
            "edges": {"enabled": False}}
ROW_NDVI = np.array([0.4, 0.5, 0.6, 0.7])
REL = 1e-6  # hand values against the tables: the rasters and per-pixel densities are float32


def models() -> dict:
    """G1: 10 + 100 NDVI t C/ha, 30 bootstrap draws whose intercepts spread around 10 (so the fill's draws differ)."""
    boot = [[10.0 + 0.25 * (i - 15), 100.0] for i in range(30)]
    return {"types": {"G1": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 10.0, "b": 100.0},
                             "bootstrap": boot, "x_range": [0.0, 1.0]}}, "seed": 3, "year": YEAR}


def landscape() -> Landscape:
    left = np.zeros((4, 4), dtype=np.float32)
    left[:, :2] = 1
    ndvi = np.where(left > 0, ROW_NDVI[:, None], 0.1).astype(np.float32)
    ndvi[0, 1] = np.nan  # clouded G1 pixel
    fractions = left[None].copy()
    fractions[0, 3, 1] = 0.5  # half typed
    rasters = {"ndvi": ndvi, "fvc": np.where(left > 0, 0.6, 0.06).astype(np.float32), "canopy": left.copy(),
               "height": np.full((4, 4), np.nan, np.float32), "vegetation": left.copy(), "tree_shrub": left.copy()}
    gs = gpd.GeoDataFrame({"type": ["G1"]}, geometry=[shapely.box(0, 0, 20, 40)], crs=CRS)
    return Landscape(rasters=rasters, fractions=fractions, types=["G1"], greenspace=gs, type_column="type")


def hand_fill() -> float:
    """The fraction-weighted mean of 10 + 100 NDVI over the observed G1 pixels (all but (0, 1))."""
    dens, w = [], []
    for r in range(4):
        for c in range(2):
            if (r, c) != (0, 1):
                dens.append(10.0 + 100.0 * ROW_NDVI[r])
                w.append(0.5 if (r, c) == (3, 1) else 1.0)
    return float(np.dot(dens, w) / np.sum(w))


def hand_observed_stock() -> float:
    """t C of zone A's observed G1 pixels."""
    return sum((10.0 + 100.0 * ROW_NDVI[r]) * (0.5 if (r, c) == (3, 1) else 1.0) * PA
               for r in range(4) for c in range(2) if (r, c) != (0, 1))


def tables(fill=None, change=None):
    base, m = landscape(), models()
    changes = [change[0]] if change else []
    sc = scenarios({"years": [YEAR], "scenarios": [{"name": "plan", "changes": changes}]})[0]
    scen = burn(base, sc, [np.array([change[1]], dtype=object)] if change else [], GRID, TH)
    zones = gpd.GeoDataFrame({"zone_id": ["A", "B"], "parent_id": ["", ""], "level": "block", "name": ["a", "b"]},
                             geometry=[shapely.box(0, 0, 20, 40), shapely.box(20, 0, 40, 40)], crs=CRS)
    setting = Setting(levels=["block"], zones=[zones], matrices=[coverage_matrix(list(zones.geometry.values),
                                                                                 GRID.transform, GRID.shape)],
                      grid=GRID, park_types=["G1"], park_service=[{"min_area_m2": 5000, "radius_m": 500}],
                      uncertainty=NO_NOISE, seed=5)
    baseline = {"block": pd.DataFrame({"zone_id": ["A", "B"], "carbon_t": [1.0, 0.0], "green_coverage_pct": [100.0, 0.0]})}
    t, totals = scenario_tables(sc, base, m, scen, scenario_models(m, sc), np.zeros((4, 4), np.float32), baseline, [],
                                setting, fill=fill)
    return t["block"], totals


def written_fill(tmp_path, fill=None, year=YEAR):
    """The fill as the rule writes it (type_fill of the baseline, or ``fill``) read back as the scenario rule does."""
    base, m = landscape(), models()
    if fill is None:
        fill = type_fill(m, base.types, base.fractions, {"ndvi": base.rasters["ndvi"]}, seed=int(m["seed"]))
    path = write_fill(tmp_path / "fill.json", fill, year=year, seed=int(m["seed"]), models_sha256=models_digest(m))
    return path


CONSTRUCTION = ({"kind": "construction", "path": "x"}, shapely.box(10, 30, 20, 40))  # takes the clouded pixel (0, 1)


def test_the_computed_fill_is_the_hand_mean_of_the_observed_pixels():
    table, _ = tables()
    assert table.loc[0, "carbon_t"] == pytest.approx(hand_observed_stock() + hand_fill() * PA, rel=REL)
    assert table.loc[0, "carbon_t_filled"] == pytest.approx(hand_fill() * PA, rel=REL)
    assert table.loc[0, "carbon_t_observed"] == pytest.approx(hand_observed_stock(), rel=REL)


@pytest.mark.parametrize("change", [None, CONSTRUCTION])
def test_tables_from_fill_json_equal_the_computed_fill_bit_for_bit(tmp_path, change):
    direct, direct_totals = tables(change=change)
    fill = read_fill(written_fill(tmp_path), models=models(), year=YEAR)
    from_file, file_totals = tables(fill=fill, change=change)
    pd.testing.assert_frame_equal(pd.DataFrame(from_file.drop(columns="geometry")),
                                  pd.DataFrame(direct.drop(columns="geometry")), check_exact=True)
    pd.testing.assert_frame_equal(file_totals, direct_totals, check_exact=True)
    if change:  # the construction takes the clouded pixel's filled stock: the difference is minus the fill
        assert direct.loc[0, "difference_t"] == pytest.approx(-hand_fill() * PA, rel=REL)


def test_the_fill_in_fill_json_is_the_one_used_by_both_states(tmp_path):
    base = read_fill(written_fill(tmp_path), models=models(), year=YEAR)
    other = {"G1": {**base["G1"], "fill_t_ha": 50.0, "spread_t_ha": 0.0, "draws": np.full(30, 50.0)}}
    fill = read_fill(written_fill(tmp_path, other), models=models(), year=YEAR)
    table, totals = tables(fill=fill, change=CONSTRUCTION)
    assert table.loc[0, "baseline_carbon_t"] == 1.0  # the baseline tables given, untouched
    # the scenario has no clouded G1 land left; its difference removes 50 t C/ha × 0.01 ha, in every draw
    assert table.loc[0, "difference_t"] == pytest.approx(-0.5, rel=REL)
    assert table.loc[0, "difference_t_lo"] == pytest.approx(-0.5, rel=REL)
    assert table.loc[0, "difference_t_hi"] == pytest.approx(-0.5, rel=REL)
    unchanged, _ = tables(fill=fill)
    assert unchanged.loc[0, "carbon_t"] == pytest.approx(hand_observed_stock() + 50.0 * PA, rel=REL)
    assert unchanged.loc[0, "difference_t"] == 0.0

