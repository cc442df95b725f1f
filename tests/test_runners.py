"""The rule runners (``run_<rule>``, what each script in workflow/scripts calls) called directly, without
Snakemake, on small hand-built files in tmp_path; every expected value is worked out by hand in the comments.

Grids: 10 m pixels (0.01 ha) in EPSG:32651, from (X0, Y0) up and to the east.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box

from greensink import io
from greensink.carbon import run_carbon
from greensink.grid import Grid
from greensink.provenance import run_provenance
from greensink.styles import run_qgis_styles
from greensink.uncertainty import run_ndvi_se
from greensink.vegetation import run_vegetation
from greensink.zones import run_prepare_zones, run_zone_coverage

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
