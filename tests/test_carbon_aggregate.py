"""Tests of greensink.carbon (per-pixel carbon density and its draws) and greensink.aggregate
(zone totals with intervals, overlay areas, population shares, the zone table).

Hand models are linear, C = a + b·NDVI in t C/ha, with three bootstrap draws each, so
the 5 % / 95 % quantiles of three sorted draws d0 ≤ d1 ≤ d2 are (numpy's linear rule)
d0 + 0.1 (d1 − d0) and d1 + 0.9 (d2 − d1).

Zone-table grid: 4 × 4 pixels of 10 m (0.01 ha each) in EPSG:32651, top-left corner
(X0, Y1) = (500 000, 3 500 040); pixel (row, col) spans x in [X0 + 10 col, X0 + 10 col + 10]
and y in [Y1 − 10 row − 10, Y1 − 10 row].
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from greensink.aggregate import (
    ANCHOR_MAX_T_HA,
    overlay_areas_m2,
    plausibility_flags,
    population_in_zones,
    zone_draw_sums,
    zone_table,
)
from greensink.carbon import (
    CO2_PER_C,
    density_map,
    fill_values,
    interval_quantiles,
    pixel_function,
    type_density,
    type_fill,
    typed_pixels,
)
from greensink.coverage import coverage_matrix
from greensink.grid import Grid
from greensink.model import fallback_type_model, fit_type_model
from greensink.types import resolve_overlaps, type_fractions

CRS = "EPSG:32651"
X0, Y0, Y1 = 500_000.0, 3_500_000.0, 3_500_040.0
NAN = np.nan

G1_MODEL = {"form": "linear", "params": {"a": 1.0, "b": 10.0},
            "bootstrap": [[1.0, 10.0], [2.0, 10.0], [0.0, 10.0]], "x_range": [0.2, 0.8]}
XG_MODEL = {"form": "linear", "params": {"a": 0.0, "b": 20.0},
            "bootstrap": [[0.0, 20.0], [0.0, 18.0], [0.0, 22.0]], "x_range": [0.2, 0.8]}


def q3(d: list[float]) -> tuple[float, float]:
    """5 % and 95 % quantiles of three values by numpy's linear rule (see module docstring)."""
    d0, d1, d2 = sorted(d)
    return d0 + 0.1 * (d1 - d0), d1 + 0.9 * (d2 - d1)


# --- carbon --------------------------------------------------------------------------------------


def test_interval_quantiles():
    assert interval_quantiles(90) == (0.05, 0.95)
    assert interval_quantiles(95) == pytest.approx((0.025, 0.975))
    assert interval_quantiles(50) == pytest.approx((0.25, 0.75))


def one_type_case():
    """2 × 2 pixels, one type G1: fractions [[0.5, 0], [1, 0.25]], NDVI [[0.6, 0.6], [NaN, -0.3]]."""
    models = {"types": {"G1": G1_MODEL}}
    fractions = np.array([[[0.5, 0.0], [1.0, 0.25]]], dtype=np.float32)
    ndvi = np.array([[0.6, 0.6], [NAN, -0.3]], dtype=np.float32)
    return models, fractions, ndvi


def test_pixel_function_by_hand():
    models, fractions, ndvi = one_type_case()
    active = typed_pixels(fractions)
    assert active.tolist() == [0, 2, 3]  # pixel 1 has no type
    est, draws = pixel_function(models, ["G1"], fractions, ndvi)(active)
    # pixel 0: 0.5 × max(1 + 10·0.6, 0) = 0.5 × 7 = 3.5 (NDVI is float32, hence approx)
    # pixel 2: NDVI NaN on a typed pixel -> NaN (no observation, not 0)
    # pixel 3: 1 + 10·(−0.3) = −2 -> floored at 0 -> 0.25 × 0 = 0
    assert est[0] == pytest.approx(3.5, rel=1e-6)
    assert np.isnan(est[1])
    assert est[2] == 0.0
    assert draws.shape == (3, 3)
    # draws at pixel 0: 0.5 × (1 + 6, 2 + 6, 0 + 6) = 3.5, 4, 3
    np.testing.assert_allclose(draws[:, 0], [3.5, 4.0, 3.0], rtol=1e-6)
    assert np.isnan(draws[:, 1]).all()
    # pixel 3: 1 − 3, 2 − 3, 0 − 3 all < 0 -> 0
    assert draws[:, 2].tolist() == [0.0, 0.0, 0.0]


