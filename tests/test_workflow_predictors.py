"""End to end: carbon models on several predictors with a canopy height model (CHM).

One Snakemake run of the small demo city (tests/test_workflow.py's ``small_config``) with
``model.predictors: [ndvi, fvc, canopy, height]`` and ``vegetation.chm`` pointing at a CHM built
here from the demo's hidden truth NDVI of each year (``chm_{year}.tif``: one CHM per year, so
that height changes with the vegetation and the sink under the CHM is a real change):

* 5 m cells (each 10 m grid pixel split 2 x 2), height = max(0, 30·(NDVI_true − 0.2)) m plus
  N(0, 0.3 m) noise with a fixed seed (grass cells come out slightly negative: the vegetation rule
  must take them as 0), nodata −9999 east of 5 m column 2·round(0.6·width) + 1. The cut is odd, so
  one column of 10 m pixels is half covered: its height is the mean of the covered half only.
* Height is then an affine function of the true NDVI above 0.2, while the composite NDVI is the
  truth seen through clouds, phenology and noise: height should win the spatial CV for some type,
  and the ~40 % of the city east of the CHM must be served by the NDVI-only companions.

Checked, each against an expectation computed here from the CHM we wrote (not from pipeline
outputs): chosen predictor sets ⊆ the configured ones, height chosen for some type each year, a
companion wherever the set is not NDVI alone; height.tif = 2 x 2 block mean of the CHM (NaN
outside) and canopy.tif = its share of cells ≥ 2 m; plots without a height leave the height fit
only; ndvi_only_pct = the type's share of observed pixels without a height; pure pixels take the
height model inside and the companion outside; the 2023 height curves follow the hidden truth;
no NaN carbon over typed observed pixels; city carbon within 10 % of the truth with the truth in
the 90 % interval; parcels and types add up to the city; sink = stock difference; nothing reruns.
With one CHM per year the run carries no static-CHM note (workflow.model_notes; its case is a unit
test in tests/test_config.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from rasterio.transform import Affine

from conftest import shared_dir
from greensink.demo import carbon_curve  # the hidden truth curves, the reference of one test
from test_workflow import small_config, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

YEARS = [2023, 2024]
TYPES = ["G1", "G2", "G3", "XG", "EG"]
PREDICTORS = ["ndvi", "fvc", "canopy", "height"]
CHM_NODATA = -9999.0
CHM_NOISE_M = 0.3
CHM_SEED = 7
HEIGHT_PER_NDVI_M = 30.0  # height = 30 m × (NDVI_true − 0.2), floored at 0
TREE_HEIGHT_M = 2.0


def build_chm(truth_ndvi: Path, out: Path) -> dict:
    """Write a 5 m CHM over the western ~60 % of the truth grid; return what the test needs to check it."""
    with rasterio.open(truth_ndvi) as src:
        ndvi = src.read(1).astype(np.float64)
        transform, crs = src.transform, src.crs
    rows, cols = ndvi.shape
    fine = np.repeat(np.repeat(ndvi, 2, axis=0), 2, axis=1)  # each 10 m pixel -> 2 x 2 5 m pixels
    rng = np.random.default_rng(CHM_SEED)
    height = np.maximum(0.0, HEIGHT_PER_NDVI_M * (fine - 0.2)) + rng.normal(0.0, CHM_NOISE_M, fine.shape)
    cut_sub = 2 * int(round(0.6 * cols)) + 1  # odd: grid column cut_sub // 2 is half covered
    height[:, cut_sub:] = np.nan
    height[~np.isfinite(fine)] = np.nan
    data = np.where(np.isfinite(height), height, CHM_NODATA).astype(np.float32)
    fine_transform = transform @ Affine.scale(0.5, 0.5)
    profile = {"driver": "GTiff", "width": 2 * cols, "height": 2 * rows, "count": 1, "dtype": "float32",
               "crs": crs, "transform": fine_transform, "nodata": CHM_NODATA, "compress": "deflate"}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data, 1)
    # independent expectation: area mean over each 10 m pixel's covered 5 m pixels, negatives as 0
    h = np.where(data == CHM_NODATA, np.nan, np.maximum(data.astype(np.float64), 0.0)).reshape(rows, 2, cols, 2)
    n = np.isfinite(h).sum(axis=(1, 3))
    with np.errstate(invalid="ignore"):
        mean = np.nansum(h, axis=(1, 3)) / n
    mean[n == 0] = np.nan
    # tree-canopy fraction: share of the covered 5 m pixels at or above 2 m
    tall = np.where(np.isfinite(h), h >= TREE_HEIGHT_M, np.nan)
    with np.errstate(invalid="ignore"):
        tree = np.nansum(tall, axis=(1, 3)) / n
    tree[n == 0] = np.nan
    return {"height_m": mean, "tree_frac": tree, "transform": transform, "cut_col": cut_sub // 2, "n_covered": n}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """The predictors run, built once per session under a file lock (conftest.shared_dir): a module fixture alone is
    built once per pytest-xdist worker that gets one of this module's tests, twice on two workers."""
    workdir = shared_dir(tmp_path_factory, "predictors_run", _build_run)
    scratch = tmp_path_factory.mktemp("chm")  # the CHM is rebuilt (same seed, same bytes) for its expected values
    return {"dir": workdir, "chm": {y: build_chm(workdir / f"resources/demo/truth/ndvi_{y}.tif", scratch / f"chm_{y}.tif")
                                    for y in YEARS}}


