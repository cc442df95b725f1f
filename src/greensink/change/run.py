"""Rule change's runner (:func:`run_change`): reads the years' inputs, runs the one pass, the attribution and
the tables, and writes sink.tif, attribution.tif, the zone tables, the lost patches and uncertainty.json.

The work is split where a tiled run splits it (:mod:`greensink.change.tiles`): :func:`change_parts` is everything
per pixel and every zone sum over a window of the grid (the whole grid here, a tile in rule change_tile), and
:func:`write_change_outputs` the tables, the lost patches and uncertainty.json from the zone sums and the lost
pixels of the whole grid."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from rasterio.windows import Window

from greensink.carbon import unserved_function
from greensink.carbon.pixels import global_index
from greensink.change.attribution import ATTRIBUTION_PARTS, attribute_change, patches_from_lost
from greensink.change.sink import analytic_sink_pass, analytic_year_function, sink_pass
from greensink.change.tables import change_table, observation_shares, partly_observed_warning
from greensink.grid import Grid, Tile
from greensink.units import ha_to_m2

log = logging.getLogger(__name__)


#: The names of a level's zone sums in :class:`ChangeParts` (each (Z,), or (Z, B) for draws): the sink's estimate and
#: draws (filled), the same over the typed land observed in both years, the typed and observed areas, the attribution
#: parts, carbon-sink space and vegetated space; the sink's sources are ``sink_src_<source>``.
SPACE_SUMS = ("from_ha", "to_ha", "lost_ha", "gained_ha", "compared_ha", "grid_ha")
ZONE_SUMS = ("sink", "sink_draws", "both", "both_draws", "typed_ha", "observed_both_ha",
             *(f"att_{p}" for p in (*ATTRIBUTION_PARTS, "other_unobserved")),
             *(f"space_{k}" for k in SPACE_SUMS), *(f"green_{k}" for k in SPACE_SUMS))


@dataclasses.dataclass
class ChangeParts:
    """What :func:`change_parts` gives for a window of the grid: ``sink`` (3, rows, cols) and ``attribution``
    (2, rows, cols) float32 (the window of sink.tif and attribution.tif), per level ``sums`` (the zone sums named
    :data:`ZONE_SUMS` and ``sink_src_<source>``, every zone a row: the window's part of each zone's sum) and
    ``lost`` (:func:`~greensink.change.attribution.lost_pixels` of the window, ``index`` the whole grid's flat
    pixel index)."""

    sink: np.ndarray
    attribution: np.ndarray
    sums: list[dict[str, np.ndarray]]
    lost: dict[str, np.ndarray]
    sources: list[str]


def pair_uncertainty(models0: Mapping, models1: Mapping, uncertainty: Mapping | None) -> tuple[dict, object]:
    """The residual's year-to-year correlation of the pair and the residual field of both years' plots (None without
    one), logged (:func:`greensink.uncertainty.residual_year_correlation`, :func:`~greensink.uncertainty.paired_residual_field`)."""
    from greensink.uncertainty import paired_residual_field, residual_year_correlation

    rho = residual_year_correlation(models0, models1, uncertainty or {})
    log.info("residual year-to-year correlation %.3f (%s, %d remeasured plots; %.3f before the plots' measurement "
             "error came off)", rho["rho"], rho["method"], rho["n"], rho.get("rho_uncorrected", rho["rho"]))
    # one residual field for both years (variogram of both years' plots): the years differ by 1 - rho, not by two fits
    field = paired_residual_field(models0, models1, uncertainty or {})
    if field is not None:
        log.info("residual field of the sink: nugget %.4g (fitted %.4g, less measurement %.4g), partial sill %.4g, "
                 "range %.0f m", field.nugget, field.nugget_plots or 0.0, field.measurement.get("var", 0.0), field.psill,
                 field.range_m)
    return rho, field


def change_parts(
    inp: Mapping[str, object], grid: Grid, tile: Tile | None, matrices: Sequence, *, y0: int, y1: int,
    types: Sequence[str], predictors: Sequence[str], typed_land: bool, interval_pct: float = 90.0,
    uncertainty: Mapping | None = None, seed: int = 0, pair: tuple[dict, object] | None = None, draws: str = "exact",
) -> ChangeParts:
    """Everything of rule change that is per pixel or a zone sum, over the window ``tile`` of ``grid`` (None: the
    whole grid): the sink map and its zone sums (:func:`sink_pass`), the shares observed in both years, the
    attribution raster and zone parts, carbon-sink space and the lost pixels. ``inp`` holds the whole-grid rasters
    of rule change (only the window is read), ``matrices`` the coverage of the window (per level, every zone a row,
    a column per pixel of the window). ``pair`` is :func:`pair_uncertainty` (computed when None).

    The window's pixels are evaluated with the whole grid's pixel indices (noise streams keyed by the whole grid,
    as carbon tiles are), and the fill of unobserved land is the whole year's (``inp["fill0"]`` / ``["fill1"]``:
    results/{year}/fill.json; without them, the whole-grid run computes it from its own rasters): so a tile's map
    is the window of the whole map, value for value, and its zone sums are the tile's terms of the whole sums.

    ``draws`` (``change.draws``): ``exact`` draws every noise source per pixel (:func:`sink_pass`); ``analytic`` sums
    the per-pixel noise over zones analytically (:func:`~greensink.change.sink.analytic_sink_pass`; the whole grid
    only: a tile is refused)."""
    from greensink import io as gio
    from greensink.carbon import pixel_function, typed_pixels
    from greensink.model import used_predictors
    from greensink.uncertainty import Noise, noise_spec

    uncertainty = uncertainty or {}
    check_draws(draws, tiled=tile is not None)
    window = None if tile is None else Window(tile.col_off, tile.row_off, tile.width, tile.height)
    if tile is not None and not ("fill0" in inp.keys() and "fill1" in inp.keys()):
        raise ValueError("change_parts: a tile needs the whole years' fill (inputs fill0 and fill1: "
                         "results/{year}/fill.json); its own pixels would give another fill.")
    row0, col0 = (tile.row_off, tile.col_off) if tile is not None else (0, 0)
    shape = tile.shape if tile is not None else grid.shape
    sub = grid.subgrid(tile) if tile is not None else grid
    bands = list(range(1, len(types) + 1))
    fractions0 = gio.read_raster(inp["fractions0"], bands=bands, window=window)  # (types, rows, cols), also for one type
    fractions1 = gio.read_raster(inp["fractions1"], bands=bands, window=window)
    active = np.union1d(typed_pixels(fractions0), typed_pixels(fractions1))  # typed land of either year
    models0, models1 = gio.read_json(inp["models0"]), gio.read_json(inp["models1"])
    fills = [None, None]  # the whole years' fill (results/{year}/fill.json), checked against the year and its models
    if "fill0" in inp.keys() and "fill1" in inp.keys():
        from greensink.carbon import read_fill

        fills = [read_fill(inp["fill0"], models=models0, year=y0), read_fill(inp["fill1"], models=models1, year=y1)]
    rho, field = pair if pair is not None else pair_uncertainty(models0, models1, uncertainty)

    def year_functions(models, year, fractions, predictor_paths, se_path, whole_fill):
        """The year's pixel function as mapped (NaN where unobserved) and as the zone tables sum it (filled),
        both with the year's error sources, the residual field correlated between the years by rho."""
        paths = dict(zip(predictors, predictor_paths, strict=True))
        rasters = {name: gio.read_raster(paths[name], window=window) for name in used_predictors(models, types)}
        spec = noise_spec(uncertainty, models, seed=seed, year=year, resolution_m=grid.resolution_m, rho=rho["rho"],
                          paired=True)
        spec.width, spec.height = grid.width, grid.height  # the whole grid's pixels key the noise, in a tile too
        if spec.residual is not None and field is not None:
            spec.residual = field
        noise = Noise(spec, np.asarray(models["types"][types[0]]["bootstrap"]).shape[0])
        layers = {**rasters, "ndvi_se": gio.read_raster(se_path, window=window)} if spec.ndvi else rasters
        unserved = unserved_function(models, types, fractions, layers)
        fill = year_fill(models, types, fractions, rasters, unserved, active, fill=whole_fill)
        if fill is None:
            log.info("%d: every pixel typed in %d or %d is served by a model%s: no fill of unobserved land needed",
                     year, y0, y1, f" in tile {tile.id}" if tile is not None else "")
        if draws == "analytic":
            terms = analytic_year_function(models, types, fractions, layers, spec, noise.n_draws, fill=fill,
                                           row0=row0, col0=col0, grid_width=grid.width if tile is not None else None)
            return terms, unserved
        fn = pixel_function(models, types, fractions, layers, fill=fill, noise=noise, sources=True, row0=row0,
                            col0=col0, grid_width=grid.width if tile is not None else None)
        return fn, unserved

    sum0, unserved0 = year_functions(models0, y0, fractions0, inp["predictors0"], inp["ndvi_se0"], fills[0])
    sum1, unserved1 = year_functions(models1, y1, fractions1, inp["predictors1"], inp["ndvi_se1"], fills[1])
    # one pass: each year's draws once per chunk, for the map (NaN where unobserved), the zone sums (filled) and
    # the zone sums over the typed land the maps observed in both years
    if draws == "analytic":
        res = analytic_sink_pass(sum0, sum1, unserved0, unserved1, y1 - y0, active, shape, matrices,
                                 grid.pixel_area_ha, interval_pct, seed=seed, key=(y0, y1))
    else:
        res = sink_pass(sum0, sum1, unserved0, unserved1, y1 - y0, active, shape, matrices, grid.pixel_area_ha,
                        interval_pct)
    both, shares = observation_shares(matrices, active, res.map0, res.map1, fractions0, fractions1,
                                      grid.pixel_area_ha)
    log.info("typed land observed clear in both %d and %d%s: %d of %d pixels", y0, y1,
             f" (tile {tile.id})" if tile is not None else "", int(both.sum()), both.size)
    # attribution from the estimates of the pass above (the zone tables' filled stocks; the map's for the raster)
    att = attribute_change(gio.read_raster(inp["classes0"], window=window),
                           gio.read_raster(inp["classes1"], window=window), fractions0, fractions1,
                           active, res.stock0, res.stock1, res.map0, res.map1, matrices,
                           [], [], sub, y0, y1, typed_land=typed_land, patches=False)
    sums, sources = [], []
    for s, s_both, share, part, space, green in zip(res.sums, res.sums_both, shares, att.parts, att.space, att.green,
                                                   strict=True):
        level = {"sink": s[0], "sink_draws": s[1], "both": s_both[0], "both_draws": s_both[1],
                 "typed_ha": share["typed_ha"], "observed_both_ha": share["observed_both_ha"]}
        level |= {f"att_{k}": v for k, v in part.items()}
        level |= {f"space_{k}": space[k] for k in SPACE_SUMS} | {f"green_{k}": green[k] for k in SPACE_SUMS}
        if len(s) > 2:
            sources = list(s[2])
            level |= {f"sink_src_{k}": v for k, v in s[2].items()}
        sums.append(level)
    lost = att.lost
    if tile is not None:
        lost["index"] = global_index(lost["index"], tile.width, row0, col0, grid.width)
    return ChangeParts(res.sink, att.raster, sums, lost, sources)


