"""Field plots (circles inside their type's green space, measured every year with a 10 % error) and
block population."""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import numpy as np
import shapely

from greensink.demo.params import (
    MIN_PLOTS_PER_TYPE,
    PLOT_MIN_DISTANCE_M,
    PLOT_NOISE,
    PLOT_RADIUS_M,
    PLOTS_PER_TYPE,
    TYPES,
    step_rng,
)
from greensink.demo.truth import FineTruth
from greensink.grid import Grid
from greensink.units import m2_to_ha

log = logging.getLogger(__name__)


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
    rng = step_rng(seed, "plots")
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
        info["eligible_area_ha"][typ] = round(m2_to_ha(inner.area), 4)
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
    rng = step_rng(seed, "population")
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
