"""Scenario zone tables: the planned state through the baseline's models and zonal engine, its
difference from the baseline with paired intervals, and the targets met per plan.

The baseline and the scenario are evaluated by :func:`greensink.carbon.pixel_function` with the
same models (the baseline year's, plus the scenario's constant-density pseudo-types), the same fill
of unobserved land (the baseline's :func:`greensink.carbon.type_fill`) and one
:class:`greensink.uncertainty.Noise` (same seed, year and pixels), so every draw of the scenario is
paired with the same draw of the baseline: the curve, residual, NDVI and table errors they share
cancel in the difference, and a scenario without changes differs by exactly 0 in every draw.
Zone sums come from :func:`greensink.aggregate.zone_draw_sums` and the indicator columns from
:func:`greensink.aggregate.zone_table` and :func:`greensink.indicators.park_service_columns`, as
rule aggregate makes them for a year.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from greensink import targets
from greensink.aggregate import zone_draw_sums, zone_table
from greensink.carbon import (
    PixelFn,
    fill_values,
    interval_quantiles,
    pixel_function,
    type_density,
    type_fill,
    typed_pixels,
)
from greensink.change import difference_function
from greensink.coverage import zonal_sum
from greensink.grid import Grid
from greensink.indicators import park_service_columns
from greensink.model import used_predictors
from greensink.scenario.burn import Burned, Landscape, growth_map
from greensink.scenario.plan import Scenario
from greensink.uncertainty import Noise, noise_spec

log = logging.getLogger(__name__)

# zone indicators whose baseline value and change are written beside the scenario's
INDICATORS = ("green_coverage_pct", "green_space_ratio_pct", "canopy_cover_pct", "tree_shrub_share_pct",
              "park_area_per_capita_m2", "park_service_population_pct", "park_service_residential_pct", "carbon_t_ha")


@dataclass
class Setting:
    """What the zonal engine needs beside the landscapes: the zone layers (coarsest first) and their
    coverage matrices, the grid, and the run's settings as rule aggregate takes them."""

    levels: Sequence[str]
    zones: Sequence[gpd.GeoDataFrame]
    matrices: Sequence[sp.csr_matrix]
    grid: Grid
    park_types: Sequence[str] = ()
    park_service: Sequence[Mapping] = ()
    population: gpd.GeoDataFrame | None = None
    population_column: str | None = None
    residential: gpd.GeoDataFrame | None = None
    interval_pct: float = 90.0
    min_observed_pct: float = 50.0
    typed_land: bool = True
    uncertainty: Mapping | None = None
    seed: int = 0


def _predictors(models: Mapping, types: Sequence[str], land: Landscape) -> dict[str, np.ndarray]:
    names = {"ndvi", *used_predictors(models, types)}
    return {n: land.rasters[n] for n in sorted(names)}


def paired_functions(base: Landscape, base_models: Mapping, scen: Landscape, scen_models: Mapping, year: int,
                     ndvi_se: np.ndarray | None, setting: Setting) -> tuple[PixelFn, PixelFn, dict]:
    """The pixel functions of the baseline and the scenario (filled, with per-source parts) sharing one
    Noise and the baseline's fill, and the fill record ({type: type_fill entry})."""
    grid = setting.grid
    spec = noise_spec(setting.uncertainty or {}, base_models, seed=setting.seed, year=year, resolution_m=grid.resolution_m)
    spec.width, spec.height = grid.width, grid.height
    first = base_models["types"][base.types[0]]
    noise = Noise(spec, np.asarray(first["bootstrap"]).shape[0])
    pb = _predictors(base_models, base.types, base)
    ps = _predictors(scen_models, scen.types, scen)
    fill = type_fill(base_models, base.types, base.fractions, pb, seed=int(base_models.get("seed", 0)))
    fv = fill_values(fill)
    if spec.ndvi:
        if ndvi_se is None:
            raise ValueError("the NDVI error source (uncertainty.ndvi) needs the baseline year's ndvi_se raster. Got none.")
        pb, ps = {**pb, "ndvi_se": ndvi_se}, {**ps, "ndvi_se": ndvi_se}
    fn_b = pixel_function(base_models, base.types, base.fractions, pb, fill=fv, noise=noise, sources=True)
    fn_s = pixel_function(scen_models, scen.types, scen.fractions, ps, fill=fv, noise=noise, sources=True)
    return fn_b, fn_s, fill


def scaled(fn: PixelFn, factor: np.ndarray) -> PixelFn:
    """``fn`` times a per-pixel factor (flat, grid-sized): estimate, draws and per-source parts."""
    def evaluate(idx: np.ndarray):
        est, draws, *parts = fn(idx)
        g = factor[idx]
        if parts:
            return est * g, draws * g, {k: v * g for k, v in parts[0].items()}
        return est * g, draws * g
    return evaluate


def _interval(est: np.ndarray, draws: np.ndarray, interval_pct: float) -> tuple[np.ndarray, np.ndarray]:
    qlo, qhi = interval_quantiles(interval_pct)
    lo, hi = np.quantile(draws, [qlo, qhi], axis=-1) if draws.shape[-1] > 1 else (est, est)
    return np.minimum(lo, est), np.maximum(hi, est)


