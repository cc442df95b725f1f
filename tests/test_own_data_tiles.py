"""Own data, tiled: the own city of tests/test_own_data.py (tests/own_city.py: Landsat-like files off the 30 m lattice
in UTM 50N, zones in EPSG:4326, a Web-Mercator land-cover raster with a class table, no plots) run untiled and with
``tiles.size_px`` from the project root with --configfile, in the checkout copy where the demo and the user's first
run have already run (test_own_data's ``checkout``).

Both configs are the user's (test_own_data.MY_CONFIG) with three years (2024 copies 2023's scenes, the NIR of 2023
and 2024 lowered along a gradient so the carbon changes at every typed pixel; in 2024 a cloud in both scenes leaves
the south-east never seen: the whole last tile and parts of three others), the user's own coefficient table with
a density curve of NDVI for both types (so carbon follows the imagery: a change pair, the period pair and a trend that
are not all zero) and one planning scenario (a new park drawn in EPSG:4326 across the tile edges). The tiled run has
size_px 64 on the 81 × 81 grid: 2 × 2 tiles, the last row and column 17 px (uneven), with districts, blocks, both
land-cover classes and the planned park crossing the tile edges (asserted). A second tiled run in 80-px tiles has a
last column of tiles 1 px wide holding no typed land (rule trend's gather refused such a tile before 10b40f8).

Tiled must equal untiled: every raster of results/ (values, NaN masks, CRS = the config's, transform, band names),
every zone table (rtol 1e-9; NaN where untiled is NaN: empty is not zero), the zone draws and the JSON summaries; and
the tiled run must really have run per tile (its dry run's job table and the tiles' files).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from shapely.geometry import box

import own_city
from checkout import sh
from conftest import shared_dir
from greensink.grid import Grid
from test_own_data import MY_CONFIG, checkout  # noqa: F401 (checkout: the fixture, built once per session)
from test_tiles import job_counts

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.large]  # two whole runs of the own city

SIZE_PX = 64  # the schema's smallest tile: 2 × 2 tiles on the own city's 81-px grid, the last ones 17 px
YEARS = [2022, 2023, 2024]
DATA = "owntiles"  # the user's folder for this pair of runs (mydata stays test_own_data's)
# the planned park, UTM metres: across both tile edges of the grid (asserted in test_the_tiles_cut_the_city)
PLAN = (own_city.X0 + 1_880, own_city.Y1 - 2_560, own_city.X0 + 2_460, own_city.Y1 - 2_030)
CLOUD_ROWS, CLOUD_COLS = slice(70, None), slice(60, None)  # imagery pixels under 2024's cloud (the grid starts at 10, 9)
COEFFICIENTS = """\
type,name,c_above,c_below,c_soil,c_dead,uncertainty_pct,model_form,model_a,model_b,source
G1,park,22.0,5.0,60.0,2.0,40,linear,-4.0,45.0,test curve
EG,regional,32.0,7.0,80.0,3.0,40,linear,2.0,30.0,test curve
"""


def _config(size_px: int | None) -> str:
    cfg = yaml.safe_load(MY_CONFIG)
    cfg["years"] = YEARS
    cfg["imagery"]["files"][0].update({band: cfg["imagery"]["files"][0][band].replace("mydata/", f"{DATA}/")
                                       for band in ("red", "nir", "quality")})
    cfg["zones"] = [dict(z, path=z["path"].replace("mydata/", f"{DATA}/")) for z in cfg["zones"]]
    cfg["greenspace"].update(raster=f"{DATA}/landcover.tif", class_table=f"{DATA}/classes.csv")
    cfg["coefficients"] = f"{DATA}/coefficients.csv"
    cfg["scenarios"] = [{"name": "new_park", "label": "new park", "changes": [
        {"kind": "greenspace", "path": f"{DATA}/plan.gpkg", "type": "G1", "state": {"ndvi": 0.75}}]}]
    if size_px:
        cfg["tiles"] = {"size_px": size_px}
    return yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)


def _lower_nir(path: Path, factor: np.ndarray) -> None:
    """Scale the reflectance of a band file in place (DN = (reflectance - offset) / scale, as own_city writes it)."""
    with rasterio.open(path, "r+") as dst:
        refl = dst.read(1).astype(np.float64) * own_city.SCALE + own_city.OFFSET
        dst.write(own_city.dn(refl * factor), 1)


def write_data(folder: Path) -> None:
    """The own city, three years, the coefficient table and the planned park under ``folder``."""
    import geopandas as gpd

    own_city.write_city(folder)
    img = folder / "imagery"
    cols, rows = np.meshgrid(np.arange(own_city.SIZE), np.arange(own_city.SIZE))
    for old in own_city.DATES[2023]:
        new = old.replace("2023", "2024", 1)
        for band in ("SR_B4", "SR_B5", "QA_PIXEL"):
            src = img / f"LC08_L2SP_118038_{old}_20240101_02_T1_{band}.TIF"
            (img / f"LC08_L2SP_118038_{new}_20250101_02_T1_{band}.TIF").write_bytes(src.read_bytes())
        # 2023: NIR down to 80 % from west to east; 2024: a further 10 % from north to south
        _lower_nir(img / f"LC08_L2SP_118038_{old}_20240101_02_T1_SR_B5.TIF", 1 - 0.2 * cols / own_city.SIZE)
        _lower_nir(img / f"LC08_L2SP_118038_{new}_20250101_02_T1_SR_B5.TIF",
                   (1 - 0.2 * cols / own_city.SIZE) * (1 - 0.1 * rows / own_city.SIZE))
        # 2024: cloud over the south-east in both scenes: never seen, the whole last tile and parts of three others
        with rasterio.open(img / f"LC08_L2SP_118038_{new}_20250101_02_T1_QA_PIXEL.TIF", "r+") as dst:
            qa = dst.read(1)
            qa[CLOUD_ROWS, CLOUD_COLS] = own_city.CLOUD
            dst.write(qa, 1)
    (folder / "coefficients.csv").write_text(COEFFICIENTS, encoding="utf-8")
    gpd.GeoDataFrame({"name": ["new park"]}, geometry=[box(*PLAN)], crs=own_city.CRS).to_crs(
        "EPSG:4326").to_file(folder / "plan.gpkg")


def build(root: Path) -> None:
    """In the checkout ``root``: the data, then the untiled and the tiled project (dry run kept), as a user runs them."""
    write_data(root / DATA)
    for name, size_px in (("own_untiled", None), ("own_tiled", SIZE_PX), ("own_tiled80", 80)):
        (root / f"{name}.yaml").write_text(_config(size_px), encoding="utf-8")
        sh(root, ".venv/bin/greensink", "validate", f"{name}.yaml")
    sh(root, ".venv/bin/snakemake", "--cores", "2", "--configfile", "own_untiled.yaml", timeout=1800)
    # the grid first, so that the dry run knows the tiles; the dry run's job table is kept for the tests
    sh(root, ".venv/bin/snakemake", "--cores", "2", "--configfile", "own_tiled.yaml", "--", "results/zones/grid.json")
    dry = sh(root, ".venv/bin/snakemake", "-n", "--configfile", "own_tiled.yaml")
    (root / "projects" / "own_tiled" / "dry_run.txt").write_text(dry.stdout + dry.stderr, encoding="utf-8")
    sh(root, ".venv/bin/snakemake", "--cores", "2", "--configfile", "own_tiled.yaml", timeout=1800)
    # 80-px tiles: the last column of tiles 1 px wide, of built-up land only (no typed pixel) inside a district
    sh(root, ".venv/bin/snakemake", "--cores", "2", "--configfile", "own_tiled80.yaml", timeout=1800)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, checkout):  # noqa: F811 (test_own_data's fixture, imported above)
    """The untiled and the tiled project folders, built once per session under a file lock (conftest.shared_dir)."""
    shared_dir(tmp_path_factory, "own_data_tiles", lambda _: build(checkout))
    return checkout / "projects" / "own_untiled", checkout / "projects" / "own_tiled"


@pytest.fixture(params=["own_tiled", "own_tiled80"])
def pair(request, runs):
    """The untiled project and one tiled project: 64-px tiles, or 80-px tiles whose last column is 1 px wide."""
    return runs[0], runs[0].parent / request.param


def _products(project: Path, suffix: str) -> list[Path]:
    """Every file of results/ with ``suffix`` except the tiles' intermediate files, relative to the project."""
    return sorted(p.relative_to(project) for p in (project / "results").rglob(f"*{suffix}") if "tiles" not in p.parts)


