"""The tiled matmul kernel against NumPy: shapes with every remainder, strides, dtypes."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from nanoml.kernels.cpu import gemm
from nanoml.kernels.cpu.matmul import matmul as threaded_matmul

# (M, K, N): row counts hitting every tile height, partial column blocks, an empty inner
# dimension, the recurrent kernels' shapes, and wide products that pack `b` (several column
# and inner blocks, partial ones, an empty inner dimension).
SHAPES = [(1, 1, 1), (3, 5, 7), (8, 16, 32), (15, 3, 33), (17, 0, 5), (64, 128, 512),
          (13, 29, 100), (100, 28, 70), (21, 1100, 40), (37, 600, 300), (9, 5, 1030),
          (3, 0, 200)]


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



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_matmul_packed_matches_numpy(dtype, shape):
    """The recurrent steps' product, from a `b` packed once, its inner dimension whole."""
    M, K, N = shape
    rng = np.random.default_rng(M * 100 + K + 1)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = np.full((M, N), np.nan, dtype)
    gemm.matmul_packed(a, gemm.pack(b), c)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=tol, atol=tol * max(K, 1))


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


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the NumPy stand-in runs instead")
def test_the_llvm_micro_kernel_passes_its_check_here():
    from nanoml.kernels.cpu import tile_llvm

    assert tile_llvm.check() is None
    assert gemm.TILE == "llvm"


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the NumPy stand-in runs instead")
def test_without_the_llvm_micro_kernel_the_numba_tile_computes_the_products(tmp_path):
    """In a fresh process where the micro-kernel cannot be built (its module fails to
    import, as on a Numba whose intrinsic API changed): one warning, the Numba tile, and
    the same products as NumPy's."""
    code = (
        "import sys, warnings, numpy as np\n"
        "sys.modules['nanoml.kernels.cpu.tile_llvm'] = None  # importing it now fails\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from nanoml.kernels.cpu import gemm\n"
        "rng = np.random.default_rng(0)\n"
        "worst = 0.0\n"
        f"for M, K, N in {SHAPES!r}:\n"
        "    for dtype in (np.float32, np.float64):\n"
        "        a = rng.standard_normal((K, M)).astype(dtype).T\n"
        "        b = rng.standard_normal((K, N)).astype(dtype)\n"
        "        c = np.full((M, N), np.nan, dtype)\n"
        "        gemm.matmul(a, b, c)  # every caller's products run through it\n"
        "        ref = a.astype(np.float64) @ b\n"
        "        worst = max(worst, float(np.abs(c - ref).max(initial=0) / max(K, 1)))\n"
        "print(gemm.TILE, sum('GEMM micro-kernel' in str(w.message) for w in caught), worst)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # leave the real caches alone
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    tile, warned, worst = result.stdout.split()
    assert tile == "numba" and warned == "1"
    assert float(worst) < 1e-5