def scenario_tables(scenario: Scenario, base: Landscape, base_models: Mapping, scen: Burned, scen_models: Mapping,
                    ndvi_se: np.ndarray | None, baseline_tables: Mapping[str, pd.DataFrame], goals: Sequence[dict],
                    setting: Setting, progress: Callable[[int, int], None] | None = None,
                    ) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """The scenario's zone table per level and its per-level totals.

    Each table has every column of the year's zone tables (recomputed on the scenario's layers), the
    target columns of :func:`greensink.targets.annotate`, ``changed_area_ha`` (area of the zone the
    changes touch, planted share for plantings), ``baseline_carbon_t`` (the baseline year's zone table),
    ``difference_t`` with ``difference_t_lo`` / ``difference_t_hi`` (scenario − baseline from paired
    draws), ``<indicator>_baseline`` and ``<indicator>_change`` for :data:`INDICATORS`, and per growth
    stage ``carbon_t_<stage>`` and ``difference_t_<stage>`` (lo, hi). Carbon or a difference of a zone
    whose carbon is unknown (NaN) in either state is NaN. The totals (one row per level) sum the zones'
    estimates and draws, so their intervals are those of the sums."""
    grid, pa = setting.grid, setting.grid.pixel_area_ha
    fn_b, fn_s, fill = paired_functions(base, base_models, scen, scen_models, scenario.baseline_year, ndvi_se, setting)
    active_s = typed_pixels(scen.fractions)
    active = np.union1d(typed_pixels(base.fractions), active_s)
    sums_s = zone_draw_sums(setting.matrices, fn_s, active_s, pa, chunk_pixels=16_384, progress=progress)
    diff_fn = difference_function(fn_b, fn_s, 1.0)
    sums_d = zone_draw_sums(setting.matrices, diff_fn, active, pa, chunk_pixels=16_384)
    stage_sums = {name: zone_draw_sums(setting.matrices, scaled(diff_fn, growth_map(scenario, scen.last, years).ravel()),
                                       active, pa, chunk_pixels=16_384)
                  for name, years in scenario.stages().items()}
    preds_s = _predictors(scen_models, scen.types, scen)
    density = type_density(scen_models, scen.types, scen.fractions, preds_s)
    col = scen.type_column
    codes = scen.greenspace[col].astype(str) if col in scen.greenspace.columns else pd.Series([], dtype=str)
    parks = scen.greenspace.geometry.values[codes.isin(list(setting.park_types)).to_numpy()]
    info = {"fill_t_ha": {t: f["fill_t_ha"] for t, f in fill.items()},
            "tiers": {t: scen_models["types"][t].get("tier", 0) for t in scen.types},
            "pools": {t: scen_models["types"][t].get("pools") or {} for t in scen.types}}
    rasters = {name: scen.rasters[name] for name in ("ndvi", "fvc", "vegetation", "canopy", "tree_shrub")}
    pseudo = scenario.pseudo_types()
    tables, totals = {}, []
    for i, (level, z, m) in enumerate(zip(setting.levels, setting.zones, setting.matrices, strict=True)):
        table = zone_table(z, m, grid, rasters, density, scen.types, sums_s[i], scen.greenspace, col, setting.park_types,
                           setting.population, setting.population_column, setting.interval_pct, fractions=scen.fractions,
                           min_observed_pct=setting.min_observed_pct, typed_land=setting.typed_land, **info)
        for name, values in park_service_columns(z, parks, setting.park_service, setting.population,
                                                 setting.population_column, setting.residential).items():
            table[name] = values if setting.typed_land else np.nan
        for code, (type_code, _density) in pseudo.items():  # a planned density's carbon is its type's
            table[f"carbon_t_{type_code}"] = table[f"carbon_t_{type_code}"] + table.pop(f"carbon_t_{code}")
            if f"green_space_area_ha_{code}" in table.columns:
                del table[f"green_space_area_ha_{code}"]
        table = targets.annotate(table, level, goals)
        base_table = baseline_tables[level].set_index(baseline_tables[level]["zone_id"].astype(str))
        base_rows = base_table.reindex(table["zone_id"].astype(str))
        table["changed_area_ha"] = zonal_sum(m, scen.changed) * pa
        table["baseline_carbon_t"] = base_rows["carbon_t"].to_numpy(dtype=float)
        unknown = ~np.isfinite(table["carbon_t"].to_numpy(dtype=float)) | ~np.isfinite(table["baseline_carbon_t"].to_numpy())
        est, draws = sums_d[i][0], sums_d[i][1]
        lo, hi = _interval(est, draws, setting.interval_pct)
        table["difference_t"] = np.where(unknown, np.nan, est)
        table["difference_t_lo"] = np.where(unknown, np.nan, lo)
        table["difference_t_hi"] = np.where(unknown, np.nan, hi)
        for ind in INDICATORS:
            if ind in table.columns and ind in base_rows.columns:
                table[f"{ind}_baseline"] = base_rows[ind].to_numpy(dtype=float)
                table[f"{ind}_change"] = table[ind].to_numpy(dtype=float) - table[f"{ind}_baseline"].to_numpy()
        row = {"scenario": scenario.name, "label": scenario.label, "baseline_year": scenario.baseline_year,
               "level": level, "zones": len(table), "changed_area_ha": float(table["changed_area_ha"].sum())}
        any_unknown = bool(unknown.any())
        carbon_draws = sums_s[i][1].sum(axis=0)
        c_est = float(table["carbon_t"].sum())
        c_lo, c_hi = _interval(np.array(c_est), carbon_draws, setting.interval_pct)
        d_lo, d_hi = _interval(np.array(est.sum()), draws.sum(axis=0), setting.interval_pct)
        nan = float("nan")
        row.update(carbon_t=nan if any_unknown else c_est, carbon_t_lo=nan if any_unknown else float(c_lo),
                   carbon_t_hi=nan if any_unknown else float(c_hi),
                   baseline_carbon_t=nan if any_unknown else float(table["baseline_carbon_t"].sum()),
                   difference_t=nan if any_unknown else float(est.sum()),
                   difference_t_lo=nan if any_unknown else float(d_lo), difference_t_hi=nan if any_unknown else float(d_hi))
        for name, sums in stage_sums.items():
            s_est, s_draws = sums[i][0], sums[i][1]
            s_lo, s_hi = _interval(s_est, s_draws, setting.interval_pct)
            table[f"difference_t_{name}"] = np.where(unknown, np.nan, s_est)
            table[f"difference_t_{name}_lo"] = np.where(unknown, np.nan, s_lo)
            table[f"difference_t_{name}_hi"] = np.where(unknown, np.nan, s_hi)
            table[f"carbon_t_{name}"] = table["baseline_carbon_t"] + table[f"difference_t_{name}"]
            t_lo, t_hi = _interval(np.array(s_est.sum()), s_draws.sum(axis=0), setting.interval_pct)
            row.update({f"difference_t_{name}": nan if any_unknown else float(s_est.sum()),
                        f"difference_t_{name}_lo": nan if any_unknown else float(t_lo),
                        f"difference_t_{name}_hi": nan if any_unknown else float(t_hi)})
        tables[level] = table
        totals.append(row)
    return tables, pd.DataFrame(totals)