def _same_numbers(got: np.ndarray, ref: np.ndarray, what: str, atol: float = 0.0) -> float:
    """NaN exactly where the reference is NaN, the rest within rtol 1e-9; the largest relative difference."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}: NaN not where the untiled is NaN")
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=atol, err_msg=what)
    ok = np.isfinite(ref) & (np.abs(ref) > 1e-6)
    return float(np.max(np.abs(got[ok] / ref[ok] - 1), initial=0.0))


def test_the_tiles_cut_the_city(runs):
    _, tiled = runs
    grid = Grid.read(tiled / "results/zones/grid.json")
    assert grid.shape == (80, 81)
    assert [t.shape for t in grid.tiles(SIZE_PX)] == [(64, 64), (64, 17), (16, 64), (16, 17)]  # uneven last tiles
    # both land-cover classes hold land on both sides of the tiles' column edge in one row, the parks on both sides
    # of the row edge too
    with rasterio.open(tiled / "results/types/fractions.tif") as src:
        fractions = {name: src.read(k + 1) for k, name in enumerate(src.descriptions)}
    for name in ("G1", "EG"):
        f = np.nan_to_num(fractions[name])
        assert ((f[:, SIZE_PX - 1] > 0.5) & (f[:, SIZE_PX] > 0.5)).any(), name
    f = np.nan_to_num(fractions["G1"])
    assert ((f[SIZE_PX - 1, :] > 0.5) & (f[SIZE_PX, :] > 0.5)).any()
    # the 80-px run: its last column of tiles is 1 px wide and holds no typed land (a tile that touches zones only)
    assert [t.shape for t in grid.tiles(80)] == [(80, 80), (80, 1)]
    assert not any(np.nan_to_num(f[:, 80]).any() for f in fractions.values())
    # zones across the edges: blocks and districts with area in two tiles (the grid's coordinates of the edges)
    import geopandas as gpd

    t = grid.transform
    x_edge, y_edge = t.c + SIZE_PX * t.a, t.f + SIZE_PX * t.e
    for level, n in (("district", 2), ("block", 3)):
        zones = gpd.read_file(tiled / f"results/zones/{level}.gpkg").to_crs(own_city.CRS)
        across = [(g.bounds[0] < x_edge < g.bounds[2]) or (g.bounds[1] < y_edge < g.bounds[3]) for g in zones.geometry]
        assert sum(across) >= n, level
    # 2024's cloud: the whole last tile never seen (NaN), and a block's carbon empty in both runs, not 0
    with rasterio.open(tiled / "results/2024/ndvi.tif") as src:
        ndvi = src.read(1)
    assert np.isnan(ndvi[SIZE_PX:, SIZE_PX:]).all() and np.isnan(ndvi).sum() == 600 and np.isfinite(ndvi[0]).all()
    for run in runs:
        block = pd.read_parquet(run / "results/2024/zones/block.parquet").set_index("zone_id")
        assert np.isnan(block.loc["E3", "carbon_t"]) and block.loc["E3", "carbon_t_filled"] > 0
    # the planned park burned into all four tiles
    with rasterio.open(tiled / "results/scenarios/new_park/changes.tif") as src:
        changed = np.nan_to_num(src.read(1)) > 0
    assert all(changed[window].any() for window in (np.s_[:SIZE_PX, :SIZE_PX], np.s_[:SIZE_PX, SIZE_PX:],
                                                    np.s_[SIZE_PX:, :SIZE_PX], np.s_[SIZE_PX:, SIZE_PX:]))


def test_the_tiled_run_ran_per_tile(runs):
    untiled, tiled = runs
    counts = job_counts((tiled / "dry_run.txt").read_text(encoding="utf-8"))
    ids = [t.id for t in Grid.read(tiled / "results/zones/grid.json").tiles(SIZE_PX)]
    assert ids == ["r000c000", "r000c001", "r001c000", "r001c001"]
    for rule in ("composite_tile", "vegetation_tile", "ndvi_se_tile", "carbon_tile", "fill_tile", "aggregate_tile"):
        assert counts[rule] == len(YEARS) * len(ids), rule
    assert counts["change_tile"] == 3 * len(ids)  # 2022_2023, 2023_2024 and the period 2022_2024
    assert counts["zone_coverage_tile"] == 2 * len(ids)  # district, block
    for rule in ("trend_tile", "scenario_inputs_tile", "scenario_carbon_tile", "scenario_zones_tile"):
        assert counts[rule] == len(ids), rule
    for rule in ("composite", "vegetation", "ndvi_se", "carbon", "fill", "scenario_inputs", "scenario_carbon"):
        assert rule not in counts, rule  # the untiled rules do not run in a tiled run
    for tile in ids:
        for year in YEARS:
            for name in ("composite", "ndvi", "ndvi_se", "carbon"):
                assert (tiled / f"results/{year}/tiles/{name}_{tile}.tif").is_file(), (year, name, tile)
            assert (tiled / f"results/{year}/tiles/aggregate_{tile}.npz").is_file()
            assert (tiled / f"logs/carbon/{year}/{tile}.log").is_file()
        for pair in ("2022_2023", "2023_2024", "2022_2024"):
            assert (tiled / f"results/change/{pair}/tiles/parts_{tile}.npz").is_file()
        assert (tiled / f"results/change/trend/tiles/parts_{tile}.npz").is_file()
        assert (tiled / f"results/scenarios/new_park/tiles/carbon_{tile}.tif").is_file()
    assert not list((untiled / "results").rglob("tiles"))  # and the untiled run did not


def test_every_raster_equals_the_untiled_run(pair):
    untiled, tiled = pair
    rasters = _products(untiled, ".tif")
    assert len(rasters) > 40 and _products(tiled, ".tif") == rasters
    for name in rasters:
        with rasterio.open(untiled / name) as ref, rasterio.open(tiled / name) as got:
            assert ref.crs.to_epsg() == 32650 and got.crs == ref.crs, name  # the config's CRS
            assert got.transform == ref.transform and got.shape == ref.shape and got.count == ref.count, name
            assert got.dtypes == ref.dtypes and got.descriptions == ref.descriptions, name
            assert (got.nodata == ref.nodata) or (math.isnan(got.nodata) and math.isnan(ref.nodata)), name
            x, y = ref.read(), got.read()
        np.testing.assert_array_equal(y, x, err_msg=str(name))  # value for value, NaN where NaN
    # the comparison is not empty: carbon, a sink, a trend and the park's change where the city is green
    for name, band in (("results/2023/carbon.tif", 1), ("results/change/2022_2023/sink.tif", 1),
                       ("results/change/trend/trend.tif", 1), ("results/scenarios/new_park/carbon.tif", 1)):
        with rasterio.open(tiled / name) as src:
            values = src.read(band)
        assert np.nanmax(np.abs(values)) > 0.1, name


def _compare_frames(ref: pd.DataFrame, got: pd.DataFrame, what: str) -> float:
    assert list(got.columns) == list(ref.columns) and len(got) == len(ref), what
    worst = 0.0
    for col in ref.columns:
        if col == "geometry":
            assert got[col].tolist() == ref[col].tolist(), what
        elif pd.api.types.is_numeric_dtype(ref[col]) and not pd.api.types.is_bool_dtype(ref[col]):
            # sums in another order; an absolute 1e-9 for differences of equal areas or stocks
            worst = max(worst, _same_numbers(got[col], ref[col], f"{what} {col}", atol=1e-9))
        else:
            assert got[col].tolist() == ref[col].tolist(), f"{what} {col}"
    return worst


def test_every_zone_table_equals_the_untiled_run(pair):
    import geopandas as gpd

    from greensink.aggregate import ZoneDraws

    untiled, tiled = pair
    worst, n = 0.0, 0
    for suffix, read in ((".parquet", pd.read_parquet), (".csv", pd.read_csv), (".gpkg", gpd.read_file)):
        tables = _products(untiled, suffix)
        assert _products(tiled, suffix) == tables, suffix
        for name in tables:
            worst = max(worst, _compare_frames(read(untiled / name), read(tiled / name), str(name)))
            n += 1
    for name in _products(untiled, ".draws.npz"):
        a, b = ZoneDraws.read(untiled / name), ZoneDraws.read(tiled / name)
        assert (b.zone_ids.tolist(), b.n_draws, b.seed) == (a.zone_ids.tolist(), a.n_draws, a.seed), name
        _same_numbers(b.estimate, a.estimate, str(name))
        _same_numbers(b.draws, a.draws, str(name), atol=1e-9 * np.nanmax(np.abs(a.draws)))
    print(f"own city, tiled vs untiled: {n} tables, largest relative difference {worst:.1e}")
    assert n > 100
    # the comparison is not empty: every year's districts hold carbon with an interval, the blocks a sink
    for year in YEARS:
        district = pd.read_parquet(tiled / f"results/{year}/zones/district.parquet")
        assert (district["carbon_t"] > 0).all() and (district["carbon_t_hi"] > district["carbon_t_lo"]).all()


def _same_json(got, ref, what: str) -> None:
    """Equal structure, strings and integers; floats within rtol 1e-9 (None where None: empty is not zero)."""
    if isinstance(ref, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(ref), what
        for key in ref:
            _same_json(got[key], ref[key], f"{what}/{key}")
    elif isinstance(ref, list):
        assert isinstance(got, list) and len(got) == len(ref), what
        for k, (g, r) in enumerate(zip(got, ref, strict=True)):
            _same_json(g, r, f"{what}[{k}]")
    elif isinstance(ref, float) and not isinstance(ref, bool):
        assert isinstance(got, (int, float)), what
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-12, nan_ok=True), what
    else:
        assert got == ref, what


def test_the_summaries_equal_the_untiled_run(pair):
    untiled, tiled = pair
    names = [p for p in _products(untiled, ".json") if p.name not in ("provenance.json", "grid.json", "scenes.json")]
    assert _products(tiled, ".json") == _products(untiled, ".json")
    for name in names:
        ref = json.loads((untiled / name).read_text(encoding="utf-8"))
        got = json.loads((tiled / name).read_text(encoding="utf-8"))
        _same_json(got, ref, str(name))
