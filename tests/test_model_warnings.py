"""Warnings that matter: a model worse than the plots' mean in CV, plots dated outside `years`."""

from __future__ import annotations

import json
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from greensink.grid import Grid
from greensink.model import cross_validate, fit_models, spatial_folds, worse_than_mean
from greensink.plots import outside_years, prepare_plots

COEFFICIENTS = pd.DataFrame({"type": ["G1"], "c_above": [30.0], "c_below": [6.0], "c_soil": [40.0],
                             "c_dead": [1.0], "uncertainty_pct": [25.0]})


def noise_plots(n: int = 30, seed: int = 3) -> pd.DataFrame:
    """Carbon 30 t C/ha × (1 ± 30 % noise), unrelated to NDVI: no curve beats the mean in CV."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 0.8, n)
    xy = rng.uniform(0.0, 5000.0, (n, 2))
    y = 30.0 * (1.0 + 0.3 * rng.standard_normal(n))
    return pd.DataFrame({"plot_id": [f"p{i:02d}" for i in range(n)], "type": "G1", "x": x, "carbon_t_ha": y,
                         "x_m": xy[:, 0], "y_m": xy[:, 1]})


def test_worse_than_mean_is_cv_r2_below_zero_only():
    def plots_model(r2):
        return {"source": "plots", "form": "linear", "predictors": ["ndvi"], "n": 12, "cv": {"r2": r2}}

    assert worse_than_mean(plots_model(0.0)) is None  # as good as the mean: not flagged
    assert worse_than_mean(plots_model(0.05)) is None
    assert worse_than_mean(plots_model(None)) is None  # all plots alike: R² undefined
    assert worse_than_mean({"source": "coefficients", "cv": None}) is None
    assert worse_than_mean(plots_model(-0.0004)) == (
        "the chosen linear model on ndvi from 12 plots has cross-validated R² -0.000 < 0: it predicts held-out "
        "plots worse than the plots' mean density")


def test_model_worse_than_mean_falls_back_to_the_table_with_a_warning(caplog):
    plots = noise_plots()
    with caplog.at_level(logging.WARNING, logger="greensink.model"):
        model = fit_models(plots, COEFFICIENTS, types=["G1"], n_bootstrap=5)
    g1 = model["types"]["G1"]
    rejected = g1["rejected_model"]
    # the rejected model's CV R², recomputed from its own form on the same folds, is below 0
    folds = spatial_folds(plots[["x_m", "y_m"]].to_numpy(), 1000.0, 5, 0)
    order = np.argsort(plots["plot_id"].to_numpy())  # fit_type_model sorts plots by id (already sorted here)
    cv = cross_validate(rejected["form"], plots["x"].to_numpy()[order], plots["carbon_t_ha"].to_numpy()[order], folds)
    assert rejected["cv"]["r2"] == pytest.approx(cv["r2"]) and cv["r2"] < 0
    assert rejected["n"] == 30 and rejected["form"] == "power"
    # the type uses the table: c_above + c_below = 30 + 6 = 36 t C/ha
    assert g1["source"] == "coefficients" and g1["params"] == {"c": 36.0} and g1["n"] == 30
    assert g1["cv_worse_than_mean"] is True
    r2 = f"{rejected['cv']['r2']:.3f}"
    assert g1["reason"] == (
        f"the chosen power model on ndvi from 30 plots has cross-validated R² {r2} < 0: it predicts held-out plots "
        "worse than the plots' mean density: using coefficient table (c_above + c_below = 36.0 t C/ha)")
    assert g1["warnings"] == [
        f"the chosen power model on ndvi from 30 plots has cross-validated R² {r2} < 0: it predicts held-out plots "
        "worse than the plots' mean density; the coefficient table is used instead"]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == [f"type G1: {g1['warnings'][0]}"]
    json.dumps(model, allow_nan=False)


def test_model_worse_than_mean_is_kept_and_flagged_without_a_table_row(caplog):
    table = COEFFICIENTS.assign(type="G2")  # a row for another type only
    with caplog.at_level(logging.WARNING, logger="greensink.model"):
        model = fit_models(noise_plots(), table, types=["G1"], n_bootstrap=5)
    g1 = model["types"]["G1"]
    assert g1["source"] == "plots" and g1["form"] == "power" and g1["cv"]["r2"] < 0
    assert g1["cv_worse_than_mean"] is True and "rejected_model" not in g1
    assert len(g1["warnings"]) == 1 and g1["warnings"][0].endswith(
        "kept, because the coefficient table has no row for G1: its estimates are no better than the plots' mean "
        "density. Add a row for G1 to the coefficient table, or add plots")
    assert "cross-validated R² -0." in caplog.text and "kept, because the coefficient table has no row" in caplog.text


def test_model_better_than_mean_is_used_without_warning(caplog):
    plots = noise_plots()
    plots["carbon_t_ha"] = 5.0 + 50.0 * plots["x"] * (1.0 + 0.05 * np.sin(np.arange(len(plots))))
    with caplog.at_level(logging.WARNING, logger="greensink.model"):
        model = fit_models(plots, COEFFICIENTS, types=["G1"], n_bootstrap=5)
    g1 = model["types"]["G1"]
    assert g1["source"] == "plots" and g1["cv"]["r2"] > 0.9
    assert g1["cv_worse_than_mean"] is False and g1["warnings"] == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- the report's model section -------------------------------------------------------------


def test_report_says_what_was_done_about_a_model_worse_than_the_mean():
    import re

    from greensink.report import render_report
    from test_report import make_inputs

    inputs = make_inputs()
    warning = ("the chosen linear model on ndvi from 15 plots has cross-validated R² -0.210 < 0: it predicts held-out "
               "plots worse than the plots' mean density")
    models = {}
    for year, m in inputs["models"].items():
        types = dict(m["types"])
        # G1 fell back to the table (it has a row); G2 was kept (no row) and flagged
        types["G1"] = {**types["EG"], "type": "G1", "params": {"c": 30.0}, "n": 24, "cv_worse_than_mean": True,
                       "reason": f"{warning}: using coefficient table (c_above + c_below = 30.0 t C/ha)",
                       "warnings": [f"{warning}; the coefficient table is used instead"]}
        types["G2"] = {**types["G2"], "cv": {**types["G2"]["cv"], "r2": -0.21}, "cv_worse_than_mean": True,
                       "warnings": [f"{warning}; kept, because the coefficient table has no row for G2"]}
        models[year] = {**m, "types": types}
    html = render_report(**{**inputs, "models": models})
    section = html[html.index('id="models"'):html.index('id="plausibility"')]
    warnings = re.findall(r'<div class="warning">(.*?)</div>', section, flags=re.S)
    assert len(warnings) == 3 * len(models)  # G1 (fallback), G2 (kept), EG (too few plots) in each year
    g1 = [w for w in warnings if "G1" in w]
    g2 = [w for w in warnings if "G2" in w]
    assert len(g1) == len(g2) == len(models)
    assert all("the fitted model was worse than the plots' mean in cross-validation and was set aside" in w
               and "R² -0.210 &lt; 0" in w and "using coefficient table (c_above + c_below = 30.0 t C/ha)" in w
               for w in g1)
    assert all("is still used, because the coefficient table has no row for this type" in w
               and "kept, because the coefficient table has no row for G2" in w for w in g2)
    eg = [w for w in warnings if "EG" in w]
    assert not any("set aside" in w for w in eg)  # too few plots is not a CV verdict


# --- plots dated outside the reporting years -------------------------------------------------


def test_plots_outside_the_reporting_years_are_counted_by_year():
    grid = Grid.from_bounds((500_000.0, 3_400_000.0, 501_000.0, 3_401_000.0), 10, "EPSG:32651")
    years = [2019, 2023, 2023, 2021, 2024, 2021, 2021, 2022]
    gdf = gpd.GeoDataFrame(
        {"pid": [f"P{i}" for i in range(8)], "kind": "G1", "c": 20.0, "yr": years},
        geometry=[Point(500_005.0 + 100 * i, 3_400_005.0) for i in range(8)], crs="EPSG:32651")
    plots = prepare_plots(gdf, {"id_column": "pid", "carbon_column": "c", "type_column": "kind", "year_column": "yr"},
                          ["G1"], grid, "data/plots.gpkg")
    unused = outside_years(plots, [2023, 2024], "data/plots.gpkg", "yr")
    # 2019 once, 2021 three times, 2022 once: 5 of 8 plots are in no reporting year
    assert unused["n"] == 5 and unused["n_plots"] == 8
    assert unused["years"] == {"2019": 1, "2021": 3, "2022": 1}
    assert unused["plot_ids"] == ["P0", "P3", "P5", "P6", "P7"]
    assert unused["file"] == "data/plots.gpkg" and unused["column"] == "yr"
    assert unused["message"] == (
        "data/plots.gpkg: 5 of 8 plots are dated outside the reporting years [2023, 2024] (column 'yr': "
        "2019 (1 plot), 2021 (3 plots), 2022 (1 plot)) and are used by no year's model. Add those years to "
        "`years`, or correct the plots' years if they were measured in a reporting year.")
    json.dumps(unused)
    assert outside_years(plots, [2019, 2021, 2022, 2023, 2024], "data/plots.gpkg", "yr") is None
