"""Sentinel-2 L2A-like imagery of the truth: dates, phenology, clouds, cirrus and shadows, DN and SCL
bands; the imagery files (imagery/ and scenes.csv)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from affine import Affine
from scipy import ndimage

from greensink import io as gio
from greensink.demo.params import (
    NDVI_MAX,
    OVERPASS_UTC,
    PHENOLOGY_AMPLITUDE,
    S2_OFFSET_SINCE,
    S2_QUANTIFICATION,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_NOT_VEGETATED,
    SCL_SHADOW,
    SCL_VEGETATION,
    SCL_WATER,
    SENSOR_NOISE,
    SHADOW_OFFSET_M,
    WINTER_DAMPING,
    season_date,
    step_rng,
)
from greensink.demo.truth import block_mean, reflectance
from greensink.grid import Grid

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
    start, end = season_date(year, season[0]), season_date(year, season[1])
    span = (end - start).days
    offsets = np.linspace(0.20 * span, 0.85 * span, n)
    return [start + timedelta(days=int(round(o))) for o in offsets]


def off_season_date(year: int, season: tuple[str, str]) -> date:
    """The date of the one out-of-season scene: 8 January, or mid-way from the season's end to
    the end of the year when the season starts before 8 January."""
    jan8 = date(year, 1, 8)
    if jan8 < season_date(year, season[0]):
        return jan8
    end = season_date(year, season[1])
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
        rng = step_rng(seed, f"scenes-{year}")
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
        return np.clip(np.round(refl * S2_QUANTIFICATION) - offset, 1, 65_535).astype(np.uint16)

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


# ----------------------------------------------------------------------------- imagery files


def scene_record(sc: Scene, prefix: str = "") -> dict:
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


def write_scenes(img: Path, grid: Grid, scenes: Sequence[Scene], compress: str) -> None:
    """Write B04/B08 (10 m, uint16) and SCL (20 m, uint8) per scene, and imagery/scenes.csv."""
    g20 = scl_grid(grid)
    rows = []
    for sc in scenes:
        rec = scene_record(sc)
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
