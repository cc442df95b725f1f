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

Two steps: the zone sums that are linear in the pixels (:func:`zone_partial_sums`, :mod:`greensink.zone_sums`)
over a block of pixels, then the tables finished from them (:func:`zone_table_from_sums`, :func:`finish_tables`).
Untiled, rule aggregate takes the whole grid as one block (:func:`run_aggregate`); with ``tiles.size_px`` each
``aggregate_tile`` job writes its tile's sums (:func:`run_aggregate_tile`) and rule aggregate adds them up and
finishes the same tables (:func:`run_aggregate_gather`). Both read the year's fill of unobserved typed land from
rule fill's ``results/{year}/fill.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from rasterio.windows import Window

from greensink import io as gio
from greensink import logs
from greensink.carbon import (
    PixelFn,
    fill_values,
    interval_quantiles,
    iter_chunks,
    pixel_function,
    read_fill,
    type_density,
    type_fill,
    typed_pixels,
)
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.indicators import DEFAULT_SERVICE_RULES, park_service_columns, service_overlay
from greensink.model import used_predictors
from greensink.overlay import MAX_PIECE_VERTICES as MAX_PIECE_VERTICES  # re-exported: the overlays' old home
from greensink.overlay import overlay_areas_m2, population_in_zones
from greensink.overlay import subdivide as subdivide
from greensink.uncertainty import Noise, noise_spec, u_pct, variance_shares
from greensink.uncertainty import settings as uncertainty_settings
from greensink.units import CO2_PER_C, ha_to_m2, m2_to_ha
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask
from greensink.zone_sums import (
    DRAW_PREFIX,
    ZoneSums,
    add_sums,
    compact,
    pixel_sums,
    read_tile_sums,
    touching_rows,
    type_sums,
    write_tile_sums,
)

log = logging.getLogger(__name__)

# Plausibility anchors (DESIGN.md): flagged in the tables, never clipped.
ANCHOR_MAX_T_HA = 68.0  # Beijing urban green space, maximum above-ground t C/ha
ANCHOR_CANOPY_T_HA = 76.9  # US urban trees, 7.69 kg C per m² of canopy (Nowak et al. 2013)
TREE_DOMINATED_SHARE = 0.5  # the canopy anchor applies where canopy is at least half the vegetated area
DEFAULT_MIN_OBSERVED_PCT = 50.0  # carbon.min_observed_pct: below it a zone's carbon is NaN, not a mostly filled guess
AREA_EPS_HA = 1e-9  # 0.01 m²: areas below this are float noise of coverage sums, not land
MIN_TILE_CHUNK_PIXELS = 1024  # the smallest chunk of a tile's pixels drawn at once (rule aggregate_tile)


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


ZONE_DRAWS_FORMAT = 1  # the layout of a .draws.npz (ZoneDraws); a reader refuses another


