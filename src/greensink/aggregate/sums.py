"""The zone sums linear in the pixels over a block of pixels, the whole grid or a tile (:func:`zone_partial_sums`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from greensink.aggregate.draws import zone_draw_sums
from greensink.carbon import fill_values, pixel_function, type_density, typed_pixels
from greensink.uncertainty import Noise
from greensink.zone_sums import DRAW_PREFIX, ZoneSums, compact, pixel_sums, touching_rows


def zone_partial_sums(matrices: Sequence[sp.csr_matrix], rasters: Mapping[str, np.ndarray], fractions: np.ndarray,
                      models: dict, types: Sequence[str], predictors: Mapping[str, np.ndarray],
                      fill: Mapping[str, Mapping], pixel_area_ha: float, *, noise: Noise | None = None,
                      ndvi_se: np.ndarray | None = None, row0: int = 0, col0: int = 0, grid_width: int | None = None,
                      chunk_pixels: int = 16_384, compact_rows: bool = True,
                      progress: Callable[[int, int], None] | None = None) -> list[ZoneSums]:
    """Each level's :class:`~greensink.zone_sums.ZoneSums` over a block of pixels: the whole grid (untiled), or a
    tile (``matrices`` the tile's coverage matrices, every zone a row, local pixel index r × tile width + c; the
    rasters its windows; ``row0``, ``col0`` its top-left grid pixel and ``grid_width`` the grid's columns, so the
    noise streams are keyed by the whole grid's pixels and a tile's draws are the whole grid's at those pixels).

    Only the zones touching the block (a stored coverage entry) are kept, so the memory of a tile's draw sums
    grows with the zones it touches (``compact_rows`` False: every zone, and no copy of the matrices, for the whole
    grid; the zones touching no pixel have sums 0 either way, to the bit). ``rasters`` (ndvi, fvc, vegetation, canopy, tree_shrub), ``fractions``
    (n_types, rows, cols), ``predictors`` (the models' predictor rasters by name) and ``ndvi_se`` (the NDVI
    error source, where ``noise`` has it) are on the block; ``fill`` is the year's fill of unobserved typed land
    (:func:`greensink.carbon.type_fill`'s format). The draws are those of rule aggregate: the filled pixel
    function with every source (:func:`greensink.carbon.pixel_function`, ``sources``), summed by
    :func:`zone_draw_sums`; a block without typed pixels has no draw sums."""
    rows = [touching_rows(m) if compact_rows else np.arange(m.shape[0]) for m in matrices]
    mats = [compact(m, r) for m, r in zip(matrices, rows, strict=True)]
    density = type_density(models, types, fractions, predictors)
    active = typed_pixels(fractions)
    draws = None
    if active.size:
        inputs = {**predictors, "ndvi_se": ndvi_se} if noise is not None and noise.spec.ndvi else predictors
        fn = pixel_function(models, types, fractions, inputs, fill=fill_values(fill), noise=noise, sources=True,
                            row0=row0, col0=col0, grid_width=grid_width)
        draws = zone_draw_sums(mats, fn, active, pixel_area_ha, chunk_pixels=chunk_pixels, progress=progress)
    out = []
    for i, (m, r) in enumerate(zip(mats, rows, strict=True)):
        values = pixel_sums(m, rasters, density, fractions)
        if draws is not None:
            est, d, *parts = draws[i]
            values["estimate_t"], values["draws_t"] = est, d
            for source, v in (parts[0] if parts else {}).items():
                values[f"{DRAW_PREFIX}{source}_t"] = v
        out.append(ZoneSums(n_zones=matrices[i].shape[0], rows=r, values=values))
    return out



def draw_sums_of(sums: Mapping[str, np.ndarray], n_zones: int) -> tuple:
    """(estimate (Z,), draws (Z, B)[, {source: (Z, B)}]) of one level's summed :class:`ZoneSums` values, as
    :func:`zone_draw_sums` gives them; zeros (one draw column, no sources) where no typed pixel was drawn."""
    est = sums.get("estimate_t", np.zeros(n_zones))
    draws = sums.get("draws_t", np.zeros((n_zones, 1)))
    parts = {k[len(DRAW_PREFIX):-2]: v for k, v in sums.items() if k.startswith(DRAW_PREFIX)}
    return (est, draws, parts) if parts else (est, draws)
