"""The layers of a landscape (:class:`greensink.scenario.burn.Landscape`) read from a run's files and
a scenario's written to results/scenarios/{scenario}/, through :mod:`greensink.io`.

A year's landscape is results/{year}/{ndvi,fvc,canopy,height,vegetation}.tif, the tree + shrub share
from vegetation_class.tif, the year's type fractions and typed polygons; a scenario's has the same
rasters under results/scenarios/{scenario}/ with tree_shrub.tif in place of the classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from greensink import io
from greensink.grid import Grid
from greensink.scenario.burn import LAYERS, Burned, Landscape, Thresholds
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask

BASELINE_KEYS = ("ndvi", "fvc", "canopy", "height", "vegetation", "classes", "fractions", "greenspace")
SCENARIO_KEYS = ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "greenspace", "changes")


def read_landscape(paths: Mapping[str, str | Path], types: Sequence[str], type_column: str) -> Landscape:
    """A landscape from files: ``paths`` holds ndvi, fvc, canopy, height, vegetation, and classes (a
    vegetation_class.tif) or tree_shrub, fractions (one band per type) and greenspace."""
    rasters = {name: io.read_raster(paths[name]) for name in ("ndvi", "fvc", "canopy", "height", "vegetation")}
    if "tree_shrub" in paths:
        rasters["tree_shrub"] = io.read_raster(paths["tree_shrub"])
    else:
        rasters["tree_shrub"] = class_mask(io.read_raster(paths["classes"]), (CLASS_SHRUB, CLASS_TREE)).astype(np.float32)
    fractions = io.read_raster(paths["fractions"], bands=list(range(1, len(types) + 1)))
    greenspace = io.read_vector(paths["greenspace"])
    if type_column not in greenspace.columns:  # a run without green-space types writes no polygons
        greenspace[type_column] = np.array([], dtype=object)
    return Landscape(rasters=rasters, fractions=fractions, types=list(types), greenspace=greenspace, type_column=type_column)


def thresholds(vegetation: Mapping, stats: Mapping) -> Thresholds:
    """The thresholds of the config's vegetation section and the FVC endmembers of the year's vegetation.json."""
    return Thresholds(ndvi_vegetation=float(vegetation["ndvi_vegetation"]), ndvi_shrub=float(vegetation["ndvi_shrub"]),
                      ndvi_tree=float(vegetation["ndvi_tree"]), ndvi_soil=float(stats["ndvi_soil"]),
                      ndvi_full=float(stats["ndvi_full"]))


def write_burned(out: Mapping[str, str | Path], burned: Burned, grid: Grid, compress: str = "zstd") -> None:
    """Write a scenario's layers: one raster per name of :data:`LAYERS` in ``out``, fractions (band per
    type), changes (band 1 changed share, band 2 the last change's number, 0 for none) and greenspace."""
    for name in LAYERS:
        io.write_raster(out[name], burned.rasters[name], grid, band_names=[name], compress=compress)
    io.write_raster(out["fractions"], burned.fractions, grid, band_names=burned.types, compress=compress)
    io.write_raster(out["changes"], np.stack([burned.changed, (burned.last + 1).astype(np.float32)]), grid,
                    band_names=["changed_share", "change_number"], compress=compress)
    io.write_table(out["greenspace"], burned.greenspace, csv=False)


def read_burned(paths: Mapping[str, str | Path], types: Sequence[str], type_column: str) -> Burned:
    """A scenario's layers as :func:`write_burned` wrote them."""
    land = read_landscape(paths, types, type_column)
    changes = io.read_raster(paths["changes"], bands=[1, 2])
    return Burned(rasters=land.rasters, fractions=land.fractions, types=land.types, greenspace=land.greenspace,
                  type_column=type_column, changed=changes[0], last=(np.nan_to_num(changes[1]) - 1).astype(np.int16))
