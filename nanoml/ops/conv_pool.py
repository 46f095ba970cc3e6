"""The fused convolution + max pooling + ReLU of a first layer, as one differentiable op.

``relu(max_pool2d(conv2d(x, weight, bias), pool))`` computed without storing the convolution:
the kernels of `nanoml.kernels.cpu.conv` (or their twin in the operands' backend) pool each
conv plane as it is made and keep only the argmax of every window, so the backward
pass visits a quarter of the conv outputs.
"""

import numpy as np

from nanoml.autograd import apply
from nanoml.errors import InputError
from nanoml.ops.conv import _out_size, as_pair, conv_operands


def conv2d_max_pool_relu(x, weight, bias=None, pool=2):
    """``relu(max_pool2d(conv2d(x, weight, bias), pool))``: stride-1 convolution without
    padding of `x` (N, C, H, W) by `weight` (M, C, KH, KW) plus `bias` (M,) or None, then
    the max over non-overlapping `pool` windows (an int or a (height, width) pair), then ReLU.

    Values and gradients equal the unfused chain's (ties go to the first maximum of a window,
    NaN wins, the ReLU's gradient at 0 is 0).
    """
    op = "conv2d_max_pool_relu"
    data, w, b, xp = conv_operands(op, x, weight, bias)
    k = xp.kernels
    N, C, H, W = data.shape
    M, _, KH, KW = w.shape
    PH, PW = as_pair(pool, f"{op} pool", 1)
    OH = _out_size(H, KH, 1, 0, op, "height")
    OW = _out_size(W, KW, 1, 0, op, "width")
    if PH > OH or PW > OW:
        raise InputError(
            f"{op}: pool {(PH, PW)} is larger than the convolution's output {(OH, OW)}"
        )
    QH, QW = OH // PH, OW // PW
    out = xp.empty((N, M, QH, QW), data.dtype)
    idx = xp.empty(out.shape, np.int32)
    acc = xp.empty((N, (QH * PH - 1) * W + OW), data.dtype)
    k.conv2d_max_pool_relu_forward(data, w, b, PH, PW, out, idx, acc)

    def backward(g):
        gx = gw = gb = None
        if x.requires_grad:
            gx = xp.empty_like(data)
            k.conv2d_max_pool_relu_backward_input(w, out, idx, g, gx)
        if weight.requires_grad or (bias is not None and bias.requires_grad):
            gw, gb = xp.empty_like(w), xp.empty_like(b)
            k.conv2d_max_pool_relu_backward_weight(data, out, idx, g, PH, PW, gw, gb)
        return gx, gw, gb

    return apply(out, (x, weight, bias), backward)
