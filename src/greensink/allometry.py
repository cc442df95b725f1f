"""Allometry: a tree inventory (species or wood-density group, DBH, height) → per-tree biomass and
carbon, and per-plot sums that can feed ``plots.carbon_t_ha``.

Per tree, with D the stem diameter at breast height (cm), H the total height (m) and ρ the basic
wood density (oven-dry mass / green volume, g/cm³):

1. Above-ground biomass from a published equation, oven-dry kg (``agb_equation_kg``):

   * ``chave2014`` (default), Chave et al. 2014, Global Change Biology 20:3177-3190, Eq. 4,
     fitted on 4,004 destructively harvested trees with D ≥ 5 cm::

         AGB = 0.0673 × (ρ D² H)^0.976

   * ``jenkins2003``, Jenkins, Chojnacky, Heath & Birdsey 2003, Forest Science 49(1):12-35,
     Table 4, national-scale equations for ten US species groups, trees with D ≥ 2.5 cm; DBH only::

         AGB = exp(β0 + β1 ln D)

2. Urban form: ``agb_kg = agb_equation_kg × urban_factor``. Open-grown urban trees carry less
   biomass than forest equations predict for the same DBH; Nowak (1994) multiplies by 0.8 (the
   practice of Nowak & Crane 2002 and i-Tree). 1.0 turns it off.
3. Roots: ``bgb_kg = agb_kg × root_shoot`` (default 0.26, the global mean of Cairns et al. 1997).
4. Carbon: ``carbon_kg = (agb_kg + bgb_kg) × carbon_fraction`` (default 0.47, IPCC 2006 Vol. 4
   Ch. 4 Table 4.3); ``co2e_kg = carbon_kg × 44/12``.

Both equations predict **dry** mass, and the carbon fraction applies to dry mass; no fresh
(green) weight enters anywhere. The densities of ``config/allometry.yaml`` are basic densities
(green volume), the quantity Chave's ρ is defined on; densities at 12 % moisture would overstate
biomass.

Wood density comes from, in order: an inventory column, the species, the genus (mean of its
species in the table), the inventory's wood-density group, and last a hardwood / softwood
fallback, which is flagged ``density_default``. Unknown species are not an error.

The functions here are pure: DataFrames and arrays in, DataFrames and arrays out; the CLI
(``greensink allometry``) reads and writes the files. Problems with the inventory are collected
and raised together as one :class:`~greensink.errors.InputDataError` naming file, row, value and fix.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from greensink.errors import ConfigError, InputDataError
from greensink.units import CO2_PER_C, kg_to_t, m2_to_ha

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- published constants

#: Chave et al. 2014, Eq. 4: AGB (kg) = A × (ρ [g/cm³] × D² [cm²] × H [m]) ** B.
CHAVE2014_A = 0.0673
CHAVE2014_B = 0.976
#: Chave et al. 2014 fitted trees with D ≥ 5 cm; smaller trees are computed and flagged.
CHAVE2014_MIN_DBH_CM = 5.0

#: Jenkins et al. 2003, Table 4: AGB (kg dry) = exp(β0 + β1 ln DBH [cm]), per species group.
JENKINS2003: dict[str, tuple[float, float]] = {
    # hardwood groups
    "aspen_alder_cottonwood_willow": (-2.2094, 2.3867),
    "soft_maple_birch": (-1.9123, 2.3651),
    "mixed_hardwood": (-2.4800, 2.4835),
    "hard_maple_oak_hickory_beech": (-2.0127, 2.4342),
    # softwood groups
    "cedar_larch": (-2.0336, 2.2592),
    "douglas_fir": (-2.2304, 2.4435),
    "true_fir_hemlock": (-2.5384, 2.4814),
    "pine": (-2.5356, 2.4349),
    "spruce": (-2.0773, 2.3323),
    # woodland group
    "woodland": (-0.7152, 1.7029),  # juniper / oak / mesquite
}
#: Jenkins et al. 2003 equations are for trees with DBH ≥ 2.5 cm.
JENKINS2003_MIN_DBH_CM = 2.5

EQUATIONS = ("chave2014", "jenkins2003")
MISSING_HEIGHT = ("error", "jenkins2003")

CM_PER = {"cm": 1.0, "mm": 0.1, "in": 2.54}  # DBH unit -> cm
M_PER = {"m": 1.0, "ft": 0.3048, "cm": 0.01}  # height / crown unit -> m

MAX_LISTED_PROBLEMS = 25


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

    softwood = frozenset(_genus(g) for g in cfg.get("softwood_genera", []) or [])
    palms = frozenset(_genus(g) for g in cfg.get("palm_genera", []) or [])
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
        _norm_group(k): number(f"group_wood_density.{k}", v, 0.1, 1.5)
        for k, v in (cfg.get("group_wood_density", {}) or {}).items()
    }

    jg = cfg.get("jenkins2003_groups", {}) or {}
    jenkins_genus = {_genus(k): str(v) for k, v in (jg.get("genus", {}) or {}).items()}
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


# ---------------------------------------------------------------------------- equations


def chave2014_agb_kg(wood_density_g_cm3, dbh_cm, height_m) -> np.ndarray:
    """Above-ground oven-dry biomass, kg: Chave et al. 2014 Eq. 4, ``0.0673 × (ρ D² H)^0.976``.

    ρ basic wood density (g/cm³), D diameter at 1.3 m (cm), H total height (m). NaN in, NaN out.
    """
    rho = np.asarray(wood_density_g_cm3, dtype=float)
    d = np.asarray(dbh_cm, dtype=float)
    h = np.asarray(height_m, dtype=float)
    return CHAVE2014_A * (rho * d**2 * h) ** CHAVE2014_B


def jenkins2003_agb_kg(dbh_cm, groups) -> np.ndarray:
    """Above-ground oven-dry biomass, kg: Jenkins et al. 2003 Table 4, ``exp(β0 + β1 ln D)``, D in cm.

    ``groups`` holds one species-group name of :data:`JENKINS2003` per tree (or one for all).
    """
    d = np.asarray(dbh_cm, dtype=float)
    g = np.broadcast_to(np.asarray(groups, dtype=object), d.shape)
    unknown = sorted({str(x) for x in np.unique(g.astype(str))} - set(JENKINS2003))
    if unknown:
        raise ValueError(f"Jenkins group(s) {unknown} unknown. Use one of {sorted(JENKINS2003)}.")
    b0 = np.array([JENKINS2003[x][0] for x in g.ravel()]).reshape(d.shape)
    b1 = np.array([JENKINS2003[x][1] for x in g.ravel()]).reshape(d.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(b0 + b1 * np.log(d))


def biomass_to_carbon(agb_equation_kg, *, urban_factor: float, root_shoot: float, carbon_fraction: float) -> dict[str, np.ndarray]:
    """Steps 2-4 of the module docstring: ``agb_kg``, ``bgb_kg``, ``carbon_kg``, ``co2e_kg`` (all dry-mass based)."""
    agb = np.asarray(agb_equation_kg, dtype=float) * urban_factor
    bgb = agb * root_shoot
    carbon = (agb + bgb) * carbon_fraction
    return {"agb_kg": agb, "bgb_kg": bgb, "carbon_kg": carbon, "co2e_kg": carbon * CO2_PER_C}


# ---------------------------------------------------------------------------- taxa and wood density


_CULTIVAR = re.compile(r"'[^']*'|\"[^\"]*\"")
_RANK = {"var.", "subsp.", "ssp.", "f.", "cv.", "cvs.", "cv", "var", "subsp"}
_HYBRID = {"x", "×"}


def _genus(name: str) -> str:
    return str(name).strip().lower()


def _norm_group(name: str) -> str:
    return re.sub(r"[\s/\-]+", "_", str(name).strip().lower())


def taxon_key(name: object) -> tuple[str, str]:
    """``(species key, genus key)`` in lower case from a scientific name, for table look-ups.

    Cultivars in quotes, ranks below species (``var.``, ``subsp.``) and ``sp.`` / ``spp.`` are
    dropped; a hybrid sign is kept (``Platanus x acerifolia`` → ``platanus x acerifolia``).
    ``Malus sp.`` → ``("", "malus")``; a missing name → ``("", "")``.
    """
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return "", ""
    tokens = _CULTIVAR.sub(" ", str(name)).lower().replace("×", " x ").split()
    if not tokens:
        return "", ""
    genus, rest = tokens[0], tokens[1:]
    epithet = ""
    if rest and rest[0] in _HYBRID and len(rest) > 1:
        epithet = f"x {rest[1]}"
    elif rest and rest[0] not in _RANK and rest[0] not in {"sp.", "spp.", "sp", "spp"}:
        epithet = rest[0]
    return (f"{genus} {epithet}" if epithet else ""), genus


def wood_class(genus: str, params: AllometryParams, group: str = "") -> str:
    """``palm``, ``softwood`` or ``hardwood`` for a genus key (or, without one, a group name)."""
    if genus in params.palm_genera:
        return "palm"
    if genus in params.softwood_genera:
        return "softwood"
    if not genus and _norm_group(group) in ("softwood", "conifer"):
        return "softwood"
    return "hardwood"


def assign_wood_density(species: pd.Series, groups: pd.Series | None, params: AllometryParams,
                        given: pd.Series | None = None) -> pd.DataFrame:
    """Columns ``wood_density_g_cm3``, ``wood_density_source`` (input, species, genus, group,
    default), ``wood_class`` (hardwood, softwood, palm) and ``flags`` for each tree.

    ``given`` holds densities measured for the tree (NaN where none); they win over the table.
    """
    n = len(species)
    keys = [taxon_key(s) for s in species] if n else []
    grp = [(_norm_group(g) if isinstance(g, str) and g.strip() else "") for g in (groups if groups is not None else [""] * n)]
    given_arr = np.full(n, np.nan) if given is None else np.asarray(given, dtype=float)
    rho = np.full(n, np.nan)
    source = np.empty(n, dtype=object)
    klass = np.empty(n, dtype=object)
    flags: list[list[str]] = [[] for _ in range(n)]
    for i, ((sp, genus), g) in enumerate(zip(keys, grp, strict=True)):
        klass[i] = wood_class(genus, params, g)
        if klass[i] == "palm":
            flags[i].append("palm")
        if np.isfinite(given_arr[i]):
            rho[i], source[i] = given_arr[i], "input"
        elif sp in params.species_density:
            rho[i], source[i] = params.species_density[sp], "species"
        elif genus in params.genus_density:
            rho[i] = params.genus_density[genus][0]
            source[i] = f"genus mean (n={params.genus_density[genus][1]})"
        elif g in params.group_density:
            rho[i], source[i] = params.group_density[g], "group"
        else:
            fallback = "softwood" if klass[i] == "softwood" else "hardwood"
            rho[i], source[i] = params.default_density[fallback], f"default {fallback}"
            flags[i].append("density_default")
    return pd.DataFrame({"wood_density_g_cm3": rho, "wood_density_source": source, "wood_class": klass,
                         "flags": [";".join(f) for f in flags]}, index=species.index)


def assign_jenkins_group(species: pd.Series, groups: pd.Series | None, wood_classes: Sequence[str],
                         params: AllometryParams) -> tuple[np.ndarray, list[str]]:
    """Jenkins et al. 2003 group per tree and a flag (``jenkins_group_default`` or ``""``).

    Order: species override, genus table, the inventory's group column when it names a Jenkins
    group, then the default of the parameter table: ``mixed_hardwood`` for hardwoods (Jenkins'
    catch-all hardwood group, not flagged) and ``pine`` for softwoods outside Jenkins' groups
    (e.g. *Cedrus*, *Podocarpus*; flagged ``jenkins_group_default``).
    """
    n = len(species)
    out = np.empty(n, dtype=object)
    flag = [""] * n
    grp = list(groups) if groups is not None else [""] * n
    for i, (name, g, k) in enumerate(zip(species, grp, wood_classes, strict=True)):
        sp, genus = taxon_key(name)
        gn = _norm_group(g) if isinstance(g, str) else ""
        if sp in params.jenkins_species:
            out[i] = params.jenkins_species[sp]
        elif genus in params.jenkins_genus:
            out[i] = params.jenkins_genus[genus]
        elif gn in JENKINS2003:
            out[i] = gn
        elif k == "softwood":
            out[i] = params.jenkins_default["softwood"]
            flag[i] = "jenkins_group_default"
        else:
            # Jenkins' mixed-hardwood group is by definition the hardwoods outside the other three
            # hardwood groups, so an unlisted hardwood genus belongs there: no flag.
            out[i] = params.jenkins_default["hardwood"]
    return out, flag


# ---------------------------------------------------------------------------- inventory


@dataclass(frozen=True)
class Columns:
    """Names of the inventory's columns; ``None`` where the inventory has no such column."""

    dbh: str = "dbh_cm"
    height: str | None = "height_m"
    species: str | None = "species"
    group: str | None = None
    wood_density: str | None = None
    crown_diameter: str | None = None
    tree_id: str | None = None
    plot: str | None = None
    plot_area: str | None = None


