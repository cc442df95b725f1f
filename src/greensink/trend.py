"""Trend: the Theil–Sen slope of carbon stock over every reporting year, per pixel and per zone.

The Theil–Sen estimator of a series (t_k, v_k) is the median of the slopes (v_j − v_i)/(t_j − t_i) of all
pairs i < j (Sen 1968): robust to a single odd year (an outlier moves at most one side of the median) where
an ordinary least-squares slope follows it. A year without an observation (NaN) leaves its pairs out; a
series with fewer than two observed years has no slope (NaN, never 0).

Its interval comes from the paired draws of the years (:mod:`greensink.series`): draw b of every year
gives a series, that series its own Theil–Sen slope, and the slopes of the B draws their percentiles
(``carbon.interval_pct``); the interval is widened to hold the estimate where the draws' percentiles miss it
(as the change tables do). The draws hold the model and measurement error of each year's stock, not how the
years scatter about the trend line; Sen's (1968) interval of the slope (:func:`scatter_interval`) holds that,
and the trend's interval adds the two half-widths in quadrature on each side (:func:`combined_interval`).
The trend is significant where the combined interval excludes 0.

Per pixel: t C/ha/yr (results/change/trend/trend.tif). Per zone: t C/yr of the zone's stock, from the
draws summed over the zone (:func:`greensink.aggregate.zone_draw_sums`, the yearly zone tables' fill rule),
the years where the zone's published stock is unknown (NaN in results/{year}/zones/{level}.gpkg) left out.

Partial observation (docs/method.md, "Partial observation in the trend"), the change products' rule over
every year: the share of a zone's typed land observed in every year of the series (``observed_all_pct``)
and the trend over that land alone (``trend_observed_t_yr``, from the same draws, the coverage restricted to
it with :func:`greensink.change.masked_matrices`) are reported beside the filled trend; the zone is flagged
(``trend_partly_observed``) where some of its typed land was filled in some year, and below
``carbon.min_observed_pct`` its observed trend is NaN.

With three equally spaced years the Theil–Sen slope is the first-to-last slope exactly (the middle slope
of the three pairs is always the long one, the mean of the two short ones); with two years it is the pair's
sink. The estimator differs from the period pair from four years on, or with unequal spacing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.windows import Window

from greensink import io as gio
from greensink.aggregate import zone_draw_sums
from greensink.carbon import interval_quantiles, read_fill, typed_pixels, unserved_function
from greensink.change import (
    AREA_EPS_HA,
    PCT_EPS,
    masked_matrices,
    observation_shares,
    observed_share,
    partly_observed_zones,
    sink_classes,
)
from greensink.grid import Grid, Tile
from greensink.model import used_predictors
from greensink.series import (
    observed_every_year,
    residual_summary,
    series_function,
    series_residual_field,
    series_year_correlation,
    typed_share,
    year_pixel_function,
)
from greensink.uncertainty import u_pct
from greensink.units import CO2_PER_C

log = logging.getLogger(__name__)

TREND_BANDS = ["trend_t_ha_yr", "trend_t_ha_yr_lo", "trend_t_ha_yr_hi", "significant"]
CHUNK_PIXELS = 8_192  # pixels per chunk of the pixel trend (fewer when draws × year pairs are many)
CHUNK_BYTES = 64 << 20  # the pairwise slopes of a chunk's draws stay under this


def year_pairs(years: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (i, j) of every pair i < j of ``years`` and their gaps t_j − t_i; years must be distinct."""
    t = np.asarray(years, dtype=float)
    if t.ndim != 1 or np.unique(t).size != t.size or not np.isfinite(t).all():
        raise ValueError(f"years must be distinct finite numbers. Got {list(years)} instead.")
    i, j = np.triu_indices(t.size, k=1)
    return i, j, t[j] - t[i]


