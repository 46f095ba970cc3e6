"""Whether this machine can run a device, for users and the CLI: ``cuda_available()``,
``require_cuda()``, ``check_device_name(device)``.

The devices themselves (and these checks) live in `nanoml.backend`; this module keeps the
public names where they have always been.
"""
# ruff: noqa: F401
# (this module exists to re-export names)

from nanoml.backend import check_device_name
from nanoml.backend.cuda import cuda_available, require_cuda