#: The values of ``change.draws`` (config.schema.yaml).
DRAWS = ("exact", "analytic")


def check_draws(draws: str, tiled: bool = False) -> None:
    """A :class:`~greensink.errors.ConfigError` for a ``change.draws`` value this version cannot run: not one of
    :data:`DRAWS`, or ``analytic`` in a tiled run (a zone across tiles needs the residual field's covariance between
    tiles, which the tile jobs do not exchange)."""
    from greensink.errors import ConfigError

    if draws not in DRAWS:
        raise ConfigError(f"change.draws: {draws!r} is not one of {list(DRAWS)}. Set change.draws to exact or analytic.")
    if draws == "analytic" and tiled:
        raise ConfigError("change.draws: analytic cannot run with tiles.size_px set (a tiled run): a zone across "
                          "tiles needs the residual field's covariance between tiles, which this version does not "
                          "compute. Set change.draws: exact, or tiles.size_px: null.")


def level_sums(sums: Mapping[str, np.ndarray], sources: Sequence[str]) -> dict:
    """A level's zone sums of :class:`ChangeParts` as :func:`change_table` takes them: ``sink_sums``
    (estimate, draws[, sources]), ``observed`` (with its ``"sums"``), ``attribution``, ``sink_space`` and
    ``green_compared``."""
    sink = (sums["sink"], sums["sink_draws"])
    if sources:
        sink = (*sink, {k: sums[f"sink_src_{k}"] for k in sources})
    return {"sink_sums": sink,
            "observed": {"typed_ha": sums["typed_ha"], "observed_both_ha": sums["observed_both_ha"],
                         "sums": (sums["both"], sums["both_draws"])},
            "attribution": {k[4:]: v for k, v in sums.items() if k.startswith("att_")},
            "sink_space": {k: sums[f"space_{k}"] for k in SPACE_SUMS},
            "green_compared": {k: sums[f"green_{k}"] for k in SPACE_SUMS}}


