"""uncertainty.Noise on windows (issue 14 items 2 and 7): a tile reads only its own columns of the white streams
(row_triangular_window, bit for bit the columns of row_triangular), and the residual field is defined on a fixed
lattice of blocks whose recursions start a halo of K pixels before the block (φ^K ≤ 1e-7), so a tile computes
its window and the halo only and equals the untiled field bit for bit; the field's second moments against the
separable exponential model (exact weights, and a large sample of the real implementation)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from greensink.uncertainty import Noise, NoiseSpec, ResidualField, stream_key
from greensink.uncertainty import noise as nz

SEED = 3


# ----------------------------------------------------------------------------- white streams on a window


@pytest.mark.parametrize(("n_draws", "width", "c0", "c1"), [
    (3, 2600, 0, 1), (3, 2600, 2599, 2600), (4, 2600, 5, 517), (2, 2600, 1031, 1033),  # gaps ≥ 2048 words: segments
    (5, 4099, 0, 2048), (5, 4099, 2048, 4099), (7, 2051, 1, 2), (1, 5000, 777, 2777),  # 16-bit offsets 0–3, ends
    (6, 23, 4, 17), (6, 23, 0, 23), (200, 2048, 512, 1024),  # narrow gaps: the whole row read, then cut
])
@pytest.mark.parametrize("row", [0, 4_999])
def test_row_triangular_window_equals_row_columns(n_draws, width, c0, c1, row):
    key = stream_key(SEED, "pixel", 2024)
    want = nz.row_triangular(key, row, (n_draws, width))[:, c0:c1]
    got = nz.row_triangular_window(key, row, n_draws, width, c0, c1)
    assert got.dtype == np.float32 and got.shape == (n_draws, c1 - c0)
    assert got.tobytes() == want.tobytes()


def test_row_triangular_window_segments_on_small_rows(monkeypatch):
    # the segment path forced on small rows: every start offset within a 64-bit output (c0 mod 4 = 0…3), gaps of
    # 4 to 9 words between the segments (the least that keeps them apart), one and two draws
    monkeypatch.setattr(nz, "WINDOW_MIN_GAP_WORDS", 0)
    key = stream_key(SEED, "field", None)
    for width in (9, 10, 13):
        for c0 in range(4):
            for m in (1, 2, 5):
                for b in (1, 2):
                    want = nz.row_triangular(key, 7, (b, width))[:, c0:c0 + m]
                    got = nz.row_triangular_window(key, 7, b, width, c0, c0 + m)
                    assert got.tobytes() == want.tobytes(), (width, c0, m, b)
    with pytest.raises(ValueError, match="columns 3..2 must lie within 0..9"):
        nz.row_triangular_window(key, 7, 1, 9, 3, 2)


# ----------------------------------------------------------------------------- the field on a lattice of blocks


def phi_of(range_m: float, res: float = 10.0) -> float:
    return math.exp(-res / (range_m * math.sqrt(math.pi / 2)))


def field_noise(range_m: float, width: int, height: int, n_draws: int, *, year: int | None = 2023,
                rho: float = 1.0, paired: bool = False) -> Noise:
    res = ResidualField(nugget=0.0, psill=1.0, range_m=range_m, n_plots=10, method="test")
    spec = NoiseSpec(seed=SEED, year=year, residual=res, rho=rho, paired=paired, resolution_m=10.0, width=width,
                     height=height)
    return Noise(spec, n_draws)


def ref_white(width: int, height: int, n_draws: int, year: int | None = None) -> np.ndarray:
    """(B, H, W) the white numbers of the field stream, from numpy's bounded integers (no raw-output reading)."""
    key = stream_key(SEED, "field", year)
    out = np.empty((n_draws, height, width), dtype=np.float32)
    for r in range(height):
        k = np.random.default_rng([key & 0xFFFFFFFF, key >> 32, r]).integers(0, 1 << 16, (2, n_draws, width),
                                                                            dtype=np.uint16)
        out[:, r] = (k[0].astype(np.int32) + k[1] - 65535).astype(np.float32) * np.float32(math.sqrt(6.0) / 65536.0)
    return out


