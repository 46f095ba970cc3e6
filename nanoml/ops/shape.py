"""Shape ops: reshape, transpose, flatten, indexing, concatenate and stack.

On the CPU forward results are NumPy views where NumPy gives one, so these cost no copy; a
device without views copies.
"""

import numpy as np

from nanoml import backend
from nanoml.autograd import Tensor, apply


def reshape(x, *shape):
    """`x` with a new shape (as numpy: one entry may be -1); ``reshape(2, 3)`` or ``((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    old = x.data.shape
    return apply(x.data.reshape(shape), (x,), lambda g: (g.reshape(old),))


def transpose(x, *axes):
    """Axes permuted as numpy's transpose: reversed when none are given."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    axes = axes or None
    inverse = None if axes is None else tuple(np.argsort(axes))
    xp = backend.of(x.data)
    return apply(xp.transpose(x.data, axes), (x,), lambda g: (xp.transpose(g, inverse),))


def flatten(x, start_dim=0, end_dim=-1):
    """Dimensions start_dim..end_dim (inclusive) merged into one, as torch.flatten."""
    shape = x.data.shape
    start = start_dim % max(len(shape), 1)
    end = end_dim % max(len(shape), 1)
    return reshape(x, shape[:start] + (-1,) + shape[end + 1 :])


def _plain_index(index):
    """`index` with Tensors replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def _is_basic(index):
    """True when `index` has only ints, slices, None and Ellipsis: no element repeats."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items
    )


def getitem(x, index):
    """x[index] with ints, slices, None, Ellipsis, integer or boolean arrays.

    Fancy indices may repeat an element, so their backward scatters with an add.
    """
    index = _plain_index(index)
    xp = backend.of(x.data)
    shape = x.data.shape
    basic = _is_basic(index)
    return apply(xp.getitem(x.data, index, basic), (x,),
                 lambda g: (xp.getitem_backward(g, shape, index, basic),))


def concatenate(tensors, axis=0):
    """Tensors joined along an existing axis."""
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    xp = backend.common("concatenate", *tensors)
    out = xp.concatenate([t.data for t in tensors], axis)  # the backend checks the axis
    axis %= out.ndim
    parts, start = [], 0
    for t in tensors:
        stop = start + t.data.shape[axis]
        parts.append((slice(None),) * axis + (slice(start, stop),))
        start = stop
    return apply(out, tensors, lambda g: tuple(xp.getitem(g, p) for p in parts))


def stack(tensors, axis=0):
    """Tensors of equal shape joined along a new axis."""
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    backend.common("stack", *tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack needs tensors of one shape, got shapes {sorted(shapes)}")
    ndim = tensors[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    axis %= ndim
    return concatenate([reshape(t, t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors],
                       axis)
