"""CUDA reductions against NumPy: sums and maxima along the last axis, softmax, column sums."""

import numpy as np
import pytest
from numba import cuda

from nanoml.kernels import cuda as gpu

# One block per row, of threads a power of two at least the row's length (some idle).
SHAPES = [(3, 5), (2, 1, 20), (4, 1)]


def tol(dtype):
    return {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13, "atol": 0}


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("name", "reference", "keeps_last"), [
    ("row_sum", lambda x: x.sum(axis=-1), False),
    ("row_max", lambda x: x.max(axis=-1), False),
    ("softmax", softmax, True),
])
def test_rows_like_numpy(name, reference, keeps_last, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out = cuda.device_array(shape if keeps_last else shape[:-1], dtype)
    getattr(gpu, name)(cuda.to_device(x), out)
    np.testing.assert_allclose(out.copy_to_host(), reference(x), **tol(dtype))


def test_rows_longer_than_a_block():
    """300 columns on 256 threads: each thread strides over two columns or one."""
    x = np.random.default_rng(2).standard_normal((1, 300)).astype(np.float32)
    out = np.empty_like(x)
    gpu.softmax(x, out)
    np.testing.assert_allclose(out, softmax(x), rtol=1e-5)


def test_row_max_propagates_nan_and_softmax_large_logits():
    x = np.array([[1.0, np.nan, 3.0], [-np.inf, 2.0, -1.0]], np.float32)
    out = np.empty(2, np.float32)
    gpu.row_max(x, out)
    np.testing.assert_array_equal(out, [np.nan, 2.0])
    big = np.array([[1000.0, 999.0, -1000.0]], np.float32)
    probs = np.empty_like(big)
    gpu.softmax(big, probs)
    np.testing.assert_allclose(probs, softmax(big.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_col_sum(dtype):
    x = np.random.default_rng(1).standard_normal((5, 37)).astype(dtype)
    out = cuda.device_array(37, dtype)
    gpu.col_sum(cuda.to_device(x), out)
    np.testing.assert_allclose(out.copy_to_host(), x.sum(axis=0), **tol(dtype))


def test_bad_output_shapes_raise():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"out must have shape \(3,\)"):
        gpu.row_sum(x, np.empty(4, np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(4,\)"):
        gpu.col_sum(x, np.empty(3, np.float32))
    with pytest.raises(ValueError, match="non-empty last axis"):
        gpu.softmax(np.ones((3, 0), np.float32), np.empty((3, 0), np.float32))
