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
:mod:`greensink.aggregate`); a zone whose stock is NaN in either year has a NaN sink. Partial observation
(docs/method.md, "Partial observation in the change products"): the share of a zone's typed land observed
in both years (:func:`observation_shares`) and the sink over that land alone are reported beside the filled
sink, the zone is flagged where it is partly observed, and below ``carbon.min_observed_pct`` its sink is NaN. Each year
is evaluated with that year's green-space types (fractions0 for y0, fractions1 for y1); the
pixels evaluated are those typed in either year (elsewhere the stock is 0 in both years).

Attribution (docs/method.md, "Attribution of a stock change"): each pixel's stock change, from the
per-pixel estimates the zone tables sum (filled where unobserved), is given one class from the
vegetation classes and dominant green-space types of both years (:func:`attribution_classes`):
gain, loss, growth (or decline), conversion, or other (not vegetated in either year, or vegetation
class unknown in either year). A zone's parts are the exact-coverage sums of each class's change
(:func:`zone_attribution`) and ``stock_change_t`` is their sum. "No net loss" of carbon-sink space
(vegetated land and typed green space, :func:`sink_space`) compares the land known in both years
(:func:`zone_sink_space`); the pixels that lost sink space become the polygons of
:func:`lost_patches`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
import shapely.geometry
from rasterio import features
from scipy import ndimage

from greensink.carbon import PixelFn, interval_quantiles, unserved_function
from greensink.grid import Grid
from greensink.uncertainty import u_pct, variance_shares
from greensink.units import c_to_co2e, ha_to_m2

log = logging.getLogger(__name__)

SINK_CLASSES = ("gain", "loss", "no significant change", "unknown")
AREA_EPS_HA = 1e-9  # 0.01 m²: areas below this are float noise of coverage sums, not land
PCT_EPS = 1e-6  # a share within this of 100 % is whole (float noise of coverage sums)


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


def observed_share(typed_ha, seen_ha, min_observed_pct: float) -> tuple[np.ndarray, np.ndarray]:
    """Per zone, the share (%) of its typed land ``typed_ha`` that was seen (``seen_ha``: in both years of a pair, or
    in every year of a series; NaN for a zone without typed land), and whether that is too little to compare: a zone
    with typed land of which nothing, or under ``min_observed_pct`` %, was seen."""
    typed_ha = np.asarray(typed_ha, dtype=np.float64)
    seen_ha = np.asarray(seen_ha, dtype=np.float64)
    has_land = typed_ha > AREA_EPS_HA
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(has_land, np.minimum(100.0 * seen_ha / np.where(has_land, typed_ha, 1.0), 100.0), np.nan)
    too_little = has_land & ~((seen_ha > AREA_EPS_HA) & (np.nan_to_num(pct) >= float(min_observed_pct)))
    return pct, too_little


