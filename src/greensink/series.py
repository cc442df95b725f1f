"""Series: every reporting year of a run as one paired set of Monte Carlo draws, pixel by pixel.

A sink pairs two years' carbon draws (rule change, :mod:`greensink.uncertainty`): the curve draws are
paired by (seed, type) in the models, the edge error and the residual's persistent part come from one
common stream, and the rest of the residual and the NDVI error from a stream of each year. A trend over
N years needs all N years' draws paired the same way, and the scheme generalises as it stands: draw b of
year y is

    e_y = √ρ·E_common + √(1 − ρ)·E_y,

with E_common the stream keyed by no year (the same numbers in every year) and E_y the year's own stream,
so every pair of years has the residual correlation ρ (a compound-symmetric, "exchangeable" series) and
each year alone keeps the residual's full variance. What pairing two years fits to two years is fitted
here to all of them:

* the residual field (nugget, partial sill, range) is one variogram of every year's plots, pairs within a
  year only (:func:`series_residual_field`; for two years it is :func:`greensink.uncertainty.paired_residual_field`);
* ρ is the correlation of the remeasured plots' residuals pooled over every pair of years (each plot's
  residual in year i against the same plot in year j > i), the plots' measurement error taken off as for a
  pair (:func:`series_year_correlation`; ``uncertainty.residual.year_correlation`` when it is a number).

A residual whose correlation decays with the lag (an autoregressive series) is not this model: the pooled
ρ averages the lags, the per-pair values are recorded beside it so a decay shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from greensink.carbon import PixelFn, fill_values, pixel_function, type_fill
from greensink.grid import Grid
from greensink.model import used_predictors
from greensink.uncertainty import (
    Noise,
    ResidualField,
    noise_spec,
    residual_field,
    residual_year_correlation,
    settings,
    year_correlation,
)

SeriesFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # idx (n,) -> (estimates (Y, n), draws (Y, B, n))


def series_year_correlation(models: Sequence[Mapping], config: Mapping | None) -> dict:
    """ρ of the residual shared by every pair of the years whose models.json are ``models`` (in year order).

    ``uncertainty.residual.year_correlation`` when it is a number; else (``auto``) the remeasured plots'
    relative residuals pooled over every pair of years i < j (a plot measured in k years gives k(k−1)/2
    pairs) into one :func:`greensink.uncertainty.year_correlation`, the plots' measurement error (and its
    year correlation, from the first year's ``residual_field.measurement``) taken off. ``pairs`` records
    each pair's own ρ (:func:`greensink.uncertainty.residual_year_correlation`). Fewer than two years: ρ = 1."""
    cfg = settings(config)["residual"]["year_correlation"]
    if cfg != "auto":
        return {"rho": float(cfg), "n": 0, "method": "configured (uncertainty.residual.year_correlation)", "pairs": {}}
    if len(models) < 2:
        return {"rho": 1.0, "n": 0, "method": "assumed 1: fewer than two years", "pairs": {}}
    fields = [m.get("residual_field") or {} for m in models]
    plots = [f.get("plots") or [] for f in fields]
    pooled0, pooled1 = [], []
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            tag = f"{i}>{j}|"  # plot ids kept apart per pair of years, so year_correlation matches within a pair only
            pooled0 += [[tag + str(r[0]), *r[1:]] for r in plots[i]]
            pooled1 += [[tag + str(r[0]), *r[1:]] for r in plots[j]]
    rho_m = float((fields[0].get("measurement") or {}).get("year_correlation", 0.0) or 0.0)
    out = year_correlation(pooled0, pooled1, measurement_year_correlation=rho_m)
    out["method"] = "pooled over every pair of years: " + out["method"]
    out["pairs"] = {f"{i}-{j}": residual_year_correlation(models[i], models[j], config)["rho"]
                    for i in range(len(models)) for j in range(i + 1, len(models))}
    return out


def series_residual_field(models: Sequence[Mapping], config: Mapping | None) -> ResidualField | None:
    """One residual model for every year of a series: the variogram fitted to all years' plots (pairs
    within a year only), its nugget net of the plots' mean measurement variance; None when no year has a
    residual model. For two years it is :func:`greensink.uncertainty.paired_residual_field` (the one
    place, fitted once rather than once per year, see there)."""
    fields = [m.get("residual_field") for m in models]
    if not any(fields):
        return None
    r = settings(config)["residual"]
    records, groups = [], []
    for k, fld in enumerate(fields):
        for rec in (fld or {}).get("plots") or []:
            records.append({"plot_id": rec[0], "type": rec[1], "x_m": rec[2], "y_m": rec[3], "rel": rec[4],
                            "meas_var": rec[5] if len(rec) > 5 else 0.0})
            groups.append(k)
    meas = dict((next(f for f in fields if f)).get("measurement") or {})
    meas.pop("var", None)
    out = residual_field(records, n_bins=int(r["n_bins"]), max_lag_m=r["max_lag_m"], min_pairs=int(r["min_pairs"]),
                         groups=groups, measurement=meas)
    out.method = f"all {len(models)} years' plots (pairs within a year): " + out.method
    out.plots = []
    return out


