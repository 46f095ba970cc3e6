"""The tiled matmul kernel against NumPy: shapes with every remainder, strides, dtypes."""

import numpy as np
import pytest

from nanoml.kernels.cpu import gemm
from nanoml.kernels.cpu.matmul import matmul as threaded_matmul

# (M, K, N): row counts hitting every tile height, partial column blocks, an empty inner
# dimension, and the recurrent kernels' shapes.
SHAPES = [(1, 1, 1), (3, 5, 7), (8, 16, 32), (15, 3, 33), (17, 0, 5), (64, 128, 512),
          (13, 29, 100), (100, 28, 70), (21, 1100, 40)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("fn", [gemm.matmul, threaded_matmul])
def test_matmul_matches_numpy_and_writes_only_its_block(dtype, shape, transposed, fn):
    M, K, N = shape
    rng = np.random.default_rng(M * 100 + K)
    a = rng.standard_normal((K, M) if transposed else (M, K)).astype(dtype)
    a = a.T if transposed else a  # a column-major view: strided rows
    b = rng.standard_normal((K, N)).astype(dtype)
    canvas = np.full((M, N + 3), 7.0, dtype)  # c's rows are longer than N
    c = canvas[:, :N]
    fn(a, b, c)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=tol, atol=tol * max(K, 1))
    assert (canvas[:, N:] == 7.0).all()


def test_row_ranges_and_threads_give_the_serial_result_exactly():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((137, 50)).astype(np.float32)
    b = rng.standard_normal((50, 45)).astype(np.float32)
    whole, pieces = np.empty((137, 45), np.float32), np.full((137, 45), np.nan, np.float32)
    parallel = np.empty((137, 45), np.float32)
    gemm.matmul(a, b, whole)
    for r0, r1 in [(0, 5), (5, 21), (21, 137)]:
        gemm.matmul_rows(a, b, pieces, r0, r1)
    threaded_matmul(a, b, parallel)
    np.testing.assert_array_equal(whole, pieces)
    np.testing.assert_array_equal(whole, parallel)
