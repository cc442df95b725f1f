"""Burning a scenario's changes into copies of the baseline year's rasters and type fractions.

The scenario's rasters are what imagery of the planned state would show, so the baseline's models
read them as they read a real year: each pixel's value is the area-weighted mix of the baseline
value on its unchanged share and the planned state on its changed share,

    v' = (1 − a) v + a s,

a the pixel's changed share (the exact share of the pixel inside the change's polygons, times
canopy_share_pct / 100 for a planting), s the state. A pixel wholly changed takes s; an unchanged
pixel keeps its baseline value bit for bit; a partly changed pixel that was unobserved (NaN) stays
unobserved. The mixed layers are the model predictors (ndvi, fvc, canopy, height) and the indicator
layers (vegetation, tree_shrub: 0/1 in the baseline, shares of the pixel here).

Type fractions are exact, as rule types makes them: the baseline's typed polygons are edited as
vectors (greenspace: cut and added; construction: cut; conversion: the from-type's part inside
the polygons retyped) and, in the pixels a change touches, the fractions are recomputed by exact
coverage (:func:`greensink.types.type_fractions`); elsewhere they are the baseline's, bit for bit.
Plantings come after the polygon changes: the planted share of a pixel becomes land of the planting's
type where the pixel has land that is not green space (up to that land), and only raises the state
(canopy, NDVI) where it is green space already. Without green-space types (one pseudo-type VEG
covering every pixel) a construction scales the fraction by (1 − a), exact since it is 1 everywhere.

A change with a given density (state.density_t_ha) puts its land on a pseudo-type
(:func:`greensink.scenario.plan.pseudo_code`) whose model is that constant density with no
uncertainty (:func:`scenario_models`); the zone tables count it under its type.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from greensink.coverage import coverage_raster, tile_coverage_matrix
from greensink.grid import Grid, Tile
from greensink.model import fallback_record
from greensink.scenario.plan import Change, Scenario, pseudo_code
from greensink.scenario.states import BaselineMeans, weight_specs, weighted_means
from greensink.types import resolve_overlaps
from greensink.vegetation import fvc

log = logging.getLogger(__name__)

PREDICTOR_LAYERS = ("ndvi", "fvc", "canopy", "height")
INDICATOR_LAYERS = ("vegetation", "tree_shrub")
LAYERS = (*PREDICTOR_LAYERS, *INDICATOR_LAYERS)
CARBON_TYPE = "carbon_type"  # column of the edited polygons: the type whose model gives the land's carbon
FULL = 1.0 - 1e-9  # a pixel changed on at least this share takes the state outright


@dataclass
class Landscape:
    """A grid's layers: ``rasters`` {name: (rows, cols) float32} for :data:`LAYERS` (height may be
    all NaN), ``fractions`` (n_types, rows, cols) for ``types``, ``greenspace`` typed polygons
    (``type_column``; :data:`CARBON_TYPE` where it differs from the type)."""

    rasters: dict[str, np.ndarray]
    fractions: np.ndarray
    types: list[str]
    greenspace: gpd.GeoDataFrame
    type_column: str = "type"


@dataclass
class Burned(Landscape):
    """A scenario's :class:`Landscape` with, per pixel, the share changed by any change
    (``changed``, 0–1) and the index of the last change touching it (``last``, −1 for none), and
    the state each change used (``states``)."""

    changed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    last: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int16))
    states: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Thresholds:
    """The vegetation thresholds (NDVI) and the baseline's FVC endmembers a given NDVI state is classed with."""

    ndvi_vegetation: float
    ndvi_shrub: float
    ndvi_tree: float
    ndvi_soil: float
    ndvi_full: float


def baseline_means(base: Landscape, scenario: Scenario) -> BaselineMeans:
    """The baseline means every change of ``scenario`` may take its state from (:func:`change_state`), over the
    whole arrays of ``base`` (:func:`greensink.scenario.states.weighted_means`; a tiled run's rule scenario_plan
    computes the same numbers strip by strip from the files)."""
    specs = [s for change in scenario.changes for s in weight_specs(change)]
    return weighted_means(lambda: [(base.rasters, base.fractions)], base.types, specs)


