"""Tests of the built-in demo city (greensink.demo) on a small city (2 km, 8 blocks, 72 parcels)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from hypothesis import given
from hypothesis import strategies as st

from greensink.config import validate
from greensink.demo import (
    CURVES,
    FRACTION_BANDS,
    LEVELS,
    TYPES,
    FineTruth,
    block_mean,
    carbon_curve,
    footprint_carbon,
    generate_demo,
    make_fine_truth,
    make_greenspace,
    make_scenes,
    make_zones,
    phenology_factors,
    reflectance,
)
from greensink.demo.layout import make_lattice
from greensink.demo.params import MIN_PARCEL_M, ORIGIN, parcel_size_problem
from greensink.errors import ConfigError
from greensink.grid import Grid

SMALL = {"extent_m": 2000.0, "blocks": (4, 2), "parcels_per_block": (3, 3), "scenes_per_year": 4}
RES = 10.0
YEARS = (2023, 2024)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    out = {}
    for key, seed in (("a", 20231), ("b", 20231), ("c", 7)):
        path = tmp_path_factory.mktemp(f"demo_{key}")
        out[key] = (path, generate_demo(path, seed=seed, **SMALL))
    return out


@pytest.fixture(scope="module")
def demo(runs) -> tuple[Path, dict]:
    return runs["a"]


def read(path: Path, band: int = 1) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(band)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files(runs):
    (a, _), (b, _) = runs["a"], runs["b"]
    texts = sorted(p.relative_to(a) for p in a.rglob("*") if p.suffix in (".csv", ".json"))
    assert len(texts) == 19  # demo.json, curves.json, 4 table twins, scenes.csv, 4 zone twins, 8 truth tables
    for rel in texts:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    rasters = sorted(p.relative_to(a) for p in a.rglob("*.tif"))
    assert len(rasters) == 2 * (4 + 1) * 3 + 1 + 2 * 2  # scenes x bands, fractions, ndvi + carbon per year
    for rel in rasters:
        with rasterio.open(a / rel) as ra, rasterio.open(b / rel) as rb:
            np.testing.assert_array_equal(ra.read(), rb.read(), err_msg=str(rel))
            assert ra.tags() == rb.tags()


def test_other_seed_differs(runs):
    (a, _), (c, _) = runs["a"], runs["c"]
    assert (a / "demo.json").read_bytes() != (c / "demo.json").read_bytes()
    assert (a / "truth/zones_2023_parcel.csv").read_bytes() != (
        c / "truth/zones_2023_parcel.csv"
    ).read_bytes()
    assert not np.array_equal(read(a / "truth/ndvi_2023.tif"), read(c / "truth/ndvi_2023.tif"))


# ----------------------------------------------------------------------------- zones


def test_default_zone_counts_without_writing():
    zones = make_zones()
    assert {lvl: len(zones[lvl]) for lvl in LEVELS} == {"city": 1, "district": 4, "block": 40, "parcel": 1000}
    assert zones["parcel"]["zone_id"].is_unique
    assert zones["parcel"]["zone_id"].iloc[0] == "D1-B01-P01"
    assert sorted(zones["district"]["zone_id"]) == ["D1", "D2", "D3", "D4"]


def test_zone_files_and_counts(demo):
    path, manifest = demo
    # 4 x 2 blocks of 3 x 3 parcels: 1 city, 4 districts, 8 blocks, 72 parcels
    expected = {"city": 1, "district": 4, "block": 4 * 2, "parcel": 4 * 2 * 3 * 3}
    for level, n in expected.items():
        gdf = gpd.read_file(path / "zones" / f"{level}.gpkg", layer=level)
        assert len(gdf) == n == manifest["counts"][level]
        assert gdf["zone_id"].is_unique
        assert gdf.geometry.is_valid.all()
        assert (level == "city") or "parent_id" in gdf.columns
    names = set(gpd.read_file(path / "zones/district.gpkg")["name"])
    assert "南港区 <Nangang & Co>" in names


@pytest.mark.parametrize(
    ("child", "parent"), [("parcel", "block"), ("block", "district"), ("district", "city")]
)
def test_zones_nest_exactly(demo, child, parent):
    path, _ = demo
    kids = gpd.read_file(path / "zones" / f"{child}.gpkg")
    parents = gpd.read_file(path / "zones" / f"{parent}.gpkg").set_index("zone_id")
    assert set(kids["parent_id"]) == set(parents.index)
    for pid, group in kids.groupby("parent_id"):
        union = shapely.union_all(group.geometry.to_numpy())
        assert shapely.symmetric_difference(union, parents.geometry[pid]).area < 1e-6, pid
    # tiles: no overlap between siblings
    assert kids.geometry.area.sum() == pytest.approx(parents.geometry.area.sum(), rel=1e-12)


def test_no_zone_edge_follows_pixel_edges(demo):
    path, _ = demo
    parcels = gpd.read_file(path / "zones/parcel.gpkg")
    xy = shapely.get_coordinates(parcels.geometry.to_numpy())
    on_edge = (np.abs(xy / RES - np.round(xy / RES)) < 1e-6).any(axis=1)
    assert on_edge.mean() < 0.01
    rings = [np.asarray(g.exterior.coords) for g in parcels.geometry]
    d = np.concatenate([np.diff(r, axis=0) for r in rings])
    assert (np.abs(d) < 1e-6).any(axis=1).mean() < 0.01  # no horizontal or vertical edges


# ----------------------------------------------------------------------------- green space and water


def test_greenspace_types_disjoint_and_dry(demo):
    path, manifest = demo
    green = gpd.read_file(path / "greenspace.gpkg", layer="greenspace")
    water = gpd.read_file(path / "water.gpkg", layer="water")
    assert set(green["type"]) == set(TYPES)
    assert all(green.geometry[green["type"] == t].area.sum() > 1000 for t in TYPES)
    assert green.geometry.is_valid.all() and green["green_id"].is_unique
    union = shapely.union_all(green.geometry.to_numpy())
    assert green.geometry.area.sum() - union.area < 1.0  # m²: polygons only touch
    assert union.intersection(shapely.union_all(water.geometry.to_numpy())).area < 1e-3
    city = gpd.read_file(path / "zones/city.gpkg").geometry.iloc[0]
    assert union.difference(city).area < 1e-3
    parks = green[green["type"] == "G1"].geometry
    assert any(len(p.interiors) > 0 for p in parks)
    assert 0 < manifest["green_space_ratio_pct"] < 60


def test_truth_fractions_match_polygon_areas(demo):
    path, _ = demo
    green = gpd.read_file(path / "greenspace.gpkg")
    water = gpd.read_file(path / "water.gpkg")
    with rasterio.open(path / "truth/fractions.tif") as src:
        assert src.descriptions == FRACTION_BANDS
        frac = src.read()
        pixel_m2 = src.res[0] * src.res[1]
    assert frac.min() >= 0 and frac.sum(axis=0).max() <= 1 + 1e-6
    for i, band in enumerate(FRACTION_BANDS):
        polys = water if band == "water" else green[green["type"] == band]
        # supersampled 10x: raster area within 0.5 % of the polygon area
        assert frac[i].sum(dtype=np.float64) * pixel_m2 == pytest.approx(
            polys.geometry.area.sum(), rel=0.005
        ), band


# ----------------------------------------------------------------------------- truth carbon


def fine_truth(manifest: dict) -> tuple[Grid, FineTruth]:
    """The fine truth of a written demo, made again from its manifest's parameters (same seed)."""
    p = manifest["parameters"]
    zones = make_zones(
        extent_m=p["extent_m"], blocks=tuple(p["blocks"]), parcels_per_block=tuple(p["parcels_per_block"]),
        crs=p["crs"], seed=p["seed"],
    )
    grid = Grid.from_dict(manifest["grid"])
    land = make_greenspace(zones, resolution_m=p["resolution_m"], seed=p["seed"])
    fine = make_fine_truth(land, grid, manifest["disturbance"]["green_id"], p["years"], p["seed"], p["truth_cell_m"])
    return grid, fine


