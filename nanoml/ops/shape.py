"""Shape ops: reshape, transpose, flatten, indexing, concatenate and stack.

Forward results are NumPy views where NumPy gives one, so these cost no copy.
"""

import numpy as np

from nanoml import cuda_arrays
from nanoml.ops.placement import on_cuda, same_device
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
    if on_cuda(x):
        return apply(cuda_arrays.transpose(x.data, axes), (x,),
                     lambda g: (cuda_arrays.transpose(g, inverse),))
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
    if on_cuda(x):
        return _cuda_getitem(x, index, basic)

    def backward(g):
        grad = np.zeros_like(data)
        if basic:
            grad[index] = g
        else:
            np.add.at(grad, index, g)
        return (grad,)

    return apply(data[index], (x,), backward)


def _cuda_getitem(x, index, basic):
    """Basic indexing on the device (no gather of repeated elements, so no atomics)."""
    if not basic:
        raise cuda_arrays.unsupported("indexing with integer or boolean arrays")
    shape = x.data.shape
    return apply(cuda_arrays.getitem(x.data, index), (x,),
                 lambda g: (cuda_arrays.getitem_backward(g, shape, index),))


def concatenate(tensors, axis=0):
    """Tensors joined along an existing axis."""
    tensors = tuple(tensors)
    if same_device("concatenate", *tensors):
        return _cuda_concatenate(tensors, axis)
    out = np.concatenate([t.data for t in tensors], axis=axis)  # NumPy checks the axis
    splits = np.cumsum([t.data.shape[axis] for t in tensors])[:-1]

    def backward(g):
        return tuple(np.split(g, splits, axis=axis))

    return apply(out, tensors, backward)


def _cuda_concatenate(tensors, axis):
    out, parts = cuda_arrays.concatenate([t.data for t in tensors], axis)
    return apply(out, tensors, lambda g: tuple(cuda_arrays.getitem(g, p) for p in parts))


def stack(tensors, axis=0):
    """Tensors of equal shape joined along a new axis."""
    tensors = tuple(tensors)
    if same_device("stack", *tensors):
        ndim = tensors[0].ndim + 1
        axis = axis % ndim
        return concatenate([reshape(t, t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors],
                           axis)
    out = np.stack([t.data for t in tensors], axis=axis)
    axis = axis % out.ndim

    def backward(g):
        return tuple(np.moveaxis(g, axis, 0))

    return apply(out, tensors, backward)
