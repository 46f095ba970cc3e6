"""Training mode: BLAS on one thread inside, the previous setting restored after."""

import sys

from threadpoolctl import threadpool_info

from nanoml.runtime import retain_freed_memory, training_mode


def blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_blas_runs_on_one_thread_while_training_and_is_restored():
    before = blas_threads()
    assert before, "NumPy should bring a BLAS library"
    with training_mode():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before


def test_freed_memory_is_kept_on_glibc():
    assert retain_freed_memory() is (sys.platform == "linux")