def typical_state(means: BaselineMeans, spec: str, what: str) -> dict[str, float]:
    """The baseline's mean of every layer over the pixels the weight ``spec`` marks (a type's fraction, the
    canopy share: ``means``, :func:`baseline_means`), falling back to the vegetated pixels; raises when neither
    has an observed pixel."""
    found = means[spec]
    if found is None:
        found = means["vegetation"]
        if found is None:
            raise ValueError(f"the baseline has no observed pixel of {what} nor any vegetated pixel to take its "
                             "typical state from. Give the change's state (ndvi, canopy_pct) in the config.")
        log.info("no observed pixel of %s in the baseline: its typical state is the vegetated pixels' mean", what)
    return dict(found)


def change_state(change: Change, means: BaselineMeans, thresholds: Thresholds) -> dict[str, float]:
    """The state a change burns into the layers (layer -> value; a layer absent is left as it is), from the
    baseline's means (:func:`baseline_means`).

    greenspace: the baseline's typical pixel of the type (:func:`typical_state`), planting: its typical
    tree-canopy pixel with canopy, vegetation and tree_shrub 1; then the given keys: ndvi (with fvc from
    the baseline's endmembers, vegetation / tree_shrub / canopy from the thresholds, unless canopy_pct is
    given), canopy_pct / 100. construction: no vegetation, canopy, tree or shrub, height 0, NDVI and FVC
    the baseline's mean over unvegetated land without green-space type. conversion: nothing (the same
    vegetation under another type's model)."""
    if change.kind == "conversion":
        return {}
    if change.kind == "construction":
        found = means["bare_untyped"] or means["bare"]
        if found is None:
            raise ValueError("the baseline has no observed unvegetated pixel to take the NDVI of built land from.")
        state = {"ndvi": found["ndvi"], "fvc": found["fvc"], "canopy": 0.0, "vegetation": 0.0, "tree_shrub": 0.0}
        if means.has_height:
            state["height"] = 0.0
        return state
    if change.kind == "planting":
        state = typical_state(means, "canopy", "tree canopy")
        state.update(canopy=1.0, vegetation=1.0, tree_shrub=1.0)
    else:
        state = typical_state(means, f"type:{change.type}", f"type {change.type}")
    given = change.state
    if "ndvi" in given:
        v = float(given["ndvi"])
        state["ndvi"] = v
        state["fvc"] = float(fvc(np.array([v]), thresholds.ndvi_soil, thresholds.ndvi_full)[0])
        state["vegetation"] = float(v >= thresholds.ndvi_vegetation)
        state["tree_shrub"] = float(v >= thresholds.ndvi_shrub)
        state["canopy"] = float(v >= thresholds.ndvi_tree)
    if "canopy_pct" in given:
        state["canopy"] = float(given["canopy_pct"]) / 100.0
    return state


def mix(old: np.ndarray, share: np.ndarray, value: float) -> np.ndarray:
    """(1 − share) old + share value, float32: ``value`` where share ≥ :data:`FULL`, ``old`` bit for
    bit where share is 0, NaN where old is NaN and the pixel is only partly changed."""
    a = share.astype(np.float64)
    out = (1.0 - a) * old.astype(np.float64) + a * float(value)
    out = np.where(a >= FULL, float(value), out)
    return np.where(a > 0, out, old).astype(np.float32)


def _cut(gdf: gpd.GeoDataFrame, cut) -> gpd.GeoDataFrame:
    """``gdf`` with ``cut`` taken out of every geometry (emptied rows dropped)."""
    geoms = shapely.difference(np.asarray(gdf.geometry.values, dtype=object), cut)
    out = gdf.copy()
    out = out.set_geometry(gpd.GeoSeries(geoms, crs=gdf.crs, index=gdf.index))
    return out[~shapely.is_empty(geoms)]


