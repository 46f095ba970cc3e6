"""Shape ops: reshape, transpose, flatten, indexing, concatenate and stack.

Forward results are NumPy views where NumPy gives one, so these cost no copy.
"""

import numpy as np

from nanoml.tensor import Tensor, apply


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
    return apply(x.data.transpose(axes), (x,), lambda g: (g.transpose(inverse),))


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

    Fancy indices may repeat an element, so their backward scatters with np.add.at.
    """
    index = _plain_index(index)
    data = x.data
    basic = _is_basic(index)

    def backward(g):
        grad = np.zeros_like(data)
        if basic:
            grad[index] = g
        else:
            np.add.at(grad, index, g)
        return (grad,)

    return apply(data[index], (x,), backward)


def concatenate(tensors, axis=0):
    """Tensors joined along an existing axis."""
    tensors = tuple(tensors)
    sizes = [t.data.shape[axis] for t in tensors]
    splits = np.cumsum(sizes)[:-1]

    def backward(g):
        return tuple(np.split(g, splits, axis=axis))

    return apply(np.concatenate([t.data for t in tensors], axis=axis), tensors, backward)


def stack(tensors, axis=0):
    """Tensors of equal shape joined along a new axis."""
    tensors = tuple(tensors)
    out = np.stack([t.data for t in tensors], axis=axis)
    axis = axis % out.ndim

    def backward(g):
        return tuple(np.moveaxis(g, axis, 0))

    return apply(out, tensors, backward)