def run_change(
    inp: Mapping[str, object], out: Mapping[str, object], *, y0: int, y1: int, levels: Sequence[str],
    types: Sequence[str], predictors: Sequence[str], typed_land: bool, interval_pct: float = 90.0,
    uncertainty: Mapping | None = None, seed: int = 0, compress: str = "zstd", no_net_loss_tolerance_pixels: float = 0.5,
    min_observed_pct: float = 50.0, draws: str = "exact",
) -> None:
    """Rule change (workflow/rules/change.smk): the sink between ``y0`` and ``y1`` per pixel and zone with its
    interval, the attribution of each zone's stock change, no net loss of carbon-sink space and the lost
    patches. ``inp`` and ``out`` are the rule's named inputs and outputs (paths; lists per level in ``levels``
    order, predictor lists in ``predictors`` order).

    Each year is evaluated with its own type fractions (``fractions0`` / ``fractions1``) over the pixels typed
    in either year. The sink map and the zone sums come from one pass over those pixels (:func:`sink_pass`:
    each year's draws evaluated once per chunk), which keeps the per-pixel estimates from which
    :func:`attribute_change` works without evaluating the models again and without draws (:func:`change_parts`
    over the whole grid; a tiled run does the same per tile, :mod:`greensink.change.tiles`).

    Partial observation: the zone sums are also taken over the typed land observed in both years
    (:func:`observation_shares`; the same pass, the same draws), giving ``sink_observed_t_yr`` and ``observed_both_pct``; zones below ``min_observed_pct`` of it
    have an unknown sink, and the partly observed zones are named in a warning (:func:`partly_observed_warning`)."""
    from greensink import io as gio

    grid = Grid.read(inp["grid"])
    pair = pair_uncertainty(gio.read_json(inp["models0"]), gio.read_json(inp["models1"]), uncertainty)
    matrices = [gio.read_sparse(path) for path in inp["coverage"]]
    parts = change_parts(inp, grid, None, matrices, y0=y0, y1=y1, types=types, predictors=predictors,
                         typed_land=typed_land, interval_pct=interval_pct, uncertainty=uncertainty, seed=seed, pair=pair,
                         draws=draws)
    del matrices
    write_change_rasters(out, parts.sink, parts.attribution, grid, y0, y1, compress)
    write_change_outputs(inp, out, parts.sums, parts.sources, parts.lost, pair, grid, y0=y0, y1=y1, levels=levels,
                         interval_pct=interval_pct, no_net_loss_tolerance_pixels=no_net_loss_tolerance_pixels,
                         min_observed_pct=min_observed_pct)


