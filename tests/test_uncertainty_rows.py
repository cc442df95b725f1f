"""uncertainty.Noise's streams (kept row blocks, batched residual field, common streams shared between the
live Noise objects of a pair of years) against a plain whole-grid reference of their definitions, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from greensink import uncertainty
from greensink.uncertainty import Noise, NoiseSpec, ResidualField, stream_key

W, H, B = 23, 31, 7
SEED = 11


def ref_white(name: str, year: int | None) -> np.ndarray:
    """(B, H, W) unit triangular numbers of a stream: row r from a generator seeded by (key, r), each
    number (k1 + k2 − 65535)·√6/65536 of two 16-bit integers, here in exact integer arithmetic."""
    key = stream_key(SEED, name, year)
    out = np.empty((B, H, W), dtype=np.float32)
    for r in range(H):
        k = np.random.default_rng([key & 0xFFFFFFFF, key >> 32, r]).integers(0, 1 << 16, (2, B, W), dtype=np.uint16)
        out[:, r] = (k[0].astype(np.int32) + k[1] - 65535).astype(np.float32) * np.float32(math.sqrt(6.0) / 65536.0)
    return out


def ref_field(year: int | None, phi: float) -> np.ndarray:
    """(B, H, W) the unit-variance field: the white rows filtered along each row (x_j = φ x_(j−1) + c x_j),
    then down the rows (y_r = φ y_(r−1) + c x_r, y_0 = x_0), c = √(1 − φ²), in float32, one element at a time."""
    x = ref_white("field", year).astype(np.float32)
    f, c = np.float32(phi), np.float32(math.sqrt(1.0 - phi**2))
    for j in range(1, W):
        x[:, :, j] = f * x[:, :, j - 1] + c * x[:, :, j]
    y = x.copy()
    for r in range(1, H):
        y[:, r] = f * y[:, r - 1] + c * x[:, r]
    return y


def noise(year: int, rho: float, paired: bool = True) -> Noise:
    res = ResidualField(nugget=0.02, psill=0.03, range_m=120.0, n_plots=10, method="test")
    spec = NoiseSpec(seed=SEED, year=year, residual=res, rho=rho, paired=paired, ndvi=True, position_sd_m=1.5,
                     resolution_m=10.0, width=W, height=H)
    return Noise(spec, B)


def expected_field(n: Noise, gidx: np.ndarray) -> np.ndarray:
    flat = {y: ref_field(y, n.phi).reshape(B, -1)[:, gidx] for y in (None, n.spec.year)}
    out = (n.sd_field * math.sqrt(n.rho)) * flat[None].astype(np.float64)
    if n.rho < 1:
        out = out + (n.sd_field * math.sqrt(1.0 - n.rho)) * flat[n.spec.year].astype(np.float64)
    return out


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(("ahead_rows", "batch_bytes"),
                         [(1, 1), (1, 4 * B * W * 3), (4, 1), (16, 32 << 20), (100, 1)])  # rows per batch: 1 or the
# chunk's to 3; 4; 16 to the whole grid; the whole grid
def test_field_and_pixel_terms_equal_reference(monkeypatch, ahead_rows, batch_bytes):
    monkeypatch.setattr(uncertainty.noise, "FIELD_AHEAD_ROWS", ahead_rows)
    monkeypatch.setattr(uncertainty.noise, "FIELD_BATCH_BYTES", batch_bytes)
    rng = np.random.default_rng(3)
    active = np.flatnonzero(rng.random(W * H) < 0.6)
    chunks = [active[i:i + 40] for i in range(0, active.size, 40)]
    # a second pass from the top (the field restarts), a chunk asked again, and a jump back
    order = chunks + chunks[:3] + [chunks[5], chunks[5], chunks[1]]
    pair = [noise(2023, 0.6), noise(2024, 0.6)]
    white = {(name, y): ref_white(name, y).reshape(B, -1) for name in ("pixel",) for y in (None, 2023, 2024)}
    for g in order:
        for n in pair:  # the two years in turn, as the change rule's one pass asks them: common streams shared
            assert same(n.field(g), expected_field(n, g))
            amp = rng.random((3, g.size))
            total, parts = n.pixel_terms(g, *amp)
            zc, zy = white[("pixel", None)][:, g], white[("pixel", n.spec.year)][:, g]
            n2 = (n.sd_nugget * amp[0]) ** 2
            common = np.sqrt(n.rho * n2 + amp[2] ** 2) * zc
            own = np.sqrt((1.0 - n.rho) * n2 + amp[1] ** 2) * zy
            assert same(total, common + own)
            nug = np.sqrt(n2) * (np.float32(math.sqrt(n.rho)) * zc + np.float32(math.sqrt(1.0 - n.rho)) * zy)
            assert same(parts["residual"], nug)
            assert same(parts["ndvi"], amp[1] * zy)
            assert same(parts["edges"], amp[2] * zc)


def test_single_year_and_unshared_equal_reference():
    """One Noise alone (nothing shared), single-year (ρ = 1, no year stream), whole rows and a scattered
    pick; and a paired one whose partner is gone (its shared rows freed)."""
    g = np.sort(np.random.default_rng(8).choice(W * H, 150, replace=False))
    single = noise(2023, 1.0, paired=False)
    assert single.rho == 1.0
    assert same(single.field(g), expected_field(single, g))
    total, parts = single.pixel_terms(g, np.ones(g.size), np.zeros(g.size), np.zeros(g.size))
    assert same(total, np.sqrt((single.sd_nugget * np.ones(g.size)) ** 2) * ref_white("pixel", None).reshape(B, -1)[:, g])
    a = noise(2024, 0.3)
    first = a.field(np.arange(W * 4))
    del a
    b = noise(2024, 0.3)
    assert same(b.field(np.arange(W * 4)), first)
    assert same(b.field(g), expected_field(b, g))
    assert len(uncertainty._SHARED) > 0