@dataclass
class BurnPlan:
    """The whole-scene part of a scenario's burn (:func:`plan_burn`), computed once before its pixels (the whole
    grid, or each tile of a tiled run: :func:`burn_window`): per change its polygons' union (``unions``), the
    state it burns in (``states``: kind, path, state, area_ha) and the type whose model gives its land's carbon
    (``carbon_types``); the edited typed polygons (``greenspace``, with :data:`CARBON_TYPE`) and their
    non-overlapping union per type (``typed``: :func:`greensink.types.resolve_overlaps`; None when no change
    edits them), and the scenario's ``types``."""

    scenario: Scenario
    types: list[str]
    unions: list
    states: list[dict]
    carbon_types: list[str]
    greenspace: gpd.GeoDataFrame
    typed: gpd.GeoDataFrame | None
    typed_land: bool = True
    type_column: str = "type"

    def output_greenspace(self) -> gpd.GeoDataFrame:
        """The edited polygons as results/scenarios/{scenario}/greenspace.gpkg holds them (:data:`CARBON_TYPE`
        only where some land's carbon type differs from its type)."""
        gs, col = self.greenspace, self.type_column
        same = (gs[CARBON_TYPE] == gs[col].astype(str)).all()
        return (gs.drop(columns=[CARBON_TYPE]) if same else gs).reset_index(drop=True)


def plan_burn(base: Landscape, scenario: Scenario, layers: Sequence[np.ndarray], thresholds: Thresholds,
              typed_land: bool = True, means: BaselineMeans | None = None) -> BurnPlan:
    """The :class:`BurnPlan` of ``scenario`` on the baseline ``base``: the states from the whole baseline
    (:func:`change_state`), the polygon edits (greenspace: cut and added; construction: cut; conversion: the
    from-type's part inside retyped) in change order, and the edited polygons resolved per type. ``means``: the
    baseline's means the states take (:func:`baseline_means`, computed from ``base``'s rasters when None; a tiled
    run's rule scenario_plan gives them read strip by strip, and ``base`` then needs only its types and polygons)."""
    if means is None:
        means = baseline_means(base, scenario)
    col = base.type_column
    pseudo = scenario.pseudo_types()
    types = scenario.types(base.types)
    gs = base.greenspace[[col, "geometry"]].copy()
    gs[CARBON_TYPE] = gs[col].astype(str)
    unions, states, carbon_types, edited = [], [], [], False
    for k, (change, geoms) in enumerate(zip(scenario.changes, layers, strict=True)):
        union = shapely.union_all(np.asarray(geoms, dtype=object))
        state = change_state(change, means, thresholds)
        states.append({"kind": change.kind, "path": change.path, "state": state,
                       "area_ha": float(shapely.area(union) / 1e4)})
        code = pseudo_code(change.type or "", k)
        carbon_type = code if code in pseudo else change.carbon_type
        unions.append(union)
        carbon_types.append(carbon_type)
        if change.kind == "planting":
            continue
        if typed_land:
            if change.kind in ("greenspace", "construction"):
                gs = _cut(gs, union)
            if change.kind == "greenspace":
                new = gpd.GeoDataFrame({col: [change.type], CARBON_TYPE: [carbon_type]}, geometry=[union], crs=gs.crs)
                gs = gpd.GeoDataFrame(pd.concat([gs, new], ignore_index=True), geometry="geometry", crs=gs.crs)
            if change.kind == "conversion":
                gs = _convert(gs, col, union, change.from_type, change.to_type)
            edited = True
        elif change.kind == "greenspace":  # pragma: no cover - refused by config_problems
            raise ValueError("greenspace changes need green-space types")
    typed = resolve_overlaps(gs, CARBON_TYPE, types)[0] if edited else None
    return BurnPlan(scenario=scenario, types=types, unions=unions, states=states, carbon_types=carbon_types,
                    greenspace=gs, typed=typed, typed_land=typed_land, type_column=col)