def change_table(
    zones: gpd.GeoDataFrame, table0: pd.DataFrame, table1: pd.DataFrame, y0: int, y1: int,
    sink_sums: tuple[np.ndarray, np.ndarray], interval_pct: float = 90.0, no_net_loss_tolerance_ha: float = 0.0,
    attribution: Mapping[str, np.ndarray] | None = None, sink_space: Mapping[str, np.ndarray] | None = None,
    observed: Mapping[str, object] | None = None, min_observed_pct: float = 0.0,
    green_compared: Mapping[str, np.ndarray] | None = None,
) -> gpd.GeoDataFrame:
    """One row per zone: both stocks, the yearly sink with its interval, and green-area change.

    ``sink_class`` says whether the interval excludes 0 (:func:`sink_classes`); ``sink_u_pct`` is the
    IPCC U % (half the 95 % interval over |sink|); ``sink_t_yr_conservative`` the interval's lower
    bound; ``no_net_carbon_loss`` is false only for a zone whose sink is a significant loss.

    "no_net_loss" is true where green_area_change_ha ≥ −``no_net_loss_tolerance_ha`` (a loss up to the
    tolerance is no loss), written as "no_net_loss_tolerance_ha".

    ``attribution`` (this level's item of :func:`zone_attribution`) adds ``stock_change_t`` and its parts
    ``change_<part>_t`` (:data:`ATTRIBUTION_PARTS`, summed in that order, so they add up to
    ``stock_change_t`` exactly) and ``change_other_unobserved_t`` (the share of "other" on land
    unobserved in either year); all NaN where either year's stock is unknown. ``sink_space`` (this
    level's item of :func:`zone_sink_space`) adds ``sink_space_ha_<y0>``, ``sink_space_ha_<y1>``,
    ``sink_space_change_ha``, ``sink_space_lost_ha``, ``sink_space_gained_ha``,
    ``sink_space_compared_pct`` and ``no_net_loss_sink_space`` (change ≥ −tolerance; empty where no
    land of the zone is known in both years).

    ``observed`` (this level's item of :func:`observation_shares`, with ``"sums"`` the zone sums of the
    sink over the typed land observed in both years, as ``sink_sums``) adds ``observed_both_pct`` (the
    share of the zone's typed land observed in both years), ``sink_observed_t_yr`` with its interval
    (``_lo``, ``_hi``: the sink over that land alone, not scaled to the zone), ``sink_observed_t_ha_yr``
    (per ha of that land) and ``sink_partly_observed`` (true where some typed land was unobserved in
    either year: ``sink_t_yr`` then holds filled land). A zone with typed land whose
    ``observed_both_pct`` is below ``min_observed_pct`` (or nothing of it observed in both years) has
    an unknown sink (every sink and attribution column empty), never a difference of fills.

    ``green_compared`` (this level's item of :func:`zone_sink_space` on vegetated land alone) makes
    ``no_net_loss`` compare the vegetated area over the land whose vegetation is known in both years
    (``green_area_change_compared_ha``, ``green_area_compared_pct``), so a cloud is never a loss; empty
    where nothing was compared. Without it ``no_net_loss`` compares the tables' green areas."""
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
    if observed is not None:
        # a zone whose typed land was observed in both years on too little of it: its sink would be mostly fill
        both_ha = np.asarray(observed["observed_both_ha"], dtype=np.float64)
        both_pct, too_little = observed_share(observed["typed_ha"], both_ha, min_observed_pct)
        unknown = unknown | too_little
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
    out["sink_co2e_t_yr"] = c_to_co2e(est)
    if observed is not None:
        est_b, draws_b, *_ = observed["sums"]
        lo_b, hi_b = np.quantile(draws_b, [qlo, qhi], axis=1) if draws_b.shape[1] > 1 else (est_b, est_b)
        out["observed_both_pct"] = both_pct
        out["sink_observed_t_yr"] = np.where(unknown, np.nan, est_b)
        out["sink_observed_t_yr_lo"] = np.where(unknown, np.nan, np.minimum(lo_b, est_b))
        out["sink_observed_t_yr_hi"] = np.where(unknown, np.nan, np.maximum(hi_b, est_b))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["sink_observed_t_ha_yr"] = np.where(~unknown & (both_ha > AREA_EPS_HA),
                                                    est_b / np.where(both_ha > AREA_EPS_HA, both_ha, 1.0), np.nan)
        out["sink_partly_observed"] = pd.array(np.isfinite(both_pct) & ~(both_pct >= 100.0 - PCT_EPS), dtype="boolean")  # NaN: no typed land
    out["green_area_ha_from"] = t0["green_area_ha"].to_numpy()
    out["green_area_ha_to"] = t1["green_area_ha"].to_numpy()
    out["green_area_change_ha"] = out["green_area_ha_to"] - out["green_area_ha_from"]
    change = out["green_area_change_ha"]
    # True / False, or empty where either year has no observation (unknown is not a loss)
    tolerance = float(no_net_loss_tolerance_ha)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"no_net_loss_tolerance_ha must be a number ≥ 0. Got {no_net_loss_tolerance_ha!r} instead.")
    if green_compared is not None:  # vegetated area over the land whose vegetation is known in both years
        compared_ha = np.asarray(green_compared["compared_ha"], dtype=np.float64)
        grid_ha = np.asarray(green_compared["grid_ha"], dtype=np.float64)
        none = ~(compared_ha > AREA_EPS_HA)
        out["green_area_change_compared_ha"] = np.where(
            none, np.nan, np.asarray(green_compared["to_ha"]) - np.asarray(green_compared["from_ha"]))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["green_area_compared_pct"] = np.where(grid_ha > AREA_EPS_HA, 100.0 * compared_ha / grid_ha, np.nan)
        change = out["green_area_change_compared_ha"]
    out["no_net_loss"] = pd.array(np.where(change.notna(), change >= -tolerance, None), dtype="boolean")
    out["no_net_loss_tolerance_ha"] = tolerance
    # no net loss of carbon: missed only where the sink's interval lies wholly below zero
    out["no_net_carbon_loss"] = pd.array(np.where(unknown, None, out["sink_class"] != "loss"), dtype="boolean")
    if attribution is not None:
        parts = {part: np.where(unknown, np.nan, np.asarray(attribution[part], dtype=np.float64))
                 for part in ATTRIBUTION_PARTS}
        total = np.zeros(len(out))
        for part in ATTRIBUTION_PARTS:  # the parts' sum, in this order: exact by construction
            total = total + parts[part]
        out["stock_change_t"] = total
        for part in ATTRIBUTION_PARTS:
            out[f"change_{part}_t"] = parts[part]
        out["change_other_unobserved_t"] = np.where(unknown, np.nan, attribution["other_unobserved"])
    if sink_space is not None:
        compared = np.asarray(sink_space["compared_ha"], dtype=np.float64)
        none = ~(compared > AREA_EPS_HA)  # nothing of the zone known in both years: unknown, not "no loss"
        space0 = np.where(none, np.nan, sink_space["from_ha"])
        space1 = np.where(none, np.nan, sink_space["to_ha"])
        out[f"sink_space_ha_{y0}"] = space0
        out[f"sink_space_ha_{y1}"] = space1
        out["sink_space_change_ha"] = space1 - space0
        out["sink_space_lost_ha"] = np.where(none, np.nan, sink_space["lost_ha"])
        out["sink_space_gained_ha"] = np.where(none, np.nan, sink_space["gained_ha"])
        grid_ha = np.asarray(sink_space["grid_ha"], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["sink_space_compared_pct"] = np.where(grid_ha > AREA_EPS_HA, 100.0 * compared / grid_ha, np.nan)
        space_change = out["sink_space_change_ha"]
        out["no_net_loss_sink_space"] = pd.array(np.where(space_change.notna(), space_change >= -tolerance, None),
                                                 dtype="boolean")
    return gpd.GeoDataFrame(out, geometry=zones.geometry.values, crs=zones.crs)


# ----------------------------------------------------------------------------- attribution

#: The parts of a zone's stock change, in the order they are summed into ``stock_change_t``.
ATTRIBUTION_PARTS = ("gain", "loss", "growth", "conversion", "other")
#: Band 1 of attribution.tif: the attribution class of a pixel (NaN where it is unknown).
ATTRIBUTION_CODES = {"other": 0, "gain": 1, "loss": 2, "growth": 3, "conversion": 4}
UNTYPED = -1  # dominant_type of a pixel with no green-space type
WHOLE_EPS = 1e-6  # a typed fraction within this of 1 is a wholly typed pixel
LOST_EPS = 1e-6  # sink space lost below this share of a pixel is float noise of the fractions, not a loss


def dominant_type(fractions: np.ndarray) -> np.ndarray:
    """Per pixel (flat, int16): the index of the type with the largest fraction ((n_types, rows, cols)
    or (n_types, n)), the first of them on a tie; :data:`UNTYPED` (−1) where the pixel has no type."""
    frac = np.asarray(fractions).reshape(np.shape(fractions)[0], -1)
    out = np.argmax(frac, axis=0).astype(np.int16)
    out[~(frac.sum(axis=0) > 0)] = UNTYPED
    return out


def attribution_classes(classes0: np.ndarray, classes1: np.ndarray, type0: np.ndarray, type1: np.ndarray) -> np.ndarray:
    """The attribution class of each pixel's stock change between two years (float32, the shape of
    ``classes0``; codes :data:`ATTRIBUTION_CODES`), from the vegetation classes of both years
    (0 none, 1 grass, 2 shrub, 3 tree, NaN no data: :func:`greensink.vegetation.structure_classes`)
    and the dominant green-space type of both years (:func:`dominant_type`, flat):

    * gain (1): vegetation appeared (none → vegetated) or canopy appeared (grass/shrub → tree);
    * loss (2): vegetation cleared (vegetated → none) or canopy cleared (tree → grass/shrub);
    * growth (3): vegetated in both years, no canopy change, same dominant type (growth or decline);
    * conversion (4): vegetated in both years, no canopy change, the dominant type changed
      (untyped counts as a type of its own: land that became, or stopped being, green space);
    * other (0): not vegetated in either year;
    * NaN: the vegetation class is unknown (no clear observation) in either year.

    Gain and loss come first: a pixel whose vegetation appeared while its type changed is a gain."""
    c0 = np.asarray(classes0, dtype=np.float64).reshape(-1)
    c1 = np.asarray(classes1, dtype=np.float64).reshape(-1)
    t0, t1 = np.asarray(type0).reshape(-1), np.asarray(type1).reshape(-1)
    if not c0.size == c1.size == t0.size == t1.size:
        raise ValueError(f"vegetation classes and types must have one value per pixel. Got {c0.size}, {c1.size}, "
                         f"{t0.size} and {t1.size} values.")
    known = np.isfinite(c0) & np.isfinite(c1)
    with np.errstate(invalid="ignore"):
        veg0, veg1 = c0 >= 1, c1 >= 1
        tree0, tree1 = c0 == 3, c1 == 3
    gain = (~veg0 & veg1) | (veg0 & ~tree0 & tree1)
    loss = (veg0 & ~veg1) | (tree0 & veg1 & ~tree1)
    persistent = veg0 & veg1 & ~gain & ~loss
    out = np.zeros(c0.size, dtype=np.float32)
    out[gain] = ATTRIBUTION_CODES["gain"]
    out[loss] = ATTRIBUTION_CODES["loss"]
    out[persistent & (t0 == t1)] = ATTRIBUTION_CODES["growth"]
    out[persistent & (t0 != t1)] = ATTRIBUTION_CODES["conversion"]
    out[~known] = np.nan
    return out.reshape(np.shape(classes0))


class EstimateRecorder:
    """A pixel function (:data:`greensink.carbon.PixelFn`) that keeps the estimate of every pixel it
    evaluates, so that the attribution reads the estimates of the pass that already ran (the sink's
    draws) instead of evaluating the models again. ``active`` are the flat pixel indices (ascending)
    the pass covers; :meth:`estimates` is (active.size,) in the function's units."""

    def __init__(self, fn: PixelFn, active: np.ndarray) -> None:
        self.fn = fn
        self.active = np.asarray(active)
        self.values = np.full(self.active.size, np.nan)
        self.seen = np.zeros(self.active.size, dtype=bool)

    def __call__(self, idx: np.ndarray):
        out = self.fn(idx)
        pos = np.searchsorted(self.active, idx)
        if pos.size and (pos.max() >= self.active.size or not np.array_equal(self.active[pos], idx)):
            raise ValueError("EstimateRecorder: a pixel index outside the active pixels was evaluated.")
        self.values[pos] = out[0]
        self.seen[pos] = True
        return out

    def estimates(self) -> np.ndarray:
        """The estimate of every active pixel; an error if the pass skipped any."""
        if not self.seen.all():
            raise RuntimeError(f"EstimateRecorder: {int((~self.seen).sum())} active pixel(s) were never evaluated.")
        return self.values


def zone_attribution(matrices: Sequence[sp.csr_matrix], active: np.ndarray, change_t_ha: np.ndarray,
                     codes: np.ndarray, pixel_area_ha: float) -> list[dict[str, np.ndarray]]:
    """Per coverage matrix (level), the zone sums (t C) of the per-pixel stock change split by attribution.

    ``change_t_ha`` is stock y1 − stock y0 (t C per ha of pixel) and ``codes`` the attribution class
    (:func:`attribution_classes`) at the ``active`` pixels (flat indices; elsewhere the stock is 0 in
    both years). Each part is Σ coverage × change × pixel area over the pixels of its class:
    {"gain", "loss", "growth", "conversion", "other"} with "other" holding the pixels of class 0 and
    those whose class is unknown, and "other_unobserved" the latter alone (a share of "other", not a
    sixth part). A NaN change (no usable model and no fill) contributes nothing, as in
    :func:`greensink.aggregate.zone_draw_sums`; the zone's stock is then NaN anyway."""
    d = np.nan_to_num(np.asarray(change_t_ha, dtype=np.float64))
    code = np.asarray(codes, dtype=np.float64)
    unknown = ~np.isfinite(code)
    masks = {part: code == ATTRIBUTION_CODES[part] for part in ATTRIBUTION_PARTS}
    masks["other"] = masks["other"] | unknown
    masks["other_unobserved"] = unknown
    values = np.column_stack([np.where(m, d, 0.0) for m in masks.values()])  # (n_active, parts)
    out = []
    for matrix in matrices:
        sums = (matrix.tocsc()[:, active] @ values) * pixel_area_ha
        out.append({part: np.asarray(sums[:, j]).ravel() for j, part in enumerate(masks)})
    return out


def sink_space(classes: np.ndarray, fractions: np.ndarray, typed_land: bool = True) -> np.ndarray:
    """Per pixel (flat float32): the share of the pixel that is carbon-sink space, i.e. vegetated land
    or typed green space: 1 where vegetated (class ≥ 1), else the pixel's typed green-space fraction
    (Σ type fractions, at most 1); NaN where unknown (no vegetation class, and the pixel not wholly
    typed). ``typed_land`` False (no green-space types: one pseudo-type over all land) counts
    vegetated land alone."""
    c = np.asarray(classes, dtype=np.float32).reshape(-1)
    typed = (np.minimum(np.asarray(fractions, dtype=np.float32).reshape(np.shape(fractions)[0], -1).sum(axis=0), 1.0)
             if typed_land else np.zeros(c.size, dtype=np.float32))
    with np.errstate(invalid="ignore"):
        out = np.where(c >= 1, np.float32(1.0), typed).astype(np.float32, copy=False)
    out[~(np.isfinite(c) | (typed >= 1.0 - WHOLE_EPS))] = np.nan
    return out


def zone_sink_space(matrices: Sequence[sp.csr_matrix], space0: np.ndarray, space1: np.ndarray,
                    pixel_area_ha: float) -> list[dict[str, np.ndarray]]:
    """Per coverage matrix (level), the zone sums (ha) of carbon-sink space (:func:`sink_space`) of
    both years over the land whose sink space is known in both ("compared"): "from_ha", "to_ha",
    "lost_ha" (Σ max(from − to, 0)), "gained_ha", "compared_ha" and "grid_ha" (the zone's land on the
    grid). Land unknown in either year is left out of both years, so clouds are never a loss or a gain.
    One grid-sized vector at a time (memory: a few grid-sized arrays, whatever the number of sums)."""
    s0, s1 = np.asarray(space0), np.asarray(space1)
    both = np.isfinite(s0) & np.isfinite(s1)
    a, b = np.where(both, s0, 0.0), np.where(both, s1, 0.0)
    vectors = {"from_ha": lambda: a, "to_ha": lambda: b, "lost_ha": lambda: np.maximum(a - b, 0.0),
               "gained_ha": lambda: np.maximum(b - a, 0.0), "compared_ha": lambda: both.astype(np.float32)}
    out = []
    for matrix in matrices:
        sums = {name: (matrix @ vector()) * pixel_area_ha for name, vector in vectors.items()}
        sums["grid_ha"] = np.asarray(matrix.sum(axis=1)).ravel() * pixel_area_ha
        out.append(sums)
    return out


def observation_shares(matrices: Sequence[sp.csr_matrix], active: np.ndarray, map0_t_ha: np.ndarray,
                       map1_t_ha: np.ndarray, fractions0: np.ndarray, fractions1: np.ndarray,
                       pixel_area_ha: float) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """Which typed land was observed in both years, per pixel and per zone.

    ``map*_t_ha`` are the carbon maps' estimates at the ``active`` pixels (flat indices, typed in either
    year): NaN where the pixel's typed land had no usable model (no clear observation), finite where it
    was observed, is of a constant-density type, or is untyped that year (stock 0). A pixel is observed
    in both years where both are finite. A pixel's typed land is the larger of its two years' typed
    shares (Σ type fractions, at most 1). Returns the mask (active.size,) of pixels observed in both
    years and, per coverage matrix (level), {"typed_ha", "observed_both_ha"}: the zone sums (ha) of
    typed land and of typed land observed in both years."""
    active = np.asarray(active)
    both = np.isfinite(np.asarray(map0_t_ha, dtype=np.float64)) & np.isfinite(np.asarray(map1_t_ha, dtype=np.float64))
    typed = [np.minimum(np.asarray(f, dtype=np.float64).reshape(np.shape(f)[0], -1)[:, active].sum(axis=0), 1.0)
             for f in (fractions0, fractions1)]
    w = np.maximum(typed[0], typed[1])
    out = []
    for matrix in matrices:
        sub = matrix.tocsc()[:, active]
        out.append({"typed_ha": np.asarray(sub @ w).ravel() * pixel_area_ha,
                    "observed_both_ha": np.asarray(sub @ np.where(both, w, 0.0)).ravel() * pixel_area_ha})
    return both, out


def masked_matrices(matrices: Sequence[sp.csr_matrix], active: np.ndarray, keep: np.ndarray) -> list[sp.csr_matrix]:
    """The coverage matrices with the columns of the ``active`` pixels not in ``keep`` (bool, active.size)
    set to 0: zone sums through them count only the kept pixels."""
    if not len(matrices):
        return []
    mask = np.zeros(matrices[0].shape[1])
    mask[np.asarray(active)[np.asarray(keep, dtype=bool)]] = 1.0
    return [sp.csr_matrix(m @ sp.diags(mask)) for m in matrices]


def partly_observed_zones(table: pd.DataFrame, flag: str, pct_column: str,
                          limit: int = 5) -> tuple[pd.DataFrame, str] | None:
    """The zones of a change or trend table flagged ``flag`` (``sink_partly_observed``, ``trend_partly_observed``),
    least observed first by ``pct_column``, and the first ``limit`` as a warning names them: "B2 62.5 %, B7 80.0 %
    and 3 more"; None without the column or a flagged zone (:func:`partly_observed_warning`,
    :func:`greensink.trend.partly_observed_warning`)."""
    if flag not in table:
        return None
    part = table.loc[table[flag].fillna(False).astype(bool)]
    if part.empty:
        return None
    part = part.sort_values(pct_column, kind="stable")
    head = part.iloc[:limit]
    shown = ", ".join(f"{z} {p:.1f} %" for z, p in zip(head["zone_id"].astype(str), head[pct_column], strict=True))
    if len(part) > limit:
        shown += f" and {len(part) - limit} more"
    return part, shown


def partly_observed_warning(table: pd.DataFrame, level: str, min_observed_pct: float, limit: int = 5) -> str | None:
    """A warning naming the zones of a change table whose typed land was not wholly observed in both years
    (``sink_partly_observed``), with their ``observed_both_pct``, and how many of them have an unknown sink
    (below ``min_observed_pct``); None where every zone was fully observed."""
    found = partly_observed_zones(table, "sink_partly_observed", "observed_both_pct", limit)
    if found is None:
        return None
    part, shown = found
    y0, y1 = int(table["year_from"].iloc[0]), int(table["year_to"].iloc[0])
    n_unknown = int(part["sink_t_yr"].isna().sum())
    return (f"{level} {y0}-{y1}: {len(part)} of {len(table)} zone(s) partly observed: typed land observed clear in both "
            f"years {shown}. Their sink_t_yr includes land filled in a year that did not see it; sink_observed_t_yr "
            f"compares only the land both years observed. {n_unknown} of them below carbon.min_observed_pct "
            f"({min_observed_pct:g} %) have no sink (empty). Add clear scenes for the cloudy year to close the gap.")


def lost_patches(space0: np.ndarray, space1: np.ndarray, stock0_t_ha: np.ndarray, stock1_t_ha: np.ndarray,
                 matrices: Sequence[sp.csr_matrix], zones: Sequence[gpd.GeoDataFrame], levels: Sequence[str],
                 grid: Grid, y0: int, y1: int) -> gpd.GeoDataFrame:
    """The patches of carbon-sink space lost between two years, as polygons (layer lost_patches).

    A pixel lost sink space where its sink space (:func:`sink_space`, both years known) shrank by
    more than :data:`LOST_EPS` of a pixel. Each pixel is given, at every level, the zone covering most
    of it (coverage matrices; none where no zone of the level covers it); a patch is a 4-connected
    group of lost pixels with the same zones at every level, polygonised along pixel edges
    (:func:`rasterio.features.shapes`). Columns: ``patch_id`` (1…), ``year_from``, ``year_to``,
    ``<level>_id`` per level, ``pixels``, ``area_ha`` (sink space lost: Σ lost share × pixel area,
    at most the polygon's area), ``carbon_t_from`` / ``carbon_t_to`` (stock of the patch's pixels in
    each year, t C; ``stock*_t_ha`` are flat per-pixel stocks, 0 where untyped, NaN where unknown),
    ``carbon_lost_t`` (from − to; NaN where a pixel's stock is unknown) and ``co2e_lost_t``. No lost
    pixel: an empty layer with these columns."""
    s0, s1 = np.asarray(space0, dtype=np.float64), np.asarray(space1, dtype=np.float64)
    lost = np.where(np.isfinite(s0) & np.isfinite(s1), s0 - s1, 0.0)
    idx = np.flatnonzero(lost > LOST_EPS)
    keys = np.full((len(matrices), idx.size), -1, dtype=np.int64)
    for j, matrix in enumerate(matrices):
        sub = matrix.tocsc()[:, idx]
        if sub.nnz:
            best = np.asarray(sub.argmax(axis=0)).ravel()
            covered = np.asarray(sub.max(axis=0).todense()).ravel() > 0
            keys[j] = np.where(covered, best, -1)
    group = np.unique(keys, axis=1, return_inverse=True)[1].reshape(-1) if idx.size else np.zeros(0, dtype=np.int64)
    label = np.zeros(grid.height * grid.width, dtype=np.int32)
    label[idx] = group + 1
    label = label.reshape(grid.shape)
    patch = np.zeros(grid.shape, dtype=np.int32)
    n = 0
    for g, box_ in enumerate(ndimage.find_objects(label), start=1):
        if box_ is None:
            continue
        comp, k = ndimage.label(label[box_] == g)  # 4-connected, like shapes(connectivity=4)
        view = patch[box_]
        view[comp > 0] = comp[comp > 0] + n
        n += k
    pid = patch.reshape(-1)[idx]
    ids, first = np.unique(pid, return_index=True)
    pa = grid.pixel_area_ha
    flat0 = np.asarray(stock0_t_ha, dtype=np.float64).reshape(-1)[idx]
    flat1 = np.asarray(stock1_t_ha, dtype=np.float64).reshape(-1)[idx]
    pos = np.searchsorted(ids, pid)
    c0 = np.bincount(pos, weights=flat0, minlength=ids.size) * pa
    c1 = np.bincount(pos, weights=flat1, minlength=ids.size) * pa
    geoms: dict[int, list] = {}
    if idx.size:
        for geom, value in features.shapes(patch, mask=patch > 0, transform=grid.transform, connectivity=4):
            geoms.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    out = pd.DataFrame({"patch_id": ids.astype(np.int64), "year_from": np.full(ids.size, y0, dtype=np.int64),
                        "year_to": np.full(ids.size, y1, dtype=np.int64)})
    for j, (level, z) in enumerate(zip(levels, zones, strict=True)):
        zid = z["zone_id"].astype(str).to_numpy()
        k = keys[j, first]
        out[f"{level}_id"] = np.array([zid[i] if i >= 0 else None for i in k], dtype=object)
    out["pixels"] = np.bincount(pos, minlength=ids.size).astype(np.int64)
    out["area_ha"] = np.bincount(pos, weights=lost[idx], minlength=ids.size) * pa
    out["carbon_t_from"] = c0
    out["carbon_t_to"] = c1
    out["carbon_lost_t"] = c0 - c1
    out["co2e_lost_t"] = c_to_co2e(out["carbon_lost_t"])
    polys = [shapely.union_all(geoms[int(i)]) if len(geoms.get(int(i), [])) != 1 else geoms[int(i)][0] for i in ids]
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(polys, crs=grid.crs), crs=grid.crs)


