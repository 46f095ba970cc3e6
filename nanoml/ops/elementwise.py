"""Elementwise ops: broadcasting arithmetic, comparisons, unary math and activations.

Each op computes through the backend of its operands: NumPy on the CPU (it already
vectorises these, a kernel would only add dispatch cost), one kernel launch per primitive
on a device. Python scalars and other constants become constants of the tensor's dtype
and device, so float32 stays float32.
"""

import numpy as np

from nanoml import backend
from nanoml.autograd import Tensor, apply


def constant_like(value, like):
    """A non-Tensor operand as a constant Tensor of `like`'s dtype and device (no gradient
    flows to it)."""
    constant = Tensor(value, dtype=like.data.dtype)
    constant.data = backend.of(like.data).constant(constant.data)
    return constant


def _operands(a, b):
    """(a, b, backend): both operands as Tensors on one device; a constant takes the dtype
    and device of the Tensor beside it."""
    if not isinstance(a, Tensor):
        a = constant_like(a, b)
    if not isinstance(b, Tensor):
        b = constant_like(b, a)
    if type(a.data) is not type(b.data):
        return a, b, backend.common("an arithmetic op", a, b)
    return a, b, backend.of(a.data)


# -- arithmetic ----------------------------------------------------------------------------
def add(a, b):
    """a + b, broadcasting; each gradient is summed back to its operand's shape."""
    a, b, xp = _operands(a, b)
    x, y = a.data, b.data

    def backward(g):
        ga = xp.unbroadcast(g, x.shape) if a.requires_grad else None
        gb = xp.unbroadcast(g, y.shape) if b.requires_grad else None
        return ga, gb

    return apply(xp.add(x, y), (a, b), backward)


def sub(a, b):
    """a - b, broadcasting."""
    a, b, xp = _operands(a, b)
    x, y = a.data, b.data

    def backward(g):
        ga = xp.unbroadcast(g, x.shape) if a.requires_grad else None
        gb = xp.unbroadcast(xp.neg(g), y.shape) if b.requires_grad else None
        return ga, gb

    return apply(xp.sub(x, y), (a, b), backward)


def rsub(a, b):
    """b - a (the reflected form of `sub`)."""
    return sub(b, a)


def mul(a, b):
    """a * b, broadcasting."""
    a, b, xp = _operands(a, b)
    x, y = a.data, b.data

    def backward(g):
        ga = xp.unbroadcast(xp.mul(g, y), x.shape) if a.requires_grad else None
        gb = xp.unbroadcast(xp.mul(g, x), y.shape) if b.requires_grad else None
        return ga, gb

    return apply(xp.mul(x, y), (a, b), backward)


def div(a, b):
    """a / b, broadcasting."""
    a, b, xp = _operands(a, b)
    x, y = a.data, b.data
    out = xp.div(x, y)

    def backward(g):
        ga = xp.unbroadcast(xp.div(g, y), x.shape) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            gb = xp.unbroadcast(xp.div(xp.mul(xp.neg(g), out), y), y.shape)
        return ga, gb

    return apply(out, (a, b), backward)


def rdiv(a, b):
    """b / a (the reflected form of `div`)."""
    return div(b, a)


def pow(a, b):
    """a ** b; a Python-number exponent takes the cheap path (no log, any sign of a).

    Squaring is a product, on every device; other powers compute with NumPy, so only where
    the arrays are NumPy arrays.
    """
    if isinstance(b, np.generic):
        b = b.item()  # a NumPy float64 scalar would promote float32 data
    if isinstance(a, Tensor) and isinstance(b, (int, float)):
        if b == 2:
            return mul(a, a)
        backend.of(a.data).require_numpy("pow")
        x = a.data

        def backward_scalar(g):
            return (g * (b * x ** (b - 1)),)

        return apply(x**b, (a,), backward_scalar)
    a, b, xp = _operands(a, b)
    xp.require_numpy("pow")
    out = a.data**b.data

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = xp.unbroadcast(g * b.data * a.data ** (b.data - 1), a.data.shape)
        if b.requires_grad:
            gb = xp.unbroadcast(g * out * np.log(a.data), b.data.shape)
        return ga, gb

    return apply(out, (a, b), backward)


def rpow(a, b):
    """b ** a (the reflected form of `pow`)."""
    return pow(b, a) if isinstance(b, Tensor) else pow(constant_like(b, a), a)


def neg(a):
    """-a."""
    xp = backend.of(a.data)
    return apply(xp.neg(a.data), (a,), lambda g: (xp.neg(g),))


# -- comparisons: no gradient, boolean data ------------------------------------------------
def _compare(ufunc):
    def compare(a, b):
        backend.of(a.data).require_numpy(ufunc.__name__)
        other = b.data if isinstance(b, Tensor) else b
        return apply(ufunc(a.data, other), (), None)

    compare.__name__ = ufunc.__name__
    compare.__doc__ = f"Elementwise {ufunc.__name__} as a boolean tensor (no gradient)."
    return compare


lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)
eq = _compare(np.equal)
ne = _compare(np.not_equal)


# -- unary math ----------------------------------------------------------------------------
def exp(x):
    """e ** x."""
    xp = backend.of(x.data)
    out = xp.exp(x.data)
    return apply(out, (x,), lambda g: (xp.mul(g, out),))


def log(x):
    """Natural logarithm."""
    xp = backend.of(x.data)
    data = x.data
    return apply(xp.log(data), (x,), lambda g: (xp.div(g, data),))


def sqrt(x):
    """Square root."""
    xp = backend.of(x.data)
    out = xp.sqrt(x.data)
    return apply(out, (x,), lambda g: (xp.div(xp.scale(g, 0.5), out),))


def abs(x):
    """|x|; the gradient at 0 is 0."""
    xp = backend.of(x.data)
    data = x.data
    return apply(xp.abs(data), (x,), lambda g: (xp.mul(g, xp.sign(data)),))


def clip(x, low=None, high=None):
    """Values limited to [low, high]; the gradient is zero where a bound was hit."""
    xp = backend.of(x.data)
    data = x.data
    out = xp.clip(data, low, high)
    # The gradient passes where clipping changed nothing (x == out, so not NaN).
    return apply(out, (x,), lambda g: (xp.mul(g, xp.equal(data, out)),))


# -- activations ---------------------------------------------------------------------------
def tanh(x):
    """Hyperbolic tangent."""
    xp = backend.of(x.data)
    out = xp.tanh(x.data)
    return apply(out, (x,), lambda g: (xp.tanh_backward(out, g),))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    xp = backend.of(x.data)
    out = xp.sigmoid(x.data)
    return apply(out, (x,), lambda g: (xp.sigmoid_backward(out, g),))


def relu(x):
    """max(x, 0); the gradient at 0 is 0."""
    xp = backend.of(x.data)
    data = x.data
    return apply(xp.relu(data), (x,), lambda g: (xp.relu_backward(data, g),))


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    xp = backend.of(x.data)
    data = x.data
    return apply(xp.leaky_relu(data, negative_slope), (x,),
                 lambda g: (xp.leaky_relu_backward(data, g, negative_slope),))
