"""Planning indicators on hand-built cases: park service radius, structure classes, targets per row."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from greensink.aggregate import MAX_PIECE_VERTICES, overlay_areas_m2, subdivide
from greensink.indicators import (
    park_service_columns,
    parks,
    population_coverage_pct,
    residential_coverage_pct,
    service_area,
    service_radius_m,
    union_by_component,
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


# --- overlays in time linear in the zones: the same values as intersecting every zone with the whole area ---


def _old_residential_pct(zone_geoms, residential_geoms, served):
    """Brute force, the implementation before subdivision: every zone intersected with the whole
    residential union, then with the whole service area."""
    res_in_zone = shapely.intersection(zone_geoms, shapely.union_all(np.asarray(residential_geoms, dtype=object)))
    total = shapely.area(res_in_zone)
    covered = shapely.area(shapely.intersection(res_in_zone, served))
    return np.where(total > 0, 100.0 * covered / np.where(total > 0, total, 1.0), np.nan)


def _old_population_pct(zone_geoms, population, column, served):
    """Brute force: people of every zone ∩ whole service area, every pair of polygons intersected."""
    polys = population.geometry.values
    per_m2 = population[column].to_numpy(dtype=float) / shapely.area(polys)

    def people(geoms):
        return np.array([sum(shapely.area(shapely.intersection(g, p)) * d for p, d in zip(polys, per_m2, strict=True)) for g in geoms])

    total, covered = people(zone_geoms), people(shapely.intersection(zone_geoms, served))
    return np.where(total > 0, 100.0 * covered / np.where(total > 0, total, 1.0), np.nan)


def _random_city(seed: int, n: int = 12, extent: float = 3000.0):
    """Jittered-lattice zones (plus one zone over everything and one off the city), random round parks,
    overlapping residential boxes and population blobs."""
    rng = np.random.default_rng(seed)
    step = extent / n
    nodes = np.stack(np.meshgrid(np.arange(n + 1) * step, np.arange(n + 1) * step), axis=-1)
    nodes[1:-1, 1:-1] += rng.uniform(-0.2, 0.2, (n - 1, n - 1, 2)) * step
    zones = [shapely.Polygon([nodes[i, j], nodes[i, j + 1], nodes[i + 1, j + 1], nodes[i + 1, j]])
             for i in range(n) for j in range(n)]
    zones += [shapely.box(-10, -10, extent + 10, extent + 10), shapely.box(5 * extent, 0, 6 * extent, 10)]
    parks_ = [shapely.Point(rng.uniform(0, extent, 2)).buffer(rng.uniform(20, 90)) for _ in range(25)]
    corners = rng.uniform(0, extent, (150, 2))
    residential = [shapely.box(*c, *(c + rng.uniform(10, 250, 2))) for c in corners]
    pop = gpd.GeoDataFrame({"people": rng.integers(0, 2000, 40).astype(float)},
                           geometry=[shapely.Point(rng.uniform(0, extent, 2)).buffer(rng.uniform(80, 400)) for _ in range(40)],
                           crs=CRS)
    return np.array(zones, dtype=object), parks_, residential, pop


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coverage_equals_brute_force_on_random_polygons(seed):
    zones, parks_, residential, pop = _random_city(seed)
    served = service_area(parks_)
    assert len(subdivide([served])[0]) > 1  # the service area is cut into pieces: the new path is exercised
    for new, old in ((residential_coverage_pct(zones, residential, served), _old_residential_pct(zones, residential, served)),
                     (population_coverage_pct(zones, pop, "people", served), _old_population_pct(zones, pop, "people", served))):
        np.testing.assert_array_equal(np.isnan(new), np.isnan(old))
        assert np.isnan(new[-1])  # the zone off the city: no residential land, no people -> no value
        np.testing.assert_allclose(new, old, rtol=1e-9, atol=1e-9)
        assert 0 < np.nanmin(new[:-2]) or np.nanmax(new) > 0  # not all zeros: a value someone could get wrong


def test_coverage_by_hand_with_a_service_area_of_many_vertices():
    # a 1 km square service area drawn with 4000 vertices (so it is subdivided), zones of 500 m across x -500..1500
    served = shapely.segmentize(shapely.box(0, 0, 1000, 1000), 1.0)
    assert shapely.get_num_coordinates(served) > 4 * MAX_PIECE_VERTICES
    zones = np.array([shapely.box(x, -500, x + 500, 1500) for x in (-500, 0, 500, 1000)] + [shapely.box(-500, -500, 1500, 1500)],
                     dtype=object)
    # residential: a strip x 800..1200 (half inside the square) and a block x -300..200 (200 of 500 m inside)
    residential = [shapely.box(800, 0, 1200, 100), shapely.box(-300, 900, 200, 950)]
    pct = residential_coverage_pct(zones, residential, served)
    # zone -500..0: block part x -300..0 outside -> 0 %; zone 0..500: block x 0..200 inside -> 100 %;
    # zone 500..1000: strip x 800..1000 inside -> 100 %; zone 1000..1500: strip x 1000..1200 outside -> 0 %;
    # the big zone: inside 200×100 + 200×50 = 30000 of 400×100 + 500×50 = 65000 m²
    np.testing.assert_allclose(pct, [0.0, 100.0, 100.0, 0.0, 100 * 30000 / 65000], rtol=1e-12, atol=1e-10)
    # 300 people spread over x 900..1200, y 0..100: 100 inside the square (x 900..1000), 200 outside
    pop = gpd.GeoDataFrame({"people": [300.0]}, geometry=[shapely.box(900, 0, 1200, 100)], crs=CRS)
    pp = population_coverage_pct(zones, pop, "people", served)
    assert np.isnan(pp[0]) and np.isnan(pp[1])  # no people there
    np.testing.assert_allclose(pp[2:], [100.0, 0.0, 100 / 3], rtol=1e-12, atol=1e-10)


def test_subdivide_pieces_are_small_disjoint_and_cover_the_geometry():
    rng = np.random.default_rng(7)
    blobs = shapely.union_all([shapely.Point(rng.uniform(0, 2000, 2)).buffer(rng.uniform(50, 300), quad_segs=32)
                               for _ in range(30)])
    holed = shapely.box(0, 0, 100, 100).difference(shapely.Point(50, 50).buffer(20, quad_segs=64))
    geoms = [blobs, shapely.LineString([(0, 0), (1, 1)]), shapely.Polygon(), holed,
             shapely.GeometryCollection([holed, shapely.Point(0, 0)])]
    pieces, source = subdivide(geoms, max_vertices=32)
    assert set(source.tolist()) == {0, 3, 4}  # lines, points and empty geometries give no piece
    assert shapely.get_num_coordinates(pieces).max() <= 32
    assert (shapely.get_type_id(pieces) == 3).all()  # polygons only
    for k in (0, 3, 4):
        mine = pieces[source == k]
        whole = shapely.area(geoms[k])
        assert shapely.area(mine).sum() == pytest.approx(whole, rel=1e-12)
        assert shapely.area(shapely.symmetric_difference(shapely.union_all(mine), geoms[k])) < 1e-9 * whole
        i, j = shapely.STRtree(mine).query(mine, predicate="intersects")
        off = i < j
        assert shapely.area(shapely.intersection(mine[i[off]], mine[j[off]])).sum() < 1e-9 * whole  # interiors disjoint
    assert len(pieces[source == 0]) > 10  # the blob union was cut


def test_overlay_areas_equal_every_pair_intersected():
    zones, parks_, residential, pop = _random_city(5, n=6)
    geoms = np.array([*residential[:30], shapely.union_all(residential), service_area(parks_)], dtype=object)
    m = overlay_areas_m2(zones, geoms).toarray()
    brute = shapely.area(shapely.intersection(zones[:, None], geoms[None, :]))
    np.testing.assert_allclose(m, brute, rtol=1e-9, atol=1e-9 * shapely.area(zones).max())
    assert (brute[:, -2:] > 0).sum() > 10  # the big polygons overlap many zones


def test_union_by_component_groups_polygons_that_meet():
    # two overlapping squares, a third touching the second along an edge, a lone square, a point-touching pair
    a, b, c = shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3), shapely.box(3, 1, 4, 2)
    lone = shapely.box(10, 10, 11, 11)
    p, q = shapely.box(20, 0, 21, 1), shapely.box(21, 1, 22, 2)
    out = union_by_component([lone, a, shapely.Polygon(), b, p, c, q])
    areas = sorted(shapely.area(out).round(12))
    assert areas == [1.0, 2.0, 8.0]  # 4 + 4 - 1 + 1; the lone square; the corner-touching pair as one group
    assert union_by_component([]).size == 0


@pytest.mark.parametrize("seed", [4, 5])
def test_union_by_component_equals_the_whole_union(seed):
    rng = np.random.default_rng(seed)
    disks = [shapely.Point(rng.uniform(0, 2000, 2)).buffer(rng.uniform(5, 120)) for _ in range(300)]
    groups = union_by_component(disks)
    whole = shapely.union_all(np.array(disks, dtype=object))
    assert 1 < len(groups) < len(disks)
    assert shapely.area(groups).sum() == pytest.approx(shapely.area(whole), rel=1e-12)  # interiors disjoint
    assert shapely.area(shapely.symmetric_difference(shapely.union_all(groups), whole)) < 1e-6
