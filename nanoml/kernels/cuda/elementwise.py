"""Elementwise kernels: broadcasting arithmetic, activations and their backwards, copy, zero.

Each kernel runs one thread per output element over flat views of C-contiguous arrays. When
both operands have the output's shape they are indexed directly; otherwise a small table of
the output shape and of each operand's element strides (0 along broadcast axes) maps an
output index to each operand's element, as NumPy broadcasting does.

The op is an integer code tested inside the kernel. One launch runs one op, so every thread
takes the same branch and the test is free next to the memory traffic, while one compiled
kernel (per dtype) serves every op.

Policy for every kernel here and in the sibling modules: ``cache=True``; ``fastmath=False``,
since NaN and inf must propagate as on the CPU. Device functions are compiled into the
kernels that call them, which carry the cache (which, as on the CPU, does not notice edits
to a device function in another module).
"""

import functools
import math

import numpy as np
from numba import cuda

from nanoml.kernels.cuda.launch import flat, launch_1d

JIT = {"cache": True, "fastmath": False}
DEVICE = {"device": True, "fastmath": False}

# Constants in kernels take the data's type (``a.dtype.type(1)``, ``type(x)(1)``): float32
# data then keeps float32 arithmetic, where a Python float literal would promote it to float64.
# (A module-level np.float32 constant would do on the GPU, but in the simulator it would round
# float64 data to float32 wherever it meets the Python float that math.exp returns there.)

# Binary ops: out = f(a, b). The backwards take the forward's input (relu) or output
# (tanh, sigmoid) as `a` and the output gradient as `b`. Ops with a parameter (the leaky
# slope) take it as a broadcast one-element `b`; `_EQUAL` gives 1 or 0 in the data's type.
(_ADD, _SUB, _MUL, _DIV, _RELU_BACKWARD, _TANH_BACKWARD, _SIGMOID_BACKWARD, _MAXIMUM, _MINIMUM,
 _EQUAL, _LEAKY_RELU, _LEAKY_RELU_SLOPE, _BCE, _BCE_BACKWARD) = range(14)
# Unary ops: out = f(x).
_COPY, _RELU, _EXP, _TANH, _SIGMOID, _LOG, _SQRT, _ABS, _SIGN = range(9)


@cuda.jit(**DEVICE)
def sigmoid_scalar(x):
    """1 / (1 + exp(-x)) with exp of a non-positive number only, so it never overflows."""
    one = type(x)(1)
    if x >= 0:
        return one / (one + math.exp(-x))
    e = math.exp(x)
    return e / (one + e)


@cuda.jit(**DEVICE)
def _binary_op(op, a, b):
    one = type(a)(1)
    if op == _ADD:
        return a + b
    if op == _SUB:
        return a - b
    if op == _MUL:
        return a * b
    if op == _DIV:
        return a / b
    if op == _RELU_BACKWARD:
        # b * (a > 0) as in NumPy: a NaN or inf gradient stays NaN where the unit is off.
        return b if a > 0 else b * type(b)(0)
    if op == _TANH_BACKWARD:
        return b * (one - a * a)
    if op == _SIGMOID_BACKWARD:
        return b * a * (one - a)
    return _binary_op_more(op, a, b)


@cuda.jit(**DEVICE)
def _binary_op_more(op, a, b):
    one = type(a)(1)
    zero = type(a)(0)
    if op == _MAXIMUM or op == _MINIMUM:
        if a != a or b != b:  # NaN wins, as np.maximum / np.minimum
            return a + b
        return (a if a >= b else b) if op == _MAXIMUM else (a if a <= b else b)
    if op == _EQUAL:
        return one if a == b else zero
    if op == _LEAKY_RELU:
        return a if a > zero else a * b
    if op == _LEAKY_RELU_SLOPE:
        return one if a > zero else b
    if op == _BCE:
        # max(z, 0) - z*y + log(1 + exp(-|z|)) for logit a, target b: never overflows
        return (a if a > zero else zero) - a * b + math.log1p(math.exp(-abs(a)))
    return sigmoid_scalar(a) - b  # _BCE_BACKWARD


@cuda.jit(**DEVICE)
def _unary_op(op, x):
    if op == _COPY:
        return x
    if op == _RELU:
        return type(x)(0) if x <= 0 else x  # NaN is not <= 0, so it passes through
    if op == _EXP:
        return math.exp(x)
    if op == _TANH:
        return math.tanh(x)
    if op == _SIGMOID:
        return sigmoid_scalar(x)
    if op == _LOG:
        return math.log(x) if x > 0 else (type(x)(-math.inf) if x == 0 else type(x)(math.nan))
    if op == _SQRT:
        return math.sqrt(x) if x >= 0 else type(x)(math.nan)
    if op == _ABS:
        return abs(x)
    zero = type(x)(0)  # _SIGN; NaN stays NaN
    return type(x)(1) if x > zero else (type(x)(-1) if x < zero else x * zero)


@cuda.jit(**JIT)
def binary_same_kernel(a, b, out, op):
    """``out[i] = f(a[i], b[i])`` over flat arrays of one size."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = _binary_op(op, a[i], b[i])


@cuda.jit(**JIT)
def binary_broadcast_kernel(a, b, out, geometry, op):
    """``out = f(a, b)`` with broadcasting; `geometry` rows: out shape, a strides, b strides."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        rest = i
        ia = 0
        ib = 0
        for d in range(geometry.shape[1] - 1, -1, -1):
            k = rest % geometry[0, d]
            rest //= geometry[0, d]
            ia += k * geometry[1, d]
            ib += k * geometry[2, d]
        out[i] = _binary_op(op, a[ia], b[ib])