def nanmedian_last(a: np.ndarray) -> np.ndarray:
    """Median along the last axis ignoring NaN (the mean of the two middle values of an even count, as
    np.median), NaN where every value is NaN; one sort, no per-row loop and no warning."""
    a = np.asarray(a, dtype=float)
    if a.shape[-1] == 0:
        return np.full(a.shape[:-1], np.nan)
    s = np.sort(a, axis=-1)  # NaN sort last
    k = (~np.isnan(s)).sum(axis=-1)
    lo = np.take_along_axis(s, np.maximum((k - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(s, np.minimum(k // 2, a.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    return np.where(k > 0, (lo + hi) / 2.0, np.nan)


def theil_sen(values: np.ndarray, years: Sequence[float]) -> np.ndarray:
    """Theil–Sen slope along the last axis of ``values`` (..., Y) against ``years`` (Y,), in value units per
    year: the median of the pairwise slopes of the observed (non-NaN) years; NaN with fewer than two."""
    v = np.asarray(values, dtype=float)
    i, j, gap = year_pairs(years)
    if v.shape[-1] != len(years):
        raise ValueError(f"values must have one entry per year on the last axis ({len(years)}). Got {v.shape}.")
    return nanmedian_last((v[..., j] - v[..., i]) / gap)


def slope_interval(estimate: np.ndarray, draw_slopes: np.ndarray, interval_pct: float,
                   axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the central ``interval_pct`` % interval of the draws' slopes along ``axis``,
    widened to hold ``estimate``; NaN where the estimate is NaN."""
    est = np.asarray(estimate, dtype=float)
    d = np.moveaxis(np.asarray(draw_slopes, dtype=float), axis, 0)
    lo, hi = np.full(est.shape, np.nan), np.full(est.shape, np.nan)
    ok = np.isfinite(est)
    if ok.any():
        qlo, qhi = interval_quantiles(interval_pct)
        lo[ok], hi[ok] = np.quantile(d[:, ok], [qlo, qhi], axis=0)
        lo[ok], hi[ok] = np.minimum(lo[ok], est[ok]), np.maximum(hi[ok], est[ok])
    return lo, hi


def scatter_interval(values: np.ndarray, years: Sequence[float], interval_pct: float = 90.0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sen's (1968) nonparametric interval of the Theil–Sen slope along the last axis of ``values`` (..., Y):
    the sampling error of the slope given how the observed years scatter about it (Gilbert 1987, §16.5).

    With N pairwise slopes of n observed years sorted, C = z·sqrt(Var S) from the normal approximation of
    Kendall's S, Var S = [n(n − 1)(2n + 5) − Σ_ties k(k − 1)(2k + 5)]/18 (k the size of each group of equal
    values; the years are distinct), z the normal quantile of the central ``interval_pct`` %; the interval is
    the slopes of 1-based ranks round((N − C)/2) and round((N + C)/2) + 1, clipped to 1..N (scipy.stats.theilslopes
    computes the same). NaN with fewer than two observed years. With 2 years it is the one slope (no scatter to
    measure); with 3 years it is the smallest to the largest slope at 90 %: wide by design."""
    v = np.asarray(values, dtype=float)
    i, j, gap = year_pairs(years)
    if v.shape[-1] != len(years):
        raise ValueError(f"values must have one entry per year on the last axis ({len(years)}). Got {v.shape}.")
    slopes = np.sort((v[..., j] - v[..., i]) / gap, axis=-1)  # NaN last
    big_n = (~np.isnan(slopes)).sum(axis=-1)
    obs = ~np.isnan(v)
    n = obs.sum(axis=-1).astype(float)
    with np.errstate(invalid="ignore"):
        k = ((v[..., :, None] == v[..., None, :]) & obs[..., None, :]).sum(axis=-1).astype(float)  # tie group sizes
    ties = np.where(obs, (k - 1) * (2 * k + 5), 0.0).sum(axis=-1)  # Σ over groups of k(k − 1)(2k + 5)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    qlo, qhi = interval_quantiles(interval_pct)
    c = NormalDist().inv_cdf(qhi) * np.sqrt(np.maximum(var_s, 0.0))
    last = np.maximum(big_n - 1, 0)
    r_lo = np.clip(np.round((big_n - c) / 2.0).astype(int) - 1, 0, last)  # 0-based, as scipy
    r_hi = np.clip(np.round((big_n + c) / 2.0).astype(int), 0, last)
    lo = np.take_along_axis(slopes, r_lo[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(slopes, r_hi[..., None], axis=-1)[..., 0]
    ok = big_n > 0
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def combined_interval(estimate: np.ndarray, draws: tuple[np.ndarray, np.ndarray],
                      scatter: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The trend interval: on each side of ``estimate`` the draws' half-width (model and measurement error) and
    the scatter's (Sen's interval, the sampling error of the slope) added in quadrature; NaN where either is."""
    est = np.asarray(estimate, dtype=float)
    (dlo, dhi), (slo, shi) = draws, scatter
    lo = est - np.hypot(np.maximum(est - dlo, 0.0), np.maximum(est - slo, 0.0))
    hi = est + np.hypot(np.maximum(dhi - est, 0.0), np.maximum(shi - est, 0.0))
    return lo, hi


def significant(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """1.0 where the interval excludes 0 (lo > 0 or hi < 0), 0.0 where it holds 0, NaN where unknown."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return np.where(np.isfinite(lo) & np.isfinite(hi), ((lo > 0) | (hi < 0)).astype(float), np.nan)


def pixel_trend(series_fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], active: np.ndarray,
                shape: tuple[int, int], years: Sequence[int], interval_pct: float = 90.0, fill: float = 0.0,
                chunk_pixels: int = CHUNK_PIXELS) -> tuple[np.ndarray, dict]:
    """The per-pixel trend: (4, rows, cols) float32 with the bands :data:`TREND_BANDS` (t C/ha/yr; the flag
    1/0, NaN where the trend is unknown) and counts of the pixels by class.

    ``series_fn`` maps flat pixel indices (n,) to the years' estimates (Y, n) and draws (Y, B, n)
    (:func:`greensink.series.series_function`); ``active`` are the pixels it is evaluated at; every other
    pixel holds ``fill`` in every band (the carbon map's 0 of land without green space: no carbon, no change)."""
    ny = len(years)
    n_pairs = max(ny * (ny - 1) // 2, 1)
    out = np.full((4, shape[0] * shape[1]), fill, dtype=np.float32)
    step, start = min(int(chunk_pixels), 1024), 0
    while start < active.size:
        idx = active[start : start + step]
        start += idx.size
        est, draws = series_fn(idx)
        if est.shape[0] != ny:
            raise ValueError(f"the series function gave {est.shape[0]} years for {ny} years {list(years)}.")
        slope = theil_sen(est.T, years)
        draw_slopes = theil_sen(np.moveaxis(draws, 0, -1), years)  # (B, n)
        lo, hi = combined_interval(slope, slope_interval(slope, draw_slopes, interval_pct),
                                   scatter_interval(est.T, years, interval_pct))
        out[0, idx], out[1, idx], out[2, idx], out[3, idx] = slope, lo, hi, significant(lo, hi)
        step = int(min(chunk_pixels, max(256, CHUNK_BYTES // (8 * draws.shape[1] * max(n_pairs, ny)))))
    flag, slope = out[3, active], out[0, active]
    counts = {"pixels": int(active.size), "unknown": int(np.isnan(flag).sum()),
              "significant_gain": int(((flag == 1) & (slope > 0)).sum()),
              "significant_loss": int(((flag == 1) & (slope < 0)).sum()),
              "not_significant": int((flag == 0).sum())}
    return out.reshape(4, *shape), counts


def zone_trend_table(zones: gpd.GeoDataFrame, tables: Sequence[pd.DataFrame], sums: Sequence[tuple[np.ndarray, np.ndarray]],
                     years: Sequence[int], interval_pct: float = 90.0, observed: Mapping[str, object] | None = None,
                     min_observed_pct: float = 0.0) -> gpd.GeoDataFrame:
    """One row per zone: the Theil–Sen trend of the zone's stock (t C/yr) with its interval and flag.

    ``tables`` are the years' zone tables of the level (results/{year}/zones/{level}.gpkg), ``sums`` the
    years' (estimate (Z,), draws (Z, B)) zone sums in t C from the paired draws, both in year order. A
    year where the table's ``carbon_t`` is NaN (unknown stock) is left out of the zone's series;
    ``n_years`` counts the years used. ``carbon_t_<year>`` are the tables' stocks; ``trend_t_ha_yr`` is per
    ha of zone area; ``trend_significant`` is empty where the trend is unknown.

    ``observed`` ({"typed_ha", "observed_all_ha"}: the zone sums (ha) of typed land and of typed land observed in
    every year, and "sums": the years' (estimate, draws) zone sums over that land alone, as ``sums``) adds
    ``observed_all_pct`` (the share of the zone's typed land observed in every year), ``trend_observed_t_yr`` with
    its interval (``_lo``, ``_hi``: the Theil–Sen trend of the stock of that land alone, not scaled to the zone,
    the interval made as the trend's), ``trend_observed_t_ha_yr`` (per ha of that land) and
    ``trend_partly_observed`` (true where some typed land was unobserved in some year: ``trend_t_yr`` then holds
    filled land). Where ``observed_all_pct`` is below ``min_observed_pct`` (or nothing was observed in every year)
    the observed trend is NaN, never 0 or a trend of fills. Years left out of the trend are left out of it too."""
    years = [int(y) for y in years]
    if not (len(tables) == len(sums) == len(years)):
        raise ValueError(f"one zone table and one zone sum per year are needed: {len(years)} years, "
                         f"{len(tables)} tables, {len(sums)} sums.")
    ids = zones["zone_id"].to_numpy()
    stocks, est, draws, knowns = [], [], [], []
    for table, (e, d) in zip(tables, sums, strict=True):
        t = table.set_index("zone_id").loc[ids]
        known = np.isfinite(t["carbon_t"].to_numpy(dtype=float))
        knowns.append(known)
        stocks.append(t["carbon_t"].to_numpy(dtype=float))
        est.append(np.where(known, e, np.nan))
        draws.append(np.where(known[:, None], d, np.nan))
    e_series = np.stack(est, axis=-1)  # (Z, Y)
    d_series = np.stack(draws, axis=-1)  # (Z, B, Y)
    slope = theil_sen(e_series, years)
    draw_slopes = theil_sen(d_series, years)  # (Z, B)
    draws_lo, draws_hi = slope_interval(slope, draw_slopes, interval_pct, axis=1)
    scatter_lo, scatter_hi = scatter_interval(e_series, years, interval_pct)
    lo, hi = combined_interval(slope, (draws_lo, draws_hi), (scatter_lo, scatter_hi))
    flag = significant(lo, hi)
    area = tables[-1].set_index("zone_id").loc[ids, "area_ha"].to_numpy(dtype=float)
    out = pd.DataFrame({
        "zone_id": ids,
        "parent_id": zones["parent_id"].to_numpy(),
        "level": zones["level"].to_numpy(),
        "name": zones["name"].to_numpy(),
        "area_ha": area,
        "years": f"{years[0]}-{years[-1]}",
        "n_years": np.isfinite(e_series).sum(axis=1),
        "trend_t_yr": slope,
        "trend_t_yr_lo": lo,
        "trend_t_yr_hi": hi,
        "trend_t_yr_draws_lo": draws_lo,
        "trend_t_yr_draws_hi": draws_hi,
        "trend_t_yr_scatter_lo": scatter_lo,
        "trend_t_yr_scatter_hi": scatter_hi,
    })
    with np.errstate(divide="ignore", invalid="ignore"):
        out["trend_t_ha_yr"] = np.where(area > 0, slope / np.where(area > 0, area, 1.0), np.nan)
    out["trend_significant"] = pd.array(np.where(np.isnan(flag), None, flag == 1), dtype="boolean")
    out["trend_class"] = sink_classes(slope, lo, hi)
    out["trend_u_pct"] = np.where(np.isfinite(slope), u_pct(np.nan_to_num(draw_slopes), slope), np.nan)
    out["trend_co2e_t_yr"] = slope * CO2_PER_C
    if observed is not None:
        all_ha = np.asarray(observed["observed_all_ha"], dtype=np.float64)
        # too little land seen in every year: its trend would be a trend of a sliver, never 0 or of fills
        all_pct, too_little = observed_share(observed["typed_ha"], all_ha, min_observed_pct)
        if len(observed["sums"]) != len(years):
            raise ValueError(f"one observed zone sum per year is needed: {len(years)} years, {len(observed['sums'])} sums.")
        o_est = np.stack([np.where(k & ~too_little, e, np.nan) for k, (e, _) in zip(knowns, observed["sums"], strict=True)],
                         axis=-1)
        o_draws = np.stack([np.where((k & ~too_little)[:, None], d, np.nan)
                            for k, (_, d) in zip(knowns, observed["sums"], strict=True)], axis=-1)
        o_slope = theil_sen(o_est, years)
        o_lo, o_hi = combined_interval(o_slope, slope_interval(o_slope, theil_sen(o_draws, years), interval_pct, axis=1),
                                       scatter_interval(o_est, years, interval_pct))
        out["observed_all_pct"] = all_pct
        out["trend_observed_t_yr"] = o_slope
        out["trend_observed_t_yr_lo"] = o_lo
        out["trend_observed_t_yr_hi"] = o_hi
        with np.errstate(divide="ignore", invalid="ignore"):
            out["trend_observed_t_ha_yr"] = np.where(all_ha > AREA_EPS_HA, o_slope / np.where(all_ha > AREA_EPS_HA,
                                                                                               all_ha, 1.0), np.nan)
        out["trend_partly_observed"] = pd.array(np.isfinite(all_pct) & ~(all_pct >= 100.0 - PCT_EPS), dtype="boolean")  # NaN: no typed land
    for year, s in zip(years, stocks, strict=True):
        out[f"carbon_t_{year}"] = s
    return gpd.GeoDataFrame(out, geometry=zones.geometry.values, crs=zones.crs)


def partly_observed_warning(table: pd.DataFrame, level: str, min_observed_pct: float, limit: int = 5) -> str | None:
    """A warning naming the zones of a trend table whose typed land was not observed in every year
    (``trend_partly_observed``), the first ``limit`` with their ``observed_all_pct`` (least observed first), and
    how many of them have no observed trend (below ``min_observed_pct``); None where every zone was fully observed."""
    found = partly_observed_zones(table, "trend_partly_observed", "observed_all_pct", limit)
    if found is None:
        return None
    part, shown = found
    n_unknown = int(part["trend_observed_t_yr"].isna().sum())
    return (f"{level} trend {table['years'].iloc[0]}: {len(part)} of {len(table)} zone(s) partly observed: typed land "
            f"observed clear in every year {shown}. Their trend_t_yr includes land filled in a year that did not see it; "
            f"trend_observed_t_yr follows only the land every year observed. {n_unknown} of them below "
            f"carbon.min_observed_pct ({min_observed_pct:g} %) have no observed trend (empty). Add clear scenes for "
            f"the cloudy years to close the gap.")


def trend_record(years: Sequence[int], n_draws: int, interval_pct: float, pixel_counts: Mapping,
                 year_correlation: Mapping, residual: Mapping | None) -> dict:
    """What results/change/trend/trend.json holds: the method, the years, the draws and the interval, the
    pairing (ρ and the series' residual field) and the pixel counts by class."""
    return {
        "method": "Theil-Sen slope (median of the pairwise slopes over the years) of carbon stock; interval: "
                  "percentiles of the Theil-Sen slopes of the paired Monte Carlo draws (one series per draw), widened "
                  "to hold the estimate, and Sen's (1968) interval of the slope from the years' scatter (normal "
                  "approximation of Kendall's S), their half-widths added in quadrature on each side; significant "
                  "where the interval excludes 0",
        "years": [int(y) for y in years],
        "n_years": len(years),
        "draws": int(n_draws),
        "interval_pct": float(interval_pct),
        "units": {"pixel": "t C/ha/yr", "zone": "t C/yr"},
        "pairing": "e_y = sqrt(rho) E_common + sqrt(1 - rho) E_y: one common residual stream, one per year (docs/method.md)",
        "year_correlation": dict(year_correlation),
        "residual_field": residual,
        "pixels": dict(pixel_counts),
    }


def per_year(items: Sequence, n_years: int, what: str) -> list[list]:
    """A year-major flat list (Snakemake's ``expand`` over year, then predictor or level) cut into one list per
    year, in year order; its length must be a multiple of ``n_years``."""
    items = list(items)
    if n_years < 1 or len(items) % n_years:
        raise ValueError(f"{what}: {len(items)} paths do not split into {n_years} years (a year-major list, one "
                         f"block per year, is expected).")
    k = len(items) // n_years
    return [items[y * k : (y + 1) * k] for y in range(n_years)]


@dataclasses.dataclass
class TrendParts:
    """What :func:`trend_parts` gives for a window of the grid: ``bands`` (4, rows, cols) float32 (the window of
    trend.tif, :data:`TREND_BANDS`), ``counts`` (the window's pixels by class, :func:`pixel_trend`) and per level
    ``sums`` (every zone a row: the window's part of each zone's sum), named ``est_<k>`` (Z,) and ``draws_<k>``
    (Z, B) for the filled stock of year k (t C, in year order), ``obs_est_<k>`` and ``obs_draws_<k>`` for the
    stock of the typed land observed in every year, ``typed_ha`` and ``observed_all_ha`` (ha)."""

    bands: np.ndarray
    counts: dict
    sums: list[dict[str, np.ndarray]]
    n_draws: int


def series_pairing(models: Sequence[Mapping], uncertainty: Mapping | None, years: Sequence[int]) -> tuple[dict, object]:
    """ρ of the years' residuals (:func:`series_year_correlation`) and the series' residual field
    (:func:`series_residual_field`), logged: what pairs the years' draws."""
    rho = series_year_correlation(models, uncertainty)
    field = series_residual_field(models, uncertainty)
    log.info("%d years %s: residual correlation between years %.3f (%s, %d plot pairs; per pair of years %s)",
             len(years), list(years), rho["rho"], rho["method"], rho["n"], rho.get("pairs"))
    return rho, field


def trend_parts(years: Sequence[int], grid: Grid, tile: Tile | None, matrices: Sequence, fractions: Sequence[str | Path],
                year_predictors: Sequence[Mapping[str, str | Path]], ndvi_se: Sequence[str | Path],
                models: Sequence[Mapping], fills: Sequence[Mapping | None], pairing: tuple[dict, object], *,
                types: Sequence[str], seed: int, interval_pct: float = 90.0, uncertainty: Mapping | None = None,
                chunk_pixels: int = CHUNK_PIXELS) -> TrendParts:
    """Everything of rule trend that is per pixel or a zone sum, over the window ``tile`` of ``grid`` (None: the whole
    grid): the pixel trend and, per coverage matrix of ``matrices`` (one per level; a column per pixel of the window),
    the zone sums of :class:`TrendParts`. Per year, in year order: the type ``fractions``, the predictor rasters by name
    ``year_predictors``, ``ndvi_se``, the ``models`` and the ``fills`` (:func:`greensink.carbon.read_fill`; None: the
    year's fill computed from the rasters, the whole grid only). ``pairing``: :func:`series_pairing`.

    A window's pixels are evaluated with the whole grid's pixel indices (noise streams keyed by the whole grid, as
    the carbon and change tiles are) and the years' whole fill, so its bands are the window of the whole grid's,
    value for value, and its zone sums the window's terms of the whole sums (a tile's chunks span as many grid rows
    as the whole grid's chunks, so the noise rows in memory are the untiled rule's)."""
    window = None if tile is None else Window(tile.col_off, tile.row_off, tile.width, tile.height)
    if tile is not None and any(f is None for f in fills):
        raise ValueError("trend_parts: a tile needs every year's whole fill (results/{year}/fill.json); its own pixels "
                         "would give another fill.")
    shape = grid.shape if tile is None else tile.shape
    offsets = {} if tile is None else {"row0": tile.row_off, "col0": tile.col_off, "grid_width": grid.width}
    chunk = chunk_pixels if tile is None else max(1024, chunk_pixels * tile.width // grid.width)
    sum_chunk = 8_192 if tile is None else max(1024, 8_192 * tile.width // grid.width)
    rho, field = pairing
    maps, sums, unserved, typed = [], [], [], {}
    for k, year in enumerate(years):
        if str(fractions[k]) not in typed:  # one layer for every year unless the types are given per year
            typed[str(fractions[k])] = gio.read_raster(fractions[k], bands=list(range(1, len(types) + 1)), window=window)
        frac = typed[str(fractions[k])]
        used = used_predictors(models[k], types)
        rasters = {name: gio.read_raster(year_predictors[k][name], window=window) for name in used}
        rasters["ndvi_se"] = gio.read_raster(ndvi_se[k], window=window)
        args = dict(year=year, config=uncertainty, seed=seed, rho=rho["rho"], field=field, **offsets)
        maps.append(year_pixel_function(models[k], types, frac, rasters, grid, **args))
        sums.append(year_pixel_function(models[k], types, frac, rasters, grid, filled=True, fill=fills[k], **args))
        unserved.append(unserved_function(models[k], types, frac, {name: rasters[name] for name in used}))
    active = typed_pixels(np.concatenate(list(typed.values())))  # typed in any year
    n_draws = np.asarray(models[0]["types"][types[0]]["bootstrap"]).shape[0]
    bands, counts = pixel_trend(series_function(maps), active, shape, years, interval_pct, chunk_pixels=chunk)
    # the typed land observed in every year (the carbon maps known in each), per pixel and per zone
    seen = observed_every_year(unserved, active)
    share = typed_share(list(typed.values()))
    seen_map = np.where(seen, 0.0, np.nan)
    _, shares = observation_shares(matrices, active, seen_map, seen_map, share, share, grid.pixel_area_ha)
    log.info("typed land observed clear in every year %d-%d%s: %d of %d pixels", years[0], years[-1],
             f" (tile {tile.id})" if tile is not None else "", int(seen.sum()), seen.size)
    # one pass per year: the zone sums (filled) and those over the land observed in every year, from the same draws
    n_levels = len(matrices)
    both = list(matrices) + masked_matrices(matrices, active, seen)
    passes = [zone_draw_sums(both, fn, active, grid.pixel_area_ha, chunk_pixels=sum_chunk) for fn in sums]

    def drawn(d: np.ndarray) -> np.ndarray:  # no typed pixel in the window: zone_draw_sums gives one column of 0s;
        return np.broadcast_to(d, (d.shape[0], n_draws)).copy() if d.shape[1] != n_draws else d  # every draw is 0

    out = []
    for j in range(n_levels):
        level = {"typed_ha": shares[j]["typed_ha"], "observed_all_ha": shares[j]["observed_both_ha"]}
        for k, p in enumerate(passes):
            level |= {f"est_{k}": p[j][0], f"draws_{k}": drawn(p[j][1]),
                      f"obs_est_{k}": p[n_levels + j][0], f"obs_draws_{k}": drawn(p[n_levels + j][1])}
        out.append(level)
    return TrendParts(bands, counts, out, int(n_draws))


def write_trend_raster(path: str | Path, bands: np.ndarray, grid: Grid, years: Sequence[int], compress: str) -> None:
    """trend.tif (or a tile's file on the tile's sub-grid) through :func:`greensink.io.raster_writer`, the writer of
    a tiled run's mosaic (:func:`greensink.tiling.mosaic_files`), so the untiled file and the mosaic are the same
    bytes (the COG copy of a staged file computes the overviews as the mosaic's does)."""
    tags = {"units": "t C/ha/yr", "years": f"{years[0]}-{years[-1]}", "method": "Theil-Sen"}
    with gio.raster_writer(path, grid, len(TREND_BANDS), band_names=TREND_BANDS, compress=compress, tags=tags) as dst:
        dst.write(np.asarray(bands, dtype=np.float32), 0)


def log_pixel_counts(years: Sequence[int], counts: Mapping) -> None:
    log.info("pixels %d-%d: %s", years[0], years[-1], ", ".join(f"{n} {k}" for k, n in counts.items()))


def write_zone_trends(zones: Sequence[str | Path], tables_by_year: Sequence[Sequence[str | Path]],
                      sums: Sequence[Mapping[str, np.ndarray]], zones_out: Sequence[str | Path], *,
                      years: Sequence[int], levels: Sequence[str], interval_pct: float = 90.0,
                      min_observed_pct: float = 50.0) -> None:
    """The zone trend tables (``zones_out``: GeoPackage with CSV and Parquet twins) of each level from the whole
    grid's zone sums (per level, :class:`TrendParts` ``sums``) and the years' zone tables (``tables_by_year``: per
    year, one per level), with the partly observed zones named in a warning."""
    for j, (level, zpath, gpkg) in enumerate(zip(levels, zones, zones_out, strict=True)):
        year_tables = [gio.read_vector(tables_by_year[k][j]) for k in range(len(years))]
        table = level_trend_table(gio.read_vector(zpath), year_tables, sums[j], years, interval_pct, min_observed_pct)
        write_level_trend(table, level, gpkg, years, min_observed_pct)


def level_trend_table(zones: gpd.GeoDataFrame, year_tables: Sequence[pd.DataFrame], s: Mapping[str, np.ndarray],
                      years: Sequence[int], interval_pct: float, min_observed_pct: float) -> gpd.GeoDataFrame:
    """:func:`zone_trend_table` of one level's zones from their :class:`TrendParts` sums ``s`` (one entry per zone of
    ``zones``: a level, or a block of its zones; every column is per zone)."""
    observed = {"typed_ha": s["typed_ha"], "observed_all_ha": s["observed_all_ha"],
                "sums": [(s[f"obs_est_{k}"], s[f"obs_draws_{k}"]) for k in range(len(years))]}
    return zone_trend_table(zones, year_tables, [(s[f"est_{k}"], s[f"draws_{k}"]) for k in range(len(years))], years,
                            interval_pct, observed=observed, min_observed_pct=min_observed_pct)


def write_level_trend(table: gpd.GeoDataFrame, level: str, gpkg: str | Path, years: Sequence[int],
                      min_observed_pct: float) -> None:
    """Write one level's zone trend table (GeoPackage with CSV and Parquet twins), warn of its partly observed zones
    and log its classes."""
    if warning := partly_observed_warning(table, level, min_observed_pct):
        log.warning(warning)
    gio.write_table(gpkg, table, layer=level, parquet=True)
    first = table.iloc[0]
    log.info("%s %d-%d: %d zones (%s); %s: trend %.1f t C/yr [%.1f, %.1f]", level, years[0], years[-1], len(table),
             ", ".join(f"{n} {c}" for c, n in table["trend_class"].value_counts().items()), first["zone_id"],
             first["trend_t_yr"], first["trend_t_yr_lo"], first["trend_t_yr_hi"])


def run_trend(years: Sequence[int], zones: Sequence[str | Path], coverage: Sequence[str | Path], grid_json: str | Path,
              fractions: Sequence[str | Path], predictors: Sequence[str | Path], ndvi_se: Sequence[str | Path],
              models_json: Sequence[str | Path], tables: Sequence[str | Path], trend_out: str | Path,
              zones_out: Sequence[str | Path], record_out: str | Path, *, predictor_names: Sequence[str],
              levels: Sequence[str], types: Sequence[str], seed: int, interval_pct: float = 90.0,
              uncertainty: Mapping | None = None, compress: str = "zstd", min_observed_pct: float = 50.0,
              fills: Sequence[str | Path] | None = None) -> dict:
    """Rule trend: the trend over ``years`` per pixel (``trend_out``, bands :data:`TREND_BANDS`) and per zone of each
    of ``levels`` (``zones_out``, GeoPackage with CSV and Parquet twins), and trend.json (``record_out``, returned).

    Per year, in year order: the type ``fractions`` (one band per type of ``types``), the ``ndvi_se`` raster and
    the ``models_json``. ``predictors`` and ``tables`` are the flat year-major lists Snakemake's ``expand`` gives:
    for each year in turn, one raster per name of ``predictor_names`` and one zone table per level of ``levels``
    (:func:`per_year` cuts them). The years' draws are paired by :mod:`greensink.series` (one residual field of
    every year's plots, ρ pooled over every pair of years, ``uncertainty`` the config section, ``seed`` the run's
    seed); the zone sums use the zone layers ``zones`` with their ``coverage`` matrices on the grid ``grid_json``.

    Partial observation: the zone sums are also taken over the typed land observed in every year (the same pass,
    the same draws, through :func:`greensink.change.masked_matrices`), giving ``trend_observed_t_yr`` and
    ``observed_all_pct`` (:func:`zone_trend_table`); zones below ``min_observed_pct`` (``carbon.min_observed_pct``)
    have no observed trend, and the partly observed zones are named in a warning (:func:`partly_observed_warning`).

    ``fills``: per year, in year order, the year's fill of unobserved typed land (results/{year}/fill.json, rule
    fill; :func:`greensink.carbon.read_fill` refuses one made from other models or for another year), which the
    filled zone sums use; None: each year's fill computed here over the whole grid (the same numbers).

    The work is split where a tiled run splits it (:mod:`greensink.trend_tiles`): :func:`trend_parts` over the
    whole grid, then :func:`write_trend_raster`, :func:`write_zone_trends` and :func:`trend_record`."""
    years = [int(y) for y in years]
    year_predictors, tables_by_year = trend_lists(predictors, tables, years, predictor_names, levels)
    grid = Grid.read(grid_json)
    models = [gio.read_json(path) for path in models_json]
    year_fills = read_fills(fills, models, years)
    pairing = series_pairing(models, uncertainty, years)
    matrices = [gio.read_sparse(path) for path in coverage]
    parts = trend_parts(years, grid, None, matrices, fractions, year_predictors, ndvi_se, models, year_fills, pairing,
                        types=types, seed=seed, interval_pct=interval_pct, uncertainty=uncertainty)
    del matrices
    write_trend_raster(trend_out, parts.bands, grid, years, compress)
    log_pixel_counts(years, parts.counts)
    write_zone_trends(zones, tables_by_year, parts.sums, zones_out, years=years, levels=levels,
                      interval_pct=interval_pct, min_observed_pct=min_observed_pct)
    record = trend_record(years, parts.n_draws, interval_pct, parts.counts, pairing[0], residual_summary(pairing[1]))
    gio.write_json(record_out, record)
    return record


def trend_lists(predictors: Sequence[str | Path], tables: Sequence[str | Path] | None, years: Sequence[int],
                predictor_names: Sequence[str], levels: Sequence[str]) -> tuple[list[dict], list[list] | None]:
    """The flat year-major ``predictors`` (and ``tables``, when given) cut per year (:func:`per_year`): per year the
    predictor rasters by name and the zone tables in level order."""
    year_predictors = [dict(zip(predictor_names, paths, strict=True))
                       for paths in per_year(predictors, len(years), "trend predictors")]
    if tables is None:
        return year_predictors, None
    tables_by_year = per_year(tables, len(years), "trend zone tables")
    if any(len(t) != len(levels) for t in tables_by_year):
        raise ValueError(f"trend zone tables: {len(tables_by_year[0])} per year for {len(levels)} levels {list(levels)}.")
    return year_predictors, tables_by_year


def read_fills(fills: Sequence[str | Path] | None, models: Sequence[Mapping], years: Sequence[int]) -> list:
    """Each year's fill.json (:func:`greensink.carbon.read_fill`, refused when made from other models or for another
    year), or None per year without ``fills``."""
    if fills is None:
        return [None] * len(years)
    if len(fills) != len(years):
        raise ValueError(f"trend fills: {len(fills)} fill.json files for {len(years)} years {list(years)}: give one per "
                         "year.")
    return [read_fill(path, models=m, year=y) for path, m, y in zip(fills, models, years, strict=True)]
