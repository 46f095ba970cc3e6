"""On-disk kernel caches that notice an edit to any CPU kernel module, not only their own.

Numba checks a cached function against its own source file alone. A kernel that calls a
kernel of another module (conv -> matmul -> gemm) keeps the callee's old machine code in
its cache entry, so after an edit to the callee it runs stale code, or crashes where the
callee's layout changed. Here every kernel of `nanoml.kernels.cpu` is cached with a stamp
of all of that package's files: editing one invalidates them all.

This hooks into numba.core.caching (`CacheImpl._locator_classes`), as `gemm` uses Numba's
internals for its intrinsic; `install` must run before the kernel modules are imported.
"""

import functools
import os

from numba.core import caching

CPU_KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu")


def sources_stamp(folder):
    """(name, mtime in ns, size) of every Python file in `folder`, sorted by name."""
    stamp = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.endswith(".py") and entry.is_file():
            info = entry.stat()
            stamp.append((entry.name, info.st_mtime_ns, info.st_size))
    return tuple(stamp)


@functools.cache
def _cpu_kernels_stamp():
    return sources_stamp(CPU_KERNELS)


class KernelPackageLocator(caching._CacheLocator):
    """The locator Numba would use for a function in nanoml/kernels/cpu, with the stamp of
    the whole package added to the function's own file's."""

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return self._inner.get_source_stamp(), _cpu_kernels_stamp()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != CPU_KERNELS:
            return None
        for locator_class in caching.CacheImpl._locator_classes:
            if locator_class is not cls:
                inner = locator_class.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


def install():
    """Put `KernelPackageLocator` first in Numba's list of cache locators (once)."""
    locators = caching.CacheImpl._locator_classes
    if KernelPackageLocator not in locators:
        locators.insert(0, KernelPackageLocator)
