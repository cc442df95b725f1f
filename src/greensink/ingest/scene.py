"""Scenes: one acquisition as a record (:class:`Scene`), made from a sensor profile, and the season of a year.

A *scene* is a red band, a NIR band and optionally a quality band, each a band of a file GDAL
reads (GeoTIFF, COG, JPEG2000); several bands may share one file (NAIP keeps R, G, B, NIR in one
GeoTIFF). The scene carries its harmonisation (scale and offset per band, fixed for its date by
:func:`~greensink.ingest.profiles.harmonisation`) and the profile fields it is read with, so a
record read back from ``scenes.json`` needs no config.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from greensink.ingest.profiles import PROFILES, ROLES, harmonisation


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
