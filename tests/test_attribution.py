"""Attribution of a stock change (gain, loss, growth, conversion, other) and "no net loss" of carbon-sink
space with its lost patches (greensink.change, issue 12 items 4 and 6). Hand-built 4 × 4 rasters; every
expectation is worked out in the comments. The baseline demo run checks the parts against the zone tables
and carbon maps of both years, which the change rule does not read for its attribution.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from greensink.change import (
    ATTRIBUTION_PARTS,
    EstimateRecorder,
    attribute_change,
    attribution_classes,
    attribution_raster,
    change_table,
    dominant_type,
    lost_patches,
    sink_space,
    zone_attribution,
    zone_sink_space,
)
from greensink.coverage import coverage_matrix, zonal_sum
from greensink.grid import Grid

CRS = "EPSG:32651"
NAN = np.nan
# 4 × 4 pixels of 10 m, top-left corner (0, 40): pixel (row, col) is box(10 col, 30 − 10 row, ...); 0.01 ha each
GRID = Grid(crs=CRS, transform=Affine(10.0, 0.0, 0.0, 0.0, -10.0, 40.0), width=4, height=4)
PA = 0.01


def cover(geoms) -> object:
    return coverage_matrix(list(geoms), GRID.transform, GRID.shape)


def zones_gdf(ids, geoms, level="parcel") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"zone_id": ids, "parent_id": ["X"] * len(ids), "level": [level] * len(ids), "name": ids},
                            geometry=list(geoms), crs=CRS)


def year_table(ids, carbon, green) -> pd.DataFrame:
    return pd.DataFrame({"zone_id": ids, "area_ha": [0.16] * len(ids), "carbon_t": carbon, "green_area_ha": green})


# --- per-pixel classes ---------------------------------------------------------------------------


def test_dominant_type_largest_fraction_first_on_tie_untyped_minus_one():
    # 2 types × 4 pixels: G1 only; G2 larger; a tie (the first type); untyped
    frac = np.array([[1.0, 0.3, 0.4, 0.0], [0.0, 0.7, 0.4, 0.0]], dtype=np.float32)
    assert dominant_type(frac).tolist() == [0, 1, 0, -1]


# One pixel of each case. Vegetation classes 0 none, 1 grass, 2 shrub, 3 tree, NaN no data.
#   pixel: 0 none→grass        gain (vegetation appeared)
#          1 grass→none        loss (cleared)
#          2 tree→tree         growth (same type G1)
#          3 shrub→shrub       conversion (G1 → G2)
#          4 grass→tree        gain (canopy appeared)
#          5 tree→grass        loss (canopy cleared)
#          6 none→none         other
#          7 NaN→grass         unknown (NaN)
#          8 grass→shrub       growth (persistent vegetation, no canopy change, same type)
#          9 grass→grass       conversion (untyped → G1: became green space)
#         10 none→grass, G1→G2 gain (gain comes before conversion)
CLASSES0 = [0, 1, 3, 2, 1, 3, 0, NAN, 1, 1, 0]
CLASSES1 = [1, 0, 3, 2, 3, 1, 0, 1, 2, 1, 1]
TYPE0 = [0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0]
TYPE1 = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]


def test_attribution_classes_one_pixel_of_each_case():
    codes = attribution_classes(np.array(CLASSES0, np.float32), np.array(CLASSES1, np.float32), np.array(TYPE0),
                                np.array(TYPE1))
    assert codes.dtype == np.float32
    np.testing.assert_array_equal(codes, [1, 2, 3, 4, 1, 2, 0, NAN, 3, 4, 1])


def test_attribution_classes_unknown_in_the_second_year_too():
    codes = attribution_classes(np.array([[2.0, 0.0]]), np.array([[NAN, NAN]]), np.array([0, 0]), np.array([0, 0]))
    assert codes.shape == (1, 2) and np.isnan(codes).all()  # never 0 (other) or a loss


def test_attribution_classes_refuses_mismatched_sizes():
    with pytest.raises(ValueError, match="one value per pixel"):
        attribution_classes(np.zeros(3), np.zeros(3), np.zeros(2, int), np.zeros(3, int))


# --- zone parts on a 4 × 4 raster ----------------------------------------------------------------

# Typed pixels (active) are rows 0-1 and pixel (2, 0); rows 2-3 otherwise untyped (stock 0 both years).
#   (0,0) none→grass  G1     stock 0 → 10    gain        +10
#   (0,1) grass→none  G1          12 → 0     loss        −12
#   (0,2) tree→tree   G1          50 → 55    growth       +5
#   (0,3) shrub       G1 → G2     20 → 30    conversion  +10
#   (1,0) grass→tree  G1          10 → 40    gain        +30
#   (1,1) tree→grass  G1          40 → 15    loss        −25
#   (1,2) none→none   G1           5 → 6     other        +1
#   (1,3) NaN→grass   G1           8 → 9     other (unobserved) +1
#   (2,0) grass       untyped → G1  0 → 10   conversion  +10
ROWS = 4
C0 = np.full((4, 4), 0.0, np.float32)
C1 = np.full((4, 4), 0.0, np.float32)
C0[0], C1[0] = [0, 1, 3, 2], [1, 0, 3, 2]
C0[1], C1[1] = [1, 3, 0, NAN], [3, 1, 0, 1]
C0[2, 0], C1[2, 0] = 1, 1
F0 = np.zeros((2, 4, 4), np.float32)
F1 = np.zeros((2, 4, 4), np.float32)
F0[0, :2] = 1.0
F1[0, :2] = 1.0
F1[0, 0, 3], F1[1, 0, 3] = 0.3, 0.7  # (0,3) mostly G2 in the second year
F1[0, 2, 0] = 1.0  # (2,0) became G1
STOCK0 = {(0, 0): 0, (0, 1): 12, (0, 2): 50, (0, 3): 20, (1, 0): 10, (1, 1): 40, (1, 2): 5, (1, 3): 8, (2, 0): 0}
STOCK1 = {(0, 0): 10, (0, 1): 0, (0, 2): 55, (0, 3): 30, (1, 0): 40, (1, 1): 15, (1, 2): 6, (1, 3): 9, (2, 0): 10}
# zone L: column 0 and the left half of column 1; zone R: the right half of column 1 and columns 2-3
ZONES = [box(0, 0, 15, 40), box(15, 0, 40, 40)]


def hand_case():
    active = np.union1d(np.flatnonzero(F0.sum(axis=0) > 0), np.flatnonzero(F1.sum(axis=0) > 0))
    rc = [divmod(int(i), 4) for i in active]
    stock0 = np.array([STOCK0[p] for p in rc], float)
    stock1 = np.array([STOCK1[p] for p in rc], float)
    codes = attribution_classes(C0.reshape(-1)[active], C1.reshape(-1)[active], dominant_type(F0)[active],
                                dominant_type(F1)[active])
    return active, stock0, stock1, codes


def test_zone_attribution_by_hand():
    active, stock0, stock1, codes = hand_case()
    assert active.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    np.testing.assert_array_equal(codes, [1, 2, 3, 4, 1, 2, 0, NAN, 4])
    [parts] = zone_attribution([cover(ZONES)], active, stock1 - stock0, codes, PA)
    # L: gain (0,0) +10 + (1,0) +30 = 40; loss half of (0,1) −12 and (1,1) −25 = −18.5; conversion (2,0) +10
    # R: loss −18.5 (the other halves); growth +5; conversion (0,3) +10; other (1,2) +1 + (1,3) +1 = 2, unobserved 1
    expected = {"gain": [40, 0], "loss": [-18.5, -18.5], "growth": [0, 5], "conversion": [10, 10], "other": [0, 2],
                "other_unobserved": [0, 1]}
    for part, values in expected.items():
        np.testing.assert_allclose(parts[part], np.array(values) * PA, atol=1e-12, err_msg=part)
    # the parts add up to the zone's stock change summed independently from the two stock rasters
    s0, s1 = np.zeros(16), np.zeros(16)
    s0[active], s1[active] = stock0, stock1
    net = zonal_sum(cover(ZONES), s1 - s0) * PA  # L 0.315, R −0.015
    np.testing.assert_allclose(net, [0.315, -0.015], atol=1e-12)
    np.testing.assert_allclose(sum(parts[p] for p in ATTRIBUTION_PARTS), net, atol=1e-12)


def test_change_table_parts_sum_exactly_and_unknown_zone_is_nan():
    active, stock0, stock1, codes = hand_case()
    [parts] = zone_attribution([cover(ZONES)], active, stock1 - stock0, codes, PA)
    z = zones_gdf(["L", "R"], ZONES)
    t0 = year_table(["L", "R"], [1.0, 2.0], [0.1, 0.1])
    t1 = year_table(["L", "R"], [1.315, NAN], [0.1, 0.1])  # R's second-year stock unknown
    out = change_table(z, t0, t1, 2023, 2024, (np.zeros(2), np.zeros((2, 3))), attribution=parts)
    cols = [f"change_{p}_t" for p in ATTRIBUTION_PARTS]
    assert out.loc[0, "stock_change_t"] == sum(out.loc[0, c] for c in cols)  # exactly, in floating point
    assert out.loc[0, "stock_change_t"] == pytest.approx(0.315, abs=1e-12)
    assert out.loc[0, "change_other_unobserved_t"] == 0.0
    # an unknown stock in either year: the change and every part unknown, never 0 or a difference of fills
    assert out.loc[1, ["stock_change_t", *cols, "change_other_unobserved_t"]].isna().all()


def test_estimate_recorder_keeps_the_estimates_of_the_pass():
    active = np.array([2, 5, 7, 11])
    est = np.arange(16, dtype=float) * 1.5
    rec = EstimateRecorder(lambda idx: (est[idx], np.zeros((3, idx.size))), active)
    with pytest.raises(RuntimeError, match="1 active pixel"):
        rec(active[:3])
        rec.estimates()
    rec(active[3:])
    np.testing.assert_array_equal(rec.estimates(), [3.0, 7.5, 10.5, 16.5])
    with pytest.raises(ValueError, match="outside the active pixels"):
        rec(np.array([3]))


def test_attribution_raster_bands():
    active, stock0, stock1, codes = hand_case()
    change = stock1 - stock0
    change[3] = NAN  # the map's change is NaN where a year's carbon is unobserved
    out = attribution_raster(codes, change, active, GRID.shape)
    assert out.shape == (2, 4, 4) and out.dtype == np.float32
    assert out[0, 0].tolist()[:3] == [1.0, 2.0, 3.0] and np.isnan(out[0, 1, 3]) and np.isnan(out[1, 0, 3])
    assert out[1, 1, 0] == 30.0 and out[1, 2, 0] == 10.0
    assert (out[:, 3] == 0).all() and (out[:, 2, 1:] == 0).all()  # untyped in both years: other, no change


# --- sink space and lost patches ------------------------------------------------------------------


def test_sink_space_per_pixel():
    classes = np.array([2.0, 0.0, NAN, NAN, NAN, 0.0])
    frac = np.array([[0.0, 0.4, 1.0, 0.3, 0.0, 0.7], [0.0, 0.0, 0.0, 0.0, 0.0, 0.6]])
    # vegetated 1; bare but 0.4 typed; unobserved but wholly typed 1; unobserved partly typed unknown; untyped
    # unknown; two types over 1.3 of the pixel count at most the whole pixel
    space = sink_space(classes, frac)
    assert space.dtype == np.float32  # the fractions' precision: a grid-sized array per year
    np.testing.assert_array_equal(space, np.array([1.0, 0.4, 1.0, NAN, NAN, 1.0], np.float32))
    # without green-space types (one pseudo-type over all land) only vegetation counts
    np.testing.assert_array_equal(sink_space(classes, frac, typed_land=False), [1.0, 0.0, NAN, NAN, NAN, 0.0])


# Lost-space case, classes of both years (one type; typed fraction in brackets):
#   year 0:  1  1   1  0        year 1:  0 0 0 0
#            1  0[.5] 3  0               0 0 3 0
#            0  0   0  0                 0 0 0 1
#           NaN 2   0  0                 0 0 0 0
# sink space lost: (0,0) 1, (0,1) 1, (1,0) 1, (1,1) 0.5 (typed land gone), (0,2) 1, (3,1) 1; (3,0) unknown in year 0;
# (2,3) gained 1. Parcels P1 = columns 0-1, P2 = columns 2-3, P3 = pixel (3,0) alone; city = everything.
L0 = np.array([[1, 1, 1, 0], [1, 0, 3, 0], [0, 0, 0, 0], [NAN, 2, 0, 0]], np.float32)
L1 = np.array([[0, 0, 0, 0], [0, 0, 3, 0], [0, 0, 0, 1], [0, 0, 0, 0]], np.float32)
LF0 = np.zeros((1, 4, 4), np.float32)
LF0[0, 1, 1] = 0.5
LF1 = np.zeros((1, 4, 4), np.float32)
PARCELS = [box(0, 0, 20, 40), box(20, 0, 40, 40), box(0, 0, 10, 10)]
CITY = [box(0, 0, 40, 40)]


def test_zone_sink_space_and_no_net_loss_by_hand():
    s0, s1 = sink_space(L0, LF0), sink_space(L1, LF1)
    [space] = zone_sink_space([cover(PARCELS)], s0, s1, PA)
    # P1: year 0 1+1+1+0.5 + (3,1) 1 = 4.5 px over the 7 pixels known in both years ((3,0) left out); year 1 none
    # P2: year 0 (0,2) + (1,2) = 2 px, year 1 (1,2) + (2,3) = 2 px: lost 1, gained 1, no net change
    # P3: nothing known in both years
    np.testing.assert_allclose(space["from_ha"], [0.045, 0.02, 0.0], atol=1e-12)
    np.testing.assert_allclose(space["to_ha"], [0.0, 0.02, 0.0], atol=1e-12)
    np.testing.assert_allclose(space["lost_ha"], [0.045, 0.01, 0.0], atol=1e-12)
    np.testing.assert_allclose(space["gained_ha"], [0.0, 0.01, 0.0], atol=1e-12)
    np.testing.assert_allclose(space["compared_ha"], [0.07, 0.08, 0.0], atol=1e-12)
    z = zones_gdf(["P1", "P2", "P3"], PARCELS)
    t = year_table(["P1", "P2", "P3"], [1.0, 1.0, 1.0], [0.1, 0.1, 0.1])
    out = change_table(z, t, t, 2023, 2024, (np.zeros(3), np.zeros((3, 2))), no_net_loss_tolerance_ha=0.005,
                       sink_space=space)
    np.testing.assert_allclose(out["sink_space_ha_2023"], [0.045, 0.02, NAN], atol=1e-12)
    np.testing.assert_allclose(out["sink_space_ha_2024"], [0.0, 0.02, NAN], atol=1e-12)
    np.testing.assert_allclose(out["sink_space_change_ha"], [-0.045, 0.0, NAN], atol=1e-12)
    np.testing.assert_allclose(out["sink_space_compared_pct"], [87.5, 100.0, 0.0], atol=1e-9)
    # P1 lost 0.045 ha > the 0.005 ha tolerance; P2 no net loss; P3 unknown (empty), never "no loss"
    assert out["no_net_loss_sink_space"].tolist() == [False, True, pd.NA]


def test_no_net_loss_sink_space_within_tolerance():
    z = zones_gdf(["a"], [box(0, 0, 40, 40)])
    t = year_table(["a"], [1.0], [0.1])
    space = {"from_ha": [0.10], "to_ha": [0.096], "lost_ha": [0.004], "gained_ha": [0.0], "compared_ha": [0.16],
             "grid_ha": [0.16]}
    out = change_table(z, t, t, 2023, 2024, (np.zeros(1), np.zeros((1, 2))), no_net_loss_tolerance_ha=0.005,
                       sink_space=space)
    assert bool(out.loc[0, "no_net_loss_sink_space"])  # −0.004 ha is within half a pixel (0.005 ha)
    out = change_table(z, t, t, 2023, 2024, (np.zeros(1), np.zeros((1, 2))), no_net_loss_tolerance_ha=0.003,
                       sink_space=space)
    assert not bool(out.loc[0, "no_net_loss_sink_space"])


def test_lost_patches_by_hand(tmp_path):
    from greensink import io

    s0, s1 = sink_space(L0, LF0), sink_space(L1, LF1)
    stock0 = np.zeros(16)
    stock1 = np.zeros(16)
    for (r, c), v in {(0, 0): 10, (0, 1): 20, (1, 0): 30, (1, 1): 4, (0, 2): 50, (3, 1): 7}.items():
        stock0[r * 4 + c] = v
    for (r, c), v in {(0, 1): 2, (0, 2): 5, (3, 1): NAN}.items():
        stock1[r * 4 + c] = v
    parcels = zones_gdf(["P1", "P2", "P3"], PARCELS)
    city = zones_gdf(["C"], CITY, level="city")
    out = lost_patches(s0, s1, stock0, stock1, [cover(CITY), cover(PARCELS)], [city, parcels], ["city", "parcel"],
                       GRID, 2023, 2024)
    # Patch A: (0,0) (0,1) (1,0) (1,1) in P1, the 2 × 2 square top left; lost 1 + 1 + 1 + 0.5 = 3.5 px = 0.035 ha,
    #   stock (10 + 20 + 30 + 4) × 0.01 = 0.64 t → 2 × 0.01 = 0.02 t: 0.62 t lost.
    # Patch B: (0,2) in P2, next to A but another parcel: its own patch; 0.5 t → 0.05 t, 0.45 t lost.
    # Patch C: (3,1) in P1, not 4-connected to A; its second-year stock unknown: carbon NaN (never 0).
    out = out.sort_values("area_ha", ascending=False).reset_index(drop=True)
    assert len(out) == 3 and out.crs == CRS
    assert out["parcel_id"].tolist() == ["P1", "P1", "P2"] or out["parcel_id"].tolist() == ["P1", "P2", "P1"]
    a = out[out["area_ha"] > 0.03].iloc[0]
    b = out[out["parcel_id"] == "P2"].iloc[0]
    c = out[(out["parcel_id"] == "P1") & (out["pixels"] == 1)].iloc[0]
    assert a["pixels"] == 4 and a["area_ha"] == pytest.approx(0.035) and a["city_id"] == "C"
    assert a["carbon_t_from"] == pytest.approx(0.64) and a["carbon_lost_t"] == pytest.approx(0.62)
    assert a.geometry.equals(box(0, 20, 20, 40))
    assert b["area_ha"] == pytest.approx(0.01) and b["carbon_lost_t"] == pytest.approx(0.45)
    assert b.geometry.equals(box(20, 30, 30, 40))
    assert c.geometry.equals(box(10, 0, 20, 10)) and np.isnan(c["carbon_lost_t"])
    assert c["co2e_lost_t"] != 0 and np.isnan(c["co2e_lost_t"])
    assert out["year_from"].tolist() == [2023] * 3 and sorted(out["patch_id"]) == [1, 2, 3]
    # written as a GeoPackage polygon layer and read back with its values
    path = io.write_table(tmp_path / "lost_patches.gpkg", out, layer="lost_patches", geometry_type="Polygon")
    back = gpd.read_file(path, layer="lost_patches")
    assert back["area_ha"].sum() == pytest.approx(0.055) and set(back["parcel_id"]) == {"P1", "P2"}


def test_lost_patches_empty_is_a_valid_layer_with_the_schema(tmp_path):
    import pyogrio

    from greensink import io

    s = sink_space(L1, LF1)
    parcels = zones_gdf(["P1", "P2", "P3"], PARCELS)
    out = lost_patches(s, s, np.zeros(16), np.zeros(16), [cover(PARCELS)], [parcels], ["parcel"], GRID, 2023, 2024)
    assert len(out) == 0
    path = io.write_table(tmp_path / "lost_patches.gpkg", out, layer="lost_patches", geometry_type="Polygon")
    info = pyogrio.read_info(path, layer="lost_patches")
    assert info["features"] == 0 and info["geometry_type"] == "Polygon" and info["crs"] == CRS
    assert list(info["fields"]) == ["patch_id", "year_from", "year_to", "parcel_id", "pixels", "area_ha",
                                    "carbon_t_from", "carbon_t_to", "carbon_lost_t", "co2e_lost_t"]


# --- the baseline demo run -------------------------------------------------------------------------


@pytest.mark.slow
def test_attribution_on_the_baseline_run(baseline_run):
    from test_workflow import YEARS

    check_change_products(baseline_run, YEARS[0], YEARS[1])


def fractions_of(run, year) -> np.ndarray:
    by_year = run / f"results/types/{year}/fractions.tif"  # green-space types given per year
    with rasterio.open(by_year if by_year.exists() else run / "results/types/fractions.tif") as src:
        return src.read()


def check_change_products(run, y0: int, y1: int) -> None:
    """The change products of the pair (y0, y1) of a finished run against the zone tables, carbon maps, class
    rasters and type fractions of both years."""
    from test_workflow import LEVELS

    folder = run / f"results/change/{y0}_{y1}"
    one_layer = not (run / f"results/types/{y0}/fractions.tif").exists()
    for level in LEVELS:
        t = pd.DataFrame(gpd.read_parquet(folder / f"zones/{level}.parquet"))  # doubles as computed (the CSV has 10 digits)
        known = t["stock_change_t"].notna()
        assert known.any(), level
        parts = sum(t[f"change_{p}_t"] for p in ATTRIBUTION_PARTS)
        # the parts add up to the net change exactly
        assert (parts[known] == t.loc[known, "stock_change_t"]).all(), level
        # ... which is the zone tables' stock difference (aggregate's own sums of the carbon per type) and the
        # sink times the years, to float32 rounding of the carbon rasters
        diff = t["carbon_t_to"] - t["carbon_t_from"]
        np.testing.assert_allclose(t.loc[known, "stock_change_t"], diff[known], rtol=1e-4, atol=1e-3, err_msg=level)
        np.testing.assert_allclose(t.loc[known, "stock_change_t"], t.loc[known, "sink_t_yr"] * (y1 - y0), rtol=1e-9,
                                   atol=1e-9, err_msg=level)
        assert (t.loc[~known, "change_gain_t"].isna()).all()
        if one_layer:  # one green-space layer for both years: no conversion, exactly
            assert (t["change_conversion_t"][known] == 0).all()
        nn = t["no_net_loss_sink_space"].dropna()
        change = t.loc[nn.index, "sink_space_change_ha"]
        assert (nn.astype(bool) == (change >= -t.loc[nn.index, "no_net_loss_tolerance_ha"])).all()
    with rasterio.open(folder / "attribution.tif") as src:
        assert src.count == 2 and src.descriptions == ("attribution_class", "stock_change_t_ha")
        codes, change = src.read(1), src.read(2)
    with rasterio.open(run / f"results/{y0}/vegetation_class.tif") as a, \
            rasterio.open(run / f"results/{y1}/vegetation_class.tif") as b:
        c0, c1 = a.read(1), b.read(1)
    with rasterio.open(run / f"results/{y0}/carbon.tif") as a, rasterio.open(run / f"results/{y1}/carbon.tif") as b:
        k0, k1 = a.read(1), b.read(1)
    assert set(np.unique(codes[np.isfinite(codes)]).tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    # band 2 is the difference of the two carbon maps (NaN where either is unobserved)
    np.testing.assert_allclose(change, k1 - k0, rtol=1e-5, atol=1e-4, equal_nan=True)
    # every gain pixel gained vegetation or canopy in the class rasters; every loss pixel lost it
    gain, loss = codes == 1, codes == 2
    assert gain.any() and loss.any()
    assert (((c0 == 0) & (c1 >= 1)) | ((c0 >= 1) & (c0 < 3) & (c1 == 3)))[gain].all()
    assert (((c0 >= 1) & (c1 == 0)) | ((c0 == 3) & (c1 >= 1) & (c1 < 3)))[loss].all()
    f0, f1 = fractions_of(run, y0), fractions_of(run, y1)
    typed = (f0.sum(axis=0) > 0) | (f1.sum(axis=0) > 0)
    unseen = np.isnan(c0) | np.isnan(c1)
    assert np.isnan(codes[unseen & typed]).all()  # typed land unobserved in either year: unknown, never 0
    assert (codes[~typed] == 0).all() and (change[~typed] == 0).all()  # no green space in either year: no stock
    patches = gpd.read_file(folder / "lost_patches.gpkg", layer="lost_patches")
    assert {f"{level}_id" for level in LEVELS} <= set(patches.columns) and len(patches) > 0
    # the lost pixels, worked out here from the class rasters and the type fractions: vegetated land counts whole,
    # other land by its typed share; unknown where unobserved and not wholly typed
    share0, share1 = np.minimum(f0.sum(axis=0), 1.0), np.minimum(f1.sum(axis=0), 1.0)
    s0, s1 = np.where(c0 >= 1, 1.0, share0), np.where(c1 >= 1, 1.0, share1)
    s0[np.isnan(c0) & (share0 < 1)], s1[np.isnan(c1) & (share1 < 1)] = np.nan, np.nan
    lost = np.where(np.isfinite(s0) & np.isfinite(s1), s0 - s1, 0.0)
    assert patches["pixels"].sum() == int((lost > 1e-6).sum())
    assert patches["area_ha"].sum() == pytest.approx(lost[lost > 1e-6].sum() * 0.01, rel=1e-6)
    # polygons along pixel edges: each polygon's area is its pixels' area; the lost space is at most that
    np.testing.assert_allclose(patches.geometry.area, patches["pixels"] * 100.0, rtol=1e-9)
    assert (patches["area_ha"] > 0).all() and (patches["area_ha"] <= patches["pixels"] * 0.01 + 1e-12).all()
    # a parcel's patches lie in it, and in its block (zone ids nest as the zones do)
    parcels = gpd.read_file(run / "results/zones/parcel.gpkg")
    inside = patches.dropna(subset=["parcel_id"]).merge(parcels[["zone_id", "parent_id"]], left_on="parcel_id",
                                                         right_on="zone_id")
    assert len(inside) > 0 and (inside["block_id"] == inside["parent_id"]).all()


def test_attribute_change_composes_the_parts():
    # the hand case above through the one call the change rule makes: same classes, parts and patches
    active, stock0, stock1, codes = hand_case()
    maps0, maps1 = stock0.copy(), stock1.copy()
    maps1[7] = NAN  # the map leaves (1,3) unfilled in the second year
    z = zones_gdf(["L", "R"], ZONES)
    att = attribute_change(C0, C1, F0, F1, active, stock0, stock1, maps0, maps1, [cover(ZONES)], [z], ["parcel"], GRID,
                           2023, 2024)
    np.testing.assert_array_equal(att.raster[0].reshape(-1)[active], codes)
    assert np.isnan(att.raster[1, 1, 3]) and att.raster[1, 1, 0] == 30.0
    np.testing.assert_allclose(att.parts[0]["gain"], [0.40, 0.0], atol=1e-12)
    np.testing.assert_allclose(att.parts[0]["other_unobserved"], [0.0, 0.01], atol=1e-12)
    # sink space: (0,1) grass → none but wholly typed G1: still sink space (typed green space), no loss there;
    # nothing of rows 0-1 is lost (typed both years), (1,3) unknown in year 0 but wholly typed: known
    assert len(att.patches) == 0 and att.space[0]["lost_ha"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(att.space[0]["compared_ha"], [0.06, 0.10], atol=1e-12)


@settings(max_examples=40)
@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_parts_add_up_to_the_zone_change_for_any_pixels(seed):
    # random classes (with unknowns), types (with untyped), stock changes (with a NaN) over the 4 × 4 grid and
    # two overlapping zones: the five parts add up to Σ coverage × change × pixel area, worked out by zonal_sum
    rng = np.random.default_rng(seed)
    c0 = rng.choice([0.0, 1.0, 2.0, 3.0, NAN], size=16)
    c1 = rng.choice([0.0, 1.0, 2.0, 3.0, NAN], size=16)
    t0, t1 = rng.integers(-1, 3, size=16), rng.integers(-1, 3, size=16)
    active = np.sort(rng.choice(16, size=int(rng.integers(1, 17)), replace=False))
    change = rng.normal(0, 10, size=active.size)
    change[rng.random(active.size) < 0.1] = NAN
    codes = attribution_classes(c0[active], c1[active], t0[active], t1[active])
    zones = [box(0, 0, 25, 40), box(5, 5, 40, 35)]
    [parts] = zone_attribution([cover(zones)], active, change, codes, PA)
    full = np.zeros(16)
    full[active] = np.nan_to_num(change)
    np.testing.assert_allclose(sum(parts[p] for p in ATTRIBUTION_PARTS), zonal_sum(cover(zones), full) * PA,
                               rtol=1e-12, atol=1e-12)
    unknown = ~np.isfinite(codes)
    np.testing.assert_array_equal(unknown, np.isnan(c0[active]) | np.isnan(c1[active]))
