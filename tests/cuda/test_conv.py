"""CUDA convolution and pooling kernels against the CPU kernels, on the same arguments."""

import numpy as np
import pytest
from numba import cuda

from nanoml.kernels import cpu
from nanoml.kernels import cuda as gpu

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def both(name, args, outputs):
    """Run kernel `name` on the CPU and on device copies; the arrays at `outputs`, per device."""
    host = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    getattr(cpu, name)(*host)
    device = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    getattr(gpu, name)(*device)
    return [host[i] for i in outputs], [device[i].copy_to_host() for i in outputs]


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pads", [(1, 2), (-1, 0)])  # a negative pad crops
def test_pad2d(dtype, pads):
    x = rand(np.random.default_rng(0), (2, 2, 3, 4), dtype)
    out = np.full((2, 2, 3 + 2 * pads[0], 4 + 2 * pads[1]), np.nan, dtype)
    (c,), (d,) = both("pad2d", [x, *pads, out], [3])
    np.testing.assert_array_equal(d, c)


# (N, C, M, H, W, K). The weight gradient runs a block per weight and per bias, and the
# simulator is slow per block: few weights, several channels on one side or the other.
@pytest.mark.parametrize(("dtype", "shape"), [(np.float32, (2, 1, 2, 4, 5, 2)),
                                              (np.float64, (2, 2, 1, 4, 5, 2))])
def test_direct_convolution_and_its_weight_gradient(dtype, shape):
    rng = np.random.default_rng(1)
    N, C, M, H, W, K = shape
    OH, OW = H - K + 1, W - K + 1
    xp, w, b = rand(rng, (N, C, H, W), dtype), rand(rng, (M, C, K, K), dtype), rand(rng, M, dtype)
    out = np.zeros((N, M, OH, OW), dtype)
    acc = np.zeros((N, (OH - 1) * W + OW), dtype)
    (c,), (d,) = both("conv2d_forward_direct", [xp, w, b, out, acc], [3])
    np.testing.assert_allclose(d, c, **tol(dtype))

    g = rand(rng, (N, M, OH, OW), dtype)
    grad_w, grad_b = np.zeros_like(w), np.zeros_like(b)
    gfull = np.zeros((M, (OH - 1) * W + OW), dtype)
    host, device = both("conv2d_backward_weight_direct", [xp, g, grad_w, grad_b, gfull], [2, 3])
    for c, d in zip(host, device, strict=True):
        np.testing.assert_allclose(d, c, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("KH", "KW", "stride", "pad"),
                         [(3, 2, (2, 1), (1, 0)), (2, 2, (1, 3), (2, 1)), (1, 1, (1, 1), (0, 0))])
def test_im2col_and_col2im(dtype, KH, KW, stride, pad):
    rng = np.random.default_rng(2)
    N, C, H, W = 2, 2, 5, 4
    OH = (H + 2 * pad[0] - KH) // stride[0] + 1
    OW = (W + 2 * pad[1] - KW) // stride[1] + 1
    x = rand(rng, (N, C, H, W), dtype)
    geometry = [KH, KW, *stride, *pad]
    cols = np.full((C * KH * KW, N * OH * OW), np.nan, dtype)
    (c,), (d,) = both("im2col", [x, *geometry, cols], [7])
    np.testing.assert_array_equal(d, c)

    g = rand(rng, cols.shape, dtype)
    grad_x = np.full_like(x, np.nan)
    (c,), (d,) = both("col2im", [g, *geometry, grad_x], [7])
    np.testing.assert_allclose(d, c, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("KH", "KW", "stride", "pad"),
                         [(3, 2, (2, 1), (1, 0)), (1, 1, (1, 1), (0, 0))])
def test_gemm_convolution_and_its_gradients(dtype, KH, KW, stride, pad):
    rng = np.random.default_rng(3)
    N, C, M, H, W = 3, 2, 3, 5, 4
    OH = (H + 2 * pad[0] - KH) // stride[0] + 1
    OW = (W + 2 * pad[1] - KW) // stride[1] + 1
    x = rand(rng, (N, C, H, W), dtype)
    w2 = rand(rng, (M, C * KH * KW), dtype)
    geometry = [KH, KW, *stride, *pad]
    out = np.full((N, M, OH, OW), np.nan, dtype)
    (c,), (d,) = both("conv2d_forward_gemm", [x, w2, rand(rng, M, dtype), *geometry, out], [9])
    np.testing.assert_allclose(d, c, **tol(dtype))
    g = rand(rng, out.shape, dtype)
    grad_x = np.full_like(x, np.nan)
    (c,), (d,) = both("conv2d_backward_input_gemm",
                      [g, np.ascontiguousarray(w2.T), *geometry, grad_x], [8])
    np.testing.assert_allclose(d, c, **tol(dtype))
    gw, gb = np.full(w2.T.shape, np.nan, dtype), np.full(M, np.nan, dtype)
    host, device = both("conv2d_backward_weight_gemm", [x, g, *geometry, gw, gb], [8, 9])
    for c, d in zip(host, device, strict=True):
        np.testing.assert_allclose(d, c, **tol(dtype))


# (KH, KW, SH, SW): the usual 2x2/2, overlapping 3x3/1 windows, and a non-square stride.
POOLS = [(2, 2, 2, 2), (3, 3, 1, 1), (2, 3, 1, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", POOLS)
def test_max_pool(dtype, pool):
    rng = np.random.default_rng(3)
    # Few distinct values, so windows hold ties (the first maximum wins), and one NaN.
    x = rng.integers(0, 3, (2, 2, 5, 6)).astype(dtype)
    x[1, 0, 2, 3] = np.nan
    KH, KW, SH, SW = pool
    shape = (2, 2, (5 - KH) // SH + 1, (6 - KW) // SW + 1)
    out, idx = np.zeros(shape, dtype), np.zeros(shape, np.int32)
    (c_out, c_idx), (d_out, d_idx) = both("max_pool2d_forward", [x, *pool, out, idx], [5, 6])
    np.testing.assert_array_equal(d_out, c_out)
    np.testing.assert_array_equal(d_idx, c_idx)

    g = rand(rng, shape, dtype)
    (c,), (d,) = both("max_pool2d_backward", [g, c_idx, np.full_like(x, np.nan)], [2])
    np.testing.assert_allclose(d, c, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", POOLS)
def test_avg_pool(dtype, pool):
    rng = np.random.default_rng(4)
    x = rand(rng, (2, 2, 5, 6), dtype)
    KH, KW, SH, SW = pool
    out = np.zeros((2, 2, (5 - KH) // SH + 1, (6 - KW) // SW + 1), dtype)
    (c,), (d,) = both("avg_pool2d_forward", [x, *pool, out], [5])
    np.testing.assert_allclose(d, c, **tol(dtype))

    g = rand(rng, out.shape, dtype)
    (c,), (d,) = both("avg_pool2d_backward", [g, *pool, np.full_like(x, np.nan)], [5])
    np.testing.assert_allclose(d, c, **tol(dtype))
