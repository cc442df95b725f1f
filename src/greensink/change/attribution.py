"""Attribution of a stock change (docs/method.md, "Attribution of a stock change") and carbon-sink space:
each pixel's class (gain, loss, growth, conversion, other), the zone parts, no net loss of sink space and
the lost patches, all from estimates already computed (no draws)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
import shapely.geometry
from affine import Affine
from rasterio import features
from scipy import ndimage

from greensink.grid import Grid
from greensink.units import c_to_co2e

#: The parts of a zone's stock change, in the order they are summed into ``stock_change_t``.
ATTRIBUTION_PARTS = ("gain", "loss", "growth", "conversion", "other")
#: Band 1 of attribution.tif: the attribution class of a pixel (NaN where it is unknown).
ATTRIBUTION_CODES = {"other": 0, "gain": 1, "loss": 2, "growth": 3, "conversion": 4}
UNTYPED = -1  # dominant_type of a pixel with no green-space type
WHOLE_EPS = 1e-6  # a typed fraction within this of 1 is a wholly typed pixel
LOST_EPS = 1e-6  # sink space lost below this share of a pixel is float noise of the fractions, not a loss


def dominant_type(fractions: np.ndarray) -> np.ndarray:
    """Per pixel (flat, int16): the index of the type with the largest fraction ((n_types, rows, cols)
    or (n_types, n)), the first of them on a tie; :data:`UNTYPED` (−1) where the pixel has no type."""
    frac = np.asarray(fractions).reshape(np.shape(fractions)[0], -1)
    out = np.argmax(frac, axis=0).astype(np.int16)
    out[~(frac.sum(axis=0) > 0)] = UNTYPED
    return out


def attribution_classes(classes0: np.ndarray, classes1: np.ndarray, type0: np.ndarray, type1: np.ndarray) -> np.ndarray:
    """The attribution class of each pixel's stock change between two years (float32, the shape of
    ``classes0``; codes :data:`ATTRIBUTION_CODES`), from the vegetation classes of both years
    (0 none, 1 grass, 2 shrub, 3 tree, NaN no data: :func:`greensink.vegetation.structure_classes`)
    and the dominant green-space type of both years (:func:`dominant_type`, flat):

    * gain (1): vegetation appeared (none → vegetated) or canopy appeared (grass/shrub → tree);
    * loss (2): vegetation cleared (vegetated → none) or canopy cleared (tree → grass/shrub);
    * growth (3): vegetated in both years, no canopy change, same dominant type (growth or decline);
    * conversion (4): vegetated in both years, no canopy change, the dominant type changed
      (untyped counts as a type of its own: land that became, or stopped being, green space);
    * other (0): not vegetated in either year;
    * NaN: the vegetation class is unknown (no clear observation) in either year.

    Gain and loss come first: a pixel whose vegetation appeared while its type changed is a gain."""
    c0 = np.asarray(classes0, dtype=np.float64).reshape(-1)
    c1 = np.asarray(classes1, dtype=np.float64).reshape(-1)
    t0, t1 = np.asarray(type0).reshape(-1), np.asarray(type1).reshape(-1)
    if not c0.size == c1.size == t0.size == t1.size:
        raise ValueError(f"vegetation classes and types must have one value per pixel. Got {c0.size}, {c1.size}, "
                         f"{t0.size} and {t1.size} values.")
    known = np.isfinite(c0) & np.isfinite(c1)
    with np.errstate(invalid="ignore"):
        veg0, veg1 = c0 >= 1, c1 >= 1
        tree0, tree1 = c0 == 3, c1 == 3
    gain = (~veg0 & veg1) | (veg0 & ~tree0 & tree1)
    loss = (veg0 & ~veg1) | (tree0 & veg1 & ~tree1)
    persistent = veg0 & veg1 & ~gain & ~loss
    out = np.zeros(c0.size, dtype=np.float32)
    out[gain] = ATTRIBUTION_CODES["gain"]
    out[loss] = ATTRIBUTION_CODES["loss"]
    out[persistent & (t0 == t1)] = ATTRIBUTION_CODES["growth"]
    out[persistent & (t0 != t1)] = ATTRIBUTION_CODES["conversion"]
    out[~known] = np.nan
    return out.reshape(np.shape(classes0))


def zone_attribution(matrices: Sequence[sp.csr_matrix], active: np.ndarray, change_t_ha: np.ndarray,
                     codes: np.ndarray, pixel_area_ha: float) -> list[dict[str, np.ndarray]]:
    """Per coverage matrix (level), the zone sums (t C) of the per-pixel stock change split by attribution.

    ``change_t_ha`` is stock y1 − stock y0 (t C per ha of pixel) and ``codes`` the attribution class
    (:func:`attribution_classes`) at the ``active`` pixels (flat indices; elsewhere the stock is 0 in
    both years). Each part is Σ coverage × change × pixel area over the pixels of its class:
    {"gain", "loss", "growth", "conversion", "other"} with "other" holding the pixels of class 0 and
    those whose class is unknown, and "other_unobserved" the latter alone (a share of "other", not a
    sixth part). A NaN change (no usable model and no fill) contributes nothing, as in
    :func:`greensink.aggregate.zone_draw_sums`; the zone's stock is then NaN anyway."""
    d = np.nan_to_num(np.asarray(change_t_ha, dtype=np.float64))
    code = np.asarray(codes, dtype=np.float64)
    unknown = ~np.isfinite(code)
    masks = {part: code == ATTRIBUTION_CODES[part] for part in ATTRIBUTION_PARTS}
    masks["other"] = masks["other"] | unknown
    masks["other_unobserved"] = unknown
    values = np.column_stack([np.where(m, d, 0.0) for m in masks.values()])  # (n_active, parts)
    out = []
    for matrix in matrices:
        sums = (matrix.tocsc()[:, active] @ values) * pixel_area_ha
        out.append({part: np.asarray(sums[:, j]).ravel() for j, part in enumerate(masks)})
    return out


