"""Uncertainty: the error sources beyond the fitted curves, as Monte Carlo draws on the grid.

The carbon draws of a pixel (:func:`greensink.carbon.pixel_function`) start from the bootstrap draws
of the curves (and of the coefficient table for fallback types). This module adds, per draw b:

* **residual** — the scatter of the plots about the curve, a *relative* error e_b(x) of the pixel's
  carbon (C = Ĉ·(1 + e)), with the spatial correlation of the plot residuals: an exponential
  covariance C(h) = psill·exp(−h/range_m) plus an uncorrelated nugget. The correlated part is a
  Gaussian random field on a coarse lattice (cell = ``cell_fraction`` × range, never finer than a
  pixel) made by circulant embedding from ``(seed, stream, draw)``, interpolated bilinearly to the
  pixel centres and rescaled to unit variance at every pixel; the nugget is one N(0, 1) number per
  pixel and draw, those of a grid row drawn from a generator seeded by (seed, stream, row). Neither
  depends on how the grid is cut into strips or chunks, so the draws (and carbon.tif) are the same
  whatever the strip height. The parameters come from an empirical variogram of the plots'
  relative residuals (:func:`fit_variogram`) stored in ``models.json`` (``residual_field``).
  Years: e_y = √ρ·E_common + √(1 − ρ)·E_y, ρ the year-to-year correlation of remeasured plots'
  residuals (:func:`year_correlation`), so the sink's draws keep the persistence of the residual;
  a single year's stock uses E_common alone (same marginal distribution). The plots' own measurement
  error (``uncertainty.plot_error_pct`` or the tree-inventory draws) is no error of the map's pixels:
  it comes off the nugget (:func:`residual_field`) and off the covariance and variances behind ρ
  (:func:`year_correlation`), and a sink draws both years from one field fitted to both years' plots
  (:func:`paired_residual_field`).
* **ndvi** — the composite NDVI's standard error (``ndvi_se.tif``, :func:`ndvi_standard_error`)
  times one N(0, 1) number per pixel, draw and year, propagated through the curve's slope at the
  pixel (first order: f′(NDVI)·se·z).
* **edges** — a positional error of the green-space polygons, sd ``position_sd_m``: a pixel cut by
  a green-space edge (typed fraction 0 < F < 1) has its typed fraction moved by
  δF = z·position_sd_m·L/A, L = π·res/4 the mean chord of a square pixel (Cauchy), A = res², its
  types in proportion; a pixel between two types moves the same amount from one to the other. z is
  one N(0, 1) per pixel and draw, the same in every year (the polygons are the same), so it largely
  cancels in the sink.

Random numbers come from keys built with :func:`stream_key`, so every source has its own stream.

The modules, in import order:

- :mod:`~greensink.uncertainty.field`: the plots' residual variogram and its exponential model
  (:class:`ResidualField`, :func:`residual_field`) and the year-to-year correlation (:func:`year_correlation`).
- :mod:`~greensink.uncertainty.noise`: the random streams (:func:`stream_key`), :class:`NoiseSpec` and the
  per-chunk draws of :class:`Noise` (its kept row blocks shared through :data:`SHARED_ROWS`).
- :mod:`~greensink.uncertainty.inventory`: the sources (:data:`SOURCES`), U % (:func:`u_pct`), variance
  shares and the plots needed.
- :mod:`~greensink.uncertainty.ndvi_se`: the composite NDVI's standard error and rule ndvi_se (:func:`run_ndvi_se`).
- :mod:`~greensink.uncertainty.spec`: the ``uncertainty`` config section (:func:`settings`), a year's
  :func:`noise_spec`, the plots' residuals and measurement error, :func:`annotate_models` and the
  residual of a pair of years.
- :mod:`~greensink.uncertainty.closed_form`: the closed-form CDF of a pixel's noise (:func:`pixel_noise_cdf`).

Everything is re-exported here (with the private names tests use): import from ``greensink.uncertainty``.
"""

from __future__ import annotations

from greensink.uncertainty.closed_form import (
    TRIANGULAR_HALF_WIDTH,
    mixed_noise_cdf,
    pixel_noise_cdf,
    triangular_quantile,
)
from greensink.uncertainty.field import (
    ResidualField,
    empirical_variogram,
    exponential_variogram,
    fit_variogram,
    residual_field,
    year_correlation,
)
from greensink.uncertainty.inventory import (
    SOURCES,
    plots_needed,
    u_pct,
    variance_shares,
)
from greensink.uncertainty.ndvi_se import (
    MEDIAN_SE_FACTOR,
    ndvi_se_to_file,
    ndvi_standard_error,
    run_ndvi_se,
)
from greensink.uncertainty.noise import (
    FIELD_AHEAD_ROWS,
    FIELD_BATCH_BYTES,
    MEAN_CHORD_FACTOR,
    SHARED_ROWS,
    Noise,
    NoiseSpec,
    stream_key,
    unit_triangular,
)
from greensink.uncertainty.spec import (
    DEFAULTS,
    annotate_models,
    curve_u_pct,
    noise_spec,
    paired_residual_field,
    plot_measurement,
    plot_residuals,
    residual_year_correlation,
    settings,
)

# the names before the split (tests import them); _SHARED is the same dictionary object as SHARED_ROWS
_SHARED = SHARED_ROWS
_unit_triangular = unit_triangular

__all__ = [
    "DEFAULTS",
    "FIELD_AHEAD_ROWS",
    "FIELD_BATCH_BYTES",
    "MEAN_CHORD_FACTOR",
    "MEDIAN_SE_FACTOR",
    "Noise",
    "NoiseSpec",
    "ResidualField",
    "SHARED_ROWS",
    "SOURCES",
    "TRIANGULAR_HALF_WIDTH",
    "annotate_models",
    "curve_u_pct",
    "empirical_variogram",
    "exponential_variogram",
    "fit_variogram",
    "mixed_noise_cdf",
    "ndvi_se_to_file",
    "ndvi_standard_error",
    "noise_spec",
    "paired_residual_field",
    "pixel_noise_cdf",
    "plot_measurement",
    "plot_residuals",
    "plots_needed",
    "residual_field",
    "residual_year_correlation",
    "run_ndvi_se",
    "settings",
    "stream_key",
    "triangular_quantile",
    "u_pct",
    "unit_triangular",
    "variance_shares",
    "year_correlation",
]
