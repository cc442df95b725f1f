"""The built-in demo city: a synthetic city with known carbon, generated offline from a seed.

``make demo`` runs the whole pipeline on this city, and the tests compare what the pipeline
estimates with the truth written here. Everything is a deterministic function of ``seed``
(one :class:`numpy.random.Generator` per step, keyed by the step's name), so the same seed
gives byte-identical tables and JSON and identical raster values.

The city (default: 5 km x 5 km in EPSG:32651, about 500 x 500 pixels of 10 m)

* **Zones** city > 4 districts > blocks > parcels, built from one lattice of jittered corner
  nodes, so parcels are quadrilaterals that tile their block exactly, blocks tile districts
  and districts tile the city (shared edges have identical vertices). Nothing follows pixel
  edges: the lattice origin is offset by 3.3 m and every node is jittered.
* **Water** a sinuous river (40-80 m wide) and a lake inside one park.
* **Green space** typed after CJJ/T 85-2017: G1 parks (irregular 2-30 ha, one with a lake
  hole), G2 protective strips (30-60 m) along the river and a ring road, G3 plazas
  (0.5-2 ha), XG attached green inside about half of the parcels, EG one forest at the west
  side. Built in priority order water > road > EG > G1 > G3 > G2 > XG, each minus the ones
  before, so types never overlap and never cover water. Green space keeps 1.5 pixels away from
  the city edge, so every pixel that holds green space lies wholly inside the city.

The truth is made on fine cells (``truth_cell_m``, default 2 m: 5 x 5 cells per 10 m pixel),
not on the pipeline's pixels, so it does not share the pipeline's per-pixel assumptions
(:func:`make_fine_truth`):

* **Per fine cell** the green-space type (the polygon holding the cell's centre), vegetation
  (patches covering 40-95 % of a type's cells, the rest paths, paving and bare ground; 6 % of
  built-up land is street trees and gardens, which hold no carbon in the accounts), tree canopy
  (crowns 0.05 NDVI greener than the type's field, grass 0.05 less), NDVI (a smooth field per
  class, growing a little every year; one attached-green polygon is cleared in the second year,
  NDVI 0.15, carbon ~0, still typed XG) and carbon: the type's hidden curve of the *cell's* NDVI
  (truth/curves.json). Polygon edges and vegetation patches cut through pixels, so a pixel mixes
  types, paths, grass and crowns, and its carbon is not its type's curve of its NDVI.
* **Pixels** (truth/carbon_{year}.tif, t C per ha of pixel): the area mean of the cells' carbon.
  truth/ndvi_{year}.tif: the NDVI of the area-mean red and NIR of the cells (what a perfect
  clear-sky composite would see). truth/fractions.tif (bands G1 G2 G3 XG EG water): polygons
  rasterized at 1/10 pixel and block-averaged, exact to about 1/100 of a pixel.
* **Zone totals** (truth/zones_{year}_{level}.csv, tonnes C): the fine carbon integrated over each
  zone with exact cell coverage (exactextract on the fine cells, independent of greensink's
  aggregation).
* **Plots** (plots.gpkg) are circles of ``plot_radius_m`` (default 11.28 m, 400 m²) wholly inside
  their type's polygons, centred anywhere (not at pixel centres); their carbon is the mean of the
  fine cells inside the circle times a 10 % measurement error, remeasured every year.

The inputs the pipeline sees

* Sentinel-2 L2A-like scenes (imagery/): B04, B08 (uint16 DN on the 10 m grid, BOA offset
  from baseline 04.00) and SCL (uint8 on a 20 m grid with the same origin), for
  ``scenes_per_year`` dates in the season plus one winter scene per year that must be
  excluded by date. Per-date phenology factors are a symmetric set around 1, so the median
  of all in-season dates is the true NDVI (where clouds remove some dates, a pixel's median
  can be off by up to the phenology amplitude). On the default demo most plot pixels are clear
  on only 2-3 of the 5 in-season dates, and the composite NDVI at the plots differs from the
  true NDVI by 1.6-4.3 % (relative standard deviation per type and year; mean within +/-1.8 %):
  phenology over the few clear dates and sensor noise both contribute, sensor noise dominating
  below NDVI 0.3, where the dark demo surfaces give ~0.016 NDVI noise per date (figures measured
  on the per-pixel truth before the fine cells; a pixel's reflectance is now its cells' mean). This is
  measurement error in the predictor, not a bias of the truth. Clouds, cirrus and shadows are
  binary at 20 m and flagged in SCL exactly where they alter B04/B08; every pixel is clear on
  at least two in-season dates per year.
* Field plots (plots.gpkg): points with their carbon (see above).
* Zones, green space, water and block population (GeoPackage + CSV twins).
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.crs
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LinearRing, LineString, Polygon, box

from greensink import __version__
from greensink import io as gio
from greensink.errors import ConfigError
from greensink.grid import Grid

log = logging.getLogger(__name__)

LEVELS = ("city", "district", "block", "parcel")
TYPES = ("G1", "G2", "G3", "XG", "EG")
TYPE_NAMES = {
    "G1": "公园绿地 park",
    "G2": "防护绿地 protective",
    "G3": "广场用地 square",
    "XG": "附属绿地 attached",
    "EG": "区域绿地 regional",
}
FRACTION_BANDS = (*TYPES, "water")
#: NDVI classes: the five types, water and built-up (everything else); (mean, standard deviation).
CLASS_NDVI = {
    "G1": (0.62, 0.10),
    "G2": (0.56, 0.08),
    "G3": (0.30, 0.06),
    "XG": (0.45, 0.10),
    "EG": (0.74, 0.06),
    "water": (-0.25, 0.05),
    "built": (0.10, 0.04),
}
NDVI_MIN, NDVI_MAX = -0.5, 0.92
GROWTH_PER_YEAR = 0.015  # ndvi += 0.015 * years * (0.92 - ndvi) / 0.5 for the five types
DISTURBED_NDVI = 0.15
#: Hidden carbon curves, t C per ha of type land, x = NDVI. Forms as in greensink's models:
#: linear a + b*x; logarithmic a + b*ln(x); power a*x**b; exponential a*exp(b*x). Floored at 0.
CURVES = {
    "G1": {"form": "power", "params": {"a": 60.0, "b": 1.8}, "expression": "60*x**1.8"},
    "G2": {"form": "exponential", "params": {"a": 2.0, "b": 3.5}, "expression": "2.0*exp(3.5*x)"},
    "G3": {"form": "linear", "params": {"a": -1.0, "b": 15.0}, "expression": "-1.0 + 15*x"},
    "XG": {"form": "linear", "params": {"a": -6.0, "b": 40.0}, "expression": "-6 + 40*x"},
    "EG": {"form": "logarithmic", "params": {"a": 45.0, "b": 30.0}, "expression": "45 + 30*ln(x)"},
}
DISTRICT_NAMES = ("西山区", "北苑区", "南港区 <Nangang & Co>", "东湖区")  # D1 NW, D2 NE, D3 SW, D4 SE
ORIGIN = (350_003.3, 3_455_003.3)  # south-west corner of the lattice, metres (UTM 51N)
SUPERSAMPLE = 10  # sub-pixels per pixel side for the truth fractions
EDGE_MARGIN_PX = 1.5  # green space keeps this far (pixels) inside the city edge
MIN_PART_M2 = 50.0  # polygon parts smaller than this (slivers of subtraction) are dropped

# Sentinel-2 L2A conventions
S2_OFFSET_SINCE = date(2022, 1, 25)  # processing baseline 04.00: DN = reflectance*10000 + 1000
SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 4, 5, 6
SCL_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS = 3, 8, 9, 10
SCL_CLEAR = (SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER)
PHENOLOGY_AMPLITUDE = 0.06  # in-season factors span 1 - a .. 1 + a
WINTER_DAMPING = 0.55  # vegetation NDVI in the out-of-season scene
SENSOR_NOISE = 0.002  # reflectance, standard deviation per band
SHADOW_OFFSET_M = (-60.0, 60.0)  # shadow = cloud moved 60 m west and 60 m north (~85 m)
OVERPASS_UTC = "02:35:49"  # about 10:30 local solar time at 120-126 E

PLOTS_PER_TYPE = 40
MIN_PLOTS_PER_TYPE = 20
PLOT_PURITY = (0.99, 0.95)  # the second threshold only if the first leaves too few pixels
PLOT_MIN_DISTANCE_M = 50.0
PLOT_NOISE = 0.10  # relative; z = 0.9 u_plot + 0.436 e_plot,year, so z ~ N(0, 1) every year
PLOT_RADIUS_M = 11.28  # plot footprint: a circle of 400 m²

# The truth at fine cells (make_fine_truth)
TRUTH_CELL_M = 2.0  # fine cell side, metres; divides the pixel (10 m -> 5 x 5 cells)
#: Share of each type's cells that hold vegetation (the rest: paths, paving, bare ground).
VEGETATED_SHARE = {"G1": 0.85, "G2": 0.90, "G3": 0.40, "XG": 0.70, "EG": 0.95}
#: Share of the vegetated cells under tree crowns (the rest: grass, shrubs).
CANOPY_SHARE = {"G1": 0.50, "G2": 0.60, "G3": 0.30, "XG": 0.40, "EG": 0.80}
BUILT_VEGETATED_SHARE = 0.06  # street trees and gardens on built-up land (no carbon in the accounts)
BUILT_CANOPY_SHARE = 0.70
CANOPY_NDVI_STEP = 0.05  # tree crowns this much above the type's NDVI field, grass this much below
PATCH_SIGMA_M = 4.0  # correlation length of vegetation patches, metres
CANOPY_SIGMA_M = 3.0  # correlation length of tree crowns, metres


# ----------------------------------------------------------------------------- helpers


def _rng(seed: int, step: str) -> np.random.Generator:
    """An independent generator per step, so changing one step's draws leaves the others alone."""
    return np.random.default_rng([int(seed), zlib.crc32(step.encode("utf-8"))])


