"""Matrix products. GEMMs stay on NumPy's BLAS, which no hand-written kernel beats."""

import numpy as np

from nanoml.ops.elementwise import unbroadcast
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
    x, w = a.data, b.data

    def backward(g):
        ga = unbroadcast(g @ np.swapaxes(w, -1, -2), x.shape) if a.requires_grad else None
        gb = unbroadcast(np.swapaxes(x, -1, -2) @ g, w.shape) if b.requires_grad else None
        return ga, gb

    return apply(x @ w, (a, b), backward)


def rmatmul(a, b):
    """b @ a for a non-Tensor `b` (the reflected form of `matmul`)."""
    return matmul(Tensor(b, dtype=a.data.dtype), a)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, as torch's F.linear: weight is (out_features, in_features).

    One fused op: the backward is two GEMMs and a sum instead of a chain of three ops.
    """
    out = x.data @ weight.data.T
    if bias is not None:
        out += bias.data
    in_features = weight.data.shape[1]

    def backward(g):
        gx = g @ weight.data if x.requires_grad else None
        gw = gb = None
        if weight.requires_grad:
            g2 = g.reshape(-1, g.shape[-1])
            gw = g2.T @ x.data.reshape(-1, in_features)
        if bias is not None and bias.requires_grad:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return gx, gw, gb

    return apply(out, (x, weight, bias), backward)
