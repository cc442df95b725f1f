"""The per-draw noise on the grid: random streams keyed by (seed, source, year) (:func:`stream_key`),
what a run's draws include (:class:`NoiseSpec`) and the per-chunk draws of the residual field, the
nugget, NDVI and edge errors (:class:`Noise`), whose row blocks are shared by the live Noise objects
of the same stream (:class:`_Rows`, ``SHARED_ROWS``)."""

from __future__ import annotations

import logging
import math
import sys
import weakref
import zlib
from dataclasses import dataclass

import numpy as np

from greensink.uncertainty.field import ResidualField

log = logging.getLogger(__name__)

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
    return _triangular(k[:n], k[n:2 * n], shape)


def _triangular(k0: np.ndarray, k1: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.add(k0, k1, dtype=np.float32).reshape(shape)  # exact: integers below 2^24
    out += np.float32(1.0 - 65536.0)
    out *= np.float32(math.sqrt(6.0) / 65536.0)
    return out


# A window's columns are read segment by segment (one PCG64 advance and read per draw and half) where the row's other
# columns are at least this many 16-bit words: a generator call costs about as much as 2,500 words read (1.3 ms for
# 400 segments of 2048 columns against 4.2 ms for a whole row of 10980 × 200, 2 cores, numpy 2.4).
WINDOW_MIN_GAP_WORDS = 2048


def _ar1_in_place(x: np.ndarray, phi: np.float32, cc: np.float32) -> None:
    """The AR(1) recursion along ``x``'s first axis, in place: x_0 as it is (unit variance), x_j = φ x_(j−1) +
    √(1 − φ²) w_j (``cc`` = √(1 − φ²); the c w_j of every j at once first: w_j is not changed before its step)."""
    tmp = np.empty(x.shape[1:], dtype=x.dtype)
    np.multiply(x[1:], cc, out=x[1:])
    for j in range(1, x.shape[0]):
        np.multiply(x[j - 1], phi, out=tmp)
        np.add(tmp, x[j], out=x[j])


def row_triangular_window(key: int, row: int, n_draws: int, width: int, c0: int, c1: int) -> np.ndarray:
    """Columns ``c0`` … ``c1 − 1`` of ``row_triangular(key, row, (n_draws, width))``, (n_draws, c1 − c0), bit for
    bit, with only their numbers read from the generator.

    The row's n = n_draws × width numbers are laid out (draw, column), number i made of the 16-bit words k[i]
    and k[n + i] of the generator's raw 64-bit outputs read as uint16 (four words an output, low first:
    :data:`RAW_UINT16`). Draw b's window is words b·width + c0 … of the first half and n + b·width + c0 … of
    the second: each such segment is read from the raw outputs that hold it, the generator advanced
    (``PCG64.advance``, as if the outputs between were drawn) over the rest."""
    c0, c1, width, n_draws = int(c0), int(c1), int(width), int(n_draws)
    m = c1 - c0
    if not 0 <= c0 < c1 <= width:
        raise ValueError(f"row_triangular_window: columns {c0}..{c1} must lie within 0..{width}.")
    if not RAW_UINT16:
        return row_triangular(key, row, (n_draws, width))[:, c0:c1].copy()
    n = n_draws * width
    if width - m < max(WINDOW_MIN_GAP_WORDS, 4):  # the whole row's words (a gap of 4 words: segments share no output)
        k = np.random.PCG64([key & 0xFFFFFFFF, key >> 32, row]).random_raw((2 * n + 3) // 4).view(np.uint16)
        k = k[:2 * n].reshape(2, n_draws, width)[:, :, c0:c1]  # the window's words only enter the arithmetic
        return _triangular(k[0], k[1], (n_draws, m))
    bg = np.random.PCG64([key & 0xFFFFFFFF, key >> 32, row])
    k = np.empty((2, n_draws, m), dtype=np.uint16)
    pos = 0  # raw outputs drawn so far
    for h in range(2):
        for b in range(n_draws):
            s = h * n + b * width + c0  # the segment's first word
            a, e = s // 4, (s + m + 3) // 4  # the raw outputs holding words s … s + m − 1 (the gap keeps a ≥ pos)
            bg.advance(a - pos)
            k[h, b] = bg.random_raw(e - a).view(np.uint16)[s - 4 * a:s - 4 * a + m]
            pos = e
    return _triangular(k[0], k[1], (n_draws, m))


class _Rows:
    """Consecutive grid rows ``first`` … ``first + k − 1`` of one random stream over the columns ``c0`` … ``c1 − 1``
    (the window: whole field blocks of :data:`FIELD_BLOCK_PX` columns around what the chunks asked), kept as one
    block (B, k, c1 − c0) float32, so a chunk's values are gathered from it without stacking rows. A field
    stream also keeps where its row recursion stands (``start``, the row it started from; ``next``, the next row
    to compute; ``prev``, the last row computed)."""

    def __init__(self) -> None:
        self.first = 0  # the first row kept
        self.base = 0  # the grid row of the block's first row (≤ first: rows above first are forgotten)
        self.block: np.ndarray | None = None  # (B, rows, c1 − c0), C-contiguous
        self.c0 = 0
        self.c1 = 0  # 0: no window yet
        self.start = 0
        self.next = 0
        self.prev: np.ndarray | None = None

    @property
    def stop(self) -> int:
        return self.base + (0 if self.block is None else self.block.shape[1])

    def window(self, a: int, b: int, width: int, s: int) -> bool:
        """Make the window cover columns ``a`` … ``b`` (whole blocks of ``s`` columns; the union with the current
        window, so that chunks of one tile keep one window); True when it changed (every kept row and state is
        then dropped)."""
        lo, hi = (a // s) * s, min(width, (b // s + 1) * s)
        if self.c1 > self.c0 and self.c0 <= lo and hi <= self.c1:
            return False
        if self.c1 > self.c0:
            lo, hi = min(lo, self.c0), max(hi, self.c1)
        self.c0, self.c1 = lo, hi
        self.first = self.base = self.start = self.next = 0
        self.block = self.prev = None
        return True

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

    def extend(self, first: int, n: int, n_draws: int) -> np.ndarray:
        """A new block of the kept rows and ``n`` rows ``first`` … after them (or of those alone where they do
        not follow the kept rows); returns its view (B, n, c1 − c0) of the new rows, for the caller to fill."""
        cw = self.c1 - self.c0
        if self.block is None or first != self.stop:
            self.first = self.base = first
            self.block = np.empty((n_draws, n, cw), dtype=np.float32)
            return self.block
        keep = self.stop - self.first
        block = np.empty((n_draws, keep + n, cw), dtype=np.float32)
        block[:, :keep] = self.block[:, self.first - self.base:]
        self.block, self.base = block, self.first
        return block[:, keep:]

    def gather(self, gidx: np.ndarray, width: int) -> np.ndarray:
        """(B, n) values at global pixel indices ``gidx`` (all within the kept rows and the window)."""
        flat = self.block.reshape(self.block.shape[0], -1)
        cw = self.c1 - self.c0
        if cw == width:
            return flat[:, gidx - self.base * width]
        r, c = np.divmod(gidx, width)
        return flat[:, (r - self.base) * cw + (c - self.c0)]


# Rows of the residual field computed at a time: those the chunk needs, at least FIELD_AHEAD_ROWS, at most
# FIELD_BATCH_BYTES of float32 rows (or FIELD_AHEAD_ROWS) per batch. The row filter's Python loop runs over the
# columns once per batch, but with 200 draws its array work dominates: 8 rows ahead gave no gain on a 10980-wide
# grid (chunks of 8192 pixels, 0.93 vs 0.94 s CPU for 24 rows), so none are computed ahead (no memory for them).
FIELD_AHEAD_ROWS = 1
FIELD_BATCH_BYTES = 32 << 20

# The residual field's fixed global lattice of blocks (docs/method.md §6, "The residual field on a lattice of
# blocks"): square blocks of FIELD_BLOCK_PX pixels from the grid's top-left corner, whatever tiles.size_px is. A
# block's recursions start FIELD_HALO px before it (along the row, then down the columns) from a stationary start,
# K = field_halo(φ) pixels, the smallest with φ^K ≤ FIELD_HALO_TOL, so a pixel's value depends on the white numbers
# of its block and the K pixels above and left of it only. Tiles that are whole blocks (size_px a multiple of
# FIELD_BLOCK_PX) compute no column of the field twice.
FIELD_BLOCK_PX = 512
FIELD_HALO_TOL = 1e-7
# K at most 4 blocks of 512: a range longer than 1014 m at 10 m (φ^2048 > 1e-7) has its halo capped, so that a tile's
# work stays bounded (its window, blocks of 2048 and a halo of 2048), the covariance across the blocks' edges off the
# model by up to 3φ^2048 (8.5e-4 for a 2 km range at 10 m, 0.16 for the demo's fitted 5.6 km): logged as a warning
FIELD_HALO_MAX_PX = 4 * 512


def field_halo(phi: float) -> int:
    """K, the pixels a block's recursions start before it: the smallest K ≥ 1 with φ^K ≤ :data:`FIELD_HALO_TOL`,
    at most :data:`FIELD_HALO_MAX_PX` (where φ is that close to 1 the covariance across a block's edge departs
    from the model's by up to 3φ^K: :func:`field_halo_error`). Where K reaches the grid's edge the recursion
    starts at the edge (row or column 0), exactly the whole-grid recursion."""
    if not 0.0 < phi < 1.0:
        return 1
    return min(FIELD_HALO_MAX_PX, max(1, math.ceil(math.log(FIELD_HALO_TOL) / math.log(phi) - 1e-9)))


def field_halo_error(phi: float, halo: int) -> float:
    """The bound 3φ^K on the departure of the field's covariance (of unit-variance pixels) from the separable
    exponential model, across a block's edge (tests/test_uncertainty_field_blocks.py)."""
    return 3.0 * phi ** int(halo)


def field_block(halo: int) -> int:
    """The side of the field's blocks, pixels: :data:`FIELD_BLOCK_PX`, or the halo K rounded up to a multiple of
    it where K is longer (so a block's runs are at most twice its side: the untiled field costs at most twice the
    recursion from the grid's edge)."""
    return max(FIELD_BLOCK_PX, -(-int(halo) // FIELD_BLOCK_PX) * FIELD_BLOCK_PX)


def _run_start(i: int, halo: int, s: int) -> int:
    """The row (or column) where the recursion of the pixels of row (column) ``i`` starts: ``halo`` before the
    first of ``i``'s block of side ``s``, or the grid's edge."""
    return max(0, (i // s) * s - halo)


# The streams' kept rows, shared by the Noise objects alive with the same stream (key, draws, width and,
# for a field, φ): the change rule's two years draw the same common streams (residual field and pixel
# numbers) chunk by chunk, and compute them once. The numbers depend on the stream and the row alone.
SHARED_ROWS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_LOGGED_HALOS: set = set()


def _shared_rows(key: tuple) -> _Rows:
    rows = SHARED_ROWS.get(key)
    if rows is None:
        rows = _Rows()
        SHARED_ROWS[key] = rows
    return rows


class Noise:
    """Per-chunk draws of the residual, NDVI and edge errors of :class:`NoiseSpec` (module docstring).

    Random numbers are made per grid row from a generator seeded by (seed, stream, row), so a pixel's
    numbers do not depend on the strip, chunk or tile it is evaluated in; a chunk reads only its window's
    columns of each row (:func:`row_triangular_window`). The correlated residual field is a separable
    exponential field at pixel resolution: white noise filtered by a first-order autoregression along each
    row and then down the rows (φ = exp(−res/L), L = range_m·√(π/2), the scale whose correlation integral
    equals the fitted isotropic model's, so large zone sums get its variance), each recursion started
    stationary K = :func:`field_halo` pixels before the pixel's block of the fixed lattice
    (:data:`FIELD_BLOCK_PX`), so a tile computes its window and a halo of K pixels above and left of it, and
    memory is a few rows × draws × the window.

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
            self.halo = field_halo(self.phi)
            self.block_px = field_block(self.halo)
            if self.phi**self.halo > FIELD_HALO_TOL and (self.phi, self.halo) not in _LOGGED_HALOS:
                _LOGGED_HALOS.add((self.phi, self.halo))
                log.warning("residual field: range %.0f m at %g m pixels (phi %.6f) would need a halo of more than "
                            "%d px: capped at K = %d px (blocks of %d px); the field's covariance across the blocks' "
                            "edges departs from the exponential model by up to 3 phi^K = %.3g (exact within a block; "
                            "none on a grid of at most K px a side, where every run starts at the edge)",
                            r.range_m, spec.resolution_m, self.phi, self.halo, self.halo, self.block_px,
                            field_halo_error(self.phi, self.halo))
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

    def _white_rows(self, key: int, r0: int, st: _Rows, out: np.ndarray) -> None:
        """Fill ``out`` (B, rows, window) with the white rows r0 … of the stream ``key`` over the window's columns."""
        for k in range(out.shape[1]):
            out[:, k] = row_triangular_window(key, r0 + k, self.n_draws, self.spec.width, st.c0, st.c1)

    def white(self, name: str, year: int | None, gidx: np.ndarray) -> np.ndarray:
        """(B, n) float32 unit-variance numbers of a stream at global pixel indices ``gidx``."""
        w = self.spec.width
        r0, r1 = int(gidx.min() // w), int(gidx.max() // w)
        cols = gidx % w
        key, st = self._stream("white", name, year)
        st.window(int(cols.min()), int(cols.max()), w, FIELD_BLOCK_PX)
        if st.block is None or r0 < st.first or r0 >= st.stop:
            st.block = None
            self._white_rows(key, r0, st, st.extend(r0, r1 + 1 - r0, self.n_draws))
        else:
            st.keep_from(r0)
            if r1 >= st.stop:
                start = st.stop
                self._white_rows(key, start, st, st.extend(start, r1 + 1 - start, self.n_draws))
        out = st.gather(gidx, w)
        if not (self.spec.paired and year is None):  # no other year asks for these rows: keep the last one only
            st.trim(r1)
        return out

    def _along_rows(self, key: int, st: _Rows, first: int, n: int) -> np.ndarray:
        """The white rows first … first + n − 1 filtered along each row, over the window, laid out (window, n, B):
        each column block's recursion x_j = φ x_(j−1) + √(1 − φ²) w_j starts at its run start (the halo before
        the block, or column 0 with x_0 = w_0: unit variance). The blocks whose runs start at column 0 share one."""
        s, halo, w = self.block_px, self.halo, self.spec.width
        c0, c1 = st.c0, st.c1
        lo = _run_start(c0, halo, s)  # the first white column needed
        xw = np.empty((c1 - lo, n, self.n_draws), dtype=np.float32)
        for k in range(n):
            xw[:, k] = row_triangular_window(key, first + k, self.n_draws, w, lo, c1).T
        phi, cc = np.float32(self.phi), np.float32(math.sqrt(1.0 - self.phi**2))
        out = np.empty((c1 - c0, n, self.n_draws), dtype=np.float32)
        blocks = range(c0 // s, (c1 - 1) // s + 1)
        edge = [j for j in blocks if _run_start(j * s, halo, s) == 0]  # blocks whose runs start at column 0 (lo = 0)
        inner = [j for j in blocks if _run_start(j * s, halo, s) > 0]
        if inner:
            # before the edge run (which filters xw in place): the other blocks' runs side by side, (halo + block,
            # blocks, n, B), column t of block J's run being column J·s − halo + t (past the grid's last column: the
            # last column, computed and not used)
            t = np.arange(halo + s)
            idx = np.minimum(np.array(inner)[None, :] * s - halo + t[:, None], w - 1) - lo
            x = xw[idx]
            _ar1_in_place(x, phi, cc)
            for q, jb in enumerate(inner):
                a, b = jb * s, min(c1, (jb + 1) * s)
                out[a - c0:b - c0] = x[halo:halo + b - a, q]
        if edge:
            end = min(c1, (edge[-1] + 1) * s)
            x = xw[:end]  # columns 0 … end − 1: one run from column 0
            _ar1_in_place(x, phi, cc)
            out[:end - c0] = x[c0:end]
        return out

    def _down_rows(self, key: int, st: _Rows, first: int, n: int, y: np.ndarray | None) -> None:
        """Rows first … first + n − 1 of the run that ``st`` holds (its ``start`` ≤ first = ``st.next``): down the
        rows, (window, B) at a time, y_r = φ y_(r−1) + √(1 − φ²) x_r, the run's first row x as it is. Written
        to ``y`` (B, n, window) unless None (the rows between a run's start and the rows asked)."""
        x = self._along_rows(key, st, first, n)
        phi, cc = np.float32(self.phi), np.float32(math.sqrt(1.0 - self.phi**2))
        cur = np.empty(x.shape[::2], dtype=np.float32)
        prev = st.prev
        scaled = 0 if prev is not None else 1  # the run's first row enters unscaled
        np.multiply(x[:, scaled:], cc, out=x[:, scaled:])  # c x_r of every row at once
        for k in range(n):
            if prev is None:
                cur[...] = x[:, k]
            else:
                np.multiply(prev, phi, out=cur)
                np.add(cur, x[:, k], out=cur)
            if y is not None:
                y[:, k] = cur.T
            prev, cur = cur, (prev if prev is not None else np.empty_like(cur))
        st.prev = prev
        st.next = first + n

    def _field_rows(self, year: int | None, r0: int, r1: int, a: int, b: int) -> _Rows:
        """The unit-variance correlated field's rows r0..r1 over a window holding columns a..b of a stream (kept
        from r0 on). Each row block's run down the rows starts :func:`field_halo` rows before the block (or at
        row 0, where the runs of the blocks near the top are one): a row is computed in its run, restarted where
        the rows asked are not its continuation, in batches of :data:`FIELD_AHEAD_ROWS` to
        :data:`FIELD_BATCH_BYTES` of rows, ahead of r1 up to the end of its run's rows or the grid's height
        (``spec.height``)."""
        key, st = self._stream("field", "field", year)
        w, s, halo = self.spec.width, self.block_px, self.halo
        st.window(a, b, w, s)
        if st.block is None or r0 < st.first or r0 > st.stop:
            st.block = None
        st.keep_from(r0)
        limit = max(int(self.spec.height), r1 + 1)
        ahead = max(1, int(FIELD_AHEAD_ROWS))
        cw = st.c1 - st.c0
        span = st.c1 - _run_start(st.c0, halo, s)
        batch = max(ahead, FIELD_BATCH_BYTES // (4 * self.n_draws * (span + 2 * cw)))
        r = st.stop if st.block is not None else r0
        while r <= r1:
            start = _run_start(r, halo, s)
            # the rows sharing r's run: to the end of r's block, or of the last block whose run starts at row 0
            run_end = min(limit, ((halo // s if start == 0 else r // s) + 1) * s)
            if not (st.start == start and st.prev is not None and st.next <= r):
                st.start, st.next, st.prev = start, start, None
            while st.next < r:  # the run's rows above r (its halo, or rows skipped): computed, not kept
                m = min(r - st.next, batch)
                self._down_rows(key, st, st.next, m, None)
            n_new = min(max(r1 + 1 - r, ahead), batch, run_end - r)
            self._down_rows(key, st, r, n_new, st.extend(r, n_new, self.n_draws))
            st.keep_from(r0)
            r += n_new
        return st

    def field(self, gidx: np.ndarray) -> np.ndarray | None:
        """(B, n) correlated part of the relative residual: sd_field × (√ρ F_common + √(1−ρ) F_year)."""
        if not self.sd_field > 0:
            return None
        w = self.spec.width
        r0, r1 = int(gidx.min() // w), int(gidx.max() // w)
        cols = gidx % w
        a, b = int(cols.min()), int(cols.max())
        out = None
        streams = [(None, math.sqrt(self.rho))]
        if self.rho < 1:
            streams.append((self.spec.year, math.sqrt(1.0 - self.rho)))
        for year, weight in streams:
            if weight <= 0:
                continue
            # float64 product of the float32 field (exactly widened) and the weight, without a widened copy
            part = np.multiply(self._field_rows(year, r0, r1, a, b).gather(gidx, w), self.sd_field * weight, dtype=np.float64)
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

