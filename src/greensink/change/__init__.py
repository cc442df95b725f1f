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

The modules, in import order:

- :mod:`~greensink.change.attribution`: the attribution classes of a pixel's stock change, the zone parts
  (:func:`zone_attribution`), carbon-sink space (:func:`sink_space`, :func:`zone_sink_space`), the lost patches
  (:func:`lost_patches`) and :func:`attribute_change`.
- :mod:`~greensink.change.tables`: the sink classes, the observed shares of a pair (:func:`observed_share`,
  :func:`observation_shares`, :func:`masked_matrices`, the partly observed warning) and :func:`change_table`.
- :mod:`~greensink.change.sink`: :func:`difference_function`, :class:`EstimateRecorder` and the one pass of the
  sink map and zone sums (:func:`sink_pass`).
- :mod:`~greensink.change.run`: :func:`run_change`, rule change's runner; :func:`change_parts`, everything per pixel
  and every zone sum over a window of the grid (the whole grid, or a tile).
- :mod:`~greensink.change.tiles`: a tiled run's rules change_tile (:func:`run_change_tile`) and change
  (:func:`run_change_gather`): tile rasters and zone partial sums, then mosaics, summed partials and the lost patches.

Everything public is re-exported here: import from ``greensink.change``.
"""

from __future__ import annotations

from greensink.carbon import unserved_function  # re-exported: tests/test_change_one_pass.py imports it from here
from greensink.change.attribution import (
    ATTRIBUTION_CODES,
    ATTRIBUTION_PARTS,
    LOST_EPS,
    UNTYPED,
    WHOLE_EPS,
    Attribution,
    attribute_change,
    attribution_classes,
    attribution_raster,
    dominant_type,
    lost_patches,
    lost_pixels,
    patches_from_lost,
    sink_space,
    zone_attribution,
    zone_sink_space,
)
from greensink.change.run import ChangeParts, change_parts, run_change, year_fill
from greensink.change.sink import (
    EstimateRecorder,
    SinkPass,
    difference_function,
    sink_pass,
)
from greensink.change.tables import (
    AREA_EPS_HA,
    PCT_EPS,
    SINK_CLASSES,
    change_table,
    masked_matrices,
    observation_shares,
    observed_share,
    partly_observed_warning,
    partly_observed_zones,
    sink_classes,
)
from greensink.change.tiles import run_change_gather, run_change_tile

__all__ = [
    "AREA_EPS_HA",
    "ATTRIBUTION_CODES",
    "ATTRIBUTION_PARTS",
    "Attribution",
    "ChangeParts",
    "EstimateRecorder",
    "LOST_EPS",
    "PCT_EPS",
    "SINK_CLASSES",
    "SinkPass",
    "UNTYPED",
    "WHOLE_EPS",
    "attribute_change",
    "attribution_classes",
    "attribution_raster",
    "change_parts",
    "change_table",
    "difference_function",
    "dominant_type",
    "lost_patches",
    "lost_pixels",
    "masked_matrices",
    "observation_shares",
    "observed_share",
    "partly_observed_warning",
    "partly_observed_zones",
    "patches_from_lost",
    "run_change",
    "run_change_gather",
    "run_change_tile",
    "sink_classes",
    "sink_pass",
    "sink_space",
    "unserved_function",
    "year_fill",
    "zone_attribution",
    "zone_sink_space",
]