SUMMARY_COLUMNS = ["scenario", "label", "baseline_year", "level", "indicator", "indicator_label", "op", "target", "zones",
                   "met", "missed", "no_data", "met_baseline", "missed_baseline", "no_data_baseline", "met_change",
                   "value_mean", "value_mean_baseline", "carbon_t", "carbon_t_lo", "carbon_t_hi", "baseline_carbon_t",
                   "difference_t", "difference_t_lo", "difference_t_hi", "changed_area_ha"]


def summary_table(scenario_tables_: Sequence[tuple[Mapping[str, pd.DataFrame], pd.DataFrame]],
                  baseline_tables: Mapping[int, Mapping[str, pd.DataFrame]], goals: Sequence[dict]) -> pd.DataFrame:
    """One row per scenario × level × target indicator (a level without targets: one row, indicator
    empty): zones meeting, missing and without data for the target in the scenario and in the baseline,
    the change in zones meeting it, the zones' mean value in both, and the level's totals (carbon stock
    with interval, baseline stock, difference with interval, changed area). ``scenario_tables_`` holds
    per scenario (tables by level, totals from :func:`scenario_tables`)."""
    rows = []
    for tables, totals in scenario_tables_:
        for total in totals.to_dict("records"):
            level = total["level"]
            table = tables[level]
            base = baseline_tables[int(total["baseline_year"])][level]
            common = {k: total.get(k, np.nan) for k in SUMMARY_COLUMNS if k in total}
            level_goals = [g for g in goals if g["level"] == level]
            if not level_goals:
                rows.append({**common, "indicator": ""})
                continue
            ev_s = targets.evaluate({level: table}, level_goals)
            ev_b = targets.evaluate({level: base}, level_goals)
            for g in level_goals:
                s = ev_s[ev_s["indicator"] == g["indicator"]]
                b = ev_b[ev_b["indicator"] == g["indicator"]]
                met, met_b = int((s["status"] == "met").sum()), int((b["status"] == "met").sum())
                rows.append({**common, "indicator": g["indicator"], "indicator_label": g.get("label", g["indicator"]),
                             "op": g["op"], "target": float(g["value"]), "met": met,
                             "missed": int((s["status"] == "missed").sum()), "no_data": int((s["status"] == "no data").sum()),
                             "met_baseline": met_b, "missed_baseline": int((b["status"] == "missed").sum()),
                             "no_data_baseline": int((b["status"] == "no data").sum()), "met_change": met - met_b,
                             "value_mean": float(s["value"].mean()) if s["value"].notna().any() else np.nan,
                             "value_mean_baseline": float(b["value"].mean()) if b["value"].notna().any() else np.nan})
    return pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
