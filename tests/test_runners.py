"""The rule runners (``run_<rule>``, what each script in workflow/scripts calls) called directly, without
Snakemake, on small hand-built files in tmp_path; every expected value is worked out by hand in the comments.

Grids: 10 m pixels (0.01 ha) in EPSG:32651, from (X0, Y0) up and to the east.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from greensink import io
from greensink.aggregate import run_aggregate
from greensink.carbon import run_carbon
from greensink.config import load_schema, with_defaults
from greensink.demo import run_build_demo
from greensink.grid import Grid
from greensink.model.run import run_model
from greensink.provenance import run_provenance
from greensink.scenario.run import (
    run_demo_scenario_layers,
    run_scenario_carbon,
    run_scenario_inputs,
    run_scenario_summary,
    run_scenario_zones,
)
from greensink.styles import run_qgis_styles
from greensink.trend import run_trend
from greensink.types import run_types
from greensink.uncertainty import run_ndvi_se
from greensink.vegetation import run_vegetation
from greensink.zones import run_prepare_zones, run_zone_coverage
from greensink.zoning.run import run_zoning_canopy_gap, run_zoning_importance, run_zoning_potential

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0


def grid(rows: int, cols: int) -> Grid:
    """``rows`` × ``cols`` pixels over x X0 .. X0 + 10 cols, y Y0 .. Y0 + 10 rows."""
    return Grid(crs=CRS, transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0 + 10.0 * rows), width=cols, height=rows)


# ----------------------------------------------------------------------------- carbon

NAN = float("nan")
FRACTIONS = np.array([[[1.0, 0.5, 0.0], [1.0, 1.0, 0.25]]], np.float32)  # one type G1
NDVI = np.array([[0.5, 0.2, 0.9], [NAN, 0.3, 0.6]], np.float32)


def carbon_inputs(tmp_path: Path) -> tuple[Path, dict[str, Path], Path]:
    g = grid(2, 3)
    fractions = io.write_raster(tmp_path / "fractions.tif", FRACTIONS, g, band_names=["G1"])
    ndvi = io.write_raster(tmp_path / "ndvi.tif", NDVI, g, band_names=["ndvi"])
    # carbon = 10 + 100 NDVI t C/ha, every bootstrap draw the same curve
    models = {"types": {"G1": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 10.0, "b": 100.0},
                               "bootstrap": [[10.0, 100.0]] * 20, "x_range": [0.0, 1.0]}}}
    return io.write_json(tmp_path / "models.json", models), {"ndvi": ndvi}, fractions


NO_NOISE = {"curve": True, "table": False, "residual": {"enabled": False}, "ndvi": {"enabled": False},
            "edges": {"enabled": False}}


def test_run_carbon_writes_the_map_and_its_statistics(tmp_path: Path) -> None:
    models, predictors, fractions = carbon_inputs(tmp_path)
    out, stats_out = tmp_path / "2024" / "carbon.tif", tmp_path / "2024" / "carbon.json"
    stats = run_carbon(models, predictors, fractions, None, out, stats_out, types=["G1"], year=2024, seed=1,
                       uncertainty=NO_NOISE)
    carbon = io.read_raster(out)
    # fraction × (10 + 100 NDVI): 1 × 60, 0.5 × 30, untyped 0; NDVI unobserved on a typed pixel → NaN, 1 × 40, 0.25 × 70
    expected = np.array([[60.0, 15.0, 0.0], [NAN, 40.0, 17.5]])
    np.testing.assert_allclose(carbon[0], expected, rtol=1e-6)
    np.testing.assert_allclose(carbon[1], expected, rtol=1e-6)  # identical draws: the band is the estimate
    np.testing.assert_allclose(carbon[2], expected, rtol=1e-6)
    # (60 + 15 + 40 + 17.5) t C/ha × 0.01 ha = 1.325 t; the unobserved pixel adds nothing, it is not 0 t
    assert stats["total_t"] == pytest.approx(1.325, rel=1e-6)
    assert stats["typed_pixels"] == 5  # every pixel with a type, the unobserved one too
    assert json.loads(stats_out.read_text()) == json.loads(json.dumps(stats))


def test_run_carbon_takes_the_edge_source_from_the_uncertainty_config_and_the_seed(tmp_path: Path) -> None:
    models, predictors, fractions = carbon_inputs(tmp_path)
    edges = {**NO_NOISE, "edges": {"enabled": True, "position_sd_m": 1.5}}

    def band(name: str, seed: int) -> np.ndarray:
        run_carbon(models, predictors, fractions, None, tmp_path / name, tmp_path / f"{name}.json", types=["G1"],
                   year=2024, seed=seed, uncertainty=edges)
        return io.read_raster(tmp_path / name)

    a, again, other = band("a.tif", 1), band("b.tif", 1), band("c.tif", 2)
    np.testing.assert_array_equal(a, again)  # the draws are the seed's
    # the edge source moves only pixels partly covered by the type: 0.5 at (0, 1), 0.25 at (1, 2)
    assert a[2, 0, 1] - a[1, 0, 1] > 0.5 and a[2, 1, 2] - a[1, 1, 2] > 0.5
    assert a[1, 0, 0] == a[2, 0, 0] == pytest.approx(60.0)  # wholly covered: no edge error
    assert not np.array_equal(a[1:], other[1:])


# ----------------------------------------------------------------------------- vegetation and ndvi_se

VEG_SETTINGS = {"fvc_percentiles": [5, 95], "ndvi_soil": 0.1, "ndvi_full": 0.9, "ndvi_vegetation": 0.3,
                "ndvi_shrub": 0.5, "ndvi_tree": 0.6, "chm": None}


def composite(tmp_path: Path) -> Path:
    # red, nir → NDVI: (0.1, 0.3) 0.5; (0.05, 0.35) 0.75; (0.2, 0.2) 0; never clear NaN
    red = np.array([[0.1, 0.05], [0.2, NAN]], np.float32)
    nir = np.array([[0.3, 0.35], [0.2, NAN]], np.float32)
    count = np.array([[4, 9], [1, 0]], np.float32)
    return io.write_raster(tmp_path / "composite.tif", np.stack([red, nir, count]), grid(2, 2),
                           band_names=["red", "nir", "valid_obs_count"])


def test_run_vegetation_writes_every_product_and_vegetation_json(tmp_path: Path) -> None:
    names = ("ndvi", "fvc", "vegetation", "canopy", "classes", "height", "stats")
    out = {k: tmp_path / "2024" / f"{k}.{'json' if k == 'stats' else 'tif'}" for k in names}
    stats = run_vegetation(composite(tmp_path), out, settings=VEG_SETTINGS, block_rows=1, chm=[])
    np.testing.assert_allclose(io.read_raster(out["ndvi"]), [[0.5, 0.75], [0.0, NAN]], rtol=1e-6)
    # FVC = (NDVI − 0.1) / 0.8, clipped to 0–1: 0.5, 0.8125, 0
    np.testing.assert_allclose(io.read_raster(out["fvc"]), [[0.5, 0.8125], [0.0, NAN]], rtol=1e-6)
    np.testing.assert_array_equal(io.read_raster(out["vegetation"]), [[1, 1], [0, NAN]])  # NDVI ≥ 0.3
    np.testing.assert_array_equal(io.read_raster(out["canopy"]), [[0, 1], [0, NAN]])  # NDVI ≥ 0.6
    assert np.isnan(io.read_raster(out["height"])).all()  # no canopy height model
    # of the 3 observed pixels 2 are vegetated, 1 is tree canopy
    assert stats["vegetation_pct"] == pytest.approx(200 / 3) and stats["canopy_pct"] == pytest.approx(100 / 3)
    assert "chm" not in stats
    assert json.loads(out["stats"].read_text())["vegetation_pct"] == pytest.approx(200 / 3)


def test_run_ndvi_se_is_the_median_standard_error_of_the_clear_count(tmp_path: Path) -> None:
    out = tmp_path / "ndvi_se.tif"
    stats = run_ndvi_se(composite(tmp_path), out, obs_sd=0.03, method="median", compress="deflate")
    # SE of a median of n normal values ≈ √(π/2) σ / √n: σ = 0.03, n = 4, 9, 1; never clear → NaN
    k = math.sqrt(math.pi / 2) * 0.03
    expected = [[k / 2, k / 3], [k, NAN]]
    np.testing.assert_allclose(io.read_raster(out), expected, rtol=1e-6)
    assert stats["observed_pixels"] == 3
    assert stats["mean_ndvi_se"] == pytest.approx((k / 2 + k / 3 + k) / 3, rel=1e-6)


# ----------------------------------------------------------------------------- zones

def write_level(path: Path, ids: list[str], boxes: list[tuple[float, float, float, float]]) -> Path:
    gdf = gpd.GeoDataFrame({"zone_id": ids, "name": [f"zone {i}" for i in ids]},
                           geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes], crs=CRS)
    gdf.to_file(path, driver="GPKG")
    return path


def test_run_prepare_zones_nests_the_levels_and_writes_the_grid(tmp_path: Path) -> None:
    # a 100 m × 40 m city, split into two districts of 50 m × 40 m (listed east first)
    city = write_level(tmp_path / "city.gpkg", ["C"], [(0, 0, 100, 40)])
    district = write_level(tmp_path / "district.gpkg", ["E", "W"], [(50, 0, 100, 40), (0, 0, 50, 40)])
    zones = [{"level": "city", "path": str(city), "id": "zone_id", "name": "name"},
             {"level": "district", "path": str(district), "id": "zone_id", "name": "name"}]
    out = tmp_path / "results" / "zones"
    config = {"grid": {"align": "resolution"}, "resolution": 10, "crs": CRS, "imagery": {"source": "local"}}
    g = run_prepare_zones(zones, [out / "city.gpkg", out / "district.gpkg"], out / "nesting.csv", out / "grid.json",
                          crs=CRS, resolution_m=10.0, config=config)
    assert (g.width, g.height) == (10, 4)  # 100 m / 10 m, 40 m / 10 m
    written = Grid.read(out / "grid.json")
    assert (written.width, written.height, written.transform.c, written.transform.f) == (10, 4, X0, Y0 + 40)
    assert json.loads((out / "grid.json").read_text())["align"]["align"] == "resolution"
    districts = io.read_vector(out / "district.gpkg")
    assert list(districts["zone_id"]) == ["E", "W"] and list(districts["parent_id"]) == ["C", "C"]
    nesting = io.read_csv(out / "nesting.csv")
    assert len(nesting) == 1 and bool(nesting.loc[0, "tiles_parents"])


def test_run_zone_coverage_is_the_exact_pixel_share_of_each_zone(tmp_path: Path) -> None:
    g = grid(2, 3)
    io.write_json(tmp_path / "grid.json", g.to_dict())
    # zone A: the whole first column (x 0-10 m); zone B: x 15-30 m on the top row, so half of pixel (0, 1)
    zones = write_level(tmp_path / "block.gpkg", ["A", "B"], [(0, 0, 10, 20), (15, 10, 30, 20)])
    m = run_zone_coverage(zones, tmp_path / "grid.json", tmp_path / "block_coverage.npz")
    dense = io.read_sparse(tmp_path / "block_coverage.npz").toarray()
    np.testing.assert_allclose(dense, m.toarray())
    # pixels in row-major order: (0,0) (0,1) (0,2) (1,0) (1,1) (1,2)
    np.testing.assert_allclose(dense, [[1, 0, 0, 1, 0, 0], [0, 0.5, 1, 0, 0, 0]], atol=1e-12)


# ----------------------------------------------------------------------------- provenance

def test_run_provenance_checksums_local_inputs_and_scene_bands(tmp_path: Path) -> None:
    zones = tmp_path / "zones.gpkg"
    zones.write_bytes(b"zones")
    red, nir = tmp_path / "red.tif", tmp_path / "nir.tif"
    red.write_bytes(b"red band")
    nir.write_bytes(b"nir band")
    scene = {"scene_id": "S1", "datetime": "2024-07-01", "sensor": "sentinel2", "scale": 1e-4, "offset": 0.0,
             "red": str(red), "nir": str(nir), "quality": None}
    scenes = io.write_json(tmp_path / "scenes.json", {"year": 2024, "scenes": [scene], "summary": {"masked_pct": 12.5}})
    models = io.write_json(tmp_path / "models.json", {"year": 2024, "types": {}})
    inputs = {"zones": [str(zones)], "coefficients": str(zones), "population": [], "demo": ["https://example.org/x.tif"],
              "scenes": [str(scenes)], "models": [str(models)]}
    prov = run_provenance(inputs, tmp_path / "provenance.json", config={"years": [2024]}, root=tmp_path)
    sha = {p["path"]: p["sha256"] for p in prov["inputs"]}
    # zones.gpkg listed twice is checksummed once; the remote file is not checksummed
    assert sha == {"zones.gpkg": hashlib.sha256(b"zones").hexdigest(), "red.tif": hashlib.sha256(b"red band").hexdigest(),
                   "nir.tif": hashlib.sha256(b"nir band").hexdigest()}
    assert prov["scenes"]["2024"][0]["scene_id"] == "S1"
    assert prov["imagery"]["2024"]["summary"]["masked_pct"] == 12.5
    assert json.loads((tmp_path / "provenance.json").read_text())["config_sha256"] == prov["config_sha256"]


# ----------------------------------------------------------------------------- QGIS styles

def test_run_qgis_styles_scales_every_year_alike(tmp_path: Path) -> None:
    g = grid(10, 10)
    a = io.write_raster(tmp_path / "a.tif", np.arange(100, dtype=np.float32).reshape(10, 10), g)
    b = io.write_raster(tmp_path / "b.tif", np.full((10, 10), 10.0, np.float32), g)
    zones = write_level(tmp_path / "z.gpkg", ["A"], [(0, 0, 10, 10)])
    gpd.GeoDataFrame(io.read_vector(zones).assign(carbon_t_ha=[25.0])).to_file(zones, driver="GPKG")
    out = {"carbon": [tmp_path / "a.qml", tmp_path / "b.qml"], "sinks": [], "tables": [tmp_path / "z.qml"], "change": [],
           "fixed": [tmp_path / "ndvi.qml"]}
    limits = run_qgis_styles([a, b], [], [zones], [], out)
    # 99th percentile of 0..99 (linear interpolation): 98 + 0.01 × 1 = 98.01, above b's 10; no sink rasters: 1.0
    assert limits["carbon_max"] == pytest.approx(98.01) and limits["sink_max"] == 1.0
    assert limits["zone_max"] == 25.0  # one zone: its value
    assert (tmp_path / "a.qml").read_text() == (tmp_path / "b.qml").read_text()  # one scale for both years
    assert "98.01" in (tmp_path / "a.qml").read_text() and (tmp_path / "ndvi.qml").is_file()


# ----------------------------------------------------------------------------- types

def typed_polygons(path: Path, rows: list[tuple[str, tuple[float, float, float, float]]]) -> Path:
    gdf = gpd.GeoDataFrame({"type": [t for t, _ in rows]},
                           geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d) for _, (a, b, c, d) in rows], crs=CRS)
    gdf.to_file(path, driver="GPKG")
    return path


def test_run_types_gives_overlaps_to_the_first_type_and_writes_exact_fractions(tmp_path: Path) -> None:
    io.write_json(tmp_path / "grid.json", grid(2, 3).to_dict())
    # top row (y 10-20 m): G1 over x 0-15 m, XG over x 10-30 m; they overlap on x 10-15 m (50 m²)
    gs = typed_polygons(tmp_path / "gs.gpkg", [("G1", (0, 10, 15, 20)), ("XG", (10, 10, 30, 20))])
    config = {"path": str(gs), "type_column": "type", "types": {"G1": "park", "XG": "attached"}}
    out = {k: tmp_path / "types" / f"{k}.{ext}" for k, ext in (("fractions", "tif"), ("greenspace", "gpkg"),
                                                              ("summary", "json"))}
    record = run_types(tmp_path / "grid.json", out["fractions"], out["greenspace"], out["summary"], greenspace=config)
    fractions = io.read_raster(out["fractions"])
    # G1 listed first keeps the overlap: G1 pixel (0,0) whole, (0,1) half; XG the other half of (0,1) and (0,2)
    np.testing.assert_allclose(fractions[0], [[1, 0.5, 0], [0, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(fractions[1], [[0, 0.5, 1], [0, 0, 0]], atol=1e-6)
    t = record["types"]
    # 150 m² of G1 = 0.015 ha; XG 200 m² less the 50 m² overlap = 0.015 ha; on the grid 1.5 pixels of 0.01 ha each
    assert t["G1"]["area_ha"] == pytest.approx(0.015) and t["XG"]["area_ha"] == pytest.approx(0.015)
    assert t["G1"]["grid_area_ha"] == pytest.approx(0.015) and t["XG"]["grid_area_ha"] == pytest.approx(0.015)
    assert t["XG"]["overlap_given_to_earlier_types_ha"] == pytest.approx(0.005)
    assert t["G1"]["overlap_given_to_earlier_types_ha"] == 0.0
    assert json.loads(out["summary"].read_text())["source"] == str(gs)
    typed = io.read_vector(out["greenspace"])
    assert typed.area[typed["type"] == "XG"].sum() == pytest.approx(150.0)


def test_run_types_without_green_space_types_is_one_pseudo_type_over_every_pixel(tmp_path: Path) -> None:
    io.write_json(tmp_path / "grid.json", grid(2, 3).to_dict())
    record = run_types(tmp_path / "grid.json", tmp_path / "f.tif", tmp_path / "gs.gpkg", tmp_path / "s.json",
                       greenspace=None)
    np.testing.assert_array_equal(io.read_raster(tmp_path / "f.tif"), np.ones((2, 3)))
    assert record["source"] is None and list(record["types"]) == ["VEG"]
    # 6 pixels of 0.01 ha on the grid; no polygons
    assert record["types"]["VEG"]["grid_area_ha"] == pytest.approx(0.06) and record["types"]["VEG"]["area_ha"] == 0.0
    assert len(io.read_vector(tmp_path / "gs.gpkg")) == 0


# ----------------------------------------------------------------------------- model

COEFFICIENTS = ("type,name,c_above,c_below,c_soil,c_dead,uncertainty_pct,model_form,model_a,model_b,source\n"
                "G1,park,22.0,5.0,60.0,2.0,40,,,,test\nXG,attached,10.0,2.5,50.0,1.0,40,,,,test\n")


def test_run_model_fits_the_plots_curve_and_falls_back_to_the_table(tmp_path: Path) -> None:
    g = grid(6, 6)
    ndvi = (0.2 + 0.02 * np.arange(36, dtype=np.float32)).reshape(6, 6)  # 0.20 .. 0.90
    rasters = {"ndvi": io.write_raster(tmp_path / "ndvi.tif", ndvi, g, band_names=["ndvi"])}
    fractions = io.write_raster(tmp_path / "fractions.tif", np.stack([np.ones((6, 6)), np.zeros((6, 6))]).astype(np.float32),
                                g, band_names=["G1", "XG"])
    # 12 G1 plots at pixel centres of 2024, carbon exactly 10 + 100 NDVI; one G1 plot of 2023; one XG plot
    cells = [(r, c) for r in range(6) for c in range(0, 6, 3)]
    xs = [X0 + 10 * c + 5 for _, c in cells]
    ys = [Y0 + 60 - 10 * r - 5 for r, _ in cells]
    carbon = [10.0 + 100.0 * float(ndvi[r, c]) for r, c in cells]
    plots = gpd.GeoDataFrame({"plot_id": [f"p{i}" for i in range(len(cells))] + ["old", "x1"],
                              "type": ["G1"] * len(cells) + ["G1", "XG"], "year": [2024] * len(cells) + [2023, 2024],
                              "carbon_t_ha": carbon + [50.0, 30.0]},
                             geometry=gpd.points_from_xy(xs + [xs[0], xs[1]], ys + [ys[0], ys[1]]), crs=CRS)
    plots.to_file(tmp_path / "plots.gpkg", driver="GPKG")
    (tmp_path / "coefficients.csv").write_text(COEFFICIENTS, encoding="utf-8")
    cfg = with_defaults({"years": [2023, 2024], "plots": {"path": "plots.gpkg"},
                         "model": {"forms": ["linear"], "min_plots": 5, "n_bootstrap": 20, "cv_folds": 3,
                                   "cv_block_m": 20, "min_plot_type_share": 0.0}}, load_schema())
    out = tmp_path / "2024" / "model"
    figures = [out / "G1.png", out / "XG.png"]
    models = run_model(tmp_path / "plots.gpkg", tmp_path / "coefficients.csv", rasters, fractions, out / "models.json",
                       out / "plots.csv", figures, year=2024, years=[2023, 2024], types=["G1", "XG"], model=cfg["model"],
                       plots_config=cfg["plots"], typed=True, seed=3, ndvi_vegetation=0.2, notes=["a note"],
                       uncertainty_config={"residual": {"enabled": False}})
    g1, xg = models["types"]["G1"], models["types"]["XG"]
    assert g1["source"] == "plots" and g1["form"] == "linear" and g1["n"] == 12  # the 2023 plot is another year's
    assert g1["params"]["a"] == pytest.approx(10.0, abs=1e-6) and g1["params"]["b"] == pytest.approx(100.0, rel=1e-6)
    # one XG plot (of min_plots 5): the table's constant density, 10 + 2.5 t C/ha above and below ground
    assert xg["source"] == "coefficients" and xg["form"] == "constant" and xg["params"]["c"] == pytest.approx(12.5)
    assert xg["n"] == 1 and "min_plots 5" in xg["reason"]
    assert models["year"] == 2024 and models["notes"] == ["a note"] and models["pseudo_type"] is False
    assert json.loads((out / "models.json").read_text())["types"]["G1"]["n"] == 12
    samples = io.read_csv(out / "plots.csv")
    assert len(samples) == 13  # the 12 G1 plots and the XG plot of 2024, with the NDVI of their pixel
    np.testing.assert_allclose(samples.set_index("plot_id").loc["p3", "ndvi"], ndvi[1, 3], rtol=1e-6)
    assert all(f.is_file() and f.stat().st_size > 0 for f in figures)


def test_run_model_without_plots_takes_every_type_from_the_table(tmp_path: Path) -> None:
    g = grid(2, 2)
    rasters = {"ndvi": io.write_raster(tmp_path / "ndvi.tif", np.full((2, 2), 0.5, np.float32), g)}
    fractions = io.write_raster(tmp_path / "fractions.tif", np.ones((1, 2, 2), np.float32), g, band_names=["XG"])
    (tmp_path / "coefficients.csv").write_text(COEFFICIENTS, encoding="utf-8")
    cfg = with_defaults({"years": [2024]}, load_schema())
    models = run_model(None, tmp_path / "coefficients.csv", rasters, fractions, tmp_path / "models.json",
                       tmp_path / "plots.csv", [tmp_path / "XG.png"], year=2024, years=[2024], types=["XG"],
                       model=cfg["model"], plots_config=None, typed=True, seed=1, ndvi_vegetation=0.2)
    xg = models["types"]["XG"]
    assert xg["source"] == "coefficients" and xg["params"]["c"] == pytest.approx(12.5)  # 10 + 2.5 t C/ha
    assert models["plot_carbon"] == {"source": None} and models["tiers"]
    assert len(io.read_csv(tmp_path / "plots.csv")) == 0



# ----------------------------------------------------------------------------- build_demo

def test_run_build_demo_writes_the_city_of_the_config(tmp_path: Path) -> None:
    demo = {"out_dir": str(tmp_path / "demo"), "seed": 5, "extent_m": 1000.0, "blocks": [2, 2],
            "parcels_per_block": [2, 2], "scenes_per_year": 2, "truth_cell_m": 5.0, "plot_radius_m": 0.0}
    manifest = run_build_demo(demo=demo, years=[2024], crs=CRS, resolution_m=10.0,
                              season={"start": "05-01", "end": "09-30"}, compress="deflate")
    out = tmp_path / "demo"
    assert json.loads((out / "demo.json").read_text()) == manifest
    # a city of about 1 km × 1 km (its outline is jittered): its area as written, 2 × 2 blocks of 2 × 2 parcels each
    city = io.read_vector(out / "zones" / "city.gpkg")
    assert manifest["area_ha"]["city"] == pytest.approx(city.area.sum() / 10_000, abs=1e-6)
    assert manifest["area_ha"]["city"] == pytest.approx(100.0, rel=0.05)
    # the grid: 10 m pixels over the 1 km extent and a pixel of margin each side (102 × 102)
    assert (manifest["grid"]["resolution_m"], manifest["grid"]["width"], manifest["grid"]["height"]) == (10.0, 102, 102)
    assert len(io.read_vector(out / "zones" / "block.gpkg")) == 4
    assert len(io.read_vector(out / "zones" / "parcel.gpkg")) == 16
    params = manifest["parameters"]
    assert (params["seed"], params["scenes_per_year"], params["season"], params["years"]) == (5, 2, ["05-01", "09-30"], [2024])
    # the season of the config: its 2 scenes fall in May-September (the generator adds one off-season scene)
    scenes = [s for s in manifest["scenes"] if s["in_season"]]
    assert len(scenes) == 2 and all("2024-05-01" <= s["datetime"][:10] <= "2024-09-30" for s in scenes)
    assert all(not "2024-05-01" <= s["datetime"][:10] <= "2024-09-30" for s in manifest["scenes"] if not s["in_season"])
    assert len(io.read_csv(out / "imagery" / "scenes.csv")) == len(manifest["scenes"])
    assert (out / "truth" / "carbon_2024.tif").is_file()


# ----------------------------------------------------------------------------- aggregate

def aggregate_inputs(tmp_path: Path) -> dict:
    """carbon_inputs' 2 × 3 grid (one type G1, carbon 10 + 100 NDVI t C/ha of the type's land) with the other
    rasters of a year, zones A (x 0-10 m, holding the never-observed pixel (1, 0)), B (x 10-30 m) and the
    city C (both), a G1 park polygon over A and 60 people spread evenly over the city."""
    g = grid(2, 3)
    models, predictors, fractions = carbon_inputs(tmp_path)
    record = io.read_json(models)
    record["types"]["G1"]["source"] = "plots"  # a curve fitted to plots: tier 3
    io.write_json(models, {**record, "seed": 0})
    io.write_json(tmp_path / "grid.json", g.to_dict())
    rasters = {name: io.write_raster(tmp_path / f"{name}.tif", np.array(values, np.float32), g) for name, values in {
        "ndvi": NDVI, "fvc": [[0.5, 0.1, 1.0], [NAN, 0.3, 0.6]], "vegetation": [[1, 0, 1], [NAN, 1, 1]],
        "canopy": [[1, 0, 0], [NAN, 0, 1]], "classes": [[3, 0, 2], [NAN, 1, 3]]}.items()}
    levels = {"city": [("C", "", (0, 0, 30, 20))], "block": [("A", "C", (0, 0, 10, 20)), ("B", "C", (10, 0, 30, 20))]}
    zones, coverage = [], []
    for level, rows in levels.items():
        path = tmp_path / f"{level}.gpkg"
        gpd.GeoDataFrame({"zone_id": [r[0] for r in rows], "parent_id": [r[1] for r in rows], "level": level,
                          "name": [f"zone {r[0]}" for r in rows]},
                         geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d) for *_, (a, b, c, d) in rows],
                         crs=CRS).to_file(path, driver="GPKG")
        zones.append(path)
        coverage.append(tmp_path / f"{level}_coverage.npz")
        run_zone_coverage(path, tmp_path / "grid.json", coverage[-1])
    greenspace = typed_polygons(tmp_path / "greenspace.gpkg", [("G1", (0, 0, 10, 20))])
    population = tmp_path / "population.gpkg"
    gpd.GeoDataFrame({"people": [60.0]}, geometry=[box(X0, Y0, X0 + 30, Y0 + 20)], crs=CRS).to_file(population)
    return {"zones": zones, "coverage": coverage, "grid": tmp_path / "grid.json", "rasters": rasters,
            "fractions": fractions, "greenspace": greenspace, "models_json": models, "predictors": predictors,
            "population": population}


def test_run_aggregate_sums_observed_and_filled_carbon_per_zone(tmp_path: Path) -> None:
    inp = aggregate_inputs(tmp_path)
    paths = [tmp_path / "out" / "city.parquet", tmp_path / "out" / "block.parquet"]
    gs = {"type_column": "type", "park_types": ["G1"], "types": {"G1": "park"}}
    tables = run_aggregate(inp["zones"], inp["coverage"], inp["grid"], inp["rasters"], inp["fractions"],
                           inp["greenspace"], inp["models_json"], inp["predictors"], None, paths, year=2024,
                           levels=["city", "block"], types=["G1"], greenspace_config=gs, seed=1,
                           min_observed_pct=40.0, uncertainty=NO_NOISE, population=inp["population"],
                           population_config={"column": "people"})
    city, block = (gpd.read_parquet(p) for p in paths)
    assert list(block["zone_id"]) == ["A", "B"] and list(city["zone_id"]) == ["C"]
    a, b, c = block.iloc[0], block.iloc[1], city.iloc[0]
    # fill density of G1: mean over its observed land (fractions 1, 0.5, 1, 0.25 of pixels at 60, 30, 40, 70 t C/ha)
    fill = (60 + 0.5 * 30 + 40 + 0.25 * 70) / 2.75  # 48.18 t C/ha
    # B: every pixel observed, (15 + 0 + 40 + 17.5) t C/ha × 0.01 ha
    assert b["carbon_t"] == pytest.approx(0.725, rel=1e-6) and b["carbon_t_filled"] == 0.0
    assert b["carbon_t_lo"] == pytest.approx(0.725, rel=1e-6) == b["carbon_t_hi"]  # identical draws, no noise
    # A: 60 t C/ha × 0.01 ha observed, its never-clear G1 pixel filled at the fill density
    assert a["carbon_t_observed"] == pytest.approx(0.6, rel=1e-6)
    assert a["carbon_t_filled"] == pytest.approx(0.01 * fill, rel=1e-6)
    assert a["carbon_observed_pct"] == pytest.approx(50.0, rel=1e-6)
    assert c["carbon_t"] == pytest.approx(0.6 + 0.725 + 0.01 * fill, rel=1e-6)  # the blocks nest into the city
    # densities, CO2e and areas: B is 20 m × 20 m = 0.04 ha; CO2e = C × 44/12
    assert b["area_ha"] == pytest.approx(0.04) and b["carbon_t_ha"] == pytest.approx(0.725 / 0.04, rel=1e-6)
    assert b["co2e_t"] == pytest.approx(0.725 * 44 / 12, rel=1e-6)
    # cover of B's pixels: vegetation 0 1 1 1 → 75 %; canopy 0 0 0 1 → 25 %; tree + shrub 2 of 3 vegetated
    assert b["green_coverage_pct"] == pytest.approx(75.0) and b["canopy_cover_pct"] == pytest.approx(25.0)
    assert b["tree_shrub_share_pct"] == pytest.approx(200 / 3)
    # the park polygon is all of A: 0.02 ha, 100 % green-space ratio; the city 0.02 of 0.06 ha
    assert a["green_space_ratio_pct"] == pytest.approx(100.0) and b["green_space_ratio_pct"] == 0.0
    assert c["green_space_ratio_pct"] == pytest.approx(100 / 3)
    # 60 people over 600 m²: A holds 20, so 200 m² of park / 20 people = 10 m² per person; the city 200 / 60
    assert a["population"] == pytest.approx(20.0) and a["park_area_per_capita_m2"] == pytest.approx(10.0)
    assert c["park_area_per_capita_m2"] == pytest.approx(200 / 60)
    assert np.isnan(c["park_service_residential_pct"])  # no residential land given: no value, not 0
    assert a["carbon_tier"] == "T3"  # fitted to plots
    assert list(tables) == ["city", "block"] and tables["block"]["carbon_t"].tolist() == block["carbon_t"].tolist()


def test_run_aggregate_leaves_carbon_unknown_below_the_observed_share(tmp_path: Path) -> None:
    inp = aggregate_inputs(tmp_path)
    path = [tmp_path / "block.parquet"]
    tables = run_aggregate(inp["zones"][1:], inp["coverage"][1:], inp["grid"], inp["rasters"], inp["fractions"],
                           inp["greenspace"], inp["models_json"], inp["predictors"], None, path, year=2024,
                           levels=["block"], types=["G1"], greenspace_config=None, seed=1, min_observed_pct=60.0,
                           uncertainty=NO_NOISE)
    a, b = tables["block"].iloc[0], tables["block"].iloc[1]
    # A's G1 land is observed on 50 % < 60 %: carbon NaN, its observed 0.6 t stays a number
    assert np.isnan(a["carbon_t"]) and np.isnan(a["carbon_t_lo"]) and a["carbon_t_observed"] == pytest.approx(0.6)
    assert b["carbon_t"] == pytest.approx(0.725, rel=1e-6)
    # no green-space types: green-space and park columns are not given (NaN), not 0
    assert np.isnan(b["green_space_ratio_pct"]) and np.isnan(b["park_area_ha"])
    assert np.isnan(b["park_service_population_pct"]) and np.isnan(b["population"])


# ----------------------------------------------------------------------------- zoning

def two_levels(tmp_path: Path, g: Grid, split_m: float) -> tuple[list[Path], list[Path]]:
    """The city C over the whole grid and its blocks W (x 0 .. split_m) and E (the rest), with parent ids,
    levels and names as rule prepare_zones writes them, and their coverage matrices (run_zone_coverage)."""
    io.write_json(tmp_path / "grid.json", g.to_dict())
    w, h = 10.0 * g.width, 10.0 * g.height
    levels = {"city": [("C", "", (0, 0, w, h))], "block": [("W", "C", (0, 0, split_m, h)), ("E", "C", (split_m, 0, w, h))]}
    zones, coverage = [], []
    for level, rows in levels.items():
        zones.append(tmp_path / f"{level}.gpkg")
        gpd.GeoDataFrame({"zone_id": [r[0] for r in rows], "parent_id": [r[1] for r in rows], "level": level,
                          "name": [f"zone {r[0]}" for r in rows]},
                         geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d) for *_, (a, b, c, d) in rows],
                         crs=CRS).to_file(zones[-1], driver="GPKG")
        coverage.append(tmp_path / f"{level}_coverage.npz")
        run_zone_coverage(zones[-1], tmp_path / "grid.json", coverage[-1])
    return zones, coverage


def rasters_3x3(tmp_path: Path, values: dict[str, list]) -> dict[str, Path]:
    g = grid(3, 3)
    return {name: io.write_raster(tmp_path / f"{name}.tif", np.array(v, np.float32), g, band_names=[name])
            for name, v in values.items()}


def zoning_outputs(tmp_path: Path, product: str) -> tuple[list[Path], Path]:
    out = tmp_path / "2024" / "zoning"
    return [out / f"{product}_{level}.gpkg" for level in ("city", "block")], out / f"{product}.json"


def test_run_zoning_importance_classes_each_pixel_by_the_weighted_scores(tmp_path: Path) -> None:
    zones, coverage = two_levels(tmp_path, grid(3, 3), 10.0)  # W: column 0; E: columns 1-2
    r = rasters_3x3(tmp_path, {
        "vegetation_class": [[3, 3, 1], [3, 1, 0], [3, NAN, 1]],  # (2, 1) never observed
        "carbon": [[40, 30, 5], [20, 10, 0], [50, NAN, 12]],
        "canopy": [[0] * 3] * 3, "height": [[NAN] * 3] * 3, "ndvi": [[0.5] * 3] * 3, "fvc": [[0.5] * 3] * 3,
        "user": [[1, 3, 3], [1, 2, 3], [1, 1, NAN]],  # a user raster factor; no value at (2, 2)
        "fractions": [[0] * 3] * 3})
    zoning = {"importance": {"class_breaks": [1.8, 2.4], "factors": [
        {"name": "veg", "weight": 1, "layer": "vegetation_class", "classes": {"0": 1, "1": 1, "2": 2, "3": 3}},
        {"name": "carbon", "weight": 2, "layer": "carbon", "breaks": [10, 25], "scores": [1, 2, 3]},
        {"name": "u", "weight": 1, "path": str(r["user"]), "breaks": [1.5, 2.5], "scores": [1, 2, 3]},
        {"name": "tall", "weight": 10, "layer": "height", "breaks": [5], "scores": [1, 3]}]}}
    gpkg, summary_out = zoning_outputs(tmp_path, "importance")
    raster_out, style_out = gpkg[0].parent / "importance.tif", gpkg[0].parent / "importance.qml"
    layers = {k: r[k] for k in ("vegetation_class", "canopy", "height", "ndvi", "fvc", "carbon")}
    summary = run_zoning_importance(zones, coverage, tmp_path / "grid.json", layers, r["fractions"], raster_out,
                                    style_out, gpkg, summary_out, levels=["city", "block"], types=["G1"],
                                    zoning=zoning, typed_land=False, chm=False, compress="deflate")
    # no canopy height model: "tall" is dropped, weights 1:2:1 → 0.25, 0.5, 0.25. Scores (veg, carbon, u):
    # (0,0) 3,3,1 → 2.5 → 3; (0,1) 3,3,3 → 3 → 3; (0,2) 1,1,3 → 1.5 → 1
    # (1,0) 3,2,1 → 2.0 → 2; (1,1) 1,2,2 → 1.75 → 1; (1,2) 1,1,3 → 1.5 → 1
    # (2,0) 3,3,1 → 2.5 → 3; (2,1) unobserved → 255; (2,2) u has no value → 255
    with rasterio.open(raster_out) as src:  # the stored codes, 255 the declared nodata (io.read_raster reads NaN)
        assert (src.dtypes[0], src.nodata) == ("uint8", 255)
        np.testing.assert_array_equal(src.read(1), [[3, 3, 1], [2, 1, 1], [3, 255, 255]])
    assert summary["dropped_factors"].keys() == {"tall"}
    assert {f["name"]: f["weight_normalised"] for f in summary["factors"]} == {"veg": 0.25, "carbon": 0.5, "u": 0.25}
    assert summary["pixels"] == {"3": 3, "2": 1, "1": 3, "255": 2}
    assert json.loads(summary_out.read_text()) == json.loads(json.dumps(summary))
    assert "极重要" in style_out.read_text(encoding="utf-8")
    w, e = (io.read_vector(gpkg[1]).set_index("zone_id").loc[z] for z in ("W", "E"))
    # W (column 0): classes 3, 2, 3 at 40, 20, 50 t C/ha → 0.02 ha and 0.9 t extremely important, 0.01 ha, 0.2 t important
    assert w["area_ha_extremely_important"] == pytest.approx(0.02) and w["carbon_t_extremely_important"] == pytest.approx(0.9)
    assert w["area_ha_important"] == pytest.approx(0.01) and w["carbon_t_important"] == pytest.approx(0.2)
    # E: 5 observed pixels, 4 classed; general 5 + 10 + 0 t C/ha → 0.15 t; (2, 2) observed without a class
    assert e["observed_ha"] == pytest.approx(0.05) and e["classified_ha"] == pytest.approx(0.04)
    assert e["unclassified_ha"] == pytest.approx(0.01) and e["area_ha_general"] == pytest.approx(0.03)
    assert e["carbon_t_general"] == pytest.approx(0.15) and e["carbon_t_extremely_important"] == pytest.approx(0.3)
    assert (gpkg[1].with_suffix(".csv")).is_file()


def polygons(path: Path, boxes: list[tuple[float, float, float, float]]) -> Path:
    gpd.GeoDataFrame(geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes], crs=CRS).to_file(path)
    return path


def test_run_zoning_potential_is_the_land_the_given_layers_leave(tmp_path: Path) -> None:
    zones, coverage = two_levels(tmp_path, grid(3, 3), 10.0)
    r = rasters_3x3(tmp_path, {"carbon": [[0, 0, 0], [0, 20, 60], [0, 30, 10]]})
    # construction: x 0-15 m (column 0 and half of column 1); red line: the top row's x 10-30 m (overlapping
    # the construction on half of pixel (0, 1)); no cropland layer
    zoning = {"potential_density_t_ha": 50.0,
              "construction": {"path": str(polygons(tmp_path / "construction.gpkg", [(0, 0, 15, 30)]))},
              "red_line": {"path": str(polygons(tmp_path / "red_line.gpkg", [(10, 20, 30, 30)]))}}
    (tmp_path / "coefficients.csv").write_text("type,name,c_above,c_below\nVEG,vegetation,30,8\n", encoding="utf-8")
    gpkg, summary_out = zoning_outputs(tmp_path, "potential")
    raster_out, style_out = gpkg[0].parent / "potential.tif", gpkg[0].parent / "potential.qml"
    summary = run_zoning_potential(zones, coverage, tmp_path / "grid.json", r["carbon"], tmp_path / "coefficients.csv",
                                   raster_out, style_out, gpkg, summary_out, levels=["city", "block"], zoning=zoning,
                                   greenspace=None, compress="deflate")
    # potential share 1 − union: [[0, 0, 0], [0, 0.5, 1], [0, 0.5, 1]]; the raster marks ≥ 0.5
    with rasterio.open(raster_out) as src:
        np.testing.assert_array_equal(src.read(1), [[0, 0, 0], [0, 1, 1], [0, 1, 1]])
    city = io.read_vector(gpkg[0]).iloc[0]
    # by hand: construction 0.03 + 0.015 ha, red line 0.02 ha, 0.005 ha of them the same land:
    # excluded 0.06 ha = total 0.09 − potential (0.5 + 1 + 0.5 + 1) × 0.01 ha
    assert city["construction_ha"] == pytest.approx(0.045) and city["red_line_ha"] == pytest.approx(0.02)
    assert np.isnan(city["cropland_ha"])  # not given: unknown, not 0 ha
    assert city["potential_ha"] == pytest.approx(0.03) and city["excluded_ha"] == pytest.approx(0.06)
    # brought to 50 t C/ha: 0.5 × 30 + 1 × 0 (60 is above) + 0.5 × 20 + 1 × 40 = 65 t C/ha × 0.01 ha
    assert city["potential_added_t"] == pytest.approx(0.65, rel=1e-6)
    assert city["current_carbon_t"] == pytest.approx(0.95, rel=1e-6)  # (10 + 60 + 15 + 10) × 0.01
    assert city["potential_stock_t"] == pytest.approx(1.5)  # 0.03 ha × 50 t C/ha
    w = io.read_vector(gpkg[1]).set_index("zone_id").loc["W"]
    assert w["potential_ha"] == 0.0 and w["construction_ha"] == pytest.approx(0.03)
    assert summary["not_subtracted"] == ["cropland"] and summary["subtracted"] == ["construction", "red_line"]
    assert summary["levels"]["block"]["totals"]["potential_ha"] == pytest.approx(0.03)
    assert json.loads(summary_out.read_text())["density_source"] == "configured (zoning)"
    assert "potential space" in style_out.read_text(encoding="utf-8")


def test_run_zoning_canopy_gap_takes_the_density_from_the_coefficient_table(tmp_path: Path) -> None:
    zones, coverage = two_levels(tmp_path, grid(3, 3), 10.0)
    r = rasters_3x3(tmp_path, {"classes": [[3, 3, 0], [1, 2, 0], [NAN, 3, 0]],
                               "canopy": [[1, 0.5, 0], [0, 0, 0], [NAN, 1, 0]], "carbon": [[80, 40, 0], [5, 10, 0], [NAN, 90, 0]]})
    # open land: x 20-30 m, y 0-15 m → pixel (2, 2) whole, (1, 2) half
    zoning = {"canopy_target_pct": 60, "open_land": {"path": str(polygons(tmp_path / "open.gpkg", [(20, 0, 30, 15)]))}}
    table = tmp_path / "coefficients.csv"
    table.write_text("type,name,c_above,c_below\nVEG,vegetation,30,8\n", encoding="utf-8")
    gpkg, summary_out = zoning_outputs(tmp_path, "canopy_gap")
    summary = run_zoning_canopy_gap(zones, coverage, tmp_path / "grid.json", r["classes"], r["canopy"], r["carbon"],
                                    table, gpkg, summary_out, levels=["city", "block"], zoning=zoning, greenspace=None)
    # no green-space types: the VEG row of the run's table, 30 + 8 t C/ha
    assert summary["tree_density_t_ha"] == 38.0 and str(table) in summary["density_source"]
    w, e = (io.read_vector(gpkg[1]).set_index("zone_id").loc[z] for z in ("W", "E"))
    # W: canopy 1 and 0 on its 2 observed pixels → 50 %; gap 10 % of 0.03 ha = 0.003 ha, 0.003 × 38 t C
    assert w["canopy_cover_pct"] == pytest.approx(50.0) and w["planting_needed_ha"] == pytest.approx(0.003)
    assert w["plantable_vegetated_ha"] == pytest.approx(0.01) and w["carbon_added_t"] == pytest.approx(0.114)
    # E: canopy (0.5 + 0 + 0 + 0 + 1 + 0) / 6 = 25 %; gap 35 % of 0.06 ha = 0.021 ha; plantable vegetated
    # (0.5 + 1) × 0.01 ha, open (0.5 + 1) × 0.01 ha
    assert e["canopy_cover_pct"] == pytest.approx(25.0) and e["planting_ha"] == pytest.approx(0.021)
    assert e["plantable_vegetated_ha"] == pytest.approx(0.015) and e["plantable_open_ha"] == pytest.approx(0.015)
    assert e["gap_status"] == "closable"
    city = summary["levels"]["city"]
    # the city: 2.5 / 8 = 31.25 % canopy; gap 28.75 % of 0.09 ha
    assert city["totals"]["planting_needed_ha"] == pytest.approx(0.025875)
    assert summary["levels"]["block"]["totals"]["planting_ha"] == pytest.approx(0.024)
    assert summary["not_computed"] == [] and json.loads(summary_out.read_text())["open_land"] == zoning["open_land"]["path"]


# ----------------------------------------------------------------------------- trend

def test_run_trend_cuts_the_year_major_lists_and_gives_the_stock_slope(tmp_path: Path) -> None:
    from scipy.stats import theilslopes

    g = grid(1, 2)
    zones, coverage = two_levels(tmp_path, g, 10.0)  # W: pixel (0, 0); E: pixel (0, 1)
    fractions = io.write_raster(tmp_path / "fractions.tif", np.array([[[1.0, 0.5]]], np.float32), g, band_names=["G1"])
    years, ndvi = [2021, 2022, 2024], [0.3, 0.4, 0.6]  # carbon 10 + 100 NDVI: 40, 50, 70 t C/ha of G1 land
    models = {"types": {"G1": {"form": "linear", "predictors": ["ndvi"], "params": {"a": 10.0, "b": 100.0},
                               "bootstrap": [[10.0, 100.0]] * 20, "x_range": [0.0, 1.0]}}, "seed": 0}
    predictors, ndvi_se, models_json, tables = [], [], [], []
    stocks = {"C": [0.6, 0.75, 1.05], "W": [0.4, 0.5, 0.7], "E": [0.2, 0.25, 0.35]}  # t: density × fraction × 0.01 ha
    for k, (year, v) in enumerate(zip(years, ndvi, strict=True)):
        # year-major, as Snakemake's expand(year=..., predictor=["ndvi", "fvc"]): the fvc rasters would give
        # another slope if the list were cut the wrong way
        predictors += [io.write_raster(tmp_path / f"ndvi_{year}.tif", np.full((1, 2), v, np.float32), g),
                       io.write_raster(tmp_path / f"fvc_{year}.tif", np.full((1, 2), 0.9 - v, np.float32), g)]
        ndvi_se.append(io.write_raster(tmp_path / f"se_{year}.tif", np.zeros((1, 2), np.float32), g))
        models_json.append(io.write_json(tmp_path / f"models_{year}.json", {**models, "year": year}))
        for level, ids in (("city", ["C"]), ("block", ["W", "E"])):
            tables.append(tmp_path / f"{level}_{year}.parquet")
            io.read_vector(zones[0 if level == "city" else 1]).assign(
                carbon_t=[stocks[i][k] for i in ids], area_ha=[0.02] if level == "city" else [0.01, 0.01]
            ).to_parquet(tables[-1])
    out = tmp_path / "trend"
    record = run_trend(years, zones, coverage, tmp_path / "grid.json", [fractions] * 3, predictors, ndvi_se, models_json,
                       tables, out / "trend.tif", [out / "city.gpkg", out / "block.gpkg"], out / "trend.json",
                       predictor_names=["ndvi", "fvc"], levels=["city", "block"], types=["G1"], seed=1,
                       uncertainty={**NO_NOISE, "residual": {"enabled": False, "year_correlation": 0.5}})
    bands = io.read_raster(out / "trend.tif")
    # (70 − 40) / 3 yr = 10 t C/ha/yr on the whole G1 pixel, 5 on the half; every pair of years the same slope
    np.testing.assert_allclose(bands[0], [[10.0, 5.0]], rtol=1e-5)
    np.testing.assert_allclose(bands[1:3], [[[10.0, 5.0]], [[10.0, 5.0]]], rtol=1e-5)  # identical draws, no scatter
    assert record["years"] == years and record["draws"] == 20
    block = io.read_vector(out / "block.gpkg").set_index("zone_id")
    for zone, t in (("W", block.loc["W"]), ("E", block.loc["E"])):
        assert t["trend_t_yr"] == pytest.approx(theilslopes(stocks[zone], years).slope, rel=1e-5)
        assert [t[f"carbon_t_{y}"] for y in years] == pytest.approx(stocks[zone])  # each year's own table
    city = io.read_vector(out / "city.gpkg").iloc[0]
    assert city["trend_t_yr"] == pytest.approx(0.15, rel=1e-5) and city["carbon_t_2024"] == pytest.approx(1.05)


def test_run_trend_refuses_a_list_that_does_not_split_into_the_years() -> None:
    from greensink.trend import per_year

    assert per_year(["a21", "b21", "a22", "b22"], 2, "x") == [["a21", "b21"], ["a22", "b22"]]
    with pytest.raises(ValueError, match="5 paths do not split into 2 years"):
        per_year(list("abcde"), 2, "trend predictors")


# ----------------------------------------------------------------------------- scenarios

def test_run_demo_scenario_layers_picks_the_parcels_by_their_green_share(tmp_path: Path) -> None:
    # four 10 m × 10 m parcels in a row; green space: half of P2, all of P3, a quarter of P4 → 0, 50, 100, 25 %
    parcels = write_level(tmp_path / "parcel.gpkg", ["P1", "P2", "P3", "P4"],
                          [(0, 0, 10, 10), (10, 0, 20, 10), (20, 0, 30, 10), (30, 0, 40, 10)])
    districts = write_level(tmp_path / "district.gpkg", ["D2", "D1"], [(20, 0, 40, 10), (0, 0, 20, 10)])
    green = polygons(tmp_path / "greenspace.gpkg", [(10, 0, 15, 10), (20, 0, 30, 10), (30, 0, 32.5, 10)])
    names = ["new_park", "construction", "street_trees"]
    out = [tmp_path / "scenarios" / f"{n}.gpkg" for n in names]
    run_demo_scenario_layers(parcels, districts, green, out, names=names)
    ids = {n: io.read_vector(p)["zone_id"].tolist() for n, p in zip(names, out, strict=True)}
    # the least green parcel becomes a park, the greenest is built on, the first district (D1, by id) gets trees
    assert ids == {"new_park": ["P1"], "construction": ["P3"], "street_trees": ["P1", "P2"]}
    assert io.read_vector(out[2])["green_share_pct"].tolist() == pytest.approx([0.0, 50.0])
    assert not out[0].with_suffix(".csv").exists()  # layers only, no CSV twin


def test_run_scenario_carbon_is_the_carbon_stage_on_the_scenario_layers(tmp_path: Path) -> None:
    models, predictors, fractions = carbon_inputs(tmp_path)
    se = io.write_raster(tmp_path / "ndvi_se.tif", np.zeros((2, 3), np.float32), grid(2, 3))
    out = tmp_path / "scenarios" / "p"
    stats = run_scenario_carbon(models, predictors, fractions, se, out / "carbon.tif", out / "carbon.json",
                                types=["G1"], year=2024, seed=1, uncertainty=NO_NOISE, compress="deflate")
    # as rule carbon: fraction × (10 + 100 NDVI), the unobserved typed pixel NaN; 1.325 t over 5 typed pixels
    np.testing.assert_allclose(io.read_raster(out / "carbon.tif")[0], [[60.0, 15.0, 0.0], [NAN, 40.0, 17.5]], rtol=1e-6)
    assert stats["total_t"] == pytest.approx(1.325, rel=1e-6) and stats["typed_pixels"] == 5
    assert json.loads((out / "carbon.json").read_text())["total_t"] == pytest.approx(1.325, rel=1e-6)


def test_run_scenario_inputs_and_zones_add_the_planned_park(tmp_path: Path) -> None:
    from greensink.model import fallback_record

    g = grid(4, 4)  # x 0-40 m, y 0-40 m
    zones, coverage = two_levels(tmp_path, g, 20.0)  # W: columns 0-1, E: columns 2-3
    left = np.zeros((4, 4), np.float32)
    left[:, :2] = 1  # G1 tree land on the left half (NDVI 0.6), bare untyped land on the right (NDVI 0.1)
    values = {"ndvi": np.where(left > 0, 0.6, 0.1), "fvc": np.where(left > 0, 0.6875, 0.0625), "canopy": left,
              "height": np.full((4, 4), NAN), "vegetation": left, "classes": 3 * left, "fractions": left[None]}
    baseline = {k: io.write_raster(tmp_path / f"{k}.tif", np.asarray(v, np.float32), g) for k, v in values.items()}
    baseline["greenspace"] = typed_polygons(tmp_path / "gs.gpkg", [("G1", (0, 0, 20, 40))])
    stats = io.write_json(tmp_path / "vegetation.json", {"ndvi_soil": 0.05, "ndvi_full": 0.85})
    models = io.write_json(tmp_path / "models.json", {"types": {"G1": fallback_record(
        "G1", 20.0, 20.0, 0, "test", n_bootstrap=40, seed=1).to_json()}, "seed": 0})
    park = polygons(tmp_path / "park.gpkg", [(20, 20, 35, 40)])  # bare land, 300 m² = 0.03 ha
    entry = {"name": "park", "changes": [{"kind": "greenspace", "path": str(park), "type": "G1",
                                          "state": {"density_t_ha": 30}}]}
    s = tmp_path / "scenarios" / "park"
    keys = ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "changes")
    layers = {k: s / f"{k}.tif" for k in keys} | {"greenspace": s / "greenspace.gpkg"}
    record = run_scenario_inputs([park], tmp_path / "grid.json", baseline, stats, models, layers, s / "models.json",
                                 s / "inputs.json", scenario=entry, years=[2024], types=["G1"], type_column="type",
                                 typed_land=True, vegetation={"ndvi_vegetation": 0.2, "ndvi_shrub": 0.35, "ndvi_tree": 0.5})
    assert record["inputs"][0]["sha256"] == hashlib.sha256(park.read_bytes()).hexdigest()
    # the changed share: pixels (0, 2), (1, 2) whole, (0, 3), (1, 3) half (x 30-35 m of 30-40 m)
    np.testing.assert_allclose(io.read_raster(layers["changes"], bands=1), [[0, 0, 1, 0.5], [0, 0, 1, 0.5], [0] * 4, [0] * 4])
    baseline_tables = []
    for level, carbon in (("city", [1.6]), ("block", [1.6, 0.0])):  # 0.08 ha of G1 at 20 t C/ha, all in W
        baseline_tables.append(tmp_path / f"base_{level}.gpkg")
        io.read_vector(zones[0 if level == "city" else 1]).assign(
            carbon_t=carbon, green_coverage_pct=[50.0] if level == "city" else [100.0, 0.0]).to_file(baseline_tables[-1])
    out = s / "zones"
    tables, totals = run_scenario_zones(
        zones, coverage, tmp_path / "grid.json", baseline, baseline["ndvi"], models, baseline_tables, layers,
        s / "models.json", tmp_path / "no_targets.yaml", [out / "city.gpkg", out / "block.gpkg"], s / "totals.csv",
        scenario=entry, years=[2024], levels=["city", "block"], types=["G1"],
        greenspace={"type_column": "type", "park_types": ["G1"], "types": {"G1": "park"}},
        park_service=[{"min_area_m2": 5000, "radius_m": 500}], interval_pct=90.0, min_observed_pct=50.0,
        uncertainty=NO_NOISE, seed=1)
    block = io.read_vector(out / "block.gpkg").set_index("zone_id")
    # 0.03 ha of bare land at 30 t C/ha: + 0.9 t C in E, nothing in W (paired draws: exactly 0)
    assert block.loc["W", "difference_t"] == pytest.approx(0.0, abs=1e-9)
    assert block.loc["E", "difference_t"] == pytest.approx(0.9, rel=1e-6)
    assert block.loc["E", "carbon_t"] == pytest.approx(0.9, rel=1e-6) and block.loc["E", "changed_area_ha"] == pytest.approx(0.03)
    city = io.read_csv(s / "totals.csv").set_index("level").loc["city"]
    assert city["difference_t"] == pytest.approx(0.9, rel=1e-6) and city["carbon_t"] == pytest.approx(2.5, rel=1e-6)
    assert (out / "block.parquet").is_file() and list(tables) == ["city", "block"] and len(totals) == 2


def test_run_scenario_summary_gives_each_scenario_its_own_tables(tmp_path: Path) -> None:
    def table(name: str, level: str, ratios: list[float]) -> Path:
        ids = ["C"] if level == "city" else ["A", "B"]
        path = tmp_path / f"{name}_{level}.gpkg"
        gpd.GeoDataFrame({"zone_id": ids, "name": ids, "green_space_ratio_pct": ratios},
                         geometry=[box(X0, Y0, X0 + 10, Y0 + 10)] * len(ids), crs=CRS).to_file(path)
        return path

    # scenario-major, level inner (as expand(scenario=..., level=...)); p meets the 30 % block target in 2 blocks,
    # q in 1, the baseline in 1
    tables = [table("p", "city", [60.0]), table("p", "block", [100.0, 37.5]),
              table("q", "city", [50.0]), table("q", "block", [100.0, 10.0])]
    baseline = [table("base", "city", [50.0]), table("base", "block", [100.0, 0.0])]
    totals = []
    for name, diff in (("p", 0.9), ("q", 0.1)):
        totals.append(tmp_path / f"{name}_totals.csv")
        pd.DataFrame([{"scenario": name, "label": name, "baseline_year": 2024, "level": level, "zones": n,
                       "carbon_t": 2.5, "difference_t": diff, "difference_t_lo": diff, "difference_t_hi": diff}
                      for level, n in (("city", 1), ("block", 2))]).to_csv(totals[-1], index=False)
    goals = tmp_path / "targets.yaml"
    goals.write_text("targets:\n  - {level: block, indicator: green_space_ratio_pct, op: '>=', value: 30}\n",
                     encoding="utf-8")
    summary = run_scenario_summary(tables, totals, baseline, goals, tmp_path / "summary.csv", scenarios=["p", "q"],
                                   baseline_years=[2024], levels=["city", "block"])
    rows = summary[summary["indicator"] == "green_space_ratio_pct"].set_index("scenario")
    assert (rows.loc["p", "met"], rows.loc["q", "met"]) == (2, 1)
    assert (rows.loc["p", "met_baseline"], rows.loc["p", "met_change"], rows.loc["q", "met_change"]) == (1, 1, 0)
    assert len(summary) == 4  # per scenario: the city without targets (one row) and the block target
    assert len(io.read_csv(tmp_path / "summary.csv")) == 4


# ----------------------------------------------------------------------------- every script a thin adapter

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
# scripts still doing more than calling their runner, with why (none left: a script added that is not one goes here,
# a strict xfail, until its run_<rule> holds the logic)
NOT_YET_THIN: dict[str, str] = {}


def adapter_problems(path: Path) -> list[str]:
    """What makes a rule script more than an adapter: no or several ``run_`` functions imported, or one not
    named after the rule, called other than once; a loop, branch or arithmetic at module level (the
    ``if __name__ == "__main__":`` guard of a script whose runner spawns processes excepted)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = list(tree.body)
    problems = []
    for node in list(body):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and isinstance(node.test.left, ast.Name)
                and node.test.left.id == "__name__"):
            body.remove(node)
            body += node.body
    runners = [a.name for n in body if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("greensink")
               for a in n.names if a.name.startswith("run_")]
    if runners != [f"run_{path.stem}"]:
        problems.append(f"imports runner(s) {runners}, not one run_{path.stem}")
    calls = [c for n in body for c in ast.walk(n) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
             and c.func.id.startswith("run_")]
    if len(calls) != 1:
        problems.append(f"calls a runner {len(calls)} times")
    for n in body:
        if isinstance(n, ast.For | ast.While | ast.If | ast.With | ast.Try | ast.FunctionDef | ast.ClassDef):
            problems.append(f"line {n.lineno}: {type(n).__name__.lower()} at module level")
        problems += [f"line {b.lineno}: arithmetic" for b in ast.walk(n) if isinstance(b, ast.BinOp)][:1]
    return problems


