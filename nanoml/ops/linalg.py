"""Matrix products. The `@` op is the backend's matmul (NumPy's BLAS on the CPU, a tiled
kernel on a device); Linear's products run the `matmul` kernels of the backend's table,
which on the CPU beat BLAS at a small batch."""

import math

import numpy as np

from nanoml import backend
from nanoml.autograd import Tensor, apply
from nanoml.ops.shape import reshape

_FLOATS = (np.float32, np.float64)


def matmul(a, b):
    """a @ b with NumPy's rules: batched over leading axes, 1-D operands as vectors."""
    if not isinstance(b, Tensor):
        b = Tensor(b, dtype=a.data.dtype)
    if a.data.ndim == 1:
        out = matmul(reshape(a, 1, -1), b)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.data.ndim == 1:
        return reshape(matmul(a, reshape(b, -1, 1)), a.shape[:-1])
    xp = backend.common("matmul", a, b)
    x, w = a.data, b.data

    def backward(g):
        ga = xp.unbroadcast(xp.matmul(g, w, trans_b=True), x.shape) if a.requires_grad else None
        gb = xp.unbroadcast(xp.matmul(x, g, trans_a=True), w.shape) if b.requires_grad else None
        return ga, gb

    return apply(xp.matmul(x, w), (a, b), backward)


def rmatmul(a, b):
    """b @ a for a non-Tensor `b` (the reflected form of `matmul`)."""
    return matmul(Tensor(b, dtype=a.data.dtype), a)


# Linear's forward takes the tiled GEMM (`kernels.matmul` on the transposed weight) from this
# many rows and output features on, and `matmul_nt` below: one dot product per output where
# there are few outputs (a classifier's head), else tiles that read the weight without a
# transposed copy of it, which few rows would not repay (the weight's rows in place against
# a transposed copy of x, or panels packed from the weight's rows).
TILED_MIN_ROWS = 64
TILED_MIN_FEATURES = 32


def linear(x, weight, bias=None):
    """x @ weight.T + bias, as torch's F.linear: weight is (out_features, in_features).

    One fused op: the backward is two GEMMs and a sum instead of a chain of three ops.
    """
    out, backward, _ = linear_parts(x, weight, bias)
    return apply(out, (x, weight, bias), backward)


def linear_parts(x, weight, bias):
    """(output array, backward closure, backend) of `linear`, for the fused ops that go on
    working on the output before it joins the graph."""
    xp = backend.common("linear", x, weight, bias)
    k = xp.kernels
    w = weight.data
    shape = x.shape  # a tuple (a device array's shape may not take negative indices)
    out_features, in_features = weight.shape
    rows = math.prod(shape[:-1])
    # The kernels take one float dtype; the backend's matmul serves the rest, reports shape
    # mismatches and takes empty operands (the kernels' tiles do not).
    own = (x.data.dtype == w.dtype in _FLOATS and shape[-1] == in_features
           and x.data.size > 0 and w.size > 0)
    if own:
        w = xp.contiguous(w)
        x2 = xp.contiguous(x.data.reshape(rows, in_features))
        out = xp.empty((rows, out_features), w.dtype)
        if rows >= TILED_MIN_ROWS and out_features >= TILED_MIN_FEATURES:
            # Enough rows to repay a transposed copy of the weight for the tiled GEMM. The
            # host's packs its panels straight from the transposed view (one pass over the
            # weight, not a copy and then a packing); a device's wants it contiguous.
            w_t = xp.transpose(w, (1, 0))
            k.matmul(x2, w_t if xp.host else xp.contiguous(w_t), out)
        else:
            k.matmul_nt(x2, w, out)
        out = out.reshape(shape[:-1] + (out_features,))
    else:
        out = xp.matmul(x.data, w, trans_b=True)
    if bias is not None:
        out = xp.add(out, bias.data, out=out)

    def backward(g):
        g2 = g.reshape(rows, out_features)
        gx = gw = gb = None
        if x.requires_grad and own:
            gx = xp.empty(x2.shape, w.dtype)
            k.matmul(g2, w, gx)
            gx = gx.reshape(shape)
        elif x.requires_grad:
            gx = xp.matmul(g, w)
        if weight.requires_grad and own:
            gw = xp.empty(w.shape, w.dtype)
            k.matmul_tn(g2, x2, gw)
        elif weight.requires_grad:
            gw = xp.matmul(g2, x.data.reshape(rows, in_features), trans_a=True)
        if bias is not None and bias.requires_grad:
            gb = xp.sum(g2, axis=0)
        return gx, gw, gb

    return out, backward, xp