def burn_window(base: Landscape, plan: BurnPlan, coverage: Callable[[list], np.ndarray]) -> Burned:
    """The burned layers of one window of the grid (the whole grid, or a tile): ``base`` holds the baseline's
    layers on that window and ``coverage(polygons)`` gives their exact coverage of its pixels, equal to the
    whole grid's coverage there (:func:`greensink.coverage.coverage_raster`, :func:`window_coverage`), so each
    pixel's result is the whole grid's (module docstring: every value depends on its pixel, the plan and the
    states alone). Returns the window's :class:`Burned` with the plan's edited polygons and states."""
    scenario, types, shape = plan.scenario, plan.types, base.rasters["ndvi"].shape
    rasters = {k: np.array(v, dtype=np.float32, copy=True) for k, v in base.rasters.items()}
    fractions = np.concatenate([base.fractions.astype(np.float32, copy=True),
                                np.zeros((len(scenario.pseudo_types()), *shape), dtype=np.float32)])
    changed = np.zeros(shape, dtype=np.float32)
    last = np.full(shape, -1, dtype=np.int16)
    touched = np.zeros(shape, dtype=bool)
    plantings = []
    for k, change in enumerate(scenario.changes):
        cover = coverage(list(shapely.get_parts(plan.unions[k])))
        share = cover * np.float32(change.share)
        if change.kind == "planting":
            plantings.append((share, plan.carbon_types[k]))
        elif plan.typed_land:
            touched |= cover > 0
        elif change.kind == "construction":  # one pseudo-type VEG everywhere: the fraction is 1, so scaling it is exact
            fractions *= (1.0 - cover)[None].astype(np.float32)
        for name, value in plan.states[k]["state"].items():
            if name in rasters:
                rasters[name] = mix(rasters[name], share, value)
        changed = np.maximum(changed, share)
        last[share > 0] = k
    if touched.any():
        fresh = _type_coverage(plan.typed, types, shape, coverage)
        fractions[:, touched] = fresh[:, touched]
    for share, carbon_type in plantings:
        open_land = np.clip(1.0 - fractions.sum(axis=0), 0.0, 1.0)
        fractions[types.index(carbon_type)] += np.minimum(share, open_land).astype(np.float32)
    return Burned(rasters=rasters, fractions=fractions, types=types, greenspace=plan.output_greenspace(),
                  type_column=base.type_column, changed=changed, last=last, states=plan.states)


def _type_coverage(typed: gpd.GeoDataFrame, types: Sequence[str], shape: tuple[int, int],
                   coverage: Callable[[list], np.ndarray]) -> np.ndarray:
    """(n_types, rows, cols) float32: :func:`greensink.types.type_fractions` of the resolved polygons ``typed``
    on the window of ``coverage``."""
    out = np.zeros((len(types), *shape), dtype=np.float32)
    codes = list(typed[CARBON_TYPE])
    for k, code in enumerate(types):
        if code in codes:
            out[k] = coverage(list(shapely.get_parts(typed.geometry.values[codes.index(code)])))
    return out


