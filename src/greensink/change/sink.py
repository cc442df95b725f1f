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
from greensink.uncertainty.zone_noise import TRIANGULAR_K4


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


# ----------------------------------------------------------------------------- change.draws: analytic

#: The per-pixel noise sources of the analytic pass, in the order of their zone normals' seed key.
NOISE_SOURCES = ("residual", "ndvi", "edges")


@dataclasses.dataclass
class YearTerms:
    """A year's pixel function for the analytic pass (:func:`analytic_year_function`): ``fn(idx)`` gives (estimate
    (n,), curve and table draws (B, n) with every noise source off, {"curve", "table"}: (B, n) or None (a source no
    type of the year draws), {"field", "nugget", "ndvi", "edges"}: (n,) the noise amplitudes in t C/ha of pixel:
    sd_field × the plot types' density, sd_nugget × the same, the NDVI slope × SE, the edge term), ``phi`` the
    residual field's lag-one correlation (0 without a field) and ``rho`` the residual's year-to-year correlation as
    the exact path draws it. With ``table`` (:class:`greensink.change.draw_table.YearDrawTable`, the default of
    :func:`analytic_year_function`) the curve and table draws are not evaluated per pixel: ``fn`` gives (estimate,
    None, None, amplitudes) and the draws come from the table."""

    fn: Callable
    phi: float
    rho: float
    table: object = None


def analytic_year_function(models: dict, types: Sequence[str], fractions: np.ndarray, layers, spec, n_draws: int, *,
                           fill=None, row0: int = 0, col0: int = 0, grid_width: int | None = None,
                           tabulate: bool = True) -> YearTerms:
    """The year's :class:`YearTerms` from its noise ``spec`` (:class:`greensink.uncertainty.NoiseSpec`, paired),
    through :func:`greensink.carbon.pixel_function`'s closed form (no noise drawn): with the residual source alone on
    it gives the curve and table draws (the curve and table switches kept) and the field's and the nugget's
    amplitudes (with a field, the edges on too: their σ² = nugget² + edge², the nugget sd_nugget/sd_field × the field's
    amplitude); the NDVI amplitude (and the edges' without a field) come from its ``moments_only`` form with that
    source alone on. The same choice of model, fill and amplitudes as the exact path's draws use.

    The curve and table parts (``var_share_curve_pct``, ``var_share_table_pct``): where the year's types draw only one
    of them, that part is the draws and the other None; where both are drawn, a second evaluation with the curve
    draws off gives the table part (the table draws plus the curve types' estimates) and the curve part is the rest
    (the curve draws less their estimates). Their variances over draws are the exact path's; only the variances are
    read (:func:`greensink.uncertainty.variance_shares`).

    ``tabulate`` (the default): the curve and table draws come from a :class:`~greensink.change.draw_table.
    YearDrawTable` (nodes × draws, docs/method.md §8 "Tabulated curve draws") and the pixel function evaluates the
    estimate and the amplitudes only (its ``moments_only`` form); False evaluates every draw at every pixel."""
    from greensink.carbon import pixel_function
    from greensink.model import type_record
    from greensink.uncertainty import Noise

    silent = dataclasses.replace(spec, residual=None, ndvi=False, position_sd_m=0.0)
    kw = {"fill": fill, "row0": row0, "col0": col0, "grid_width": grid_width}
    residual = Noise(dataclasses.replace(silent, residual=spec.residual), n_draws)
    rho = residual.rho
    phi = float(residual.phi) if residual.sd_field > 0 else 0.0
    # with a field, the edges ride on the draws' evaluation: σ² = nugget² + edge², the nugget sd_nugget/sd_field × α
    edges_in_base = residual.sd_field > 0 and spec.position_sd_m > 0
    nugget_per_alpha = residual.sd_nugget / residual.sd_field if residual.sd_field > 0 else 0.0
    base_noise = (Noise(dataclasses.replace(silent, residual=spec.residual, position_sd_m=spec.position_sd_m), n_draws)
                  if edges_in_base else residual)
    base = pixel_function(models, types, fractions, layers, noise=base_noise, closed_form=True, moments_only=tabulate,
                          **kw)
    sources = {type_record(models, t).source == "plots" for t in types}
    curve_on = bool(spec.curve) and True in sources
    table_on = bool(spec.table) and False in sources
    no_curve = (pixel_function(models, types, fractions, layers, closed_form=True, **kw,
                               noise=Noise(dataclasses.replace(silent, curve=False), n_draws))
                if curve_on and table_on and not tabulate else None)
    table = None
    if tabulate:
        from greensink.change.draw_table import YearDrawTable

        table = YearDrawTable(models, types, fractions, layers, n_draws, fill=fill, curve=bool(spec.curve),
                              table=bool(spec.table))
    moments = {}
    for name, sub in (("ndvi", dataclasses.replace(silent, ndvi=spec.ndvi)),
                      ("edges", dataclasses.replace(silent, position_sd_m=0.0 if edges_in_base else spec.position_sd_m))):
        noise = Noise(sub, n_draws)
        if noise.active:
            moments[name] = pixel_function(models, types, fractions, layers, noise=noise, closed_form=True,
                                           moments_only=True, **kw)

    def evaluate(idx: np.ndarray):
        est, draws, field, sigma = base(idx)
        zero = np.zeros(idx.size)
        terms = {"field": field, "nugget": sigma, "ndvi": zero, "edges": zero}
        if edges_in_base:
            terms["nugget"] = nugget_per_alpha * field
            terms["edges"] = np.sqrt(np.maximum(sigma * sigma - terms["nugget"] ** 2, 0.0))
        for name, fn in moments.items():
            terms[name] = fn(idx)[3]
        if tabulate:
            return est, None, None, terms
        if no_curve is not None:
            table_part = no_curve(idx)[1]
            parts = {"curve": draws - table_part, "table": table_part}
        elif table_on:
            parts = {"curve": None, "table": draws}
        else:
            parts = {"curve": draws, "table": None}
        return est, draws, parts, terms

    return YearTerms(evaluate, phi, rho, table)


