"""Aggregate: per-pixel products -> one table row per zone, at every planning level.

Pixel products are summed with exact coverage fractions (:mod:`greensink.coverage`): a zone's
total is Σ coverage × value × pixel area over the pixels it touches, so partial pixels count
by the share of them inside the zone and totals nest exactly wherever finer zones tile coarser
ones. Coverage is computed once per zone layer and grid and reused for every raster and year.

Denominators, stated once:

* ``area_ha`` – the zone polygon's area; densities per zone (``carbon_t_ha``) divide by it;
* ``green_space_grid_area_ha`` – typed green-space land as the carbon sees it, Σ coverage × type
  fraction × pixel area: ``carbon_t_per_green_space_ha`` divides carbon (spread over the same pixel
  fractions) by it, so numerator and denominator share one convention and a zone holding a sliver
  of green space gets that green space's density, not carbon of a whole pixel over a sliver's area;
* ``green_coverage_pct`` (绿化覆盖率) – vegetation seen from above (NDVI ≥ threshold) over the
  zone area observed clear at least once (``observed_pct`` says how much that is);
* ``green_space_ratio_pct`` (绿地率) – typed green-space land over zone area, from an exact
  vector overlay of the green-space polygons;
* ``canopy_cover_pct`` (树冠覆盖率) – tree canopy over observed zone area;
* ``tree_shrub_share_pct`` (乔灌木占比) – tree and shrub area over vegetated area;
* ``park_area_per_capita_m2`` – park (``greenspace.park_types``) area over the zone's people,
  NaN where the zone has no people (never 0, never infinity).

Uncertainty intervals of zone carbon come from the bootstrap draws summed over the zone.

No data is never zero (docs/method.md, "Unobserved land"): typed land whose carbon needs imagery
and had no clear observation is filled with its type's mean density over the year's observed
pixels (``carbon_t_filled``); ``carbon_observed_pct`` is the share of the zone's typed land whose
carbon is known without the fill. A zone below ``min_observed_pct`` of it (and always a zone whose
typed land was never observed) has NaN carbon, bounds, densities and per-type carbon;
``carbon_t_observed`` and ``carbon_t_filled`` stay numbers, so they nest at every level even where
``carbon_t`` is NaN. A zone without typed land has 0 t C.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from greensink.carbon import CO2_PER_C, PixelFn, interval_quantiles, iter_chunks
from greensink.coverage import zonal_mean, zonal_sum
from greensink.grid import Grid
from greensink.uncertainty import u_pct, variance_shares

log = logging.getLogger(__name__)

# Plausibility anchors (DESIGN.md): flagged in the tables, never clipped.
ANCHOR_MAX_T_HA = 68.0  # Beijing urban green space, maximum above-ground t C/ha
ANCHOR_CANOPY_T_HA = 76.9  # US urban trees, 7.69 kg C per m² of canopy (Nowak et al. 2013)
TREE_DOMINATED_SHARE = 0.5  # the canopy anchor applies where canopy is at least half the vegetated area
DEFAULT_MIN_OBSERVED_PCT = 50.0  # carbon.min_observed_pct: below it a zone's carbon is NaN, not a mostly filled guess
AREA_EPS_HA = 1e-9  # 0.01 m²: areas below this are float noise of coverage sums, not land


def zone_draw_sums(
    matrices: Sequence[sp.csr_matrix], fn: PixelFn, active: np.ndarray, pixel_area_ha: float,
    chunk_pixels: int = 32_768, progress: Callable[[int, int], None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each coverage matrix, (estimate sums (Z,), draw sums (Z, B)) of fn's t C/ha × area, in t C.

    NaN pixels (no clear observation) contribute nothing, to the estimate and to every draw alike.
    Where ``fn`` also returns its per-source contributions ({source: (B, n)}, see
    :func:`greensink.carbon.pixel_function` ``sources``), each item is (estimate, draws, {source:
    (Z, B)}): the zone sums of every source from the same draws, in the same chunk loop."""
    stacked = sp.vstack(matrices).tocsc() if len(matrices) > 1 else matrices[0].tocsc()
    sizes = np.cumsum([0] + [m.shape[0] for m in matrices])
    est_sum = np.zeros(stacked.shape[0])
    draw_sum: np.ndarray | None = None
    part_sums: dict[str, np.ndarray] | None = None
    chunks = list(iter_chunks(active, chunk_pixels))
    for i, idx in enumerate(chunks):
        est, draws, *rest = fn(idx)
        sub = stacked[:, idx]
        est_sum += sub @ np.nan_to_num(est)
        part = sub @ np.nan_to_num(draws).T
        draw_sum = part if draw_sum is None else draw_sum + part
        if rest:
            if part_sums is None:
                part_sums = {k: np.zeros((stacked.shape[0], v.shape[0])) for k, v in rest[0].items()}
            for k, v in rest[0].items():
                part_sums[k] += sub @ np.nan_to_num(v).T
        if progress:
            progress(i + 1, len(chunks))
    if draw_sum is None:
        draw_sum = np.zeros((stacked.shape[0], 1))
    est_sum *= pixel_area_ha
    draw_sum *= pixel_area_ha
    bounds = list(zip(sizes[:-1], sizes[1:], strict=True))
    if part_sums is not None:
        return [(est_sum[a:b], draw_sum[a:b], {k: v[a:b] * pixel_area_ha for k, v in part_sums.items()})
                for a, b in bounds]
    return [(est_sum[a:b], draw_sum[a:b]) for a, b in bounds]


