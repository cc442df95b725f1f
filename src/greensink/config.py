"""Configuration: fill defaults, validate against the JSON Schema, check what a schema cannot.

Validation collects every problem and reports them together in one :class:`ConfigError`,
each line naming the key, the value found and the fix (the key's description from the schema).
Checks of a section that belongs to another concept are that module's (sensor profiles and file
patterns: :mod:`greensink.ingest`; STAC settings: :mod:`greensink.stac`), called from here.

Also here: the paths of a config (:func:`input_paths`, :func:`resolve_paths`, the demo's files).
The schema and the default tables are package data (:mod:`greensink.package_data`), so an installed
greensink validates a config outside the checkout.
What a run does with a config (its project folder, the rule helpers) is :mod:`greensink.workflow`.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from greensink import package_data
from greensink.errors import ConfigError
from greensink.grid import check_projected

# Optional sections a config can switch off with null (``population: null``): the key is then absent.
OPTIONAL_SECTIONS = ("population", "residential", "plots", "greenspace", "zoning")
# Keys whose default is one of greensink's own tables (package data; config/<name> in the checkout links to it),
# resolved to the package's file rather than in the run folder when the config leaves them out.
PACKAGE_DEFAULTS = {"coefficients": package_data.COEFFICIENTS, "targets": package_data.TARGETS}


def read_yaml(path: str | Path, fix: str = "Fix the file's YAML syntax") -> dict:
    """A YAML file whose top level is a mapping (an empty file gives {}); anything else raises
    ConfigError naming the file, what was found and ``fix``. The one YAML reader of greensink's
    own files (config, targets, allometry parameters); kept here, not in greensink.io, so that
    validating a config does not import the raster and vector stack."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found. Give the path of an existing YAML file.") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}). Save it as UTF-8.") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        context = getattr(exc, "context", None)
        raise ConfigError(f"{path}: not valid YAML{at} ({what}{', ' + context if context else ''}). {fix} (e.g. a missing "
                          "closing bracket or quote, a tab instead of spaces, or a value with ': ' not quoted).") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values. Got a {type(doc).__name__} "
                          f"instead. {fix}.")
    return doc


def load_schema(path: str | Path | None = None) -> dict:
    """The config's JSON Schema: greensink's own (package data ``greensink/data/config.schema.yaml``, which the
    checkout's ``workflow/schemas/config.schema.yaml`` links to) unless ``path`` names another file."""
    if path is not None:
        return read_yaml(path)
    return yaml.safe_load(package_data.read_text(package_data.SCHEMA))


def with_defaults(config: Mapping, schema: Mapping) -> dict:
    """A copy of ``config`` with every missing key that has a schema default filled in (recursively)."""
    out = copy.deepcopy(dict(config))
    _fill(out, schema)
    return out


def _fill(node: dict, schema: Mapping) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in node and "default" in sub:
            node[key] = copy.deepcopy(sub["default"])
        if isinstance(node.get(key), dict) and "object" in _schema_types(sub):
            _fill(node[key], sub)


_PY_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _schema_types(node: Mapping) -> set[str]:
    t = node.get("type")
    return {t} if isinstance(t, str) else set(t or ())


def parse_strings(config: Mapping, schema: Mapping) -> tuple[dict, dict[tuple, str]]:
    """``config`` with strings read as YAML where the schema does not take a string, as given by
    ``snakemake --config``: Snakemake reads a value such as ``tiles='{size_px: 128}'`` with YAML's
    base loader, so the mapping arrives with every scalar a string (``{'size_px': '128'}``), and a
    value that is not valid YAML (``tiles='{size_px: 128'``) arrives as one string.

    A string at a key whose schema type is object or array (and not string) is parsed with
    ``yaml.safe_load`` and replaced only if it parses to that type; a string at a key whose type is
    integer, number, boolean or null (and not string) likewise, only if it parses to one of them
    ('128' -> 128, 'null' -> None, 'true' -> True). Anything else is left for validation to report.
    Returns the new config and, per key path, the problem of a string that is not valid YAML where
    a mapping or list is expected."""
    problems: dict[tuple, str] = {}
    return _parse_node(copy.deepcopy(dict(config)), schema, (), problems), problems


