"""Rule change's runner (:func:`run_change`): reads the years' inputs, runs the one pass, the attribution and
the tables, and writes sink.tif, attribution.tif, the zone tables, the lost patches and uncertainty.json."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from greensink.carbon import unserved_function
from greensink.change.attribution import ATTRIBUTION_PARTS, attribute_change
from greensink.change.sink import sink_pass
from greensink.change.tables import change_table, observation_shares, partly_observed_warning
from greensink.grid import Grid
from greensink.units import ha_to_m2

log = logging.getLogger(__name__)


def run_change(
    inp: Mapping[str, object], out: Mapping[str, object], *, y0: int, y1: int, levels: Sequence[str],
    types: Sequence[str], predictors: Sequence[str], typed_land: bool, interval_pct: float = 90.0,
    uncertainty: Mapping | None = None, seed: int = 0, compress: str = "zstd", no_net_loss_tolerance_pixels: float = 0.5,
    min_observed_pct: float = 50.0,
) -> None:
    """Rule change (workflow/rules/change.smk): the sink between ``y0`` and ``y1`` per pixel and zone with its
    interval, the attribution of each zone's stock change, no net loss of carbon-sink space and the lost
    patches. ``inp`` and ``out`` are the rule's named inputs and outputs (paths; lists per level in ``levels``
    order, predictor lists in ``predictors`` order).

    Each year is evaluated with its own type fractions (``fractions0`` / ``fractions1``) over the pixels typed
    in either year. The sink map and the zone sums come from one pass over those pixels (:func:`sink_pass`:
    each year's draws evaluated once per chunk), which keeps the per-pixel estimates from which
    :func:`attribute_change` works without evaluating the models again and without draws.

    Partial observation: the zone sums are also taken over the typed land observed in both years
    (:func:`observation_shares`; the same pass, the same draws), giving ``sink_observed_t_yr`` and ``observed_both_pct``; zones below ``min_observed_pct`` of it
    have an unknown sink, and the partly observed zones are named in a warning (:func:`partly_observed_warning`)."""
    from greensink import io as gio
    from greensink.carbon import pixel_function, typed_pixels
    from greensink.comparability import add_columns as add_comparability
    from greensink.model import used_predictors
    from greensink.uncertainty import Noise, noise_spec, paired_residual_field, residual_year_correlation

    uncertainty = uncertainty or {}
    grid = Grid.read(inp["grid"])
    bands = list(range(1, len(types) + 1))
    fractions0 = gio.read_raster(inp["fractions0"], bands=bands)  # (types, rows, cols), also for one type
    fractions1 = gio.read_raster(inp["fractions1"], bands=bands)
    active = np.union1d(typed_pixels(fractions0), typed_pixels(fractions1))  # typed land of either year
    models0, models1 = gio.read_json(inp["models0"]), gio.read_json(inp["models1"])
    rho = residual_year_correlation(models0, models1, uncertainty)
    log.info("residual year-to-year correlation %.3f (%s, %d remeasured plots; %.3f before the plots' measurement "
             "error came off)", rho["rho"], rho["method"], rho["n"], rho.get("rho_uncorrected", rho["rho"]))
    # one residual field for both years (variogram of both years' plots): the years differ by 1 - rho, not by two fits
    field = paired_residual_field(models0, models1, uncertainty)
    if field is not None:
        log.info("residual field of the sink: nugget %.4g (fitted %.4g, less measurement %.4g), partial sill %.4g, "
                 "range %.0f m", field.nugget, field.nugget_plots or 0.0, field.measurement.get("var", 0.0), field.psill,
                 field.range_m)

    def year_functions(models, year, fractions, predictor_paths, se_path):
        """The year's pixel function as mapped (NaN where unobserved) and as the zone tables sum it (filled),
        both with the year's error sources, the residual field correlated between the years by rho."""
        paths = dict(zip(predictors, predictor_paths, strict=True))
        rasters = {name: gio.read_raster(paths[name]) for name in used_predictors(models, types)}
        spec = noise_spec(uncertainty, models, seed=seed, year=year, resolution_m=grid.resolution_m, rho=rho["rho"],
                          paired=True)
        spec.width, spec.height = grid.width, grid.height
        if spec.residual is not None and field is not None:
            spec.residual = field
        noise = Noise(spec, np.asarray(models["types"][types[0]]["bootstrap"]).shape[0])
        layers = {**rasters, "ndvi_se": gio.read_raster(se_path)} if spec.ndvi else rasters
        unserved = unserved_function(models, types, fractions, layers)
        fill = year_fill(models, types, fractions, rasters, unserved, active)
        if fill is None:
            log.info("%d: every pixel typed in %d or %d is served by a model: no fill of unobserved land needed",
                     year, y0, y1)
        return (pixel_function(models, types, fractions, layers, fill=fill, noise=noise, sources=True), unserved)

    sum0, unserved0 = year_functions(models0, y0, fractions0, inp["predictors0"], inp["ndvi_se0"])
    sum1, unserved1 = year_functions(models1, y1, fractions1, inp["predictors1"], inp["ndvi_se1"])
    matrices = [gio.read_sparse(path) for path in inp["coverage"]]
    # one pass: each year's draws once per chunk, for the map (NaN where unobserved), the zone sums (filled) and
    # the zone sums over the typed land the maps observed in both years
    res = sink_pass(sum0, sum1, unserved0, unserved1, y1 - y0, active, grid.shape, matrices, grid.pixel_area_ha,
                    interval_pct)
    gio.write_raster(out["sink"], res.sink, grid, band_names=["sink_t_ha_yr", "sink_t_ha_yr_lo", "sink_t_ha_yr_hi"],
                     compress=compress, tags={"units": "t C/ha/yr", "years": f"{y0}-{y1}"})
    both, shares = observation_shares(matrices, active, res.map0, res.map1, fractions0, fractions1,
                                      grid.pixel_area_ha)
    log.info("typed land observed clear in both %d and %d: %d of %d pixels", y0, y1, int(both.sum()), both.size)
    sums = res.sums
    for share, s_both in zip(shares, res.sums_both, strict=True):
        share["sums"] = s_both

    # attribution from the estimates of the pass above (the zone tables' filled stocks; the map's for the raster)
    zones = [gio.read_vector(path) for path in inp["zones"]]
    att = attribute_change(gio.read_raster(inp["classes0"]), gio.read_raster(inp["classes1"]), fractions0, fractions1,
                           active, res.stock0, res.stock1, res.map0, res.map1, matrices,
                           zones, levels, grid, y0, y1, typed_land=typed_land)
    gio.write_raster(out["attribution"], att.raster, grid, band_names=["attribution_class", "stock_change_t_ha"],
                     compress=compress, tags={"years": f"{y0}-{y1}", "stock_change_t_ha": "t C/ha, stock y1 - stock y0",
                                              "attribution_class": "0 other/none, 1 gain, 2 loss, 3 growth, 4 conversion"})
    tolerance_ha = no_net_loss_tolerance_pixels * grid.pixel_area_ha
    for level, z, t0, t1, s, part, space, green, share, gpkg in zip(
            levels, zones, inp["tables0"], inp["tables1"], sums, att.parts, att.space, att.green, shares, out["zones"],
            strict=True):
        table = change_table(z, gio.read_vector(t0), gio.read_vector(t1), y0, y1, s, interval_pct,
                             no_net_loss_tolerance_ha=tolerance_ha, attribution=part, sink_space=space,
                             observed=share, min_observed_pct=min_observed_pct, green_compared=green)
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
    gio.write_table(out["lost_patches"], att.patches, layer="lost_patches", geometry_type="Polygon")
    log.info("lost patches %d-%d: %d polygons, %.2f ha of sink space, %.1f t C lost", y0, y1, len(att.patches),
             att.patches["area_ha"].sum(), att.patches["carbon_lost_t"].sum())
    gio.write_json(out["uncertainty"], {"year_correlation": rho, "years": [y0, y1],
                                        "residual_field": field.to_json() if field is not None else None})



def year_fill(models: Mapping, types: Sequence[str], fractions: np.ndarray, predictors: Mapping[str, np.ndarray],
              unserved: Callable[[np.ndarray], np.ndarray], active: np.ndarray) -> Mapping | None:
    """The fill of a year's unobserved typed land for its zone sums (:func:`greensink.carbon.fill_values` of
    :func:`greensink.carbon.type_fill` over ``predictors``), or None where no ``active`` pixel is unserved
    (``unserved``: the year's :func:`unserved_function` with the pixel function's layers). A pixel function fills
    only the land of a type it cannot serve, so without such a pixel it never reads the fill and gives the same
    numbers, bit for bit, without it; the fill's draws over every observed pixel of the type are then not computed
    (on a clear year they were about a fifth of the rule's time)."""
    from greensink.carbon import fill_values, iter_chunks, type_fill

    if not any(bool(unserved(idx).any()) for idx in iter_chunks(np.asarray(active))):
        return None
    return fill_values(type_fill(models, types, fractions, predictors, seed=int(models.get("seed", 0))))
