"""Ingest: local scenes -> harmonised reflectance and a clear-sky mask on the analysis grid.

A *scene* is one acquisition: a red band, a NIR band and optionally a quality band, each a
band of a file GDAL reads (GeoTIFF, COG, JPEG2000). Several bands may share one file (NAIP
keeps R, G, B, NIR in one GeoTIFF). Scenes are listed in a scenes table (CSV) or found by
globs (``imagery.files``) whose file names carry the date.

A *sensor profile* says how a scene's digital numbers become reflectance and which quality
values are not clear sky. Profiles are data, not code branches: the built-in ones below can
be overridden, and new ones added, in the config (``imagery.profiles``). A profile holds

* ``scale``, ``offset``: reflectance = DN × scale + offset; a number applies to both bands, a
  mapping ``{red: ..., nir: ...}`` gives each band its own gain and offset (Landsat-7 DN:
  radiance gains differ per band). After calibration the red and NIR values of every scene
  are checked: a median far above 1 (or below −0.5) is not reflectance, and is warned about;
* ``offset_rule``: ``sentinel2-baseline`` replaces ``offset`` per scene by the Sentinel-2
  BOA_ADD_OFFSET (L2A) / RADIO_ADD_OFFSET (L1C) of −1000 DN from processing baseline 04.00
  (scenes after 2022-01-25), 0 before; taken from the scene's ``boa_add_offset`` /
  ``radio_add_offset``, else its ``processing_baseline``, else its date;
* ``nodata``: the DN that means no data where the file declares none (with
  ``nodata_override`` also where the file declares another value);
* ``bands``: the 1-based band index of red, NIR and quality in their files;
* ``quality``: a bit rule or a class rule, with the values that are ``masked`` (a set bit or a
  listed class is not clear) or ``clear`` (every listed bit set, or a listed class, is clear).

Every band is read through a warped view onto the analysis :class:`~greensink.grid.Grid`
(nearest neighbour for quality bands, bilinear for reflectance), one window at a time, so
memory is bounded by the window, not the scene. A band whose pixels are the grid's pixels (same
CRS, same pixel size, corners on the grid's lattice) is copied pixel for pixel, not
interpolated. The workflow's grid follows the imagery's own lattice (``grid.align: imagery``,
:func:`imagery_lattice`); a scene in another CRS, of another pixel size or on a lattice shifted
from the grid's is resampled, and the ingest says so: a warning naming the scene and the shift in
metres, and ``resampled`` / ``resampling`` in its scenes.json record (:func:`scene_alignment`).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import glob
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from greensink.config import demo_paths
from greensink.errors import ConfigError, InputDataError
from greensink.grid import Grid, lattice_offset

log = logging.getLogger(__name__)

# STAC assets read over http(s) (GDAL /vsicurl/): retry transient HTTP errors (429, 5xx) and do not
# list the remote folder on open. Set as environment defaults so every process that reads scenes
# (ingest, composite) has them; a value already in the environment wins.
GDAL_HTTP_DEFAULTS = {"GDAL_HTTP_MAX_RETRY": "5", "GDAL_HTTP_RETRY_DELAY": "2", "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
for _k, _v in GDAL_HTTP_DEFAULTS.items():
    os.environ.setdefault(_k, _v)

S2_OFFSET_FROM = dt.date(2022, 1, 25)  # scenes after this date carry BOA/RADIO_ADD_OFFSET = -1000

# GA pixel-quality (PQ25) bits, set = test passed: 0-7 not saturated in TM bands 1, 2, 3, 4, 5, 6(1), 6(2), 7;
# 8 contiguous (every band, thermal included, has data); 9 land (not sea); 10/11 no cloud (ACCA/Fmask);
# 12/13 no cloud shadow (ACCA/Fmask). For NDVI a pixel is clear when red (3) and NIR (4) are not saturated and
# no cloud or shadow test failed. Contiguity is not required: missing red/NIR is nodata (-999) already, and over
# Canberra 1992 the contiguity bit fails on a quarter of the scene where only the thermal band (unused) is missing.
GA_PQ_CLEAR_BITS = [2, 3, 10, 11, 12, 13]

PROFILES: dict[str, dict] = {
    "sentinel2-l2a": {
        "description": "Sentinel-2 MSI Level-2A surface reflectance, DN = 10000 ρ − BOA_ADD_OFFSET; SCL scene classification",
        "scale": 1e-4,
        "offset": 0.0,
        "offset_rule": "sentinel2-baseline",
        "nodata": 0,
        "nodata_override": False,
        "bands": {"red": 1, "nir": 1, "quality": 1},
        # SCL 0 no data, 1 saturated/defective, 3 cloud shadow, 8/9 cloud medium/high, 10 cirrus, 11 snow
        "quality": {"rule": "classes", "masked": [0, 1, 3, 8, 9, 10, 11]},
        "quality_column": "scl",
    },
    "sentinel2-l1c": {
        "description": "Sentinel-2 MSI Level-1C top-of-atmosphere reflectance, DN = 10000 ρ − RADIO_ADD_OFFSET; no cloud mask",
        "scale": 1e-4,
        "offset": 0.0,
        "offset_rule": "sentinel2-baseline",
        "nodata": 0,
        "nodata_override": False,
        "bands": {"red": 1, "nir": 1, "quality": 1},
        "quality": None,
        "quality_column": None,
    },
    "landsat-c2-l2": {
        "description": "Landsat Collection 2 Level-2 surface reflectance, ρ = DN × 0.0000275 − 0.2; QA_PIXEL bits",
        "scale": 2.75e-5,
        "offset": -0.2,
        "offset_rule": "none",
        "nodata": 0,
        "nodata_override": False,
        "bands": {"red": 1, "nir": 1, "quality": 1},
        # QA_PIXEL bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow
        "quality": {"rule": "bits", "masked": [0, 1, 2, 3, 4]},
        "quality_column": "qa_pixel",
    },
    "ga-landsat-nbar": {
        "description": "Geoscience Australia Landsat-5/7 NBAR surface reflectance ×10000 (int16, nodata −999); PQ25 bit mask",
        "scale": 1e-4,
        "offset": 0.0,
        "offset_rule": "none",
        "nodata": -999,
        "nodata_override": False,
        "bands": {"red": 1, "nir": 1, "quality": 1},
        "quality": {"rule": "bits", "clear": GA_PQ_CLEAR_BITS},
        "quality_column": "pq",
    },
    "naip": {
        "description": "USDA NAIP 4-band uint8 (R, G, B, NIR in one file), nodata 0; DN/255, not calibrated reflectance",
        "scale": 1.0 / 255.0,
        "offset": 0.0,
        "offset_rule": "none",
        "nodata": 0,
        "nodata_override": False,
        "bands": {"red": 1, "nir": 4, "quality": 1},
        "quality": None,
        "quality_column": None,
    },
}
SENSORS = PROFILES  # the former name of the built-in profiles

PROFILE_KEYS = ("description", "base", "scale", "offset", "offset_rule", "nodata", "nodata_override", "bands", "quality", "quality_column")
OFFSET_RULES = ("none", "sentinel2-baseline")
ROLES = ("red", "nir", "quality")
BANDS = ("red", "nir")  # the reflectance bands; scale and offset may be given per band
REQUIRED_COLUMNS = ("scene_id", "datetime", "sensor", "red", "nir")

# A date in a file name: YYYYMMDD or YYYY-MM-DD / YYYY_MM_DD, not inside a longer run of digits.
DEFAULT_PATTERN = r"(?<!\d)(?P<date>(?:19|20)\d{2}[-_]?(?:0[1-9]|1[0-2])[-_]?(?:0[1-9]|[12]\d|3[01]))(?!\d)"

# Calibration check: reflectance lies between 0 and about 1 (bright cloud or snow ~1); a median of the valid
# values of a band after calibration above REFLECTANCE_MEDIAN_MAX or below REFLECTANCE_MEDIAN_MIN is not
# reflectance (uncalibrated DN or radiance, a missing scale or offset). Read from at most ~1024² pixels.
REFLECTANCE_MEDIAN_MAX = 1.5
REFLECTANCE_MEDIAN_MIN = -0.5

# Suspect nodata: a value (0 or the band minimum) that is not the nodata in use but fills at least
# SUSPECT_NODATA_PCT % of the pixels, and either SUSPECT_EDGE_PCT % of the image border or
# SUSPECT_NODATA_ALONE_PCT % of the pixels, looks like fill; the check reads at most ~1024² pixels.
SUSPECT_NODATA_PCT = 1.0
SUSPECT_EDGE_PCT = 10.0
SUSPECT_NODATA_ALONE_PCT = 5.0
COVERAGE_WARN_PCT = 50.0  # warn when a year's scenes see less of the analysis area than this


# ----------------------------------------------------------------------------- profiles


def resolve_profiles(custom: Mapping | None = None) -> dict[str, dict]:
    """The built-in profiles, overridden and extended by ``imagery.profiles`` of the config.

    A custom profile named like a built-in one changes only the keys it gives; a new name
    starts from ``base`` (a built-in name) if given, else from scratch and then needs ``scale``.
    Raises ConfigError listing every problem."""
    profiles, problems = _resolve_profiles(custom)
    if problems:
        raise ConfigError("Invalid sensor profile(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return profiles


def _resolve_profiles(custom: Mapping | None) -> tuple[dict[str, dict], list[str]]:
    out = copy.deepcopy(PROFILES)
    problems: list[str] = []
    for name, spec in sorted((custom or {}).items()):
        where = f"imagery.profiles.{name}"
        if not isinstance(spec, Mapping):
            problems.append(f"{where}: must be a mapping of profile keys. Got {spec!r}.")
            continue
        unknown = sorted(set(spec) - set(PROFILE_KEYS))
        if unknown:
            problems.append(f"{where}: unknown key(s) {unknown}. Allowed: {list(PROFILE_KEYS)}.")
            continue
        base = spec.get("base", name if name in PROFILES else None)
        if base is not None and base not in PROFILES:
            problems.append(f"{where}.base: {base!r} is not a built-in profile. Use one of {sorted(PROFILES)} or drop base.")
            continue
        if base is None and "scale" not in spec:
            problems.append(f"{where}.scale: required for a new profile (reflectance = DN × scale + offset). "
                            f"Give scale, or base: one of {sorted(PROFILES)}.")
            continue
        profile = copy.deepcopy(PROFILES[base]) if base else {
            "description": "", "offset": 0.0, "offset_rule": "none", "nodata": None, "nodata_override": False,
            "bands": {"red": 1, "nir": 1, "quality": 1}, "quality": None, "quality_column": None,
        }
        for key, value in spec.items():
            if key == "bands" and isinstance(value, Mapping):
                profile["bands"] = {**profile["bands"], **value}
            elif key != "base":
                profile[key] = copy.deepcopy(value)
        profile["base"] = base
        problems += profile_problems(profile, where)
        out[name] = profile
    return out, problems


def profile_problems(profile: Mapping, where: str) -> list[str]:
    """What is wrong with one resolved profile, each naming the key and the fix."""
    problems: list[str] = []
    problems += _calibration_problems(profile.get("scale"), f"{where}.scale", positive=True)
    problems += _calibration_problems(profile.get("offset"), f"{where}.offset", positive=False)
    if profile.get("offset_rule", "none") not in OFFSET_RULES:
        problems.append(f"{where}.offset_rule: must be one of {list(OFFSET_RULES)}. Got {profile.get('offset_rule')!r}.")
    nodata = profile.get("nodata")
    if nodata is not None and (not isinstance(nodata, int | float) or isinstance(nodata, bool)):
        problems.append(f"{where}.nodata: must be a number or null. Got {nodata!r}.")
    for role, band in (profile.get("bands") or {}).items():
        if role not in ROLES:
            problems.append(f"{where}.bands: unknown band role {role!r}. Use {list(ROLES)}.")
        elif not isinstance(band, int) or isinstance(band, bool) or band < 1:
            problems.append(f"{where}.bands.{role}: must be a band index ≥ 1 (1 = first band). Got {band!r}.")
    rule = profile.get("quality")
    if rule is not None:
        problems += _quality_rule_problems(rule, f"{where}.quality")
    return problems


def _is_number(v: Any, positive: bool) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)


def _calibration_problems(value: Any, where: str, positive: bool) -> list[str]:
    """A scale (positive) or offset: one number for both bands, or a mapping {red: number, nir: number}."""
    what = "a number > 0 (reflectance per DN, e.g. 0.0001)" if positive else "a number (reflectance at DN 0, e.g. -0.2)"
    if isinstance(value, Mapping):
        keys = set(value)
        if keys != set(BANDS):
            return [f"{where}: a per-band mapping needs exactly the keys red and nir, each {what}. Got keys {sorted(map(str, keys))}. "
                    f"Give e.g. {{red: 0.0123, nir: 0.0098}}, or one number for both bands."]
        return [f"{where}.{band}: must be {what}. Got {value[band]!r}." for band in BANDS if not _is_number(value[band], positive)]
    if not _is_number(value, positive):
        return [f"{where}: must be {what}, or a mapping {{red: ..., nir: ...}} of one per band. Got {value!r}."]
    return []


def band_value(value: float | Mapping[str, float], band: str) -> float:
    """A profile's scale or offset for ``band`` (red or nir): the number itself, or the band's entry of a per-band mapping."""
    return float(value[band]) if isinstance(value, Mapping) else float(value)


def _quality_rule_problems(rule, where: str) -> list[str]:
    if not isinstance(rule, Mapping):
        return [f"{where}: must be a mapping like {{rule: bits, masked: [0, 3]}}. Got {rule!r}."]
    problems = []
    if rule.get("rule") not in ("bits", "classes"):
        problems.append(f"{where}.rule: must be 'bits' or 'classes'. Got {rule.get('rule')!r}.")
    given = [k for k in ("masked", "clear") if k in rule]
    if len(given) != 1:
        problems.append(f"{where}: give exactly one of masked (values that are not clear) or clear (values that are). Got {given or 'neither'}.")
    for k in given:
        values = rule[k]
        top = 63 if rule.get("rule") == "bits" else None
        ok = isinstance(values, list) and values and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 and (top is None or v <= top) for v in values)
        if not ok:
            what = "bit numbers 0–63" if top else "class values ≥ 0"
            problems.append(f"{where}.{k}: must be a non-empty list of {what}. Got {values!r}.")
    return problems


def quality_clear(q: np.ndarray, rule: Mapping) -> np.ndarray:
    """True where a quality band says clear sky under ``rule`` ({rule: bits|classes, masked|clear: [...]})."""
    q = q.astype(np.int64)
    if rule["rule"] == "classes":
        if "clear" in rule:
            return np.isin(q, rule["clear"])
        return ~np.isin(q, rule["masked"])
    bits = 0
    for b in rule.get("clear", rule.get("masked", [])):
        bits |= 1 << b
    if "clear" in rule:
        return (q & bits) == bits  # every required test passed
    return (q & bits) == 0  # no flag set


# ----------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Scene:
    """One acquisition, with its files resolved and its harmonisation fixed.

    ``sensor`` names the profile. The profile fields (band indexes, nodata, quality rule) are
    copied into the scene, so a scene record read back from JSON needs no config. Built without
    them, a scene of a built-in profile takes that profile's values.

    Reflectance = DN × ``scale`` + ``offset`` for red, and for NIR too unless ``nir_scale`` /
    ``nir_offset`` are given (a profile with per-band calibration); see :meth:`calibration`."""

    scene_id: str
    datetime: str
    sensor: str
    red: str
    nir: str
    quality: str | None
    scale: float
    offset: float
    red_band: int | None = None
    nir_band: int | None = None
    quality_band: int | None = None
    nodata: float | None = None
    nodata_override: bool = False
    quality_rule: dict | None = None
    nir_scale: float | None = None
    nir_offset: float | None = None

    def calibration(self, band: str) -> tuple[float, float]:
        """(scale, offset) of ``band`` (red or nir): reflectance = DN × scale + offset."""
        if band == "nir":
            return (self.scale if self.nir_scale is None else self.nir_scale,
                    self.offset if self.nir_offset is None else self.nir_offset)
        return self.scale, self.offset

    def __post_init__(self) -> None:
        if any(getattr(self, f"{role}_band") is not None for role in ROLES):
            return  # built from a profile (make_scene) or a record: every field is as given
        builtin = PROFILES.get(self.sensor, {})
        bands = builtin.get("bands", {})
        for role in ROLES:
            object.__setattr__(self, f"{role}_band", int(bands.get(role, 1)))
        if self.nodata is None and builtin:
            object.__setattr__(self, "nodata", builtin["nodata"])
        if self.quality is not None and self.quality_rule is None and builtin.get("quality"):
            object.__setattr__(self, "quality_rule", copy.deepcopy(builtin["quality"]))

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.datetime[:10])

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, record: Mapping) -> Scene:
        """A scene from its record (extra keys such as statistics are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def band_files(self) -> list[tuple[str, str, int]]:
        """(role, path, band index) of every band read."""
        out = [("red", self.red, self.red_band), ("nir", self.nir, self.nir_band)]
        if self.quality is not None:
            out.append(("quality", self.quality, self.quality_band))
        return out


def make_scene(scene_id: str, datetime: str, name: str, profile: Mapping, red: str, nir: str, quality: str | None,
               baseline: str = "", add_offset: str = "", where: str = "") -> Scene:
    """A scene of profile ``name`` with its harmonisation fixed for its date."""
    date = dt.date.fromisoformat(datetime[:10])
    scale, offset = harmonisation(profile, date, baseline, add_offset, where)
    nir_scale, nir_offset = harmonisation(profile, date, baseline, add_offset, where, band="nir")
    bands = profile.get("bands", {})
    return Scene(
        scene_id, datetime, name, red, nir, quality, scale, offset,
        red_band=int(bands.get("red", 1)), nir_band=int(bands.get("nir", 1)), quality_band=int(bands.get("quality", 1)),
        nodata=profile.get("nodata"), nodata_override=bool(profile.get("nodata_override", False)),
        quality_rule=copy.deepcopy(profile.get("quality")) if quality is not None else None,
        nir_scale=None if nir_scale == scale else nir_scale, nir_offset=None if nir_offset == offset else nir_offset,
    )


def harmonisation(sensor: str | Mapping, date: dt.date, baseline: str = "", boa_add_offset: str = "", where: str = "",
                  profiles: Mapping[str, Mapping] | None = None, band: str = "red") -> tuple[float, float]:
    """(scale, offset) such that reflectance = DN × scale + offset, for one band (red or nir) of one scene.

    ``sensor`` is a profile or a profile name; its scale and offset are one number for both bands
    or a mapping per band. Under the ``sentinel2-baseline`` rule the offset
    is BOA_ADD_OFFSET × scale, the add-offset from ``boa_add_offset`` if given, else −1000 from
    ``baseline`` 04.00 on and 0 before, else from the date (−1000 after 2022-01-25)."""
    profile = sensor if isinstance(sensor, Mapping) else (profiles or PROFILES)[sensor]
    scale = band_value(profile["scale"], band)
    if profile.get("offset_rule", "none") != "sentinel2-baseline":
        return scale, band_value(profile["offset"], band)
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
    return scale, add * scale


def read_scenes_table(path: str | Path, profiles: Mapping[str, Mapping] | None = None) -> list[Scene]:
    """Read and check a scenes table; paths are relative to the table's folder. Sorted by date, id.

    ``sensor`` names a profile (built-in or from ``profiles``). The quality file is in the column
    the profile names (``scl``, ``qa_pixel``, ``pq``) or in ``quality``; Sentinel-2 rows may give
    ``processing_baseline`` and ``boa_add_offset`` (or ``radio_add_offset`` for L1C)."""
    profiles = profiles or PROFILES
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
        if sensor not in profiles:
            problems.append(f"{where}: sensor must be one of {sorted(profiles)} (a profile; add others under "
                            f"imagery.profiles). Got {row['sensor']!r}.")
            continue
        try:
            dt.date.fromisoformat(row["datetime"][:10])
        except ValueError:
            problems.append(f"{where}: datetime must be ISO 8601 (e.g. 2023-06-15T02:30:00Z). Got {row['datetime']!r}.")
            continue
        profile = profiles[sensor]
        qcols = [c for c in (profile.get("quality_column"), "quality") if c]
        qcol = next((c for c in qcols if row.get(c, "")), None)
        files = {"red": row.get("red", ""), "nir": row.get("nir", ""), "quality": row.get(qcol, "") if qcol else ""}
        resolved: dict[str, str | None] = {}
        for key, rel in files.items():
            if not rel:
                if key == "quality":
                    resolved[key] = None
                    continue
                problems.append(f"{where}: column {key!r} is empty. Give the {key} band file.")
                continue
            p = (path.parent / rel).resolve() if not Path(rel).is_absolute() else Path(rel)
            if not p.exists():
                problems.append(f"{where}: {key} file {str(p)!r} not found. Fix the path (relative to the table).")
            resolved[key] = str(p)
        if resolved.get("quality") and not profile.get("quality"):
            problems.append(f"{where}: a quality file is given but profile {sensor!r} has no quality rule. "
                            f"Remove the file, or give imagery.profiles.{sensor}.quality.")
            continue
        if len(resolved) < 3:
            continue
        add_offset = row.get("boa_add_offset", "") or row.get("radio_add_offset", "")
        try:
            scenes.append(make_scene(row["scene_id"], row["datetime"], sensor, profile, resolved["red"], resolved["nir"],
                                     resolved["quality"], row.get("processing_baseline", ""), add_offset, where))
        except InputDataError as exc:
            problems.append(str(exc))
    if problems:
        raise InputDataError("Problems in the scenes table:\n" + "\n".join(f"  - {p}" for p in problems))
    _check_unique_ids(scenes, str(path))
    return sorted(scenes, key=lambda s: (s.datetime, s.scene_id))


def _check_unique_ids(scenes: Sequence[Scene], where: str) -> None:
    ids = [s.scene_id for s in scenes]
    dupes = sorted({s for s in ids if ids.count(s) > 1})
    if dupes:
        raise InputDataError(f"{where}: duplicate scene_id {dupes}. Give each scene a unique id.")


# ----------------------------------------------------------------------------- scenes from globs


def date_from_text(text: str) -> dt.date:
    """A date from YYYYMMDD, YYYY-MM-DD, YYYY_MM_DD, YYYY:MM:DD (TIFF tags, time after it ignored) or YYYYDDD (day of year)."""
    m = re.match(r"(\d{4})[-_:./]?(\d{2})[-_:./]?(\d{2})(?!\d)", text.strip())
    if m:
        return dt.date(*map(int, m.groups()))
    m = re.fullmatch(r"(\d{4})(\d{3})", text.strip())
    if m:
        return dt.date(int(m.group(1)), 1, 1) + dt.timedelta(days=int(m.group(2)) - 1)
    raise ValueError(f"{text!r} is not a date (YYYYMMDD, YYYY-MM-DD or YYYYDDD)")


def _expand(globs: str | Sequence[str] | None) -> list[str]:
    if not globs:
        return []
    found: set[str] = set()
    for g in [globs] if isinstance(globs, str) else globs:
        found.update(str(Path(p).resolve()) for p in glob.glob(str(Path(g).expanduser()), recursive=True) if Path(p).is_file())
    return sorted(found)


def _file_key(path: str, pattern: re.Pattern, date_tag: str | None) -> tuple[dt.date, str, str]:
    """(date, scene, baseline) of a file: from the pattern's named groups, searched in the file name and,
    if it does not match there, in the whole path (e.g. a .SAFE folder name); or the date from a metadata tag."""
    m = pattern.search(Path(path).name) or pattern.search(path)
    if date_tag:
        with rasterio.open(path) as src:
            value = src.tags().get(date_tag)
        if not value:
            raise ValueError(f"has no metadata tag {date_tag!r} (tags: {sorted(src.tags())[:10]})")
        date = date_from_text(value[:10])
    else:
        if m is None or m.groupdict().get("date") is None:
            raise ValueError(f"does not match pattern {pattern.pattern!r}")
        date = date_from_text(m.group("date"))
    groups = m.groupdict() if m else {}
    baseline = groups.get("baseline") or ""
    if re.fullmatch(r"\d{4}", baseline):  # N0400 in product names -> 04.00
        baseline = f"{baseline[:2]}.{baseline[2:]}"
    return date, groups.get("scene") or "", baseline


def _entry_problems(entry: Mapping, where: str, profiles: Mapping) -> list[str]:
    problems = []
    name = entry.get("profile")
    if name not in profiles:
        problems.append(f"{where}.profile: must name a sensor profile, one of {sorted(profiles)} (or add one under "
                        f"imagery.profiles). Got {name!r}.")
    if entry.get("path") and (entry.get("red") or entry.get("nir")):
        problems.append(f"{where}: give either path (files holding every band) or red and nir (one file per band), not both.")
    elif not entry.get("path") and not (entry.get("red") and entry.get("nir")):
        problems.append(f"{where}: give path (files holding every band) or both red and nir globs.")
    if entry.get("quality") and name in profiles and not profiles[name].get("quality"):
        problems.append(f"{where}.quality: profile {name!r} has no quality rule. Drop quality, or give imagery.profiles.{name}.quality.")
    try:
        pattern = re.compile(entry.get("pattern") or DEFAULT_PATTERN)
        if "date" not in pattern.groupindex and not entry.get("date_tag"):
            problems.append(f"{where}.pattern: needs a named group date, e.g. '_(?P<date>\\d{{8}})_'. Got {pattern.pattern!r}.")
    except re.error as exc:
        problems.append(f"{where}.pattern: not a valid regular expression ({exc}). Got {entry.get('pattern')!r}.")
    return problems


def scenes_from_files(entries: Sequence[Mapping], profiles: Mapping[str, Mapping] | None = None) -> list[Scene]:
    """Scenes found by the globs of ``imagery.files``, sorted by date, id.

    Each entry gives ``path`` (globs of files holding every band, band indexes from the profile)
    or ``red`` and ``nir`` (and optionally ``quality``) globs of one-band files; ``profile``; and
    ``pattern``, a regex searched in each file name (then in its whole path) whose named group
    ``date`` gives the date (default: the first YYYYMMDD), optional ``scene`` tells apart scenes of one date and
    ``baseline`` gives the Sentinel-2 processing baseline (N0400 or 04.00). ``date_tag`` reads
    the date from a metadata tag instead. Files of one scene are matched by (date, scene).
    Raises InputDataError listing every problem of every entry."""
    profiles = profiles or PROFILES
    problems: list[str] = []
    scenes: list[Scene] = []
    for i, entry in enumerate(entries):
        where = f"imagery.files[{i}]"
        entry_problems = _entry_problems(entry, where, profiles)
        if not entry_problems:
            found, entry_problems = _entry_scenes(entry, where, profiles[entry["profile"]])
            scenes += found
        problems += entry_problems
    if problems:
        raise InputDataError("Problems finding the imagery files:\n" + "\n".join(f"  - {p}" for p in problems))
    _check_unique_ids(scenes, "imagery.files")
    return sorted(scenes, key=lambda s: (s.datetime, s.scene_id))


def _index_files(entry: Mapping, where: str) -> tuple[dict[str, dict[tuple, list[tuple[str, str]]]], list[str]]:
    """For each band role, the files its glob finds keyed by (date, scene), each with its baseline."""
    pattern = re.compile(entry.get("pattern") or DEFAULT_PATTERN)
    globs = {"red": entry.get("path") or entry["red"], "nir": entry.get("path") or entry["nir"], "quality": entry.get("quality")}
    keyed: dict[str, dict[tuple, list[tuple[str, str]]]] = {}
    problems: list[str] = []
    for role, g in globs.items():
        if not g:
            continue
        files = _expand(g)
        if not files:
            key = "path" if entry.get("path") and role != "quality" else role
            problems.append(f"{where}.{key}: {g!r} matches no file (relative paths start at {Path.cwd()}). Fix the path or glob.")
            continue
        keyed[role] = {}
        for f in files:
            try:
                date, scene, baseline = _file_key(f, pattern, entry.get("date_tag"))
            except (ValueError, rasterio.errors.RasterioIOError) as exc:
                how = "date_tag" if entry.get("date_tag") else "pattern"
                problems.append(f"{where}: file {f} {exc}; its date cannot be read. Fix {where}.{how}, or remove the file.")
                continue
            keyed[role].setdefault((date, scene), []).append((f, baseline))
    return keyed, problems


def _entry_scenes(entry: Mapping, where: str, profile: Mapping) -> tuple[list[Scene], list[str]]:
    """The scenes of one imagery.files entry: its files matched across band roles by (date, scene)."""
    keyed, problems = _index_files(entry, where)
    if "red" not in keyed or "nir" not in keyed or (entry.get("quality") and "quality" not in keyed):
        return [], problems  # a glob found nothing: said already
    name = entry["profile"]
    for role, by_key in keyed.items():
        for (date, scene), found in by_key.items():
            if len(found) > 1:
                problems.append(
                    f"{where}: {len(found)} {role} files for the scene of {date}{' ' + scene if scene else ''}: "
                    f"{[f for f, _ in found]}. Add a named group (?P<scene>...) to {where}.pattern to tell them apart, or narrow the glob.")
    scenes = []
    for key in sorted(set(keyed["red"]) | set(keyed["nir"])):
        date, scene = key
        have = {role: keyed[role].get(key) for role in keyed}
        missing = [role for role in keyed if not have[role]]
        for role in missing:
            other = next(f for r in ("red", "nir") if have.get(r) for f, _ in have[r])
            problems.append(f"{where}: no {role} file for the scene of {date}{' ' + scene if scene else ''} (found {other}). "
                            f"Add the missing band file or fix {where}.{role}.")
        if missing or any(len(v) > 1 for v in have.values()):
            continue
        red, baseline = have["red"][0]
        quality = have["quality"][0][0] if "quality" in have else None
        scene_id = Path(red).stem if entry.get("path") else "_".join(p for p in (name, scene, f"{date:%Y%m%d}") if p)
        try:
            scenes.append(make_scene(scene_id, date.isoformat(), name, profile, red, have["nir"][0][0], quality, baseline, "",
                                     f"{where}: {red}"))
        except InputDataError as exc:
            problems.append(str(exc))
    return scenes, problems


def load_scenes(imagery: Mapping, table: str | Path | None = None) -> list[Scene]:
    """Every scene the config lists: those of the scenes ``table`` and those ``imagery.files`` finds."""
    profiles = resolve_profiles(imagery.get("profiles"))
    scenes: list[Scene] = []
    if table:
        scenes += read_scenes_table(table, profiles)
    if imagery.get("source") == "local" and imagery.get("files"):
        scenes += scenes_from_files(imagery["files"], profiles)
    if not scenes:
        raise InputDataError("No scene is listed. Set imagery.scenes (a scenes table) or imagery.files (globs) in the config.")
    _check_unique_ids(scenes, "imagery (scenes table and files)")
    return sorted(scenes, key=lambda s: (s.datetime, s.scene_id))


def imagery_problems(cfg: Mapping) -> list[str]:
    """Checks of the imagery section the schema cannot express (profiles, file patterns), without reading files."""
    im = cfg["imagery"]
    problems: list[str] = []
    if im["source"] == "local" and not im.get("scenes") and not im.get("files"):
        problems.append("imagery: source local needs imagery.scenes (a scenes table, CSV) or imagery.files (globs of band files).")
    profiles, profile_problems_ = _resolve_profiles(im.get("profiles"))
    problems += profile_problems_
    if im["source"] == "stac":
        from greensink.stac import stac_problems

        problems += stac_problems(cfg, profiles)
    for i, entry in enumerate(im.get("files") or []):
        problems += _entry_problems(entry, f"imagery.files[{i}]", profiles)
    return problems


@functools.lru_cache(maxsize=8)
def _files_scenes(files_json: str, profiles_json: str, cwd: str) -> tuple[Scene, ...]:
    """Cached scan of imagery.files (the ingest rule asks once per year); ``cwd`` keys relative globs."""
    return tuple(scenes_from_files(json.loads(files_json), resolve_profiles(json.loads(profiles_json))))


def imagery_inputs(cfg: Mapping, year: int | None = None) -> dict[str, list[str]]:
    """The files the ingest of ``year`` reads: ``table`` (the scenes table, if any) and ``images``
    (band files found by imagery.files whose date falls in that year's season; all years if None)."""
    im = cfg["imagery"]
    if im["source"] == "demo":
        return {"table": [demo_paths(cfg)["scenes"]], "images": []}
    if im["source"] == "stac":  # searched in the job; a local static catalog's root file is an input
        from greensink.stac import _local, is_static

        catalog = str(im["stac"]["catalog"])
        local = is_static(catalog) and "://" not in catalog.replace("file://", "")
        return {"table": [], "images": [], "catalog": [_local(catalog)] if local else []}
    table = [im["scenes"]] if im.get("scenes") else []
    images: set[str] = set()
    if im.get("files"):
        scenes = list(_files_scenes(json.dumps(im["files"], sort_keys=True), json.dumps(im.get("profiles") or {}, sort_keys=True),
                                     str(Path.cwd())))
        if year is not None:
            scenes = in_season(scenes, year, cfg["season"])
        images = {p for s in scenes for _, p, _ in s.band_files()}
    return {"table": table, "images": sorted(images)}


def ingest_input_function(cfg: Mapping) -> Callable[[Any], dict[str, list[str]]]:
    """The ingest rule's input function: ``imagery_inputs`` of the job's ``{year}`` wildcard."""

    def inputs(wildcards) -> dict[str, list[str]]:
        return imagery_inputs(cfg, int(wildcards.year))

    return inputs


# ----------------------------------------------------------------------------- the grid's lattice


def grid_align(cfg: Mapping) -> str | list[float]:
    """``grid.align`` of a config: imagery (the default), resolution, or a point [x, y] of the lattice."""
    return (cfg.get("grid") or {}).get("align", "imagery")


def _first_scene(cfg: Mapping) -> Scene | None:
    """The first scene (by date, id) of the local or demo imagery in a reporting year's season, else the first listed."""
    table = imagery_inputs(cfg)["table"]
    scenes = load_scenes(cfg["imagery"], table[0] if table else None)
    used = [s for s in scenes if any(in_season([s], y, cfg["season"]) for y in cfg["years"])]
    return (used or scenes or [None])[0]


def lattice_inputs(cfg: Mapping) -> list[str]:
    """The files :func:`imagery_lattice` reads, as inputs of the rule that makes the grid: the scenes
    table (the demo's or imagery.scenes), the first scene's red file found by imagery.files, or a
    local static STAC catalog. Empty unless grid.align is imagery."""
    if grid_align(cfg) != "imagery":
        return []
    im = cfg["imagery"]
    found = imagery_inputs(cfg)
    if im["source"] == "stac":
        return found["catalog"]
    out = list(found["table"])
    if im["source"] == "local" and im.get("files"):
        scenes = list(_files_scenes(json.dumps(im["files"], sort_keys=True), json.dumps(im.get("profiles") or {}, sort_keys=True),
                                    str(Path.cwd())))
        used = [s for s in scenes if any(in_season([s], y, cfg["season"]) for y in cfg["years"])]
        out += [(used or scenes)[0].red] if scenes else []
    return out


def lattice_input_function(cfg: Mapping) -> Callable[[Any], list[str]]:
    """The grid rule's input function: :func:`lattice_inputs` of the config."""

    def inputs(wildcards) -> list[str]:
        return lattice_inputs(cfg)

    return inputs


def imagery_lattice(cfg: Mapping, bounds: tuple[float, float, float, float]) -> dict:
    """Where the analysis grid's pixel corners lie, by ``grid.align``: the record ``align`` of grid.json,
    ``{"align", "origin": [ox, oy], "source", "note"}`` with (ox, oy) the lattice offset in metres (see
    :func:`greensink.grid.lattice_offset`) for :meth:`greensink.grid.Grid.from_bounds`.

    ``imagery``: the first scene's lattice when its red band is in the analysis CRS at the analysis
    resolution (local and demo: its red file's transform; STAC: the first item's red asset,
    ``proj:transform`` and ``proj:epsg``/``proj:code``, else the file's header), so that scene is
    read without resampling; otherwise multiples of the resolution, and ``note`` says why.
    ``resolution``: multiples of the resolution. ``[x, y]``: the lattice through that point.
    ``bounds`` (the zones' extent in the analysis CRS) bound the STAC search."""
    align = grid_align(cfg)
    res, crs = float(cfg["resolution"]), str(cfg["crs"])
    if isinstance(align, list | tuple):
        origin = lattice_offset((float(align[0]), float(align[1])), res)
        return {"align": "point", "origin": list(origin), "source": f"grid.align [{_m(align[0])}, {_m(align[1])}]", "note": None}
    if align == "resolution":
        return {"align": "resolution", "origin": [0.0, 0.0], "source": "multiples of resolution (grid.align: resolution)", "note": None}
    if cfg["imagery"]["source"] == "stac":
        from greensink.stac import first_item_lattice

        found = first_item_lattice(cfg, bounds)
    else:
        scene = _first_scene(cfg)
        found = None
        if scene is not None:
            with rasterio.open(scene.red) as src:
                found = (src.crs, src.transform, f"scene {scene.scene_id} ({scene.red})")
    if found is None:
        why = "no scene found to take it from"
    else:
        file_crs, transform, source = found
        probe = Grid(crs, Affine(res, 0.0, 0.0, 0.0, -res, 0.0), 1, 1)
        how = file_alignment(file_crs, transform, probe)
        if how is None or how["shift_m"] is not None:  # same CRS and pixel size: its lattice, whatever its offset
            origin = lattice_offset((transform.c, transform.f), res)
            return {"align": "imagery", "origin": list(origin), "source": source, "note": None}
        why = f"{source}: {how['why']}, so it has no lattice in the analysis CRS at {res:g} m"
    return {"align": "imagery", "origin": [0.0, 0.0], "source": "multiples of resolution",
            "note": f"grid.align imagery: {why}; the grid's pixel corners are at multiples of the resolution."}


# ----------------------------------------------------------------------------- season


def season_window(year: int, season: Mapping[str, str]) -> tuple[dt.date, dt.date]:
    """First and last day of the season of ``year``. A season whose start (MM-DD) is after its end
    wraps the new year and belongs to the year it ends in (09-01 … 04-30 of 2024: 2023-09-01 … 2024-04-30)."""
    sm, sd = map(int, season["start"].split("-"))
    em, ed = map(int, season["end"].split("-"))
    start_year = year if (sm, sd) <= (em, ed) else year - 1
    return dt.date(start_year, sm, sd), dt.date(year, em, ed)


def in_season(scenes: Sequence[Scene], year: int, season: Mapping[str, str]) -> list[Scene]:
    """Scenes dated within the season of ``year`` (MM-DD, inclusive; see :func:`season_window`)."""
    start, end = season_window(year, season)
    return [s for s in scenes if start <= s.date <= end]


# ----------------------------------------------------------------------------- checks


class NoOverlapError(InputDataError):
    """A scene does not overlap the analysis area."""


def check_scene(scene: Scene, grid: Grid) -> list[str]:
    """Check every band file of a scene against the grid; return warnings, raise on errors.

    Errors (InputDataError): a file that cannot be read, has no CRS or lacks the band the profile
    reads; NoOverlapError if no band overlaps the grid. Warnings: a CRS other than the grid's
    (the band is reprojected), a likely wrong nodata value."""
    warnings: list[str] = []
    gxmin, gymin, gxmax, gymax = grid.bounds
    grid_crs = CRS.from_user_input(grid.crs)
    for role, p, band in scene.band_files():
        try:
            src = rasterio.open(p)
        except rasterio.errors.RasterioIOError as exc:
            raise InputDataError(f"scene {scene.scene_id}: {role} band {p} cannot be read ({exc}). "
                                 "Check that the file exists and is a complete GeoTIFF/COG/JPEG2000.") from exc
        with src:
            if src.crs is None:
                raise InputDataError(f"scene {scene.scene_id}: {role} band {p} has no CRS. Use a georeferenced file (GeoTIFF/COG/JP2).")
            if band > src.count:
                raise InputDataError(
                    f"scene {scene.scene_id}: {role} file {p} has {src.count} band(s) but profile {scene.sensor!r} reads band {band}. "
                    f"Fix imagery.profiles.{scene.sensor}.bands.{role}, or point {role} at the right file.")
            if src.crs != grid_crs:
                warnings.append(f"scene {scene.scene_id}: {role} band {Path(p).name} is in {src.crs}, not the analysis CRS {grid.crs}; "
                                f"it is reprojected on the fly ({'nearest' if role == 'quality' else 'bilinear'}).")
            xmin, ymin, xmax, ymax = transform_bounds(src.crs, grid.crs, *src.bounds)
        if xmax <= gxmin or xmin >= gxmax or ymax <= gymin or ymin >= gymax:
            raise NoOverlapError(
                f"scene {scene.scene_id}: {role} band {p} (bounds {xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f} in {grid.crs}) "
                f"does not overlap the analysis area {tuple(round(v) for v in grid.bounds)} ({grid.crs}). "
                "Remove the scene or check the zones."
            )
        if role != "quality":
            suspect = suspect_nodata(p, band, scene.nodata, scene.nodata_override, scene.sensor)
            if suspect:
                warnings.append(f"scene {scene.scene_id}: {suspect}")
    return warnings


def _nodata_in_use(file_nodata: float | None, profile_nodata: float | None, override: bool) -> float | None:
    return profile_nodata if (override or file_nodata is None) else file_nodata


def suspect_nodata(path: str, band: int, profile_nodata: float | None, override: bool = False, profile: str = "") -> str | None:
    """A warning if a value that is not the nodata in use (0 or the band minimum) looks like fill:
    it covers ≥ SUSPECT_NODATA_PCT % of the pixels and ≥ SUSPECT_EDGE_PCT % of the image border,
    or ≥ SUSPECT_NODATA_ALONE_PCT % of the pixels. None if nothing looks wrong."""
    with rasterio.open(path) as src:
        nodata = _nodata_in_use(src.nodata, profile_nodata, override)
        step = max(1, math.ceil(max(src.height, src.width) / 1024))
        arr = src.read(band, out_shape=(math.ceil(src.height / step), math.ceil(src.width / step)), resampling=Resampling.nearest)
        declared = "declared by the file" if nodata is not None and src.nodata == nodata and not override else "of the profile"
    if arr.size == 0 or arr.min() == arr.max():
        return None  # a constant band gives nothing to compare
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    for value in sorted({0, arr.min().item()}):
        if nodata is not None and value == nodata:
            continue
        share = 100.0 * float((arr == value).mean())
        edge = 100.0 * float((border == value).mean())
        if share >= SUSPECT_NODATA_PCT and (edge >= SUSPECT_EDGE_PCT or share >= SUSPECT_NODATA_ALONE_PCT):
            now = f"the nodata value in use is {nodata:g} ({declared})" if nodata is not None else "no nodata value is set"
            key = f"imagery.profiles.{profile}" if profile else "the profile"
            return (f"{Path(path).name} band {band}: {share:.1f} % of the pixels (and {edge:.0f} % of the image border) "
                    f"are {value}, but {now}. If {value} marks no data, set {key}.nodata: {value} with nodata_override: true "
                    "(otherwise these pixels count as dark surfaces); if it is real data, ignore this warning.")
    return None


# ----------------------------------------------------------------------------- lattice and calibration checks


def _m(value: float) -> str:
    """A coordinate or distance in metres as written (690015, 3520815, 12.5), never in exponent notation."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def file_alignment(crs: Any, transform: Any, grid: Grid) -> dict | None:
    """None when a file's pixels are pixels of ``grid`` (same CRS, north-up, same pixel size, corners
    on the grid's lattice within 1e-6 m), so it is read without resampling; else why it is resampled:
    ``{"why": text, "shift_m": [dx, dy] or None}``. ``shift_m`` is how far the file's pixel corners
    lie from the grid's lattice (each in (−res/2, res/2], metres) when only that differs."""
    res = grid.resolution_m
    if crs is None or CRS.from_user_input(crs) != CRS.from_user_input(grid.crs):
        return {"why": f"reprojected from {crs} to {grid.crs}", "shift_m": None}
    t = transform
    if abs(t.b) > 1e-9 or abs(t.d) > 1e-9 or abs(t.a - res) > 1e-6 or abs(t.e + res) > 1e-6:
        size = f"{abs(t.a):g} × {abs(t.e):g} m" + (" (rotated or not north-up)" if t.b or t.d or t.e > 0 else "")
        return {"why": f"pixel size {size} resampled to the {res:g} m grid", "shift_m": None}
    ox, oy = lattice_offset((t.c, t.f), res)
    gx, gy = lattice_offset((grid.transform.c, grid.transform.f), res)
    shift = []
    for a, b in ((ox, gx), (oy, gy)):
        d = math.fmod(a - b, res)
        d = d - res if d > res / 2 else d + res if d <= -res / 2 else d
        shift.append(0.0 if abs(d) < 1e-6 else round(d, 6))
    if shift == [0.0, 0.0]:
        return None
    return {"why": f"pixel corners {_m(shift[0])} m east, {_m(shift[1])} m north of the grid's: bilinear resampling by a "
                   "sub-pixel shift", "shift_m": shift}


def scene_alignment(scene: Scene, grid: Grid) -> tuple[dict, list[str]]:
    """How a scene's band files sit on the grid: the record fields ``resampled`` (True if its red or NIR
    band is resampled, i.e. its NDVI is interpolated) and ``resampling`` (per resampled band, quality
    included: role, file, why, shift_m), and one warning naming the scene, the reason and the shift
    in metres when its red or NIR band is resampled in the grid's CRS (a band in another CRS is
    warned about by :func:`check_scene`)."""
    bands = []
    corner = None
    for role, path, _ in scene.band_files():
        with rasterio.open(path) as src:
            how = file_alignment(src.crs, src.transform, grid)
            corner = corner or (src.transform.c, src.transform.f)
        if how is not None:
            bands.append({"role": role, "file": path, **how})
    fields_ = {"resampled": any(b["role"] != "quality" for b in bands), "resampling": bands}
    warnings = []
    # a band in another CRS is warned about by check_scene; here the same CRS at another pixel size or lattice
    reflectance = [b for b in bands if b["role"] != "quality" and not b["why"].startswith("reprojected")]
    if reflectance:
        roles = " and ".join(b["role"] for b in reflectance)
        shift = reflectance[0]["shift_m"]
        fix = (f"To follow this scene's pixels instead, set grid.align: [{_m(corner[0])}, {_m(corner[1])}] (one of its pixel corners); "
               "scenes on different lattices cannot all be read without resampling." if shift else
               "Set resolution to the scene's pixel size to read it without resampling.")
        warnings.append(
            f"scene {scene.scene_id}: its {roles} band(s) are resampled onto the analysis grid "
            f"({grid.resolution_m:g} m, {grid.crs}, corner at {_m(grid.transform.c)}, {_m(grid.transform.f)}): {reflectance[0]['why']}"
            ". Resampled NDVI blends neighbouring pixels (on Landsat a half-pixel shift moved NDVI by up to 0.44). " + fix)
    return fields_, warnings


def calibration_check(scene: Scene, max_px: int = 1024) -> tuple[dict, list[str]]:
    """The median of each reflectance band's valid values after calibration (read from at most
    ~``max_px``² pixels of the file), as the record field ``reflectance_median`` {red, nir}, and a
    warning when either median is outside [REFLECTANCE_MEDIAN_MIN, REFLECTANCE_MEDIAN_MAX]:
    those numbers are not reflectance (uncalibrated DN or radiance, or a missing scale/offset)."""
    medians: dict[str, float | None] = {}
    for role, path, band in scene.band_files():
        if role == "quality":
            continue
        with rasterio.open(path) as src:
            nodata = _nodata_in_use(src.nodata, scene.nodata, scene.nodata_override)
            step = max(1, math.ceil(max(src.height, src.width) / max_px))
            dn = src.read(band, out_shape=(math.ceil(src.height / step), math.ceil(src.width / step)),
                          resampling=Resampling.nearest).astype(np.float64)
        valid = np.isfinite(dn) if nodata is None else np.isfinite(dn) & (dn != nodata)
        scale, offset = scene.calibration(role)
        medians[role] = float(np.median(dn[valid] * scale + offset)) if valid.any() else None
    odd = {r: m for r, m in medians.items() if m is not None and not REFLECTANCE_MEDIAN_MIN <= m <= REFLECTANCE_MEDIAN_MAX}
    warnings = []
    if odd:
        values = ", ".join(f"{r} {m:.4g} (DN × {scene.calibration(r)[0]:g} {scene.calibration(r)[1]:+g})" for r, m in odd.items())
        warnings.append(
            f"scene {scene.scene_id} (profile {scene.sensor}): after calibration the median of the valid {'/'.join(odd)} values is "
            f"{values}; reflectance lies between 0 and about 1, so these look like uncalibrated numbers (DN or radiance), not "
            "reflectance. NDVI thresholds (vegetation.ndvi_vegetation, ndvi_tree) and the FVC endmembers assume reflectance, and "
            f"with an offset or per-band gain missing NDVI itself is wrong. Set imagery.profiles.{scene.sensor}.scale and offset "
            "so that reflectance = DN × scale + offset, one number for both bands or per band, e.g. scale: {red: 0.0123, nir: 0.0098}.")
    return {"reflectance_median": medians, "calibration_suspect": bool(odd)}, warnings


# ----------------------------------------------------------------------------- reading


def _scale_ratio(src: rasterio.DatasetReader, grid: Grid) -> tuple[float, float]:
    """Destination pixels per source pixel along x and y (GDAL's XSCALE / YSCALE warp options),
    from the source's pixel size expressed in the grid's CRS at the source's centre."""
    from rasterio.warp import transform as warp_transform

    left, bottom, right, top = src.bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    rx, ry = abs(src.res[0]), abs(src.res[1])
    xs, ys = warp_transform(src.crs, grid.crs, [cx, cx + rx, cx], [cy, cy, cy + ry])
    px = float(np.hypot(xs[1] - xs[0], ys[1] - ys[0]))
    py = float(np.hypot(xs[2] - xs[0], ys[2] - ys[0]))
    res = grid.resolution_m
    return px / res, py / res


def _warped_read(path: str, band: int, grid: Grid, window: Window, resampling: Resampling,
                 profile_nodata: float | None = None, override: bool = False) -> tuple[np.ndarray, float | None, np.ndarray | None]:
    """One band of a file on ``grid`` in ``window``: (DN array, nodata value in use, outside mask or None).

    A file that declares no nodata still has the sensor's fill value (e.g. DN 0): telling the
    warper keeps fill out of the bilinear kernel, so scene edges and holes do not blend into
    data. With no nodata at all, an alpha band marks the pixels outside the file."""
    try:
        with rasterio.open(path) as src:
            nodata = _nodata_in_use(src.nodata, profile_nodata, override)
            if file_alignment(src.crs, src.transform, grid) is None:
                resampling = Resampling.nearest  # the file's pixels are the grid's: copied, not interpolated
            opts = dict(crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height, resampling=resampling)
            if resampling != Resampling.nearest:
                # Fix the kernel scale for the whole scene: GDAL otherwise derives it per warp chunk, so a
                # scene finer than the grid came out slightly different in different windows (strips, tiles).
                sx, sy = _scale_ratio(src, grid)
                opts.update(XSCALE=str(sx), YSCALE=str(sy))
            if resampling != Resampling.nearest:
                opts["dtype"] = "float32"  # interpolated DNs are not rounded back to integers (0.5 DN is 0.2 % of a uint8 range)
            if nodata is None:
                with WarpedVRT(src, add_alpha=True, **opts) as vrt:
                    arr = vrt.read(band, window=window)
                    outside = vrt.read(vrt.count, window=window) == 0
                return arr, None, outside
            # UNIFIED_SRC_NODATA=NO: in a multi-band file (NAIP) a pixel is no data band by band, not only where every band is
            with WarpedVRT(src, src_nodata=nodata, nodata=nodata, UNIFIED_SRC_NODATA="NO", **opts) as vrt:
                arr = vrt.read(band, window=window)
        return arr, nodata, None
    except rasterio.errors.RasterioError as exc:
        raise InputDataError(f"{path}: band {band} cannot be read ({exc}). The file may be truncated or corrupt: "
                             "download or export it again.") from exc


@functools.lru_cache(maxsize=256)
def _footprint(path: str, crs: str) -> tuple[float, float, float, float]:
    """Bounds of a file in ``crs`` (densified, so a reprojected footprint is inside them)."""
    with rasterio.open(path) as src:
        return transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)


