"""The threaded ReLU kernels against NumPy, NaN included, and the backend's choice of them."""

import numpy as np
import pytest

from nanoml import backend
from nanoml.kernels import cpu
from nanoml.kernels.cpu.elementwise import PARALLEL_MIN


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 1000, 3 * (1 << 14) + 5])
def test_relu_and_its_gradient_match_numpy(dtype, size):
    rng = np.random.default_rng(size)
    x = rng.standard_normal(size).astype(dtype)
    x[::7] = 0
    x[::11] = np.nan
    g = rng.standard_normal(size).astype(dtype)
    g[::13] = np.nan
    out = np.empty_like(x)
    cpu.relu(x, out)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    cpu.relu_backward(x, g, out)
    np.testing.assert_array_equal(out, g * (x > 0))
    expected = np.maximum(x, 0)
    cpu.relu(x, x)  # in place
    np.testing.assert_array_equal(x, expected)


def test_the_backend_uses_them_for_large_arrays_only(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu, "relu", lambda x, out: calls.append(x.size) or out.fill(1))
    xp = backend.of(np.zeros(1))
    big = np.full(PARALLEL_MIN, -1.0, np.float32)
    assert (xp.relu(big) == 1).all() and calls == [PARALLEL_MIN]
    assert (xp.relu(np.full(10, -1.0, np.float32)) == 0).all() and calls == [PARALLEL_MIN]
    strided = np.full(2 * PARALLEL_MIN, -1.0, np.float32)[::2]
    assert (xp.relu(strided) == 0).all() and len(calls) == 1
