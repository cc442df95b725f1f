"""Plot carbon from a tree inventory (greensink.inventory): draws of the allometric and measurement
errors per tree, plot sums in t C/ha by hand, tree/plot matching errors, paired draws across years,
the model's bootstrap refits on the plots' draws, and a Snakemake run with a tree inventory."""

from __future__ import annotations

import math
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import Point

from greensink import package_data
from greensink.allometry import params_from_mapping
from greensink.config import read_yaml
from greensink.errors import ConfigError, InputDataError
from greensink.inventory import (
    CHAVE2014_RSE_LN,
    JENKINS2003_RMSE_LN,
    TreeErrors,
    draws_by_plot,
    plot_carbon,
    tree_carbon_draws,
)
from greensink.model import fit_models, fit_type_model, predict_draws

PARAMS = params_from_mapping(read_yaml(package_data.file_path(package_data.ALLOMETRY)))  # config/allometry.yaml
NO_MEASUREMENT = TreeErrors(dbh_sd_pct=0.0, dbh_sd_cm=0.0, height_sd_pct=0.0)
ONLY_MEASUREMENT = TreeErrors(allometric=False)
N = 20_000


def trees(**cols) -> pd.DataFrame:
    base = {"tree_key": ["a", "b", "c"], "year": [2023] * 3, "equation": ["chave2014", "chave2014", "jenkins2003:pine"],
            "dbh_cm": [30.0, 20.0, 25.0], "height_m": [15.0, 10.0, 12.0], "carbon_kg": [208.092, 63.483, 150.0]}
    base.update(cols)
    return pd.DataFrame(base)


# ---------------------------------------------------------------------------- per-tree draws


def test_allometric_draws_have_the_published_ln_sd_and_keep_the_mean():
    t = trees()
    d = tree_carbon_draws(t, n_draws=N, seed=3, errors=NO_MEASUREMENT)
    ln = np.log(d / t["carbon_kg"].to_numpy()[:, None])
    sd = ln.std(axis=1, ddof=1)
    # sd of a sample sd of N normals ≈ σ/√(2N) = 0.357/200 = 0.0018; 4 of them
    assert sd[0] == pytest.approx(CHAVE2014_RSE_LN, abs=4 * 0.357 / math.sqrt(2 * N))
    assert sd[1] == pytest.approx(CHAVE2014_RSE_LN, abs=4 * 0.357 / math.sqrt(2 * N))
    assert sd[2] == pytest.approx(JENKINS2003_RMSE_LN["pine"], abs=4 * 0.254 / math.sqrt(2 * N))  # 0.253781
    # mean-preserving: E[exp(σε − σ²/2)] = 1, so the draws' mean is the point value of greensink.allometry;
    # its standard error is √(exp(σ²) − 1)/√N = 0.368/141 = 0.26 % for σ = 0.357
    rel_mean = d.mean(axis=1) / t["carbon_kg"].to_numpy()
    assert rel_mean[0] == pytest.approx(1.0, abs=4 * 0.0026)
    assert rel_mean[1] == pytest.approx(1.0, abs=4 * 0.0026)
    # the median is the point value × exp(−σ²/2) = 208.092 × 0.938263 = 195.245 kg C (Chave's mean vs median)
    assert np.median(d[0]) == pytest.approx(208.092 * math.exp(-0.357**2 / 2), rel=0.01)
    assert np.mean(ln[0]) == pytest.approx(-0.357**2 / 2, abs=4 * 0.357 / math.sqrt(N))


