"""Provenance: what a run was made from, so an ecologist can reproduce or audit it.

Records the configuration (and its SHA-256 over a canonical JSON dump), the checksum of every
input file and scene band, the scene ids used per year, the package versions and the Python
version; for STAC imagery each scene's item id and collection. No wall-clock time is stored, so the
record of a rerun is identical.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata

import greensink

PACKAGES = ("greensink", "numpy", "scipy", "pandas", "rasterio", "geopandas", "pyogrio", "shapely", "pyproj",
            "scikit-learn", "snakemake", "exactextract", "matplotlib", "jsonschema", "pystac", "pystac-client")


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