def test_density_map_bands_and_fill():
    models, fractions, ndvi = one_type_case()
    fn = pixel_function(models, ["G1"], fractions, ndvi)
    out = density_map(fn, typed_pixels(fractions), (2, 2), interval_pct=90, chunk_pixels=2)
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    est, lo, hi = out
    lo0, hi0 = q3([3.5, 4.0, 3.0])  # 3 + 0.1·0.5 = 3.05, 3.5 + 0.9·0.5 = 3.95
    assert (lo0, hi0) == pytest.approx((3.05, 3.95))
    np.testing.assert_allclose(est, [[3.5, 0.0], [NAN, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(lo, [[lo0, 0.0], [NAN, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(hi, [[hi0, 0.0], [NAN, 0.0]], rtol=1e-6)
    # pixel 1 is untyped: the fill value (0 t C/ha, measured: no green-space carbon)
    assert out[:, 0, 1].tolist() == [0.0, 0.0, 0.0]
    filled = density_map(fn, typed_pixels(fractions), (2, 2), fill=-1.0)
    assert filled[:, 0, 1].tolist() == [-1.0, -1.0, -1.0]


def two_type_case():
    """1 × 3 pixels, G1 (hand model) and XG (coefficient table: constant 10 t C/ha, no spread).
    pixel 0: 30 % G1 / 70 % XG at NDVI 0.5; pixel 1: G1 only at NDVI 0.2; pixel 2: XG only, NDVI NaN
    (a constant density needs no observation)."""
    xg = fallback_type_model("XG", 10.0, 0.0, 0, "no plots", n_bootstrap=3)
    models = {"types": {"G1": G1_MODEL, "XG": xg}}
    fractions = np.array([[[0.3, 1.0, 0.0]], [[0.7, 0.0, 1.0]]], dtype=np.float32)
    ndvi = np.array([[0.5, 0.2, NAN]], dtype=np.float32)
    return models, ["G1", "XG"], fractions, ndvi


def test_two_types_by_hand_and_type_density_sums_to_estimate():
    models, types, fractions, ndvi = two_type_case()
    fn = pixel_function(models, types, fractions, ndvi)
    est, draws = fn(np.arange(3))
    # pixel 0: 0.3 × (1 + 5) + 0.7 × 10 = 1.8 + 7 = 8.8; pixel 1: 1 × (1 + 2) = 3;
    # pixel 2: XG is a constant of the land: 1 × 10 = 10 although NDVI is NaN
    np.testing.assert_allclose(est, [8.8, 3.0, 10.0], rtol=1e-6)
    # draws at pixel 0: 0.3 × (6, 7, 5) + 7 = 8.8, 9.1, 8.5
    np.testing.assert_allclose(draws[:, 0], [8.8, 9.1, 8.5], rtol=1e-6)
    td = type_density(models, types, fractions, ndvi)
    assert td.shape == (2, 1, 3) and td.dtype == np.float32
    np.testing.assert_allclose(td[0], [[1.8, 3.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(td[1], [[7.0, 0.0, 10.0]], rtol=1e-6)
    band = density_map(fn, typed_pixels(fractions), (1, 3))[0]
    np.testing.assert_allclose(td.sum(axis=0), band, rtol=1e-6)  # NaN where the estimate is NaN


def test_fitted_model_applied_per_pixel():
    # Plots exactly on C = 2 + 20·NDVI: the fit and every bootstrap refit recover a = 2, b = 20.
    x = np.array([0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    xy = np.array([[100, 100], [1500, 100], [2500, 100], [100, 1500], [1500, 1500], [2500, 2500]], float)
    m = fit_type_model("G1", x, 2 + 20 * x, xy, [f"p{i}" for i in range(6)], forms=["linear"], n_bootstrap=5)
    assert m["params"] == {"a": pytest.approx(2.0), "b": pytest.approx(20.0)}
    fractions = np.array([[[0.5, 1.0]]], dtype=np.float32)
    ndvi = np.array([[0.5, 0.25]], dtype=np.float32)
    est, draws = pixel_function({"types": {"G1": m}}, ["G1"], fractions, ndvi)(np.arange(2))
    # 0.5 × (2 + 10) = 6; 1 × (2 + 5) = 7
    np.testing.assert_allclose(est, [6.0, 7.0], rtol=1e-6)
    np.testing.assert_allclose(draws, [[6.0, 7.0]] * 5, rtol=1e-6)


# --- zone_draw_sums ------------------------------------------------------------------------------

# 2 × 2 grid, pixels 0..3 (flat). Estimate (t C/ha) and two draws per pixel; pixel 2 is NaN.
EST = np.array([2.0, 4.0, NAN, 6.0])
DRAWS = np.array([[1.0, 3.0, NAN, 5.0], [3.0, 5.0, NAN, 7.0]])


def hand_fn(idx):
    return EST[idx], DRAWS[:, idx]


# zone A: pixel 0 in full, half of pixel 1; zone B: the other half of pixel 1, pixels 2 and 3.
MATRIX = sp.csr_matrix(np.array([[1.0, 0.5, 0.0, 0.0], [0.0, 0.5, 1.0, 1.0]]))
PA = 0.01  # ha per 10 m pixel


def test_zone_draw_sums_by_hand():
    [(est, draws)] = zone_draw_sums([MATRIX], hand_fn, np.arange(4), PA)
    # A: (1·2 + 0.5·4) × 0.01 = 0.04 t; B: (0.5·4 + 1·NaN→0 + 1·6) × 0.01 = 0.08 t
    np.testing.assert_allclose(est, [0.04, 0.08])
    # A: draw 0 (1 + 1.5) × 0.01 = 0.025, draw 1 (3 + 2.5) × 0.01 = 0.055
    # B: draw 0 (1.5 + 5) × 0.01 = 0.065, draw 1 (2.5 + 7) × 0.01 = 0.095
    assert draws.shape == (2, 2)
    np.testing.assert_allclose(draws, [[0.025, 0.055], [0.065, 0.095]])


def test_zone_draw_sums_chunks_and_several_matrices():
    other = sp.csr_matrix(np.array([[0.25, 0.25, 0.25, 0.25]]))  # one zone, a quarter of each pixel
    calls = []
    both = zone_draw_sums([MATRIX, other], hand_fn, np.arange(4), PA, chunk_pixels=1,
                          progress=lambda done, total: calls.append((done, total)))
    alone = [zone_draw_sums([m], hand_fn, np.arange(4), PA)[0] for m in (MATRIX, other)]
    assert calls[-1] == (4, 4)
    for (e1, d1), (e2, d2) in zip(both, alone, strict=True):
        np.testing.assert_allclose(e1, e2)
        np.testing.assert_allclose(d1, d2)
    # the quarter zone: 0.25 × (2 + 4 + 0 + 6) × 0.01 = 0.03 t
    np.testing.assert_allclose(both[1][0], [0.03])


def test_zone_draw_sums_only_active_pixels():
    # Pixels not passed as active are never evaluated and count 0 (untyped: no carbon).
    [(est, _)] = zone_draw_sums([MATRIX], hand_fn, np.array([3]), PA)
    np.testing.assert_allclose(est, [0.0, 0.06])  # B: 1 × 6 × 0.01


# --- overlay and population ----------------------------------------------------------------------


def test_overlay_areas_m2_by_hand():
    zones = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10)])
    geoms = np.array([box(5, 0, 15, 4), box(12, 2, 30, 3), box(50, 50, 60, 60)])
    m = overlay_areas_m2(zones, geoms).toarray()
    # geom 0 (x 5..15, h 4): 5 × 4 = 20 m² in each zone; geom 1 (x 12..30, h 1): 8 × 1 = 8 m² in zone 2
    np.testing.assert_allclose(m, [[20.0, 0.0, 0.0], [20.0, 8.0, 0.0]])
    assert overlay_areas_m2(zones, np.array([])).shape == (2, 0)


def test_population_in_zones_splits_by_area():
    zones = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10), box(20, 0, 30, 10)])
    population = gpd.GeoDataFrame(
        {"people": [100.0, 30.0]}, geometry=[box(5, 0, 25, 10), box(0, 0, 10, 10)], crs=CRS)
    # polygon 0 (x 5..25, 200 m²): 50 m² in zone 1 -> 25, 100 m² in zone 2 -> 50, 50 m² in zone 3 -> 25
    # polygon 1 lies wholly in zone 1 -> 30 more
    people = population_in_zones(zones, population, "people")
    np.testing.assert_allclose(people, [55.0, 50.0, 25.0])


def test_plausibility_flags():
    table = pd.DataFrame({
        "carbon_t": [10.0, 1.0, 1.0, 0.0, 1.0],
        "canopy_area_ha": [1.0, 0.001, NAN, 0.0, 0.001],
        "green_area_ha": [1.5, 0.0015, NAN, 0.0, 2.0],
        "carbon_t_per_green_space_ha": [100.0, 5.0, NAN, NAN, 5.0],
    })
    flags = plausibility_flags(table)
    # zone 0: 100 t C/ha of green space > 68; 10 t on 1 ha canopy = 10 t/ha, fine
    assert "100.0 t C/ha of green space exceeds the Beijing maximum 68" in flags[0]
    assert "canopy" not in flags[0]
    # zone 1: 1 t on 0.001 ha of canopy = 1000 t/ha > 2 × 76.9 = 153.8
    assert "1000.0 t C/ha of canopy exceeds twice the US urban mean" in flags[1]
    # zone 4: the same 1000 t/ha of canopy, but canopy is 0.05 % of 2 ha of vegetation: the carbon is
    # mostly grass and shrub, so the tree-canopy anchor does not apply
    assert flags[2:] == ["", "", ""]


# --- zone_table ----------------------------------------------------------------------------------

GRID = Grid.from_bounds((X0, Y0, X0 + 40, Y1), 10, CRS)
TYPES = ["G1", "XG"]


def px_box(col0: float, row0: float, col1: float, row1: float):
    """Rectangle in pixel coordinates (col right, row down) of the 4 × 4 grid."""
    return box(X0 + 10 * col0, Y1 - 10 * row1, X0 + 10 * col1, Y1 - 10 * row0)


# NDVI: G1 park on the left half; built-up (0.1) top right; trees (0.8) bottom right, one pixel
# (2, 3) never observed clear.
NDVI = np.array([
    [0.6, 0.6, 0.1, 0.1],
    [0.6, 0.6, 0.1, 0.1],
    [0.3, 0.3, 0.8, NAN],
    [0.3, 0.3, 0.8, 0.8],
], dtype=np.float32)


def rasters() -> dict[str, np.ndarray]:
    finite = np.isfinite(NDVI)
    veg = np.where(finite, (NDVI >= 0.2).astype(np.float32), NAN).astype(np.float32)
    canopy = np.where(finite, (NDVI >= 0.5).astype(np.float32), NAN).astype(np.float32)
    fvc = np.where(finite, 0.5, NAN).astype(np.float32)
    return {"ndvi": NDVI, "fvc": fvc, "vegetation": veg, "canopy": canopy}


def greenspace() -> gpd.GeoDataFrame:
    """G1: the left half, x 0..20 m (800 m²). XG: x 20..33 m in rows 2-3 (13 m × 20 m = 260 m²):
    pixels (2, 2), (3, 2) in full and 30 % of (2, 3), (3, 3)."""
    raw = gpd.GeoDataFrame({"type": ["XG", "G1"]}, geometry=[px_box(2, 2, 3.3, 4), px_box(0, 0, 2, 4)], crs=CRS)
    typed, _ = resolve_overlaps(raw, "type", TYPES)
    return typed


def zone_levels() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    block = gpd.GeoDataFrame({"zone_id": ["B1"], "parent_id": ["D1"], "level": ["block"], "name": ["街区 1"]},
                             geometry=[px_box(0, 0, 4, 4)], crs=CRS)
    parcel = gpd.GeoDataFrame({"zone_id": ["P1", "P2"], "parent_id": ["B1", "B1"], "level": ["parcel"] * 2,
                               "name": ["west", "east"]}, geometry=[px_box(0, 0, 2, 4), px_box(2, 0, 4, 4)], crs=CRS)
    return block, parcel


def population() -> gpd.GeoDataFrame:
    # 50 people in the west half, 0 in the east half
    return gpd.GeoDataFrame({"people": [50.0, 0.0]}, geometry=[px_box(0, 0, 2, 4), px_box(2, 0, 4, 4)], crs=CRS)


def tables(models: dict, levels: list[gpd.GeoDataFrame], ndvi: np.ndarray | None = None,
           **kw) -> list[gpd.GeoDataFrame]:
    gs = greenspace()
    fractions = type_fractions(gs, "type", TYPES, GRID)
    r = rasters() if ndvi is None else {**rasters(), "ndvi": ndvi}
    fill = type_fill(models, TYPES, fractions, r["ndvi"], seed=0)
    fn = pixel_function(models, TYPES, fractions, r["ndvi"], fill=fill_values(fill))
    matrices = [coverage_matrix(list(z.geometry.values), GRID.transform, GRID.shape) for z in levels]
    sums = zone_draw_sums(matrices, fn, typed_pixels(fractions), GRID.pixel_area_ha)
    density = type_density(models, TYPES, fractions, r["ndvi"])
    return [zone_table(z, m, GRID, r, density, TYPES, s, gs, "type", ["G1"], population(), "people", 90.0,
                       fractions=fractions, fill_t_ha={t: v["fill_t_ha"] for t, v in fill.items()}, **kw)
            for z, m, s in zip(levels, matrices, sums, strict=True)]


MODELS = {"types": {"G1": G1_MODEL, "XG": XG_MODEL}}
REQUIRED = ["zone_id", "parent_id", "level", "area_ha", "green_area_ha", "green_coverage_pct",
            "green_space_ratio_pct", "canopy_cover_pct", "ndvi_mean", "carbon_t", "carbon_t_lo",
            "carbon_t_hi", "carbon_t_ha", "co2e_t", "carbon_t_G1", "carbon_t_XG"]
ADDITIVE = ["area_ha", "grid_area_ha", "green_area_ha", "green_space_area_ha", "canopy_area_ha", "carbon_t",
            "co2e_t", "carbon_t_G1", "carbon_t_XG", "green_space_area_ha_G1", "green_space_area_ha_XG",
            "park_area_ha", "population"]


@pytest.fixture(scope="module")
def zone_tables():
    return tables(MODELS, list(zone_levels()))


def test_zone_table_has_contract_columns(zone_tables):
    block, parcel = zone_tables
    for t in (block, parcel):
        assert set(REQUIRED) <= set(t.columns)
        assert t.crs == CRS
    assert parcel["zone_id"].tolist() == ["P1", "P2"]
    assert parcel["parent_id"].tolist() == ["B1", "B1"]
    assert block["name"].tolist() == ["街区 1"]


def test_zone_table_areas_and_cover_by_hand(zone_tables):
    block, parcel = zone_tables
    p1, p2 = parcel.iloc[0], parcel.iloc[1]
    b = block.iloc[0]
    # areas: 20 m × 40 m = 800 m² = 0.08 ha per parcel, 0.16 ha the block
    assert (p1["area_ha"], p2["area_ha"], b["area_ha"]) == pytest.approx((0.08, 0.08, 0.16))
    assert (p1["grid_area_ha"], b["grid_area_ha"]) == pytest.approx((0.08, 0.16))
    # observed: P1 8/8 pixels, P2 7/8 (pixel (2, 3) NaN) = 87.5 %, block 15/16 = 93.75 %
    assert (p1["observed_pct"], p2["observed_pct"], b["observed_pct"]) == pytest.approx((100.0, 87.5, 93.75))
    # vegetation (NDVI ≥ 0.2): P1 all 8 pixels -> 0.08 ha, 100 %;
    # P2: 3 of 7 observed pixels (0.8 ×3) -> 0.03 ha, 3/7 = 42.857 %; block 11/15 -> 0.11 ha, 73.33 %
    assert (p1["green_area_ha"], p2["green_area_ha"], b["green_area_ha"]) == pytest.approx((0.08, 0.03, 0.11))
    assert (p1["green_coverage_pct"], p2["green_coverage_pct"], b["green_coverage_pct"]) == pytest.approx(
        (100.0, 300 / 7, 1100 / 15))
    # green-space land by vector overlay: P1 800 m² of G1 = 100 %; P2 260 m² of XG = 32.5 %;
    # block 1060 m² = 0.106 ha of 0.16 ha = 66.25 %
    assert (p1["green_space_area_ha"], p2["green_space_area_ha"], b["green_space_area_ha"]) == pytest.approx(
        (0.08, 0.026, 0.106))
    assert (p1["green_space_ratio_pct"], p2["green_space_ratio_pct"], b["green_space_ratio_pct"]) == pytest.approx(
        (100.0, 32.5, 66.25))
    assert (p2["green_space_area_ha_G1"], p2["green_space_area_ha_XG"]) == pytest.approx((0.0, 0.026))
    # canopy (NDVI ≥ 0.5): P1 4 of 8 -> 50 %, 0.04 ha; P2 3 of 7 -> 42.857 %, 0.03 ha; block 7/15
    assert (p1["canopy_cover_pct"], p2["canopy_cover_pct"], b["canopy_cover_pct"]) == pytest.approx(
        (50.0, 300 / 7, 700 / 15))
    assert (p1["canopy_area_ha"], p2["canopy_area_ha"], b["canopy_area_ha"]) == pytest.approx((0.04, 0.03, 0.07))
    # NDVI mean over observed pixels: P1 (4·0.6 + 4·0.3)/8 = 0.45; P2 (4·0.1 + 3·0.8)/7 = 0.4;
    # block 6.4/15
    assert (p1["ndvi_mean"], p2["ndvi_mean"], b["ndvi_mean"]) == pytest.approx((0.45, 0.4, 6.4 / 15), rel=1e-6)
    assert (p1["fvc_mean"], b["fvc_mean"]) == pytest.approx((0.5, 0.5))


def test_zone_table_carbon_by_hand(zone_tables):
    block, parcel = zone_tables
    p1, p2 = parcel.iloc[0], parcel.iloc[1]
    b = block.iloc[0]
    # G1 (C = 1 + 10 NDVI) on P1: 4 px at 0.6 -> 7, 4 px at 0.3 -> 4: (28 + 16) × 0.01 ha = 0.44 t
    # XG (C = 20 NDVI) on P2: (2, 2), (3, 2) full at 0.8 -> 16 each; (3, 3) 0.3 × 16 = 4.8;
    #   observed: (16 + 16 + 4.8) × 0.01 = 0.368 t
    #   (2, 3), 0.3 XG, NDVI NaN -> filled with XG's mean density over its observed pixels,
    #   (1·16 + 1·16 + 0.3·16) / 2.3 = 16 t C/ha of XG land: 0.3 × 16 × 0.01 = 0.048 t
    assert (p1["carbon_t_G1"], p1["carbon_t_XG"]) == pytest.approx((0.44, 0.0), rel=1e-6)
    assert (p2["carbon_t_G1"], p2["carbon_t_XG"]) == pytest.approx((0.0, 0.416), rel=1e-6)
    assert (p1["carbon_t"], p2["carbon_t"], b["carbon_t"]) == pytest.approx((0.44, 0.416, 0.856), rel=1e-6)
    assert (p2["carbon_t_observed"], p2["carbon_t_filled"]) == pytest.approx((0.368, 0.048), rel=1e-6)
    assert (p1["carbon_t_filled"], b["carbon_t_filled"]) == pytest.approx((0.0, 0.048), rel=1e-6)
    # typed land as carbon sees it: P2 XG 1 + 1 + 0.3 + 0.3 = 2.6 px = 0.026 ha, 2.3 px observed
    assert p2["green_space_grid_area_ha"] == pytest.approx(0.026, rel=1e-6)
    assert p2["carbon_observed_pct"] == pytest.approx(100 * 2.3 / 2.6, rel=1e-6)
    assert p1["carbon_observed_pct"] == pytest.approx(100.0)
    for t in zone_tables:
        np.testing.assert_allclose(t["carbon_t_G1"] + t["carbon_t_XG"], t["carbon_t"], rtol=1e-12)
        np.testing.assert_allclose(t["co2e_t"], t["carbon_t"] * 44 / 12, rtol=1e-12)
        np.testing.assert_allclose(t["co2e_t_lo"], t["carbon_t_lo"] * CO2_PER_C, rtol=1e-12)
        assert (t["carbon_t_lo"] <= t["carbon_t"]).all() and (t["carbon_t"] <= t["carbon_t_hi"]).all()
    # density per zone area: 0.44/0.08 = 5.5, 0.416/0.08 = 5.2, 0.856/0.16 = 5.35 t C/ha
    assert (p1["carbon_t_ha"], p2["carbon_t_ha"], b["carbon_t_ha"]) == pytest.approx((5.5, 5.2, 5.35), rel=1e-6)
    # per ha of green space, both on the pixel fractions: P2 0.416 / 0.026 = 16
    assert p2["carbon_t_per_green_space_ha"] == pytest.approx(16.0, rel=1e-6)
    # intervals from summed draws. P1 draws (a = 1, 2, 0): 0.44, (4·8 + 4·5)·0.01 = 0.52, (24 + 12)·0.01 = 0.36
    lo, hi = q3([0.44, 0.52, 0.36])  # 0.368, 0.512
    assert (p1["carbon_t_lo"], p1["carbon_t_hi"]) == pytest.approx((lo, hi), rel=1e-6)
    # P2 draws (b = 20, 18, 22), the fill's draws the same means (16, 14.4, 17.6; no between-pixel
    # spread, every observed XG pixel is 16): 0.416 × (1, 0.9, 1.1) = 0.416, 0.3744, 0.4576
    lo, hi = q3([0.416, 0.3744, 0.4576])
    assert (p2["carbon_t_lo"], p2["carbon_t_hi"]) == pytest.approx((lo, hi), rel=1e-6)
    # block draws summed per draw: 0.856, 0.52 + 0.3744 = 0.8944, 0.36 + 0.4576 = 0.8176
    lo, hi = q3([0.856, 0.8944, 0.8176])
    assert (b["carbon_t_lo"], b["carbon_t_hi"]) == pytest.approx((lo, hi), rel=1e-6)
    # not the sum of the parcels' bounds
    assert b["carbon_t_lo"] > p1["carbon_t_lo"] + p2["carbon_t_lo"]
    assert block["plausibility_flag"].tolist() == [""]
    assert parcel["plausibility_flag"].tolist() == ["", ""]


def test_zone_table_population_and_parks(zone_tables):
    block, parcel = zone_tables
    # parks (G1): P1 0.08 ha, P2 0, block 0.08 ha; people 50, 0, 50
    assert parcel["park_area_ha"].tolist() == pytest.approx([0.08, 0.0])
    assert parcel["population"].tolist() == pytest.approx([50.0, 0.0])
    assert block["population"].tolist() == pytest.approx([50.0])
    # 800 m² / 50 people = 16 m² per person; P2 has nobody: NaN, never 0 or inf
    assert parcel["park_area_per_capita_m2"].iloc[0] == pytest.approx(16.0)
    assert np.isnan(parcel["park_area_per_capita_m2"].iloc[1])
    assert block["park_area_per_capita_m2"].iloc[0] == pytest.approx(16.0)


def test_zone_table_parcels_sum_to_block(zone_tables):
    block, parcel = zone_tables
    for col in ADDITIVE:
        assert parcel[col].sum() == pytest.approx(block[col].iloc[0], rel=1e-9, abs=1e-12), col


def test_zone_table_without_population_is_nan():
    block, parcel = zone_levels()
    gs = greenspace()
    fractions = type_fractions(gs, "type", TYPES, GRID)
    r = rasters()
    m = coverage_matrix(list(block.geometry.values), GRID.transform, GRID.shape)
    fn = pixel_function(MODELS, TYPES, fractions, r["ndvi"])
    [s] = zone_draw_sums([m], fn, typed_pixels(fractions), GRID.pixel_area_ha)
    t = zone_table(block, m, GRID, r, type_density(MODELS, TYPES, fractions, r["ndvi"]), TYPES, s, gs, "type", ["G1"],
                   fractions=fractions)
    assert np.isnan(t["population"].iloc[0]) and np.isnan(t["park_area_per_capita_m2"].iloc[0])
    assert t["park_area_ha"].iloc[0] == pytest.approx(0.08)


def test_zone_table_flags_implausible_density():
    # Coefficient-table models: G1 100 t C/ha, XG 10 t C/ha everywhere they are typed.
    models = {"types": {"G1": fallback_type_model("G1", 100.0, 0.0, 0, "test", n_bootstrap=3),
                        "XG": fallback_type_model("XG", 10.0, 0.0, 0, "test", n_bootstrap=3)}}
    block, parcel = tables(models, list(zone_levels()))
    # P1: 100 × 8 px × 0.01 ha = 8 t on 0.08 ha of G1 = 100 t C/ha of green space > 68 -> flagged
    #     (and 8 t / 0.04 ha canopy = 200 t/ha > 153.8 -> flagged too)
    # P2: a constant needs no NDVI: 10 × (1 + 1 + 0.3 + 0.3) × 0.01 = 0.26 t on 0.026 ha = 10 t/ha;
    #     0.26/0.03 = 8.7 t/ha canopy -> fine
    assert parcel["carbon_t"].tolist() == pytest.approx([8.0, 0.26])
    assert parcel["carbon_t_filled"].tolist() == [0.0, 0.0]
    assert parcel["carbon_t_per_green_space_ha"].iloc[0] == pytest.approx(100.0)
    assert 100.0 > ANCHOR_MAX_T_HA
    assert "exceeds the Beijing maximum" in parcel["plausibility_flag"].iloc[0]
    assert parcel["plausibility_flag"].iloc[1] == ""
    # block: 8.26 t on 0.106 ha = 77.9 t/ha of green space > 68 -> flagged
    assert "exceeds the Beijing maximum" in block["plausibility_flag"].iloc[0]
    # the value is flagged, never clipped
    assert parcel["carbon_t_ha"].iloc[0] == pytest.approx(100.0)


def test_zone_table_independent_of_zone_order(zone_tables):
    _, parcel = zone_tables
    block, parcels = zone_levels()
    extra = gpd.GeoDataFrame({"zone_id": ["P3"], "parent_id": ["B1"], "level": ["parcel"], "name": ["mid"]},
                             geometry=[px_box(1.5, 0.5, 2.5, 3.5)], crs=CRS)  # straddles P1 and P2
    three = pd.concat([parcels, extra], ignore_index=True)
    forward = tables(MODELS, [block, three])[1].set_index("zone_id")
    shuffled = tables(MODELS, [block, three.iloc[[2, 0, 1]].reset_index(drop=True)])[1].set_index("zone_id")
    assert shuffled.index.tolist() == ["P3", "P1", "P2"]
    numeric = [c for c in forward.columns if forward[c].dtype.kind == "f"]
    pd.testing.assert_frame_equal(shuffled.loc[forward.index, numeric], forward[numeric], rtol=1e-12)
    assert shuffled.loc[forward.index, "plausibility_flag"].tolist() == forward["plausibility_flag"].tolist()
    pd.testing.assert_series_equal(forward.loc[["P1", "P2"], "carbon_t"], parcel.set_index("zone_id")["carbon_t"])


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.floats(min_value=0.5, max_value=39.5), min_size=1, max_size=3, unique=True))
def test_parcels_cut_anywhere_sum_to_block(cuts):
    # Property: parcels tiling the block along arbitrary (not pixel-aligned) vertical cuts add up
    # to the block in every additive column, to float rounding.
    xs = [0.0, *sorted(cuts), 40.0]
    assume(min(b - a for a, b in zip(xs[:-1], xs[1:], strict=True)) >= 0.1)
    block, _ = zone_levels()
    parcels = gpd.GeoDataFrame(
        {"zone_id": [f"P{i}" for i in range(len(xs) - 1)], "parent_id": "B1", "level": "parcel",
         "name": [f"p{i}" for i in range(len(xs) - 1)]},
        geometry=[box(X0 + a, Y0, X0 + b, Y1) for a, b in zip(xs[:-1], xs[1:], strict=True)], crs=CRS)
    b, p = tables(MODELS, [block, parcels])
    for col in ADDITIVE:
        assert p[col].sum() == pytest.approx(b[col].iloc[0], rel=1e-9, abs=1e-12), col


def test_zones_without_any_observation_are_named_in_a_warning():
    from greensink.aggregate import unobserved_zones_warning

    table = pd.DataFrame({"zone_id": ["a", "b", "c"], "observed_pct": [100.0, 0.0, NAN]})
    text = unobserved_zones_warning(table, "parcel")
    assert text.startswith("parcel: 2 zone(s) have no clear observation") and "b, c" in text
    assert unobserved_zones_warning(table.iloc[:1], "parcel") is None
