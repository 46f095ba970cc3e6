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

Both apply to the whole process at the first `backward()` (`use_training_settings`), so that a
user's own training loop runs as fast as `nanoml.train`. They stay for the rest of the
process: its freed memory is kept, up to its peak, and NumPy's matrix products run on one
thread. Setting the environment variable ``NANOML_PROCESS_SETTINGS=off``, or calling
`keep_process_settings()` before training, leaves the process as it is.
"""

import ctypes
import functools
import os
import platform

from threadpoolctl import threadpool_limits

# None until the first backward decides: then True (applied) or False (left alone).
_settings = {"applied": None}

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


def use_training_settings():
    """Keep freed memory and run BLAS on one thread, once per process (see the module doc).

    Called by every `backward()`; after the first call it costs a dictionary lookup.
    """
    if _settings["applied"] is not None:
        return
    off = os.environ.get("NANOML_PROCESS_SETTINGS", "").strip().lower() in ("off", "0", "no")
    _settings["applied"] = not off
    if not off:
        retain_freed_memory()
        threadpool_limits(limits=1, user_api="blas")


def keep_process_settings():
    """Leave the process's memory and BLAS settings as they are, from now on."""
    _settings["applied"] = False