def test_measurement_error_of_one_tree_matches_the_delta_method():
    # white oak D = 30 cm, H = 15 m, chave2014: AGB ∝ D^(2·0.976) H^0.976
    # s_D = 0.0904 + 0.0062 × 30 = 0.2764 cm → cv_D = 0.009213; cv_H = 10 %
    # sd ln AGB ≈ √((1.952 × 0.009213)² + (0.976 × 0.10)²) = √(0.00032345 + 0.00952576) = 0.09924
    t = trees().iloc[[0]]
    d = tree_carbon_draws(t, n_draws=N, seed=5, errors=ONLY_MEASUREMENT)
    ln = np.log(d[0] / 208.092)
    assert ln.std(ddof=1) == pytest.approx(0.09924, rel=0.03)
    # height alone: 0.976 × 0.10 = 0.0976; DBH alone: 1.952 × 0.009213 = 0.017985
    h_only = tree_carbon_draws(t, n_draws=N, seed=5, errors=TreeErrors(allometric=False, dbh_sd_pct=0, dbh_sd_cm=0))
    assert np.log(h_only[0] / 208.092).std(ddof=1) == pytest.approx(0.0976, rel=0.03)
    d_only = tree_carbon_draws(t, n_draws=N, seed=5, errors=TreeErrors(allometric=False, height_sd_pct=0))
    assert np.log(d_only[0] / 208.092).std(ddof=1) == pytest.approx(0.017985, rel=0.03)
    # Jenkins (DBH only): D = 25 cm, s_D = 0.0904 + 0.155 = 0.2454 cm → 2.4349 × 0.2454/25 = 0.023901; height ignored
    j = tree_carbon_draws(trees().iloc[[2]], n_draws=N, seed=5, errors=ONLY_MEASUREMENT)
    assert np.log(j[0] / 150.0).std(ddof=1) == pytest.approx(0.023901, rel=0.03)


def test_draws_depend_on_the_tree_key_not_the_row_order():
    t = trees()
    d = tree_carbon_draws(t, n_draws=50, seed=9, errors=TreeErrors())
    again = tree_carbon_draws(t.iloc[[2, 0, 1]], n_draws=50, seed=9, errors=TreeErrors())
    np.testing.assert_array_equal(again, d[[2, 0, 1]])
    other_seed = tree_carbon_draws(t, n_draws=50, seed=10, errors=TreeErrors())
    assert not np.allclose(other_seed, d)


def test_remeasured_tree_draws_are_paired_across_years_as_configured():
    two = pd.DataFrame({"tree_key": ["oak", "oak"], "year": [2023, 2024], "equation": ["chave2014"] * 2,
                        "dbh_cm": [30.0, 31.0], "height_m": [15.0, 15.5], "carbon_kg": [208.092, 225.0]})
    # allometric error only, correlation 1 (default): the same factor in both years, so it cancels in the change ratio
    d = tree_carbon_draws(two, n_draws=2000, seed=1, errors=NO_MEASUREMENT)
    np.testing.assert_allclose(d[1] / 225.0, d[0] / 208.092)
    # correlation 0: independent factors, sample correlation of the ln factors ≈ 0 (± 4/√2000 = 0.09)
    e = tree_carbon_draws(two, n_draws=2000, seed=1, errors=TreeErrors(dbh_sd_pct=0, dbh_sd_cm=0, height_sd_pct=0,
                                                                         allometric_year_correlation=0.0))
    r = np.corrcoef(np.log(e[0] / 208.092), np.log(e[1] / 225.0))[0, 1]
    assert abs(r) < 0.09
    # defaults: allometric persists (σ² = 0.1274), measurement new each year (0.0985² = 0.0097 per year):
    # correlation of ln factors = 0.1274 / (0.1274 + 0.0097) = 0.929
    f = tree_carbon_draws(two, n_draws=4000, seed=1, errors=TreeErrors())
    r = np.corrcoef(np.log(f[0] / 208.092), np.log(f[1] / 225.0))[0, 1]
    assert r == pytest.approx(0.929, abs=0.02)


def test_error_settings_are_checked():
    with pytest.raises(ConfigError, match="height_sd_pct must be a number >= 0"):
        TreeErrors.from_mapping({"height_sd_pct": -1})
    with pytest.raises(ConfigError, match="unknown key"):
        TreeErrors.from_mapping({"dbh_sd": 1})


# ---------------------------------------------------------------------------- plots: sums, matching


def plots_gdf(rows) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows, columns=["plot_id", "type", "year", "x", "y"])
    return gpd.GeoDataFrame(df.drop(columns=["x", "y"]), geometry=[Point(x, y) for x, y in zip(df.x, df.y, strict=True)],
                            crs="EPSG:32651")


PLOTS_CFG = {"id_column": "plot_id", "type_column": "type", "year_column": "year", "carbon_column": "carbon_t_ha",
             "radius_m": 11.283791670955125, "area_column": None}  # √(400/π): 400 m² plots


