"""Planning indicators on hand-built cases: park service radius, structure classes, targets per row."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from greensink.indicators import (
    park_service_columns,
    parks,
    population_coverage_pct,
    residential_coverage_pct,
    service_area,
    service_radius_m,
)
from greensink.targets import annotate
from greensink.vegetation import class_mask, structure_classes

CRS = "EPSG:32651"


def test_service_radius_by_park_size():
    # >= 5000 m² -> 500 m; 2000-5000 m² -> 300 m; < 2000 m² -> not counted
    assert service_radius_m(np.array([6000.0, 5000.0, 4999.0, 2000.0, 1999.0])).tolist() == [500, 500, 300, 300, 0]


def test_a_6000_m2_park_covers_residential_land_within_500_m_and_not_beyond():
    park = shapely.box(0, 0, 60, 100)  # 6000 m² -> serves 500 m from its edge
    near = shapely.box(400, 0, 540, 100)  # 340-480 m east of the park edge: inside
    far = shapely.box(600, 0, 700, 100)  # 540-640 m from the edge: outside
    half = shapely.box(500, 0, 620, 100)  # 440-560 m: the part up to x = 560 is inside (60 of 120 m)
    zones = np.array([shapely.box(300, -50, 800, 150)] * 3, dtype=object)
    served = service_area([park])
    pct = [residential_coverage_pct(zones[:1], [g], served)[0] for g in (near, far, half)]
    assert pct[0] == pytest.approx(100.0)
    assert pct[1] == pytest.approx(0.0)
    # the buffer's rounded ends do not matter here: the strip spans y 0-100 like the park
    assert pct[2] == pytest.approx(50.0, abs=0.01)


def test_a_3000_m2_park_serves_only_300_m():
    park = shapely.box(0, 0, 30, 100)  # 3000 m² -> 300 m
    res = shapely.box(330, 0, 430, 100)  # 300-400 m from the edge: none covered
    zone = np.array([shapely.box(0, -100, 1000, 200)], dtype=object)
    assert residential_coverage_pct(zone, [res], service_area([park]))[0] == pytest.approx(0.0, abs=1e-9)


def test_small_parks_serve_nothing_and_adjacent_polygons_count_as_one_park():
    a, b = shapely.box(0, 0, 30, 50), shapely.box(30, 0, 60, 50)  # 1500 m² each, touching: one 3000 m² park
    assert len(parks([a, b])) == 1
    assert service_area([a]).is_empty  # 1500 m² alone: below every rule
    assert not service_area([a, b]).is_empty


def test_population_coverage_and_no_people_gives_nan():
    park = shapely.box(0, 0, 100, 100)  # 10000 m² -> 500 m
    pop = gpd.GeoDataFrame({"people": [1000.0, 0.0]}, geometry=[shapely.box(500, 0, 700, 100), shapely.box(2000, 0, 2100, 100)], crs=CRS)
    zones = np.array([shapely.box(450, -50, 750, 150), shapely.box(1900, -50, 2200, 150)], dtype=object)
    pct = population_coverage_pct(zones, pop, "people", service_area([park]))
    # people spread evenly over x 500-700; the service area reaches x = 600: half of them
    assert pct[0] == pytest.approx(50.0, abs=0.01)
    assert np.isnan(pct[1])  # no people: no value, not 0 and not infinity


def test_park_service_columns_are_nan_when_not_configured():
    zones = gpd.GeoDataFrame({"zone_id": ["a"]}, geometry=[shapely.box(0, 0, 10, 10)], crs=CRS)
    cols = park_service_columns(zones, [shapely.box(0, 0, 100, 100)])
    assert np.isnan(cols["park_service_population_pct"]).all() and np.isnan(cols["park_service_residential_pct"]).all()


def test_structure_classes_by_thresholds():
    ndvi = np.array([[0.1, 0.2, 0.34], [0.35, 0.49, 0.5], [0.9, np.nan, -0.3]], dtype=np.float32)
    c = structure_classes(ndvi, 0.2, 0.35, 0.5)
    assert c.dtype == np.float32 and np.isnan(c[2, 1])
    assert np.nan_to_num(c, nan=-1).tolist() == [[0, 1, 1], [2, 2, 3], [3, -1, 0]]
    m = class_mask(c, (2, 3))
    assert np.isnan(m[2, 1]) and m[1].tolist() == [1, 1, 1] and m[0].tolist() == [0, 0, 0]


def test_structure_thresholds_out_of_order_are_refused():
    with pytest.raises(Exception, match="vegetation ≤ shrub ≤ tree"):
        structure_classes(np.zeros((2, 2)), 0.2, 0.6, 0.5)


def test_targets_annotate_every_zone_row():
    table = pd.DataFrame({"zone_id": ["b", "a", "c"], "name": ["B", "A", "C"], "green_coverage_pct": [45.0, 30.0, np.nan]})
    goals = [{"level": "district", "indicator": "green_coverage_pct", "op": ">=", "value": 40},
             {"level": "city", "indicator": "green_coverage_pct", "op": ">=", "value": 99}]
    out = annotate(table, "district", goals)
    assert out["zone_id"].tolist() == ["b", "a", "c"]  # row order kept
    assert out["target_green_coverage_pct"].tolist() == [40, 40, 40]
    met = out["target_green_coverage_pct_met"]
    assert met.iloc[0] is np.True_ or met.iloc[0] == True  # noqa: E712
    assert met.iloc[1] == False  # noqa: E712
    assert pd.isna(met.iloc[2])  # no value: neither met nor missed
    np.testing.assert_allclose(out["target_green_coverage_pct_gap"].to_numpy()[:2], [5.0, -10.0])  # value - target