def _build_run(workdir: Path) -> None:
    cfg_path = small_config(workdir)
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["years"] = YEARS  # two years (the demo config lists three): one CHM each
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    snakemake(workdir, "resources/demo/demo.json")  # the demo inputs and truth only
    for y in YEARS:
        build_chm(workdir / f"resources/demo/truth/ndvi_{y}.tif", workdir / f"chm_{y}.tif")
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["model"]["predictors"] = PREDICTORS
    cfg["vegetation"]["chm"] = {"path": str(workdir / "chm_{year}.tif"), "tree_height_m": TREE_HEIGHT_M,
                                "shrub_height_m": 0.5}
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    snakemake(workdir)


def read(path: Path, band: int | None = None) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(band).astype(np.float64) if band else src.read().astype(np.float64)


def models(run: dict, year: int) -> dict:
    return json.loads((run["dir"] / f"results/{year}/model/models.json").read_text(encoding="utf-8"))


def zone_table(run: dict, year: int, level: str) -> pd.DataFrame:
    return pd.read_csv(run["dir"] / f"results/{year}/zones/{level}.csv", dtype={"zone_id": str, "parent_id": str})


def observed_typed(run: dict, year: int) -> tuple[np.ndarray, np.ndarray]:
    """(types, rows, cols) type fractions and the (rows, cols) mask of finite composite NDVI."""
    frac = read(run["dir"] / "results/types/fractions.tif")[: len(TYPES)]
    ndvi = read(run["dir"] / f"results/{year}/ndvi.tif", 1)
    return frac, np.isfinite(ndvi)


@pytest.mark.parametrize("year", YEARS)
def test_chosen_predictor_sets_are_configured_ones(run, year):
    m = models(run, year)
    assert m["predictors"] == PREDICTORS
    for t in TYPES:
        tm = m["types"][t]
        assert tm["source"] == "plots", (t, tm.get("reason"))
        assert tm["predictors"] and set(tm["predictors"]) <= set(PREDICTORS), (t, tm["predictors"])
        assert set(tm["predictor_ranges"]) == set(tm["predictors"]), t
        if tm["predictors"] != ["ndvi"]:
            comp = tm.get("ndvi_only")
            assert comp is not None, (t, tm.get("ndvi_only_error"))
            assert comp["predictors"] == ["ndvi"], t


@pytest.mark.parametrize("year", YEARS)
def test_height_is_chosen_for_some_type(run, year):
    chosen = {t: (tm["form"], tm["predictors"]) for t, tm in models(run, year)["types"].items()}
    assert any("height" in preds for _form, preds in chosen.values()), chosen


def test_height_raster_is_the_block_mean_of_the_chm(run):
    for year in YEARS:
        exp = run["chm"][year]["height_m"]
        got = read(run["dir"] / f"results/{year}/height.tif", 1)
        ndvi = read(run["dir"] / f"results/{year}/ndvi.tif", 1)
        assert got.shape == exp.shape
        with rasterio.open(run["dir"] / f"results/{year}/height.tif") as src:
            assert src.transform.almost_equals(run["chm"][year]["transform"])
        # NaN exactly where the CHM has no data (or NDVI is unobserved)
        want = np.isfinite(exp) & np.isfinite(ndvi)
        np.testing.assert_array_equal(np.isfinite(got), want)
        assert np.isnan(got[:, run["chm"][year]["cut_col"] + 1 :]).all()
        np.testing.assert_allclose(got[want], exp[want], rtol=1e-5, atol=1e-4)
        # the half-covered column: mean of the covered 5 m half only (not diluted by the nodata half)
        edge = run["chm"][year]["cut_col"]
        assert (run["chm"][year]["n_covered"][:, edge] == 2).all()
        ok = want[:, edge]
        assert ok.any()
        np.testing.assert_allclose(got[ok, edge], exp[ok, edge], rtol=1e-5, atol=1e-4)


