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


def test_off_glibc_mallopt_is_skipped_and_training_mode_still_works(monkeypatch):
    import ctypes
    import platform

    import numpy as np

    from nanoml import losses, nn, optim
    from nanoml.tensor import Tensor

    def no_lookup(*args, **kwargs):
        raise AssertionError("the C library was searched for mallopt off glibc")

    monkeypatch.setattr(platform, "libc_ver", lambda *args, **kwargs: ("", ""))  # musl, macOS
    retain_freed_memory.cache_clear()
    try:
        with monkeypatch.context() as patch:  # threadpoolctl needs CDLL below
            patch.setattr(ctypes, "CDLL", no_lookup)
            assert retain_freed_memory() is False
        with training_mode():
            assert all(n == 1 for n in blas_threads())
            layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
            opt = optim.SGD(layer.parameters(), lr=0.1)
            losses.cross_entropy(layer(Tensor(np.ones((4, 3)))), [0, 1, 1, 0]).backward()
            opt.step()
    finally:
        retain_freed_memory.cache_clear()
