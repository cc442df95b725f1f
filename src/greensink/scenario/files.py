"""The layers of a landscape (:class:`greensink.scenario.burn.Landscape`) read from a run's files and
a scenario's written to results/scenarios/{scenario}/, through :mod:`greensink.io`.

A year's landscape is results/{year}/{ndvi,fvc,canopy,height,vegetation}.tif, the tree + shrub share
from vegetation_class.tif, the year's type fractions and typed polygons; a scenario's has the same
rasters under results/scenarios/{scenario}/ with tree_shrub.tif in place of the classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from rasterio.windows import Window

from greensink import io
from greensink.errors import InputDataError
from greensink.grid import Grid
from greensink.scenario.burn import CARBON_TYPE, LAYERS, Burned, BurnPlan, Landscape, Thresholds
from greensink.scenario.plan import Scenario
from greensink.vegetation import CLASS_SHRUB, CLASS_TREE, class_mask

BASELINE_KEYS = ("ndvi", "fvc", "canopy", "height", "vegetation", "classes", "fractions", "greenspace")
SCENARIO_KEYS = ("ndvi", "fvc", "canopy", "height", "vegetation", "tree_shrub", "fractions", "greenspace", "changes")
RASTER_KEYS = tuple(k for k in SCENARIO_KEYS if k != "greenspace")  # a tiled run's tile files and mosaics


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
    write_burned_rasters(out, burned, grid, compress)
    io.write_table(out["greenspace"], burned.greenspace, csv=False)


def write_burned_rasters(out: Mapping[str, str | Path], burned: Burned, grid: Grid, compress: str = "zstd") -> None:
    """The rasters of :func:`write_burned` (keys of :data:`RASTER_KEYS`) on ``grid`` (the whole grid, or a tile's
    sub-grid in a tiled run)."""
    for name in LAYERS:
        io.write_raster(out[name], burned.rasters[name], grid, band_names=[name], compress=compress)
    io.write_raster(out["fractions"], burned.fractions, grid, band_names=burned.types, compress=compress)
    io.write_raster(out["changes"], np.stack([burned.changed, (burned.last + 1).astype(np.float32)]), grid,
                    band_names=["changed_share", "change_number"], compress=compress)


def read_landscape_window(paths: Mapping[str, str | Path], types: Sequence[str], type_column: str,
                          window: Window) -> Landscape:
    """The rasters of :func:`read_landscape` on ``window`` only (the pixels of a tile, read as the whole rasters
    are read), without polygons (a tile job's burn takes them from its plan)."""
    rasters = {name: io.read_raster(paths[name], window=window)
               for name in ("ndvi", "fvc", "canopy", "height", "vegetation")}
    rasters["tree_shrub"] = class_mask(io.read_raster(paths["classes"], window=window),
                                       (CLASS_SHRUB, CLASS_TREE)).astype(np.float32)
    fractions = io.read_raster(paths["fractions"], bands=list(range(1, len(types) + 1)), window=window)
    empty = gpd.GeoDataFrame({type_column: np.array([], dtype=object)}, geometry=[], crs=None)
    return Landscape(rasters=rasters, fractions=fractions, types=list(types), greenspace=empty, type_column=type_column)


def landscape_strips(paths: Mapping[str, str | Path], types: Sequence[str], grid: Grid,
                     strip_pixels: int = 1 << 18) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """The baseline's layers (as :func:`read_landscape` reads them: ndvi, fvc, canopy, height, vegetation and
    tree_shrub from ``classes``) and its type fractions, strip by strip of whole grid rows, top to bottom, about
    ``strip_pixels`` pixels a strip: what :func:`greensink.scenario.states.weighted_means` reads in a tiled run's
    rule scenario_plan. The files are read a row of their compressed blocks at a time (the NDVI file's block
    height; each block decoded once), cut into the strips. Memory: a row of blocks of every layer (float32) and a
    strip's work."""
    rows = max(1, strip_pixels // grid.width)
    with io.open_raster(paths["ndvi"]) as src:
        block = int(src.block_shapes[0][0])
    step = block * max(1, rows // block)  # whole rows of blocks, at least one
    for row in range(0, grid.height, step):
        land = read_landscape_window(paths, types, "type", Window(0, row, grid.width, min(step, grid.height - row)))
        for r in range(0, land.fractions.shape[1], rows):
            yield {k: v[r:r + rows] for k, v in land.rasters.items()}, land.fractions[:, r:r + rows]
        del land  # before the next row of blocks is read (the caller drops its strip too: one row alive, not two)


def read_landscape_polygons(paths: Mapping[str, str | Path], types: Sequence[str], type_column: str) -> Landscape:
    """The baseline's typed polygons (``paths["greenspace"]``) as a :class:`Landscape` without rasters: what
    :func:`greensink.scenario.burn.plan_burn` needs beside the baseline's means."""
    greenspace = io.read_vector(paths["greenspace"])
    if type_column not in greenspace.columns:  # a run without green-space types writes no polygons
        greenspace[type_column] = np.array([], dtype=object)
    return Landscape(rasters={}, fractions=np.zeros((len(types), 0, 0), np.float32), types=list(types),
                     greenspace=greenspace, type_column=type_column)


def write_plan(path: str | Path, plan: BurnPlan) -> Path:
    """A :class:`~greensink.scenario.burn.BurnPlan` for the tile jobs (results/scenarios/{scenario}/tiles/plan.json):
    types, states and carbon types as JSON numbers (exact), each change's union and the resolved typed polygons as
    WKB in hex (exact coordinates), not the edited polygons (greenspace.gpkg holds those)."""
    typed = None if plan.typed is None else {
        "codes": [str(c) for c in plan.typed[CARBON_TYPE]],
        "wkb": [shapely.to_wkb(g, hex=True) for g in plan.typed.geometry.values]}
    return io.write_json(path, {"types": plan.types, "states": plan.states, "carbon_types": plan.carbon_types,
                                "unions": [shapely.to_wkb(g, hex=True) for g in plan.unions], "typed": typed,
                                "typed_land": plan.typed_land, "type_column": plan.type_column})


def read_plan(path: str | Path, scenario: Scenario, crs: str) -> BurnPlan:
    """The plan :func:`write_plan` wrote for ``scenario`` (its config entry's :class:`Scenario`); refuses one made for
    another scenario's changes."""
    rec = io.read_json(path)
    if len(rec["unions"]) != len(scenario.changes) or [s["path"] for s in rec["states"]] != [
            c.path for c in scenario.changes]:
        raise InputDataError(f"{path}: a plan of the changes {[s['path'] for s in rec['states']]}, but scenario "
                             f"{scenario.name} has {[c.path for c in scenario.changes]}. Delete the scenario's tiles "
                             "folder and run again.")
    col = rec["type_column"]
    typed = None
    if rec["typed"] is not None:
        typed = gpd.GeoDataFrame({CARBON_TYPE: rec["typed"]["codes"]},
                                 geometry=list(shapely.from_wkb(rec["typed"]["wkb"])), crs=crs)
    empty = gpd.GeoDataFrame({col: np.array([], dtype=object), CARBON_TYPE: np.array([], dtype=object)},
                             geometry=[], crs=crs)
    return BurnPlan(scenario=scenario, types=list(rec["types"]), unions=list(shapely.from_wkb(rec["unions"])),
                    states=rec["states"], carbon_types=list(rec["carbon_types"]), greenspace=empty, typed=typed,
                    typed_land=bool(rec["typed_land"]), type_column=col)


def read_burned(paths: Mapping[str, str | Path], types: Sequence[str], type_column: str) -> Burned:
    """A scenario's layers as :func:`write_burned` wrote them."""
    land = read_landscape(paths, types, type_column)
    changes = io.read_raster(paths["changes"], bands=[1, 2])
    return Burned(rasters=land.rasters, fractions=land.fractions, types=land.types, greenspace=land.greenspace,
                  type_column=type_column, changed=changes[0], last=(np.nan_to_num(changes[1]) - 1).astype(np.int16))
