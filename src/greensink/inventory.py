"""Tree inventory → plot carbon density (t C/ha) per plot and year, with Monte Carlo draws of its error.

A tree inventory lists, per measurement year, the trees of field plots (plot id, year, DBH, usually
height and species); the plots file gives each plot's type, year, location and area. Per tree the
point estimate is :func:`greensink.allometry.tree_carbon` (Chave et al. 2014 or Jenkins et al.
2003, urban factor, roots, carbon fraction). Per plot and year the trees' carbon is summed and
divided by the plot's ground area: ``carbon_t_ha = Σ carbon_kg / 1000 / (area_m2 / 10 000)``.

Draws (:func:`tree_carbon_draws`): draw ``b`` of a tree's carbon is its point value times

* the **allometric error** ``exp(σ ε − σ²/2)``, ε ~ N(0, 1): σ = 0.357 on ln(AGB) for
  ``chave2014`` (the residual standard error of Chave et al. 2014, Eq. 4), and the RMSE in
  log units of Jenkins et al. 2003 Table 4 for each ``jenkins2003`` group
  (:data:`JENKINS2003_RMSE_LN`). The ``− σ²/2`` makes the draws' mean the point value, which is
  how :mod:`greensink.allometry` computes the mean: the published equation, used as the mean
  biomass (Chave's 0.0673 read as including the log-normal correction exp(0.357²/2); see
  docs/allometry.md for what was and was not verified). The sd of ``ln(draw / point)`` is σ.
* the **measurement error** of DBH and height, propagated through the equation's powers: the
  biomass of a tree scales as D^(2b) H^b (Chave, b = 0.976) or D^β1 (Jenkins), so a draw
  multiplies the point value by ``(D'/D)^pD (H'/H)^pH`` with D' = D + s_D z, s_D = ``dbh_sd_cm`` +
  ``dbh_sd_pct``/100 × D (default 0.0904 cm + 0.62 % of D, the small-error model of Chave et al.
  2004), and H' = H (1 + ``height_sd_pct``/100 × z) (default 10 %, an assumption: see
  docs/allometry.md). Both are floored at 5 % of the measured value.

Wood density, urban factor, root:shoot and carbon fraction are constants here (no error).

Pairing (the same tree in two years): every random number of a tree comes from generators seeded
by ``(seed, tree key)`` (common to all years) and ``(seed, tree key, year)`` (that year's own); a
tree's normal deviate in a year is ``√ρ z_common + √(1 − ρ) z_year`` with ρ the year-to-year
correlation of that error (``allometric_year_correlation``, default 1: a tree's departure from the
equation is its own form and persists; ``measurement_year_correlation``, default 0: each
measurement is a new one). Within a year the trees' errors are independent, also within a plot.
Draw ``b`` of a plot is the sum of its trees' draws ``b``, so the draws of two years are paired by
draw index. Pure functions; :mod:`greensink.io` and the rule script read and write.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from greensink import io as gio
from greensink.allometry import CHAVE2014_B, JENKINS2003, AllometryParams, Columns, params_from_mapping, tree_carbon
from greensink.config import read_yaml
from greensink.errors import ConfigError, InputDataError
from greensink.units import kg_to_t, m2_to_ha

log = logging.getLogger(__name__)

#: Chave et al. 2014, Eq. 4: residual standard error of ln(AGB), 4,004 harvested trees.
CHAVE2014_RSE_LN = 0.357
#: Jenkins et al. 2003, Table 4, column "RMSE, log units" per species group: the spread of the
#: published equations' predictions (pseudo-data) about the group equation, in ln(biomass).
JENKINS2003_RMSE_LN: dict[str, float] = {
    "aspen_alder_cottonwood_willow": 0.507441,
    "soft_maple_birch": 0.491685,
    "mixed_hardwood": 0.360458,
    "hard_maple_oak_hickory_beech": 0.236483,
    "cedar_larch": 0.294574,
    "douglas_fir": 0.218712,
    "true_fir_hemlock": 0.182329,
    "pine": 0.253781,
    "spruce": 0.250424,
    "woodland": 0.384331,
}
#: Chave et al. 2004 (Phil. Trans. R. Soc. B 359: 409-420), DBH remeasurement error of 95 % of trees:
#: sd = 0.0062 × D + 0.0904 cm.
CHAVE2004_DBH_SD_PCT = 0.62
CHAVE2004_DBH_SD_CM = 0.0904
MEASURE_FLOOR = 0.05  # a drawn DBH or height is at least 5 % of the measured value
_COMMON = 0x7EE  # stream word of a tree's generator shared by all years


@dataclass(frozen=True)
class TreeErrors:
    """Error settings of the plot carbon draws (config ``plots.trees.errors``)."""

    allometric: bool = True
    dbh_sd_pct: float = CHAVE2004_DBH_SD_PCT
    dbh_sd_cm: float = CHAVE2004_DBH_SD_CM
    height_sd_pct: float = 10.0
    allometric_year_correlation: float = 1.0
    measurement_year_correlation: float = 0.0

    @classmethod
    def from_mapping(cls, cfg: Mapping | None) -> TreeErrors:
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"plots.trees.errors: unknown key(s) {unknown}. Use {sorted(cls.__dataclass_fields__)}.")
        out = cls(**cfg)
        problems = [f"plots.trees.errors.{k} must be a number >= 0. Got {getattr(out, k)!r}."
                    for k in ("dbh_sd_pct", "dbh_sd_cm", "height_sd_pct") if not _number(getattr(out, k), 0, math.inf)]
        problems += [f"plots.trees.errors.{k} must be a number in [0, 1]. Got {getattr(out, k)!r}."
                     for k in ("allometric_year_correlation", "measurement_year_correlation") if not _number(getattr(out, k), 0, 1)]
        if problems:
            raise ConfigError("\n".join(problems))
        return out

    def to_json(self) -> dict:
        return asdict(self)


def _number(v: object, lo: float, hi: float) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi


def equation_powers(equation: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tree (σ of ln AGB, power of D, power of H) from the ``equation`` column of
    :func:`~greensink.allometry.tree_carbon` (``chave2014`` or ``jenkins2003:<group>``)."""
    eq = [str(e) for e in equation]
    sd = np.empty(len(eq))
    pd_, ph = np.empty(len(eq)), np.empty(len(eq))
    for i, e in enumerate(eq):
        if e == "chave2014":
            sd[i], pd_[i], ph[i] = CHAVE2014_RSE_LN, 2.0 * CHAVE2014_B, CHAVE2014_B
        elif e.startswith("jenkins2003:") and e.split(":", 1)[1] in JENKINS2003:
            group = e.split(":", 1)[1]
            sd[i], pd_[i], ph[i] = JENKINS2003_RMSE_LN[group], JENKINS2003[group][1], 0.0
        else:
            raise ValueError(f"equation must be 'chave2014' or 'jenkins2003:<group>'. Got {e!r}.")
    return sd, pd_, ph


