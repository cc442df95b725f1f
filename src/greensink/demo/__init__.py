"""The built-in demo city: a synthetic city with known carbon, generated offline from a seed.

``make demo`` runs the whole pipeline on this city, and the tests compare what the pipeline
estimates with the truth written here. Everything is a deterministic function of ``seed``
(one :class:`numpy.random.Generator` per step, keyed by the step's name), so the same seed
gives byte-identical tables and JSON and identical raster values.

The city (default: 5 km x 5 km in EPSG:32651, about 500 x 500 pixels of 10 m)

* **Zones** city > 4 districts > blocks > parcels, built from one lattice of jittered corner
  nodes, so parcels are quadrilaterals that tile their block exactly, blocks tile districts
  and districts tile the city (shared edges have identical vertices). Nothing follows pixel
  edges: the lattice origin is offset by 3.3 m and every node is jittered.
* **Water** a sinuous river (40-80 m wide) and a lake inside one park.
* **Green space** typed after CJJ/T 85-2017: G1 parks (irregular 2-30 ha, one with a lake
  hole), G2 protective strips (30-60 m) along the river and a ring road, G3 plazas
  (0.5-2 ha), XG attached green inside about half of the parcels (where parcels are under about
  20 m across and none has room, inside 60 m cells over the city), EG one forest at the west
  side. Built in priority order water > road > EG > G1 > G3 > G2 > XG, each minus the ones
  before, so types never overlap and never cover water. Green space keeps 1.5 pixels away from
  the city edge, so every pixel that holds green space lies wholly inside the city.

The truth is made on fine cells (``truth_cell_m``, default 2 m: 5 x 5 cells per 10 m pixel),
not on the pipeline's pixels, so it does not share the pipeline's per-pixel assumptions
(:func:`make_fine_truth`):

* **Per fine cell** the green-space type (the polygon holding the cell's centre), vegetation
  (patches covering 40-95 % of a type's cells, the rest paths, paving and bare ground; 6 % of
  built-up land is street trees and gardens, which hold no carbon in the accounts), tree canopy
  (crowns 0.05 NDVI greener than the type's field, grass 0.05 less), NDVI (a smooth field per
  class, growing a little every year; one attached-green polygon is cleared in the second year,
  NDVI 0.15, carbon ~0, still typed XG) and carbon: the type's hidden curve of the *cell's* NDVI
  (truth/curves.json). Polygon edges and vegetation patches cut through pixels, so a pixel mixes
  types, paths, grass and crowns, and its carbon is not its type's curve of its NDVI.
* **Pixels** (truth/carbon_{year}.tif, t C per ha of pixel): the area mean of the cells' carbon.
  truth/ndvi_{year}.tif: the NDVI of the area-mean red and NIR of the cells (what a perfect
  clear-sky composite would see). truth/fractions.tif (bands G1 G2 G3 XG EG water): polygons
  rasterized at 1/10 pixel and block-averaged, exact to about 1/100 of a pixel.
* **Zone totals** (truth/zones_{year}_{level}.csv, tonnes C): the fine carbon integrated over each
  zone with exact cell coverage (exactextract on the fine cells, independent of greensink's
  aggregation).
* **Plots** (plots.gpkg) are circles of ``plot_radius_m`` (default 11.28 m, 400 m²) wholly inside
  their type's polygons, centred anywhere (not at pixel centres); their carbon is the mean of the
  fine cells inside the circle times a 10 % measurement error, remeasured every year.

The inputs the pipeline sees

* Sentinel-2 L2A-like scenes (imagery/): B04, B08 (uint16 DN on the 10 m grid, BOA offset
  from baseline 04.00) and SCL (uint8 on a 20 m grid with the same origin), for
  ``scenes_per_year`` dates in the season plus one winter scene per year that must be
  excluded by date. Per-date phenology factors are a symmetric set around 1, so the median
  of all in-season dates is the true NDVI (where clouds remove some dates, a pixel's median
  can be off by up to the phenology amplitude). On the default demo most plot pixels are clear
  on only 2-3 of the 5 in-season dates, and the composite NDVI at the plots differs from the
  true NDVI by 1.6-4.3 % (relative standard deviation per type and year; mean within +/-1.8 %):
  phenology over the few clear dates and sensor noise both contribute, sensor noise dominating
  below NDVI 0.3, where the dark demo surfaces give ~0.016 NDVI noise per date (figures measured
  on the per-pixel truth before the fine cells; a pixel's reflectance is now its cells' mean). This is
  measurement error in the predictor, not a bias of the truth. Clouds, cirrus and shadows are
  binary at 20 m and flagged in SCL exactly where they alter B04/B08; every pixel is clear on
  at least two in-season dates per year.
* Field plots (plots.gpkg): points with their carbon (see above).
* Zones, green space, water and block population (GeoPackage + CSV twins).

The modules, in import order (everything public is re-exported here: import from ``greensink.demo``):

- :mod:`~greensink.demo.params`: the fixed numbers (levels, types, NDVI classes, the hidden curves
  :data:`CURVES` and :func:`carbon_curve`, Sentinel-2 conventions, plot and fine-truth settings),
  the parameter checks and one random generator per step (:func:`step_rng`).
- :mod:`~greensink.demo.layout`: zones on the jittered lattice, water, ring road, typed green space
  (:class:`Landscape`) and the disturbed polygon.
- :mod:`~greensink.demo.truth`: pixel type fractions, the fine-cell truth (:class:`FineTruth`), its
  pixel means and exact zone totals, and the truth files.
- :mod:`~greensink.demo.scenes`: the Sentinel-2 L2A-like scenes (:class:`Scene`) and the imagery files.
- :mod:`~greensink.demo.plots`: field plots and block population.
- :mod:`~greensink.demo.generate`: :func:`generate_demo`, the whole city and its manifest (demo.json).
"""

