"""uncertainty.noise.row_triangular, the unit numbers of one grid row of a noise stream read from the generator's raw
64-bit outputs, against uncertainty.unit_triangular (numpy's bounded 16-bit integers) on the same generator, bit for
bit, and against the numbers written out by hand from the raw outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from greensink.uncertainty import noise as nz


@pytest.mark.parametrize("shape", [(1,), (1, 1), (3,), (7, 23), (200, 502), (25, 17), (2, 3, 5)])
@pytest.mark.parametrize("row", [0, 1, 4_999])
def test_row_triangular_equals_unit_triangular(shape, row):
    key = nz.stream_key(42, "field", 2024)
    got = nz.row_triangular(key, row, shape)
    want = nz.unit_triangular(np.random.default_rng([key & 0xFFFFFFFF, key >> 32, row]), shape)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape == shape
    assert got.tobytes() == want.tobytes()


def test_row_triangular_by_hand():
    # the first raw output's four 16-bit words (low first) are the first two numbers' two integers when n = 2
    key = nz.stream_key(7, "pixel")
    raw = np.random.default_rng([key & 0xFFFFFFFF, key >> 32, 3]).bit_generator.random_raw(1)[0]
    words = [(int(raw) >> (16 * i)) & 0xFFFF for i in range(4)]
    scale = math.sqrt(6.0) / 65536.0
    by_hand = [np.float32((words[0] + words[2] - 65535) * np.float32(scale)),
               np.float32((words[1] + words[3] - 65535) * np.float32(scale))]
    assert nz.RAW_UINT16  # this machine takes the raw path: the test above covers it
    np.testing.assert_array_equal(nz.row_triangular(key, 3, (2,)), np.array(by_hand, dtype=np.float32))
