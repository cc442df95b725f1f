"""Rule aggregate's runner (:func:`run_aggregate`): a year's inputs read, the zone sums over the whole grid and the
tables finished and written (:func:`finish_tables`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
from rasterio.windows import Window

from greensink import io as gio
from greensink import logs
from greensink.aggregate.draws import ZoneDraws, content_sha256
from greensink.aggregate.sums import draw_sums_of, zone_partial_sums
from greensink.aggregate.table import (
    DEFAULT_MIN_OBSERVED_PCT,
    unknown_carbon_warning,
    unobserved_zones_warning,
    zone_table_from_sums,
)
from greensink.carbon import log_fill, read_fill, type_fill
from greensink.grid import Grid
from greensink.indicators import DEFAULT_SERVICE_RULES, park_service_columns, service_overlay
from greensink.memory import small_pages
from greensink.model import used_predictors
from greensink.overlay import population_in_zones
from greensink.uncertainty import Noise, noise_spec
from greensink.uncertainty import settings as uncertainty_settings
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask

log = logging.getLogger(__name__)



@dataclass
class YearInputs:
    """What a year's aggregation reads besides the rasters: the models (and their digest, taken before anything
    annotates the dict), the fill of unobserved typed land, the noise of the draws and the number of draws."""

    models: dict
    models_digest: str
    fill: dict
    noise: Noise
    n_draws: int



def year_inputs(models: dict, grid: Grid, types: Sequence[str], *, year: int, seed: int,
                uncertainty: Mapping | None, fill: Mapping[str, Mapping] | None = None,
                fractions: np.ndarray | None = None, predictors: Mapping[str, np.ndarray] | None = None) -> YearInputs:
    """The year's models (the dict of models.json as read), fill and noise (:class:`YearInputs`). ``fill``: the
    year's fill as given; None computes it from ``fractions`` and ``predictors`` (the whole grid's,
    :func:`greensink.carbon.type_fill`)."""
    digest = content_sha256(models)  # before anything reads (or annotates) the dict
    if fill is None:
        fill = type_fill(models, types, fractions, predictors, seed=int(models.get("seed", 0)))
    spec = noise_spec(uncertainty, models, seed=seed, year=int(year), resolution_m=grid.resolution_m)
    spec.width, spec.height = grid.width, grid.height  # the whole grid's streams, also in a tile
    n_draws = np.asarray(models["types"][types[0]]["bootstrap"]).shape[0]
    return YearInputs(models=models, models_digest=digest, fill=dict(fill), noise=Noise(spec, n_draws), n_draws=n_draws)



def read_layers(rasters: Mapping[str, str | Path], fractions: str | Path, predictors: Mapping[str, str | Path],
                ndvi_se: str | Path | None, models: Mapping, types: Sequence[str], ndvi_error: bool,
                window: Window | None = None) -> tuple[dict, np.ndarray, dict, np.ndarray | None]:
    """(rasters, fractions, used predictors, ndvi_se or None) of the year on the grid or its ``window`` (a tile),
    read as :func:`greensink.io.read_raster` reads (a window holds the whole read's values at its pixels);
    ``ndvi_se`` is read where the draws have the NDVI error source (``ndvi_error``)."""
    layers = {name: gio.read_raster(rasters[name], window=window) for name in ("ndvi", "fvc", "vegetation", "canopy")}
    layers["tree_shrub"] = class_mask(gio.read_raster(rasters["classes"], window=window), (CLASS_SHRUB, CLASS_TREE))
    bands = list(range(1, len(types) + 1))
    frac = gio.read_raster(fractions, bands=bands, window=window)  # (types, rows, cols), also for one type
    used = {name: layers[name] if name in layers else gio.read_raster(predictors[name], window=window)
            for name in used_predictors(models, types)}
    se = gio.read_raster(ndvi_se, window=window) if ndvi_error and ndvi_se is not None else None
    return layers, frac, used, se




@small_pages()  # numpy's huge-page advice off (greensink.memory; benchmarks/README.md): same bytes, less system time
def run_aggregate(zones: Sequence[str | Path], coverage: Sequence[str | Path], grid: str | Path,
                  rasters: Mapping[str, str | Path], fractions: str | Path, greenspace: str | Path,
                  models_json: str | Path, predictors: Mapping[str, str | Path], ndvi_se: str | Path | None,
                  tables_out: Sequence[str | Path], *, year: int, levels: Sequence[str], types: Sequence[str],
                  greenspace_config: Mapping | None, seed: int, interval_pct: float = 90.0,
                  min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT, uncertainty: Mapping | None = None,
                  park_service: Sequence[Mapping] | None = None, population: str | Path | None = None,
                  population_config: Mapping | None = None, residential: str | Path | None = None,
                  chunk_pixels: int = 16_384, draws_out: Sequence[str | Path] | None = None,
                  fill_json: str | Path | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Rule aggregate (untiled): the zone tables of ``year`` at every level of ``levels``, written as GeoParquet
    to ``tables_out`` (one per level, in order; rule targets adds the targets) and returned by level.

    Inputs are paths: the zone layers ``zones`` and their coverage matrices ``coverage`` (one per level),
    the grid's ``grid.json``, the year's ``rasters`` (``ndvi``, ``fvc``, ``vegetation``, ``canopy`` and the
    structure ``classes``), the type ``fractions`` (one band per type of ``types``), the typed
    ``greenspace`` polygons, the year's ``models_json``, the model's ``predictors`` (name → raster; the
    rasters above are reused for their names), ``ndvi_se`` (the NDVI error source), and the optional
    ``population`` and ``residential`` polygons. ``greenspace_config`` is the config's greenspace section
    (None or empty: no green-space types, one pseudo-type over all land, whose green-space and park
    columns are NaN); ``population_config`` the population section (its ``column``); ``park_service`` the
    service-radius rules. Zone intervals hold every error source of ``uncertainty``
    (:func:`greensink.uncertainty.noise_spec` of ``seed`` and ``year``) summed from the same draws
    (:func:`zone_draw_sums`); unobserved typed land is filled with its type's mean density (``fill_json``, the
    year's results/{year}/fill.json of rule fill, refused when made from other models or for another year; None:
    computed here by :func:`greensink.carbon.type_fill`, as the rule fill does). The zone sums are
    :func:`zone_partial_sums` over the whole grid, the tables :func:`finish_tables`. With ``draws_out`` (one path
    per level, in order) each level's zone draw sums are also written as a :class:`ZoneDraws` record, which the
    scenario rules read for the baseline."""
    g = Grid.read(grid)
    models = gio.read_json(models_json)
    fill = read_fill(fill_json, models=models, year=year) if fill_json is not None else None
    ndvi_error = bool(uncertainty_settings(uncertainty)["ndvi"]["enabled"])
    layers, frac, used, se = read_layers(rasters, fractions, predictors, ndvi_se, models, types, ndvi_error)
    yi = year_inputs(models, g, types, year=year, seed=seed, uncertainty=uncertainty, fill=fill,
                     fractions=frac, predictors=used)
    log_fill(yi.fill, g.pixel_area_ha)
    zone_layers = [gio.read_vector(path) for path in zones]
    matrices = [gio.read_sparse(path) for path in coverage]
    parts = zone_partial_sums(matrices, layers, frac, yi.models, types, used, yi.fill, g.pixel_area_ha, noise=yi.noise,
                              ndvi_se=se, chunk_pixels=chunk_pixels, compact_rows=False,
                              progress=logs.progress(log, "zone draws"))
    del layers, frac, used, se
    sums = [p.dense() for p in parts]
    return finish_tables(zone_layers, sums, g, yi, greenspace, tables_out, year=year, levels=levels, types=types,
                         greenspace_config=greenspace_config, seed=seed, interval_pct=interval_pct,
                         min_observed_pct=min_observed_pct, uncertainty=uncertainty, park_service=park_service,
                         population=population, population_config=population_config, residential=residential,
                         draws_out=draws_out)



def finish_tables(zone_layers: Sequence[gpd.GeoDataFrame], sums: Sequence[Mapping[str, np.ndarray]], g: Grid,
                  yi: YearInputs, greenspace: str | Path, tables_out: Sequence[str | Path], *, year: int,
                  levels: Sequence[str], types: Sequence[str], greenspace_config: Mapping | None, seed: int,
                  interval_pct: float = 90.0, min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT,
                  uncertainty: Mapping | None = None, park_service: Sequence[Mapping] | None = None,
                  population: str | Path | None = None, population_config: Mapping | None = None,
                  residential: str | Path | None = None,
                  draws_out: Sequence[str | Path] | None = None,
                  var_shares: Sequence[Callable[[], Mapping[str, np.ndarray]]] | None = None,
                  ) -> dict[str, gpd.GeoDataFrame]:
    """The zone tables (and :class:`ZoneDraws` records) of every level from its zones' summed pixel and draw sums
    ``sums`` (one dict per level, one entry per zone: the whole grid's, or a tiled run's gathered tile sums; or a
    function of no argument returning it, called when the level's turn comes, so only one level's sums need be in
    memory at a time): :func:`zone_table_from_sums` with the vector overlays (green-space land, parks, people,
    park service). ``var_shares`` (one function per level, or None): the level's per-source variance shares
    computed by the caller (:func:`zone_table_from_sums`' ``var_shares``). The other arguments are
    :func:`run_aggregate`'s."""
    models, fill = yi.models, yi.fill
    identity = ZoneDraws.identity(seed=seed, year=year, n_draws=yi.n_draws, uncertainty=uncertainty,
                                  models_sha256=yi.models_digest)
    typed = gio.read_vector(greenspace)
    typed_land = bool(greenspace_config)  # False: no green-space types, one pseudo-type over all land
    gs = greenspace_config or {"type_column": "type", "park_types": []}
    if gs["type_column"] not in typed.columns:
        typed[gs["type_column"]] = np.array([], dtype=object)
    parks = typed.geometry.values[typed[gs["type_column"]].astype(str).isin(gs["park_types"]).to_numpy()]
    type_info = {"fill_t_ha": {t: f["fill_t_ha"] for t, f in fill.items()},
                 "tiers": {t: models["types"][t].get("tier", 3 if models["types"][t].get("source") == "plots" else 2)
                           for t in types},
                 "pools": {t: models["types"][t].get("pools") or {} for t in types}}
    people = gio.read_vector(population).to_crs(g.crs) if population_config and population else None
    pop_col = population_config["column"] if population_config else None
    homes = gio.read_vector(residential).to_crs(g.crs) if residential else None
    rules = park_service if park_service is not None else DEFAULT_SERVICE_RULES
    # the service area overlaid with the homes and the population once for every level (not per level)
    served = service_overlay(parks, rules, people, pop_col, homes) if typed_land else None
    out = {}
    for i, (level, z, path) in enumerate(zip(levels, zone_layers, tables_out, strict=True)):
        s = sums[i]() if callable(sums[i]) else sums[i]
        d = draw_sums_of(s, len(z))
        if draws_out is not None:
            ZoneDraws.from_sums(level, z["zone_id"].to_numpy(), d, identity).write(draws_out[i])
            log.info("%s: zone draws written: %d draws per zone", level, yi.n_draws)
        shares = var_shares[i]() if var_shares is not None else None
        # people per zone once per level: the table's population and the park-service coverage share it
        zone_people = population_in_zones(z.geometry.values, people, pop_col) if people is not None and pop_col else None
        table = zone_table_from_sums(z, s, g, types, d, typed, gs["type_column"], gs["park_types"], people, pop_col,
                                     interval_pct, min_observed_pct=min_observed_pct, typed_land=typed_land,
                                     people=zone_people, var_shares=shares, **type_info)
        columns = (park_service_columns(z, parks, rules, people, pop_col, homes, overlay=served, people=zone_people)
                   if typed_land else {"park_service_population_pct": np.nan, "park_service_residential_pct": np.nan})
        for name, values in columns.items():
            table[name] = values  # NaN without green-space types: no parks known
        gio.write_geoparquet(path, table)
        if warning := unobserved_zones_warning(table, level):
            log.warning(warning)
        if warning := unknown_carbon_warning(table, level, min_observed_pct):
            log.warning(warning)
        log.info("%s: %d zones on %.1f ha, %.0f t C observed + %.0f t C filled (zone intervals in the table; %d zones NaN)",
                 level, len(table), table["area_ha"].sum(), table["carbon_t_observed"].sum(),
                 table["carbon_t_filled"].sum(), int(table["carbon_t"].isna().sum()))
        out[level] = table
        del s, d, shares  # the next level's sums replace this one's
    return out
