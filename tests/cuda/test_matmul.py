"""The tiled CUDA matrix product against NumPy, plain and with either operand transposed."""

import numpy as np
import pytest
from numba import cuda

from nanoml.kernels import cuda as gpu

# (M, K, N): M and K cross a 16-wide tile boundary (partial tiles on both sides of the shared
# dimension and the rows), N is less than a tile; then a product smaller than one tile.
SHAPES = [(17, 20, 5), (3, 4, 2)]
VARIANTS = {
    "matmul": (lambda M, K, N: ((M, K), (K, N)), lambda a, b: a @ b),
    "matmul_nt": (lambda M, K, N: ((M, K), (N, K)), lambda a, b: a @ b.T),
    "matmul_tn": (lambda M, K, N: ((K, M), (K, N)), lambda a, b: a.T @ b),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_matmul_variants(name, shape):
    shapes, reference = VARIANTS[name]
    a_shape, b_shape = shapes(*shape)
    rng = np.random.default_rng(0)
    # float64 for the two-tile shape, float32 for the small one: both dtypes, few launches.
    dtype = np.float64 if shape[0] > 16 else np.float32
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    out = cuda.device_array((shape[0], shape[2]), dtype)
    getattr(gpu, name)(cuda.to_device(a), cuda.to_device(b), out)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.copy_to_host(), reference(a, b), rtol=rtol, atol=rtol)


def test_empty_shared_dimension_gives_zeros():
    out = np.full((2, 3), np.nan, np.float32)
    gpu.matmul(np.empty((2, 0), np.float32), np.empty((0, 3), np.float32), out)
    np.testing.assert_array_equal(out, 0)


def test_mismatched_shapes_raise():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"a @ b multiplies \(2, 3\) by \(2, 3\)"):
        gpu.matmul(a, a, np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"a @ b.T .* out has shape \(3, 3\)"):
        gpu.matmul_nt(a, a, np.empty((3, 3), np.float32))


def test_matmul_twin_matches_the_cpu_kernel():
    from nanoml.kernels import cpu

    rng = np.random.default_rng(1)
    a = rng.standard_normal((18, 9)).astype(np.float32)
    b = rng.standard_normal((9, 7)).astype(np.float32)
    expected = np.zeros((18, 7), np.float32)
    cpu.matmul(a, b, expected)
    out = cuda.device_array((18, 7), np.float32)
    gpu.matmul(cuda.to_device(a), cuda.to_device(b), out)
    np.testing.assert_allclose(out.copy_to_host(), expected, rtol=1e-5, atol=1e-5)