def test_the_adapter_check_by_hand(tmp_path: Path) -> None:
    thin = tmp_path / "carbon.py"
    thin.write_text('"""Rule carbon."""\nfrom greensink.carbon import run_carbon\nrun_carbon(snakemake.input[0])\n')
    assert adapter_problems(thin) == []
    thick = tmp_path / "aggregate.py"
    thick.write_text('"""Rule aggregate."""\nfrom greensink import io\nfor p in snakemake.input:\n    io.read(p) / 1e4\n')
    assert adapter_problems(thick) == ["imports runner(s) [], not one run_aggregate", "calls a runner 0 times",
                                       "line 3: for at module level", "line 4: arithmetic"]


@pytest.mark.parametrize("script", [
    pytest.param(p.stem, marks=pytest.mark.xfail(strict=True, reason=f"not yet a thin adapter: {NOT_YET_THIN[p.stem]} "
                                                 "(once it is, take it out of NOT_YET_THIN)"))
    if p.stem in NOT_YET_THIN else p.stem for p in sorted(SCRIPTS.glob("*.py"))])
def test_every_rule_script_is_a_thin_adapter(script: str) -> None:
    problems = adapter_problems(SCRIPTS / f"{script}.py")
    assert not problems, (f"workflow/scripts/{script}.py is more than an adapter (move the logic into run_{script} in "
                          f"the package, docs/architecture.md): {problems}")
