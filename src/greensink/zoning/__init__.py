"""Zoning: canopy gap and plantable space, carbon-sink importance classes, carbon-sink potential space.

What a planner needs beyond the inventory (DESIGN.md, Change, scenarios and zoning), per year on
the run's own products and optional user layers, written to ``results/{year}/zoning/``:

* :mod:`greensink.zoning.canopy_gap` — per zone, plantable land and the gap to a canopy target, with
  the hectares and carbon that closing it needs;
* :mod:`greensink.zoning.importance` — a weighted overlay of factor layers in three classes
  (极重要 / 重要 / 一般), with area and carbon per class and zone;
* :mod:`greensink.zoning.potential` — the land left once construction land, cropland and the
  ecological red line are taken out, with the stock it could add;
* :mod:`greensink.zoning.layers` — user layers (polygons or raster masks) on the grid;
* :mod:`greensink.zoning.settings` — the config section's checks, factor records, targets and densities;
* :mod:`greensink.zoning.run` — one function per rule, from the year's arrays to tables and summaries.
"""

from greensink.zoning.canopy_gap import gap_table, plantable_shares
from greensink.zoning.importance import (
    CLASS_NODATA,
    IMPORTANCE_CLASSES,
    class_table,
    importance_classes,
    normalised_weights,
    reclassify,
    type_scores,
    weighted_score,
)
from greensink.zoning.layers import layer_share, polygon_share, raster_on_grid, raster_share, union_share
from greensink.zoning.potential import potential_raster, potential_share, potential_table
from greensink.zoning.run import canopy_gap_run, importance_run, potential_run
from greensink.zoning.settings import (
    BUILTIN_LAYERS,
    MASK_LAYERS,
    Density,
    Factor,
    canopy_target,
    config_problems,
    planting_density,
)

__all__ = [
    "BUILTIN_LAYERS", "CLASS_NODATA", "IMPORTANCE_CLASSES", "MASK_LAYERS", "Density", "Factor", "canopy_gap_run",
    "canopy_target", "class_table", "config_problems", "gap_table", "importance_classes", "importance_run",
    "layer_share", "normalised_weights", "plantable_shares", "planting_density", "polygon_share", "potential_raster",
    "potential_run", "potential_share", "potential_table", "raster_on_grid", "raster_share", "reclassify",
    "type_scores", "union_share", "weighted_score",
]