def _parse_node(value: Any, node: Mapping, path: tuple, problems: dict[tuple, str]) -> Any:
    types = _schema_types(node)
    if isinstance(value, str) and types and "string" not in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            if types & {"object", "array"}:
                shape = " or ".join(t for t in ("object", "array") if t in types).replace("object", "mapping").replace("array", "list")
                mark = getattr(exc, "problem_mark", None)
                where = f" at character {mark.column + 1}" if mark is not None else ""
                problems[path] = (f"{_key(path)}: got {value!r}, which is not valid YAML{where} "
                                  f"({getattr(exc, 'problem', None) or exc}). Give a YAML {shape}, quoted for the shell, "
                                  "e.g. --config tiles='{size_px: 2048}' years='[2023, 2024]'.")
            return value
        if any(_PY_TYPES[t](parsed) for t in types if t in _PY_TYPES):
            value = parsed
    if isinstance(value, dict) and "object" in types:
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        for k in list(value):
            sub = props.get(k, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                value[k] = _parse_node(value[k], sub, (*path, k), problems)
    elif isinstance(value, list) and "array" in types and isinstance(node.get("items"), Mapping):
        value = [_parse_node(v, node["items"], (*path, i), problems) for i, v in enumerate(value)]
    return value


def validate(config: Mapping, schema: Mapping | None = None) -> dict:
    """Return the config with defaults, or raise ConfigError listing every problem.

    Strings where the schema wants a mapping, list, number, boolean or null are first read as YAML
    (:func:`parse_strings`), so ``snakemake --config tiles='{size_px: 128}'`` validates like the
    same value written in the config file."""
    schema = schema or load_schema()
    cfg, yaml_problems = parse_strings(config, schema)
    cfg = with_defaults(cfg, schema)
    problems = list(yaml_problems.values())
    problems += [_describe(err, schema) for err in sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(cfg), key=lambda e: [str(p) for p in e.absolute_path]
    ) if tuple(err.absolute_path) not in yaml_problems]  # a value that is not YAML is named once, above
    problems += _semantic_problems(cfg)
    if problems:
        raise ConfigError("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
    return cfg


def _key(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _describe(err: jsonschema.ValidationError, schema: Mapping) -> str:
    key = _key(err.absolute_path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        return f"{key}: unknown key(s) {', '.join(map(repr, extra))}. Allowed keys here: {allowed}. Check the spelling."
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        desc = err.schema.get("properties", {}).get(missing, {}).get("description", "")
        where = f"{key}." if key != "(top level)" else ""
        return f"{where}{missing}: required key is missing. Add it: {desc}".rstrip()
    desc = err.schema.get("description") or _description_at(schema, err.absolute_path)
    fix = f" Fix: {desc}" if desc else ""
    return f"{key}: got {err.instance!r}; {err.message.replace(repr(err.instance), 'it')}.{fix}"


def _description_at(schema: Mapping, path) -> str:
    node: Any = schema
    desc = ""
    for p in path:
        if isinstance(p, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(p, {})
        desc = node.get("description", desc)
    return desc


def _semantic_problems(cfg: dict) -> list[str]:
    """Checks a schema cannot express; each runs only where the schema found the keys well-formed."""
    problems: list[str] = []
    for check in (_check_crs, _check_season, _check_zones, _check_imagery, _check_greenspace, _check_park_types,
                  _check_predictors, _check_zoning, _check_scenarios, _check_demo, _check_change):
        try:
            problems += check(cfg)
        except (KeyError, TypeError, AttributeError, ValueError):
            pass  # the schema error for the same key is already listed
    return problems


def _check_demo(cfg: dict) -> list[str]:
    """The demo city's parcel size (only where the demo runs: imagery.source demo)."""
    if (cfg.get("imagery") or {}).get("source") != "demo":
        return []
    from greensink.demo.params import parcel_size_problem  # imported here: the demo's raster stack only for demo runs

    d = cfg["demo"]
    problem = parcel_size_problem(float(d["extent_m"]), d["blocks"], d["parcels_per_block"])
    return [f"demo: {problem}"] if problem else []


def _check_change(cfg: dict) -> list[str]:
    """change.draws: analytic runs untiled only (greensink.change.run.check_draws refuses it in a tile job too)."""
    if (cfg.get("change") or {}).get("draws") == "analytic" and (cfg.get("tiles") or {}).get("size_px") is not None:
        return ["change.draws: analytic cannot run with tiles.size_px set (a tiled run): a zone across tiles needs the "
                "residual field's covariance between tiles, which this version does not compute. Set change.draws: "
                "exact, or tiles.size_px: null."]
    return []


def _check_scenarios(cfg: dict) -> list[str]:
    from greensink.scenario.plan import config_problems  # imported here, like the imagery checks

    return config_problems(cfg)


def _check_zoning(cfg: dict) -> list[str]:
    from greensink.zoning.settings import config_problems  # light: no raster stack

    return config_problems(cfg)


def _check_predictors(cfg: dict) -> list[str]:
    if "height" in cfg["model"]["predictors"] and not cfg["vegetation"].get("chm"):
        return ["model.predictors lists height, but vegetation.chm is not set: height.tif would be empty. "
                "Add a canopy height model under vegetation.chm, or remove height from model.predictors."]
    return []


def _check_crs(cfg: dict) -> list[str]:
    problems: list[str] = []
    try:
        check_projected(cfg["crs"], "crs")
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


def _check_season(cfg: dict) -> list[str]:
    problems: list[str] = []
    for key in ("start", "end"):
        value = cfg["season"][key]
        try:
            dt.date(2001, *map(int, value.split("-")))
        except ValueError:
            problems.append(f"season.{key}: got {value!r}, which is not a calendar day. Use MM-DD, e.g. '04-01'.")
    return problems


def _check_zones(cfg: dict) -> list[str]:
    problems: list[str] = []
    levels = [z["level"] for z in cfg["zones"]]
    dupes = sorted({lv for lv in levels if levels.count(lv) > 1})
    if dupes:
        problems.append(f"zones: level(s) {dupes} appear more than once. Give each level once, coarsest first.")
    return problems


def _check_imagery(cfg: dict) -> list[str]:
    return imagery_problems(cfg)


def imagery_problems(cfg: Mapping) -> list[str]:
    """Checks of the imagery section the schema cannot express (sensor profiles, file patterns, the STAC
    settings), without reading files; each check is the module's that owns the concept."""
    # imported here: the imagery modules import rasterio, which validating any other section does not need
    from greensink.ingest import check_profiles, entry_problems
    from greensink.stac import stac_problems

    im = cfg["imagery"]
    problems: list[str] = []
    if im["source"] == "local" and not im.get("scenes") and not im.get("files"):
        problems.append("imagery: source local needs imagery.scenes (a scenes table, CSV) or imagery.files (globs of band files).")
    profiles, profile_problems = check_profiles(im.get("profiles"))
    problems += profile_problems
    if im["source"] == "stac":
        problems += stac_problems(cfg, profiles)
    for i, entry in enumerate(im.get("files") or []):
        problems += entry_problems(entry, f"imagery.files[{i}]", profiles)
    return problems


def _check_greenspace(cfg: dict) -> list[str]:
    gs = cfg["greenspace"]
    has_polygons, has_raster = "path" in gs, "raster" in gs
    if has_polygons == has_raster:
        return ["greenspace: give either path (typed polygons, with type_column) or raster (land cover, with class_table), "
                f"not {'both' if has_polygons else 'neither'}."]
    if has_raster and "class_table" not in gs:
        return ["greenspace.class_table: required with greenspace.raster. Give a CSV mapping every class to a type or 'ignore'."]
    return []


def _check_park_types(cfg: dict) -> list[str]:
    problems: list[str] = []
    for code in cfg["greenspace"]["park_types"]:
        if code not in cfg["greenspace"]["types"]:
            problems.append(
                f"greenspace.park_types: {code!r} is not a type in greenspace.types ({sorted(cfg['greenspace']['types'])}). "
                "List only configured type codes."
            )
    return problems


def load(path: str | Path) -> dict:
    """Read a YAML config file and validate it (schema defaults only; paths as written)."""
    return validate(read_yaml(path, "Fix the config, starting from config/config.yaml"))


def switch_off_nulls(cfg: Mapping) -> dict:
    """``cfg`` without the optional sections set to null (``population: null``: no population), so that
    a config can switch off what it does not have; ``vegetation.chm: null`` likewise."""
    out = {k: v for k, v in cfg.items() if not (k in OPTIONAL_SECTIONS and v is None)}
    veg = out.get("vegetation")
    if isinstance(veg, dict) and "chm" in veg and veg["chm"] is None:
        out["vegetation"] = {k: v for k, v in veg.items() if k != "chm"}
    return out


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("/vsi")


def absolute_path(value: Any, base: Path) -> Any:
    """A path (or glob, or list of them) made absolute against ``base``; URLs and absolute paths as given."""
    if isinstance(value, list):
        return [absolute_path(v, base) for v in value]
    if not isinstance(value, str) or not value or _is_url(value):
        return value
    path = Path(value).expanduser()
    return str(path) if path.is_absolute() else os.path.normpath(str(base / path))


def input_paths(cfg: Mapping) -> list[tuple[str, Any]]:
    """Every (key, value) of ``cfg`` that names an input file or glob, keyed like the config
    (``zones[2].path``, ``imagery.files[0].red``)."""
    out: list[tuple[str, Any]] = []
    for i, z in enumerate(cfg.get("zones") or []):
        out.append((f"zones[{i}].path", z.get("path")))
    for section, keys in (("population", ("path",)), ("residential", ("path",)), ("plots", ("path",)),
                          ("greenspace", ("path", "raster", "class_table"))):
        for key in keys:
            if isinstance(cfg.get(section), Mapping) and cfg[section].get(key):
                out.append((f"{section}.{key}", cfg[section][key]))
    trees = (cfg.get("plots") or {}).get("trees") if isinstance(cfg.get("plots"), Mapping) else None
    if isinstance(trees, Mapping):
        for key in ("path", "params"):
            if trees.get(key):
                out.append((f"plots.trees.{key}", trees[key]))
    for key in PACKAGE_DEFAULTS:
        if cfg.get(key):
            out.append((key, cfg[key]))
    im = cfg.get("imagery") or {}
    if im.get("scenes"):
        out.append(("imagery.scenes", im["scenes"]))
    for i, entry in enumerate(im.get("files") or []):
        for role in ("path", "red", "nir", "quality"):
            if entry.get(role):
                out.append((f"imagery.files[{i}].{role}", entry[role]))
    if isinstance(im.get("stac"), Mapping) and im["stac"].get("catalog"):
        out.append(("imagery.stac.catalog", im["stac"]["catalog"]))
    chm = (cfg.get("vegetation") or {}).get("chm")
    if isinstance(chm, Mapping) and chm.get("path"):
        out.append(("vegetation.chm.path", chm["path"]))
    out += zoning_paths(cfg)
    for i, scenario in enumerate(cfg.get("scenarios") or []):  # the change layers of greensink.scenario
        for j, change in enumerate(scenario.get("changes") or []):
            out.append((f"scenarios[{i}].changes[{j}].path", change.get("path")))
    return out


def zoning_paths(cfg: Mapping) -> list[tuple[str, Any]]:
    """(key, path) of the zoning section's user layers and user-raster factors."""
    z = cfg.get("zoning")
    if not isinstance(z, Mapping):
        return []
    out: list[tuple[str, Any]] = []
    for name in ("open_land", "construction", "cropland", "red_line"):
        layer = z.get(name)
        for key in ("path", "raster"):
            if isinstance(layer, Mapping) and layer.get(key):
                out.append((f"zoning.{name}.{key}", layer[key]))
    factors = (z.get("importance") or {}).get("factors") if isinstance(z.get("importance"), Mapping) else None
    for i, f in enumerate(factors or []):
        if isinstance(f, Mapping) and f.get("path"):
            out.append((f"zoning.importance.factors[{i}].path", f["path"]))
    return out


def _set(cfg: dict, key: str, value: Any) -> None:
    node: Any = cfg
    parts = [int(p) if p.isdigit() else p for p in key.replace("[", ".").replace("]", "").split(".")]
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value


def demo_output(cfg: Mapping, value: Any) -> bool:
    """True for a relative path the demo rule writes (under demo.out_dir, source demo): it is made in the
    project folder, so it stays relative to it."""
    if (cfg.get("imagery") or {}).get("source") != "demo" or not isinstance(value, str) or Path(value).is_absolute():
        return False
    out_dir = Path(os.path.normpath((cfg.get("demo") or {}).get("out_dir", "resources/demo")))
    return Path(os.path.normpath(value)).parts[: len(out_dir.parts)] == out_dir.parts


def resolve_paths(cfg: Mapping, base: str | Path, given: Mapping | None = None) -> dict:
    """``cfg`` with every relative input path made absolute against ``base`` (the folder the run
    starts in), so that the project folder (``workdir``) can be elsewhere. The coefficient table and
    targets file left at their defaults (absent from ``given``, the config as written) are greensink's
    own files: the package's copy (:data:`PACKAGE_DEFAULTS`), found with or without the checkout.
    Files the demo rule writes stay relative."""
    out = copy.deepcopy(dict(cfg))
    base = Path(base)
    for key, value in input_paths(out):
        if demo_output(out, value):
            continue
        if key in PACKAGE_DEFAULTS and given is not None and key not in given:
            _set(out, key, str(package_data.file_path(PACKAGE_DEFAULTS[key])))
        else:
            _set(out, key, absolute_path(value, base))
    return out


def demo_paths(cfg: Mapping) -> dict[str, str]:
    """The files the demo rule writes, keyed like the config entries that read them (see :func:`demo_output`)."""
    d = cfg["demo"]["out_dir"]
    return {"scenes": f"{d}/imagery/scenes.csv", "manifest": f"{d}/demo.json"}


# The greenspace keys that name files; any of them may hold "{year}" for one green-space layer per reporting year.
GREENSPACE_FILES = ("path", "raster", "class_table")


def greenspace_by_year(cfg: Mapping) -> bool:
    """True when the green-space types are given per reporting year: greenspace.path (or raster, class_table)
    holds "{year}" (e.g. data/greenspace_{year}.gpkg), like vegetation.chm.path."""
    gs = cfg.get("greenspace")
    return isinstance(gs, Mapping) and any("{year}" in str(gs.get(k) or "") for k in GREENSPACE_FILES)


def greenspace_of_year(cfg: Mapping, year: int | str | None) -> dict | None:
    """The greenspace section as it applies to ``year``: its file paths with "{year}" replaced by the year
    (paths without it as given). None without green-space types. ``year`` None is allowed only while no
    path holds "{year}" (one layer for every year)."""
    gs = cfg.get("greenspace")
    if not isinstance(gs, Mapping):
        return None
    out = dict(gs)
    if not greenspace_by_year(cfg):
        return out
    if year is None:
        raise ValueError("greenspace_of_year: greenspace paths hold {year}; give the year.")
    for key in GREENSPACE_FILES:
        if out.get(key):
            out[key] = str(out[key]).replace("{year}", str(year))
    return out
