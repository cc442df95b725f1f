"""The ``zoning`` config section: its checks, the factor records of the importance overlay, the
canopy target of a level and the density planting and potential space are valued at.

Light on imports (no raster stack), so that validating a config can call :func:`config_problems`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# built-in factor layers of the importance overlay: the run's own products of the year
BUILTIN_LAYERS = ("vegetation_class", "canopy", "height", "ndvi", "fvc", "carbon", "greenspace_type")
MASK_LAYERS = ("construction", "cropland", "red_line")  # subtracted from the land for the potential space
NO_TYPE = "none"  # key of the greenspace_type factor's score for land of no green-space type


@dataclass(frozen=True)
class Factor:
    """One factor of the importance overlay: a layer reclassified to scores.

    ``layer`` is a built-in layer (:data:`BUILTIN_LAYERS`) or ``path`` names a user raster (band ``band``).
    Scores come from ``breaks`` and ``scores`` (value < breaks[0] → scores[0], breaks[i-1] ≤ value < breaks[i]
    → scores[i], value ≥ breaks[-1] → scores[-1]) or from ``classes`` (class value or type code → score).
    ``nodata_score`` is the score of a pixel where the layer has no value (None: such a pixel has no class)."""

    name: str
    weight: float
    layer: str | None = None
    path: str | None = None
    band: int = 1
    breaks: tuple[float, ...] = ()
    scores: tuple[float, ...] = ()
    classes: Mapping[str, float] = field(default_factory=dict)
    nodata_score: float | None = None

    @classmethod
    def from_config(cls, d: Mapping[str, Any]) -> Factor:
        return cls(name=str(d["name"]), weight=float(d["weight"]), layer=d.get("layer"), path=d.get("path"),
                   band=int(d.get("band", 1)), breaks=tuple(float(b) for b in d.get("breaks") or ()),
                   scores=tuple(float(s) for s in d.get("scores") or ()),
                   classes={str(k): float(v) for k, v in (d.get("classes") or {}).items()},
                   nodata_score=None if d.get("nodata_score") is None else float(d["nodata_score"]))

    @property
    def source(self) -> str:
        return self.layer if self.layer else f"user raster {self.path} band {self.band}"


def factor_problems(factors: Sequence[Mapping[str, Any]], where: str = "zoning.importance.factors") -> list[str]:
    """Problems of the factor list a schema cannot see: one of layer/path, one of breaks+scores/classes,
    ascending breaks, one score more than breaks, distinct names."""
    problems: list[str] = []
    names = [str(f.get("name")) for f in factors]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{where}: factor name {dup!r} appears more than once. Give each factor its own name.")
    for i, f in enumerate(factors):
        key = f"{where}[{i}] ({f.get('name')})"
        if bool(f.get("layer")) == bool(f.get("path")):
            problems.append(f"{key}: give either layer (one of {list(BUILTIN_LAYERS)}) or path (a raster file), "
                            f"not {'both' if f.get('layer') else 'neither'}.")
        has_breaks, has_classes = bool(f.get("breaks")), bool(f.get("classes"))
        if has_breaks == has_classes:
            problems.append(f"{key}: give either breaks with scores (a continuous layer) or classes (class → score), "
                            f"not {'both' if has_breaks else 'neither'}.")
        if has_breaks:
            breaks, scores = list(f["breaks"]), list(f.get("scores") or [])
            if any(b >= a for b, a in zip(breaks, breaks[1:], strict=False)):
                problems.append(f"{key}: breaks must be strictly ascending. Got {breaks}.")
            if len(scores) != len(breaks) + 1:
                problems.append(f"{key}: scores must have one value more than breaks ({len(breaks) + 1}). Got {scores}.")
        if f.get("layer") == "greenspace_type" and has_classes and NO_TYPE not in f["classes"]:
            problems.append(f"{key}: classes of greenspace_type need a score for {NO_TYPE!r} (land of no green-space type).")
    return problems


def config_problems(cfg: Mapping[str, Any]) -> list[str]:
    """Checks of the zoning section the schema cannot express (called by greensink.config.validate)."""
    z = cfg.get("zoning")
    if not isinstance(z, Mapping):
        return []
    problems: list[str] = []
    levels = [zz["level"] for zz in cfg.get("zones") or []]
    target = z.get("canopy_target_pct")
    if isinstance(target, Mapping):
        unknown = sorted(set(target) - set(levels))
        if unknown:
            problems.append(f"zoning.canopy_target_pct: level(s) {unknown} are not zone levels {levels}. "
                            "Key the targets by the levels of zones, or give one number for every level.")
    imp = z.get("importance") or {}
    problems += factor_problems(imp.get("factors") or [])
    breaks = list(imp.get("class_breaks") or [])
    if len(breaks) == 2 and breaks[0] >= breaks[1]:
        problems.append(f"zoning.importance.class_breaks: the 重要 important break must be below the 极重要 extremely "
                        f"important break. Got {breaks}.")
    for name in ("open_land", *MASK_LAYERS):
        layer = z.get(name)
        if isinstance(layer, Mapping) and bool(layer.get("path")) == bool(layer.get("raster")):
            problems.append(f"zoning.{name}: give either path (polygons) or raster (with classes), not "
                            f"{'both' if layer.get('path') else 'neither'}.")
    return problems


def canopy_target(setting: float | Mapping[str, float] | None, level: str) -> float | None:
    """The canopy-cover target of ``level``, % (None: no target for it)."""
    if setting is None:
        return None
    if isinstance(setting, Mapping):
        value = setting.get(level)
        return None if value is None else float(value)
    return float(setting)


@dataclass(frozen=True)
class Density:
    """A carbon density, t C per ha of the land it stands on, and where it comes from."""

    t_ha: float
    source: str


def planting_density(configured: float | None, type_code: str | None, table: Any, table_path: str,
                     default_table: Any, default_name: str) -> Density:
    """The density a planted or potential hectare is valued at: ``configured`` when given, else the
    c_above + c_below of ``type_code``'s row in the run's coefficient table ``table`` (a DataFrame read
    from ``table_path``), else that of the type's row in greensink's default density table
    ``default_table`` (``default_name``; the VEG row when ``type_code`` is not in either)."""
    if configured is not None:
        return Density(float(configured), "configured (zoning)")
    for tab, name in ((table, table_path), (default_table, default_name)):
        if tab is None or "type" not in getattr(tab, "columns", ()):
            continue
        codes = [type_code] if type_code else []
        if tab is default_table:
            codes.append("VEG")
        for code in codes:
            rows = tab[tab["type"].astype(str) == code]
            if len(rows):
                row = rows.iloc[0]
                above, below = (_num(row.get(k)) for k in ("c_above", "c_below"))
                if math.isfinite(above):
                    value = above + (below if math.isfinite(below) else 0.0)
                    return Density(value, f"{name}, type {code}: c_above + c_below = {value:g} t C/ha")
    raise ValueError(f"No density for type {type_code!r} in {table_path} or {default_name}. Set the zoning density "
                     "(zoning.tree_density_t_ha or zoning.potential_density_t_ha) in the config.")


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def zoning_density(zoning: Mapping[str, Any], greenspace: Mapping[str, Any] | None, key: str, table: Any,
                   table_path: str, default_table: Any, default_name: str) -> Density:
    """The density of ``key`` (tree_density_t_ha, or potential_density_t_ha which falls back to the former)
    resolved as :func:`planting_density` does, for the type zoning.density_type, else the first park type,
    else VEG (a run without green-space types)."""
    configured = zoning.get(key)
    if configured is None and key == "potential_density_t_ha":
        configured = zoning.get("tree_density_t_ha")
    code = zoning.get("density_type")
    if code is None:
        parks = list((greenspace or {}).get("park_types") or [])
        code = parks[0] if greenspace and parks else ("VEG" if not greenspace else next(iter(greenspace.get("types") or {}), None))
    return planting_density(configured, code, table, table_path, default_table, default_name)
