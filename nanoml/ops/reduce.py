"""Reductions (sum, mean, max, min, var, argmax) and the softmax family along an axis.

Sum and mean run on every device through its backend; the rest compute with NumPy, so
only where the arrays are NumPy arrays.
"""

import numpy as np

from nanoml import backend
from nanoml.autograd import apply


def _expand(g, shape, axis, keepdims):
    """A reduced gradient reshaped so it broadcasts against the input of `shape`."""
    if axis is None:
        return g.reshape((1,) * len(shape))
    if not keepdims:
        g = np.expand_dims(g, axis)
    return g


def _kept(shape, axis):
    """The shape a reduction of an input of `shape` over `axis` (checked by the forward)
    has with keepdims."""
    ndim = len(shape)
    if axis is None:
        return (1,) * ndim
    axes = {a % ndim for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if d in axes else n for d, n in enumerate(shape))


def _count(shape, axis):
    """How many input elements each output element of a reduction over `axis` covers."""
    if axis is None:
        return int(np.prod(shape))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([shape[a] for a in axes]))


def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (all axes when None), as numpy.sum."""
    xp = backend.of(x.data)
    shape = x.data.shape

    def backward(g):
        return (xp.broadcast_to(g.reshape(_kept(shape, axis)), shape),)

    return apply(xp.sum(x.data, axis=axis, keepdims=keepdims), (x,), backward)


def mean(x, axis=None, keepdims=False):
    """Mean over `axis` (all axes when None), as numpy.mean."""
    xp = backend.of(x.data)
    shape = x.data.shape
    n = _count(shape, axis)

    def backward(g):
        return (xp.broadcast_to(xp.divide_by(g.reshape(_kept(shape, axis)), n), shape),)

    return apply(xp.mean(x.data, axis=axis, keepdims=keepdims), (x,), backward)


def _extremum(reducer):
    def extremum(x, axis=None, keepdims=False):
        backend.of(x.data).require_numpy(reducer.__name__)
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
    backend.of(x.data).require_numpy("argmax")
    return apply(np.argmax(x.data, axis=axis, keepdims=keepdims), (), None)


def var(x, axis=None, keepdims=False, ddof=0):
    """Variance along `axis`; ddof=0 (NumPy's default) divides by n, ddof=1 by n - 1."""
    backend.of(x.data).require_numpy("var")
    data = x.data
    centered = data - data.mean(axis=axis, keepdims=True)
    dof = _count(data.shape, axis) - ddof

    def backward(g):
        return (_expand(g, data.shape, axis, keepdims) * (centered * (2.0 / dof)),)

    return apply(np.square(centered).sum(axis=axis, keepdims=keepdims) / dof, (x,), backward)


def logsumexp(x, axis=-1, keepdims=False):
    """log(sum(exp(x))) along `axis`, without overflow."""
    backend.of(x.data).require_numpy("logsumexp")
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
    backend.of(x.data).require_numpy("softmax")
    data = x.data
    out = np.exp(data - data.max(axis=axis, keepdims=True))
    out /= out.sum(axis=axis, keepdims=True)

    def backward(g):
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)

    return apply(out, (x,), backward)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`, stable for large logits."""
    backend.of(x.data).require_numpy("log_softmax")
    data = x.data
    shifted = data - data.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)

    return apply(out, (x,), backward)