def content_sha256(obj: object) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys): the same for a dict read back from its JSON file."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ZoneDraws:
    """One year's zone sums of the carbon draws at one level, as rule aggregate drew them: the record the
    scenario rules read for their baseline instead of drawing the baseline again (docs/method.md, "Draws
    written once"). Written to results/{year}/zones/{level}.draws.npz (:meth:`write`, :meth:`read`).

    ``estimate`` (Z,) and ``draws`` (Z, B) are t C per zone (float64), the sums over the year's typed pixels of
    the filled pixel function (:func:`zone_draw_sums`, no per-source parts), in the order of ``zone_ids``. The
    identity of the draws' streams: ``seed``, ``year``, ``n_draws`` (B), the SHA-256 of the uncertainty
    settings with their defaults (``uncertainty_sha256``) and of the year's models.json
    (``models_sha256``, which holds the bootstrap and the residual field); :meth:`check` refuses a record
    whose identity differs from the reader's run."""

    level: str
    year: int
    zone_ids: np.ndarray
    estimate: np.ndarray
    draws: np.ndarray
    seed: int
    n_draws: int
    uncertainty_sha256: str
    models_sha256: str
    path: str = ""  # the file it was read from ("" when built in memory); not part of the identity

    @staticmethod
    def identity(*, seed: int, year: int, n_draws: int, uncertainty: Mapping | None, models_sha256: str) -> dict:
        """The identity a run expects of its records: seed, year, number of draws, the digest of the uncertainty
        settings (defaults filled in, so a left-out key and its default agree) and ``models_sha256``, the
        :func:`content_sha256` of the year's models.json as read."""
        return {"seed": int(seed), "year": int(year), "n_draws": int(n_draws),
                "uncertainty_sha256": content_sha256(uncertainty_settings(uncertainty)), "models_sha256": models_sha256}

    @classmethod
    def from_sums(cls, level: str, zone_ids: Sequence, sums: tuple[np.ndarray, ...], identity: Mapping) -> ZoneDraws:
        """The record of one level's :func:`zone_draw_sums` item (estimate, draws[, parts]; parts are not kept)."""
        est, draws = np.asarray(sums[0], dtype=np.float64), np.asarray(sums[1], dtype=np.float64)
        n = int(identity["n_draws"])
        if draws.shape[1] != n:  # no typed pixel at all: zone_draw_sums gives one column of zeros
            draws = np.broadcast_to(draws, (draws.shape[0], n)).copy()
        return cls(level=level, zone_ids=np.asarray(zone_ids).astype(str), estimate=est, draws=draws, **identity)

    def write(self, path: str | Path) -> Path:
        meta = {"format": ZONE_DRAWS_FORMAT, "level": self.level, "year": self.year, "seed": self.seed,
                "n_draws": self.n_draws, "uncertainty_sha256": self.uncertainty_sha256,
                "models_sha256": self.models_sha256, "units": "t C"}
        return gio.write_arrays(path, {"zone_ids": self.zone_ids.astype(str), "estimate_t": self.estimate,
                                       "draws_t": self.draws}, meta)

    @classmethod
    def read(cls, path: str | Path) -> ZoneDraws:
        """The record in ``path``; an InputDataError naming the file when it is not one of this format."""
        arrays, meta = gio.read_arrays(path, "zone draws file (.draws.npz)")
        fix = f"Delete {path} and run rule aggregate again (snakemake --forcerun aggregate)."
        if meta.get("format") != ZONE_DRAWS_FORMAT:
            raise InputDataError(f"{path}: zone draws format must be {ZONE_DRAWS_FORMAT}. Got {meta.get('format')!r}. {fix}")
        missing = sorted({"zone_ids", "estimate_t", "draws_t"} - set(arrays))
        if missing:
            raise InputDataError(f"{path}: zone draws file lacks {', '.join(missing)}. {fix}")
        ids, est, draws = arrays["zone_ids"], arrays["estimate_t"], arrays["draws_t"]
        z = ids.shape[0]
        if est.shape != (z,) or draws.shape != (z, int(meta["n_draws"])):
            raise InputDataError(f"{path}: zone draws shapes must be estimate ({z},) and draws ({z}, {meta['n_draws']}) "
                                 f"for {z} zones. Got {est.shape} and {draws.shape}. {fix}")
        return cls(level=str(meta["level"]), year=int(meta["year"]), zone_ids=ids.astype(str),
                   estimate=est.astype(np.float64, copy=False), draws=draws.astype(np.float64, copy=False),
                   seed=int(meta["seed"]), n_draws=int(meta["n_draws"]), uncertainty_sha256=str(meta["uncertainty_sha256"]),
                   models_sha256=str(meta["models_sha256"]), path=str(path))

    def check(self, *, level: str, zone_ids: Sequence, identity: Mapping) -> None:
        """Refuse (InputDataError naming the file, the field, what it holds and what the run expects) a record of
        another level, zone list or draw identity (:meth:`identity`) than the reader's."""
        where = self.path or f"zone draws of {self.level} {self.year}"
        fix = (f"The record was drawn for other settings or inputs: delete it and run rule aggregate for {self.year} "
               "again (snakemake --forcerun aggregate), so the baseline's draws match this run.")
        expected = {"level": level, **identity}
        for name, want in expected.items():
            got = getattr(self, name)
            if got != want:
                raise InputDataError(f"{where}: {name} must be {want!r} for this run. Got {got!r}. {fix}")
        ids = np.asarray(zone_ids).astype(str)
        if ids.shape != self.zone_ids.shape or not np.array_equal(ids, self.zone_ids):
            raise InputDataError(f"{where}: zone_ids must be the {ids.size} zones of results/zones/{level}.gpkg in their "
                                 f"order. Got {self.zone_ids.size} zones, not the same. {fix}")


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
) -> gpd.GeoDataFrame:
    """The zone table of :func:`zone_table` finished from the zones' pixel sums ``sums`` (one entry per zone:
    :func:`greensink.zone_sums.pixel_sums` over the whole grid, or the tiles' sums added up by
    :func:`greensink.zone_sums.gather`) and ``draw_sums`` (estimate, draws[, parts], :func:`zone_draw_sums`'
    item for this level). Means are sum / covered sum, NaN where nothing was covered
    (:func:`greensink.coverage.zonal_mean`'s rule); the other arguments are :func:`zone_table`'s."""
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


