"""Process settings that training loops need to run at the kernels' speed.

Two effects dominate small-batch training on the CPU once the kernels are fast:

- glibc returns every freed block above 128 KiB to the operating system, so a step that
  allocates a few MB of activations page-faults thousands of times (several ms a step).
  Raising the mmap and trim thresholds keeps freed memory in the process for reuse, as
  PyTorch's caching allocator does; the process then holds on to its peak memory. The
  parameter numbers are glibc's own, so on any other C library (musl, macOS, Windows)
  `mallopt` is not called at all.
- OpenBLAS threads spinning beside Numba's threads starve each other on a few cores; the
  GEMMs between kernels are small, so one BLAS thread is faster while training.
"""

import contextlib
import ctypes
import functools
import platform

from threadpoolctl import threadpool_limits

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=1)
def retain_freed_memory(mmap_threshold=32 << 20, trim_threshold=256 << 20):
    """Ask glibc to keep freed blocks for reuse; False where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: no library search
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


@contextlib.contextmanager
def training_mode():
    """Within: freed memory is kept for reuse and BLAS runs on one thread."""
    retain_freed_memory()
    with threadpool_limits(limits=1, user_api="blas"):
        yield
