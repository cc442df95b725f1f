"""Tests of greensink.zoning: the importance overlay (scores, weights, classes), area and carbon per class and
zone, the canopy-gap arithmetic, the potential space with and without each layer, and the user layers on the grid.

Grid: 10 m pixels (0.01 ha each) in EPSG:32651, top-left corner (X0, Y1) = (500 000, 3 500 020); pixel
(row, col) spans x in [X0 + 10 col, X0 + 10 col + 10] and y in [Y1 − 10 row − 10, Y1 − 10 row]. Zones are
boxes, covered by the real coverage engine (greensink.coverage), so their matrices are exact.
Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import copy
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import box

from greensink import config
from greensink.coverage import coverage_matrix
from greensink.grid import Grid
from greensink.tiers import default_table
from greensink.zoning import (
    CLASS_NODATA,
    Density,
    Factor,
    canopy_gap_run,
    class_table,
    gap_table,
    importance_classes,
    importance_run,
    normalised_weights,
    polygon_share,
    potential_run,
    raster_share,
    reclassify,
    type_scores,
    union_share,
    weighted_score,
)
from greensink.zoning.canopy_gap import CLOSABLE, MET, NO_TARGET, SHORT, SHORT_OPEN_UNKNOWN, UNKNOWN
from greensink.zoning.settings import planting_density, zoning_density
from test_project import own  # noqa: F401 - the small own-data project fixture

X0, Y1 = 500_000.0, 3_500_020.0
CRS = "EPSG:32651"
NAN = np.nan


def grid(rows: int = 2, cols: int = 2) -> Grid:
    return Grid(CRS, Affine(10.0, 0.0, X0, 0.0, -10.0, Y1), width=cols, height=rows)


def px_box(r0: float, c0: float, r1: float, c1: float):
    """The box of pixel rows r0..r1 and columns c0..c1 (fractions allowed)."""
    return box(X0 + 10 * c0, Y1 - 10 * r1, X0 + 10 * c1, Y1 - 10 * r0)


def zones_of(*geoms, level: str = "block") -> gpd.GeoDataFrame:
    n = len(geoms)
    return gpd.GeoDataFrame({"zone_id": [f"Z{i}" for i in range(n)], "parent_id": ["C"] * n, "level": [level] * n,
                             "name": [f"zone {i}" for i in range(n)]}, geometry=list(geoms), crs=CRS)


def matrix(zones: gpd.GeoDataFrame, g: Grid):
    return coverage_matrix(list(zones.geometry.values), g.transform, g.shape)


# ----------------------------------------------------------------------------- importance overlay


def test_reclassify_breaks_lower_bound_inclusive():
    f = Factor("h", 1.0, layer="height", breaks=(5.0, 12.0), scores=(1.0, 2.0, 3.0))
    got = reclassify(np.array([NAN, 4.99, 5.0, 11.99, 12.0, 40.0]), f)
    # < 5 -> 1; 5 <= v < 12 -> 2; >= 12 -> 3; NaN stays NaN (no score)
    np.testing.assert_array_equal(got, [NAN, 1, 2, 2, 3, 3])


def test_reclassify_classes_and_nodata_score():
    f = Factor("v", 1.0, layer="vegetation_class", classes={"0": 1.0, "3": 3.0})
    np.testing.assert_array_equal(reclassify(np.array([0, 1, 3, NAN]), f), [1, NAN, 3, NAN])  # 1 unlisted: no score
    g = Factor("v", 1.0, layer="vegetation_class", classes={"0": 1.0, "3": 3.0}, nodata_score=0.5)
    np.testing.assert_array_equal(reclassify(np.array([0, 1, 3, NAN]), g), [1, 0.5, 3, 0.5])


def test_type_scores_weight_fractions():
    # pixel a: all G1 (3); b: half G1, half untyped (none 1) -> 2; c: 0.25 XG (2) + 0.75 G2 (3) -> 2.75; d: untyped -> 1
    fractions = np.array([[[1.0, 0.5, 0.0, 0.0]], [[0.0, 0.0, 0.25, 0.0]], [[0.0, 0.0, 0.75, 0.0]]], dtype=np.float32)
    got = type_scores(fractions, ["G1", "XG", "G2"], {"G1": 3, "XG": 2, "G2": 3, "none": 1})
    np.testing.assert_allclose(got, [[3.0, 2.0, 2.75, 1.0]], rtol=1e-6)


def test_weights_normalised_and_score_classes_by_hand():
    factors = [Factor("a", 0.3, layer="x", breaks=(1,), scores=(1, 3)), Factor("b", 0.2, layer="x", breaks=(1,), scores=(1, 3)),
               Factor("c", 0.3, layer="x", breaks=(1,), scores=(1, 3))]
    w = normalised_weights(factors)
    assert w == pytest.approx({"a": 0.375, "b": 0.25, "c": 0.375})
    scores = {"a": np.array([3.0, 3.0, 1.0, 2.0, NAN]), "b": np.array([3.0, 1.0, 1.0, 2.0, 3.0]),
              "c": np.array([3.0, 2.0, 1.0, 1.0, 3.0])}
    s = weighted_score(scores, w)
    # 3; 0.375*3 + 0.25*1 + 0.375*2 = 2.125; 1; 0.375*2 + 0.25*2 + 0.375*1 = 1.625; NaN (a missing)
    np.testing.assert_allclose(s, [3.0, 2.125, 1.0, 1.625, NAN], rtol=1e-6)
    # breaks [1.8, 2.4]: 3 -> 极重要 3; 2.125 -> 重要 2; 1 and 1.625 -> 一般 1; NaN -> 255
    np.testing.assert_array_equal(importance_classes(s, [1.8, 2.4]), [3, 2, 1, 1, CLASS_NODATA])
    # a score exactly on a break belongs to the class above
    np.testing.assert_array_equal(importance_classes(np.array([1.8, 2.4]), [1.8, 2.4]), [2, 3])


def test_importance_run_drops_height_without_chm_and_renormalises():
    g = grid(1, 3)
    zones = zones_of(px_box(0, 0, 1, 3))
    m = matrix(zones, g)
    vc = np.array([[3.0, 1.0, NAN]], dtype=np.float32)
    carbon = np.array([[30.0, 5.0, NAN]], dtype=np.float32)
    layers = {"vegetation_class": vc, "carbon": carbon, "height": np.full((1, 3), NAN, np.float32)}
    factors = [Factor("veg", 0.3, layer="vegetation_class", classes={"0": 1, "1": 1, "2": 2, "3": 3}),
               Factor("carbon", 0.3, layer="carbon", breaks=(10, 25), scores=(1, 2, 3)),
               Factor("height", 0.4, layer="height", breaks=(5, 12), scores=(1, 2, 3))]
    classes, tags, tables, summary = importance_run(factors, [1.8, 2.4], layers, np.zeros((1, 1, 3), np.float32), ["G1"],
                                                    typed_land=True, chm=False, levels=["block"], zones=[zones],
                                                    matrices=[m], grid=g)
    # height dropped: veg and carbon 0.5 each; pixel 0: 3, 3 -> 3 (极重要); pixel 1: 1, 1 -> 1; pixel 2 unobserved -> 255
    np.testing.assert_array_equal(classes, [[3, 1, CLASS_NODATA]])
    assert "height" in summary["dropped_factors"] and "dropped_height" in tags
    assert {f["name"]: f["weight_normalised"] for f in summary["factors"]} == pytest.approx({"veg": 0.5, "carbon": 0.5})
    t = tables["block"].iloc[0]
    assert t["area_ha_extremely_important"] == pytest.approx(0.01)
    assert t["carbon_t_extremely_important"] == pytest.approx(0.30)  # 30 t C/ha x 0.01 ha
    assert t["observed_ha"] == pytest.approx(0.02)  # the NaN-class pixel is unobserved


def test_class_table_area_and_carbon_per_class_per_zone_by_hand():
    g = grid(2, 4)
    # zone 0 covers columns 0-1 whole and half of column 2 (x 0..25 m); zone 1 the other half of column 2 and column 3
    zones = zones_of(px_box(0, 0, 2, 2.5), px_box(0, 2.5, 2, 4))
    m = matrix(zones, g)
    classes = np.array([[3, 3, 2, 1], [2, 1, 1, CLASS_NODATA]], dtype=np.uint8)
    carbon = np.array([[40, 20, 10, 2], [12, 4, NAN, 0]], dtype=np.float32)
    observed = np.ones((2, 4), dtype=bool)
    t = class_table(zones, m, classes, carbon, observed, g.pixel_area_ha)
    z0, z1 = t.iloc[0], t.iloc[1]
    # zone 0: class 3 = (0,0), (0,1): 0.02 ha, carbon (40 + 20) x 0.01 = 0.6 t
    assert z0["area_ha_extremely_important"] == pytest.approx(0.02)
    assert z0["carbon_t_extremely_important"] == pytest.approx(0.6)
    # class 2 = (0,2) half + (1,0) whole: 0.015 ha, carbon 10 x 0.005 + 12 x 0.01 = 0.17 t
    assert z0["area_ha_important"] == pytest.approx(0.015)
    assert z0["carbon_t_important"] == pytest.approx(0.17)
    # class 1 = (1,1) whole + (1,2) half: 0.015 ha; (1,2) has unknown carbon -> NaN, never a partial sum
    assert z0["area_ha_general"] == pytest.approx(0.015)
    assert np.isnan(z0["carbon_t_general"])
    assert z0["share_pct_extremely_important"] == pytest.approx(100 * 0.02 / 0.05)
    # zone 1: (0,2) half class 2, (0,3) class 1, (1,2) half class 1, (1,3) no class (observed but unclassified)
    assert z1["area_ha_important"] == pytest.approx(0.005)
    assert z1["area_ha_general"] == pytest.approx(0.015)
    assert z1["area_ha_extremely_important"] == 0.0
    assert z1["carbon_t_extremely_important"] == 0.0  # no land of the class: 0 t, known
    assert z1["unclassified_ha"] == pytest.approx(0.01)
    assert z1["classified_ha"] + z1["unclassified_ha"] == pytest.approx(z1["observed_ha"])


# ----------------------------------------------------------------------------- canopy gap

D = Density(20.0, "test density")


def gap_case(target, open_share=None):
    """One zone of 2 x 2 pixels (0.04 ha): a tree pixel (class 3, canopy 1), two grass pixels (class 1) and one
    bare pixel (class 0). Canopy cover 25 %; vegetated land without trees 2 px = 0.02 ha; carbon 40, 4, 6, 0 t C/ha."""
    g = grid()
    zones = zones_of(px_box(0, 0, 2, 2))
    classes = np.array([[3, 1], [1, 0]], dtype=np.float32)
    canopy = np.array([[1, 0], [0, 0]], dtype=np.float32)
    carbon = np.array([[40, 4], [6, 0]], dtype=np.float32)
    return gap_table(zones, matrix(zones, g), g.pixel_area_ha, classes, canopy, carbon, open_share, target, D).iloc[0]


def test_gap_closable_on_vegetated_land():
    t = gap_case(30.0)
    assert t["canopy_cover_pct"] == pytest.approx(25.0)
    assert t["canopy_gap_pct"] == pytest.approx(5.0)
    assert t["planting_needed_ha"] == pytest.approx(0.002)  # 5 % of 0.04 ha
    assert t["plantable_vegetated_ha"] == pytest.approx(0.02)
    assert np.isnan(t["plantable_open_ha"]) and np.isnan(t["plantable_ha"])  # not computed: never 0
    assert t["planting_ha"] == pytest.approx(0.002)
    assert t["gap_status"] == CLOSABLE
    assert t["carbon_added_t"] == pytest.approx(0.04)  # 0.002 ha x 20 t C/ha
    # plantable land now: (4 + 6) / 2 px = 5 t C/ha -> net 0.002 x (20 - 5) = 0.03 t
    assert t["plantable_carbon_t_ha"] == pytest.approx(5.0)
    assert t["carbon_added_net_t"] == pytest.approx(0.03)


def test_gap_short_with_and_without_open_land():
    t = gap_case(80.0)  # needs 55 % of 0.04 = 0.022 ha > 0.02 ha of vegetated land
    assert t["planting_needed_ha"] == pytest.approx(0.022)
    assert t["planting_ha"] == pytest.approx(0.02)
    assert t["planting_shortfall_ha"] == pytest.approx(0.002)
    assert t["gap_status"] == SHORT_OPEN_UNKNOWN
    # open land over the bare pixel and, already counted as vegetated, half a grass pixel: only the bare pixel adds
    open_share = np.array([[0, 0.5], [0, 1.0]], dtype=np.float32)
    t = gap_case(80.0, open_share)
    assert t["plantable_open_ha"] == pytest.approx(0.01)
    assert t["plantable_ha"] == pytest.approx(0.03)
    assert t["planting_ha"] == pytest.approx(0.022)
    assert t["gap_status"] == CLOSABLE
    t = gap_case(95.0, open_share)  # needs 70 % = 0.028 ha of 0.03: closable; 100 % needs 0.03 = exactly all
    assert t["gap_status"] == CLOSABLE
    t = gap_case(100.0, np.array([[0, 0], [0, 0.5]], dtype=np.float32))  # 0.03 needed, 0.025 plantable
    assert t["gap_status"] == SHORT
    assert t["planting_shortfall_ha"] == pytest.approx(0.005)


def test_gap_met_no_target_and_unknown():
    t = gap_case(20.0)
    assert t["gap_status"] == MET and t["planting_ha"] == 0.0 and t["carbon_added_t"] == 0.0
    t = gap_case(None)
    assert t["gap_status"] == NO_TARGET and np.isnan(t["planting_needed_ha"])
    g = grid()
    zones = zones_of(px_box(0, 0, 2, 2))
    nan = np.full((2, 2), NAN, np.float32)
    u = gap_table(zones, matrix(zones, g), g.pixel_area_ha, nan, nan, nan, None, 30.0, D).iloc[0]
    assert u["gap_status"] == UNKNOWN and np.isnan(u["canopy_cover_pct"]) and np.isnan(u["planting_ha"])


def test_canopy_target_per_level():
    g = grid()
    zc, zb = zones_of(px_box(0, 0, 2, 2), level="city"), zones_of(px_box(0, 0, 2, 2))
    classes = np.array([[3, 1], [1, 0]], dtype=np.float32)
    canopy = np.array([[1, 0], [0, 0]], dtype=np.float32)
    tables, summary = canopy_gap_run(["city", "block"], [zc, zb], [matrix(zc, g), matrix(zb, g)], g, classes, canopy,
                                     np.zeros((2, 2), np.float32), None, {"block": 50}, D)
    assert tables["city"]["gap_status"].iloc[0] == NO_TARGET
    assert tables["block"]["planting_needed_ha"].iloc[0] == pytest.approx(0.01)  # 25 % of 0.04 ha
    assert summary["levels"]["city"]["canopy_target_pct"] is None
    assert summary["not_computed"]  # the open land, named
    json.dumps(summary)


# ----------------------------------------------------------------------------- potential space


def potential_case(with_construction: bool, with_cropland: bool, with_red_line: bool):
    """2 x 2 pixels, one zone. Construction: the left column (polygon). Cropland: the top-right pixel as a 5 m
    raster mask, plus half of the top-left pixel (overlapping construction: counted once). Red line: the bottom
    half of the bottom-right pixel (polygon). Carbon 10, 30, 0, 8 t C/ha; density 20 t C/ha."""
    g = grid()
    zones = zones_of(px_box(0, 0, 2, 2))
    shares = {"construction": polygon_share([px_box(0, 0, 2, 1)], g) if with_construction else None,
              "cropland": None, "red_line": polygon_share([px_box(1.5, 1, 2, 2)], g) if with_red_line else None}
    parts = []
    if with_cropland:
        fine = np.zeros((4, 4), dtype=np.uint8)  # 5 m pixels over the same 20 m x 20 m
        fine[0:2, 2:4] = 7  # top-right 10 m pixel, all cropland
        fine[0, 0:2] = 7  # half of the top-left pixel
        shares["cropland"] = raster_share(fine, Affine(5.0, 0, X0, 0, -5.0, Y1), CRS, None, [7], g)
        parts.append(shares["cropland"])
    polygons = ([px_box(0, 0, 2, 1)] if with_construction else []) + ([px_box(1.5, 1, 2, 2)] if with_red_line else [])
    if polygons:
        parts.insert(0, polygon_share(polygons, g))
    excluded = union_share(parts) if parts else None
    carbon = np.array([[10, 30], [0, 8]], dtype=np.float32)
    raster, tables, summary = potential_run(shares, excluded, carbon, Density(20.0, "t"), levels=["block"], zones=[zones],
                                            matrices=[matrix(zones, g)], grid=g)
    return raster, tables["block"].iloc[0], summary


def test_potential_without_layers_is_all_land_and_names_them():
    raster, t, summary = potential_case(False, False, False)
    assert t["potential_ha"] == pytest.approx(0.04)
    assert summary["not_subtracted"] == ["construction", "cropland", "red_line"]
    assert t["not_subtracted"] == "construction, cropland, red_line"
    assert np.isnan(t["construction_ha"]) and np.isnan(t["cropland_ha"]) and np.isnan(t["red_line_ha"])
    np.testing.assert_array_equal(raster, [[1, 1], [1, 1]])
    # added: 0.01 ha x (10, 0 (30 > 20), 20, 12) = 0.42 t; stock 0.04 x 20 = 0.8 t; now (10 + 30 + 0 + 8) x 0.01 = 0.48 t
    assert t["potential_added_t"] == pytest.approx(0.42)
    assert t["potential_stock_t"] == pytest.approx(0.8)
    assert t["current_carbon_t"] == pytest.approx(0.48)


@pytest.mark.parametrize("construction, cropland, red_line, potential_ha, added_t", [
    # construction: left column out -> right column 0.02 ha left; added (0 + 12) x 0.01 = 0.12
    (True, False, False, 0.02, 0.12),
    # cropland: top-right whole + top-left half out -> 0.025 ha; added 10 x 0.005 + 20 x 0.01 + 12 x 0.01 = 0.37
    (False, True, False, 0.025, 0.37),
    # red line: half the bottom-right pixel -> 0.035; added 0.1 + 0 + 0.2 + 12 x 0.005 = 0.36
    (False, False, True, 0.035, 0.36),
    # all: only half the bottom-right pixel is left (the top-left overlap of construction and cropland counted once)
    (True, True, True, 0.005, 0.06),
])
def test_potential_with_each_layer(construction, cropland, red_line, potential_ha, added_t):
    raster, t, summary = potential_case(construction, cropland, red_line)
    assert t["potential_ha"] == pytest.approx(potential_ha)
    assert t["excluded_ha"] == pytest.approx(0.04 - potential_ha)
    assert t["potential_added_t"] == pytest.approx(added_t)
    named = [n for n, on in (("construction", construction), ("cropland", cropland), ("red_line", red_line)) if not on]
    assert summary["not_subtracted"] == named
    if cropland:
        assert t["cropland_ha"] == pytest.approx(0.015)
    if construction and cropland and red_line:
        np.testing.assert_array_equal(raster, [[0, 0], [0, 1]])  # 0.5 of the bottom-right pixel left: >= half


def test_raster_share_nodata_is_unknown():
    g = grid(1, 1)
    fine = np.array([[1, 0], [9, 9]], dtype=np.uint8)  # 9 nodata in the bottom half
    share = raster_share(fine, Affine(5.0, 0, X0, 0, -5.0, Y1), CRS, 9, [1], g)
    # the valid half: one of two 5 m pixels in the class -> 0.5 (average over the valid part)
    assert share[0, 0] == pytest.approx(0.5)
    none = raster_share(np.full((2, 2), 9, np.uint8), Affine(5.0, 0, X0, 0, -5.0, Y1), CRS, 9, [1], g)
    assert np.isnan(none[0, 0])


def test_polygon_share_dissolves_overlaps():
    g = grid(1, 2)
    share = polygon_share([px_box(0, 0, 1, 1.5), px_box(0, 0.5, 1, 2)], g)  # overlap in the middle counted once
    np.testing.assert_allclose(share, [[1.0, 1.0]], rtol=1e-6)
    share = polygon_share([px_box(0, 0, 1, 0.5), px_box(0, 0.25, 1, 0.75)], g)
    np.testing.assert_allclose(share, [[0.75, 0.0]], rtol=1e-6)


# ----------------------------------------------------------------------------- densities and config


def test_planting_density_sources():
    table = pd.DataFrame({"type": ["G1", "XG"], "c_above": [22.0, 10.0], "c_below": [5.0, NAN]})
    assert planting_density(12.5, "G1", table, "t.csv", default_table(), "default").t_ha == 12.5
    d = planting_density(None, "G1", table, "t.csv", default_table(), "default")
    assert d.t_ha == 27.0 and "t.csv" in d.source and "G1" in d.source
    assert planting_density(None, "XG", table, "t.csv", default_table(), "default").t_ha == 10.0  # empty below: 0
    v = zoning_density({}, None, "tree_density_t_ha", table, "t.csv", default_table(), "default table")
    assert v.t_ha == pytest.approx(7.8) and "default table" in v.source  # no green-space types: VEG row
    p = zoning_density({"tree_density_t_ha": 50.0}, {"park_types": ["G1"]}, "potential_density_t_ha", table, "t.csv",
                       default_table(), "d")
    assert p.t_ha == 50.0  # potential density null: the tree density


def test_config_zoning_defaults_null_and_problems():
    cfg = config.load("config/config.yaml")
    assert cfg["zoning"]["canopy_target_pct"] == 30 and cfg["zoning"]["importance"]["class_breaks"] == [1.8, 2.4]
    off = copy.deepcopy(cfg)
    off["zoning"] = None
    assert "zoning" not in config.switch_off_nulls(config.validate(off))
    bad = copy.deepcopy(cfg)
    bad["zoning"] = {"canopy_target_pct": {"street": 30}, "construction": {"path": "a.gpkg", "raster": "b.tif"},
                     "importance": {"class_breaks": [2.5, 2.0],
                                    "factors": [{"name": "x", "weight": 1, "layer": "carbon", "breaks": [5, 1], "scores": [1, 2, 3]},
                                                {"name": "x", "weight": 1, "path": "r.tif", "layer": "ndvi", "classes": {"1": 2}}]}}
    with pytest.raises(config.ConfigError) as err:
        config.validate(bad)
    text = str(err.value)
    for part in ("['street']", "zoning.construction: give either path", "strictly ascending", "appears more than once",
                 "give either layer", "class_breaks"):
        assert part in text, part
    assert ("zoning.construction.path", "a.gpkg") in config.zoning_paths(bad)
    assert ("zoning.importance.factors[1].path", "r.tif") in config.zoning_paths(bad)


# ----------------------------------------------------------------------------- the baseline demo run


def test_baseline_zoning_outputs(baseline_run):
    import rasterio

    run = baseline_run
    years = sorted(int(p.name) for p in (run / "results").iterdir() if p.name.isdigit())
    year = years[0]
    zdir = run / f"results/{year}/zoning"
    with rasterio.open(zdir / "importance.tif") as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        assert "极重要" in src.tags()["class_3"]
    assert (zdir / "importance.qml").is_file() and (zdir / "potential.qml").is_file()
    for level in ("city", "district", "block", "parcel"):
        zt = pd.read_csv(run / f"results/{year}/zones/{level}.csv", dtype={"zone_id": str})
        imp = pd.read_csv(zdir / f"importance_{level}.csv", dtype={"zone_id": str}).set_index("zone_id").loc[zt["zone_id"]]
        observed_ha = zt["observed_pct"].to_numpy() / 100 * zt["area_ha"].to_numpy()
        classes = imp[["area_ha_extremely_important", "area_ha_important", "area_ha_general"]].sum(axis=1).to_numpy()
        np.testing.assert_allclose(classes + imp["unclassified_ha"].to_numpy(), observed_ha, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(imp["unclassified_ha"], 0.0, atol=1e-9)  # every observed demo pixel has a class
        gap = pd.read_csv(zdir / f"canopy_gap_{level}.csv", dtype={"zone_id": str}).set_index("zone_id").loc[zt["zone_id"]]
        np.testing.assert_allclose(gap["canopy_cover_pct"], zt["canopy_cover_pct"], rtol=1e-9)
        pot = pd.read_csv(zdir / f"potential_{level}.csv", dtype={"zone_id": str})
        assert (pot["not_subtracted"] == "construction, cropland, red_line").all()
    summary = json.loads((zdir / "importance.json").read_text(encoding="utf-8"))
    assert "height" in summary["dropped_factors"]  # the demo has no canopy height model


# ----------------------------------------------------------------------------- preflight of the user layers


def test_preflight_names_zoning_layer_problems(own):  # noqa: F811 - the fixture imported above
    """A missing file, a layer without a CRS, a raster far from the zones and a good layer: three problems, each
    naming the key and the file."""
    import rasterio

    from greensink import workflow as gs_workflow
    from greensink.errors import InputDataError
    from greensink.preflight import check_inputs
    from test_project import CRS as P_CRS
    from test_project import X0 as PX0
    from test_project import Y1 as PY1
    from test_project import write_yaml

    root, d = own["root"], own["root"] / "data"
    gpd.GeoDataFrame({"k": [1]}, geometry=[box(PX0, PY1 - 60, PX0 + 60, PY1)], crs=P_CRS).to_file(d / "build.gpkg")
    with pytest.warns(UserWarning, match="crs"):
        gpd.GeoDataFrame({"k": [1]}, geometry=[box(PX0, PY1 - 60, PX0 + 60, PY1)]).to_file(d / "nocrs.gpkg")
    with rasterio.open(d / "far.tif", "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8", crs=P_CRS,
                       transform=Affine(30, 0, PX0 + 90_000, 0, -30, PY1)) as dst:
        dst.write(np.ones((1, 2, 2), np.uint8))
    doc = dict(own["cfg"], zoning={"construction": {"path": "data/build.gpkg"}, "cropland": {"path": "data/nocrs.gpkg"},
                                   "red_line": {"raster": "data/far.tif"}, "open_land": {"path": "data/absent.gpkg"}})
    cfg = gs_workflow.load_project(write_yaml(root / "z.yaml", doc), base=root)
    with pytest.raises(InputDataError) as err:
        check_inputs(cfg)
    text = str(err.value)
    assert text.startswith("3 problem(s)"), text
    assert f"zoning.open_land.path: file {d / 'absent.gpkg'} does not exist" in text
    assert f"zoning.cropland.path: {d / 'nocrs.gpkg'} has no CRS" in text
    assert f"zoning.red_line.raster: {d / 'far.tif'}" in text and "does not overlap the zones" in text
    assert "build.gpkg" not in text  # the good layer passes
