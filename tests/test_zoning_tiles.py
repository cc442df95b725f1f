"""The zoning rules tile by tile (tiles.size_px): each job streams over the tiles with their tile coverage
(greensink.tiling.coverage_pieces) and gives the untiled job's tables, summaries and rasters.

The untiled run reads the whole-grid coverage (greensink.coverage.coverage_matrix), the tiled one the tiles'
(tile_coverage_matrix, computed on each tile alone); user layers are covered on each tile's sub-grid. The
comparison is between two independent computations of the same sums; a small case is also checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Polygon, box

from greensink import io
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.tiling import PieceWriter, coverage_pieces
from greensink.zones import run_zone_coverage, run_zone_coverage_tile
from greensink.zoning.run import run_zoning_canopy_gap, run_zoning_importance, run_zoning_potential

CRS = "EPSG:32651"
X0, Y0 = 500_000.0, 3_500_000.0
NAN = float("nan")
LEVELS = ["city", "block"]


def grid(rows: int, cols: int) -> Grid:
    return Grid(crs=CRS, transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0 + 10.0 * rows), width=cols, height=rows)


def level_files(tmp_path: Path, g: Grid, levels: dict[str, list[tuple[str, str, object]]],
                size_px: int) -> tuple[list[Path], list[Path], list[Path]]:
    """The zone layers, their whole-grid coverage and their tiles' coverage (level-major, tiles in mosaic order)."""
    io.write_json(tmp_path / "grid.json", g.to_dict())
    zones, whole, tiles = [], [], []
    for level, rows in levels.items():
        path = tmp_path / f"{level}.gpkg"
        gpd.GeoDataFrame({"zone_id": [r[0] for r in rows], "parent_id": [r[1] for r in rows], "level": level,
                          "name": [f"zone {r[0]}" for r in rows]}, geometry=[r[2] for r in rows],
                         crs=CRS).to_file(path, driver="GPKG")
        zones.append(path)
        whole.append(tmp_path / f"{level}_coverage.npz")
        run_zone_coverage(path, tmp_path / "grid.json", whole[-1])
        for t in g.tiles(size_px):
            tiles.append(tmp_path / "tiles" / f"{level}_coverage_{t.id}.npz")
            run_zone_coverage_tile(path, tmp_path / "grid.json", tiles[-1], tile_id=t.id, size_px=size_px)
    return zones, whole, tiles


def shifted(x: float, y: float) -> tuple[float, float]:
    return X0 + x, Y0 + y


def city_and_blocks(rows: int, cols: int) -> dict[str, list]:
    """A city with a slanted edge and six blocks cut at x, y not on pixel edges (parent C)."""
    w, h = 10.0 * cols, 10.0 * rows
    city = Polygon([shifted(0, 0), shifted(w, 0), shifted(w, h - 23.7), shifted(0.0, h)])
    xs, ys = [0.0, 83.3, 171.7, w], [0.0, 151.15, h]
    blocks = [(f"B{i}{j}", "C", box(*shifted(xs[i], ys[j]), *shifted(xs[i + 1], ys[j + 1])).intersection(city))
              for i in range(3) for j in range(2)]
    return {"city": [("C", "", city)], "block": blocks}


