"""Overlay: exact intersection areas of two polygon layers, with big polygons cut into pieces first.

Zones meet other polygon layers (green space, population, residential land, a park service area)
by the exact area of their intersections, in m². A polygon as large as the city is never intersected
with every zone: both sides are cut into pieces of bounded size (:func:`subdivide`) and only pieces
whose boxes meet are intersected (STRtree), so an overlay costs time linear in the number of pieces
(benchmarks/zone_overlays.py). Used by :mod:`greensink.aggregate` (green-space land, people per zone)
and :mod:`greensink.indicators` (park service coverage).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely

MAX_PIECE_VERTICES = 256  # subdivide: a piece of a big polygon holds at most this many coordinates
_POLYGON = 3  # shapely type id of a Polygon


def subdivide(geoms: Sequence, max_vertices: int = MAX_PIECE_VERTICES, max_depth: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Polygon pieces of each geometry of ``geoms`` with at most ``max_vertices`` coordinates each,
    and the index of the geometry each piece comes from: (pieces, source).

    The pieces of one geometry are its polygon parts, cut in halves across their longer bounding-box
    side until small enough (like PostGIS ST_Subdivide); their interiors are disjoint and together
    they cover the geometry, so areas of overlaps with them add up to the overlap with the geometry
    (up to the rounding of the cut points, about 1e-12 of the area). Lines, points and empty
    geometries give no piece. With a bounded size per piece, intersecting zones with pieces found
    through a spatial index costs time linear in the number of zones and pieces, where intersecting
    every zone with one polygon as large as the city costs zones × city."""
    geoms = np.asarray(geoms, dtype=object)
    parts, source = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    parts, source = parts[keep], source[keep]
    done, done_src = [], []
    for _ in range(max_depth):
        small = shapely.get_num_coordinates(parts) <= max_vertices
        done.append(parts[small])
        done_src.append(source[small])
        parts, source = parts[~small], source[~small]
        if len(parts) == 0:
            break
        xmin, ymin, xmax, ymax = shapely.bounds(parts).T
        wide = (xmax - xmin) >= (ymax - ymin)
        xmid, ymid = (xmin + xmax) / 2, (ymin + ymax) / 2
        low = shapely.box(xmin, ymin, np.where(wide, xmid, xmax), np.where(wide, ymax, ymid))
        high = shapely.box(np.where(wide, xmid, xmin), np.where(wide, ymin, ymid), xmax, ymax)
        halves = shapely.intersection(np.concatenate([parts, parts]), np.concatenate([low, high]))
        parts, index = shapely.get_parts(halves, return_index=True)
        source = np.concatenate([source, source])[index]
        keep = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 0)
        parts, source = parts[keep], source[keep]
    done.append(parts)  # beyond max_depth (degenerate input): kept as they are
    done_src.append(source)
    return np.concatenate(done), np.concatenate(done_src).astype(np.intp)


def overlay_areas_m2(zone_geoms: np.ndarray, geoms: np.ndarray) -> sp.csr_matrix:
    """(zones × geoms) sparse matrix of exact intersection areas, m².

    Both sides are cut into pieces of bounded size (:func:`subdivide`) and only pieces whose
    boxes meet are intersected (STRtree), so a zone layer with a city-sized polygon on either side
    (a dissolved layer, the city zone) costs time linear in the pieces, not zones × city."""
    zone_geoms = np.asarray(zone_geoms, dtype=object)
    geoms = np.asarray(geoms, dtype=object)
    shape = (len(zone_geoms), len(geoms))
    if len(geoms) == 0 or len(zone_geoms) == 0:
        return sp.csr_matrix(shape)
    zp, zsrc = subdivide(zone_geoms)
    gp, gsrc = subdivide(geoms)
    zi, gi = shapely.STRtree(gp).query(zp, predicate="intersects")
    area = shapely.area(shapely.intersection(zp[zi], gp[gi])) if len(zi) else np.zeros(0)
    return sp.csr_matrix((area, (zsrc[zi], gsrc[gi])), shape=shape)  # pieces of one pair add up


def population_in_zones(zone_geoms: np.ndarray, population: gpd.GeoDataFrame, column: str) -> np.ndarray:
    """People per zone, sharing each population polygon's people among zones by area."""
    polys = population.geometry.values
    people = population[column].to_numpy(dtype=float)
    share = overlay_areas_m2(zone_geoms, polys)
    poly_area = shapely.area(polys)
    weights = share @ sp.diags(np.where(poly_area > 0, 1.0 / np.where(poly_area > 0, poly_area, 1), 0.0))
    return np.asarray(weights @ people).ravel()
