"""Convolution and pooling kernels against plain NumPy references, and serial runs of themselves.

Each parallel kernel is also run as plain Python (``py_func``, where ``prange`` is ``range``):
the same arithmetic done serially, so a race between iterations would show as a mismatch.
"""

import numba
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from nanoml.kernels import cpu

DTYPES = [np.float32, np.float64]
# (N, C, H, W, M, KH, KW, stride, padding): batch 1, 1x1, 3x3 (unrolled), 5x5 and non-square
# kernels, odd and
# non-square images, stride > 1, padding, and padding wider than the kernel.
CONV_SHAPES = [
    (2, 1, 7, 6, 3, 3, 3, (1, 1), (0, 0)),
    (1, 2, 5, 5, 2, 1, 1, (1, 1), (0, 0)),
    (2, 3, 6, 7, 4, 3, 2, (2, 1), (1, 0)),
    (1, 2, 3, 4, 2, 2, 2, (1, 1), (3, 1)),
    (3, 4, 9, 8, 2, 5, 5, (3, 2), (2, 2)),
    (1, 2, 6, 7, 2, 5, 5, (1, 1), (2, 1)),
    (1, 1, 1, 1, 2, 1, 1, (1, 1), (0, 0)),
]
DIRECT_SHAPES = [s for s in CONV_SHAPES if s[7] == (1, 1)]


