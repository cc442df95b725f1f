"""The city's layout: nested zones on a jittered lattice, water, the ring road and typed green space
(see :mod:`greensink.demo` for the rules), and the polygon cleared in the second year."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LinearRing, LineString, Polygon, box

from greensink.demo.params import (
    DISTRICT_NAMES,
    EDGE_MARGIN_PX,
    LEVELS,
    MIN_PART_M2,
    ORIGIN,
    TYPES,
    XG_HOST_M,
    step_rng,
)
from greensink.units import ha_to_m2, m2_to_ha

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- helpers


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
    boundary is not straight either. Where the spacing is under 20 m, the move across the edge
    shrinks to 20 % of the spacing too, so parcels of any size stay valid quadrilaterals."""
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
    edge_jitter *= np.array([min(1.0, 0.05 * dx), min(1.0, 0.05 * dy)])[:, None, None]  # at most 20 % of the spacing
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
    nodes = make_lattice(extent_m, blocks, parcels_per_block, step_rng(seed, "zones"))
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
    """First shape make(cx, cy) at a random centre that lies within ``inside`` and misses ``avoid``;
    None when none does, also when ``inside`` is empty (a parcel too small for its inset core)."""
    if inside.is_empty:
        return None
    xmin, ymin, xmax, ymax = inside.bounds
    shapely.prepare(inside)
    for _ in range(tries):
        cx, cy = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        shape = make(cx, cy)
        if shape.within(inside) and not shape.intersects(avoid):
            return shape
    return None


def _plaza(rng: np.random.Generator, cx: float, cy: float) -> Polygon:
    area = ha_to_m2(rng.uniform(0.5, 2.0))
    aspect = rng.uniform(1.0, 1.6)
    w = math.sqrt(area * aspect)
    h = area / w
    rect = box(cx - w / 2 + 6, cy - h / 2 + 6, cx + w / 2 - 6, cy + h / 2 - 6).buffer(6.0, quad_segs=4)
    return affinity.rotate(rect, rng.uniform(0.0, 90.0), origin=(cx, cy))


def _host_cells(city: shapely.Geometry, side_m: float) -> gpd.GeoDataFrame:
    """Square cells of ``side_m`` over the city (clipped to it): hosts of XG where parcels are too small."""
    xmin, ymin, xmax, ymax = city.bounds
    xs, ys = np.meshgrid(np.arange(xmin, xmax, side_m), np.arange(ymin, ymax, side_m))
    cells = shapely.intersection(shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + side_m, ys.ravel() + side_m), city)
    cells = cells[shapely.area(cells) > 0]
    return gpd.GeoDataFrame({"zone_id": [f"cell {i + 1:05d}" for i in range(len(cells))]}, geometry=cells)


def _attached_green(
    rng: np.random.Generator, hosts: gpd.GeoDataFrame, taken: shapely.Geometry, inner: shapely.Geometry
) -> list[tuple[str, str, Polygon]]:
    """XG rows (type, name, polygon) inside ~55 % of ``hosts`` (zones) not already mostly green: an
    inset host (60 %) or 1-3 small blobs (40 %). Empty where no host has room (under about 20 m across)."""
    xg_rows = []
    draws = rng.random((len(hosts), 3))
    for (pid, parcel), (pick, mode, k) in zip(
        zip(hosts["zone_id"], hosts.geometry, strict=True), draws, strict=True
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
    return xg_rows


def make_greenspace(
    zones: dict[str, gpd.GeoDataFrame], *, resolution_m: float = 10.0, seed: int = 20231
) -> Landscape:
    """Water, ring road and typed green space inside the city of ``zones``.

    Counts and sizes scale with the city's area (a = area / 25 km²): parks max(3, 14a) of
    2-30 ha (the first, 15-30 ha, holds a lake); plazas max(5, 10a) of 0.5-2 ha; an EG forest
    of (60-90 ha) * a at the west edge; G2 strips 30-60 m wide on both banks of the river and
    both sides of the ring road; XG inside ~55 % of the parcels not already mostly green (of square
    cells of XG_HOST_M over the city, where parcels are too small to hold any)."""
    rng = step_rng(seed, "greenspace")
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
    eg_target = ha_to_m2(rng.uniform(60.0, 90.0)) * a
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
    areas = ha_to_m2(np.sort(np.exp(rng.uniform(math.log(2.0), math.log(30.0), n_parks)))[::-1])
    areas[0] = ha_to_m2(rng.uniform(15.0, 30.0))
    avoid = shapely.union_all([grey.buffer(25.0), eg.buffer(60.0)])
    park_inside = inner.buffer(-20.0)
    parks: list[tuple[Polygon, str]] = []
    lakes: list[Polygon] = []
    for i, area in enumerate(areas):
        park = _place(rng, lambda cx, cy, area=area: _blob(rng, cx, cy, area), park_inside, avoid)
        if park is None:
            log.warning("demo: no room for park %d of %.1f ha; skipped", i + 1, m2_to_ha(area))
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

    # XG inside parcels; where no parcel has room for any (parcels under about 20 m across), inside
    # square cells of XG_HOST_M instead, each spanning several small parcels
    xg_rows = _attached_green(rng, zones["parcel"], taken, inner)
    if not xg_rows:
        log.info("demo: parcels too small to hold attached green space (XG); placed in %g m cells instead", XG_HOST_M)
        xg_rows = _attached_green(rng, _host_cells(city, XG_HOST_M), taken, inner)

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
    return str(big["green_id"].iloc[step_rng(seed, "disturbance").integers(len(big))])