def trees_cfg(**kw) -> dict:
    cfg = {"plot_column": "plot_id", "year_column": "year", "id_column": "tree_id", "dbh_column": "dbh_cm",
           "height_column": "height_m", "species_column": "species", "errors": {}}
    cfg.update(kw)
    return cfg


def inventory(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["tree_id", "plot_id", "year", "species", "dbh_cm", "height_m"]).astype(str)


def run(inv, plots, n_draws=200, **tkw):
    return plot_carbon(inv, plots, {**PLOTS_CFG, "trees": trees_cfg(**tkw)}, PARAMS, n_draws=n_draws, seed=0,
                       where="trees.csv", plots_where="plots.gpkg")


def test_three_tree_plot_by_hand():
    # Quercus alba (ρ 0.60) 30 cm 15 m: 208.092 kg C; Q. alba 20 cm 10 m: ρD²H = 2400, AGB = 0.0673 × 2400^0.976
    # = 133.999 kg, C = 133.999 × 0.8 × 1.26 × 0.47 = 63.483 kg; Q. rubra (ρ 0.56) 12 cm 8 m: ρD²H = 645.12,
    # AGB 37.173 kg, C 17.611 kg. Sum 289.186 kg C on 400 m² = 0.04 ha: 289.186 / 1000 / 0.04 = 7.22965 t C/ha.
    inv = inventory([["t1", "P1", 2023, "Quercus alba", 30, 15], ["t2", "P1", 2023, "Quercus alba", 20, 10],
                     ["t3", "P1", 2023, "Quercus rubra", 12, 8]])
    res = run(inv, plots_gdf([["P1", "G1", 2023, 100.0, 100.0]]))
    row = res.table.iloc[0]
    assert row["n_trees"] == 3 and row["status"] == "trees"
    assert row["area_m2"] == pytest.approx(400.0)
    assert row["carbon_kg"] == pytest.approx(289.186, abs=2e-3)
    assert row["carbon_t_ha"] == pytest.approx(7.22965, abs=1e-4)
    assert res.plots["carbon_t_ha"].iloc[0] == pytest.approx(7.22965, abs=1e-4)
    # the plot draw b is the sum of its trees' draws b, over the same area
    tree_d = tree_carbon_draws(res.trees, n_draws=200, seed=0, errors=TreeErrors())
    np.testing.assert_allclose(res.draws[0], tree_d.sum(axis=0) / 1000 / 0.04)
    # three trees' independent errors: plot relative sd well below one tree's ~0.37, above 0
    assert 0.1 < row["carbon_t_ha_sd"] / row["carbon_t_ha"] < 0.37
    assert res.record["source"] == "tree_inventory" and res.record["n_trees"] == 3


def test_area_column_wins_over_the_radius():
    inv = inventory([["t1", "P1", 2023, "Quercus alba", 30, 15]])
    plots = plots_gdf([["P1", "G1", 2023, 0.0, 0.0]]).assign(area_m2=1000.0)
    res = plot_carbon(inv, plots, {**PLOTS_CFG, "area_column": "area_m2", "trees": trees_cfg()}, PARAMS, n_draws=20,
                      seed=0, where="trees.csv", plots_where="plots.gpkg")
    assert res.table["carbon_t_ha"].iloc[0] == pytest.approx(208.092 / 1000 / 0.1, abs=1e-4)  # 2.08092 t C/ha on 0.1 ha
    with pytest.raises(ConfigError, match="plots.area_column .* or plots.radius_m"):
        plot_carbon(inv, plots, {**PLOTS_CFG, "radius_m": 0, "trees": trees_cfg()}, PARAMS, n_draws=20, seed=0,
                    where="trees.csv", plots_where="plots.gpkg")


def test_trees_without_a_plot_are_named_with_row_value_and_fix():
    inv = inventory([["t1", "P1", 2023, "Quercus alba", 30, 15], ["t2", "P9", 2023, "Quercus alba", 20, 10],
                     ["t3", "P1", 2025, "Quercus alba", 20, 10]])
    with pytest.raises(InputDataError) as err:
        run(inv, plots_gdf([["P1", "G1", 2023, 0.0, 0.0]]))
    msg = str(err.value)
    assert "2 tree row(s) cannot be matched" in msg
    assert "trees.csv row 2 (line 3): tree in plot 'P9', year 2023, but plot 'P9' is not in the plots file (plots.gpkg)" in msg
    assert "trees.csv row 3 (line 4): tree in plot 'P1', year 2025, but plot 'P1' is in the plots file only for year(s) [2023]" in msg
    assert "add the plot (id, type, year, location) to the plots file" in msg


