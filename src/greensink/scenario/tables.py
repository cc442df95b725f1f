"""Scenario zone tables: the planned state through the baseline's models and zonal engine, its
difference from the baseline with paired intervals, and the targets met per plan.

The baseline and the scenario are evaluated by :func:`greensink.carbon.pixel_function` with the
same models (the baseline year's, plus the scenario's constant-density pseudo-types), the same fill
of unobserved land (the baseline year's, read from rule fill's results/{year}/fill.json by the rule; computed
by :func:`greensink.carbon.type_fill` when none is given) and one
:class:`greensink.uncertainty.Noise` (same seed, year and pixels), so every draw of the scenario is
paired with the same draw of the baseline: the curve, residual, NDVI and table errors they share
cancel in the difference, and a scenario without changes differs by exactly 0 in every draw.

The baseline's draws are not drawn again here when rule aggregate's record of them is given
(:class:`greensink.aggregate.ZoneDraws`, results/{year}/zones/{level}.draws.npz): zone sums are linear in
the pixel draws, so the difference's zone sums are the scenario's minus the baseline's, corrected on the
pixels the changes touch, the only ones where the two pixel functions differ (:func:`record_differences`;
docs/method.md, "Draws written once").
Zone sums come from :func:`greensink.aggregate.zone_draw_sums` and the indicator columns from
:func:`greensink.aggregate.zone_table` and :func:`greensink.indicators.park_service_columns`, as
rule aggregate makes them for a year: the park-service overlay (:func:`greensink.indicators.service_overlay`
of the plan's own parks) once per scenario for every level, the people per zone once per level.
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
from greensink.aggregate import ZoneDraws, content_sha256, zone_draw_sums, zone_table
from greensink.carbon import (
    PixelFn,
    fill_values,
    interval_quantiles,
    iter_chunks,
    pixel_function,
    type_density,
    type_fill,
    typed_pixels,
)
from greensink.change import difference_function
from greensink.coverage import zonal_sum
from greensink.grid import Grid
from greensink.indicators import park_service_columns, service_overlay
from greensink.model import used_predictors
from greensink.overlay import population_in_zones
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
                     ndvi_se: np.ndarray | None, setting: Setting,
                     fill: Mapping[str, Mapping] | None = None) -> tuple[PixelFn, PixelFn, dict]:
    """The pixel functions of the baseline and the scenario (filled, with per-source parts) sharing one
    Noise and the baseline's fill, and the fill record ({type: type_fill entry}). ``fill``: the baseline year's
    fill as :func:`greensink.carbon.read_fill` reads it from results/{year}/fill.json (rule fill:
    :func:`greensink.carbon.type_fill` of the same fractions and predictors, so the same fill bit for bit; in a
    tiled run rule fill_gather's sum of the tiles' sums, equal to rounding and the fill aggregate used); None:
    computed here over the whole grid."""
    grid = setting.grid
    spec = noise_spec(setting.uncertainty or {}, base_models, seed=setting.seed, year=year, resolution_m=grid.resolution_m)
    spec.width, spec.height = grid.width, grid.height
    first = base_models["types"][base.types[0]]
    noise = Noise(spec, np.asarray(first["bootstrap"]).shape[0])
    pb = _predictors(base_models, base.types, base)
    ps = _predictors(scen_models, scen.types, scen)
    if fill is None:
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


ZoneSums = tuple[np.ndarray, np.ndarray]  # (estimate (Z,), draws (Z, B)) of one level, t C


def touched_pixels(scen: Burned, active: np.ndarray) -> np.ndarray:
    """The pixels of ``active`` (flat, ascending) that some change of the scenario touches (changed share > 0
    or a last change): everywhere else the scenario's layers and fractions are the baseline's bit for bit
    (:mod:`greensink.scenario.burn`), so its pixel function equals the baseline's there, draw for draw."""
    mask = (np.nan_to_num(scen.changed).ravel() > 0) | (np.asarray(scen.last).ravel() >= 0)
    return active[mask[active]]


