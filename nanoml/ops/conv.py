"""Convolution and pooling ops over NCHW tensors, as torch.nn.functional's.

Each op checks its arguments, calls the kernels of its operands' backend (the same names
and arguments on every device, see `nanoml.kernels.cpu.conv`) on the arrays, allocating
with that backend, and records a backward beside its forward. The backward only computes
the gradients that a parent needs: the input gradient of a first layer (whose input is data)
is skipped.
"""

import numpy as np

from nanoml import backend
from nanoml.autograd import Tensor, apply
from nanoml.errors import InputError

# The direct (stride 1) convolution takes at most this many input channels and kernel taps
# per channel; the one-sample-at-a-time im2col route takes the rest. Measured at batch 128 on
# 2 threads, forward + weight gradient, direct vs im2col: 3x3 1->32 on 28x28 4.9 vs 6.2 ms;
# but 3x3 3->32 on 32x32 (padding 1) 15.3 vs 12.7 ms, 3x3 4->16 on 16x16 3.2 vs 2.6 ms and
# 5x5 1->32 on 28x28 7.2 vs 6.8 ms.
DIRECT_MAX_CHANNELS = 2
DIRECT_MAX_TAPS = 9


def direct_route(weight_shape, stride):
    """Whether a convolution by a weight of `weight_shape` (M, C, KH, KW) at `stride` (a
    pair) takes the direct route rather than im2col."""
    _, C, KH, KW = weight_shape
    return tuple(stride) == (1, 1) and C <= DIRECT_MAX_CHANNELS and KH * KW <= DIRECT_MAX_TAPS


def as_pair(value, name, minimum):
    """`value` (an int or a pair of ints) as a pair, each at least `minimum`."""
    if isinstance(value, (int, np.integer)):
        pair = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise InputError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _image(x, op):
    """(the C-contiguous (N, C, H, W) array of Tensor `x`, its backend)."""
    if not isinstance(x, Tensor):
        raise InputError(f"{op} expects a Tensor input, got {type(x).__name__}")
    if x.data.ndim != 4:
        raise InputError(f"{op} expects input of shape (N, C, H, W), got shape {x.data.shape}")
    xp = backend.of(x.data)
    return xp.contiguous(x.data), xp


def _permuted(xp, a, axes):
    """A C-contiguous copy of ``a.transpose(axes)``."""
    return xp.contiguous(xp.transpose(a, axes))


def _out_size(size, kernel, stride, pad, op, axis):
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise InputError(
            f"{op}: kernel {axis} {kernel} is larger than the input {axis} {size}"
            + (f" padded by {pad} on each side" if pad else "")
        )
    return out


def conv_operands(op, x, weight, bias):
    """The checked arrays of a convolution's input (N, C, H, W), weight (M, C, KH, KW) and
    bias (M,; zeros when None), and the backend of their device."""
    data, _ = _image(x, op)
    xp = backend.common(op, x, weight, bias)
    w = xp.contiguous(weight.data)
    if w.ndim != 4:
        raise InputError(
            f"{op} expects weight of shape (out_channels, in_channels, KH, KW), got shape "
            f"{tuple(w.shape)}"
        )
    C, (M, CW) = data.shape[1], w.shape[:2]
    if C != CW:
        raise InputError(f"{op} input has {C} channels but the weight expects {CW}")
    if w.dtype != data.dtype:
        raise InputError(f"{op} weight is {w.dtype} but the input is {data.dtype}")
    if bias is not None and bias.shape != (M,):
        raise InputError(f"{op} expects bias of shape ({M},), got shape {bias.shape}")
    if bias is not None and bias.dtype != data.dtype:
        raise InputError(f"{op} bias is {bias.dtype} but the input is {data.dtype}")
    b = xp.zeros(M, data.dtype) if bias is None else xp.contiguous(bias.data)
    return data, w, b, xp


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D cross-correlation: `x` (N, C, H, W), `weight` (M, C, KH, KW), `bias` (M,) or None.

    `stride` and `padding` (zeros) are ints or (height, width) pairs.
    """
    out, backward, _ = conv2d_parts(x, weight, bias, stride, padding)
    return apply(out, (x, weight, bias), backward)


def conv2d_parts(x, weight, bias, stride, padding):
    """(output array, backward closure, backend) of `conv2d`, for the fused ops that go on
    working on the output before it joins the graph."""
    data, w, b, xp = conv_operands("conv2d", x, weight, bias)
    N, C, H, W = data.shape
    M, _, KH, KW = w.shape
    sh, sw = as_pair(stride, "conv2d stride", 1)
    ph, pw = as_pair(padding, "conv2d padding", 0)
    OH = _out_size(H, KH, sh, ph, "conv2d", "height")
    OW = _out_size(W, KW, sw, pw, "conv2d", "width")
    if direct_route(w.shape, (sh, sw)):
        out, backward = _conv2d_direct(xp, x, weight, bias, data, w, b, ph, pw, OH, OW)
    else:
        out, backward = _conv2d_gemm(xp, x, weight, bias, data, w, b, (sh, sw, ph, pw), OH, OW)
    return out, backward, xp


def _flipped_transposed(xp, w):
    """``w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)``, C-contiguous."""
    flip = slice(None, None, -1)
    return _permuted(xp, xp.getitem(w, (slice(None), slice(None), flip, flip)), (1, 0, 2, 3))


def _conv2d_direct(xp, x, weight, bias, data, w, b, ph, pw, OH, OW):
    """Forward output and backward closure of the direct (stride 1) route; `xp` is the
    backend of the data's device."""
    k = xp.kernels
    N, C, H, W = data.shape
    M, _, KH, KW = w.shape
    if ph or pw:
        padded = xp.empty((N, C, H + 2 * ph, W + 2 * pw), data.dtype)
        k.pad2d(data, ph, pw, padded)
    else:
        padded = data
    pitch = padded.shape[3]
    out = xp.empty((N, M, OH, OW), data.dtype)
    k.conv2d_forward_direct(padded, w, b, out, xp.empty((N, (OH - 1) * pitch + OW), data.dtype))

    def backward(g):
        gx = gw = gb = None
        if x.requires_grad:
            # The input gradient is a stride-1 convolution of the output gradient, padded
            # to "full" size, with the kernel flipped and its channel axes swapped.
            gp = xp.empty((N, M, H + KH - 1, W + KW - 1), g.dtype)
            k.pad2d(g, KH - 1 - ph, KW - 1 - pw, gp)
            gx = xp.empty_like(data)
            scratch = xp.empty((N, (H - 1) * gp.shape[3] + W), g.dtype)
            k.conv2d_forward_direct(gp, _flipped_transposed(xp, w), xp.zeros(C, g.dtype), gx,
                                    scratch)
        if weight.requires_grad or (bias is not None and bias.requires_grad):
            gw, gb = xp.empty_like(w), xp.empty_like(b)
            scratch = xp.empty((M, (OH - 1) * pitch + OW), g.dtype)
            k.conv2d_backward_weight_direct(padded, g, gw, gb, scratch)
        return gx, gw, gb

    return out, backward