def _entropy(seed: int, key: str) -> list[int]:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return [int(seed), int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")]


def tree_normals(keys: Sequence[str], years: Sequence[int], n_draws: int, seed: int,
                 correlations: Sequence[float]) -> np.ndarray:
    """(k, n_trees, n_draws) standard normal deviates, one set per correlation in ``correlations``.

    Deviate j of a tree in a year is ``√ρ_j z_common + √(1 − ρ_j) z_year``: z_common from
    ``default_rng([seed, h(key), _COMMON])`` (the same in every year), z_year from
    ``default_rng([seed, h(key), year])``, h a 64-bit hash of the tree key split into two words.
    So the same key and draw index give the same z_common in every year and any other run."""
    k = len(correlations)
    out = np.empty((k, len(keys), n_draws))
    rho = np.asarray(correlations, dtype=float)[:, None]
    for i, (key, year) in enumerate(zip(keys, years, strict=True)):
        ent = _entropy(seed, str(key))
        common = np.random.default_rng([*ent, _COMMON]).standard_normal((k, n_draws))
        own = np.random.default_rng([*ent, int(year)]).standard_normal((k, n_draws))
        out[:, i, :] = np.sqrt(rho) * common + np.sqrt(1.0 - rho) * own
    return out


def tree_carbon_draws(trees: pd.DataFrame, *, n_draws: int, seed: int, errors: TreeErrors) -> np.ndarray:
    """(n_trees, n_draws) carbon draws, kg C, of a :func:`tree_carbon` table with ``tree_key`` and ``year``.

    See the module docstring. A tree with NaN carbon gives NaN draws."""
    n = len(trees)
    if n == 0:
        return np.zeros((0, n_draws))
    sd_ln, p_d, p_h = equation_powers(trees["equation"])
    z = tree_normals(trees["tree_key"].astype(str).tolist(), trees["year"].astype(int).tolist(), n_draws, seed,
                     [errors.allometric_year_correlation, errors.measurement_year_correlation,
                      errors.measurement_year_correlation])
    za, zd, zh = z  # independent of each other: different rows of the same generators
    d = trees["dbh_cm"].to_numpy(float)[:, None]
    s_d = errors.dbh_sd_cm + errors.dbh_sd_pct / 100.0 * d
    ratio_d = np.maximum(d + s_d * zd, MEASURE_FLOOR * d) / d
    ratio_h = np.maximum(1.0 + errors.height_sd_pct / 100.0 * zh, MEASURE_FLOOR)
    factor = ratio_d ** p_d[:, None] * ratio_h ** p_h[:, None]
    if errors.allometric:
        s = sd_ln[:, None]
        factor = factor * np.exp(s * za - s**2 / 2.0)
    return trees["carbon_kg"].to_numpy(float)[:, None] * factor


# ---------------------------------------------------------------------------- inventory and plots


@dataclass(frozen=True)
class InventoryColumns:
    """Columns of the tree inventory (config ``plots.trees``); None where absent."""

    plot: str = "plot_id"
    year: str = "year"
    tree_id: str | None = None
    dbh: str = "dbh_cm"
    height: str | None = "height_m"
    species: str | None = "species"
    group: str | None = None
    wood_density: str | None = None


def empty_plot_rows(inventory: pd.DataFrame, dbh_column: str, na_values: Sequence[str]) -> np.ndarray:
    """True for rows whose DBH is exactly 0: "this plot was measured and holds no tree"."""
    text = inventory[dbh_column].astype("string").str.strip()
    text = text.where(~text.isin(list(na_values)))
    return (pd.to_numeric(text, errors="coerce") == 0).fillna(False).to_numpy(bool)


def plot_trees(
    inventory: pd.DataFrame,
    plots: pd.DataFrame,
    params: AllometryParams,
    *,
    columns: InventoryColumns,
    where: str,
    plots_where: str,
    equation: str | None = None,
    carbon_fraction: float | None = None,
    root_shoot: float | None = None,
    urban_factor: float | None = None,
    dbh_unit: str = "cm",
    height_unit: str = "m",
    na_values: Sequence[str] = ("", "NA", "NaN", "nan"),
    missing_height: str = "error",
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Join a tree inventory (every cell as text) to the plots; per-tree carbon; plot-years measured.

    ``plots`` has plot_id (text), year (int), type, area_m2 (one row per plot and year). Returns
    (trees, measured, warnings): ``trees`` the :func:`tree_carbon` table plus ``row`` (the file's
    row number), ``year`` and ``tree_key`` (the tree id, or ``<plot>#<k>`` the k-th tree of the
    plot in that year without an id column); ``measured`` the (plot_id, year, n_trees) pairs the
    inventory holds, including plots recorded as empty (a row with DBH 0 and nothing else).

    Raises InputDataError listing every tree row whose plot and year are not in the plots file,
    with a year that is not a whole number, or a tree id repeated within a year."""
    needed = {"plot_column": columns.plot, "year_column": columns.year}
    if columns.tree_id:
        needed["id_column"] = columns.tree_id
    absent = [f"plots.trees.{k} = {v!r}" for k, v in needed.items() if v not in inventory.columns]
    if absent:
        raise InputDataError(f"{where}: column(s) not found: {', '.join(absent)}. Columns in the file: {list(inventory.columns)}. "
                             "Set these keys to the inventory's column names.")
    rows = np.arange(1, len(inventory) + 1)
    plot_ids = inventory[columns.plot].astype("string").str.strip().fillna("").to_numpy(dtype=object)
    year_text = inventory[columns.year].astype("string").str.strip()
    years_f = pd.to_numeric(year_text, errors="coerce").to_numpy(float)
    known = {(str(p), int(y)) for p, y in zip(plots["plot_id"], plots["year"], strict=True)}
    years_of = plots.groupby(plots["plot_id"].astype(str))["year"].apply(lambda s: sorted(int(v) for v in s)).to_dict()
    problems: list[str] = []
    for i in range(len(inventory)):
        label = f"{where} row {rows[i]} (line {rows[i] + 1})"
        if not np.isfinite(years_f[i]) or years_f[i] != round(years_f[i]):
            problems.append(f"{label}: {columns.year!r} must be a year (a whole number). Got {year_text.iloc[i]!r}.")
            continue
        key = (str(plot_ids[i]), int(years_f[i]))
        if key not in known:
            other = years_of.get(key[0])
            why = (f"plot {key[0]!r} is in the plots file only for year(s) {other}" if other
                   else f"plot {key[0]!r} is not in the plots file")
            problems.append(f"{label}: tree in plot {key[0]!r}, year {key[1]}, but {why} ({plots_where}). Fix the tree's "
                            f"{columns.plot!r} or {columns.year!r}, or add the plot (id, type, year, location) to the plots file.")
    if problems:
        raise InputDataError(f"{where}: {len(problems)} tree row(s) cannot be matched to a plot:\n"
                             + "\n".join(f"  - {p}" for p in problems[:25])
                             + (f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""))
    years = years_f.astype(int)
    empty = empty_plot_rows(inventory, columns.dbh, na_values)
    keep = ~empty
    sub = inventory[keep]
    acols = Columns(dbh=columns.dbh, height=columns.height, species=columns.species, group=columns.group,
                    wood_density=columns.wood_density, tree_id=columns.tree_id, plot=columns.plot)
    if keep.any():
        trees = tree_carbon(sub, params, columns=acols, where=where, equation=equation, carbon_fraction=carbon_fraction,
                            root_shoot=root_shoot, urban_factor=urban_factor, dbh_unit=dbh_unit, height_unit=height_unit,
                            na_values=na_values, missing_height=missing_height, row_numbers=rows[keep])
    else:
        trees = pd.DataFrame({"plot_id": pd.Series(dtype=object), "dbh_cm": pd.Series(dtype=float),
                              "height_m": pd.Series(dtype=float), "equation": pd.Series(dtype=object),
                              "carbon_kg": pd.Series(dtype=float), "flags": pd.Series(dtype=object)})
    trees.insert(0, "row", rows[keep])
    trees["plot_id"] = plot_ids[keep]
    trees.insert(2, "year", years[keep])
    warnings: list[str] = []
    if columns.tree_id:
        ids = inventory[columns.tree_id].astype("string").str.strip().fillna("").to_numpy(dtype=object)[keep]
        trees["tree_id"] = ids
        dup = pd.Series(list(zip(ids, years[keep], strict=True))).duplicated(keep=False).to_numpy()
        blank = ids == ""
        bad = [f"{where} row {r}: tree id {t!r} in year {y} " + ("is empty" if t == "" else "is used by another tree of that year")
               for r, t, y, d, b in zip(rows[keep], ids, years[keep], dup, blank, strict=True) if d or b]
        if bad:
            raise InputDataError(f"{where}: {len(bad)} tree row(s) with a missing or repeated {columns.tree_id!r}:\n"
                                 + "\n".join(f"  - {b}" for b in bad[:25])
                                 + "\nGive every tree one id, the same in every year it is measured.")
        trees["tree_key"] = ids
    else:
        ordinal = trees.groupby(["plot_id", "year"]).cumcount().to_numpy() + 1
        trees["tree_key"] = [f"{p}#{k}" for p, k in zip(trees["plot_id"], ordinal, strict=True)]
        if len(set(years)) > 1:
            warnings.append(f"{where}: no tree id column (plots.trees.id_column): a tree's errors are paired across years by "
                            "its position in its plot's list (plot#k). Set plots.trees.id_column so a remeasured tree keeps its errors.")
    counts = pd.DataFrame({"plot_id": plot_ids, "year": years, "tree": keep.astype(int)})
    measured = counts.groupby(["plot_id", "year"], as_index=False)["tree"].sum().rename(columns={"tree": "n_trees"})
    return trees, measured, warnings


def plot_carbon_table(
    plots: pd.DataFrame,
    trees: pd.DataFrame,
    measured: pd.DataFrame,
    tree_draws: np.ndarray,
    *,
    where: str,
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Per plot and year: carbon density and its draws.

    ``plots`` (plot_id, year, type, area_m2, ...), ``trees`` and ``measured`` from :func:`plot_trees`,
    ``tree_draws`` (n_trees, B) from :func:`tree_carbon_draws`. Returns (table, draws, warnings):
    ``table`` is ``plots`` sorted by (year, plot_id) with n_trees, carbon_kg, carbon_t_ha (point),
    carbon_t_ha_sd, carbon_t_ha_p05, carbon_t_ha_p95 (over the draws) and status ("trees", "empty":
    measured with no tree, 0 t C/ha; "not_measured": no row in the inventory, carbon NaN, left
    out of the fit); ``draws`` (n_plots, B) t C/ha in the table's order (NaN rows for not_measured)."""
    n_draws = tree_draws.shape[1]
    table = plots.sort_values(["year", "plot_id"], kind="stable").reset_index(drop=True).copy()
    key = list(zip(table["plot_id"].astype(str), table["year"].astype(int), strict=True))
    index = {k: i for i, k in enumerate(key)}
    kg = np.zeros(len(table))
    kg_draws = np.zeros((len(table), n_draws))
    at = np.array([index[(str(p), int(y))] for p, y in zip(trees["plot_id"], trees["year"], strict=True)], dtype=int)
    np.add.at(kg, at, trees["carbon_kg"].to_numpy(float))
    np.add.at(kg_draws, at, tree_draws)
    n_trees = np.zeros(len(table), dtype=int)
    seen = np.zeros(len(table), dtype=bool)
    for r in measured.itertuples(index=False):
        i = index[(str(r.plot_id), int(r.year))]
        seen[i] = True
        n_trees[i] = int(r.n_trees)
    ha = m2_to_ha(table["area_m2"].to_numpy(float))
    t_ha = kg_to_t(kg) / ha
    draws = kg_to_t(kg_draws) / ha[:, None]
    t_ha[~seen] = np.nan
    draws[~seen] = np.nan
    table["n_trees"] = n_trees
    table["carbon_kg"] = np.where(seen, kg, np.nan)
    table["carbon_t_ha"] = t_ha
    with np.errstate(invalid="ignore"):
        table["carbon_t_ha_sd"] = np.where(seen, draws.std(axis=1, ddof=1) if n_draws > 1 else 0.0, np.nan)
    q = np.quantile(np.where(seen[:, None], draws, 0.0), [0.05, 0.95], axis=1) if n_draws else np.zeros((2, len(table)))
    table["carbon_t_ha_p05"] = np.where(seen, q[0], np.nan)
    table["carbon_t_ha_p95"] = np.where(seen, q[1], np.nan)
    table["status"] = np.where(~seen, "not_measured", np.where(n_trees > 0, "trees", "empty"))
    warnings = []
    missing = table[~seen]
    if len(missing):
        listed = ", ".join(f"{p} ({y})" for p, y in zip(missing["plot_id"].head(15), missing["year"].head(15), strict=True))
        warnings.append(
            f"{where}: {len(missing)} plot-year(s) of the plots file have no row in the tree inventory and are left out of "
            f"the models (empty is not zero unless recorded): {listed}{' ...' if len(missing) > 15 else ''}. If a plot was "
            "measured and holds no tree, add a row with its plot id, year and DBH 0; else remove it from the plots file.")
    return table, draws, warnings


def plot_areas(plots: pd.DataFrame, area_column: str | None, radius_m: float, where: str) -> np.ndarray:
    """Plot ground areas, m²: the area column when given (it wins over radius_m), else π radius_m².

    Raises InputDataError naming the rows whose area is not a number > 0, or ConfigError when neither is set."""
    if area_column:
        if area_column not in plots.columns:
            raise InputDataError(f"{where}: column plots.area_column = {area_column!r} not found (columns: "
                                 f"{[c for c in plots.columns if c != 'geometry']}). Set it to the plots' area column (m²).")
        a = pd.to_numeric(plots[area_column], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~(a > 0))
        if len(bad):
            raise InputDataError(f"{where}: {len(bad)} plot(s) with {area_column} not an area in m² > 0, e.g. row "
                                 f"{bad[0] + 1}: got {plots[area_column].iloc[bad[0]]!r}. Fill the plot's area.")
        return a
    if radius_m and radius_m > 0:
        return np.full(len(plots), math.pi * float(radius_m) ** 2)
    raise ConfigError("plots.trees needs each plot's ground area to turn tree carbon into t C/ha: set plots.area_column "
                      "(a column with the area in m²) or plots.radius_m (circular plots, e.g. 11.28 for 400 m²).")


# ---------------------------------------------------------------------------- the rule's computation


@dataclass
class PlotCarbon:
    """What rule plot_carbon hands the model stage (written once, read by rule model)."""

    table: pd.DataFrame  # one row per plot and year of the plots file (plot_carbon_table)
    draws: np.ndarray  # (n_plots, n_draws) t C/ha, rows as table
    trees: pd.DataFrame  # per-tree carbon (tree_carbon + row, year, tree_key)
    plots: pd.DataFrame  # the plots file's rows (with geometry) that were measured, carbon column filled
    record: dict  # settings and counts, for models.json and the report
    warnings: list[str]

    def draws_frame(self) -> pd.DataFrame:
        """plot_id, year, d0000 .. : the draws as a table (t C/ha)."""
        cols = {f"d{b:04d}": self.draws[:, b] for b in range(self.draws.shape[1])}
        return pd.concat([self.table[["plot_id", "year"]].reset_index(drop=True), pd.DataFrame(cols)], axis=1)


def draws_by_plot(frame: pd.DataFrame, year: int) -> pd.DataFrame:
    """A :meth:`PlotCarbon.draws_frame` table → (plot_id → draws) of one year, index plot_id as text."""
    sub = frame[frame["year"].astype(int) == int(year)]
    cols = [c for c in frame.columns if c.startswith("d") and c[1:].isdigit()]
    return pd.DataFrame(sub[cols].to_numpy(float), index=sub["plot_id"].astype(str).to_numpy(), columns=cols)


def plot_carbon(
    inventory: pd.DataFrame,
    plots_gdf: pd.DataFrame,
    plots_cfg: Mapping,
    params: AllometryParams,
    *,
    n_draws: int,
    seed: int,
    where: str,
    plots_where: str,
) -> PlotCarbon:
    """Plot carbon density (t C/ha) per plot and year from a tree inventory, with ``n_draws`` draws.

    ``inventory`` every cell as text (:func:`greensink.io.read_csv_as_text`); ``plots_gdf`` the plots
    file as read; ``plots_cfg`` the config's ``plots`` section with ``trees``. The carbon column of
    the returned ``plots`` is ``plots_cfg["carbon_column"]``: the trees win over a carbon column the
    plots file may have (a warning says so)."""
    tcfg = plots_cfg["trees"]
    errors = TreeErrors.from_mapping(tcfg.get("errors"))
    id_col, type_col, year_col = plots_cfg["id_column"], plots_cfg["type_column"], plots_cfg["year_column"]
    carbon_col = plots_cfg["carbon_column"]
    absent = [f"plots.{k} = {v!r}" for k, v in (("id_column", id_col), ("type_column", type_col), ("year_column", year_col))
              if v not in plots_gdf.columns]
    if absent:
        raise InputDataError(f"{plots_where}: column(s) not found: {', '.join(absent)}. Set these keys to the plots' column names.")
    warnings: list[str] = []
    if carbon_col in plots_gdf.columns:
        warnings.append(f"{plots_where}: column {carbon_col!r} is ignored: plot carbon comes from the tree inventory "
                        f"{where} (plots.trees wins over plots.carbon_column).")
    years = pd.to_numeric(plots_gdf[year_col], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(years.to_numpy(float)))
    if len(bad):
        raise InputDataError(f"{plots_where} row {bad[0] + 1}: {year_col} must be a year. Got {plots_gdf[year_col].iloc[bad[0]]!r}.")
    plots = pd.DataFrame({"plot_id": plots_gdf[id_col].astype("string").str.strip().to_numpy(dtype=object),
                          "year": years.astype(int).to_numpy(), "type": plots_gdf[type_col].to_numpy(dtype=object),
                          "area_m2": plot_areas(plots_gdf, plots_cfg.get("area_column"), plots_cfg.get("radius_m", 0), plots_where),
                          "source_row": np.arange(len(plots_gdf))})
    dup = plots.duplicated(["plot_id", "year"], keep=False)
    if dup.any():
        listed = ", ".join(f"{p} ({y})" for p, y in plots.loc[dup, ["plot_id", "year"]].drop_duplicates().head(10).itertuples(index=False))
        raise InputDataError(f"{plots_where}: plot id and year must be unique. Repeated: {listed}. Give each plot one row per year.")

    def column(name: str | None) -> str | None:  # optional columns default to a conventional name when present
        return name if name and name in inventory.columns else None

    cols = InventoryColumns(plot=tcfg["plot_column"], year=tcfg["year_column"], tree_id=tcfg.get("id_column"),
                            dbh=tcfg["dbh_column"], height=column(tcfg.get("height_column")),
                            species=column(tcfg.get("species_column")), group=tcfg.get("group_column"),
                            wood_density=tcfg.get("wood_density_column"))
    na_values = ["", "NA", "NaN", "nan", *[str(v) for v in tcfg.get("na_values") or []]]
    equation = tcfg.get("equation") or params.equation
    trees, measured, w = plot_trees(
        inventory, plots, params, columns=cols, where=where, plots_where=plots_where, equation=equation,
        carbon_fraction=tcfg.get("carbon_fraction"), root_shoot=tcfg.get("root_shoot"), urban_factor=tcfg.get("urban_factor"),
        dbh_unit=tcfg.get("dbh_unit", "cm"), height_unit=tcfg.get("height_unit", "m"), na_values=na_values,
        missing_height=tcfg.get("missing_height", "error"))
    warnings += w
    draws_kg = tree_carbon_draws(trees, n_draws=n_draws, seed=seed, errors=errors)
    table, draws, w = plot_carbon_table(plots, trees, measured, draws_kg, where=where)
    warnings += w
    ok = table["status"] != "not_measured"
    joined = plots_gdf.iloc[table.loc[ok, "source_row"].to_numpy()].copy()
    joined[carbon_col] = table.loc[ok, "carbon_t_ha"].to_numpy()
    joined[id_col] = table.loc[ok, "plot_id"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = table["carbon_t_ha_sd"] / table["carbon_t_ha"]
    record = {
        "source": "tree_inventory",
        "inventory": str(where),
        "plots": str(plots_where),
        "equation": equation,
        "carbon_fraction": tcfg.get("carbon_fraction") or params.carbon_fraction,
        "root_shoot": params.root_shoot if tcfg.get("root_shoot") is None else tcfg["root_shoot"],
        "urban_factor": tcfg.get("urban_factor") or params.urban_factor,
        "errors": errors.to_json(),
        "allometric_sd_ln": {"chave2014": CHAVE2014_RSE_LN, **{f"jenkins2003:{g}": v for g, v in JENKINS2003_RMSE_LN.items()}}
        if errors.allometric else None,
        "n_draws": int(n_draws),
        "seed": int(seed),
        "n_trees": int(len(trees)),
        "n_plot_years": int(len(table)),
        "n_measured": int(ok.sum()),
        "n_empty": int((table["status"] == "empty").sum()),
        "n_not_measured": int((~ok).sum()),
        "plot_rel_sd_median": float(np.nanmedian(rel[table["status"] == "trees"])) if (table["status"] == "trees").any() else None,
        "area": f"column {plots_cfg['area_column']}" if plots_cfg.get("area_column") else f"pi x {plots_cfg.get('radius_m')} m squared",
        "warnings": list(warnings),
    }
    for message in warnings:
        log.warning(message)
    log.info("plot carbon from %d trees in %d of %d plot-years (%d recorded empty), %s, %d draws; median plot sd %.1f %% of the estimate",
             len(trees), int(ok.sum()), len(table), record["n_empty"], equation, n_draws, 100 * (record["plot_rel_sd_median"] or 0))
    return PlotCarbon(table=table.drop(columns=["source_row"]), draws=draws, trees=trees, plots=joined, record=record,
                      warnings=warnings)


def run_plot_carbon(trees: str | Path | Sequence[str | Path], plots: str | Path | Sequence[str | Path],
                    allometry: str | Path | Sequence[str | Path], out: Mapping[str, str | Path], *, plots_cfg: Mapping,
                    n_draws: int, seed: int) -> PlotCarbon:
    """Rule plot_carbon: :func:`plot_carbon` of the tree inventory ``trees`` (CSV), the plots file ``plots``
    and the allometry parameter table ``allometry`` (YAML; each a path, or the rule's one-path input list),
    written to ``out``: ``table`` (plot_carbon.csv), ``draws`` (plot_carbon_draws.csv), ``trees`` (trees.csv),
    ``plots`` (plots.gpkg) and ``record`` (plot_carbon.json). Returns the result."""
    trees_path, plots_path, params_path = (str(_one(p)) for p in (trees, plots, allometry))
    params = params_from_mapping(read_yaml(params_path, "Start from config/allometry.yaml"), where=params_path)
    result = plot_carbon(gio.read_csv_as_text(trees_path), gio.read_vector(plots_path), plots_cfg, params,
                         n_draws=n_draws, seed=seed, where=trees_path, plots_where=plots_path)
    gio.write_csv(out["table"], result.table)
    gio.write_csv(out["draws"], result.draws_frame())
    gio.write_csv(out["trees"], result.trees)
    gio.write_table(out["plots"], result.plots, csv=False)
    gio.write_json(out["record"], result.record)
    r = result.record
    log.info("%d trees -> %d plot-years with carbon (%d recorded empty, %d not measured), %d draws each",
             r["n_trees"], r["n_measured"], r["n_empty"], r["n_not_measured"], n_draws)
    return result


def _one(path: str | Path | Sequence[str | Path]) -> str | Path:
    """A path given as itself or as a rule's input list of one path."""
    if isinstance(path, str | Path):
        return path
    paths = list(path)
    if len(paths) != 1:
        raise ValueError(f"Expected one path. Got {paths}.")
    return paths[0]