def _parts(geom: shapely.Geometry, min_area: float = MIN_PART_M2) -> list[Polygon]:
    """Polygon parts of ``geom`` with area >= ``min_area``, largest first (stable order)."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and p.area >= min_area]
    return sorted(parts, key=lambda p: (-p.area, p.bounds))


def _blob(
    rng: np.random.Generator, cx: float, cy: float, area_m2: float, *, roughness: float = 0.3, n: int = 96
) -> Polygon:
    """A smooth irregular star-shaped polygon of ``area_m2`` around (cx, cy)."""
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 6):  # harmonics 2..5; amplitudes sum < 0.4, so r stays > 0.6
        r += rng.uniform(0.0, roughness) / k * np.cos(k * theta + rng.uniform(0.0, 2.0 * np.pi))
    poly = Polygon(np.column_stack([cx + r * np.cos(theta), cy + r * np.sin(theta)]))
    s = math.sqrt(area_m2 / poly.area)
    return affinity.scale(poly, s, s, origin=(cx, cy))


def carbon_curve(type_code: str, ndvi: np.ndarray | float) -> np.ndarray:
    """Hidden truth carbon density of ``type_code`` land, t C/ha, at ``ndvi``; 0 for ndvi <= 0,
    floored at 0, NaN stays NaN."""
    x = np.asarray(ndvi, dtype=np.float64)
    spec = CURVES[type_code]
    a, b = spec["params"]["a"], spec["params"]["b"]
    xp = np.where(x > 0, x, 1.0)
    with np.errstate(over="ignore"):
        if spec["form"] == "linear":
            y = a + b * xp
        elif spec["form"] == "logarithmic":
            y = a + b * np.log(xp)
        elif spec["form"] == "power":
            y = a * xp**b
        else:  # exponential
            y = a * np.exp(b * xp)
    out = np.where(x > 0, np.maximum(y, 0.0), 0.0)
    return np.where(np.isnan(x), np.nan, out)


def _check_params(
    years: Sequence[int],
    season: tuple[str, str],
    resolution_m: float,
    extent_m: float,
    blocks: tuple[int, int],
    parcels_per_block: tuple[int, int],
    scenes_per_year: int,
    compress: str,
) -> None:
    problems = []
    if not years or any(int(y) != y for y in years) or list(years) != sorted(set(years)):
        problems.append(f"years must be increasing whole years without repeats. Got {list(years)!r}.")
    try:
        start, end = (_season_date(2001, s) for s in season)
        if not start < end:
            problems.append(f"season start must come before its end within a year. Got {season!r}.")
        elif start <= date(2001, 1, 8) and end >= date(2001, 12, 29):
            problems.append(
                f"season must leave some days of the year out (for the winter scene). Got {season!r}."
            )
    except (ValueError, TypeError):
        problems.append(f"season must be two 'MM-DD' dates. Got {season!r}.")
    if not resolution_m > 0:
        problems.append(f"resolution_m must be > 0 metres. Got {resolution_m!r}.")
    elif not extent_m >= 100 * resolution_m:
        problems.append(f"extent_m must be at least 100 pixels ({100 * resolution_m:g} m). Got {extent_m!r}.")
    if len(blocks) != 2 or min(blocks) < 2:
        problems.append(
            f"blocks must be two counts >= 2 (columns, rows), to split into 4 districts. Got {blocks!r}."
        )
    if len(parcels_per_block) != 2 or min(parcels_per_block) < 1:
        problems.append(f"parcels_per_block must be two counts >= 1. Got {parcels_per_block!r}.")
    if scenes_per_year < 2:
        problems.append(
            f"scenes_per_year must be >= 2 (every pixel needs 2 clear dates). Got {scenes_per_year!r}."
        )
    if compress not in gio.COMPRESS_OPTIONS:
        problems.append(f"compress must be one of {sorted(gio.COMPRESS_OPTIONS)}. Got {compress!r}.")
    if problems:
        raise ConfigError("demo: " + " ".join(problems))


def _season_date(year: int, mmdd: str) -> date:
    month, day = (int(v) for v in mmdd.split("-"))
    return date(year, month, day)


# ----------------------------------------------------------------------------- zones


def make_lattice(
    extent_m: float,
    blocks: tuple[int, int],
    parcels_per_block: tuple[int, int],
    rng: np.random.Generator,
    origin: tuple[float, float] = ORIGIN,
) -> np.ndarray:
    """Parcel corner nodes, shape (rows, cols, 2) of (x, y) metres; row 0 is the north edge.

    Interior nodes move by up to 20 % of the spacing in x and y; edge nodes move by up to 20 %
    along the edge and up to 4 m across it (corners up to 4 m both ways), so the outer
    boundary is not straight either."""
    ncol = blocks[0] * parcels_per_block[0] + 1
    nrow = blocks[1] * parcels_per_block[1] + 1
    dx = extent_m / (ncol - 1)
    dy = extent_m / (nrow - 1)
    x0, y0 = origin
    cols, rows = np.meshgrid(np.arange(ncol), np.arange(nrow))
    x = x0 + cols * dx
    y = y0 + extent_m - rows * dy
    jx = rng.uniform(-0.2, 0.2, x.shape) * dx
    jy = rng.uniform(-0.2, 0.2, y.shape) * dy
    edge_jitter = rng.uniform(-4.0, 4.0, (2, *x.shape))
    on_x_edge = (cols == 0) | (cols == ncol - 1)  # west/east edge: x moves only a few metres
    on_y_edge = (rows == 0) | (rows == nrow - 1)
    jx = np.where(on_x_edge, edge_jitter[0], jx)
    jy = np.where(on_y_edge, edge_jitter[1], jy)
    return np.stack([x + jx, y + jy], axis=-1)


def _cell_ring(nodes: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> Polygon:
    """Polygon whose boundary runs through the lattice nodes of rows r0..r1, cols c0..c1."""
    top = [nodes[r0, c] for c in range(c0, c1 + 1)]
    right = [nodes[r, c1] for r in range(r0 + 1, r1 + 1)]
    bottom = [nodes[r1, c] for c in range(c1 - 1, c0 - 1, -1)]
    left = [nodes[r, c0] for r in range(r1 - 1, r0, -1)]
    return shapely.geometry.polygon.orient(Polygon(top + right + bottom + left), 1.0)


def make_zones(
    *,
    extent_m: float = 5000.0,
    blocks: tuple[int, int] = (8, 5),
    parcels_per_block: tuple[int, int] = (5, 5),
    crs: str = "EPSG:32651",
    seed: int = 20231,
) -> dict[str, gpd.GeoDataFrame]:
    """The nested zones {level: GeoDataFrame(zone_id, name, [parent_id], geometry)}, sorted by zone_id.

    Districts split the block grid at column blocks[0]//2 and row blocks[1]//2 (counted from
    the north): D1 north-west, D2 north-east, D3 south-west, D4 south-east. Blocks and parcels
    are numbered row by row from the north-west corner of their parent."""
    nodes = make_lattice(extent_m, blocks, parcels_per_block, _rng(seed, "zones"))
    bx, by = blocks
    px, py = parcels_per_block
    nrow, ncol = nodes.shape[:2]
    city = [
        {"zone_id": "C1", "name": "示范市 Demo City", "geometry": _cell_ring(nodes, 0, nrow - 1, 0, ncol - 1)}
    ]
    districts, block_rows, parcel_rows = [], [], []
    col_split, row_split = bx // 2, by // 2
    quadrants = [
        (range(0, row_split), range(0, col_split)),
        (range(0, row_split), range(col_split, bx)),
        (range(row_split, by), range(0, col_split)),
        (range(row_split, by), range(col_split, bx)),
    ]
    nb_digits = max(2, len(str(bx * by)))
    np_digits = max(2, len(str(px * py)))
    for d, (brows, bcols) in enumerate(quadrants, start=1):
        did = f"D{d}"
        districts.append(
            {
                "zone_id": did,
                "name": DISTRICT_NAMES[d - 1],
                "parent_id": "C1",
                "geometry": _cell_ring(
                    nodes, brows[0] * py, (brows[-1] + 1) * py, bcols[0] * px, (bcols[-1] + 1) * px
                ),
            }
        )
        b = 0
        for br in brows:
            for bc in bcols:
                b += 1
                bid = f"{did}-B{b:0{nb_digits}d}"
                r0, c0 = br * py, bc * px
                block_rows.append(
                    {
                        "zone_id": bid,
                        "name": f"街区 {bid}",
                        "parent_id": did,
                        "geometry": _cell_ring(nodes, r0, r0 + py, c0, c0 + px),
                    }
                )
                p = 0
                for r in range(r0, r0 + py):
                    for c in range(c0, c0 + px):
                        p += 1
                        pid = f"{bid}-P{p:0{np_digits}d}"
                        parcel_rows.append(
                            {
                                "zone_id": pid,
                                "name": f"地块 {pid}",
                                "parent_id": bid,
                                "geometry": _cell_ring(nodes, r, r + 1, c, c + 1),
                            }
                        )
    out = {}
    for level, rows in zip(LEVELS, (city, districts, block_rows, parcel_rows), strict=True):
        gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
        out[level] = gdf.sort_values("zone_id", kind="stable").reset_index(drop=True)
    return out


# ----------------------------------------------------------------------------- water and green space


@dataclass(frozen=True)
class Landscape:
    """The generated land: green space polygons, water polygons and the ring road surface."""

    greenspace: gpd.GeoDataFrame  # green_id, type, name, geometry
    water: gpd.GeoDataFrame  # water_id, kind, name, geometry
    road: shapely.Geometry


def _river_line(rng: np.random.Generator, bounds: tuple[float, float, float, float]) -> LineString:
    xmin, ymin, xmax, ymax = bounds
    extent = xmax - xmin
    xs = np.linspace(xmin - 100.0, xmax + 100.0, 240)
    u = (xs - xmin) / extent
    f1, f2 = rng.uniform(0, 2 * np.pi, 2)
    ys = ymin + (ymax - ymin) * (
        0.33 + 0.06 * np.sin(2 * np.pi * 1.3 * u + f1) + 0.03 * np.sin(2 * np.pi * 3.1 * u + f2)
    )
    return LineString(np.column_stack([xs, ys]))


def _ring_line(rng: np.random.Generator, center: tuple[float, float], radius: float) -> LinearRing:
    theta = np.linspace(0.0, 2 * np.pi, 180, endpoint=False)
    f1, f2 = rng.uniform(0, 2 * np.pi, 2)
    r = radius * (1 + 0.07 * np.sin(2 * theta + f1) + 0.04 * np.cos(3 * theta + f2))
    return LinearRing(np.column_stack([center[0] + r * np.cos(theta), center[1] + r * np.sin(theta)]))


def _place(
    rng: np.random.Generator,
    make: Callable[[float, float], Polygon],
    inside: shapely.Geometry,
    avoid: shapely.Geometry,
    tries: int = 400,
) -> Polygon | None:
    """First shape make(cx, cy) at a random centre that lies within ``inside`` and misses ``avoid``."""
    xmin, ymin, xmax, ymax = inside.bounds
    shapely.prepare(inside)
    for _ in range(tries):
        cx, cy = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        shape = make(cx, cy)
        if shape.within(inside) and not shape.intersects(avoid):
            return shape
    return None


def _plaza(rng: np.random.Generator, cx: float, cy: float) -> Polygon:
    area = rng.uniform(0.5, 2.0) * 10_000.0
    aspect = rng.uniform(1.0, 1.6)
    w = math.sqrt(area * aspect)
    h = area / w
    rect = box(cx - w / 2 + 6, cy - h / 2 + 6, cx + w / 2 - 6, cy + h / 2 - 6).buffer(6.0, quad_segs=4)
    return affinity.rotate(rect, rng.uniform(0.0, 90.0), origin=(cx, cy))


def make_greenspace(
    zones: dict[str, gpd.GeoDataFrame], *, resolution_m: float = 10.0, seed: int = 20231
) -> Landscape:
    """Water, ring road and typed green space inside the city of ``zones``.

    Counts and sizes scale with the city's area (a = area / 25 km²): parks max(3, 14a) of
    2-30 ha (the first, 15-30 ha, holds a lake); plazas max(5, 10a) of 0.5-2 ha; an EG forest
    of (60-90 ha) * a at the west edge; G2 strips 30-60 m wide on both banks of the river and
    both sides of the ring road; XG inside ~55 % of the parcels not already mostly green."""
    rng = _rng(seed, "greenspace")
    crs = zones["city"].crs
    city = zones["city"].geometry.iloc[0]
    inner = city.buffer(-EDGE_MARGIN_PX * resolution_m, join_style="mitre")
    xmin, ymin, xmax, ymax = city.bounds
    extent = max(xmax - xmin, ymax - ymin)
    a = city.area / 25e6

    # water: river and (below) the park lake
    river_line = _river_line(rng, city.bounds)
    river_half = rng.uniform(45.0, 70.0) / 2
    river = river_line.buffer(river_half, quad_segs=8).intersection(city)
    # ring road (built-up) with protective strips
    ring = _ring_line(
        rng,
        (
            city.centroid.x + rng.uniform(-0.03, 0.03) * extent,
            city.centroid.y + rng.uniform(0.0, 0.05) * extent,
        ),
        0.3 * extent,
    )
    road_half = 12.0
    road = ring.buffer(road_half, quad_segs=8).difference(river).intersection(city)
    w_river, w_ring = rng.uniform(30.0, 60.0, 2)
    river_strips = river_line.buffer(river_half + w_river, quad_segs=8).difference(
        river_line.buffer(river_half, quad_segs=8)
    )
    ring_strips = ring.buffer(road_half + w_ring, quad_segs=8).difference(ring.buffer(road_half, quad_segs=8))
    grey = shapely.union(river, road)

    # EG: one forest reaching in from the west edge
    eg_target = rng.uniform(60.0, 90.0) * 10_000.0 * a
    ecx = xmin - 0.05 * extent
    ecy = ymin + rng.uniform(0.6, 0.78) * (ymax - ymin)
    eg_shape = _blob(rng, ecx, ecy, 2 * eg_target)
    eg_clip = inner.difference(grey)
    for _ in range(4):  # rescale so the part inside the city has the target area
        got = eg_shape.intersection(eg_clip).area
        s = math.sqrt(eg_target / got)
        eg_shape = affinity.scale(eg_shape, s, s, origin=(ecx, ecy))
    eg = eg_shape.intersection(eg_clip)

    # G1 parks, the largest with a lake
    n_parks = max(3, round(14 * a))
    areas = np.sort(np.exp(rng.uniform(math.log(2.0), math.log(30.0), n_parks)))[::-1] * 10_000.0
    areas[0] = rng.uniform(15.0, 30.0) * 10_000.0
    avoid = shapely.union_all([grey.buffer(25.0), eg.buffer(60.0)])
    park_inside = inner.buffer(-20.0)
    parks: list[tuple[Polygon, str]] = []
    lakes: list[Polygon] = []
    for i, area in enumerate(areas):
        park = _place(rng, lambda cx, cy, area=area: _blob(rng, cx, cy, area), park_inside, avoid)
        if park is None:
            log.warning("demo: no room for park %d of %.1f ha; skipped", i + 1, area / 1e4)
            continue
        name = f"公园 {len(parks) + 1:02d}"
        if not lakes:  # the first park placed gets a lake: a hole of 10-18 % of its area
            c = park.centroid
            core = park.buffer(-30.0)
            lake_parts = _parts(_blob(rng, c.x, c.y, area * rng.uniform(0.10, 0.18)).intersection(core))
            if lake_parts:
                lakes.append(lake_parts[0])
                park = park.difference(lake_parts[0])
                name = "湖滨公园 Lakeside Park"
        parks.append((park, name))
        avoid = shapely.union(avoid, park.buffer(60.0))
    water_geom = shapely.union_all([river, *lakes])

    # G3 plazas
    plazas = []
    for i in range(max(5, round(10 * a))):
        plaza = _place(rng, lambda cx, cy: _plaza(rng, cx, cy), park_inside, avoid)
        if plaza is None:
            log.warning("demo: no room for plaza %d; skipped", i + 1)
            continue
        plazas.append(plaza)
        avoid = shapely.union(avoid, plaza.buffer(50.0))

    taken = shapely.union_all([water_geom, road, eg, *(p for p, _ in parks), *plazas])
    g2_river = river_strips.intersection(inner).difference(taken)
    g2_ring = ring_strips.intersection(inner).difference(taken).difference(g2_river)
    taken = shapely.union_all([taken, g2_river, g2_ring])
    shapely.prepare(taken)

    # XG inside parcels: an inset parcel (60 %) or 1-3 small blobs (40 %)
    xg_rows = []
    parcels = zones["parcel"]
    draws = rng.random((len(parcels), 3))
    for (pid, parcel), (pick, mode, k) in zip(
        zip(parcels["zone_id"], parcels.geometry, strict=True), draws, strict=True
    ):
        if pick >= 0.55 or parcel.intersection(taken).area > 0.25 * parcel.area:
            continue
        if mode < 0.6:
            geom = parcel.buffer(-rng.uniform(10.0, 25.0), join_style="mitre")
        else:
            core = parcel.buffer(-10.0, join_style="mitre")
            blobs = []
            for _ in range(1 + int(k * 3)):
                pt = _place(
                    rng, lambda cx, cy: shapely.Point(cx, cy).buffer(1.0), core, shapely.Point(), tries=50
                )
                if pt is not None:
                    c = pt.centroid
                    blobs.append(_blob(rng, c.x, c.y, math.pi * rng.uniform(15.0, 35.0) ** 2, n=48))
            geom = shapely.union_all(blobs).intersection(parcel.buffer(-6.0, join_style="mitre"))
        geom = geom.intersection(inner)
        if geom.intersects(taken):
            geom = geom.difference(taken)
        for j, part in enumerate(_parts(geom)):
            xg_rows.append(("XG", f"附属绿地 {pid}" + (f"-{j + 1}" if j else ""), part))

    rows = []
    for park, name in parks:
        for j, part in enumerate(_parts(park.intersection(inner).difference(water_geom))):
            rows.append(("G1", name + (f"-{j + 1}" if j else ""), part))
    for label, geom in (("滨河防护绿地", g2_river), ("环路防护绿地", g2_ring)):
        for j, part in enumerate(_parts(geom)):
            rows.append(("G2", f"{label} {j + 1:02d}", part))
    for i, plaza in enumerate(plazas):
        for j, part in enumerate(_parts(plaza.difference(water_geom))):
            rows.append(("G3", f"广场 {i + 1:02d}" + (f"-{j + 1}" if j else ""), part))
    rows += xg_rows
    for j, part in enumerate(_parts(eg)):
        rows.append(("EG", f"城郊森林 {j + 1:02d}", part))
    order = {t: i for i, t in enumerate(TYPES)}
    rows.sort(key=lambda r: order[r[0]])  # stable: keeps construction order within a type
    counters = dict.fromkeys(TYPES, 0)
    records = []
    for t, name, geom in rows:
        counters[t] += 1
        records.append({"green_id": f"{t}-{counters[t]:04d}", "type": t, "name": name, "geometry": geom})
    green = gpd.GeoDataFrame(records, geometry="geometry", crs=crs)
    water = gpd.GeoDataFrame(
        [{"water_id": "W1", "kind": "river", "name": "河流 River", "geometry": river}]
        + [
            {"water_id": f"W{i + 2}", "kind": "lake", "name": "湖 Lake", "geometry": lake}
            for i, lake in enumerate(lakes)
        ],
        geometry="geometry",
        crs=crs,
    )
    return Landscape(greenspace=green, water=water, road=road)


def choose_disturbance(greenspace: gpd.GeoDataFrame, seed: int) -> str:
    """green_id of the XG polygon cleared in the second year: a random one of the largest quarter."""
    xg = greenspace[greenspace["type"] == "XG"]
    area = xg.geometry.area.to_numpy()
    big = xg[area >= np.quantile(area, 0.75)].sort_values("green_id")
    return str(big["green_id"].iloc[_rng(seed, "disturbance").integers(len(big))])


# ----------------------------------------------------------------------------- truth rasters


def make_fractions(
    landscape: Landscape, grid: Grid, disturbed_id: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Truth fractions (6, rows, cols) of G1 G2 G3 XG EG water, and the fraction of the disturbed
    polygon (rows, cols), by rasterizing at SUPERSAMPLE x finer pixels and block-averaging."""
    s = SUPERSAMPLE
    t = grid.transform
    fine = Affine(t.a / s, 0.0, t.c, 0.0, t.e / s, t.f)
    labels = {k: i + 1 for i, k in enumerate(FRACTION_BANDS)}
    disturbed_label = len(labels) + 1
    green = landscape.greenspace
    shapes = [
        (g, disturbed_label if gid == disturbed_id else labels[typ])
        for g, typ, gid in zip(green.geometry, green["type"], green["green_id"], strict=True)
    ]
    shapes += [(g, labels["water"]) for g in landscape.water.geometry if not g.is_empty]
    fine_labels = rasterio.features.rasterize(
        shapes, out_shape=(grid.height * s, grid.width * s), transform=fine, fill=0, dtype="uint8"
    )
    blocks = fine_labels.reshape(grid.height, s, grid.width, s)
    counts = np.stack([(blocks == k).sum(axis=(1, 3), dtype=np.int32) for k in range(1, disturbed_label + 1)])
    fractions = counts[: len(labels)].astype(np.float64) / (s * s)
    disturbed = counts[-1].astype(np.float64) / (s * s)
    fractions[FRACTION_BANDS.index("XG")] += disturbed
    return fractions, disturbed


