"""Backends: one per device, and the one place that decides which device an array is on.

`of(array)` is that decision: the backend whose arrays include `array`'s type (a dict
lookup by type, so the ops pay almost nothing for it). Every op computes through the
backend of its operands (see `nanoml.backend.base.Backend` for the interface), so it has
one body for every device. `named("cuda")` gives a device's backend by name.

A device is added by writing one `Backend` subclass and registering an instance of it with
`register`; no op changes. The CPU (NumPy arrays, `nanoml.kernels.cpu`) and CUDA (numba
device arrays, `nanoml.kernels.cuda`) backends are registered here.
"""

from nanoml.backend.base import Backend
from nanoml.backend.cpu import CPU
from nanoml.backend.cuda import CUDA
from nanoml.errors import DeviceError, InputError

__all__ = ["Backend", "CPU", "CUDA", "check_device_name", "common", "is_array", "move", "named",
           "names", "of", "register"]

_BY_NAME = {}
_REGISTERED = {}  # array class a backend registered -> that backend
# Caches by exact class, filled on first sight: array classes (subclasses included) -> their
# backend; and every class seen -> its owner (host values such as scalars: the CPU).
_ARRAYS = {}
_OWNERS = {}


def register(backend):
    """Make `backend` (a `Backend` instance) a device: `named(backend.name)` and `of` of its
    arrays find it from now on. Returns it."""
    _BY_NAME[backend.name] = backend
    _REGISTERED.update(dict.fromkeys(backend.array_types, backend))
    for cache in (_ARRAYS, _OWNERS):  # classes seen before may belong to it now
        cache.clear()
        cache.update(_REGISTERED)
    return backend


def names():
    """The names of the registered devices."""
    return tuple(_BY_NAME)


def of(array):
    """The backend of the device that holds `array`.

    Values that are no device's array (lists, Python and NumPy scalars) are host values:
    the CPU's.
    """
    found = _OWNERS.get(type(array))
    return found if found is not None else _resolve(type(array))


def is_array(value):
    """True when `value` is an array of some device (not a scalar, list or other value)."""
    cls = type(value)
    if cls not in _OWNERS:
        _resolve(cls)
    return cls in _ARRAYS


def _resolve(cls):
    """The owner of values of class `cls`, remembered for next time: the backend of the
    nearest registered base class, else of a backend that claims it, else the CPU."""
    for base in cls.__mro__:
        found = _REGISTERED.get(base)
        if found is not None:
            break
    else:
        found = next((b for b in _BY_NAME.values() if b.claims(cls)), None)
    if found is not None:
        _ARRAYS[cls] = found
    _OWNERS[cls] = CPU if found is None else found
    return _OWNERS[cls]


def common(op, *tensors):
    """The backend of the (non-None) `tensors`, DeviceError when they are on different
    devices; `op` names the operation in that error."""
    found = None
    for t in tensors:
        if t is None:
            continue
        backend = of(t.data)
        if found is None:
            found = backend
        elif backend is not found:
            raise DeviceError(
                f"{op} got tensors on different devices ({found.name} and {backend.name}); "
                f"move them to one with .to()"
            )
    return found


def named(device):
    """The backend of `device`, a name such as "cpu" or "cuda" (any case); InputError for
    a name no backend has."""
    backend = _BY_NAME.get(str(device).lower())
    if backend is None:
        raise InputError(f"unknown device {device!r}; use one of {', '.join(_BY_NAME)}")
    return backend


def move(array, backend):
    """`array` on `backend`'s device: itself if already there, else a copy."""
    source = of(array)
    return array if source is backend else backend.from_host(source.to_host(array))


def check_device_name(device):
    """`device` as a hyperparameter: one of the device names exactly, and a device that can
    run here; ParameterError or DeviceError saying why not."""
    from nanoml.validation import check_choice

    check_choice("device", device, names())
    _BY_NAME[device].require()
    return device


register(CPU)
register(CUDA)
