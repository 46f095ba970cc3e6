"""Dropout masks: against a NumPy splitmix64, rates, and the same masks on any thread count."""

import numba
import numpy as np
import pytest

from nanoml.kernels.cpu.masks import dropout_mask


def numpy_mask(seed, p, shape, dtype):
    """The masks written out in NumPy's wrapping uint64 array arithmetic."""
    i = np.arange(1, np.prod(shape) + 1, dtype=np.uint64)
    z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.where(u >= p, 1.0 / (1.0 - p), 0.0).astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed, p, shape", [(0, 0.5, (3, 7)), (2**63 - 1, 0.25, (40_000,)),
                                            (12345, 0.9, (2, 3, 4, 5))])
def test_masks_match_numpy(dtype, seed, p, shape):
    out = np.full(shape, np.nan, dtype)
    dropout_mask(seed, p, out)
    np.testing.assert_array_equal(out, numpy_mask(seed, p, shape, dtype))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_dropped_share_is_p(p):
    n = 200_000
    out = np.empty(n)
    dropout_mask(7, p, out)
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / n)
    assert set(np.unique(out)) == {0.0, 1 / (1 - p)}


def test_seeds_give_other_masks_and_threads_do_not():
    a, b = np.empty(50_000), np.empty(50_000)
    dropout_mask(1, 0.5, a)
    dropout_mask(2, 0.5, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = np.empty(50_000)
        dropout_mask(1, 0.5, serial)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(serial, a)
