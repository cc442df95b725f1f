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

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from greensink import targets
from greensink.aggregate import ZoneDraws, content_sha256, zone_draw_sums, zone_table_from_sums
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
from greensink.zone_sums import pixel_sums

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


def state_predictors(models: Mapping, types: Sequence[str], land: Landscape) -> dict[str, np.ndarray]:
    """The predictor rasters of a state (baseline or scenario) by name: NDVI and those ``models`` use."""
    names = {"ndvi", *used_predictors(models, types)}
    return {n: land.rasters[n] for n in sorted(names)}


def scenario_noise(base_models: Mapping, base_types: Sequence[str], year: int, setting: Setting) -> Noise:
    """The one :class:`greensink.uncertainty.Noise` both states are drawn with: the baseline ``year``'s streams over
    the whole grid of ``setting`` (also in a tile), as many draws as the first baseline type's bootstrap."""
    grid = setting.grid
    spec = noise_spec(setting.uncertainty or {}, base_models, seed=setting.seed, year=year, resolution_m=grid.resolution_m)
    spec.width, spec.height = grid.width, grid.height
    return Noise(spec, np.asarray(base_models["types"][base_types[0]]["bootstrap"]).shape[0])


def paired_functions(base: Landscape, base_models: Mapping, scen: Landscape, scen_models: Mapping, year: int,
                     ndvi_se: np.ndarray | None, setting: Setting,
                     fill: Mapping[str, Mapping] | None = None, *, noise: Noise | None = None, row0: int = 0,
                     col0: int = 0, sources: bool = True) -> tuple[PixelFn, PixelFn, dict]:
    """The pixel functions of the baseline and the scenario (filled, with per-source parts) sharing one
    Noise and the baseline's fill, and the fill record ({type: type_fill entry}). ``fill``: the baseline year's
    fill as :func:`greensink.carbon.read_fill` reads it from results/{year}/fill.json (rule fill:
    :func:`greensink.carbon.type_fill` of the same fractions and predictors, so the same fill bit for bit; in a
    tiled run rule fill_gather's sum of the tiles' sums, equal to rounding and the fill aggregate used); None:
    computed here over the whole grid.

    In a tile (:mod:`greensink.scenario.tiles`) the landscapes are the tile's windows, ``row0``, ``col0`` its top-left
    grid pixel and ``noise`` the run's (:func:`scenario_noise`, made here when None): the draws are keyed by the
    whole grid's pixels, so they are the untiled run's there. ``sources`` False: the functions return the estimate and
    draws only, not the per-source parts (the difference corrections need no parts)."""
    noise = noise if noise is not None else scenario_noise(base_models, base.types, year, setting)
    spec = noise.spec
    tiled = {"row0": row0, "col0": col0, "grid_width": setting.grid.width}  # the untiled block: the whole grid's rows
    pb = state_predictors(base_models, base.types, base)
    ps = state_predictors(scen_models, scen.types, scen)
    if fill is None:
        fill = type_fill(base_models, base.types, base.fractions, pb, seed=int(base_models.get("seed", 0)))
    fv = fill_values(fill)
    if spec.ndvi:
        if ndvi_se is None:
            raise ValueError("the NDVI error source (uncertainty.ndvi) needs the baseline year's ndvi_se raster. Got none.")
        pb, ps = {**pb, "ndvi_se": ndvi_se}, {**ps, "ndvi_se": ndvi_se}
    fn_b = pixel_function(base_models, base.types, base.fractions, pb, fill=fv, noise=noise, sources=sources, **tiled)
    fn_s = pixel_function(scen_models, scen.types, scen.fractions, ps, fill=fv, noise=noise, sources=sources, **tiled)
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


