"""Tests of carbon models on several predictors (model.predictors) and of the coefficient table's
density model: known truths in generated plots, hand-worked predictions, and the per-pixel choice
between a type's model and its NDVI-only companion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greensink.carbon import density_map, model_use_stats, pixel_function, type_density
from greensink.errors import InputDataError, ModelError
from greensink.model import (
    PREDICTOR_GRIDS,
    ensemble_regressor,
    fallback_type_model,
    fit_form,
    fit_models,
    param_names,
    predict,
    predict_type,
    predictor_sets,
    select_model,
    spatial_folds,
    used_predictors,
)


def _plots(n: int = 80, seed: int = 3, noise: float = 0.05) -> pd.DataFrame:
    """Plots whose carbon depends on NDVI and canopy height: C = 2 + 20 NDVI + 1.5 height (t C/ha),
    times (1 + noise z); FVC is a noisy linear function of NDVI and canopy a 0/1 draw (both carry no
    extra information)."""
    rng = np.random.default_rng(seed)
    ndvi = rng.uniform(0.25, 0.85, n)
    height = rng.uniform(0.5, 20.0, n)
    carbon = (2.0 + 20.0 * ndvi + 1.5 * height) * (1 + noise * rng.standard_normal(n))
    return pd.DataFrame({
        "plot_id": [f"p{i:03d}" for i in range(n)],
        "type": "G1",
        "ndvi": ndvi,
        "fvc": np.clip((ndvi - 0.1) / 0.8 + rng.normal(0, 0.05, n), 0, 1),
        "canopy": (rng.uniform(size=n) < 0.5).astype(float),
        "height": height,
        "carbon_t_ha": carbon,
        "x_m": rng.uniform(0, 8000, n),
        "y_m": rng.uniform(0, 8000, n),
    })


def test_param_names_one_and_several_predictors():
    assert param_names("linear") == ("a", "b")
    assert param_names("power", ["height"]) == ("a", "b")
    assert param_names("linear", ["ndvi", "height"]) == ("a", "b_ndvi", "b_height")
    assert param_names("ensemble", ["height"])[-1] == f"y{PREDICTOR_GRIDS['height'].size - 1:03d}"
    names = param_names("ensemble", ["ndvi", "fvc"])
    assert names[0] == "base" and len(names) == 1 + 241 + 201 and names[1] == "ndvi_000" and names[-1] == "fvc_200"
    assert param_names("constant", ["ndvi", "fvc"]) == ("c",)
    with pytest.raises(ModelError, match="distinct names from ndvi, fvc, canopy, height"):
        param_names("linear", ["ndvi", "lai"])


def test_predictor_sets_are_every_subset_smallest_first():
    assert predictor_sets(["ndvi", "height"]) == [("ndvi",), ("height",), ("ndvi", "height")]
    assert len(predictor_sets(["ndvi", "fvc", "canopy", "height"])) == 15


def test_two_predictor_forms_by_hand():
    # x = (ndvi, height) at two pixels: (0.5, 4) and (0.25, 9)
    x = np.array([[0.5, 0.25], [4.0, 9.0]])
    preds = ("ndvi", "height")
    np.testing.assert_allclose(predict("linear", [1.0, 10.0, 2.0], x, preds), [1 + 5 + 8, 1 + 2.5 + 18])
    np.testing.assert_allclose(predict("logarithmic", [1.0, 2.0, 3.0], x, preds),
                               [1 + 2 * np.log(0.5) + 3 * np.log(4), 1 + 2 * np.log(0.25) + 3 * np.log(9)])
    np.testing.assert_allclose(predict("power", [10.0, 2.0, 0.5], x, preds), [10 * 0.25 * 2, 10 * 0.0625 * 3])
    np.testing.assert_allclose(predict("exponential", [2.0, 1.0, 0.1], x, preds),
                               [2 * np.exp(0.5 + 0.4), 2 * np.exp(0.25 + 0.9)])
    # a stack of draws gives (B, n); NaN in either predictor gives NaN
    draws = np.array([[1.0, 10.0, 2.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(predict("linear", draws, x, preds), [[14.0, 21.5], [4.0, 9.0]])
    out = predict("linear", [1.0, 10.0, 2.0], np.array([[0.5, np.nan], [np.nan, 9.0]]), preds)
    assert np.isnan(out).all()
    with pytest.raises(ModelError, match=r"shape \(2, \.\.\.\)"):
        predict("linear", [1.0, 10.0, 2.0], np.array([0.5, 0.25, 0.3]), preds)


@pytest.mark.parametrize("form,truth", [
    ("linear", (2.0, 20.0, 1.5)),
    ("exponential", (3.0, 1.5, 0.08)),
    ("power", (8.0, 1.2, 0.4)),
    ("logarithmic", (30.0, 12.0, 5.0)),
])
def test_two_predictor_fit_recovers_known_parameters(form, truth):
    rng = np.random.default_rng(11)
    X = np.column_stack([rng.uniform(0.25, 0.85, 200), rng.uniform(0.5, 20.0, 200)])
    y = predict(form, np.array(truth), X.T, ("ndvi", "height")) * (1 + 0.02 * rng.standard_normal(200))
    params = fit_form(form, X, y, "relative", ("ndvi", "height"))
    np.testing.assert_allclose(params, truth, rtol=0.1)
    grid = np.stack(np.meshgrid(np.linspace(0.25, 0.85, 7), np.linspace(0.5, 20, 7))).reshape(2, -1)
    fitted, true = predict(form, params, grid, ("ndvi", "height")), predict(form, np.array(truth), grid, ("ndvi", "height"))
    assert np.max(np.abs(fitted / true - 1)) < 0.03  # 2 % plot noise; the worst is the sparse low corner


def test_collinear_predictors_are_refused_with_the_fix():
    x = np.linspace(0.2, 0.8, 30)
    X = np.column_stack([x, 2 * x - 0.1])  # fvc an exact linear function of NDVI
    with pytest.raises(ModelError, match="collinear predictors.*Drop one of them"):
        fit_form("linear", X, 5 + 20 * x, "none", ("ndvi", "fvc"))
    with pytest.raises(ModelError, match="2 or more distinct canopy"):
        fit_form("linear", np.column_stack([x, np.zeros(30)]), 5 + 20 * x, "none", ("ndvi", "canopy"))
    with pytest.raises(ModelError, match="power form needs height x > 0"):
        fit_form("power", np.column_stack([x, np.r_[0.0, x[1:]]]), 5 + 20 * x, "none", ("ndvi", "height"))


def test_additive_ensemble_tables_reproduce_the_trees():
    plots = _plots(120)
    X = plots[["ndvi", "height"]].to_numpy()
    y = plots["carbon_t_ha"].to_numpy()
    table = fit_form("ensemble", X, y, "none", ("ndvi", "height"))
    reg = ensemble_regressor(2).fit(X, y)
    assert all(est.max_depth == 1 for est in reg.estimators_.ravel()) if hasattr(reg.estimators_[0, 0], "max_depth") \
        else reg.max_depth == 1
    # at grid nodes of both predictors the tables are exact (the stumps' sum is additive)
    g_n, g_h = PREDICTOR_GRIDS["ndvi"][60:200:7], PREDICTOR_GRIDS["height"][2:80:4]
    n = min(g_n.size, g_h.size)
    pts = np.column_stack([g_n[:n], g_h[:n]])
    np.testing.assert_allclose(predict("ensemble", table, pts.T, ("ndvi", "height")), reg.predict(pts), atol=1e-9)


def test_select_model_finds_the_informative_predictors():
    plots = _plots(120)
    preds = ("ndvi", "fvc", "height")
    X = plots[list(preds)].to_numpy()
    folds = spatial_folds(plots[["x_m", "y_m"]].to_numpy(), 2000.0, 5, 0)
    form, chosen, candidates = select_model(X, plots["carbon_t_ha"].to_numpy(), folds,
                                            ("linear", "exponential"), "relative", preds)
    assert (form, chosen) == ("linear", ("ndvi", "height")), {k: v.get("rmse_rel") for k, v in candidates.items()}
    assert len(candidates) == 2 * 7
    assert candidates["linear[ndvi+height]"]["predictors"] == ["ndvi", "height"]
    assert candidates["linear[ndvi+height]"]["rmse_rel"] < candidates["linear[ndvi]"]["rmse_rel"]


def test_fit_models_with_predictors_and_ndvi_only_companion():
    plots = _plots(80)
    plots.loc[plots.index[:10], "height"] = np.nan  # 10 plots outside the canopy height model
    models = fit_models(plots, None, types=["G1"], forms=("linear",), predictors=("ndvi", "height"),
                        n_bootstrap=30, seed=1)
    g1 = models["types"]["G1"]
    assert models["predictors"] == ["ndvi", "height"]
    assert g1["predictors"] == ["ndvi", "height"] and g1["n"] == 70 and g1["n_dropped_no_predictor"] == 10
    np.testing.assert_allclose([g1["params"]["a"], g1["params"]["b_ndvi"], g1["params"]["b_height"]],
                               [2.0, 20.0, 1.5], rtol=0.25)
    assert set(g1["predictor_ranges"]) == {"ndvi", "height"} and g1["x_range"] is None
    companion = g1["ndvi_only"]
    assert companion["predictors"] == ["ndvi"] and companion["n"] == 80
    assert len(g1["bootstrap"]) == 30 and len(g1["bootstrap"][0]) == 3
    assert used_predictors(models, ["G1"]) == ["ndvi", "height"]
    # the point estimate of the type follows the two-predictor curve
    x = np.array([[0.5], [10.0]])
    p = g1["params"]
    np.testing.assert_allclose(predict_type(models, "G1", x), p["a"] + 0.5 * p["b_ndvi"] + 10 * p["b_height"])


def test_pixel_function_uses_the_companion_where_height_is_missing():
    # one type, three pixels: full data, no height (outside the CHM), no NDVI (unobserved)
    models = {"types": {"G1": {
        "form": "linear", "predictors": ["ndvi", "height"], "params": {"a": 1.0, "b_ndvi": 10.0, "b_height": 2.0},
        "bootstrap": [[1.0, 10.0, 2.0], [0.0, 10.0, 2.0]], "predictor_ranges": {"ndvi": [0.2, 0.9], "height": [0, 30]},
        "ndvi_only": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 3.0, "b": 20.0},
                      "bootstrap": [[3.0, 20.0], [2.0, 20.0]], "predictor_ranges": {"ndvi": [0.2, 0.9]}},
    }}}
    fractions = np.array([[[1.0, 0.5, 1.0]]], dtype=np.float32)
    rasters = {"ndvi": np.array([[0.5, 0.5, np.nan]]), "height": np.array([[4.0, np.nan, 4.0]])}
    est, draws = pixel_function(models, ["G1"], fractions, rasters)(np.arange(3))
    # pixel 0: 1 + 5 + 8 = 14; pixel 1: half of 3 + 10 = 6.5; pixel 2: NaN
    np.testing.assert_allclose(est[:2], [14.0, 6.5])
    assert np.isnan(est[2])
    np.testing.assert_allclose(draws[:, :2], [[14.0, 6.5], [13.0, 6.0]])
    dens = type_density(models, ["G1"], fractions, rasters)
    np.testing.assert_allclose(dens[0, 0, :2], [14.0, 6.5])
    assert np.isnan(dens[0, 0, 2])
    stats = model_use_stats(models, ["G1"], fractions, rasters)["G1"]
    assert stats["ndvi_only_pct"] == pytest.approx(50.0) and stats["pixels"] == 3
    band = density_map(pixel_function(models, ["G1"], fractions, rasters), np.arange(3), (1, 3))
    np.testing.assert_allclose(band[0, 0, :2], [14.0, 6.5])
    # without its companion, a pixel with no height has no usable model: NaN, not 0
    del models["types"]["G1"]["ndvi_only"]
    est, _ = pixel_function(models, ["G1"], fractions, rasters)(np.arange(3))
    assert est[0] == 14.0 and np.isnan(est[1])
    with pytest.raises(ModelError, match=r"predictor raster\(s\) \['height'\]"):
        pixel_function(models, ["G1"], fractions, {"ndvi": rasters["ndvi"]})


def test_too_few_plots_with_every_predictor_gives_the_ndvi_model_with_a_note():
    plots = _plots(40)
    plots.loc[plots.index[:35], "height"] = np.nan
    models = fit_models(plots, None, types=["G1"], forms=("linear",), predictors=("ndvi", "height"), n_bootstrap=10)
    g1 = models["types"]["G1"]
    assert g1["predictors"] == ["ndvi"] and g1["n"] == 40 and "only 5 plots had every predictor" in g1["note"]


def test_missing_predictor_column_is_named():
    plots = _plots(20).drop(columns=["height"])
    with pytest.raises(InputDataError, match="Got no height"):
        fit_models(plots, None, types=["G1"], predictors=("ndvi", "height"))
    plots = _plots(20).astype({"fvc": object})
    plots.loc[3, "fvc"] = "n/a"
    with pytest.raises(InputDataError, match=r"fvc \(FVC\) must be a finite number.*'n/a' at plot_id 'p003'"):
        fit_models(plots, None, types=["G1"], predictors=("ndvi", "fvc"))


# ---------------------------------------------------------------------------------------------
# The coefficient table's density model


def _coefficients(**extra) -> pd.DataFrame:
    row = {"type": "G1", "c_above": 20.0, "c_below": 5.0, "c_soil": 40.0, "c_dead": 1.0, "uncertainty_pct": 30.0}
    row.update(extra)
    return pd.DataFrame([row])


def test_density_model_fallback_by_hand():
    plots = _plots(5)  # < min_plots
    coef = _coefficients(model_form="power", model_a=50.0, model_b=1.5)
    models = fit_models(plots, coef, types=["G1"], min_plots=10, n_bootstrap=2000, seed=4)
    g1 = models["types"]["G1"]
    assert g1["source"] == "coefficients" and g1["form"] == "power" and g1["params"] == {"a": 50.0, "b": 1.5}
    assert "density model (power, a = 50.0, b = 1.5" in g1["reason"] and "5 plots < min_plots 10" in g1["reason"]
    # C = 50 * 0.64**1.5 = 25.6 t C/ha at NDVI 0.64
    assert predict_type(models, "G1", np.array([0.64]))[0] == pytest.approx(25.6)
    draws = predict("power", np.asarray(g1["bootstrap"]), np.array([0.64]))[:, 0]
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert lo == pytest.approx(25.6 * 0.7, rel=0.03) and hi == pytest.approx(25.6 * 1.3, rel=0.03)
    # without model_form the constant c_above + c_below is used
    const = fit_models(plots, _coefficients(model_form=""), types=["G1"], min_plots=10, n_bootstrap=10)
    assert const["types"]["G1"]["form"] == "constant" and const["types"]["G1"]["params"] == {"c": 25.0}


def test_linear_density_model_draws_scale_the_whole_curve():
    m = fallback_type_model("XG", 10.0, 50.0, 0, "test", n_bootstrap=500, seed=1,
                            density_model=("linear", -6.0, 40.0))
    draws = np.asarray(m["bootstrap"])
    ratio = predict("linear", draws, np.array([0.3, 0.8])) / predict("linear", np.array([-6.0, 40.0]), np.array([0.3, 0.8]))
    np.testing.assert_allclose(ratio[:, 0], ratio[:, 1])  # the same factor at every NDVI


@pytest.mark.parametrize("extra,message", [
    ({"model_form": "cubic", "model_a": 1.0, "model_b": 2.0}, "model_form must be empty or one of linear"),
    ({"model_form": "power", "model_a": "x", "model_b": 2.0}, "model_a must be a finite number for model_form power"),
    ({"model_form": "linear", "model_a": 1.0}, "model_b must be a finite number"),
])
def test_bad_density_model_rows_are_named(extra, message):
    with pytest.raises(InputDataError, match=message):
        fit_models(_plots(5), _coefficients(**extra), types=["G1"], min_plots=10)


def test_one_se_rule_keeps_an_uninformative_predictor_out():
    # carbon depends on NDVI only; canopy is a coin flip. Over 10 seeds the canopy set must never be
    # chosen although by chance it sometimes has a slightly lower CV error.
    chosen_sets, lower_by_chance = set(), 0
    for seed in range(10):
        plots = _plots(60, seed=seed)
        y = (2.0 + 20.0 * plots["ndvi"]) * (1 + 0.1 * np.random.default_rng(seed).standard_normal(60))
        X = plots[["ndvi", "canopy"]].to_numpy()
        folds = spatial_folds(plots[["x_m", "y_m"]].to_numpy(), 2000.0, 5, 0)
        form, chosen, cands = select_model(X, y.to_numpy(), folds, ("linear",), "relative", ("ndvi", "canopy"))
        chosen_sets.add(chosen)
        lower_by_chance += cands["linear[ndvi+canopy]"]["rmse_rel"] < cands["linear[ndvi]"]["rmse_rel"]
    assert chosen_sets == {("ndvi",)}
    assert lower_by_chance >= 1  # the rule, not luck, kept canopy out


# ---------------------------------------------------------------------------------------------
# Residual bootstrap (model.bootstrap: residuals)


def _line_plots(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 0.9, n)
    y = 2.0 + 10.0 * x + rng.normal(0.0, 1.0, n)
    return x, y, rng.uniform(0, 5000, (n, 2)), [f"p{i:02d}" for i in range(n)]


def test_residual_bootstrap_slope_spread_matches_the_textbook_formula():
    from greensink.model import fit_type_model

    x, y, xy, ids = _line_plots()
    m = fit_type_model("G1", x, y, xy, ids, forms=("linear",), weighting="none", n_bootstrap=4000, seed=2,
                       bootstrap="residuals")
    slopes = np.asarray(m["bootstrap"])[:, 1]
    # resampling the n raw OLS residuals: Var(b*) = (SSR / n) / Sxx
    a, b = m["params"]["a"], m["params"]["b"]
    ssr = float(np.sum((y - a - b * x) ** 2))
    expected_sd = np.sqrt(ssr / x.size / np.sum((x - x.mean()) ** 2))
    assert np.std(slopes) == pytest.approx(expected_sd, rel=0.05)
    assert np.mean(slopes) == pytest.approx(b, abs=0.1 * expected_sd)
    assert m["bootstrap_scheme"] == "residuals"


def test_residual_bootstrap_relative_keeps_the_plots_and_is_paired():
    from greensink.model import bootstrap_indices, fit_type_model

    x, y, xy, ids = _line_plots()
    kw = {"forms": ("linear",), "n_bootstrap": 50, "seed": 5, "bootstrap": "residuals"}
    m = fit_type_model("XG", x, y, xy, ids, **kw)
    # draw 0 by hand: the fitted carbon times 1 + the relative residuals at the draw's indices
    order = np.argsort(ids)
    xs, ys = x[order], y[order]
    yhat = m["params"]["a"] + m["params"]["b"] * xs
    rel = (ys - yhat) / yhat
    idx = bootstrap_indices(x.size, 50, 5, "XG")[0]
    np.testing.assert_allclose(m["bootstrap"][0], fit_form("linear", xs, yhat * (1 + rel[idx])), rtol=1e-12)
    # another year with the same plot ids draws the same residual indices: the same draws for equal data
    again = fit_type_model("XG", x[::-1], y[::-1], xy[::-1], ids[::-1], **kw)
    assert again["bootstrap"] == m["bootstrap"]
    with pytest.raises(ModelError, match="bootstrap must be one of plots, residuals"):
        fit_type_model("XG", x, y, xy, ids, bootstrap="wild")


# ---------------------------------------------------------------------------------------------
# model.selection first_year: later years refit the first year's choice


def _curve_plots(form: str, params: tuple[float, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ndvi = rng.uniform(0.2, 0.9, 60)
    carbon = predict(form, np.array(params), ndvi) * (1 + 0.03 * rng.standard_normal(60))
    return pd.DataFrame({"plot_id": [f"p{i:02d}" for i in range(60)], "type": "G1", "ndvi": ndvi,
                         "carbon_t_ha": carbon, "x_m": rng.uniform(0, 6000, 60), "y_m": rng.uniform(0, 6000, 60)})


def test_later_years_refit_the_first_years_choice():
    kw = {"types": ["G1", "G2"], "forms": ("linear", "exponential"), "n_bootstrap": 20, "seed": 3}
    coef = pd.DataFrame([{"type": "G2", "c_above": 10.0, "c_below": 2.0, "uncertainty_pct": 30.0}])
    first = fit_models(_curve_plots("linear", (-2.0, 30.0), 1), coef, **kw)
    first["year"] = 2023
    assert first["types"]["G1"]["form"] == "linear" and first["types"]["G2"]["source"] == "coefficients"
    later_plots = pd.concat([_curve_plots("exponential", (1.0, 4.0), 2),
                             _curve_plots("exponential", (1.0, 4.0), 5).assign(type="G2", plot_id=lambda d: "q" + d["plot_id"])])
    free = fit_models(later_plots, coef, **kw)
    assert free["types"]["G1"]["form"] == "exponential"  # chosen afresh, the data's own form
    anchored = fit_models(later_plots, coef, anchor=first, **kw)
    g1 = anchored["types"]["G1"]
    assert g1["form"] == "linear" and g1["selection"] == {"mode": "first_year", "anchor_year": 2023, "form": "linear",
                                                          "predictors": ["ndvi"]}
    assert list(g1["candidates"]) == ["linear"] and anchored["anchor_year"] == 2023
    # refitted to this year's plots: the linear fit of the exponential data, not the first year's line
    X = later_plots[later_plots["type"] == "G1"]
    expect = fit_form("linear", X["ndvi"].to_numpy(), X["carbon_t_ha"].to_numpy())
    np.testing.assert_allclose([g1["params"]["a"], g1["params"]["b"]], expect, rtol=1e-9)
    # G2 used the table in the first year: chosen afresh now that it has plots
    assert anchored["types"]["G2"]["source"] == "plots" and anchored["types"]["G2"]["selection"]["mode"] == "per_year"


def test_chosen_ndvi_model_uses_every_plot_with_ndvi_in_both_selection_modes():
    # carbon depends on NDVI only; 20 of 60 plots lack a height. CV compares sets on the 40 complete
    # plots, but the chosen NDVI model is refitted on all 60, as the anchored later year does.
    plots = _plots(60)
    plots["carbon_t_ha"] = 2.0 + 20.0 * plots["ndvi"] * (1 + 0.05 * np.random.default_rng(1).standard_normal(60))
    plots.loc[plots.index[:20], "height"] = np.nan
    kw = {"types": ["G1"], "forms": ("linear",), "predictors": ("ndvi", "height"), "n_bootstrap": 10}
    first = fit_models(plots, None, **kw)
    g1 = first["types"]["G1"]
    assert g1["predictors"] == ["ndvi"] and g1["n"] == 60 and g1["selected_on_n"] == 40
    assert g1["n_dropped_no_predictor"] == 0 and "ndvi_only" not in g1
    first["year"] = 2023
    later = fit_models(plots, None, anchor=first, **kw)["types"]["G1"]
    assert later["n"] == 60 and later["params"] == g1["params"] and later["bootstrap"] == g1["bootstrap"]


def test_anchor_not_used_says_why():
    plots = _plots(60)
    kw = {"types": ["G1"], "forms": ("linear",), "n_bootstrap": 5}
    first = fit_models(plots, None, predictors=("ndvi", "height"), **kw)
    first["year"] = 2023
    assert first["types"]["G1"]["predictors"] == ["ndvi", "height"]
    # this year height is not configured: chosen afresh, and the reason names the anchor's choice
    sel = fit_models(plots, None, predictors=("ndvi",), anchor=first, **kw)["types"]["G1"]["selection"]
    assert sel["mode"] == "per_year" and sel["anchor_year"] == 2023
    assert "2023 choice (linear on ndvi+height) uses predictors not in model.predictors ['ndvi']" in sel["reason"]
    # only height configured: the anchor's companion on NDVI cannot be refitted and is not tried
    only_h = fit_models(plots, None, predictors=("height",), anchor={**first, "types": {"G1": {
        **first["types"]["G1"], "predictors": ["height"]}}}, **kw)["types"]["G1"]
    assert only_h["predictors"] == ["height"] and "ndvi_only" not in only_h
    assert only_h["selection"]["mode"] == "first_year"


def test_companion_share_is_reported_as_zero_when_every_pixel_has_height():
    models = {"types": {"G1": {
        "form": "linear", "predictors": ["ndvi", "height"], "params": {"a": 1.0, "b_ndvi": 10.0, "b_height": 2.0},
        "bootstrap": [[1.0, 10.0, 2.0]], "predictor_ranges": {"ndvi": [0.2, 0.9], "height": [0, 30]},
        "ndvi_only": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 3.0, "b": 20.0},
                      "bootstrap": [[3.0, 20.0]], "predictor_ranges": {"ndvi": [0.2, 0.9]}},
    }}}
    rasters = {"ndvi": np.array([[0.5, 0.6]]), "height": np.array([[4.0, 5.0]])}
    stats = model_use_stats(models, ["G1"], np.ones((1, 1, 2), dtype=np.float32), rasters)["G1"]
    assert stats["ndvi_only_pct"] == 0.0 and "no_usable_model_pct" not in stats
