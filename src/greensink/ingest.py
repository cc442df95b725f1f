"""Ingest: scenes table -> harmonised surface reflectance and a clear-sky mask on the grid.

A *scene* is one acquisition: a red band, a NIR band and optionally a quality band, each a
file GDAL reads (GeoTIFF, COG, JPEG2000), listed in a scenes table (CSV) with its date and
sensor. A *sensor profile* (data, not code branches) says how digital numbers become
reflectance and which quality values are not clear sky:

* Sentinel-2 L2A: reflectance = (DN + BOA_ADD_OFFSET) / 10000; from processing baseline
  04.00 (scenes after 2022-01-25) BOA_ADD_OFFSET is −1000, before it 0. The offset is taken
  from the table (``boa_add_offset``), else from the baseline, else from the date.
  Scene classification (SCL) classes 0, 1, 3, 8, 9, 10, 11 are masked.
* Landsat Collection 2 L2: reflectance = DN × 0.0000275 − 0.2; QA_PIXEL bits 0–4 (fill,
  dilated cloud, cirrus, cloud, shadow) are masked.

Every band is read through a warped view onto the analysis :class:`~greensink.grid.Grid`
(nearest neighbour for quality bands, bilinear for reflectance), one window at a time, so
memory is bounded by the window, not the scene.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from greensink.errors import InputDataError
from greensink.grid import Grid

log = logging.getLogger(__name__)

S2_OFFSET_FROM = dt.date(2022, 1, 25)  # scenes after this date carry BOA_ADD_OFFSET = -1000

SENSORS: dict[str, dict] = {
    "sentinel2-l2a": {
        "scale": 1e-4,
        "offset": 0.0,  # replaced per scene by BOA_ADD_OFFSET / 10000
        "nodata": 0,
        "quality_column": "scl",
        "quality": {"kind": "classes", "values": [0, 1, 3, 8, 9, 10, 11]},
    },
    "landsat-c2-l2": {
        "scale": 2.75e-5,
        "offset": -0.2,
        "nodata": 0,
        "quality_column": "qa_pixel",
        "quality": {"kind": "bits", "values": [0, 1, 2, 3, 4]},
    },
}

REQUIRED_COLUMNS = ("scene_id", "datetime", "sensor", "red", "nir")


@dataclass(frozen=True)
class Scene:
    """One acquisition, with its files resolved and its harmonisation fixed."""

    scene_id: str
    datetime: str
    sensor: str
    red: str
    nir: str
    quality: str | None
    scale: float
    offset: float

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.datetime[:10])

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def read_scenes_table(path: str | Path) -> list[Scene]:
    """Read and check a scenes table; paths are relative to the table's folder. Sorted by date, id."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: scenes table not found. Check imagery.scenes in the config.")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"{path}: missing column(s) {missing}. A scenes table needs {list(REQUIRED_COLUMNS)}.")
    if table.empty:
        raise InputDataError(f"{path}: the scenes table has no rows. List at least one scene.")
    problems: list[str] = []
    scenes: list[Scene] = []
    for i, row in enumerate(table.to_dict("records"), start=2):  # row 1 is the header
        where = f"{path} row {i} (scene {row['scene_id']!r})"
        sensor = row["sensor"].strip().lower()
        if sensor not in SENSORS:
            problems.append(f"{where}: sensor must be one of {sorted(SENSORS)}. Got {row['sensor']!r}.")
            continue
        try:
            date = dt.date.fromisoformat(row["datetime"][:10])
        except ValueError:
            problems.append(f"{where}: datetime must be ISO 8601 (e.g. 2023-06-15T02:30:00Z). Got {row['datetime']!r}.")
            continue
        profile = SENSORS[sensor]
        qcol = profile["quality_column"]
        files = {k: row.get(k, "") for k in ("red", "nir", qcol)}
        resolved = {}
        for key, rel in files.items():
            if not rel:
                if key == qcol:
                    resolved[key] = None
                    continue
                problems.append(f"{where}: column {key!r} is empty. Give the {key} band file.")
                continue
            p = (path.parent / rel).resolve() if not Path(rel).is_absolute() else Path(rel)
            if not p.exists():
                problems.append(f"{where}: {key} file {str(p)!r} not found. Fix the path (relative to the table).")
            resolved[key] = str(p)
        if len(resolved) < 3:
            continue
        scale, offset = harmonisation(sensor, date, row.get("processing_baseline", ""), row.get("boa_add_offset", ""), where)
        scenes.append(Scene(row["scene_id"], row["datetime"], sensor, resolved["red"], resolved["nir"], resolved[qcol], scale, offset))
    if problems:
        raise InputDataError("Problems in the scenes table:\n" + "\n".join(f"  - {p}" for p in problems))
    ids = [s.scene_id for s in scenes]
    dupes = sorted({s for s in ids if ids.count(s) > 1})
    if dupes:
        raise InputDataError(f"{path}: duplicate scene_id {dupes}. Give each scene a unique id.")
    return sorted(scenes, key=lambda s: (s.datetime, s.scene_id))


