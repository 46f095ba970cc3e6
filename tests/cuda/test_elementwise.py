"""CUDA elementwise kernels against NumPy: broadcasting arithmetic, activations, backwards."""

import numpy as np
import pytest
from numba import cuda
from scipy import special

from nanoml.kernels import cuda as gpu

BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "relu_backward": lambda x, g: g * (x > 0),
    "tanh_backward": lambda y, g: g * (1 - y * y),
    "sigmoid_backward": lambda y, g: g * y * (1 - y),
    "maximum": np.maximum,
    "minimum": np.minimum,
    "equal": lambda a, b: (a == b).astype(a.dtype),
    "leaky_relu": lambda x, s: np.where(x > 0, x, x * s),
    "leaky_relu_slope": lambda x, s: np.where(x > 0, 1, s).astype(x.dtype),
    "binary_cross_entropy": lambda z, y: np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))),
    "binary_cross_entropy_backward": lambda z, y: special.expit(z) - y,
}
UNARY = {
    "relu": lambda x: np.maximum(x, 0),
    "exp": np.exp,
    "tanh": np.tanh,
    "sigmoid": special.expit,
    "copy": lambda x: x,
    "log": np.log,
    "sqrt": np.sqrt,
    "absolute": np.abs,
    "sign": np.sign,
}
# Equal shapes (the direct kernel), a row vector, a column against a row, a lower-rank
# operand, size-1 axes on both sides, and a single element.
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
          ((2, 1, 4), (1, 3, 1)), ((1,), (2, 3))]


def tol(dtype):
    return {"rtol": 1e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-14, "atol": 0}


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize(("a_shape", "b_shape"), SHAPES)
def test_binary_broadcasts_like_numpy(name, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    expected = BINARY[name](a, b)
    out = cuda.device_array(expected.shape, np.float32)
    getattr(gpu, name)(cuda.to_device(a), cuda.to_device(b), out)
    np.testing.assert_allclose(out.copy_to_host(), expected, **tol(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_like_numpy(name, dtype):
    x = np.array([-800.0, -30.0, -1.5, -0.0, 0.0, 0.25, 2.0, 30.0, np.nan], dtype)
    if name == "exp":
        x = x[1:-2]  # no overflow (the simulator's math.exp raises on it)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = UNARY[name](x)
    out = cuda.device_array(x.shape, dtype)
    getattr(gpu, name)(cuda.to_device(x), out)
    np.testing.assert_allclose(out.copy_to_host(), expected, equal_nan=True, **tol(dtype))


def test_maximum_and_equal_with_nan_and_ties():
    a = np.array([1.0, np.nan, 2.0, 3.0], np.float32)
    b = np.array([1.0, 0.0, np.nan, 4.0], np.float32)
    for name, expected in (("maximum", np.maximum(a, b)), ("minimum", np.minimum(a, b)),
                           ("equal", (a == b).astype(np.float32))):
        out = cuda.device_array(4, np.float32)
        getattr(gpu, name)(cuda.to_device(a), cuda.to_device(b), out)
        np.testing.assert_array_equal(out.copy_to_host(), expected, err_msg=name)


def test_in_place_and_float64():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 6))
    b = rng.standard_normal(6)
    d_a = cuda.to_device(a)
    gpu.add(d_a, cuda.to_device(b), d_a)  # out aliases a: a bias added in place
    np.testing.assert_allclose(d_a.copy_to_host(), a + b, rtol=1e-15)


def test_fill_with_zero_and_host_arrays():
    out = np.full((4, 5), np.nan, np.float32)
    gpu.fill(out, 0)
    assert not out.any()


def test_mismatched_output_shape_raises():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"out has shape \(4, 3\)"):
        gpu.add(a, a, np.empty((4, 3), np.float32))
    with pytest.raises(ValueError):
        gpu.mul(a, np.ones(3, np.float32), np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        gpu.relu(a, np.empty((3, 5), np.float32))