#: sink.tif's and attribution.tif's band names and tags (rule change, and rule change_tile's tile files)
SINK_BANDS = ["sink_t_ha_yr", "sink_t_ha_yr_lo", "sink_t_ha_yr_hi"]
ATTRIBUTION_BANDS = ["attribution_class", "stock_change_t_ha"]


def sink_tags(y0: int, y1: int) -> dict:
    return {"units": "t C/ha/yr", "years": f"{y0}-{y1}"}


def attribution_tags(y0: int, y1: int) -> dict:
    return {"years": f"{y0}-{y1}", "stock_change_t_ha": "t C/ha, stock y1 - stock y0",
            "attribution_class": "0 other/none, 1 gain, 2 loss, 3 growth, 4 conversion"}


def write_change_rasters(out: Mapping[str, object], sink: np.ndarray, attribution: np.ndarray, grid: Grid, y0: int,
                         y1: int, compress: str) -> None:
    """sink.tif and attribution.tif (``out["sink"]``, ``out["attribution"]``) on ``grid`` (a tile's sub-grid for its
    tile files), through :func:`greensink.io.raster_writer`, the writer of a tiled run's mosaics
    (:func:`greensink.tiling.mosaic_files`): the COG copy of a staged file computes the overviews as the mosaic's
    does, so the two files are the same bytes (written straight by the COG driver, a grid over 2048² px got other
    values in its coarser overviews)."""
    from greensink import io as gio

    for key, data, names, tags in (("sink", sink, SINK_BANDS, sink_tags(y0, y1)),
                                   ("attribution", attribution, ATTRIBUTION_BANDS, attribution_tags(y0, y1))):
        with gio.raster_writer(out[key], grid, len(names), band_names=names, compress=compress, tags=tags) as dst:
            dst.write(np.asarray(data, dtype=np.float32), 0)


