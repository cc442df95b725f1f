"""One runner per scenario rule (what the rule scripts call, one each): the rule's input paths, output paths
and params in; the files read, the stage of :mod:`greensink.scenario` called, the outputs written through
:mod:`greensink.io`. Not re-exported by ``greensink.scenario`` (the runners need the raster stack, the config
checks do not).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.windows import Window

from greensink import io, targets
from greensink.aggregate import ZoneDraws
from greensink.carbon import carbon_map_streamed, read_fill, run_carbon_mosaic
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.logs import progress
from greensink.provenance import scenario_record
from greensink.scenario.burn import Burned, burn, burn_window, plan_burn, scenario_models, window_coverage
from greensink.scenario.demo import demo_scenario_layers
from greensink.scenario.files import (
    BASELINE_KEYS,
    RASTER_KEYS,
    SCENARIO_KEYS,
    landscape_strips,
    read_burned,
    read_landscape,
    read_landscape_polygons,
    read_landscape_window,
    read_plan,
    thresholds,
    write_burned,
    write_burned_rasters,
    write_plan,
)
from greensink.scenario.plan import read_change_layer, scenarios
from greensink.scenario.states import weight_specs, weighted_means
from greensink.scenario.tables import Setting, scenario_tables, summary_table
from greensink.scenario.tiles import write_scenario_tables
from greensink.tiling import mosaic_files
from greensink.uncertainty import noise_spec, settings
from greensink.units import m2_to_ha

log = logging.getLogger(__name__)

RASTER_BASELINE = tuple(k for k in BASELINE_KEYS if k != "greenspace")  # the baseline's rasters scenario_plan reads

PathLike = str | Path


def run_demo_scenario_layers(parcels: PathLike, districts: PathLike, greenspace: PathLike, out: Sequence[PathLike], *,
                             names: Sequence[str]) -> dict[str, gpd.GeoDataFrame]:
    """Rule demo_scenario_layers: the demo city's scenario layers (:func:`greensink.scenario.demo.demo_scenario_layers`)
    from its ``parcels``, ``districts`` and ``greenspace`` polygons, the layer of each of ``names`` written to the
    GeoPackage of ``out`` at the same position (no CSV twin). Returns the layers by name."""
    layers = demo_scenario_layers(io.read_vector(parcels), io.read_vector(districts), io.read_vector(greenspace))
    for name, path in zip(names, out, strict=True):
        io.write_table(path, layers[name], csv=False)
        log.info("%s: %d parcel(s), %.2f ha", name, len(layers[name]), m2_to_ha(layers[name].area.sum()))
    return layers


def run_scenario_inputs(changes: Sequence[PathLike], grid_json: PathLike, baseline: Mapping[str, PathLike],
                        vegetation_stats: PathLike, models: PathLike, out: Mapping[str, PathLike], models_out: PathLike,
                        record_out: PathLike, *, scenario: Mapping[str, Any], years: Sequence[int], types: Sequence[str],
                        type_column: str, typed_land: bool, vegetation: Mapping[str, Any], compress: str = "zstd",
                        ) -> dict[str, Any]:
    """Rule scenario_inputs: the changes of ``scenario`` (its config entry, checked against ``years``) burned into
    copies of the baseline year's layers (:func:`greensink.scenario.burn.burn`).

    ``baseline`` maps each of :data:`~greensink.scenario.files.BASELINE_KEYS` to the baseline year's file;
    ``vegetation_stats`` is its vegetation.json (FVC endmembers), ``models`` its models.json; ``changes`` are
    the scenario's change layers (for their checksums). Writes the scenario's layers to ``out`` (the keys of
    :data:`~greensink.scenario.files.SCENARIO_KEYS`), its models (the baseline's and the planned-density
    pseudo-types) to ``models_out`` and inputs.json to ``record_out`` (returned)."""
    (plan,) = scenarios({"years": list(years), "scenarios": [scenario]})
    grid = Grid.read(grid_json)
    base = read_landscape({k: baseline[k] for k in BASELINE_KEYS}, types, type_column)
    layers = [read_change_layer(c, grid.crs, f"scenario {plan.name} change {k + 1} ({c.kind})", grid.bounds)
              for k, c in enumerate(plan.changes)]
    burned = burn(base, plan, layers, grid, thresholds(vegetation, io.read_json(vegetation_stats)), typed_land)
    write_burned({k: out[k] for k in SCENARIO_KEYS}, burned, grid, compress)
    io.write_json(models_out, scenario_models(io.read_json(models), plan))
    record = scenario_record(scenario, changes, scenario=plan.to_json(), types=burned.types, changes=burned.states)
    io.write_json(record_out, record)
    for k, s in enumerate(burned.states):
        log.info("scenario %s change %d (%s, %s): %.2f ha of polygons, state %s", plan.name, k + 1, s["kind"], s["path"],
                 s["area_ha"], {key: round(v, 4) for key, v in s["state"].items()})
    log.info("scenario %s: %.2f ha of pixels changed", plan.name, float(burned.changed.sum()) * grid.pixel_area_ha)
    return record


def run_scenario_plan(changes: Sequence[PathLike], grid_json: PathLike, baseline: Mapping[str, PathLike],
                      vegetation_stats: PathLike, models: PathLike, greenspace_out: PathLike, models_out: PathLike,
                      record_out: PathLike, plan_out: PathLike, *, scenario: Mapping[str, Any], years: Sequence[int],
                      types: Sequence[str], type_column: str, typed_land: bool, vegetation: Mapping[str, Any],
                      strip_pixels: int = 1 << 18) -> dict:
    """Rule scenario_plan (tiles.size_px set): the whole-scene part of rule scenario_inputs, once before its tiles
    (:func:`greensink.scenario.burn.plan_burn`): the states each change burns in (the whole baseline's means, read
    twice in strips of whole rows of about ``strip_pixels`` pixels: :func:`greensink.scenario.states.weighted_means`,
    the untiled rule's numbers bit for bit), the edited typed polygons (``greenspace_out``), the models
    (``models_out``), inputs.json (``record_out``, returned) as rule scenario_inputs writes them, and the plan the
    tile jobs burn (``plan_out``, :func:`greensink.scenario.files.write_plan`). Other arguments as
    :func:`run_scenario_inputs`. Memory: one strip of the baseline's rasters and the polygons, not the grid."""
    (plan,) = scenarios({"years": list(years), "scenarios": [scenario]})
    grid = Grid.read(grid_json)
    paths = {k: baseline[k] for k in BASELINE_KEYS}
    for key in RASTER_BASELINE:  # read in strips of the grid's rows: each must be on the grid
        got = io.read_grid(paths[key])
        if got.shape != grid.shape:
            raise InputDataError(f"{paths[key]}: {got.height} × {got.width} pixels, but the run's grid "
                                 f"(results/zones/grid.json) is {grid.height} × {grid.width}. Rerun the stage that "
                                 "wrote it.")
    base = read_landscape_polygons(paths, types, type_column)
    layers = [read_change_layer(c, grid.crs, f"scenario {plan.name} change {k + 1} ({c.kind})", grid.bounds)
              for k, c in enumerate(plan.changes)]
    specs = [s for change in plan.changes for s in weight_specs(change)]
    means = weighted_means(lambda: landscape_strips(paths, types, grid, strip_pixels), types, specs)
    burn_plan = plan_burn(base, plan, layers, thresholds(vegetation, io.read_json(vegetation_stats)), typed_land,
                          means=means)
    io.write_table(greenspace_out, burn_plan.output_greenspace(), csv=False)
    io.write_json(models_out, scenario_models(io.read_json(models), plan))
    record = scenario_record(scenario, changes, scenario=plan.to_json(), types=burn_plan.types,
                             changes=burn_plan.states)
    io.write_json(record_out, record)
    write_plan(plan_out, burn_plan)
    for k, s in enumerate(burn_plan.states):
        log.info("scenario %s change %d (%s, %s): %.2f ha of polygons, state %s", plan.name, k + 1, s["kind"], s["path"],
                 s["area_ha"], {key: round(v, 4) for key, v in s["state"].items()})
    return record


def run_scenario_inputs_tile(grid_json: PathLike, baseline: Mapping[str, PathLike], plan_json: PathLike,
                             out: Mapping[str, PathLike], *, scenario: Mapping[str, Any], years: Sequence[int],
                             types: Sequence[str], type_column: str, tile_id: str, size_px: int,
                             compress: str = "zstd") -> Burned:
    """Rule scenario_inputs_tile: the scenario's layers on tile ``tile_id`` of ``grid.tiles(size_px)``, the window
    of rule scenario_inputs' (:func:`greensink.scenario.burn.burn_window` of the plan ``plan_json`` written by rule
    scenario_plan on the baseline's window, the polygons' coverage by
    :func:`greensink.scenario.burn.window_coverage`), written to ``out`` (the keys of
    :data:`~greensink.scenario.files.RASTER_KEYS`) on the tile's sub-grid. ``baseline`` maps the raster keys of
    :data:`~greensink.scenario.files.BASELINE_KEYS` to the baseline year's files. Memory: the tile's layers and
    the coverage of the polygons crossing it."""
    (plan,) = scenarios({"years": list(years), "scenarios": [scenario]})
    grid = Grid.read(grid_json)
    tile = grid.tile(tile_id, size_px)
    base = read_landscape_window(baseline, types, type_column, Window(tile.col_off, tile.row_off, tile.width,
                                                                      tile.height))
    burn_plan = read_plan(plan_json, plan, grid.crs)
    burned = burn_window(base, burn_plan, lambda geoms: window_coverage(geoms, grid, tile))
    write_burned_rasters(out, burned, grid.subgrid(tile), compress)
    log.info("scenario %s tile %s: %.2f ha of pixels changed", plan.name, tile_id,
             float(burned.changed.sum()) * grid.pixel_area_ha)
    return burned


def run_scenario_inputs_mosaic(tiles: Mapping[str, Sequence[PathLike]], grid_json: PathLike,
                               out: Mapping[str, PathLike], *, size_px: int, compress: str = "zstd") -> float:
    """Rule scenario_inputs_mosaic: the scenario's whole-grid rasters (the keys of
    :data:`~greensink.scenario.files.RASTER_KEYS`, rule scenario_inputs' files) from their tile files ``tiles``
    (per key, every tile of ``grid.tiles(size_px)`` row-major; :func:`greensink.tiling.mosaic_files`), strip by
    strip. Returns the changed area (ha: the sum of the changed share)."""
    grid = Grid.read(grid_json)
    changed = 0.0

    def add_changed(_rows: slice, blocks: dict[str, np.ndarray]) -> None:
        nonlocal changed
        changed += float(blocks["changes"][0].sum(dtype=np.float64))

    mosaic_files({k: list(tiles[k]) for k in RASTER_KEYS}, {k: out[k] for k in RASTER_KEYS}, grid, size_px,
                 compress=compress, on_strip=add_changed, progress=progress(log, "scenario mosaic"))
    log.info("scenario mosaic of %d tiles of %d px: %.2f ha of pixels changed", len(tiles["ndvi"]), size_px,
             changed * grid.pixel_area_ha)
    return changed * grid.pixel_area_ha


def run_scenario_carbon(models: PathLike, predictors: Mapping[str, PathLike], fractions: PathLike, ndvi_se: PathLike,
                        carbon_out: PathLike, stats_out: PathLike, *, types: Sequence[str], year: int, seed: int,
                        interval_pct: float = 90.0, uncertainty: Mapping | None = None, compress: str = "zstd",
                        tile_id: str | None = None, size_px: int | None = None) -> dict:
    """Rule scenario_carbon: the scenario's carbon density map (t C/ha: estimate, lower, upper) by the streamed
    stage of rule carbon (:func:`greensink.carbon.carbon_map_streamed`), with the noise of the baseline ``year``
    (``ndvi_se`` the baseline's NDVI error), to ``carbon_out``; its statistics to ``stats_out`` (returned).

    ``tile_id`` (rule scenario_carbon_tile, tiles.size_px set): the map of that tile of ``grid.tiles(size_px)``
    only, the window of the whole grid's map (the draws keyed by the whole grid's pixels), and the tile's
    statistics with the use counts rule scenario_carbon_mosaic sums (:func:`greensink.carbon.run_carbon_mosaic`,
    as rule carbon_mosaic)."""
    record = io.read_json(models)
    grid = io.read_grid(fractions)
    tile = grid.tile(tile_id, size_px) if tile_id else None
    noise = noise_spec(uncertainty, record, seed=seed, year=year, resolution_m=grid.resolution_m)
    # the pixel band by the configured method (uncertainty.pixel_interval), as the baseline's rule carbon
    method = str(settings(uncertainty)["pixel_interval"])
    stats = carbon_map_streamed(record, types, fractions, dict(predictors), carbon_out, interval_pct=interval_pct,
                                compress=compress, progress=progress(log, "carbon"), noise=noise, ndvi_se_path=ndvi_se,
                                interval_method=method, tile=tile)
    io.write_json(stats_out, stats)
    log.info("scenario carbon%s: %.0f t C over %d typed pixels", f" tile {tile_id}" if tile else "", stats["total_t"],
             stats["typed_pixels"])
    return stats


def run_scenario_carbon_mosaic(tiles: Sequence[PathLike], tile_stats: Sequence[PathLike], grid_json: PathLike,
                               carbon_out: PathLike, stats_out: PathLike, *, size_px: int,
                               compress: str = "zstd") -> dict:
    """Rule scenario_carbon_mosaic: the scenario's carbon.tif and carbon.json of the whole grid from the tiles of rule
    scenario_carbon_tile, as rule carbon_mosaic makes a year's (:func:`greensink.carbon.run_carbon_mosaic`: the
    untiled rule scenario_carbon's files). Returns the statistics."""
    stats = run_carbon_mosaic(list(tiles), list(tile_stats), grid_json, carbon_out, stats_out, size_px=size_px,
                              compress=compress)
    log.info("scenario carbon mosaic: %.0f t C over %d typed pixels", stats["total_t"], stats["typed_pixels"])
    return stats


def run_scenario_zones(zones: Sequence[PathLike], coverage: Sequence[PathLike], grid_json: PathLike,
                       baseline: Mapping[str, PathLike], ndvi_se: PathLike, models: PathLike,
                       baseline_tables: Sequence[PathLike], scenario_layers: Mapping[str, PathLike],
                       scenario_models_json: PathLike, targets_path: PathLike, zones_out: Sequence[PathLike],
                       totals_out: PathLike, *, scenario: Mapping[str, Any], years: Sequence[int], levels: Sequence[str],
                       types: Sequence[str], greenspace: Mapping[str, Any] | None, park_service: Any,
                       interval_pct: float, min_observed_pct: float, uncertainty: Mapping | None, seed: int,
                       population: PathLike | None = None, population_config: Mapping[str, Any] | None = None,
                       residential: PathLike | None = None, baseline_draws: Sequence[PathLike] | None = None,
                       fill: PathLike | None = None) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """Rule scenario_zones: the scenario's zone tables at every level of ``levels`` and its difference from the
    baseline, from paired draws (:func:`greensink.scenario.tables.scenario_tables`).

    ``baseline`` maps :data:`~greensink.scenario.files.BASELINE_KEYS` to the baseline year's files (``ndvi_se``,
    ``models`` and the zone tables ``baseline_tables``, one per level, beside them); ``scenario_layers`` maps
    :data:`~greensink.scenario.files.SCENARIO_KEYS` to the scenario's (``scenario_models_json`` its models);
    ``targets_path`` the run's targets. Optional ``population`` (column ``population_config["column"]``) and
    ``residential`` polygons. ``baseline_draws``, one per level, are rule aggregate's records of the baseline year's
    zone draws (results/{year}/zones/{level}.draws.npz, :class:`greensink.aggregate.ZoneDraws`): the difference
    is then the scenario's sums minus these, and the baseline is drawn only where the changes touch it.
    ``fill``: the baseline year's fill of unobserved typed land (results/{year}/fill.json, rule fill), read by
    :func:`greensink.carbon.read_fill`, which refuses a file made from other models or for another year; None:
    computed here over the whole grid (:func:`greensink.carbon.type_fill`, the same numbers). Writes one
    GeoPackage (CSV and Parquet twins) per level to ``zones_out`` and the
    level totals to ``totals_out``; returns both."""
    (plan,) = scenarios({"years": list(years), "scenarios": [scenario]})
    gs = greenspace or {"type_column": "type", "park_types": []}
    base = read_landscape({k: baseline[k] for k in BASELINE_KEYS}, types, gs["type_column"])
    scen = read_burned({k: scenario_layers[k] for k in SCENARIO_KEYS}, plan.types(types), gs["type_column"])
    grid = Grid.read(grid_json)
    people = io.read_vector(population).to_crs(grid.crs) if population else None
    homes = io.read_vector(residential).to_crs(grid.crs) if residential else None
    setting = Setting(
        levels=list(levels), zones=[io.read_vector(path) for path in zones],
        matrices=[io.read_sparse(m) for m in coverage], grid=grid, park_types=gs["park_types"],
        park_service=park_service, population=people,
        population_column=population_config["column"] if population_config else None, residential=homes,
        interval_pct=interval_pct, min_observed_pct=min_observed_pct, typed_land=bool(greenspace),
        uncertainty=uncertainty, seed=seed)
    base_tables = {level: io.read_vector(path) for level, path in zip(levels, baseline_tables, strict=True)}
    records = [ZoneDraws.read(path) for path in baseline_draws] if baseline_draws is not None else None
    base_models = io.read_json(models)
    base_fill = read_fill(fill, models=base_models, year=plan.baseline_year) if fill is not None else None
    tables, totals = scenario_tables(plan, base, base_models, scen, io.read_json(scenario_models_json),
                                     io.read_raster(ndvi_se), base_tables, targets.read_targets(targets_path), setting,
                                     progress=progress(log, "zone draws"), baseline_draws=records, fill=base_fill)
    write_scenario_tables(plan, tables, totals, zones_out, totals_out)
    return tables, totals


def per_block(items: Sequence, n_blocks: int, what: str) -> list[list]:
    """A flat list made by ``expand`` over an outer key then an inner one, cut into ``n_blocks`` lists of the
    inner key, in order; its length must be a multiple of ``n_blocks``."""
    items = list(items)
    if n_blocks < 1 or len(items) % n_blocks:
        raise ValueError(f"{what}: {len(items)} paths do not split into {n_blocks} blocks (a list made by expand over "
                         "the outer key first is expected).")
    k = len(items) // n_blocks
    return [items[b * k : (b + 1) * k] for b in range(n_blocks)]


def run_scenario_summary(tables: Sequence[PathLike], totals: Sequence[PathLike], baseline_tables: Sequence[PathLike],
                         targets_path: PathLike, summary_out: PathLike, *, scenarios: Sequence[str],
                         baseline_years: Sequence[int], levels: Sequence[str]) -> pd.DataFrame:
    """Rule scenario_summary: which plan meets which target where (:func:`greensink.scenario.tables.summary_table`).

    ``tables`` is the flat scenario-major list of the scenarios' zone tables (for each of ``scenarios`` in turn,
    one per level of ``levels``), ``totals`` one totals.csv per scenario, ``baseline_tables`` the flat year-major
    list of the baseline years' zone tables (each of ``baseline_years``, one per level). Writes and returns
    the summary table."""
    entries = [({level: io.read_vector(path) for level, path in zip(levels, block, strict=True)}, io.read_csv(total))
               for block, total in zip(per_block(tables, len(scenarios), "scenario zone tables"), totals, strict=True)]
    baselines = {year: {level: io.read_vector(path) for level, path in zip(levels, block, strict=True)}
                 for year, block in zip(baseline_years, per_block(baseline_tables, len(baseline_years),
                                                                  "baseline zone tables"), strict=True)}
    summary = summary_table(entries, baselines, targets.read_targets(targets_path))
    io.write_csv(summary_out, summary)
    log.info("scenario summary: %d rows over %d scenario(s)", len(summary), len(scenarios))
    return summary