@pytest.fixture(scope="module")
def fine(demo) -> tuple[Grid, FineTruth]:
    return fine_truth(demo[1])


def test_truth_carbon_is_the_area_mean_of_the_fine_cells(demo, fine):
    path, _ = demo
    grid, ft = fine
    assert ft.factor == 5 and ft.label.shape == (grid.height * 5, grid.width * 5)  # 2 m cells in 10 m pixels
    for year in YEARS:
        c = ft.carbon[year]
        # hand check on one vegetated G1 cell and one path cell of G1: the type's curve of the cell's NDVI
        g1 = ft.label == 1 + TYPES.index("G1")
        r, col = np.argwhere(g1 & ft.vegetated)[0]
        x = float(ft.ndvi[year][r, col])
        assert 0.3 < x < 0.92 and c[r, col] == pytest.approx(60 * x**1.8, rel=1e-6)
        r, col = np.argwhere(g1 & ~ft.vegetated)[0]
        x = float(ft.ndvi[year][r, col])
        assert x < 0.2 and c[r, col] == pytest.approx(60 * max(x, 0) ** 1.8, rel=1e-6, abs=1e-12)
        assert (c[ft.label == 0] == 0).all() and (c[ft.label == 6] == 0).all()  # built-up land, water
        # the pixel's truth is the mean of its 25 cells (written as float32)
        density = read(path / f"truth/carbon_{year}.tif")
        i, j = 7, 11
        assert density[i, j] == pytest.approx(c[5 * i : 5 * i + 5, 5 * j : 5 * j + 5].mean(), rel=1e-6, abs=1e-9)
        np.testing.assert_allclose(density, c.reshape(grid.height, 5, grid.width, 5).mean(axis=(1, 3)), rtol=1e-6, atol=1e-6)
    curves = json.loads((path / "truth/curves.json").read_text(encoding="utf-8"))
    assert curves["curves"]["G1"] == CURVES["G1"] and curves["cell_m"] == 2.0