def write_change_outputs(
    inp: Mapping[str, object], out: Mapping[str, object], sums: Sequence[Mapping[str, np.ndarray]],
    sources: Sequence[str], lost: Mapping[str, np.ndarray], pair: tuple[dict, object], grid: Grid, *, y0: int, y1: int,
    levels: Sequence[str], interval_pct: float, no_net_loss_tolerance_pixels: float, min_observed_pct: float,
    size_px: int | None = None,
) -> None:
    """The zone tables (``out["zones"]``, .csv and .parquet beside them), the lost patches and uncertainty.json from the
    whole grid's zone sums (per level, :class:`ChangeParts` ``sums``) and lost pixels (global flat indices,
    ascending); ``inp`` gives the zones, the years' indicator tables and the comparability record."""
    from greensink import io as gio
    from greensink.comparability import add_columns as add_comparability

    rho, field = pair
    zones = [gio.read_vector(path) for path in inp["zones"]]
    tolerance_ha = no_net_loss_tolerance_pixels * grid.pixel_area_ha
    for level, z, t0, t1, level_sum, gpkg in zip(levels, zones, inp["tables0"], inp["tables1"], sums, out["zones"],
                                                 strict=True):
        s = level_sums(level_sum, sources)
        table = change_table(z, gio.read_vector(t0), gio.read_vector(t1), y0, y1, s["sink_sums"], interval_pct,
                             no_net_loss_tolerance_ha=tolerance_ha, attribution=s["attribution"],
                             sink_space=s["sink_space"], observed=s["observed"], min_observed_pct=min_observed_pct,
                             green_compared=s["green_compared"])
        if warning := partly_observed_warning(table, level, min_observed_pct):
            log.warning(warning)
        if "comparability" in inp.keys():  # rule comparability's record: comparable, comparability_note
            table = add_comparability(table, gio.read_json(inp["comparability"]))
        gio.write_table(gpkg, table, layer=level, parquet=True)
        known = table["stock_change_t"].notna()
        log.info("%s %d-%d: stock change %.1f t C = gain %.1f + loss %.1f + growth %.1f + conversion %.1f + other %.1f "
                 "(%d of %d zones known); no net loss of sink space in %d of %d zones (%d unknown), %.2f ha lost, "
                 "%.2f ha gained", level, y0, y1,
                 *(table.loc[known, f"change_{c}_t" if c in ATTRIBUTION_PARTS else c].sum()
                   for c in ("stock_change_t", *ATTRIBUTION_PARTS)),
                 int(known.sum()), len(table), int(table["no_net_loss_sink_space"].sum()), len(table),
                 int(table["no_net_loss_sink_space"].isna().sum()), table["sink_space_lost_ha"].sum(),
                 table["sink_space_gained_ha"].sum())
        log.info("%s %d-%d: sink %.1f t C/yr [%.1f, %.1f]; no net loss of vegetated area in %d of %d zones (losses up "
                 "to %g m² tolerated)", level, y0, y1, table["sink_t_yr"].sum(), table["sink_t_yr_lo"].sum(),
                 table["sink_t_yr_hi"].sum(), int(table["no_net_loss"].sum()), len(table), ha_to_m2(tolerance_ha))
        log.info("%s %d-%d: %s", level, y0, y1,
                 ", ".join(f"{n} {c}" for c, n in table["sink_class"].value_counts().items()))
    patches = patches_from_lost(lost, zones, levels, grid, y0, y1, size_px)  # size_px: labelled tile by tile
    gio.write_table(out["lost_patches"], patches, layer="lost_patches", geometry_type="Polygon")
    log.info("lost patches %d-%d: %d polygons, %.2f ha of sink space, %.1f t C lost", y0, y1, len(patches),
             patches["area_ha"].sum(), patches["carbon_lost_t"].sum())
    gio.write_json(out["uncertainty"], {"year_correlation": rho, "years": [y0, y1],
                                        "residual_field": field.to_json() if field is not None else None})