def ref_block_field(phi: float, halo: int, block: int, width: int, height: int, n_draws: int) -> np.ndarray:
    """(B, H, W) the field by its definition, one pixel at a time: pixel (r, c) of block (r // s, c // s) is
    y_r of the run down the rows from row R = max(0, s·(r // s) − K), y_R = x_R, y_i = φ y_(i−1) + √(1 − φ²) x_i,
    over the values x_i of the runs along rows i from column C = max(0, s·(c // s) − K), x_C = w_C,
    x_j = φ x_(j−1) + √(1 − φ²) w_j; float32 throughout, in the definition's order of operations."""
    w = ref_white(width, height, n_draws)
    f, cc = np.float32(phi), np.float32(math.sqrt(1.0 - phi**2))
    out = np.empty_like(w)
    for bi in range(0, height, block):
        for bj in range(0, width, block):
            r_s, c_s = max(0, bi - halo), max(0, bj - halo)
            r_e, c_e = min(height, bi + block), min(width, bj + block)
            x = w[:, r_s:r_e, c_s:c_e].copy()
            for j in range(1, x.shape[2]):
                x[:, :, j] = f * x[:, :, j - 1] + cc * x[:, :, j]
            y = x.copy()
            for i in range(1, y.shape[1]):
                y[:, i] = f * y[:, i - 1] + cc * x[:, i]
            out[:, bi:r_e, bj:c_e] = y[:, bi - r_s:, bj - c_s:]
    return out


def tile_chunks(width: int, height: int, size: int, chunk: int) -> list[np.ndarray]:
    """The global pixel indices of every tile of ``size`` px (row-major tiles), each tile's pixels in chunks."""
    out = []
    for r0 in range(0, height, size):
        for c0 in range(0, width, size):
            rr, cc = np.meshgrid(np.arange(r0, min(height, r0 + size)), np.arange(c0, min(width, c0 + size)),
                                 indexing="ij")
            g = (rr * width + cc).ravel()
            out += [g[i:i + chunk] for i in range(0, g.size, chunk)]
    return out


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# range 3 m: φ = exp(−10/(3·√(π/2))) = 0.0700, K = ⌈ln 1e-7 / ln φ⌉ = ⌈16.118/2.659⌉ = 7, blocks of 8 (FIELD_BLOCK_PX);
# range 6 m: φ = 0.2646, K = ⌈16.118/1.3296⌉ = 13 → blocks of 16 (K rounded up to a multiple of 8);
# range 40 m: φ = 0.8192, K = ⌈16.118/0.19947⌉ = 81 → blocks of 88, more than the 60 × 70 grid: the recursion from
# the grid's edge (the field before the blocks, bit for bit)
@pytest.mark.parametrize(("range_m", "halo", "block"), [(3.0, 7, 8), (6.0, 13, 16), (40.0, 81, 88)])
def test_field_tiled_equals_untiled_and_the_block_definition(monkeypatch, range_m, halo, block):
    monkeypatch.setattr(nz, "FIELD_BLOCK_PX", 8)
    W, H, B = 70, 60, 4
    n = field_noise(range_m, W, H, B)
    assert (n.halo, n.block_px) == (halo, block)
    assert n.phi**halo <= 1e-7 < n.phi ** (halo - 1)
    want = ref_block_field(n.phi, halo, block, W, H, B).reshape(B, -1).astype(np.float64)
    everything = np.arange(W * H)
    for chunks in ([everything], [everything[i:i + 97] for i in range(0, W * H, 97)],
                   tile_chunks(W, H, 16, 50), tile_chunks(W, H, 23, 1000), tile_chunks(W, H, 9, 7)):
        got = np.full((B, W * H), np.nan)
        n = field_noise(range_m, W, H, B)  # a fresh object per tiling: nothing kept from the last
        for g in chunks:
            got[:, g] = n.field(g)
        assert same(got, want)


def test_halo_capped_where_phi_is_close_to_1(monkeypatch, caplog):
    # FIELD_HALO_MAX_PX 32 (4 blocks of 8) here, as 2048 (4 × 512) in a run: range 40 m, φ = 0.8192, would need
    # K = 81; capped at 32, blocks of 32, the departure bound 3φ^32 = 3 × 0.00169 = 0.00507 stated in a warning. The
    # capped field is still one definition: tiled == untiled == the per-pixel reference with K = 32, blocks of 32.
    monkeypatch.setattr(nz, "FIELD_BLOCK_PX", 8)
    monkeypatch.setattr(nz, "FIELD_HALO_MAX_PX", 32)
    monkeypatch.setattr(nz, "_LOGGED_HALOS", set())
    W, H, B = 70, 60, 3
    with caplog.at_level("WARNING", logger="greensink.uncertainty.noise"):
        n = field_noise(40.0, W, H, B)
    assert (n.halo, n.block_px) == (32, 32)
    assert nz.field_halo_error(n.phi, n.halo) == pytest.approx(3 * 0.81916**32, rel=2e-3)
    assert "capped at K = 32 px" in caplog.text and "0.00507" in caplog.text
    want = ref_block_field(n.phi, 32, 32, W, H, B).reshape(B, -1).astype(np.float64)
    for chunks in ([np.arange(W * H)], tile_chunks(W, H, 16, 50), tile_chunks(W, H, 23, 11)):
        n = field_noise(40.0, W, H, B)
        got = np.full((B, W * H), np.nan)
        for g in chunks:
            got[:, g] = n.field(g)
        assert same(got, want)
    # the stated bound holds on the runs' exact covariance, and is not loose (> φ^K / 10 across the edges)
    cov = (a := block_weights(3 * 32 + 5, n.phi, 32, 32)) @ a.T
    model = n.phi ** np.abs(np.subtract.outer(np.arange(a.shape[0]), np.arange(a.shape[0])))
    worst = np.abs(cov - model).max()
    assert 0.1 * n.phi**32 < worst <= nz.field_halo_error(n.phi, 32)