def year_pixel_function(models: dict, types: Sequence[str], fractions: np.ndarray, rasters: Mapping[str, np.ndarray],
                        grid: Grid, *, year: int, config: Mapping | None, seed: int, rho: float,
                        field: ResidualField | None, filled: bool = False,
                        fill: Mapping[str, Mapping] | None = None, row0: int = 0, col0: int = 0,
                        grid_width: int | None = None) -> PixelFn:
    """The carbon pixel function of ``year`` (t C/ha of pixel, :func:`greensink.carbon.pixel_function`) with
    its draws paired to the other years of the series: ``noise_spec(..., rho=rho, paired=True)``, the
    residual drawn from ``field`` (the series' one field) where the year has a residual model.

    ``rasters``: the year's predictor rasters by name (at least those its models use) and "ndvi_se" (the
    NDVI error source, when on). ``filled``: the zone tables' rule, unobserved typed land counted at its
    type's fill density (:func:`greensink.carbon.type_fill`); otherwise such pixels are NaN, as mapped. ``fill``:
    the year's fill as :func:`greensink.carbon.read_fill` reads it from rule fill's results/{year}/fill.json (the
    same fractions and predictors, so the same fill bit for bit; tiled, rule fill_gather's: equal to rounding),
    used when ``filled``; None: computed here over the whole grid (a window's fill must be given: its own pixels
    would give another fill).

    ``row0``, ``col0``, ``grid_width``: ``fractions`` and ``rasters`` are the window of ``grid`` whose top-left
    pixel is (``row0``, ``col0``) of a grid ``grid_width`` columns wide (a tile: rule trend_tile); the noise is keyed
    by the whole grid's pixels (``grid``), so each pixel's draws are the whole grid's
    (:func:`greensink.carbon.pixel_function`)."""
    predictors = {name: rasters[name] for name in used_predictors(models, types)}
    if filled and fill is None:
        fill = type_fill(models, types, fractions, predictors, seed=int(models.get("seed", 0)))
    fill = fill_values(fill) if filled else None
    spec = noise_spec(config, models, seed=seed, year=int(year), resolution_m=grid.resolution_m, rho=rho, paired=True)
    spec.width, spec.height = grid.width, grid.height
    if spec.residual is not None and field is not None:
        spec.residual = field
    noise = Noise(spec, np.asarray(models["types"][types[0]]["bootstrap"]).shape[0])
    layers = {**predictors, "ndvi_se": rasters["ndvi_se"]} if spec.ndvi else predictors
    return pixel_function(models, types, fractions, layers, fill=fill, noise=noise, row0=row0, col0=col0,
                          grid_width=grid_width)


def series_function(fns: Sequence[PixelFn]) -> SeriesFn:
    """The years' pixel functions as one: flat pixel indices (n,) → (estimates (Y, n), draws (Y, B, n)),
    years in the order of ``fns``; NaN where a year has no observation."""
    if not fns:
        raise ValueError("a series needs at least one year's pixel function. Got none.")

    def evaluate(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = [fn(idx)[:2] for fn in fns]
        return np.stack([e for e, _ in out]), np.stack([d for _, d in out])

    return evaluate


def observed_every_year(unserved: Sequence[Callable[[np.ndarray], np.ndarray]], active: np.ndarray,
                        chunk_pixels: int = 65_536) -> np.ndarray:
    """Bool (active.size,): True at the ``active`` pixels (flat indices) that every year observed, i.e. where
    no year's :func:`greensink.carbon.unserved_function` (one per year, in ``unserved``) is True: the pixels
    whose carbon map is known in every year of the series (a constant-density type or an untyped year counts
    as known, as in the carbon map). Evaluates no curve and no draw."""
    active = np.asarray(active)
    seen = np.ones(active.size, dtype=bool)
    for start in range(0, active.size, chunk_pixels):
        idx = active[start : start + chunk_pixels]
        for fn in unserved:
            seen[start : start + idx.size] &= ~np.asarray(fn(idx), dtype=bool)
    return seen


def typed_share(fractions: Sequence[np.ndarray]) -> np.ndarray:
    """(1, rows, cols): each pixel's typed share (Σ type fractions, at most 1), the largest over the years'
    type ``fractions`` (each (types, rows, cols)): the typed land a pixel holds in the series."""
    shares = [np.minimum(np.asarray(f, dtype=np.float64).sum(axis=0), 1.0) for f in fractions]
    return np.max(np.stack(shares), axis=0)[None]


def residual_summary(field: ResidualField | None) -> dict | None:
    """What trend.json records of the series' residual field (its parameters, no plot records)."""
    if field is None:
        return None
    out = field.to_json()
    out.pop("plots", None)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