def window_coverage(geoms: Sequence, grid: Grid, tile: Tile) -> np.ndarray:
    """(tile.height, tile.width) float32: the coverage of the pixels of ``tile`` by the union of ``geoms``
    (not overlapping each other), equal bit for bit to ``coverage_raster(geoms, grid.transform, grid.shape)``
    on the tile's window. Only the geometries whose bounds meet the tile are computed, on the rows from the
    grid's top to the tile's last and the grid's whole width: the same vertices, rows and sums along each row
    as the whole grid's (a tile's own coordinates, or a row cut at its right edge, round differently in the
    last bit, which float32 keeps for coverages near 0). Memory: the coverage entries of those geometries."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    xmin, ymin, xmax, ymax = grid.subgrid(tile).bounds
    if len(arr):
        lo_x, lo_y, hi_x, hi_y = shapely.bounds(arr).T
        with np.errstate(invalid="ignore"):  # empty geometries have NaN bounds: not kept
            arr = arr[(lo_x <= xmax) & (hi_x >= xmin) & (lo_y <= ymax) & (hi_y >= ymin)]
    rect = Tile(tile.id, 0, 0, tile.row_off + tile.height, grid.width)
    m = tile_coverage_matrix(arr, grid, rect)
    r, c = np.divmod(m.indices.astype(np.int64), rect.width)
    ok = (r >= tile.row_off) & (c >= tile.col_off) & (c < tile.col_off + tile.width)
    local = (r[ok] - tile.row_off) * tile.width + (c[ok] - tile.col_off)
    # as coverage_raster: float64 sums in the entries' order (geometry by geometry), clipped to 1 for rounding
    total = np.bincount(local, weights=m.data[ok], minlength=tile.height * tile.width).astype(np.float64, copy=False)
    np.minimum(total, 1.0, out=total)
    return total.reshape(tile.shape).astype(np.float32)


def burn(base: Landscape, scenario: Scenario, layers: Sequence[np.ndarray], grid: Grid, thresholds: Thresholds,
         typed_land: bool = True) -> Burned:
    """The scenario's landscape: ``base`` with every change of ``scenario`` burned in, in order
    (module docstring). ``layers`` holds each change's polygons in the grid's CRS
    (:func:`greensink.scenario.plan.read_change_layer`). The whole grid at once: :func:`plan_burn` then
    :func:`burn_window` on the grid (a tiled run calls them per tile)."""
    plan = plan_burn(base, scenario, layers, thresholds, typed_land)
    return burn_window(base, plan, lambda geoms: coverage_raster(geoms, grid.transform, grid.shape))


def _convert(gs: gpd.GeoDataFrame, col: str, area, from_type: str, to_type: str) -> gpd.GeoDataFrame:
    """``gs`` with the part of every ``from_type`` polygon inside ``area`` retyped ``to_type``."""
    geoms = np.asarray(gs.geometry.values, dtype=object)
    hit = (gs[col].astype(str) == from_type).to_numpy()
    inside = shapely.intersection(geoms[hit], area)
    outside = shapely.difference(geoms[hit], area)
    rows = {col: [], CARBON_TYPE: [], "geometry": []}
    for c, ct, g in zip(gs[col][~hit], gs[CARBON_TYPE][~hit], geoms[~hit], strict=True):
        rows[col].append(c), rows[CARBON_TYPE].append(ct), rows["geometry"].append(g)
    for g in outside:
        rows[col].append(from_type), rows[CARBON_TYPE].append(from_type), rows["geometry"].append(g)
    for g in inside:
        rows[col].append(to_type), rows[CARBON_TYPE].append(to_type), rows["geometry"].append(g)
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=gs.crs)
    return out[~shapely.is_empty(out.geometry.values)]


def scenario_models(models: Mapping, scenario: Scenario) -> dict:
    """The baseline year's models.json with one constant-density type per pseudo-type of the scenario
    (its given density, the same in every draw: a plan's density has no estimation error), tier 2."""
    out = copy.deepcopy(dict(models))
    first = next(iter(out["types"].values()))
    n_draws = len(first["bootstrap"])
    for code, (type_code, density) in scenario.pseudo_types().items():
        record = fallback_record(code, density, 0.0, 0, f"scenario {scenario.name}: planned density {density:g} t C/ha "
                                 f"of {type_code} land (state.density_t_ha)", n_bootstrap=n_draws).to_json()
        record.update(tier=2, tier_name="tier 2: planned density (scenario state.density_t_ha)", pools={},
                      scenario_type=type_code)
        out["types"][code] = record
    return out


def growth_map(scenario: Scenario, last: np.ndarray, years: float) -> np.ndarray:
    """(rows, cols) float64: the share of the planned carbon difference reached ``years`` after
    planting at each pixel, from the last change touching it (:meth:`Scenario.growth_share`; 1 where
    no change touched it, which changes nothing there)."""
    shares = np.array([scenario.growth_share(k, years) for k in range(len(scenario.changes))] + [1.0])
    return shares[last.astype(np.int64)]  # index -1 is the trailing 1.0
