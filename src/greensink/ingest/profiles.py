"""Sensor profiles: how a scene's digital numbers become reflectance, and which quality values are clear sky.

Profiles are data, not code branches: the built-in ones (:data:`PROFILES`) can be overridden,
and new ones added, in the config (``imagery.profiles``; :func:`resolve_profiles`). A profile holds

* ``scale``, ``offset``: reflectance = DN × scale + offset; a number applies to both bands, a
  mapping ``{red: ..., nir: ...}`` gives each band its own gain and offset (Landsat-7 DN:
  radiance gains differ per band);
* ``offset_rule``: ``sentinel2-baseline`` replaces ``offset`` per scene by the Sentinel-2
  BOA_ADD_OFFSET (L2A) / RADIO_ADD_OFFSET (L1C) of −1000 DN from processing baseline 04.00
  (scenes after 2022-01-25), 0 before (:func:`harmonisation`);
* ``nodata``: the DN that means no data where the file declares none (with
  ``nodata_override`` also where the file declares another value);
* ``bands``: the 1-based band index of red, NIR and quality in their files;
* ``quality``: a bit rule or a class rule, with the values that are ``masked`` (a set bit or a
  listed class is not clear) or ``clear`` (every listed bit set, or a listed class, is clear);
  :func:`quality_clear` applies it.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from greensink.errors import ConfigError, InputDataError

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


def resolve_profiles(custom: Mapping | None = None) -> dict[str, dict]:
    """The built-in profiles, overridden and extended by ``imagery.profiles`` of the config.

    A custom profile named like a built-in one changes only the keys it gives; a new name
    starts from ``base`` (a built-in name) if given, else from scratch and then needs ``scale``.
    Raises ConfigError listing every problem."""
    profiles, problems = check_profiles(custom)
    if problems:
        raise ConfigError("Invalid sensor profile(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return profiles


def check_profiles(custom: Mapping | None) -> tuple[dict[str, dict], list[str]]:
    """The profiles :func:`resolve_profiles` gives and every problem found in ``custom``, without
    raising: for the config validation, which lists all problems together. A custom profile
    that cannot be resolved (not a mapping, unknown keys, unknown base) is left out."""
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
    """True where a quality band says clear sky under ``rule`` ({rule: bits|classes, masked|clear: [...]}).

    A band of 8- or 16-bit integers is looked up in a table of the rule's answer for every value of its type
    (the same answer, one gather instead of a set test per pixel)."""
    if q.dtype.kind in "ui" and q.dtype.itemsize <= 2:
        table = _clear_table(q.dtype.str, repr(sorted((k, repr(v)) for k, v in rule.items())), rule)
        return table[q.view(f"u{q.dtype.itemsize}")]
    return _quality_clear(q, rule)


_CLEAR_TABLES: dict[tuple[str, str], np.ndarray] = {}


def _clear_table(dtype: str, key: str, rule: Mapping) -> np.ndarray:
    """:func:`_quality_clear` of every value of the integer type ``dtype``, indexed by the value's bits read unsigned."""
    table = _CLEAR_TABLES.get((dtype, key))
    if table is None:
        dt = np.dtype(dtype)
        values = np.arange(1 << (8 * dt.itemsize), dtype=f"u{dt.itemsize}").view(dt)
        table = _CLEAR_TABLES.setdefault((dtype, key), _quality_clear(values, rule))
    return table


def _quality_clear(q: np.ndarray, rule: Mapping) -> np.ndarray:
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


# ----------------------------------------------------------------------------- harmonisation


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