@dataclass
class FineTruth:
    """The demo's truth at fine cells (``cell_m``, ``factor`` cells per pixel side): every array has
    shape (grid.height * factor, grid.width * factor), row 0 north, on ``transform``."""

    cell_m: float
    factor: int
    transform: Affine
    label: np.ndarray  # uint8: 0 built-up, 1..5 TYPES, 6 water (FINE_LABELS)
    disturbed: np.ndarray  # bool: cells of the polygon cleared from the second year
    vegetated: np.ndarray  # bool: vegetation (grass or tree crown) in the cell
    canopy: np.ndarray  # bool: tree crown in the cell (a subset of vegetated)
    ndvi: dict[int, np.ndarray]  # float32 per year: the cell's clear-sky growing-season NDVI
    carbon: dict[int, np.ndarray]  # float64 per year: t C per ha of cell (0 off typed land)

    def cell_area_ha(self) -> float:
        return self.cell_m * self.cell_m / 1e4


def block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks of a fine array (float64): the pixel's area mean."""
    if factor == 1:
        return np.asarray(a, dtype=np.float64)
    h, w = a.shape[0] // factor, a.shape[1] // factor
    return a.reshape(h, factor, w, factor).mean(axis=(1, 3), dtype=np.float64)


def reflectance(ndvi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free red and NIR reflectance of a surface of ``ndvi``: red = 0.08 - 0.05 max(ndvi, 0),
    NIR = red (1 + ndvi) / (1 - ndvi) (dark soil line; bright vegetation)."""
    red = 0.08 - 0.05 * np.maximum(ndvi, 0.0)
    return red, red * (1 + ndvi) / (1 - ndvi)


def pixel_ndvi(fine_ndvi: np.ndarray, factor: int) -> np.ndarray:
    """NDVI a perfect sensor sees on the pixels: of the area-mean red and NIR of the fine cells."""
    red, nir = reflectance(np.asarray(fine_ndvi, dtype=np.float64))
    red, nir = block_mean(red, factor), block_mean(nir, factor)
    return (nir - red) / (nir + red)


def _cell_factor(resolution_m: float, cell_m: float) -> int:
    factor = round(resolution_m / cell_m)
    if not cell_m > 0 or factor < 1 or abs(factor * cell_m - resolution_m) > 1e-9 * resolution_m:
        raise ConfigError(
            f"demo: truth_cell_m must divide the resolution ({resolution_m:g} m) into whole cells. "
            f"Got {cell_m!r}. Use e.g. {resolution_m / 5:g} or {resolution_m / 2:g}."
        )
    return factor


def make_fine_truth(
    landscape: Landscape,
    grid: Grid,
    disturbed_id: str | None,
    years: Sequence[int],
    seed: int,
    cell_m: float = TRUTH_CELL_M,
) -> FineTruth:
    """Type, vegetation, canopy, NDVI and carbon of every fine cell, per year.

    * Type: the polygon (or water) holding the cell's centre; polygons are rasterized at the
      cell size, so their edges cut through pixels wherever they run.
    * Vegetation: patches of a smooth random field (correlation ~PATCH_SIGMA_M) cover
      VEGETATED_SHARE of each type's cells (the rest are paths, paving, bare ground, NDVI of
      built-up land), and BUILT_VEGETATED_SHARE of built-up land (street trees, gardens: NDVI but
      no carbon in the accounts, which count green space). Tree crowns (CANOPY_SHARE of the
      vegetated cells, another field of ~CANOPY_SIGMA_M) are CANOPY_NDVI_STEP greener than the
      type's field, grass as much less green.
    * NDVI: per class a smooth field at the pixel size (mean and sd CLASS_NDVI), bilinearly
      interpolated to the cells; vegetation grows by GROWTH_PER_YEAR; the disturbed polygon's
      cells drop to DISTURBED_NDVI from the second year.
    * Carbon: curve_type(cell NDVI) on each typed cell (t C/ha), 0 on water and built-up land.
    """
    factor = _cell_factor(grid.resolution_m, cell_m)
    t = grid.transform
    fine_t = Affine(t.a / factor, 0.0, t.c, 0.0, t.e / factor, t.f)
    shape = (grid.height * factor, grid.width * factor)
    labels = {k: i + 1 for i, k in enumerate(FRACTION_BANDS)}
    disturbed_label = len(labels) + 1
    green = landscape.greenspace
    shapes = [
        (g, disturbed_label if gid == disturbed_id else labels[typ])
        for g, typ, gid in zip(green.geometry, green["type"], green["green_id"], strict=True)
    ]
    shapes += [(g, labels["water"]) for g in landscape.water.geometry if not g.is_empty]
    label = rasterio.features.rasterize(shapes, out_shape=shape, transform=fine_t, fill=0, dtype="uint8")
    disturbed = label == disturbed_label
    label[disturbed] = labels["XG"]

    # smooth class fields at the pixel size (as drawn since the first demo), then onto the cells
    rng = _rng(seed, "ndvi")
    fields = {}
    for cls, (mean, sd) in CLASS_NDVI.items():
        sigma = rng.uniform(3.0, 8.0)
        f = ndimage.gaussian_filter(rng.standard_normal(grid.shape), sigma, mode="reflect")
        f = (f - f.mean()) / f.std()
        fields[cls] = np.clip(mean + sd * f, NDVI_MIN, NDVI_MAX)

    def up(a: np.ndarray, smooth: bool) -> np.ndarray:
        if factor == 1:
            return a.astype(np.float32)
        if not smooth:
            return a.repeat(factor, axis=0).repeat(factor, axis=1).astype(np.float32)
        # pixel centres sit at (i + 0.5) factor - 0.5 in cell units: interpolate there, edges held
        coords = (np.arange(shape[0]) + 0.5) / factor - 0.5, (np.arange(shape[1]) + 0.5) / factor - 0.5
        rows = np.clip(coords[0], 0, grid.height - 1)
        cols = np.clip(coords[1], 0, grid.width - 1)
        r0 = np.minimum(rows.astype(int), grid.height - 2) if grid.height > 1 else np.zeros(len(rows), int)
        c0 = np.minimum(cols.astype(int), grid.width - 2) if grid.width > 1 else np.zeros(len(cols), int)
        fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
        a = a.astype(np.float32)
        top = a[r0][:, c0] * (1 - fc) + a[r0][:, c0 + 1] * fc
        bottom = a[r0 + 1][:, c0] * (1 - fc) + a[r0 + 1][:, c0 + 1] * fc
        return (top * (1 - fr) + bottom * fr).astype(np.float32)

    vrng = _rng(seed, "fine-vegetation")

    def patches(sigma_m: float) -> np.ndarray:
        f = ndimage.gaussian_filter(vrng.standard_normal(shape).astype(np.float32), sigma_m / cell_m)
        return (f - f.mean()) / f.std()

    patch, crown = patches(PATCH_SIGMA_M), patches(CANOPY_SIGMA_M)
    from scipy.stats import norm

    vegetated = np.zeros(shape, dtype=bool)
    canopy = np.zeros(shape, dtype=bool)
    for k, cls in enumerate(("built", *TYPES)):
        cells = label == k  # 0 built-up, 1..5 the types
        share = BUILT_VEGETATED_SHARE if cls == "built" else VEGETATED_SHARE[cls]
        tree = BUILT_CANOPY_SHARE if cls == "built" else CANOPY_SHARE[cls]
        vegetated |= cells & (patch > norm.ppf(1 - share))
        canopy |= cells & vegetated & (crown > norm.ppf(1 - tree))
    step = np.where(canopy, CANOPY_NDVI_STEP, -CANOPY_NDVI_STEP).astype(np.float32)
    built_field = up(fields["built"], smooth=False)
    base = np.where(label == labels["water"], up(fields["water"], smooth=False), built_field)
    type_fields = {cls: up(fields[cls], smooth=True) for cls in TYPES}
    street = type_fields["XG"]  # vegetation on built-up land looks like attached green
    ndvi_out, carbon_out = {}, {}
    for k, year in enumerate(years):
        dt = year - years[0]
        ndvi = base.copy()
        for i, cls in enumerate(("built", *TYPES)):
            field = street if cls == "built" else type_fields[cls]
            grown = field + GROWTH_PER_YEAR * dt * (NDVI_MAX - field) / 0.5
            cells = vegetated & (label == i)
            ndvi[cells] = np.clip(grown[cells] + step[cells], NDVI_MIN, NDVI_MAX)
        if k >= 1:
            ndvi[disturbed] = DISTURBED_NDVI
        carbon = np.zeros(shape, dtype=np.float64)
        for i, cls in enumerate(TYPES, start=1):
            cells = label == i
            carbon[cells] = carbon_curve(cls, ndvi[cells])
        ndvi_out[int(year)] = ndvi
        carbon_out[int(year)] = carbon
    return FineTruth(
        cell_m=float(cell_m),
        factor=factor,
        transform=fine_t,
        label=label,
        disturbed=disturbed,
        vegetated=vegetated,
        canopy=canopy,
        ndvi=ndvi_out,
        carbon=carbon_out,
    )


def fine_zone_totals(fine: FineTruth, year: int, zones: gpd.GeoDataFrame, crs_wkt: str) -> pd.DataFrame:
    """Zone totals (zone_id, carbon_t) of the fine truth: exact coverage of every fine cell by each
    zone (exactextract, independent of greensink's aggregation) times its t C/ha x cell area in ha."""
    import exactextract
    from exactextract.raster import NumPyRasterSource

    t = fine.transform
    h, w = fine.label.shape
    src = NumPyRasterSource(
        fine.carbon[year], t.c, t.f + h * t.e, t.c + w * t.a, t.f, srs_wkt=crs_wkt, name="carbon"
    )
    df = exactextract.exact_extract(
        src, zones[["zone_id", "geometry"]], ["sum"], output="pandas", include_cols=["zone_id"]
    )
    out = pd.DataFrame(
        {"zone_id": df["zone_id"].astype(str), "carbon_t": df["sum"].to_numpy() * fine.cell_area_ha()}
    )
    return out.sort_values("zone_id", kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- imagery


@dataclass
class Scene:
    """One Sentinel-2 L2A-like acquisition: DN bands on the 10 m grid, SCL on the 20 m grid."""

    scene_id: str
    when: datetime
    year: int
    in_season: bool
    ndvi_factor: float  # phenology (in season) or winter damping applied to vegetated pixels
    baseline: str
    offset: int  # BOA_ADD_OFFSET; reflectance = (DN + offset) / 10000
    red: np.ndarray  # uint16
    nir: np.ndarray  # uint16
    scl: np.ndarray  # uint8, on the 20 m grid
    cloud_pct: float  # % of SCL pixels that are cloud or cirrus (8, 9, 10)


def scl_grid(grid: Grid) -> Grid:
    """The 20 m SCL grid: same origin, pixels twice as large, covering the 10 m grid."""
    t = grid.transform
    return Grid(
        crs=grid.crs,
        transform=Affine(2 * t.a, 0.0, t.c, 0.0, 2 * t.e, t.f),
        width=math.ceil(grid.width / 2),
        height=math.ceil(grid.height / 2),
    )


def scene_dates(year: int, season: tuple[str, str], n: int) -> list[date]:
    """``n`` in-season dates spread from 20 % into the season to 15 % before its end."""
    start, end = _season_date(year, season[0]), _season_date(year, season[1])
    span = (end - start).days
    offsets = np.linspace(0.20 * span, 0.85 * span, n)
    return [start + timedelta(days=int(round(o))) for o in offsets]


def off_season_date(year: int, season: tuple[str, str]) -> date:
    """The date of the one out-of-season scene: 8 January, or mid-way from the season's end to
    the end of the year when the season starts before 8 January."""
    jan8 = date(year, 1, 8)
    if jan8 < _season_date(year, season[0]):
        return jan8
    end = _season_date(year, season[1])
    return end + (date(year, 12, 31) - end) // 2


def phenology_factors(n: int, amplitude: float = PHENOLOGY_AMPLITUDE) -> np.ndarray:
    """NDVI factors per in-season date: an evenly spaced set symmetric about 1 (its median is 1),
    the largest nearest mid-season, e.g. n=5 -> 0.94 1.00 1.06 1.03 0.97."""
    values = np.linspace(1 - amplitude, 1 + amplitude, n)  # ascending
    closeness = np.argsort(np.abs(np.arange(n) - (n - 1) / 2), kind="stable")  # most central first
    out = np.empty(n)
    out[closeness] = values[::-1]
    return out


def _shift(mask: np.ndarray, drow: int, dcol: int) -> np.ndarray:
    """mask moved by (drow, dcol) pixels, zero-filled."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(drow, 0) : h + min(drow, 0), max(dcol, 0) : w + min(dcol, 0)] = mask[
        max(-drow, 0) : h + min(-drow, 0), max(-dcol, 0) : w + min(-dcol, 0)
    ]
    return out


def _coarsen(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """2 x 2 mean onto ``shape`` (edge-padded when the fine grid has odd size)."""
    h, w = shape
    padded = np.pad(a, ((0, 2 * h - a.shape[0]), (0, 2 * w - a.shape[1])), mode="edge")
    return padded.reshape(h, 2, w, 2).mean(axis=(1, 3))


def _clouds(
    rng: np.random.Generator, shape: tuple[int, int], cover: float, res20: float
) -> dict[str, np.ndarray]:
    """Cloud (medium/high), cirrus and shadow masks on the 20 m grid, plus the cloud field."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), max(2.0, 300.0 / res20), mode="reflect")
    field = (field - field.mean()) / field.std()
    cloud = field > np.quantile(field, 1 - cover)
    high = field > np.quantile(field, 1 - cover / 2)
    g = ndimage.gaussian_filter(rng.standard_normal(shape), max(3.0, 500.0 / res20), mode="reflect")
    cirrus = (g > np.quantile(g, 1 - rng.uniform(0.03, 0.08))) & ~cloud
    drow, dcol = -round(SHADOW_OFFSET_M[1] / res20), round(SHADOW_OFFSET_M[0] / res20)
    shadow = _shift(cloud, drow, dcol) & ~cloud & ~cirrus
    return {"field": field, "cloud": cloud, "high": high, "cirrus": cirrus, "shadow": shadow}


def make_scenes(
    grid: Grid,
    ndvi: dict[int, np.ndarray],
    water_fraction: np.ndarray,
    *,
    season: tuple[str, str] = ("04-01", "10-31"),
    scenes_per_year: int = 5,
    seed: int = 20231,
) -> list[Scene]:
    """Sentinel-2 L2A-like scenes from the true NDVI: ``scenes_per_year`` in-season dates and one
    out-of-season date (:func:`off_season_date`) per year, sorted by time.

    ``ndvi`` holds per year the NDVI of the pixels of ``grid`` or of the fine cells of the truth
    (shape a whole multiple of the grid's): a pixel's red and NIR are then the mean of its cells'."""
    g20 = scl_grid(grid)
    res20 = g20.resolution_m
    h, w = grid.shape
    water20 = _coarsen(water_fraction, g20.shape)

    def up(m: np.ndarray) -> np.ndarray:
        return m.repeat(2, axis=0).repeat(2, axis=1)[:h, :w]

    scenes = []
    for year, ndvi_true in sorted(ndvi.items()):
        rng = _rng(seed, f"scenes-{year}")
        dates = scene_dates(year, season, scenes_per_year)
        covers = rng.uniform(0.10, 0.40, scenes_per_year)
        covers[rng.integers(scenes_per_year)] = 0.60
        factors = phenology_factors(scenes_per_year)
        masks = [_clouds(rng, g20.shape, c, res20) for c in covers]
        # every 20 m pixel clear on >= 2 in-season dates: clear it on its 2 least cloudy dates
        obscured = np.stack([m["cloud"] | m["cirrus"] | m["shadow"] for m in masks])
        short = (~obscured).sum(axis=0) < 2
        best = np.argsort(np.stack([m["field"] for m in masks]), axis=0, kind="stable")[:2]
        for k, m in enumerate(masks):
            fix = short & ((best[0] == k) | (best[1] == k))
            for key in ("cloud", "high", "cirrus", "shadow"):
                m[key] &= ~fix
        winter = off_season_date(year, season)
        plan = [(d, True, float(f), m) for d, f, m in zip(dates, factors, masks, strict=True)]
        plan.append((winter, False, WINTER_DAMPING, _clouds(rng, g20.shape, rng.uniform(0.10, 0.30), res20)))
        for d, in_season, factor, m in sorted(plan, key=lambda p: p[0]):
            scenes.append(
                _render_scene(rng, d, year, in_season, factor, m, ndvi_true, water20, g20.shape, up)
            )
    return scenes


def _render_scene(
    rng: np.random.Generator,
    d: date,
    year: int,
    in_season: bool,
    factor: float,
    m: dict[str, np.ndarray],
    ndvi_true: np.ndarray,
    water20: np.ndarray,
    shape20: tuple[int, int],
    up: Callable[[np.ndarray], np.ndarray],
) -> Scene:
    # each surface (pixel, or fine cell of the truth) at this date; a pixel's reflectance is the
    # area mean of its cells' reflectance, then sensor noise per pixel
    ndvi_d = np.where(ndvi_true > 0.2, np.minimum(ndvi_true * factor, NDVI_MAX), ndvi_true)
    cells = ndvi_true.shape[1] // up(np.zeros(shape20, dtype=bool)).shape[1]  # cells per pixel side
    red0, nir0 = (block_mean(b, cells) for b in reflectance(ndvi_d))
    ndvi_px = (nir0 - red0) / (nir0 + red0)
    red = red0 + rng.normal(0.0, SENSOR_NOISE, red0.shape)
    nir = nir0 + rng.normal(0.0, SENSOR_NOISE, nir0.shape)
    # SCL: clear classes from the 20 m mean NDVI and water fraction, then the masks
    scl = np.where(_coarsen(ndvi_px, shape20) > 0.2, SCL_VEGETATION, SCL_NOT_VEGETATED).astype(np.uint8)
    scl[water20 > 0.5] = SCL_WATER
    scl[m["shadow"]] = SCL_SHADOW
    scl[m["cirrus"]] = SCL_CIRRUS
    scl[m["cloud"]] = SCL_CLOUD_MEDIUM
    scl[m["high"]] = SCL_CLOUD_HIGH
    bright = up(np.clip(m["field"], 0.0, 3.0) * 0.01)  # thicker cloud cores are brighter
    cloud, cirrus, shadow = up(m["cloud"]), up(m["cirrus"]), up(m["shadow"])
    red = np.where(cloud, 0.30 + bright + rng.normal(0.0, 0.01, red.shape), red)
    nir = np.where(cloud, 0.33 + bright + rng.normal(0.0, 0.01, nir.shape), nir)
    red = np.where(cirrus, red + 0.04, red)
    nir = np.where(cirrus, nir + 0.03, nir)
    red = np.where(shadow, red * 0.3, red)
    nir = np.where(shadow, nir * 0.3, nir)
    new_baseline = d > S2_OFFSET_SINCE
    offset = -1000 if new_baseline else 0

    def dn(refl: np.ndarray) -> np.ndarray:
        return np.clip(np.round(refl * 10_000.0) - offset, 1, 65_535).astype(np.uint16)

    stamp = d.strftime("%Y%m%d")
    cloudy = np.isin(scl, (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS))
    return Scene(
        scene_id=f"S2_DEMO_{stamp}",
        when=datetime.fromisoformat(f"{d.isoformat()}T{OVERPASS_UTC}"),
        year=year,
        in_season=in_season,
        ndvi_factor=round(factor, 6),
        baseline="04.00" if new_baseline else "03.01",
        offset=offset,
        red=dn(red),
        nir=dn(nir),
        scl=scl,
        cloud_pct=round(100.0 * float(cloudy.mean()), 2),
    )


# ----------------------------------------------------------------------------- plots and population


def footprint_carbon(fine: FineTruth, year: int, x: float, y: float, radius_m: float) -> float:
    """True carbon of a plot, t C/ha: the mean carbon of the fine cells whose centres lie within
    ``radius_m`` of (x, y) (the cell holding the point when the circle holds no cell centre)."""
    t = fine.transform
    h, w = fine.label.shape
    c_lo = max(int(math.floor((x - radius_m - t.c) / t.a)), 0)
    c_hi = min(int(math.ceil((x + radius_m - t.c) / t.a)), w)
    r_lo = max(int(math.floor((y + radius_m - t.f) / t.e)), 0)
    r_hi = min(int(math.ceil((y - radius_m - t.f) / t.e)), h)
    cx = t.c + (np.arange(c_lo, c_hi) + 0.5) * t.a
    cy = t.f + (np.arange(r_lo, r_hi) + 0.5) * t.e
    inside = np.hypot(cx[None, :] - x, cy[:, None] - y) <= radius_m
    if not inside.any():
        return float(fine.carbon[year][int((y - t.f) / t.e), int((x - t.c) / t.a)])
    return float(fine.carbon[year][r_lo:r_hi, c_lo:c_hi][inside].mean())


def make_plots(
    grid: Grid,
    fine: FineTruth,
    greenspace: gpd.GeoDataFrame,
    *,
    seed: int = 20231,
    per_type: int = PLOTS_PER_TYPE,
    min_distance_m: float = PLOT_MIN_DISTANCE_M,
    radius_m: float = PLOT_RADIUS_M,
) -> tuple[gpd.GeoDataFrame, dict]:
    """Field plots, circles of ``radius_m`` wholly inside green space of their type, the same plots
    measured every year.

    Centres are drawn uniformly over the type's polygons shrunk by ``radius_m`` (anywhere, not at
    pixel centres), then thinned greedily to >= 50 m apart (25 m, then none, if that leaves fewer
    than ``per_type``). Carbon = the plot footprint's true carbon (:func:`footprint_carbon`: the
    mean over the fine cells inside the circle, paths and bare ground included) * (1 + 0.10 z),
    floored at 0, with z = 0.9 u + 0.436 e: u a persistent plot effect, e the remeasurement error
    of that year."""
    rng = _rng(seed, "plots")
    info: dict[str, dict] = {"radius_m": float(radius_m), "eligible_area_ha": {}, "min_distance_m": {}}
    chosen = []  # (type, x, y)
    for typ in TYPES:
        union = shapely.union_all(greenspace.geometry[greenspace["type"] == typ].to_numpy())
        if union.is_empty:  # a small city may have no room for a type (e.g. no park placed)
            log.warning("demo: no %s land; no plots of %s", typ, typ)
            info["eligible_area_ha"][typ] = 0.0
            info["min_distance_m"][typ] = None
            continue
        inner = union.buffer(-radius_m) if radius_m > 0 else union
        if inner.area < 1.0:
            log.warning("demo: no %s land holds a whole plot of radius %.2f m; plot centres anywhere in it", typ, radius_m)
            inner = union
        shapely.prepare(inner)
        info["eligible_area_ha"][typ] = round(inner.area / 1e4, 4)
        xmin, ymin, xmax, ymax = inner.bounds
        pts = np.empty((0, 2))
        for _ in range(50):  # about 2000 candidate centres, uniform over the shrunk polygons
            cand = rng.uniform((xmin, ymin), (xmax, ymax), (2000, 2))
            pts = np.vstack([pts, cand[shapely.contains_xy(inner, cand[:, 0], cand[:, 1])]])
            if len(pts) >= 2000:
                break
        x, y = pts[:2000, 0], pts[:2000, 1]
        for dist in (min_distance_m, min_distance_m / 2, 0.0):
            keep: list[int] = []
            for j in range(len(x)):
                if len(keep) == per_type:
                    break
                if not keep or np.min(np.hypot(x[keep] - x[j], y[keep] - y[j])) >= dist:
                    keep.append(j)
            if len(keep) >= min(per_type, len(x)):
                break
        info["min_distance_m"][typ] = dist
        if len(keep) < MIN_PLOTS_PER_TYPE:
            log.warning("demo: only %d plots for %s", len(keep), typ)
        chosen += [(typ, round(float(x[j]), 2), round(float(y[j]), 2)) for j in keep]
    order_t = {t_: k for k, t_ in enumerate(TYPES)}
    chosen.sort(key=lambda c: (order_t[c[0]], -c[2], c[1]))
    n = len(chosen)
    u = rng.standard_normal(n)
    records = []
    for year in sorted(fine.carbon):
        e = rng.standard_normal(n)
        z = 0.9 * u + math.sqrt(1 - 0.81) * e
        for k, (typ, px, py) in enumerate(chosen):
            carbon = footprint_carbon(fine, year, px, py, radius_m) * (1 + PLOT_NOISE * z[k])
            records.append(
                {
                    "plot_id": f"P{k + 1:04d}",
                    "type": typ,
                    "year": int(year),
                    "carbon_t_ha": round(max(carbon, 0.0), 3),
                    "geometry": shapely.Point(px, py),
                }
            )
    plots = gpd.GeoDataFrame(records, geometry="geometry", crs=grid.crs)
    return plots, info


def make_population(blocks: gpd.GeoDataFrame, seed: int = 20231) -> gpd.GeoDataFrame:
    """Block polygons with residents: 2000-12000 per block, one block (industrial) with 0."""
    rng = _rng(seed, "population")
    pop = rng.integers(2000, 12_001, len(blocks))
    pop[rng.integers(len(blocks))] = 0
    return gpd.GeoDataFrame(
        {
            "zone_id": blocks["zone_id"].to_numpy(),
            "name": blocks["name"].to_numpy(),
            "population": pop.astype(np.int64),
        },
        geometry=blocks.geometry.to_numpy(),
        crs=blocks.crs,
    )


# ----------------------------------------------------------------------------- the whole city


def generate_demo(
    out_dir: str | Path,
    *,
    years: Sequence[int] = (2023, 2024),
    crs: str = "EPSG:32651",
    resolution_m: float = 10.0,
    season: tuple[str, str] = ("04-01", "10-31"),
    seed: int = 20231,
    extent_m: float = 5000.0,
    blocks: tuple[int, int] = (8, 5),
    parcels_per_block: tuple[int, int] = (5, 5),
    scenes_per_year: int = 5,
    compress: str = "zstd",
    truth_cell_m: float = TRUTH_CELL_M,
    plot_radius_m: float = PLOT_RADIUS_M,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Generate the demo city under ``out_dir``; return the manifest (also written as demo.json).

    Files (paths relative to ``out_dir``): zones/{city,district,block,parcel}.gpkg,
    greenspace.gpkg, water.gpkg, population.gpkg, plots.gpkg (each with a CSV twin),
    imagery/S2_DEMO_{YYYYMMDD}_{B04,B08,SCL}.tif and imagery/scenes.csv,
    truth/{curves.json, fractions.tif, ndvi_{year}.tif, carbon_{year}.tif,
    zones_{year}_{level}.csv}, demo.json. The manifest holds no absolute path and no
    timing, so it is byte-identical for the same parameters wherever it is written."""
    years = [int(y) for y in years]
    season = (str(season[0]), str(season[1]))
    blocks, parcels_per_block = tuple(blocks), tuple(parcels_per_block)
    _check_params(years, season, resolution_m, extent_m, blocks, parcels_per_block, scenes_per_year, compress)
    _cell_factor(resolution_m, truth_cell_m)
    if not plot_radius_m >= 0:
        raise ConfigError(f"demo: plot_radius_m must be a number >= 0 metres. Got {plot_radius_m!r}.")
    out = Path(out_dir)
    t_start = time.perf_counter()

    def step(msg: str) -> None:
        log.info("demo: %s", msg)
        if progress is not None:
            progress(msg)

    zones = make_zones(
        extent_m=extent_m, blocks=blocks, parcels_per_block=parcels_per_block, crs=crs, seed=seed
    )
    for level in LEVELS:
        gio.write_table(out / "zones" / f"{level}.gpkg", zones[level], layer=level)
    counts = {level: len(zones[level]) for level in LEVELS}
    step("zones: " + ", ".join(f"{n} {lvl}" for lvl, n in counts.items()))
    grid = Grid.from_bounds(tuple(zones["city"].total_bounds), resolution_m, crs)

    land = make_greenspace(zones, resolution_m=resolution_m, seed=seed)
    disturbed_id = choose_disturbance(land.greenspace, seed)
    gio.write_table(out / "greenspace.gpkg", land.greenspace, layer="greenspace")
    gio.write_table(out / "water.gpkg", land.water, layer="water")
    area_ha = _areas_ha(zones["city"], land)
    step(
        f"green space: {len(land.greenspace)} polygons, {area_ha['green']:.1f} ha = "
        f"{100 * area_ha['green'] / area_ha['city']:.1f} % of {area_ha['city']:.1f} ha; "
        + ", ".join(f"{t} {area_ha[t]:.1f} ha" for t in TYPES)
    )

    fractions, _ = make_fractions(land, grid, disturbed_id)
    fine = make_fine_truth(land, grid, disturbed_id, years, seed, truth_cell_m)
    truth_t = _write_truth(out / "truth", grid, zones, fractions, fine, compress)
    step(
        f"truth: {fine.label.shape[0]} x {fine.label.shape[1]} cells of {truth_cell_m:g} m "
        f"({grid.height} x {grid.width} px at {resolution_m:g} m); "
        f"vegetated {100 * fine.vegetated.mean():.1f} % of the city, tree canopy {100 * fine.canopy.mean():.1f} %; "
        "city carbon " + ", ".join(f"{y} {c:.1f} t C" for y, c in truth_t.items())
    )

    scenes = make_scenes(
        grid,
        fine.ndvi,
        fractions[FRACTION_BANDS.index("water")],
        season=season,
        scenes_per_year=scenes_per_year,
        seed=seed,
    )
    _write_scenes(out / "imagery", grid, scenes, compress)
    step(
        f"imagery: {len(scenes)} scenes ({sum(s.in_season for s in scenes)} in season), "
        f"cloud {min(s.cloud_pct for s in scenes):.0f}-{max(s.cloud_pct for s in scenes):.0f} %"
    )

    plots, plot_info = make_plots(grid, fine, land.greenspace, seed=seed, radius_m=plot_radius_m)
    del fine
    gio.write_table(out / "plots.gpkg", plots, layer="plots")
    plot_counts = {
        t: {str(y): int(((plots["type"] == t) & (plots["year"] == y)).sum()) for y in years} for t in TYPES
    }
    step(
        f"plots: {plots['plot_id'].nunique()} plots x {len(years)} years; "
        + ", ".join(f"{t} {plot_counts[t][str(years[0])]}" for t in TYPES)
    )

    population = make_population(zones["block"], seed)
    gio.write_table(out / "population.gpkg", population, layer="population")
    step(f"population: {int(population['population'].sum())} persons in {len(population)} blocks")

    dist_row = land.greenspace[land.greenspace["green_id"] == disturbed_id].iloc[0]
    manifest = {
        "generator": "greensink.demo",
        "version": __version__,
        "parameters": {
            "years": years,
            "crs": crs,
            "resolution_m": float(resolution_m),
            "season": list(season),
            "seed": int(seed),
            "extent_m": float(extent_m),
            "blocks": list(blocks),
            "parcels_per_block": list(parcels_per_block),
            "scenes_per_year": int(scenes_per_year),
            "compress": compress,
            "truth_cell_m": float(truth_cell_m),
            "plot_radius_m": float(plot_radius_m),
            "origin": list(ORIGIN),
        },
        "grid": grid.to_dict(),
        "scl_grid": scl_grid(grid).to_dict(),
        "scenes": [
            {
                **_scene_record(s, "imagery/"),
                "year": s.year,
                "in_season": s.in_season,
                "ndvi_factor": s.ndvi_factor,
            }
            for s in scenes
        ],
        "counts": {
            **counts,
            "greenspace": {t: int((land.greenspace["type"] == t).sum()) for t in TYPES},
            "water": len(land.water),
            "scenes": len(scenes),
            "plots": int(plots["plot_id"].nunique()),
        },
        "area_ha": {k: round(v, 6) for k, v in area_ha.items()},
        "green_space_ratio_pct": round(100 * area_ha["green"] / area_ha["city"], 4),
        "plots": {"count": plot_counts, **plot_info},
        "truth_carbon_t": truth_t,
        "disturbance": {
            "green_id": disturbed_id,
            "name": str(dist_row["name"]),
            "type": "XG",
            "area_ha": round(float(dist_row.geometry.area) / 1e4, 6),
            "from_year": years[1] if len(years) > 1 else None,
            "ndvi": DISTURBED_NDVI,
        },
        "curves": CURVES,
        "truth": {
            "fractions": "truth/fractions.tif",
            "curves": "truth/curves.json",
            "ndvi": {str(y): f"truth/ndvi_{y}.tif" for y in years},
            "carbon": {str(y): f"truth/carbon_{y}.tif" for y in years},
            "zones": {str(y): {lvl: f"truth/zones_{y}_{lvl}.csv" for lvl in LEVELS} for y in years},
        },
    }
    gio.write_json(out / "demo.json", manifest)
    step(f"done: {out} in {time.perf_counter() - t_start:.1f} s")
    return gio.read_json(out / "demo.json")


def _areas_ha(city: gpd.GeoDataFrame, land: Landscape) -> dict[str, float]:
    """Polygon areas in ha: per type, all green space, water and the city."""
    green = land.greenspace
    area = {t: float(green.geometry[green["type"] == t].area.sum()) / 1e4 for t in TYPES}
    area["green"] = sum(area.values())
    area["water"] = float(land.water.geometry.area.sum()) / 1e4
    area["city"] = float(city.geometry.area.sum()) / 1e4
    return area


def _write_truth(
    truth: Path,
    grid: Grid,
    zones: dict[str, gpd.GeoDataFrame],
    fractions: np.ndarray,
    fine: FineTruth,
    compress: str,
) -> dict[str, float]:
    """Write the truth rasters (pixel area means of the fine truth), curves and zone tables (from the
    fine cells); return the city carbon (t C) per year."""
    gio.write_raster(
        truth / "fractions.tif",
        fractions,
        grid,
        band_names=list(FRACTION_BANDS),
        compress=compress,
        tags={"UNITS": "fraction of pixel area", "METHOD": f"rasterized at 1/{SUPERSAMPLE} pixel, averaged"},
    )
    gio.write_json(
        truth / "curves.json",
        {
            "units": "t C per ha of type land; x = NDVI of a fine cell; 0 for x <= 0; floored at 0",
            "cell_m": fine.cell_m,
            "curves": CURVES,
        },
    )
    crs_wkt = rasterio.crs.CRS.from_user_input(grid.crs).to_wkt()
    city_t = {}
    for year in sorted(fine.ndvi):
        gio.write_raster(
            truth / f"ndvi_{year}.tif",
            pixel_ndvi(fine.ndvi[year], fine.factor),
            grid,
            band_names=["ndvi"],
            compress=compress,
            tags={"METHOD": f"NDVI of the area-mean red and NIR of {fine.cell_m:g} m cells"},
        )
        gio.write_raster(
            truth / f"carbon_{year}.tif",
            block_mean(fine.carbon[year], fine.factor),
            grid,
            band_names=["carbon_t_ha"],
            compress=compress,
            tags={"UNITS": "t C per ha of pixel", "METHOD": f"area mean of {fine.cell_m:g} m cells"},
        )
        for level in LEVELS:
            table = fine_zone_totals(fine, year, zones[level], crs_wkt)
            gio.write_csv(truth / f"zones_{year}_{level}.csv", table)
            if level == "city":
                city_t[str(year)] = round(float(table["carbon_t"].iloc[0]), 6)
    return city_t


def _scene_record(sc: Scene, prefix: str = "") -> dict:
    """The scenes.csv row of a scene (file paths relative to the imagery folder, or with ``prefix``)."""
    return {
        "scene_id": sc.scene_id,
        "datetime": sc.when.isoformat() + "Z",
        "sensor": "sentinel2-l2a",
        "processing_baseline": sc.baseline,
        "boa_add_offset": sc.offset,
        "red": f"{prefix}{sc.scene_id}_B04.tif",
        "nir": f"{prefix}{sc.scene_id}_B08.tif",
        "scl": f"{prefix}{sc.scene_id}_SCL.tif",
        "cloud_pct": sc.cloud_pct,
    }


def _write_scenes(img: Path, grid: Grid, scenes: Sequence[Scene], compress: str) -> None:
    """Write B04/B08 (10 m, uint16) and SCL (20 m, uint8) per scene, and imagery/scenes.csv."""
    g20 = scl_grid(grid)
    rows = []
    for sc in scenes:
        rec = _scene_record(sc)
        tags = {
            "DATETIME": rec["datetime"],
            "SENSOR": rec["sensor"],
            "PROCESSING_BASELINE": sc.baseline,
            "SCENE_ID": sc.scene_id,
        }
        for band, arr, key in (("B04", sc.red, "red"), ("B08", sc.nir, "nir")):
            gio.write_raster(
                img / rec[key],
                arr,
                grid,
                band_names=[band],
                compress=compress,
                nodata=0,
                tags={**tags, "BOA_ADD_OFFSET": sc.offset},
            )
        gio.write_raster(
            img / rec["scl"], sc.scl, g20, band_names=["SCL"], compress=compress, nodata=0, tags=tags
        )
        rows.append(rec)
    gio.write_csv(img / "scenes.csv", pd.DataFrame(rows))
