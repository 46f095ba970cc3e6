"""CUDA optimizer updates against the CPU kernels, in float32 and float64."""

import numpy as np
import pytest
from numba import cuda

from nanoml.kernels import cpu
from nanoml.kernels import cuda as gpu

DTYPES = [np.float32, np.float64]
SIZE = 37  # not a whole warp: the last block is partly idle


def tol(dtype):
    return {"rtol": 2e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-13, "atol": 0}


def run_both(name, arrays, scalars, dtype):
    """Apply kernel `name` on the CPU and on the device to copies; return both results."""
    host = [a.copy() for a in arrays]
    getattr(cpu, name)(*host, *scalars)
    device = [cuda.to_device(a) for a in arrays]
    getattr(gpu, name)(*device, *scalars)
    return host, [d.copy_to_host() for d in device]


def make(rng, n_arrays, dtype, size=SIZE):
    return [rng.standard_normal(size).astype(dtype) for _ in range(n_arrays)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("momentum", "weight_decay", "nesterov"),
                         [(0.0, 0.0, False), (0.9, 0.01, False), (0.9, 0.0, True)])
def test_sgd_update(dtype, momentum, weight_decay, nesterov):
    rng = np.random.default_rng(0)
    param, grad, buf = make(rng, 3, dtype)
    if momentum == 0:
        buf = np.empty(0, dtype)  # untouched, so it may be empty
    host, device = run_both("sgd_update", [param, grad, buf],
                            (0.1, momentum, weight_decay, nesterov), dtype)
    for h, d in zip(host, device, strict=True):
        np.testing.assert_allclose(d, h, **tol(dtype))
    assert not np.array_equal(host[0], param)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("weight_decay", "decoupled", "step"),
                         [(0.0, False, 1), (0.1, False, 3), (0.1, True, 2)])
def test_adam_update(dtype, weight_decay, decoupled, step):
    rng = np.random.default_rng(1)
    param, grad, exp_avg, exp_avg_sq = make(rng, 4, dtype)
    arrays = [param, grad, exp_avg, np.abs(exp_avg_sq)]
    host, device = run_both("adam_update", arrays,
                            (1e-2, 0.9, 0.999, 1e-8, weight_decay, decoupled, step), dtype)
    for h, d in zip(host, device, strict=True):
        np.testing.assert_allclose(d, h, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_update(dtype, momentum):
    rng = np.random.default_rng(2)
    param, grad, square_avg, buf = make(rng, 4, dtype)
    square_avg = np.abs(square_avg)
    if momentum == 0:
        buf = np.empty(0, dtype)
    host, device = run_both("rmsprop_update", [param, grad, square_avg, buf],
                            (1e-2, 0.99, 1e-8, 0.01, momentum), dtype)
    for h, d in zip(host, device, strict=True):
        np.testing.assert_allclose(d, h, **tol(dtype))


def test_host_arrays_are_copied_over_and_back():
    rng = np.random.default_rng(3)
    param, grad, exp_avg, exp_avg_sq = make(rng, 4, np.float32, size=300)  # two blocks
    arrays = [param, grad, exp_avg, np.abs(exp_avg_sq)]
    expected = [a.copy() for a in arrays]
    cpu.adam_update(*expected, 1e-2, 0.9, 0.999, 1e-8, 0.0, False, 1)
    gpu.adam_update(*arrays, 1e-2, 0.9, 0.999, 1e-8, 0.0, False, 1)
    for h, d in zip(expected, arrays, strict=True):
        np.testing.assert_allclose(d, h, **tol(np.float32))