def sink_space(classes: np.ndarray, fractions: np.ndarray, typed_land: bool = True) -> np.ndarray:
    """Per pixel (flat float32): the share of the pixel that is carbon-sink space, i.e. vegetated land
    or typed green space: 1 where vegetated (class ≥ 1), else the pixel's typed green-space fraction
    (Σ type fractions, at most 1); NaN where unknown (no vegetation class, and the pixel not wholly
    typed). ``typed_land`` False (no green-space types: one pseudo-type over all land) counts
    vegetated land alone."""
    c = np.asarray(classes, dtype=np.float32).reshape(-1)
    typed = (np.minimum(np.asarray(fractions, dtype=np.float32).reshape(np.shape(fractions)[0], -1).sum(axis=0), 1.0)
             if typed_land else np.zeros(c.size, dtype=np.float32))
    with np.errstate(invalid="ignore"):
        out = np.where(c >= 1, np.float32(1.0), typed).astype(np.float32, copy=False)
    out[~(np.isfinite(c) | (typed >= 1.0 - WHOLE_EPS))] = np.nan
    return out


def zone_sink_space(matrices: Sequence[sp.csr_matrix], space0: np.ndarray, space1: np.ndarray,
                    pixel_area_ha: float) -> list[dict[str, np.ndarray]]:
    """Per coverage matrix (level), the zone sums (ha) of carbon-sink space (:func:`sink_space`) of
    both years over the land whose sink space is known in both ("compared"): "from_ha", "to_ha",
    "lost_ha" (Σ max(from − to, 0)), "gained_ha", "compared_ha" and "grid_ha" (the zone's land on the
    grid). Land unknown in either year is left out of both years, so clouds are never a loss or a gain.
    One grid-sized vector at a time (memory: a few grid-sized arrays, whatever the number of sums)."""
    s0, s1 = np.asarray(space0), np.asarray(space1)
    both = np.isfinite(s0) & np.isfinite(s1)
    a, b = np.where(both, s0, 0.0), np.where(both, s1, 0.0)
    vectors = {"from_ha": lambda: a, "to_ha": lambda: b, "lost_ha": lambda: np.maximum(a - b, 0.0),
               "gained_ha": lambda: np.maximum(b - a, 0.0), "compared_ha": lambda: both.astype(np.float32)}
    out = []
    for matrix in matrices:
        sums = {name: (matrix @ vector()) * pixel_area_ha for name, vector in vectors.items()}
        sums["grid_ha"] = np.asarray(matrix.sum(axis=1)).ravel() * pixel_area_ha
        out.append(sums)
    return out


