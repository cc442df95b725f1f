"""A scenario's zone tables in a tiled run (``tiles.size_px``): each tile's zone partial sums (rule
scenario_zones_tile, :func:`run_scenario_zones_tile`) and the tables finished from their sum (rule scenario_zones,
:func:`run_scenario_zones_gather`), as rule aggregate does for a year (:mod:`greensink.aggregate.tiles`).

Everything of a scenario's zone table that comes from pixels is a sum over pixels (:mod:`greensink.zone_sums`): the
scenario's pixel sums and zone draw sums (:func:`greensink.aggregate.zone_partial_sums` of its layers, its models and
the baseline year's fill and noise), the changed area (Σ coverage × changed share) and the sums over the pixels a
change touches that turn the scenario's draw sums minus the baseline's record into the difference's
(:func:`greensink.scenario.tables.difference_corrections`). A tile job computes them over its pixels only, with the
draws keyed by the whole grid's pixels, and writes them (:func:`greensink.zone_sums.write_tile_sums`,
results/scenarios/{scenario}/tiles/zones_{tile}.npz). The gather adds them up level by level
(:func:`greensink.aggregate.level_loader`, the per-source parts in zone blocks by
:func:`greensink.aggregate.shares_loader`), takes the baseline's sums from rule aggregate's record
(results/{year}/zones/{level}.draws.npz) and finishes the tables with the vector overlays (green-space land, parks,
people, park service) by :func:`greensink.scenario.tables.finish_scenario_tables`, the untiled rule's finish: no
raster and no coverage matrix is read there. The sums add in another order than the untiled rule's, so the tables
equal its tables to rounding (about 1e-12 relative).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.windows import Window

from greensink import io, logs, targets
from greensink.aggregate import (
    MIN_TILE_CHUNK_PIXELS,
    ZoneDraws,
    check_grid_shape,
    content_sha256,
    level_loader,
    shares_loader,
    tile_matrices,
    zone_partial_sums,
)
from greensink.aggregate.tiles import ZONE_BLOCK
from greensink.carbon import read_fill, typed_pixels
from greensink.coverage import zonal_sum
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.scenario.burn import Burned, Landscape, growth_map
from greensink.scenario.plan import Scenario, scenarios
from greensink.scenario.tables import (
    LevelSums,
    Setting,
    check_baseline_draws,
    difference_corrections,
    differences_from_record,
    finish_scenario_tables,
    paired_functions,
    scenario_noise,
    state_predictors,
    touched_pixels,
)
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask
from greensink.zone_sums import ZoneSums, read_tile_level, write_tile_sums

log = logging.getLogger(__name__)

PathLike = str | Path

WHAT = "scenario zone tile sums (.npz)"
FIX = ("It was written for other inputs or settings: delete the scenario's tile sums "
       "(results/scenarios/{scenario}/tiles/zones_*.npz) and run again (snakemake --forcerun scenario_zones_tile).")
RASTERS = ("ndvi", "fvc", "canopy", "height", "vegetation")  # a state's layers read per tile, beside its fractions
TOUCHED = "diff_zone_tiles"  # tile sums: per zone, 1 where the tile holds a pixel a change touches (added: tiles)


def read_window(paths: Mapping[str, PathLike], types: Sequence[str], window: Window) -> Landscape | Burned:
    """A state's layers on ``window`` (a tile), read as the whole rasters are read, without polygons: the baseline's
    (``paths`` with ``classes``, the year's vegetation_class.tif) or the scenario's (``tree_shrub`` and ``changes``,
    rule scenario_inputs' files: a :class:`~greensink.scenario.burn.Burned`)."""
    rasters = {name: io.read_raster(paths[name], window=window) for name in RASTERS}
    if "tree_shrub" in paths:
        rasters["tree_shrub"] = io.read_raster(paths["tree_shrub"], window=window)
    else:
        rasters["tree_shrub"] = class_mask(io.read_raster(paths["classes"], window=window),
                                           (CLASS_SHRUB, CLASS_TREE)).astype(np.float32)
    fractions = io.read_raster(paths["fractions"], bands=list(range(1, len(types) + 1)), window=window)
    land = {"rasters": rasters, "fractions": fractions.reshape(len(types), window.height, window.width),
            "types": list(types), "greenspace": gpd.GeoDataFrame(geometry=[]), "type_column": "type"}
    if "changes" not in paths:
        return Landscape(**land)
    changes = io.read_raster(paths["changes"], bands=[1, 2], window=window)
    return Burned(**land, changed=changes[0], last=(np.nan_to_num(changes[1]) - 1).astype(np.int16))


def tile_identity(plan: Scenario, grid: Grid, base_models: Mapping, scen_models: Mapping, n_draws: int, *, seed: int,
                  uncertainty: Mapping | None) -> dict:
    """What a tile's sums must share with the gather's run (header entries, checked by the gather): the grid's
    shape, the scenario, its models and growth stages, and the baseline draws' identity
    (:meth:`greensink.aggregate.ZoneDraws.identity`: seed, baseline year, draws, uncertainty settings, models)."""
    ident = ZoneDraws.identity(seed=seed, year=plan.baseline_year, n_draws=n_draws, uncertainty=uncertainty,
                               models_sha256=content_sha256(base_models))
    return {"grid_shape": [grid.height, grid.width], "scenario": plan.name, "stages": list(plan.stages()),
            "scenario_models_sha256": content_sha256(scen_models), **ident}


def run_scenario_zones_tile(coverage_tiles: Sequence[PathLike], grid_json: PathLike, baseline: Mapping[str, PathLike],
                            ndvi_se: PathLike, models: PathLike, fill_json: PathLike,
                            scenario_layers: Mapping[str, PathLike], scenario_models_json: PathLike, out: PathLike, *,
                            scenario: Mapping[str, Any], years: Sequence[int], tile_id: str, size_px: int,
                            levels: Sequence[str], types: Sequence[str], seed: int, uncertainty: Mapping | None = None,
                            chunk_pixels: int = 16_384) -> dict[str, ZoneSums]:
    """Rule scenario_zones_tile: one tile's zone sums of the scenario (module docstring) at every level, written to
    ``out`` (results/scenarios/{scenario}/tiles/zones_{tile}.npz) and returned by level.

    It reads the tile's window of the baseline year's rasters (``baseline``: ndvi, fvc, canopy, height, vegetation,
    classes, fractions; ``ndvi_se``) and of the scenario's (``scenario_layers``: rule scenario_inputs' ndvi, fvc,
    canopy, height, vegetation, tree_shrub, fractions, changes), the tile's coverage of each level
    (``coverage_tiles``, rule zone_coverage_tile's), both states' models and the baseline year's fill
    (``fill_json``, refused when made from other models or for another year). Memory: the tile's layers and the draw
    sums of the zones touching it."""
    (plan,) = scenarios({"years": list(years), "scenarios": [scenario]})
    g = Grid.read(grid_json)
    tile = g.tile(tile_id, size_px)
    window = Window(tile.col_off, tile.row_off, tile.width, tile.height)
    check_grid_shape(g, [baseline["ndvi"], baseline["fractions"], scenario_layers["ndvi"],
                         scenario_layers["fractions"]], tile_id)
    base_models = io.read_json(models)
    scen_models = io.read_json(scenario_models_json)
    ident_models = (content_sha256(base_models), content_sha256(scen_models))  # before anything reads the dicts
    fill = read_fill(fill_json, models=base_models, year=plan.baseline_year)
    scen = read_window(scenario_layers, plan.types(types), window)
    matrices = tile_matrices(coverage_tiles, levels, tile)
    setting = Setting(levels=list(levels), zones=[], matrices=matrices, grid=g, uncertainty=uncertainty, seed=seed)
    noise = scenario_noise(base_models, types, plan.baseline_year, setting)
    se = io.read_raster(ndvi_se, window=window) if noise.spec.ndvi else None
    offset = {"row0": tile.row_off, "col0": tile.col_off}
    # the noise streams are made a whole grid row at a time: chunks spanning as many grid rows as the untiled rule's
    chunk = max(MIN_TILE_CHUNK_PIXELS, chunk_pixels * tile.width // g.width)
    rasters = {name: scen.rasters[name] for name in ("ndvi", "fvc", "vegetation", "canopy", "tree_shrub")}
    parts = zone_partial_sums(matrices, rasters, scen.fractions, scen_models, scen.types,
                              state_predictors(scen_models, scen.types, scen), fill, g.pixel_area_ha, noise=noise,
                              ndvi_se=se, grid_width=g.width, chunk_pixels=chunk,
                              progress=logs.progress(log, f"scenario zone sums of tile {tile_id}"), **offset)
    # the two states' pixel functions made after the plan's sums, whose own pixel function is gone by then (two
    # functions alive at once, not three); the baseline's layers read only now, not held through the plan's sums
    # (the job's peak: 72 MiB on a 1024-px tile)
    base = read_window(baseline, types, window)
    fn_b, fn_s, _ = paired_functions(base, base_models, scen, scen_models, plan.baseline_year, se, setting, fill=fill,
                                     noise=noise, sources=False, **offset)
    active_b, active_s = typed_pixels(base.fractions), typed_pixels(scen.fractions)
    touched = touched_pixels(scen, np.union1d(active_b, active_s))
    growth = {name: growth_map(plan, scen.last, years_).ravel() for name, years_ in plan.stages().items()}
    # the touched pixels are scattered over the tile: chunks of the dense chunks' rows, or the noise streams of a
    # chunk span the tile's height (B × rows × columns float32: 600 MiB more on a 1024-px tile, benchmarks/README.md)
    corrections = difference_corrections(matrices, fn_b, fn_s, active_b, active_s, touched, growth, noise.n_draws,
                                         chunk, width=tile.width, max_rows=max(1, chunk // tile.width))
    for m, part, corr in zip(matrices, parts, corrections, strict=True):
        part.values["changed_px"] = zonal_sum(m, scen.changed)[part.rows]
        assert np.isin(corr["rows"], part.rows).all()  # a zone holding a touched pixel of the tile touches the tile
        at = np.searchsorted(part.rows, corr["rows"])
        part.values[TOUCHED] = np.zeros(part.rows.size)
        part.values[TOUCHED][at] = 1.0
        for name, v in corr.items():
            if name != "rows":
                part.values[name] = np.zeros((part.rows.size, *v.shape[1:]))
                part.values[name][at] = v
    sums = dict(zip(levels, parts, strict=True))
    ident = tile_identity(plan, g, base_models, scen_models, noise.n_draws, seed=seed, uncertainty=uncertainty)
    assert (ident["models_sha256"], ident["scenario_models_sha256"]) == ident_models
    write_tile_sums(out, sums, {"tile": tile_id, "window": [tile.row_off, tile.col_off, tile.height, tile.width],
                                **ident})
    log.info("scenario %s tile %s (%d × %d px, %d typed, %d touched by changes): %s zones touched", plan.name, tile_id,
             tile.height, tile.width, int(active_s.size), int(touched.size),
             ", ".join(f"{lv} {s.rows.size}" for lv, s in sums.items()))
    return sums


def level_sums(load, shares, record: ZoneDraws, stages: Sequence[str], pixel_area_ha: float) -> LevelSums:
    """One level's :class:`~greensink.scenario.tables.LevelSums` from its tile sums added up (``load``:
    :func:`greensink.aggregate.level_loader`; ``shares``: :func:`greensink.aggregate.shares_loader`) and the
    baseline's ``record``: the difference is the scenario's sums minus the record's, corrected by the touched
    pixels' sums on the zones some tile's touched pixels reach (:func:`differences_from_record`)."""
    sums = load()
    n, n_draws = record.estimate.shape[0], record.draws.shape[1]
    own = (sums.pop("estimate_t", np.zeros(n)), sums.pop("draws_t", np.zeros((n, n_draws))))
    hit = np.flatnonzero(sums.pop(TOUCHED, np.zeros(n)) > 0)
    corrections = {"rows": hit, **{name: sums.pop(name)[hit] for name in list(sums)
                                   if name in ("corr_px", "corr_draws_px") or name.startswith("stage_")}}
    difference, per_stage = differences_from_record(own, record, corrections, stages, pixel_area_ha)
    return LevelSums(sums=sums, own=own, difference=difference, stages=per_stage, var_shares=shares())


def run_scenario_zones_gather(zones: Sequence[PathLike], tile_sums: Sequence[PathLike], grid_json: PathLike,
                              models: PathLike, fill_json: PathLike, baseline_tables: Sequence[PathLike],
                              baseline_draws: Sequence[PathLike], scenario_greenspace: PathLike,
                              scenario_models_json: PathLike, targets_path: PathLike, zones_out: Sequence[PathLike],
                              totals_out: PathLike, *, scenario: Mapping[str, Any], years: Sequence[int], size_px: int,
                              levels: Sequence[str], types: Sequence[str], greenspace: Mapping[str, Any] | None,
                              park_service: Any, interval_pct: float, min_observed_pct: float,
                              uncertainty: Mapping | None, seed: int, population: PathLike | None = None,
                              population_config: Mapping[str, Any] | None = None, residential: PathLike | None = None,
                              zone_block: int = ZONE_BLOCK) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """Rule scenario_zones of a tiled run: the outputs of :func:`greensink.scenario.run.run_scenario_zones` from the
    tiles' sums ``tile_sums`` (every tile of ``grid.tiles(size_px)``, row-major; :func:`run_scenario_zones_tile`)
    and the baseline's zone draws ``baseline_draws`` (rule aggregate's records, one per level), level by level: no
    raster and no coverage matrix is read, memory grows with zones × draws. A tile file of another tile, scenario,
    grid, level list, zone count, models or draw identity is refused, naming the file and the field. The other
    arguments are :func:`~greensink.scenario.run.run_scenario_zones`'."""
    (plan,) = scenarios({"years": list(years), "scenarios": [scenario]})
    g = Grid.read(grid_json)
    tiles = g.tiles(size_px)
    if len(tile_sums) != len(tiles):
        raise InputDataError(f"The {g.height} × {g.width} grid in tiles of {size_px} px has {len(tiles)} tiles; got "
                             f"{len(tile_sums)} scenario zone tile sums. Run every scenario_zones_tile job of "
                             f"scenario {plan.name}.")
    base_models, scen_models = io.read_json(models), io.read_json(scenario_models_json)
    n_draws = np.asarray(base_models["types"][types[0]]["bootstrap"]).shape[0]
    ident = tile_identity(plan, g, base_models, scen_models, n_draws, seed=seed, uncertainty=uncertainty)
    fill = read_fill(fill_json, models=base_models, year=plan.baseline_year)
    gs = greenspace or {"type_column": "type", "park_types": []}
    scen_gs = io.read_vector(scenario_greenspace)
    if gs["type_column"] not in scen_gs.columns:  # a run without green-space types writes no polygons
        scen_gs[gs["type_column"]] = np.array([], dtype=object)
    setting = Setting(
        levels=list(levels), zones=[io.read_vector(path) for path in zones], matrices=[], grid=g,
        park_types=gs["park_types"], park_service=park_service,
        population=io.read_vector(population).to_crs(g.crs) if population else None,
        population_column=population_config["column"] if population_config else None,
        residential=io.read_vector(residential).to_crs(g.crs) if residential else None, interval_pct=interval_pct,
        min_observed_pct=min_observed_pct, typed_land=bool(greenspace), uncertainty=uncertainty, seed=seed)
    records = [ZoneDraws.read(path) for path in baseline_draws]
    check_baseline_draws(records, plan, base_models, types, setting)
    n_zones = [len(z) for z in setting.zones]
    read = {"fix": FIX, "what": WHAT}
    for t, path in zip(tiles, tile_sums, strict=True):  # every file's header first: a wrong file fails fast
        read_tile_level(path, levels, n_zones, levels[0], expect={"tile": t.id, **ident}, parts=True, zones=(0, 0),
                        **read)
    loaders = [functools.partial(level_sums, level_loader(tiles, tile_sums, levels, n_zones, lv, ident,
                                                           label="scenario zones gather", **read),
                                 shares_loader(tiles, tile_sums, levels, n_zones, lv, ident, zone_block, **read),
                                 record, list(plan.stages()), g.pixel_area_ha)
               for lv, record in zip(levels, records, strict=True)]
    base_tables = {level: io.read_vector(path) for level, path in zip(levels, baseline_tables, strict=True)}
    tables, totals = finish_scenario_tables(plan, plan.types(types), scen_models, scen_gs, gs["type_column"], fill,
                                            base_tables, targets.read_targets(targets_path), setting, loaders)
    write_scenario_tables(plan, tables, totals, zones_out, totals_out)
    return tables, totals


def write_scenario_tables(plan: Scenario, tables: Mapping[str, gpd.GeoDataFrame], totals: pd.DataFrame,
                          zones_out: Sequence[PathLike], totals_out: PathLike) -> None:
    """Write a scenario's zone tables (one GeoPackage per level, in order, with CSV and Parquet twins) and its level
    totals, and log one line per level (a warning where a level has no total: some zone's carbon unknown)."""
    for (level, table), gpkg in zip(tables.items(), zones_out, strict=True):
        io.write_table(gpkg, table, layer=level, parquet=True)
    io.write_csv(totals_out, totals)
    for row in totals.to_dict("records"):
        log.info("%s %s: %.1f t C, difference %.1f t C [%.1f, %.1f] from %.2f ha changed", plan.name, row["level"],
                 row["carbon_t"], row["difference_t"], row["difference_t_lo"], row["difference_t_hi"],
                 row["changed_area_ha"])
        if np.isnan(row["difference_t"]):
            log.warning("%s %s: some zone's carbon is unknown (NaN) in the baseline or the scenario: no level total",
                        plan.name, row["level"])