MAX_PIECE_VERTICES = 256  # subdivide: a piece of a big polygon holds at most this many coordinates
_POLYGON = 3  # shapely type id of a Polygon


def subdivide(geoms: Sequence, max_vertices: int = MAX_PIECE_VERTICES, max_depth: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Polygon pieces of each geometry of ``geoms`` with at most ``max_vertices`` coordinates each,
    and the index of the geometry each piece comes from: (pieces, source).

    The pieces of one geometry are its polygon parts, cut in halves across their longer bounding-box
    side until small enough (like PostGIS ST_Subdivide); their interiors are disjoint and together
    they cover the geometry, so areas of overlaps with them add up to the overlap with the geometry
    (up to the rounding of the cut points, about 1e-12 of the area). Lines, points and empty
    geometries give no piece. With a bounded size per piece, intersecting zones with pieces found
    through a spatial index costs time linear in the number of zones and pieces, where intersecting
    every zone with one polygon as large as the city costs zones × city."""
    geoms = np.asarray(geoms, dtype=object)
    parts, source = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    parts, source = parts[keep], source[keep]
    done, done_src = [], []
    for _ in range(max_depth):
        small = shapely.get_num_coordinates(parts) <= max_vertices
        done.append(parts[small])
        done_src.append(source[small])
        parts, source = parts[~small], source[~small]
        if len(parts) == 0:
            break
        xmin, ymin, xmax, ymax = shapely.bounds(parts).T
        wide = (xmax - xmin) >= (ymax - ymin)
        xmid, ymid = (xmin + xmax) / 2, (ymin + ymax) / 2
        low = shapely.box(xmin, ymin, np.where(wide, xmid, xmax), np.where(wide, ymax, ymid))
        high = shapely.box(np.where(wide, xmid, xmin), np.where(wide, ymin, ymid), xmax, ymax)
        halves = shapely.intersection(np.concatenate([parts, parts]), np.concatenate([low, high]))
        parts, index = shapely.get_parts(halves, return_index=True)
        source = np.concatenate([source, source])[index]
        keep = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 0)
        parts, source = parts[keep], source[keep]
    done.append(parts)  # beyond max_depth (degenerate input): kept as they are
    done_src.append(source)
    return np.concatenate(done), np.concatenate(done_src).astype(np.intp)


def overlay_areas_m2(zone_geoms: np.ndarray, geoms: np.ndarray) -> sp.csr_matrix:
    """(zones × geoms) sparse matrix of exact intersection areas, m².

    Both sides are cut into pieces of bounded size (:func:`subdivide`) and only pieces whose
    boxes meet are intersected (STRtree), so a zone layer with a city-sized polygon on either side
    (a dissolved layer, the city zone) costs time linear in the pieces, not zones × city."""
    zone_geoms = np.asarray(zone_geoms, dtype=object)
    geoms = np.asarray(geoms, dtype=object)
    shape = (len(zone_geoms), len(geoms))
    if len(geoms) == 0 or len(zone_geoms) == 0:
        return sp.csr_matrix(shape)
    zp, zsrc = subdivide(zone_geoms)
    gp, gsrc = subdivide(geoms)
    zi, gi = shapely.STRtree(gp).query(zp, predicate="intersects")
    area = shapely.area(shapely.intersection(zp[zi], gp[gi])) if len(zi) else np.zeros(0)
    return sp.csr_matrix((area, (zsrc[zi], gsrc[gi])), shape=shape)  # pieces of one pair add up


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
    columns are then NaN (not given), not 0."""
    pa = grid.pixel_area_ha
    geoms = zones.geometry.values
    area_ha = shapely.area(geoms) / 1e4
    grid_area_ha = np.asarray(matrix.sum(axis=1)).ravel() * pa
    ndvi = rasters["ndvi"]
    observed_ha = zonal_sum(matrix, np.isfinite(ndvi).astype(np.float32)) * pa

    out = pd.DataFrame({"zone_id": zones["zone_id"].to_numpy(), "parent_id": zones["parent_id"].to_numpy(),
                        "level": zones["level"].to_numpy(), "name": zones["name"].to_numpy()})
    out["area_ha"] = area_ha
    out["grid_area_ha"] = grid_area_ha
    out["observed_pct"] = _pct(observed_ha, area_ha)
    veg_mean = zonal_mean(matrix, rasters["vegetation"])
    out["green_area_ha"] = veg_mean * observed_ha
    out["green_coverage_pct"] = 100.0 * veg_mean

    # green-space land from the polygons, exactly
    gs_codes = greenspace[type_column].astype(str).to_numpy()
    overlay = overlay_areas_m2(geoms, greenspace.geometry.values)
    gs_area = {t: np.asarray(overlay[:, gs_codes == t].sum(axis=1)).ravel() / 1e4 for t in types}
    total_gs = np.sum([gs_area[t] for t in types], axis=0)
    out["green_space_area_ha"] = total_gs
    out["green_space_ratio_pct"] = _pct(total_gs, area_ha)
    if "tree_shrub" in rasters:
        # 乔灌木占比: tree + shrub area over vegetated area (a planning guideline asks >= 70 %)
        out["tree_shrub_share_pct"] = _pct(zonal_sum(matrix, rasters["tree_shrub"]), zonal_sum(matrix, rasters["vegetation"]))
    canopy_mean = zonal_mean(matrix, rasters["canopy"])
    out["canopy_area_ha"] = canopy_mean * observed_ha
    out["canopy_cover_pct"] = 100.0 * canopy_mean
    out["ndvi_mean"] = zonal_mean(matrix, ndvi)
    out["fvc_mean"] = zonal_mean(matrix, rasters["fvc"])

    c = zone_carbon(matrix, pa, type_density, fractions, types, fill_t_ha, min_observed_pct)
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
    for source, share in variance_shares(parts[0] if parts else {}).items():
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
        people = population_in_zones(geoms, population, population_column)
        out["population"] = people
        out["park_area_per_capita_m2"] = _ratio(park_ha * 1e4, people)
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
    n = matrix.shape[0]
    fill = fill_t_ha or {}
    type_ha = np.zeros((len(types), n))
    per_type = np.zeros((len(types), n))
    observed_t = np.zeros(n)
    filled_t = np.zeros(n)
    unobserved_ha = np.zeros(n)
    unfillable_ha = np.zeros(n)
    for k, t in enumerate(types):
        frac = fractions[k]
        unseen = np.where(np.isnan(type_density[k]), frac, 0.0).astype(np.float32)
        type_ha[k] = zonal_sum(matrix, frac) * pixel_area_ha
        u_ha = zonal_sum(matrix, unseen) * pixel_area_ha
        obs = zonal_sum(matrix, type_density[k]) * pixel_area_ha  # NaN pixels add nothing
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


def population_in_zones(zone_geoms: np.ndarray, population: gpd.GeoDataFrame, column: str) -> np.ndarray:
    """People per zone, sharing each population polygon's people among zones by area."""
    polys = population.geometry.values
    people = population[column].to_numpy(dtype=float)
    share = overlay_areas_m2(zone_geoms, polys)
    poly_area = shapely.area(polys)
    weights = share @ sp.diags(np.where(poly_area > 0, 1.0 / np.where(poly_area > 0, poly_area, 1), 0.0))
    return np.asarray(weights @ people).ravel()


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


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _pct(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return 100.0 * _ratio(num, den)