def record_differences(matrices: Sequence[sp.csr_matrix], scen_sums: Sequence[tuple[np.ndarray, ...]],
                       base_draws: Sequence[ZoneDraws], fn_b: PixelFn, fn_s: PixelFn, base_active: np.ndarray,
                       scen_active: np.ndarray, touched: np.ndarray, stages: Mapping[str, np.ndarray],
                       pixel_area_ha: float, chunk_pixels: int = 16_384,
                       ) -> tuple[list[ZoneSums], dict[str, list[ZoneSums]]]:
    """Per level the zone sums of the difference scenario − baseline, and of each growth stage's, from the
    scenario's zone sums ``scen_sums`` (over ``scen_active``) and the baseline's record ``base_draws`` (over
    ``base_active``) instead of drawing the baseline over every pixel again.

    The difference sums D = Σ_A nan0(s − b) over A = ``base_active`` ∪ ``scen_active`` (what
    :func:`greensink.change.difference_function` summed by :func:`~greensink.aggregate.zone_draw_sums` gives)
    equal S − B + Σ_A [nan0(s − b) − 1_S nan0(s) + 1_B nan0(b)], S and B the two sums, 1_S and 1_B the pixel
    sets; the bracket is 0 wherever s and b are the same numbers (or both NaN), i.e. outside ``touched``
    (:func:`touched_pixels`), so it is evaluated there only. A stage's difference Σ_A g·nan0(s − b), g its
    growth share (flat grid, 1 where no change touched the pixel: :func:`greensink.scenario.burn.growth_map`),
    is D − Σ_touched (1 − g)·nan0(s − b). A zone whose coverage holds no touched pixel differs by exactly 0.
    Summation order differs from the direct sums, so results agree with them to rounding (about 1e-12 of
    the zone's stock)."""
    stacked = sp.vstack(matrices).tocsc() if len(matrices) > 1 else matrices[0].tocsc()
    sizes = np.cumsum([0] + [m.shape[0] for m in matrices])
    n_draws = base_draws[0].draws.shape[1]
    # only the zones holding a touched pixel can differ: the sums run over their rows alone (memory ∝ those zones)
    rows = np.flatnonzero(np.asarray((stacked[:, touched] != 0).sum(axis=1)).ravel() > 0)
    cover = stacked[rows].tocsc()
    in_base = np.zeros(stacked.shape[1], dtype=bool)
    in_base[base_active] = True
    in_scen = np.zeros(stacked.shape[1], dtype=bool)
    in_scen[scen_active] = True
    corr_e, corr_d = np.zeros(rows.size), np.zeros((rows.size, n_draws))
    stage_e = {name: np.zeros(rows.size) for name in stages}
    stage_d = {name: np.zeros((rows.size, n_draws)) for name in stages}
    for idx in iter_chunks(touched, chunk_pixels):
        eb, db = fn_b(idx)[:2]
        es, ds = fn_s(idx)[:2]
        de, dd = np.nan_to_num(es - eb), np.nan_to_num(ds - db)
        ins, inb = in_scen[idx], in_base[idx]
        sub = cover[:, idx]
        corr_e += sub @ (de - ins * np.nan_to_num(es) + inb * np.nan_to_num(eb))
        corr_d += sub @ (dd - ins * np.nan_to_num(ds) + inb * np.nan_to_num(db)).T
        for name, growth in stages.items():
            w = 1.0 - growth[idx]
            stage_e[name] += sub @ (w * de)
            stage_d[name] += sub @ (w * dd).T
    diffs: list[ZoneSums] = []
    per_stage: dict[str, list[ZoneSums]] = {name: [] for name in stages}
    for level, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        sel = (rows >= a) & (rows < b)  # this level's reached zones: positions in rows, and zone numbers
        hit = rows[sel] - a
        rec, own = base_draws[level], scen_sums[level]
        est, draws = np.zeros(b - a), np.zeros((b - a, n_draws))
        est[hit] = own[0][hit] - rec.estimate[hit] + corr_e[sel] * pixel_area_ha
        draws[hit] = own[1][hit] - rec.draws[hit] + corr_d[sel] * pixel_area_ha
        diffs.append((est, draws))
        for name in stages:
            s_est, s_draws = np.zeros(b - a), np.zeros((b - a, n_draws))
            s_est[hit] = est[hit] - stage_e[name][sel] * pixel_area_ha
            s_draws[hit] = draws[hit] - stage_d[name][sel] * pixel_area_ha
            per_stage[name].append((s_est, s_draws))
    return diffs, per_stage


def _interval(est: np.ndarray, draws: np.ndarray, interval_pct: float) -> tuple[np.ndarray, np.ndarray]:
    qlo, qhi = interval_quantiles(interval_pct)
    lo, hi = np.quantile(draws, [qlo, qhi], axis=-1) if draws.shape[-1] > 1 else (est, est)
    return np.minimum(lo, est), np.maximum(hi, est)