def test_mixed_pixels_break_the_per_pixel_model(demo, fine):
    """The point of the fine truth: on the pixels the pipeline sees, carbon is not the type's curve
    of the pixel NDVI, even on pixels wholly inside one type (paths, crowns and grass mix there)."""
    path, _ = demo
    grid, ft = fine
    frac = read(path / "truth/fractions.tif", band=1 + TYPES.index("G1")).astype(np.float64)
    ndvi = read(path / "truth/ndvi_2023.tif").astype(np.float64)
    density = read(path / "truth/carbon_2023.tif").astype(np.float64)
    pure = frac == 1.0
    assert pure.sum() > 100
    rel = density[pure] / carbon_curve("G1", ndvi[pure]) - 1
    assert np.percentile(np.abs(rel), 90) > 0.05  # pixels off their curve by > 5 %
    # vegetation share within pure G1 pixels: mixed pixels are the rule, not the exception
    veg = ft.vegetated.reshape(grid.height, 5, grid.width, 5).mean(axis=(1, 3))[pure]
    assert 0.2 < ((veg > 0) & (veg < 1)).mean() and 0.75 < veg.mean() < 0.95  # G1: 85 % vegetated cells
    # the pixel NDVI is that of the cells' mean reflectance, not the cells' mean NDVI
    red, nir = reflectance(ft.ndvi[2023].astype(np.float64))
    red, nir = block_mean(red, 5), block_mean(nir, 5)
    np.testing.assert_allclose(ndvi, (nir - red) / (nir + red), atol=1e-6)


def test_zone_truth_sums(demo):
    path, manifest = demo
    with rasterio.open(path / "truth/carbon_2023.tif") as src:
        raster_t = src.read(1).astype(np.float64).sum() * src.res[0] * src.res[1] / 10_000
    for year in YEARS:
        tables = {lvl: pd.read_csv(path / f"truth/zones_{year}_{lvl}.csv") for lvl in LEVELS}
        city = tables["city"]["carbon_t"].iloc[0]
        assert city == pytest.approx(manifest["truth_carbon_t"][str(year)], rel=1e-9)
        for level in ("district", "block", "parcel"):
            t = tables[level]
            assert list(t.columns) == ["zone_id", "carbon_t"]
            assert list(t["zone_id"]) == sorted(t["zone_id"])
            assert t["carbon_t"].sum() == pytest.approx(city, rel=1e-6)
    city_2023 = pd.read_csv(path / "truth/zones_2023_city.csv")["carbon_t"].iloc[0]
    assert city_2023 == pytest.approx(raster_t, rel=1e-3)


