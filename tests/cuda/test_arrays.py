"""The strided-copy, sum-over-axes, row-gather and fill kernels against NumPy."""

import numpy as np
import pytest
from numba import cuda

from nanoml.kernels import cuda as gpu


def element_view(a, view):
    """(shape, element strides, element offset) of NumPy view `view` of contiguous `a`."""
    offset = view.__array_interface__["data"][0] - a.__array_interface__["data"][0]
    return view.shape, tuple(s // a.itemsize for s in view.strides), offset // a.itemsize


VIEWS = {
    "transpose": lambda a: a.transpose(2, 0, 1),
    "flip and step": lambda a: a[::-1, 1:, ::-2],
    "int and new axis": lambda a: a[1, None, :, 2],
    "broadcast": lambda a: np.broadcast_to(a[:, :1, :], (3, 5, 4)),
    "one element": lambda a: a[2, 3, 1, ...],
}


@pytest.mark.parametrize("name", VIEWS)
def test_strided_copy_materialises_numpy_views(name):
    a = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    view = VIEWS[name](a)
    shape, strides, offset = element_view(a, view)
    out = cuda.device_array(shape, a.dtype)
    gpu.strided_copy(cuda.to_device(a), shape, strides, offset, out)
    np.testing.assert_array_equal(out.copy_to_host(), view)


def test_strided_add_is_the_adjoint_of_the_copy():
    a = np.zeros((3, 4, 4))
    view = a[::-1, 1:3, ::2]
    src = np.random.default_rng(0).standard_normal(view.shape)
    shape, strides, offset = element_view(a, view)
    out = cuda.to_device(np.ones_like(a))
    gpu.strided_add(cuda.to_device(src), shape, strides, offset, out)
    expected = np.ones_like(a)
    expected[::-1, 1:3, ::2] += src
    np.testing.assert_array_equal(out.copy_to_host(), expected)


@pytest.mark.parametrize("kept", [(1, 1, 1), (3, 1, 4), (1, 5, 1), (3, 5, 4), (1, 5, 4)])
def test_sum_to_sums_the_axes_that_became_one(kept):
    x = np.random.default_rng(1).standard_normal((3, 5, 4))
    axes = tuple(d for d, n in enumerate(kept) if n == 1)
    out = cuda.device_array(kept, x.dtype)
    gpu.sum_to(cuda.to_device(x), out)
    np.testing.assert_allclose(out.copy_to_host(), x.sum(axis=axes, keepdims=True), rtol=1e-12)


def test_sum_to_rejects_a_shape_it_cannot_reach():
    with pytest.raises(ValueError, match="cannot sum"):
        gpu.sum_to(cuda.to_device(np.zeros((3, 4))), cuda.device_array((2, 1)))


def test_take_rows_gathers_by_index_with_repeats():
    src = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    rows = np.array([4, 0, 4, 2])
    out = cuda.device_array((4, 2, 3), src.dtype)
    gpu.take_rows(cuda.to_device(src), cuda.to_device(rows), out)
    np.testing.assert_array_equal(out.copy_to_host(), src[rows])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_fill(dtype):
    out = cuda.device_array((3, 2), dtype)
    gpu.fill(out, 7)
    np.testing.assert_array_equal(out.copy_to_host(), np.full((3, 2), 7, dtype))