def lost_patches(space0: np.ndarray, space1: np.ndarray, stock0_t_ha: np.ndarray, stock1_t_ha: np.ndarray,
                 matrices: Sequence[sp.csr_matrix], zones: Sequence[gpd.GeoDataFrame], levels: Sequence[str],
                 grid: Grid, y0: int, y1: int) -> gpd.GeoDataFrame:
    """The patches of carbon-sink space lost between two years, as polygons (layer lost_patches).

    A pixel lost sink space where its sink space (:func:`sink_space`, both years known) shrank by
    more than :data:`LOST_EPS` of a pixel. Each pixel is given, at every level, the zone covering most
    of it (coverage matrices; none where no zone of the level covers it); a patch is a 4-connected
    group of lost pixels with the same zones at every level, polygonised along pixel edges
    (:func:`rasterio.features.shapes`). Columns: ``patch_id`` (1…), ``year_from``, ``year_to``,
    ``<level>_id`` per level, ``pixels``, ``area_ha`` (sink space lost: Σ lost share × pixel area,
    at most the polygon's area), ``carbon_t_from`` / ``carbon_t_to`` (stock of the patch's pixels in
    each year, t C; ``stock*_t_ha`` are flat per-pixel stocks, 0 where untyped, NaN where unknown),
    ``carbon_lost_t`` (from − to; NaN where a pixel's stock is unknown) and ``co2e_lost_t``. No lost
    pixel: an empty layer with these columns."""
    found = lost_pixels(space0, space1, stock0_t_ha, stock1_t_ha, matrices)
    return patches_from_lost(found, zones, levels, grid, y0, y1)


def lost_pixels(space0: np.ndarray, space1: np.ndarray, stock0_t_ha: np.ndarray, stock1_t_ha: np.ndarray,
                matrices: Sequence[sp.csr_matrix]) -> dict[str, np.ndarray]:
    """The pixels of :func:`lost_patches` that lost carbon-sink space, each on its own (no neighbour read), so a
    tile's pixels are found from the tile alone (rule change_tile): ``index`` (flat, ascending, of the arrays
    given), ``lost`` (the share of the pixel lost, float64), ``stock0`` / ``stock1`` (t C/ha) and ``keys``
    (levels, n) int64 (per coverage matrix, the row of the zone covering most of the pixel, the first on a tie;
    −1 where none covers it). Arguments as :func:`lost_patches`; a tile's coverage matrices (the whole grid's
    columns of the tile, :func:`greensink.coverage.tile_coverage_matrix`) give the whole grid's keys."""
    s0, s1 = np.asarray(space0, dtype=np.float64), np.asarray(space1, dtype=np.float64)
    lost = np.where(np.isfinite(s0) & np.isfinite(s1), s0 - s1, 0.0)
    idx = np.flatnonzero(lost > LOST_EPS)
    keys = np.full((len(matrices), idx.size), -1, dtype=np.int64)
    for j, matrix in enumerate(matrices):
        sub = matrix.tocsc()[:, idx]
        if sub.nnz:
            best = np.asarray(sub.argmax(axis=0)).ravel()
            covered = np.asarray(sub.max(axis=0).todense()).ravel() > 0
            keys[j] = np.where(covered, best, -1)
    return {"index": idx.astype(np.int64), "lost": lost[idx],
            "stock0": np.asarray(stock0_t_ha, dtype=np.float64).reshape(-1)[idx],
            "stock1": np.asarray(stock1_t_ha, dtype=np.float64).reshape(-1)[idx], "keys": keys}


def _component_ids(label: np.ndarray) -> np.ndarray:
    """int32 ids of the 4-connected components of each group of ``label`` (0: none), numbered group by group and
    within a group by the component's first pixel in row-major order (ids from 1; 0 outside)."""
    patch = np.zeros(label.shape, dtype=np.int32)
    n = 0
    for g, box_ in enumerate(ndimage.find_objects(label), start=1):
        if box_ is None:
            continue
        comp, k = ndimage.label(label[box_] == g)  # 4-connected, like shapes(connectivity=4)
        view = patch[box_]
        view[comp > 0] = comp[comp > 0] + n
        n += k
    return patch


