"""The CPU kernels' disk caches are stamped with every kernel module, not only their own."""

import os

import numba
import pytest

from nanoml.kernels import cache, cpu


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no dispatchers, so no caches")
def test_cpu_kernels_use_the_package_locator():
    for kernel in (cpu.adam_update, cpu.conv2d_max_pool_relu_forward, cpu.matmul_nt):
        locator = kernel._cache._impl.locator
        assert isinstance(locator, cache.KernelPackageLocator), kernel
        own, package = locator.get_source_stamp()
        assert {name for name, _, _ in package} >= {"conv.py", "gemm.py", "matmul.py"}


def test_the_stamp_changes_when_any_file_changes(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not code")
    before = cache.sources_stamp(tmp_path)
    assert [name for name, _, _ in before] == ["a.py", "b.py"]
    (tmp_path / "notes.txt").write_text("still not code, longer")
    assert cache.sources_stamp(tmp_path) == before
    os.utime(tmp_path / "b.py", ns=(1, 1))
    assert cache.sources_stamp(tmp_path) != before


def test_functions_elsewhere_keep_numba_s_own_locator():
    def elsewhere():
        pass

    assert cache.KernelPackageLocator.from_function(elsewhere, __file__) is None
