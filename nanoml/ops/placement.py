"""Which device an op's tensors live on, and the checks ops make about it."""

import numpy as np

from nanoml import cuda_arrays
from nanoml.errors import DeviceError
from nanoml.kernels import cpu


def on_cuda(x):
    """True when Tensor `x` holds a device array."""
    return not isinstance(x.data, np.ndarray)


def host_only(x, op):
    """Raise for `op`, which has no cuda implementation yet, when `x` is on the device."""
    if x is not None and on_cuda(x):
        raise cuda_arrays.unsupported(op)


def same_device(op, *tensors):
    """True when the (non-None) `tensors` are on the cuda device, False when on the CPU;
    DeviceError when they are spread over both."""
    flags = {on_cuda(t) for t in tensors if t is not None}
    if len(flags) > 1:
        raise DeviceError(
            f"{op} got tensors on different devices (cpu and cuda); move them to one with .to()"
        )
    return flags == {True}


def backend(cuda):
    """(kernels, allocator) of a device: `nanoml.kernels.cpu` and NumPy, or their twins.

    The allocators share ``empty(shape, dtype)``, ``empty_like(a)``, ``zeros(shape, dtype)``
    and ``zeros_like(a)``.
    """
    return (cuda_arrays.kernels(), cuda_arrays) if cuda else (cpu, np)


def contiguous(a):
    """`a` itself on the device (device arrays are always C-contiguous), else as NumPy's."""
    return a if cuda_arrays.is_device_array(a) else np.ascontiguousarray(a)
