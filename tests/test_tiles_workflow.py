"""End to end: with tiles.size_px every per-pixel stage runs per {year}×{tile}, and the mosaics are the untiled run's.

The small demo city of tests/test_workflow.py (a 202 × 202 pixel grid) in tiles of 128 px (2 × 2 tiles, the
last row and column 74 px: uneven at the edges), run up to the first year's zone tables. The untiled reference
is the session's shared baseline run of the same config (tests/conftest.py; its scenarios do not touch these
files). The dry run lists one composite, vegetation, NDVI SE and carbon job per tile and none of the untiled
rules; the mosaicked composite, vegetation products, ndvi_se, carbon map and their JSON statistics equal the
untiled files value for value (and byte for byte: same band names, tags, codec and layout). The zone tables are
gathered from one aggregate_tile job per tile (zone partial sums) by rule aggregate: every level's indicators
table and zone draws equal the untiled run's within rtol 1e-9 (sums in another order; NaN where NaN; measured:
largest relative difference 5.3e-14).

The same one run goes on to the first pair's change (change reads both years' indicator tables, so the second year
runs per tile too): one fill_tile and aggregate_tile job per {year}×{tile}, one zone_coverage_tile per {level}×{tile},
one change_tile per tile gathered by rule change; sink.tif and attribution.tif are the untiled bytes, uncertainty.json
equal, the change tables within rtol 1e-9 (measured: largest relative difference 8.9e-13) and the lost patches equal
the baseline run's.

It goes on to the trend over all years (every year then runs per tile): one trend_tile job per tile gathered by rule
trend; trend.tif is the untiled bytes, trend.json equal and the trend tables within rtol 1e-9.

And to one planning scenario's carbon map (new_park: a new park at a planned density, so typed polygons, exact
fractions and a pseudo-type; the tiled config carries the baseline run's scenarios): one scenario_plan job, one
scenario_inputs_tile and scenario_carbon_tile job per tile and their mosaics, none of the untiled scenario rules; its
eight burned rasters and carbon.tif are the untiled bytes, carbon.json, inputs.json and models.json the untiled text.
Its zone tables are gathered from one scenario_zones_tile job per tile (the plan's zone partial sums and the touched
pixels' corrections of the baseline's record) by rule scenario_zones: every level's table and the totals equal the
untiled run's within rtol 1e-9 (the differences from the baseline within 1e-9 of the level's largest zone stock, the
indicators' changes within 1e-9 of the indicator's largest value).
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from conftest import shared_dir
from greensink import io as gio
from greensink.aggregate import ZoneDraws
from greensink.grid import Grid
from test_tiles import job_counts, tiled_config
from test_workflow import LEVELS, PAIRS, ROOT, YEARS, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.large]  # a whole tiled run: make test-large

SIZE_PX = 128
YEAR = YEARS[0]
RASTERS = ["composite", "ndvi", "fvc", "vegetation", "canopy", "vegetation_class", "height", "ndvi_se", "carbon"]
PAIR = f"{PAIRS[0][0]}_{PAIRS[0][1]}"
SCENARIO = "new_park"  # of the demo's three plans the one with new typed polygons and a planned-density pseudo-type
TARGETS = ([f"results/{YEAR}/carbon.tif"] + [f"results/{YEAR}/zones/{level}.{kind}" for level in LEVELS
                                            for kind in ("indicators.parquet", "draws.npz")]
           + [f"results/change/{PAIR}/{name}" for name in ("sink.tif", "attribution.tif", "lost_patches.gpkg",
                                                           "uncertainty.json", "zones/parcel.parquet")]
           + [f"results/change/trend/{name}" for name in ("trend.tif", "trend.json", "zones/parcel.parquet")]
           + [f"results/scenarios/{SCENARIO}/carbon.tif"]
           + [f"results/scenarios/{SCENARIO}/zones/{level}.parquet" for level in LEVELS]
           + [f"results/scenarios/{SCENARIO}/totals.csv"])


def _build_tiled(tiled):
    path = tiled_config(tiled, SIZE_PX)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))  # the baseline run's scenarios (small_config(scenarios=True))
    cfg["scenarios"] = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))["scenarios"]
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    snakemake(tiled, "--", "results/zones/grid.json")  # the grid, so the dry run knows the tiles
    dry = snakemake(tiled, "-n", "--", *TARGETS)
    (tiled / "dry_run.txt").write_text(dry.stdout + dry.stderr, encoding="utf-8")
    snakemake(tiled, "--", *TARGETS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, baseline_run):
    """The baseline run, the tiled run and its dry run's output. The tiled run is built once per session under a
    file lock (conftest.shared_dir): a module fixture alone is built once per pytest-xdist worker."""
    tiled = shared_dir(tmp_path_factory, "tiled_stages", _build_tiled)
    return baseline_run, tiled, (tiled / "dry_run.txt").read_text(encoding="utf-8")


def test_every_per_pixel_stage_runs_per_tile(runs):
    _, tiled, dry = runs
    grid = Grid.read(tiled / "results/zones/grid.json")
    tiles = grid.tiles(SIZE_PX)
    assert [t.shape for t in tiles] == [(128, 128), (128, 74), (74, 128), (74, 74)]
    counts = job_counts(dry)
    # every year runs per tile (the trend reads every year's rasters and indicator tables, change the first pair's);
    # the carbon map only for the first year's target
    for rule in ("composite_tile", "vegetation_tile", "ndvi_se_tile", "fill_tile", "aggregate_tile"):
        assert counts[rule] == len(YEARS) * len(tiles), rule
    for rule in ("carbon_tile", "change_tile", "trend_tile"):
        assert counts[rule] == len(tiles), rule
    assert counts["zone_coverage_tile"] == len(LEVELS) * len(tiles)
    for rule in ("mosaic", "vegetation_endmembers", "vegetation_mosaic", "ndvi_se_mosaic", "fill_gather",
                 "aggregate"):  # rule aggregate of a tiled run gathers the tiles' zone sums
        assert counts[rule] == len(YEARS), rule
    for rule in ("carbon_mosaic", "change", "trend"):  # rules change and trend of a tiled run gather their tiles' parts
        assert counts[rule] == 1, rule
    for rule in ("composite", "vegetation", "ndvi_se", "carbon", "fill"):  # the untiled rules do not exist here
        assert rule not in counts, rule
    for t in tiles:
        for name in ("ndvi", "vegetation_class", "ndvi_se", "carbon"):
            assert (tiled / f"results/{YEAR}/tiles/{name}_{t.id}.tif").is_file()
        assert (tiled / f"logs/carbon/{YEAR}/{t.id}.log").is_file()
        assert (tiled / f"results/{YEAR}/tiles/aggregate_{t.id}.npz").is_file()


def test_tiled_mosaics_equal_the_untiled_run(runs):
    untiled, tiled, _ = runs
    for name in RASTERS:
        a, b = untiled / f"results/{YEAR}/{name}.tif", tiled / f"results/{YEAR}/{name}.tif"
        with rasterio.open(a) as ref, rasterio.open(b) as got:
            assert got.descriptions == ref.descriptions and got.tags() == ref.tags(), name
            profile = lambda src: {k: v for k, v in src.profile.items() if k != "nodata"}  # noqa: E731 (NaN != NaN)
            assert profile(got) == profile(ref) and np.isnan(got.nodata) and np.isnan(ref.nodata), name
            assert got.tags(ns="IMAGE_STRUCTURE") == ref.tags(ns="IMAGE_STRUCTURE"), name  # COG layout, codec
            x, y = ref.read(), got.read()
        np.testing.assert_array_equal(y, x, err_msg=name)  # value for value, NaN where NaN
        assert b.read_bytes() == a.read_bytes(), f"{name}.tif differs in its bytes"
    for name in ("vegetation", "carbon"):
        ref = json.loads((untiled / f"results/{YEAR}/{name}.json").read_text(encoding="utf-8"))
        got = json.loads((tiled / f"results/{YEAR}/{name}.json").read_text(encoding="utf-8"))
        assert got == ref, name
    # the comparison is not empty: carbon where the city is green, never-seen pixels NaN in both
    carbon = rasterio.open(untiled / f"results/{YEAR}/carbon.tif").read(1)
    assert np.nanmax(carbon) > 0 and np.isfinite(carbon).sum() > 0.5 * carbon.size


def test_tiled_zone_tables_equal_the_untiled_run(runs):
    untiled, tiled, _ = runs
    worst = 0.0
    for level in LEVELS:
        ref = pd.read_parquet(untiled / f"results/{YEAR}/zones/{level}.indicators.parquet")
        got = pd.read_parquet(tiled / f"results/{YEAR}/zones/{level}.indicators.parquet")
        assert list(got.columns) == list(ref.columns) and got["zone_id"].tolist() == ref["zone_id"].tolist(), level
        for col in ref.columns:
            if col == "geometry":
                assert got[col].tolist() == ref[col].tolist(), level
            elif not pd.api.types.is_numeric_dtype(ref[col]):
                assert got[col].tolist() == ref[col].tolist(), (level, col)
            else:
                a, b = ref[col].to_numpy(dtype=float), got[col].to_numpy(dtype=float)
                np.testing.assert_array_equal(np.isnan(b), np.isnan(a), err_msg=f"{level} {col}")  # NaN where NaN
                np.testing.assert_allclose(b, a, rtol=1e-9, atol=0.0, err_msg=f"{level} {col}")
                ok = np.isfinite(a) & (a != 0)
                worst = max(worst, float(np.max(np.abs(b[ok] / a[ok] - 1), initial=0.0)))
        a, b = (ZoneDraws.read(run / f"results/{YEAR}/zones/{level}.draws.npz") for run in (untiled, tiled))
        assert (b.zone_ids.tolist(), b.n_draws, b.seed, b.models_sha256, b.uncertainty_sha256) == (
            a.zone_ids.tolist(), a.n_draws, a.seed, a.models_sha256, a.uncertainty_sha256), level
        np.testing.assert_allclose(b.estimate, a.estimate, rtol=1e-9, atol=0.0, err_msg=level)
        np.testing.assert_allclose(b.draws, a.draws, rtol=1e-9, atol=1e-9 * np.abs(a.draws).max(), err_msg=level)
    print(f"tiled vs untiled zone tables: largest relative difference {worst:.1e}")
    # the comparison is not empty: carbon and a proper interval in every district
    district = pd.read_parquet(tiled / f"results/{YEAR}/zones/district.indicators.parquet")
    assert (district["carbon_t"] > 0).all() and (district["carbon_t_hi"] > district["carbon_t_lo"]).all()


def test_tiled_change_equals_the_untiled_run(runs):
    untiled, tiled, dry = runs
    pair, counts = PAIR, job_counts(dry)
    assert counts["change_tile"] == 4 and counts["change"] == 1  # one job per tile, then the gather
    for t in ("r000c000", "r000c001", "r001c000", "r001c001"):
        assert (tiled / f"results/change/{pair}/tiles/parts_{t}.npz").is_file()
        assert (tiled / f"logs/change/{pair}/{t}.log").is_file()
    a, b = untiled / f"results/change/{pair}", tiled / f"results/change/{pair}"
    for name in ("sink.tif", "attribution.tif"):
        assert (b / name).read_bytes() == (a / name).read_bytes(), name
    assert json.loads((b / "uncertainty.json").read_text()) == json.loads((a / "uncertainty.json").read_text())
    worst = 0.0
    for level in LEVELS:
        x, y = pd.read_parquet(a / "zones" / f"{level}.parquet"), pd.read_parquet(b / "zones" / f"{level}.parquet")
        assert list(y.columns) == list(x.columns) and y["zone_id"].tolist() == x["zone_id"].tolist(), level
        for col in x.columns:
            if pd.api.types.is_float_dtype(x[col]):
                u, v = x[col].to_numpy(float), y[col].to_numpy(float)
                np.testing.assert_array_equal(np.isnan(v), np.isnan(u), err_msg=f"{level} {col}")
                # sums in another order; absolute 1e-9 for differences of equal areas (sink_space_change_ha ~ 1e-8)
                np.testing.assert_allclose(v, u, rtol=1e-9, atol=1e-9, err_msg=f"{level} {col}")
                ok = np.isfinite(u) & (np.abs(u) > 1e-6)
                worst = max(worst, float(np.max(np.abs(v[ok] / u[ok] - 1), initial=0.0)))
            elif col != "geometry":
                pd.testing.assert_series_equal(y[col], x[col], obj=f"{level} {col}")
    assert worst < 1e-9
    print(f"tiled vs untiled change tables: largest relative difference {worst:.1e}")
    pa, pb = gpd.read_file(a / "lost_patches.gpkg"), gpd.read_file(b / "lost_patches.gpkg")
    assert len(pa) == len(pb) > 0 and pb.geometry.equals(pa.geometry)
    pd.testing.assert_frame_equal(pd.DataFrame(pb.drop(columns="geometry")), pd.DataFrame(pa.drop(columns="geometry")),
                                  check_exact=False, rtol=1e-9)
    sink = gio.read_raster(a / "sink.tif")
    assert np.isfinite(sink[0]).sum() > 0.3 * sink[0].size  # the comparison is not empty


def test_tiled_trend_equals_the_untiled_run(runs):
    untiled, tiled, dry = runs
    counts = job_counts(dry)
    assert counts["trend_tile"] == 4 and counts["trend"] == 1  # one job per tile, then the gather
    for t in ("r000c000", "r000c001", "r001c000", "r001c001"):
        assert (tiled / f"results/change/trend/tiles/parts_{t}.npz").is_file()
        assert (tiled / f"logs/change/trend/{t}.log").is_file()
    a, b = untiled / "results/change/trend", tiled / "results/change/trend"
    assert (b / "trend.tif").read_bytes() == (a / "trend.tif").read_bytes()
    assert json.loads((b / "trend.json").read_text()) == json.loads((a / "trend.json").read_text())
    worst = 0.0
    for level in LEVELS:
        x, y = pd.read_parquet(a / "zones" / f"{level}.parquet"), pd.read_parquet(b / "zones" / f"{level}.parquet")
        assert list(y.columns) == list(x.columns) and y["zone_id"].tolist() == x["zone_id"].tolist(), level
        for col in x.columns:
            if pd.api.types.is_float_dtype(x[col]):
                u, v = x[col].to_numpy(float), y[col].to_numpy(float)
                np.testing.assert_array_equal(np.isnan(v), np.isnan(u), err_msg=f"{level} {col}")
                np.testing.assert_allclose(v, u, rtol=1e-9, atol=1e-9, err_msg=f"{level} {col}")
                ok = np.isfinite(u) & (np.abs(u) > 1e-6)
                worst = max(worst, float(np.max(np.abs(v[ok] / u[ok] - 1), initial=0.0)))
            elif col != "geometry":
                pd.testing.assert_series_equal(y[col], x[col], obj=f"{level} {col}")
    print(f"tiled vs untiled trend tables: largest relative difference {worst:.1e}")
    trend = gio.read_raster(a / "trend.tif")
    assert np.isfinite(trend[0]).sum() > 0.3 * trend[0].size  # the comparison is not empty
    parcel = pd.read_parquet(b / "zones" / "parcel.parquet")
    assert parcel["trend_t_yr"].notna().mean() > 0.5 and (parcel["n_years"] == len(YEARS)).any()


def test_tiled_scenario_equals_the_untiled_run(runs):
    untiled, tiled, dry = runs
    counts = job_counts(dry)
    for rule in ("scenario_inputs_tile", "scenario_carbon_tile"):
        assert counts[rule] == 4, rule
    for rule in ("scenario_plan", "scenario_inputs_mosaic", "scenario_carbon_mosaic"):
        assert counts[rule] == 1, rule
    assert "scenario_inputs" not in counts and "scenario_carbon" not in counts  # the untiled rules do not exist here
    a, b = untiled / f"results/scenarios/{SCENARIO}", tiled / f"results/scenarios/{SCENARIO}"
    for name in ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "changes", "carbon"):
        assert (b / f"{name}.tif").read_bytes() == (a / f"{name}.tif").read_bytes(), f"{name}.tif differs in its bytes"
    for name in ("carbon.json", "inputs.json", "models.json"):
        assert (b / name).read_text(encoding="utf-8") == (a / name).read_text(encoding="utf-8"), name
    assert gio.read_vector(b / "greenspace.gpkg").equals(gio.read_vector(a / "greenspace.gpkg"))
    for t in ("r000c000", "r000c001", "r001c000", "r001c001"):
        assert (b / f"tiles/carbon_{t}.tif").is_file() and (b / f"tiles/fractions_{t}.tif").is_file()
    # the comparison is not empty: the park changed pixels, and put land on its planned-density pseudo-type
    assert float(gio.read_raster(b / "changes.tif", bands=1).sum()) > 100
    with rasterio.open(b / "fractions.tif") as src:
        assert src.descriptions[-1] == "G1_plan1" and float(np.nansum(src.read(src.count))) > 100


def test_tiled_scenario_zone_tables_equal_the_untiled_run(runs):
    untiled, tiled, dry = runs
    counts = job_counts(dry)
    assert counts["scenario_zones_tile"] == 4 and counts["scenario_zones"] == 1  # one job per tile, then the gather
    a, b = untiled / f"results/scenarios/{SCENARIO}", tiled / f"results/scenarios/{SCENARIO}"
    for t in ("r000c000", "r000c001", "r001c000", "r001c001"):
        assert (b / f"tiles/zones_{t}.npz").is_file() and (tiled / f"logs/scenarios/{SCENARIO}/zones_{t}.log").is_file()
    worst = 0.0
    tables = [(level, pd.read_parquet(a / "zones" / f"{level}.parquet"), pd.read_parquet(b / "zones" / f"{level}.parquet"))
              for level in LEVELS] + [("totals", pd.read_csv(a / "totals.csv"), pd.read_csv(b / "totals.csv"))]
    for level, x, y in tables:
        assert list(y.columns) == list(x.columns) and len(y) == len(x), level
        scale = float(np.nanmax(np.abs(x["carbon_t"].to_numpy(float))))  # the differences' rounding is the stock's
        for col in x.columns:
            if pd.api.types.is_float_dtype(x[col]):
                u, v = x[col].to_numpy(float), y[col].to_numpy(float)
                np.testing.assert_array_equal(np.isnan(v), np.isnan(u), err_msg=f"{level} {col}")
                # a difference's or an indicator's change's rounding is that of its terms: the stock, the indicator
                ref = scale if col.startswith("difference_t") else (
                    float(np.nanmax(np.abs(x[col[:-7]].to_numpy(float)), initial=0.0)) if col.endswith("_change") else 0.0)
                np.testing.assert_allclose(v, u, rtol=1e-9, atol=1e-9 * ref, err_msg=f"{level} {col}")
                if not ref:
                    ok = np.isfinite(u) & (u != 0)
                    worst = max(worst, float(np.max(np.abs(v[ok] / u[ok] - 1), initial=0.0)))
            elif col != "geometry":
                pd.testing.assert_series_equal(y[col], x[col], obj=f"{level} {col}")
    print(f"tiled vs untiled scenario zone tables: largest relative difference {worst:.1e}")
    # the comparison is not empty: the park adds carbon with an interval in its district, and the others differ by 0
    district = pd.read_parquet(b / "zones" / "district.parquet")
    assert (district["difference_t"] > 0).sum() >= 1 and (district["difference_t"] == 0).sum() >= 1
    grown = district[district["difference_t"] > 0]
    assert (grown["difference_t_hi"] > grown["difference_t_lo"]).all()
