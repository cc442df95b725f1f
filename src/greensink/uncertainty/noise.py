"""The per-draw noise on the grid: random streams keyed by (seed, source, year) (:func:`stream_key`),
what a run's draws include (:class:`NoiseSpec`) and the per-chunk draws of the residual field, the
nugget, NDVI and edge errors (:class:`Noise`), whose row blocks are shared by the live Noise objects
of the same stream (:class:`_Rows`, ``SHARED_ROWS``)."""

from __future__ import annotations

import math
import sys
import weakref
import zlib
from dataclasses import dataclass

import numpy as np

from greensink.uncertainty.field import ResidualField

MEAN_CHORD_FACTOR = math.pi / 4  # mean chord of a square of side a through random lines: π a / 4 (Cauchy)


# ----------------------------------------------------------------------------- random numbers


def stream_key(seed: int, name: str, year: int | None = None) -> int:
    """A 63-bit key of (seed, source name, year): one independent stream per source and year."""
    text = f"{int(seed)}|{name}|{'' if year is None else int(year)}"
    return (zlib.crc32(text.encode()) << 31) ^ zlib.crc32(text[::-1].encode()) ^ (int(seed) & 0x7FFFFFFF)



# ----------------------------------------------------------------------------- per-draw noise


@dataclass
class NoiseSpec:
    """What the draws include beyond the curves, and how (one run, one year)."""

    seed: int
    year: int | None = None
    curve: bool = True
    table: bool = True
    residual: ResidualField | None = None  # None: no residual source
    rho: float = 1.0  # year-to-year correlation of the residual
    paired: bool = False  # True in the change rule: common and year streams kept apart
    ndvi: bool = False  # NDVI error from an "ndvi_se" layer
    position_sd_m: float = 0.0  # edges
    resolution_m: float = 10.0
    width: int = 1  # grid columns (global pixel index = row × width + col)
    height: int = 1


