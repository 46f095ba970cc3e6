"""The interface every device's backend implements: what an op may ask of a device.

An op finds the backend of its operands (`nanoml.backend.of`) and computes through it: it
allocates with the backend, moves data with it, calls its elementwise, reduction and
indexing primitives, and runs kernels from its kernel table (``backend.kernels``, the same
names and arguments on every device). The op never asks which device it is on, so one body
serves all of them, and a new device is one new subclass of `Backend`.

The primitives follow NumPy's names and broadcasting rules. Each takes and returns arrays
of its own device; Python numbers (a scale, a slope, a clip bound) stay Python numbers.
Where a device has no implementation of a primitive yet, the base class raises a
DeviceError that names the op, so the user learns in one line to move to the CPU.
"""

import numpy as np

from nanoml.errors import DeviceError


class FreshArrays:
    """A scratch pool that keeps nothing: every `take` is a new array of its backend."""

    def __init__(self, backend):
        self._backend = backend

    def take(self, shape, dtype):
        return self._backend.empty(shape, dtype)

    def give(self, *arrays):
        pass

    def keep_until_released(self, backward, *arrays):
        pass


def _missing(op):
    """A primitive `op` names, for the devices that do not have it: raises unsupported."""

    def primitive(self, *args, **kwargs):
        raise self.unsupported(op)

    primitive.__name__ = op
    return primitive


