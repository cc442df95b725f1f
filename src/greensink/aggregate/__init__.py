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

The modules, in import order:

- :mod:`~greensink.aggregate.draws`: a year's zone draw sums (:func:`zone_draw_sums`), their typed record
  (:class:`ZoneDraws`, rule aggregate's ``{level}.draws.npz``) and :func:`content_sha256`.
- :mod:`~greensink.aggregate.table`: the plausibility anchors and the zone table finished from the zone sums
  (:func:`zone_table_from_sums`, :func:`zone_table`, :func:`zone_carbon_from_sums`), tiers, pools, warnings and
  plausibility flags.
- :mod:`~greensink.aggregate.sums`: the zone sums linear in the pixels over a block of pixels (:func:`zone_partial_sums`)
  and the draw sums of a level (:func:`draw_sums_of`).
- :mod:`~greensink.aggregate.run`: a year's inputs (:class:`YearInputs`), rule aggregate's runner
  (:func:`run_aggregate`) and the finish step (:func:`finish_tables`).
- :mod:`~greensink.aggregate.tiles`: a tiled run's rules aggregate_tile (:func:`run_aggregate_tile`) and aggregate
  (:func:`run_aggregate_gather`).

Everything public is re-exported here: import from ``greensink.aggregate``.
"""

from __future__ import annotations

from greensink.aggregate.draws import (
    ZONE_DRAWS_FORMAT,
    ZoneDraws,
    content_sha256,
    zone_draw_sums,
)
from greensink.aggregate.run import (
    YearInputs,
    finish_tables,
    log_fill,
    read_layers,
    run_aggregate,
    year_inputs,
)
from greensink.aggregate.sums import (
    draw_sums_of,
    zone_partial_sums,
)
from greensink.aggregate.table import (
    ANCHOR_CANOPY_T_HA,
    ANCHOR_MAX_T_HA,
    AREA_EPS_HA,
    DEFAULT_MIN_OBSERVED_PCT,
    TREE_DOMINATED_SHARE,
    mean_of,
    plausibility_flags,
    pool_sums,
    unknown_carbon_warning,
    unobserved_zones_warning,
    zone_carbon,
    zone_carbon_from_sums,
    zone_table,
    zone_table_from_sums,
    zone_tiers,
)
from greensink.aggregate.tiles import (
    MIN_TILE_CHUNK_PIXELS,
    check_grid_shape,
    level_loader,
    run_aggregate_gather,
    run_aggregate_tile,
    shares_loader,
    tile_matrices,
    tile_sums_identity,
)
from greensink.overlay import (  # re-exported: the overlays' old home
    MAX_PIECE_VERTICES,
    overlay_areas_m2,
    population_in_zones,
    subdivide,
)

__all__ = [
    "ANCHOR_CANOPY_T_HA",
    "ANCHOR_MAX_T_HA",
    "AREA_EPS_HA",
    "DEFAULT_MIN_OBSERVED_PCT",
    "MAX_PIECE_VERTICES",
    "MIN_TILE_CHUNK_PIXELS",
    "TREE_DOMINATED_SHARE",
    "YearInputs",
    "ZONE_DRAWS_FORMAT",
    "ZoneDraws",
    "check_grid_shape",
    "content_sha256",
    "draw_sums_of",
    "finish_tables",
    "level_loader",
    "log_fill",
    "mean_of",
    "overlay_areas_m2",
    "plausibility_flags",
    "pool_sums",
    "population_in_zones",
    "read_layers",
    "run_aggregate",
    "run_aggregate_gather",
    "run_aggregate_tile",
    "shares_loader",
    "subdivide",
    "tile_matrices",
    "tile_sums_identity",
    "unknown_carbon_warning",
    "unobserved_zones_warning",
    "year_inputs",
    "zone_carbon",
    "zone_carbon_from_sums",
    "zone_draw_sums",
    "zone_partial_sums",
    "zone_table",
    "zone_table_from_sums",
    "zone_tiers",
]