def unit_triangular(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-variance float32 numbers: (u1 + u2 − 1)·√6 of two uniforms (triangular; its 5 %
    and 95 % points are ∓1.675, against ∓1.645 of a normal), three times cheaper than normals."""
    k = gen.integers(0, 1 << 16, (2, *shape), dtype=np.uint16)
    out = np.add(k[0], k[1], dtype=np.float32)  # exact: integers below 2^24
    out += np.float32(1.0 - 65536.0)
    out *= np.float32(math.sqrt(6.0) / 65536.0)
    return out


# numpy's bounded 16-bit integers over the whole range take each 32-bit output of the generator low half first, and
# PCG64 gives its 64-bit outputs low 32 bits first: on a little-endian machine the numbers of unit_triangular are the
# generator's raw 64-bit outputs read as 16-bit integers (tests/test_uncertainty_raw_rows.py checks it).
RAW_UINT16 = sys.byteorder == "little"


def row_triangular(key: int, row: int, shape: tuple[int, ...]) -> np.ndarray:
    """The unit numbers of one grid row of a stream: ``unit_triangular(np.random.default_rng([key & 0xFFFFFFFF,
    key >> 32, row]), shape)``, the same numbers, read from the generator's raw outputs (no bounded-integer pass)."""
    seed = [key & 0xFFFFFFFF, key >> 32, row]
    if not RAW_UINT16:
        return unit_triangular(np.random.default_rng(seed), shape)
    n = math.prod(shape)
    k = np.random.PCG64(seed).random_raw((2 * n + 3) // 4).view(np.uint16)  # default_rng's bit generator, no Generator
    out = np.add(k[:n], k[n:2 * n], dtype=np.float32).reshape(shape)  # exact: integers below 2^24
    out += np.float32(1.0 - 65536.0)
    out *= np.float32(math.sqrt(6.0) / 65536.0)
    return out


class _Rows:
    """Consecutive grid rows ``first`` … ``first + k − 1`` of one random stream, kept as one block
    (B, k, width) float32, so a chunk's values are gathered from it without stacking rows. A field
    stream also keeps where its row recursion stands (``next``, the next row to compute; ``prev``, the
    last row computed)."""

    def __init__(self) -> None:
        self.first = 0  # the first row kept
        self.base = 0  # the grid row of the block's first row (≤ first: rows above first are forgotten)
        self.block: np.ndarray | None = None  # (B, rows, width), C-contiguous
        self.next = 0
        self.prev: np.ndarray | None = None

    @property
    def stop(self) -> int:
        return self.base + (0 if self.block is None else self.block.shape[1])

    def keep_from(self, r0: int) -> None:
        """Forget the rows above ``r0`` (the next :meth:`extend` copies only the rows kept)."""
        if self.block is not None and r0 > self.first:
            if r0 < self.stop:
                self.first = r0
            else:
                self.block = None

    def trim(self, r: int) -> None:
        """Keep the rows from ``r`` on in a block of their own (the memory of the rows above is freed now)."""
        if self.block is not None and self.base < r < self.stop:
            self.block = self.block[:, r - self.base:].copy()
            self.first = self.base = r

    def extend(self, first: int, n: int, n_draws: int, width: int) -> np.ndarray:
        """A new block of the kept rows and ``n`` rows ``first`` … after them (or of those alone where they do
        not follow the kept rows); returns its view (B, n, width) of the new rows, for the caller to fill."""
        if self.block is None or first != self.stop:
            self.first = self.base = first
            self.block = np.empty((n_draws, n, width), dtype=np.float32)
            return self.block
        keep = self.stop - self.first
        block = np.empty((n_draws, keep + n, width), dtype=np.float32)
        block[:, :keep] = self.block[:, self.first - self.base:]
        self.block, self.base = block, self.first
        return block[:, keep:]

    def gather(self, gidx: np.ndarray, width: int) -> np.ndarray:
        """(B, n) values at global pixel indices ``gidx`` (all within the kept rows)."""
        return self.block.reshape(self.block.shape[0], -1)[:, gidx - self.base * width]


# Rows of the residual field computed at a time: those the chunk needs, at least FIELD_AHEAD_ROWS, at most
# FIELD_BATCH_BYTES of float32 rows (or FIELD_AHEAD_ROWS) per batch. The row filter's Python loop runs over the
# columns once per batch, but with 200 draws its array work dominates: 8 rows ahead gave no gain on a 10980-wide
# grid (chunks of 8192 pixels, 0.93 vs 0.94 s CPU for 24 rows), so none are computed ahead (no memory for them).
FIELD_AHEAD_ROWS = 1
FIELD_BATCH_BYTES = 32 << 20

# The streams' kept rows, shared by the Noise objects alive with the same stream (key, draws, width and,
# for a field, φ): the change rule's two years draw the same common streams (residual field and pixel
# numbers) chunk by chunk, and compute them once. The numbers depend on the stream and the row alone.
SHARED_ROWS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _shared_rows(key: tuple) -> _Rows:
    rows = SHARED_ROWS.get(key)
    if rows is None:
        rows = _Rows()
        SHARED_ROWS[key] = rows
    return rows


class Noise:
    """Per-chunk draws of the residual, NDVI and edge errors of :class:`NoiseSpec` (module docstring).

    Random numbers are made per grid row from a generator seeded by (seed, stream, row), so a pixel's
    numbers do not depend on the strip or chunk it is evaluated in. The correlated residual field is a
    separable exponential field at pixel resolution: white noise filtered by a first-order
    autoregression along each row and then down the rows (φ = exp(−res/L), L = range_m·√(π/2), the
    scale whose correlation integral equals the fitted isotropic model's, so large zone sums get its
    variance), carried from row to row, so memory is a few rows × draws.

    A stream's rows are kept as one block from the first row the last chunk asked for (:class:`_Rows`),
    shared with the other live Noise objects of the same stream: the common streams of a pair of years
    are computed once (tests/test_uncertainty_rows.py compares the numbers, bit for bit, with a plain
    whole-grid reference of these definitions)."""

    def __init__(self, spec: NoiseSpec, n_draws: int) -> None:
        self.spec = spec
        self.n_draws = int(n_draws)
        r = spec.residual
        self.sd_nugget = math.sqrt(r.nugget) if r is not None else 0.0
        self.sd_field = math.sqrt(r.psill) if r is not None and r.range_m > 0 else 0.0
        if self.sd_field > 0:
            self.phi = math.exp(-spec.resolution_m / (r.range_m * math.sqrt(math.pi / 2)))
        self.rho = min(max(float(spec.rho), 0.0), 1.0) if spec.paired else 1.0
        self._streams: dict[tuple, _Rows] = {}  # strong references: the shared rows live as long as this object

    @property
    def active(self) -> bool:
        return self.sd_nugget > 0 or self.sd_field > 0 or self.spec.ndvi or self.spec.position_sd_m > 0

    def _stream(self, kind: str, name: str, year: int | None) -> tuple[int, _Rows]:
        key = stream_key(self.spec.seed, name, year)
        ident = (kind, key, self.n_draws, int(self.spec.width),
                 float(self.phi) if kind == "field" else None)
        rows = self._streams.get(ident)
        if rows is None:
            rows = self._streams[ident] = _shared_rows(ident)
        return key, rows

    def _white_rows(self, key: int, r0: int, out: np.ndarray) -> None:
        """Fill ``out`` (B, rows, width) with the white rows r0 … of the stream ``key`` (one generator per row)."""
        for k in range(out.shape[1]):
            out[:, k] = row_triangular(key, r0 + k, (self.n_draws, self.spec.width))

    def white(self, name: str, year: int | None, gidx: np.ndarray) -> np.ndarray:
        """(B, n) float32 unit-variance numbers of a stream at global pixel indices ``gidx``."""
        w = self.spec.width
        r0, r1 = int(gidx.min() // w), int(gidx.max() // w)
        key, st = self._stream("white", name, year)
        if st.block is None or r0 < st.first or r0 >= st.stop:
            st.block = None
            self._white_rows(key, r0, st.extend(r0, r1 + 1 - r0, self.n_draws, w))
        else:
            st.keep_from(r0)
            if r1 >= st.stop:
                start = st.stop
                self._white_rows(key, start, st.extend(start, r1 + 1 - start, self.n_draws, w))
        out = st.gather(gidx, w)
        if not (self.spec.paired and year is None):  # no other year asks for these rows: keep the last one only
            st.trim(r1)
        return out

    def _field_rows(self, year: int | None, r0: int, r1: int) -> _Rows:
        """The unit-variance correlated field's rows r0..r1 of a stream (kept from r0 on), computed in row
        order from the top of the grid (restarting there if an earlier row is asked again), in batches of
        :data:`FIELD_AHEAD_ROWS` to :data:`FIELD_BATCH_BYTES` of rows, ahead of r1 up to the grid's height
        (``spec.height``)."""
        key, st = self._stream("field", "field", year)
        if r0 < (st.first if st.block is not None else st.next):
            st.first, st.base, st.block, st.next, st.prev = 0, 0, None, 0, None
        st.keep_from(r0)
        w = self.spec.width
        limit = max(int(self.spec.height), r1 + 1)
        ahead = max(1, int(FIELD_AHEAD_ROWS))
        batch = max(ahead, FIELD_BATCH_BYTES // (4 * self.n_draws * w))
        phi, cc = np.float32(self.phi), np.float32(math.sqrt(1.0 - self.phi**2))
        while st.next <= r1:
            first = st.next
            n_new = min(max(r1 + 1 - first, ahead), batch, limit - first)
            # white noise of the new rows laid out (width, rows, B): the autoregression along each row runs over
            # the columns, x_j = φ x_(j−1) + √(1 − φ²) x_j (x_0 is already stationary: unit variance)
            x = np.empty((w, n_new, self.n_draws), dtype=np.float32)
            for k, r in enumerate(range(first, first + n_new)):
                x[:, k] = row_triangular(key, r, (self.n_draws, w)).T
            tmp = np.empty(x.shape[1:], dtype=np.float32)
            np.multiply(x[1:], cc, out=x[1:])  # the c x_j of every column at once (x_j is not changed before)
            for j in range(1, w):
                np.multiply(x[j - 1], phi, out=tmp)
                np.add(tmp, x[j], out=x[j])
            # down the rows, (width, B) at a time: y_r = φ y_(r−1) + √(1 − φ²) x_r, the grid's first row as it is
            y = st.extend(first, n_new, self.n_draws, w)  # the new rows' place in the kept block
            cur = np.empty((w, self.n_draws), dtype=np.float32)
            prev = st.prev
            scaled = 0 if prev is not None else 1  # the grid's first row enters unscaled
            np.multiply(x[:, scaled:], cc, out=x[:, scaled:])  # c x_r of every row at once
            for k in range(n_new):
                if prev is None:
                    cur[...] = x[:, k]
                else:
                    np.multiply(prev, phi, out=cur)
                    np.add(cur, x[:, k], out=cur)
                y[:, k] = cur.T
                prev, cur = cur, (prev if prev is not None else np.empty_like(cur))
            st.prev = prev
            st.next = first + n_new
            st.keep_from(r0)
        return st

    def field(self, gidx: np.ndarray) -> np.ndarray | None:
        """(B, n) correlated part of the relative residual: sd_field × (√ρ F_common + √(1−ρ) F_year)."""
        if not self.sd_field > 0:
            return None
        w = self.spec.width
        r0, r1 = int(gidx.min() // w), int(gidx.max() // w)
        out = None
        streams = [(None, math.sqrt(self.rho))]
        if self.rho < 1:
            streams.append((self.spec.year, math.sqrt(1.0 - self.rho)))
        for year, weight in streams:
            if weight <= 0:
                continue
            # float64 product of the float32 field (exactly widened) and the weight, without a widened copy
            part = np.multiply(self._field_rows(year, r0, r1).gather(gidx, w), self.sd_field * weight, dtype=np.float64)
            if out is None:
                out = part
            else:
                out += part
        return out

    def edge_sd_frac(self) -> float:
        """Standard deviation of the typed fraction of a pixel cut by an edge: position_sd × (π res/4) / res²."""
        res = self.spec.resolution_m
        return float(self.spec.position_sd_m) * MEAN_CHORD_FACTOR * res / (res * res)

    def pixel_terms(self, gidx: np.ndarray, nugget_amp: np.ndarray, ndvi_amp: np.ndarray,
                    edge_amp: np.ndarray, parts: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The per-pixel independent errors, given their standard deviations per pixel (t C/ha of
        pixel): the nugget (sd_nugget × the plot types' density), the NDVI error (slope × se) and the
        edge shift (:func:`greensink.carbon` edge term × sd). Returns (total (B, n), {source: (B, n)}).

        Single year: one stream z, total = √(nugget² + ndvi² + edges²)·z (the same distribution as
        three independent terms); the parts are amplitude × z (their variances are right, their sum
        is not the total). Paired years: a common stream (the persistent share ρ of the nugget and the
        edges: the same polygons) and a year stream (the rest of the nugget and the NDVI error)."""
        n2 = (self.sd_nugget * nugget_amp) ** 2
        if not self.spec.paired:
            z = self.white("pixel", None, gidx)
            amp = np.sqrt(n2 + ndvi_amp**2 + edge_amp**2)
            if not parts:
                return amp * z, {}
            return amp * z, {"residual": np.sqrt(n2) * z, "ndvi": ndvi_amp * z, "edges": edge_amp * z}
        zc = self.white("pixel", None, gidx)
        zy = self.white("pixel", self.spec.year, gidx)
        total = np.sqrt(self.rho * n2 + edge_amp**2) * zc  # the common part, then the year's added in place
        total += np.sqrt((1.0 - self.rho) * n2 + ndvi_amp**2) * zy
        if not parts:
            return total, {}
        mix = math.sqrt(self.rho) * zc  # float32, as the unit numbers
        mix += math.sqrt(1.0 - self.rho) * zy
        return total, {"residual": np.sqrt(n2) * mix, "ndvi": ndvi_amp * zy, "edges": edge_amp * zc}