class Backend:
    """One device: its arrays, how they are made and moved, the primitives and kernels.

    Subclasses set the class attributes and implement the methods; a method left as the
    base class has it raises "<op> is not implemented on the <name> device".
    """

    #: The device's name, as `Tensor.device` reports it and `Tensor.to` takes it.
    name = None
    #: Array classes of this device (subclasses included), looked up by type.
    array_types = ()
    #: True when the arrays are host NumPy arrays a user may read in place (``.numpy()``).
    host = False
    #: True when the arrays are NumPy arrays (or subclasses): ops with no device-generic
    #: body yet (softmax, batch norm, ...) then compute on them with NumPy directly.
    numpy_arrays = False
    #: The kernel table: `nanoml.kernels.cpu`, `nanoml.kernels.cuda`, or a twin of them.
    kernels = None
    #: Scratch arrays for the recurrent ops: ``take(shape, dtype)``, ``give(*arrays)``,
    #: ``keep_until_released(backward, *arrays)``. None: fresh arrays every time.
    pool = None

    def __init__(self):
        if self.pool is None:
            self.pool = FreshArrays(self)

    def __repr__(self):
        return f"<{self.name} backend>"

    # -- the device itself -------------------------------------------------------------
    def claims(self, cls):
        """True for an array class this backend owns though it is not in `array_types`
        (classes only known once the device's library is loaded)."""
        return False

    def require(self):
        """Raise DeviceError saying why, unless this device can run here."""

    def unsupported(self, op):
        """The error for an `op` this device has no implementation of yet."""
        return DeviceError(
            f"{op} is not implemented on the {self.name} device; move its input to the CPU "
            f"with .to('cpu') first"
        )

    def require_numpy(self, op):
        """Raise `unsupported(op)` unless this device's arrays are NumPy arrays, which an
        op without a device-generic body computes on with NumPy."""
        if not self.numpy_arrays:
            raise self.unsupported(op)

    # -- arrays and copies -------------------------------------------------------------
    # empty(shape, dtype), zeros(shape, dtype), full(shape, value, dtype), empty_like(a),
    # zeros_like(a): new arrays, as NumPy's functions of those names.
    empty = zeros = full = empty_like = zeros_like = _missing("allocation")

    def copy(self, a, dtype=None):
        """A new C-contiguous array holding `a` (cast to `dtype` when given)."""
        raise self.unsupported("copy")

    def from_host(self, array):
        """Host array `array` on this device: a C-contiguous copy (the array itself on the
        CPU)."""
        raise self.unsupported("copying to the device")

    def to_host(self, a):
        """`a` as a host NumPy array: a copy (the array itself on the CPU)."""
        raise self.unsupported("copying to the host")

    def host_copy(self, a):
        """A new host NumPy array holding `a` (never shared with it)."""
        return np.array(self.to_host(a), copy=True)

    def copy_into(self, a, value):
        """Copy host array `value` (of `a`'s shape) into `a`, in place."""
        raise self.unsupported("copying into an array")

    def contiguous(self, a, dtype=None):
        """`a` itself when C-contiguous (and of `dtype`, if given), else such a copy."""
        raise self.unsupported("contiguous copies")

    def constant(self, array):
        """Host array `array` as a constant operand on this device (a scalar stays 0-d)."""
        return self.from_host(array)

    def tensor_data(self, data, dtype):
        """Array `data` of this device as a Tensor holds it: float32, or float64 when
        `dtype` says so; InputError for anything else."""
        raise self.unsupported("tensors")

    # -- elementwise, NumPy's broadcasting; `out` (of the result's shape) may be `a` ------
    add = sub = mul = div = _missing("arithmetic")  # (a, b, out=None)
    maximum = minimum = _missing("maximum and minimum")  # (a, b)
    equal = _missing("equal")  # (a, b): 1 where equal, else 0 (or True/False)
    neg = exp = log = sqrt = tanh = sigmoid = abs = sign = _missing("unary math")  # (x)
    relu = _missing("relu")  # (x, out=None): out may be x itself
    scale = _missing("scale")  # (x, factor, out=None): x * factor, a Python number

    def divide_by(self, x, n):
        """``x / n`` for a Python number `n` (a mean's count)."""
        raise self.unsupported("divide_by")

    clip = _missing("clip")  # (x, low, high): bounds are numbers or None
    # The backwards take the forward's input (relu, leaky_relu) or output (tanh, sigmoid)
    # and the output gradient g.
    relu_backward = tanh_backward = sigmoid_backward = _missing("activation gradients")
    leaky_relu = _missing("leaky_relu")  # (x, slope)
    leaky_relu_backward = _missing("leaky_relu")  # (x, g, slope)
    # (logits, target): max(z, 0) - z*y + log(1 + exp(-|z|)), and its gradient sigmoid(z) - y
    binary_cross_entropy = binary_cross_entropy_backward = _missing("binary_cross_entropy")

    # -- reductions and broadcasting ---------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        """``x.sum(axis, keepdims)`` as NumPy computes it."""
        raise self.unsupported("sum")

    def mean(self, x, axis=None, keepdims=False):
        """``x.mean(axis, keepdims)``."""
        raise self.unsupported("mean")

    def unbroadcast(self, g, shape):
        """`g` summed over the axes broadcasting stretched, giving an array of `shape`."""
        raise self.unsupported("unbroadcast")

    def broadcast_to(self, a, shape):
        """`a` broadcast to `shape` (read-only; a view where the device has views)."""
        raise self.unsupported("broadcast_to")

    def vdot(self, a, b):
        """The dot product of `a` and `b` flattened, as a Python float."""
        raise self.unsupported("vdot")

    # -- shapes and indexing -----------------------------------------------------------
    def transpose(self, a, axes=None):
        """``a.transpose(axes)``: a view where the device has views, else a copy."""
        raise self.unsupported("transpose")

    def getitem(self, a, index, basic=True):
        """``a[index]``; `basic` says the index holds only ints, slices, None and Ellipsis
        (else integer or boolean arrays, whose elements may repeat)."""
        raise self.unsupported("indexing")

    def getitem_backward(self, g, shape, index, basic=True):
        """Zeros of `shape` with gradient `g` added where ``[index]`` took it from."""
        raise self.unsupported("indexing")

    def concatenate(self, arrays, axis):
        """The arrays joined along existing `axis`, as np.concatenate."""
        raise self.unsupported("concatenate")

    def take_rows(self, a, rows):
        """``a[rows]`` along the first axis for an int64 array `rows` of this device."""
        raise self.unsupported("take_rows")

    # -- products and losses -----------------------------------------------------------
    def matmul(self, a, b, trans_a=False, trans_b=False):
        """``op(a) @ op(b)``, op swapping the last two axes where asked."""
        raise self.unsupported("matmul")

    def host_scale(self, g, n):
        """(s, rest): the factor ``g / n`` for the 0-d gradient `g` of a mean over `n`
        terms, split for a kernel that takes its scale as a Python float.

        Where the host reads `g` for free, s is ``float(g) / n`` and rest None; on a device
        s is ``1 / n`` and rest is `g`, which the kernel's result is still to be multiplied
        by (reading `g` would stall the device's queue).
        """
        raise self.unsupported("host_scale")