def zone_partial_sums(matrices: Sequence[sp.csr_matrix], rasters: Mapping[str, np.ndarray], fractions: np.ndarray,
                      models: dict, types: Sequence[str], predictors: Mapping[str, np.ndarray],
                      fill: Mapping[str, Mapping], pixel_area_ha: float, *, noise: Noise | None = None,
                      ndvi_se: np.ndarray | None = None, row0: int = 0, col0: int = 0, grid_width: int | None = None,
                      chunk_pixels: int = 16_384, compact_rows: bool = True,
                      progress: Callable[[int, int], None] | None = None) -> list[ZoneSums]:
    """Each level's :class:`~greensink.zone_sums.ZoneSums` over a block of pixels: the whole grid (untiled), or a
    tile (``matrices`` the tile's coverage matrices, every zone a row, local pixel index r × tile width + c; the
    rasters its windows; ``row0``, ``col0`` its top-left grid pixel and ``grid_width`` the grid's columns, so the
    noise streams are keyed by the whole grid's pixels and a tile's draws are the whole grid's at those pixels).

    Only the zones touching the block (a stored coverage entry) are kept, so the memory of a tile's draw sums
    grows with the zones it touches (``compact_rows`` False: every zone, and no copy of the matrices, for the whole
    grid; the zones touching no pixel have sums 0 either way, to the bit). ``rasters`` (ndvi, fvc, vegetation, canopy, tree_shrub), ``fractions``
    (n_types, rows, cols), ``predictors`` (the models' predictor rasters by name) and ``ndvi_se`` (the NDVI
    error source, where ``noise`` has it) are on the block; ``fill`` is the year's fill of unobserved typed land
    (:func:`greensink.carbon.type_fill`'s format). The draws are those of rule aggregate: the filled pixel
    function with every source (:func:`greensink.carbon.pixel_function`, ``sources``), summed by
    :func:`zone_draw_sums`; a block without typed pixels has no draw sums."""
    rows = [touching_rows(m) if compact_rows else np.arange(m.shape[0]) for m in matrices]
    mats = [compact(m, r) for m, r in zip(matrices, rows, strict=True)]
    density = type_density(models, types, fractions, predictors)
    active = typed_pixels(fractions)
    draws = None
    if active.size:
        inputs = {**predictors, "ndvi_se": ndvi_se} if noise is not None and noise.spec.ndvi else predictors
        fn = pixel_function(models, types, fractions, inputs, fill=fill_values(fill), noise=noise, sources=True,
                            row0=row0, col0=col0, grid_width=grid_width)
        draws = zone_draw_sums(mats, fn, active, pixel_area_ha, chunk_pixels=chunk_pixels, progress=progress)
    out = []
    for i, (m, r) in enumerate(zip(mats, rows, strict=True)):
        values = pixel_sums(m, rasters, density, fractions)
        if draws is not None:
            est, d, *parts = draws[i]
            values["estimate_t"], values["draws_t"] = est, d
            for source, v in (parts[0] if parts else {}).items():
                values[f"{DRAW_PREFIX}{source}_t"] = v
        out.append(ZoneSums(n_zones=matrices[i].shape[0], rows=r, values=values))
    return out


