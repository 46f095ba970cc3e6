"""CUDA fused convolution + max pooling + ReLU kernels against the CPU kernels, and the op
on the device against the op on the CPU."""

import numpy as np
import pytest

import nanoml.functional as F
from nanoml.tensor import Tensor

from .test_conv import both, tol


# (N, C, M, H, W, K, PH, PW): the second has conv rows and columns that no window covers.
# The weight gradient runs a block per weight and per bias in the slow simulator: few weights.
@pytest.mark.parametrize(("dtype", "shape"), [(np.float32, (2, 1, 2, 5, 6, 2, 2, 2)),
                                              (np.float64, (1, 2, 2, 6, 5, 2, 2, 3))])
def test_fused_conv_pool_relu_and_its_gradients(dtype, shape):
    rng = np.random.default_rng(0)
    N, C, M, H, W, K, PH, PW = shape
    QH, QW = (H - K + 1) // PH, (W - K + 1) // PW
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((M, C, K, K)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    b[0] = -100  # a channel whose ReLU passes nothing
    out = np.full((N, M, QH, QW), np.nan, dtype)
    idx = np.full(out.shape, -1, np.int32)
    acc = np.empty((N, (QH * PH - 1) * W + W - K + 1), dtype)
    host, device = both("conv2d_max_pool_relu_forward", [x, w, b, PH, PW, out, idx, acc], [5, 6])
    np.testing.assert_allclose(device[0], host[0], **tol(dtype))
    np.testing.assert_array_equal(device[1], host[1])
    out, idx = host
    assert 0 < np.count_nonzero(out) < out.size  # some outputs pass gradient, some do not

    g = rng.standard_normal(out.shape).astype(dtype)
    grad_w, grad_b = np.full_like(w, np.nan), np.full_like(b, np.nan)
    host, device = both("conv2d_max_pool_relu_backward_weight",
                        [x, out, idx, g, PH, PW, grad_w, grad_b], [6, 7])
    for c, d in zip(host, device, strict=True):
        np.testing.assert_allclose(d, c, **tol(dtype))

    grad_x = np.full_like(x, np.nan)
    (c,), (d,) = both("conv2d_max_pool_relu_backward_input", [w, out, idx, g, grad_x], [4])
    np.testing.assert_allclose(d, c, **tol(dtype))


def test_the_op_on_the_device_computes_what_it_does_on_the_cpu():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((2, 1, 2, 2)),
              rng.standard_normal(2)]

    def run(device):
        leaves = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
        out = F.conv2d_max_pool_relu(*[leaf.to(device) for leaf in leaves], pool=2)
        weights = np.linspace(-1, 1, out.data.size).reshape(out.shape)
        (out * Tensor(weights, dtype=np.float64).to(device)).sum().backward()
        return [out.cpu().data] + [leaf.grad for leaf in leaves]

    for got, expected in zip(run("cuda"), run("cpu"), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
