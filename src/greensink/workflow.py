"""Workflow glue: what the Snakefile, ``workflow/rules/*.smk`` and the rule scripts call that is not science.

The one home of everything that turns a config into Snakemake's terms; no arithmetic on data:

* where the workflow is: the greensink checkout (:func:`checkout`; an installed wheel ships the package,
  not the Snakefile and its rules);
* the project a run writes to (:func:`project_setup`, the Snakefile's first step;
  :func:`load_project`, the same config for ``greensink validate`` and the tests;
  :func:`project_dir`, :func:`check_project`);
* rule helpers: change pairs, the CHM of a year, the model notes, the threads of the composite,
  the green-space files, the demo's files (:func:`demo_paths`, kept with the config contract in
  :mod:`greensink.config` and re-exported here);
* rule input functions: the files the ingest of a year reads (:func:`imagery_inputs`,
  :func:`ingest_input_function`) and the files the grid's lattice is read from
  (:func:`lattice_inputs`, :func:`lattice_input_function`).

It sits above the science modules and below :mod:`greensink.cli`: science modules never import it.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from greensink import package_data
from greensink.config import (
    absolute_path,
    demo_paths,
    greenspace_by_year,
    greenspace_of_year,
    read_yaml,
    resolve_paths,
    switch_off_nulls,
    validate,
)
from greensink.errors import ConfigError
from greensink.ingest import Scene, in_season, resolve_profiles, scenes_from_files
from greensink.lattice import grid_align
from greensink.portable import run_relative
from greensink.stac import is_static, local_path

__all__ = [
    "COMPOSITE_MAX_THREADS", "DEMO_CONFIG", "PROJECT_MARKER", "change_pairs", "check_project", "checkout", "chm_path",
    "composite_threads", "demo_paths", "greenspace_by_year", "greenspace_inputs", "greenspace_of_year",
    "imagery_inputs", "ingest_input_function",
    "lattice_input_function", "lattice_inputs", "load_project", "model_notes", "project_dir", "project_setup",
]

# the built-in demo city: the workflow's config when none is given (package data; config/config.yaml links to it)
DEMO_CONFIG = package_data.file_path(package_data.DEMO_CONFIG)
PROJECT_MARKER = ".greensink-project.json"  # in a project folder: which config file writes there
PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_HINT = ("The workflow (Snakefile, workflow/rules, workflow/scripts, envs) is in the greensink checkout, not in "
                 "the installed package: clone the greensink repository, install it with `pip install -e .` (or `make "
                 "install`) and run `greensink run CONFIG` from that install, or `snakemake --snakefile "
                 "CHECKOUT/Snakefile --configfile CONFIG`.")


def checkout() -> Path | None:
    """The greensink checkout this package was imported from (the folder holding the Snakefile, workflow/ and
    src/greensink), or None when greensink is an installed package (a wheel ships no workflow: see CHECKOUT_HINT)."""
    root = PACKAGE_DIR.parents[1]
    if ((root / "Snakefile").is_file() and (root / "workflow" / "rules").is_dir()
            and (root / "src" / "greensink").resolve() == PACKAGE_DIR):
        return root
    return None


# ----------------------------------------------------------------------------- the project


def project_dir(cfg: Mapping, config_file: str | Path | None, base: str | Path) -> Path:
    """The project folder a config writes results/, resources/ and logs/ to: ``workdir`` if set (relative
    to ``base``, the folder the run starts in); else ``base`` itself for the built-in demo config; else
    ``projects/<config file name>`` under ``base`` (``projects/canberra`` for config/examples/canberra.yaml)."""
    base = Path(base)
    if cfg.get("workdir"):
        return Path(absolute_path(str(cfg["workdir"]), base))
    if config_file is None or Path(config_file).resolve() == DEMO_CONFIG.resolve():
        return base.resolve()
    return (base / "projects" / Path(config_file).stem).resolve()


def check_project(folder: str | Path, config_file: str | Path | None) -> None:
    """Refuse to write a project folder another config file already writes to (its results would mix);
    record this config file as the folder's owner otherwise. ``config_file`` None is the demo config.
    A config inside the folder is recorded relative to it (:func:`greensink.portable.run_relative`), so a
    project folder moved or unpacked elsewhere with its config still belongs to that config."""
    folder = Path(folder)
    owner = str(Path(config_file or DEMO_CONFIG).resolve())
    marker = folder / PROJECT_MARKER
    if marker.exists():
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8")).get("config")
        except (ValueError, AttributeError):
            recorded = None
        if recorded:  # a relative record is relative to the folder; resolved: a config recorded through a link
            recorded = str((folder / recorded).resolve())
        if recorded and Path(recorded) != Path(owner):
            raise ConfigError(
                f"{folder}: this project folder holds the results of the config {recorded}, and this run's config is "
                f"{owner}. Outputs of two configs must not mix. Give this config its own folder (set workdir: in it, e.g. "
                f"workdir: projects/{Path(owner).stem}, or run snakemake with --directory DIR), or delete "
                f"{folder / 'results'} and {marker} if the other project's outputs are no longer needed."
            )
        if recorded and Path(recorded) == Path(owner):
            return
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"config": run_relative(owner, folder.resolve())}, indent=1) + "\n", encoding="utf-8")


def load_project(config_file: str | Path | None, overrides: Mapping | None = None,
                 base: str | Path | None = None) -> dict:
    """The config a run uses, exactly as the workflow sees it: the file as given (never merged with the demo
    config; ``None`` is the demo config), ``overrides`` (``--config`` values) on top, schema defaults, optional
    sections set to null switched off, input paths absolute against ``base`` (default: the current folder) and
    ``workdir`` set to the project folder (:func:`project_dir`)."""
    base = Path(base or Path.cwd())
    raw = read_yaml(config_file or DEMO_CONFIG, "Fix the config, starting from config/config.yaml")
    if overrides:
        raw = _merged(raw, overrides)
    cfg = switch_off_nulls(validate(raw))
    cfg = resolve_paths(cfg, base, given=raw)
    cfg["workdir"] = str(project_dir(cfg, config_file, base))
    return cfg


def project_setup(config: Mapping, configfiles: Sequence[str | Path], base: str | Path, *, directory_given: bool = False,
                  main: bool = True) -> tuple[dict, list[str]]:
    """What the Snakefile does with Snakemake's ``config`` before any rule: validate it, switch off null
    sections, make input paths absolute against ``base`` (the folder Snakemake runs in), choose the project
    folder (``base`` itself when --directory was given) and, in the main process only, check every input
    (:func:`greensink.preflight.check_inputs`) and claim the project folder (:func:`check_project`).
    Returns the config and the preflight warnings; raises a GreensinkError listing every problem."""
    config_file = Path(configfiles[-1]) if configfiles else None
    cfg = switch_off_nulls(validate(config))
    cfg = resolve_paths(cfg, base, given=config)
    cfg["workdir"] = str(Path(base).resolve() if directory_given else project_dir(cfg, config_file, base))
    warnings: list[str] = []
    if main:
        from greensink.preflight import check_inputs  # reads files: rasterio, pyogrio

        warnings = check_inputs(cfg)
        check_project(cfg["workdir"], config_file)
    return cfg, warnings


LAUNCH_ENV = "GREENSINK_LAUNCH"  # where the main process started: {"base": folder, "directory_given": bool}


def launch_context(cwd: str | Path, directory_given: bool, main: bool) -> tuple[str, bool]:
    """The folder a run started in and whether --directory was given, for :func:`project_setup`.

    The main process takes ``cwd`` and ``directory_given`` and records them in the environment
    (:data:`LAUNCH_ENV`). A job that a cluster executor (e.g. Slurm) runs in a new Snakemake process is not the
    main process: it starts in the project folder, without --directory, so on its own it would resolve the
    config's relative paths against the project folder and choose ``projects/<config>`` inside it. It reads
    the main process's record instead (sbatch passes the environment on), and without a record takes its own
    folder as the project folder."""
    if main:
        os.environ[LAUNCH_ENV] = json.dumps({"base": str(Path(cwd).resolve()), "directory_given": bool(directory_given)})
        return str(cwd), bool(directory_given)
    recorded = os.environ.get(LAUNCH_ENV)
    if not recorded:
        return str(cwd), True
    launch = json.loads(recorded)
    return str(launch["base"]), bool(launch["directory_given"])


def _merged(a: Mapping, b: Mapping) -> dict:
    """``a`` updated by ``b`` recursively (mappings merged, anything else replaced), like ``snakemake --config``."""
    out = copy.deepcopy(dict(a))
    for k, v in b.items():
        out[k] = _merged(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else copy.deepcopy(v)
    return out


# ----------------------------------------------------------------------------- rule helpers


def change_pairs(cfg: Mapping) -> list[tuple[int, int]]:
    """The year pairs rule change runs: each consecutive pair of the sorted reporting years and, with three
    or more years, the period pair (first, last) after them (its sink is the yearly mean over the period,
    (stock last − stock first)/(last − first)). Duplicate years count once."""
    years = sorted({int(y) for y in cfg["years"]})
    pairs = list(zip(years[:-1], years[1:], strict=True))
    if len(years) >= 3:
        pairs.append((years[0], years[-1]))
    return pairs


def chm_path(cfg: Mapping, year: int | str) -> str | None:
    """The canopy height model of ``year``: vegetation.chm.path with "{year}" replaced, or None."""
    chm = cfg["vegetation"].get("chm")
    return str(chm["path"]).replace("{year}", str(year)) if chm else None


def model_notes(cfg: Mapping) -> list[str]:
    """Cautions about the configured models that belong in models.json, the log and the report."""
    notes = []
    chm = cfg["vegetation"].get("chm")
    static = [q for q in ("height", "canopy") if q in cfg["model"]["predictors"]]
    if static and chm and "{year}" not in str(chm["path"]) and len(cfg["years"]) > 1:
        names = " and ".join(static)
        notes.append(
            f"{names} come{'s' if len(static) == 1 else ''} from one canopy height model for every year "
            "(vegetation.chm.path has no {year}; canopy only where the CHM has data): where a type's model uses "
            f"{names}, the stock change between years there reflects only the yearly refits of the models, not a "
            "change in the vegetation. Give one CHM per year (e.g. path: data/chm_{year}.tif) or drop "
            f"{names} from model.predictors for sink accounting."
        )
    return notes


COMPOSITE_MAX_THREADS = 8  # dask composite: memory in flight grows with threads × scenes × 3 × block_rows² × 4 bytes


def composite_threads(cfg: Mapping, cores: int | None) -> int:
    """Threads of the untiled composite job (rule composite): with ``imagery.engine`` dask, the
    ``cores`` given to Snakemake (``workflow.cores``) up to :data:`COMPOSITE_MAX_THREADS`, as many
    as its chunks can use; otherwise 1, since the windowed composite reads its row strips on one
    thread. ``cores`` None or unbounded (a cluster executor) gives the cap. With ``imagery.dask.scheduler``
    the address of a running dask.distributed scheduler, 1: that cluster computes and the job only waits
    on it. No config key: the user sets ``--cores`` (or ``--set-threads composite=N``)."""
    if cfg.get("imagery", {}).get("engine", "windows") != "dask":
        return 1
    if ((cfg["imagery"].get("dask") or {}).get("scheduler") or "threads") not in ("threads", "local"):  # lazy.SCHEDULERS
        return 1  # an address (greensink.lazy.dask_scheduler): the remote cluster's workers compute
    if not cores or cores <= 0:
        return COMPOSITE_MAX_THREADS
    return max(1, min(int(cores), COMPOSITE_MAX_THREADS))


def greenspace_inputs(cfg: Mapping, year: int | str | None = None) -> list[str]:
    """The files the green-space typing of ``year`` reads: the polygons, or the raster and its class table.
    With types given per year (a path holding "{year}", :func:`greensink.config.greenspace_by_year`), ``year``
    None gives every reporting year's files (sorted, each once: what provenance checksums)."""
    if year is None and greenspace_by_year(cfg):
        return sorted({f for y in cfg["years"] for f in greenspace_inputs(cfg, y)})
    gs = greenspace_of_year(cfg, year)
    return [gs["path"]] if "path" in gs else [gs["raster"], gs["class_table"]]


