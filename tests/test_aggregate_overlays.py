"""The park-service overlays of rule aggregate computed once per run, and the people per zone once per level
(issue 14 item 3): the service area, the residential groups and the service area's pieces do not depend on
the zone level, so :func:`greensink.indicators.service_overlay` makes them once and every level meets them.
The columns must be the same numbers, bit for bit, as the per-level code they replaced (copied below
verbatim as the reference), on hand-built zones of two nested levels, and run_aggregate must give the
same table columns while doing the level-independent work once."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box

from greensink import aggregate, indicators
from greensink.aggregate import run_aggregate
from greensink.indicators import (
    DEFAULT_SERVICE_RULES,
    park_service_columns,
    pieces_within,
    service_area,
    service_overlay,
    union_by_component,
)
from greensink.overlay import overlay_areas_m2, population_in_zones
from test_runners import CRS, NO_NOISE, X0, Y0, aggregate_inputs

# ----------------------------------------------------------------------------- the per-level code (commit ccdf8e2)


def reference_residential_coverage_pct(zone_geoms, residential_geoms, served):
    if len(residential_geoms) == 0:
        return np.full(len(zone_geoms), np.nan)
    residential = union_by_component(residential_geoms)  # overlaps counted once; disjoint groups
    total = _row_sums(overlay_areas_m2(zone_geoms, residential))
    covered = _row_sums(overlay_areas_m2(zone_geoms, pieces_within(residential, served)[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 100.0 * covered / np.where(total > 0, total, 1.0), np.nan)


def reference_population_coverage_pct(zone_geoms, population, column, served):
    people = population_in_zones(zone_geoms, population, column)
    polys = population.geometry.values
    poly_area = shapely.area(polys)
    per_m2 = np.where(poly_area > 0, population[column].to_numpy(dtype=float) / np.where(poly_area > 0, poly_area, 1.0), 0.0)
    pieces, source = pieces_within(polys, served)  # each population polygon's part inside the service area
    covered = np.asarray(overlay_areas_m2(zone_geoms, pieces) @ per_m2[source]).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(people > 0, 100.0 * covered / np.where(people > 0, people, 1.0), np.nan)


def _row_sums(matrix):
    return np.asarray(matrix.sum(axis=1)).ravel()


def reference_park_service_columns(zones, park_geoms, rules=DEFAULT_SERVICE_RULES, population=None,
                                   population_column=None, residential=None):
    served = service_area(park_geoms, rules)
    geoms = zones.geometry.values
    nan = np.full(len(zones), np.nan)
    return {
        "park_service_population_pct": (reference_population_coverage_pct(geoms, population, population_column, served)
                                        if population is not None and population_column else nan),
        "park_service_residential_pct": (reference_residential_coverage_pct(geoms, residential.geometry.values, served)
                                         if residential is not None else nan),
    }


# ----------------------------------------------------------------------------- hand-built city of two levels


def two_level_city(seed: int, extent: float = 4000.0):
    """Districts (2 × 2) and blocks (8 × 8 jittered, nested in them), plus one block off the city; parks of
    0.1-3 ha (some below every rule), overlapping residential boxes and overlapping population blobs."""
    rng = np.random.default_rng(seed)
    n = 8
    step = extent / n
    nodes = np.stack(np.meshgrid(np.arange(n + 1) * step, np.arange(n + 1) * step), axis=-1)
    inner = np.ones((n + 1, n + 1), bool)
    inner[[0, n // 2, n], :] = inner[:, [0, n // 2, n]] = False  # district edges stay straight: blocks nest
    nodes[inner] += rng.uniform(-0.2, 0.2, (int(inner.sum()), 2)) * step
    blocks = [shapely.Polygon([nodes[i, j], nodes[i, j + 1], nodes[i + 1, j + 1], nodes[i + 1, j]])
              for i in range(n) for j in range(n)] + [box(3 * extent, 0, 3 * extent + 100, 100)]
    half = extent / 2
    districts = [box(x, y, x + half, y + half) for y in (0, half) for x in (0, half)]
    levels = {"district": gpd.GeoDataFrame(geometry=districts, crs=CRS),
              "block": gpd.GeoDataFrame(geometry=blocks, crs=CRS)}
    parks = [shapely.Point(rng.uniform(0, extent, 2)).buffer(rng.uniform(18, 100)) for _ in range(30)]
    corners = rng.uniform(0, extent, (120, 2))
    residential = gpd.GeoDataFrame(geometry=[box(*c, *(c + rng.uniform(20, 300, 2))) for c in corners], crs=CRS)
    population = gpd.GeoDataFrame({"people": rng.integers(0, 3000, 30).astype(float)},
                                  geometry=[shapely.Point(rng.uniform(0, extent, 2)).buffer(rng.uniform(100, 500))
                                            for _ in range(30)], crs=CRS)
    return levels, parks, residential, population


RULES = ({"min_area_m2": 20000.0, "radius_m": 800.0}, {"min_area_m2": 3000.0, "radius_m": 250.0})


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("rules", [DEFAULT_SERVICE_RULES, RULES])
def test_one_overlay_for_every_level_gives_the_per_level_columns_bit_for_bit(seed: int, rules) -> None:
    levels, parks, residential, population = two_level_city(seed)
    once = service_overlay(parks, rules, population, "people", residential)
    assert len(once.residential_served) > 0 and len(once.population_served) > 0
    for level, zones in levels.items():
        people = population_in_zones(zones.geometry.values, population, "people")
        got = park_service_columns(zones, parks, rules, population, "people", residential, overlay=once, people=people)
        ref = reference_park_service_columns(zones, parks, rules, population, "people", residential)
        assert list(got) == list(ref)  # the same columns in the same order
        for name, values in ref.items():
            assert got[name].dtype == values.dtype and got[name].shape == (len(zones),)
            np.testing.assert_array_equal(got[name], values)  # bit for bit, NaN in the same zones
            inside = values[np.isfinite(values)]
            assert ((inside > 0) & (inside < 100)).any(), (level, name)  # partly served zones: not all 0 or 100
        if level == "block":
            assert np.isnan(got["park_service_population_pct"][-1]) and np.isnan(got["park_service_residential_pct"][-1])
        # without the shared parts the function computes them itself: the same numbers again
        alone = park_service_columns(zones, parks, rules, population, "people", residential)
        for name, values in ref.items():
            np.testing.assert_array_equal(alone[name], values)


def test_overlay_without_inputs_leaves_the_columns_unknown() -> None:
    levels, parks, residential, population = two_level_city(3)
    zones = levels["block"]
    for pop, res in ((None, None), (population, None), (None, residential), (population, residential.iloc[:0])):
        got = park_service_columns(zones, parks, DEFAULT_SERVICE_RULES, pop, "people", res,
                                   overlay=service_overlay(parks, DEFAULT_SERVICE_RULES, pop, "people", res))
        ref = reference_park_service_columns(zones, parks, DEFAULT_SERVICE_RULES, pop, "people", res)
        for name, values in ref.items():
            np.testing.assert_array_equal(got[name], values)
        assert np.isnan(got["park_service_residential_pct"]).all() == (res is None or len(res) == 0)
        assert np.isnan(got["park_service_population_pct"]).all() == (pop is None)


# ----------------------------------------------------------------------------- rule aggregate


class Counter:
    """Wraps a real function and counts its calls (the function itself runs)."""

    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def test_run_aggregate_overlays_once_per_run_and_people_once_per_level(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    inp = aggregate_inputs(tmp_path)
    # homes over x 5-25 m of the 30 × 20 m city; the G1 park is x 0-10 m (200 m²): with a 5 m radius for
    # parks of 100 m² or more it serves x < 15 m over the zones' whole height
    homes = tmp_path / "residential.gpkg"
    gpd.GeoDataFrame(geometry=[box(X0 + 5, Y0, X0 + 25, Y0 + 20)], crs=CRS).to_file(homes)
    rules = [{"min_area_m2": 100.0, "radius_m": 5.0}]
    served_calls = Counter(indicators.service_area)
    people_calls = Counter(aggregate.population_in_zones)
    monkeypatch.setattr(indicators, "service_area", served_calls)
    for module in (aggregate.run, aggregate.table):  # the finish step and the zone table call it
        monkeypatch.setattr(module, "population_in_zones", people_calls)
    monkeypatch.setattr(indicators, "population_in_zones", Counter(indicators.population_in_zones))
    paths = [tmp_path / "out" / "city.parquet", tmp_path / "out" / "block.parquet"]
    gs = {"type_column": "type", "park_types": ["G1"], "types": {"G1": "park"}}
    tables = run_aggregate(inp["zones"], inp["coverage"], inp["grid"], inp["rasters"], inp["fractions"],
                           inp["greenspace"], inp["models_json"], inp["predictors"], None, paths, year=2024,
                           levels=["city", "block"], types=["G1"], greenspace_config=gs, seed=1,
                           min_observed_pct=40.0, uncertainty=NO_NOISE, population=inp["population"],
                           population_config={"column": "people"}, residential=homes, park_service=rules)
    assert served_calls.calls == 1  # once for the run, not once per level
    assert people_calls.calls == 2  # once per level, not twice
    assert indicators.population_in_zones.calls == 0  # the coverage takes the table's people

    city, block = tables["city"].iloc[0], tables["block"].set_index("zone_id")
    # by hand: homes x 5-15 of 5-25 served (city 50 %), A (x 0-10): 5-10 all served, B (x 10-30): 10-15 of 10-25
    assert city["park_service_residential_pct"] == pytest.approx(50.0, rel=1e-12)
    assert block.loc["A", "park_service_residential_pct"] == pytest.approx(100.0, rel=1e-12)
    assert block.loc["B", "park_service_residential_pct"] == pytest.approx(100 / 3, rel=1e-12)
    # 60 people evenly over x 0-30: x < 15 served -> city 30 of 60, A 20 of 20, B 10 of 40
    assert city["park_service_population_pct"] == pytest.approx(50.0, rel=1e-12)
    assert block.loc["A", "park_service_population_pct"] == pytest.approx(100.0, rel=1e-12)
    assert block.loc["B", "park_service_population_pct"] == pytest.approx(25.0, rel=1e-12)

    # the written tables hold the per-level code's numbers, bit for bit
    pop, res = gpd.read_file(inp["population"]), gpd.read_file(homes)
    park = gpd.read_file(inp["greenspace"]).geometry.values
    for path, zone_path in zip(paths, inp["zones"], strict=True):
        written, zones = gpd.read_parquet(path), gpd.read_file(zone_path)
        ref = reference_park_service_columns(zones, park, rules, pop, "people", res)
        for name, values in ref.items():
            np.testing.assert_array_equal(written[name].to_numpy(), values)
        np.testing.assert_array_equal(written["population"].to_numpy(),
                                      population_in_zones(zones.geometry.values, pop, "people"))