def pixel_noise(t0: dict, t1: dict, years: float, rho: float) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The sink's per-pixel noise from the years' amplitudes (:class:`YearTerms`), t C/ha/yr: the weights (3, n) of
    the residual field's streams (common √ρ(α1 − α0)/Y, the years' √(1 − ρ)α1/Y and √(1 − ρ)α0/Y), the variances (n,)
    of the terms independent between pixels per source (residual's nugget ρ(n1 − n0)² + (1 − ρ)(n1² + n0²), NDVI
    ndvi1² + ndvi0², edges (e1 − e0)², all over Y²: the exact path's parts, each source drawn on its own) and the
    noise's fourth cumulant (n,) (its triangular numbers; the field taken as normal)."""
    y2 = float(years) ** 2
    a0, a1 = t0["field"], t1["field"]
    sr, sq = math.sqrt(rho), math.sqrt(max(0.0, 1.0 - rho))
    weights = np.stack([sr * (a1 - a0), sq * a1, sq * a0]) / years
    n0, n1 = t0["nugget"], t1["nugget"]
    amps = [sr * (n1 - n0), sq * n1, sq * n0, t1["ndvi"], t0["ndvi"], t1["edges"] - t0["edges"]]
    var = {"residual": (amps[0] ** 2 + amps[1] ** 2 + amps[2] ** 2) / y2,
           "ndvi": (amps[3] ** 2 + amps[4] ** 2) / y2,
           "edges": amps[5] ** 2 / y2}
    k4 = TRIANGULAR_K4 * sum(a**4 for a in amps) / (y2 * y2)
    return weights, var, k4


def _part_difference(p1: np.ndarray | None, p0: np.ndarray | None, years: float) -> np.ndarray | None:
    """(p1 − p0)/Y of a curve or table part, None where neither year draws it."""
    if p1 is None and p0 is None:
        return None
    if p1 is None or p0 is None:
        return (p1 if p1 is not None else -p0) / years
    return _difference(p1, p0, years)


@dataclasses.dataclass
class _PixelTerms:
    """The per-pixel terms both analytic passes take from the years' estimates and amplitudes (:func:`_pixel_terms`)."""

    e: np.ndarray  # (C1 − C0)/Y of the estimates, NaN where no year can value the pixel
    m0: np.ndarray  # the years' estimates, NaN where the year does not observe the pixel
    m1: np.ndarray
    est_map: np.ndarray  # sink.tif's estimate: NaN unless both years observe the pixel
    s2: np.ndarray  # the pixel's noise variance (the field's three streams and the independent terms)
    k4: np.ndarray  # its fourth cumulant


def _pixel_terms(e0: np.ndarray, e1: np.ndarray, t0: dict, t1: dict, idx: np.ndarray, sl: slice,
                 unserved0: Callable[[np.ndarray], np.ndarray], unserved1: Callable[[np.ndarray], np.ndarray],
                 years: float, rho: float, stocks: list, maps: list, band: np.ndarray, weights: np.ndarray,
                 variances: np.ndarray) -> _PixelTerms:
    """Record pixels ``idx`` (positions ``sl`` of the active pixels) of an analytic pass: the years' stocks and
    observed maps, sink.tif's estimate band, the residual field's weights and the sources' variances (0 where no
    year can value the pixel: it counts 0 in the sums, its noise too, as :func:`_zero_nan`); returns the terms the
    pixel band needs."""
    e = (e1 - e0) / years
    stocks[0][sl], stocks[1][sl] = e0, e1
    m0 = np.where(unserved0(idx), np.nan, e0)
    m1 = np.where(unserved1(idx), np.nan, e1)
    maps[0][sl], maps[1][sl] = m0, m1
    w, var, k4 = pixel_noise(t0, t1, years, rho)
    est_map = np.where(np.isnan(m0) | np.isnan(m1), np.nan, e)
    band[0, idx] = est_map
    s2 = w[0] ** 2 + w[1] ** 2 + w[2] ** 2 + var["residual"] + var["ndvi"] + var["edges"]
    valued = ~np.isnan(e)
    weights[:, sl] = np.where(valued, w, 0.0)
    for i, s in enumerate(NOISE_SOURCES):
        variances[i, sl] = np.where(valued, var[s], 0.0)
    return _PixelTerms(e, m0, m1, est_map, s2, k4)


def analytic_sink_pass(fn0: YearTerms, fn1: YearTerms, unserved0: Callable[[np.ndarray], np.ndarray],
                       unserved1: Callable[[np.ndarray], np.ndarray], years: float, active: np.ndarray,
                       shape: tuple[int, int], matrices: Sequence[sp.csr_matrix], pixel_area_ha: float,
                       interval_pct: float = 90.0, *, seed: int = 0, key: Sequence[int] = (),
                       chunk_pixels: int = 8_192, block_pixels: int = BLOCK_PIXELS) -> SinkPass:
    """:func:`sink_pass` with the per-pixel noise summed over zones analytically (``change.draws: analytic``, docs/
    method.md §8): the curve and table draws d_pb = (C1_pb − C0_pb)/Y (every noise source off) summed over zones by
    the coverage as the exact path does, and per zone, draw and noise source one normal number ξ (seeded by ``seed``,
    ``key`` (the pair's years), the level's and the source's positions: :func:`zone_normals`) times the standard
    deviation of the source's zone sum (:func:`zone_noise_variances`: the residual field's quadratic form plus the
    independent terms' Σ c² var). Each source is drawn on its own, so the parts (``sums`` third item: curve, table,
    residual, ndvi, edges) add up to the draws. The pixel band is :func:`mixture_band` of the pixel's d_pb and its
    noise variance. The sums over the land observed in both years take the same ξ with that land's coverage. Not
    for tiles (the field's covariance crosses them). The floor at 0 of a year's draw is not applied (a sum over
    pixels cannot carry it: docs/method.md §8). The years' functions are evaluated ``block_pixels`` at a time within
    chunks of ``chunk_pixels`` (cache-sized temporaries, as :func:`sink_pass`).

    Years whose terms carry a draw table (:func:`analytic_year_function`'s default) go through
    :func:`tabulated_sink_pass` (the draws interpolated from the tables, not evaluated per pixel); this body is the
    per-pixel evaluation (``tabulate=False``), the reference the tables are tested against."""
    from greensink.carbon import interval_quantiles as quantiles
    from greensink.carbon import iter_chunks
    from greensink.uncertainty.zone_noise import mixture_band

    if (fn0.table is None) != (fn1.table is None):
        raise ValueError("analytic_sink_pass: both years' terms must be tabulated, or neither.")
    if fn0.table is not None:
        return tabulated_sink_pass(fn0, fn1, unserved0, unserved1, years, active, shape, matrices, pixel_area_ha,
                                   interval_pct, seed=seed, key=key, chunk_pixels=chunk_pixels,
                                   block_pixels=block_pixels)
    if years <= 0:
        raise ValueError(f"years between stocks must be > 0. Got {years}.")
    active = np.asarray(active)
    rho = fn1.rho
    qlo, qhi = quantiles(interval_pct)
    npix = shape[0] * shape[1]
    band = np.zeros((3, npix), dtype=np.float32)
    stocks = [np.full(active.size, np.nan) for _ in range(2)]
    maps = [np.full(active.size, np.nan) for _ in range(2)]
    weights = np.zeros((3, active.size))
    variances = np.zeros((len(NOISE_SOURCES), active.size))
    matrices = list(matrices)
    stacked = (sp.vstack(matrices).tocsc() if len(matrices) > 1 else matrices[0].tocsc()) if matrices else None
    n_rows = stacked.shape[0] if stacked is not None else 0
    est_sum, est_both = np.zeros(n_rows), np.zeros(n_rows)
    sums_d = sums_both_d = None
    part_sums: dict[str, np.ndarray] = {}
    block = max(1, int(block_pixels))
    buffers: dict[str, np.ndarray] = {}
    alias: set[str] = set()  # parts that are the draws themselves in this chunk (summed once, as the draws)

    def buffer(name: str, n: int, n_draws: int) -> np.ndarray:
        if name not in buffers or buffers[name].shape[1] != n_draws:
            buffers[name] = np.empty((max(n, min(int(chunk_pixels), active.size)), n_draws))
        return buffers[name][:n]

    start = 0
    for idx in iter_chunks(active, chunk_pixels):
        sl = slice(start, start + idx.size)
        est = np.empty(idx.size)
        draws: np.ndarray | None = None
        parts: dict[str, np.ndarray] = {}
        for b0 in range(0, idx.size, block):
            bidx = idx[b0:b0 + block]
            bsl = slice(b0, b0 + bidx.size)
            psl = slice(start + b0, start + b0 + bidx.size)
            e0, d0, p0, t0 = fn0.fn(bidx)
            e1, d1, p1, t1 = fn1.fn(bidx)
            if draws is None:
                draws = buffer("", idx.size, d0.shape[0])
            px = _pixel_terms(e0, e1, t0, t1, bidx, psl, unserved0, unserved1, years, rho, stocks, maps, band,
                              weights, variances)
            e = px.e
            est[bsl] = e
            d = draws[bsl]
            d[...] = _difference(d1, d0, years).T
            ok = np.isfinite(px.est_map)
            lo, hi = np.full(bidx.size, np.nan), np.full(bidx.size, np.nan)
            if ok.any():
                lo[ok], hi[ok] = mixture_band(d[ok], px.s2[ok], (qlo, qhi), px.k4[ok])
            band[1, bidx], band[2, bidx] = lo, hi
            if stacked is None:
                continue
            _zero_nan(d, e)
            for k in ("curve", "table"):
                if p1[k] is d1 and p0[k] is d0:  # the part is the draws (one source in both years): their sums
                    alias.add(k)
                    continue
                diff = _part_difference(p1[k], p0[k], years)
                if diff is None:
                    continue
                v = parts[k] = parts.get(k, buffer(k, idx.size, d0.shape[0]))
                v = v[bsl]
                v[...] = diff.T
                _zero_nan(v, e)
        start += idx.size
        if stacked is None:
            continue
        sub = stacked[:, idx]
        est_sum += sub @ np.nan_to_num(est)
        part = sub @ draws
        sums_d = part if sums_d is None else sums_d + part
        for k, v in parts.items():
            part_sums[k] = part_sums.get(k, 0.0) + sub @ v
        for k in alias - set(parts):
            part_sums[k] = part_sums.get(k, 0.0) + part
        alias.clear()
        both = np.isfinite(maps[0][sl]) & np.isfinite(maps[1][sl])
        est_both += sub @ np.where(both, np.nan_to_num(est), 0.0)
        sub.data *= np.repeat(both, np.diff(sub.indptr))
        part = sub @ draws
        sums_both_d = part if sums_both_d is None else sums_both_d + part
    if start != active.size:
        raise RuntimeError(f"analytic_sink_pass evaluated {start} of {active.size} active pixels.")
    sums, sums_both = [], []
    if stacked is not None:
        if sums_d is None:
            sums_d, sums_both_d = np.zeros((n_rows, 1)), np.zeros((n_rows, 1))
        sums, sums_both = _with_zone_noise(matrices, shape, active, maps, weights, variances, est_sum, est_both, sums_d,
                                           sums_both_d, part_sums, fn1.phi, pixel_area_ha, seed, key)
    return SinkPass(band.reshape(3, *shape), sums, sums_both, stocks[0], stocks[1], maps[0], maps[1])


def _with_zone_noise(matrices: Sequence[sp.csr_matrix], shape: tuple[int, int], active: np.ndarray, maps: list,
                     weights: np.ndarray, variances: np.ndarray, est_sum: np.ndarray, est_both: np.ndarray,
                     sums_d: np.ndarray, sums_both_d: np.ndarray, part_sums: dict, phi: float, pixel_area_ha: float,
                     seed: int, key: Sequence[int]) -> tuple[list[tuple], list[tuple[np.ndarray, np.ndarray]]]:
    """The analytic pass's zone sums per level (``sums``, ``sums_both`` of :class:`SinkPass`): the curve and table
    draws' zone sums (``sums_d``, ``sums_both_d``, ``part_sums`` {curve, table}: the stacked levels' rows, per pixel
    area) plus per source the seeded zone normals times the standard deviation of the zone's noise sum, in t."""
    from greensink.uncertainty.zone_noise import zone_normals

    n_rows = sums_d.shape[0]
    n_draws = sums_d.shape[1]
    for k in ("curve", "table"):
        if k not in part_sums:
            part_sums[k] = np.zeros((n_rows, n_draws))
    # per-pixel images on the grid (active pixels only), then those over the land observed in both years: the
    # coverage restricted to that land times a weight is the coverage times the weight restricted to it
    npix = shape[0] * shape[1]
    both_act = np.isfinite(maps[0]) & np.isfinite(maps[1])
    g = np.zeros((6, npix))
    g[:3, active] = weights
    g[3:, active] = weights * both_act
    v = np.zeros((2 * len(NOISE_SOURCES), npix))
    v[:3, active] = variances
    v[3:, active] = variances * both_act
    area = float(pixel_area_ha)
    sums: list[tuple] = []
    sums_both: list[tuple[np.ndarray, np.ndarray]] = []
    sizes = np.cumsum([0] + [m.shape[0] for m in matrices])
    # every valued pixel observed in both years (a clear pair): the two sets of images are one, computed once
    same = bool(both_act.all()) or (np.array_equal(g[:3], g[3:]) and np.array_equal(v[:3], v[3:]))
    for lev, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if same:
            var_all = var_both = zone_noise_variances(matrices[lev], g[:3], v[:3], shape[1], phi)[0]
        else:
            var_all, var_both = zone_noise_variances(matrices[lev], g, v, shape[1], phi)
        noise_all, noise_both = {}, {}
        for i, s in enumerate(NOISE_SOURCES):
            xi = zone_normals(seed, (*key, lev, i), b - a, n_draws)
            noise_all[s] = np.sqrt(var_all[s])[:, None] * xi * area
            noise_both[s] = np.sqrt(var_both[s])[:, None] * xi * area
        draws_all = sums_d[a:b] * area + sum(noise_all.values())
        draws_both = sums_both_d[a:b] * area + sum(noise_both.values())
        parts = {k: part_sums[k][a:b] * area for k in ("curve", "table")} | noise_all
        sums.append((est_sum[a:b] * area, draws_all, parts))
        sums_both.append((est_both[a:b] * area, draws_both))
    return sums, sums_both


def tabulated_sink_pass(fn0: YearTerms, fn1: YearTerms, unserved0: Callable[[np.ndarray], np.ndarray],
                        unserved1: Callable[[np.ndarray], np.ndarray], years: float, active: np.ndarray,
                        shape: tuple[int, int], matrices: Sequence[sp.csr_matrix], pixel_area_ha: float,
                        interval_pct: float = 90.0, *, seed: int = 0, key: Sequence[int] = (),
                        chunk_pixels: int = 8_192, block_pixels: int = BLOCK_PIXELS) -> SinkPass:
    """:func:`analytic_sink_pass` with the years' curve and table draws from their tables (``fn0.table``,
    ``fn1.table``: :class:`greensink.change.draw_table.YearDrawTable`, docs/method.md §8 "Tabulated curve draws"):
    per pixel only the estimate, the noise amplitudes and the sparse weights over the tables' rows are computed; the
    zone sums of the draws are (coverage @ weights) @ table per year, differenced (the curve and table parts from the
    rows of each source), and a pixel's draws for its band are its weights @ table (the pixel band as
    :func:`analytic_sink_pass`'s). Estimates, stocks, maps, the estimate band and the noise are the same numbers.
    Memory: as :func:`analytic_sink_pass` without its chunk × draws arrays, plus the zones' weights over the tables'
    nodes (zones × nodes used, sparse) and a block × draws array for the band."""
    from greensink.carbon import interval_quantiles as quantiles
    from greensink.carbon import iter_chunks
    from greensink.change.draw_table import CURVE, TABLE
    from greensink.uncertainty.zone_noise import mixture_band

    if years <= 0:
        raise ValueError(f"years between stocks must be > 0. Got {years}.")
    active = np.asarray(active)
    rho = fn1.rho
    tab0, tab1 = fn0.table, fn1.table
    qlo, qhi = quantiles(interval_pct)
    band = np.zeros((3, shape[0] * shape[1]), dtype=np.float32)
    stocks = [np.full(active.size, np.nan) for _ in range(2)]
    maps = [np.full(active.size, np.nan) for _ in range(2)]
    weights = np.zeros((3, active.size))
    variances = np.zeros((len(NOISE_SOURCES), active.size))
    # the sink's draws d = (C1 − C0)/Y of a pixel are its weights over both tables' rows: [w1, −w0]/Y @ [T1; T0],
    # the rows of the curve first (a contiguous slice for the curve and table parts)
    src_cat = np.concatenate([tab1.source, tab0.source])
    order = np.argsort(src_cat, kind="stable")
    n_curve = int(np.count_nonzero(src_cat == CURVE))
    table_cat = np.ascontiguousarray(np.vstack([tab1.table, tab0.table])[order])
    where = np.empty_like(order)
    where[order] = np.arange(order.size)  # a row of [T1; T0] is row where[row] of table_cat
    # per chunk its zone sums' weights over table_cat (coverage @ pixel weights: zones × table rows, sparse), over
    # all land and over the land observed in both years, summed every COMPACT_CHUNKS chunks (memory: the zones' nodes,
    # not the pixels); the terms no table serves summed per chunk as draws (zones × B) per source
    mats = list(matrices)
    stacked = (sp.vstack(mats).tocsc() if len(mats) > 1 else sp.csc_matrix(mats[0])) if mats else None
    n_rows = stacked.shape[0] if stacked is not None else 0
    acc: list[list[sp.csr_matrix]] = [[], []]
    fb_sums = [{CURVE: np.zeros((n_rows, table_cat.shape[1])), TABLE: np.zeros((n_rows, table_cat.shape[1]))}
               for _ in range(2)]
    est_sum, est_both = np.zeros(n_rows), np.zeros(n_rows)
    block = max(1, int(block_pixels))
    start = 0
    for idx in iter_chunks(active, chunk_pixels):
        # per chunk: the estimates, amplitudes and table weights (vectors over the chunk's pixels); per block of it
        # the pixel band's (pixels, draws) arrays, sized for the processor's cache
        csl = slice(start, start + idx.size)
        e0, _, _, t0 = fn0.fn(idx)
        e1, _, _, t1 = fn1.fn(idx)
        pw0, pw1 = tab0.weights(idx), tab1.weights(idx)
        both_w = sp.hstack([pw1.rows, pw0.rows * -1.0], format="csr")
        both_w.indices = where[both_w.indices].astype(both_w.indices.dtype)  # the columns of table_cat
        both_w.has_sorted_indices = False
        if years != 1:
            both_w.data /= years
        px = _pixel_terms(e0, e1, t0, t1, idx, csl, unserved0, unserved1, years, rho, stocks, maps, band, weights,
                          variances)
        e, m0, m1, est_map, s2, k4 = px.e, px.m0, px.m1, px.est_map, px.s2, px.k4
        lo, hi = np.full(idx.size, np.nan), np.full(idx.size, np.nan)
        for b0 in range(0, idx.size, block):
            bsl = slice(b0, min(b0 + block, idx.size))
            ok = np.isfinite(est_map[bsl])
            if not ok.any():
                continue
            sel = np.flatnonzero(ok) + b0
            d = np.asarray(both_w[sel] @ table_cat)
            for fb, sign in ((pw1.fallback, 1.0), (pw0.fallback, -1.0)):
                for v in fb.values():
                    if v is not None:
                        d += (sign / years) * v[:, sel].T
            lo[sel], hi[sel] = mixture_band(d, s2[sel], (qlo, qhi), k4[sel])
        band[1, idx], band[2, idx] = lo, hi
        valued = ~np.isnan(e)  # a pixel no year can value counts 0 in the sums (its noise is 0 in _pixel_terms)
        start += idx.size
        if stacked is None:
            continue
        sub = stacked[:, idx]  # a copy (fancy column index)
        both = np.isfinite(m0) & np.isfinite(m1)
        e_known = np.nan_to_num(e)  # a pixel no year can value counts 0 (as the exact path's nan_to_num)
        est_sum += sub @ e_known
        est_both += sub @ np.where(both, e_known, 0.0)
        kept = sp.diags(valued.astype(np.float64)) @ both_w
        for n_set, cov in enumerate((sub, sub @ sp.diags(both.astype(np.float64)))):
            acc[n_set].append((cov @ kept).tocsr())
            if len(acc[n_set]) >= COMPACT_CHUNKS:
                acc[n_set] = [_sparse_sum(acc[n_set])]
            for src in (CURVE, TABLE):
                f0, f1 = pw0.fallback[src], pw1.fallback[src]
                if f0 is None and f1 is None:
                    continue
                diff = (f1 if f1 is not None else 0.0) - (f0 if f0 is not None else 0.0)
                cols = np.flatnonzero(valued & np.any(diff != 0, axis=0))
                if cols.size:
                    fb_sums[n_set][src] += np.asarray(cov[:, cols] @ diff[:, cols].T) / years
    if start != active.size:
        raise RuntimeError(f"tabulated_sink_pass evaluated {start} of {active.size} active pixels.")
    sums, sums_both = [], []
    if stacked is not None:
        out = []
        for n_set in range(2):
            wz = (_sparse_sum(acc[n_set]) if acc[n_set] else sp.csr_matrix((n_rows, table_cat.shape[0]))).tocsc()
            parts = {}
            for name, src, rs in (("curve", CURVE, slice(0, n_curve)), ("table", TABLE, slice(n_curve, None))):
                parts[name] = np.asarray(wz[:, rs] @ table_cat[rs]) + fb_sums[n_set][src]
            out.append((parts["curve"] + parts["table"], parts))
        (sums_d, part_sums), (sums_both_d, _) = out
        sums, sums_both = _with_zone_noise(mats, shape, active, maps, weights, variances, est_sum, est_both, sums_d,
                                           sums_both_d, part_sums, fn1.phi, pixel_area_ha, seed, key)
    return SinkPass(band.reshape(3, *shape), sums, sums_both, stocks[0], stocks[1], maps[0], maps[1])


#: The tabulated pass sums its chunks' zone weights (zones × table rows) every this many chunks.
COMPACT_CHUNKS = 16


def _sparse_sum(mats: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
    """The sum of sparse matrices of one shape (their entries concatenated, duplicates summed)."""
    coo = [m.tocoo() for m in mats]
    return sp.csr_matrix((np.concatenate([m.data for m in coo]),
                          (np.concatenate([m.row for m in coo]), np.concatenate([m.col for m in coo]))),
                         shape=mats[0].shape)


def zone_noise_variances(matrix: sp.csr_matrix, weights: np.ndarray, variances: np.ndarray, width: int,
                         phi: float) -> list[dict[str, np.ndarray]]:
    """Per zone (row of ``matrix``) and noise source (:data:`NOISE_SOURCES`) the variance of the zone's sum of the
    per-pixel noise, in (t C/ha of pixel)² × pixels² (times the pixel area² for t²): the residual field's three
    streams' quadratic forms (``weights``, 3 images of the grid's pixels) plus the nugget, and the NDVI and edge
    terms' Σ c² var (``variances``, 3 images). ``weights`` and ``variances`` may hold several such sets one after
    the other (6 images each: the land observed in both years); one dict per set."""
    from greensink.uncertainty.zone_noise import field_quadratic_forms, independent_variances

    indep = independent_variances(matrix, variances)
    field = field_quadratic_forms(matrix, weights, width, phi) if np.any(weights) else np.zeros_like(indep)
    out = []
    for j in range(0, indep.shape[1], len(NOISE_SOURCES)):
        d = {s: indep[:, j + i] for i, s in enumerate(NOISE_SOURCES)}
        d["residual"] = d["residual"] + field[:, j:j + 3].sum(axis=1)
        out.append(d)
    return out
