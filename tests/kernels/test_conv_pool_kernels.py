"""The fused convolution + max pooling + ReLU kernels against a plain NumPy reference."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from nanoml.kernels import cpu

DTYPES = [np.float32, np.float64]
# (N, C, H, W, M, KH, KW, PH, PW): the unrolled 3x3 conv and 2x2 pool and generic sizes,
# batch 1, several input channels, pools that leave conv rows and/or columns uncovered.
SHAPES = [
    (2, 1, 8, 8, 3, 3, 3, 2, 2),
    (1, 2, 9, 7, 2, 3, 3, 2, 2),
    (3, 1, 7, 9, 4, 2, 3, 3, 2),
    (2, 2, 10, 9, 2, 3, 3, 3, 3),
    (1, 3, 5, 4, 2, 1, 1, 1, 1),
    (1, 1, 9, 8, 17, 3, 3, 2, 2),  # one input channel, 3x3, 2x2: vectorised over channels
]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def serial(kernel):
    """The kernel's Python function (itself when NUMBA_DISABLE_JIT=1 left it one)."""
    return getattr(kernel, "py_func", kernel)


def reference(x, w, b, PH, PW):
    """(out, idx): conv, first maximum of each window (argmax as r * W + s), ReLU."""
    KH, KW = w.shape[2:]
    conv = np.einsum("ncijhw,mchw->nmij", sliding_window_view(x, (KH, KW), axis=(2, 3)), w)
    conv += b[:, None, None]
    N, M, OH, OW = conv.shape
    QH, QW = OH // PH, OW // PW
    windows = conv[:, :, : QH * PH, : QW * PW].reshape(N, M, QH, PH, QW, PW)
    windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(N, M, QH, QW, PH * PW)
    first = windows.argmax(axis=-1)
    dr, ds = np.divmod(first, PW)
    rows = np.arange(QH)[:, None] * PH + dr
    columns = np.arange(QW)[None, :] * PW + ds
    out = np.maximum(np.take_along_axis(windows, first[..., None], -1)[..., 0], 0)
    return out, (rows * x.shape[3] + columns).astype(np.int32)


def reference_grads(x, w, out, idx, g):
    """(input, weight, bias) gradients: each live output's gradient through its argmax."""
    KH, KW = w.shape[2:]
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    gb = np.zeros(w.shape[0], x.dtype)
    for n, o, i, j in zip(*np.nonzero(out > 0), strict=True):
        r, s = divmod(int(idx[n, o, i, j]), x.shape[3])
        gx[n, :, r : r + KH, s : s + KW] += g[n, o, i, j] * w[o]
        gw[o] += g[n, o, i, j] * x[n, :, r : r + KH, s : s + KW]
        gb[o] += g[n, o, i, j]
    return gx, gw, gb


