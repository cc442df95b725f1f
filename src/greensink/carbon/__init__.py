"""Carbon: fitted per-type models applied to every pixel, with bootstrap uncertainty.

The carbon density of a pixel (t C per ha of pixel) is the sum over green-space types of the
type's coverage fraction times the type's model at the pixel's predictors (NDVI, or the type's
chosen set of NDVI, FVC, canopy fraction and canopy height), floored at 0:

    density = Σ_t frac_t × max(f_t(predictors), 0)

Where a type's chosen predictors are not all known at a pixel (e.g. canopy height outside the
canopy height model) its NDVI-only companion model ("ndvi_only" in models.json) is used instead.
Pixels with no typed green space hold 0 (measured: no green-space carbon), pixels with typed
green space but no clear observation (or no usable model) hold NaN. The same formula evaluated with each bootstrap
draw of the models gives draws of the density; the per-pixel band is the draws' 5th / 95th
percentile (for a 90 % interval), and zone intervals come from the same draws summed over
the zone (see :func:`greensink.aggregate.zone_draw_sums`), not from adding pixel bands.

The carbon stage streams (:func:`carbon_map_streamed`): the fractions and the predictor rasters
are read in row strips of ``strip_rows`` rows (by default about :data:`STRIP_PIXELS` pixels, a
multiple of 512 rows where the width allows), each strip is evaluated and written straight into
``carbon.tif`` through :func:`greensink.io.raster_writer` (staged under a temporary name and
renamed when complete), and what ``carbon.json`` needs is accumulated as exact counts and sums over
the strips. Within a strip the typed pixels are evaluated in chunks of :data:`CHUNK_PIXELS`, so
memory is a few copies of one strip (fractions, predictors, the three output bands) plus
chunk × draws, whatever the size of the grid. Every pixel's value depends only on that pixel, so
the streamed map is the same, bit for bit, as :func:`density_map` over the whole grid, and the
statistics are those of :func:`model_use_stats` over the whole grid.

The modules, in import order:

- :mod:`~greensink.carbon.pixels`: the per-pixel carbon function (:func:`pixel_function`): the choice of
  each type's model or NDVI-only companion, the NDVI gate, :func:`unserved_function` and :func:`type_density`.
- :mod:`~greensink.carbon.fill`: the fill of unobserved typed land (:func:`type_fill`) from partial sums that add
  over tiles (:func:`type_fill_sums`, :func:`type_fill_from_sums`), fill.json (:func:`write_fill`,
  :func:`read_fill`) and rule fill's runners (:func:`run_fill`, :func:`run_fill_tile`, :func:`run_fill_gather`).
- :mod:`~greensink.carbon.solver`: the mixture quantiles' solver on the fused noise CDF (:func:`mixture_quantiles`,
  :func:`mixed_cdf_means`, the ``SOLVER_*`` constants).
- :mod:`~greensink.carbon.interval`: the tabulated per-pixel interval (:class:`IntervalTable`,
  :func:`tabulated_map`), on the solver's quantiles.
- :mod:`~greensink.carbon.stats`: how the models served the pixels (carbon.json's per-type statistics).
- :mod:`~greensink.carbon.maps`: :func:`density_map` and the streamed carbon stage (:func:`carbon_map_streamed`).
- :mod:`~greensink.carbon.run`: :func:`run_carbon`, rule carbon's (and carbon_tile's) runner; :func:`run_carbon_mosaic`.

Everything public is re-exported here: import from ``greensink.carbon``.
"""

from __future__ import annotations

from greensink.carbon.fill import (
    FILL_FORMAT,
    fill_values,
    log_fill,
    models_digest,
    read_fill,
    run_fill,
    run_fill_gather,
    run_fill_tile,
    type_fill,
    type_fill_from_sums,
    type_fill_sums,
    write_fill,
)
from greensink.carbon.interval import (
    INTERVAL_METHODS,
    TABLE_AXES,
    TABLE_LOG_STEP,
    TABLE_T_NODES,
    TABLE_X_STRIDE,
    IntervalTable,
    interval_quantiles,
    tabulated_map,
)
from greensink.carbon.maps import STRIP_PIXELS, carbon_band_names, carbon_map_streamed, density_map, strip_rows_for
from greensink.carbon.pixels import (
    CHUNK_PIXELS,
    NDVI_STEP,
    Fill,
    PixelFn,
    Predictors,
    Variant,
    iter_chunks,
    model_variants,
    ndvi_gate,
    ndvi_slope,
    needs_imagery,
    observed_pixels,
    pixel_function,
    predictor_layers,
    served_variants,
    type_density,
    type_records,
    typed_pixels,
    unserved_function,
)
from greensink.carbon.run import run_carbon, run_carbon_mosaic
from greensink.carbon.solver import (
    SOLVER_BLOCK,
    SOLVER_MAX_ITER,
    SOLVER_ROWS,
    SOLVER_RTOL,
    mixed_cdf_means,
    mixture_quantiles,
)
from greensink.carbon.stats import add_use_counts, model_use_counts, model_use_stats, use_stats_from_counts
from greensink.units import CO2_PER_C  # re-exported: aggregate, change and trend still import it from here

_mixed_cdf_means = mixed_cdf_means  # its name before the split (tests/test_carbon_tabulated.py imports it)

__all__ = [
    "CHUNK_PIXELS",
    "CO2_PER_C",
    "FILL_FORMAT",
    "Fill",
    "INTERVAL_METHODS",
    "IntervalTable",
    "NDVI_STEP",
    "PixelFn",
    "Predictors",
    "SOLVER_BLOCK",
    "SOLVER_MAX_ITER",
    "SOLVER_ROWS",
    "SOLVER_RTOL",
    "STRIP_PIXELS",
    "TABLE_AXES",
    "TABLE_LOG_STEP",
    "TABLE_T_NODES",
    "TABLE_X_STRIDE",
    "Variant",
    "add_use_counts",
    "carbon_band_names",
    "carbon_map_streamed",
    "density_map",
    "fill_values",
    "log_fill",
    "interval_quantiles",
    "iter_chunks",
    "mixed_cdf_means",
    "mixture_quantiles",
    "model_use_counts",
    "model_use_stats",
    "model_variants",
    "models_digest",
    "ndvi_gate",
    "ndvi_slope",
    "needs_imagery",
    "observed_pixels",
    "pixel_function",
    "predictor_layers",
    "read_fill",
    "run_carbon",
    "run_carbon_mosaic",
    "run_fill",
    "run_fill_gather",
    "run_fill_tile",
    "served_variants",
    "strip_rows_for",
    "tabulated_map",
    "type_density",
    "type_fill",
    "type_fill_from_sums",
    "type_fill_sums",
    "type_records",
    "typed_pixels",
    "unserved_function",
    "use_stats_from_counts",
    "write_fill",
]