def row_chunks(idx: np.ndarray, width: int, chunk_pixels: int, max_rows: int) -> Iterator[np.ndarray]:
    """Consecutive chunks of the ascending flat pixel indices ``idx`` (row × ``width`` + column), each of at most
    ``chunk_pixels`` pixels on at most ``max_rows`` rows. A pixel function with noise makes its streams for every
    row a chunk spans (B draws × the rows × the columns), so a chunk of scattered pixels (the pixels a plan touches,
    a few per row over a tile's height) costs what a dense chunk over all those rows would; bounding its rows bounds
    that to a dense chunk's."""
    if max_rows < 1 or chunk_pixels < 1:
        raise ValueError(f"row_chunks needs chunk_pixels and max_rows of at least 1. Got {chunk_pixels}, {max_rows}.")
    rows = idx // width
    start = 0
    while start < idx.size:
        stop = min(int(np.searchsorted(rows, rows[start] + max_rows, side="left")), start + chunk_pixels)
        yield idx[start:stop]
        start = stop


def difference_corrections(matrices: Sequence[sp.csr_matrix], fn_b: PixelFn, fn_s: PixelFn, base_active: np.ndarray,
                           scen_active: np.ndarray, touched: np.ndarray, stages: Mapping[str, np.ndarray], n_draws: int,
                           chunk_pixels: int = 16_384, *, width: int | None = None,
                           max_rows: int | None = None) -> list[dict[str, np.ndarray]]:
    """Per level, the sums over the ``touched`` pixels that turn the scenario's zone sums minus the baseline's into
    the difference's (:func:`record_differences`), in pixel units (t C/ha × pixels): ``rows`` the zones holding a
    touched pixel (a stored coverage entry), and for them ``corr_px`` (estimate) and ``corr_draws_px`` (draws) of
    Σ [nan0(s − b) − 1_S nan0(s) + 1_B nan0(b)], and per growth stage ``stage_<name>_px`` and
    ``stage_<name>_draws_px`` of Σ (1 − g) nan0(s − b). Linear in the pixels: a tiled run's tiles compute theirs over
    their own pixels (``matrices`` a tile's coverage, the functions and pixel sets the tile's) and the sums add up.
    ``n_draws`` is the number of draws (the columns of the draw sums even where no pixel is touched). ``width`` and
    ``max_rows`` (a tile job): the touched pixels are drawn in chunks of at most ``max_rows`` rows of the block
    ``width`` pixels wide (:func:`row_chunks`; a dense chunk's rows), not ``chunk_pixels`` scattered over the tile."""
    stacked = sp.vstack(matrices).tocsc() if len(matrices) > 1 else matrices[0].tocsc()
    sizes = np.cumsum([0] + [m.shape[0] for m in matrices])
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
    chunks = (iter_chunks(touched, chunk_pixels) if width is None
              else row_chunks(touched, width, chunk_pixels, max_rows or max(1, chunk_pixels // width)))
    for idx in chunks:
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
    out = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        sel = (rows >= a) & (rows < b)  # this level's reached zones: positions in rows, and zone numbers
        level = {"rows": rows[sel] - a, "corr_px": corr_e[sel], "corr_draws_px": corr_d[sel]}
        for name in stages:
            level[f"stage_{name}_px"], level[f"stage_{name}_draws_px"] = stage_e[name][sel], stage_d[name][sel]
        out.append(level)
    return out


def differences_from_record(own: tuple[np.ndarray, ...], record: ZoneDraws, corrections: Mapping[str, np.ndarray],
                            stages: Sequence[str], pixel_area_ha: float) -> tuple[ZoneSums, dict[str, ZoneSums]]:
    """One level's zone sums of the difference scenario − baseline and of each growth stage's (``stages``' names), from
    the scenario's own zone sums ``own`` (estimate, draws[, parts]), the baseline's ``record`` and the level's
    ``corrections`` (:func:`difference_corrections`: the whole grid's, or a tiled run's added up over the tiles, with
    ``rows`` the zones any tile's touched pixels reach). A zone outside ``rows`` differs by exactly 0."""
    n, n_draws = record.estimate.shape[0], record.draws.shape[1]
    hit = corrections["rows"]
    est, draws = np.zeros(n), np.zeros((n, n_draws))
    est[hit] = own[0][hit] - record.estimate[hit] + corrections["corr_px"] * pixel_area_ha
    draws[hit] = own[1][hit] - record.draws[hit] + corrections["corr_draws_px"] * pixel_area_ha
    per_stage = {}
    for name in stages:
        s_est, s_draws = np.zeros(n), np.zeros((n, n_draws))
        s_est[hit] = est[hit] - corrections[f"stage_{name}_px"] * pixel_area_ha
        s_draws[hit] = draws[hit] - corrections[f"stage_{name}_draws_px"] * pixel_area_ha
        per_stage[name] = (s_est, s_draws)
    return (est, draws), per_stage


def record_differences(matrices: Sequence[sp.csr_matrix], scen_sums: Sequence[tuple[np.ndarray, ...]],
                       base_draws: Sequence[ZoneDraws], fn_b: PixelFn, fn_s: PixelFn, base_active: np.ndarray,
                       scen_active: np.ndarray, touched: np.ndarray, stages: Mapping[str, np.ndarray],
                       pixel_area_ha: float, chunk_pixels: int = 16_384, width: int | None = None,
                       ) -> tuple[list[ZoneSums], dict[str, list[ZoneSums]]]:
    """Per level the zone sums of the difference scenario − baseline, and of each growth stage's, from the
    scenario's zone sums ``scen_sums`` (over ``scen_active``) and the baseline's record ``base_draws`` (over
    ``base_active``) instead of drawing the baseline over every pixel again.

    The difference sums D = Σ_A nan0(s − b) over A = ``base_active`` ∪ ``scen_active`` (what
    :func:`greensink.change.difference_function` summed by :func:`~greensink.aggregate.zone_draw_sums` gives)
    equal S − B + Σ_A [nan0(s − b) − 1_S nan0(s) + 1_B nan0(b)], S and B the two sums, 1_S and 1_B the pixel
    sets; the bracket is 0 wherever s and b are the same numbers (or both NaN), i.e. outside ``touched``
    (:func:`touched_pixels`), so it is evaluated there only (:func:`difference_corrections`). A stage's difference
    Σ_A g·nan0(s − b), g its growth share (flat grid, 1 where no change touched the pixel:
    :func:`greensink.scenario.burn.growth_map`), is D − Σ_touched (1 − g)·nan0(s − b)
    (:func:`differences_from_record`). A zone whose coverage holds no touched pixel differs by exactly 0.
    Summation order differs from the direct sums, so results agree with them to rounding (about 1e-12 of
    the zone's stock). ``width``: the grid's columns, so that the touched pixels are drawn in chunks of a dense
    chunk's rows (:func:`row_chunks`: their noise streams span those rows, not the grid's height)."""
    corrections = difference_corrections(matrices, fn_b, fn_s, base_active, scen_active, touched, stages,
                                         base_draws[0].draws.shape[1], chunk_pixels, width=width)
    diffs: list[ZoneSums] = []
    per_stage: dict[str, list[ZoneSums]] = {name: [] for name in stages}
    for own, record, corr in zip(scen_sums, base_draws, corrections, strict=True):
        diff, stage = differences_from_record(own, record, corr, list(stages), pixel_area_ha)
        diffs.append(diff)
        for name in stages:
            per_stage[name].append(stage[name])
    return diffs, per_stage


def _interval(est: np.ndarray, draws: np.ndarray, interval_pct: float) -> tuple[np.ndarray, np.ndarray]:
    qlo, qhi = interval_quantiles(interval_pct)
    lo, hi = np.quantile(draws, [qlo, qhi], axis=-1) if draws.shape[-1] > 1 else (est, est)
    return np.minimum(lo, est), np.maximum(hi, est)


@dataclass
class LevelSums:
    """One level's zone sums a scenario's zone table is finished from (:func:`finish_scenario_tables`): ``sums`` the
    scenario's pixel sums (:func:`greensink.zone_sums.pixel_sums` of its layers) with ``changed_px`` (Σ coverage ×
    changed share), ``own`` its zone draw sums (estimate, draws[, per-source parts]), ``difference`` and ``stages``
    the zone sums of scenario − baseline and of each growth stage's, ``var_shares`` the per-source variance shares
    when the caller computed them (None: from ``own``'s parts). One entry per zone of the level."""

    sums: Mapping[str, np.ndarray]
    own: tuple[np.ndarray, ...]
    difference: ZoneSums
    stages: Mapping[str, ZoneSums]
    var_shares: Mapping[str, np.ndarray] | None = None


def check_baseline_draws(records: Sequence[ZoneDraws], scenario: Scenario, base_models: Mapping,
                         base_types: Sequence[str], setting: Setting) -> None:
    """Each level's record of the baseline's zone draws (rule aggregate's) checked against this run: level, zones,
    seed, year, draws, uncertainty settings and models (:meth:`greensink.aggregate.ZoneDraws.check`)."""
    n_draws = np.asarray(base_models["types"][base_types[0]]["bootstrap"]).shape[0]
    identity = ZoneDraws.identity(seed=setting.seed, year=scenario.baseline_year, n_draws=n_draws,
                                  uncertainty=setting.uncertainty, models_sha256=content_sha256(base_models))
    for level, z, record in zip(setting.levels, setting.zones, records, strict=True):
        record.check(level=level, zone_ids=z["zone_id"].to_numpy(), identity=identity)


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
    :func:`greensink.carbon.type_fill` over the whole grid here (the same numbers, one more pass over the grid).

    The zone sums over the whole grid are finished into the tables by :func:`finish_scenario_tables`, as a tiled
    run's gather finishes the tiles' sums (:mod:`greensink.scenario.tiles`)."""
    pa = setting.grid.pixel_area_ha
    if baseline_draws is not None:
        check_baseline_draws(baseline_draws, scenario, base_models, base.types, setting)
    fn_b, fn_s, fill = paired_functions(base, base_models, scen, scen_models, scenario.baseline_year, ndvi_se, setting,
                                        fill=fill)
    active_b, active_s = typed_pixels(base.fractions), typed_pixels(scen.fractions)
    active = np.union1d(active_b, active_s)
    sums_s = zone_draw_sums(setting.matrices, fn_s, active_s, pa, chunk_pixels=16_384, progress=progress)
    growth = {name: growth_map(scenario, scen.last, years).ravel() for name, years in scenario.stages().items()}
    if baseline_draws is not None:
        sums_d, stage_sums = record_differences(setting.matrices, sums_s, baseline_draws, fn_b, fn_s, active_b, active_s,
                                                touched_pixels(scen, active), growth, pa, width=setting.grid.width)
    else:
        diff_fn = difference_function(fn_b, fn_s, 1.0)
        sums_d = zone_draw_sums(setting.matrices, diff_fn, active, pa, chunk_pixels=16_384)
        stage_sums = {name: zone_draw_sums(setting.matrices, scaled(diff_fn, g), active, pa, chunk_pixels=16_384)
                      for name, g in growth.items()}
    density = type_density(scen_models, scen.types, scen.fractions, state_predictors(scen_models, scen.types, scen))
    rasters = {name: scen.rasters[name] for name in ("ndvi", "fvc", "vegetation", "canopy", "tree_shrub")}

    def level_sums(i: int) -> LevelSums:
        m = setting.matrices[i]
        sums = pixel_sums(m, rasters, density, scen.fractions)
        sums["changed_px"] = zonal_sum(m, scen.changed)
        return LevelSums(sums=sums, own=sums_s[i], difference=sums_d[i],
                         stages={name: s[i] for name, s in stage_sums.items()})

    return finish_scenario_tables(scenario, scen.types, scen_models, scen.greenspace, scen.type_column, fill,
                                  baseline_tables, goals, setting,
                                  [functools.partial(level_sums, i) for i in range(len(setting.levels))])


def finish_scenario_tables(scenario: Scenario, types: Sequence[str], scen_models: Mapping, greenspace: gpd.GeoDataFrame,
                           type_column: str, fill: Mapping[str, Mapping], baseline_tables: Mapping[str, pd.DataFrame],
                           goals: Sequence[dict], setting: Setting,
                           level_sums: Sequence[LevelSums | Callable[[], LevelSums]],
                           ) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """The tables and totals of :func:`scenario_tables` from each level's zone sums ``level_sums`` (a
    :class:`LevelSums`, or a function of no argument returning it, called when the level's turn comes, so one
    level's sums are in memory at a time): the scenario's ``types`` (the run's and its pseudo-types), models,
    typed polygons ``greenspace`` (``type_column``) and the baseline's ``fill``; the vector overlays (green-space
    land, parks, people, park service) are made here. ``setting``'s matrices are not used."""
    grid, pa = setting.grid, setting.grid.pixel_area_ha
    col = type_column
    codes = greenspace[col].astype(str) if col in greenspace.columns else pd.Series([], dtype=str)
    parks = greenspace.geometry.values[codes.isin(list(setting.park_types)).to_numpy()]
    info = {"fill_t_ha": {t: f["fill_t_ha"] for t, f in fill.items()},
            "tiers": {t: scen_models["types"][t].get("tier", 0) for t in types},
            "pools": {t: scen_models["types"][t].get("pools") or {} for t in types}}
    pseudo = scenario.pseudo_types()
    pop, pop_col, homes = setting.population, setting.population_column, setting.residential
    with_people = pop is not None and bool(pop_col)
    # the plan's own parks' service area overlaid with the homes and the people once for every level (a plan may
    # add or build on parks, so this is the scenario's overlay, not the baseline year's); none without typed land
    served = service_overlay(parks, setting.park_service, pop if with_people else None, pop_col, homes) \
        if setting.typed_land else None
    tables, totals = {}, []
    for i, (level, z) in enumerate(zip(setting.levels, setting.zones, strict=True)):
        ls = level_sums[i]() if callable(level_sums[i]) else level_sums[i]
        # people per zone once per level: the table's population and the park-service coverage share it
        zone_people = population_in_zones(z.geometry.values, pop, pop_col) if with_people else None
        table = zone_table_from_sums(z, ls.sums, grid, types, ls.own, greenspace, col, setting.park_types, pop, pop_col,
                                     setting.interval_pct, min_observed_pct=setting.min_observed_pct,
                                     typed_land=setting.typed_land, people=zone_people, var_shares=ls.var_shares,
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
        table["changed_area_ha"] = ls.sums["changed_px"] * pa
        table["baseline_carbon_t"] = base_rows["carbon_t"].to_numpy(dtype=float)
        unknown = ~np.isfinite(table["carbon_t"].to_numpy(dtype=float)) | ~np.isfinite(table["baseline_carbon_t"].to_numpy())
        est, draws = ls.difference[0], ls.difference[1]
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
        carbon_draws = ls.own[1].sum(axis=0)
        c_est = float(table["carbon_t"].sum())
        c_lo, c_hi = _interval(np.array(c_est), carbon_draws, setting.interval_pct)
        d_lo, d_hi = _interval(np.array(est.sum()), draws.sum(axis=0), setting.interval_pct)
        nan = float("nan")
        row.update(carbon_t=nan if any_unknown else c_est, carbon_t_lo=nan if any_unknown else float(c_lo),
                   carbon_t_hi=nan if any_unknown else float(c_hi),
                   baseline_carbon_t=nan if any_unknown else float(table["baseline_carbon_t"].sum()),
                   difference_t=nan if any_unknown else float(est.sum()),
                   difference_t_lo=nan if any_unknown else float(d_lo), difference_t_hi=nan if any_unknown else float(d_hi))
        for name, sums in ls.stages.items():
            s_est, s_draws = sums[0], sums[1]
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