# ----------------------------------------------------------------------------- rule input functions


@functools.lru_cache(maxsize=8)
def _files_scenes(files_json: str, profiles_json: str, cwd: str) -> tuple[Scene, ...]:
    """Cached scan of imagery.files (the ingest rule asks once per year); ``cwd`` keys relative globs."""
    return tuple(scenes_from_files(json.loads(files_json), resolve_profiles(json.loads(profiles_json))))


def _scenes_of_files(im: Mapping) -> list[Scene]:
    """The scenes imagery.files finds (cached per files, profiles and current folder)."""
    return list(_files_scenes(json.dumps(im["files"], sort_keys=True), json.dumps(im.get("profiles") or {}, sort_keys=True),
                              str(Path.cwd())))


def imagery_inputs(cfg: Mapping, year: int | None = None) -> dict[str, list[str]]:
    """The files the ingest of ``year`` reads: ``table`` (the scenes table, if any) and ``images``
    (band files found by imagery.files whose date falls in that year's season; all years if None)."""
    im = cfg["imagery"]
    if im["source"] == "demo":
        return {"table": [demo_paths(cfg)["scenes"]], "images": []}
    if im["source"] == "stac":  # searched in the job; a local static catalog's root file is an input
        catalog = str(im["stac"]["catalog"])
        local = is_static(catalog) and "://" not in catalog.replace("file://", "")
        return {"table": [], "images": [], "catalog": [local_path(catalog)] if local else []}
    table = [im["scenes"]] if im.get("scenes") else []
    images: set[str] = set()
    if im.get("files"):
        scenes = _scenes_of_files(im)
        if year is not None:
            scenes = in_season(scenes, year, cfg["season"])
        images = {p for s in scenes for _, p, _ in s.band_files()}
    return {"table": table, "images": sorted(images)}