def scene_window(scene: Scene, grid: Grid, window: Window) -> Window | None:
    """The part of ``window`` (grid pixels) that the scene's red and NIR files can reach, with a
    one-pixel margin for the bilinear kernel; None if they do not reach it."""
    b = np.array([_footprint(p, grid.crs) for p in (scene.red, scene.nir)])
    xmin, ymin, xmax, ymax = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    inv = ~grid.transform
    c0, r0 = inv @ (xmin, ymax)
    c1, r1 = inv @ (xmax, ymin)
    col0 = max(int(math.floor(c0)) - 1, window.col_off)
    row0 = max(int(math.floor(r0)) - 1, window.row_off)
    col1 = min(int(math.ceil(c1)) + 1, window.col_off + window.width)
    row1 = min(int(math.ceil(r1)) + 1, window.row_off + window.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_scene_window(scene: Scene, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red and NIR reflectance (float32, NaN where no data) and the clear-sky mask for a window.

    Only the part of the window the scene's files reach is read; the rest is NaN and not clear."""
    shape = (int(window.height), int(window.width))
    red = np.full(shape, np.nan, dtype=np.float32)
    nir = np.full(shape, np.nan, dtype=np.float32)
    clear = np.zeros(shape, dtype=bool)
    sub = scene_window(scene, grid, window)
    if sub is None:
        return red, nir, clear
    at = (slice(sub.row_off - window.row_off, sub.row_off - window.row_off + sub.height),
          slice(sub.col_off - window.col_off, sub.col_off - window.col_off + sub.width))
    for out, path, band, role in ((red, scene.red, scene.red_band, "red"), (nir, scene.nir, scene.nir_band, "nir")):
        dn, nodata, outside = _warped_read(path, band, grid, sub, Resampling.bilinear, scene.nodata, scene.nodata_override)
        scale, offset = scene.calibration(role)
        # float64 then one rounding to float32: the same reflectance from either S2 baseline is bit-identical
        refl = (dn.astype(np.float64) * scale + offset).astype(np.float32)
        if nodata is not None:
            refl[dn == nodata] = np.nan
        if outside is not None:
            refl[outside] = np.nan
        out[at] = refl
    ok = np.isfinite(red[at]) & np.isfinite(nir[at])
    if scene.quality is not None and scene.quality_rule:
        q, qnodata, outside = _warped_read(scene.quality, scene.quality_band, grid, sub, Resampling.nearest)
        ok &= quality_clear(q, scene.quality_rule)
        if qnodata is not None:
            ok &= q != qnodata
        if outside is not None:
            ok &= ~outside
    clear[at] = ok
    return red, nir, clear


def scene_statistics(scenes: Sequence[Scene], grid: Grid, block_rows: int = 512) -> dict:
    """Per scene: % of grid pixels with data (``valid_pct``), seen clear (``clear_pct``) and the %
    of its observed pixels masked by its quality band (``masked_pct``); for the set: the % of all
    observations masked and the % of the area seen (clear) at least once."""
    n = len(scenes)
    valid = np.zeros(n, dtype=np.int64)
    clear = np.zeros(n, dtype=np.int64)
    seen = seen_clear = 0
    for rows, _ in grid.windows(block_rows):
        window = Window(0, rows.start, grid.width, rows.stop - rows.start)
        any_valid = np.zeros((window.height, grid.width), dtype=bool)
        any_clear = np.zeros_like(any_valid)
        for i, s in enumerate(scenes):
            red, nir, c = read_scene_window(s, grid, window)
            v = np.isfinite(red) & np.isfinite(nir)
            valid[i] += int(v.sum())
            clear[i] += int(c.sum())
            any_valid |= v
            any_clear |= c
        seen += int(any_valid.sum())
        seen_clear += int(any_clear.sum())
    pixels = grid.width * grid.height
    per_scene = [{
        "valid_pct": 100.0 * int(v) / pixels,
        "clear_pct": 100.0 * int(c) / pixels,
        "masked_pct": 100.0 * int(v - c) / int(v) if v else None,
    } for v, c in zip(valid, clear, strict=True)]
    observations, clear_obs = int(valid.sum()), int(clear.sum())
    return {
        "scenes": per_scene,
        "grid_pixels": pixels,
        "observations": observations,
        "clear_observations": clear_obs,
        "masked_pct": 100.0 * (observations - clear_obs) / observations if observations else None,
        "area_seen_pct": 100.0 * seen / pixels,
        "area_seen_clear_pct": 100.0 * seen_clear / pixels,
    }


# ----------------------------------------------------------------------------- one year


def ingest_year(scenes: Sequence[Scene], grid: Grid, year: int, season: Mapping[str, str], block_rows: int = 512) -> dict:
    """Select, check and measure the scenes of one year's season; the record of ``results/{year}/ingest/scenes.json``.

    Raises InputDataError (listing every problem) when a scene file is unusable, when no scene
    is in the season or overlaps the area, or when no pixel is clear in any scene. Scenes that do
    not overlap the area are left out with a warning; warnings are logged and kept in the record."""
    start, end = season_window(year, season)
    chosen = in_season(scenes, year, season)
    next_start, _ = season_window(year + 1, season)
    out_of_season = [s.scene_id for s in scenes if s.date.year == year and s not in chosen and s.date < next_start]
    if not chosen:
        dates = f"dated {scenes[0].date} to {scenes[-1].date}" if scenes else "none listed"
        raise InputDataError(f"{year}: no scene in the season {start} to {end} ({len(scenes)} scenes, {dates}). "
                             "Add scenes of that season, or widen season.start/season.end (a start after the end wraps the new year).")
    warnings: list[str] = []
    problems: list[str] = []
    no_overlap: list[str] = []
    usable: list[Scene] = []
    for s in chosen:
        try:
            warnings += check_scene(s, grid)
        except NoOverlapError as exc:
            no_overlap.append(s.scene_id)
            warnings.append(f"{exc} It is left out of {year}.")
            continue
        except InputDataError as exc:
            problems.append(str(exc))
            continue
        if s.quality is None and PROFILES.get(s.sensor, {}).get("quality"):
            warnings.append(f"scene {s.scene_id}: no quality band, so no cloud or shadow is masked. Give its "
                            f"{PROFILES[s.sensor]['quality_column']} file if it has one.")
        usable.append(s)
    if problems:
        raise InputDataError(f"{year}: {len(problems)} scene(s) cannot be used:\n" + "\n".join(f"  - {p}" for p in problems))
    if not usable:
        raise InputDataError(
            f"{year}: none of the {len(chosen)} scene(s) in season overlaps the analysis area {tuple(round(v) for v in grid.bounds)} "
            f"({grid.crs}): {', '.join(no_overlap)}. Check that the zones and the imagery cover the same place, or add scenes.")
    checks: dict[str, dict] = {}
    for s in usable:
        aligned, w_align = scene_alignment(s, grid)
        calibrated, w_calib = calibration_check(s)
        checks[s.scene_id] = {**aligned, **calibrated}
        warnings += w_align + w_calib
    stats = scene_statistics(usable, grid, block_rows)
    records = []
    for s, st in zip(usable, stats["scenes"], strict=True):
        records.append({**s.to_dict(), **st, **checks[s.scene_id]})
        if st["clear_pct"] == 0:
            why = ("has no data in the area" if st["valid_pct"] == 0 else
                   f"is masked everywhere in the area by its quality band ({s.quality_rule})")
            warnings.append(f"scene {s.scene_id}: {why}; it adds nothing to the composite.")
    if stats["clear_observations"] == 0:
        raise InputDataError(
            f"{year}: no clear pixel in any of the {len(usable)} scene(s): "
            + "; ".join(f"{r['scene_id']} {r['valid_pct']:.1f} % of the area with data, masked_pct {r['masked_pct']}" for r in records)
            + ". Check the quality rule (imagery.profiles.<profile>.quality: masked vs clear values) and nodata, or add clearer scenes.")
    if stats["area_seen_pct"] < COVERAGE_WARN_PCT:
        warnings.append(f"{year}: the scenes cover only {stats['area_seen_pct']:.1f} % of the analysis area (the zones' extent); "
                        "the rest of every product is NaN (no data).")
    for w in warnings:
        log.warning(w)
    for s, r in zip(usable, records, strict=True):
        masked = "n/a" if r["masked_pct"] is None else f"{r['masked_pct']:.1f} %"
        calib = [s.calibration(b) for b in BANDS]
        (rs, ro), (ns, no) = calib
        how = (f"reflectance = DN x {rs:g} {ro:+g}" if calib[0] == calib[1] else
               f"reflectance = DN x {rs:g} {ro:+g} (red), DN x {ns:g} {no:+g} (nir)")
        log.info("scene %s %s (%s): data on %.1f %% of the area, %.1f %% clear, %s of its observed pixels masked; %s; %s",
                 r["scene_id"], r["datetime"], r["sensor"], r["valid_pct"], r["clear_pct"], masked, how,
                 "red/NIR resampled onto the grid" if r["resampled"] else "red/NIR on the grid's pixels (not resampled)")
    summary = {k: v for k, v in stats.items() if k != "scenes"}
    summary["n_scenes"] = len(usable)
    log.info("%d: %d scene(s) in season %s to %s; %.1f %% of %d observed pixels masked (cloud, shadow, quality); "
             "%.1f %% of the area seen clear at least once", year, len(usable), start, end,
             summary["masked_pct"] or 0.0, summary["observations"], summary["area_seen_clear_pct"])
    return {
        "year": year,
        "season": dict(season),
        "season_dates": [start.isoformat(), end.isoformat()],
        "scenes": records,
        "summary": summary,
        "excluded_out_of_season": out_of_season,
        "excluded_no_overlap": no_overlap,
        "warnings": warnings,
    }