def draw_sums_of(sums: Mapping[str, np.ndarray], n_zones: int) -> tuple:
    """(estimate (Z,), draws (Z, B)[, {source: (Z, B)}]) of one level's summed :class:`ZoneSums` values, as
    :func:`zone_draw_sums` gives them; zeros (one draw column, no sources) where no typed pixel was drawn."""
    est = sums.get("estimate_t", np.zeros(n_zones))
    draws = sums.get("draws_t", np.zeros((n_zones, 1)))
    parts = {k[len(DRAW_PREFIX):-2]: v for k, v in sums.items() if k.startswith(DRAW_PREFIX)}
    return (est, draws, parts) if parts else (est, draws)


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


def log_fill(fill: Mapping[str, Mapping], pixel_area_ha: float) -> None:
    for t, f in fill.items():
        log.info("fill of unobserved %s land: %s t C/ha (between-pixel sd %s) from %.1f ha observed", t,
                 "none (no observed pixel: its unobserved land stays unknown)" if f["fill_t_ha"] is None
                 else f"{f['fill_t_ha']:.3f}",
                 "-" if f["spread_t_ha"] is None else f"{f['spread_t_ha']:.3f}", f["observed_ha_px"] * pixel_area_ha)


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
                  draws_out: Sequence[str | Path] | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The zone tables (and :class:`ZoneDraws` records) of every level from its zones' summed pixel and draw sums
    ``sums`` (one dict per level, one entry per zone: the whole grid's, or a tiled run's gathered tile sums):
    :func:`zone_table_from_sums` with the vector overlays (green-space land, parks, people, park service).
    The arguments are :func:`run_aggregate`'s."""
    models, fill = yi.models, yi.fill
    draw_sums = [draw_sums_of(s, len(z)) for s, z in zip(sums, zone_layers, strict=True)]
    if draws_out is not None:
        identity = ZoneDraws.identity(seed=seed, year=year, n_draws=yi.n_draws, uncertainty=uncertainty,
                                      models_sha256=yi.models_digest)
        for level, z, s, path in zip(levels, zone_layers, draw_sums, draws_out, strict=True):
            ZoneDraws.from_sums(level, z["zone_id"].to_numpy(), s, identity).write(path)
        log.info("zone draws written for %d level(s): %d draws per zone", len(levels), yi.n_draws)
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
    for level, z, s, d, path in zip(levels, zone_layers, sums, draw_sums, tables_out, strict=True):
        # people per zone once per level: the table's population and the park-service coverage share it
        zone_people = population_in_zones(z.geometry.values, people, pop_col) if people is not None and pop_col else None
        table = zone_table_from_sums(z, s, g, types, d, typed, gs["type_column"], gs["park_types"], people, pop_col,
                                     interval_pct, min_observed_pct=min_observed_pct, typed_land=typed_land,
                                     people=zone_people, **type_info)
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
    return out


def tile_sums_identity(yi: YearInputs, grid: Grid, *, year: int, seed: int, uncertainty: Mapping | None) -> dict:
    """What a tile's sums must share with the gather's run (the header entries :func:`read_tile_sums` checks):
    the grid's shape, the year and the identity of the draws (:meth:`ZoneDraws.identity`)."""
    ident = ZoneDraws.identity(seed=seed, year=year, n_draws=yi.n_draws, uncertainty=uncertainty,
                               models_sha256=yi.models_digest)
    return {"grid_shape": [grid.height, grid.width], **ident}


