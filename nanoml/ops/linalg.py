"""Matrix products. On the CPU GEMMs stay on NumPy's BLAS, except Linear's, where the
kernels of `nanoml.kernels.cpu.matmul` beat it at a small batch; on the cuda device they are
the tiled kernel of `nanoml.kernels.cuda`."""

import math

import numpy as np

from nanoml import cuda_arrays
from nanoml.kernels import cpu
from nanoml.ops.elementwise import unbroadcast
from nanoml.ops.placement import same_device
from nanoml.tensor import Tensor, apply


def matmul(a, b):
    """a @ b with NumPy's rules: batched over leading axes, 1-D operands as vectors."""
    if not isinstance(b, Tensor):
        b = Tensor(b, dtype=a.data.dtype)
    if a.data.ndim == 1:
        out = matmul(a.reshape(1, -1), b)
        return out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.data.ndim == 1:
        return matmul(a, b.reshape(-1, 1)).reshape(a.shape[:-1])
    if same_device("matmul", a, b):
        return _cuda_matmul(a, b)
    x, w = a.data, b.data

    def backward(g):
        ga = unbroadcast(g @ np.swapaxes(w, -1, -2), x.shape) if a.requires_grad else None
        gb = unbroadcast(np.swapaxes(x, -1, -2) @ g, w.shape) if b.requires_grad else None
        return ga, gb

    return apply(x @ w, (a, b), backward)


def _cuda_matmul(a, b):
    if a.data.ndim != 2 or b.data.ndim != 2:
        raise cuda_arrays.unsupported("batched matmul (operands of more than 2 dimensions)")
    x, w = a.data, b.data
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"matmul: shapes {x.shape} and {w.shape} do not align")

    def backward(g):
        ga = cuda_arrays.matmul(g, w, trans_b=True) if a.requires_grad else None
        gb = cuda_arrays.matmul(x, g, trans_a=True) if b.requires_grad else None
        return ga, gb

    return apply(cuda_arrays.matmul(x, w), (a, b), backward)


def rmatmul(a, b):
    """b @ a for a non-Tensor `b` (the reflected form of `matmul`)."""
    return matmul(Tensor(b, dtype=a.data.dtype), a)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, as torch's F.linear: weight is (out_features, in_features).

    One fused op: the backward is two GEMMs and a sum instead of a chain of three ops.
    """
    if same_device("linear", x, weight, bias):
        return _cuda_linear(x, weight, bias)
    w = weight.data
    in_features = w.shape[1]
    # The kernels take one float dtype; NumPy serves the rest, reports shape mismatches and
    # takes empty operands (gemm's tiles do not).
    own = (x.data.dtype == w.dtype in (np.float32, np.float64)
           and x.data.shape[-1] == in_features and x.data.size > 0 and w.size > 0)
    if own:
        w = np.ascontiguousarray(w)
        x2 = np.ascontiguousarray(x.data.reshape(-1, in_features))
        out = np.empty((x2.shape[0], w.shape[0]), w.dtype)
        cpu.matmul_nt(x2, w, out)
        out = out.reshape(x.data.shape[:-1] + w.shape[:1])
    else:
        out = x.data @ w.T
    if bias is not None:
        out += bias.data

    def backward(g):
        g2 = g.reshape(math.prod(g.shape[:-1]), g.shape[-1])
        gx = gw = gb = None
        if x.requires_grad and own:
            gx = np.empty(x2.shape, w.dtype)
            cpu.matmul(g2, w, gx)
            gx = gx.reshape(x.data.shape)
        elif x.requires_grad:
            gx = g @ w
        if weight.requires_grad and own:
            gw = np.empty(w.shape, w.dtype)
            cpu.matmul_tn(g2, x2, gw)
        elif weight.requires_grad:
            gw = g2.T @ x.data.reshape(g2.shape[0], in_features)
        if bias is not None and bias.requires_grad:
            gb = g2.sum(axis=0)
        return gx, gw, gb

    return apply(out, (x, weight, bias), backward)


def _cuda_linear(x, weight, bias):
    ca = cuda_arrays
    w = weight.data
    out_features, in_features = w.shape
    x2 = x.data.reshape(-1, in_features)
    out = ca.matmul(x2, w, trans_b=True)
    if bias is not None:
        out = ca.binary("add", out, bias.data)

    def backward(g):
        g2 = g.reshape(-1, out_features)
        gx = ca.matmul(g2, w).reshape(x.data.shape) if x.requires_grad else None
        gw = ca.matmul(g2, x2, trans_a=True) if weight.requires_grad else None
        gb = None
        if bias is not None and bias.requires_grad:
            gb = ca.reduce_sum(g2, axis=0)
        return gx, gw, gb

    return apply(out.reshape(x.data.shape[:-1] + (out_features,)), (x, weight, bias), backward)