def _shapes(patch: np.ndarray, transform) -> dict[int, list]:
    """The polygons of each id of ``patch`` (> 0), 4-connected, on the grid ``transform``."""
    geoms: dict[int, list] = {}
    for geom, value in features.shapes(patch, mask=patch > 0, transform=transform, connectivity=4):
        geoms.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    return geoms


def label_lost_whole(idx: np.ndarray, group: np.ndarray, grid: Grid) -> tuple[np.ndarray, dict[int, list]]:
    """Each lost pixel's patch id (4-connected pixels of one ``group``, numbered group by group and within a group
    by first pixel) and each patch's polygons, over the whole ``grid``: two whole-grid int32 arrays."""
    label = np.zeros(grid.height * grid.width, dtype=np.int32)
    label[idx] = group + 1
    patch = _component_ids(label.reshape(grid.shape))
    return patch.reshape(-1)[idx], (_shapes(patch, grid.transform) if idx.size else {})


def label_lost_tiled(idx: np.ndarray, group: np.ndarray, grid: Grid, size_px: int,
                     ) -> tuple[np.ndarray, dict[int, list]]:
    """:func:`label_lost_whole` without a whole-grid array: each tile of ``grid.tiles(size_px)`` labels its own
    lost pixels (arrays of the tile's size) and polygonizes them; the tile patches that touch across a tile edge
    (a lost pixel and its right or lower neighbour in the next tile, of the same group) are joined by the
    connected components of those edges (a union-find), so a patch across a tile corner, joined through the edges,
    stays one patch; a joined patch is polygonized again on its own bounding box. The patches and their numbering
    are the whole grid's (group by group, then by first pixel). Memory: one tile, the lost pixels, and the
    bounding box of the largest joined patch."""
    from scipy.sparse.csgraph import connected_components

    idx = np.asarray(idx, dtype=np.int64)
    n = idx.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), {}
    size = int(size_px)
    rows, cols = idx // grid.width, idx % grid.width
    n_tile_cols = -(-grid.width // size)
    tile_of = (rows // size) * n_tile_cols + cols // size
    order = np.argsort(tile_of, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(tile_of[order]) != 0])
    prov = np.empty(n, dtype=np.int64)  # each pixel's tile patch, 0-based over all tiles
    prov_geoms: list[list] = []
    for a, b in zip(starts, [*starts[1:], n], strict=True):
        sel = order[a:b]
        tr, tc = divmod(int(tile_of[sel[0]]), n_tile_cols)
        r0, c0 = tr * size, tc * size
        h, w = min(size, grid.height - r0), min(size, grid.width - c0)
        label = np.zeros((h, w), dtype=np.int32)
        lr, lc = rows[sel] - r0, cols[sel] - c0
        label[lr, lc] = group[sel] + 1
        patch = _component_ids(label)
        k = int(patch.max())
        prov[sel] = patch[lr, lc].astype(np.int64) - 1 + len(prov_geoms)
        geoms = _shapes(patch, grid.transform @ Affine.translation(c0, r0))
        prov_geoms.extend(geoms.get(i, []) for i in range(1, k + 1))
    # tile patches touching across a tile edge: a pixel in a tile's last column (row) and its right (lower) neighbour
    edges = []
    for at_edge, step in ((((cols + 1) % size == 0) & (cols + 1 < grid.width), 1),
                          (((rows + 1) % size == 0) & (rows + 1 < grid.height), grid.width)):
        i = np.flatnonzero(at_edge)
        j = np.searchsorted(idx, idx[i] + step)
        found = j < n
        i, j = i[found], j[found]
        same = (idx[j] == idx[i] + step) & (group[j] == group[i])
        edges.append((prov[i[same]], prov[j[same]]))
    e0 = np.concatenate([e[0] for e in edges])
    e1 = np.concatenate([e[1] for e in edges])
    m = len(prov_geoms)
    graph = sp.coo_matrix((np.ones(e0.size, dtype=np.int8), (e0, e1)), shape=(m, m))
    _, comp_of_prov = connected_components(graph, directed=False)
    comp = comp_of_prov[prov]
    # the whole grid's numbering: group by group, then by the patch's first pixel (idx is ascending)
    comps, first = np.unique(comp, return_index=True)
    rank = np.empty(comps.size, dtype=np.int64)
    rank[np.lexsort((first, group[first]))] = np.arange(comps.size)
    pid = rank[np.searchsorted(comps, comp)] + 1
    provs_of = np.bincount(comp_of_prov, minlength=comps.size)
    out: dict[int, list] = {}
    joined = np.flatnonzero(provs_of > 1)
    for c, p in zip(comp_of_prov, range(m), strict=True):
        if provs_of[c] == 1:
            out[int(rank[np.searchsorted(comps, c)]) + 1] = prov_geoms[p]
    if joined.size:
        by_comp = np.argsort(comp, kind="stable")
        bounds = np.searchsorted(comp[by_comp], np.r_[joined, joined + 1])
        for c, a, b in zip(joined, bounds[:joined.size], bounds[joined.size:], strict=True):
            sel = by_comp[a:b]
            r, q = rows[sel], cols[sel]
            r0, c0 = int(r.min()), int(q.min())
            mask = np.zeros((int(r.max()) - r0 + 1, int(q.max()) - c0 + 1), dtype=np.int32)
            mask[r - r0, q - c0] = 1
            out[int(rank[np.searchsorted(comps, c)]) + 1] = _shapes(mask, grid.transform @ Affine.translation(c0, r0))[1]
    return pid, out


def patches_from_lost(found: dict[str, np.ndarray], zones: Sequence[gpd.GeoDataFrame], levels: Sequence[str],
                      grid: Grid, y0: int, y1: int, size_px: int | None = None) -> gpd.GeoDataFrame:
    """The polygons of :func:`lost_patches` from its pixels (:func:`lost_pixels` of the whole grid, or the tiles'
    concatenated with global flat indices, ascending). The patches are 4-connected over the whole ``grid``:
    labelled on two whole-grid int32 arrays (:func:`label_lost_whole`, 8 bytes per pixel), or with ``size_px``
    (a tiled run) tile by tile and joined across the tile edges (:func:`label_lost_tiled`: no whole-grid array),
    with the same patches, numbers and polygons."""
    idx, keys = np.asarray(found["index"], dtype=np.int64), np.asarray(found["keys"], dtype=np.int64)
    lost = np.asarray(found["lost"], dtype=np.float64)
    if idx.size > 1 and not (np.diff(idx) > 0).all():
        raise ValueError("patches_from_lost: the lost pixels' indices must be ascending and unique.")
    group = np.unique(keys, axis=1, return_inverse=True)[1].reshape(-1) if idx.size else np.zeros(0, dtype=np.int64)
    if size_px is None:
        pid, geoms = label_lost_whole(idx, group, grid)
    else:
        pid, geoms = label_lost_tiled(idx, group, grid, size_px)
    ids, first = np.unique(pid, return_index=True)
    pa = grid.pixel_area_ha
    flat0, flat1 = np.asarray(found["stock0"], dtype=np.float64), np.asarray(found["stock1"], dtype=np.float64)
    pos = np.searchsorted(ids, pid)
    c0 = np.bincount(pos, weights=flat0, minlength=ids.size) * pa
    c1 = np.bincount(pos, weights=flat1, minlength=ids.size) * pa
    out = pd.DataFrame({"patch_id": ids.astype(np.int64), "year_from": np.full(ids.size, y0, dtype=np.int64),
                        "year_to": np.full(ids.size, y1, dtype=np.int64)})
    for j, (level, z) in enumerate(zip(levels, zones, strict=True)):
        zid = z["zone_id"].astype(str).to_numpy()
        k = keys[j, first]
        out[f"{level}_id"] = np.array([zid[i] if i >= 0 else None for i in k], dtype=object)
    out["pixels"] = np.bincount(pos, minlength=ids.size).astype(np.int64)
    out["area_ha"] = np.bincount(pos, weights=lost, minlength=ids.size) * pa
    out["carbon_t_from"] = c0
    out["carbon_t_to"] = c1
    out["carbon_lost_t"] = c0 - c1
    out["co2e_lost_t"] = c_to_co2e(out["carbon_lost_t"])
    polys = [shapely.union_all(geoms[int(i)]) if len(geoms.get(int(i), [])) != 1 else geoms[int(i)][0] for i in ids]
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(polys, crs=grid.crs), crs=grid.crs)


