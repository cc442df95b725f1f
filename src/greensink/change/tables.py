"""Change tables: the sink classes, the observed shares of a pair (partial observation) and :func:`change_table`,
one row per zone with both stocks, the yearly sink with its interval, green-area change, attribution and
carbon-sink space (docs/method.md, "Partial observation in the change products")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from greensink.carbon import interval_quantiles
from greensink.change.attribution import ATTRIBUTION_PARTS
from greensink.uncertainty import u_pct, variance_shares
from greensink.units import c_to_co2e

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


@dataclass(frozen=True)
class DrawSummary:
    """What a change table takes from a zone sum's draws (Z, B), per zone: the central ``interval_pct`` % interval
    (``lo``, ``hi``: the draws' quantiles, the estimate itself with one draw), the IPCC U % against the estimate
    (``u_pct``: :func:`greensink.uncertainty.u_pct`; None where not asked for) and the per-source variance shares
    (``shares``: :func:`greensink.uncertainty.variance_shares` of the per-source parts; empty without them). Each is
    computed zone by zone, so a summary made ``zone_block`` zones at a time (a tiled run's gather) is the whole
    level's, bit for bit, and :func:`change_table` takes it in place of the draws."""

    lo: np.ndarray
    hi: np.ndarray
    u_pct: np.ndarray | None
    shares: dict[str, np.ndarray]
    interval_pct: float


def summarize_draws(estimate: np.ndarray, draws: np.ndarray, interval_pct: float,
                    parts: Mapping[str, np.ndarray] | None = None, u: bool = True) -> DrawSummary:
    """The :class:`DrawSummary` of the zone sums ``estimate`` (Z,) and ``draws`` (Z, B) with the per-source parts
    ``parts`` ({source: (Z, B)}, or None)."""
    est = np.asarray(estimate)
    qlo, qhi = interval_quantiles(interval_pct)
    lo, hi = np.quantile(draws, [qlo, qhi], axis=1) if draws.shape[1] > 1 else (est, est)
    return DrawSummary(lo=lo, hi=hi, u_pct=u_pct(draws, est) if u else None,
                       shares=variance_shares(parts) if parts else {}, interval_pct=float(interval_pct))


def join_summaries(blocks: Sequence[DrawSummary]) -> DrawSummary:
    """One :class:`DrawSummary` of consecutive zone blocks' summaries (in zone order)."""
    first = blocks[0]
    if any(b.interval_pct != first.interval_pct or b.shares.keys() != first.shares.keys()
           or (b.u_pct is None) != (first.u_pct is None) for b in blocks):
        raise ValueError("zone blocks' draw summaries of other intervals or sources cannot be joined.")
    cat = np.concatenate
    return DrawSummary(lo=cat([b.lo for b in blocks]), hi=cat([b.hi for b in blocks]),
                       u_pct=None if first.u_pct is None else cat([b.u_pct for b in blocks]),
                       shares={k: cat([b.shares[k] for b in blocks]) for k in first.shares},
                       interval_pct=first.interval_pct)


def _summary(estimate, draws, interval_pct: float, parts=None, u: bool = True) -> DrawSummary:
    """``draws`` itself where it is a :class:`DrawSummary` (checked to be of ``interval_pct``), else its summary."""
    if not isinstance(draws, DrawSummary):
        return summarize_draws(estimate, draws, interval_pct, parts, u)
    if draws.interval_pct != float(interval_pct):
        raise ValueError(f"a draw summary of a {draws.interval_pct:g} % interval for a {interval_pct:g} % table.")
    return draws


def change_table(
    zones: gpd.GeoDataFrame, table0: pd.DataFrame, table1: pd.DataFrame, y0: int, y1: int,
    sink_sums: tuple[np.ndarray, np.ndarray], interval_pct: float = 90.0, no_net_loss_tolerance_ha: float = 0.0,
    attribution: Mapping[str, np.ndarray] | None = None, sink_space: Mapping[str, np.ndarray] | None = None,
    observed: Mapping[str, object] | None = None, min_observed_pct: float = 0.0,
    green_compared: Mapping[str, np.ndarray] | None = None,
) -> gpd.GeoDataFrame:
    """One row per zone: both stocks, the yearly sink with its interval, and green-area change.

    ``sink_sums`` is (estimate (Z,), draws (Z, B)[, {source: (Z, B)}]), or (estimate, :class:`DrawSummary`) where
    the draws were summarized zone block by zone block (a tiled run's gather; the same numbers); so is
    ``observed["sums"]``.

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
    sink = _summary(est, draws, interval_pct, parts[0] if parts else None)
    lo, hi = sink.lo, sink.hi
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
    out["sink_u_pct"] = np.where(unknown, np.nan, sink.u_pct)  # per zone: the masked estimate's NaN rows are NaN anyway
    out["sink_class"] = sink_classes(est, out["sink_t_yr_lo"].to_numpy(), out["sink_t_yr_hi"].to_numpy())
    out["sink_significant"] = pd.array(np.where(unknown, None, out["sink_class"].isin(["gain", "loss"])), dtype="boolean")
    for source, share in sink.shares.items():
        out[f"var_share_{source}_pct"] = np.where(unknown, np.nan, share)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sink_t_ha_yr"] = np.where(area > 0, est / np.where(area > 0, area, 1), np.nan)
    out["sink_co2e_t_yr"] = c_to_co2e(est)
    if observed is not None:
        est_b, draws_b, *_ = observed["sums"]
        both = _summary(est_b, draws_b, interval_pct, u=False)
        lo_b, hi_b = both.lo, both.hi
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
