"""Provenance: what a run was made from, so an ecologist can reproduce or audit it.

Records the configuration (and its SHA-256 over a canonical JSON dump), the checksum of every
input file and scene band, the scene ids used per year, the package versions and the Python
version; for STAC imagery each scene's item id and collection. No wall-clock time is stored, so the
record of a rerun is identical.

The record is portable (:mod:`greensink.portable`): every path inside the run's folder, in the input list
and in the recorded configuration alike, is relative to that folder (the configuration's ``workdir`` is
``"."``), so a moved or archived run folder names its own files and no folder of the machine that made it;
the configuration's SHA-256 is taken over that portable configuration, so the same project run in two
places has the same hash. Files outside the run folder keep their absolute path; every file is named with
its SHA-256.

Scenarios are not part of this record: the configuration is recorded without its ``scenarios`` section
(:func:`recorded_config`) and no change layer is checksummed here, so adding or editing a plan reruns only
that plan's jobs, the scenario summary and the report. Each plan's own record is
results/scenarios/{scenario}/inputs.json (:func:`scenario_record`): its config entry, the SHA-256 of its
change layers and the state each change burned in. ``scenario_records`` in this record names that path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

import greensink
from greensink import io as gio
from greensink.portable import portable, run_relative
from greensink.tiers import carbon_tiers

log = logging.getLogger(__name__)

PACKAGES = ("greensink", "numpy", "scipy", "pandas", "rasterio", "geopandas", "pyogrio", "shapely", "pyproj",
            "scikit-learn", "snakemake", "exactextract", "matplotlib", "jsonschema", "pystac", "pystac-client")


SCENARIO_RECORDS = "results/scenarios/{scenario}/inputs.json"  # each plan's record (rule scenario_inputs)


def recorded_config(config: Mapping, root: str | Path | None = None) -> dict:
    """The configuration provenance records: ``config`` without its ``scenarios`` section (each plan is recorded
    in its own :data:`SCENARIO_RECORDS`, so a new or edited plan leaves the run's record, and its job, alone),
    portable (:func:`greensink.portable.portable`: paths inside the run folder ``root``, default the working
    directory, relative to it, ``workdir`` ``"."``), so that a copied or moved run folder does not change it either."""
    return portable({k: v for k, v in config.items() if k != "scenarios"}, root)


def scenario_record(entry: Mapping, layers: str | Path | Iterable, *, root: str | Path | None = None,
                    **extra) -> dict:
    """A plan's provenance (results/scenarios/{scenario}/inputs.json): its ``entry`` of the config's
    ``scenarios`` as given (paths made portable, :func:`greensink.portable.portable`), the SHA-256 of each of
    its change ``layers`` (named relative to the run folder ``root`` when inside it) and ``extra`` items (the
    parsed plan, its types, the state each change burned in). Each layer file is listed once, sorted."""
    files = sorted({run_relative(f, root): f for f in _paths(layers) if "://" not in f}.items())
    return {"config": portable(dict(entry), root), "config_sha256": config_sha256(portable(dict(entry), root)),
            "inputs": [{"path": rel, "sha256": gio.sha256(path)} for rel, path in files],
            **portable(extra, root)}


def config_sha256(config: Mapping) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = greensink.__version__ if n == "greensink" else "not installed"
    return out


def record(config: Mapping, inputs: Mapping[str, str], scenes: Mapping[int, list[dict]],
           imagery: Mapping[int, dict] | None = None) -> dict:
    """``inputs`` maps path -> sha256; ``scenes`` maps year -> scene records of the ingest stage;
    ``imagery`` maps year -> that stage's summary (masked share, excluded scenes, warnings)."""
    return {
        "greensink_version": greensink.__version__,
        "config": config,
        "config_sha256": config_sha256(config),
        "inputs": [{"path": p, "sha256": h} for p, h in sorted(inputs.items())],
        "scenes": {str(y): [{"scene_id": s["scene_id"], "datetime": s["datetime"], "sensor": s["sensor"],
                             "reflectance_scale": s["scale"], "reflectance_offset": s["offset"],
                             "clear_pct": s.get("clear_pct"),
                             **{k: s[k] for k in ("stac_item_id", "stac_collection") if k in s},
                             # per-band calibration (null: NIR as red) and whether red/NIR were resampled onto the grid
                             **{k: s.get(k) for k in ("nir_scale", "nir_offset", "resampled")}}
                            for s in v] for y, v in sorted(scenes.items())},
        "imagery": {str(y): dict(v) for y, v in sorted((imagery or {}).items())},
        "packages": package_versions(),
        "python": platform.python_version(),
    }


def _paths(value: str | Path | Iterable) -> list[str]:
    """The paths of one rule input: a path, or a (nested) list of paths."""
    if isinstance(value, str | Path):
        return [str(value)]
    return [p for v in value for p in _paths(v)]


def run_provenance(inputs: Mapping[str, str | Path | Iterable], out: str | Path, *, config: Mapping,
                   root: str | Path | None = None) -> dict:
    """Rule provenance: the :func:`record` of a run, written to ``out`` and returned.

    ``inputs`` maps the rule's input names to a path or a list of paths: ``scenes`` the years' ingest
    records (scenes.json), whose scenes and imagery summaries are recorded and whose band files are
    checksummed; ``models`` the years' models.json, whose tiers become ``carbon_tiers``
    (:func:`greensink.tiers.carbon_tiers`); every other entry is an input file, checksummed. Remote
    files (http, s3 ...: STAC assets, identified by their item id and href) are not checksummed. Paths
    inside ``root`` (default: the working directory, the run folder) are recorded relative to it, in the
    input list, the scenes and the configuration alike (:func:`greensink.portable.portable`); paths outside
    it stay absolute (:func:`greensink.portable.run_relative`). The configuration is recorded without its
    ``scenarios`` (:func:`recorded_config`; each plan's record is :data:`SCENARIO_RECORDS`)."""
    files = [p for name, value in inputs.items() if name not in ("scenes", "models") for p in _paths(value)]
    scenes, imagery = {}, {}
    for path in _paths(inputs.get("scenes", [])):
        listed = gio.read_json(path)
        scenes[listed["year"]] = listed["scenes"]
        imagery[listed["year"]] = {k: listed[k] for k in ("summary", "excluded_out_of_season", "excluded_no_overlap",
                                                           "failed_assets", "warnings") if k in listed}
        for s in listed["scenes"]:
            files += [str(f) for f in (s["red"], s["nir"], s["quality"]) if f]
    local = sorted({f for f in files if "://" not in f})
    checksums = {run_relative(f, root): gio.sha256(f) for f in local}
    prov = record(recorded_config(config, root), checksums, portable(scenes, root), portable(imagery, root))
    prov["scenario_records"] = SCENARIO_RECORDS
    prov["carbon_tiers"] = carbon_tiers(gio.read_json(path) for path in _paths(inputs.get("models", [])))
    gio.write_json(out, prov)
    log.info("provenance: %d input files checksummed", len(checksums))
    return prov
