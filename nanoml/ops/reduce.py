"""Reductions (sum, mean, max, min, var, argmax) and the softmax family along an axis."""

import numpy as np

from nanoml import cuda_arrays
from nanoml.ops.placement import host_only, on_cuda
from nanoml.tensor import apply


def _expand(g, shape, axis, keepdims):
    """A reduced gradient reshaped so it broadcasts against the input of `shape`."""
    if axis is None:
        return g.reshape((1,) * len(shape))
    if not keepdims:
        g = np.expand_dims(g, axis)
    return g


def _count(shape, axis):
    """How many input elements each output element of a reduction over `axis` covers."""
    if axis is None:
        return int(np.prod(shape))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([shape[a] for a in axes]))


def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (all axes when None), as numpy.sum."""
    shape = x.data.shape
    if on_cuda(x):
        return _cuda_sum(x, axis, keepdims, 1)

    def backward(g):
        return (np.broadcast_to(_expand(g, shape, axis, keepdims), shape),)

    return apply(x.data.sum(axis=axis, keepdims=keepdims), (x,), backward)


def mean(x, axis=None, keepdims=False):
    """Mean over `axis` (all axes when None), as numpy.mean."""
    shape = x.data.shape
    n = _count(shape, axis)
    if on_cuda(x):
        return _cuda_sum(x, axis, keepdims, n)

    def backward(g):
        return (np.broadcast_to(_expand(g, shape, axis, keepdims) / n, shape),)

    return apply(x.data.mean(axis=axis, keepdims=keepdims), (x,), backward)


def _cuda_sum(x, axis, keepdims, n):
    """The sum over `axis` divided by `n` (1 for a sum, the count for a mean) on the device."""
    ca = cuda_arrays
    shape = x.data.shape
    total = ca.reduce_sum(x.data, axis, keepdims=True)
    kept = total.shape
    out = total if n == 1 else ca.scale(total, 1.0 / n)
    if not keepdims:
        axes = ca.reduced_axes(axis, len(shape))
        out = out.reshape(tuple(k for d, k in enumerate(shape) if d not in axes))

    def backward(g):
        g = g.reshape(kept)
        return (ca.broadcast_to(g if n == 1 else ca.scale(g, 1.0 / n), shape),)

    return apply(out, (x,), backward)


def _extremum(reducer):
    def extremum(x, axis=None, keepdims=False):
        host_only(x, reducer.__name__)
        data = x.data
        out = reducer(data, axis=axis, keepdims=keepdims)

        def backward(g):
            hit = data == _expand(out, data.shape, axis, keepdims)
            # Ties share the gradient equally, as PyTorch's amax/amin do.
            share = hit / hit.sum(axis=axis, keepdims=True)
            return ((_expand(g, data.shape, axis, keepdims) * share).astype(data.dtype),)

        return apply(out, (x,), backward)

    extremum.__name__ = reducer.__name__
    extremum.__doc__ = (
        f"The {reducer.__name__} along `axis`; tied extremes share the gradient equally."
    )
    return extremum


max = _extremum(np.max)
min = _extremum(np.min)


def argmax(x, axis=None, keepdims=False):
    """Indices of the maxima (int64 data, no gradient)."""
    host_only(x, "argmax")
    return apply(np.argmax(x.data, axis=axis, keepdims=keepdims), (), None)


def var(x, axis=None, keepdims=False, ddof=0):
    """Variance along `axis`; ddof=0 (NumPy's default) divides by n, ddof=1 by n - 1."""
    host_only(x, "var")
    data = x.data
    centered = data - data.mean(axis=axis, keepdims=True)
    dof = _count(data.shape, axis) - ddof

    def backward(g):
        return (_expand(g, data.shape, axis, keepdims) * (centered * (2.0 / dof)),)

    return apply(np.square(centered).sum(axis=axis, keepdims=keepdims) / dof, (x,), backward)


def logsumexp(x, axis=-1, keepdims=False):
    """log(sum(exp(x))) along `axis`, without overflow."""
    host_only(x, "logsumexp")
    data = x.data
    peak = data.max(axis=axis, keepdims=True)
    shifted = np.exp(data - peak)
    total = shifted.sum(axis=axis, keepdims=True)
    out = np.log(total) + peak

    def backward(g):
        return (_expand(g, data.shape, axis, keepdims) * (shifted / total),)

    return apply(out if keepdims else np.squeeze(out, axis), (x,), backward)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`, shifted by the maximum so it never overflows."""
    host_only(x, "softmax")
    data = x.data
    out = np.exp(data - data.max(axis=axis, keepdims=True))
    out /= out.sum(axis=axis, keepdims=True)

    def backward(g):
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)

    return apply(out, (x,), backward)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`, stable for large logits."""
    host_only(x, "log_softmax")
    data = x.data
    shifted = data - data.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)

    return apply(out, (x,), backward)