def serial(kernel):
    """The kernel's Python function (itself when NUMBA_DISABLE_JIT=1 left it one)."""
    return getattr(kernel, "py_func", kernel)


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def patches(x, KH, KW, stride, padding):
    """(N, C, OH, OW, KH, KW) view of the zero-padded input's windows."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::sh, ::sw]


def ref_conv2d(x, w, b, stride, padding):
    out = np.einsum("ncijhw,mchw->nmij", patches(x, *w.shape[2:], stride, padding), w)
    return out + b[:, None, None]


def ref_conv2d_grads(x, w, g, stride, padding):
    """(input, weight, bias) gradients of `ref_conv2d` by scattering every window back."""
    (sh, sw), (ph, pw) = stride, padding
    M, C, KH, KW = w.shape
    N, _, OH, OW = g.shape
    gxp = np.zeros((N, C, x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), x.dtype)
    for i in range(OH):
        for j in range(OW):
            window = gxp[:, :, i * sh : i * sh + KH, j * sw : j * sw + KW]
            window += np.einsum("nm,mchw->nchw", g[:, :, i, j], w)
    gx = gxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    gw = np.einsum("ncijhw,nmij->mchw", patches(x, KH, KW, stride, padding), g)
    return gx, gw, g.sum(axis=(0, 2, 3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad", [(0, 0), (2, 1), (-1, 1), (1, -2)])
def test_pad2d(dtype, pad):
    rng = np.random.default_rng(0)
    x = rand(rng, (2, 3, 4, 5), dtype)
    ph, pw = pad
    out = np.full((2, 3, 4 + 2 * ph, 5 + 2 * pw), np.nan, dtype)
    cpu.pad2d(x, ph, pw, out)
    big = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))  # every pad above fits in 2
    expected = big[:, :, 2 - ph : 2 - ph + out.shape[2], 2 - pw : 2 - pw + out.shape[3]]
    np.testing.assert_array_equal(out, expected)


def run_direct(x, w, b, padding, kernel=cpu.conv2d_forward_direct):
    ph, pw = padding
    N, C, H, W = x.shape
    xp = np.empty((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
    cpu.pad2d(x, ph, pw, xp)
    OH, OW = xp.shape[2] - w.shape[2] + 1, xp.shape[3] - w.shape[3] + 1
    out = np.empty((N, w.shape[0], OH, OW), x.dtype)
    kernel(xp, w, b, out, np.empty((N, (OH - 1) * xp.shape[3] + OW), x.dtype))
    return xp, out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", DIRECT_SHAPES)
def test_conv2d_direct_forward_and_weight_gradient(dtype, shape):
    N, C, H, W, M, KH, KW, stride, padding = shape
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, (N, C, H, W), dtype), rand(rng, (M, C, KH, KW), dtype), rand(rng, M, dtype)
    xp, out = run_direct(x, w, b, padding)
    np.testing.assert_allclose(out, ref_conv2d(x, w, b, stride, padding), **tol(dtype))

    g = rand(rng, out.shape, dtype)
    gw, gb = np.full_like(w, np.nan), np.full_like(b, np.nan)  # must be overwritten
    scratch = np.empty((M, (out.shape[2] - 1) * xp.shape[3] + out.shape[3]), dtype)
    cpu.conv2d_backward_weight_direct(xp, g, gw, gb, scratch)
    _, ref_gw, ref_gb = ref_conv2d_grads(x, w, g, stride, padding)
    np.testing.assert_allclose(gw, ref_gw, **tol(dtype))
    np.testing.assert_allclose(gb, ref_gb, **tol(dtype))


def test_direct_kernels_match_their_serial_run():
    N, C, H, W, M, KH, KW, _, padding = DIRECT_SHAPES[0]
    rng = np.random.default_rng(2)
    x, w = rand(rng, (N, C, H, W), np.float64), rand(rng, (M, C, KH, KW), np.float64)
    b = rand(rng, M, np.float64)
    xp, out = run_direct(x, w, b, padding)
    _, serial_out = run_direct(x, w, b, padding, serial(cpu.conv2d_forward_direct))
    np.testing.assert_allclose(out, serial_out, rtol=1e-13)

    g = rand(rng, out.shape, np.float64)
    results = []
    for kernel in (cpu.conv2d_backward_weight_direct, serial(cpu.conv2d_backward_weight_direct)):
        gw, gb = np.empty_like(w), np.empty_like(b)
        kernel(xp, g, gw, gb, np.empty((M, (out.shape[2] - 1) * W + out.shape[3])))
        results.append((gw, gb))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-13)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-13)


def ref_im2col(x, KH, KW, stride, padding):
    p = patches(x, KH, KW, stride, padding)  # (N, C, OH, OW, KH, KW)
    N, C, OH, OW = p.shape[:4]
    return p.transpose(1, 4, 5, 0, 2, 3).reshape(C * KH * KW, N * OH * OW)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_im2col_and_col2im(dtype, shape):
    N, C, H, W, M, KH, KW, stride, padding = shape
    rng = np.random.default_rng(3)
    x = rand(rng, (N, C, H, W), dtype)
    OH, OW = out_size(H, KH, stride[0], padding[0]), out_size(W, KW, stride[1], padding[1])
    cols = np.full((C * KH * KW, N * OH * OW), np.nan, dtype)
    cpu.im2col(x, KH, KW, *stride, *padding, cols)
    np.testing.assert_array_equal(cols, ref_im2col(x, KH, KW, stride, padding))

    # col2im is im2col's adjoint: the input gradient of cols = im2col(x) under weights g.
    g = rand(rng, cols.shape, dtype)
    gx = np.full_like(x, np.nan)
    cpu.col2im(g, KH, KW, *stride, *padding, gx)
    ph, pw = padding
    gxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype)
    g6 = g.reshape(C, KH, KW, N, OH, OW).transpose(3, 0, 1, 2, 4, 5)
    for kh in range(KH):
        for kw in range(KW):
            rows = slice(kh, kh + (OH - 1) * stride[0] + 1, stride[0])
            columns = slice(kw, kw + (OW - 1) * stride[1] + 1, stride[1])
            gxp[:, :, rows, columns] += g6[:, :, kh, kw]
    np.testing.assert_allclose(gx, gxp[:, :, ph : ph + H, pw : pw + W], **tol(dtype))


def test_im2col_kernels_match_their_serial_run():
    N, C, H, W, M, KH, KW, stride, padding = CONV_SHAPES[2]
    rng = np.random.default_rng(4)
    x = rand(rng, (N, C, H, W), np.float64)
    OH, OW = out_size(H, KH, stride[0], padding[0]), out_size(W, KW, stride[1], padding[1])
    cols = [np.empty((C * KH * KW, N * OH * OW)) for _ in range(2)]
    cpu.im2col(x, KH, KW, *stride, *padding, cols[0])
    serial(cpu.im2col)(x, KH, KW, *stride, *padding, cols[1])
    np.testing.assert_array_equal(cols[0], cols[1])
    gx = [np.empty_like(x) for _ in range(2)]
    cpu.col2im(cols[0], KH, KW, *stride, *padding, gx[0])
    serial(cpu.col2im)(cols[0], KH, KW, *stride, *padding, gx[1])
    np.testing.assert_array_equal(gx[0], gx[1])


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the GEMM tiles are a Numba intrinsic")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CONV_SHAPES + [(17, 3, 6, 5, 4, 3, 3, (1, 1), (1, 1))])
def test_gemm_convolution_and_its_gradients(dtype, shape):
    # The last shape has more samples than the kernels' chunks, the others fewer.
    N, C, H, W, M, KH, KW, stride, padding = shape
    rng = np.random.default_rng(9)
    x, w, b = rand(rng, (N, C, H, W), dtype), rand(rng, (M, C, KH, KW), dtype), rand(rng, M, dtype)
    geometry = (KH, KW, *stride, *padding)
    OH, OW = out_size(H, KH, stride[0], padding[0]), out_size(W, KW, stride[1], padding[1])
    w2 = w.reshape(M, -1)
    out = np.full((N, M, OH, OW), np.nan, dtype)
    cpu.conv2d_forward_gemm(x, w2, b, *geometry, out)
    np.testing.assert_allclose(out, ref_conv2d(x, w, b, stride, padding), **tol(dtype))

    g = rand(rng, out.shape, dtype)
    ref_gx, ref_gw, ref_gb = ref_conv2d_grads(x, w, g, stride, padding)
    gx = np.full_like(x, np.nan)
    cpu.conv2d_backward_input_gemm(g, np.ascontiguousarray(w2.T), *geometry, gx)
    np.testing.assert_allclose(gx, ref_gx, **tol(dtype))
    gw_t, gb = np.full(w2.T.shape, np.nan, dtype), np.full_like(b, np.nan)
    cpu.conv2d_backward_weight_gemm(x, g, *geometry, gw_t, gb)
    np.testing.assert_allclose(gw_t.T.reshape(w.shape), ref_gw, **tol(dtype))
    np.testing.assert_allclose(gb, ref_gb, **tol(dtype))


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the GEMM tiles are a Numba intrinsic")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", [(13, 7, 37), (64, 288, 50), (1, 3, 1), (5, 0, 7)])
def test_matmul_at_im2col_shapes(dtype, m, k, n):
    rng = np.random.default_rng(8)
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    for left in (a, np.ascontiguousarray(a.T).T):  # a transposed view works too
        c = np.full((m, n), np.nan, dtype)
        cpu.matmul(left, b, c)
        np.testing.assert_allclose(c, a @ b, **tol(dtype))
        serial_c = np.full((m, n), np.nan, dtype)
        serial(cpu.matmul)(left, b, serial_c)
        np.testing.assert_array_equal(c, serial_c)


# (N, C, H, W, KH, KW, SH, SW): the unrolled sizes (2x2/2, 3x3/2, 3x3/1) and generic ones,
# odd and non-square planes with leftover rows/columns, overlapping windows, 1x1 windows.
POOL_SHAPES = [
    (2, 3, 6, 6, 2, 2, 2, 2),
    (1, 2, 7, 5, 2, 2, 2, 2),
    (2, 1, 7, 9, 3, 3, 2, 2),
    (1, 2, 6, 5, 3, 3, 1, 1),
    (2, 2, 5, 7, 2, 3, 1, 2),
    (1, 1, 4, 4, 1, 1, 1, 1),
    (1, 3, 8, 6, 4, 2, 3, 2),
]


def pool_windows(x, KH, KW, SH, SW):
    """(N, C, OH, OW, KH*KW) windows in row-major window order."""
    v = sliding_window_view(x, (KH, KW), axis=(2, 3))[:, :, ::SH, ::SW]
    return v.reshape(v.shape[:4] + (KH * KW,))


def ref_pool_backward(g, x_shape, KH, KW, SH, SW, weights):
    """Scatter g * weights[..., k] onto window element k: the adjoint of a window reduction."""
    gx = np.zeros(x_shape, g.dtype)
    OH, OW = g.shape[2:]
    for i in range(OH):
        for j in range(OW):
            k = weights[:, :, i, j].reshape(g.shape[:2] + (KH, KW))
            gx[:, :, i * SH : i * SH + KH, j * SW : j * SW + KW] += g[:, :, i, j, None, None] * k
    return gx


def run_max_pool(x, shape, kernel=cpu.max_pool2d_forward):
    KH, KW, SH, SW = shape[4:]
    OH, OW = out_size(x.shape[2], KH, SH, 0), out_size(x.shape[3], KW, SW, 0)
    out = np.empty(x.shape[:2] + (OH, OW), x.dtype)
    idx = np.empty(out.shape, np.int32)
    kernel(x, KH, KW, SH, SW, out, idx)
    return out, idx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_max_pool2d(dtype, shape):
    N, C, H, W, KH, KW, SH, SW = shape
    rng = np.random.default_rng(5)
    x = rand(rng, (N, C, H, W), dtype)
    x[0, 0, 0, :2] = 7  # a tie: the first maximum in window order wins
    out, idx = run_max_pool(x, shape)
    windows = pool_windows(x, KH, KW, SH, SW)
    first = windows.argmax(axis=-1)
    np.testing.assert_array_equal(out, windows.max(axis=-1))
    i, j = np.indices(out.shape[2:])
    expected_idx = (i * SH + first // KW) * W + j * SW + first % KW
    np.testing.assert_array_equal(idx, expected_idx)

    g = rand(rng, out.shape, dtype)
    gx = np.full_like(x, np.nan)
    cpu.max_pool2d_backward(g, idx, gx)
    onehot = (np.arange(KH * KW) == first[..., None]).astype(dtype)
    expected = ref_pool_backward(g, x.shape, KH, KW, SH, SW, onehot)
    np.testing.assert_allclose(gx, expected, **tol(dtype))


@pytest.mark.parametrize("shape", [POOL_SHAPES[0], POOL_SHAPES[4]])
def test_max_pool2d_propagates_nan(shape):
    x = np.arange(np.prod(shape[:4]), dtype=np.float32).reshape(shape[:4])
    x[0, 0, 0, 0] = np.nan
    out, idx = run_max_pool(x, shape)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 0
    assert not np.isnan(out[0, 0, 1:, 1:]).any()


def test_pool_kernels_match_their_serial_run():
    rng = np.random.default_rng(6)
    for shape in (POOL_SHAPES[0], POOL_SHAPES[6]):
        KH, KW, SH, SW = shape[4:]
        x = rand(rng, shape[:4], np.float64)
        out, idx = run_max_pool(x, shape)
        s_out, s_idx = run_max_pool(x, shape, serial(cpu.max_pool2d_forward))
        np.testing.assert_array_equal(out, s_out)
        np.testing.assert_array_equal(idx, s_idx)
        g = rand(rng, out.shape, np.float64)
        gx, s_gx = np.empty_like(x), np.empty_like(x)
        cpu.max_pool2d_backward(g, idx, gx)
        serial(cpu.max_pool2d_backward)(g, idx, s_gx)
        np.testing.assert_array_equal(gx, s_gx)
        avg, s_avg = np.empty_like(out), np.empty_like(out)
        cpu.avg_pool2d_forward(x, KH, KW, SH, SW, avg)
        serial(cpu.avg_pool2d_forward)(x, KH, KW, SH, SW, s_avg)
        np.testing.assert_allclose(avg, s_avg, rtol=1e-14)
        cpu.avg_pool2d_backward(g, KH, KW, SH, SW, gx)
        serial(cpu.avg_pool2d_backward)(g, KH, KW, SH, SW, s_gx)
        np.testing.assert_allclose(gx, s_gx, rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_avg_pool2d(dtype, shape):
    N, C, H, W, KH, KW, SH, SW = shape
    rng = np.random.default_rng(7)
    x = rand(rng, (N, C, H, W), dtype)
    OH, OW = out_size(H, KH, SH, 0), out_size(W, KW, SW, 0)
    out = np.full((N, C, OH, OW), np.nan, dtype)
    cpu.avg_pool2d_forward(x, KH, KW, SH, SW, out)
    np.testing.assert_allclose(out, pool_windows(x, KH, KW, SH, SW).mean(axis=-1), **tol(dtype))

    g = rand(rng, out.shape, dtype)
    gx = np.full_like(x, np.nan)
    cpu.avg_pool2d_backward(g, KH, KW, SH, SW, gx)
    even = np.full((N, C, OH, OW, KH * KW), 1 / (KH * KW), dtype)
    expected = ref_pool_backward(g, x.shape, KH, KW, SH, SW, even)
    np.testing.assert_allclose(gx, expected, **tol(dtype))