def test_bad_tree_values_keep_their_file_row_numbers():
    inv = inventory([["t0", "P1", 2023, "", 0, ""], ["t1", "P2", 2023, "Quercus alba", "n/a", 15]])
    with pytest.raises(InputDataError, match=r"trees.csv row 2 \(line 3\): 'dbh_cm' must be a number > 0.*Got 'n/a'"):
        run(inv, plots_gdf([["P1", "G1", 2023, 0.0, 0.0], ["P2", "G1", 2023, 50.0, 0.0]]))


def test_repeated_tree_id_in_a_year_is_an_error():
    inv = inventory([["t1", "P1", 2023, "Quercus alba", 30, 15], ["t1", "P1", 2023, "Quercus alba", 20, 10]])
    with pytest.raises(InputDataError, match="tree id 't1' in year 2023 is used by another tree"):
        run(inv, plots_gdf([["P1", "G1", 2023, 0.0, 0.0]]))


def test_empty_plot_is_zero_only_when_recorded():
    # P1 has a tree; P2 is recorded empty (DBH 0); P3 has no row at all: not measured, left out with a warning
    inv = inventory([["t1", "P1", 2023, "Quercus alba", 30, 15], ["", "P2", 2023, "", 0, ""]])
    res = run(inv, plots_gdf([["P1", "G1", 2023, 0.0, 0.0], ["P2", "G1", 2023, 50.0, 0.0], ["P3", "G2", 2023, 90.0, 0.0]]),
              id_column=None)
    t = res.table.set_index("plot_id")
    assert t.loc["P2", "status"] == "empty" and t.loc["P2", "carbon_t_ha"] == 0.0 and t.loc["P2", "n_trees"] == 0
    assert np.all(res.draws[list(t.index).index("P2")] == 0.0)
    assert t.loc["P3", "status"] == "not_measured" and np.isnan(t.loc["P3", "carbon_t_ha"])
    assert sorted(res.plots["plot_id"]) == ["P1", "P2"]  # the model reads only measured plots
    assert any("P3 (2023)" in w and "empty is not zero" in w and "DBH 0" in w for w in res.warnings)


def test_plot_draws_are_paired_across_years_by_draw_index():
    inv = inventory([["t1", "P1", 2023, "Quercus alba", 30, 15], ["t1", "P1", 2024, "Quercus alba", 31, 15.5],
                     ["t2", "P1", 2023, "Quercus alba", 20, 10], ["t2", "P1", 2024, "Quercus alba", 21, 10.2]])
    plots = plots_gdf([["P1", "G1", 2023, 0.0, 0.0], ["P1", "G1", 2024, 0.0, 0.0]])
    res = run(inv, plots, n_draws=2000)
    a, b = res.draws[0], res.draws[1]
    sink = b - a
    # paired: the change's spread is far below that of unpaired draws (b shuffled)
    unpaired = b[np.random.default_rng(0).permutation(b.size)] - a
    assert sink.std() < 0.5 * unpaired.std()
    frame = res.draws_frame()
    np.testing.assert_array_equal(draws_by_plot(frame, 2024).loc["P1"].to_numpy(), b)


def test_the_trees_win_over_a_carbon_column_with_a_warning():
    inv = inventory([["t1", "P1", 2023, "Quercus alba", 30, 15]])
    plots = plots_gdf([["P1", "G1", 2023, 0.0, 0.0]]).assign(carbon_t_ha=99.0)
    res = run(inv, plots)
    assert res.plots["carbon_t_ha"].iloc[0] == pytest.approx(208.092 / 1000 / 0.04, abs=1e-4)
    assert any("'carbon_t_ha' is ignored" in w and "plots.trees wins" in w for w in res.warnings)


# ---------------------------------------------------------------------------- the model's bootstrap