def attribution_raster(codes: np.ndarray, change_t_ha: np.ndarray, active: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(2, rows, cols) float32 of attribution.tif: band 1 the attribution class (:data:`ATTRIBUTION_CODES`,
    NaN where unknown), band 2 the stock change y1 − y0 (t C/ha, NaN where either year's stock is
    unknown), both given at the ``active`` pixels (typed land of either year); elsewhere the stock is 0
    in both years: class 0 (other), change 0."""
    out = np.zeros((2, shape[0] * shape[1]), dtype=np.float32)
    out[0, active] = codes
    out[1, active] = change_t_ha
    return out.reshape(2, *shape)


@dataclasses.dataclass
class Attribution:
    """What :func:`attribute_change` hands the change rule: ``raster`` (2, rows, cols) for attribution.tif,
    per level ``parts`` (:func:`zone_attribution`), ``space`` (:func:`zone_sink_space`) and ``green`` (the
    same on vegetated land alone) for :func:`change_table`, and the ``patches`` of lost sink space
    (:func:`lost_patches`)."""

    raster: np.ndarray
    parts: list[dict[str, np.ndarray]]
    space: list[dict[str, np.ndarray]]
    patches: gpd.GeoDataFrame
    green: list[dict[str, np.ndarray]] | None = None


def attribute_change(
    classes0: np.ndarray, classes1: np.ndarray, fractions0: np.ndarray, fractions1: np.ndarray, active: np.ndarray,
    stock0_t_ha: np.ndarray, stock1_t_ha: np.ndarray, map0_t_ha: np.ndarray, map1_t_ha: np.ndarray,
    matrices: Sequence[sp.csr_matrix], zones: Sequence[gpd.GeoDataFrame], levels: Sequence[str], grid: Grid,
    y0: int, y1: int, typed_land: bool = True,
) -> Attribution:
    """Attribution of the stock change between y0 and y1 and the loss of carbon-sink space, in one pass
    over estimates already computed (no draws).

    ``classes*`` are the years' vegetation class rasters (rows, cols), ``fractions*`` their green-space
    fractions (n_types, rows, cols), ``active`` the flat indices of the pixels typed in either year;
    at those pixels ``stock*_t_ha`` are the estimates the zone tables sum (filled where unobserved) and
    ``map*_t_ha`` those of the carbon maps (NaN where unobserved), t C/ha of pixel."""
    active = np.asarray(active)
    codes = attribution_classes(np.asarray(classes0).reshape(-1)[active], np.asarray(classes1).reshape(-1)[active],
                                dominant_type(fractions0)[active], dominant_type(fractions1)[active])
    stock0, stock1 = np.asarray(stock0_t_ha, dtype=np.float64), np.asarray(stock1_t_ha, dtype=np.float64)
    raster = attribution_raster(codes, np.asarray(map1_t_ha) - np.asarray(map0_t_ha), active, grid.shape)
    parts = zone_attribution(matrices, active, stock1 - stock0, codes, grid.pixel_area_ha)
    space0, space1 = sink_space(classes0, fractions0, typed_land), sink_space(classes1, fractions1, typed_land)
    space = zone_sink_space(matrices, space0, space1, grid.pixel_area_ha)
    full0, full1 = np.zeros(grid.height * grid.width), np.zeros(grid.height * grid.width)
    full0[active], full1[active] = stock0, stock1
    patches = lost_patches(space0, space1, full0, full1, matrices, zones, levels, grid, y0, y1)
    green = zone_sink_space(matrices, sink_space(classes0, fractions0, False), sink_space(classes1, fractions1, False),
                            grid.pixel_area_ha)  # vegetated land over the land whose vegetation both years saw
    return Attribution(raster, parts, space, patches, green)


# ----------------------------------------------------------------------------- one pass: map and zone sums


@dataclasses.dataclass
class SinkPass:
    """What :func:`sink_pass` gives the change rule: ``sink`` (3, rows, cols) float32 for sink.tif (as
    :func:`greensink.carbon.density_map` of the maps' difference), per coverage matrix ``sums`` (estimate
    (Z,), draws (Z, B), {source: (Z, B)}) of the filled sink (as :func:`greensink.aggregate.zone_draw_sums`)
    and ``sums_both`` (estimate, draws) over the typed land observed in both years (as the sums through
    :func:`masked_matrices` of :func:`observation_shares`' mask), and at the active pixels the filled stocks
    ``stock0`` / ``stock1`` (the zone tables' estimates) and the maps' ``map0`` / ``map1`` (NaN where
    unobserved), t C/ha of pixel."""

    sink: np.ndarray
    sums: list[tuple]
    sums_both: list[tuple[np.ndarray, np.ndarray]]
    stock0: np.ndarray
    stock1: np.ndarray
    map0: np.ndarray
    map1: np.ndarray


def sink_pass(fn0: PixelFn, fn1: PixelFn, unserved0: Callable[[np.ndarray], np.ndarray],
              unserved1: Callable[[np.ndarray], np.ndarray], years: float, active: np.ndarray,
              shape: tuple[int, int], matrices: Sequence[sp.csr_matrix], pixel_area_ha: float,
              interval_pct: float = 90.0, chunk_pixels: int = 8_192) -> SinkPass:
    """The sink map and the zone sums of the sink in one pass over the ``active`` pixels (flat, ascending),
    each year's draws evaluated once per chunk of ``chunk_pixels``.

    ``fn0`` / ``fn1`` are the years' pixel functions as the zone tables sum them (with ``fill`` and
    ``sources``, :func:`greensink.carbon.pixel_function`), ``unserved0`` / ``unserved1`` the years'
    :func:`unserved_function`. The map's function (no fill) differs from the filled one only at the
    pixels where a type has no usable model: there it is NaN, elsewhere it gives the same numbers (the
    fill touches only those pixels, and the noise of a pixel depends on the pixel alone). So the map is
    the filled difference made NaN where either year is unserved, and the result equals, bit for bit,
    :func:`greensink.carbon.density_map` of ``difference_function(map0, map1)`` and
    :func:`greensink.aggregate.zone_draw_sums` of ``difference_function(fn0, fn1)`` over ``matrices`` and
    their :func:`masked_matrices` (same chunks, same order of summation), which evaluated every draw twice.
    Memory: the three map bands, the per-pixel estimates and the sums, plus one chunk × draws."""
    from greensink.carbon import interval_quantiles as quantiles
    from greensink.carbon import iter_chunks

    if years <= 0:
        raise ValueError(f"years between stocks must be > 0. Got {years}.")
    active = np.asarray(active)
    qlo, qhi = quantiles(interval_pct)
    band = np.zeros((3, shape[0] * shape[1]), dtype=np.float32)
    stocks = [np.full(active.size, np.nan) for _ in range(2)]
    maps = [np.full(active.size, np.nan) for _ in range(2)]
    matrices = list(matrices)
    stacked = (sp.vstack(matrices).tocsc() if len(matrices) > 1 else matrices[0].tocsc()) if matrices else None
    n_rows = stacked.shape[0] if stacked is not None else 0
    est_sum, est_both = np.zeros(n_rows), np.zeros(n_rows)
    draw_sum = draw_both = None
    part_sums: dict[str, np.ndarray] | None = None
    start = 0
    recorded = {}

    def record(j: int, fn: PixelFn) -> PixelFn:
        def evaluate(idx: np.ndarray):
            res = fn(idx)
            recorded[j] = res[0]
            return res
        return evaluate

    diff = difference_function(record(0, fn0), record(1, fn1), years)
    for idx in iter_chunks(active, chunk_pixels):
        sl = slice(start, start + idx.size)
        start += idx.size
        est, draws, *rest = diff(idx)
        for j, unserved in enumerate((unserved0, unserved1)):
            stocks[j][sl] = recorded[j]
            maps[j][sl] = np.where(unserved(idx), np.nan, recorded[j])
        # the map (density_map of the maps' difference): NaN where either year's map is NaN
        est_map = np.where(np.isnan(maps[0][sl]) | np.isnan(maps[1][sl]), np.nan, est)
        band[0, idx] = est_map
        ok = np.isfinite(est_map)
        lo, hi = np.full(idx.size, np.nan), np.full(idx.size, np.nan)
        if ok.any():
            lo[ok], hi[ok] = np.quantile(draws[:, ok], [qlo, qhi], axis=0)
        band[1, idx], band[2, idx] = lo, hi
        if stacked is None:
            continue
        # the zone sums (zone_draw_sums), and those over the typed land the maps observed in both years
        sub = stacked[:, idx]
        est_sum += sub @ np.nan_to_num(est)
        d = np.nan_to_num(draws)
        part = sub @ d.T
        draw_sum = part if draw_sum is None else draw_sum + part
        if rest:
            if part_sums is None:
                part_sums = {k: np.zeros((n_rows, v.shape[0])) for k, v in rest[0].items()}
            for k, v in rest[0].items():
                part_sums[k] += sub @ np.nan_to_num(v).T
        both = np.isfinite(maps[0][sl]) & np.isfinite(maps[1][sl])
        est_both += sub @ np.where(both, np.nan_to_num(est), 0.0)
        part = sub @ np.where(both, d, 0.0).T
        draw_both = part if draw_both is None else draw_both + part
    if start != active.size:  # iter_chunks covers every active pixel once
        raise RuntimeError(f"sink_pass evaluated {start} of {active.size} active pixels.")
    sums: list[tuple] = []
    sums_both: list[tuple[np.ndarray, np.ndarray]] = []
    if stacked is not None:
        if draw_sum is None:
            draw_sum, draw_both = np.zeros((n_rows, 1)), np.zeros((n_rows, 1))
        est_sum *= pixel_area_ha
        draw_sum *= pixel_area_ha
        est_both *= pixel_area_ha
        draw_both *= pixel_area_ha
        sizes = np.cumsum([0] + [m.shape[0] for m in matrices])
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            if part_sums is not None:
                sums.append((est_sum[a:b], draw_sum[a:b], {k: v[a:b] * pixel_area_ha for k, v in part_sums.items()}))
            else:
                sums.append((est_sum[a:b], draw_sum[a:b]))
            sums_both.append((est_both[a:b], draw_both[a:b]))
    return SinkPass(band.reshape(3, *shape), sums, sums_both, stocks[0], stocks[1], maps[0], maps[1])


# ----------------------------------------------------------------------------- the change rule


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
    from greensink.carbon import fill_values, pixel_function, type_fill, typed_pixels
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
        fill = fill_values(type_fill(models, types, fractions, rasters, seed=int(models.get("seed", 0))))
        spec = noise_spec(uncertainty, models, seed=seed, year=year, resolution_m=grid.resolution_m, rho=rho["rho"],
                          paired=True)
        spec.width, spec.height = grid.width, grid.height
        if spec.residual is not None and field is not None:
            spec.residual = field
        noise = Noise(spec, np.asarray(models["types"][types[0]]["bootstrap"]).shape[0])
        layers = {**rasters, "ndvi_se": gio.read_raster(se_path)} if spec.ndvi else rasters
        return (pixel_function(models, types, fractions, layers, fill=fill, noise=noise, sources=True),
                unserved_function(models, types, fractions, layers))

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