def scenario_tables(scenario: Scenario, base: Landscape, base_models: Mapping, scen: Burned, scen_models: Mapping,
                    ndvi_se: np.ndarray | None, baseline_tables: Mapping[str, pd.DataFrame], goals: Sequence[dict],
                    setting: Setting, progress: Callable[[int, int], None] | None = None,
                    baseline_draws: Sequence[ZoneDraws] | None = None, fill: Mapping[str, Mapping] | None = None,
                    ) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """The scenario's zone table per level and its per-level totals.

    Each table has every column of the year's zone tables (recomputed on the scenario's layers), the
    target columns of :func:`greensink.targets.annotate`, ``changed_area_ha`` (area of the zone the
    changes touch, planted share for plantings), ``baseline_carbon_t`` (the baseline year's zone table),
    ``difference_t`` with ``difference_t_lo`` / ``difference_t_hi`` (scenario − baseline from paired
    draws), ``<indicator>_baseline`` and ``<indicator>_change`` for :data:`INDICATORS`, and per growth
    stage ``carbon_t_<stage>`` and ``difference_t_<stage>`` (lo, hi). Carbon or a difference of a zone
    whose carbon is unknown (NaN) in either state is NaN. The totals (one row per level) sum the zones'
    estimates and draws, so their intervals are those of the sums.

    ``baseline_draws`` (one :class:`~greensink.aggregate.ZoneDraws` per level, rule aggregate's record of the
    baseline year) spares drawing the baseline over every pixel: the differences come from
    :func:`record_differences`, equal to the direct ones to rounding. Each record is checked against this
    run (level, zones, seed, year, draws, uncertainty settings, models) first. Without it the baseline is
    drawn here.

    ``fill``: the baseline year's fill of unobserved typed land (:func:`greensink.carbon.read_fill` of rule
    fill's results/{year}/fill.json, checked there against the year and its models), used by both states; None:
    :func:`greensink.carbon.type_fill` over the whole grid here (the same numbers, one more pass over the grid)."""
    grid, pa = setting.grid, setting.grid.pixel_area_ha
    if baseline_draws is not None:
        n_draws = np.asarray(base_models["types"][base.types[0]]["bootstrap"]).shape[0]
        identity = ZoneDraws.identity(seed=setting.seed, year=scenario.baseline_year, n_draws=n_draws,
                                      uncertainty=setting.uncertainty, models_sha256=content_sha256(base_models))
        for level, z, record in zip(setting.levels, setting.zones, baseline_draws, strict=True):
            record.check(level=level, zone_ids=z["zone_id"].to_numpy(), identity=identity)
    fn_b, fn_s, fill = paired_functions(base, base_models, scen, scen_models, scenario.baseline_year, ndvi_se, setting,
                                        fill=fill)
    active_b, active_s = typed_pixels(base.fractions), typed_pixels(scen.fractions)
    active = np.union1d(active_b, active_s)
    sums_s = zone_draw_sums(setting.matrices, fn_s, active_s, pa, chunk_pixels=16_384, progress=progress)
    growth = {name: growth_map(scenario, scen.last, years).ravel() for name, years in scenario.stages().items()}
    if baseline_draws is not None:
        sums_d, stage_sums = record_differences(setting.matrices, sums_s, baseline_draws, fn_b, fn_s, active_b, active_s,
                                                touched_pixels(scen, active), growth, pa)
    else:
        diff_fn = difference_function(fn_b, fn_s, 1.0)
        sums_d = zone_draw_sums(setting.matrices, diff_fn, active, pa, chunk_pixels=16_384)
        stage_sums = {name: zone_draw_sums(setting.matrices, scaled(diff_fn, g), active, pa, chunk_pixels=16_384)
                      for name, g in growth.items()}
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
    pop, pop_col, homes = setting.population, setting.population_column, setting.residential
    with_people = pop is not None and bool(pop_col)
    # the plan's own parks' service area overlaid with the homes and the people once for every level (a plan may
    # add or build on parks, so this is the scenario's overlay, not the baseline year's); none without typed land
    served = service_overlay(parks, setting.park_service, pop if with_people else None, pop_col, homes) \
        if setting.typed_land else None
    tables, totals = {}, []
    for i, (level, z, m) in enumerate(zip(setting.levels, setting.zones, setting.matrices, strict=True)):
        # people per zone once per level: the table's population and the park-service coverage share it
        zone_people = population_in_zones(z.geometry.values, pop, pop_col) if with_people else None
        table = zone_table(z, m, grid, rasters, density, scen.types, sums_s[i], scen.greenspace, col, setting.park_types,
                           pop, pop_col, setting.interval_pct, fractions=scen.fractions,
                           min_observed_pct=setting.min_observed_pct, typed_land=setting.typed_land, people=zone_people,
                           **info)
        columns = (park_service_columns(z, parks, setting.park_service, pop, pop_col, homes, overlay=served,
                                        people=zone_people)
                   if setting.typed_land else {"park_service_population_pct": np.nan, "park_service_residential_pct": np.nan})
        for name, values in columns.items():
            table[name] = values  # NaN without green-space types: no parks known
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
