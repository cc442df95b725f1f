"""The sink's one pass: each year's draws evaluated once per chunk for the sink map (sink.tif) and the zone
sums of the sink, filled and over the typed land observed in both years (:func:`sink_pass`), from the
years' pixel functions differenced (:func:`difference_function`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from greensink.carbon import PixelFn


def difference_function(fn0: PixelFn, fn1: PixelFn, years: float) -> PixelFn:
    """A pixel function giving (stock1 − stock0) / years for the estimate and each draw (and each
    source's contribution, where both functions give them)."""
    if years <= 0:
        raise ValueError(f"years between stocks must be > 0. Got {years}.")

    def evaluate(idx: np.ndarray):
        e0, d0, *p0 = fn0(idx)
        e1, d1, *p1 = fn1(idx)
        if p0 and p1:  # per-source contributions (pixel_function sources=True): differenced alike
            return (e1 - e0) / years, (d1 - d0) / years, {k: (p1[0][k] - p0[0][k]) / years for k in p0[0]}
        return (e1 - e0) / years, (d1 - d0) / years

    return evaluate


class EstimateRecorder:
    """A pixel function (:data:`greensink.carbon.PixelFn`) that keeps the estimate of every pixel it
    evaluates, so that the attribution reads the estimates of the pass that already ran (the sink's
    draws) instead of evaluating the models again. ``active`` are the flat pixel indices (ascending)
    the pass covers; :meth:`estimates` is (active.size,) in the function's units."""

    def __init__(self, fn: PixelFn, active: np.ndarray) -> None:
        self.fn = fn
        self.active = np.asarray(active)
        self.values = np.full(self.active.size, np.nan)
        self.seen = np.zeros(self.active.size, dtype=bool)

    def __call__(self, idx: np.ndarray):
        out = self.fn(idx)
        pos = np.searchsorted(self.active, idx)
        if pos.size and (pos.max() >= self.active.size or not np.array_equal(self.active[pos], idx)):
            raise ValueError("EstimateRecorder: a pixel index outside the active pixels was evaluated.")
        self.values[pos] = out[0]
        self.seen[pos] = True
        return out

    def estimates(self) -> np.ndarray:
        """The estimate of every active pixel; an error if the pass skipped any."""
        if not self.seen.all():
            raise RuntimeError(f"EstimateRecorder: {int((~self.seen).sum())} active pixel(s) were never evaluated.")
        return self.values


@dataclasses.dataclass
class SinkPass:
    """What :func:`sink_pass` gives the change rule: ``sink`` (3, rows, cols) float32 for sink.tif (as
    :func:`greensink.carbon.density_map` of the maps' difference), per coverage matrix ``sums`` (estimate
    (Z,), draws (Z, B), {source: (Z, B)}) of the filled sink (as :func:`greensink.aggregate.zone_draw_sums`)
    and ``sums_both`` (estimate, draws) over the typed land observed in both years (as the sums through
    :func:`masked_matrices` of :func:`observation_shares`' mask), and at the active pixels the filled stocks
    ``stock0`` / ``stock1`` (the zone tables' estimates) and the maps' ``map0`` / ``map1`` (NaN where
    unobserved), t C/ha of pixel."""

    sink: np.ndarray
    sums: list[tuple]
    sums_both: list[tuple[np.ndarray, np.ndarray]]
    stock0: np.ndarray
    stock1: np.ndarray
    map0: np.ndarray
    map1: np.ndarray


#: Pixels of a block: within a chunk of the zone sums, the years' pixel functions are evaluated this many pixels at a
#: time, so that their temporaries (draws × block, float64) stay in the processor's cache; the results do not depend
#: on it (every value is per pixel, and a block's values are written into the chunk's arrays before they are summed).
BLOCK_PIXELS = 1_024


def sink_pass(fn0: PixelFn, fn1: PixelFn, unserved0: Callable[[np.ndarray], np.ndarray],
              unserved1: Callable[[np.ndarray], np.ndarray], years: float, active: np.ndarray,
              shape: tuple[int, int], matrices: Sequence[sp.csr_matrix], pixel_area_ha: float,
              interval_pct: float = 90.0, chunk_pixels: int = 8_192, block_pixels: int = BLOCK_PIXELS) -> SinkPass:
    """The sink map and the zone sums of the sink in one pass over the ``active`` pixels (flat, ascending),
    each year's draws evaluated once, in blocks of ``block_pixels`` within chunks of ``chunk_pixels``.

    ``fn0`` / ``fn1`` are the years' pixel functions as the zone tables sum them (with ``fill`` and
    ``sources``, :func:`greensink.carbon.pixel_function`), ``unserved0`` / ``unserved1`` the years'
    :func:`unserved_function`. The map's function (no fill) differs from the filled one only at the
    pixels where a type has no usable model: there it is NaN, elsewhere it gives the same numbers (the
    fill touches only those pixels, and the noise of a pixel depends on the pixel alone). So the map is
    the filled difference made NaN where either year is unserved, and the result equals, bit for bit,
    :func:`greensink.carbon.density_map` of ``difference_function(map0, map1)`` and
    :func:`greensink.aggregate.zone_draw_sums` of ``difference_function(fn0, fn1)`` over ``matrices`` and
    their :func:`masked_matrices` (same chunks, same order of summation), which evaluated every draw twice.

    A block's differences are written straight into the chunk's (pixels, draws) arrays, the layout the sparse
    product reads, with the pixels no year can value (NaN: as ``np.nan_to_num``) set to 0; the sums over the land
    observed in both years multiply the same arrays by the coverage with the other pixels' entries set to 0 (as the
    masked matrices did), so no masked copy of the draws is made. The per-pixel interval is taken over each block's
    rows. ``block_pixels`` changes no number (tests/test_change_one_pass.py). Memory: the three map bands, the
    per-pixel estimates and the sums, plus chunk × draws for the draws and each source."""
    from greensink.carbon import interval_quantiles as quantiles
    from greensink.carbon import iter_chunks

    if years <= 0:
        raise ValueError(f"years between stocks must be > 0. Got {years}.")
    active = np.asarray(active)
    qlo, qhi = quantiles(interval_pct)
    band = np.zeros((3, shape[0] * shape[1]), dtype=np.float32)
    stocks = [np.full(active.size, np.nan) for _ in range(2)]
    maps = [np.full(active.size, np.nan) for _ in range(2)]
    matrices = list(matrices)
    stacked = (sp.vstack(matrices).tocsc() if len(matrices) > 1 else matrices[0].tocsc()) if matrices else None
    n_rows = stacked.shape[0] if stacked is not None else 0
    est_sum, est_both = np.zeros(n_rows), np.zeros(n_rows)
    draw_sum = draw_both = None
    part_sums: dict[str, np.ndarray] | None = None
    block = max(1, int(block_pixels))
    start = 0
    buffers: dict[str, np.ndarray] = {}  # the chunks' (pixels, draws) arrays, allocated once and reused

    def buffer(name: str, n: int, n_draws: int) -> np.ndarray:
        if name not in buffers or buffers[name].shape[1] != n_draws:
            buffers[name] = np.empty((max(n, min(int(chunk_pixels), active.size)), n_draws))
        return buffers[name][:n]

    for idx in iter_chunks(active, chunk_pixels):
        sl = slice(start, start + idx.size)
        est = np.empty(idx.size)
        draws: np.ndarray | None = None  # (pixels, draws) of the chunk, NaN -> 0
        parts: dict[str, np.ndarray] | None = None
        for b0 in range(0, idx.size, block):
            bidx = idx[b0:b0 + block]
            bsl = slice(b0, b0 + bidx.size)
            e0, d0, *p0 = fn0(bidx)
            e1, d1, *p1 = fn1(bidx)
            if draws is None:
                draws = buffer("", idx.size, d0.shape[0])
                if p0 and p1 and stacked is not None:  # per-source contributions (sources=True): differenced alike
                    parts = {k: buffer(k, idx.size, d0.shape[0]) for k in p0[0]}
            e = (e1 - e0) / years
            est[bsl] = e
            d = draws[bsl]  # (n, B) view: (d1 - d0) / years, as difference_function, in the product's layout
            d[...] = _difference(d1, d0, years).T
            m0 = np.where(unserved0(bidx), np.nan, e0)
            m1 = np.where(unserved1(bidx), np.nan, e1)
            stocks[0][start + b0:start + b0 + bidx.size] = e0
            stocks[1][start + b0:start + b0 + bidx.size] = e1
            maps[0][start + b0:start + b0 + bidx.size] = m0
            maps[1][start + b0:start + b0 + bidx.size] = m1
            # the map (density_map of the maps' difference): NaN where either year's map is NaN
            est_map = np.where(np.isnan(m0) | np.isnan(m1), np.nan, e)
            band[0, bidx] = est_map
            ok = np.isfinite(est_map)
            lo, hi = np.full(bidx.size, np.nan), np.full(bidx.size, np.nan)
            if ok.any():
                lo[ok], hi[ok] = sorted_quantiles(d[ok], (qlo, qhi))
            band[1, bidx], band[2, bidx] = lo, hi
            if stacked is None:
                continue
            _zero_nan(d, e)
            if parts is not None:
                for k, v in parts.items():
                    v = v[bsl]
                    v[...] = _difference(p1[0][k], p0[0][k], years).T
                    _zero_nan(v, e)
        start += idx.size
        if stacked is None:
            continue
        # the zone sums (zone_draw_sums), and those over the typed land the maps observed in both years
        sub = stacked[:, idx]  # a copy (fancy column index): its coverage is zeroed below
        est_sum += sub @ np.nan_to_num(est)
        part = sub @ draws
        draw_sum = part if draw_sum is None else draw_sum + part
        if parts is not None:
            if part_sums is None:
                part_sums = {k: np.zeros((n_rows, v.shape[1])) for k, v in parts.items()}
            for k, v in parts.items():
                part_sums[k] += sub @ v
        both = np.isfinite(maps[0][sl]) & np.isfinite(maps[1][sl])
        est_both += sub @ np.where(both, np.nan_to_num(est), 0.0)
        # the coverage of the pixels not observed in both years set to 0: their draws count 0 × value, as before
        sub.data *= np.repeat(both, np.diff(sub.indptr))
        part = sub @ draws
        draw_both = part if draw_both is None else draw_both + part
    if start != active.size:  # iter_chunks covers every active pixel once
        raise RuntimeError(f"sink_pass evaluated {start} of {active.size} active pixels.")
    sums: list[tuple] = []
    sums_both: list[tuple[np.ndarray, np.ndarray]] = []
    if stacked is not None:
        if draw_sum is None:
            draw_sum, draw_both = np.zeros((n_rows, 1)), np.zeros((n_rows, 1))
        est_sum *= pixel_area_ha
        draw_sum *= pixel_area_ha
        est_both *= pixel_area_ha
        draw_both *= pixel_area_ha
        sizes = np.cumsum([0] + [m.shape[0] for m in matrices])
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            if part_sums is not None:
                sums.append((est_sum[a:b], draw_sum[a:b], {k: v[a:b] * pixel_area_ha for k, v in part_sums.items()}))
            else:
                sums.append((est_sum[a:b], draw_sum[a:b]))
            sums_both.append((est_both[a:b], draw_both[a:b]))
    return SinkPass(band.reshape(3, *shape), sums, sums_both, stocks[0], stocks[1], maps[0], maps[1])


def _zero_nan(values: np.ndarray, est: np.ndarray) -> None:
    """``values`` (pixels, draws) as ``np.nan_to_num`` makes them, in place: the rows of pixels whose ``est`` is NaN
    (no value in a year: NaN draws) set to 0, and any other non-finite value (none in practice) through nan_to_num."""
    values[np.isnan(est)] = 0.0
    if not np.isfinite(values).all():
        np.nan_to_num(values, copy=False)


def _difference(a1: np.ndarray, a0: np.ndarray, years: float) -> np.ndarray:
    """(a1 − a0) / years, the same numbers as :func:`difference_function` gives (the division in place; none for one
    year, where it changes no number)."""
    out = np.subtract(a1, a0)
    if years != 1:
        out /= years
    return out


def sorted_quantiles(rows: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Per row of ``rows`` (n, B), the quantile ``q`` of its B values for each of ``qs``: the same numbers, bit for
    bit, as ``np.quantile(rows, q, axis=1)`` (method "linear"), taken from the rows sorted by ``np.sort``, whose
    vectorised sort of 200 values is several times faster than the partition np.quantile makes. The indices and the
    interpolation are numpy's: virtual index (B − 1) q, its floor i and i + 1 (both the last value where the index
    reaches B − 1, both the first below 0), γ = index − i, and a + (b − a) γ, or b − (b − a)(1 − γ) for γ ≥ 0.5.
    Where the sort and numpy's partition may differ in the bits, rows holding NaN (which NaN is copied) and rows
    whose values at i or i + 1 are 0 (tied −0 and +0 fall in either order), np.quantile itself gives the row
    (tests/test_change_one_pass.py checks the whole against np.quantile)."""
    s = np.sort(rows, axis=1)  # NaN last, as after np.quantile's partition
    n = s.shape[1]
    redo = np.isnan(s[:, -1])
    out = []
    for q in qs:
        virtual = (n - 1) * float(q)
        prev = math.floor(virtual)
        nxt = prev + 1
        if virtual >= n - 1:
            prev = nxt = -1
        if virtual < 0:
            prev = nxt = 0
        gamma = virtual - prev
        a, b = s[:, prev], s[:, nxt]
        redo |= (a == 0) | (b == 0)
        with np.errstate(invalid="ignore"):  # inf − inf: NaN, as numpy gives
            diff = b - a
            out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    if redo.any():
        exact = np.quantile(rows[redo], list(qs), axis=1)
        for res, ex in zip(out, exact, strict=True):
            res[redo] = ex
    return out