def test_field_before_the_blocks_when_the_halo_covers_the_grid():
    # K ≥ the grid's height and width: every run starts at row or column 0, the whole-grid recursion of the field
    # before the lattice (its values unchanged, e.g. the demo's 5.6 km range on a few hundred pixels)
    W, H, B = 37, 29, 3
    n = field_noise(120.0, W, H, B)  # φ = 0.9357, K = 243
    assert n.halo == 243 and n.block_px == 512
    w = ref_white(W, H, B)
    f, cc = np.float32(n.phi), np.float32(math.sqrt(1.0 - n.phi**2))
    for j in range(1, W):
        w[:, :, j] = f * w[:, :, j - 1] + cc * w[:, :, j]
    y = w.copy()
    for r in range(1, H):
        y[:, r] = f * y[:, r - 1] + cc * w[:, r]
    g = np.arange(W * H)
    assert same(n.field(g), y.reshape(B, -1).astype(np.float64))


def test_tile_reads_only_its_window_and_halo(monkeypatch):
    # the bottom-right tile of a 300 × 260 grid (tiles of 64 px, blocks of 16, range 6 m: K = 13, blocks of 16):
    # the white numbers it reads start at most a block and K before its first row and column, for the field's
    # runs, and at its window (whole blocks of 16 columns) for the pixel stream
    monkeypatch.setattr(nz, "FIELD_BLOCK_PX", 16)
    W, H, B, size = 300, 260, 2, 64
    calls = []
    real = nz.row_triangular_window

    def spy(key, row, n_draws, width, c0, c1):
        calls.append((key, row, c0, c1))
        return real(key, row, n_draws, width, c0, c1)

    monkeypatch.setattr(nz, "row_triangular_window", spy)
    n = field_noise(6.0, W, H, B)
    assert (n.halo, n.block_px) == (13, 16)
    r0, c0 = (H // size) * size, (W // size) * size  # 256, 256
    g = tile_chunks(W, H, size, 40)
    last = [x for x in g if x.min() // W >= r0 and x.min() % W >= c0]
    for x in last:
        n.field(x)
        n.pixel_terms(x, np.ones(x.size), np.zeros(x.size), np.zeros(x.size))
    field_key, pixel_key = stream_key(SEED, "field", None), stream_key(SEED, "pixel", None)
    rows_f = [c for c in calls if c[0] == field_key]
    rows_p = [c for c in calls if c[0] == pixel_key]
    assert min(c[1] for c in rows_f) >= r0 - 13 and min(c[2] for c in rows_f) >= c0 - 13
    assert max(c[3] for c in rows_f) == W and max(c[1] for c in rows_f) == H - 1
    assert {(c[2], c[3]) for c in rows_p} == {(c0, W)} and min(c[1] for c in rows_p) == r0
    # rows read: the tile's 4 rows and the halo of 13, each once (no restart from the grid's top)
    assert len(rows_f) == (H - r0) + 13


# ----------------------------------------------------------------------------- the field's second moments


def block_weights(n: int, phi: float, halo: int, block: int) -> np.ndarray:
    """(n, n) A with x = A w: the run along one row of ``n`` pixels, each block's from its start (float64)."""
    c = math.sqrt(1.0 - phi**2)
    a = np.zeros((n, n))
    for i in range(n):
        s = max(0, (i // block) * block - halo)
        a[i, s] = phi ** (i - s)
        for j in range(s + 1, i + 1):
            a[i, j] = c * phi ** (i - j)
    return a


@pytest.mark.parametrize(("phi", "halo", "block"), [(0.5, 24, 32), (0.9, 153, 160), (0.9, 40, 48)])
def test_block_runs_have_the_exponential_covariance(phi, halo, block):
    # The covariance of one axis' run, A Aᵀ for unit white noise, against the exponential model φ^|i − j|: unit
    # variance exactly (a stationary start), φ^|i − j| within a block, and across a block's edge within 3 φ^K (the
    # start's departure from the infinite past, φ^(i − s)·(w_s − x_s), has variance 2(1 − c)φ^(2(i − s)) ≤ 2φ^(2K)).
    # The field is the product of two such runs (rows, then columns): its covariance the product of the two.
    n = 3 * block + 7
    a = block_weights(n, phi, halo, block)
    cov = a @ a.T
    model = phi ** np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    np.testing.assert_allclose(np.diag(cov), 1.0, rtol=0, atol=1e-12)
    worst = np.abs(cov - model).max()
    assert worst <= 3 * phi**halo
    # and the bound is not loose: a short halo (40 pixels at φ = 0.9, φ^K = 0.0148) departs by more than φ^K / 10
    assert worst > 0.1 * phi**halo or phi**halo < 1e-6


def test_field_sample_matches_the_exponential_model(monkeypatch):
    # The real field on a 96 × 96 grid with blocks of 32 (range 14.4 m: φ = exp(−10/(14.4·1.2533)) = 0.5745,
    # K = ⌈16.118/0.5542⌉ = 30 → blocks of 32), 600 draws: every pixel's variance is 1, and the correlation at lag
    # d along rows, along columns and on the diagonal (1, 1) is φ^d and φ² (separable exponential), at pairs that
    # straddle the block edges (columns or rows 31|32 and 63|64) and at pairs inside blocks alike.
    monkeypatch.setattr(nz, "FIELD_BLOCK_PX", 32)
    W = H = 96
    B = 600
    n = field_noise(14.4, W, H, B)
    assert (n.halo, n.block_px) == (30, 32)
    phi = n.phi
    f = n.field(np.arange(W * H)).reshape(B, H, W)
    # variance: the mean over pixels of the per-pixel variances; sd of one pixel's variance ≈ √(2/B)·0.95 (the
    # triangular's kurtosis 2.4 makes it √((κ − 1)/B)); the mean over 9216 correlated pixels is far tighter, use 4 sd
    var = f.var(axis=0)
    assert var.mean() == pytest.approx(1.0, abs=4 * math.sqrt(1.4 / B))
    assert np.abs(var - 1).max() < 8 * math.sqrt(1.4 / B)

    def corr(u: np.ndarray, v: np.ndarray) -> float:
        return float((u * v).mean() / math.sqrt((u * u).mean() * (v * v).mean()))  # zero-mean by construction

    # a correlation estimated from N values of pairs whose nearby pairs correlate: allow 0.03 (sd ≈ (1 − ρ²)/√N_eff,
    # N_eff in the thousands here)
    for d in (1, 2, 3, 5):
        edge_cols = [corr(f[:, :, c - d + k], f[:, :, c + k]) for c in (32, 64) for k in range(d)]
        inner_cols = corr(f[:, :, 40 - d:40], f[:, :, 40:40 + d]) if d == 1 else corr(f[:, :, 8:8 + 16],
                                                                                      f[:, :, 8 + d:24 + d])
        edge_rows = [corr(f[:, r - d + k], f[:, r + k]) for r in (32, 64) for k in range(d)]
        for est in (*edge_cols, inner_cols, *edge_rows):
            assert est == pytest.approx(phi**d, abs=0.03), d
    # diagonal neighbours across the block corners' column edge (all rows) and row edge (all columns), and inside
    diag = (corr(f[:, :-1, 31], f[:, 1:, 32]), corr(f[:, 31, :-1], f[:, 32, 1:]),
            corr(f[:, 10:20, 10:20], f[:, 11:21, 11:21]))
    for est in diag:
        assert est == pytest.approx(phi**2, abs=0.03)
    # far apart (lag 40 along a row: φ^40 = 2e-10) the pixels are uncorrelated
    assert corr(f[:, :, 0:50], f[:, :, 40:90]) == pytest.approx(0.0, abs=0.03)


def test_paired_streams_shared_on_a_tile_equal_reference(monkeypatch):
    # the change rule's two years of a tile ask the same chunks: the common field and pixel streams are computed
    # once for both, on the tile's window, and equal the untiled run's
    monkeypatch.setattr(nz, "FIELD_BLOCK_PX", 8)
    W, H, B = 41, 33, 3
    chunks = tile_chunks(W, H, 16, 30)
    whole = [field_noise(6.0, W, H, B, year=y, rho=0.5, paired=True) for y in (2023, 2024)]
    g = np.arange(W * H)
    want = [(x.field(g), x.pixel_terms(g, np.ones(g.size), np.ones(g.size), np.ones(g.size))[0]) for x in whole]
    del whole
    pair = [field_noise(6.0, W, H, B, year=y, rho=0.5, paired=True) for y in (2023, 2024)]
    got = [(np.full((B, W * H), np.nan), np.full((B, W * H), np.nan, dtype=np.float64)) for _ in pair]
    for x in chunks:
        for k, p in enumerate(pair):
            got[k][0][:, x] = p.field(x)
            got[k][1][:, x] = p.pixel_terms(x, np.ones(x.size), np.ones(x.size), np.ones(x.size))[0]
    for k in range(2):
        assert same(got[k][0], want[k][0])
        np.testing.assert_array_equal(got[k][1], want[k][1])