def test_disturbed_polygon_loses_carbon(demo):
    path, manifest = demo
    dist = manifest["disturbance"]
    green = gpd.read_file(path / "greenspace.gpkg")
    row = green[green["green_id"] == dist["green_id"]].iloc[0]
    assert row["type"] == "XG" and row["name"] == dist["name"]
    with rasterio.open(path / "truth/carbon_2023.tif") as src:
        inside = rasterio.features.geometry_mask([row.geometry], src.shape, src.transform, invert=True)
    c0, c1 = read(path / "truth/carbon_2023.tif"), read(path / "truth/carbon_2024.tif")
    assert c1[inside].sum() < 0.5 * c0[inside].sum()
    assert c1[~inside].sum() > c0[~inside].sum()  # everything else grows


# ----------------------------------------------------------------------------- imagery


def test_scene_table_and_out_of_season(demo):
    path, manifest = demo
    table = pd.read_csv(path / "imagery/scenes.csv")
    assert list(table.columns) == [
        "scene_id",
        "datetime",
        "sensor",
        "processing_baseline",
        "boa_add_offset",
        "red",
        "nir",
        "scl",
        "cloud_pct",
    ]
    assert list(table["datetime"]) == sorted(table["datetime"])
    assert len(table) == len(YEARS) * (SMALL["scenes_per_year"] + 1)
    for f in pd.concat([table["red"], table["nir"], table["scl"]]):
        assert (path / "imagery" / f).exists()
    months = pd.to_datetime(table["datetime"]).dt.month
    assert (months == 1).sum() == len(YEARS)  # one winter scene per year, outside 04-01..10-31
    assert months[months != 1].between(4, 10).all()
    assert [s["in_season"] for s in manifest["scenes"]] == list(months != 1)


def test_dn_offset_recovers_reflectance(demo, fine):
    path, manifest = demo
    _, ft = fine
    scene = next(s for s in manifest["scenes"] if s["in_season"] and s["datetime"].startswith("2023"))
    with rasterio.open(path / scene["red"]) as src:
        dn = src.read(1).astype(np.float64)
        assert src.tags()["BOA_ADD_OFFSET"] == "-1000" and src.tags()["PROCESSING_BASELINE"] == "04.00"
        assert src.nodata == 0 and src.dtypes[0] == "uint16"
    scl = read(path / scene["scl"]).repeat(2, 0).repeat(2, 1)[: dn.shape[0], : dn.shape[1]]
    clear = np.isin(scl, (4, 5, 6))
    # each 2 m cell's red at this date's phenology, averaged over the pixel's 25 cells
    cell = ft.ndvi[2023].astype(np.float64)
    cell_d = np.where(cell > 0.2, np.minimum(cell * scene["ndvi_factor"], 0.92), cell)
    expected_red = block_mean(0.08 - 0.05 * np.maximum(cell_d, 0), 5)
    resid = ((dn - 1000) / 10_000 - expected_red)[clear]
    assert abs(resid.mean()) < 3e-4
    assert 0.0015 < resid.std() < 0.0025  # sensor noise sd 0.002 (+ rounding to 1e-4)


def test_scl_grid_and_clear_observations(demo):
    path, manifest = demo
    grid = Grid.from_dict(manifest["grid"])
    for year in YEARS:
        scenes = [s for s in manifest["scenes"] if s["in_season"] and s["year"] == year]
        assert len(scenes) == SMALL["scenes_per_year"]
        clear = 0
        for s in scenes:
            with rasterio.open(path / s["scl"]) as src:
                assert src.res == (2 * RES, 2 * RES)
                assert (src.transform.c, src.transform.f) == (grid.transform.c, grid.transform.f)
                assert src.width * 2 >= grid.width and src.height * 2 >= grid.height
                assert src.nodata == 0 and src.tags()["SENSOR"] == "sentinel2-l2a"
                scl = src.read(1)
            clear = clear + np.isin(scl, (4, 5, 6))
        assert clear.min() >= 2, year