def ingest_input_function(cfg: Mapping) -> Callable[[Any], dict[str, list[str]]]:
    """The ingest rule's input function: ``imagery_inputs`` of the job's ``{year}`` wildcard."""

    def inputs(wildcards) -> dict[str, list[str]]:
        return imagery_inputs(cfg, int(wildcards.year))

    return inputs


def lattice_inputs(cfg: Mapping) -> list[str]:
    """The files :func:`greensink.lattice.imagery_lattice` reads, as inputs of the rule that makes the
    grid: the scenes table (the demo's or imagery.scenes), the first scene's red file found by
    imagery.files, or a local static STAC catalog. Empty unless grid.align is imagery."""
    if grid_align(cfg) != "imagery":
        return []
    im = cfg["imagery"]
    found = imagery_inputs(cfg)
    if im["source"] == "stac":
        return found["catalog"]
    out = list(found["table"])
    if im["source"] == "local" and im.get("files"):
        scenes = _scenes_of_files(im)
        used = [s for s in scenes if any(in_season([s], y, cfg["season"]) for y in cfg["years"])]
        out += [(used or scenes)[0].red] if scenes else []
    return out


def lattice_input_function(cfg: Mapping) -> Callable[[Any], list[str]]:
    """The grid rule's input function: :func:`lattice_inputs` of the config."""

    def inputs(wildcards) -> list[str]:
        return lattice_inputs(cfg)

    return inputs