def check_grid_shape(grid: Grid, paths: Sequence[str | Path], tile_id: str) -> None:
    """Each raster of ``paths`` on the run's grid (its shape), or InputDataError naming it: a tile job reads windows
    of them, which must be the tile's pixels."""
    for path in paths:
        got = gio.read_grid(path)
        if got.shape != grid.shape:
            raise InputDataError(f"{path}: {got.height} × {got.width} pixels, but the run's grid (results/zones/grid.json) "
                                 f"is {grid.height} × {grid.width}, so tile {tile_id} is not its window. Rerun the stage "
                                 "that wrote it.")


def run_aggregate_tile(coverage_tiles: Sequence[str | Path], grid: str | Path, rasters: Mapping[str, str | Path],
                       fractions: str | Path, models_json: str | Path, fill_json: str | Path,
                       predictors: Mapping[str, str | Path], ndvi_se: str | Path | None, out: str | Path, *,
                       year: int, tile_id: str, size_px: int, levels: Sequence[str], types: Sequence[str], seed: int,
                       uncertainty: Mapping | None = None, chunk_pixels: int = 16_384) -> dict[str, ZoneSums]:
    """Rule aggregate_tile: one tile's zone sums of every level (:func:`zone_partial_sums`), written to ``out``
    (results/{year}/tiles/aggregate_{tile}.npz, :func:`greensink.zone_sums.write_tile_sums`) and returned.

    It reads only the tile's window of the year's whole-grid rasters (``rasters``, ``fractions``, ``predictors``,
    ``ndvi_se``: :func:`run_aggregate`'s), the tile's coverage matrix of each level (``coverage_tiles``, one per
    level of ``levels``: :func:`greensink.coverage.tile_coverage_matrix`, local pixel index r × tile width + c)
    and the year's fill ``fill_json`` (results/{year}/fill.json, refused when made from other models than
    ``models_json``). The draws are keyed by the whole grid's pixels, so they are the untiled rule's there.
    Memory: the tile's rasters and the draw sums of the zones touching it."""
    g = Grid.read(grid)
    tile = g.tile(tile_id, size_px)
    window = Window(tile.col_off, tile.row_off, tile.width, tile.height)
    models = gio.read_json(models_json)
    fill = read_fill(fill_json, models=models, year=year)  # refused when made from other models or another year
    check_grid_shape(g, [rasters["ndvi"], fractions], tile_id)
    ndvi_error = bool(uncertainty_settings(uncertainty)["ndvi"]["enabled"])
    layers, frac, used, se = read_layers(rasters, fractions, predictors, ndvi_se, models, types, ndvi_error, window)
    yi = year_inputs(models, g, types, year=year, seed=seed, uncertainty=uncertainty, fill=fill)
    matrices = []
    for level, path in zip(levels, coverage_tiles, strict=True):
        m = gio.read_sparse(path)
        if m.shape[1] != tile.height * tile.width:
            raise InputDataError(f"{path}: the {level} coverage of tile {tile_id} must have one column per pixel of "
                                 f"the {tile.height} × {tile.width} tile ({tile.height * tile.width}). Got "
                                 f"{m.shape[1]}. It was made for another grid or tile size: delete results/zones/tiles "
                                 "and run again.")
        matrices.append(m)
    # the noise streams are made a whole grid row at a time: chunks of the tile's pixels spanning as many rows as
    # the untiled rule's chunks keep those rows' memory (draws × rows × grid width) at the untiled rule's
    chunk = max(MIN_TILE_CHUNK_PIXELS, chunk_pixels * tile.width // g.width)
    parts = zone_partial_sums(matrices, layers, frac, yi.models, types, used, yi.fill, g.pixel_area_ha, noise=yi.noise,
                              ndvi_se=se, row0=tile.row_off, col0=tile.col_off, grid_width=g.width,
                              chunk_pixels=chunk, progress=logs.progress(log, f"zone sums of tile {tile_id}"))
    sums = dict(zip(levels, parts, strict=True))
    meta = {"tile": tile_id, "window": [tile.row_off, tile.col_off, tile.height, tile.width],
            **tile_sums_identity(yi, g, year=year, seed=seed, uncertainty=uncertainty)}
    write_tile_sums(out, sums, meta)
    log.info("aggregate tile %s (%d × %d px, %d typed): %s zones touched", tile_id, tile.height, tile.width,
             int(typed_pixels(frac).size), ", ".join(f"{lv} {s.rows.size}" for lv, s in sums.items()))
    return sums


def run_aggregate_gather(zones: Sequence[str | Path], tile_sums: Sequence[str | Path], grid: str | Path,
                         greenspace: str | Path, models_json: str | Path, fill_json: str | Path,
                         tables_out: Sequence[str | Path], *, year: int, size_px: int, levels: Sequence[str],
                         types: Sequence[str], greenspace_config: Mapping | None, seed: int,
                         interval_pct: float = 90.0, min_observed_pct: float = DEFAULT_MIN_OBSERVED_PCT,
                         uncertainty: Mapping | None = None, park_service: Sequence[Mapping] | None = None,
                         population: str | Path | None = None, population_config: Mapping | None = None,
                         residential: str | Path | None = None,
                         draws_out: Sequence[str | Path] | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Rule aggregate of a tiled run: the outputs of :func:`run_aggregate` from the tiles' zone sums ``tile_sums``
    (every tile of ``grid.tiles(size_px)``, row-major; :func:`run_aggregate_tile`) added up zone by zone
    (:func:`greensink.zone_sums.gather`), one tile file at a time: no raster and no coverage matrix is read, and
    memory grows with zones × draws, not with pixels. A tile file of another tile, year, grid, level list, zone
    count or draw identity (seed, draws, uncertainty settings, models) is refused, naming the file and the field.
    The other arguments are :func:`run_aggregate`'s."""
    g = Grid.read(grid)
    tiles = g.tiles(size_px)
    if len(tile_sums) != len(tiles):
        raise InputDataError(f"The {g.height} × {g.width} grid in tiles of {size_px} px has {len(tiles)} tiles; got "
                             f"{len(tile_sums)} aggregate tile sums. Run every aggregate_tile job of the year.")
    models = gio.read_json(models_json)
    fill = read_fill(fill_json, models=models, year=year)  # refused when made from other models or another year
    yi = year_inputs(models, g, types, year=year, seed=seed, uncertainty=uncertainty, fill=fill)
    log_fill(yi.fill, g.pixel_area_ha)
    zone_layers = [gio.read_vector(path) for path in zones]
    n_zones = [len(z) for z in zone_layers]
    ident = tile_sums_identity(yi, g, year=year, seed=seed, uncertainty=uncertainty)
    totals: list[dict[str, np.ndarray]] = [{} for _ in levels]
    progress = logs.progress(log, "aggregate gather")
    for i, (t, path) in enumerate(zip(tiles, tile_sums, strict=True)):
        parts = read_tile_sums(path, levels, n_zones, expect={"tile": t.id, **ident})
        for total, level in zip(totals, levels, strict=True):
            add_sums(total, parts[level])
        progress(i + 1, len(tiles))
    return finish_tables(zone_layers, totals, g, yi, greenspace, tables_out, year=year, levels=levels, types=types,
                         greenspace_config=greenspace_config, seed=seed, interval_pct=interval_pct,
                         min_observed_pct=min_observed_pct, uncertainty=uncertainty, park_service=park_service,
                         population=population, population_config=population_config, residential=residential,
                         draws_out=draws_out)