def test_baseline_before_2022_01_25_has_no_offset():
    grid = Grid.from_bounds((0.0, 0.0, 1000.0, 1000.0), 10.0, "EPSG:32651")
    ndvi = {2022: np.full(grid.shape, 0.5)}
    scenes = make_scenes(grid, ndvi, np.zeros(grid.shape), scenes_per_year=3, seed=1)
    winter, summer = scenes[0], scenes[1]
    assert (winter.baseline, winter.offset, winter.in_season) == ("03.01", 0, False)
    assert (summer.baseline, summer.offset, summer.in_season) == ("04.00", -1000, True)
    clear = summer.scl.repeat(2, 0).repeat(2, 1) == 4
    red = (summer.red[clear].astype(float) - 1000) / 10_000
    assert red.mean() == pytest.approx(0.08 - 0.05 * 0.5 * summer.ndvi_factor, abs=5e-4)
    # the winter scene (no offset) damps vegetation: red higher than in summer
    w_clear = np.isin(winter.scl.repeat(2, 0).repeat(2, 1), (4, 5))
    assert winter.red[w_clear].astype(float).mean() / 10_000 == pytest.approx(
        0.08 - 0.05 * 0.5 * 0.55, abs=5e-4
    )


def test_phenology_median_is_one():
    for n in range(2, 9):
        p = phenology_factors(n)
        assert np.median(p) == pytest.approx(1.0)
        assert np.argmax(p) in (n // 2, (n - 1) // 2)


# ----------------------------------------------------------------------------- plots and population


def test_plots(demo):
    path, manifest = demo
    plots = gpd.read_file(path / "plots.gpkg", layer="plots")
    green = gpd.read_file(path / "greenspace.gpkg")
    by_year = {y: plots[plots["year"] == y].set_index("plot_id").sort_index() for y in YEARS}
    a, b = by_year[YEARS[0]], by_year[YEARS[1]]
    assert list(a.index) == list(b.index)  # remeasurement: same ids and places every year
    assert (a["type"] == b["type"]).all() and a.geometry.geom_equals(b.geometry).all()
    counts = a["type"].value_counts()
    assert all(counts[t] >= 20 for t in TYPES)
    assert (plots["carbon_t_ha"] >= 0).all()
    for t in TYPES:
        union = shapely.union_all(green.geometry[green["type"] == t].to_numpy())
        pts = a[a["type"] == t].geometry
        assert shapely.contains_xy(union, pts.x.to_numpy(), pts.y.to_numpy()).all(), t
    disturbed = green[green["green_id"] == manifest["disturbance"]["green_id"]].geometry.iloc[0]
    hit = a.geometry.within(disturbed)
    assert b["carbon_t_ha"][~hit].mean() > a["carbon_t_ha"][~hit].mean()
    assert (b["carbon_t_ha"][hit] < a["carbon_t_ha"][hit]).all()
    assert manifest["plots"]["count"]["G1"][str(YEARS[0])] == counts["G1"]


def test_plots_are_measured_on_their_footprint(demo, fine):
    """A plot's carbon is the mean of the 2 m cells within 11.28 m of its point (about 100 cells), times
    its 10 % measurement error: the ratio to the footprint truth has mean ~1 and sd ~0.10."""
    path, manifest = demo
    _, ft = fine
    assert manifest["plots"]["radius_m"] == 11.28
    plots = gpd.read_file(path / "plots.gpkg", layer="plots")
    green = gpd.read_file(path / "greenspace.gpkg")
    ratios = []
    for year in YEARS:
        p = plots[plots["year"] == year]
        truth = np.array([footprint_carbon(ft, year, pt.x, pt.y, 11.28) for pt in p.geometry])
        ok = truth > 1.0
        ratios.append(p["carbon_t_ha"].to_numpy()[ok] / truth[ok])
    r = np.concatenate(ratios)
    assert len(r) > 300
    assert abs(r.mean() - 1) < 0.02 and 0.08 < r.std() < 0.12
    # a footprint is wholly inside its type's polygons, and not on pixel centres
    first = plots[plots["year"] == YEARS[0]]
    for t in TYPES:
        union = shapely.union_all(green.geometry[green["type"] == t].to_numpy())
        circles = first[first["type"] == t].geometry.buffer(11.28 - 1e-6)
        assert circles.within(union).all(), t
    frac_x = (first.geometry.x.to_numpy() / RES) % 1
    assert np.abs(frac_x - 0.5).mean() > 0.1  # centres spread over the pixel, not at its centre
    # footprint truth by hand: cells whose centres lie within the circle
    pt = first.geometry.iloc[0]
    t_ = ft.transform
    rows, cols = np.indices(ft.label.shape)
    d = np.hypot(t_.c + (cols + 0.5) * t_.a - pt.x, t_.f + (rows + 0.5) * t_.e - pt.y)
    inside = d <= 11.28
    assert 90 <= inside.sum() <= 110  # pi 11.28² / 4 m² = 100 cells
    assert footprint_carbon(ft, YEARS[0], pt.x, pt.y, 11.28) == pytest.approx(ft.carbon[YEARS[0]][inside].mean())


def test_population(demo):
    path, manifest = demo
    pop = gpd.read_file(path / "population.gpkg", layer="population")
    assert len(pop) == manifest["counts"]["block"]
    assert (pop["population"] == 0).sum() == 1
    assert pop["population"][pop["population"] > 0].between(2000, 12000).all()


def test_manifest(demo):
    path, manifest = demo
    assert manifest == json.loads((path / "demo.json").read_text(encoding="utf-8"))
    for key in (
        "parameters",
        "grid",
        "scenes",
        "counts",
        "area_ha",
        "plots",
        "truth_carbon_t",
        "disturbance",
    ):
        assert key in manifest
    assert manifest["parameters"]["blocks"] == [4, 2]
    assert manifest["grid"]["resolution_m"] == RES
    assert set(manifest["area_ha"]) >= set(TYPES) | {"water", "city", "green"}
    assert str(path) not in (path / "demo.json").read_text(encoding="utf-8")  # relocatable


# ----------------------------------------------------------------------------- small units


@given(st.sampled_from(TYPES), st.floats(-1.0, 1.0, allow_nan=False))
def test_carbon_curve_is_non_negative_and_zero_at_non_positive_ndvi(type_code, x):
    y = float(carbon_curve(type_code, x))
    assert y >= 0
    if x <= 0:
        assert y == 0


def test_carbon_curve_values():
    assert float(carbon_curve("XG", 0.5)) == pytest.approx(-6 + 40 * 0.5)
    assert float(carbon_curve("EG", 0.7)) == pytest.approx(45 + 30 * np.log(0.7))
    assert float(carbon_curve("G2", 0.4)) == pytest.approx(2.0 * np.exp(3.5 * 0.4))
    assert np.isnan(carbon_curve("G1", np.nan))


def test_bad_parameters_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="blocks must be two counts >= 2"):
        generate_demo(tmp_path, blocks=(1, 5))
    with pytest.raises(ConfigError, match="years must be increasing"):
        generate_demo(tmp_path, years=(2024, 2023))
    with pytest.raises(ConfigError, match="truth_cell_m must divide the resolution"):
        generate_demo(tmp_path, truth_cell_m=3.0)