def year_fill(models: Mapping, types: Sequence[str], fractions: np.ndarray, predictors: Mapping[str, np.ndarray],
              unserved: Callable[[np.ndarray], np.ndarray], active: np.ndarray,
              fill: Mapping | None = None) -> Mapping | None:
    """The fill of a year's unobserved typed land for its zone sums (:func:`greensink.carbon.fill_values` of
    :func:`greensink.carbon.type_fill` over ``predictors``), or None where no ``active`` pixel is unserved
    (``unserved``: the year's :func:`unserved_function` with the pixel function's layers). A pixel function fills
    only the land of a type it cannot serve, so without such a pixel it never reads the fill and gives the same
    numbers, bit for bit, without it; the fill's draws over every observed pixel of the type are then not computed
    (on a clear year they were about a fifth of the rule's time).

    ``fill``: the year's fill as :func:`greensink.carbon.type_fill` gives it, computed once for the year by rule
    fill (results/{year}/fill.json, :func:`greensink.carbon.read_fill`): used instead of computing it here from
    ``fractions`` and ``predictors`` (which in a tile job are the tile's alone); still None where no ``active``
    pixel is unserved."""
    from greensink.carbon import fill_values, iter_chunks, type_fill

    if not any(bool(unserved(idx).any()) for idx in iter_chunks(np.asarray(active))):
        return None
    if fill is not None:
        return fill_values(fill)
    return fill_values(type_fill(models, types, fractions, predictors, seed=int(models.get("seed", 0))))