from greensink.demo.generate import (
    generate_demo,
    run_build_demo,
)
from greensink.demo.layout import (
    Landscape,
    choose_disturbance,
    make_greenspace,
    make_lattice,
    make_zones,
)
from greensink.demo.params import (
    BUILT_CANOPY_SHARE,
    BUILT_VEGETATED_SHARE,
    CANOPY_NDVI_STEP,
    CANOPY_SHARE,
    CANOPY_SIGMA_M,
    CLASS_NDVI,
    CURVES,
    DISTRICT_NAMES,
    DISTURBED_NDVI,
    EDGE_MARGIN_PX,
    FRACTION_BANDS,
    GROWTH_PER_YEAR,
    LEVELS,
    MIN_PART_M2,
    MIN_PLOTS_PER_TYPE,
    NDVI_MAX,
    NDVI_MIN,
    ORIGIN,
    OVERPASS_UTC,
    PATCH_SIGMA_M,
    PHENOLOGY_AMPLITUDE,
    PLOT_MIN_DISTANCE_M,
    PLOT_NOISE,
    PLOT_PURITY,
    PLOT_RADIUS_M,
    PLOTS_PER_TYPE,
    S2_OFFSET_SINCE,
    SCL_CIRRUS,
    SCL_CLEAR,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_NOT_VEGETATED,
    SCL_SHADOW,
    SCL_VEGETATION,
    SCL_WATER,
    SENSOR_NOISE,
    SHADOW_OFFSET_M,
    SUPERSAMPLE,
    TRUTH_CELL_M,
    TYPE_NAMES,
    TYPES,
    VEGETATED_SHARE,
    WINTER_DAMPING,
    carbon_curve,
    cell_factor,
    check_params,
    season_date,
    step_rng,
)
from greensink.demo.plots import (
    footprint_carbon,
    make_plots,
    make_population,
)
from greensink.demo.scenes import (
    Scene,
    make_scenes,
    off_season_date,
    phenology_factors,
    scene_dates,
    scene_record,
    scl_grid,
    write_scenes,
)
from greensink.demo.truth import (
    FineTruth,
    block_mean,
    fine_zone_totals,
    make_fine_truth,
    make_fractions,
    pixel_ndvi,
    reflectance,
    write_truth,
)

__all__ = [
    "BUILT_CANOPY_SHARE",
    "BUILT_VEGETATED_SHARE",
    "CANOPY_NDVI_STEP",
    "CANOPY_SHARE",
    "CANOPY_SIGMA_M",
    "CLASS_NDVI",
    "CURVES",
    "DISTRICT_NAMES",
    "DISTURBED_NDVI",
    "EDGE_MARGIN_PX",
    "FRACTION_BANDS",
    "GROWTH_PER_YEAR",
    "LEVELS",
    "MIN_PART_M2",
    "MIN_PLOTS_PER_TYPE",
    "NDVI_MAX",
    "NDVI_MIN",
    "ORIGIN",
    "OVERPASS_UTC",
    "PATCH_SIGMA_M",
    "PHENOLOGY_AMPLITUDE",
    "PLOTS_PER_TYPE",
    "PLOT_MIN_DISTANCE_M",
    "PLOT_NOISE",
    "PLOT_PURITY",
    "PLOT_RADIUS_M",
    "S2_OFFSET_SINCE",
    "SCL_CIRRUS",
    "SCL_CLEAR",
    "SCL_CLOUD_HIGH",
    "SCL_CLOUD_MEDIUM",
    "SCL_NOT_VEGETATED",
    "SCL_SHADOW",
    "SCL_VEGETATION",
    "SCL_WATER",
    "SENSOR_NOISE",
    "SHADOW_OFFSET_M",
    "SUPERSAMPLE",
    "TRUTH_CELL_M",
    "TYPES",
    "TYPE_NAMES",
    "VEGETATED_SHARE",
    "WINTER_DAMPING",
    "FineTruth",
    "Landscape",
    "Scene",
    "block_mean",
    "carbon_curve",
    "cell_factor",
    "check_params",
    "choose_disturbance",
    "fine_zone_totals",
    "footprint_carbon",
    "generate_demo",
    "run_build_demo",
    "make_fine_truth",
    "make_fractions",
    "make_greenspace",
    "make_lattice",
    "make_plots",
    "make_population",
    "make_scenes",
    "make_zones",
    "off_season_date",
    "phenology_factors",
    "pixel_ndvi",
    "reflectance",
    "scene_dates",
    "scene_record",
    "scl_grid",
    "season_date",
    "step_rng",
    "write_scenes",
    "write_truth",
]