def _parse_numbers(raw: pd.Series, na_values: set[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, missing, not_a_number) from a column read as text."""
    text = raw.astype("string").str.strip()
    missing = (text.isna() | text.isin(na_values) | (text == "")).to_numpy()
    values = pd.to_numeric(text.where(~pd.Series(missing, index=raw.index)), errors="coerce").to_numpy(dtype=float)
    bad = ~missing & ~np.isfinite(values)
    values[missing] = np.nan
    return values, missing, bad


def tree_carbon(
    inventory: pd.DataFrame,
    params: AllometryParams,
    *,
    columns: Columns = Columns(),
    where: str = "inventory",
    equation: str | None = None,
    carbon_fraction: float | None = None,
    root_shoot: float | None = None,
    urban_factor: float | None = None,
    dbh_unit: str = "cm",
    height_unit: str = "m",
    crown_unit: str = "m",
    na_values: Sequence[str] = ("", "NA", "NaN", "nan"),
    missing_height: str = "error",
    row_numbers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Per-tree biomass and carbon of an inventory (one row per tree, values as text or numbers).

    ``row_numbers`` are the rows' 1-based numbers in the file, for messages (default 1 .. n), when
    ``inventory`` is a subset of the file's rows.

    Returns, in inventory order: the id / plot / species / group columns asked for (renamed
    ``tree_id``, ``plot_id``, ``species``, ``group``), then ``dbh_cm``, ``height_m``,
    ``wood_density_g_cm3``, ``wood_density_source``, ``wood_class``, ``equation``,
    ``agb_equation_kg`` (equation output), ``agb_kg`` (× urban factor), ``bgb_kg``,
    ``carbon_kg``, ``co2e_kg``, crown columns if a crown diameter is given, and ``flags``
    (``;``-separated, empty when none). Raises InputDataError listing every problem found.
    """
    equation = equation or params.equation
    cf = params.carbon_fraction if carbon_fraction is None else carbon_fraction
    rs = params.root_shoot if root_shoot is None else root_shoot
    uf = params.urban_factor if urban_factor is None else urban_factor
    problems: list[str] = []
    _check_options(equation, cf, rs, uf, dbh_unit, height_unit, crown_unit, missing_height, problems)
    wanted = {k: v for k, v in vars(columns).items() if v is not None}
    absent = [f"{k}={v!r}" for k, v in wanted.items() if v not in inventory.columns]
    if absent:
        problems.append(f"{where}: column(s) not found: {', '.join(absent)}. Columns in the file: {list(inventory.columns)}. "
                        "Name the right ones with --dbh-column, --height-column, --species-column etc.")
    if columns.species is None and columns.group is None and columns.wood_density is None and equation == "chave2014":
        problems.append(f"{where}: chave2014 needs a wood density: give --species-column, --group-column or --wood-density-column.")
    if len(inventory) == 0:
        problems.append(f"{where}: the inventory has no trees (a header but no rows).")
    if problems:
        raise InputDataError(_summary(problems, where))

    parsed = _parse_inventory(inventory, columns, where=where, equation=equation, dbh_unit=dbh_unit,
                              height_unit=height_unit, crown_unit=crown_unit, na_values=na_values,
                              missing_height=missing_height, row_numbers=row_numbers)
    n = len(inventory)
    dbh_cm, height_m, given = parsed["dbh_cm"], parsed["height_m"], parsed["given_density"]
    crown_m, plot_area = parsed["crown_m"], parsed["plot_area_m2"]
    no_height = ~np.isfinite(height_m)

    species = inventory[columns.species].astype("string").fillna("") if columns.species else pd.Series([""] * n, index=inventory.index)
    groups = inventory[columns.group].astype("string").fillna("").astype(object) if columns.group else None
    dens = assign_wood_density(species.astype(object), groups, params, given)
    flags = [[x for x in f.split(";") if x] for f in dens["flags"]]

    agb = np.full(n, np.nan)
    eq = np.empty(n, dtype=object)
    use_chave = np.zeros(n, bool)
    if equation == "chave2014":
        use_chave = ~no_height
        agb[use_chave] = chave2014_agb_kg(dens["wood_density_g_cm3"].to_numpy()[use_chave], dbh_cm[use_chave], height_m[use_chave])
        eq[use_chave] = "chave2014"
        for i in np.flatnonzero(use_chave & (dbh_cm < CHAVE2014_MIN_DBH_CM)):
            flags[i].append("dbh_below_equation_range")
    use_jenkins = ~use_chave
    if use_jenkins.any():
        groups_j, jflag = assign_jenkins_group(species.astype(object)[use_jenkins],
                                               None if groups is None else groups[use_jenkins],
                                               dens["wood_class"].to_numpy()[use_jenkins], params)
        agb[use_jenkins] = jenkins2003_agb_kg(dbh_cm[use_jenkins], groups_j)
        for j, i in enumerate(np.flatnonzero(use_jenkins)):
            eq[i] = f"jenkins2003:{groups_j[j]}"
            if jflag[j]:
                flags[i].append(jflag[j])
            if equation == "chave2014":
                flags[i].append("height_missing_jenkins2003")
            if dbh_cm[i] < JENKINS2003_MIN_DBH_CM:
                flags[i].append("dbh_below_equation_range")

    pools = biomass_to_carbon(agb, urban_factor=uf, root_shoot=rs, carbon_fraction=cf)
    out = pd.DataFrame(index=inventory.index)
    for key, name in (("tree_id", columns.tree_id), ("plot_id", columns.plot), ("species", columns.species), ("group", columns.group)):
        if name is not None:
            out[key] = inventory[name].to_numpy()
    if plot_area is not None:
        out["plot_area_m2"] = plot_area
    out["dbh_cm"] = dbh_cm
    out["height_m"] = height_m
    out["wood_density_g_cm3"] = dens["wood_density_g_cm3"].to_numpy()
    out["wood_density_source"] = dens["wood_density_source"].to_numpy()
    out["wood_class"] = dens["wood_class"].to_numpy()
    out["equation"] = eq
    out["agb_equation_kg"] = agb
    for k, v in pools.items():
        out[k] = v
    if crown_m is not None:
        out["crown_diameter_m"] = crown_m
        out["crown_area_m2"] = math.pi * (crown_m / 2.0) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            out["carbon_kg_per_crown_m2"] = pools["carbon_kg"] / out["crown_area_m2"].to_numpy()
    out["flags"] = [";".join(f) for f in flags]
    out = out.reset_index(drop=True)
    log.info("allometry: %d trees, %s, %.1f t C in total (median %.1f kg C per tree), %d flagged",
             n, equation, kg_to_t(np.nansum(pools["carbon_kg"])), float(np.nanmedian(pools["carbon_kg"])),
             int((out["flags"] != "").sum()))
    return out


def _parse_inventory(inventory: pd.DataFrame, columns: Columns, *, where: str, equation: str, dbh_unit: str,
                     height_unit: str, crown_unit: str, na_values: Sequence[str], missing_height: str,
                     row_numbers: Sequence[int] | None = None) -> dict:
    """Numbers of the inventory in cm / m, NaN where missing; raises InputDataError listing every bad row."""
    nav = {str(v).strip() for v in na_values}
    n = len(inventory)
    rows = np.arange(1, n + 1) if row_numbers is None else np.asarray(row_numbers, dtype=int)
    bad_rows: dict[int, list[str]] = {}

    def report(mask: np.ndarray, column: str, message: str, raw: pd.Series) -> None:
        for i in np.flatnonzero(mask):
            bad_rows.setdefault(int(i), []).append(
                f"{where} row {rows[i]} (line {rows[i] + 1}): {column!r} {message} Got {raw.iloc[i]!r}.")

    raw = inventory[columns.dbh]
    dbh, miss, nan_ = _parse_numbers(raw, nav)
    report(miss | nan_, columns.dbh, f"must be a number > 0 (DBH in {dbh_unit}).", raw)
    report(~miss & ~nan_ & (dbh <= 0), columns.dbh, f"must be > 0 (DBH in {dbh_unit}). Fix the value or remove the row.", raw)
    dbh_cm = dbh * CM_PER.get(dbh_unit, np.nan)

    def optional_length_m(column: str, what: str, unit: str) -> np.ndarray:
        """An optional positive length column in metres, NaN where empty; bad values reported."""
        raw = inventory[column]
        v, miss, nan_v = _parse_numbers(raw, nav)
        report(nan_v, column, f"must be a number > 0 ({what} in {unit}) or empty.", raw)
        report(~miss & ~nan_v & (v <= 0), column,
               f"must be > 0 ({what} in {unit}). If it marks a missing value, pass it with --na-values.", raw)
        return np.where(v > 0, v * M_PER.get(unit, np.nan), np.nan)

    height_m = np.full(n, np.nan)
    if columns.height is not None:
        height_m = optional_length_m(columns.height, "height", height_unit)

    given = None
    if columns.wood_density is not None:
        raw = inventory[columns.wood_density]
        wd, _miss_wd, nan_wd = _parse_numbers(raw, nav)
        report(nan_wd, columns.wood_density, "must be a basic wood density in g/cm³ or empty.", raw)
        out_of_range = np.isfinite(wd) & ((wd < 0.1) | (wd > 1.5))
        hint = np.where(wd > 100, " It looks like kg/m³: divide by 1000.", " Basic density (oven-dry mass / green volume) lies in 0.1-1.5 g/cm³.")
        for i in np.flatnonzero(out_of_range):
            bad_rows.setdefault(int(i), []).append(
                f"{where} row {rows[i]} (line {rows[i] + 1}): {columns.wood_density!r} must lie in 0.1-1.5 g/cm³.{hint[i]} Got {raw.iloc[i]!r}.")
        given = pd.Series(np.where(out_of_range, np.nan, wd), index=inventory.index)

    crown_m = None
    if columns.crown_diameter is not None:
        crown_m = optional_length_m(columns.crown_diameter, "crown diameter", crown_unit)

    no_height = ~np.isfinite(height_m)
    hints: list[str] = []
    if equation == "chave2014" and missing_height == "error" and no_height.any():
        if columns.height is None:
            raise InputDataError(f"{where}: chave2014 needs tree heights and no height column was given. Name it with "
                                 "--height-column, or use --equation jenkins2003 (DBH only).")
        raw = inventory[columns.height]
        for i in np.flatnonzero(no_height):
            if int(i) not in bad_rows:
                bad_rows[int(i)] = [f"{where} row {rows[i]} (line {rows[i] + 1}): {columns.height!r} is missing "
                                    f"(got {raw.iloc[i]!r}) and chave2014 needs the tree height."]
        hints.append("Fix: fill the missing heights or remove those rows; or pass --missing-height jenkins2003 "
                     "(DBH-only Jenkins et al. 2003 for those trees, flagged) or --equation jenkins2003.")
    plot_area = None
    if columns.plot_area is not None:
        raw = inventory[columns.plot_area]
        a, miss_a, nan_a = _parse_numbers(raw, nav)
        report(miss_a | nan_a | (~miss_a & ~nan_a & (a <= 0)), columns.plot_area, "must be the plot area in m², a number > 0.", raw)
        plot_area = a
    if bad_rows:
        listed = [m for i in sorted(bad_rows) for m in bad_rows[i]]
        raise InputDataError(_summary(listed, where, n_rows=len(bad_rows), hints=hints))
    return {"dbh_cm": dbh_cm, "height_m": height_m, "given_density": given, "crown_m": crown_m, "plot_area_m2": plot_area}


def _check_options(equation, cf, rs, uf, dbh_unit, height_unit, crown_unit, missing_height, problems: list[str]) -> None:
    if equation not in EQUATIONS:
        problems.append(f"equation must be one of {list(EQUATIONS)}. Got {equation!r}.")
    for name, value, lo, hi, lo_open in (("carbon fraction", cf, 0.0, 1.0, True), ("root:shoot ratio", rs, 0.0, 5.0, False),
                                         ("urban factor", uf, 0.0, 2.0, True)):
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not (number and (value > lo if lo_open else value >= lo) and value <= hi):
            problems.append(f"{name} must be a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]. Got {value!r}.")
    for name, unit, allowed in (("DBH unit", dbh_unit, CM_PER), ("height unit", height_unit, M_PER), ("crown unit", crown_unit, M_PER)):
        if unit not in allowed:
            problems.append(f"{name} must be one of {list(allowed)}. Got {unit!r}.")
    if missing_height not in MISSING_HEIGHT:
        problems.append(f"missing-height must be one of {list(MISSING_HEIGHT)}. Got {missing_height!r}.")


def _summary(problems: list[str], where: str, n_rows: int | None = None, hints: Sequence[str] = ()) -> str:
    head = f"{where}: {n_rows} row(s) cannot be used" if n_rows is not None else f"{where}: {len(problems)} problem(s)"
    shown = problems[:MAX_LISTED_PROBLEMS]
    lines = [f"  - {p}" for p in shown]
    if len(problems) > len(shown):
        lines.append(f"  ... and {len(problems) - len(shown)} more")
    return head + ":\n" + "\n".join([*lines, *hints])


# ---------------------------------------------------------------------------- plots


def plot_carbon(trees: pd.DataFrame, *, plot_area_m2: float | None = None) -> pd.DataFrame:
    """Per-plot (or per-group) sums of a :func:`tree_carbon` table with a ``plot_id`` column.

    Columns: ``plot_id``, ``n_trees``, ``n_flagged``, ``agb_kg``, ``bgb_kg``, ``carbon_kg``,
    ``co2e_kg``, and, when the plot area is known (``plot_area_m2`` argument, or a
    ``plot_area_m2`` column constant within each plot), ``plot_area_m2``, ``carbon_t_ha`` and
    ``co2e_t_ha`` (t per ha of plot area) — the value ``plots.carbon_t_ha`` expects. Sorted by
    ``plot_id``.
    """
    if "plot_id" not in trees.columns:
        raise InputDataError("per-plot sums need a plot column: pass --plot-column.")
    grouped = trees.groupby("plot_id", sort=True, dropna=False)
    out = grouped[["agb_kg", "bgb_kg", "carbon_kg", "co2e_kg"]].sum(min_count=1)
    out.insert(0, "n_flagged", grouped["flags"].apply(lambda f: int((f != "").sum())))
    out.insert(0, "n_trees", grouped.size())
    area = None
    if plot_area_m2 is not None:
        if not (math.isfinite(plot_area_m2) and plot_area_m2 > 0):
            raise InputDataError(f"plot area must be a number of m² > 0. Got {plot_area_m2!r}.")
        area = pd.Series(float(plot_area_m2), index=out.index)
    elif "plot_area_m2" in trees.columns:
        spread = grouped["plot_area_m2"].agg(["min", "max"])
        uneven = spread.index[spread["min"] != spread["max"]]
        if len(uneven):
            raise InputDataError(f"plot area differs between the trees of plot(s) {list(uneven[:10])}. "
                                 "Give each plot one area, or use --plot-area-m2.")
        area = spread["min"]
    if area is not None:
        out["plot_area_m2"] = area
        ha = m2_to_ha(area)
        out["carbon_t_ha"] = kg_to_t(out["carbon_kg"]) / ha
        out["co2e_t_ha"] = kg_to_t(out["co2e_kg"]) / ha
    return out.reset_index()


def summary_stats(trees: pd.DataFrame) -> dict[str, float]:
    """Median and quartiles of per-tree carbon (kg C) and, with crowns, of carbon per crown m²."""
    out: dict[str, float] = {"n_trees": float(len(trees))}
    c = trees["carbon_kg"].to_numpy(dtype=float)
    for q, name in ((0.25, "carbon_kg_q25"), (0.5, "carbon_kg_median"), (0.75, "carbon_kg_q75")):
        out[name] = float(np.nanquantile(c, q)) if np.isfinite(c).any() else float("nan")
    if "carbon_kg_per_crown_m2" in trees.columns:
        d = trees["carbon_kg_per_crown_m2"].to_numpy(dtype=float)
        for q, name in ((0.25, "carbon_kg_per_crown_m2_q25"), (0.5, "carbon_kg_per_crown_m2_median"), (0.75, "carbon_kg_per_crown_m2_q75")):
            out[name] = float(np.nanquantile(d, q)) if np.isfinite(d).any() else float("nan")
    return out