def attribution_raster(codes: np.ndarray, change_t_ha: np.ndarray, active: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(2, rows, cols) float32 of attribution.tif: band 1 the attribution class (:data:`ATTRIBUTION_CODES`,
    NaN where unknown), band 2 the stock change y1 − y0 (t C/ha, NaN where either year's stock is
    unknown), both given at the ``active`` pixels (typed land of either year); elsewhere the stock is 0
    in both years: class 0 (other), change 0."""
    out = np.zeros((2, shape[0] * shape[1]), dtype=np.float32)
    out[0, active] = codes
    out[1, active] = change_t_ha
    return out.reshape(2, *shape)


@dataclasses.dataclass
class Attribution:
    """What :func:`attribute_change` hands the change rule: ``raster`` (2, rows, cols) for attribution.tif,
    per level ``parts`` (:func:`zone_attribution`), ``space`` (:func:`zone_sink_space`) and ``green`` (the
    same on vegetated land alone) for :func:`change_table`, and the ``patches`` of lost sink space
    (:func:`lost_patches`)."""

    raster: np.ndarray
    parts: list[dict[str, np.ndarray]]
    space: list[dict[str, np.ndarray]]
    patches: gpd.GeoDataFrame | None
    green: list[dict[str, np.ndarray]] | None = None
    lost: dict[str, np.ndarray] | None = None  # the lost pixels (:func:`lost_pixels`) the patches are made of


def attribute_change(
    classes0: np.ndarray, classes1: np.ndarray, fractions0: np.ndarray, fractions1: np.ndarray, active: np.ndarray,
    stock0_t_ha: np.ndarray, stock1_t_ha: np.ndarray, map0_t_ha: np.ndarray, map1_t_ha: np.ndarray,
    matrices: Sequence[sp.csr_matrix], zones: Sequence[gpd.GeoDataFrame], levels: Sequence[str], grid: Grid,
    y0: int, y1: int, typed_land: bool = True, patches: bool = True,
) -> Attribution:
    """Attribution of the stock change between y0 and y1 and the loss of carbon-sink space, in one pass
    over estimates already computed (no draws).

    ``classes*`` are the years' vegetation class rasters (rows, cols), ``fractions*`` their green-space
    fractions (n_types, rows, cols), ``active`` the flat indices of the pixels typed in either year;
    at those pixels ``stock*_t_ha`` are the estimates the zone tables sum (filled where unobserved) and
    ``map*_t_ha`` those of the carbon maps (NaN where unobserved), t C/ha of pixel.

    Everything but the patches is per pixel or a zone sum, so a tile of the grid (its windows, its coverage
    matrices, ``grid`` its sub-grid) gives the tile's part of every sum (rule change_tile). ``patches`` False
    leaves the polygons out (``patches`` None): a tile keeps its lost pixels (``lost``, :func:`lost_pixels`),
    whose polygons are made over the whole grid (:func:`patches_from_lost`)."""
    active = np.asarray(active)
    codes = attribution_classes(np.asarray(classes0).reshape(-1)[active], np.asarray(classes1).reshape(-1)[active],
                                dominant_type(fractions0)[active], dominant_type(fractions1)[active])
    stock0, stock1 = np.asarray(stock0_t_ha, dtype=np.float64), np.asarray(stock1_t_ha, dtype=np.float64)
    raster = attribution_raster(codes, np.asarray(map1_t_ha) - np.asarray(map0_t_ha), active, grid.shape)
    parts = zone_attribution(matrices, active, stock1 - stock0, codes, grid.pixel_area_ha)
    space0, space1 = sink_space(classes0, fractions0, typed_land), sink_space(classes1, fractions1, typed_land)
    space = zone_sink_space(matrices, space0, space1, grid.pixel_area_ha)
    full0, full1 = np.zeros(grid.height * grid.width), np.zeros(grid.height * grid.width)
    full0[active], full1[active] = stock0, stock1
    lost = lost_pixels(space0, space1, full0, full1, matrices)
    del full0, full1
    found = patches_from_lost(lost, zones, levels, grid, y0, y1) if patches else None
    green = zone_sink_space(matrices, sink_space(classes0, fractions0, False), sink_space(classes1, fractions1, False),
                            grid.pixel_area_ha)  # vegetated land over the land whose vegetation both years saw
    return Attribution(raster, parts, space, found, green, lost)
