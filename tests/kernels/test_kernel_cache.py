"""The CPU kernels' disk caches are stamped with every kernel module, not only their own."""

import os
import subprocess
import sys

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


def test_an_untested_numba_keeps_its_per_file_caching_with_one_warning(monkeypatch):
    from numba.core import caching

    without = [c for c in caching.CacheImpl._locator_classes
               if c is not cache.KernelPackageLocator]
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", list(without))
    monkeypatch.setattr(numba, "__version__", "0.99.0")
    with pytest.warns(RuntimeWarning) as record:
        assert cache.install() is False
    assert len(record) == 1
    message = str(record[0].message)
    assert "numba 0.99.0" in message and "\n" not in message
    assert caching.CacheImpl._locator_classes == without


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no dispatchers, so no caches")
def test_kernels_compile_and_cache_per_file_under_an_untested_numba(tmp_path):
    """In a fresh process whose numba claims an untested version: one warning, Numba's own
    locator, a kernel that still computes and is cached (in NUMBA_CACHE_DIR)."""
    code = (
        "import warnings, numba, numpy as np\n"
        "numba.__version__ = '0.99.0'\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from nanoml.kernels import cpu\n"
        "logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])\n"
        "probs, out = np.empty_like(logits), np.empty(2)\n"
        "cpu.softmax_xent_forward(logits, np.array([1, 2]), probs, out)\n"
        "shift = logits - logits.max(axis=1, keepdims=True)\n"
        "expected = np.log(np.exp(shift).sum(axis=1)) - shift[[0, 1], [1, 2]]\n"
        "print(sum('kernel-cache patch' in str(w.message) for w in caught),\n"
        "      type(cpu.softmax_xent_forward._cache._impl.locator).__name__,\n"
        "      np.allclose(out, expected))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    warnings_seen, locator, correct = result.stdout.split()
    assert warnings_seen == "1" and correct == "True"
    assert locator != "KernelPackageLocator"
    assert any(p.name.startswith("losses.softmax_xent_forward") for p in tmp_path.rglob("*.nbi"))
