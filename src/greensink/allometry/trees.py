"""The tree inventory: its columns read and checked (every bad row named together), each tree's
biomass and carbon (:func:`tree_carbon`), the per-plot sums in t C/ha (:func:`plot_carbon`) and the
quartiles of per-tree carbon (:func:`summary_stats`).

The functions are pure: DataFrames and arrays in, DataFrames and arrays out; the CLI
(``greensink allometry``) reads and writes the files. Problems with the inventory are collected
and raised together as one :class:`~greensink.errors.InputDataError` naming file, row, value and fix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from greensink.allometry.density import assign_jenkins_group, assign_wood_density
from greensink.allometry.equations import (
    CHAVE2014_MIN_DBH_CM,
    EQUATIONS,
    JENKINS2003_MIN_DBH_CM,
    biomass_to_carbon,
    chave2014_agb_kg,
    jenkins2003_agb_kg,
)
from greensink.allometry.params import AllometryParams
from greensink.errors import InputDataError
from greensink.units import kg_to_t, m2_to_ha

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- tree_carbon options

MISSING_HEIGHT = ("error", "jenkins2003")

CM_PER = {"cm": 1.0, "mm": 0.1, "in": 2.54}  # DBH unit -> cm
M_PER = {"m": 1.0, "ft": 0.3048, "cm": 0.01}  # height / crown unit -> m

MAX_LISTED_PROBLEMS = 25


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
