"""The demo city's fixed numbers: levels, types, NDVI classes, the hidden carbon curves, Sentinel-2
conventions, plot and fine-truth settings; the checks of generate_demo's parameters; one random
generator per step."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from datetime import date

import numpy as np

from greensink import io as gio
from greensink.errors import ConfigError

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
XG_HOST_M = 60.0  # where parcels are too small to hold attached green space (XG), cells this wide host it
MIN_PARCEL_M = 1.0  # smallest parcel side the demo makes (extent_m / (blocks × parcels_per_block)), metres

# Sentinel-2 L2A conventions
S2_QUANTIFICATION = 10_000.0  # L2A BOA_QUANTIFICATION_VALUE: DN per unit of reflectance
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


def step_rng(seed: int, step: str) -> np.random.Generator:
    """An independent generator per step, so changing one step's draws leaves the others alone."""
    return np.random.default_rng([int(seed), zlib.crc32(step.encode("utf-8"))])


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


def check_params(
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
        start, end = (season_date(2001, s) for s in season)
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
    elif len(blocks) == 2 and min(blocks) >= 2 and (problem := parcel_size_problem(extent_m, blocks, parcels_per_block)):
        problems.append(problem)
    if scenes_per_year < 2:
        problems.append(
            f"scenes_per_year must be >= 2 (every pixel needs 2 clear dates). Got {scenes_per_year!r}."
        )
    if compress not in gio.COMPRESS_OPTIONS:
        problems.append(f"compress must be one of {sorted(gio.COMPRESS_OPTIONS)}. Got {compress!r}.")
    if problems:
        raise ConfigError("demo: " + " ".join(problems))


def parcel_size_problem(extent_m: float, blocks: Sequence[int], parcels_per_block: Sequence[int]) -> str | None:
    """Why the demo cannot make parcels of this size (the lattice spacing extent_m / (blocks ×
    parcels_per_block) under MIN_PARCEL_M in either direction), or None. Parcels down to MIN_PARCEL_M
    are made (those under about 20 m hold no attached green space: it goes into XG_HOST_M cells)."""
    across, down = (int(b) * int(p) for b, p in zip(blocks, parcels_per_block, strict=True))
    width, height = extent_m / across, extent_m / down
    if min(width, height) >= MIN_PARCEL_M:
        return None
    most = math.floor(extent_m / MIN_PARCEL_M)
    return (f"parcels would be {width:.3g} m × {height:.3g} m (demo.extent_m {extent_m:g} / (demo.blocks × "
            f"demo.parcels_per_block) = {extent_m:g} / {across} across, {extent_m:g} / {down} down); the demo makes "
            f"parcels of at least {MIN_PARCEL_M:g} m across. Raise demo.extent_m, or lower demo.blocks or "
            f"demo.parcels_per_block (at most {most} parcels across or down in all).")


def season_date(year: int, mmdd: str) -> date:
    month, day = (int(v) for v in mmdd.split("-"))
    return date(year, month, day)


def cell_factor(resolution_m: float, cell_m: float) -> int:
    factor = round(resolution_m / cell_m)
    if not cell_m > 0 or factor < 1 or abs(factor * cell_m - resolution_m) > 1e-9 * resolution_m:
        raise ConfigError(
            f"demo: truth_cell_m must divide the resolution ({resolution_m:g} m) into whole cells. "
            f"Got {cell_m!r}. Use e.g. {resolution_m / 5:g} or {resolution_m / 2:g}."
        )
    return factor
