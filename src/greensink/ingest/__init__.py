"""Ingest: local scenes -> harmonised reflectance and a clear-sky mask on the analysis grid.

A *scene* is one acquisition: a red band, a NIR band and optionally a quality band, each a
band of a file GDAL reads (GeoTIFF, COG, JPEG2000). Several bands may share one file (NAIP
keeps R, G, B, NIR in one GeoTIFF). Scenes are listed in a scenes table (CSV) or found by
globs (``imagery.files``) whose file names carry the date.

A *sensor profile* says how a scene's digital numbers become reflectance and which quality
values are not clear sky. Profiles are data, not code branches: the built-in ones can be
overridden, and new ones added, in the config (``imagery.profiles``). After calibration the red
and NIR values of every scene are checked: a median far above 1 (or below −0.5) is not
reflectance, and is warned about.

Every band is read through a warped view onto the analysis :class:`~greensink.grid.Grid`, one
window at a time, so memory is bounded by the window, not the scene. The workflow's grid follows
the imagery's own lattice (``grid.align: imagery``, :func:`greensink.lattice.imagery_lattice`); a
scene in another CRS, of another pixel size or on a lattice shifted from the grid's is resampled,
and the ingest says so: a warning naming the scene and the shift in metres, and ``resampled`` /
``resampling`` in its scenes.json record (:func:`scene_alignment`).

The subpackage, one concept per module (each imports only those above it in this list):

* :mod:`~greensink.ingest.profiles`: sensor profiles, their validation, harmonisation (DN → reflectance), quality rules;
* :mod:`~greensink.ingest.scene`: the :class:`Scene` record, :func:`make_scene`, the season of a year;
* :mod:`~greensink.ingest.discovery`: scenes table and ``imagery.files`` globs → scenes;
* :mod:`~greensink.ingest.reader`: one scene's window on the grid (warp, calibration, clear-sky mask);
* :mod:`~greensink.ingest.checks`: checks of one scene (files, CRS, bands, nodata, lattice, calibration);
* :mod:`~greensink.ingest.year`: one year's ingest record and the scene statistics.

Every public name of these modules is importable from ``greensink.ingest`` itself.
"""

from __future__ import annotations

from greensink.ingest.checks import (
    REFLECTANCE_MEDIAN_MAX,
    REFLECTANCE_MEDIAN_MIN,
    SUSPECT_EDGE_PCT,
    SUSPECT_NODATA_ALONE_PCT,
    SUSPECT_NODATA_PCT,
    NoOverlapError,
    calibration_check,
    check_scene,
    scene_alignment,
    suspect_nodata,
)
from greensink.ingest.discovery import (
    DEFAULT_PATTERN,
    REQUIRED_COLUMNS,
    check_unique_ids,
    date_from_text,
    entry_problems,
    load_scenes,
    read_scenes_table,
    scenes_from_files,
)
from greensink.ingest.profiles import (
    BANDS,
    GA_PQ_CLEAR_BITS,
    OFFSET_RULES,
    PROFILE_KEYS,
    PROFILES,
    ROLES,
    S2_OFFSET_FROM,
    SENSORS,
    band_value,
    check_profiles,
    harmonisation,
    profile_problems,
    quality_clear,
    resolve_profiles,
)
from greensink.ingest.reader import GDAL_HTTP_DEFAULTS, file_alignment, nodata_in_use, read_scene_window, scene_window
from greensink.ingest.scene import Scene, in_season, make_scene, season_window
from greensink.ingest.year import COVERAGE_WARN_PCT, ingest_year, scene_statistics

__all__ = [
    "BANDS", "COVERAGE_WARN_PCT", "DEFAULT_PATTERN", "GA_PQ_CLEAR_BITS", "GDAL_HTTP_DEFAULTS", "OFFSET_RULES",
    "PROFILES", "PROFILE_KEYS", "REFLECTANCE_MEDIAN_MAX", "REFLECTANCE_MEDIAN_MIN", "REQUIRED_COLUMNS", "ROLES",
    "S2_OFFSET_FROM", "SENSORS", "SUSPECT_EDGE_PCT", "SUSPECT_NODATA_ALONE_PCT", "SUSPECT_NODATA_PCT",
    "NoOverlapError", "Scene",
    "band_value", "calibration_check", "check_profiles", "check_scene", "check_unique_ids", "date_from_text",
    "entry_problems", "file_alignment", "harmonisation", "in_season", "ingest_year", "load_scenes", "make_scene",
    "nodata_in_use", "profile_problems", "quality_clear", "read_scene_window", "read_scenes_table",
    "resolve_profiles", "scene_alignment", "scene_statistics", "scene_window", "scenes_from_files",
    "season_window", "suspect_nodata",
]