@cuda.jit(**JIT)
def unary_kernel(x, out, op):
    """``out[i] = f(x[i])`` over flat arrays of one size."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = _unary_op(op, x[i])


@functools.lru_cache(maxsize=256)
def _geometry(out_shape, a_shape, b_shape):
    """Device table of the output shape and both operands' broadcast element strides."""
    ndim = len(out_shape)
    table = np.zeros((3, ndim), np.int64)
    table[0] = out_shape
    for row, shape in ((1, a_shape), (2, b_shape)):
        padded = (1,) * (ndim - len(shape)) + tuple(shape)
        stride = 1
        for d in range(ndim - 1, -1, -1):
            table[row, d] = stride if padded[d] != 1 else 0
            stride *= padded[d]
    return cuda.to_device(table)


def _binary(op, a, b, out):
    shape = tuple(out.shape)
    if np.broadcast_shapes(a.shape, b.shape) != shape:
        raise ValueError(
            f"out has shape {shape}, but a {tuple(a.shape)} and b {tuple(b.shape)} broadcast "
            f"to {np.broadcast_shapes(a.shape, b.shape)}"
        )
    if tuple(a.shape) == shape and tuple(b.shape) == shape:
        launch_1d(binary_same_kernel, out.size, flat(a), flat(b), flat(out), op)
    elif out.size:
        geometry = _geometry(shape, tuple(a.shape), tuple(b.shape))
        launch_1d(binary_broadcast_kernel, out.size, flat(a), flat(b), flat(out), geometry, op)


def _unary(op, x, out):
    if tuple(x.shape) != tuple(out.shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, x has {tuple(x.shape)}")
    launch_1d(unary_kernel, out.size, flat(x), flat(out), op)


def _launcher(op, name, doc, unary=False):
    """The host function ``name(a, b, out)`` running binary op `op` (see `_binary`), or with
    `unary` ``name(x, out)`` running unary op `op` (see `_unary`)."""
    if unary:
        def launch(x, out):
            _unary(op, x, out)
    else:
        def launch(a, b, out):
            _binary(op, a, b, out)
    launch.__name__ = launch.__qualname__ = name
    launch.__doc__ = doc
    return launch


# The backwards take (forward input or output, output gradient, out); the leaky ReLU pair
# takes the slope as a one-element `b`; `equal` writes 1 or 0 in `out`'s float type.
add = _launcher(_ADD, "add", "``out = a + b`` with NumPy broadcasting (`out` may be `a` or "
                "`b` when it has its shape).")
sub = _launcher(_SUB, "sub", "``out = a - b`` with NumPy broadcasting.")
mul = _launcher(_MUL, "mul", "``out = a * b`` with NumPy broadcasting.")
div = _launcher(_DIV, "div", "``out = a / b`` with NumPy broadcasting.")
relu_backward = _launcher(
    _RELU_BACKWARD, "relu_backward", "``out = grad * (x > 0)``: relu's gradient at input x.")
tanh_backward = _launcher(
    _TANH_BACKWARD, "tanh_backward", "``out = grad * (1 - y²)``: tanh's gradient from output y.")
sigmoid_backward = _launcher(
    _SIGMOID_BACKWARD, "sigmoid_backward",
    "``out = grad * y * (1 - y)``: the sigmoid's gradient from its output y.")
maximum = _launcher(_MAXIMUM, "maximum", "``out = np.maximum(a, b)`` (NaN wins).")
minimum = _launcher(_MINIMUM, "minimum", "``out = np.minimum(a, b)`` (NaN wins).")
equal = _launcher(_EQUAL, "equal", "``out = (a == b)`` as 1 or 0.")
leaky_relu = _launcher(
    _LEAKY_RELU, "leaky_relu", "``out = x if x > 0 else slope * x`` for (x, slope, out).")
leaky_relu_slope = _launcher(
    _LEAKY_RELU_SLOPE, "leaky_relu_slope",
    "``out = 1 if x > 0 else slope``: leaky_relu's gradient at x, for (x, slope, out).")
binary_cross_entropy = _launcher(
    _BCE, "binary_cross_entropy",
    "Elementwise BCE of (logits, target), stable for any logit size.")
binary_cross_entropy_backward = _launcher(
    _BCE_BACKWARD, "binary_cross_entropy_backward",
    "``out = sigmoid(logits) - target``: d(BCE)/d(logits) elementwise.")

copy = _launcher(_COPY, "copy", "``out[...] = x`` between any mix of host and device arrays "
                 "of one shape.", unary=True)
relu = _launcher(_RELU, "relu", "``out = max(x, 0)``; NaN stays NaN.", unary=True)
exp = _launcher(_EXP, "exp", "``out = exp(x)``.", unary=True)
tanh = _launcher(_TANH, "tanh", "``out = tanh(x)``.", unary=True)
sigmoid = _launcher(_SIGMOID, "sigmoid", "``out = 1 / (1 + exp(-x))``, without overflow for "
                    "large |x|.", unary=True)
log = _launcher(_LOG, "log", "``out = log(x)``: -inf at 0, NaN below, as NumPy.", unary=True)
sqrt = _launcher(_SQRT, "sqrt", "``out = sqrt(x)``: NaN below 0, as NumPy.", unary=True)
# NumPy's name: ``abs`` stays the builtin that the device code calls.
absolute = _launcher(_ABS, "absolute", "``out = |x|``.", unary=True)
sign = _launcher(_SIGN, "sign", "``out = np.sign(x)``: -1, 0 or 1 (NaN stays NaN).", unary=True)
