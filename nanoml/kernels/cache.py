"""On-disk kernel caches that notice an edit to any CPU kernel module, not only their own.

Numba checks a cached function against its own source file alone. A kernel that calls a
kernel of another module (conv -> matmul -> gemm) keeps the callee's old machine code in
its cache entry, so after an edit to the callee it runs stale code, or crashes where the
callee's layout changed. Here every kernel of `nanoml.kernels.cpu` is cached with a stamp
of all of that package's files: editing one invalidates them all.

This hooks into numba.core's private caching classes (`_CacheLocator`,
`CacheImpl._locator_classes`), so it is fenced: `install` patches only a Numba of the
versions in `TESTED_NUMBA`, and elsewhere leaves Numba's plain per-file caching in place with
a one-line warning. It must run before the kernel modules are imported.
"""

import functools
import os
import re
import warnings

import numba
from numba.core import caching

# Tested with numba 0.68.1. The private names used here are unchanged since numba.core was
# reorganised (0.49), so the range starts at the oldest numba nanoml supports.
TESTED_NUMBA = ((0, 60), (0, 68))

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


def _tested(version):
    """True when numba `version` ("0.68.1") lies within TESTED_NUMBA."""
    found = re.match(r"(\d+)\.(\d+)", version)
    low, high = TESTED_NUMBA
    return found is not None and low <= (int(found[1]), int(found[2])) <= high


class KernelPackageLocator(getattr(caching, "_CacheLocator", object)):
    """The locator Numba would use for a function in nanoml/kernels/cpu, with the stamp of
    the whole package added to the function's own file's."""

    def __init__(self, inner):
        self._inner = inner
        # Numba names the source file in its "cannot cache" warning.
        self._py_file = getattr(inner, "_py_file", None)

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
    """Put `KernelPackageLocator` first in Numba's list of cache locators (once); True when
    it is there. A Numba outside TESTED_NUMBA (or without the private names) is left alone:
    each kernel is then cached against its own file only, and one warning says so."""
    locators = getattr(getattr(caching, "CacheImpl", None), "_locator_classes", None)
    if not _tested(numba.__version__) or not hasattr(caching, "_CacheLocator") or locators is None:
        warnings.warn(
            f"nanoml: numba {numba.__version__} is not one its kernel-cache patch was tested "
            f"with; each kernel is cached against its own file only (after editing a kernel "
            f"module, delete nanoml/kernels/cpu/__pycache__)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    if KernelPackageLocator not in locators:
        locators.insert(0, KernelPackageLocator)
    return True
