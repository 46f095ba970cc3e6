"""Layer-level ops with fused backwards: dropout, batch normalisation, embedding lookup."""

import numpy as np

from nanoml import backend
from nanoml.autograd import Tensor, apply
from nanoml.errors import InputError
from nanoml.ops.shape import getitem


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout: zero each element with probability `p`, scale the rest by 1/(1-p).

    Identity when not training or p == 0, so evaluation needs no rescaling. `rng` (an
    np.random.Generator) makes the masks reproducible.
    """
    if not 0 <= p < 1:
        raise InputError(f"dropout probability p must be in [0, 1), got {p!r}")
    if not training or p == 0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    xp = backend.of(x.data)
    dtype = x.data.dtype
    # Made on the host from one draw of the generator, so a seed gives the same masks on
    # every device; one upload of the mask per call where the device is not the host.
    mask = backend.CPU.dropout_mask(int(rng.integers(0, 2**63)), p, x.data.shape, dtype)
    mask = xp.from_host(mask)
    return apply(xp.mul(x.data, mask), (x,), lambda g: (xp.mul(g, mask),))


def _channel_axes(ndim):
    """Axes batch norm reduces over: all but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


def batch_norm(
    x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5
):
    """Normalise each channel (axis 1) of (N, C), (N, C, L) or (N, C, H, W) input.

    Training uses the batch's statistics and updates `running_mean` / `running_var`
    (arrays, in place, unbiased variance as PyTorch does); evaluation uses the running ones.
    `weight` and `bias` (Tensors of shape (C,)) scale and shift the result.
    """
    backend.of(x.data).require_numpy("batch_norm")
    data = x.data
    if data.ndim < 2 or data.shape[1] != running_mean.shape[0]:
        raise InputError(
            f"batch_norm expects input of shape (N, {running_mean.shape[0]}, ...), "
            f"got {data.shape}"
        )
    axes = _channel_axes(data.ndim)
    bshape = (1, -1) + (1,) * (data.ndim - 2)
    if training:
        count = data.size // data.shape[1]
        if count < 2:
            raise InputError(
                f"batch_norm in training needs more than one value per channel, got input "
                f"of shape {data.shape}"
            )
        mean = data.mean(axis=axes)
        centered = data - mean.reshape(bshape)
        var = np.square(centered).mean(axis=axes)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * count / (count - 1)) * var
    else:
        centered = data - running_mean.reshape(bshape)
        var = running_var.astype(data.dtype, copy=False)
    invstd = (1.0 / np.sqrt(var + eps)).astype(data.dtype, copy=False)
    xhat = centered * invstd.reshape(bshape)
    gamma = None if weight is None else weight.data.reshape(bshape)
    out = xhat if gamma is None else xhat * gamma
    if bias is not None:
        out = out + bias.data.reshape(bshape)

    def backward(g):
        gw = (g * xhat).sum(axis=axes) if weight is not None and weight.requires_grad else None
        gb = g.sum(axis=axes) if bias is not None and bias.requires_grad else None
        gx = None
        if x.requires_grad:
            dxhat = g if gamma is None else g * gamma
            if training:
                # The batch statistics depend on x too: remove their share of the gradient.
                mean_d = dxhat.mean(axis=axes, keepdims=True)
                mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
                gx = (dxhat - mean_d - xhat * mean_dx) * invstd.reshape(bshape)
            else:
                gx = dxhat * invstd.reshape(bshape)
        return gx, gw, gb

    return apply(out, (x, weight, bias), backward)


def embedding(indices, weight):
    """Rows of `weight` (num_embeddings, dim) picked by integer `indices` of any shape."""
    backend.of(weight.data).require_numpy("embedding")
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    n = weight.data.shape[0]
    if idx.dtype.kind not in "iu":
        raise InputError(f"embedding indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InputError(
            f"embedding indices must be in [0, {n}), got values from {idx.min()} to {idx.max()}"
        )
    return getitem(weight, idx)