def _conv2d_gemm(xp, x, weight, bias, data, w, b, geometry, OH, OW):
    """Forward output and backward closure of the im2col route: each sample's patches
    unfolded into columns, times the weight as a matrix (the kernel table's GEMM, one sample
    at a time: see `nanoml.kernels.cpu.conv.conv2d_forward_gemm`)."""
    k = xp.kernels
    N, C, H, W = data.shape
    M, _, KH, KW = w.shape
    w2 = w.reshape(M, C * KH * KW)
    out = xp.empty((N, M, OH, OW), data.dtype)
    k.conv2d_forward_gemm(data, w2, b, KH, KW, *geometry, out)

    def backward(g):
        gx = gw = gb = None
        if x.requires_grad:
            gx = xp.empty_like(data)
            k.conv2d_backward_input_gemm(g, _permuted(xp, w2, (1, 0)), KH, KW, *geometry, gx)
        if weight.requires_grad or (bias is not None and bias.requires_grad):
            gw_t, gb = xp.empty((C * KH * KW, M), data.dtype), xp.empty_like(b)
            k.conv2d_backward_weight_gemm(data, g, KH, KW, *geometry, gw_t, gb)
            gw = _permuted(xp, gw_t, (1, 0)).reshape(w.shape)
        return gx, gw, gb

    return out, backward


def _pool_geometry(data, kernel_size, stride, op):
    """(KH, KW, SH, SW, OH, OW) of a pooling of `data`; stride defaults to the kernel."""
    KH, KW = as_pair(kernel_size, f"{op} kernel_size", 1)
    SH, SW = (KH, KW) if stride is None else as_pair(stride, f"{op} stride", 1)
    OH = _out_size(data.shape[2], KH, SH, 0, op, "height")
    OW = _out_size(data.shape[3], KW, SW, 0, op, "width")
    return KH, KW, SH, SW, OH, OW


def max_pool2d(x, kernel_size, stride=None):
    """Max over each kernel_size window of (N, C, H, W) `x`, no padding; stride defaults
    to the window.

    The gradient goes to each window's first maximum (NaN counts as the maximum).
    """
    data, xp = _image(x, "max_pool2d")
    out, backward = max_pool2d_parts(xp, data, kernel_size, stride)
    return apply(out, (x,), lambda g: (backward(g),))


def max_pool2d_parts(xp, data, kernel_size, stride):
    """(pooled array, closure from its gradient to the gradient of `data`) of `max_pool2d`
    over the array `data` on backend `xp`."""
    KH, KW, SH, SW, OH, OW = _pool_geometry(data, kernel_size, stride, "max_pool2d")
    k = xp.kernels
    out = xp.empty(data.shape[:2] + (OH, OW), data.dtype)
    idx = xp.empty(out.shape, np.int32)
    k.max_pool2d_forward(data, KH, KW, SH, SW, out, idx)
    shape, dtype = data.shape, data.dtype  # not `data`: it may be freed before the backward

    def backward(g):
        gx = xp.empty(shape, dtype)
        k.max_pool2d_backward(g, idx, gx)
        return gx

    return out, backward


def avg_pool2d(x, kernel_size, stride=None):
    """Mean over each kernel_size window of (N, C, H, W) `x`, no padding; stride defaults
    to the window."""
    data, xp = _image(x, "avg_pool2d")
    KH, KW, SH, SW, OH, OW = _pool_geometry(data, kernel_size, stride, "avg_pool2d")
    k = xp.kernels
    out = xp.empty(data.shape[:2] + (OH, OW), data.dtype)
    k.avg_pool2d_forward(data, KH, KW, SH, SW, out)

    def backward(g):
        gx = xp.empty_like(data)
        k.avg_pool2d_backward(g, KH, KW, SH, SW, gx)
        return (gx,)

    return apply(out, (x,), backward)