def harmonisation(sensor: str, date: dt.date, baseline: str = "", boa_add_offset: str = "", where: str = "") -> tuple[float, float]:
    """(scale, offset) such that reflectance = DN × scale + offset, for one scene."""
    profile = SENSORS[sensor]
    if sensor != "sentinel2-l2a":
        return profile["scale"], profile["offset"]
    if str(boa_add_offset).strip() != "":
        try:
            add = float(boa_add_offset)
        except ValueError as exc:
            raise InputDataError(f"{where}: boa_add_offset must be a number (0 or -1000). Got {boa_add_offset!r}.") from exc
    elif str(baseline).strip() != "":
        try:
            add = -1000.0 if float(baseline) >= 4.0 else 0.0
        except ValueError as exc:
            raise InputDataError(f"{where}: processing_baseline must look like '04.00'. Got {baseline!r}.") from exc
    else:
        add = -1000.0 if date > S2_OFFSET_FROM else 0.0
    return profile["scale"], add * profile["scale"]


def in_season(scenes: list[Scene], year: int, season: Mapping[str, str]) -> list[Scene]:
    """Scenes of ``year`` dated within the season (MM-DD, inclusive)."""
    start = dt.date(year, *map(int, season["start"].split("-")))
    end = dt.date(year, *map(int, season["end"].split("-")))
    return [s for s in scenes if start <= s.date <= end]


def check_scene(scene: Scene, grid: Grid) -> None:
    """Raise InputDataError if a band lacks a CRS or no band overlaps the grid."""
    gxmin, gymin, gxmax, gymax = grid.bounds
    for name in ("red", "nir", "quality"):
        p = getattr(scene, name)
        if p is None:
            continue
        try:
            src = rasterio.open(p)
        except rasterio.errors.RasterioIOError as exc:
            raise InputDataError(f"scene {scene.scene_id}: {name} band {p} cannot be read ({exc}).") from exc
        with src:
            if src.crs is None:
                raise InputDataError(f"scene {scene.scene_id}: {name} band {p} has no CRS. Use a georeferenced file (GeoTIFF/COG/JP2).")
            xmin, ymin, xmax, ymax = transform_bounds(src.crs, grid.crs, *src.bounds)
        if xmax <= gxmin or xmin >= gxmax or ymax <= gymin or ymin >= gymax:
            raise InputDataError(
                f"scene {scene.scene_id}: {name} band {p} does not overlap the analysis area {grid.bounds} ({grid.crs}). "
                "Remove the scene or check the zones."
            )


def _warped_read(
    path: str, grid: Grid, window: Window, resampling: Resampling, default_nodata: float | None = None
) -> tuple[np.ndarray, float | None]:
    with rasterio.open(path) as src:
        # A file that declares no nodata still has the sensor's fill value (DN 0); telling the warper
        # keeps fill out of the bilinear kernel, so scene edges and holes do not blend into data.
        nodata = src.nodata if src.nodata is not None else default_nodata
        with WarpedVRT(
            src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
            resampling=resampling, src_nodata=nodata, nodata=nodata,
        ) as vrt:
            arr = vrt.read(1, window=window)
    return arr, nodata


def read_scene_window(scene: Scene, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red and NIR reflectance (float32, NaN where no data) and the clear-sky mask for a window."""
    profile = SENSORS[scene.sensor]
    out = []
    for band in (scene.red, scene.nir):
        dn, nodata = _warped_read(band, grid, window, Resampling.bilinear, default_nodata=profile["nodata"])
        nod = profile["nodata"] if nodata is None else nodata
        # float64 then one rounding to float32: the same reflectance from either S2 baseline is bit-identical
        refl = (dn.astype(np.float64) * scene.scale + scene.offset).astype(np.float32)
        refl[dn == nod] = np.nan
        out.append(refl)
    red, nir = out
    clear = np.isfinite(red) & np.isfinite(nir)
    if scene.quality is not None:
        q, _ = _warped_read(scene.quality, grid, window, Resampling.nearest)
        clear &= quality_clear(q, profile["quality"])
    return red, nir, clear


def quality_clear(q: np.ndarray, rule: Mapping) -> np.ndarray:
    """True where a quality band says clear sky: not one of the masked classes / no masked bit set."""
    q = q.astype(np.int64)
    if rule["kind"] == "classes":
        return ~np.isin(q, rule["values"])
    bits = 0
    for b in rule["values"]:
        bits |= 1 << b
    return (q & bits) == 0


def scene_clear_fraction(scene: Scene, grid: Grid, block_rows: int = 512) -> float:
    """Share of grid pixels the scene sees clear (0–1)."""
    clear_n = 0
    for rows, _ in grid.windows(block_rows):
        window = Window(0, rows.start, grid.width, rows.stop - rows.start)
        _, _, clear = read_scene_window(scene, grid, window)
        clear_n += int(clear.sum())
    return clear_n / (grid.width * grid.height)