def line_plots(n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(0.2, 0.9, n)
    y = 5 + 40 * x + rng.normal(0, 2.0, n)
    xy = np.column_stack([np.arange(n) * 500.0, np.zeros(n)])
    return x, y, xy, [f"p{i:02d}" for i in range(n)]


def test_draws_equal_to_the_measured_carbon_change_nothing():
    x, y, xy, ids = line_plots()
    kw = {"forms": ("linear",), "n_bootstrap": 50, "seed": 1, "weighting": "none"}
    plain = fit_type_model("G1", x, y, xy, ids, **kw)
    same = fit_type_model("G1", x, y, xy, ids, y_draws=np.tile(y, (50, 1)), **kw)
    np.testing.assert_allclose(same["bootstrap"], plain["bootstrap"])
    assert same["plot_carbon_draws"] and not plain["plot_carbon_draws"]


@pytest.mark.parametrize("scheme", ["plots", "residuals"])
def test_plot_carbon_error_widens_the_curve_draws(scheme):
    x, y, xy, ids = line_plots()
    rng = np.random.default_rng(7)
    y_draws = np.maximum(y * np.exp(0.3 * rng.standard_normal((200, y.size)) - 0.045), 0)
    kw = {"forms": ("linear",), "n_bootstrap": 200, "seed": 1, "weighting": "none", "bootstrap": scheme}
    plain = np.asarray(fit_type_model("G1", x, y, xy, ids, **kw)["bootstrap"])
    with_err = np.asarray(fit_type_model("G1", x, y, xy, ids, y_draws=y_draws, **kw)["bootstrap"])
    at = plain @ np.array([1.0, 0.6]), with_err @ np.array([1.0, 0.6])  # the curve at NDVI 0.6
    assert at[1].std() > 1.2 * at[0].std()


def test_fit_models_takes_each_plots_draws_by_id_and_refuses_missing_ones():
    x, y, xy, ids = line_plots()
    plots = pd.DataFrame({"plot_id": ids, "type": "G1", "carbon_t_ha": y, "x_m": xy[:, 0], "y_m": xy[:, 1], "ndvi": x})
    draws = pd.DataFrame(np.tile(y, (60, 1)).T, index=ids)
    kw = {"types": ["G1"], "min_plots": 10, "forms": ("linear",), "n_bootstrap": 60, "seed": 2, "weighting": "none"}
    plain = fit_models(plots, None, **kw)
    shuffled = draws.sample(frac=1.0, random_state=0)  # the draws are matched by plot id, not by row
    same = fit_models(plots, None, carbon_draws=shuffled, **kw)
    np.testing.assert_allclose(same["types"]["G1"]["bootstrap"], plain["types"]["G1"]["bootstrap"])
    with pytest.raises(InputDataError, match=r"plots \['p00'\] have no carbon draws"):
        fit_models(plots, None, carbon_draws=draws.drop(index="p00"), **kw)


# ---------------------------------------------------------------------------- the workflow


def demo_inventory(plots: gpd.GeoDataFrame, area_m2: float) -> pd.DataFrame:
    """Three Quercus alba per plot whose carbon sums to the plot's carbon (H = D/2 m): the demo's plots as trees.

    C_tree(D) = 0.0673 (0.6 D² · D/2)^0.976 × 0.8 × 1.26 × 0.47, so D = (C / (0.0673 · 0.47376))^(1/(3·0.976)) / 0.3^(1/3);
    a plot's tree i gets the share (0.5, 0.3, 0.2) of its carbon. A plot with 0 t C/ha gets one DBH-0 row (empty)."""
    rows = []
    k = 0.0673 * 0.8 * 1.26 * 0.47
    for r in plots.itertuples(index=False):
        total_kg = float(r.carbon_t_ha) * 1000 * area_m2 / 10_000
        if total_kg <= 0:
            rows.append({"tree_id": "", "plot_id": r.plot_id, "year": int(r.year), "species": "", "dbh_cm": 0, "height_m": ""})
            continue
        for i, share in enumerate((0.5, 0.3, 0.2)):
            x = (total_kg * share / k) ** (1 / 0.976)  # = ρ D² H = 0.3 D³
            d = (x / 0.3) ** (1 / 3)
            rows.append({"tree_id": f"{r.plot_id}-{i}", "plot_id": r.plot_id, "year": int(r.year), "species": "Quercus alba",
                         "dbh_cm": round(d, 4), "height_m": round(d / 2, 4)})
    return pd.DataFrame(rows)


@pytest.mark.workflow
@pytest.mark.slow
@pytest.mark.large  # a workflow run of its own (37 s): make test-large, run by .ci/run
def test_workflow_with_a_tree_inventory(tmp_path):
    from tests.test_workflow import small_config, snakemake

    small_config(tmp_path)
    targets = ["results/2023/model/models.json", "results/2024/model/models.json"]
    snakemake(tmp_path, *targets)
    before = {y: yaml.safe_load((tmp_path / f"results/{y}/model/models.json").read_text()) for y in (2023, 2024)}
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    radius = float(cfg["plots"].get("radius_m") or 11.28)
    area = math.pi * radius**2
    plots = gpd.read_file(tmp_path / "resources/demo/plots.gpkg")
    inv = demo_inventory(plots, area)
    inv.to_csv(tmp_path / "trees.csv", index=False)
    plots.drop(columns=["carbon_t_ha"]).to_file(tmp_path / "plots_no_carbon.gpkg")  # no carbon column needed
    cfg["plots"].update({"path": str(tmp_path / "plots_no_carbon.gpkg"), "radius_m": radius,
                         "trees": {"path": str(tmp_path / "trees.csv"), "id_column": "tree_id"}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    snakemake(tmp_path, *targets)
    table = pd.read_csv(tmp_path / "results/plots/plot_carbon.csv")
    # the inventory reproduces the demo's plot carbon (trees made to sum to it; 4-decimal DBH rounding)
    merged = table.merge(plots[["plot_id", "year", "carbon_t_ha"]].astype({"plot_id": str}), on=["plot_id", "year"],
                         suffixes=("", "_demo"))
    np.testing.assert_allclose(merged["carbon_t_ha"], merged["carbon_t_ha_demo"], rtol=1e-3, atol=1e-6)
    compared = 0
    for year in (2023, 2024):
        models = yaml.safe_load((tmp_path / f"results/{year}/model/models.json").read_text())
        rec = models["plot_carbon"]
        assert rec["source"] == "tree_inventory" and rec["errors"]["allometric"] is True
        assert rec["n_trees"] == int((inv["dbh_cm"] > 0).sum())
        for code, tm in models["types"].items():
            if tm["source"] != "plots":
                continue
            assert tm["plot_carbon_draws"] is True
            old = before[year]["types"][code]
            if old["source"] != "plots" or old["form"] != tm["form"] or old["predictors"] != tm["predictors"]:
                continue
            # the same form on the same plots: the 90 % interval of the curve at the plots' NDVI range is at least as wide
            x = np.linspace(*tm["x_range"], 5) if tm["x_range"] else None
            if x is None:
                continue
            width = {k: np.diff(np.percentile(predict_draws(m, code, x), [5, 95], axis=0), axis=0).ravel()
                     for k, m in (("trees", models), ("plots", before[year]))}
            assert np.all(width["trees"] >= 0.95 * width["plots"]), (code, width)
            assert width["trees"].mean() > width["plots"].mean(), (code, width)
            compared += 1
    assert compared >= 2  # the demo fits several types from plots in both years
    shutil.rmtree(tmp_path / "resources", ignore_errors=True)


def test_report_model_section_says_where_plot_carbon_came_from():
    from greensink.report import model_section, plot_carbon_text

    record = {"source": "tree_inventory", "n_trees": 1185, "n_measured": 400, "equation": "chave2014",
              "errors": TreeErrors().to_json()}
    text = plot_carbon_text(record)
    assert "tree inventory (1185 trees in 400 plot-years, chave2014)" in text
    assert "allometric model error" in text and "DBH sd 0.0904 cm + 0.62 %, height sd 10.0 %" in text
    assert "paired across years" in text and "树木清查" in text
    assert plot_carbon_text({"source": "plots_file"}) is None and plot_carbon_text(None) is None
    section = model_section(2023, {"types": {}, "plot_carbon": record}, {})
    assert section["plot_carbon"] == text