def forward(x, w, b, PH, PW, kernel=cpu.conv2d_max_pool_relu_forward):
    N, _, H, W = x.shape
    OH, OW = H - w.shape[2] + 1, W - w.shape[3] + 1
    out = np.full((N, w.shape[0], OH // PH, OW // PW), np.nan, x.dtype)
    idx = np.full(out.shape, -1, np.int32)
    kernel(x, w, b, PH, PW, out, idx, np.empty((N, (out.shape[2] * PH - 1) * W + OW), x.dtype))
    return out, idx


def backward(x, w, out, idx, g, PH, PW, kernels=(cpu.conv2d_max_pool_relu_backward_weight,
                                                 cpu.conv2d_max_pool_relu_backward_input)):
    gx, gw, gb = np.full_like(x, np.nan), np.full_like(w, np.nan), np.full(w.shape[0], np.nan,
                                                                            x.dtype)
    kernels[0](x, out, idx, g, PH, PW, gw, gb)
    kernels[1](w, out, idx, g, gx)
    return gx, gw, gb


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradients_match_the_reference(dtype, shape):
    N, C, H, W, M, KH, KW, PH, PW = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((M, C, KH, KW)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    b[0] = -100  # a channel whose ReLU passes nothing
    out, idx = forward(x, w, b, PH, PW)
    ref_out, ref_idx = reference(x, w, b, PH, PW)
    np.testing.assert_allclose(out, ref_out, **tol(dtype))
    np.testing.assert_array_equal(idx, ref_idx)
    assert 0 < np.count_nonzero(out) < out.size  # both live and dead outputs are covered

    g = rng.standard_normal(out.shape).astype(dtype)
    for ours, theirs in zip(backward(x, w, out, idx, g, PH, PW), reference_grads(x, w, out, idx, g),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, **tol(dtype))


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2]])
def test_ties_go_to_the_first_maximum_and_zero_passes_no_gradient(shape):
    N, C, H, W, M, KH, KW, PH, PW = shape
    rng = np.random.default_rng(1)
    # Small integers: many windows hold equal conv outputs, and many maxima are exactly 0.
    x = rng.integers(0, 2, (N, C, H, W)).astype(np.float64)
    w = rng.integers(-1, 2, (M, C, KH, KW)).astype(np.float64)
    b = np.full(M, -1.0)
    out, idx = forward(x, w, b, PH, PW)
    ref_out, ref_idx = reference(x, w, b, PH, PW)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(idx, ref_idx)
    assert np.any(out == 0) and np.any(out > 0)
    g = np.ones(out.shape)
    for ours, theirs in zip(backward(x, w, out, idx, g, PH, PW), reference_grads(x, w, out, idx, g),
                            strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_nan_wins_its_window_and_passes_no_gradient():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 4] = np.nan  # in the receptive fields of conv outputs (1, 3) and (2, 3)
    w, b = np.ones((1, 1, 2, 2)), np.zeros(1)
    out, idx = forward(x, w, b, 2, 2)
    assert np.isnan(out[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 1 * 5 + 3
    assert np.isnan(out[0, 0, 1, 1]) and idx[0, 0, 1, 1] == 2 * 5 + 3
    assert np.count_nonzero(np.isnan(out)) == 2
    gx, gw, gb = backward(x, w, out, idx, np.ones(out.shape), 2, 2)
    np.testing.assert_array_equal(gb, [0.0])
    np.testing.assert_array_equal(gx, np.zeros_like(x))


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[1], SHAPES[2]])
def test_parallel_kernels_match_their_serial_run(shape):
    N, C, H, W, M, KH, KW, PH, PW = shape
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, H, W))
    w, b = rng.standard_normal((M, C, KH, KW)), rng.standard_normal(M)
    out, idx = forward(x, w, b, PH, PW)
    serial_out, serial_idx = forward(x, w, b, PH, PW, serial(cpu.conv2d_max_pool_relu_forward))
    np.testing.assert_allclose(out, serial_out, rtol=1e-13)
    np.testing.assert_array_equal(idx, serial_idx)
    g = rng.standard_normal(out.shape)
    serial_kernels = (serial(cpu.conv2d_max_pool_relu_backward_weight),
                      serial(cpu.conv2d_max_pool_relu_backward_input))
    for ours, theirs in zip(backward(x, w, out, idx, g, PH, PW),
                            backward(x, w, out, idx, g, PH, PW, serial_kernels), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-14)


def test_nan_wins_in_the_channel_vectorised_route():
    x = np.zeros((1, 1, 8, 8), np.float32)
    x[0, 0, 3, 4] = np.nan
    w, b = np.ones((17, 1, 3, 3), np.float32), np.zeros(17, np.float32)
    out, idx = forward(x, w, b, 2, 2)
    ref_out, _ = reference(x, w, b, 2, 2)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref_out))
    assert np.isnan(out).any()
    gx, gw, gb = backward(x, w, out, idx, np.ones(out.shape, np.float32), 2, 2)
    np.testing.assert_array_equal(gb, np.zeros(17, np.float32))
