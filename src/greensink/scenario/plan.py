"""Scenario plans: the ``scenarios`` config section as typed records, their checks and their layers.

A scenario is a named planned state of a baseline year: a list of changes, each a polygon layer
and what its land becomes (:data:`KINDS`). This module turns the config into :class:`Scenario`
records with every default applied, checks them (:func:`config_problems`, the checks a schema
cannot express) and reads and checks the change layers (:func:`read_change_layer`,
:func:`layer_problems`), each problem naming the scenario, the change, the file and the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greensink.errors import InputDataError
from greensink.tiers import VEG

KINDS = ("greenspace", "construction", "planting", "conversion")
DEFAULT_PLANTING_TYPE = "XG"  # 附属绿地 attached green space: street trees and residential planting (CJJ/T 85-2017)
STATE_KEYS = ("ndvi", "canopy_pct", "density_t_ha")


@dataclass(frozen=True)
class Change:
    """One change of a scenario: the polygons of ``path`` (``layer``) become ``kind``.

    ``type`` is the new land's type (greenspace, planting), ``from_type``/``to_type`` the types of a
    conversion, ``share`` the planted share of the polygons' area (planting: canopy_share_pct / 100;
    1 otherwise), ``state`` the planned state keys given (:data:`STATE_KEYS`)."""

    kind: str
    path: str
    layer: str | None = None
    type: str | None = None
    from_type: str | None = None
    to_type: str | None = None
    share: float = 1.0
    state: dict[str, float] = field(default_factory=dict)

    @property
    def density_t_ha(self) -> float | None:
        """The given carbon density of the new land (t C/ha), or None (the type's model)."""
        value = self.state.get("density_t_ha")
        return None if value is None else float(value)

    @property
    def carbon_type(self) -> str | None:
        """The type whose model gives the new land's carbon: ``type`` (``to_type`` for a conversion)."""
        return self.to_type if self.kind == "conversion" else self.type


@dataclass(frozen=True)
class Scenario:
    """A named planned state of ``baseline_year``: its changes in order, and the optional growth
    (``years_to_maturity`` per type, ``at_year``)."""

    name: str
    label: str
    baseline_year: int
    changes: tuple[Change, ...]
    years_to_maturity: dict[str, float] | None = None
    at_year: int | None = None

    def pseudo_types(self) -> dict[str, tuple[str, float]]:
        """{pseudo-type code: (type, density t C/ha)} of the changes with a given density, in change
        order: ``<type>_plan<k>`` for change k (1-based). Their land carries the density instead of
        the type's model (:func:`greensink.scenario.burn.scenario_models`)."""
        return {pseudo_code(c.type, k): (c.type, c.density_t_ha) for k, c in enumerate(self.changes)
                if c.density_t_ha is not None and c.type is not None}

    def types(self, base_types: Sequence[str]) -> list[str]:
        """The scenario's carbon types: the run's types, then its pseudo-types."""
        return [*base_types, *self.pseudo_types()]

    def stages(self) -> dict[str, float]:
        """Growth stages {name: years after planting}: planting (0) and year<N> (at_year), with
        growth configured; {} without."""
        if self.years_to_maturity is None:
            return {}
        out = {"planting": 0.0}
        if self.at_year is not None:
            out[f"year{self.at_year}"] = float(self.at_year)
        return out

    def growth_share(self, k: int, years: float) -> float:
        """Share (0–1) of change k's carbon difference reached ``years`` after planting: 1 for
        construction (at once) and for a type without years_to_maturity, else min(years / T, 1)."""
        change = self.changes[k]
        if change.kind == "construction":
            return 1.0
        maturity = (self.years_to_maturity or {}).get(change.carbon_type or "")
        return 1.0 if maturity is None else min(float(years) / float(maturity), 1.0)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def pseudo_code(type_code: str, k: int) -> str:
    """The pseudo-type code of change k (0-based) of a scenario: ``<type>_plan<k+1>``."""
    return f"{type_code}_plan{k + 1}"


def scenarios(cfg: Mapping) -> list[Scenario]:
    """The ``scenarios`` of a validated config as :class:`Scenario` records, defaults applied:
    label = name, baseline_year = the last year, planting type XG."""
    years = sorted(cfg["years"])
    out = []
    for s in cfg.get("scenarios") or []:
        changes = []
        for c in s.get("changes") or []:
            kind = c["kind"]
            changes.append(Change(
                kind=kind, path=str(c["path"]), layer=c.get("layer"),
                type=c.get("type", DEFAULT_PLANTING_TYPE if kind == "planting" else None),
                from_type=c.get("from"), to_type=c.get("to"),
                share=float(c["canopy_share_pct"]) / 100.0 if kind == "planting" else 1.0,
                state={k: float(v) for k, v in (c.get("state") or {}).items()},
            ))
        growth = s.get("growth") or None
        out.append(Scenario(
            name=s["name"], label=s.get("label") or s["name"],
            baseline_year=int(s["baseline_year"]) if s.get("baseline_year") is not None else years[-1],
            changes=tuple(changes),
            years_to_maturity={str(k): float(v) for k, v in growth["years_to_maturity"].items()} if growth else None,
            at_year=(growth or {}).get("at_year"),
        ))
    return out


def scenario_of(cfg: Mapping, name: str) -> Scenario:
    """The scenario called ``name``."""
    for s in scenarios(cfg):
        if s.name == name:
            return s
    raise KeyError(f"scenario {name!r} is not in the config's scenarios.")


def config_problems(cfg: Mapping) -> list[str]:
    """Checks of the scenarios section a schema cannot express: unique names, a baseline year among
    the years, each kind's keys, and type codes the run knows."""
    problems: list[str] = []
    raw = cfg.get("scenarios") or []
    names = [s.get("name") for s in raw]
    for name in sorted({n for n in names if names.count(n) > 1}, key=str):
        problems.append(f"scenarios: name {name!r} is used more than once. Give each scenario its own name.")
    typed = isinstance(cfg.get("greenspace"), Mapping)
    types = list(cfg["greenspace"]["types"]) if typed else [VEG]
    for i, s in enumerate(raw):
        where = f"scenarios[{i}] ({s.get('name')})"
        year = s.get("baseline_year")
        if year is not None and year not in cfg["years"]:
            problems.append(f"{where}.baseline_year: {year} is not a reporting year {sorted(cfg['years'])}. "
                            "Use one of the years, or leave it out for the last.")
        for j, c in enumerate(s.get("changes") or []):
            problems += _change_problems(c, f"{where}.changes[{j}]", types, typed)
        growth = s.get("growth") or {}
        for code in (growth.get("years_to_maturity") or {}):
            if code not in types:
                problems.append(f"{where}.growth.years_to_maturity: {code!r} is not a type of the run ({types}). "
                                "List only configured type codes.")
    return problems


_KIND_KEYS = {
    "greenspace": ({"type"}, {"type", "state"}),
    "construction": (set(), set()),
    "planting": ({"canopy_share_pct"}, {"type", "state", "canopy_share_pct"}),
    "conversion": ({"from", "to"}, {"from", "to"}),
}


def _change_problems(c: Mapping, where: str, types: Sequence[str], typed: bool) -> list[str]:
    kind = c.get("kind")
    if kind not in _KIND_KEYS:
        return []  # the schema names it
    required, allowed = _KIND_KEYS[kind]
    problems = [f"{where}: kind {kind} needs key {key!r}. {_HOW[key]}" for key in sorted(required - set(c))]
    extra = sorted(set(c) - allowed - {"kind", "path", "layer"})
    if extra:
        problems.append(f"{where}: key(s) {extra} do not apply to kind {kind} (it takes {sorted(allowed) or 'no other key'}). "
                        "Remove them.")
    if kind in ("greenspace", "conversion") and not typed:
        problems.append(f"{where}: kind {kind} needs green-space types, but the config has no greenspace section. "
                        "Add greenspace, or plan with construction and planting (type VEG) only.")
        return problems
    codes = {"type": c.get("type", DEFAULT_PLANTING_TYPE if kind == "planting" else None),
             "from": c.get("from"), "to": c.get("to")}
    for key, code in codes.items():
        if key in allowed and code is not None and code not in types:
            default = " (the planting default)" if key == "type" and "type" not in c else ""
            problems.append(f"{where}.{key}: {code!r}{default} is not a type of the run ({list(types)}). "
                            "Use a configured type code" + (" or set type." if default else "."))
    if kind == "conversion" and c.get("from") is not None and c.get("from") == c.get("to"):
        problems.append(f"{where}: from and to are both {c.get('from')!r}. A conversion needs two different types.")
    return problems


_HOW = {
    "type": "Give the green-space type code of the new land, e.g. type: G1.",
    "canopy_share_pct": "Give the planted canopy as a share of each polygon's area, e.g. canopy_share_pct: 10.",
    "from": "Give the type converted, e.g. from: XG.",
    "to": "Give the type it becomes, e.g. to: G1.",
}


def read_change_layer(change: Change, crs: str, where: str,
                      bounds: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """The polygons of a change in ``crs`` (repaired, polygonal parts), as a shapely array; raises
    InputDataError naming ``where`` and the file when the layer has no CRS, no features, no polygon,
    or (with ``bounds``, the grid's (xmin, ymin, xmax, ymax)) nothing inside the grid."""
    import shapely  # here: the config checks import this module without the geometry stack

    from greensink import io
    from greensink.geometry import prepare_polygons

    label = f"{where} ({change.path})"

    gdf = io.read_vector(change.path, change.layer)
    polys, _warnings = prepare_polygons(gdf, crs, label)
    geoms = np.asarray(polys.geometry.values, dtype=object)
    geoms = geoms[np.isin(shapely.get_type_id(geoms), (3, 6))]  # Polygon, MultiPolygon
    if not len(geoms):
        raise InputDataError(f"{label}: no polygon in the layer (found {sorted(set(polys.geom_type))}). "
                             "A change layer holds the polygons of the planned land.")
    if bounds is not None:
        area = shapely.box(*bounds)
        inside = float(shapely.area(shapely.intersection(shapely.union_all(geoms), area)))
        if inside <= 0:
            xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
            raise InputDataError(
                f"{label}: the polygons ({xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f} in {crs}) do not overlap the "
                f"run's grid ({bounds[0]:.0f}, {bounds[1]:.0f}, {bounds[2]:.0f}, {bounds[3]:.0f}). Check the layer's "
                "CRS and that it is drawn over the zones.")
    return geoms


def layer_problems(cfg: Mapping, area: tuple[float, float, float, float] | None,
                   skip: Callable[[str], bool] | None = None) -> list[str]:
    """Preflight of every scenario change layer that exists (a missing file is named by the file
    check) and that ``skip`` does not leave out (a layer a rule makes): readable, a CRS, polygons,
    overlapping ``area`` (the zones' bounds in the config's CRS)."""
    problems: list[str] = []
    for s in scenarios(cfg):
        for j, c in enumerate(s.changes):
            if not Path(c.path).exists() or (skip is not None and skip(c.path)):
                continue
            try:
                read_change_layer(c, cfg["crs"], f"scenario {s.name} change {j + 1} ({c.kind})", area)
            except InputDataError as exc:
                problems.append(str(exc))
    return problems


def input_paths(cfg: Mapping) -> list[tuple[str, str]]:
    """(config key, path) of every change layer, keyed like the config (``scenarios[0].changes[1].path``)."""
    out = []
    for i, s in enumerate(cfg.get("scenarios") or []):
        for j, c in enumerate(s.get("changes") or []):
            if c.get("path"):
                out.append((f"scenarios[{i}].changes[{j}].path", c["path"]))
    return out


def wildcard_pattern(names) -> str:
    """The {scenario} wildcard's regular expression: exactly the scenario names (a pattern matching
    nothing when there are none)."""
    import re

    names = list(names)
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"
