"""Planning indicators that need geometry beyond pixel sums: park service-radius coverage.

A park serves the land within a walking radius of its edge. The radius depends on its size:
parks of 5000 m² or more serve 500 m, parks of 2000–5000 m² serve 300 m, smaller ones are
not counted (defaults of the indicator in the national guidance, configurable in
``indicators.park_service``). A park is a connected piece of park-type green space (adjacent
polygons are merged first). A zone's coverage is the share of its residential land, or of
its people, inside the union of the service areas; a zone with no residential land or no
people has no value (NaN), not 0.

The service area is one polygon that grows with the city. It is never intersected with every zone:
it is cut into pieces of bounded size (:func:`greensink.overlay.subdivide`), overlaid once with
the residential land and the population polygons, and the zones meet those pieces through a
spatial index, so the overlays take time linear in the number of zones (benchmarks/zone_overlays.py).
The service area and its pieces with the residential land and the population do not depend on the zones:
:func:`service_overlay` makes them once per run and every zone level meets the same pieces
(:func:`park_service_columns` with ``overlay``), with the zones' people computed once per level.
The areas are the same as intersecting each zone with the whole service area, up to rounding
(tests/test_indicators.py: coverage within 1e-9 percentage points of a brute-force shapely computation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from greensink.overlay import overlay_areas_m2, population_in_zones, subdivide

DEFAULT_SERVICE_RULES = ({"min_area_m2": 5000.0, "radius_m": 500.0}, {"min_area_m2": 2000.0, "radius_m": 300.0})


def union_by_component(geoms: Sequence) -> np.ndarray:
    """The union of ``geoms`` as one geometry per group of polygons that meet (connected components of the
    "intersects" graph, found with an STRtree): the groups' unions have disjoint interiors and together are
    ``shapely.union_all(geoms)``, but each union only sees its own group, so the time grows with the number of
    polygons, not with the size of the whole union (benchmarks/zone_overlays.py: residential land of 10⁶ zones)."""
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)]
    if len(geoms) == 0:
        return np.array([], dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    graph = sp.coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(len(geoms), len(geoms)))
    n, label = connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")
    starts = np.searchsorted(label[order], np.arange(n + 1))
    out = np.empty(n, dtype=object)
    for k in range(n):
        members = geoms[order[starts[k]:starts[k + 1]]]
        out[k] = members[0] if len(members) == 1 else shapely.union_all(members)
    return out


def parks(park_geoms: Sequence) -> np.ndarray:
    """Connected park pieces: the union of the park-type polygons split into its parts."""
    if len(park_geoms) == 0:
        return np.array([], dtype=object)
    return shapely.get_parts(union_by_component(park_geoms))


def service_radius_m(area_m2: np.ndarray, rules: Sequence[Mapping] = DEFAULT_SERVICE_RULES) -> np.ndarray:
    """Service radius of each park (m) by its area: the rule with the largest min_area_m2 it
    reaches; 0 for parks smaller than every rule."""
    radius = np.zeros(len(area_m2))
    for rule in sorted(rules, key=lambda r: r["min_area_m2"]):
        radius = np.where(np.asarray(area_m2) >= rule["min_area_m2"], rule["radius_m"], radius)
    return radius


def service_area(park_geoms: Sequence, rules: Sequence[Mapping] = DEFAULT_SERVICE_RULES):
    """Union of every counted park buffered by its service radius (shapely geometry)."""
    pieces = parks(park_geoms)
    if len(pieces) == 0:
        return shapely.Polygon()
    radius = service_radius_m(shapely.area(pieces), rules)
    keep = radius > 0
    if not keep.any():
        return shapely.Polygon()
    return shapely.union_all(shapely.buffer(pieces[keep], radius[keep], quad_segs=16))


def pieces_within(geoms: Sequence, served) -> tuple[np.ndarray, np.ndarray]:
    """The parts of each of ``geoms`` inside ``served`` as pieces of bounded size, and the index of
    the geometry each piece comes from. Both sides are cut by :func:`greensink.overlay.subdivide`
    and only pieces whose boxes meet are intersected (STRtree); the pieces' interiors are disjoint,
    so their areas add up to area(geom ∩ served)."""
    gp, gsrc = subdivide(geoms)
    served_pieces, _ = subdivide([served])
    if len(gp) == 0 or len(served_pieces) == 0:
        return np.array([], dtype=object), np.array([], dtype=np.intp)
    gi, si = shapely.STRtree(served_pieces).query(gp, predicate="intersects")
    pieces, index = subdivide(shapely.intersection(gp[gi], served_pieces[si]))
    return pieces, gsrc[gi][index]


@dataclass(frozen=True)
class ServiceOverlay:
    """What the park-service columns need that does not depend on the zones: the residential land as
    groups of polygons that meet (:func:`union_by_component`) and their pieces inside the service area,
    and the population polygons' pieces inside the service area with the people per m² of each piece's
    polygon. Built once per run by :func:`service_overlay` and met by every zone level; None where the
    input is not given."""

    residential: np.ndarray | None = None
    residential_served: np.ndarray | None = None
    population_served: np.ndarray | None = None
    served_people_per_m2: np.ndarray | None = None


def service_overlay(park_geoms: Sequence, rules: Sequence[Mapping] = DEFAULT_SERVICE_RULES,
                    population: gpd.GeoDataFrame | None = None, population_column: str | None = None,
                    residential: gpd.GeoDataFrame | None = None) -> ServiceOverlay:
    """The service area of ``park_geoms`` (:func:`service_area`) overlaid once with the residential land and
    the population polygons (:class:`ServiceOverlay`): the part of the park-service columns that is the same
    for every zone level, so a run with several levels computes it once."""
    with_people = population is not None and bool(population_column)
    if residential is None and not with_people:
        return ServiceOverlay()  # nothing to overlay: the columns are NaN
    served = service_area(park_geoms, rules)
    out = {}
    if residential is not None:
        geoms = residential.geometry.values
        nothing = np.array([], dtype=object)
        out["residential"], out["residential_served"] = (_residential_pieces(geoms, served) if len(geoms)
                                                         else (nothing, nothing))
    if with_people:
        out["population_served"], out["served_people_per_m2"] = _population_pieces(population, population_column, served)
    return ServiceOverlay(**out)


def _residential_pieces(residential_geoms: Sequence, served) -> tuple[np.ndarray, np.ndarray]:
    residential = union_by_component(residential_geoms)  # overlaps counted once; disjoint groups
    return residential, pieces_within(residential, served)[0]


def _population_pieces(population: gpd.GeoDataFrame, column: str, served) -> tuple[np.ndarray, np.ndarray]:
    polys = population.geometry.values
    poly_area = shapely.area(polys)
    per_m2 = np.where(poly_area > 0, population[column].to_numpy(dtype=float) / np.where(poly_area > 0, poly_area, 1.0), 0.0)
    pieces, source = pieces_within(polys, served)  # each population polygon's part inside the service area
    return pieces, per_m2[source]


def residential_coverage_pct(zone_geoms: np.ndarray, residential_geoms: Sequence, served) -> np.ndarray:
    """Per zone: residential area within the service area / residential area × 100 (NaN without residential land)."""
    if len(residential_geoms) == 0:
        return np.full(len(zone_geoms), np.nan)
    return _residential_pct(zone_geoms, *_residential_pieces(residential_geoms, served))


def _residential_pct(zone_geoms: np.ndarray, residential: np.ndarray, residential_served: np.ndarray) -> np.ndarray:
    total = _row_sums(overlay_areas_m2(zone_geoms, residential))
    covered = _row_sums(overlay_areas_m2(zone_geoms, residential_served))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 100.0 * covered / np.where(total > 0, total, 1.0), np.nan)


def population_coverage_pct(zone_geoms: np.ndarray, population: gpd.GeoDataFrame, column: str, served,
                            people: np.ndarray | None = None) -> np.ndarray:
    """Per zone: people living within the service area / people × 100 (people spread evenly over
    their population polygon; NaN for zones without people). ``people``: the zones' people
    (:func:`greensink.overlay.population_in_zones`) if the caller has them already."""
    if people is None:
        people = population_in_zones(zone_geoms, population, column)
    return _population_pct(zone_geoms, people, *_population_pieces(population, column, served))


def _population_pct(zone_geoms: np.ndarray, people: np.ndarray, pieces: np.ndarray, per_m2: np.ndarray) -> np.ndarray:
    covered = np.asarray(overlay_areas_m2(zone_geoms, pieces) @ per_m2).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(people > 0, 100.0 * covered / np.where(people > 0, people, 1.0), np.nan)


def _row_sums(matrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=1)).ravel()


def park_service_columns(zones: gpd.GeoDataFrame, park_geoms: Sequence, rules: Sequence[Mapping] = DEFAULT_SERVICE_RULES,
                         population: gpd.GeoDataFrame | None = None, population_column: str | None = None,
                         residential: gpd.GeoDataFrame | None = None, *, overlay: ServiceOverlay | None = None,
                         people: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Columns park_service_population_pct and park_service_residential_pct for a zone layer
    (NaN where the input is not configured or the zone has no people / residential land).

    ``overlay``: :func:`service_overlay` of the same parks, rules, population and residential land, computed
    once for all zone levels (None: computed here); ``people``: the zones' people
    (:func:`greensink.overlay.population_in_zones`, which the zone table has computed already; None: computed
    here). Either gives the same numbers as computing it here, bit for bit (tests/test_indicators.py)."""
    geoms = zones.geometry.values
    nan = np.full(len(zones), np.nan)
    with_people = population is not None and bool(population_column)
    if overlay is None:
        overlay = service_overlay(park_geoms, rules, population if with_people else None, population_column, residential)
    if with_people:
        if people is None:
            people = population_in_zones(geoms, population, population_column)
        population_pct = _population_pct(geoms, people, overlay.population_served, overlay.served_people_per_m2)
    else:
        population_pct = nan
    if residential is None:
        residential_pct = nan
    elif len(overlay.residential) == 0:  # no residential land: no value
        residential_pct = np.full(len(zones), np.nan)
    else:
        residential_pct = _residential_pct(geoms, overlay.residential, overlay.residential_served)
    return {"park_service_population_pct": population_pct, "park_service_residential_pct": residential_pct}
