"""CUDA softmax cross-entropy against the CPU kernels."""

import numpy as np
import pytest
from numba import cuda

from nanoml.kernels import cpu
from nanoml.kernels import cuda as gpu


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1000.0])  # 1000: exp would overflow without the shift
def test_softmax_xent_forward_and_backward(dtype, scale):
    rng = np.random.default_rng(0)
    logits = (scale * rng.standard_normal((37, 5))).astype(dtype)  # two warps of rows
    labels = rng.integers(0, 5, 37)
    probs, losses = np.empty_like(logits), np.empty(37, dtype)
    cpu.softmax_xent_forward(logits, labels, probs, losses)
    d_logits, d_labels = cuda.to_device(logits), cuda.to_device(labels)
    d_probs, d_losses = cuda.device_array_like(probs), cuda.device_array_like(losses)
    gpu.softmax_xent_forward(d_logits, d_labels, d_probs, d_losses)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(d_probs.copy_to_host(), probs, rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(d_losses.copy_to_host(), losses, rtol=rtol, atol=1e-6)
    assert np.isfinite(losses).all()

    grad = np.empty_like(probs)
    cpu.softmax_xent_backward(probs, labels, 1 / 37, grad)
    d_grad = cuda.device_array_like(grad)
    gpu.softmax_xent_backward(d_probs, d_labels, 1 / 37, d_grad)
    np.testing.assert_allclose(d_grad.copy_to_host(), grad, rtol=rtol, atol=1e-8)
