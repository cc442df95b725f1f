"""The zone table finished from the zone sums (:func:`zone_table_from_sums`, :func:`zone_table`): carbon, tiers, pools,
warnings and plausibility flags against the anchors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from greensink.carbon import interval_quantiles
from greensink.grid import Grid
from greensink.overlay import overlay_areas_m2, population_in_zones
from greensink.uncertainty import u_pct, variance_shares
from greensink.units import CO2_PER_C, ha_to_m2, m2_to_ha
from greensink.zone_sums import pixel_sums, type_sums

# Plausibility anchors (DESIGN.md): flagged in the tables, never clipped.
ANCHOR_MAX_T_HA = 68.0  # Beijing urban green space, maximum above-ground t C/ha

ANCHOR_CANOPY_T_HA = 76.9  # US urban trees, 7.69 kg C per m² of canopy (Nowak et al. 2013)

TREE_DOMINATED_SHARE = 0.5  # the canopy anchor applies where canopy is at least half the vegetated area

DEFAULT_MIN_OBSERVED_PCT = 50.0  # carbon.min_observed_pct: below it a zone's carbon is NaN, not a mostly filled guess

AREA_EPS_HA = 1e-9  # 0.01 m²: areas below this are float noise of coverage sums, not land



def zone_table(
    zones: gpd.GeoDataFrame,
    matrix: sp.csr_matrix,
    grid: Grid,
    rasters: Mapping[str, np.ndarray],
    type_density: np.ndarray,
    types: Sequence[str],
    draw_sums: tuple[np.ndarray, np.ndarray],
    greenspace: gpd.GeoDataFrame,
    type_column: str,
    park_types: Sequence[str],
    population: gpd.GeoDataFrame | None = None,
    population_column: str | None = None,
    interval_pct: float = 90.0,
    *,
    fractions: np.ndarray,
    fill_t_ha: Mapping[str, float | None] | None = None,
    tiers: Mapping[str, int] | None = None,
    pools: Mapping[str, Mapping[str, float | None]] | None = None,
    min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT,
    typed_land: bool = True,
    people: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """The zone table of one level and year with every column of the output contract.

    ``rasters`` holds ndvi, fvc, vegetation (0/1), canopy (0/1) and optionally tree_shrub (0/1) on the grid; ``type_density`` is
    (n_types, rows, cols) t C/ha of pixel contributed by each type, NaN where the type is present
    with no clear observation (:func:`greensink.carbon.type_density`); ``fractions`` the
    (n_types, rows, cols) type fractions; ``draw_sums`` comes from :func:`zone_draw_sums` for this
    level with the same fill (:func:`greensink.carbon.pixel_function`'s ``fill``).

    ``fill_t_ha`` gives per type the density (t C per ha of the type's land) its unobserved land is
    filled with (None or absent: not fillable, the land stays unknown); ``tiers`` the type's IPCC-style
    tier (1 default table, 2 coefficient table, 3 fitted to plots); ``pools`` per type the
    coefficient table's other pools {"c_soil": t C/ha or None, "c_dead": ...}. ``typed_land`` False
    is the run without green-space types (one pseudo-type over all land): the green-space and park
    columns are then NaN (not given), not 0. ``people``: the zones' people from ``population``
    (:func:`greensink.overlay.population_in_zones`) if the caller has them already (None: computed here).

    The pixel sums (:func:`greensink.zone_sums.pixel_sums`) are taken over ``matrix`` and the table finished from
    them by :func:`zone_table_from_sums`, as rule aggregate does from a tiled run's gathered sums."""
    sums = pixel_sums(matrix, rasters, type_density, fractions)
    return zone_table_from_sums(zones, sums, grid, types, draw_sums, greenspace, type_column, park_types, population,
                                population_column, interval_pct, fill_t_ha=fill_t_ha, tiers=tiers, pools=pools,
                                min_observed_pct=min_observed_pct, typed_land=typed_land, people=people)



def zone_table_from_sums(
    zones: gpd.GeoDataFrame,
    sums: Mapping[str, np.ndarray],
    grid: Grid,
    types: Sequence[str],
    draw_sums: tuple[np.ndarray, ...],
    greenspace: gpd.GeoDataFrame,
    type_column: str,
    park_types: Sequence[str],
    population: gpd.GeoDataFrame | None = None,
    population_column: str | None = None,
    interval_pct: float = 90.0,
    *,
    fill_t_ha: Mapping[str, float | None] | None = None,
    tiers: Mapping[str, int] | None = None,
    pools: Mapping[str, Mapping[str, float | None]] | None = None,
    min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT,
    typed_land: bool = True,
    people: np.ndarray | None = None,
    var_shares: Mapping[str, np.ndarray] | None = None,
) -> gpd.GeoDataFrame:
    """The zone table of :func:`zone_table` finished from the zones' pixel sums ``sums`` (one entry per zone:
    :func:`greensink.zone_sums.pixel_sums` over the whole grid, or the tiles' sums added up by
    :func:`greensink.zone_sums.gather`) and ``draw_sums`` (estimate, draws[, parts], :func:`zone_draw_sums`'
    item for this level). Means are sum / covered sum, NaN where nothing was covered
    (:func:`greensink.coverage.zonal_mean`'s rule). ``var_shares`` (source → (Z,) %): the variance shares of the
    per-source parts when the caller computed them already (a tiled gather does, in zone blocks, so the parts of
    all zones are never in memory at once); None: :func:`greensink.uncertainty.variance_shares` of ``draw_sums``'
    parts. The other arguments are :func:`zone_table`'s."""
    pa = grid.pixel_area_ha
    geoms = zones.geometry.values
    area_ha = m2_to_ha(shapely.area(geoms))
    grid_area_ha = sums["cover_px"] * pa
    observed_ha = sums["observed_px"] * pa

    out = pd.DataFrame({"zone_id": zones["zone_id"].to_numpy(), "parent_id": zones["parent_id"].to_numpy(),
                        "level": zones["level"].to_numpy(), "name": zones["name"].to_numpy()})
    out["area_ha"] = area_ha
    out["grid_area_ha"] = grid_area_ha
    out["observed_pct"] = _pct(observed_ha, area_ha)
    veg_mean = mean_of(sums, "vegetation")
    out["green_area_ha"] = veg_mean * observed_ha
    out["green_coverage_pct"] = 100.0 * veg_mean

    # green-space land from the polygons, exactly
    gs_codes = greenspace[type_column].astype(str).to_numpy()
    overlay = overlay_areas_m2(geoms, greenspace.geometry.values)
    gs_area = {t: m2_to_ha(np.asarray(overlay[:, gs_codes == t].sum(axis=1)).ravel()) for t in types}
    total_gs = np.sum([gs_area[t] for t in types], axis=0)
    out["green_space_area_ha"] = total_gs
    out["green_space_ratio_pct"] = _pct(total_gs, area_ha)
    if "tree_shrub_sum" in sums:
        # 乔灌木占比: tree + shrub area over vegetated area (a planning guideline asks >= 70 %)
        out["tree_shrub_share_pct"] = _pct(sums["tree_shrub_sum"], sums["vegetation_sum"])
    canopy_mean = mean_of(sums, "canopy")
    out["canopy_area_ha"] = canopy_mean * observed_ha
    out["canopy_cover_pct"] = 100.0 * canopy_mean
    out["ndvi_mean"] = mean_of(sums, "ndvi")
    out["fvc_mean"] = mean_of(sums, "fvc")

    c = zone_carbon_from_sums(sums, pa, types, fill_t_ha, min_observed_pct)
    carbon, known = c["carbon_t"], c["known"]
    est_sum, draws, *parts = draw_sums
    qlo, qhi = interval_quantiles(interval_pct)
    lo, hi = (np.quantile(draws, [qlo, qhi], axis=1) if draws.shape[1] > 1 else (est_sum, est_sum))
    out["green_space_grid_area_ha"] = c["typed_ha"]
    out["carbon_observed_pct"] = _pct(c["typed_ha"] - c["unobserved_ha"], c["typed_ha"])
    out["carbon_t"] = carbon
    out["carbon_t_lo"] = np.where(known, np.minimum(lo, carbon), np.nan)
    out["carbon_t_hi"] = np.where(known, np.maximum(hi, carbon), np.nan)
    out["carbon_t_conservative"] = out["carbon_t_lo"]  # the lower bound: a conservative estimate (docs/outputs.md)
    out["carbon_u_pct"] = np.where(known, u_pct(draws, carbon), np.nan)
    shares = var_shares if var_shares is not None else variance_shares(parts[0] if parts else {})
    for source, share in shares.items():
        out[f"var_share_{source}_pct"] = np.where(known, share, np.nan)
    out["carbon_t_observed"] = c["observed_t"]
    out["carbon_t_filled"] = c["filled_t"]
    out["carbon_t_ha"] = _ratio(carbon, area_ha)
    out["carbon_t_per_green_space_ha"] = _ratio(carbon, c["typed_ha"]) if typed_land else np.nan
    out["co2e_t"] = carbon * CO2_PER_C
    out["co2e_t_lo"] = out["carbon_t_lo"] * CO2_PER_C
    out["co2e_t_hi"] = out["carbon_t_hi"] * CO2_PER_C
    for k, t in enumerate(types):
        out[f"carbon_t_{t}"] = np.where(known, c["per_type"][k], np.nan)
    present = c["type_ha"] > AREA_EPS_HA
    out["carbon_tier"] = zone_tiers(present, [int((tiers or {}).get(t, 0)) for t in types])
    for pool, column in (("c_soil", "soil_carbon_t"), ("c_dead", "dead_carbon_t")):
        dens = np.array([_pool(pools, t, pool) for t in types], dtype=float)
        out[column] = pool_sums(c["type_ha"], dens)
    if not typed_land:  # no green-space types given: typed land is unknown, not 0
        for col in ("green_space_area_ha", "green_space_ratio_pct", "green_space_grid_area_ha"):
            out[col] = np.nan
    for t in types:
        out[f"green_space_area_ha_{t}"] = gs_area[t] if typed_land else np.nan

    park_ha = np.sum([gs_area[t] for t in park_types], axis=0) if park_types else np.zeros(len(zones))
    if not typed_land:
        park_ha = np.full(len(zones), np.nan)
    out["park_area_ha"] = park_ha
    if population is not None and population_column:
        if people is None:
            people = population_in_zones(geoms, population, population_column)
        out["population"] = people
        out["park_area_per_capita_m2"] = _ratio(ha_to_m2(park_ha), people)
    else:
        out["population"] = np.nan
        out["park_area_per_capita_m2"] = np.nan
    out["plausibility_flag"] = plausibility_flags(out)
    return gpd.GeoDataFrame(out, geometry=geoms, crs=zones.crs)



def zone_carbon(matrix: sp.csr_matrix, pixel_area_ha: float, type_density: np.ndarray, fractions: np.ndarray,
                types: Sequence[str], fill_t_ha: Mapping[str, float | None] | None = None,
                min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT) -> dict[str, np.ndarray]:
    """Zone carbon under the fill rule (module docstring), all in t C or ha (pixel-fraction convention).

    Per zone: ``typed_ha`` (Σ coverage × type fractions × pixel area), ``type_ha`` (n_types, Z),
    ``unobserved_ha`` (typed land with no usable model: NaN in ``type_density``), ``observed_t``
    (carbon of the observed land and of constant-density types), ``filled_t`` (unobserved land ×
    its type's fill density; types without a fill add nothing and leave their land unknown),
    ``per_type`` (n_types, Z) observed + filled, ``known`` (bool: the zone reports carbon) and
    ``carbon_t`` (observed + filled where known, else NaN). A zone is not known when it has typed
    land and (a) none of it is known without the fill, (b) the known share is below
    ``min_observed_pct``, or (c) some of it is unobserved and its type has no fill."""
    return zone_carbon_from_sums(type_sums(matrix, type_density, fractions), pixel_area_ha, types, fill_t_ha,
                                 min_observed_pct)



def zone_carbon_from_sums(sums: Mapping[str, np.ndarray], pixel_area_ha: float, types: Sequence[str],
                          fill_t_ha: Mapping[str, float | None] | None = None,
                          min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT) -> dict[str, np.ndarray]:
    """:func:`zone_carbon` from the zones' type sums (``type_px``, ``unseen_px``, ``density_px``, each
    (Z, n_types) in pixel units: :func:`greensink.zone_sums.type_sums`, or the tiles' sums added up)."""
    n = sums["type_px"].shape[0]
    fill = fill_t_ha or {}
    type_ha = np.zeros((len(types), n))
    per_type = np.zeros((len(types), n))
    observed_t = np.zeros(n)
    filled_t = np.zeros(n)
    unobserved_ha = np.zeros(n)
    unfillable_ha = np.zeros(n)
    for k, t in enumerate(types):
        type_ha[k] = sums["type_px"][:, k] * pixel_area_ha
        u_ha = sums["unseen_px"][:, k] * pixel_area_ha
        obs = sums["density_px"][:, k] * pixel_area_ha  # NaN pixels added nothing
        density = fill.get(t)
        f_t = u_ha * float(density) if density is not None else np.zeros(n)
        if density is None:
            unfillable_ha += u_ha
        per_type[k] = obs + f_t
        observed_t += obs
        filled_t += f_t
        unobserved_ha += u_ha
    typed_ha = type_ha.sum(axis=0)
    known_ha = typed_ha - unobserved_ha
    has_land = typed_ha > AREA_EPS_HA
    share = 100.0 * _ratio(known_ha, typed_ha)
    known = ~has_land | ((known_ha > AREA_EPS_HA) & (np.nan_to_num(share) >= min_observed_pct)
                         & (unfillable_ha <= AREA_EPS_HA))
    carbon = np.where(known, observed_t + filled_t, np.nan)
    return {"typed_ha": typed_ha, "type_ha": type_ha, "unobserved_ha": unobserved_ha, "observed_t": observed_t,
            "filled_t": filled_t, "per_type": per_type, "known": known, "carbon_t": carbon}



def zone_tiers(present: np.ndarray, tiers: Sequence[int]) -> list[str]:
    """Per zone, the tiers of the types present ((n_types, Z) bool) joined by "+", e.g. "T3" or "T2+T3";
    "" for a zone without typed land. Tier 1: default density table; 2: coefficient table; 3: models
    fitted to local plots (IPCC settlements tiers, in spirit)."""
    tiers = np.asarray(tiers)
    out = []
    for col in np.asarray(present, dtype=bool).T:
        out.append("+".join(f"T{v}" for v in sorted({int(x) for x in tiers[col] if x > 0})))
    return out



def pool_sums(type_ha: np.ndarray, density_t_ha: np.ndarray) -> np.ndarray:
    """Per zone Σ_t density_t × typed area_t (t C) of a pool the coefficient table gives per ha of
    the type's land (soil, dead organic matter): it needs no imagery. NaN where a type present in the
    zone has no value for the pool (a partial total would undercount); 0 where the zone has no typed land."""
    present = type_ha > AREA_EPS_HA
    dens = np.asarray(density_t_ha, dtype=float)[:, None]
    total = np.sum(np.where(present, np.nan_to_num(dens) * type_ha, 0.0), axis=0)
    lacking = np.any(present & np.isnan(dens), axis=0)
    return np.where(lacking, np.nan, total)



def _pool(pools: Mapping[str, Mapping[str, float | None]] | None, t: str, pool: str) -> float:
    value = ((pools or {}).get(t) or {}).get(pool)
    return np.nan if value is None else float(value)



def unobserved_zones_warning(table: pd.DataFrame, level: str, limit: int = 20) -> str | None:
    """A warning naming the zones with no clear observation at all (no imagery over them, or always
    cloudy), or None. Their carbon and cover values are missing (NaN or 0 t), not measured as none."""
    unseen = table.loc[~(table["observed_pct"] > 0), "zone_id"].astype(str).tolist()
    if not unseen:
        return None
    more = f" and {len(unseen) - limit} more" if len(unseen) > limit else ""
    return (f"{level}: {len(unseen)} zone(s) have no clear observation at all, so no imagery-based value: "
            f"{', '.join(unseen[:limit])}{more}. Check that the imagery covers them (observed_pct in the zone table).")



def unknown_carbon_warning(table: pd.DataFrame, level: str, min_observed_pct: float, limit: int = 20) -> str | None:
    """A warning naming the zones whose carbon is NaN (typed land never observed, or observed below
    ``min_observed_pct``), and the filled tonnes of the zones that report carbon; or None."""
    unknown = table["carbon_t"].isna().to_numpy()
    filled = float(np.nansum(np.where(unknown, 0.0, table["carbon_t_filled"].to_numpy(dtype=float))))
    parts = []
    if unknown.any():
        ids = table.loc[unknown, "zone_id"].astype(str).tolist()
        more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
        parts.append(f"{len(ids)} zone(s) have carbon NaN (their typed land was observed clear on less than "
                     f"{min_observed_pct:g} % of its area, or never): {', '.join(ids[:limit])}{more}")
    if filled > 0:
        parts.append(f"{filled:.1f} t C of the zones that report carbon are filled for unobserved typed land "
                     "(carbon_t_filled; rule in docs/method.md)")
    if not parts:
        return None
    return f"{level}: " + "; ".join(parts) + ". Check the imagery's coverage and clouds (carbon_observed_pct in the zone table)."



def plausibility_flags(table: pd.DataFrame) -> list[str]:
    """Text flags where a zone's carbon density is outside the published anchors (never clipped)."""
    flags = []
    canopy = table["canopy_area_ha"].to_numpy(dtype=float)
    per_canopy = _ratio(table["carbon_t"].to_numpy(), canopy)
    # The canopy anchor describes tree carbon per m² of tree crown: compare only where trees make up
    # most of the vegetation, so grass and shrub carbon over a little canopy does not raise false alarms.
    green = table["green_area_ha"].to_numpy(dtype=float) if "green_area_ha" in table else canopy
    tree_dominated = np.nan_to_num(canopy) >= TREE_DOMINATED_SHARE * np.nan_to_num(green)
    for dens, canopy_dens, trees in zip(table["carbon_t_per_green_space_ha"].to_numpy(), per_canopy, tree_dominated, strict=True):
        f = []
        if np.isfinite(dens) and dens > ANCHOR_MAX_T_HA:
            f.append(f"{dens:.1f} t C/ha of green space exceeds the Beijing maximum {ANCHOR_MAX_T_HA:g}")
        if trees and np.isfinite(canopy_dens) and canopy_dens > 2 * ANCHOR_CANOPY_T_HA:
            f.append(f"{canopy_dens:.1f} t C/ha of canopy exceeds twice the US urban mean {ANCHOR_CANOPY_T_HA:g} (Nowak et al. 2013)")
        flags.append("; ".join(f))
    return flags



def mean_of(sums: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """The coverage-weighted mean of raster ``name`` per zone from its sums: ``<name>_sum`` / ``<name>_covered``,
    NaN where the zone covers no pixel with a value (never 0, never inf; :func:`greensink.coverage.zonal_mean`)."""
    total, covered = sums[f"{name}_sum"], sums[f"{name}_covered"]
    out = np.full(total.shape, np.nan, dtype=np.float64)
    has_data = covered > 0
    out[has_data] = total[has_data] / covered[has_data]
    return out



def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)



def _pct(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return 100.0 * _ratio(num, den)