# --- parcels of any size the config accepts (issue 14) ------------------------------------------------------------


@pytest.mark.slow  # about 4 s of CPU, 20 s wall on the shared machine
def test_small_parcels_make_a_whole_demo(tmp_path):
    # 12.5 m parcels (80 × 80): too small to hold attached green space (XG, inset 10 m from the edge); the
    # generator used to stop with an OverflowError here. XG now goes into 60 m cells spanning several parcels.
    manifest = generate_demo(tmp_path, years=(2023,), extent_m=1000.0, blocks=(2, 2), parcels_per_block=(40, 40),
                             scenes_per_year=2)
    parcels = gpd.read_file(tmp_path / "zones" / "parcel.gpkg")
    city = gpd.read_file(tmp_path / "zones" / "city.gpkg").geometry.iloc[0]
    assert len(parcels) == 6400 and parcels.is_valid.all()
    assert parcels.area.sum() == pytest.approx(city.area, rel=1e-9)  # they still tile the city
    green = gpd.read_file(tmp_path / "greenspace.gpkg")
    xg = green[green["type"] == "XG"]
    assert len(xg) > 10 and xg["name"].str.contains("cell").all()
    assert xg.area.max() > parcels.area.max()  # bigger than any parcel: it spans parcels
    assert shapely.union_all(green.geometry.values).area == pytest.approx(green.area.sum(), rel=1e-9)  # types disjoint
    assert shapely.within(green.geometry.values, city).all()
    assert manifest["counts"]["parcel"] == 6400 and manifest["disturbance"]["type"] == "XG"
    assert all(manifest["plots"]["count"][t]["2023"] > 0 for t in TYPES)