def polygons(path: Path, geoms: list) -> Path:
    gpd.GeoDataFrame(geometry=geoms, crs=CRS).to_file(path)
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    """A 37 × 29 grid in tiles of 8 px (5 × 4 tiles, the last row and column cut), random year rasters with
    unobserved pixels, polygon layers and a 5 m raster mask with no-data patches, a 20 m user raster factor."""
    tmp = tmp_path_factory.mktemp("zoning_tiles")
    rows, cols, size = 37, 29, 8
    g = grid(rows, cols)
    zones, whole, tiles = level_files(tmp, g, city_and_blocks(rows, cols), size)
    rng = np.random.default_rng(14)
    unobserved = rng.random((rows, cols)) < 0.08
    classes = rng.integers(0, 4, (rows, cols)).astype(np.float32)
    classes[unobserved] = NAN
    canopy = np.where(classes == 3, rng.uniform(0.3, 1, (rows, cols)), rng.uniform(0, 0.2, (rows, cols)))
    canopy = np.where(unobserved, NAN, canopy).astype(np.float32)
    carbon = rng.uniform(0, 60, (rows, cols)).astype(np.float32)
    carbon[unobserved | (rng.random((rows, cols)) < 0.03)] = NAN
    frac = rng.dirichlet([1, 1, 1], rows * cols).T[:2].reshape(2, rows, cols).astype(np.float32)
    r = {name: io.write_raster(tmp / f"{name}.tif", arr, g, band_names=[name]) for name, arr in {
        "vegetation_class": classes, "canopy": canopy, "carbon": carbon, "height": np.full((rows, cols), NAN, np.float32),
        "ndvi": rng.uniform(0, 0.9, (rows, cols)).astype(np.float32),
        "fvc": rng.uniform(0, 1, (rows, cols)).astype(np.float32)}.items()}
    r["fractions"] = io.write_raster(tmp / "fractions.tif", frac, g, band_names=["G1", "G2"])
    # a 5 m red-line mask (class 1) with a no-data patch, and a 20 m user factor offset by 5 m from the grid
    fine = Grid(crs=CRS, transform=Affine(5.0, 0.0, X0, 0.0, -5.0, Y0 + 10.0 * rows), width=2 * cols, height=2 * rows)
    mask = (rng.random(fine.shape) < 0.3).astype(np.uint8)
    mask[10:17, 31:40] = 255
    io.write_raster(tmp / "red_line.tif", mask, fine, nodata=255)
    coarse = Grid(crs=CRS, transform=Affine(20.0, 0.0, X0 - 5.0, 0.0, -20.0, Y0 + 10.0 * rows + 5.0),
                  width=cols // 2 + 2, height=rows // 2 + 2)
    io.write_raster(tmp / "user.tif", rng.uniform(0, 4, coarse.shape).astype(np.float32), coarse)
    w, h = 10.0 * cols, 10.0 * rows
    zoning = {
        "canopy_target_pct": {"city": 35, "block": 40}, "potential_density_t_ha": 45.0, "tree_density_t_ha": 80.0,
        "open_land": {"path": str(polygons(tmp / "open.gpkg", [box(*shifted(12.5, 3.3), *shifted(w - 40.1, 97.9))]))},
        "construction": {"path": str(polygons(tmp / "construction.gpkg", [
            box(*shifted(0, 0), *shifted(55.0, h)), box(*shifted(40.0, 200.0), *shifted(w, 260.0))]))},
        "cropland": {"path": str(polygons(tmp / "cropland.gpkg", [box(*shifted(181.1, 17.2), *shifted(w, 143.4))]))},
        "red_line": {"raster": str(tmp / "red_line.tif"), "classes": [1]},
        "importance": {"class_breaks": [1.8, 2.4], "factors": [
            {"name": "veg", "weight": 1, "layer": "vegetation_class", "classes": {"0": 1, "1": 1, "2": 2, "3": 3}},
            {"name": "carbon", "weight": 2, "layer": "carbon", "breaks": [10, 25], "scores": [1, 2, 3]},
            {"name": "u", "weight": 1, "path": str(tmp / "user.tif"), "breaks": [1.5, 2.5], "scores": [1, 2, 3]},
            {"name": "gs", "weight": 1, "layer": "greenspace_type", "classes": {"G1": 3, "G2": 2, "none": 1}},
            {"name": "tall", "weight": 10, "layer": "height", "breaks": [5], "scores": [1, 3]}]}}
    (tmp / "coefficients.csv").write_text("type,name,c_above,c_below\nVEG,vegetation,30,8\n", encoding="utf-8")
    io.write_json(tmp / "zoning.json", zoning)  # the config section, for a run outside the test
    return {"tmp": tmp, "grid": g, "size": size, "zones": zones, "whole": whole, "tiles": tiles, "rasters": r,
            "zoning": zoning}


def outputs(base: Path, product: str) -> tuple[list[Path], Path]:
    return [base / f"{product}_{level}.gpkg" for level in LEVELS], base / f"{product}.json"


def run_all(case: dict, tiled: bool) -> Path:
    base = case["tmp"] / ("tiled" if tiled else "whole")
    cov, size = (case["tiles"], case["size"]) if tiled else (case["whole"], None)
    r, zoning, grid_json = case["rasters"], case["zoning"], case["tmp"] / "grid.json"
    gpkg, summary = outputs(base, "canopy_gap")
    run_zoning_canopy_gap(case["zones"], cov, grid_json, r["vegetation_class"], r["canopy"], r["carbon"],
                          case["tmp"] / "coefficients.csv", gpkg, summary, levels=LEVELS, zoning=zoning, greenspace=None,
                          size_px=size)
    gpkg, summary = outputs(base, "importance")
    layers = {k: r[k] for k in ("vegetation_class", "canopy", "height", "ndvi", "fvc", "carbon")}
    run_zoning_importance(case["zones"], cov, grid_json, layers, r["fractions"], base / "importance.tif",
                          base / "importance.qml", gpkg, summary, levels=LEVELS, types=["G1", "G2"], zoning=zoning,
                          typed_land=True, chm=False, compress="deflate", size_px=size)
    gpkg, summary = outputs(base, "potential")
    run_zoning_potential(case["zones"], cov, grid_json, r["carbon"], case["tmp"] / "coefficients.csv",
                         base / "potential.tif", base / "potential.qml", gpkg, summary, levels=LEVELS, zoning=zoning,
                         greenspace=None, compress="deflate", size_px=size)
    return base


@pytest.fixture(scope="module")
def runs(case: dict) -> tuple[Path, Path]:
    return run_all(case, tiled=False), run_all(case, tiled=True)


def assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        if c == "geometry":
            continue
        if pd.api.types.is_numeric_dtype(a[c]):
            np.testing.assert_allclose(b[c].to_numpy(float), a[c].to_numpy(float), rtol=1e-9, atol=1e-12, err_msg=c)
        else:
            assert a[c].tolist() == b[c].tolist(), c


def assert_json_close(a: object, b: object, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_json_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_json_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


@pytest.mark.parametrize("product", ["canopy_gap", "importance", "potential"])
def test_tiled_zoning_tables_and_summaries_equal_the_untiled(runs, product: str) -> None:
    whole, tiled = runs
    for level in LEVELS:
        a, b = (pd.read_csv(base / f"{product}_{level}.csv") for base in (whole, tiled))
        assert a.notna().to_numpy().any()  # something was computed
        assert_tables_equal(a, b)
    assert_json_close(json.loads((whole / f"{product}.json").read_text()),
                      json.loads((tiled / f"{product}.json").read_text()))


def test_the_untiled_tables_use_every_layer(runs) -> None:
    """The case exercises what the tiles must reproduce: unknown open land nowhere, a red line with no data
    somewhere (NaN, never 0), all three classes and unclassified land."""
    whole, _ = runs
    pot = pd.read_csv(whole / "potential_block.csv").set_index("zone_id")
    assert pot["red_line_ha"].isna().any() and pot["red_line_ha"].notna().any()
    assert (pot["construction_ha"] > 0).any() and (pot["construction_ha"] == 0).any()  # none here: 0 ha, known
    assert (pot["cropland_ha"] > 0).any()
    imp = json.loads((whole / "importance.json").read_text())
    assert all(imp["pixels"][c] > 0 for c in ("1", "2", "3", "255"))
    gap = pd.read_csv(whole / "canopy_gap_block.csv")
    assert (gap["plantable_open_ha"] > 0).any()


@pytest.mark.parametrize("name", ["importance", "potential"])
def test_tiled_zoning_rasters_equal_the_untiled(runs, name: str) -> None:
    whole, tiled = runs
    with rasterio.open(whole / f"{name}.tif") as a, rasterio.open(tiled / f"{name}.tif") as b:
        assert (a.dtypes, a.nodata, a.transform, a.descriptions) == (b.dtypes, b.nodata, b.transform, b.descriptions)
        assert a.tags() == b.tags()
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_potential_by_hand_on_four_uneven_tiles(tmp_path: Path) -> None:
    """3 × 3 grid in tiles of 2 px (tiles of 2 × 2, 2 × 1, 1 × 2, 1 × 1 pixels); blocks W (x 0-10 m) and E."""
    g = grid(3, 3)
    levels = {"city": [("C", "", box(X0, Y0, X0 + 30, Y0 + 30))],
              "block": [("W", "C", box(X0, Y0, X0 + 10, Y0 + 30)), ("E", "C", box(X0 + 10, Y0, X0 + 30, Y0 + 30))]}
    zones, _, tiles = level_files(tmp_path, g, levels, 2)
    carbon = io.write_raster(tmp_path / "carbon.tif", np.array([[0, 0, 0], [0, 20, 60], [0, 30, 10]], np.float32), g)
    # construction x 0-15 m; red line the top row's x 10-30 m; no cropland (as test_runners' untiled case)
    zoning = {"potential_density_t_ha": 50.0,
              "construction": {"path": str(polygons(tmp_path / "c.gpkg", [box(X0, Y0, X0 + 15, Y0 + 30)]))},
              "red_line": {"path": str(polygons(tmp_path / "r.gpkg", [box(X0 + 10, Y0 + 20, X0 + 30, Y0 + 30)]))}}
    (tmp_path / "coefficients.csv").write_text("type,name,c_above,c_below\nVEG,vegetation,30,8\n", encoding="utf-8")
    gpkg, summary_out = outputs(tmp_path / "out", "potential")
    summary = run_zoning_potential(zones, tiles, tmp_path / "grid.json", carbon, tmp_path / "coefficients.csv",
                                   tmp_path / "p.tif", tmp_path / "p.qml", gpkg, summary_out, levels=LEVELS,
                                   zoning=zoning, greenspace=None, compress="deflate", size_px=2)
    with rasterio.open(tmp_path / "p.tif") as src:  # potential share [[0, 0, 0], [0, .5, 1], [0, .5, 1]] ≥ 0.5
        np.testing.assert_array_equal(src.read(1), [[0, 0, 0], [0, 1, 1], [0, 1, 1]])
    city = io.read_vector(gpkg[0]).iloc[0]
    assert city["construction_ha"] == pytest.approx(0.045) and city["red_line_ha"] == pytest.approx(0.02)
    assert np.isnan(city["cropland_ha"])
    assert city["potential_ha"] == pytest.approx(0.03) and city["excluded_ha"] == pytest.approx(0.06)
    # brought to 50 t C/ha: 0.5 × 30 + 1 × 0 (60 is above) + 0.5 × 20 + 1 × 40 = 65 t C/ha × 0.01 ha
    assert city["potential_added_t"] == pytest.approx(0.65, rel=1e-6)
    assert summary["levels"]["block"]["totals"]["potential_ha"] == pytest.approx(0.03)


def test_coverage_pieces_refuse_a_tile_matrix_of_another_tiling(case: dict) -> None:
    g = case["grid"]
    wrong = list(case["tiles"])
    wrong[1] = wrong[0]  # tile r000c000's matrix (8 × 8) where r000c001's is expected: same width, accepted
    assert sum(1 for _ in coverage_pieces(g, LEVELS, case["whole"], wrong, case["size"])) == 20
    wrong[3] = wrong[0]  # r000c003 is 8 × 5 (the cut last column): 64 columns refused, naming the file
    with pytest.raises(InputDataError, match="r000c003.*40"):
        list(coverage_pieces(g, LEVELS, case["whole"], wrong, case["size"]))
    with pytest.raises(InputDataError, match="need 40 tile coverage files; got 39"):
        list(coverage_pieces(g, LEVELS, case["whole"], case["tiles"][:-1], case["size"]))


def test_piece_writer_gathers_a_row_of_tiles_into_a_strip(tmp_path: Path) -> None:
    g = grid(5, 7)
    values = np.arange(35, dtype=np.uint8).reshape(5, 7)
    with io.raster_writer(tmp_path / "w.tif", g, dtype="uint8", nodata=255) as writer:
        out = PieceWriter(writer, g, 1, "uint8", 255)
        for t in g.tiles(3):
            out.put(t, values[t.rows, t.cols])
    with rasterio.open(tmp_path / "w.tif") as src:
        np.testing.assert_array_equal(src.read(1), values)
