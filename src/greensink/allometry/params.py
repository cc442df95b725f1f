"""The allometry parameter table (``config/allometry.yaml``): checked and converted to
:class:`AllometryParams` (carbon fraction, root:shoot ratio, urban factor, default equation, wood
densities per species, genus and group, the Jenkins et al. 2003 group of a genus or species)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from greensink.allometry.equations import EQUATIONS, JENKINS2003
from greensink.allometry.taxa import genus_key, group_key, taxon_key
from greensink.errors import ConfigError

# ---------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class AllometryParams:
    """The parameter table (``config/allometry.yaml``) in usable form; see :func:`params_from_mapping`."""

    carbon_fraction: float
    root_shoot: float
    urban_factor: float
    equation: str
    species_density: dict[str, float]  # "genus epithet" (lower case) -> g/cm³
    genus_density: dict[str, tuple[float, int]]  # genus -> (mean g/cm³, n species)
    group_density: dict[str, float]  # wood-density group name (lower case) -> g/cm³
    default_density: dict[str, float]  # "hardwood" / "softwood" -> g/cm³
    density_source: str
    softwood_genera: frozenset[str]
    palm_genera: frozenset[str]
    jenkins_genus: dict[str, str] = field(default_factory=dict)
    jenkins_species: dict[str, str] = field(default_factory=dict)
    jenkins_default: dict[str, str] = field(default_factory=dict)


def params_from_mapping(cfg: Mapping, where: str = "config/allometry.yaml") -> AllometryParams:
    """Check and convert the parsed YAML parameter table. Raises ConfigError listing every problem."""
    problems: list[str] = []

    def number(path: str, value, lo: float, hi: float, lo_open: bool = False) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if ok and (value > lo if lo_open else value >= lo) and value <= hi:
            return float(value)
        problems.append(f"{where}: {path} must be a number in {'(' if lo_open else '['}{lo}, {hi}]. Got {value!r}.")
        return float("nan")

    d = cfg.get("defaults", {}) or {}
    carbon_fraction = number("defaults.carbon_fraction", d.get("carbon_fraction"), 0, 1, lo_open=True)
    root_shoot = number("defaults.root_shoot", d.get("root_shoot"), 0, 5)
    urban_factor = number("defaults.urban_factor", d.get("urban_factor"), 0, 2, lo_open=True)
    equation = d.get("equation", "chave2014")
    if equation not in EQUATIONS:
        problems.append(f"{where}: defaults.equation must be one of {list(EQUATIONS)}. Got {equation!r}.")

    softwood = frozenset(genus_key(g) for g in cfg.get("softwood_genera", []) or [])
    palms = frozenset(genus_key(g) for g in cfg.get("palm_genera", []) or [])
    species_density: dict[str, float] = {}
    by_genus: dict[str, list[float]] = {}
    for name, value in (cfg.get("wood_density_g_cm3", {}) or {}).items():
        sp, genus = taxon_key(str(name))
        rho = number(f"wood_density_g_cm3[{name!r}]", value, 0.1, 1.5)
        if not sp:
            problems.append(f"{where}: wood_density_g_cm3 key {name!r} must be 'Genus epithet'.")
            continue
        species_density[sp] = rho
        by_genus.setdefault(genus, []).append(rho)
    genus_density = {g: (round(float(np.mean(v)), 4), len(v)) for g, v in by_genus.items()}
    defaults = cfg.get("default_wood_density", {}) or {}
    default_density = {k: number(f"default_wood_density.{k}", defaults.get(k), 0.1, 1.5) for k in ("hardwood", "softwood")}
    group_density = {
        group_key(k): number(f"group_wood_density.{k}", v, 0.1, 1.5)
        for k, v in (cfg.get("group_wood_density", {}) or {}).items()
    }

    jg = cfg.get("jenkins2003_groups", {}) or {}
    jenkins_genus = {genus_key(k): str(v) for k, v in (jg.get("genus", {}) or {}).items()}
    jenkins_species = {taxon_key(str(k))[0]: str(v) for k, v in (jg.get("species", {}) or {}).items()}
    jenkins_default = {str(k): str(v) for k, v in (jg.get("default", {}) or {"hardwood": "mixed_hardwood", "softwood": "pine"}).items()}
    for label, table in (("genus", jenkins_genus), ("species", jenkins_species), ("default", jenkins_default)):
        for k, v in table.items():
            if v not in JENKINS2003:
                problems.append(f"{where}: jenkins2003_groups.{label}.{k} must be one of {sorted(JENKINS2003)}. Got {v!r}.")
    if set(jenkins_default) != {"hardwood", "softwood"}:
        problems.append(f"{where}: jenkins2003_groups.default must name a group for both 'hardwood' and 'softwood'. Got {sorted(jenkins_default)}.")
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) with the allometry parameters:\n" + "\n".join(f"  - {p}" for p in problems))
    return AllometryParams(
        carbon_fraction=carbon_fraction, root_shoot=root_shoot, urban_factor=urban_factor, equation=equation,
        species_density=species_density, genus_density=genus_density, group_density=group_density,
        default_density=default_density, density_source=str(cfg.get("wood_density_source", "config table")),
        softwood_genera=softwood, palm_genera=palms,
        jenkins_genus=jenkins_genus, jenkins_species=jenkins_species, jenkins_default=jenkins_default,
    )
