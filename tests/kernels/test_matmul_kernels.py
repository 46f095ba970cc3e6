"""Linear's matrix-product kernels against NumPy, and serial runs of themselves."""

import numpy as np
import pytest

from nanoml.kernels import cpu

DTYPES = [np.float32, np.float64]
# (M, K, N): the tutorial CNN's dense layer at batch 32, a single row, ragged row bands,
# and wide layers (N above PACK_MIN_COLUMNS): few rows (matmul_nt's flipped product), more
# rows (panels packed from b), and one below SERIAL_WORK.
SHAPES = [(32, 5408, 10), (1, 7, 3), (13, 37, 9), (21, 300, 100), (40, 50, 80), (3, 20, 100)]


def tol(dtype, K):
    """Rounding allowed in sums of K products of unit-scale numbers: a sequential float32
    sum (the serial run) drifts by about eps * K / sqrt(3); a blocked one far less."""
    if dtype == np.float32:
        return {"rtol": 1e-4, "atol": max(1e-4, 4 * np.finfo(np.float32).eps * K)}
    return {"rtol": 1e-12, "atol": 1e-12}


def serial(kernel):
    """The kernel's Python function (itself when NUMBA_DISABLE_JIT=1 left it one)."""
    return getattr(kernel, "py_func", kernel)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, K, N", SHAPES)
def test_products_match_numpy(dtype, M, K, N):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K)).astype(dtype)
    w = rng.standard_normal((N, K)).astype(dtype)
    g = rng.standard_normal((M, N)).astype(dtype)
    # (kernel, operands, NumPy's product, length of the summed dimension)
    cases = [("matmul_nt", x, w, x @ w.T, K), ("matmul", g, w, g @ w, N),
             ("matmul_tn", g, x, g.T @ x, M)]
    for name, a, b, expected, summed in cases:
        out = np.full(expected.shape, np.nan, dtype)
        getattr(cpu, name)(a, b, out)
        np.testing.assert_allclose(out, expected, **tol(dtype, summed), err_msg=name)
        serial_out = np.full(expected.shape, np.nan, dtype)
        serial(getattr(cpu, name))(a, b, serial_out)
        np.testing.assert_allclose(out, serial_out, **tol(dtype, summed), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, K, N", SHAPES)
def test_matmul_takes_a_transposed_b(dtype, M, K, N):
    """A `b` whose rows are not unit-stride is packed whatever its size."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((N, K)).astype(dtype).T
    out = np.full((M, N), np.nan, dtype)
    cpu.matmul(a, b, out)
    np.testing.assert_allclose(out, a @ b, **tol(dtype, K))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, K, N", [(70, 600, 100), (130, 257, 77), (5, 1000, 66)])
def test_matmul_packs_a_transposed_a_to_the_same_sums(dtype, M, K, N):
    """A transposed `a` (a weight gradient's ``g.T``) is packed into micro-panels: ragged
    last panels, several blocks of the inner dimension and row groups split over panel
    groups give NumPy's product, and exactly the sums of the unpacked contiguous `a`."""
    rng = np.random.default_rng(2)
    g = rng.standard_normal((K, M)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    packed, in_place = np.full((M, N), np.nan, dtype), np.full((M, N), np.nan, dtype)
    cpu.matmul(g.T, b, packed)
    cpu.matmul(np.ascontiguousarray(g.T), b, in_place)
    np.testing.assert_allclose(packed, g.T @ b, **tol(dtype, K))
    np.testing.assert_array_equal(packed, in_place)