@pytest.mark.parametrize("spacing", [1.0, 2.5, 7.0, 19.0])
def test_lattice_parcels_stay_valid_down_to_the_smallest_size(spacing):
    # before: edge nodes moved up to 4 m across the edge at any spacing, so parcels under about 5 m folded over
    n = 60
    nodes = make_lattice(n * spacing, (2, 2), (n // 2, n // 2), np.random.default_rng(3))
    quads = np.stack([nodes[:-1, :-1], nodes[:-1, 1:], nodes[1:, 1:], nodes[1:, :-1], nodes[:-1, :-1]], axis=2)
    polys = shapely.polygons(quads.reshape(-1, 5, 2))
    assert shapely.is_valid(polys).all()
    ring = np.concatenate([nodes[0, :], nodes[1:, -1], nodes[-1, -2::-1], nodes[-2:0:-1, 0]])
    assert shapely.area(polys).sum() == pytest.approx(shapely.Polygon(ring).area, rel=1e-9)  # no overlap, no gap
    x0 = make_lattice(n * spacing, (2, 2), (n // 2, n // 2), np.random.default_rng(3))[:, 0, 0]
    assert np.abs(x0 - ORIGIN[0]).max() <= 0.2 * spacing + 1e-9  # the west edge moves at most 20 % of the spacing


def test_parcels_under_the_smallest_size_are_refused_naming_the_keys(tmp_path):
    small = {"extent_m": 500.0, "blocks": (20, 20), "parcels_per_block": (30, 30)}  # 500 / 600 = 0.83 m
    with pytest.raises(ConfigError) as err:
        generate_demo(tmp_path, **small)
    msg = str(err.value)
    for text in ("0.833 m", "demo.extent_m", "demo.blocks", "demo.parcels_per_block", f"at least {MIN_PARCEL_M:g} m",
                 "at most 500 parcels"):
        assert text in msg, msg
    assert not any(tmp_path.iterdir())  # refused before writing anything
    cfg = {"years": [2023], "crs": "EPSG:32651", "resolution": 10, "imagery": {"source": "demo"},
           "zones": [{"level": "city", "path": "zones/city.gpkg", "id": "zone_id"}],
           "demo": {**small, "blocks": [20, 20], "parcels_per_block": [30, 30]}}
    with pytest.raises(ConfigError, match=r"demo: parcels would be 0\.833 m .*demo\.parcels_per_block"):
        validate(cfg)
    cfg["demo"]["parcels_per_block"] = [12, 12]  # 500 / 240 = 2.1 m: accepted
    assert validate(cfg)["demo"]["parcels_per_block"] == [12, 12]
    assert parcel_size_problem(500.0, (2, 2), (250, 250)) is None  # exactly 1 m: made
    assert parcel_size_problem(500.0, (2, 2), (250, 251)) is not None  # 0.996 m down: refused