def footprint_means(run: dict, plots: pd.DataFrame, raster: np.ndarray) -> np.ndarray:
    """Each plot's area-weighted mean of ``raster`` over its circle of plots.radius_m (NaN pixels left out),
    from exact shapely intersections of the circle with the pixel squares; the pixel's value at radius 0."""
    from shapely.geometry import Point, box

    cfg = yaml.safe_load((run["dir"] / "config.yaml").read_text(encoding="utf-8"))
    radius = float(cfg.get("plots", {}).get("radius_m", 0) or 0)
    if radius == 0:
        return raster[plots["row"].to_numpy(), plots["col"].to_numpy()]
    grid = json.loads((run["dir"] / "results/zones/grid.json").read_text(encoding="utf-8"))
    res, x0, y1 = grid["transform"][0], grid["transform"][2], grid["transform"][5]
    out = np.full(len(plots), np.nan)
    for i, (x, y) in enumerate(zip(plots["x_m"], plots["y_m"], strict=True)):
        circle = Point(x, y).buffer(radius, quad_segs=64)
        num = den = 0.0
        for r in range(int((y1 - y - radius) // res), int((y1 - y + radius) // res) + 1):
            for c in range(int((x - radius - x0) // res), int((x + radius - x0) // res) + 1):
                if not (0 <= r < raster.shape[0] and 0 <= c < raster.shape[1]) or not np.isfinite(raster[r, c]):
                    continue
                a = circle.intersection(box(x0 + c * res, y1 - (r + 1) * res, x0 + (c + 1) * res, y1 - r * res)).area
                num, den = num + a * raster[r, c], den + a
        out[i] = num / den if den > 0 else np.nan
    return out


@pytest.mark.parametrize("year", YEARS)
def test_plots_east_of_the_chm_drop_out_of_the_height_fit_only(run, year):
    """Each plot's sampled height is the CHM block mean over its footprint (plots.radius_m, the demo's
    400 m² circles; its pixel at radius 0), by exact circle-pixel intersections here; a type's model on height is
    fitted on the plots with a height (n), the rest counted as n_dropped_no_predictor, and its
    NDVI-only companion on all of them."""
    plots = pd.read_csv(run["dir"] / f"results/{year}/model/plots.csv", dtype={"plot_id": str, "screened": str})
    plots = plots[plots["screened"].fillna("") == ""]  # the plots the fit used
    exp = footprint_means(run, plots, run["chm"][year]["height_m"])
    np.testing.assert_array_equal(np.isfinite(plots["height"].to_numpy(float)), np.isfinite(exp))
    # the package draws the circle as a 64-gon (area within 0.2 %): means agree to a fraction of a percent
    np.testing.assert_allclose(plots["height"].to_numpy(float)[np.isfinite(exp)], exp[np.isfinite(exp)], rtol=5e-3, atol=1e-3)
    m = models(run, year)
    for t in TYPES:
        tm = m["types"][t]
        has = np.isfinite(exp[(plots["type"] == t).to_numpy()])
        if "height" in tm["predictors"]:
            assert (tm["n"], tm["n_dropped_no_predictor"], tm["ndvi_only"]["n"]) == (has.sum(), (~has).sum(), has.size), t
        assert 0 < has.sum() <= has.size, t


def test_canopy_is_the_chm_tree_share_inside_and_ndvi_rule_outside(run):
    """canopy.tif: share of the pixel's covered 5 m CHM cells ≥ 2 m; east of the CHM 0/1 from NDVI ≥ 0.5."""
    for year in YEARS:
        tree = run["chm"][year]["tree_frac"]
        got = read(run["dir"] / f"results/{year}/canopy.tif", 1)
        ndvi = read(run["dir"] / f"results/{year}/ndvi.tif", 1)
        inside = np.isfinite(tree) & np.isfinite(ndvi)
        np.testing.assert_allclose(got[inside], tree[inside], atol=1e-6)
        outside = ~np.isfinite(tree) & np.isfinite(ndvi)
        np.testing.assert_array_equal(got[outside], (ndvi[outside] >= 0.5).astype(float))
        # the half-covered column has halves: 0, 0.5 or 1 only
        edge = got[inside[:, run["chm"][year]["cut_col"]], run["chm"][year]["cut_col"]]
        assert set(np.unique(edge)) <= {0.0, 0.5, 1.0}


@pytest.mark.parametrize("year", YEARS)
def test_ndvi_only_share_is_the_share_outside_the_chm(run, year):
    """carbon.json ndvi_only_pct of a type on height = % of its observed pixels (type fraction > 0,
    finite NDVI) with no CHM height, counted here from the CHM we wrote."""
    m = models(run, year)
    stats = json.loads((run["dir"] / f"results/{year}/carbon.json").read_text(encoding="utf-8"))["types"]
    frac, observed = observed_typed(run, year)
    no_height = ~np.isfinite(run["chm"][year]["height_m"])
    shares = {}
    for k, t in enumerate(TYPES):
        tm = m["types"][t]
        pixels = (frac[k] > 0) & observed
        expected = 100.0 * (pixels & no_height).sum() / pixels.sum()
        if "height" in tm["predictors"]:
            assert stats[t]["ndvi_only_pct"] == pytest.approx(expected, abs=0.01), (t, expected, stats[t])
            shares[t] = expected
        elif tm["predictors"] != ["ndvi"]:
            # fvc and canopy are known wherever NDVI is: the companion serves no pixel
            assert stats[t]["ndvi_only_pct"] == 0.0, (t, stats[t])
        else:
            assert "ndvi_only_pct" not in stats[t], (t, stats[t])
    # some type on height has a sizeable part of its land east of the CHM (types are not spread evenly)
    assert shares and max(shares.values()) > 25, shares


def _curve(form: str, params: dict, x: np.ndarray) -> np.ndarray:
    """The four parametric forms of one predictor, written out (log and power clamp x at 1e-3)."""
    a, b = params["a"], params["b"]
    return {"linear": lambda: a + b * x, "logarithmic": lambda: a + b * np.log(np.maximum(x, 1e-3)),
            "power": lambda: a * np.maximum(x, 1e-3) ** b, "exponential": lambda: a * np.exp(b * x)}[form]()


@pytest.mark.parametrize("year", YEARS)
def test_pure_pixels_use_height_model_inside_and_companion_outside(run, year):
    """On pixels wholly of one type, carbon = max(model(height), 0) inside the CHM and
    max(companion(NDVI), 0) outside it."""
    m = models(run, year)
    frac, observed = observed_typed(run, year)
    est = read(run["dir"] / f"results/{year}/carbon.tif", 1)
    x = {q: read(run["dir"] / f"results/{year}/{q}.tif", 1) for q in ("ndvi", "height")}
    has_h = np.isfinite(x["height"])
    checked = []
    for k, t in enumerate(TYPES):
        tm = m["types"][t]
        comp = tm.get("ndvi_only") or {}
        if tm["predictors"] != ["height"] or tm["form"] == "ensemble" or comp.get("form") in (None, "ensemble"):
            continue
        pure = (frac[k] > 0.999) & (frac.sum(axis=0) - frac[k] < 1e-6) & observed
        west, east = pure & has_h, pure & ~has_h
        np.testing.assert_allclose(est[west], np.maximum(_curve(tm["form"], tm["params"], x["height"][west]), 0) * frac[k][west],
                                   rtol=1e-4, atol=1e-4, err_msg=f"{t} inside the CHM")
        np.testing.assert_allclose(est[east], np.maximum(_curve(comp["form"], comp["params"], x["ndvi"][east]), 0) * frac[k][east],
                                   rtol=1e-4, atol=1e-4, err_msg=f"{t} outside the CHM")
        checked.append((t, int(west.sum()), int(east.sum())))
    # both sides were exercised (EG, say, lies wholly inside the CHM)
    assert sum(w for _, w, _ in checked) > 100 and sum(e for _, _, e in checked) > 100, checked


def test_height_curves_recover_the_truth_2023(run):
    """The CHM of 2023 is 30 m × (NDVI_true − 0.2): a type's true carbon as a function of height is its
    hidden curve at NDVI = h/30 + 0.2. Over the plots' height range the fitted 2023 curves on height
    follow it (measured: median error 1.5–5 %, worst 10 % at the end of G1's range)."""
    m = models(run, 2023)
    for t, tm in m["types"].items():
        if tm["predictors"] != ["height"] or tm["form"] == "ensemble":
            continue
        lo, hi = tm["predictor_ranges"]["height"]
        h = np.linspace(lo, hi, 50)
        rel = np.abs(_curve(tm["form"], tm["params"], h) / carbon_curve(t, h / HEIGHT_PER_NDVI_M + 0.2) - 1)
        assert np.median(rel) < 0.08 and rel.max() < 0.15, (t, tm["form"], tm["params"], np.median(rel), rel.max())


@pytest.mark.parametrize("year", YEARS)
def test_carbon_has_no_gap_over_typed_observed_pixels(run, year):
    frac, observed = observed_typed(run, year)
    est, lo, hi = read(run["dir"] / f"results/{year}/carbon.tif")
    typed = frac.sum(axis=0) > 0
    assert np.isfinite(est[typed & observed]).all()
    assert np.isfinite(lo[typed & observed]).all() and np.isfinite(hi[typed & observed]).all()
    # a third or more of them lie east of the CHM, where only the companions can serve them
    east = typed & observed & ~np.isfinite(run["chm"][year]["height_m"])
    assert east.sum() > 0.3 * (typed & observed).sum()


@pytest.mark.parametrize("year", YEARS)
def test_city_carbon_close_to_truth_and_inside_interval(run, year):
    city = zone_table(run, year, "city")
    est, lo, hi = (float(city[c].sum()) for c in ("carbon_t", "carbon_t_lo", "carbon_t_hi"))
    truth = float(pd.read_csv(run["dir"] / f"resources/demo/truth/zones_{year}_city.csv")["carbon_t"].sum())
    assert abs(est / truth - 1) < 0.10, (est, truth)
    assert lo <= truth <= hi, (lo, truth, hi)


@pytest.mark.parametrize("year", YEARS)
def test_parcels_and_types_sum_to_the_city(run, year):
    parcels = zone_table(run, year, "parcel")
    city = zone_table(run, year, "city")
    for col in ("carbon_t", *(f"carbon_t_{t}" for t in TYPES)):
        np.testing.assert_allclose(parcels[col].sum(), city[col].sum(), rtol=1e-3, err_msg=col)
    # the per-type columns (companion included) add up to the total
    np.testing.assert_allclose(city[[f"carbon_t_{t}" for t in TYPES]].sum(axis=1), city["carbon_t"], rtol=1e-6)


def test_sink_is_the_stock_difference(run):
    ch = pd.read_csv(run["dir"] / "results/change/2023_2024/zones/city.csv")
    s0, s1 = (float(zone_table(run, y, "city")["carbon_t"].sum()) for y in YEARS)
    np.testing.assert_allclose(ch["sink_t_yr"].sum(), s1 - s0, rtol=1e-4, atol=0.01)
    assert ch["sink_t_yr_lo"].sum() <= ch["sink_t_yr"].sum() <= ch["sink_t_yr_hi"].sum()


# Was a known miss (xfail): city sink -22.5 t C/yr, 90 % interval [-42.0, -4.9], truth +8.8. Passes since
# ceb8fcf (plot measurement error off the nugget, one residual field for both years of a sink): measured
# 2026-12-04 sink +19.1 [-362.8, +558.2], truth +18.1; the interval is now about 35 % of the city stock
# wide (2641 t): the centre is near the truth, but the width is what makes it hold (calibration, issue 11).
def test_true_sink_inside_interval_with_a_chm_per_year(run):
    ch = pd.read_csv(run["dir"] / "results/change/2023_2024/zones/city.csv")
    t0, t1 = (float(pd.read_csv(run["dir"] / f"resources/demo/truth/zones_{y}_city.csv")["carbon_t"].sum()) for y in YEARS)
    assert ch["sink_t_yr_lo"].sum() <= t1 - t0 <= ch["sink_t_yr_hi"].sum(), (
        ch["sink_t_yr"].sum(), ch["sink_t_yr_lo"].sum(), ch["sink_t_yr_hi"].sum(), t1 - t0)


@pytest.mark.parametrize("year", YEARS)
def test_a_chm_per_year_carries_no_static_chm_note(run, year):
    assert models(run, year)["notes"] == []


def test_second_run_has_nothing_to_do(run):
    proc = snakemake(run["dir"], "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-2000:]
