"""Rule ingest: one year's scenes, from local files or a STAC search, into ``results/{year}/ingest/scenes.json``.

Not re-exported by :mod:`greensink.ingest`: it uses :mod:`greensink.stac`, which uses the ingest
subpackage, so the subpackage importing it would be an import cycle. Import it as
``from greensink.ingest.run import run_ingest``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from greensink import io as gio
from greensink.comparability import year_products
from greensink.grid import Grid
from greensink.ingest.discovery import load_scenes
from greensink.ingest.profiles import resolve_profiles
from greensink.ingest.year import ingest_year
from greensink.stac import ingest_stac_year

log = logging.getLogger(__name__)

PATH_KEYS = ("red", "nir", "quality")


def relative_paths(record: dict, base: str | Path) -> dict:
    """``record`` with its scenes' local band files (and their resampling notes) relative to ``base`` (the run
    folder, where every rule runs), so that the record names no folder of this machine and a moved project
    folder still reads its imagery by the same relative path. URLs (STAC assets) and GDAL virtual file system
    paths (/vsicurl/...) are kept as they are."""

    def rel(path):
        if not path or "://" in str(path) or str(path).startswith("/vsi") or not os.path.isabs(str(path)):
            return path
        return os.path.relpath(str(path), base)

    for scene in record.get("scenes", []):
        for key in PATH_KEYS:
            if key in scene:
                scene[key] = rel(scene[key])
        for note in scene.get("resampling") or []:
            if "file" in note:
                note["file"] = rel(note["file"])
    return record


def run_ingest(grid_json: str | Path, out: str | Path, *, year: int, source: str, season: Mapping[str, str],
               block_rows: int, files: Sequence[Mapping] = (), profiles: Mapping | None = None,
               stac: Mapping | None = None, table: str | Path | Sequence[str | Path] = ()) -> dict:
    """Write the ingest record of ``year`` (:func:`greensink.ingest.ingest_year`) to ``out`` and return it.

    ``source`` ``stac``: the items of ``stac`` (imagery.stac) are searched here
    (:func:`greensink.stac.ingest_stac_year`); otherwise the scenes are those of the scenes table
    (``table``: its path, or the rule's input list: empty or that path) and of the globs ``files``
    (imagery.files). ``profiles`` are imagery.profiles. The record's ``products`` are the year's sensors and
    their harmonisation settings (:func:`greensink.comparability.year_products`)."""
    grid = Grid.read(grid_json)
    if source == "stac":
        record = ingest_stac_year(stac or {}, resolve_profiles(profiles), grid, year, season, block_rows)
        listed = record["stac"]["items_found"]
        log.info("%d: STAC %s: %d items found, %d used, %d failed assets", year, record["stac"]["catalog"],
                 record["stac"]["items_found"], len(record["scenes"]), len(record["failed_assets"]))
    else:
        tables = [table] if isinstance(table, str | Path) else list(table)
        scenes = load_scenes({"source": source, "files": list(files), "profiles": profiles or {}},
                             tables[0] if tables else None)
        record = ingest_year(scenes, grid, year, season, block_rows)
        listed = len(scenes)
    # the year's sensors and their harmonisation settings: rule comparability checks each change pair with them
    record["products"] = year_products(record["scenes"], resolve_profiles(profiles))
    record = relative_paths(record, Path.cwd())
    gio.write_json(out, record)
    s = record["summary"]
    log.info("%d: %d scenes used of %d listed; %.1f %% of observed pixels masked; %.1f %% of the area seen clear; "
             "%d warnings", year, s["n_scenes"], listed, s["masked_pct"] or 0.0, s["area_seen_clear_pct"],
             len(record["warnings"]))
    return record
