"""Change: yearly net sink between two reporting years, per pixel and per zone.

sink = (stock(y1) − stock(y0)) / (y1 − y0), in t C/ha/yr per pixel and t C/yr per zone; a
positive sink is carbon taken up, a negative one carbon lost. The interval comes from the
difference of the two years' bootstrap draws. Draws are paired: plots remeasured under the
same ids are resampled together in both years (see :mod:`greensink.model`), so the part of
the uncertainty common to both years cancels, as it should for a difference.

"No net loss" of carbon-sink space: a zone meets it when its vegetated area did not shrink by more
than a tolerance (``indicators.no_net_loss_tolerance_pixels``, default half a pixel's area): a smaller
change is a partly covered edge pixel flipping, below what the imagery can resolve.

Zone sums use the stock tables' fill rule for unobserved typed land in each year (see
:mod:`greensink.aggregate`); a zone whose stock is NaN in either year has a NaN sink.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd

from greensink.carbon import CO2_PER_C, PixelFn, interval_quantiles
from greensink.uncertainty import u_pct, variance_shares

SINK_CLASSES = ("gain", "loss", "no significant change", "unknown")


def sink_classes(est: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[str]:
    """Per zone: "gain" where the sink's interval lies wholly above 0, "loss" wholly below 0,
    "no significant change" where it includes 0 (never shown as a loss or gain), "unknown" where NaN."""
    out = []
    for e, a, b in zip(np.asarray(est, float), np.asarray(lo, float), np.asarray(hi, float), strict=True):
        if not (np.isfinite(e) and np.isfinite(a) and np.isfinite(b)):
            out.append("unknown")
        elif a > 0:
            out.append("gain")
        elif b < 0:
            out.append("loss")
        else:
            out.append("no significant change")
    return out


def difference_function(fn0: PixelFn, fn1: PixelFn, years: float) -> PixelFn:
    """A pixel function giving (stock1 − stock0) / years for the estimate and each draw (and each
    source's contribution, where both functions give them)."""
    if years <= 0:
        raise ValueError(f"years between stocks must be > 0. Got {years}.")

    def evaluate(idx: np.ndarray):
        e0, d0, *p0 = fn0(idx)
        e1, d1, *p1 = fn1(idx)
        if p0 and p1:  # per-source contributions (pixel_function sources=True): differenced alike
            return (e1 - e0) / years, (d1 - d0) / years, {k: (p1[0][k] - p0[0][k]) / years for k in p0[0]}
        return (e1 - e0) / years, (d1 - d0) / years

    return evaluate


def change_table(
    zones: gpd.GeoDataFrame, table0: pd.DataFrame, table1: pd.DataFrame, y0: int, y1: int,
    sink_sums: tuple[np.ndarray, np.ndarray], interval_pct: float = 90.0, no_net_loss_tolerance_ha: float = 0.0,
) -> gpd.GeoDataFrame:
    """One row per zone: both stocks, the yearly sink with its interval, and green-area change.

    ``sink_class`` says whether the interval excludes 0 (:func:`sink_classes`); ``sink_u_pct`` is the
    IPCC U % (half the 95 % interval over |sink|); ``sink_t_yr_conservative`` the interval's lower
    bound; ``no_net_carbon_loss`` is false only for a zone whose sink is a significant loss.

    "no_net_loss" is true where green_area_change_ha ≥ −``no_net_loss_tolerance_ha`` (a loss up to the
    tolerance is no loss), written as "no_net_loss_tolerance_ha"."""
    t0 = table0.set_index("zone_id").loc[zones["zone_id"]]
    t1 = table1.set_index("zone_id").loc[zones["zone_id"]]
    est, draws, *parts = sink_sums
    qlo, qhi = interval_quantiles(interval_pct)
    lo, hi = np.quantile(draws, [qlo, qhi], axis=1) if draws.shape[1] > 1 else (est, est)
    area = t1["area_ha"].to_numpy()
    out = pd.DataFrame({
        "zone_id": zones["zone_id"].to_numpy(),
        "parent_id": zones["parent_id"].to_numpy(),
        "level": zones["level"].to_numpy(),
        "name": zones["name"].to_numpy(),
        "area_ha": area,
        "year_from": y0,
        "year_to": y1,
        "carbon_t_from": t0["carbon_t"].to_numpy(),
        "carbon_t_to": t1["carbon_t"].to_numpy(),
        "sink_t_yr": est,
        "sink_t_yr_lo": np.minimum(lo, est),
        "sink_t_yr_hi": np.maximum(hi, est),
    })
    # a zone whose stock is unknown (NaN: typed land never observed, or below carbon.min_observed_pct)
    # in either year has an unknown sink, never 0 or a difference of fills
    unknown = ~(np.isfinite(out["carbon_t_from"].to_numpy(dtype=float)) & np.isfinite(out["carbon_t_to"].to_numpy(dtype=float)))
    for col in ("sink_t_yr", "sink_t_yr_lo", "sink_t_yr_hi"):
        out[col] = np.where(unknown, np.nan, out[col].to_numpy(dtype=float))
    est = out["sink_t_yr"].to_numpy()
    out["sink_t_yr_conservative"] = out["sink_t_yr_lo"]  # the lower bound: removals not overstated
    out["sink_u_pct"] = np.where(unknown, np.nan, u_pct(draws, est))
    out["sink_class"] = sink_classes(est, out["sink_t_yr_lo"].to_numpy(), out["sink_t_yr_hi"].to_numpy())
    out["sink_significant"] = pd.array(np.where(unknown, None, out["sink_class"].isin(["gain", "loss"])), dtype="boolean")
    for source, share in variance_shares(parts[0] if parts else {}).items():
        out[f"var_share_{source}_pct"] = np.where(unknown, np.nan, share)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sink_t_ha_yr"] = np.where(area > 0, est / np.where(area > 0, area, 1), np.nan)
    out["sink_co2e_t_yr"] = est * CO2_PER_C
    out["green_area_ha_from"] = t0["green_area_ha"].to_numpy()
    out["green_area_ha_to"] = t1["green_area_ha"].to_numpy()
    out["green_area_change_ha"] = out["green_area_ha_to"] - out["green_area_ha_from"]
    change = out["green_area_change_ha"]
    # True / False, or empty where either year has no observation (unknown is not a loss)
    tolerance = float(no_net_loss_tolerance_ha)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"no_net_loss_tolerance_ha must be a number ≥ 0. Got {no_net_loss_tolerance_ha!r} instead.")
    out["no_net_loss"] = pd.array(np.where(change.notna(), change >= -tolerance, None), dtype="boolean")
    out["no_net_loss_tolerance_ha"] = tolerance
    # no net loss of carbon: missed only where the sink's interval lies wholly below zero
    out["no_net_carbon_loss"] = pd.array(np.where(unknown, None, out["sink_class"] != "loss"), dtype="boolean")
    return gpd.GeoDataFrame(out, geometry=zones.geometry.values, crs=zones.crs)
